/*
 * check_vmem.c - the arena (spans, address -> owner, coalescing, pages
 * returned, regions under a lowered address-space limit), slab sizing,
 * metadata page runs carved from shared regions, and the packed mutexes
 * that fork takes (meta.c).
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libkmem/kmem.h"
#include "cache.h"
#include "meta.h"
#include "slab.h"
#include "tunables.h"
#include "vmem.h"
#include "testutil.h"

static size_t page;

static void
setup(void)
{
	vmem_init();
	tunables_init();
	page = (size_t)sysconf(_SC_PAGESIZE);
}

/* Resident bytes of [p, p + len) per mincore(2). */
static size_t
resident(void *p, size_t len)
{
	size_t n = len / page, res = 0;
	unsigned char *vec = malloc(n);

	ck_assert_int_eq(mincore(p, len, vec), 0);
	for (size_t i = 0; i < n; i++)
		res += vec[i] & 1;
	free(vec);
	return (res * page);
}

START_TEST(test_owner_every_page)
{
	static char owner_a[8] __attribute__((aligned(8)));
	static char owner_b[8] __attribute__((aligned(8)));
	char *a = vmem_span_alloc(5 * page, -1, owner_a);
	char *b = vmem_span_alloc(3 * page, -1, owner_b);

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq((uintptr_t)a % page, 0);
	for (size_t off = 0; off < 5 * page; off += 512)
		ck_assert_ptr_eq(vmem_owner(a + off), owner_a);
	for (size_t off = 0; off < 3 * page; off += 512)
		ck_assert_ptr_eq(vmem_owner(b + off), owner_b);
	ck_assert(vmem_contains(a + 5 * page - 1));
	vmem_span_free(a, 5 * page);
	vmem_span_free(b, 3 * page);
	ck_assert_ptr_null(vmem_owner(a));
	ck_assert_ptr_null(vmem_owner(b + page));
}
END_TEST

START_TEST(test_foreign_addresses)
{
	int on_stack;
	void *heap = malloc(64);
	void *map = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);

	ck_assert_ptr_null(vmem_owner(NULL));
	ck_assert_ptr_null(vmem_owner(&on_stack));
	ck_assert_ptr_null(vmem_owner(heap));
	ck_assert_ptr_null(vmem_owner(map));
	ck_assert_ptr_null(vmem_owner((void *)~(uintptr_t)0));
	ck_assert_ptr_null(vmem_owner((void *)((uintptr_t)1 << 50)));
	ck_assert(!vmem_contains(&page));
	free(heap);
	munmap(map, page);
}
END_TEST

START_TEST(test_coalesce_and_reuse)
{
	static char o[8] __attribute__((aligned(8)));
	struct vmem_usage u0, u1;
	char *a, *b, *c, *d;

	/* Make the region exist first: it is one free span of its own. */
	vmem_span_free(vmem_span_alloc(page, -1, o), page);
	vmem_usage(&u0);
	a = vmem_span_alloc(4 * page, -1, o);
	b = vmem_span_alloc(4 * page, -1, o);
	c = vmem_span_alloc(4 * page, -1, o);
	ck_assert_ptr_eq(b, a + 4 * page);
	ck_assert_ptr_eq(c, b + 4 * page);
	vmem_usage(&u1);
	ck_assert_uint_eq(u1.inuse - u0.inuse, 12 * page);

	vmem_span_free(b, 4 * page);    /* a hole between a and c */
	vmem_span_free(a, 4 * page);    /* merges with b's hole */
	vmem_span_free(c, 4 * page);    /* merges both and the tail */
	vmem_usage(&u1);
	ck_assert_uint_eq(u1.inuse, u0.inuse);
	ck_assert_uint_eq(u1.free_spans, u0.free_spans);

	/* The merged space is reused from its start, zeroed. */
	d = vmem_span_alloc(12 * page, -1, o);
	ck_assert_ptr_eq(d, a);
	for (size_t off = 0; off < 12 * page; off += page)
		ck_assert_int_eq(d[off], 0);
	vmem_span_free(d, 12 * page);
}
END_TEST

/*
 * A span grows in place over the free pages after it, and only over free
 * pages; the pages it takes map to its owner and the rest stay free.
 */
