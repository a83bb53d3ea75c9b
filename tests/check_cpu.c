/*
 * check_cpu.c - the current-CPU and topology module, and libnuma loaded
 * only where there is more than one node.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cpu.h"
#include "magazine.h"
#include "testutil.h"

START_TEST(test_parse_list)
{
	ck_assert_uint_eq(cpu_parse_list("0"), 1);
	ck_assert_uint_eq(cpu_parse_list("0-1\n"), 2);
	ck_assert_uint_eq(cpu_parse_list("0-3,8-11"), 12);
	ck_assert_uint_eq(cpu_parse_list("5,2"), 6);
	ck_assert_uint_eq(cpu_parse_list(""), 0);
	ck_assert_uint_eq(cpu_parse_list("a-b"), 0);
	ck_assert_uint_eq(cpu_parse_list("3-1"), 0);
	ck_assert_uint_eq(cpu_parse_list("0-1x"), 0);
	ck_assert_uint_eq(cpu_parse_list("99999999"), 0);
}
END_TEST

START_TEST(test_possible_covers_online)
{
	cpu_init();
	ck_assert_uint_ge(cpu_count(), (unsigned int)test_online_cpus());
	ck_assert_uint_ge(cpu_node_count(), 1);
	for (unsigned int c = 0; c < cpu_count(); c++)
		ck_assert_int_lt(cpu_node(c), (int)cpu_node_count());
}
END_TEST

/* Pinned to each CPU in turn, the rseq (or fallback) answer is that CPU. */
START_TEST(test_current_matches_pin)
{
	cpu_init();
	for (int i = 0; i < test_online_cpus(); i++) {
		int c = test_nth_cpu(i);
		ck_assert_int_eq(test_pin(c), 0);
		sched_yield();
		ck_assert_uint_eq(cpu_current(), (unsigned int)c);
		ck_assert_uint_eq(cpu_current_slow(), (unsigned int)c);
	}
}
END_TEST

/* glibc 2.35+ registers rseq unless told not to; this machine has 2.36. */
START_TEST(test_rseq_detected)
{
	const char *tun = getenv("GLIBC_TUNABLES");

	cpu_init();
	if (tun == NULL || strstr(tun, "glibc.pthread.rseq=0") == NULL)
		ck_assert(cpu_rseq_registered);
	else
		ck_assert(!cpu_rseq_registered);
}
END_TEST

START_TEST(test_topology_override)
{
	static int map[4096];

	cpu_init();
	for (unsigned int c = 0; c < cpu_count() && c < 4096; c++)
		map[c] = (int)(c % 2);
	cpu_topology_override(2, map, NULL);
	ck_assert_uint_eq(cpu_node_count(), 2);
	ck_assert(!cpu_numa_real());
	if (cpu_count() > 1)
		ck_assert_int_eq(cpu_node(1), 1);
	ck_assert_int_eq(cpu_node_order(1)[0], 1);
	ck_assert_int_eq(cpu_node_order(1)[1], 0);
	cpu_topology_override(0, NULL, NULL);
	ck_assert_int_eq(cpu_node(0), 0);
	ck_assert_int_eq(cpu_node_order(0)[0], 0);
}
END_TEST

/* Nodes sorted by a distance table, nearest first. */
START_TEST(test_node_order)
{
	static int map[4096];
	/* 4 nodes: from node 0, node 3 (12) is nearer than 1 (20) and 2 (30). */
	static const int dist[16] = {
		10, 20, 30, 12,
		20, 10, 12, 30,
		30, 12, 10, 20,
		12, 30, 20, 10,
	};
	const int *o;

	cpu_init();
	cpu_topology_override(4, map, dist);
	o = cpu_node_order(0);
	ck_assert_int_eq(o[0], 0);
	ck_assert_int_eq(o[1], 3);
	ck_assert_int_eq(o[2], 1);
	ck_assert_int_eq(o[3], 2);
	o = cpu_node_order(2);
	ck_assert_int_eq(o[0], 2);
	ck_assert_int_eq(o[1], 1);
	ck_assert_int_eq(o[2], 3);
	ck_assert_int_eq(o[3], 0);
	cpu_topology_override(0, NULL, NULL);
	/* The real machine: every node first in its own order. */
	for (unsigned int n = 0; n < cpu_node_count(); n++)
		ck_assert_int_eq(cpu_node_order((int)n)[0], (int)n);
}
END_TEST

/*
 * Distances of 0, as libnuma's numa_distance() reports them when it does
 * not know them: each node still comes first in its own order, and nodes
 * at an unknown distance come last.
 */
START_TEST(test_node_order_unknown_distance)
{
	static int map[4096];
	/* Node ids 0 and 2 (no node 1): libnuma has no distances for 1. */
	static const int holes[9] = {
		10, 0, 20,
		0, 0, 0,
		20, 0, 10,
	};
	/* No distance table at all: every distance 0. */
	static const int none[4] = { 0, 0, 0, 0 };
	const int *o;

	cpu_init();
	cpu_topology_override(3, map, holes);
	o = cpu_node_order(2);
	ck_assert_int_eq(o[0], 2);
	ck_assert_int_eq(o[1], 0);
	ck_assert_int_eq(o[2], 1);
	o = cpu_node_order(0);
	ck_assert_int_eq(o[0], 0);
	ck_assert_int_eq(o[1], 2);
	ck_assert_int_eq(o[2], 1);
	cpu_topology_override(2, map, none);
	ck_assert_int_eq(cpu_node_order(1)[0], 1);
	ck_assert_int_eq(cpu_node_order(1)[1], 0);
	cpu_topology_override(0, NULL, NULL);
}
END_TEST

