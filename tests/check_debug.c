/*
 * check_debug.c - KMEM_DEBUG (debug.c): every error a debug cache
 * catches, each committed by a child process whose stderr and exit status
 * are checked: the report names the cache, the address (as %p prints it)
 * and the kind of error, and the child died of SIGABRT (or went on with
 * noabort).  With debugging off the same programs must not crash.  Also
 * emergency objects (kmem_free's size checked on them too, listed when
 * leaked), the patterns, the audit records, leaks, KMC_NODEBUG, the
 * kmem_debug tunable's words, and debug caches under concurrent use.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "libkmem/kmem.h"
#include "cache.h"
#include "slab.h"
#include "testutil.h"
#include "vmem.h"

#define ERRLEN  65536

struct run {
	int status;
	char err[ERRLEN];
	char addr[64];          /* the child's "ADDR <p>" */
	char cache[64];         /* the child's "CACHE <name>", if any */
	char tid[32];           /* the child's "TID <n>" */
};

static struct run R;

/* Tell the parent what the report must name. */
static void
say_addr(const void *p)
{
	dprintf(STDERR_FILENO, "ADDR %p\n", p);
}

static void
say_cache(const char *name)
{
	dprintf(STDERR_FILENO, "CACHE %s\n", name);
}

static void
say_tid(void)
{
	dprintf(STDERR_FILENO, "TID %ld\n", (long)syscall(SYS_gettid));
}

static void
grab(const char *key, char *out, size_t len)
{
	const char *p = strstr(R.err, key);

	out[0] = '\0';
	if (p == NULL)
		return;
	p += strlen(key);
	size_t n = strcspn(p, "\n");
	if (n >= len)
		n = len - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

/* The end of the child's stderr, short enough for a Check message. */
static const char *
err_tail(void)
{
	size_t n = strlen(R.err);

	return (n > 3000 ? R.err + n - 3000 : R.err);
}

/*
 * Run fn in a child with kmem_debug set to 'debug' (NULL: left off);
 * its stderr and wait status go to R.
 */
static void
run_child(const char *debug, void (*fn)(void))
{
	int fds[2];
	size_t got = 0;
	pid_t pid;

	memset(&R, 0, sizeof (R));
	ck_assert_int_eq(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rlimit nocore = { 0, 0 };

		close(fds[0]);
		(void) setrlimit(RLIMIT_CORE, &nocore);
		if (dup2(fds[1], STDERR_FILENO) < 0)
			_exit(98);
		/* NULL: off, whatever KMEM_DEBUG the runner was given. */
		if (kmem_tunable_set_str("kmem_debug",
		    debug != NULL ? debug : "none") != 0)
			_exit(99);
		fn();
		_exit(0);
	}
	close(fds[1]);
	for (;;) {
		ssize_t n = read(fds[0], R.err + got, sizeof (R.err) - 1 - got);

		if (n > 0)
			got += (size_t)n;
		else if (n == 0 || errno != EINTR || got == sizeof (R.err) - 1)
			break;
	}
	R.err[got] = '\0';
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &R.status, 0), pid);
	grab("ADDR ", R.addr, sizeof (R.addr));
	grab("CACHE ", R.cache, sizeof (R.cache));
	grab("TID ", R.tid, sizeof (R.tid));
}

/* The report says "KMEM_DEBUG: <kind>: cache <cache>, buffer <addr>". */
static void
assert_report(const char *kind, const char *cache)
{
	char want[256];

	ck_assert_msg(R.addr[0] != '\0', "child said no address:\n%s", err_tail());
	snprintf(want, sizeof (want), "KMEM_DEBUG: %s: cache %s, buffer %s",
	    kind, cache, R.addr);
	ck_assert_msg(strstr(R.err, want) != NULL, "no \"%s\" (status %#x) "
	    "in:\n%s", want, (unsigned)R.status, err_tail());
}

static void
assert_aborted(void)
{
	ck_assert_msg(WIFSIGNALED(R.status) && WTERMSIG(R.status) == SIGABRT,
	    "status %#x, not SIGABRT:\n%s", (unsigned)R.status, err_tail());
	ck_assert(strstr(R.err, "KMEM_DEBUG: aborting") != NULL);
}

static void
assert_exited(void)
{
	ck_assert_msg(WIFEXITED(R.status) && WEXITSTATUS(R.status) == 0,
	    "status %#x, not a clean exit:\n%s", (unsigned)R.status, err_tail());
}

static kmem_cache_t *
mkcache_bare(const char *name, size_t size, int cflags)
{
	kmem_cache_t *cp = kmem_cache_create(name, size, 0, NULL, NULL, NULL,
	    NULL, NULL, cflags);

	if (cp == NULL)
		_exit(97);
	return (cp);
}