START_TEST(test_span_extend)
{
	static char o[8] __attribute__((aligned(8)));
	static char other[8] __attribute__((aligned(8)));
	struct vmem_usage u0, u1;
	char *a, *b;

	vmem_span_free(vmem_span_alloc(page, -1, o), page);
	vmem_usage(&u0);
	a = vmem_span_alloc(2 * page, -1, o);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(vmem_span_extend(a, 2 * page, 6 * page, o), 0);
	for (size_t off = 0; off < 6 * page; off += page / 2)
		ck_assert_ptr_eq(vmem_owner(a + off), o);
	ck_assert_ptr_null(vmem_owner(a + 6 * page));
	vmem_usage(&u1);
	ck_assert_uint_eq(u1.inuse - u0.inuse, 6 * page);

	/* The next span starts where a ends: a cannot grow any more. */
	b = vmem_span_alloc(page, -1, other);
	ck_assert_ptr_eq(b, a + 6 * page);
	ck_assert_int_eq(vmem_span_extend(a, 6 * page, 7 * page, o), -1);
	ck_assert_ptr_eq(vmem_owner(b), other);
	/* Nor by less than a page, nor shrink. */
	ck_assert_int_eq(vmem_span_extend(b, page, page + 1, other), -1);
	ck_assert_int_eq(vmem_span_extend(b, page, page, other), -1);

	vmem_span_free(a, 6 * page);
	vmem_span_free(b, page);
	vmem_usage(&u1);
	ck_assert_uint_eq(u1.inuse, u0.inuse);
	ck_assert_uint_eq(u1.free_spans, u0.free_spans);
}
END_TEST

START_TEST(test_pages_returned)
{
	static char o[8] __attribute__((aligned(8)));
	size_t len = 256 * page;
	char *a = vmem_span_alloc(len, -1, o);

	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(resident(a, len), 0);         /* nothing touched */
	memset(a, 0x5a, len);
	ck_assert_uint_eq(resident(a, len), len);
	vmem_span_free(a, len);
	ck_assert_uint_eq(resident(a, len), 0);         /* given back */
}
END_TEST

START_TEST(test_dedicated_region)
{
	static char o[8] __attribute__((aligned(8)));
	struct vmem_usage u0, u1;
	size_t len = VMEM_SLOT_SIZE + 16 * page;
	char *a;

	vmem_usage(&u0);
	a = vmem_span_alloc(len, -1, o);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_eq(vmem_owner(a), o);
	ck_assert_ptr_eq(vmem_owner(a + len - 1), o);
	a[len - 1] = 1;
	vmem_usage(&u1);
	ck_assert_uint_eq(u1.regions, u0.regions + 1);
	vmem_span_free(a, len);
	vmem_usage(&u1);
	ck_assert_uint_eq(u1.regions, u0.regions);      /* unmapped */
	ck_assert_uint_eq(u1.inuse, u0.inuse);
	ck_assert_ptr_null(vmem_owner(a));
}
END_TEST

/*
 * Dedicated regions of nine sizes, each with a page map of its own size,
 * taken and given back three times: the maps of destroyed regions are
 * kept for later regions, so the address space they hold stays what the
 * largest set in use at once needs, and does not grow with each round
 * (it grew by about 18 MiB a round when only eight were kept).
 */
START_TEST(test_dedicated_maps_reused)
{
	static char o[8] __attribute__((aligned(8)));
	size_t vm0 = 0;

	for (int round = 0; round < 3; round++) {
		for (size_t k = 1; k <= 9; k++) {
			size_t len = k * VMEM_SLOT_SIZE + page;
			char *a = vmem_span_alloc(len, -1, o);

			ck_assert_ptr_nonnull(a);
			ck_assert_ptr_eq(vmem_owner(a + len - 1), o);
			vmem_span_free(a, len);
			ck_assert_ptr_null(vmem_owner(a));
		}
		if (round == 0)
			vm0 = test_vm_size();
	}
	ck_assert_uint_le(test_vm_size(), vm0 + ((size_t)4 << 20));
}
END_TEST

