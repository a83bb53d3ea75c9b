/*
 * aslimit.c - libkmem's malloc under an address-space limit (RLIMIT_AS,
 * ulimit -v) too small for the arena's 1 GiB regions: large and small
 * blocks must still be served until the limit, and then malloc must
 * return NULL with ENOMEM, not wait for memory for good; after frees it
 * must serve again.  The arena must leave the program's other mappings
 * room: half the limit can be mapped after the first malloc, and again
 * once large blocks that reached the limit are freed.  The program sets
 * the limit and runs itself again, so that the arena starts under it.  An
 * alarm turns a hang into a failure.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define LIMIT           ((rlim_t)768 << 20)
#define SMALL           1000
#define MAX_BLOCKS      ((size_t)1 << 20)       /* 1 GiB of SMALL: never */
#define BIG             ((size_t)64 << 20)
#define LARGE           ((size_t)1 << 20)       /* above every class */

static int
fail(const char *what)
{
	fprintf(stderr, "aslimit: %s\n", what);
	return (1);
}

/* Can half the limit be mapped outside the arena (a file, stacks)? */
static bool
half_maps(void)
{
	void *m = mmap(NULL, LIMIT / 2, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (m == MAP_FAILED)
		return (false);
	(void) munmap(m, LIMIT / 2);
	return (true);
}

static int
child(void)
{
	void **v = calloc(MAX_BLOCKS, sizeof (void *));
	char *big = malloc(BIG);
	size_t n = 0;
	int err;

	if (!half_maps())
		return (fail("the arena left no room to map half the limit"));
	if (v == NULL || big == NULL)
		return (fail("no room for a first large block under the limit"));
	memset(big, 1, BIG);
	free(big);
	/* Large blocks up to the limit, freed: their regions go back. */
	while (n < MAX_BLOCKS && (v[n] = malloc(LARGE)) != NULL)
		*(volatile char *)v[n++] = 1;
	if (n == MAX_BLOCKS || errno != ENOMEM)
		return (fail("large blocks did not end with ENOMEM"));
	while (n > 0)
		free(v[--n]);
	if (!half_maps())
		return (fail("the arena kept the address space of the large "
		    "blocks freed: no room to map half the limit"));
	while (n < MAX_BLOCKS && (v[n] = malloc(SMALL)) != NULL)
		*(volatile char *)v[n++] = 1;
	err = errno;
	if (n == MAX_BLOCKS)
		return (fail("the limit was never reached"));
	if (err != ENOMEM)
		return (fail("malloc failed with an errno other than ENOMEM"));
	if (n * SMALL < ((size_t)256 << 20)) {
		fprintf(stderr, "aslimit: only %zu MiB before ENOMEM\n",
		    n * SMALL >> 20);
		return (1);
	}
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	if ((big = malloc(SMALL)) == NULL)
		return (fail("malloc still fails after everything was freed"));
	free(big);
	free(v);
	printf("aslimit: %zu MiB of %d-byte blocks under a %llu MiB "
	    "RLIMIT_AS, then ENOMEM\n", n * SMALL >> 20, SMALL,
	    (unsigned long long)(LIMIT >> 20));
	return (0);
}

int
main(int argc, char **argv)
{
	struct rlimit rl = { LIMIT, LIMIT };

	alarm(120);             /* a malloc that waits for good fails this */
	if (argc > 1 && strcmp(argv[1], "child") == 0)
		return (child());
	if (setrlimit(RLIMIT_AS, &rl) != 0) {
		perror("aslimit: setrlimit(RLIMIT_AS)");
		return (1);
	}
	fflush(stdout);
	execl("/proc/self/exe", argv[0], "child", (char *)NULL);
	perror("aslimit: execl(/proc/self/exe)");
	return (1);
}
