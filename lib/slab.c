/*
 * slab.c - the slab layer: slabs carved into objects, kept on per-node
 * lists by fullness; slab sizing.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A slab is one span of the arena (vmem.c) holding objs_per_slab objects
 * at a fixed stride, the first at the slab's colour offset from the
 * span's start (base = span + colour).  Objects carry no
 * header and no footer: the slab's descriptor lives off-slab (meta.c), and
 * the arena's page map leads from any object address to it in O(1).
 *
 * Objects in the slab layer are NOT constructed (the cache's constructor
 * runs when an object leaves this layer, its destructor when it comes
 * back), so a free object's first word may hold the free-list link (in
 * debug caches a word of the object's debug tail, link_off: debug.c).  A new
 * slab is not written at all: objects [fresh, objs_per_slab) are carved in
 * order as they are first needed, so growing a cache costs no page faults
 * until the memory is used, and a returned object goes on the slab's free
 * list - except the last one carved (fresh - 1), which goes back to the
 * uncarved part unwritten.  Magazines hand out a refill's objects in
 * carving order and a flush returns them in reverse, so the objects of a
 * refill that the program never took go back without a write: reaping a
 * cache that used one object of a refill batch does not fault in the
 * other pages.  So the pages carving has reached (carved_pages, a
 * high-water mark) are all of a slab that the cache can have made
 * resident, and statistics report them next to the slabs' size: a slab
 * grown ahead of need has none.
 *
 * FULLNESS LISTS (zsmalloc's fullness groups).  Each node keeps its slabs
 * on four lists: ALMOST_FULL (more than 3/4 out), ALMOST_EMPTY, EMPTY and
 * FULL.  Allocation takes from ALMOST_FULL, then ALMOST_EMPTY, then the
 * newest EMPTY slab, so objects pack into few slabs and the other slabs
 * drain; empty slabs gather on EMPTY, newest at the head, and reaping
 * frees them from the tail, oldest first (by the time they became empty).
 *
 * SIZING.  For objects of 'chunk' bytes, slab sizes are tried from the
 * smallest that holds the objects-per-slab target (kmem_cache_obj_per_slab)
 * to about twice that, and the one with the least waste per object wins,
 * the smaller on ties (seed: zsmalloc's pages-per-zspage choice).  Objects
 * too large for the target within the largest slab (kmem_cache_max_size)
 * get as many per slab as fit.
 *
 * COLOURING (Bonwick 1994).  Objects whose stride is a multiple of a
 * large power of two sit at the same few offsets of every page: 1 KiB
 * objects touch 4 of the 64 sets a 4 KiB page spans, in every slab, and
 * a working set of them thrashes those sets while the rest stay idle.
 * So successive slabs start their first object at successive colours,
 * multiples of color_step (the alignment, at least a cache line) below
 * the stride's period (its largest power-of-two divisor, at most a page),
 * as far as the slab's slack reaches.  Where the stride has a period of
 * 1 KiB or more and the alignment leaves it free to move, sizing leaves
 * room for every colour: it then takes the first size, from the target
 * up, whose slack is within 1/32 of the slab.  Size classes
 * (KMC_SIZECLASS) leave no room, and use the slack they have.  Colours
 * stay below a page, so a slab's span is its base rounded down to a page.
 *
 * INVARIANTS.  A slab is on exactly one list of its node, the one its
 * inuse count selects.  inuse == fresh - |freelist|.  Every object out
 * lies below fresh, so kmem_cache_free takes back no object at or past
 * it (slab_obj_carved): one never handed out would be handed out twice,
 * and would count a slab whose objects are in use as empty, to be reaped
 * under them.  fresh is written atomically for that unlocked read.
 * carved_pages covers [span, base + fresh * chunk) and never shrinks.
 * Per node, slab_total, obj_total, obj_inuse and pages_carved are the
 * sums over its slabs; the layer's atomic slab_total/obj_inuse are the
 * sums over its nodes.
 *
 * NODES.  Under kmem_numa_policy=local a cache has a list set per NUMA
 * node: a slab is grown for (and bound to) the node of the CPU that needs
 * it, an allocation takes from its CPU's node first and then from the
 * others nearest first (distance order from cpu.c), and a freed object
 * goes back to its own slab, on its own node, wherever it is freed.
 *
 * LOCKING.  Each node's lock protects its lists, its slabs' descriptors
 * and its counters.  Only one node lock is held at a time.  Growing and
 * freeing spans call into the arena (its own lock) without a node lock
 * held, so a syscall never runs under a node lock.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "cpu.h"
#include "meta.h"
#include "slab.h"
#include "tunables.h"
#include "vmem.h"

META_FITS(struct kmem_slab);
_Static_assert(offsetof(struct kmem_slab, fast) ==
    offsetof(struct kmem_slab, kind) + 1, "slab_word_of reads both");
_Static_assert(offsetof(struct kmem_slab, kind) == 0, "owner kind first");
_Static_assert(KMEM_MAX_NODES <= 256, "node index in a byte");

#define SLAB_KVMEM_MIN  ((size_t)2 << 20)
#define SLAB_CLASS_MIN  ((size_t)64 << 10)     /* KMC_SIZECLASS slabs */

