/*
 * check_alloc.c - kmem_alloc(3): kmem_alloc, kmem_zalloc and kmem_free on
 * the size-class caches and the large (vmem) path, vmem_alloc and
 * friends, KM_NOSLEEP failure, and the size classes' statistics
 * (kmem_alloc_class_count, kmem_alloc_class_stats).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libkmem/kmem.h"
#include "cache.h"
#include "kmem_alloc.h"
#include "meta.h"
#include "testutil.h"
#include "vmem.h"

#define SMALL_MAX       8192            /* every size 1..SMALL_MAX */
#define DEFAULT_MAX     (128 * 1024)    /* default kmem_alloc_max_class */
#define STAT_N          64              /* objects per class in stats tests */
/* Objects a magazine refill may take from the slabs beyond those asked. */
#define MAG_SLACK       1024

/*
 * The compiler must not see the huge sizes below as constants
 * (-Walloc-size-larger-than), nor drop the allocations.
 */
static volatile size_t huge_size = SIZE_MAX / 2;

static bool
is_p2(size_t x)
{
	return (x != 0 && (x & (x - 1)) == 0);
}

/* ------------------------------------------------------------ classes */

static struct kmem_class_stats
class_stats(int idx)
{
	struct kmem_class_stats st;

	memset(&st, 0xff, sizeof (st));
	ck_assert_msg(kmem_alloc_class_stats(idx, &st) == 0,
	    "kmem_alloc_class_stats(%d) failed: %s", idx, strerror(errno));
	return (st);
}

/* The index of the class that serves 'size' (the smallest that fits). */
static int
class_of(size_t size)
{
	int n = kmem_alloc_class_count();

	for (int i = 0; i < n; i++) {
		if (class_stats(i).size >= size)
			return (i);
	}
	return (-1);
}

/* The size of the largest class (kmem_alloc_max_class). */
static size_t
max_class(void)
{
	return ((size_t)class_stats(kmem_alloc_class_count() - 1).size);
}

/* Sum of obj_used over every class. */
static uint64_t
used_total(void)
{
	int n = kmem_alloc_class_count();
	uint64_t sum = 0;

	for (int i = 0; i < n; i++)
		sum += class_stats(i).obj_used;
	return (sum);
}

/*
 * Whether the class's cache has ever had emergency objects (taken when
 * growth is too slow, on a loaded machine): they count in pages_used and
 * obj_allocated without being in slabs.
 */
static bool
class_had_emergency(const struct kmem_class_stats *st)
{
	kmem_cache_t *cp = ka_cache_for((size_t)st->size);
	struct kmem_cache_stats cs;

	ck_assert_ptr_nonnull(cp);
	ck_assert_int_eq(kmem_cache_stats(cp, &cs), 0);
	return (cs.obj_emergency_max != 0);
}

/* The invariants of one class's statistics. */
static void
check_class_consistent(const struct kmem_class_stats *st)
{
	size_t page = test_page_size();
	uint64_t slabs, per_slab;

	ck_assert_uint_ge(st->pages_per_slab, 1);
	ck_assert_uint_ge(st->pages_per_slab * page, st->size);
	ck_assert_uint_le(st->freeable, st->pages_used);
	ck_assert_uint_le(st->pages_carved, st->pages_used);
	ck_assert_uint_le(st->obj_used, st->obj_allocated);
	if (class_had_emergency(st))
		return;
	ck_assert_msg(st->pages_used % st->pages_per_slab == 0,
	    "%s: pages_used %" PRIu64 " is not a multiple of pages_per_slab "
	    "%" PRIu64, st->name, st->pages_used, st->pages_per_slab);
	ck_assert_msg(st->freeable % st->pages_per_slab == 0,
	    "%s: freeable %" PRIu64 " is not a multiple of pages_per_slab "
	    "%" PRIu64, st->name, st->freeable, st->pages_per_slab);
	slabs = st->pages_used / st->pages_per_slab;
	per_slab = st->pages_per_slab * page / st->size;
	ck_assert_uint_ge(per_slab, 1);
	/* Slabs in use plus empty ones are at most all of them. */
	ck_assert_uint_le(st->almost_full + st->almost_empty +
	    st->freeable / st->pages_per_slab, slabs);
	ck_assert_msg(st->obj_allocated <= slabs * per_slab,
	    "%s: %" PRIu64 " objects in %" PRIu64 " slab(s) of %" PRIu64
	    " page(s)", st->name, st->obj_allocated, slabs,
	    st->pages_per_slab);
	/* A slab with objects out is not freeable. */
	if (st->obj_used > 0)
		ck_assert_uint_gt(st->pages_used, st->freeable);
	if (slabs > 0)
		ck_assert_uint_gt(st->obj_allocated, 0);
}

START_TEST(test_class_list)
{
	int n = kmem_alloc_class_count();
	uint64_t prev = 0;
	bool seen_8 = false;

	ck_assert_int_gt(n, 0);
	for (int i = 0; i < n; i++) {
		struct kmem_class_stats st = class_stats(i);
		char want[64];

		ck_assert_msg(st.size > prev, "class %d: size %" PRIu64
		    " after %" PRIu64, i, st.size, prev);
		ck_assert_uint_eq(st.size % KMEM_ALIGN, 0);
		snprintf(want, sizeof (want), "kmem_alloc_%" PRIu64, st.size);
		ck_assert_msg(memchr(st.name, '\0', sizeof (st.name)) != NULL,
		    "class %d: name not terminated", i);
		ck_assert_str_eq(st.name, want);
		check_class_consistent(&st);
		if (st.size == 8)
			seen_8 = true;
		prev = st.size;
	}
	ck_assert_msg(seen_8, "no 8-byte class");
	ck_assert_uint_eq(class_stats(0).size, 8);
	if (getenv("KMEM_ALLOC_MAX_CLASS") == NULL)
		ck_assert_uint_eq(max_class(), DEFAULT_MAX);
	/* Every power of two from 8 to the largest class is a class. */
	for (size_t p = 8; p <= max_class(); p *= 2) {
		int i = class_of(p);

		ck_assert_msg(i >= 0 && class_stats(i).size == p,
		    "no class of %zu bytes", p);
	}
	/* Nothing above the largest class. */
	ck_assert_int_eq(class_of(max_class() + 1), -1);
}
END_TEST

START_TEST(test_class_index_range)
{
	struct kmem_class_stats st;
	int n = kmem_alloc_class_count();
	int bad[] = { -1, n, n + 1, INT_MAX, INT_MIN };

	for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
		errno = 0;
		ck_assert_int_eq(kmem_alloc_class_stats(bad[i], &st), -1);
		ck_assert_int_eq(errno, EINVAL);
	}
	ck_assert_int_eq(kmem_alloc_class_stats(n - 1, &st), 0);
	ck_assert_int_eq(kmem_alloc_class_stats(0, &st), 0);
}
END_TEST

/*
 * For each class: N objects of its size raise its obj_used by at least N
 * (and by at most what magazine refills take besides), give it slabs,
 * leave every other class's count alone; after the frees and a reap (which
 * empties the magazines) it is back where it was.
 */
