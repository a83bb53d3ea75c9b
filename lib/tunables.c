/*
 * tunables.c - every libkmem tunable in one table.
 *
 * A tunable has a name (the SPL's where one exists), an environment
 * variable KMEM_<NAME> (the name without its "kmem_" prefix, upper-cased),
 * a default and an inclusive range.  An enum tunable takes one of a list
 * of words (KMEM_PERCPU=lock) and stores the word's index.  tunables_init() reads the environment
 * once; a malformed or out-of-range value is rejected with one line on
 * stderr naming the variable, the value and the allowed range, and the
 * default is kept.  The process is never aborted for a bad value.
 *
 * Values live in an array of atomics read with relaxed loads: layers read
 * them on slow paths (cache creation, growth, reaping), never per object.
 * man7/libkmem.7 documents every entry of this table.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kmem_impl.h"
#include "tunables.h"

static const char *const percpu_words[] = { "rseq", "lock", NULL };
static const char *const reclaim_words[] = { "target", "once", NULL };
static const char *const numa_words[] = { "local", "interleave", "none", NULL };

static const struct tunable_def tunable_defs[KT_COUNT] = {
	[KT_CACHE_OBJ_PER_SLAB]  = { "kmem_cache_obj_per_slab", 8, 1, 4096,
	    NULL },
	[KT_CACHE_MAX_SIZE]      = { "kmem_cache_max_size", 32, 1, 1024,
	    NULL },
	[KT_CACHE_MAGAZINE_SIZE] = { "kmem_cache_magazine_size", 0, 0, 256,
	    NULL },
	[KT_PERCPU]              = { "kmem_percpu", KMEM_PERCPU_RSEQ,
	    KMEM_PERCPU_RSEQ, KMEM_PERCPU_LOCK, percpu_words },
	[KT_CACHE_KMEM_THREADS]  = { "kmem_cache_kmem_threads", 4, 1, 256,
	    NULL },
	[KT_REAP_INTERVAL]       = { "kmem_reap_interval", 5, 0, 3600, NULL },
	[KT_CACHE_EXPIRE]        = { "kmem_cache_expire", 10, 0, 86400, NULL },
	[KT_CACHE_RECLAIM]       = { "kmem_cache_reclaim", KMEM_RECLAIM_TARGET,
	    KMEM_RECLAIM_TARGET, KMEM_RECLAIM_ONCE, reclaim_words },
	[KT_MEMORY_LIMIT]        = { "kmem_memory_limit", 0, 0,
	    (int64_t)1 << 60, NULL },
	[KT_CACHE_GROW_AHEAD]    = { "kmem_cache_grow_ahead", 1, 0, 1, NULL },
	[KT_NUMA_POLICY]         = { "kmem_numa_policy", 0, 0, 2, numa_words },
	[KT_ALLOC_MAX_CLASS]     = { "kmem_alloc_max_class", 128 << 10, 4096,
	    16 << 20, NULL },
	[KT_STATS]               = { .name = "kmem_stats", .dflt = 1,
	    .min = 0, .max = 1 },
	[KT_STATS_INTERVAL]      = { .name = "kmem_stats_interval", .dflt = 1,
	    .min = 1, .max = 3600 },
};

_Atomic int64_t tunable_values[KT_COUNT];
static pthread_once_t tunables_once = PTHREAD_ONCE_INIT;

/* KMEM_CACHE_MAX_SIZE for "kmem_cache_max_size". */
static void
tunable_env_name(const struct tunable_def *def, char *buf, size_t len)
{
	const char *p = def->name + strlen("kmem_");
	size_t n = strlen("KMEM_");

	memcpy(buf, "KMEM_", n);
	for (; *p != '\0' && n + 1 < len; p++)
		buf[n++] = (char)toupper((unsigned char)*p);
	buf[n] = '\0';
}

/*
 * A decimal integer with an optional K, M or G suffix (powers of 1024),
 * surrounded by nothing else.
 */
