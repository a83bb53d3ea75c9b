/*
 * magazine.c - the per-CPU magazine layer (Bonwick & Adams, 2001).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each CPU has a loaded and a previous magazine: arrays of constructed
 * objects ("rounds").  kmem_cache_alloc pops a round from the loaded
 * magazine; when it is empty the CPU swaps it with the previous one if
 * that has rounds, else exchanges its empty previous magazine for a full
 * one from the depot (depot.c), and only when the depot has none goes to
 * the slab layer for a batch of half a magazine, constructs it and puts
 * it in the previous magazine.  kmem_cache_free mirrors this, and when no
 * empty magazine is left it flushes half of its full previous magazine to
 * the slab layer (destructing those objects).  Rounds per magazine depend
 * on object size, as in the SPL (magazine size tunable overrides).
 *
 * THE LOADED MAGAZINE'S COUNT.  struct mag_cpu keeps two monotonic 64-bit
 * counters, allocs and frees, and the loaded magazine a base:
 *
 *     rounds in the loaded magazine = frees - allocs + base   (mod 2^64)
 *
 * so a pop commits with one store (allocs + 1) and a push with one store
 * (frees + 1) - and those counters are also the exact per-CPU statistics
 * of magazine hits, with no further write.  Making another magazine the
 * loaded one ("install") stores its base (computed for the rounds it
 * holds) and then the loaded pointer, which is the commit.
 *
 * PER-CPU EXCLUSION, two modes (KMEM_PERCPU):
 *
 *  rseq  Pop, push and install are restartable sequences (mag_rseq.h):
 *        they check the thread is still on the CPU whose state they use
 *        and end in a single commit store, so a thread preempted or
 *        migrated in the middle restarts instead of interleaving.  The
 *        fast path takes no lock and executes no atomic read-modify-write.
 *        Slow paths serialise on the CPU's mutex; only 'install' changes
 *        what the fast path reads, and 'prev' / 'prounds' belong to the
 *        mutex holder alone.  Needs glibc's rseq registration, x86-64, and
 *        membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ) for flushes.
 *
 *  lock  Every operation, fast or slow, holds the CPU's mutex and uses the
 *        same data with ordinary loads and stores.  The fallback where
 *        rseq is missing, and what ThreadSanitizer can see through.
 *
 * REMOTE FLUSH (reaping every CPU's magazines from one thread).  Holding
 * the CPU's mutex keeps slow paths out; in rseq mode the flusher then sets
 * the CPU's cap to 0, which sends every new fast path on that CPU to the
 * slow path (and so to the mutex), and calls membarrier(RSEQ) on that CPU,
 * which restarts any critical section that read the old cap and has not
 * committed.  After that nothing on the CPU can commit, the counters are
 * final, and the flusher empties both magazines, sets base so the loaded
 * count is 0 and only then restores cap.
 *
 * The fast paths must read cap FIRST, before loaded, the counters and
 * base.  A section that reads cap last could start after the membarrier,
 * read the old base, and then read the restored cap and commit on a
 * magazine the flusher just emptied (x86 keeps loads in order and stores
 * in order, which allows "old base, new cap"; it forbids only "new base,
 * old cap").  Reading cap first leaves two cases: cap read before it was
 * set to 0, so the section was in flight at the membarrier and restarts;
 * or cap read after it was restored, and then base is already the new one.
 *
 * INVARIANTS.  Every CPU owns exactly two magazines; the depot owns the
 * rest, a fixed number (depot.c).  0 <= rounds(loaded) <= magsize and
 * 0 <= prounds <= magsize.  A magazine in the depot's full ring holds
 * magsize rounds, one in the empty ring none.  Every round is a
 * constructed object that the application does not hold.
 *
 * IDLE CPUs.  A CPU's magazines are written only by its fast path, which
 * counts (allocs, frees), and by slow paths under its mutex, which set
 * 'used'.  A CPU with neither never held a round, and flushing and
 * statistics skip it without reading its magazines: a cache used by
 * threads on 2 of 64 CPUs is reaped without faulting in the other 62
 * CPUs' magazine pages (mag_cpu_idle).
 *
 * FLUSHES AND fork().  A flush takes rounds out of the magazines and then,
 * with no CPU lock held, gives them to the slab layer: in between they
 * are in the flushing thread's hands only, and in a child forked then
 * that thread is gone, so those objects stayed out for good (the child
 * could neither reap them nor destroy the cache).  Each flush holds
 * mag_flush_lock for reading from before it takes rounds until they are
 * back (mag_flush_enter; a flush that a destructor starts inside another
 * holds it already), and fork() takes it for writing before every other
 * lock (mag_fork_lock), so it waits for the flushes in progress.  The
 * lock prefers writers: new flushes wait for the fork, else a program
 * whose threads flush all the time kept fork() waiting.  fork() waits a
 * second at most: the flush runs the cache's destructor, which may wait
 * for a lock that the forking thread holds (its own atfork handler's,
 * say); fork() then goes on as before, the flush's objects lost to the
 * child.  A refill (mag_refill) holds it the same way: the objects it
 * constructs for a magazine are in no magazine until they are in one.
 * So does slab_grow: the slabs it maps are in no list until it links
 * them, and a child forked in between lacked them.
 *
 * LOCKING.  mag_flush_lock (read), then mag_cpu.lock per CPU; no two CPU
 * locks are held at once; the slab layer and constructors/destructors are
 * called with no CPU lock held (a destructor may free into the same
 * cache, and so flush again, or a constructor allocate from it: a thread
 * takes mag_flush_lock once, mag_flush_enter counting the nesting).
 */
