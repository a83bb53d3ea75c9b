/*
 * check_tunables.c - the tunables API (kmem_tunable_get/set/set_str/list)
 * and the environment: every tunable listed, read and set, every error,
 * the run-time effect of the run-time tunables, start-only tunables fixed
 * once used, and KMEM_<NAME> values good and bad in fresh processes.
 *
 * A fresh process is this program run again (/proc/self/exe --child
 * MODE) with an environment of the test's choosing, so that
 * tunables_init() reads it: the tests do not depend on Check forking.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libkmem/kmem.h"
#include "libkmem/taskq.h"
#include "magazine.h"
#include "reap.h"
#include "tunables.h"
#include "testutil.h"

extern char **environ;

#define MAXT    64      /* more tunables than libkmem will ever have */

/* The decisions of libkmem(7): when a change of each tunable applies. */
static const struct {
	const char *name;
	int flags;      /* RUNTIME / NEWCACHES; 0: start-only */
} expected[] = {
	{ "kmem_cache_obj_per_slab",
	    KMEM_TUNABLE_RUNTIME | KMEM_TUNABLE_NEWCACHES },
	{ "kmem_cache_max_size",
	    KMEM_TUNABLE_RUNTIME | KMEM_TUNABLE_NEWCACHES },
	{ "kmem_cache_magazine_size",
	    KMEM_TUNABLE_RUNTIME | KMEM_TUNABLE_NEWCACHES },
	{ "kmem_percpu", 0 },
	{ "kmem_cache_kmem_threads", 0 },
	{ "kmem_reap_interval", KMEM_TUNABLE_RUNTIME },
	{ "kmem_cache_expire", KMEM_TUNABLE_RUNTIME },
	{ "kmem_cache_reclaim", KMEM_TUNABLE_RUNTIME },
	{ "kmem_memory_limit", KMEM_TUNABLE_RUNTIME },
	{ "kmem_cache_grow_ahead", KMEM_TUNABLE_RUNTIME },
	{ "kmem_numa_policy", 0 },
	{ "kmem_alloc_max_class", 0 },
	{ "kmem_debug", KMEM_TUNABLE_RUNTIME | KMEM_TUNABLE_NEWCACHES },
	{ "kmem_debug_audit_frames",
	    KMEM_TUNABLE_RUNTIME | KMEM_TUNABLE_NEWCACHES },
};
#define NEXPECTED       (sizeof (expected) / sizeof (expected[0]))

static int
list_all(struct kmem_tunable *t)
{
	int n = kmem_tunable_list(t, MAXT);

	ck_assert_int_gt(n, 0);
	ck_assert_int_le(n, MAXT);
	return (n);
}

static int
nwords(const struct kmem_tunable *t)
{
	int n = 0;

	while (t->words != NULL && t->words[n] != NULL)
		n++;
	return (n);
}

/* KMEM_CACHE_MAX_SIZE for kmem_cache_max_size (libkmem(7)'s rule). */
static void
env_name(const char *name, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "KMEM_");

	for (const char *p = name + strlen("kmem_"); *p != '\0' &&
	    n + 1 < len; p++)
		buf[n++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
	buf[n] = '\0';
}

/* ------------------------------------------------ child processes */

struct child {
	int status;             /* from waitpid */
	char out[8192];         /* its stdout */
	char err[4096];         /* its stderr */
};

static void
read_all(int fd, char *buf, size_t len)
{
	ssize_t n;
	size_t got = 0;

	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(fd);
}

/*
 * Run this program with --child mode, in this environment less every
 * tunable's variable, plus the assignments ("KMEM_X=v") of 'assigns', a
 * NULL-terminated list.
 */
static void
run_child_env(const char *mode, const char *const *assigns, struct child *c)
{
	static char *envp[4096];
	struct kmem_tunable t[MAXT];
	int n = list_all(t), ne = 0, fo, fe;
	char *argv[] = { "check_tunables", "--child", (char *)mode, NULL };
	pid_t pid;

	for (char **e = environ; *e != NULL && ne < 4094; e++) {
		bool drop = false;

		for (int i = 0; i < n && !drop; i++) {
			char var[64];
			size_t len;

			env_name(t[i].name, var, sizeof (var));
			len = strlen(var);
			drop = strncmp(*e, var, len) == 0 && (*e)[len] == '=';
		}
		if (!drop)
			envp[ne++] = *e;
	}
	for (; *assigns != NULL && ne < 4095; assigns++)
		envp[ne++] = (char *)*assigns;
	envp[ne] = NULL;
	fo = memfd_create("child-out", 0);
	fe = memfd_create("child-err", 0);
	ck_assert_int_ge(fo, 0);
	ck_assert_int_ge(fe, 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		(void) dup2(fo, STDOUT_FILENO);
		(void) dup2(fe, STDERR_FILENO);
		execve("/proc/self/exe", argv, envp);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &c->status, 0), pid);
	read_all(fo, c->out, sizeof (c->out));
	read_all(fe, c->err, sizeof (c->err));
}

/* The same, with one assignment 'assign' if not NULL. */
static void
run_child(const char *mode, const char *assign, struct child *c)
{
	const char *assigns[] = { assign, NULL };

	run_child_env(mode, assigns, c);
}

/* A tunable's value as the child's "list" printed it ("name value\n"). */
static int64_t
child_value(const struct child *c, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = c->out; *p != '\0';) {
		const char *nl = strchr(p, '\n');

		if (strncmp(p, name, len) == 0 && p[len] == ' ')
			return (strtoll(p + len + 1, NULL, 10));
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	ck_abort_msg("the child listed no %s: '%s'", name, c->out);
	return (-1);
}

static void
assert_child_ok(const struct child *c, const char *what)
{
	ck_assert_msg(WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0,
	    "%s: child status %#x, stdout '%s', stderr '%s'", what,
	    (unsigned int)c->status, c->out, c->err);
}

/* ------------------------------------------------ list */

