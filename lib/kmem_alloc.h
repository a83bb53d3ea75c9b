/*
 * kmem_alloc.h - the size-class layer's internals, shared with the
 * malloc replacement (malloc.c).  See kmem_alloc.c.
 */
#ifndef KMEM_KMEM_ALLOC_H
#define KMEM_KMEM_ALLOC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "kmem_impl.h"

extern KMEM_HIDDEN size_t ka_max_class;             /* the largest class size */
extern _Atomic bool ka_ready;           /* classes are set up */

#define KA_SMALL_MAX    4096            /* fine spacing up to here */
#define KA_SMALL_SLOTS  (KA_SMALL_MAX / 8 + 1)
#define KA_STEPS        8               /* classes per doubling above it */
#define KA_MAX_SHIFT    24              /* kmem_alloc_max_class <= 16 MiB */
#define KA_BIG_SLOTS    ((KA_MAX_SHIFT - 12) * KA_STEPS)

struct ka_class {
	size_t size;
	_Atomic(kmem_cache_t *) cp;     /* NULL until first used */
	_Atomic bool nocache;   /* its cache cannot be created: spans */
	uint32_t objs_per_slab;
	size_t slab_size;
};

extern struct ka_class ka_cand[];       /* candidate classes */
extern uint16_t ka_small[KA_SMALL_SLOTS];       /* (size + 7) / 8 -> class */

/*
 * malloc's fast table: for size 1 .. KA_SMALL_MAX, ka_fast[(size + 7) / 8]
 * is the cache of the class serving size once that cache exists and runs
 * in rseq mode, else NULL (then ka_alloc() sets it up).  One load from
 * size to cache, no check of ka_ready: entries are set only after it.
 */
extern KMEM_HIDDEN _Atomic(kmem_cache_t *) ka_fast[KA_SMALL_SLOTS];

static inline kmem_cache_t *
ka_fast_cache(size_t size)
{
	return (atomic_load_explicit(&ka_fast[(size + 7) >> 3],
	    memory_order_acquire));
}

/*
 * Above KA_SMALL_MAX: a size's candidate among the geometric ones, eight
 * per doubling (the highest bit and the three below it), 0 for sizes up
 * to 4 KiB + 512.
 */
static inline unsigned int
ka_big_slot(size_t size)
{
	unsigned int k = 63 - (unsigned int)__builtin_clzll(size - 1);
	unsigned int sub = (unsigned int)((size - 1) >> (k - 3)) & 7;

	return ((k - 12) * KA_STEPS + sub);
}

/*
 * The same for KA_SMALL_MAX < size <= ka_max_class: ka_fast_big[slot] is
 * the cache of the class serving that candidate, once it runs in rseq mode.
 */
extern KMEM_HIDDEN _Atomic(kmem_cache_t *) ka_fast_big[KA_BIG_SLOTS];

static inline kmem_cache_t *
ka_fast_cache_big(size_t size)
{
	return (atomic_load_explicit(&ka_fast_big[ka_big_slot(size)],
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
/*
 * The same for a request made before libkmem starts (not nested): it
 * leaves the start-up's nested requests room.
 */
void *ka_boot_alloc_early(size_t size, size_t align);

/* The cache of the class that serves size (<= ka_max_class). */
kmem_cache_t *ka_cache_for(size_t size);
/*
 * The same if that cache exists already, else NULL: never creates it (so
 * never waits for ka_lock, which a nested request's thread may hold).
 */
kmem_cache_t *ka_cache_made(size_t size);

/* A block of its own from the arena, aligned to align (0: a page). */
void *ka_large_alloc(size_t size, size_t align, int kmflags);
void ka_free_large(void *buf);

/* The size asked for of the large block that starts at buf, or 0. */
size_t ka_large_size(const void *buf);

/*
 * For reports: the start of the large block that holds buf in the span
 * whose owner (vmem_owner) is 'owner', a large block's, or NULL if none
 * does; *freedp says whether the block was freed (its span kept for
 * reuse), so that buf is a double free or a pointer into a freed block.
 */
const void *ka_large_block(const void *owner, const void *buf,
    bool *freedp);

/*
 * Grow the large block buf (page-aligned, from ka_large_alloc) to size
 * bytes by moving its pages, not copying them; the new address, or NULL
 * (buf unchanged) when it cannot be moved and the caller must copy.
 */
void *ka_large_grow(void *buf, size_t size);
/*
 * Test hook: force, or not, moving blocks as on kernels before 6.17 (see
 * ka_large_move); not forced, as this kernel needs.
 */
void ka_large_move_split(bool force);

/* fork.c: the layer's locks, held across fork(). */
void ka_fork_lock(void);
void ka_fork_unlock(void);

enum ka_kind { KA_OBJECT, KA_LARGE, KA_BOOT, KA_FOREIGN };

/* What buf is; for an object its cache; its usable size. */
enum ka_kind ka_classify(const void *buf, kmem_cache_t **cpp,
    size_t *usable);

/*
 * Whether a KA_OBJECT buf is one its slab handed out (slab_obj_carved):
 * one past the last carved is a slab's memory, no block.  Emergency
 * objects are.
 */
bool ka_object_carved(const void *buf);

#endif /* KMEM_KMEM_ALLOC_H */
