/*
 * debug.c - KMEM_DEBUG, in the spirit of libumem's UMEM_DEBUG: redzones,
 * fill patterns, a state word and an audit record per object of a debug
 * cache, and reports naming the cache, the address, what was wrong and
 * the stacks, followed by abort() unless noabort.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WHICH CACHES.  kmem_cache_create reads the tunable kmem_debug
 * (KMEM_DEBUG); when it has guards, audit or leaks and the cache is not
 * KMC_NODEBUG, the cache is a debug cache for good.  A debug cache has no
 * magazine layer (as KMC_NOMAGAZINE) and no rseq fast-path key, so the
 * existing test on the fast path ("is this an rseq cache with
 * magazines?") sends every call to the slow paths, where the checks run:
 * caches without debugging pay nothing, not even a branch.
 *
 * OBJECT LAYOUT in a debug cache (size rounded up to 8 = tail_off):
 *
 *   [ buffer: size bytes | 0xbb up to tail_off ][ struct debug_tail ]
 *   [ audit: 'frames' alloc PCs, 'frames' free PCs ] rounded to align
 *
 * The tail starts with the guard word (the redzone proper), then the
 * object's state (never allocated / allocated / freed, changed by
 * compare-and-swap, so of two frees racing exactly one wins), the slab
 * layer's free-list link (slab_layer.link_off: a free object's buffer
 * keeps the freed pattern whole), kmem_alloc's requested size, and the
 * threads of the last allocation and free.
 *
 * LIFE OF AN OBJECT.  Leaving the slab layer (debug_take) a freed object
 * must still hold 0xdeadbeef everywhere and an intact guard, else it was
 * written after it was freed; it is then filled with 0xbaddcafe (new
 * objects) and its redzone set, and the constructor runs.  Handed to the
 * application (debug_alloc) it becomes allocated and its allocation stack
 * is recorded.  Freed (debug_free), its owner is checked through the
 * arena's address -> slab map, its state moves from allocated to freed
 * (else: a double free), its redzone is checked, the free stack recorded;
 * after the destructor it is filled with 0xdeadbeef (debug_untake).
 * libkmem_malloc's realloc() checks first that its block is allocated
 * (debug_realloc): kept in place, a freed block would have two owners.
 *
 * REPORTS go to stderr through kmem_report and backtrace_symbols_fd,
 * neither of which allocates, so they work when libkmem is the process's
 * malloc.  backtrace() loads libgcc_s (and allocates) on its first call:
 * debug_setup calls it once, before any libkmem lock is taken.
 *
 * LEAKS.  At kmem_cache_destroy and at exit (a destructor), every object
 * of a leaks cache that is still allocated is listed with its allocation
 * stack, by walking the cache's slabs under each node lock in turn, then
 * its emergency objects under their lock.
 *
 * LOCKING.  None of its own: the state word is atomic; the rest of an
 * object's tail belongs to whoever holds the object.  Reports run with no
 * libkmem lock held, except the leak walk (a node lock or the emergency
 * lock; it only writes).
 */
#include "config.h"

#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cache.h"
#include "debug.h"
#include "kmem_alloc.h"
#include "slab.h"
#include "tunables.h"
#include "vmem.h"

#define DEBUG_CHECKS    (KMEM_DEBUG_GUARDS | KMEM_DEBUG_AUDIT | \
	KMEM_DEBUG_LEAKS)

#define DEBUG_GUARD     0xfeedfacefeedfaceULL   /* the redzone word */
#define DEBUG_FREED_PAT 0xdeadbeefdeadbeefULL   /* freed buffers */
#define DEBUG_NEW_PAT   0xbaddcafebaddcafeULL   /* new buffers */
#define DEBUG_RZ_BYTE   0xbb                    /* size .. tail_off */

#define DEBUG_ALLOCATED 0xa110ca7eda110ca7ULL   /* state words */
#define DEBUG_FREED     0xf4eef4eef4eef4eeULL

struct debug_rec {
	uint32_t tid;           /* thread (gettid) */
	uint32_t depth;         /* frames recorded */
};

struct debug_tail {
	uint64_t guard;
	_Atomic uint64_t state; /* 0 never allocated, ALLOCATED, FREED */
	void *link;             /* slab free list (slab.c) */
	uint64_t size;          /* kmem_alloc's request; 0: none */
	struct debug_rec alloc, free;
	void *pcs[];            /* audit: frames alloc PCs, frames free PCs */
};

