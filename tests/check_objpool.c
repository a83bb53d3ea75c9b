/*
 * check_objpool.c - the objpool: API behaviour, conservation under
 * oversubscribed stress (free and all on one CPU), ring circulation, and
 * the test_objpool cases (sync, sync overrun, async) ported to threads.
 * Bad calls return -EINVAL and say why in one line on stderr.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "libkmem/objpool.h"
#include "testutil.h"

#define NTHREADS        16

/* Every object carries an owner tag: 0 while in the pool. */
struct tobj {
	_Atomic long owner;
	long index;
	char pad[48];
};

static int
tobj_init(void *obj, void *context)
{
	struct tobj *o = obj;
	_Atomic long *next = context;

	o->index = atomic_fetch_add(next, 1);
	return (0);
}

static _Atomic int release_calls;

static int
count_release(struct objpool_head *pool, void *context)
{
	(void) pool; (void) context;
	atomic_fetch_add(&release_calls, 1);
	return (0);
}

/*
 * Pop every object, check each index appears exactly once, then push them
 * all back so that the pool is whole again.
 */
static void
check_all_present(struct objpool_head *pool, long nr)
{
	char *seen = calloc((size_t)nr, 1);
	struct tobj **all = calloc((size_t)nr + 1, sizeof (*all));
	long got = 0;
	struct tobj *o;

	ck_assert_ptr_nonnull(seen);
	ck_assert_ptr_nonnull(all);
	while ((o = objpool_pop(pool)) != NULL) {
		ck_assert_int_eq(atomic_load(&o->owner), 0);
		ck_assert_int_ge(o->index, 0);
		ck_assert_int_lt(o->index, nr);
		ck_assert_msg(!seen[o->index], "object %ld popped twice",
		    o->index);
		seen[o->index] = 1;
		all[got++] = o;
		ck_assert_int_le(got, nr);
	}
	ck_assert_int_eq(got, nr);
	for (long i = 0; i < got; i++)
		ck_assert_int_eq(objpool_push(all[i], pool), 0);
	ck_assert_int_eq(objpool_count(pool), nr);
	free(all);
	free(seen);
}

/* ------------------------------------------------------------ API */

/* ------------------------------------------------------------ bad calls */

enum { OP_INIT, OP_INIT_RING, OP_PUSH, OP_DROP, OP_COUNT };

struct op_call {
	int op;
	void *obj;
	struct objpool_head *pool;
	int a, b;
	int ret;
};

static void
op_call_run(void *arg)
{
	struct op_call *c = arg;

	switch (c->op) {
	case OP_INIT:
		c->ret = objpool_init(c->pool, c->a, c->b, NULL, NULL, NULL);
		break;
	case OP_INIT_RING:
		c->ret = objpool_init_ring(c->pool, c->a, NULL, NULL);
		break;
	case OP_PUSH: c->ret = objpool_push(c->obj, c->pool); break;
	case OP_DROP: c->ret = objpool_drop(c->obj, c->pool); break;
	case OP_COUNT: c->ret = objpool_count(c->pool); break;
	}
}

/*
 * The call is refused with -EINVAL and one line on stderr naming the
 * function and saying what was wrong ('why').
 */
static void
expect_einval_op(int op, void *obj, struct objpool_head *pool, int a, int b,
    const char *why, int line)
{
	static const char *const fn[] = { "objpool_init(",
	    "objpool_init_ring(", "objpool_push(", "objpool_drop(",
	    "objpool_count(" };
	struct op_call c = { op, obj, pool, a, b, 0 };
	char buf[512], want[64];

	test_capture_stderr(op_call_run, &c, buf, sizeof (buf));
	ck_assert_msg(c.ret == -EINVAL, "line %d: returned %d", line, c.ret);
	(void) snprintf(want, sizeof (want), "libkmem: %s", fn[op]);
	ck_assert_msg(strncmp(buf, want, strlen(want)) == 0 &&
	    strchr(buf, '\n') == buf + strlen(buf) - 1 &&
	    strstr(buf, why) != NULL, "line %d: stderr '%s'", line, buf);
}