static size_t
slab_page(void)
{
	return ((size_t)1 << vmem_page_shift);
}

size_t
slab_max_object(void)
{
	return ((size_t)tunable(KT_CACHE_MAX_SIZE) << 20);
}

/*
 * Largest power of two dividing chunk, at most a page: objects at this
 * stride from a page-aligned start begin only at multiples of it, so
 * their first lines fall on page / period of a page's line offsets.
 */
static size_t
slab_color_period(size_t chunk)
{
	return (KMEM_MIN(chunk & -chunk, slab_page()));
}

/*
 * Room to leave in each slab for colouring: enough to shift objects
 * through every cache-line offset of their period.  Only for periods of
 * 1 KiB or more, whose objects start on at most 4 of a page's 64 line
 * offsets (smaller periods reach 8 or more, enough for most working sets,
 * and the room would cost them up to 1/32 of their memory), that the
 * alignment leaves free to move, and not for size classes, whose slabs
 * are sized for memory alone.
 */
static size_t
slab_color_room(size_t chunk, size_t align, int cflags)
{
	size_t period = slab_color_period(chunk);
	size_t step = KMEM_MAX(align, (size_t)KMEM_CACHE_LINE);

	if ((cflags & KMC_SIZECLASS) || period < 1024 || step >= period)
		return (0);
	return (period - step);
}

size_t
slab_size_for(size_t chunk, size_t align, int cflags, uint32_t *objs)
{
	size_t page = slab_page();
	size_t maxpages = slab_max_object() / page;
	size_t want = (size_t)tunable(KT_CACHE_OBJ_PER_SLAB);
	size_t room = slab_color_room(chunk, align, cflags);
	size_t lo, hi, best = 0;
	double best_waste = 0;

	if (chunk == 0 || chunk > maxpages * page)
		return (0);
	if (chunk + room > maxpages * page)
		room = 0;
	if (chunk * want + room > maxpages * page)
		want = (maxpages * page - room) / chunk;        /* >= 1 */
	lo = (chunk * want + room + page - 1) / page;
	if ((cflags & KMC_KVMEM) && lo < SLAB_KVMEM_MIN / page)
		lo = KMEM_MIN(SLAB_KVMEM_MIN / page, maxpages);
	if ((cflags & KMC_SIZECLASS) && lo < SLAB_CLASS_MIN / page)
		lo = KMEM_MIN(SLAB_CLASS_MIN / page, maxpages);
	hi = KMEM_MIN(maxpages, 2 * lo + 16);
	for (size_t p = lo; p <= hi; p++) {
		size_t n = (p * page - room) / chunk;
		size_t slack = p * page - n * chunk;
		double waste;

		if (n < want)
			continue;
		waste = (double)slack / (double)n;
		if (room > 0 && slack * 32 <= p * page) {
			best = p;               /* colour room within 1/32 */
			break;
		}
		if (best == 0 || waste < best_waste) {
			best = p;
			best_waste = waste;
			if (slack == 0)
				break;
		}
	}
	*objs = (uint32_t)((best * page - room) / chunk);
	return (best * page);
}

