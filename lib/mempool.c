/*
 * mempool.c - memory pools: a reserve of preallocated elements in front of
 * an allocator, so that allocations in a path that must make progress
 * (writing back, freeing memory) can always get an element eventually.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WHAT IT DOES
 *
 * A pool has an allocator (alloc_fn, free_fn, pool_data) and a reserve of
 * up to min_nr elements got from it.  mempool_alloc() asks the allocator
 * first, without letting it wait (KM_NOSLEEP): while the allocator works
 * the reserve is left alone.  When it fails, an element comes from the
 * reserve.  When the reserve is empty too, KM_NOSLEEP returns NULL,
 * KM_PUSHPAGE asks the allocator once more with KM_PUSHPAGE (libkmem's
 * caches then hand out an emergency object) and returns what that gives,
 * and KM_SLEEP sleeps until an element is freed back to the reserve or
 * kmem_mempool_retry_ms pass, then tries the allocator again, and so on:
 * KM_SLEEP never returns NULL.  mempool_free() puts an element back into
 * the reserve while the reserve holds fewer than min_nr, waking one
 * sleeper, and gives it to free_fn otherwise.
 * Filling the reserve (create, resize) calls alloc_fn with KM_SLEEP; the
 * stock allocators get KM_SLEEP | KM_MAYFAIL instead (mempool_fill_alloc),
 * so that a reserve that memory cannot hold fails rather than waits.
 * In a pool created under KMEM_DEBUG it first looks for the element in
 * the reserve (under mp_lock): one found there is freed twice, and is
 * reported (debug.c) and left alone rather than handed out twice.  So is
 * one that a debug cache holds as free (given to free_fn already): in the
 * reserve, the pool and the cache would both hand it out.
 *
 * PROGRESS
 *
 * Every element taken from the reserve leaves a deficit that the free of
 * some element will fill, because a free refills before it releases.  So
 * while the reserve is empty and callers sleep, elements are out, and
 * when their holders free them the sleepers get them.  A holder that
 * never frees is the caller's deadlock, as with any lock; the timed
 * sleep only makes memory that the allocator gets back (which nothing
 * signals) reach the sleepers too.
 *
 * MEMORY AND INVARIANTS
 *
 * Nothing here comes from malloc(): the pool is one mapping
 * (kmem_pages_alloc) holding the pool structure, its per-CPU counter
 * lines and room for the reserve's element pointers; when min_nr grows
 * past that room the pointers move to a mapping of their own, which only
 * grows.  Always 0 <= curr_nr <= cap and min_nr <= cap; curr_nr exceeds
 * min_nr only while mempool_resize() is shrinking the reserve.  The
 * reserve is elements[0 .. curr_nr), used as a stack.
 *
 * Counters: successful allocations and frees are counted per CPU (relaxed
 * atomics on the CPU's own line, summed when read), so a pool whose
 * allocator works shares no written cache line between CPUs beyond what
 * the allocator does.  Their difference is the number of elements out,
 * which mempool_destroy() checks.  The reserve's counters change under
 * the pool lock.
 *
 * LOCKING
 *
 * mp_lock protects the reserve (elements, cap, curr_nr, min_nr are
 * written only under it), mp_nwaiters and the reserve's counters.  It is
 * never held while alloc_fn or free_fn runs, nor while memory is mapped or
 * unmapped.  mp_cv (CLOCK_MONOTONIC, used with mp_lock) is signalled once
 * for every element added to the reserve while callers sleep.
 *
 * mempool_free() reads curr_nr and min_nr without the lock to skip it when
 * the reserve is full.  That cannot strand a sleeper: an element taken
 * from the reserve was handed out after its curr_nr decrement, so whoever
 * frees it reads that value or a later one (coherence); it reads
 * curr_nr >= min_nr only if the reserve was full again at some point
 * after the decrement, and then that deficit was filled by another free.
 * The unlocked test only chooses whether to take the lock; the decision
 * is made again under it.
 *
 * FORK.  Every pool is on a list (mempool_list, under mempool_list_lock)
 * so that fork() can take every pool's lock after all of libkmem's
 * (mempool_fork_lock): a child whose parent had a pool locked in another
 * thread would otherwise wait for it forever.  The child starts each
 * pool's condition variable afresh with no sleeper: the parent's
 * sleepers are not in the child.
 *
 * mempool_destroy() must not run at the same time as any other call on
 * the pool.  When elements are still out it releases the reserve, sets
 * min_nr to 0 and keeps the pool (reported once), so that the late frees
 * go straight to free_fn instead of into unmapped memory.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libkmem/mempool.h"
#include "cache.h"
#include "cpu.h"
#include "debug.h"
#include "kmem_alloc.h"
#include "kmem_impl.h"
#include "tunables.h"

#define MEMPOOL_MAGIC           0x6b6d656d706f6f6cULL   /* "kmempool" */
#define MEMPOOL_KEPT            0x6b6d656d6b657074ULL   /* "kmemkept" */
#define MEMPOOL_VALID_FLAGS     (KM_NOSLEEP | KM_PUSHPAGE)

