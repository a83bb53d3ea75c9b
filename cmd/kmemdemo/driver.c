/*
 * driver.c - kmemdemo, libkmem's demonstration (make demo).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * It runs the key-value server workload of kmemdemo.c twice, each time in
 * a child process for the same number of seconds:
 *
 *   1. on libkmem (this program again, with --serve), while kmemstat -m
 *      watches it once a second: its caches, objects in use, magazine
 *      hit rate, depot traffic and constructor calls;
 *   2. on plain malloc (kmemdemo-malloc, the same sources built with
 *      -DKMEMDEMO_MALLOC), where every connection is initialised and
 *      destroyed on each use;
 *
 * then prints the throughput (requests per second) and the peak resident
 * memory of both, side by side.  kmemstat and kmemdemo-malloc are found
 * next to this program in the build tree (cmd/kmemstat/, cmd/kmemdemo/).
 *
 * usage: kmemdemo [-d seconds] [-t threads] [-k keys]
 *        (-d: seconds per allocator, default 10; make check uses 2)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kmemdemo.h"
#include "stats.h"              /* KST_FILE_PREFIX, KST_DEFAULT_DIR */

struct result {
	double seconds;
	uint64_t ops, keys, errors;
	long maxrss_kb;
	int threads;
	bool ok;
};

static char self_dir[PATH_MAX];

static void
sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* The directory this program is in, or exit. */
static void
find_self(void)
{
	ssize_t n = readlink("/proc/self/exe", self_dir,
	    sizeof (self_dir) - 1);
	char *slash;

	if (n <= 0) {
		fprintf(stderr, "kmemdemo: cannot read /proc/self/exe: %s\n",
		    strerror(errno));
		exit(1);
	}
	self_dir[n] = '\0';
	slash = strrchr(self_dir, '/');
	if (slash != NULL)
		*slash = '\0';
}

/* Start argv with stdout to a pipe; *out gets its read end. */
static pid_t
start(char *const argv[], int *out)
{
	int fds[2];
	pid_t pid;

	if (pipe(fds) != 0) {
		fprintf(stderr, "kmemdemo: pipe: %s\n", strerror(errno));
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "kmemdemo: fork: %s\n", strerror(errno));
		exit(1);
	}
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], argv);
		fprintf(stderr, "kmemdemo: cannot run %s: %s\n", argv[0],
		    strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	*out = fds[0];
	return (pid);
}

/* Wait for pid, read its result line from fd. */
static void
finish(const char *what, pid_t pid, int fd, struct result *res)
{
	char buf[4096], alloc[32];
	size_t len = 0;
	ssize_t n;
	int status = 0;
	pid_t w;
	char *line;

	memset(res, 0, sizeof (*res));
	while (len < sizeof (buf) - 1 &&
	    ((n = read(fd, buf + len, sizeof (buf) - 1 - len)) > 0 ||
	    (n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	buf[len] = '\0';
	close(fd);
	while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (w != pid) {
		fprintf(stderr, "kmemdemo: waitpid %s: %s\n", what,
		    strerror(errno));
		return;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "kmemdemo: %s failed (%s %d)\n", what,
		    WIFEXITED(status) ? "exit status" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) :
		    WTERMSIG(status));
		return;
	}
	line = strstr(buf, "result ");
	if (line == NULL || sscanf(line, "result allocator=%31s threads=%d "
	    "seconds=%lf ops=%" SCNu64 " keys=%" SCNu64 " errors=%" SCNu64
	    " maxrss_kb=%ld", alloc, &res->threads, &res->seconds, &res->ops,
	    &res->keys, &res->errors, &res->maxrss_kb) != 7 ||
	    res->seconds <= 0) {
		fprintf(stderr, "kmemdemo: %s printed no result line\n", what);
		return;
	}
	res->ok = true;
}

/*
 * Read pid's output up to its "serving" line: its keys are loaded and its
 * clock has started.  Reads a byte at a time, so that finish() still
 * finds everything after it.  False at end of file.
 */
static bool
wait_serving(int fd)
{
	char line[64];
	size_t len = 0;
	ssize_t n;
	char c;

	while ((n = read(fd, &c, 1)) == 1 || (n < 0 && errno == EINTR)) {
		if (n != 1)
			continue;
		if (c != '\n') {
			if (len < sizeof (line) - 1)
				line[len++] = c;
			continue;
		}
		line[len] = '\0';
		if (strcmp(line, "serving") == 0)
			return (true);
		len = 0;
	}
	return (false);
}

/* Wait until pid publishes its statistics region (at most 10 s). */
static bool
wait_region(pid_t pid)
{
	const char *dir = getenv("KMEM_STATS_DIR");
	char path[PATH_MAX];
	struct stat st;
	siginfo_t si;

	if (dir == NULL || dir[0] == '\0')
		dir = KST_DEFAULT_DIR;
	snprintf(path, sizeof (path), "%s/" KST_FILE_PREFIX "%ld", dir,
	    (long)pid);
	for (int i = 0; i < 1000; i++) {
		if (stat(path, &st) == 0 && st.st_size > 0)
			return (true);
		/* Gone already?  (WNOWAIT: finish() collects it.) */
		memset(&si, 0, sizeof (si));
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG |
		    WNOWAIT) != 0 || si.si_pid != 0)
			return (false);
		sleep_s(0.01);
	}
	return (false);
}

