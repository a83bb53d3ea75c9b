/*
 * region.h - reading a libkmem statistics region (layout: lib/stats.h,
 * man7/libkmem.7): a consistent copy of the file, checked field by field,
 * parsed into arrays of records.  Shared by kmemstat and by the reader's
 * fuzz test (tests/check_statsregion.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef KMEMSTAT_REGION_H
#define KMEMSTAT_REGION_H

#include <stddef.h>
#include <stdint.h>

#include "stats.h"

/* What was wrong with a region; 0 is none. */
enum region_status {
	REGION_OK = 0,
	REGION_IO,              /* the file could not be read */
	REGION_NOMEM,
	REGION_MAGIC,           /* not a statistics region */
	REGION_VERSION,         /* a layout this reader does not know */
	REGION_TRUNCATED,       /* shorter than its header says */
	REGION_CORRUPT,         /* a field out of bounds or inconsistent */
	REGION_BUSY             /* never stable: being written (or died so) */
};

/*
 * A parsed region: the header, and each section's records copied into an
 * array of this version's record structures (fields a newer publisher
 * appended to a record are dropped).  Every name is NUL-terminated.
 */
struct region {
	struct kst_header hdr;
	struct kst_cache *caches;
	uint32_t ncaches;
	struct kst_taskq *taskqs;
	uint32_t ntaskqs;
	struct kst_class *classes;
	uint32_t nclasses;
	struct kst_tunable *tunables;
	uint32_t ntunables;
};

/*
 * Check and parse len bytes.  On success 0 and *r filled (free it with
 * region_free); otherwise a region_status, *r empty, and a one-line
 * reason (without the file's name) in err.  Never reads outside buf.
 */
int region_parse(const void *buf, size_t len, struct region *r, char *err,
    size_t errlen);

/*
 * A consistent copy of the region open on fd, parsed: retried while the
 * publisher writes it (odd or changing sequence number).
 */
int region_read(int fd, struct region *r, char *err, size_t errlen);

void region_free(struct region *r);

#endif /* KMEMSTAT_REGION_H */
