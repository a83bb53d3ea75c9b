/*
 * kmem_cache.c - the object cache API: create, alloc, free, reap,
 * destroy, statistics, and the registry of caches.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * CONSTRUCTED-STATE CACHING (Solaris semantics, not the SPL's).  An object
 * is in one of three places: in the slab layer, unconstructed; held by the
 * application, constructed; or cached in the magazine layer (magazine.c),
 * constructed and free.  The constructor runs when an object leaves the
 * slab layer, the destructor when it goes back (magazine flush, reap,
 * destroy), so an object that cycles between the application and the
 * cache is constructed once.  A constructor that fails sends the object
 * back to the slab layer unconstructed and that allocation returns NULL
 * (counted in alloc_fail).  KMC_NOMAGAZINE caches have no magazine layer:
 * every free destructs, every allocation constructs.
 *
 * DEBUG CACHES (KMEM_DEBUG, debug.c) have no magazine layer and no rseq
 * key, so every call takes the slow path, where debug.c checks objects as
 * they leave and enter the slab layer (cache_take, cache_untake) and the
 * application (cache_alloc_slow, cache_free_slow).
 *
 * FAST PATH.  kmem_cache_alloc and kmem_cache_free check their arguments
 * and, in rseq mode, pop or push one round of this CPU's loaded magazine
 * in a restartable sequence: no lock, no atomic read-modify-write, no
 * shared write.  Everything else is the magazine layer's slow path.
 *
 * MEMORY.  Objects come from the slab layer (slab.c), which grows by one
 * slab at a time from the arena (vmem.c): inline while the cache is small,
 * else on the kmem taskq (grow.c).  The cache structure itself, with its
 * per-CPU arrays, is a run of metadata pages (meta_pages_alloc, meta.c).
 * When no slab can be had the cache maps a single emergency object
 * (emergency.c).  KM_NOSLEEP may then
 * fail; KM_SLEEP and KM_PUSHPAGE never return NULL for lack of memory:
 * they reap and retry, waiting a little longer each time.
 *
 * COUNTERS.  Magazine hits are counted by the magazine layer's per-CPU
 * commit counters; slow-path allocations, frees and failures in per-CPU
 * kmem_cpu_stats.  All are summed when read; alloc - free is what the
 * application holds.  Objects out of the slab layer (obj_alloc) = held +
 * cached; emergency objects count in both.
 *
 * LOCKING.  kmem_caches_lock protects the registry.  The magazine layer
 * has a lock per CPU, the slab layer one per node, emergency objects one
 * per cache; no two of these are held together, and constructors and
 * destructors run with no libkmem lock held.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cpu.h"
#include "meta.h"
#include "place.h"
#include "reap.h"
#include "taskq_impl.h"
#include "tunables.h"
#include "vmem.h"

static pthread_mutex_t kmem_caches_lock KMEM_FORK_LOCK =
    PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t kmem_caches_cv KMEM_FORK_LOCK =
    PTHREAD_COND_INITIALIZER;
static struct kmem_cache *kmem_caches;
static uint64_t kmem_caches_created;    /* the last cache's id */
static pthread_once_t kmem_once = PTHREAD_ONCE_INIT;
static size_t cache_granule;    /* alignment of a cache's per-CPU arrays */
static size_t cache_lead;       /* bytes before a cache structure in its run */
__thread bool cache_creating __attribute__((tls_model("initial-exec")));

static void
kmem_init_once(void)
{
	int cancel = kmem_cancel_off();         /* cpu_init reads files */

	cpu_init();
	tunables_init();
	vmem_init();
	fork_init();
	/*
	 * Per-CPU arrays start on pages of their own on NUMA machines whose
	 * magazine state spans pages, so that a page holds CPUs of one node
	 * where the numbering allows (place_percpu).  Where it fits one page
	 * that page holds every node's CPUs anyway: the arrays pack with the
	 * structure, as on one node, and a used cache costs 4 pages fewer.
	 */
	cache_granule = cpu_numa_real() && cpu_count() *
	    sizeof (struct mag_cpu) > (size_t)sysconf(_SC_PAGESIZE) ?
	    (size_t)sysconf(_SC_PAGESIZE) : KMEM_CACHE_LINE;
	cache_lead = KMEM_P2ROUNDUP(CACHE_MAG_OFF, cache_granule) -
	    CACHE_MAG_OFF;
	kmem_cancel_restore(cancel);
}

void
kmem_init(void)
{
	(void) pthread_once(&kmem_once, kmem_init_once);
}

/*
 * The i-th lock of cp (NULL past the last): the locks that fork() takes
 * (cache_fork_lock), each packed with other caches' locks (see MUTEXES in
 * meta.c).
 */
static pthread_mutex_t **
cache_lock_slot(struct kmem_cache *cp, unsigned int i)
{
	unsigned int ncpus = cp->mag.mode != MAG_NONE ? cpu_count() : 0;

	if (i < ncpus)
		return (&cp->mag.cpu[i].lock);
	i -= ncpus;
	if (i < cp->sl.nnodes)
		return (&cp->sl.nodes[i].lock);
	i -= cp->sl.nnodes;
	return (i == 0 ? &cp->grow.lock : i == 1 ? &cp->emerg.lock : NULL);
}

