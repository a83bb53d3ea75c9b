/*
 * forkfirst.c - fork() in one thread while another makes the process's
 * first kmem_alloc() call.  That call creates the first cache, which
 * starts the aging chain and the statistics (reap_start, stats_lock);
 * fork() takes stats_lock and then kmem_alloc's lock.  When the first
 * cache, a size class, started them with kmem_alloc's lock held, this
 * program hung 40 times in 40.  The window is only there once per
 * process, so the program runs itself RUNS times, each a fresh process
 * (argv[1] counts them down).  An alarm turns a hang into a failure.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libkmem/kmem.h>

#define RUNS    20

static _Atomic bool stop;
static _Atomic unsigned int forks;

static void *
forker(void *arg)
{
	(void) arg;
	while (!atomic_load(&stop)) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(0);
		if (pid < 0 || waitpid(pid, NULL, 0) != pid) {
			perror("forkfirst: fork/waitpid");
			exit(1);
		}
		atomic_fetch_add(&forks, 1);
	}
	return (NULL);
}

int
main(int argc, char **argv)
{
	int left = argc > 1 ? atoi(argv[1]) : RUNS;
	struct timespec ts = { 0, 0 };
	pthread_t t;
	char next[16];
	void *p;

	alarm(30);              /* a deadlock fails the test, SIGALRM */
	if (pthread_create(&t, NULL, forker, NULL) != 0) {
		fprintf(stderr, "forkfirst: pthread_create failed\n");
		return (1);
	}
	/* Let a fork or two run first, from a different point each run. */
	ts.tv_nsec = (long)(left % 5) * 100000;
	while (atomic_load(&forks) == 0)
		sched_yield();
	(void) nanosleep(&ts, NULL);
	if ((p = kmem_alloc(100, KM_SLEEP)) == NULL) {
		fprintf(stderr, "forkfirst: kmem_alloc failed\n");
		return (1);
	}
	kmem_free(p, 100);
	atomic_store(&stop, true);
	(void) pthread_join(t, NULL);
	if (left <= 1) {
		printf("forkfirst: %d processes, first kmem_alloc while "
		    "another thread forks\n", RUNS);
		return (0);
	}
	(void) snprintf(next, sizeof (next), "%d", left - 1);
	fflush(stdout);
	execl("/proc/self/exe", argv[0], next, (char *)NULL);
	perror("forkfirst: execl(/proc/self/exe)");
	return (1);
}