START_TEST(test_class_obj_used)
{
	int n = kmem_alloc_class_count();
	void *objs[STAT_N];

	(void) test_pin(test_nth_cpu(0));
	for (int i = 0; i < n; i++) {
		struct kmem_class_stats before, during, after;
		size_t size;
		uint64_t others;

		kmem_reap();
		before = class_stats(i);
		others = used_total() - before.obj_used;
		size = (size_t)before.size;
		for (int j = 0; j < STAT_N; j++) {
			objs[j] = kmem_alloc(size, KM_SLEEP);
			ck_assert_ptr_nonnull(objs[j]);
			memset(objs[j], j, size);
		}
		during = class_stats(i);
		check_class_consistent(&during);
		ck_assert_msg(during.obj_used >= before.obj_used + STAT_N,
		    "%s: obj_used %" PRIu64 " -> %" PRIu64 " after %d "
		    "allocations", before.name, before.obj_used,
		    during.obj_used, STAT_N);
		ck_assert_msg(during.obj_used <= before.obj_used + STAT_N +
		    MAG_SLACK, "%s: obj_used %" PRIu64 " -> %" PRIu64
		    " after %d allocations", before.name, before.obj_used,
		    during.obj_used, STAT_N);
		ck_assert_uint_ge(during.obj_allocated, during.obj_used);
		ck_assert_uint_ge(during.pages_used * test_page_size(),
		    (uint64_t)STAT_N * size);
		ck_assert_uint_ge(during.pages_carved * test_page_size(),
		    (uint64_t)STAT_N * size);
		ck_assert_uint_gt(during.pages_used, during.freeable);
		/* The other classes did not move. */
		ck_assert_uint_eq(used_total() - during.obj_used, others);
		for (int j = 0; j < STAT_N; j++)
			kmem_free(objs[j], size);
		kmem_reap();
		after = class_stats(i);
		check_class_consistent(&after);
		ck_assert_msg(after.obj_used == before.obj_used,
		    "%s: obj_used %" PRIu64 " -> %" PRIu64 " after %d "
		    "allocations, their frees and kmem_reap", before.name,
		    before.obj_used, after.obj_used, STAT_N);
	}
}
END_TEST

/*
 * A size between two classes is served by the larger: one byte more than
 * class i-1's size lands in class i.
 */
START_TEST(test_class_between)
{
	int n = kmem_alloc_class_count();
	void *objs[STAT_N];

	(void) test_pin(test_nth_cpu(0));
	for (int i = 1; i < n; i++) {
		size_t size = (size_t)class_stats(i - 1).size + 1;
		struct kmem_class_stats lo, hi, lo2, hi2;

		kmem_reap();
		lo = class_stats(i - 1);
		hi = class_stats(i);
		for (int j = 0; j < STAT_N; j++) {
			objs[j] = kmem_alloc(size, KM_SLEEP);
			ck_assert_ptr_nonnull(objs[j]);
			memset(objs[j], 0x5a, size);
		}
		lo2 = class_stats(i - 1);
		hi2 = class_stats(i);
		ck_assert_msg(hi2.obj_used >= hi.obj_used + STAT_N,
		    "size %zu: %s obj_used %" PRIu64 " -> %" PRIu64, size,
		    hi.name, hi.obj_used, hi2.obj_used);
		ck_assert_msg(lo2.obj_used == lo.obj_used,
		    "size %zu: %s obj_used %" PRIu64 " -> %" PRIu64, size,
		    lo.name, lo.obj_used, lo2.obj_used);
		for (int j = 0; j < STAT_N; j++)
			kmem_free(objs[j], size);
	}
}
END_TEST

/* Reaping gives empty slabs back: nothing freeable is left afterwards. */
START_TEST(test_class_freeable)
{
	int i = class_of(256);
	size_t size = (size_t)class_stats(i).size;
	enum { N = 4096 };
	void **objs = calloc(N, sizeof (void *));
	struct kmem_class_stats st;

	ck_assert_ptr_nonnull(objs);
	for (int j = 0; j < N; j++) {
		objs[j] = kmem_alloc(size, KM_SLEEP);
		ck_assert_ptr_nonnull(objs[j]);
	}
	st = class_stats(i);
	check_class_consistent(&st);
	ck_assert_uint_ge(st.obj_used, N);
	ck_assert_uint_ge(st.pages_used * test_page_size(),
	    (uint64_t)N * size);
	for (int j = 0; j < N; j++)
		kmem_free(objs[j], size);
	free(objs);
	kmem_reap();
	st = class_stats(i);
	check_class_consistent(&st);
	ck_assert_uint_eq(st.obj_used, 0);
	ck_assert_uint_eq(st.freeable, 0);
	ck_assert_uint_eq(st.pages_used, 0);
	ck_assert_uint_eq(st.pages_carved, 0);
	ck_assert_uint_eq(st.almost_full + st.almost_empty, 0);
}
END_TEST

/*
 * "check_alloc --classes": print the class sizes, one line, and check
 * that a block of the largest class size and one a byte larger work.
 * Run with KMEM_ALLOC_MAX_CLASS set by the test below.
 */
static int
print_classes(void)
{
	int n = kmem_alloc_class_count();
	size_t maxc = 0;
	void *a, *b;

	/* No ck_assert here: this is not a test. */
	for (int i = 0; i < n; i++) {
		struct kmem_class_stats st;

		if (kmem_alloc_class_stats(i, &st) != 0)
			return (1);
		printf("%s%" PRIu64, i == 0 ? "" : " ", st.size);
		maxc = (size_t)st.size;
	}
	printf("\n");
	a = kmem_alloc(maxc, KM_SLEEP);
	b = kmem_alloc(maxc + 1, KM_SLEEP);
	if (a == NULL || b == NULL)
		return (1);
	memset(a, 1, maxc);
	memset(b, 2, maxc + 1);
	kmem_free(a, maxc);
	kmem_free(b, maxc + 1);
	return (0);
}

/*
 * Run a copy of this program as "check_alloc mode" with
 * KMEM_ALLOC_MAX_CLASS=max_class; what it writes to fd (stdout or
 * stderr) goes to buf.  Returns its wait status.
 */
static int
run_copy(const char *mode, const char *max_class, int fd, char *buf,
    size_t size)
{
	int fds[2], status;
	size_t len = 0;
	ssize_t r;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fds[1], fd);
		close(fds[0]);
		close(fds[1]);
		setenv("KMEM_ALLOC_MAX_CLASS", max_class, 1);
		execl("/proc/self/exe", "check_alloc", mode, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (len < size - 1 &&
	    (r = read(fds[0], buf + len, size - 1 - len)) > 0)
		len += (size_t)r;
	buf[len] = '\0';
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return (status);
}

/* The class sizes a copy of this program finds with max_class set. */
static void
classes_with(const char *max_class, uint64_t *sizes, int *n, int max)
{
	char buf[8192], *p, *end;
	int status = run_copy("--classes", max_class, STDOUT_FILENO, buf,
	    sizeof (buf));

	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "KMEM_ALLOC_MAX_CLASS=%s: status %#x", max_class, status);
	*n = 0;
	for (p = buf; *n < max; p = end) {
		uint64_t v = strtoull(p, &end, 10);

		if (end == p)
			break;
		sizes[(*n)++] = v;
	}
}

