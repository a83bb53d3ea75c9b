/*
 * classmem - pages used by a zsmalloc size-class population: libkmem's
 * kmem_alloc against zsmalloc and against malloc implementations.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The population is measurement data: the "Order 2 (4 pages per zspage)"
 * table of /sys/kernel/debug/zsmalloc/zram0/classes after untarring and
 * building linux-6.0 on zram (Sergey Senozhatsky, "[PATCHv4 2/9] zsmalloc:
 * turn zspage order into runtime variable", LKML, 31 Oct 2022, quoted in
 * Minchan Kim's reply of 10 Nov 2022).  Only the rows that mail shows are
 * here (it elides the others), and only their size, obj_used and
 * pages_used columns.  The order-3 table of the same mail (a different
 * run, so a different population) is kept for its total only.
 *
 * For every row, obj_used objects of 'size' bytes are allocated, in one
 * deterministic order that spreads each class evenly over the whole run
 * (object k of a class with n objects comes at (2k + 1) / 2n of the way),
 * and every byte of every object is written (zsmalloc stores data there);
 * the contents are checked afterwards and everything is freed.
 *
 *   libkmem         kmem_alloc(size, KM_SLEEP) / kmem_free(buf, size):
 *                   pages_used summed over kmem_alloc_class_stats (slab
 *                   pages; libkmem's metadata - slab descriptors, cache
 *                   structures, magazines - is not in it), of which
 *                   pages_carved (the slab pages objects were carved
 *                   from: a slab's never-carved tail has no memory behind
 *                   it), and the RSS delta, which has everything the
 *                   process touched
 *   libkmem-no-ahead  the same with KMEM_CACHE_GROW_AHEAD=0: slabs that
 *                   background growth maps ahead of need are in
 *                   pages_used (as freeable) but not in the RSS
 *   libkmem-malloc  malloc through lib/.libs/libkmem_malloc.so (LD_PRELOAD),
 *                   when it is built: RSS delta
 *   glibc, jemalloc, mimalloc, tcmalloc   malloc, each in a child
 *                   process (see peers.h): RSS delta
 *
 * RSS delta = resident pages in /proc/self/statm after the allocations
 * minus before them, in 4096-byte pages; the anonymous part (resident
 * minus file-backed) is shown too.  Each allocator runs in its own child
 * process, whose pointer array is mapped and touched before the first
 * reading.  zsmalloc's pages_used does not count its metadata either
 * (zspage descriptors, handles); note also that a zsmalloc class of 'size'
 * bytes holds objects of at most size - 8 bytes (the handle), and the
 * larger of the merged classes' requests, so allocating 'size' bytes here
 * asks a little more of the allocators than zsmalloc stored.
 *
 * usage: classmem [-j out.json] [-a allocator,...] [-L libdir]
 *        -L: where libkmem_malloc.so is (default: see bench_build_lib)
 * internal: classmem --child NAME  (measures, prints JSON lines)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libkmem/kmem.h>

#include "peers.h"

#define ZS_PAGE         4096    /* zsmalloc's (x86) page; ours too */
#define MAX_CLASSES     512     /* kmem_alloc classes, at most */

/* One row of a zsmalloc classes table: class, size, obj_used, pages_used. */
struct zs_row {
	uint32_t cls;
	uint32_t size;
	uint32_t obj_used;
	uint32_t pages_used;
};

/* "Order 2 (4 pages per zspage)", see the top comment. */
static const struct zs_row zs_order2[] = {
	{  71, 1168,  6146,  1756 },
	{  74, 1216,  4552,  1368 },
	{  76, 1248,  2934,   904 },
	{  83, 1360, 10971,  3657 },
	{  91, 1488, 16126,  5864 },
	{  94, 1536,  5908,  2217 },
	{ 100, 1632, 11990,  4796 },
	{ 107, 1744, 15768,  6759 },
	{ 111, 1808, 10380,  4616 },
	{ 126, 2048, 45444, 22722 },
	{ 144, 2336, 47446, 27112 },
	{ 151, 2448, 10759,  6456 },
	{ 168, 2720, 10173,  6782 },
	{ 190, 3072,  1697,  1275 },
	{ 202, 3264,   286,   232 },
	{ 254, 4096, 34051, 34051 },
};
#define NROWS   (int)(sizeof (zs_order2) / sizeof (zs_order2[0]))