/*
 * A cache whose next objects come from a slab that stays: one object of
 * it (the anchor) is kept allocated, so that the slab is never reaped
 * (memory pressure frees empty slabs at once on a loaded machine), and it
 * is not an emergency object (when growth is slow, as on a loaded
 * machine, a cache without debugging hands those out; they are unmapped
 * when freed).
 */
static kmem_cache_t *
mkcache(const char *name, size_t size, int cflags)
{
	kmem_cache_t *cp = mkcache_bare(name, size, cflags);
	struct kmem_cache_stats st;

	for (;;) {
		void *anchor = kmem_cache_alloc(cp, KM_SLEEP);

		if (kmem_cache_stats(cp, &st) != 0)
			_exit(94);
		if (st.obj_emergency == 0)
			return (cp);
		kmem_cache_free(cp, anchor);
		usleep(10000);
	}
}

/* ------------------------------------------------ the error programs */

static void
prog_double_free(void)
{
	kmem_cache_t *cp = mkcache("dbg_double", 48, 0);
	void *p = kmem_cache_alloc(cp, KM_SLEEP);

	say_addr(p);
	say_tid();
	kmem_cache_free(cp, p);
	kmem_cache_free(cp, p);
}

static void
prog_double_free_nodebug(void)
{
	kmem_cache_t *cp = mkcache("dbg_nodebug", 48, KMC_NODEBUG);
	void *p = kmem_cache_alloc(cp, KM_SLEEP);

	say_addr(p);
	kmem_cache_free(cp, p);
	kmem_cache_free(cp, p);
}

static void
prog_write_after_free(void)
{
	kmem_cache_t *cp = mkcache("dbg_waf", 64, 0);
	char *p = kmem_cache_alloc(cp, KM_SLEEP);

	say_addr(p);
	kmem_cache_free(cp, p);
	p[13] = 'x';                            /* after free */
	p = kmem_cache_alloc(cp, KM_SLEEP);     /* the same buffer again */
	kmem_cache_free(cp, p);
}

static void
prog_redzone(void)
{
	kmem_cache_t *cp = mkcache("dbg_redzone", 40, 0);
	char *p = kmem_cache_alloc(cp, KM_SLEEP);

	say_addr(p);
	p[40] = 'x';                            /* one byte past the end */
	kmem_cache_free(cp, p);
}

static void
prog_redzone_odd(void)
{
	kmem_cache_t *cp = mkcache("dbg_redzone_odd", 13, 0);
	char *p = kmem_cache_alloc(cp, KM_SLEEP);

	say_addr(p);
	p[13] = 'x';                /* inside the 8-byte rounding */
	kmem_cache_free(cp, p);
}

/* A stray write into the guard word, past its first byte. */
static void
prog_redzone_guard(void)
{
	kmem_cache_t *cp = mkcache("dbg_redzone_guard", 40, 0);
	char *p = kmem_cache_alloc(cp, KM_SLEEP);

	say_addr(p);
	p[43] = 'x';                            /* the guard's 4th byte */
	kmem_cache_free(cp, p);
}

static void
prog_redzone_while_free(void)
{
	kmem_cache_t *cp = mkcache("dbg_redzone_free", 64, 0);
	char *p = kmem_cache_alloc(cp, KM_SLEEP);

	say_addr(p);
	kmem_cache_free(cp, p);
	p[64] = 'x';                            /* its guard, after free */
	p = kmem_cache_alloc(cp, KM_SLEEP);     /* the same buffer again */
	kmem_cache_free(cp, p);
}

/*
 * An overrun of 16 bytes past a 64-byte buffer: its guard and then its
 * state word (the debug tail's second word).  It was said to be a free
 * of a buffer never allocated.
 */
static void
prog_redzone_state(void)
{
	kmem_cache_t *cp = mkcache("dbg_redzone_state", 64, 0);
	char *p = kmem_cache_alloc(cp, KM_SLEEP);

	say_addr(p);
	memset(p, 'x', 64 + 16);
	kmem_cache_free(cp, p);
}

/* The same after free: it went unreported. */
static void
prog_redzone_state_free(void)
{
	kmem_cache_t *cp = mkcache("dbg_redzone_state_free", 64, 0);
	char *p = kmem_cache_alloc(cp, KM_SLEEP);

	say_addr(p);
	kmem_cache_free(cp, p);
	memset(p, 'x', 64 + 16);                /* after free */
	p = kmem_cache_alloc(cp, KM_SLEEP);     /* the same buffer again */
	kmem_cache_free(cp, p);
}

static void
prog_wrong_cache(void)
{
	kmem_cache_t *a = mkcache("dbg_wc_a", 64, 0);
	kmem_cache_t *b = mkcache("dbg_wc_b", 64, 0);
	void *p = kmem_cache_alloc(a, KM_SLEEP);

	say_addr(p);
	kmem_cache_free(b, p);
	kmem_cache_free(a, p);
}

