/*
 * check_mempool.c - memory pools: the reserve filled at creation, the
 * allocator tried first, the reserve next, KM_NOSLEEP and KM_PUSHPAGE
 * failing or not, KM_SLEEP waiting for a free or for the allocator (and
 * cancelled meanwhile),
 * refill before release, resize both ways (also past the inline room and
 * while 8 threads work), 8 KM_SLEEP threads through a pool of 4 with the
 * allocator failing (every element tagged while held, none lost or
 * duplicated), fork() while threads use a pool, the slab and kmalloc
 * pools on real caches (and a reserve that an address-space limit cannot
 * hold: ENOMEM, not a wait for memory), destroy with elements out, a
 * double free under KMEM_DEBUG (into the reserve, or of a debug cache's
 * element given to free_fn already), statistics, and bad arguments
 * (one line each; a min_nr whose pointers exceed memory: ENOMEM).
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "libkmem/kmem.h"
#include "libkmem/mempool.h"
#include "tunables.h"
#include "testutil.h"

#define NTHREADS        8

/* ------------------------------------------------------------ allocator */

/*
 * A test allocator: elements from the C heap, counted.  It fails while
 * 'mode' says so.  Each element records who holds it (tag) so that the
 * tests can tell an element handed to two holders at once.
 */
enum { TA_OK, TA_FAIL, TA_FLAKY, TA_FAIL_NOSLEEP };

struct telem {
	_Atomic unsigned int tag;       /* 0: nobody; else holder + 1 */
	uint32_t magic;
	uint64_t serial;
};

#define TELEM_MAGIC     0x7e1e7e1eu

struct talloc {
	_Atomic int mode;
	_Atomic uint64_t calls;
	_Atomic uint64_t allocated;     /* elements handed out */
	_Atomic uint64_t freed;         /* elements taken back */
	_Atomic uint64_t sleep_calls;   /* calls with KM_SLEEP */
	_Atomic uint64_t nosleep_calls;
	_Atomic uint64_t pushpage_calls;
	_Atomic uint64_t bad_frees;     /* not a live element, or still held */
	_Atomic int fail_after;         /* > 0: fail once this many exist */
};

static void *
talloc_fn(int kmflags, void *data)
{
	struct talloc *ta = data;
	uint64_t call = atomic_fetch_add(&ta->calls, 1);
	int mode = atomic_load(&ta->mode);
	int after = atomic_load(&ta->fail_after);
	struct telem *e;

	if (kmflags & KM_NOSLEEP)
		atomic_fetch_add(&ta->nosleep_calls, 1);
	else if (kmflags & KM_PUSHPAGE)
		atomic_fetch_add(&ta->pushpage_calls, 1);
	else
		atomic_fetch_add(&ta->sleep_calls, 1);
	if (mode == TA_FAIL || (mode == TA_FLAKY && (call & 1)) ||
	    (mode == TA_FAIL_NOSLEEP && (kmflags & KM_NOSLEEP)))
		return (NULL);
	if (after > 0 && atomic_load(&ta->allocated) -
	    atomic_load(&ta->freed) >= (uint64_t)after)
		return (NULL);
	e = calloc(1, sizeof (*e));
	if (e == NULL)
		return (NULL);
	e->magic = TELEM_MAGIC;
	e->serial = atomic_fetch_add(&ta->allocated, 1);
	return (e);
}

static void
tfree_fn(void *element, void *data)
{
	struct talloc *ta = data;
	struct telem *e = element;

	if (e == NULL || e->magic != TELEM_MAGIC || atomic_load(&e->tag) != 0) {
		atomic_fetch_add(&ta->bad_frees, 1);
		return;
	}
	e->magic = 0;
	atomic_fetch_add(&ta->freed, 1);
	free(e);
}

static uint64_t
talloc_live(struct talloc *ta)
{
	return (atomic_load(&ta->allocated) - atomic_load(&ta->freed));
}

static struct mempool_stats
stats_of(mempool_t *mp)
{
	struct mempool_stats st;

	ck_assert_int_eq(mempool_stats(mp, &st), 0);
	return (st);
}

/* Wait (bounded by the test's timeout) until 'mp' has had 'n' waits. */
static void
wait_for_waits(mempool_t *mp, uint64_t n)
{
	struct timespec ts = { 0, 1000000 };

	while (stats_of(mp).waits < n)
		nanosleep(&ts, NULL);
}

/*
 * Take every element of the reserve with the allocator failing: they
 * must be distinct live elements, exactly curr_nr of them, and the next
 * KM_NOSLEEP allocation must fail.  They are freed back afterwards.
 */
static void
check_reserve(mempool_t *mp, struct talloc *ta)
{
	int saved = atomic_exchange(&ta->mode, TA_FAIL);
	uint64_t n = stats_of(mp).curr_nr;
	struct telem **got = calloc(n + 1, sizeof (*got));

	ck_assert_ptr_nonnull(got);
	for (uint64_t i = 0; i < n; i++) {
		got[i] = mempool_alloc(mp, KM_NOSLEEP);
		ck_assert_ptr_nonnull(got[i]);
		ck_assert_uint_eq(got[i]->magic, TELEM_MAGIC);
		ck_assert_uint_eq(atomic_exchange(&got[i]->tag, 1), 0);
	}
	errno = 0;
	ck_assert_ptr_null(mempool_alloc(mp, KM_NOSLEEP));
	ck_assert_int_eq(errno, ENOMEM);
	for (uint64_t i = 0; i < n; i++) {
		atomic_store(&got[i]->tag, 0);
		mempool_free(got[i], mp);
	}
	ck_assert_uint_eq(stats_of(mp).curr_nr, n);
	free(got);
	atomic_store(&ta->mode, saved);
}

/* ------------------------------------------------------------ basics */

START_TEST(test_create_fills_reserve)
{
	struct talloc ta = { 0 };
	mempool_t *mp = mempool_create(5, talloc_fn, tfree_fn, &ta);
	struct mempool_stats st;

	ck_assert_ptr_nonnull(mp);
	ck_assert_uint_eq(atomic_load(&ta.sleep_calls), 5);
	ck_assert_uint_eq(atomic_load(&ta.calls), 5);
	ck_assert_uint_eq(talloc_live(&ta), 5);
	st = stats_of(mp);
	ck_assert_uint_eq(st.min_nr, 5);
	ck_assert_uint_eq(st.curr_nr, 5);
	ck_assert_uint_eq(st.out, 0);
	check_reserve(mp, &ta);
	mempool_destroy(mp);
	ck_assert_uint_eq(talloc_live(&ta), 0);
	ck_assert_uint_eq(atomic_load(&ta.bad_frees), 0);
}
END_TEST