/*
 * The --nocache copy: classes above what a cache may hold.  With
 * KMEM_ALLOC_MAX_CLASS=16M and kmem_cache_max_size lowered to 1 (MiB)
 * before the classes are first used, the classes above 1 MiB cannot be
 * caches: their requests must still succeed (KM_SLEEP never returns
 * NULL), zeroed for kmem_zalloc, and be freed with kmem_free; malloc's
 * request for one fails with no message when no span can be had.  Exits
 * 0 when they are.
 */
static int
alloc_nocache(void)
{
	const size_t sizes[] = { (size_t)1 << 20, ((size_t)1 << 20) + 1,
	    (size_t)2 << 20, ((size_t)3 << 20) + 5, (size_t)16 << 20 };
	void *big;
	int err;

	if (kmem_tunable_set("kmem_cache_max_size", 1) != 0)
		return (2);
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < sizeof (sizes) / sizeof (sizes[0]);
		    i++) {
			size_t sz = sizes[i];
			unsigned char *a = kmem_alloc(sz, KM_SLEEP);
			unsigned char *z = kmem_zalloc(sz, KM_SLEEP);
			unsigned char *v = vmem_alloc(sz, KM_NOSLEEP);

			if (a == NULL || z == NULL || v == NULL)
				return (3);
			for (size_t j = 0; j < sz; j += 4096)
				if (z[j] != 0 || z[sz - 1] != 0)
					return (4);
			memset(a, 0xa5, sz);
			memset(z, 0x5a, sz);
			memset(v, 0x33, sz);
			kmem_free(a, sz);
			kmem_free(z, sz);
			vmem_free(v, sz);
		}
	}
	/*
	 * malloc's request (KM_MAYFAIL) for such a class when no span can
	 * be had: NULL with ENOMEM and no message, as any malloc once
	 * memory has run out (the caller of this copy reads its stderr).
	 */
	vmem_inject_failures(-1);
	errno = 0;
	big = ka_alloc((size_t)12 << 20, KM_SLEEP | KM_MAYFAIL);
	err = errno;
	vmem_inject_failures(0);
	if (big != NULL || err != ENOMEM)
		return (5);
	return (0);
}

/* Classes larger than kmem_cache_max_size lets a cache be still serve. */
START_TEST(test_class_larger_than_cache)
{
	char err[8192];
	int status = run_copy("--nocache", "16M", STDERR_FILENO, err,
	    sizeof (err));

	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "kmem_alloc above kmem_cache_max_size: status %#x, stderr: %s",
	    status, err);
	/* Said once per class, in one line that says what happens. */
	ck_assert_msg(strstr(err, "kmem_cache_create(") == NULL &&
	    strstr(err, "spans of their own") != NULL, "stderr: %s", err);
	for (const char *l = err; *l != '\0'; l = strchr(l, '\n') + 1) {
		const char *nl = strchr(l, '\n');
		char line[512];

		ck_assert_msg(nl != NULL && nl - l < (long)sizeof (line) &&
		    strncmp(l, "libkmem: kmem_alloc: class ", 27) == 0,
		    "stderr: %s", err);
		memcpy(line, l, (size_t)(nl - l + 1));
		line[nl - l + 1] = '\0';
		ck_assert_msg(strstr(nl + 1, line) == NULL, "twice: %s", line);
	}
}
END_TEST

/* kmem_alloc_max_class (KMEM_ALLOC_MAX_CLASS) sets the largest class. */
START_TEST(test_max_class_tunable)
{
	const char *vals[] = { "4096", "65536", "1048576" };
	uint64_t sizes[512];
	int n;

	for (size_t v = 0; v < sizeof (vals) / sizeof (vals[0]); v++) {
		uint64_t want = strtoull(vals[v], NULL, 10);

		classes_with(vals[v], sizes, &n, 512);
		ck_assert_int_gt(n, 0);
		ck_assert_msg(sizes[n - 1] == want, "KMEM_ALLOC_MAX_CLASS=%s: "
		    "largest class %" PRIu64, vals[v], sizes[n - 1]);
		ck_assert_uint_eq(sizes[0], 8);
		for (uint64_t p2 = 8; p2 <= want; p2 *= 2) {
			bool found = false;

			for (int i = 0; i < n; i++)
				found |= sizes[i] == p2;
			ck_assert_msg(found, "KMEM_ALLOC_MAX_CLASS=%s: no "
			    "class of %" PRIu64, vals[v], p2);
		}
		for (int i = 1; i < n; i++)
			ck_assert_uint_gt(sizes[i], sizes[i - 1]);
	}
}
END_TEST

/* ------------------------------------------------------------ allocation */

static void
alloc_zero_sizes(void *arg)
{
	void **ret = arg;

	errno = 0;
	ret[0] = kmem_alloc(0, KM_SLEEP);
	ret[1] = kmem_alloc(0, KM_NOSLEEP);
	ret[2] = kmem_zalloc(0, KM_SLEEP);
	ret[3] = vmem_alloc(0, KM_SLEEP);
	ret[4] = vmem_zalloc(0, KM_SLEEP);
	ret[5] = (void *)(intptr_t)errno;
	kmem_free(NULL, 0);
	vmem_free(NULL, 0);
}

/* Size 0: NULL, and nothing wrong (no errno, no report). */
START_TEST(test_size_zero)
{
	void *ret[6];
	char out[1024];

	kmem_free(kmem_alloc(8, KM_SLEEP), 8);  /* libkmem is started */
	test_capture_stderr(alloc_zero_sizes, ret, out, sizeof (out));
	for (int i = 0; i < 5; i++)
		ck_assert_msg(ret[i] == NULL, "size 0: call %d returned %p",
		    i, ret[i]);
	ck_assert_int_eq((int)(intptr_t)ret[5], 0);
	ck_assert_msg(out[0] == '\0', "size 0 reported \"%s\"", out);
}
END_TEST

static void
free_size_zero(void *arg)
{
	kmem_free(arg, 0);
	vmem_free(arg, 0);
}

/* A block freed with size 0 (no block has it): reported, kept intact. */
START_TEST(test_free_size_zero_reported)
{
	char *p = kmem_alloc(100, KM_SLEEP);
	char out[1024];

	test_fill(p, 100, 7);
	test_capture_stderr(free_size_zero, p, out, sizeof (out));
	ck_assert_msg(strstr(out, "kmem_free(") != NULL &&
	    strstr(out, ", 0): no block has size 0; ignored\n") != NULL,
	    "no report on stderr, got \"%s\"", out);
	ck_assert_uint_eq(test_verify(p, 100, 7), 100);
	/* Still allocated: a new block of its class is another one. */
	char *q = kmem_alloc(100, KM_SLEEP);
	ck_assert_ptr_ne(p, q);
	kmem_free(q, 100);
	kmem_free(p, 100);
}
END_TEST

/* Alignment a buffer of 'size' bytes must have. */
static size_t
want_align(size_t size, size_t maxclass)
{
	if (size <= maxclass && is_p2(size) && size >= KMEM_ALIGN)
		return (size < 4096 ? size : 4096);
	return (KMEM_ALIGN);
}

