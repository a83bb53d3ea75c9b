/*
 * check_magazine.c - the per-CPU magazine layer and the depot, in both
 * per-CPU modes (rseq and lock): conservation under 16 oversubscribed
 * threads, remote frees through a pipeline, the constructor-count bound,
 * flushing every CPU while the CPUs are busy, magazine sizing, statistics.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libkmem/kmem.h"
#include "cache.h"
#include "cpu.h"
#include "magazine.h"
#include "tunables.h"
#include "testutil.h"

#define NTHREADS        16

/* Word 0 is the slab free-list link while an object is in a slab. */
struct tobj {
	uint64_t link;
	_Atomic uint64_t owner;         /* 0 while not held */
	uint64_t magic;                 /* set by the constructor */
	char pad[40];
};

#define TOBJ_MAGIC      0x636f6e7374727563ULL

static _Atomic long n_ctor, n_dtor;

static int
tobj_ctor(void *buf, void *priv, int kmflags)
{
	struct tobj *o = buf;

	(void) priv; (void) kmflags;
	atomic_store(&o->owner, 0);
	o->magic = TOBJ_MAGIC;
	atomic_fetch_add(&n_ctor, 1);
	return (0);
}

static void
tobj_dtor(void *buf, void *priv)
{
	struct tobj *o = buf;

	(void) priv;
	ck_assert_uint_eq(o->magic, TOBJ_MAGIC);
	o->magic = 0;
	atomic_fetch_add(&n_dtor, 1);
}

static const enum mag_mode modes[] = { MAG_RSEQ, MAG_LOCK };
static const char *const mode_names[] = { "none", "rseq", "lock" };

static kmem_cache_t *
make_cache(const char *name, enum mag_mode mode, size_t size)
{
	kmem_cache_t *cp;

	mag_set_default_mode(mode);
	cp = kmem_cache_create(name, size, 0, tobj_ctor, tobj_dtor, NULL,
	    NULL, NULL, 0);
	ck_assert_ptr_nonnull(cp);
	return (cp);
}

static struct kmem_cache_stats
stats_of(kmem_cache_t *cp)
{
	struct kmem_cache_stats st;

	ck_assert_int_eq(kmem_cache_stats(cp, &st), 0);
	return (st);
}

/* Take an object: it must be constructed and held by nobody. */
static bool
claim(struct tobj *o, uint64_t me)
{
	uint64_t zero = 0;

	return (o != NULL && o->magic == TOBJ_MAGIC &&
	    atomic_compare_exchange_strong(&o->owner, &zero, me));
}

static bool
release(struct tobj *o, uint64_t me)
{
	return (atomic_compare_exchange_strong(&o->owner, &me, 0));
}

/* ------------------------------------------------------------ basics */

START_TEST(test_rseq_available)
{
	/* glibc 2.36 registers rseq and Linux 6.x has membarrier RSEQ. */
	const char *tun = getenv("GLIBC_TUNABLES");

	if (getenv("KMEM_PERCPU") != NULL &&
	    strcmp(getenv("KMEM_PERCPU"), "lock") == 0)
		ck_assert_int_eq(mag_default_mode(), MAG_LOCK);
	else if (MAG_RSEQ_SUPPORTED && (tun == NULL ||
	    strstr(tun, "rseq=0") == NULL))
		ck_assert_int_eq(mag_default_mode(), MAG_RSEQ);
}
END_TEST

