/*
 * check_cache.c - the kmem cache API: small and large caches, alignment,
 * contents, constructor caching and failure, invalid arguments, destroy
 * with objects out, under a grow task a destructor started, or cancelled
 * while it waits for a reap, emergency objects under injected mmap
 * failure (and the slab an allocation grows then), reaping, statistics
 * (slab_max while a reap gives pages back), 16 threads on shared caches,
 * the page faults of a fork, a fork while a reap flushes magazines or an
 * allocation refills one, and one while another thread starts libkmem.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libkmem/kmem.h"
#include "cache.h"
#include "cpu.h"
#include "emergency.h"
#include "grow.h"
#include "reap.h"
#include "slab.h"
#include "vmem.h"
#include "testutil.h"

struct counts {
	_Atomic long ctor, dtor, reclaim;
	_Atomic long calls;     /* ctor calls, failed ones included */
	void *priv_seen;
	int fail_every;         /* ctor fails on every n-th call (0: never) */
};

static int
count_ctor(void *buf, void *priv, int kmflags)
{
	struct counts *c = priv;
	long n = atomic_fetch_add(&c->calls, 1) + 1;

	(void) buf; (void) kmflags;
	c->priv_seen = priv;
	if (c->fail_every != 0 && n % c->fail_every == 0)
		return (ENOMEM);        /* not constructed */
	atomic_fetch_add(&c->ctor, 1);
	return (0);
}

static void
count_dtor(void *buf, void *priv)
{
	struct counts *c = priv;

	(void) buf;
	atomic_fetch_add(&c->dtor, 1);
}

static struct kmem_cache_stats
stats_of(kmem_cache_t *cp)
{
	struct kmem_cache_stats st;

	ck_assert_int_eq(kmem_cache_stats(cp, &st), 0);
	return (st);
}

/* ------------------------------------------------------------ basics */

/*
 * Random sizes from 8 B to 16 MiB and alignments from 8 to a page, each
 * cache filled with three slabs' worth of objects: every object aligned,
 * every object's contents intact after all were written, ctor == dtor
 * after destroy.
 */
START_TEST(test_random_caches)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t seed = 12345;

	for (int round = 0; round < 24; round++) {
		struct counts c = { 0 };
		int shift = 3 + (int)(test_rand(&seed) % 22);   /* 8 B..16 MiB */
		size_t size = ((size_t)1 << shift) +
		    (test_rand(&seed) % ((size_t)1 << shift));
		size_t align = (size_t)8 << (test_rand(&seed) % 10);
		char name[32];
		kmem_cache_t *cp;
		struct kmem_cache_stats st;
		size_t n;
		char **objs;

		if (size > ((size_t)16 << 20))
			size = (size_t)16 << 20;
		if (align > page)
			align = page;
		snprintf(name, sizeof (name), "test_%d_%zu", round, size);
		cp = kmem_cache_create(name, size, align, count_ctor,
		    count_dtor, NULL, &c, NULL, 0);
		ck_assert_ptr_nonnull(cp);
		st = stats_of(cp);
		ck_assert_str_eq(st.name, name);
		ck_assert_uint_eq(st.obj_size, size);
		ck_assert_uint_ge(st.obj_align, align);
		n = 3 * st.objs_per_slab;
		while (n > 4 && n * size > ((size_t)192 << 20))
			n--;            /* keep the test's memory modest */
		objs = calloc(n, sizeof (*objs));
		for (size_t i = 0; i < n; i++) {
			objs[i] = kmem_cache_alloc(cp, KM_SLEEP);
			ck_assert_ptr_nonnull(objs[i]);
			ck_assert_uint_eq((uintptr_t)objs[i] % align, 0);
			memset(objs[i], (int)(i & 0xff), size);
		}
		ck_assert_ptr_eq(c.priv_seen, &c);
		for (size_t i = 0; i < n; i++) {
			ck_assert_int_eq(objs[i][0], (char)(i & 0xff));
			ck_assert_int_eq(objs[i][size / 2], (char)(i & 0xff));
			ck_assert_int_eq(objs[i][size - 1], (char)(i & 0xff));
		}
		st = stats_of(cp);
		ck_assert_uint_eq(st.alloc, n);
		/*
		 * Emergency objects only where a wait for growth timed out
		 * (a grow task not scheduled within 100 ms: a loaded
		 * machine, seen under ASan), which obj_deadlock counts; the
		 * others are in slabs.
		 */
		ck_assert_msg(st.obj_emergency == 0 || st.obj_deadlock != 0,
		    "%llu emergency objects, no wait timed out",
		    (unsigned long long)st.obj_emergency);
		ck_assert_uint_le(st.obj_emergency, n);
		ck_assert_uint_ge(st.slab_total, (n - st.obj_emergency +
		    st.objs_per_slab - 1) / st.objs_per_slab);
		ck_assert_uint_ge(st.obj_alloc, n);
		for (size_t i = 0; i < n; i++)
			kmem_cache_free(cp, objs[i]);
		st = stats_of(cp);
		ck_assert_uint_eq(st.alloc - st.free, 0);
		kmem_cache_destroy(cp);
		ck_assert_int_eq(atomic_load(&c.ctor), atomic_load(&c.dtor));
		ck_assert_int_ge(atomic_load(&c.ctor), (long)n);  /* batches */
		free(objs);
	}
}
END_TEST

/*
 * Solaris semantics: an object that cycles stays constructed.  The first
 * allocation constructs one batch (half a magazine); a million cycles add
 * nothing to it.
 */
START_TEST(test_constructor_caching)
{
	struct counts c = { 0 };
	kmem_cache_t *cp = kmem_cache_create("cycle", 200, 0, count_ctor,
	    count_dtor, NULL, &c, NULL, 0);
	struct kmem_cache_stats st;
	long first;

	ck_assert_ptr_nonnull(cp);
	ck_assert_int_eq(test_pin(test_nth_cpu(0)), 0);
	kmem_cache_free(cp, kmem_cache_alloc(cp, KM_SLEEP));
	first = atomic_load(&c.ctor);
	st = stats_of(cp);
	ck_assert_int_ge(first, 1);
	ck_assert_int_le(first, (long)(st.mag_size > 0 ? st.mag_size / 2 : 1));
	/*
	 * No ck_assert in the loop: a passing one costs a message to the
	 * parent, and a million of them took the test past its two minutes
	 * under TSan (KMEM_PERCPU=lock, a loaded machine).
	 */
	for (int i = 0; i < 1000000; i++) {
		void *p = kmem_cache_alloc(cp, KM_SLEEP);

		if (p == NULL)
			ck_abort_msg("allocation %d of a million failed", i);
		kmem_cache_free(cp, p);
	}
	ck_assert_int_eq(atomic_load(&c.ctor), first);
	ck_assert_int_eq(atomic_load(&c.dtor), 0);
	st = stats_of(cp);
	ck_assert_uint_eq(st.alloc, 1000001);
	ck_assert_uint_eq(st.free, 1000001);
	ck_assert_uint_eq(st.ctor_calls, (uint64_t)atomic_load(&c.calls));
	kmem_cache_destroy(cp);
	ck_assert_int_eq(atomic_load(&c.ctor), atomic_load(&c.dtor));
}
END_TEST

/*
 * An allocation whose object's constructor fails returns NULL and counts
 * in alloc_fail; objects constructed earlier are still served; nothing
 * leaks.  Also a constructor that fails now and then.
 */
static _Atomic int ctor_failing;

static int
switch_ctor(void *buf, void *priv, int kmflags)
{
	if (atomic_load(&ctor_failing))
		return (ENOMEM);
	return (count_ctor(buf, priv, kmflags));
}

/*
 * A constructor that allocates from its own cache, directly or through
 * another cache's constructor, would construct without end: such a
 * request fails (NULL, EDEADLK, one report per batch) instead of
 * overflowing the stack, and the outer allocation is served.
 */
static kmem_cache_t *rec_a, *rec_b;
static _Atomic int rec_nulls, rec_errno;

/* priv: the address of the cache to allocate from. */
static int
rec_ctor(void *buf, void *priv, int kmflags)
{
	kmem_cache_t *from = *(kmem_cache_t **)priv;
	void *o;

	(void) buf;
	errno = 0;
	if ((o = kmem_cache_alloc(from, kmflags)) == NULL) {
		atomic_fetch_add(&rec_nulls, 1);
		atomic_store(&rec_errno, errno);
	}
	kmem_cache_free(from, o);       /* NULL: ignored */
	return (0);
}

struct rec_alloc {
	kmem_cache_t *cp;
	void *obj;
};

static void
rec_alloc_one(void *arg)
{
	struct rec_alloc *r = arg;

	r->obj = kmem_cache_alloc(r->cp, KM_SLEEP);
}

/* Allocate from outer: served, and one report naming 'name'. */
static void
rec_check(kmem_cache_t *outer, const char *name)
{
	struct rec_alloc r = { outer, NULL };
	char out[1024];

	atomic_store(&rec_nulls, 0);
	atomic_store(&rec_errno, 0);
	test_capture_stderr(rec_alloc_one, &r, out, sizeof (out));
	ck_assert_ptr_nonnull(r.obj);
	ck_assert_int_gt(atomic_load(&rec_nulls), 0);
	ck_assert_int_eq(atomic_load(&rec_errno), EDEADLK);
	ck_assert_msg(strstr(out, name) != NULL &&
	    strstr(out, "own constructor") != NULL &&
	    strchr(out, '\n') == out + strlen(out) - 1,
	    "not one report for %s: \"%s\"", name, out);
	kmem_cache_free(outer, r.obj);
}

