/*
 * check_statsregion.c - the statistics region: its layout (the offsets
 * man7/libkmem.7 documents), what this process publishes (its caches with
 * kmem_cache_stats's numbers, task queues, classes, tunables; mode 0600,
 * locked while live), growth with many caches, requests (reap, publish),
 * kmem_stats turned off and on, fork (the child's own region; exit
 * removes it, _exit leaves it stale), a bad KMEM_STATS_DIR; and the
 * reader (cmd/kmemstat/region.c) fed random bytes, every truncation of a
 * real region, bit flips and hand-made bad regions: it must answer with an
 * error, never crash or read outside its buffer (run under ASan too).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libkmem/kmem.h"
#include "region.h"
#include "stats.h"
#include "tunables.h"
#include "testutil.h"

static char stats_dir[64];

/* This process's region, read and parsed (fails the test if it cannot). */
static void
read_own(struct region *r)
{
	char err[256];
	const char *path = stats_path();
	int fd, rc;

	ck_assert_msg(path[0] != '\0', "no region");
	fd = open(path, O_RDONLY);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	rc = region_read(fd, r, err, sizeof (err));
	ck_assert_msg(rc == REGION_OK, "%s: %s", path, err);
	close(fd);
}

/*
 * The whole file of this process's region, as published: read until two
 * reads agree and the sequence number is even (the tick may publish
 * meanwhile).
 */
static unsigned char *
own_bytes(size_t *len)
{
	struct stat st;
	unsigned char *buf, *again;
	int fd = open(stats_path(), O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size);
	again = malloc((size_t)st.st_size);
	ck_assert(buf != NULL && again != NULL);
	for (int tries = 0;; tries++) {
		uint64_t seq;

		ck_assert_int_lt(tries, 1000);
		ck_assert_int_eq(pread(fd, buf, (size_t)st.st_size, 0),
		    st.st_size);
		ck_assert_int_eq(pread(fd, again, (size_t)st.st_size, 0),
		    st.st_size);
		memcpy(&seq, buf + offsetof(struct kst_header, seq),
		    sizeof (seq));
		if (seq % 2 == 0 && memcmp(buf, again, (size_t)st.st_size) == 0)
			break;
		usleep(1000);
	}
	free(again);
	close(fd);
	*len = (size_t)st.st_size;
	return (buf);
}

static const struct kst_cache *
find_cache(const struct region *r, const char *name)
{
	for (uint32_t i = 0; i < r->ncaches; i++)
		if (strcmp(r->caches[i].name, name) == 0)
			return (&r->caches[i]);
	return (NULL);
}

/* Whether someone holds a lock on path (a live publisher does). */
static bool
locked(const char *path)
{
	int fd = open(path, O_RDONLY);
	bool held;

	ck_assert_int_ge(fd, 0);
	held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
	close(fd);
	return (held);
}

/*
 * Parse len bytes from an exact-size copy (so that ASan sees any read
 * beyond them); if it says OK, the result must hold together.
 */
static int
parse_exact(const void *src, size_t len)
{
	struct region r;
	char err[256];
	void *buf = malloc(len ? len : 1);
	int rc;

	ck_assert_ptr_nonnull(buf);
	memcpy(buf, src, len);
	err[0] = '\0';
	rc = region_parse(buf, len, &r, err, sizeof (err));
	if (rc == REGION_OK) {
		ck_assert_uint_ge(len, r.hdr.size);
		for (uint32_t i = 0; i < r.ncaches; i++)
			ck_assert_ptr_nonnull(memchr(r.caches[i].name, 0,
			    KST_NAMELEN));
		for (uint32_t i = 0; i < r.ntunables; i++)
			ck_assert_ptr_nonnull(memchr(r.tunables[i].name, 0,
			    KST_TUNABLE_NAMELEN));
		region_free(&r);
	} else {
		ck_assert_msg(err[0] != '\0' && strchr(err, '\n') == NULL,
		    "status %d without a one-line reason", rc);
		ck_assert_ptr_null(r.caches);
	}
	free(buf);
	return (rc);
}

static kmem_cache_t *
mkcache(const char *name, size_t size)
{
	kmem_cache_t *cp = kmem_cache_create(name, size, 0, NULL, NULL, NULL,
	    NULL, NULL, 0);

	ck_assert_ptr_nonnull(cp);
	return (cp);
}

/* ---------------------------------------------------------------- layout */