static pthread_once_t debug_once = PTHREAD_ONCE_INIT;
static _Atomic bool debug_any_leaks;

static void
debug_prime(void)
{
	void *pc[2];

	(void) backtrace(pc, 2);        /* loads libgcc_s now, unlocked */
}

static uint32_t
debug_tid(void)
{
	return ((uint32_t)syscall(SYS_gettid));
}

/* The state word's offset in an object of cp (reports). */
#define DEBUG_STATE_OFF(cp)     ((cp)->dbg.tail_off + \
	offsetof(struct debug_tail, state))

static inline struct debug_tail *
debug_tail(const struct kmem_cache *cp, const void *obj)
{
	return ((struct debug_tail *)((char *)(uintptr_t)obj +
	    cp->dbg.tail_off));
}

uint32_t
debug_flags_for(int cflags)
{
	uint32_t flags = (uint32_t)tunable(KT_DEBUG);

	return ((cflags & KMC_NODEBUG) || !(flags & DEBUG_CHECKS) ? 0 : flags);
}

size_t
debug_setup(struct kmem_cache *cp, uint32_t flags, size_t size, size_t align)
{
	struct debug_cache *d = &cp->dbg;
	size_t tail;

	memset(d, 0, sizeof (*d));
	if (flags == 0)
		return (KMEM_P2ROUNDUP(size, align));
	if (flags & KMEM_DEBUG_LEAKS)
		flags |= KMEM_DEBUG_AUDIT;      /* leaks list alloc stacks */
	d->flags = flags;
	d->frames = (flags & KMEM_DEBUG_AUDIT) ?
	    (uint32_t)tunable(KT_DEBUG_AUDIT_FRAMES) : 0;
	d->tail_off = KMEM_P2ROUNDUP(size, 8);
	tail = sizeof (struct debug_tail) + 2 * d->frames * sizeof (void *);
	(void) pthread_once(&debug_once, debug_prime);
	if (flags & KMEM_DEBUG_LEAKS)
		atomic_store(&debug_any_leaks, true);
	return (KMEM_P2ROUNDUP(d->tail_off + tail, align));
}

size_t
debug_link_off(const struct kmem_cache *cp)
{
	return (DEBUG_CACHE(cp) ? cp->dbg.tail_off +
	    offsetof(struct debug_tail, link) : 0);
}

/* ------------------------------------------------ reports */

/*
 * A record of cache cp's.  It lies past the buffer's end, where a stray
 * write may reach: a depth above the cache's frames is no record's (its
 * frames are not read, which would run off the object).
 */
static void
debug_stack(const struct kmem_cache *cp, const char *what,
    const struct debug_rec *r, void *const *pcs)
{
	uint32_t depth = r->depth;

	if (depth == 0) {
		kmem_report("  %s: (no record)", what);
		return;
	}
	if (depth > cp->dbg.frames) {
		kmem_report("  %s: (record overwritten: depth %u)", what,
		    (unsigned int)depth);
		return;
	}
	kmem_report("  %s by thread %u:", what, (unsigned int)r->tid);
	backtrace_symbols_fd(pcs, (int)depth, STDERR_FILENO);
}

/* The object's audit record (alloc and free stacks), when it has one. */
static void
debug_audit_show(const struct kmem_cache *cp, const void *obj,
    bool show_free)
{
	const struct debug_tail *t;

	if (cp == NULL || obj == NULL || !(cp->dbg.flags & KMEM_DEBUG_AUDIT))
		return;
	t = debug_tail(cp, obj);
	debug_stack(cp, "last allocated", &t->alloc, t->pcs);
	if (show_free)
		debug_stack(cp, "last freed", &t->free, t->pcs +
		    cp->dbg.frames);
}

/*
 * The report's end: the stack of this call, then abort() unless every
 * involved cache said noabort.
 */
static void
debug_report_end(uint32_t flags)
{
	void *pc[64];
	int n = backtrace(pc, 64);

	kmem_report("  this call, thread %u:", (unsigned int)debug_tid());
	backtrace_symbols_fd(pc, n, STDERR_FILENO);
	if (flags & KMEM_DEBUG_NOABORT) {
		kmem_report("KMEM_DEBUG: continuing (noabort)");
		return;
	}
	kmem_report("KMEM_DEBUG: aborting (KMEM_DEBUG=noabort reports and "
	    "goes on)");
	abort();
}

