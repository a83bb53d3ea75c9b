/*
 * kmem_cache.c - the object cache API: create, alloc, free, reap,
 * destroy, statistics, and the registry of caches.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * CONSTRUCTED-STATE CACHING (Solaris semantics, not the SPL's).  An object
 * is in one of three places: in the slab layer, unconstructed; held by the
 * application, constructed; or cached, constructed and free.  The
 * constructor runs when an object leaves the slab layer, the destructor
 * when it goes back (reap, destroy).  kmem_cache_free() keeps the object
 * constructed for the next kmem_cache_alloc(), so an object that cycles
 * between the application and the cache is constructed once.  A
 * constructor that fails sends the object back to the slab layer
 * unconstructed and that allocation returns NULL (counted in alloc_fail).
 *
 * MEMORY.  Objects come from the slab layer (slab.c), which grows by one
 * slab at a time from the arena (vmem.c).  When no slab can be had the
 * cache maps a single emergency object (emergency.c).  KM_NOSLEEP may then
 * fail; KM_SLEEP and KM_PUSHPAGE never return NULL for lack of memory:
 * they reap and retry, waiting a little longer each time.
 *
 * COUNTERS.  alloc / alloc_fail / free are per-CPU and summed when read;
 * alloc - free is what the application holds.  Objects out of the slab
 * layer (obj_alloc) = held + cached (+ emergency objects, which are
 * outside slabs).
 *
 * LOCKING.  kmem_caches_lock protects the registry.  cons.lock protects
 * the constructed-object stack.  The slab layer has per-node locks and
 * emergency objects their own lock; no two of these are held together,
 * and constructors and destructors run with no libkmem lock held.
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
#include "tunables.h"
#include "vmem.h"

static pthread_mutex_t kmem_caches_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kmem_cache *kmem_caches;
static pthread_once_t kmem_once = PTHREAD_ONCE_INIT;

static void
kmem_init_once(void)
{
	cpu_init();
	tunables_init();
	vmem_init();
}

void
kmem_init(void)
{
	(void) pthread_once(&kmem_once, kmem_init_once);
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

static inline struct kmem_cpu_stats *
cache_cpu(struct kmem_cache *cp)
{
	return (&cp->cpu[cpu_current()]);
}

static inline void
stat_inc(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* ------------------------------------------------ constructed objects */

static bool
cons_push(struct kmem_cache *cp, void *obj)
{
	struct kmem_cons *c = &cp->cons;

	pthread_mutex_lock(&c->lock);
	if (c->n == c->cap) {
		size_t len = c->map_len != 0 ? c->map_len * 2 :
		    (size_t)sysconf(_SC_PAGESIZE);
		void **objs = kmem_pages_alloc(len);

		if (objs == NULL) {
			pthread_mutex_unlock(&c->lock);
			return (false);
		}
		if (c->objs != NULL)
			memcpy(objs, c->objs, c->n * sizeof (void *));
		kmem_pages_free(c->objs, c->map_len);
		c->objs = objs;
		c->map_len = len;
		c->cap = len / sizeof (void *);
	}
	c->objs[c->n++] = obj;
	pthread_mutex_unlock(&c->lock);
	return (true);
}

static void *
cons_pop(struct kmem_cache *cp)
{
	struct kmem_cons *c = &cp->cons;
	void *obj = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->n > 0)
		obj = c->objs[--c->n];
	pthread_mutex_unlock(&c->lock);
	return (obj);
}

/* ------------------------------------------------ leaving the cache */

/*
 * Destruct objects and give them back: slab objects to their slabs,
 * emergency objects to the system.
 */
static void
cache_release(struct kmem_cache *cp, void **objs, unsigned int n)
{
	unsigned int keep = 0;

	for (unsigned int i = 0; i < n; i++) {
		if (cp->dtor != NULL) {
			cp->dtor(objs[i], cp->priv);
			stat_inc(&cp->dtor_calls);
		}
		if (vmem_owner(objs[i]) == NULL &&
		    emergency_release(&cp->emerg, objs[i]))
			continue;
		objs[keep++] = objs[i];
	}
	if (keep != 0)
		(void) slab_free(cp, objs, keep);
}

/* Destruct every cached object and return it. */
static void
cache_flush_constructed(struct kmem_cache *cp)
{
	void *batch[128];
	unsigned int n;

	do {
		n = 0;
		while (n < 128 && (batch[n] = cons_pop(cp)) != NULL)
			n++;
		cache_release(cp, batch, n);
	} while (n == 128);
}

static void
cache_reap(struct kmem_cache *cp)
{
	cache_flush_constructed(cp);
	(void) slab_reap(cp, 0);
}

/* ------------------------------------------------ new objects */

