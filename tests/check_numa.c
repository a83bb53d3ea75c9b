/*
 * check_numa.c - NUMA placement.
 *
 * On the machine the suite runs on (one node here, two or more under
 * tests/numa-qemu.sh): every slab page sits on the node of the CPU that
 * grew the cache, per-CPU structures sit on their CPU's node without
 * splitting mappings, and kmem_numa_policy=interleave / none behave as
 * documented.
 *
 * On a simulated topology (cpu_topology_override(), a test hook): refills
 * take from the local node, then the nearest; frees go back to the
 * object's home node; per-node counts add up to the totals; reaping frees
 * each node's empty slabs.  The simulation only renames nodes - memory is
 * never bound to a simulated node - so it runs anywhere, even on one CPU:
 * the test moves "its" CPU from node to node by changing the map.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libkmem/kmem.h"
#include "libkmem/objpool.h"
#include "cache.h"
#include "cpu.h"
#include "place.h"
#include "slab.h"
#include "tunables.h"
#include "testutil.h"

/* get_mempolicy(2) by its system call: no libnuma needed. */
#ifndef MPOL_F_NODE
#define MPOL_DEFAULT    0
#define MPOL_PREFERRED  1
#define MPOL_INTERLEAVE 3
#define MPOL_F_NODE     (1 << 0)
#define MPOL_F_ADDR     (1 << 1)
#endif

#define MASK_BITS       1024

/* The node the page holding addr is on (it must have been touched). */
static int
page_node(const void *addr)
{
	int node = -1;

	ck_assert_int_eq(syscall(SYS_get_mempolicy, &node, NULL, 0UL, addr,
	    MPOL_F_NODE | MPOL_F_ADDR), 0);
	return (node);
}

/* The policy of the mapping at addr; *node: the one node of its mask. */
static int
addr_policy(const void *addr, int *node)
{
	unsigned long mask[MASK_BITS / (8 * sizeof (unsigned long))];
	int mode = -1, bits = 0;

	memset(mask, 0, sizeof (mask));
	ck_assert_int_eq(syscall(SYS_get_mempolicy, &mode, mask,
	    (unsigned long)MASK_BITS, addr, MPOL_F_ADDR), 0);
	*node = -1;
	for (int n = 0; n < MASK_BITS; n++) {
		if (mask[n / (8 * sizeof (long))] & (1UL << (n % (8 *
		    sizeof (long))))) {
			*node = n;
			bits++;
		}
	}
	if (bits > 1)
		*node = -2;             /* more than one */
	return (mode);
}

/* The node of a CPU as sysfs tells it (0 where sysfs names none). */
static int
sysfs_node(int cpu)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int node = 0;

	snprintf(path, sizeof (path), "/sys/devices/system/cpu/cpu%d", cpu);
	if ((d = opendir(path)) == NULL)
		return (0);
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "node", 4) == 0 &&
		    e->d_name[4] >= '0' && e->d_name[4] <= '9') {
			node = atoi(e->d_name + 4);
			break;
		}
	}
	closedir(d);
	return (node);
}

/* A CPU we may run on whose node differs from 'node', else 'cpu'. */
static int
cpu_elsewhere(int cpu, int node)
{
	for (int i = 0; i < test_online_cpus(); i++) {
		int c = test_nth_cpu(i);

		if (sysfs_node(c) != node)
			return (c);
	}
	return (cpu);
}

static struct kmem_cache_stats
stats_of(kmem_cache_t *cp)
{
	struct kmem_cache_stats st;

	ck_assert_int_eq(kmem_cache_stats(cp, &st), 0);
	return (st);
}

/* The per-node entries add up to the cache's totals. */
static void
check_node_sums(const struct kmem_cache_stats *st)
{
	struct kmem_node_stats sum = { 0 };

	ck_assert_uint_ge(st->nr_nodes, 1);
	ck_assert_uint_le(st->nr_nodes, KMEM_STATS_NODES);
	for (uint64_t n = 0; n < st->nr_nodes; n++) {
		sum.slab_total += st->node[n].slab_total;
		sum.slab_alloc += st->node[n].slab_alloc;
		sum.obj_total += st->node[n].obj_total;
		sum.obj_alloc += st->node[n].obj_alloc;
		ck_assert_uint_le(st->node[n].slab_alloc,
		    st->node[n].slab_total);
		ck_assert_uint_le(st->node[n].obj_alloc,
		    st->node[n].obj_total);
	}
	for (uint64_t n = st->nr_nodes; n < KMEM_STATS_NODES; n++)
		ck_assert_uint_eq(st->node[n].slab_total, 0);
	ck_assert_uint_eq(sum.slab_total, st->slab_total);
	ck_assert_uint_eq(sum.slab_alloc, st->slab_alloc);
	ck_assert_uint_eq(sum.obj_total + st->obj_emergency, st->obj_total);
	ck_assert_uint_eq(sum.obj_alloc + st->obj_emergency, st->obj_alloc);
}