/*
 * Every size from 1 to SMALL_MAX: all live at once (so that overlapping
 * buffers would show), each filled whole and checked before it is freed.
 */
START_TEST(test_every_small_size)
{
	void **bufs = calloc(SMALL_MAX + 1, sizeof (void *));
	size_t maxc = max_class();

	ck_assert_ptr_nonnull(bufs);
	for (size_t s = 1; s <= SMALL_MAX; s++) {
		bufs[s] = kmem_alloc(s, KM_SLEEP);
		ck_assert_msg(bufs[s] != NULL, "kmem_alloc(%zu) = NULL", s);
		ck_assert_msg((uintptr_t)bufs[s] % want_align(s, maxc) == 0,
		    "kmem_alloc(%zu) = %p: not aligned to %zu", s, bufs[s],
		    want_align(s, maxc));
		test_fill(bufs[s], s, s);
	}
	for (size_t s = 1; s <= SMALL_MAX; s++) {
		size_t bad = test_verify(bufs[s], s, s);

		ck_assert_msg(bad == s, "kmem_alloc(%zu) = %p: byte %zu "
		    "overwritten", s, bufs[s], bad);
		kmem_free(bufs[s], s);
	}
	/* And again, one at a time, through the magazines. */
	for (size_t s = 1; s <= SMALL_MAX; s++) {
		void *p = kmem_alloc(s, KM_SLEEP);

		ck_assert_ptr_nonnull(p);
		test_fill(p, s, s + 1);
		ck_assert_uint_eq(test_verify(p, s, s + 1), s);
		kmem_free(p, s);
	}
	free(bufs);
}
END_TEST

/* Sizes up to 2 MiB: powers of two, their neighbours, and odd ones. */
static size_t
sample_sizes(size_t *out, size_t max)
{
	size_t n = 0;
	uint64_t rnd = 0x9e3779b97f4a7c15ULL;

	for (size_t p = 16; p <= (size_t)2 << 20; p *= 2) {
		out[n++] = p - 1;
		out[n++] = p;
		out[n++] = p + 1;
		out[n++] = p + p / 2;
	}
	while (n < max)
		out[n++] = 1 + (size_t)(test_rand(&rnd) % ((size_t)2 << 20));
	return (n);
}

START_TEST(test_sampled_sizes)
{
	size_t sizes[160];
	void *bufs[160];
	size_t n = sample_sizes(sizes, 160);
	size_t maxc = max_class();

	for (size_t i = 0; i < n; i++) {
		bufs[i] = kmem_alloc(sizes[i], KM_SLEEP);
		ck_assert_msg(bufs[i] != NULL, "kmem_alloc(%zu) = NULL",
		    sizes[i]);
		ck_assert_msg((uintptr_t)bufs[i] %
		    want_align(sizes[i], maxc) == 0,
		    "kmem_alloc(%zu) = %p: misaligned", sizes[i], bufs[i]);
		test_fill(bufs[i], sizes[i], i);
	}
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(test_verify(bufs[i], sizes[i], i) == sizes[i],
		    "kmem_alloc(%zu) = %p: overwritten", sizes[i], bufs[i]);
		kmem_free(bufs[i], sizes[i]);
	}
}
END_TEST

static void
dirty_then_check_zero(size_t size, void *(*zalloc)(size_t, int),
    void *(*alloc)(size_t, int), void (*freef)(void *, size_t))
{
	enum { K = 8 };
	void *p[K];

	/* Dirty K buffers of the size and free them: the next come back. */
	for (int i = 0; i < K; i++) {
		p[i] = alloc(size, KM_SLEEP);
		ck_assert_ptr_nonnull(p[i]);
		memset(p[i], 0xa5, size);
	}
	for (int i = 0; i < K; i++)
		freef(p[i], size);
	for (int i = 0; i < K; i++) {
		p[i] = zalloc(size, KM_SLEEP);
		ck_assert_ptr_nonnull(p[i]);
		ck_assert_msg(test_all_zero(p[i], size), "zalloc(%zu) = %p: not "
		    "zeroed", size, p[i]);
		memset(p[i], 0x5a, size);
	}
	for (int i = 0; i < K; i++)
		freef(p[i], size);
}

static void *
kmem_alloc_zero_flag(size_t size, int kmflags)
{
	return (kmem_alloc(size, kmflags | KM_ZERO));
}

START_TEST(test_zalloc_zeroes)
{
	size_t sizes[] = { 1, 7, 8, 24, 100, 128, 1000, 4096, 4097, 12345,
	    65536, 131072, 131073, 300000, (size_t)1 << 20 };

	for (size_t i = 0; i < sizeof (sizes) / sizeof (sizes[0]); i++) {
		dirty_then_check_zero(sizes[i], kmem_zalloc, kmem_alloc,
		    kmem_free);
		dirty_then_check_zero(sizes[i], kmem_alloc_zero_flag,
		    kmem_alloc, kmem_free);
		dirty_then_check_zero(sizes[i], vmem_zalloc, vmem_alloc,
		    vmem_free);
	}
}
END_TEST

/*
 * A zeroed large block that comes from the arena is a new span, zero
 * already: kmem_zalloc and vmem_zalloc leave it untouched, so it costs no
 * page until used (as calloc on glibc's mmap'd chunks).  The sizes are
 * dirtied, freed and reaped first (kmem_reap gives spares back), so that
 * the spans handed out again held data: the arena must have cleared them.
 * Then the same with the dirty block locked (mlock), whose pages refuse
 * MADV_DONTNEED: the arena clears them instead.
 */
START_TEST(test_zalloc_large_untouched)
{
	size_t sizes[] = { (size_t)1 << 20, (size_t)16 << 20 };

	for (size_t i = 0; i < sizeof (sizes) / sizeof (sizes[0]); i++) {
		size_t size = sizes[i];

		for (int locked = 0; locked < 2; locked++) {
			char *p = vmem_alloc(size, KM_SLEEP);
			long faults;

			ck_assert_ptr_nonnull(p);
			memset(p, 0xa5, size);
			if (locked && mlock(p, size) != 0) {
				fprintf(stderr, "mlock(%zu bytes): %s: the "
				    "locked case is not run\n", size,
				    strerror(errno));
				vmem_free(p, size);
				continue;
			}
			vmem_free(p, size);
			kmem_reap();
			faults = test_minor_faults();
			p = vmem_zalloc(size, KM_SLEEP);
			faults = test_minor_faults() - faults;
			ck_assert_ptr_nonnull(p);
#if !defined(KMEM_TSAN) && !defined(KMEM_ASAN)
			/* Their shadow memory faults too. */
			ck_assert_msg((size_t)faults <
			    size / test_page_size() / 16,
			    "vmem_zalloc(%zu): %ld page faults", size, faults);
#endif
			ck_assert_msg(test_all_zero(p, size), "vmem_zalloc(%zu)"
			    " = %p (%s): not zeroed", size, (void *)p,
			    locked ? "locked" : "unlocked");
			if (locked)
				(void) munlock(p, size);
			vmem_free(p, size);
		}
	}
}
END_TEST

