/*
 * grow.c - growing a cache off the allocation path.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * ASYNCHRONOUS GROWTH (as the SPL does).  When the slab layer has no free
 * object, the allocating thread does not map memory itself: it marks the
 * cache GROWING and dispatches one grow task to the shared kmem taskq
 * (reap.c), using an entry embedded in the cache so that the dispatch
 * cannot fail, and waits up to 100 ms for the task to finish.  If it does
 * not, the cache is marked DEADLOCKED and obj_deadlock counts it: the
 * caller, and every KM_SLEEP caller after it until the grow finishes,
 * gets an emergency object (emergency.c) instead of waiting.  KM_NOSLEEP
 * and KM_PUSHPAGE callers never wait.  The grow task adds a slab; if the
 * arena cannot map one it reaps every cache (memory pressure) and tries
 * once more.
 *
 * SMALL CACHES GROW INLINE.  While a cache's slabs hold less than 1 MiB
 * (grow_inline_limit), the allocating thread adds the slab itself,
 * synchronously, and no grow-ahead is dispatched: a short process (a
 * compiler pass, a shell) that allocates a little never wakes the kmem
 * taskq, so the taskq never has to create a worker thread for it.  A slab
 * of a small cache costs little to add (the arena usually has the span).
 * Growth is inline as well, whatever the cache's size, when waiting for
 * the taskq could not help: for a task of the kmem taskq itself (its grow
 * task may be queued behind it), for a thread that is creating a taskq
 * thread (taskq_in_spawn: pthread_create allocates) and when there is no
 * kmem taskq.  So an allocation never needs a new thread to progress.
 *
 * GROW-AHEAD.  So that allocations do not wait for growth at all, an
 * allocation from the slab layer that leaves fewer than 'low' free
 * objects dispatches the same task early, and the task keeps adding slabs
 * until 'high' objects are free (at most 64 MiB a run).  low is two refill
 * batches per CPU, but no more than 1 MiB of objects (and at least one
 * slab's worth); high is sixteen times low, but no more than 8 MiB of
 * objects (and at least twice low).  New slabs cost address space, not
 * memory, until their objects are used, so growing ahead this far is
 * cheap and keeps a fast allocator from catching up with the grower; the
 * byte caps keep caches of large objects from reserving hundreds of
 * megabytes that would show in their statistics and count against
 * kmem_memory_limit.  Waiters are woken as soon as the first slab is in,
 * and after every batch; a batch of slabs is mapped first and then linked
 * under one acquisition of the slab lock, which allocations' refills need
 * too.  When an allocation has to wait although the cache has slabs
 * (grow-ahead did not keep up: the grower was slow to be scheduled), the
 * cache doubles its watermarks, low up to 16 MiB of objects (so high up
 * to 32 MiB), so that only caches that grow fast reserve more.
 * kmem_cache_grow_ahead=0 turns grow-ahead off.  Under an address-space
 * limit (RLIMIT_AS, ulimit -v) both watermarks are held to a 64th of the
 * limit's bytes of objects (at least a slab's), and a batch is no more
 * slabs than reach high: slabs mapped ahead count against the limit
 * before they are used, and the program's own mappings, which libkmem
 * does not see fail, need the room (200 blocks of 128 KiB under a 100 MB
 * limit had up to 36 MiB mapped ahead, and the program could then map
 * 16 MiB where it could map 50 without grow-ahead).
 *
 * Growing ahead yields to memory pressure: once a pressure reap has
 * started (reap_pressure_gen moved) the task adds no more batches, and it
 * frees the cache's empty slabs before it ends, because the reap may have
 * swept this cache before the task's last batch was linked.  Otherwise a
 * grow task that was queued behind a busy taskq would map its slabs back
 * right after kmem_memory_limit had them freed.
 *
 * INVARIANTS.  At most one grow task per cache is queued or running:
 * 'growing' is set by whoever dispatches it and cleared by the task when
 * it finishes.  'gen' changes whenever the task has added slabs (or
 * failed to), so a waiter knows there is something to retry; the first
 * such change clears 'deadlocked'.
 *
 * LOCKING.  grow_state.lock protects everything but 'growing' and 'slabs'
 * (atomics, read without it to keep allocations cheap).  The task grows
 * the slab layer with no grow lock held.  The task is dispatched after
 * the grow lock is dropped: a dispatch may create a taskq thread, and
 * pthread_create() may allocate from this very cache.  grow_quiesce()
 * waits for a task in flight: destroy uses it so that a cache is never
 * freed under its grow task, reap_now so that no slab arrives after it
 * freed the empty ones.  On a thread of the kmem taskq it takes a task
 * still queued off the queue instead, as it may be queued behind the
 * caller with every other thread busy.
 */