/* "Order 3 (8 pages per zspage)": a different run, for its total only. */
static const struct zs_row zs_order3[] = {
	{  71, 1168,  2994,   856 },
	{  72, 1184,  1609,   476 },
	{  73, 1200,  1442,   425 },
	{  74, 1216,  1510,   453 },
	{  75, 1232,  1479,   455 },
	{  76, 1248,  1451,   448 },
	{  78, 1280,  3033,   950 },
	{  79, 1296,  1571,   504 },
	{  83, 1360,  6375,  2125 },
	{  84, 1376,  1796,   632 },
	{  87, 1424,  6006,  2107 },
	{  88, 1440,  2101,   744 },
	{  89, 1456,  2064,   740 },
	{  91, 1488,  4159,  1516 },
	{  92, 1504,  2007,   742 },
	{  94, 1536,  3900,  1464 },
	{  95, 1552,  1873,   720 },
	{  96, 1568,  1958,   755 },
	{  97, 1584,  1974,   770 },
	{ 100, 1632,  6187,  2476 },
	{ 103, 1680,  6477,  2667 },
	{ 104, 1696,  2253,   940 },
	{ 105, 1712,  2340,   992 },
	{ 107, 1744,  4696,  2013 },
	{ 110, 1792,  7734,  3388 },
	{ 111, 1808,  2649,  1180 },
	{ 114, 1856,  8365,  3805 },
	{ 116, 1888,  5862,  2706 },
	{ 117, 1904,  2942,  1379 },
	{ 118, 1920,  2997,  1416 },
	{ 126, 2048, 25276, 12638 },
	{ 128, 2080,  6052,  3232 },
	{ 129, 2096,  3080,  1659 },
	{ 134, 2176, 14830,  7912 },
	{ 135, 2192,  2758,  1491 },
	{ 137, 2224,  5077,  2772 },
	{ 140, 2272,  7232,  4020 },
	{ 144, 2336,  8423,  4816 },
	{ 147, 2384,  5313,  3101 },
	{ 151, 2448,  5443,  3267 },
	{ 155, 2512,  4121,  2536 },
	{ 158, 2560,  2205,  1380 },
	{ 160, 2592,  1133,   721 },
	{ 168, 2720,  2712,  1808 },
	{ 177, 2864,  1098,   770 },
	{ 180, 2912,   183,   135 },
	{ 184, 2976,   166,   128 },
	{ 190, 3072,   252,   189 },
	{ 197, 3184,   192,   154 },
	{ 202, 3264,    96,    80 },
	{ 211, 3408,   208,   175 },
	{ 217, 3504,    94,    84 },
	{ 222, 3584,   104,    91 },
	{ 225, 3632,    50,    48 },
	{ 254, 4096, 33591, 33591 },
};
#define NROWS3  (int)(sizeof (zs_order3) / sizeof (zs_order3[0]))

static struct bench_peer peers[] = {
	{ "libkmem", NULL, NULL },
	{ "libkmem-no-ahead", NULL, "KMEM_CACHE_GROW_AHEAD=0" },
	{ "libkmem-malloc", NULL, NULL },       /* lib set in main() */
	{ "glibc", NULL, NULL },
	{ "jemalloc", "libjemalloc.so.2", NULL },
	{ "mimalloc", "libmimalloc.so.2", NULL },
	{ "tcmalloc", "libtcmalloc_minimal.so.4", NULL },
};
#define NPEERS  (int)(sizeof (peers) / sizeof (peers[0]))
#define P_KMEM          0
#define P_KMEM_NOAHEAD  1
#define P_KMEM_MALLOC   2
#define P_FIRST_MALLOC  3       /* the malloc peers: [3, NPEERS) */