/*
 * Under an address-space limit below 8 GiB, a region is unmapped once
 * all free, so that the program's other mappings get the room back: a
 * span of exactly 1 GiB gets a region of exactly a slot, which must go
 * too.  (Check runs each test in a child: the limit ends with it.)
 */
START_TEST(test_limit_slot_region_unmapped)
{
	static char o[8] __attribute__((aligned(8)));
	size_t len = VMEM_SLOT_SIZE;
	struct vmem_usage u0, u1;
	struct rlimit rl, old;
	char *s0, *a;

	s0 = vmem_span_alloc(page, -1, o);      /* no existing region all free */
	ck_assert_ptr_nonnull(s0);
	ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
	rl = old;
	rl.rlim_cur = test_vm_size() + ((size_t)3 << 30);
	if (rl.rlim_cur >= ((size_t)8 << 30) || rl.rlim_cur > old.rlim_cur) {
		vmem_span_free(s0, page);
		return;                 /* too big a process for the case */
	}
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
	vmem_usage(&u0);
	a = vmem_span_alloc(len, -1, o);
	ck_assert_ptr_nonnull(a);
	vmem_usage(&u1);
	ck_assert_uint_eq(u1.reserved, u0.reserved + len);
	vmem_span_free(a, len);
	vmem_usage(&u1);
	ck_assert_uint_eq(u1.reserved, u0.reserved);    /* unmapped */
	ck_assert_uint_eq(u1.regions, u0.regions);
	ck_assert_ptr_null(vmem_owner(a));
	vmem_span_free(s0, page);
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
}
END_TEST

/*
 * Under a tight address-space limit, with less room left than the
 * smallest ordinary region (16 MiB) and its page map need, a span must
 * still get a smaller region: that room is the program's heap (a process
 * under ulimit -v 30000 got 330 KiB of malloc, where glibc gives 24 MiB).
 * The regions there are filled first, under a limit that leaves no room
 * for another, so that the span needs a new one.
 */
START_TEST(test_limit_region_below_min)
{
	static char o[8] __attribute__((aligned(8)));
	enum { MAXSPANS = 4096 };
	static char *spans[MAXSPANS];
	static size_t lens[MAXSPANS];
	size_t n = 0, len = (size_t)1 << 20;
	struct vmem_usage u0, u1;
	struct rlimit rl, old;
	char *a;

	ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
	rl = old;
	rl.rlim_cur = test_vm_size() + ((size_t)1 << 20);
	if (rl.rlim_cur > old.rlim_cur)
		return;                 /* a limit already below the case */
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
	/* No room for a region: fill the ones there are. */
	for (size_t sz = VMEM_SLOT_SIZE / 2; sz >= page; sz /= 2) {
		while (n < MAXSPANS &&
		    (spans[n] = vmem_span_alloc(sz, -1, o)) != NULL)
			lens[n++] = sz;
	}
	ck_assert_uint_lt(n, MAXSPANS);
	/* Room for 8 MiB and its map, not for 16 MiB. */
	rl.rlim_cur = test_vm_size() + ((size_t)13 << 20);
	ck_assert_uint_le(rl.rlim_cur, old.rlim_cur);
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
	vmem_usage(&u0);
	a = vmem_span_alloc(len, -1, o);
	ck_assert_msg(a != NULL, "no region for a 1 MiB span under a limit "
	    "with 13 MiB of room");
	vmem_usage(&u1);
	ck_assert_uint_eq(u1.regions, u0.regions + 1);
	ck_assert_uint_lt(u1.reserved - u0.reserved, ((size_t)16 << 20));
	vmem_span_free(a, len);
	while (n > 0) {
		n--;
		vmem_span_free(spans[n], lens[n]);
	}
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
}
END_TEST

/*
 * Under an address-space limit a span bigger than a region gets a
 * region of its own size: growing it in place (realloc of a large block)
 * must take the address space after the region when no other mapping
 * has it.  It failed every time, and a block that grew a little at a
 * time moved to a new region at each step: under ulimit -v 400000,
 * realloc in 64 KiB steps to 100 MiB took 17 s (glibc: 0.8 s).  With a
 * mapping of someone else's right after, it must fail, changing nothing.
 */
