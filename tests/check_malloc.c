/*
 * check_malloc.c - libkmem_malloc.so, the malloc replacement: this program
 * is linked with it, so its malloc (and Check's) is libkmem's.  malloc(0),
 * huge sizes, calloc's overflow check and zeroing, realloc's corner cases
 * and contents, reallocarray, every power-of-two alignment up to 1 MiB
 * (posix_memalign, memalign, aligned_alloc, valloc, pvalloc),
 * malloc_usable_size, foreign pointers given to free, fork, exiting
 * threads, signals kept off libkmem's threads, allocation from a
 * constructor, a realloc nested in the creation of a class, threads
 * cancelled while they allocate, a class first used once memory has run
 * out.  Uses the C library's API, and libkmem's
 * only to make a cache of its own (an object of it is no malloc block) and
 * to set kmem_debug.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libkmem/kmem.h"
#include "testutil.h"

#define MAX_ALIGN       ((size_t)1 << 20)       /* 1 MiB */

/*
 * Sizes and pointers the compiler must not reason about
 * (-Walloc-size-larger-than, -Wfree-nonheap-object).
 */
static volatile size_t v_zero = 0;
static volatile size_t v_huge = SIZE_MAX / 2;

static size_t
launder_size(size_t x)
{
	return (x + v_zero);
}

/*
 * An allocation's result must be computed: the compiler may otherwise drop
 * an unused malloc and assume it succeeded.
 */
static void *volatile sink;

static void *
kept(void *p)
{
	sink = p;
	return (p);
}

static void *
launder_ptr(void *p)
{
	void *volatile vp = p;

	return (vp);
}

/*
 * An address to check the alignment of: the compiler may not assume what
 * posix_memalign, aligned_alloc or memalign promise (it folds such checks
 * away otherwise).
 */
static uintptr_t
addr(void *p)
{
	return ((uintptr_t)launder_ptr(p));
}

/* ------------------------------------------------------------ before main */

/* Allocated by a constructor, before main (and perhaps before libkmem). */
static char *early_buf;
static void *early_zero;

__attribute__((constructor)) static void
early_alloc(void)
{
	early_buf = malloc(1000);
	if (early_buf != NULL)
		memset(early_buf, 'e', 1000);
	early_zero = calloc(10, 10);
	free(malloc(37));
}

START_TEST(test_constructor_alloc)
{
	ck_assert_ptr_nonnull(early_buf);
	ck_assert_ptr_nonnull(early_zero);
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(early_buf[i], 'e');
	ck_assert(test_all_zero(early_zero, 100));
	ck_assert_uint_ge(malloc_usable_size(early_buf), 1000);
	early_buf = realloc(early_buf, 100000);
	ck_assert_ptr_nonnull(early_buf);
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(early_buf[i], 'e');
	free(early_buf);
	free(early_zero);
}
END_TEST

/* ------------------------------------------------------------ malloc */

START_TEST(test_malloc_zero)
{
	enum { N = 200 };
	void *p[N];

	for (int i = 0; i < N; i++) {
		p[i] = malloc(launder_size(0));
		ck_assert_msg(p[i] != NULL, "malloc(0) = NULL");
		for (int j = 0; j < i; j++)
			ck_assert_msg(p[i] != p[j], "malloc(0) returned %p "
			    "twice", p[i]);
	}
	for (int i = 0; i < N; i++)
		free(p[i]);
	free(NULL);
}
END_TEST

START_TEST(test_huge_sizes)
{
	size_t sizes[] = { v_huge, SIZE_MAX, SIZE_MAX - 4095,
	    (size_t)1 << 62, (size_t)1 << 56 };
	char *keep = malloc(100);

	ck_assert_ptr_nonnull(keep);
	test_fill(keep, 100, 3);
	for (size_t i = 0; i < sizeof (sizes) / sizeof (sizes[0]); i++) {
		size_t s = launder_size(sizes[i]);
		void *p = (void *)1;

		errno = 0;
		ck_assert_msg(kept(malloc(s)) == NULL, "malloc(%zu) != NULL",
		    s);
		ck_assert_int_eq(errno, ENOMEM);
		errno = 0;
		ck_assert_ptr_null(kept(calloc(s, 1)));
		ck_assert_int_eq(errno, ENOMEM);
		errno = 0;
		ck_assert_ptr_null(kept(realloc(NULL, s)));
		ck_assert_int_eq(errno, ENOMEM);
		/* A failed realloc leaves the block as it was. */
		errno = 0;
		ck_assert_ptr_null(kept(realloc(keep, s)));
		ck_assert_int_eq(errno, ENOMEM);
		ck_assert_uint_eq(test_verify(keep, 100, 3), 100);
		ck_assert_int_eq(posix_memalign(&p, 64, s), ENOMEM);
		ck_assert_ptr_eq(p, (void *)1);
		errno = 0;
		ck_assert_ptr_null(kept(memalign(4096, s)));
		ck_assert_int_eq(errno, ENOMEM);
		errno = 0;
		ck_assert_ptr_null(kept(aligned_alloc(4096,
		    s & ~(size_t)4095)));
		ck_assert_int_eq(errno, ENOMEM);
		errno = 0;
		ck_assert_ptr_null(kept(valloc(s)));
		ck_assert_int_eq(errno, ENOMEM);
		errno = 0;
		ck_assert_ptr_null(kept(pvalloc(s)));
		ck_assert_int_eq(errno, ENOMEM);
	}
	free(keep);
	/* Still works afterwards. */
	keep = malloc(5000);
	ck_assert_ptr_nonnull(keep);
	free(keep);
}
END_TEST

/* Many sizes at once, each filled to its usable size and checked. */
static size_t
test_sizes(size_t *out, size_t max)
{
	size_t n = 0;
	uint64_t rnd = 0xdeadbeefcafeULL;

	for (size_t s = 1; s <= 600 && n < max; s++)
		out[n++] = s;
	for (size_t p = 1024; p <= ((size_t)4 << 20) && n + 3 <= max; p *= 2) {
		out[n++] = p - 1;
		out[n++] = p;
		out[n++] = p + 1;
	}
	while (n < max)
		out[n++] = 1 + (size_t)(test_rand(&rnd) % 300000);
	return (n);
}

START_TEST(test_usable_size)
{
	enum { N = 1000 };
	static size_t sizes[N];
	static void *p[N];
	static size_t usable[N];
	size_t n = test_sizes(sizes, N);

	ck_assert_uint_eq(malloc_usable_size(NULL), 0);
	for (size_t i = 0; i < n; i++) {
		p[i] = malloc(sizes[i]);
		ck_assert_msg(p[i] != NULL, "malloc(%zu) = NULL", sizes[i]);
		usable[i] = malloc_usable_size(p[i]);
		ck_assert_msg(usable[i] >= sizes[i], "malloc_usable_size("
		    "malloc(%zu)) = %zu", sizes[i], usable[i]);
		/* Every usable byte is the caller's. */
		test_fill(p[i], usable[i], i);
	}
	for (size_t i = 0; i < n; i++) {
		size_t bad = test_verify(p[i], usable[i], i);

		ck_assert_msg(bad == usable[i], "malloc(%zu) = %p: byte %zu "
		    "of %zu usable overwritten", sizes[i], p[i], bad,
		    usable[i]);
		free(p[i]);
	}
}
END_TEST

/*
 * Every size from 4 KiB to 128 KiB (the default largest class), asked
 * for twice: the first request may create its class's cache (the slow
 * path), the second finds it in malloc's table for sizes above 4 KiB.
 * Both get a block of the same class (its usable size), at least as large
 * as asked, and larger sizes never get a smaller class.
 */
START_TEST(test_class_sizes_above_4k)
{
	size_t last = 0;

	for (size_t size = 4097; size <= ((size_t)128 << 10); size++) {
		void *a = malloc(size), *b;
		size_t ua, ub;

		ck_assert_ptr_nonnull(a);
		ua = malloc_usable_size(a);
		free(a);
		b = malloc(size);
		ck_assert_ptr_nonnull(b);
		ub = malloc_usable_size(b);
		((volatile char *)b)[0] = 1;
		((volatile char *)b)[size - 1] = 1;
		free(b);
		ck_assert_msg(ua == ub && ub >= size && ub >= last,
		    "malloc(%zu): %zu usable, then %zu (the size before: %zu)",
		    size, ua, ub, last);
		last = ub;
	}
}
END_TEST

/*
 * malloc's blocks are aligned for any type that fits them: 8 bytes below
 * 16, and _Alignof(max_align_t) (16 on x86-64) from 16 bytes on, as
 * glibc's (C11 7.22.3; SSE code relies on it).
 */
START_TEST(test_malloc_alignment)
{
	size_t maxal = _Alignof(max_align_t);

	for (size_t s = 1; s <= 70000; s += s < 1024 ? 1 : 97) {
		void *p = malloc(s);
		size_t want = s < maxal ? 8 : maxal;

		ck_assert_ptr_nonnull(p);
		ck_assert_msg(addr(p) % want == 0, "malloc(%zu) = %p: "
		    "not %zu-byte aligned", s, p, want);
		free(p);
	}
}
END_TEST