static uint64_t
rows_objects(const struct zs_row *rows, int n)
{
	uint64_t sum = 0;

	for (int i = 0; i < n; i++)
		sum += rows[i].obj_used;
	return (sum);
}

static uint64_t
rows_pages(const struct zs_row *rows, int n)
{
	uint64_t sum = 0;

	for (int i = 0; i < n; i++)
		sum += rows[i].pages_used;
	return (sum);
}

static uint64_t
rows_bytes(const struct zs_row *rows, int n)
{
	uint64_t sum = 0;

	for (int i = 0; i < n; i++)
		sum += (uint64_t)rows[i].size * rows[i].obj_used;
	return (sum);
}

/* ------------------------------------------------------------ child */

/* Resident and file-backed bytes, from /proc/self/statm (no malloc). */
static int
read_statm(uint64_t *resident, uint64_t *file)
{
	char buf[256], *p;
	unsigned long long v[3];
	ssize_t n;
	int fd;

	if ((fd = open("/proc/self/statm", O_RDONLY)) < 0)
		return (-1);
	n = read(fd, buf, sizeof (buf) - 1);
	close(fd);
	if (n <= 0)
		return (-1);
	buf[n] = '\0';
	p = buf;
	for (int i = 0; i < 3; i++) {
		char *end;

		v[i] = strtoull(p, &end, 10);
		if (end == p)
			return (-1);
		p = end;
	}
	*resident = v[1] * (uint64_t)sysconf(_SC_PAGESIZE);
	*file = v[2] * (uint64_t)sysconf(_SC_PAGESIZE);
	return (0);
}

static void *
map_touched(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("classmem: mmap");
		exit(1);
	}
	memset(p, 0, bytes);
	return (p);
}

/*
 * The allocation order: at every step, the row whose next object's point
 * in the run, (2 done + 1) / (2 obj_used), comes first (ties: the lower
 * row).  Every class is spread evenly over the run, and the order is the
 * same every time.
 */
static void
build_schedule(uint8_t *sched, size_t nobj)
{
	uint64_t done[NROWS] = { 0 };

	for (size_t i = 0; i < nobj; i++) {
		int best = -1;

		for (int r = 0; r < NROWS; r++) {
			if (done[r] == zs_order2[r].obj_used)
				continue;
			if (best < 0 || (2 * done[r] + 1) *
			    zs_order2[best].obj_used < (2 * done[best] + 1) *
			    zs_order2[r].obj_used)
				best = r;
		}
		sched[i] = (uint8_t)best;
		done[best]++;
	}
}

static inline uint8_t
pattern(size_t i)
{
	return ((uint8_t)(i * 131 + 7));
}