START_TEST(test_magazine_sizes)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	static const struct { size_t size; uint64_t rounds; } want[] = {
		{ 8, 256 }, { 1024, 256 }, { 1025, 128 }, { 4096, 128 },
		{ 4097, 64 }, { 32 * 4096, 64 }, { 32 * 4096 + 8, 16 },
		{ 256 * 4096, 16 }, { 256 * 4096 + 8, 4 },
	};

	ck_assert_uint_eq(page, 4096);
	for (size_t i = 0; i < sizeof (want) / sizeof (want[0]); i++) {
		kmem_cache_t *cp = kmem_cache_create("sz", want[i].size, 0,
		    NULL, NULL, NULL, NULL, NULL, 0);
		ck_assert_ptr_nonnull(cp);
		ck_assert_msg(stats_of(cp).mag_size == want[i].rounds,
		    "size %zu: %llu rounds, want %llu", want[i].size,
		    (unsigned long long)stats_of(cp).mag_size,
		    (unsigned long long)want[i].rounds);
		kmem_cache_destroy(cp);
	}
	/* The tunable overrides, clamped to 2..256; out of range kept. */
	ck_assert_int_eq(tunable_parse_env(KT_CACHE_MAGAZINE_SIZE, "1"), 0);
	ck_assert_uint_eq(mag_size_for(64), 2);
	ck_assert_int_eq(tunable_parse_env(KT_CACHE_MAGAZINE_SIZE, "48"), 0);
	ck_assert_uint_eq(mag_size_for(1 << 20), 48);
	ck_assert_int_eq(tunable_parse_env(KT_CACHE_MAGAZINE_SIZE, "300"),
	    -1);
	ck_assert_int_eq(tunable_parse_env(KT_CACHE_MAGAZINE_SIZE, "x"), -1);
	ck_assert_uint_eq(mag_size_for(1 << 20), 48);
	ck_assert_int_eq(tunable_parse_env(KT_CACHE_MAGAZINE_SIZE, "0"), 0);
	ck_assert_uint_eq(mag_size_for(64), 256);
	/* KMEM_PERCPU takes words. */
	ck_assert_int_eq(tunable_parse_env(KT_PERCPU, "fast"), -1);
	ck_assert_int_eq(tunable_parse_env(KT_PERCPU, "lock"), 0);
	ck_assert_int_eq(tunable(KT_PERCPU), KMEM_PERCPU_LOCK);
	ck_assert_str_eq(tunable_value_name(KT_PERCPU, KMEM_PERCPU_RSEQ),
	    "rseq");
}
END_TEST

/* KMC_NOMAGAZINE: straight to the slabs, constructor on every alloc. */
START_TEST(test_nomagazine)
{
	kmem_cache_t *cp = kmem_cache_create("nomag", 64, 0, tobj_ctor,
	    tobj_dtor, NULL, NULL, NULL, KMC_NOMAGAZINE);
	struct kmem_cache_stats st;

	for (int i = 0; i < 1000; i++) {
		struct tobj *o = kmem_cache_alloc(cp, KM_SLEEP);
		ck_assert(claim(o, 1));
		ck_assert(release(o, 1));
		kmem_cache_free(cp, o);
	}
	st = stats_of(cp);
	ck_assert_uint_eq(st.mag_size, 0);
	ck_assert_uint_eq(st.mag_alloc_hits, 0);
	ck_assert_uint_eq(st.alloc, 1000);
	ck_assert_uint_eq(st.free, 1000);
	ck_assert_uint_eq(st.ctor_calls, 1000);
	ck_assert_uint_eq(st.dtor_calls, 1000);
	ck_assert_uint_eq(st.obj_cached, 0);
	kmem_cache_destroy(cp);
}
END_TEST

/* Counters and the depot, single-threaded, in both modes. */
/* Pages of [p, p + len) resident in memory. */
static unsigned int
resident_pages(void *p, size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char vec[64];
	unsigned int n = 0;

	ck_assert_uint_le(len / pg, sizeof (vec));
	ck_assert_int_eq(mincore(p, len, vec), 0);
	for (size_t i = 0; i < (len + pg - 1) / pg; i++)
		n += vec[i] & 1;
	return (n);
}

/*
 * Creating a cache writes nothing into its depot's rings (its magazines
 * start fresh, outside the empty ring): their pages stay untouched until
 * magazines are parked there.  Every magazine is still accounted for.
 */
