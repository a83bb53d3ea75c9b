/*
 * reallocbench - growing buffers with realloc: libkmem_malloc.so against
 * glibc, jemalloc, mimalloc and tcmalloc, all in the same run.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A program that appends to a buffer and reallocs it a step at a time
 * (a log, a string builder, a growing array) costs time in proportion to
 * the final size when the allocator extends or moves the buffer's pages,
 * and in proportion to its square when it copies them.  Scenarios:
 *
 *   one     one buffer grows from one step to the maximum, a step at a
 *           time, the new part written after each realloc
 *   two     two buffers grow in turns (neither can simply extend into
 *           the address space after it every time)
 *   calloc  one buffer of the maximum size from calloc, used sparsely (a
 *           byte written in every 64th page, as a large table that fills
 *           slowly), then freed: a calloc that clears memory the kernel
 *           hands out zeroed anyway costs time and memory in proportion
 *           to the whole size, not to the part used
 *
 * Each allocator runs in a child process (see peers.h); each scenario is
 * repeated and the median time is printed with the spread, and the ratio
 * of libkmem-malloc to the best of the four peers.
 *
 * usage: reallocbench [-s step_KiB] [-m max_MiB] [-r repeats] [-j out.json]
 *        [-L libdir]
 * internal: reallocbench --child STEP MAX REPEATS
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "peers.h"

static struct bench_peer peers[] = {
	{ "libkmem-malloc", NULL, NULL },       /* lib set in main() */
	{ "glibc", NULL, NULL },
	{ "jemalloc", "libjemalloc.so.2", NULL },
	{ "mimalloc", "libmimalloc.so.2", NULL },
	{ "tcmalloc", "libtcmalloc_minimal.so.4", NULL },
};
#define NPEERS  (int)(sizeof (peers) / sizeof (peers[0]))
#define NSC     3
#define SC_CALLOC 2
#define MAXREPS 31
static const char *const sc_names[NSC] = { "one", "two", "calloc" };

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6);
}

/* nbuf buffers grown in turns by step to max bytes; ms, or -1. */
static double
grow(int nbuf, size_t step, size_t max)
{
	char *buf[2];
	size_t size = step;
	double t0 = now_ms();

	for (int i = 0; i < nbuf; i++) {
		if ((buf[i] = malloc(size)) == NULL)
			return (-1);
		memset(buf[i], i + 1, size);
	}
	while (size < max) {
		for (int i = 0; i < nbuf; i++) {
			char *q = realloc(buf[i], size + step);

			if (q == NULL || q[size - 1] != (char)(i + 1))
				return (-1);
			memset(q + size, i + 1, step);
			buf[i] = q;
		}
		size += step;
	}
	for (int i = 0; i < nbuf; i++)
		free(buf[i]);
	return (now_ms() - t0);
}

/* A size-byte calloc, a byte written every 64 pages, freed; ms, or -1. */
static double
sparse_calloc(size_t size)
{
	size_t stride = 64 * (size_t)sysconf(_SC_PAGESIZE);
	double t0 = now_ms();
	char *p = calloc(1, size);

	if (p == NULL)
		return (-1);
	for (size_t off = 0; off < size; off += stride) {
		if (p[off] != 0 || p[size - 1 - off] != 0)
			return (-1);
		p[off] = 1;
	}
	free(p);
	return (now_ms() - t0);
}

static int
run_child(size_t step, size_t max, int reps)
{
	for (int s = 0; s < NSC; s++) {
		for (int r = 0; r < reps; r++) {
			double ms = s == SC_CALLOC ? sparse_calloc(max) :
			    grow(s + 1, step, max);

			if (ms < 0) {
				fprintf(stderr, "reallocbench: %s: an "
				    "allocation failed, or contents were "
				    "lost or not zero\n", sc_names[s]);
				return (1);
			}
			printf("%d %.3f\n", s, ms);
			fflush(stdout);
		}
	}
	return (0);
}

static double times[NPEERS][NSC][MAXREPS];
static int ntimes[NPEERS][NSC];

static void
collect(const char *text, void *arg)
{
	int p = *(int *)arg, s;
	double ms;

	if (sscanf(text, "%d %lf", &s, &ms) == 2 && s >= 0 && s < NSC &&
	    ntimes[p][s] < MAXREPS)
		times[p][s][ntimes[p][s]++] = ms;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return ((x > y) - (x < y));
}

/* Median of peer p's runs of scenario s (sorted in place), or -1. */
static double
median(int p, int s)
{
	int n = ntimes[p][s];

	if (n == 0)
		return (-1);
	qsort(times[p][s], (size_t)n, sizeof (double), cmp_double);
	return (n % 2 ? times[p][s][n / 2] :
	    (times[p][s][n / 2 - 1] + times[p][s][n / 2]) / 2);
}