static int
run_child(const char *name)
{
	bool kmem = strcmp(name, "libkmem") == 0 ||
	    strcmp(name, "libkmem-no-ahead") == 0;
	size_t nobj = (size_t)rows_objects(zs_order2, NROWS), bad = 0;
	uint64_t res0, file0, res1, file1, stat_pages = 0, stat_res = 0;
	uint8_t *sched;
	void **objs;

	sched = map_touched(nobj);
	objs = map_touched(nobj * sizeof (void *));
	build_schedule(sched, nobj);

	if (read_statm(&res0, &file0) != 0) {
		fprintf(stderr, "classmem: cannot read /proc/self/statm\n");
		return (1);
	}
	for (size_t i = 0; i < nobj; i++) {
		size_t size = zs_order2[sched[i]].size;

		objs[i] = kmem ? kmem_alloc(size, KM_SLEEP) : malloc(size);
		if (objs[i] == NULL) {
			fprintf(stderr, "classmem: %s: allocation %zu of %zu "
			    "bytes failed\n", name, i, size);
			return (1);
		}
		memset(objs[i], pattern(i), size);
	}
	if (read_statm(&res1, &file1) != 0)
		return (1);

	if (kmem) {
		int n = kmem_alloc_class_count();

		for (int c = 0; c < n; c++) {
			struct kmem_class_stats st;

			if (kmem_alloc_class_stats(c, &st) != 0) {
				fprintf(stderr, "classmem: kmem_alloc_class_"
				    "stats(%d): %s\n", c, strerror(errno));
				return (1);
			}
			stat_pages += st.pages_used;
			stat_res += st.pages_carved;
			if (st.pages_used == 0 && st.obj_allocated == 0)
				continue;
			printf("{\"class\":%d,\"name\":\"%s\",\"size\":%llu,"
			    "\"almost_full\":%llu,\"almost_empty\":%llu,"
			    "\"obj_allocated\":%llu,\"obj_used\":%llu,"
			    "\"pages_used\":%llu,\"pages_per_slab\":%llu,"
			    "\"freeable\":%llu}\n", c, st.name,
			    (unsigned long long)st.size,
			    (unsigned long long)st.almost_full,
			    (unsigned long long)st.almost_empty,
			    (unsigned long long)st.obj_allocated,
			    (unsigned long long)st.obj_used,
			    (unsigned long long)st.pages_used,
			    (unsigned long long)st.pages_per_slab,
			    (unsigned long long)st.freeable);
		}
	}

	/* Every byte still what was written: no two objects overlap. */
	for (size_t i = 0; i < nobj; i++) {
		const uint8_t *p = objs[i], v = pattern(i);
		size_t size = zs_order2[sched[i]].size;

		for (size_t b = 0; b < size; b++) {
			if (p[b] != v) {
				if (bad++ < 5)
					fprintf(stderr, "classmem: %s: object "
					    "%zu (%zu bytes at %p) byte %zu is "
					    "%#x, not %#x\n", name, i, size,
					    (const void *)p, b, p[b], v);
				break;
			}
		}
	}
	if (bad != 0) {
		fprintf(stderr, "classmem: %s: %zu objects overwritten\n",
		    name, bad);
		return (1);
	}
	for (size_t i = 0; i < nobj; i++) {
		if (kmem)
			kmem_free(objs[i], zs_order2[sched[i]].size);
		else
			free(objs[i]);
	}

	printf("{\"allocator\":\"%s\",\"objects\":%zu,\"rss_pages\":%lld,"
	    "\"anon_pages\":%lld,\"stat_pages\":%lld,\"stat_carved\":"
	    "%lld}\n", name, nobj,
	    ((long long)res1 - (long long)res0) / ZS_PAGE,
	    ((long long)(res1 - file1) - (long long)(res0 - file0)) / ZS_PAGE,
	    kmem ? (long long)stat_pages : -1LL,
	    kmem ? (long long)stat_res : -1LL);
	fflush(stdout);
	return (0);
}

/* ------------------------------------------------------------ parent */

struct result {
	bool ok;
	long long rss, anon, stat, stat_res;
};

struct kclass {
	int idx;
	char name[KMEM_CACHE_NAMELEN];
	unsigned long long size, almost_full, almost_empty, obj_allocated;
	unsigned long long obj_used, pages_used, pages_per_slab, freeable;
};

static struct result res[NPEERS];
static struct kclass kclasses[MAX_CLASSES];     /* libkmem's, used ones */
static int nkclasses;
static long long noahead_pages[MAX_CLASSES];    /* by class index */

