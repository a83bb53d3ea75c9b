/*
 * meta.c - fixed-size blocks for libkmem's own metadata.
 *
 * libkmem cannot take its bookkeeping from malloc (it may be malloc), and
 * the things it tracks - slab descriptors, free spans of the arena,
 * emergency-object tree nodes - are small, fixed-size and created and
 * destroyed off the hot path.  This is the simplest allocator that serves
 * them: 1 MiB chunks from mmap (few mmap calls while caches grow: each
 * takes the address-space lock) cut into 64-byte blocks, a free list
 * threaded through freed blocks, one mutex.  A block is one cache line
 * (chunks are page aligned), so descriptors of slabs that different
 * threads work on share no line; every metadata type fits one (META_FITS),
 * and a slab descriptor in a block twice its size cost a process holding
 * 500 MiB of 64 KiB slabs half a MiB.  A chunk is cut as blocks are
 * needed (a cursor moves through it), not all at once: threading a whole
 * chunk onto the free list touched all its 256 pages, which cost a short
 * process a millisecond of page faults and a MiB of memory.
 *
 * Invariants: a block is either on the free list, handed out, or past
 * the cursor (never handed out yet, untouched), never two of these;
 * chunks are never unmapped (metadata memory is small and reused).
 * Locking: meta_lock protects the free lists, the cursors and the
 * counters.
 *
 * MUTEXES.  The locks that fork() takes - every cache's per-CPU magazine
 * locks, its growth, emergency and slab node locks - are blocks too, one
 * mutex each (a line of its own: no false sharing between CPUs), from
 * chunks of their own.  fork() write-protects every page of the parent
 * and the child, and the atfork handlers write each lock page twice
 * (unlocking in the parent and in the child): with each cache's locks in
 * its own structure that was two page faults per cache and per fork, most
 * of the cost of a fork under the malloc library.  Packed, a page holds
 * the locks of a dozen caches (on 2 CPUs).  A cache needs one per CPU,
 * so these are given back: a mutex chunk is META_CHUNK-aligned, its first
 * pages hold a record per page (free blocks, how many), and a page whose
 * blocks are all free again is returned with MADV_DONTNEED and kept for
 * reuse.  Allocation takes from a page that has free blocks (the partial
 * list) first, so live mutexes stay packed.
 *
 * PAGES.  Bigger metadata - a cache's structure with its per-CPU arrays,
 * its magazines, its depot rings, a task queue - is a few pages each, and
 * used to be an mmap each: a process that touches a hundred size classes
 * made hundreds of mmap calls at startup.  meta_pages_alloc() carves runs
 * of up to META_PIECE_MAX pages from shared 512 KiB regions (marked
 * MADV_NOHUGEPAGE: adjacent regions merge into one mapping, where a
 * transparent huge page could otherwise fault in 2 MiB at once; so an
 * untouched page costs nothing);
 * bigger requests still get a mapping of their own.  Runs are
 * page-aligned, so NUMA placement of a run (place_local: move_pages) works as
 * on a mapping of its own.  A freed run is given back to the system with
 * MADV_DONTNEED (so it reads as zeros again) and kept on a free list per
 * page count for the next run of that size.  The list is made of blocks
 * (struct meta_run), not links written into the runs: a link would fault
 * one page of every free run back in (a process that destroyed 10,000
 * caches kept 60 MB of such pages).  Regions are never unmapped.
 * Locking: meta_pages_lock protects the region cursor and the run free
 * lists; it is taken with no other metadata lock held (fork: after
 * meta_lock).
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kmem_impl.h"
#include "meta.h"

#define META_CHUNK      (1024 * 1024)

#define META_REGION     (512 * 1024)
#define META_PIECE_MAX  16              /* pages carved; more: own mmap */

static pthread_mutex_t meta_lock KMEM_FORK_LOCK =
    PTHREAD_MUTEX_INITIALIZER;
static void *meta_freelist;
static char *meta_chunk_next, *meta_chunk_end;  /* the chunk being cut */
static size_t meta_mapped;

/* A page of mutex blocks, recorded at the start of its chunk. */
struct meta_mx_page {
	struct meta_mx_page *next, *prev;       /* partial or empty list */
	void *free;                     /* its freed blocks */
	uint32_t nfree;                 /* blocks not handed out */
	uint32_t carved;                /* blocks handed out since new */
};
static struct meta_mx_page *meta_mx_partial;    /* some blocks free */
static struct meta_mx_page *meta_mx_empty;      /* given back */
static char *meta_mx_next;              /* next new page of the chunk */

static pthread_mutex_t meta_pages_lock KMEM_FORK_LOCK =
    PTHREAD_MUTEX_INITIALIZER;
static char *meta_cursor, *meta_region_end;
/* A free run of pages, recorded outside it. */
struct meta_run {
	struct meta_run *next;
	void *addr;
};

META_FITS(struct meta_run);
META_FITS(pthread_mutex_t);
static struct meta_run *meta_runs[META_PIECE_MAX + 1];  /* by pages */
static size_t meta_pages_mapped;                /* bytes of regions */
static size_t meta_page;

