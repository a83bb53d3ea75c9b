/*
 * emergency.c - emergency objects: one object mapped on its own.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * When a cache cannot get a slab in time - the arena's mmap failed, or
 * (with the taskq) growth is too slow for the caller - it can still hand
 * out an object by mapping just that object.  Such objects live outside
 * the arena, so vmem_owner() says NULL for them; each cache keeps its
 * emergency objects in a red-black tree keyed by address (libbsd's
 * <sys/tree.h>) so that kmem_cache_free() can recognise one and unmap it.
 * They are counted in obj_emergency / obj_emergency_max.
 *
 * INVARIANTS.  Every object in the tree is mapped, page aligned, and
 * 'len' bytes long (its size rounded up to pages); no object outside the
 * tree is unmapped here.
 *
 * LOCKING.  em->lock protects the tree, max and bytes; count is atomic so
 * the free path can check "does this cache have any?" without the lock.
 * mmap and munmap run outside the lock.
 */
#include "config.h"

#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>
#include <bsd/sys/cdefs.h>
#include <bsd/sys/tree.h>

#include "emergency.h"
#include "kmem_impl.h"
#include "meta.h"

struct emergency_node {
	RB_ENTRY(emergency_node) link;
	uintptr_t addr;
	size_t len;
};
META_FITS(struct emergency_node);

static int
emergency_cmp(struct emergency_node *a, struct emergency_node *b)
{
	return (a->addr < b->addr ? -1 : a->addr > b->addr);
}

/* libbsd leaves __unused undefined (it clashes with a Linux header). */
#define __unused __attribute__((__unused__))
RB_GENERATE_STATIC(emergency_tree, emergency_node, link, emergency_cmp)
#undef __unused

static _Atomic int emergency_inject;

void
emergency_init(struct emergency *em)
{
	RB_INIT(&em->tree);
	atomic_store(&em->count, 0);
	em->max = 0;
	em->bytes = 0;
}

static bool
emergency_fail_injected(void)
{
	int n = atomic_load_explicit(&emergency_inject, memory_order_relaxed);

	return (n < 0 || (n > 0 && atomic_compare_exchange_strong(
	    &emergency_inject, &n, n - 1)));
}

void *
emergency_alloc(struct emergency *em, size_t size)
{
	size_t len = KMEM_P2ROUNDUP(size, (size_t)sysconf(_SC_PAGESIZE));
	struct emergency_node *node;
	void *obj;

	if (emergency_fail_injected())
		return (NULL);
	node = meta_alloc();
	if (node == NULL)
		return (NULL);
	obj = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (obj == MAP_FAILED) {
		meta_free(node);
		return (NULL);
	}
	node->addr = (uintptr_t)obj;
	node->len = len;
	pthread_mutex_lock(em->lock);
	(void) RB_INSERT(emergency_tree, &em->tree, node);
	uint64_t n = atomic_fetch_add(&em->count, 1) + 1;
	if (n > em->max)
		em->max = n;
	em->bytes += len;
	pthread_mutex_unlock(em->lock);
	return (obj);
}

bool
emergency_release(struct emergency *em, void *obj)
{
	struct emergency_node key, *node;

	key.addr = (uintptr_t)obj;
	pthread_mutex_lock(em->lock);
	node = RB_FIND(emergency_tree, &em->tree, &key);
	if (node != NULL) {
		(void) RB_REMOVE(emergency_tree, &em->tree, node);
		atomic_fetch_sub(&em->count, 1);
		em->bytes -= node->len;
	}
	pthread_mutex_unlock(em->lock);
	if (node == NULL)
		return (false);
	(void) munmap(obj, node->len);
	meta_free(node);
	return (true);
}

bool
emergency_owns(struct emergency *em, const void *obj)
{
	struct emergency_node key;
	bool found;

	if (atomic_load_explicit(&em->count, memory_order_relaxed) == 0)
		return (false);
	key.addr = (uintptr_t)obj;
	pthread_mutex_lock(em->lock);
	found = RB_FIND(emergency_tree, &em->tree, &key) != NULL;
	pthread_mutex_unlock(em->lock);
	return (found);
}

void
emergency_walk(struct emergency *em, void (*fn)(void *, void *), void *arg)
{
	struct emergency_node *node;

	pthread_mutex_lock(em->lock);
	RB_FOREACH(node, emergency_tree, &em->tree)
		fn((void *)node->addr, arg);
	pthread_mutex_unlock(em->lock);
}

void
emergency_inject_failures(int n)
{
	atomic_store(&emergency_inject, n);
}