#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)   /* they need their open */
/*
 * open, failing for the list of possible CPUs while hide_possible is set,
 * as where /sys is not mounted (a chroot), or reading fake_possible
 * instead while that is set, as where /sys is faked (a container).  The
 * library calls open through the PLT.
 */
static volatile bool hide_possible;
static const char *volatile fake_possible;
static volatile int possible_opens;

int
open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	va_start(ap, flags);
	if (flags & (O_CREAT | O_TMPFILE))
		mode = va_arg(ap, mode_t);
	va_end(ap);
	if (hide_possible &&
	    strcmp(path, "/sys/devices/system/cpu/possible") == 0) {
		possible_opens++;
		errno = ENOENT;
		return (-1);
	}
	if (fake_possible != NULL &&
	    strcmp(path, "/sys/devices/system/cpu/possible") == 0) {
		int fds[2];

		possible_opens++;
		if (pipe(fds) != 0)
			return (-1);
		(void) !write(fds[1], fake_possible, strlen(fake_possible));
		(void) close(fds[1]);
		return (fds[0]);
	}
	return ((int)syscall(SYS_openat, AT_FDCWD, path, flags, mode));
}

/*
 * Without the list of possible CPUs, cpu_count() is the C library's count
 * (the online CPUs, or those the process may run on), which a CPU id the
 * kernel hands out may exceed (a process pinned to CPU 1 counts 1): the
 * rseq fast path, which indexes the per-CPU arrays by that id, must not
 * be used.  Each test runs in a fresh child, where cpu_init runs here.
 */
START_TEST(test_unknown_ids_no_rseq)
{
	hide_possible = true;
	cpu_init();
	hide_possible = false;
	if (possible_opens == 0)
		return;                 /* CK_FORK=no: started already */
	ck_assert_uint_ge(cpu_count(), 1);
	ck_assert_uint_lt(cpu_current(), cpu_count());
	ck_assert_int_ne(mag_default_mode(), MAG_RSEQ);
	mag_set_default_mode(MAG_RSEQ);
	ck_assert_int_ne(mag_default_mode(), MAG_RSEQ);
}
END_TEST

/*
 * A list of possible CPUs that misses the CPU this process runs on (a
 * faked /sys says "0", the process is pinned to CPU 1): cpu_count()
 * still covers it, and the rseq fast path, which would index the per-CPU
 * arrays past their end by the kernel's id (SIGSEGV), is not used.
 */
START_TEST(test_short_possible_list)
{
	int c;

	if (test_online_cpus() < 2)
		return;
	c = test_nth_cpu(test_online_cpus() - 1);
	ck_assert_int_eq(test_pin(c), 0);
	fake_possible = "0\n";
	cpu_init();
	fake_possible = NULL;
	if (possible_opens == 0)
		return;                 /* CK_FORK=no: started already */
	ck_assert_uint_gt(cpu_count(), (unsigned int)c);
	sched_yield();
	ck_assert_uint_eq(cpu_current(), (unsigned int)c);
	ck_assert_int_ne(mag_default_mode(), MAG_RSEQ);
	mag_set_default_mode(MAG_RSEQ);
	ck_assert_int_ne(mag_default_mode(), MAG_RSEQ);
}
END_TEST
#endif

#ifdef HAVE_NUMA
/* Whether this process has mapped a file whose name contains 'what'. */
static bool
mapped(const char *what)
{
	char line[4096];
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "r");

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof (line), f) != NULL)
		found = found || strstr(line, what) != NULL;
	fclose(f);
	return (found);
}
#endif

/*
 * libnuma is loaded only on a machine with more than one node (its
 * constructor cost every process 0.7 ms at start); where it is, it loads
 * and agrees with sysfs on the number of nodes.
 */
START_TEST(test_libnuma_lazy)
{
#ifdef HAVE_NUMA
	FILE *f = fopen("/sys/devices/system/node/online", "r");
	char buf[256] = "0";
	unsigned int online;

	if (f != NULL) {
		if (fgets(buf, sizeof (buf), f) == NULL)
			snprintf(buf, sizeof (buf), "0");
		fclose(f);
	}
	online = cpu_parse_list(buf);
	cpu_init();
	ck_assert_int_eq(mapped(CPU_LIBNUMA), online > 1);
	ck_assert_int_eq(cpu_numa_real(), online > 1);
	if (online <= 1) {
		/* Where the kernel has NUMA calls, libnuma says so. */
		bool calls = syscall(SYS_get_mempolicy, NULL, NULL, 0UL, NULL,
		    0UL) == 0;

		ck_assert_int_eq(cpu_libnuma_load(), calls);
		ck_assert(mapped(CPU_LIBNUMA));
		ck_assert_uint_eq(cpu_node_count(), 1);
	}
#endif
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("cpu");
	TCase *tc = tcase_create("cpu");

	tcase_add_test(tc, test_parse_list);
	tcase_add_test(tc, test_possible_covers_online);
	tcase_add_test(tc, test_current_matches_pin);
	tcase_add_test(tc, test_rseq_detected);
	tcase_add_test(tc, test_topology_override);
	tcase_add_test(tc, test_node_order);
	tcase_add_test(tc, test_node_order_unknown_distance);
	tcase_add_test(tc, test_libnuma_lazy);
#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)
	tcase_add_test(tc, test_unknown_ids_no_rseq);
	tcase_add_test(tc, test_short_possible_list);
#endif
	suite_add_tcase(s, tc);
	return (test_run_suite(s));
}