#include "config.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "magazine.h"
#include "tunables.h"

_Static_assert(offsetof(struct mag_cpu, loaded) == 0, "rseq layout");
_Static_assert(offsetof(struct mag_cpu, allocs) == 8, "rseq layout");
_Static_assert(offsetof(struct mag_cpu, frees) == 16, "rseq layout");
_Static_assert(offsetof(struct mag_cpu, cap) == 24, "rseq layout");
_Static_assert(offsetof(struct mag, base) == 0, "rseq layout");
_Static_assert(offsetof(struct mag, rounds) == 8, "rseq layout");
_Static_assert(sizeof (struct mag_cpu) == 128, "rseq layout: cpu << 7");

#define MAG_DEPOT_MIN   8       /* magazines a depot holds, at least */
#define MAG_DEPOT_MAX   64      /* ... and at most */
#define MAG_MAX         256

enum mag_slow { MAG_RETRY, MAG_NEED_SLAB, MAG_NEED_FLUSH };


static enum mag_mode mag_mode_dflt = MAG_LOCK;
static bool mag_membarrier_cpu = true;          /* FLAG_CPU accepted */
/* Held for reading by a flush, for writing across fork() (FLUSHES). */
static pthread_rwlock_t mag_flush_lock KMEM_FORK_LOCK =
    PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static bool mag_fork_held;              /* fork() got it */
#define MAG_FORK_WAIT_S 1               /* the longest fork() waits for it */
/* Flushes this thread is in, one inside another (FLUSHES). */
static __thread unsigned int mag_flush_depth
    __attribute__((tls_model("initial-exec")));

void
mag_flush_enter(void)
{
	if (mag_flush_depth++ == 0)
		(void) pthread_rwlock_rdlock(&mag_flush_lock);
}

void
mag_flush_exit(void)
{
	if (--mag_flush_depth == 0)
		(void) pthread_rwlock_unlock(&mag_flush_lock);
}
static pthread_once_t mag_once = PTHREAD_ONCE_INIT;

static int
mag_membarrier(int cmd, unsigned int flags, int cpu)
{
	return ((int)syscall(__NR_membarrier, cmd, flags, cpu));
}

/*
 * Register for membarrier(RSEQ) so that flushes can restart other
 * threads' critical sections; NULL on success, else why rseq mode cannot
 * be used here.
 */
static const char *
mag_rseq_setup(void)
{
	static const char *why = "not tried";
	static bool done;

	if (done)
		return (why);
	done = true;
#if MAG_RSEQ_SUPPORTED
	int q = mag_membarrier(MEMBARRIER_CMD_QUERY, 0, 0);

	if (!cpu_rseq_registered)
		why = "glibc did not register rseq";
	else if (!cpu_ids_known)
		why = "/sys/devices/system/cpu/possible is unreadable or "
		    "misses a CPU this process may run on, so CPU ids may "
		    "exceed the per-CPU arrays";
	else if (q < 0 || !(q & MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ))
		why = "the kernel lacks membarrier(PRIVATE_EXPEDITED_RSEQ)";
	else if (mag_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ,
	    0, 0) != 0)
		why = "membarrier registration failed";
	else
		why = NULL;
