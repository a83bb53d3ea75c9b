/*
 * region.c - reading a libkmem statistics region: a consistent copy of
 * the file (the publisher's sequence lock), then every field checked
 * before use.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The file may be anything: a region of another version, one cut short,
 * one that a dying publisher left half-written, or garbage under the
 * right name.  region_parse() reads only within the bytes it was given,
 * checks the magic, the version, the header's sizes, every section's
 * offset, record size and count against the region's length (in 64-bit
 * arithmetic: no overflow), that sections do not overlap, and that every
 * name is NUL-terminated, and says what was wrong in one line.
 *
 * region_read() copies the file with pread(2) rather than mapping it: a
 * file truncated under a mapping would raise SIGBUS, pread just returns
 * less.  The copy is accepted when the sequence number read before it,
 * the one inside it and the one read after it are equal and even.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "region.h"

#define REGION_TRIES    500     /* 1 ms apart */

static const char *const region_section_names[KST_NSECTIONS] = {
	"caches", "taskqs", "classes", "tunables"
};

/* The shortest records a section may have, and the ones this reader knows. */
static const size_t region_record_sizes[KST_NSECTIONS] = {
	KST_CACHE_SIZE_MIN, sizeof (struct kst_taskq),
	KST_CLASS_SIZE_MIN, sizeof (struct kst_tunable)
};

static int
region_err(int status, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		(void) vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return (status);
}

/* Return status, with a reason in err (the caller's err, errlen). */
#define	REGION_FAIL(status, ...)        \
	return (region_err((status), err, errlen, __VA_ARGS__))

static bool
region_nul_terminated(const char *s, size_t len)
{
	return (memchr(s, '\0', len) != NULL);
}

void
region_free(struct region *r)
{
	free(r->caches);
	free(r->taskqs);
	free(r->classes);
	free(r->tunables);
	memset(r, 0, sizeof (*r));
}

/*
 * Copy a checked section's records into an array of known records; the
 * fields a shorter (older) record lacks read 0.
 */
static void *
region_copy_section(const unsigned char *buf, const struct kst_section *s,
    size_t known)
{
	unsigned char *out = calloc(s->count != 0 ? s->count : 1, known);

	if (out == NULL)
		return (NULL);
	for (uint32_t i = 0; i < s->count; i++)
		memcpy(out + (size_t)i * known, buf + s->offset +
		    (size_t)i * s->size, s->size < known ? s->size : known);
	return (out);
}

