/*
 * libkmem/mempool.h - pools of reserved elements, for allocations that
 * must make progress when memory is short.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A memory pool keeps min_nr elements in reserve.  mempool_alloc() gets
 * an element from the pool's allocator (alloc_fn) when it can, from the
 * reserve when it cannot, and with KM_SLEEP waits for an element to come
 * back rather than fail: a program whose every allocation in a path goes
 * through a pool, and which gives each element back in bounded time,
 * cannot deadlock for lack of memory in that path.  mempool_free() refills
 * the reserve before it hands elements back to the allocator.
 *
 * The interface follows Linux's <linux/mempool.h>, with libkmem's kmflags
 * (KM_SLEEP, KM_NOSLEEP, KM_PUSHPAGE) for gfp masks.  See mempool(3).
 */
#ifndef LIBKMEM_MEMPOOL_H
#define LIBKMEM_MEMPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "libkmem/kmem.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mempool mempool_t;
typedef void *mempool_alloc_t(int kmflags, void *pool_data);
typedef void mempool_free_t(void *element, void *pool_data);

/* A snapshot filled in by mempool_stats(). */
struct mempool_stats {
	uint64_t min_nr;        /* elements the reserve should hold */
	uint64_t curr_nr;       /* elements it holds now */
	uint64_t out;           /* elements handed out, not yet freed */
	uint64_t alloc;         /* mempool_alloc calls that got an element */
	uint64_t alloc_reserve; /* of them, served from the reserve */
	uint64_t alloc_fail;    /* mempool_alloc calls that returned NULL */
	uint64_t free;          /* mempool_free calls with an element */
	uint64_t free_reserve;  /* of them, kept to refill the reserve */
	uint64_t waits;         /* times a KM_SLEEP caller slept */
};

mempool_t *mempool_create(int min_nr, mempool_alloc_t *alloc_fn,
    mempool_free_t *free_fn, void *pool_data);
mempool_t *mempool_create_slab_pool(int min_nr, kmem_cache_t *cache);
mempool_t *mempool_create_kmalloc_pool(int min_nr, size_t size);
void mempool_destroy(mempool_t *pool);
int mempool_resize(mempool_t *pool, int new_min_nr);
void *mempool_alloc(mempool_t *pool, int kmflags);
void mempool_free(void *element, mempool_t *pool);
int mempool_stats(mempool_t *pool, struct mempool_stats *st);

/* The allocators of mempool_create_slab_pool: pool_data is the cache. */
void *mempool_alloc_slab(int kmflags, void *pool_data);
void mempool_free_slab(void *element, void *pool_data);

/*
 * The allocators of mempool_create_kmalloc_pool: kmem_alloc and kmem_free
 * of (size_t)(uintptr_t)pool_data bytes.
 */
void *mempool_kmalloc(int kmflags, void *pool_data);
void mempool_kfree(void *element, void *pool_data);

#ifdef __cplusplus
}
#endif

#endif /* LIBKMEM_MEMPOOL_H */
