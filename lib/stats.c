/*
 * stats.c - the statistics region: each process publishes its caches, its
 * task queues, the kmem_alloc classes and the tunables in a file of shared
 * memory that kmemstat(1) reads, like slabtop reads /proc/slabinfo.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * THE FILE.  <dir>/libkmem.<pid>, dir from KMEM_STATS_DIR (default
 * /dev/shm), mode 0600: only its owner and root read it.  The layout is
 * in stats.h and man7/libkmem.7.  It is built under a temporary name
 * (.libkmem.<pid>.new), locked with flock(LOCK_EX), filled and then
 * renamed into place, so the final name always holds a complete region,
 * locked for as long as this process image lives.  A reader tells a live
 * region from a stale one (the process died, or exec'd: the descriptor
 * is O_CLOEXEC, and exec drops the mapping, which also holds the lock)
 * by trying a shared lock.  The region is removed at
 * normal exit (a destructor) and when kmem_stats is turned off; regions
 * that this user's dead processes left (_exit, signals) are removed when
 * a region is created.
 *
 * PUBLISHING.  A task on the kmem taskq runs a tenth of a second after
 * libkmem starts (a shorter-lived process creates no file), then every
 * second.  It publishes every kmem_stats_interval seconds, and at once
 * when a reader asks for it through the region's request words:
 * publish_request, or reap_request (it then reaps every cache first, like
 * kmem_reap()).  A first tick that its thread (not a worker of the
 * queue) could not queue for want of a task entry is queued again by
 * reap.c's retry (stats_arm), not lost for good.
 * Each publish sums the caches' per-CPU counters with kmem_cache_stats()
 * and friends into a private image, then copies the image into the
 * region under a sequence lock (seq odd while copying), so a reader that
 * copies the region between two equal even values of seq has a
 * consistent snapshot.  Nothing here runs on the allocation fast paths,
 * and they write nothing for it.  When the image outgrows the file (more
 * caches), the file is extended and remapped first; it never shrinks.
 *
 * FORK.  The child drops the parent's mapping and descriptor (it must
 * neither write the parent's region nor keep its lock) and creates its
 * own region at its first tick, a second after fork(): a child that execs
 * at once never creates one.  The child starts a tick chain of its own;
 * ticks of the parent's chain that the child inherits see an old chain
 * number and stop.
 *
 * LOCKING.  stats_lock protects everything here; the publisher holds it
 * while it builds and copies an image (it takes the cache registry, cache,
 * task queue and arena locks under it), and the fork handlers take it
 * before every other libkmem lock.  It is not held while reaping (reclaim
 * callbacks are the application's code).  No memory comes from malloc:
 * the image is a private mapping.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cpu.h"
#include "kmem_alloc.h"
#include "reap.h"
#include "stats.h"
#include "taskq_impl.h"
#include "tunables.h"
#include "vmem.h"

#define NS_PER_SEC              1000000000LL
#define STATS_TICK_NS           NS_PER_SEC      /* requests seen this often */
#define STATS_FIRST_NS          (NS_PER_SEC / 10) /* first publish, at start */
#define STATS_SLACK_NS          (NS_PER_SEC / 20)
#define STATS_DIR_MAX           (PATH_MAX - 64)
#define STATS_IMAGE_MIN         ((size_t)64 << 10)
/*
 * The most of a path that a report shows: a report is one line of at most
 * 512 bytes (report.c), and why it failed comes after the path.
 */
#define STATS_SHOWN_PATH        200

static pthread_mutex_t stats_lock KMEM_FORK_LOCK =
    PTHREAD_MUTEX_INITIALIZER;
static taskq_t *stats_tq;
static bool stats_usable;               /* the directory is good */
static bool stats_exiting;              /* the destructor ran */
static bool stats_broken;               /* creating or growing failed */
static uint64_t stats_chain;            /* this process's tick chain */
static bool stats_lost;                 /* its tick could not be queued */
static char stats_dir[STATS_DIR_MAX + 1];
static char stats_file[PATH_MAX];
static char stats_tmp[PATH_MAX];

