/*
 * stats.h - the statistics region: its binary layout, version 1, shared
 * by the publisher (stats.c) and by readers (cmd/kmemstat/region.c), and
 * the publisher's entry points.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * man7/libkmem.7 (STATISTICS REGION) documents the same layout byte by
 * byte; tests/check_statsregion.c checks that the two agree.  Everything
 * is in the publisher's native byte order.  A change that moves or
 * removes a field raises KST_VERSION; fields may be added at the end of a
 * record (its section gives the record size), and readers use the fields
 * they know.
 */
#ifndef KMEM_STATS_H
#define KMEM_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The first 8 bytes read "KMEMSTAT" on a little-endian machine. */
#define KST_MAGIC               0x544154534d454d4bULL
#define KST_VERSION             1
#define KST_HEADER_SIZE         256
#define KST_NAMELEN             32      /* names, with their NUL */
#define KST_TUNABLE_NAMELEN     48
#define KST_MAX_SIZE            ((uint64_t)64 << 20)    /* readers' bound */
#define KST_FILE_PREFIX         "libkmem."      /* <dir>/libkmem.<pid> */
#define KST_DEFAULT_DIR         "/dev/shm"

/* The sections, in this order in the header's table. */
enum kst_section_id {
	KST_SEC_CACHES,
	KST_SEC_TASKQS,
	KST_SEC_CLASSES,
	KST_SEC_TUNABLES,
	KST_NSECTIONS
};

/* Where a section's records are: count records of size bytes at offset. */
struct kst_section {
	uint32_t offset;        /* from the start of the region */
	uint32_t count;
	uint32_t size;          /* bytes per record, >= the version's first */
	uint32_t reserved;
};

/*
 * The header, at offset 0.  magic .. header_size never change; pid ..
 * comm are set when the region is created.  seq is a sequence lock: the
 * publisher makes it odd, rewrites size .. sect and the records, and makes
 * it even again; a reader copies the region and accepts the copy only if
 * seq was even and the same before and after.  The four control words
 * are outside the sequence lock: a reader with write access (the owner)
 * adds 1 to a request word with an atomic add; the publisher, at its next
 * pass (within a second), acts and then stores the request's value in the
 * matching *_done word, after publishing.
 */
struct kst_header {
	uint64_t magic;                 /*   0 KST_MAGIC */
	uint32_t version;               /*   8 KST_VERSION */
	uint32_t header_size;           /*  12 KST_HEADER_SIZE */
	_Atomic uint64_t seq;           /*  16 odd while being written */
	uint64_t size;                  /*  24 bytes in use, header included */
	int64_t pid;                    /*  32 the publishing process */
	uint64_t proc_start;            /*  40 its /proc/PID/stat starttime */
	int64_t created;                /*  48 CLOCK_REALTIME ns */
	int64_t published;              /*  56 CLOCK_REALTIME ns, last one */
	uint64_t publishes;             /*  64 publishes so far */
	uint32_t interval;              /*  72 seconds between publishes */
	uint32_t ncpus;                 /*  76 possible CPUs */
	char comm[KST_NAMELEN];         /*  80 command name, NUL-terminated */
	uint64_t arena_inuse;           /* 112 bytes of slabs, large blocks */
	uint64_t arena_reserved;        /* 120 address space reserved */
	struct kst_section sect[KST_NSECTIONS]; /* 128 */
	_Atomic uint64_t reap_request;  /* 192 readers add 1: reap now */
	_Atomic uint64_t reap_done;     /* 200 last reap_request acted on */
	_Atomic uint64_t publish_request; /* 208 readers add 1: publish now */
	_Atomic uint64_t publish_done;  /* 216 last publish_request served */
	uint64_t reserved[4];           /* 224 zero */
};

/*
 * Records.  Each is a name followed by 64-bit fields, listed once here so
 * that the publisher, the reader, kmemstat's JSON output and the tests
 * use the same names (those of struct kmem_cache_stats where it has them).
 */
