/*
 * kmem_alloc.h - the size-class layer's internals, shared with the
 * malloc replacement (malloc.c).  See kmem_alloc.c.
 */
#ifndef KMEM_KMEM_ALLOC_H
#define KMEM_KMEM_ALLOC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "libkmem/kmem.h"

extern size_t ka_max_class;             /* the largest class size */
extern _Atomic bool ka_ready;           /* classes are set up */

#define KA_SMALL_MAX    4096            /* fine spacing up to here */
#define KA_SMALL_SLOTS  (KA_SMALL_MAX / 8 + 1)

struct ka_class {
	size_t size;
	_Atomic(kmem_cache_t *) cp;     /* NULL until first used */
	uint32_t objs_per_slab;
	size_t slab_size;
};

extern struct ka_class ka_cand[];       /* candidate classes */
extern uint16_t ka_small[KA_SMALL_SLOTS];       /* (size + 7) / 8 -> class */

/*
 * The cache serving size (1 .. KA_SMALL_MAX) if it exists already, else
 * NULL (then ka_alloc() sets it up).  For the malloc fast path.
 */
static inline kmem_cache_t *
ka_small_cache(size_t size)
{
	if (!atomic_load_explicit(&ka_ready, memory_order_acquire))
		return (NULL);
	return (atomic_load_explicit(&ka_cand[ka_small[(size + 7) >> 3]].cp,
	    memory_order_acquire));
}

/* The largest block the arena hands out (32 GiB); larger: ENOMEM. */
#define KA_LARGE_MAX    ((size_t)1 << 35)


void ka_init(void);

/*
 * Internal kmflags bit of ka_alloc: kmem_alloc's request, whose size a
 * debug class records (KMEM_DEBUG: kmem_free checks it).
 */
#define KA_RECORD_SIZE  0x40000000

/* size (> 0) from its class or the arena; KM_ZERO zeroes it. */
void *ka_alloc(size_t size, int kmflags);

/* Whether this thread is setting up classes (nested requests: bootstrap). */
bool ka_nested(void);

/* A block from the bootstrap arena, never reused (see kmem_alloc.c). */
void *ka_boot_alloc(size_t size, size_t align);

/* The cache of the class that serves size (<= ka_max_class). */
kmem_cache_t *ka_cache_for(size_t size);

/* A block of its own from the arena, aligned to align (0: a page). */
void *ka_large_alloc(size_t size, size_t align, int kmflags);
void ka_free_large(void *buf);

/*
 * Grow the large block buf (page-aligned, from ka_large_alloc) to size
 * bytes by moving its pages, not copying them; the new address, or NULL
 * (buf unchanged) when it cannot be moved and the caller must copy.
 */
void *ka_large_grow(void *buf, size_t size);

/* fork.c: the layer's locks, held across fork(). */
void ka_fork_lock(void);
void ka_fork_unlock(void);

enum ka_kind { KA_OBJECT, KA_LARGE, KA_BOOT, KA_FOREIGN };

/* What buf is; for an object its cache; its usable size. */
enum ka_kind ka_classify(const void *buf, kmem_cache_t **cpp,
    size_t *usable);

#endif /* KMEM_KMEM_ALLOC_H */
