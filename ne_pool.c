// SPDX-License-Identifier: GPL-2.0
/*
 * The CPU pool of the Nitro Enclaves driver (module parameter ne_cpus): whole
 * cores taken offline and handed to enclaves a core at a time.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cpu.h>
#include <linux/cpumask.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/topology.h>

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

/* Brings every pool CPU back online and empties the pool; under the lock. */
static void ne_pool_clear(void)
{
	unsigned int i, cpu;
	int rc;

	for (i = 0; i < ne_nr_cores; i++) {
		for_each_cpu(cpu, &ne_cores[i].cpus) {
			rc = add_cpu(cpu);
			if (rc)
				pr_err("cannot bring CPU %u back online: %d\n",
				       cpu, rc);
		}
	}
	kfree(ne_cores);
	ne_cores = NULL;
	ne_nr_cores = 0;
	ne_pool_nr_cpus = 0;
	ne_pool_node = NUMA_NO_NODE;
}

static int ne_pool_check(const struct cpumask *mask)
{
	unsigned int cpu;
	int node = cpu_to_node(cpumask_first(mask));

	if (!cpumask_subset(mask, cpu_online_mask)) {
		pr_debug("ne_cpus: every CPU must be online\n");
		return -EINVAL;
	}
	if (cpumask_test_cpu(0, mask) ||
	    cpumask_intersects(mask, topology_sibling_cpumask(0))) {
		pr_debug("ne_cpus: CPU 0 and its siblings stay with Linux\n");
		return -EINVAL;
	}
	for_each_cpu(cpu, mask) {
		if (cpu_to_node(cpu) != node) {
			pr_debug("ne_cpus: CPUs of one NUMA node only\n");
			return -EINVAL;
		}
		if (!cpumask_subset(topology_sibling_cpumask(cpu), mask)) {
			pr_debug("ne_cpus: whole cores only (CPU %u)\n", cpu);
			return -EINVAL;
		}
	}
	return 0;
}

/* Records the cores of @mask, then takes them offline; under the lock. */
static int ne_pool_fill(const struct cpumask *mask)
{
	unsigned int cpu, i, nr = 0;
	int rc;

	rc = ne_pool_check(mask);
	if (rc)
		return rc;

	for_each_cpu(cpu, mask)
		if (cpu == cpumask_first(topology_sibling_cpumask(cpu)))
			nr++;
	ne_cores = kcalloc(nr, sizeof(*ne_cores), GFP_KERNEL);
	if (!ne_cores)
		return -ENOMEM;
	for_each_cpu(cpu, mask)
		if (cpu == cpumask_first(topology_sibling_cpumask(cpu)))
			cpumask_copy(&ne_cores[ne_nr_cores++].cpus,
				     topology_sibling_cpumask(cpu));
	ne_pool_nr_cpus = cpumask_weight(mask);
	ne_pool_node = cpu_to_node(cpumask_first(mask));

	/* The sibling masks are read above: offline CPUs have none. */
	for (i = 0; i < ne_nr_cores; i++) {
		for_each_cpu(cpu, &ne_cores[i].cpus) {
			rc = remove_cpu(cpu);
			if (rc) {
				pr_err("cannot take CPU %u offline: %d\n",
				       cpu, rc);
				ne_pool_clear();
				return rc;
			}
		}
	}
	return 0;
}

static int ne_cpus_set(const char *val, const struct kernel_param *kp)
{
	cpumask_var_t mask;
	char *list;
	int rc;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
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
	if (ne_nr_enclaves) {
		rc = -EBUSY;
	} else {
		ne_pool_clear();
		if (!cpumask_empty(mask))
			rc = ne_pool_fill(mask);
	}
	mutex_unlock(&ne_pool_lock);
out_list:
	kfree(list);
out_mask:
	free_cpumask_var(mask);
	return rc;
}

static int ne_cpus_get(char *buf, const struct kernel_param *kp)
{
	cpumask_var_t mask;
	unsigned int i;
	int len;

	if (!zalloc_cpumask_var(&mask, GFP_KERNEL))
		return -ENOMEM;
	mutex_lock(&ne_pool_lock);
	for (i = 0; i < ne_nr_cores; i++)
		cpumask_or(mask, mask, &ne_cores[i].cpus);
	mutex_unlock(&ne_pool_lock);
	len = sysfs_emit(buf, "%*pbl\n", cpumask_pr_args(mask));
	free_cpumask_var(mask);
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

/* Module unload: every fd is closed (they hold the module), so no enclave. */
void ne_pool_exit(void)
{
	mutex_lock(&ne_pool_lock);
	ne_pool_clear();
	mutex_unlock(&ne_pool_lock);
}
