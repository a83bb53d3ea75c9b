/*
 * report.c - one-line messages for people: bad arguments, misuse and
 * corruption found by libkmem are reported on stderr as
 * "libkmem: <message>".  The line is formatted on the stack and written
 * with one write(2), so reporting never allocates (libkmem may be the
 * process's malloc) and lines from different threads do not interleave.
 * Control characters become '?': a report is one line whatever it quotes
 * (a name or a value with a newline in it).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kmem_impl.h"

void
kmem_report(const char *fmt, ...)
{
	char line[512];
	int saved = errno, cancel;
	int n = snprintf(line, sizeof (line), "libkmem: ");
	va_list ap;

	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof (line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof (line) - 2)
		n = (int)sizeof (line) - 2;
	for (int i = 0; i < n; i++) {
		if ((unsigned char)line[i] < ' ' || line[i] == 0x7f)
			line[i] = '?';
	}
	line[n++] = '\n';
	cancel = kmem_cancel_off();     /* a report from free(), say */
	(void) !write(STDERR_FILENO, line, (size_t)n);
	kmem_cancel_restore(cancel);
	errno = saved;
}
