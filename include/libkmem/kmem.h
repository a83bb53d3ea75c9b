/*
 * libkmem/kmem.h - Solaris-style object caches for applications.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A cache hands out objects of one size.  Objects come back from it
 * already constructed: the constructor runs when an object enters the
 * cache's constructed set and the destructor when it leaves it, not on
 * every allocation, so expensive initialisation (mutexes, condition
 * variables, buffers) is paid once per object, not once per use.
 * See kmem_cache_create(3).
 */
#ifndef LIBKMEM_KMEM_H
#define LIBKMEM_KMEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kmem_cache kmem_cache_t;
typedef struct vmem vmem_t;
typedef int kmem_ctor_t(void *buf, void *priv, int kmflags);    /* 0 = ok */
typedef void kmem_dtor_t(void *buf, void *priv);
typedef void kmem_reclaim_t(void *priv);

/* Allocation flags (kmflags). */
#define KM_SLEEP        0x0000  /* may wait; never returns NULL */
#define KM_NOSLEEP      0x0001  /* never waits for memory; may return NULL */
#define KM_PUSHPAGE     0x0004  /* never NULL, never waits for growth */
#define KM_ZERO         0x1000  /* zero the memory (kmem_alloc family) */

/* Cache flags (cflags). */
#define KMC_NODEBUG     0x0001  /* never apply KMEM_DEBUG checks */
#define KMC_NOMAGAZINE  0x0002  /* no per-CPU magazine layer */
#define KMC_KVMEM       0x0004  /* large (>= 2 MiB) mmap-backed slabs */
#define KMC_RECLAIMABLE 0x0008  /* objects are freed by its reclaim callback */
#define KMC_NOTOUCH     0x0010  /* Solaris: free objects untouched (always) */
#define KMC_NOHASH      0x0020  /* Solaris: no buffer hash (never used) */
#define KMC_QCACHE      0x0040  /* Solaris: quantum cache (no effect here) */

/*
 * Debug flags: the value of the tunable kmem_debug (KMEM_DEBUG=guards,
 * audit,leaks,noabort; libkmem(7) DEBUGGING), applied to caches created
 * while it is set, except KMC_NODEBUG ones.
 */
#define KMEM_DEBUG_GUARDS       0x0001  /* redzones, free/new patterns */
#define KMEM_DEBUG_AUDIT        0x0002  /* last alloc/free stack, thread */
#define KMEM_DEBUG_LEAKS        0x0004  /* list objects out at destroy, exit */
#define KMEM_DEBUG_NOABORT      0x0008  /* report and go on; no abort() */

#define KMEM_CACHE_NAMELEN      32      /* bytes, with the terminating NUL */
#define KMEM_STATS_NODES        64      /* NUMA nodes in kmem_cache_stats */
#define KMEM_ALIGN              8       /* default and minimum alignment */

/* One NUMA node's share of a cache's slab layer (see nr_nodes). */
struct kmem_node_stats {
	uint64_t slab_total;    /* slabs on the node's lists */
	uint64_t slab_alloc;    /* of them, with at least one object out */
	uint64_t obj_total;     /* objects in them */
	uint64_t obj_alloc;     /* objects out of them */
};

/*
 * A cache's statistics.  Counters are totals since the cache was created;
 * *_max are high-water marks.
 */
struct kmem_cache_stats {
	char name[KMEM_CACHE_NAMELEN];
	uint64_t obj_size;      /* size asked for at creation */
	uint64_t obj_align;     /* alignment of every object */
	uint64_t slab_size;     /* bytes per slab */
	uint64_t objs_per_slab;
	uint64_t slab_total;    /* slabs */
	uint64_t slab_alloc;    /* slabs with at least one object out */
	uint64_t slab_max;
	uint64_t obj_total;     /* objects in all slabs, plus emergency ones */
	uint64_t obj_alloc;     /* objects out of the slab layer */
	uint64_t obj_max;
	uint64_t obj_emergency; /* emergency objects now */
	uint64_t obj_emergency_max;
	uint64_t obj_deadlock;  /* times growth was too slow */
	uint64_t alloc;         /* successful kmem_cache_alloc calls */
	uint64_t alloc_fail;    /* kmem_cache_alloc calls that returned NULL */
	uint64_t free;          /* kmem_cache_free calls */
	uint64_t ctor_calls;
	uint64_t dtor_calls;
	uint64_t obj_cached;    /* constructed objects kept for reuse */
	uint64_t mem_total;     /* bytes mapped for slabs and emergency objects */
	uint64_t mem_carved;    /* of mem_total, what objects were carved from */
	uint64_t mem_meta;      /* bytes of libkmem metadata describing them */
	/* magazine layer */
	uint64_t mag_size;      /* rounds per magazine; 0: KMC_NOMAGAZINE */
	uint64_t mag_alloc_hits;        /* allocations served by magazines */
	uint64_t mag_free_hits;         /* frees taken by magazines */
	uint64_t depot_full;    /* full magazines in the depot */
	uint64_t depot_empty;   /* empty magazines in the depot */
	uint64_t depot_contention;      /* refills/flushes that waited */
	uint64_t mag_flushes;   /* magazines' worth flushed to slabs */
	/* background work */
	uint64_t slab_grows;    /* slabs added by growth (inline or not) */
	uint64_t grow_waits;    /* allocations that waited for growth */
	/* NUMA placement */
	uint64_t nr_nodes;      /* slab lists: 1, or one per node */
	struct kmem_node_stats node[KMEM_STATS_NODES];  /* [0, nr_nodes) */
};

