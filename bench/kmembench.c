/*
 * kmembench - libkmem's caches against malloc implementations.
 *
 * The parent runs every scenario for libkmem (kmem_cache_alloc/free) and,
 * in the same run, for glibc malloc and for jemalloc, mimalloc and
 * tcmalloc loaded with LD_PRELOAD into child processes of this program.
 * libkmem-malloc is malloc again, with this build tree's libkmem_malloc.so
 * preloaded (lib/.libs/, found from the program's own path, or in the
 * directory given with -L or $KMEMBENCH_LIBDIR); it is skipped with a note
 * when that is not built.  The best peer is the best of the four malloc
 * implementations; ratio is libkmem's to it, kmalloc ratio libkmem-malloc's.
 * Each measurement is repeated (-r) and the median reported, with min and
 * max.  The repeats are interleaved: round after round, every allocator
 * runs every measurement once in a child process of its own, starting
 * with a different allocator each round, so that a slow spell of a shared
 * machine falls on all of them alike instead of on one allocator's block.
 *
 * Scenarios (object sizes 64, 1024, 16384, 262144 bytes):
 *   pair   allocate one object, write its first byte, free it, repeat
 *   lifo   allocate 256 objects, then free them in reverse order
 *   xfer   producers allocate, consumers free (every free is remote);
 *          a pair is one object's allocation and its free
 *   ctor   an object holding a pthread mutex, a condition variable and a
 *          256-byte buffer, constructed by initialising all three (the
 *          buffer zeroed): libkmem constructs it once per object (the
 *          cache's constructor), malloc does malloc + construct + destroy +
 *          free every time; each cycle writes one byte of the buffer
 * with 1, 2 and 8 threads (xfer: 2 and 8, half producers).
 *
 * ns per pair = wall time x busy CPUs / pairs, where busy CPUs =
 * min(threads, online CPUs): per-CPU cost, comparable across thread counts.
 *
 * usage: kmembench [-d seconds] [-r repeats] [-j out.json] [-q]
 *                  [-s scenario,...] [-z size,...] [-a allocator,...]
 *                  [-L libdir]
 *        -q quick (short runs, for the test suite)
 *        -L where libkmem_malloc.so is
 * internal: kmembench --child NAME  (runs the measurements, prints JSON lines)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libkmem/kmem.h>

#include "peers.h"

#define LIFO_BATCH      256
#define RING            1024
#define MAX_THREADS     64

enum scenario { SC_PAIR, SC_LIFO, SC_XFER, SC_CTOR, NSC };
static const char *const sc_names[NSC] = { "pair", "lifo", "xfer", "ctor" };
static const size_t sizes_all[] = { 64, 1024, 16384, 262144 };
#define NSIZES (int)(sizeof (sizes_all) / sizeof (sizes_all[0]))
static const int threads_all[] = { 1, 2, 8 };
#define NTHR (int)(sizeof (threads_all) / sizeof (threads_all[0]))

static struct bench_peer peers[] = {
	{ "libkmem", NULL, NULL },
	{ "glibc", NULL, NULL },
	{ "jemalloc", "libjemalloc.so.2", NULL },
	{ "mimalloc", "libmimalloc.so.2", NULL },
	{ "tcmalloc", "libtcmalloc_minimal.so.4", NULL },
	{ "libkmem-malloc", NULL, NULL },       /* lib set in main() */
};
#define NPEERS (int)(sizeof (peers) / sizeof (peers[0]))
#define P_KMEM_MALLOC   5       /* not a peer for "best peer" */

static double opt_seconds = 0.25;
static int opt_reps = 3;
static bool opt_quick;
static bool sc_on[NSC] = { true, true, true, true };
static bool size_on[NSIZES] = { true, true, true, true };

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
}

/* ------------------------------------------------------------ allocators */

static bool use_kmem;
static kmem_cache_t *bench_cache;

struct ctor_obj {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	char buf[256];
};

