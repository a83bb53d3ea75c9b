/*
 * grow.h - growing a cache off the allocation path: asynchronous growth
 * with deadlock detection, and grow-ahead.  See grow.c.
 */
#ifndef KMEM_GROW_H
#define KMEM_GROW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "libkmem/taskq.h"

struct kmem_cache;

struct grow_state {
	pthread_mutex_t *lock;          /* meta_mutex_alloc */
	pthread_cond_t cv;              /* a grow task finished */
	int nwaiting;                   /* callers waiting on cv */
	_Atomic bool growing;           /* a grow task is queued or running */
	bool deadlocked;                /* a caller stopped waiting for it */
	bool failed;                    /* the last one found no memory */
	uint64_t gen;                   /* grow tasks finished */
	int node;                       /* where the next slab goes */
	uint64_t pgen;                  /* reap_pressure_gen() when asked */
	_Atomic uint64_t as_cap;        /* grow_as_cap(), as last read */
	taskq_ent_t ent;                /* the one grow task's entry */
	_Atomic uint64_t slabs;         /* slabs added by grow tasks */
	_Atomic uint64_t waits;         /* callers that waited for one */
	_Atomic uint64_t low, high;     /* grow-ahead watermarks (objects) */
};

void grow_init(struct kmem_cache *cp);
void grow_cv_init(struct grow_state *g);

/* Wait until no grow task of cp is queued or running. */
void grow_quiesce(struct kmem_cache *cp);

/*
 * The slab layer had no free object for the caller.  Make sure a grow task
 * is on its way and, if the caller may wait (KM_SLEEP) and the cache is
 * not marked deadlocked, wait up to 100 ms for it.  0: slabs were added,
 * retry; -1: take an emergency object (or fail, for KM_NOSLEEP).
 */
int grow_wait(struct kmem_cache *cp, int node, int kmflags);

/* After an allocation from the slab layer: grow early if running low. */
void grow_ahead(struct kmem_cache *cp, int node);

/*
 * Test hook: caches whose slabs hold less than bytes grow inline (1 MiB
 * by default; 0: every cache grows through the taskq).
 */
void grow_inline_limit(uint64_t bytes);

/* Test hook: while set, grow tasks wait before growing. */
void grow_stall(bool stall);

#endif /* KMEM_GROW_H */