static void
collect(const char *line, void *arg)
{
	int p = *(int *)arg;
	struct kclass *k = &kclasses[nkclasses], tmp;
	struct result *r = &res[p];

	if (p == P_KMEM_NOAHEAD)
		k = &tmp;
	if (nkclasses < MAX_CLASSES && sscanf(line, "{\"class\":%d,\"name\":"
	    "\"%31[^\"]\",\"size\":%llu,\"almost_full\":%llu,"
	    "\"almost_empty\":%llu,\"obj_allocated\":%llu,\"obj_used\":%llu,"
	    "\"pages_used\":%llu,\"pages_per_slab\":%llu,\"freeable\":%llu",
	    &k->idx, k->name, &k->size, &k->almost_full, &k->almost_empty,
	    &k->obj_allocated, &k->obj_used, &k->pages_used,
	    &k->pages_per_slab, &k->freeable) == 10) {
		if (p == P_KMEM)
			nkclasses++;
		else if (k->idx >= 0 && k->idx < MAX_CLASSES)
			noahead_pages[k->idx] = (long long)k->pages_used;
		return;
	}
	if (sscanf(line, "{\"allocator\":\"%*[^\"]\",\"objects\":%*u,"
	    "\"rss_pages\":%lld,\"anon_pages\":%lld,\"stat_pages\":%lld,"
	    "\"stat_carved\":%lld", &r->rss, &r->anon, &r->stat,
	    &r->stat_res) == 4)
		r->ok = true;
}

/* Whether a libkmem run's carved slab pages are below 'pages'. */
static bool
below(const struct result *r, uint64_t pages)
{
	return (r->stat_res >= 0 && (uint64_t)r->stat_res < pages);
}

/* The libkmem class that served a row: the smallest used one that fits. */
static int
row_class(const struct zs_row *row)
{
	int best = -1;

	for (int k = 0; k < nkclasses; k++)
		if (kclasses[k].size >= row->size && (best < 0 ||
		    kclasses[k].size < kclasses[best].size))
			best = k;
	return (best);
}

static bool
parse_peers(const char *arg, bool *on)
{
	char *copy = strdup(arg), *tok, *save;
	bool any = false;

	memset(on, 0, sizeof (bool) * NPEERS);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		int p;

		for (p = 0; p < NPEERS && strcmp(tok, peers[p].name) != 0; p++)
			;
		if (p == NPEERS) {
			fprintf(stderr, "classmem: unknown allocator '%s'\n",
			    tok);
			free(copy);
			return (false);
		}
		on[p] = true;
		any = true;
	}
	free(copy);
	if (!any)	/* "" or ",": it would run nothing and exit 0 */
		fprintf(stderr, "classmem: -a names no allocator: '%s'\n", arg);
	return (any);
}

static const char *
yesno(bool b)
{
	return (b ? "met" : "NOT met");
}