static void
cache_locks_free(struct kmem_cache *cp)
{
	pthread_mutex_t **slot;

	for (unsigned int i = 0; (slot = cache_lock_slot(cp, i)) != NULL;
	    i++) {
		meta_mutex_free(*slot);
		*slot = NULL;
	}
}

/* All or none: -1 when metadata memory runs out. */
static int
cache_locks_alloc(struct kmem_cache *cp)
{
	pthread_mutex_t **slot;

	for (unsigned int i = 0; (slot = cache_lock_slot(cp, i)) != NULL;
	    i++) {
		if ((*slot = meta_mutex_alloc()) == NULL) {
			cache_locks_free(cp);
			return (-1);
		}
	}
	return (0);
}

/* cp is a live cache; otherwise report it for 'fn' and set errno. */
static bool
cache_ok(const struct kmem_cache *cp, const char *fn)
{
	if (KMEM_LIKELY(cp != NULL && cp->magic == KMEM_CACHE_MAGIC))
		return (true);
	if (cp == NULL)
		kmem_report("%s: NULL cache", fn);
	else
		kmem_report("%s: %p is not a kmem cache (destroyed or "
		    "corrupt)", fn, (const void *)cp);
	errno = EINVAL;
	return (false);
}

static inline void
stat_inc(_Atomic uint64_t *c)
{
	stat_add(c, 1);
}

/* ------------------------------------------------ leaving the cache */

static void
cache_reap(struct kmem_cache *cp)
{
	mag_flush_all(cp);
	(void) slab_reap(cp, 0);
}

/* ------------------------------------------------ new objects */

/* Sleep a little longer on each try, up to 100 ms. */
void
cache_backoff(unsigned int tries)
{
	struct timespec ts = { 0, 1000000L << KMEM_MIN(tries, 6U) };
	int cancel;

	if (ts.tv_nsec > 100000000L)
		ts.tv_nsec = 100000000L;
	cancel = kmem_cancel_off();
	(void) nanosleep(&ts, NULL);
	kmem_cancel_restore(cancel);
}

/* Add one slab in the calling thread; counted in slab_grows as grow.c's. */
static bool
cache_grow_now(struct kmem_cache *cp, int node)
{
	if (slab_grow(cp, node, 1) == 0)
		return (false);
	atomic_fetch_add(&cp->grow.slabs, 1);
	return (true);
}

/*
 * Up to n unconstructed objects from the slab layer.  When it has none,
 * background growth (grow.c) adds a slab, and the caller may wait for it;
 * when growth is too slow (or the caller cannot wait) the caller gets one
 * emergency object.  When even that cannot be mapped, memory is short:
 * every cache is reaped (once a try, by growth or here) and the cache
 * tries to grow once more before KM_NOSLEEP fails; KM_SLEEP and
 * KM_PUSHPAGE wait and retry.
 */
static unsigned int
cache_take(struct kmem_cache *cp, void **objs, unsigned int n, int kmflags)
{
	int node = cpu_node(cpu_current());
	unsigned int got;

	for (unsigned int tries = 0;; tries++) {
		uint64_t pgen = reap_pressure_gen();

		got = slab_alloc(cp, node, objs, n);
		if (got != 0) {
			grow_ahead(cp, node);
			break;
		}
		if (grow_wait(cp, node, kmflags) == 0)
			continue;
		/*
		 * A debug cache grows itself rather than hand out emergency
		 * objects: their state would go with them when freed, and a
		 * double free or write after free could not be told.
		 */
		if (KMEM_UNLIKELY(DEBUG_CACHE(cp)) &&
		    !(kmflags & (KM_NOSLEEP | KM_PUSHPAGE)) &&
		    cache_grow_now(cp, node))
			continue;
		objs[0] = emergency_alloc(&cp->emerg, cp->sl.chunk);
		if (objs[0] != NULL) {
			got = 1;
			break;
		}
		/*
		 * One reap a try: growth that failed inline reaped already
		 * (grow_inline), and a reap of another thread's since the
		 * try began gave back what this one would.
		 */
		if (reap_pressure_gen() == pgen)
			reap_pressure();
		if (cache_grow_now(cp, node))
			continue;
		if (kmflags & (KM_NOSLEEP | KM_MAYFAIL)) {
			errno = ENOMEM;
			return (0);
		}
		if (tries == 0)
			kmem_report("kmem_cache_alloc(%s): out of memory; "
			    "waiting for memory to be freed", cp->name);
		cache_backoff(tries);
	}
	kmem_note_max(&cp->obj_max, atomic_load_explicit(&cp->sl.obj_inuse,
	    memory_order_relaxed) + atomic_load_explicit(&cp->emerg.count,
	    memory_order_relaxed));
	if (KMEM_UNLIKELY(DEBUG_CACHE(cp)))
		debug_take(cp, objs, got);
	return (got);
}

/* Give back objects that were never constructed. */
static void
cache_untake(struct kmem_cache *cp, void **objs, unsigned int n)
{
	unsigned int keep = 0;

	if (KMEM_UNLIKELY(DEBUG_CACHE(cp)))
		debug_untake(cp, objs, n);
	for (unsigned int i = 0; i < n; i++) {
		if (vmem_owner(objs[i]) == NULL &&
		    emergency_release(&cp->emerg, objs[i]))
			continue;
		objs[keep++] = objs[i];
	}
	if (keep != 0)
		(void) slab_free(cp, objs, keep);
}

