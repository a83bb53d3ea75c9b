/*
 * libkmem/taskq.h - Solaris/SPL-style task queues.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A task queue runs functions ("tasks") on a set of worker threads it owns.
 * taskq_dispatch() queues func(arg) and returns an id; tasks run in the
 * order they were queued (TQ_FRONT ones first), on as many threads as the
 * queue has.  A queue may grow and shrink its threads on demand
 * (TASKQ_DYNAMIC), run a task at a later time (taskq_dispatch_delay()),
 * cancel a task that has not started (taskq_cancel_id()) and wait for one
 * task, for every task up to an id, or for the whole queue to drain.
 *
 * The API follows the SPL (the Solaris Porting Layer of OpenZFS), so code
 * written against <sys/taskq.h> ports with few changes.  Its memory never
 * comes from malloc(): libkmem uses one queue itself, for asynchronous
 * cache growth and periodic reaping.  See taskq(3).
 */
#ifndef LIBKMEM_TASKQ_H
#define LIBKMEM_TASKQ_H

#include <pthread.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TASKQ_NAMELEN           31      /* longest queue name */
#define TASKQ_THREADS_MAX       1024    /* most threads of one queue */

/* taskq_create() flags */
#define TASKQ_PREPOPULATE       0x0001  /* preallocate minalloc entries */
#define TASKQ_DYNAMIC           0x0004  /* spawn threads only when needed */
#define TASKQ_THREADS_CPU_PCT   0x0008  /* nthreads is a % of online CPUs */

/* Dispatch flags */
#define TQ_SLEEP                0x00000000  /* may wait for a free entry */
#define TQ_NOSLEEP              0x00000001  /* never wait: fail instead */
#define TQ_FRONT                0x08000000  /* run before queued tasks */

/*
 * Priorities, as nice values (a lower value is a higher priority).  They
 * are checked and recorded; the threads run at the process's priority.
 */
#define maxclsyspri             (-20)
#define defclsyspri             0
#define minclsyspri             19

typedef struct taskq taskq_t;
typedef uintptr_t taskqid_t;            /* 0 is never a valid id */
typedef void (task_func_t)(void *);

/*
 * A task entry owned by the caller, for taskq_dispatch_ent(), which then
 * needs no memory and cannot fail.  Initialize it once with
 * taskq_init_ent() (an all-zero entry is initialized too).  Every field is
 * private to libkmem.
 */
typedef struct taskq_ent {
	struct taskq_ent *tqent_next;           /* queue list */
	struct taskq_ent *tqent_prev;
	struct taskq_ent *tqent_id_next;        /* id-ordered list */
	struct taskq_ent *tqent_id_prev;
	taskqid_t tqent_id;
	task_func_t *tqent_func;
	void *tqent_arg;
	int64_t tqent_expire;                   /* CLOCK_MONOTONIC ns */
	unsigned int tqent_flags;
	unsigned int tqent_state;
} taskq_ent_t;

/* A snapshot filled in by taskq_stats(). */
struct taskq_stats {
	char name[TASKQ_NAMELEN + 1];
	uint64_t threads;               /* worker threads alive now */
	uint64_t threads_max;           /* the most it may have */
	uint64_t threads_idle;          /* of those, waiting for work */
	uint64_t tasks_pending;         /* queued + delayed, not running */
	uint64_t tasks_delayed;         /* of those, waiting for their time */
	uint64_t tasks_dispatched;      /* accepted since creation */
	uint64_t tasks_executed;        /* finished running */
	uint64_t tasks_cancelled;       /* removed before they ran */
	uint64_t entries_allocated;     /* entries the queue holds */
};

taskq_t *taskq_create(const char *name, int nthreads, int pri, int minalloc,
    int maxalloc, unsigned int flags);
void taskq_destroy(taskq_t *tq);

taskqid_t taskq_dispatch(taskq_t *tq, task_func_t func, void *arg,
    unsigned int flags);
taskqid_t taskq_dispatch_delay(taskq_t *tq, task_func_t func, void *arg,
    unsigned int flags, int64_t expire_ns);
void taskq_dispatch_ent(taskq_t *tq, task_func_t func, void *arg,
    unsigned int flags, taskq_ent_t *ent);
void taskq_init_ent(taskq_ent_t *ent);
int taskq_empty_ent(taskq_ent_t *ent);

int taskq_cancel_id(taskq_t *tq, taskqid_t id);
void taskq_wait(taskq_t *tq);
void taskq_wait_id(taskq_t *tq, taskqid_t id);
void taskq_wait_outstanding(taskq_t *tq, taskqid_t id);

int taskq_member(taskq_t *tq, pthread_t thread);
taskq_t *taskq_of_curthread(void);
int64_t taskq_now(void);
int taskq_stats(taskq_t *tq, struct taskq_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* LIBKMEM_TASKQ_H */
