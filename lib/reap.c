/*
 * reap.c - giving memory back without the application asking: the
 * shared kmem taskq, periodic aging, kmem_reap(), memory pressure.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * THE KMEM TASKQ.  One task queue of up to kmem_cache_kmem_threads
 * threads runs every cache's grow tasks (grow.c), the aging pass and
 * pressure reaps.  It is created on first use and lives as long as the
 * process.  It is dynamic (TASKQ_DYNAMIC): it starts with one thread,
 * which waits for delayed tasks and never exits (in a forked child, not
 * before the child needs it: taskq_set_fork_lazy), and creates more only
 * when tasks are ready and no thread is idle; those exit after a second
 * without work.  So a short process that allocates a little (small caches
 * grow inline, grow.c) starts one thread, not kmem_cache_kmem_threads.
 * A thread is created by a dispatcher that holds no libkmem lock (grow.c
 * dispatches after dropping its lock), and an allocation made inside
 * pthread_create() grows inline: creating a thread never waits for one.
 *
 * AGING.  Every kmem_reap_interval seconds a delayed task walks every
 * cache (a change of the interval takes effect at once: reap_new_chain)
 * and
 *   - trims the depot to its working set (Bonwick): the full magazines
 *     that stayed in the depot for the whole interval were not needed, so
 *     they are flushed to the slab layer;
 *   - flushes the magazines of every CPU that did not allocate or free
 *     from the cache during the whole interval;
 *   - frees the empty slabs that have been empty for kmem_cache_expire
 *     seconds.
 * So after a burst the memory goes back to the system within about
 * interval + expire seconds, with no call from the application.
 *
 * MEMORY PRESSURE.  reap_pressure() gives back kmem_alloc's spare spans,
 * calls every cache's reclaim callback (once, or until it stops freeing
 * objects or the process is under the limit: kmem_cache_reclaim) and
 * then reaps every cache completely.  It runs when the arena cannot map
 * memory (grow.c, kmem_cache.c), when the memory libkmem has mapped crosses
 * kmem_memory_limit, and when the kernel's pressure stall information
 * reports memory stalls: a monitor thread holds a PSI trigger on this
 * cgroup's memory.pressure (or /proc/pressure/memory) and polls it.  The
 * trigger is armed by a delayed task two seconds (REAP_PSI_DELAY_NS)
 * after libkmem starts, so that short processes never open the PSI file
 * nor create the monitor thread; a pressure stall shorter than that
 * would not have reached the trigger's 150 ms in 2 s window anyway.
 *
 * RETRIES.  A task dispatched from a thread that is no worker of the
 * kmem taskq fails when no task entry is free and none can be mapped (a
 * worker takes the one it runs on: taskq.c).  The periodic tasks that
 * start so (aging's first tick, at start and when kmem_reap_interval
 * changes; the PSI task; the statistics ticks, stats.c) would then be
 * lost for good; instead reap_retry() queues reap_retry_task a second
 * later on an entry of its own, which needs no memory, and that task
 * queues them again (and itself a second after, while memory is short).
 *
 * LOCKING.  Caches are walked with cache_walk() (kmem_cache.c), which
 * holds a reference on each cache while its callback runs, so destroy
 * waits; no libkmem lock is held while a cache is reaped.  The pressure
 * reap is not re-entered by a thread already inside it (a reclaim
 * callback that allocates).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "reap.h"
#include "stats.h"
#include "taskq_impl.h"
#include "tunables.h"
#include "vmem.h"

#define NS_PER_SEC              1000000000LL
#define RECLAIM_ROUNDS_MAX      16
#define REAP_PSI_DELAY_NS       (2 * NS_PER_SEC)
#define REAP_STACK_MAX          ((size_t)2 << 20)

static _Atomic(taskq_t *) reap_tq;
static _Atomic int64_t reap_tq_next_try;       /* after a failure */
static atomic_flag reap_tq_making = ATOMIC_FLAG_INIT;
static _Atomic bool reap_limit_pending;
static _Atomic bool reap_limit_again;   /* a crossing came while pending */
static _Atomic uint64_t reap_npressure, reap_ndispatch, reap_ndropped;
static _Atomic bool reap_psi_on;
static _Atomic int reap_psi_fd = -1;    /* the monitor's trigger, -1: none */
static dev_t reap_psi_dev;              /* the file reap_psi_fd was opened on */
static ino_t reap_psi_ino;
static _Atomic uint64_t reap_npasses;
static __thread bool reap_in_pressure
    __attribute__((tls_model("initial-exec")));