/*
 * Destruct objects and give them back: slab objects to their slabs,
 * emergency objects to the system.
 */
void
cache_release(struct kmem_cache *cp, void **objs, unsigned int n)
{
	/* Objects leaving magazines were released there (TSan builds). */
	for (unsigned int i = 0; i < n; i++)
		KMEM_TSAN_ACQUIRE(objs[i]);
	if (cp->dtor != NULL) {
		for (unsigned int i = 0; i < n; i++)
			cp->dtor(objs[i], cp->priv);
		stat_add(&cp->dtor_calls, n);
	}
	cache_untake(cp, objs, n);
}

/*
 * The caches whose constructors this thread is running, innermost first:
 * frames on the stack of cache_fill.  A constructor that needs a new
 * object of its own cache, directly or through another cache's
 * constructor, would construct again without end (until the stack runs
 * out); that request fails instead, reported once per batch.
 */
struct cache_ctor_frame {
	const struct kmem_cache *cp;
	struct cache_ctor_frame *up;
	bool reported;
};
static __thread struct cache_ctor_frame *cache_ctors
    __attribute__((tls_model("initial-exec")));

static bool
cache_ctor_recursion(const struct kmem_cache *cp)
{
	for (struct cache_ctor_frame *f = cache_ctors; f != NULL; f = f->up) {
		if (f->cp != cp)
			continue;
		if (!f->reported)
			kmem_report("kmem_cache_alloc(%s): called from the "
			    "cache's own constructor with no constructed object "
			    "at hand; returning NULL", cp->name);
		f->reported = true;
		return (true);
	}
	return (false);
}

unsigned int
cache_fill(struct kmem_cache *cp, void **objs, unsigned int n, int kmflags)
{
	struct cache_ctor_frame frame = { cp, cache_ctors, false };
	unsigned int got, ok = 0;

	if (cp->ctor != NULL && KMEM_UNLIKELY(cache_ctor_recursion(cp))) {
		errno = EDEADLK;
		return (0);
	}
	got = cache_take(cp, objs, n, kmflags);
	if (cp->ctor == NULL || got == 0)
		return (got);
	/*
	 * The last object is the caller's: if its constructor fails, so does
	 * the allocation.  The rest of the batch stops at the first failure;
	 * what is not constructed goes back unconstructed.
	 */
	cache_ctors = &frame;
	while (ok < got) {
		unsigned int i = got - 1 - ok;

		stat_inc(&cp->ctor_calls);
		/* KM_MAYFAIL is libkmem's (mempool.c): not the ctor's. */
		if (cp->ctor(objs[i], cp->priv, kmflags & ~KM_MAYFAIL) != 0)
			break;
		ok++;
	}
	cache_ctors = frame.up;
	if (ok < got) {
		cache_untake(cp, objs, got - ok);
		memmove(objs, objs + (got - ok), ok * sizeof (void *));
	}
	if (ok == 0)
		errno = ENOMEM;
	return (ok);
}

/* ------------------------------------------------ the API */

KMEM_EXPORT kmem_cache_t *
kmem_cache_create(const char *name, size_t size, size_t align,
    kmem_ctor_t *ctor, kmem_dtor_t *dtor, kmem_reclaim_t *reclaim,
    void *priv, vmem_t *vmp, int cflags)
{
	bool was = cache_creating;
	kmem_cache_t *cp;

	cache_creating = true;
	cp = cache_create(name, size, align, ctor, dtor, reclaim, priv, vmp,
	    cflags, false);
	cache_creating = was;
	return (cp);
}