static int
ctor_obj_ctor(void *buf, void *priv, int kmflags)
{
	struct ctor_obj *o = buf;

	(void) priv; (void) kmflags;
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cv, NULL);
	memset(o->buf, 0, sizeof (o->buf));
	return (0);
}

static void
ctor_obj_dtor(void *buf, void *priv)
{
	struct ctor_obj *o = buf;

	(void) priv;
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->lock);
}

static inline void *
b_alloc(size_t size)
{
	return (use_kmem ? kmem_cache_alloc(bench_cache, KM_SLEEP) :
	    malloc(size));
}

static inline void
b_free(void *p)
{
	if (use_kmem)
		kmem_cache_free(bench_cache, p);
	else
		free(p);
}

/* ------------------------------------------------------------ workers */

struct ring {
	_Atomic uint64_t head __attribute__((aligned(64)));
	_Atomic uint64_t tail __attribute__((aligned(64)));
	void *slot[RING];
	_Atomic bool done;
};

struct work {
	pthread_t tid;
	enum scenario sc;
	size_t size;
	struct ring *ring;
	bool producer;
	uint64_t pairs;
};

/*
 * Workers test the stop flag after a round, not before: each does one at
 * least, so a loaded machine that does not run a thread in the whole
 * interval gives a slow figure, not none (zero, or a division by it).
 */
static _Atomic bool go, stop;

static void *
worker(void *arg)
{
	struct work *w = arg;
	uint64_t pairs = 0;
	void *batch[LIFO_BATCH];

	while (!atomic_load_explicit(&go, memory_order_acquire))
		sched_yield();
	switch (w->sc) {
	case SC_PAIR:
		do {
			for (int i = 0; i < 256; i++) {
				char *volatile p = b_alloc(w->size);
				p[0] = (char)i;
				b_free(p);
			}
			pairs += 256;
		} while (!atomic_load_explicit(&stop, memory_order_relaxed));
		break;
	case SC_LIFO:
		do {
			for (int i = 0; i < LIFO_BATCH; i++) {
				batch[i] = b_alloc(w->size);
				*(volatile char *)batch[i] = (char)i;
			}
			for (int i = LIFO_BATCH - 1; i >= 0; i--)
				b_free(batch[i]);
			pairs += LIFO_BATCH;
		} while (!atomic_load_explicit(&stop, memory_order_relaxed));
		break;
	case SC_CTOR:
		do {
			for (int i = 0; i < 64; i++) {
				struct ctor_obj *o;
				if (use_kmem) {
					o = kmem_cache_alloc(bench_cache,
					    KM_SLEEP);
				} else {
					o = malloc(sizeof (*o));
					ctor_obj_ctor(o, NULL, 0);
				}
				((volatile char *)o->buf)[i] = (char)i;
				if (use_kmem) {
					kmem_cache_free(bench_cache, o);
				} else {
					ctor_obj_dtor(o, NULL);
					free(o);
				}
			}
			pairs += 64;
		} while (!atomic_load_explicit(&stop, memory_order_relaxed));
		break;
	case SC_XFER: {
		struct ring *r = w->ring;
		if (w->producer) {
			do {
				uint64_t t = atomic_load_explicit(&r->tail,
				    memory_order_relaxed);
				void *p;

				if (t - atomic_load_explicit(&r->head,
				    memory_order_acquire) == RING) {
					sched_yield();
					continue;
				}
				p = b_alloc(w->size);
				*(volatile char *)p = 1;
				r->slot[t % RING] = p;
				atomic_store_explicit(&r->tail, t + 1,
				    memory_order_release);
			} while (!atomic_load_explicit(&stop,
			    memory_order_relaxed));
			atomic_store(&r->done, true);
		} else {
			for (;;) {
				uint64_t h = atomic_load_explicit(&r->head,
				    memory_order_relaxed);
				if (h == atomic_load_explicit(&r->tail,
				    memory_order_acquire)) {
					if (atomic_load(&r->done) && h ==
					    atomic_load(&r->tail))
						break;
					sched_yield();
					continue;
				}
				b_free(r->slot[h % RING]);
				atomic_store_explicit(&r->head, h + 1,
				    memory_order_release);
				pairs++;
			}
		}
		break;
	}
	default:
		break;
	}
	w->pairs = pairs;
	return (NULL);
}