static void
restore_policy(void)
{
	ck_assert_int_eq(tunable_set_id(KT_NUMA_POLICY, NUMA_LOCAL), 0);
	ck_assert_int_eq(tunable_set_id(KT_CACHE_GROW_AHEAD, 1), 0);
	cpu_topology_override(0, NULL, NULL);
}

/* ------------------------------------------------ the real machine */

/*
 * For each CPU: a cache grown there has every slab page on that CPU's
 * node, even when the pages are first touched from a CPU of another node
 * (so first-touch placement alone would not pass on a NUMA machine).
 */
START_TEST(test_slab_pages_on_cpu_node)
{
	enum { N = 2048, SIZE = 512 };
	static void *v[N];
	int ncpus = test_online_cpus();

	cpu_init();
	for (int i = 0; i < ncpus && i < 8; i++) {
		int cpu = test_nth_cpu(i), want = sysfs_node(cpu);
		kmem_cache_t *cp = kmem_cache_create("placed", SIZE, 0, NULL,
		    NULL, NULL, NULL, NULL, 0);
		struct kmem_cache_stats st;
		unsigned int pages = 0;
		char *last = NULL;

		ck_assert_int_eq(test_pin(cpu), 0);
		for (int k = 0; k < N; k++)
			ck_assert_ptr_nonnull(v[k] = kmem_cache_alloc(cp,
			    KM_SLEEP));
		ck_assert_int_eq(test_pin(cpu_elsewhere(cpu, want)), 0);
		for (int k = 0; k < N; k++) {
			char *page = (char *)((uintptr_t)v[k] &
			    ~(uintptr_t)4095);

			memset(v[k], 0x5a, SIZE);
			if (page == last)
				continue;
			ck_assert_msg(page_node(page) == want, "cpu %d: page "
			    "%p on node %d, not %d", cpu, (void *)page,
			    page_node(page), want);
			last = page;
			pages++;
		}
		ck_assert_uint_ge(pages, N * SIZE / 4096);
		if (cpu_numa_real()) {
			int node;

			ck_assert_int_eq(addr_policy(v[0], &node),
			    MPOL_PREFERRED);
			ck_assert_int_eq(node, want);
		}
		st = stats_of(cp);
		ck_assert_uint_ge(st.node[st.nr_nodes > 1 ? want : 0].obj_alloc,
		    N);
		check_node_sums(&st);
		for (int k = 0; k < N; k++)
			kmem_cache_free(cp, v[k]);
		kmem_cache_destroy(cp);
	}
	test_pin(test_nth_cpu(0));
}
END_TEST

/* Lines of /proc/self/maps: the process's mappings. */
static int
mapping_count(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0, c;

	ck_assert_ptr_nonnull(f);
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return (n);
}

/*
 * Per-CPU structures - a cache's magazines and magazine state, an
 * objpool's rings - sit on their CPU's node on a NUMA machine, and carry
 * no memory policy anywhere: a policy per CPU range split the metadata
 * mappings, about 11 more mappings per cache on two nodes.
 */