START_TEST(test_create_enomem)
{
	struct talloc ta = { 0 };

	atomic_store(&ta.fail_after, 3);
	errno = 0;
	ck_assert_ptr_null(mempool_create(8, talloc_fn, tfree_fn, &ta));
	ck_assert_int_eq(errno, ENOMEM);
	/* The three it got went back. */
	ck_assert_uint_eq(atomic_load(&ta.allocated), 3);
	ck_assert_uint_eq(talloc_live(&ta), 0);
	ck_assert_uint_eq(atomic_load(&ta.bad_frees), 0);
}
END_TEST

/* While the allocator works, the reserve is left alone. */
START_TEST(test_allocator_first)
{
	struct talloc ta = { 0 };
	mempool_t *mp = mempool_create(3, talloc_fn, tfree_fn, &ta);
	void *e[10];
	struct mempool_stats st;

	ck_assert_ptr_nonnull(mp);
	for (int i = 0; i < 10; i++) {
		e[i] = mempool_alloc(mp, i % 2 ? KM_SLEEP : KM_NOSLEEP);
		ck_assert_ptr_nonnull(e[i]);
	}
	/* Every call asked it without letting it wait. */
	ck_assert_uint_eq(atomic_load(&ta.nosleep_calls), 10);
	ck_assert_uint_eq(atomic_load(&ta.sleep_calls), 3);     /* creation */
	st = stats_of(mp);
	ck_assert_uint_eq(st.curr_nr, 3);
	ck_assert_uint_eq(st.alloc, 10);
	ck_assert_uint_eq(st.alloc_reserve, 0);
	ck_assert_uint_eq(st.out, 10);
	/* The reserve is full: frees go straight back. */
	for (int i = 0; i < 10; i++)
		mempool_free(e[i], mp);
	ck_assert_uint_eq(atomic_load(&ta.freed), 10);
	st = stats_of(mp);
	ck_assert_uint_eq(st.free, 10);
	ck_assert_uint_eq(st.free_reserve, 0);
	ck_assert_uint_eq(st.out, 0);
	mempool_destroy(mp);
	ck_assert_uint_eq(talloc_live(&ta), 0);
}
END_TEST

/*
 * The allocator fails: the reserve serves KM_NOSLEEP until it is empty,
 * then KM_NOSLEEP gets NULL with ENOMEM.
 */
START_TEST(test_reserve_then_nosleep_fails)
{
	struct talloc ta = { 0 };
	mempool_t *mp = mempool_create(3, talloc_fn, tfree_fn, &ta);
	void *e[3];
	struct mempool_stats st;

	ck_assert_ptr_nonnull(mp);
	atomic_store(&ta.mode, TA_FAIL);
	for (int i = 0; i < 3; i++) {
		e[i] = mempool_alloc(mp, KM_NOSLEEP);
		ck_assert_ptr_nonnull(e[i]);
		ck_assert_uint_eq(stats_of(mp).curr_nr, (uint64_t)(2 - i));
	}
	ck_assert(e[0] != e[1] && e[1] != e[2] && e[0] != e[2]);
	errno = 0;
	ck_assert_ptr_null(mempool_alloc(mp, KM_NOSLEEP));
	ck_assert_int_eq(errno, ENOMEM);
	/* KM_NOSLEEP | KM_PUSHPAGE is KM_NOSLEEP: no KM_PUSHPAGE call. */
	errno = 0;
	ck_assert_ptr_null(mempool_alloc(mp, KM_NOSLEEP | KM_PUSHPAGE));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_eq(atomic_load(&ta.pushpage_calls), 0);
	st = stats_of(mp);
	ck_assert_uint_eq(st.alloc, 3);
	ck_assert_uint_eq(st.alloc_reserve, 3);
	ck_assert_uint_eq(st.alloc_fail, 2);
	ck_assert_uint_eq(st.waits, 0);
	for (int i = 0; i < 3; i++)
		mempool_free(e[i], mp);
	st = stats_of(mp);
	ck_assert_uint_eq(st.curr_nr, 3);
	ck_assert_uint_eq(st.free_reserve, 3);
	ck_assert_uint_eq(atomic_load(&ta.freed), 0);
	mempool_destroy(mp);
	ck_assert_uint_eq(talloc_live(&ta), 0);
}
END_TEST

/*
 * KM_PUSHPAGE: allocator without waiting, reserve, then the allocator
 * once with KM_PUSHPAGE; NULL only when that fails too.  Never sleeps.
 */
START_TEST(test_pushpage)
{
	struct talloc ta = { 0 };
	mempool_t *mp = mempool_create(1, talloc_fn, tfree_fn, &ta);
	void *r, *p;

	ck_assert_ptr_nonnull(mp);
	atomic_store(&ta.mode, TA_FAIL_NOSLEEP);
	r = mempool_alloc(mp, KM_PUSHPAGE);             /* the reserve's */
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(atomic_load(&ta.pushpage_calls), 0);
	ck_assert_uint_eq(stats_of(mp).alloc_reserve, 1);
	p = mempool_alloc(mp, KM_PUSHPAGE);             /* KM_PUSHPAGE's */
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(atomic_load(&ta.pushpage_calls), 1);
	ck_assert_uint_eq(talloc_live(&ta), 2);

	atomic_store(&ta.mode, TA_FAIL);
	errno = 0;
	ck_assert_ptr_null(mempool_alloc(mp, KM_PUSHPAGE));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_eq(atomic_load(&ta.pushpage_calls), 2);
	ck_assert_uint_eq(stats_of(mp).alloc_fail, 1);
	ck_assert_uint_eq(stats_of(mp).waits, 0);
	mempool_free(p, mp);            /* refills the reserve */
	mempool_free(r, mp);            /* released */
	ck_assert_uint_eq(stats_of(mp).curr_nr, 1);
	ck_assert_uint_eq(talloc_live(&ta), 1);
	mempool_destroy(mp);
	ck_assert_uint_eq(talloc_live(&ta), 0);
}
END_TEST

/* A free refills the reserve first, and only then goes to free_fn. */
START_TEST(test_refill_before_release)
{
	struct talloc ta = { 0 };
	mempool_t *mp = mempool_create(4, talloc_fn, tfree_fn, &ta);
	void *e[6];

	ck_assert_ptr_nonnull(mp);
	atomic_store(&ta.mode, TA_FAIL);
	for (int i = 0; i < 4; i++)
		ck_assert_ptr_nonnull(e[i] = mempool_alloc(mp, KM_SLEEP));
	ck_assert_uint_eq(stats_of(mp).curr_nr, 0);
	atomic_store(&ta.mode, TA_OK);
	for (int i = 4; i < 6; i++)
		ck_assert_ptr_nonnull(e[i] = mempool_alloc(mp, KM_SLEEP));
	ck_assert_uint_eq(stats_of(mp).alloc_reserve, 4);

	/* Allocator-made elements first: they refill the reserve all the same. */
	for (int i = 5; i >= 0; i--) {
		mempool_free(e[i], mp);
		if (i >= 2) {
			ck_assert_uint_eq(stats_of(mp).curr_nr,
			    (uint64_t)(6 - i));
			ck_assert_uint_eq(atomic_load(&ta.freed), 0);
		} else {
			ck_assert_uint_eq(stats_of(mp).curr_nr, 4);
			ck_assert_uint_eq(atomic_load(&ta.freed),
			    (uint64_t)(2 - i));
		}
	}
	ck_assert_uint_eq(stats_of(mp).free_reserve, 4);
	mempool_free(NULL, mp);                 /* a no-op */
	ck_assert_uint_eq(stats_of(mp).free, 6);
	check_reserve(mp, &ta);
	mempool_destroy(mp);
	ck_assert_uint_eq(talloc_live(&ta), 0);
	ck_assert_uint_eq(atomic_load(&ta.bad_frees), 0);
}
END_TEST