/* Every tunable is listed, consistent, with the run-time flags decided. */
START_TEST(test_list)
{
	struct kmem_tunable t[MAXT], few[4];
	int n = list_all(t);

	ck_assert_int_eq(kmem_tunable_list(NULL, 0), n);
	ck_assert_int_ge(n, (int)NEXPECTED);
	for (int i = 0; i < n; i++) {
		int64_t v;

		ck_assert_msg(strncmp(t[i].name, "kmem_", 5) == 0, "%s",
		    t[i].name);
		ck_assert_msg(t[i].min <= t[i].dflt && t[i].dflt <= t[i].max &&
		    t[i].min <= t[i].value && t[i].value <= t[i].max,
		    "%s: %" PRId64 " in %" PRId64 "..%" PRId64 ", default %"
		    PRId64, t[i].name, t[i].value, t[i].min, t[i].max,
		    t[i].dflt);
		ck_assert_int_eq(kmem_tunable_get(t[i].name, &v), 0);
		ck_assert_int_eq(v, t[i].value);
		if (t[i].flags & KMEM_TUNABLE_NEWCACHES)
			ck_assert(t[i].flags & KMEM_TUNABLE_RUNTIME);
		if (t[i].flags & KMEM_TUNABLE_FIXED)
			ck_assert(!(t[i].flags & KMEM_TUNABLE_RUNTIME));
		if (t[i].words != NULL)
			ck_assert_int_gt(nwords(&t[i]), 1);
		for (int j = 0; j < i; j++)
			ck_assert_str_ne(t[i].name, t[j].name);
	}
	for (size_t e = 0; e < NEXPECTED; e++) {
		int found = -1;

		for (int i = 0; i < n; i++)
			if (strcmp(t[i].name, expected[e].name) == 0)
				found = i;
		ck_assert_msg(found >= 0, "no tunable %s", expected[e].name);
		ck_assert_msg((t[found].flags & (KMEM_TUNABLE_RUNTIME |
		    KMEM_TUNABLE_NEWCACHES)) == expected[e].flags,
		    "%s: flags %#x", t[found].name, (unsigned)t[found].flags);
	}
	/* A short buffer: filled up to its size, the total returned. */
	memset(few, 0xa5, sizeof (few));
	ck_assert_int_eq(kmem_tunable_list(few, 3), n);
	for (int i = 0; i < 3; i++)
		ck_assert_str_eq(few[i].name, t[i].name);
	for (size_t b = 0; b < sizeof (few[3]); b++)
		ck_assert_int_eq(((unsigned char *)&few[3])[b], 0xa5);
}
END_TEST

/* "8", "128K", "2^60" as libkmem(7) writes a number; *end after it. */
static int64_t
man_number(const char *p, const char **end)
{
	char *e;
	int64_t v = strtoll(p, &e, 10);

	if (e[0] == '^')
		v = (int64_t)1 << strtoll(e + 1, &e, 10);
	else if (*e == 'K' || *e == 'M' || *e == 'G')
		v <<= (*e++ == 'K' ? 10 : e[-1] == 'M' ? 20 : 30);
	*end = e;
	return (v);
}

/*
 * libkmem(7) TUNABLES has an entry for every tunable, in the order of
 * kmem_tunable_list() (as kmem_tunable_list(3) says), and each default
 * and range it gives as a number is the tunable's.
 */
START_TEST(test_list_man_order)
{
	struct kmem_tunable t[MAXT];
	int n = list_all(t), i = -1;
	const char *top = getenv("top_srcdir");
	char path[4096], line[512];
	bool in = false;
	FILE *f;

	snprintf(path, sizeof (path), "%s/man/man7/libkmem.7",
	    top != NULL ? top : ".");
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof (line), f) != NULL) {
		const char *p, *e;

		if (strncmp(line, ".SH ", 4) == 0) {
			if (in)
				break;
			in = strcmp(line, ".SH TUNABLES\n") == 0;
			continue;
		}
		if (!in)
			continue;
		if (strncmp(line, ".BR kmem_", 9) == 0 &&
		    strstr(line, "\" (\" KMEM_") != NULL) {
			i++;
			ck_assert_msg(i < n, "libkmem(7) has more tunables");
			ck_assert_msg(strncmp(line + 4, t[i].name,
			    strlen(t[i].name)) == 0 &&
			    line[4 + strlen(t[i].name)] == ' ',
			    "libkmem(7) entry %d is %s, kmem_tunable_list's %s",
			    i, line + 4, t[i].name);
			continue;
		}
		if (i < 0)
			continue;
		if ((p = strstr(line, "Default ")) != NULL &&
		    p[8] >= '0' && p[8] <= '9')
			ck_assert_msg(man_number(p + 8, &e) == t[i].dflt,
			    "%s: libkmem(7) says '%s'", t[i].name, line);
		for (p = line; (p = strstr(p, "ange ")) != NULL; p += 5) {
			if (p[5] < '0' || p[5] > '9')
				continue;       /* "a change (...)" */
			ck_assert_msg(man_number(p + 5, &e) == t[i].min &&
			    strncmp(e, "..", 2) == 0 &&
			    man_number(e + 2, &e) == t[i].max,
			    "%s: libkmem(7) says '%s'", t[i].name, line);
		}
	}
	fclose(f);
	ck_assert_int_eq(i + 1, n);
}
END_TEST

/* ------------------------------------------------ get and set */

/*
 * Every tunable set to its bounds and back, by number and by text (its
 * words, decimal, a K suffix).  A start-only tunable that this process
 * has fixed refuses a change (EBUSY) but accepts its own value.
 */
START_TEST(test_get_set_each)
{
	struct kmem_tunable t[MAXT];
	int n = list_all(t);

	for (int i = 0; i < n; i++) {
		const char *name = t[i].name;
		int64_t v, orig = t[i].value;
		bool fixed = (t[i].flags & KMEM_TUNABLE_FIXED) != 0;
		int64_t tries[] = { t[i].min, t[i].max, t[i].dflt };

		for (size_t k = 0; k < 3; k++) {
			errno = 0;
			if (fixed && tries[k] != orig) {
				ck_assert_int_eq(kmem_tunable_set(name,
				    tries[k]), -1);
				ck_assert_int_eq(errno, EBUSY);
				continue;
			}
			ck_assert_msg(kmem_tunable_set(name, tries[k]) == 0,
			    "%s=%" PRId64 ": %s", name, tries[k],
			    strerror(errno));
			ck_assert_int_eq(kmem_tunable_get(name, &v), 0);
			ck_assert_int_eq(v, tries[k]);
		}
		if (fixed)
			continue;
		for (int w = 0; w < nwords(&t[i]); w++) {
			ck_assert_int_eq(kmem_tunable_set_str(name,
			    t[i].words[w]), 0);
			ck_assert_int_eq(kmem_tunable_get(name, &v), 0);
			ck_assert_int_eq(v, w);
		}
		if (t[i].words == NULL) {
			char text[32];

			snprintf(text, sizeof (text), "%" PRId64, t[i].max);
			ck_assert_int_eq(kmem_tunable_set_str(name, text), 0);
			ck_assert_int_eq(kmem_tunable_get(name, &v), 0);
			ck_assert_int_eq(v, t[i].max);
			if (t[i].min <= 1024 && t[i].max >= 1024) {
				ck_assert_int_eq(kmem_tunable_set_str(name,
				    "1K"), 0);
				ck_assert_int_eq(kmem_tunable_get(name, &v), 0);
				ck_assert_int_eq(v, 1024);
			}
		}
		ck_assert_int_eq(kmem_tunable_set(name, orig), 0);
	}
}
END_TEST

