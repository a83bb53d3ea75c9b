/*
 * taskq.c - Solaris/SPL-style task queues on POSIX threads, without malloc.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WHAT IT DOES
 *
 * A queue owns worker threads that run dispatched tasks, func(arg), in
 * dispatch order: tasks dispatched with TQ_FRONT first (in their own
 * dispatch order), then the others.  A delayed task waits on its own list,
 * sorted by due time, and joins the ready tasks when it is due.  Every
 * dispatch gets a new id from a per-queue counter that starts at 1 and only
 * grows (64 bits: it never wraps), so ids order tasks by dispatch time.
 *
 * MEMORY
 *
 * Nothing here calls malloc(): libkmem can be the process's malloc, and a
 * task queue is one of its internals.  The queue structure is a
 * run of metadata pages (meta_pages_alloc, meta.c: carved from shared
 * regions, not an mmap each).  Task entries are carved from such runs
 * (one page, then growing to 16 pages) onto a per-queue free list, and the
 * chunks are kept until taskq_destroy().  A worker's record (struct
 * taskq_thread) lives on that worker's stack.  pthread_create() may
 * allocate; that is the C library's business, and happens only when a
 * thread is created.
 *
 * ENTRIES AND THEIR INVARIANTS
 *
 * An entry is queue-owned (carved here, TQENT_F_QUEUE) or caller-owned
 * (taskq_dispatch_ent()).  A queue-owned entry is in exactly one state:
 *
 *   FREE     on tq_free;
 *   QUEUED   on tq_prio (TQENT_F_FRONT) or tq_pend, and on the id list;
 *   DELAYED  on tq_delay, and on the id list;
 *   RUNNING  held by the one worker running it (tqt_ent), on no list.
 *
 * A task that dispatches on its own queue when no entry is free and no
 * more can be mapped gets the entry it is running on (taskq_ent_get),
 * which it no longer needs: a task that queues its successor (a periodic
 * chain: libkmem's aging and statistics ticks) keeps its chain going
 * while memory is short instead of ending it for good.
 *
 * A caller-owned entry is QUEUED or DELAYED as above while the queue has
 * it, and IDLE (the caller's) otherwise.  The worker that starts it makes
 * it IDLE before calling the function and never touches it again, so a
 * task may re-dispatch or free its own entry.
 *
 * The id list links every QUEUED and DELAYED entry in increasing id order
 * (appending keeps it sorted: ids are taken in dispatch order under the
 * lock).  Its head, with the ids the workers are running, gives the lowest
 * outstanding id for taskq_wait_outstanding() without a scan.  A running
 * task is known only by its worker's tqt_id: its entry may already be the
 * caller's again.  tq_ninuse counts queue-owned entries not FREE, and
 * tq_nbeyond those of them that a worker took beyond maxalloc
 * (TQENT_F_BEYOND); maxalloc bounds the others.  tq_nalloc counts every
 * entry carved.
 *
 * THREADS
 *
 * Every thread starts with every signal blocked (taskq_thread_create), so
 * a signal sent to the process goes to one of the application's threads.
 *
 * tq_nthreads counts threads created and not yet exited, including those
 * still starting (tq_nstarting).  A fixed queue creates all its threads in
 * taskq_create().  A TASKQ_DYNAMIC queue creates one, the "first", which
 * never exits; whoever makes more tasks ready than there are idle and
 * starting threads (a dispatcher, or a worker taking a task) reserves a
 * thread under the lock and creates it after unlocking, up to the queue's
 * maximum.  A dynamic thread other than the first exits after
 * tq_idle_timeout ns without work.
 *
 * An exiting thread cannot be joined by the queue while it still holds the
 * queue's lock, and detached threads could still be running when
 * taskq_destroy() unmaps the queue.  So threads are joined in a chain: each
 * exiting thread records itself as the queue's "zombie" and joins the
 * previous zombie after unlocking; taskq_destroy() joins the last one, and
 * by induction every thread has then returned.  At most one exited thread
 * is ever left unjoined, and not for long: an exiting thread wakes an idle
 * worker, and a worker about to go idle joins it; so does a destructor at
 * process exit, after which no thread exits for idleness.
 *
 * DELAYED TASKS need no timer thread: an idle worker waits on tq_work_cv
 * with a timeout at the earliest due time (tq_delay's head), and every
 * worker moves due entries to the ready lists before looking for work.  A
 * dispatch that makes a new earliest delayed entry wakes the idle workers
 * so that they shorten their wait.  The first thread of a dynamic queue
 * never exits, and another does not exit for idleness while delayed tasks
 * wait and no other thread is idle, so a queue always has a thread to
 * notice due tasks - with one exception, a lazy queue in a forked child
 * (see fork() below).  A task that falls due while every thread runs a
 * task waits for one of them to finish: nobody is idle to see it, and no
 * thread is added for it (as in the SPL, where a timer only wakes one).
 *
 * LOCKING
 *
 * tq_lock protects every field of the queue, the lists and the entries on
 * them, and every worker's record.  It is never held while a task runs,
 * nor across pthread_create() or pthread_join().  Entry states are stored
 * with release semantics (under the lock) so that taskq_empty_ent() can
 * read one without the lock.  Condition variables, all used with tq_lock:
 *
 *   tq_work_cv  idle workers: a task became ready, the earliest delayed
 *               task or the idle timeout changed, or the queue is dying;
 *   tq_wait_cv  taskq_wait*() and taskq_cancel_id(): a task finished or
 *               was cancelled (broadcast only when tq_nwaiters > 0);
 *   tq_ent_cv   TQ_SLEEP dispatchers: a queue-owned entry became free;
 *   tq_exit_cv  taskq_destroy(): a thread exited or a blocked caller left.
 *
 * The registry lock (taskq_reg_lock) protects the list of live queues and
 * comes before any queue's lock; no path takes it with a queue lock held.
 *
 * DESTROY stops accepting work (dispatch returns 0 with ESHUTDOWN) and,
 * in the same critical section, makes due delayed tasks ready and discards
 * the rest: a worker that sees tq_destroying can never miss a delayed task
 * becoming due after it exits.  The workers drain the ready lists and
 * exit; destroy waits for them and for callers blocked inside the queue
 * (TQ_SLEEP dispatchers, waiters) to leave, joins the threads and unmaps
 * everything.  A task of the queue cannot do this (it would wait for
 * itself): taskq_destroy() from one reports it on stderr and returns.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libkmem/taskq.h"
#include "kmem_impl.h"
#include "meta.h"
#include "taskq_impl.h"

#define TASKQ_IDLE_TIMEOUT_NS   1000000000LL    /* 1 s */
#define TASKQ_CHUNK_PAGES_MAX   16
#define NS_PER_SEC              1000000000LL

/* tqent_state */
enum {
	TQENT_IDLE = 0,         /* caller-owned, not queued */
	TQENT_FREE,             /* queue-owned, on the free list */
	TQENT_QUEUED,           /* on tq_prio or tq_pend */
	TQENT_DELAYED,          /* on tq_delay */
	TQENT_RUNNING,          /* queue-owned, held by its worker */
};

/* tqent_flags */
#define TQENT_F_FRONT           0x1u    /* ready on tq_prio, not tq_pend */
#define TQENT_F_QUEUE           0x2u    /* queue-owned */
#define TQENT_F_BEYOND          0x4u    /* taken beyond maxalloc */

#define TQ_VALID_FLAGS          (TQ_NOSLEEP | TQ_FRONT)
#define TASKQ_VALID_FLAGS       (TASKQ_PREPOPULATE | TASKQ_DYNAMIC | \
	TASKQ_THREADS_CPU_PCT)

struct taskq_list {
	taskq_ent_t *head;
	taskq_ent_t *tail;
	uint64_t count;
};

/* A worker, on its own stack. */
struct taskq_thread {
	struct taskq_thread *tqt_next;
	struct taskq_thread *tqt_prev;
	taskq_t *tqt_tq;
	pthread_t tqt_tid;
	taskqid_t tqt_id;               /* the task it runs, 0 when none */
	taskq_ent_t *tqt_ent;           /* that task's queue-owned entry */
	bool tqt_first;                 /* a dynamic queue's permanent one */
};

