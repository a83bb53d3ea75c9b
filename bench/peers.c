/*
 * peers.c - run a benchmark child per allocator; see peers.h.
 */
#define _GNU_SOURCE
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

	for (size_t i = 0; i < sizeof (dirs) / sizeof (dirs[0]); i++) {
		snprintf(path, sizeof (path), "%s/%s", dirs[i], lib);
		if (access(path, R_OK) == 0)
			return (path);
	}
	return (NULL);
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