/* ------------------------------------------------ patterns */

static void
debug_fill(void *buf, size_t len, uint64_t pat)
{
	uint64_t *w = buf;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = pat;
}

/* Offset of the first word of buf[0, len) that is not pat, or len. */
static size_t
debug_find(const void *buf, size_t len, uint64_t pat)
{
	const uint64_t *w = buf;

	for (size_t i = 0; i < len / 8; i++)
		if (w[i] != pat)
			return (i * 8);
	return (len);
}

/* Offset of the first byte of buf[from, to) that is not b, or to. */
static size_t
debug_find_byte(const void *buf, size_t from, size_t to, unsigned char b)
{
	const unsigned char *p = buf;

	for (size_t i = from; i < to; i++)
		if (p[i] != b)
			return (i);
	return (to);
}

/*
 * Whether obj's redzone is intact: the guard word and the bytes between
 * the size asked for (kmem_alloc's request, or the cache's) and the tail.
 * Reports it if not (found when the buffer is freed).
 */
static bool
debug_redzone_ok(struct kmem_cache *cp, const void *obj)
{
	const struct debug_tail *t = debug_tail(cp, obj);
	size_t from = t->size != 0 && t->size < cp->size ? t->size : cp->size;
	size_t bad = debug_find_byte(obj, from, cp->dbg.tail_off,
	    DEBUG_RZ_BYTE);

	if (t->guard == DEBUG_GUARD && bad == cp->dbg.tail_off)
		return (true);
	if (bad == cp->dbg.tail_off) {
		/* The guard word's first byte that was written. */
		uint64_t want = DEBUG_GUARD;
		const unsigned char *g = (const unsigned char *)&t->guard;
		const unsigned char *w = (const unsigned char *)&want;
		size_t i = 0;

		while (i < 7 && g[i] == w[i])
			i++;
		bad += i;
	}
	kmem_report("KMEM_DEBUG: redzone overwritten: cache %s, buffer %p: "
	    "byte %zu of a %zu-byte buffer was written (found at free)",
	    cp->name, obj, bad, from);
	debug_audit_show(cp, obj, true);
	debug_report_end(cp->dbg.flags);
	return (false);
}

/* ------------------------------------------------ the object's life */

void
debug_take(struct kmem_cache *cp, void **objs, unsigned int n)
{
	uint32_t flags = cp->dbg.flags;
	size_t off = cp->dbg.tail_off;

	if (!(flags & KMEM_DEBUG_GUARDS))
		return;
	for (unsigned int i = 0; i < n; i++) {
		char *obj = objs[i];
		struct debug_tail *t = debug_tail(cp, obj);
		uint64_t st = atomic_load(&t->state);
		size_t bad;

		if (st == DEBUG_FREED) {
			bad = debug_find(obj, off, DEBUG_FREED_PAT);
			if (bad != off) {
				kmem_report("KMEM_DEBUG: write after free: "
				    "cache %s, buffer %p: offset %zu holds "
				    "0x%016llx, not the freed pattern "
				    "0x%016llx", cp->name, (void *)obj, bad,
				    (unsigned long long)*(uint64_t *)(obj +
				    bad), (unsigned long long)DEBUG_FREED_PAT);
				debug_audit_show(cp, obj, true);
				debug_report_end(flags);
			} else if (t->guard != DEBUG_GUARD) {
				kmem_report("KMEM_DEBUG: redzone overwritten: "
				    "cache %s, buffer %p: its guard word "
				    "(byte %zu) was written while the buffer "
				    "was free", cp->name, (void *)obj, off);
				debug_audit_show(cp, obj, true);
				debug_report_end(flags);
			}
		} else if (st != 0) {
			/* Free (or never handed out), yet neither. */
			kmem_report("KMEM_DEBUG: write after free: cache %s, "
			    "buffer %p: its state word (byte %zu) holds "
			    "0x%016llx, not the freed state: written past the "
			    "buffer's end while it was free", cp->name,
			    (void *)obj, DEBUG_STATE_OFF(cp),
			    (unsigned long long)st);
			debug_audit_show(cp, obj, true);
			debug_report_end(flags);
		}
		debug_fill(obj, off, DEBUG_NEW_PAT);
		memset(obj + cp->size, DEBUG_RZ_BYTE, off - cp->size);
		t->guard = DEBUG_GUARD;
		t->size = 0;
	}
}

