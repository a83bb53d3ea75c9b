/*
 * place.h - where memory goes: NUMA placement policy for slabs and for
 * per-CPU structures.  See place.c.
 */
#ifndef KMEM_PLACE_H
#define KMEM_PLACE_H

#include <stddef.h>

/* Values of the tunable kmem_numa_policy. */
enum kmem_numa_policy { NUMA_LOCAL, NUMA_INTERLEAVE, NUMA_NONE };

/* Slab lists a new cache keeps: one per node under 'local', else one. */
unsigned int place_cache_nodes(void);

/* Place a slab span grown for 'node' (the policy decides how). */
void place_slab(void *addr, size_t len, int node);

/* Place a per-CPU structure (page aligned) on 'node'. */
void place_local(void *addr, size_t len, int node);

/*
 * Place an array of per-CPU elements (one per possible CPU, starting page
 * aligned): each page goes to the node of the first CPU whose element
 * starts on it.
 */
void place_percpu(void *base, size_t elem, unsigned int ncpus);

#endif /* KMEM_PLACE_H */