/* The region of this process image (NULL: none). */
static int stats_fd = -1;
static dev_t stats_dev;                 /* the file stats_fd was opened on */
static ino_t stats_ino;
static struct kst_header *stats_map;
static size_t stats_maplen;
static pid_t stats_pid;
static uint64_t stats_seq;
static uint64_t stats_npublish;
static int64_t stats_last;              /* CLOCK_MONOTONIC ns */
static int64_t stats_created;           /* CLOCK_REALTIME ns */
static uint64_t stats_start_ticks;      /* /proc/self/stat starttime */

/* The image being built. */
static char *stats_img;
static size_t stats_imglen, stats_used;
static bool stats_img_failed;

static void stats_tick(void *arg);

static int64_t
stats_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec);
}

/* Field 22 of /proc/self/stat: when the process started (clock ticks). */
static uint64_t
stats_proc_start(void)
{
	char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof (buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return (0);
	buf[n] = '\0';
	return (stats_stat_starttime(buf));
}

/* ------------------------------------------------------------ the image */

/* size zeroed bytes at the end of the image, or NULL (then it failed). */
static void *
stats_append(size_t size)
{
	void *p;

	if (stats_img_failed)
		return (NULL);
	if (stats_used + size > stats_imglen) {
		size_t len = KMEM_MAX(stats_imglen * 2, STATS_IMAGE_MIN);
		void *img;

		while (len < stats_used + size)
			len *= 2;
		img = stats_img == NULL ? kmem_pages_alloc(len) :
		    mremap(stats_img, stats_imglen, len, MREMAP_MAYMOVE);
		if (img == NULL || img == MAP_FAILED) {
			stats_img_failed = true;
			return (NULL);
		}
		stats_img = img;
		stats_imglen = len;
	}
	p = stats_img + stats_used;
	memset(p, 0, size);
	stats_used += size;
	return (p);
}

static struct kst_header *
stats_img_header(void)
{
	return ((struct kst_header *)(void *)stats_img);
}

static void
stats_add_cache(struct kmem_cache *cp, void *arg)
{
	struct kmem_cache_stats cs;
	struct kst_cache *r;

	(void) arg;
	if (kmem_cache_stats(cp, &cs) != 0 ||
	    (r = stats_append(sizeof (*r))) == NULL)
		return;
	memcpy(r->name, cs.name, sizeof (r->name));
	r->name[KST_NAMELEN - 1] = '\0';
	/*
	 * Not the address: a cache destroyed and created again often gets
	 * the same one, and kmemstat would take its rates against the old
	 * cache's counters.
	 */
	r->id = cp->id;
	r->obj_size = cs.obj_size;
	r->obj_align = cs.obj_align;
	r->cflags = (uint64_t)cp->cflags;
	r->slab_size = cs.slab_size;
	r->objs_per_slab = cs.objs_per_slab;
	r->slab_total = cs.slab_total;
	r->slab_alloc = cs.slab_alloc;
	r->slab_max = cs.slab_max;
	r->obj_total = cs.obj_total;
	r->obj_alloc = cs.obj_alloc;
	r->obj_max = cs.obj_max;
	r->obj_inuse = cs.alloc > cs.free ? cs.alloc - cs.free : 0;
	r->obj_cached = cs.obj_cached;
	r->obj_emergency = cs.obj_emergency;
	r->obj_emergency_max = cs.obj_emergency_max;
	r->obj_deadlock = cs.obj_deadlock;
	r->alloc = cs.alloc;
	r->alloc_fail = cs.alloc_fail;
	r->free = cs.free;
	r->ctor_calls = cs.ctor_calls;
	r->dtor_calls = cs.dtor_calls;
	/* The objects, not a KMEM_DEBUG cache's redzones and records. */
	r->mem_inuse = r->obj_inuse * KMEM_P2ROUNDUP(cp->size, cp->align);
	r->mem_total = cs.mem_total;
	r->mem_meta = cs.mem_meta;
	r->mem_carved = cs.mem_carved;
	r->mag_size = cs.mag_size;
	r->mag_alloc_hits = cs.mag_alloc_hits;
	r->mag_free_hits = cs.mag_free_hits;
	r->depot_full = cs.depot_full;
	r->depot_empty = cs.depot_empty;
	r->depot_contention = cs.depot_contention;
	r->mag_flushes = cs.mag_flushes;
	r->slab_grows = cs.slab_grows;
	r->grow_waits = cs.grow_waits;
	r->nr_nodes = cs.nr_nodes;
	r->destroyed = cp->destroyed;
}

static void
stats_add_taskq(taskq_t *tq, void *arg)
{
	struct taskq_stats ts;
	struct kst_taskq *r;

	(void) arg;
	if (taskq_stats(tq, &ts) != 0 ||
	    (r = stats_append(sizeof (*r))) == NULL)
		return;
	memcpy(r->name, ts.name, KMEM_MIN(sizeof (r->name), sizeof (ts.name)));
	r->name[KST_NAMELEN - 1] = '\0';
#define	STATS_COPY(f)   r->f = ts.f;
	KST_TASKQ_FIELDS(STATS_COPY)
#undef	STATS_COPY
}

static void
stats_add_classes(void)
{
	int n;

	/* Only when kmem_alloc is in use: setting it up costs. */
	if (!atomic_load(&ka_ready))
		return;
	n = kmem_alloc_class_count();
	for (int i = 0; i < n; i++) {
		struct kmem_class_stats cs;
		struct kst_class *r;

		if (kmem_alloc_class_stats(i, &cs) != 0 ||
		    (r = stats_append(sizeof (*r))) == NULL)
			return;
		memcpy(r->name, cs.name, sizeof (r->name));
		r->name[KST_NAMELEN - 1] = '\0';
#define	STATS_COPY(f)   r->f = cs.f;
		KST_CLASS_FIELDS(STATS_COPY)
#undef	STATS_COPY
	}
}

static void
stats_add_tunables(void)
{
	for (int id = 0; id < KT_COUNT; id++) {
		const struct tunable_def *def =
		    tunable_def((enum tunable_id)id);
		struct kst_tunable *r = stats_append(sizeof (*r));
		const char *word;

		if (r == NULL)
			return;
		(void) snprintf(r->name, sizeof (r->name), "%s", def->name);
		r->value = tunable((enum tunable_id)id);
		r->dflt = def->dflt;
		r->min = def->min;
		r->max = def->max;
		word = tunable_value_name((enum tunable_id)id, r->value);
		if (word != NULL)
			(void) snprintf(r->word, sizeof (r->word), "%s", word);
		for (int w = 0; def->words != NULL && def->words[w] != NULL;
		    w++) {
			size_t len = strlen(r->words);

			(void) snprintf(r->words + len, sizeof (r->words) - len,
			    "%s%s", w ? "|" : "", def->words[w]);
		}
	}
}

/* Start a section of records of 'size' bytes at the end of the image. */
static void
stats_section_begin(enum kst_section_id id, size_t size)
{
	struct kst_section *s = &stats_img_header()->sect[id];

	s->offset = (uint32_t)stats_used;
	s->size = (uint32_t)size;
}

static void
stats_section_end(enum kst_section_id id)
{
	struct kst_section *s = &stats_img_header()->sect[id];

	s->count = (uint32_t)((stats_used - s->offset) / s->size);
}

/* The whole region, as it should be now, in stats_img; 0 or -1. */
static int
stats_build(void)
{
	struct kst_header *h;
	struct vmem_usage u;

	stats_used = 0;
	stats_img_failed = false;
	if (stats_append(KST_HEADER_SIZE) == NULL)
		return (-1);
	h = stats_img_header();
	h->magic = KST_MAGIC;
	h->version = KST_VERSION;
	h->header_size = KST_HEADER_SIZE;
	h->pid = stats_pid;
	h->proc_start = stats_start_ticks;
	h->created = stats_created;
	h->published = stats_realtime_ns();
	h->publishes = stats_npublish + 1;
	h->interval = (uint32_t)tunable(KT_STATS_INTERVAL);
	h->ncpus = cpu_count();
	(void) snprintf(h->comm, sizeof (h->comm), "%s",
	    program_invocation_short_name);
	vmem_usage(&u);
	h->arena_inuse = u.inuse;
	h->arena_reserved = u.reserved;

	stats_section_begin(KST_SEC_CACHES, sizeof (struct kst_cache));
	cache_walk(stats_add_cache, NULL);
	stats_section_end(KST_SEC_CACHES);
	stats_section_begin(KST_SEC_TASKQS, sizeof (struct kst_taskq));
	taskq_walk(stats_add_taskq, NULL);
	stats_section_end(KST_SEC_TASKQS);
	stats_section_begin(KST_SEC_CLASSES, sizeof (struct kst_class));
	stats_add_classes();
	stats_section_end(KST_SEC_CLASSES);
	stats_section_begin(KST_SEC_TUNABLES, sizeof (struct kst_tunable));
	stats_add_tunables();
	stats_section_end(KST_SEC_TUNABLES);
	stats_img_header()->size = stats_used;
	return (stats_img_failed ? -1 : 0);
}

/* ------------------------------------------------------------ the region */

/* File length for an image of used bytes: pages, with room to grow. */
static size_t
stats_region_len(size_t used)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	/* Room to grow, but never past what a reader accepts. */
	return (KMEM_MIN(KMEM_P2ROUNDUP(used + used / 4, page),
	    (size_t)KST_MAX_SIZE));
}

