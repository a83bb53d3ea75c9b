/*
 * mtmalloc.c - a multi-threaded malloc workout that uses only the C
 * library's API, so that it runs the same with the C library's malloc and
 * with libkmem_malloc.so preloaded (tests/preload.sh compares the two).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * NTHREADS threads allocate objects of mixed sizes (8 bytes to 64 KiB,
 * a few larger) with malloc, calloc and realloc.  Every object is filled
 * with a pattern derived from its identity and checked before it is freed.
 * About a third of the objects are freed by another thread: they are
 * posted, in message nodes that are themselves malloc'ed by the sender and
 * freed by the receiver, to that thread's mailbox.
 *
 * The summary line printed at the end depends only on the seeds (object
 * identities, sizes and contents), never on addresses or timing, so it is
 * the same on every run and under every malloc.  Usage: mtmalloc [ops per
 * thread].  Exits 1 with a message on stderr if any check fails.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS        8
#define SLOTS           256
#define DEFAULT_OPS     40000

struct obj {
	uint64_t id;            /* (thread << 32) | sequence */
	size_t size;
	unsigned char *buf;
};

struct msg {
	struct msg *next;
	struct obj o;
};

struct mailbox {
	pthread_mutex_t lock;
	struct msg *head;
};

struct worker {
	pthread_t tid;
	int idx;
	long ops;
	uint64_t rnd;
	uint64_t seq;
	/* What this thread saw: order-independent sums. */
	uint64_t allocated, freed, received, sent, reallocs, bytes;
	uint64_t checksum;
	struct obj slot[SLOTS];
};

static struct mailbox mailboxes[NTHREADS];
static struct worker workers[NTHREADS];
static pthread_barrier_t done_barrier;
static atomic_int failures;

static uint64_t
rnd_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return (x * 0x2545F4914F6CDD1DULL);
}

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return (x);
}

/* Word i of object id's pattern. */
static inline uint64_t
pattern_word(uint64_t id, size_t i)
{
	return (mix(id) + (uint64_t)i * 0x9e3779b97f4a7c15ULL);
}

/* Fill bytes [from, to) of the object with its pattern. */
static void
fill(unsigned char *buf, uint64_t id, size_t from, size_t to)
{
	for (size_t off = from & ~(size_t)7; off < to; off += 8) {
		uint64_t w = pattern_word(id, off / 8);
		size_t lo = off < from ? from - off : 0;
		size_t hi = to - off < 8 ? to - off : 8;

		if (lo == 0 && hi == 8)
			memcpy(buf + off, &w, 8);
		else
			for (size_t b = lo; b < hi; b++)
				buf[off + b] = (unsigned char)(w >> (8 * b));
	}
}

/*
 * Check bytes [0, len) against the pattern; return a digest of what was
 * read (a function of id and len only when the contents are right), or
 * count a failure.
 */
static uint64_t
check(const unsigned char *buf, uint64_t id, size_t len, const char *what)
{
	uint64_t digest = mix(id ^ len);
	size_t off;

	for (off = 0; off + 8 <= len; off += 8) {
		uint64_t w;

		memcpy(&w, buf + off, 8);
		if (w != pattern_word(id, off / 8))
			goto bad;
		if ((off & 4095) == 0)
			digest += mix(w);
	}
	for (; off < len; off++) {
		uint64_t w = pattern_word(id, off / 8);

		if (buf[off] != (unsigned char)(w >> (8 * (off % 8))))
			goto bad;
		digest += buf[off];
	}
	return (digest);
bad:
	fprintf(stderr, "mtmalloc: %s: object %" PRIx64 " (%zu bytes) "
	    "corrupted at byte %zu\n", what, id, len, off);
	atomic_fetch_add(&failures, 1);
	return (0);
}

/* A size: mostly small, some pages, some up to 64 KiB, a few larger. */
static size_t
pick_size(uint64_t *rnd)
{
	uint64_t r = rnd_next(rnd) % 100;
	uint64_t v = rnd_next(rnd);

	if (r < 70)
		return (8 + (size_t)(v % 505));         /* 8 .. 512 */
	if (r < 92)
		return (513 + (size_t)(v % 7680));      /* .. 8 KiB */
	if (r < 99)
		return (8193 + (size_t)(v % 57344));    /* .. 64 KiB */
	return (65537 + (size_t)(v % (448 * 1024)));    /* .. 512 KiB */
}

static void
free_obj(struct worker *w, struct obj *o, const char *what)
{
	w->checksum += check(o->buf, o->id, o->size, what);
	w->freed++;
	free(o->buf);
	o->buf = NULL;
}

static void
drain(struct worker *w)
{
	struct mailbox *mb = &mailboxes[w->idx];
	struct msg *m, *next;

	pthread_mutex_lock(&mb->lock);
	m = mb->head;
	mb->head = NULL;
	pthread_mutex_unlock(&mb->lock);
	for (; m != NULL; m = next) {
		next = m->next;
		free_obj(w, &m->o, "received");
		w->received++;
		free(m);
	}
}

static int
post(struct worker *w, int to, struct obj *o)
{
	struct mailbox *mb = &mailboxes[to];
	struct msg *m = malloc(sizeof (*m));

	if (m == NULL)
		return (-1);
	m->o = *o;
	pthread_mutex_lock(&mb->lock);
	m->next = mb->head;
	mb->head = m;
	pthread_mutex_unlock(&mb->lock);
	o->buf = NULL;
	w->sent++;
	return (0);
}