START_TEST(test_layout)
{
	/* The offsets libkmem(7) documents. */
	ck_assert_uint_eq(offsetof(struct kst_header, magic), 0);
	ck_assert_uint_eq(offsetof(struct kst_header, version), 8);
	ck_assert_uint_eq(offsetof(struct kst_header, header_size), 12);
	ck_assert_uint_eq(offsetof(struct kst_header, seq), 16);
	ck_assert_uint_eq(offsetof(struct kst_header, size), 24);
	ck_assert_uint_eq(offsetof(struct kst_header, pid), 32);
	ck_assert_uint_eq(offsetof(struct kst_header, proc_start), 40);
	ck_assert_uint_eq(offsetof(struct kst_header, created), 48);
	ck_assert_uint_eq(offsetof(struct kst_header, published), 56);
	ck_assert_uint_eq(offsetof(struct kst_header, publishes), 64);
	ck_assert_uint_eq(offsetof(struct kst_header, interval), 72);
	ck_assert_uint_eq(offsetof(struct kst_header, ncpus), 76);
	ck_assert_uint_eq(offsetof(struct kst_header, comm), 80);
	ck_assert_uint_eq(offsetof(struct kst_header, arena_inuse), 112);
	ck_assert_uint_eq(offsetof(struct kst_header, arena_reserved), 120);
	ck_assert_uint_eq(offsetof(struct kst_header, sect), 128);
	ck_assert_uint_eq(sizeof (struct kst_section), 16);
	ck_assert_uint_eq(offsetof(struct kst_header, reap_request), 192);
	ck_assert_uint_eq(offsetof(struct kst_header, reap_done), 200);
	ck_assert_uint_eq(offsetof(struct kst_header, publish_request), 208);
	ck_assert_uint_eq(offsetof(struct kst_header, publish_done), 216);
	ck_assert_uint_eq(sizeof (struct kst_header), 256);
	ck_assert_uint_eq(sizeof (_Atomic uint64_t), 8);

	ck_assert_uint_eq(offsetof(struct kst_cache, id), 32);
	ck_assert_uint_eq(offsetof(struct kst_cache, obj_size), 40);
	ck_assert_uint_eq(offsetof(struct kst_cache, slab_total), 80);
	ck_assert_uint_eq(offsetof(struct kst_cache, obj_inuse), 128);
	ck_assert_uint_eq(offsetof(struct kst_cache, alloc), 168);
	ck_assert_uint_eq(offsetof(struct kst_cache, mem_inuse), 208);
	ck_assert_uint_eq(offsetof(struct kst_cache, mag_size), 232);
	ck_assert_uint_eq(offsetof(struct kst_cache, slab_grows), 288);
	ck_assert_uint_eq(offsetof(struct kst_cache, destroyed), 312);
	ck_assert_uint_eq(offsetof(struct kst_cache, mem_carved), 320);
	ck_assert_uint_eq(sizeof (struct kst_cache), 328);
	ck_assert_uint_eq(KST_CACHE_SIZE_MIN, 320);
	ck_assert_uint_eq(offsetof(struct kst_taskq, threads), 32);
	ck_assert_uint_eq(offsetof(struct kst_taskq, entries_allocated), 96);
	ck_assert_uint_eq(sizeof (struct kst_taskq), 104);
	ck_assert_uint_eq(offsetof(struct kst_class, size), 32);
	ck_assert_uint_eq(offsetof(struct kst_class, freeable), 88);
	ck_assert_uint_eq(offsetof(struct kst_class, pages_carved), 96);
	ck_assert_uint_eq(sizeof (struct kst_class), 104);
	ck_assert_uint_eq(KST_CLASS_SIZE_MIN, 96);
	ck_assert_uint_eq(offsetof(struct kst_tunable, word), 48);
	ck_assert_uint_eq(offsetof(struct kst_tunable, words), 64);
	ck_assert_uint_eq(offsetof(struct kst_tunable, value), 128);
	ck_assert_uint_eq(offsetof(struct kst_tunable, max), 152);
	ck_assert_uint_eq(sizeof (struct kst_tunable), 160);

	/* "KMEMSTAT" in memory on a little-endian machine. */
	uint64_t magic = KST_MAGIC;
	if (*(const unsigned char *)&(uint16_t){ 1 } == 1)
		ck_assert_int_eq(memcmp(&magic, "KMEMSTAT", 8), 0);
}
END_TEST

/* ---------------------------------------------------------------- publisher */

