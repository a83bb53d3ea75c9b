/*
 * check_taskq.c - the task queue: ordering (FIFO, TQ_FRONT), dynamic
 * threads growing and shrinking, delayed tasks, cancel, the three waits,
 * destroy with work queued, dispatch from tasks and from many threads,
 * maxalloc with TQ_NOSLEEP and TQ_SLEEP (also against tasks that dispatch
 * their own next run), caller-owned entries, membership,
 * threads that block signals, threads after fork (also a fork from a
 * task), statistics, the registry, and bad arguments (EINVAL and one
 * line on stderr each).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libkmem/kmem.h"
#include "libkmem/taskq.h"
#include "taskq_impl.h"
#include "testutil.h"

#define MS      1000000LL       /* ns */

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Poll until *v >= want or 'ms' pass; returns the last value seen. */
static int
wait_for_int(_Atomic int *v, int want, long ms)
{
	double end = test_now() + (double)ms / 1000;
	int got;

	while ((got = atomic_load(v)) < want && test_now() < end)
		sleep_ms(1);
	return (got);
}

static struct taskq_stats
stats_of(taskq_t *tq)
{
	struct taskq_stats st;

	ck_assert_int_eq(taskq_stats(tq, &st), 0);
	return (st);
}

/* Poll until stats.threads == want or 'ms' pass; returns the last count. */
static uint64_t
wait_for_threads(taskq_t *tq, uint64_t want, long ms)
{
	double end = test_now() + (double)ms / 1000;
	uint64_t got;

	while ((got = stats_of(tq).threads) != want && test_now() < end)
		sleep_ms(5);
	return (got);
}

/* ------------------------------------------------------------ tasks */

/* A gate: tasks entering it block until it opens. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool open;
	_Atomic int entered;
	_Atomic int passed;
};

static void
gate_init(struct gate *g)
{
	memset(g, 0, sizeof (*g));
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cv, NULL);
}

static void
gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->lock);
}

static void
gate_task(void *arg)
{
	struct gate *g = arg;

	atomic_fetch_add(&g->entered, 1);
	pthread_mutex_lock(&g->lock);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->lock);
	pthread_mutex_unlock(&g->lock);
	atomic_fetch_add(&g->passed, 1);
}

static void
count_task(void *arg)
{
	atomic_fetch_add((_Atomic int *)arg, 1);
}

/* stderr of a bad call holds one line, "libkmem: <fn>..." */
static void
expect_one_line(const char *buf, const char *fn)
{
	char want[64];

	(void) snprintf(want, sizeof (want), "libkmem: %s", fn);
	ck_assert_msg(strncmp(buf, want, strlen(want)) == 0 &&
	    strchr(buf, '\n') == buf + strlen(buf) - 1,
	    "%s: not one line: '%s'", fn, buf);
}

struct bad_call {
	taskq_t *tq;
	taskq_ent_t *ent;
	_Atomic int *ran;
	int which;
	long ret;
	int err;
};

/* Bad call number 'which'; what it returned and errno. */
static void
bad_call_run(void *arg)
{
	struct bad_call *c = arg;
	struct taskq_stats st;

	errno = 0;
	c->ret = 0;
	switch (c->which) {
	case 0: c->ret = (long)taskq_dispatch(NULL, count_task, c->ran, 0);
		break;
	case 1: c->ret = (long)taskq_dispatch(c->tq, NULL, c->ran, 0); break;
	case 2: c->ret = (long)taskq_dispatch(c->tq, count_task, c->ran,
		    0x40); break;
	case 3: c->ret = (long)taskq_dispatch_delay(NULL, count_task, c->ran,
		    0, 0); break;
	case 4: c->ret = (long)taskq_dispatch_delay(c->tq, NULL, c->ran, 0,
		    0); break;
	case 5: taskq_dispatch_ent(NULL, count_task, c->ran, 0, c->ent);
		break;
	case 6: taskq_dispatch_ent(c->tq, NULL, c->ran, 0, c->ent); break;
	case 7: taskq_dispatch_ent(c->tq, count_task, c->ran, 0, NULL);
		break;
	case 8: c->ret = taskq_empty_ent(NULL); break;
	case 9: taskq_init_ent(NULL); break;
	case 10: c->ret = taskq_stats(NULL, &st); break;
	case 11: c->ret = taskq_stats(c->tq, NULL); break;
	case 12: taskq_wait(NULL); break;
	case 13: taskq_wait_id(NULL, 1); break;
	case 14: taskq_wait_outstanding(NULL, 0); break;
	case 15: taskq_destroy(NULL); break;
	case 16: c->ret = taskq_member(NULL, pthread_self()); break;
	case 17: c->ret = taskq_cancel_id(NULL, 1); break;
	case 18: taskq_dispatch_ent(c->tq, count_task, c->ran, 0, c->ent);
		break;
	}
	c->err = errno;
}

static void
sleep100_task(void *arg)
{
	(void) arg;
	sleep_ms(100);
}

/* Records values in run order. */
struct rec {
	pthread_mutex_t lock;
	int n;
	int v[256];
};

struct rec_arg {
	struct rec *r;
	int v;
};

static void
rec_task(void *arg)
{
	struct rec_arg *a = arg;

	pthread_mutex_lock(&a->r->lock);
	if (a->r->n < 256)
		a->r->v[a->r->n++] = a->v;
	pthread_mutex_unlock(&a->r->lock);
}

/* A task that takes a while and says when it started and finished. */
struct slow {
	long ms;
	_Atomic int started;
	_Atomic int done;
	_Atomic int64_t ran_at;
};

static void
slow_task(void *arg)
{
	struct slow *s = arg;

	atomic_store(&s->ran_at, taskq_now());
	atomic_store(&s->started, 1);
	if (s->ms > 0)
		sleep_ms(s->ms);
	atomic_store(&s->done, 1);
}

/* ------------------------------------------------------------ ordering */

START_TEST(test_fifo_one_thread)
{
	taskq_t *tq = taskq_create("fifo", 1, defclsyspri, 0, 0, 0);
	struct rec r = { .n = 0 };
	struct rec_arg args[100];
	struct gate g;

	ck_assert_ptr_nonnull(tq);
	pthread_mutex_init(&r.lock, NULL);
	gate_init(&g);
	ck_assert_uint_ne(taskq_dispatch(tq, gate_task, &g, TQ_SLEEP), 0);
	ck_assert_int_eq(wait_for_int(&g.entered, 1, 5000), 1);
	for (int i = 0; i < 100; i++) {
		args[i] = (struct rec_arg){ &r, i };
		ck_assert_uint_ne(taskq_dispatch(tq, rec_task, &args[i],
		    TQ_SLEEP), 0);
	}
	ck_assert_uint_eq(stats_of(tq).tasks_pending, 100);
	gate_open(&g);
	taskq_wait(tq);
	ck_assert_int_eq(r.n, 100);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(r.v[i], i);
	ck_assert_uint_eq(stats_of(tq).tasks_executed, 101);
	ck_assert_uint_eq(stats_of(tq).tasks_pending, 0);
	taskq_destroy(tq);
}
END_TEST

START_TEST(test_front_first)
{
	taskq_t *tq = taskq_create("front", 1, defclsyspri, 0, 0, 0);
	struct rec r = { .n = 0 };
	struct rec_arg args[5];
	struct gate g;
	static const int want[5] = { 100, 101, 0, 1, 2 };

	ck_assert_ptr_nonnull(tq);
	pthread_mutex_init(&r.lock, NULL);
	gate_init(&g);
	ck_assert_uint_ne(taskq_dispatch(tq, gate_task, &g, TQ_SLEEP), 0);
	ck_assert_int_eq(wait_for_int(&g.entered, 1, 5000), 1);
	for (int i = 0; i < 3; i++) {
		args[i] = (struct rec_arg){ &r, i };
		ck_assert_uint_ne(taskq_dispatch(tq, rec_task, &args[i],
		    TQ_SLEEP), 0);
	}
	for (int i = 0; i < 2; i++) {
		args[3 + i] = (struct rec_arg){ &r, 100 + i };
		ck_assert_uint_ne(taskq_dispatch(tq, rec_task, &args[3 + i],
		    TQ_FRONT), 0);
	}
	gate_open(&g);
	taskq_wait(tq);
	ck_assert_int_eq(r.n, 5);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(r.v[i], want[i]);
	taskq_destroy(tq);
}
END_TEST

/* ------------------------------------------------------------ threads */