/* Above the largest class: the vmem arena directly, no class touched. */
START_TEST(test_large_path)
{
	size_t maxc = max_class();
	size_t sizes[] = { maxc + 1, maxc + 4096, 2 * maxc, 300000,
	    (size_t)1 << 20, ((size_t)1 << 20) + 1, (size_t)5 << 20 };
	void *bufs[sizeof (sizes) / sizeof (sizes[0])];
	size_t n = sizeof (sizes) / sizeof (sizes[0]);
	uint64_t used;

	kmem_reap();
	used = used_total();
	for (size_t i = 0; i < n; i++) {
		bufs[i] = kmem_alloc(sizes[i], KM_SLEEP);
		ck_assert_msg(bufs[i] != NULL, "kmem_alloc(%zu) = NULL",
		    sizes[i]);
		ck_assert_uint_eq((uintptr_t)bufs[i] % KMEM_ALIGN, 0);
		test_fill(bufs[i], sizes[i], i);
	}
	ck_assert_uint_eq(used_total(), used);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_eq(test_verify(bufs[i], sizes[i], i), sizes[i]);
		kmem_free(bufs[i], sizes[i]);
	}
	/* Many times over: the arena takes them back. */
	for (int r = 0; r < 200; r++) {
		size_t s = maxc + 1 + (size_t)r * 4099;
		void *p = kmem_alloc(s, KM_SLEEP);

		ck_assert_ptr_nonnull(p);
		((char *)p)[0] = 1;
		((char *)p)[s - 1] = 2;
		kmem_free(p, s);
	}
}
END_TEST

/* Pages of [buf, buf + len) that are resident (mincore). */
static size_t
resident_pages(const char *buf, size_t len)
{
	size_t n = len / 4096, in = 0;
	unsigned char *vec = malloc(n);

	ck_assert_ptr_nonnull(vec);
	ck_assert_int_eq(mincore((void *)buf, len, vec), 0);
	for (size_t i = 0; i < n; i++)
		in += vec[i] & 1;
	free(vec);
	return (in);
}

/*
 * A large block that grows where it cannot extend moves its pages
 * (ka_large_grow), never copies them: its pages never written stay
 * without memory.  Twice in a row, so that the second move starts from
 * a block of two mappings (the pages the first moved, and the rest of
 * the new span) where the kernel moves several.  Before Linux 6.17
 * mremap cannot move that in one call: blocks there move as one mapping
 * (ka_large_move), and the hook runs that way on any kernel.  (On 6.1,
 * before that, the second step copied the whole block.)
 */
START_TEST(test_large_grow_moves_pages)
{
	size_t size = (size_t)1 << 20;

	/* A transparent huge page would make a whole block resident. */
	ck_assert_int_eq(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0), 0);
	for (int split = 0; split < 2; split++) {
		char *a, *b[2];

		ka_large_move_split(split != 0);
		a = kmem_alloc(size, KM_SLEEP);
		ck_assert_ptr_nonnull(a);
		/* One page resident (a spare keeps its pages). */
		ck_assert_int_eq(madvise(a, size, MADV_DONTNEED), 0);
		a[0] = 1;
		for (int step = 0; step < 2; step++) {
			size_t now = size << step, next = size << (step + 1);
			size_t before = resident_pages(a, now);
			char *q;

			/* Likely right after a: no room to extend. */
			b[step] = kmem_alloc(now, KM_SLEEP);
			ck_assert_ptr_nonnull(b[step]);
			q = ka_large_grow(a, next);
			ck_assert_ptr_nonnull(q);
			a = q;
			ck_assert_int_eq(a[0], 1);
			ck_assert_uint_le(before, 2);
			ck_assert_uint_le(resident_pages(a, next), before);
			a[next - 1] = 2;
		}
		ck_assert_int_eq(a[0], 1);
		kmem_free(a, size << 2);
		for (int step = 0; step < 2; step++)
			kmem_free(b[step], size << step);
	}
	ka_large_move_split(false);
}
END_TEST

/*
 * A block of several mappings (the program gave part of it other madvise
 * flags) cannot move as one where blocks move as one mapping (before
 * Linux 6.17; the hook forces it): it is copied, and the new span goes
 * back to the arena.  Recent kernels refuse such a move before they
 * unmap the destination, which the arena then found still mapped and
 * kept, unused, for good: 2 MiB of arena_inuse lost per realloc.
 */
START_TEST(test_large_grow_several_mappings)
{
	size_t size = (size_t)1 << 20;
	struct vmem_usage u0, u1;

	kmem_reap();
	vmem_usage(&u0);
	ka_large_move_split(true);
	for (int i = 0; i < 4; i++) {
		char *a = kmem_alloc(size, KM_SLEEP);
		char *b = kmem_alloc(size, KM_SLEEP);   /* no room to extend */
		char *q;

		ck_assert_ptr_nonnull(a);
		ck_assert_ptr_nonnull(b);
		memset(a, 0x5a, size);
		ck_assert_int_eq(madvise(a + size / 2, 4096, MADV_DONTFORK), 0);
		q = ka_large_grow(a, 2 * size);
		if (q != NULL)
			a = q;
		for (size_t j = 0; j < size; j += 4096)
			ck_assert_int_eq(a[j], 0x5a);
		kmem_free(a, q != NULL ? 2 * size : size);
		kmem_free(b, size);
	}
	ka_large_move_split(false);
	kmem_reap();
	vmem_usage(&u1);
	ck_assert_uint_le(u1.inuse, u0.inuse);
}
END_TEST

#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)   /* they need their mmap */
/*
 * mremap as a kernel that refuses a MREMAP_DONTUNMAP move does (Linux
 * before 6.17 with a block of several mappings): it unmaps the
 * destination, new_len bytes, then fails with EFAULT.  The library calls
 * mremap through the PLT, so this definition replaces the C library's.
 */
static _Atomic bool mremap_refuse_dontunmap;

void *
mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *new_addr = NULL;

	if (flags & MREMAP_FIXED) {
		va_list ap;

		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
#ifdef MREMAP_DONTUNMAP
	if (atomic_load(&mremap_refuse_dontunmap) &&
	    (flags & MREMAP_DONTUNMAP)) {
		(void) munmap(new_addr, new_len);
		errno = EFAULT;
		return (MAP_FAILED);
	}
#endif
	return ((void *)syscall(SYS_mremap, old, old_len, new_len, flags,
	    new_addr));
}

/*
 * mmap, failing for metadata chunks (1 MiB: META_CHUNK) while set.  The
 * library calls mmap through the PLT, so this replaces the C library's.
 */
static _Atomic bool fail_meta_chunks;

void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (atomic_load(&fail_meta_chunks) && len == ((size_t)1 << 20)) {
		errno = ENOMEM;
		return (MAP_FAILED);
	}
	return ((void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off));
}

/*
 * A block whose move the kernel refuses having unmapped the destination
 * (EFAULT) still grows: the part of the new span that mremap unmapped is
 * mapped again, and the block moves as one mapping (ka_large_move).  The
 * new span is neither lost nor kept unused: once everything is freed the
 * arena has no more in use than before.
 */
