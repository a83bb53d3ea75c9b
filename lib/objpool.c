/*
 * objpool.c - per-CPU ring-array MPMC object pool, correct in userspace.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * LAYOUT
 *
 * One run of zeroed pages (meta_pages_alloc: carved from shared metadata
 * regions) holds a small header (the reference count) and one ring per
 * possible CPU, at a fixed stride.  Initialising a ring pool writes
 * nothing there (zero is its initial state), so the pages of a ring that
 * is never used are never faulted in.  A ring is a head counter and a
 * tail counter on cache lines of their own, then 'capacity' cells, then
 * (for a pool that owns its objects) that CPU's share of the objects.  On a
 * machine with more than one NUMA node every ring starts on a page boundary
 * and its pages are bound to its CPU's node (place.c).  capacity is a power
 * of two >= nr_objs (and >= 2), so one ring can hold every object of the
 * pool and push never runs out of room unless the caller pushes more than
 * the pool was sized for.
 *
 * THE USERSPACE PROBLEM
 *
 * The kernel objpool reserves a tail position with a CAS, writes the entry,
 * then publishes it by storing 'last = tail + 1'.  That is correct only
 * because push runs with interrupts off: one pusher per CPU ring at a time,
 * so positions are published in order.  In userspace a thread can be
 * preempted (or migrate) between reserving position p and writing it, and
 * another thread on the same CPU pushes p + 1 and publishes 'last = p + 2':
 * a pop would then read cell p before it is written.  A single 'last'
 * marker cannot say "p + 1 is ready but p is not".
 *
 * THE SCHEME: a publication sequence number per cell
 *
 * Each cell has seq = (the last position pushed into it) + 1, 0 when never
 * used.  The entry of position p is in cell p & mask and is ready exactly
 * when that cell's seq == p + 1.
 *
 * push: read tail = p, then head; if p - head < capacity, CAS tail p -> p+1
 *       to own position p, write the entry, store seq = p + 1 (release).
 * pop:  read head = p; if cell(p).seq == p + 1 (acquire), read the entry,
 *       then CAS head p -> p + 1 (release) to take it.
 *
 * A pop never returns an entry that was not written: it reads the entry
 * only after an acquire load saw seq == p + 1, which the pusher of p stores
 * (release) after writing it.  A pusher preempted between its CAS and that
 * store leaves seq < p + 1, and pops of that ring report it empty at p
 * until it finishes (objpool_pop() goes on to other CPUs' rings); nothing
 * behind p is skipped, so the order within a ring stays FIFO.
 *
 * No entry is returned twice: head moves only by CAS, so one pop takes
 * position p.  The entry it read is still position p's: the cell could be
 * rewritten only by the push of p + capacity, which needs head > p first,
 * and then this pop's CAS fails and it retries.  (The entry field is a
 * relaxed atomic so that such a doomed read is not a data race.)
 *
 * No entry is lost, and push never fails in a correctly sized pool: at any
 * instant the positions [head, tail) each hold one distinct object (pushed,
 * or held by a pusher about to write it), so tail - head <= nr_objs - 1
 * while a pusher holds one more object, and capacity >= nr_objs.  Tail is
 * read before head, so a stale head only overstates fullness and the check
 * never fails falsely; a stale tail can make tail - head negative, which is
 * compared signed (the CAS on the stale tail then fails and retries).  A
 * pop takes its entry in one CAS and leaves no "being popped" state
 * behind, so a stalled popper never blocks a pusher.
 * tail - head >= capacity therefore means the caller pushed more objects
 * than the pool holds: push returns -ENOSPC.  A pool that owns its
 * objects also refuses, with -EINVAL, a pointer that is not one of them
 * (objpool_owns: arithmetic on the layout, no shared state): fini would
 * count it as an object's reference.
 *
 * Threads may migrate at any instruction: nothing above depends on which
 * CPU a thread runs on.  The current CPU only chooses the ring to try
 * first, for locality.
 *
 * WRAP-AROUND is made impossible: head, tail and seq are 64-bit and only
 * grow; at 10^9 operations a second they wrap after 584 years.  (With
 * 32-bit counters a popper stalled across 2^32 positions could have its
 * CAS succeed on a recycled value.)  A fresh (zero) cell has seq 0, which
 * matches no position, so rings cost no memory until they are used.
 *
 * REFERENCE COUNT (pools that own objects): nr_objs + 1 at init, one per
 * object plus one for the pool.  objpool_fini() pops every object it can
 * and drops their references and the pool's own; objects still out are
 * given back with objpool_drop(), and whichever drop reaches zero frees
 * the pool and calls release once.  After fini, push, pop, count and
 * another fini treat the pool as released (op_rings is NULL); only drop
 * and free still reach it (op_map).  A ring (objpool_init_ring) holds only
 * the pool's reference: its pointers belong to the caller.
 *
 * LOCKING: none.  push/pop/count may run concurrently from any threads.
 * fini/free must not run concurrently with push or pop of the same pool.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "libkmem/objpool.h"
#include "cpu.h"
#include "kmem_impl.h"
#include "meta.h"
#include "place.h"

struct objpool_cell {
	_Atomic uint64_t seq;           /* last position pushed here + 1 */
	void *_Atomic obj;
};