kmem_cache_t *kmem_cache_create(const char *name, size_t size, size_t align,
    kmem_ctor_t *ctor, kmem_dtor_t *dtor, kmem_reclaim_t *reclaim,
    void *priv, vmem_t *vmp, int cflags);
void kmem_cache_destroy(kmem_cache_t *cp);
void *kmem_cache_alloc(kmem_cache_t *cp, int kmflags);
void kmem_cache_free(kmem_cache_t *cp, void *buf);
void kmem_cache_reap_now(kmem_cache_t *cp);
int kmem_cache_stats(kmem_cache_t *cp, struct kmem_cache_stats *st);
void kmem_reap(void);

/*
 * General-purpose allocation on size-class caches (kmem_alloc(3)).
 * kmem_free and vmem_free must be given the size that was allocated.
 * vmem_* are for large buffers; any size works with either family.
 */
void *kmem_alloc(size_t size, int kmflags);
void *kmem_zalloc(size_t size, int kmflags);
void kmem_free(void *buf, size_t size);
void *vmem_alloc(size_t size, int kmflags);
void *vmem_zalloc(size_t size, int kmflags);
void vmem_free(void *buf, size_t size);

/* One kmem_alloc size class (zsmalloc's columns; see kmem_alloc(3)). */
struct kmem_class_stats {
	char name[KMEM_CACHE_NAMELEN];  /* its cache: kmem_alloc_<size> */
	uint64_t size;          /* largest request it serves (object size) */
	uint64_t almost_full;   /* slabs more than 3/4 used */
	uint64_t almost_empty;  /* slabs in use, at most 3/4 used */
	uint64_t obj_allocated; /* objects in its slabs */
	uint64_t obj_used;      /* objects out of them */
	uint64_t pages_used;    /* pages of its slabs */
	uint64_t pages_per_slab;
	uint64_t freeable;      /* pages of empty slabs (reaping frees them) */
	uint64_t pages_carved;  /* of pages_used, what objects were carved from */
};

/*
 * The number of size classes (merged classes count once), and class idx's
 * statistics; -1 with errno EINVAL for an index out of range.
 */
int kmem_alloc_class_count(void);
int kmem_alloc_class_stats(int idx, struct kmem_class_stats *st);

/*
 * Tunables (kmem_tunable_get(3), libkmem(7) TUNABLES): read and change
 * them by name, like the SPL's module parameters or jemalloc's mallctl.
 * Enum tunables take the index of their word (kmem_tunable.words).
 */
#define KMEM_TUNABLE_RUNTIME    0x0001  /* a change takes effect at run time */
#define KMEM_TUNABLE_NEWCACHES  0x0002  /* ... for caches created afterwards */
#define KMEM_TUNABLE_FIXED      0x0004  /* start-only and in use: set fails */

struct kmem_tunable {
	const char *name;       /* "kmem_cache_magazine_size" */
	int64_t value;          /* current value */
	int64_t dflt;           /* default */
	int64_t min, max;       /* inclusive range */
	int flags;              /* KMEM_TUNABLE_* */
	const char *const *words;       /* enum: words[value]; else NULL */
};

int kmem_tunable_get(const char *name, int64_t *value);
int kmem_tunable_set(const char *name, int64_t value);
int kmem_tunable_set_str(const char *name, const char *text);
int kmem_tunable_list(struct kmem_tunable *buf, int n);

#ifdef __cplusplus
}
#endif

#endif /* LIBKMEM_KMEM_H */