/*
 * Is stats_fd still the region's descriptor?  A program may close every
 * descriptor it does not know (daemons do) and reuse the number: then it
 * is the program's, and must be neither used nor closed here.
 */
static bool
stats_fd_ours_locked(void)
{
	struct stat st;

	return (stats_fd >= 0 && fstat(stats_fd, &st) == 0 &&
	    st.st_dev == stats_dev && st.st_ino == stats_ino);
}

/*
 * Make the file len bytes long, with its blocks allocated: on a full
 * tmpfs, ftruncate() succeeds (the file is sparse) and the first write
 * through the mapping to a page that cannot be had raises SIGBUS.
 * 0, or -1 with errno.
 */
static int
stats_size_locked(int fd, size_t len)
{
	int err = posix_fallocate(fd, 0, (off_t)len);

	if (err != 0) {
		errno = err;
		return (-1);
	}
	return (0);
}

/* Forget the region: unmap it, close its descriptor if still ours. */
static void
stats_drop_locked(void)
{
	if (stats_map == NULL)
		return;
	if (stats_fd_ours_locked())
		(void) close(stats_fd);
	(void) munmap(stats_map, stats_maplen);
	stats_map = NULL;
	stats_fd = -1;
}

/* Unlink our region (if the name is still ours) and forget it. */
static void
stats_remove_locked(void)
{
	struct stat named;

	if (stats_map == NULL)
		return;
	if (stat(stats_file, &named) == 0 && named.st_dev == stats_dev &&
	    named.st_ino == stats_ino)
		(void) unlink(stats_file);
	stats_drop_locked();
}

