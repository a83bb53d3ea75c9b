/*
 * kmemstat - show the kmem caches of running processes, from the
 * statistics regions that libkmem publishes (see kmemstat(1), and the
 * layout in libkmem(7) STATISTICS REGION).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   kmemstat                  the processes that publish a region (and
 *                             remove the regions of dead processes)
 *   kmemstat -p PID           one row per cache, like ::kmastat / slabtop
 *   kmemstat -p PID -m        the magazine view: hits, depot traffic
 *   kmemstat -p PID -c|-T|-q  kmem_alloc classes, tunables, task queues
 *   kmemstat -p PID -r        ask the process to reap now
 *   ... [interval [count]]    repeat, with rates per second
 *
 * Every error is one line on stderr and exit status 1; usage errors 2.
 * Regions are read through region.c, which checks everything.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "region.h"

#define NS_PER_SEC      1000000000LL
#define REQUEST_WAIT_NS (5 * NS_PER_SEC)

static const char *progname = "kmemstat";
static const char *opt_dir;
static long opt_pid = -1;
static bool opt_json, opt_classes, opt_tunables, opt_taskqs;
static bool opt_reap, opt_wait, opt_mags;
static const char *opt_sort = "memtotal";
static bool opt_sort_given;
static long opt_limit = -1;

static void
vwarn(const char *fmt, va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "%s: ", progname);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void __attribute__((format(printf, 1, 2), noreturn))
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	exit(1);
}

static void __attribute__((format(printf, 1, 2)))
warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
}

/*
 * Flush standard output, or die: a report that could not be written (a
 * full disk, say) is an error, not lost without a word.
 */
static void
flush_stdout(void)
{
	errno = 0;
	if (fflush(stdout) != 0 || ferror(stdout))
		die("standard output: %s", errno != 0 ? strerror(errno) :
		    "write error");
}

/* A usage error (exit 2), or the summary asked for with -h (exit 0). */
static void __attribute__((noreturn))
usage(const char *why, bool asked)
{
	FILE *f = asked ? stdout : stderr;

	if (why != NULL)
		fprintf(stderr, "%s: %s\n", progname, why);
	fprintf(f,
	    "usage: %s [-d dir] [-j] [interval [count]]\n"
	    "       %s [-d dir] -p pid [-cmTq] [-jw] [-s key] [-n rows] "
	    "[interval [count]]\n"
	    "       %s [-d dir] -p pid -r\n"
	    "sort keys: name size inuse cached total meminuse memtotal "
	    "slabs allocs fails\n"
	    "           emergency deadlocks\n", progname, progname, progname);
	if (asked)
		flush_stdout();
	exit(asked ? 0 : 2);
}

static int64_t
now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ((int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec);
}

static void
sleep_ns(int64_t ns)
{
	struct timespec ts = { ns / NS_PER_SEC, ns % NS_PER_SEC };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A positive decimal integer, or -1. */
static long
parse_count(const char *s, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < 1 || v > max)
		return (-1);
	return (v);
}

/* ------------------------------------------------------------ processes */

