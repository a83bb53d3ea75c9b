/*
 * server.c - the core of an in-memory key-value server: connections,
 * request buffers, a hash table of values.  No sockets: kmemdemo.c's
 * workers play the clients.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Memory, with libkmem (the default build):
 *   kv_conn            struct kv_conn, constructed by the cache: mutex,
 *                      condition variable and a zeroed input buffer are
 *                      set up once per object, not once per connection
 *   kv_req_256 .. kv_req_2560   request buffers of four sizes
 *   kv_node            hash table nodes
 *   values             kmem_alloc(len) / kmem_free(v, len)
 * With -DKMEMDEMO_MALLOC the same objects come from malloc, and a
 * connection is initialised on every open and destroyed on every close,
 * as a program without constructed-object caching has to.
 *
 * Invariants: a node is in exactly one bucket chain; its value is
 * node->len bytes allocated for it alone.  Locking: one mutex per stripe of
 * buckets (KV_STRIPES), taken for every lookup and change; a connection's
 * lock for its counters.  No lock is held across two stripes.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef KMEMDEMO_MALLOC
#include "libkmem/kmem.h"
#endif
#include "kmemdemo.h"

#define KV_STRIPES      256

struct kv_node {
	struct kv_node *next;
	uint64_t key;
	size_t len;
	char *val;
};

static const size_t req_sizes[KV_NREQSIZES] = { 256, 768, 1536, 2560 };

static struct kv_node **buckets;
static unsigned int kv_mask;
static _Atomic uint64_t kv_nkeys;
static struct {
	pthread_mutex_t lock;
	char pad[64 - sizeof (pthread_mutex_t) % 64];
} stripes[KV_STRIPES];

/* ------------------------------------------------------------ memory */

static int
conn_ctor(void *buf, void *priv, int kmflags)
{
	struct kv_conn *c = buf;

	(void) priv, (void) kmflags;
	if (pthread_mutex_init(&c->lock, NULL) != 0)
		return (-1);
	if (pthread_cond_init(&c->idle, NULL) != 0) {
		pthread_mutex_destroy(&c->lock);
		return (-1);
	}
	memset(c->inbuf, 0, sizeof (c->inbuf));
	return (0);
}

static void
conn_dtor(void *buf, void *priv)
{
	struct kv_conn *c = buf;

	(void) priv;
	pthread_cond_destroy(&c->idle);
	pthread_mutex_destroy(&c->lock);
}

#ifdef KMEMDEMO_MALLOC

static void *
xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL) {
		fprintf(stderr, "kmemdemo-malloc: out of memory\n");
		exit(1);
	}
	return (p);
}

static int
kv_mem_init(void)
{
	return (0);
}

static void
kv_mem_fini(void)
{
}

static struct kv_conn *
conn_alloc(void)
{
	struct kv_conn *c = xmalloc(sizeof (*c));

	if (conn_ctor(c, NULL, 0) != 0) {
		fprintf(stderr, "kmemdemo-malloc: pthread init failed\n");
		exit(1);
	}
	return (c);
}

static void
conn_free(struct kv_conn *c)
{
	conn_dtor(c, NULL);
	free(c);
}

static struct kv_req *
req_alloc(int i)
{
	return (xmalloc(req_sizes[i]));
}

static void
req_free(struct kv_req *r, int i)
{
	(void) i;
	free(r);
}

static struct kv_node *
node_alloc(void)
{
	return (xmalloc(sizeof (struct kv_node)));
}

static void
node_free(struct kv_node *n)
{
	free(n);
}

static char *
val_alloc(size_t len)
{
	return (xmalloc(len));
}

static void
val_free(char *v, size_t len)
{
	(void) len;
	free(v);
}

#else   /* libkmem */

static kmem_cache_t *conn_cache, *node_cache, *req_cache[KV_NREQSIZES];

static int
kv_mem_init(void)
{
	conn_cache = kmem_cache_create("kv_conn", sizeof (struct kv_conn), 0,
	    conn_ctor, conn_dtor, NULL, NULL, NULL, 0);
	node_cache = kmem_cache_create("kv_node", sizeof (struct kv_node), 0,
	    NULL, NULL, NULL, NULL, NULL, 0);
	if (conn_cache == NULL || node_cache == NULL)
		return (-1);
	for (int i = 0; i < KV_NREQSIZES; i++) {
		char name[KMEM_CACHE_NAMELEN];

		snprintf(name, sizeof (name), "kv_req_%zu", req_sizes[i]);
		req_cache[i] = kmem_cache_create(name, req_sizes[i], 0, NULL,
		    NULL, NULL, NULL, NULL, 0);
		if (req_cache[i] == NULL)
			return (-1);
	}
	return (0);
}

static void
kv_mem_fini(void)
{
	for (int i = 0; i < KV_NREQSIZES; i++)
		kmem_cache_destroy(req_cache[i]);
	kmem_cache_destroy(node_cache);
	kmem_cache_destroy(conn_cache);
}

static struct kv_conn *
conn_alloc(void)
{
	return (kmem_cache_alloc(conn_cache, KM_SLEEP));
}

static void
conn_free(struct kv_conn *c)
{
	kmem_cache_free(conn_cache, c);
}

static struct kv_req *
req_alloc(int i)
{
	return (kmem_cache_alloc(req_cache[i], KM_SLEEP));
}