START_TEST(test_large_grow_move_refused)
{
	size_t size = (size_t)1 << 20;
	struct vmem_usage u0, u1;
	char *a, *b, *q;

	kmem_reap();
	vmem_usage(&u0);
	a = kmem_alloc(size, KM_SLEEP);
	ck_assert_ptr_nonnull(a);
	memset(a, 0x5a, size);
	b = kmem_alloc(size, KM_SLEEP);         /* no room to extend */
	ck_assert_ptr_nonnull(b);
	atomic_store(&mremap_refuse_dontunmap, true);
	q = ka_large_grow(a, 2 * size);
	atomic_store(&mremap_refuse_dontunmap, false);
	ka_large_move_split(false);
	if (q != NULL)
		a = q;
	for (size_t i = 0; i < size; i += 4096)
		ck_assert_int_eq(a[i], 0x5a);
	kmem_free(a, q != NULL ? 2 * size : size);
	kmem_free(b, size);
	kmem_reap();
	vmem_usage(&u1);
	ck_assert_uint_le(u1.inuse, u0.inuse);
	ck_assert_ptr_nonnull(q);
}
END_TEST
#endif

/*
 * The --nosleep-spares copy, which starts the arena under an address-space
 * limit (RLIMIT_AS, ulimit -v) of its size plus 256 MiB: 1 MiB blocks
 * until KM_NOSLEEP fails, all freed (kept as spares, up to 128 MiB), then
 * 2 MiB blocks, which no spare fits, until KM_NOSLEEP fails.  Their
 * address space is there once the spares go back, so the 2 MiB blocks
 * must get about as many bytes as the 1 MiB ones did (a region of slack):
 * KM_NOSLEEP failed with the spares still held.  Exits 0 when they do.
 */
#define NS_MAX  512

/* The process's address space in bytes (VmSize), 0 if unknown. */
static size_t
vm_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t kb = 0;

	if (f == NULL)
		return (0);
	while (fgets(line, sizeof (line), f) != NULL &&
	    sscanf(line, "VmSize: %zu kB", &kb) != 1)
		continue;
	(void) fclose(f);
	return (kb << 10);
}

static int
nosleep_spares(void)
{
	size_t mb = (size_t)1 << 20, vm = vm_bytes();
	static void *v[NS_MAX];
	struct rlimit rl;
	int n1 = 0, n2 = 0;

	if (vm == 0)
		return (2);
	rl.rlim_cur = rl.rlim_max = vm + 256 * mb;
	if (setrlimit(RLIMIT_AS, &rl) != 0)
		return (2);
	while (n1 < NS_MAX && (v[n1] = vmem_alloc(mb, KM_NOSLEEP)) != NULL)
		n1++;
	if (n1 == NS_MAX || n1 < 64)
		return (3);             /* the limit was not what ended it */
	for (int i = 0; i < n1; i++)
		vmem_free(v[i], mb);
	while (n2 < NS_MAX && (v[n2] = vmem_alloc(2 * mb, KM_NOSLEEP)) != NULL)
		n2++;
	for (int i = 0; i < n2; i++)
		vmem_free(v[i], 2 * mb);
	printf("%d 1 MiB blocks, then %d 2 MiB blocks\n", n1, n2);
	return (2 * n2 + 32 >= n1 ? 0 : 1);
}

#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)   /* their shadow: no limit */
/* KM_NOSLEEP gives back the spares before it fails for want of room. */
START_TEST(test_large_nosleep_drops_spares)
{
	char out[256];
	int status = run_copy("--nosleep-spares", "128K", STDOUT_FILENO, out,
	    sizeof (out));

	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "KM_NOSLEEP with spares kept: status %#x, %s", status, out);
}
END_TEST
#endif

/*
 * The bootstrap arena (ka_boot_alloc): a request that does not fit takes
 * nothing, so smaller ones still get blocks; and requests made before
 * libkmem_malloc's constructor (ka_boot_alloc_early), however many, leave
 * a quarter of it to the start-up's nested ones (the kmem taskq's
 * pthread_create).  Nothing in this program used the arena before.
 */
START_TEST(test_boot_arena)
{
	size_t big = (size_t)1 << 20;           /* the whole arena */
	int early = 0;
	char *p;

	errno = 0;
	ck_assert_ptr_null(ka_boot_alloc(big, 16));
	ck_assert_int_eq(errno, ENOMEM);
	p = ka_boot_alloc(4096, 16);
	ck_assert_msg(p != NULL, "a failed bootstrap request used up the "
	    "arena");
	memset(p, 1, 4096);
	while (ka_boot_alloc_early(10000, 16) != NULL)
		early++;
	ck_assert_int_gt(early, 50);
	while (ka_boot_alloc_early(16, 16) != NULL)
		continue;               /* its last bytes too */
	for (int i = 0; i < 20; i++) {
		p = ka_boot_alloc(10000, 64);
		ck_assert_msg(p != NULL, "nested bootstrap request %d: no "
		    "room left", i);
		ck_assert_uint_eq((uintptr_t)p % 64, 0);
		memset(p, 2, 10000);
	}
}
END_TEST

/*
 * A working set of large blocks freed and allocated again is served from
 * the spans kept (64 MiB of 256 KiB blocks: within what one thread may
 * keep), with their pages: touching them again faults nothing in (each
 * block faulted twice when they were unmapped).  A memory pressure reap
 * in between would give them back: three tries.
 */
START_TEST(test_large_working_set_kept)
{
	enum { N = 256, SZ = 256 << 10 };
	char **p = calloc(N, sizeof (*p));
	long faults = 0;

	for (int attempt = 0; attempt < 3; attempt++) {
		for (int i = 0; i < N; i++) {
			p[i] = kmem_alloc(SZ, KM_SLEEP);
			p[i][0] = p[i][SZ - 1] = (char)i;
		}
		for (int i = N; i-- > 0;)
			kmem_free(p[i], SZ);
		faults = test_minor_faults();
		for (int i = 0; i < N; i++) {
			p[i] = kmem_alloc(SZ, KM_SLEEP);
			p[i][0] = p[i][SZ - 1] = (char)i;
		}
		faults = test_minor_faults() - faults;
		for (int i = 0; i < N; i++)
			kmem_free(p[i], SZ);
		if (faults < N / 4)
			break;
	}
	ck_assert_msg(faults < N / 4, "%ld page faults touching %d blocks "
	    "allocated again", faults, N);
	free(p);
}
END_TEST

/*
 * A program that asks only for large blocks creates no cache, yet the
 * spans it frees and libkmem keeps go back kmem_cache_expire after (on
 * an aging pass), as kmem_alloc(3) says: the large path starts aging.
 * Every test runs in a process of its own, so none had started it.
 */
START_TEST(test_large_spares_age)
{
	enum { N = 8, SZ = 4 << 20 };
	char *p[N];
	struct vmem_usage u;
	double t0;

	ck_assert_int_eq(kmem_tunable_set("kmem_reap_interval", 1), 0);
	ck_assert_int_eq(kmem_tunable_set("kmem_cache_expire", 1), 0);
	for (int i = 0; i < N; i++) {
		p[i] = kmem_alloc(SZ, KM_SLEEP);
		ck_assert_ptr_nonnull(p[i]);
		memset(p[i], i, SZ);
	}
	for (int i = 0; i < N; i++)
		kmem_free(p[i], SZ);
	vmem_usage(&u);
	ck_assert_uint_ge(u.inuse, (size_t)N * SZ);     /* kept as spares */
	t0 = test_now();
	do {
		usleep(50000);
		vmem_usage(&u);
	} while (u.inuse >= SZ && test_now() - t0 < 20);
	ck_assert_msg(u.inuse < SZ, "%zu MiB of freed large blocks still "
	    "mapped %.1f s later (interval 1 s, expire 1 s)", u.inuse >> 20,
	    test_now() - t0);
}
END_TEST

