/*
 * cache.h - struct kmem_cache, shared by the layers that make a cache:
 * the cache API (kmem_cache.c), the slab layer (slab.c) and emergency
 * objects (emergency.c).
 */
#ifndef KMEM_CACHE_H
#define KMEM_CACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "libkmem/kmem.h"
#include "emergency.h"
#include "grow.h"
#include "debug.h"
#include "kmem_impl.h"
#include "magazine.h"
#include "slab.h"

#define KMEM_CACHE_MAGIC        0x6b6d656d63616368ULL   /* "kmemcach" */
#define KMEM_CACHE_FAST_RSEQ    0x6b6d656d72736571ULL   /* "kmemrseq" */
#define KMC_VALID_FLAGS         (KMC_NODEBUG | KMC_NOMAGAZINE | KMC_KVMEM | \
	KMC_RECLAIMABLE | KMC_NOTOUCH | KMC_NOHASH | KMC_QCACHE)
/*
 * Internal cache flag (never accepted from applications): a kmem_alloc
 * size class, whose slabs are at least SLAB_CLASS_MIN bytes so that the
 * slab descriptors of its many small slabs do not add up (slab.c).
 */
#define KMC_SIZECLASS           0x40000000
/* kmem_cache_alloc(3)'s; KM_ZERO is for the kmem_alloc family only. */
#define KM_CACHE_VALID_FLAGS    (KM_NOSLEEP | KM_PUSHPAGE)
#define KM_VALID_FLAGS          (KM_CACHE_VALID_FLAGS | KM_ZERO)
/*
 * Internal kmflags bit (never accepted from applications, see
 * cache_alloc): as KM_SLEEP, it waits for the cache to grow, but where
 * KM_SLEEP would go on to wait for memory to be freed, it fails with
 * ENOMEM.  malloc's requests: a malloc must return NULL when memory runs
 * out (an RLIMIT_AS reached, say), not block for good.
 */
#define KM_MAYFAIL              0x20000000

/*
 * Per-CPU counters of what the magazine fast path does not count itself:
 * allocations and frees served by slow paths, and failures.  Summed when
 * read.
 */
struct kmem_cpu_stats {
	_Atomic uint64_t alloc;
	_Atomic uint64_t alloc_fail;
	_Atomic uint64_t free;
	uint64_t reap_seen;             /* aging: magazine ops last seen */
} KMEM_ALIGNED_LINE;

static inline void
stat_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

struct kmem_cache {
	/*
	 * Line 0 is what the fast path reads.  fastkey is
	 * KMEM_CACHE_FAST_RSEQ while the cache is alive and in rseq mode, so
	 * one compare admits an allocation.  free_mask is then all ones,
	 * else 0: kmem_cache_free's pointer check (cache_free_ok) masks the
	 * slab's bound with it, so that the same compare turns away a cache
	 * that the fast path must not push to.  The slab layer starts with
	 * the other constants of that check.  The fast path finds the
	 * per-CPU magazines without a load: cache_mag_cpus().
	 */
	uint64_t fastkey;
	uint64_t free_mask;
	struct slab_layer sl;
	uint64_t magic;                 /* KMEM_CACHE_MAGIC while alive */
	uint64_t id;                    /* creation number, never reused */
	char name[KMEM_CACHE_NAMELEN];
	size_t size;                    /* asked for */
	size_t align;
	int cflags;
	kmem_ctor_t *ctor;
	kmem_dtor_t *dtor;
	kmem_reclaim_t *reclaim;
	void *priv;

	struct mag_layer mag;
	struct emergency emerg;
	struct grow_state grow;
	struct debug_cache dbg;         /* KMEM_DEBUG state (debug.c) */

	struct kmem_cpu_stats *cpu;     /* cpu_count() entries */
	_Atomic uint64_t ctor_calls, dtor_calls;
	_Atomic uint64_t obj_max;       /* high-water of objects out */
	_Atomic uint64_t obj_deadlock;
	_Atomic bool destroyed;         /* destroy found objects still out */

	struct kmem_cache *next, *prev; /* registry */
	int refs;                       /* cache_walk() users (registry lock) */
	bool dying;                     /* being destroyed: walkers pass by */
	bool free_on_release;           /* the last holder frees it */
	size_t map_len;                 /* its run, from cache_lead bytes before */
};

/*
 * Where every cache's per-CPU magazine array (mag.cpu) starts, from the
 * cache: a constant, so that the fast paths add it to cp in the address
 * of their loads instead of loading a pointer or an offset.  On NUMA
 * machines whose arrays start on pages of their own, the cache structure
 * is placed in its run so that cp + CACHE_MAG_OFF is a page boundary
 * (cache_lead in kmem_cache.c).
 */
#define CACHE_MAG_OFF   KMEM_P2ROUNDUP(sizeof (struct kmem_cache), \
	KMEM_CACHE_LINE)

static inline struct mag_cpu *
cache_mag_cpus(struct kmem_cache *cp)
{
	return ((struct mag_cpu *)((char *)cp + CACHE_MAG_OFF));
}

/*
 * kmem_cache_alloc() for libkmem's own callers (kmem_alloc's classes):
 * cp is a live cache and kmflags valid, KM_MAYFAIL allowed; no checks.
 */
void *cache_alloc(kmem_cache_t *cp, int kmflags);

/* Sleep before the next try of one waiting for memory (tries from 0). */
void cache_backoff(unsigned int tries);

/*
 * kmem_cache_create(); sizeclass: a kmem_alloc class (KMC_SIZECLASS).
 * Its callers set cache_creating around it: see BOOTSTRAP in
 * kmem_alloc.c.
 */
kmem_cache_t *cache_create(const char *name, size_t size, size_t align,
    kmem_ctor_t *ctor, kmem_dtor_t *dtor, kmem_reclaim_t *reclaim,
    void *priv, vmem_t *vmp, int cflags, bool sizeclass);
extern __thread bool cache_creating;
void fork_init(void);           /* fork.c: the pthread_atfork handlers */

/*
 * Up to n constructed objects from the slab layer (growing it, or
 * emergency objects, as needed); 0 with errno set when none can be had.
 */
unsigned int cache_fill(struct kmem_cache *cp, void **objs, unsigned int n,
    int kmflags);

/* Destruct objects and give them back to their slabs or the system. */
void cache_release(struct kmem_cache *cp, void **objs, unsigned int n);

/*
 * Call fn for every live cache, holding a reference on it (so that it is
 * not destroyed meanwhile) but no lock.
 */
void cache_walk(void (*fn)(struct kmem_cache *, void *), void *arg);
/* Whether kmem_cache_destroy has been called on cp (a held cache). */
bool cache_dying(struct kmem_cache *cp);
/* Call cp's reclaim callback, unless cp has been destroyed meanwhile. */
void cache_reclaim(struct kmem_cache *cp);
/*
 * cp's grow task holds cp while it runs, as a walker does (false: cp is
 * being destroyed, nothing held), so that a destroy from a reclaim
 * callback it calls neither waits for it nor frees cp under it;
 * cache_grow_drop lets go (and frees cp if it was destroyed meanwhile).
 */
bool cache_grow_hold(struct kmem_cache *cp);
void cache_grow_drop(struct kmem_cache *cp);

/* fork.c: every cache's locks, held across fork(). */
void cache_fork_lock(void);
void cache_fork_unlock(bool child);

/*
 * fork.c: every mempool's lock (mempool.c), held across fork() after all
 * the others (a pool's lock is never held while another is taken).
 */
void mempool_fork_lock(void);
void mempool_fork_unlock(bool child);

#endif /* KMEM_CACHE_H */