struct objpool_ring {
	_Atomic uint64_t head KMEM_ALIGNED_LINE;        /* next to pop */
	_Atomic uint64_t tail KMEM_ALIGNED_LINE;        /* next to push */
	struct objpool_cell cells[] KMEM_ALIGNED_LINE;
};

/*
 * At the start of the mapping.  ref holds the reference count less one,
 * so that a fresh (zero) mapping reads as a ring pool's one reference:
 * objpool_init_ring() then writes nothing, and a ring nobody pushes to
 * never has its pages faulted in.
 */
struct objpool_meta {
	_Atomic long ref;               /* references - 1 */
	bool owns_objects;
	size_t rings_off;               /* op_rings - op_map (owning pools) */
} KMEM_ALIGNED_LINE;

static inline struct objpool_meta *
objpool_meta(const struct objpool_head *pool)
{
	return ((struct objpool_meta *)pool->op_map);
}

static inline struct objpool_ring *
objpool_ring(const struct objpool_head *pool, unsigned int cpu)
{
	return ((struct objpool_ring *)(pool->op_rings +
	    (size_t)cpu * pool->op_ring_stride));
}

static int
objpool_ring_push(struct objpool_ring *ring, uint64_t mask, void *obj)
{
	/*
	 * A head older than the tail read would make the ring look fuller
	 * than it is.  The tail is read with acquire (a failed CAS rereads
	 * it so too), and the CAS that moves it is a release: a push that
	 * follows the pop of its object (in any thread) thus makes that
	 * pop's head visible to whoever reads its tail.  A stale tail only
	 * makes the CAS fail.
	 */
	uint64_t pos = atomic_load_explicit(&ring->tail, memory_order_acquire);
	struct objpool_cell *cell;

	do {
		uint64_t head = atomic_load_explicit(&ring->head,
		    memory_order_acquire);
		/*
		 * Signed: if this thread stalled between the two loads, head
		 * may have passed the stale pos; the CAS then fails and
		 * reloads.  Only a real excess of entries is an overfill.
		 */
		if ((int64_t)(pos - head) > (int64_t)mask)
			return (-ENOSPC);       /* pool overfilled */
	} while (!atomic_compare_exchange_weak_explicit(&ring->tail, &pos,
	    pos + 1, memory_order_acq_rel, memory_order_acquire));

	cell = &ring->cells[pos & mask];
	atomic_store_explicit(&cell->obj, obj, memory_order_relaxed);
	atomic_store_explicit(&cell->seq, pos + 1, memory_order_release);
	return (0);
}

static void *
objpool_ring_pop(struct objpool_ring *ring, uint64_t mask)
{
	uint64_t pos = atomic_load_explicit(&ring->head, memory_order_relaxed);

	for (;;) {
		struct objpool_cell *cell = &ring->cells[pos & mask];
		int64_t dif = (int64_t)(atomic_load_explicit(&cell->seq,
		    memory_order_acquire) - (pos + 1));

		if (dif == 0) {
			void *obj = atomic_load_explicit(&cell->obj,
			    memory_order_relaxed);
			if (atomic_compare_exchange_weak_explicit(&ring->head,
			    &pos, pos + 1, memory_order_release,
			    memory_order_relaxed))
				return (obj);
		} else if (dif < 0) {
			return (NULL);  /* empty, or entry at head not written */
		} else {
			pos = atomic_load_explicit(&ring->head,
			    memory_order_relaxed);
		}
	}
}