START_TEST(test_depot_rings_untouched)
{
	kmem_cache_t *cp = kmem_cache_create("fresh", 64, 0, NULL, NULL,
	    NULL, NULL, NULL, 0);
	struct depot *d = &cp->mag.depot;
	struct kmem_cache_stats st;

	ck_assert_uint_eq(resident_pages(d->full.op_map, d->full.op_map_len),
	    0);
	ck_assert_uint_eq(resident_pages(d->empty.op_map,
	    d->empty.op_map_len), 0);
	ck_assert_int_eq(kmem_cache_stats(cp, &st), 0);
	ck_assert_uint_eq(st.depot_full, 0);
	ck_assert_uint_eq(st.depot_empty, (uint64_t)d->nmags);
	/* One object in and out: still no magazine in the depot. */
	kmem_cache_free(cp, kmem_cache_alloc(cp, KM_SLEEP));
	ck_assert_uint_eq(resident_pages(d->full.op_map, d->full.op_map_len),
	    0);
	kmem_cache_destroy(cp);
}
END_TEST

START_TEST(test_stats_and_depot)
{
	for (int m = 0; m < 2; m++) {
		kmem_cache_t *cp = make_cache(mode_names[modes[m]], modes[m],
		    sizeof (struct tobj));
		struct kmem_cache_stats st = stats_of(cp);
		uint64_t mag = st.mag_size, depot = st.depot_empty;
		int n = (int)(mag * 12);
		void **v = calloc((size_t)n, sizeof (void *));

		ck_assert_uint_eq(mag, 256);
		ck_assert_uint_ge(depot, 8);
		ck_assert_uint_eq(st.depot_full, 0);
		ck_assert_int_eq(test_pin(test_nth_cpu(0)), 0);
		for (int i = 0; i < n; i++)
			v[i] = kmem_cache_alloc(cp, KM_SLEEP);
		for (int i = 0; i < n; i++)
			kmem_cache_free(cp, v[i]);
		st = stats_of(cp);
		ck_assert_uint_eq(st.alloc, (uint64_t)n);
		ck_assert_uint_eq(st.free, (uint64_t)n);
		ck_assert_uint_gt(st.mag_alloc_hits, 0);
		ck_assert_uint_gt(st.mag_free_hits, 0);
		/* The frees filled magazines and the depot took them. */
		ck_assert_uint_gt(st.depot_full, 0);
		ck_assert_uint_eq(st.depot_full + st.depot_empty, depot);
		ck_assert_uint_eq(st.obj_alloc, st.obj_cached);
		ck_assert_uint_eq(st.ctor_calls, st.dtor_calls +
		    st.obj_cached);
		/* Allocating again comes from the depot, no construction. */
		uint64_t ctors = st.ctor_calls;
		for (int i = 0; i < (int)(mag * 4); i++)
			v[i] = kmem_cache_alloc(cp, KM_SLEEP);
		ck_assert_uint_eq(stats_of(cp).ctor_calls, ctors);
		for (int i = 0; i < (int)(mag * 4); i++)
			kmem_cache_free(cp, v[i]);
		kmem_cache_reap_now(cp);
		st = stats_of(cp);
		ck_assert_uint_eq(st.obj_cached, 0);
		ck_assert_uint_eq(st.depot_full, 0);
		ck_assert_uint_eq(st.slab_total, 0);
		ck_assert_uint_eq(st.ctor_calls, st.dtor_calls);
		kmem_cache_destroy(cp);
		free(v);
	}
}
END_TEST

/*
 * mag_flushes counts magazines' worth of objects sent back to the slabs,
 * whichever path sent them: reaping a CPU's own two magazines too, not
 * only the depot's full ones (and half a magazine is not a whole one).
 */
START_TEST(test_flushes_counted)
{
	for (int m = 0; m < 2; m++) {
		kmem_cache_t *cp = make_cache(mode_names[modes[m]], modes[m],
		    sizeof (struct tobj));
		uint64_t mag = stats_of(cp).mag_size;
		int n = (int)(mag * 2);
		void **v = calloc((size_t)n, sizeof (void *));
		struct kmem_cache_stats st;
		uint64_t cached;

		ck_assert_ptr_nonnull(v);
		ck_assert_int_eq(test_pin(test_nth_cpu(0)), 0);
		for (int i = 0; i < n; i++)
			ck_assert_ptr_nonnull(v[i] = kmem_cache_alloc(cp,
			    KM_SLEEP));
		for (int i = 0; i < n; i++)
			kmem_cache_free(cp, v[i]);
		st = stats_of(cp);
		ck_assert_uint_eq(st.mag_flushes, 0);
		cached = st.obj_cached;
		ck_assert_uint_ge(cached, mag);
		kmem_cache_reap_now(cp);
		st = stats_of(cp);
		ck_assert_uint_eq(st.obj_cached, 0);
		ck_assert_uint_eq(st.mag_flushes, cached / mag);
		kmem_cache_destroy(cp);
		free(v);
	}
}
END_TEST