/* Header of a mapped chunk of entries. */
struct taskq_chunk {
	struct taskq_chunk *next;
	size_t len;
};

struct taskq {
	pthread_mutex_t tq_lock;
	pthread_cond_t tq_work_cv;
	pthread_cond_t tq_wait_cv;
	pthread_cond_t tq_ent_cv;
	pthread_cond_t tq_exit_cv;

	char tq_name[TASKQ_NAMELEN + 1];
	unsigned int tq_flags;
	int tq_pri;
	int tq_minalloc;
	int tq_maxalloc;                /* 0: no limit */
	int tq_maxthreads;
	size_t tq_map_len;
	size_t tq_page;

	bool tq_destroying;
	bool tq_registered;
	bool tq_have_first;
	bool tq_have_zombie;
	bool tq_at_exit;                /* the process exits: no idle exits */
	bool tq_fork_lazy;              /* no thread in a child until needed */
	bool tq_fork_resumed;           /* taskq_fork_resume_slow() tried it */
	int tq_fork_nspawn;             /* child: reserved, not yet created */
	pthread_t tq_zombie;            /* last exited thread, unjoined */
	pid_t tq_pid;                   /* the process whose threads these are */

	int tq_nthreads;                /* created, not exited */
	int tq_nstarting;               /* created, not yet in their loop */
	int tq_nidle;                   /* waiting on tq_work_cv */
	int tq_nactive;                 /* running a task */
	int tq_nwaiters;                /* waiting on tq_wait_cv */
	int tq_nentwait;                /* waiting on tq_ent_cv */
	int tq_nblocked;                /* callers asleep in the queue */
	int64_t tq_idle_timeout;
	size_t tq_stacksize;            /* of its threads; 0: the default */
	struct taskq_thread *tq_threads;

	taskqid_t tq_next_id;
	struct taskq_list tq_prio;      /* ready, TQ_FRONT */
	struct taskq_list tq_pend;      /* ready */
	struct taskq_list tq_delay;     /* by due time */
	taskq_ent_t *tq_ids_head;       /* QUEUED + DELAYED by id */
	taskq_ent_t *tq_ids_tail;

	taskq_ent_t *tq_free;
	struct taskq_chunk *tq_chunks;
	unsigned int tq_nchunks;
	uint64_t tq_nalloc;             /* entries carved */
	uint64_t tq_ninuse;             /* queue-owned entries not FREE */
	uint64_t tq_nbeyond;            /* of them, TQENT_F_BEYOND */

	uint64_t tq_dispatched;
	uint64_t tq_executed;
	uint64_t tq_cancelled;

	taskq_t *tq_reg_next;           /* registry, under taskq_reg_lock */
	taskq_t *tq_reg_prev;
};

static pthread_mutex_t taskq_reg_lock KMEM_FORK_LOCK =
    PTHREAD_MUTEX_INITIALIZER;
static taskq_t *taskq_reg_head;
static taskq_t *taskq_reg_tail;

/* In a forked child: a lazy queue was left without a thread. */
static bool taskq_fork_lazy_left;

/* In a forked child: a lazy queue still waits for its first thread. */
_Atomic bool taskq_fork_deferred;

/*
 * The calling thread's worker record, NULL outside workers.  initial-exec:
 * no lazy TLS allocation (which could call malloc) on first use.
 */
static __thread struct taskq_thread *taskq_self
    __attribute__((tls_model("initial-exec")));

/* Set while this thread is in pthread_create() for a queue. */
static __thread bool taskq_spawning
    __attribute__((tls_model("initial-exec")));

bool
taskq_in_spawn(void)
{
	return (taskq_spawning);
}

/* ------------------------------------------------------------ helpers */

KMEM_EXPORT int64_t
taskq_now(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec);
}

static struct timespec
taskq_timespec(int64_t ns)
{
	struct timespec ts;

	if (ns < 0)
		ns = 0;
	ts.tv_sec = (time_t)(ns / NS_PER_SEC);
	ts.tv_nsec = (long)(ns % NS_PER_SEC);
	return (ts);
}

/* The caller's worker record when it is one of tq's workers. */
static inline struct taskq_thread *
taskq_self_in(const taskq_t *tq)
{
	struct taskq_thread *self = taskq_self;

	return (self != NULL && self->tqt_tq == tq ? self : NULL);
}

static inline void
tqent_set_state(taskq_ent_t *ent, unsigned int state)
{
	__atomic_store_n(&ent->tqent_state, state, __ATOMIC_RELEASE);
}

/* Queue lists (tqent_next/tqent_prev). */
static void
tql_insert_after(struct taskq_list *l, taskq_ent_t *after, taskq_ent_t *ent)
{
	taskq_ent_t *next = after != NULL ? after->tqent_next : l->head;

	ent->tqent_prev = after;
	ent->tqent_next = next;
	if (after != NULL)
		after->tqent_next = ent;
	else
		l->head = ent;
	if (next != NULL)
		next->tqent_prev = ent;
	else
		l->tail = ent;
	l->count++;
}

static void
tql_remove(struct taskq_list *l, taskq_ent_t *ent)
{
	if (ent->tqent_prev != NULL)
		ent->tqent_prev->tqent_next = ent->tqent_next;
	else
		l->head = ent->tqent_next;
	if (ent->tqent_next != NULL)
		ent->tqent_next->tqent_prev = ent->tqent_prev;
	else
		l->tail = ent->tqent_prev;
	ent->tqent_next = ent->tqent_prev = NULL;
	l->count--;
}

/* The id list (tqent_id_next/tqent_id_prev): append and remove. */
static void
taskq_ids_append(taskq_t *tq, taskq_ent_t *ent)
{
	ent->tqent_id_next = NULL;
	ent->tqent_id_prev = tq->tq_ids_tail;
	if (tq->tq_ids_tail != NULL)
		tq->tq_ids_tail->tqent_id_next = ent;
	else
		tq->tq_ids_head = ent;
	tq->tq_ids_tail = ent;
}

static void
taskq_ids_remove(taskq_t *tq, taskq_ent_t *ent)
{
	if (ent->tqent_id_prev != NULL)
		ent->tqent_id_prev->tqent_id_next = ent->tqent_id_next;
	else
		tq->tq_ids_head = ent->tqent_id_next;
	if (ent->tqent_id_next != NULL)
		ent->tqent_id_next->tqent_id_prev = ent->tqent_id_prev;
	else
		tq->tq_ids_tail = ent->tqent_id_prev;
	ent->tqent_id_next = ent->tqent_id_prev = NULL;
}

/* The QUEUED or DELAYED entry with this id, or NULL. */
static taskq_ent_t *
taskq_find(const taskq_t *tq, taskqid_t id)
{
	for (taskq_ent_t *e = tq->tq_ids_head; e != NULL && e->tqent_id <= id;
	    e = e->tqent_id_next) {
		if (e->tqent_id == id)
			return (e);
	}
	return (NULL);
}

/* Is a worker other than 'except' running task id? */
static bool
taskq_running(const taskq_t *tq, taskqid_t id,
    const struct taskq_thread *except)
{
	for (const struct taskq_thread *t = tq->tq_threads; t != NULL;
	    t = t->tqt_next) {
		if (t != except && t->tqt_id == id)
			return (true);
	}
	return (false);
}

/* The lowest id queued, delayed or running (but by 'except'). */
static taskqid_t
taskq_lowest_id(const taskq_t *tq, const struct taskq_thread *except)
{
	taskqid_t lowest = tq->tq_ids_head != NULL ?
	    tq->tq_ids_head->tqent_id : UINTPTR_MAX;

	for (const struct taskq_thread *t = tq->tq_threads; t != NULL;
	    t = t->tqt_next) {
		if (t != except && t->tqt_id != 0 && t->tqt_id < lowest)
			lowest = t->tqt_id;
	}
	return (lowest);
}

/* Sleep on cv as a caller of the queue (not a worker waiting for work). */
static void
taskq_block(taskq_t *tq, pthread_cond_t *cv)
{
	int cancel = kmem_cancel_off();  /* a cache's growth, from malloc */

	tq->tq_nblocked++;
	(void) pthread_cond_wait(cv, &tq->tq_lock);
	tq->tq_nblocked--;
	kmem_cancel_restore(cancel);
	if (tq->tq_destroying)
		(void) pthread_cond_broadcast(&tq->tq_exit_cv);
}