/* Sleep a little longer on each try, up to 100 ms. */
static void
cache_backoff(unsigned int tries)
{
	struct timespec ts = { 0, 1000000L << KMEM_MIN(tries, 6U) };

	if (ts.tv_nsec > 100000000L)
		ts.tv_nsec = 100000000L;
	(void) nanosleep(&ts, NULL);
}

/* An unconstructed object from the slab layer, or an emergency one. */
static void *
cache_new_object(struct kmem_cache *cp, int kmflags)
{
	int node = cpu_node(cpu_current());
	void *obj;

	for (unsigned int tries = 0;; tries++) {
		if (slab_alloc(cp, node, &obj, 1) == 1)
			break;
		if (slab_grow(cp, node) == 0)
			continue;
		obj = emergency_alloc(&cp->emerg, cp->sl.chunk);
		if (obj != NULL)
			break;
		if (kmflags & KM_NOSLEEP) {
			errno = ENOMEM;
			return (NULL);
		}
		/* KM_SLEEP / KM_PUSHPAGE: never NULL; free memory and wait. */
		if (tries == 0)
			kmem_report("kmem_cache_alloc(%s): out of memory; "
			    "waiting for memory to be freed", cp->name);
		cache_reap(cp);
		cache_backoff(tries);
	}
	kmem_note_max(&cp->obj_max, atomic_load_explicit(&cp->sl.obj_inuse,
	    memory_order_relaxed) + atomic_load_explicit(&cp->emerg.count,
	    memory_order_relaxed));
	return (obj);
}

/* Construct obj; on failure give it back and return false. */
static bool
cache_construct(struct kmem_cache *cp, void *obj, int kmflags)
{
	if (cp->ctor == NULL)
		return (true);
	stat_inc(&cp->ctor_calls);
	if (cp->ctor(obj, cp->priv, kmflags) == 0)
		return (true);
	if (vmem_owner(obj) == NULL && emergency_release(&cp->emerg, obj))
		return (false);
	(void) slab_free(cp, &obj, 1);
	return (false);
}

/* ------------------------------------------------ the API */

KMEM_EXPORT kmem_cache_t *
kmem_cache_create(const char *name, size_t size, size_t align,
    kmem_ctor_t *ctor, kmem_dtor_t *dtor, kmem_reclaim_t *reclaim,
    void *priv, vmem_t *vmp, int cflags)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned int nnodes, ncpus;
	size_t chunk, len, nodes_off, cpu_off;
	struct kmem_cache *cp;
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
		kmem_report("kmem_cache_create(%.*s, %zu, %zu): %s",
		    KMEM_CACHE_NAMELEN, name != NULL ? name : "NULL", size,
		    align, why);
		errno = EINVAL;
		return (NULL);
	}

	if (align < KMEM_ALIGN)
		align = KMEM_ALIGN;
	chunk = KMEM_P2ROUNDUP(size, align);
	nnodes = cpu_node_count();
	ncpus = cpu_count();
	nodes_off = KMEM_P2ROUNDUP(sizeof (*cp), KMEM_CACHE_LINE);
	cpu_off = nodes_off + nnodes * sizeof (struct slab_node);
	len = KMEM_P2ROUNDUP(cpu_off + ncpus * sizeof (struct kmem_cpu_stats),
	    page);
	cp = kmem_pages_alloc(len);
	if (cp == NULL) {
		errno = ENOMEM;
		return (NULL);
	}
	memcpy(cp->name, name, strlen(name) + 1);
	cp->size = size;
	cp->align = align;
	cp->cflags = cflags;
	cp->ctor = ctor;
	cp->dtor = dtor;
	cp->reclaim = reclaim;
	cp->priv = priv;
	cp->map_len = len;
	cp->cpu = (struct kmem_cpu_stats *)((char *)cp + cpu_off);
	if (slab_layer_init(&cp->sl, chunk, cflags,
	    (struct slab_node *)((char *)cp + nodes_off), nnodes) != 0) {
		kmem_pages_free(cp, len);
		errno = EINVAL;
		return (NULL);
	}
	emergency_init(&cp->emerg);
	pthread_mutex_init(&cp->cons.lock, NULL);
	cp->magic = KMEM_CACHE_MAGIC;

	pthread_mutex_lock(&kmem_caches_lock);
	cp->next = kmem_caches;
	if (kmem_caches != NULL)
		kmem_caches->prev = cp;
	kmem_caches = cp;
	pthread_mutex_unlock(&kmem_caches_lock);
	return (cp);
}