START_TEST(test_dynamic_grow_shrink)
{
	taskq_t *tq = taskq_create("dynamic", 4, defclsyspri, 0, 0,
	    TASKQ_DYNAMIC);
	struct taskq_stats st;
	struct gate g, g2;

	ck_assert_ptr_nonnull(tq);
	taskq_set_idle_timeout(tq, 100 * MS);
	st = stats_of(tq);
	ck_assert_uint_eq(st.threads, 1);
	ck_assert_uint_eq(st.threads_max, 4);

	/* Four blocking tasks can only all start on four threads. */
	gate_init(&g);
	for (int i = 0; i < 4; i++)
		ck_assert_uint_ne(taskq_dispatch(tq, gate_task, &g, 0), 0);
	ck_assert_int_eq(wait_for_int(&g.entered, 4, 5000), 4);
	st = stats_of(tq);
	ck_assert_uint_eq(st.threads, 4);
	ck_assert_uint_eq(st.threads_idle, 0);

	/* Never more than the maximum: two more wait. */
	for (int i = 0; i < 2; i++)
		ck_assert_uint_ne(taskq_dispatch(tq, gate_task, &g, 0), 0);
	sleep_ms(50);
	st = stats_of(tq);
	ck_assert_uint_eq(st.threads, 4);
	ck_assert_uint_eq(st.tasks_pending, 2);
	ck_assert_int_eq(atomic_load(&g.entered), 4);

	gate_open(&g);
	taskq_wait(tq);
	ck_assert_int_eq(atomic_load(&g.passed), 6);

	/* Idle threads go after the timeout; the first one stays. */
	ck_assert_uint_eq(wait_for_threads(tq, 1, 3000), 1);
	sleep_ms(400);
	ck_assert_uint_eq(stats_of(tq).threads, 1);

	/* And it grows again. */
	gate_init(&g2);
	for (int i = 0; i < 2; i++)
		ck_assert_uint_ne(taskq_dispatch(tq, gate_task, &g2, 0), 0);
	ck_assert_int_eq(wait_for_int(&g2.entered, 2, 5000), 2);
	ck_assert_uint_ge(stats_of(tq).threads, 2);
	gate_open(&g2);
	taskq_destroy(tq);
	ck_assert_int_eq(atomic_load(&g2.passed), 2);
}
END_TEST

/*
 * A dynamic queue whose first thread runs a long task, and whose second
 * is idle past the idle timeout while a task is delayed: the second one
 * stays to run it when due.  It exited, and the delayed task waited for
 * the long one to end (here: the long task gave up after 3 s).
 */
static _Atomic int watch_delayed_ran;

static void
watch_mark(void *arg)
{
	(void) arg;
	atomic_store(&watch_delayed_ran, 1);
}

static void
watch_nop(void *arg)
{
	(void) arg;
}

static void
watch_long(void *arg)
{
	_Atomic int *saw = arg;

	for (int i = 0; i < 600 && !atomic_load(&watch_delayed_ran); i++)
		sleep_ms(5);
	atomic_store(saw, atomic_load(&watch_delayed_ran));
}

START_TEST(test_dynamic_delayed_watcher)
{
	taskq_t *tq = taskq_create("watcher", 4, defclsyspri, 0, 0,
	    TASKQ_DYNAMIC);
	_Atomic int saw = -1;

	ck_assert_ptr_nonnull(tq);
	taskq_set_idle_timeout(tq, 20 * MS);
	atomic_store(&watch_delayed_ran, 0);
	ck_assert_uint_ne(taskq_dispatch(tq, watch_long, &saw, 0), 0);
	ck_assert_uint_ne(taskq_dispatch(tq, watch_nop, NULL, 0), 0);
	ck_assert_uint_eq(wait_for_threads(tq, 2, 3000), 2);
	ck_assert_uint_ne(taskq_dispatch_delay(tq, watch_mark, NULL, 0,
	    taskq_now() + 200 * MS), 0);
	taskq_wait(tq);
	ck_assert_msg(atomic_load(&saw) == 1, "the delayed task ran only "
	    "after the long one");
	taskq_destroy(tq);
}
END_TEST

START_TEST(test_threads_cpu_pct)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	static const int pct[] = { 0, 1, 50, 100 };
	taskq_t *tq;

	ck_assert_int_ge(online, 1);
	for (unsigned int i = 0; i < sizeof (pct) / sizeof (pct[0]); i++) {
		long want = online * pct[i] / 100;

		if (want < 1)
			want = 1;
		tq = taskq_create("pct", pct[i], defclsyspri, 0, 0,
		    TASKQ_THREADS_CPU_PCT);
		ck_assert_ptr_nonnull(tq);
		ck_assert_uint_eq(stats_of(tq).threads_max, (uint64_t)want);
		ck_assert_uint_eq(stats_of(tq).threads, (uint64_t)want);
		taskq_destroy(tq);
	}
	tq = taskq_create("pctdyn", 100, defclsyspri, 0, 0,
	    TASKQ_THREADS_CPU_PCT | TASKQ_DYNAMIC);
	ck_assert_ptr_nonnull(tq);
	ck_assert_uint_eq(stats_of(tq).threads_max, (uint64_t)online);
	ck_assert_uint_eq(stats_of(tq).threads, 1);
	taskq_destroy(tq);
}
END_TEST

/* ------------------------------------------------------------ delay */

START_TEST(test_delay)
{
	taskq_t *tq = taskq_create("delay", 1, defclsyspri, 0, 0, 0);
	struct slow s = { .ms = 0 }, past = { .ms = 0 };
	struct rec r = { .n = 0 };
	struct rec_arg a1, a2;
	struct taskq_stats st;
	int64_t expire, now;
	taskqid_t id;
	struct gate g;
	int started;

	ck_assert_ptr_nonnull(tq);
	expire = taskq_now() + 200 * MS;
	id = taskq_dispatch_delay(tq, slow_task, &s, TQ_SLEEP, expire);
	ck_assert_uint_ne(id, 0);
	st = stats_of(tq);
	ck_assert_uint_eq(st.tasks_delayed, 1);
	ck_assert_uint_eq(st.tasks_pending, 1);

	sleep_ms(100);
	/* Started, if it has, at or after its time (a slow host may lag). */
	started = atomic_load(&s.started);
	now = taskq_now();
	ck_assert_msg(started == 0 || now >= expire,
	    "delayed task ran %lld ns early", (long long)(expire - now));
	taskq_wait_id(tq, id);
	now = taskq_now();
	ck_assert_int_eq(atomic_load(&s.done), 1);
	ck_assert_int_ge(atomic_load(&s.ran_at), expire);
	ck_assert_int_lt(now - expire, 2000 * MS);
	ck_assert_uint_eq(stats_of(tq).tasks_delayed, 0);

	/* Already due: runs at once. */
	id = taskq_dispatch_delay(tq, slow_task, &past, 0, taskq_now() - MS);
	ck_assert_uint_ne(id, 0);
	taskq_wait_id(tq, id);
	ck_assert_int_eq(atomic_load(&past.done), 1);

	/*
	 * Due order, not dispatch order: both become due while the only
	 * thread is held in a gate, and it then takes them by due time.
	 */
	pthread_mutex_init(&r.lock, NULL);
	gate_init(&g);
	ck_assert_uint_ne(taskq_dispatch(tq, gate_task, &g, 0), 0);
	ck_assert_int_eq(wait_for_int(&g.entered, 1, 5000), 1);
	now = taskq_now();
	a1 = (struct rec_arg){ &r, 1 };
	a2 = (struct rec_arg){ &r, 2 };
	ck_assert_uint_ne(taskq_dispatch_delay(tq, rec_task, &a1, 0,
	    now + 200 * MS), 0);
	ck_assert_uint_ne(taskq_dispatch_delay(tq, rec_task, &a2, 0,
	    now + 100 * MS), 0);
	ck_assert_uint_eq(stats_of(tq).tasks_delayed, 2);
	sleep_ms(250);
	gate_open(&g);
	taskq_wait(tq);
	ck_assert_int_eq(r.n, 2);
	ck_assert_int_eq(r.v[0], 2);
	ck_assert_int_eq(r.v[1], 1);
	ck_assert_int_ge(taskq_now() - now, 200 * MS);
	taskq_destroy(tq);
}
END_TEST

/* ------------------------------------------------------------ cancel */

START_TEST(test_cancel_pending)
{
	taskq_t *tq = taskq_create("cancel", 1, defclsyspri, 0, 0, 0);
	_Atomic int ran = 0, ran_delayed = 0, ran_other = 0;
	struct gate g;
	taskqid_t id, did;

	ck_assert_ptr_nonnull(tq);
	gate_init(&g);
	ck_assert_uint_ne(taskq_dispatch(tq, gate_task, &g, 0), 0);
	ck_assert_int_eq(wait_for_int(&g.entered, 1, 5000), 1);
	id = taskq_dispatch(tq, count_task, &ran, 0);
	ck_assert_uint_ne(taskq_dispatch(tq, count_task, &ran_other, 0), 0);
	did = taskq_dispatch_delay(tq, count_task, &ran_delayed, 0,
	    taskq_now() + 50 * MS);
	ck_assert_uint_ne(id, 0);
	ck_assert_uint_ne(did, 0);
	ck_assert_int_eq(taskq_cancel_id(tq, id), 0);
	ck_assert_int_eq(taskq_cancel_id(tq, id), ENOENT);
	ck_assert_int_eq(taskq_cancel_id(tq, did), 0);
	ck_assert_uint_eq(stats_of(tq).tasks_pending, 1);
	gate_open(&g);
	taskq_wait(tq);
	sleep_ms(100);                  /* past the delayed one's time */
	ck_assert_int_eq(atomic_load(&ran), 0);
	ck_assert_int_eq(atomic_load(&ran_delayed), 0);
	ck_assert_int_eq(atomic_load(&ran_other), 1);
	ck_assert_uint_eq(stats_of(tq).tasks_cancelled, 2);
	ck_assert_uint_eq(stats_of(tq).tasks_executed, 2);
	taskq_destroy(tq);
}
END_TEST