/* ------------------------------------------------------------ sleeping */

struct sleeper {
	struct talloc ta;
	mempool_t *mp;
	void *held;             /* the pool's one element, taken first */
	void *got;              /* what the sleeping thread got */
	pthread_t t;
};

static void *
sleeper_run(void *arg)
{
	struct sleeper *s = arg;

	s->got = mempool_alloc(s->mp, KM_SLEEP);
	return (NULL);
}

/*
 * A pool of one element whose allocator fails, that element taken, and a
 * thread asleep in KM_SLEEP mempool_alloc (retry interval retry_ms).
 */
static void
sleeper_start(struct sleeper *s, int64_t retry_ms, uint64_t waits)
{
	memset(s, 0, sizeof (*s));
	ck_assert_int_eq(tunable_set_id(KT_MEMPOOL_RETRY_MS, retry_ms), 0);
	s->mp = mempool_create(1, talloc_fn, tfree_fn, &s->ta);
	ck_assert_ptr_nonnull(s->mp);
	atomic_store(&s->ta.mode, TA_FAIL);
	s->held = mempool_alloc(s->mp, KM_SLEEP);
	ck_assert_ptr_nonnull(s->held);
	ck_assert_int_eq(pthread_create(&s->t, NULL, sleeper_run, s), 0);
	wait_for_waits(s->mp, waits);
}

/* KM_SLEEP with nothing anywhere sleeps until an element is freed back. */
START_TEST(test_sleep_woken_by_free)
{
	struct sleeper s;

	/* The retry interval is far longer than the test may run. */
	sleeper_start(&s, 60000, 1);
	mempool_free(s.held, s.mp);
	ck_assert_int_eq(pthread_join(s.t, NULL), 0);
	ck_assert_ptr_eq(s.got, s.held);
	ck_assert_uint_eq(stats_of(s.mp).curr_nr, 0);
	mempool_free(s.got, s.mp);
	mempool_destroy(s.mp);
	ck_assert_uint_eq(talloc_live(&s.ta), 0);
}
END_TEST

/*
 * KM_SLEEP also wakes up by itself and retries the allocator, so that
 * memory coming back to the allocator (which nobody signals) reaches it.
 */
START_TEST(test_sleep_retries_allocator)
{
	struct sleeper s;

	sleeper_start(&s, 5, 3);        /* it timed out and slept again */
	ck_assert_uint_eq(talloc_live(&s.ta), 1);
	atomic_store(&s.ta.mode, TA_OK);
	ck_assert_int_eq(pthread_join(s.t, NULL), 0);
	ck_assert_ptr_nonnull(s.got);
	ck_assert_ptr_ne(s.got, s.held);
	ck_assert_uint_eq(talloc_live(&s.ta), 2);
	mempool_free(s.got, s.mp);      /* refills */
	mempool_free(s.held, s.mp);     /* released */
	ck_assert_uint_eq(stats_of(s.mp).curr_nr, 1);
	mempool_destroy(s.mp);
	ck_assert_uint_eq(talloc_live(&s.ta), 0);
}
END_TEST

/*
 * A KM_SLEEP caller cancelled while it sleeps must not die holding the
 * pool's lock: every later call on the pool would hang.  The cancel
 * takes effect after mempool_alloc returns.
 */
static void *
sleeper_free_held(void *arg)
{
	struct sleeper *s = arg;

	mempool_free(s->held, s->mp);
	return (NULL);
}

START_TEST(test_sleep_cancelled)
{
	struct sleeper s;
	struct timespec ts;
	pthread_t t;

	sleeper_start(&s, 60000, 1);
	ck_assert_int_eq(pthread_cancel(s.t), 0);
	usleep(100000);
	ck_assert_int_eq(pthread_create(&t, NULL, sleeper_free_held, &s), 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	ck_assert_msg(pthread_timedjoin_np(t, NULL, &ts) == 0,
	    "mempool_free hangs after a cancelled mempool_alloc");
	ck_assert_int_eq(pthread_join(s.t, NULL), 0);
	ck_assert_ptr_eq(s.got, s.held);
	mempool_free(s.got, s.mp);
	mempool_destroy(s.mp);
	ck_assert_uint_eq(talloc_live(&s.ta), 0);
}
END_TEST

/* ------------------------------------------------------------ threads */

struct worker {
	mempool_t *mp;
	unsigned int id;
	int iters;
	_Atomic int *stop;              /* NULL: run 'iters' iterations */
	_Atomic uint64_t *errors;
	uint64_t done;
	uint64_t nulls;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	uint64_t rnd = 0x9e3779b97f4a7c15ULL * (w->id + 1);

	for (int i = 0; w->stop != NULL ? !atomic_load(w->stop) :
	    i < w->iters; i++) {
		struct telem *e = mempool_alloc(w->mp, KM_SLEEP);

		if (e == NULL) {
			w->nulls++;
			continue;
		}
		if (e->magic != TELEM_MAGIC ||
		    atomic_exchange(&e->tag, w->id + 1) != 0)
			atomic_fetch_add(w->errors, 1);
		if ((test_rand(&rnd) & 7) == 0)
			sched_yield();
		if (atomic_exchange(&e->tag, 0) != w->id + 1)
			atomic_fetch_add(w->errors, 1);
		mempool_free(e, w->mp);
		w->done++;
	}
	return (NULL);
}

/*
 * The allocator fails after creation: 8 threads share the 4 reserved
 * elements with KM_SLEEP, and every one finishes its iterations; no
 * element is handed to two threads, none is lost.
 */
START_TEST(test_threads_allocator_failing)
{
	struct talloc ta = { 0 };
	struct worker w[NTHREADS];
	pthread_t t[NTHREADS];
	_Atomic uint64_t errors = 0;
	int iters = 2000;
	mempool_t *mp;
	struct mempool_stats st;

	ck_assert_int_eq(tunable_set_id(KT_MEMPOOL_RETRY_MS, 50), 0);
	mp = mempool_create(4, talloc_fn, tfree_fn, &ta);
	ck_assert_ptr_nonnull(mp);
	atomic_store(&ta.mode, TA_FAIL);
	for (unsigned int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .mp = mp, .id = i, .iters = iters,
		    .errors = &errors };
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker_run,
		    &w[i]), 0);
	}
	for (unsigned int i = 0; i < NTHREADS; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_uint_eq(w[i].done, (uint64_t)iters);
		ck_assert_uint_eq(w[i].nulls, 0);
	}
	ck_assert_uint_eq(atomic_load(&errors), 0);
	st = stats_of(mp);
	ck_assert_uint_eq(st.alloc, (uint64_t)iters * NTHREADS);
	ck_assert_uint_eq(st.alloc_reserve, (uint64_t)iters * NTHREADS);
	ck_assert_uint_eq(st.free, (uint64_t)iters * NTHREADS);
	ck_assert_uint_eq(st.out, 0);
	ck_assert_uint_eq(st.curr_nr, 4);
	/* The same four elements, all back, nothing made or released. */
	ck_assert_uint_eq(atomic_load(&ta.allocated), 4);
	ck_assert_uint_eq(atomic_load(&ta.freed), 0);
	check_reserve(mp, &ta);
	mempool_destroy(mp);
	ck_assert_uint_eq(talloc_live(&ta), 0);
	ck_assert_uint_eq(atomic_load(&ta.bad_frees), 0);
}
END_TEST