START_TEST(test_publish)
{
	kmem_cache_t *a = mkcache("region_a", 40);
	kmem_cache_t *b = mkcache("region_b", 1000);
	struct kmem_cache_stats sa, sb;
	const struct kst_cache *ra, *rb;
	struct region r;
	struct stat st;
	void *objs[300];
	bool have_tq = false, have_stats = false;

	for (int i = 0; i < 300; i++)
		objs[i] = kmem_cache_alloc(i % 2 ? a : b, KM_SLEEP);
	for (int i = 0; i < 100; i++)
		kmem_cache_free(i % 2 ? a : b, objs[i]);
	stats_publish_now();
	read_own(&r);
	ck_assert_int_eq(kmem_cache_stats(a, &sa), 0);
	ck_assert_int_eq(kmem_cache_stats(b, &sb), 0);

	ck_assert_int_eq(r.hdr.pid, getpid());
	ck_assert_str_eq(r.hdr.comm, "check_statsregion");
	ck_assert_uint_eq(r.hdr.version, KST_VERSION);
	ck_assert_uint_eq(r.hdr.interval, 1);
	ck_assert_uint_ge(r.hdr.publishes, 1);
	ck_assert_int_ge(r.hdr.published, r.hdr.created);
	ck_assert_uint_gt(r.hdr.arena_inuse, 0);
	ck_assert_ptr_nonnull(ra = find_cache(&r, "region_a"));
	ck_assert_ptr_nonnull(rb = find_cache(&r, "region_b"));
	ck_assert_uint_eq(ra->alloc, sa.alloc);
	ck_assert_uint_eq(ra->free, sa.free);
	ck_assert_uint_eq(ra->obj_inuse, 100);
	ck_assert_uint_eq(rb->obj_inuse, 100);
	ck_assert_uint_eq(ra->obj_size, 40);
	ck_assert_uint_eq(ra->mem_inuse, 100 * 40);
	ck_assert_uint_eq(rb->mem_inuse, 100 * 1000);
	ck_assert_uint_eq(ra->obj_cached, sa.obj_cached);
	ck_assert_uint_eq(rb->objs_per_slab, sb.objs_per_slab);
	ck_assert_uint_ne(ra->id, rb->id);
	for (uint32_t i = 0; i < r.ntaskqs; i++)
		have_tq |= strcmp(r.taskqs[i].name, "kmem_taskq") == 0;
	ck_assert(have_tq);
	ck_assert_uint_eq(r.ntunables, KT_COUNT);
	for (uint32_t i = 0; i < r.ntunables; i++) {
		if (strcmp(r.tunables[i].name, "kmem_stats") == 0) {
			ck_assert_int_eq(r.tunables[i].value, 1);
			have_stats = true;
		}
		if (strcmp(r.tunables[i].name, "kmem_percpu") == 0)
			ck_assert_str_eq(r.tunables[i].words, "rseq|lock");
	}
	ck_assert(have_stats);
	/* No kmem_alloc yet: no classes; then all of them. */
	ck_assert_uint_eq(r.nclasses, 0);
	region_free(&r);
	kmem_free(kmem_alloc(100, KM_SLEEP), 100);
	stats_publish_now();
	read_own(&r);
	ck_assert_int_eq(r.nclasses, kmem_alloc_class_count());
	region_free(&r);

	ck_assert_int_eq(stat(stats_path(), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_uint_eq(st.st_uid, geteuid());
	ck_assert(locked(stats_path()));
}
END_TEST

/* Many caches: the file grows; destroyed caches disappear. */
START_TEST(test_grow)
{
	enum { N = 400 };
	static kmem_cache_t *cps[N];
	struct region r;
	struct stat st0, st1;
	char name[32];

	mkcache("grow_first", 64);
	stats_publish_now();
	ck_assert_int_eq(stat(stats_path(), &st0), 0);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof (name), "grow_%d", i);
		cps[i] = mkcache(name, 32 + (size_t)i);
	}
	stats_publish_now();
	ck_assert_int_eq(stat(stats_path(), &st1), 0);
	ck_assert_int_gt(st1.st_size, st0.st_size);
	read_own(&r);
	ck_assert_uint_eq(r.ncaches, N + 1);
	ck_assert_ptr_nonnull(find_cache(&r, "grow_399"));
	region_free(&r);
	for (int i = 0; i < N; i++)
		kmem_cache_destroy(cps[i]);
	stats_publish_now();
	read_own(&r);
	ck_assert_uint_eq(r.ncaches, 1);
	ck_assert_ptr_null(find_cache(&r, "grow_0"));
	region_free(&r);
}
END_TEST

/*
 * A cache destroyed and created again (at the same address, as it often
 * is) has another id: kmemstat takes no rates against the old cache's
 * counters, as if the new one had them.
 */
START_TEST(test_id_not_reused)
{
	kmem_cache_t *cp = mkcache("region_again", 64);
	const struct kst_cache *c;
	struct region r;
	uint64_t id;

	for (int i = 0; i < 1000; i++)
		kmem_cache_free(cp, kmem_cache_alloc(cp, KM_SLEEP));
	stats_publish_now();
	read_own(&r);
	ck_assert_ptr_nonnull(c = find_cache(&r, "region_again"));
	id = c->id;
	region_free(&r);
	kmem_cache_destroy(cp);
	cp = mkcache("region_again", 64);
	kmem_cache_free(cp, kmem_cache_alloc(cp, KM_SLEEP));
	stats_publish_now();
	read_own(&r);
	ck_assert_ptr_nonnull(c = find_cache(&r, "region_again"));
	ck_assert_uint_eq(c->alloc, 1);
	ck_assert_uint_ne(c->id, id);
	region_free(&r);
	kmem_cache_destroy(cp);
}
END_TEST

/*
 * mem_inuse is obj_inuse times the object size rounded up to obj_align,
 * as libkmem(7) says, in a KMEM_DEBUG cache too (whose slabs also hold a
 * redzone and a debug record after each object).
 */
START_TEST(test_mem_inuse_debug)
{
	kmem_cache_t *cp;
	const struct kst_cache *c;
	struct region r;
	void *objs[10];

	ck_assert_int_eq(tunable_set_id(KT_DEBUG, KMEM_DEBUG_GUARDS |
	    KMEM_DEBUG_AUDIT), 0);
	cp = mkcache("region_debug", 100);
	ck_assert_int_eq(tunable_set_id(KT_DEBUG, 0), 0);
	for (int i = 0; i < 10; i++)
		objs[i] = kmem_cache_alloc(cp, KM_SLEEP);
	stats_publish_now();
	read_own(&r);
	ck_assert_ptr_nonnull(c = find_cache(&r, "region_debug"));
	ck_assert_uint_eq(c->obj_inuse, 10);
	ck_assert_uint_eq(c->obj_align, 8);
	ck_assert_uint_eq(c->mem_inuse, 10 * 104);
	region_free(&r);
	for (int i = 0; i < 10; i++)
		kmem_cache_free(cp, objs[i]);
	kmem_cache_destroy(cp);
}
END_TEST