kmem_cache_t *
cache_create(const char *name, size_t size, size_t align,
    kmem_ctor_t *ctor, kmem_dtor_t *dtor, kmem_reclaim_t *reclaim,
    void *priv, vmem_t *vmp, int cflags, bool sizeclass)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned int nnodes, ncpus;
	size_t chunk, len, nodes_off, cpu_off, mags_off;
	enum mag_mode mode;
	uint32_t dflags, magsize = 0;
	struct kmem_cache *cp;
	char *run;
	const char *why = NULL;

	kmem_init();
	if (name == NULL || name[0] == '\0')
		why = "a name is required";
	else if (strnlen(name, KMEM_CACHE_NAMELEN) >= KMEM_CACHE_NAMELEN)
		why = "name longer than KMEM_CACHE_NAMELEN - 1";
	else if (size == 0)
		why = "size 0";
	else if (size > slab_max_object())
		why = "size larger than the largest slab (kmem_cache_max_size)";
	else if (align != 0 && (!KMEM_IS_P2(align) || align > page))
		why = "align must be a power of two no larger than a page";
	else if (cflags & ~KMC_VALID_FLAGS)
		why = "unknown cflags bits";
	else if (vmp != NULL)
		why = "vmem arenas (vmp) are not supported; pass NULL";
	if (why != NULL) {
		if (!sizeclass)         /* ka_create says it in its words */
			kmem_report("kmem_cache_create(%.*s, %zu, %zu): %s",
			    KMEM_CACHE_NAMELEN, name != NULL ? name : "NULL",
			    size, align, why);
		errno = EINVAL;
		return (NULL);
	}

	if (align < KMEM_ALIGN)
		align = KMEM_ALIGN;
	if (sizeclass)
		cflags |= KMC_SIZECLASS;
	nnodes = place_cache_nodes();
	ncpus = cpu_count();
	/* Debug caches have no magazines: their calls take the slow path. */
	dflags = debug_flags_for(cflags);
	mode = (cflags & KMC_NOMAGAZINE) || dflags != 0 ? MAG_NONE :
	    mag_default_mode();
	if (mode != MAG_NONE)
		magsize = mag_size_for(KMEM_P2ROUNDUP(size, align));
	/*
	 * Offsets in the run: the structure after cache_lead bytes, the
	 * per-CPU magazine state right after it (see cache_mag_cpus), then
	 * the slab nodes, the statistics array and the magazines themselves
	 * (page-aligned on NUMA machines: see mag_region_len).
	 */
	nodes_off = KMEM_P2ROUNDUP(cache_lead + CACHE_MAG_OFF + ncpus *
	    sizeof (struct mag_cpu), cache_granule);
	cpu_off = KMEM_P2ROUNDUP(nodes_off + nnodes * sizeof (struct slab_node),
	    cache_granule);
	mags_off = KMEM_P2ROUNDUP(cpu_off + ncpus *
	    sizeof (struct kmem_cpu_stats), cpu_numa_real() ? page :
	    cache_granule);
	len = KMEM_P2ROUNDUP(mags_off + (mode != MAG_NONE ?
	    mag_region_len(magsize) : 0), page);
	if ((run = meta_pages_alloc(len)) == NULL) {
		errno = ENOMEM;
		return (NULL);
	}
	cp = (struct kmem_cache *)(run + cache_lead);
	memcpy(cp->name, name, strlen(name) + 1);
	chunk = debug_setup(cp, dflags, size, align);
	cp->size = size;
	cp->align = align;
	cp->cflags = cflags;
	cp->ctor = ctor;
	cp->dtor = dtor;
	cp->reclaim = reclaim;
	cp->priv = priv;
	cp->map_len = len;
	cp->cpu = (struct kmem_cpu_stats *)(run + cpu_off);
	cp->mag.cpu = cache_mag_cpus(cp);
	if (slab_layer_init(&cp->sl, chunk, align, cflags,
	    (struct slab_node *)(run + nodes_off), nnodes) != 0) {
		if (DEBUG_CACHE(cp) && !sizeclass)
			kmem_report("kmem_cache_create(%s, %zu, %zu): size "
			    "with the KMEM_DEBUG redzone larger than the "
			    "largest slab", name, size, align);
		meta_pages_free(run, len);
		errno = EINVAL;
		return (NULL);
	}
	cp->sl.link_off = debug_link_off(cp);
	if (mag_layer_init(cp, mode, magsize, run + mags_off) != 0) {
		meta_pages_free(run, len);
		errno = ENOMEM;
		return (NULL);
	}
	if (cache_locks_alloc(cp) != 0) {
		mag_layer_fini(cp);
		meta_pages_free(run, len);
		errno = ENOMEM;
		return (NULL);
	}
	/*
	 * The magazine state was written here: move it to its CPUs' nodes.
	 * The statistics slots are not written yet, so each page of them
	 * goes where it is first written, by its CPUs (place.c).
	 */
	if (mode != MAG_NONE && cache_granule > KMEM_CACHE_LINE)
		place_percpu(cp->mag.cpu, sizeof (struct mag_cpu), ncpus);
	emergency_init(&cp->emerg);
	grow_init(cp);
	cp->magic = KMEM_CACHE_MAGIC;
	if (cp->mag.mode == MAG_RSEQ) {
		cp->fastkey = KMEM_CACHE_FAST_RSEQ;
		cp->free_mask = UINT64_MAX;
	}

	pthread_mutex_lock(&kmem_caches_lock);
	cp->id = ++kmem_caches_created;
	cp->next = kmem_caches;
	if (kmem_caches != NULL)
		kmem_caches->prev = cp;
	kmem_caches = cp;
	pthread_mutex_unlock(&kmem_caches_lock);
	reap_start();
	return (cp);
}

/*
 * fork(): the registry lock, then every cache's locks in the order the
 * allocation paths take them (per-CPU magazine locks, growth, emergency
 * objects, slab nodes), held across it.
 */
void
cache_fork_lock(void)
{
	pthread_mutex_lock(&kmem_caches_lock);
	for (struct kmem_cache *cp = kmem_caches; cp != NULL; cp = cp->next) {
		if (cp->mag.mode != MAG_NONE) {
			for (unsigned int c = 0; c < cpu_count(); c++)
				pthread_mutex_lock(cp->mag.cpu[c].lock);
		}
		pthread_mutex_lock(cp->grow.lock);
		pthread_mutex_lock(cp->emerg.lock);
		for (unsigned int n = 0; n < cp->sl.nnodes; n++)
			pthread_mutex_lock(cp->sl.nodes[n].lock);
	}
}

static int cache_held_here(const struct kmem_cache *cp);

/*
 * After fork(): unlock.  In the child no thread waits on a condition
 * variable any more, and a grow task that was running in the parent is
 * gone (one still queued runs in the child): forget it.  So are the
 * parent's walkers (aging, kmemstat, kmem_reap, kmem_cache_reap_now)
 * that held caches: only this thread's own holds remain, else a
 * destroy in the child would wait for them for ever.
 */