START_TEST(test_constructor_recursion)
{
	/* Direct: recself's constructor allocates from recself. */
	rec_a = kmem_cache_create("recself", 64, 0, rec_ctor, NULL, NULL,
	    &rec_a, NULL, 0);
	ck_assert_ptr_nonnull(rec_a);
	rec_check(rec_a, "recself");
	kmem_cache_destroy(rec_a);

	/* Through another cache: reca's allocates from recb's and back. */
	rec_a = kmem_cache_create("reca", 64, 0, rec_ctor, NULL, NULL,
	    &rec_b, NULL, 0);
	rec_b = kmem_cache_create("recb", 64, 0, rec_ctor, NULL, NULL,
	    &rec_a, NULL, 0);
	ck_assert_ptr_nonnull(rec_a);
	ck_assert_ptr_nonnull(rec_b);
	rec_check(rec_a, "reca");
	kmem_cache_destroy(rec_a);
	kmem_cache_destroy(rec_b);
}
END_TEST

START_TEST(test_constructor_failure)
{
	struct counts c = { 0 };
	kmem_cache_t *cp = kmem_cache_create("ctorfail", 64, 0, switch_ctor,
	    count_dtor, NULL, &c, NULL, 0);
	void *held[5], *p;
	struct kmem_cache_stats st;

	ck_assert_ptr_nonnull(cp);
	for (int i = 0; i < 5; i++)
		ck_assert_ptr_nonnull(held[i] = kmem_cache_alloc(cp, KM_SLEEP));
	atomic_store(&ctor_failing, 1);
	/* Constructed objects in the magazines are still served ... */
	p = kmem_cache_alloc(cp, KM_SLEEP);
	ck_assert_ptr_nonnull(p);
	kmem_cache_free(cp, p);
	/* ... but once none is cached, allocations fail, even KM_SLEEP. */
	kmem_cache_reap_now(cp);
	for (int i = 0; i < 3; i++) {
		errno = 0;
		ck_assert_ptr_null(kmem_cache_alloc(cp, KM_SLEEP));
		ck_assert_int_eq(errno, ENOMEM);
	}
	st = stats_of(cp);
	ck_assert_uint_eq(st.alloc_fail, 3);
	ck_assert_uint_eq(st.alloc - st.free, 5);
	ck_assert_uint_eq(st.obj_alloc, 5);     /* the failed ones went back */
	atomic_store(&ctor_failing, 0);
	ck_assert_ptr_nonnull(p = kmem_cache_alloc(cp, KM_SLEEP));
	kmem_cache_free(cp, p);
	for (int i = 0; i < 5; i++)
		kmem_cache_free(cp, held[i]);
	kmem_cache_destroy(cp);
	ck_assert_int_eq(atomic_load(&c.ctor), atomic_load(&c.dtor));

	/* Every third constructor call fails: no leak, ctor == dtor. */
	struct counts c3 = { .fail_every = 3 };
	cp = kmem_cache_create("ctorfail3", 64, 0, count_ctor, count_dtor,
	    NULL, &c3, NULL, 0);
	void *objs[300];
	int got = 0;
	for (int i = 0; i < 300; i++)
		if ((objs[got] = kmem_cache_alloc(cp, KM_SLEEP)) != NULL)
			got++;
	st = stats_of(cp);
	ck_assert_uint_eq(st.alloc, (uint64_t)got);
	ck_assert_uint_eq(st.alloc_fail, (uint64_t)(300 - got));
	ck_assert_int_ge(atomic_load(&c3.calls), atomic_load(&c3.ctor));
	for (int i = 0; i < got; i++)
		kmem_cache_free(cp, objs[i]);
	kmem_cache_destroy(cp);
	ck_assert_int_eq(atomic_load(&c3.ctor), atomic_load(&c3.dtor));
}
END_TEST

