/*
 * fork.c - libkmem across fork().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A child of a multi-threaded process starts with one thread and a copy
 * of every lock as it was.  pthread_atfork handlers, registered once when
 * libkmem starts (or, in libkmem_malloc.so, before any other handler is:
 * malloc.c), make the copy consistent: before fork() the forking
 * thread takes every libkmem lock, in the one order the allocation paths
 * use (so this cannot deadlock against them), and after fork() parent and
 * child release them.  The child then restarts what lived in threads: the
 * task queues' threads (taskq_fork_child; libkmem's own queue only when
 * the child first needs it, taskq_fork_resume), the aging chain and the
 * PSI monitor (reap_fork_child), and forgets grow tasks that were running
 * (cache_fork_unlock).  The child can allocate and free at once, from any
 * thread it creates.
 *
 * COST.  fork() write-protects the pages of both processes, so every page
 * these handlers write costs a page fault in the parent and another in
 * the child.  They write locks and little else; the caches' locks are
 * packed a few dozen caches to a page (meta.c, MUTEXES), and the
 * process-wide ones share a page or two (KMEM_FORK_LOCK).
 *
 * Magazine flushes come first and go last: a flush takes rounds out of
 * magazines and gives them back to the slab layer under every other lock
 * (a refill, the other way), so fork() waits for those in progress
 * (FLUSHES in magazine.c), else the child would have objects out that no
 * thread of it holds; so it does for slab_grow, whose new slabs are in no
 * list until it links them.  The
 * statistics publisher's lock comes next and goes last but one: the
 * publisher takes every other lock under it (stats.c).  The child drops
 * the parent's statistics region and publishes its own (stats_fork_child).
 *
 * ORDER: magazine flushes, the statistics lock, kmem_alloc's locks, the
 * cache registry, each cache's locks (see cache_fork_lock), the task
 * queues (registry, then each queue), the arena, metadata, the memory
 * pools (registry, then each pool; nothing is taken under a pool's
 * lock).  A thread holding one of these must not take an earlier one, and
 * an allocation may take a cache's locks (pthread_create makes one,
 * through libkmem's malloc when it is preloaded).  So the first class
 * cache starts the statistics before ka_create takes kmem_alloc's lock,
 * and a forked child's first task queue thread is created with no lock
 * held (taskq_fork_resume_slow).
 *
 * Not covered: a cache constructor that, with KMEM_PERCPU=lock, allocates
 * from another cache while a third thread forks may deadlock that fork.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

#include "cache.h"
#include "kmem_alloc.h"
#include "magazine.h"
#include "meta.h"
#include "reap.h"
#include "stats.h"
#include "taskq_impl.h"
#include "vmem.h"

static void
fork_prepare(void)
{
	mag_fork_lock();
	stats_fork_prepare();
	ka_fork_lock();
	cache_fork_lock();
	taskq_fork_prepare();
	vmem_fork_lock();
	meta_fork_lock();
	mempool_fork_lock();
}

static void
fork_parent(void)
{
	mempool_fork_unlock(false);
	meta_fork_unlock();
	vmem_fork_unlock();
	taskq_fork_parent();
	cache_fork_unlock(false);
	ka_fork_unlock();
	stats_fork_parent();
	mag_fork_unlock(false);
}

static bool fork_registered;             /* this process has them */
static _Atomic pid_t fork_registering;  /* the process registering them */
static __thread bool fork_in_init       /* this thread is, in fork_init */
    __attribute__((tls_model("initial-exec")));

static void
fork_child(void)
{
	fork_registered = true;         /* it has these handlers: fork_init */
	mempool_fork_unlock(true);
	meta_fork_unlock();
	vmem_fork_unlock();
	taskq_fork_child();
	cache_fork_unlock(true);
	ka_fork_unlock();
	reap_fork_child();
	stats_fork_child();
	mag_fork_unlock(true);
	taskq_fork_child_start();       /* pthread_create() may allocate */
}

/*
 * Once per process image (kmem_init's pthread_once calls it; so does
 * libkmem_malloc.so's __register_atfork, before any other registration
 * and within its own: malloc.c).  A child forked while another thread
 * was in kmem_init, past this, runs kmem_init again - pthread_once starts
 * over in a child - and has the handlers from its parent already:
 * registered twice, they took every lock twice, and the child's next
 * fork() hung.  So the flag says that this process has
 * them: set once they are registered, and by fork_child, which runs only
 * where they are.  (Set before, a child forked just before the
 * registration took it as made, and had none.)
 */
void
fork_init(void)
{
	pid_t me, other = 0;

	if (fork_registered || fork_in_init)
		return;         /* (pthread_atfork comes back: malloc.c) */
	me = getpid();
	/*
	 * One thread registers; another of this process that comes meanwhile
	 * goes on without (its handlers may then precede libkmem's).  A
	 * registration that a thread of the parent had begun when this
	 * process forked is this process's to make.
	 */
	if (!atomic_compare_exchange_strong(&fork_registering, &other, me) &&
	    (other == me || !atomic_compare_exchange_strong(&fork_registering,
	    &other, me)))
		return;
	fork_in_init = true;
	(void) pthread_atfork(fork_prepare, fork_parent, fork_child);
	fork_in_init = false;
	fork_registered = true;
}
