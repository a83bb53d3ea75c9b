/*
 * kmemdemo.c - the workload of the demonstration: worker threads play
 * clients of the key-value server core (server.c) for a number of seconds.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each worker opens a connection, sends it 1 to 16 requests and closes
 * it, again and again: 60% GET, 30% PUT, 10% DEL of a key drawn uniformly
 * from the key space.  A key's value has a size that depends on the key
 * (70% 16-256 bytes, 20% 256-1024, 10% 1024-2048), so a GET asks for a
 * request buffer of the right size; every value starts with its key, and
 * every GET checks it.  Half the keys are stored before the clock starts.
 *
 * At the end it frees everything and prints one line:
 *   result allocator=A threads=T seconds=S ops=N keys=K errors=E maxrss_kb=R
 * (exit 1 if a GET saw a wrong value).
 *
 * usage: kmemdemo --serve [-d seconds] [-t threads] [-k keys]
 *        kmemdemo-malloc [-d seconds] [-t threads] [-k keys]
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "kmemdemo.h"

static _Atomic bool stop;
static _Atomic uint64_t total_ops, total_errors;
static uint64_t nkeys = 200000;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
}

static inline uint64_t
xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return (*s = x);
}

/* The size of key's value: the same on every PUT. */
static size_t
value_len(uint64_t key)
{
	uint64_t h = (key + 1) * 0x9e3779b97f4a7c15ULL;
	unsigned int pct = (unsigned int)(h >> 57) % 100;
	unsigned int r = (unsigned int)(h >> 20);

	if (pct < 70)
		return (16 + r % 241);
	if (pct < 90)
		return (256 + r % 769);
	return (1024 + r % (KV_VALUE_MAX - 1023));
}

static void
request(struct kv_conn *c, uint64_t *seed, uint64_t *ops, uint64_t *errs)
{
	uint64_t x = xorshift(seed);
	uint64_t key = (x >> 8) % nkeys;
	unsigned int pct = (unsigned int)(x & 0xff) % 100;
	size_t len = value_len(key);
	struct kv_req *r = kv_req_alloc(len);

	if (r == NULL) {
		(*errs)++;
		return;
	}
	r->key = key;
	if (pct < 60) {
		r->op = KV_GET;
		if (kv_serve(c, r) != 0 && (r->len != len ||
		    memcmp(r->data, &key, sizeof (key)) != 0))
			(*errs)++;
	} else if (pct < 90) {
		r->op = KV_PUT;
		memset(r->data, (int)(key & 0xff), len);
		memcpy(r->data, &key, sizeof (key));
		kv_serve(c, r);
	} else {
		r->op = KV_DEL;
		kv_serve(c, r);
	}
	kv_req_free(r);
	(*ops)++;
}

struct worker {
	pthread_t tid;
	int index;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t seed = 0x2545f4914f6cdd1dULL * (uint64_t)(w->index + 1);
	uint64_t ops = 0, errs = 0, conn_id = (uint64_t)w->index << 40;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		struct kv_conn *c = kv_conn_open(conn_id++);
		int n = 1 + (int)(xorshift(&seed) % 16);

		for (int i = 0; i < n; i++)
			request(c, &seed, &ops, &errs);
		kv_conn_close(c);
	}
	atomic_fetch_add(&total_ops, ops);
	atomic_fetch_add(&total_errors, errs);
	return (NULL);
}

static void
usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-d seconds] [-t threads] [-k keys]\n",
	    prog);
	exit(2);
}

/*
 * -t: 1 to KMEMDEMO_MAX_THREADS, all of arg a number (strtol into a long,
 * so that 4294967297 is not taken for 1).
 */
int
kmemdemo_threads_arg(const char *prog, const char *arg, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (end == arg || *end != '\0' || errno != 0 || v < 1 ||
	    v > KMEMDEMO_MAX_THREADS) {
		fprintf(stderr, "%s: -t wants 1 to %d threads, got '%s'\n",
		    prog, KMEMDEMO_MAX_THREADS, arg);
		return (-1);
	}
	*out = (int)v;
	return (0);
}