void
debug_untake(struct kmem_cache *cp, void **objs, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		struct debug_tail *t = debug_tail(cp, objs[i]);

		if (cp->dbg.flags & KMEM_DEBUG_GUARDS) {
			debug_fill(objs[i], cp->dbg.tail_off, DEBUG_FREED_PAT);
			t->guard = DEBUG_GUARD;
		}
		atomic_store(&t->state, DEBUG_FREED);
	}
}

static void
debug_record(struct kmem_cache *cp, struct debug_rec *r, void **pcs)
{
	r->tid = debug_tid();
	if (cp->dbg.frames != 0)
		r->depth = (uint32_t)backtrace(pcs, (int)cp->dbg.frames);
}

void
debug_alloc(struct kmem_cache *cp, void *obj)
{
	struct debug_tail *t = debug_tail(cp, obj);
	uint64_t st = atomic_load(&t->state);

	if (st == DEBUG_ALLOCATED || !atomic_compare_exchange_strong(
	    &t->state, &st, DEBUG_ALLOCATED)) {
		kmem_report("KMEM_DEBUG: object handed out twice: cache %s, "
		    "buffer %p: its state is 0x%016llx", cp->name, obj,
		    (unsigned long long)st);
		debug_audit_show(cp, obj, true);
		debug_report_end(cp->dbg.flags);
	}
	if (cp->dbg.flags & KMEM_DEBUG_AUDIT)
		debug_record(cp, &t->alloc, t->pcs);
}

/*
 * buf, being freed (by free, or by realloc: 'how' says so), is not
 * allocated: its state st says freed already (a double free), never
 * allocated (0), or neither: the state word, past the guard, was
 * overwritten (an overrun; whether buf is allocated is not known, so
 * the free is not made).
 */
static void
debug_not_allocated(struct kmem_cache *cp, void *buf, uint64_t st,
    const char *how)
{
	if (st == DEBUG_FREED) {
		kmem_report("KMEM_DEBUG: double free: cache %s, buffer %p: "
		    "%sit was freed already", cp->name, buf, how);
		debug_audit_show(cp, buf, true);
	} else if (st == 0) {
		kmem_report("KMEM_DEBUG: free of a buffer never allocated: "
		    "cache %s, buffer %p: %sit was never handed out", cp->name,
		    buf, how);
	} else {
		kmem_report("KMEM_DEBUG: redzone overwritten: cache %s, "
		    "buffer %p: %sits state word (byte %zu) holds 0x%016llx, "
		    "neither allocated nor freed: written past the buffer's "
		    "end; the free is not made", cp->name, buf, how,
		    DEBUG_STATE_OFF(cp), (unsigned long long)st);
		debug_audit_show(cp, buf, true);
	}
	debug_report_end(cp->dbg.flags);
}

bool
debug_free(struct kmem_cache *cp, void *buf)
{
	struct debug_tail *t;
	uint64_t st = DEBUG_ALLOCATED;

	if (slab_of(cp, buf) == NULL && !emergency_owns(&cp->emerg, buf)) {
		debug_bad_free("kmem_cache_free", cp, buf);
		return (false);
	}
	t = debug_tail(cp, buf);
	if (!atomic_compare_exchange_strong(&t->state, &st, DEBUG_FREED)) {
		debug_not_allocated(cp, buf, st, "");
		return (false);
	}
	if (cp->dbg.flags & KMEM_DEBUG_GUARDS)
		(void) debug_redzone_ok(cp, buf);
	if (cp->dbg.flags & KMEM_DEBUG_AUDIT)
		debug_record(cp, &t->free, t->pcs + cp->dbg.frames);
	return (true);
}

bool
debug_realloc(struct kmem_cache *cp, void *buf)
{
	uint64_t st = atomic_load(&debug_tail(cp, buf)->state);

	if (st == DEBUG_ALLOCATED)
		return (true);
	debug_not_allocated(cp, buf, st, "realloc was given it: ");
	return (false);
}