int
slab_layer_init(struct slab_layer *sl, size_t chunk, size_t align,
    int cflags, struct slab_node *nodes, unsigned int nnodes)
{
	size_t period = slab_color_period(chunk);
	uint64_t odd, inv;

	memset(sl, 0, sizeof (*sl));
	sl->chunk = chunk;
	sl->slab_size = slab_size_for(chunk, align, cflags,
	    &sl->objs_per_slab);
	if (sl->slab_size == 0) {
		errno = EINVAL;
		return (-1);
	}
	sl->objs_bytes = (size_t)sl->objs_per_slab * chunk;
	/* Colours: the slack, as far as the period has offsets to use. */
	sl->color_step = KMEM_MAX(align, (size_t)KMEM_CACHE_LINE);
	sl->ncolors = 1;
	if (sl->color_step < period)
		sl->ncolors = (uint32_t)(KMEM_MIN(sl->slab_size -
		    sl->objs_bytes, period - sl->color_step) /
		    sl->color_step + 1);
	sl->chunk_shift = (unsigned int)__builtin_ctzll(chunk);
	odd = chunk >> sl->chunk_shift;
	inv = odd;                      /* Newton: each step doubles the bits */
	for (int i = 0; i < 5; i++)
		inv *= 2 - odd * inv;
	sl->chunk_inv = inv;
	sl->objs_lim = sl->objs_per_slab;
	sl->nodes = nodes;
	sl->nnodes = nnodes;
	memset(nodes, 0, nnodes * sizeof (*nodes));     /* locks: the caller's */
	return (0);
}

/* Take a node's lock, counting the times someone else held it. */
static void
slab_node_lock(struct slab_node *sn)
{
	if (pthread_mutex_trylock(sn->lock) != 0) {
		pthread_mutex_lock(sn->lock);
		sn->contended++;
	}
}

/* ------------------------------------------------------------ lists */

static void
slab_list_remove(struct slab_node *sn, struct kmem_slab *s)
{
	struct slab_list_head *l = &sn->lists[s->list];

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		l->head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	else
		l->tail = s->prev;
	l->count--;
}

static void
slab_list_push(struct slab_node *sn, struct kmem_slab *s, enum slab_list which)
{
	struct slab_list_head *l = &sn->lists[which];

	s->list = (uint8_t)which;
	s->prev = NULL;
	s->next = l->head;
	if (l->head != NULL)
		l->head->prev = s;
	else
		l->tail = s;
	l->head = s;
	l->count++;
}

static inline enum slab_list
slab_fullness(const struct kmem_slab *s)
{
	uint32_t nobjs = s->cache->sl.objs_per_slab;

	if (s->inuse == 0)
		return (SLAB_EMPTY);
	if (s->inuse == nobjs)
		return (SLAB_FULL);
	return ((uint64_t)s->inuse * 4 > (uint64_t)nobjs * 3 ?
	    SLAB_ALMOST_FULL : SLAB_ALMOST_EMPTY);
}

/* Move s to the list its fullness selects, if that changed. */
static void
slab_relist(struct slab_node *sn, struct kmem_slab *s)
{
	enum slab_list want = slab_fullness(s);

	if (want == s->list)
		return;
	slab_list_remove(sn, s);
	if (want == SLAB_EMPTY)
		s->empty_since = kmem_stamp_ns();
	slab_list_push(sn, s, want);
}

/* ------------------------------------------------------------ objects */

/*
 * Count the pages that s's carving has reached (its colour, then objects
 * [0, fresh)): they may be resident from now until the slab is freed,
 * whatever is returned to it meanwhile.  Node lock held.
 */
static void
slab_note_carved(struct slab_node *sn, struct kmem_slab *s, size_t chunk)
{
	size_t page = slab_page();
	uint32_t pages = (uint32_t)(((size_t)(s->base - slab_span(s)) +
	    (size_t)s->fresh * chunk + page - 1) >> vmem_page_shift);

	if (pages > s->carved_pages) {
		sn->pages_carved += pages - s->carved_pages;
		s->carved_pages = pages;
	}
}

/*
 * The index of s's next uncarved object, carved.  Node lock held; an
 * atomic store, as kmem_cache_free reads fresh without the lock
 * (slab_obj_carved).
 */
static inline uint32_t
slab_carve(struct kmem_slab *s)
{
	uint32_t i = s->fresh;

	__atomic_store_n(&s->fresh, i + 1, __ATOMIC_RELAXED);
	return (i);
}

/* Take up to n objects from one node's slabs.  Node lock held. */
static unsigned int
slab_alloc_node(struct slab_node *sn, const struct slab_layer *sl,
    void **objs, unsigned int n)
{
	static const enum slab_list order[] = {
		SLAB_ALMOST_FULL, SLAB_ALMOST_EMPTY, SLAB_EMPTY
	};
	size_t chunk = sl->chunk, link_off = sl->link_off;
	unsigned int got = 0;

	for (unsigned int i = 0; i < 3 && got < n; i++) {
		struct kmem_slab *s;

		while (got < n && (s = sn->lists[order[i]].head) != NULL) {
			unsigned int before = got;

			while (got < n && s->inuse < sl->objs_per_slab) {
				void *obj = s->freelist;
				if (obj != NULL)
					s->freelist = *(void **)((char *)obj +
					    link_off);
				else
					obj = s->base + (size_t)slab_carve(s) *
					    chunk;
				objs[got++] = obj;
				s->inuse++;
			}
			sn->obj_inuse += got - before;
			slab_note_carved(sn, s, chunk);
			slab_relist(sn, s);
		}
	}
	return (got);
}

