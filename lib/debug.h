/*
 * debug.h - KMEM_DEBUG: redzones, fill patterns, per-object state and
 * audit records in debug caches, and the reports of what they catch.
 * See debug.c.
 */
#ifndef KMEM_DEBUG_H
#define KMEM_DEBUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kmem_cache;

/* A cache's debug state, decided at kmem_cache_create and fixed. */
struct debug_cache {
	uint32_t flags;         /* KMEM_DEBUG_*; 0: not a debug cache */
	uint32_t frames;        /* stack frames kept per audit record */
	size_t tail_off;        /* struct debug_tail's offset in an object */
};

/* Whether cp is a debug cache (its checks run on its slow paths). */
#define DEBUG_CACHE(cp)         ((cp)->dbg.flags != 0)

/*
 * The debug flags a cache created now with cflags gets: kmem_debug's
 * checks, or 0 (KMC_NODEBUG, or none asked for).
 */
uint32_t debug_flags_for(int cflags);

/*
 * Set up cache cp's debug state ('flags' from debug_flags_for) for objects
 * of 'size' bytes aligned to 'align'; returns the object stride (chunk):
 * size rounded to align, or for a debug cache the buffer, its redzone and
 * debug tail rounded to align.  Primes backtrace() when audit is on.
 */
size_t debug_setup(struct kmem_cache *cp, uint32_t flags, size_t size,
    size_t align);

/* The free-list link's offset in a free object (slab_layer.link_off). */
size_t debug_link_off(const struct kmem_cache *cp);

/*
 * Objects leave the slab layer (unconstructed, about to be constructed):
 * check that a freed one was not written since, fill with the new pattern.
 */
void debug_take(struct kmem_cache *cp, void **objs, unsigned int n);

/* Objects go back to the slab layer (destructed): the freed pattern. */
void debug_untake(struct kmem_cache *cp, void **objs, unsigned int n);

/* obj is handed to the application: it is allocated now (audit). */
void debug_alloc(struct kmem_cache *cp, void *obj);

/*
 * The application frees buf to cp: false if the free must not go on (a
 * double free, a pointer that is not one of cp's objects: reported, and
 * the process aborted unless noabort).
 */
bool debug_free(struct kmem_cache *cp, void *buf);

/*
 * realloc(buf), buf one of debug cache cp's objects: false if buf is not
 * allocated (realloc would free it again: reported as a double free, and
 * the process aborted unless noabort).
 */
bool debug_realloc(struct kmem_cache *cp, void *buf);

/*
 * buf, handed to 'fn' for cache cp (NULL: free(), no cache named), is
 * none of cp's objects: say what it is (another cache's object, inside
 * an object, a block above the classes freed already or a pointer into
 * one, no cache's) and, if a debug cache is involved (for free(): if
 * kmem_debug is set), abort unless noabort.
 */
void debug_bad_free(const char *fn, struct kmem_cache *cp, const void *buf);

/* kmem_alloc: obj (of debug cache cp) was asked for with 'size' bytes. */
void debug_set_size(struct kmem_cache *cp, void *obj, size_t size);

/*
 * kmem_free(buf, size), where size's class is cp (NULL: above the largest
 * class): false when buf was allocated with another size (reported), a
 * block above the classes included, or, being a debug cache's object, is
 * not allocated (reported as debug_free would: a double free, whatever
 * the size); with kmem_debug set, also when buf is no block and no cache
 * would report it (a block above the classes freed already, a pointer
 * into one; with size above the classes, any), reported as
 * debug_bad_free reports it.
 */
bool debug_kmem_free(struct kmem_cache *cp, const void *buf, size_t size);

/*
 * mempool_free(element) of a pool created under KMEM_DEBUG ('flags'),
 * element being in the pool's reserve already: a double free (reported,
 * the process aborted unless noabort).  cname: the cache the pool's
 * elements come from, or NULL.
 */
void debug_pool_double_free(uint32_t flags, const char *cname,
    const void *element);

/*
 * mempool_free(element) of a pool created under KMEM_DEBUG: false when
 * element is a debug cache's buffer that the cache holds as not allocated
 * (freed to the pool's free_fn already, or never handed out): reported,
 * the process aborted unless noabort.  Kept in the reserve, it would be
 * handed out by the pool and by the cache.
 */
bool debug_pool_free_ok(const void *element);

/* kmem_cache_destroy with objects still out: list them (leaks). */
void debug_leaks(struct kmem_cache *cp);

#endif /* KMEM_DEBUG_H */