/* Offset of a ring's objects from the ring (after its cells). */
static inline size_t
objpool_objs_off(uint64_t capacity)
{
	return (KMEM_P2ROUNDUP(offsetof(struct objpool_ring, cells) +
	    capacity * sizeof (struct objpool_cell), KMEM_CACHE_LINE));
}

/*
 * Whether obj is one of the objects of an owning pool whose rings start at
 * 'rings' (op_rings, which fini clears: drop finds them in the meta): the
 * start of an object in a ring's share (objpool_setup gives the first
 * nr_objs % nr_cpus rings one object more than the others).
 */
static bool
objpool_owns(const struct objpool_head *pool, const char *rings,
    const void *obj)
{
	size_t ncpus = (size_t)pool->nr_cpus;
	size_t off = (size_t)((uintptr_t)obj - (uintptr_t)rings);
	size_t objs_off = objpool_objs_off((uint64_t)pool->capacity);
	size_t cpu, i;

	if (off >= ncpus * pool->op_ring_stride)
		return (false);
	cpu = off / pool->op_ring_stride;
	off %= pool->op_ring_stride;
	if (off < objs_off || (off - objs_off) % (size_t)pool->obj_size != 0)
		return (false);
	i = (off - objs_off) / (size_t)pool->obj_size;
	return (i < (size_t)pool->nr_objs / ncpus +
	    (cpu < (size_t)pool->nr_objs % ncpus ? 1 : 0));
}

/*
 * Map the header and every CPU's ring, spread nr_objs objects of obj_size
 * bytes (0: none) over the rings and pass each to objinit.
 */
static int
objpool_setup(struct objpool_head *pool, int nr_objs, int obj_size,
    void *context, objpool_init_obj_cb objinit, objpool_fini_cb release)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned int ncpus;
	bool numa;
	uint64_t capacity;
	size_t granule, per_ring, objs_off, stride, len;
	char *map;

	cpu_init();
	ncpus = cpu_count();
	numa = cpu_numa_real();
	capacity = kmem_p2roundup64(nr_objs < 2 ? 2 : (uint64_t)nr_objs);
	per_ring = obj_size == 0 ? 0 : (nr_objs + ncpus - 1) / ncpus;

	/* Rings on their own pages only where pages go to different nodes. */
	granule = numa ? page : KMEM_CACHE_LINE;
	objs_off = objpool_objs_off(capacity);
	stride = KMEM_P2ROUNDUP(objs_off + per_ring * (size_t)obj_size,
	    granule);
	len = KMEM_P2ROUNDUP(KMEM_P2ROUNDUP(sizeof (struct objpool_meta),
	    granule) + (size_t)ncpus * stride, page);

	map = meta_pages_alloc(len);
	if (map == NULL)
		return (-ENOMEM);

	memset(pool, 0, sizeof (*pool));
	pool->obj_size = obj_size;
	pool->nr_objs = nr_objs;
	pool->nr_cpus = (int)ncpus;
	pool->capacity = (int)capacity;
	pool->release = release;
	pool->context = context;
	pool->op_map = map;
	pool->op_map_len = len;
	pool->op_rings = map + KMEM_P2ROUNDUP(sizeof (struct objpool_meta),
	    granule);
	pool->op_ring_stride = stride;
	pool->op_mask = capacity - 1;

	int left = obj_size == 0 ? 0 : nr_objs;
	for (unsigned int cpu = 0; cpu < ncpus; cpu++) {
		struct objpool_ring *ring = objpool_ring(pool, cpu);
		char *obj = (char *)ring + objs_off;
		int n = left / (int)(ncpus - cpu);

		if ((unsigned int)(left % (int)(ncpus - cpu)) != 0)
			n++;            /* earlier CPUs take the remainder */
		for (int i = 0; i < n; i++, obj += obj_size) {
			if (objinit != NULL) {
				int rc = objinit(obj, context);
				if (rc != 0) {
					meta_pages_free(map, len);
					memset(pool, 0, sizeof (*pool));
					return (rc);
				}
			}
			atomic_store_explicit(&ring->cells[i].obj, obj,
			    memory_order_relaxed);
			atomic_store_explicit(&ring->cells[i].seq,
			    (uint64_t)i + 1, memory_order_relaxed);
		}
		/*
		 * An empty ring's memory stays untouched (it is zero): its
		 * CPU's first push writes it, on that CPU's node.  A filled
		 * one moves there (place.c).
		 */
		if (n != 0) {
			atomic_store_explicit(&ring->tail, (uint64_t)n,
			    memory_order_relaxed);
			if (numa)
				place_local(ring, stride, cpu_node(cpu));
		}
		left -= n;
	}

	/* A ring pool's meta is right as mapped (zero); leave it untouched. */
	if (obj_size != 0) {
		objpool_meta(pool)->owns_objects = true;
		objpool_meta(pool)->rings_off = (size_t)(pool->op_rings - map);
		atomic_store_explicit(&objpool_meta(pool)->ref, (long)nr_objs,
		    memory_order_release);
	}
	return (0);
}

