/*
 * growbench - allocation latency while a cache grows from empty.
 *
 * One thread allocates objects (1 KiB by default) until 2 GiB are live,
 * timing every allocation together with the first write to the object (so
 * that first-touch page faults count the same for every allocator, wherever
 * it touches memory), and reports the latency percentiles.  libkmem runs
 * with and without grow-ahead; glibc malloc, jemalloc, mimalloc and
 * tcmalloc run in the same invocation, each in a child process (LD_PRELOAD).
 *
 * On a virtual machine the first process to touch memory that has not
 * been used for a while pays the host's faults too (seen here: p99 of
 * 11 us instead of 2 us for whichever allocator ran first).  So one
 * unmeasured run warms the memory first, every allocator runs 'repeats'
 * times in rotating order, and the medians of the percentiles are
 * reported, with the spread of p99.9.
 *
 * usage: growbench [-m MiB] [-s object-size] [-r repeats] [-j out.json] [-q]
 *        -q: quick (64 MiB, one repeat, for the test suite)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
/* TSC reads, fenced so that the allocation lies between them. */
static inline uint64_t
tick(void)
{
	uint64_t t;

	_mm_lfence();
	t = __rdtsc();
	_mm_lfence();
	return (t);
}
#else
static inline uint64_t tick(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec);
}
#endif

#include <libkmem/kmem.h>

#include "peers.h"

static const struct bench_peer peers[] = {
	{ "libkmem", NULL, NULL },
	{ "libkmem-no-ahead", NULL, "KMEM_CACHE_GROW_AHEAD=0" },
	{ "glibc", NULL, NULL },
	{ "jemalloc", "libjemalloc.so.2", NULL },
	{ "mimalloc", "libmimalloc.so.2", NULL },
	{ "tcmalloc", "libtcmalloc_minimal.so.4", NULL },
};
#define NPEERS (int)(sizeof (peers) / sizeof (peers[0]))

struct lat {
	double p50, p99, p999, max, total_s;
	bool ok;
};

#define MAX_REPS 9

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x < y ? -1 : x > y);
}

/* The child: grow to 'bytes' of 'size'-byte objects, print one line. */
static int
run_child(const char *name, size_t bytes, size_t size)
{
	size_t n = bytes / size;
	uint32_t *cycles = malloc(n * sizeof (uint32_t));
	void **objs = malloc(n * sizeof (void *));
	bool kmem = strncmp(name, "libkmem", 7) == 0;
	kmem_cache_t *cp = NULL;
	double t0, t1, per_ns;
	uint64_t c0, c1;

	if (cycles == NULL || objs == NULL)
		return (1);
	if (kmem)
		cp = kmem_cache_create("grow", size, 0, NULL, NULL, NULL,
		    NULL, NULL, 0);
	t0 = now();
	c0 = tick();
	for (size_t i = 0; i < n; i++) {
		uint64_t a, b;
		char *p;

		a = tick();
		p = kmem ? kmem_cache_alloc(cp, KM_SLEEP) : malloc(size);
		p[0] = (char)i;
		b = tick();
		cycles[i] = b - a > UINT32_MAX ? UINT32_MAX : (uint32_t)(b - a);
		objs[i] = p;
	}
	c1 = tick();
	t1 = now();
	per_ns = (double)(c1 - c0) / ((t1 - t0) * 1e9);   /* ticks per ns */
	qsort(cycles, n, sizeof (uint32_t), cmp_u32);
	printf("%s %.1f %.1f %.1f %.1f %.3f\n", name,
	    cycles[n / 2] / per_ns, cycles[n * 99 / 100] / per_ns,
	    cycles[n * 999 / 1000] / per_ns, cycles[n - 1] / per_ns, t1 - t0);
	if (kmem) {
		struct kmem_cache_stats st;

		kmem_cache_stats(cp, &st);
		fprintf(stderr, "  %s: %llu slabs grown in the background, %llu "
		    "allocations waited for growth, %llu deadlocks\n", name,
		    (unsigned long long)st.slab_grows,
		    (unsigned long long)st.grow_waits,
		    (unsigned long long)st.obj_deadlock);
	}
	for (size_t i = 0; i < n; i++) {
		if (kmem)
			kmem_cache_free(cp, objs[i]);
		else
			free(objs[i]);
	}
	if (kmem)
		kmem_cache_destroy(cp);
	return (0);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x < y ? -1 : x > y);
}

/* The median of n values (sorted in place). */
static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof (double), cmp_double);
	return (v[n / 2]);
}

static void
collect(const char *line, void *arg)
{
	struct lat *l = arg;
	char name[64];

	if (sscanf(line, "%63s %lf %lf %lf %lf %lf", name, &l->p50, &l->p99,
	    &l->p999, &l->max, &l->total_s) == 6)
		l->ok = true;
}