/* ------------------------------------------------ errors */

struct call {
	int which;              /* 0 set, 1 set_str, 2 get, 3 list */
	const char *name;
	int64_t value;
	const char *text;
	void *ptr;
	int n;
	int rc, err;
};

static void
do_call(void *arg)
{
	struct call *c = arg;

	errno = 0;
	switch (c->which) {
	case 0:
		c->rc = kmem_tunable_set(c->name, c->value);
		break;
	case 1:
		c->rc = kmem_tunable_set_str(c->name, c->text);
		break;
	case 2:
		c->rc = kmem_tunable_get(c->name, c->ptr);
		break;
	default:
		c->rc = kmem_tunable_list(c->ptr, c->n);
		break;
	}
	c->err = errno;
}

/*
 * The call fails with errno err and says so in one line on stderr that
 * holds every one of the (NULL-terminated) strings, or says nothing if
 * the first is NULL.
 */
static void
expect_fail(struct call c, int err, const char *const *says)
{
	char buf[1024];

	test_capture_stderr(do_call, &c, buf, sizeof (buf));
	ck_assert_msg(c.rc == -1 && c.err == err, "%s: rc %d errno %d, not "
	    "%d; said '%s'", c.name != NULL ? c.name : "NULL", c.rc, c.err,
	    err, buf);
	if (says[0] == NULL) {
		ck_assert_msg(buf[0] == '\0', "said '%s'", buf);
		return;
	}
	ck_assert_msg(strncmp(buf, "libkmem: ", 9) == 0 &&
	    strchr(buf, '\n') == buf + strlen(buf) - 1, "not one line: '%s'",
	    buf);
	for (int i = 0; says[i] != NULL; i++)
		ck_assert_msg(strstr(buf, says[i]) != NULL, "'%s' lacks '%s'",
		    buf, says[i]);
}

#define SAYS(...)       ((const char *const []){ __VA_ARGS__, NULL })

START_TEST(test_errors)
{
	struct kmem_tunable t[MAXT];
	int n = list_all(t);
	int64_t v = 12345;

	/* NULL arguments: EINVAL. */
	expect_fail((struct call){ .which = 2, .name = NULL, .ptr = &v },
	    EINVAL, SAYS("kmem_tunable_get", "NULL"));
	expect_fail((struct call){ .which = 2, .name = "kmem_reap_interval",
	    .ptr = NULL }, EINVAL, SAYS("kmem_tunable_get", "NULL"));
	expect_fail((struct call){ .which = 0, .name = NULL }, EINVAL,
	    SAYS("kmem_tunable_set", "NULL"));
	expect_fail((struct call){ .which = 1, .name = NULL, .text = "1" },
	    EINVAL, SAYS("kmem_tunable_set_str", "NULL"));
	expect_fail((struct call){ .which = 1, .name = "kmem_reap_interval",
	    .text = NULL }, EINVAL, SAYS("kmem_tunable_set_str", "NULL"));
	expect_fail((struct call){ .which = 3, .ptr = NULL, .n = 1 }, EINVAL,
	    SAYS("kmem_tunable_list", "NULL"));
	expect_fail((struct call){ .which = 3, .ptr = t, .n = -1 }, EINVAL,
	    SAYS("kmem_tunable_list", "negative"));
	ck_assert_int_eq(v, 12345);

	/* Unknown names: ENOENT; get is silent (it may be a probe). */
	expect_fail((struct call){ .which = 2, .name = "kmem_no_such",
	    .ptr = &v }, ENOENT, SAYS(NULL));
	expect_fail((struct call){ .which = 0, .name = "kmem_no_such",
	    .value = 1 }, ENOENT, SAYS("kmem_tunable_set", "kmem_no_such"));
	expect_fail((struct call){ .which = 1, .name = "KMEM_REAP_INTERVAL",
	    .text = "1" }, ENOENT, SAYS("KMEM_REAP_INTERVAL"));
	ck_assert_int_eq(v, 12345);

	/* A newline in what the caller wrote does not split the line. */
	expect_fail((struct call){ .which = 1, .name = "kmem_reap_interval",
	    .text = "1\nlibkmem: 1" }, EINVAL, SAYS("kmem_reap_interval",
	    "rejected", "keeping"));
	expect_fail((struct call){ .which = 0, .name = "kmem_no\nsuch",
	    .value = 1 }, ENOENT, SAYS("kmem_tunable_set", "libkmem(7)"));
	expect_fail((struct call){ .which = 2, .name = "kmem_no\nsuch",
	    .ptr = NULL }, EINVAL, SAYS("kmem_tunable_get", "NULL value"));
	expect_fail((struct call){ .which = 1, .name = "kmem_no\nsuch",
	    .text = NULL }, EINVAL, SAYS("kmem_tunable_set_str",
	    "NULL value"));

	/* Out of range and malformed, for every tunable: nothing changes. */
	for (int i = 0; i < n; i++) {
		const char *name = t[i].name;
		char lo[32], hi[32], range[64], big[32];
		int64_t after;

		snprintf(lo, sizeof (lo), "%" PRId64, t[i].min - 1);
		snprintf(hi, sizeof (hi), "%" PRId64, t[i].max + 1);
		snprintf(range, sizeof (range), "%" PRId64 "..%" PRId64,
		    t[i].min, t[i].max);
		expect_fail((struct call){ .which = 0, .name = name,
		    .value = t[i].max + 1 }, ERANGE, SAYS(name, hi, range));
		expect_fail((struct call){ .which = 0, .name = name,
		    .value = t[i].min - 1 }, ERANGE, SAYS(name, lo, range));
		expect_fail((struct call){ .which = 0, .name = name,
		    .value = INT64_MIN }, ERANGE, SAYS(name, range));
		expect_fail((struct call){ .which = 1, .name = name,
		    .text = "12x" }, EINVAL, SAYS(name, "12x"));
		expect_fail((struct call){ .which = 1, .name = name,
		    .text = "" }, EINVAL, SAYS(name));
		expect_fail((struct call){ .which = 1, .name = name,
		    .text = " 1" }, EINVAL, SAYS(name, "' 1'"));
		expect_fail((struct call){ .which = 1, .name = name,
		    .text = "1 " }, EINVAL, SAYS(name, "'1 '"));
		if (t[i].words != NULL) {
			for (int w = 0; t[i].words[w] != NULL; w++)
				expect_fail((struct call){ .which = 1,
				    .name = name, .text = "bogus" }, EINVAL,
				    SAYS(name, "bogus", t[i].words[w]));
		} else {
			snprintf(big, sizeof (big), "%" PRId64 "G",
			    t[i].max);
			expect_fail((struct call){ .which = 1, .name = name,
			    .text = hi }, ERANGE, SAYS(name, hi, range));
			if (t[i].min > -1)
				expect_fail((struct call){ .which = 1,
				    .name = name, .text = "-1" }, ERANGE,
				    SAYS(name, "-1", range));
			expect_fail((struct call){ .which = 1, .name = name,
			    .text = "99999999999999999999" }, ERANGE,
			    SAYS(name, "99999999999999999999"));
			expect_fail((struct call){ .which = 1, .name = name,
			    .text = "9999999999G" }, ERANGE,
			    SAYS(name, "9999999999G"));
			if (t[i].max >= 1024)
				expect_fail((struct call){ .which = 1,
				    .name = name, .text = big }, ERANGE,
				    SAYS(name, big, range));
		}
		ck_assert_int_eq(kmem_tunable_get(name, &after), 0);
		ck_assert_int_eq(after, t[i].value);
	}
}
END_TEST

