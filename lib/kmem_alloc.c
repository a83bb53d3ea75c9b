/*
 * kmem_alloc.c - general-purpose allocation on size-class caches:
 * kmem_alloc / kmem_zalloc / kmem_free, vmem_alloc / vmem_zalloc /
 * vmem_free, and the per-class statistics.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * CLASSES.  Candidate sizes are 8, then every multiple of 16 up to 4 KiB
 * (fine spacing where most objects are), then eight per doubling (12.5%
 * apart) up to kmem_alloc_max_class.  For each candidate the slab layer
 * chooses the slab size that wastes least (slab_size_for); as in zsmalloc,
 * a candidate whose slab size and objects per slab equal those of the next
 * larger kept class is merged into it: the larger class stores its
 * objects in the same slabs with no extra waste.  A power of two is never
 * merged away, so objects of a power-of-two class 2^k start at multiples
 * of min(2^k, page) (slabs are page aligned, chunks are 2^k): aligned
 * requests use them.  Every kept class is an ordinary kmem cache named
 * kmem_alloc_<size>, created when first used, with 16-byte alignment
 * (8 for the 8-byte class): malloc's guarantee; a power-of-two class
 * states its natural alignment (up to a page), which its stride gives
 * anyway, so that KMEM_DEBUG classes keep it (ka_class_align).
 *
 * LOOKUP.  O(1), no loop: a table indexed by (size + 7) / 8 up to 4 KiB;
 * above, the class index follows from the position of the highest bit and
 * the three bits below it.  Both tables give the index of a candidate;
 * ka_kept maps a candidate to the class that serves it.
 *
 * LARGE.  Requests above the largest class (or aligned beyond a page) get
 * a span of their own from the arena, owned by a ka_large descriptor (the
 * arena's KMEM_OWNER_LARGE), so that any address inside maps back to it.
 * A new span reads as zero (the arena returns freed pages), so KM_ZERO
 * (kmem_zalloc, vmem_zalloc, calloc) costs nothing there and faults no
 * page in; only a spare, which kept its pages, is cleared.
 * A freed span is kept, pages and all, as a spare (at most KA_SPARE_BYTES
 * in all) for a later request of about its size (at most 1/4 larger;
 * an aligned request's size counts the slack it needs, so such a span has
 * room for it wherever it starts):
 * programs free and allocate the same large buffers again and again, and
 * mapping, faulting and zeroing them each time costs more than the copy
 * they hold.  Spares are kept per CPU (KA_SPARE_SHARDS lists of at most
 * KA_SPARE_PER spans, the freeing CPU's), so that threads on different
 * CPUs share no lock.  Half of KA_SPARE_BYTES is shared out among the
 * lists in use, each list's share counted under its lock; the other half
 * goes to whichever lists need more, counted in one atomic (ka_spare_extra)
 * that only spares beyond a list's share touch.  So a thread freeing and
 * allocating a block over and over shares no cache line with others, and
 * one thread may keep more than half of the budget (on two CPUs, a
 * working set of 384 blocks of 256 KiB, freed and allocated again, faults
 * no page in).  A request looks at its own CPU's list first, then at the
 * others that hold any.  Spares older than kmem_cache_expire go back on
 * the aging pass, all of them under pressure (reap_set_trim); the first
 * new span starts aging (ka_large_alloc), as the first class cache does,
 * since a program that asks only for large blocks creates no cache.
 * Spans count against kmem_memory_limit (reap.c counts all the arena
 * maps), so a new one, and a block that grows, is checked against it as
 * a slab's growth is.
 * A large block that grows (ka_large_grow, for realloc) takes the free
 * pages after its span if there are enough; otherwise its pages move to a
 * new span with mremap(MREMAP_DONTUNMAP) instead of being copied: the old
 * span stays mapped, empty, and goes back to the arena, so the arena
 * never has a hole another mmap could take.  Before Linux 6.17 the kernel
 * moves only a range within one mapping, and a moved block is one mapping
 * followed by the arena's: there a block moves as one mapping, grown to
 * its new size, and the rest is copied (ka_large_move).  When a move
 * fails the block is copied, and the new span, which the failed call may
 * have unmapped, is mapped again first (a mark written in it beforehand
 * tells a span the call left alone from another mapping: ka_move_undo).
 *
 * BOOTSTRAP.  Creating a cache, a class or any other, may allocate
 * through malloc when libkmem_malloc.so serves it: the first one starts
 * the kmem taskq, whose pthread_create allocates, and the first debug
 * cache's backtrace() loads libgcc_s.  Such a request could need a class
 * cache that does not exist yet, whose creation would wait on the
 * start-up already running on this thread.  So while a thread creates a
 * cache or starts this layer (cache_creating), its own nested requests
 * are served from a static bump arena; such blocks are never reused, and
 * freeing one is a no-op.  libkmem_malloc also serves from it what is
 * asked for before its constructor runs (the constructors of other
 * libraries run first); those requests get at most three quarters of it
 * (ka_boot_alloc_early), so that however much they ask for, the
 * start-up's own nested requests (the kmem taskq's threads) find room.
 * A request that does not fit takes nothing.
 *
 * LOCKING.  ka_lock serialises class creation only; lookups read the
 * class pointers with acquire loads.  Each spare list has its own lock,
 * a test-and-set flag (ka_spares_lock) held for a scan of the list at
 * most, never across a call into the arena; no two are held at once,
 * except by fork, which takes them all in order.  The caches and the
 * arena have their own locks.
 *
 * KMEM_DEBUG.  Classes created while kmem_debug is set are debug caches
 * (debug.c): kmem_alloc records the size asked for in the object's debug
 * tail (the bytes after it up to the class size are redzone) and
 * kmem_free checks it.  Large blocks are not debugged.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cache.h"
#include "cpu.h"
#include "emergency.h"
#include "kmem_alloc.h"
#include "meta.h"
#include "reap.h"
#include "slab.h"
#include "tunables.h"
#include "vmem.h"

#define KA_BIG_BASE     (1 + KA_SMALL_MAX / 16)     /* first big candidate */
#define KA_NCAND        (KA_BIG_BASE + KA_BIG_SLOTS)
#define KA_BOOT_SIZE    ((size_t)1 << 20)
#define KA_SPARE_SHARDS 16      /* spare lists, by CPU (a power of 2) */
#define KA_SPARE_PER    256     /* spans per list */
#define KA_SPARE_BYTES  ((size_t)128 << 20)

