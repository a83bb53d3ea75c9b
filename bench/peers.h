/*
 * peers.h - running a benchmark's measurements in child processes, one
 * per allocator: libkmem, glibc malloc, and jemalloc, mimalloc and
 * tcmalloc loaded with LD_PRELOAD (Debian's libjemalloc2, libmimalloc2.0,
 * libtcmalloc-minimal4), all in the same run.  A peer's library is a
 * file name looked up in the system's library directories, or a path.
 */
#ifndef BENCH_PEERS_H
#define BENCH_PEERS_H

#include <stdbool.h>

struct bench_peer {
	const char *name;       /* what tables and JSON call it */
	const char *lib;        /* library to preload (name or path), or NULL */
	const char *env;        /* NAME=value for the child, or NULL */
};

/*
 * Run argv (argv[0] should be the benchmark itself, /proc/self/exe is
 * executed) with the peer's library preloaded and its environment
 * variable set, and pass each line the child prints to line().  A peer
 * whose library is not installed is skipped with a note on stderr.
 * Returns 0, or -1 when the peer was skipped or its child failed.
 */
int bench_run_peer(const struct bench_peer *peer, char *const argv[],
    void (*line)(const char *text, void *arg), void *arg);

/*
 * The path of a library built in this tree, such as libkmem_malloc.so:
 * dir/NAME when dir is not NULL, else $KMEMBENCH_LIBDIR/NAME when that
 * is set, else lib/.libs/NAME found from the directory of /proc/self/exe
 * (../lib/.libs for bench/NAME, ../../lib/.libs for libtool's bench/.libs
 * copy of it).  Returns a string to free(), or NULL when it is not there.
 */
char *bench_build_lib(const char *name, const char *dir);

/*
 * The libkmem-malloc peer's library (libkmem_malloc.so, by
 * bench_build_lib()).  When it is not there and *wanted, says so on
 * stderr and clears *wanted.
 */
char *bench_kmalloc_lib(const char *dir, bool *wanted);

/*
 * A number option: arg is all decimal digits (no sign, nothing after) and
 * at most max.  Returns true and sets *out, or false.
 */
bool bench_num(const char *arg, unsigned long long max,
    unsigned long long *out);

#endif /* BENCH_PEERS_H */