/* vmem_alloc serves any size, small ones included. */
START_TEST(test_vmem_family)
{
	size_t sizes[] = { 1, 8, 100, 4096, 65536, 131072, 131073,
	    (size_t)1 << 20, (size_t)3 << 20 };
	void *bufs[sizeof (sizes) / sizeof (sizes[0])];
	size_t n = sizeof (sizes) / sizeof (sizes[0]);

	for (size_t i = 0; i < n; i++) {
		bufs[i] = vmem_alloc(sizes[i], KM_SLEEP);
		ck_assert_ptr_nonnull(bufs[i]);
		ck_assert_uint_eq((uintptr_t)bufs[i] % KMEM_ALIGN, 0);
		test_fill(bufs[i], sizes[i], i + 7);
	}
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_eq(test_verify(bufs[i], sizes[i], i + 7), sizes[i]);
		vmem_free(bufs[i], sizes[i]);
	}
}
END_TEST

START_TEST(test_nosleep_absurd)
{
	size_t sizes[] = { huge_size, SIZE_MAX, SIZE_MAX - 4095,
	    (size_t)1 << 62 };

	for (size_t i = 0; i < sizeof (sizes) / sizeof (sizes[0]); i++) {
		size_t s = sizes[i] + (huge_size - huge_size);

		errno = 0;
		ck_assert_ptr_null(kmem_alloc(s, KM_NOSLEEP));
		ck_assert_int_eq(errno, ENOMEM);
		errno = 0;
		ck_assert_ptr_null(kmem_zalloc(s, KM_NOSLEEP));
		ck_assert_int_eq(errno, ENOMEM);
		errno = 0;
		ck_assert_ptr_null(vmem_alloc(s, KM_NOSLEEP));
		ck_assert_int_eq(errno, ENOMEM);
	}
	/* Still works afterwards. */
	void *p = kmem_alloc(100, KM_NOSLEEP);

	ck_assert_ptr_nonnull(p);
	kmem_free(p, 100);
}
END_TEST

struct sleep_huge {
	void *ret;
	int err;
};

static void
alloc_huge_sleep(void *arg)
{
	struct sleep_huge *h = arg;

	errno = 0;
	h->ret = kmem_alloc(huge_size, KM_SLEEP);
	h->err = errno;
}

/* KM_SLEEP cannot wait for more than the address space: NULL, reported. */
START_TEST(test_sleep_absurd_reported)
{
	struct sleep_huge h = { (void *)1, 0 };
	char out[1024];

	test_capture_stderr(alloc_huge_sleep, &h, out, sizeof (out));
	ck_assert_ptr_null(h.ret);
	ck_assert_msg(strncmp(out, "libkmem: ", 9) == 0,
	    "no report on stderr, got \"%s\"", out);
	ck_assert_msg(strchr(out, '\n') == out + strlen(out) - 1,
	    "not one line: \"%s\"", out);
}
END_TEST

/*
 * A large KM_SLEEP request that finds no memory waits for it (one line on
 * standard error) and never returns NULL: as a cache's KM_SLEEP does and
 * as kmem_alloc(3) says.  It returned NULL after four tries.
 */
struct sleep_wait {
	size_t size;
	void *ret;
	_Atomic bool done;
};

static void *
alloc_sleep_wait(void *arg)
{
	struct sleep_wait *w = arg;

	w->ret = kmem_alloc(w->size, KM_SLEEP);
	atomic_store(&w->done, true);
	return (NULL);
}

START_TEST(test_large_sleep_waits)
{
	struct sleep_wait w = { ((size_t)3 << 20) + 5, NULL, false };
	pthread_t t;

	vmem_inject_failures(-1);               /* no span can be had */
	ck_assert_int_eq(pthread_create(&t, NULL, alloc_sleep_wait, &w), 0);
	usleep(300 * 1000);
	ck_assert_msg(!atomic_load(&w.done), "KM_SLEEP returned %p without "
	    "memory", w.ret);
	vmem_inject_failures(0);                /* memory again */
	pthread_join(t, NULL);
	ck_assert_ptr_nonnull(w.ret);
	memset(w.ret, 1, w.size);
	kmem_free(w.ret, w.size);
}
END_TEST

#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)   /* their shadow: no limit */
/*
 * One larger than RLIMIT_AS allows can never be had: NULL (reported), not
 * a wait for good.  (Check runs each test in a child: the limit ends
 * with it.)
 */
START_TEST(test_large_sleep_beyond_limit)
{
	struct sleep_wait w = { (size_t)512 << 20, (void *)1, false };
	struct rlimit rl, old;
	pthread_t t;
	double end;

	ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
	rl = old;
	rl.rlim_cur = vm_bytes() + ((size_t)256 << 20);
	if (rl.rlim_cur > old.rlim_cur)
		return;                 /* a lower limit is set already */
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, alloc_sleep_wait, &w), 0);
	end = test_now() + 5;
	while (!atomic_load(&w.done) && test_now() < end)
		usleep(10 * 1000);
	ck_assert_msg(atomic_load(&w.done), "KM_SLEEP waits for good for a "
	    "block larger than RLIMIT_AS");
	pthread_join(t, NULL);
	ck_assert_ptr_null(w.ret);
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
}
END_TEST

/*
 * A large KM_SLEEP request that finds no metadata block for its
 * descriptor (every block in use, and no chunk can be mapped) is short of
 * memory as one that finds no span: it reaps and waits, and gets its
 * block once memory is back.  It returned NULL at once.
 */
START_TEST(test_large_sleep_no_metadata)
{
	struct sleep_wait w = { ((size_t)3 << 20) + 7, NULL, false };
	size_t n = 0, cap = 1 << 16;
	void **blk = calloc(cap, sizeof (*blk));
	pthread_t t;
	void *p;

	ck_assert_ptr_nonnull(blk);
	atomic_store(&fail_meta_chunks, true);
	while (n < cap && (p = meta_alloc()) != NULL)
		blk[n++] = p;
	ck_assert_uint_lt(n, cap);
	ck_assert_int_eq(pthread_create(&t, NULL, alloc_sleep_wait, &w), 0);
	usleep(300 * 1000);
	while (n > 0)                           /* memory again */
		meta_free(blk[--n]);
	atomic_store(&fail_meta_chunks, false);
	pthread_join(t, NULL);
	ck_assert_msg(w.ret != NULL, "KM_SLEEP returned NULL for want of "
	    "a metadata block");
	memset(w.ret, 1, w.size);
	kmem_free(w.ret, w.size);
	free(blk);
}
END_TEST
#endif