/* One measurement: ns per pair, or -1 when it does not apply. */
static double
measure(enum scenario sc, size_t size, int nthreads)
{
	struct work w[MAX_THREADS];
	struct ring *rings = NULL;
	uint64_t pairs = 0;
	int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	double t0, t1;

	if (sc == SC_XFER && nthreads < 2)
		return (-1);
	if (use_kmem) {
		bench_cache = sc == SC_CTOR ?
		    kmem_cache_create("bench_ctor", sizeof (struct ctor_obj),
		    0, ctor_obj_ctor, ctor_obj_dtor, NULL, NULL, NULL, 0) :
		    kmem_cache_create("bench", size, 0, NULL, NULL, NULL,
		    NULL, NULL, 0);
		if (bench_cache == NULL) {
			fprintf(stderr, "kmembench: cannot create a cache of "
			    "%zu bytes\n", size);
			exit(1);
		}
	}
	if (sc == SC_XFER) {
		rings = aligned_alloc(64, sizeof (*rings) *
		    (size_t)(nthreads / 2));
		memset(rings, 0, sizeof (*rings) * (size_t)(nthreads / 2));
	}
	atomic_store(&go, false);
	atomic_store(&stop, false);
	for (int i = 0; i < nthreads; i++) {
		w[i] = (struct work){ .sc = sc, .size = size };
		if (sc == SC_XFER) {
			w[i].ring = &rings[i / 2];
			w[i].producer = (i % 2) == 0;
		}
		pthread_create(&w[i].tid, NULL, worker, &w[i]);
	}
	t0 = now();
	atomic_store_explicit(&go, true, memory_order_release);
	usleep((useconds_t)(opt_seconds * 1e6));
	atomic_store(&stop, true);
	for (int i = 0; i < nthreads; i++) {
		pthread_join(w[i].tid, NULL);
		pairs += w[i].pairs;
	}
	t1 = now();
	free(rings);
	if (use_kmem) {
		kmem_cache_destroy(bench_cache);
		bench_cache = NULL;
	}
	if (pairs == 0)
		return (-1);
	return ((t1 - t0) * 1e9 * (nthreads < ncpu ? nthreads : ncpu) /
	    (double)pairs);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x < y ? -1 : x > y);
}

/* The child: every measurement, one JSON line each. */
static int
run_child(const char *name)
{
	use_kmem = strcmp(name, "libkmem") == 0;
	for (int sc = 0; sc < NSC; sc++) {
		if (!sc_on[sc])
			continue;
		for (int z = 0; z < NSIZES; z++) {
			size_t size = sc == SC_CTOR ? sizeof (struct ctor_obj) :
			    sizes_all[z];
			if (!size_on[z] || (sc == SC_CTOR && z > 0))
				continue;
			for (int t = 0; t < NTHR; t++) {
				double v[16];
				int n = 0;

				for (int r = 0; r < opt_reps; r++) {
					double ns = measure((enum scenario)sc,
					    size, threads_all[t]);
					if (ns > 0)
						v[n++] = ns;
				}
				if (n == 0)
					continue;
				qsort(v, (size_t)n, sizeof (double),
				    cmp_double);
				printf("{\"allocator\":\"%s\",\"scenario\":"
				    "\"%s\",\"size\":%zu,\"threads\":%d,"
				    "\"ns_per_pair\":%.3f,\"min\":%.3f,"
				    "\"max\":%.3f,\"repeats\":%d}\n", name,
				    sc_names[sc], size, threads_all[t],
				    v[n / 2], v[0], v[n - 1], n);
				fflush(stdout);
			}
		}
	}
	return (0);
}