/* ------------------------------------------------------------ calloc */

START_TEST(test_calloc_overflow)
{
	size_t big = launder_size((size_t)1 << (sizeof (size_t) * 4));
	struct { size_t n, m; } cases[] = {
		{ big, big }, { SIZE_MAX, 2 }, { 2, SIZE_MAX },
		{ v_huge + 1, 2 }, { SIZE_MAX / 3 + 1, 3 },
		{ SIZE_MAX, SIZE_MAX },
	};

	for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
		errno = 0;
		ck_assert_msg(kept(calloc(launder_size(cases[i].n),
		    launder_size(cases[i].m))) == NULL, "calloc(%zu, %zu) "
		    "!= NULL", cases[i].n, cases[i].m);
		ck_assert_int_eq(errno, ENOMEM);
	}
	/* Zero elements of any size, or zero-sized elements: not NULL. */
	void *p = calloc(launder_size(0), launder_size(SIZE_MAX));
	void *q = calloc(launder_size(SIZE_MAX), launder_size(0));

	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(q);
	free(p);
	free(q);
}
END_TEST

/* Dirty blocks, free them, calloc the same sizes: zeroes every time. */
START_TEST(test_calloc_zeroes)
{
	size_t sizes[] = { 1, 8, 15, 16, 100, 1000, 4096, 5000, 65536,
	    131072, 131073, 300000, (size_t)2 << 20 };

	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < sizeof (sizes) / sizeof (sizes[0]);
		    i++) {
			enum { K = 16 };
			void *p[K];
			size_t s = sizes[i];

			for (int k = 0; k < K; k++) {
				p[k] = malloc(s);
				ck_assert_ptr_nonnull(p[k]);
				memset(p[k], 0xc3, malloc_usable_size(p[k]));
			}
			for (int k = 0; k < K; k++)
				free(p[k]);
			for (int k = 0; k < K; k++) {
				p[k] = calloc(1, s);
				ck_assert_ptr_nonnull(p[k]);
				ck_assert_msg(test_all_zero(p[k], s),
				    "calloc(1, %zu) = %p: not zeroed", s,
				    p[k]);
				memset(p[k], 0x3c, s);
			}
			for (int k = 0; k < K; k++)
				free(p[k]);
			/* As n elements of m bytes. */
			p[0] = calloc(s, 3);
			ck_assert_ptr_nonnull(p[0]);
			ck_assert(test_all_zero(p[0], 3 * s));
			free(p[0]);
		}
	}
}
END_TEST

/*
 * A large calloc is a new span of the arena, zero already: it is not
 * cleared, so it faults no page in until the program writes it (glibc's
 * and jemalloc's calloc do the same with fresh mappings).  Dirtied and
 * freed, it comes back as a spare that holds its pages, and that calloc
 * clears.
 */
START_TEST(test_calloc_large_untouched)
{
	size_t size = (size_t)32 << 20;
	long faults = test_minor_faults();
	char *p = calloc(size / 64, 64);

	faults = test_minor_faults() - faults;
	ck_assert_ptr_nonnull(p);
#if !defined(KMEM_TSAN) && !defined(KMEM_ASAN)
	ck_assert_msg((size_t)faults < size / test_page_size() / 16,
	    "calloc of %zu bytes: %ld page faults", size, faults);
#endif
	ck_assert(test_all_zero(p, size));
	memset(p, 0x7e, size);
	free(p);
	p = calloc(1, size);
	ck_assert_ptr_nonnull(p);
	ck_assert_msg(test_all_zero(p, size), "calloc(1, %zu) = %p after a "
	    "free of that size: not zeroed", size, (void *)p);
	free(p);
}
END_TEST

/* ------------------------------------------------------------ realloc */

START_TEST(test_realloc_null_and_zero)
{
	char *p = realloc(NULL, 100);

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_ge(malloc_usable_size(p), 100);
	memset(p, 1, 100);
	/* realloc(p, 0) frees p and returns NULL, as glibc's does. */
	ck_assert_ptr_null(realloc(p, launder_size(0)));
	/* realloc(NULL, 0) is malloc(0). */
	p = realloc(NULL, launder_size(0));
	ck_assert_ptr_nonnull(p);
	free(p);
	/* Many times: the freed blocks do not leak or break anything. */
	for (int i = 0; i < 10000; i++) {
		p = realloc(NULL, (size_t)(i % 3000) + 1);
		ck_assert_ptr_nonnull(p);
		p[0] = 'x';
		ck_assert_ptr_null(realloc(p, launder_size(0)));
	}
}
END_TEST

/* Grow one byte at a time, then in steps to 4 MiB, then shrink back. */
START_TEST(test_realloc_contents)
{
	size_t size = 1;
	char *p = malloc(size);

	ck_assert_ptr_nonnull(p);
	test_fill(p, size, 9);
	while (size < ((size_t)4 << 20)) {
		size_t next = size < 5000 ? size + 1 : size + size / 3 + 77;
		char *q = realloc(p, next);

		ck_assert_msg(q != NULL, "realloc(%zu -> %zu) = NULL", size,
		    next);
		ck_assert_msg(test_verify(q, size, 9) == size, "realloc(%zu -> %zu)"
		    " lost contents", size, next);
		test_fill(q, next, 9);
		p = q;
		size = next;
	}
	while (size > 1) {
		size_t next = size > 5000 ? size / 2 - 33 : size - 7;
		char *q;

		if (next < 1 || next > size)
			next = 1;
		q = realloc(p, next);
		ck_assert_msg(q != NULL, "realloc(%zu -> %zu) = NULL", size,
		    next);
		ck_assert_msg(test_verify(q, next, 9) == next, "realloc(%zu -> %zu)"
		    " lost contents", size, next);
		p = q;
		size = next;
	}
	free(p);
}
END_TEST

/* Bytes [from, to) of buf hold test_pat(id, offset) (set, or check). */
static void
fill_range(char *buf, size_t from, size_t to, size_t id)
{
	for (size_t i = from; i < to; i++)
		buf[i] = (char)test_pat(id, i);
}

static bool
range_ok(const char *buf, size_t from, size_t to, size_t id)
{
	for (size_t i = from; i < to; i++)
		if ((uint8_t)buf[i] != test_pat(id, i))
			return (false);
	return (true);
}

/*
 * A large block whose pages lie in two mappings (different madvise flags
 * on its halves) grows where it cannot grow in place.  Before Linux 6.17
 * the kernel refuses to move it (EFAULT), having unmapped the destination
 * span already: the block is copied, and the span must be mapped again
 * before the arena hands it out (it was handed out as a hole, and the
 * first block written there crashed).  From 6.17 the kernel moves it.
 * Blocks allocated afterwards, which reuse that span, must be writable.
 */
START_TEST(test_realloc_split_mapping)
{
	enum { N = 32 };
	size_t size = (size_t)256 << 10, big = (size_t)4 << 20;
	char *a = malloc(size), *b = malloc(size), *q, *v[N];

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq((uintptr_t)a & 4095, 0);
	fill_range(a, 0, size, 41);
	ck_assert_int_eq(madvise(a + size / 2, size / 2, MADV_DONTFORK), 0);
	q = realloc(a, big);
	ck_assert_ptr_nonnull(q);
	ck_assert(range_ok(q, 0, size, 41));
	fill_range(q, size, big, 41);
	for (int i = 0; i < N; i++) {
		v[i] = malloc(big);
		ck_assert_ptr_nonnull(v[i]);
		memset(v[i], i, big);
	}
	ck_assert(range_ok(q, 0, big, 41));
	for (int i = 0; i < N; i++) {
		ck_assert(v[i][0] == (char)i && v[i][big - 1] == (char)i);
		free(v[i]);
	}
	free(q);
	free(b);
}
END_TEST

/*
 * Two large blocks grown in turns, a little over 64 KiB at a time, to
 * 16 MiB (realloc moves their pages rather than copying them): each keeps
 * its own contents, and a block allocated between steps, in the spans
 * they leave, is never one of theirs.
 */
START_TEST(test_realloc_large_growth)
{
	char *p[2];
	size_t size = (size_t)64 << 10;

	for (int b = 0; b < 2; b++) {
		p[b] = malloc(size);
		ck_assert_ptr_nonnull(p[b]);
		fill_range(p[b], 0, size, 21 + b);
	}
	while (size < ((size_t)16 << 20)) {
		size_t next = size + ((size_t)64 << 10) + 100;

		for (int b = 0; b < 2; b++) {
			char *q = realloc(p[b], next), *other;

			ck_assert_ptr_nonnull(q);
			/* The first and last pages of what it held. */
			ck_assert(range_ok(q, 0, 4096, 21 + b));
			ck_assert(range_ok(q, size - 4096, size, 21 + b));
			fill_range(q, size, next, 21 + b);
			p[b] = q;
			other = malloc(size);
			ck_assert_ptr_nonnull(other);
			/* Block c is 'next' bytes long once grown, else 'size'. */
			for (int c = 0; c < 2; c++)
				ck_assert(other + size <= p[c] ||
				    other >= p[c] + (c <= b ? next : size));
			free(other);
		}
		size = next;
	}
	for (int b = 0; b < 2; b++) {
		ck_assert_uint_ge(malloc_usable_size(p[b]), size);
		ck_assert(range_ok(p[b], 0, size, 21 + b));
		free(p[b]);
	}
}
END_TEST

