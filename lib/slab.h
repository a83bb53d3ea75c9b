/*
 * slab.h - the slab layer: slabs carved into objects, per-node lists by
 * fullness, slab sizing.  See slab.c.
 */
#ifndef KMEM_SLAB_H
#define KMEM_SLAB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kmem_impl.h"
#include "vmem.h"

struct kmem_cache;

/* Kinds of arena owner (first byte of every owner descriptor). */
#define KMEM_OWNER_SLAB         1
#define KMEM_OWNER_LARGE        2

/*
 * A slab descriptor's fast byte: its cache runs the rseq fast path
 * (SLAB_FAST_RSEQ); it is a kmem_alloc class, whose objects are malloc's
 * blocks (SLAB_FAST_CLASS).  Read as one word with the kind byte, it lets
 * free()'s fast path tell "an object of a slab of a class with magazines
 * in rseq mode" apart from everything else in one compare.
 * (kmem_cache_free, which is given the cache, compares the slab's cache
 * instead: see cache_free_ok.)
 */
#define SLAB_FAST_RSEQ          0x01
#define SLAB_FAST_CLASS         0x02

/* The kind and fast bytes as the word that free()'s fast path compares. */
static inline uint16_t
slab_word(uint8_t kind, uint8_t fast)
{
	union { uint8_t b[2]; uint16_t w; } u = { .b = { kind, fast } };

	return (u.w);
}

static inline uint16_t
slab_word_of(const void *owner)
{
	uint16_t w;

	__builtin_memcpy(&w, owner, sizeof (w));        /* -fno-builtin too */
	return (w);
}

/* A slab of a kmem_alloc class in rseq mode (free). */
static inline bool
slab_is_fast_class(const void *owner)
{
	return (slab_word_of(owner) == slab_word(KMEM_OWNER_SLAB,
	    SLAB_FAST_RSEQ | SLAB_FAST_CLASS));
}

enum slab_list {
	SLAB_ALMOST_FULL,       /* more than 3/4 of its objects out */
	SLAB_ALMOST_EMPTY,      /* some out, at most 3/4 */
	SLAB_EMPTY,             /* none out: reapable */
	SLAB_FULL,              /* all out */
	SLAB_NLISTS
};

/* Off-slab descriptor: objects carry no header. */
struct kmem_slab {
	uint8_t kind;           /* KMEM_OWNER_SLAB */
	uint8_t fast;           /* SLAB_FAST_* */
	uint8_t list;           /* enum slab_list it is on */
	uint8_t node;           /* index into the cache's slab nodes */
	uint32_t carved_pages;  /* pages holding objects carved since mapped */
	uint32_t inuse;         /* objects out of it */
	uint32_t fresh;         /* objects [fresh, objs_per_slab): uncarved */
	struct kmem_cache *cache;
	char *base;             /* first object: the span's start + colour */
	void *freelist;         /* returned objects, linked through word 0 */
	struct kmem_slab *next, *prev;
	int64_t empty_since;    /* kmem_stamp_ns() when it became empty */
};

struct slab_list_head {
	struct kmem_slab *head, *tail;
	uint64_t count;
};

struct slab_node {
	pthread_mutex_t *lock;  /* meta_mutex_alloc */
	struct slab_list_head lists[SLAB_NLISTS];
	uint64_t slab_total;    /* slabs on this node */
	uint64_t obj_total;     /* objects in them */
	uint64_t obj_inuse;     /* objects out of them */
	uint64_t pages_carved;  /* sum of their carved_pages */
	uint64_t contended;     /* lock acquisitions that had to wait */
} KMEM_ALIGNED_LINE;

struct slab_layer {
	/* "off is a multiple of chunk" without a division (slab_obj_ok) */
	uint64_t chunk_inv;     /* inverse of chunk's odd part, mod 2^64 */
	uint64_t objs_lim;      /* objs_per_slab, as slab_obj_ok compares it */
	size_t objs_bytes;      /* objs_per_slab * chunk */
	unsigned int chunk_shift;       /* trailing zero bits of chunk */
	size_t chunk;           /* object stride: size rounded to alignment */
	size_t link_off;        /* free-list link's offset in a free object */
	size_t slab_size;       /* bytes */
	uint32_t objs_per_slab;
	uint32_t ncolors;       /* offsets a slab's first object cycles through */
	size_t color_step;      /* bytes between them: alignment, >= a line */
	_Atomic uint32_t color_next;    /* slabs grown, mod ncolors: the next */
	unsigned int nnodes;
	struct slab_node *nodes;
	/* Cache-wide sums of the node counters, for high-water marks. */
	_Atomic uint64_t slab_total, obj_inuse;
	_Atomic uint64_t slab_max;
};