/* -k: 1 to KMEMDEMO_MAX_KEYS (strtoull takes "-5": refused here). */
int
kmemdemo_keys_arg(const char *prog, const char *arg, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (end == arg || *end != '\0' || errno != 0 ||
	    strchr(arg, '-') != NULL || v < 1 || v > KMEMDEMO_MAX_KEYS) {
		fprintf(stderr, "%s: -k wants 1 to %d keys, got '%s'\n",
		    prog, KMEMDEMO_MAX_KEYS, arg);
		return (-1);
	}
	*out = v;
	return (0);
}

int
kmemdemo_serve(int argc, char **argv)
{
	static struct worker w[KMEMDEMO_MAX_THREADS];
#ifdef KMEMDEMO_MALLOC
	const char *prog = "kmemdemo-malloc";
#else
	const char *prog = "kmemdemo";
#endif
	double secs = 10, t0, t1;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int nthreads = ncpu < 1 ? 2 : ncpu > 8 ? 16 : (int)ncpu * 2;
	int opt;
	char *end;
	struct rusage ru;

	while ((opt = getopt(argc, argv, "d:t:k:h")) != -1) {
		switch (opt) {
		case 'd':
			secs = strtod(optarg, &end);
			if (*end != '\0' || !(secs > 0 && secs <= 3600)) {
				fprintf(stderr, "%s: -d wants seconds in "
				    "(0, 3600], got '%s'\n", prog, optarg);
				return (2);
			}
			break;
		case 't':
			if (kmemdemo_threads_arg(prog, optarg, &nthreads) != 0)
				return (2);
			break;
		case 'k':
			if (kmemdemo_keys_arg(prog, optarg, &nkeys) != 0)
				return (2);
			break;
		default:
			usage(prog);
		}
	}
	if (optind != argc)
		usage(prog);
	if (kv_init(1u << 18) != 0) {
		fprintf(stderr, "%s: cannot set up the server: %s\n", prog,
		    strerror(errno));
		return (1);
	}

	/* Half the keys, before the clock starts. */
	{
		struct kv_conn *c = kv_conn_open(0);

		for (uint64_t k = 0; k < nkeys; k += 2) {
			struct kv_req *r = kv_req_alloc(value_len(k));

			r->op = KV_PUT;
			r->key = k;
			memset(r->data, 0, r->len);
			memcpy(r->data, &k, sizeof (k));
			kv_serve(c, r);
			kv_req_free(r);
		}
		kv_conn_close(c);
	}

	t0 = now_s();
	for (int i = 0; i < nthreads; i++) {
		w[i].index = i;
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0) {
			fprintf(stderr, "%s: pthread_create failed\n", prog);
			return (1);
		}
	}
	printf("serving\n");           /* the driver's cue for kmemstat */
	fflush(stdout);
	while (now_s() - t0 < secs) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < nthreads; i++)
		pthread_join(w[i].tid, NULL);
	t1 = now_s();

	uint64_t keys = kv_count();

	kv_fini();
	getrusage(RUSAGE_SELF, &ru);
	printf("result allocator=%s threads=%d seconds=%.3f ops=%" PRIu64
	    " keys=%" PRIu64 " errors=%" PRIu64 " maxrss_kb=%ld\n",
	    KV_ALLOCATOR, nthreads, t1 - t0, atomic_load(&total_ops), keys,
	    atomic_load(&total_errors), ru.ru_maxrss);
	fflush(stdout);
	return (atomic_load(&total_errors) != 0 ? 1 : 0);
}

#ifdef KMEMDEMO_MALLOC
int
main(int argc, char **argv)
{
	return (kmemdemo_serve(argc, argv));
}
#endif