/*
 * Bad arguments: one line naming the function, the pool and what was
 * wrong; -EINVAL.
 */
static int
objpool_bad(const char *fn, const void *pool, const char *what)
{
	kmem_report("%s(%p): %s", fn, pool, what);
	return (-EINVAL);
}

KMEM_EXPORT int
objpool_init(struct objpool_head *pool, int nr_objs, int object_size,
    void *context, objpool_init_obj_cb objinit, objpool_fini_cb release)
{
	if (pool == NULL)
		return (objpool_bad("objpool_init", pool, "NULL pool"));
	if (nr_objs <= 0 || nr_objs > OBJPOOL_NR_OBJECT_MAX) {
		kmem_report("objpool_init(%p): nr_objs %d not from 1 to "
		    "OBJPOOL_NR_OBJECT_MAX (%d)", (void *)pool, nr_objs,
		    OBJPOOL_NR_OBJECT_MAX);
		return (-EINVAL);
	}
	if (object_size <= 0 || object_size > OBJPOOL_OBJECT_SIZE_MAX) {
		kmem_report("objpool_init(%p): object_size %d not from 1 to "
		    "OBJPOOL_OBJECT_SIZE_MAX (%d)", (void *)pool, object_size,
		    OBJPOOL_OBJECT_SIZE_MAX);
		return (-EINVAL);
	}
	return (objpool_setup(pool, nr_objs,
	    (int)KMEM_P2ROUNDUP((size_t)object_size, sizeof (long)), context,
	    objinit, release));
}

KMEM_EXPORT int
objpool_init_ring(struct objpool_head *pool, int capacity, void *context,
    objpool_fini_cb release)
{
	if (pool == NULL)
		return (objpool_bad("objpool_init_ring", pool, "NULL pool"));
	if (capacity <= 0 || capacity > OBJPOOL_NR_OBJECT_MAX) {
		kmem_report("objpool_init_ring(%p): capacity %d not from 1 to "
		    "OBJPOOL_NR_OBJECT_MAX (%d)", (void *)pool, capacity,
		    OBJPOOL_NR_OBJECT_MAX);
		return (-EINVAL);
	}
	return (objpool_setup(pool, capacity, 0, context, NULL, release));
}

KMEM_EXPORT void *
objpool_pop(struct objpool_head *pool)
{
	unsigned int ncpus, cpu;

	if (KMEM_UNLIKELY(pool == NULL || pool->op_rings == NULL))
		return (NULL);          /* no pool, or released */
	ncpus = (unsigned int)pool->nr_cpus;
	cpu = cpu_current();
	for (unsigned int i = 0; i < ncpus; i++) {
		void *obj = objpool_ring_pop(objpool_ring(pool, cpu),
		    pool->op_mask);
		if (obj != NULL)
			return (obj);
		if (++cpu == ncpus)
			cpu = 0;
	}
	return (NULL);
}