START_TEST(test_limit_span_extends_region)
{
	static char o[8] __attribute__((aligned(8)));
	size_t len = (size_t)100 << 20, more = 16 * page;
	struct vmem_usage u0, u1;
	struct rlimit rl, old;
	char *a, *m;

	ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
	rl = old;
	rl.rlim_cur = test_vm_size() + ((size_t)512 << 20);
	if (rl.rlim_cur > old.rlim_cur || rl.rlim_cur >= ((size_t)800 << 20))
		return;                 /* regions would hold the span */
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
	vmem_usage(&u0);
	a = vmem_span_alloc(len, -1, o);
	ck_assert_ptr_nonnull(a);
	vmem_usage(&u1);
	ck_assert_uint_eq(u1.reserved, u0.reserved + len);  /* its own */
	ck_assert_int_eq(vmem_span_extend(a, len, len + more, o), 0);
	ck_assert_ptr_eq(vmem_owner(a + len + more - 1), o);
	vmem_usage(&u1);
	ck_assert_uint_eq(u1.reserved, u0.reserved + len + more);
	ck_assert_uint_eq(u1.inuse, u0.inuse + len + more);
	ck_assert_uint_eq(u1.regions, u0.regions + 1);
	len += more;
	/* Another mapping right after: no growth, nothing changed. */
	m = mmap(a + len, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS |
	    MAP_FIXED_NOREPLACE, -1, 0);
	if (m == a + len) {
		ck_assert_int_eq(vmem_span_extend(a, len, len + more, o), -1);
		vmem_usage(&u1);
		ck_assert_uint_eq(u1.reserved, u0.reserved + len);
		ck_assert_ptr_null(vmem_owner(m));
		ck_assert_int_eq(munmap(m, page), 0);
	}
	vmem_span_free(a, len);
	vmem_usage(&u1);
	ck_assert_uint_eq(u1.reserved, u0.reserved);    /* unmapped */
	ck_assert_uint_eq(u1.inuse, u0.inuse);
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
}
END_TEST

/*
 * Lower RLIMIT_AS below what the process maps, leaving 'room' bytes of
 * it had the arena's 1 GiB region not been reserved: the region is one
 * reserved before the limit, as in a program that calls setrlimit once
 * it runs.  False (the case does not apply) when no 1 GiB region was
 * reserved or the limit would not be lower than the one there is.
 */
static bool
limit_lower(size_t room)
{
	struct vmem_usage u;
	struct rlimit rl;

	vmem_usage(&u);
	ck_assert_int_eq(getrlimit(RLIMIT_AS, &rl), 0);
	if (u.reserved < VMEM_SLOT_SIZE || test_vm_size() >= ((size_t)8 << 30))
		return (false);
	if (test_vm_size() - VMEM_SLOT_SIZE + room > rl.rlim_cur)
		return (false);
	rl.rlim_cur = test_vm_size() - VMEM_SLOT_SIZE + room;
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
	return (true);
}

/*
 * A region reserved before the program lowered its limit keeps its
 * unused end: a span that needs a new region, for which there is room
 * only without that end, must get it (the end given back), not fail
 * with half the limit unused.  (Check runs each test in a child: the
 * limit ends with it.)
 */
START_TEST(test_limit_lowered_region_trimmed)
{
	static char o[8] __attribute__((aligned(8)));
	size_t len = VMEM_SLOT_SIZE / 2;
	struct vmem_usage u;
	char *s0, *a, *b;

	s0 = vmem_span_alloc(page, -1, o);      /* the 1 GiB region */
	ck_assert_ptr_nonnull(s0);
	if (!limit_lower((size_t)5 << 28)) {    /* two spans and 256 MiB */
		vmem_span_free(s0, page);
		return;
	}
	a = vmem_span_alloc(len, -1, o);        /* in the region */
	ck_assert_ptr_nonnull(a);
	b = vmem_span_alloc(len, -1, o);        /* the region's end must go */
	ck_assert_msg(b != NULL, "no room for a second 512 MiB span under a "
	    "limit lowered to leave 1.25 GiB besides the region");
	vmem_usage(&u);
	ck_assert_uint_le(u.reserved, 2 * len + page);
	vmem_span_free(b, len);
	vmem_span_free(a, len);
	vmem_span_free(s0, page);
	vmem_usage(&u);
	ck_assert_uint_eq(u.reserved, 0);       /* transient now: unmapped */
	ck_assert_ptr_nonnull(vmem_span_alloc(page, -1, o));
}
END_TEST

