/*
 * tunenv.c - prints the value libkmem took for kmem_reap_interval and
 * whether the process runs set-user-ID (AT_SECURE).  tests/setuid.sh runs
 * it with KMEM_REAP_INTERVAL set, plainly and as a set-user-ID copy.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <sys/auxv.h>

#include <libkmem/kmem.h>

int
main(void)
{
	int64_t v;

	if (kmem_tunable_get("kmem_reap_interval", &v) != 0) {
		perror("tunenv: kmem_tunable_get");
		return (1);
	}
	printf("secure=%lu kmem_reap_interval=%" PRId64 "\n",
	    getauxval(AT_SECURE), v);
	return (0);
}