/*
 * Slab size for objects of 'chunk' bytes aligned to 'align': the size from
 * the objects-per-slab target up that wastes least per object, leaving
 * colour room where the stride needs it (at least 2 MiB for KMC_KVMEM).
 * 0 when the object is larger than the largest slab.
 */
size_t slab_size_for(size_t chunk, size_t align, int cflags, uint32_t *objs);

/* Largest object a cache can hold (the largest slab). */
size_t slab_max_object(void);

int slab_layer_init(struct slab_layer *sl, size_t chunk, size_t align,
    int cflags, struct slab_node *nodes, unsigned int nnodes);

/* The span a slab's objects were carved from: base less its colour. */
static inline char *
slab_span(const struct kmem_slab *s)
{
	return ((char *)((uintptr_t)s->base &
	    ~(((uintptr_t)1 << vmem_page_shift) - 1)));
}

/* Take up to n objects from existing slabs, node 'node' first. */
unsigned int slab_alloc(struct kmem_cache *cp, int node, void **objs,
    unsigned int n);

/*
 * Add up to 'count' empty slabs on 'node', linked under one lock
 * acquisition; returns how many (0 with errno ENOMEM: none could be had).
 */
unsigned int slab_grow(struct kmem_cache *cp, int node, unsigned int count);

/*
 * Return objects (destructed) to their slabs.  An object that is not
 * from one of cp's slabs is reported and left alone; returns how many
 * were taken back.
 */
unsigned int slab_free(struct kmem_cache *cp, void **objs, unsigned int n);

/* Free empty slabs that became empty before 'before' (ns; 0: all). */
uint64_t slab_reap(struct kmem_cache *cp, int64_t before);

/*
 * Whether obj is the start of one of the first 'lim' objects of slab s,
 * in O(1) with one compare and no division.  With chunk = d0 * 2^k (d0
 * odd), the map off -> rotr(off * inv(d0), k) (mod 2^64) is a bijection
 * that takes q * chunk to q for every q with q * chunk < 2^64 (Granlund
 * & Montgomery's divisibility test).  So it lands below lim exactly when
 * off is 0, chunk, ..., (lim - 1) * chunk; any other off, one below the
 * slab's base included, lands elsewhere.  lim 0 admits nothing.
 */
static inline bool
slab_obj_below(const struct slab_layer *sl, const struct kmem_slab *s,
    const void *obj, uint64_t lim)
{
	uint64_t x = (uint64_t)((const char *)obj - s->base) * sl->chunk_inv;
	unsigned int k = sl->chunk_shift;

	return (((x >> k) | (x << ((64 - k) & 63))) < lim);
}

/* Whether obj is the start of an object of slab s. */
static inline bool
slab_obj_ok(const struct slab_layer *sl, const struct kmem_slab *s,
    const void *obj)
{
	return (slab_obj_below(sl, s, obj, sl->objs_lim));
}

/* s->fresh, read without the node lock (slab_obj_carved). */
static inline uint32_t
slab_fresh(const struct kmem_slab *s)
{
	return (__atomic_load_n(&s->fresh, __ATOMIC_RELAXED));
}

/*
 * Whether obj is the start of an object of slab s that was carved (one of
 * [0, fresh)), as every object that is out is: one further on was never
 * handed out, and taken back it would be handed out twice, once from the
 * free list and once carved.  fresh is read without the node lock: while
 * an object is out, fresh stays above its index (it drops only when the
 * last carved object comes back), and the object's caller has seen the
 * carving that handed it out.
 */
static inline bool
slab_obj_carved(const struct slab_layer *sl, const struct kmem_slab *s,
    const void *obj)
{
	return (slab_obj_below(sl, s, obj, slab_fresh(s)));
}

/* The slab holding obj if obj is the start of one of cp's objects. */
struct kmem_slab *slab_of(struct kmem_cache *cp, const void *obj);

/* Totals over the nodes; each node's share goes to node[] if not NULL. */
struct slab_counts {
	uint64_t slab_total, slab_alloc, obj_total, obj_inuse;
	uint64_t almost_full, almost_empty, empty, full;
	uint64_t pages_carved, contended;
};
void slab_counts(struct kmem_cache *cp, struct slab_counts *c,
    struct kmem_node_stats *node);

#endif /* KMEM_SLAB_H */