void
cache_fork_unlock(bool child)
{
	for (struct kmem_cache *cp = kmem_caches; cp != NULL; cp = cp->next) {
		struct grow_state *g = &cp->grow;

		if (child && cp->refs != 0)
			cp->refs = cache_held_here(cp);
		for (unsigned int n = cp->sl.nnodes; n-- > 0;)
			pthread_mutex_unlock(cp->sl.nodes[n].lock);
		pthread_mutex_unlock(cp->emerg.lock);
		if (child) {
			/*
			 * Only when needed: the write would fault this
			 * cache's page in (see MUTEXES in meta.c).
			 */
			if (g->nwaiting != 0)
				grow_cv_init(g);
			if (atomic_load(&g->growing) &&
			    taskq_empty_ent(&g->ent)) {
				atomic_store(&g->growing, false);
				g->deadlocked = false;
				g->gen++;
			}
		}
		pthread_mutex_unlock(g->lock);
		if (cp->mag.mode != MAG_NONE) {
			for (unsigned int c = cpu_count(); c-- > 0;)
				pthread_mutex_unlock(cp->mag.cpu[c].lock);
		}
	}
	if (child)
		pthread_cond_init(&kmem_caches_cv, NULL);
	pthread_mutex_unlock(&kmem_caches_lock);
}

/*
 * The caches this thread's cache_walk() callbacks are running on,
 * innermost first (frames on cache_walk's stack).  A callback may end in
 * kmem_cache_destroy of its own cache (a reclaim callback destroying its
 * cache during kmem_reap); destroy cannot wait for this thread's
 * reference to go, so it leaves the cache to the walker to free.
 */
struct cache_walk_frame {
	const struct kmem_cache *cp;
	struct cache_walk_frame *up;
};
static __thread struct cache_walk_frame *cache_walks
    __attribute__((tls_model("initial-exec")));

/*
 * The cache whose grow task this thread runs, held while it runs
 * (cache_grow_hold): a reclaim callback that its pressure reap calls may
 * destroy that very cache, and destroy can then neither wait for the task
 * to end nor free the cache under it.
 */
static __thread struct kmem_cache *cache_grow_self
    __attribute__((tls_model("initial-exec")));

static int
cache_held_here(const struct kmem_cache *cp)
{
	int n = cache_grow_self == cp;

	for (struct cache_walk_frame *f = cache_walks; f != NULL; f = f->up)
		n += f->cp == cp;
	return (n);
}

/* Take cp out of the registry.  kmem_caches_lock held. */
static void
cache_unlink(struct kmem_cache *cp)
{
	if (cp->prev != NULL)
		cp->prev->next = cp->next;
	else
		kmem_caches = cp->next;
	if (cp->next != NULL)
		cp->next->prev = cp->prev;
}

/* The last of a destroyed cache: its magazines and its structure. */
static void
cache_free(struct kmem_cache *cp)
{
	cp->magic = 0;
	cp->fastkey = 0;
	cp->free_mask = 0;
	mag_layer_fini(cp);
	cache_locks_free(cp);
	meta_pages_free((char *)cp - cache_lead, cp->map_len);
}

/* Hold cp for a callback on this thread.  kmem_caches_lock held. */
static void
cache_hold_locked(struct kmem_cache *cp, struct cache_walk_frame *frame)
{
	cp->refs++;
	frame->cp = cp;
	frame->up = cache_walks;
	cache_walks = frame;
}

/*
 * Let go of cp; true when it was destroyed meanwhile and this was its
 * last holder: it is then unlinked, for the caller to cache_free() once
 * the lock is dropped.  kmem_caches_lock held.
 */
static bool
cache_unref_locked(struct kmem_cache *cp)
{
	cp->refs--;
	if (!cp->dying)
		return (false);
	if (cp->refs > 0 || !cp->free_on_release) {
		pthread_cond_broadcast(&kmem_caches_cv);  /* destroy waits */
		return (false);
	}
	cache_unlink(cp);
	return (true);
}

static bool
cache_drop_locked(struct kmem_cache *cp, struct cache_walk_frame *frame)
{
	cache_walks = frame->up;
	return (cache_unref_locked(cp));
}

bool
cache_grow_hold(struct kmem_cache *cp)
{
	bool held;

	pthread_mutex_lock(&kmem_caches_lock);
	held = !cp->dying;
	if (held) {
		cp->refs++;
		cache_grow_self = cp;
	}
	pthread_mutex_unlock(&kmem_caches_lock);
	return (held);
}

void
cache_grow_drop(struct kmem_cache *cp)
{
	bool gone;

	pthread_mutex_lock(&kmem_caches_lock);
	cache_grow_self = NULL;
	gone = cache_unref_locked(cp);
	pthread_mutex_unlock(&kmem_caches_lock);
	if (gone)
		cache_free(cp);
}

bool
cache_dying(struct kmem_cache *cp)
{
	bool dying;

	pthread_mutex_lock(&kmem_caches_lock);
	dying = cp->dying;
	pthread_mutex_unlock(&kmem_caches_lock);
	return (dying);
}

/*
 * The caches whose reclaim callbacks this thread is running, innermost
 * first.  A callback that calls kmem_reap() or kmem_cache_reap_now() on
 * its own cache reaps it, but is not called again: that would recurse
 * without end.
 */