START_TEST(test_invalid_arguments)
{
	char longname[KMEM_CACHE_NAMELEN + 1];
	struct kmem_cache_stats st;
	int x;

	memset(longname, 'x', sizeof (longname) - 1);
	longname[sizeof (longname) - 1] = '\0';
#define BAD(expr) do {                                                  \
	errno = 0;                                                      \
	ck_assert_ptr_null(expr);                                       \
	ck_assert_int_eq(errno, EINVAL);                                \
} while (0)
	BAD(kmem_cache_create(NULL, 64, 0, NULL, NULL, NULL, NULL, NULL, 0));
	BAD(kmem_cache_create("", 64, 0, NULL, NULL, NULL, NULL, NULL, 0));
	BAD(kmem_cache_create(longname, 64, 0, NULL, NULL, NULL, NULL, NULL,
	    0));
	BAD(kmem_cache_create("z", 0, 0, NULL, NULL, NULL, NULL, NULL, 0));
	BAD(kmem_cache_create("big", ((size_t)32 << 20) + 1, 0, NULL, NULL,
	    NULL, NULL, NULL, 0));
	BAD(kmem_cache_create("big", SIZE_MAX, 0, NULL, NULL, NULL, NULL,
	    NULL, 0));
	BAD(kmem_cache_create("a3", 64, 3, NULL, NULL, NULL, NULL, NULL, 0));
	BAD(kmem_cache_create("a2p", 64, 2 * (size_t)sysconf(_SC_PAGESIZE),
	    NULL, NULL, NULL, NULL, NULL, 0));
	BAD(kmem_cache_create("fl", 64, 0, NULL, NULL, NULL, NULL, NULL,
	    0x40000000));
	BAD(kmem_cache_create("vm", 64, 0, NULL, NULL, NULL, NULL,
	    (vmem_t *)&x, 0));
	BAD(kmem_cache_alloc(NULL, KM_SLEEP));
	longname[KMEM_CACHE_NAMELEN - 1] = '\0';        /* exactly fits */
	kmem_cache_t *cp = kmem_cache_create(longname, 64, 0, NULL, NULL,
	    NULL, NULL, NULL, KMC_NODEBUG | KMC_NOTOUCH);
	ck_assert_ptr_nonnull(cp);
	BAD(kmem_cache_alloc(cp, 0x4000));              /* unknown kmflags */
	BAD(kmem_cache_alloc(cp, KM_ZERO));     /* kmem_alloc family only */
	errno = 0;
	ck_assert_int_eq(kmem_cache_stats(cp, NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(kmem_cache_stats(NULL, &st), -1);
	kmem_cache_free(cp, NULL);                      /* no-op */
	kmem_cache_free(NULL, &x);                      /* reported */
	kmem_cache_free(cp, &x);                        /* foreign: reported */
	kmem_cache_reap_now(NULL);
	kmem_cache_destroy(NULL);
	ck_assert_uint_eq(stats_of(cp).free, 0);
	kmem_cache_destroy(cp);
#undef BAD
}
END_TEST

/*
 * A pointer into the middle of an object, another cache's object, or a
 * large kmem_alloc block (the arena's other kind of owner, which free's
 * fast path tells apart by its descriptor's cache field alone).
 */
START_TEST(test_wrong_pointer_rejected)
{
	kmem_cache_t *a = kmem_cache_create("a", 64, 0, NULL, NULL, NULL,
	    NULL, NULL, 0);
	kmem_cache_t *b = kmem_cache_create("b", 64, 0, NULL, NULL, NULL,
	    NULL, NULL, 0);
	char *pa = kmem_cache_alloc(a, KM_SLEEP);
	char *pb = kmem_cache_alloc(b, KM_SLEEP);
	size_t big_len = (size_t)8 << 20;
	char *big = kmem_alloc(big_len, KM_SLEEP);

	ck_assert_ptr_nonnull(big);
	kmem_cache_free(a, pa + 8);
	kmem_cache_free(a, pb);
	kmem_cache_free(NULL, pa);      /* a real object, no cache: reported */
	kmem_cache_free(a, big);
	kmem_cache_free(NULL, big);
	kmem_cache_free(NULL, big + 4096);
	ck_assert_uint_eq(stats_of(a).free, 0);
	ck_assert_uint_eq(stats_of(b).free, 0);
	kmem_free(big, big_len);        /* still the caller's */
	kmem_cache_free(a, pa);
	kmem_cache_free(b, pb);
	kmem_cache_destroy(a);
	kmem_cache_destroy(b);
}
END_TEST

struct bad_free {
	kmem_cache_t *cp;
	void *buf;
};

static void
bad_free_one(void *arg)
{
	struct bad_free *b = arg;

	kmem_cache_free(b->cp, b->buf);
}

/*
 * An object of the cache's slab that was never handed out (past the part
 * carved so far: one past the last object allocated, say) is reported
 * and left alone.  It was taken: without magazines the slab of a live
 * object then counted as empty, and a reap gave its memory back under
 * it; with magazines it was handed out twice, once from the magazine and
 * once carved.
 */
START_TEST(test_free_never_allocated)
{
	kmem_cache_t *nm = kmem_cache_create("never_nomag", 64, 0, NULL, NULL,
	    NULL, NULL, NULL, KMC_NOMAGAZINE | KMC_NODEBUG);
	kmem_cache_t *mg = kmem_cache_create("never_mag", 64, 0, NULL, NULL,
	    NULL, NULL, NULL, KMC_KVMEM | KMC_NODEBUG);
	struct bad_free b;
	struct kmem_slab *s;
	char out[1024], *p, *q, *never, **held;
	uint32_t idx;
	size_t n;
	int twice = 0;

	p = kmem_cache_alloc(nm, KM_SLEEP);
	s = vmem_owner(p);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_lt(s->fresh, nm->sl.objs_per_slab);
	never = s->base + (size_t)s->fresh * nm->sl.chunk;
	strcpy(p, "live");
	b = (struct bad_free){ nm, never };
	test_capture_stderr(bad_free_one, &b, out, sizeof (out));
	ck_assert_msg(strstr(out, "is not allocated") != NULL, "%s", out);
	ck_assert_uint_eq(stats_of(nm).free, 0);
	ck_assert_uint_eq(stats_of(nm).obj_alloc, 1);
	kmem_cache_reap_now(nm);
	ck_assert_str_eq(p, "live");
	q = kmem_cache_alloc(nm, KM_SLEEP);
	ck_assert_ptr_ne(q, p);
	kmem_cache_free(nm, q);
	kmem_cache_free(nm, p);
	kmem_cache_destroy(nm);

	/* A 2 MiB slab of 64-byte objects: a refill carves a part of it. */
	p = kmem_cache_alloc(mg, KM_SLEEP);
	s = vmem_owner(p);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_lt(s->fresh, mg->sl.objs_per_slab);
	idx = s->fresh;
	never = s->base + (size_t)idx * mg->sl.chunk;
	b = (struct bad_free){ mg, never };
	test_capture_stderr(bad_free_one, &b, out, sizeof (out));
	ck_assert_msg(strstr(out, "is not allocated") != NULL, "%s", out);
	ck_assert_uint_eq(stats_of(mg).free, 0);
	/* Allocate until the slab carves it: handed out once at most. */
	n = 0;
	held = calloc(4 * (size_t)idx + 1024, sizeof (*held));
	while (n < 4 * (size_t)idx + 1024 && s->fresh <= idx) {
		held[n] = kmem_cache_alloc(mg, KM_SLEEP);
		twice += held[n++] == never;
	}
	ck_assert_uint_gt(s->fresh, idx);
	ck_assert_int_le(twice, 1);
	if (twice == 0) {
		while (n > 0)
			kmem_cache_free(mg, held[--n]);
		kmem_cache_free(mg, p);
		kmem_cache_destroy(mg);
	}
	free(held);
}
END_TEST

/*
 * free's pointer check (slab_obj_ok, one multiply, rotate and compare)
 * against its definition, at every byte offset around slabs of many
 * object sizes, and at far addresses on either side.
 */
START_TEST(test_slab_obj_ok_exact)
{
	static const size_t chunks[] = { 8, 16, 24, 48, 64, 80, 96, 112, 208,
	    1000, 1024, 1360, 3072, 4096, 5000, 12288, 65536, 131072 };
	kmem_cache_t *init = kmem_cache_create("init", 8, 0, NULL, NULL, NULL,
	    NULL, NULL, 0);         /* libkmem's tunables are set up */
	uintptr_t base = (uintptr_t)1 << 40;

	kmem_cache_destroy(init);
	for (size_t i = 0; i < sizeof (chunks) / sizeof (chunks[0]); i++) {
		struct slab_layer sl;
		struct slab_node node;
		struct kmem_slab s = { .base = (char *)base };
		size_t c = chunks[i], span, step;
		uint64_t bad = 0;

		ck_assert_int_eq(slab_layer_init(&sl, c, 8, 0, &node, 1), 0);
		span = sl.slab_size + 2 * c;
		step = c > 4096 ? 8 : 1;
		for (int64_t off = -(int64_t)(2 * c); off < (int64_t)span;
		    off += (int64_t)step) {
			bool want = off >= 0 && (uint64_t)off % c == 0 &&
			    (uint64_t)off / c < sl.objs_per_slab;

			void *p = (void *)(base + (uintptr_t)off);

			if (slab_obj_ok(&sl, &s, p) != want)
				bad++;
		}
		for (uint64_t q = 1; q < 4096; q++) {
			uintptr_t far = (uintptr_t)q * c << 20;

			bad += slab_obj_ok(&sl, &s, (void *)(base + far));
			bad += slab_obj_ok(&sl, &s, (void *)(base - far));
		}
		ck_assert_msg(bad == 0, "chunk %zu: %" PRIu64 " wrong answers",
		    c, bad);
	}
}
END_TEST

START_TEST(test_destroy_with_objects_out)
{
	struct counts c = { 0 };
	kmem_cache_t *cp = kmem_cache_create("leaky", 128, 0, count_ctor,
	    count_dtor, NULL, &c, NULL, 0);
	char *keep = kmem_cache_alloc(cp, KM_SLEEP);
	void *back = kmem_cache_alloc(cp, KM_SLEEP);

	kmem_cache_free(cp, back);
	kmem_cache_destroy(cp);         /* reports; the process goes on */
	memset(keep, 0x77, 128);        /* the memory is still mapped */
	/* Every cached object was destructed; only 'keep' is constructed. */
	ck_assert_int_eq(atomic_load(&c.dtor), atomic_load(&c.ctor) - 1);
	kmem_cache_free(cp, keep);      /* still a working cache */
	kmem_cache_destroy(cp);         /* now it goes */
	ck_assert_int_eq(atomic_load(&c.ctor), atomic_load(&c.dtor));
}
END_TEST

/*
 * An object freed twice (no debug cache: cached twice, see
 * kmem_cache_free(3)) and nothing out: destroy frees the cache, and says
 * what it saw.  Frees outnumbered allocations, so destroy counted objects
 * "still allocated" (0 of them) and kept the cache for ever: every later
 * destroy said the same.
 */
static void
count_named(struct kmem_cache *cp, void *arg)
{
	if (strcmp(cp->name, "twice") == 0)
		(*(int *)arg)++;
}

static void
destroy_one(void *cp)
{
	kmem_cache_destroy(cp);
}

START_TEST(test_destroy_after_double_free)
{
	kmem_cache_t *cp = kmem_cache_create("twice", 64, 0, NULL, NULL,
	    NULL, NULL, NULL, 0);
	void *p = kmem_cache_alloc(cp, KM_SLEEP);
	char out[512];
	int n = 0;

	/*
	 * KMEM_DEBUG refuses the second free; --enable-debug's assertion in
	 * slab_free stops the process at it.
	 */
#ifdef KMEM_INTERNAL_DEBUG
	bool skip = true;
#else
	bool skip = DEBUG_CACHE(cp);
#endif
	if (skip) {
		kmem_cache_free(cp, p);
		kmem_cache_destroy(cp);
		return;
	}
	kmem_cache_free(cp, p);
	kmem_cache_free(cp, p);
	test_capture_stderr(destroy_one, cp, out, sizeof (out));
	cache_walk(count_named, &n);
	ck_assert_msg(n == 0, "cache kept; destroy said: %s", out);
	ck_assert_msg(strstr(out, "still allocated") == NULL &&
	    strstr(out, "freed twice") != NULL, "destroy said: %s", out);
}
END_TEST

/*
 * A destructor that frees objects its object owned into the same cache
 * (a chain of objects) during destroy: those frees land in magazines
 * that destroy has already flushed.  Nothing is out, so the cache must
 * go, with every object destructed, not be kept as leaking.
 */
static kmem_cache_t *chain_cp;
static _Atomic long chain_ctor, chain_dtor;

static int
chain_ctor_fn(void *buf, void *priv, int kmflags)
{
	(void) priv; (void) kmflags;
	*(void **)buf = NULL;
	atomic_fetch_add(&chain_ctor, 1);
	return (0);
}

static void
chain_dtor_fn(void *buf, void *priv)
{
	void *child = *(void **)buf;

	(void) priv;
	atomic_fetch_add(&chain_dtor, 1);
	if (child != NULL) {
		*(void **)buf = NULL;
		kmem_cache_free(chain_cp, child);
	}
}

START_TEST(test_destroy_dtor_frees_into_cache)
{
	void *objs[4];
	char out[512];

	chain_cp = kmem_cache_create("dtorchain", 64, 0, chain_ctor_fn,
	    chain_dtor_fn, NULL, NULL, NULL, 0);
	ck_assert_ptr_nonnull(chain_cp);
	for (int i = 0; i < 4; i++)
		ck_assert_ptr_nonnull(objs[i] = kmem_cache_alloc(chain_cp,
		    KM_SLEEP));
	for (int i = 0; i < 3; i++)
		*(void **)objs[i] = objs[i + 1];        /* 0 owns 1 owns 2 ... */
	kmem_cache_free(chain_cp, objs[0]);
	test_capture_stderr((void (*)(void *))kmem_cache_destroy, chain_cp,
	    out, sizeof (out));
	ck_assert_msg(out[0] == '\0', "destroy reported: \"%s\"", out);
	ck_assert_int_eq(atomic_load(&chain_ctor), atomic_load(&chain_dtor));
}
END_TEST

/*
 * A destructor that allocates from its own cache during destroy, when
 * the slab layer has no free object: the allocation starts a grow task
 * (held back here until destroy could have freed the cache).  Destroy
 * must wait for that task and give back its slab, not free the cache
 * under it (the task crashed on the freed cache).
 */
static kmem_cache_t *growdtor_cp;
static _Atomic int growdtor_armed;

static void
growdtor_dtor(void *buf, void *priv)
{
	void *p;

	(void) buf; (void) priv;
	if (!atomic_exchange(&growdtor_armed, 0))
		return;
	p = kmem_cache_alloc(growdtor_cp, KM_SLEEP);
	if (p != NULL)
		kmem_cache_free(growdtor_cp, p);
}

static void *
growdtor_release(void *arg)
{
	(void) arg;
	usleep(300000);
	grow_stall(false);
	return (NULL);
}

START_TEST(test_destroy_waits_for_dtor_growth)
{
	struct kmem_cache_stats st;
	void *objs[64];
	char out[512];
	unsigned int n;
	pthread_t t;

	ck_assert_int_eq(kmem_tunable_set("kmem_cache_grow_ahead", 0), 0);
	growdtor_cp = kmem_cache_create("growdtor", 8192, 0, NULL,
	    growdtor_dtor, NULL, NULL, NULL, 0);
	ck_assert_ptr_nonnull(growdtor_cp);
	st = stats_of(growdtor_cp);
	if (st.mag_size == 0) {         /* a debug cache: no magazines */
		kmem_cache_destroy(growdtor_cp);
		return;
	}
	/*
	 * Its only slab's objects all cached: none free in the slab.  The
	 * slab is added inline: a grow task that took over 100 ms (a loaded
	 * machine) would have made these emergency objects, which are not
	 * cached, and destroy would have called no destructor at all.
	 */
	n = KMEM_MIN(st.objs_per_slab, (uint32_t)st.mag_size);
	ck_assert_uint_le(n, 64);
	for (unsigned int i = 0; i < n; i++)
		objs[i] = kmem_cache_alloc(growdtor_cp, KM_SLEEP);
	st = stats_of(growdtor_cp);
	ck_assert_uint_eq(st.obj_emergency, 0);
	for (unsigned int i = 0; i < n; i++)
		kmem_cache_free(growdtor_cp, objs[i]);
	grow_quiesce(growdtor_cp);
	grow_inline_limit(0);           /* the destructor's: the grow task */
	grow_stall(true);
	atomic_store(&growdtor_armed, 1);
	ck_assert_int_eq(pthread_create(&t, NULL, growdtor_release, NULL), 0);
	test_capture_stderr((void (*)(void *))kmem_cache_destroy, growdtor_cp,
	    out, sizeof (out));
	pthread_join(t, NULL);
	ck_assert_int_eq(atomic_load(&growdtor_armed), 0);
	/* Gone, its task's slab with it: not kept as leaking. */
	ck_assert_msg(out[0] == '\0', "destroy reported: \"%s\"", out);
	usleep(100000);                 /* a task left behind would run now */
	grow_inline_limit((uint64_t)1 << 20);
	ck_assert_int_eq(kmem_tunable_set("kmem_cache_grow_ahead", 1), 0);
}
END_TEST

/*
 * kmem_cache_destroy waits for a reap (a walker) inside the cache to
 * leave; a thread cancelled in that wait must not die holding the cache
 * registry's lock: the reap, every later create and destroy, and the
 * exit would hang on it.  The cancel takes effect after destroy.
 */
static sem_t cancel_in, cancel_go;
static kmem_cache_t *cancel_cp;

static void
cancel_reclaim(void *priv)
{
	(void) priv;
	sem_post(&cancel_in);
	while (sem_wait(&cancel_go) != 0)
		;
}

static void *
cancel_reaper(void *arg)
{
	(void) arg;
	kmem_cache_reap_now(cancel_cp);
	return (NULL);
}

static void *
cancel_destroyer(void *arg)
{
	(void) arg;
	kmem_cache_destroy(cancel_cp);
	return (NULL);
}

START_TEST(test_destroy_cancelled_while_waiting)
{
	struct timespec ts;
	pthread_t reaper, destroyer;
	kmem_cache_t *cp;

	ck_assert_int_eq(sem_init(&cancel_in, 0, 0), 0);
	ck_assert_int_eq(sem_init(&cancel_go, 0, 0), 0);
	cancel_cp = kmem_cache_create("destroycancel", 64, 0, NULL, NULL,
	    cancel_reclaim, NULL, NULL, 0);
	ck_assert_ptr_nonnull(cancel_cp);
	ck_assert_int_eq(pthread_create(&reaper, NULL, cancel_reaper, NULL),
	    0);
	while (sem_wait(&cancel_in) != 0)
		;
	ck_assert_int_eq(pthread_create(&destroyer, NULL, cancel_destroyer,
	    NULL), 0);
	usleep(100000);                 /* in destroy's wait for the reap */
	ck_assert_int_eq(pthread_cancel(destroyer), 0);
	usleep(100000);
	sem_post(&cancel_go);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	ck_assert_msg(pthread_timedjoin_np(reaper, NULL, &ts) == 0,
	    "kmem_cache_reap_now hangs after a cancelled destroy");
	ck_assert_int_eq(pthread_join(destroyer, NULL), 0);
	cp = kmem_cache_create("aftercancel", 64, 0, NULL, NULL, NULL, NULL,
	    NULL, 0);
	ck_assert_ptr_nonnull(cp);
	kmem_cache_destroy(cp);
	sem_destroy(&cancel_in);
	sem_destroy(&cancel_go);
}
END_TEST

/* ------------------------------------------------------------ memory */

START_TEST(test_emergency_under_mmap_failure)
{
	struct counts c = { 0 };
	kmem_cache_t *cp = kmem_cache_create("emerg", 512, 0, count_ctor,
	    count_dtor, NULL, &c, NULL, 0);
	struct kmem_cache_stats st;
	void *e1, *e2, *p;

	vmem_inject_failures(-1);       /* no slab can be had */
	e1 = kmem_cache_alloc(cp, KM_NOSLEEP);
	e2 = kmem_cache_alloc(cp, KM_SLEEP);
	ck_assert_ptr_nonnull(e1);
	ck_assert_ptr_nonnull(e2);
	ck_assert(!vmem_contains(e1));
	st = stats_of(cp);
	ck_assert_uint_eq(st.obj_emergency, 2);
	ck_assert_uint_eq(st.obj_emergency_max, 2);
	ck_assert_uint_eq(st.slab_total, 0);
	ck_assert_uint_eq(st.obj_total, 2);
	memset(e1, 1, 512);

	/* Emergency mappings fail too: KM_NOSLEEP gets NULL, ENOMEM. */
	emergency_inject_failures(-1);
	errno = 0;
	p = kmem_cache_alloc(cp, KM_NOSLEEP);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_eq(stats_of(cp).alloc_fail, 1);
	emergency_inject_failures(0);
	vmem_inject_failures(0);

	/* Freed emergency objects are destructed and unmapped at once. */
	kmem_cache_free(cp, e1);
	kmem_cache_free(cp, e2);
	st = stats_of(cp);
	ck_assert_uint_eq(st.obj_emergency, 0);
	ck_assert_uint_eq(st.obj_emergency_max, 2);
	ck_assert_uint_eq(st.obj_total, 0);
	ck_assert_int_eq(atomic_load(&c.dtor), 2);

	/*
	 * With memory back, objects come from slabs again (KM_SLEEP waits
	 * for the background growth; KM_NOSLEEP would not).
	 */
	p = kmem_cache_alloc(cp, KM_SLEEP);
	ck_assert(vmem_contains(p));
	kmem_cache_free(cp, p);
	kmem_cache_destroy(cp);
	ck_assert_int_eq(atomic_load(&c.ctor), atomic_load(&c.dtor));
}
END_TEST

/*
 * slab_grows counts every slab growth adds, also the one an allocation
 * adds itself once it has reaped every cache because neither a slab nor
 * an emergency object could be mapped.
 */
START_TEST(test_slab_grows_after_pressure)
{
	kmem_cache_t *cp = kmem_cache_create("grows", 64, 0, NULL, NULL,
	    NULL, NULL, NULL, KMC_NOMAGAZINE);
	struct kmem_cache_stats st;
	void *p;

	ck_assert_ptr_nonnull(cp);
	vmem_inject_failures(2);        /* the inline growth and its retry */
	emergency_inject_failures(1);
	p = kmem_cache_alloc(cp, KM_SLEEP);
	vmem_inject_failures(0);
	emergency_inject_failures(0);
	ck_assert_ptr_nonnull(p);
	ck_assert(vmem_contains(p));
	st = stats_of(cp);
	ck_assert_uint_eq(st.slab_total, 1);
	ck_assert_uint_eq(st.slab_grows, 1);
	kmem_cache_free(cp, p);
	kmem_cache_destroy(cp);
}
END_TEST

/*
 * A KM_NOSLEEP allocation that fails for want of memory reaps every cache
 * once: a reclaim callback is called once per failure.  It was called
 * twice (the inline growth reaped, and then the allocation again before
 * its last try), doubling the time a slow callback costs each failure.
 */
static _Atomic int nosleep_reclaims;

static void
nosleep_reclaim(void *priv)
{
	(void) priv;
	atomic_fetch_add(&nosleep_reclaims, 1);
}

START_TEST(test_nosleep_failure_reaps_once)
{
	kmem_cache_t *cp = kmem_cache_create("reap_once", 64, 0, NULL, NULL,
	    nosleep_reclaim, NULL, NULL, 0);
	void *p;
	int e;

	ck_assert_ptr_nonnull(cp);
	vmem_inject_failures(-1);
	emergency_inject_failures(-1);
	errno = 0;
	p = kmem_cache_alloc(cp, KM_NOSLEEP);
	e = errno;
	emergency_inject_failures(0);
	vmem_inject_failures(0);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(e, ENOMEM);
	ck_assert_int_eq(atomic_load(&nosleep_reclaims), 1);
	kmem_cache_destroy(cp);
}
END_TEST

/*
 * The same for a cache past inline growth, whose slab comes from a grow
 * task: the allocation reaped, and then the task it started (here held
 * back until the allocation has failed) reaped again.
 */
START_TEST(test_nosleep_failure_reaps_once_task)
{
	enum { N = 512 };               /* 2 MiB: past inline growth */
	kmem_cache_t *cp = kmem_cache_create("reap_once_big", 4096, 0, NULL,
	    NULL, nosleep_reclaim, NULL, NULL, KMC_NOMAGAZINE);
	static void *v[N + 64];
	int n = 0, e;

	ck_assert_ptr_nonnull(cp);
	ck_assert_int_eq(kmem_tunable_set("kmem_cache_grow_ahead", 0), 0);
	while (n < N)
		v[n++] = kmem_cache_alloc(cp, KM_SLEEP);
	vmem_inject_failures(-1);
	emergency_inject_failures(-1);
	atomic_store(&nosleep_reclaims, 0);
	grow_stall(true);               /* the allocation reaps first */
	while (n < N + 64 && (v[n] = kmem_cache_alloc(cp, KM_NOSLEEP)) !=
	    NULL)
		n++;
	e = errno;
	grow_stall(false);
	grow_quiesce(cp);               /* the task it started is done */
	emergency_inject_failures(0);
	vmem_inject_failures(0);
	ck_assert_int_lt(n, N + 64);
	ck_assert_int_eq(e, ENOMEM);
	ck_assert_int_eq(atomic_load(&nosleep_reclaims), 1);
	while (n > 0)
		kmem_cache_free(cp, v[--n]);
	kmem_cache_destroy(cp);
	ck_assert_int_eq(kmem_tunable_set("kmem_cache_grow_ahead", 1), 0);
}
END_TEST

/* KM_SLEEP never returns NULL: it waits until memory comes back. */
static void *
release_later(void *arg)
{
	(void) arg;
	usleep(50000);
	emergency_inject_failures(0);
	return (NULL);
}

START_TEST(test_sleep_waits_for_memory)
{
	kmem_cache_t *cp = kmem_cache_create("sleepy", 64, 0, NULL, NULL,
	    NULL, NULL, NULL, 0);
	pthread_t t;
	void *p;

	vmem_inject_failures(-1);
	emergency_inject_failures(-1);
	pthread_create(&t, NULL, release_later, NULL);
	p = kmem_cache_alloc(cp, KM_SLEEP);
	ck_assert_ptr_nonnull(p);
	pthread_join(t, NULL);
	vmem_inject_failures(0);
	kmem_cache_free(cp, p);
	kmem_cache_destroy(cp);
}
END_TEST

static void
reclaim_cb(void *priv)
{
	struct counts *c = priv;

	atomic_fetch_add(&c->reclaim, 1);
}

START_TEST(test_reap_frees_slabs)
{
	struct counts c = { 0 };
	kmem_cache_t *cp = kmem_cache_create("reap", 256, 0, count_ctor,
	    count_dtor, reclaim_cb, &c, NULL, KMC_RECLAIMABLE);
	enum { N = 10000 };
	void **objs = calloc(N, sizeof (void *));
	struct kmem_cache_stats st;

	for (int i = 0; i < N; i++)
		objs[i] = kmem_cache_alloc(cp, KM_SLEEP);
	for (int i = 0; i < N; i++)
		kmem_cache_free(cp, objs[i]);
	st = stats_of(cp);
	ck_assert_uint_gt(st.slab_total, 1);
	/* Magazines keep a bounded number constructed; the rest flushed. */
	ck_assert_uint_gt(st.obj_cached, 0);
	ck_assert_uint_lt(st.obj_cached, N);
	ck_assert_uint_eq(st.obj_alloc, st.obj_cached);
	ck_assert_uint_eq(st.dtor_calls + st.obj_cached, st.ctor_calls);
	ck_assert_uint_ge(st.mem_carved, (uint64_t)N * 256);
	ck_assert_uint_le(st.mem_carved, st.mem_total);
	kmem_cache_reap_now(cp);
	st = stats_of(cp);
	ck_assert_int_eq(atomic_load(&c.reclaim), 1);
	ck_assert_uint_eq(st.slab_total, 0);
	ck_assert_uint_eq(st.obj_total, 0);
	ck_assert_uint_eq(st.obj_cached, 0);
	ck_assert_uint_eq(st.mem_total, 0);
	ck_assert_uint_eq(st.mem_carved, 0);
	ck_assert_uint_ge(st.slab_max, 2);
	/* Refills take whole batches: at most one batch per CPU more. */
	ck_assert_uint_ge(st.obj_max, N);
	ck_assert_uint_le(st.obj_max, N + (uint64_t)test_online_cpus() *
	    st.mag_size / 2);
	ck_assert_int_eq(atomic_load(&c.dtor), atomic_load(&c.ctor));
	free(objs);
	kmem_cache_destroy(cp);
}
END_TEST

/*
 * mem_carved is what carving has reached: one object makes the one or
 * two pages it lies on count, however large its slab and however many
 * slabs were grown ahead; a slab's worth of objects makes that slab's
 * pages count; freeing them keeps the mark (the pages were written), and
 * freeing the slab clears it.
 */
START_TEST(test_mem_carved)
{
	size_t page = test_page_size();
	kmem_cache_t *cp = kmem_cache_create("carved", 1000, 0, NULL, NULL,
	    NULL, NULL, NULL, KMC_NOMAGAZINE);
	struct kmem_cache_stats st = stats_of(cp);
	uint64_t n = st.objs_per_slab, bytes;
	void **objs = calloc(n, sizeof (void *));

	ck_assert_ptr_nonnull(objs);
	ck_assert_uint_eq(st.mem_carved, 0);
	objs[0] = kmem_cache_alloc(cp, KM_SLEEP);
	st = stats_of(cp);
	ck_assert_uint_ge(st.mem_total, st.slab_size);
	ck_assert_uint_ge(st.slab_size, 4 * page);
	ck_assert_uint_ge(st.mem_carved, page);
	ck_assert_uint_le(st.mem_carved, 2 * page);
	/* The rest of its slab: without magazines, all from that slab. */
	for (uint64_t i = 1; i < n; i++)
		objs[i] = kmem_cache_alloc(cp, KM_SLEEP);
	st = stats_of(cp);
	bytes = (n * 1000 + page - 1) / page * page;
	ck_assert_uint_ge(st.mem_carved, bytes);
	ck_assert_uint_le(st.mem_carved, bytes + page);
	ck_assert_uint_le(st.mem_carved, st.slab_size);
	for (uint64_t i = 0; i < n; i++)
		kmem_cache_free(cp, objs[i]);
	ck_assert_uint_eq(stats_of(cp).mem_carved, st.mem_carved);
	kmem_cache_reap_now(cp);
	st = stats_of(cp);
	ck_assert_uint_eq(st.mem_total, 0);
	ck_assert_uint_eq(st.mem_carved, 0);
	free(objs);
	kmem_cache_destroy(cp);
}
END_TEST

#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)   /* they need their own */
/*
 * madvise, which the reap calls to give a slab's pages back after taking
 * the slab off its lists: while slabmax_cache is set, the first call
 * allocates from that cache (which has no slab left then, so it grows
 * one).  The library calls madvise through the PLT.
 */
static kmem_cache_t *volatile slabmax_cache;
static void *volatile slabmax_obj;

int
madvise(void *addr, size_t len, int advice)
{
	kmem_cache_t *cp = slabmax_cache;

	if (cp != NULL) {
		slabmax_cache = NULL;
		slabmax_obj = kmem_cache_alloc(cp, KM_SLEEP);
	}
	return ((int)syscall(SYS_madvise, addr, len, advice));
}

/*
 * slab_max is a high-water mark of the slabs the cache had.  A slab grown
 * while a reap gives back the pages of the cache's only slab is the only
 * one: slab_max stays 1.  (The reap used to count its slabs out of the
 * cache-wide sum only after their pages went back, so it said 2.)
 */
START_TEST(test_slab_max_during_reap)
{
	kmem_cache_t *cp = kmem_cache_create("slabmax", 64, 0, NULL, NULL,
	    NULL, NULL, NULL, KMC_NOMAGAZINE);
	struct kmem_cache_stats st;
	void *p;

	ck_assert_ptr_nonnull(cp);
	p = kmem_cache_alloc(cp, KM_SLEEP);
	ck_assert_ptr_nonnull(p);
	kmem_cache_free(cp, p);
	ck_assert_uint_eq(stats_of(cp).slab_total, 1);
	slabmax_obj = NULL;
	slabmax_cache = cp;
	kmem_cache_reap_now(cp);
	slabmax_cache = NULL;
	ck_assert_ptr_nonnull(slabmax_obj);
	st = stats_of(cp);
	ck_assert_uint_eq(st.slab_total, 1);
	ck_assert_uint_eq(st.slab_grows, 2);
	ck_assert_uint_eq(st.slab_max, 1);
	kmem_cache_free(cp, slabmax_obj);
	kmem_cache_destroy(cp);
}
END_TEST
#endif

/*
 * Slab colouring: 1 KiB objects start at every cache-line offset of
 * their 1 KiB period across slabs (16 colours), inside slabs that leave
 * room for that within 1/32; a cache aligned to 1 KiB keeps its objects
 * aligned and its slabs full.  Objects never overlap, and reaping
 * returns every coloured slab.
 */
START_TEST(test_slab_colouring)
{
	enum { N = 2000 };
	kmem_cache_t *cp = kmem_cache_create("colour", 1024, 0, NULL, NULL,
	    NULL, NULL, NULL, 0);
	kmem_cache_t *al = kmem_cache_create("colour_aligned", 1024, 1024,
	    NULL, NULL, NULL, NULL, NULL, 0);
	struct kmem_cache_stats st = stats_of(cp), sa = stats_of(al);
	unsigned char **a = calloc(N, sizeof (*a));
	unsigned char **b = calloc(N, sizeof (*b));
	bool seen[16] = { false };
	unsigned int colours = 0;

	ck_assert_uint_ge(st.slab_size - st.objs_per_slab * 1024, 960);
	ck_assert_uint_le((st.slab_size - st.objs_per_slab * 1024) * 32,
	    st.slab_size);
	ck_assert_uint_eq(sa.slab_size, sa.objs_per_slab * 1024);
	for (int i = 0; i < N; i++) {
		unsigned int k;

		a[i] = kmem_cache_alloc(cp, KM_SLEEP);
		b[i] = kmem_cache_alloc(al, KM_SLEEP);
		ck_assert_uint_eq((uintptr_t)a[i] % 64, 0);
		ck_assert_uint_eq((uintptr_t)b[i] % 1024, 0);
		memset(a[i], i, 1024);
		memset(b[i], i, 1024);
		k = (unsigned int)((uintptr_t)a[i] % 1024 / 64);
		if (!seen[k]) {
			seen[k] = true;
			colours++;
		}
	}
	ck_assert_uint_eq(colours, 16);
	for (int i = 0; i < N; i++) {
		ck_assert_uint_eq(a[i][0], (unsigned char)i);
		ck_assert_uint_eq(a[i][1023], (unsigned char)i);
		ck_assert_uint_eq(b[i][1023], (unsigned char)i);
		kmem_cache_free(cp, a[i]);
		kmem_cache_free(al, b[i]);
	}
	kmem_cache_reap_now(cp);
	st = stats_of(cp);
	ck_assert_uint_eq(st.slab_total, 0);
	ck_assert_uint_eq(st.mem_total, 0);
	free(a);
	free(b);
	kmem_cache_destroy(cp);
	kmem_cache_destroy(al);
}
END_TEST

/*
 * Destroyed caches give their memory back: structures, magazines and
 * depot rings are returned to the system, and the records of the freed
 * runs live outside them (a link written into each run kept 60 MB
 * resident after 10,000 caches were destroyed).
 */
START_TEST(test_destroy_returns_memory)
{
	enum { N = 2000 };
	kmem_cache_t **cps = calloc(N, sizeof (*cps));
	size_t before, held, after;
	char name[32];

#if defined(KMEM_TSAN) || defined(KMEM_ASAN)
	/*
	 * The sanitizers' own memory counts in RSS and is not returned (under
	 * ASan, RSS stayed 23 MB up after the destroy; 28 MB while alive).
	 */
	free(cps);
	return;
#endif
	ck_assert_ptr_nonnull(cps);
	before = test_rss_bytes();
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof (name), "destroy%d", i);
		cps[i] = kmem_cache_create(name, 16 + (size_t)(i % 64) * 8, 0,
		    NULL, NULL, NULL, NULL, NULL, 0);
		ck_assert_ptr_nonnull(cps[i]);
		kmem_cache_free(cps[i], kmem_cache_alloc(cps[i], KM_SLEEP));
	}
	held = test_rss_bytes();
	for (int i = 0; i < N; i++)
		kmem_cache_destroy(cps[i]);
	after = test_rss_bytes();
	free(cps);
	fprintf(stderr, "%d caches: RSS +%zu KiB while they live, +%zu KiB "
	    "after they are destroyed\n", N, (held - before) >> 10,
	    after > before ? (after - before) >> 10 : 0);
	ck_assert_msg(after < before + (held - before) / 4,
	    "RSS %zu KiB before, %zu KiB with %d caches, %zu KiB after they "
	    "were destroyed", before >> 10, held >> 10, N, after >> 10);
}
END_TEST

