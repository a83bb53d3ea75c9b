/*
 * statload - a process with several kmem caches under load, for
 * tests/kmemstat.sh: it is driven one command per line on stdin and
 * answers each with one line on stdout ("ok ..." or "error ...").
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * At start it creates its caches (statload_small with a constructor,
 * statload_medium, statload_large, statload_nomag without magazines) and
 * prints "ready PID".  Commands:
 *
 *   load MS         two threads allocate and free at random, from every
 *                   cache and from kmem_alloc, for MS milliseconds; what
 *                   they hold at the end stays held
 *   settle          wait until no cache's statistics change (background
 *                   growth done)
 *   stats FILE      write kmem_cache_stats() of each cache, and
 *                   kmem_alloc_class_stats() of each class in use, as one
 *                   JSON object per line (the field names of kmemstat -j)
 *   create NAME SIZE, destroy NAME    a cache appears, disappears
 *   free NAME PCT   free PCT% of the objects held from NAME
 *   many PREFIX N K caches PREFIX0 to PREFIX<N-1> (created if need be, at
 *                   most MAXMANY in all), each K * (i % 4 + 1) objects
 *                   allocated and freed: allocation counts known
 *   unmany PREFIX   destroy the caches of many whose names start so
 *   exec [MS]       execve() this program anew, same pid: a new image,
 *                   which starts libkmem MS milliseconds later (0) and
 *                   prints "ready PID" again
 *   quit            exit(0): a normal exit, which removes the region
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libkmem/kmem.h"

#define NTHREADS        2
#define MAXHELD         3000
#define MAXCACHES       16
#define NALLOC_SIZES    3
#define MAXMANY         20000

struct lcache {
	char name[KMEM_CACHE_NAMELEN];
	kmem_cache_t *cp;               /* NULL: a kmem_alloc size */
	size_t size;
	void *held[NTHREADS][MAXHELD];
	size_t nheld[NTHREADS];
};

static struct lcache caches[MAXCACHES];
static int ncaches;

/* The caches of many and unmany: thousands, with no objects held. */
static struct {
	char name[KMEM_CACHE_NAMELEN];
	kmem_cache_t *cp;
} many[MAXMANY];
static int nmany;
static _Atomic uint64_t ctor_count;
static int64_t load_deadline;

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
}

static int
small_ctor(void *buf, void *priv, int kmflags)
{
	(void) priv;
	(void) kmflags;
	memset(buf, 0x5a, 24);
	atomic_fetch_add(&ctor_count, 1);
	return (0);
}

static struct lcache *
find(const char *name)
{
	for (int i = 0; i < ncaches; i++)
		if (strcmp(caches[i].name, name) == 0)
			return (&caches[i]);
	return (NULL);
}

static struct lcache *
add(const char *name, size_t size, kmem_ctor_t *ctor, int cflags,
    bool is_cache)
{
	struct lcache *c;

	if (ncaches == MAXCACHES || find(name) != NULL)
		return (NULL);
	c = &caches[ncaches];
	memset(c, 0, sizeof (*c));
	snprintf(c->name, sizeof (c->name), "%s", name);
	c->size = size;
	if (is_cache) {
		c->cp = kmem_cache_create(name, size, 0, ctor, NULL, NULL, NULL,
		    NULL, cflags);
		if (c->cp == NULL)
			return (NULL);
	}
	ncaches++;
	return (c);
}

static void *
obj_alloc(struct lcache *c)
{
	return (c->cp != NULL ? kmem_cache_alloc(c->cp, KM_SLEEP) :
	    kmem_alloc(c->size, KM_SLEEP));
}

static void
obj_free(struct lcache *c, void *p)
{
	if (c->cp != NULL)
		kmem_cache_free(c->cp, p);
	else
		kmem_free(p, c->size);
}

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (*s);
}

static void *
load_thread(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(t + 1);

	while (now_ns() < load_deadline) {
		for (int k = 0; k < 1000; k++) {
			struct lcache *c =
			    &caches[rnd(&seed) % (uint64_t)ncaches];
			size_t *n = &c->nheld[t];

			if (*n < MAXHELD && (*n == 0 || rnd(&seed) % 2 == 0)) {
				void *p = obj_alloc(c);

				if (p != NULL)
					c->held[t][(*n)++] = p;
			} else {
				size_t i = rnd(&seed) % *n;

				obj_free(c, c->held[t][i]);
				c->held[t][i] = c->held[t][--(*n)];
			}
		}
	}
	return (NULL);
}