/*
 * Resize up and down while 8 KM_SLEEP threads work, with the allocator
 * failing all the time or every other call.
 */
static void
resize_under_load(int mode)
{
	struct talloc ta = { 0 };
	struct worker w[NTHREADS];
	pthread_t t[NTHREADS];
	_Atomic uint64_t errors = 0;
	_Atomic int stop = 0;
	double end = test_now() + test_seconds(3) / 3;
	uint64_t rnd = 12345, total = 0, resizes = 0;
	mempool_t *mp;
	struct mempool_stats st;

	ck_assert_int_eq(tunable_set_id(KT_MEMPOOL_RETRY_MS, 20), 0);
	mp = mempool_create(4, talloc_fn, tfree_fn, &ta);
	ck_assert_ptr_nonnull(mp);
	atomic_store(&ta.mode, mode);
	for (unsigned int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .mp = mp, .id = i, .stop = &stop,
		    .errors = &errors };
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker_run,
		    &w[i]), 0);
	}
	while (test_now() < end || resizes < 200) {
		/* Mostly small, sometimes past the room in the pool's page. */
		int n = (test_rand(&rnd) & 15) == 0 ? 1000 + (int)(test_rand(
		    &rnd) % 1000) : 1 + (int)(test_rand(&rnd) % 12);
		int ret = mempool_resize(mp, n);

		ck_assert(ret == 0 || (ret == -1 && errno == ENOMEM));
		ck_assert_uint_eq(stats_of(mp).min_nr, (uint64_t)n);
		resizes++;
	}
	atomic_store(&stop, 1);
	for (unsigned int i = 0; i < NTHREADS; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_uint_eq(w[i].nulls, 0);
		ck_assert_uint_gt(w[i].done, 0);
		total += w[i].done;
	}
	ck_assert_uint_eq(atomic_load(&errors), 0);
	st = stats_of(mp);
	ck_assert_uint_eq(st.out, 0);
	ck_assert_uint_eq(st.alloc, total);
	ck_assert_uint_le(st.curr_nr, st.min_nr);
	/* Every element in existence is in the reserve. */
	ck_assert_uint_eq(talloc_live(&ta), st.curr_nr);
	check_reserve(mp, &ta);
	/* A working allocator fills it up again. */
	atomic_store(&ta.mode, TA_OK);
	ck_assert_int_eq(mempool_resize(mp, 6), 0);
	ck_assert_uint_eq(stats_of(mp).curr_nr, 6);
	ck_assert_uint_eq(talloc_live(&ta), 6);
	check_reserve(mp, &ta);
	mempool_destroy(mp);
	ck_assert_uint_eq(talloc_live(&ta), 0);
	ck_assert_uint_eq(atomic_load(&ta.bad_frees), 0);
}

START_TEST(test_resize_under_load_failing)
{
	resize_under_load(TA_FAIL);
}
END_TEST

START_TEST(test_resize_under_load_flaky)
{
	resize_under_load(TA_FLAKY);
}
END_TEST

/* ------------------------------------------------------------ resize */

START_TEST(test_resize)
{
	struct talloc ta = { 0 };
	mempool_t *mp = mempool_create(2, talloc_fn, tfree_fn, &ta);
	uint64_t calls;
	void *e[3];

	ck_assert_ptr_nonnull(mp);
	/* Up, past the room in the pool's own page. */
	ck_assert_int_eq(mempool_resize(mp, 3000), 0);
	ck_assert_uint_eq(stats_of(mp).curr_nr, 3000);
	ck_assert_uint_eq(stats_of(mp).min_nr, 3000);
	ck_assert_uint_eq(talloc_live(&ta), 3000);
	ck_assert_uint_eq(atomic_load(&ta.sleep_calls), 3000);
	check_reserve(mp, &ta);
	/* Down: the surplus goes back to the allocator. */
	ck_assert_int_eq(mempool_resize(mp, 3), 0);
	ck_assert_uint_eq(stats_of(mp).curr_nr, 3);
	ck_assert_uint_eq(talloc_live(&ta), 3);
	/* The same size: nothing happens. */
	calls = atomic_load(&ta.calls);
	ck_assert_int_eq(mempool_resize(mp, 3), 0);
	ck_assert_uint_eq(atomic_load(&ta.calls), calls);
	ck_assert_uint_eq(talloc_live(&ta), 3);

	/* Up while the allocator fails: -1 ENOMEM, the new minimum holds. */
	atomic_store(&ta.mode, TA_FAIL);
	errno = 0;
	ck_assert_int_eq(mempool_resize(mp, 6), -1);
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_eq(stats_of(mp).min_nr, 6);
	ck_assert_uint_eq(stats_of(mp).curr_nr, 3);
	/* ... and frees fill it. */
	atomic_store(&ta.mode, TA_OK);
	for (int i = 0; i < 3; i++)
		ck_assert_ptr_nonnull(e[i] = mempool_alloc(mp, KM_SLEEP));
	ck_assert_uint_eq(stats_of(mp).curr_nr, 3);     /* allocator's */
	for (int i = 0; i < 3; i++)
		mempool_free(e[i], mp);
	ck_assert_uint_eq(stats_of(mp).curr_nr, 6);
	ck_assert_uint_eq(atomic_load(&ta.freed), 2997);

	/* Down below what is out: elements freed later are released. */
	atomic_store(&ta.mode, TA_FAIL);
	for (int i = 0; i < 3; i++)
		ck_assert_ptr_nonnull(e[i] = mempool_alloc(mp, KM_SLEEP));
	ck_assert_int_eq(mempool_resize(mp, 1), 0);
	ck_assert_uint_eq(stats_of(mp).curr_nr, 1);
	for (int i = 0; i < 3; i++)
		mempool_free(e[i], mp);
	ck_assert_uint_eq(stats_of(mp).curr_nr, 1);
	ck_assert_uint_eq(talloc_live(&ta), 1);
	check_reserve(mp, &ta);
	mempool_destroy(mp);
	ck_assert_uint_eq(talloc_live(&ta), 0);
	ck_assert_uint_eq(atomic_load(&ta.bad_frees), 0);
}
END_TEST