static __thread struct cache_walk_frame *cache_reclaims
    __attribute__((tls_model("initial-exec")));

void
cache_reclaim(struct kmem_cache *cp)
{
	struct cache_walk_frame frame;

	if (cp->reclaim == NULL || cache_dying(cp))
		return;
	for (struct cache_walk_frame *f = cache_reclaims; f != NULL;
	    f = f->up) {
		if (f->cp == cp)
			return;
	}
	frame.cp = cp;
	frame.up = cache_reclaims;
	cache_reclaims = &frame;
	cp->reclaim(cp->priv);
	cache_reclaims = frame.up;
}

void
cache_walk(void (*fn)(struct kmem_cache *, void *), void *arg)
{
	struct kmem_cache *cp, *next, *gone = NULL;

	pthread_mutex_lock(&kmem_caches_lock);
	for (cp = kmem_caches; cp != NULL; cp = next) {
		struct cache_walk_frame frame;

		if (cp->dying) {
			next = cp->next;
			continue;
		}
		cache_hold_locked(cp, &frame);
		pthread_mutex_unlock(&kmem_caches_lock);
		fn(cp, arg);
		pthread_mutex_lock(&kmem_caches_lock);
		/* cp stays linked while held: cp->next is valid. */
		next = cp->next;
		if (cache_drop_locked(cp, &frame)) {
			cp->next = gone;        /* freed below */
			gone = cp;
		}
	}
	pthread_mutex_unlock(&kmem_caches_lock);
	while ((cp = gone) != NULL) {
		gone = cp->next;
		cache_free(cp);
	}
}

/*
 * A magazine miss: the magazine layer's slow path (and lock mode).  An
 * object leaves errno as it was (as glibc's malloc does): the growth,
 * placement and reaping below try calls that may fail on the way to it.
 */
static __attribute__((noinline)) void *
cache_alloc_miss(kmem_cache_t *cp, int kmflags)
{
	int err = errno;
	void *obj;

	taskq_fork_resume();
	obj = mag_alloc(cp, kmflags);

	if (KMEM_UNLIKELY(obj == NULL)) {
		stat_inc(&cp->cpu[cpu_current()].alloc_fail);
		return (NULL);
	}
	if (KMEM_UNLIKELY(DEBUG_CACHE(cp)))
		debug_alloc(cp, obj);
	errno = err;
	return (obj);
}

/*
 * Everything but a magazine hit: argument errors, then the miss.  Kept
 * out of line so that the fast path needs no stack frame.
 */
static __attribute__((noinline)) void *
cache_alloc_slow(kmem_cache_t *cp, int kmflags)
{
	if (!cache_ok(cp, "kmem_cache_alloc"))
		return (NULL);
	if (kmflags & ~KM_CACHE_VALID_FLAGS) {
		kmem_report("kmem_cache_alloc(%s): kmflags 0x%x: %s", cp->name,
		    (unsigned int)kmflags, (kmflags & KM_ZERO) ? "KM_ZERO is "
		    "for kmem_alloc and vmem_alloc, not caches" :
		    "unknown flags");
		errno = EINVAL;
		return (NULL);
	}
	return (cache_alloc_miss(cp, kmflags));
}

void *
cache_alloc(kmem_cache_t *cp, int kmflags)
{
	void *obj;

	if (KMEM_LIKELY(cp->fastkey == KMEM_CACHE_FAST_RSEQ) &&
	    (obj = mag_rseq_pop(cache_mag_cpus(cp), cpu_rseq_offset)) !=
	    NULL) {
		KMEM_TSAN_ACQUIRE(obj);
		return (obj);
	}
	return (cache_alloc_miss(cp, kmflags));
}

KMEM_EXPORT void *
kmem_cache_alloc(kmem_cache_t *cp, int kmflags)
{
	void *obj;

	if (KMEM_LIKELY(cp != NULL && cp->fastkey == KMEM_CACHE_FAST_RSEQ &&
	    (kmflags & ~KM_CACHE_VALID_FLAGS) == 0) &&
	    (obj = mag_rseq_pop(cache_mag_cpus(cp), cpu_rseq_offset)) !=
	    NULL) {
		KMEM_TSAN_ACQUIRE(obj);
		return (obj);
	}
	return (cache_alloc_slow(cp, kmflags));
}

/*
 * Everything but a magazine hit.  Emergency objects go straight back to
 * the system, and a pointer that is not one of the cache's objects is
 * reported and left alone.  An object freed leaves errno as it was (the
 * magazines and slabs it goes to may try calls that fail).
 */
static __attribute__((noinline)) void
cache_free_slow(struct kmem_cache *cp, void *buf)
{
	struct kmem_slab *s;
	int err = errno;

	if (buf == NULL || !cache_ok(cp, "kmem_cache_free"))
		return;
	taskq_fork_resume();
	if (KMEM_UNLIKELY(DEBUG_CACHE(cp)) && !debug_free(cp, buf))
		return;                 /* reported */
	if ((s = slab_of(cp, buf)) != NULL &&
	    slab_obj_carved(&cp->sl, s, buf)) {
		mag_free(cp, buf);
		errno = err;
		return;
	}
	if (!emergency_owns(&cp->emerg, buf)) {
		debug_bad_free("kmem_cache_free", cp, buf);
		return;
	}
	cache_release(cp, &buf, 1);
	stat_inc(&cp->cpu[cpu_current()].free);
	errno = err;
}