static void
do_load(long ms)
{
	pthread_t tid[NTHREADS];

	load_deadline = now_ns() + ms * 1000000;
	for (int t = 0; t < NTHREADS; t++)
		pthread_create(&tid[t], NULL, load_thread, (void *)(intptr_t)t);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(tid[t], NULL);
	printf("ok load\n");
}

/* Free pct% of what is held from c. */
static void
free_some(struct lcache *c, long pct)
{
	for (int t = 0; t < NTHREADS; t++) {
		size_t keep = c->nheld[t] - c->nheld[t] * (size_t)pct / 100;

		while (c->nheld[t] > keep)
			obj_free(c, c->held[t][--c->nheld[t]]);
	}
}

/* Equal statistics twice, 100 ms apart: nothing is growing any more. */
static void
do_settle(void)
{
	static struct kmem_cache_stats a[MAXCACHES], b[MAXCACHES];
	int same = 0;

	for (int tries = 0; tries < 100 && same < 2; tries++) {
		struct timespec ts = { 0, 100000000 };

		for (int i = 0; i < ncaches; i++)
			if (caches[i].cp != NULL)
				kmem_cache_stats(caches[i].cp, &b[i]);
		same = memcmp(a, b, sizeof (a)) == 0 ? same + 1 : 0;
		memcpy(a, b, sizeof (a));
		nanosleep(&ts, NULL);
	}
	printf(same >= 2 ? "ok settled\n" : "error did not settle\n");
}

static void
do_many(const char *prefix, long n, long k)
{
	char name[KMEM_CACHE_NAMELEN];
	void *obj[4];

	for (long i = 0; i < n; i++) {
		kmem_cache_t *cp = NULL;

		snprintf(name, sizeof (name), "%s%ld", prefix, i);
		for (int j = 0; j < nmany && cp == NULL; j++)
			if (strcmp(many[j].name, name) == 0)
				cp = many[j].cp;
		if (cp == NULL) {
			if (nmany == MAXMANY || (cp = kmem_cache_create(name,
			    32, 0, NULL, NULL, NULL, NULL, NULL, 0)) == NULL) {
				printf("error cannot create %s\n", name);
				return;
			}
			snprintf(many[nmany].name, sizeof (many[nmany].name),
			    "%s", name);
			many[nmany++].cp = cp;
		}
		for (long r = 0; r < k; r++) {
			for (long j = 0; j <= i % 4; j++)
				obj[j] = kmem_cache_alloc(cp, KM_SLEEP);
			for (long j = 0; j <= i % 4; j++)
				kmem_cache_free(cp, obj[j]);
		}
	}
	printf("ok many\n");
}

static void
do_unmany(const char *prefix)
{
	for (int j = 0; j < nmany; ) {
		if (strncmp(many[j].name, prefix, strlen(prefix)) == 0) {
			kmem_cache_destroy(many[j].cp);
			many[j] = many[--nmany];
		} else {
			j++;
		}
	}
	printf("ok unmany\n");
}

#define	U(f)    fprintf(f_out, ",\"" #f "\":%" PRIu64, (uint64_t)st.f)