static void
taskq_wait_cv(taskq_t *tq)
{
	tq->tq_nwaiters++;
	taskq_block(tq, &tq->tq_wait_cv);
	tq->tq_nwaiters--;
}

static void
taskq_wake_waiters(taskq_t *tq)
{
	if (tq->tq_nwaiters > 0)
		(void) pthread_cond_broadcast(&tq->tq_wait_cv);
}

/* ------------------------------------------------------------ entries */

/* Map one more chunk of entries onto the free list. */
static bool
taskq_grow(taskq_t *tq)
{
	unsigned int shift = KMEM_MIN(tq->tq_nchunks, 4u);
	size_t len = tq->tq_page * KMEM_MIN((size_t)1 << shift,
	    (size_t)TASKQ_CHUNK_PAGES_MAX);
	size_t off = KMEM_P2ROUNDUP(sizeof (struct taskq_chunk),
	    _Alignof(taskq_ent_t));
	struct taskq_chunk *c = meta_pages_alloc(len);
	taskq_ent_t *ents;
	size_t n;

	if (c == NULL)
		return (false);
	c->next = tq->tq_chunks;
	c->len = len;
	tq->tq_chunks = c;
	tq->tq_nchunks++;
	ents = (taskq_ent_t *)((char *)c + off);
	n = (len - off) / sizeof (taskq_ent_t);
	for (size_t i = n; i-- > 0; ) {
		ents[i].tqent_flags = TQENT_F_QUEUE;
		ents[i].tqent_state = TQENT_FREE;
		ents[i].tqent_next = tq->tq_free;
		tq->tq_free = &ents[i];
	}
	tq->tq_nalloc += n;
	return (true);
}

/*
 * A free queue-owned entry, waiting for one (TQ_SLEEP) while maxalloc are
 * in use; TQ_NOSLEEP fails then, from any thread.  A worker of this queue
 * does not wait but goes beyond maxalloc: the entries it would wait for
 * may need its thread to run and be freed.  Such an entry does not count
 * against maxalloc: tasks that dispatch their next run before they finish
 * would otherwise keep maxalloc entries in use for good, and a TQ_SLEEP
 * dispatcher waiting for one to be freed would wait for ever.  For the
 * same reason a worker leaves an entry within maxalloc to such a waiter.
 * When none can be mapped, a worker takes the entry of the task it runs
 * (see ENTRIES).  NULL with errno on failure.
 */
static taskq_ent_t *
taskq_ent_get(taskq_t *tq, unsigned int flags)
{
	struct taskq_thread *self = taskq_self_in(tq);
	bool beyond = false;
	taskq_ent_t *ent;

	for (;;) {
		if (tq->tq_destroying) {
			errno = ESHUTDOWN;
			return (NULL);
		}
		if (tq->tq_maxalloc == 0)
			break;
		if (tq->tq_ninuse - tq->tq_nbeyond <
		    (uint64_t)tq->tq_maxalloc) {
			beyond = self != NULL && tq->tq_nentwait > 0;
			break;
		}
		if (flags & TQ_NOSLEEP) {
			errno = EAGAIN;
			return (NULL);
		}
		if (self != NULL) {
			beyond = true;
			break;
		}
		tq->tq_nentwait++;
		taskq_block(tq, &tq->tq_ent_cv);
		tq->tq_nentwait--;
	}
	if (tq->tq_free == NULL && !taskq_grow(tq)) {
		if (self == NULL || self->tqt_ent == NULL) {
			errno = ENOMEM;
			return (NULL);
		}
		/* The running task's own: counted in tq_ninuse already. */
		ent = self->tqt_ent;
		self->tqt_ent = NULL;
		ent->tqent_next = NULL;
		return (ent);
	}
	ent = tq->tq_free;
	tq->tq_free = ent->tqent_next;
	ent->tqent_next = NULL;
	tq->tq_ninuse++;
	if (beyond) {
		ent->tqent_flags |= TQENT_F_BEYOND;
		tq->tq_nbeyond++;
	}
	return (ent);
}

static void
taskq_ent_put(taskq_t *tq, taskq_ent_t *ent)
{
	if (ent->tqent_flags & TQENT_F_BEYOND)
		tq->tq_nbeyond--;
	ent->tqent_flags = TQENT_F_QUEUE;
	ent->tqent_func = NULL;
	ent->tqent_arg = NULL;
	tqent_set_state(ent, TQENT_FREE);
	ent->tqent_next = tq->tq_free;
	tq->tq_free = ent;
	tq->tq_ninuse--;
	if (tq->tq_nentwait > 0)
		(void) pthread_cond_signal(&tq->tq_ent_cv);
}

/* An entry taken off the lists without running: back to its owner. */
static void
taskq_ent_release(taskq_t *tq, taskq_ent_t *ent)
{
	if (ent->tqent_flags & TQENT_F_QUEUE)
		taskq_ent_put(tq, ent);
	else
		tqent_set_state(ent, TQENT_IDLE);
}

/* ------------------------------------------------------------ queueing */

static void
taskq_make_ready(taskq_t *tq, taskq_ent_t *ent)
{
	struct taskq_list *l = (ent->tqent_flags & TQENT_F_FRONT) ?
	    &tq->tq_prio : &tq->tq_pend;

	tql_insert_after(l, l->tail, ent);
	tqent_set_state(ent, TQENT_QUEUED);
	if (tq->tq_nidle > 0)
		(void) pthread_cond_signal(&tq->tq_work_cv);
}

/* Move every delayed entry due by 'now' to the ready lists. */
static void
taskq_promote(taskq_t *tq, int64_t now)
{
	taskq_ent_t *ent;

	while ((ent = tq->tq_delay.head) != NULL && ent->tqent_expire <= now) {
		tql_remove(&tq->tq_delay, ent);
		taskq_make_ready(tq, ent);
	}
}

static void
taskq_delay_insert(taskq_t *tq, taskq_ent_t *ent)
{
	taskq_ent_t *after = tq->tq_delay.tail;

	/* After every entry due at the same time or earlier. */
	while (after != NULL && after->tqent_expire > ent->tqent_expire)
		after = after->tqent_prev;
	tql_insert_after(&tq->tq_delay, after, ent);
	tqent_set_state(ent, TQENT_DELAYED);
	/* A new earliest due time: idle workers must wait less. */
	if (after == NULL && tq->tq_nidle > 0)
		(void) pthread_cond_broadcast(&tq->tq_work_cv);
}

/* ------------------------------------------------------------ threads */

static void *taskq_thread(void *arg);

/*
 * Should a dynamic queue get one more thread?  If so, count it (the
 * caller then calls taskq_spawn() after unlocking).
 */
static bool
taskq_spawn_reserve(taskq_t *tq)
{
	if (!(tq->tq_flags & TASKQ_DYNAMIC) || tq->tq_destroying ||
	    tq->tq_nthreads >= tq->tq_maxthreads)
		return (false);
	if (tq->tq_prio.count + tq->tq_pend.count <=
	    (uint64_t)(tq->tq_nidle + tq->tq_nstarting))
		return (false);
	tq->tq_nthreads++;
	tq->tq_nstarting++;
	return (true);
}

/*
 * A signal sent to the process goes to any thread that does not block it.
 * The application's handlers were written for its own threads: bash's
 * SIGCHLD handler, run on one of ours while bash's main thread edited the
 * same job table, crashed it.  So every thread libkmem creates blocks
 * every signal (glibc keeps its own cancellation signals open), as the
 * creating thread's mask, inherited, might not.
 */
int
taskq_thread_create(pthread_t *tid, const pthread_attr_t *attr,
    void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int rc;

	(void) sigfillset(&all);
	(void) pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(tid, attr, fn, arg);
	(void) pthread_sigmask(SIG_SETMASK, &old, NULL);
	return (rc);
}