/* ------------------------------------------------------------ threads */

struct churn {
	kmem_cache_t *cp;
	double seconds;
	_Atomic long errors, ops;
	_Atomic bool stop;
};

static void *
churn_thread(void *arg)
{
	struct churn *c = arg;
	uint64_t seed = (uintptr_t)pthread_self() | 1;
	uint64_t me = test_rand(&seed) | 1;
	struct tobj *held[96];
	int n = 0;
	long ops = 0;
	double end = test_now() + c->seconds;

	while (test_now() < end) {
		int burst = 1 + (int)(test_rand(&seed) % 48);

		for (int i = 0; i < burst && n < 96; i++) {
			struct tobj *o = kmem_cache_alloc(c->cp, KM_SLEEP);
			if (!claim(o, me))
				atomic_fetch_add(&c->errors, 1);
			else
				held[n++] = o;
			if ((test_rand(&seed) & 31) == 0)
				sched_yield();
		}
		int drop = (int)(test_rand(&seed) % (uint64_t)(n + 1));
		for (int i = 0; i < drop; i++) {
			int k = (int)(test_rand(&seed) % (uint64_t)n);
			struct tobj *o = held[k];
			held[k] = held[--n];
			if (!release(o, me))
				atomic_fetch_add(&c->errors, 1);
			kmem_cache_free(c->cp, o);
			if ((test_rand(&seed) & 31) == 0)
				sched_yield();
		}
		ops += burst + drop;
	}
	while (n > 0) {
		struct tobj *o = held[--n];
		if (!release(o, me))
			atomic_fetch_add(&c->errors, 1);
		kmem_cache_free(c->cp, o);
	}
	atomic_fetch_add(&c->ops, ops);
	return (NULL);
}

/* After every thread freed everything: nothing held, nothing lost. */
static void
check_quiescent(kmem_cache_t *cp)
{
	struct kmem_cache_stats st = stats_of(cp);

	ck_assert_uint_eq(st.alloc, st.free);
	ck_assert_uint_eq(st.obj_alloc, st.obj_cached);
	ck_assert_uint_eq(st.ctor_calls, st.dtor_calls + st.obj_cached);
	kmem_cache_reap_now(cp);
	st = stats_of(cp);
	ck_assert_uint_eq(st.obj_alloc, 0);
	ck_assert_uint_eq(st.obj_cached, 0);
	ck_assert_uint_eq(st.slab_total, 0);
	ck_assert_uint_eq(st.ctor_calls, st.dtor_calls);
}

static void *
reaper_thread(void *arg)
{
	struct churn *c = arg;

	/*
	 * Often: a fast path that read a magazine's state before a flush
	 * and committed after it was a real bug once (magazine.c, REMOTE
	 * FLUSH); frequent flushes are what exposed it.
	 */
	while (!atomic_load(&c->stop)) {
		kmem_cache_reap_now(c->cp);     /* flushes every CPU */
		usleep(200);
	}
	return (NULL);
}

static void
run_churn(enum mag_mode mode, bool with_reaper)
{
	/* Flushing under load gets longer: its race needs an unlucky IRQ. */
	struct churn c = { .seconds = test_seconds(3) * (with_reaper ? 1.5 :
	    0.5) };
	pthread_t t[NTHREADS], r;

	c.cp = make_cache(mode_names[mode], mode, sizeof (struct tobj));
	for (int i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, churn_thread,
		    &c), 0);
	if (with_reaper)
		ck_assert_int_eq(pthread_create(&r, NULL, reaper_thread, &c),
		    0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	atomic_store(&c.stop, true);
	if (with_reaper)
		pthread_join(r, NULL);
	ck_assert_int_eq(atomic_load(&c.errors), 0);
	ck_assert_int_gt(atomic_load(&c.ops), 0);
	check_quiescent(c.cp);
	kmem_cache_destroy(c.cp);
	ck_assert_int_eq(atomic_load(&n_ctor), atomic_load(&n_dtor));
}

