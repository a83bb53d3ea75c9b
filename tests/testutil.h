/*
 * testutil.h - helpers shared by the Check suites: CPU pinning, a fast
 * per-thread random generator, test durations from the environment,
 * byte patterns for buffers, capturing what a call writes to stderr, and
 * counting threads and where a process-directed signal goes.
 */
#ifndef KMEM_TESTUTIL_H
#define KMEM_TESTUTIL_H

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/*
 * Stress tests run for KMEM_TEST_SECONDS seconds (default 'dflt'); CI uses
 * shorter runs under sanitizers, and soak runs use longer ones.
 */
static inline double test_seconds(double dflt)
{
	const char *s = getenv("KMEM_TEST_SECONDS");
	double v = s != NULL ? atof(s) : 0;

	return (v > 0 ? v : dflt);
}

/*
 * Check's timeouts are there to catch hangs.  Under the sanitizers the
 * same work takes several times longer (TSan's shadow bookkeeping of the
 * 1 to 9 GiB maps in check_vmem's test_dedicated_maps_reused: 55 s of
 * its 60 on a loaded machine, 2 s without TSan), so every timeout is
 * scaled there, unless the user set CK_TIMEOUT_MULTIPLIER.  Check reads
 * it in tcase_create() and tcase_set_timeout(): before main().
 */
#if defined(KMEM_TSAN) || defined(KMEM_ASAN)
__attribute__((constructor)) static void test_sanitizer_timeouts(void)
{
#ifdef KMEM_TSAN
	(void) setenv("CK_TIMEOUT_MULTIPLIER", "4", 0);
#else
	(void) setenv("CK_TIMEOUT_MULTIPLIER", "2", 0);
#endif
}
#endif

static inline double test_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
}

/* Pin the calling thread to one CPU; returns 0 or an errno. */
static inline int test_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return (pthread_setaffinity_np(pthread_self(), sizeof (set), &set));
}

/*
 * The CPUs the process could run on when it started.  test_pin() narrows
 * the calling thread's mask, so a loop that pinned to its first CPU and
 * then asked sched_getaffinity() for the next would see only the first.
 */
static cpu_set_t test_start_cpus;

__attribute__((constructor)) static void test_start_cpus_read(void)
{
	if (sched_getaffinity(0, sizeof (test_start_cpus),
	    &test_start_cpus) != 0) {
		CPU_ZERO(&test_start_cpus);
		CPU_SET(0, &test_start_cpus);
	}
}

static inline int test_online_cpus(void)
{
	return (CPU_COUNT(&test_start_cpus));
}

/* The n-th CPU this process could run on when it started. */
static inline int test_nth_cpu(int n)
{
	int seen = 0;

	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, &test_start_cpus) && seen++ == n)
			return (c);
	}
	return (0);
}

/* Resident bytes of this process (/proc/self/statm). */
static inline size_t test_rss_bytes(void)
{
	char buf[128];
	long pages = 0, res = 0;
	int fd = open("/proc/self/statm", O_RDONLY);
	ssize_t n = read(fd, buf, sizeof (buf) - 1);

	close(fd);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_int_eq(sscanf(buf, "%ld %ld", &pages, &res), 2);
	return ((size_t)res * (size_t)sysconf(_SC_PAGESIZE));
}

/* The process's address space in bytes (VmSize). */
static inline size_t test_vm_size(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t kb = 0;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof (line), f) != NULL &&
	    sscanf(line, "VmSize: %zu kB", &kb) != 1)
		continue;
	(void) fclose(f);
	return (kb << 10);
}

/* Minor page faults of this process so far. */
static inline long test_minor_faults(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_minflt);
}

/* Minor page faults of the calling thread so far. */
static inline long test_thread_minor_faults(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return (ru.ru_minflt);
}

static inline size_t test_page_size(void)
{
	return ((size_t)sysconf(_SC_PAGESIZE));
}

/*
 * Run fn(arg) with stderr going to a pipe; what it wrote (at most len - 1
 * bytes, NUL-terminated) goes to buf.
 */
static inline void test_capture_stderr(void (*fn)(void *), void *arg,
    char *buf, size_t len)
{
	int fds[2], saved;
	ssize_t n;

	fflush(stderr);
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	saved = dup(STDERR_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fds[1], STDERR_FILENO), 0);
	fn(arg);
	fflush(stderr);
	ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
	close(saved);
	close(fds[1]);
	n = read(fds[0], buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fds[0]);
}

/* Threads of this process now (/proc/self/task). */
static inline int test_thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return (n);
}

static inline _Atomic int *test_sig_counter(void)
{
	static _Atomic int taken;

	return (&taken);
}

static inline void test_sig_count(int sig)
{
	(void) sig;
	atomic_fetch_add(test_sig_counter(), 1);
}

/*
 * Send sig to the whole process while the calling thread blocks it, and
 * return how often its handler ran meanwhile.  The kernel hands a
 * process-directed signal to a thread that does not block it, so any run
 * means that another thread (one of libkmem's) was open to it.  A signal
 * left pending is taken back; the disposition and mask are restored.
 */
static inline int test_signal_elsewhere(int sig)
{
	struct sigaction sa, old;
	sigset_t one, prev;
	struct timespec zero = { 0, 0 }, pause = { 0, 20 * 1000000L };
	int taken;

	memset(&sa, 0, sizeof (sa));
	sa.sa_handler = test_sig_count;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(sig, &sa, &old), 0);
	sigemptyset(&one);
	sigaddset(&one, sig);
	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &one, &prev), 0);
	atomic_store(test_sig_counter(), 0);
	ck_assert_int_eq(kill(getpid(), sig), 0);
	nanosleep(&pause, NULL);
	taken = atomic_load(test_sig_counter());
	if (taken == 0)
		ck_assert_int_eq(sigtimedwait(&one, NULL, &zero), sig);
	ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, &prev, NULL), 0);
	ck_assert_int_eq(sigaction(sig, &old, NULL), 0);
	return (taken);
}

/* Byte off of a buffer filled for object id (test_fill, test_verify). */
static inline uint8_t test_pat(size_t id, size_t off)
{
	return ((uint8_t)(id * 167 + off * 13 + (off >> 9) + 1));
}

static inline void test_fill(void *buf, size_t size, size_t id)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < size; i++)
		p[i] = test_pat(id, i);
}

/* The offset of the first byte that does not hold the pattern, or size. */
static inline size_t test_verify(const void *buf, size_t size, size_t id)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < size; i++) {
		if (p[i] != test_pat(id, i))
			return (i);
	}
	return (size);
}

static inline bool test_all_zero(const void *buf, size_t size)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < size; i++) {
		if (p[i] != 0)
			return (false);
	}
	return (true);
}

/* xorshift64*: per-thread, no shared state. */
static inline uint64_t test_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return (x * 0x2545F4914F6CDD1DULL);
}

/* Run a suite (forking each test) and return the process exit status. */
static inline int test_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}

#endif /* KMEM_TESTUTIL_H */