/* The length of path to show in a report; then "..." if it is longer. */
static int
stats_shown_len(const char *path)
{
	return ((int)KMEM_MIN(strlen(path), STATS_SHOWN_PATH));
}

static const char *
stats_shown_more(const char *path)
{
	return (strlen(path) > STATS_SHOWN_PATH ? "..." : "");
}

static void
stats_fail_locked(const char *what, const char *path, int err)
{
	kmem_report("statistics region %.*s%s: cannot %s (%s); statistics "
	    "are not published", stats_shown_len(path), path,
	    stats_shown_more(path), what, strerror(err));
	stats_broken = true;
	stats_remove_locked();
}

/*
 * An image larger than a reader accepts (KST_MAX_SIZE: about 200,000
 * caches) is not published at all: the reader would call it corrupt.
 */
static bool
stats_too_big_locked(const char *path)
{
	if (stats_used <= KST_MAX_SIZE)
		return (false);
	stats_fail_locked("hold more than 64 MiB of statistics", path, EFBIG);
	return (true);
}

/*
 * "libkmem.<pid>" or ".libkmem.<pid>.new" -> pid; anything else -> -1.
 */
static long
stats_name_pid(const char *name)
{
	const char *p = name + (name[0] == '.');
	long pid = 0;

	if (strncmp(p, KST_FILE_PREFIX, strlen(KST_FILE_PREFIX)) != 0)
		return (-1);
	p += strlen(KST_FILE_PREFIX);
	if (*p < '0' || *p > '9')
		return (-1);
	for (; *p >= '0' && *p <= '9'; p++)
		if ((pid = pid * 10 + (*p - '0')) > INT32_MAX)
			return (-1);
	if (strcmp(p, name[0] == '.' ? ".new" : "") != 0)
		return (-1);
	return (pid);
}

