/*
 * emergency.h - objects mapped one by one when no slab can be had,
 * tracked in a red-black tree keyed by address.  See emergency.c.
 */
#ifndef KMEM_EMERGENCY_H
#define KMEM_EMERGENCY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct emergency_node;
struct emergency_tree {
	struct emergency_node *rbh_root;        /* libbsd RB_HEAD layout */
};

struct emergency {
	pthread_mutex_t *lock;          /* meta_mutex_alloc */
	struct emergency_tree tree;
	_Atomic uint64_t count;         /* objects now (read locklessly) */
	uint64_t max;                   /* high-water mark */
	size_t bytes;                   /* mapped for them */
};

void emergency_init(struct emergency *em);

/* Map one object of 'size' bytes (page aligned); NULL when mmap fails. */
void *emergency_alloc(struct emergency *em, size_t size);

/* Unmap obj if it is one of em's; false if it is not. */
bool emergency_release(struct emergency *em, void *obj);

/* Whether obj is one of em's. */
bool emergency_owns(struct emergency *em, const void *obj);

/*
 * Call fn(obj, arg) for each of em's objects, in address order, with
 * em->lock held: fn must not allocate or free from the cache.
 */
void emergency_walk(struct emergency *em, void (*fn)(void *, void *),
    void *arg);

/* Test hook: make the next n emergency mappings fail (n < 0: all). */
void emergency_inject_failures(int n);

#endif /* KMEM_EMERGENCY_H */