/*
 * The stack of the kmem taskq's threads: the C library's default for a
 * new thread (glibc's follows RLIMIT_STACK, 8 MiB on most systems), at
 * most REAP_STACK_MAX.  Each stack is address space: under a tight
 * RLIMIT_AS (ulimit -v) every thread's 8 MiB was room the program's heap
 * did not get.  2 MiB is what glibc gives a thread on x86-64 when the
 * stack is unlimited, and what libumem's own thread had on 64-bit
 * Solaris, so constructors, destructors and reclaim callbacks, which run
 * on these threads, keep a normal thread's stack.  User-created queues
 * keep the default.
 */
static size_t
reap_stack_size(void)
{
	pthread_attr_t attr;
	size_t size = 0;

	if (pthread_getattr_default_np(&attr) == 0) {
		(void) pthread_attr_getstacksize(&attr, &size);
		(void) pthread_attr_destroy(&attr);
	}
	return (size != 0 && size < REAP_STACK_MAX ? size : REAP_STACK_MAX);
}

/*
 * The kmem taskq, made by the first caller.  A failure (a thread that
 * could not be created, say) is not for good: a later call tries again,
 * a second after the last try, and meanwhile callers do without (caches
 * grow synchronously and are not aged).  One caller tries at a time; the
 * others do without rather than wait.  The caller that makes it then may
 * be a cache's growth, not reap_start(): aging starts from the queue
 * (reap_start_task), whose first entry is mapped with it so that this
 * dispatch cannot fail, whenever a reap_start() did without the queue
 * (reap_start_owed): after a failure, or while another thread was making
 * it - in a forked child, a thread of the parent that never finishes.
 */
static void reap_start_task(void *arg);
static _Atomic bool reap_start_owed;   /* a reap_start() found no queue */

static __attribute__((noinline)) taskq_t *
reap_tq_make(void)
{
	static _Atomic bool said;
	int64_t now = kmem_now_ns();
	taskq_t *tq = NULL;

	if (now < atomic_load(&reap_tq_next_try) ||
	    atomic_flag_test_and_set(&reap_tq_making))
		return (NULL);
	if ((tq = atomic_load(&reap_tq)) == NULL) {
		tunables_init();
		tq = taskq_create_stack("kmem_taskq",
		    (int)tunable_fixed(KT_CACHE_KMEM_THREADS), defclsyspri, 1,
		    0, TASKQ_DYNAMIC | TASKQ_PREPOPULATE, reap_stack_size());
		if (tq != NULL) {
			taskq_set_fork_lazy(tq);
			atomic_store(&reap_tq, tq);
			if (atomic_load(&reap_start_owed))
				(void) taskq_dispatch(tq, reap_start_task,
				    NULL, TQ_NOSLEEP);
		} else {
			atomic_store(&reap_tq_next_try, now + NS_PER_SEC);
			if (!atomic_exchange(&said, true))
				kmem_report("cannot create the kmem taskq (%s); "
				    "caches grow synchronously and are not "
				    "aged until it can be", strerror(errno));
		}
	}
	atomic_flag_clear(&reap_tq_making);
	return (tq);
}

taskq_t *
kmem_taskq(void)
{
	taskq_t *tq = atomic_load_explicit(&reap_tq, memory_order_acquire);

	return (KMEM_LIKELY(tq != NULL) ? tq : reap_tq_make());
}

/* ------------------------------------------------------------ aging */

void
reap_age_cache(struct kmem_cache *cp, int64_t now_ns)
{
	int64_t expire = tunable(KT_CACHE_EXPIRE) * NS_PER_SEC;

	if (cp->mag.mode != MAG_NONE) {
		/* Full magazines nobody took during the interval. */
		mag_depot_flush(cp, (unsigned int)depot_idle_full(
		    &cp->mag.depot));
		/* CPUs that did not touch the cache during the interval. */
		for (unsigned int c = 0; c < cpu_count(); c++) {
			uint64_t ops = mag_cpu_ops(cp, c);
			if (ops == cp->cpu[c].reap_seen)
				mag_flush_cpu(cp, c);
			cp->cpu[c].reap_seen = ops;
		}
	}
	(void) slab_reap(cp, now_ns - expire);
}