/*
 * A new size that fits what the block already has (its usable size) is
 * served in place.
 */
START_TEST(test_realloc_in_place)
{
	for (size_t s = 1; s <= (size_t)128 << 10; s += 1 + s / 5) {
		char *p = malloc(s), *q;
		uintptr_t was = (uintptr_t)p;
		size_t u;

		ck_assert_ptr_nonnull(p);
		u = malloc_usable_size(p);
		test_fill(p, s, s);
		q = realloc(p, u);
		ck_assert_ptr_nonnull(q);
		ck_assert_msg((uintptr_t)q == was, "realloc(malloc(%zu), %zu) "
		    "moved the block", s, u);
		ck_assert_uint_eq(test_verify(q, s, s), s);
		ck_assert_uint_ge(malloc_usable_size(q), u);
		free(q);
	}
}
END_TEST

START_TEST(test_reallocarray)
{
	size_t big = launder_size((size_t)1 << (sizeof (size_t) * 4));
	int *a = reallocarray(NULL, 100, sizeof (int));
	int *b;

	ck_assert_ptr_nonnull(a);
	for (int i = 0; i < 100; i++)
		a[i] = i * i;
	b = reallocarray(a, 100000, sizeof (int));
	ck_assert_ptr_nonnull(b);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(b[i], i * i);
	a = b;
	errno = 0;
	ck_assert_ptr_null(kept(reallocarray(a, big, big)));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(kept(reallocarray(a, launder_size(SIZE_MAX), 2)));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(kept(reallocarray(NULL, v_huge, 3)));
	ck_assert_int_eq(errno, ENOMEM);
	/* Failure left the array alone. */
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(a[i], i * i);
	free(a);
}
END_TEST

/* ------------------------------------------------------------ alignment */

/* Sizes to try with alignment 'al'. */
static size_t
align_sizes(size_t al, size_t *out)
{
	size_t n = 0;

	out[n++] = 1;
	out[n++] = 24;
	out[n++] = al;
	out[n++] = al + 1;
	out[n++] = 3 * al + 5;
	if (al >= 2)
		out[n++] = al / 2 + 1;
	if (al < 4096)
		out[n++] = 10000;
	return (n);
}

enum align_fn { AL_POSIX, AL_MEMALIGN, AL_ALIGNED };

static void *
align_alloc(enum align_fn fn, size_t al, size_t size)
{
	void *p = NULL;

	switch (fn) {
	case AL_POSIX:
		ck_assert_msg(posix_memalign(&p, al, size) == 0,
		    "posix_memalign(%zu, %zu) failed", al, size);
		break;
	case AL_MEMALIGN:
		p = memalign(al, size);
		break;
	case AL_ALIGNED:
		/* C11: size a multiple of the alignment. */
		size = (size + al - 1) / al * al;
		p = aligned_alloc(al, size);
		break;
	}
	return (p);
}

static const char *const align_names[] = {
	"posix_memalign", "memalign", "aligned_alloc"
};

/*
 * Every power of two up to 1 MiB with several sizes: aligned, the whole
 * size (and usable size) writable, all blocks of one alignment live at
 * once without overlapping.
 */
static void
check_alignments(enum align_fn fn, size_t min_align)
{
	for (size_t al = min_align; al <= MAX_ALIGN; al *= 2) {
		size_t sizes[8];
		void *p[8];
		size_t n = align_sizes(al, sizes);

		for (size_t i = 0; i < n; i++) {
			size_t u;

			p[i] = align_alloc(fn, al, sizes[i]);
			ck_assert_msg(p[i] != NULL, "%s(%zu, %zu) = NULL",
			    align_names[fn], al, sizes[i]);
			ck_assert_msg(addr(p[i]) % al == 0,
			    "%s(%zu, %zu) = %p: misaligned", align_names[fn],
			    al, sizes[i], p[i]);
			u = malloc_usable_size(p[i]);
			ck_assert_msg(u >= sizes[i], "%s(%zu, %zu): usable "
			    "size %zu", align_names[fn], al, sizes[i], u);
			test_fill(p[i], sizes[i], al + i);
		}
		for (size_t i = 0; i < n; i++) {
			ck_assert_msg(test_verify(p[i], sizes[i], al + i) ==
			    sizes[i], "%s(%zu, %zu) = %p: overwritten",
			    align_names[fn], al, sizes[i], p[i]);
			free(p[i]);
		}
	}
}

START_TEST(test_posix_memalign)
{
	check_alignments(AL_POSIX, sizeof (void *));
}
END_TEST

START_TEST(test_memalign)
{
	check_alignments(AL_MEMALIGN, 1);
}
END_TEST

START_TEST(test_aligned_alloc)
{
	void *p;

	check_alignments(AL_ALIGNED, 1);
	/* A size that is not a multiple of the alignment (as glibc). */
	p = aligned_alloc(64, launder_size(100));
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(addr(p) % 64, 0);
	memset(p, 1, 100);
	free(p);
}
END_TEST

/*
 * Small sizes with small alignments, many blocks live at once, so that
 * whatever order the allocator hands its blocks out in, a block that
 * lacks the alignment shows.
 */
static void
small_aligned_batch(enum align_fn fn, size_t al, size_t s)
{
	enum { LIVE = 48 };
	void *p[LIVE];

	for (int i = 0; i < LIVE; i++) {
		p[i] = align_alloc(fn, al, s);
		ck_assert_ptr_nonnull(p[i]);
		ck_assert_msg(addr(p[i]) % al == 0, "%s(%zu, %zu) = %p: "
		    "misaligned", align_names[fn], al, s, p[i]);
		memset(p[i], 0x77, s);
	}
	for (int i = 0; i < LIVE; i++)
		free(p[i]);
}

START_TEST(test_small_aligned_many)
{
	for (int fn = AL_POSIX; fn <= AL_ALIGNED; fn++) {
		for (size_t al = 8; al <= 4096; al *= 2) {
			for (size_t s = 1; s <= 2 * al && s <= 64; s++)
				small_aligned_batch((enum align_fn)fn, al, s);
		}
	}
}
END_TEST

START_TEST(test_posix_memalign_einval)
{
	size_t bad[] = { 0, 1, 2, 3, 4, sizeof (void *) + 4, 24, 48, 100,
	    4097, ((size_t)1 << 20) + 8 };

	for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
		void *p = (void *)1;

		if (bad[i] >= sizeof (void *) &&
		    bad[i] % sizeof (void *) == 0 &&
		    (bad[i] & (bad[i] - 1)) == 0)
			continue;       /* valid after all on this machine */
		ck_assert_msg(posix_memalign(&p, launder_size(bad[i]), 16) ==
		    EINVAL, "posix_memalign(%zu) did not fail with EINVAL",
		    bad[i]);
		ck_assert_ptr_eq(p, (void *)1);
	}
}
END_TEST

/*
 * memalign's alignment beyond any block, as glibc: up to 2^63 (rounded up
 * to a power of two) ENOMEM, above it EINVAL.
 */
START_TEST(test_memalign_huge_align)
{
	size_t nomem[] = { (size_t)1 << 62, ((size_t)1 << 62) + 1,
	    (size_t)3 << 61, (size_t)1 << 63 };
	size_t inval[] = { ((size_t)1 << 63) + 1, SIZE_MAX };

	for (size_t i = 0; i < sizeof (nomem) / sizeof (nomem[0]); i++) {
		errno = 0;
		ck_assert_ptr_null(kept(memalign(launder_size(nomem[i]), 16)));
		ck_assert_msg(errno == ENOMEM, "memalign(%#zx): errno %d, "
		    "not ENOMEM", nomem[i], errno);
	}
	for (size_t i = 0; i < sizeof (inval) / sizeof (inval[0]); i++) {
		errno = 0;
		ck_assert_ptr_null(kept(memalign(launder_size(inval[i]), 16)));
		ck_assert_msg(errno == EINVAL, "memalign(%#zx): errno %d, "
		    "not EINVAL", inval[i], errno);
	}
}
END_TEST

/*
 * A large block aligned beyond a page, freed, is kept as a spare with its
 * pages like any other, and the next such request of its size reuses it:
 * no page faults again (before, each one cost a new span, faulted in and
 * zeroed anew).
 */