static int
tunable_parse_int(const char *text, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(text, &end, 10);
	if (end == text || errno != 0)
		return (-1);
	switch (*end) {
	case 'k': case 'K': v = v > INT64_MAX >> 10 ? -1 : v << 10; end++; break;
	case 'm': case 'M': v = v > INT64_MAX >> 20 ? -1 : v << 20; end++; break;
	case 'g': case 'G': v = v > INT64_MAX >> 30 ? -1 : v << 30; end++; break;
	default: break;
	}
	if (*end != '\0' || v < 0)
		return (-1);
	*out = v;
	return (0);
}

/* Range-check and store; no initialisation (the environment parser). */
static int
tunable_store(enum tunable_id id, int64_t value)
{
	const struct tunable_def *def;

	if ((unsigned int)id >= KT_COUNT) {
		errno = EINVAL;
		return (-1);
	}
	def = &tunable_defs[id];
	if (value < def->min || value > def->max) {
		errno = ERANGE;
		return (-1);
	}
	atomic_store_explicit(&tunable_values[id], value,
	    memory_order_relaxed);
	return (0);
}

const struct tunable_def *
tunable_def(enum tunable_id id)
{
	return (&tunable_defs[id]);
}

int
tunable_find(const char *name)
{
	for (int id = 0; id < KT_COUNT; id++)
		if (strcmp(name, tunable_defs[id].name) == 0)
			return (id);
	return (-1);
}

int
tunable_set_id(enum tunable_id id, int64_t value)
{
	tunables_init();        /* defaults first, or they would overwrite */
	return (tunable_store(id, value));
}

const char *
tunable_value_name(enum tunable_id id, int64_t value)
{
	const struct tunable_def *def = &tunable_defs[id];

	if (def->words == NULL || value < def->min || value > def->max)
		return (NULL);
	return (def->words[value]);
}

/* Parse an enum tunable's word; -1 if it is not one of them. */
static int
tunable_parse_word(const struct tunable_def *def, const char *text,
    int64_t *out)
{
	for (int64_t i = 0; def->words[i] != NULL; i++) {
		if (strcmp(text, def->words[i]) == 0) {
			*out = i;
			return (0);
		}
	}
	return (-1);
}

int
tunable_parse_env(enum tunable_id id, const char *text)
{
	const struct tunable_def *def = &tunable_defs[id];
	char var[64];
	int64_t v;

	tunable_env_name(def, var, sizeof (var));
	if (def->words != NULL) {
		if (tunable_parse_word(def, text, &v) == 0 &&
		    tunable_store(id, v) == 0)
			return (0);
		char allowed[128] = "";
		for (int i = 0; def->words[i] != NULL; i++) {
			strncat(allowed, i ? "|" : "", sizeof (allowed) -
			    strlen(allowed) - 1);
			strncat(allowed, def->words[i], sizeof (allowed) -
			    strlen(allowed) - 1);
		}
		kmem_report("%s='%s' rejected: expected one of %s; keeping the "
		    "default %s", var, text, allowed, def->words[def->dflt]);
		return (-1);
	}
	if (tunable_parse_int(text, &v) != 0 || tunable_store(id, v) != 0) {
		kmem_report("%s='%s' rejected: expected an integer in "
		    "%lld..%lld; keeping the default %lld", var, text,
		    (long long)def->min, (long long)def->max,
		    (long long)def->dflt);
		return (-1);
	}
	return (0);
}

static void
tunables_init_once(void)
{
	for (int id = 0; id < KT_COUNT; id++) {
		char var[64];
		const char *text;

		atomic_store(&tunable_values[id], tunable_defs[id].dflt);
		tunable_env_name(&tunable_defs[id], var, sizeof (var));
		text = getenv(var);
		if (text != NULL)
			(void) tunable_parse_env((enum tunable_id)id, text);
	}
}

void
tunables_init(void)
{
	(void) pthread_once(&tunables_once, tunables_init_once);
}
