/*
 * tunables.c - every libkmem tunable in one table, and the public
 * kmem_tunable_get/set/set_str/list API over it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A tunable has a name (the SPL's where one exists), an environment
 * variable KMEM_<NAME> (the name without its "kmem_" prefix, upper-cased),
 * a default and an inclusive range.  An enum tunable takes one of a list
 * of words (KMEM_PERCPU=lock) and stores the word's index.
 * tunables_init() reads the environment once; a malformed or out-of-range
 * value is rejected with one line on stderr naming the variable, the value
 * and the allowed range, and the default is kept.  The process is never
 * aborted for a bad value.
 *
 * WHEN A CHANGE TAKES EFFECT (tunable_def.runtime).  A run-time tunable is
 * re-read by the layer that uses it every time it matters (an aging pass,
 * a growth, a cache creation for TUNABLE_NEWCACHES), so kmem_tunable_set()
 * changes behaviour from then on; where waiting for the next read is not
 * enough, the layer registers a change hook (tunable_set_hook).  A
 * start-only tunable decides something for good (threads, per-CPU mode,
 * the kmem_alloc class table, NUMA placement): the layer reads it with
 * tunable_fixed(), which marks the value fixed (TUNABLE_FIXED_BIT), and
 * kmem_tunable_set() refuses to change it after that (EBUSY).  Before
 * libkmem first uses it, a start-only tunable can still be set.
 *
 * INVARIANTS.  tunable_values[id] & ~TUNABLE_FIXED_BIT is always within
 * the entry's range; the fixed bit, once set, stays set.  Every maximum is
 * below 2^61.
 *
 * LOCKING.  None: values are atomics, read with relaxed loads on slow
 * paths (cache creation, growth, reaping), never per object.  A setter
 * and tunable_fixed() meet in one word: the setter's compare-and-swap
 * fails if the bit was set meanwhile, so a layer never uses a value other
 * than the one reported.  Hooks run in the setter's thread, no lock held.
 *
 * man7/libkmem.7 documents every entry of this table, man3/kmem_tunable_get.3
 * the API.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmem_impl.h"
#include "tunables.h"

static const char *const percpu_words[] = { "rseq", "lock", NULL };
static const char *const reclaim_words[] = { "target", "once", NULL };
static const char *const numa_words[] = { "local", "interleave", "none", NULL };
/* Bits of kmem_debug: KMEM_DEBUG_GUARDS, _AUDIT, _LEAKS, _NOABORT. */
static const char *const debug_flags[] = {
	"guards", "audit", "leaks", "noabort", NULL
};

static const struct tunable_def tunable_defs[KT_COUNT] = {
	[KT_CACHE_OBJ_PER_SLAB]  = { "kmem_cache_obj_per_slab", 8, 1, 4096,
	    NULL, .runtime = TUNABLE_NEWCACHES },
	[KT_CACHE_MAX_SIZE]      = { "kmem_cache_max_size", 32, 1, 1024,
	    NULL, .runtime = TUNABLE_NEWCACHES },
	[KT_CACHE_MAGAZINE_SIZE] = { "kmem_cache_magazine_size", 0, 0, 256,
	    NULL, .runtime = TUNABLE_NEWCACHES },
	[KT_PERCPU]              = { "kmem_percpu", KMEM_PERCPU_RSEQ,
	    KMEM_PERCPU_RSEQ, KMEM_PERCPU_LOCK, percpu_words,
	    .runtime = TUNABLE_START },
	[KT_CACHE_KMEM_THREADS]  = { "kmem_cache_kmem_threads", 4, 1, 256,
	    NULL, .runtime = TUNABLE_START },
	[KT_REAP_INTERVAL]       = { "kmem_reap_interval", 5, 0, 3600, NULL,
	    .runtime = TUNABLE_RUNTIME },
	[KT_CACHE_EXPIRE]        = { "kmem_cache_expire", 10, 0, 86400, NULL,
	    .runtime = TUNABLE_RUNTIME },
	[KT_CACHE_RECLAIM]       = { "kmem_cache_reclaim", KMEM_RECLAIM_TARGET,
	    KMEM_RECLAIM_TARGET, KMEM_RECLAIM_ONCE, reclaim_words,
	    .runtime = TUNABLE_RUNTIME },
	[KT_MEMORY_LIMIT]        = { "kmem_memory_limit", 0, 0,
	    (int64_t)1 << 60, NULL, .runtime = TUNABLE_RUNTIME },
	[KT_CACHE_GROW_AHEAD]    = { "kmem_cache_grow_ahead", 1, 0, 1, NULL,
	    .runtime = TUNABLE_RUNTIME },
	[KT_NUMA_POLICY]         = { "kmem_numa_policy", 0, 0, 2, numa_words,
	    .runtime = TUNABLE_START },
	[KT_ALLOC_MAX_CLASS]     = { "kmem_alloc_max_class", 128 << 10, 4096,
	    16 << 20, NULL, .runtime = TUNABLE_START },
	[KT_MEMPOOL_RETRY_MS]    = { "kmem_mempool_retry_ms", 1000, 1, 60000,
	    NULL, .runtime = TUNABLE_RUNTIME },
	[KT_STATS]               = { .name = "kmem_stats", .dflt = 1,
	    .min = 0, .max = 1, .runtime = TUNABLE_RUNTIME },
	[KT_STATS_INTERVAL]      = { .name = "kmem_stats_interval", .dflt = 1,
	    .min = 1, .max = 3600, .runtime = TUNABLE_RUNTIME },
	[KT_DEBUG]               = { .name = "kmem_debug", .dflt = 0,
	    .min = 0, .max = 15, .runtime = TUNABLE_NEWCACHES,
	    .flags = debug_flags, .arg_bit = 1,
	    .arg_id = KT_DEBUG_AUDIT_FRAMES },
	[KT_DEBUG_AUDIT_FRAMES]  = { .name = "kmem_debug_audit_frames",
	    .dflt = 16, .min = 1, .max = 64, .runtime = TUNABLE_NEWCACHES },
};