void
meta_fork_lock(void)
{
	pthread_mutex_lock(&meta_lock);
	pthread_mutex_lock(&meta_pages_lock);
}

void
meta_fork_unlock(void)
{
	pthread_mutex_unlock(&meta_pages_lock);
	pthread_mutex_unlock(&meta_lock);
}

static size_t
meta_pagesize(void)
{
	size_t pg = __atomic_load_n(&meta_page, __ATOMIC_RELAXED);

	if (pg == 0) {
		pg = (size_t)sysconf(_SC_PAGESIZE);
		__atomic_store_n(&meta_page, pg, __ATOMIC_RELAXED);
	}
	return (pg);
}

/*
 * Put the run of npages at addr on its free list.  Without a block to
 * record it (no memory for metadata), its address space stays unused; its
 * pages are not used either.  Called with no metadata lock held.
 */
static void
meta_run_put(void *addr, size_t npages)
{
	struct meta_run *r = meta_alloc();

	if (r == NULL)
		return;
	r->addr = addr;
	pthread_mutex_lock(&meta_pages_lock);
	r->next = meta_runs[npages];
	meta_runs[npages] = r;
	pthread_mutex_unlock(&meta_pages_lock);
}

/*
 * A metadata region, or a run too big for one: MADV_NOHUGEPAGE (see
 * PAGES), all alike, so that the kernel merges neighbouring ones into one
 * mapping (one flagged, one not, they stay two).
 */
static void *
meta_map(size_t len)
{
	void *p = kmem_pages_alloc(len);

#ifdef MADV_NOHUGEPAGE
	if (p != NULL)
		(void) madvise(p, len, MADV_NOHUGEPAGE);
#endif
	return (p);
}

void *
meta_pages_alloc(size_t len)
{
	size_t pg = meta_pagesize();
	size_t npages = (len + pg - 1) / pg;
	struct meta_run *r;
	char *tail = NULL;
	size_t tail_pages = 0;
	void *run;

	if (len == 0 || npages > META_PIECE_MAX)
		return (meta_map(len));
	len = npages * pg;
	pthread_mutex_lock(&meta_pages_lock);
	if ((r = meta_runs[npages]) != NULL) {
		meta_runs[npages] = r->next;
		pthread_mutex_unlock(&meta_pages_lock);
		run = r->addr;          /* returned: reads as zeros */
		meta_free(r);
		return (run);
	}
	if (meta_cursor == NULL || (size_t)(meta_region_end - meta_cursor) <
	    len) {
		char *region = meta_map(META_REGION);

		if (region == NULL) {
			pthread_mutex_unlock(&meta_pages_lock);
			return (meta_map(len));
		}
		/* The old region's tail: a free run of its own size. */
		if (meta_cursor != NULL && meta_cursor < meta_region_end) {
			tail = meta_cursor;
			tail_pages = (size_t)(meta_region_end - tail) / pg;
		}
		meta_pages_mapped += META_REGION;
		meta_cursor = region;
		meta_region_end = region + META_REGION;
	}
	run = meta_cursor;
	meta_cursor += len;
	pthread_mutex_unlock(&meta_pages_lock);
	if (tail != NULL)
		meta_run_put(tail, tail_pages);
	return (run);
}

void
meta_pages_free(void *p, size_t len)
{
	size_t pg = meta_pagesize();
	size_t npages = (len + pg - 1) / pg;

	if (p == NULL)
		return;
	if (len == 0 || npages > META_PIECE_MAX) {
		kmem_pages_free(p, len);
		return;
	}
	/*
	 * The next user takes the run as zeros: locked pages (mlockall)
	 * refuse MADV_DONTNEED, and are cleared instead.
	 */
	if (madvise(p, npages * pg, MADV_DONTNEED) != 0)
		memset(p, 0, npages * pg);
	meta_run_put(p, npages);
}

size_t
meta_pages_bytes(void)
{
	size_t n;

	pthread_mutex_lock(&meta_pages_lock);
	n = meta_pages_mapped;
	pthread_mutex_unlock(&meta_pages_lock);
	return (n);
}

