/*
 * vmem.c - the arena: page-granular spans of address space for slabs and
 * large buffers, and the owner of any address in O(1).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * REGIONS.  Address space is reserved from the kernel in regions aligned
 * to 1 GiB (mmap with MAP_NORESERVE: a page costs memory only once it is
 * touched).  An ordinary region is 1 GiB and is carved into spans; a
 * request bigger than that gets a dedicated region of its own size,
 * unmapped when the span is freed.  Ordinary regions are kept for the life
 * of the process (their freed pages are returned, their address space is
 * reused).  Under an address-space limit (RLIMIT_AS, ulimit -v) below
 * 8 GiB, an ordinary region is the largest power-of-two fraction of it
 * that is at most an eighth of the limit and fits, down to 16 MiB (and
 * below, down to the span asked for, once not even that fits), and
 * is unmapped once all free, so that the program's other mappings keep
 * room; each region still starts a 1 GiB slot of its own, whose page map
 * covers the whole slot (2 MiB of address space, touched only where
 * spans are; the maps of unmapped regions are reused).  A program that
 * lowers its limit at run time (setrlimit) keeps the regions reserved
 * before; those larger than the new limit sizes give back the free pages
 * at their end (vmem_trim: on the aging pass, a pressure reap,
 * kmem_reap(), and when a region cannot be reserved) and are unmapped
 * once all free.  A span that ends a region smaller than its slot (under
 * a limit, a span bigger than a region gets one of its own size) grows
 * in place by growing the region, when no other mapping has the address
 * space after it (vmem_span_extend: realloc of a large block).
 *
 * ADDRESS -> OWNER.  Every region has a page map: one word per page.  For
 * a page inside an allocated span the word is the span's owner (a slab
 * descriptor, say); for the first and last page of a free span it is the
 * free-span record with bit 0 set (a boundary tag); otherwise 0.  The
 * static top table vmem_top[] has one entry per 1 GiB of the 47-bit user
 * address space pointing at that gigabyte's part of a page map.  So
 * vmem_owner() is two dependent loads and needs no lock, and any address
 * the arena does not own - another allocator's, the stack's - reads as
 * NULL.  The top table is 1 MiB of zero BSS; page maps are NORESERVE
 * mappings (2 MiB per GiB) touched only where spans are.
 *
 * PLACEMENT.  On a NUMA machine a span is taken from a region of its
 * placement class (place_class: its node under kmem_numa_policy=local),
 * whose memory policy was set once when the region was reserved
 * (place_region), so spans of different nodes never alternate within a
 * mapping, and the kernel keeps each region one mapping.  Elsewhere there
 * is one class.
 *
 * FREE SPANS.  Free spans are kept in bins by floor(log2(pages)), one set
 * of bins per placement class.  An
 * allocation looks for a fit in its own bin (a few entries), then takes
 * the first span of any higher bin (every span there is large enough);
 * the remainder of a split stays free.  A freed span is coalesced with
 * free neighbours found through the boundary tags, so the arena does not
 * fragment into unusable pieces.  Pages of a freed span are returned with
 * madvise(MADV_DONTNEED) before the span becomes reusable: RSS falls at
 * once and a reused page reads as zero.  Locked pages (mlockall) refuse
 * the madvise; they are cleared instead.
 *
 * INVARIANTS.  Spans never overlap; every page of an allocated span maps
 * to its owner; in the page map, a free span's first and last pages carry
 * its tag and its other pages read 0; no two free spans are adjacent.
 * Every byte of a free span's memory reads 0 (new regions are fresh
 * anonymous memory), so a span is zero when allocated: kmem_zalloc's
 * large blocks rely on it.
 *
 * LOCKING.  vmem_lock protects regions, bins, free-span records and page
 * map writes.  Page map and top table entries are written with release
 * stores and read locklessly (acquire) by vmem_owner(); an owner is
 * published before any object of its span is handed out and cleared only
 * after the span's objects have all come back, so lookups never race a
 * change for a live object.  The madvise of a freed span runs outside the
 * lock.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cpu.h"
#include "kmem_impl.h"
#include "meta.h"
#include "place.h"
#include "vmem.h"

#define VMEM_NBINS      32
#define VMEM_FIT_SCAN   8       /* spans examined in the exact bin */
#define VMEM_REGION_MIN ((size_t)16 << 20)   /* smallest region a limit sizes */
#define VMEM_PLACE_TRIES 16     /* slot boundaries tried (RLIMIT_AS) */