static bool
proc_exists(long pid)
{
	return (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/*
 * Has process pid exited, its parent not having waited for it yet (a
 * zombie)?  Not when only its main thread has exited: the other threads
 * of a live process keep a count above 1.
 */
static bool
proc_zombie(long pid)
{
	char path[64], line[256], state = 0;
	long threads = 0;
	FILE *f;

	snprintf(path, sizeof (path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return (false);
	while (fgets(line, sizeof (line), f) != NULL) {
		(void) sscanf(line, "State: %c", &state);
		(void) sscanf(line, "Threads: %ld", &threads);
	}
	fclose(f);
	return ((state == 'Z' || state == 'X') && threads <= 1);
}

static const char *printable(const char *s, char *buf, size_t len);

/* The process's command name, printable (see printable), or "?". */
static void
proc_comm(long pid, char *buf, size_t len)
{
	char path[64], raw[64];
	FILE *f;

	snprintf(path, sizeof (path), "/proc/%ld/comm", pid);
	snprintf(buf, len, "?");
	if ((f = fopen(path, "r")) == NULL)
		return;
	if (fgets(raw, (int)sizeof (raw), f) != NULL) {
		raw[strcspn(raw, "\n")] = '\0';
		(void) printable(raw, buf, len);
	}
	fclose(f);
}

/*
 * The process that thread pid belongs to (its Tgid), which is pid for the
 * main thread or a single-threaded process; 0 if unknown.
 */
static long
proc_tgid(long pid)
{
	char path[64], line[256];
	long tgid = 0;
	FILE *f;

	snprintf(path, sizeof (path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return (0);
	while (fgets(line, sizeof (line), f) != NULL)
		if (sscanf(line, "Tgid: %ld", &tgid) == 1)
			break;
	fclose(f);
	return (tgid);
}

/*
 * Can the process have created a file of owner uid?  Its publisher
 * creates its region with its own (effective) user id; a file under the
 * region's name that another user put in a directory all may write (the
 * sticky /dev/shm) is not its region, whatever it holds.  root's files
 * pass: a daemon may drop its privileges after its region was created.
 */
static bool
proc_may_own(long pid, uid_t uid)
{
	char path[64], line[256];
	unsigned long id[4];
	bool may = false;
	FILE *f;

	if (uid == 0)
		return (true);
	snprintf(path, sizeof (path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return (false);
	while (fgets(line, sizeof (line), f) != NULL) {
		if (sscanf(line, "Uid: %lu %lu %lu %lu", &id[0], &id[1],
		    &id[2], &id[3]) == 4) {
			for (int i = 0; i < 4; i++)
				may |= id[i] == (unsigned long)uid;
			break;
		}
	}
	fclose(f);
	return (may);
}

/* Field 22 of /proc/PID/stat (start time, clock ticks); 0 if unknown. */
static uint64_t
proc_start(long pid)
{
	char path[64], buf[1024];
	FILE *f;
	size_t n;

	snprintf(path, sizeof (path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return (0);
	n = fread(buf, 1, sizeof (buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (stats_stat_starttime(buf));
}

/*
 * Does a live process image hold the region open on fd?  The publisher
 * holds an exclusive flock on it; a stale region has none.
 */
static bool
region_live(int fd)
{
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		(void) flock(fd, LOCK_UN);
		return (false);
	}
	return (errno == EWOULDBLOCK);
}

/* The region of a dead process (or of an earlier owner of its pid)? */
static bool
region_dead(long pid, const struct region *r)
{
	uint64_t start;

	if (!proc_exists(pid))
		return (true);
	start = proc_start(pid);
	return (r != NULL && r->hdr.proc_start != 0 && start != 0 &&
	    start != r->hdr.proc_start);
}

/* ------------------------------------------------------------ output */

/* Bytes, in the units slabtop and df use. */
static const char *
human(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "KMGTPE";
	double d = (double)v;
	int u = -1;

	if (v < 1024) {
		snprintf(buf, len, "%" PRIu64, v);
		return (buf);
	}
	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	if (d < 10)
		snprintf(buf, len, "%.1f%c", d, units[u]);
	else
		snprintf(buf, len, "%.0f%c", d, units[u]);
	return (buf);
}

/*
 * The bytes of the UTF-8 sequence at p (1 to 4), or 0 if it is not one.
 * A lead byte limits its second byte further (RFC 3629): E0 and F0 would
 * otherwise start overlong forms, ED a surrogate, F4 a code point past
 * U+10FFFF.
 */
static int
utf8_len(const unsigned char *p)
{
	unsigned char c = *p;
	int n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 :
	    (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
	bool ok = n >= 0 && c != 0xc0 && c != 0xc1 && c <= 0xf4;
	unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
	unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;

	if (ok && n > 0)
		ok = p[1] >= lo && p[1] <= hi;
	for (int i = 2; ok && i <= n; i++)
		ok = (p[i] & 0xc0) == 0x80;
	return (ok ? n + 1 : 0);
}

/* Is the n-byte UTF-8 sequence at p a C1 control (U+0080 to U+009F)? */
static bool
utf8_c1(const unsigned char *p, int n)
{
	return (n == 2 && p[0] == 0xc2 && p[1] < 0xa0);
}

/*
 * A JSON string: escapes (of control characters, the C1 ones of U+0080
 * to U+009F too), and U+FFFD for bytes that are not UTF-8.
 */
static void
json_str(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	putchar('"');
	while (*p != '\0') {
		unsigned char c = *p;
		int n = utf8_len(p);

		if (n == 0) {
			fputs("\\ufffd", stdout);
			p++;
			continue;
		}
		if (utf8_c1(p, n)) {
			printf("\\u%04x", p[1]);      /* U+0080..U+009F */
			p += n;
			continue;
		}
		if (n > 1) {
			fwrite(p, 1, (size_t)n, stdout);
			p += n;
			continue;
		}
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
		p++;
	}
	putchar('"');
}

/*
 * A name for a table: a control character (C0, DEL, or C1: U+0080 to
 * U+009F, which a terminal may take for CSI and the like) or a byte that
 * is not UTF-8 (0x9B alone is CSI to a terminal in an 8-bit mode) shown
 * as '?'.  Names come from the process, and the terminal may be root's.
 */
static const char *
printable(const char *s, char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (*p != '\0' && i + 1 < len) {
		int n = utf8_len(p);

		if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f)) ||
		    utf8_c1(p, n)) {
			buf[i++] = '?';
			p += n != 0 ? n : 1;
			continue;
		}
		if (i + (size_t)n >= len)
			break;
		memcpy(buf + i, p, (size_t)n);
		i += (size_t)n;
		p += n;
	}
	buf[i] = '\0';
	return (buf);
}

static double
ns_to_s(int64_t ns)
{
	return ((double)ns / NS_PER_SEC);
}

/* ------------------------------------------------------------ opening */

static char region_path_buf[PATH_MAX];

/* PID's region: <dir>/libkmem.<pid>, or die if that is too long a path. */
static const char *
region_path(long pid)
{
	if (snprintf(region_path_buf, sizeof (region_path_buf), "%s/"
	    KST_FILE_PREFIX "%ld", opt_dir, pid) >=
	    (int)sizeof (region_path_buf))
		die("%s/" KST_FILE_PREFIX "%ld: %s", opt_dir, pid,
		    strerror(ENAMETOOLONG));
	return (region_path_buf);
}

/* Open PID's region (for writing too: rw), or die saying why not. */
static int
region_open(long pid, bool rw)
{
	const char *path = region_path(pid);
	char comm[64];
	struct stat st;
	long tgid;
	int fd;

	if (!proc_exists(pid)) {
		if (lstat(path, &st) == 0)
			die("no process %ld (its stale region %s is left; "
			    "%s without -p removes it)", pid, path, progname);
		die("no process %ld", pid);
	}
	if (proc_zombie(pid)) {
		proc_comm(pid, comm, sizeof (comm));
		die("process %ld (%s) has exited (a zombie: its parent has not "
		    "waited for it yet)", pid, comm);
	}
	fd = open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK);
	if (fd < 0) {
		int err = errno;

		proc_comm(pid, comm, sizeof (comm));
		/* No directory at all: say so, as the list does. */
		if (err == ENOENT && stat(opt_dir, &st) != 0)
			die("cannot read %s: %s", opt_dir, strerror(errno));
		/* A thread's id: its process publishes, under its own. */
		if (err == ENOENT && (tgid = proc_tgid(pid)) > 0 &&
		    tgid != pid)
			die("%ld is a thread of process %ld, not a process id",
			    pid, tgid);
		if (err == ENOENT)
			die("process %ld (%s) publishes no statistics region "
			    "in %s: it does not use libkmem, runs with "
			    "KMEM_STATS=0, or uses another KMEM_STATS_DIR",
			    pid, comm, opt_dir);
		if (err == EACCES || err == EPERM)
			die("%s: permission denied: only the owner of process "
			    "%ld (%s) and root may %s its region", path, pid,
			    comm, rw ? "write" : "read");
		if (err == ELOOP)
			die("%s: a symbolic link, not a statistics region",
			    path);
		die("%s: %s", path, strerror(err));
	}
	if (fstat(fd, &st) != 0)
		die("%s: %s", path, strerror(errno));
	if (!proc_may_own(pid, st.st_uid)) {
		proc_comm(pid, comm, sizeof (comm));
		die("%s: not the region of process %ld (%s): the file belongs "
		    "to user %ju, the process to another", path, pid, comm,
		    (uintmax_t)st.st_uid);
	}
	return (fd);
}

/* Read the region on fd (PID's) or die saying what is wrong with it. */
static void
region_load(int fd, long pid, struct region *r)
{
	char err[256];

	if (region_read(fd, r, err, sizeof (err)) != REGION_OK)
		die("%s: %s", region_path(pid), err);
	if (r->hdr.pid != pid)
		die("%s: corrupt: it is the region of process %" PRId64
		    ", not %ld", region_path(pid), r->hdr.pid, pid);
}

/* A region that its process no longer publishes: die. */
static void
region_check_live(int fd, long pid, const struct region *r)
{
	char comm[KST_NAMELEN];

	if (region_live(fd))
		return;
	if (region_dead(pid, r))
		die("%s is stale: process %ld is not the one that published "
		    "it (%s without -p removes it)", region_path(pid), pid,
		    progname);
	die("%s is stale: process %ld (%s) no longer publishes it (it "
	    "exec'd another program, or its publisher stopped)",
	    region_path(pid), pid, printable(r->hdr.comm, comm,
	    sizeof (comm)));
}

static const char *sigbus_path;

static void
sigbus(int sig)
{
	static const char msg[] = ": the region was truncated while in use\n";

	(void) sig;
	(void) !write(STDERR_FILENO, "kmemstat: ", 10);
	(void) !write(STDERR_FILENO, sigbus_path, strlen(sigbus_path));
	(void) !write(STDERR_FILENO, msg, sizeof (msg) - 1);
	_exit(1);
}

/*
 * Ask the process through its region (reap_request or publish_request)
 * and wait for its answer: 0; -1 when it did not answer in time; 1 when
 * the region went stale meanwhile (the process exec'd: its new image
 * publishes a region of its own).
 */
static int
region_request(int fd, long pid, bool reap)
{
	struct kst_header *h;
	_Atomic uint64_t *req, *done;
	uint64_t want;
	int64_t deadline = now_ns(CLOCK_MONOTONIC) + REQUEST_WAIT_NS;
	int rc = -1;

	sigbus_path = region_path(pid);
	signal(SIGBUS, sigbus);
	h = mmap(NULL, KST_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0);
	if (h == MAP_FAILED)
		die("%s: cannot map it: %s", region_path(pid), strerror(errno));
	req = reap ? &h->reap_request : &h->publish_request;
	done = reap ? &h->reap_done : &h->publish_done;
	want = atomic_fetch_add(req, 1) + 1;
	while (now_ns(CLOCK_MONOTONIC) < deadline) {
		if ((int64_t)(atomic_load(done) - want) >= 0) {
			rc = 0;
			break;
		}
		if (!proc_exists(pid) || proc_zombie(pid))
			die("process %ld exited before answering", pid);
		if (!region_live(fd)) {
			rc = 1;
			break;
		}
		sleep_ns(NS_PER_SEC / 100);
	}
	(void) munmap(h, KST_HEADER_SIZE);
	signal(SIGBUS, SIG_DFL);
	return (rc);
}

/* ------------------------------------------------------------ listing */

struct proc_row {
	long pid;
	char comm[KST_NAMELEN];
	uint32_t caches;
	uint64_t mem_inuse, mem_total, arena;
	int64_t published;
};

static int
row_cmp(const void *a, const void *b)
{
	const struct proc_row *x = a, *y = b;

	return ((x->pid > y->pid) - (x->pid < y->pid));
}

/* "libkmem.<digits>" -> pid; tmp: ".libkmem.<digits>.new"; else -1. */
static long
region_name_pid(const char *name, bool *tmp)
{
	const char *p = name;
	long pid = 0;

	*tmp = false;
	if (*p == '.') {
		*tmp = true;
		p++;
	}
	if (strncmp(p, KST_FILE_PREFIX, strlen(KST_FILE_PREFIX)) != 0)
		return (-1);
	p += strlen(KST_FILE_PREFIX);
	if (!isdigit((unsigned char)*p))
		return (-1);
	for (; isdigit((unsigned char)*p); p++) {
		pid = pid * 10 + (*p - '0');
		if (pid > INT32_MAX)
			return (-1);
	}
	if (*tmp ? strcmp(p, ".new") != 0 : *p != '\0')
		return (-1);
	return (pid);
}

/*
 * Remove a dead process's file if it is ours and the name still holds
 * the file that was examined (st): a process that reuses the pid may
 * have renamed its own region in under the name meanwhile (the library's
 * own sweep checks so too).  Say so.
 */
static void
remove_dead(int dfd, const char *name, long pid, const struct stat *st)
{
	struct stat now;

	if (st->st_uid != geteuid())
		return;
	if (fstatat(dfd, name, &now, AT_SYMLINK_NOFOLLOW) != 0 ||
	    now.st_dev != st->st_dev || now.st_ino != st->st_ino)
		return;
	if (unlinkat(dfd, name, 0) == 0)
		warn("removed %s/%s: process %ld is gone", opt_dir, name, pid);
	else if (errno != ENOENT)
		warn("cannot remove %s/%s: %s", opt_dir, name,
		    strerror(errno));
}

static void
list_processes(void)
{
	struct proc_row *rows = NULL;
	size_t nrows = 0, cap = 0;
	struct dirent *de;
	DIR *d = opendir(opt_dir);
	int64_t now = now_ns(CLOCK_REALTIME);
	char b1[16], b2[16];

	if (d == NULL)
		die("cannot read %s: %s", opt_dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		struct region r;
		struct stat st;
		bool tmp, live;
		long pid = region_name_pid(de->d_name, &tmp);
		int fd, rc;
		char err[256];

		if (pid <= 0 || fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (tmp) {
			/* Left by an image killed while creating it. */
			if (!proc_exists(pid))
				remove_dead(dirfd(d), de->d_name, pid, &st);
			continue;
		}
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC |
		    O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0) {
			if (!proc_exists(pid))
				remove_dead(dirfd(d), de->d_name, pid, &st);
			continue;       /* another user's: not ours to show */
		}
		/* st: the file read below, the one remove_dead may remove. */
		if (fstat(fd, &st) != 0) {
			close(fd);
			continue;
		}
		live = region_live(fd);
		rc = region_read(fd, &r, err, sizeof (err));
		close(fd);
		if (!live && region_dead(pid, rc == REGION_OK ? &r : NULL)) {
			remove_dead(dirfd(d), de->d_name, pid, &st);
			if (rc == REGION_OK)
				region_free(&r);
			continue;
		}
		/*
		 * Only then: a user's stale region whose pid another user's
		 * process now has is removed above, not taken for a file put
		 * there under that process's name.
		 */
		if (proc_exists(pid) && !proc_may_own(pid, st.st_uid)) {
			if (rc == REGION_OK)
				region_free(&r);
			warn("%s/%s: not the region of process %ld: the file "
			    "belongs to user %ju, the process to another",
			    opt_dir, de->d_name, pid, (uintmax_t)st.st_uid);
			continue;
		}
		if (rc != REGION_OK) {
			warn("%s/%s: %s", opt_dir, de->d_name, err);
			continue;
		}
		if (!live) {
			region_free(&r);
			continue;       /* stale: its image exec'd */
		}
		if (nrows == cap) {
			struct proc_row *nr;

			cap = cap ? cap * 2 : 16;
			if ((nr = realloc(rows, cap * sizeof (*rows))) == NULL)
				die("out of memory");
			rows = nr;
		}
		struct proc_row *row = &rows[nrows++];

		memset(row, 0, sizeof (*row));
		row->pid = pid;
		memcpy(row->comm, r.hdr.comm, sizeof (row->comm));
		row->caches = r.ncaches;
		row->arena = r.hdr.arena_inuse;
		row->published = r.hdr.published;
		for (uint32_t i = 0; i < r.ncaches; i++) {
			row->mem_inuse += r.caches[i].mem_inuse;
			row->mem_total += r.caches[i].mem_total;
		}
		region_free(&r);
	}
	closedir(d);
	if (nrows > 1)
		qsort(rows, nrows, sizeof (*rows), row_cmp);
	if (opt_json) {
		printf("[");
		for (size_t i = 0; i < nrows; i++) {
			printf("%s{\"pid\":%ld,\"command\":", i ? "," : "",
			    rows[i].pid);
			json_str(rows[i].comm);
			printf(",\"caches\":%" PRIu32 ",\"mem_inuse\":%" PRIu64
			    ",\"mem_total\":%" PRIu64 ",\"arena_inuse\":%"
			    PRIu64 ",\"published\":%.3f}", rows[i].caches,
			    rows[i].mem_inuse, rows[i].mem_total, rows[i].arena,
			    ns_to_s(rows[i].published));
		}
		printf("]\n");
	} else {
		printf("%8s %-16s %6s %8s %8s %8s %8s\n", "PID", "COMMAND",
		    "CACHES", "MEMUSE", "MEMTOTAL", "ARENA", "UPDATED");
		for (size_t i = 0; i < nrows; i++) {
			char name[KST_NAMELEN], b3[16];
			double age = ns_to_s(now - rows[i].published);

			printf("%8ld %-16s %6" PRIu32 " %8s %8s %8s %7.1fs\n",
			    rows[i].pid, printable(rows[i].comm, name,
			    sizeof (name)), rows[i].caches,
			    human(rows[i].mem_inuse, b1, sizeof (b1)),
			    human(rows[i].mem_total, b2, sizeof (b2)),
			    human(rows[i].arena, b3, sizeof (b3)),
			    age < 0 ? 0 : age);
		}
	}
	free(rows);
}

/* ------------------------------------------------------------ caches */

/*
 * A cache row: the record and, in interval mode, its record in the
 * previous sample (NULL: a new cache) and rates per second.
 */
struct cache_row {
	const struct kst_cache *c, *p;
	double alloc_rate, fail_rate, deadlock_rate;
};

static bool rates;              /* rows carry rates: not the first sample */

/* The value -s compares (descending); "name" is handled by cache_cmp. */
static double
sort_value(const struct cache_row *r)
{
	const struct kst_cache *c = r->c;
	const char *k = opt_sort;

	if (strcmp(k, "size") == 0)
		return ((double)c->obj_size);
	if (strcmp(k, "inuse") == 0)
		return ((double)c->obj_inuse);
	if (strcmp(k, "cached") == 0)
		return ((double)c->obj_cached);
	if (strcmp(k, "total") == 0)
		return ((double)c->obj_total);
	if (strcmp(k, "meminuse") == 0)
		return ((double)c->mem_inuse);
	if (strcmp(k, "slabs") == 0)
		return ((double)c->slab_total);
	if (strcmp(k, "allocs") == 0)
		return (rates ? r->alloc_rate : (double)c->alloc);
	if (strcmp(k, "fails") == 0)
		return (rates ? r->fail_rate : (double)c->alloc_fail);
	if (strcmp(k, "emergency") == 0)
		return ((double)c->obj_emergency);
	if (strcmp(k, "deadlocks") == 0)
		return (rates ? r->deadlock_rate : (double)c->obj_deadlock);
	return ((double)c->mem_total);         /* memtotal, mem */
}

static bool
sort_key_ok(const char *k)
{
	static const char *const keys[] = { "name", "size", "inuse", "cached",
	    "total", "meminuse", "memtotal", "mem", "slabs", "allocs", "fails",
	    "emergency", "deadlocks", NULL };

	for (int i = 0; keys[i] != NULL; i++)
		if (strcmp(k, keys[i]) == 0)
			return (true);
	return (false);
}

static int
cache_cmp(const void *a, const void *b)
{
	const struct cache_row *x = a, *y = b;
	double vx, vy;
	int byname = strcmp(x->c->name, y->c->name);

	if (strcmp(opt_sort, "name") == 0)
		return (byname);
	vx = sort_value(x);
	vy = sort_value(y);
	if (vx != vy)
		return (vx < vy ? 1 : -1);
	return (byname);
}

/*
 * Are r and prev regions of the same process image?  A pid reused, or an
 * exec into another program (or the same one) that uses libkmem, starts
 * a region with counters of its own; its caches may even have the ids
 * (addresses) of the old image's.
 */
static bool
same_image(const struct region *r, const struct region *prev)
{
	return (r->hdr.pid == prev->hdr.pid &&
	    r->hdr.proc_start == prev->hdr.proc_start &&
	    r->hdr.created == prev->hdr.created);
}

/* Order by id, then by place in the region (the first of equal ids). */
static int
cache_id_cmp(const void *a, const void *b)
{
	const struct kst_cache *x = *(const struct kst_cache *const *)a;
	const struct kst_cache *y = *(const struct kst_cache *const *)b;

	if (x->id != y->id)
		return (x->id < y->id ? -1 : 1);
	return ((x > y) - (x < y));
}

/*
 * prev's records sorted by id (see cache_id_cmp), for find_cache; NULL
 * when prev is of another process image: every cache of r is new.
 */
static const struct kst_cache **
cache_index(const struct region *prev, const struct region *r)
{
	const struct kst_cache **idx;

	if (!same_image(r, prev))
		return (NULL);
	if ((idx = calloc(prev->ncaches ? prev->ncaches : 1,
	    sizeof (*idx))) == NULL)
		die("out of memory");
	for (uint32_t i = 0; i < prev->ncaches; i++)
		idx[i] = &prev->caches[i];
	qsort(idx, prev->ncaches, sizeof (*idx), cache_id_cmp);
	return (idx);
}

/*
 * The record of cache c in the previous sample, of n records indexed by
 * idx (cache_index), or NULL: a new cache, or one of a new process image
 * (all its counts are since the previous sample).  Ids are never reused
 * by an image; the name must match too.  A binary search: a report on
 * 200,000 caches does not take minutes.
 */
static const struct kst_cache *
find_cache(const struct kst_cache **idx, uint32_t n,
    const struct kst_cache *c)
{
	uint32_t lo = 0, hi = n;

	if (idx == NULL)
		return (NULL);
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (idx[mid]->id < c->id)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < n && idx[lo]->id == c->id; lo++)
		if (strcmp(idx[lo]->name, c->name) == 0)
			return (idx[lo]);
	return (NULL);
}

static double
rate(uint64_t now, uint64_t then, double secs)
{
	return (now >= then && secs > 0 ? (double)(now - then) / secs : 0);
}

/* The rows of r, sorted; with rates against prev (when not NULL). */
static struct cache_row *
cache_rows(const struct region *r, const struct region *prev)
{
	struct cache_row *rows = calloc(r->ncaches ? r->ncaches : 1,
	    sizeof (*rows));
	double secs = prev != NULL ?
	    ns_to_s(r->hdr.published - prev->hdr.published) : 0;
	const struct kst_cache **idx = prev != NULL ? cache_index(prev, r) :
	    NULL;

	if (rows == NULL)
		die("out of memory");
	for (uint32_t i = 0; i < r->ncaches; i++) {
		const struct kst_cache *c = &r->caches[i], *p;

		rows[i].c = c;
		if (prev == NULL)
			continue;
		/* NULL: a new cache */
		p = rows[i].p = find_cache(idx, prev->ncaches, c);
		rows[i].alloc_rate = rate(c->alloc, p ? p->alloc : 0, secs);
		rows[i].fail_rate = rate(c->alloc_fail, p ? p->alloc_fail : 0,
		    secs);
		rows[i].deadlock_rate = rate(c->obj_deadlock,
		    p ? p->obj_deadlock : 0, secs);
	}
	free(idx);
	qsort(rows, r->ncaches, sizeof (*rows), cache_cmp);
	return (rows);
}

static void
print_caches_text(const struct region *r, const struct cache_row *rows)
{
	int w = 5;
	uint32_t n = r->ncaches;
	uint64_t t_inuse = 0, t_cached = 0, t_total = 0, t_meminuse = 0;
	uint64_t t_mem = 0, t_slabs = 0, t_alloc = 0, t_fail = 0;
	uint64_t t_emerg = 0, t_dl = 0;
	double t_arate = 0, t_frate = 0, t_drate = 0;
	char b1[16], b2[16], name[KST_NAMELEN];

	if (opt_limit >= 0 && (uint64_t)opt_limit < n)
		n = (uint32_t)opt_limit;
	for (uint32_t i = 0; i < r->ncaches; i++) {
		const struct kst_cache *c = rows[i].c;

		if ((int)strlen(c->name) > w)
			w = (int)strlen(c->name);
		t_inuse += c->obj_inuse;
		t_cached += c->obj_cached;
		t_total += c->obj_total;
		t_meminuse += c->mem_inuse;
		t_mem += c->mem_total;
		t_slabs += c->slab_total;
		t_alloc += c->alloc;
		t_fail += c->alloc_fail;
		t_emerg += c->obj_emergency;
		t_dl += c->obj_deadlock;
		t_arate += rows[i].alloc_rate;
		t_frate += rows[i].fail_rate;
		t_drate += rows[i].deadlock_rate;
	}
	printf("%-*s %7s %9s %9s %9s %7s %8s %7s %6s %4s %5s %6s %12s %7s "
	    "%6s %7s\n", w, "CACHE", "SIZE", "INUSE", "CACHED", "TOTAL",
	    "MEMUSE", "MEMTOTAL", "SLABS", "OBJ/SL", "MAG", "DFULL", "DEMPTY",
	    rates ? "ALLOC/s" : "ALLOCS", rates ? "FAIL/s" : "FAILS", "EMERG",
	    rates ? "DEADL/s" : "DEADLK");
	for (uint32_t i = 0; i < n; i++) {
		const struct kst_cache *c = rows[i].c;

		printf("%-*s %7" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64
		    " %7s %8s %7" PRIu64 " %6" PRIu64 " %4" PRIu64 " %5" PRIu64
		    " %6" PRIu64, w, printable(c->name, name, sizeof (name)),
		    c->obj_size, c->obj_inuse, c->obj_cached, c->obj_total,
		    human(c->mem_inuse, b1, sizeof (b1)),
		    human(c->mem_total, b2, sizeof (b2)), c->slab_total,
		    c->objs_per_slab, c->mag_size, c->depot_full,
		    c->depot_empty);
		if (rates)
			printf(" %12.0f %7.0f %6" PRIu64 " %7.0f\n",
			    rows[i].alloc_rate, rows[i].fail_rate,
			    c->obj_emergency, rows[i].deadlock_rate);
		else
			printf(" %12" PRIu64 " %7" PRIu64 " %6" PRIu64 " %7"
			    PRIu64 "\n", c->alloc, c->alloc_fail,
			    c->obj_emergency, c->obj_deadlock);
	}
	printf("%-*s %7s %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %7s %8s %7"
	    PRIu64 " %6s %4s %5s %6s", w, "TOTAL", "-", t_inuse, t_cached,
	    t_total, human(t_meminuse, b1, sizeof (b1)),
	    human(t_mem, b2, sizeof (b2)), t_slabs, "-", "-", "-", "-");
	if (rates)
		printf(" %12.0f %7.0f %6" PRIu64 " %7.0f\n", t_arate, t_frate,
		    t_emerg, t_drate);
	else
		printf(" %12" PRIu64 " %7" PRIu64 " %6" PRIu64 " %7" PRIu64
		    "\n", t_alloc, t_fail, t_emerg, t_dl);
}

/* bytes or a rate of them: counts as totals or per second. */
static double
mag_count(uint64_t now, uint64_t then, double secs)
{
	if (!rates)
		return ((double)now);
	return (rate(now, then, secs));
}

/*
 * -m: the magazine view.  HIT% is the share of allocations and frees
 * that a per-CPU magazine served; DEPOT counts the others, which went to
 * the depot (or past it to the slab layer); with rates both are over the
 * interval.
 */
static void
print_mags_text(const struct region *r, const struct cache_row *rows,
    const struct region *prev)
{
	int w = 5;
	uint32_t n = r->ncaches;
	double secs = prev != NULL ?
	    ns_to_s(r->hdr.published - prev->hdr.published) : 0;
	double t_alloc = 0, t_free = 0, t_hits = 0, t_depot = 0, t_ctor = 0;
	uint64_t t_inuse = 0, t_cached = 0, t_mem = 0, t_cont = 0;
	char b1[16], name[KST_NAMELEN];

	if (opt_limit >= 0 && (uint64_t)opt_limit < n)
		n = (uint32_t)opt_limit;
	for (uint32_t i = 0; i < r->ncaches; i++)
		if ((int)strlen(rows[i].c->name) > w)
			w = (int)strlen(rows[i].c->name);
	printf("%-*s %7s %9s %9s %8s %12s %12s %6s %11s %7s %10s\n", w,
	    "CACHE", "SIZE", "INUSE", "CACHED", "MEMTOTAL",
	    rates ? "ALLOC/s" : "ALLOCS", rates ? "FREE/s" : "FREES", "HIT%",
	    rates ? "DEPOT/s" : "DEPOT", "DCONT", rates ? "CTOR/s" : "CTORS");
	for (uint32_t i = 0; i < r->ncaches; i++) {
		const struct kst_cache *c = rows[i].c, *p = rows[i].p;
		struct kst_cache zero;
		double a, f, h, d, k;

		if (p == NULL) {
			memset(&zero, 0, sizeof (zero));
			p = &zero;
		}
		a = mag_count(c->alloc, p->alloc, secs);
		f = mag_count(c->free, p->free, secs);
		h = mag_count(c->mag_alloc_hits, p->mag_alloc_hits, secs) +
		    mag_count(c->mag_free_hits, p->mag_free_hits, secs);
		d = a + f > h ? a + f - h : 0;
		k = mag_count(c->ctor_calls, p->ctor_calls, secs);
		t_alloc += a;
		t_free += f;
		t_hits += h;
		t_depot += d;
		t_ctor += k;
		t_inuse += c->obj_inuse;
		t_cached += c->obj_cached;
		t_mem += c->mem_total;
		t_cont += c->depot_contention;
		if (i >= n)
			continue;
		printf("%-*s %7" PRIu64 " %9" PRIu64 " %9" PRIu64 " %8s %12.0f "
		    "%12.0f ", w, printable(c->name, name, sizeof (name)),
		    c->obj_size, c->obj_inuse, c->obj_cached,
		    human(c->mem_total, b1, sizeof (b1)), a, f);
		if (c->mag_size == 0)
			printf("%6s", "-");
		else if (a + f > 0)
			printf("%6.1f", 100 * h / (a + f));
		else
			printf("%6s", "0.0");
		printf(" %11.0f %7" PRIu64 " %10.0f\n", d,
		    c->depot_contention, k);
	}
	printf("%-*s %7s %9" PRIu64 " %9" PRIu64 " %8s %12.0f %12.0f ", w,
	    "TOTAL", "-", t_inuse, t_cached, human(t_mem, b1, sizeof (b1)),
	    t_alloc, t_free);
	if (t_alloc + t_free > 0)
		printf("%6.1f", 100 * t_hits / (t_alloc + t_free));
	else
		printf("%6s", "0.0");
	printf(" %11.0f %7" PRIu64 " %10.0f\n", t_depot, t_cont, t_ctor);
}

static void
print_caches_json(const struct region *r, const struct cache_row *rows)
{
	uint32_t n = r->ncaches;
	uint64_t t_inuse = 0, t_cached = 0, t_total = 0, t_meminuse = 0;
	uint64_t t_mem = 0, t_slabs = 0, t_alloc = 0, t_fail = 0;
	uint64_t t_emerg = 0, t_dl = 0, t_free = 0;

	if (opt_limit >= 0 && (uint64_t)opt_limit < n)
		n = (uint32_t)opt_limit;
	printf(",\"caches\":[");
	for (uint32_t i = 0; i < n; i++) {
		const struct kst_cache *c = rows[i].c;

		printf("%s{\"name\":", i ? "," : "");
		json_str(c->name);
#define	JSON_FIELD(f)   printf(",\"" #f "\":%" PRIu64, c->f);
		KST_CACHE_FIELDS(JSON_FIELD)
#undef	JSON_FIELD
		printf("}");
	}
	for (uint32_t i = 0; i < r->ncaches; i++) {
		const struct kst_cache *c = &r->caches[i];

		t_inuse += c->obj_inuse;
		t_cached += c->obj_cached;
		t_total += c->obj_total;
		t_meminuse += c->mem_inuse;
		t_mem += c->mem_total;
		t_slabs += c->slab_total;
		t_alloc += c->alloc;
		t_free += c->free;
		t_fail += c->alloc_fail;
		t_emerg += c->obj_emergency;
		t_dl += c->obj_deadlock;
	}
	printf("],\"totals\":{\"caches\":%" PRIu32 ",\"obj_inuse\":%" PRIu64
	    ",\"obj_cached\":%" PRIu64 ",\"obj_total\":%" PRIu64
	    ",\"mem_inuse\":%" PRIu64 ",\"mem_total\":%" PRIu64
	    ",\"slab_total\":%" PRIu64 ",\"alloc\":%" PRIu64 ",\"free\":%"
	    PRIu64 ",\"alloc_fail\":%" PRIu64 ",\"obj_emergency\":%" PRIu64
	    ",\"obj_deadlock\":%" PRIu64 "}", r->ncaches, t_inuse, t_cached,
	    t_total, t_meminuse, t_mem, t_slabs, t_alloc, t_free, t_fail,
	    t_emerg, t_dl);
}

/* ------------------------------------------------------------ the rest */

static void
print_classes(const struct region *r)
{
	uint64_t t[7] = { 0 };

	if (opt_json) {
		printf(",\"classes\":[");
		for (uint32_t i = 0; i < r->nclasses; i++) {
			const struct kst_class *c = &r->classes[i];

			printf("%s{\"class\":%" PRIu32 ",\"name\":", i ? "," :
			    "", i);
			json_str(c->name);
#define	JSON_FIELD(f)   printf(",\"" #f "\":%" PRIu64, c->f);
			KST_CLASS_FIELDS(JSON_FIELD)
#undef	JSON_FIELD
			printf("}");
		}
		printf("]");
		return;
	}
	printf("%5s %8s %11s %12s %13s %10s %10s %14s %8s %12s\n", "class",
	    "size", "almost_full", "almost_empty", "obj_allocated", "obj_used",
	    "pages_used", "pages_per_slab", "freeable", "pages_carved");
	for (uint32_t i = 0; i < r->nclasses; i++) {
		const struct kst_class *c = &r->classes[i];

		printf("%5" PRIu32 " %8" PRIu64 " %11" PRIu64 " %12" PRIu64
		    " %13" PRIu64 " %10" PRIu64 " %10" PRIu64 " %14" PRIu64
		    " %8" PRIu64 " %12" PRIu64 "\n", i, c->size, c->almost_full,
		    c->almost_empty, c->obj_allocated, c->obj_used,
		    c->pages_used, c->pages_per_slab, c->freeable,
		    c->pages_carved);
		t[0] += c->almost_full;
		t[1] += c->almost_empty;
		t[2] += c->obj_allocated;
		t[3] += c->obj_used;
		t[4] += c->pages_used;
		t[5] += c->freeable;
		t[6] += c->pages_carved;
	}
	printf("%5s %8s %11" PRIu64 " %12" PRIu64 " %13" PRIu64 " %10" PRIu64
	    " %10" PRIu64 " %14s %8" PRIu64 " %12" PRIu64 "\n", "Total", "",
	    t[0], t[1], t[2], t[3], t[4], "", t[5], t[6]);
}

static void
print_taskqs(const struct region *r)
{
	if (opt_json) {
		printf(",\"taskqs\":[");
		for (uint32_t i = 0; i < r->ntaskqs; i++) {
			const struct kst_taskq *q = &r->taskqs[i];

			printf("%s{\"name\":", i ? "," : "");
			json_str(q->name);
#define	JSON_FIELD(f)   printf(",\"" #f "\":%" PRIu64, q->f);
			KST_TASKQ_FIELDS(JSON_FIELD)
#undef	JSON_FIELD
			printf("}");
		}
		printf("]");
		return;
	}
	printf("%-20s %7s %7s %5s %7s %7s %12s %12s %9s %7s\n", "TASKQ",
	    "THREADS", "MAX", "IDLE", "PENDING", "DELAYED", "DISPATCHED",
	    "EXECUTED", "CANCELLED", "ENTRIES");
	for (uint32_t i = 0; i < r->ntaskqs; i++) {
		const struct kst_taskq *q = &r->taskqs[i];
		char name[KST_NAMELEN];

		printf("%-20s %7" PRIu64 " %7" PRIu64 " %5" PRIu64 " %7" PRIu64
		    " %7" PRIu64 " %12" PRIu64 " %12" PRIu64 " %9" PRIu64
		    " %7" PRIu64 "\n", printable(q->name, name, sizeof (name)),
		    q->threads, q->threads_max, q->threads_idle,
		    q->tasks_pending, q->tasks_delayed, q->tasks_dispatched,
		    q->tasks_executed, q->tasks_cancelled,
		    q->entries_allocated);
	}
}

/* An enum tunable's word for value v, from its '|'-separated list. */
static const char *
tunable_word(const struct kst_tunable *t, int64_t v, char *buf, size_t len)
{
	const char *p = t->words;

	for (int64_t i = 0; *p != '\0'; i++) {
		size_t n = strcspn(p, "|");

		if (i == v) {
			snprintf(buf, len, "%.*s", (int)n, p);
			return (buf);
		}
		p += n + (p[n] == '|');
	}
	snprintf(buf, len, "%" PRId64, v);
	return (buf);
}

static void
print_tunables(const struct region *r)
{
	char v[32], d[32], name[KST_TUNABLE_NAMELEN], range[80];

	if (opt_json) {
		printf(",\"tunables\":[");
		for (uint32_t i = 0; i < r->ntunables; i++) {
			const struct kst_tunable *t = &r->tunables[i];

			printf("%s{\"name\":", i ? "," : "");
			json_str(t->name);
			printf(",\"value\":%" PRId64 ",\"default\":%" PRId64
			    ",\"min\":%" PRId64 ",\"max\":%" PRId64, t->value,
			    t->dflt, t->min, t->max);
			if (t->words[0] != '\0') {
				printf(",\"word\":");
				json_str(t->word);
				printf(",\"words\":");
				json_str(t->words);
			}
			printf("}");
		}
		printf("]");
		return;
	}
	printf("%-28s %12s %12s  %s\n", "TUNABLE", "VALUE", "DEFAULT",
	    "RANGE");
	for (uint32_t i = 0; i < r->ntunables; i++) {
		const struct kst_tunable *t = &r->tunables[i];

		if (t->words[0] != '\0') {
			printable(t->words, range, sizeof (range));
			printf("%-28s %12s %12s  %s\n",
			    printable(t->name, name, sizeof (name)),
			    tunable_word(t, t->value, v, sizeof (v)),
			    tunable_word(t, t->dflt, d, sizeof (d)), range);
		} else {
			printf("%-28s %12" PRId64 " %12" PRId64 "  %" PRId64
			    "..%" PRId64 "\n", printable(t->name, name,
			    sizeof (name)), t->value, t->dflt, t->min, t->max);
		}
	}
}

/* One sample of PID: the sections asked for, as text or one JSON line. */
static void
print_sample(const struct region *r, const struct region *prev)
{
	bool caches = !opt_classes && !opt_tunables && !opt_taskqs;
	struct cache_row *rows = NULL;

	rates = prev != NULL;
	if (caches)
		rows = cache_rows(r, prev);
	if (opt_json) {
		printf("{\"version\":%" PRIu32 ",\"pid\":%" PRId64
		    ",\"command\":", r->hdr.version, r->hdr.pid);
		json_str(r->hdr.comm);
		printf(",\"created\":%.3f,\"published\":%.3f,\"publishes\":%"
		    PRIu64 ",\"interval\":%" PRIu32 ",\"ncpus\":%" PRIu32
		    ",\"arena_inuse\":%" PRIu64 ",\"arena_reserved\":%" PRIu64,
		    ns_to_s(r->hdr.created), ns_to_s(r->hdr.published),
		    r->hdr.publishes, r->hdr.interval, r->hdr.ncpus,
		    r->hdr.arena_inuse, r->hdr.arena_reserved);
		if (caches)
			print_caches_json(r, rows);
		if (opt_classes)
			print_classes(r);
		if (opt_taskqs)
			print_taskqs(r);
		if (opt_tunables)
			print_tunables(r);
		printf("}\n");
	} else {
		char b[16], comm[KST_NAMELEN];
		double age = ns_to_s(now_ns(CLOCK_REALTIME) - r->hdr.published);

		printf("process %" PRId64 " (%s): %" PRIu32 " caches, arena "
		    "%s in use; published %.1f s ago, every %" PRIu32 " s\n",
		    r->hdr.pid, printable(r->hdr.comm, comm, sizeof (comm)),
		    r->ncaches, human(r->hdr.arena_inuse, b, sizeof (b)),
		    age < 0 ? 0 : age, r->hdr.interval);
		if (caches && opt_mags)
			print_mags_text(r, rows, prev);
		else if (caches)
			print_caches_text(r, rows);
		if (opt_classes)
			print_classes(r);
		if (opt_taskqs) {
			if (opt_classes)
				putchar('\n');
			print_taskqs(r);
		}
		if (opt_tunables) {
			if (opt_classes || opt_taskqs)
				putchar('\n');
			print_tunables(r);
		}
	}
	free(rows);
	flush_stdout();
}

/* kmemstat -p PID -r */
static void
do_reap(long pid)
{
	struct region before, after;
	uint64_t slabs[2] = { 0 }, mem[2] = { 0 }, cached[2] = { 0 };
	char b1[16], b2[16], comm[KST_NAMELEN];
	int fd = region_open(pid, true), rc;

	region_load(fd, pid, &before);
	region_check_live(fd, pid, &before);
	/*
	 * "Before" is now, not the last publish: that may be up to
	 * kmem_stats_interval old (an hour), from before the memory that
	 * the reap frees was even allocated.
	 */
	region_free(&before);
	if ((rc = region_request(fd, pid, false)) < 0)
		die("process %ld did not publish within %lld s", pid,
		    REQUEST_WAIT_NS / NS_PER_SEC);
	if (rc > 0)
		die("process %ld let its region go before publishing (it "
		    "exec'd, or is exiting)", pid);
	region_load(fd, pid, &before);
	if ((rc = region_request(fd, pid, true)) < 0)
		die("process %ld did not answer the reap request within %lld s",
		    pid, REQUEST_WAIT_NS / NS_PER_SEC);
	if (rc > 0)
		die("process %ld let its region go before reaping (it exec'd, "
		    "or is exiting)", pid);
	region_load(fd, pid, &after);
	close(fd);
	for (uint32_t i = 0; i < before.ncaches; i++) {
		slabs[0] += before.caches[i].slab_total;
		mem[0] += before.caches[i].mem_total;
		cached[0] += before.caches[i].obj_cached;
	}
	for (uint32_t i = 0; i < after.ncaches; i++) {
		slabs[1] += after.caches[i].slab_total;
		mem[1] += after.caches[i].mem_total;
		cached[1] += after.caches[i].obj_cached;
	}
	printf("process %ld (%s) reaped: slabs %" PRIu64 " -> %" PRIu64
	    ", memory %s -> %s, cached objects %" PRIu64 " -> %" PRIu64 "\n",
	    pid, printable(after.hdr.comm, comm, sizeof (comm)), slabs[0],
	    slabs[1],
	    human(mem[0], b1, sizeof (b1)), human(mem[1], b2, sizeof (b2)),
	    cached[0], cached[1]);
	region_free(&before);
	region_free(&after);
}

/* kmemstat -p PID [interval [count]] */
static void
do_process(long pid, long interval, long count)
{
	struct region cur, prev;
	bool have_prev = false;
	int64_t next = now_ns(CLOCK_MONOTONIC);

	for (long i = 0; count < 0 || i < count; i++) {
		bool follow, lost;
		int64_t end;
		int fd, rc;

		if (i > 0) {
			next += interval * NS_PER_SEC;
			sleep_ns(next - now_ns(CLOCK_MONOTONIC));
		}
		/*
		 * A process watched since an earlier report that exec'd, or
		 * one that exec'd while -w waited for it (follow): its new
		 * image publishes a region of its own a tenth of a second
		 * after it starts libkmem, and the old one is stale until
		 * then.  Wait for the new one (as long as for a request).
		 */
		follow = have_prev;
		lost = false;
		end = now_ns(CLOCK_MONOTONIC) + REQUEST_WAIT_NS;
		for (;;) {
			struct stat st;

			/*
			 * Its region gone while -w waited: it is exiting
			 * (exit(3) removes it), not yet gone; or it turned
			 * kmem_stats off.
			 */
			if (lost && lstat(region_path(pid), &st) != 0 &&
			    errno == ENOENT && proc_exists(pid) &&
			    !proc_zombie(pid) &&
			    now_ns(CLOCK_MONOTONIC) < end) {
				sleep_ns(NS_PER_SEC / 100);
				continue;
			}
			fd = region_open(pid, opt_wait);
			region_load(fd, pid, &cur);
			if (follow && !region_live(fd) &&
			    !region_dead(pid, &cur) &&
			    now_ns(CLOCK_MONOTONIC) < end) {
				region_free(&cur);
				close(fd);
				sleep_ns(NS_PER_SEC / 100);
				continue;
			}
			region_check_live(fd, pid, &cur);
			if (!opt_wait)
				break;
			region_free(&cur);
			if ((rc = region_request(fd, pid, false)) < 0)
				die("process %ld did not publish within %lld s",
				    pid, REQUEST_WAIT_NS / NS_PER_SEC);
			if (rc == 0) {
				region_load(fd, pid, &cur);
				break;
			}
			close(fd);      /* exec'd: follow its new image */
			follow = lost = true;
			end = now_ns(CLOCK_MONOTONIC) + REQUEST_WAIT_NS;
		}
		close(fd);
		if (i > 0 && !opt_json)
			putchar('\n');
		print_sample(&cur, have_prev ? &prev : NULL);
		if (have_prev)
			region_free(&prev);
		prev = cur;
		have_prev = true;
	}
	if (have_prev)
		region_free(&prev);
}

int
main(int argc, char **argv)
{
	long interval = 0, count = -1;
	int c;

	while ((c = getopt(argc, argv, "cd:hjmn:p:qrs:TVw")) != -1) {
		switch (c) {
		case 'c': opt_classes = true; break;
		case 'd':
			if (optarg[0] == '\0')
				usage("-d: expected a directory", false);
			opt_dir = optarg;
			break;
		case 'j': opt_json = true; break;
		case 'm': opt_mags = true; break;
		case 'q': opt_taskqs = true; break;
		case 'r': opt_reap = true; break;
		case 'T': opt_tunables = true; break;
		case 'w': opt_wait = true; break;
		case 'n':
			opt_limit = strcmp(optarg, "0") == 0 ? 0 :
			    parse_count(optarg, LONG_MAX);
			if (opt_limit < 0)
				usage("-n: expected a number of rows", false);
			break;
		case 'p':
			if ((opt_pid = parse_count(optarg, INT32_MAX)) < 0)
				usage("-p: expected a process id", false);
			break;
		case 's':
			if (!sort_key_ok(optarg))
				usage("-s: unknown sort key", false);
			opt_sort = optarg;
			opt_sort_given = true;
			break;
		case 'V':
			printf("kmemstat (libkmem) %s, region version %d\n",
			    PACKAGE_VERSION, KST_VERSION);
			flush_stdout();
			return (0);
		case 'h':
			usage(NULL, true);
		default:
			usage(NULL, false);
		}
	}
	if (optind < argc &&
	    (interval = parse_count(argv[optind++], 86400)) < 0)
		usage("interval: expected seconds, 1..86400", false);
	if (optind < argc &&
	    (count = parse_count(argv[optind++], LONG_MAX)) < 0)
		usage("count: expected a positive number", false);
	if (optind < argc)
		usage("too many arguments", false);
	if (interval == 0)
		count = 1;
	if (opt_pid < 0 && (opt_classes || opt_tunables || opt_taskqs ||
	    opt_reap || opt_wait || opt_mags || opt_sort_given ||
	    opt_limit >= 0))
		usage("-c, -m, -T, -q, -r, -w, -s and -n need -p", false);
	if (opt_mags && (opt_classes || opt_tunables || opt_taskqs))
		usage("-m is a view of the caches: not with -c, -T or -q",
		    false);
	if (opt_reap && (interval != 0 || opt_json || opt_classes ||
	    opt_mags || opt_tunables || opt_taskqs || opt_wait ||
	    opt_sort_given || opt_limit >= 0))
		usage("-r takes only -p (and -d)", false);
	if (opt_dir == NULL)
		opt_dir = getenv("KMEM_STATS_DIR");
	if (opt_dir == NULL || opt_dir[0] == '\0')
		opt_dir = KST_DEFAULT_DIR;
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (opt_reap) {
		do_reap(opt_pid);
		flush_stdout();
		return (0);
	}
	if (opt_pid >= 0) {
		do_process(opt_pid, interval, count);
		return (0);
	}
	for (long i = 0; count < 0 || i < count; i++) {
		if (i > 0) {
			sleep_ns(interval * NS_PER_SEC);
			if (!opt_json)
				putchar('\n');
		}
		list_processes();
		flush_stdout();
	}
	return (0);
}