START_TEST(test_aligned_large_spare)
{
	size_t al = (size_t)1 << 20, size = (size_t)1 << 20;
	long faults;
	void *p = NULL;

	/* A transparent huge page would fault the block in at once. */
	ck_assert_int_eq(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0), 0);
	for (int round = 0; round < 3; round++) {
		ck_assert_int_eq(posix_memalign(&p, al, size), 0);
		ck_assert_msg(addr(p) % al == 0, "posix_memalign(%zu) = %p",
		    al, p);
		ck_assert_uint_ge(malloc_usable_size(p), size);
		faults = test_minor_faults();
		memset(p, round + 1, size);
		faults = test_minor_faults() - faults;
#if !defined(KMEM_TSAN) && !defined(KMEM_ASAN)
		if (round > 0)
			ck_assert_msg((size_t)faults < size /
			    test_page_size() / 4, "round %d: %ld page faults: "
			    "the freed block was not kept", round, faults);
#endif
		free(p);
	}
}
END_TEST

/* Realloc of an aligned block keeps its contents. */
START_TEST(test_realloc_aligned)
{
	for (size_t al = 16; al <= MAX_ALIGN; al *= 4) {
		void *p = NULL;
		void *q;

		ck_assert_int_eq(posix_memalign(&p, al, 200), 0);
		test_fill(p, 200, al);
		q = realloc(p, 300000);
		ck_assert_ptr_nonnull(q);
		ck_assert_uint_eq(test_verify(q, 200, al), 200);
		q = realloc(q, 50);
		ck_assert_ptr_nonnull(q);
		ck_assert_uint_eq(test_verify(q, 50, al), 50);
		free(q);
	}
}
END_TEST

START_TEST(test_valloc_pvalloc)
{
	size_t pg = test_page_size();
	size_t sizes[] = { 1, 100, pg - 1, pg, pg + 1, 3 * pg + 5, 100000,
	    (size_t)1 << 20 };

	for (size_t i = 0; i < sizeof (sizes) / sizeof (sizes[0]); i++) {
		size_t s = sizes[i];
		char *v = valloc(s);
		char *pv = pvalloc(s);
		size_t round = (s + pg - 1) / pg * pg;

		ck_assert_ptr_nonnull(v);
		ck_assert_ptr_nonnull(pv);
		ck_assert_msg(addr(v) % pg == 0, "valloc(%zu) = %p", s,
		    (void *)v);
		ck_assert_msg(addr(pv) % pg == 0, "pvalloc(%zu) = %p", s,
		    (void *)pv);
		ck_assert_uint_ge(malloc_usable_size(v), s);
		/* pvalloc rounds the size up to whole pages. */
		ck_assert_uint_ge(malloc_usable_size(pv), round);
		test_fill(v, s, i);
		test_fill(pv, round, i + 100);
		ck_assert_uint_eq(test_verify(v, s, i), s);
		ck_assert_uint_eq(test_verify(pv, round, i + 100), round);
		free(v);
		free(pv);
	}
}
END_TEST

/*
 * A realloc made while libkmem creates a class (the C library may
 * reallocate inside backtrace(), which the first debug cache calls with
 * the class lock held) is a nested request: served without creating the
 * class its new size needs, not by waiting for the creation it is nested
 * in.  backtrace() is interposed here to make that realloc; an alarm turns
 * a deadlock into a failure.  The sizes are of classes nothing in this
 * fresh process has used.
 */
extern int __backtrace(void **, int);
static void *volatile nested_old, *volatile nested_new;
static _Atomic bool nested_armed;

int
backtrace(void **pcs, int n)
{
	if (atomic_exchange(&nested_armed, false))
		nested_new = realloc(nested_old, launder_size(100000));
	return (__backtrace(pcs, n));
}

START_TEST(test_realloc_nested)
{
	char *p;

	nested_old = malloc(100);
	ck_assert_ptr_nonnull(nested_old);
	test_fill(nested_old, 100, 7);
	ck_assert_int_eq(kmem_tunable_set_str("kmem_debug", "guards"), 0);
	atomic_store(&nested_armed, true);
	alarm(20);
	p = malloc(launder_size(70000));        /* a new, debug class */
	alarm(0);
	ck_assert_ptr_nonnull(p);
	ck_assert(!atomic_load(&nested_armed));
	ck_assert_ptr_nonnull(nested_new);
	ck_assert_uint_eq(test_verify(nested_new, 100, 7), 100);
	free(nested_new);
	free(p);
}
END_TEST

/* ------------------------------------------------------------ free */

struct foreign {
	void *ptr;
};

static void
free_foreign(void *arg)
{
	struct foreign *f = arg;

	free(launder_ptr(f->ptr));
}

static char static_buf[4096] __attribute__((aligned(64)));

/* A pointer libkmem never handed out: one line on stderr, then ignored. */
/*
 * A large block freed twice, aligned or not: the second free is reported
 * (the block is a spare by then), and the spare is not kept twice, so two
 * later blocks of its size are two blocks.
 */
START_TEST(test_free_large_twice)
{
	size_t size = (size_t)1 << 20;
	char out[2048];

	for (size_t al = 16; al <= ((size_t)64 << 10); al *= 4096) {
		struct foreign f = { NULL };
		char *a, *b;

		ck_assert_int_eq(posix_memalign(&f.ptr, al, size), 0);
		free(launder_ptr(f.ptr));
		test_capture_stderr(free_foreign, &f, out, sizeof (out));
		ck_assert_msg(strncmp(out, "libkmem: ", 9) == 0,
		    "second free(%p), align %zu: no report, stderr \"%s\"",
		    f.ptr, al, out);
		a = malloc(size);
		b = malloc(size);
		ck_assert_ptr_nonnull(a);
		ck_assert_ptr_nonnull(b);
		ck_assert_msg(a != b, "align %zu: %p handed out twice", al, a);
		memset(a, 'a', size);
		memset(b, 'b', size);
		ck_assert_int_eq(a[size - 1], 'a');
		free(a);
		free(b);
	}
}
END_TEST

START_TEST(test_free_foreign)
{
	size_t pg = test_page_size();
	char *map = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *targets[3];
	char out[2048];

	ck_assert_ptr_ne(map, MAP_FAILED);
	memset(map, 'm', 4 * pg);
	memset(static_buf, 's', sizeof (static_buf));
	targets[0] = map;
	targets[1] = map + pg;
	targets[2] = static_buf;
	for (int i = 0; i < 3; i++) {
		struct foreign f = { targets[i] };
		char *nl;

		test_capture_stderr(free_foreign, &f, out, sizeof (out));
		ck_assert_msg(strncmp(out, "libkmem: ", 9) == 0,
		    "free(%p): no report, stderr \"%s\"", targets[i], out);
		nl = strchr(out, '\n');
		ck_assert_msg(nl != NULL && nl[1] == '\0',
		    "free(%p): not one line: \"%s\"", targets[i], out);
	}
	/* Ignored: still mapped, untouched, and malloc goes on working. */
	for (size_t i = 0; i < 4 * pg; i++)
		ck_assert_int_eq(map[i], 'm');
	for (size_t i = 0; i < sizeof (static_buf); i++)
		ck_assert_int_eq(static_buf[i], 's');
	memset(map, 0, 4 * pg);
	for (int i = 0; i < 1000; i++) {
		void *p = malloc((size_t)i * 37 + 1);

		ck_assert_ptr_nonnull(p);
		ck_assert_msg((char *)p < map || (char *)p >= map + 4 * pg,
		    "malloc returned the foreign block");
		free(p);
	}
	munmap(map, 4 * pg);
}
END_TEST

/*
 * A block of the bootstrap arena: .preinit_array functions run before any
 * library's constructor, libkmem_malloc's included, so this malloc is
 * served from that arena.
 */
static char *preinit_block;

static void
preinit_alloc(void)
{
	preinit_block = malloc(100);
	if (preinit_block != NULL)
		memset(preinit_block, 0xff, 100);
}

__attribute__((section(".preinit_array"), used))
static void (*const preinit_fn)(void) = preinit_alloc;

struct foreign_realloc {
	void *ptr;
	void *ret;
};

static void
realloc_foreign(void *arg)
{
	struct foreign_realloc *f = arg;

	f->ret = realloc(launder_ptr(f->ptr), 8 << 20);
}

/*
 * A pointer into a bootstrap block is no block either: reported and left
 * alone.  (Its "size" was the block's data: usable SIZE_MAX, and realloc
 * copied megabytes from past the arena's end.)
 */
START_TEST(test_free_boot_interior)
{
	char out[2048];

	ck_assert_ptr_nonnull(preinit_block);
	ck_assert_uint_eq(malloc_usable_size(preinit_block), 100);
	for (size_t off = 16; off < 100; off += 16) {
		struct foreign f = { preinit_block + off };
		struct foreign_realloc r = { preinit_block + off, NULL };

		ck_assert_uint_eq(malloc_usable_size(f.ptr), 0);
		test_capture_stderr(free_foreign, &f, out, sizeof (out));
		ck_assert_msg(strncmp(out, "libkmem: ", 9) == 0,
		    "free(block + %zu): no report, stderr \"%s\"", off, out);
		test_capture_stderr(realloc_foreign, &r, out, sizeof (out));
		ck_assert_ptr_null(r.ret);
		ck_assert_msg(strncmp(out, "libkmem: ", 9) == 0,
		    "realloc(block + %zu): no report, stderr \"%s\"", off,
		    out);
	}
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq((unsigned char)preinit_block[i], 0xff);
	ck_assert_uint_eq(malloc_usable_size(preinit_block), 100);
	free(preinit_block);            /* a no-op */
}
END_TEST

