// SPDX-License-Identifier: GPL-2.0
/*
 * The CPU pool of the Nitro Enclaves driver (module parameter ne_cpus): whole
 * cores taken offline and handed to enclaves a core at a time.  While a CPU
 * is in the pool, a CPU hotplug callback refuses to bring it online (root
 * writing 1 to its sysfs "online" file gets EBUSY): the hypervisor may own
 * it.  Cores are judged by APIC ids, which offline CPUs keep.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/cpumask.h>
#include <linux/err.h>
#include <linux/lockdep.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/topology.h>

#include <asm/smp.h>

#include <linux/ne_kvm.h>

#include "ne_enclave.h"

/* One core of the pool: its CPUs and the enclave that holds it, if any. */
struct ne_core {
	cpumask_t cpus;
	struct ne_enclave *owner;
};

static DEFINE_MUTEX(ne_pool_lock);
static struct ne_core *ne_cores;	/* under ne_pool_lock */
static unsigned int ne_nr_cores;	/* under ne_pool_lock */
static unsigned int ne_pool_nr_cpus;	/* under ne_pool_lock */
static int ne_pool_node = NUMA_NO_NODE;	/* under ne_pool_lock */
static unsigned int ne_nr_enclaves;	/* under ne_pool_lock */
static int ne_pool_cpuhp;		/* under ne_pool_lock; 0: none */

/*
 * Whether ne_cpus may change the pool, under ne_pool_lock.  Module
 * parameters are set before module init and their sysfs files go only
 * after module exit, so ne_cpus is written outside both:
 * NE_POOL_LOADING  from the command line before ne_pool_init(): the list is
 *                  checked and kept in ne_pool_pending, nothing is taken
 *                  (a load that fails later runs neither init nor exit);
 * NE_POOL_OPEN     from ne_pool_init() to ne_pool_exit(): the pool changes;
 * NE_POOL_CLOSED   after ne_pool_exit(), during unload: -ENODEV, so that no
 *                  CPU goes offline and no hotplug callback is registered
 *                  once the module text may be freed.
 */
static enum {
	NE_POOL_LOADING,
	NE_POOL_OPEN,
	NE_POOL_CLOSED,
} ne_pool_state;
static struct cpumask ne_pool_pending;	/* under ne_pool_lock */

/*
 * ne_cpus as last accepted, byte for byte (a trailing newline included):
 * upstream's parameter is a string that reads back as it was written, and
 * tools written for upstream (nitro-cli's allocator) parse what they read.
 * Upstream's bound, NE_CPUS_SIZE, with room for the NUL.  Under
 * ne_pool_lock.
 */
#define NE_CPUS_SIZE	512
static char ne_cpus_written[NE_CPUS_SIZE];

/*
 * The CPUs Linux must not bring online: every CPU of the pool, donated or
 * not, and those a pool change is taking.  Changed under ne_pool_lock, one
 * atomic bit operation at a time (never a whole-mask cpumask_or() or the
 * like, which rewrites words non-atomically); read by the CPU hotplug
 * callback, which runs under the CPU hotplug lock and so must not take
 * ne_pool_lock (add_cpu() and remove_cpu() are called with ne_pool_lock
 * held).  A bit is cleared just before the pool itself brings its CPU back
 * online.
 */
static struct cpumask ne_pool_fenced;

/*
 * Whether the pool may not change now: some enclave exists.
 * Hook: enclaves whose slot the device has not confirmed freed (zombies)
 * must count here too.
 */
static bool ne_pool_in_use(void)
{
	lockdep_assert_held(&ne_pool_lock);
	return ne_nr_enclaves;
}

/*
 * CPU hotplug, CPUHP_BP_PREPARE_DYN: runs on the controlling CPU before
 * @cpu is started, so a refusal keeps @cpu from running any parent code.
 */
static int ne_pool_cpu_prepare(unsigned int cpu)
{
	if (!cpumask_test_cpu(cpu, &ne_pool_fenced))
		return 0;
	pr_info_ratelimited("CPU %u is in the enclave CPU pool (ne_cpus): it stays offline\n",
			    cpu);
	return -EBUSY;
}

static int ne_pool_cpuhp_register(void)
{
	int rc;

	lockdep_assert_held(&ne_pool_lock);
	if (ne_pool_cpuhp)
		return 0;
	rc = cpuhp_setup_state_nocalls(CPUHP_BP_PREPARE_DYN, "ne_kvm:pool",
				       ne_pool_cpu_prepare, NULL);
	if (rc < 0)
		return rc;
	ne_pool_cpuhp = rc;
	return 0;
}