/*
 * A large allocation: the arena span it lives in.  'self' sits where a
 * slab descriptor holds its cache and points to the descriptor itself,
 * which no cache is: kmem_cache_free's check of the owner's cache then
 * turns large blocks away with no check of the owner's kind.
 */
struct ka_large {
	uint8_t kind;           /* KMEM_OWNER_LARGE */
	bool extra;             /* a spare beyond its list's share */
	uint32_t moved_pages;   /* leading pages moved here (ka_large_move) */
	char *base;             /* the span */
	const struct ka_large *self;
	size_t len;
	char *buf;              /* what the caller got */
	size_t size;            /* what the caller asked for */
	int64_t freed;          /* kmem_stamp_ns() when it became a spare */
	char *freed_buf;        /* a spare: the block it held (reports) */
};
META_FITS(struct ka_large);
_Static_assert(offsetof(struct ka_large, self) ==
    offsetof(struct kmem_slab, cache), "ka_large.self not at slab.cache");

struct ka_class ka_cand[KA_NCAND];
static uint16_t ka_kept[KA_NCAND];      /* candidate -> serving candidate */
uint16_t ka_small[KA_SMALL_SLOTS];
_Atomic(kmem_cache_t *) ka_fast[KA_SMALL_SLOTS];
_Atomic(kmem_cache_t *) ka_fast_big[KA_BIG_SLOTS];
static unsigned int ka_ncand;           /* candidates up to ka_max_class */
static uint16_t ka_class_list[KA_NCAND];        /* kept, ascending */
static int ka_nclasses;
size_t ka_max_class;
_Atomic bool ka_ready;
static pthread_once_t ka_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t ka_lock KMEM_FORK_LOCK =
    PTHREAD_MUTEX_INITIALIZER;

static struct ka_spares {
	_Atomic bool locked;    /* ka_spares_lock */
	_Atomic int n;          /* written under lock, peeked at without */
	size_t bytes;           /* of spares within the list's share */
	struct ka_large *v[KA_SPARE_PER];
} KMEM_ALIGNED_LINE ka_spares[KA_SPARE_SHARDS];
static _Atomic size_t ka_spare_extra;   /* of spares beyond shares */

static _Alignas(16) char ka_boot[KA_BOOT_SIZE];
static _Atomic size_t ka_boot_used;

/* ------------------------------------------------------------ classes */

static void ka_spare_trim(int64_t before);

/*
 * A class's alignment: 16 (8 for the 8-byte class), and a power-of-two
 * class's own size up to a page.  Its stride is its size, so this changes
 * nothing but KMEM_DEBUG classes, whose stride adds a redzone: their
 * power-of-two objects stay naturally aligned too (see CLASSES).
 */
static size_t
ka_class_align(size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	if (size == 8)
		return (8);
	if ((size & (size - 1)) == 0 && size > 16)
		return (size < page ? size : page);
	return (16);
}

static inline unsigned int
ka_index(size_t size)
{
	if (size <= KA_SMALL_MAX)
		return (ka_small[(size + 7) >> 3]);
	return (ka_kept[KA_BIG_BASE + ka_big_slot(size)]);
}

#ifdef MREMAP_DONTUNMAP
static void ka_move_init(void);
#endif

static void
ka_init_once(void)
{
	unsigned int n = 0;
	int err = errno;        /* the first malloc's: kept, see ka_create */
	size_t max;

	kmem_init();                    /* tunables first */
	max = (size_t)tunable_fixed(KT_ALLOC_MAX_CLASS);
	ka_cand[n++].size = 8;
	for (size_t s = 16; s <= KA_SMALL_MAX; s += 16)
		ka_cand[n++].size = s;
	for (unsigned int k = 12; k < KA_MAX_SHIFT; k++) {
		for (unsigned int j = 1; j <= KA_STEPS; j++)
			ka_cand[n++].size = ((size_t)1 << k) +
			    j * ((size_t)1 << (k - 3));
	}
	/* Only candidates up to the largest class (a class size). */
	while (n > 1 && ka_cand[n - 1].size > max)
		n--;
	ka_max_class = ka_cand[n - 1].size;
	ka_ncand = n;
	for (unsigned int i = 0; i < n; i++)
		ka_cand[i].slab_size = slab_size_for(ka_cand[i].size,
		    ka_class_align(ka_cand[i].size), KMC_SIZECLASS,
		    &ka_cand[i].objs_per_slab);
	/* Merge downwards into the next larger kept class. */
	ka_kept[n - 1] = (uint16_t)(n - 1);
	for (unsigned int i = n - 1; i-- > 0;) {
		struct ka_class *c = &ka_cand[i], *up = &ka_cand[ka_kept[i + 1]];
		bool pow2 = (c->size & (c->size - 1)) == 0;

		ka_kept[i] = (uint16_t)(!pow2 && c->slab_size == up->slab_size &&
		    c->objs_per_slab == up->objs_per_slab ? ka_kept[i + 1] : i);
	}
	for (unsigned int i = 0; i < n; i++) {
		if (ka_kept[i] == i)
			ka_class_list[ka_nclasses++] = (uint16_t)i;
	}
	reap_set_trim(ka_spare_trim);
#ifdef MREMAP_DONTUNMAP
	ka_move_init();
#endif
	ka_small[0] = ka_kept[0];
	for (size_t slot = 1; slot < KA_SMALL_SLOTS; slot++) {
		size_t size = slot * 8;

		ka_small[slot] = ka_kept[size <= 8 ? 0 : (size + 15) / 16];
	}
	atomic_store(&ka_ready, true);
	errno = err;
}

void
ka_init(void)
{
	bool was = cache_creating;

	cache_creating = true;
	(void) pthread_once(&ka_once, ka_init_once);
	cache_creating = was;
}

bool
ka_nested(void)
{
	return (cache_creating);
}