static void
prog_unowned(void)
{
	static uint64_t not_ours[8];
	kmem_cache_t *cp = mkcache("dbg_unowned", 64, 0);

	say_addr(not_ours);
	kmem_cache_free(cp, not_ours);
}

/*
 * An address in one of the cache's slabs that starts no object: the
 * slab's tail, past its last object.
 */
static void
prog_slab_tail(void)
{
	kmem_cache_t *cp = mkcache("dbg_tail", 1000, 0);
	char *p = kmem_cache_alloc(cp, KM_SLEEP);
	struct kmem_slab *s = vmem_owner(p);
	char *tail;

	if (s == NULL || s->kind != KMEM_OWNER_SLAB)
		_exit(93);
	tail = s->base + cp->sl.objs_bytes;
	if (tail >= slab_span(s) + cp->sl.slab_size)
		_exit(92);              /* no tail to free */
	say_addr(tail);
	kmem_cache_free(cp, tail);
	kmem_cache_free(cp, p);
}

static void
prog_inside(void)
{
	kmem_cache_t *cp = mkcache("dbg_inside", 64, 0);
	char *p = kmem_cache_alloc(cp, KM_SLEEP);

	say_addr(p + 8);
	kmem_cache_free(cp, p + 8);
	kmem_cache_free(cp, p);
}

/* The name of the kmem_alloc class that serves size. */
static void
say_class(size_t size)
{
	struct kmem_class_stats st;
	int n = kmem_alloc_class_count();

	for (int i = 0; i < n; i++) {
		if (kmem_alloc_class_stats(i, &st) == 0 && st.size >= size) {
			say_cache(st.name);
			return;
		}
	}
}

static void
prog_wrong_size_class(void)
{
	void *p = kmem_alloc(24, KM_SLEEP);

	say_addr(p);
	say_class(24);
	kmem_free(p, 100);              /* another class */
}

static void
prog_wrong_size_same(void)
{
	void *p = kmem_alloc(24, KM_SLEEP);

	say_addr(p);
	say_class(24);
	kmem_free(p, 20);               /* the same class, not the size */
}

/*
 * A block freed, then freed again with another size: a double free, not a
 * kmem_free with the wrong size (its tail still holds the size it was
 * allocated with).  Another block of the class keeps the slab.
 */
static void
prog_double_free_class(void)
{
	void *anchor = kmem_alloc(24, KM_SLEEP);
	void *p = kmem_alloc(24, KM_SLEEP);

	(void) anchor;
	say_addr(p);
	say_class(24);
	kmem_free(p, 24);
	kmem_free(p, 100);              /* another class */
}

static void
prog_double_free_same(void)
{
	void *anchor = kmem_alloc(24, KM_SLEEP);
	void *p = kmem_alloc(24, KM_SLEEP);

	(void) anchor;
	say_addr(p);
	say_class(24);
	kmem_free(p, 24);
	kmem_free(p, 20);               /* the same class, not the size */
}

/*
 * An emergency object of a class (no slab can be had, KM_NOSLEEP): it is
 * outside the arena, and its size is checked all the same.
 */
static char *
emergency_block(size_t size)
{
	void *first = kmem_alloc(size, KM_SLEEP);      /* the class exists */
	char *p;

	if (first == NULL)
		_exit(93);
	vmem_inject_failures(-1);
	do {
		p = kmem_alloc(size, KM_NOSLEEP);
	} while (p != NULL && vmem_contains(p));
	vmem_inject_failures(0);
	if (p == NULL)
		_exit(92);
	return (p);
}

static void
prog_wrong_size_emergency(void)
{
	char *p = emergency_block(24);

	say_addr(p);
	say_class(24);
	kmem_free(p, 20);               /* the same class, not the size */
}

static void
prog_wrong_size_emergency_class(void)
{
	char *p = emergency_block(24);

	say_addr(p);
	say_class(24);
	kmem_free(p, 100);              /* another class */
}

/* A size above the largest class: a block of its own. */
static size_t
large_size(void)
{
	struct kmem_class_stats st;
	int n = kmem_alloc_class_count();

	if (n <= 0 || kmem_alloc_class_stats(n - 1, &st) != 0)
		_exit(90);
	return (st.size * 2);
}

/*
 * A large block freed with a class's size, then with another large size:
 * each a kmem_free with the wrong size (it was said to be a free of an
 * address inside a large block, to the class's cache); the block is left
 * alone, and its right free then frees it quietly.
 */
static void
prog_wrong_size_large(void)
{
	size_t size = large_size();
	void *p = kmem_alloc(size, KM_SLEEP);

	say_addr(p);
	kmem_free(p, 100);
	kmem_free(p, size + 4096);
	dprintf(STDERR_FILENO, "RIGHT FREE\n");
	kmem_free(p, size);
}

/*
 * A large block freed twice: a double free (it was reported as a block of
 * another size, or as an address inside a large block), by kmem_free with
 * its size, with a class's size, and by vmem_free; a pointer into one is
 * a pointer inside a buffer.  (The freed block's span is kept for reuse,
 * a spare, for seconds: the second free finds it.)
 */
