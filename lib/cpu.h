/*
 * cpu.h - the current CPU, the possible CPUs and the CPU -> NUMA node map.
 *
 * Every per-CPU structure in libkmem is an array indexed by CPU id, sized
 * cpu_count(): one more than the highest *possible* CPU id (from
 * /sys/devices/system/cpu/possible), so a CPU brought online later still
 * has its slot.  cpu_current() is always < cpu_count().
 *
 * The current CPU is read from the rseq area that glibc (>= 2.35) registers
 * for every thread: one load at a fixed offset from the thread pointer.
 * Without rseq (older glibc, or GLIBC_TUNABLES=glibc.pthread.rseq=0) it
 * falls back to sched_getcpu().  Either way the answer may be stale by the
 * time it is used: a thread can migrate right after reading it.  Callers
 * use it as a placement hint (which slot to try first) and never as a
 * guarantee of exclusive access; exclusion comes from atomics, an rseq
 * critical section, or a per-CPU lock.
 *
 * Nodes: cpu_node_count() nodes (at most KMEM_MAX_NODES; more are folded
 * onto them), and for each node the nodes in order of distance, nearest
 * (itself) first, from libnuma's distance table.  libnuma is loaded
 * (dlopen) only where /sys/devices/system/node/online lists more than one
 * node; elsewhere, or built --without-numa, there is one node.
 *
 * cpu_init() runs once (pthread_once) and must be called before the other
 * functions; every libkmem entry point that needs them calls it.
 */
#ifndef KMEM_CPU_H
#define KMEM_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/rseq.h>

#include "kmem_impl.h"

/* Set by cpu_init(), read-only afterwards. */
extern unsigned int cpu_nr_ids;     /* possible CPU ids are 0 .. cpu_nr_ids-1 */
/*
 * cpu_nr_ids came from the kernel's list of possible CPUs.  Without it
 * (no /sys), it is a count from the C library (the online CPUs, or those
 * this process may run on), below which not every id that the kernel
 * hands out need lie: cpu_current() still answers within it, but the
 * rseq fast path, which indexes by the kernel's id, must not be used.
 * The same holds where the list misses a CPU that the process may run on
 * (a faked /sys): cpu_nr_ids then covers those, but not every CPU that a
 * later sched_setaffinity() may add.
 */
extern bool cpu_ids_known;
extern unsigned int cpu_nr_nodes;   /* NUMA nodes are 0 .. cpu_nr_nodes-1 */
extern bool cpu_rseq_registered;    /* glibc registered an rseq area */
/* The rseq area's offset from the thread pointer. */
extern KMEM_HIDDEN ptrdiff_t cpu_rseq_offset;
extern const int *cpu_node_map;     /* cpu id -> node */

void cpu_init(void);
unsigned int cpu_current_slow(void);

/* This thread's rseq area; only valid when cpu_rseq_registered. */
static inline struct rseq *cpu_rseq_area(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() +
	    cpu_rseq_offset);
}

/* The CPU this thread runs on now (a hint: it may migrate at any time). */
static inline unsigned int cpu_current(void)
{
	if (KMEM_LIKELY(cpu_rseq_registered)) {
		int cpu = (int)*(volatile __u32 *)&cpu_rseq_area()->cpu_id;
		if (KMEM_LIKELY(cpu >= 0 && (unsigned int)cpu < cpu_nr_ids))
			return ((unsigned int)cpu);
	}
	return (cpu_current_slow());
}

static inline unsigned int cpu_count(void) { return (cpu_nr_ids); }
static inline unsigned int cpu_node_count(void) { return (cpu_nr_nodes); }
/*
 * One node: node 0, without reading the map (the fallback map, kept when
 * none could be allocated at start, has a single entry).
 */
static inline int
cpu_node(unsigned int cpu)
{
	return (cpu_nr_nodes == 1 ? 0 : cpu_node_map[cpu]);
}

/* The nodes by distance from 'node', nearest (node itself) first. */
const int *cpu_node_order(int node);

/* Whether the machine really has more than one node (not a simulation). */
bool cpu_numa_real(void);

#ifdef HAVE_NUMA
#define CPU_LIBNUMA     "libnuma.so.1"
/*
 * Load libnuma (cpu_init does on more than one node); true when it loaded
 * and reports NUMA available.  Exposed for tests.
 */
bool cpu_libnuma_load(void);
#endif

/*
 * Parse a sysfs CPU list ("0-3,8-11", "0") and return one more than the
 * highest id in it, or 0 when the text is malformed.  Exposed for tests.
 */
unsigned int cpu_parse_list(const char *text);

/*
 * Test hook: present a simulated topology of 'nodes' nodes with the given
 * CPU -> node map (cpu_nr_ids entries) and, optionally, a nodes x nodes
 * distance table (NULL: distance grows with |a - b|), or restore the real
 * one with nodes == 0.  Memory is never bound to simulated nodes.  Not
 * part of the public API; used by the test suite only.
 */
void cpu_topology_override(unsigned int nodes, const int *map,
    const int *distance);

#endif /* KMEM_CPU_H */