/* Point malloc's fast tables at cp for every size that class c serves. */
static void
ka_fast_publish(const struct ka_class *c, kmem_cache_t *cp)
{
	uint16_t idx = (uint16_t)(c - ka_cand);

	for (size_t slot = 1; slot < KA_SMALL_SLOTS; slot++) {
		if (ka_small[slot] == idx)
			atomic_store_explicit(&ka_fast[slot], cp,
			    memory_order_release);
	}
	for (unsigned int i = KA_BIG_BASE; i < ka_ncand; i++) {
		if (ka_kept[i] == idx)
			atomic_store_explicit(&ka_fast_big[i - KA_BIG_BASE],
			    cp, memory_order_release);
	}
}

/*
 * The cache of class c, created on first use (out of the hot path).  Made,
 * it leaves errno as it was: a successful allocation does not change it,
 * as glibc's does not (a program reads errno after readdir, say, with
 * allocations between its calls), and starting the aging chain and
 * placing the cache's regions try calls that may fail on the way.
 */
static __attribute__((noinline)) kmem_cache_t *
ka_create(struct ka_class *c)
{
	kmem_cache_t *cp;
	char name[KMEM_CACHE_NAMELEN];
	int err = errno;

	/*
	 * The first cache starts the aging chain and the statistics, which
	 * take stats_lock: not under ka_lock, which fork() takes after
	 * stats_lock (fork.c).  Started here, cache_create's reap_start()
	 * finds it done.  Nested allocations (the kmem taskq's
	 * pthread_create) go to the bootstrap blocks.
	 */
	cache_creating = true;
	reap_start();
	cache_creating = false;
	pthread_mutex_lock(&ka_lock);
	cp = atomic_load(&c->cp);
	if (cp == NULL && !atomic_load(&c->nocache)) {
		snprintf(name, sizeof (name), "kmem_alloc_%zu", c->size);
		cache_creating = true;
		cp = cache_create(name, c->size, ka_class_align(c->size),
		    NULL, NULL, NULL, NULL, NULL, 0, true);
		cache_creating = false;
		/*
		 * EINVAL: the class cannot be a cache (larger, with any
		 * KMEM_DEBUG redzone, than kmem_cache_max_size allows); its
		 * requests get spans of their own (ka_alloc), as larger ones
		 * do, rather than failing.  Said once.  Any other failure
		 * (no memory) is the request's to report (ka_alloc).
		 */
		if (cp == NULL) {
			bool never = errno == EINVAL;

			atomic_store(&c->nocache, never);
			if (never)
				kmem_report("kmem_alloc: class %zu is larger, "
				    "with any KMEM_DEBUG redzone, than "
				    "kmem_cache_max_size allows: its requests "
				    "get spans of their own", c->size);
		}
		atomic_store_explicit(&c->cp, cp, memory_order_release);
		if (cp != NULL && cp->fastkey == KMEM_CACHE_FAST_RSEQ)
			ka_fast_publish(c, cp);
	}
	pthread_mutex_unlock(&ka_lock);
	if (cp != NULL)
		errno = err;
	return (cp);
}

kmem_cache_t *
ka_cache_for(size_t size)
{
	struct ka_class *c = &ka_cand[ka_index(size)];
	kmem_cache_t *cp = atomic_load_explicit(&c->cp, memory_order_acquire);

	if (KMEM_LIKELY(cp != NULL))
		return (cp);
	if (atomic_load_explicit(&c->nocache, memory_order_relaxed))
		return (NULL);
	return (ka_create(c));
}

kmem_cache_t *
ka_cache_made(size_t size)
{
	return (atomic_load_explicit(&ka_cand[ka_index(size)].cp,
	    memory_order_acquire));
}

/* ------------------------------------------------------------ bootstrap */

/*
 * A block from the bootstrap arena, aligned to align (a power of two, at
 * least 16); its size sits in the 16 bytes before it, then its address
 * scrambled (KA_BOOT_TAG): a pointer into a block, or into the unused
 * rest of the arena, has no such tag before it and is no block
 * (ka_classify: free and realloc report it; its size would be whatever
 * the program wrote there).
 */
#define KA_BOOT_TAG(p)  ((uintptr_t)(p) ^ (uintptr_t)0x6b61626f6f74ba5eULL)

#define KA_BOOT_EARLY   (KA_BOOT_SIZE / 4 * 3)  /* ka_boot_alloc_early's */

/* The same from the arena's first end bytes; one that fails takes none. */
static void *
ka_boot_take(size_t size, size_t align, size_t end)
{
	size_t need, off, start;

	if (align < 16)
		align = 16;
	if (size > end || align > end / 2) {
		errno = ENOMEM;
		return (NULL);
	}
	need = KMEM_P2ROUNDUP(size, 16) + 16 + align - 16;
	off = atomic_load(&ka_boot_used);
	do {
		if (need > end || off > end - need) {
			errno = ENOMEM;
			return (NULL);
		}
	} while (!atomic_compare_exchange_weak(&ka_boot_used, &off,
	    off + need));
	start = KMEM_P2ROUNDUP((uintptr_t)ka_boot + off + 16, align) -
	    (uintptr_t)ka_boot;
	*(size_t *)(ka_boot + start - 16) = size;
	*(uintptr_t *)(ka_boot + start - 8) = KA_BOOT_TAG(ka_boot + start);
	return (ka_boot + start);
}

void *
ka_boot_alloc(size_t size, size_t align)
{
	return (ka_boot_take(size, align, KA_BOOT_SIZE));
}

void *
ka_boot_alloc_early(size_t size, size_t align)
{
	return (ka_boot_take(size, align, KA_BOOT_EARLY));
}

static bool
ka_boot_owns(const void *buf)
{
	return ((const char *)buf >= ka_boot &&
	    (const char *)buf < ka_boot + KA_BOOT_SIZE);
}

static size_t
ka_boot_size(const void *buf)
{
	return (*(const size_t *)((const char *)buf - 16));
}