/* One CPU's counters, on a line of its own. */
struct mempool_cpu {
	_Atomic uint64_t alloc;         /* elements handed out */
	_Atomic uint64_t free;          /* elements given back */
} KMEM_ALIGNED_LINE;

struct mempool {
	uint64_t mp_magic;
	mempool_alloc_t *mp_alloc;
	mempool_free_t *mp_free;
	void *mp_data;
	uint32_t mp_debug;              /* KMEM_DEBUG flags at creation */
	struct mempool_cpu *mp_cpu;     /* cpu_count() lines, in this mapping */
	size_t mp_map_len;              /* bytes of this mapping */
	void **mp_inline;               /* room for elements in this mapping */
	size_t mp_inline_cap;

	pthread_mutex_t mp_lock;
	pthread_cond_t mp_cv;
	_Atomic int mp_min_nr;          /* written under mp_lock */
	_Atomic int mp_curr_nr;         /* written under mp_lock */
	void **mp_elements;             /* mp_inline or a mapping of its own */
	size_t mp_cap;                  /* element pointers mp_elements holds */
	size_t mp_elements_len;         /* bytes of that mapping; 0: inline */
	unsigned int mp_nwaiters;       /* KM_SLEEP callers asleep */
	uint64_t mp_alloc_reserve;      /* the reserve's counters */
	uint64_t mp_free_reserve;
	uint64_t mp_waits;
	_Atomic uint64_t mp_alloc_fail;
	struct mempool *mp_next;        /* mempool_list, under its lock */
	struct mempool *mp_prev;
};

static pthread_mutex_t mempool_list_lock KMEM_FORK_LOCK =
    PTHREAD_MUTEX_INITIALIZER;
static struct mempool *mempool_list;

static size_t
mempool_page(void)
{
	return ((size_t)sysconf(_SC_PAGESIZE));
}

/*
 * pool is a live pool (or, with kept_ok, one that mempool_destroy() kept
 * because elements were out); otherwise report it for 'fn' in one line
 * (which says that 'element', if not NULL, was not freed) and set errno.
 */
static bool
mempool_ok_element(const struct mempool *mp, const char *fn, bool kept_ok,
    const void *element)
{
	char tail[64] = "";

	if (KMEM_LIKELY(mp != NULL && (mp->mp_magic == MEMPOOL_MAGIC ||
	    (kept_ok && mp->mp_magic == MEMPOOL_KEPT))))
		return (true);
	if (element != NULL)
		(void) snprintf(tail, sizeof (tail), "; element %p not freed",
		    element);
	if (mp == NULL)
		kmem_report("%s: NULL pool%s", fn, tail);
	else if (mp->mp_magic == MEMPOOL_KEPT)
		kmem_report("%s: pool %p was destroyed%s", fn,
		    (const void *)mp, tail);
	else
		kmem_report("%s: %p is not a mempool (destroyed or corrupt)%s",
		    fn, (const void *)mp, tail);
	errno = EINVAL;
	return (false);
}

static bool
mempool_ok(const struct mempool *mp, const char *fn, bool kept_ok)
{
	return (mempool_ok_element(mp, fn, kept_ok, NULL));
}

/*
 * Room for n element pointers more than the machine's memory: the array
 * is written as the reserve fills, so mmap would not say so and the OOM
 * killer would (as for taskq_create()'s TASKQ_PREPOPULATE).  Reports it
 * for 'fn' and sets errno to ENOMEM.
 */