#else
	why = "the rseq fast path is implemented for x86-64 only";
#endif
	return (why);
}

static void
mag_init_once(void)
{
	const char *why, *env;

	tunables_init();
	cpu_init();
	if (tunable_fixed(KT_PERCPU) != KMEM_PERCPU_RSEQ)
		return;
	why = mag_rseq_setup();
	if (why == NULL) {
		mag_mode_dflt = MAG_RSEQ;
		return;
	}
	/*
	 * The fallback is the value kmem_tunable_get() reports from now.  A
	 * variable that asked for rseq hears why not (one that was rejected
	 * has said so already).
	 */
	(void) tunable_set_id(KT_PERCPU, KMEM_PERCPU_LOCK);
	env = secure_getenv("KMEM_PERCPU");
	if (env != NULL && strcmp(env, "rseq") == 0)
		kmem_report("KMEM_PERCPU=rseq is not available here (%s); "
		    "using lock", why);
}

enum mag_mode
mag_default_mode(void)
{
	(void) pthread_once(&mag_once, mag_init_once);
	return (mag_mode_dflt);
}

void
mag_set_default_mode(enum mag_mode mode)
{
	(void) mag_default_mode();
	if (mode == MAG_RSEQ && mag_rseq_setup() != NULL)
		return;                 /* not possible here */
	mag_mode_dflt = mode;
}

uint32_t
mag_size_for(size_t chunk)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	int64_t t = tunable(KT_CACHE_MAGAZINE_SIZE);

	if (t != 0)
		return ((uint32_t)KMEM_MAX(KMEM_MIN(t, MAG_MAX), 2));
	if (chunk > 256 * page)
		return (4);
	if (chunk > 32 * page)
		return (16);
	if (chunk > page)
		return (64);
	if (chunk > page / 4)
		return (128);
	return (256);
}

/* CPU c's magazine j (0 or 1). */
static inline struct mag *
mag_of_cpu(struct mag_layer *ml, unsigned int c, unsigned int j)
{
	return ((struct mag *)(ml->mags + c * ml->pair_bytes +
	    j * ml->mag_bytes));
}

/*
 * The magazines' layout: each CPU's pair, then the depot's magazines.  On
 * NUMA machines each CPU's pair has pages of its own, which its CPU is the
 * first to write (refills and frees run there), so the kernel allocates
 * them on that CPU's node (see place.c).
 */
static size_t
mag_layout(uint32_t magsize, size_t *mag_bytes, size_t *pair_bytes,
    int *depot_mags)
{
	unsigned int ncpus = cpu_count();

	*depot_mags = (int)KMEM_MIN(KMEM_MAX(2 * ncpus, MAG_DEPOT_MIN),
	    MAG_DEPOT_MAX);
	*mag_bytes = KMEM_P2ROUNDUP(sizeof (struct mag) +
	    magsize * sizeof (void *), KMEM_CACHE_LINE);
	*pair_bytes = 2 * *mag_bytes;
	if (cpu_numa_real())
		*pair_bytes = KMEM_P2ROUNDUP(*pair_bytes,
		    (size_t)sysconf(_SC_PAGESIZE));
	return (ncpus * *pair_bytes + (size_t)*depot_mags * *mag_bytes);
}

size_t
mag_region_len(uint32_t magsize)
{
	size_t mag_bytes, pair_bytes;
	int depot_mags;

	return (mag_layout(magsize, &mag_bytes, &pair_bytes, &depot_mags));
}

int
mag_layer_init(struct kmem_cache *cp, enum mag_mode mode, uint32_t magsize,
    char *region)
{
	struct mag_layer *ml = &cp->mag;
	unsigned int ncpus = cpu_count();
	int depot_mags;

	ml->mode = mode;
	if (mode == MAG_NONE)
		return (0);
	ml->magsize = magsize;
	(void) mag_layout(magsize, &ml->mag_bytes, &ml->pair_bytes,
	    &depot_mags);
	ml->mags = region;                      /* zeroed: bases start 0 */
	for (unsigned int c = 0; c < ncpus; c++) {
		struct mag_cpu *pc = &ml->cpu[c];

		/*
		 * The first refill goes to the previous magazine: the pair's
		 * first, which for CPU 0 shares the cache structure's page.
		 */
		atomic_store(&pc->loaded, mag_of_cpu(ml, c, 1));
		atomic_store(&pc->cap, ml->magsize);
		pc->prev = mag_of_cpu(ml, c, 0);
		pc->prounds = 0;
	}
	return (depot_init(&ml->depot, ml->mags + ncpus * ml->pair_bytes,
	    ml->mag_bytes, depot_mags));
}