static void
prog_double_free_large(void)
{
	size_t size = large_size();
	void *p = kmem_alloc(size, KM_SLEEP);

	say_addr(p);
	kmem_free(p, size);
	kmem_free(p, size);
}

static void
prog_double_free_large_class(void)
{
	size_t size = large_size();
	void *p = kmem_alloc(size, KM_SLEEP);

	say_addr(p);
	kmem_free(p, size);
	kmem_free(p, 100);              /* a class's size */
}

static void
prog_double_free_vmem(void)
{
	size_t size = large_size();
	void *p = vmem_alloc(size, KM_SLEEP);

	say_addr(p);
	vmem_free(p, size);
	vmem_free(p, size);
}

static void
prog_inside_large(void)
{
	size_t size = large_size();
	char *p = kmem_alloc(size, KM_SLEEP);

	say_addr(p + 16);
	kmem_free(p + 16, size);
	kmem_free(p, size);
}

static void
prog_kmem_alloc_overrun(void)
{
	char *p = kmem_alloc(20, KM_SLEEP);

	say_addr(p);
	say_class(20);
	p[20] = 'x';                    /* within the class, past the size */
	kmem_free(p, 20);
}

static void
prog_leak_destroy(void)
{
	kmem_cache_t *cp = mkcache_bare("dbg_leak", 100, 0);
	void *p = kmem_cache_alloc(cp, KM_SLEEP);
	void *q = kmem_cache_alloc(cp, KM_SLEEP);

	kmem_cache_free(cp, q);
	say_addr(p);
	kmem_cache_destroy(cp);
}

/*
 * A stray write past a 64-byte buffer's redzone, over its audit records
 * (the debug tail: guard, state, free-list link and size words, then the
 * records), and the buffer leaks: the listing must not read the frames of
 * a record whose depth is garbage (it ran off the object and crashed).
 */
static void
prog_audit_overwritten(void)
{
	kmem_cache_t *cp = mkcache_bare("dbg_audit_ow", 64, 0);
	char *p = kmem_cache_alloc(cp, KM_SLEEP);

	say_addr(p);
	memset(p + 64 + 24, 0x7f, 24);
	kmem_cache_destroy(cp);
	_exit(0);                       /* not listed again at exit */
}

/* A leaked emergency object (no slab could be had) is listed too. */
static void
prog_leak_emergency(void)
{
	kmem_cache_t *cp = mkcache_bare("dbg_leak_em", 100, 0);
	void *p;

	vmem_inject_failures(-1);
	p = kmem_cache_alloc(cp, KM_NOSLEEP);
	vmem_inject_failures(0);
	if (p == NULL || vmem_contains(p))
		_exit(91);
	say_addr(p);
	kmem_cache_destroy(cp);
}

static void
prog_leak_exit(void)
{
	kmem_cache_t *cp = mkcache_bare("dbg_leak_exit", 100, 0);
	void *p = kmem_cache_alloc(cp, KM_SLEEP);

	say_addr(p);
	exit(0);                        /* destructors run */
}

/* ------------------------------------------------ the tests */

START_TEST(test_double_free)
{
	run_child("guards,audit", prog_double_free);
	assert_report("double free", "dbg_double");
	assert_aborted();
	/* The audit record: who allocated and who freed it first. */
	ck_assert(R.tid[0] != '\0');
	{
		char want[96];

		snprintf(want, sizeof (want), "last allocated by thread %s:",
		    R.tid);
		ck_assert_msg(strstr(R.err, want) != NULL, "%s", err_tail());
		snprintf(want, sizeof (want), "last freed by thread %s:",
		    R.tid);
		ck_assert_msg(strstr(R.err, want) != NULL, "%s", err_tail());
	}

	run_child("guards,noabort", prog_double_free);
	assert_report("double free", "dbg_double");
	assert_exited();
	ck_assert(strstr(R.err, "continuing (noabort)") != NULL);

	run_child(NULL, prog_double_free);
	assert_exited();
	ck_assert(strstr(R.err, "KMEM_DEBUG") == NULL);
}
END_TEST

START_TEST(test_nodebug_cache)
{
	run_child("all", prog_double_free_nodebug);
	assert_exited();
	ck_assert_msg(strstr(R.err, "KMEM_DEBUG") == NULL, "%s", err_tail());
}
END_TEST

START_TEST(test_write_after_free)
{
	run_child("guards", prog_write_after_free);
	assert_report("write after free", "dbg_waf");
	ck_assert(strstr(R.err, "offset 8 holds") != NULL);
	assert_aborted();

	run_child("guards,noabort", prog_write_after_free);
	assert_report("write after free", "dbg_waf");
	assert_exited();

	run_child(NULL, prog_write_after_free);
	assert_exited();
}
END_TEST