void
debug_set_size(struct kmem_cache *cp, void *obj, size_t size)
{
	struct debug_tail *t = debug_tail(cp, obj);

	if (size < cp->size && (cp->dbg.flags & KMEM_DEBUG_GUARDS))
		memset((char *)obj + size, DEBUG_RZ_BYTE, cp->size - size);
	t->size = size;
}

/* ------------------------------------------------ bad pointers */

/* debug_bad_free, the checks of 'flags' (a caller's) asked for too. */
static void
debug_bad(const char *fn, struct kmem_cache *cp, const void *buf,
    uint32_t flags)
{
	struct kmem_slab *s = vmem_owner(buf);
	struct kmem_cache *oc = NULL;
	const char *start = NULL;
	const void *large = NULL;       /* the large block buf is in */
	bool freed = false;             /* that block was freed */
	const char *cname = cp != NULL ? cp->name : "(none)";

	if (cp != NULL)
		flags |= cp->dbg.flags;
	if (s != NULL && s->kind == KMEM_OWNER_LARGE)
		large = ka_large_block(s, buf, &freed);
	if (s != NULL && s->kind == KMEM_OWNER_SLAB) {
		uint64_t off = (uint64_t)((const char *)buf - s->base);

		oc = s->cache;
		if (off < oc->sl.objs_bytes)
			start = s->base + off / oc->sl.chunk * oc->sl.chunk;
		flags |= oc->dbg.flags;
	}
	if (cp == NULL && oc != NULL)
		cname = oc->name;       /* free(): the cache it points into */
	if (cp == NULL)
		flags |= (uint32_t)tunable(KT_DEBUG);
	if (!(flags & DEBUG_CHECKS)) {
		/* No debugging asked for: one line, and the free is ignored. */
		if (cp == NULL && oc != NULL && start == buf)
			kmem_report("%s(%p): an object of cache %s, not a "
			    "malloc block (kmem_cache_free takes it); ignored",
			    fn, buf, oc->name);
		else if (cp == NULL && oc != NULL && start != NULL)
			kmem_report("%s(%p): %zu bytes into object %p of cache "
			    "%s; ignored", fn, buf,
			    (size_t)((const char *)buf - start), start,
			    oc->name);
		else if (cp == NULL && large == buf && freed)
			kmem_report("%s(%p): a block above the classes, freed "
			    "already; ignored", fn, buf);
		else if (cp == NULL && large != NULL)
			kmem_report("%s(%p): %zu bytes into %sblock %p above "
			    "the classes; ignored", fn, buf,
			    (size_t)((const char *)buf - (const char *)large),
			    freed ? "freed " : "", large);
		else if (cp == NULL)
			kmem_report("%s(%p): not allocated by libkmem_malloc; "
			    "ignored", fn, buf);
		else if (oc == cp && start == buf)
			kmem_report("%s(%s): %p is an object of this cache "
			    "that is not allocated (never handed out, or freed "
			    "already); ignored", fn, cname, buf);
		else if (oc != NULL && start == buf)
			kmem_report("%s(%s): %p is an object of cache %s, not "
			    "of this cache; ignored", fn, cname, buf, oc->name);
		else if (oc != NULL && start != NULL)
			kmem_report("%s(%s): %p is %zu bytes into object %p of "
			    "cache %s; ignored", fn, cname, buf,
			    (size_t)((const char *)buf - start), start,
			    oc->name);
		else if (oc != NULL)
			kmem_report("%s(%s): %p is in a slab of cache %s, "
			    "outside its objects (colour or tail); ignored",
			    fn, cname, buf, oc->name);
		else
			kmem_report("%s(%s): %p was not allocated from this "
			    "cache (no cache owns it); ignored", fn, cname,
			    buf);
		return;
	}
	if (cp == NULL && oc != NULL && start == buf) {
		kmem_report("KMEM_DEBUG: free to the wrong cache: cache %s, "
		    "buffer %p: %s was given a buffer of cache %s, not a "
		    "malloc block (kmem_cache_free takes it)", cname, buf, fn,
		    oc->name);
		if (DEBUG_CACHE(oc))
			debug_audit_show(oc, buf, false);
	} else if (oc != NULL && start == buf) {
		kmem_report("KMEM_DEBUG: free to the wrong cache: cache %s, "
		    "buffer %p: %s was given a buffer of cache %s", cname,
		    buf, fn, oc->name);
		if (DEBUG_CACHE(oc))
			debug_audit_show(oc, buf, false);
	} else if (oc != NULL && start != NULL) {
		kmem_report("KMEM_DEBUG: free of a pointer inside a buffer: "
		    "cache %s, buffer %p: %s was given %p, %zu bytes into "
		    "buffer %p of cache %s", cname, buf, fn, buf,
		    (size_t)((const char *)buf - start), start, oc->name);
	} else if (oc != NULL) {
		kmem_report("KMEM_DEBUG: free of an address no cache owns: "
		    "cache %s, buffer %p: %s was given an address in a slab of "
		    "cache %s, outside its buffers (colour or tail)", cname,
		    buf, fn, oc->name);
	} else if (large == buf && freed) {
		kmem_report("KMEM_DEBUG: double free: cache %s, buffer %p: %s "
		    "was given a block above the classes that was freed "
		    "already", cname, buf, fn);
	} else if (large == buf) {
		kmem_report("KMEM_DEBUG: free to the wrong cache: cache %s, "
		    "buffer %p: %s was given a kmem_alloc block above the "
		    "classes (kmem_free takes it)", cname, buf, fn);
	} else if (large != NULL) {
		kmem_report("KMEM_DEBUG: free of a pointer inside a buffer: "
		    "cache %s, buffer %p: %s was given %p, %zu bytes into "
		    "%sblock %p above the classes", cname, buf, fn, buf,
		    (size_t)((const char *)buf - (const char *)large),
		    freed ? "freed " : "", large);
	} else {
		kmem_report("KMEM_DEBUG: free of an address no cache owns: "
		    "cache %s, buffer %p: %s was given an address %s", cname,
		    buf, fn, s != NULL ? "in the span of a large kmem_alloc "
		    "block, outside the block" : "that is no block of "
		    "libkmem's (never allocated, or freed and given back)");
	}
	debug_report_end(flags);
}