void
mag_layer_fini(struct kmem_cache *cp)
{
	struct mag_layer *ml = &cp->mag;

	if (ml->mode == MAG_NONE)
		return;
	depot_fini(&ml->depot);
	ml->mags = NULL;                /* freed with the cache structure */
}

/* ------------------------------------------------ per-CPU primitives */

/*
 * The three operations on one CPU's state.  In rseq mode they are
 * critical sections and may fail (preempted, or not on that CPU); in lock
 * mode the caller holds pc->lock and they are plain code.
 */
static inline uint64_t
mag_loaded_rounds(struct mag_cpu *pc, struct mag *m)
{
	return (atomic_load_explicit(&pc->frees, memory_order_relaxed) -
	    atomic_load_explicit(&pc->allocs, memory_order_relaxed) +
	    atomic_load_explicit(&m->base, memory_order_relaxed));
}

/* Whether CPU pc never held a round (see IDLE CPUs).  pc->lock held. */
static inline bool
mag_cpu_idle(struct mag_cpu *pc)
{
	return (!pc->used &&
	    atomic_load_explicit(&pc->allocs, memory_order_relaxed) == 0 &&
	    atomic_load_explicit(&pc->frees, memory_order_relaxed) == 0);
}

static bool
mag_lock_pop(struct mag_cpu *pc, void **objp)
{
	struct mag *m = atomic_load_explicit(&pc->loaded, memory_order_relaxed);
	uint64_t n = mag_loaded_rounds(pc, m);

	if (n - 1 >= atomic_load_explicit(&pc->cap, memory_order_relaxed))
		return (false);
	*objp = m->rounds[n - 1];
	atomic_store_explicit(&pc->allocs, atomic_load_explicit(&pc->allocs,
	    memory_order_relaxed) + 1, memory_order_relaxed);
	return (true);
}

static bool
mag_lock_push(struct mag_cpu *pc, void *obj)
{
	struct mag *m = atomic_load_explicit(&pc->loaded, memory_order_relaxed);
	uint64_t n = mag_loaded_rounds(pc, m);

	if (n >= atomic_load_explicit(&pc->cap, memory_order_relaxed))
		return (false);
	m->rounds[n] = obj;
	atomic_store_explicit(&pc->frees, atomic_load_explicit(&pc->frees,
	    memory_order_relaxed) + 1, memory_order_relaxed);
	return (true);
}

static bool
mag_install(struct mag_layer *ml, struct mag_cpu *pc, uint32_t cpu,
    struct mag *m, uint64_t rounds, struct mag **oldp, uint64_t *old_rounds)
{
#if MAG_RSEQ_SUPPORTED
	if (ml->mode == MAG_RSEQ) {
		void *old;

		if (mag_rseq_install(pc, cpu, cpu_rseq_offset, m, rounds,
		    &old, old_rounds) != MAG_RSEQ_OK)
			return (false);
		*oldp = old;
		KMEM_ASSERT(*old_rounds <= ml->magsize);
		return (true);
	}
#else
	(void) ml; (void) cpu;
#endif
	struct mag *old = atomic_load_explicit(&pc->loaded,
	    memory_order_relaxed);
	uint64_t d = atomic_load_explicit(&pc->frees, memory_order_relaxed) -
	    atomic_load_explicit(&pc->allocs, memory_order_relaxed);

	*old_rounds = d + atomic_load_explicit(&old->base,
	    memory_order_relaxed);
	atomic_store_explicit(&m->base, rounds - d, memory_order_relaxed);
	atomic_store_explicit(&pc->loaded, m, memory_order_relaxed);
	*oldp = old;
	return (true);
}

/* The CPU to work on: rseq's cpu_id_start, or the scheduler's hint. */
static inline struct mag_cpu *
mag_cpu_of(struct mag_layer *ml, uint32_t *cpup)
{
#if MAG_RSEQ_SUPPORTED
	if (ml->mode == MAG_RSEQ)
		return (mag_this_cpu(ml, cpup));
#endif
	*cpup = cpu_current();
	return (&ml->cpu[*cpup]);
}

/* ------------------------------------------------ slow paths */

