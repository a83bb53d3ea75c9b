/*
 * malloc.c - libkmem_malloc.so: the C library's allocation functions on
 * kmem_alloc's size classes, for LD_PRELOAD or for linking.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * malloc takes a block from the class that fits (kmem_alloc.c), or a
 * span of its own above the largest class.  free needs no size: the
 * arena maps any address to its owner in O(1) (a slab, whose cache is the
 * class, or a large block's descriptor); an emergency object of a class
 * is found in its class's tree; a block of the bootstrap arena is never
 * reused.  A pointer that is none of these (an object of a cache the
 * program created with kmem_cache_create, say) is reported and left
 * alone.
 *
 * Alignment: every class object is 16-byte aligned (8-byte objects 8).
 * Larger alignments up to a page take the power-of-two class of
 * max(size, alignment), whose objects are aligned to it; beyond a page a
 * large block is aligned within its span.  (KMEM_DEBUG classes, whose
 * stride adds a redzone, are created with their power-of-two alignment
 * for this: kmem_alloc.c.)
 *
 * realloc keeps a block in place when its class (or its span) still fits;
 * a large block of at least MALLOC_MOVE_MIN that grows has its pages
 * moved to a bigger span (ka_large_grow), anything else is copied.
 *
 * malloc(0) returns a unique 1-byte block, realloc(p, 0) frees p and
 * returns NULL, as glibc does.  Requests that cannot be met (overflowing
 * calloc or reallocarray, sizes beyond the arena) return NULL with errno
 * ENOMEM and no report: programs probe with them.  So do requests made
 * once memory has run out (an RLIMIT_AS reached): class requests carry
 * KM_MAYFAIL, which waits for a class to grow but not for memory to be
 * freed, and large ones give up after the arena's retries.
 *
 * fork: libkmem's fork handlers (fork.c) are registered before anyone
 * else's, by __register_atfork below, the call behind pthread_atfork:
 * handlers run prepare in the reverse order of registration and child in
 * the order, so libkmem's prepare, which takes every libkmem lock, runs
 * after the others and its child handler, which releases them, before;
 * the others may allocate.  A library linked at start registers in its
 * constructor, which runs before this library's (a preloaded library is
 * initialised last).
 *
 * LOCKING: none of its own.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "cpu.h"
#include "kmem_alloc.h"
#include "mag_rseq.h"
#include "slab.h"
#include "vmem.h"

#define MALLOC_PAGE     ((size_t)1 << vmem_page_shift)
/* Class requests wait for growth but fail when memory runs out. */
#define MALLOC_KMFLAGS  (KM_SLEEP | KM_MAYFAIL)
/* Large blocks from this size grow by moving pages, not copying them. */
#define MALLOC_MOVE_MIN ((size_t)64 << 10)

/*
 * Until this library's constructor has run, the libraries it depends on
 * (libnuma's constructor allocates) may not be initialised, so libkmem
 * cannot start: requests are served from the bootstrap arena.
 */
static _Atomic bool malloc_started;

static void __attribute__((constructor))
malloc_start(void)
{
	atomic_store(&malloc_started, true);
	ka_init();
}

/*
 * A bootstrap block: before the constructor, from the part of the arena
 * that leaves libkmem's own start-up room (kmem_alloc.c).
 */
static void *
malloc_boot(size_t size, size_t align)
{
	return (ka_nested() ? ka_boot_alloc(size, align) :
	    ka_boot_alloc_early(size, align));
}

/*
 * A block of size bytes (> 0), zeroed if zero is KM_ZERO; NULL and ENOMEM
 * when it cannot be had.  Bootstrap blocks are never reused, so zero.
 */
static void *
malloc_block(size_t size, int zero)
{
	void *p;

	if (KMEM_LIKELY(size <= ka_max_class))
		return (ka_alloc(size, MALLOC_KMFLAGS | zero));
	if (!atomic_load(&malloc_started) || ka_nested())
		return (malloc_boot(size, 16));
	if (!atomic_load(&ka_ready)) {
		ka_init();
		if (size <= ka_max_class)
			return (ka_alloc(size, MALLOC_KMFLAGS | zero));
	}
	if ((p = ka_large_alloc(size, 0, MALLOC_KMFLAGS | zero)) == NULL)
		errno = ENOMEM;
	return (p);
}

/* A block of size bytes aligned to align (a power of two). */
static void *
malloc_aligned(size_t align, size_t size)
{
	void *p;

	if (size < 16)
		size = 16;              /* the 8-byte class is 8-aligned only */
	if (!atomic_load(&malloc_started) || ka_nested())
		return (malloc_boot(size, align));
	if (align <= 16)
		return (malloc_block(size, 0)); /* 16-aligned, as every block */
	ka_init();
	if (align <= MALLOC_PAGE && size <= ka_max_class) {
		size_t want = size > align ? size : align;
		size_t p2 = (size_t)1 << (64 - __builtin_clzll(want - 1));

		if (p2 <= ka_max_class)
			return (ka_alloc(p2, MALLOC_KMFLAGS));
	}
	if ((p = ka_large_alloc(size, align, MALLOC_KMFLAGS)) == NULL)
		errno = ENOMEM;
	return (p);
}