void
debug_bad_free(const char *fn, struct kmem_cache *cp, const void *buf)
{
	debug_bad(fn, cp, buf, 0);
}

bool
debug_kmem_free(struct kmem_cache *cp, const void *buf, size_t size)
{
	struct kmem_slab *s = vmem_owner(buf);
	struct kmem_cache *oc = NULL;
	size_t asked, usable;
	uint64_t st;

	if (s != NULL && s->kind == KMEM_OWNER_LARGE) {
		/*
		 * A block above the classes: freed with another size, or
		 * not a block (freed already: a double free; a pointer into
		 * one).  kmem_cache_free would take it to the cache of
		 * size's class: reported here, as no cache's.
		 */
		uint32_t flags = cp != NULL ? cp->dbg.flags :
		    (uint32_t)tunable(KT_DEBUG);

		asked = ka_large_size(buf);
		if (asked == size || !(flags & DEBUG_CHECKS))
			return (true);  /* kmem_free reports it */
		if (asked == 0) {
			debug_bad("kmem_free", NULL, buf, flags);
			return (false);
		}
		kmem_report("KMEM_DEBUG: kmem_free with the wrong size: cache "
		    "(none), buffer %p: allocated with size %zu (a block of "
		    "its own, above the classes), freed with size %zu", buf,
		    asked, size);
		debug_report_end(flags);
		return (false);
	}
	/*
	 * No object (an emergency object of a class has no arena owner: it
	 * is looked for).  Of a class's size kmem_cache_free reports it;
	 * above the classes no cache does: KMEM_DEBUG's report is made here.
	 */
	if (s == NULL ? ka_classify(buf, &oc, &usable) != KA_OBJECT :
	    (s->kind != KMEM_OWNER_SLAB ||
	    !slab_obj_ok(&s->cache->sl, s, buf))) {
		if (cp != NULL || !(tunable(KT_DEBUG) & DEBUG_CHECKS))
			return (true);
		debug_bad("kmem_free", NULL, buf, 0);
		return (false);
	}
	if (s != NULL)
		oc = s->cache;
	if (!DEBUG_CACHE(oc))
		return (true);
	asked = (size_t)debug_tail(oc, buf)->size;
	if (asked == 0 ? oc == cp : asked == size)
		return (true);
	/* Freed already (its size is stale) or never allocated: say that. */
	st = atomic_load(&debug_tail(oc, buf)->state);
	if (st != DEBUG_ALLOCATED) {
		debug_not_allocated(oc, (void *)(uintptr_t)buf, st,
		    "kmem_free was given it: ");
		return (false);
	}
	if (asked != 0)
		kmem_report("KMEM_DEBUG: kmem_free with the wrong size: cache "
		    "%s, buffer %p: allocated with size %zu, freed with size "
		    "%zu", oc->name, buf, asked, size);
	else
		kmem_report("KMEM_DEBUG: kmem_free with the wrong size: cache "
		    "%s, buffer %p: freed with size %zu, which is not this "
		    "cache's", oc->name, buf, size);
	debug_audit_show(oc, buf, false);
	debug_report_end(oc->dbg.flags);
	return (false);
}