int
main(int argc, char **argv)
{
	long step_k = 64, max_m = 256, reps = 3;
	const char *json = NULL, *libdir = NULL;
	char sbuf[32], mbuf[32], rbuf[32];
	char *child_argv[6];
	bool kmalloc = true;
	FILE *jf = NULL;
	unsigned long long v;
	int opt;

	if (argc == 5 && strcmp(argv[1], "--child") == 0)
		return (run_child((size_t)atol(argv[2]), (size_t)atol(argv[3]),
		    atoi(argv[4])));
	while ((opt = getopt(argc, argv, "s:m:r:j:L:h")) != -1) {
		switch (opt) {
		case 's':
		case 'm':
		case 'r':
			/* Checked below; here: a whole number, or 0. */
			if (!bench_num(optarg, 1ULL << 30, &v))
				v = 0;
			if (opt == 's')
				step_k = (long)v;
			else if (opt == 'm')
				max_m = (long)v;
			else
				reps = (long)v;
			break;
		case 'j': json = optarg; break;
		case 'L': libdir = optarg; break;
		default:
			fprintf(stderr, "usage: reallocbench [-s step_KiB] "
			    "[-m max_MiB] [-r repeats] [-j out.json] "
			    "[-L libdir]\n");
			return (opt == 'h' ? 0 : 2);
		}
	}
	if (step_k < 1 || max_m < 1 || (size_t)max_m << 10 < (size_t)step_k ||
	    reps < 1 || reps > MAXREPS) {
		fprintf(stderr, "reallocbench: need step >= 1 KiB, max >= "
		    "step and 1 <= repeats <= %d\n", MAXREPS);
		return (2);
	}
	peers[0].lib = bench_kmalloc_lib(libdir, &kmalloc);
	snprintf(sbuf, sizeof (sbuf), "%zu", (size_t)step_k << 10);
	snprintf(mbuf, sizeof (mbuf), "%zu", (size_t)max_m << 20);
	snprintf(rbuf, sizeof (rbuf), "%ld", reps);
	child_argv[0] = argv[0];
	child_argv[1] = (char *)"--child";
	child_argv[2] = sbuf;
	child_argv[3] = mbuf;
	child_argv[4] = rbuf;
	child_argv[5] = NULL;
	for (int p = kmalloc ? 0 : 1; p < NPEERS; p++) {
		fprintf(stderr, "reallocbench: %s\n", peers[p].name);
		(void) bench_run_peer(&peers[p], child_argv, collect, &p);
	}

	if (json != NULL && (jf = fopen(json, "w")) == NULL) {
		perror(json);
		return (1);
	}
	printf("reallocbench: buffers grown by %ld KiB to %ld MiB; ms, median "
	    "of %ld (min-max)\n", step_k, max_m, reps);
	printf("%-8s %-16s %10s %21s %7s\n", "scenario", "allocator", "ms",
	    "spread", "ratio");
	if (jf != NULL)
		fprintf(jf, "{\"bench\": \"reallocbench\", \"step_kib\": %ld, "
		    "\"max_mib\": %ld, \"repeats\": %ld, \"results\": [",
		    step_k, max_m, reps);
	for (int s = 0, first = 1; s < NSC; s++) {
		double best = -1, med[NPEERS];

		for (int p = 0; p < NPEERS; p++) {
			med[p] = median(p, s);
			if (p != 0 && med[p] >= 0 && (best < 0 || med[p] < best))
				best = med[p];
		}
		for (int p = 0; p < NPEERS; p++) {
			int n = ntimes[p][s];

			if (med[p] < 0)
				continue;
			printf("%-8s %-16s %10.1f %10.1f-%-10.1f", sc_names[s],
			    peers[p].name, med[p], times[p][s][0],
			    times[p][s][n - 1]);
			if (p == 0 && best > 0)
				printf(" %7.2f", med[p] / best);
			printf("\n");
			if (jf != NULL)
				fprintf(jf, "%s\n {\"scenario\": \"%s\", "
				    "\"allocator\": \"%s\", \"ms\": %.3f, "
				    "\"min\": %.3f, \"max\": %.3f}",
				    first ? "" : ",", sc_names[s],
				    peers[p].name, med[p], times[p][s][0],
				    times[p][s][n - 1]);
			first = 0;
		}
	}
	printf("ratio: libkmem-malloc / best of glibc, jemalloc, mimalloc, "
	    "tcmalloc (lower is better)\n");
	if (jf != NULL) {
		fprintf(jf, "\n]}\n");
		fclose(jf);
	}
	free((void *)peers[0].lib);
	return (0);
}