/* Alloc found the loaded magazine empty.  pc->lock held. */
static enum mag_slow
mag_reload_full(struct mag_layer *ml, struct mag_cpu *pc, uint32_t cpu)
{
	struct mag *old, *full;
	uint64_t k;

	if (pc->prounds > 0) {                  /* swap with previous */
		if (mag_install(ml, pc, cpu, pc->prev, pc->prounds, &old, &k)) {
			pc->prev = old;
			pc->prounds = k;
		}
		return (MAG_RETRY);
	}
	full = depot_maybe_full(&ml->depot) ? depot_get_full(&ml->depot) :
	    NULL;
	if (full == NULL)
		return (MAG_NEED_SLAB);
	if (mag_install(ml, pc, cpu, full, ml->magsize, &old, &k)) {
		depot_put_empty(&ml->depot, pc->prev);  /* prounds == 0 */
		pc->prev = old;
		pc->prounds = k;
	} else {
		depot_put_full(&ml->depot, full);
	}
	return (MAG_RETRY);
}

/* Free found the loaded magazine full.  pc->lock held. */
static enum mag_slow
mag_reload_empty(struct mag_layer *ml, struct mag_cpu *pc, uint32_t cpu)
{
	struct mag *old, *empty;
	uint64_t k;

	if (pc->prounds < ml->magsize) {        /* swap with previous */
		if (mag_install(ml, pc, cpu, pc->prev, pc->prounds, &old, &k)) {
			pc->prev = old;
			pc->prounds = k;
		}
		return (MAG_RETRY);
	}
	empty = depot_get_empty(&ml->depot);
	if (empty == NULL)
		return (MAG_NEED_FLUSH);
	if (mag_install(ml, pc, cpu, empty, 0, &old, &k)) {
		depot_put_full(&ml->depot, pc->prev);   /* prounds == magsize */
		pc->prev = old;
		pc->prounds = k;
	} else {
		depot_put_empty(&ml->depot, empty);
	}
	return (MAG_RETRY);
}

/*
 * Nothing cached anywhere: construct half a magazine from the slab
 * layer, return one object and put the rest in CPU cpu's previous
 * magazine (as far as it has room).
 */
static void *
mag_refill(struct kmem_cache *cp, uint32_t cpu, int kmflags)
{
	struct mag_layer *ml = &cp->mag;
	struct mag_cpu *pc = &ml->cpu[cpu];
	void *batch[MAG_MAX / 2];
	unsigned int n;
	void *obj = NULL;

	/* The batch is in no magazine until it is in one (FLUSHES). */
	mag_flush_enter();
	n = cache_fill(cp, batch, KMEM_MAX(ml->magsize / 2, 1U), kmflags);
	if (n != 0)
		obj = batch[--n];
	if (n != 0) {
		pthread_mutex_lock(pc->lock);
		while (n != 0 && pc->prounds < ml->magsize) {
			KMEM_TSAN_RELEASE(batch[n - 1]);
			pc->prev->rounds[pc->prounds++] = batch[--n];
		}
		pthread_mutex_unlock(pc->lock);
		if (n != 0)
			cache_release(cp, batch, n);    /* raced: no room */
	}
	mag_flush_exit();
	return (obj);
}

void *
mag_alloc(struct kmem_cache *cp, int kmflags)
{
	struct mag_layer *ml = &cp->mag;
	void *obj;

	if (ml->mode == MAG_NONE) {
		if (cache_fill(cp, &obj, 1, kmflags) != 1)
			return (NULL);
		stat_add(&cp->cpu[cpu_current()].alloc, 1);
		return (obj);
	}
	for (;;) {
		uint32_t cpu;
		struct mag_cpu *pc = mag_cpu_of(ml, &cpu);
		enum mag_slow r;

#if MAG_RSEQ_SUPPORTED
		if (ml->mode == MAG_RSEQ &&
		    (obj = mag_rseq_pop(ml->cpu, cpu_rseq_offset)) != NULL) {
			KMEM_TSAN_ACQUIRE(obj);
			return (obj);
		}               /* else empty, or preempted: slow path */
#endif
		pthread_mutex_lock(pc->lock);
		pc->used = true;
		if (ml->mode == MAG_LOCK && mag_lock_pop(pc, &obj)) {
			pthread_mutex_unlock(pc->lock);
			return (obj);
		}
		r = mag_reload_full(ml, pc, cpu);
		pthread_mutex_unlock(pc->lock);
		if (r == MAG_RETRY)
			continue;
		obj = mag_refill(cp, cpu, kmflags);
		if (obj != NULL)
			stat_add(&cp->cpu[cpu].alloc, 1);
		return (obj);
	}
}