static void
alloc_bad_flags(void *arg)
{
	struct sleep_huge *h = arg;

	errno = 0;
	h->ret = kmem_alloc(100, 0x20000000);   /* an internal bit, too */
	h->err = errno;
}

/* Unknown kmflags: NULL, EINVAL and one line, for classes and large. */
START_TEST(test_bad_flags_reported)
{
	struct sleep_huge h = { (void *)1, 0 };
	char out[1024];

	test_capture_stderr(alloc_bad_flags, &h, out, sizeof (out));
	ck_assert_ptr_null(h.ret);
	ck_assert_int_eq(h.err, EINVAL);
	ck_assert_msg(strncmp(out, "libkmem: kmem_alloc(100): unknown "
	    "kmflags", 34) == 0, "no report on stderr, got \"%s\"", out);
	ck_assert_msg(strchr(out, '\n') == out + strlen(out) - 1,
	    "not one line: \"%s\"", out);
	errno = 0;
	ck_assert_ptr_null(vmem_alloc((size_t)4 << 20, KM_NOSLEEP | 0x100));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* ------------------------------------------------------------ threads */

#define NTHREADS        4

struct worker {
	pthread_t tid;
	int id;
	_Atomic int *errors;
};

static void *
worker_thread(void *arg)
{
	struct worker *w = arg;
	uint64_t rnd = 0x1234567ULL * (uint64_t)(w->id + 1);
	enum { SLOTS = 256 };
	void *p[SLOTS] = { NULL };
	size_t sz[SLOTS];
	double end = test_now() + test_seconds(1.0);
	size_t iter = 0;

	while (test_now() < end || iter < 20000) {
		for (int k = 0; k < 64; k++, iter++) {
			int i = (int)(test_rand(&rnd) % SLOTS);

			if (p[i] != NULL) {
				if (test_verify(p[i], sz[i], (size_t)i) != sz[i])
					atomic_fetch_add(w->errors, 1);
				kmem_free(p[i], sz[i]);
				p[i] = NULL;
				continue;
			}
			sz[i] = 1 + (size_t)(test_rand(&rnd) %
			    (test_rand(&rnd) % 8 == 0 ? 200000 : 2048));
			p[i] = kmem_alloc(sz[i], KM_SLEEP);
			if (p[i] == NULL) {
				atomic_fetch_add(w->errors, 1);
				continue;
			}
			test_fill(p[i], sz[i], (size_t)i);
		}
	}
	for (int i = 0; i < SLOTS; i++) {
		if (p[i] == NULL)
			continue;
		if (test_verify(p[i], sz[i], (size_t)i) != sz[i])
			atomic_fetch_add(w->errors, 1);
		kmem_free(p[i], sz[i]);
	}
	return (NULL);
}

START_TEST(test_threads)
{
	struct worker w[NTHREADS];
	_Atomic int errors = 0;

	for (int i = 0; i < NTHREADS; i++) {
		w[i].id = i;
		w[i].errors = &errors;
		ck_assert_int_eq(pthread_create(&w[i].tid, NULL,
		    worker_thread, &w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(w[i].tid, NULL);
	ck_assert_int_eq(atomic_load(&errors), 0);
	kmem_reap();
	ck_assert_uint_eq(used_total(), 0);
}
END_TEST

/*
 * obj_used is alloc - free summed over CPUs while other threads allocate
 * and free: a free may be counted whose allocation was not yet (the
 * sums are read CPU by CPU, allocations before frees).  The difference
 * must never wrap to a count near 2^64.
 */
static void *
pair_thread(void *arg)
{
	_Atomic bool *stop = arg;

	while (!atomic_load(stop)) {
		void *p = kmem_alloc(64, KM_SLEEP);

		kmem_free(p, 64);
	}
	return (NULL);
}

START_TEST(test_class_obj_used_concurrent)
{
	int idx = class_of(64);
	pthread_t t[NTHREADS];
	_Atomic bool stop = false;
	double end = test_now() + test_seconds(1.0);
	uint64_t wrapped = 0, worst = 0;

	kmem_free(kmem_alloc(64, KM_SLEEP), 64);
	for (int i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, pair_thread,
		    &stop), 0);
	while (test_now() < end) {
		uint64_t used = class_stats(idx).obj_used;

		if (used > INT64_MAX) {
			wrapped++;
			worst = used;
		}
	}
	atomic_store(&stop, true);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	ck_assert_msg(wrapped == 0, "obj_used wrapped %" PRIu64 " times, "
	    "e.g. %" PRIu64, wrapped, worst);
}
END_TEST

int
main(int argc, char **argv)
{
	Suite *s;
	TCase *cls, *alloc, *thr;

	if (argc > 1 && strcmp(argv[1], "--classes") == 0)
		return (print_classes());
	if (argc > 1 && strcmp(argv[1], "--nocache") == 0)
		return (alloc_nocache());
	if (argc > 1 && strcmp(argv[1], "--nosleep-spares") == 0)
		return (nosleep_spares());
	s = suite_create("alloc");
	cls = tcase_create("classes");
	alloc = tcase_create("alloc");
	thr = tcase_create("threads");
	tcase_set_timeout(cls, 60);
	tcase_add_test(cls, test_class_list);
	tcase_add_test(cls, test_class_index_range);
	tcase_add_test(cls, test_class_obj_used);
	tcase_add_test(cls, test_class_between);
	tcase_add_test(cls, test_class_freeable);
	tcase_add_test(cls, test_max_class_tunable);
	tcase_add_test(cls, test_class_larger_than_cache);
	suite_add_tcase(s, cls);
	tcase_set_timeout(alloc, 60);
	tcase_add_test(alloc, test_size_zero);
	tcase_add_test(alloc, test_every_small_size);
	tcase_add_test(alloc, test_sampled_sizes);
	tcase_add_test(alloc, test_zalloc_zeroes);
	tcase_add_test(alloc, test_zalloc_large_untouched);
	tcase_add_test(alloc, test_large_path);
	tcase_add_test(alloc, test_vmem_family);
	tcase_add_test(alloc, test_nosleep_absurd);
	tcase_add_test(alloc, test_sleep_absurd_reported);
	tcase_add_test(alloc, test_large_sleep_waits);
	tcase_add_test(alloc, test_bad_flags_reported);
	tcase_add_test(alloc, test_free_size_zero_reported);
	tcase_add_test(alloc, test_boot_arena);
	tcase_add_test(alloc, test_large_working_set_kept);
	tcase_add_test(alloc, test_large_spares_age);
	tcase_add_test(alloc, test_large_grow_moves_pages);
	tcase_add_test(alloc, test_large_grow_several_mappings);
#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)
	tcase_add_test(alloc, test_large_grow_move_refused);
	tcase_add_test(alloc, test_large_nosleep_drops_spares);
	tcase_add_test(alloc, test_large_sleep_beyond_limit);
	tcase_add_test(alloc, test_large_sleep_no_metadata);
#endif
	suite_add_tcase(s, alloc);
	tcase_set_timeout(thr, 60);
	tcase_add_test(thr, test_threads);
	tcase_add_test(thr, test_class_obj_used_concurrent);
	suite_add_tcase(s, thr);
	return (test_run_suite(s));
}