START_TEST(test_percpu_placement)
{
	enum { OBJS = 100 };
	struct objpool_head pool;
	kmem_cache_t *cp = kmem_cache_create("percpu", 64, 0, NULL, NULL,
	    NULL, NULL, NULL, 0);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *v[OBJS];
	int node;

	ck_assert_int_eq(objpool_init(&pool, 256, 64, NULL, NULL, NULL), 0);
	for (int i = 0; i < test_online_cpus() && i < 8; i++) {
		unsigned int c = (unsigned int)test_nth_cpu(i);
		const char *pair = cp->mag.mags + c * cp->mag.pair_bytes;
		const char *ring = pool.op_rings + c * pool.op_ring_stride;
		const char *pcpu = (const char *)&cp->mag.cpu[c];
		unsigned int first = c;

		/* This CPU's refills and frees write its magazines. */
		ck_assert_int_eq(test_pin((int)c), 0);
		for (int k = 0; k < OBJS; k++)
			ck_assert_ptr_nonnull(v[k] = kmem_cache_alloc(cp,
			    KM_SLEEP));
		for (int k = 0; k < OBJS; k++)
			kmem_cache_free(cp, v[k]);
		ck_assert_int_eq(addr_policy(pair, &node), MPOL_DEFAULT);
		ck_assert_int_eq(addr_policy(ring, &node), MPOL_DEFAULT);
		ck_assert_int_eq(addr_policy(pcpu, &node), MPOL_DEFAULT);
		if (!cpu_numa_real())
			continue;
		ck_assert_int_eq(page_node(pair), cpu_node(c));
		ck_assert_int_eq(page_node(ring), cpu_node(c));
		/*
		 * A page of magazine state: its first CPU's node, where the
		 * state spans pages (where it fits one, that page holds every
		 * node's CPUs and is not moved).
		 */
		if (cpu_count() * sizeof (struct mag_cpu) <= page)
			continue;
		while (first > 0 && ((uintptr_t)&cp->mag.cpu[first - 1] &
		    ~(uintptr_t)(page - 1)) == ((uintptr_t)pcpu &
		    ~(uintptr_t)(page - 1)))
			first--;
		ck_assert_int_eq(page_node(pcpu), cpu_node(first));
	}
	test_pin(test_nth_cpu(0));
	objpool_fini(&pool);
	kmem_cache_destroy(cp);
}
END_TEST

/*
 * Caches used on every CPU add next to no mappings: their metadata runs
 * share mappings, and placement does not split them (with a policy per
 * CPU range, 200 caches made about 2,200 mappings on two nodes, and a
 * process reached vm.max_map_count at about 6,000 caches).
 */
START_TEST(test_percpu_mappings)
{
	enum { N = 200 };
	kmem_cache_t *cps[N];
	int before, after;
	char name[32];

	kmem_cache_destroy(kmem_cache_create("warm", 64, 0, NULL, NULL, NULL,
	    NULL, NULL, 0));
	before = mapping_count();
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof (name), "map%d", i);
		cps[i] = kmem_cache_create(name, 64, 0, NULL, NULL, NULL, NULL,
		    NULL, 0);
		ck_assert_ptr_nonnull(cps[i]);
	}
	for (int i = 0; i < test_online_cpus() && i < 8; i++) {
		ck_assert_int_eq(test_pin(test_nth_cpu(i)), 0);
		for (int k = 0; k < N; k++)
			kmem_cache_free(cps[k], kmem_cache_alloc(cps[k],
			    KM_SLEEP));
	}
	test_pin(test_nth_cpu(0));
	after = mapping_count();
	fprintf(stderr, "%d caches used on %d CPUs: %d more mappings\n", N,
	    KMEM_MIN(test_online_cpus(), 8), after - before);
#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)       /* theirs add some */
	ck_assert_msg(after - before <= 20, "%d caches made %d mappings", N,
	    after - before);
#endif
	for (int i = 0; i < N; i++)
		kmem_cache_destroy(cps[i]);
}
END_TEST

struct grower {
	kmem_cache_t **caches;
	pthread_barrier_t *turn;
	int cpu;
	void *objs[40 * 500];
};

static void *
grower_thread(void *arg)
{
	struct grower *g = arg;

	ck_assert_int_eq(test_pin(g->cpu), 0);
	for (int round = 0; round < 40; round++) {
		pthread_barrier_wait(g->turn);
		for (int k = 0; k < 500; k++)
			ck_assert_ptr_nonnull(g->objs[round * 500 + k] =
			    kmem_cache_alloc(g->caches[round % 8], KM_SLEEP));
	}
	return (NULL);
}

/*
 * Two threads on CPUs of different nodes (where there are two) grow
 * caches side by side: their slabs, bound to two nodes, add next to no
 * mappings (13 on two nodes, 12 on one).  Bound span by span from one
 * pool of address space, every slab was a mapping of its own: 1,900 more
 * here, on two nodes.
 */
