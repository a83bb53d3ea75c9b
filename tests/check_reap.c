/*
 * check_reap.c - background work: reclaim callbacks and reap_now,
 * periodic aging, RSS after a burst, asynchronous growth and its deadlock
 * path, grow-ahead, small caches growing inline (a small process starts
 * no taskq worker and arms no PSI trigger), memory pressure (mmap
 * failure, the memory limit, PSI, a program that closes and reuses the
 * trigger's descriptor), kmem_reap(), the kmem taskq's thread stacks,
 * aging, PSI and statistics started while no task entry can be had.
 */
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libkmem/kmem.h"
#include "libkmem/taskq.h"
#include "cache.h"
#include "grow.h"
#include "kmem_alloc.h"
#include "reap.h"
#include "stats.h"
#include "tunables.h"
#include "vmem.h"
#include "testutil.h"

static struct kmem_cache_stats
stats_of(kmem_cache_t *cp)
{
	struct kmem_cache_stats st;

	ck_assert_int_eq(kmem_cache_stats(cp, &st), 0);
	return (st);
}

/*
 * Reap intervals are counted in aging passes, not in wall time, so that a
 * loaded machine (the reap thread waiting for a CPU) does not fail a test
 * about reaping.  Polls until done(arg) holds, or fails once 'passes'
 * whole passes have run since the call and it still does not (the pass
 * under way at the call does not count).  Half a minute bounds it in case
 * the reap thread never runs at all.  The time it took goes to *took.
 */
static bool
wait_passes(bool (*done)(void *), void *arg, int passes, double *took)
{
	uint64_t p0 = reap_passes();
	double t0 = test_now();

	for (;;) {
		bool last = reap_passes() > p0 + (uint64_t)passes;

		*took = test_now() - t0;
		if (done(arg))
			return (true);
		if (last || *took > 30)
			return (false);
		usleep(20000);
	}
}

static bool
no_slabs(void *cp)
{
	return (stats_of(cp).slab_total == 0);
}

/* ------------------------------------------------ reclaim and reap_now */

/*
 * The test's own objects, which the reclaim callback frees 32 at a time.
 * The callback may run on the kmem taskq: the pile has a lock.
 */
struct pile {
	pthread_mutex_t lock;
	kmem_cache_t *cp;
	void *objs[4096];
	int n;
	_Atomic int calls;
	int per_call;
};

static void
pile_reclaim(void *priv)
{
	struct pile *p = priv;

	atomic_fetch_add(&p->calls, 1);
	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < p->per_call && p->n > 0; i++)
		kmem_cache_free(p->cp, p->objs[--p->n]);
	pthread_mutex_unlock(&p->lock);
}

static void
pile_fill(struct pile *p, int n)
{
	pthread_mutex_lock(&p->lock);
	for (p->n = 0; p->n < n; p->n++)
		p->objs[p->n] = kmem_cache_alloc(p->cp, KM_SLEEP);
	pthread_mutex_unlock(&p->lock);
}

static int
pile_count(struct pile *p)
{
	int n;

	pthread_mutex_lock(&p->lock);
	n = p->n;
	pthread_mutex_unlock(&p->lock);
	return (n);
}

static void
pile_empty(struct pile *p)
{
	pthread_mutex_lock(&p->lock);
	while (p->n > 0)
		kmem_cache_free(p->cp, p->objs[--p->n]);
	pthread_mutex_unlock(&p->lock);
}

START_TEST(test_reclaim_reap_now_empties)
{
	static struct pile p = { .lock = PTHREAD_MUTEX_INITIALIZER,
	    .per_call = 32 };
	int calls = 0;

	p.cp = kmem_cache_create("pile", 512, 0, NULL, NULL, pile_reclaim,
	    &p, NULL, KMC_RECLAIMABLE);
	pile_fill(&p, 4096);
	while (stats_of(p.cp).slab_total != 0 && calls < 1000) {
		kmem_cache_reap_now(p.cp);
		calls++;
	}
	ck_assert_int_eq(pile_count(&p), 0);
	ck_assert_int_eq(calls, 4096 / 32);     /* 32 per call, as asked */
	ck_assert_int_eq(atomic_load(&p.calls), calls);
	ck_assert_uint_eq(stats_of(p.cp).obj_alloc, 0);
	kmem_cache_destroy(p.cp);
}
END_TEST

static _Atomic int reap_all_calls[3];

static void
reclaim0(void *p)
{
	(void) p;
	atomic_fetch_add(&reap_all_calls[0], 1);
}

static void
reclaim1(void *p)
{
	(void) p;
	atomic_fetch_add(&reap_all_calls[1], 1);
}

START_TEST(test_kmem_reap_every_cache)
{
	kmem_cache_t *a = kmem_cache_create("ra", 64, 0, NULL, NULL,
	    reclaim0, NULL, NULL, 0);
	kmem_cache_t *b = kmem_cache_create("rb", 4000, 0, NULL, NULL,
	    reclaim1, NULL, NULL, 0);

	for (int i = 0; i < 1000; i++) {
		kmem_cache_free(a, kmem_cache_alloc(a, KM_SLEEP));
		kmem_cache_free(b, kmem_cache_alloc(b, KM_SLEEP));
	}
	ck_assert_uint_gt(stats_of(a).slab_total, 0);
	kmem_reap();
	ck_assert_int_eq(atomic_load(&reap_all_calls[0]), 1);
	ck_assert_int_eq(atomic_load(&reap_all_calls[1]), 1);
	ck_assert_uint_eq(stats_of(a).slab_total, 0);
	ck_assert_uint_eq(stats_of(b).slab_total, 0);
	kmem_cache_destroy(a);
	kmem_cache_destroy(b);
}
END_TEST

/*
 * A reclaim callback that reaps its own cache (kmem_cache_reap_now) or
 * every cache (kmem_reap) is not called again from inside itself: it
 * recursed until the stack overflowed.
 */
static kmem_cache_t *self_reap_cp;
static _Atomic int self_reap_depth, self_reap_calls;

static void
reclaim_self_reap(void *p)
{
	(void) p;
	atomic_fetch_add(&self_reap_calls, 1);
	if (atomic_fetch_add(&self_reap_depth, 1) < 8) {
		kmem_cache_reap_now(self_reap_cp);
		kmem_reap();
	}
	atomic_fetch_sub(&self_reap_depth, 1);
}

START_TEST(test_reclaim_reaps_itself)
{
	int calls;

	self_reap_cp = kmem_cache_create("rself", 64, 0, NULL, NULL,
	    reclaim_self_reap, NULL, NULL, 0);
	kmem_cache_free(self_reap_cp, kmem_cache_alloc(self_reap_cp,
	    KM_SLEEP));
	kmem_cache_reap_now(self_reap_cp);
	calls = atomic_load(&self_reap_calls);
	ck_assert_int_eq(calls, 1);
	kmem_reap();
	calls = atomic_load(&self_reap_calls);
	ck_assert_int_eq(calls, 2);
	ck_assert_uint_eq(stats_of(self_reap_cp).slab_total, 0);
	kmem_cache_destroy(self_reap_cp);
}
END_TEST

/*
 * Reaping caches that used one object each, and reading their
 * statistics, faults in no page they never used: the refill batch's
 * objects that the program never took go back to their slab unwritten
 * (slab.c), a CPU that never used a cache is skipped without a look at
 * its magazines (magazine.c), and depot rings nobody put into are not
 * read (depot.c).  Each such cache took 5 or 6 page faults to reap, and
 * 70 us, on a VM whose kernel faults in a page for a read.
 */
START_TEST(test_reap_faults_nothing_unused)
{
	enum { N = 200 };
	static kmem_cache_t *c[N];
	static uint64_t slabs[N];
	static int rc[N];
	struct kmem_cache_stats st;
	long before, faults;

	for (int i = 0; i < N; i++) {
		char name[KMEM_CACHE_NAMELEN];

		snprintf(name, sizeof (name), "unused%d", i);
		c[i] = kmem_cache_create(name, 64 + (size_t)(i % 8) * 16, 0,
		    NULL, NULL, NULL, NULL, NULL, 0);
		ck_assert_ptr_nonnull(c[i]);
		kmem_cache_free(c[i], kmem_cache_alloc(c[i], KM_SLEEP));
	}
	kmem_reap();            /* whatever else there is, once */
	for (int i = 0; i < N; i++)
		kmem_cache_free(c[i], kmem_cache_alloc(c[i], KM_SLEEP));
	/*
	 * This thread's faults only, and no ck_assert in the window: each
	 * passing one sends its line to the parent through a malloc'd
	 * buffer, which under ASan (quarantine) is new memory each time (78
	 * faults seen in CI).
	 */
	before = test_thread_minor_faults();
	kmem_reap();
	for (int i = 0; i < N; i++) {
		rc[i] = kmem_cache_stats(c[i], &st);
		slabs[i] = st.slab_total;
	}
	faults = test_thread_minor_faults() - before;
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(rc[i], 0);
		ck_assert_uint_eq(slabs[i], 0);
	}
#ifndef KMEM_TSAN
	/*
	 * Not under TSan: its own memory (shadow, per-thread traces) faults
	 * pages in as threads run, the task queue's too (82 and 128 faults
	 * seen in CI on a loaded machine; 0 or 1 in a plain build).
	 */
	ck_assert_msg(faults < N / 4, "reaping %d caches that used one "
	    "object each faulted %ld pages in", N, faults);
#else
	(void) faults;
#endif
	for (int i = 0; i < N; i++)
		kmem_cache_destroy(c[i]);
}
END_TEST

/*
 * A reclaim callback that destroys its own cache, from kmem_reap() (a
 * walk of every cache) and from kmem_cache_reap_now(): the call returns
 * (it waited for itself before), the cache is out of the registry, and
 * the other caches are reaped and work on.
 */
struct self_destroy {
	kmem_cache_t *cp;
	_Atomic int calls;
};

static void
reclaim_destroys(void *arg)
{
	struct self_destroy *sd = arg;

	atomic_fetch_add(&sd->calls, 1);
	kmem_cache_destroy(sd->cp);
}