/*
 * A start-only tunable is fixed once libkmem has used it: kmem_percpu
 * when the first cache is made.  A change is refused with EBUSY and a
 * line naming its variable; its own value is accepted.
 */
START_TEST(test_fixed_once_used)
{
	kmem_cache_t *cp = kmem_cache_create("tun_fixed", 64, 0, NULL, NULL,
	    NULL, NULL, NULL, 0);
	struct kmem_tunable t[MAXT];
	int n = list_all(t), found = 0;

	ck_assert_ptr_nonnull(cp);
	for (int i = 0; i < n; i++) {
		int64_t other;

		if (strcmp(t[i].name, "kmem_percpu") != 0)
			continue;
		found = 1;
		ck_assert(t[i].flags & KMEM_TUNABLE_FIXED);
		other = t[i].value == 0 ? 1 : 0;
		expect_fail((struct call){ .which = 0, .name = t[i].name,
		    .value = other }, EBUSY, SAYS("kmem_percpu",
		    "KMEM_PERCPU", "fixed"));
		expect_fail((struct call){ .which = 1, .name = t[i].name,
		    .text = t[i].words[other] }, EBUSY, SAYS("kmem_percpu",
		    t[i].words[other], "KMEM_PERCPU"));
		ck_assert_int_eq(kmem_tunable_set(t[i].name, t[i].value), 0);
		ck_assert_int_eq(kmem_tunable_set_str(t[i].name,
		    t[i].words[t[i].value]), 0);
	}
	ck_assert(found);
	kmem_cache_destroy(cp);
}
END_TEST

/* ------------------------------------------------ run-time effects */

static struct kmem_cache_stats
stats_of(kmem_cache_t *cp)
{
	struct kmem_cache_stats st;

	ck_assert_int_eq(kmem_cache_stats(cp, &st), 0);
	return (st);
}

struct big {
	kmem_cache_t *cp;
	int err;
};

/* A cache of 2 MiB objects. */
static void
create_big(void *arg)
{
	struct big *b = arg;

	errno = 0;
	b->cp = kmem_cache_create("tun_c", 2 << 20, 0, NULL, NULL, NULL, NULL,
	    NULL, 0);
	b->err = errno;
}

/*
 * kmem_cache_magazine_size, kmem_cache_obj_per_slab, kmem_cache_max_size:
 * caches created after a change have the new sizes; older caches keep
 * theirs.
 */
START_TEST(test_runtime_cache_sizes)
{
	kmem_cache_t *a, *b, *c;
	int64_t mag0, ops0, max0;

	ck_assert_int_eq(kmem_tunable_get("kmem_cache_magazine_size", &mag0),
	    0);
	ck_assert_int_eq(kmem_tunable_get("kmem_cache_obj_per_slab", &ops0),
	    0);
	ck_assert_int_eq(kmem_tunable_get("kmem_cache_max_size", &max0), 0);

	ck_assert_int_eq(kmem_tunable_set("kmem_cache_magazine_size", 48), 0);
	ck_assert_int_eq(kmem_tunable_set("kmem_cache_obj_per_slab", 300), 0);
	a = kmem_cache_create("tun_a", 64, 0, NULL, NULL, NULL, NULL, NULL, 0);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(stats_of(a).mag_size, 48);
	ck_assert_uint_ge(stats_of(a).objs_per_slab, 300);

	ck_assert_int_eq(kmem_tunable_set_str("kmem_cache_magazine_size",
	    "0"), 0);
	ck_assert_int_eq(kmem_tunable_set("kmem_cache_obj_per_slab", 8), 0);
	b = kmem_cache_create("tun_b", 64, 0, NULL, NULL, NULL, NULL, NULL, 0);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(stats_of(b).mag_size, 256);   /* by object size */
	ck_assert_uint_lt(stats_of(b).objs_per_slab, 300);
	ck_assert_uint_eq(stats_of(a).mag_size, 48);    /* a keeps its own */
	ck_assert_uint_ge(stats_of(a).objs_per_slab, 300);
	/* Both work. */
	for (int i = 0; i < 1000; i++) {
		kmem_cache_free(a, kmem_cache_alloc(a, KM_SLEEP));
		kmem_cache_free(b, kmem_cache_alloc(b, KM_SLEEP));
	}

	/* 1 MiB slabs at most: a 2 MiB object no longer fits. */
	ck_assert_int_eq(kmem_tunable_set("kmem_cache_max_size", 1), 0);
	{
		char buf[512];
		struct big bg = { NULL, 0 };

		test_capture_stderr(create_big, &bg, buf, sizeof (buf));
		ck_assert_ptr_null(bg.cp);
		ck_assert_int_eq(bg.err, EINVAL);
		ck_assert_msg(strstr(buf, "kmem_cache_max_size") != NULL,
		    "'%s'", buf);
	}
	ck_assert_int_eq(kmem_tunable_set("kmem_cache_max_size", 4), 0);
	c = kmem_cache_create("tun_c", 2 << 20, 0, NULL, NULL, NULL, NULL,
	    NULL, 0);
	ck_assert_ptr_nonnull(c);
	kmem_cache_free(c, kmem_cache_alloc(c, KM_SLEEP));

	kmem_cache_destroy(a);
	kmem_cache_destroy(b);
	kmem_cache_destroy(c);
	ck_assert_int_eq(kmem_tunable_set("kmem_cache_magazine_size", mag0),
	    0);
	ck_assert_int_eq(kmem_tunable_set("kmem_cache_obj_per_slab", ops0),
	    0);
	ck_assert_int_eq(kmem_tunable_set("kmem_cache_max_size", max0), 0);
}
END_TEST