static void
req_free(struct kv_req *r, int i)
{
	kmem_cache_free(req_cache[i], r);
}

static struct kv_node *
node_alloc(void)
{
	return (kmem_cache_alloc(node_cache, KM_SLEEP));
}

static void
node_free(struct kv_node *n)
{
	kmem_cache_free(node_cache, n);
}

static char *
val_alloc(size_t len)
{
	return (kmem_alloc(len, KM_SLEEP));
}

static void
val_free(char *v, size_t len)
{
	kmem_free(v, len);
}

#endif

/* ------------------------------------------------------------ the core */

int
kv_init(unsigned int nbuckets)
{
	if (nbuckets == 0 || (nbuckets & (nbuckets - 1)) != 0) {
		errno = EINVAL;
		return (-1);
	}
	buckets = calloc(nbuckets, sizeof (*buckets));
	if (buckets == NULL)
		return (-1);
	kv_mask = nbuckets - 1;
	for (int i = 0; i < KV_STRIPES; i++)
		pthread_mutex_init(&stripes[i].lock, NULL);
	if (kv_mem_init() != 0) {
		free(buckets);
		return (-1);
	}
	return (0);
}

void
kv_fini(void)
{
	for (unsigned int b = 0; b <= kv_mask; b++) {
		struct kv_node *n, *next;

		for (n = buckets[b]; n != NULL; n = next) {
			next = n->next;
			val_free(n->val, n->len);
			node_free(n);
		}
	}
	free(buckets);
	buckets = NULL;
	kv_mem_fini();
	for (int i = 0; i < KV_STRIPES; i++)
		pthread_mutex_destroy(&stripes[i].lock);
}

uint64_t
kv_count(void)
{
	return (atomic_load_explicit(&kv_nkeys, memory_order_relaxed));
}

struct kv_conn *
kv_conn_open(uint64_t id)
{
	struct kv_conn *c = conn_alloc();

	/* The constructed state: unlocked, idle, inbuf zeroed. */
	c->id = id;
	c->requests = c->bytes_in = c->bytes_out = 0;
	c->busy = 0;
	return (c);
}

void
kv_conn_close(struct kv_conn *c)
{
	pthread_mutex_lock(&c->lock);
	while (c->busy)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
	/* Back to the constructed state before it returns to the cache. */
	c->inbuf[0] = '\0';
	conn_free(c);
}

struct kv_req *
kv_req_alloc(size_t len)
{
	for (int i = 0; i < KV_NREQSIZES; i++) {
		if (sizeof (struct kv_req) + len <= req_sizes[i]) {
			struct kv_req *r = req_alloc(i);

			r->cap = req_sizes[i] - sizeof (struct kv_req);
			r->len = len;
			return (r);
		}
	}
	errno = EINVAL;
	return (NULL);
}

void
kv_req_free(struct kv_req *r)
{
	for (int i = 0; i < KV_NREQSIZES; i++) {
		if (r->cap + sizeof (struct kv_req) == req_sizes[i]) {
			req_free(r, i);
			return;
		}
	}
	abort();        /* not a request buffer */
}

static inline uint64_t
kv_hash(uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (key);
}

size_t
kv_serve(struct kv_conn *c, struct kv_req *r)
{
	uint64_t h = kv_hash(r->key);
	struct kv_node **pp, *n, *fresh = NULL;
	pthread_mutex_t *lock = &stripes[h % KV_STRIPES].lock;
	char *val = NULL, *old = NULL;
	size_t moved = 0, oldlen = 0;

	pthread_mutex_lock(&c->lock);
	c->busy = 1;
	c->requests++;
	c->bytes_in += r->len;
	pthread_mutex_unlock(&c->lock);

	if (r->op == KV_PUT) {  /* allocate outside the stripe lock */
		val = val_alloc(r->len);
		memcpy(val, r->data, r->len);
		fresh = node_alloc();
	}
	pthread_mutex_lock(lock);
	for (pp = &buckets[h & kv_mask]; (n = *pp) != NULL; pp = &n->next)
		if (n->key == r->key)
			break;
	switch (r->op) {
	case KV_GET:
		if (n != NULL) {
			memcpy(r->data, n->val, n->len);
			r->len = moved = n->len;
		}
		break;
	case KV_PUT:
		if (n != NULL) {
			old = n->val;
			oldlen = n->len;
		} else {
			n = fresh;
			fresh = NULL;
			n->key = r->key;
			n->next = buckets[h & kv_mask];
			buckets[h & kv_mask] = n;
			atomic_fetch_add_explicit(&kv_nkeys, 1,
			    memory_order_relaxed);
		}
		n->val = val;
		n->len = r->len;
		moved = r->len;
		break;
	case KV_DEL:
		if (n != NULL) {
			*pp = n->next;
			atomic_fetch_sub_explicit(&kv_nkeys, 1,
			    memory_order_relaxed);
		}
		break;
	}
	pthread_mutex_unlock(lock);
	if (r->op == KV_DEL && n != NULL) {
		val_free(n->val, n->len);
		node_free(n);
	}
	if (old != NULL)
		val_free(old, oldlen);
	if (fresh != NULL)
		node_free(fresh);

	pthread_mutex_lock(&c->lock);
	c->bytes_out += moved;
	c->busy = 0;
	pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->lock);
	return (moved);
}
