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
 *   none        one slab list; the kernel places pages where it likes
 *               (a slab span reused from a cache of another policy has
 *               its policy reset to the default).
 *
 * Per-CPU structures - a CPU's magazines, its magazine state, its objpool
 * rings - go to the CPU's node under 'local' and 'interleave'.
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
	if (mode == MPOL_DEFAULT)
		(void) syscall(SYS_mbind, addr, len, mode, NULL, 0UL, 0U);
	else
		(void) syscall(SYS_mbind, addr, len, mode, mask,
		    (unsigned long)KMEM_MAX_NODES + 1, 0U);
}
#endif

void
place_slab(void *addr, size_t len, int node)
{
#ifdef HAVE_NUMA
	if (!cpu_numa_real() || node < 0)
		return;
	switch (tunable_fixed(KT_NUMA_POLICY)) {
	case NUMA_LOCAL:
		place_mbind(addr, len, MPOL_PREFERRED, node);
		break;
	case NUMA_INTERLEAVE:
		place_mbind(addr, len, MPOL_INTERLEAVE, 0);
		break;
	default:
		/* A reused span may carry an earlier cache's policy. */
		place_mbind(addr, len, MPOL_DEFAULT, 0);
		break;
	}
#else
	(void) addr; (void) len; (void) node;
#endif
}

void
place_local(void *addr, size_t len, int node)
{
#ifdef HAVE_NUMA
	if (cpu_numa_real() && node >= 0 &&
	    tunable_fixed(KT_NUMA_POLICY) != NUMA_NONE)
		place_mbind(addr, len, MPOL_PREFERRED, node);
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