static bool
mempool_too_many(const char *fn, const void *pool, int n)
{
	uint64_t phys = (uint64_t)sysconf(_SC_PHYS_PAGES) *
	    (uint64_t)mempool_page();

	if ((uint64_t)n * sizeof (void *) <= phys)
		return (false);
	if (pool != NULL)
		kmem_report("%s(%p, %d): the reserve's element pointers alone "
		    "take more than the machine's memory", fn, pool, n);
	else
		kmem_report("%s(%d): the reserve's element pointers alone take "
		    "more than the machine's memory", fn, n);
	errno = ENOMEM;
	return (true);
}

static inline int
mempool_curr(const struct mempool *mp)
{
	return (atomic_load_explicit(&mp->mp_curr_nr, memory_order_relaxed));
}

static inline int
mempool_min(const struct mempool *mp)
{
	return (atomic_load_explicit(&mp->mp_min_nr, memory_order_relaxed));
}

/* The reserve as a stack; mp_lock held (or the pool not yet shared). */
static void
mempool_push(struct mempool *mp, void *element)
{
	int n = mempool_curr(mp);

	KMEM_ASSERT((size_t)n < mp->mp_cap);
	mp->mp_elements[n] = element;
	atomic_store_explicit(&mp->mp_curr_nr, n + 1, memory_order_relaxed);
}

static void *
mempool_pop(struct mempool *mp)
{
	int n = mempool_curr(mp);

	KMEM_ASSERT(n > 0);
	atomic_store_explicit(&mp->mp_curr_nr, n - 1, memory_order_relaxed);
	return (mp->mp_elements[n - 1]);
}

static void
mempool_sum(const struct mempool *mp, uint64_t *alloc, uint64_t *freed)
{
	*alloc = *freed = 0;
	for (unsigned int c = 0; c < cpu_count(); c++) {
		*alloc += atomic_load_explicit(&mp->mp_cpu[c].alloc,
		    memory_order_relaxed);
		*freed += atomic_load_explicit(&mp->mp_cpu[c].free,
		    memory_order_relaxed);
	}
}

static void
mempool_unmap(struct mempool *mp)
{
	mp->mp_magic = 0;
	(void) pthread_cond_destroy(&mp->mp_cv);
	(void) pthread_mutex_destroy(&mp->mp_lock);
	if (mp->mp_elements_len != 0)
		kmem_pages_free(mp->mp_elements, mp->mp_elements_len);
	kmem_pages_free(mp, mp->mp_map_len);
}

/* mp_cv on CLOCK_MONOTONIC, with no sleeper. */
static void
mempool_cv_init(struct mempool *mp)
{
	pthread_condattr_t ca;

	(void) pthread_condattr_init(&ca);
	(void) pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	(void) pthread_cond_init(&mp->mp_cv, &ca);
	(void) pthread_condattr_destroy(&ca);
}

/*
 * An element for the reserve (create, resize).  The stock allocators get
 * KM_SLEEP | KM_MAYFAIL: they wait for their cache to grow, not for
 * memory, so that a reserve that memory cannot hold fails with ENOMEM.
 * With KM_SLEEP they returned NULL only for sizes the arena cannot map,
 * and otherwise waited for memory to be freed for ever.  Other
 * allocators get KM_SLEEP and decide for themselves.
 */
static void *
mempool_fill_alloc(struct mempool *mp)
{
	kmem_cache_t *cp = mp->mp_data;
	size_t size = (size_t)(uintptr_t)mp->mp_data;

	if (mp->mp_alloc == mempool_alloc_slab && cp != NULL &&
	    cp->magic == KMEM_CACHE_MAGIC)
		return (cache_alloc(cp, KM_MAYFAIL));
	if (mp->mp_alloc == mempool_kmalloc && size != 0)
		return (ka_alloc(size, KM_MAYFAIL | KA_RECORD_SIZE));
	return (mp->mp_alloc(KM_SLEEP, mp->mp_data));
}

/* ------------------------------------------------ creation */