struct named {
	const char *name;
	int n;
};

static void
count_named(struct kmem_cache *cp, void *arg)
{
	struct named *nm = arg;

	if (strcmp(cp->name, nm->name) == 0)
		nm->n++;
}

/* Caches of that name in the registry. */
static int
caches_named(const char *name)
{
	struct named nm = { name, 0 };

	cache_walk(count_named, &nm);
	return (nm.n);
}

START_TEST(test_destroy_from_reclaim)
{
	kmem_cache_t *other = kmem_cache_create("other", 64, 0, NULL, NULL,
	    NULL, NULL, NULL, 0);

	for (int how = 0; how < 2; how++) {
		struct self_destroy sd = { NULL, 0 };

		sd.cp = kmem_cache_create("selfdestroy", 100, 0, NULL, NULL,
		    reclaim_destroys, &sd, NULL, 0);
		for (int i = 0; i < 1000; i++) {
			kmem_cache_free(sd.cp, kmem_cache_alloc(sd.cp,
			    KM_SLEEP));
			kmem_cache_free(other, kmem_cache_alloc(other,
			    KM_SLEEP));
		}
		ck_assert_int_eq(caches_named("selfdestroy"), 1);
		if (how == 0)
			kmem_reap();
		else
			kmem_cache_reap_now(sd.cp);
		ck_assert_int_eq(atomic_load(&sd.calls), 1);
		ck_assert_int_eq(caches_named("selfdestroy"), 0);
		kmem_reap();                    /* not called again */
		ck_assert_int_eq(atomic_load(&sd.calls), 1);
		ck_assert_uint_eq(stats_of(other).slab_total, 0);
		kmem_cache_free(other, kmem_cache_alloc(other, KM_SLEEP));
	}
	kmem_cache_destroy(other);
}
END_TEST

/*
 * The same while other threads reap: two threads each make caches whose
 * reclaim callback destroys the cache when its own thread calls it, use
 * them and reap them (kmem_reap and kmem_cache_reap_now in turn), while a
 * third calls kmem_reap() without a pause.  Every cache goes: a destroy
 * that counted while another walker was flushing the cache found its
 * objects "still allocated" and kept it.
 */
struct owned {
	kmem_cache_t *cp;
	pthread_t owner;
};

static _Atomic bool owned_stop;

static void
reclaim_owner_destroys(void *arg)
{
	struct owned *o = arg;

	if (pthread_equal(pthread_self(), o->owner) && o->cp != NULL) {
		kmem_cache_t *cp = o->cp;

		o->cp = NULL;
		kmem_cache_destroy(cp);
	}
}

static void *
owned_maker(void *arg)
{
	(void) arg;
	for (int i = 0; i < 300; i++) {
		struct owned o = { NULL, pthread_self() };
		kmem_cache_t *cp = kmem_cache_create("owned", 100, 0, NULL,
		    NULL, reclaim_owner_destroys, &o, NULL, 0);
		void *objs[50];

		o.cp = cp;
		for (int k = 0; k < 50; k++)
			objs[k] = kmem_cache_alloc(cp, KM_SLEEP);
		for (int k = 0; k < 50; k++)
			kmem_cache_free(cp, objs[k]);
		if (i % 2 == 0)
			kmem_reap();
		else
			kmem_cache_reap_now(cp);
		ck_assert_ptr_null(o.cp);       /* destroyed */
	}
	return (NULL);
}

static void *
owned_reaper(void *arg)
{
	(void) arg;
	while (!atomic_load(&owned_stop))
		kmem_reap();
	return (NULL);
}

START_TEST(test_destroy_from_reclaim_threads)
{
	pthread_t makers[2], reaper;

	atomic_store(&owned_stop, false);
	ck_assert_int_eq(pthread_create(&reaper, NULL, owned_reaper, NULL), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&makers[i], NULL, owned_maker,
		    NULL), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(makers[i], NULL);
	atomic_store(&owned_stop, true);
	pthread_join(reaper, NULL);
	ck_assert_int_eq(caches_named("owned"), 0);
}
END_TEST

/*
 * A walker inside a cache (here one that holds objects of it for a while,
 * as a flush in progress does) when another thread destroys the cache:
 * destroy waits for it to leave before counting, so the cache goes.  It
 * counted first and kept the cache, "10 object(s) still allocated".
 */
static _Atomic int held_phase;

static void
hold_objects(struct kmem_cache *cp, void *arg)
{
	void *objs[10];

	(void) arg;
	if (strcmp(cp->name, "held") != 0)
		return;
	for (int i = 0; i < 10; i++)
		objs[i] = kmem_cache_alloc(cp, KM_SLEEP);
	atomic_store(&held_phase, 1);
	usleep(200000);
	for (int i = 0; i < 10; i++)
		kmem_cache_free(cp, objs[i]);
}

static void *
walk_holding(void *arg)
{
	(void) arg;
	cache_walk(hold_objects, NULL);
	return (NULL);
}

START_TEST(test_destroy_waits_for_walkers)
{
	kmem_cache_t *cp = kmem_cache_create("held", 64, 0, NULL, NULL, NULL,
	    NULL, NULL, 0);
	pthread_t walker;

	atomic_store(&held_phase, 0);
	ck_assert_int_eq(pthread_create(&walker, NULL, walk_holding, NULL), 0);
	while (atomic_load(&held_phase) == 0)
		usleep(1000);
	kmem_cache_destroy(cp);
	pthread_join(walker, NULL);
	ck_assert_int_eq(caches_named("held"), 0);
}
END_TEST

/* ------------------------------------------------ aging */

static void
fast_aging(void)
{
	ck_assert_int_eq(tunable_set_id(KT_REAP_INTERVAL, 1), 0);
	ck_assert_int_eq(tunable_set_id(KT_CACHE_EXPIRE, 1), 0);
}

/*
 * 131,072 objects of 256 bytes allocated and freed; with a 1 s interval
 * the cache goes back to zero slabs on its own.
 */
#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)
/* pthread_create fails while this is above 0 (counted down). */
static _Atomic int reap_fail_threads;
/* pthread_create takes 300 ms while this is above 0 (counted down). */
static _Atomic int reap_slow_threads;

int
pthread_create(pthread_t *t, const pthread_attr_t *attr,
    void *(*fn)(void *), void *arg)
{
	static int (*real)(pthread_t *, const pthread_attr_t *,
	    void *(*)(void *), void *);
	void *sym;

	if (atomic_load(&reap_fail_threads) > 0) {
		atomic_fetch_sub(&reap_fail_threads, 1);
		return (EAGAIN);
	}
	if (atomic_load(&reap_slow_threads) > 0) {
		atomic_fetch_sub(&reap_slow_threads, 1);
		usleep(300000);
	}
	if (real == NULL) {
		sym = dlsym(RTLD_NEXT, "pthread_create");
		memcpy(&real, &sym, sizeof (real));
	}
	return (real(t, attr, fn, arg));
}

/*
 * The kmem taskq could not be made at first (its thread could not be
 * created): a later call makes it, a second on, and aging starts then.
 * The first failure was for good: no aging, no statistics, no limit for
 * the life of the process.  In a child of its own, whose libkmem has no
 * taskq yet.
 */
