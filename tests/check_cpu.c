/*
 * check_cpu.c - the current-CPU and topology module.
 */
#include "config.h"

#include <sched.h>
#include <string.h>

#include "cpu.h"
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
	cpu_topology_override(2, map);
	ck_assert_uint_eq(cpu_node_count(), 2);
	if (cpu_count() > 1)
		ck_assert_int_eq(cpu_node(1), 1);
	cpu_topology_override(0, NULL);
	ck_assert_int_eq(cpu_node(0), 0);
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
	suite_add_tcase(s, tc);
	return (test_run_suite(s));
}