/*
 * An object of a cache the program created shares the arena with the
 * classes, but is no malloc block: free and realloc report it and leave
 * it to its cache.  (They gave it back to the cache, which then handed it
 * out again while the program still held it.)
 */
START_TEST(test_free_cache_object)
{
	kmem_cache_t *cp = kmem_cache_create("malloc_test_own", 200, 0,
	    NULL, NULL, NULL, NULL, NULL, 0);
	void *held[64];
	char *obj, out[2048];

	ck_assert_ptr_nonnull(cp);
	obj = kmem_cache_alloc(cp, KM_SLEEP);
	ck_assert_ptr_nonnull(obj);
	memset(obj, 'o', 200);
	ck_assert_uint_eq(malloc_usable_size(obj), 0);
	{
		struct foreign f = { obj };
		struct foreign_realloc r = { obj, NULL };

		test_capture_stderr(free_foreign, &f, out, sizeof (out));
		ck_assert_msg(strncmp(out, "libkmem: ", 9) == 0 &&
		    strstr(out, "an object of cache malloc_test_own, not a "
		    "malloc block") != NULL,
		    "free(cache object): no report, stderr \"%s\"", out);
		test_capture_stderr(realloc_foreign, &r, out, sizeof (out));
		ck_assert_ptr_null(r.ret);
		ck_assert_msg(strncmp(out, "libkmem: ", 9) == 0,
		    "realloc(cache object): no report, stderr \"%s\"", out);
	}
	/* Still the program's: the cache does not hand it out again. */
	for (int i = 0; i < 64; i++) {
		held[i] = kmem_cache_alloc(cp, KM_SLEEP);
		ck_assert_ptr_ne(held[i], obj);
	}
	for (int i = 0; i < 200; i++)
		ck_assert_int_eq(obj[i], 'o');
	for (int i = 0; i < 64; i++)
		kmem_cache_free(cp, held[i]);
	kmem_cache_free(cp, obj);
	kmem_cache_destroy(cp);
}
END_TEST

/*
 * With KMEM_DEBUG, free() and realloc() of an object of a cache the
 * program created are reported in the documented form ("KMEM_DEBUG:
 * <kind>: cache <name>, buffer <address>: ..."), as a free to the wrong
 * cache; the report had a form of its own that named no kind.
 */
START_TEST(test_free_cache_object_debug)
{
	struct foreign f;
	struct foreign_realloc r;
	kmem_cache_t *cp;
	char *obj, out[8192], want[160];

	ck_assert_int_eq(kmem_tunable_set_str("kmem_debug", "guards,noabort"),
	    0);
	cp = kmem_cache_create("malloc_test_dbg", 200, 0, NULL, NULL, NULL,
	    NULL, NULL, 0);
	ck_assert_int_eq(kmem_tunable_set_str("kmem_debug", "none"), 0);
	ck_assert_ptr_nonnull(cp);
	obj = kmem_cache_alloc(cp, KM_SLEEP);
	ck_assert_ptr_nonnull(obj);
	snprintf(want, sizeof (want), "libkmem: KMEM_DEBUG: free to the wrong "
	    "cache: cache malloc_test_dbg, buffer %p: ", (void *)obj);
	f.ptr = obj;
	test_capture_stderr(free_foreign, &f, out, sizeof (out));
	ck_assert_msg(strncmp(out, want, strlen(want)) == 0,
	    "free: no \"%s\" in \"%s\"", want, out);
	r.ptr = obj;
	r.ret = NULL;
	test_capture_stderr(realloc_foreign, &r, out, sizeof (out));
	ck_assert_ptr_null(r.ret);
	ck_assert_msg(strncmp(out, want, strlen(want)) == 0,
	    "realloc: no \"%s\" in \"%s\"", want, out);
	kmem_cache_free(cp, obj);       /* still the program's */
	kmem_cache_destroy(cp);
}
END_TEST

/*
 * malloc_trim gives back what the program freed: the large block kept
 * for reuse and the class's emptied slabs.  (Without it the call went to
 * glibc's allocator, which holds nothing, and returned 0.)
 */
START_TEST(test_malloc_trim)
{
	enum { N = 4096 };
	void **small = malloc(N * sizeof (*small));
	void *big = malloc((size_t)8 << 20);

	ck_assert_ptr_nonnull(small);
	ck_assert_ptr_nonnull(big);
	memset(big, 1, (size_t)8 << 20);
	for (int i = 0; i < N; i++) {
		small[i] = malloc(1000);
		ck_assert_ptr_nonnull(small[i]);
	}
	for (int i = 0; i < N; i++)
		free(small[i]);
	free(big);
	free(small);
	ck_assert_int_eq(malloc_trim(0), 1);
}
END_TEST

/*
 * A block of a class's slab that was never handed out: the one past the
 * last block carved, from a class created with slabs of 4096 blocks, far
 * more than a magazine refill carves (and malloc returns the last block a
 * refill carved).  *sizep: the size malloc was asked for; *stp: the
 * class.  The block before it, p, is allocated: the caller frees it.
 */
static char *
never_allocated_block(char **pp, size_t *sizep, struct kmem_class_stats *stp)
{
	static const size_t sizes[] = { 6000, 20000, 3000, 50000, 100000 };
	struct kmem_class_stats st;
	char *p = NULL;
	int n = kmem_alloc_class_count();

	/* A class whose cache is made now, with the new slab size. */
	for (size_t i = 0; i < sizeof (sizes) / sizeof (sizes[0]) &&
	    p == NULL; i++) {
		for (int c = 0; c < n; c++) {
			if (kmem_alloc_class_stats(c, &st) != 0 ||
			    st.size < sizes[i])
				continue;
			if (st.obj_allocated != 0)
				break;
			p = malloc(sizes[i]);
			ck_assert_ptr_nonnull(p);
			ck_assert_int_eq(kmem_alloc_class_stats(c, &st), 0);
			if (st.pages_per_slab * (uint64_t)getpagesize() >=
			    4096 * st.size) {
				*sizep = sizes[i];
				break;
			}
			free(p);
			p = NULL;
			break;
		}
	}
	ck_assert_ptr_nonnull(p);
	*pp = p;
	*stp = st;
	return (p + st.size);
}

/*
 * Such a block is reported and left alone.  free() took it into its
 * magazine: the next malloc returned it, and the slab carved it again for
 * a later one.
 */
START_TEST(test_free_never_allocated)
{
	struct kmem_class_stats st;
	size_t size = 0;
	char *p, *never, *got[64], out[2048];
	int twice = 0;
	int64_t was;

	ck_assert_int_eq(kmem_tunable_get("kmem_cache_obj_per_slab", &was), 0);
	ck_assert_int_eq(kmem_tunable_set("kmem_cache_obj_per_slab", 4096), 0);
	never = never_allocated_block(&p, &size, &st);
	{
		struct foreign f = { never };

		test_capture_stderr(free_foreign, &f, out, sizeof (out));
		ck_assert_msg(strncmp(out, "libkmem: ", 9) == 0,
		    "free(never allocated): no report, stderr \"%s\"", out);
	}
	for (int i = 0; i < 64; i++) {
		got[i] = malloc(size);
		twice += got[i] == never;
	}
	ck_assert_int_le(twice, 1);
	for (int i = 0; i < 64; i++)
		free(got[i]);
	free(p);
	ck_assert_int_eq(kmem_tunable_set("kmem_cache_obj_per_slab", was), 0);
}
END_TEST

struct never_realloc {
	void *ptr;
	size_t size;
	void *ret;
};

static void
realloc_never(void *arg)
{
	struct never_realloc *r = arg;

	r->ret = realloc(launder_ptr(r->ptr), r->size);
}

/*
 * realloc() of such a block, to a size of its class or of another, is
 * reported and fails (EINVAL), as free() of it is, and malloc_usable_size
 * says 0: realloc kept it in place (its class's size) with no word, and
 * the slab then carved it for a later malloc, a block with two owners;
 * to another size it was copied to a new block, and only the free of it
 * that followed was reported.
 */
START_TEST(test_realloc_never_allocated)
{
	struct kmem_class_stats st;
	size_t size = 0;
	char *p, *never, *got[64], out[2048];
	int twice = 0;
	int64_t was;

	ck_assert_int_eq(kmem_tunable_get("kmem_cache_obj_per_slab", &was), 0);
	ck_assert_int_eq(kmem_tunable_set("kmem_cache_obj_per_slab", 4096), 0);
	never = never_allocated_block(&p, &size, &st);
	ck_assert_uint_eq(malloc_usable_size(never), 0);
	for (int i = 0; i < 2; i++) {
		struct never_realloc r = { never, i == 0 ? size : 64, NULL };

		errno = 0;
		test_capture_stderr(realloc_never, &r, out, sizeof (out));
		ck_assert_msg(r.ret == NULL && errno == EINVAL,
		    "realloc(never allocated, %zu): %p, errno %d", r.size,
		    r.ret, errno);
		ck_assert_msg(strncmp(out, "libkmem: realloc(", 17) == 0 &&
		    strstr(out, "not allocated") != NULL,
		    "realloc(never allocated, %zu): stderr \"%s\"", r.size,
		    out);
	}
	for (int i = 0; i < 64; i++) {
		got[i] = malloc(size);
		twice += got[i] == never;
	}
	ck_assert_int_le(twice, 1);
	for (int i = 0; i < 64; i++)
		free(got[i]);
	free(p);
	ck_assert_int_eq(kmem_tunable_set("kmem_cache_obj_per_slab", was), 0);
}
END_TEST