KMEM_EXPORT void *
kmem_cache_alloc(kmem_cache_t *cp, int kmflags)
{
	void *obj;

	if (!cache_ok(cp, "kmem_cache_alloc"))
		return (NULL);
	if (KMEM_UNLIKELY(kmflags & ~KM_VALID_FLAGS)) {
		kmem_report("kmem_cache_alloc(%s): unknown kmflags 0x%x",
		    cp->name, (unsigned int)kmflags);
		errno = EINVAL;
		return (NULL);
	}
	obj = cons_pop(cp);
	if (obj == NULL) {
		obj = cache_new_object(cp, kmflags);
		if (obj == NULL || !cache_construct(cp, obj, kmflags)) {
			stat_inc(&cache_cpu(cp)->alloc_fail);
			if (obj != NULL)
				errno = ENOMEM;
			return (NULL);
		}
	}
	stat_inc(&cache_cpu(cp)->alloc);
	return (obj);
}

KMEM_EXPORT void
kmem_cache_free(kmem_cache_t *cp, void *buf)
{
	if (buf == NULL)
		return;
	if (!cache_ok(cp, "kmem_cache_free"))
		return;
	if (slab_of(cp, buf) == NULL) {
		if (!emergency_owns(&cp->emerg, buf)) {
			kmem_report("kmem_cache_free(%s): %p was not allocated "
			    "from this cache; ignored", cp->name, buf);
			return;
		}
		/* Emergency objects go straight back to the system. */
		cache_release(cp, &buf, 1);
	} else if (!cons_push(cp, buf)) {
		cache_release(cp, &buf, 1);     /* no room to cache it */
	}
	stat_inc(&cache_cpu(cp)->free);
}

KMEM_EXPORT void
kmem_cache_reap_now(kmem_cache_t *cp)
{
	if (!cache_ok(cp, "kmem_cache_reap_now"))
		return;
	if (cp->reclaim != NULL)
		cp->reclaim(cp->priv);
	cache_reap(cp);
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

	if (!cache_ok(cp, "kmem_cache_stats"))
		return (-1);
	if (st == NULL) {
		errno = EINVAL;
		return (-1);
	}
	memset(st, 0, sizeof (*st));
	memcpy(st->name, cp->name, sizeof (st->name));
	st->obj_size = cp->size;
	st->obj_align = cp->align;
	st->slab_size = cp->sl.slab_size;
	st->objs_per_slab = cp->sl.objs_per_slab;
	slab_counts(cp, &c);
	st->slab_total = c.slab_total;
	st->slab_alloc = c.slab_alloc;
	st->slab_max = atomic_load(&cp->sl.slab_max);
	pthread_mutex_lock(&cp->emerg.lock);
	st->obj_emergency = atomic_load(&cp->emerg.count);
	st->obj_emergency_max = cp->emerg.max;
	st->mem_total = c.slab_total * cp->sl.slab_size + cp->emerg.bytes;
	st->mem_meta = (c.slab_total + st->obj_emergency) * META_BLOCK_SIZE +
	    cp->map_len;
	pthread_mutex_unlock(&cp->emerg.lock);
	st->obj_total = c.obj_total + st->obj_emergency;
	st->obj_alloc = c.obj_inuse + st->obj_emergency;
	st->obj_max = atomic_load(&cp->obj_max);
	st->obj_deadlock = atomic_load(&cp->obj_deadlock);
	cache_sum_cpu(cp, &st->alloc, &st->alloc_fail, &st->free);
	st->ctor_calls = atomic_load(&cp->ctor_calls);
	st->dtor_calls = atomic_load(&cp->dtor_calls);
	pthread_mutex_lock(&cp->cons.lock);
	st->obj_cached = cp->cons.n;
	pthread_mutex_unlock(&cp->cons.lock);
	return (0);
}

KMEM_EXPORT void
kmem_cache_destroy(kmem_cache_t *cp)
{
	uint64_t alloc, fail, freed;
	struct slab_counts c;

	if (cp == NULL)
		return;
	if (!cache_ok(cp, "kmem_cache_destroy"))
		return;
	cache_sum_cpu(cp, &alloc, &fail, &freed);
	cache_reap(cp);
	slab_counts(cp, &c);
	if (alloc != freed || c.slab_total != 0 ||
	    atomic_load(&cp->emerg.count) != 0) {
		/*
		 * Objects are still out: their memory must stay mapped, so
		 * the cache stays (a later free still works) and says so.
		 */
		kmem_report("kmem_cache_destroy(%s): %llu object(s) still "
		    "allocated; the cache and its memory are kept", cp->name,
		    (unsigned long long)(alloc - freed));
		cp->destroyed = true;
		return;
	}

	pthread_mutex_lock(&kmem_caches_lock);
	if (cp->prev != NULL)
		cp->prev->next = cp->next;
	else
		kmem_caches = cp->next;
	if (cp->next != NULL)
		cp->next->prev = cp->prev;
	pthread_mutex_unlock(&kmem_caches_lock);

	cp->magic = 0;
	kmem_pages_free(cp->cons.objs, cp->cons.map_len);
	kmem_pages_free(cp, cp->map_len);
}