static void
reap_age_walk(struct kmem_cache *cp, void *arg)
{
	reap_age_cache(cp, *(int64_t *)arg);
}

/*
 * Memory kept outside caches (kmem_alloc's spare spans), see reap.h; and
 * address space kept by regions reserved before RLIMIT_AS was lowered.
 */
static void (*_Atomic reap_trim_fn)(int64_t before);

void
reap_set_trim(void (*fn)(int64_t before))
{
	atomic_store(&reap_trim_fn, fn);
}

static void
reap_trim(int64_t before)
{
	void (*fn)(int64_t) = atomic_load(&reap_trim_fn);

	if (fn != NULL)
		fn(before);
	vmem_trim();            /* after the spares: their spans are free */
}

/*
 * The aging chain: each tick dispatches the next, interval seconds on.
 * A change of kmem_reap_interval starts a new chain at once
 * (reap_new_chain) rather than let the old one sleep out its old
 * interval; every chain has a generation, and a tick of an older one ends
 * its chain when it fires.  The setter takes the old chain's queued tick
 * off the queue once the new chain has its own (a change every so often
 * left one more tick queued each time, for up to an old interval, and the
 * entries they held were never given back); one that is running is not
 * waited for (it runs destructors), and ends its chain by itself.  With
 * the interval 0 no tick is queued at all until the interval is changed.
 * A new chain whose first tick cannot be queued (no task entry, memory
 * short: the setter is no worker, which would take its own, taskq.c) is
 * carried on by the old chain's queued tick, which would otherwise end
 * both, or by reap_retry_task (RETRIES) when none is queued (at start,
 * or the interval set from 0), whichever comes first.
 */
static _Atomic bool reap_tick_running;   /* for fork: see reap_fork_child */
static _Atomic bool reap_started;
static _Atomic uint64_t reap_gen;       /* the live chain's */
static _Atomic taskqid_t reap_tick_id;  /* its queued tick */
static _Atomic uint64_t reap_lost_gen;  /* a chain with no tick queued */

static void reap_tick(void *arg);

/*
 * Queue chain gen's next tick, an interval after now (none if off); false
 * when it could not be queued.
 */
static bool
reap_arm(uint64_t gen, int64_t now)
{
	int64_t interval = tunable(KT_REAP_INTERVAL);
	taskqid_t id;

	if (interval == 0 || kmem_taskq() == NULL)
		return (true);
	id = taskq_dispatch_delay(kmem_taskq(), reap_tick,
	    (void *)(uintptr_t)gen, TQ_SLEEP, now + interval * NS_PER_SEC);
	if (id == 0) {
		atomic_store(&reap_lost_gen, gen);
		reap_retry(REAP_RETRY_AGING);   /* or the old tick carries it */
	}
	if (gen == atomic_load(&reap_gen))
		atomic_store(&reap_tick_id, id);
	return (id != 0);
}

/* A new chain, in place of the old one's queued tick. */
static void
reap_new_chain(void)
{
	uint64_t gen = atomic_fetch_add(&reap_gen, 1) + 1;
	taskqid_t old = atomic_exchange(&reap_tick_id, 0);

	if (reap_arm(gen, kmem_now_ns()) && old != 0)
		(void) taskq_cancel_id_nowait(kmem_taskq(), old);
}

static void
reap_tick(void *arg)
{
	uint64_t gen = (uint64_t)(uintptr_t)arg, live = atomic_load(&reap_gen);
	int64_t now = kmem_now_ns();

	if (gen != live) {
		/* A chain that was replaced: ends, unless it carries the new. */
		gen = live;
		if (!atomic_compare_exchange_strong(&reap_lost_gen, &gen, 0))
			return;
	}
	atomic_store(&reap_tick_running, true);
	if (tunable(KT_REAP_INTERVAL) > 0) {
		cache_walk(reap_age_walk, &now);
		reap_trim(now - tunable(KT_CACHE_EXPIRE) * NS_PER_SEC);
		atomic_fetch_add(&reap_npasses, 1);
	}
	reap_arm(gen, now);
	atomic_store(&reap_tick_running, false);
}

/* kmem_reap_interval changed (tunable hook). */
static void
reap_interval_changed(void)
{
	if (atomic_load(&reap_started))
		reap_new_chain();
}

/* kmem_memory_limit changed: a lower limit applies at once. */
static void
reap_limit_changed(void)
{
	if (atomic_load(&reap_started))
		reap_check_limit();
}