struct vmem_region {
	char *base;
	size_t npages;
	_Atomic uintptr_t *map;         /* npages words */
	size_t map_len;
	bool dedicated;                 /* holds one span; unmapped with it */
	bool transient;                 /* unmapped once all free (RLIMIT_AS) */
	unsigned int cls;               /* placement class (place_class) */
	struct vmem_region *next;
};
META_FITS(struct vmem_region);

struct vmem_free {
	struct vmem_region *region;
	size_t first;                   /* page index in region */
	size_t npages;
	struct vmem_free *next, *prev;  /* in bin */
	unsigned int bin;
};
META_FITS(struct vmem_free);

_Atomic(_Atomic uintptr_t *) vmem_top[VMEM_TOP_SLOTS];
static struct vmem_region *vmem_slot_region[VMEM_TOP_SLOTS];
#if !defined(__x86_64__)
unsigned int vmem_page_shift = 12;
#endif

static pthread_mutex_t vmem_lock KMEM_FORK_LOCK =
    PTHREAD_MUTEX_INITIALIZER;
static struct vmem_free *vmem_bins[PLACE_CLASSES][VMEM_NBINS];
static struct vmem_region *vmem_regions;
static size_t vmem_reserved, vmem_inuse, vmem_nregions, vmem_nfree;
/*
 * Page maps of destroyed regions, for regions created later (vmem_lock):
 * they are never unmapped (see vmem_region_destroy), so every one is
 * kept for reuse; a fixed number kept let a program that cycles through
 * more sizes of dedicated region than that lose a map's address space
 * each time.
 */
struct vmem_spare {
	_Atomic uintptr_t *map;
	size_t len;
	struct vmem_spare *next;
};
META_FITS(struct vmem_spare);
static struct vmem_spare *vmem_spares;
static _Atomic int vmem_inject;
static pthread_once_t vmem_once = PTHREAD_ONCE_INIT;

static void
vmem_init_once(void)
{
	long page = sysconf(_SC_PAGESIZE);

#if defined(__x86_64__)
	if (page != 1L << vmem_page_shift) {
		kmem_report("unexpected page size %ld on x86-64", page);
		abort();
	}
#else
	vmem_page_shift = (unsigned int)__builtin_ctzl((unsigned long)page);
#endif
	cpu_init();
}

void
vmem_init(void)
{
	(void) pthread_once(&vmem_once, vmem_init_once);
}

static inline unsigned int
vmem_bin_of(size_t npages)
{
	unsigned int b = 63U - (unsigned int)__builtin_clzll(npages);

	return (b < VMEM_NBINS ? b : VMEM_NBINS - 1);
}

static inline void
vmem_map_set(struct vmem_region *r, size_t page, uintptr_t v)
{
	atomic_store_explicit(&r->map[page], v, memory_order_release);
}

static void
vmem_bin_insert(struct vmem_free *f)
{
	struct vmem_free **head;

	f->bin = vmem_bin_of(f->npages);
	head = &vmem_bins[f->region->cls][f->bin];
	f->prev = NULL;
	f->next = *head;
	if (f->next != NULL)
		f->next->prev = f;
	*head = f;
	vmem_nfree++;
}

static void
vmem_bin_remove(struct vmem_free *f)
{
	if (f->prev != NULL)
		f->prev->next = f->next;
	else
		vmem_bins[f->region->cls][f->bin] = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
	vmem_nfree--;
}

/* Tag the boundary pages of a free span. */
static void
vmem_tag(struct vmem_free *f)
{
	uintptr_t tag = (uintptr_t)f | 1;

	vmem_map_set(f->region, f->first, tag);
	vmem_map_set(f->region, f->first + f->npages - 1, tag);
}