START_TEST(test_redzone)
{
	run_child("guards", prog_redzone);
	assert_report("redzone overwritten", "dbg_redzone");
	ck_assert(strstr(R.err, "byte 40 of a 40-byte buffer") != NULL);
	assert_aborted();

	run_child("guards", prog_redzone_odd);
	assert_report("redzone overwritten", "dbg_redzone_odd");
	ck_assert(strstr(R.err, "byte 13 of a 13-byte buffer") != NULL);
	assert_aborted();

	/* The byte written, not the guard word's first (byte 40). */
	run_child("guards", prog_redzone_guard);
	assert_report("redzone overwritten", "dbg_redzone_guard");
	ck_assert_msg(strstr(R.err, "byte 43 of a 40-byte buffer") != NULL,
	    "%s", err_tail());
	assert_aborted();

	run_child("guards", prog_redzone_while_free);
	assert_report("redzone overwritten", "dbg_redzone_free");
	ck_assert(strstr(R.err, "(byte 64) was written while the buffer was "
	    "free") != NULL);
	assert_aborted();

	run_child("guards,noabort", prog_redzone);
	assert_report("redzone overwritten", "dbg_redzone");
	assert_exited();

	/* Over the guard into the state word, while allocated or free. */
	run_child("guards,audit", prog_redzone_state);
	assert_report("redzone overwritten", "dbg_redzone_state");
	ck_assert_msg(strstr(R.err, "its state word (byte 72) holds "
	    "0x7878787878787878") != NULL, "%s", err_tail());
	ck_assert(strstr(R.err, "never allocated") == NULL);
	assert_aborted();

	run_child("guards,noabort", prog_redzone_state_free);
	assert_report("write after free", "dbg_redzone_state_free");
	ck_assert_msg(strstr(R.err, "its state word (byte 72)") != NULL,
	    "%s", err_tail());
	assert_exited();

	run_child(NULL, prog_redzone);
	assert_exited();
}
END_TEST

START_TEST(test_wrong_cache)
{
	run_child("guards", prog_wrong_cache);
	assert_report("free to the wrong cache", "dbg_wc_b");
	ck_assert(strstr(R.err, "a buffer of cache dbg_wc_a") != NULL);
	assert_aborted();

	run_child("audit,noabort", prog_wrong_cache);
	assert_report("free to the wrong cache", "dbg_wc_b");
	assert_exited();
	/* Not freed by the wrong cache: the right free is no double free. */
	ck_assert(strstr(R.err, "double free") == NULL);

	/* Without debugging the free is reported and ignored. */
	run_child(NULL, prog_wrong_cache);
	assert_exited();
	ck_assert_msg(strstr(R.err, "is an object of cache dbg_wc_a") != NULL,
	    "%s", err_tail());
}
END_TEST

START_TEST(test_unowned)
{
	run_child("guards", prog_unowned);
	assert_report("free of an address no cache owns", "dbg_unowned");
	assert_aborted();

	run_child(NULL, prog_unowned);
	assert_exited();
	ck_assert(strstr(R.err, "no cache owns it") != NULL);
}
END_TEST

/*
 * The slab's tail is reported as what it is, in and out of debug mode
 * (it was said to be "inside a large kmem_alloc block", and, without
 * debugging, to be owned by no cache).
 */
START_TEST(test_slab_tail)
{
	run_child("guards", prog_slab_tail);
	assert_report("free of an address no cache owns", "dbg_tail");
	ck_assert_msg(strstr(R.err, "in a slab of cache dbg_tail, outside "
	    "its buffers") != NULL, "%s", err_tail());
	assert_aborted();

	run_child(NULL, prog_slab_tail);
	assert_exited();
	ck_assert_msg(strstr(R.err, "is in a slab of cache dbg_tail, outside "
	    "its objects") != NULL, "%s", err_tail());
}
END_TEST

START_TEST(test_inside)
{
	run_child("guards", prog_inside);
	assert_report("free of a pointer inside a buffer", "dbg_inside");
	ck_assert(strstr(R.err, "8 bytes into buffer") != NULL);
	assert_aborted();

	run_child(NULL, prog_inside);
	assert_exited();
	ck_assert(strstr(R.err, "8 bytes into object") != NULL);
}
END_TEST

START_TEST(test_wrong_size)
{
	run_child("guards", prog_wrong_size_class);
	ck_assert_msg(R.cache[0] != '\0', "%s", err_tail());
	assert_report("kmem_free with the wrong size", R.cache);
	ck_assert(strstr(R.err, "allocated with size 24, freed with size "
	    "100") != NULL);
	assert_aborted();

	run_child("audit", prog_wrong_size_same);
	assert_report("kmem_free with the wrong size", R.cache);
	ck_assert(strstr(R.err, "freed with size 20") != NULL);
	assert_aborted();

	run_child("guards,noabort", prog_wrong_size_same);
	assert_report("kmem_free with the wrong size", R.cache);
	assert_exited();

	run_child(NULL, prog_wrong_size_class);
	assert_exited();
	run_child(NULL, prog_wrong_size_same);
	assert_exited();
}
END_TEST