/* A usage error (exit 2), or the summary asked for with -h (exit 0). */
static void __attribute__((noreturn))
usage(bool asked)
{
	FILE *f = asked ? stdout : stderr;

	fprintf(f, "usage: kmemdemo [-d seconds] [-t threads] [-k keys]\n");
	if (asked) {
		fprintf(f, "  -d  seconds per allocator, 2 to 600 (default "
		    "10)\n"
		    "  -t  server threads, 1 to %d (default: 2 per CPU, 16 "
		    "above 8 CPUs)\n"
		    "  -k  keys in the store, 1 to %d (default 200000)\n",
		    KMEMDEMO_MAX_THREADS, KMEMDEMO_MAX_KEYS);
		exit(fflush(f) == 0 && !ferror(f) ? 0 : 1);
	}
	exit(2);
}

int
main(int argc, char **argv)
{
	char secs_arg[32] = "10", thr_arg[32] = "", keys_arg[32] = "200000";
	char self[PATH_MAX + 16], mallocd[PATH_MAX + 32];
	char kmemstat[PATH_MAX + 32], pid_arg[32], count_arg[32];
	char *sargv[12], *margv[12], *kargv[16];
	struct result rk, rm;
	long secs = 10;
	uint64_t nkeys;
	int opt, fd, si = 0, mi = 0, nthreads;
	pid_t pid, kpid;
	char *end;

	if (argc > 1 && strcmp(argv[1], "--serve") == 0)
		return (kmemdemo_serve(argc - 1, argv + 1));

	while ((opt = getopt(argc, argv, "d:t:k:h")) != -1) {
		switch (opt) {
		case 'd':
			secs = strtol(optarg, &end, 10);
			if (*end != '\0' || secs < 2 || secs > 600) {
				fprintf(stderr, "kmemdemo: -d wants 2 to 600 "
				    "seconds, got '%s'\n", optarg);
				return (2);
			}
			snprintf(secs_arg, sizeof (secs_arg), "%ld", secs);
			break;
		case 't':	/* checked here: one line, before any run */
			if (kmemdemo_threads_arg("kmemdemo", optarg,
			    &nthreads) != 0)
				return (2);
			snprintf(thr_arg, sizeof (thr_arg), "%d", nthreads);
			break;
		case 'k':
			if (kmemdemo_keys_arg("kmemdemo", optarg, &nkeys) != 0)
				return (2);
			snprintf(keys_arg, sizeof (keys_arg), "%" PRIu64,
			    nkeys);
			break;
		case 'h':
			usage(true);
		default:
			usage(false);
		}
	}
	if (optind != argc)
		usage(false);
	find_self();
	snprintf(self, sizeof (self), "%s/kmemdemo", self_dir);
	snprintf(mallocd, sizeof (mallocd), "%s/kmemdemo-malloc", self_dir);
	snprintf(kmemstat, sizeof (kmemstat), "%s/../kmemstat/kmemstat",
	    self_dir);
	if (access(mallocd, X_OK) != 0 || access(kmemstat, X_OK) != 0) {
		fprintf(stderr, "kmemdemo: %s and %s must be built (make)\n",
		    mallocd, kmemstat);
		return (1);
	}

	sargv[si++] = self;
	sargv[si++] = (char *)"--serve";
	margv[mi++] = mallocd;
#define	BOTH(a) do { sargv[si++] = (a); margv[mi++] = (a); } while (0)
	BOTH((char *)"-d");
	BOTH(secs_arg);
	BOTH((char *)"-k");
	BOTH(keys_arg);
	if (thr_arg[0] != '\0') {
		BOTH((char *)"-t");
		BOTH(thr_arg);
	}
#undef	BOTH
	sargv[si] = margv[mi] = NULL;

	printf("kmemdemo: the core of an in-memory key-value server - "
	    "connections (each with\na mutex and a condition variable), "
	    "request buffers of 4 sizes, hash nodes and\nvalues of 16 "
	    "bytes to 2 KiB - driven by worker threads with GET/PUT/DEL "
	    "for %ld s\non libkmem, then %ld s on plain malloc.\n\n",
	    secs, secs);
	fflush(stdout);

	/*
	 * 1. libkmem, watched by kmemstat from when it serves requests (the
	 * caches would otherwise show loading the keys, on a slow machine).
	 */
	pid = start(sargv, &fd);
	printf("== libkmem: kmemdemo --serve (pid %ld), watched every second "
	    "by kmemstat -m,\n   the magazine view, busiest caches first:\n",
	    (long)pid);
	fflush(stdout);
	if (wait_serving(fd) && wait_region(pid)) {
		/*
		 * Samples at 1, 2, ... s, the last two seconds before the end:
		 * the server started and served before this, and a sample
		 * asked for as it exits finds it gone (kmemstat says so).
		 */
		long count = secs > 2 ? secs - 2 : 1;

		sleep_s(1.0);
		snprintf(pid_arg, sizeof (pid_arg), "%ld", (long)pid);
		snprintf(count_arg, sizeof (count_arg), "%ld", count);
		kargv[0] = kmemstat;
		kargv[1] = (char *)"-p";
		kargv[2] = pid_arg;
		kargv[3] = (char *)"-m";
		kargv[4] = (char *)"-w";
		kargv[5] = (char *)"-s";
		kargv[6] = (char *)"allocs";
		kargv[7] = (char *)"-n";
		kargv[8] = (char *)"10";
		kargv[9] = (char *)"1";
		kargv[10] = count_arg;
		kargv[11] = NULL;
		printf("$ kmemstat");
		for (int i = 1; kargv[i] != NULL; i++)
			printf(" %s", kargv[i]);
		printf("\n");
		fflush(stdout);
		kpid = fork();
		if (kpid == 0) {
			execv(kmemstat, kargv);
			_exit(127);
		}
		if (kpid > 0)
			while (waitpid(kpid, NULL, 0) < 0 && errno == EINTR)
				;
	} else {
		printf("(its statistics region did not appear: no kmemstat "
		    "view)\n");
	}
	finish("kmemdemo --serve", pid, fd, &rk);
	if (!rk.ok)
		return (1);

	/* 2. malloc. */
	printf("\n== malloc: kmemdemo-malloc, the same program on malloc/free "
	    "(%ld s)\n", secs);
	fflush(stdout);
	pid = start(margv, &fd);
	finish("kmemdemo-malloc", pid, fd, &rm);
	if (!rm.ok)
		return (1);

	double ok = (double)rk.ops / rk.seconds, om = (double)rm.ops /
	    rm.seconds;

	printf("\n%d worker threads, %s keys, %ld s each, on %ld online "
	    "CPUs:\n\n", rk.threads, keys_arg, secs,
	    sysconf(_SC_NPROCESSORS_ONLN));
	printf("%-24s %14s %14s %16s\n", "", "libkmem", "malloc",
	    "libkmem/malloc");
	printf("%-24s %14.0f %14.0f %15.2fx\n", "requests per second", ok,
	    om, om > 0 ? ok / om : 0);
	printf("%-24s %14.1f %14.1f %15.2fx\n", "peak RSS (MiB)",
	    (double)rk.maxrss_kb / 1024, (double)rm.maxrss_kb / 1024,
	    rm.maxrss_kb > 0 ? (double)rk.maxrss_kb / (double)rm.maxrss_kb :
	    0);
	printf("%-24s %14" PRIu64 " %14" PRIu64 "\n", "keys stored at the end",
	    rk.keys, rm.keys);
	printf("\nThroughput: higher is better; memory: lower is better.  "
	    "One run each on a\nmachine that may be busy: bench/report "
	    "(make bench) measures with repeats.\n");
	return (0);
}
