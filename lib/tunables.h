/*
 * tunables.h - libkmem's tunables: one table, read from the environment
 * once (KMEM_<NAME>), read on the slow paths with tunable().  See
 * tunables.c.
 */
#ifndef KMEM_TUNABLES_H
#define KMEM_TUNABLES_H

#include <stdatomic.h>
#include <stdint.h>

enum tunable_id {
	KT_CACHE_OBJ_PER_SLAB,  /* objects-per-slab target */
	KT_CACHE_MAX_SIZE,      /* largest slab, MiB (= largest object) */
	KT_CACHE_MAGAZINE_SIZE, /* rounds per magazine, 0 = by object size */
	KT_PERCPU,              /* enum kmem_percpu_mode */
	KT_CACHE_KMEM_THREADS,  /* threads of the kmem taskq */
	KT_REAP_INTERVAL,       /* seconds between aging passes, 0 = none */
	KT_CACHE_EXPIRE,        /* seconds an empty slab is kept */
	KT_CACHE_RECLAIM,       /* enum kmem_reclaim_mode */
	KT_MEMORY_LIMIT,        /* bytes; 0 = none */
	KT_CACHE_GROW_AHEAD,    /* grow before caches run dry */
	KT_NUMA_POLICY,         /* enum kmem_numa_policy (place.h) */
	KT_ALLOC_MAX_CLASS,     /* bytes: the largest kmem_alloc class */
	KT_STATS,               /* publish the statistics region (stats.c) */
	KT_STATS_INTERVAL,      /* seconds between publishes */
	KT_COUNT
};

/*
 * A tunable's description: its name (the SPL's where one exists), default,
 * inclusive range, and for an enum tunable the words of its values (the
 * value is the word's index; NULL-terminated), else NULL.
 */
struct tunable_def {
	const char *name;
	int64_t dflt, min, max;
	const char *const *words;
};

/* The description of tunable id (id < KT_COUNT). */
const struct tunable_def *tunable_def(enum tunable_id id);

/* The id of the tunable called name ("kmem_..."), or -1. */
int tunable_find(const char *name);

/* Values of kmem_cache_reclaim: how hard memory pressure reclaims. */
enum kmem_reclaim_mode { KMEM_RECLAIM_TARGET, KMEM_RECLAIM_ONCE };

/* Values of the enum tunable kmem_percpu. */
enum kmem_percpu_mode { KMEM_PERCPU_RSEQ, KMEM_PERCPU_LOCK };

extern _Atomic int64_t tunable_values[KT_COUNT];

void tunables_init(void);

static inline int64_t tunable(enum tunable_id id)
{
	return (atomic_load_explicit(&tunable_values[id],
	    memory_order_relaxed));
}

/* Set a value (range-checked); 0 or -1 with errno EINVAL/ERANGE. */
int tunable_set_id(enum tunable_id id, int64_t value);

/* Name of an enum tunable's value, or NULL. */
const char *tunable_value_name(enum tunable_id id, int64_t value);

/* Test hook: parse 'text' as if it were tunable 'id''s variable. */
int tunable_parse_env(enum tunable_id id, const char *text);

#endif /* KMEM_TUNABLES_H */