static void *
vmem_mmap(void *hint, size_t len, int flags)
{
	return (mmap(hint, len, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS | MAP_NORESERVE | flags, -1, 0));
}

/*
 * 'len' bytes of address space at a 1 GiB boundary, or NULL.  Mapping
 * len + 1 GiB and trimming it needs that much address space for a moment;
 * under an RLIMIT_AS that does not allow it, map len where the kernel
 * would put it, and then at the slot boundaries at or below that address
 * (the gap it came from extends downwards) until one is free.
 */
static char *
vmem_reserve_aligned(size_t len)
{
	size_t span = len + VMEM_SLOT_SIZE, head, tail;
	char *raw, *base;
	uintptr_t a;

	raw = vmem_mmap(NULL, span, 0);
	if (raw != MAP_FAILED) {
		base = (char *)KMEM_P2ROUNDUP((uintptr_t)raw, VMEM_SLOT_SIZE);
		head = (size_t)(base - raw);
		tail = span - head - len;
		if (head != 0)
			(void) munmap(raw, head);
		if (tail != 0)
			(void) munmap(base + len, tail);
		return (base);
	}
	if ((raw = vmem_mmap(NULL, len, 0)) == MAP_FAILED)
		return (NULL);
	if (((uintptr_t)raw & (VMEM_SLOT_SIZE - 1)) == 0)
		return (raw);
	(void) munmap(raw, len);
	a = (uintptr_t)raw & ~(VMEM_SLOT_SIZE - 1);
	for (int i = 0; i < VMEM_PLACE_TRIES && a != 0; i++) {
		base = vmem_mmap((void *)a, len, MAP_FIXED_NOREPLACE);
		if (base == (char *)a)
			return (base);
		if (base != MAP_FAILED)
			(void) munmap(base, len);  /* kernel < 4.17: a hint */
		else if (errno != EEXIST)
			return (NULL);
		a -= VMEM_SLOT_SIZE;
	}
	errno = ENOMEM;
	return (NULL);
}

/*
 * Reserve 'len' bytes of address space aligned to 1 GiB and its page map,
 * and make its slots of the top table point at the map.
 */
static struct vmem_region *
vmem_region_create(size_t len, bool dedicated, unsigned int cls)
{
	struct vmem_region *r = meta_alloc();
	struct vmem_spare **pp, **best;
	char *base;
	size_t npages, map_len;
	_Atomic uintptr_t *map;

	if (r == NULL)
		return (NULL);
	if ((base = vmem_reserve_aligned(len)) == NULL) {
		meta_free(r);
		return (NULL);
	}
	if ((uintptr_t)(base + len - 1) >> VMEM_ADDR_BITS) {
		(void) munmap(base, len);       /* beyond what the map covers */
		meta_free(r);
		return (NULL);
	}

	npages = len >> vmem_page_shift;
	map_len = KMEM_P2ROUNDUP(KMEM_P2ROUNDUP(npages, VMEM_SLOT_SIZE >>
	    vmem_page_shift) * sizeof (uintptr_t),
	    (size_t)1 << vmem_page_shift);
	map = NULL;
	best = NULL;                    /* the smallest spare map that fits */
	for (pp = &vmem_spares; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->len >= map_len && (best == NULL ||
		    (*pp)->len < (*best)->len))
			best = pp;
	}
	if (best != NULL) {
		struct vmem_spare *sp = *best;

		*best = sp->next;
		map = sp->map;                  /* zero: returned */
		map_len = sp->len;
		meta_free(sp);
	}
	if (map == NULL)
		map = kmem_pages_alloc(map_len);
	if (map == NULL) {
		(void) munmap(base, len);
		meta_free(r);
		return (NULL);
	}
	r->base = base;
	r->npages = npages;
	r->map = map;
	r->map_len = map_len;
	r->dedicated = dedicated;
	r->cls = cls;
	place_region(base, len, cls);
	r->next = vmem_regions;
	vmem_regions = r;
	vmem_reserved += len;
	vmem_nregions++;

	for (size_t s = 0; s * VMEM_SLOT_SIZE < len; s++) {
		size_t slot = ((uintptr_t)base >> VMEM_SLOT_SHIFT) + s;
		vmem_slot_region[slot] = r;
		atomic_store_explicit(&vmem_top[slot],
		    map + (s << (VMEM_SLOT_SHIFT - vmem_page_shift)),
		    memory_order_release);
	}
	return (r);
}