/*
 * kmem_reap_interval at run time, in a fresh process whose aging chain
 * starts asleep for an hour: setting 1 s starts passes at once; 0 stops
 * them; back on, they come again.
 */
START_TEST(test_runtime_reap_interval)
{
	struct child c;

	run_child("reap-interval", NULL, &c);
	assert_child_ok(&c, "reap-interval");
	ck_assert_msg(strstr(c.out, "reap-interval ok") != NULL, "'%s' '%s'",
	    c.out, c.err);
}
END_TEST

/*
 * kmem_memory_limit at run time: a limit below what is mapped starts a
 * pressure reap at once, with no further growth, and the cache's empty
 * slabs go back.
 */
START_TEST(test_runtime_memory_limit)
{
	enum { N = 4096 };
	kmem_cache_t *cp = kmem_cache_create("tun_limit", 4096, 0, NULL,
	    NULL, NULL, NULL, NULL, 0);
	void **v = malloc(N * sizeof (void *));
	uint64_t runs0, runs, disp, drop;
	int64_t interval;
	double t0;

	ck_assert_ptr_nonnull(cp);
	ck_assert_int_eq(kmem_tunable_get("kmem_reap_interval", &interval),
	    0);
	ck_assert_int_eq(kmem_tunable_set("kmem_reap_interval", 0), 0);
	ck_assert_int_eq(kmem_tunable_set("kmem_memory_limit", 0), 0);
	for (int i = 0; i < N; i++)
		v[i] = kmem_cache_alloc(cp, KM_SLEEP);
	for (int i = 0; i < N; i++)
		kmem_cache_free(cp, v[i]);
	ck_assert_uint_gt(stats_of(cp).slab_total, 0);
	reap_pressure_counts(&runs0, &disp, &drop);
	ck_assert_int_eq(kmem_tunable_set_str("kmem_memory_limit", "1M"), 0);
	t0 = test_now();
	do {
		reap_pressure_counts(&runs, &disp, &drop);
		if (runs > runs0 && stats_of(cp).slab_total == 0)
			break;
		usleep(20000);
	} while (test_now() - t0 < 30);
	ck_assert_msg(runs > runs0, "no pressure reap after the limit fell");
	ck_assert_uint_eq(stats_of(cp).slab_total, 0);
	ck_assert_int_eq(kmem_tunable_set("kmem_memory_limit", 0), 0);
	ck_assert_int_eq(kmem_tunable_set("kmem_reap_interval", interval),
	    0);
	kmem_cache_destroy(cp);
	free(v);
}
END_TEST

/* ------------------------------------------------ fresh processes */

/*
 * Before libkmem starts, start-only tunables can be set; starting fixes
 * them, with the values the layers use.  Checked in a fresh process.
 */
START_TEST(test_start_only)
{
	struct child c;

	run_child("start-only", NULL, &c);
	assert_child_ok(&c, "start-only");
	ck_assert_msg(strstr(c.out, "start-only ok") != NULL, "'%s' '%s'",
	    c.out, c.err);
}
END_TEST

/*
 * Setters racing with the first cache creation: the kmem taskq has the
 * number of threads that kmem_cache_kmem_threads reports afterwards.
 */
START_TEST(test_start_race)
{
	for (int i = 0; i < 8; i++) {
		struct child c;

		run_child("start-race", NULL, &c);
		assert_child_ok(&c, "start-race");
		ck_assert_msg(strstr(c.out, "start-race ok") != NULL,
		    "'%s' '%s'", c.out, c.err);
	}
}
END_TEST

/*
 * With glibc's rseq registration off, libkmem uses lock mode and
 * kmem_percpu reports lock (not the rseq that was asked for).
 */
START_TEST(test_percpu_fallback)
{
	struct child c;

	run_child("percpu-fallback", "GLIBC_TUNABLES=glibc.pthread.rseq=0",
	    &c);
	assert_child_ok(&c, "percpu-fallback");
	ck_assert_msg(strstr(c.out, getenv("GLIBC_TUNABLES") == NULL ?
	    "percpu-fallback lock ok" : "percpu-fallback") != NULL,
	    "'%s' '%s'", c.out, c.err);
	if (getenv("GLIBC_TUNABLES") != NULL)
		return;
	/* KMEM_PERCPU=rseq hears why not; a rejected value only that. */
	for (int i = 0; i < 2; i++) {
		const char *assigns[] = { "GLIBC_TUNABLES=glibc.pthread.rseq=0",
		    i == 0 ? "KMEM_PERCPU=rseq" : "KMEM_PERCPU=bogus", NULL };
		const char *nl;

		run_child_env("percpu-fallback", assigns, &c);
		assert_child_ok(&c, assigns[1]);
		nl = strchr(c.err, '\n');
		ck_assert_msg(nl != NULL && nl[1] == '\0' && (i == 0) ==
		    (strstr(c.err, "not available") != NULL), "%s: '%s'",
		    assigns[1], c.err);
	}
}
END_TEST

/*
 * kmem_debug's words: "all" (every check: guards, audit, leaks) combines
 * with the others, "all,noabort" as users write it (it was refused: only
 * "all" alone was taken); "none" stands alone.
 */