START_TEST(test_slab_mappings)
{
	static struct grower g[2];
	kmem_cache_t *caches[8];
	pthread_barrier_t turn;
	pthread_t t[2];
	int before, after, other = test_nth_cpu(0);
	char name[32];

	for (int i = 0; i < test_online_cpus(); i++) {
		if (sysfs_node(test_nth_cpu(i)) != sysfs_node(test_nth_cpu(0)) ||
		    other == test_nth_cpu(0))
			other = test_nth_cpu(i);
	}
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof (name), "grown%d", i);
		ck_assert_ptr_nonnull(caches[i] = kmem_cache_create(name, 512,
		    0, NULL, NULL, NULL, NULL, NULL, 0));
	}
	ck_assert_int_eq(pthread_barrier_init(&turn, NULL, 2), 0);
	before = mapping_count();
	for (int i = 0; i < 2; i++) {
		g[i] = (struct grower){ .caches = caches, .turn = &turn,
		    .cpu = i == 0 ? test_nth_cpu(0) : other };
		ck_assert_int_eq(pthread_create(&t[i], NULL, grower_thread,
		    &g[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	after = mapping_count();
	fprintf(stderr, "slabs grown on CPUs %d and %d (nodes %d, %d): %d "
	    "more mappings\n", g[0].cpu, g[1].cpu, sysfs_node(g[0].cpu),
	    sysfs_node(g[1].cpu), after - before);
#if !defined(KMEM_ASAN) && !defined(KMEM_TSAN)       /* theirs add some */
	ck_assert_msg(after - before <= 50, "%d more mappings", after - before);
#endif
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < 40 * 500; k++)
			kmem_cache_free(caches[(k / 500) % 8], g[i].objs[k]);
	for (int i = 0; i < 8; i++)
		kmem_cache_destroy(caches[i]);
	pthread_barrier_destroy(&turn);
}
END_TEST

/*
 * interleave: one slab list; slab pages spread over every node (on one
 * node, all on it).  none: one slab list, no policy.
 */
START_TEST(test_policy_interleave_none)
{
	enum { N = 512 };
	static void *v[N];
	bool seen[MASK_BITS] = { false };
	unsigned int nseen = 0;
	kmem_cache_t *cp;
	struct kmem_cache_stats st;
	int node;

	cpu_init();
	ck_assert_int_eq(tunable_set_id(KT_NUMA_POLICY, NUMA_INTERLEAVE), 0);
	cp = kmem_cache_create("interleaved", 4096, 0, NULL, NULL, NULL, NULL,
	    NULL, 0);
	for (int k = 0; k < N; k++) {
		v[k] = kmem_cache_alloc(cp, KM_SLEEP);
		memset(v[k], 1, 4096);
		node = page_node(v[k]);
		ck_assert_int_ge(node, 0);
		ck_assert_int_lt(node, MASK_BITS);
		if (!seen[node]) {
			seen[node] = true;
			nseen++;
		}
	}
	if (cpu_numa_real()) {
		ck_assert_int_eq(addr_policy(v[0], &node), MPOL_INTERLEAVE);
		ck_assert_uint_eq(nseen, cpu_node_count());
	}
	st = stats_of(cp);
	ck_assert_uint_eq(st.nr_nodes, 1);
	check_node_sums(&st);
	for (int k = 0; k < N; k++)
		kmem_cache_free(cp, v[k]);
	kmem_cache_destroy(cp);

	ck_assert_int_eq(tunable_set_id(KT_NUMA_POLICY, NUMA_NONE), 0);
	cp = kmem_cache_create("unplaced", 4096, 0, NULL, NULL, NULL, NULL,
	    NULL, 0);
	v[0] = kmem_cache_alloc(cp, KM_SLEEP);
	ck_assert_int_eq(addr_policy(v[0], &node), MPOL_DEFAULT);
	ck_assert_uint_eq(stats_of(cp).nr_nodes, 1);
	kmem_cache_free(cp, v[0]);
	kmem_cache_destroy(cp);
	restore_policy();
}
END_TEST

/* The tunable by its words, as KMEM_NUMA_POLICY would set it. */
START_TEST(test_policy_words)
{
	ck_assert_int_eq(tunable_parse_env(KT_NUMA_POLICY, "interleave"), 0);
	ck_assert_int_eq(tunable(KT_NUMA_POLICY), NUMA_INTERLEAVE);
	ck_assert_int_eq(tunable_parse_env(KT_NUMA_POLICY, "none"), 0);
	ck_assert_int_eq(tunable(KT_NUMA_POLICY), NUMA_NONE);
	ck_assert_int_eq(tunable_parse_env(KT_NUMA_POLICY, "local"), 0);
	ck_assert_int_eq(tunable(KT_NUMA_POLICY), NUMA_LOCAL);
	ck_assert_int_eq(tunable_parse_env(KT_NUMA_POLICY, "far"), -1);
	ck_assert_int_eq(tunable(KT_NUMA_POLICY), NUMA_LOCAL);
}
END_TEST

/* ------------------------------------------------ simulated topology */

/*
 * Three nodes.  From node 0 the nearest other node is 2 (15), then 1
 * (30); from node 1 it is 2 (20), then 0.
 */
static const int sim_dist[9] = {
	10, 30, 15,
	30, 10, 20,
	15, 20, 10,
};
static int sim_map[4096];
static int sim_cpu;

/* Run from now on as a CPU of 'node'. */
static void
sim_move(int node)
{
	sim_map[sim_cpu] = node;
	cpu_topology_override(3, sim_map, sim_dist);
}

static void
sim_setup(void)
{
	cpu_init();
	sim_cpu = test_nth_cpu(0);
	ck_assert_int_eq(test_pin(sim_cpu), 0);
	ck_assert_uint_lt(cpu_count(), 4096);
	/* One slab per growth, so the test knows what is where. */
	ck_assert_int_eq(tunable_set_id(KT_CACHE_GROW_AHEAD, 0), 0);
	sim_move(0);
}

static int
home_of(kmem_cache_t *cp, void *obj)
{
	struct kmem_slab *s = slab_of(cp, obj);

	ck_assert_ptr_nonnull(s);
	return ((int)s->node);
}

/*
 * Without magazines every allocation reaches the slab layer: refills
 * prefer the local node, then the nearest with free objects, and grow on
 * the local node only when no node has any.
 */
START_TEST(test_sim_refill_order)
{
	kmem_cache_t *cp;
	struct kmem_cache_stats st;
	unsigned int per;
	void **on0, **on1, *x;

	sim_setup();
	cp = kmem_cache_create("sim", 256, 0, NULL, NULL, NULL, NULL, NULL,
	    KMC_NOMAGAZINE);
	st = stats_of(cp);
	ck_assert_uint_eq(st.nr_nodes, 3);
	per = (unsigned int)st.objs_per_slab;
	on0 = calloc(per, sizeof (void *));
	on1 = calloc(per, sizeof (void *));

	/* Node 0 grows a slab and fills it. */
	for (unsigned int k = 0; k < per; k++) {
		on0[k] = kmem_cache_alloc(cp, KM_SLEEP);
		ck_assert_int_eq(home_of(cp, on0[k]), 0);
	}
	/* Node 1 finds no free object anywhere: it grows its own. */
	sim_move(1);
	on1[0] = kmem_cache_alloc(cp, KM_SLEEP);
	ck_assert_int_eq(home_of(cp, on1[0]), 1);
	/* A free from node 1 goes home to node 0's slab ... */
	kmem_cache_free(cp, on0[0]);
	st = stats_of(cp);
	ck_assert_uint_eq(st.node[0].obj_alloc, per - 1);
	ck_assert_uint_eq(st.node[1].obj_alloc, 1);
	check_node_sums(&st);
	/* ... and node 1 still takes its own free objects first, */
	for (unsigned int k = 1; k < per; k++) {
		on1[k] = kmem_cache_alloc(cp, KM_SLEEP);
		ck_assert_int_eq(home_of(cp, on1[k]), 1);
	}
	/* then, its own slab full, the free one on node 0. */
	on0[0] = kmem_cache_alloc(cp, KM_SLEEP);
	ck_assert_int_eq(home_of(cp, on0[0]), 0);
	ck_assert_uint_eq(stats_of(cp).slab_total, 2);

	/* A slab on node 2 with room, and one free object on node 1. */
	sim_move(2);
	x = kmem_cache_alloc(cp, KM_SLEEP);
	ck_assert_int_eq(home_of(cp, x), 2);
	kmem_cache_free(cp, on1[0]);
	/* From node 0, node 2 (15) is nearer than node 1 (30). */
	sim_move(0);
	on1[0] = kmem_cache_alloc(cp, KM_SLEEP);
	ck_assert_int_eq(home_of(cp, on1[0]), 2);
	st = stats_of(cp);
	ck_assert_uint_eq(st.node[0].obj_alloc, per);
	ck_assert_uint_eq(st.node[1].obj_alloc, per - 1);
	ck_assert_uint_eq(st.node[2].obj_alloc, 2);
	ck_assert_uint_eq(st.slab_total, 3);
	check_node_sums(&st);

	kmem_cache_free(cp, x);
	for (unsigned int k = 0; k < per; k++) {
		kmem_cache_free(cp, on0[k]);
		kmem_cache_free(cp, on1[k]);
	}
	st = stats_of(cp);
	for (int n = 0; n < 3; n++)
		ck_assert_uint_eq(st.node[n].obj_alloc, 0);
	check_node_sums(&st);
	kmem_cache_destroy(cp);
	free(on0);
	free(on1);
	restore_policy();
}
END_TEST

/*
 * With magazines: objects freed on another node sit in that CPU's
 * magazine, and go to their home node's slabs when flushed.
 */
START_TEST(test_sim_remote_free_goes_home)
{
	enum { N = 3000 };
	static void *v[N];
	kmem_cache_t *cp;
	struct kmem_cache_stats st;

	sim_setup();
	cp = kmem_cache_create("home", 128, 0, NULL, NULL, NULL, NULL, NULL,
	    0);
	for (int k = 0; k < N; k++)
		v[k] = kmem_cache_alloc(cp, KM_SLEEP);
	st = stats_of(cp);
	ck_assert_uint_gt(st.node[0].slab_total, 0);
	ck_assert_uint_eq(st.node[1].slab_total + st.node[2].slab_total, 0);
	sim_move(1);
	for (int k = 0; k < N; k++)
		kmem_cache_free(cp, v[k]);
	kmem_cache_reap_now(cp);        /* magazines flushed, slabs freed */
	st = stats_of(cp);
	ck_assert_uint_eq(st.obj_alloc, 0);
	ck_assert_uint_eq(st.slab_total, 0);
	for (int n = 0; n < 3; n++)
		ck_assert_uint_eq(st.node[n].obj_alloc, 0);
	/* Nothing was ever put on node 1's lists. */
	ck_assert_uint_eq(st.node[1].slab_total, 0);
	check_node_sums(&st);
	kmem_cache_destroy(cp);
	restore_policy();
}
END_TEST

/* Reaping frees every node's empty slabs and leaves the others. */
START_TEST(test_sim_reap_per_node)
{
	kmem_cache_t *cp;
	struct kmem_cache_stats st;
	unsigned int n;
	void **a, **b;

	sim_setup();
	cp = kmem_cache_create("reaped", 256, 0, NULL, NULL, NULL, NULL,
	    NULL, KMC_NOMAGAZINE);
	n = 3 * (unsigned int)stats_of(cp).objs_per_slab;     /* full slabs */
	a = calloc(n, sizeof (void *));
	b = calloc(n, sizeof (void *));
	for (unsigned int k = 0; k < n; k++)
		a[k] = kmem_cache_alloc(cp, KM_SLEEP);
	sim_move(2);
	for (unsigned int k = 0; k < n; k++) {
		b[k] = kmem_cache_alloc(cp, KM_SLEEP);
		ck_assert_int_eq(home_of(cp, b[k]), 2);
	}
	for (unsigned int k = 0; k < n; k++)
		kmem_cache_free(cp, b[k]);
	st = stats_of(cp);
	ck_assert_uint_eq(st.node[2].slab_total, 3);
	ck_assert_uint_eq(st.node[2].slab_alloc, 0);
	check_node_sums(&st);
	kmem_cache_reap_now(cp);
	st = stats_of(cp);
	ck_assert_uint_eq(st.node[2].slab_total, 0);
	ck_assert_uint_eq(st.node[0].slab_total, 3);
	ck_assert_uint_eq(st.node[0].obj_alloc, n);
	check_node_sums(&st);
	for (unsigned int k = 0; k < n; k++)
		kmem_cache_free(cp, a[k]);
	kmem_cache_reap_now(cp);
	ck_assert_uint_eq(stats_of(cp).slab_total, 0);
	kmem_cache_destroy(cp);
	free(a);
	free(b);
	restore_policy();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("numa");
	TCase *real = tcase_create("machine");
	TCase *sim = tcase_create("simulated");

	tcase_set_timeout(real, 60);
	tcase_add_test(real, test_slab_pages_on_cpu_node);
	tcase_add_test(real, test_percpu_placement);
	tcase_add_test(real, test_percpu_mappings);
	tcase_add_test(real, test_slab_mappings);
	tcase_add_test(real, test_policy_interleave_none);
	tcase_add_test(real, test_policy_words);
	suite_add_tcase(s, real);
	tcase_set_timeout(sim, 60);
	tcase_add_test(sim, test_sim_refill_order);
	tcase_add_test(sim, test_sim_remote_free_goes_home);
	tcase_add_test(sim, test_sim_reap_per_node);
	suite_add_tcase(s, sim);
	return (test_run_suite(s));
}