static struct mempool *
mempool_map(int min_nr, mempool_alloc_t *alloc_fn, mempool_free_t *free_fn,
    void *pool_data)
{
	size_t hdr = KMEM_P2ROUNDUP(sizeof (struct mempool), KMEM_CACHE_LINE);
	size_t cpus = (size_t)cpu_count() * sizeof (struct mempool_cpu);
	size_t len = KMEM_P2ROUNDUP(hdr + cpus + (size_t)min_nr *
	    sizeof (void *), mempool_page());
	struct mempool *mp;

	if ((mp = kmem_pages_alloc(len)) == NULL)
		return (NULL);
	mp->mp_map_len = len;
	mp->mp_alloc = alloc_fn;
	mp->mp_free = free_fn;
	mp->mp_data = pool_data;
	mp->mp_debug = debug_flags_for(0);
	mp->mp_cpu = (struct mempool_cpu *)((char *)mp + hdr);
	mp->mp_inline = (void **)((char *)mp + hdr + cpus);
	mp->mp_inline_cap = (len - hdr - cpus) / sizeof (void *);
	mp->mp_elements = mp->mp_inline;
	mp->mp_cap = mp->mp_inline_cap;
	(void) pthread_mutex_init(&mp->mp_lock, NULL);
	mempool_cv_init(mp);
	atomic_store(&mp->mp_min_nr, min_nr);
	mp->mp_magic = MEMPOOL_MAGIC;
	return (mp);
}

static mempool_t *
mempool_create_common(const char *fn, int min_nr, mempool_alloc_t *alloc_fn,
    mempool_free_t *free_fn, void *pool_data)
{
	struct mempool *mp;

	if (min_nr <= 0 || alloc_fn == NULL || free_fn == NULL) {
		kmem_report("%s(%d): %s", fn, min_nr, min_nr <= 0 ?
		    "min_nr must be at least 1" : "NULL alloc_fn or free_fn");
		errno = EINVAL;
		return (NULL);
	}
	if (mempool_too_many(fn, NULL, min_nr))
		return (NULL);
	kmem_init();            /* cpu_count() */
	if ((mp = mempool_map(min_nr, alloc_fn, free_fn, pool_data)) == NULL) {
		errno = ENOMEM;
		return (NULL);
	}
	/* No other thread knows the pool yet: no lock. */
	while (mempool_curr(mp) < min_nr) {
		void *element = mempool_fill_alloc(mp);

		if (element == NULL) {
			while (mempool_curr(mp) > 0)
				free_fn(mempool_pop(mp), pool_data);
			mempool_unmap(mp);
			errno = ENOMEM;
			return (NULL);
		}
		mempool_push(mp, element);
	}
	pthread_mutex_lock(&mempool_list_lock);
	mp->mp_next = mempool_list;
	if (mempool_list != NULL)
		mempool_list->mp_prev = mp;
	mempool_list = mp;
	pthread_mutex_unlock(&mempool_list_lock);
	return (mp);
}

KMEM_EXPORT mempool_t *
mempool_create(int min_nr, mempool_alloc_t *alloc_fn, mempool_free_t *free_fn,
    void *pool_data)
{
	return (mempool_create_common("mempool_create", min_nr, alloc_fn,
	    free_fn, pool_data));
}

KMEM_EXPORT mempool_t *
mempool_create_slab_pool(int min_nr, kmem_cache_t *cache)
{
	if (cache == NULL || cache->magic != KMEM_CACHE_MAGIC) {
		kmem_report("mempool_create_slab_pool(%d, %p): %s", min_nr,
		    (void *)cache, cache == NULL ? "NULL cache" :
		    "not a kmem cache (destroyed or corrupt)");
		errno = EINVAL;
		return (NULL);
	}
	return (mempool_create_common("mempool_create_slab_pool", min_nr,
	    mempool_alloc_slab, mempool_free_slab, cache));
}

KMEM_EXPORT mempool_t *
mempool_create_kmalloc_pool(int min_nr, size_t size)
{
	if (size == 0) {
		kmem_report("mempool_create_kmalloc_pool(%d, 0): size must not "
		    "be 0", min_nr);
		errno = EINVAL;
		return (NULL);
	}
	return (mempool_create_common("mempool_create_kmalloc_pool", min_nr,
	    mempool_kmalloc, mempool_kfree, (void *)(uintptr_t)size));
}

/* ------------------------------------------------ allocation */

/*
 * The allocator has just failed: the reserve, then for KM_SLEEP sleep
 * until an element comes back or the retry interval passes, and try the
 * allocator again.
 */