/* Create a thread counted by taskq_spawn_reserve(); tq_lock not held. */
static int
taskq_spawn(taskq_t *tq)
{
	pthread_attr_t attr;
	pthread_t tid;
	int rc;

	if (tq->tq_stacksize != 0) {
		(void) pthread_attr_init(&attr);
		(void) pthread_attr_setstacksize(&attr, tq->tq_stacksize);
	}
	taskq_spawning = true;
	rc = taskq_thread_create(&tid, tq->tq_stacksize != 0 ? &attr : NULL,
	    taskq_thread, tq);
	taskq_spawning = false;
	if (tq->tq_stacksize != 0)
		(void) pthread_attr_destroy(&attr);

	if (rc != 0) {
		(void) pthread_mutex_lock(&tq->tq_lock);
		tq->tq_nthreads--;
		tq->tq_nstarting--;
		if (tq->tq_destroying)
			(void) pthread_cond_broadcast(&tq->tq_exit_cv);
		(void) pthread_mutex_unlock(&tq->tq_lock);
	}
	return (rc);
}

/*
 * Run the ready entry at the head of list l.  Called and returns with
 * tq_lock held; drops it while the task runs.
 */
static void
taskq_run(taskq_t *tq, struct taskq_thread *self, struct taskq_list *l)
{
	taskq_ent_t *ent = l->head;
	task_func_t *func = ent->tqent_func;
	void *arg = ent->tqent_arg;
	bool spawn;

	tql_remove(l, ent);
	taskq_ids_remove(tq, ent);
	self->tqt_id = ent->tqent_id;
	if (ent->tqent_flags & TQENT_F_QUEUE) {
		self->tqt_ent = ent;
		tqent_set_state(ent, TQENT_RUNNING);
	} else {
		self->tqt_ent = NULL;
		tqent_set_state(ent, TQENT_IDLE);       /* the caller's again */
	}
	tq->tq_nactive++;
	spawn = taskq_spawn_reserve(tq);
	(void) pthread_mutex_unlock(&tq->tq_lock);

	if (spawn)
		(void) taskq_spawn(tq);
	func(arg);
	if (KMEM_UNLIKELY(taskq_self != self)) {
		/*
		 * The task forked and returned in the child, where this
		 * thread is no worker (taskq_fork_child) and the task one
		 * of those lost.  Its return ends the child, as the return
		 * of its last thread would: left to loop, the thread waited
		 * for work for ever, every signal blocked.
		 */
		exit(0);
	}

	(void) pthread_mutex_lock(&tq->tq_lock);
	tq->tq_nactive--;
	tq->tq_executed++;
	if (self->tqt_ent != NULL)
		taskq_ent_put(tq, self->tqt_ent);
	self->tqt_ent = NULL;
	self->tqt_id = 0;
	taskq_wake_waiters(tq);
}

/*
 * Join the last exited thread, if there is one, so that an idle dynamic
 * queue does not keep one finished thread unjoined.  Called and returns
 * with tq_lock held; drops it for the join.
 */
static void
taskq_join_zombie(taskq_t *tq)
{
	pthread_t z;

	if (!tq->tq_have_zombie)
		return;
	z = tq->tq_zombie;
	tq->tq_have_zombie = false;
	(void) pthread_mutex_unlock(&tq->tq_lock);
	(void) pthread_join(z, NULL);
	(void) pthread_mutex_lock(&tq->tq_lock);
}

static void
taskq_thread_link(taskq_t *tq, struct taskq_thread *t)
{
	t->tqt_prev = NULL;
	t->tqt_next = tq->tq_threads;
	if (tq->tq_threads != NULL)
		tq->tq_threads->tqt_prev = t;
	tq->tq_threads = t;
}

static void
taskq_thread_unlink(taskq_t *tq, struct taskq_thread *t)
{
	if (t->tqt_prev != NULL)
		t->tqt_prev->tqt_next = t->tqt_next;
	else
		tq->tq_threads = t->tqt_next;
	if (t->tqt_next != NULL)
		t->tqt_next->tqt_prev = t->tqt_prev;
}

static void *
taskq_thread(void *arg)
{
	taskq_t *tq = arg;
	struct taskq_thread self;
	char name[16];
	pthread_t prev;
	bool have_prev;
	int64_t idle_since;

	memset(&self, 0, sizeof (self));
	self.tqt_tq = tq;
	self.tqt_tid = pthread_self();
	/* The name is immutable after create: read without the lock. */
	memcpy(name, tq->tq_name, sizeof (name) - 1);
	name[sizeof (name) - 1] = '\0';
	(void) pthread_setname_np(pthread_self(), name);
	taskq_self = &self;

	(void) pthread_mutex_lock(&tq->tq_lock);
	tq->tq_nstarting--;
	self.tqt_first = !tq->tq_have_first;
	tq->tq_have_first = true;
	taskq_thread_link(tq, &self);
	idle_since = taskq_now();
	for (;;) {
		int64_t deadline = INT64_MAX;

		if (tq->tq_delay.head != NULL)
			taskq_promote(tq, taskq_now());
		if (tq->tq_prio.head != NULL || tq->tq_pend.head != NULL) {
			taskq_run(tq, &self, tq->tq_prio.head != NULL ?
			    &tq->tq_prio : &tq->tq_pend);
			idle_since = taskq_now();
			continue;
		}
		if (tq->tq_destroying)
			break;          /* drained */
		if (tq->tq_delay.head != NULL)
			deadline = tq->tq_delay.head->tqent_expire;
		/*
		 * Idle too long, a dynamic thread exits - but not while it
		 * is the one to notice due tasks: some are delayed, and no
		 * other thread is idle (the first one runs a task, say).
		 */
		if ((tq->tq_flags & TASKQ_DYNAMIC) && !self.tqt_first &&
		    !tq->tq_at_exit &&
		    (tq->tq_delay.head == NULL || tq->tq_nidle > 0)) {
			int64_t idle_end = idle_since + tq->tq_idle_timeout;

			if (taskq_now() >= idle_end)
				break;  /* idle too long */
			deadline = KMEM_MIN(deadline, idle_end);
		}
		if (tq->tq_have_zombie) {
			taskq_join_zombie(tq);
			continue;       /* the lock was dropped: look again */
		}
		tq->tq_nidle++;
		if (deadline == INT64_MAX) {
			(void) pthread_cond_wait(&tq->tq_work_cv, &tq->tq_lock);
		} else {
			struct timespec ts = taskq_timespec(deadline);

			(void) pthread_cond_timedwait(&tq->tq_work_cv,
			    &tq->tq_lock, &ts);
		}
		tq->tq_nidle--;
	}

	taskq_thread_unlink(tq, &self);
	tq->tq_nthreads--;
	have_prev = tq->tq_have_zombie;
	prev = tq->tq_zombie;
	tq->tq_zombie = pthread_self();
	tq->tq_have_zombie = true;
	if (tq->tq_destroying)
		(void) pthread_cond_broadcast(&tq->tq_exit_cv);
	else if (tq->tq_nidle > 0)
		(void) pthread_cond_signal(&tq->tq_work_cv);    /* join me */
	(void) pthread_mutex_unlock(&tq->tq_lock);
	/*
	 * No access to tq from here on.  It stays mapped until this thread
	 * has been joined, by the next thread to exit or by taskq_destroy().
	 */

	taskq_self = NULL;
	if (have_prev)
		(void) pthread_join(prev, NULL);
	return (NULL);
}

/* ------------------------------------------------------------ registry */

static void
taskq_register(taskq_t *tq)
{
	(void) pthread_mutex_lock(&taskq_reg_lock);
	tq->tq_reg_next = NULL;
	tq->tq_reg_prev = taskq_reg_tail;
	if (taskq_reg_tail != NULL)
		taskq_reg_tail->tq_reg_next = tq;
	else
		taskq_reg_head = tq;
	taskq_reg_tail = tq;
	tq->tq_registered = true;
	(void) pthread_mutex_unlock(&taskq_reg_lock);
}