START_TEST(test_cancel_running_and_done)
{
	taskq_t *tq = taskq_create("cancelrun", 2, defclsyspri, 0, 0, 0);
	struct slow s = { .ms = 200 };
	_Atomic int ran = 0;
	taskqid_t id, quick;

	ck_assert_ptr_nonnull(tq);
	id = taskq_dispatch(tq, slow_task, &s, 0);
	ck_assert_uint_ne(id, 0);
	ck_assert_int_eq(wait_for_int(&s.started, 1, 5000), 1);
	ck_assert_int_eq(taskq_cancel_id(tq, id), EBUSY);
	ck_assert_int_eq(atomic_load(&s.done), 1);      /* waited for it */
	ck_assert_int_eq(taskq_cancel_id(tq, id), ENOENT);

	quick = taskq_dispatch(tq, count_task, &ran, 0);
	taskq_wait_id(tq, quick);
	ck_assert_int_eq(atomic_load(&ran), 1);
	ck_assert_int_eq(taskq_cancel_id(tq, quick), ENOENT);
	ck_assert_int_eq(taskq_cancel_id(tq, quick + 1000), ENOENT);
	ck_assert_int_eq(taskq_cancel_id(tq, 0), ENOENT);
	ck_assert_uint_eq(stats_of(tq).tasks_cancelled, 0);
	taskq_destroy(tq);
}
END_TEST

/* ------------------------------------------------------------ waits */

START_TEST(test_wait_id)
{
	taskq_t *tq = taskq_create("waitid", 2, defclsyspri, 0, 0, 0);
	struct slow s = { .ms = 150 };
	_Atomic int ran = 0;
	struct gate g;
	taskqid_t id, qid;
	double t0;

	ck_assert_ptr_nonnull(tq);
	id = taskq_dispatch(tq, slow_task, &s, 0);
	ck_assert_uint_ne(id, 0);
	taskq_wait_id(tq, id);
	ck_assert_int_eq(atomic_load(&s.done), 1);

	/* Finished, unknown and 0 ids return at once. */
	t0 = test_now();
	taskq_wait_id(tq, id);
	taskq_wait_id(tq, id + 1000);
	taskq_wait_id(tq, 0);
	ck_assert_double_lt(test_now() - t0, 1.0);

	/* It waits for that task only, not for a blocked one. */
	gate_init(&g);
	ck_assert_uint_ne(taskq_dispatch(tq, gate_task, &g, 0), 0);
	ck_assert_int_eq(wait_for_int(&g.entered, 1, 5000), 1);
	qid = taskq_dispatch(tq, count_task, &ran, 0);
	taskq_wait_id(tq, qid);
	ck_assert_int_eq(atomic_load(&ran), 1);
	ck_assert_int_eq(atomic_load(&g.passed), 0);
	gate_open(&g);
	taskq_destroy(tq);
}
END_TEST

struct outstanding_arg {
	taskq_t *tq;
	_Atomic int returned;
};

static void *
wait_outstanding_thread(void *arg)
{
	struct outstanding_arg *a = arg;

	taskq_wait_outstanding(a->tq, 0);
	atomic_store(&a->returned, 1);
	return (NULL);
}

START_TEST(test_wait_outstanding)
{
	taskq_t *tq = taskq_create("outstanding", 2, defclsyspri, 0, 0, 0);
	struct slow a = { .ms = 100 };
	_Atomic int ran = 0;
	struct outstanding_arg oa;
	struct gate g;
	pthread_t th;
	taskqid_t ida, idb, idc;

	ck_assert_ptr_nonnull(tq);
	ida = taskq_dispatch(tq, slow_task, &a, 0);
	gate_init(&g);
	idb = taskq_dispatch(tq, gate_task, &g, 0);
	ck_assert_uint_gt(idb, ida);
	ck_assert_int_eq(wait_for_int(&g.entered, 1, 5000), 1);

	/* Up to ida: does not wait for the blocked later task. */
	taskq_wait_outstanding(tq, ida);
	ck_assert_int_eq(atomic_load(&a.done), 1);
	ck_assert_int_eq(atomic_load(&g.passed), 0);

	/* Up to now (0): waits for the blocked task too. */
	idc = taskq_dispatch(tq, count_task, &ran, 0);
	ck_assert_uint_gt(idc, idb);
	oa.tq = tq;
	atomic_init(&oa.returned, 0);
	ck_assert_int_eq(pthread_create(&th, NULL, wait_outstanding_thread,
	    &oa), 0);
	sleep_ms(100);
	ck_assert_int_eq(atomic_load(&oa.returned), 0);
	gate_open(&g);
	pthread_join(th, NULL);
	ck_assert_int_eq(atomic_load(&oa.returned), 1);
	ck_assert_int_eq(atomic_load(&g.passed), 1);
	ck_assert_int_eq(atomic_load(&ran), 1);

	/* An id never issued means "up to now": nothing left, returns. */
	taskq_wait_outstanding(tq, UINTPTR_MAX);
	taskq_destroy(tq);
}
END_TEST

/* ------------------------------------------------------------ destroy */

START_TEST(test_destroy_runs_queued)
{
	taskq_t *tq = taskq_create("destroy", 1, defclsyspri, 0, 0, 0);
	_Atomic int count = 0, delayed = 0;
	taskq_ent_t ent;
	double t0;

	ck_assert_ptr_nonnull(tq);
	ck_assert_uint_ne(taskq_dispatch(tq, sleep100_task, NULL, 0), 0);
	for (int i = 0; i < 50; i++)
		ck_assert_uint_ne(taskq_dispatch(tq, count_task, &count, 0),
		    0);
	taskq_init_ent(&ent);
	taskq_dispatch_ent(tq, count_task, &count, 0, &ent);
	ck_assert_uint_ne(taskq_dispatch_delay(tq, count_task, &delayed, 0,
	    taskq_now() + 10000 * MS), 0);
	t0 = test_now();
	taskq_destroy(tq);
	ck_assert_double_lt(test_now() - t0, 5.0);      /* no 10 s wait */
	ck_assert_int_eq(atomic_load(&count), 51);
	ck_assert_int_eq(atomic_load(&delayed), 0);
	ck_assert(taskq_empty_ent(&ent));
}
END_TEST

/*
 * Delayed tasks due when destroy starts run; those due only after it
 * returns never do.  Due times are spread around the destroy call.
 */
START_TEST(test_destroy_due_delayed)
{
	enum { N = 50 };
	static _Atomic int ran[N];
	int64_t expire[N], start, before, after;

	for (int round = 0; round < 20; round++) {
		taskq_t *tq = taskq_create("duedestroy", 1 + round % 2,
		    defclsyspri, 0, 0, (round & 2) ? TASKQ_DYNAMIC : 0);

		ck_assert_ptr_nonnull(tq);
		start = taskq_now();
		for (int i = 0; i < N; i++) {
			atomic_init(&ran[i], 0);
			expire[i] = start + (int64_t)i * 200000;    /* 0-10 ms */
			ck_assert_uint_ne(taskq_dispatch_delay(tq, count_task,
			    &ran[i], 0, expire[i]), 0);
		}
		sleep_ms(5);
		before = taskq_now();
		taskq_destroy(tq);
		after = taskq_now();
		for (int i = 0; i < N; i++) {
			if (expire[i] <= before)
				ck_assert_int_eq(atomic_load(&ran[i]), 1);
			else if (expire[i] > after)
				ck_assert_int_eq(atomic_load(&ran[i]), 0);
			else
				ck_assert_int_le(atomic_load(&ran[i]), 1);
		}
	}
}
END_TEST

START_TEST(test_create_destroy_churn)
{
	_Atomic int count = 0;
	int want = 0;

	for (int i = 0; i < 50; i++) {
		taskq_t *tq = taskq_create("churn", 1 + i % 4, defclsyspri,
		    i % 3, 0, (i & 1) ? TASKQ_DYNAMIC : TASKQ_PREPOPULATE);

		ck_assert_ptr_nonnull(tq);
		for (int j = 0; j < i % 7; j++, want++)
			ck_assert_uint_ne(taskq_dispatch(tq, count_task,
			    &count, 0), 0);
		taskq_destroy(tq);
		ck_assert_int_eq(atomic_load(&count), want);
	}
}
END_TEST

struct self_destroy {
	taskq_t *tq;
	_Atomic int err;
};

static void
self_destroy_task(void *arg)
{
	struct self_destroy *sd = arg;

	errno = 0;
	taskq_destroy(sd->tq);
	atomic_store(&sd->err, errno);
}

static void
self_destroy_run(void *arg)
{
	struct self_destroy *sd = arg;

	ck_assert_uint_ne(taskq_dispatch(sd->tq, self_destroy_task, sd, 0), 0);
	taskq_wait(sd->tq);
}

