/*
 * place.c - NUMA placement: which node's memory backs a slab or a per-CPU
 * structure.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * kmem_numa_policy:
 *   local       (default) a cache keeps its slabs on per-node lists; a
 *               slab grown for a CPU is bound to that CPU's node
 *               (MPOL_PREFERRED: the kernel falls back to another node
 *               rather than fail when that node is full), refills take
 *               from the local node first, then the nearest (slab.c), and
 *               a freed object goes back to its own node's slab.
 *   interleave  one slab list per cache; every slab's pages are spread
 *               over all nodes (MPOL_INTERLEAVE).
 *   none        one slab list; the kernel places pages where it likes.
 *
 * Per-CPU structures - a CPU's magazines, its magazine state, its objpool
 * rings - go to the CPU's node under 'local' and 'interleave'.
 *
 * SLABS AND PER-CPU STRUCTURES ARE PLACED DIFFERENTLY.  A slab span has
 * a memory policy (mbind): its pages are first touched wherever the
 * program writes an object, which may be any node, and the policy still
 * puts them on the slab's node.  The policy is set once per arena region
 * (place_region), not per span: the arena keeps a class of regions per
 * node under 'local', one for 'interleave' and one for no policy
 * (place_class), and takes a span from a region of its class.  So spans
 * of one class sit together and each region stays one mapping.  Bound
 * span by span, with the spans of two nodes side by side, every span was
 * a mapping of its own: two threads on two nodes allocating 40,000
 * objects of 512 bytes made 1,900 mappings.
 *
 * Per-CPU structures are a few pages of every cache, in metadata runs
 * (meta.c) next to other caches' runs: a policy per CPU range split those
 * runs into a mapping per range (about 11 per cache on two nodes, so a
 * process reached vm.max_map_count, 65530, at about 6,000 caches, after
 * which every mmap failed, thread stacks and libkmem's own included).  So
 * they get no policy: pages that the creating thread has written are
 * moved to the CPU's node (move_pages(2) keeps the mapping whole), and
 * pages not yet written are left to the kernel's default, which
 * allocates a page on the node of the CPU that first writes it - for a
 * magazine or a depot ring, its own CPU.  A page that is later given back
 * (MADV_DONTNEED) comes back the same way.
 *
 * The policy is start-only: the first placement decision fixes it
 * (tunable_fixed), since caches that exist keep their lists and their
 * per-CPU placement, and slabs must follow the same policy.
 *
 * Memory is bound only on a machine that really has more than one node:
 * built --without-numa, when numa_available() < 0, on one node, or under
 * the test suite's simulated topology, nothing here makes a system call,
 * and caches keep one list (or the simulation's lists).
 *
 * LOCKING: none; mbind() on a range of our own.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#ifdef HAVE_NUMA
#include <numaif.h>
#include <sys/syscall.h>
#endif

#include "cpu.h"
#include "kmem_impl.h"
#include "place.h"
#include "tunables.h"

unsigned int
place_cache_nodes(void)
{
	return (tunable_fixed(KT_NUMA_POLICY) == NUMA_LOCAL ?
	    cpu_node_count() : 1);
}

#ifdef HAVE_NUMA
/*
 * Move the resident pages of [addr, addr + len) (page aligned) to 'node';
 * pages with no memory yet are skipped (the kernel says -ENOENT for each).
 */
static void
place_move(void *addr, size_t len, int node)
{
	enum { BATCH = 64 };
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *pages[BATCH];
	int nodes[BATCH], status[BATCH];
	char *p = addr, *end = p + len;

	while (p < end) {
		unsigned long n = 0;

		for (; p < end && n < BATCH; p += page, n++) {
			pages[n] = p;
			nodes[n] = node;
		}
		/* Failure only loses placement, as in place_mbind. */
		(void) syscall(SYS_move_pages, 0, n, pages, nodes, status,
		    MPOL_MF_MOVE);
	}
}

static void
place_mbind(void *addr, size_t len, int mode, int node)
{
	unsigned long mask[KMEM_MAX_NODES / (8 * sizeof (unsigned long))];

	memset(mask, 0, sizeof (mask));
	if (mode == MPOL_INTERLEAVE) {
		for (unsigned int n = 0; n < cpu_node_count(); n++)
			mask[n / (8 * sizeof (long))] |= 1UL << (n % (8 *
			    sizeof (long)));
	} else {
		mask[(unsigned int)node / (8 * sizeof (long))] |= 1UL <<
		    ((unsigned int)node % (8 * sizeof (long)));
	}
	/*
	 * The system call, as libnuma's mbind() is, so that libnuma need
	 * not be linked (cpu.c).  Failure only loses placement: the memory
	 * is still ours.
	 */
	(void) syscall(SYS_mbind, addr, len, mode, mask,
	    (unsigned long)KMEM_MAX_NODES + 1, 0U);
}
#endif

unsigned int
place_class(int node)
{
	if (!cpu_numa_real() || node < 0 || node >= KMEM_MAX_NODES)
		return (PLACE_DEFAULT);
	switch (tunable_fixed(KT_NUMA_POLICY)) {
	case NUMA_LOCAL:
		return (PLACE_INTERLEAVE + 1 + (unsigned int)node);
	case NUMA_INTERLEAVE:
		return (PLACE_INTERLEAVE);
	default:
		return (PLACE_DEFAULT);
	}
}

void
place_region(void *addr, size_t len, unsigned int cls)
{
#ifdef HAVE_NUMA
	if (cls == PLACE_INTERLEAVE)
		place_mbind(addr, len, MPOL_INTERLEAVE, 0);
	else if (cls > PLACE_INTERLEAVE)
		place_mbind(addr, len, MPOL_PREFERRED,
		    (int)(cls - PLACE_INTERLEAVE - 1));
#else
	(void) addr; (void) len; (void) cls;
#endif
}

void
place_local(void *addr, size_t len, int node)
{
#ifdef HAVE_NUMA
	if (cpu_numa_real() && node >= 0 &&
	    tunable_fixed(KT_NUMA_POLICY) != NUMA_NONE)
		place_move(addr, len, node);
#else
	(void) addr; (void) len; (void) node;
#endif
}

void
place_percpu(void *base, size_t elem, unsigned int ncpus)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = elem * ncpus;

	if (!cpu_numa_real() || tunable_fixed(KT_NUMA_POLICY) == NUMA_NONE)
		return;
	for (size_t off = 0; off < len; off += page) {
		unsigned int cpu = (unsigned int)((off + elem - 1) / elem);

		if (cpu >= ncpus)
			cpu = ncpus - 1;
		place_local((char *)base + off, KMEM_MIN(page, len - off),
		    cpu_node(cpu));
	}
}