/*
 * Unmap a dedicated region whose one span was freed, or a small region
 * (RLIMIT_AS) that is all free.
 */
static void
vmem_region_destroy(struct vmem_region *r)
{
	struct vmem_region **pp;
	struct vmem_spare *sp;
	size_t len = r->npages << vmem_page_shift;

	for (size_t s = 0; s * VMEM_SLOT_SIZE < len; s++) {
		size_t slot = ((uintptr_t)r->base >> VMEM_SLOT_SHIFT) + s;
		atomic_store_explicit(&vmem_top[slot], NULL,
		    memory_order_release);
		vmem_slot_region[slot] = NULL;
	}
	for (pp = &vmem_regions; *pp != r; pp = &(*pp)->next)
		;
	*pp = r->next;
	vmem_reserved -= len;
	vmem_nregions--;
	(void) munmap(r->base, len);
	/*
	 * The page map stays mapped (its pages returned, or cleared where
	 * locked: a dedicated span's entries are still in it, and the map
	 * may serve another region): a lookup that read the top-table entry
	 * just before it was cleared still finds a readable, zero map.  Its
	 * address space is small (2 MiB per GiB).
	 */
	vmem_pages_return(r->map, r->map_len);
	sp = meta_alloc();
	if (sp != NULL) {               /* else its address space is lost */
		sp->map = r->map;
		sp->len = r->map_len;
		sp->next = vmem_spares;
		vmem_spares = sp;
	}
	meta_free(r);
}

/*
 * The size of an ordinary region under the current RLIMIT_AS: 1 GiB, or
 * under a limit below 8 GiB, the largest power-of-two fraction of it
 * down to VMEM_REGION_MIN that is at most an eighth of the limit: the
 * largest that fits would take most of what the program's other
 * mappings (thread stacks, files) need.
 */
static size_t
vmem_region_top(void)
{
	size_t top = VMEM_SLOT_SIZE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		while (top > VMEM_REGION_MIN && top > rl.rlim_cur / 8)
			top /= 2;
	}
	return (top);
}

/*
 * An ordinary region for a span of len bytes: vmem_region_top(), or a
 * smaller power-of-two fraction of it down to VMEM_REGION_MIN when that
 * cannot be reserved.  When not even VMEM_REGION_MIN fits (a tight
 * limit, most of it mapped), smaller ones down to len are tried: the
 * room left is the program's heap, which glibc would use to the last
 * page.
 */
static struct vmem_region *
vmem_region_create_fit(size_t len, unsigned int cls)
{
	size_t min = KMEM_P2ROUNDUP(len, (size_t)1 << vmem_page_shift);
	size_t top = vmem_region_top();
	struct vmem_region *r;

	for (size_t size = top;; size /= 2) {
		if (size < min)
			size = min;
		if ((r = vmem_region_create(size, false, cls)) != NULL) {
			/*
			 * Under the limit, even a region of a whole slot
			 * (a span of 1 GiB) goes back once all free.
			 */
			r->transient = size < VMEM_SLOT_SIZE ||
			    top < VMEM_SLOT_SIZE;
			return (r);
		}
		if (size <= min)
			return (NULL);
	}
}

/*
 * Give back the address space that ordinary regions reserved before the
 * program lowered its RLIMIT_AS hold unused: a region larger than the
 * limit now sizes them (vmem_region_top) loses the free span at its end
 * down to that size or to its last allocated page, whichever is higher,
 * and becomes transient; one that is all free is unmapped.  A region
 * keeps its first page for as long as it lives, so no other region can
 * start in its slot, and its page map covers the slot whatever its size.
 * top_bytes is vmem_region_top(), read by the caller.  True if any
 * address space went back.  vmem_lock held.
 */
