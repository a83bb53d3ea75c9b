/*
 * depot.c - the magazine depot: a cache's spare magazines, full and empty,
 * in two objpool rings.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every CPU always owns exactly two magazines (loaded and previous); the
 * depot owns a fixed number more, nmags.  A CPU that runs out exchanges
 * one of its magazines for one of the depot's - an empty one for a full
 * one, or the reverse - so the depot always holds exactly nmags magazines
 * and each ring needs room for nmags, whatever the number of CPUs.  (A ring
 * sized for "every magazine of every CPU" would grow with CPUs squared:
 * an objpool ring has room for the pool's whole capacity on every CPU.)
 * Exchanges take no lock: objpool push and pop are lockless and correct
 * under preemption and migration.
 *
 * FRESH MAGAZINES.  The depot's magazines start empty but not in the
 * empty ring: depot_get_empty() hands out magazine 'fresh' (a counter)
 * when the ring has none, until all nmags have been handed out once.  So
 * creating a cache writes nothing into its rings, and a cache that never
 * exchanges a magazine never faults their pages in - not even when it is
 * reaped or its statistics read: a full magazine is put only after an
 * empty one was got, and an empty one only after a full one, so while
 * full_n is 0 (at rest) the full ring is empty and while fresh is 0 both
 * are, and then they are not looked at.
 *
 * INVARIANTS.  A magazine in 'full' holds exactly cap rounds, one in
 * 'empty' holds none; |full| + |empty| + (nmags - fresh) + magazines in
 * transit between a get and a put = nmags.  Because of that count a put
 * never finds its ring full; if it did, the invariant is broken and we
 * stop loudly rather than lose a magazine of objects.
 *
 * WORKING SET.  full_n counts the full magazines and full_min the fewest
 * there were since the aging pass last asked (depot_idle_full): those sat
 * unused for a whole interval, and aging flushes that many (Bonwick's
 * working-set rule).  Both are maintained on the exchange path with
 * relaxed atomics - an estimate, which is all the rule needs.
 *
 * LOCKING: none here (objpool).  Callers hold their CPU's magazine lock
 * around an exchange, which keeps a magazine's rounds stable while it
 * moves.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "depot.h"
#include "kmem_impl.h"

int
depot_init(struct depot *d, char *first, size_t stride, int nmags)
{
	int rc;

	d->nmags = nmags;
	d->first = first;
	d->stride = stride;
	atomic_store_explicit(&d->fresh, 0, memory_order_relaxed);
	rc = objpool_init_ring(&d->full, nmags, NULL, NULL);
	if (rc == 0 && (rc = objpool_init_ring(&d->empty, nmags, NULL,
	    NULL)) != 0)
		objpool_fini(&d->full);
	if (rc != 0) {
		errno = -rc;
		return (-1);
	}
	return (0);
}

void
depot_fini(struct depot *d)
{
	objpool_fini(&d->full);
	objpool_fini(&d->empty);
}

static void
depot_put(struct objpool_head *ring, struct mag *m)
{
	if (KMEM_UNLIKELY(objpool_push(m, ring) != 0)) {
		kmem_report("depot: magazine ring overflow (%d magazines); "
		    "internal invariant broken", ring->nr_objs);
		abort();
	}
}

struct mag *
depot_get_full(struct depot *d)
{
	struct mag *m;

	/* No look at a ring nobody may have put into (see FRESH). */
	if (atomic_load_explicit(&d->full_n, memory_order_relaxed) <= 0)
		return (NULL);
	if ((m = objpool_pop(&d->full)) != NULL) {
		int n = atomic_fetch_sub_explicit(&d->full_n, 1,
		    memory_order_relaxed) - 1;
		int min = atomic_load_explicit(&d->full_min,
		    memory_order_relaxed);
		while (n < min && !atomic_compare_exchange_weak_explicit(
		    &d->full_min, &min, n, memory_order_relaxed,
		    memory_order_relaxed))
			;
	}
	return (m);
}

void
depot_put_full(struct depot *d, struct mag *m)
{
	depot_put(&d->full, m);
	atomic_fetch_add_explicit(&d->full_n, 1, memory_order_relaxed);
}

int
depot_idle_full(struct depot *d)
{
	int min = atomic_exchange_explicit(&d->full_min,
	    atomic_load_explicit(&d->full_n, memory_order_relaxed),
	    memory_order_relaxed);

	return (min > 0 ? min : 0);
}

struct mag *
depot_get_empty(struct depot *d)
{
	struct mag *m = objpool_pop(&d->empty);
	int i;

	if (m != NULL)
		return (m);
	/* A fresh one, while some were never handed out. */
	i = atomic_load_explicit(&d->fresh, memory_order_relaxed);
	while (i < d->nmags) {
		if (atomic_compare_exchange_weak_explicit(&d->fresh, &i, i + 1,
		    memory_order_relaxed, memory_order_relaxed))
			return ((struct mag *)(d->first + (size_t)i * d->stride));
	}
	return (NULL);
}

void
depot_put_empty(struct depot *d, struct mag *m)
{
	depot_put(&d->empty, m);
}

int
depot_full_count(const struct depot *d)
{
	/* No look at a ring nobody may have put into (see FRESH). */
	if (atomic_load_explicit(&d->full_n, memory_order_relaxed) <= 0)
		return (0);
	return (objpool_count(&d->full));
}

int
depot_empty_count(const struct depot *d)
{
	int fresh = atomic_load_explicit(&d->fresh, memory_order_relaxed);

	/* None handed out yet: none came back to the ring (see FRESH). */
	if (fresh == 0)
		return (d->nmags);
	return (objpool_count(&d->empty) + d->nmags - fresh);
}