void
mag_free(struct kmem_cache *cp, void *obj)
{
	struct mag_layer *ml = &cp->mag;
	void *half[MAG_MAX / 2];
	unsigned int n;
	bool flushing = false;          /* mag_flush_lock held (FLUSHES) */

	if (ml->mode == MAG_NONE) {
		cache_release(cp, &obj, 1);
		stat_add(&cp->cpu[cpu_current()].free, 1);
		return;
	}
	for (;;) {
		uint32_t cpu;
		struct mag_cpu *pc = mag_cpu_of(ml, &cpu);
		enum mag_slow r;

#if MAG_RSEQ_SUPPORTED
		KMEM_TSAN_RELEASE(obj);
		if (ml->mode == MAG_RSEQ &&
		    mag_rseq_push(ml->cpu, cpu_rseq_offset, obj))
			break;          /* else full, or preempted: slow path */
#endif
		pthread_mutex_lock(pc->lock);
		pc->used = true;
		if (ml->mode == MAG_LOCK && mag_lock_push(pc, obj)) {
			pthread_mutex_unlock(pc->lock);
			break;
		}
		r = mag_reload_empty(ml, pc, cpu);
		if (r == MAG_RETRY) {
			pthread_mutex_unlock(pc->lock);
			continue;
		}
		if (!flushing) {
			/* It comes before the CPU's lock: again, holding it. */
			pthread_mutex_unlock(pc->lock);
			mag_flush_enter();
			flushing = true;
			continue;
		}
		/*
		 * No empty magazine anywhere: the previous magazine is full.
		 * Send its top half to the slab layer and keep obj in it.
		 */
		n = ml->magsize / 2;
		pc->prounds -= n;
		memcpy(half, &pc->prev->rounds[pc->prounds], n * sizeof (void *));
		pc->prev->rounds[pc->prounds++] = obj;
		pthread_mutex_unlock(pc->lock);
		stat_add(&cp->cpu[cpu].free, 1);
		atomic_fetch_add_explicit(&ml->flushed, n, memory_order_relaxed);
		cache_release(cp, half, n);
		break;
	}
	if (flushing)
		mag_flush_exit();
}

/* ------------------------------------------------ flushing */

/*
 * Empty CPU cpu's two magazines into out[] (room for 2 * magsize).
 * pc->lock held.  See REMOTE FLUSH above.
 */
static unsigned int
mag_take_cpu(struct mag_layer *ml, unsigned int cpu, void **out)
{
	struct mag_cpu *pc = &ml->cpu[cpu];
	struct mag *m;
	uint64_t a, f, n;
	unsigned int got = 0;

	if (ml->mode == MAG_RSEQ) {
		atomic_store_explicit(&pc->cap, 0, memory_order_relaxed);
		if (!mag_membarrier_cpu || mag_membarrier(
		    MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ,
		    MEMBARRIER_CMD_FLAG_CPU, (int)cpu) != 0) {
			mag_membarrier_cpu = false;     /* kernel < 5.10 */
			if (mag_membarrier(
			    MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0) != 0) {
				/* Flushing now could lose objects. */
				kmem_report("membarrier(RSEQ) failed: %s; cannot "
				    "flush magazines safely", strerror(errno));
				abort();
			}
		}
	}
	m = atomic_load_explicit(&pc->loaded, memory_order_acquire);
	a = atomic_load_explicit(&pc->allocs, memory_order_relaxed);
	f = atomic_load_explicit(&pc->frees, memory_order_relaxed);
	n = f - a + atomic_load_explicit(&m->base, memory_order_relaxed);
	if (KMEM_UNLIKELY(n > ml->magsize)) {
		kmem_report("magazine of CPU %u holds %llu rounds (max %u); "
		    "internal invariant broken", cpu, (unsigned long long)n,
		    ml->magsize);
		abort();
	}
	memcpy(out, m->rounds, n * sizeof (void *));
	got = (unsigned int)n;
	atomic_store_explicit(&m->base, a - f, memory_order_relaxed);
	memcpy(out + got, pc->prev->rounds, pc->prounds * sizeof (void *));
	got += (unsigned int)pc->prounds;
	pc->prounds = 0;
	atomic_store_explicit(&pc->cap, ml->magsize, memory_order_release);
	return (got);
}