/*
 * The fast paths: a class whose cache is in rseq mode (ka_fast, or
 * ka_fast_big above 4 KiB), a round in this CPU's magazine
 * (kmem_cache_alloc's and kmem_cache_free's fast paths, without their
 * checks of the cache); anything else goes the long way.
 */
KMEM_EXPORT void *
malloc(size_t size)
{
	kmem_cache_t *cp;
	void *obj;

	if (KMEM_LIKELY(size - 1 < KA_SMALL_MAX))
		cp = ka_fast_cache(size);
	else if (size <= ka_max_class && size != 0)
		cp = ka_fast_cache_big(size);
	else
		cp = NULL;
	if (KMEM_LIKELY(cp != NULL)) {
		if (KMEM_LIKELY((obj = mag_rseq_pop(cache_mag_cpus(cp),
		    cpu_rseq_offset)) != NULL)) {
			KMEM_TSAN_ACQUIRE(obj);
			return (obj);
		}
		return (cache_alloc(cp, MALLOC_KMFLAGS));
	}
	return (malloc_block(size == 0 ? 1 : size, 0));
}

static __attribute__((noinline)) void free_slow(void *p);

KMEM_EXPORT void
free(void *p)
{
	struct kmem_slab *s = vmem_owner_hint(p);

	/* An object of the program's own caches goes to free_slow. */
	if (KMEM_LIKELY(s != NULL && slab_is_fast_class(s))) {
		kmem_cache_t *cp = s->cache;

		if (KMEM_LIKELY(slab_obj_carved(&cp->sl, s, p))) {
			KMEM_TSAN_RELEASE(p);
			if (KMEM_LIKELY(mag_rseq_push(cache_mag_cpus(cp),
			    cpu_rseq_offset, p)))
				return;
		}
	}
	free_slow(p);
}

/* As glibc's (and POSIX.1-2024's) free, it leaves errno as it was. */
static void
free_slow(void *p)
{
	kmem_cache_t *cp;
	size_t usable;
	int err = errno;

	if (p == NULL)
		return;
	switch (ka_classify(p, &cp, &usable)) {
	case KA_OBJECT:
		kmem_cache_free(cp, p);
		break;
	case KA_LARGE:
		ka_free_large(p);
		break;
	case KA_BOOT:
		break;
	case KA_FOREIGN:
		/* Reported; with KMEM_DEBUG, and the process aborts. */
		debug_bad_free("free", NULL, p);
		break;
	}
	errno = err;
}

KMEM_EXPORT void *
calloc(size_t n, size_t size)
{
	size_t total;
	void *p;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return (NULL);
	}
	/* A large block is a new span, zero untouched, or a cleared spare. */
	if (total > ka_max_class)
		return (malloc_block(total, KM_ZERO));
	if ((p = malloc(total)) != NULL)
		memset(p, 0, total);
	return (p);
}

KMEM_EXPORT void *
realloc(void *p, size_t size)
{
	kmem_cache_t *cp = NULL;
	size_t usable = 0;
	enum ka_kind kind;
	int err = errno;
	void *q;

	if (p == NULL)
		return (malloc(size));
	if (size == 0) {
		free(p);
		return (NULL);
	}
	kind = ka_classify(p, &cp, &usable);
	if (kind == KA_FOREIGN) {
		/* Reported as free() reports it; with KMEM_DEBUG, aborts. */
		debug_bad_free("realloc", NULL, p);
		errno = EINVAL;
		return (NULL);
	}
	/*
	 * KMEM_DEBUG: a freed block is not reallocated (kept in place, it
	 * would be handed out again with its new owner still using it).
	 */
	if (kind == KA_OBJECT && KMEM_UNLIKELY(DEBUG_CACHE(cp)) &&
	    !debug_realloc(cp, p)) {
		errno = EINVAL;
		return (NULL);
	}
	/*
	 * One past the last block its slab carved is no block: kept in
	 * place, the slab would carve it again for another (free() of it
	 * is refused too: kmem_cache_free).
	 */
	if (kind == KA_OBJECT && KMEM_UNLIKELY(!ka_object_carved(p))) {
		debug_bad_free("realloc", cp, p);
		errno = EINVAL;
		return (NULL);
	}
	/*
	 * In place when the block's class is the one size would get: one
	 * whose cache exists (cp's does).  Not created here: a realloc
	 * nested in a class's creation (see BOOTSTRAP in kmem_alloc.c)
	 * would wait for the lock its own thread holds.
	 */
	if (kind == KA_OBJECT && size <= ka_max_class &&
	    ka_cache_made(size) == cp)
		return (p);
	if (kind == KA_LARGE && size > ka_max_class && size <= usable &&
	    size > usable / 2)
		return (p);
	/* A block moved or copied leaves errno as it was, as malloc does. */
	if (kind == KA_LARGE && size > usable && usable >= MALLOC_MOVE_MIN &&
	    (q = ka_large_grow(p, size)) != NULL) {
		errno = err;
		return (q);
	}
	if ((q = malloc(size)) == NULL) {
		/*
		 * A block that shrinks keeps its place when no smaller one
		 * can be had (memory ran out): it holds the new size, and a
		 * program that trims a buffer does not expect NULL, which
		 * glibc never gives it.
		 */
		if (size <= usable) {
			errno = err;
			return (p);
		}
		return (NULL);          /* p is left as it was */
	}
	errno = err;            /* a failed ka_large_grow's is no error */
	memcpy(q, p, size < usable ? size : usable);
	free(p);
	return (q);
}