START_TEST(test_debug_flag_words)
{
	static const struct {
		const char *text;
		int64_t want;           /* -1: refused */
	} w[] = {
		{ "all", 7 }, { "all,noabort", 15 }, { "noabort,all", 15 },
		{ "all,audit=8", 7 }, { "guards,leaks", 5 }, { "none", 0 },
		{ "all=3", -1 }, { "all,", -1 }, { "all,bogus", -1 },
		{ "none,all", -1 }, { "alls", -1 },
	};
	int64_t v, was;

	ck_assert_int_eq(kmem_tunable_get("kmem_debug", &was), 0);
	for (size_t i = 0; i < sizeof (w) / sizeof (w[0]); i++) {
		int rc = kmem_tunable_set_str("kmem_debug", w[i].text);

		ck_assert_msg(rc == (w[i].want < 0 ? -1 : 0), "%s: rc %d",
		    w[i].text, rc);
		if (rc == 0) {
			ck_assert_int_eq(kmem_tunable_get("kmem_debug", &v), 0);
			ck_assert_msg(v == w[i].want, "%s: %" PRId64,
			    w[i].text, v);
		}
	}
	ck_assert_int_eq(kmem_tunable_set("kmem_debug", was), 0);
}
END_TEST

/* A good value of every tunable, from its variable, is taken silently. */
START_TEST(test_env_good)
{
	struct kmem_tunable t[MAXT];
	int n = list_all(t);
	static const struct {
		const char *assign, *name;
		int64_t value;
	} suffixed[] = {
		{ "KMEM_ALLOC_MAX_CLASS=64K", "kmem_alloc_max_class", 65536 },
		{ "KMEM_MEMORY_LIMIT=3G", "kmem_memory_limit", 3LL << 30 },
		{ "KMEM_MEMORY_LIMIT=5m", "kmem_memory_limit", 5LL << 20 },
		{ "KMEM_CACHE_OBJ_PER_SLAB=4k", "kmem_cache_obj_per_slab",
		    4096 },
		{ "KMEM_NUMA_POLICY=interleave", "kmem_numa_policy", 1 },
		{ "KMEM_PERCPU=lock", "kmem_percpu", 1 },
		{ "KMEM_CACHE_RECLAIM=once", "kmem_cache_reclaim", 1 },
		/* Not overwritten by kmem_debug_audit_frames' default. */
		{ "KMEM_DEBUG=audit=32", "kmem_debug_audit_frames", 32 },
		{ "KMEM_DEBUG=audit=32", "kmem_debug", 2 },
		{ "KMEM_DEBUG=all", "kmem_debug", 7 },
		{ "KMEM_DEBUG=all,noabort", "kmem_debug", 15 },
		{ "KMEM_DEBUG=noabort,all", "kmem_debug", 15 },
	};

	for (int i = 0; i < n; i++) {
		char assign[128], var[64];
		int64_t want;
		struct child c;

		env_name(t[i].name, var, sizeof (var));
		if (t[i].words != NULL) {
			want = (t[i].dflt - t[i].min + 1) % nwords(&t[i]);
			snprintf(assign, sizeof (assign), "%s=%s", var,
			    t[i].words[want]);
			want += t[i].min;
		} else {
			want = t[i].dflt != t[i].max ? t[i].max : t[i].min;
			snprintf(assign, sizeof (assign), "%s=%" PRId64, var,
			    want);
		}
		run_child("list", assign, &c);
		assert_child_ok(&c, assign);
		ck_assert_msg(c.err[0] == '\0', "%s: said '%s'", assign, c.err);
		/* Enum tunables hold a word's index when min is 0. */
		if (t[i].words == NULL || (t[i].min == 0 &&
		    t[i].max == nwords(&t[i]) - 1))
			ck_assert_msg(child_value(&c, t[i].name) == want,
			    "%s: got %" PRId64, assign,
			    child_value(&c, t[i].name));
		else
			ck_assert_int_ne(child_value(&c, t[i].name), t[i].dflt);
	}
	for (size_t s = 0; s < sizeof (suffixed) / sizeof (suffixed[0]);
	    s++) {
		struct child c;

		run_child("list", suffixed[s].assign, &c);
		assert_child_ok(&c, suffixed[s].assign);
		ck_assert_msg(c.err[0] == '\0', "%s: said '%s'",
		    suffixed[s].assign, c.err);
		ck_assert_int_eq(child_value(&c, suffixed[s].name),
		    suffixed[s].value);
	}
}
END_TEST

/*
 * A bad value of every tunable's variable: one line on stderr naming the
 * variable, the value and what is allowed; the default is kept and the
 * process goes on.
 */
START_TEST(test_env_bad)
{
	struct kmem_tunable t[MAXT];
	int n = list_all(t);

	for (int i = 0; i < n; i++) {
		char var[64], bad[3][64], range[64];
		int nbad = 0;

		env_name(t[i].name, var, sizeof (var));
		snprintf(bad[nbad++], sizeof (bad[0]), "bogus");
		if (t[i].words == NULL) {
			snprintf(bad[nbad++], sizeof (bad[0]), "%" PRId64,
			    t[i].max + 1);
			snprintf(bad[nbad++], sizeof (bad[0]), "%" PRId64 "x",
			    t[i].dflt);
			snprintf(range, sizeof (range), "%" PRId64 "..%"
			    PRId64, t[i].min, t[i].max);
		} else {
			snprintf(bad[nbad++], sizeof (bad[0]), "%s ",
			    t[i].words[0]);
		}
		for (int b = 0; b < nbad; b++) {
			char assign[256], quoted[200];
			struct child c;
			const char *nl;

			snprintf(assign, sizeof (assign), "%s=%s", var, bad[b]);
			snprintf(quoted, sizeof (quoted), "'%s'", bad[b]);
			run_child("list", assign, &c);
			assert_child_ok(&c, assign);
			nl = strchr(c.err, '\n');
			ck_assert_msg(nl != NULL && nl[1] == '\0' &&
			    strncmp(c.err, "libkmem: ", 9) == 0,
			    "%s: not one line: '%s'", assign, c.err);
			ck_assert_msg(strstr(c.err, var) != NULL &&
			    strstr(c.err, quoted) != NULL &&
			    strstr(c.err, "default") != NULL,
			    "%s: '%s'", assign, c.err);
			if (t[i].words == NULL)
				ck_assert_msg(strstr(c.err, range) != NULL,
				    "%s: no range %s in '%s'", assign, range,
				    c.err);
			for (int w = 0; w < nwords(&t[i]); w++)
				ck_assert_msg(strstr(c.err, t[i].words[w]) !=
				    NULL, "%s: no %s in '%s'", assign,
				    t[i].words[w], c.err);
			ck_assert_msg(child_value(&c, t[i].name) == t[i].dflt,
			    "%s: value %" PRId64 ", not the default", assign,
			    child_value(&c, t[i].name));
		}
	}
}
END_TEST

