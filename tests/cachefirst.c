/*
 * cachefirst.c - a program linked with libkmem_malloc whose first libkmem
 * call is kmem_cache_create(), not malloc.  Creating the first cache
 * starts the kmem taskq, whose pthread_create() allocates through
 * libkmem's malloc; the first debug cache calls backtrace(), which loads
 * libgcc_s and allocates too.  Either may need a class cache that does not
 * exist yet, and creating it must not wait for the start-up it is nested
 * in.  Then threads use the cache and malloc together.  The program runs
 * itself a second time (a fresh process) with kmem_debug set to "guards"
 * before its cache is created.  An alarm turns a hang into a failure.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libkmem/kmem.h>

#define NTHREADS        4
#define ROUNDS          2000

static kmem_cache_t *cp;

static void *
worker(void *arg)
{
	uintptr_t id = (uintptr_t)arg;

	for (unsigned int i = 0; i < ROUNDS; i++) {
		char *o = kmem_cache_alloc(cp, KM_SLEEP);
		char *m = malloc(16 + (i * 40 + id * 8) % 4000);

		if (o == NULL || m == NULL)
			return ((void *)1);
		memset(o, (int)id, 200);
		m[0] = (char)i;
		for (unsigned int b = 0; b < 200; b++) {
			if (o[b] != (char)id)
				return ((void *)1);
		}
		kmem_cache_free(cp, o);
		free(m);
	}
	return (NULL);
}

int
main(int argc, char **argv)
{
	bool debug = argc > 1 && strcmp(argv[1], "debug") == 0;
	pthread_t t[NTHREADS];
	void *bad;
	int failed = 0;

	alarm(60);              /* a deadlock fails the test, SIGALRM */
	if (debug && kmem_tunable_set_str("kmem_debug", "guards") != 0) {
		perror("cachefirst: kmem_tunable_set_str(kmem_debug)");
		return (1);
	}
	cp = kmem_cache_create("cachefirst", 200, 0, NULL, NULL, NULL, NULL,
	    NULL, 0);
	if (cp == NULL) {
		fprintf(stderr, "cachefirst: kmem_cache_create failed\n");
		return (1);
	}
	for (uintptr_t i = 0; i < NTHREADS; i++) {
		if (pthread_create(&t[i], NULL, worker, (void *)i) != 0) {
			fprintf(stderr, "cachefirst: pthread_create failed\n");
			return (1);
		}
	}
	for (int i = 0; i < NTHREADS; i++) {
		(void) pthread_join(t[i], &bad);
		failed |= bad != NULL;
	}
	kmem_cache_destroy(cp);
	if (failed) {
		fprintf(stderr, "cachefirst: an object was corrupted\n");
		return (1);
	}
	printf("cachefirst%s: %d threads x %d cache and malloc pairs\n",
	    debug ? " (kmem_debug=guards)" : "", NTHREADS, ROUNDS);
	if (!debug) {
		fflush(stdout);
		execl("/proc/self/exe", argv[0], "debug", (char *)NULL);
		perror("cachefirst: execl(/proc/self/exe)");
		return (1);
	}
	return (0);
}