START_TEST(test_kmem_taskq_after_failure)
{
	pid_t pid = fork();
	int status = 0;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		double t0;

		if (tunable_set_id(KT_REAP_INTERVAL, 1) != 0)
			_exit(1);
		atomic_store(&reap_fail_threads, 1);
		if (kmem_taskq() != NULL || kmem_taskq() != NULL)
			_exit(2);       /* failed, and no retry at once */
		reap_start();
		t0 = test_now();
		while (kmem_taskq() == NULL && test_now() - t0 < 5)
			usleep(50000);
		if (kmem_taskq() == NULL)
			_exit(3);       /* never made */
		reap_start();
		while (reap_passes() == 0 && test_now() - t0 < 10)
			usleep(50000);
		_exit(reap_passes() == 0 ? 4 : 0);     /* aging runs */
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child status %d (2: failed taskq not refused, 3: never made, "
	    "4: no aging)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
END_TEST

/*
 * The aging tick queues the next one from the kmem taskq; when no entry
 * is free and none can be mapped, that dispatch failed and aging stopped
 * for good.  Here every entry is taken by far-off tasks while anonymous
 * mmap fails, a tick runs, and then memory comes back: aging goes on.
 */
static volatile bool reap_fail_mmap;
/* Only meta.c's regions and own runs of entries (see test_start_no_entry). */
static volatile bool reap_fail_meta;

void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if ((reap_fail_mmap || (reap_fail_meta && (len == 512 * 1024 ||
	    len == 64 * 1024))) && (flags & MAP_ANONYMOUS)) {
		errno = ENOMEM;
		return (MAP_FAILED);
	}
	return ((void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off));
}

static void
reap_idle_task(void *arg)
{
	(void) arg;
}

START_TEST(test_aging_survives_no_entry)
{
	enum { MAXIDS = 1 << 20 };
	taskqid_t *ids = malloc(MAXIDS * sizeof (taskqid_t));
	kmem_cache_t *cp;
	uint64_t p0;
	size_t n = 0;
	double t0;

	ck_assert_ptr_nonnull(ids);
	fast_aging();
	cp = kmem_cache_create("noentry", 256, 0, NULL, NULL, NULL, NULL,
	    NULL, 0);
	t0 = test_now();
	while (reap_passes() == 0 && test_now() - t0 < 10)
		usleep(20000);
	ck_assert_uint_gt(reap_passes(), 0);
	/*
	 * Every entry taken, and for 3 s (3 ticks) any a task gives back
	 * (the statistics tick, the PSI task), so that a tick finds none.
	 */
	reap_fail_mmap = true;
	t0 = test_now();
	while (test_now() - t0 < 3) {
		while (n < MAXIDS && (ids[n] = taskq_dispatch_delay(
		    kmem_taskq(), reap_idle_task, NULL, TQ_NOSLEEP,
		    kmem_now_ns() + 3600 * 1000000000LL)) != 0)
			n++;
		usleep(1000);
	}
	reap_fail_mmap = false;
	for (size_t i = 0; i < n; i++)
		(void) taskq_cancel_id(kmem_taskq(), ids[i]);
	p0 = reap_passes();
	t0 = test_now();
	while (reap_passes() == p0 && test_now() - t0 < 5)
		usleep(20000);
	ck_assert_msg(reap_passes() > p0, "no aging pass for 5 s after a "
	    "tick could not queue the next (%zu entries taken)", n);
	kmem_cache_destroy(cp);
	free(ids);
}
END_TEST

/*
 * kmem_reap_interval changed while no task entry can be had: the new
 * chain's first tick could not be queued, and the old chain's tick, when
 * it came, ended as replaced.  Aging stopped for good.
 */
START_TEST(test_interval_change_no_entry)
{
	enum { MAXIDS = 1 << 20 };
	taskqid_t *ids = malloc(MAXIDS * sizeof (taskqid_t));
	kmem_cache_t *cp;
	uint64_t p0;
	size_t n = 0;
	double t0;

	ck_assert_ptr_nonnull(ids);
	fast_aging();
	cp = kmem_cache_create("noentry", 256, 0, NULL, NULL, NULL, NULL,
	    NULL, 0);
	/* An aging pass, and the PSI task has run (a wait: a loaded CI). */
	t0 = test_now();
	while ((reap_passes() == 0 || reap_psi_attempts() == 0) &&
	    test_now() - t0 < 20)
		usleep(20000);
	ck_assert_uint_gt(reap_passes(), 0);
	reap_fail_mmap = true;
	while (n < MAXIDS && (ids[n] = taskq_dispatch_delay(kmem_taskq(),
	    reap_idle_task, NULL, TQ_NOSLEEP, kmem_now_ns() + 3600 *
	    1000000000LL)) != 0)
		n++;
	ck_assert_int_eq(tunable_set_id(KT_REAP_INTERVAL, 2), 0);
	reap_fail_mmap = false;
	for (size_t i = 0; i < n; i++)
		(void) taskq_cancel_id(kmem_taskq(), ids[i]);
	p0 = reap_passes();
	t0 = test_now();
	while (reap_passes() == p0 && test_now() - t0 < 6)
		usleep(20000);
	ck_assert_msg(reap_passes() > p0, "no aging pass for 6 s after the "
	    "interval changed with no task entry free (%zu taken)", n);
	kmem_cache_destroy(cp);
	free(ids);
}
END_TEST

/* Take every entry of the kmem taskq while anonymous mmap fails. */
static size_t
reap_take_entries(taskqid_t *ids, size_t max)
{
	size_t n = 0;

	while (n < max && (ids[n] = taskq_dispatch_delay(kmem_taskq(),
	    reap_idle_task, NULL, TQ_NOSLEEP, kmem_now_ns() + 3600 *
	    1000000000LL)) != 0)
		n++;
	return (n);
}

/*
 * libkmem started (its first cache) while no task entry could be had:
 * the first aging tick, the PSI task and the first statistics tick,
 * dispatched from the application's thread, could not be queued, and
 * nothing queued them again: no aging, PSI or statistics for good.
 */
START_TEST(test_start_no_entry)
{
	enum { MAXIDS = 1 << 20 };
	taskqid_t *ids = malloc(MAXIDS * sizeof (taskqid_t));
	kmem_cache_t *cp;
	size_t n;
	double t0;

	ck_assert_ptr_nonnull(ids);
	fast_aging();
	ck_assert_ptr_nonnull(kmem_taskq());    /* reap_start() not yet */
	reap_fail_mmap = true;
	n = reap_take_entries(ids, MAXIDS);
	reap_fail_mmap = false;
	/* The cache's own mappings work; the next chunk of entries not. */
	reap_fail_meta = true;
	cp = kmem_cache_create("noentry", 256, 0, NULL, NULL, NULL, NULL,
	    NULL, 0);
	reap_fail_meta = false;
	ck_assert_ptr_nonnull(cp);
	for (size_t i = 0; i < n; i++)
		(void) taskq_cancel_id(kmem_taskq(), ids[i]);
	t0 = test_now();
	while ((reap_passes() == 0 || reap_psi_attempts() == 0 ||
	    stats_path()[0] == '\0') && test_now() - t0 < 8)
		usleep(20000);
	ck_assert_msg(reap_passes() > 0, "no aging pass for 8 s after "
	    "starting with no task entry free (%zu taken)", n);
	ck_assert_msg(reap_psi_attempts() > 0, "PSI never tried");
	ck_assert_msg(stats_path()[0] != '\0', "no statistics region");
	kmem_cache_destroy(cp);
	free(ids);
}
END_TEST

/*
 * kmem_reap_interval set from 0 while no task entry can be had: no old
 * chain's tick is queued to carry the new chain, which had no tick.
 */
START_TEST(test_interval_from_zero_no_entry)
{
	enum { MAXIDS = 1 << 20 };
	taskqid_t *ids = malloc(MAXIDS * sizeof (taskqid_t));
	kmem_cache_t *cp;
	uint64_t p0;
	size_t n;
	double t0;

	ck_assert_ptr_nonnull(ids);
	ck_assert_int_eq(tunable_set_id(KT_REAP_INTERVAL, 0), 0);
	ck_assert_int_eq(tunable_set_id(KT_CACHE_EXPIRE, 1), 0);
	cp = kmem_cache_create("noentry", 256, 0, NULL, NULL, NULL, NULL,
	    NULL, 0);
	t0 = test_now();                /* the PSI task has run */
	while (reap_psi_attempts() == 0 && test_now() - t0 < 20)
		usleep(20000);
	p0 = reap_passes();
	reap_fail_mmap = true;
	n = reap_take_entries(ids, MAXIDS);
	ck_assert_int_eq(tunable_set_id(KT_REAP_INTERVAL, 1), 0);
	reap_fail_mmap = false;
	for (size_t i = 0; i < n; i++)
		(void) taskq_cancel_id(kmem_taskq(), ids[i]);
	t0 = test_now();
	while (reap_passes() == p0 && test_now() - t0 < 6)
		usleep(20000);
	ck_assert_msg(reap_passes() > p0, "no aging pass for 6 s after the "
	    "interval was set from 0 with no task entry free (%zu taken)", n);
	kmem_cache_destroy(cp);
	free(ids);
}
END_TEST

/*
 * A child forked while no task entry could be had: the fork handler could
 * not queue the child's statistics tick, and the child never published a
 * region of its own.
 */
START_TEST(test_fork_stats_no_entry)
{
	enum { MAXIDS = 1 << 20 };
	taskqid_t *ids = malloc(MAXIDS * sizeof (taskqid_t));
	kmem_cache_t *cp;
	size_t n;
	double t0;
	pid_t pid;
	int status;

	ck_assert_ptr_nonnull(ids);
	cp = kmem_cache_create("noentry", 256, 0, NULL, NULL, NULL, NULL,
	    NULL, KMC_NOMAGAZINE);
	t0 = test_now();
	while (stats_path()[0] == '\0' && test_now() - t0 < 5)
		usleep(20000);
	ck_assert_msg(stats_path()[0] != '\0', "no statistics region");
	reap_fail_mmap = true;
	n = reap_take_entries(ids, MAXIDS);
	pid = fork();
	if (pid == 0) {
		char mine[64];

		reap_fail_mmap = false;
		for (size_t i = 0; i < n; i++)
			(void) taskq_cancel_id(kmem_taskq(), ids[i]);
		(void) snprintf(mine, sizeof (mine), "libkmem.%d",
		    (int)getpid());
		t0 = test_now();
		/* Frees that miss the magazines start the child's queue. */
		while (strstr(stats_path(), mine) == NULL &&
		    test_now() - t0 < 5) {
			kmem_cache_free(cp, kmem_cache_alloc(cp, KM_SLEEP));
			usleep(20000);
		}
		_exit(strstr(stats_path(), mine) != NULL ? 0 : 1);
	}
	reap_fail_mmap = false;
	ck_assert_int_gt(pid, 0);
	for (size_t i = 0; i < n; i++)
		(void) taskq_cancel_id(kmem_taskq(), ids[i]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "the child published no statistics region in 5 s (%zu entries "
	    "taken at fork)", n);
	kmem_cache_destroy(cp);
	free(ids);
}
END_TEST

/*
 * As above, but the retry that makes the queue is a cache's growth, not
 * reap_start(): aging starts then too.  It never did (until another cache
 * was created), though the failure said "not aged until it can be".
 */
START_TEST(test_kmem_taskq_made_by_growth)
{
	pid_t pid = fork();
	int status = 0;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		enum { N = 1024 };      /* 4 MiB: past inline growth */
		static void *v[N];
		kmem_cache_t *cp;
		double t0;

		if (tunable_set_id(KT_REAP_INTERVAL, 1) != 0)
			_exit(1);
		atomic_store(&reap_fail_threads, 1);
		cp = kmem_cache_create("late", 4096, 0, NULL, NULL, NULL,
		    NULL, NULL, 0);
		if (cp == NULL || kmem_taskq() != NULL)
			_exit(2);       /* failed, and no retry at once */
		usleep(1100000);
		for (int i = 0; i < N; i++)
			v[i] = kmem_cache_alloc(cp, KM_SLEEP);
		for (int i = 0; i < N; i++)
			kmem_cache_free(cp, v[i]);
		t0 = test_now();       /* kmem_taskq() here would make it */
		while (reap_passes() == 0 && test_now() - t0 < 5)
			usleep(50000);
		_exit(reap_passes() == 0 ? 4 : 0);     /* aging runs */
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child status %d (2: failed taskq not refused, 4: no aging)",
	    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
END_TEST
/*
 * A fork while another thread makes the kmem taskq (its first thread is
 * being created): in the child that thread is gone, and its claim on
 * making the queue (reap_tq_making) with it.  The child made no queue
 * ever after: no aging, no background growth, no limit.
 */
static void *
reap_create_cache(void *arg)
{
	(void) arg;
	return (kmem_cache_create("first", 64, 0, NULL, NULL, NULL, NULL,
	    NULL, 0));
}

START_TEST(test_fork_while_taskq_made)
{
	pid_t pid = fork();
	int status = 0;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		pthread_t t;
		pid_t g;

		if (tunable_set_id(KT_REAP_INTERVAL, 1) != 0)
			_exit(1);
		kmem_init();
		atomic_store(&reap_slow_threads, 2);
		if (pthread_create(&t, NULL, reap_create_cache, NULL) != 0)
			_exit(2);       /* (the first slow one: this thread) */
		usleep(100000);         /* its queue's thread is being made */
		g = fork();
		if (g == 0) {
			kmem_cache_t *cp = kmem_cache_create("child", 64, 0,
			    NULL, NULL, NULL, NULL, NULL, 0);
			double t0 = test_now();

			while ((kmem_taskq() == NULL || reap_passes() == 0) &&
			    test_now() - t0 < 5) {
				kmem_cache_free(cp, kmem_cache_alloc(cp,
				    KM_SLEEP));
				usleep(50000);
			}
			_exit(kmem_taskq() == NULL ? 3 :
			    reap_passes() == 0 ? 4 : 0);
		}
		(void) pthread_join(t, NULL);
		if (g < 0 || waitpid(g, &status, 0) != g)
			_exit(5);
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 6);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child status %d (3: the forked child made no kmem taskq, 4: no "
	    "aging)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
END_TEST

/*
 * As above, but the child creates no cache: the one it uses was created
 * while the other thread was making the queue (its reap_start() did
 * without).  The child makes the queue when it needs it (here, as
 * growth would), and aging must start then, as after a failure; it
 * started only with a cache's creation.
 */
START_TEST(test_fork_while_taskq_made_no_create)
{
	pid_t pid = fork();
	int status = 0;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		kmem_cache_t *cp;
		pthread_t t;
		pid_t g;

		if (tunable_set_id(KT_REAP_INTERVAL, 1) != 0)
			_exit(1);
		kmem_init();
		atomic_store(&reap_slow_threads, 2);
		if (pthread_create(&t, NULL, reap_create_cache, NULL) != 0)
			_exit(2);       /* (the first slow one: this thread) */
		usleep(100000);         /* its queue's thread is being made */
		cp = kmem_cache_create("second", 64, 0, NULL, NULL, NULL,
		    NULL, NULL, 0);
		if (cp == NULL)
			_exit(2);
		g = fork();
		if (g == 0) {
			double t0 = test_now();

			while ((kmem_taskq() == NULL || reap_passes() == 0) &&
			    test_now() - t0 < 5) {
				kmem_cache_free(cp, kmem_cache_alloc(cp,
				    KM_SLEEP));
				usleep(50000);
			}
			_exit(kmem_taskq() == NULL ? 3 :
			    reap_passes() == 0 ? 4 : 0);
		}
		(void) pthread_join(t, NULL);
		if (g < 0 || waitpid(g, &status, 0) != g)
			_exit(5);
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 6);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child status %d (3: the forked child made no kmem taskq, 4: no "
	    "aging)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
END_TEST

#endif

/* The stack size of the thread that runs it (pthread_getattr_np). */
static void
stack_of_task(void *arg)
{
	pthread_attr_t attr;

	ck_assert_int_eq(pthread_getattr_np(pthread_self(), &attr), 0);
	ck_assert_int_eq(pthread_attr_getstacksize(&attr, arg), 0);
	ck_assert_int_eq(pthread_attr_destroy(&attr), 0);
}

/*
 * The kmem taskq's threads get stacks of at most 2 MiB (the C library's
 * default, when smaller): each is address space, and under ulimit -v
 * 30000 an 8 MiB one left a program 8 MiB of malloc, where glibc gives
 * 26.  A queue the application creates keeps the default.
 */
START_TEST(test_kmem_taskq_stack)
{
	size_t kmem = 0, user = 0, dflt = 0;
	pthread_attr_t attr;
	taskq_t *tq;

	ck_assert_int_eq(pthread_getattr_default_np(&attr), 0);
	ck_assert_int_eq(pthread_attr_getstacksize(&attr, &dflt), 0);
	ck_assert_int_eq(pthread_attr_destroy(&attr), 0);
	ck_assert_ptr_nonnull(kmem_taskq());
	ck_assert_uint_ne(taskq_dispatch(kmem_taskq(), stack_of_task, &kmem,
	    TQ_SLEEP), 0);
	taskq_wait(kmem_taskq());
	tq = taskq_create("stack", 1, defclsyspri, 0, 0, 0);
	ck_assert_ptr_nonnull(tq);
	ck_assert_uint_ne(taskq_dispatch(tq, stack_of_task, &user, TQ_SLEEP),
	    0);
	taskq_wait(tq);
	taskq_destroy(tq);
	ck_assert_uint_gt(kmem, 0);
	ck_assert_msg(kmem <= ((size_t)2 << 20) && kmem <= dflt,
	    "kmem taskq stack %zu bytes (default %zu)", kmem, dflt);
	ck_assert_uint_ge(user + 65536, dflt);   /* a guard, if counted */
}
END_TEST

/*
 * Each change of kmem_reap_interval starts a new chain; the old chain's
 * queued tick goes then.  Only the latest replaced tick was cancelled (by
 * the new chain's first tick, an interval later): a thousand changes left
 * a thousand ticks queued for up to an old interval, and their entries
 * mapped for good.
 */
START_TEST(test_interval_changes_leave_no_ticks)
{
	kmem_cache_t *cp = kmem_cache_create("changes", 64, 0, NULL, NULL,
	    NULL, NULL, NULL, 0);
	struct taskq_stats st;

	ck_assert_ptr_nonnull(kmem_taskq());
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(tunable_set_id(KT_REAP_INTERVAL,
		    3000 + (i & 1)), 0);
	ck_assert_int_eq(taskq_stats(kmem_taskq(), &st), 0);
	ck_assert_msg(st.tasks_delayed < 10, "%llu tasks delayed after 1000 "
	    "interval changes", (unsigned long long)st.tasks_delayed);
	kmem_cache_destroy(cp);
}
END_TEST

START_TEST(test_aging_returns_slabs)
{
	enum { N = 131072 };
	void **v = malloc(N * sizeof (void *));
	kmem_cache_t *cp;
	double took;

	fast_aging();
	cp = kmem_cache_create("aging", 256, 0, NULL, NULL, NULL, NULL, NULL,
	    0);
	for (int i = 0; i < N; i++)
		v[i] = kmem_cache_alloc(cp, KM_SLEEP);
	for (int i = 0; i < N; i++)
		kmem_cache_free(cp, v[i]);
	ck_assert_uint_gt(stats_of(cp).slab_total, 100);
	ck_assert_msg(wait_passes(no_slabs, cp, 6, &took),
	    "still %llu slabs after 6 intervals",
	    (unsigned long long)stats_of(cp).slab_total);
	fprintf(stderr, "aging: 131072 x 256 B freed; zero slabs %.2f s "
	    "later (interval 1 s, expire 1 s)\n", took);
	ck_assert_uint_eq(stats_of(cp).obj_cached, 0);
	ck_assert_uint_ge(reap_passes(), 1);
	kmem_cache_destroy(cp);
	free(v);
}
END_TEST

static bool
rss_small(void *arg)
{
	return (test_rss_bytes() < *(size_t *)arg);
}

/*
 * 1 GiB of 4 KiB objects, every one written, then freed: RSS falls below
 * 64 MiB within 3 reap intervals.
 */
START_TEST(test_rss_after_burst)
{
	enum { N = 262144 };            /* x 4 KiB = 1 GiB */
	char **v = malloc(N * sizeof (char *));
	kmem_cache_t *cp;
	size_t peak, limit = (size_t)64 << 20;
	double took;

#ifdef KMEM_TSAN
	/* TSan's shadow of every page counts in RSS and is not returned. */
	return;
#endif
	fast_aging();
	cp = kmem_cache_create("burst", 4096, 0, NULL, NULL, NULL, NULL,
	    NULL, 0);
	for (int i = 0; i < N; i++) {
		v[i] = kmem_cache_alloc(cp, KM_SLEEP);
		v[i][0] = (char)i;
	}
	peak = test_rss_bytes();
	ck_assert_uint_gt(peak, (size_t)900 << 20);
#ifdef KMEM_ASAN
	/*
	 * ASan's shadow of the arena (a byte per 8) became resident when the
	 * writes were checked, and ASan keeps it: RSS, not libkmem's.
	 */
	limit += peak / 8;
#endif
	for (int i = 0; i < N; i++)
		kmem_cache_free(cp, v[i]);
	free(v);
	ck_assert_msg(wait_passes(rss_small, &limit, 3, &took), "RSS %zu MiB "
	    "after 3 intervals (peak %zu MiB, limit %zu MiB)",
	    test_rss_bytes() >> 20, peak >> 20, limit >> 20);
	fprintf(stderr, "rss: peak %zu MiB, %zu MiB %.2f s after the frees "
	    "(interval 1 s, expire 1 s)\n", peak >> 20, test_rss_bytes() >> 20,
	    took);
	kmem_cache_destroy(cp);
}
END_TEST

/* ------------------------------------------------ growth */

/*
 * The grow task stalls: KM_SLEEP callers wait 100 ms once, the cache is
 * marked deadlocked, and they get emergency objects - promptly - until the
 * grow finishes; then objects come from slabs again.
 */
START_TEST(test_deadlock_path)
{
	kmem_cache_t *cp = kmem_cache_create("stall", 1024, 0, NULL, NULL,
	    NULL, NULL, NULL, 0);
	void *e[20], *p;
	struct kmem_cache_stats st;
	double t0;

	grow_inline_limit(0);           /* this small cache, too */
	grow_stall(true);
	t0 = test_now();
	for (int i = 0; i < 20; i++) {
		e[i] = kmem_cache_alloc(cp, KM_SLEEP);
		ck_assert_ptr_nonnull(e[i]);
		ck_assert(!vmem_contains(e[i]));        /* emergency */
		memset(e[i], i, 1024);
	}
	/* One 100 ms wait, not twenty. */
	ck_assert_double_ge(test_now() - t0, 0.09);
	st = stats_of(cp);
	ck_assert_uint_eq(st.grow_waits, 1);
	ck_assert_uint_eq(st.obj_deadlock, 1);
	ck_assert_uint_eq(st.obj_emergency, 20);
	ck_assert_uint_eq(st.alloc, 20);

	/* KM_NOSLEEP never waits either. */
	p = kmem_cache_alloc(cp, KM_NOSLEEP);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(stats_of(cp).grow_waits, 1);
	kmem_cache_free(cp, p);

	grow_stall(false);
	t0 = test_now();
	do {
		p = kmem_cache_alloc(cp, KM_SLEEP);
		if (!vmem_contains(p))
			kmem_cache_free(cp, p);         /* still growing */
	} while (!vmem_contains(p) && test_now() - t0 < 5);
	ck_assert(vmem_contains(p));
	kmem_cache_free(cp, p);
	for (int i = 0; i < 20; i++) {
		for (int k = 0; k < 1024; k++)
			ck_assert_int_eq(((char *)e[i])[k], (char)i);
		kmem_cache_free(cp, e[i]);
	}
	st = stats_of(cp);
	ck_assert_uint_eq(st.obj_emergency, 0);
	ck_assert_uint_eq(st.obj_emergency_max, 21);    /* and KM_NOSLEEP's */
	ck_assert_uint_eq(st.alloc, st.free);
	kmem_cache_destroy(cp);
}
END_TEST

/*
 * Each wait for growth doubles the grow-ahead watermarks, up to 16 MiB of
 * objects for low (grow.c, GROW-AHEAD): a cache that keeps waiting must
 * not end up growing ahead more than that (high is then 2 x low).  The
 * stalled grow task makes one allocation wait per round.
 */
START_TEST(test_grow_ahead_cap)
{
	enum { SIZE = 1000, ROUNDS = 10 };
	kmem_cache_t *cp = kmem_cache_create("growcap", SIZE, 0, NULL, NULL,
	    NULL, NULL, NULL, KMC_NOMAGAZINE);
	void **v = malloc(200000 * sizeof (void *));
	void *keep;
	uint64_t cap_low, cap_high;

	grow_inline_limit(0);
	keep = kmem_cache_alloc(cp, KM_SLEEP);  /* slab_total stays > 0 */
	ck_assert(vmem_contains(keep));
	for (int r = 0; r < ROUNDS; r++) {
		int n = 0;

		grow_stall(true);
		do {
			v[n] = kmem_cache_alloc(cp, KM_SLEEP);
			ck_assert_ptr_nonnull(v[n]);
		} while (vmem_contains(v[n++]) && n < 200000);
		grow_stall(false);
		grow_quiesce(cp);
		for (int i = 0; i < n; i++)
			kmem_cache_free(cp, v[i]);
	}
	ck_assert_uint_ge(stats_of(cp).grow_waits, ROUNDS);
	cap_low = ((uint64_t)16 << 20) / cp->sl.chunk;
	cap_high = 2 * cap_low;
	ck_assert_msg(atomic_load(&cp->grow.low) <= cap_low &&
	    atomic_load(&cp->grow.high) <= cap_high, "after %d waits: low %llu "
	    "high %llu objects of %zu bytes, caps %llu and %llu", ROUNDS,
	    (unsigned long long)atomic_load(&cp->grow.low),
	    (unsigned long long)atomic_load(&cp->grow.high),
	    (size_t)cp->sl.chunk, (unsigned long long)cap_low,
	    (unsigned long long)cap_high);
	kmem_cache_free(cp, keep);
	grow_inline_limit((uint64_t)1 << 20);
	free(v);
	kmem_cache_destroy(cp);
}
END_TEST

/*
 * A process that allocates a little (its caches stay small, so they grow
 * inline) never wakes the kmem taskq: the taskq keeps its one first
 * thread, and the PSI trigger is not armed yet (2 s after start).
 */
START_TEST(test_small_process_quiet)
{
	kmem_cache_t *cp = kmem_cache_create("quiet", 200, 0, NULL, NULL,
	    NULL, NULL, NULL, 0);
	struct taskq_stats ts;
	void *v[1000];
	double t0 = test_now();

	for (int i = 0; i < 1000; i++)
		v[i] = kmem_cache_alloc(cp, KM_SLEEP);
	for (int i = 0; i < 1000; i++) {
		void *p = kmem_alloc((size_t)(i % 64 + 1) * 16, KM_SLEEP);

		ck_assert(vmem_contains(v[i]));
		ck_assert_ptr_nonnull(p);
		kmem_free(p, (size_t)(i % 64 + 1) * 16);
	}
	ck_assert_uint_gt(stats_of(cp).slab_grows, 1);
	ck_assert_uint_eq(stats_of(cp).grow_waits, 0);
	ck_assert_uint_eq(cp->grow.gen, 0);     /* no grow task ran */
	ck_assert_int_eq(taskq_stats(kmem_taskq(), &ts), 0);
	/*
	 * Delayed tasks (statistics, PSI at 2 s) may run by now on a machine
	 * so loaded that this took a second: then they prove nothing.
	 */
	if (test_now() - t0 < 1.0) {
		ck_assert_uint_eq(ts.threads, 1);
		ck_assert_uint_eq(reap_psi_attempts(), 0);
		ck_assert(!reap_psi_active());
	}
	for (int i = 0; i < 1000; i++)
		kmem_cache_free(cp, v[i]);
	kmem_cache_destroy(cp);
}
END_TEST

/*
 * A big cache still grows ahead through the taskq, which then creates
 * threads beyond its first.
 */
START_TEST(test_big_cache_grows_ahead)
{
	enum { N = 40000 };
	kmem_cache_t *cp = kmem_cache_create("big", 512, 0, NULL, NULL,
	    NULL, NULL, NULL, 0);
	void **v = malloc(N * sizeof (void *));
	struct taskq_stats ts;

	for (int i = 0; i < N; i++)
		v[i] = kmem_cache_alloc(cp, KM_SLEEP);
	grow_quiesce(cp);
	/* 20 MiB of objects: past the 1 MiB grown inline, grow tasks ran. */
	ck_assert_uint_gt(cp->grow.gen, 0);
	/* The taskq counts a task after it returns: wait for that (10 s). */
	for (int i = 0; i < 10000; i++) {
		ck_assert_int_eq(taskq_stats(kmem_taskq(), &ts), 0);
		if (ts.tasks_executed >= 1)
			break;
		usleep(1000);
	}
	ck_assert_uint_ge(ts.tasks_executed, 1);
	ck_assert_uint_ge(ts.threads, 1);
	for (int i = 0; i < N; i++)
		kmem_cache_free(cp, v[i]);
	free(v);
	kmem_cache_destroy(cp);
}
END_TEST

/*
 * After fork() the child has no kmem taskq thread (most children exec at
 * once); its first magazine miss creates the first thread, and its
 * caches grow, small ones inline and big ones through the taskq.
 */
START_TEST(test_fork_child_taskq)
{
	kmem_cache_t *cp = kmem_cache_create("forked", 512, 0, NULL, NULL,
	    NULL, NULL, NULL, 0);
	void *p = kmem_cache_alloc(cp, KM_SLEEP);
	pid_t pid;
	int status;

#if defined(KMEM_TSAN) || defined(KMEM_ASAN)
	/*
	 * TSan cannot start threads in the child of a threaded process, and
	 * ASan's allocator may be locked there (a parent thread held its
	 * lock at the fork): the child's new thread then hangs in calloc.
	 */
	kmem_cache_free(cp, p);
	kmem_cache_destroy(cp);
	return;
#endif
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		enum { N = 20000 };
		static void *v[N];
		struct taskq_stats ts;
		int bad = 0;

		if (taskq_stats(kmem_taskq(), &ts) != 0 || ts.threads != 0 ||
		    test_thread_count() != 1)
			bad |= 1;
		for (int i = 0; i < N; i++) {
			v[i] = kmem_cache_alloc(cp, KM_SLEEP);
			if (v[i] == NULL)
				bad |= 2;
		}
		if (taskq_stats(kmem_taskq(), &ts) != 0 || ts.threads < 1)
			bad |= 8;
		grow_quiesce(cp);
		if (cp->grow.gen == 0)  /* 10 MiB: grow tasks ran */
			bad |= 4;
		for (int i = 0; i < N; i++)
			kmem_cache_free(cp, v[i]);
		kmem_cache_free(cp, p);
		_exit(bad);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	kmem_cache_free(cp, p);
	kmem_cache_destroy(cp);
}
END_TEST

/* Grow-ahead: allocations do not wait for growth (one wait at first). */
static struct kmem_cache_stats
grow_run(bool ahead)
{
	enum { N = 200000 };
	void **v = malloc(N * sizeof (void *));
	kmem_cache_t *cp;
	struct kmem_cache_stats st;

	ck_assert_int_eq(tunable_set_id(KT_CACHE_GROW_AHEAD, ahead), 0);
	cp = kmem_cache_create(ahead ? "ahead" : "behind", 256, 0, NULL,
	    NULL, NULL, NULL, NULL, 0);
	for (int i = 0; i < N; i++) {
		v[i] = kmem_cache_alloc(cp, KM_SLEEP);
		/* Emergency only when a wait for growth timed out (load). */
		ck_assert(vmem_contains(v[i]) || cp->obj_deadlock != 0);
		/* Give the grow task a chance, as real work would. */
		if ((i & 255) == 0)
			usleep(50);
	}
	st = stats_of(cp);
	for (int i = 0; i < N; i++)
		kmem_cache_free(cp, v[i]);
	kmem_cache_destroy(cp);
	free(v);
	return (st);
}

START_TEST(test_grow_ahead)
{
	struct kmem_cache_stats ahead = grow_run(true);
	struct kmem_cache_stats behind = grow_run(false);

	ck_assert_uint_gt(ahead.slab_grows, 100);
	ck_assert_uint_gt(behind.slab_grows, 100);
	/*
	 * No emergency object, unless the grow task was not scheduled
	 * within a wait's 100 ms (a loaded machine), which obj_deadlock
	 * counts.
	 */
	ck_assert(ahead.obj_emergency_max == 0 || ahead.obj_deadlock != 0);
	/* Without grow-ahead about one wait per slab; with it, very few. */
	ck_assert_msg(ahead.grow_waits * 10 < behind.grow_waits,
	    "waits: %llu with grow-ahead, %llu without",
	    (unsigned long long)ahead.grow_waits,
	    (unsigned long long)behind.grow_waits);
}
END_TEST

/* ------------------------------------------------ memory pressure */

static _Atomic int victim_calls;

static void
victim_reclaim(void *priv)
{
	(void) priv;
	atomic_fetch_add(&victim_calls, 1);
}

/* An mmap failure reaps every cache and retries before going emergency. */
START_TEST(test_mmap_failure_reaps_all)
{
	kmem_cache_t *a = kmem_cache_create("victim", 2048, 0, NULL, NULL,
	    victim_reclaim, NULL, NULL, 0);
	kmem_cache_t *b = kmem_cache_create("needy", 2048, 0, NULL, NULL,
	    NULL, NULL, NULL, 0);
	void *p;

	for (int i = 0; i < 2000; i++)
		kmem_cache_free(a, kmem_cache_alloc(a, KM_SLEEP));
	ck_assert_uint_gt(stats_of(a).slab_total, 0);
	grow_quiesce(a);                /* a's grow-ahead must not eat it */
	vmem_inject_failures(1);        /* b's first slab cannot be mapped */
	p = kmem_cache_alloc(b, KM_SLEEP);
	ck_assert(vmem_contains(p));    /* ... the retry after reaping can */
	ck_assert_int_ge(atomic_load(&victim_calls), 1);
	ck_assert_uint_eq(stats_of(a).slab_total, 0);
	kmem_cache_free(b, p);
	kmem_cache_destroy(a);
	kmem_cache_destroy(b);
}
END_TEST

/*
 * A reclaim callback that reaps its own cache, called by the cache's grow
 * task (its slab could not be mapped: a pressure reap) - or kmem_reap(),
 * which reaps every cache.  kmem_cache_reap_now waited for the grow task
 * to finish, on the grow task's own thread: the task never ended, the
 * cache never grew again (emergency objects only) and its destroy hung.
 */
static kmem_cache_t *grow_reap_cp;
static _Atomic int grow_reap_calls;

static void
reclaim_reap_own(void *p)
{
	(void) p;
	atomic_fetch_add(&grow_reap_calls, 1);
	kmem_cache_reap_now(grow_reap_cp);
	kmem_reap();
}

START_TEST(test_grow_task_reclaim_reaps)
{
	void *p;
	double t0;

	grow_reap_cp = kmem_cache_create("growreap", 64, 0, NULL, NULL,
	    reclaim_reap_own, NULL, NULL, 0);
	grow_inline_limit(0);           /* grown by the grow task */
	vmem_inject_failures(1);        /* whose first slab cannot be mapped */
	p = kmem_cache_alloc(grow_reap_cp, KM_SLEEP);
	ck_assert_ptr_nonnull(p);
	t0 = test_now();
	while (atomic_load(&grow_reap_cp->grow.growing) &&
	    test_now() - t0 < 10)
		usleep(1000);
	ck_assert(!atomic_load(&grow_reap_cp->grow.growing));
	ck_assert_int_ge(atomic_load(&grow_reap_calls), 1);
	kmem_cache_free(grow_reap_cp, p);
	kmem_cache_destroy(grow_reap_cp);
	grow_inline_limit(1 << 20);
}
END_TEST

/*
 * A reclaim callback that frees its objects and destroys its own cache,
 * called by that cache's grow task (its slab could not be mapped: a
 * pressure reap).  Destroy waited for the grow task to end, on the grow
 * task's own thread: it never returned, and the kmem taskq lost a thread.
 * Now it returns and the cache goes when the task ends.
 */
static kmem_cache_t *grow_destroy_cp;
static void *_Atomic grow_destroy_obj;
static _Atomic int grow_destroy_state;  /* 1: destroying, 2: returned */

static void
reclaim_destroy_own(void *p)
{
	void *obj;
	double t0 = test_now();

	(void) p;
	if (atomic_exchange(&grow_destroy_state, 1) != 0)
		return;
	/* The allocation that dispatched the task has returned its object. */
	while ((obj = atomic_load(&grow_destroy_obj)) == NULL &&
	    test_now() - t0 < 10)
		usleep(1000);
	kmem_cache_free(grow_destroy_cp, obj);
	kmem_cache_destroy(grow_destroy_cp);
	atomic_store(&grow_destroy_state, 2);
}

START_TEST(test_grow_task_reclaim_destroys)
{
	void *p;
	double t0;

	grow_destroy_cp = kmem_cache_create("growdestroy", 64, 0, NULL, NULL,
	    reclaim_destroy_own, NULL, NULL, 0);
	ck_assert_ptr_nonnull(grow_destroy_cp);
	grow_inline_limit(0);           /* grown by the grow task */
	vmem_inject_failures(1);        /* whose first slab cannot be mapped */
	/* KM_NOSLEEP: an emergency object now, the grow task meanwhile. */
	p = kmem_cache_alloc(grow_destroy_cp, KM_NOSLEEP);
	ck_assert_ptr_nonnull(p);
	atomic_store(&grow_destroy_obj, p);
	t0 = test_now();
	while (atomic_load(&grow_destroy_state) != 2 && test_now() - t0 < 10)
		usleep(1000);
	vmem_inject_failures(0);
	grow_inline_limit(1 << 20);
	ck_assert_msg(atomic_load(&grow_destroy_state) == 2,
	    "destroy from the grow task's reclaim callback did not return "
	    "(state %d)", atomic_load(&grow_destroy_state));
}
END_TEST

/*
 * A reclaim callback, run by a pressure reap on the kmem taskq while every
 * thread of the queue is busy, that destroys its own cache whose grow task
 * is queued behind it.  Destroy waited for that task, which could only run
 * on a thread of the queue: it hung as long as the queue stayed full (for
 * ever with kmem_cache_kmem_threads=1).  Now it takes the task off the
 * queue.  The blockers fill the queue's other threads and give them back
 * after a few seconds, so the test ends either way.
 */
static kmem_cache_t *queued_cp;
static _Atomic int queued_state;        /* 1: in the callback, 2: go, 3: done */
static _Atomic int queued_blocked;

static void
queued_blocker(void *arg)
{
	double t0 = test_now();

	(void) arg;
	atomic_fetch_add(&queued_blocked, 1);
	while (atomic_load(&queued_state) < 3 && test_now() - t0 < 5)
		usleep(1000);
}

static void
reclaim_destroy_queued(void *p)
{
	double t0 = test_now();

	(void) p;
	if (atomic_exchange(&queued_state, 1) != 0)
		return;
	while (atomic_load(&queued_state) != 2 && test_now() - t0 < 10)
		usleep(1000);
	kmem_cache_destroy(queued_cp);
	atomic_store(&queued_state, 3);
}

START_TEST(test_reclaim_destroys_queued_grow)
{
	struct taskq_stats ts;
	taskq_t *tq = kmem_taskq();
	double t0;
	void *p;

	ck_assert_ptr_nonnull(tq);
	ck_assert_int_eq(taskq_stats(tq, &ts), 0);
	queued_cp = kmem_cache_create("growqueued", 64, 0, NULL, NULL,
	    reclaim_destroy_queued, NULL, NULL, 0);
	ck_assert_ptr_nonnull(queued_cp);
	for (uint64_t i = 0; i + 1 < ts.threads_max; i++)
		ck_assert(taskq_dispatch(tq, queued_blocker, NULL,
		    TQ_SLEEP) != 0);
	t0 = test_now();
	while ((uint64_t)atomic_load(&queued_blocked) + 1 < ts.threads_max &&
	    test_now() - t0 < 5)
		usleep(1000);
	reap_psi_event();               /* the pressure reap: last thread */
	while (atomic_load(&queued_state) == 0 && test_now() - t0 < 5)
		usleep(1000);
	ck_assert_int_eq(atomic_load(&queued_state), 1);
	/* Every thread busy: the grow task this dispatches stays queued. */
	grow_inline_limit(0);
	p = kmem_cache_alloc(queued_cp, KM_NOSLEEP);
	grow_inline_limit(1 << 20);
	ck_assert(atomic_load(&queued_cp->grow.growing));
	if (p != NULL)
		kmem_cache_free(queued_cp, p);
	atomic_store(&queued_state, 2);
	t0 = test_now();
	while (atomic_load(&queued_state) != 3 && test_now() - t0 < 3)
		usleep(1000);
	ck_assert_msg(atomic_load(&queued_state) == 3,
	    "destroy from a reclaim callback on a full kmem taskq waited for "
	    "the cache's queued grow task");
}
END_TEST

/* Crossing kmem_memory_limit reaps, calling reclaim callbacks. */
START_TEST(test_memory_limit)
{
	static struct pile p = { .lock = PTHREAD_MUTEX_INITIALIZER,
	    .per_call = 32 };
	kmem_cache_t *big;
	void *v[64];
	double t0;

	ck_assert_int_eq(tunable_set_id(KT_MEMORY_LIMIT, 16 << 20), 0);
	ck_assert_int_eq(tunable_set_id(KT_CACHE_RECLAIM, KMEM_RECLAIM_TARGET),
	    0);
	p.cp = kmem_cache_create("limited", 4096, 0, NULL, NULL,
	    pile_reclaim, &p, NULL, KMC_RECLAIMABLE);
	pile_fill(&p, 4096);                    /* 16 MiB held */
	big = kmem_cache_create("over", 1 << 20, 0, NULL, NULL, NULL, NULL,
	    NULL, 0);
	for (int i = 0; i < 64; i++)            /* 64 MiB more */
		v[i] = kmem_cache_alloc(big, KM_SLEEP);
	/* "target": called again and again while it frees objects. */
	t0 = test_now();
	while (atomic_load(&p.calls) < 2 && test_now() - t0 < 30)
		usleep(10000);
	{
		uint64_t runs, disp, drop;
		struct vmem_usage u;

		reap_pressure_counts(&runs, &disp, &drop);
		vmem_usage(&u);
		ck_assert_msg(atomic_load(&p.calls) > 1, "reclaim called %d "
		    "time(s); pressure reaps %llu run, %llu dispatched, %llu "
		    "coalesced; %zu MiB mapped; pile %d", atomic_load(&p.calls),
		    (unsigned long long)runs, (unsigned long long)disp,
		    (unsigned long long)drop, u.inuse >> 20, pile_count(&p));
	}
	ck_assert_int_lt(pile_count(&p), 4096);
	for (int i = 0; i < 64; i++)
		kmem_cache_free(big, v[i]);
	pile_empty(&p);
	kmem_cache_destroy(big);
	kmem_cache_destroy(p.cp);
}
END_TEST

/*
 * Large kmem_alloc blocks are memory libkmem maps, counted against
 * kmem_memory_limit (reap_mapped): one that takes the process over the
 * limit reaps, calling reclaim callbacks, as a slab's growth does - not
 * only the next growth of some cache, which may never come.
 */
START_TEST(test_memory_limit_large)
{
	enum { N = 16, SZ = 4 << 20 };
	static struct pile p = { .lock = PTHREAD_MUTEX_INITIALIZER,
	    .per_call = 32 };
	void *v[N];
	double t0;

	p.cp = kmem_cache_create("limitlarge", 256, 0, NULL, NULL,
	    pile_reclaim, &p, NULL, 0);
	pile_fill(&p, 64);                      /* far below the limit */
	ck_assert_int_eq(tunable_set_id(KT_MEMORY_LIMIT, 32 << 20), 0);
	ck_assert_int_eq(atomic_load(&p.calls), 0);
	for (int i = 0; i < N; i++) {           /* 64 MiB */
		v[i] = kmem_alloc(SZ, KM_SLEEP);
		ck_assert_ptr_nonnull(v[i]);
	}
	t0 = test_now();
	while (atomic_load(&p.calls) == 0 && test_now() - t0 < 10)
		usleep(10000);
	ck_assert_msg(atomic_load(&p.calls) >= 1, "64 MiB of large blocks "
	    "over a 32 MiB kmem_memory_limit: no reclaim callback called");
	ck_assert_int_eq(tunable_set_id(KT_MEMORY_LIMIT, 0), 0);
	for (int i = 0; i < N; i++)
		kmem_free(v[i], SZ);
	pile_empty(&p);
	kmem_cache_destroy(p.cp);
}
END_TEST

/*
 * A large block that grows (realloc's ka_large_grow: in place, or moved
 * to a new span) maps more memory as a new one does: it is checked
 * against kmem_memory_limit too.
 */
START_TEST(test_memory_limit_large_grow)
{
	static struct pile p = { .lock = PTHREAD_MUTEX_INITIALIZER,
	    .per_call = 32 };
	void *b, *g;
	double t0;

	p.cp = kmem_cache_create("limitgrow", 256, 0, NULL, NULL,
	    pile_reclaim, &p, NULL, 0);
	pile_fill(&p, 64);                      /* far below the limit */
	b = kmem_alloc(4 << 20, KM_SLEEP);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(tunable_set_id(KT_MEMORY_LIMIT, 32 << 20), 0);
	usleep(100000);
	ck_assert_int_eq(atomic_load(&p.calls), 0);
	g = ka_large_grow(b, 64 << 20);         /* 60 MiB more */
	if (g == NULL) {
		/* Cannot grow here (no mremap): nothing to check. */
		ck_assert_int_eq(tunable_set_id(KT_MEMORY_LIMIT, 0), 0);
		kmem_free(b, 4 << 20);
		pile_empty(&p);
		kmem_cache_destroy(p.cp);
		return;
	}
	t0 = test_now();
	while (atomic_load(&p.calls) == 0 && test_now() - t0 < 10)
		usleep(10000);
	ck_assert_msg(atomic_load(&p.calls) >= 1, "a large block grown to 64 "
	    "MiB over a 32 MiB kmem_memory_limit: no reclaim callback called");
	ck_assert_int_eq(tunable_set_id(KT_MEMORY_LIMIT, 0), 0);
	kmem_free(g, 64 << 20);
	pile_empty(&p);
	kmem_cache_destroy(p.cp);
}
END_TEST

/*
 * "target" calls a reclaim callback again only while the process is
 * still over kmem_memory_limit: here one call, which frees 4 MiB, takes it
 * back under (2 MiB over), so the callback must not be called again and
 * again until it has freed everything it holds.
 */
START_TEST(test_memory_limit_target_stops)
{
	static struct pile p = { .lock = PTHREAD_MUTEX_INITIALIZER,
	    .per_call = 1024 };
	kmem_cache_t *big;
	struct vmem_usage u;
	void *v[10];
	double t0;

	ck_assert_int_eq(tunable_set_id(KT_CACHE_GROW_AHEAD, 0), 0);
	ck_assert_int_eq(tunable_set_id(KT_CACHE_RECLAIM, KMEM_RECLAIM_TARGET),
	    0);
	p.cp = kmem_cache_create("target", 4096, 0, NULL, NULL,
	    pile_reclaim, &p, NULL, KMC_RECLAIMABLE);
	pile_fill(&p, 4096);                    /* 16 MiB */
	big = kmem_cache_create("heldbig", 1 << 20, 0, NULL, NULL, NULL, NULL,
	    NULL, 0);
	for (int i = 0; i < 10; i++)            /* 10 MiB, held */
		v[i] = kmem_cache_alloc(big, KM_SLEEP);
	vmem_usage(&u);
	ck_assert_int_eq(tunable_set_id(KT_MEMORY_LIMIT,
	    (int64_t)u.inuse - (2 << 20)), 0);
	t0 = test_now();
	while (atomic_load(&p.calls) == 0 && test_now() - t0 < 10)
		usleep(10000);
	usleep(300000);                         /* any further calls */
	ck_assert_msg(atomic_load(&p.calls) == 1 && pile_count(&p) == 3072,
	    "reclaim called %d times, %d of 4096 objects left; one call was "
	    "enough to get under the limit", atomic_load(&p.calls),
	    pile_count(&p));
	ck_assert_int_eq(tunable_set_id(KT_MEMORY_LIMIT, 0), 0);
	ck_assert_int_eq(tunable_set_id(KT_CACHE_GROW_AHEAD, 1), 0);
	for (int i = 0; i < 10; i++)
		kmem_cache_free(big, v[i]);
	pile_empty(&p);
	kmem_cache_destroy(big);
	kmem_cache_destroy(p.cp);
}
END_TEST

/*
 * Large kmem_alloc spans kept for reuse (spares) cost the program nothing
 * to give back: a pressure reap returns them before it asks reclaim
 * callbacks for more.  Here the spares alone (16 MiB) take the process
 * back under the limit (12 MiB over), so "target" calls the callback
 * once, as for any pressure event, not three times (4 MiB each) while
 * the spares stay mapped until after the walk.
 */
START_TEST(test_memory_limit_spares_first)
{
	enum { N = 4, SZ = 4 << 20 };
	static struct pile p = { .lock = PTHREAD_MUTEX_INITIALIZER,
	    .per_call = 1024 };
	struct vmem_usage u;
	void *v[N];
	double t0;

	ck_assert_int_eq(tunable_set_id(KT_CACHE_GROW_AHEAD, 0), 0);
	ck_assert_int_eq(tunable_set_id(KT_CACHE_RECLAIM, KMEM_RECLAIM_TARGET),
	    0);
	p.cp = kmem_cache_create("sparesfirst", 4096, 0, NULL, NULL,
	    pile_reclaim, &p, NULL, KMC_RECLAIMABLE);
	pile_fill(&p, 4096);                    /* 16 MiB */
	for (int i = 0; i < N; i++) {
		v[i] = kmem_alloc(SZ, KM_SLEEP);
		ck_assert_ptr_nonnull(v[i]);
	}
	for (int i = 0; i < N; i++)             /* 16 MiB of spares */
		kmem_free(v[i], SZ);
	vmem_usage(&u);
	ck_assert_int_eq(tunable_set_id(KT_MEMORY_LIMIT,
	    (int64_t)u.inuse - (12 << 20)), 0);
	t0 = test_now();
	while (atomic_load(&p.calls) == 0 && test_now() - t0 < 10)
		usleep(10000);
	usleep(300000);                         /* any further calls */
	ck_assert_msg(atomic_load(&p.calls) == 1 && pile_count(&p) == 3072,
	    "reclaim called %d times, %d of 4096 objects left; the spares "
	    "alone took the process back under the limit",
	    atomic_load(&p.calls), pile_count(&p));
	ck_assert_int_eq(tunable_set_id(KT_MEMORY_LIMIT, 0), 0);
	ck_assert_int_eq(tunable_set_id(KT_CACHE_GROW_AHEAD, 1), 0);
	pile_empty(&p);
	kmem_cache_destroy(p.cp);
}
END_TEST

/* kmem_cache_reclaim=once: one callback per pressure event. */
START_TEST(test_reclaim_once)
{
	static struct pile p = { .lock = PTHREAD_MUTEX_INITIALIZER,
	    .per_call = 1 };

	ck_assert_int_eq(tunable_set_id(KT_CACHE_RECLAIM, KMEM_RECLAIM_ONCE),
	    0);
	p.cp = kmem_cache_create("once", 256, 0, NULL, NULL, pile_reclaim,
	    &p, NULL, 0);
	pile_fill(&p, 100);
	reap_pressure();
	ck_assert_int_eq(atomic_load(&p.calls), 1);
	ck_assert_int_eq(pile_count(&p), 99);
	ck_assert_int_eq(tunable_set_id(KT_CACHE_RECLAIM, KMEM_RECLAIM_TARGET),
	    0);
	reap_pressure();                /* until it stops freeing: 16 max */
	ck_assert_int_eq(atomic_load(&p.calls), 1 + 16);
	pile_empty(&p);
	kmem_cache_destroy(p.cp);
}
END_TEST

/*
 * "target" calls a reclaim callback again only while it frees objects:
 * one that frees none is called once, also when the cache had objects
 * cached in its magazines (their flush is no progress of the callback).
 * It was called twice.
 */
START_TEST(test_reclaim_target_nothing_freed)
{
	static struct pile p = { .lock = PTHREAD_MUTEX_INITIALIZER,
	    .per_call = 0 };

	ck_assert_int_eq(tunable_set_id(KT_CACHE_RECLAIM, KMEM_RECLAIM_TARGET),
	    0);
	p.cp = kmem_cache_create("frees_none", 256, 0, NULL, NULL,
	    pile_reclaim, &p, NULL, 0);
	pile_fill(&p, 100);
	for (int i = 0; i < 50; i++)            /* cached in magazines */
		kmem_cache_free(p.cp, p.objs[--p.n]);
	ck_assert_uint_ne(stats_of(p.cp).obj_cached, 0);
	reap_pressure();
	ck_assert_msg(atomic_load(&p.calls) == 1, "reclaim that frees nothing "
	    "called %d times", atomic_load(&p.calls));
	pile_empty(&p);
	kmem_cache_destroy(p.cp);
}
END_TEST

/* The PSI monitor is armed where the kernel offers it; events reap. */
START_TEST(test_psi)
{
	kmem_cache_t *cp = kmem_cache_create("psi", 64, 0, NULL, NULL,
	    victim_reclaim, NULL, NULL, 0);
	static const char trigger[] = "some 150000 2000000";
	int fd = open("/proc/pressure/memory", O_RDWR | O_NONBLOCK);
	double t0 = test_now();

	/* The trigger is armed by a delayed task, 2 s after the start. */
	while (reap_psi_attempts() == 0 && test_now() - t0 < 30)
		usleep(10000);
	ck_assert_uint_ge(reap_psi_attempts(), 1);
	/* If the test may arm a trigger here, libkmem could too. */
	if (fd >= 0 && write(fd, trigger, sizeof (trigger)) > 0)
		ck_assert(reap_psi_active());
	if (fd >= 0)
		close(fd);
	atomic_store(&victim_calls, 0);
	reap_psi_event();
	t0 = test_now();
	while (atomic_load(&victim_calls) == 0 && test_now() - t0 < 30)
		usleep(10000);
	ck_assert_int_ge(atomic_load(&victim_calls), 1);
	kmem_cache_destroy(cp);
}
END_TEST

/* Descriptors of this process open on a PSI file (memory.pressure). */
static int
psi_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return (-1);
	while ((e = readdir(d)) != NULL) {
		char path[300], target[PATH_MAX];
		ssize_t len;

		snprintf(path, sizeof (path), "/proc/self/fd/%s", e->d_name);
		len = readlink(path, target, sizeof (target) - 1);
		if (len > 0) {
			target[len] = '\0';
			n += strstr(target, "pressure") != NULL;
		}
	}
	closedir(d);
	return (n);
}

/*
 * A forked child has no PSI thread: it does not keep the parent's
 * trigger open (each generation of children would hold one more), and
 * arms its own later.
 */
START_TEST(test_psi_fork_closes)
{
	kmem_cache_t *cp = kmem_cache_create("psifork", 64, 0, NULL, NULL,
	    NULL, NULL, NULL, 0);
	double t0 = test_now();
	pid_t pid;
	int st;

	while (reap_psi_attempts() == 0 && test_now() - t0 < 30)
		usleep(10000);
	if (!reap_psi_active()) {
		kmem_cache_destroy(cp);
		return;                 /* no PSI here */
	}
	ck_assert_int_eq(psi_fds(), 1);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(psi_fds() == 0 ? 0 : 1);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	kmem_cache_destroy(cp);
}
END_TEST

/* The descriptor number of this process's PSI trigger, or -1. */
static int
psi_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int fd = -1;

	if (d == NULL)
		return (-1);
	while ((e = readdir(d)) != NULL) {
		char path[300], target[PATH_MAX];
		ssize_t len;

		snprintf(path, sizeof (path), "/proc/self/fd/%s", e->d_name);
		len = readlink(path, target, sizeof (target) - 1);
		if (len > 0) {
			target[len] = '\0';
			if (strstr(target, "pressure") != NULL)
				fd = atoi(e->d_name);
		}
	}
	closedir(d);
	return (fd);
}

/*
 * A program that closes the trigger's descriptor (bash closes a pipe's
 * descriptor twice, and the second close hits whatever took the number)
 * and reuses the number: the descriptor is the program's now.  Neither
 * the monitor thread nor a forked child closes it (a bash pipeline's
 * child found its pipe closed before it could make it standard input).
 */
START_TEST(test_psi_fd_reused)
{
	kmem_cache_t *cp = kmem_cache_create("psireuse", 64, 0, NULL, NULL,
	    NULL, NULL, NULL, 0);
	double t0 = test_now();
	int fd, pfd[2], st;
	pid_t pid;

	while (reap_psi_attempts() == 0 && test_now() - t0 < 30)
		usleep(10000);
	if (!reap_psi_active() || (fd = psi_fd()) < 0) {
		kmem_cache_destroy(cp);
		return;                 /* no PSI here */
	}
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(pipe(pfd), 0);
	if (pfd[0] != fd) {
		ck_assert_int_eq(dup2(pfd[0], fd), fd);
		(void) close(pfd[0]);
	}
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fcntl(fd, F_GETFD) != -1 ? 0 : 1);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	ck_assert_msg(WEXITSTATUS(st) == 0, "the child found descriptor %d "
	    "closed", fd);
	usleep(200000);                 /* for the monitor thread to end */
	ck_assert_msg(fcntl(fd, F_GETFD) != -1, "descriptor %d was closed",
	    fd);
	(void) close(fd);
	(void) close(pfd[1]);
	kmem_cache_destroy(cp);
}
END_TEST

/* Destroy while the aging pass is running on the same cache. */
START_TEST(test_destroy_while_aging)
{
	fast_aging();
	ck_assert_int_eq(tunable_set_id(KT_REAP_INTERVAL, 1), 0);
	for (int round = 0; round < 30; round++) {
		kmem_cache_t *cp = kmem_cache_create("brief", 128, 0, NULL,
		    NULL, NULL, NULL, NULL, 0);
		for (int i = 0; i < 3000; i++)
			kmem_cache_free(cp, kmem_cache_alloc(cp, KM_SLEEP));
		usleep(30000 + (useconds_t)(round * 1000));
		kmem_cache_destroy(cp);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("reap");
	TCase *tc = tcase_create("reap");
	TCase *gr = tcase_create("grow");
	TCase *pr = tcase_create("pressure");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_reclaim_reap_now_empties);
	tcase_add_test(tc, test_kmem_reap_every_cache);
	tcase_add_test(tc, test_reclaim_reaps_itself);
	tcase_add_test(tc, test_reap_faults_nothing_unused);
	tcase_add_test(tc, test_destroy_from_reclaim);
	tcase_add_test(tc, test_destroy_from_reclaim_threads);
	tcase_add_test(tc, test_destroy_waits_for_walkers);
	tcase_add_test(tc, test_aging_returns_slabs);
	tcase_add_test(tc, test_kmem_taskq_stack);
#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)
	tcase_add_test(tc, test_kmem_taskq_after_failure);
	tcase_add_test(tc, test_kmem_taskq_made_by_growth);
	tcase_add_test(tc, test_aging_survives_no_entry);
	tcase_add_test(tc, test_interval_change_no_entry);
	tcase_add_test(tc, test_start_no_entry);
	tcase_add_test(tc, test_interval_from_zero_no_entry);
	tcase_add_test(tc, test_fork_stats_no_entry);
	tcase_add_test(tc, test_fork_while_taskq_made);
	tcase_add_test(tc, test_fork_while_taskq_made_no_create);
#endif
	tcase_add_test(tc, test_interval_changes_leave_no_ticks);
	tcase_add_test(tc, test_rss_after_burst);
	tcase_add_test(tc, test_destroy_while_aging);
	suite_add_tcase(s, tc);
	tcase_set_timeout(gr, 60);
	tcase_add_test(gr, test_deadlock_path);
	tcase_add_test(gr, test_grow_task_reclaim_reaps);
	tcase_add_test(gr, test_grow_task_reclaim_destroys);
	tcase_add_test(gr, test_reclaim_destroys_queued_grow);
	tcase_add_test(gr, test_grow_ahead);
	tcase_add_test(gr, test_grow_ahead_cap);
	tcase_add_test(gr, test_small_process_quiet);
	tcase_add_test(gr, test_big_cache_grows_ahead);
	tcase_add_test(gr, test_fork_child_taskq);
	suite_add_tcase(s, gr);
	tcase_set_timeout(pr, 60);
	tcase_add_test(pr, test_mmap_failure_reaps_all);
	tcase_add_test(pr, test_memory_limit);
	tcase_add_test(pr, test_memory_limit_large);
	tcase_add_test(pr, test_memory_limit_large_grow);
	tcase_add_test(pr, test_memory_limit_target_stops);
	tcase_add_test(pr, test_memory_limit_spares_first);
	tcase_add_test(pr, test_reclaim_once);
	tcase_add_test(pr, test_reclaim_target_nothing_freed);
	tcase_add_test(pr, test_psi);
	tcase_add_test(pr, test_psi_fork_closes);
	tcase_add_test(pr, test_psi_fd_reused);
	suite_add_tcase(s, pr);
	return (test_run_suite(s));
}