static bool
vmem_trim_locked(size_t top_bytes)
{
	size_t top = top_bytes >> vmem_page_shift;
	struct vmem_region *r, *next;
	bool trimmed = false;

	for (r = vmem_regions; r != NULL; r = next) {
		struct vmem_free *f;
		size_t end;
		uintptr_t e;

		next = r->next;
		if (r->dedicated || r->npages <= top || !((e =
		    atomic_load_explicit(&r->map[r->npages - 1],
		    memory_order_relaxed)) & 1))
			continue;
		f = (struct vmem_free *)(e & ~(uintptr_t)1);
		trimmed = true;
		if (f->first == 0) {
			vmem_bin_remove(f);
			meta_free(f);
			vmem_region_destroy(r);
			continue;
		}
		end = f->first > top ? f->first : top;
		vmem_bin_remove(f);
		vmem_map_set(r, f->first, 0);
		vmem_map_set(r, r->npages - 1, 0);
		(void) munmap(r->base + (end << vmem_page_shift),
		    (r->npages - end) << vmem_page_shift);
		vmem_reserved -= (r->npages - end) << vmem_page_shift;
		r->npages = end;
		r->transient = true;
		if (end > f->first) {
			f->npages = end - f->first;
			vmem_bin_insert(f);
			vmem_tag(f);
		} else {
			meta_free(f);
		}
	}
	return (trimmed);
}

void
vmem_trim(void)
{
	size_t top = vmem_region_top();

	if (top == VMEM_SLOT_SIZE)
		return;         /* no limit below 8 GiB: no region is larger */
	pthread_mutex_lock(&vmem_lock);
	(void) vmem_trim_locked(top);
	pthread_mutex_unlock(&vmem_lock);
}

/* A free span of at least npages in a region of class cls, or NULL. */
static struct vmem_free *
vmem_find_free(size_t npages, unsigned int cls)
{
	struct vmem_free **bins = vmem_bins[cls];
	unsigned int b = vmem_bin_of(npages);
	int scanned = 0;

	for (struct vmem_free *f = bins[b]; f != NULL &&
	    scanned < VMEM_FIT_SCAN; f = f->next, scanned++) {
		if (f->npages >= npages)
			return (f);
	}
	for (b++; b < VMEM_NBINS; b++) {
		if (bins[b] != NULL)
			return (bins[b]);
	}
	return (NULL);
}

void
vmem_fork_lock(void)
{
	pthread_mutex_lock(&vmem_lock);
}

void
vmem_fork_unlock(void)
{
	pthread_mutex_unlock(&vmem_lock);
}

void *
vmem_span_alloc(size_t len, int node, void *owner)
{
	size_t npages = len >> vmem_page_shift;
	unsigned int cls = place_class(node);
	struct vmem_region *r;
	struct vmem_free *f;
	size_t first;

	vmem_init();
	if (KMEM_UNLIKELY(atomic_load_explicit(&vmem_inject,
	    memory_order_relaxed) != 0)) {
		int n = atomic_load(&vmem_inject);
		if (n < 0 || (n > 0 && atomic_compare_exchange_strong(
		    &vmem_inject, &n, n - 1))) {
			errno = ENOMEM;
			return (NULL);
		}
	}
	if (npages == 0 || (npages << vmem_page_shift) != len) {
		errno = EINVAL;
		return (NULL);
	}

	pthread_mutex_lock(&vmem_lock);
	if (len > VMEM_SLOT_SIZE) {
		r = vmem_region_create(len, true, cls);
		if (r == NULL && vmem_trim_locked(vmem_region_top()))
			r = vmem_region_create(len, true, cls);
		if (r == NULL)
			goto nomem;
		first = 0;
	} else {
		f = vmem_find_free(npages, cls);
		if (f == NULL) {
			/*
			 * The record first: a region without one would be
			 * reserved, and unreachable, for good.
			 */
			if ((f = meta_alloc()) == NULL)
				goto nomem;
			r = vmem_region_create_fit(len, cls);
			if (r == NULL && vmem_trim_locked(vmem_region_top()))
				r = vmem_region_create_fit(len, cls);
			if (r == NULL) {
				meta_free(f);
				goto nomem;
			}
			f->region = r;
			f->first = 0;
			f->npages = r->npages;
			vmem_bin_insert(f);
			vmem_tag(f);
		}
		r = f->region;
		first = f->first;
		vmem_bin_remove(f);
		if (f->npages > npages) {
			f->first += npages;
			f->npages -= npages;
			vmem_bin_insert(f);
			vmem_tag(f);
		} else {
			meta_free(f);
		}
	}
	for (size_t p = first; p < first + npages; p++)
		vmem_map_set(r, p, (uintptr_t)owner);
	vmem_inuse += len;
	pthread_mutex_unlock(&vmem_lock);
	return (r->base + (first << vmem_page_shift));
nomem:
	pthread_mutex_unlock(&vmem_lock);
	errno = ENOMEM;
	return (NULL);
}