#define	EXPECT_EINVAL(op, obj, pool, a, b, why) \
	expect_einval_op(op, obj, pool, a, b, why, __LINE__)

/* Many refused calls: their lines go to /dev/null, not to the log. */
static int
stderr_quiet(void)
{
	int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY);

	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(null, 0);
	ck_assert_int_ge(dup2(null, STDERR_FILENO), 0);
	close(null);
	return (saved);
}

static void
stderr_restore(int saved)
{
	ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
	close(saved);
}

START_TEST(test_init_errors)
{
	struct objpool_head pool;

	EXPECT_EINVAL(OP_INIT, NULL, NULL, 4, 8, "NULL pool");
	EXPECT_EINVAL(OP_INIT, NULL, &pool, 0, 8, "nr_objs");
	EXPECT_EINVAL(OP_INIT, NULL, &pool, -1, 8, "nr_objs");
	EXPECT_EINVAL(OP_INIT, NULL, &pool, OBJPOOL_NR_OBJECT_MAX + 1, 8,
	    "nr_objs");
	EXPECT_EINVAL(OP_INIT, NULL, &pool, 4, 0, "object_size");
	EXPECT_EINVAL(OP_INIT, NULL, &pool, 4, -8, "object_size");
	EXPECT_EINVAL(OP_INIT, NULL, &pool, 4, OBJPOOL_OBJECT_SIZE_MAX + 1,
	    "object_size");
	EXPECT_EINVAL(OP_INIT_RING, NULL, NULL, 4, 0, "NULL pool");
	EXPECT_EINVAL(OP_INIT_RING, NULL, &pool, 0, 0, "capacity");
	EXPECT_EINVAL(OP_INIT_RING, NULL, &pool, OBJPOOL_NR_OBJECT_MAX + 1, 0,
	    "capacity");

	/* The limits themselves are accepted. */
	ck_assert_int_eq(objpool_init(&pool, 4, OBJPOOL_OBJECT_SIZE_MAX,
	    NULL, NULL, NULL), 0);
	ck_assert_int_eq(pool.obj_size, OBJPOOL_OBJECT_SIZE_MAX);
	objpool_fini(&pool);
	ck_assert_int_eq(objpool_init_ring(&pool, OBJPOOL_NR_OBJECT_MAX,
	    NULL, NULL), 0);
	ck_assert_int_eq(pool.capacity, OBJPOOL_NR_OBJECT_MAX);
	objpool_fini(&pool);

	/* Object size is rounded up to a long. */
	ck_assert_int_eq(objpool_init(&pool, 3, 5, NULL, NULL, NULL), 0);
	ck_assert_int_eq(pool.obj_size, 8);
	ck_assert_int_eq(pool.capacity, 4);
	objpool_fini(&pool);
}
END_TEST

static int
failing_init(void *obj, void *context)
{
	_Atomic int *calls = context;

	(void) obj;
	return (atomic_fetch_add(calls, 1) == 5 ? -ENOMEM : 0);
}

START_TEST(test_objinit_once_and_failure)
{
	struct objpool_head pool;
	_Atomic long next = 0;
	_Atomic int calls = 0;

	ck_assert_int_eq(objpool_init(&pool, 37, sizeof (struct tobj), &next,
	    tobj_init, count_release), 0);
	ck_assert_int_eq(atomic_load(&next), 37);     /* once per object */
	ck_assert_int_eq(objpool_count(&pool), 37);
	check_all_present(&pool, 37);
	atomic_store(&release_calls, 0);
	objpool_fini(&pool);
	ck_assert_int_eq(atomic_load(&release_calls), 1);

	/* A failing objinit aborts init with its code; release not called. */
	ck_assert_int_eq(objpool_init(&pool, 16, 8, &calls, failing_init,
	    count_release), -ENOMEM);
	ck_assert_int_eq(atomic_load(&release_calls), 1);
}
END_TEST

START_TEST(test_pop_empty_push_null)
{
	struct objpool_head pool;

	ck_assert_int_eq(objpool_init_ring(&pool, 8, NULL, NULL), 0);
	ck_assert_ptr_null(objpool_pop(&pool));
	ck_assert_int_eq(objpool_count(&pool), 0);
	EXPECT_EINVAL(OP_PUSH, NULL, &pool, 0, 0, "NULL object");
	EXPECT_EINVAL(OP_DROP, &pool, &pool, 0, 0, "ring pool");  /* a ring */
	objpool_fini(&pool);
}
END_TEST