/* The C library's own allocations are freed with free(), and vice versa. */
#if !defined(KMEM_TSAN) && !defined(KMEM_ASAN)   /* they need their mmap */
/*
 * mmap, failing for anonymous mappings while set (libkmem calls it
 * through the PLT: this replaces the C library's for it).
 */
static volatile bool fail_anon_mmap;

void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (fail_anon_mmap && (flags & MAP_ANONYMOUS)) {
		errno = ENOMEM;
		return (MAP_FAILED);
	}
	return ((void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off));
}

struct sized_malloc {
	size_t size;
	void *p;
	int err;
};

static void
sized_malloc(void *arg)
{
	struct sized_malloc *m = arg;

	errno = 0;
	m->p = kept(malloc(m->size));
	m->err = errno;
}

static void
make_caches(void *arg)
{
	kmem_cache_t **caches = arg;
	char name[32];

	for (int i = 0; i < 4096; i++) {
		(void) snprintf(name, sizeof (name), "nomem_%d", i);
		caches[i] = kmem_cache_create(name, 64, 0, NULL, NULL, NULL,
		    NULL, NULL, 0);
		if (caches[i] == NULL)
			return;
	}
}

/*
 * Once memory has run out, a malloc whose class has no cache yet fails
 * as any malloc then does: NULL, ENOMEM and no message (the class's
 * cache could not be created for want of memory; a program that probes
 * got a line on stderr per call).  Memory runs out here as mmap fails,
 * after caches of the program's own took the metadata pages left.
 */
START_TEST(test_malloc_new_class_enomem_quiet)
{
	static kmem_cache_t *caches[4097];
	struct sized_malloc m = { launder_size(100000), NULL, 0 };
	char out[2048];

	fail_anon_mmap = true;
	test_capture_stderr(make_caches, caches, out, sizeof (out));
	test_capture_stderr(sized_malloc, &m, out, sizeof (out));
	fail_anon_mmap = false;
	for (int i = 0; caches[i] != NULL; i++)
		kmem_cache_destroy(caches[i]);
	ck_assert_msg(m.p != NULL || m.err == ENOMEM,
	    "malloc(%zu) failed with errno %d", m.size, m.err);
	ck_assert_msg(out[0] == '\0', "malloc(%zu) out of memory said \"%s\"",
	    m.size, out);
	free(m.p);
	m.p = kept(malloc(m.size));             /* and works again */
	ck_assert_ptr_nonnull(m.p);
	free(m.p);
}
END_TEST

/*
 * Once memory has run out, realloc to a smaller size keeps the block (it
 * holds the new size): it returned NULL with ENOMEM, a large block shrunk
 * to another large size or to a class that has no free object, where
 * glibc never fails a shrink.  Memory runs out here under an address-
 * space limit, once 1 MiB blocks have taken the arena's regions.
 */
START_TEST(test_realloc_shrink_out_of_memory)
{
	static void *v[65536];
	size_t big = launder_size((size_t)8 << 20), n = 0;
	size_t small[] = { (size_t)300 << 10, 3000, 100 };
	struct rlimit rl;
	char *p, *q;

	p = kept(malloc(big));
	ck_assert_ptr_nonnull(p);
	memset(p, 0x5a, 4096);
	ck_assert_int_eq(getrlimit(RLIMIT_AS, &rl), 0);
	rl.rlim_cur = test_vm_size() + ((size_t)64 << 20);
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
	while (n < 65536 && (v[n] = kept(malloc(launder_size(1 << 20)))) !=
	    NULL)
		n++;
	ck_assert_uint_lt(n, 65536);
	for (size_t i = 0; i < sizeof (small) / sizeof (small[0]); i++) {
		errno = 0;
		q = realloc(p, launder_size(small[i]));
		ck_assert_msg(q != NULL, "realloc(%zu MiB block, %zu) failed "
		    "with errno %d once memory ran out", big >> 20, small[i],
		    errno);
		for (size_t j = 0; j < small[i] && j < 4096; j++)
			ck_assert_int_eq(q[j], 0x5a);
		p = q;
	}
	free(p);
	while (n > 0)
		free(v[--n]);
}
END_TEST

#define ERRNO_SENTINEL  12345   /* no error number: nothing sets it */

/* Each of n blocks of size (plus a little) from malloc or calloc. */
static void
errno_kept_alloc(void **v, size_t n, size_t size)
{
	for (size_t i = 0; i < n; i++) {
		size_t sz = launder_size(size + i % 7);

		errno = ERRNO_SENTINEL;
		v[i] = kept(i % 3 == 2 ? calloc(1, sz) : malloc(sz));
		ck_assert_ptr_nonnull(v[i]);
		ck_assert_msg(errno == ERRNO_SENTINEL, "%s(%zu) succeeded but "
		    "set errno %d (%s)", i % 3 == 2 ? "calloc" : "malloc", sz,
		    errno, strerror(errno));
	}
}

/*
 * A successful malloc, calloc, realloc or posix_memalign leaves errno as
 * it was, as glibc's do: a program that reads errno after a call chain
 * that allocates (readdir, whose end is errno still 0, with allocations
 * between its calls) took the arena's placement attempts for its own
 * error.  Under an address-space limit a region is placed with
 * MAP_FIXED_NOREPLACE at slot boundaries (EEXIST where one is taken) and
 * mappings fail (ENOMEM) before one fits: new classes, large blocks and
 * growth all reach that.
 */
START_TEST(test_malloc_keeps_errno)
{
	static void *v[2048];
	static const size_t sizes[] = { 1, 24, 100, 500, 1000, 4000, 4096,
	    5000, 16384, 32768, 65536, 100000, 131072, 262144, 1 << 20,
	    3 << 20, 10 << 20 };
	struct rlimit rl;

	ck_assert_int_eq(getrlimit(RLIMIT_AS, &rl), 0);
	rl.rlim_cur = test_vm_size() + ((size_t)256 << 20);
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
	for (int round = 0; round < 2; round++) {
		for (size_t k = 0; k < sizeof (sizes) / sizeof (sizes[0]);
		    k++) {
			size_t n = sizes[k] > 100000 ? 4 : sizes[k] > 4096 ?
			    64 : 2048;
			void *p;
			int rc;

			errno_kept_alloc(v, n, sizes[k]);
			for (size_t i = 0; i < n; i += 2) {
				size_t sz = launder_size(sizes[k] * 2 + 3);

				errno = ERRNO_SENTINEL;
				p = realloc(v[i], sz);
				ck_assert_ptr_nonnull(p);
				v[i] = p;
				ck_assert_msg(errno == ERRNO_SENTINEL,
				    "realloc(%zu) succeeded but set errno %d "
				    "(%s)", sz, errno, strerror(errno));
			}
			for (size_t i = 0; i < n; i++)
				free(v[i]);
			for (size_t a = 64; a <= MAX_ALIGN; a <<= 2) {
				errno = ERRNO_SENTINEL;
				rc = posix_memalign(&p, a, sizes[k]);
				ck_assert_int_eq(rc, 0);
				ck_assert_msg(errno == ERRNO_SENTINEL,
				    "posix_memalign(%zu, %zu) succeeded but "
				    "set errno %d (%s)", a, sizes[k], errno,
				    strerror(errno));
				free(p);
			}
		}
	}
}
END_TEST

/*
 * free leaves errno as it was (glibc's does, and POSIX.1-2024 requires
 * it): giving a large block's span back remaps it, which may fail, and a
 * program that saves errno around cleanup reads its own.
 */
START_TEST(test_free_keeps_errno)
{
	static void *v[2048];
	static const size_t sizes[] = { 24, 1000, 5000, 65536, 100000,
	    262144, 1 << 20, 10 << 20 };
	struct rlimit rl;

	ck_assert_int_eq(getrlimit(RLIMIT_AS, &rl), 0);
	rl.rlim_cur = test_vm_size() + ((size_t)256 << 20);
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
	for (int round = 0; round < 3; round++) {
		for (size_t k = 0; k < sizeof (sizes) / sizeof (sizes[0]);
		    k++) {
			size_t n = sizes[k] > 100000 ? 8 : sizes[k] > 4096 ?
			    128 : 2048;

			errno_kept_alloc(v, n, sizes[k]);
			for (size_t i = 0; i < n; i++) {
				errno = ERRNO_SENTINEL;
				free(v[i]);
				ck_assert_msg(errno == ERRNO_SENTINEL,
				    "free of a %zu-byte block set errno %d "
				    "(%s)", sizes[k], errno, strerror(errno));
			}
		}
	}
	/* Spans given back while mmap fails: they stay unused, quietly. */
	errno_kept_alloc(v, 256, (size_t)256 << 10);
	fail_anon_mmap = true;
	for (size_t i = 0; i < 256; i++) {
		errno = ERRNO_SENTINEL;
		free(v[i]);
		ck_assert_msg(errno == ERRNO_SENTINEL, "free of a large block "
		    "whose mmap failed set errno %d (%s)", errno,
		    strerror(errno));
	}
	fail_anon_mmap = false;
}
END_TEST

