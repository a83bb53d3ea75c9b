/*
 * magazine.h - the per-CPU magazine layer.  See magazine.c.
 */
#ifndef KMEM_MAGAZINE_H
#define KMEM_MAGAZINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cpu.h"
#include "depot.h"
#include "kmem_impl.h"
#include "mag_rseq.h"

struct kmem_cache;

/* How a cache's per-CPU state is protected. */
enum mag_mode {
	MAG_NONE,       /* KMC_NOMAGAZINE: straight to the slab layer */
	MAG_RSEQ,       /* restartable sequences (fast path lock-free) */
	MAG_LOCK,       /* a mutex per CPU */
};

struct mag {
	_Atomic uint64_t base;  /* while loaded: rounds = frees - allocs + base */
	void *rounds[];
};

/*
 * One CPU's magazines.  Line 0 is what the fast path touches; it changes
 * only in rseq critical sections on this CPU (or under 'lock' in lock
 * mode).  Line 1 is the slow path's, always under 'lock'.
 */
struct mag_cpu {
	_Atomic(struct mag *) loaded;
	_Atomic uint64_t allocs;        /* rounds taken from magazines here */
	_Atomic uint64_t frees;         /* rounds put into magazines here */
	_Atomic uint64_t cap;           /* magsize; 0 while a flush runs */
	char pad0[KMEM_CACHE_LINE - 32];
	pthread_mutex_t *lock;          /* meta_mutex_alloc */
	struct mag *prev;
	uint64_t prounds;
	bool used;                      /* a slow path ran here (see IDLE) */
} KMEM_ALIGNED_LINE;

struct mag_layer {
	enum mag_mode mode;
	uint32_t magsize;               /* rounds per magazine */
	struct mag_cpu *cpu;            /* cpu_count() entries */
	struct depot depot;
	char *mags;                     /* every magazine of the cache */
	size_t mag_bytes;
	size_t pair_bytes;              /* a CPU's two magazines (a page
					   multiple on NUMA machines) */
	_Atomic uint64_t flushed;       /* rounds flushed to slabs, from
					   CPUs and the depot */
};

/* Rounds per magazine for objects of 'chunk' bytes (tunable aware). */
uint32_t mag_size_for(size_t chunk);

/* The mode new caches use: rseq where the system supports it. */
enum mag_mode mag_default_mode(void);
void mag_set_default_mode(enum mag_mode mode);  /* test hook */

/*
 * Bytes of the magazines of a cache with 'magsize' rounds per magazine:
 * cache_create reserves them after the cache structure, so that the
 * first CPU's first magazine shares the structure's last page (a cache
 * that is used costs one page less).  On NUMA machines 'region' must be
 * page-aligned: each CPU's pair has pages of its own there (mag_layout),
 * the first CPU's included.
 */
size_t mag_region_len(uint32_t magsize);

/* Set up cp's magazine layer in 'region' (zeroed; unused for MAG_NONE). */
int mag_layer_init(struct kmem_cache *cp, enum mag_mode mode,
    uint32_t magsize, char *region);
void mag_layer_fini(struct kmem_cache *cp);

/* Slow paths (and every path in lock mode).  NULL: failed, errno set. */
void *mag_alloc(struct kmem_cache *cp, int kmflags);
void mag_free(struct kmem_cache *cp, void *obj);

/* Destruct every cached round of every CPU and of the depot. */
void mag_flush_all(struct kmem_cache *cp);

/* Destruct one CPU's cached rounds (from any thread). */
void mag_flush_cpu(struct kmem_cache *cp, unsigned int cpu);

/* Destruct the rounds of up to 'limit' full magazines of the depot. */
void mag_depot_flush(struct kmem_cache *cp, unsigned int limit);

/*
 * Around work whose objects or slabs are in this thread's hands only
 * until it ends (a flush, a refill, slab_grow): fork() waits for it, a
 * second at most.  Nests.  See FLUSHES in magazine.c.
 */
void mag_flush_enter(void);
void mag_flush_exit(void);

/*
 * fork.c: wait for the flushes in progress (their rounds are in no
 * magazine until they are back in the slab layer) and keep new ones out
 * across fork(); see FLUSHES in magazine.c.
 */
void mag_fork_lock(void);
void mag_fork_unlock(bool child);

/* Operations served by one CPU's magazines so far (idle detection). */
uint64_t mag_cpu_ops(struct kmem_cache *cp, unsigned int cpu);

struct mag_counts {
	uint64_t allocs, frees;         /* served by magazines */
	uint64_t cached;                /* rounds in magazines now */
	uint64_t depot_full, depot_empty;
};
void mag_counts(struct kmem_cache *cp, struct mag_counts *c);

/* ------------------------------------------------------------ fast path */

#if MAG_RSEQ_SUPPORTED
static inline struct mag_cpu *
mag_this_cpu(struct mag_layer *ml, uint32_t *cpup)
{
	uint32_t cpu = *(volatile uint32_t *)((char *)
	    __builtin_thread_pointer() + cpu_rseq_offset);   /* cpu_id_start */

	*cpup = cpu;
	return (&ml->cpu[cpu]);
}
#endif

#endif /* KMEM_MAGAZINE_H */