/*
 * Remove the regions that processes of this user left when they ended
 * without exit() (_exit, a signal, exec): the process is gone and nobody
 * holds the file's lock.  Otherwise the children of a program that forks
 * workers ending in _exit() would fill the directory.  readdir() may
 * allocate, so the directory is read with getdents64.
 */
static void
stats_sweep_locked(void)
{
	struct kst_dirent {
		uint64_t d_ino;
		int64_t d_off;
		unsigned short d_reclen;
		unsigned char d_type;
		char d_name[];
	};
	char buf[4096] __attribute__((aligned(8)));
	int dfd = open(stats_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long n;

	if (dfd < 0)
		return;
	while ((n = syscall(SYS_getdents64, dfd, buf, sizeof (buf))) > 0) {
		for (long off = 0; off < n;) {
			struct kst_dirent *d = (void *)(buf + off);
			long pid = stats_name_pid(d->d_name);
			struct stat st, now;
			int fd;

			off += d->d_reclen;
			if (pid <= 0 || pid == (long)getpid() ||
			    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
				continue;
			fd = openat(dfd, d->d_name, O_RDONLY | O_NOFOLLOW |
			    O_NONBLOCK | O_CLOEXEC);
			if (fd < 0)
				continue;
			if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
			    st.st_uid == geteuid() &&
			    flock(fd, LOCK_SH | LOCK_NB) == 0 &&
			    fstatat(dfd, d->d_name, &now,
			    AT_SYMLINK_NOFOLLOW) == 0 &&
			    now.st_ino == st.st_ino && now.st_dev == st.st_dev)
				(void) unlinkat(dfd, d->d_name, 0);
			(void) close(fd);
		}
	}
	(void) close(dfd);
}

/* Create, fill and rename into place this process's region. */
static void
stats_create_locked(void)
{
	const char *what;
	size_t len;
	void *map;
	int fd, err;

	/*
	 * The first region of this process image dates it: a region made
	 * again (the program closed its descriptor, or kmem_stats went off
	 * and on) keeps the date, as its counters go on, so that kmemstat
	 * takes rates across it rather than counting from zero as for a
	 * new image (exec, a forked child: another pid).
	 */
	if (stats_created == 0 || stats_pid != getpid())
		stats_created = stats_realtime_ns();
	stats_pid = getpid();
	stats_start_ticks = stats_proc_start();
	stats_npublish = 0;
	stats_seq = 0;
	if (stats_build() != 0)
		return;                 /* no memory now; next tick */
	(void) snprintf(stats_file, sizeof (stats_file), "%s/" KST_FILE_PREFIX
	    "%d", stats_dir, (int)stats_pid);
	(void) snprintf(stats_tmp, sizeof (stats_tmp), "%s/." KST_FILE_PREFIX
	    "%d.new", stats_dir, (int)stats_pid);
	stats_sweep_locked();
	(void) unlink(stats_tmp);       /* left by an image that exec'd */
	if (stats_too_big_locked(stats_file))
		return;
	fd = open(stats_tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd < 0) {
		stats_fail_locked("create it", stats_tmp, errno);
		return;
	}
	len = stats_region_len(stats_used);
	map = MAP_FAILED;
	if (fchmod(fd, 0600) != 0)
		what = "set its mode";
	else if (flock(fd, LOCK_EX | LOCK_NB) != 0)
		what = "lock it";
	else if (stats_size_locked(fd, len) != 0)
		what = "size it";
	else if ((map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0)) == MAP_FAILED)
		what = "map it";
	else
		what = NULL;
	if (what == NULL) {
		struct stat st;

		memcpy(map, stats_img, stats_used);
		if (fstat(fd, &st) != 0) {
			what = "stat it";
		} else {
			stats_dev = st.st_dev;
			stats_ino = st.st_ino;
			if (rename(stats_tmp, stats_file) != 0)
				what = "rename it";
		}
	}
	if (what != NULL) {
		err = errno;
		if (map != MAP_FAILED)
			(void) munmap(map, len);
		(void) close(fd);
		(void) unlink(stats_tmp);
		stats_fail_locked(what, stats_tmp, err);
		return;
	}
	stats_fd = fd;
	stats_map = map;
	stats_maplen = len;
	stats_npublish = 1;
	stats_last = kmem_now_ns();
}