/* ------------------------------------------------------------ fork */

struct forker {
	mempool_t *mp;
	_Atomic bool stop;
};

/* Through the reserve (the allocator fails): the pool's lock each time. */
static void *
forker_run(void *arg)
{
	struct forker *f = arg;

	while (!atomic_load(&f->stop)) {
		void *e = mempool_alloc(f->mp, KM_SLEEP);

		mempool_free(e, f->mp);
	}
	return (NULL);
}

/*
 * A child forked while other threads allocate and free through the
 * reserve (holding the pool's lock, or asleep in mempool_alloc) can use
 * the pool at once: it neither waits forever for a lock that a thread
 * of its parent held nor signals the parent's sleepers.
 */
START_TEST(test_fork_while_threads_use)
{
	struct talloc ta = { 0 };
	struct forker f = { 0 };
	pthread_t t[2];
	void *held;
	int hung = 0;

	ck_assert_int_eq(tunable_set_id(KT_MEMPOOL_RETRY_MS, 60000), 0);
	f.mp = mempool_create(2, talloc_fn, tfree_fn, &ta);
	ck_assert_ptr_nonnull(f.mp);
	atomic_store(&ta.mode, TA_FAIL);
	held = mempool_alloc(f.mp, KM_NOSLEEP); /* one element for 2 threads */
	ck_assert_ptr_nonnull(held);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, forker_run, &f), 0);
	for (int i = 0; i < 200; i++) {
		pid_t pid = fork();
		int status;

		if (pid == 0) {
			struct mempool_stats st;
			void *e;

			/* Check's SIGALRM handler would kill the test. */
			(void) signal(SIGALRM, SIG_DFL);
			alarm(2);
			mempool_free(held, f.mp);
			e = mempool_alloc(f.mp, KM_NOSLEEP);
			mempool_free(e, f.mp);
			_exit(e != NULL && mempool_stats(f.mp, &st) == 0 ? 0 : 1);
		}
		ck_assert_int_ge(pid, 0);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			hung++;
	}
	atomic_store(&f.stop, true);
	mempool_free(held, f.mp);       /* wakes a sleeper, if any */
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	ck_assert_msg(hung == 0, "%d of 200 children hung or failed", hung);
	mempool_destroy(f.mp);
	ck_assert_uint_eq(talloc_live(&ta), 0);
	ck_assert_int_eq(tunable_set_id(KT_MEMPOOL_RETRY_MS, 1000), 0);
}
END_TEST

/* ------------------------------------------------------------ stock pools */

static void
cache_destroy_run(void *arg)
{
	kmem_cache_destroy(arg);
}

START_TEST(test_slab_pool)
{
	kmem_cache_t *cp = kmem_cache_create("mempool_test", 96, 0, NULL,
	    NULL, NULL, NULL, NULL, 0);
	struct kmem_cache_stats cs;
	void *e[100];
	mempool_t *mp;
	char buf[512];

	ck_assert_ptr_nonnull(cp);
	mp = mempool_create_slab_pool(8, cp);
	ck_assert_ptr_nonnull(mp);
	ck_assert_int_eq(kmem_cache_stats(cp, &cs), 0);
	ck_assert_uint_eq(cs.alloc - cs.free, 8);       /* the reserve */
	for (int i = 0; i < 100; i++) {
		e[i] = mempool_alloc(mp, i % 3 == 0 ? KM_NOSLEEP : KM_SLEEP);
		ck_assert_ptr_nonnull(e[i]);
		test_fill(e[i], 96, (size_t)i);
	}
	ck_assert_int_eq(kmem_cache_stats(cp, &cs), 0);
	ck_assert_uint_eq(cs.alloc - cs.free, 108);
	for (int i = 0; i < 100; i++) {
		ck_assert_uint_eq(test_verify(e[i], 96, (size_t)i), 96);
		mempool_free(e[i], mp);
	}
	ck_assert_uint_eq(stats_of(mp).curr_nr, 8);
	ck_assert_uint_eq(stats_of(mp).alloc_reserve, 0);
	/* The stock functions on their own. */
	e[0] = mempool_alloc_slab(KM_SLEEP, cp);
	ck_assert_ptr_nonnull(e[0]);
	mempool_free_slab(e[0], cp);
	mempool_destroy(mp);
	ck_assert_int_eq(kmem_cache_stats(cp, &cs), 0);
	ck_assert_uint_eq(cs.alloc, cs.free);
	/* Nothing is left out of the cache: it goes without a word. */
	test_capture_stderr(cache_destroy_run, cp, buf, sizeof (buf));
	ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(test_kmalloc_pool)
{
	mempool_t *mp = mempool_create_kmalloc_pool(4, 200);
	void *e[20], *k;

	ck_assert_ptr_nonnull(mp);
	for (int i = 0; i < 20; i++) {
		e[i] = mempool_alloc(mp, KM_SLEEP);
		ck_assert_ptr_nonnull(e[i]);
		test_fill(e[i], 200, (size_t)i);
	}
	for (int i = 0; i < 20; i++) {
		ck_assert_uint_eq(test_verify(e[i], 200, (size_t)i), 200);
		mempool_free(e[i], mp);
	}
	ck_assert_uint_eq(stats_of(mp).curr_nr, 4);
	ck_assert_int_eq(mempool_resize(mp, 40), 0);
	ck_assert_uint_eq(stats_of(mp).curr_nr, 40);
	ck_assert_int_eq(mempool_resize(mp, 2), 0);
	ck_assert_uint_eq(stats_of(mp).curr_nr, 2);
	k = mempool_kmalloc(KM_SLEEP, (void *)(uintptr_t)200);
	ck_assert_ptr_nonnull(k);
	test_fill(k, 200, 7);
	ck_assert_uint_eq(test_verify(k, 200, 7), 200);
	mempool_kfree(k, (void *)(uintptr_t)200);
	mempool_destroy(mp);
}
END_TEST

#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)
/*
 * In a child under an address-space limit (RLIMIT_AS, 256 MiB above what
 * it has mapped): 0 when filling a stock pool's reserve that the limit
 * cannot hold fails with ENOMEM, in mempool_create_kmalloc_pool(),
 * mempool_create_slab_pool() and mempool_resize(); else the number of the
 * step that did not.  An alarm turns a wait for memory into a failure.
 */
#define MEMOUT_ELEM     ((size_t)32 << 20)      /* a large kmem_alloc */
#define MEMOUT_OBJ      ((size_t)64 << 10)      /* a cache's object */

static int
memory_out_child(void)
{
	kmem_cache_t *cp = kmem_cache_create("mempool_memout", MEMOUT_OBJ, 0,
	    NULL, NULL, NULL, NULL, NULL, 0);
	mempool_t *mp = mempool_create_kmalloc_pool(1, MEMOUT_ELEM);
	struct rlimit rl;
	unsigned long vm_pages;
	FILE *f;

	if (cp == NULL || mp == NULL)
		return (10);
	if ((f = fopen("/proc/self/statm", "r")) == NULL)
		return (11);
	if (fscanf(f, "%lu", &vm_pages) != 1)
		return (12);
	(void) fclose(f);
	rl.rlim_cur = rl.rlim_max = vm_pages * test_page_size() +
	    ((rlim_t)256 << 20);
	if (setrlimit(RLIMIT_AS, &rl) != 0)
		return (13);
	errno = 0;
	if (mempool_create_kmalloc_pool(64, MEMOUT_ELEM) != NULL ||
	    errno != ENOMEM)
		return (1);
	errno = 0;
	if (mempool_create_slab_pool(64 << 10, cp) != NULL || errno != ENOMEM)
		return (2);
	errno = 0;
	if (mempool_resize(mp, 64) != -1 || errno != ENOMEM)
		return (3);
	return (0);
}

/*
 * A stock pool's reserve is filled with KM_SLEEP waiting for its cache to
 * grow, not for memory: a reserve that memory cannot hold makes create
 * and resize fail with ENOMEM.  It waited for memory to be freed for ever.
 */
START_TEST(test_stock_pool_memory_out)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		/* Check's SIGALRM handler would kill the test. */
		(void) signal(SIGALRM, SIG_DFL);
		alarm(10);
		_exit(memory_out_child());
	}
	ck_assert_int_ge(pid, 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(!WIFSIGNALED(status), "child killed by signal %d "
	    "(SIGALRM: it waited for memory)", WTERMSIG(status));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child step %d did not fail with ENOMEM", WEXITSTATUS(status));
}
END_TEST
#endif