START_TEST(test_destroy_from_own_task)
{
	taskq_t *tq = taskq_create("selfdestroy", 1, defclsyspri, 0, 0, 0);
	struct self_destroy sd;
	_Atomic int ran = 0;
	char buf[512];

	ck_assert_ptr_nonnull(tq);
	sd.tq = tq;
	atomic_init(&sd.err, 0);
	test_capture_stderr(self_destroy_run, &sd, buf, sizeof (buf));
	ck_assert_uint_gt(strlen(buf), 0);
	ck_assert_ptr_nonnull(strstr(buf, "selfdestroy"));
	ck_assert_ptr_nonnull(strstr(buf, "not destroyed"));
	ck_assert_int_eq(atomic_load(&sd.err), EDEADLK);

	/* The queue still works, and an outside destroy still works. */
	ck_assert_uint_ne(taskq_dispatch(tq, count_task, &ran, 0), 0);
	taskq_wait(tq);
	ck_assert_int_eq(atomic_load(&ran), 1);
	taskq_destroy(tq);
}
END_TEST

/* ------------------------------------------------------------ from tasks */

struct nest {
	taskq_t *tq;
	_Atomic int parent_ok;
	_Atomic int child_ran;
	taskq_ent_t ent;
	_Atomic int rounds;
};

static void
child_task(void *arg)
{
	struct nest *n = arg;

	atomic_store(&n->child_ran, 1);
}

static void
parent_task(void *arg)
{
	struct nest *n = arg;
	int ok = taskq_of_curthread() == n->tq &&
	    taskq_member(n->tq, pthread_self());

	if (taskq_dispatch(n->tq, child_task, n, TQ_SLEEP) == 0)
		ok = 0;
	atomic_store(&n->parent_ok, ok);
}

/* Re-dispatches itself on its own entry, SPL style, 100 times. */
static void
redispatch_task(void *arg)
{
	struct nest *n = arg;

	if (atomic_fetch_add(&n->rounds, 1) + 1 < 100 &&
	    taskq_empty_ent(&n->ent))
		taskq_dispatch_ent(n->tq, redispatch_task, n, 0, &n->ent);
}

START_TEST(test_dispatch_from_task)
{
	taskq_t *tq = taskq_create("nested", 1, defclsyspri, 0, 0, 0);
	struct nest n;

	ck_assert_ptr_nonnull(tq);
	memset(&n, 0, sizeof (n));
	n.tq = tq;
	ck_assert_uint_ne(taskq_dispatch(tq, parent_task, &n, 0), 0);
	taskq_wait(tq);
	ck_assert_int_eq(atomic_load(&n.parent_ok), 1);
	ck_assert_int_eq(atomic_load(&n.child_ran), 1);

	taskq_init_ent(&n.ent);
	taskq_dispatch_ent(tq, redispatch_task, &n, 0, &n.ent);
	taskq_wait(tq);
	ck_assert_int_eq(atomic_load(&n.rounds), 100);
	ck_assert(taskq_empty_ent(&n.ent));
	ck_assert_uint_eq(stats_of(tq).tasks_executed, 102);
	taskq_destroy(tq);
}
END_TEST

#define MANY_TASKS      10000
#define MANY_THREADS    8

struct many_arg {
	taskq_t *tq;
	_Atomic int *counts;
	int first;
	_Atomic int *failures;
};

static void *
many_dispatcher(void *arg)
{
	struct many_arg *a = arg;
	taskqid_t last = 0;

	for (int i = a->first; i < a->first + MANY_TASKS / MANY_THREADS; i++) {
		taskqid_t id = taskq_dispatch(a->tq, count_task,
		    &a->counts[i], TQ_SLEEP);
		if (id == 0 || id <= last)
			atomic_fetch_add(a->failures, 1);
		last = id;
	}
	return (NULL);
}

START_TEST(test_many_dispatchers)
{
	taskq_t *tq = taskq_create("many", 4, defclsyspri, 0, 0,
	    TASKQ_DYNAMIC);
	static _Atomic int counts[MANY_TASKS];
	_Atomic int failures = 0;
	struct many_arg args[MANY_THREADS];
	pthread_t th[MANY_THREADS];
	struct taskq_stats st;

	ck_assert_ptr_nonnull(tq);
	for (int i = 0; i < MANY_TASKS; i++)
		atomic_init(&counts[i], 0);
	for (int t = 0; t < MANY_THREADS; t++) {
		args[t] = (struct many_arg){ tq, counts,
		    t * (MANY_TASKS / MANY_THREADS), &failures };
		ck_assert_int_eq(pthread_create(&th[t], NULL, many_dispatcher,
		    &args[t]), 0);
	}
	for (int t = 0; t < MANY_THREADS; t++)
		pthread_join(th[t], NULL);
	taskq_wait(tq);
	ck_assert_int_eq(atomic_load(&failures), 0);
	for (int i = 0; i < MANY_TASKS; i++)
		ck_assert_msg(atomic_load(&counts[i]) == 1,
		    "task %d ran %d times", i, atomic_load(&counts[i]));
	st = stats_of(tq);
	ck_assert_uint_eq(st.tasks_dispatched, MANY_TASKS);
	ck_assert_uint_eq(st.tasks_executed, MANY_TASKS);
	ck_assert_uint_eq(st.tasks_pending, 0);
	ck_assert_uint_le(st.threads, 4);
	taskq_destroy(tq);
}
END_TEST

/* ------------------------------------------------------------ maxalloc */

struct member_nosleep {
	taskq_t *tq;
	_Atomic int *ran;
	taskqid_t id;
	int err;
};

/* A task dispatching TQ_NOSLEEP on its own exhausted queue. */
static void
member_nosleep_task(void *arg)
{
	struct member_nosleep *m = arg;

	errno = 0;
	m->id = taskq_dispatch(m->tq, count_task, m->ran, TQ_NOSLEEP);
	m->err = errno;
}

START_TEST(test_nosleep_maxalloc)
{
	struct member_nosleep mn;
	taskq_t *tq = taskq_create("nosleep", 1, defclsyspri, 0, 3, 0);
	_Atomic int ran = 0;
	struct gate g;

	ck_assert_ptr_nonnull(tq);
	gate_init(&g);
	/* The running gate task holds one of the three entries. */
	ck_assert_uint_ne(taskq_dispatch(tq, gate_task, &g, TQ_NOSLEEP), 0);
	ck_assert_int_eq(wait_for_int(&g.entered, 1, 5000), 1);
	ck_assert_uint_ne(taskq_dispatch(tq, count_task, &ran, TQ_NOSLEEP), 0);
	ck_assert_uint_ne(taskq_dispatch(tq, count_task, &ran, TQ_NOSLEEP), 0);
	errno = 0;
	ck_assert_uint_eq(taskq_dispatch(tq, count_task, &ran, TQ_NOSLEEP), 0);
	ck_assert_int_eq(errno, EAGAIN);
	errno = 0;
	ck_assert_uint_eq(taskq_dispatch_delay(tq, count_task, &ran,
	    TQ_NOSLEEP, taskq_now() + MS), 0);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_eq(stats_of(tq).tasks_dispatched, 3);
	gate_open(&g);
	taskq_wait(tq);
	ck_assert_int_eq(atomic_load(&ran), 2);
	ck_assert_uint_ne(taskq_dispatch(tq, count_task, &ran, TQ_NOSLEEP), 0);
	taskq_wait(tq);
	ck_assert_int_eq(atomic_load(&ran), 3);
	taskq_destroy(tq);

	/*
	 * From one of its own tasks too, TQ_NOSLEEP fails at once when
	 * maxalloc entries are in use (only TQ_SLEEP goes beyond): it went
	 * beyond maxalloc.
	 */
	tq = taskq_create("nosleep1", 1, defclsyspri, 0, 1, 0);
	ck_assert_ptr_nonnull(tq);
	mn.tq = tq;
	mn.ran = &ran;
	mn.id = 0;
	mn.err = 0;
	ck_assert_uint_ne(taskq_dispatch(tq, member_nosleep_task, &mn, 0), 0);
	taskq_wait(tq);
	ck_assert_uint_eq(mn.id, 0);
	ck_assert_int_eq(mn.err, EAGAIN);
	ck_assert_int_eq(atomic_load(&ran), 3);
	taskq_destroy(tq);
}
END_TEST

struct sleeper_arg {
	taskq_t *tq;
	_Atomic int *ran;
	_Atomic int returned;
	taskqid_t id;
};

static void *
sleep_dispatcher(void *arg)
{
	struct sleeper_arg *a = arg;

	a->id = taskq_dispatch(a->tq, count_task, a->ran, TQ_SLEEP);
	atomic_store(&a->returned, 1);
	return (NULL);
}

struct member_sleep {
	taskq_t *tq;
	_Atomic int *ran;
	_Atomic int ok;
};

/* A task dispatching TQ_SLEEP on its own exhausted queue must not hang. */
static void
member_sleep_task(void *arg)
{
	struct member_sleep *m = arg;

	atomic_store(&m->ok, taskq_dispatch(m->tq, count_task, m->ran,
	    TQ_SLEEP) != 0);
}