/*
 * A destroyed cache's structure is a run of metadata pages that the next
 * cache of the same layout takes as zeros.  Locked pages (mlock,
 * mlockall) refuse MADV_DONTNEED: the run must be cleared instead, or
 * the new cache starts with the old one's counters and magazines (its
 * rounds freed again: "freed twice" reports, objects "still allocated").
 */
START_TEST(test_destroyed_locked_meta_cleared)
{
	struct kmem_cache_stats st;
	kmem_cache_t *cp, *cp2;
	void *obj[64];

	cp = kmem_cache_create("locked_meta", 200, 0, NULL, NULL, NULL, NULL,
	    NULL, 0);
	ck_assert_ptr_nonnull(cp);
	for (int i = 0; i < 64; i++)
		ck_assert_ptr_nonnull(obj[i] = kmem_cache_alloc(cp, KM_SLEEP));
	for (int i = 0; i < 64; i++)
		kmem_cache_free(cp, obj[i]);
	if (mlock(cp, (size_t)sysconf(_SC_PAGESIZE)) != 0) {
		fprintf(stderr, "mlock: %s; skipped\n", strerror(errno));
		kmem_cache_destroy(cp);
		return;
	}
	kmem_cache_destroy(cp);
	cp2 = kmem_cache_create("locked_meta2", 200, 0, NULL, NULL, NULL,
	    NULL, NULL, 0);
	ck_assert_ptr_nonnull(cp2);
	ck_assert_int_eq(kmem_cache_stats(cp2, &st), 0);
	ck_assert_msg(st.alloc == 0 && st.free == 0 && st.obj_cached == 0,
	    "new cache (%s the old one's pages) starts with alloc %" PRIu64
	    ", free %" PRIu64 ", %" PRIu64 " cached", cp2 == cp ? "in" :
	    "not in", st.alloc, st.free, st.obj_cached);
	for (int i = 0; i < 64; i++)
		ck_assert_ptr_nonnull(obj[i] = kmem_cache_alloc(cp2, KM_SLEEP));
	for (int i = 0; i < 64; i++)
		kmem_cache_free(cp2, obj[i]);
	kmem_cache_destroy(cp2);
	(void) munlock(cp, (size_t)sysconf(_SC_PAGESIZE));
}
END_TEST