/* Give a span back; 'advise': its pages still need returning. */
static void
vmem_span_put(void *addr, size_t len, bool advise)
{
	uintptr_t a = (uintptr_t)addr;
	size_t npages = len >> vmem_page_shift;
	struct vmem_region *r;
	struct vmem_free *f;
	size_t first, end;
	uintptr_t e;

	if (addr == NULL || npages == 0)
		return;
	r = vmem_slot_region[a >> VMEM_SLOT_SHIFT];
	if (r == NULL || r->dedicated) {
		/* Dedicated: the whole region goes, no madvise needed. */
		pthread_mutex_lock(&vmem_lock);
		if (r != NULL) {
			vmem_inuse -= len;
			vmem_region_destroy(r);
		}
		pthread_mutex_unlock(&vmem_lock);
		return;
	}
	if (advise)
		vmem_pages_return(addr, len);

	pthread_mutex_lock(&vmem_lock);
	first = (size_t)(addr - (void *)r->base) >> vmem_page_shift;
	end = first + npages;
	for (size_t p = first; p < end; p++)
		vmem_map_set(r, p, 0);
	vmem_inuse -= len;

	/* Coalesce with a free span ending just before us ... */
	if (first > 0 && ((e = atomic_load_explicit(&r->map[first - 1],
	    memory_order_relaxed)) & 1)) {
		struct vmem_free *left = (struct vmem_free *)(e & ~(uintptr_t)1);
		vmem_bin_remove(left);
		vmem_map_set(r, first - 1, 0);
		vmem_map_set(r, left->first, 0);
		first = left->first;
		meta_free(left);
	}
	/* ... and one starting just after. */
	if (end < r->npages && ((e = atomic_load_explicit(&r->map[end],
	    memory_order_relaxed)) & 1)) {
		struct vmem_free *right = (struct vmem_free *)(e & ~(uintptr_t)1);
		vmem_bin_remove(right);
		vmem_map_set(r, end, 0);
		vmem_map_set(r, right->first + right->npages - 1, 0);
		end = right->first + right->npages;
		meta_free(right);
	}
	/*
	 * A region reserved under an RLIMIT_AS (or smaller than a slot, for
	 * want of room): once it is all free, its address space goes back
	 * to the kernel, for the program's other mappings (thread stacks).
	 */
	if (first == 0 && end == r->npages && r->transient) {
		vmem_region_destroy(r);
		pthread_mutex_unlock(&vmem_lock);
		return;
	}
	f = meta_alloc();
	if (f != NULL) {
		f->region = r;
		f->first = first;
		f->npages = end - first;
		vmem_bin_insert(f);
		vmem_tag(f);
	}
	/*
	 * Without a record (metadata exhausted) the span's pages stay
	 * returned and unreachable: address space is lost, never memory.
	 */
	pthread_mutex_unlock(&vmem_lock);
}

void
vmem_span_free(void *addr, size_t len)
{
	vmem_span_put(addr, len, true);
}

void
vmem_span_free_returned(void *addr, size_t len)
{
	vmem_span_put(addr, len, false);
}