void
debug_pool_double_free(uint32_t flags, const char *cname,
    const void *element)
{
	kmem_report("KMEM_DEBUG: double free: cache %s, buffer %p: "
	    "mempool_free was given an element that is in the pool's reserve "
	    "already", cname != NULL ? cname : "(none)", element);
	debug_report_end(flags);
}

bool
debug_pool_free_ok(const void *element)
{
	struct kmem_slab *s = vmem_owner(element);
	struct kmem_cache *cp;
	uint64_t st;

	if (s == NULL || s->kind != KMEM_OWNER_SLAB)
		return (true);
	cp = s->cache;
	if (!DEBUG_CACHE(cp) || !slab_obj_ok(&cp->sl, s, element))
		return (true);
	st = atomic_load(&debug_tail(cp, element)->state);
	if (st == DEBUG_ALLOCATED)
		return (true);
	debug_not_allocated(cp, (void *)(uintptr_t)element, st,
	    "mempool_free was given it: ");
	return (false);
}

/* ------------------------------------------------ leaks */

/* Whether obj is still allocated: if so, list it (a leak). */
static bool
debug_leak_obj(struct kmem_cache *cp, void *obj)
{
	struct debug_tail *t = debug_tail(cp, obj);

	if (atomic_load(&t->state) != DEBUG_ALLOCATED)
		return (false);
	kmem_report("KMEM_DEBUG: leak: cache %s, buffer %p: still allocated",
	    cp->name, obj);
	debug_stack(cp, "allocated", &t->alloc, t->pcs);
	return (true);
}

static uint64_t
debug_leaks_slab(struct kmem_cache *cp, struct kmem_slab *s)
{
	uint64_t found = 0;

	for (uint32_t i = 0; i < s->fresh; i++)
		found += debug_leak_obj(cp, s->base + (size_t)i * cp->sl.chunk);
	return (found);
}

struct debug_leak_walk {
	struct kmem_cache *cp;
	uint64_t found;
};

/* An emergency object (emergency_walk, its lock held). */
static void
debug_leaks_emergency(void *obj, void *arg)
{
	struct debug_leak_walk *w = arg;

	w->found += debug_leak_obj(w->cp, obj);
}

void
debug_leaks(struct kmem_cache *cp)
{
	struct debug_leak_walk w = { cp, 0 };
	uint64_t found = 0;

	if (!(cp->dbg.flags & KMEM_DEBUG_LEAKS))
		return;
	for (unsigned int n = 0; n < cp->sl.nnodes; n++) {
		struct slab_node *sn = &cp->sl.nodes[n];

		pthread_mutex_lock(sn->lock);
		for (int l = 0; l < SLAB_NLISTS; l++)
			for (struct kmem_slab *s = sn->lists[l].head;
			    s != NULL; s = s->next)
				found += debug_leaks_slab(cp, s);
		pthread_mutex_unlock(sn->lock);
	}
	if (atomic_load(&cp->emerg.count) != 0) {
		emergency_walk(&cp->emerg, debug_leaks_emergency, &w);
		found += w.found;
	}
	if (found != 0)
		kmem_report("KMEM_DEBUG: cache %s: %llu buffer(s) leaked",
		    cp->name, (unsigned long long)found);
}

static void
debug_leaks_walk(struct kmem_cache *cp, void *arg)
{
	(void) arg;
	debug_leaks(cp);
}

static void __attribute__((destructor))
debug_at_exit(void)
{
	if (atomic_load(&debug_any_leaks))
		cache_walk(debug_leaks_walk, NULL);
}
