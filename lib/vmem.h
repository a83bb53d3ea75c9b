/*
 * vmem.h - the arena: page-granular spans of address space, and the owner
 * of any address in O(1).  See vmem.c.
 */
#ifndef KMEM_VMEM_H
#define KMEM_VMEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kmem_impl.h"

#define VMEM_SLOT_SHIFT         30      /* 1 GiB: one top-table slot */
#define VMEM_SLOT_SIZE          ((size_t)1 << VMEM_SLOT_SHIFT)
#define VMEM_ADDR_BITS          47      /* user address space (x86-64, arm64) */
#define VMEM_TOP_SLOTS  ((size_t)1 << (VMEM_ADDR_BITS - VMEM_SLOT_SHIFT))

/* Per 1 GiB slot of address space: its page map, NULL when not ours. */
extern KMEM_HIDDEN _Atomic(_Atomic uintptr_t *) vmem_top[VMEM_TOP_SLOTS];
#if defined(__x86_64__)
#define vmem_page_shift 12U     /* x86-64 pages are 4 KiB */
#else
extern unsigned int vmem_page_shift;
#endif

void vmem_init(void);

/*
 * A span of 'len' bytes (a multiple of the page size), page aligned, its
 * pages unpopulated (zero when first touched).  Every page of it maps to
 * 'owner' (at least 2-byte aligned) until it is freed.  Placed for NUMA
 * node 'node' by the NUMA policy (place.c; node < 0: not placed).  NULL
 * (errno ENOMEM) when no address space can be had.
 */
void *vmem_span_alloc(size_t len, int node, void *owner);

/* fork.c: the arena's lock, held across fork(). */
void vmem_fork_lock(void);
void vmem_fork_unlock(void);

/* Give a span back: its pages return to the system at once. */
void vmem_span_free(void *addr, size_t len);

/*
 * The same in two steps, for a caller freeing many spans: return the
 * pages of a run of adjacent spans with one vmem_pages_return() (one
 * madvise: on some kernels each call costs tens of microseconds whatever
 * its length), then give each span back with vmem_span_free_returned().
 */
void vmem_pages_return(void *addr, size_t len);
void vmem_span_free_returned(void *addr, size_t len);

/*
 * Map the pages of an allocated span afresh (zero), as one with its
 * region's mapping: where mremap(2) left a hole (a move, or a failed move
 * with MREMAP_FIXED, which unmaps the destination first), or, with
 * 'replace', over the span's own pages, which may be mappings of their
 * own (moved in, or given other madvise flags), so that the kernel merges
 * the range back into the region's mapping.  0, or -1 when the range
 * cannot be had (another mmap may have taken part of the hole): the span
 * must then stay allocated, unused.
 */
int vmem_span_remap(void *addr, size_t len, bool replace);

/*
 * Grow the span at addr from len to newlen bytes in place, taking the
 * pages after it if they are free (newlen a multiple of the page size);
 * the new pages map to owner and keep the span's placement.  0, or -1
 * when they are not free.
 */
int vmem_span_extend(void *addr, size_t len, size_t newlen, void *owner);

/*
 * The owner of the page holding addr, or NULL if the arena does not own
 * it.  vmem_owner_hint() masks the slot index instead of rejecting
 * addresses above 2^47, so such an address may alias an owned page: only
 * for callers that then check the address against the owner's range
 * (kmem_cache_free's fast path does).
 */
static inline void *
vmem_owner_hint(const void *addr)
{
	uintptr_t a = (uintptr_t)addr;
	_Atomic uintptr_t *map;
	uintptr_t e;

	map = atomic_load_explicit(&vmem_top[(a >> VMEM_SLOT_SHIFT) &
	    (VMEM_TOP_SLOTS - 1)], memory_order_acquire);
	if (map == NULL)
		return (NULL);
	e = atomic_load_explicit(&map[(a & (VMEM_SLOT_SIZE - 1)) >>
	    vmem_page_shift], memory_order_acquire);
	return ((e & 1) ? NULL : (void *)e);
}

static inline void *
vmem_owner(const void *addr)
{
	uintptr_t a = (uintptr_t)addr;
	_Atomic uintptr_t *map;
	uintptr_t e;

	if (a >> VMEM_ADDR_BITS)
		return (NULL);
	map = atomic_load_explicit(&vmem_top[a >> VMEM_SLOT_SHIFT],
	    memory_order_acquire);
	if (map == NULL)
		return (NULL);
	e = atomic_load_explicit(&map[(a & (VMEM_SLOT_SIZE - 1)) >>
	    vmem_page_shift], memory_order_acquire);
	return ((e & 1) ? NULL : (void *)e);
}

static inline bool
vmem_contains(const void *addr)
{
	return (vmem_owner(addr) != NULL);
}

struct vmem_usage {
	size_t reserved;        /* address space held in regions */
	size_t inuse;           /* bytes in allocated spans */
	size_t regions;
	size_t free_spans;
};
void vmem_usage(struct vmem_usage *u);

/*
 * Under an RLIMIT_AS lowered since regions were reserved: give back the
 * unused address space of regions larger than the limit now sizes them
 * (vmem.c, vmem_trim_locked).  The aging pass, pressure reaps and
 * kmem_reap() call it; so does a span allocation whose mmap fails.
 */
void vmem_trim(void);

/* Test hook: make the next n span allocations fail (n < 0: all of them). */
void vmem_inject_failures(int n);

#endif /* KMEM_VMEM_H */