/*
 * After the limit is lowered, kmem_reap() (and so the aging pass) gives
 * back the region's unused address space: the program can map half of
 * the room it left itself.
 */
START_TEST(test_limit_lowered_reap_trims)
{
	static char o[8] __attribute__((aligned(8)));
	size_t room = (size_t)256 << 20;
	char *s0;
	void *m;

	s0 = vmem_span_alloc(page, -1, o);
	ck_assert_ptr_nonnull(s0);
	if (!limit_lower(room)) {
		vmem_span_free(s0, page);
		return;
	}
	kmem_reap();
	m = mmap(NULL, room / 2, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ck_assert_msg(m != MAP_FAILED, "the arena kept its 1 GiB region "
	    "under a lowered limit: %s", strerror(errno));
	ck_assert_int_eq(munmap(m, room / 2), 0);
	ck_assert_ptr_eq(vmem_owner(s0), o);
	vmem_span_free(s0, page);
}
END_TEST

#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)   /* they need their mmap */
/*
 * mmap, failing for metadata chunks (1 MiB: META_CHUNK) while set.  The
 * library calls mmap through the PLT, so this replaces the C library's.
 */
static volatile bool fail_meta_chunks;

void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (fail_meta_chunks && len == ((size_t)1 << 20)) {
		errno = ENOMEM;
		return (MAP_FAILED);
	}
	return ((void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off));
}

/*
 * A span that needs a new region when metadata has one block left (the
 * region's record) and none for the region's free span: the allocation
 * fails, and no region stays reserved with no way to reach it.
 */
START_TEST(test_region_no_metadata)
{
	size_t len = (size_t)1 << 30, n = 0, cap = 1 << 16;
	void **blk = malloc(cap * sizeof (*blk));
	struct vmem_usage u0, u1;
	char *s0, *s1;
	void *p;

	ck_assert_ptr_nonnull(blk);
	s0 = vmem_span_alloc(page, -1, &n);     /* an ordinary region in use */
	ck_assert_ptr_nonnull(s0);
	fail_meta_chunks = true;
	while (n < cap && (p = meta_alloc()) != NULL)
		blk[n++] = p;
	ck_assert_uint_lt(n, cap);
	meta_free(blk[--n]);                    /* one block left */
	vmem_usage(&u0);
	ck_assert_ptr_null(vmem_span_alloc(len, -1, &n));
	ck_assert_int_eq(errno, ENOMEM);
	vmem_usage(&u1);
	ck_assert_uint_eq(u1.reserved, u0.reserved);
	ck_assert_uint_eq(u1.regions, u0.regions);
	fail_meta_chunks = false;
	while (n > 0)
		meta_free(blk[--n]);
	s1 = vmem_span_alloc(len, -1, &n);
	ck_assert_ptr_nonnull(s1);
	vmem_span_free(s1, len);
	vmem_span_free(s0, page);
	vmem_usage(&u1);
	ck_assert_uint_le(u1.reserved, u0.reserved + len);
	free(blk);
}
END_TEST
#endif

START_TEST(test_bad_spans_and_injection)
{
	static char o[8] __attribute__((aligned(8)));
	void *p;

	errno = 0;
	ck_assert_ptr_null(vmem_span_alloc(0, -1, o));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(vmem_span_alloc(page + 1, -1, o));
	vmem_inject_failures(2);
	ck_assert_ptr_null(vmem_span_alloc(page, -1, o));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_ptr_null(vmem_span_alloc(page, -1, o));
	p = vmem_span_alloc(page, -1, o);               /* third works */
	ck_assert_ptr_nonnull(p);
	vmem_span_free(p, page);
	vmem_inject_failures(0);
}
END_TEST