/* ------------------------------------------------------------ parent */

struct result {
	int peer;
	enum scenario sc;
	size_t size;
	int threads;
	double v[16];           /* one per round */
	int n;
	double ns, min, max;    /* median, min, max of v */
};

static struct result results[NPEERS * NSC * NSIZES * NTHR];
static int nresults;

static const struct result *find(int peer, enum scenario sc, size_t size,
    int threads);

/* A child's line: one round's value of one measurement. */
static void
collect(const char *line, void *arg)
{
	struct result in = { .peer = *(int *)arg }, *r;
	char sc[16];
	double lo, hi;

	if (sscanf(line, "{\"allocator\":\"%*[^\"]\",\"scenario\":"
	    "\"%15[^\"]\",\"size\":%zu,\"threads\":%d,\"ns_per_pair\":"
	    "%lf,\"min\":%lf,\"max\":%lf", sc, &in.size, &in.threads,
	    &in.v[0], &lo, &hi) != 6)
		return;
	for (int s = 0; s < NSC; s++)
		if (strcmp(sc, sc_names[s]) == 0)
			in.sc = (enum scenario)s;
	r = (struct result *)find(in.peer, in.sc, in.size, in.threads);
	if (r == NULL) {
		r = &results[nresults++];
		*r = in;
	} else if (r->n < 16) {
		r->v[r->n] = in.v[0];
	}
	r->n++;
	fprintf(stderr, ".");
}

/* Each measurement's median, min and max over the rounds. */
static void
summarise(void)
{
	for (int i = 0; i < nresults; i++) {
		struct result *r = &results[i];
		int n = r->n < 16 ? r->n : 16;

		qsort(r->v, (size_t)n, sizeof (double), cmp_double);
		r->ns = r->v[n / 2];
		r->min = r->v[0];
		r->max = r->v[n - 1];
	}
}

static bool
run_peer(int p, char **argv_child)
{
	argv_child[2] = (char *)peers[p].name;
	return (bench_run_peer(&peers[p], argv_child, collect, &p) == 0);
}

static const struct result *
find(int peer, enum scenario sc, size_t size, int threads)
{
	for (int i = 0; i < nresults; i++)
		if (results[i].peer == peer && results[i].sc == sc &&
		    results[i].size == size && results[i].threads == threads)
			return (&results[i]);
	return (NULL);
}

/* A table column: as wide as the allocator's name, at least 9. */
static int
col_width(int p)
{
	int n = (int)strlen(peers[p].name);

	return (n > 9 ? n : 9);
}

static bool
parse_list(const char *arg, const char *const *names, int n, bool *on)
{
	char *copy = strdup(arg), *tok, *save;
	bool any = false;

	memset(on, 0, sizeof (bool) * (size_t)n);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		int i;
		for (i = 0; i < n && strcmp(tok, names[i]) != 0; i++)
			;
		if (i == n) {
			fprintf(stderr, "kmembench: unknown '%s'\n", tok);
			free(copy);
			return (false);
		}
		on[i] = true;
		any = true;
	}
	free(copy);
	if (!any)	/* "" or ",": it would run nothing and exit 0 */
		fprintf(stderr, "kmembench: an empty list: '%s'\n", arg);
	return (any);
}

