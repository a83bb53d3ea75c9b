/*
 * meta.h - fixed-size blocks for libkmem's own metadata (slab descriptors,
 * free-span records, emergency-object nodes), and page runs carved from
 * shared regions for bigger metadata (caches, magazines, rings, task
 * queues).  See meta.c.
 */
#ifndef KMEM_META_H
#define KMEM_META_H

#include <pthread.h>
#include <stddef.h>

#define META_BLOCK_SIZE 64

void *meta_alloc(void);         /* a zeroed block, or NULL */
void meta_free(void *block);
/* An initialised mutex in a block, packed with the others; or NULL. */
pthread_mutex_t *meta_mutex_alloc(void);
void meta_mutex_free(pthread_mutex_t *m);
size_t meta_bytes(void);        /* bytes mapped for metadata */
void meta_fork_lock(void);      /* fork.c */
/*
 * Zeroed page-aligned runs for bigger metadata, carved from shared
 * regions (see PAGES in meta.c); free with the same len.  NULL on failure.
 */
void *meta_pages_alloc(size_t len);
void meta_pages_free(void *p, size_t len);
size_t meta_pages_bytes(void);  /* bytes of regions mapped for runs */
void meta_fork_unlock(void);

/* Compile-time check that a metadata type fits a block. */
#define META_FITS(type) \
	_Static_assert(sizeof (type) <= META_BLOCK_SIZE, #type " too big")

#endif /* KMEM_META_H */