uint64_t
reap_passes(void)
{
	return (atomic_load(&reap_npasses));
}

uint64_t
reap_pressure_gen(void)
{
	return (atomic_load(&reap_npressure));
}

void
reap_pressure_counts(uint64_t *runs, uint64_t *dispatched, uint64_t *dropped)
{
	*runs = atomic_load(&reap_npressure);
	*dispatched = atomic_load(&reap_ndispatch);
	*dropped = atomic_load(&reap_ndropped);
}

/* ------------------------------------------------------------ pressure */

/* Bytes of slabs (and large buffers) mapped by the arena. */
static size_t
reap_mapped(void)
{
	struct vmem_usage u;

	vmem_usage(&u);
	return (u.inuse);
}

/* Objects the application holds plus cached, for reclaim progress. */
static uint64_t
reap_objects(struct kmem_cache *cp)
{
	return (atomic_load_explicit(&cp->sl.obj_inuse, memory_order_relaxed));
}

static bool
reap_over_limit(void)
{
	int64_t limit = tunable(KT_MEMORY_LIMIT);

	return (limit != 0 && reap_mapped() > (uint64_t)limit);
}

static void
reap_pressure_cache(struct kmem_cache *cp, void *arg)
{
	uint64_t *freed = arg;

	if (cp->reclaim != NULL) {
		bool once = tunable(KT_CACHE_RECLAIM) == KMEM_RECLAIM_ONCE;

		/*
		 * Rounds cached before the callback would count as objects
		 * it freed, and have it called again for nothing.
		 */
		mag_flush_all(cp);
		for (int round = 0; round < RECLAIM_ROUNDS_MAX; round++) {
			uint64_t before = reap_objects(cp);

			cache_reclaim(cp);
			mag_flush_all(cp);
			/*
			 * Until it stops freeing, or the limit is met, or it
			 * destroyed its cache.  What it freed counts against
			 * the limit only once its empty slabs are unmapped.
			 */
			*freed += slab_reap(cp, 0) * cp->sl.slab_size;
			if (once || cache_dying(cp) ||
			    reap_objects(cp) >= before ||
			    (tunable(KT_MEMORY_LIMIT) != 0 &&
			    !reap_over_limit()))
				break;
		}
	}
	mag_flush_all(cp);
	*freed += slab_reap(cp, 0) * cp->sl.slab_size;
}

uint64_t
reap_pressure(void)
{
	uint64_t freed = 0;

	if (reap_in_pressure)
		return (0);             /* a reclaim callback allocating */
	atomic_fetch_add(&reap_npressure, 1);
	reap_in_pressure = true;
	/*
	 * The spares first: they cost the program nothing to give back, and
	 * what they free counts before the callbacks are asked for more
	 * (kmem_cache_reclaim=target stops once under kmem_memory_limit).
	 * Again after the walk, for the large blocks the callbacks freed.
	 */
	reap_trim(0);
	cache_walk(reap_pressure_cache, &freed);
	reap_trim(0);
	reap_in_pressure = false;
	return (freed);
}

static void reap_pressure_async(void);

/*
 * A background pressure reap.  Crossings of the memory limit while it ran
 * were not dispatched (one reap at a time) but remembered, so when it is
 * done it looks again: still over the limit and either it freed memory
 * (another pass may too) or a crossing came meanwhile (new growth), it
 * goes again.  An unreachable limit with no growth does not keep it
 * spinning.
 */
static void
reap_pressure_task(void *arg)
{
	uint64_t freed;

	(void) arg;
	freed = reap_pressure();
	atomic_store(&reap_limit_pending, false);
	if ((atomic_exchange(&reap_limit_again, false) || freed != 0) &&
	    reap_over_limit())
		reap_pressure_async();
}

/* Reap in the background, unless such a reap is already on its way. */
static void
reap_pressure_async(void)
{
	bool no = false;
	taskq_t *tq = kmem_taskq();

	if (tq == NULL)
		return;
	if (!atomic_compare_exchange_strong(&reap_limit_pending, &no, true)) {
		atomic_store(&reap_limit_again, true);  /* see the task */
		atomic_fetch_add(&reap_ndropped, 1);
		return;
	}
	atomic_fetch_add(&reap_ndispatch, 1);
	if (taskq_dispatch(tq, reap_pressure_task, NULL, TQ_NOSLEEP) == 0)
		atomic_store(&reap_limit_pending, false);
}

