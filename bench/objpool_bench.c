/*
 * objpool_bench - the test_objpool cases (sync, sync overrun, async) on
 * libkmem's objpool and, in the same run and with the same workload, on a
 * mutex-protected free list and a lock-free Treiber stack.
 *
 * Each case runs with one thread per CPU (pinned, like the kernel test's
 * per-CPU threads) and oversubscribed (8 threads per CPU, free to migrate).
 * Output: the seed's "Summary of testcases" lines, then a table of hits per
 * second and objpool's ratio to the two baselines; -j adds JSON.
 *
 *   sync          each thread pops 1 object, touches it, pushes it back;
 *                 the pool has 16 objects per thread (never runs dry)
 *   sync overrun  each thread pops a bulk of 16, then pushes them back;
 *                 the pool has 8 objects per thread, so pops miss
 *   async         half the threads pop and hand objects through a
 *                 single-producer ring to a partner thread, which pushes
 *                 them back from another CPU
 *
 * usage: objpool_bench [-d seconds] [-j file.json]
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

#include <libkmem/objpool.h>

#define OBJ_SIZE        64
#define KMEM_BENCH_LINE __attribute__((aligned(64)))

/* ------------------------------------------------------------ the pools */

struct node {
	_Atomic uint32_t next;          /* Treiber link: index + 1, 0 = end */
	uint32_t index;
	struct node *link;              /* mutex free list link */
	uint64_t touched;
	char pad[OBJ_SIZE - 24];
};

struct pool_ops {
	const char *name;
	int (*create)(int nr);
	void (*destroy)(void);
	void *(*pop)(void);
	void (*push)(void *);
};

static struct node *nodes;

/* libkmem objpool: objects handed out are the pool's own. */
static struct objpool_head op;

static int op_create(int nr)
{
	return (objpool_init(&op, nr, sizeof (struct node), NULL, NULL, NULL));
}
static void op_destroy(void) { objpool_fini(&op); }
static void *op_pop(void) { return (objpool_pop(&op)); }
static void op_push(void *o) { (void) objpool_push(o, &op); }

/* A singly linked free list behind one mutex. */
static pthread_mutex_t ml_lock = PTHREAD_MUTEX_INITIALIZER;
static struct node *ml_head;

static int ml_create(int nr)
{
	nodes = calloc((size_t)nr, sizeof (struct node));
	if (nodes == NULL)
		return (-ENOMEM);
	ml_head = NULL;
	for (int i = nr - 1; i >= 0; i--) {
		nodes[i].link = ml_head;
		ml_head = &nodes[i];
	}
	return (0);
}
static void ml_destroy(void) { free(nodes); nodes = NULL; }
static void *ml_pop(void)
{
	struct node *n;

	pthread_mutex_lock(&ml_lock);
	n = ml_head;
	if (n != NULL)
		ml_head = n->link;
	pthread_mutex_unlock(&ml_lock);
	return (n);
}
static void ml_push(void *o)
{
	struct node *n = o;

	pthread_mutex_lock(&ml_lock);
	n->link = ml_head;
	ml_head = n;
	pthread_mutex_unlock(&ml_lock);
}

/*
 * Treiber stack over node indices: head = tag << 32 | (index + 1), the tag
 * bumped on every change so that a stale CAS fails (no ABA).
 */
static _Atomic uint64_t ts_head;

static int ts_create(int nr)
{
	nodes = calloc((size_t)nr, sizeof (struct node));
	if (nodes == NULL)
		return (-ENOMEM);
	for (int i = 0; i < nr; i++) {
		nodes[i].index = (uint32_t)i;
		atomic_store(&nodes[i].next, i + 1 < nr ? (uint32_t)i + 2 : 0);
	}
	atomic_store(&ts_head, 1);
	return (0);
}
static void ts_destroy(void) { free(nodes); nodes = NULL; }
static void *ts_pop(void)
{
	uint64_t head = atomic_load_explicit(&ts_head, memory_order_acquire);

	for (;;) {
		uint32_t top = (uint32_t)head;
		uint64_t next;

		if (top == 0)
			return (NULL);
		next = ((head >> 32) + 1) << 32 |
		    atomic_load_explicit(&nodes[top - 1].next,
		    memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(&ts_head, &head,
		    next, memory_order_acquire, memory_order_acquire))
			return (&nodes[top - 1]);
	}
}
static void ts_push(void *o)
{
	struct node *n = o;
	uint64_t head = atomic_load_explicit(&ts_head, memory_order_relaxed);

	for (;;) {
		atomic_store_explicit(&n->next, (uint32_t)head,
		    memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(&ts_head, &head,
		    ((head >> 32) + 1) << 32 | (n->index + 1),
		    memory_order_release, memory_order_relaxed))
			return;
	}
}

static const struct pool_ops pools[] = {
	{ "objpool", op_create, op_destroy, op_pop, op_push },
	{ "mutex list", ml_create, ml_destroy, ml_pop, ml_push },
	{ "treiber", ts_create, ts_destroy, ts_pop, ts_push },
};
#define NPOOLS (int)(sizeof (pools) / sizeof (pools[0]))

