// SPDX-License-Identifier: GPL-2.0
/*
 * ne_kvm_numa_test: the two NUMA rules of kvm-api.md, on a guest with two
 * nodes (tools/ne-vm --cores 3 --numa: node 0 = CPUs 0-3, node 1 = CPUs 4-5):
 *  - the CPU pool ne_cpus lies on one NUMA node: a pool of cores of two
 *    nodes is refused with EINVAL;
 *  - KVM_SET_USER_MEMORY_REGION refuses, with EINVAL, hugetlb pages that are
 *    not on the pool's node, leaves nothing pinned and says why in
 *    ne_last_error; the pool's own node is accepted.  The upstream family's
 *    NE_SET_USER_MEMORY_REGION says NE_ERR_MEM_DIFFERENT_NUMA_NODE.
 * It is meant for that guest only (make check's NUMA stage; selftests/run
 * leaves it out unless named): on a guest with one node, or without a
 * poolable core (a whole core that is not CPU 0's) on two nodes, or without
 * free 2 MiB hugepages on both of them, it fails, since it would test
 * nothing.  Every fixture puts back the pool it found.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <linux/mempolicy.h>
#include <linux/ne_kvm.h>

#include "kselftest_harness.h"
#include "ne_test_util.h"
#include "ne_kvm_util.h"

/* Empties the pool: a newline, since a write of 0 bytes changes nothing. */
#define NO_CPUS		"\n"
#define MAX_CPUS	64	/* CPUs as bits of a u64: plenty for the guest */
#define NEED_HPAGES	4	/* free 2 MiB hugepages needed on each node */

/*
 * What main() found, with the pool emptied: two NUMA nodes, each with a
 * poolable core.  Index 0 is the lower node (node 0 under ne-vm --numa).
 */
static struct {
	int node[2];
	uint64_t core[2];	/* the lowest poolable core of node[i] */
	char pool[2][32];	/* that core as a cpu list */
	char both[64];		/* both cores: a pool across two nodes */
} topo;

/* ---- cpu lists ------------------------------------------------------------ */

/* Parses a cpu list ("0-3,5") into @mask; 0, or -1 if it is none. */
static int parse_cpulist(const char *s, uint64_t *mask)
{
	*mask = 0;
	while (*s && *s != '\n') {
		char *end;
		unsigned long a = strtoul(s, &end, 10), b = a;

		if (end == s)
			return -1;
		if (*end == '-') {
			s = end + 1;
			b = strtoul(s, &end, 10);
			if (end == s || b < a)
				return -1;
		}
		for (; a <= b && a < MAX_CPUS; a++)
			*mask |= 1ULL << a;
		s = end;
		if (*s == ',')
			s++;
	}
	return 0;
}

/* Writes @mask as the kernel prints a cpu list (%*pbl): "2-3,5". */
static void fmt_cpulist(uint64_t mask, char *buf, size_t len)
{
	size_t off = 0;
	int cpu = 0;

	buf[0] = '\0';
	while (cpu < MAX_CPUS) {
		int last;

		if (!(mask & (1ULL << cpu))) {
			cpu++;
			continue;
		}
		for (last = cpu; last + 1 < MAX_CPUS &&
		     (mask & (1ULL << (last + 1))); last++)
			;
		if (last == cpu)
			off += snprintf(buf + off, len - off, "%s%d",
					off ? "," : "", cpu);
		else
			off += snprintf(buf + off, len - off, "%s%d-%d",
					off ? "," : "", cpu, last);
		if (off >= len)
			return;
		cpu = last + 1;
	}
}

static int read_cpulist(const char *path, uint64_t *mask)
{
	char buf[256];

	if (ne_read_file(path, buf, sizeof(buf)))
		return -1;
	return parse_cpulist(buf, mask);
}

/* ---- sysfs ------------------------------------------------------------------ */

static int cpu_online(int cpu)
{
	char path[96], val[8];

	if (cpu == 0)
		return 1;
	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
	if (ne_read_file(path, val, sizeof(val)))
		return -1;
	return val[0] == '1';
}

/* Whether every CPU of @mask is online (@want 1) or offline (@want 0). */
static int cpus_are(uint64_t mask, int want)
{
	int cpu;

	for (cpu = 0; cpu < MAX_CPUS; cpu++)
		if ((mask & (1ULL << cpu)) && cpu_online(cpu) != want)
			return 0;
	return 1;
}

static long node_free_hpages(int node)
{
	char path[128], val[32];

	snprintf(path, sizeof(path),
		 "/sys/devices/system/node/node%d/hugepages/hugepages-2048kB/free_hugepages",
		 node);
	if (ne_read_file(path, val, sizeof(val)))
		return -1;
	return atol(val);
}