/* Within one CPU's ring, entries come out in the order they went in. */
START_TEST(test_fifo_within_slot)
{
	struct objpool_head pool;
	long v[6];

	ck_assert_int_eq(test_pin(test_nth_cpu(0)), 0);
	ck_assert_int_eq(objpool_init_ring(&pool, 6, NULL, NULL), 0);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(objpool_push(&v[i], &pool), 0);
	ck_assert_int_eq(objpool_count(&pool), 6);
	for (int i = 0; i < 6; i++)
		ck_assert_ptr_eq(objpool_pop(&pool), &v[i]);
	ck_assert_ptr_null(objpool_pop(&pool));

	/* Interleaved, across many wrap-arounds of the 8-entry ring. */
	for (int round = 0; round < 1000; round++) {
		ck_assert_int_eq(objpool_push(&v[round % 6], &pool), 0);
		ck_assert_int_eq(objpool_push(&v[(round + 1) % 6], &pool), 0);
		ck_assert_ptr_eq(objpool_pop(&pool), &v[round % 6]);
		ck_assert_ptr_eq(objpool_pop(&pool), &v[(round + 1) % 6]);
	}
	objpool_fini(&pool);
}
END_TEST

/* Pushing more than the pool holds is reported, not absorbed. */
START_TEST(test_overfill_reported)
{
	struct objpool_head pool;
	long v[5];

	ck_assert_int_eq(test_pin(test_nth_cpu(0)), 0);
	ck_assert_int_eq(objpool_init_ring(&pool, 4, NULL, NULL), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(objpool_push(&v[i], &pool), 0);
	ck_assert_int_eq(objpool_push(&v[4], &pool), -ENOSPC);
	for (int i = 0; i < 4; i++)
		ck_assert_ptr_eq(objpool_pop(&pool), &v[i]);
	objpool_fini(&pool);
}
END_TEST

START_TEST(test_fini_then_drop)
{
	struct objpool_head pool;
	void *out[3];

	atomic_store(&release_calls, 0);
	ck_assert_int_eq(objpool_init(&pool, 8, 32, NULL, NULL,
	    count_release), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_ptr_nonnull(out[i] = objpool_pop(&pool));
	objpool_fini(&pool);            /* three objects still out */
	ck_assert_int_eq(atomic_load(&release_calls), 0);
	ck_assert_int_eq(objpool_drop(out[0], &pool), -EAGAIN);
	ck_assert_int_eq(objpool_drop(out[1], &pool), -EAGAIN);
	memset(out[2], 0xa5, 32);       /* objects stay usable until dropped */
	ck_assert_int_eq(atomic_load(&release_calls), 0);
	ck_assert_int_eq(objpool_drop(out[2], &pool), 0);
	ck_assert_int_eq(atomic_load(&release_calls), 1);
	/* The pool is gone: further calls are refused, not crashes. */
	EXPECT_EINVAL(OP_DROP, out[2], &pool, 0, 0, "pool released");
	objpool_fini(&pool);
	objpool_free(&pool);
	ck_assert_int_eq(atomic_load(&release_calls), 1);
	EXPECT_EINVAL(OP_DROP, NULL, &pool, 0, 0, "pool released");
	ck_assert_ptr_null(objpool_pop(&pool));
	EXPECT_EINVAL(OP_PUSH, out[0], &pool, 0, 0, "released");
	EXPECT_EINVAL(OP_COUNT, NULL, &pool, 0, 0, "released");
	/* So are NULL pools. */
	ck_assert_ptr_null(objpool_pop(NULL));
	EXPECT_EINVAL(OP_PUSH, out[0], NULL, 0, 0, "NULL pool");
	EXPECT_EINVAL(OP_COUNT, NULL, NULL, 0, 0, "NULL pool");
	objpool_fini(NULL);
	objpool_free(NULL);
}
END_TEST

/*
 * Once objpool_fini() has run, objects still out go back only with
 * objpool_drop(): a push is refused (the pool would never be released),
 * and a second objpool_fini() must not drop an outstanding object's
 * reference (the pool would be released while that object is out).
 */
START_TEST(test_fini_ends_use)
{
	struct objpool_head pool;
	void *out[2];

	atomic_store(&release_calls, 0);
	ck_assert_int_eq(objpool_init(&pool, 8, 32, NULL, NULL,
	    count_release), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_ptr_nonnull(out[i] = objpool_pop(&pool));
	objpool_fini(&pool);            /* two objects still out */
	EXPECT_EINVAL(OP_PUSH, out[0], &pool, 0, 0, "released or ended");
	ck_assert_ptr_null(objpool_pop(&pool));
	objpool_fini(&pool);            /* already ended: no effect */
	ck_assert_int_eq(atomic_load(&release_calls), 0);
	ck_assert_int_eq(objpool_drop(out[0], &pool), -EAGAIN);
	ck_assert_int_eq(atomic_load(&release_calls), 0);
	memset(out[1], 0xa5, 32);       /* still out: still usable */
	ck_assert_int_eq(objpool_drop(out[1], &pool), 0);
	ck_assert_int_eq(atomic_load(&release_calls), 1);
}
END_TEST

/*
 * A pool that owns its objects takes back only those: a foreign pointer
 * (or one into the middle of an object) is refused, instead of being
 * handed out by a later pop and counted by fini as an object's reference
 * (which released the pool while its own objects were still out).
 */
START_TEST(test_push_foreign_refused)
{
	struct objpool_head pool, other;
	struct tobj *out[2], *all[4], *o;
	long stack_obj[8];
	int n = 0;

	atomic_store(&release_calls, 0);
	ck_assert_int_eq(objpool_init(&pool, 5, sizeof (struct tobj), NULL,
	    NULL, count_release), 0);
	ck_assert_int_eq(objpool_init(&other, 5, sizeof (struct tobj), NULL,
	    NULL, NULL), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_ptr_nonnull(out[i] = objpool_pop(&pool));
	EXPECT_EINVAL(OP_PUSH, stack_obj, &pool, 0, 0, "is not one of");
	EXPECT_EINVAL(OP_PUSH, (char *)out[0] + 8, &pool, 0, 0,
	    "is not one of");
	ck_assert_ptr_nonnull(o = objpool_pop(&other));
	EXPECT_EINVAL(OP_PUSH, o, &pool, 0, 0, "is not one of");
	ck_assert_int_eq(objpool_push(o, &other), 0);
	ck_assert_int_eq(objpool_count(&pool), 3);
	/* Every object of the pool, on every ring, is taken back. */
	ck_assert_int_eq(objpool_push(out[0], &pool), 0);
	while ((o = objpool_pop(&pool)) != NULL) {
		ck_assert_int_lt(n, 4);
		all[n++] = o;
	}
	ck_assert_int_eq(n, 4);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(objpool_push(all[i], &pool), 0);
	ck_assert_int_eq(objpool_count(&pool), 4);
	objpool_fini(&pool);            /* out[1] still out */
	ck_assert_int_eq(atomic_load(&release_calls), 0);
	ck_assert_int_eq(objpool_drop(out[1], &pool), 0);
	ck_assert_int_eq(atomic_load(&release_calls), 1);
	objpool_fini(&other);
}
END_TEST

/*
 * push's ownership check (arithmetic on the layout, no division) against
 * its definition: at every 4-byte step through the pool's mapping and a
 * little around it, push takes exactly the pool's own objects.  Pool
 * shapes: one object, shares that differ between rings, odd multiples of
 * 8 and a large power of two.
 */
START_TEST(test_push_owns_exact)
{
	static const int shapes[][2] = { { 1, 8 }, { 5, 24 }, { 7, 72 },
	    { 33, 40 }, { 100, 8 }, { 3, 65536 }, { 9, 1000 } };

	for (size_t k = 0; k < sizeof (shapes) / sizeof (shapes[0]); k++) {
		struct objpool_head pool;
		int nr = shapes[k][0], n = 0, bad = 0, saved;
		void **own = calloc((size_t)nr, sizeof (*own));
		char *lo, *hi;
		void *o;

		ck_assert_ptr_nonnull(own);
		ck_assert_int_eq(objpool_init(&pool, nr, shapes[k][1], NULL,
		    NULL, NULL), 0);
		while ((o = objpool_pop(&pool)) != NULL) {
			ck_assert_int_lt(n, nr);
			own[n++] = o;
		}
		ck_assert_int_eq(n, nr);
		saved = stderr_quiet();         /* a line per refusal */
		lo = (char *)pool.op_map - 256;
		hi = (char *)pool.op_map + pool.op_map_len + 256;
		for (char *p = lo; p < hi; p += 4) {
			bool want = false;
			int rc;

			for (int i = 0; i < nr && !want; i++)
				want = own[i] == p;
			rc = objpool_push(p, &pool);
			if (rc == 0 && objpool_pop(&pool) != p)
				bad++;
			bad += (rc == 0) != want;
		}
		stderr_restore(saved);
		ck_assert_msg(bad == 0, "%d objects of %d bytes: %d wrong",
		    nr, shapes[k][1], bad);
		for (int i = 0; i < nr; i++)
			ck_assert_int_eq(objpool_push(own[i], &pool), 0);
		objpool_fini(&pool);
		free(own);
	}
}
END_TEST

/*
 * objpool_drop() takes back only the pool's own objects: a foreign
 * pointer dropped a reference that belonged to an object still out, and
 * fini then released the pool under it.
 */
START_TEST(test_drop_foreign_refused)
{
	struct objpool_head pool;
	struct tobj *out;
	long stack_obj[8];

	atomic_store(&release_calls, 0);
	ck_assert_int_eq(objpool_init(&pool, 2, sizeof (struct tobj), NULL,
	    NULL, count_release), 0);
	ck_assert_ptr_nonnull(out = objpool_pop(&pool));
	EXPECT_EINVAL(OP_DROP, stack_obj, &pool, 0, 0, "is not one of");
	EXPECT_EINVAL(OP_DROP, (char *)out + 8, &pool, 0, 0, "is not one of");
	objpool_fini(&pool);            /* out still out */
	ck_assert_int_eq(atomic_load(&release_calls), 0);
	EXPECT_EINVAL(OP_DROP, stack_obj, &pool, 0, 0, "is not one of");
	ck_assert_int_eq(atomic_load(&release_calls), 0);
	ck_assert_int_eq(objpool_drop(out, &pool), 0);
	ck_assert_int_eq(atomic_load(&release_calls), 1);
}
END_TEST

START_TEST(test_free_forced)
{
	struct objpool_head pool;

	atomic_store(&release_calls, 0);
	ck_assert_int_eq(objpool_init(&pool, 8, 16, NULL, NULL,
	    count_release), 0);
	ck_assert_ptr_nonnull(objpool_pop(&pool));
	objpool_free(&pool);            /* forced, object still out */
	ck_assert_int_eq(atomic_load(&release_calls), 1);
	objpool_free(&pool);
	ck_assert_int_eq(atomic_load(&release_calls), 1);
}
END_TEST

/* ------------------------------------------------------------ stress */

struct stress {
	struct objpool_head *pool;
	double seconds;
	int pin_cpu;            /* -1: free to migrate */
	int bulk_max;
	_Atomic long hits, misses;
	_Atomic long errors;
};

static void *
stress_thread(void *arg)
{
	struct stress *st = arg;
	uint64_t seed = (uint64_t)pthread_self() | 1;
	long me = (long)(test_rand(&seed) | 1);
	struct tobj *held[64];
	long hits = 0, misses = 0;
	double end = test_now() + st->seconds;

	if (st->pin_cpu >= 0)
		test_pin(st->pin_cpu);
	/* One round at least: a loaded machine may run it past 'end'. */
	do {
		int bulk = 1 + (int)(test_rand(&seed) % (uint64_t)st->bulk_max);
		int n = 0;

		for (int i = 0; i < bulk; i++) {
			struct tobj *o = objpool_pop(st->pool);
			long zero = 0;

			if (o == NULL) {
				misses++;
				continue;
			}
			hits++;
			/* Handed out twice if someone else owns it. */
			if (!atomic_compare_exchange_strong(&o->owner, &zero,
			    me))
				atomic_fetch_add(&st->errors, 1);
			held[n++] = o;
			if ((test_rand(&seed) & 15) == 0)
				sched_yield();
		}
		for (int i = n - 1; i >= 0; i--) {
			long mine = me;
			if (!atomic_compare_exchange_strong(&held[i]->owner,
			    &mine, 0))
				atomic_fetch_add(&st->errors, 1);
			if (objpool_push(held[i], st->pool) != 0)
				atomic_fetch_add(&st->errors, 1);
			if ((test_rand(&seed) & 15) == 0)
				sched_yield();
		}
	} while (test_now() < end);
	atomic_fetch_add(&st->hits, hits);
	atomic_fetch_add(&st->misses, misses);
	return (NULL);
}

static void
run_stress(struct objpool_head *pool, double seconds, int pin_cpu,
    int bulk_max, struct stress *st)
{
	pthread_t t[NTHREADS];

	memset(st, 0, sizeof (*st));
	st->pool = pool;
	st->seconds = seconds;
	st->pin_cpu = pin_cpu;
	st->bulk_max = bulk_max;
	for (int i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, stress_thread,
		    st), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(atomic_load(&st->errors), 0);
	ck_assert_int_gt(atomic_load(&st->hits), 0);
}

static void
conservation(int pin_cpu)
{
	struct objpool_head pool;
	_Atomic long next = 0;
	struct stress st;
	const long nr = 300;    /* fewer than 16 threads x 32 bulk: contended */

	ck_assert_int_eq(objpool_init(&pool, (int)nr, sizeof (struct tobj),
	    &next, tobj_init, NULL), 0);
	run_stress(&pool, test_seconds(3), pin_cpu, 32, &st);
	check_all_present(&pool, nr);
	objpool_fini(&pool);
}

START_TEST(test_conservation_stress)
{
	conservation(-1);
}
END_TEST

/* Every thread on one CPU: all pushers share one ring. */
START_TEST(test_conservation_one_cpu)
{
	conservation(test_nth_cpu(0));
}
END_TEST

/*
 * Caller-owned pointers circulating between a "full" and an "empty" ring
 * (the magazine depot's use): none lost, none duplicated.
 */
struct circ {
	struct objpool_head full, empty;
	double seconds;
	_Atomic long errors, moves;
};

static void *
circ_thread(void *arg)
{
	struct circ *c = arg;
	uint64_t seed = (uint64_t)pthread_self() | 1;
	long me = (long)(test_rand(&seed) | 1);
	double end = test_now() + c->seconds;
	long moves = 0;

	while (test_now() < end) {
		bool from_full = test_rand(&seed) & 1;
		struct objpool_head *src = from_full ? &c->full : &c->empty;
		struct objpool_head *dst = from_full ? &c->empty : &c->full;
		struct tobj *o = objpool_pop(src);
		long zero = 0, mine = me;

		if (o == NULL)
			continue;
		if (!atomic_compare_exchange_strong(&o->owner, &zero, me))
			atomic_fetch_add(&c->errors, 1);
		if ((test_rand(&seed) & 7) == 0)
			sched_yield();
		if (!atomic_compare_exchange_strong(&o->owner, &mine, 0))
			atomic_fetch_add(&c->errors, 1);
		if (objpool_push(o, dst) != 0)
			atomic_fetch_add(&c->errors, 1);
		moves++;
	}
	atomic_fetch_add(&c->moves, moves);
	return (NULL);
}

START_TEST(test_ring_circulation)
{
	enum { NBUF = 64 };
	static struct tobj bufs[NBUF];
	struct circ c;
	pthread_t t[NTHREADS];
	char seen[NBUF] = { 0 };
	struct tobj *o;
	int found = 0;

	memset(&c, 0, sizeof (c));
	c.seconds = test_seconds(3);
	ck_assert_int_eq(objpool_init_ring(&c.full, NBUF, NULL, NULL), 0);
	ck_assert_int_eq(objpool_init_ring(&c.empty, NBUF, NULL, NULL), 0);
	for (int i = 0; i < NBUF; i++) {
		bufs[i].index = i;
		atomic_store(&bufs[i].owner, 0);
		ck_assert_int_eq(objpool_push(&bufs[i],
		    i % 2 ? &c.full : &c.empty), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, circ_thread,
		    &c), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(atomic_load(&c.errors), 0);
	ck_assert_int_gt(atomic_load(&c.moves), 0);
	for (int r = 0; r < 2; r++) {
		while ((o = objpool_pop(r ? &c.full : &c.empty)) != NULL) {
			ck_assert(!seen[o->index]);
			seen[o->index] = 1;
			found++;
		}
	}
	ck_assert_int_eq(found, NBUF);
	objpool_fini(&c.full);
	objpool_fini(&c.empty);
}
END_TEST

/* ------------------------------------------------ test_objpool cases */

/*
 * sync: one thread per CPU, pinned, each popping up to 16 objects and
 * pushing them back.  Every ring starts with 32 objects and only its own
 * CPU's thread pushes to it, so no pop may ever miss.
 */
START_TEST(test_case_sync)
{
	int ncpu = test_online_cpus();
	struct objpool_head pool;
	_Atomic long next = 0;
	struct stress *st = calloc((size_t)ncpu, sizeof (*st));
	pthread_t *t = calloc((size_t)ncpu, sizeof (*t));
	long nr;

	ck_assert_int_eq(objpool_init_ring(&pool, 1, NULL, NULL), 0);
	nr = (long)pool.nr_cpus * 32;
	objpool_fini(&pool);
	ck_assert_int_eq(objpool_init(&pool, (int)nr, sizeof (struct tobj),
	    &next, tobj_init, NULL), 0);
	for (int i = 0; i < ncpu; i++) {
		st[i].pool = &pool;
		st[i].seconds = test_seconds(3) / 3;
		st[i].bulk_max = 16;
		st[i].pin_cpu = test_nth_cpu(i);
		ck_assert_int_eq(pthread_create(&t[i], NULL, stress_thread,
		    &st[i]), 0);
	}
	for (int i = 0; i < ncpu; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(atomic_load(&st[i].errors), 0);
		ck_assert_int_gt(atomic_load(&st[i].hits), 0);
		ck_assert_int_eq(atomic_load(&st[i].misses), 0);
	}
	check_all_present(&pool, nr);
	objpool_fini(&pool);
	free(st);
	free(t);
}
END_TEST

/*
 * sync overrun: 16 threads popping bulks of 16 from a pool of 64, so most
 * bulks come up short (misses) - and still nothing is lost or duplicated.
 */
START_TEST(test_case_sync_overrun)
{
	struct objpool_head pool;
	_Atomic long next = 0;
	struct stress st;

	ck_assert_int_eq(objpool_init(&pool, 64, sizeof (struct tobj), &next,
	    tobj_init, NULL), 0);
	run_stress(&pool, test_seconds(3) / 3, -1, 16, &st);
	ck_assert_int_gt(atomic_load(&st.misses), 0);
	check_all_present(&pool, 64);
	objpool_fini(&pool);
}
END_TEST

/*
 * async: producer threads pop objects and hand them through a mailbox to
 * consumer threads, which push them back from another CPU context.
 */
#define MAILBOX 64
struct mailbox {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct tobj *slot[MAILBOX];
	int n;
	bool done;
};

struct async_arg {
	struct objpool_head *pool;
	struct mailbox *mb;
	double seconds;
	_Atomic long *hits, *errors;
};

static void *
async_producer(void *arg)
{
	struct async_arg *a = arg;
	double end = test_now() + a->seconds;
	long hits = 0;

	while (test_now() < end) {
		struct tobj *o = objpool_pop(a->pool);
		long zero = 0;

		if (o == NULL) {
			sched_yield();
			continue;
		}
		hits++;
		if (!atomic_compare_exchange_strong(&o->owner, &zero, 1))
			atomic_fetch_add(a->errors, 1);
		pthread_mutex_lock(&a->mb->lock);
		while (a->mb->n == MAILBOX)
			pthread_cond_wait(&a->mb->cv, &a->mb->lock);
		a->mb->slot[a->mb->n++] = o;
		pthread_cond_broadcast(&a->mb->cv);
		pthread_mutex_unlock(&a->mb->lock);
	}
	atomic_fetch_add(a->hits, hits);
	return (NULL);
}

static void *
async_consumer(void *arg)
{
	struct async_arg *a = arg;

	for (;;) {
		struct tobj *o;
		long one = 1;

		pthread_mutex_lock(&a->mb->lock);
		while (a->mb->n == 0 && !a->mb->done)
			pthread_cond_wait(&a->mb->cv, &a->mb->lock);
		if (a->mb->n == 0) {
			pthread_mutex_unlock(&a->mb->lock);
			return (NULL);
		}
		o = a->mb->slot[--a->mb->n];
		pthread_cond_broadcast(&a->mb->cv);
		pthread_mutex_unlock(&a->mb->lock);
		if (!atomic_compare_exchange_strong(&o->owner, &one, 0))
			atomic_fetch_add(a->errors, 1);
		if (objpool_push(o, a->pool) != 0)
			atomic_fetch_add(a->errors, 1);
	}
}

START_TEST(test_case_async)
{
	enum { PAIRS = NTHREADS / 2 };
	struct objpool_head pool;
	_Atomic long next = 0, hits = 0, errors = 0;
	struct mailbox mb[PAIRS];
	struct async_arg arg[PAIRS];
	pthread_t prod[PAIRS], cons[PAIRS];
	const long nr = 512;

	ck_assert_int_eq(objpool_init(&pool, (int)nr, sizeof (struct tobj),
	    &next, tobj_init, NULL), 0);
	for (int i = 0; i < PAIRS; i++) {
		memset(&mb[i], 0, sizeof (mb[i]));
		pthread_mutex_init(&mb[i].lock, NULL);
		pthread_cond_init(&mb[i].cv, NULL);
		arg[i] = (struct async_arg){ &pool, &mb[i],
		    test_seconds(3) / 3, &hits, &errors };
		ck_assert_int_eq(pthread_create(&prod[i], NULL,
		    async_producer, &arg[i]), 0);
		ck_assert_int_eq(pthread_create(&cons[i], NULL,
		    async_consumer, &arg[i]), 0);
	}
	for (int i = 0; i < PAIRS; i++) {
		pthread_join(prod[i], NULL);
		pthread_mutex_lock(&mb[i].lock);
		mb[i].done = true;
		pthread_cond_broadcast(&mb[i].cv);
		pthread_mutex_unlock(&mb[i].lock);
		pthread_join(cons[i], NULL);
	}
	ck_assert_int_eq(atomic_load(&errors), 0);
	ck_assert_int_gt(atomic_load(&hits), 0);
	check_all_present(&pool, nr);
	objpool_fini(&pool);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("objpool");
	TCase *api = tcase_create("api");
	TCase *stress = tcase_create("stress");
	TCase *cases = tcase_create("test_objpool");

	tcase_add_test(api, test_init_errors);
	tcase_add_test(api, test_objinit_once_and_failure);
	tcase_add_test(api, test_pop_empty_push_null);
	tcase_add_test(api, test_fifo_within_slot);
	tcase_add_test(api, test_overfill_reported);
	tcase_add_test(api, test_fini_then_drop);
	tcase_add_test(api, test_fini_ends_use);
	tcase_add_test(api, test_push_foreign_refused);
	tcase_add_test(api, test_push_owns_exact);
	tcase_add_test(api, test_drop_foreign_refused);
	tcase_add_test(api, test_free_forced);
	suite_add_tcase(s, api);

	tcase_set_timeout(stress, 120);
	tcase_add_test(stress, test_conservation_stress);
	tcase_add_test(stress, test_conservation_one_cpu);
	tcase_add_test(stress, test_ring_circulation);
	suite_add_tcase(s, stress);

	tcase_set_timeout(cases, 120);
	tcase_add_test(cases, test_case_sync);
	tcase_add_test(cases, test_case_sync_overrun);
	tcase_add_test(cases, test_case_async);
	suite_add_tcase(s, cases);
	return (test_run_suite(s));
}