#define GROW_AS_LIMIT   ((rlim_t)128 << 20)
#define GROW_AS_BLOCK   ((size_t)128 << 10)
#define GROW_AS_BLOCKS  200

/*
 * test_grow_ahead_as_limit's process, started under the limit: the free
 * bytes its blocks' class keeps after grow-ahead ran, or -1.
 */
static int
grow_as_child(void)
{
	struct kmem_class_stats st;
	void *v[GROW_AS_BLOCKS];
	long long spare = -1;

	for (int i = 0; i < GROW_AS_BLOCKS; i++) {
		if ((v[i] = kept(malloc(launder_size(GROW_AS_BLOCK)))) == NULL)
			return (2);
	}
	usleep(500 * 1000);     /* the grow task's run */
	for (int i = 0; i < kmem_alloc_class_count(); i++) {
		if (kmem_alloc_class_stats(i, &st) == 0 &&
		    st.size == GROW_AS_BLOCK) {
			spare = (long long)((st.obj_allocated - st.obj_used) *
			    st.size);
			if (spare > (long long)(GROW_AS_LIMIT / 64) +
			    2 * (long long)(st.pages_per_slab *
			    getpagesize())) {
				printf("%lld KiB of %llu-byte objects mapped "
				    "ahead under a %llu MiB RLIMIT_AS\n",
				    spare >> 10, (unsigned long long)st.size,
				    (unsigned long long)(GROW_AS_LIMIT >> 20));
				return (1);
			}
		}
	}
	for (int i = 0; i < GROW_AS_BLOCKS; i++)
		free(v[i]);
	return (spare < 0 ? 3 : 0);
}

/*
 * Under a tight address-space limit grow-ahead keeps about a 64th of it
 * (two slabs more, for a growth in flight) in free objects: 200 blocks
 * of 128 KiB had up to 18 MiB mapped ahead of them under a 128 MiB
 * limit, which the program's own mmap then lacked.  The process starts
 * under the limit (so the arena's regions are sized for it): this
 * program runs itself again.
 */
START_TEST(test_grow_ahead_as_limit)
{
	struct rlimit rl;
	pid_t pid;
	int status;

	ck_assert_int_eq(getrlimit(RLIMIT_AS, &rl), 0);
	rl.rlim_cur = GROW_AS_LIMIT;
	fflush(stdout);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		(void) setrlimit(RLIMIT_AS, &rl);
		execl("/proc/self/exe", "check_malloc", "grow-as-child",
		    (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_msg(WEXITSTATUS(status) == 0, "grow-as-child: exit %d",
	    WEXITSTATUS(status));
}
END_TEST

struct sleep_class {
	size_t size;
	void *p;
	_Atomic bool go, done;
};

static void *
kmem_alloc_sleep_class(void *arg)
{
	struct sleep_class *w = arg;

	while (!atomic_load(&w->go))
		usleep(1000);
	w->p = kmem_alloc(w->size, KM_SLEEP);
	atomic_store(&w->done, true);
	return (NULL);
}

/*
 * kmem_alloc(KM_SLEEP) of a class whose cache cannot be created for want
 * of memory waits for memory, as kmem_alloc(3) says and as a cache's
 * growth and a large block do: it returned NULL (with a line saying so).
 */
START_TEST(test_kmem_alloc_new_class_sleep_waits)
{
	static kmem_cache_t *caches[4097];
	struct sleep_class w = { launder_size(70000), NULL, false, false };
	char out[2048];
	pthread_t t;

	/* The thread first: its stack is an anonymous mapping too. */
	ck_assert_int_eq(pthread_create(&t, NULL, kmem_alloc_sleep_class, &w),
	    0);
	fail_anon_mmap = true;
	test_capture_stderr(make_caches, caches, out, sizeof (out));
	atomic_store(&w.go, true);
	usleep(300 * 1000);
	ck_assert_msg(!atomic_load(&w.done), "kmem_alloc(%zu, KM_SLEEP) "
	    "returned %p without memory", w.size, w.p);
	fail_anon_mmap = false;                 /* memory again */
	for (int i = 0; caches[i] != NULL; i++)
		kmem_cache_destroy(caches[i]);
	pthread_join(t, NULL);
	ck_assert_ptr_nonnull(w.p);
	memset(w.p, 1, w.size);
	kmem_free(w.p, w.size);
}
END_TEST
#endif

START_TEST(test_libc_users)
{
	char *s = strdup("hello, libkmem");
	char *t = NULL;
	char *line = NULL;
	size_t cap = 0, linecap = 0;
	FILE *mf;

	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, "hello, libkmem");
	ck_assert_int_gt(asprintf(&t, "%s %d %0200d", s, 42, 7), 0);
	ck_assert_uint_eq(strlen(t), strlen(s) + 4 + 200);
	free(s);
	free(t);
	mf = open_memstream(&t, &cap);
	ck_assert_ptr_nonnull(mf);
	for (int i = 0; i < 20000; i++)
		fprintf(mf, "%d\n", i);
	fclose(mf);
	ck_assert_uint_gt(cap, 20000);
	mf = fmemopen(t, cap, "r");
	ck_assert_ptr_nonnull(mf);
	for (int i = 0; i < 20000; i++) {
		ck_assert_int_gt(getline(&line, &linecap, mf), 0);
		ck_assert_int_eq(atoi(line), i);
	}
	fclose(mf);
	free(line);
	free(t);
}
END_TEST

/* ------------------------------------------------------------ fork */

/* Allocate, check and free a mix of sizes; true when all was well. */
static bool
churn(uint64_t seed, int rounds)
{
	enum { SLOTS = 128 };
	void *p[SLOTS] = { NULL };
	size_t sz[SLOTS];
	bool ok = true;

	for (int r = 0; r < rounds; r++) {
		int i = (int)(test_rand(&seed) % SLOTS);

		if (p[i] != NULL) {
			ok &= test_verify(p[i], sz[i], (size_t)i) == sz[i];
			free(p[i]);
			p[i] = NULL;
			continue;
		}
		sz[i] = 1 + (size_t)(test_rand(&seed) %
		    (r % 16 == 0 ? 400000 : 3000));
		p[i] = malloc(sz[i]);
		if (p[i] == NULL)
			return (false);
		test_fill(p[i], sz[i], (size_t)i);
	}
	for (int i = 0; i < SLOTS; i++) {
		if (p[i] != NULL) {
			ok &= test_verify(p[i], sz[i], (size_t)i) == sz[i];
			free(p[i]);
		}
	}
	return (ok);
}

/* Fork; the child churns (and forks once more) and exits 0 if all is well. */
static void
fork_and_check(uint64_t seed, bool nested)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		alarm(20);              /* a deadlock fails, not hangs */
		if (!churn(seed, 3000))
			_exit(1);
		if (nested) {
			pid_t g = fork();

			if (g == 0)
				_exit(churn(seed + 1, 2000) ? 0 : 1);
			if (g < 0 || waitpid(g, &status, 0) != g ||
			    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
				_exit(2);
		}
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child: status %#x", status);
}

START_TEST(test_fork)
{
	char *keep = malloc(10000);

	ck_assert_ptr_nonnull(keep);
	test_fill(keep, 10000, 77);
	for (int i = 0; i < 10; i++)
		fork_and_check((uint64_t)i + 1, i % 3 == 0);
	ck_assert_uint_eq(test_verify(keep, 10000, 77), 10000);
	ck_assert(churn(99, 3000));
	free(keep);
}
END_TEST

/*
 * A program's signals go to its own threads, never to libkmem's (the task
 * queue that malloc starts): bash, whose SIGCHLD handler once ran on a
 * libkmem thread while its main thread edited the same job table, crashed
 * in ./configure.  The same in a forked child, whose queue thread is new
 * (started at the child's first magazine miss).
 */
START_TEST(test_signals_skip_kmem_threads)
{
	int status;
	pid_t pid;

	free(malloc(100));
	ck_assert_int_ge(test_thread_count(), 2);       /* libkmem's queue */
	ck_assert_int_eq(test_signal_elsewhere(SIGCHLD), 0);
	ck_assert_int_eq(test_signal_elsewhere(SIGINT), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		static void *v[4096];

		for (int i = 0; i < 4096; i++)
			v[i] = malloc(100);
		for (int i = 0; i < 4096; i++)
			free(v[i]);
		_exit(test_thread_count() >= 2 &&
		    test_signal_elsewhere(SIGCHLD) == 0 ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child: status %#x", status);
}
END_TEST

static _Atomic bool stop_churn;

static void *
churn_thread(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg;
	bool ok = true;

	while (!atomic_load(&stop_churn))
		ok &= churn(seed++, 500);
	return ((void *)(uintptr_t)ok);
}

/* Forks while other threads are inside malloc and free. */
START_TEST(test_fork_while_threads_allocate)
{
	pthread_t t[2];
	void *ok;

	atomic_store(&stop_churn, false);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, churn_thread,
		    (void *)(uintptr_t)(1000 * (i + 1))), 0);
	for (int i = 0; i < 40; i++)
		fork_and_check((uint64_t)i + 500, false);
	atomic_store(&stop_churn, true);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], &ok);
		ck_assert_msg(ok != NULL, "thread %d: contents corrupted", i);
	}
}
END_TEST