static void
taskq_unregister(taskq_t *tq)
{
	(void) pthread_mutex_lock(&taskq_reg_lock);
	if (tq->tq_registered) {
		if (tq->tq_reg_prev != NULL)
			tq->tq_reg_prev->tq_reg_next = tq->tq_reg_next;
		else
			taskq_reg_head = tq->tq_reg_next;
		if (tq->tq_reg_next != NULL)
			tq->tq_reg_next->tq_reg_prev = tq->tq_reg_prev;
		else
			taskq_reg_tail = tq->tq_reg_prev;
		tq->tq_registered = false;
		/*
		 * Threads a forked child reserved for it that
		 * taskq_fork_child_start() will now never find: not ours.
		 */
		if (tq->tq_fork_nspawn > 0) {
			(void) pthread_mutex_lock(&tq->tq_lock);
			tq->tq_nthreads -= tq->tq_fork_nspawn;
			tq->tq_nstarting -= tq->tq_fork_nspawn;
			tq->tq_fork_nspawn = 0;
			(void) pthread_mutex_unlock(&tq->tq_lock);
		}
	}
	(void) pthread_mutex_unlock(&taskq_reg_lock);
}

void
taskq_walk(void (*fn)(taskq_t *, void *), void *arg)
{
	if (fn == NULL)
		return;
	(void) pthread_mutex_lock(&taskq_reg_lock);
	for (taskq_t *tq = taskq_reg_head; tq != NULL; tq = tq->tq_reg_next)
		fn(tq, arg);
	(void) pthread_mutex_unlock(&taskq_reg_lock);
}

/*
 * At exit, join the last exited thread of every queue still alive (a
 * queue that lives as long as the process, as libkmem's own does, is
 * never destroyed), so that no finished thread is left unjoined; and keep
 * idle threads from exiting after that, which would leave a new one (and
 * make ThreadSanitizer report a thread leak).  An exiting thread records
 * itself as the zombie under the lock, so it is either joined here or
 * sees tq_at_exit and stays.
 *
 * The join is made with no lock held, one zombie at a time: the thread
 * may still be running its last steps (thread-specific-data destructors,
 * which may allocate), and a fork() by another thread takes every
 * cache's locks before the registry lock.  Holding the registry lock
 * across the join deadlocked exit, the forker and that thread.
 */
static void __attribute__((destructor))
taskq_at_exit(void)
{
	pid_t self = getpid();  /* a forked child has none of the parent's */

	for (;;) {
		pthread_t zombie;
		bool found = false;

		(void) pthread_mutex_lock(&taskq_reg_lock);
		for (taskq_t *tq = taskq_reg_head; tq != NULL && !found;
		    tq = tq->tq_reg_next) {
			(void) pthread_mutex_lock(&tq->tq_lock);
			tq->tq_at_exit = true;
			if (tq->tq_have_zombie && tq->tq_pid == self) {
				zombie = tq->tq_zombie;
				tq->tq_have_zombie = false;
				found = true;
			}
			(void) pthread_mutex_unlock(&tq->tq_lock);
		}
		(void) pthread_mutex_unlock(&taskq_reg_lock);
		if (!found)
			return;
		(void) pthread_join(zombie, NULL);
	}
}

/*
 * fork().  The parent holds the registry lock and every queue's lock
 * across it, so that the child's copy of every queue is consistent.  The
 * child has none of the queue's threads: it forgets them (and the tasks
 * they were running, which never finish there), makes new condition
 * variables, and starts threads afresh - a fixed queue its full count, a
 * dynamic one its first - so that queued and delayed tasks run.  The
 * threads are created by taskq_fork_child_start(), which fork.c calls
 * after every other atfork lock is released.
 *
 * A lazy dynamic queue (taskq_set_fork_lazy: libkmem's own) with no ready
 * task gets no thread there.  Most children exec or exit at once, and a
 * thread created for nothing costs each fork about a millisecond (and an
 * exec must then stop it).  Its first thread comes with the first task
 * made ready (the dynamic growth of taskq_dispatch), or from
 * taskq_fork_resume(), which the allocator's slow paths call: then its
 * delayed tasks run too, late if they fell due meanwhile.
 *
 * A task may fork: the child's only thread is then a copy of a worker,
 * which is none there (taskq_self is cleared), and when the task returns
 * in the child the child exits (taskq_run).
 */
void
taskq_fork_prepare(void)
{
	(void) pthread_mutex_lock(&taskq_reg_lock);
	for (taskq_t *tq = taskq_reg_head; tq != NULL; tq = tq->tq_reg_next)
		(void) pthread_mutex_lock(&tq->tq_lock);
}

void
taskq_fork_parent(void)
{
	for (taskq_t *tq = taskq_reg_head; tq != NULL; tq = tq->tq_reg_next)
		(void) pthread_mutex_unlock(&tq->tq_lock);
	(void) pthread_mutex_unlock(&taskq_reg_lock);
}

void
taskq_fork_child(void)
{
	pthread_condattr_t mono;

	/*
	 * A task that called fork(): in the child its thread is no queue's
	 * thread (each queue gets new ones below), and its task is one of
	 * those the child does not have.  Left set, taskq_self made the
	 * child's only thread a worker: taskq_wait() did not wait for one
	 * running task, taskq_destroy() refused (EDEADLK), and
	 * taskq_of_curthread() named the queue.
	 */
	taskq_self = NULL;
	(void) pthread_condattr_init(&mono);
	(void) pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
	taskq_fork_lazy_left = false;
	for (taskq_t *tq = taskq_reg_head; tq != NULL; tq = tq->tq_reg_next) {
		tq->tq_pid = getpid();
		tq->tq_nthreads = tq->tq_nstarting = tq->tq_nidle = 0;
		tq->tq_nactive = tq->tq_nwaiters = tq->tq_nentwait = 0;
		/*
		 * The tasks the parent's threads were running never finish
		 * here: free their queue-owned entries, or maxalloc would
		 * count them forever.  The records are on those threads'
		 * stacks, which the child has a copy of.
		 */
		for (struct taskq_thread *t = tq->tq_threads; t != NULL;
		    t = t->tqt_next) {
			if (t->tqt_ent != NULL)
				taskq_ent_put(tq, t->tqt_ent);
		}
		tq->tq_threads = NULL;
		tq->tq_nblocked = 0;
		tq->tq_have_first = tq->tq_have_zombie = false;
		tq->tq_at_exit = false;
		tq->tq_fork_resumed = false;
		(void) pthread_cond_init(&tq->tq_work_cv, &mono);
		(void) pthread_cond_init(&tq->tq_wait_cv, NULL);
		(void) pthread_cond_init(&tq->tq_ent_cv, NULL);
		(void) pthread_cond_init(&tq->tq_exit_cv, NULL);
		if (!tq->tq_fork_lazy || tq->tq_prio.head != NULL ||
		    tq->tq_pend.head != NULL)
			tq->tq_nthreads = tq->tq_nstarting =
			    (tq->tq_flags & TASKQ_DYNAMIC) ? 1 :
			    tq->tq_maxthreads;
		tq->tq_fork_nspawn = tq->tq_nthreads;
		if (tq->tq_nthreads == 0)
			taskq_fork_lazy_left = true;
		(void) pthread_mutex_unlock(&tq->tq_lock);
	}
	(void) pthread_condattr_destroy(&mono);
	(void) pthread_mutex_unlock(&taskq_reg_lock);
}

/*
 * Create the threads that claim(tq) reserves, queue by queue: claim runs
 * under the registry lock and returns how many threads to create for tq
 * (0: none); they are created with no lock held, and the registry is
 * scanned again from its head after each queue, since those threads may
 * already run tasks that create or destroy queues.  The reserved threads
 * keep their queue alive until they are created (destroy waits for
 * them).
 */
static void
taskq_fork_spawn_each(int (*claim)(taskq_t *))
{
	for (;;) {
		taskq_t *spawn = NULL;
		int n = 0;

		(void) pthread_mutex_lock(&taskq_reg_lock);
		for (taskq_t *tq = taskq_reg_head; tq != NULL && n == 0;
		    tq = tq->tq_reg_next) {
			if ((n = claim(tq)) > 0)
				spawn = tq;
		}
		(void) pthread_mutex_unlock(&taskq_reg_lock);
		if (spawn == NULL)
			return;
		while (n-- > 0)
			(void) taskq_spawn(spawn);
	}
}

