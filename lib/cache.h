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
#include "kmem_impl.h"
#include "slab.h"

#define KMEM_CACHE_MAGIC        0x6b6d656d63616368ULL   /* "kmemcach" */
#define KMC_VALID_FLAGS         (KMC_NODEBUG | KMC_NOMAGAZINE | KMC_KVMEM | \
	KMC_RECLAIMABLE | KMC_NOTOUCH | KMC_NOHASH | KMC_QCACHE)
#define KM_VALID_FLAGS          (KM_NOSLEEP | KM_PUSHPAGE | KM_ZERO)

/* Per-CPU counters; summed when read. */
struct kmem_cpu_stats {
	_Atomic uint64_t alloc;
	_Atomic uint64_t alloc_fail;
	_Atomic uint64_t free;
} KMEM_ALIGNED_LINE;

/* Constructed objects not in use, until the magazine layer holds them. */
struct kmem_cons {
	pthread_mutex_t lock;
	void **objs;
	size_t n, cap, map_len;
};

struct kmem_cache {
	uint64_t magic;                 /* KMEM_CACHE_MAGIC while alive */
	char name[KMEM_CACHE_NAMELEN];
	size_t size;                    /* asked for */
	size_t align;
	int cflags;
	kmem_ctor_t *ctor;
	kmem_dtor_t *dtor;
	kmem_reclaim_t *reclaim;
	void *priv;

	struct slab_layer sl;
	struct emergency emerg;
	struct kmem_cons cons;

	struct kmem_cpu_stats *cpu;     /* cpu_count() entries */
	_Atomic uint64_t ctor_calls, dtor_calls;
	_Atomic uint64_t obj_max;       /* high-water of objects out */
	_Atomic uint64_t obj_deadlock;
	bool destroyed;                 /* destroy found objects still out */

	struct kmem_cache *next, *prev; /* registry */
	size_t map_len;                 /* this struct and its arrays */
};

void kmem_init(void);

#endif /* KMEM_CACHE_H */