static __attribute__((noinline)) void *
mempool_alloc_slow(struct mempool *mp, int kmflags)
{
	void *element;

	pthread_mutex_lock(&mp->mp_lock);
	for (;;) {
		struct timespec ts;
		int64_t until;
		int cancel;

		if (mempool_curr(mp) > 0) {
			element = mempool_pop(mp);
			mp->mp_alloc_reserve++;
			pthread_mutex_unlock(&mp->mp_lock);
			return (element);
		}
		if (kmflags & (KM_NOSLEEP | KM_PUSHPAGE))
			break;
		until = kmem_now_ns() + tunable(KT_MEMPOOL_RETRY_MS) * 1000000;
		ts.tv_sec = (time_t)(until / 1000000000);
		ts.tv_nsec = (long)(until % 1000000000);
		mp->mp_waits++;
		mp->mp_nwaiters++;
		/* A thread cancelled in the wait would die holding mp_lock. */
		cancel = kmem_cancel_off();
		while (mempool_curr(mp) == 0 && pthread_cond_timedwait(
		    &mp->mp_cv, &mp->mp_lock, &ts) == 0)
			;               /* until an element or the time is up */
		kmem_cancel_restore(cancel);
		mp->mp_nwaiters--;
		if (mempool_curr(mp) > 0)
			continue;       /* an element came back: take it */
		pthread_mutex_unlock(&mp->mp_lock);
		element = mp->mp_alloc(KM_NOSLEEP, mp->mp_data);
		if (element != NULL)
			return (element);
		pthread_mutex_lock(&mp->mp_lock);
	}
	pthread_mutex_unlock(&mp->mp_lock);
	if (!(kmflags & KM_NOSLEEP)) {
		element = mp->mp_alloc(KM_PUSHPAGE, mp->mp_data);
		if (element != NULL)
			return (element);
	}
	atomic_fetch_add_explicit(&mp->mp_alloc_fail, 1, memory_order_relaxed);
	errno = ENOMEM;
	return (NULL);
}

KMEM_EXPORT void *
mempool_alloc(mempool_t *pool, int kmflags)
{
	struct mempool *mp = pool;
	void *element;

	if (!mempool_ok(mp, "mempool_alloc", false))
		return (NULL);
	if (kmflags & ~MEMPOOL_VALID_FLAGS) {
		kmem_report("mempool_alloc(%p): unknown kmflags 0x%x (KM_ZERO "
		    "is not supported)", (void *)mp, (unsigned int)kmflags);
		errno = EINVAL;
		return (NULL);
	}
	element = mp->mp_alloc(KM_NOSLEEP, mp->mp_data);
	if (KMEM_UNLIKELY(element == NULL) &&
	    (element = mempool_alloc_slow(mp, kmflags)) == NULL)
		return (NULL);
	atomic_fetch_add_explicit(&mp->mp_cpu[cpu_current()].alloc, 1,
	    memory_order_relaxed);
	return (element);
}

/*
 * KMEM_DEBUG: whether element is in the reserve already (freed twice;
 * reported).  Kept there, it would be handed out twice.
 */
static bool
mempool_reserve_has(struct mempool *mp, const void *element)
{
	const char *cname = NULL;
	bool found = false;

	pthread_mutex_lock(&mp->mp_lock);
	for (int i = 0; i < mempool_curr(mp) && !found; i++)
		found = mp->mp_elements[i] == element;
	pthread_mutex_unlock(&mp->mp_lock);
	if (!found)
		return (false);
	if (mp->mp_alloc == mempool_alloc_slab)
		cname = ((const kmem_cache_t *)mp->mp_data)->name;
	debug_pool_double_free(mp->mp_debug, cname, element);
	return (true);
}

KMEM_EXPORT void
mempool_free(void *element, mempool_t *pool)
{
	struct mempool *mp = pool;

	if (element == NULL)
		return;
	if (!mempool_ok_element(mp, "mempool_free", true, element))
		return;
	if (KMEM_UNLIKELY(mp->mp_debug != 0) && (mempool_reserve_has(mp,
	    element) || !debug_pool_free_ok(element)))
		return;                 /* reported */
	atomic_fetch_add_explicit(&mp->mp_cpu[cpu_current()].free, 1,
	    memory_order_relaxed);
	if (KMEM_UNLIKELY(mempool_curr(mp) < mempool_min(mp))) {
		pthread_mutex_lock(&mp->mp_lock);
		if (KMEM_LIKELY(mempool_curr(mp) < mempool_min(mp))) {
			mempool_push(mp, element);
			mp->mp_free_reserve++;
			if (mp->mp_nwaiters > 0)
				pthread_cond_signal(&mp->mp_cv);
			pthread_mutex_unlock(&mp->mp_lock);
			return;
		}
		pthread_mutex_unlock(&mp->mp_lock);
	}
	mp->mp_free(element, mp->mp_data);
}