void
reap_check_limit(void)
{
	if (reap_over_limit())
		reap_pressure_async();
}

/*
 * The PSI file of this process's cgroup (cgroup v2), else the system's.
 * The trigger asks to hear of 150 ms of memory stall within 2 s, the
 * smallest window an unprivileged process may use.
 */
static int
reap_psi_open(void)
{
	static const char trigger[] = "some 150000 2000000";
	char buf[1024], path[1100];
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	ssize_t len = fd >= 0 ? read(fd, buf, sizeof (buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	fd = -1;
	path[0] = '\0';
	if (len > 0) {
		char *line = buf;

		buf[len] = '\0';
		while (line != NULL && *line != '\0') {
			char *next = strchr(line, '\n');
			if (next != NULL)
				*next++ = '\0';
			if (strncmp(line, "0::", 3) == 0) {
				snprintf(path, sizeof (path),
				    "/sys/fs/cgroup%s/memory.pressure", line + 3);
				break;
			}
			line = next;
		}
	}
	if (path[0] != '\0')
		fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0 && write(fd, trigger, sizeof (trigger)) < 0) {
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		fd = open("/proc/pressure/memory", O_RDWR | O_NONBLOCK |
		    O_CLOEXEC);
		if (fd >= 0 && write(fd, trigger, sizeof (trigger)) < 0) {
			close(fd);
			fd = -1;
		}
	}
	return (fd);
}

/*
 * Is fd still the trigger's descriptor?  A program may close a descriptor
 * it does not know (bash closes a pipe's twice: the second close hits
 * whatever took the number since) and reuse the number: then it is the
 * program's, and must not be closed here (stats.c does the same).
 */
static bool
reap_psi_ours(int fd)
{
	struct stat st;

	return (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == reap_psi_dev &&
	    st.st_ino == reap_psi_ino);
}

static void *
reap_psi_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct pollfd pfd = { .fd = fd, .events = POLLPRI };

	for (;;) {
		int n = poll(&pfd, 1, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (pfd.revents & (POLLERR | POLLNVAL)))
			break;
		if (pfd.revents & POLLPRI)
			reap_pressure_async();
	}
	atomic_store(&reap_psi_on, false);
	atomic_store(&reap_psi_fd, -1);
	if (reap_psi_ours(fd))
		close(fd);
	return (NULL);
}

bool
reap_psi_active(void)
{
	return (atomic_load(&reap_psi_on));
}

void
reap_psi_event(void)
{
	reap_pressure_async();
}

/* ------------------------------------------------------------ start */

/* Watch PSI from a thread of its own, where the kernel offers it. */
static void
reap_psi_start(void)
{
	pthread_attr_t attr;
	pthread_t tid;
	int fd = reap_psi_open();
	struct stat st;

	if (fd < 0)
		return;                 /* no PSI here: limit and mmap only */
	if (fstat(fd, &st) != 0) {
		close(fd);
		return;
	}
	reap_psi_dev = st.st_dev;
	reap_psi_ino = st.st_ino;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	atomic_store(&reap_psi_fd, fd);         /* for a forked child to close */
	if (taskq_thread_create(&tid, &attr, reap_psi_thread,
	    (void *)(intptr_t)fd) == 0) {
		(void) pthread_setname_np(tid, "kmem_psi");
		atomic_store(&reap_psi_on, true);
	} else {
		atomic_store(&reap_psi_fd, -1);
		close(fd);
	}
	pthread_attr_destroy(&attr);
}

static _Atomic uint64_t reap_psi_tries; /* reap_psi_task runs */

static void
reap_psi_task(void *arg)
{
	(void) arg;
	reap_psi_start();
	atomic_fetch_add(&reap_psi_tries, 1);   /* after: see test_psi */
}

/* Arm the PSI trigger REAP_PSI_DELAY_NS from now (see MEMORY PRESSURE). */
static void
reap_psi_later(void)
{
	taskq_t *tq = kmem_taskq();

	if (tq != NULL && taskq_dispatch_delay(tq, reap_psi_task, NULL,
	    TQ_SLEEP, kmem_now_ns() + REAP_PSI_DELAY_NS) == 0)
		reap_retry(REAP_RETRY_PSI);
}

/* ------------------------------------------------------------ retries */