int
main(int argc, char **argv)
{
	size_t mib = 2048, size = 1024;
	const char *json = NULL;
	struct lat runs[NPEERS][MAX_REPS], res[NPEERS];
	double lo999[NPEERS], hi999[NPEERS];
	int nrun[NPEERS] = { 0 };
	char mbuf[32], sbuf[32];
	char *child[6];
	int opt, best = -1, reps = 3;
	unsigned long long num;

	if (argc == 5 && strcmp(argv[1], "--child") == 0)
		return (run_child(argv[2], strtoull(argv[3], NULL, 10) << 20,
		    strtoull(argv[4], NULL, 10)));
	while ((opt = getopt(argc, argv, "m:s:r:j:qh")) != -1) {
		switch (opt) {
		case 'm':
		case 's':
		case 'r':
			/* Ranges below; here: a whole number, or 0. */
			if (!bench_num(optarg, 1ULL << 30, &num))
				num = 0;
			if (opt == 'm')
				mib = (size_t)num;
			else if (opt == 's')
				size = (size_t)num;
			else
				reps = (int)num;
			break;
		case 'j':
			json = optarg;
			break;
		case 'q':
			mib = 64;
			reps = 1;
			break;
		default:
			fprintf(stderr, "usage: growbench [-m MiB] [-s size] "
			    "[-r repeats] [-j out.json] [-q]\n");
			return (opt == 'h' ? 0 : 2);
		}
	}
	if (mib == 0 || mib > 65536 || size < 8 || size > (1 << 20) ||
	    reps < 1 || reps > MAX_REPS) {
		fprintf(stderr, "growbench: want 1..65536 MiB, sizes "
		    "8..1048576 and 1..%d repeats, got %zu MiB of %zu bytes, "
		    "%d repeats\n", MAX_REPS, mib, size, reps);
		return (2);
	}
	snprintf(mbuf, sizeof (mbuf), "%zu", mib);
	snprintf(sbuf, sizeof (sbuf), "%zu", size);
	child[0] = argv[0];
	child[1] = (char *)"--child";
	child[3] = mbuf;
	child[4] = sbuf;
	child[5] = NULL;

	/* Warm the memory up: one run nobody is measured by. */
	{
		struct lat warm = { 0 };
		child[2] = (char *)peers[2].name;
		(void) bench_run_peer(&peers[2], child, collect, &warm);
	}
	for (int r = 0; r < reps; r++) {
		for (int k = 0; k < NPEERS; k++) {
			int p = (k + r) % NPEERS;       /* rotate the order */
			struct lat l = { 0 };

			child[2] = (char *)peers[p].name;
			if (bench_run_peer(&peers[p], child, collect, &l) == 0
			    && l.ok)
				runs[p][nrun[p]++] = l;
			else if (p == 0)
				return (1);
		}
	}

	printf("growbench: one thread grows to %zu MiB of %zu-byte objects; "
	    "latency of alloc + first write, ns; median of %d runs\n", mib,
	    size, reps);
	printf("%-18s %9s %9s %9s %11s %9s   %s\n", "allocator", "p50", "p99",
	    "p99.9", "max", "total s", "p99.9 min..max");
	for (int p = 0; p < NPEERS; p++) {
		double v[MAX_REPS];

		memset(&res[p], 0, sizeof (res[p]));
		if (nrun[p] == 0)
			continue;
		res[p].ok = true;
#define MED(field) do {                                                 \
	for (int i = 0; i < nrun[p]; i++)                               \
		v[i] = runs[p][i].field;                                \
	res[p].field = median(v, nrun[p]);                              \
} while (0)
		MED(p50);
		MED(p99);
		MED(max);
		MED(total_s);
		MED(p999);
#undef MED
		lo999[p] = v[0];
		hi999[p] = v[nrun[p] - 1];
		printf("%-18s %9.1f %9.1f %9.1f %11.1f %9.3f   %.1f..%.1f\n",
		    peers[p].name, res[p].p50, res[p].p99, res[p].p999,
		    res[p].max, res[p].total_s, lo999[p], hi999[p]);
		if (p >= 2 && (best < 0 || res[p].p999 < res[best].p999))
			best = p;
	}
	if (best >= 0)
		printf("p99.9 ratio to the best peer (%s): libkmem %.2fx, "
		    "without grow-ahead %.2fx\n", peers[best].name,
		    res[0].p999 / res[best].p999,
		    res[1].ok ? res[1].p999 / res[best].p999 : 0.0);
	if (json != NULL) {
		FILE *f = fopen(json, "w");
		if (f == NULL) {
			fprintf(stderr, "growbench: cannot write %s: %s\n",
			    json, strerror(errno));
			return (1);
		}
		fprintf(f, "{\"benchmark\":\"growbench\",\"mib\":%zu,"
		    "\"size\":%zu,\"repeats\":%d,\"results\":[", mib, size,
		    reps);
		for (int p = 0, first = 1; p < NPEERS; p++) {
			if (!res[p].ok)
				continue;
			fprintf(f, "%s{\"allocator\":\"%s\",\"p50_ns\":%.1f,"
			    "\"p99_ns\":%.1f,\"p999_ns\":%.1f,\"max_ns\":%.1f,"
			    "\"total_s\":%.3f,\"p999_min_ns\":%.1f,"
			    "\"p999_max_ns\":%.1f}", first ? "" : ",",
			    peers[p].name, res[p].p50, res[p].p99,
			    res[p].p999, res[p].max, res[p].total_s,
			    lo999[p], hi999[p]);
			first = 0;
		}
		fprintf(f, "]}\n");
		fclose(f);
	}
	return (0);
}