START_TEST(test_sleep_maxalloc)
{
	taskq_t *tq = taskq_create("sleep", 1, defclsyspri, 0, 2, 0);
	_Atomic int ran = 0;
	struct sleeper_arg sa;
	struct member_sleep ms;
	struct gate g;
	pthread_t th;

	ck_assert_ptr_nonnull(tq);
	gate_init(&g);
	ck_assert_uint_ne(taskq_dispatch(tq, gate_task, &g, 0), 0);
	ck_assert_int_eq(wait_for_int(&g.entered, 1, 5000), 1);
	ck_assert_uint_ne(taskq_dispatch(tq, count_task, &ran, 0), 0);
	/* Both entries in use: a TQ_SLEEP dispatcher waits. */
	sa.tq = tq;
	sa.ran = &ran;
	sa.id = 0;
	atomic_init(&sa.returned, 0);
	ck_assert_int_eq(pthread_create(&th, NULL, sleep_dispatcher, &sa), 0);
	sleep_ms(150);
	ck_assert_int_eq(atomic_load(&sa.returned), 0);
	gate_open(&g);
	pthread_join(th, NULL);
	ck_assert_int_eq(atomic_load(&sa.returned), 1);
	ck_assert_uint_ne(sa.id, 0);
	taskq_wait(tq);
	ck_assert_int_eq(atomic_load(&ran), 2);

	taskq_destroy(tq);

	/*
	 * From one of its own tasks, TQ_SLEEP goes beyond maxalloc: the
	 * running task holds the only entry, and waiting for it would hang.
	 */
	tq = taskq_create("sleep1", 1, defclsyspri, 0, 1, 0);
	ck_assert_ptr_nonnull(tq);
	ms.tq = tq;
	ms.ran = &ran;
	atomic_init(&ms.ok, 0);
	ck_assert_uint_ne(taskq_dispatch(tq, member_sleep_task, &ms, 0), 0);
	taskq_wait(tq);
	ck_assert_int_eq(atomic_load(&ms.ok), 1);
	ck_assert_int_eq(atomic_load(&ran), 3);
	taskq_destroy(tq);
}
END_TEST

struct rearm {
	taskq_t *tq;
	_Atomic int stop;
	_Atomic int ticks;
};

/* A periodic task: it dispatches its next run until told to stop. */
static void
rearm_task(void *arg)
{
	struct rearm *r = arg;

	atomic_fetch_add(&r->ticks, 1);
	if (!atomic_load(&r->stop))
		(void) taskq_dispatch_delay(r->tq, rearm_task, r, TQ_SLEEP,
		    taskq_now() + 2 * MS);
}

/*
 * Two periodic tasks on a queue of maxalloc 2: each dispatches its next
 * run (beyond maxalloc) before its own entry is freed, so two entries or
 * more are always in use, but runs finish every few milliseconds, and a
 * TQ_SLEEP dispatcher from outside must get the entry one frees.  It
 * waited for ever: the entries the tasks took beyond maxalloc counted
 * against it.
 */
START_TEST(test_sleep_maxalloc_rearming)
{
	taskq_t *tq = taskq_create("rearm", 2, defclsyspri, 0, 2, 0);
	struct rearm r = { .tq = tq };
	_Atomic int ran = 0;
	struct sleeper_arg sa;
	pthread_t th;
	int returned;

	ck_assert_ptr_nonnull(tq);
	for (int i = 0; i < 2; i++)
		ck_assert_uint_ne(taskq_dispatch(tq, rearm_task, &r, 0), 0);
	ck_assert_int_ge(wait_for_int(&r.ticks, 10, 5000), 10);
	sa.tq = tq;
	sa.ran = &ran;
	sa.id = 0;
	atomic_init(&sa.returned, 0);
	ck_assert_int_eq(pthread_create(&th, NULL, sleep_dispatcher, &sa), 0);
	returned = wait_for_int(&sa.returned, 1, 5000);
	atomic_store(&r.stop, 1);       /* entries free up: it returns */
	pthread_join(th, NULL);
	taskq_wait(tq);
	ck_assert_msg(returned == 1, "TQ_SLEEP dispatch waited 5 s while "
	    "tasks finished (%d runs)", atomic_load(&r.ticks));
	ck_assert_uint_ne(sa.id, 0);
	ck_assert_int_eq(atomic_load(&ran), 1);
	taskq_destroy(tq);
}
END_TEST

START_TEST(test_dispatch_ent_never_fails)
{
	taskq_t *tq = taskq_create("ent", 1, defclsyspri, 0, 1, 0);
	static taskq_ent_t zeroed;      /* all-zero: initialized too */
	taskq_ent_t ents[100];
	_Atomic int ran = 0;
	struct gate g, g2;
	struct bad_call c;
	char buf[512];

	ck_assert_ptr_nonnull(tq);
	gate_init(&g);
	ck_assert_uint_ne(taskq_dispatch(tq, gate_task, &g, 0), 0);
	ck_assert_int_eq(wait_for_int(&g.entered, 1, 5000), 1);
	/* The only entry is in use ... */
	ck_assert_uint_eq(taskq_dispatch(tq, count_task, &ran, TQ_NOSLEEP), 0);
	/* ... but caller-owned entries need none. */
	for (int i = 0; i < 100; i++) {
		taskq_init_ent(&ents[i]);
		ck_assert(taskq_empty_ent(&ents[i]));
		taskq_dispatch_ent(tq, count_task, &ran, TQ_NOSLEEP, &ents[i]);
		ck_assert(!taskq_empty_ent(&ents[i]));
	}
	ck_assert(taskq_empty_ent(&zeroed));
	taskq_dispatch_ent(tq, count_task, &ran, TQ_FRONT, &zeroed);
	ck_assert(!taskq_empty_ent(&zeroed));
	/* A queued entry cannot be dispatched again: EBUSY and one line. */
	c = (struct bad_call){ .tq = tq, .ent = &ents[0], .ran = &ran,
	    .which = 18 };
	test_capture_stderr(bad_call_run, &c, buf, sizeof (buf));
	ck_assert_int_eq(c.err, EBUSY);
	expect_one_line(buf, "taskq_dispatch_ent(");
	ck_assert_msg(strstr(buf, "still queued") != NULL, "'%s'", buf);
	ck_assert_uint_eq(stats_of(tq).tasks_pending, 101);
	gate_open(&g);
	taskq_wait(tq);
	ck_assert_int_eq(atomic_load(&ran), 101);
	for (int i = 0; i < 100; i++)
		ck_assert(taskq_empty_ent(&ents[i]));
	ck_assert(taskq_empty_ent(&zeroed));

	/* A cancelled caller entry is the caller's again. */
	gate_init(&g2);
	ck_assert_uint_ne(taskq_dispatch(tq, gate_task, &g2, 0), 0);
	ck_assert_int_eq(wait_for_int(&g2.entered, 1, 5000), 1);
	taskq_dispatch_ent(tq, count_task, &ran, 0, &ents[0]);
	ck_assert(!taskq_empty_ent(&ents[0]));
	ck_assert_int_eq(taskq_cancel_id(tq, ents[0].tqent_id), 0);
	ck_assert(taskq_empty_ent(&ents[0]));
	gate_open(&g2);
	taskq_wait(tq);
	ck_assert_int_eq(atomic_load(&ran), 101);
	taskq_destroy(tq);
}
END_TEST

/* ------------------------------------------------------------ membership */

struct member_arg {
	taskq_t *tq1;
	taskq_t *tq2;
	_Atomic int in1;
	_Atomic int in2;
	_Atomic int cur_ok;
};

static void
member_task(void *arg)
{
	struct member_arg *m = arg;

	atomic_store(&m->in1, taskq_member(m->tq1, pthread_self()));
	atomic_store(&m->in2, taskq_member(m->tq2, pthread_self()));
	atomic_store(&m->cur_ok, taskq_of_curthread() == m->tq1);
}

START_TEST(test_member)
{
	struct member_arg m;

	memset(&m, 0, sizeof (m));
	m.tq1 = taskq_create("member1", 2, defclsyspri, 0, 0, 0);
	m.tq2 = taskq_create("member2", 2, defclsyspri, 0, 0, 0);
	ck_assert_ptr_nonnull(m.tq1);
	ck_assert_ptr_nonnull(m.tq2);
	ck_assert_uint_ne(taskq_dispatch(m.tq1, member_task, &m, 0), 0);
	taskq_wait(m.tq1);
	ck_assert_int_ne(atomic_load(&m.in1), 0);
	ck_assert_int_eq(atomic_load(&m.in2), 0);
	ck_assert_int_eq(atomic_load(&m.cur_ok), 1);
	ck_assert_int_eq(taskq_member(m.tq1, pthread_self()), 0);
	ck_assert_ptr_null(taskq_of_curthread());
	taskq_destroy(m.tq1);
	taskq_destroy(m.tq2);
}
END_TEST

/* Signals a program handles (or dies of) that a queue's thread must block. */
static const int async_sigs[] = {
	SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGALRM, SIGTERM, SIGUSR1, SIGUSR2,
	SIGCHLD, SIGWINCH, SIGURG, SIGPROF, SIGVTALRM,
};

/* Count, in *arg, the signals of async_sigs this thread does not block. */
static void
mask_task(void *arg)
{
	_Atomic int *open = arg;
	sigset_t cur;

	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
	for (size_t i = 0; i < sizeof (async_sigs) / sizeof (async_sigs[0]);
	    i++)
		atomic_fetch_add(open, !sigismember(&cur, async_sigs[i]));
	sleep_ms(5);            /* keep it busy: the dynamic queue grows */
}

/*
 * A queue's threads block every signal, whatever the mask of the thread
 * that created them, so that a signal sent to the process (SIGCHLD,
 * SIGINT, ...) goes to one of the application's own threads: a shell's
 * SIGCHLD handler, say, was not written to run on another thread while
 * its main thread edits the same job table.
 */