static taskq_ent_t reap_retry_ent;      /* caller-owned: needs no memory */
static _Atomic unsigned int reap_retry_what;    /* REAP_RETRY_* */

static void
reap_retry_task(void *arg)
{
	unsigned int what = atomic_exchange(&reap_retry_what, 0);
	uint64_t gen = atomic_load(&reap_gen);

	(void) arg;
	/* The live chain, unless the old chain's tick carried it. */
	if ((what & REAP_RETRY_AGING) &&
	    atomic_compare_exchange_strong(&reap_lost_gen, &gen, 0))
		(void) reap_arm(gen, kmem_now_ns());
	if (what & REAP_RETRY_PSI)
		reap_psi_later();
	if (what & REAP_RETRY_STATS)
		stats_retry();
}

void
reap_retry(unsigned int what)
{
	taskq_t *tq = atomic_load(&reap_tq);

	atomic_fetch_or(&reap_retry_what, what);
	/* EBUSY: already queued, and it reads what after this. */
	if (tq != NULL)
		(void) taskq_dispatch_ent_delay(tq, reap_retry_task, NULL, 0,
		    &reap_retry_ent, kmem_now_ns() + NS_PER_SEC);
}

uint64_t
reap_psi_attempts(void)
{
	return (atomic_load(&reap_psi_tries));
}

/*
 * Start aging, the PSI monitor and the statistics publisher, once: by
 * the first caller that finds the kmem taskq (if it could not be made at
 * first, or was being made by another thread, a later one, or the
 * queue's first task: reap_tq_make).
 */
void
reap_start(void)
{
	if (KMEM_LIKELY(atomic_load(&reap_started)))
		return;
	if (kmem_taskq() == NULL) {
		atomic_store(&reap_start_owed, true);   /* see reap_tq_make */
		return;
	}
	if (atomic_exchange(&reap_started, true))
		return;
	tunable_set_hook(KT_REAP_INTERVAL, reap_interval_changed);
	tunable_set_hook(KT_MEMORY_LIMIT, reap_limit_changed);
	reap_new_chain();
	reap_psi_later();
	stats_start(kmem_taskq());
}

/*
 * In a forked child (after taskq_fork_child): a thread that was making
 * the kmem taskq is gone (the child makes its own when it needs it), and
 * a pressure reap or an aging pass that was running in the parent is
 * gone - start a new aging chain
 * (if the tick was only queued it runs anyway, but ends at once: it
 * belongs to the old chain) - and so is the PSI thread (the child closes
 * the descriptor of its trigger, which nothing polls there): it is
 * started again by a delayed task, as at start (a PSI task queued in the
 * parent and not yet run runs in the child anyway), not here:
 * pthread_create() may allocate, and a ready task would start the kmem
 * taskq's thread in every child (taskq.c, fork()).
 */
void
reap_fork_child(void)
{
	int fd = atomic_exchange(&reap_psi_fd, -1);

	/* The parent's trigger, if still ours: no thread polls it here. */
	if (reap_psi_ours(fd))
		(void) close(fd);
	atomic_store(&reap_limit_pending, false);
	/* A thread that was making the kmem taskq: gone, and its claim. */
	atomic_flag_clear(&reap_tq_making);
	if (atomic_exchange(&reap_tick_running, false) && reap_tq != NULL) {
		atomic_store(&reap_tick_id, 0);  /* ran in the parent: gone */
		reap_new_chain();
	}
	if (atomic_exchange(&reap_psi_on, false))
		reap_psi_later();
}

static void
reap_start_task(void *arg)
{
	(void) arg;
	reap_start();
}

static void
reap_now_walk(struct kmem_cache *cp, void *arg)
{
	(void) arg;
	kmem_cache_reap_now(cp);
}

KMEM_EXPORT void
kmem_reap(void)
{
	kmem_init();
	cache_walk(reap_now_walk, NULL);
	reap_trim(0);
}

static void
reap_task_walk(struct kmem_cache *cp, void *arg)
{
	(void) arg;
	cache_reclaim(cp);
	mag_flush_all(cp);
	(void) slab_reap(cp, 0);
}

/*
 * kmem_reap() for a task of the kmem taskq (a reap asked for through the
 * statistics region): it must not wait for grow tasks, which may be
 * queued behind it, so a slab that growth adds meanwhile stays (aging
 * returns it if unused).
 */
void
reap_all(void)
{
	cache_walk(reap_task_walk, NULL);
	reap_trim(0);
}