/* Requests through the region: reap, publish. */
START_TEST(test_requests)
{
	kmem_cache_t *cp = mkcache("req", 128);
	struct kmem_cache_stats st;
	struct kst_header *h;
	struct region r;
	void *objs[2000];
	int fd;

	for (int i = 0; i < 2000; i++)
		objs[i] = kmem_cache_alloc(cp, KM_SLEEP);
	for (int i = 0; i < 2000; i++)
		kmem_cache_free(cp, objs[i]);
	ck_assert_int_eq(kmem_cache_stats(cp, &st), 0);
	ck_assert_uint_gt(st.obj_cached, 0);
	stats_publish_now();
	fd = open(stats_path(), O_RDWR);
	ck_assert_int_ge(fd, 0);
	h = mmap(NULL, KST_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0);
	ck_assert_ptr_ne(h, MAP_FAILED);
	/*
	 * Served by the tick alone, as for a reader, with aging off: a
	 * stats_publish_now() here served the request at the same time as
	 * a tick that had read it too, and acknowledged its own reap while
	 * the tick's flush still held the objects it had taken out of the
	 * magazines (slab_total 9 under TSan on a loaded machine); aging
	 * flushes magazines as well.
	 */
	ck_assert_int_eq(tunable_set_id(KT_REAP_INTERVAL, 0), 0);
	atomic_fetch_add(&h->publish_request, 1);
	atomic_fetch_add(&h->reap_request, 1);
	for (int i = 0; i < 1000 && (atomic_load(&h->reap_done) != 1 ||
	    atomic_load(&h->publish_done) != 1); i++)
		usleep(10000);
	ck_assert_uint_eq(atomic_load(&h->reap_done), 1);
	ck_assert_uint_eq(atomic_load(&h->publish_done), 1);
	ck_assert_int_eq(kmem_cache_stats(cp, &st), 0);
	ck_assert_uint_eq(st.obj_cached, 0);
	ck_assert_uint_eq(st.slab_total, 0);
	read_own(&r);
	ck_assert_uint_eq(find_cache(&r, "req")->slab_total, 0);
	region_free(&r);

	/* The tick serves a request by itself, within a second or so. */
	atomic_fetch_add(&h->publish_request, 1);
	for (int i = 0; i < 1000 && atomic_load(&h->publish_done) != 2; i++)
		usleep(10000);
	ck_assert_uint_eq(atomic_load(&h->publish_done), 2);
	munmap(h, KST_HEADER_SIZE);
	close(fd);
}
END_TEST

#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)   /* they need their mremap */
/*
 * mremap that fails while mremap_fail is set: the publisher's image
 * cannot grow (no memory).  The library calls mremap through the PLT, so
 * this definition replaces the C library's.
 */
static _Atomic bool mremap_fail;

void *
mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *new_addr = NULL;

	if (flags & MREMAP_FIXED) {
		va_list ap;

		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	if (atomic_load(&mremap_fail)) {
		errno = ENOMEM;
		return (MAP_FAILED);
	}
	return ((void *)syscall(SYS_mremap, old, old_len, new_len, flags,
	    new_addr));
}

/*
 * A publish request that finds no memory for the image is not answered
 * until a publish succeeds: the reader (kmemstat -w, -r) must not take
 * the numbers of the last publish for current ones.
 */
START_TEST(test_request_nomem)
{
	enum { N = 400 };
	static kmem_cache_t *cps[N];
	struct kst_header *h;
	struct region r;
	char name[32];
	int fd;

	mkcache("nomem_first", 64);
	stats_publish_now();
	fd = open(stats_path(), O_RDWR);
	ck_assert_int_ge(fd, 0);
	h = mmap(NULL, KST_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0);
	ck_assert_ptr_ne(h, MAP_FAILED);
	/* Enough caches that the image must grow. */
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof (name), "nomem_%d", i);
		cps[i] = mkcache(name, 32 + (size_t)i);
	}
	atomic_store(&mremap_fail, true);
	atomic_fetch_add(&h->publish_request, 1);
	atomic_fetch_add(&h->reap_request, 1);
	stats_publish_now();
	ck_assert_uint_eq(atomic_load(&h->publish_done), 0);
	ck_assert_uint_eq(atomic_load(&h->reap_done), 0);
	atomic_store(&mremap_fail, false);
	stats_publish_now();
	ck_assert_uint_eq(atomic_load(&h->publish_done), 1);
	ck_assert_uint_eq(atomic_load(&h->reap_done), 1);
	read_own(&r);
	ck_assert_uint_eq(r.ncaches, N + 1);
	region_free(&r);
	munmap(h, KST_HEADER_SIZE);
	close(fd);
	for (int i = 0; i < N; i++)
		kmem_cache_destroy(cps[i]);
}
END_TEST
#endif

/* kmem_stats=0 at run time removes the region; 1 brings it back. */
START_TEST(test_off_on)
{
	char path[4096];

	mkcache("offon", 64);
	stats_publish_now();
	snprintf(path, sizeof (path), "%s", stats_path());
	ck_assert_int_eq(access(path, F_OK), 0);
	ck_assert_int_eq(tunable_set_id(KT_STATS, 0), 0);
	stats_publish_now();
	ck_assert_int_ne(access(path, F_OK), 0);
	ck_assert_str_eq(stats_path(), "");
	ck_assert_int_eq(tunable_set_id(KT_STATS, 1), 0);
	stats_publish_now();
	ck_assert_str_eq(stats_path(), path);
	ck_assert(locked(path));
}
END_TEST

/*
 * A region made again in the same process image (kmem_stats off and on)
 * keeps the image's creation date: kmemstat tells a new image (exec) by
 * it, and would take the counters that went on for new ones.
 */
