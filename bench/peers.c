/*
 * peers.c - run a benchmark child per allocator; see peers.h.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "peers.h"

static const char *
bench_find_lib(const char *lib)
{
	static char path[512];
	static const char *const dirs[] = {
		"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
		"/usr/lib64", "/usr/lib", "/usr/local/lib",
	};

	if (strchr(lib, '/') != NULL) {
		snprintf(path, sizeof (path), "%s", lib);
		return (access(path, R_OK) == 0 ? path : NULL);
	}
	for (size_t i = 0; i < sizeof (dirs) / sizeof (dirs[0]); i++) {
		snprintf(path, sizeof (path), "%s/%s", dirs[i], lib);
		if (access(path, R_OK) == 0)
			return (path);
	}
	return (NULL);
}

static char *
bench_lib_in(const char *dir, const char *name)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof (path), "%s/%s", dir, name) >=
	    (int)sizeof (path) || access(path, R_OK) != 0)
		return (NULL);
	return (realpath(path, NULL));
}

char *
bench_build_lib(const char *name, const char *dir)
{
	static const char *const up[] = { "../lib/.libs", "../../lib/.libs" };
	char exe[PATH_MAX], sub[PATH_MAX + 32], *slash, *lib;
	ssize_t n;

	if (dir == NULL)
		dir = getenv("KMEMBENCH_LIBDIR");
	if (dir != NULL && dir[0] != '\0')
		return (bench_lib_in(dir, name));
	n = readlink("/proc/self/exe", exe, sizeof (exe) - 1);
	if (n <= 0)
		return (NULL);
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) == NULL)
		return (NULL);
	*slash = '\0';
	for (size_t i = 0; i < sizeof (up) / sizeof (up[0]); i++) {
		snprintf(sub, sizeof (sub), "%s/%s", exe, up[i]);
		if ((lib = bench_lib_in(sub, name)) != NULL)
			return (lib);
	}
	return (NULL);
}

char *
bench_kmalloc_lib(const char *dir, bool *wanted)
{
	char *lib = bench_build_lib("libkmem_malloc.so", dir);

	if (lib == NULL && *wanted) {
		fprintf(stderr, "libkmem-malloc: libkmem_malloc.so not found "
		    "(lib/.libs of this build tree, -L or KMEMBENCH_LIBDIR); "
		    "skipped\n");
		*wanted = false;
	}
	return (lib);
}

int
bench_run_peer(const struct bench_peer *peer, char *const argv[],
    void (*line)(const char *text, void *arg), void *arg)
{
	const char *lib = NULL;
	char buf[4096];
	int fds[2], status;
	pid_t pid;
	FILE *in;

	if (peer->lib != NULL && (lib = bench_find_lib(peer->lib)) == NULL) {
		fprintf(stderr, "%s not found (%s); skipped\n", peer->name,
		    peer->lib);
		return (-1);
	}
	if (pipe(fds) != 0)
		return (-1);
	pid = fork();
	if (pid < 0)
		return (-1);
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		if (lib != NULL)
			setenv("LD_PRELOAD", lib, 1);
		else
			unsetenv("LD_PRELOAD");
		if (peer->env != NULL)
			putenv((char *)peer->env);
		execv("/proc/self/exe", argv);
		perror("exec");
		_exit(127);
	}
	close(fds[1]);
	in = fdopen(fds[0], "r");
	while (fgets(buf, sizeof (buf), in) != NULL)
		line(buf, arg);
	fclose(in);
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "%s: child failed (status %d)\n", peer->name,
		    status);
		return (-1);
	}
	return (0);
}

bool
bench_num(const char *arg, unsigned long long max, unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)arg[0]))    /* strtoull takes "-1" */
		return (false);
	errno = 0;
	v = strtoull(arg, &end, 10);
	if (*end != '\0' || errno != 0 || v > max)
		return (false);
	*out = v;
	return (true);
}