int
vmem_span_remap(void *addr, size_t len, bool replace)
{
	struct vmem_region *r = vmem_slot_region[(uintptr_t)addr >>
	    VMEM_SLOT_SHIFT];
	void *p;

	if (r == NULL)
		return (-1);
	/*
	 * MAP_FIXED only over our own mapping: over a hole, another thread's
	 * mmap may have taken part of it meanwhile.  A MAP_FIXED that fails
	 * may have unmapped the range all the same, so failure either way
	 * leaves the range to no one.
	 */
	p = vmem_mmap(addr, len, replace ? MAP_FIXED : MAP_FIXED_NOREPLACE);
	if (p == addr) {
		place_region(addr, len, r->cls);
		return (0);
	}
	if (p != MAP_FAILED)
		(void) munmap(p, len);  /* a kernel that ignores the flag */
	return (-1);
}

void
vmem_pages_return(void *addr, size_t len)
{
	/* Locked pages (mlockall) refuse: they stay, cleared instead. */
	if (madvise(addr, len, MADV_DONTNEED) != 0)
		memset(addr, 0, len);
}

/*
 * Grow region r in place by npages pages, for the span that ends it: a
 * region smaller than its slot (under an RLIMIT_AS a span bigger than a
 * region gets one of its own size) takes the address space after it if
 * no other mapping has it.  Without this, a block that realloc() grows
 * a little at a time moved to a new region every time: quadratic, 25
 * times slower than glibc under ulimit -v 400000.  0, or -1 (nothing
 * changed).  vmem_lock held.
 */
static int
vmem_region_grow(struct vmem_region *r, size_t npages)
{
	size_t have = r->npages << vmem_page_shift;
	size_t len = npages << vmem_page_shift;
	char *end = r->base + have;
	void *p;

	if (len > VMEM_SLOT_SIZE - have)
		return (-1);            /* past its slot's page map */
	p = vmem_mmap(end, len, MAP_FIXED_NOREPLACE);
	if (p != end) {
		if (p != MAP_FAILED)    /* kernel < 4.17: a hint */
			(void) munmap(p, len);
		return (-1);
	}
	place_region(end, len, r->cls);
	r->npages += npages;
	vmem_reserved += len;
	return (0);
}

int
vmem_span_extend(void *addr, size_t len, size_t newlen, void *owner)
{
	uintptr_t a = (uintptr_t)addr, e;
	size_t more = (newlen - len) >> vmem_page_shift;
	struct vmem_region *r = vmem_slot_region[a >> VMEM_SLOT_SHIFT];
	struct vmem_free *f;
	size_t end;

	if (r == NULL || r->dedicated || newlen <= len ||
	    ((newlen - len) & (((size_t)1 << vmem_page_shift) - 1)) != 0)
		return (-1);
	pthread_mutex_lock(&vmem_lock);
	end = ((a - (uintptr_t)r->base) + len) >> vmem_page_shift;
	if (end == r->npages && vmem_region_grow(r, more) == 0) {
		for (size_t p = end; p < end + more; p++)
			vmem_map_set(r, p, (uintptr_t)owner);
		vmem_inuse += newlen - len;
		pthread_mutex_unlock(&vmem_lock);
		return (0);
	}
	if (end >= r->npages || !((e = atomic_load_explicit(&r->map[end],
	    memory_order_relaxed)) & 1) || (f = (struct vmem_free *)(e &
	    ~(uintptr_t)1))->first != end || f->npages < more) {
		pthread_mutex_unlock(&vmem_lock);
		return (-1);
	}
	vmem_bin_remove(f);
	vmem_map_set(r, f->first + f->npages - 1, 0);
	if (f->npages > more) {
		f->first += more;
		f->npages -= more;
		vmem_bin_insert(f);
		vmem_tag(f);
	} else {
		meta_free(f);
	}
	for (size_t p = end; p < end + more; p++)
		vmem_map_set(r, p, (uintptr_t)owner);
	vmem_inuse += newlen - len;
	pthread_mutex_unlock(&vmem_lock);
	return (0);
}

void
vmem_usage(struct vmem_usage *u)
{
	pthread_mutex_lock(&vmem_lock);
	u->reserved = vmem_reserved;
	u->inuse = vmem_inuse;
	u->regions = vmem_nregions;
	u->free_spans = vmem_nfree;
	pthread_mutex_unlock(&vmem_lock);
}

void
vmem_inject_failures(int n)
{
	atomic_store(&vmem_inject, n);
}