static void pool_is(struct __test_metadata *_metadata, const char *want)
{
	char cur[64];

	ASSERT_EQ(0, ne_read_file(NE_CPUS_PARAM, cur, sizeof(cur)));
	EXPECT_STREQ(want, cur);
}

/* ---- memory on a node ----------------------------------------------------- */

/*
 * @size bytes of 2 MiB hugepages bound (MPOL_BIND) to NUMA node @node
 * before they are touched, then faulted in; MAP_FAILED on failure.  The
 * raw syscalls: libnuma need not be installed.
 */
static char *huge_alloc_on(int node, uint64_t size)
{
	unsigned long nodes = 1UL << node;
	char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
			 MAP_HUGE_2MB, -1, 0);

	if (mem == MAP_FAILED)
		return mem;
	/* POPULATE_WRITE fails where a touch would die of SIGBUS. */
	if (syscall(SYS_mbind, mem, size, MPOL_BIND, &nodes,
		    8 * sizeof(nodes), 0) ||
	    madvise(mem, size, MADV_POPULATE_WRITE)) {
		munmap(mem, size);
		return MAP_FAILED;
	}
	return mem;
}

/* Moves the hugepages of [@mem, @mem + @size) to node @node. */
static int huge_move_to(int node, char *mem, uint64_t size)
{
	unsigned long nodes = 1UL << node;

	return syscall(SYS_mbind, mem, size, MPOL_BIND, &nodes,
		       8 * sizeof(nodes), MPOL_MF_MOVE | MPOL_MF_STRICT);
}

/* The NUMA node of the page at @addr, or -1. */
static int page_node(void *addr)
{
	int node = -1;

	if (syscall(SYS_get_mempolicy, &node, NULL, 0, addr,
		    MPOL_F_NODE | MPOL_F_ADDR))
		return -1;
	return node;
}

/* Asserts that every 2 MiB page of [@mem, @mem + @size) is on @node. */
#define ASSERT_ON_NODE(node, mem, size) do {				\
	uint64_t __off;							\
	for (__off = 0; __off < (size); __off += HPAGE) {		\
		ASSERT_EQ(node, page_node((mem) + __off)) {		\
			TH_LOG("page at +%#llx is not on node %d",	\
			       (unsigned long long)__off, node);	\
		}							\
	}								\
} while (0)

/*
 * Asserts a NUMA refusal: EINVAL, the reason in ne_last_error, still @pins
 * pages pinned system wide and still @bytes donated.
 */
#define ASSERT_NUMA_REFUSAL(vm, slot, gpa, mem, size, pins, bytes) do {	\
	char __why[256];						\
	errno = 0;							\
	ASSERT_EQ(-1, ne_set_region(vm, slot, gpa, mem, size, 0));	\
	ASSERT_EQ(EINVAL, errno) {					\
		TH_LOG("errno %d (%s), wanted EINVAL", errno,		\
		       strerror(errno));				\
	}								\
	ASSERT_EQ(0, ne_fdinfo(vm, "ne_last_error", __why, sizeof(__why))); \
	EXPECT_NE(NULL, strstr(__why, "NUMA node")) {			\
		TH_LOG("ne_last_error: %s", __why);			\
	}								\
	EXPECT_EQ(pins, ne_pins_held());				\
	EXPECT_EQ((long long)(bytes), ne_fdinfo_num(vm, "ne_mem_bytes")); \
} while (0)

/*
 * Asserts that @mem, on the pool's node, is donated as slot 0: its pages
 * pinned on top of @pins, then let go when the VM fd is closed.
 */
#define ASSERT_POOL_NODE_ACCEPTED(mem, size, pins) do {			\
	ASSERT_ON_NODE(self->node, mem, size);				\
	ASSERT_EQ(0, ne_set_region(self->vm, 0, 0, mem, size, 0)) {	\
		TH_LOG("refused: %s", strerror(errno));			\
	}								\
	EXPECT_EQ((pins) + (long)((size) / HPAGE), ne_pins_held());	\
	EXPECT_EQ((long long)(size),					\
		  ne_fdinfo_num(self->vm, "ne_mem_bytes"));		\
	close(self->vm);						\
	self->vm = -1;							\
	EXPECT_EQ(pins, ne_pins_held());				\
} while (0)

/* ---- the pool -------------------------------------------------------------- */

/* An enclave's fds, kept where the teardown finds them. */
struct enclave {
	int vm;
	int vcpus[MAX_CPUS];
	int nr_vcpus;
};