START_TEST(test_threads_block_signals)
{
	taskq_t *fixed, *dyn;
	_Atomic int open = 0;
	sigset_t none;
	int base = test_thread_count(), nopen;

	sigemptyset(&none);
	ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, &none, NULL), 0);
	fixed = taskq_create("sigfixed", 3, defclsyspri, 0, 0, 0);
	dyn = taskq_create("sigdyn", 4, defclsyspri, 0, 0, TASKQ_DYNAMIC);
	ck_assert_ptr_nonnull(fixed);
	ck_assert_ptr_nonnull(dyn);
	for (int i = 0; i < 16; i++) {
		ck_assert_uint_ne(taskq_dispatch(fixed, mask_task, &open,
		    TQ_SLEEP), 0);
		ck_assert_uint_ne(taskq_dispatch(dyn, mask_task, &open,
		    TQ_SLEEP), 0);
	}
	taskq_wait(fixed);
	taskq_wait(dyn);
	nopen = atomic_load(&open);
	ck_assert_int_eq(nopen, 0);     /* signals open, summed over tasks */
	ck_assert_uint_ge(stats_of(dyn).threads, 2);    /* it grew */
	ck_assert_int_ge(test_thread_count(), base + 5);
	ck_assert_int_eq(test_signal_elsewhere(SIGUSR1), 0);
	ck_assert_int_eq(test_signal_elsewhere(SIGCHLD), 0);
	taskq_destroy(fixed);
	taskq_destroy(dyn);
}
END_TEST

/* A forked child exited with status 0 (its checks passed). */
static void
child_exits_ok(pid_t pid)
{
	int status;

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child status %#x", status);
}

/*
 * exit() while another thread forks.  At exit the queues' last exited
 * threads are joined; that join held the registry lock, which fork()
 * takes after every cache's locks (fork.c).  A thread that had exited
 * its queue but was still running a thread-specific-data destructor that
 * allocates then waited for a cache lock held by the forker, the forker
 * for the registry lock, and exit for the thread: the process hung.  The
 * child process here runs that sequence and must exit.
 */
static kmem_cache_t *exit_fork_cp;
static pthread_key_t exit_fork_key;
static _Atomic int exit_fork_dtor;

static void
exit_fork_key_dtor(void *v)
{
	void *obj;

	(void) v;
	atomic_store(&exit_fork_dtor, 1);
	sleep_ms(300);                  /* exit() and fork() are under way */
	obj = kmem_cache_alloc(exit_fork_cp, KM_SLEEP);
	kmem_cache_free(exit_fork_cp, obj);
}

static void
exit_fork_key_task(void *arg)
{
	(void) pthread_setspecific(exit_fork_key, arg);
}

static void *
exit_forker(void *arg)
{
	pid_t pid;

	(void) arg;
	sleep_ms(100);                  /* exit() is joining the thread */
	pid = fork();
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		(void) waitpid(pid, NULL, 0);
	return (NULL);
}

START_TEST(test_exit_while_forking)
{
	int status = 0;
	pid_t pid, w = 0;
	double t0;

#if defined(KMEM_TSAN) || defined(KMEM_ASAN)
	return;         /* no threads in the child: see check_reap's fork test */
#endif
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		static struct gate g;
		taskq_t *tq;
		pthread_t th;

		exit_fork_cp = kmem_cache_create("exitfork", 64, 0, NULL,
		    NULL, NULL, NULL, NULL, KMC_NOMAGAZINE);
		tq = taskq_create("exitfork", 2, defclsyspri, 0, 0,
		    TASKQ_DYNAMIC);
		if (exit_fork_cp == NULL || tq == NULL ||
		    pthread_key_create(&exit_fork_key, exit_fork_key_dtor) != 0)
			_exit(2);
		taskq_set_idle_timeout(tq, 20 * MS);
		/* The first thread stays busy: nobody else joins the other. */
		gate_init(&g);
		(void) taskq_dispatch(tq, gate_task, &g, TQ_SLEEP);
		if (wait_for_int(&g.entered, 1, 5000) != 1)
			_exit(3);
		/* The second thread sets a key and exits when idle. */
		(void) taskq_dispatch(tq, exit_fork_key_task, &g, TQ_SLEEP);
		if (wait_for_int(&exit_fork_dtor, 1, 5000) != 1)
			_exit(4);
		if (pthread_create(&th, NULL, exit_forker, NULL) != 0)
			_exit(5);
		exit(0);
	}
	t0 = test_now();
	while ((w = waitpid(pid, &status, WNOHANG)) == 0 &&
	    test_now() - t0 < 10)
		sleep_ms(10);
	if (w == 0) {
		(void) kill(pid, SIGKILL);
		(void) waitpid(pid, &status, 0);
	}
	ck_assert_msg(w == pid, "exit() while another thread forked hung");
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child status %#x", status);
}
END_TEST

/*
 * fork(): the child gets its queues' threads back - an ordinary queue at
 * once, its full count; a lazy one (libkmem's own queue is) only when it
 * needs one: a task made ready, or taskq_fork_resume() (the allocator's
 * slow paths).  Until then its delayed tasks wait, even when due.
 */
START_TEST(test_fork_lazy)
{
	static _Atomic int ran;
	taskq_t *eager, *lazy, *lazy2;
	taskqid_t id;
	pid_t pid;

#if defined(KMEM_TSAN) || defined(KMEM_ASAN)
	return;         /* no threads in the child: see check_reap's fork test */
#endif
	eager = taskq_create("eager", 2, defclsyspri, 0, 0, 0);
	lazy = taskq_create("lazy", 4, defclsyspri, 0, 0, TASKQ_DYNAMIC);
	lazy2 = taskq_create("lazy2", 4, defclsyspri, 0, 0, TASKQ_DYNAMIC);
	ck_assert(eager != NULL && lazy != NULL && lazy2 != NULL);
	taskq_set_fork_lazy(lazy);
	taskq_set_fork_lazy(lazy2);
	id = taskq_dispatch_delay(lazy, count_task, &ran, TQ_SLEEP,
	    taskq_now() + 50 * MS);
	ck_assert_uint_ne(id, 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int bad = 0;

		if (stats_of(eager).threads != 2 || test_thread_count() != 3)
			bad |= 1;
		if (stats_of(lazy).threads != 0 || stats_of(lazy2).threads != 0)
			bad |= 2;
		sleep_ms(150);                  /* the delayed task is due */
		if (atomic_load(&ran) != 0)
			bad |= 4;
		if (taskq_dispatch(lazy2, count_task, &ran, TQ_SLEEP) == 0)
			bad |= 8;
		taskq_wait(lazy2);              /* ran on lazy2's new thread */
		if (atomic_load(&ran) != 1 || stats_of(lazy2).threads != 1 ||
		    stats_of(lazy).threads != 0)
			bad |= 16;
		taskq_fork_resume();
		taskq_wait_id(lazy, id);
		if (atomic_load(&ran) != 2 || stats_of(lazy).threads != 1)
			bad |= 32;
		_exit(bad);
	}
	child_exits_ok(pid);
	taskq_wait_id(lazy, id);                /* the parent's own run */
	ck_assert_int_eq(atomic_load(&ran), 1);
	taskq_destroy(eager);
	taskq_destroy(lazy);
	taskq_destroy(lazy2);
}
END_TEST

/*
 * fork() while a task runs: the child loses the task, and its queue-owned
 * entry must not count against maxalloc there.
 */
START_TEST(test_fork_running_maxalloc)
{
	static _Atomic int ran;
	struct gate g;
	taskq_t *tq;
	pid_t pid;

#if defined(KMEM_TSAN) || defined(KMEM_ASAN)
	return;         /* no threads in the child: see check_reap's fork test */
#endif
	gate_init(&g);
	tq = taskq_create("forkmax", 1, defclsyspri, 0, 1, 0);
	ck_assert(tq != NULL);
	ck_assert_uint_ne(taskq_dispatch(tq, gate_task, &g, TQ_SLEEP), 0);
	ck_assert_int_eq(wait_for_int(&g.entered, 1, 5000), 1);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int bad = 0;

		if (taskq_dispatch(tq, count_task, &ran, TQ_NOSLEEP) == 0)
			bad |= 1;
		taskq_wait(tq);
		if (atomic_load(&ran) != 1)
			bad |= 2;
		taskq_destroy(tq);
		_exit(bad);
	}
	gate_open(&g);
	child_exits_ok(pid);
	taskq_destroy(tq);
}
END_TEST

/*
 * A task that forks.  In the child its thread is no queue's thread:
 * taskq_of_curthread() is NULL, taskq_wait() waits for a task running on
 * the child's own thread of the queue, and taskq_destroy() works.  When
 * the task returns there, the child exits with status 0.  The forking
 * thread stayed a worker in the child: taskq_wait() returned with the
 * task still running, taskq_destroy() refused with EDEADLK, and a task
 * that returned left the child waiting for work for ever.
 */
static taskq_t *forktask_tq;
static _Atomic int forktask_done;

static void
forktask_slow(void *arg)
{
	(void) arg;
	sleep_ms(100);
	atomic_store(&forktask_done, 1);
}