/* ------------------------------------------------------------ the cases */

enum bench_case { CASE_SYNC, CASE_OVERRUN, CASE_ASYNC, NCASES };
static const char *case_names[] = { "sync", "sync overrun", "async" };

#define HANDOFF 256             /* async single-producer ring */
struct handoff {
	_Atomic uint64_t head KMEM_BENCH_LINE;
	_Atomic uint64_t tail KMEM_BENCH_LINE;
	void *slot[HANDOFF];
	_Atomic bool done;
};

struct worker {
	pthread_t tid;
	const struct pool_ops *ops;
	enum bench_case bcase;
	int pin;                        /* CPU, or -1 */
	struct handoff *ho;             /* async: shared with the partner */
	bool producer;
	uint64_t hits, misses;
};

/*
 * Workers test the stop flag after a round, not before: each does one at
 * least, so a loaded machine that does not run a thread in the whole
 * interval gives a slow figure, not none (zero, or a division by it).
 */
static _Atomic bool bench_go, bench_stop;

static void
pin_to(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void) pthread_setaffinity_np(pthread_self(), sizeof (set), &set);
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	const struct pool_ops *ops = w->ops;
	void *held[16];
	uint64_t hits = 0, misses = 0;

	pin_to(w->pin);
	while (!atomic_load_explicit(&bench_go, memory_order_acquire))
		sched_yield();

	switch (w->bcase) {
	case CASE_SYNC:
	case CASE_OVERRUN: {
		int bulk = w->bcase == CASE_SYNC ? 1 : 16;
		do {
			int n = 0;
			for (int i = 0; i < bulk; i++) {
				struct node *o = ops->pop();
				if (o == NULL) {
					misses++;
					continue;
				}
				o->touched++;
				held[n++] = o;
				hits++;
			}
			while (n > 0)
				ops->push(held[--n]);
		} while (!atomic_load_explicit(&bench_stop,
		    memory_order_relaxed));
		break;
	}
	case CASE_ASYNC:
		if (w->producer) {
			struct handoff *ho = w->ho;
			do {
				uint64_t t = atomic_load_explicit(&ho->tail,
				    memory_order_relaxed);
				struct node *o;

				if (t - atomic_load_explicit(&ho->head,
				    memory_order_acquire) == HANDOFF) {
					sched_yield();  /* partner is behind */
					continue;
				}
				o = ops->pop();
				if (o == NULL) {
					misses++;
					sched_yield();
					continue;
				}
				o->touched++;
				hits++;
				ho->slot[t % HANDOFF] = o;
				atomic_store_explicit(&ho->tail, t + 1,
				    memory_order_release);
			} while (!atomic_load_explicit(&bench_stop,
			    memory_order_relaxed));
			atomic_store(&ho->done, true);
		} else {
			struct handoff *ho = w->ho;
			for (;;) {
				uint64_t h = atomic_load_explicit(&ho->head,
				    memory_order_relaxed);
				if (h == atomic_load_explicit(&ho->tail,
				    memory_order_acquire)) {
					if (atomic_load(&ho->done) &&
					    h == atomic_load(&ho->tail))
						break;
					sched_yield();
					continue;
				}
				ops->push(ho->slot[h % HANDOFF]);
				atomic_store_explicit(&ho->head, h + 1,
				    memory_order_release);
			}
		}
		break;
	default:
		break;
	}
	w->hits = hits;
	w->misses = misses;
	return (NULL);
}

struct result {
	double seconds;
	uint64_t hits, misses;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
}

static int
run_case(const struct pool_ops *ops, enum bench_case bc, int nthreads,
    bool pinned, int ncpu, double seconds, struct result *res)
{
	struct worker *w;
	struct handoff *ho = NULL;
	int nr = nthreads * (bc == CASE_OVERRUN ? 8 : 16);
	double t0;

	if (bc == CASE_ASYNC && nthreads < 2)
		nthreads = 2;
	w = calloc((size_t)nthreads, sizeof (*w));
	if (bc == CASE_ASYNC) {
		ho = aligned_alloc(64, sizeof (*ho) * (size_t)(nthreads / 2));
		memset(ho, 0, sizeof (*ho) * (size_t)(nthreads / 2));
		nr = nthreads * HANDOFF;        /* rings may fill up */
	}
	if (w == NULL || ops->create(nr) != 0) {
		fprintf(stderr, "objpool_bench: cannot create %s pool of %d\n",
		    ops->name, nr);
		return (-1);
	}
	atomic_store(&bench_go, false);
	atomic_store(&bench_stop, false);
	for (int i = 0; i < nthreads; i++) {
		w[i].ops = ops;
		w[i].bcase = bc;
		w[i].pin = pinned ? i % ncpu : -1;
		if (bc == CASE_ASYNC) {
			w[i].ho = &ho[i / 2];
			w[i].producer = (i % 2) == 0;
		}
		pthread_create(&w[i].tid, NULL, worker_run, &w[i]);
	}
	t0 = now();
	atomic_store_explicit(&bench_go, true, memory_order_release);
	usleep((useconds_t)(seconds * 1e6));
	atomic_store(&bench_stop, true);
	res->seconds = now() - t0;
	res->hits = res->misses = 0;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(w[i].tid, NULL);
		res->hits += w[i].hits;
		res->misses += w[i].misses;
	}
	ops->destroy();
	free(w);
	free(ho);
	return (0);
}