/*
 * The metadata a cache used once costs: one page, its structure's, which
 * also holds the first magazine of the CPU that used it (slab descriptors
 * and page-map words are shared; the object is not written, so its slab
 * page is not touched).  With its magazines in a mapping of their own it
 * was a page more: about 2.2 faults a cache, where this allows 1.6.  On a
 * NUMA machine each CPU's magazine pair has pages of its own (so that
 * the CPU writes them first, on its node): the first CPU's may add as
 * many faults as it has pages.  (Its per-CPU arrays on pages of their
 * own too, where they fit one page anyway, made 8.4 faults a cache on
 * two nodes; now 3.3.)
 */
START_TEST(test_used_cache_pages)
{
	enum { N = 200 };
	kmem_cache_t **cps = calloc(N, sizeof (*cps));
	char name[32];
	long faults, pair_pages = 0;

#if defined(KMEM_TSAN) || defined(KMEM_ASAN)
	free(cps);                      /* their shadow memory faults too */
	return;
#endif
	ck_assert_ptr_nonnull(cps);
	(void) test_pin(test_nth_cpu(0));
	faults = test_minor_faults();
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof (name), "used%d", i);
		cps[i] = kmem_cache_create(name, 64, 0, NULL, NULL, NULL, NULL,
		    NULL, KMC_NODEBUG);         /* magazines even under KMEM_DEBUG */
		ck_assert_ptr_nonnull(cps[i]);
		kmem_cache_free(cps[i], kmem_cache_alloc(cps[i], KM_SLEEP));
	}
	faults = test_minor_faults() - faults;
	if (cpu_numa_real())
		pair_pages = (long)(cps[0]->mag.pair_bytes /
		    (size_t)sysconf(_SC_PAGESIZE));
	else if (test_nth_cpu(0) != 0)
		/*
		 * Only CPU 0's first magazine shares the structure's page
		 * (magazine.h).  Started on other CPUs only (taskset -c 1),
		 * the pinned CPU's pair is on pages of its own, as many as
		 * it spans (one more than it fills, unaligned).
		 */
		pair_pages = (long)((cps[0]->mag.pair_bytes +
		    (size_t)sysconf(_SC_PAGESIZE) - 1) /
		    (size_t)sysconf(_SC_PAGESIZE)) + 1;
	fprintf(stderr, "%d caches created and used once: %.2f page faults "
	    "each (allowed: %.1f)\n", N, (double)faults / N,
	    1.6 + (double)pair_pages);
	ck_assert_msg(faults * 5 < N * (8 + 5 * pair_pages), "%ld page faults "
	    "for %d caches used once", faults, N);
	for (int i = 0; i < N; i++)
		kmem_cache_destroy(cps[i]);
	free(cps);
}
END_TEST

