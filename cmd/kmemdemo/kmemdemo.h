/*
 * kmemdemo.h - the in-memory key-value server core of the demonstration
 * (server.c) and the workload that drives it (kmemdemo.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The same sources are built twice: on libkmem (kmem caches for the
 * connections, request buffers and hash nodes, kmem_alloc for values),
 * and with -DKMEMDEMO_MALLOC on plain malloc/free, where a connection is
 * initialised and destroyed on every use instead of once by a cache
 * constructor.  See driver.c for what the demonstration shows.
 */
#ifndef KMEMDEMO_H
#define KMEMDEMO_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#ifdef KMEMDEMO_MALLOC
#define KV_ALLOCATOR    "malloc"
#else
#define KV_ALLOCATOR    "libkmem"
#endif

#define KV_CONN_BUF     1024    /* a connection's input buffer */
#define KV_NREQSIZES    4       /* request buffer sizes */
#define KV_VALUE_MAX    2048    /* largest value */

/* The limits of -t and -k, checked by the driver and by --serve. */
#define KMEMDEMO_MAX_THREADS    64
#define KMEMDEMO_MAX_KEYS       100000000

/*
 * A client connection: what a server keeps per socket.  Its lock and
 * condition variable are initialised by the cache's constructor (libkmem)
 * or on every accept (malloc).
 */
struct kv_conn {
	pthread_mutex_t lock;           /* protects what follows */
	pthread_cond_t idle;            /* broadcast when a request ends */
	uint64_t id;
	uint64_t requests;
	uint64_t bytes_in, bytes_out;
	int busy;
	char inbuf[KV_CONN_BUF];        /* zeroed when constructed */
};

/* A request being served: header and a buffer of one of four sizes. */
struct kv_req {
	int op;                         /* KV_GET, KV_PUT, KV_DEL */
	uint64_t key;
	size_t len;                     /* value bytes in data */
	size_t cap;                     /* bytes of data */
	char data[];
};

enum { KV_GET, KV_PUT, KV_DEL };

int kv_init(unsigned int nbuckets);
void kv_fini(void);
struct kv_conn *kv_conn_open(uint64_t id);
void kv_conn_close(struct kv_conn *c);
struct kv_req *kv_req_alloc(size_t len);
void kv_req_free(struct kv_req *r);
/* Serve one request; returns the value bytes moved (GET: 0 if absent). */
size_t kv_serve(struct kv_conn *c, struct kv_req *r);
uint64_t kv_count(void);

/* kmemdemo.c: run the workload; argv as in its usage. */
int kmemdemo_serve(int argc, char **argv);
/* kmemdemo.c: parse -t or -k (0 and *out set) or print why not (-1). */
int kmemdemo_threads_arg(const char *prog, const char *arg, int *out);
int kmemdemo_keys_arg(const char *prog, const char *arg, uint64_t *out);

#endif /* KMEMDEMO_H */