START_TEST(test_conservation_rseq)
{
	run_churn(MAG_RSEQ, false);
}
END_TEST

START_TEST(test_conservation_lock)
{
	run_churn(MAG_LOCK, false);
}
END_TEST

/* kmem_cache_reap_now flushing every CPU while 16 threads churn. */
START_TEST(test_flush_under_load_rseq)
{
	run_churn(MAG_RSEQ, true);
}
END_TEST

START_TEST(test_flush_under_load_lock)
{
	run_churn(MAG_LOCK, true);
}
END_TEST

/*
 * The flush race itself: 16 threads cycling objects through the fast
 * path while another thread flushes their CPUs back to back.  A fast path
 * that read a magazine's state before a flush and committed after it
 * would hand out (or cache) an object the flush also took.
 */
struct race {
	kmem_cache_t *cp;
	_Atomic bool stop;
	_Atomic long errors, flushes;
};

static void *
race_worker(void *arg)
{
	struct race *r = arg;
	uint64_t me = (uintptr_t)pthread_self() | 1;
	struct tobj *held[4];

	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		for (int i = 0; i < 4; i++) {
			held[i] = kmem_cache_alloc(r->cp, KM_SLEEP);
			if (!claim(held[i], me)) {
				atomic_fetch_add(&r->errors, 1);
				held[i] = NULL;
			}
		}
		for (int i = 3; i >= 0; i--) {
			if (held[i] == NULL)
				continue;
			if (!release(held[i], me))
				atomic_fetch_add(&r->errors, 1);
			kmem_cache_free(r->cp, held[i]);
		}
	}
	return (NULL);
}

static void
run_flush_race(enum mag_mode mode)
{
	struct race r = { 0 };
	pthread_t t[NTHREADS];
	double end = test_now() + test_seconds(3) / 2;

	r.cp = make_cache("race", mode, sizeof (struct tobj));
	for (int i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, race_worker, &r),
		    0);
	do {    /* at least one round, however slow the start was */
		for (unsigned int c = 0; c < cpu_count(); c++)
			mag_flush_cpu(r.cp, c);
		atomic_fetch_add(&r.flushes, 1);
	} while (test_now() < end);
	atomic_store(&r.stop, true);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_gt(atomic_load(&r.flushes), 0);
	ck_assert_int_eq(atomic_load(&r.errors), 0);
	check_quiescent(r.cp);
	kmem_cache_destroy(r.cp);
	ck_assert_int_eq(atomic_load(&n_ctor), atomic_load(&n_dtor));
}

START_TEST(test_flush_race_rseq)
{
	run_flush_race(MAG_RSEQ);
}
END_TEST

START_TEST(test_flush_race_lock)
{
	run_flush_race(MAG_LOCK);
}
END_TEST

/*
 * Remote frees: a pipeline of 4 stages.  Stage 0 allocates, stages 1-2
 * pass objects on, stage 3 frees them, each stage a thread of its own, so
 * objects are freed on other CPUs than the ones they were taken on.
 */
#define QLEN 256
struct queue {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct tobj *q[QLEN];
	int head, n;
	bool done;
};

struct pipe {
	kmem_cache_t *cp;
	struct queue qs[3];
	long per_producer;
	_Atomic long errors, freed;
};

static void
q_put(struct queue *q, struct tobj *o)
{
	pthread_mutex_lock(&q->lock);
	while (q->n == QLEN)
		pthread_cond_wait(&q->cv, &q->lock);
	q->q[(q->head + q->n++) % QLEN] = o;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->lock);
}