/* ------------------------------------------------------------ threads */

#define EXIT_BATCH      8
#define EXIT_ROUNDS     25
#define EXIT_KEEP       64

struct exiter {
	uint64_t seed;
	void *kept[EXIT_KEEP];  /* left for the main thread to free */
	size_t size[EXIT_KEEP];
	bool ok;
};

static void *
exiter_thread(void *arg)
{
	struct exiter *e = arg;

	e->ok = churn(e->seed, 2000);
	for (int i = 0; i < EXIT_KEEP; i++) {
		e->size[i] = 1 + (size_t)(test_rand(&e->seed) % 20000);
		e->kept[i] = malloc(e->size[i]);
		if (e->kept[i] == NULL) {
			e->ok = false;
			break;
		}
		test_fill(e->kept[i], e->size[i], (size_t)i);
	}
	return (NULL);
}

/*
 * Threads that allocate, leave blocks behind and exit, batch after batch;
 * the main thread checks and frees what they left.
 */
START_TEST(test_exiting_threads)
{
	static struct exiter ex[EXIT_BATCH];

	for (int r = 0; r < EXIT_ROUNDS; r++) {
		pthread_t t[EXIT_BATCH];

		memset(ex, 0, sizeof (ex));
		for (int i = 0; i < EXIT_BATCH; i++) {
			ex[i].seed = (uint64_t)(r * EXIT_BATCH + i + 1);
			ck_assert_int_eq(pthread_create(&t[i], NULL,
			    exiter_thread, &ex[i]), 0);
		}
		for (int i = 0; i < EXIT_BATCH; i++) {
			pthread_join(t[i], NULL);
			ck_assert(ex[i].ok);
			for (int k = 0; k < EXIT_KEEP; k++) {
				ck_assert_uint_eq(test_verify(ex[i].kept[k],
				    ex[i].size[k], (size_t)k), ex[i].size[k]);
				free(ex[i].kept[k]);
			}
		}
	}
}
END_TEST

static void *
detached_thread(void *arg)
{
	_Atomic int *done = arg;
	void *p = malloc(12345);

	if (p != NULL) {
		memset(p, 1, 12345);
		free(p);
	}
	p = calloc(100, 100);
	free(p);
	atomic_fetch_add(done, 1);
	return (NULL);
}

START_TEST(test_detached_threads)
{
	enum { N = 100 };
	_Atomic int done = 0;
	pthread_attr_t attr;
	double t0 = test_now();

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < N; i++) {
		pthread_t t;

		ck_assert_int_eq(pthread_create(&t, &attr, detached_thread,
		    &done), 0);
	}
	pthread_attr_destroy(&attr);
	while (atomic_load(&done) < N && test_now() - t0 < 30)
		usleep(1000);
	ck_assert_int_eq(atomic_load(&done), N);
}
END_TEST

/*
 * malloc and free are no cancellation points (POSIX allows none but the
 * listed functions): a thread with a cancel pending allocates blocks of
 * classes not used yet, which wait for their class to grow; it must come
 * back from malloc, and the classes must serve the main thread afterwards.
 */
#define CANCEL_BLOCKS   64

static const size_t cancel_sizes[] = { 40000, 20000, 60000 };

static void *
cancelled_thread(void *arg)
{
	_Atomic int *reached = arg;
	void *p[CANCEL_BLOCKS];

	pthread_cancel(pthread_self());
	for (size_t k = 0; k < sizeof (cancel_sizes) / sizeof (size_t); k++) {
		for (int i = 0; i < CANCEL_BLOCKS; i++)
			p[i] = malloc(cancel_sizes[k]);
		for (int i = 0; i < CANCEL_BLOCKS; i++)
			free(p[i]);
	}
	atomic_store(reached, 1);
	pthread_testcancel();
	return (NULL);
}

START_TEST(test_cancel_pending)
{
	static void *p[1000];

	for (int r = 0; r < 10; r++) {
		_Atomic int reached = 0;
		pthread_t t;
		void *ret;

		ck_assert_int_eq(pthread_create(&t, NULL, cancelled_thread,
		    &reached), 0);
		ck_assert_int_eq(pthread_join(t, &ret), 0);
		ck_assert(ret == PTHREAD_CANCELED);
		ck_assert_msg(atomic_load(&reached) == 1,
		    "thread cancelled inside malloc or free");
	}
	for (size_t k = 0; k < sizeof (cancel_sizes) / sizeof (size_t); k++) {
		for (int i = 0; i < 1000; i++)
			ck_assert_ptr_nonnull(p[i] = malloc(cancel_sizes[k]));
		for (int i = 0; i < 1000; i++)
			free(p[i]);
	}
}
END_TEST

int
main(int argc, char **argv)
{
	Suite *s;
	TCase *basic, *align, *proc;

#if !defined(KMEM_TSAN) && !defined(KMEM_ASAN)
	if (argc > 1 && strcmp(argv[1], "grow-as-child") == 0)
		return (grow_as_child());
#else
	(void) argc;
	(void) argv;
#endif
	s = suite_create("malloc");
	basic = tcase_create("basic");
	align = tcase_create("align");
	proc = tcase_create("processes");

	tcase_set_timeout(basic, 60);
	tcase_add_test(basic, test_constructor_alloc);
	tcase_add_test(basic, test_malloc_zero);
	tcase_add_test(basic, test_huge_sizes);
	tcase_add_test(basic, test_usable_size);
	tcase_add_test(basic, test_class_sizes_above_4k);
	tcase_add_test(basic, test_malloc_alignment);
	tcase_add_test(basic, test_calloc_overflow);
	tcase_add_test(basic, test_calloc_zeroes);
	tcase_add_test(basic, test_calloc_large_untouched);
	tcase_add_test(basic, test_realloc_null_and_zero);
	tcase_add_test(basic, test_realloc_contents);
	tcase_add_test(basic, test_realloc_large_growth);
	tcase_add_test(basic, test_realloc_split_mapping);
	tcase_add_test(basic, test_realloc_in_place);
#if !defined(KMEM_TSAN) && !defined(KMEM_ASAN)   /* their shadow: no limit */
	tcase_add_test(basic, test_realloc_shrink_out_of_memory);
	tcase_add_test(basic, test_malloc_keeps_errno);
	tcase_add_test(basic, test_free_keeps_errno);
	tcase_add_test(basic, test_grow_ahead_as_limit);
#endif
	tcase_add_test(basic, test_realloc_nested);
	tcase_add_test(basic, test_reallocarray);
	tcase_add_test(basic, test_free_foreign);
	tcase_add_test(basic, test_free_boot_interior);
	tcase_add_test(basic, test_free_cache_object);
	tcase_add_test(basic, test_free_cache_object_debug);
	tcase_add_test(basic, test_free_never_allocated);
	tcase_add_test(basic, test_realloc_never_allocated);
	tcase_add_test(basic, test_malloc_trim);
	tcase_add_test(basic, test_libc_users);
#if !defined(KMEM_TSAN) && !defined(KMEM_ASAN)
	tcase_add_test(basic, test_malloc_new_class_enomem_quiet);
	tcase_add_test(basic, test_kmem_alloc_new_class_sleep_waits);
#endif
	suite_add_tcase(s, basic);
	tcase_set_timeout(align, 60);
	tcase_add_test(align, test_posix_memalign);
	tcase_add_test(align, test_memalign);
	tcase_add_test(align, test_aligned_alloc);
	tcase_add_test(align, test_small_aligned_many);
	tcase_add_test(align, test_posix_memalign_einval);
	tcase_add_test(align, test_memalign_huge_align);
	tcase_add_test(align, test_realloc_aligned);
	tcase_add_test(align, test_aligned_large_spare);
	tcase_add_test(align, test_free_large_twice);
	tcase_add_test(align, test_valloc_pvalloc);
	suite_add_tcase(s, align);
	tcase_set_timeout(proc, 120);
	tcase_add_test(proc, test_fork);
	tcase_add_test(proc, test_fork_while_threads_allocate);
	tcase_add_test(proc, test_signals_skip_kmem_threads);
	tcase_add_test(proc, test_exiting_threads);
	tcase_add_test(proc, test_detached_threads);
	tcase_add_test(proc, test_cancel_pending);
	suite_add_tcase(s, proc);
	return (test_run_suite(s));
}