/* Concurrent span traffic: owners stay exact, nothing overlaps. */
static void *
span_thread(void *arg)
{
	uint64_t seed = (uintptr_t)arg | 1;
	struct { char *p; size_t len; } held[16] = { { NULL, 0 } };

	for (int i = 0; i < 3000; i++) {
		int k = (int)(test_rand(&seed) % 16);

		if (held[k].p != NULL) {
			ck_assert_ptr_eq(vmem_owner(held[k].p +
			    held[k].len - 1), arg);
			ck_assert_int_eq(held[k].p[0], (char)k);
			vmem_span_free(held[k].p, held[k].len);
			held[k].p = NULL;
		} else {
			held[k].len = (1 + test_rand(&seed) % 64) * page;
			held[k].p = vmem_span_alloc(held[k].len, -1, arg);
			ck_assert_ptr_nonnull(held[k].p);
			held[k].p[0] = (char)k;
		}
	}
	for (int k = 0; k < 16; k++)
		if (held[k].p != NULL)
			vmem_span_free(held[k].p, held[k].len);
	return (NULL);
}

START_TEST(test_concurrent_spans)
{
	static uint64_t owners[8] __attribute__((aligned(8)));
	pthread_t t[8];

	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, span_thread,
		    &owners[i]), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
}
END_TEST

/* ------------------------------------------------------------ sizing */

START_TEST(test_slab_sizing)
{
	static const size_t sizes[] = { 8, 32, 64, 104, 128, 256, 384, 512,
	    1000, 1024, 4096, 5000, 8192, 16384, 65536, 100000, 262144,
	    1 << 20, 5 << 20, 16 << 20, 32 << 20 };

	for (size_t i = 0; i < sizeof (sizes) / sizeof (sizes[0]); i++) {
		uint32_t n;
		size_t chunk = sizes[i];
		size_t slab = slab_size_for(chunk, 8, 0, &n);
		size_t period = (chunk & -chunk) < page ? (chunk & -chunk) :
		    page;
		/* Colour room: strides of period >= 1 KiB that fit it. */
		size_t room = period >= 1024 && chunk + period <=
		    ((size_t)32 << 20) ? period - 64 : 0;
		double waste;

		ck_assert_uint_gt(slab, 0);
		ck_assert_uint_eq(slab % page, 0);
		ck_assert_uint_eq(n, (slab - room) / chunk);
		ck_assert_uint_le(slab, (size_t)32 << 20);
		if (chunk * 8 + room <= ((size_t)32 << 20))
			ck_assert_uint_ge(n, 8);        /* the target */
		else
			ck_assert_uint_eq(n, (((size_t)32 << 20) - room) /
			    chunk);
		waste = (double)(slab - n * chunk) / (double)slab;
		if (room == 0) {
			ck_assert_msg(waste < 0.02, "size %zu: slab %zu "
			    "wastes %.3f", chunk, slab, waste);
		} else {
			ck_assert_uint_ge(slab - n * chunk, room);
			ck_assert_msg(waste <= 1.0 / 32, "size %zu: slab %zu "
			    "wastes %.3f with colour room", chunk, slab, waste);
		}
		/* Aligned to the period, or a size class: no colour room. */
		slab = slab_size_for(chunk, period, 0, &n);
		ck_assert_uint_eq(n, slab / chunk);
		slab = slab_size_for(chunk, 8, KMC_SIZECLASS, &n);
		ck_assert_uint_eq(n, slab / chunk);
	}
	/* KMC_KVMEM: large slabs. */
	{
		uint32_t n;
		ck_assert_uint_ge(slab_size_for(64, 8, KMC_KVMEM, &n),
		    (size_t)2 << 20);
	}
	/* Larger than the largest slab: no slab size. */
	{
		uint32_t n;
		ck_assert_uint_eq(slab_size_for(((size_t)32 << 20) + 8, 8, 0,
		    &n), 0);
	}
}
END_TEST