/*
 * A bad value too long for a line, or with a newline in it, is rejected
 * in one line all the same, which says so and names the range.
 */
START_TEST(test_env_bad_long)
{
	static char assign[2][1100];
	struct kmem_tunable t[MAXT];
	int n = list_all(t);
	char range[64] = "";
	int64_t dflt = -1;

	for (int j = 0; j < n; j++) {
		if (strcmp(t[j].name, "kmem_cache_expire") == 0) {
			dflt = t[j].dflt;
			snprintf(range, sizeof (range), "%" PRId64 "..%" PRId64,
			    t[j].min, t[j].max);
		}
	}
	snprintf(assign[0], sizeof (assign[0]), "KMEM_CACHE_EXPIRE=");
	memset(assign[0] + strlen(assign[0]), '9', 1000);
	snprintf(assign[1], sizeof (assign[1]),
	    "KMEM_CACHE_EXPIRE=5\nlibkmem: KMEM_CACHE_EXPIRE=5 taken");
	for (int i = 0; i < 2; i++) {
		struct child c;
		const char *nl;

		run_child("list", assign[i], &c);
		assert_child_ok(&c, assign[i]);
		nl = strchr(c.err, '\n');
		ck_assert_msg(nl != NULL && nl[1] == '\0' &&
		    strncmp(c.err, "libkmem: KMEM_CACHE_EXPIRE=", 27) == 0,
		    "not one line: '%s'", c.err);
		ck_assert_msg(strstr(c.err, "rejected") != NULL &&
		    strstr(c.err, range) != NULL &&
		    strstr(c.err, "default") != NULL, "'%s'", c.err);
		ck_assert_int_eq(child_value(&c, "kmem_cache_expire"), dflt);
	}
}
END_TEST

/*
 * A bad value of a tunable that another variable has set already (the
 * audit frames of KMEM_DEBUG=audit=N) keeps that value, and says so.
 */
START_TEST(test_env_bad_keeps_set)
{
	const char *assigns[] = { "KMEM_DEBUG=audit=8",
	    "KMEM_DEBUG_AUDIT_FRAMES=bad", NULL };
	struct child c;

	run_child_env("list", assigns, &c);
	assert_child_ok(&c, "audit=8, frames bad");
	ck_assert_int_eq(child_value(&c, "kmem_debug_audit_frames"), 8);
	ck_assert_msg(strstr(c.err, "rejected") != NULL &&
	    strstr(c.err, "keeping 8\n") != NULL &&
	    strstr(c.err, "default") == NULL, "'%s'", c.err);
}
END_TEST

/* ------------------------------------------------ child modes */

#define CHILD_CHECK(cond) do {                                          \
	if (!(cond)) {                                                  \
		printf("failed at line %d: %s (errno %d)\n", __LINE__,  \
		    #cond, errno);                                      \
		return (1);                                             \
	}                                                               \
} while (0)

/* Print every tunable: "name value flags". */
static int
child_list(void)
{
	struct kmem_tunable t[MAXT];
	int n = kmem_tunable_list(t, MAXT);

	CHILD_CHECK(n > 0 && n <= MAXT);
	for (int i = 0; i < n; i++)
		printf("%s %" PRId64 " %d\n", t[i].name, t[i].value,
		    t[i].flags);
	return (0);
}

static int
flags_of(const char *name)
{
	struct kmem_tunable t[MAXT];
	int n = kmem_tunable_list(t, MAXT);

	for (int i = 0; i < n; i++)
		if (strcmp(t[i].name, name) == 0)
			return (t[i].flags);
	return (-1);
}

static const char *const start_only[] = { "kmem_percpu",
	"kmem_cache_kmem_threads", "kmem_alloc_max_class",
	"kmem_numa_policy" };

static int
child_start_only(void)
{
	struct taskq_stats ts;
	struct kmem_class_stats cs;
	struct kmem_cache_stats st;
	kmem_cache_t *cp;
	void *p;
	int64_t v;

	for (size_t i = 0; i < 4; i++)
		CHILD_CHECK(flags_of(start_only[i]) == 0);
	CHILD_CHECK(kmem_tunable_set_str("kmem_percpu", "lock") == 0);
	CHILD_CHECK(kmem_tunable_set("kmem_cache_kmem_threads", 3) == 0);
	CHILD_CHECK(kmem_tunable_set_str("kmem_alloc_max_class", "64K") == 0);
	CHILD_CHECK(kmem_tunable_set_str("kmem_numa_policy", "none") == 0);
	CHILD_CHECK(kmem_tunable_set("kmem_cache_kmem_threads", 2) == 0);

	cp = kmem_cache_create("start", 100, 0, NULL, NULL, NULL, NULL, NULL,
	    0);
	CHILD_CHECK(cp != NULL);
	p = kmem_alloc(1000, KM_SLEEP);
	CHILD_CHECK(p != NULL);
	kmem_free(p, 1000);
	for (size_t i = 0; i < 4; i++)
		CHILD_CHECK(flags_of(start_only[i]) == KMEM_TUNABLE_FIXED);

	/* The values were used. */
	CHILD_CHECK(mag_default_mode() == MAG_LOCK);
	CHILD_CHECK(taskq_stats(kmem_taskq(), &ts) == 0);
	CHILD_CHECK(ts.threads_max == 2);
	CHILD_CHECK(kmem_alloc_class_stats(kmem_alloc_class_count() - 1,
	    &cs) == 0);
	CHILD_CHECK(cs.size == 65536);
	CHILD_CHECK(kmem_cache_stats(cp, &st) == 0);
	CHILD_CHECK(st.nr_nodes == 1);

	/* And they stay. */
	errno = 0;
	CHILD_CHECK(kmem_tunable_set("kmem_cache_kmem_threads", 8) == -1 &&
	    errno == EBUSY);
	CHILD_CHECK(kmem_tunable_set_str("kmem_percpu", "rseq") == -1 &&
	    errno == EBUSY);
	CHILD_CHECK(kmem_tunable_set("kmem_alloc_max_class", 4096) == -1 &&
	    errno == EBUSY);
	CHILD_CHECK(kmem_tunable_set_str("kmem_numa_policy", "local") == -1 &&
	    errno == EBUSY);
	CHILD_CHECK(kmem_tunable_set("kmem_cache_kmem_threads", 2) == 0);
	CHILD_CHECK(kmem_tunable_get("kmem_cache_kmem_threads", &v) == 0 &&
	    v == 2);
	CHILD_CHECK(kmem_tunable_get("kmem_numa_policy", &v) == 0 && v == 2);
	/* Run-time tunables are not fixed by use. */
	CHILD_CHECK(flags_of("kmem_cache_expire") == KMEM_TUNABLE_RUNTIME);
	CHILD_CHECK(kmem_tunable_set("kmem_cache_expire", 3) == 0);
	kmem_cache_destroy(cp);
	printf("start-only ok\n");
	return (0);
}