void
mag_flush_cpu(struct kmem_cache *cp, unsigned int cpu)
{
	struct mag_layer *ml = &cp->mag;
	struct mag_cpu *pc = &ml->cpu[cpu];
	void *out[2 * MAG_MAX];
	unsigned int n = 0;

	if (ml->mode == MAG_NONE)
		return;
	mag_flush_enter();
	pthread_mutex_lock(pc->lock);
	/* Nothing cached there: no need to stop the CPU. */
	if (!mag_cpu_idle(pc) && (pc->prounds != 0 || mag_loaded_rounds(pc,
	    atomic_load_explicit(&pc->loaded, memory_order_relaxed)) != 0))
		n = mag_take_cpu(ml, cpu, out);
	pthread_mutex_unlock(pc->lock);
	if (n != 0) {
		atomic_fetch_add_explicit(&ml->flushed, n,
		    memory_order_relaxed);
		cache_release(cp, out, n);
	}
	mag_flush_exit();
}

void
mag_depot_flush(struct kmem_cache *cp, unsigned int limit)
{
	struct mag_layer *ml = &cp->mag;
	struct mag *m;

	if (ml->mode == MAG_NONE)
		return;
	mag_flush_enter();
	while (limit-- > 0 && (m = depot_get_full(&ml->depot)) != NULL) {
		cache_release(cp, m->rounds, ml->magsize);
		depot_put_empty(&ml->depot, m);
		atomic_fetch_add_explicit(&ml->flushed, ml->magsize,
		    memory_order_relaxed);
	}
	mag_flush_exit();
}

void
mag_fork_lock(void)
{
	struct timespec until;

	(void) clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += MAG_FORK_WAIT_S;
	mag_fork_held = pthread_rwlock_timedwrlock(&mag_flush_lock,
	    &until) == 0;
}

/*
 * In the child the lock is made anew: glibc knows its writer by thread
 * id, which the child's thread does not have.  (Not got in time, it
 * keeps the parent's readers, which only delay the child's own forks.)
 */
void
mag_fork_unlock(bool child)
{
	if (mag_fork_held && child)
		mag_flush_lock = (pthread_rwlock_t)
		    PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
	else if (mag_fork_held)
		(void) pthread_rwlock_unlock(&mag_flush_lock);
	mag_fork_held = false;
}

void
mag_flush_all(struct kmem_cache *cp)
{
	for (unsigned int c = 0; c < cpu_count(); c++)
		mag_flush_cpu(cp, c);
	mag_depot_flush(cp, UINT32_MAX);
}

uint64_t
mag_cpu_ops(struct kmem_cache *cp, unsigned int cpu)
{
	struct mag_cpu *pc = &cp->mag.cpu[cpu];

	if (cp->mag.mode == MAG_NONE)
		return (0);
	return (atomic_load_explicit(&pc->allocs, memory_order_relaxed) +
	    atomic_load_explicit(&pc->frees, memory_order_relaxed));
}

void
mag_counts(struct kmem_cache *cp, struct mag_counts *c)
{
	struct mag_layer *ml = &cp->mag;

	memset(c, 0, sizeof (*c));
	if (ml->mode == MAG_NONE)
		return;
	for (unsigned int cpu = 0; cpu < cpu_count(); cpu++) {
		struct mag_cpu *pc = &ml->cpu[cpu];
		uint64_t n;

		pthread_mutex_lock(pc->lock);
		if (mag_cpu_idle(pc)) {
			pthread_mutex_unlock(pc->lock);
			continue;
		}
		c->allocs += atomic_load_explicit(&pc->allocs,
		    memory_order_relaxed);
		c->frees += atomic_load_explicit(&pc->frees,
		    memory_order_relaxed);
		/* A snapshot: in rseq mode the fast path runs meanwhile. */
		n = mag_loaded_rounds(pc, atomic_load_explicit(&pc->loaded,
		    memory_order_relaxed));
		c->cached += KMEM_MIN(n, (uint64_t)ml->magsize) + pc->prounds;
		pthread_mutex_unlock(pc->lock);
	}
	c->depot_full = (uint64_t)depot_full_count(&ml->depot);
	c->depot_empty = (uint64_t)depot_empty_count(&ml->depot);
	c->cached += c->depot_full * ml->magsize;
}
