/*
 * debugmalloc.c - the program tests/debug-preload.sh runs with
 * libkmem_malloc.so preloaded and KMEM_DEBUG set: it commits one heap
 * error through the C library's API (argv[1]: double, waf, overrun, inside,
 * reinside, realloc, bigdouble) or does ordinary work that must pass
 * without a report (ok); inside frees a pointer 8 bytes into a block,
 * reinside reallocates it, realloc reallocates a freed block to a size of
 * its class, bigdouble frees a block above the largest class twice.  It
 * first prints "ADDR <p>" on stderr: the block the report must name.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Through a volatile pointer, so the compiler keeps every access. */
static char *volatile blk;

static void *
work(void *arg)
{
	size_t seed = (size_t)arg;
	void *keep[64] = { 0 };

	for (int r = 0; r < 20000; r++) {
		size_t i = (seed = seed * 6364136223846793005ULL + 1) >> 58;
		size_t size = (seed >> 20) % 3000 + 1;

		free(keep[i]);
		keep[i] = malloc(size);
		if (keep[i] == NULL)
			return ((void *)1);
		memset(keep[i], (int)i, size);
		if (r % 7 == 0) {
			char *q = realloc(keep[i], size * 2);

			if (q == NULL)
				return ((void *)1);
			memset(q, 1, size * 2);
			keep[i] = q;
		}
	}
	for (int i = 0; i < 64; i++)
		free(keep[i]);
	return (NULL);
}

int
main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "ok";
	void *anchor;
	bool inside;

	/* An anchor: blk's slab is not emptied (and reaped) when blk is. */
	anchor = malloc(40);
	blk = malloc(40);
	if (blk == NULL || anchor == NULL)
		return (2);
	if (strcmp(what, "bigdouble") == 0) {
		free(blk);
		if ((blk = malloc((size_t)1 << 20)) == NULL)    /* > 128K */
			return (2);
	}
	inside = strcmp(what, "inside") == 0 || strcmp(what, "reinside") == 0;
	fprintf(stderr, "ADDR %p\n", (void *)(inside ? blk + 8 : blk));
	if (strcmp(what, "inside") == 0) {
		char *volatile inner = blk + 8;

		free(inner);            /* not the start of the block */
		free(blk);
	} else if (strcmp(what, "reinside") == 0) {
		char *volatile inner = blk + 8;

		if (realloc(inner, 40) != NULL)  /* not the block's start */
			return (4);
		free(blk);
	} else if (strcmp(what, "double") == 0 ||
	    strcmp(what, "bigdouble") == 0) {
		free(blk);
		free(blk);
	} else if (strcmp(what, "realloc") == 0) {
		char *volatile again;

		free(blk);
		again = realloc(blk, 40);       /* realloc frees blk again */
		(void) again;
	} else if (strcmp(what, "waf") == 0) {
		free(blk);
		blk[1] = 'x';
		blk = malloc(40);      /* the same block again */
		free(blk);
	} else if (strcmp(what, "overrun") == 0) {
		blk[48] = 'x';          /* past the 48-byte class */
		free(blk);
	} else {
		pthread_t t[4];
		void *rc, *aligned = NULL;
		int bad = 0;

		for (size_t i = 0; i < 4; i++)
			if (pthread_create(&t[i], NULL, work, (void *)(i + 1)))
				return (3);
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], &rc);
			bad |= rc != NULL;
		}
		if (posix_memalign(&aligned, 256, 100) != 0 ||
		    ((size_t)aligned & 255) != 0)
			bad = 1;
		free(aligned);
		free(blk);
		free(anchor);
		printf("ok\n");
		return (bad);
	}
	printf("survived\n");
	return (0);
}