/* A double free is one whatever size the second kmem_free gives. */
START_TEST(test_double_free_wrong_size)
{
	run_child("guards,audit", prog_double_free_class);
	ck_assert_msg(R.cache[0] != '\0', "%s", err_tail());
	assert_report("double free", R.cache);
	ck_assert_msg(strstr(R.err, "kmem_free was given it: it was freed "
	    "already") != NULL, "%s", err_tail());
	ck_assert_msg(strstr(R.err, "wrong size") == NULL, "%s", err_tail());
	ck_assert(strstr(R.err, "last freed by thread") != NULL);
	assert_aborted();

	run_child("guards,noabort", prog_double_free_same);
	assert_report("double free", R.cache);
	ck_assert_msg(strstr(R.err, "wrong size") == NULL, "%s", err_tail());
	assert_exited();
}
END_TEST

/* kmem_free's size is checked for an emergency object of a class too. */
START_TEST(test_wrong_size_emergency)
{
	run_child("guards", prog_wrong_size_emergency);
	ck_assert_msg(R.cache[0] != '\0', "%s", err_tail());
	assert_report("kmem_free with the wrong size", R.cache);
	ck_assert(strstr(R.err, "allocated with size 24, freed with size "
	    "20") != NULL);
	assert_aborted();

	run_child("guards,noabort", prog_wrong_size_emergency_class);
	assert_report("kmem_free with the wrong size", R.cache);
	ck_assert(strstr(R.err, "allocated with size 24, freed with size "
	    "100") != NULL);
	assert_exited();
}
END_TEST

/* A block above the classes, freed with another size. */
START_TEST(test_wrong_size_large)
{
	char want[128];
	const char *right;

	run_child("guards", prog_wrong_size_large);
	assert_report("kmem_free with the wrong size", "(none)");
	ck_assert(strstr(R.err, "freed with size 100\n") != NULL);
	assert_aborted();

	run_child("guards,noabort", prog_wrong_size_large);
	assert_report("kmem_free with the wrong size", "(none)");
	ck_assert(strstr(R.err, "freed with size 100\n") != NULL);
	snprintf(want, sizeof (want), "freed with size %zu\n",
	    (size_t)strtoull(strstr(R.err, "allocated with size ") + 20, NULL,
	    10) + 4096);
	ck_assert_msg(strstr(R.err, want) != NULL, "no \"%s\" in:\n%s", want,
	    err_tail());
	ck_assert_ptr_null(strstr(R.err, "inside a large"));
	right = strstr(R.err, "RIGHT FREE");
	ck_assert_ptr_nonnull(right);
	ck_assert_msg(strstr(right, "libkmem") == NULL, "%s", err_tail());
	assert_exited();

	run_child(NULL, prog_wrong_size_large);
	assert_exited();
}
END_TEST

/* A block above the classes freed twice, or from inside. */
START_TEST(test_double_free_large)
{
	run_child("guards,audit", prog_double_free_large);
	assert_report("double free", "(none)");
	ck_assert_msg(strstr(R.err, "kmem_free was given a block above the "
	    "classes that was freed already") != NULL, "%s", err_tail());
	assert_aborted();

	run_child("guards,noabort", prog_double_free_large_class);
	assert_report("double free", "(none)");
	assert_exited();

	run_child("guards,noabort", prog_double_free_vmem);
	assert_report("double free", "(none)");
	assert_exited();

	run_child("guards", prog_inside_large);
	assert_report("free of a pointer inside a buffer", "(none)");
	ck_assert_msg(strstr(R.err, "16 bytes into block") != NULL, "%s",
	    err_tail());
	assert_aborted();

	/* Without debugging: reported in one line and ignored. */
	run_child(NULL, prog_double_free_large);
	assert_exited();
	ck_assert(strstr(R.err, "KMEM_DEBUG") == NULL);
}
END_TEST

START_TEST(test_kmem_alloc_overrun)
{
	run_child("guards", prog_kmem_alloc_overrun);
	assert_report("redzone overwritten", R.cache);
	ck_assert(strstr(R.err, "byte 20 of a 20-byte buffer") != NULL);
	assert_aborted();

	run_child(NULL, prog_kmem_alloc_overrun);
	assert_exited();
}
END_TEST

