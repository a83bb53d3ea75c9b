/*
 * kmem_impl.h - small definitions shared by every libkmem source file:
 * branch hints, cache-line alignment, symbol export and internal
 * assertions.  Nothing here allocates or locks.
 */
#ifndef KMEM_IMPL_H
#define KMEM_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#include "libkmem/kmem.h"

#define KMEM_LIKELY(x)          __builtin_expect(!!(x), 1)
#define KMEM_UNLIKELY(x)        __builtin_expect(!!(x), 0)

/* Public entry points are exported; everything else stays hidden. */
#define KMEM_EXPORT             __attribute__((visibility("default")))
/*
 * On the declaration of an internal variable the fast paths read: the
 * compiler then addresses it directly instead of through the GOT
 * (-fvisibility=hidden covers definitions, not extern declarations).
 */
#define KMEM_HIDDEN             __attribute__((visibility("hidden")))

#define KMEM_CACHE_LINE         64
#define KMEM_MAX_NODES          KMEM_STATS_NODES /* NUMA nodes told apart */
#define KMEM_ALIGNED_LINE       __attribute__((aligned(KMEM_CACHE_LINE)))

#define KMEM_P2ROUNDUP(x, a)    (((x) + ((a) - 1)) & ~((uintptr_t)(a) - 1))
#define KMEM_IS_P2(x)           ((x) != 0 && ((x) & ((x) - 1)) == 0)
#define KMEM_MIN(a, b)          ((a) < (b) ? (a) : (b))
#define KMEM_MAX(a, b)          ((a) > (b) ? (a) : (b))

/* Smallest power of two >= x (x >= 1, x <= 2^63). */
static inline uint64_t kmem_p2roundup64(uint64_t x)
{
	return (x <= 1 ? 1 : (uint64_t)1 << (64 - __builtin_clzll(x - 1)));
}

/*
 * Internal bookkeeping memory comes straight from mmap, never from the C
 * heap: libkmem can itself be the process's malloc (libkmem_malloc.so), and
 * its own structures must not recurse into it.  The pages come zeroed.
 */
static inline void *kmem_pages_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return (p == MAP_FAILED ? NULL : p);
}

static inline void kmem_pages_free(void *p, size_t len)
{
	if (p != NULL)
		(void) munmap(p, len);
}

/*
 * The process-wide locks that fork() takes (fork.c), kept together: fork
 * write-protects every page of both processes, and each page the atfork
 * handlers write costs a page fault in the parent and another in the
 * child.  The linker keeps input sections of one name it does not know
 * (not .data.*) together, so these share a page or two instead of one
 * page each; a line each, so that they share no line.
 */
#define KMEM_FORK_LOCK  __attribute__((section("kmem_fork_locks"), \
	aligned(KMEM_CACHE_LINE)))

/*
 * libkmem's one-time start (kmem_cache.c): CPUs, tunables, the arena and
 * the fork() handlers.  Every entry point that can come first calls it.
 */
void kmem_init(void);

/* One line on stderr, "libkmem: <message>"; never allocates.  report.c */
void kmem_report(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Raise an atomic high-water mark to at least v (slow paths only). */
#include <stdatomic.h>
static inline void kmem_note_max(_Atomic uint64_t *max, uint64_t v)
{
	uint64_t cur = atomic_load_explicit(max, memory_order_relaxed);

	while (v > cur && !atomic_compare_exchange_weak_explicit(max, &cur, v,
	    memory_order_relaxed, memory_order_relaxed))
		;
}

#include <time.h>
/* Clock 'id' in nanoseconds. */
static inline int64_t kmem_clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
}

/* CLOCK_MONOTONIC in nanoseconds. */
static inline int64_t kmem_now_ns(void)
{
	return (kmem_clock_ns(CLOCK_MONOTONIC));
}

/*
 * An age stamp: CLOCK_MONOTONIC as of the last timer tick (COARSE), for
 * "became free at" stamps that are compared with kmem_now_ns() minus an
 * expiry of seconds.  It never runs ahead of kmem_now_ns() and lags it by
 * at most a tick (a few ms), so a stamp reads at most that much older; it
 * costs a fifth of a precise reading (6 ns against 27 on a VM), which a
 * large block freed and allocated again paid on every free.
 */
static inline int64_t kmem_stamp_ns(void)
{
	return (kmem_clock_ns(CLOCK_MONOTONIC_COARSE));
}

/*
 * ThreadSanitizer cannot see the ordering that restartable sequences give
 * (an object pushed into a per-CPU magazine by one thread and popped by
 * another on the same CPU).  In TSan builds these annotations state that
 * edge; elsewhere they are nothing.
 */
#ifdef KMEM_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define KMEM_TSAN_ACQUIRE(p)    __tsan_acquire((void *)(p))
#define KMEM_TSAN_RELEASE(p)    __tsan_release((void *)(p))
#else
#define KMEM_TSAN_ACQUIRE(p)    ((void)0)
#define KMEM_TSAN_RELEASE(p)    ((void)0)
#endif

/*
 * malloc, free and the kmem allocation calls are no cancellation points
 * (POSIX lists those that are): libkmem's own waits, sleeps and writes,
 * which are, run with cancellation off - a thread cancelled there would
 * leave a lock held or a growth unfinished.
 */
#include <pthread.h>

static inline int
kmem_cancel_off(void)
{
	int old;

	(void) pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	return (old);
}

static inline void
kmem_cancel_restore(int old)
{
	(void) pthread_setcancelstate(old, NULL);
}

#ifdef KMEM_INTERNAL_DEBUG
#include <stdio.h>
#include <stdlib.h>
#define KMEM_ASSERT(cond) do {                                          \
	if (!(cond)) {                                                  \
		fprintf(stderr, "libkmem: assertion failed: %s (%s:%d)\n", \
		    #cond, __FILE__, __LINE__);                         \
		abort();                                                \
	}                                                               \
} while (0)
#else
#define KMEM_ASSERT(cond)       ((void)0)
#endif

#endif /* KMEM_IMPL_H */