int
main(int argc, char **argv)
{
	uint64_t zs2 = rows_pages(zs_order2, NROWS);
	uint64_t zs3 = rows_pages(zs_order3, NROWS3);
	uint64_t bytes = rows_bytes(zs_order2, NROWS);
	const char *json = NULL, *libdir = NULL;
	char *kmalloc_lib, *child_argv[4];
	bool on[NPEERS];
	int opt;

	if (argc >= 3 && strcmp(argv[1], "--child") == 0)
		return (run_child(argv[2]));
	for (int p = 0; p < NPEERS; p++)
		on[p] = true;
	for (int c = 0; c < MAX_CLASSES; c++)
		noahead_pages[c] = -1;
	while ((opt = getopt(argc, argv, "j:a:L:h")) != -1) {
		switch (opt) {
		case 'j':
			json = optarg;
			break;
		case 'a':
			if (!parse_peers(optarg, on))
				return (2);
			break;
		case 'L':
			libdir = optarg;
			break;
		default:
			fprintf(stderr, "usage: classmem [-j out.json] "
			    "[-a allocator,...] [-L libdir]\n");
			return (opt == 'h' ? 0 : 2);
		}
	}
	kmalloc_lib = bench_kmalloc_lib(libdir, &on[P_KMEM_MALLOC]);
	peers[P_KMEM_MALLOC].lib = kmalloc_lib;

	child_argv[0] = argv[0];
	child_argv[1] = (char *)"--child";
	child_argv[3] = NULL;
	for (int p = 0; p < NPEERS; p++) {
		if (!on[p])
			continue;
		fprintf(stderr, "classmem: %s\n", peers[p].name);
		child_argv[2] = (char *)peers[p].name;
		(void) bench_run_peer(&peers[p], child_argv, collect, &p);
	}

	printf("classmem: zsmalloc order-2 classes population: %d classes, "
	    "%llu objects, %llu bytes (%.1f pages of data)\n", NROWS,
	    (unsigned long long)rows_objects(zs_order2, NROWS),
	    (unsigned long long)bytes, (double)bytes / ZS_PAGE);
	printf("pages of 4096 bytes; ratio = pages / zsmalloc order-2 "
	    "pages_used (lower is better)\n");
	printf("%-16s %-22s %9s %7s %9s\n", "allocator", "pages from",
	    "pages", "ratio", "anon");
	printf("%-16s %-22s %9llu %7.4f %9s\n", "zsmalloc order-2",
	    "table pages_used", (unsigned long long)zs2, 1.0, "-");
	printf("%-16s %-22s %9llu %7s %9s\n", "zsmalloc order-3",
	    "table (other run)", (unsigned long long)zs3, "-", "-");
	printf("%-16s %-22s %9.1f %7.4f %9s\n", "(data)", "sum of sizes",
	    (double)bytes / ZS_PAGE, (double)bytes / ZS_PAGE / (double)zs2,
	    "-");
	for (int p = P_KMEM; p <= P_KMEM_NOAHEAD; p++)
		if (res[p].ok && res[p].stat >= 0)
			printf("%-16s %-22s %9lld %7.4f %9s\n"
			    "%-16s %-22s %9lld %7.4f %9s\n", peers[p].name,
			    "class stats pages_used", res[p].stat,
			    (double)res[p].stat / (double)zs2, "-",
			    peers[p].name, "  of which carved", res[p].stat_res,
			    (double)res[p].stat_res / (double)zs2, "-");
	for (int p = 0; p < NPEERS; p++) {
		if (!res[p].ok)
			continue;
		printf("%-16s %-22s %9lld %7.4f %9lld\n", peers[p].name,
		    "RSS delta", res[p].rss, (double)res[p].rss / (double)zs2,
		    res[p].anon);
	}

	if (res[P_KMEM].ok) {
		printf("\nper class: libkmem class <- zsmalloc rows (size); "
		    "pages of 4096 bytes\n");
		printf("%-20s %6s %-16s %8s %9s %9s %7s %9s %7s %5s %9s "
		    "%8s %8s\n", "libkmem class", "size", "zsmalloc sizes",
		    "objects", "zs pages", "kmem", "ratio", "no-ahead",
		    "ratio", "pg/sl", "obj_alloc", "obj_used", "freeable");
		for (int k = 0; k < nkclasses; k++) {
			const struct kclass *c = &kclasses[k];
			char sizes[64] = "";
			uint64_t objs = 0, zp = 0;
			size_t len = 0;
			long long na;

			for (int r = 0; r < NROWS; r++) {
				if (row_class(&zs_order2[r]) != k)
					continue;
				len += (size_t)snprintf(sizes + len,
				    len < sizeof (sizes) ?
				    sizeof (sizes) - len : 0, "%s%u",
				    len ? "+" : "", zs_order2[r].size);
				objs += zs_order2[r].obj_used;
				zp += zs_order2[r].pages_used;
			}
			printf("%-20s %6llu %-16s %8llu %9llu %9llu ",
			    c->name, c->size, len ? sizes : "(none)",
			    (unsigned long long)objs, (unsigned long long)zp,
			    c->pages_used);
			if (zp != 0)
				printf("%7.4f", (double)c->pages_used /
				    (double)zp);
			else
				printf("%7s", "-");
			na = c->idx >= 0 && c->idx < MAX_CLASSES ?
			    noahead_pages[c->idx] : -1;
			if (na < 0)
				printf(" %9s %7s", "-", "-");
			else if (zp == 0)
				printf(" %9lld %7s", na, "-");
			else
				printf(" %9lld %7.4f", na, (double)na /
				    (double)zp);
			printf(" %5llu %9llu %8llu %8llu\n", c->pages_per_slab,
			    c->obj_allocated, c->obj_used, c->freeable);
		}
	}

	if (res[P_KMEM].ok) {
		bool below_zs = res[P_KMEM].stat >= 0 &&
		    (uint64_t)res[P_KMEM].stat < zs2;
		bool rss_below_zs = res[P_KMEM].rss < (long long)zs2;
		bool below_peers = true;
		int npeers = 0;

		for (int p = P_FIRST_MALLOC; p < NPEERS; p++) {
			if (!res[p].ok)
				continue;
			npeers++;
			if (res[P_KMEM].rss >= res[p].rss)
				below_peers = false;
		}
		printf("\ntarget: libkmem below zsmalloc order-2: class stats "
		    "%s (carved: %s), RSS delta %s; RSS delta below every "
		    "malloc peer (%d measured): %s\n", yesno(below_zs),
		    yesno(below(&res[P_KMEM], zs2)), yesno(rss_below_zs),
		    npeers, yesno(below_peers && npeers > 0));
		if (res[P_KMEM_NOAHEAD].ok)
			printf("without grow-ahead: class stats below zsmalloc "
			    "order-2: %s (carved: %s)\n",
			    yesno(res[P_KMEM_NOAHEAD].stat >= 0 &&
			    (uint64_t)res[P_KMEM_NOAHEAD].stat < zs2),
			    yesno(below(&res[P_KMEM_NOAHEAD], zs2)));
	}

	if (json != NULL) {
		FILE *f = fopen(json, "w");

		if (f == NULL) {
			fprintf(stderr, "classmem: cannot write %s: %s\n",
			    json, strerror(errno));
			return (1);
		}
		fprintf(f, "{\"benchmark\":\"classmem\",\"page\":%d,"
		    "\"objects\":%llu,\"bytes\":%llu,\"zsmalloc_order2_pages\":"
		    "%llu,\"zsmalloc_order3_pages\":%llu,\"results\":[",
		    ZS_PAGE, (unsigned long long)rows_objects(zs_order2,
		    NROWS), (unsigned long long)bytes,
		    (unsigned long long)zs2, (unsigned long long)zs3);
		for (int p = 0, n = 0; p < NPEERS; p++) {
			if (!res[p].ok)
				continue;
			fprintf(f, "%s{\"allocator\":\"%s\",\"rss_pages\":%lld,"
			    "\"anon_pages\":%lld", n++ ? "," : "",
			    peers[p].name, res[p].rss, res[p].anon);
			if (res[p].stat >= 0)
				fprintf(f, ",\"stat_pages\":%lld,"
				    "\"stat_carved\":%lld", res[p].stat,
				    res[p].stat_res);
			fprintf(f, "}");
		}
		fprintf(f, "],\"classes\":[");
		for (int k = 0; k < nkclasses; k++) {
			const struct kclass *c = &kclasses[k];

			fprintf(f, "%s{\"name\":\"%s\",\"size\":%llu,"
			    "\"almost_full\":%llu,\"almost_empty\":%llu,"
			    "\"obj_allocated\":%llu,\"obj_used\":%llu,"
			    "\"pages_used\":%llu,\"pages_per_slab\":%llu,"
			    "\"freeable\":%llu,\"zsmalloc_rows\":[", k ? "," :
			    "", c->name, c->size, c->almost_full,
			    c->almost_empty, c->obj_allocated, c->obj_used,
			    c->pages_used, c->pages_per_slab, c->freeable);
			for (int r = 0, n = 0; r < NROWS; r++) {
				const struct zs_row *z = &zs_order2[r];

				if (row_class(z) == k)
					fprintf(f, "%s{\"size\":%u,\"obj_used\""
					    ":%u,\"pages_used\":%u}", n++ ?
					    "," : "", z->size, z->obj_used,
					    z->pages_used);
			}
			fprintf(f, "]}");
		}
		fprintf(f, "]}\n");
		fclose(f);
	}
	free(kmalloc_lib);
	return (res[P_KMEM].ok || !on[P_KMEM] ? 0 : 1);
}