/* ------------------------------------------------------------ threads */

struct share {
	kmem_cache_t *caches[3];
	double seconds;
	_Atomic long errors;
};

static void *
share_thread(void *arg)
{
	struct share *sh = arg;
	uint64_t seed = (uintptr_t)pthread_self() | 1;
	uint64_t me = test_rand(&seed) | 1;
	struct { uint64_t *p; int c; } held[64];
	int n = 0;
	double end = test_now() + sh->seconds;

	while (test_now() < end) {
		if (n < 64 && (n == 0 || test_rand(&seed) % 3 != 0)) {
			int c = (int)(test_rand(&seed) % 3);
			uint64_t *p = kmem_cache_alloc(sh->caches[c],
			    KM_SLEEP);
			if (p == NULL || p[0] == 0xdead) {
				atomic_fetch_add(&sh->errors, 1);
				continue;
			}
			p[0] = 0xdead;          /* mine while held */
			p[1] = me;
			held[n].p = p;
			held[n++].c = c;
		} else {
			int k = (int)(test_rand(&seed) % (uint64_t)n);
			if (held[k].p[1] != me)
				atomic_fetch_add(&sh->errors, 1);
			held[k].p[0] = 0;
			kmem_cache_free(sh->caches[held[k].c], held[k].p);
			held[k] = held[--n];
		}
		if ((test_rand(&seed) & 63) == 0)
			sched_yield();
	}
	while (n > 0) {
		n--;
		held[n].p[0] = 0;
		kmem_cache_free(sh->caches[held[n].c], held[n].p);
	}
	return (NULL);
}