START_TEST(test_off_on_same_image)
{
	struct region r;
	int64_t created;

	mkcache("sameimage", 64);
	stats_publish_now();
	read_own(&r);
	created = r.hdr.created;
	region_free(&r);
	usleep(2000);
	ck_assert_int_eq(tunable_set_id(KT_STATS, 0), 0);
	stats_publish_now();
	ck_assert_str_eq(stats_path(), "");
	ck_assert_int_eq(tunable_set_id(KT_STATS, 1), 0);
	stats_publish_now();
	stats_publish_now();
	read_own(&r);
	ck_assert_int_eq(r.hdr.pid, getpid());
	ck_assert_int_eq(r.hdr.created, created);
	region_free(&r);
}
END_TEST

/*
 * A program that closes every descriptor it does not know, and reuses the
 * number: the region is published anew, the program's file left alone.
 */
START_TEST(test_fd_closed)
{
	char old[4096], link[4096], fdpath[64];
	int fd = -1, devnull;
	struct stat st, now;

	mkcache("fdclosed", 64);
	stats_publish_now();
	snprintf(old, sizeof (old), "%s", stats_path());
	ck_assert_int_eq(stat(old, &st), 0);
	for (int i = 0; i < 1024 && fd < 0; i++) {
		ssize_t n;

		snprintf(fdpath, sizeof (fdpath), "/proc/self/fd/%d", i);
		n = readlink(fdpath, link, sizeof (link) - 1);
		if (n > 0) {
			link[n] = '\0';
			if (strcmp(link, old) == 0)
				fd = i;
		}
	}
	ck_assert_int_ge(fd, 0);
	devnull = open("/dev/null", O_RDONLY);
	ck_assert_int_ge(devnull, 0);
	/* Closes the region's descriptor (its mapping keeps the lock). */
	ck_assert_int_eq(dup2(devnull, fd), fd);
	close(devnull);
	stats_publish_now();
	ck_assert_str_eq(stats_path(), old);
	ck_assert(locked(old));
	ck_assert_int_eq(stat(old, &now), 0);
	ck_assert(now.st_ino != st.st_ino);             /* a new region */
	/* The program's descriptor is still its /dev/null. */
	snprintf(fdpath, sizeof (fdpath), "/proc/self/fd/%d", fd);
	ck_assert_int_gt(readlink(fdpath, link, sizeof (link) - 1), 0);
	ck_assert_int_eq(strncmp(link, "/dev/null", 9), 0);
}
END_TEST

/*
 * fork: the child publishes its own region; exit removes it, _exit leaves
 * it (unlocked), and the next region created sweeps it away.
 */
START_TEST(test_fork)
{
	char parent[4096], child[4096], left[4096] = "";
	pid_t pid;
	int status;

#if defined(KMEM_TSAN) || defined(KMEM_ASAN)
	/*
	 * TSan cannot start threads in the child of a threaded process, and
	 * ASan's allocator may be locked there (a parent thread held its
	 * lock at the fork; clang before 18 has no atfork handler for it):
	 * the child hangs when it restarts the kmem taskq or allocates.
	 * check_reap's test_fork_child_taskq skips for the same reason.
	 */
	return;
#endif
	mkcache("forked", 64);
	stats_publish_now();
	snprintf(parent, sizeof (parent), "%s", stats_path());
	for (int how = 0; how < 3; how++) {
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			struct region r;

			/* The parent's region is not the child's. */
			if (stats_path()[0] != '\0' || !locked(parent))
				_exit(10);
			stats_publish_now();
			read_own(&r);
			if (r.hdr.pid != getpid() || !find_cache(&r, "forked"))
				_exit(11);
			if (how == 1)
				_exit(0);       /* leaves it, unlocked */
			exit(0);                /* removes it */
		}
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "child status %d", status);
		snprintf(child, sizeof (child), "%s/libkmem.%d", stats_dir,
		    (int)pid);
		if (how == 1) {
			ck_assert_int_eq(access(child, F_OK), 0);
			ck_assert(!locked(child));
			snprintf(left, sizeof (left), "%s", child);
		} else {
			ck_assert_int_ne(access(child, F_OK), 0);
		}
	}
	/* The third child's region creation removed the second's. */
	ck_assert_int_ne(access(left, F_OK), 0);
	ck_assert_str_eq(stats_path(), parent);
	ck_assert(locked(parent));
	/* The parent's region still works. */
	stats_publish_now();
	struct region r;
	read_own(&r);
	ck_assert_int_eq(r.hdr.pid, getpid());
	region_free(&r);
}
END_TEST

/* Without KMEM_STATS_DIR: /dev/shm, where there is one. */
START_TEST(test_default_dir)
{
	struct stat st;
	char want[64];

	unsetenv("KMEM_STATS_DIR");
	mkcache("default_dir", 64);
	stats_publish_now();
	if (stat("/dev/shm", &st) != 0 || access("/dev/shm", W_OK) != 0) {
		ck_assert_str_eq(stats_path(), "");
		return;
	}
	snprintf(want, sizeof (want), "/dev/shm/libkmem.%d", (int)getpid());
	ck_assert_str_eq(stats_path(), want);
	ck_assert(locked(want));
}
END_TEST

static void
create_first(void *arg)
{
	*(kmem_cache_t **)arg = mkcache("baddir", 64);
}

START_TEST(test_bad_dir)
{
	char err[512];
	kmem_cache_t *cp;

	setenv("KMEM_STATS_DIR", "/nonexistent/kmem", 1);
	test_capture_stderr(create_first, &cp, err, sizeof (err));
	ck_assert_str_eq(err, "libkmem: KMEM_STATS_DIR='/nonexistent/kmem' "
	    "rejected: No such file or directory; statistics are not "
	    "published\n");
	stats_publish_now();
	ck_assert_str_eq(stats_path(), "");
	/* The process goes on. */
	kmem_cache_free(cp, kmem_cache_alloc(cp, KM_SLEEP));
}
END_TEST