_Atomic int64_t tunable_values[KT_COUNT];
static pthread_once_t tunables_once = PTHREAD_ONCE_INIT;
static void (*_Atomic tunable_hooks[KT_COUNT])(void);

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
 * surrounded by nothing else: 0, -1 if it is not one, -2 if it does not
 * fit in 64 bits.
 */
static int
tunable_parse_int(const char *text, int64_t *out)
{
	char *end;
	long long v;
	int64_t mult = 1;

	if (isspace((unsigned char)text[0]))
		return (-1);            /* strtoll would skip it */
	errno = 0;
	v = strtoll(text, &end, 10);
	if (end == text || (errno != 0 && errno != ERANGE))
		return (-1);
	switch (*end) {
	case 'k': case 'K': mult = (int64_t)1 << 10; end++; break;
	case 'm': case 'M': mult = (int64_t)1 << 20; end++; break;
	case 'g': case 'G': mult = (int64_t)1 << 30; end++; break;
	default: break;
	}
	if (*end != '\0')
		return (-1);
	if (errno == ERANGE || __builtin_mul_overflow((int64_t)v, mult, out))
		return (-2);
	return (0);
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

/*
 * A flags tunable's text: "none", or a comma list of its flag words, one
 * of which may take "=N" (*arg; else -1), and "all" (every flag but the
 * last: "all,noabort").  0, -1 if it is not one, -2 if N is out of its
 * tunable's range.
 */
static int
tunable_parse_flags(const struct tunable_def *def, const char *text,
    int64_t *out, int64_t *arg)
{
	const char *p = text;
	int nflags = 0;

	while (def->flags[nflags] != NULL)
		nflags++;
	*out = 0;
	if (strcmp(text, "none") == 0)
		return (0);
	while (*p != '\0') {
		size_t len = strcspn(p, ",=");
		int i;

		for (i = 0; i < nflags; i++)
			if (strlen(def->flags[i]) == len &&
			    strncmp(p, def->flags[i], len) == 0)
				break;
		if (i < nflags)
			*out |= (int64_t)1 << i;
		else if (len == 3 && strncmp(p, "all", 3) == 0)
			*out |= ((int64_t)1 << (nflags - 1)) - 1;
		else
			return (-1);
		p += len;
		if (*p == '=') {
			const struct tunable_def *ad = tunable_def(def->arg_id);
			char num[24];
			size_t nlen = strcspn(++p, ",");

			if (i != def->arg_bit || nlen == 0 ||
			    nlen >= sizeof (num))
				return (-1);
			memcpy(num, p, nlen);
			num[nlen] = '\0';
			if (tunable_parse_int(num, arg) != 0)
				return (-1);
			if (*arg < ad->min || *arg > ad->max)
				return (-2);
			p += nlen;
		}
		if (*p == ',' && *++p == '\0')
			return (-1);
	}
	return (p == text ? -1 : 0);
}

/*
 * text as the environment variable of def would take it: one of the
 * words of an enum tunable, a flags tunable's list, else an integer.  0;
 * -1 with errno EINVAL (malformed) or ERANGE (a number out of the
 * range).  *arg: the value a flag word took ("audit=16"), else -1.
 */
static int
tunable_parse_text(const struct tunable_def *def, const char *text,
    int64_t *out, int64_t *arg)
{
	int rc;

	*arg = -1;
	if (def->words != NULL)
		rc = tunable_parse_word(def, text, out);
	else
		rc = tunable_parse_int(text, out);
	if (rc == -1 && def->flags != NULL)
		rc = tunable_parse_flags(def, text, out, arg);
	if (rc == -1) {
		errno = EINVAL;
		return (-1);
	}
	if (rc == -2 || *out < def->min || *out > def->max) {
		errno = ERANGE;
		return (-1);
	}
	return (0);
}

/*
 * What def accepts, for messages: "one of rseq|lock" or "an integer in
 * 1..4096" (with_index adds an enum's indices: the integer API's view).
 */
static void
tunable_allowed(const struct tunable_def *def, bool with_index, char *buf,
    size_t len)
{
	size_t n;

	if (def->flags != NULL) {
		n = (size_t)snprintf(buf, len, "an integer in %lld..%lld, "
		    "none or a comma list of all", (long long)def->min,
		    (long long)def->max);
		for (int i = 0; def->flags[i] != NULL && n < len; i++)
			n += (size_t)snprintf(buf + n, len - n, "|%s%s",
			    def->flags[i], i == def->arg_bit ? "[=N]" : "");
		if (n < len)
			(void) snprintf(buf + n, len - n, " (N in %lld..%lld)",
			    (long long)tunable_def(def->arg_id)->min,
			    (long long)tunable_def(def->arg_id)->max);
		return;
	}
	if (def->words == NULL) {
		(void) snprintf(buf, len, "an integer in %lld..%lld",
		    (long long)def->min, (long long)def->max);
		return;
	}
	n = (size_t)snprintf(buf, len, with_index ? "%lld..%lld (" :
	    "one of ", (long long)def->min, (long long)def->max);
	for (int i = 0; def->words[i] != NULL && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? "|" : "",
		    def->words[i]);
	if (with_index && n < len)
		(void) snprintf(buf + n, len - n, ")");
}

/* A value as people write it: the word of an enum tunable. */
static void
tunable_format(const struct tunable_def *def, int64_t v, char *buf,
    size_t len)
{
	int64_t nwords = 0;

	while (def->words != NULL && def->words[nwords] != NULL)
		nwords++;
	if (v >= 0 && v < nwords)
		(void) snprintf(buf, len, "%s", def->words[v]);
	else
		(void) snprintf(buf, len, "%lld", (long long)v);
}

/*
 * Range-check and store, keeping the fixed bit (the environment parser
 * and the internal setter); the previous value goes to *old.
 */
static int
tunable_store(enum tunable_id id, int64_t value, int64_t *old)
{
	const struct tunable_def *def;
	int64_t cur;

	if ((unsigned int)id >= KT_COUNT) {
		errno = EINVAL;
		return (-1);
	}
	def = &tunable_defs[id];
	if (value < def->min || value > def->max) {
		errno = ERANGE;
		return (-1);
	}
	cur = atomic_load(&tunable_values[id]);
	while (!atomic_compare_exchange_weak(&tunable_values[id], &cur,
	    value | (cur & TUNABLE_FIXED_BIT)))
		;
	if (old != NULL)
		*old = cur & ~TUNABLE_FIXED_BIT;
	return (0);
}

/* After a change: the layer's hook, if the value moved. */
static void
tunable_changed(enum tunable_id id, int64_t old, int64_t value)
{
	void (*fn)(void) = atomic_load(&tunable_hooks[id]);

	if (fn != NULL && old != value)
		fn();
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
	int64_t old;

	tunables_init();        /* defaults first, or they would overwrite */
	if (tunable_store(id, value, &old) != 0)
		return (-1);
	tunable_changed(id, old, value);
	return (0);
}

void
tunable_set_hook(enum tunable_id id, void (*fn)(void))
{
	atomic_store(&tunable_hooks[id], fn);
}

const char *
tunable_value_name(enum tunable_id id, int64_t value)
{
	const struct tunable_def *def = &tunable_defs[id];

	if (def->words == NULL || value < def->min || value > def->max)
		return (NULL);
	return (def->words[value]);
}

int
tunable_parse_env(enum tunable_id id, const char *text)
{
	const struct tunable_def *def = &tunable_defs[id];
	char var[64], allowed[160], kept[32];
	int64_t v, arg, cur;

	if (tunable_parse_text(def, text, &v, &arg) == 0 &&
	    tunable_store(id, v, NULL) == 0) {
		if (arg >= 0)
			(void) tunable_store(def->arg_id, arg, NULL);
		return (0);
	}
	tunable_env_name(def, var, sizeof (var));
	tunable_allowed(def, false, allowed, sizeof (allowed));
	/* The default, or what another variable set (KMEM_DEBUG=audit=N). */
	cur = atomic_load(&tunable_values[id]);
	tunable_format(def, cur, kept, sizeof (kept));
	kmem_report("%s='%.64s' rejected: expected %s; keeping %s%s", var,
	    text, allowed, cur == def->dflt ? "the default " : "", kept);
	return (-1);
}

static void
tunables_init_once(void)
{
	/*
	 * Every default first: a variable may also set another tunable
	 * (KMEM_DEBUG=audit=N sets kmem_debug_audit_frames), which a later
	 * default must not overwrite.
	 */
	for (int id = 0; id < KT_COUNT; id++)
		atomic_store(&tunable_values[id], tunable_defs[id].dflt);
	for (int id = 0; id < KT_COUNT; id++) {
		char var[64];
		const char *text;

		tunable_env_name(&tunable_defs[id], var, sizeof (var));
		/*
		 * Not in set-user-ID or set-group-ID programs, as glibc's
		 * malloc tunables: whoever runs one could otherwise make it
		 * abort (kmem_debug) or starve (kmem_memory_limit).
		 */
		text = secure_getenv(var);
		if (text != NULL)
			(void) tunable_parse_env((enum tunable_id)id, text);
	}
}

void
tunables_init(void)
{
	(void) pthread_once(&tunables_once, tunables_init_once);
}

/* ------------------------------------------------------------ public API */

/*
 * The tunable called name for kmem_tunable_fn: its id, or -1 with errno
 * EINVAL (NULL) or ENOENT (no such tunable), reported when 'loud'.
 */
static int
tunable_lookup(const char *fn, const char *name, bool loud)
{
	int id;

	if (name == NULL) {
		kmem_report("%s: NULL tunable name", fn);
		errno = EINVAL;
		return (-1);
	}
	tunables_init();
	id = tunable_find(name);
	if (id < 0) {
		if (loud)
			kmem_report("%s: no tunable named '%.64s' (see "
			    "libkmem(7) TUNABLES)", fn, name);
		errno = ENOENT;
	}
	return (id);
}

/* Report value (as the caller wrote it) out of id's range: ERANGE. */
static int
tunable_reject_range(const char *fn, enum tunable_id id, const char *text,
    bool with_index)
{
	const struct tunable_def *def = &tunable_defs[id];
	char allowed[160], cur[32];

	tunable_allowed(def, with_index, allowed, sizeof (allowed));
	tunable_format(def, tunable(id), cur, sizeof (cur));
	kmem_report("%s: %s=%.64s rejected: expected %s; keeping %s", fn,
	    def->name, text, allowed, cur);
	errno = ERANGE;
	return (-1);
}

/*
 * Set tunable id to value (text: what the caller wrote, for messages).
 * A start-only tunable that libkmem has started using keeps its value:
 * EBUSY, unless value is that value.
 */
static int
tunable_set_public(const char *fn, enum tunable_id id, int64_t value,
    const char *text)
{
	const struct tunable_def *def = &tunable_defs[id];
	char var[64], cur_s[32];
	int64_t cur;

	if (value < def->min || value > def->max)
		return (tunable_reject_range(fn, id, text, true));
	cur = atomic_load(&tunable_values[id]);
	do {
		if ((cur & TUNABLE_FIXED_BIT) &&
		    def->runtime == TUNABLE_START) {
			if ((cur & ~TUNABLE_FIXED_BIT) == value)
				return (0);     /* no change asked for */
			tunable_env_name(def, var, sizeof (var));
			tunable_format(def, cur & ~TUNABLE_FIXED_BIT, cur_s,
			    sizeof (cur_s));
			kmem_report("%s: %s=%.64s rejected: %s is read once, "
			    "when libkmem starts using it, and is fixed now "
			    "(set %s in the environment); keeping %s", fn,
			    def->name, text, def->name, var, cur_s);
			errno = EBUSY;
			return (-1);
		}
	} while (!atomic_compare_exchange_weak(&tunable_values[id], &cur,
	    value | (cur & TUNABLE_FIXED_BIT)));
	tunable_changed(id, cur & ~TUNABLE_FIXED_BIT, value);
	return (0);
}

KMEM_EXPORT int
kmem_tunable_get(const char *name, int64_t *value)
{
	int id;

	if (value == NULL) {
		kmem_report("kmem_tunable_get(%.64s): NULL value pointer",
		    name != NULL ? name : "NULL");
		errno = EINVAL;
		return (-1);
	}
	if ((id = tunable_lookup("kmem_tunable_get", name, false)) < 0)
		return (-1);
	*value = tunable((enum tunable_id)id);
	return (0);
}

KMEM_EXPORT int
kmem_tunable_set(const char *name, int64_t value)
{
	int id = tunable_lookup("kmem_tunable_set", name, true);
	char text[32];

	if (id < 0)
		return (-1);
	(void) snprintf(text, sizeof (text), "%lld", (long long)value);
	return (tunable_set_public("kmem_tunable_set", (enum tunable_id)id,
	    value, text));
}

KMEM_EXPORT int
kmem_tunable_set_str(const char *name, const char *text)
{
	const char *fn = "kmem_tunable_set_str";
	const struct tunable_def *def;
	char allowed[160], cur[32];
	int64_t v, arg;
	int id;

	if (text == NULL) {
		kmem_report("%s(%.64s): NULL value text", fn,
		    name != NULL ? name : "NULL");
		errno = EINVAL;
		return (-1);
	}
	if ((id = tunable_lookup(fn, name, true)) < 0)
		return (-1);
	def = &tunable_defs[id];
	if (tunable_parse_text(def, text, &v, &arg) != 0) {
		if (errno == ERANGE)
			return (tunable_reject_range(fn, (enum tunable_id)id,
			    text, false));
		tunable_allowed(def, false, allowed, sizeof (allowed));
		tunable_format(def, tunable((enum tunable_id)id), cur,
		    sizeof (cur));
		kmem_report("%s: %s='%.64s' rejected: expected %s; keeping %s",
		    fn, def->name, text, allowed, cur);
		errno = EINVAL;
		return (-1);
	}
	if (tunable_set_public(fn, (enum tunable_id)id, v, text) != 0)
		return (-1);
	if (arg >= 0)
		return (tunable_set_public(fn, def->arg_id, arg, text));
	return (0);
}

KMEM_EXPORT int
kmem_tunable_list(struct kmem_tunable *buf, int n)
{
	if (n < 0 || (buf == NULL && n > 0)) {
		kmem_report("kmem_tunable_list(%p, %d): %s", (void *)buf, n,
		    n < 0 ? "negative count" : "NULL buffer");
		errno = EINVAL;
		return (-1);
	}
	tunables_init();
	for (int id = 0; id < KT_COUNT && id < n; id++) {
		const struct tunable_def *def = &tunable_defs[id];
		int64_t v = atomic_load(&tunable_values[id]);
		struct kmem_tunable *t = &buf[id];

		t->name = def->name;
		t->value = v & ~TUNABLE_FIXED_BIT;
		t->dflt = def->dflt;
		t->min = def->min;
		t->max = def->max;
		t->words = def->words;
		t->flags = 0;
		if (def->runtime != TUNABLE_START)
			t->flags |= KMEM_TUNABLE_RUNTIME;
		if (def->runtime == TUNABLE_NEWCACHES)
			t->flags |= KMEM_TUNABLE_NEWCACHES;
		if (def->runtime == TUNABLE_START &&
		    (v & TUNABLE_FIXED_BIT))
			t->flags |= KMEM_TUNABLE_FIXED;
	}
	return (KT_COUNT);
}