KMEM_EXPORT int
objpool_push(void *obj, struct objpool_head *pool)
{
	if (KMEM_UNLIKELY(obj == NULL || pool == NULL ||
	    pool->op_rings == NULL))
		return (objpool_bad("objpool_push", pool, pool == NULL ?
		    "NULL pool" : pool->op_rings == NULL ?
		    "pool released or ended" : "NULL object"));
	/* Not one of its objects: fini would count it as a reference. */
	if (KMEM_UNLIKELY(pool->obj_size != 0 &&
	    !objpool_owns(pool, pool->op_rings, obj))) {
		kmem_report("objpool_push(%p): %p is not one of the pool's "
		    "objects; not pushed", (void *)pool, obj);
		return (-EINVAL);
	}
	return (objpool_ring_push(objpool_ring(pool, cpu_current()),
	    pool->op_mask, obj));
}

KMEM_EXPORT int
objpool_count(const struct objpool_head *pool)
{
	int64_t sum = 0;

	if (pool == NULL || pool->op_rings == NULL)
		return (objpool_bad("objpool_count", pool, pool == NULL ?
		    "NULL pool" : "pool released or ended"));
	for (unsigned int cpu = 0; cpu < (unsigned int)pool->nr_cpus; cpu++) {
		struct objpool_ring *ring = objpool_ring(pool, cpu);
		uint64_t head = atomic_load_explicit(&ring->head,
		    memory_order_relaxed);
		uint64_t tail = atomic_load_explicit(&ring->tail,
		    memory_order_relaxed);
		if (tail > head)
			sum += (int64_t)(tail - head);
	}
	return (sum > pool->nr_objs ? pool->nr_objs : (int)sum);
}

KMEM_EXPORT void
objpool_free(struct objpool_head *pool)
{
	objpool_fini_cb release;
	void *context;

	if (pool == NULL || pool->op_map == NULL)
		return;
	release = pool->release;
	context = pool->context;
	meta_pages_free(pool->op_map, pool->op_map_len);
	pool->op_map = NULL;
	pool->op_rings = NULL;
	if (release != NULL)
		(void) release(pool, context);
}

/* Drop 'count' references; the one that reaches zero frees the pool. */
static bool
objpool_put(struct objpool_head *pool, long count)
{
	if (atomic_fetch_sub_explicit(&objpool_meta(pool)->ref, count,
	    memory_order_acq_rel) == count - 1) {
		objpool_free(pool);
		return (true);
	}
	return (false);
}

KMEM_EXPORT int
objpool_drop(void *obj, struct objpool_head *pool)
{
	if (obj == NULL || pool == NULL || pool->op_map == NULL ||
	    !objpool_meta(pool)->owns_objects)
		return (objpool_bad("objpool_drop", pool, pool == NULL ?
		    "NULL pool" : pool->op_map == NULL ? "pool released" :
		    !objpool_meta(pool)->owns_objects ?
		    "a ring pool has no objects to drop" : "NULL object"));
	/* Not one of its objects: it holds no reference to drop. */
	if (!objpool_owns(pool, (char *)pool->op_map +
	    objpool_meta(pool)->rings_off, obj)) {
		kmem_report("objpool_drop(%p): %p is not one of the pool's "
		    "objects; not dropped", (void *)pool, obj);
		return (-EINVAL);
	}
	return (objpool_put(pool, 1) ? 0 : -EAGAIN);
}

KMEM_EXPORT void
objpool_fini(struct objpool_head *pool)
{
	long count = 1;         /* the pool's own reference */

	/* Released, or ended already (its reference is dropped). */
	if (pool == NULL || pool->op_map == NULL || pool->op_rings == NULL)
		return;
	/*
	 * A ring pool has only its own reference (objpool_drop refuses it):
	 * free it without touching its meta, so that a ring nobody used is
	 * never faulted in, not even to be unmapped.
	 */
	if (pool->obj_size == 0) {
		objpool_free(pool);
		return;
	}
	if (objpool_meta(pool)->owns_objects) {
		while (objpool_pop(pool) != NULL)
			count++;
	}
	/*
	 * Its use ends here: objects still out come back only through
	 * objpool_drop().  Push, pop and count now see the pool as released
	 * (a pushed object would hold its reference for ever), and so does a
	 * second fini (it would drop an outstanding object's reference).
	 */
	pool->op_rings = NULL;
	(void) objpool_put(pool, count);
}