START_TEST(test_leaks)
{
	char want[128];

	run_child("leaks", prog_leak_destroy);
	assert_report("leak", "dbg_leak");
	/* The form the man page gives: "...: buffer <p>: <details>". */
	snprintf(want, sizeof (want), "buffer %s: still allocated", R.addr);
	ck_assert_msg(strstr(R.err, want) != NULL, "%s", err_tail());
	ck_assert(strstr(R.err, "allocated by thread") != NULL);
	ck_assert(strstr(R.err, "dbg_leak: 1 buffer(s) leaked") != NULL);
	assert_exited();

	run_child("leaks", prog_leak_exit);
	assert_report("leak", "dbg_leak_exit");
	assert_exited();

	run_child("leaks", prog_leak_emergency);
	assert_report("leak", "dbg_leak_em");
	ck_assert(strstr(R.err, "allocated by thread") != NULL);
	ck_assert(strstr(R.err, "dbg_leak_em: 1 buffer(s) leaked") != NULL);
	assert_exited();

	/* A record overwritten is said to be, not followed. */
	run_child("leaks", prog_audit_overwritten);
	assert_exited();
	assert_report("leak", "dbg_audit_ow");
	ck_assert_msg(strstr(R.err, "allocated: (record overwritten: depth "
	    "2139062143)") != NULL, "%s", err_tail());

	/* Without leaks, destroy says how many but lists none. */
	run_child("guards", prog_leak_destroy);
	snprintf(want, sizeof (want), "buffer %s: still allocated", R.addr);
	ck_assert(strstr(R.err, want) == NULL);
	ck_assert(strstr(R.err, "1 object(s) still allocated") != NULL);
	assert_exited();
}
END_TEST

/* ------------------------------------------------ in this process */

static int ctor_calls, dtor_calls;

static int
ctor(void *buf, void *priv, int kmflags)
{
	(void) priv; (void) kmflags;
	memset(buf, 0x5a, 24);
	ctor_calls++;
	return (0);
}

static void
dtor(void *buf, void *priv)
{
	(void) priv;
	ck_assert_int_eq(((unsigned char *)buf)[0], 0x5a);
	dtor_calls++;
}

/* The patterns: 0xbaddcafe in new buffers, 0xdeadbeef in freed ones. */
START_TEST(test_patterns)
{
	struct kmem_cache_stats st;
	kmem_cache_t *cp, *plain, *withctor;
	uint64_t *p, *anchor;

	ck_assert_int_eq(kmem_tunable_set_str("kmem_debug", "guards"), 0);
	cp = mkcache_bare("dbg_pat", 64, 0);
	plain = mkcache_bare("dbg_plain", 64, KMC_NODEBUG);
	/* An anchor keeps p's slab (memory pressure frees empty ones). */
	anchor = kmem_cache_alloc(cp, KM_SLEEP);
	p = kmem_cache_alloc(cp, KM_SLEEP);
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(p[i], 0xbaddcafebaddcafeULL);
	memset(p, 1, 64);
	kmem_cache_free(cp, p);
	/* Still mapped (its slab is not reaped): the freed pattern. */
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(p[i], 0xdeadbeefdeadbeefULL);

	/* Debug caches have no magazines; the others keep theirs. */
	ck_assert_int_eq(kmem_cache_stats(cp, &st), 0);
	ck_assert_uint_eq(st.mag_size, 0);
	ck_assert_int_eq(kmem_cache_stats(plain, &st), 0);
	ck_assert_uint_gt(st.mag_size, 0);

	/* Constructors still run on constructed-state objects. */
	withctor = kmem_cache_create("dbg_ctor", 24, 0, ctor, dtor, NULL,
	    NULL, NULL, 0);
	ck_assert_ptr_nonnull(withctor);
	for (int i = 0; i < 10; i++) {
		unsigned char *b = kmem_cache_alloc(withctor, KM_SLEEP);

		ck_assert_int_eq(b[23], 0x5a);
		kmem_cache_free(withctor, b);
	}
	ck_assert_int_eq(ctor_calls, 10);
	ck_assert_int_eq(dtor_calls, 10);
	kmem_cache_destroy(withctor);

	/* kmem_alloc's power-of-two classes stay naturally aligned. */
	for (size_t sz = 32; sz <= 4096; sz *= 2) {
		void *b[3];

		for (int i = 0; i < 3; i++) {
			b[i] = kmem_alloc(sz, KM_SLEEP);
			ck_assert_msg((uintptr_t)b[i] % sz == 0, "%zu: %p", sz,
			    b[i]);
		}
		for (int i = 0; i < 3; i++)
			kmem_free(b[i], sz);
	}
	kmem_cache_free(cp, anchor);
	kmem_cache_destroy(cp);
	kmem_cache_destroy(plain);
	ck_assert_int_eq(kmem_tunable_set("kmem_debug", 0), 0);
}
END_TEST