/* Closes the enclave, if any: the pool cannot change while it lives. */
static void enclave_close(struct enclave *e)
{
	while (e->nr_vcpus)
		close(e->vcpus[--e->nr_vcpus]);
	if (e->vm >= 0)
		close(e->vm);
	e->vm = -1;
}

FIXTURE(numa_pool) {
	char saved[256];
	struct enclave e;
};

FIXTURE_SETUP(numa_pool)
{
	self->e.vm = -1;
	ASSERT_EQ(0, ne_read_file(NE_CPUS_PARAM, self->saved,
				  sizeof(self->saved)));
	ASSERT_EQ(0, ne_set_pool(NO_CPUS));
}

FIXTURE_TEARDOWN(numa_pool)
{
	enclave_close(&self->e);
	if (ne_set_pool(self->saved[0] ? self->saved : NO_CPUS))
		TH_LOG("could not put back the pool '%s'", self->saved);
}

/*
 * A pool of one core of each node is refused with EINVAL.  Like every list
 * that breaks a pool rule (ne_kvm_pool_test), the refusal leaves the pool
 * as it was: the new list is checked before the old pool lets go.
 */
TEST_F(numa_pool, pool_across_two_nodes_is_einval)
{
	uint64_t cores = topo.core[0] | topo.core[1];
	int i;

	EXPECT_EQ(-EINVAL, ne_set_pool(topo.both)) {
		TH_LOG("ne_cpus=%s (nodes %d and %d) was not refused with EINVAL",
		       topo.both, topo.node[0], topo.node[1]);
	}
	pool_is(_metadata, "");
	EXPECT_TRUE(cpus_are(cores, 1));

	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, ne_set_pool(topo.pool[i]));
		EXPECT_EQ(-EINVAL, ne_set_pool(topo.both)) {
			TH_LOG("ne_cpus=%s over ne_cpus=%s was not refused with EINVAL",
			       topo.both, topo.pool[i]);
		}
		/* The rejected list left the pool as it was. */
		pool_is(_metadata, topo.pool[i]);
		EXPECT_TRUE(cpus_are(topo.core[i], 0));
		EXPECT_TRUE(cpus_are(topo.core[!i], 1));
		ASSERT_EQ(0, ne_set_pool(NO_CPUS));
		EXPECT_TRUE(cpus_are(cores, 1));
	}
}

/* A pool on either node is taken, its CPUs go offline and serve vCPUs. */
TEST_F(numa_pool, pool_on_one_node_is_accepted)
{
	struct enclave *e = &self->e;
	int i;

	for (i = 0; i < 2; i++) {
		int n = __builtin_popcountll(topo.core[i]), id;
		uint64_t other = topo.core[!i];
		char cpus[64];

		ASSERT_EQ(0, ne_set_pool(topo.pool[i])) {
			TH_LOG("ne_cpus=%s (node %d) was refused",
			       topo.pool[i], topo.node[i]);
		}
		pool_is(_metadata, topo.pool[i]);
		EXPECT_TRUE(cpus_are(topo.core[i], 0));
		EXPECT_TRUE(cpus_are(other, 1));

		e->vm = ne_create_vm();
		ASSERT_LE(0, e->vm);
		EXPECT_EQ(n, ioctl(e->vm, KVM_CHECK_EXTENSION,
				   KVM_CAP_MAX_VCPUS));
		/* The vCPUs get exactly the pool's CPUs, on its node. */
		for (id = 0; id < n; id++) {
			int fd = vm_ioctl(e->vm, KVM_CREATE_VCPU, id);

			e->vcpus[e->nr_vcpus++] = fd;
		}
		ASSERT_EQ(0, ne_fdinfo(e->vm, "ne_parent_cpus", cpus,
				       sizeof(cpus)));
		EXPECT_STREQ(topo.pool[i], cpus);
		enclave_close(e);
		ASSERT_EQ(0, ne_set_pool(NO_CPUS));
		EXPECT_TRUE(cpus_are(topo.core[i], 1));
	}
}

/* ---- memory and the pool's node ------------------------------------------- */

FIXTURE(numa_mem) {
	char saved[256];
	int vm;
	int node;	/* the pool's */
	int other;	/* the other one */
};

/* The pool on topo.node[pool]. */
FIXTURE_VARIANT(numa_mem) {
	int pool;
};

FIXTURE_VARIANT_ADD(numa_mem, pool_on_node_1) {
	.pool = 1,
};

FIXTURE_VARIANT_ADD(numa_mem, pool_on_node_0) {
	.pool = 0,
};