START_TEST(test_sizing_tunables)
{
	uint32_t n;

	ck_assert_int_eq(tunable_set_id(KT_CACHE_OBJ_PER_SLAB, 64), 0);
	(void) slab_size_for(4096, 8, 0, &n);
	ck_assert_uint_ge(n, 64);
	ck_assert_int_eq(tunable_set_id(KT_CACHE_OBJ_PER_SLAB, 0), -1);
	ck_assert_int_eq(errno, ERANGE);
	ck_assert_int_eq(tunable_set_id(KT_CACHE_OBJ_PER_SLAB, 8), 0);
	ck_assert_int_eq(tunable_set_id(KT_CACHE_MAX_SIZE, 4), 0);
	ck_assert_uint_eq(slab_size_for(8 << 20, 8, 0, &n), 0);
	ck_assert_uint_le(slab_size_for(1 << 20, 8, 0, &n), (size_t)4 << 20);
	ck_assert_int_eq(tunable_set_id(KT_CACHE_MAX_SIZE, 32), 0);
	/* Environment parsing: bad values keep the default. */
	ck_assert_int_eq(tunable_parse_env(KT_CACHE_MAX_SIZE, "64"), 0);
	ck_assert_int_eq(tunable(KT_CACHE_MAX_SIZE), 64);
	ck_assert_int_eq(tunable_parse_env(KT_CACHE_MAX_SIZE, "abc"), -1);
	ck_assert_int_eq(tunable_parse_env(KT_CACHE_MAX_SIZE, "99999"), -1);
	ck_assert_int_eq(tunable_parse_env(KT_CACHE_MAX_SIZE, "12x"), -1);
	ck_assert_int_eq(tunable(KT_CACHE_MAX_SIZE), 64);
	ck_assert_int_eq(tunable_parse_env(KT_CACHE_OBJ_PER_SLAB, "1K"), 0);
	ck_assert_int_eq(tunable(KT_CACHE_OBJ_PER_SLAB), 1024);
}
END_TEST

/* ------------------------------------------------ metadata page runs */

/* Is every byte of p[0..len) c? */
static bool
all_bytes(const char *p, size_t len, unsigned char c)
{
	for (size_t k = 0; k < len; k++) {
		if ((unsigned char)p[k] != c)
			return (false);
	}
	return (true);
}

/*
 * Small runs come zeroed, page-aligned and disjoint from shared regions
 * (not an mmap each); a freed run reads as zeros when handed out again;
 * a big request gets a mapping of its own.
 */
START_TEST(test_meta_pages)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	enum { N = 64 };
	char *run[N];
	size_t before = meta_pages_bytes();
	char *big;

	for (int i = 0; i < N; i++) {
		size_t len = (size_t)(i % 7 + 1) * pg - (size_t)(i % 3);

		run[i] = meta_pages_alloc(len);
		ck_assert_ptr_nonnull(run[i]);
		ck_assert_uint_eq((uintptr_t)run[i] % pg, 0);
		ck_assert(all_bytes(run[i], len, 0));
		memset(run[i], 0xa0 + i % 16, len);
	}
	for (int i = 0; i < N; i++) {
		size_t len = (size_t)(i % 7 + 1) * pg - (size_t)(i % 3);

		/* Nobody else wrote into this run. */
		ck_assert(all_bytes(run[i], len, 0xa0 + i % 16));
	}
	/* 64 runs of 1 to 7 pages: a region or two, not 64 mappings. */
	ck_assert_uint_le(meta_pages_bytes() - before, 2 * 512 * 1024);
	for (int i = 0; i < N; i++)
		meta_pages_free(run[i], (size_t)(i % 7 + 1) * pg -
		    (size_t)(i % 3));
	for (int i = 0; i < N; i++) {
		size_t len = (size_t)(i % 7 + 1) * pg;

		run[i] = meta_pages_alloc(len);
		ck_assert_ptr_nonnull(run[i]);
		ck_assert(all_bytes(run[i], len, 0));
	}
	/* Reused: no new region. */
	ck_assert_uint_le(meta_pages_bytes() - before, 2 * 512 * 1024);
	for (int i = 0; i < N; i++)
		meta_pages_free(run[i], (size_t)(i % 7 + 1) * pg);
	big = meta_pages_alloc(64 * pg);
	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(big[64 * pg - 1], 0);
	meta_pages_free(big, 64 * pg);
	meta_pages_free(NULL, pg);      /* no-op */
}
END_TEST