/* ------------------------------------------------------------ misuse */

struct call {
	mempool_t *mp;
	struct talloc *ta;
	void *ret;
	int iret;
	int err;
	int which;
};

static void
call_run(void *arg)
{
	struct call *c = arg;
	static uint64_t junk[512];      /* all zero: not a pool, not a cache */

	errno = 0;
	c->ret = NULL;
	c->iret = 0;
	switch (c->which) {
	case 0: c->ret = mempool_create(0, talloc_fn, tfree_fn, c->ta); break;
	case 1: c->ret = mempool_create(-3, talloc_fn, tfree_fn, c->ta); break;
	case 2: c->ret = mempool_create(2, NULL, tfree_fn, c->ta); break;
	case 3: c->ret = mempool_create(2, talloc_fn, NULL, c->ta); break;
	case 4: c->ret = mempool_create_slab_pool(2, NULL); break;
	case 5: c->ret = mempool_create_slab_pool(2, (kmem_cache_t *)junk);
		break;
	case 6: c->ret = mempool_create_kmalloc_pool(2, 0); break;
	case 7: c->ret = mempool_create_kmalloc_pool(0, 64); break;
	case 8: c->ret = mempool_alloc(NULL, KM_SLEEP); break;
	case 9: c->ret = mempool_alloc(c->mp, KM_ZERO); break;
	case 10: c->ret = mempool_alloc(c->mp, 0x100); break;
	case 11: c->ret = mempool_alloc((mempool_t *)junk, KM_SLEEP); break;
	case 12: c->iret = mempool_resize(NULL, 4); break;
	case 13: c->iret = mempool_resize(c->mp, 0); break;
	case 14: c->iret = mempool_resize(c->mp, -1); break;
	case 15: c->iret = mempool_stats(NULL, NULL); break;
	case 16: c->iret = mempool_stats(c->mp, NULL); break;
	case 17: mempool_free(junk, NULL); break;
	case 18: mempool_destroy((mempool_t *)junk); break;
	}
	c->err = errno;
}

START_TEST(test_bad_args)
{
	static const char *const want[] = {
		"min_nr must be at least 1", "min_nr must be at least 1",
		"NULL alloc_fn", "NULL alloc_fn", "NULL cache",
		"not a kmem cache", "size must not be 0",
		"min_nr must be at least 1", "NULL pool", "unknown kmflags",
		"unknown kmflags", "not a mempool", "NULL pool",
		"min_nr must be at least 1", "min_nr must be at least 1",
		"NULL pool", "NULL stats", "not freed", "not a mempool",
	};
	struct talloc ta = { 0 };
	struct call c = { .ta = &ta };
	char buf[512];

	c.mp = mempool_create(2, talloc_fn, tfree_fn, &ta);
	ck_assert_ptr_nonnull(c.mp);
	for (c.which = 0; c.which < (int)(sizeof (want) / sizeof (want[0]));
	    c.which++) {
		test_capture_stderr(call_run, &c, buf, sizeof (buf));
		ck_assert_msg(strstr(buf, want[c.which]) != NULL,
		    "case %d: stderr '%s'", c.which, buf);
		ck_assert_msg(strncmp(buf, "libkmem: ", 9) == 0, "case %d",
		    c.which);
		/* One line each: mempool_free(junk, NULL) wrote two. */
		ck_assert_msg(strchr(buf, '\n') == buf + strlen(buf) - 1,
		    "case %d: not one line: '%s'", c.which, buf);
		ck_assert_ptr_null(c.ret);
		if (c.which >= 12 && c.which <= 16)
			ck_assert_int_eq(c.iret, -1);
		ck_assert_msg(c.err == EINVAL, "case %d: errno %d", c.which,
		    c.err);
	}
	/* None of that touched the pool or the allocator. */
	ck_assert_uint_eq(stats_of(c.mp).curr_nr, 2);
	ck_assert_uint_eq(stats_of(c.mp).min_nr, 2);
	ck_assert_uint_eq(atomic_load(&ta.calls), 2);
	mempool_destroy(NULL);                  /* a no-op */
	mempool_destroy(c.mp);
	ck_assert_uint_eq(talloc_live(&ta), 0);
}
END_TEST

#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)   /* they need sysconf */
/*
 * A machine with little memory: sysconf(_SC_PHYS_PAGES) says fake_phys
 * pages while it is not 0.
 */
static _Atomic long fake_phys;

long
sysconf(int name)
{
	static long (*real)(int);

	if (name == _SC_PHYS_PAGES && atomic_load(&fake_phys) != 0)
		return (atomic_load(&fake_phys));
	if (real == NULL)
		real = (long (*)(int))dlsym(RTLD_NEXT, "sysconf");
	return (real(name));
}

struct huge_call {
	struct talloc *ta;
	mempool_t *mp;
	mempool_t *ret;
	int iret;
	int err;
};

static void
huge_create_run(void *arg)
{
	struct huge_call *h = arg;

	errno = 0;
	h->ret = mempool_create(1 << 20, talloc_fn, tfree_fn, h->ta);
	h->err = errno;
}

