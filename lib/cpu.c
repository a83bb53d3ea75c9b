/*
 * cpu.c - the current CPU, the possible CPUs and the CPU -> NUMA node map.
 *
 * See cpu.h for the contract.  Everything here is computed once by
 * cpu_init() and read-only afterwards, except through the test-only
 * topology override, which tests call while no other thread uses libkmem.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef HAVE_NUMA
#include <dlfcn.h>
#include <numa.h>
#endif

#include "cpu.h"
#include "kmem_impl.h"

/* Provided by glibc >= 2.35; weak so that older C libraries still link. */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

unsigned int cpu_nr_ids = 1;
bool cpu_ids_known;
unsigned int cpu_nr_nodes = 1;
bool cpu_rseq_registered;
ptrdiff_t cpu_rseq_offset;
static int cpu_single_node_map[1];
const int *cpu_node_map = cpu_single_node_map;

static int *cpu_real_map;               /* the map found at init */
static unsigned int cpu_real_nodes = 1;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

/* Per node, the nodes by distance; real and simulated tables. */
static int cpu_real_order[KMEM_MAX_NODES][KMEM_MAX_NODES];
static int cpu_sim_order[KMEM_MAX_NODES][KMEM_MAX_NODES];
static int (*cpu_order)[KMEM_MAX_NODES] = cpu_real_order;

/*
 * dist(n, m) as a sort key: the node itself first whatever the table
 * says, and a distance of 0 or less between two nodes - what libnuma's
 * numa_distance() reports when it does not know it: a node id with no
 * node (ids need not be contiguous), or no distance table - last.
 */
static int
cpu_order_key(unsigned int n, unsigned int m,
    int (*dist)(unsigned int, unsigned int, const void *), const void *arg)
{
	int d;

	if (n == m)
		return (-1);
	d = dist(n, m, arg);
	return (d > 0 ? d : INT_MAX);
}

/*
 * Fill order[n] with the nodes sorted by dist(n, m), nearest first (the
 * node itself first), nodes at an unknown distance last, ties by node
 * number.
 */
static void
cpu_fill_order(int order[][KMEM_MAX_NODES], unsigned int nodes,
    int (*dist)(unsigned int, unsigned int, const void *), const void *arg)
{
	for (unsigned int n = 0; n < nodes; n++) {
		for (unsigned int i = 0; i < nodes; i++)
			order[n][i] = (int)i;
		/* Insertion sort: at most KMEM_MAX_NODES entries, once. */
		for (unsigned int i = 1; i < nodes; i++) {
			int v = order[n][i];
			unsigned int j = i;
			while (j > 0 && cpu_order_key(n,
			    (unsigned int)order[n][j - 1], dist, arg) >
			    cpu_order_key(n, (unsigned int)v, dist, arg)) {
				order[n][j] = order[n][j - 1];
				j--;
			}
			order[n][j] = v;
		}
	}
}

static int
cpu_dist_linear(unsigned int a, unsigned int b, const void *arg)
{
	(void) arg;
	return (a == b ? 0 : 10 + (int)(a > b ? a - b : b - a));
}

static int
cpu_dist_table(unsigned int a, unsigned int b, const void *arg)
{
	const int *d = ((const int *const *)arg)[0];
	unsigned int nodes = (unsigned int)(uintptr_t)((const void *const *)
	    arg)[1];

	return (a == b ? 0 : d[a * nodes + b]);
}

#ifdef HAVE_NUMA
/*
 * libnuma is loaded (dlopen) only on a machine with more than one node.
 * Linked, its constructor - a dozen files read - cost every process that
 * preloads the malloc library 0.7 ms at start, for nothing on one node.
 */
static struct {
	__typeof__(numa_available) *available;
	__typeof__(numa_max_node) *max_node;
	__typeof__(numa_node_of_cpu) *node_of_cpu;
	__typeof__(numa_distance) *distance;
} cpu_libnuma;

static int
cpu_dist_numa(unsigned int a, unsigned int b, const void *arg)
{
	(void) arg;
	return (a == b ? 0 : cpu_libnuma.distance((int)a, (int)b));
}

/*
 * Load libnuma and look up what cpu_init uses; true when it reports NUMA
 * available.  Its allocations (the malloc library's bootstrap arena
 * serves them during libkmem's start) are its own.
 */
bool
cpu_libnuma_load(void)
{
	void *h = dlopen(CPU_LIBNUMA, RTLD_NOW | RTLD_LOCAL);

	if (h == NULL) {
		kmem_report("%s not loaded: no NUMA placement", CPU_LIBNUMA);
		return (false);
	}
	cpu_libnuma.available = (__typeof__(numa_available) *)dlsym(h,
	    "numa_available");
	cpu_libnuma.max_node = (__typeof__(numa_max_node) *)dlsym(h,
	    "numa_max_node");
	cpu_libnuma.node_of_cpu = (__typeof__(numa_node_of_cpu) *)dlsym(h,
	    "numa_node_of_cpu");
	cpu_libnuma.distance = (__typeof__(numa_distance) *)dlsym(h,
	    "numa_distance");
	if (cpu_libnuma.available == NULL || cpu_libnuma.max_node == NULL ||
	    cpu_libnuma.node_of_cpu == NULL || cpu_libnuma.distance == NULL) {
		kmem_report("%s lacks a function libkmem uses: no NUMA "
		    "placement", CPU_LIBNUMA);
		return (false);
	}
	return (cpu_libnuma.available() >= 0);
}
#endif