static int
new_obj(struct worker *w, struct obj *o)
{
	o->id = ((uint64_t)w->idx << 32) | w->seq++;
	o->size = pick_size(&w->rnd);
	if (rnd_next(&w->rnd) % 8 == 0) {
		o->buf = calloc(1, o->size);
		if (o->buf != NULL) {
			for (size_t i = 0; i < o->size; i++) {
				if (o->buf[i] != 0) {
					fprintf(stderr, "mtmalloc: calloc(%zu)"
					    ": byte %zu not zero\n", o->size,
					    i);
					atomic_fetch_add(&failures, 1);
					break;
				}
			}
		}
	} else {
		o->buf = malloc(o->size);
	}
	if (o->buf == NULL) {
		fprintf(stderr, "mtmalloc: out of memory (%zu bytes)\n",
		    o->size);
		return (-1);
	}
	fill(o->buf, o->id, 0, o->size);
	w->allocated++;
	w->bytes += o->size;
	return (0);
}

/* Grow or shrink an object; its pattern carries over. */
static int
resize_obj(struct worker *w, struct obj *o)
{
	size_t nsize = pick_size(&w->rnd);
	size_t keep = nsize < o->size ? nsize : o->size;
	unsigned char *nbuf;

	w->checksum += check(o->buf, o->id, o->size, "before realloc");
	nbuf = realloc(o->buf, nsize);
	if (nbuf == NULL) {
		fprintf(stderr, "mtmalloc: realloc(%zu) failed\n", nsize);
		return (-1);
	}
	w->checksum += check(nbuf, o->id, keep, "after realloc");
	fill(nbuf, o->id, keep, nsize);
	o->buf = nbuf;
	o->size = nsize;
	w->reallocs++;
	w->bytes += nsize;
	return (0);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	for (long op = 0; op < w->ops; op++) {
		uint64_t r = rnd_next(&w->rnd);
		struct obj *o = &w->slot[r % SLOTS];
		unsigned int what = (unsigned int)((r >> 32) % 16);

		if (o->buf == NULL) {
			if (new_obj(w, o) != 0)
				goto fail;
		} else if (what < 5) {
			/* Another thread frees it. */
			int to = (w->idx + 1 + (int)((r >> 40) %
			    (NTHREADS - 1))) % NTHREADS;

			if (post(w, to, o) != 0)
				goto fail;
		} else if (what < 7) {
			if (resize_obj(w, o) != 0)
				goto fail;
		} else {
			free_obj(w, o, "freed");
		}
		if (op % 64 == 63)
			drain(w);
	}
	for (int i = 0; i < SLOTS; i++) {
		if (w->slot[i].buf != NULL)
			free_obj(w, &w->slot[i], "at the end");
	}
	/* Nobody posts after the barrier: the last drain empties the box. */
	pthread_barrier_wait(&done_barrier);
	drain(w);
	return (NULL);
fail:
	atomic_fetch_add(&failures, 1);
	pthread_barrier_wait(&done_barrier);
	drain(w);
	return (NULL);
}

int
main(int argc, char **argv)
{
	long ops = argc > 1 ? atol(argv[1]) : DEFAULT_OPS;
	uint64_t allocated = 0, freed = 0, sent = 0, received = 0;
	uint64_t reallocs = 0, bytes = 0, checksum = 0;

	if (ops <= 0) {
		fprintf(stderr, "usage: mtmalloc [ops per thread]\n");
		return (2);
	}
	pthread_barrier_init(&done_barrier, NULL, NTHREADS);
	for (int i = 0; i < NTHREADS; i++) {
		pthread_mutex_init(&mailboxes[i].lock, NULL);
		workers[i].idx = i;
		workers[i].ops = ops;
		workers[i].rnd = mix(0x6d746d616c6c6f63ULL + (uint64_t)i) | 1;
	}
	for (int i = 0; i < NTHREADS; i++) {
		if (pthread_create(&workers[i].tid, NULL, worker_main,
		    &workers[i]) != 0) {
			fprintf(stderr, "mtmalloc: pthread_create failed\n");
			return (1);
		}
	}
	for (int i = 0; i < NTHREADS; i++) {
		struct worker *w = &workers[i];

		pthread_join(w->tid, NULL);
		allocated += w->allocated;
		freed += w->freed;
		sent += w->sent;
		received += w->received;
		reallocs += w->reallocs;
		bytes += w->bytes;
		checksum += w->checksum;
	}
	if (freed != allocated || received != sent) {
		fprintf(stderr, "mtmalloc: %" PRIu64 " allocated, %" PRIu64
		    " freed, %" PRIu64 " sent, %" PRIu64 " received\n",
		    allocated, freed, sent, received);
		atomic_fetch_add(&failures, 1);
	}
	if (atomic_load(&failures) != 0) {
		fprintf(stderr, "mtmalloc: %d failure(s)\n",
		    atomic_load(&failures));
		return (1);
	}
	printf("mtmalloc: threads=%d objects=%" PRIu64 " cross=%" PRIu64
	    " reallocs=%" PRIu64 " bytes=%" PRIu64 " checksum=%016" PRIx64
	    "\n", NTHREADS, allocated, sent, reallocs, bytes, checksum);
	return (0);
}