static void
huge_resize_run(void *arg)
{
	struct huge_call *h = arg;

	errno = 0;
	h->iret = mempool_resize(h->mp, 1 << 20);
	h->err = errno;
}

/*
 * A min_nr whose element pointers alone take more than the machine's
 * memory (INT_MAX takes 16 GiB) is ENOMEM with one line, before alloc_fn
 * is called: the reserve was filled until the OOM killer came.  Here the
 * machine has 1 MiB, and 1 << 20 pointers take 8 MiB.
 */
START_TEST(test_huge_min_nr)
{
	struct talloc ta = { 0 };
	struct huge_call h = { .ta = &ta };
	char buf[512];

	h.mp = mempool_create(2, talloc_fn, tfree_fn, &ta);
	ck_assert_ptr_nonnull(h.mp);
	atomic_store(&fake_phys, (long)(1048576 / test_page_size()));
	test_capture_stderr(huge_create_run, &h, buf, sizeof (buf));
	atomic_store(&fake_phys, 0);
	ck_assert_ptr_null(h.ret);
	ck_assert_int_eq(h.err, ENOMEM);
	ck_assert_uint_eq(atomic_load(&ta.calls), 2);   /* the small pool's */
	ck_assert_msg(strncmp(buf, "libkmem: mempool_create(1048576)", 32) ==
	    0 && strchr(buf, '\n') == buf + strlen(buf) - 1, "stderr '%s'",
	    buf);

	atomic_store(&fake_phys, (long)(1048576 / test_page_size()));
	test_capture_stderr(huge_resize_run, &h, buf, sizeof (buf));
	atomic_store(&fake_phys, 0);
	ck_assert_int_eq(h.iret, -1);
	ck_assert_int_eq(h.err, ENOMEM);
	ck_assert_uint_eq(atomic_load(&ta.calls), 2);
	ck_assert_uint_eq(stats_of(h.mp).min_nr, 2);    /* nothing changed */
	ck_assert_msg(strstr(buf, "mempool_resize(") != NULL &&
	    strchr(buf, '\n') == buf + strlen(buf) - 1, "stderr '%s'", buf);
	mempool_destroy(h.mp);
	ck_assert_uint_eq(talloc_live(&ta), 0);
}
END_TEST
#endif

static void
destroy_run(void *arg)
{
	mempool_destroy(arg);
}

struct late_alloc {
	mempool_t *mp;
	void *ret;
	int err;
};

static void
late_alloc_run(void *arg)
{
	struct late_alloc *la = arg;

	errno = 0;
	la->ret = mempool_alloc(la->mp, KM_NOSLEEP);
	la->err = errno;
}

/*
 * Destroying a pool with elements out is the caller's bug: reported, the
 * reserve released, and the pool kept so that the late frees still work.
 */
static char static_elems[4][32];
static _Atomic int static_next;

static void *
static_alloc_fn(int kmflags, void *data)
{
	(void) kmflags; (void) data;
	return (static_elems[atomic_fetch_add(&static_next, 1) % 4]);
}

static void
static_free_fn(void *element, void *data)
{
	(void) element; (void) data;
}

START_TEST(test_destroy_elements_out)
{
	struct talloc ta = { 0 };
	mempool_t *mp = mempool_create(3, talloc_fn, tfree_fn, &ta);
	struct late_alloc la = { .mp = mp };
	void *a, *b;
	char buf[512];

	ck_assert_ptr_nonnull(mp);
	ck_assert_ptr_nonnull(a = mempool_alloc(mp, KM_SLEEP));
	ck_assert_ptr_nonnull(b = mempool_alloc(mp, KM_SLEEP));
	test_capture_stderr(destroy_run, mp, buf, sizeof (buf));
	ck_assert_msg(strstr(buf, "2 element(s) still allocated") != NULL,
	    "stderr '%s'", buf);
	ck_assert_uint_eq(talloc_live(&ta), 2);         /* reserve gone */
	ck_assert_uint_eq(stats_of(mp).out, 2);
	ck_assert_uint_eq(stats_of(mp).min_nr, 0);
	mempool_free(a, mp);
	mempool_free(b, mp);
	ck_assert_uint_eq(talloc_live(&ta), 0);
	ck_assert_uint_eq(atomic_load(&ta.bad_frees), 0);
	ck_assert_uint_eq(stats_of(mp).out, 0);
	test_capture_stderr(late_alloc_run, &la, buf, sizeof (buf));
	ck_assert_ptr_null(la.ret);
	ck_assert_int_eq(la.err, EINVAL);
	ck_assert_ptr_nonnull(strstr(buf, "was destroyed"));
	test_capture_stderr(destroy_run, mp, buf, sizeof (buf));
	ck_assert_ptr_nonnull(strstr(buf, "was destroyed"));

	/*
	 * More frees than allocations: said so, not as a negative count.
	 * The elements are static and their free function does nothing, so
	 * the double free below harms nothing.
	 */
	ck_assert_ptr_nonnull(mp = mempool_create(1, static_alloc_fn,
	    static_free_fn, NULL));
	ck_assert_ptr_nonnull(a = mempool_alloc(mp, KM_SLEEP));
	mempool_free(a, mp);            /* into the reserve */
	mempool_free(a, mp);            /* a double free: to static_free_fn */
	test_capture_stderr(destroy_run, mp, buf, sizeof (buf));
	ck_assert_msg(strstr(buf, "1 more mempool_free() calls than "
	    "allocations") != NULL, "stderr '%s'", buf);
	ck_assert_ptr_null(strstr(buf, "-1"));
}
END_TEST

/*
 * KMEM_DEBUG: an element freed while it is in the reserve already (a
 * double free) is reported and left alone, not pushed a second time
 * (two later mempool_alloc calls would both get it).
 */
struct pool_free {
	void *element;
	mempool_t *mp;
};

static void
pool_free_run(void *arg)
{
	struct pool_free *f = arg;

	mempool_free(f->element, f->mp);
}

START_TEST(test_debug_double_free)
{
	struct talloc ta = { 0 };
	struct mempool_stats st;
	struct pool_free f;
	int64_t was;
	mempool_t *mp;
	void *e[2], *again;
	char out[4096], want[128];

	ck_assert_int_eq(kmem_tunable_get("kmem_debug", &was), 0);
	ck_assert_int_eq(kmem_tunable_set("kmem_debug", KMEM_DEBUG_GUARDS |
	    KMEM_DEBUG_NOABORT), 0);
	mp = mempool_create(2, talloc_fn, tfree_fn, &ta);
	ck_assert_int_eq(kmem_tunable_set("kmem_debug", was), 0);
	ck_assert_ptr_nonnull(mp);
	atomic_store(&ta.mode, TA_FAIL);
	for (int i = 0; i < 2; i++) {
		e[i] = mempool_alloc(mp, KM_NOSLEEP);
		ck_assert_ptr_nonnull(e[i]);
	}
	mempool_free(e[0], mp);
	f.element = e[0];
	f.mp = mp;
	test_capture_stderr(pool_free_run, &f, out, sizeof (out));
	snprintf(want, sizeof (want), "KMEM_DEBUG: double free: cache (none), "
	    "buffer %p", e[0]);
	ck_assert_msg(strstr(out, want) != NULL, "no \"%s\" in \"%s\"", want,
	    out);
	st = stats_of(mp);
	ck_assert_uint_eq(st.curr_nr, 1);
	ck_assert_uint_eq(st.free_reserve, 1);
	ck_assert_uint_eq(st.out, 1);
	again = mempool_alloc(mp, KM_NOSLEEP);
	ck_assert_ptr_eq(again, e[0]);
	ck_assert_ptr_null(mempool_alloc(mp, KM_NOSLEEP));
	mempool_free(again, mp);
	mempool_free(e[1], mp);
	atomic_store(&ta.mode, TA_OK);
	mempool_destroy(mp);
	ck_assert_uint_eq(talloc_live(&ta), 0);
	ck_assert_uint_eq(atomic_load(&ta.bad_frees), 0);
}
END_TEST