/*
 * A number the threads of one core share, valid for offline CPUs too: an
 * offline CPU's sibling masks are empty and x86 zeroes its core id
 * (remove_siblinginfo()), but its APIC id stays; without its SMT bits,
 * the APIC id names the core (and the package).
 */
static u32 ne_core_of(unsigned int cpu)
{
	return per_cpu(x86_cpu_to_apicid, cpu) >>
	       get_count_order(ne_threads_per_core());
}

static bool ne_same_core(unsigned int a, unsigned int b)
{
	return ne_core_of(a) == ne_core_of(b);
}

/* The pool rules of kvm-api.md; nothing is changed. */
static int ne_pool_check(const struct cpumask *mask)
{
	unsigned int cpu, sib;
	int node;

	if (cpumask_empty(mask))
		return 0;
	node = cpu_to_node(cpumask_first(mask));
	if (!cpumask_subset(mask, cpu_present_mask)) {
		pr_debug("ne_cpus: CPUs that are present only\n");
		return -EINVAL;
	}
	for_each_cpu(cpu, mask) {
		if (ne_same_core(cpu, 0)) {
			pr_debug("ne_cpus: CPU 0 and its siblings stay with Linux\n");
			return -EINVAL;
		}
		if (cpu_to_node(cpu) != node) {
			pr_debug("ne_cpus: CPUs of one NUMA node only\n");
			return -EINVAL;
		}
		for_each_present_cpu(sib) {
			if (!cpumask_test_cpu(sib, mask) &&
			    ne_same_core(cpu, sib)) {
				pr_debug("ne_cpus: whole cores only (CPU %u without CPU %u)\n",
					 cpu, sib);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* The lowest CPU of @mask on @cpu's core. */
static unsigned int ne_first_sibling(const struct cpumask *mask,
				     unsigned int cpu)
{
	unsigned int c;

	for_each_cpu(c, mask)
		if (ne_same_core(cpu, c))
			return c;
	return cpu;
}

/* The cores of @mask, which passed ne_pool_check(); NULL if @mask is empty. */
static struct ne_core *ne_pool_cores(const struct cpumask *mask,
				     unsigned int *nr)
{
	struct ne_core *cores;
	unsigned int cpu, i;

	*nr = 0;
	for_each_cpu(cpu, mask)
		if (cpu == ne_first_sibling(mask, cpu))
			(*nr)++;
	if (!*nr)
		return NULL;
	cores = kcalloc(*nr, sizeof(*cores), GFP_KERNEL);
	if (!cores)
		return ERR_PTR(-ENOMEM);
	i = 0;
	for_each_cpu(cpu, mask) {
		unsigned int c;

		if (cpu != ne_first_sibling(mask, cpu))
			continue;
		for_each_cpu(c, mask)
			if (ne_same_core(cpu, c))
				cpumask_set_cpu(c, &cores[i].cpus);
		i++;
	}
	return cores;
}

/* Gives @cpu back to Linux; under ne_pool_lock. */
static void ne_pool_online(unsigned int cpu)
{
	int rc;

	cpumask_clear_cpu(cpu, &ne_pool_fenced);
	rc = add_cpu(cpu);
	/* 1: it is online already. */
	if (rc < 0)
		pr_err("cannot bring CPU %u back online: %d\n", cpu, rc);
}

static void ne_pool_cpus(struct cpumask *cpus)
{
	unsigned int i;

	cpumask_clear(cpus);
	for (i = 0; i < ne_nr_cores; i++)
		cpumask_or(cpus, cpus, &ne_cores[i].cpus);
}

/*
 * Makes @mask the pool, under ne_pool_lock with no enclave.  The new list is
 * checked and its CPUs taken offline before the old pool lets go of
 * anything: on any error the old pool stays as it was.  CPUs of both stay
 * offline throughout.
 */
static int ne_pool_replace(const struct cpumask *mask)
{
	cpumask_var_t old, taken;
	struct ne_core *cores;
	unsigned int nr, cpu;
	int rc;

	rc = ne_pool_check(mask);
	if (rc)
		return rc;
	if (!zalloc_cpumask_var(&old, GFP_KERNEL))
		return -ENOMEM;
	if (!zalloc_cpumask_var(&taken, GFP_KERNEL)) {
		rc = -ENOMEM;
		goto out_old;
	}
	cores = ne_pool_cores(mask, &nr);
	if (IS_ERR(cores)) {
		rc = PTR_ERR(cores);
		goto out_taken;
	}
	if (nr) {
		rc = ne_pool_cpuhp_register();
		if (rc)
			goto out_cores;
	}

	ne_pool_cpus(old);
	for_each_cpu(cpu, mask)
		cpumask_set_cpu(cpu, &ne_pool_fenced);
	for_each_cpu(cpu, mask) {
		if (cpumask_test_cpu(cpu, old))
			continue;
		rc = remove_cpu(cpu);
		/* 1: it is offline already (and stays so on undo). */
		if (rc < 0) {
			pr_err("cannot take CPU %u offline: %d\n", cpu, rc);
			goto undo;
		}
		if (!rc)
			cpumask_set_cpu(cpu, taken);
	}
	rc = 0;
	for_each_cpu(cpu, old)
		if (!cpumask_test_cpu(cpu, mask))
			ne_pool_online(cpu);

	kfree(ne_cores);
	ne_cores = cores;
	ne_nr_cores = nr;
	ne_pool_nr_cpus = cpumask_weight(mask);
	ne_pool_node = nr ? cpu_to_node(cpumask_first(mask)) : NUMA_NO_NODE;
	cores = NULL;
	goto out_cores;

undo:
	for_each_cpu(cpu, mask) {
		if (cpumask_test_cpu(cpu, old))
			continue;
		if (cpumask_test_cpu(cpu, taken))
			ne_pool_online(cpu);
		else
			cpumask_clear_cpu(cpu, &ne_pool_fenced);
	}
out_cores:
	kfree(cores);
out_taken:
	free_cpumask_var(taken);
out_old:
	free_cpumask_var(old);
	return rc;
}

static int ne_cpus_set(const char *val, const struct kernel_param *kp)
{
	cpumask_var_t mask;
	char *list;
	int rc;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	/* upstream's ENOSPC, but before the pool changes rather than after */
	if (strlen(val) >= sizeof(ne_cpus_written))
		return -ENOSPC;
	if (!zalloc_cpumask_var(&mask, GFP_KERNEL))
		return -ENOMEM;
	list = kstrdup(val, GFP_KERNEL);
	if (!list) {
		rc = -ENOMEM;
		goto out_mask;
	}
	rc = cpulist_parse(strim(list), mask);
	if (rc)
		goto out_list;

	mutex_lock(&ne_pool_lock);
	if (ne_pool_state == NE_POOL_CLOSED) {
		rc = -ENODEV;
	} else if (ne_pool_state == NE_POOL_LOADING) {
		rc = ne_pool_check(mask);
		if (!rc)
			cpumask_copy(&ne_pool_pending, mask);
	} else if (ne_pool_in_use()) {
		rc = -EBUSY;
	} else {
		rc = ne_pool_replace(mask);
	}
	if (!rc)
		strscpy(ne_cpus_written, val, sizeof(ne_cpus_written));
	mutex_unlock(&ne_pool_lock);
out_list:
	kfree(list);
out_mask:
	free_cpumask_var(mask);
	return rc;
}

/* As upstream's param_get_string(): the list as written, then a newline. */
static int ne_cpus_get(char *buf, const struct kernel_param *kp)
{
	int len;

	mutex_lock(&ne_pool_lock);
	len = sysfs_emit(buf, "%s\n", ne_cpus_written);
	mutex_unlock(&ne_pool_lock);
	return len;
}

static const struct kernel_param_ops ne_cpus_ops = {
	.set = ne_cpus_set,
	.get = ne_cpus_get,
};

module_param_cb(ne_cpus, &ne_cpus_ops, NULL, 0644);
MODULE_PARM_DESC(ne_cpus,
		 "CPUs given to enclaves, a cpu list of whole cores (not CPU 0's); they go offline");

/* CPUs of unclaimed cores plus the ones @e holds (NULL: the whole pool). */
unsigned int ne_pool_cpus_for(struct ne_enclave *e)
{
	unsigned int i, nr = 0;

	mutex_lock(&ne_pool_lock);
	for (i = 0; i < ne_nr_cores; i++)
		if (!e || !ne_cores[i].owner || ne_cores[i].owner == e)
			nr += cpumask_weight(&ne_cores[i].cpus);
	mutex_unlock(&ne_pool_lock);
	return nr;
}

/* CPUs of the cores no enclave claimed. */
unsigned int ne_pool_free_cpus(void)
{
	unsigned int i, nr = 0;

	mutex_lock(&ne_pool_lock);
	for (i = 0; i < ne_nr_cores; i++)
		if (!ne_cores[i].owner)
			nr += cpumask_weight(&ne_cores[i].cpus);
	mutex_unlock(&ne_pool_lock);
	return nr;
}

/*
 * Picks the parent CPU of a new vCPU: a free thread of a core @e holds,
 * else the first thread of the lowest free core, which @e then claims.
 * Returns the CPU and sets *@claimed to the claimed core, or -ENOSPC.
 */
int ne_pool_pick_cpu(struct ne_enclave *e, int *claimed)
{
	unsigned int cpu, i;

	*claimed = -1;
	for_each_cpu(cpu, e->cpus)
		if (!cpumask_test_cpu(cpu, e->used_cpus))
			return cpu;

	mutex_lock(&ne_pool_lock);
	for (i = 0; i < ne_nr_cores; i++) {
		if (ne_cores[i].owner)
			continue;
		ne_cores[i].owner = e;
		cpumask_or(e->cpus, e->cpus, &ne_cores[i].cpus);
		*claimed = i;
		mutex_unlock(&ne_pool_lock);
		return cpumask_first(&ne_cores[i].cpus);
	}
	mutex_unlock(&ne_pool_lock);
	return -ENOSPC;
}

/*
 * NE_ADD_VCPU with an id: CPU @cpu for @e, from a core it claimed or by
 * claiming the free core that holds it (upstream's rule: whole cores).
 * *@claimed is the core claimed, or -1.  -ENOENT: no free core holds it.
 */
int ne_pool_claim_cpu(struct ne_enclave *e, unsigned int cpu, int *claimed)
{
	unsigned int i;

	*claimed = -1;
	if (cpumask_test_cpu(cpu, e->cpus))
		return 0;

	mutex_lock(&ne_pool_lock);
	for (i = 0; i < ne_nr_cores; i++) {
		if (ne_cores[i].owner ||
		    !cpumask_test_cpu(cpu, &ne_cores[i].cpus))
			continue;
		ne_cores[i].owner = e;
		cpumask_or(e->cpus, e->cpus, &ne_cores[i].cpus);
		*claimed = i;
		mutex_unlock(&ne_pool_lock);
		return 0;
	}
	mutex_unlock(&ne_pool_lock);
	return -ENOENT;
}

void ne_pool_unclaim(struct ne_enclave *e, unsigned int core)
{
	mutex_lock(&ne_pool_lock);
	ne_cores[core].owner = NULL;
	cpumask_andnot(e->cpus, e->cpus, &ne_cores[core].cpus);
	mutex_unlock(&ne_pool_lock);
}

/* Every core of @e back to the pool, and @e no longer counts. */
void ne_pool_release(struct ne_enclave *e)
{
	unsigned int i;

	mutex_lock(&ne_pool_lock);
	for (i = 0; i < ne_nr_cores; i++)
		if (ne_cores[i].owner == e)
			ne_cores[i].owner = NULL;
	ne_nr_enclaves--;
	mutex_unlock(&ne_pool_lock);
}

/* A new enclave: it counts against pool changes and sees the pool's size. */
void ne_pool_enclave_add(struct ne_enclave *e)
{
	mutex_lock(&ne_pool_lock);
	ne_nr_enclaves++;
	e->max_vcpus = ne_pool_nr_cpus;
	e->node_id = ne_pool_node;
	mutex_unlock(&ne_pool_lock);
}

/*
 * Module init: takes the pool ne_cpus asked for at load.  On error the pool
 * is closed (as by ne_pool_exit()) and the load must fail.
 */
int __init ne_pool_init(void)
{
	int rc = 0;

	mutex_lock(&ne_pool_lock);
	if (!cpumask_empty(&ne_pool_pending))
		rc = ne_pool_replace(&ne_pool_pending);
	cpumask_clear(&ne_pool_pending);
	ne_pool_state = NE_POOL_OPEN;
	mutex_unlock(&ne_pool_lock);
	if (rc)
		ne_pool_exit();
	return rc;
}

/*
 * Module unload (or a failed load): every fd is closed (they hold the
 * module), so no enclave; every pool CPU goes back online, and ne_cpus
 * changes nothing any more.
 */
void ne_pool_exit(void)
{
	unsigned int i, cpu;

	mutex_lock(&ne_pool_lock);
	ne_pool_state = NE_POOL_CLOSED;
	for (i = 0; i < ne_nr_cores; i++)
		for_each_cpu(cpu, &ne_cores[i].cpus)
			ne_pool_online(cpu);
	kfree(ne_cores);
	ne_cores = NULL;
	ne_nr_cores = 0;
	ne_pool_nr_cpus = 0;
	ne_pool_node = NUMA_NO_NODE;
	if (ne_pool_cpuhp)
		cpuhp_remove_state_nocalls(ne_pool_cpuhp);
	ne_pool_cpuhp = 0;
	mutex_unlock(&ne_pool_lock);
}