/* ------------------------------------------------ resize, destroy */

/*
 * Make room for n element pointers; mp_lock held on entry and on return
 * (dropped while mapping).  0, or -1 with errno ENOMEM.
 */
static int
mempool_room(struct mempool *mp, int n)
{
	size_t len = KMEM_P2ROUNDUP((size_t)n * sizeof (void *),
	    mempool_page());
	void **map;

	if ((size_t)n <= mp->mp_cap)
		return (0);
	pthread_mutex_unlock(&mp->mp_lock);
	map = kmem_pages_alloc(len);
	pthread_mutex_lock(&mp->mp_lock);
	if (map == NULL) {
		errno = ENOMEM;
		return (-1);
	}
	if ((size_t)n > mp->mp_cap) {
		void **old = mp->mp_elements;
		size_t old_len = mp->mp_elements_len;

		memcpy(map, old, (size_t)mempool_curr(mp) * sizeof (void *));
		mp->mp_elements = map;
		mp->mp_elements_len = len;
		mp->mp_cap = len / sizeof (void *);
		map = old;              /* unmap the old one below */
		len = old_len;          /* 0 when it was inline */
	}
	if (len != 0) {                 /* raced with a bigger resize, or old */
		pthread_mutex_unlock(&mp->mp_lock);
		kmem_pages_free(map, len);
		pthread_mutex_lock(&mp->mp_lock);
	}
	return (0);
}

KMEM_EXPORT int
mempool_resize(mempool_t *pool, int new_min_nr)
{
	struct mempool *mp = pool;

	if (!mempool_ok(mp, "mempool_resize", false))
		return (-1);
	if (new_min_nr <= 0) {
		kmem_report("mempool_resize(%p, %d): min_nr must be at least 1",
		    (void *)mp, new_min_nr);
		errno = EINVAL;
		return (-1);
	}
	if (mempool_too_many("mempool_resize", mp, new_min_nr))
		return (-1);
	pthread_mutex_lock(&mp->mp_lock);
	if (mempool_room(mp, new_min_nr) != 0) {
		pthread_mutex_unlock(&mp->mp_lock);
		return (-1);
	}
	atomic_store_explicit(&mp->mp_min_nr, new_min_nr, memory_order_relaxed);

	/* Shrinking: release what is above the new minimum. */
	while (mempool_curr(mp) > mempool_min(mp)) {
		void *element = mempool_pop(mp);

		pthread_mutex_unlock(&mp->mp_lock);
		mp->mp_free(element, mp->mp_data);
		pthread_mutex_lock(&mp->mp_lock);
	}

	/* Growing: fill up to it (frees may fill it at the same time). */
	while (mempool_curr(mp) < mempool_min(mp)) {
		void *element;

		pthread_mutex_unlock(&mp->mp_lock);
		element = mempool_fill_alloc(mp);
		if (element == NULL) {
			errno = ENOMEM;
			return (-1);
		}
		pthread_mutex_lock(&mp->mp_lock);
		if (mempool_curr(mp) >= mempool_min(mp)) {
			pthread_mutex_unlock(&mp->mp_lock);
			mp->mp_free(element, mp->mp_data);
			return (0);
		}
		mempool_push(mp, element);
		if (mp->mp_nwaiters > 0)
			pthread_cond_signal(&mp->mp_cv);
	}
	pthread_mutex_unlock(&mp->mp_lock);
	return (0);
}