/* Whether buf (in the arena: ka_boot_owns) is a block ka_boot_alloc gave. */
static bool
ka_boot_block(const void *buf)
{
	const char *p = buf;
	size_t off = (size_t)(p - ka_boot);
	size_t used = KMEM_MIN(atomic_load(&ka_boot_used), KA_BOOT_SIZE);

	if (off < 16 || off >= used || (off & 15) != 0 ||
	    *(const uintptr_t *)(p - 8) != KA_BOOT_TAG(p))
		return (false);
	return (ka_boot_size(p) <= KA_BOOT_SIZE - off);
}

/* ------------------------------------------------------------ large */

static struct ka_large *ka_spare_take(size_t len);

/* Whether len bytes are more than an address-space limit lets be mapped. */
static bool
ka_beyond_limit(size_t len)
{
	struct rlimit rl;

	return (getrlimit(RLIMIT_AS, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY && len >= rl.rlim_cur);
}

void *
ka_large_alloc(size_t size, size_t align, int kmflags)
{
	size_t page = (size_t)1 << vmem_page_shift;
	size_t len, extra = align > page ? align - page : 0;
	struct ka_large *l;
	char *base;
	bool was;
	int err = errno;        /* a block leaves it as it was (ka_create) */

	if (size > KA_LARGE_MAX || align > KA_LARGE_MAX) {
		errno = ENOMEM;
		return (NULL);
	}
	len = KMEM_P2ROUNDUP(size, page) + extra;
	if ((l = ka_spare_take(len)) != NULL) {
		/* Its span has room for size at align after base, as a new one. */
		l->buf = (char *)KMEM_P2ROUNDUP((uintptr_t)l->base,
		    KMEM_MAX(align, 1));
		l->freed_buf = NULL;
		l->size = size;
		if (kmflags & KM_ZERO)
			memset(l->buf, 0, size);        /* a spare kept its pages */
		return (l->buf);
	}
	/*
	 * Its spare must age (see above) even where no cache exists: start
	 * aging as ka_create does, nested allocations to the bootstrap.
	 */
	was = cache_creating;
	cache_creating = true;
	reap_start();
	cache_creating = was;
	/*
	 * No span, or no descriptor for it (metadata could not be mapped):
	 * memory is short.  Reap every cache and give back the
	 * spares (reap_pressure), which may hold what an RLIMIT_AS needs,
	 * and try again: KM_NOSLEEP once, as a cache's KM_NOSLEEP grows
	 * once more after the reap (kmem_cache.c), KM_MAYFAIL (malloc)
	 * three times; KM_SLEEP and KM_PUSHPAGE never return NULL for
	 * lack of memory: after those tries they wait for memory to be
	 * freed, as a cache's do, unless the block is larger than
	 * RLIMIT_AS allows (then no memory freed can make room).
	 */
	l = NULL;
	base = NULL;
	for (unsigned int tries = 0;; tries++) {
		if (l == NULL && (l = meta_alloc()) != NULL)
			l->self = l;    /* before the arena's map names it */
		if (l != NULL)
			base = vmem_span_alloc(len, cpu_node(cpu_current()), l);
		if (base != NULL || ((kmflags & KM_NOSLEEP) ? tries == 1 :
		    (kmflags & KM_MAYFAIL) && tries == 3) ||
		    (tries == 3 && ka_beyond_limit(len)))
			break;
		if (tries >= 3) {
			if (tries == 3)
				kmem_report("kmem_alloc(%zu): out of memory; "
				    "waiting for memory to be freed", size);
			cache_backoff(tries - 3);
		}
		reap_pressure();
	}
	if (base == NULL) {
		if (l != NULL)
			meta_free(l);
		errno = ENOMEM;
		return (NULL);
	}
	l->kind = KMEM_OWNER_LARGE;
	l->base = base;
	l->len = len;
	l->buf = (char *)KMEM_P2ROUNDUP((uintptr_t)base, KMEM_MAX(align, 1));
	l->size = size;
	reap_check_limit();     /* mapped memory, as a slab's growth is */
	errno = err;
	return (l->buf);        /* a new span reads as zero: no KM_ZERO work */
}

/* The descriptor of a large allocation that starts at buf, or NULL. */
static struct ka_large *
ka_large_of(const void *buf)
{
	struct ka_large *l = vmem_owner(buf);

	return (l != NULL && l->kind == KMEM_OWNER_LARGE && l->buf == buf ?
	    l : NULL);
}

/*
 * Give a large block's span back.  Its pages may be mappings of their own
 * (moved in by ka_large_grow, or given other madvise flags by the
 * program): a fresh mapping replaces them, which returns their memory as
 * MADV_DONTNEED would and merges the range back into the arena's mapping,
 * so the arena does not collect such mappings (and before Linux 6.17 a
 * block across two of them cannot move).  Should that mmap fail, the
 * range may be a hole: the span and l are kept, unused.
 */
static void
ka_large_unmap(struct ka_large *l)
{
	int err = errno;        /* free does not change it */

	if (vmem_span_remap(l->base, l->len, true) != 0)
		l->kind = 0;            /* kept, unused: pointers read foreign */
	else {
		vmem_span_free_returned(l->base, l->len);
		meta_free(l);
	}
	errno = err;
}

#ifdef MREMAP_DONTUNMAP
enum ka_move {
	KA_MOVED,               /* the old span can go back to the arena */
	KA_MOVED_OLD_LOST,      /* moved, but the old span must stay unused */
	KA_MOVE_FAILED,         /* not moved; the new span can go back */
	KA_MOVE_FAILED_LOST     /* not moved; the new span must stay unused */
};

/*
 * Whether blocks move as one mapping (see ka_large_move): set at start on
 * kernels before 6.17, and when mremap refuses a block of several
 * mappings (a kernel that reports a newer version, say).
 */
static _Atomic bool ka_move_split;
static bool ka_move_split_kernel;       /* what the kernel's version says */

/* From ka_init_once: no once of its own, which a fork could catch half run. */
static void
ka_move_init(void)
{
	struct utsname u;
	unsigned int major = 0, minor = 0;

	if (uname(&u) == 0 && sscanf(u.release, "%u.%u", &major, &minor) == 2 &&
	    (major < 6 || (major == 6 && minor < 17)))
		ka_move_split_kernel = true;
	atomic_store(&ka_move_split, ka_move_split_kernel);
}

/*
 * Move the pages of l's span into the new span [base, base + len).
 *
 * The old span is left mapped (MREMAP_DONTUNMAP): the arena never has a
 * hole another mmap could take.  But a moved block is a mapping of its
 * own, the pages it later takes in place (vmem_span_extend) are the
 * arena's, and before Linux 6.17 (Debian 12 runs 6.1) mremap moves only
 * a range within one mapping: it fails with EFAULT, having unmapped the
 * destination first.  There (ka_move_split) a block moves as one
 * mapping: its leading moved_pages (the mapping of its last move, or all
 * of a block never moved) move and grow to len in one call without
 * MREMAP_DONTUNMAP, the pages after them are copied (what it took in
 * place since, so each byte is copied about once while a block grows),
 * and the hole left at the old span is mapped again at once (if another
 * thread's mmap took it meanwhile, the old span is kept unused).
 *
 * *movedp: the leading pages of the new span that are one mapping.
 */
/*
 * The mark ka_large_move writes in the first word of the new span before
 * each mremap into it: the address scrambled, which no other mapping
 * holds there.
 */
#define KA_MOVE_MARK(p) ((uintptr_t)(p) ^ (uintptr_t)0x6b616d6f76656d6bULL)

/*
 * After a failed mremap into [base, base + len) of the new span: the
 * kernel unmapped that destination first, or left it alone (a check that
 * failed before, as recent kernels make of the source's mappings).  A
 * hole is mapped again; a range still mapped whole that holds the mark
 * is the span, never unmapped.  0 when the span is whole again, -1 when
 * another mmap took part of the hole: the span must stay unused.
 */
static int
ka_move_undo(char *base, size_t len)
{
	uintptr_t mark = 0;
	struct iovec here = { &mark, sizeof (mark) };
	struct iovec there = { base, sizeof (mark) };

	if (vmem_span_remap(base, len, false) == 0)
		return (0);
	/* Read without a fault: another mapping there may be PROT_NONE. */
	if (msync(base, len, MS_ASYNC) != 0 || process_vm_readv(getpid(),
	    &here, 1, &there, 1, 0) != (ssize_t)sizeof (mark))
		return (-1);
	return (mark == KA_MOVE_MARK(base) ? 0 : -1);
}

static enum ka_move
ka_large_move(struct ka_large *l, char *base, size_t len, uint32_t *movedp)
{
	unsigned int shift = vmem_page_shift;
	size_t m;
	int err;

	if (!atomic_load_explicit(&ka_move_split, memory_order_relaxed)) {
		*(uintptr_t *)base = KA_MOVE_MARK(base);
		if (mremap(l->base, l->len, l->len, MREMAP_MAYMOVE |
		    MREMAP_FIXED | MREMAP_DONTUNMAP, base) != MAP_FAILED) {
			*movedp = (uint32_t)(l->len >> shift);
			return (KA_MOVED);
		}
		err = errno;
		/*
		 * What the failed call may have unmapped is its destination,
		 * [base, base + l->len): the rest of the new span is still
		 * the arena's mapping, so a remap of all len bytes would
		 * always collide with it and lose the span.
		 */
		if (ka_move_undo(base, l->len) != 0)
			return (KA_MOVE_FAILED_LOST);
		if (err != EFAULT)
			return (KA_MOVE_FAILED);        /* no memory, say */
		atomic_store_explicit(&ka_move_split, true,
		    memory_order_relaxed);
	}
	m = l->moved_pages != 0 ? (size_t)l->moved_pages << shift : l->len;
	*(uintptr_t *)base = KA_MOVE_MARK(base);
	if (mremap(l->base, m, len, MREMAP_MAYMOVE | MREMAP_FIXED, base) ==
	    MAP_FAILED) {
		/* Several mappings even there: copy. */
		return (ka_move_undo(base, len) == 0 ? KA_MOVE_FAILED :
		    KA_MOVE_FAILED_LOST);
	}
	if (m < l->len)
		memcpy(base + m, l->base + m, l->len - m);
	*movedp = (uint32_t)(len >> shift);
	return (vmem_span_remap(l->base, m, false) == 0 ? KA_MOVED :
	    KA_MOVED_OLD_LOST);
}
#endif

void
ka_large_move_split(bool force)
{
#ifdef MREMAP_DONTUNMAP
	ka_init();                      /* which sets it from the kernel */
	atomic_store(&ka_move_split, force || ka_move_split_kernel);
#else
	(void) force;
#endif
}

void *
ka_large_grow(void *buf, size_t size)
{
	size_t page = (size_t)1 << vmem_page_shift;
	struct ka_large *l = ka_large_of(buf), *nl;
	int node = cpu_node(cpu_current());
	size_t len;
	char *base;

	if (l == NULL || l->buf != l->base || size > KA_LARGE_MAX)
		return (NULL);
	len = KMEM_P2ROUNDUP(size, page);
	if (len <= l->len)
		return (NULL);
	if (vmem_span_extend(l->base, l->len, len, l) == 0) {
		l->len = len;           /* the pages after it were free */
		l->size = size;
		reap_check_limit();     /* more mapped, as for a new span */
		return (buf);
	}
#ifdef MREMAP_DONTUNMAP
	if ((nl = meta_alloc()) == NULL)
		return (NULL);
	nl->self = nl;
	if ((base = vmem_span_alloc(len, node, nl)) == NULL) {
		meta_free(nl);
		return (NULL);
	}
	switch (ka_large_move(l, base, len, &nl->moved_pages)) {
	case KA_MOVE_FAILED:            /* the caller copies */
		vmem_span_free(base, len);
		meta_free(nl);
		return (NULL);
	case KA_MOVE_FAILED_LOST:       /* the new span stays unused */
		return (NULL);
	case KA_MOVED_OLD_LOST:         /* the old span stays unused */
		l->kind = 0;
		break;
	default:
		ka_large_unmap(l);
		break;
	}
	nl->kind = KMEM_OWNER_LARGE;
	nl->base = nl->buf = base;
	nl->len = len;
	nl->size = size;
	reap_check_limit();
	return (base);
#else
	return (NULL);          /* C library headers before Linux 5.7 */
#endif
}

/*
 * A spare list's lock: test-and-set, released by a plain store, so that
 * a large free or allocation pays one locked instruction for it where a
 * mutex costs two (lock and unlock).  A holder runs briefly (at most a
 * scan of KA_SPARE_PER entries) and never blocks or calls out; a waiter
 * spins for 256 pauses (microseconds: longer than a scan), then yields
 * the CPU at each try, since the holder may have been preempted.  Yielding
 * after 64 made 4 producers and 4 consumers of large blocks on 2 CPUs
 * twice as slow as with a mutex: the waiters gave their CPU away while
 * the holder, running elsewhere, was about to let go.
 */
static void
ka_spares_lock(struct ka_spares *sp)
{
	for (unsigned int spins = 0;; spins++) {
		if (!atomic_load_explicit(&sp->locked, memory_order_relaxed) &&
		    !atomic_exchange_explicit(&sp->locked, true,
		    memory_order_acquire))
			return;
		if (spins >= 256)
			(void) sched_yield();
#if defined(__x86_64__) || defined(__i386__)
		else
			__builtin_ia32_pause();
#endif
	}
}

static void
ka_spares_unlock(struct ka_spares *sp)
{
	atomic_store_explicit(&sp->locked, false, memory_order_release);
}

/*
 * The lists in use: CPU c keeps its spares in list c mod KA_SPARE_SHARDS,
 * so with fewer CPUs the others stay empty and are never locked (nor
 * touched: a fork need not write to their pages).
 */
static int
ka_spare_nshards(void)
{
	return ((int)KMEM_MIN(cpu_count(), (unsigned int)KA_SPARE_SHARDS));
}

/* The spare list of the CPU this thread runs on. */
static struct ka_spares *
ka_spares_here(void)
{
	return (&ka_spares[cpu_current() & (KA_SPARE_SHARDS - 1)]);
}

/*
 * Count l as a spare of sp: within sp's share, else beyond it if the
 * shared half of the budget has room.  The list locked.
 */
static bool
ka_spare_count(struct ka_spares *sp, struct ka_large *l)
{
	size_t share = KA_SPARE_BYTES / 2 / (size_t)ka_spare_nshards();
	size_t have;

	if (sp->bytes + l->len <= share) {
		sp->bytes += l->len;
		l->extra = false;
		return (true);
	}
	have = atomic_load_explicit(&ka_spare_extra, memory_order_relaxed);
	do {
		if (have + l->len > KA_SPARE_BYTES / 2)
			return (false);
	} while (!atomic_compare_exchange_weak_explicit(&ka_spare_extra, &have,
	    have + l->len, memory_order_relaxed, memory_order_relaxed));
	l->extra = true;
	return (true);
}

/* Take back what ka_spare_count counted.  The list locked. */
static void
ka_spare_uncount(struct ka_spares *sp, const struct ka_large *l)
{
	if (l->extra)
		atomic_fetch_sub_explicit(&ka_spare_extra, l->len,
		    memory_order_relaxed);
	else
		sp->bytes -= l->len;
}

/*
 * sp->n is written with the list locked only (and peeked at without the
 * lock), so these store it plainly: an atomic read-modify-write would add
 * a locked instruction to every large free and allocation.  The list
 * locked.
 */
static void
ka_spares_push(struct ka_spares *sp, struct ka_large *l)
{
	int n = atomic_load_explicit(&sp->n, memory_order_relaxed);

	sp->v[n] = l;
	atomic_store_explicit(&sp->n, n + 1, memory_order_relaxed);
}

/* Remove entry i, moving the last one into its place.  The list locked. */
static void
ka_spares_remove(struct ka_spares *sp, int i)
{
	int n = atomic_load_explicit(&sp->n, memory_order_relaxed) - 1;

	sp->v[i] = sp->v[n];
	atomic_store_explicit(&sp->n, n, memory_order_relaxed);
}

/* Keep l as a spare if there is room, else give it back. */
static void
ka_large_free(struct ka_large *l)
{
	struct ka_spares *sp = ka_spares_here();

	/*
	 * No block starts in a spare (ka_large_alloc sets buf when it hands
	 * it out): a second free of the pointer is refused, not kept twice
	 * and handed out to two owners, and is reported as a double free
	 * (freed_buf, ka_large_block).
	 */
	l->freed_buf = l->buf;
	l->buf = NULL;
	l->freed = kmem_stamp_ns();
	ka_spares_lock(sp);
	if (sp->n < KA_SPARE_PER && ka_spare_count(sp, l)) {
		ka_spares_push(sp, l);
		l = NULL;
	}
	ka_spares_unlock(sp);
	if (l != NULL)
		ka_large_unmap(l);
}

/* The smallest spare of len to len + len/4 bytes in sp, taken; or NULL. */
static struct ka_large *
ka_spares_take(struct ka_spares *sp, size_t len)
{
	struct ka_large *l = NULL;
	int best = -1;

	if (atomic_load_explicit(&sp->n, memory_order_relaxed) == 0)
		return (NULL);
	ka_spares_lock(sp);
	for (int i = 0; i < sp->n; i++) {
		size_t have = sp->v[i]->len;

		if (have >= len && have - len <= len / 4 &&
		    (best < 0 || have < sp->v[best]->len)) {
			best = i;
			if (have == len)
				break;          /* none fits better */
		}
	}
	if (best >= 0) {
		l = sp->v[best];
		ka_spares_remove(sp, best);
		ka_spare_uncount(sp, l);
	}
	ka_spares_unlock(sp);
	return (l);
}

/* A spare for len bytes: this CPU's first, then any other's; or NULL. */
static struct ka_large *
ka_spare_take(size_t len)
{
	struct ka_spares *here = ka_spares_here();
	struct ka_large *l = ka_spares_take(here, len);

	for (int i = 0; i < ka_spare_nshards() && l == NULL; i++)
		if (&ka_spares[i] != here)
			l = ka_spares_take(&ka_spares[i], len);
	return (l);
}

/* Give back the spares kept since before 'before' (0: all). */
static void
ka_spare_trim(int64_t before)
{
	for (int s = 0; s < ka_spare_nshards(); s++) {
		struct ka_spares *sp = &ka_spares[s];
		struct ka_large *victims[KA_SPARE_PER];
		int n = 0;

		ka_spares_lock(sp);
		for (int i = 0; i < sp->n;) {
			struct ka_large *l = sp->v[i];

			if (before == 0 || l->freed < before) {
				victims[n++] = l;
				ka_spare_uncount(sp, l);
				ka_spares_remove(sp, i);
			} else {
				i++;
			}
		}
		ka_spares_unlock(sp);
		while (n > 0)
			ka_large_unmap(victims[--n]);
	}
}

/* ------------------------------------------------------------ any block */

/*
 * What buf is: a class object (*cpp its cache), a large block, a bootstrap
 * block, or none of ours (an object of a cache the program created is
 * none: free() must not give it back to that cache).  An emergency
 * object of a class has no arena owner: the classes that have any are
 * searched.
 */
enum ka_kind
ka_classify(const void *buf, kmem_cache_t **cpp, size_t *usable)
{
	struct kmem_slab *s = vmem_owner(buf);

	if (KMEM_LIKELY(s != NULL)) {
		/* A slab of the program's own cache holds no blocks. */
		if (s->kind == KMEM_OWNER_SLAB &&
		    (s->cache->cflags & KMC_SIZECLASS) &&
		    slab_obj_ok(&s->cache->sl, s, buf)) {
			*cpp = s->cache;
			*usable = s->cache->size;       /* no debug redzone */
			return (KA_OBJECT);
		}
		if (s->kind == KMEM_OWNER_LARGE) {
			struct ka_large *l = (struct ka_large *)s;

			if (l->buf != buf)
				return (KA_FOREIGN);
			*usable = l->len - (size_t)(l->buf - l->base);
			return (KA_LARGE);
		}
		return (KA_FOREIGN);
	}
	if (ka_boot_owns(buf)) {
		if (!ka_boot_block(buf))
			return (KA_FOREIGN);    /* inside a block, or unused */
		*usable = ka_boot_size(buf);
		return (KA_BOOT);
	}
	for (int i = 0; atomic_load(&ka_ready) && i < ka_nclasses; i++) {
		kmem_cache_t *cp = atomic_load(&ka_cand[ka_class_list[i]].cp);

		if (cp != NULL && atomic_load(&cp->emerg.count) != 0 &&
		    emergency_owns(&cp->emerg, buf)) {
			*cpp = cp;
			*usable = cp->size;
			return (KA_OBJECT);
		}
	}
	return (KA_FOREIGN);
}

bool
ka_object_carved(const void *buf)
{
	struct kmem_slab *s = vmem_owner(buf);

	return (s == NULL || slab_obj_carved(&s->cache->sl, s, buf));
}

void
ka_free_large(void *buf)
{
	struct ka_large *l = ka_large_of(buf);

	if (l != NULL)
		ka_large_free(l);
}

size_t
ka_large_size(const void *buf)
{
	struct ka_large *l = ka_large_of(buf);

	return (l != NULL ? l->size : 0);
}

const void *
ka_large_block(const void *owner, const void *buf, bool *freedp)
{
	const struct ka_large *l = owner;
	const char *b = l->buf != NULL ? l->buf : l->freed_buf;
	const char *p = buf;

	*freedp = l->buf == NULL;
	return (b != NULL && p >= b && p < l->base + l->len ? b : NULL);
}

/* ------------------------------------------------------------ the API */

/*
 * The cache of size's class, whose creation failed for want of memory,
 * for a KM_SLEEP or KM_PUSHPAGE request: these never return NULL for
 * lack of memory, so it waits for memory to be freed (said once), as a
 * cache's growth and a large block do, reaping and trying again.  NULL
 * only when the class turned out to be no cache (ka_create: EINVAL).
 */
static __attribute__((noinline)) kmem_cache_t *
ka_cache_wait(size_t size)
{
	struct ka_class *c = &ka_cand[ka_index(size)];
	kmem_cache_t *cp;

	kmem_report("kmem_alloc(%zu): cannot create cache kmem_alloc_%zu: "
	    "%s; waiting for memory to be freed", size, c->size,
	    strerror(errno));
	for (unsigned int tries = 0;; tries++) {
		cache_backoff(tries);
		(void) reap_pressure();
		if ((cp = ka_cache_for(size)) != NULL ||
		    atomic_load(&c->nocache))
			return (cp);
	}
}

void *
ka_alloc(size_t size, int kmflags)
{
	kmem_cache_t *cp = NULL;
	void *buf;

	if (KMEM_UNLIKELY(cache_creating))         /* nested, see BOOTSTRAP */
		return (ka_boot_alloc(size, 16));
	if (KMEM_UNLIKELY(!atomic_load_explicit(&ka_ready,
	    memory_order_acquire)))
		ka_init();
	/*
	 * A class whose cache cannot be created (see ka_create) is served
	 * as larger sizes are; one whose creation failed for want of
	 * memory waits for it, or fails (below).
	 */
	if (KMEM_LIKELY(size <= ka_max_class) &&
	    KMEM_UNLIKELY((cp = ka_cache_for(size)) == NULL) &&
	    !atomic_load(&ka_cand[ka_index(size)].nocache)) {
		/*
		 * Its creation failed for want of memory: KM_SLEEP and
		 * KM_PUSHPAGE wait for memory (ka_cache_wait); malloc's
		 * requests (KM_MAYFAIL) and KM_NOSLEEP ones fail with ENOMEM
		 * and no message, as they do once memory runs out (a program
		 * that probes would flood stderr).
		 */
		if (kmflags & (KM_NOSLEEP | KM_MAYFAIL))
			return (NULL);
		cp = ka_cache_wait(size);
	}
	if (KMEM_LIKELY(cp != NULL)) {
		buf = cache_alloc(cp, kmflags & ~(KM_ZERO | KA_RECORD_SIZE));
		/* Debug caches are never rseq ones: no cost without them. */
		if (KMEM_UNLIKELY(cp->fastkey != KMEM_CACHE_FAST_RSEQ) &&
		    buf != NULL && DEBUG_CACHE(cp) &&
		    (kmflags & KA_RECORD_SIZE))
			debug_set_size(cp, buf, size);
		if (buf != NULL && (kmflags & KM_ZERO))
			memset(buf, 0, size);
	} else {
		buf = ka_large_alloc(size, 0, kmflags);
		/* malloc's requests (KM_MAYFAIL) fail quietly, as above. */
		if (buf == NULL && !(kmflags & (KM_NOSLEEP | KM_MAYFAIL)))
			kmem_report("kmem_alloc(%zu, KM_SLEEP): %s; returning "
			    "NULL", size, size > KA_LARGE_MAX ? "larger than "
			    "the arena can map" : "out of memory");
	}
	return (buf);
}

KMEM_EXPORT void *
kmem_alloc(size_t size, int kmflags)
{
	if (size == 0)
		return (NULL);
	if (kmflags & ~KM_VALID_FLAGS) {
		kmem_report("kmem_alloc(%zu): unknown kmflags 0x%x", size,
		    (unsigned int)kmflags);
		errno = EINVAL;
		return (NULL);
	}
	return (ka_alloc(size, kmflags | KA_RECORD_SIZE));
}

KMEM_EXPORT void *
kmem_zalloc(size_t size, int kmflags)
{
	return (kmem_alloc(size, kmflags | KM_ZERO));
}

KMEM_EXPORT void
kmem_free(void *buf, size_t size)
{
	struct ka_large *l;

	if (buf == NULL)
		return;
	if (KMEM_UNLIKELY(size == 0)) {
		/* kmem_alloc(0) gives NULL: no block has size 0. */
		kmem_report("kmem_free(%p, 0): no block has size 0; ignored",
		    buf);
		return;
	}
	if (KMEM_UNLIKELY(ka_boot_owns(buf)))
		return;
	if (KMEM_LIKELY(size <= ka_max_class && atomic_load(&ka_ready))) {
		kmem_cache_t *cp = ka_cache_for(size);

		/* KMEM_DEBUG: the size must be the one asked for. */
		if (KMEM_UNLIKELY(cp != NULL &&
		    cp->fastkey != KMEM_CACHE_FAST_RSEQ) && DEBUG_CACHE(cp) &&
		    !debug_kmem_free(cp, buf, size))
			return;
		if (KMEM_LIKELY(cp != NULL)) {
			kmem_cache_free(cp, buf);
			return;
		}
		/* A class that is no cache: its blocks are spans. */
	}
	if ((l = ka_large_of(buf)) != NULL && l->size == size)
		ka_large_free(l);
	else if (debug_kmem_free(NULL, buf, size))
		kmem_report("kmem_free(%p, %zu): not a block of that size from "
		    "kmem_alloc; ignored", buf, size);
}

KMEM_EXPORT void *
vmem_alloc(size_t size, int kmflags)
{
	return (kmem_alloc(size, kmflags));
}

KMEM_EXPORT void *
vmem_zalloc(size_t size, int kmflags)
{
	return (kmem_alloc(size, kmflags | KM_ZERO));
}

KMEM_EXPORT void
vmem_free(void *buf, size_t size)
{
	kmem_free(buf, size);
}

/* ------------------------------------------------------------ fork */

void
ka_fork_lock(void)
{
	pthread_mutex_lock(&ka_lock);
	for (int i = 0; i < ka_spare_nshards(); i++)
		ka_spares_lock(&ka_spares[i]);
}

void
ka_fork_unlock(void)
{
	for (int i = ka_spare_nshards(); i-- > 0;)
		ka_spares_unlock(&ka_spares[i]);
	pthread_mutex_unlock(&ka_lock);
}

/* ------------------------------------------------------------ stats */

KMEM_EXPORT int
kmem_alloc_class_count(void)
{
	ka_init();
	return (ka_nclasses);
}

KMEM_EXPORT int
kmem_alloc_class_stats(int idx, struct kmem_class_stats *st)
{
	struct ka_class *c;
	kmem_cache_t *cp;
	size_t page = (size_t)1 << vmem_page_shift;

	ka_init();
	if (idx < 0 || idx >= ka_nclasses || st == NULL) {
		kmem_report("kmem_alloc_class_stats(%d): %s", idx, st == NULL ?
		    "NULL stats pointer" : "no such class (see "
		    "kmem_alloc_class_count)");
		errno = EINVAL;
		return (-1);
	}
	c = &ka_cand[ka_class_list[idx]];
	memset(st, 0, sizeof (*st));
	snprintf(st->name, sizeof (st->name), "kmem_alloc_%zu", c->size);
	st->size = c->size;
	st->pages_per_slab = c->slab_size / page;
	if ((cp = atomic_load(&c->cp)) != NULL) {
		struct kmem_cache_stats cs;
		struct slab_counts sc;
		uint64_t emerg_pages;

		/* The cache's own (a KMEM_DEBUG class's slabs differ). */
		st->pages_per_slab = cp->sl.slab_size / page;
		slab_counts(cp, &sc, NULL);
		(void) kmem_cache_stats(cp, &cs);
		st->almost_full = sc.almost_full;
		st->almost_empty = sc.almost_empty;
		/*
		 * Objects and slabs from the one snapshot slab_counts took
		 * under the node locks: the taskq may grow the cache between
		 * the two calls, and cs.obj_total would count its new slab.
		 */
		st->obj_allocated = sc.obj_total + cs.obj_emergency;
		/*
		 * The sums are read CPU by CPU while others allocate and
		 * free, so a free can be counted whose allocation is not:
		 * no negative count (as stats.c's obj_inuse).
		 */
		st->obj_used = cs.alloc > cs.free ? cs.alloc - cs.free : 0;
		emerg_pages = cs.obj_emergency * ((cp->sl.chunk + page - 1) /
		    page);
		st->pages_used = sc.slab_total * st->pages_per_slab +
		    emerg_pages;
		st->pages_carved = sc.pages_carved + emerg_pages;
		st->freeable = sc.empty * st->pages_per_slab;
	}
	return (0);
}