/* The threads taskq_fork_child() reserved.  Registry lock held. */
static int
taskq_fork_claim_reserved(taskq_t *tq)
{
	int n = tq->tq_fork_nspawn;

	tq->tq_fork_nspawn = 0;
	return (n);
}

/*
 * The child's threads, counted by taskq_fork_child(): created last, once
 * every other atfork lock is released (fork.c), because pthread_create()
 * may allocate, and the allocator's locks must be free by then.  A lazy
 * queue left without a thread there (no task was ready) waits; the atfork
 * handlers dispatch only delayed tasks.
 */
void
taskq_fork_child_start(void)
{
	if (taskq_fork_lazy_left)
		atomic_store(&taskq_fork_deferred, true);
	/* A queue destroyed first gives its threads back (taskq_unregister). */
	taskq_fork_spawn_each(taskq_fork_claim_reserved);
}

/* A lazy queue's first thread, tried once.  Registry lock held. */
static int
taskq_fork_claim_lazy(taskq_t *tq)
{
	int n = 0;

	(void) pthread_mutex_lock(&tq->tq_lock);
	if (tq->tq_fork_lazy && !tq->tq_fork_resumed &&
	    tq->tq_nthreads == 0 && !tq->tq_destroying) {
		tq->tq_fork_resumed = true;
		tq->tq_nthreads = tq->tq_nstarting = n = 1;
	}
	(void) pthread_mutex_unlock(&tq->tq_lock);
	return (n);
}

/*
 * Give every lazy queue of a forked child that has no thread its first.
 * The thread is reserved under the queue's lock (which keeps the queue
 * alive: destroy waits for it) and created with no lock held, the
 * registry lock included: pthread_create() allocates (the new thread's
 * DTV), and an allocation may need a cache's locks, which fork() takes
 * before the registry lock (fork.c).  Holding the registry lock across it
 * deadlocked a fork by another thread of the child: the forker, holding
 * every cache lock, waited for the registry lock, and this thread, holding
 * it, waited inside pthread_create() for a cache lock.  So
 * taskq_fork_spawn_each(); each queue is tried once (tq_fork_resumed),
 * even if its spawn fails.
 */
void
taskq_fork_resume_slow(void)
{
	if (atomic_exchange(&taskq_fork_deferred, false))
		taskq_fork_spawn_each(taskq_fork_claim_lazy);
}

void
taskq_set_fork_lazy(taskq_t *tq)
{
	(void) pthread_mutex_lock(&tq->tq_lock);
	tq->tq_fork_lazy = (tq->tq_flags & TASKQ_DYNAMIC) != 0;
	(void) pthread_mutex_unlock(&tq->tq_lock);
}

void
taskq_set_idle_timeout(taskq_t *tq, int64_t ns)
{
	if (tq == NULL)
		return;
	(void) pthread_mutex_lock(&tq->tq_lock);
	/* Capped so that idle_since + timeout cannot overflow. */
	tq->tq_idle_timeout = ns <= 0 ? TASKQ_IDLE_TIMEOUT_NS :
	    KMEM_MIN(ns, INT64_MAX / 4);
	(void) pthread_cond_broadcast(&tq->tq_work_cv);
	(void) pthread_mutex_unlock(&tq->tq_lock);
}

/* ------------------------------------------------------------ create */

/*
 * Stop accepting work: make the due delayed tasks ready and discard the
 * others, in the same critical section that sets tq_destroying, so that a
 * worker that sees the flag finds no delayed task that could become due
 * after it has exited.  Then wake everyone.  tq_lock held.
 */
static void
taskq_stop(taskq_t *tq)
{
	taskq_ent_t *ent;

	tq->tq_destroying = true;
	taskq_promote(tq, taskq_now());
	while ((ent = tq->tq_delay.head) != NULL) {     /* not yet due */
		tql_remove(&tq->tq_delay, ent);
		taskq_ids_remove(tq, ent);
		taskq_ent_release(tq, ent);
		tq->tq_cancelled++;
	}
	(void) pthread_cond_broadcast(&tq->tq_work_cv);
	(void) pthread_cond_broadcast(&tq->tq_ent_cv);
	(void) pthread_cond_broadcast(&tq->tq_wait_cv);
}

/*
 * Stop tq if not yet stopped, wait for its threads to drain the ready
 * lists and exit, and free it.  Called by taskq_destroy() and by a failed
 * taskq_create(); never by one of tq's workers.
 */
static void
taskq_teardown(taskq_t *tq)
{
	pthread_t zombie;
	bool have_zombie;
	/*
	 * The waits below are cancellation points: a caller cancelled in
	 * one would die holding tq_lock, and the workers would wait for it
	 * for ever.  Its cancel takes effect after taskq_destroy() returns.
	 */
	int cancel = kmem_cancel_off();

	taskq_unregister(tq);
	(void) pthread_mutex_lock(&tq->tq_lock);
	if (!tq->tq_destroying)
		taskq_stop(tq);
	while (tq->tq_nthreads > 0 || tq->tq_nblocked > 0)
		(void) pthread_cond_wait(&tq->tq_exit_cv, &tq->tq_lock);
	have_zombie = tq->tq_have_zombie;
	zombie = tq->tq_zombie;
	(void) pthread_mutex_unlock(&tq->tq_lock);
	if (have_zombie)
		(void) pthread_join(zombie, NULL);

	/* No thread is left; the ready lists were drained by the workers. */
	KMEM_ASSERT(tq->tq_ids_head == NULL && tq->tq_ninuse == 0);
	(void) pthread_cond_destroy(&tq->tq_exit_cv);
	(void) pthread_cond_destroy(&tq->tq_ent_cv);
	(void) pthread_cond_destroy(&tq->tq_wait_cv);
	(void) pthread_cond_destroy(&tq->tq_work_cv);
	(void) pthread_mutex_destroy(&tq->tq_lock);
	while (tq->tq_chunks != NULL) {
		struct taskq_chunk *c = tq->tq_chunks;

		tq->tq_chunks = c->next;
		meta_pages_free(c, c->len);
	}
	meta_pages_free(tq, tq->tq_map_len);
	kmem_cancel_restore(cancel);
}

/*
 * Bad arguments: one line naming the function, the queue (tq, if not
 * NULL) and what was wrong; errno EINVAL.
 */
static void
taskq_bad(const char *fn, const taskq_t *tq, const char *what)
{
	if (tq != NULL)
		kmem_report("%s(%s): %s", fn, tq->tq_name, what);
	else
		kmem_report("%s: %s", fn, what);
	errno = EINVAL;
}

/* The arguments of the dispatch functions: true when they are good. */
static bool
taskq_dispatch_ok(const char *fn, const taskq_t *tq, task_func_t *func,
    unsigned int flags)
{
	if (tq == NULL)
		taskq_bad(fn, NULL, "NULL queue");
	else if (func == NULL)
		taskq_bad(fn, tq, "NULL func");
	else if ((flags & ~(unsigned int)TQ_VALID_FLAGS) != 0)
		taskq_bad(fn, tq, "unknown flags");
	else
		return (true);
	return (false);
}

KMEM_EXPORT taskq_t *
taskq_create(const char *name, int nthreads, int pri, int minalloc,
    int maxalloc, unsigned int flags)
{
	return (taskq_create_stack(name, nthreads, pri, minalloc, maxalloc,
	    flags, 0));
}