static struct tobj *
q_get(struct queue *q)
{
	struct tobj *o = NULL;

	pthread_mutex_lock(&q->lock);
	while (q->n == 0 && !q->done)
		pthread_cond_wait(&q->cv, &q->lock);
	if (q->n > 0) {
		o = q->q[q->head];
		q->head = (q->head + 1) % QLEN;
		q->n--;
		pthread_cond_broadcast(&q->cv);
	}
	pthread_mutex_unlock(&q->lock);
	return (o);
}

static void
q_close(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->done = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->lock);
}

struct stage { struct pipe *p; int idx; };

static void *
stage_thread(void *arg)
{
	struct stage *s = arg;
	struct pipe *p = s->p;

	if (s->idx == 0) {
		for (long i = 0; i < p->per_producer; i++) {
			struct tobj *o = kmem_cache_alloc(p->cp, KM_SLEEP);
			if (!claim(o, 1))
				atomic_fetch_add(&p->errors, 1);
			q_put(&p->qs[0], o);
		}
		q_close(&p->qs[0]);
		return (NULL);
	}
	for (;;) {
		struct tobj *o = q_get(&p->qs[s->idx - 1]);

		if (o == NULL)
			break;
		if (atomic_load(&o->owner) != 1 || o->magic != TOBJ_MAGIC)
			atomic_fetch_add(&p->errors, 1);
		if (s->idx < 3) {
			q_put(&p->qs[s->idx], o);
		} else {
			if (!release(o, 1))
				atomic_fetch_add(&p->errors, 1);
			kmem_cache_free(p->cp, o);
			atomic_fetch_add(&p->freed, 1);
		}
	}
	if (s->idx < 3)
		q_close(&p->qs[s->idx]);
	return (NULL);
}

START_TEST(test_remote_free_pipeline)
{
	for (int m = 0; m < 2; m++) {
		struct pipe p = { .per_producer = 200000 };
		struct stage st[4];
		pthread_t t[4];

		p.cp = make_cache(mode_names[modes[m]], modes[m],
		    sizeof (struct tobj));
		for (int i = 0; i < 3; i++) {
			pthread_mutex_init(&p.qs[i].lock, NULL);
			pthread_cond_init(&p.qs[i].cv, NULL);
		}
		for (int i = 0; i < 4; i++) {
			st[i] = (struct stage){ &p, i };
			ck_assert_int_eq(pthread_create(&t[i], NULL,
			    stage_thread, &st[i]), 0);
		}
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		ck_assert_int_eq(atomic_load(&p.errors), 0);
		ck_assert_int_eq(atomic_load(&p.freed), p.per_producer);
		ck_assert_uint_eq(stats_of(p.cp).alloc, (uint64_t)
		    p.per_producer);
		check_quiescent(p.cp);
		kmem_cache_destroy(p.cp);
	}
}
END_TEST

/*
 * 1,000,000 alloc/free cycles across 8 threads construct at most
 * CPUs x 2 x magazine size + one slab batch objects.
 */
struct cyc { kmem_cache_t *cp; long n; _Atomic long errors; };

static void *
cycle_thread(void *arg)
{
	struct cyc *c = arg;
	uint64_t me = (uintptr_t)pthread_self() | 1;

	for (long i = 0; i < c->n; i++) {
		struct tobj *o = kmem_cache_alloc(c->cp, KM_SLEEP);
		if (!claim(o, me) || !release(o, me))
			atomic_fetch_add(&c->errors, 1);
		kmem_cache_free(c->cp, o);
		if ((i & 1023) == 0)
			sched_yield();
	}
	return (NULL);
}