/*
 * Whether kmem_cache_free's fast path may push buf: it starts an object
 * that one of cp's slabs handed out (slab_obj_carved), and cp is in rseq
 * mode.  An O(1) lookup, so a wrong pointer is reported instead of
 * handed out later; emergency objects (outside the arena) and NULL fail
 * it too.  The arena's other owners, large blocks, hold themselves where
 * a slab holds its cache (ka_large), so s->cache == cp means that s is a
 * live slab of cp, and cp a live cache: no check of cp itself.  Its
 * free_mask, 0 unless it is in rseq mode, masks the bound of the object
 * check.
 */
static inline bool
cache_free_ok(struct kmem_cache *cp, const void *buf)
{
	struct kmem_slab *s = vmem_owner_hint(buf);

	return (KMEM_LIKELY(s != NULL) && KMEM_LIKELY(s->cache == cp) &&
	    slab_obj_below(&cp->sl, s, buf, slab_fresh(s) & cp->free_mask));
}

KMEM_EXPORT void
kmem_cache_free(kmem_cache_t *cp, void *buf)
{
	if (KMEM_LIKELY(cache_free_ok(cp, buf))) {
		KMEM_TSAN_RELEASE(buf);
		if (KMEM_LIKELY(mag_rseq_push(cache_mag_cpus(cp),
		    cpu_rseq_offset, buf)))
			return;
	}
	cache_free_slow(cp, buf);
}

KMEM_EXPORT void
kmem_cache_reap_now(kmem_cache_t *cp)
{
	struct cache_walk_frame frame;
	taskq_t *self;
	bool gone;

	if (!cache_ok(cp, "kmem_cache_reap_now"))
		return;
	/* Held, as by a walker: the callback may destroy the cache. */
	pthread_mutex_lock(&kmem_caches_lock);
	cache_hold_locked(cp, &frame);
	pthread_mutex_unlock(&kmem_caches_lock);
	cache_reclaim(cp);
	/*
	 * Growth ends before the reap, except on the kmem taskq: there this
	 * is a reclaim callback that a task runs (a grow task's pressure
	 * reap, say), and the wait could be for that very task.  A slab that
	 * growth adds meanwhile stays.
	 */
	self = taskq_of_curthread();
	if (self == NULL || self != kmem_taskq())
		grow_quiesce(cp);
	cache_reap(cp);
	pthread_mutex_lock(&kmem_caches_lock);
	gone = cache_drop_locked(cp, &frame);
	pthread_mutex_unlock(&kmem_caches_lock);
	if (gone)
		cache_free(cp);
}

static void
cache_sum_cpu(struct kmem_cache *cp, uint64_t *alloc, uint64_t *fail,
    uint64_t *freed)
{
	*alloc = *fail = *freed = 0;
	for (unsigned int c = 0; c < cpu_count(); c++) {
		*alloc += atomic_load_explicit(&cp->cpu[c].alloc,
		    memory_order_relaxed);
		*fail += atomic_load_explicit(&cp->cpu[c].alloc_fail,
		    memory_order_relaxed);
		*freed += atomic_load_explicit(&cp->cpu[c].free,
		    memory_order_relaxed);
	}
}

KMEM_EXPORT int
kmem_cache_stats(kmem_cache_t *cp, struct kmem_cache_stats *st)
{
	struct slab_counts c;
	struct mag_counts m;
	uint64_t unused;

	if (!cache_ok(cp, "kmem_cache_stats"))
		return (-1);
	if (st == NULL) {
		kmem_report("kmem_cache_stats(%s): NULL stats pointer",
		    cp->name);
		errno = EINVAL;
		return (-1);
	}
	memset(st, 0, sizeof (*st));
	memcpy(st->name, cp->name, sizeof (st->name));
	st->obj_size = cp->size;
	st->obj_align = cp->align;
	st->slab_size = cp->sl.slab_size;
	st->objs_per_slab = cp->sl.objs_per_slab;
	slab_counts(cp, &c, st->node);
	st->nr_nodes = cp->sl.nnodes;
	st->slab_total = c.slab_total;
	st->slab_alloc = c.slab_alloc;
	st->slab_max = atomic_load(&cp->sl.slab_max);
	pthread_mutex_lock(cp->emerg.lock);
	st->obj_emergency = atomic_load(&cp->emerg.count);
	st->obj_emergency_max = cp->emerg.max;
	st->mem_total = c.slab_total * cp->sl.slab_size + cp->emerg.bytes;
	st->mem_carved = (c.pages_carved << vmem_page_shift) +
	    cp->emerg.bytes;
	st->mem_meta = (c.slab_total + st->obj_emergency) * META_BLOCK_SIZE +
	    cp->map_len;
	pthread_mutex_unlock(cp->emerg.lock);
	st->obj_total = c.obj_total + st->obj_emergency;
	st->obj_alloc = c.obj_inuse + st->obj_emergency;
	st->obj_max = atomic_load(&cp->obj_max);
	st->obj_deadlock = atomic_load(&cp->obj_deadlock);
	/*
	 * The frees first, then the allocations, in a second pass: other
	 * threads allocate and free meanwhile, and an object freed on one
	 * CPU may have been allocated on another whose counters this pass
	 * read earlier.  An allocation precedes its free, so every free
	 * counted here has its allocation counted by the later pass, and
	 * alloc - free never wraps.
	 */
	cache_sum_cpu(cp, &unused, &unused, &st->free);
	mag_counts(cp, &m);
	st->free += m.frees;
	st->mag_free_hits = m.frees;
	atomic_thread_fence(memory_order_seq_cst);
	cache_sum_cpu(cp, &st->alloc, &st->alloc_fail, &unused);
	mag_counts(cp, &m);
	st->alloc += m.allocs;
	st->mag_alloc_hits = m.allocs;
	st->obj_cached = m.cached;
	st->mag_size = cp->mag.mode == MAG_NONE ? 0 : cp->mag.magsize;
	st->depot_full = m.depot_full;
	st->depot_empty = m.depot_empty;
	st->depot_contention = c.contended;
	st->mag_flushes = st->mag_size == 0 ? 0 :
	    atomic_load(&cp->mag.flushed) / st->mag_size;
	st->slab_grows = atomic_load(&cp->grow.slabs);
	st->grow_waits = atomic_load(&cp->grow.waits);
	st->ctor_calls = atomic_load(&cp->ctor_calls);
	st->dtor_calls = atomic_load(&cp->dtor_calls);
	return (0);
}