KMEM_EXPORT void
mempool_destroy(mempool_t *pool)
{
	struct mempool *mp = pool;
	uint64_t alloc, freed;
	unsigned int waiters;

	if (mp == NULL)
		return;
	if (!mempool_ok(mp, "mempool_destroy", false))
		return;
	pthread_mutex_lock(&mp->mp_lock);
	atomic_store_explicit(&mp->mp_min_nr, 0, memory_order_relaxed);
	while (mempool_curr(mp) > 0) {
		void *element = mempool_pop(mp);

		pthread_mutex_unlock(&mp->mp_lock);
		mp->mp_free(element, mp->mp_data);
		pthread_mutex_lock(&mp->mp_lock);
	}
	waiters = mp->mp_nwaiters;
	pthread_mutex_unlock(&mp->mp_lock);
	mempool_sum(mp, &alloc, &freed);
	if (alloc != freed || waiters != 0) {
		/*
		 * The pool's memory must stay: a later mempool_free() of an
		 * element still out then goes to free_fn, not into unmapped
		 * memory.
		 */
		if (alloc < freed)      /* which are still out is unknown */
			kmem_report("mempool_destroy(%p): %llu more "
			    "mempool_free() calls than allocations (a double "
			    "free, or another pool's element); the pool is "
			    "kept", (void *)mp,
			    (unsigned long long)(freed - alloc));
		else
			kmem_report("mempool_destroy(%p): %llu element(s) "
			    "still allocated%s; the pool is kept for their "
			    "mempool_free()", (void *)mp,
			    (unsigned long long)(alloc - freed),
			    waiters != 0 ? " and callers waiting in "
			    "mempool_alloc()" : "");
		mp->mp_magic = MEMPOOL_KEPT;
		return;
	}
	pthread_mutex_lock(&mempool_list_lock);
	if (mp->mp_prev != NULL)
		mp->mp_prev->mp_next = mp->mp_next;
	else
		mempool_list = mp->mp_next;
	if (mp->mp_next != NULL)
		mp->mp_next->mp_prev = mp->mp_prev;
	pthread_mutex_unlock(&mempool_list_lock);
	mempool_unmap(mp);
}

/* ------------------------------------------------ fork */

void
mempool_fork_lock(void)
{
	pthread_mutex_lock(&mempool_list_lock);
	for (struct mempool *mp = mempool_list; mp != NULL; mp = mp->mp_next)
		pthread_mutex_lock(&mp->mp_lock);
}

void
mempool_fork_unlock(bool child)
{
	for (struct mempool *mp = mempool_list; mp != NULL; mp = mp->mp_next) {
		if (child) {
			mempool_cv_init(mp);
			mp->mp_nwaiters = 0;
		}
		pthread_mutex_unlock(&mp->mp_lock);
	}
	pthread_mutex_unlock(&mempool_list_lock);
}

KMEM_EXPORT int
mempool_stats(mempool_t *pool, struct mempool_stats *st)
{
	struct mempool *mp = pool;
	uint64_t alloc, freed;

	if (!mempool_ok(mp, "mempool_stats", true))
		return (-1);
	if (st == NULL) {
		kmem_report("mempool_stats(%p): NULL stats", (void *)mp);
		errno = EINVAL;
		return (-1);
	}
	memset(st, 0, sizeof (*st));
	mempool_sum(mp, &alloc, &freed);
	pthread_mutex_lock(&mp->mp_lock);
	st->min_nr = (uint64_t)mempool_min(mp);
	st->curr_nr = (uint64_t)mempool_curr(mp);
	st->alloc_reserve = mp->mp_alloc_reserve;
	st->free_reserve = mp->mp_free_reserve;
	st->waits = mp->mp_waits;
	pthread_mutex_unlock(&mp->mp_lock);
	st->alloc_fail = atomic_load_explicit(&mp->mp_alloc_fail,
	    memory_order_relaxed);
	st->alloc = alloc;
	st->free = freed;
	st->out = alloc > freed ? alloc - freed : 0;
	return (0);
}

/* ------------------------------------------------ stock allocators */

KMEM_EXPORT void *
mempool_alloc_slab(int kmflags, void *pool_data)
{
	return (kmem_cache_alloc(pool_data, kmflags));
}

KMEM_EXPORT void
mempool_free_slab(void *element, void *pool_data)
{
	kmem_cache_free(pool_data, element);
}

KMEM_EXPORT void *
mempool_kmalloc(int kmflags, void *pool_data)
{
	return (kmem_alloc((size_t)(uintptr_t)pool_data, kmflags));
}

KMEM_EXPORT void
mempool_kfree(void *element, void *pool_data)
{
	kmem_free(element, (size_t)(uintptr_t)pool_data);
}