/*
 * The per-CPU mode that libkmem uses is the one kmem_percpu reports: where
 * rseq is missing and it falls back to lock, the tunable says lock, and
 * setting it to lock asks for no change.
 */
static int
child_percpu_fallback(void)
{
	kmem_cache_t *cp;
	int64_t v;

	cp = kmem_cache_create("fallback", 64, 0, NULL, NULL, NULL, NULL,
	    NULL, 0);
	CHILD_CHECK(cp != NULL);
	CHILD_CHECK(flags_of("kmem_percpu") == KMEM_TUNABLE_FIXED);
	CHILD_CHECK(kmem_tunable_get("kmem_percpu", &v) == 0);
	CHILD_CHECK(v == (mag_default_mode() == MAG_LOCK ? KMEM_PERCPU_LOCK :
	    KMEM_PERCPU_RSEQ));
	CHILD_CHECK(kmem_tunable_set("kmem_percpu", v) == 0);
	kmem_cache_destroy(cp);
	printf("percpu-fallback %s ok\n", v == KMEM_PERCPU_LOCK ? "lock" :
	    "rseq");
	return (0);
}

/* Wait (at most about 'limit' seconds) until reap_passes() >= want. */
static bool
wait_for_passes(uint64_t want, double limit)
{
	double t0 = test_now();

	while (reap_passes() < want) {
		if (test_now() - t0 > limit)
			return (false);
		usleep(20000);
	}
	return (true);
}

static int
child_reap_interval(void)
{
	kmem_cache_t *cp;
	uint64_t p;

	/* The chain's first tick is an hour away. */
	CHILD_CHECK(kmem_tunable_set("kmem_reap_interval", 3600) == 0);
	cp = kmem_cache_create("tun_reap", 64, 0, NULL, NULL, NULL, NULL,
	    NULL, 0);
	CHILD_CHECK(cp != NULL);
	usleep(100000);
	p = reap_passes();
	CHILD_CHECK(p == 0);
	CHILD_CHECK(kmem_tunable_set("kmem_reap_interval", 1) == 0);
	CHILD_CHECK(wait_for_passes(p + 2, 30));

	/* Off: at most the pass under way finishes. */
	CHILD_CHECK(kmem_tunable_set("kmem_reap_interval", 0) == 0);
	usleep(100000);
	p = reap_passes();
	sleep(3);
	CHILD_CHECK(reap_passes() <= p + 1);

	/* On again. */
	CHILD_CHECK(kmem_tunable_set_str("kmem_reap_interval", "1") == 0);
	p = reap_passes();
	CHILD_CHECK(wait_for_passes(p + 1, 30));
	kmem_cache_destroy(cp);
	printf("reap-interval ok\n");
	return (0);
}

static atomic_bool race_stop;

static void *
race_setter(void *arg)
{
	int64_t k = (int64_t)(intptr_t)arg;

	while (!atomic_load(&race_stop)) {
		(void) kmem_tunable_set("kmem_cache_kmem_threads", 1 + k % 3);
		k++;
	}
	return (NULL);
}

static int
child_start_race(void)
{
	pthread_t th[2];
	struct taskq_stats ts;
	kmem_cache_t *cp;
	int64_t v;

	for (intptr_t i = 0; i < 2; i++)
		CHILD_CHECK(pthread_create(&th[i], NULL, race_setter,
		    (void *)i) == 0);
	usleep(1000);
	cp = kmem_cache_create("race", 64, 0, NULL, NULL, NULL, NULL, NULL, 0);
	CHILD_CHECK(cp != NULL);
	usleep(1000);
	atomic_store(&race_stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHILD_CHECK(kmem_tunable_get("kmem_cache_kmem_threads", &v) == 0);
	CHILD_CHECK(taskq_stats(kmem_taskq(), &ts) == 0);
	if (ts.threads_max != (uint64_t)v) {
		printf("taskq has %" PRIu64 " threads, the tunable says %"
		    PRId64 "\n", ts.threads_max, v);
		return (1);
	}
	kmem_cache_destroy(cp);
	printf("start-race ok\n");
	return (0);
}

int
main(int argc, char **argv)
{
	Suite *s;
	TCase *api, *rt, *env;

	if (argc == 3 && strcmp(argv[1], "--child") == 0) {
		if (strcmp(argv[2], "list") == 0)
			return (child_list());
		if (strcmp(argv[2], "start-only") == 0)
			return (child_start_only());
		if (strcmp(argv[2], "start-race") == 0)
			return (child_start_race());
		if (strcmp(argv[2], "reap-interval") == 0)
			return (child_reap_interval());
		if (strcmp(argv[2], "percpu-fallback") == 0)
			return (child_percpu_fallback());
		return (2);
	}
	s = suite_create("tunables");
	api = tcase_create("api");
	tcase_add_test(api, test_list);
	tcase_add_test(api, test_list_man_order);
	tcase_add_test(api, test_get_set_each);
	tcase_add_test(api, test_errors);
	tcase_add_test(api, test_fixed_once_used);
	tcase_add_test(api, test_debug_flag_words);
	suite_add_tcase(s, api);
	rt = tcase_create("runtime");
	tcase_set_timeout(rt, 120);
	tcase_add_test(rt, test_runtime_cache_sizes);
	tcase_add_test(rt, test_runtime_reap_interval);
	tcase_add_test(rt, test_runtime_memory_limit);
	suite_add_tcase(s, rt);
	env = tcase_create("environment");
	tcase_set_timeout(env, 120);
	tcase_add_test(env, test_start_only);
	tcase_add_test(env, test_start_race);
	tcase_add_test(env, test_percpu_fallback);
	tcase_add_test(env, test_env_good);
	tcase_add_test(env, test_env_bad);
	tcase_add_test(env, test_env_bad_long);
	tcase_add_test(env, test_env_bad_keeps_set);
	suite_add_tcase(s, env);
	return (test_run_suite(s));
}