KMEM_EXPORT void
kmem_cache_destroy(kmem_cache_t *cp)
{
	uint64_t alloc, fail, freed;
	struct slab_counts c;
	struct mag_counts m;
	uint64_t out = UINT64_MAX, was;
	int own, cancel;

	if (cp == NULL)
		return;
	if (!cache_ok(cp, "kmem_cache_destroy"))
		return;
	/*
	 * No walker (aging, kmem_reap) may be inside it when it is counted
	 * or freed: from now on they pass it by, and destroy waits for those
	 * inside to leave, all but this thread's own (destroy from the
	 * cache's reclaim callback); none calls that callback again
	 * (cache_reclaim).
	 */
	pthread_mutex_lock(&kmem_caches_lock);
	cp->dying = true;
	own = cache_held_here(cp);
	/* A thread cancelled in the wait would die holding the lock. */
	cancel = kmem_cancel_off();
	while (cp->refs > own)
		pthread_cond_wait(&kmem_caches_cv, &kmem_caches_lock);
	kmem_cancel_restore(cancel);
	pthread_mutex_unlock(&kmem_caches_lock);

	/*
	 * No slab arrives after the count below: growth ends first, unless
	 * this is the cache's own grow task (a reclaim callback of its
	 * pressure reap), which grows no more once it sees the cache dying.
	 */
	if (cache_grow_self != cp)
		grow_quiesce(cp);
	/*
	 * A destructor may free objects it owned into this very cache: they
	 * land in magazines already flushed.  Flush again while rounds are
	 * cached and the pass before brought objects back to the slab layer
	 * (so a destructor that allocates and frees ends it too).
	 */
	do {
		was = out;
		cache_reap(cp);
		mag_counts(cp, &m);
		out = atomic_load(&cp->sl.obj_inuse);
	} while (m.cached != 0 && out < was);
	/*
	 * A destructor that allocated from this cache may have started a
	 * grow task meanwhile: let it end before the count (the cache must
	 * not be freed under it), and give back the slabs it added.
	 */
	if (cache_grow_self != cp) {
		grow_quiesce(cp);
		(void) slab_reap(cp, 0);
	}
	cache_sum_cpu(cp, &alloc, &fail, &freed);
	alloc += m.allocs;
	freed += m.frees;
	slab_counts(cp, &c, NULL);
	/*
	 * Objects still out hold their slab (or are emergency objects): the
	 * slab layer knows, the counters of calls may not.  An object freed
	 * twice counts two frees: alloc != freed with nothing out, and such a
	 * cache could never be destroyed.
	 */
	if (c.slab_total != 0 || atomic_load(&cp->emerg.count) != 0) {
		/*
		 * Objects are still out: their memory must stay mapped, so
		 * the cache stays (a later free still works) and says so.
		 * Counted out of the slab layer, which also sees the objects
		 * of a constructor or destructor running now.
		 */
		kmem_report("kmem_cache_destroy(%s): %llu object(s) still "
		    "allocated; the cache and its memory are kept", cp->name,
		    (unsigned long long)(c.obj_inuse +
		    atomic_load(&cp->emerg.count)));
		debug_leaks(cp);
		cp->destroyed = true;
		pthread_mutex_lock(&kmem_caches_lock);
		cp->dying = false;
		pthread_mutex_unlock(&kmem_caches_lock);
		return;
	}
	if (freed > alloc)
		kmem_report("kmem_cache_destroy(%s): %llu more free(s) than "
		    "allocations: an object was freed twice; destroyed",
		    cp->name, (unsigned long long)(freed - alloc));

	/* This thread's walk frees it when it lets go of it. */
	pthread_mutex_lock(&kmem_caches_lock);
	if (own > 0) {
		cp->free_on_release = true;
		pthread_mutex_unlock(&kmem_caches_lock);
		return;
	}
	cache_unlink(cp);
	pthread_mutex_unlock(&kmem_caches_lock);
	cache_free(cp);
}
