/*
 * dlclose.c - libkmem brought in by dlopen() (a plugin that links it, say)
 * must stay mapped after dlclose(): its threads - the kmem taskq, the
 * statistics publisher - run its code for the life of the process.  The
 * program dlopens the build's libkmem.so (argv[1], default
 * lib/.libs/libkmem.so from the build directory), starts those threads
 * with a cache, dlcloses it, checks that it is still loaded and lives
 * through two reap intervals of 1 s.  It links no libkmem itself.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <libkmem/kmem.h>

typedef kmem_cache_t *create_fn(const char *, size_t, size_t, kmem_ctor_t *,
    kmem_dtor_t *, kmem_reclaim_t *, void *, vmem_t *, int);
typedef void *alloc_fn(kmem_cache_t *, int);
typedef void free_fn(kmem_cache_t *, void *);
typedef void destroy_fn(kmem_cache_t *);

int
main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "lib/.libs/libkmem.so";
	create_fn *create;
	alloc_fn *alloc;
	free_fn *fre;
	destroy_fn *destroy;
	kmem_cache_t *cp;
	void *h, *objs[1000];

	alarm(60);
	(void) setenv("KMEM_REAP_INTERVAL", "1", 1);
	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "dlclose: %s\n", dlerror());
		return (1);
	}
	create = (create_fn *)dlsym(h, "kmem_cache_create");
	alloc = (alloc_fn *)dlsym(h, "kmem_cache_alloc");
	fre = (free_fn *)dlsym(h, "kmem_cache_free");
	destroy = (destroy_fn *)dlsym(h, "kmem_cache_destroy");
	if (create == NULL || alloc == NULL || fre == NULL ||
	    destroy == NULL) {
		fprintf(stderr, "dlclose: %s lacks the cache API\n", path);
		return (1);
	}
	if ((cp = create("plugin", 128, 0, NULL, NULL, NULL, NULL, NULL,
	    0)) == NULL) {
		fprintf(stderr, "dlclose: kmem_cache_create failed\n");
		return (1);
	}
	for (int i = 0; i < 1000; i++)
		objs[i] = alloc(cp, KM_SLEEP);
	for (int i = 0; i < 1000; i++)
		fre(cp, objs[i]);
	destroy(cp);
	(void) dlclose(h);
	if (dlopen(path, RTLD_NOW | RTLD_NOLOAD) == NULL) {
		fprintf(stderr, "dlclose: libkmem was unloaded while its "
		    "threads run\n");
		return (1);
	}
	sleep(2);               /* reap ticks run libkmem's code meanwhile */
	printf("dlclose: libkmem stays loaded after dlclose\n");
	return (0);
}