#define KST_CACHE_FIELDS(X)                                             \
	X(id)                   /* opaque; never reused by the image */ \
	X(obj_size) X(obj_align) X(cflags) X(slab_size) X(objs_per_slab) \
	X(slab_total) X(slab_alloc) X(slab_max)                         \
	X(obj_total) X(obj_alloc) X(obj_max)                            \
	X(obj_inuse)            /* alloc - free: held by the program */ \
	X(obj_cached)           /* constructed, in magazines and depot */ \
	X(obj_emergency) X(obj_emergency_max) X(obj_deadlock)           \
	X(alloc) X(alloc_fail) X(free) X(ctor_calls) X(dtor_calls)      \
	X(mem_inuse)            /* obj_inuse x object chunk, bytes */   \
	X(mem_total) X(mem_meta)                                        \
	X(mag_size) X(mag_alloc_hits) X(mag_free_hits)                  \
	X(depot_full) X(depot_empty) X(depot_contention) X(mag_flushes) \
	X(slab_grows) X(grow_waits) X(nr_nodes)                         \
	X(destroyed)            /* 1: destroyed with objects still out */ \
	X(mem_carved)

#define KST_TASKQ_FIELDS(X)                                             \
	X(threads) X(threads_max) X(threads_idle) X(tasks_pending)      \
	X(tasks_delayed) X(tasks_dispatched) X(tasks_executed)          \
	X(tasks_cancelled) X(entries_allocated)

#define KST_CLASS_FIELDS(X)                                             \
	X(size) X(almost_full) X(almost_empty) X(obj_allocated)         \
	X(obj_used) X(pages_used) X(pages_per_slab) X(freeable)         \
	X(pages_carved)

#define KST_U64_FIELD(f)        uint64_t f;

struct kst_cache {
	char name[KST_NAMELEN];
	KST_CACHE_FIELDS(KST_U64_FIELD)
};

struct kst_taskq {
	char name[KST_NAMELEN];
	KST_TASKQ_FIELDS(KST_U64_FIELD)
};

struct kst_class {
	char name[KST_NAMELEN];
	KST_CLASS_FIELDS(KST_U64_FIELD)
};

/*
 * The records as version 1 first had them: a reader takes records this
 * long (a process started with an older libkmem) and reads the fields
 * added since as 0.
 */
#define KST_CACHE_SIZE_MIN      offsetof(struct kst_cache, mem_carved)
#define KST_CLASS_SIZE_MIN      offsetof(struct kst_class, pages_carved)

/* A tunable; an enum tunable has the words of its values. */
struct kst_tunable {
	char name[KST_TUNABLE_NAMELEN];
	char word[16];                  /* the value's word, or "" */
	char words[64];                 /* "rseq|lock", or "" */
	int64_t value;
	int64_t dflt;
	int64_t min;
	int64_t max;
};

_Static_assert(sizeof (struct kst_header) == KST_HEADER_SIZE,
    "the version 1 header is 256 bytes");
_Static_assert(sizeof (struct kst_cache) == 328, "cache record");
_Static_assert(KST_CACHE_SIZE_MIN == 320, "first cache record");
_Static_assert(sizeof (struct kst_taskq) == 104, "taskq record");
_Static_assert(sizeof (struct kst_class) == 104, "class record");
_Static_assert(KST_CLASS_SIZE_MIN == 96, "first class record");
_Static_assert(sizeof (struct kst_tunable) == 160, "tunable record");

/* ---------------------------------------------------- the publisher */
#include "libkmem/taskq.h"

/*
 * Called once, when the kmem taskq starts (reap.c): reads KMEM_STATS_DIR
 * and starts the publishing task on tq.
 */
void stats_start(taskq_t *tq);

/* Queue the publishing tick that could not be (reap_retry), if any. */
void stats_retry(void);

/* fork() handlers (fork.c): first to lock, last to unlock. */
void stats_fork_prepare(void);
void stats_fork_parent(void);
void stats_fork_child(void);

/*
 * Test hooks: publish now (creating the region if needed), and the path
 * of this process's region ("" when it has none).
 */
void stats_publish_now(void);
const char *stats_path(void);

/*
 * Field 22 (starttime, clock ticks) of the text of /proc/PID/stat in buf,
 * or 0.  The command, field 2, is in parentheses and may hold anything,
 * so the fields are counted from the last ')'.  The publisher records its
 * own, kmemstat compares a region's with its pid's: a reused pid differs.
 */
static inline uint64_t
stats_stat_starttime(const char *buf)
{
	const char *p = strrchr(buf, ')');

	if (p == NULL)
		return (0);
	p++;
	for (int field = 3; field < 22; field++) {
		while (*p == ' ')
			p++;
		while (*p != ' ' && *p != '\0')
			p++;
	}
	return (strtoull(p, NULL, 10));
}

#endif /* KMEM_STATS_H */
