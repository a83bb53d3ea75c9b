/*
 * depot.h - a cache's depot: full and empty magazines in two lockless
 * objpool rings.  See depot.c.
 */
#ifndef KMEM_DEPOT_H
#define KMEM_DEPOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "libkmem/objpool.h"

struct mag;

struct depot {
	struct objpool_head full;       /* magazines with cap rounds */
	struct objpool_head empty;      /* magazines with no rounds */
	int nmags;                      /* magazines that live here */
	char *first;                    /* magazine i at first + i * stride */
	size_t stride;
	_Atomic int fresh;              /* handed out by get_empty at first */
	_Atomic int full_n;             /* full magazines now */
	_Atomic int full_min;           /* fewest since depot_idle_full() */
};

/*
 * nmags magazines at first, first + stride, ... start empty (handed out
 * by depot_get_empty() before the empty ring's).  Returns 0 or -1 with
 * errno.
 */
int depot_init(struct depot *d, char *first, size_t stride, int nmags);
void depot_fini(struct depot *d);

struct mag *depot_get_full(struct depot *d);
struct mag *depot_get_empty(struct depot *d);
void depot_put_full(struct depot *d, struct mag *m);
void depot_put_empty(struct depot *d, struct mag *m);

int depot_full_count(const struct depot *d);

/*
 * May the depot hold a full magazine?  (false: full_n says none.)  The
 * exchange path asks first, so that a cache that never parks a full
 * magazine never faults in its full ring; it may miss a magazine whose
 * put is not counted yet, and then goes to the slab layer.
 */
static inline bool
depot_maybe_full(struct depot *d)
{
	return (atomic_load_explicit(&d->full_n, memory_order_relaxed) > 0);
}

/*
 * Full magazines that stayed in the depot since the last call (the
 * fewest there were): the ones the working set did not need.
 */
int depot_idle_full(struct depot *d);
int depot_empty_count(const struct depot *d);

#endif /* KMEM_DEPOT_H */