int
main(int argc, char **argv)
{
	double seconds = 1.0;
	const char *json = NULL;
	int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	struct { int threads; bool pinned; } cfg[2];
	struct result res[NCASES][2][NPOOLS];
	char *end;
	int opt;

	while ((opt = getopt(argc, argv, "d:j:h")) != -1) {
		switch (opt) {
		case 'd':
			/* !(x > 0): refuses NaN too; end: refuses "1s". */
			seconds = strtod(optarg, &end);
			if (end == optarg || *end != '\0' ||
			    !(seconds > 0 && seconds <= 600)) {
				fprintf(stderr, "objpool_bench: -d wants 0 < "
				    "seconds <= 600, got '%s'\n", optarg);
				return (2);
			}
			break;
		case 'j':
			json = optarg;
			break;
		default:
			fprintf(stderr, "usage: objpool_bench [-d seconds] "
			    "[-j file.json]\n");
			return (opt == 'h' ? 0 : 2);
		}
	}
	if (ncpu < 1)
		ncpu = 1;
	cfg[0].threads = ncpu;
	cfg[0].pinned = true;
	cfg[1].threads = ncpu * 8;
	cfg[1].pinned = false;

	printf("objpool_bench: %d CPUs, %.1f s per case, %d-byte objects\n",
	    ncpu, seconds, OBJ_SIZE);
	printf("Summary of testcases:\n");
	for (int c = 0; c < NCASES; c++) {
		for (int k = 0; k < 2; k++) {
			for (int p = 0; p < NPOOLS; p++) {
				struct result *r = &res[c][k][p];
				if (run_case(&pools[p], (enum bench_case)c,
				    cfg[k].threads, cfg[k].pinned, ncpu,
				    seconds, r) != 0)
					return (1);
				printf("duration: %.0fus hits: %llu miss: %llu "
				    "%s: %s, %d threads%s\n", r->seconds * 1e6,
				    (unsigned long long)r->hits,
				    (unsigned long long)r->misses,
				    case_names[c], pools[p].name,
				    cfg[k].threads,
				    cfg[k].pinned ? " pinned" : "");
				fflush(stdout);
			}
		}
	}

	printf("\n%-13s %8s %14s %14s %14s %10s %10s\n", "case", "threads",
	    "objpool hit/s", "mutex hit/s", "treiber hit/s", "vs mutex",
	    "vs treiber");
	for (int c = 0; c < NCASES; c++) {
		for (int k = 0; k < 2; k++) {
			double hs[NPOOLS];
			for (int p = 0; p < NPOOLS; p++)
				hs[p] = (double)res[c][k][p].hits /
				    res[c][k][p].seconds;
			printf("%-13s %8d %14.0f %14.0f %14.0f %9.2fx %9.2fx\n",
			    case_names[c], cfg[k].threads, hs[0], hs[1], hs[2],
			    hs[0] / (hs[1] > 0 ? hs[1] : 1),
			    hs[0] / (hs[2] > 0 ? hs[2] : 1));
		}
	}

	if (json != NULL) {
		FILE *f = fopen(json, "w");
		if (f == NULL) {
			fprintf(stderr, "objpool_bench: cannot write %s: %s\n",
			    json, strerror(errno));
			return (1);
		}
		fprintf(f, "{\"benchmark\":\"objpool_bench\",\"cpus\":%d,"
		    "\"seconds\":%g,\"results\":[", ncpu, seconds);
		for (int c = 0, first = 1; c < NCASES; c++)
			for (int k = 0; k < 2; k++)
				for (int p = 0; p < NPOOLS; p++, first = 0) {
					struct result *r = &res[c][k][p];
					fprintf(f, "%s{\"case\":\"%s\","
					    "\"threads\":%d,\"pinned\":%s,"
					    "\"pool\":\"%s\",\"hits\":%llu,"
					    "\"misses\":%llu,\"seconds\":%.6f,"
					    "\"hits_per_sec\":%.1f}",
					    first ? "" : ",", case_names[c],
					    cfg[k].threads,
					    cfg[k].pinned ? "true" : "false",
					    pools[p].name,
					    (unsigned long long)r->hits,
					    (unsigned long long)r->misses,
					    r->seconds,
					    (double)r->hits / r->seconds);
				}
		fprintf(f, "]}\n");
		fclose(f);
	}
	return (0);
}