FIXTURE_SETUP(numa_mem)
{
	self->vm = -1;
	self->node = topo.node[variant->pool];
	self->other = topo.node[!variant->pool];
	ASSERT_EQ(0, ne_read_file(NE_CPUS_PARAM, self->saved,
				  sizeof(self->saved)));
	ASSERT_EQ(0, ne_set_pool(topo.pool[variant->pool]));
	/* The enclave takes the pool's node when it is created. */
	self->vm = ne_create_vm();
	ASSERT_LE(0, self->vm);
}

FIXTURE_TEARDOWN(numa_mem)
{
	if (self->vm >= 0)
		close(self->vm);
	if (ne_set_pool(self->saved[0] ? self->saved : NO_CPUS))
		TH_LOG("could not put back the pool '%s'", self->saved);
}

/*
 * Hugepages of the other node: EINVAL, the reason in ne_last_error, nothing
 * pinned.  The very same pages, moved to the pool's node, are accepted.
 */
TEST_F(numa_mem, other_node_is_einval_pool_node_is_accepted)
{
	uint64_t size = 2 * HPAGE;
	char *mem = huge_alloc_on(self->other, size);
	long pins;

	ASSERT_NE(MAP_FAILED, mem) {
		TH_LOG("no 2 MiB hugepages on node %d", self->other);
	}
	ASSERT_ON_NODE(self->other, mem, size);
	pins = ne_pins_held();
	ASSERT_NUMA_REFUSAL(self->vm, 0, 0, mem, size, pins, 0);
	EXPECT_EQ(0, ne_fdinfo_num(self->vm, "ne_mem_ranges"));

	/* Pinned pages would not move: this also shows none stayed pinned. */
	ASSERT_EQ(0, huge_move_to(self->node, mem, size)) {
		TH_LOG("cannot move the pages to node %d: %s", self->node,
		       strerror(errno));
	}
	ASSERT_POOL_NODE_ACCEPTED(mem, size, pins);
	munmap(mem, size);
}

/*
 * The same through the upstream family: a VM fd of NE_CREATE_VM says
 * NE_ERR_MEM_DIFFERENT_NUMA_NODE, pins nothing, and takes the pages once
 * they are on the pool's node.
 */
TEST_F(numa_mem, upstream_family_other_node_is_ne_err_mem_different_numa_node)
{
	uint64_t size = 2 * HPAGE, uid;
	char *mem = huge_alloc_on(self->other, size);
	struct ne_user_memory_region r = {
		.memory_size = size,
		.userspace_addr = (uintptr_t)mem,
	};
	int sys = ne_open_sys(), vm;
	long pins;

	ASSERT_NE(MAP_FAILED, mem) {
		TH_LOG("no 2 MiB hugepages on node %d", self->other);
	}
	ASSERT_LE(0, sys);
	vm = ioctl(sys, NE_CREATE_VM, &uid);
	close(sys);
	ASSERT_LE(0, vm) {
		TH_LOG("NE_CREATE_VM: %s", strerror(errno));
	}
	pins = ne_pins_held();
	errno = 0;
	ASSERT_EQ(-1, ioctl(vm, NE_SET_USER_MEMORY_REGION, &r));
	ASSERT_EQ(NE_ERR_MEM_DIFFERENT_NUMA_NODE, errno);
	EXPECT_EQ(pins, ne_pins_held());
	ASSERT_EQ(0, huge_move_to(self->node, mem, size));
	ASSERT_EQ(0, ioctl(vm, NE_SET_USER_MEMORY_REGION, &r)) {
		TH_LOG("on the pool's node: %s", strerror(errno));
	}
	EXPECT_EQ(pins + (long)(size / HPAGE), ne_pins_held());
	close(vm);
	EXPECT_EQ(pins, ne_pins_held());
	munmap(mem, size);
}

/* Hugepages newly taken from the pool's node are accepted at once. */
TEST_F(numa_mem, pool_node_is_accepted)
{
	uint64_t size = 2 * HPAGE;
	char *mem = huge_alloc_on(self->node, size);
	long pins = ne_pins_held();

	ASSERT_NE(MAP_FAILED, mem) {
		TH_LOG("no 2 MiB hugepages on node %d", self->node);
	}
	ASSERT_POOL_NODE_ACCEPTED(mem, size, pins);
	munmap(mem, size);
}

/*
 * A region whose first pages are on the pool's node and whose last one is
 * not: the pages pinned before the wrong one are let go too.
 */