#include "config.h"

#include <errno.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "reap.h"
#include "taskq_impl.h"
#include "tunables.h"

#define GROW_WAIT_NS            (100 * 1000000L)        /* 100 ms */
#define GROW_QUIESCE_POLL_NS    (10 * 1000000L)         /* 10 ms */
#define GROW_AHEAD_MAX_BYTES    ((size_t)64 << 20)      /* per task run */
#define GROW_BATCH              8       /* slabs linked per lock acquisition */
#define GROW_LOW_BYTES          ((uint64_t)1 << 20)     /* low, at first */
#define GROW_HIGH_BYTES         ((uint64_t)8 << 20)     /* high, at most */
#define GROW_LOW_MAX_BYTES      ((uint64_t)16 << 20)    /* adaptive cap */
#define GROW_INLINE_BYTES       ((uint64_t)1 << 20)     /* small caches */
#define GROW_AS_SHARE           64      /* of RLIMIT_AS, ahead at most */

static _Atomic bool grow_stalled;
static _Atomic uint64_t grow_inline_bytes = GROW_INLINE_BYTES;

void
grow_inline_limit(uint64_t bytes)
{
	atomic_store(&grow_inline_bytes, bytes);
}

/* Is cp still small enough to grow inline (see SMALL CACHES)? */
static inline bool
grow_small(const struct kmem_cache *cp)
{
	return (atomic_load_explicit(&cp->sl.slab_total,
	    memory_order_relaxed) * cp->sl.slab_size <
	    atomic_load_explicit(&grow_inline_bytes, memory_order_relaxed));
}

void
grow_stall(bool stall)
{
	atomic_store(&grow_stalled, stall);
}

/*
 * The free objects grow-ahead may keep under an address-space limit: a
 * GROW_AS_SHARE'th of it, but a slab's at least (see GROW-AHEAD); no cap
 * without one.
 */
static uint64_t
grow_as_cap(const struct kmem_cache *cp)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return (UINT64_MAX);
	return (KMEM_MAX((uint64_t)rl.rlim_cur / GROW_AS_SHARE /
	    cp->sl.chunk, (uint64_t)cp->sl.objs_per_slab));
}

/*
 * Set the watermarks for a given low (see GROW-AHEAD): high is 16 x low
 * up to 8 MiB of objects, but always at least 2 x low, so that a grow run
 * is always worth the wakeup that starts it; both held to grow_as_cap as
 * last read (g->as_cap: grow_wait calls this under g->lock, where the
 * limit is not read again).
 */
static void
grow_set_low(struct kmem_cache *cp, uint64_t low)
{
	struct grow_state *g = &cp->grow;
	uint64_t cap = atomic_load_explicit(&g->as_cap, memory_order_relaxed);
	uint64_t high;

	low = KMEM_MIN(low, cap);
	high = KMEM_MAX(2 * low, KMEM_MIN(16 * low,
	    GROW_HIGH_BYTES / cp->sl.chunk));
	atomic_store(&g->low, low);
	atomic_store(&g->high, KMEM_MAX(KMEM_MIN(high, cap), low));
}

/* A new condition variable, no waiters (also for fork's child). */
void
grow_cv_init(struct grow_state *g)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->cv, &ca);
	pthread_condattr_destroy(&ca);
	g->nwaiting = 0;
}

void
grow_init(struct kmem_cache *cp)
{
	struct grow_state *g = &cp->grow;
	uint64_t batch = cp->mag.mode == MAG_NONE ? 1 :
	    KMEM_MAX(cp->mag.magsize / 2, 1U);

	grow_cv_init(g);
	taskq_init_ent(&g->ent);
	atomic_store(&g->as_cap, grow_as_cap(cp));
	grow_set_low(cp, KMEM_MAX((uint64_t)cp->sl.objs_per_slab,
	    KMEM_MIN(2 * (uint64_t)cpu_count() * batch,
	    GROW_LOW_BYTES / cp->sl.chunk)));
}

static void grow_progress(struct grow_state *g, bool failed, bool done);

/* CLOCK_MONOTONIC 'ns' (under a second) from now, for a timed wait. */
static void
grow_deadline(struct timespec *ts, long ns)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_nsec += ns;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