START_TEST(test_threads_share_caches)
{
	static const size_t sizes[3] = { 24, 200, 3000 };
	struct share sh = { .seconds = test_seconds(3) };
	pthread_t t[16];

	for (int c = 0; c < 3; c++) {
		char name[16];
		snprintf(name, sizeof (name), "shared%d", c);
		sh.caches[c] = kmem_cache_create(name, sizes[c], 0, NULL,
		    NULL, NULL, NULL, NULL, 0);
		ck_assert_ptr_nonnull(sh.caches[c]);
	}
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, share_thread,
		    &sh), 0);
	for (int i = 0; i < 16; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(atomic_load(&sh.errors), 0);
	for (int c = 0; c < 3; c++) {
		struct kmem_cache_stats st = stats_of(sh.caches[c]);
		ck_assert_uint_eq(st.alloc, st.free);
		ck_assert_uint_eq(st.obj_alloc, st.obj_cached);
		kmem_cache_destroy(sh.caches[c]);
	}
}
END_TEST

static long
minor_faults(void)
{
	struct rusage ru;

	ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
	return (ru.ru_minflt);
}

/*
 * fork() while another thread's walk holds a cache (here
 * kmem_cache_reap_now in a slow reclaim callback): that thread does not
 * exist in the child, so its hold must not either; a destroy in the
 * child returns instead of waiting for it for ever.
 */
static _Atomic int forkhold_inside;

static void
forkhold_reclaim(void *priv)
{
	(void) priv;
	atomic_store(&forkhold_inside, 1);
	usleep(500000);
}

static void *
forkhold_reaper(void *arg)
{
	kmem_cache_reap_now(arg);
	return (NULL);
}

START_TEST(test_fork_while_held)
{
	kmem_cache_t *cp = kmem_cache_create("forkhold", 64, 0, NULL, NULL,
	    forkhold_reclaim, NULL, NULL, 0);
	pthread_t t;
	pid_t pid;
	int st;

	ck_assert_ptr_nonnull(cp);
	kmem_cache_free(cp, kmem_cache_alloc(cp, KM_SLEEP));
	ck_assert_int_eq(pthread_create(&t, NULL, forkhold_reaper, cp), 0);
	while (!atomic_load(&forkhold_inside))
		usleep(1000);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		alarm(10);              /* a hang dies of SIGALRM */
		kmem_cache_destroy(cp);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "destroy in the child did not return (status 0x%x)", st);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	kmem_cache_destroy(cp);
}
END_TEST

/*
 * fork() while another thread flushes a cache's magazines (here
 * kmem_cache_reap_now, held up in a slow destructor; aging and pressure
 * reaps flush the same way): the rounds it took out of the magazines
 * and had not yet given back to the slab layer were in that thread's
 * hands only, so the child had objects out that nobody held, and could
 * neither reap them nor destroy the cache.  fork() waits for the flush.
 */
static _Atomic int forkflush_inside;

static void
forkflush_dtor(void *buf, void *priv)
{
	(void) buf; (void) priv;
	if (atomic_exchange(&forkflush_inside, 1) == 0)
		usleep(300000);
}

static void *
forkflush_reaper(void *arg)
{
	kmem_cache_reap_now(arg);
	return (NULL);
}

START_TEST(test_fork_while_flushing)
{
	kmem_cache_t *cp = kmem_cache_create("forkflush", 64, 0, NULL,
	    forkflush_dtor, NULL, NULL, NULL, 0);
	void *obj[64];
	pthread_t t;
	pid_t pid;
	int st;

	ck_assert_ptr_nonnull(cp);
	for (int i = 0; i < 64; i++)
		ck_assert_ptr_nonnull(obj[i] = kmem_cache_alloc(cp, KM_SLEEP));
	for (int i = 0; i < 64; i++)
		kmem_cache_free(cp, obj[i]);
	ck_assert_int_eq(pthread_create(&t, NULL, forkflush_reaper, cp), 0);
	while (!atomic_load(&forkflush_inside))
		usleep(1000);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct kmem_cache_stats s;

		alarm(10);
		kmem_cache_reap_now(cp);
		if (kmem_cache_stats(cp, &s) != 0)
			_exit(2);
		if (s.obj_alloc != 0) {
			fprintf(stderr, "child: %" PRIu64 " objects out after "
			    "a reap, none held\n", s.obj_alloc);
			_exit(1);
		}
		kmem_cache_destroy(cp);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "the child lost objects a flush was giving back (status 0x%x)",
	    st);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	kmem_cache_destroy(cp);
}
END_TEST

/*
 * fork() while another thread refills a magazine (here held up in a slow
 * constructor): the objects it took from the slab layer for the magazine
 * were in that thread's hands only, as a flush's are, so the child had
 * objects out that nobody held (the one the allocation returns is the
 * allocating thread's, gone with it).  fork() waits for the refill too.
 */
static _Atomic int forkfill_inside;

static int
forkfill_ctor(void *buf, void *priv, int kmflags)
{
	(void) buf; (void) priv; (void) kmflags;
	if (atomic_load(&forkfill_inside) == 1) {
		atomic_store(&forkfill_inside, 2);
		usleep(300000);
	}
	return (0);
}

static void *
forkfill_allocator(void *arg)
{
	return (kmem_cache_alloc(arg, KM_SLEEP));
}

START_TEST(test_fork_while_refilling)
{
	kmem_cache_t *cp = kmem_cache_create("forkfill", 64, 0, forkfill_ctor,
	    NULL, NULL, NULL, NULL, 0);
	void *obj;
	pthread_t t;
	pid_t pid;
	int st;

	ck_assert_ptr_nonnull(cp);
	atomic_store(&forkfill_inside, 1);
	ck_assert_int_eq(pthread_create(&t, NULL, forkfill_allocator, cp), 0);
	while (atomic_load(&forkfill_inside) != 2)
		usleep(1000);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct kmem_cache_stats s;

		alarm(10);
		kmem_cache_reap_now(cp);
		if (kmem_cache_stats(cp, &s) != 0)
			_exit(2);
		/* At most the one the allocating thread was to get. */
		if (s.obj_alloc > 1) {
			fprintf(stderr, "child: %" PRIu64 " objects out after "
			    "a reap, at most 1 held\n", s.obj_alloc);
			_exit(1);
		}
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_int_eq(pthread_join(t, &obj), 0);
	ck_assert_ptr_nonnull(obj);
	kmem_cache_free(cp, obj);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "the child lost objects a refill was putting in a magazine "
	    "(status 0x%x)", st);
	kmem_cache_destroy(cp);
}
END_TEST

#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)
/*
 * fork() while another thread adds a slab to a cache (slab_grow, as the
 * grow task does), between mapping it and linking it to the node's
 * lists: the child's cache lacked the slab, and its span stayed
 * allocated there for nothing.  The growing thread is held up in the
 * node lock's trylock, which the library calls through the PLT.
 */
static __thread bool forkgrow_hold;
static _Atomic int forkgrow_inside;

int
pthread_mutex_trylock(pthread_mutex_t *m)
{
	static int (*real)(pthread_mutex_t *);

	if (real == NULL)
		real = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT,
		    "pthread_mutex_trylock");
	if (forkgrow_hold) {
		forkgrow_hold = false;
		atomic_store(&forkgrow_inside, 1);
		usleep(300000);
	}
	return (real(m));
}

static void *
forkgrow_thread(void *arg)
{
	forkgrow_hold = true;
	return ((void *)(uintptr_t)slab_grow(arg, 0, 1));
}

START_TEST(test_fork_while_growing)
{
	kmem_cache_t *cp = kmem_cache_create("forkgrow", 64, 0, NULL, NULL,
	    NULL, NULL, NULL, 0);
	uint64_t before;
	pthread_t t;
	void *made;
	pid_t pid;
	int st;

	ck_assert_ptr_nonnull(cp);
	before = atomic_load(&cp->sl.slab_total);
	ck_assert_int_eq(pthread_create(&t, NULL, forkgrow_thread, cp), 0);
	while (!atomic_load(&forkgrow_inside))
		usleep(1000);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		alarm(10);
		if (atomic_load(&cp->sl.slab_total) != before + 1) {
			fprintf(stderr, "child: %" PRIu64 " slabs, %" PRIu64
			    " grown\n", atomic_load(&cp->sl.slab_total),
			    before + 1);
			_exit(1);
		}
		kmem_cache_destroy(cp);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "the child lost a slab being grown (status 0x%x)", st);
	ck_assert_int_eq(pthread_join(t, &made), 0);
	ck_assert_ptr_eq(made, (void *)1);
	kmem_cache_destroy(cp);
}
END_TEST
#endif