TEST_F(numa_mem, region_ending_on_other_node_pins_nothing)
{
	uint64_t size = 3 * HPAGE;
	char *mem = huge_alloc_on(self->node, size);
	long pins;

	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_EQ(0, huge_move_to(self->other, mem + 2 * HPAGE, HPAGE));
	ASSERT_ON_NODE(self->node, mem, 2 * HPAGE);
	ASSERT_ON_NODE(self->other, mem + 2 * HPAGE, HPAGE);
	pins = ne_pins_held();
	ASSERT_NUMA_REFUSAL(self->vm, 0, 0, mem, size, pins, 0);
	EXPECT_EQ(0, ne_fdinfo_num(self->vm, "ne_mem_ranges"));
	/* The part on the pool's node alone is fine... */
	ASSERT_EQ(0, ne_set_region(self->vm, 0, 0, mem, 2 * HPAGE, 0));
	EXPECT_EQ(pins + 2, ne_pins_held());
	/* ...and the other node's page is still refused after it. */
	ASSERT_NUMA_REFUSAL(self->vm, 1, 2 * HPAGE, mem + 2 * HPAGE, HPAGE,
			    pins + 2, 2 * HPAGE);
	close(self->vm);
	self->vm = -1;
	EXPECT_EQ(pins, ne_pins_held());
	munmap(mem, size);
}

/* ---- main -------------------------------------------------------------------- */

/*
 * Finds two nodes with a poolable core each; with the pool empty, since
 * the topology of offline CPUs is not in sysfs.  0, or why it cannot run.
 */
static const char *find_topology(void)
{
	uint64_t online, seen = 0;
	int cpu, found = 0;

	if (read_cpulist("/sys/devices/system/cpu/online", &online))
		return "cannot read the online CPUs";
	for (cpu = 0; cpu < MAX_CPUS && found < 2; cpu++) {
		char path[128];
		uint64_t core, node_cpus;
		int node;

		if (!(online & (1ULL << cpu)) || (seen & (1ULL << cpu)))
			continue;
		snprintf(path, sizeof(path),
			 "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list",
			 cpu);
		if (read_cpulist(path, &core))
			return "cannot read the CPU topology";
		seen |= core;
		if (core & 1)		/* CPU 0's core stays with Linux */
			continue;
		for (node = 0; node < MAX_CPUS; node++) {
			snprintf(path, sizeof(path),
				 "/sys/devices/system/node/node%d/cpulist", node);
			if (!read_cpulist(path, &node_cpus) &&
			    (node_cpus & (1ULL << cpu)))
				break;
		}
		if (node == MAX_CPUS || (core & ~node_cpus))
			continue;
		if (found && topo.node[0] == node)
			continue;
		topo.node[found] = node;
		topo.core[found] = core;
		fmt_cpulist(core, topo.pool[found], sizeof(topo.pool[found]));
		found++;
	}
	if (found < 2)
		return "too few CPUs: no poolable core (whole, not CPU 0's) on two NUMA nodes (tools/ne-vm --cores 3 --numa)";
	if (topo.node[0] > topo.node[1]) {
		int n = topo.node[0];
		uint64_t c = topo.core[0];
		char p[32];

		topo.node[0] = topo.node[1];
		topo.core[0] = topo.core[1];
		topo.node[1] = n;
		topo.core[1] = c;
		memcpy(p, topo.pool[0], sizeof(p));
		memcpy(topo.pool[0], topo.pool[1], sizeof(p));
		memcpy(topo.pool[1], p, sizeof(p));
	}
	fmt_cpulist(topo.core[0] | topo.core[1], topo.both, sizeof(topo.both));
	return NULL;
}

int main(int argc, char **argv)
{
	const char *why;
	uint64_t nodes;
	char saved[256];
	int i;

	ne_require_device();
	if (read_cpulist("/sys/devices/system/node/online", &nodes) ||
	    __builtin_popcountll(nodes) < 2)
		ksft_exit_fail_msg("fewer than 2 online NUMA nodes: nothing to test (run it under tools/ne-vm --cores 3 --numa)\n");
	if (ne_read_file(NE_CPUS_PARAM, saved, sizeof(saved)))
		ksft_exit_fail_msg("cannot read %s\n", NE_CPUS_PARAM);
	if (saved[0] && ne_set_pool(NO_CPUS))
		ksft_exit_fail_msg("cannot empty the pool (%s) to read the topology\n",
				   saved);
	why = find_topology();
	if (saved[0] && ne_set_pool(saved))
		ksft_exit_fail_msg("cannot put back the pool %s\n", saved);
	if (why)
		ksft_exit_fail_msg("%s\n", why);
	for (i = 0; i < 2; i++)
		if (node_free_hpages(topo.node[i]) < NEED_HPAGES)
			ksft_exit_fail_msg("fewer than %d free 2 MiB hugepages on node %d\n",
						   NEED_HPAGES, topo.node[i]);
	return test_harness_run(argc, argv);
}