int
region_parse(const void *buf, size_t len, struct region *r, char *err,
    size_t errlen)
{
	const unsigned char *b = buf;
	struct kst_header *h = &r->hdr;
	uint32_t order[KST_NSECTIONS];

	memset(r, 0, sizeof (*r));
	if (len < sizeof (h->magic))
		REGION_FAIL(REGION_TRUNCATED, "truncated: "
		    "%zu bytes, a region starts with a %d-byte header", len,
		    KST_HEADER_SIZE);
	memcpy(&h->magic, b, sizeof (h->magic));
	if (h->magic != KST_MAGIC)
		REGION_FAIL(REGION_MAGIC, "not a libkmem "
		    "statistics region (bad magic 0x%016" PRIx64 ")",
		    h->magic);
	if (len < offsetof(struct kst_header, header_size))
		REGION_FAIL(REGION_TRUNCATED, "truncated: "
		    "%zu bytes, a region starts with a %d-byte header", len,
		    KST_HEADER_SIZE);
	memcpy(&h->version, b + offsetof(struct kst_header, version),
	    sizeof (h->version));
	if (h->version != KST_VERSION)
		REGION_FAIL(REGION_VERSION, "region version "
		    "%" PRIu32 "; this reader knows version %d only",
		    h->version, KST_VERSION);
	if (len < KST_HEADER_SIZE)
		REGION_FAIL(REGION_TRUNCATED, "truncated: "
		    "%zu bytes, the header alone is %d", len,
		    KST_HEADER_SIZE);
	memcpy(h, b, sizeof (*h));
	if (h->header_size < KST_HEADER_SIZE || h->header_size % 8 != 0)
		REGION_FAIL(REGION_CORRUPT, "corrupt: header "
		    "size %" PRIu32 " (at least %d, a multiple of 8)",
		    h->header_size, KST_HEADER_SIZE);
	if (h->header_size > len)
		REGION_FAIL(REGION_TRUNCATED, "truncated: "
		    "%zu bytes, the header says it alone is %" PRIu32, len,
		    h->header_size);
	if (atomic_load(&h->seq) % 2 != 0)
		REGION_FAIL(REGION_BUSY, "being written "
		    "(sequence number %" PRIu64 " is odd)",
		    (uint64_t)atomic_load(&h->seq));
	if (h->size < h->header_size)
		REGION_FAIL(REGION_CORRUPT, "corrupt: size "
		    "%" PRIu64 " is less than the header's %" PRIu32, h->size,
		    h->header_size);
	if (h->size > len)
		REGION_FAIL(REGION_TRUNCATED, "truncated: "
		    "%zu bytes, the region says %" PRIu64, len, h->size);
	if (h->pid <= 0 || h->pid > INT32_MAX)
		REGION_FAIL(REGION_CORRUPT, "corrupt: pid "
		    "%" PRId64, h->pid);
	if (!region_nul_terminated(h->comm, sizeof (h->comm)))
		REGION_FAIL(REGION_CORRUPT, "corrupt: the "
		    "command name is not terminated");

	for (int i = 0; i < KST_NSECTIONS; i++) {
		const struct kst_section *s = &h->sect[i];
		const char *name = region_section_names[i];

		if (s->size < region_record_sizes[i] || s->size % 8 != 0 ||
		    s->size > 65536)
			REGION_FAIL(REGION_CORRUPT, "corrupt: "
			    "%s records of %" PRIu32 " bytes (at least %zu, a "
			    "multiple of 8)", name, s->size,
			    region_record_sizes[i]);
		if (s->offset < h->header_size || s->offset % 8 != 0 ||
		    s->offset > h->size)
			REGION_FAIL(REGION_CORRUPT, "corrupt: "
			    "%s at offset %" PRIu32 ", outside the region's %"
			    PRIu32 "..%" PRIu64, name, s->offset,
			    h->header_size, h->size);
		if ((uint64_t)s->count * s->size > h->size - s->offset)
			REGION_FAIL(REGION_CORRUPT, "corrupt: "
			    "%" PRIu32 " %s records of %" PRIu32 " bytes at %"
			    PRIu32 " end beyond the region's %" PRIu64 " bytes",
			    s->count, name, s->size, s->offset, h->size);
		order[i] = (uint32_t)i;
	}
	/* Sections in offset order must not overlap. */
	for (int i = 1; i < KST_NSECTIONS; i++) {
		for (int j = i; j > 0 && h->sect[order[j - 1]].offset >
		    h->sect[order[j]].offset; j--) {
			uint32_t t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	}
	/*
	 * Each non-empty one starts at or after the end of the non-empty one
	 * before it (an empty one in between, at any offset, is skipped).
	 */
	for (int i = 0, prev = -1; i < KST_NSECTIONS; i++) {
		const struct kst_section *c = &h->sect[order[i]];
		const struct kst_section *a;

		if (c->count == 0)
			continue;
		if (prev >= 0) {
			a = &h->sect[order[prev]];
			if (a->offset + (uint64_t)a->count * a->size > c->offset)
				REGION_FAIL(REGION_CORRUPT, "corrupt: "
				    "sections %s and %s overlap",
				    region_section_names[order[prev]],
				    region_section_names[order[i]]);
		}
		prev = i;
	}

	r->caches = region_copy_section(b, &h->sect[KST_SEC_CACHES],
	    sizeof (struct kst_cache));
	r->taskqs = region_copy_section(b, &h->sect[KST_SEC_TASKQS],
	    sizeof (struct kst_taskq));
	r->classes = region_copy_section(b, &h->sect[KST_SEC_CLASSES],
	    sizeof (struct kst_class));
	r->tunables = region_copy_section(b, &h->sect[KST_SEC_TUNABLES],
	    sizeof (struct kst_tunable));
	if (r->caches == NULL || r->taskqs == NULL || r->classes == NULL ||
	    r->tunables == NULL) {
		struct kst_header keep = *h;

		region_free(r);
		r->hdr = keep;
		REGION_FAIL(REGION_NOMEM, "out of memory");
	}
	r->ncaches = h->sect[KST_SEC_CACHES].count;
	r->ntaskqs = h->sect[KST_SEC_TASKQS].count;
	r->nclasses = h->sect[KST_SEC_CLASSES].count;
	r->ntunables = h->sect[KST_SEC_TUNABLES].count;

	for (uint32_t i = 0; i < r->ncaches; i++)
		if (!region_nul_terminated(r->caches[i].name, KST_NAMELEN))
			goto badname;
	for (uint32_t i = 0; i < r->ntaskqs; i++)
		if (!region_nul_terminated(r->taskqs[i].name, KST_NAMELEN))
			goto badname;
	for (uint32_t i = 0; i < r->nclasses; i++)
		if (!region_nul_terminated(r->classes[i].name, KST_NAMELEN))
			goto badname;
	for (uint32_t i = 0; i < r->ntunables; i++) {
		struct kst_tunable *t = &r->tunables[i];

		if (!region_nul_terminated(t->name, sizeof (t->name)) ||
		    !region_nul_terminated(t->word, sizeof (t->word)) ||
		    !region_nul_terminated(t->words, sizeof (t->words)))
			goto badname;
	}
	return (REGION_OK);
badname:
	region_free(r);
	REGION_FAIL(REGION_CORRUPT, "corrupt: a record's "
	    "name is not terminated");
}

/* Read len bytes at off, fewer only at the end of the file; -1 on error. */
static ssize_t
region_pread(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
		    off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return (-1);
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return ((ssize_t)done);
}

/* The sequence number, read on its own; 1 (odd) if it cannot be read. */
static uint64_t
region_seq(int fd)
{
	uint64_t seq;

	if (region_pread(fd, &seq, sizeof (seq),
	    (off_t)offsetof(struct kst_header, seq)) != (ssize_t)sizeof (seq))
		return (1);
	return (seq);
}

int
region_read(int fd, struct region *r, char *err, size_t errlen)
{
	struct timespec pause = { 0, 1000000 };
	unsigned char *buf = NULL;
	size_t cap = 0;
	int rc = REGION_BUSY;

	memset(r, 0, sizeof (*r));
	for (int tries = 0; tries < REGION_TRIES; tries++) {
		struct stat st;
		uint64_t before, after, inside;
		ssize_t n;

		if (tries > 0)
			(void) nanosleep(&pause, NULL);
		if (fstat(fd, &st) != 0) {
			rc = region_err(REGION_IO, err, errlen, "%s",
			    strerror(errno));
			break;
		}
		if (!S_ISREG(st.st_mode)) {
			rc = region_err(REGION_CORRUPT, err, errlen, "not a "
			    "regular file");
			break;
		}
		if ((uint64_t)st.st_size > KST_MAX_SIZE) {
			rc = region_err(REGION_CORRUPT, err, errlen, "corrupt: "
			    "%jd bytes, more than a region can be",
			    (intmax_t)st.st_size);
			break;
		}
		if ((size_t)st.st_size + 1 > cap) {
			unsigned char *nb;

			nb = realloc(buf, (size_t)st.st_size + 1);
			if (nb == NULL) {
				rc = region_err(REGION_NOMEM, err, errlen,
				    "out of memory");
				break;
			}
			buf = nb;
			cap = (size_t)st.st_size + 1;
		}
		before = region_seq(fd);
		/* One byte more than the size: to see that it grew. */
		n = region_pread(fd, buf, (size_t)st.st_size + 1, 0);
		if (n < 0) {
			rc = region_err(REGION_IO, err, errlen, "%s",
			    strerror(errno));
			break;
		}
		after = region_seq(fd);
		if (n < KST_HEADER_SIZE) {
			/* No header: nothing to wait for; say what it is. */
			rc = region_parse(buf, (size_t)n, r, err, errlen);
			break;
		}
		if (n > st.st_size) {
			/* It grew meanwhile (a publisher grows it seldom). */
			rc = region_err(REGION_BUSY, err, errlen, "the file "
			    "grew while being read, again and again: not a "
			    "region being published");
			continue;
		}
		memcpy(&inside, buf + offsetof(struct kst_header, seq),
		    sizeof (inside));
		if (before % 2 != 0 || before != after || inside != before) {
			rc = region_err(REGION_BUSY, err, errlen, "the region "
			    "is being written and did not settle (its "
			    "publisher may have died while writing it)");
			continue;
		}
		rc = region_parse(buf, (size_t)n, r, err, errlen);
		break;
	}
	free(buf);
	return (rc);
}