static void
do_stats(const char *path)
{
	char tmp[4200];
	FILE *f_out;

	snprintf(tmp, sizeof (tmp), "%s.tmp", path);
	if ((f_out = fopen(tmp, "w")) == NULL) {
		printf("error %s: %s\n", tmp, strerror(errno));
		return;
	}
	for (int i = 0; i < ncaches; i++) {
		struct kmem_cache_stats st;

		if (caches[i].cp == NULL ||
		    kmem_cache_stats(caches[i].cp, &st) != 0)
			continue;
		fprintf(f_out, "{\"name\":\"%s\"", st.name);
		U(obj_size); U(obj_align); U(slab_size); U(objs_per_slab);
		U(slab_total); U(slab_alloc); U(slab_max); U(obj_total);
		U(obj_alloc); U(obj_max); U(obj_emergency);
		U(obj_emergency_max); U(obj_deadlock); U(alloc);
		U(alloc_fail); U(free); U(ctor_calls); U(dtor_calls);
		U(obj_cached); U(mem_total); U(mem_carved); U(mem_meta);
		U(mag_size); U(mag_alloc_hits); U(mag_free_hits);
		U(depot_full); U(depot_empty); U(depot_contention);
		U(mag_flushes); U(slab_grows); U(grow_waits); U(nr_nodes);
		fprintf(f_out, ",\"obj_inuse\":%" PRIu64 "}\n",
		    st.alloc - st.free);
	}
	for (int i = 0; i < kmem_alloc_class_count(); i++) {
		struct kmem_class_stats st;

		if (kmem_alloc_class_stats(i, &st) != 0 ||
		    st.obj_allocated == 0)
			continue;
		fprintf(f_out, "{\"class\":%d,\"name\":\"%s\"", i, st.name);
		U(size); U(almost_full); U(almost_empty); U(obj_allocated);
		U(obj_used); U(pages_used); U(pages_per_slab); U(freeable);
		U(pages_carved);
		fprintf(f_out, "}\n");
	}
	if (fclose(f_out) != 0 || rename(tmp, path) != 0)
		printf("error %s: %s\n", path, strerror(errno));
	else
		printf("ok stats\n");
}

int
main(int argc, char **argv)
{
	static const size_t alloc_sizes[NALLOC_SIZES] = { 40, 500, 5000 };
	char line[4096], arg1[4096];
	long n, k;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1) {
		long ms = atol(argv[1]);
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

		(void) nanosleep(&ts, NULL);
	}
	if (add("statload_small", 24, small_ctor, 0, true) == NULL ||
	    add("statload_medium", 200, NULL, 0, true) == NULL ||
	    add("statload_large", 3000, NULL, 0, true) == NULL ||
	    add("statload_nomag", 64, NULL, KMC_NOMAGAZINE, true) == NULL) {
		printf("error cannot create caches: %s\n", strerror(errno));
		return (1);
	}
	for (int i = 0; i < NALLOC_SIZES; i++) {
		char name[KMEM_CACHE_NAMELEN];

		snprintf(name, sizeof (name), "kmem_alloc(%zu)",
		    alloc_sizes[i]);
		(void) add(name, alloc_sizes[i], NULL, 0, false);
	}
	printf("ready %ld\n", (long)getpid());
	while (fgets(line, sizeof (line), stdin) != NULL) {
		struct lcache *c;

		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "load %ld", &n) == 1) {
			do_load(n);
		} else if (strcmp(line, "settle") == 0) {
			do_settle();
		} else if (sscanf(line, "stats %4095s", arg1) == 1) {
			do_stats(arg1);
		} else if (sscanf(line, "create %31s %ld", arg1, &n) == 2) {
			if (add(arg1, (size_t)n, NULL, 0, true) == NULL)
				printf("error cannot create %s\n", arg1);
			else
				printf("ok created\n");
		} else if (sscanf(line, "destroy %31s", arg1) == 1) {
			if ((c = find(arg1)) == NULL || c->cp == NULL) {
				printf("error no cache %s\n", arg1);
				continue;
			}
			free_some(c, 100);
			kmem_cache_destroy(c->cp);
			*c = caches[--ncaches];
			printf("ok destroyed\n");
		} else if (sscanf(line, "free %31s %ld", arg1, &n) == 2) {
			if ((c = find(arg1)) == NULL || n < 0 || n > 100) {
				printf("error no cache %s\n", arg1);
				continue;
			}
			free_some(c, n);
			printf("ok freed\n");
		} else if (sscanf(line, "many %31s %ld %ld", arg1, &n,
		    &k) == 3) {
			do_many(arg1, n, k);
		} else if (sscanf(line, "unmany %31s", arg1) == 1) {
			do_unmany(arg1);
		} else if (strcmp(line, "exec") == 0 ||
		    sscanf(line, "exec %4095s", arg1) == 1) {
			(void) execl("/proc/self/exe", "statload",
			    strcmp(line, "exec") == 0 ? NULL : arg1,
			    (char *)NULL);
			printf("error exec: %s\n", strerror(errno));
		} else if (strcmp(line, "quit") == 0) {
			printf("ok quit\n");
			exit(0);
		} else {
			printf("error unknown command: %s\n", line);
		}
	}
	return (0);
}
