/*
 * place.h - where memory goes: NUMA placement policy for slabs and for
 * per-CPU structures.  See place.c.
 */
#ifndef KMEM_PLACE_H
#define KMEM_PLACE_H

#include <stddef.h>

#include "kmem_impl.h"

/* Values of the tunable kmem_numa_policy. */
enum kmem_numa_policy { NUMA_LOCAL, NUMA_INTERLEAVE, NUMA_NONE };

/* Slab lists a new cache keeps: one per node under 'local', else one. */
unsigned int place_cache_nodes(void);

/*
 * The arena keeps spans of different placement in regions of their own
 * (vmem.c), so that a policy is set once per region and neighbouring
 * spans share it.  Classes: PLACE_DEFAULT (no policy: 'none', one node,
 * a span for no node), PLACE_INTERLEAVE, and PLACE_INTERLEAVE + 1 + n for
 * node n under 'local'.
 */
#define PLACE_DEFAULT           0
#define PLACE_INTERLEAVE        1
#define PLACE_CLASSES           (KMEM_MAX_NODES + 2)
unsigned int place_class(int node);     /* for a span grown for 'node' */

/* Set the policy of class 'cls' on a new region, or a range mapped anew. */
void place_region(void *addr, size_t len, unsigned int cls);

/*
 * Place a per-CPU structure (page aligned) on 'node': its pages written so
 * far move there; the rest go where they are first written (place.c).
 * Call it after initialising what the creating thread writes.
 */
void place_local(void *addr, size_t len, int node);

/*
 * Place an array of per-CPU elements (one per possible CPU, starting page
 * aligned) as place_local does: each page goes to the node of the first
 * CPU whose element starts on it.
 */
void place_percpu(void *base, size_t elem, unsigned int ncpus);

#endif /* KMEM_PLACE_H */