/*
 * A long KMEM_STATS_DIR: the report still says why it was rejected (a
 * report is one line of at most 512 bytes; the path is cut short).
 */
START_TEST(test_bad_dir_long)
{
	char dir[700], err[512];
	kmem_cache_t *cp;
	size_t len;

	len = (size_t)snprintf(dir, sizeof (dir), "/nonexistent");
	for (int i = 0; i < 3; i++) {
		dir[len++] = '/';
		memset(dir + len, 'x', 200);
		len += 200;
	}
	dir[len] = '\0';
	setenv("KMEM_STATS_DIR", dir, 1);
	test_capture_stderr(create_first, &cp, err, sizeof (err));
	ck_assert_msg(strstr(err, "...' rejected: No such file or directory; "
	    "statistics are not published\n") != NULL, "%s", err);
	ck_assert_int_eq(strncmp(err, "libkmem: KMEM_STATS_DIR='/nonexistent/",
	    37), 0);
	stats_publish_now();
	ck_assert_str_eq(stats_path(), "");
	kmem_cache_free(cp, kmem_cache_alloc(cp, KM_SLEEP));
}
END_TEST

/* ---------------------------------------------------------------- reader */

START_TEST(test_fuzz_random)
{
	uint64_t seed = 0x1234567887654321ULL;
	unsigned char buf[4096];
	struct kst_header *h = (struct kst_header *)(void *)buf;

	for (int i = 0; i < 20000; i++) {
		size_t len = test_rand(&seed) % sizeof (buf);

		for (size_t j = 0; j < len; j++)
			buf[j] = (unsigned char)test_rand(&seed);
		if (i % 2 && len >= KST_HEADER_SIZE) {
			/* Past the magic and version checks, often. */
			h->magic = KST_MAGIC;
			h->version = KST_VERSION;
			if (i % 4 == 1)
				h->header_size = KST_HEADER_SIZE;
			if (i % 8 == 1) {
				atomic_store(&h->seq, 0);
				h->size = len - test_rand(&seed) % 64;
			}
		}
		(void) parse_exact(buf, len);
	}
}
END_TEST

START_TEST(test_fuzz_truncate)
{
	unsigned char *img;
	size_t len;
	struct region r;
	char err[256];

	mkcache("trunc_a", 24);
	mkcache("trunc_b", 2000);
	stats_publish_now();
	img = own_bytes(&len);
	ck_assert_int_eq(region_parse(img, len, &r, err, sizeof (err)), 0);
	ck_assert_uint_lt(r.hdr.size, len + 1);
	for (size_t n = 0; n <= len; n++) {
		int rc = parse_exact(img, n);

		if (n < r.hdr.size)
			ck_assert_msg(rc == REGION_TRUNCATED, "length %zu: %d",
			    n, rc);
		else
			ck_assert_int_eq(rc, REGION_OK);
	}
	region_free(&r);
	free(img);

	/* With kmem_alloc's classes: a longer region, every 7th length. */
	kmem_free(kmem_alloc(64, KM_SLEEP), 64);
	stats_publish_now();
	img = own_bytes(&len);
	for (size_t n = 0; n <= len; n += n < 512 ? 1 : 7)
		(void) parse_exact(img, n);
	free(img);
}
END_TEST

START_TEST(test_fuzz_flip)
{
	uint64_t seed = 42;
	unsigned char *img, *copy;
	size_t len;

	mkcache("flip", 100);
	stats_publish_now();
	img = own_bytes(&len);
	copy = malloc(len);
	ck_assert_ptr_nonnull(copy);
	/* Every byte, one random bit. */
	for (size_t i = 0; i < len; i++) {
		memcpy(copy, img, len);
		copy[i] ^= (unsigned char)(1u << (test_rand(&seed) % 8));
		(void) parse_exact(copy, len);
	}
	/* Several bytes at once, anywhere, to anything. */
	for (int i = 0; i < 5000; i++) {
		memcpy(copy, img, len);
		for (int k = 0; k < 1 + i % 8; k++)
			copy[test_rand(&seed) % len] =
			    (unsigned char)test_rand(&seed);
		(void) parse_exact(copy, len);
	}
	/* Header words set to extremes. */
	for (size_t off = 0; off + 4 <= KST_HEADER_SIZE; off += 4) {
		static const uint32_t vals[] = { 0, 1, 7, 255, 256, 0x7fffffff,
		    0x80000000u, 0xffffffffu };

		for (size_t v = 0; v < sizeof (vals) / sizeof (vals[0]); v++) {
			memcpy(copy, img, len);
			memcpy(copy + off, &vals[v], 4);
			(void) parse_exact(copy, len);
		}
	}
	free(copy);
	free(img);
}
END_TEST