unsigned int
cpu_parse_list(const char *text)
{
	unsigned int highest = 0;
	bool any = false;
	const char *p = text;

	while (*p != '\0' && *p != '\n') {
		char *end;
		unsigned long lo, hi;

		errno = 0;
		lo = strtoul(p, &end, 10);
		if (end == p || errno != 0)
			return (0);
		hi = lo;
		p = end;
		if (*p == '-') {
			p++;
			hi = strtoul(p, &end, 10);
			if (end == p || errno != 0 || hi < lo)
				return (0);
			p = end;
		}
		if (hi >= 1UL << 20)            /* absurd: not a CPU list */
			return (0);
		if (!any || hi + 1 > highest)
			highest = (unsigned int)hi + 1;
		any = true;
		if (*p == ',')
			p++;
		else if (*p != '\0' && *p != '\n')
			return (0);
	}
	return (any ? highest : 0);
}

/* The highest id + 1 of a sysfs list file (cpu_parse_list); 0: none. */
static unsigned int
cpu_sysfs_list(const char *path)
{
	char buf[4096];
	unsigned int n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		ssize_t len = read(fd, buf, sizeof (buf) - 1);
		if (len > 0) {
			buf[len] = '\0';
			n = cpu_parse_list(buf);
		}
		(void) close(fd);
	}
	return (n);
}

/*
 * The highest id + 1 of the CPUs this process may run on now; 0 when not
 * known.  The mask has room for 8192 CPUs (x86's most); the kernel
 * refuses a mask smaller than its own.
 */
static unsigned int
cpu_affinity_ids(void)
{
	unsigned long mask[8192 / (8 * sizeof (unsigned long))];
	size_t words = sizeof (mask) / sizeof (mask[0]);

	if (sched_getaffinity(0, sizeof (mask), (cpu_set_t *)mask) != 0)
		return (0);
	while (words > 0 && mask[words - 1] == 0)
		words--;
	if (words == 0)
		return (0);
	return ((unsigned int)(words * 8 * sizeof (unsigned long)) -
	    (unsigned int)__builtin_clzl(mask[words - 1]));
}

/*
 * The list of possible CPUs, covering at least those this process may
 * run on.  A list that misses one of them (a faked /sys in a container)
 * is as good as none: cpu_ids_known stays false.
 */
static unsigned int
cpu_possible_ids(void)
{
	unsigned int n = cpu_sysfs_list("/sys/devices/system/cpu/possible");
	unsigned int run = cpu_affinity_ids();

	cpu_ids_known = n != 0 && run <= n;
	if (n == 0) {
		long conf = sysconf(_SC_NPROCESSORS_CONF);
		n = conf > 0 ? (unsigned int)conf : 1;
	}
	return (run > n ? run : n);
}

static void
cpu_init_once(void)
{
	unsigned int nodes = 1;
	int *map;

	cpu_nr_ids = cpu_possible_ids();

	/*
	 * rseq is usable when glibc registered an area big enough to hold
	 * cpu_id (the original 32-byte ABI reports __rseq_size 20 or 32).
	 */
	if (&__rseq_size != NULL && &__rseq_offset != NULL &&
	    __rseq_size >= 20) {
		cpu_rseq_offset = __rseq_offset;
		cpu_rseq_registered = true;
	}

	map = kmem_pages_alloc(cpu_nr_ids * sizeof (int));
	if (map == NULL)
		return;                 /* keep the one-node map */
#ifdef HAVE_NUMA
	/* No NUMA in the kernel: no such file, one node. */
	if (cpu_sysfs_list("/sys/devices/system/node/online") > 1 &&
	    cpu_libnuma_load()) {
		int max = cpu_libnuma.max_node();
		nodes = max >= 0 ? (unsigned int)max + 1 : 1;
		if (nodes > KMEM_MAX_NODES)
			nodes = KMEM_MAX_NODES;         /* folded, below */
		for (unsigned int c = 0; c < cpu_nr_ids; c++) {
			int node = cpu_libnuma.node_of_cpu((int)c);
			map[c] = node >= 0 ? node % (int)nodes : 0;
		}
		cpu_fill_order(cpu_real_order, nodes, cpu_dist_numa, NULL);
	}
#endif
	if (nodes == 1)
		cpu_real_order[0][0] = 0;
	cpu_real_map = map;
	cpu_real_nodes = nodes;
	cpu_node_map = map;
	cpu_nr_nodes = nodes;
}

void
cpu_init(void)
{
	(void) pthread_once(&cpu_once, cpu_init_once);
}

unsigned int
cpu_current_slow(void)
{
	int cpu = sched_getcpu();

	return (cpu >= 0 && (unsigned int)cpu < cpu_nr_ids ?
	    (unsigned int)cpu : 0);
}

const int *
cpu_node_order(int node)
{
	return (cpu_order[(unsigned int)node % cpu_nr_nodes]);
}

bool
cpu_numa_real(void)
{
	return (cpu_real_nodes > 1 && cpu_node_map == cpu_real_map);
}

void
cpu_topology_override(unsigned int nodes, const int *map,
    const int *distance)
{
	cpu_init();
	if (nodes == 0 || map == NULL || nodes > KMEM_MAX_NODES) {
		cpu_node_map = cpu_real_map != NULL ? cpu_real_map :
		    cpu_single_node_map;
		cpu_nr_nodes = cpu_real_nodes;
		cpu_order = cpu_real_order;
	} else {
		const void *arg[2] = { distance,
		    (const void *)(uintptr_t)nodes };

		cpu_fill_order(cpu_sim_order, nodes, distance != NULL ?
		    cpu_dist_table : cpu_dist_linear, arg);
		cpu_node_map = map;
		cpu_nr_nodes = nodes;
		cpu_order = cpu_sim_order;
	}
}