taskq_t *
taskq_create_stack(const char *name, int nthreads, int pri, int minalloc,
    int maxalloc, unsigned int flags, size_t stacksize)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = KMEM_P2ROUNDUP(sizeof (taskq_t), page);
	pthread_condattr_t mono;
	taskq_t *tq;
	int nstart, rc;
	const char *bad = NULL;

	if (name == NULL || name[0] == '\0')
		bad = "a name is required";
	else if (strnlen(name, TASKQ_NAMELEN + 1) > TASKQ_NAMELEN)
		bad = "name longer than TASKQ_NAMELEN (31)";
	else if ((flags & ~(unsigned int)TASKQ_VALID_FLAGS) != 0)
		bad = "unknown flags";
	else if (pri < maxclsyspri || pri > minclsyspri)
		bad = "pri must be from maxclsyspri (-20) to minclsyspri (19)";
	else if (minalloc < 0 || maxalloc < 0)
		bad = "minalloc and maxalloc must not be negative";
	else if (maxalloc > 0 && maxalloc < minalloc)
		bad = "maxalloc must be 0 or at least minalloc";
	else if ((flags & TASKQ_THREADS_CPU_PCT) &&
	    (nthreads < 0 || nthreads > 100))
		bad = "nthreads must be a percentage (0 to 100) with "
		    "TASKQ_THREADS_CPU_PCT";
	else if (!(flags & TASKQ_THREADS_CPU_PCT) &&
	    (nthreads < 1 || nthreads > TASKQ_THREADS_MAX))
		bad = "nthreads must be from 1 to TASKQ_THREADS_MAX (1024)";
	if (bad != NULL) {
		kmem_report("taskq_create(%.32s, %d, %d, %d, %d, %#x): %s",
		    name != NULL ? name : "NULL", nthreads, pri, minalloc,
		    maxalloc, flags, bad);
		errno = EINVAL;
		return (NULL);
	}
	if (flags & TASKQ_THREADS_CPU_PCT) {
		long online = sysconf(_SC_NPROCESSORS_ONLN);

		if (online < 1)
			online = 1;
		nthreads = (int)KMEM_MIN((long)TASKQ_THREADS_MAX,
		    KMEM_MAX(1L, online * nthreads / 100));
	}

	/*
	 * Entries are written as they are carved: more than the machine's
	 * memory would be found out by the OOM killer, not by mmap.
	 */
	if ((flags & TASKQ_PREPOPULATE) && (uint64_t)minalloc *
	    sizeof (taskq_ent_t) > (uint64_t)sysconf(_SC_PHYS_PAGES) * page) {
		kmem_report("taskq_create(%s): TASKQ_PREPOPULATE with minalloc "
		    "%d: more entries than the machine's memory holds", name,
		    minalloc);
		errno = ENOMEM;
		return (NULL);
	}
	kmem_init();            /* the fork() handlers keep queues working */
	tq = meta_pages_alloc(len);
	if (tq == NULL) {
		errno = ENOMEM;
		return (NULL);
	}
	tq->tq_map_len = len;
	tq->tq_page = page;
	memcpy(tq->tq_name, name, strlen(name) + 1);
	tq->tq_flags = flags;
	tq->tq_pid = getpid();
	tq->tq_pri = pri;
	tq->tq_minalloc = minalloc;
	tq->tq_maxalloc = maxalloc;
	tq->tq_maxthreads = nthreads;
	tq->tq_idle_timeout = TASKQ_IDLE_TIMEOUT_NS;
	tq->tq_stacksize = stacksize;
	tq->tq_next_id = 1;

	(void) pthread_mutex_init(&tq->tq_lock, NULL);
	(void) pthread_condattr_init(&mono);
	(void) pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
	(void) pthread_cond_init(&tq->tq_work_cv, &mono);
	(void) pthread_condattr_destroy(&mono);
	(void) pthread_cond_init(&tq->tq_wait_cv, NULL);
	(void) pthread_cond_init(&tq->tq_ent_cv, NULL);
	(void) pthread_cond_init(&tq->tq_exit_cv, NULL);

	if (flags & TASKQ_PREPOPULATE) {
		while (tq->tq_nalloc < (uint64_t)minalloc) {
			if (!taskq_grow(tq)) {
				taskq_teardown(tq);
				errno = ENOMEM;
				return (NULL);
			}
		}
	}

	nstart = (flags & TASKQ_DYNAMIC) ? 1 : nthreads;
	for (int i = 0; i < nstart; i++) {
		(void) pthread_mutex_lock(&tq->tq_lock);
		tq->tq_nthreads++;
		tq->tq_nstarting++;
		(void) pthread_mutex_unlock(&tq->tq_lock);
		rc = taskq_spawn(tq);
		if (rc != 0) {
			taskq_teardown(tq);
			errno = rc;
			return (NULL);
		}
	}
	taskq_register(tq);
	return (tq);
}

KMEM_EXPORT void
taskq_destroy(taskq_t *tq)
{
	if (tq == NULL) {
		taskq_bad("taskq_destroy", NULL, "NULL queue");
		return;
	}
	if (taskq_self_in(tq) != NULL) {
		/* It would wait for its own task to finish: forever. */
		kmem_report("taskq_destroy(\"%s\") called from one of its own "
		    "tasks; not destroyed", tq->tq_name);
		errno = EDEADLK;
		return;
	}
	(void) pthread_mutex_lock(&tq->tq_lock);
	if (tq->tq_destroying) {                /* a concurrent destroy */
		(void) pthread_mutex_unlock(&tq->tq_lock);
		errno = EBUSY;
		return;
	}
	taskq_stop(tq);
	(void) pthread_mutex_unlock(&tq->tq_lock);
	taskq_teardown(tq);
}

/* ------------------------------------------------------------ dispatch */

/*
 * Queue func(arg) on ent (caller-owned) or on a queue-owned entry (ent ==
 * NULL), ready now or, when delayed, at expire.  Returns its id, or 0 with
 * errno set.
 */
static taskqid_t
taskq_dispatch_impl(taskq_t *tq, task_func_t *func, void *arg,
    unsigned int flags, bool delayed, int64_t expire, taskq_ent_t *ent)
{
	taskqid_t id;
	bool spawn;

	(void) pthread_mutex_lock(&tq->tq_lock);
	if (ent == NULL) {
		ent = taskq_ent_get(tq, flags);
		if (ent == NULL) {
			(void) pthread_mutex_unlock(&tq->tq_lock);
			return (0);
		}
	} else if (tq->tq_destroying) {
		(void) pthread_mutex_unlock(&tq->tq_lock);
		errno = ESHUTDOWN;
		return (0);
	} else if (__atomic_load_n(&ent->tqent_state, __ATOMIC_ACQUIRE) !=
	    TQENT_IDLE) {
		(void) pthread_mutex_unlock(&tq->tq_lock);
		kmem_report("taskq_dispatch_ent(%s): entry %p is still queued; "
		    "not dispatched again", tq->tq_name, (void *)ent);
		errno = EBUSY;          /* still queued: a caller bug */
		return (0);
	} else {
		ent->tqent_flags = 0;   /* caller-owned */
	}

	id = tq->tq_next_id++;
	ent->tqent_id = id;
	ent->tqent_func = func;
	ent->tqent_arg = arg;
	ent->tqent_expire = expire;
	ent->tqent_flags = (ent->tqent_flags & (TQENT_F_QUEUE |
	    TQENT_F_BEYOND)) | ((flags & TQ_FRONT) ? TQENT_F_FRONT : 0);
	taskq_ids_append(tq, ent);
	tq->tq_dispatched++;
	if (delayed && expire > taskq_now())
		taskq_delay_insert(tq, ent);
	else
		taskq_make_ready(tq, ent);
	spawn = taskq_spawn_reserve(tq);
	(void) pthread_mutex_unlock(&tq->tq_lock);

	if (spawn)
		(void) taskq_spawn(tq);
	return (id);
}

KMEM_EXPORT taskqid_t
taskq_dispatch(taskq_t *tq, task_func_t func, void *arg, unsigned int flags)
{
	if (!taskq_dispatch_ok("taskq_dispatch", tq, func, flags))
		return (0);
	return (taskq_dispatch_impl(tq, func, arg, flags, false, 0, NULL));
}

KMEM_EXPORT taskqid_t
taskq_dispatch_delay(taskq_t *tq, task_func_t func, void *arg,
    unsigned int flags, int64_t expire_ns)
{
	if (!taskq_dispatch_ok("taskq_dispatch_delay", tq, func, flags))
		return (0);
	return (taskq_dispatch_impl(tq, func, arg, flags, true, expire_ns,
	    NULL));
}

KMEM_EXPORT void
taskq_dispatch_ent(taskq_t *tq, task_func_t func, void *arg,
    unsigned int flags, taskq_ent_t *ent)
{
	if (!taskq_dispatch_ok("taskq_dispatch_ent", tq, func, flags))
		return;
	if (ent == NULL) {
		taskq_bad("taskq_dispatch_ent", tq, "NULL entry");
		return;
	}
	(void) taskq_dispatch_impl(tq, func, arg, flags, false, 0, ent);
}