void
grow_quiesce(struct kmem_cache *cp)
{
	struct grow_state *g = &cp->grow;
	taskq_t *self = taskq_of_curthread();
	int cancel = kmem_cancel_off();

	/*
	 * On a thread of the kmem taskq (a reclaim callback destroying its
	 * cache during a pressure reap) the task may be queued behind this
	 * very thread, every other one busy: it would never run.  Take it
	 * off the queue instead; one that is being dispatched or running is
	 * waited for, a little at a time.
	 */
	if (self == NULL || self != kmem_taskq())
		self = NULL;
	pthread_mutex_lock(g->lock);
	g->nwaiting++;
	while (atomic_load(&g->growing)) {
		struct timespec ts;

		if (self == NULL) {
			pthread_cond_wait(&g->cv, g->lock);
			continue;
		}
		pthread_mutex_unlock(g->lock);
		if (taskq_cancel_ent(self, &g->ent) == 0)
			grow_progress(g, true, true);
		pthread_mutex_lock(g->lock);
		grow_deadline(&ts, GROW_QUIESCE_POLL_NS);
		if (atomic_load(&g->growing))
			(void) pthread_cond_timedwait(&g->cv, g->lock, &ts);
	}
	g->nwaiting--;
	pthread_mutex_unlock(g->lock);
	kmem_cancel_restore(cancel);
}

/* Free objects in the cache's slabs (a snapshot). */
static uint64_t
grow_free_objects(struct kmem_cache *cp)
{
	uint64_t total = atomic_load_explicit(&cp->sl.slab_total,
	    memory_order_relaxed) * cp->sl.objs_per_slab;
	uint64_t inuse = atomic_load_explicit(&cp->sl.obj_inuse,
	    memory_order_relaxed);

	return (total > inuse ? total - inuse : 0);
}

/* Tell waiters the task made progress (or failed). */
static void
grow_progress(struct grow_state *g, bool failed, bool done)
{
	pthread_mutex_lock(g->lock);
	g->failed = failed;
	g->deadlocked = false;
	g->gen++;
	if (done)
		atomic_store(&g->growing, false);
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(g->lock);
}

static void
grow_task(void *arg)
{
	struct kmem_cache *cp = arg;
	struct grow_state *g = &cp->grow;
	size_t budget = KMEM_MAX(GROW_AHEAD_MAX_BYTES / cp->sl.slab_size, 1);
	uint64_t added, pgen;
	bool held = cache_grow_hold(cp);
	int node;

	while (atomic_load(&grow_stalled))
		usleep(1000);
	pthread_mutex_lock(g->lock);
	node = g->node;
	pgen = g->pgen;
	pthread_mutex_unlock(g->lock);

	added = slab_grow(cp, node, 1);
	if (added == 0) {
		/*
		 * mmap failed: reap and retry - unless a reap began since the
		 * task was asked for (by the KM_NOSLEEP allocation that asked,
		 * failing too, say: the callbacks were called twice).
		 */
		if (reap_pressure_gen() == pgen)
			reap_pressure();
		/* Unless a reclaim callback destroyed the cache meanwhile. */
		if (!cache_dying(cp))
			added = slab_grow(cp, node, 1);
	}
	pgen = reap_pressure_gen();
	if (added != 0) {
		if (tunable(KT_CACHE_GROW_AHEAD) != 0) {
			/* A limit set since the watermarks were: held to it. */
			uint64_t cap = grow_as_cap(cp), nfree;
			uint64_t high = KMEM_MIN(atomic_load_explicit(&g->high,
			    memory_order_relaxed), cap);
			unsigned int n;

			atomic_store_explicit(&g->as_cap, cap,
			    memory_order_relaxed);
			grow_progress(g, false, false); /* waiters go on */
			/* A batch is no more slabs than reach high. */
			while (added < budget &&
			    (nfree = grow_free_objects(cp)) < high &&
			    reap_pressure_gen() == pgen &&
			    (n = slab_grow(cp, node, (unsigned int)KMEM_MIN(
			    GROW_BATCH, (high - nfree + cp->sl.objs_per_slab -
			    1) / cp->sl.objs_per_slab))) != 0) {
				added += n;
				grow_progress(g, false, false);
			}
		}
		atomic_fetch_add(&g->slabs, added);
		/* A pressure reap may have swept this cache before them. */
		if (reap_pressure_gen() != pgen)
			slab_reap(cp, 0);
		reap_check_limit();
	}
	grow_progress(g, added == 0, true);
	if (held)
		cache_grow_drop(cp);
}

/*
 * Mark the grow task on its way unless it is; true when the caller must
 * then dispatch it (grow_dispatch) after dropping g->lock.
 */
