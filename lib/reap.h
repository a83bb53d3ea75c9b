/*
 * reap.h - giving memory back: the kmem taskq, periodic aging, kmem_reap,
 * memory pressure.  See reap.c.
 */
#ifndef KMEM_REAP_H
#define KMEM_REAP_H

#include <stdbool.h>
#include <stdint.h>

#include "libkmem/taskq.h"

struct kmem_cache;

/* The shared kmem taskq (created on first use). */
taskq_t *kmem_taskq(void);

/* Start periodic aging and the pressure monitor (once; idempotent). */
void reap_start(void);

/* One aging pass over one cache. */
void reap_age_cache(struct kmem_cache *cp, int64_t now_ns);

/*
 * Memory is short: reclaim callbacks, then reap every cache.  Returns the
 * bytes of slabs it gave back.
 */
uint64_t reap_pressure(void);

/* Pressure reaps started so far: grow-ahead stops when this moves. */
uint64_t reap_pressure_gen(void);

/*
 * A layer above the caches that keeps memory of its own (kmem_alloc's
 * spare spans) gives it back through fn: what it kept before 'before'
 * (ns) on each aging pass, everything (before = 0) under pressure and in
 * kmem_reap().
 */
void reap_set_trim(void (*fn)(int64_t before));

/* kmem_reap() from a task of the kmem taskq (no wait for growth). */
void reap_all(void);

/* fork.c: restart what a forked child lost (see reap.c). */
void reap_fork_child(void);

/*
 * A periodic task that a thread other than a worker of the kmem taskq
 * could not queue (no task entry: memory short), queued again a second
 * later from the queue (see reap.c, RETRIES).
 */
#define REAP_RETRY_AGING        0x1     /* the aging chain */
#define REAP_RETRY_PSI          0x2     /* the task that arms PSI */
#define REAP_RETRY_STATS        0x4     /* stats_retry() */
void reap_retry(unsigned int what);

/* Over kmem_memory_limit?  Then reap, in the background. */
void reap_check_limit(void);

/* Test hooks: the pressure monitor's state and a simulated event. */
bool reap_psi_active(void);
/* How many times the delayed task that arms the PSI trigger ran. */
uint64_t reap_psi_attempts(void);
void reap_psi_event(void);
uint64_t reap_passes(void);     /* aging passes run so far */
void reap_pressure_counts(uint64_t *runs, uint64_t *dispatched,
    uint64_t *dropped);         /* pressure reaps: run, async, coalesced */

#endif /* KMEM_REAP_H */