int
main(int argc, char **argv)
{
	const char *json = NULL, *libdir = NULL;
	char *kmalloc_lib;
	bool peer_on[NPEERS];
	char *child_argv[16];
	int ca = 0, opt;
	char dbuf[32], rbuf[32], *end;
	long lv;

	for (int p = 0; p < NPEERS; p++)
		peer_on[p] = true;
	if (argc >= 2 && strcmp(argv[1], "--child") == 0) {
		if (argc != 7 || strlen(argv[5]) < NSC ||
		    strlen(argv[6]) < NSIZES) {
			fprintf(stderr, "kmembench: --child is kmembench's "
			    "own: --child NAME seconds reps scenarios sizes\n");
			return (2);
		}
		/* argv: --child NAME seconds reps scenarios sizes */
		opt_seconds = atof(argv[3]);
		opt_reps = atoi(argv[4]);
		for (int s = 0; s < NSC; s++)
			sc_on[s] = argv[5][s] == '1';
		for (int z = 0; z < NSIZES; z++)
			size_on[z] = argv[6][z] == '1';
		return (run_child(argv[2]));
	}
	while ((opt = getopt(argc, argv, "d:r:j:qs:z:a:L:h")) != -1) {
		switch (opt) {
		case 'd':
			/* !(x > 0): refuses NaN too; end: refuses "1s". */
			opt_seconds = strtod(optarg, &end);
			if (end == optarg || *end != '\0' ||
			    !(opt_seconds > 0 && opt_seconds <= 60)) {
				fprintf(stderr, "kmembench: -d wants 0 < "
				    "seconds <= 60, got '%s'\n", optarg);
				return (2);
			}
			break;
		case 'r':
			errno = 0;
			lv = strtol(optarg, &end, 10);
			if (end == optarg || *end != '\0' || errno != 0 ||
			    lv < 1 || lv > 16) {
				fprintf(stderr, "kmembench: -r wants 1..16, "
				    "got '%s'\n", optarg);
				return (2);
			}
			opt_reps = (int)lv;
			break;
		case 'j':
			json = optarg;
			break;
		case 'q':
			opt_quick = true;
			opt_seconds = 0.02;
			opt_reps = 1;
			break;
		case 's':
			if (!parse_list(optarg, sc_names, NSC, sc_on))
				return (2);
			break;
		case 'z': {
			static const char *const zn[] = { "64", "1024",
			    "16384", "262144" };
			if (!parse_list(optarg, zn, NSIZES, size_on))
				return (2);
			break;
		}
		case 'a': {
			const char *pn[NPEERS];
			for (int p = 0; p < NPEERS; p++)
				pn[p] = peers[p].name;
			if (!parse_list(optarg, pn, NPEERS, peer_on))
				return (2);
			break;
		}
		case 'L':
			libdir = optarg;
			break;
		default:
			fprintf(stderr, "usage: kmembench [-d seconds] [-r "
			    "repeats] [-j out.json] [-q] [-s scenario,...] "
			    "[-z size,...] [-a allocator,...] [-L libdir]\n");
			return (opt == 'h' ? 0 : 2);
		}
	}

	kmalloc_lib = bench_kmalloc_lib(libdir, &peer_on[P_KMEM_MALLOC]);
	peers[P_KMEM_MALLOC].lib = kmalloc_lib;

	snprintf(dbuf, sizeof (dbuf), "%g", opt_seconds);
	snprintf(rbuf, sizeof (rbuf), "%d", 1);        /* a round each */
	child_argv[ca++] = argv[0];
	child_argv[ca++] = (char *)"--child";
	child_argv[ca++] = NULL;                        /* peer name */
	child_argv[ca++] = dbuf;
	child_argv[ca++] = rbuf;
	char scs[NSC + 1], szs[NSIZES + 1];
	for (int s = 0; s < NSC; s++)
		scs[s] = sc_on[s] ? '1' : '0';
	scs[NSC] = '\0';
	for (int z = 0; z < NSIZES; z++)
		szs[z] = size_on[z] ? '1' : '0';
	szs[NSIZES] = '\0';
	child_argv[ca++] = scs;
	child_argv[ca++] = szs;
	child_argv[ca] = NULL;

	fprintf(stderr, "kmembench: %ld CPUs, %g s x %d per measurement\n",
	    sysconf(_SC_NPROCESSORS_ONLN), opt_seconds, opt_reps);
	int on[NPEERS], non = 0;

	for (int p = 0; p < NPEERS; p++)
		if (peer_on[p])
			on[non++] = p;
	for (int r = 0; r < opt_reps; r++) {
		fprintf(stderr, "round %d:", r + 1);
		for (int i = 0; i < non; i++) {
			int p = on[(r + i) % non];

			fprintf(stderr, " %s ", peers[p].name);
			if (!run_peer(p, child_argv) && p == 0)
				return (1);
		}
		fprintf(stderr, "\n");
	}
	summarise();

	printf("ns per pair, median of %d (lower is better); ratio = libkmem "
	    "/ best peer", opt_reps);
	if (peer_on[P_KMEM_MALLOC])
		printf("; kmalloc ratio = libkmem-malloc / best peer");
	printf("\n");
	printf("%-5s %7s %3s", "case", "size", "thr");
	for (int p = 0; p < NPEERS; p++)
		if (p != P_KMEM_MALLOC || peer_on[p])
			printf(" %*s", col_width(p), peers[p].name);
	printf(" %9s %7s", "best peer", "ratio");
	if (peer_on[P_KMEM_MALLOC])
		printf(" %13s", "kmalloc ratio");
	printf("\n");
	for (int sc = 0; sc < NSC; sc++) {
		for (int z = 0; z < NSIZES; z++) {
			size_t size = sc == SC_CTOR ?
			    sizeof (struct ctor_obj) : sizes_all[z];
			if (sc == SC_CTOR && z > 0)
				continue;
			for (int t = 0; t < NTHR; t++) {
				const struct result *k = find(0,
				    (enum scenario)sc, size, threads_all[t]);
				const struct result *km = find(P_KMEM_MALLOC,
				    (enum scenario)sc, size, threads_all[t]);
				double best = 0;
				int bestp = -1;
				if (k == NULL && km == NULL)
					continue;
				printf("%-5s %7zu %3d", sc_names[sc], size,
				    threads_all[t]);
				for (int p = 0; p < NPEERS; p++) {
					const struct result *r = find(p,
					    (enum scenario)sc, size,
					    threads_all[t]);
					if (p == P_KMEM_MALLOC && !peer_on[p])
						continue;
					if (r == NULL) {
						printf(" %*s", col_width(p),
						    "-");
						continue;
					}
					printf(" %*.2f", col_width(p), r->ns);
					if (p > 0 && p != P_KMEM_MALLOC &&
					    (bestp < 0 || r->ns < best)) {
						best = r->ns;
						bestp = p;
					}
				}
				if (bestp < 0)
					printf(" %9s %7s", "-", "-");
				else if (k == NULL)
					printf(" %9s %7s", peers[bestp].name,
					    "-");
				else
					printf(" %9s %6.2fx",
					    peers[bestp].name, k->ns / best);
				if (peer_on[P_KMEM_MALLOC]) {
					if (bestp < 0 || km == NULL)
						printf(" %13s", "-");
					else
						printf(" %12.2fx", km->ns /
						    best);
				}
				printf("\n");
			}
		}
	}

	if (json != NULL) {
		FILE *f = fopen(json, "w");
		if (f == NULL) {
			fprintf(stderr, "kmembench: cannot write %s: %s\n",
			    json, strerror(errno));
			return (1);
		}
		fprintf(f, "{\"benchmark\":\"kmembench\",\"cpus\":%ld,"
		    "\"seconds\":%g,\"repeats\":%d,\"results\":[",
		    sysconf(_SC_NPROCESSORS_ONLN), opt_seconds, opt_reps);
		for (int i = 0; i < nresults; i++) {
			const struct result *r = &results[i];
			fprintf(f, "%s{\"allocator\":\"%s\",\"scenario\":"
			    "\"%s\",\"size\":%zu,\"threads\":%d,"
			    "\"ns_per_pair\":%.3f,\"min\":%.3f,\"max\":%.3f}",
			    i ? "," : "", peers[r->peer].name,
			    sc_names[r->sc], r->size, r->threads, r->ns,
			    r->min, r->max);
		}
		fprintf(f, "]}\n");
		fclose(f);
	}
	free(kmalloc_lib);
	return (0);
}