START_TEST(test_constructor_bound)
{
	for (int m = 0; m < 2; m++) {
		struct cyc c = { .n = 1000000 / 8 };
		pthread_t t[8];
		struct kmem_cache_stats st;
		uint64_t bound;

		atomic_store(&n_ctor, 0);
		atomic_store(&n_dtor, 0);
		c.cp = make_cache(mode_names[modes[m]], modes[m],
		    sizeof (struct tobj));
		for (int i = 0; i < 8; i++)
			pthread_create(&t[i], NULL, cycle_thread, &c);
		for (int i = 0; i < 8; i++)
			pthread_join(t[i], NULL);
		st = stats_of(c.cp);
		bound = (uint64_t)test_online_cpus() * 2 * st.mag_size +
		    st.mag_size / 2;
		ck_assert_int_eq(atomic_load(&c.errors), 0);
		ck_assert_uint_eq(st.alloc, 1000000);
		ck_assert_msg(st.ctor_calls <= bound, "%s: %llu constructions,"
		    " bound %llu", mode_names[modes[m]],
		    (unsigned long long)st.ctor_calls,
		    (unsigned long long)bound);
		kmem_cache_destroy(c.cp);
		ck_assert_int_eq(atomic_load(&n_ctor), atomic_load(&n_dtor));
	}
}
END_TEST

/* Flushing one CPU from a thread running on another CPU. */
START_TEST(test_flush_remote_cpu)
{
	if (test_online_cpus() < 2)
		return;
	for (int m = 0; m < 2; m++) {
		kmem_cache_t *cp = make_cache(mode_names[modes[m]], modes[m],
		    sizeof (struct tobj));
		int c0 = test_nth_cpu(0), c1 = test_nth_cpu(1);
		void *v[100];

		ck_assert_int_eq(test_pin(c0), 0);
		for (int i = 0; i < 100; i++)
			v[i] = kmem_cache_alloc(cp, KM_SLEEP);
		for (int i = 0; i < 100; i++)
			kmem_cache_free(cp, v[i]);
		ck_assert_uint_gt(stats_of(cp).obj_cached, 0);
		ck_assert_int_eq(test_pin(c1), 0);
		mag_flush_cpu(cp, (unsigned int)c0);
		ck_assert_uint_eq(stats_of(cp).obj_cached, 0);
		/* CPU c0 works normally afterwards. */
		ck_assert_int_eq(test_pin(c0), 0);
		for (int i = 0; i < 100; i++)
			ck_assert(claim(v[i] = kmem_cache_alloc(cp, KM_SLEEP),
			    1));
		for (int i = 0; i < 100; i++) {
			ck_assert(release(v[i], 1));
			kmem_cache_free(cp, v[i]);
		}
		check_quiescent(cp);
		kmem_cache_destroy(cp);
	}
}
END_TEST

/*
 * kmem_cache_stats while others allocate and free: a free it counts has
 * its allocation counted too (alloc - free, what the program holds, never
 * wraps).  The reader is stopped inside its per-CPU sums, on the lock of
 * the second CPU, after it read the first: meanwhile an object is taken
 * from the first CPU's magazine and freed into the second's (rseq fast
 * paths, no lock).
 */
struct stats_reader {
	kmem_cache_t *cp;
	struct kmem_cache_stats st;
	_Atomic pid_t tid;
};

static void *
stats_reader_thread(void *arg)
{
	struct stats_reader *r = arg;

	atomic_store(&r->tid, (pid_t)syscall(SYS_gettid));
	(void) kmem_cache_stats(r->cp, &r->st);
	return (NULL);
}

/* The state letter of thread tid of this process ('?' if unknown). */
static char
thread_state(pid_t tid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	(void) snprintf(path, sizeof (path), "/proc/self/task/%d/stat",
	    (int)tid);
	if ((fd = open(path, O_RDONLY)) < 0)
		return ('?');
	n = read(fd, buf, sizeof (buf) - 1);
	(void) close(fd);
	if (n <= 0)
		return ('?');
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return (p != NULL && p[1] == ' ' ? p[2] : '?');
}