/*
 * KMEM_DEBUG: an element of a debug cache freed to the pool twice, the
 * first time to free_fn (the reserve was full) and the second into the
 * reserve (drained meanwhile), is reported as a double free and left
 * alone: kept, the cache and the pool would both hand it out.
 */
static kmem_cache_t *dcache;
static _Atomic bool dcache_failing;

static void *
dcache_alloc_fn(int kmflags, void *arg)
{
	(void) arg;
	return (atomic_load(&dcache_failing) ? NULL :
	    kmem_cache_alloc(dcache, kmflags));
}

static void
dcache_free_fn(void *element, void *arg)
{
	(void) arg;
	kmem_cache_free(dcache, element);
}

START_TEST(test_debug_double_free_cache)
{
	struct pool_free f;
	int64_t was;
	mempool_t *mp;
	void *a, *r, *b, *c;
	char out[4096], want[160];

	ck_assert_int_eq(kmem_tunable_get("kmem_debug", &was), 0);
	ck_assert_int_eq(kmem_tunable_set("kmem_debug", KMEM_DEBUG_GUARDS |
	    KMEM_DEBUG_NOABORT), 0);
	dcache = kmem_cache_create("mempool_debug", 64, 0, NULL, NULL, NULL,
	    NULL, NULL, 0);
	mp = mempool_create(1, dcache_alloc_fn, dcache_free_fn, NULL);
	ck_assert_int_eq(kmem_tunable_set("kmem_debug", was), 0);
	ck_assert_ptr_nonnull(dcache);
	ck_assert_ptr_nonnull(mp);

	ck_assert_ptr_nonnull(a = mempool_alloc(mp, KM_SLEEP));
	mempool_free(a, mp);            /* the reserve is full: to free_fn */
	atomic_store(&dcache_failing, true);
	ck_assert_ptr_nonnull(r = mempool_alloc(mp, KM_NOSLEEP));
	ck_assert_ptr_ne(r, a);         /* the reserve's element */
	f.element = a;
	f.mp = mp;
	test_capture_stderr(pool_free_run, &f, out, sizeof (out));
	snprintf(want, sizeof (want), "KMEM_DEBUG: double free: cache "
	    "mempool_debug, buffer %p", a);
	ck_assert_msg(strstr(out, want) != NULL, "no \"%s\" in \"%s\"", want,
	    out);
	ck_assert_uint_eq(stats_of(mp).curr_nr, 0);

	/* a is the cache's alone now. */
	atomic_store(&dcache_failing, false);
	ck_assert_ptr_nonnull(b = kmem_cache_alloc(dcache, KM_SLEEP));
	atomic_store(&dcache_failing, true);
	c = mempool_alloc(mp, KM_NOSLEEP);
	ck_assert_ptr_ne(c, b);
	ck_assert_ptr_null(c);
	kmem_cache_free(dcache, b);
	atomic_store(&dcache_failing, false);
	mempool_free(r, mp);
	mempool_destroy(mp);
	kmem_cache_destroy(dcache);
}
END_TEST

START_TEST(test_tunable)
{
	int id = tunable_find("kmem_mempool_retry_ms");

	tunables_init();        /* the defaults, before parsing */
	ck_assert_int_eq(id, KT_MEMPOOL_RETRY_MS);
	ck_assert_int_eq(tunable_def(KT_MEMPOOL_RETRY_MS)->dflt, 1000);
	ck_assert_int_eq(tunable_parse_env(KT_MEMPOOL_RETRY_MS, "250"), 0);
	ck_assert_int_eq(tunable(KT_MEMPOOL_RETRY_MS), 250);
	ck_assert_int_eq(tunable_set_id(KT_MEMPOOL_RETRY_MS, 0), -1);
	ck_assert_int_eq(errno, ERANGE);
	ck_assert_int_eq(tunable(KT_MEMPOOL_RETRY_MS), 250);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("mempool");
	TCase *basic = tcase_create("basic");
	TCase *sleep = tcase_create("sleep");
	TCase *threads = tcase_create("threads");
	TCase *pools = tcase_create("pools");
	TCase *api = tcase_create("api");

	tcase_set_timeout(basic, 20);
	tcase_add_test(basic, test_create_fills_reserve);
	tcase_add_test(basic, test_create_enomem);
	tcase_add_test(basic, test_allocator_first);
	tcase_add_test(basic, test_reserve_then_nosleep_fails);
	tcase_add_test(basic, test_pushpage);
	tcase_add_test(basic, test_refill_before_release);
	tcase_add_test(basic, test_resize);
	suite_add_tcase(s, basic);

	tcase_set_timeout(sleep, 20);
	tcase_add_test(sleep, test_sleep_woken_by_free);
	tcase_add_test(sleep, test_sleep_retries_allocator);
	tcase_add_test(sleep, test_sleep_cancelled);
	suite_add_tcase(s, sleep);

	tcase_set_timeout(threads, 60);
	tcase_add_test(threads, test_threads_allocator_failing);
	tcase_add_test(threads, test_resize_under_load_failing);
	tcase_add_test(threads, test_resize_under_load_flaky);
	tcase_add_test(threads, test_fork_while_threads_use);
	suite_add_tcase(s, threads);

	tcase_set_timeout(pools, 20);
	tcase_add_test(pools, test_slab_pool);
	tcase_add_test(pools, test_kmalloc_pool);
#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)
	tcase_add_test(pools, test_stock_pool_memory_out);
#endif
	suite_add_tcase(s, pools);

	tcase_set_timeout(api, 20);
	tcase_add_test(api, test_bad_args);
#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)
	tcase_add_test(api, test_huge_min_nr);
#endif
	tcase_add_test(api, test_destroy_elements_out);
	tcase_add_test(api, test_debug_double_free);
	tcase_add_test(api, test_debug_double_free_cache);
	tcase_add_test(api, test_tunable);
	suite_add_tcase(s, api);
	return (test_run_suite(s));
}