static bool
grow_claim_locked(struct kmem_cache *cp, int node)
{
	struct grow_state *g = &cp->grow;

	if (atomic_load(&g->growing))
		return (false);
	atomic_store(&g->growing, true);
	g->node = node;
	g->pgen = reap_pressure_gen();
	return (true);
}

static void
grow_dispatch(struct kmem_cache *cp)
{
	taskq_dispatch_ent(kmem_taskq(), grow_task, cp, TQ_SLEEP,
	    &cp->grow.ent);
}

/*
 * Add one slab in the calling thread (see SMALL CACHES); like the task,
 * reap every cache and try once more when the arena cannot map it.
 */
static int
grow_inline(struct kmem_cache *cp, int node)
{
	uint64_t added = slab_grow(cp, node, 1);
	if (added == 0) {
		reap_pressure();
		added = slab_grow(cp, node, 1);
	}
	if (added == 0)
		return (-1);
	atomic_fetch_add(&cp->grow.slabs, added);
	reap_check_limit();
	return (0);
}

/* Would waiting for the kmem taskq be pointless for this caller? */
static bool
grow_must_inline(void)
{
	taskq_t *tq;

	/* taskq_in_spawn() first: kmem_taskq() may be creating the queue. */
	if (taskq_in_spawn())
		return (true);
	tq = kmem_taskq();
	return (tq == NULL || taskq_of_curthread() == tq);
}

int
grow_wait(struct kmem_cache *cp, int node, int kmflags)
{
	struct grow_state *g = &cp->grow;
	struct timespec deadline;
	uint64_t gen;
	bool dispatch;
	int rc = -1, cancel;

	if (grow_small(cp) || grow_must_inline())
		return (grow_inline(cp, node));
	pthread_mutex_lock(g->lock);
	dispatch = grow_claim_locked(cp, node);
	if ((kmflags & (KM_NOSLEEP | KM_PUSHPAGE)) || g->deadlocked) {
		pthread_mutex_unlock(g->lock);
		if (dispatch)
			grow_dispatch(cp);
		return (-1);
	}
	if (dispatch) {
		/* Dispatch unlocked; the task cannot finish before we wait. */
		gen = g->gen;
		pthread_mutex_unlock(g->lock);
		grow_dispatch(cp);
		pthread_mutex_lock(g->lock);
	} else {
		gen = g->gen;
	}
	grow_deadline(&deadline, GROW_WAIT_NS);
	atomic_fetch_add_explicit(&g->waits, 1, memory_order_relaxed);
	if (atomic_load_explicit(&cp->sl.slab_total, memory_order_relaxed) !=
	    0) {
		/*
		 * Grow-ahead was too late: start earlier from now on, up to
		 * GROW_LOW_MAX_BYTES of objects (the doubled value, not the
		 * old one, is held to it).
		 */
		uint64_t low = atomic_load(&g->low);
		uint64_t cap = KMEM_MAX(GROW_LOW_MAX_BYTES / cp->sl.chunk, 1);

		if (low < cap)
			grow_set_low(cp, KMEM_MIN(2 * low, cap));
	}
	cancel = kmem_cancel_off();     /* g->lock stays held otherwise */
	g->nwaiting++;
	while (g->gen == gen) {
		if (pthread_cond_timedwait(&g->cv, g->lock, &deadline) ==
		    ETIMEDOUT && g->gen == gen) {
			/* Growth is too slow for this caller. */
			g->deadlocked = true;
			atomic_fetch_add_explicit(&cp->obj_deadlock, 1,
			    memory_order_relaxed);
			break;
		}
	}
	g->nwaiting--;
	kmem_cancel_restore(cancel);
	if (g->gen == gen) {
		pthread_mutex_unlock(g->lock);
		return (-1);
	}
	rc = g->failed ? -1 : 0;
	pthread_mutex_unlock(g->lock);
	return (rc);
}

void
grow_ahead(struct kmem_cache *cp, int node)
{
	struct grow_state *g = &cp->grow;
	bool dispatch;

	if (atomic_load_explicit(&g->growing, memory_order_relaxed) ||
	    tunable(KT_CACHE_GROW_AHEAD) == 0 ||
	    grow_free_objects(cp) >= atomic_load_explicit(&g->low,
	    memory_order_relaxed) || grow_small(cp))
		return;
	if (grow_must_inline())
		return;         /* no help from the taskq: grow on demand */
	pthread_mutex_lock(g->lock);
	dispatch = grow_claim_locked(cp, node);
	pthread_mutex_unlock(g->lock);
	if (dispatch)
		grow_dispatch(cp);
}
