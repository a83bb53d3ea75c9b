/*
 * libkmem/objpool.h - a scalable lockless MPMC object pool.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * An objpool keeps one ring per possible CPU.  objpool_push() appends to
 * the ring of the CPU the caller runs on; objpool_pop() takes from that
 * ring first and then from the others.  There is no lock and no shared
 * counter: threads on different CPUs touch different cache lines.
 *
 * Two kinds of pool share the API:
 *
 *  - objpool_init(): the pool owns nr_objs objects of object_size bytes,
 *    allocated (zeroed) with the pool, spread over the CPU rings and each
 *    passed once to objinit.  Pop an object to use it, push it back when
 *    done.  Objects still out when objpool_fini() runs are given back with
 *    objpool_drop(); the last drop frees the pool.
 *
 *  - objpool_init_ring(): the pool starts empty and holds pointers the
 *    caller owns (never NULL), at most 'capacity' of them at a time in all.
 *    Two such rings let a fixed set of buffers circulate between "full" and
 *    "empty" without a lock, as libkmem's magazine depot does.
 *
 * Pushing more objects than the pool was sized for (or the same object
 * twice) is a caller error; push reports it with -ENOSPC when a ring
 * overflows.  A pool that owns its objects refuses any other pointer
 * with -EINVAL.  See objpool(3).
 */
#ifndef LIBKMEM_OBJPOOL_H
#define LIBKMEM_OBJPOOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OBJPOOL_NR_OBJECT_MAX   (1 << 24)       /* objects or pointers */
#define OBJPOOL_OBJECT_SIZE_MAX (1 << 16)       /* bytes per object */

struct objpool_head;

/* Called once per object when the pool is created; non-zero aborts init. */
typedef int (*objpool_init_obj_cb)(void *obj, void *context);

/* Called once when the pool's memory has been released. */
typedef int (*objpool_fini_cb)(struct objpool_head *pool, void *context);

/*
 * Declared by the caller, filled in by objpool_init()/objpool_init_ring().
 * The first fields may be read; the rest are private.
 */
struct objpool_head {
	int obj_size;           /* object size rounded up to 8; 0 for a ring */
	int nr_objs;            /* objects owned, or ring capacity */
	int nr_cpus;            /* per-CPU rings */
	int capacity;           /* entries per ring (a power of two) */
	objpool_fini_cb release;
	void *context;
	/* private */
	void *op_map;           /* the one mapping holding every ring */
	size_t op_map_len;
	char *op_rings;         /* ring of CPU 0 */
	size_t op_ring_stride;  /* bytes from one CPU's ring to the next */
	uint64_t op_mask;       /* capacity - 1 */
};

int objpool_init(struct objpool_head *pool, int nr_objs, int object_size,
    void *context, objpool_init_obj_cb objinit, objpool_fini_cb release);
int objpool_init_ring(struct objpool_head *pool, int capacity,
    void *context, objpool_fini_cb release);
void *objpool_pop(struct objpool_head *pool);
int objpool_push(void *obj, struct objpool_head *pool);
int objpool_drop(void *obj, struct objpool_head *pool);
void objpool_fini(struct objpool_head *pool);
void objpool_free(struct objpool_head *pool);
int objpool_count(const struct objpool_head *pool);

#ifdef __cplusplus
}
#endif

#endif /* LIBKMEM_OBJPOOL_H */