/* kmem_debug's words, as KMEM_DEBUG and kmem_tunable_set_str take them. */
START_TEST(test_tunable_words)
{
	static const struct {
		const char *text;
		int rc, err;
		int64_t value, frames;
	} cases[] = {
		{ "guards,audit=32,leaks,noabort", 0, 0, 15, 32 },
		{ "all", 0, 0, 7, -1 },
		{ "none", 0, 0, 0, -1 },
		{ "guards", 0, 0, KMEM_DEBUG_GUARDS, -1 },
		{ "audit=1", 0, 0, KMEM_DEBUG_AUDIT, 1 },
		{ "leaks,noabort", 0, 0, 12, -1 },
		{ "5", 0, 0, 5, -1 },
		{ "bogus", -1, EINVAL, 0, -1 },
		{ "guards,", -1, EINVAL, 0, -1 },
		{ "guards=3", -1, EINVAL, 0, -1 },
		{ "audit=", -1, EINVAL, 0, -1 },
		{ "audit=65", -1, ERANGE, 0, -1 },
		{ "audit=0", -1, ERANGE, 0, -1 },
		{ "16", -1, ERANGE, 0, -1 },
		{ "", -1, EINVAL, 0, -1 },
	};
	for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
		int64_t v, before;

		ck_assert_int_eq(kmem_tunable_set("kmem_debug", 0), 0);
		ck_assert_int_eq(kmem_tunable_set("kmem_debug_audit_frames",
		    16), 0);
		ck_assert_int_eq(kmem_tunable_get("kmem_debug", &before), 0);
		errno = 0;
		ck_assert_msg(kmem_tunable_set_str("kmem_debug",
		    cases[i].text) == cases[i].rc, "%s", cases[i].text);
		ck_assert_int_eq(kmem_tunable_get("kmem_debug", &v), 0);
		if (cases[i].rc != 0) {
			ck_assert_msg(errno == cases[i].err, "%s: errno %d",
			    cases[i].text, errno);
			ck_assert_int_eq(v, before);
			continue;
		}
		ck_assert_msg(v == cases[i].value, "%s: %lld", cases[i].text,
		    (long long)v);
		ck_assert_int_eq(kmem_tunable_get("kmem_debug_audit_frames",
		    &v), 0);
		ck_assert_int_eq(v, cases[i].frames < 0 ? 16 :
		    cases[i].frames);
	}
	ck_assert_int_eq(kmem_tunable_set("kmem_debug", 0), 0);
}
END_TEST

/* ------------------------------------------------ concurrency */

#define NTHREADS        4
#define ROUNDS          3000
#define BATCH           16

static kmem_cache_t *shared_cp;

static void *
churn(void *arg)
{
	uint64_t seed = (uintptr_t)arg + 1;
	void *objs[BATCH];

	for (int r = 0; r < ROUNDS; r++) {
		unsigned int n = (unsigned int)(test_rand(&seed) % BATCH) + 1;

		for (unsigned int i = 0; i < n; i++) {
			objs[i] = kmem_cache_alloc(shared_cp, KM_SLEEP);
			memset(objs[i], (int)i, 72);
		}
		for (unsigned int i = 0; i < n; i++)
			kmem_cache_free(shared_cp, objs[i]);
	}
	return (NULL);
}

static void
prog_concurrent(void)
{
	pthread_t t[NTHREADS];
	struct kmem_cache_stats st;

	shared_cp = mkcache_bare("dbg_mt", 72, 0);
	for (uintptr_t i = 0; i < NTHREADS; i++)
		if (pthread_create(&t[i], NULL, churn, (void *)i) != 0)
			_exit(96);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	if (kmem_cache_stats(shared_cp, &st) != 0 || st.alloc != st.free ||
	    st.alloc < (uint64_t)NTHREADS * ROUNDS)
		_exit(95);
	kmem_cache_destroy(shared_cp);
}

/* Threads hammering one debug cache: no false report, counts agree. */
START_TEST(test_concurrent)
{
	run_child("all", prog_concurrent);
	assert_exited();
	ck_assert_msg(strstr(R.err, "KMEM_DEBUG") == NULL, "%s", err_tail());
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("debug");
	TCase *tc = tcase_create("errors");
	TCase *in = tcase_create("in-process");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_double_free);
	tcase_add_test(tc, test_nodebug_cache);
	tcase_add_test(tc, test_write_after_free);
	tcase_add_test(tc, test_redzone);
	tcase_add_test(tc, test_wrong_cache);
	tcase_add_test(tc, test_unowned);
	tcase_add_test(tc, test_inside);
	tcase_add_test(tc, test_slab_tail);
	tcase_add_test(tc, test_wrong_size);
	tcase_add_test(tc, test_double_free_wrong_size);
	tcase_add_test(tc, test_wrong_size_emergency);
	tcase_add_test(tc, test_wrong_size_large);
	tcase_add_test(tc, test_double_free_large);
	tcase_add_test(tc, test_kmem_alloc_overrun);
	tcase_add_test(tc, test_leaks);
	tcase_add_test(tc, test_concurrent);
	suite_add_tcase(s, tc);
	tcase_set_timeout(in, 60);
	tcase_add_test(in, test_patterns);
	tcase_add_test(in, test_tunable_words);
	suite_add_tcase(s, in);
	return (test_run_suite(s));
}