#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)
/*
 * fork() while another thread is in libkmem's start, past the
 * registration of the fork handlers: pthread_once starts kmem_init over
 * in the child, which registered the handlers a second time, so the
 * child's own fork() ran them twice, took every lock twice and hung.
 * pthread_atfork is libkmem's (this program links the library in), here
 * holding up the starting thread right after it registers, a window of
 * a few instructions otherwise.
 */
extern int __register_atfork(void (*)(void), void (*)(void), void (*)(void),
    void *);
extern void *__dso_handle;
static _Atomic int atfork_calls;
static _Atomic pid_t atfork_hold_in;    /* hold up registration there */
static _Atomic pid_t atfork_hold_before; /* the same, before it */
static _Atomic int atfork_registered;

int
pthread_atfork(void (*prepare)(void), void (*parent)(void),
    void (*child)(void))
{
	int rc;

	if (atomic_load(&atfork_hold_before) == getpid()) {
		atomic_store(&atfork_registered, 1);
		usleep(300000);
	}
	rc = __register_atfork(prepare, parent, child, __dso_handle);

	atomic_fetch_add(&atfork_calls, 1);
	if (atomic_load(&atfork_hold_in) == getpid()) {
		atomic_store(&atfork_registered, 1);
		usleep(300000);
	}
	return (rc);
}

static void *
forkstart_first(void *arg)
{
	return (kmem_cache_create(arg, 64, 0, NULL, NULL, NULL, NULL, NULL,
	    0));
}

START_TEST(test_fork_during_start)
{
	kmem_cache_t *cp;
	pthread_t t;
	pid_t pid;
	int st;

	if (atomic_load(&atfork_calls) != 0)
		return;         /* started already (CK_FORK=no): no window */
	atomic_store(&atfork_hold_in, getpid());
	ck_assert_int_eq(pthread_create(&t, NULL, forkstart_first,
	    "forkstart"), 0);
	while (!atomic_load(&atfork_registered))
		usleep(1000);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		kmem_cache_t *c;
		pid_t g;

		/* A hang dies of SIGALRM (not Check's handler: its group). */
		(void) signal(SIGALRM, SIG_DFL);
		alarm(10);
		c = kmem_cache_create("forkstart_child", 64, 0, NULL, NULL,
		    NULL, NULL, NULL, 0);
		if (c == NULL)
			_exit(2);
		kmem_cache_free(c, kmem_cache_alloc(c, KM_SLEEP));
		if ((g = fork()) == 0)
			_exit(0);
		if (g < 0 || waitpid(g, NULL, 0) != g)
			_exit(3);
		kmem_cache_destroy(c);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "a child forked during libkmem's start could not fork "
	    "(status 0x%x)", st);
	ck_assert_int_eq(pthread_join(t, (void **)&cp), 0);
	ck_assert_ptr_nonnull(cp);
	kmem_cache_destroy(cp);
}
END_TEST

/*
 * The same fork a little earlier: the starting thread has decided to
 * register the handlers but has not yet.  The child inherits no
 * handlers, so it must register its own; it took the registration as
 * made, and its children got none: a grandchild's kmem taskq counted the
 * child's threads and ran nothing.
 */
static void
forkstart_task(void *arg)
{
	atomic_store((_Atomic int *)arg, 1);
}

START_TEST(test_fork_before_start_registers)
{
	kmem_cache_t *cp;
	pthread_t t;
	pid_t pid;
	int st;

	if (atomic_load(&atfork_calls) != 0)
		return;         /* started already (CK_FORK=no): no window */
	atomic_store(&atfork_hold_before, getpid());
	ck_assert_int_eq(pthread_create(&t, NULL, forkstart_first,
	    "forkstart"), 0);
	while (!atomic_load(&atfork_registered))
		usleep(1000);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		kmem_cache_t *c;
		pid_t g;

		(void) signal(SIGALRM, SIG_DFL);
		alarm(10);
		c = kmem_cache_create("forkstart_child", 64, 0, NULL, NULL,
		    NULL, NULL, NULL, 0);
		if (c == NULL || kmem_taskq() == NULL)
			_exit(2);
		if ((g = fork()) == 0) {
			static _Atomic int ran;

			if (taskq_dispatch(kmem_taskq(), forkstart_task,
			    (void *)&ran, TQ_SLEEP) == 0)
				_exit(1);
			for (int i = 0; i < 500 && !atomic_load(&ran); i++)
				usleep(10000);
			_exit(atomic_load(&ran) ? 0 : 1);
		}
		if (g < 0 || waitpid(g, &st, 0) != g)
			_exit(3);
		_exit(WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 4);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "a child forked as libkmem's start was registering its fork "
	    "handlers had none for its own children (status 0x%x: 4, the "
	    "grandchild's task queue ran nothing)", st);
	ck_assert_int_eq(pthread_join(t, (void **)&cp), 0);
	ck_assert_ptr_nonnull(cp);
	kmem_cache_destroy(cp);
}
END_TEST
#endif

/*
 * fork() write-protects the pages of parent and child, and the atfork
 * handlers lock and unlock every cache's locks: each page they write
 * costs a page fault in the parent and one in the child.  The locks are
 * packed (meta.c, MUTEXES), so 200 caches cost a fork a few pages, not
 * one or more per cache (the parent took 1.1 and the child 1.5 faults per
 * cache when each cache kept its locks).  The least of three forks.
 */
START_TEST(test_fork_page_faults)
{
	enum { NCACHES = 200 };
	static kmem_cache_t *cp[NCACHES];
	long parent = LONG_MAX, child = LONG_MAX;

#if defined(KMEM_TSAN) || defined(KMEM_ASAN)
	return;         /* shadow memory faults too; see check_reap's fork */
#endif
	for (int i = 0; i < NCACHES; i++) {
		char name[32];

		snprintf(name, sizeof (name), "forkfaults%d", i);
		cp[i] = kmem_cache_create(name, 64 + 8 * (size_t)i, 0, NULL,
		    NULL, NULL, NULL, NULL, 0);
		ck_assert_ptr_nonnull(cp[i]);
		kmem_cache_free(cp[i], kmem_cache_alloc(cp[i], KM_SLEEP));
	}
	for (int round = 0; round < 3; round++) {
		long before = minor_faults();
		int status;
		pid_t pid = fork();

		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			_exit((int)KMEM_MIN(minor_faults(), 255L));
		parent = KMEM_MIN(parent, minor_faults() - before);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert(WIFEXITED(status));
		child = KMEM_MIN(child, (long)WEXITSTATUS(status));
	}
	ck_assert_msg(parent < NCACHES / 2 && child < NCACHES / 2,
	    "page faults of a fork with %d caches: parent %ld, child %ld",
	    NCACHES, parent, child);
	for (int i = 0; i < NCACHES; i++)
		kmem_cache_destroy(cp[i]);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("cache");
	TCase *api = tcase_create("api");
	TCase *mem = tcase_create("memory");
	TCase *thr = tcase_create("threads");

	tcase_set_timeout(api, 120);
	tcase_add_test(api, test_random_caches);
	tcase_add_test(api, test_constructor_caching);
	tcase_add_test(api, test_constructor_failure);
	tcase_add_test(api, test_constructor_recursion);
	tcase_add_test(api, test_invalid_arguments);
	tcase_add_test(api, test_wrong_pointer_rejected);
	tcase_add_test(api, test_slab_obj_ok_exact);
	tcase_add_test(api, test_free_never_allocated);
	tcase_add_test(api, test_destroy_with_objects_out);
	tcase_add_test(api, test_destroy_after_double_free);
	tcase_add_test(api, test_destroy_dtor_frees_into_cache);
	tcase_add_test(api, test_destroy_waits_for_dtor_growth);
	tcase_add_test(api, test_destroy_cancelled_while_waiting);
	suite_add_tcase(s, api);
	tcase_set_timeout(mem, 60);
	tcase_add_test(mem, test_emergency_under_mmap_failure);
	tcase_add_test(mem, test_slab_grows_after_pressure);
	tcase_add_test(mem, test_nosleep_failure_reaps_once);
	tcase_add_test(mem, test_nosleep_failure_reaps_once_task);
	tcase_add_test(mem, test_sleep_waits_for_memory);
	tcase_add_test(mem, test_reap_frees_slabs);
	tcase_add_test(mem, test_mem_carved);
#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)
	tcase_add_test(mem, test_slab_max_during_reap);
#endif
	tcase_add_test(mem, test_slab_colouring);
	tcase_add_test(mem, test_destroy_returns_memory);
	tcase_add_test(mem, test_destroyed_locked_meta_cleared);
	tcase_add_test(mem, test_used_cache_pages);
	suite_add_tcase(s, mem);
	tcase_set_timeout(thr, 120);
	tcase_add_test(thr, test_threads_share_caches);
	tcase_add_test(thr, test_fork_page_faults);
	tcase_add_test(thr, test_fork_while_held);
	tcase_add_test(thr, test_fork_while_flushing);
	tcase_add_test(thr, test_fork_while_refilling);
#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)
	tcase_add_test(thr, test_fork_while_growing);
	tcase_add_test(thr, test_fork_during_start);
	tcase_add_test(thr, test_fork_before_start_registers);
#endif
	suite_add_tcase(s, thr);
	return (test_run_suite(s));
}