/* A region built by hand: sections in any order, bigger records. */
static size_t
build(unsigned char *buf, size_t cap, uint32_t cache_size, uint32_t ncaches)
{
	struct kst_header *h = (struct kst_header *)(void *)buf;
	size_t off = KST_HEADER_SIZE;

	memset(buf, 0, cap);
	h->magic = KST_MAGIC;
	h->version = KST_VERSION;
	h->header_size = KST_HEADER_SIZE;
	h->pid = 1234;
	strcpy(h->comm, "hand");
	/* Tunables first, then caches; taskqs and classes empty. */
	h->sect[KST_SEC_TUNABLES] = (struct kst_section){ (uint32_t)off, 1,
	    sizeof (struct kst_tunable), 0 };
	strcpy((char *)buf + off, "kmem_x");
	off += sizeof (struct kst_tunable);
	h->sect[KST_SEC_CACHES] = (struct kst_section){ (uint32_t)off,
	    ncaches, cache_size, 0 };
	for (uint32_t i = 0; i < ncaches; i++) {
		struct kst_cache c = { .obj_size = 100 + i,
		    .mem_carved = 4096 };

		snprintf(c.name, sizeof (c.name), "hand_%u", i);
		memcpy(buf + off, &c, cache_size < sizeof (c) ? cache_size :
		    sizeof (c));
		off += cache_size;
	}
	h->sect[KST_SEC_TASKQS] = (struct kst_section){ (uint32_t)off, 0,
	    sizeof (struct kst_taskq), 0 };
	h->sect[KST_SEC_CLASSES] = (struct kst_section){ (uint32_t)off, 0,
	    sizeof (struct kst_class), 0 };
	h->size = off;
	ck_assert_uint_le(off, cap);
	return (off);
}

START_TEST(test_handmade)
{
	static unsigned char buf[8192];
	struct kst_header *h = (struct kst_header *)(void *)buf;
	struct region r;
	char err[256];
	size_t len;

	/* Records larger than this version's: fields it knows are read. */
	len = build(buf, sizeof (buf), sizeof (struct kst_cache) + 24, 3);
	ck_assert_int_eq(region_parse(buf, len, &r, err, sizeof (err)), 0);
	ck_assert_uint_eq(r.ncaches, 3);
	ck_assert_str_eq(r.caches[2].name, "hand_2");
	ck_assert_uint_eq(r.caches[2].obj_size, 102);
	ck_assert_uint_eq(r.caches[2].mem_carved, 4096);
	ck_assert_str_eq(r.tunables[0].name, "kmem_x");
	region_free(&r);

	/* Records as version 1 first had them: the newer fields read 0. */
	len = build(buf, sizeof (buf), KST_CACHE_SIZE_MIN, 3);
	ck_assert_int_eq(region_parse(buf, len, &r, err, sizeof (err)), 0);
	ck_assert_uint_eq(r.ncaches, 3);
	ck_assert_str_eq(r.caches[2].name, "hand_2");
	ck_assert_uint_eq(r.caches[2].obj_size, 102);
	ck_assert_uint_eq(r.caches[2].mem_carved, 0);
	region_free(&r);

	/* Smaller records than that: corrupt. */
	len = build(buf, sizeof (buf), KST_CACHE_SIZE_MIN - 8, 3);
	ck_assert_int_eq(region_parse(buf, len, &r, err, sizeof (err)),
	    REGION_CORRUPT);
	/* Overlapping sections. */
	len = build(buf, sizeof (buf), sizeof (struct kst_cache), 3);
	h->sect[KST_SEC_TASKQS].offset = h->sect[KST_SEC_CACHES].offset + 8;
	h->sect[KST_SEC_TASKQS].count = 1;
	ck_assert_int_eq(region_parse(buf, len, &r, err, sizeof (err)),
	    REGION_CORRUPT);
	ck_assert_ptr_nonnull(strstr(err, "overlap"));
	/* Overlapping sections with an empty one between them. */
	len = build(buf, sizeof (buf), sizeof (struct kst_cache), 3);
	h->sect[KST_SEC_TASKQS].offset = h->sect[KST_SEC_CACHES].offset + 8;
	h->sect[KST_SEC_CLASSES].offset = h->sect[KST_SEC_CACHES].offset + 16;
	h->sect[KST_SEC_CLASSES].count = 1;
	ck_assert_int_eq(region_parse(buf, len, &r, err, sizeof (err)),
	    REGION_CORRUPT);
	ck_assert_str_eq(err, "corrupt: sections caches and classes overlap");
	/* A count that overflows 32 bits of arithmetic. */
	len = build(buf, sizeof (buf), sizeof (struct kst_cache), 3);
	h->sect[KST_SEC_CACHES].count = 0xffffffffu;
	ck_assert_int_eq(region_parse(buf, len, &r, err, sizeof (err)),
	    REGION_CORRUPT);
	/* Odd sequence number: being written. */
	len = build(buf, sizeof (buf), sizeof (struct kst_cache), 3);
	atomic_store(&h->seq, 3);
	ck_assert_int_eq(region_parse(buf, len, &r, err, sizeof (err)),
	    REGION_BUSY);
	/* Unterminated command name. */
	len = build(buf, sizeof (buf), sizeof (struct kst_cache), 3);
	memset(h->comm, 'x', sizeof (h->comm));
	ck_assert_int_eq(region_parse(buf, len, &r, err, sizeof (err)),
	    REGION_CORRUPT);
	/* Another version, and not a region at all. */
	len = build(buf, sizeof (buf), sizeof (struct kst_cache), 3);
	h->version = 2;
	ck_assert_int_eq(region_parse(buf, len, &r, err, sizeof (err)),
	    REGION_VERSION);
	ck_assert_str_eq(err, "region version 2; this reader knows version 1 "
	    "only");
	h->magic = 0;
	ck_assert_int_eq(region_parse(buf, len, &r, err, sizeof (err)),
	    REGION_MAGIC);
	/* A larger header is fine. */
	len = build(buf, sizeof (buf), sizeof (struct kst_cache), 0);
	h->header_size = KST_HEADER_SIZE + 64;
	for (int i = 0; i < KST_NSECTIONS; i++)
		h->sect[i].offset += 64;
	memmove(buf + KST_HEADER_SIZE + 64, buf + KST_HEADER_SIZE,
	    len - KST_HEADER_SIZE);
	h->size = len + 64;
	ck_assert_int_eq(region_parse(buf, len + 64, &r, err, sizeof (err)),
	    0);
	region_free(&r);
}
END_TEST