/* How many of the pages holding m[0..n) are resident (mincore). */
static size_t
mutex_pages_resident(pthread_mutex_t **m, int n, size_t pg)
{
	size_t count = 0;

	for (int i = 0; i < n; i++) {
		char *at = (char *)((uintptr_t)m[i] & ~(uintptr_t)(pg - 1));
		unsigned char in;

		if (i > 0 && (uintptr_t)m[i - 1] / pg == (uintptr_t)at / pg)
			continue;       /* counted with the one before */
		ck_assert_int_eq(mincore(at, pg, &in), 0);
		count += in & 1;
	}
	return (count);
}

/*
 * A new mutex block, aligned and usable.  A passing ck_assert costs a
 * message to the parent: with four for each of 40,000 blocks the test
 * took up to 10 s under ASan on a loaded machine (0.4 s without them),
 * so the checks are asserted only when one fails.
 */
static pthread_mutex_t *
mutex_usable(void)
{
	pthread_mutex_t *m = meta_mutex_alloc();

	if (m == NULL || (uintptr_t)m % META_BLOCK_SIZE != 0 ||
	    pthread_mutex_trylock(m) != 0 || pthread_mutex_unlock(m) != 0)
		ck_abort_msg("mutex block %p: NULL, unaligned or not usable",
		    (void *)m);
	return (m);
}

/*
 * Mutex blocks (the locks fork() takes): usable, packed a line each on
 * shared pages (consecutive ones on the same page), and pages whose
 * mutexes are all freed are given back to the system, then reused.
 */
START_TEST(test_meta_mutexes)
{
	enum { N = 20000 };
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	pthread_mutex_t **m = calloc(N, sizeof (*m));
	size_t mapped, pages = 0, held;

	ck_assert_ptr_nonnull(m);
	for (int i = 0; i < N; i++) {
		m[i] = mutex_usable();
		if (i == 0 || (uintptr_t)m[i] / pg != (uintptr_t)m[i - 1] / pg)
			pages++;
	}
	/* 20,000 lines: 313 pages of 64 on x86-64. */
	ck_assert_uint_le(pages, (size_t)N * META_BLOCK_SIZE / pg + 8);
	held = mutex_pages_resident(m, N, pg);
	ck_assert_uint_ge(held, (size_t)N * META_BLOCK_SIZE / pg);
	mapped = meta_bytes();
	for (int i = 0; i < N; i++)
		meta_mutex_free(m[i]);
	/* Only pages that other mutexes (live caches') share stay. */
	ck_assert_uint_le(mutex_pages_resident(m, N, pg), 2);
	for (int i = 0; i < N; i++)
		m[i] = mutex_usable();
	ck_assert_uint_eq(meta_bytes(), mapped);        /* reused */
	for (int i = 0; i < N; i++)
		meta_mutex_free(m[i]);
	meta_mutex_free(NULL);                          /* no-op */
	free(m);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("vmem");
	TCase *tc = tcase_create("arena");
	TCase *sz = tcase_create("sizing");
	TCase *mt = tcase_create("meta");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_owner_every_page);
	tcase_add_test(tc, test_foreign_addresses);
	tcase_add_test(tc, test_coalesce_and_reuse);
	tcase_add_test(tc, test_span_extend);
	tcase_add_test(tc, test_pages_returned);
	tcase_add_test(tc, test_dedicated_region);
	tcase_add_test(tc, test_dedicated_maps_reused);
	tcase_add_test(tc, test_limit_slot_region_unmapped);
	tcase_add_test(tc, test_limit_region_below_min);
	tcase_add_test(tc, test_limit_span_extends_region);
	tcase_add_test(tc, test_limit_lowered_region_trimmed);
	tcase_add_test(tc, test_limit_lowered_reap_trims);
	tcase_add_test(tc, test_bad_spans_and_injection);
#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)
	tcase_add_test(tc, test_region_no_metadata);
#endif
	tcase_add_test(tc, test_concurrent_spans);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(sz, setup, NULL);
	tcase_add_test(sz, test_slab_sizing);
	tcase_add_test(sz, test_sizing_tunables);
	suite_add_tcase(s, sz);
	tcase_set_timeout(mt, 60);
	tcase_add_test(mt, test_meta_pages);
	tcase_add_test(mt, test_meta_mutexes);
	suite_add_tcase(s, mt);
	return (test_run_suite(s));
}