KMEM_EXPORT void *
reallocarray(void *p, size_t n, size_t size)
{
	size_t total;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return (NULL);
	}
	return (realloc(p, total));
}

/* It returns its error: errno stays as it was, as glibc's leaves it. */
KMEM_EXPORT int
posix_memalign(void **out, size_t align, size_t size)
{
	int err = errno;
	void *p;

	if (align < sizeof (void *) || (align & (align - 1)) != 0)
		return (EINVAL);
	p = malloc_aligned(align, size);
	errno = err;
	if (p == NULL)
		return (ENOMEM);
	*out = p;
	return (0);
}

KMEM_EXPORT void *
aligned_alloc(size_t align, size_t size)
{
	if (align == 0 || (align & (align - 1)) != 0) {
		errno = EINVAL;
		return (NULL);
	}
	return (malloc_aligned(align, size));
}

KMEM_EXPORT void *
memalign(size_t align, size_t size)
{
	/*
	 * As glibc: a non-power of two is rounded up to one; above 2^63 none
	 * is left (EINVAL), up to it the block cannot be had (ENOMEM).
	 */
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return (NULL);
	}
	if (align > 1 && (align & (align - 1)) != 0)
		align = (size_t)1 << (64 - __builtin_clzll(align - 1));
	return (malloc_aligned(align, size));
}

KMEM_EXPORT void *
valloc(size_t size)
{
	return (malloc_aligned(MALLOC_PAGE, size));
}

KMEM_EXPORT void *
pvalloc(size_t size)
{
	size_t rounded = KMEM_P2ROUNDUP(size == 0 ? 1 : size, MALLOC_PAGE);

	if (rounded < size) {
		errno = ENOMEM;
		return (NULL);
	}
	return (malloc_aligned(MALLOC_PAGE, rounded));
}

KMEM_EXPORT size_t
malloc_usable_size(void *p)
{
	kmem_cache_t *cp;
	size_t usable;
	enum ka_kind kind;

	if (p == NULL)
		return (0);
	kind = ka_classify(p, &cp, &usable);
	/* No block: foreign, or past the last its slab carved. */
	if (kind == KA_FOREIGN || (kind == KA_OBJECT && !ka_object_carved(p)))
		return (0);
	return (usable);
}

/*
 * Give back what is free: kmem_reap() empties the magazines and returns
 * empty slabs and the large spans kept for reuse.  1 when the arena's
 * allocated spans shrank, as glibc returns 1 when memory was released.
 * glibc's pad (heap kept at the top) has no counterpart here.
 */
KMEM_EXPORT int
malloc_trim(size_t pad)
{
	struct vmem_usage before, after;

	(void) pad;
	if (!atomic_load(&malloc_started))
		return (0);             /* only the bootstrap arena so far */
	vmem_usage(&before);
	kmem_reap();
	vmem_usage(&after);
	return (after.inuse < before.inuse);
}

/* Register libkmem's fork handlers first, then the caller's (see fork). */
extern int __register_atfork(void (*)(void), void (*)(void), void (*)(void),
    void *);

KMEM_EXPORT int
__register_atfork(void (*prepare)(void), void (*parent)(void),
    void (*child)(void), void *dso)
{
	static __typeof__(__register_atfork) *_Atomic next;
	__typeof__(__register_atfork) *fn = atomic_load(&next);

	if (fn == NULL) {
		fn = (__typeof__(__register_atfork) *)dlvsym(RTLD_NEXT,
		    "__register_atfork", "GLIBC_2.3.2");
		if (fn == NULL)
			return (ENOMEM);
		atomic_store(&next, fn);
	}
	fork_init();            /* calls this again for its own, first */
	return (fn(prepare, parent, child, dso));
}