taskqid_t
taskq_dispatch_ent_delay(taskq_t *tq, task_func_t func, void *arg,
    unsigned int flags, taskq_ent_t *ent, int64_t expire)
{
	return (taskq_dispatch_impl(tq, func, arg, flags, true, expire, ent));
}

KMEM_EXPORT void
taskq_init_ent(taskq_ent_t *ent)
{
	if (ent == NULL) {
		taskq_bad("taskq_init_ent", NULL, "NULL entry");
		return;
	}
	memset(ent, 0, sizeof (*ent));
}

KMEM_EXPORT int
taskq_empty_ent(taskq_ent_t *ent)
{
	unsigned int state;

	if (ent == NULL) {
		taskq_bad("taskq_empty_ent", NULL, "NULL entry");
		return (0);
	}
	state = __atomic_load_n(&ent->tqent_state, __ATOMIC_ACQUIRE);
	return (state != TQENT_QUEUED && state != TQENT_DELAYED);
}

/* ------------------------------------------------------------ cancel, wait */

/* Take a queued or delayed entry off tq, its task cancelled.  tq_lock. */
static void
taskq_unqueue_locked(taskq_t *tq, taskq_ent_t *ent)
{
	if (ent->tqent_state == TQENT_DELAYED)
		tql_remove(&tq->tq_delay, ent);
	else
		tql_remove((ent->tqent_flags & TQENT_F_FRONT) ?
		    &tq->tq_prio : &tq->tq_pend, ent);
	taskq_ids_remove(tq, ent);
	taskq_ent_release(tq, ent);
	tq->tq_cancelled++;
	taskq_wake_waiters(tq);
}

KMEM_EXPORT int
taskq_cancel_id(taskq_t *tq, taskqid_t id)
{
	struct taskq_thread *self;
	taskq_ent_t *ent;

	if (tq == NULL) {
		taskq_bad("taskq_cancel_id", NULL, "NULL queue");
		return (EINVAL);
	}
	if (id == 0)
		return (ENOENT);
	self = taskq_self_in(tq);
	(void) pthread_mutex_lock(&tq->tq_lock);
	ent = taskq_find(tq, id);
	if (ent != NULL) {
		taskq_unqueue_locked(tq, ent);
		(void) pthread_mutex_unlock(&tq->tq_lock);
		return (0);
	}
	if (self != NULL && self->tqt_id == id) {
		/* A task cancelling itself: it cannot wait for itself. */
		(void) pthread_mutex_unlock(&tq->tq_lock);
		return (EBUSY);
	}
	if (taskq_running(tq, id, NULL)) {
		while (taskq_running(tq, id, NULL))
			taskq_wait_cv(tq);
		(void) pthread_mutex_unlock(&tq->tq_lock);
		return (EBUSY);
	}
	(void) pthread_mutex_unlock(&tq->tq_lock);
	return (ENOENT);
}

/*
 * Take task id off tq if it is queued or delayed there (and its entry is
 * ent, unless ent is NULL): 0 when it was, ENOENT otherwise.  Does not
 * wait for a task that is running.
 */
static int
taskq_cancel_queued(taskq_t *tq, taskqid_t id, const taskq_ent_t *ent)
{
	taskq_ent_t *found;
	int rc = ENOENT;

	(void) pthread_mutex_lock(&tq->tq_lock);
	found = taskq_find(tq, id);
	if (found != NULL && (ent == NULL || found == ent)) {
		taskq_unqueue_locked(tq, found);
		rc = 0;
	}
	(void) pthread_mutex_unlock(&tq->tq_lock);
	return (rc);
}

/*
 * Take the caller-owned entry ent off tq if it is queued or delayed there:
 * 0 when it was (its task will not run), ENOENT when it was not.  Does
 * not wait for a task that is running.
 */
int
taskq_cancel_ent(taskq_t *tq, taskq_ent_t *ent)
{
	return (taskq_cancel_queued(tq, ent->tqent_id, ent));
}

int
taskq_cancel_id_nowait(taskq_t *tq, taskqid_t id)
{
	if (tq == NULL || id == 0)
		return (ENOENT);
	return (taskq_cancel_queued(tq, id, NULL));
}

KMEM_EXPORT void
taskq_wait(taskq_t *tq)
{
	struct taskq_thread *self;
	int own;

	if (tq == NULL) {
		taskq_bad("taskq_wait", NULL, "NULL queue");
		return;
	}
	self = taskq_self_in(tq);
	own = self != NULL && self->tqt_id != 0 ? 1 : 0;
	(void) pthread_mutex_lock(&tq->tq_lock);
	while (tq->tq_ids_head != NULL || tq->tq_nactive > own)
		taskq_wait_cv(tq);
	(void) pthread_mutex_unlock(&tq->tq_lock);
}

KMEM_EXPORT void
taskq_wait_id(taskq_t *tq, taskqid_t id)
{
	struct taskq_thread *self;

	if (tq == NULL) {
		taskq_bad("taskq_wait_id", NULL, "NULL queue");
		return;
	}
	if (id == 0)
		return;
	self = taskq_self_in(tq);
	(void) pthread_mutex_lock(&tq->tq_lock);
	while (taskq_find(tq, id) != NULL || taskq_running(tq, id, self))
		taskq_wait_cv(tq);
	(void) pthread_mutex_unlock(&tq->tq_lock);
}

KMEM_EXPORT void
taskq_wait_outstanding(taskq_t *tq, taskqid_t id)
{
	struct taskq_thread *self;

	if (tq == NULL) {
		taskq_bad("taskq_wait_outstanding", NULL, "NULL queue");
		return;
	}
	self = taskq_self_in(tq);
	(void) pthread_mutex_lock(&tq->tq_lock);
	if (id == 0 || id >= tq->tq_next_id)
		id = tq->tq_next_id - 1;        /* ids not issued: up to now */
	while (taskq_lowest_id(tq, self) <= id)
		taskq_wait_cv(tq);
	(void) pthread_mutex_unlock(&tq->tq_lock);
}

/* ------------------------------------------------------------ queries */

KMEM_EXPORT int
taskq_member(taskq_t *tq, pthread_t thread)
{
	bool found = false;

	if (tq == NULL) {
		taskq_bad("taskq_member", NULL, "NULL queue");
		return (0);
	}
	(void) pthread_mutex_lock(&tq->tq_lock);
	for (const struct taskq_thread *t = tq->tq_threads; t != NULL;
	    t = t->tqt_next) {
		if (pthread_equal(t->tqt_tid, thread)) {
			found = true;
			break;
		}
	}
	(void) pthread_mutex_unlock(&tq->tq_lock);
	return (found);
}

KMEM_EXPORT taskq_t *
taskq_of_curthread(void)
{
	struct taskq_thread *self = taskq_self;

	return (self != NULL ? self->tqt_tq : NULL);
}

KMEM_EXPORT int
taskq_stats(taskq_t *tq, struct taskq_stats *st)
{
	if (tq == NULL || st == NULL) {
		taskq_bad("taskq_stats", tq, tq == NULL ? "NULL queue" :
		    "NULL stats pointer");
		return (EINVAL);
	}
	memset(st, 0, sizeof (*st));
	(void) pthread_mutex_lock(&tq->tq_lock);
	memcpy(st->name, tq->tq_name, sizeof (st->name));
	st->threads = (uint64_t)tq->tq_nthreads;
	st->threads_max = (uint64_t)tq->tq_maxthreads;
	st->threads_idle = (uint64_t)tq->tq_nidle;
	st->tasks_pending = tq->tq_prio.count + tq->tq_pend.count +
	    tq->tq_delay.count;
	st->tasks_delayed = tq->tq_delay.count;
	st->tasks_dispatched = tq->tq_dispatched;
	st->tasks_executed = tq->tq_executed;
	st->tasks_cancelled = tq->tq_cancelled;
	st->entries_allocated = tq->tq_nalloc;
	(void) pthread_mutex_unlock(&tq->tq_lock);
	return (0);
}