/* region_read on files: empty, short, never settling, not a file. */
START_TEST(test_read_files)
{
	static unsigned char buf[4096];
	char path[128], err[256];
	struct region r;
	size_t len;
	int fd;

	snprintf(path, sizeof (path), "%s/file", stats_dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(region_read(fd, &r, err, sizeof (err)),
	    REGION_TRUNCATED);
	len = build(buf, sizeof (buf), sizeof (struct kst_cache), 2);
	ck_assert_int_eq(pwrite(fd, buf, 100, 0), 100);
	ck_assert_int_eq(region_read(fd, &r, err, sizeof (err)),
	    REGION_TRUNCATED);
	ck_assert_int_eq(pwrite(fd, buf, len, 0), (ssize_t)len);
	ck_assert_int_eq(region_read(fd, &r, err, sizeof (err)), REGION_OK);
	ck_assert_uint_eq(r.ncaches, 2);
	region_free(&r);
	((struct kst_header *)(void *)buf)->seq = 5;
	ck_assert_int_eq(pwrite(fd, buf, len, 0), (ssize_t)len);
	ck_assert_int_eq(region_read(fd, &r, err, sizeof (err)), REGION_BUSY);
	close(fd);
	unlink(path);
	fd = open(stats_dir, O_RDONLY);
	ck_assert_int_eq(region_read(fd, &r, err, sizeof (err)),
	    REGION_CORRUPT);
	close(fd);
}
END_TEST

#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)
/*
 * fstat() of grow_fd says the file is a byte shorter than it is: to
 * region_read, the file grows between its fstat and its read, every time.
 */
static int grow_fd = -1;

int
fstat(int fd, struct stat *st)
{
	int rc = fstatat(fd, "", st, AT_EMPTY_PATH);

	if (rc == 0 && fd == grow_fd && st->st_size > 0)
		st->st_size--;
	return (rc);
}

/* A file that never stops growing: busy, and err says why. */
START_TEST(test_read_growing)
{
	static unsigned char buf[4096];
	char path[128], err[256] = "untouched";
	struct region r;
	size_t len;
	int fd;

	snprintf(path, sizeof (path), "%s/growing", stats_dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	len = build(buf, sizeof (buf), sizeof (struct kst_cache), 2);
	ck_assert_int_eq(pwrite(fd, buf, len, 0), (ssize_t)len);
	grow_fd = fd;
	ck_assert_int_eq(region_read(fd, &r, err, sizeof (err)), REGION_BUSY);
	grow_fd = -1;
	ck_assert_str_eq(err, "the file grew while being read, again and "
	    "again: not a region being published");
	close(fd);
	unlink(path);
}
END_TEST
#endif

int
main(void)
{
	Suite *s = suite_create("statsregion");
	TCase *pub = tcase_create("publisher");
	TCase *rd = tcase_create("reader");
	int rc;

	/* Regions of this test go to a directory of its own. */
	snprintf(stats_dir, sizeof (stats_dir), "%s",
	    "/tmp/check_statsregion.XXXXXX");
	if (mkdtemp(stats_dir) == NULL) {
		perror("mkdtemp");
		return (EXIT_FAILURE);
	}
	setenv("KMEM_STATS_DIR", stats_dir, 1);
	/* A process at rest keeps its numbers: no aging, no grow-ahead. */
	setenv("KMEM_REAP_INTERVAL", "0", 1);
	setenv("KMEM_CACHE_GROW_AHEAD", "0", 1);
	unsetenv("KMEM_STATS");
	unsetenv("KMEM_STATS_INTERVAL");

	tcase_add_test(pub, test_layout);
	tcase_add_test(pub, test_publish);
	tcase_add_test(pub, test_grow);
	tcase_add_test(pub, test_id_not_reused);
	tcase_add_test(pub, test_mem_inuse_debug);
	tcase_add_test(pub, test_requests);
#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)
	tcase_add_test(pub, test_request_nomem);
#endif
	tcase_add_test(pub, test_off_on);
	tcase_add_test(pub, test_off_on_same_image);
	tcase_add_test(pub, test_fd_closed);
	tcase_add_test(pub, test_fork);
	tcase_add_test(pub, test_bad_dir);
	tcase_add_test(pub, test_bad_dir_long);
	tcase_add_test(pub, test_default_dir);
	tcase_set_timeout(pub, 60);
	suite_add_tcase(s, pub);
	tcase_add_test(rd, test_fuzz_random);
	tcase_add_test(rd, test_fuzz_truncate);
	tcase_add_test(rd, test_fuzz_flip);
	tcase_add_test(rd, test_handmade);
	tcase_add_test(rd, test_read_files);
#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)
	tcase_add_test(rd, test_read_growing);
#endif
	tcase_set_timeout(rd, 120);
	suite_add_tcase(s, rd);
	rc = test_run_suite(s);
	/* Every test process removed its region at exit. */
	if (rmdir(stats_dir) != 0) {
		fprintf(stderr, "check_statsregion: %s: %s (regions left "
		    "behind)\n", stats_dir, strerror(errno));
		rc = EXIT_FAILURE;
	}
	return (rc);
}