unsigned int
slab_alloc(struct kmem_cache *cp, int node, void **objs, unsigned int n)
{
	struct slab_layer *sl = &cp->sl;
	/* The local node first, then the others nearest first. */
	const int *order = sl->nnodes == cpu_node_count() ?
	    cpu_node_order(node) : NULL;
	unsigned int got = 0;

	for (unsigned int i = 0; i < sl->nnodes && got < n; i++) {
		struct slab_node *sn = &sl->nodes[order != NULL ?
		    (unsigned int)order[i] : ((unsigned int)node + i) %
		    sl->nnodes];

		slab_node_lock(sn);
		got += slab_alloc_node(sn, sl, objs + got, n - got);
		pthread_mutex_unlock(sn->lock);
	}
	atomic_fetch_add_explicit(&sl->obj_inuse, got, memory_order_relaxed);
	return (got);
}

unsigned int
slab_grow(struct kmem_cache *cp, int node, unsigned int count)
{
	struct slab_layer *sl = &cp->sl;
	struct slab_node *sn = &sl->nodes[(unsigned int)node % sl->nnodes];
	struct kmem_slab *batch = NULL, *s;
	unsigned int made = 0;
	int64_t now = kmem_stamp_ns();

	/* Until they are linked, fork() waits (FLUSHES in magazine.c). */
	mag_flush_enter();
	/* Map them first, with no node lock held ... */
	while (made < count) {
		s = meta_alloc();
		if (s == NULL)
			break;
		s->kind = KMEM_OWNER_SLAB;
		s->fast = (cp->mag.mode == MAG_RSEQ ? SLAB_FAST_RSEQ : 0) |
		    ((cp->cflags & KMC_SIZECLASS) ? SLAB_FAST_CLASS : 0);
		s->node = (uint8_t)((unsigned int)node % sl->nnodes);
		s->cache = cp;
		s->base = vmem_span_alloc(sl->slab_size, node, s);
		if (s->base == NULL) {
			meta_free(s);
			break;
		}
		s->base += (atomic_fetch_add_explicit(&sl->color_next, 1,
		    memory_order_relaxed) % sl->ncolors) * sl->color_step;
		s->empty_since = now;
		s->next = batch;
		batch = s;
		made++;
	}
	if (made == 0) {
		mag_flush_exit();
		errno = ENOMEM;
		return (0);
	}
	/* ... then link them all under one lock acquisition. */
	slab_node_lock(sn);
	while ((s = batch) != NULL) {
		batch = s->next;
		slab_list_push(sn, s, SLAB_EMPTY);
	}
	sn->slab_total += made;
	sn->obj_total += (uint64_t)made * sl->objs_per_slab;
	/* Under the lock, as reap's decrement: never above the true sum. */
	kmem_note_max(&sl->slab_max, atomic_fetch_add_explicit(
	    &sl->slab_total, made, memory_order_relaxed) + made);
	pthread_mutex_unlock(sn->lock);
	mag_flush_exit();
	return (made);
}

struct kmem_slab *
slab_of(struct kmem_cache *cp, const void *obj)
{
	struct kmem_slab *s = vmem_owner(obj);

	if (s == NULL || s->kind != KMEM_OWNER_SLAB || s->cache != cp ||
	    !slab_obj_ok(&cp->sl, s, obj))
		return (NULL);
	return (s);
}