void *
meta_alloc(void)
{
	void *block;

	pthread_mutex_lock(&meta_lock);
	if ((block = meta_freelist) != NULL) {
		meta_freelist = *(void **)block;
		pthread_mutex_unlock(&meta_lock);
		memset(block, 0, META_BLOCK_SIZE);
		return (block);
	}
	if (meta_chunk_next == meta_chunk_end) {
		char *chunk = kmem_pages_alloc(META_CHUNK);
		if (chunk == NULL) {
			pthread_mutex_unlock(&meta_lock);
			return (NULL);
		}
		meta_mapped += META_CHUNK;
		meta_chunk_next = chunk;
		meta_chunk_end = chunk + META_CHUNK;
	}
	block = meta_chunk_next;        /* fresh from mmap: zero */
	meta_chunk_next += META_BLOCK_SIZE;
	pthread_mutex_unlock(&meta_lock);
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

/* ------------------------------------------------------------ mutexes */

/* The record of a page of the chunk at 'chunk' holding block b. */
static struct meta_mx_page *
meta_mx_page_of(void *b)
{
	char *chunk = (char *)((uintptr_t)b & ~(uintptr_t)(META_CHUNK - 1));

	return ((struct meta_mx_page *)chunk +
	    (size_t)((char *)b - chunk) / meta_pagesize());
}

static char *
meta_mx_page_addr(struct meta_mx_page *r)
{
	char *chunk = (char *)((uintptr_t)r & ~(uintptr_t)(META_CHUNK - 1));

	return (chunk + (size_t)(r - (struct meta_mx_page *)chunk) *
	    meta_pagesize());
}

static void
meta_mx_list_add(struct meta_mx_page **head, struct meta_mx_page *r)
{
	r->prev = NULL;
	r->next = *head;
	if (*head != NULL)
		(*head)->prev = r;
	*head = r;
}

static void
meta_mx_list_remove(struct meta_mx_page **head, struct meta_mx_page *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		*head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
}

/*
 * A page with no block handed out, for meta_mx_partial: a returned one,
 * else the next of the current chunk, else the first of a new chunk (a
 * META_CHUNK-aligned mapping whose first pages hold the records).
 * meta_lock held.
 */
static struct meta_mx_page *
meta_mx_page_new(void)
{
	size_t pg = meta_pagesize();
	size_t rec_pages = (META_CHUNK / pg * sizeof (struct meta_mx_page) +
	    pg - 1) / pg;
	struct meta_mx_page *r = meta_mx_empty;

	if (r != NULL) {
		meta_mx_list_remove(&meta_mx_empty, r);
	} else {
		if (meta_mx_next == NULL || ((uintptr_t)meta_mx_next &
		    (META_CHUNK - 1)) == 0) {
			char *map = kmem_pages_alloc(2 * META_CHUNK);
			char *chunk;

			if (map == NULL)
				return (NULL);
			chunk = (char *)KMEM_P2ROUNDUP((uintptr_t)map,
			    META_CHUNK);
			if (chunk != map)
				kmem_pages_free(map, (size_t)(chunk - map));
			kmem_pages_free(chunk + META_CHUNK,
			    (size_t)(map + META_CHUNK - chunk));
#ifdef MADV_NOHUGEPAGE
			/* Adjacent chunks merge: no 2 MiB page over both. */
			(void) madvise(chunk, META_CHUNK, MADV_NOHUGEPAGE);
#endif
			meta_mapped += META_CHUNK;
			meta_mx_next = chunk + rec_pages * pg;
		}
		r = meta_mx_page_of(meta_mx_next);
		meta_mx_next += pg;
	}
	r->free = NULL;
	r->carved = 0;
	r->nfree = (uint32_t)(pg / META_BLOCK_SIZE);
	return (r);
}

pthread_mutex_t *
meta_mutex_alloc(void)
{
	struct meta_mx_page *r;
	pthread_mutex_t *m;

	pthread_mutex_lock(&meta_lock);
	if ((r = meta_mx_partial) == NULL) {
		if ((r = meta_mx_page_new()) == NULL) {
			pthread_mutex_unlock(&meta_lock);
			return (NULL);
		}
		meta_mx_list_add(&meta_mx_partial, r);
	}
	if ((m = r->free) != NULL) {
		r->free = *(void **)m;
	} else {                        /* never used since the page was new */
		m = (pthread_mutex_t *)(meta_mx_page_addr(r) +
		    (size_t)r->carved * META_BLOCK_SIZE);
		r->carved++;
	}
	if (--r->nfree == 0)
		meta_mx_list_remove(&meta_mx_partial, r);
	pthread_mutex_unlock(&meta_lock);
	memset(m, 0, META_BLOCK_SIZE);
	(void) pthread_mutex_init(m, NULL);
	return (m);
}

void
meta_mutex_free(pthread_mutex_t *m)
{
	size_t per_page = meta_pagesize() / META_BLOCK_SIZE;
	struct meta_mx_page *r;

	if (m == NULL)
		return;
	(void) pthread_mutex_destroy(m);
	r = meta_mx_page_of(m);
	pthread_mutex_lock(&meta_lock);
	*(void **)m = r->free;
	r->free = m;
	if (r->nfree++ == 0)
		meta_mx_list_add(&meta_mx_partial, r);
	if (r->nfree < per_page) {
		pthread_mutex_unlock(&meta_lock);
		return;
	}
	/*
	 * Every block free: give the page back.  Off both lists meanwhile,
	 * so no one takes it, and the madvise runs without the lock (slab
	 * growth takes it for descriptors).
	 */
	meta_mx_list_remove(&meta_mx_partial, r);
	pthread_mutex_unlock(&meta_lock);
	(void) madvise(meta_mx_page_addr(r), meta_pagesize(), MADV_DONTNEED);
	pthread_mutex_lock(&meta_lock);
	meta_mx_list_add(&meta_mx_empty, r);
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