static void
forktask_task(void *arg)
{
	bool destroy = arg != NULL;
	pid_t pid;

	fflush(NULL);
	if ((pid = fork()) != 0) {
		int status = 0;
		pid_t w = 0;
		double t0 = test_now();

		while (pid > 0 && (w = waitpid(pid, &status, WNOHANG)) == 0 &&
		    test_now() - t0 < 5)
			sleep_ms(5);
		if (w == 0) {
			(void) kill(pid, SIGKILL);
			(void) waitpid(pid, &status, 0);
		}
		atomic_store(&forktask_done, w == pid && WIFEXITED(status) ?
		    WEXITSTATUS(status) + 100 : -1);
		return;
	}
	if (taskq_of_curthread() != NULL)
		_exit(1);
	if (taskq_dispatch(forktask_tq, forktask_slow, NULL, TQ_SLEEP) == 0)
		_exit(2);
	sleep_ms(20);                   /* it runs */
	taskq_wait(forktask_tq);
	if (atomic_load(&forktask_done) != 1)
		_exit(3);
	if (destroy) {
		errno = 0;
		taskq_destroy(forktask_tq);
		_exit(errno == 0 ? 0 : 4);
	}
	/* and returns: the child exits with 0 */
}

START_TEST(test_fork_from_task)
{
#if defined(KMEM_TSAN) || defined(KMEM_ASAN)
	return;         /* no threads in the child: see check_reap's fork test */
#endif
	forktask_tq = taskq_create("forktask", 2, defclsyspri, 0, 0, 0);
	ck_assert(forktask_tq != NULL);
	for (int destroy = 0; destroy < 2; destroy++) {
		atomic_store(&forktask_done, 0);
		ck_assert_uint_ne(taskq_dispatch(forktask_tq, forktask_task,
		    destroy ? forktask_tq : NULL, TQ_SLEEP), 0);
		taskq_wait(forktask_tq);
		ck_assert_msg(atomic_load(&forktask_done) == 100,
		    "child (destroy %d): %d (100 + exit status; -1: hung)",
		    destroy, atomic_load(&forktask_done));
	}
	taskq_destroy(forktask_tq);
}
END_TEST

/* Threads of this process named 'name'. */
static int
threads_named(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL) {
		char path[300], comm[64];
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof (path), "/proc/self/task/%s/comm",
		    e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(comm, sizeof (comm), f) != NULL &&
		    strncmp(comm, name, strlen(name)) == 0 &&
		    comm[strlen(name)] == '\n')
			n++;
		fclose(f);
	}
	closedir(d);
	return (n);
}

/*
 * A thread cancelled while taskq_destroy() waits for a running task:
 * destroy still completes (the cancel takes effect after it), and no
 * thread of the queue is left.  The wait was a cancellation point: the
 * thread died holding the queue's lock, and the worker that finished
 * the task waited for that lock for ever.
 */
static void *
cancel_destroyer(void *arg)
{
	taskq_destroy(arg);
	pthread_testcancel();
	return (NULL);
}

START_TEST(test_destroy_cancelled)
{
	taskq_t *tq = taskq_create("cancelq", 1, defclsyspri, 0, 0, 0);
	static struct slow sl = { .ms = 200 };
	pthread_t t;
	void *ret = NULL;
	double t0;

	ck_assert_ptr_nonnull(tq);
	ck_assert_uint_ne(taskq_dispatch(tq, slow_task, &sl, 0), 0);
	ck_assert_int_eq(wait_for_int(&sl.started, 1, 3000), 1);
	ck_assert_int_eq(pthread_create(&t, NULL, cancel_destroyer, tq), 0);
	sleep_ms(50);                   /* destroy waits for the task */
	ck_assert_int_eq(pthread_cancel(t), 0);
	ck_assert_int_eq(pthread_join(t, &ret), 0);
	ck_assert(ret == PTHREAD_CANCELED);
	t0 = test_now();
	while (threads_named("cancelq") != 0 && test_now() - t0 < 3)
		sleep_ms(10);
	ck_assert_int_eq(threads_named("cancelq"), 0);
}
END_TEST

static pid_t regchurn_parent;
static taskq_t *regchurn_victim;
static taskq_t *_Atomic regchurn_made;

/* In the child only: destroy one queue and create another. */
static void
regchurn_task(void *arg)
{
	(void) arg;
	if (getpid() == regchurn_parent)
		return;
	taskq_destroy(regchurn_victim);
	atomic_store(&regchurn_made,
	    taskq_create("forkc", 1, defclsyspri, 0, 0, 0));
}

/*
 * fork() with a task queued: the child's first thread runs it while the
 * child is still creating the other queues' threads, and a task may
 * create and destroy queues.  The queue it destroys must not wait for
 * threads never created, nor the queue it creates get extra threads.
 */
START_TEST(test_fork_registry_churn)
{
	enum { NFILL = 24 };
	taskq_t *fill[NFILL], *tq;
	struct gate g;
	pid_t pid;

#if defined(KMEM_TSAN) || defined(KMEM_ASAN)
	return;         /* no threads in the child: see check_reap's fork test */
#endif
	gate_init(&g);
	regchurn_parent = getpid();
	tq = taskq_create("forka", 1, defclsyspri, 0, 0, 0);
	ck_assert(tq != NULL);
	for (int i = 0; i < NFILL; i++) {
		fill[i] = taskq_create("forkfill", 4, defclsyspri, 0, 0, 0);
		ck_assert(fill[i] != NULL);
	}
	regchurn_victim = fill[NFILL - 1];
	ck_assert_uint_ne(taskq_dispatch(tq, gate_task, &g, TQ_SLEEP), 0);
	ck_assert_int_eq(wait_for_int(&g.entered, 1, 5000), 1);
	ck_assert_uint_ne(taskq_dispatch(tq, regchurn_task, NULL, TQ_SLEEP),
	    0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		taskq_t *made;
		int bad = 0;

		taskq_wait(tq);
		made = atomic_load(&regchurn_made);
		if (made == NULL)
			_exit(1);
		sleep_ms(50);
		if (stats_of(made).threads != 1 ||
		    threads_named("forkc") != 1)
			bad |= 2;
		taskq_destroy(made);
		for (int i = 0; i < NFILL - 1; i++)
			taskq_destroy(fill[i]);
		taskq_destroy(tq);
		_exit(bad);
	}
	gate_open(&g);
	child_exits_ok(pid);
	for (int i = 0; i < NFILL; i++)
		taskq_destroy(fill[i]);
	taskq_destroy(tq);
}
END_TEST

/* ------------------------------------------------------------ stats, walk */

START_TEST(test_stats_prepopulate)
{
	taskq_t *tq = taskq_create("prepop", 2, maxclsyspri, 100, 200,
	    TASKQ_PREPOPULATE);
	taskq_t *lazy = taskq_create("lazy", 1, minclsyspri, 100, 0, 0);
	struct taskq_stats st;
	_Atomic int ran = 0;

	ck_assert_ptr_nonnull(tq);
	ck_assert_ptr_nonnull(lazy);
	st = stats_of(tq);
	ck_assert_str_eq(st.name, "prepop");
	ck_assert_uint_ge(st.entries_allocated, 100);
	ck_assert_uint_eq(st.threads, 2);
	ck_assert_uint_eq(st.threads_max, 2);
	ck_assert_uint_eq(st.tasks_dispatched, 0);
	ck_assert_uint_eq(stats_of(lazy).entries_allocated, 0);

	for (int i = 0; i < 10; i++)
		ck_assert_uint_ne(taskq_dispatch(lazy, count_task, &ran, 0),
		    0);
	taskq_wait(lazy);
	st = stats_of(lazy);
	ck_assert_uint_gt(st.entries_allocated, 0);
	ck_assert_uint_eq(st.tasks_dispatched, 10);
	ck_assert_uint_eq(st.tasks_executed, 10);
	ck_assert_uint_eq(st.tasks_pending, 0);
	/* The idle worker is eventually counted idle. */
	for (int i = 0; i < 500 && stats_of(lazy).threads_idle != 1; i++)
		sleep_ms(2);
	ck_assert_uint_eq(stats_of(lazy).threads_idle, 1);
	taskq_destroy(lazy);
	taskq_destroy(tq);
}
END_TEST

struct walk_seen {
	int a, b, total;
};

static void
walk_fn(taskq_t *tq, void *arg)
{
	struct walk_seen *w = arg;
	struct taskq_stats st;

	if (taskq_stats(tq, &st) != 0)
		return;
	w->total++;
	if (strcmp(st.name, "walk-a") == 0)
		w->a++;
	if (strcmp(st.name, "walk-b") == 0)
		w->b++;
}

START_TEST(test_walk)
{
	taskq_t *a = taskq_create("walk-a", 1, defclsyspri, 0, 0, 0);
	taskq_t *b = taskq_create("walk-b", 1, defclsyspri, 0, 0, 0);
	struct walk_seen w = { 0, 0, 0 };

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	taskq_walk(walk_fn, &w);
	ck_assert_int_eq(w.a, 1);
	ck_assert_int_eq(w.b, 1);
	taskq_destroy(a);
	memset(&w, 0, sizeof (w));
	taskq_walk(walk_fn, &w);
	ck_assert_int_eq(w.a, 0);
	ck_assert_int_eq(w.b, 1);
	taskq_destroy(b);
	memset(&w, 0, sizeof (w));
	taskq_walk(walk_fn, &w);
	ck_assert_int_eq(w.total, 0);
	taskq_walk(NULL, NULL);
}
END_TEST