unsigned int
slab_free(struct kmem_cache *cp, void **objs, unsigned int n)
{
	struct slab_layer *sl = &cp->sl;
	struct slab_node *locked = NULL;
	unsigned int taken = 0;

	for (unsigned int i = 0; i < n; i++) {
		char *obj = objs[i];
		struct kmem_slab *s = slab_of(cp, obj);
		struct slab_node *sn;

		if (s == NULL) {
			kmem_report("cache %s: %p is not an object of this "
			    "cache; ignored", cp->name, (void *)obj);
			continue;
		}
		sn = &sl->nodes[s->node];
		if (sn != locked) {
			if (locked != NULL)
				pthread_mutex_unlock(locked->lock);
			slab_node_lock(sn);
			locked = sn;
		}
		if (KMEM_UNLIKELY(s->inuse == 0)) {
			/* Its slab has nothing out: a double free. */
			kmem_report("cache %s: %p freed twice (its slab has no "
			    "object out); ignored", cp->name, (void *)obj);
			KMEM_ASSERT(s->inuse != 0);
			continue;
		}
		if (obj == s->base + (size_t)(s->fresh - 1) * sl->chunk) {
			/* back to the uncarved part, unwritten */
			__atomic_store_n(&s->fresh, s->fresh - 1,
			    __ATOMIC_RELAXED);
		} else {
			*(void **)(obj + sl->link_off) = s->freelist;
			s->freelist = obj;
		}
		s->inuse--;
		sn->obj_inuse--;
		slab_relist(sn, s);
		taken++;
	}
	if (locked != NULL)
		pthread_mutex_unlock(locked->lock);
	atomic_fetch_sub_explicit(&sl->obj_inuse, taken, memory_order_relaxed);
	return (taken);
}

/*
 * Return the pages of a list of unlinked slabs, one call per run of
 * slabs adjacent in the list and in memory (slabs grown together and
 * emptied in order free as a few long runs instead of thousands of
 * slab-sized calls).
 */
static void
slab_return_pages(struct kmem_slab *s, size_t size)
{
	char *run = NULL;
	size_t len = 0;

	for (; s != NULL; s = s->next) {
		char *b = slab_span(s);

		if (run != NULL && b == run + len) {
			len += size;
		} else if (run != NULL && b + size == run) {
			run = b;
			len += size;
		} else {
			if (run != NULL)
				vmem_pages_return(run, len);
			run = b;
			len = size;
		}
	}
	if (run != NULL)
		vmem_pages_return(run, len);
}

uint64_t
slab_reap(struct kmem_cache *cp, int64_t before)
{
	struct slab_layer *sl = &cp->sl;
	uint64_t freed = 0;

	for (unsigned int n = 0; n < sl->nnodes; n++) {
		struct slab_node *sn = &sl->nodes[n];
		struct kmem_slab *victims = NULL, *s;
		uint64_t unlinked = 0;

		/* Unlink the old empty slabs under the lock ... */
		pthread_mutex_lock(sn->lock);
		while ((s = sn->lists[SLAB_EMPTY].tail) != NULL &&
		    (before == 0 || s->empty_since < before)) {
			slab_list_remove(sn, s);
			sn->slab_total--;
			sn->obj_total -= sl->objs_per_slab;
			sn->pages_carved -= s->carved_pages;
			s->next = victims;
			victims = s;
			unlinked++;
		}
		/*
		 * The layer's sum drops with the node's: counted down only
		 * once the pages are back, a slab grown meanwhile would raise
		 * slab_max above any number of slabs the cache ever had.
		 */
		atomic_fetch_sub_explicit(&sl->slab_total, unlinked,
		    memory_order_relaxed);
		pthread_mutex_unlock(sn->lock);
		/* ... and give their memory back without it. */
		slab_return_pages(victims, sl->slab_size);
		while ((s = victims) != NULL) {
			victims = s->next;
			vmem_span_free_returned(slab_span(s), sl->slab_size);
			meta_free(s);
			freed++;
		}
	}
	return (freed);
}

void
slab_counts(struct kmem_cache *cp, struct slab_counts *c,
    struct kmem_node_stats *node)
{
	struct slab_layer *sl = &cp->sl;

	memset(c, 0, sizeof (*c));
	for (unsigned int n = 0; n < sl->nnodes; n++) {
		struct slab_node *sn = &sl->nodes[n];

		pthread_mutex_lock(sn->lock);
		if (node != NULL) {
			node[n].slab_total = sn->slab_total;
			node[n].slab_alloc = sn->slab_total -
			    sn->lists[SLAB_EMPTY].count;
			node[n].obj_total = sn->obj_total;
			node[n].obj_alloc = sn->obj_inuse;
		}
		c->slab_total += sn->slab_total;
		c->obj_total += sn->obj_total;
		c->obj_inuse += sn->obj_inuse;
		c->almost_full += sn->lists[SLAB_ALMOST_FULL].count;
		c->almost_empty += sn->lists[SLAB_ALMOST_EMPTY].count;
		c->empty += sn->lists[SLAB_EMPTY].count;
		c->full += sn->lists[SLAB_FULL].count;
		c->pages_carved += sn->pages_carved;
		c->contended += sn->contended;
		pthread_mutex_unlock(sn->lock);
	}
	c->slab_alloc = c->slab_total - c->empty;
}
