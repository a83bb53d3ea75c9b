/*
 * meta.c - fixed-size blocks for libkmem's own metadata.
 *
 * libkmem cannot take its bookkeeping from malloc (it may be malloc), and
 * the things it tracks - slab descriptors, free spans of the arena,
 * emergency-object tree nodes - are small, fixed-size and created and
 * destroyed off the hot path.  This is the simplest allocator that serves
 * them: 1 MiB chunks from mmap (few mmap calls while caches grow: each
 * takes the address-space lock) cut into 128-byte blocks, a free list
 * threaded through free blocks, one mutex.
 *
 * Invariants: a block is either on the free list or handed out, never
 * both; chunks are never unmapped (metadata memory is small and reused).
 * Locking: meta_lock protects the free list and the counters.
 */
#include "config.h"

#include <pthread.h>
#include <string.h>

#include "kmem_impl.h"
#include "meta.h"

#define META_CHUNK      (1024 * 1024)

static pthread_mutex_t meta_lock = PTHREAD_MUTEX_INITIALIZER;
static void *meta_freelist;
static size_t meta_mapped;

void
meta_fork_lock(void)
{
	pthread_mutex_lock(&meta_lock);
}

void
meta_fork_unlock(void)
{
	pthread_mutex_unlock(&meta_lock);
}

void *
meta_alloc(void)
{
	void *block;

	pthread_mutex_lock(&meta_lock);
	if (meta_freelist == NULL) {
		char *chunk = kmem_pages_alloc(META_CHUNK);
		if (chunk == NULL) {
			pthread_mutex_unlock(&meta_lock);
			return (NULL);
		}
		meta_mapped += META_CHUNK;
		for (size_t off = 0; off < META_CHUNK; off += META_BLOCK_SIZE) {
			*(void **)(chunk + off) = meta_freelist;
			meta_freelist = chunk + off;
		}
	}
	block = meta_freelist;
	meta_freelist = *(void **)block;
	pthread_mutex_unlock(&meta_lock);
	memset(block, 0, META_BLOCK_SIZE);
	return (block);
}

void
meta_free(void *block)
{
	if (block == NULL)
		return;
	pthread_mutex_lock(&meta_lock);
	*(void **)block = meta_freelist;
	meta_freelist = block;
	pthread_mutex_unlock(&meta_lock);
}

size_t
meta_bytes(void)
{
	size_t n;

	pthread_mutex_lock(&meta_lock);
	n = meta_mapped;
	pthread_mutex_unlock(&meta_lock);
	return (n);
}
