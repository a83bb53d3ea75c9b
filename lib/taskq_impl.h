/*
 * taskq_impl.h - libkmem-internal interfaces of the task queue (taskq.c):
 * the registry of live queues and a test hook.  Nothing here is exported
 * from libkmem.so or declared in the public <libkmem/taskq.h>.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef KMEM_TASKQ_IMPL_H
#define KMEM_TASKQ_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "libkmem/taskq.h"
#include "kmem_impl.h"

/*
 * Call fn(tq, arg) for every live queue (created and not yet being
 * destroyed), in creation order, with the registry lock held: a queue
 * cannot be destroyed, nor one created, while fn runs.  fn may call
 * taskq_stats() and the other functions that take only a queue's lock; it
 * must not call taskq_create() or taskq_destroy() (they take the registry
 * lock: deadlock).  Lock order: registry lock, then a queue's lock.
 */
void taskq_walk(void (*fn)(taskq_t *tq, void *arg), void *arg);

/*
 * taskq_create() whose threads get stacks of stacksize bytes (0: the C
 * library's default, as taskq_create() gives), for libkmem's own queue
 * (reap.c).  stacksize is not checked: at least PTHREAD_STACK_MIN.
 */
taskq_t *taskq_create_stack(const char *name, int nthreads, int pri,
    int minalloc, int maxalloc, unsigned int flags, size_t stacksize);

/*
 * Test hook: how long (ns) an idle dynamic thread other than the first
 * waits for work before it exits; 1 s by default.  ns <= 0 restores the
 * default.  Idle threads re-read it at once.
 */
void taskq_set_idle_timeout(taskq_t *tq, int64_t ns);

/*
 * taskq_dispatch_ent(), the task to run at expire (CLOCK_MONOTONIC ns) as
 * with taskq_dispatch_delay(): needs no memory.  Its id, or 0 with errno
 * EBUSY (ent is still queued or delayed) or ESHUTDOWN.
 */
taskqid_t taskq_dispatch_ent_delay(taskq_t *tq, task_func_t func, void *arg,
    unsigned int flags, taskq_ent_t *ent, int64_t expire);

/*
 * Take a caller-owned entry off tq if its task is queued or delayed
 * there: 0 when it was (the task will not run), ENOENT otherwise (not
 * dispatched, or already running).  Never waits.
 */
int taskq_cancel_ent(taskq_t *tq, taskq_ent_t *ent);

/*
 * Take task id off tq if it is queued or delayed there: 0 when it was,
 * ENOENT otherwise (done, or running: not waited for, unlike
 * taskq_cancel_id).
 */
int taskq_cancel_id_nowait(taskq_t *tq, taskqid_t id);

/* fork() handlers (fork.c): see taskq.c. */
void taskq_fork_prepare(void);
void taskq_fork_parent(void);
void taskq_fork_child(void);
void taskq_fork_child_start(void);

/*
 * A dynamic queue that, in a forked child, gets its first thread only
 * when it needs one: when a task is made ready, or at the first
 * taskq_fork_resume() (see taskq.c, fork()).  For libkmem's own queue.
 */
void taskq_set_fork_lazy(taskq_t *tq);

/*
 * Start what a forked child has deferred.  Called by the allocator's slow
 * paths, where the caller holds no libkmem lock (pthread_create() may
 * allocate); costs one load when nothing is deferred.
 */
extern _Atomic bool taskq_fork_deferred;
void taskq_fork_resume_slow(void);

static inline void
taskq_fork_resume(void)
{
	if (KMEM_UNLIKELY(atomic_load_explicit(&taskq_fork_deferred,
	    memory_order_relaxed)))
		taskq_fork_resume_slow();
}

/*
 * pthread_create() for a thread of libkmem's own (a queue's worker, the
 * PSI watcher): it starts with every signal blocked, whatever the calling
 * thread's mask, so the application's signals go to its own threads.
 */
int taskq_thread_create(pthread_t *tid, const pthread_attr_t *attr,
    void *(*fn)(void *), void *arg);

/*
 * True while the calling thread is inside pthread_create() for a queue's
 * thread.  pthread_create() may allocate: libkmem's allocator then grows
 * a cache inline instead of waiting for a taskq thread (grow.c).
 */
bool taskq_in_spawn(void);

#endif /* KMEM_TASKQ_IMPL_H */