START_TEST(test_stats_free_never_ahead)
{
	struct stats_reader r = { 0 };
	kmem_cache_t *cp;
	pthread_mutex_t *lock1;
	int c0 = test_nth_cpu(0), c1 = test_nth_cpu(1);
	pthread_t t;
	void *v[2];

	if (test_online_cpus() < 2)
		return;
	cp = make_cache("stats_race", MAG_RSEQ, sizeof (struct tobj));
	if (cp->mag.mode != MAG_RSEQ) {
		kmem_cache_destroy(cp);
		return;
	}
	/* Rounds in CPU c0's loaded magazine, for a pop without a lock. */
	ck_assert_int_eq(test_pin(c0), 0);
	for (int i = 0; i < 2; i++)
		v[i] = kmem_cache_alloc(cp, KM_SLEEP);
	for (int i = 0; i < 2; i++)
		kmem_cache_free(cp, v[i]);
	ck_assert_uint_eq(stats_of(cp).alloc, stats_of(cp).free);

	lock1 = cp->mag.cpu[c1].lock;
	pthread_mutex_lock(lock1);
	r.cp = cp;
	ck_assert_int_eq(pthread_create(&t, NULL, stats_reader_thread, &r),
	    0);
	for (int i = 0; i < 5000 && (atomic_load(&r.tid) == 0 ||
	    thread_state(atomic_load(&r.tid)) != 'S'); i++)
		usleep(1000);
	v[0] = kmem_cache_alloc(cp, KM_SLEEP);          /* on c0 */
	ck_assert_ptr_nonnull(v[0]);
	ck_assert_int_eq(test_pin(c1), 0);
	kmem_cache_free(cp, v[0]);                      /* on c1 */
	pthread_mutex_unlock(lock1);
	pthread_join(t, NULL);
	ck_assert_msg(r.st.free <= r.st.alloc, "kmem_cache_stats counted %llu "
	    "frees of %llu allocations", (unsigned long long)r.st.free,
	    (unsigned long long)r.st.alloc);
	ck_assert_uint_eq(stats_of(cp).alloc, stats_of(cp).free);
	ck_assert_int_eq(test_pin(c0), 0);
	kmem_cache_destroy(cp);
}
END_TEST

/* Frees of wrong pointers are reported and never reach a magazine. */
START_TEST(test_bad_free_not_cached)
{
	for (int m = 0; m < 2; m++) {
		kmem_cache_t *a = make_cache("a", modes[m], 64);
		kmem_cache_t *b = make_cache("b", modes[m], 64);
		char *pa = kmem_cache_alloc(a, KM_SLEEP);
		char *pb = kmem_cache_alloc(b, KM_SLEEP);
		char stack[64];

		kmem_cache_free(a, pa + 8);     /* inside an object */
		kmem_cache_free(a, pb);         /* another cache's */
		kmem_cache_free(a, stack);      /* nobody's */
		kmem_cache_free(a, (void *)((uintptr_t)pa | (1ULL << 50)));
		ck_assert_uint_eq(stats_of(a).free, 0);
		ck_assert_uint_eq(stats_of(a).obj_cached,
		    stats_of(a).obj_alloc - 1);
		kmem_cache_free(a, pa);
		kmem_cache_free(b, pb);
		kmem_cache_destroy(a);
		kmem_cache_destroy(b);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("magazine");
	TCase *basic = tcase_create("basic");
	TCase *thr = tcase_create("threads");

	tcase_set_timeout(basic, 60);
	tcase_add_test(basic, test_rseq_available);
	tcase_add_test(basic, test_magazine_sizes);
	tcase_add_test(basic, test_nomagazine);
	tcase_add_test(basic, test_stats_and_depot);
	tcase_add_test(basic, test_flushes_counted);
	tcase_add_test(basic, test_depot_rings_untouched);
	tcase_add_test(basic, test_flush_remote_cpu);
	tcase_add_test(basic, test_bad_free_not_cached);
	tcase_add_test(basic, test_stats_free_never_ahead);
	suite_add_tcase(s, basic);
	tcase_set_timeout(thr, 180);
	tcase_add_test(thr, test_conservation_rseq);
	tcase_add_test(thr, test_conservation_lock);
	tcase_add_test(thr, test_flush_under_load_rseq);
	tcase_add_test(thr, test_flush_under_load_lock);
	tcase_add_test(thr, test_flush_race_rseq);
	tcase_add_test(thr, test_flush_race_lock);
	tcase_add_test(thr, test_remote_free_pipeline);
	tcase_add_test(thr, test_constructor_bound);
	suite_add_tcase(s, thr);
	return (test_run_suite(s));
}