/* ------------------------------------------------------------ bad input */

struct create_call {
	const char *name;
	int nthreads, pri, minalloc, maxalloc;
	unsigned int flags;
	taskq_t *ret;
	int err;
};

static void
create_run(void *arg)
{
	struct create_call *c = arg;

	errno = 0;
	c->ret = taskq_create(c->name, c->nthreads, c->pri, c->minalloc,
	    c->maxalloc, c->flags);
	c->err = errno;
}

/* EINVAL and one line on stderr (it had none). */
static void
expect_einval(const char *name, int nthreads, int pri, int minalloc,
    int maxalloc, unsigned int flags)
{
	struct create_call c = { name, nthreads, pri, minalloc, maxalloc,
	    flags, NULL, 0 };
	char buf[512];

	test_capture_stderr(create_run, &c, buf, sizeof (buf));
	ck_assert_msg(c.ret == NULL && c.err == EINVAL,
	    "taskq_create(%s, %d, %d, %d, %d, %#x): %p errno %d",
	    name != NULL ? name : "NULL", nthreads, pri, minalloc, maxalloc,
	    flags, (void *)c.ret, c.err);
	expect_one_line(buf, "taskq_create(");
}

START_TEST(test_create_bad_args)
{
	char longname[TASKQ_NAMELEN + 2];
	taskq_t *tq;

	memset(longname, 'x', sizeof (longname) - 1);
	longname[sizeof (longname) - 1] = '\0';         /* 32 characters */
	expect_einval(NULL, 1, defclsyspri, 0, 0, 0);
	expect_einval("", 1, defclsyspri, 0, 0, 0);
	expect_einval(longname, 1, defclsyspri, 0, 0, 0);
	expect_einval("t", 0, defclsyspri, 0, 0, 0);
	expect_einval("t", -1, defclsyspri, 0, 0, 0);
	expect_einval("t", TASKQ_THREADS_MAX + 1, defclsyspri, 0, 0, 0);
	expect_einval("t", 101, defclsyspri, 0, 0, TASKQ_THREADS_CPU_PCT);
	expect_einval("t", -1, defclsyspri, 0, 0, TASKQ_THREADS_CPU_PCT);
	expect_einval("t", 1, defclsyspri, -1, 0, 0);
	expect_einval("t", 1, defclsyspri, 0, -1, 0);
	expect_einval("t", 1, defclsyspri, 5, 2, 0);
	expect_einval("t", 1, defclsyspri, 0, 0, 0x100);
	expect_einval("t", 1, defclsyspri, 0, 0, TASKQ_DYNAMIC | 0x2);
	expect_einval("t", 1, maxclsyspri - 1, 0, 0, 0);
	expect_einval("t", 1, minclsyspri + 1, 0, 0, 0);

	/* The limits themselves are fine. */
	longname[TASKQ_NAMELEN] = '\0';                 /* 31 characters */
	tq = taskq_create(longname, 1, maxclsyspri, 5, 0, 0);
	ck_assert_ptr_nonnull(tq);
	ck_assert_str_eq(stats_of(tq).name, longname);
	taskq_destroy(tq);
	tq = taskq_create("t", 1, minclsyspri, 5, 5, TASKQ_PREPOPULATE);
	ck_assert_ptr_nonnull(tq);
	taskq_destroy(tq);

	/* Prepopulating more than memory holds fails, not the OOM killer. */
	if ((uint64_t)INT_MAX * sizeof (taskq_ent_t) >
	    (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)getpagesize()) {
		struct create_call c = { "t", 1, defclsyspri, INT_MAX, 0,
		    TASKQ_PREPOPULATE, NULL, 0 };
		char buf[512];

		test_capture_stderr(create_run, &c, buf, sizeof (buf));
		ck_assert_msg(c.ret == NULL && c.err == ENOMEM, "%p errno %d",
		    (void *)c.ret, c.err);
		expect_one_line(buf, "taskq_create(t): TASKQ_PREPOPULATE");
	}
	tq = taskq_create("t", 1, defclsyspri, INT_MAX, 0, 0);
	ck_assert_ptr_nonnull(tq);              /* entries as needed */
	taskq_destroy(tq);
}
END_TEST

/*
 * Each bad call sets EINVAL (returns 0, or EINVAL where the function
 * returns an error number) and writes one line naming the function; it
 * wrote none.
 */
START_TEST(test_bad_calls)
{
	static const char *const fn[] = {
		"taskq_dispatch: NULL queue", "taskq_dispatch(bad): NULL func",
		"taskq_dispatch(bad): unknown flags",
		"taskq_dispatch_delay: NULL queue",
		"taskq_dispatch_delay(bad): NULL func",
		"taskq_dispatch_ent: NULL queue",
		"taskq_dispatch_ent(bad): NULL func",
		"taskq_dispatch_ent(bad): NULL entry",
		"taskq_empty_ent: NULL entry", "taskq_init_ent: NULL entry",
		"taskq_stats: NULL queue", "taskq_stats(bad): NULL stats",
		"taskq_wait: NULL queue", "taskq_wait_id: NULL queue",
		"taskq_wait_outstanding: NULL queue",
		"taskq_destroy: NULL queue", "taskq_member: NULL queue",
		"taskq_cancel_id: NULL queue",
	};
	taskq_t *tq = taskq_create("bad", 1, defclsyspri, 0, 0, 0);
	taskq_ent_t ent;
	_Atomic int ran = 0;
	struct bad_call c = { .tq = tq, .ent = &ent, .ran = &ran };
	char buf[512];

	ck_assert_ptr_nonnull(tq);
	taskq_init_ent(&ent);
	for (c.which = 0; c.which < (int)(sizeof (fn) / sizeof (fn[0]));
	    c.which++) {
		test_capture_stderr(bad_call_run, &c, buf, sizeof (buf));
		ck_assert_msg(c.err == EINVAL, "%s: errno %d", fn[c.which],
		    c.err);
		ck_assert_msg(c.ret == (c.which == 10 || c.which == 11 ||
		    c.which == 17 ? EINVAL : 0), "%s: returned %ld",
		    fn[c.which], c.ret);
		expect_one_line(buf, fn[c.which]);
	}
	ck_assert(taskq_empty_ent(&ent));

	/* None of that reached the queue. */
	taskq_wait(tq);
	ck_assert_int_eq(atomic_load(&ran), 0);
	ck_assert_uint_eq(stats_of(tq).tasks_dispatched, 0);
	taskq_destroy(tq);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("taskq");
	TCase *order = tcase_create("order");
	TCase *threads = tcase_create("threads");
	TCase *timing = tcase_create("delay_cancel_wait");
	TCase *life = tcase_create("lifecycle");
	TCase *alloc = tcase_create("entries");
	TCase *api = tcase_create("api");

	tcase_set_timeout(order, 10);
	tcase_add_test(order, test_fifo_one_thread);
	tcase_add_test(order, test_front_first);
	suite_add_tcase(s, order);

	tcase_set_timeout(threads, 20);
	tcase_add_test(threads, test_dynamic_grow_shrink);
	tcase_add_test(threads, test_dynamic_delayed_watcher);
	tcase_add_test(threads, test_threads_cpu_pct);
	tcase_add_test(threads, test_many_dispatchers);
	tcase_add_test(threads, test_member);
	tcase_add_test(threads, test_threads_block_signals);
	tcase_add_test(threads, test_fork_lazy);
	tcase_add_test(threads, test_fork_running_maxalloc);
	tcase_add_test(threads, test_fork_registry_churn);
	tcase_add_test(threads, test_fork_from_task);
	tcase_add_test(threads, test_destroy_cancelled);
	tcase_add_test(threads, test_exit_while_forking);
	suite_add_tcase(s, threads);

	tcase_set_timeout(timing, 10);
	tcase_add_test(timing, test_delay);
	tcase_add_test(timing, test_cancel_pending);
	tcase_add_test(timing, test_cancel_running_and_done);
	tcase_add_test(timing, test_wait_id);
	tcase_add_test(timing, test_wait_outstanding);
	suite_add_tcase(s, timing);

	tcase_set_timeout(life, 10);
	tcase_add_test(life, test_destroy_runs_queued);
	tcase_add_test(life, test_destroy_due_delayed);
	tcase_add_test(life, test_create_destroy_churn);
	tcase_add_test(life, test_destroy_from_own_task);
	tcase_add_test(life, test_dispatch_from_task);
	suite_add_tcase(s, life);

	tcase_set_timeout(alloc, 10);
	tcase_add_test(alloc, test_nosleep_maxalloc);
	tcase_add_test(alloc, test_sleep_maxalloc);
	tcase_add_test(alloc, test_sleep_maxalloc_rearming);
	tcase_add_test(alloc, test_dispatch_ent_never_fails);
	suite_add_tcase(s, alloc);

	tcase_set_timeout(api, 10);
	tcase_add_test(api, test_create_bad_args);
	tcase_add_test(api, test_bad_calls);
	tcase_add_test(api, test_stats_prepopulate);
	tcase_add_test(api, test_walk);
	suite_add_tcase(s, api);
	return (test_run_suite(s));
}
