/*
 * tunables.h - libkmem's tunables: one table, read from the environment
 * once (KMEM_<NAME>), set through kmem_tunable_set(3), read on the slow
 * paths with tunable() (run-time tunables) or tunable_fixed() (start-only
 * tunables).  See tunables.c.
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
	KT_MEMPOOL_RETRY_MS,    /* ms a mempool waiter sleeps between retries */
	KT_STATS,               /* publish the statistics region (stats.c) */
	KT_STATS_INTERVAL,      /* seconds between publishes */
	KT_DEBUG,               /* KMEM_DEBUG_* flags for new caches */
	KT_DEBUG_AUDIT_FRAMES,  /* stack frames per audit record */
	KT_COUNT
};

/*
 * When a change of a tunable takes effect (tunable_def.runtime).  The
 * zero value is the safe one: a tunable that does not say is start-only.
 */
enum tunable_runtime {
	TUNABLE_START = 0,      /* read once; fixed from its first use */
	TUNABLE_RUNTIME,        /* re-read: a change applies from now on */
	TUNABLE_NEWCACHES       /* re-read when a cache is created */
};

/*
 * A tunable's description: its name (the SPL's where one exists), default,
 * inclusive range, and for an enum tunable the words of its values (the
 * value is the word's index; NULL-terminated), else NULL; and when a
 * change takes effect.  Entries set fields after 'words' by designator.
 */
struct tunable_def {
	const char *name;
	int64_t dflt, min, max;
	const char *const *words;
	enum tunable_runtime runtime;
	/*
	 * A set of flags: flags[i] names bit i; the text is a comma list
	 * of them, "all" (every bit but the last, noabort) or "none".
	 * The word flags[arg_bit] may take "=N", a value of tunable arg_id.
	 */
	const char *const *flags;
	int arg_bit;
	enum tunable_id arg_id;
};

/* The description of tunable id (id < KT_COUNT). */
const struct tunable_def *tunable_def(enum tunable_id id);

/* The id of the tunable called name ("kmem_..."), or -1. */
int tunable_find(const char *name);

/* Values of kmem_cache_reclaim: how hard memory pressure reclaims. */
enum kmem_reclaim_mode { KMEM_RECLAIM_TARGET, KMEM_RECLAIM_ONCE };

/* Values of the enum tunable kmem_percpu. */
enum kmem_percpu_mode { KMEM_PERCPU_RSEQ, KMEM_PERCPU_LOCK };

/*
 * A start-only tunable's value carries this bit once libkmem has used it
 * (tunable_fixed): kmem_tunable_set() then refuses to change it.  Values
 * are below 2^61, so the bit is free.
 */
#define TUNABLE_FIXED_BIT       ((int64_t)1 << 62)

extern _Atomic int64_t tunable_values[KT_COUNT];

void tunables_init(void);

/* The current value (slow paths). */
static inline int64_t tunable(enum tunable_id id)
{
	return (atomic_load_explicit(&tunable_values[id],
	    memory_order_relaxed) & ~TUNABLE_FIXED_BIT);
}

/*
 * The value of a start-only tunable, and from now on it is fixed: the
 * layer that reads it decides something for good with it (threads,
 * per-CPU mode, class table, placement).  The value returned is the one
 * kmem_tunable_get() reports from then on.
 */
static inline int64_t tunable_fixed(enum tunable_id id)
{
	int64_t v = atomic_load_explicit(&tunable_values[id],
	    memory_order_acquire);

	if (!(v & TUNABLE_FIXED_BIT)) {
		tunables_init();
		v = atomic_fetch_or(&tunable_values[id], TUNABLE_FIXED_BIT);
	}
	return (v & ~TUNABLE_FIXED_BIT);
}

/*
 * Set a value (range-checked); 0 or -1 with errno EINVAL/ERANGE.  An
 * internal hook (tests): it changes start-only tunables even once they
 * are fixed.  Runs the tunable's change hook.
 */
int tunable_set_id(enum tunable_id id, int64_t value);

/*
 * fn runs after every change of tunable id made by kmem_tunable_set()
 * or tunable_set_id(), in the thread that made it, with no libkmem lock
 * held: for a layer that must act at once on a new value (reap.c
 * re-arms aging when kmem_reap_interval changes).
 */
void tunable_set_hook(enum tunable_id id, void (*fn)(void));

/* Name of an enum tunable's value, or NULL. */
const char *tunable_value_name(enum tunable_id id, int64_t value);

/* Test hook: parse 'text' as if it were tunable 'id''s variable. */
int tunable_parse_env(enum tunable_id id, const char *text);

#endif /* KMEM_TUNABLES_H */