/*
 * Build an image and copy it into the region under the sequence lock:
 * 0, or -1 when nothing was published (no memory for the image, or the
 * region could not grow).
 */
static int
stats_publish_locked(void)
{
	struct kst_header *h;
	size_t from = offsetof(struct kst_header, size);
	size_t to = offsetof(struct kst_header, reap_request);

	if (stats_build() != 0)
		return (-1);            /* no memory now; next tick */
	if (stats_too_big_locked(stats_file))
		return (-1);
	if (stats_used > stats_maplen) {
		size_t len = stats_region_len(stats_used);
		void *map;

		if (stats_size_locked(stats_fd, len) != 0) {
			stats_fail_locked("extend it", stats_file, errno);
			return (-1);
		}
		map = mremap(stats_map, stats_maplen, len, MREMAP_MAYMOVE);
		if (map == MAP_FAILED) {
			stats_fail_locked("remap it", stats_file, errno);
			return (-1);
		}
		stats_map = map;
		stats_maplen = len;
	}
	h = stats_map;
	atomic_store_explicit(&h->seq, stats_seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	memcpy((char *)h + from, stats_img + from, to - from);
	memcpy((char *)h + KST_HEADER_SIZE, stats_img + KST_HEADER_SIZE,
	    stats_used - KST_HEADER_SIZE);
	atomic_thread_fence(memory_order_release);
	stats_seq += 2;
	atomic_store_explicit(&h->seq, stats_seq, memory_order_release);
	stats_npublish++;
	stats_last = kmem_now_ns();
	return (0);
}

/*
 * One pass of the publisher: create or remove the region as kmem_stats
 * says, serve the requests, publish when it is time (or forced).
 */
static void
stats_pass(bool force)
{
	uint64_t reap_req, pub_req;
	int64_t due;

	pthread_mutex_lock(&stats_lock);
	if (!stats_usable || stats_exiting || stats_broken)
		goto out;
	if (tunable(KT_STATS) == 0) {
		stats_remove_locked();
		goto out;
	}
	if (stats_map != NULL && !stats_fd_ours_locked())
		stats_drop_locked();    /* the program closed it: anew */
	if (stats_map == NULL) {
		stats_create_locked();
		goto out;
	}
	reap_req = atomic_load(&stats_map->reap_request);
	if (reap_req != atomic_load(&stats_map->reap_done)) {
		pthread_mutex_unlock(&stats_lock);
		reap_all();
		pthread_mutex_lock(&stats_lock);
		if (stats_map == NULL || stats_exiting)
			goto out;
		force = true;
	}
	pub_req = atomic_load(&stats_map->publish_request);
	if (pub_req != atomic_load(&stats_map->publish_done))
		force = true;
	due = stats_last + tunable(KT_STATS_INTERVAL) * NS_PER_SEC -
	    STATS_SLACK_NS;
	if ((force || kmem_now_ns() >= due) && stats_publish_locked() != 0)
		goto out;
	/*
	 * Acknowledged after publishing: the reader sees the result.  A
	 * publish that failed answers nothing (the region still holds the
	 * numbers of the last one); the next tick tries again.
	 */
	if (stats_map != NULL) {
		atomic_store(&stats_map->reap_done, reap_req);
		atomic_store(&stats_map->publish_done, pub_req);
	}
out:
	pthread_mutex_unlock(&stats_lock);
}

static void
stats_tick(void *arg)
{
	uint64_t chain = (uint64_t)(uintptr_t)arg;

	pthread_mutex_lock(&stats_lock);
	if (chain != stats_chain || stats_exiting) {
		pthread_mutex_unlock(&stats_lock);
		return;                 /* a parent's chain, in a child */
	}
	pthread_mutex_unlock(&stats_lock);
	stats_pass(false);
	pthread_mutex_lock(&stats_lock);
	if (chain == stats_chain && !stats_exiting)
		(void) taskq_dispatch_delay(stats_tq, stats_tick, arg,
		    TQ_SLEEP, kmem_now_ns() + STATS_TICK_NS);
	pthread_mutex_unlock(&stats_lock);
}

/*
 * Queue chain's tick at 'when' from a thread that is not a worker of the
 * kmem taskq (a worker takes its own entry: stats_tick), where that can
 * fail for want of a task entry: the chain is then lost, and reap.c's
 * retry queues it again (stats_retry) rather than let it end for good.
 */
static void
stats_arm(uint64_t chain, int64_t when)
{
	if (taskq_dispatch_delay(stats_tq, stats_tick,
	    (void *)(uintptr_t)chain, TQ_SLEEP, when) != 0)
		return;
	pthread_mutex_lock(&stats_lock);
	if (chain == stats_chain)
		stats_lost = true;
	pthread_mutex_unlock(&stats_lock);
	reap_retry(REAP_RETRY_STATS);
}

void
stats_retry(void)
{
	uint64_t chain;
	bool lost;

	pthread_mutex_lock(&stats_lock);
	lost = stats_lost && !stats_exiting;
	stats_lost = false;
	chain = stats_chain;
	pthread_mutex_unlock(&stats_lock);
	if (lost)
		stats_arm(chain, kmem_now_ns());
}

void
stats_start(taskq_t *tq)
{
	const char *dir = secure_getenv("KMEM_STATS_DIR");
	const char *why = NULL;
	bool given = dir != NULL;
	struct stat sb;
	uint64_t chain;

	if (!given)
		dir = KST_DEFAULT_DIR;
	if (dir[0] != '/')
		why = "not an absolute path";
	else if (strlen(dir) > STATS_DIR_MAX)
		why = "too long";
	else if (stat(dir, &sb) != 0)
		why = strerror(errno);
	else if (!S_ISDIR(sb.st_mode))
		why = "not a directory";
	else if (access(dir, W_OK | X_OK) != 0)
		why = "not writable";
	if (why != NULL) {
		/* Quiet for the default: a system without /dev/shm. */
		if (given)
			kmem_report("KMEM_STATS_DIR='%.*s%s' rejected: %s; "
			    "statistics are not published",
			    stats_shown_len(dir), dir, stats_shown_more(dir),
			    why);
		return;
	}
	pthread_mutex_lock(&stats_lock);
	(void) snprintf(stats_dir, sizeof (stats_dir), "%s", dir);
	stats_usable = true;
	stats_tq = tq;
	chain = stats_chain;
	pthread_mutex_unlock(&stats_lock);
	/* A process gone within a tenth of a second creates no file. */
	stats_arm(chain, kmem_now_ns() + STATS_FIRST_NS);
}

/* Normal exit: the region goes with the process. */
static void __attribute__((destructor))
stats_exit(void)
{
	pthread_mutex_lock(&stats_lock);
	stats_exiting = true;
	if (stats_map != NULL && stats_pid == getpid())
		stats_remove_locked();
	pthread_mutex_unlock(&stats_lock);
}

/* ------------------------------------------------------------ fork */

void
stats_fork_prepare(void)
{
	pthread_mutex_lock(&stats_lock);
}

void
stats_fork_parent(void)
{
	pthread_mutex_unlock(&stats_lock);
}

void
stats_fork_child(void)
{
	uint64_t chain;
	bool start = stats_usable && !stats_exiting && stats_tq != NULL;

	stats_drop_locked();
	stats_file[0] = '\0';
	chain = ++stats_chain;
	stats_lost = false;     /* the parent's chain: ends */
	pthread_mutex_unlock(&stats_lock);
	if (start)
		stats_arm(chain, kmem_now_ns() + STATS_TICK_NS);
}

/* ------------------------------------------------------------ tests */

void
stats_publish_now(void)
{
	stats_pass(true);
}

const char *
stats_path(void)
{
	return (stats_map != NULL ? stats_file : "");
}
