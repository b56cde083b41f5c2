// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/nitro_enclaves, the KVM-shaped user API (see kvm-api.md).
 *
 * Objects.  The system fd (the misc device) creates VM fds; a VM fd is one
 * enclave, that is one device slot; a vCPU fd is one parent CPU donated to
 * the enclave.  A vCPU fd holds a reference on its VM file, so the VM file's
 * release (ne_vm_release) runs once the last VM and vCPU fd is gone, in any
 * order of closes, and tears everything down: ENCLAVE_STOP if the enclave
 * may be running, SLOT_FREE, unpin, cores back to the pool.
 *
 * Locks, always taken in this order (never the other way round):
 *
 *   ne_list_lock        the list of enclaves (ne_enclaves); held by the
 *                       event work while it walks the list, by release to
 *                       unlink, by KVM_CREATE_VM to link.
 *   enclave->lock       one enclave's fields; held across that enclave's
 *                       ioctls, including the device commands they send,
 *                       so ioctls on different enclaves run in parallel.
 *   ne_dev_sem (read)   the device pointer, held around each command so
 *                       PCI remove (ne_dev_sem write) waits for commands in
 *                       flight; ne_pci_dev.cmd_lock, inside ne_pci_cmd(),
 *                       then makes the device commands themselves one at a
 *                       time.
 *   ne_pool_lock        the CPU pool; a leaf lock: no command is ever sent
 *                       and no other lock taken while holding it, except
 *                       the CPU hotplug locks when ne_cpus changes.
 *
 * The device pointer is written (ne_dev_sem write) only by probe and remove,
 * which hold no other lock while doing so.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/capability.h>
#include <linux/cpu.h>
#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/hugetlb.h>
#include <linux/kvm.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/rwsem.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/topology.h>
#include <linux/uaccess.h>

#include <linux/ne_kvm.h>

#include "ne_kvm_compat.h"
#include "ne_pci.h"

/* Device slot states, as SLOT_INFO reports them. */
#define NE_STATE_INIT		0
#define NE_STATE_RUNNING	2
#define NE_STATE_STOPPED	0xffff

/* A device that claims more ranges than this is clamped to it. */
#define NE_MAX_MEM_REGIONS	4096

/* How long SLOT_FREE and ENCLAVE_STOP are retried while they get -EAGAIN. */
#define NE_EAGAIN_RETRY_MS	40000

/* A memory range of the enclave, as sent to the device. */
struct ne_range {
	u64 phys;
	u64 size;
};

/* A user range donated by one KVM_SET_USER_MEMORY_REGION call. */
struct ne_user_range {
	u64 uaddr;
	u64 size;
};

/* The pages pinned by one KVM_SET_USER_MEMORY_REGION call. */
struct ne_pins {
	struct list_head node;
	unsigned long nr;
	struct page *pages[];
};

/* One core of the pool: its CPUs and the enclave that holds it, if any. */
struct ne_core {
	cpumask_t cpus;
	struct ne_enclave *owner;
};

struct ne_vcpu_slot {
	u32 id;
	unsigned int cpu;
};

/**
 * struct ne_enclave - one VM fd, one device slot
 * @node:	in ne_enclaves, under ne_list_lock.
 * @lock:	everything below, except what says otherwise.
 * @file:	the VM file (no reference: the enclave lives as long as it).
 * @mm:		the creator's mm (grabbed); other mms get EIO.
 * @dev_gen:	ne_dev_gen when the slot was allocated.
 * @resets:	the device's reset count then.
 * @slot_uid:	the device slot.
 * @state:	NE_STATE_*; the event work updates it.
 * @wedged:	a command timed out: its effect is unknown, so the enclave
 *		takes no more resources and is stopped and freed on release.
 * @has_event:	the enclave stopped on its own; never cleared.
 * @eventq:	pollers of @has_event.
 * @enclave_cid: the CID in use once started.
 * @flags:	the start flags.
 * @node_id:	the pool's NUMA node, or NUMA_NO_NODE without a pool.
 * @max_mem_regions: the device's limit of ranges for this slot.
 * @slots_used:	memory slot ids already set.
 * @uranges:	user ranges donated.
 * @nr_uranges:	how many.
 * @ranges:	merged physical ranges.
 * @nr_ranges:	how many.
 * @mem_size:	bytes donated, the next guest-physical address.
 * @pins:	list of struct ne_pins.
 * @cpus:	CPUs of the cores this enclave claimed from the pool.
 * @used_cpus:	those of them donated as vCPUs.
 * @vcpus:	the vCPUs.
 * @nr_vcpus:	how many.
 * @max_vcpus:	the pool's size when the enclave was created.
 * @last_error:	why the last refused ioctl was refused.
 */
struct ne_enclave {
	struct list_head node;
	struct mutex lock;		/* the enclave's fields */
	struct file *file;
	struct mm_struct *mm;
	unsigned int dev_gen;
	unsigned int resets;
	u64 slot_uid;
	u16 state;
	bool wedged;
	bool has_event;
	wait_queue_head_t eventq;
	u64 enclave_cid;
	u64 flags;
	int node_id;
	u64 max_mem_regions;
	unsigned long *slots_used;
	struct ne_user_range *uranges;
	unsigned int nr_uranges;
	struct ne_range *ranges;
	unsigned int nr_ranges;
	u64 mem_size;
	struct list_head pins;
	cpumask_var_t cpus;
	cpumask_var_t used_cpus;
	struct ne_vcpu_slot *vcpus;
	unsigned int nr_vcpus;
	unsigned int max_vcpus;
	const char *last_error;
};

struct ne_vcpu {
	struct ne_enclave *enclave;
	struct file *vm_file;		/* a reference */
	u32 id;
	unsigned int cpu;
};

static DEFINE_MUTEX(ne_list_lock);
static LIST_HEAD(ne_enclaves);		/* under ne_list_lock */

static DECLARE_RWSEM(ne_dev_sem);
static struct ne_pci_dev *ne_dev;	/* under ne_dev_sem */
static unsigned int ne_dev_gen;		/* under ne_dev_sem */

static DEFINE_MUTEX(ne_pool_lock);
static struct ne_core *ne_cores;	/* under ne_pool_lock */
static unsigned int ne_nr_cores;	/* under ne_pool_lock */
static unsigned int ne_pool_nr_cpus;	/* under ne_pool_lock */
static int ne_pool_node = NUMA_NO_NODE;	/* under ne_pool_lock */
static unsigned int ne_nr_enclaves;	/* under ne_pool_lock */

/* ----------------------------------------------------------------------- */
/* The CPU pool (module parameter ne_cpus)                                   */
/* ----------------------------------------------------------------------- */

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
static unsigned int ne_pool_cpus_for(struct ne_enclave *e)
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
static int ne_pool_pick_cpu(struct ne_enclave *e, int *claimed)
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

static void ne_pool_unclaim(struct ne_enclave *e, unsigned int core)
{
	mutex_lock(&ne_pool_lock);
	ne_cores[core].owner = NULL;
	cpumask_andnot(e->cpus, e->cpus, &ne_cores[core].cpus);
	mutex_unlock(&ne_pool_lock);
}

/* Every core of @e back to the pool, and @e no longer counts. */
static void ne_pool_release(struct ne_enclave *e)
{
	unsigned int i;

	mutex_lock(&ne_pool_lock);
	for (i = 0; i < ne_nr_cores; i++)
		if (ne_cores[i].owner == e)
			ne_cores[i].owner = NULL;
	ne_nr_enclaves--;
	mutex_unlock(&ne_pool_lock);
}

/* ----------------------------------------------------------------------- */
/* Device commands on behalf of an enclave                                   */
/* ----------------------------------------------------------------------- */

/* Whether @e's slot is gone: device removed, replaced or reset. */
static bool ne_slot_lost(struct ne_enclave *e)
{
	return !ne_dev || e->dev_gen != ne_dev_gen ||
	       READ_ONCE(ne_dev->resets) != e->resets;
}

static bool ne_enclave_lost(struct ne_enclave *e)
{
	bool lost;

	down_read(&ne_dev_sem);
	lost = ne_slot_lost(e);
	up_read(&ne_dev_sem);
	return lost;
}

/* Sends a command about @e's slot; -ENODEV once the slot is gone. */
static int ne_enclave_cmd(struct ne_enclave *e, enum ne_pci_cmd_type type,
			  const void *req, size_t size,
			  struct ne_pci_reply *reply)
{
	int rc = -ENODEV;

	down_read(&ne_dev_sem);
	if (!ne_slot_lost(e)) {
		rc = ne_pci_cmd(ne_dev, type, req, size, reply);
		/* A channel reset during the command took the slot away. */
		if (ne_slot_lost(e))
			rc = -ENODEV;
	}
	up_read(&ne_dev_sem);
	return rc;
}

/* STOP and FREE may meet a slot that is busy for a while: retry -EAGAIN. */
static int ne_enclave_cmd_retry(struct ne_enclave *e,
				enum ne_pci_cmd_type type)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(NE_EAGAIN_RETRY_MS);
	struct ne_req_slot req = { .slot_uid = e->slot_uid };
	struct ne_pci_reply reply;
	int rc;

	for (;;) {
		rc = ne_enclave_cmd(e, type, &req, sizeof(req), &reply);
		if (rc != -EAGAIN || time_after(jiffies, deadline))
			return rc;
		usleep_range(1000, 2000);
	}
}

/* Records why a call was refused, for fdinfo, and returns @err. */
static int ne_refuse(struct ne_enclave *e, int err, const char *why)
{
	e->last_error = why;
	pr_debug("enclave %#llx: %s (%d)\n", e->slot_uid, why, err);
	return err;
}

/* ----------------------------------------------------------------------- */
/* KVM_SET_USER_MEMORY_REGION                                                */
/* ----------------------------------------------------------------------- */

static int ne_check_region(struct ne_enclave *e,
			   const struct kvm_userspace_memory_region *r)
{
	u32 id = r->slot & 0xffff;
	unsigned int i;

	if (r->flags)
		return ne_refuse(e, -EINVAL, "memory region flags must be 0");
	if (r->slot >> 16)
		return ne_refuse(e, -EINVAL, "memory address space must be 0");
	if (id >= e->max_mem_regions)
		return ne_refuse(e, -EINVAL,
				 "slot not below KVM_CAP_NR_MEMSLOTS");
	if (!r->memory_size)
		return ne_refuse(e, -EINVAL,
				 "memory_size 0: donated memory is not taken back");
	if (!IS_ALIGNED(r->userspace_addr, NE_MEM_ALIGN) ||
	    !IS_ALIGNED(r->memory_size, NE_MEM_ALIGN))
		return ne_refuse(e, -EINVAL,
				 "userspace_addr and memory_size must be 2 MiB multiples");
	if (r->userspace_addr + r->memory_size < r->userspace_addr)
		return ne_refuse(e, -EINVAL, "memory region wraps around");
	if (r->guest_phys_addr != e->mem_size)
		return ne_refuse(e, -EINVAL,
				 "guest_phys_addr must equal the memory size so far");
	if (!access_ok(u64_to_user_ptr(r->userspace_addr), r->memory_size))
		return ne_refuse(e, -EFAULT, "memory region is not user memory");
	if (test_bit(id, e->slots_used))
		return ne_refuse(e, -EEXIST, "memory slot already set");
	for (i = 0; i < e->nr_uranges; i++) {
		const struct ne_user_range *u = &e->uranges[i];

		if (r->userspace_addr < u->uaddr + u->size &&
		    u->uaddr < r->userspace_addr + r->memory_size)
			return ne_refuse(e, -EEXIST,
					 "memory region overlaps a donated one");
	}
	return 0;
}

/* Whether @phys continues the enclave's last range or the call's last run. */
static bool ne_continues(const struct ne_range *last, u64 phys)
{
	return last && last->phys + last->size == phys;
}

/*
 * Pins @size bytes at @uaddr one huge page at a time into @pins and merges
 * them into @runs (at most @max_runs).  Returns the number of runs.
 */
static int ne_pin_region(struct ne_enclave *e, u64 uaddr, u64 size,
			 struct ne_pins *pins, struct ne_range *runs,
			 unsigned int max_runs)
{
	const struct ne_range *prev = e->nr_ranges ?
				      &e->ranges[e->nr_ranges - 1] : NULL;
	unsigned int nr_runs = 0;
	u64 done = 0;

	while (done < size) {
		struct page *page, *head;
		u64 phys, offset, chunk;
		long n;

		n = pin_user_pages_fast(uaddr + done, 1,
					FOLL_WRITE | FOLL_LONGTERM, &page);
		if (n != 1)
			return ne_refuse(e, n < 0 ? n : -EFAULT,
					 "memory region is not mapped");
		pins->pages[pins->nr++] = page;

		if (!PageHuge(page))
			return ne_refuse(e, -EINVAL,
					 "memory is not hugetlbfs memory");
		head = compound_head(page);
		if (page_size(head) % NE_MEM_ALIGN)
			return ne_refuse(e, -EINVAL,
					 "huge page size is not a 2 MiB multiple");
		if (e->node_id != NUMA_NO_NODE &&
		    page_to_nid(page) != e->node_id)
			return ne_refuse(e, -EINVAL,
					 "memory is not on the CPU pool's NUMA node");
		phys = page_to_phys(page);
		offset = phys - page_to_phys(head);
		chunk = min_t(u64, size - done, page_size(head) - offset);

		if (ne_continues(nr_runs ? &runs[nr_runs - 1] : prev, phys)) {
			if (!nr_runs)
				runs[nr_runs++] = (struct ne_range){ phys, 0 };
			runs[nr_runs - 1].size += chunk;
		} else {
			if (nr_runs == max_runs)
				return ne_refuse(e, -ENOSPC,
						 "more memory ranges than KVM_CAP_NR_MEMSLOTS");
			runs[nr_runs++] = (struct ne_range){ phys, chunk };
		}
		done += chunk;
	}
	return nr_runs;
}

/* Adds a run the device accepted to the enclave's ranges. */
static void ne_add_range(struct ne_enclave *e, const struct ne_range *run)
{
	struct ne_range *last = e->nr_ranges ?
				&e->ranges[e->nr_ranges - 1] : NULL;

	if (ne_continues(last, run->phys))
		last->size += run->size;
	else
		e->ranges[e->nr_ranges++] = *run;
	e->mem_size += run->size;
}

static long ne_vm_set_memory(struct ne_enclave *e, void __user *argp)
{
	struct kvm_userspace_memory_region r;
	struct ne_req_slot_add_mem req = { .slot_uid = e->slot_uid };
	struct ne_pci_reply reply;
	struct ne_range *runs;
	struct ne_pins *pins;
	unsigned int max_runs, i = 0;
	int nr_runs, rc;

	if (copy_from_user(&r, argp, sizeof(r)))
		return ne_refuse(e, -EFAULT, "cannot read the memory region");
	if (e->state != NE_STATE_INIT)
		return ne_refuse(e, -EBUSY, "memory after start");
	rc = ne_check_region(e, &r);
	if (rc)
		return rc;

	/* Room for the ranges left, plus one that extends the last range. */
	max_runs = e->max_mem_regions - e->nr_ranges + 1;
	max_runs = min_t(u64, max_runs, r.memory_size / NE_MEM_ALIGN);
	runs = kcalloc(max_runs, sizeof(*runs), GFP_KERNEL);
	pins = kvzalloc(struct_size(pins, pages, r.memory_size / NE_MEM_ALIGN),
			GFP_KERNEL);
	if (!runs || !pins) {
		rc = -ENOMEM;
		goto out_free;
	}

	nr_runs = ne_pin_region(e, r.userspace_addr, r.memory_size, pins,
				runs, max_runs);
	if (nr_runs < 0) {
		rc = nr_runs;
		goto out_unpin;
	}
	if (e->nr_ranges + nr_runs -
	    ne_continues(e->nr_ranges ? &e->ranges[e->nr_ranges - 1] : NULL,
			 runs[0].phys) > e->max_mem_regions) {
		rc = ne_refuse(e, -ENOSPC,
			       "more memory ranges than KVM_CAP_NR_MEMSLOTS");
		goto out_unpin;
	}

	for (i = 0; i < nr_runs; i++) {
		req.paddr = runs[i].phys;
		req.size = runs[i].size;
		rc = ne_enclave_cmd(e, NE_CMD_SLOT_ADD_MEM, &req, sizeof(req),
				    &reply);
		if (rc)
			break;
		ne_add_range(e, &runs[i]);
	}
	if (rc == -ETIMEDOUT)
		e->wedged = true;
	if (rc)
		ne_refuse(e, rc, rc == -ETIMEDOUT ?
			  "the device did not answer SLOT_ADD_MEM" :
			  "the device refused SLOT_ADD_MEM");
	/* Nothing the device may hold is unpinned before SLOT_FREE. */
	if (i == 0 && rc && rc != -ETIMEDOUT)
		goto out_unpin;

	set_bit(r.slot & 0xffff, e->slots_used);
	e->uranges[e->nr_uranges++] = (struct ne_user_range){
		r.userspace_addr, r.memory_size };
	list_add_tail(&pins->node, &e->pins);
	kfree(runs);
	return rc;

out_unpin:
	unpin_user_pages(pins->pages, pins->nr);
out_free:
	kvfree(pins);
	kfree(runs);
	return rc;
}

/* ----------------------------------------------------------------------- */
/* vCPU fds                                                                  */
/* ----------------------------------------------------------------------- */

static bool ne_is_vcpu_ioctl(unsigned int cmd)
{
	switch (cmd) {
	case KVM_RUN:
	case KVM_GET_REGS:
	case KVM_SET_REGS:
	case KVM_GET_SREGS:
	case KVM_SET_SREGS:
	case KVM_TRANSLATE:
	case KVM_INTERRUPT:
	case KVM_GET_MSRS:
	case KVM_SET_MSRS:
	case KVM_SET_CPUID:
	case KVM_SET_CPUID2:
	case KVM_GET_CPUID2:
	case KVM_SET_SIGNAL_MASK:
	case KVM_GET_FPU:
	case KVM_SET_FPU:
	case KVM_GET_LAPIC:
	case KVM_SET_LAPIC:
	case KVM_NMI:
	case KVM_SMI:
	case KVM_GET_VCPU_EVENTS:
	case KVM_SET_VCPU_EVENTS:
	case KVM_GET_DEBUGREGS:
	case KVM_SET_DEBUGREGS:
	case KVM_GET_XSAVE:
	case KVM_SET_XSAVE:
	case KVM_GET_XCRS:
	case KVM_SET_XCRS:
	case KVM_GET_MP_STATE:
	case KVM_SET_MP_STATE:
	case KVM_SET_GUEST_DEBUG:
	case KVM_GET_ONE_REG:
	case KVM_SET_ONE_REG:
	case KVM_ENABLE_CAP:
	case KVM_KVMCLOCK_CTRL:
	case KVM_X86_SETUP_MCE:
	case KVM_X86_SET_MCE:
	case KVM_GET_NESTED_STATE:
	case KVM_SET_NESTED_STATE:
	case KVM_TPR_ACCESS_REPORTING:
	case KVM_SET_VAPIC_ADDR:
	case KVM_GET_STATS_FD:
		return true;
	default:
		return false;
	}
}

/* The hypervisor runs the vCPU; its state is the enclave's secret. */
static long ne_vcpu_ioctl(struct file *file, unsigned int cmd,
			  unsigned long arg)
{
	struct ne_vcpu *vcpu = file->private_data;

	if (current->mm != vcpu->enclave->mm)
		return -EIO;
	return ne_is_vcpu_ioctl(cmd) ? -EOPNOTSUPP : -ENOTTY;
}

static int ne_vcpu_release(struct inode *inode, struct file *file)
{
	struct ne_vcpu *vcpu = file->private_data;

	fput(vcpu->vm_file);
	kfree(vcpu);
	return 0;
}

static void ne_vcpu_show_fdinfo(struct seq_file *m, struct file *file)
{
	struct ne_vcpu *vcpu = file->private_data;

	seq_printf(m, "ne_vcpu_id:\t%u\n", vcpu->id);
	seq_printf(m, "ne_parent_cpu:\t%u\n", vcpu->cpu);
}

static const struct file_operations ne_vcpu_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = ne_vcpu_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = ne_vcpu_release,
	.show_fdinfo = ne_vcpu_show_fdinfo,
	.llseek = noop_llseek,
};

/* A vCPU fd, made before the device is asked, so it cannot fail after. */
static struct file *ne_vcpu_file(struct ne_enclave *e, u32 id)
{
	struct ne_vcpu *vcpu;
	struct file *file;

	vcpu = kzalloc(sizeof(*vcpu), GFP_KERNEL);
	if (!vcpu)
		return ERR_PTR(-ENOMEM);
	vcpu->enclave = e;
	vcpu->id = id;
	vcpu->vm_file = get_file(e->file);
	file = anon_inode_getfile("ne-vcpu", &ne_vcpu_fops, vcpu, O_RDWR);
	if (IS_ERR(file)) {
		fput(vcpu->vm_file);
		kfree(vcpu);
	}
	return file;
}

static long ne_vm_create_vcpu(struct ne_enclave *e, unsigned long id)
{
	struct ne_req_slot_add_vcpu req = { .slot_uid = e->slot_uid };
	struct ne_pci_reply reply;
	struct ne_vcpu *vcpu;
	struct file *file;
	unsigned int i;
	int fd, cpu, claimed, rc;

	if (e->state != NE_STATE_INIT)
		return ne_refuse(e, -EBUSY, "vCPU after start");
	if (id >= e->max_vcpus)
		return ne_refuse(e, -EINVAL,
				 "vCPU id not below KVM_CAP_MAX_VCPU_ID");
	for (i = 0; i < e->nr_vcpus; i++)
		if (e->vcpus[i].id == id)
			return ne_refuse(e, -EEXIST, "vCPU id already used");

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		return fd;
	file = ne_vcpu_file(e, id);
	if (IS_ERR(file)) {
		rc = PTR_ERR(file);
		goto err_fd;
	}

	cpu = ne_pool_pick_cpu(e, &claimed);
	if (cpu < 0) {
		rc = ne_refuse(e, cpu, "no free CPU in the pool");
		goto err_file;
	}
	req.vcpu_id = cpu;
	rc = ne_enclave_cmd(e, NE_CMD_SLOT_ADD_VCPU, &req, sizeof(req),
			    &reply);
	if (rc == -ETIMEDOUT) {
		/* The device may hold the CPU: keep it until release. */
		e->wedged = true;
		cpumask_set_cpu(cpu, e->used_cpus);
		ne_refuse(e, rc, "the device did not answer SLOT_ADD_VCPU");
		goto err_file;
	}
	if (rc) {
		if (claimed >= 0)
			ne_pool_unclaim(e, claimed);
		ne_refuse(e, rc, "the device refused SLOT_ADD_VCPU");
		goto err_file;
	}

	cpumask_set_cpu(cpu, e->used_cpus);
	e->vcpus[e->nr_vcpus++] = (struct ne_vcpu_slot){ id, cpu };
	vcpu = file->private_data;
	vcpu->cpu = cpu;
	fd_install(fd, file);
	return fd;

err_file:
	fput(file);
err_fd:
	put_unused_fd(fd);
	return rc;
}

/* ----------------------------------------------------------------------- */
/* NE_ENCLAVE_START                                                          */
/* ----------------------------------------------------------------------- */

static long ne_vm_start(struct ne_enclave *e, void __user *argp)
{
	struct ne_enclave_start start;
	struct ne_req_enclave_start req = { .slot_uid = e->slot_uid };
	struct ne_pci_reply reply;
	int rc;

	if (copy_from_user(&start, argp, sizeof(start)))
		return ne_refuse(e, -EFAULT, "cannot read the start argument");
	if (start.flags & ~NE_ENCLAVE_START_FLAGS)
		return ne_refuse(e, -EINVAL, "unknown start flags");
	if (start.enclave_cid &&
	    (start.enclave_cid <= NE_PARENT_VM_CID ||
	     start.enclave_cid >= U32_MAX))
		return ne_refuse(e, -EINVAL,
				 "CID 1, 2, 3 and from U32_MAX up are reserved");
	if (e->state != NE_STATE_INIT)
		return ne_refuse(e, -EBUSY, "enclave already started");
	if (!e->nr_ranges)
		return ne_refuse(e, -EINVAL, "start without memory");
	if (e->mem_size < NE_MIN_ENCLAVE_MEM_SIZE)
		return ne_refuse(e, -EINVAL, "start with less than 64 MiB");
	if (!e->nr_vcpus)
		return ne_refuse(e, -EINVAL, "start without a vCPU");
	if (!cpumask_equal(e->cpus, e->used_cpus))
		return ne_refuse(e, -EINVAL,
				 "start with a claimed core not fully used");

	req.enclave_cid = start.enclave_cid;
	req.flags = start.flags;
	rc = ne_enclave_cmd(e, NE_CMD_ENCLAVE_START, &req, sizeof(req),
			    &reply);
	if (rc == -ETIMEDOUT)
		e->wedged = true;
	if (rc)
		return ne_refuse(e, rc, rc == -ETIMEDOUT ?
				 "the device did not answer ENCLAVE_START" :
				 "the device refused ENCLAVE_START");

	e->state = NE_STATE_RUNNING;
	e->enclave_cid = reply.enclave_cid;
	e->flags = start.flags;
	start.enclave_cid = reply.enclave_cid;
	if (copy_to_user(argp, &start, sizeof(start)))
		return ne_refuse(e, -EFAULT,
				 "started, but cannot write the CID back");
	return 0;
}

/* ----------------------------------------------------------------------- */
/* VM fds                                                                    */
/* ----------------------------------------------------------------------- */

static long ne_check_extension(struct ne_enclave *e, unsigned long cap)
{
	long val = 0;

	switch (cap) {
	case KVM_CAP_USER_MEMORY:
		return 1;
	case KVM_CAP_NR_VCPUS:
	case KVM_CAP_MAX_VCPUS:
	case KVM_CAP_MAX_VCPU_ID:
		return ne_pool_cpus_for(e);
	case KVM_CAP_NR_MEMSLOTS:
		if (e)
			return e->max_mem_regions;
		down_read(&ne_dev_sem);
		if (ne_dev)
			val = ne_dev->max_mem_regions;
		up_read(&ne_dev_sem);
		return val;
	default:
		return 0;
	}
}

/* The enclave's own refusals common to its resource and start ioctls. */
static int ne_vm_check_usable(struct ne_enclave *e)
{
	if (ne_enclave_lost(e))
		return ne_refuse(e, -ENODEV, "the device or its slot is gone");
	if (e->state != NE_STATE_INIT && e->state != NE_STATE_RUNNING)
		return ne_refuse(e, -EIO, "the enclave has stopped");
	if (e->wedged)
		return ne_refuse(e, -EIO,
				 "a device command timed out: close and retry");
	return 0;
}

static long ne_vm_ioctl(struct file *file, unsigned int cmd,
			unsigned long arg)
{
	struct ne_enclave *e = file->private_data;
	long rc;

	if (current->mm != e->mm) {
		mutex_lock(&e->lock);
		rc = ne_refuse(e, -EIO, "ioctl from another process");
		mutex_unlock(&e->lock);
		return rc;
	}

	switch (cmd) {
	case KVM_CHECK_EXTENSION:
		return ne_check_extension(e, arg);
	case KVM_SET_USER_MEMORY_REGION:
	case KVM_CREATE_VCPU:
	case NE_ENCLAVE_START:
		break;
	default:
		mutex_lock(&e->lock);
		rc = ne_refuse(e, -ENOTTY, "unknown ioctl");
		mutex_unlock(&e->lock);
		return rc;
	}

	if (mutex_lock_killable(&e->lock))
		return -EINTR;
	rc = ne_vm_check_usable(e);
	if (rc)
		goto out;
	switch (cmd) {
	case KVM_SET_USER_MEMORY_REGION:
		rc = ne_vm_set_memory(e, (void __user *)arg);
		break;
	case KVM_CREATE_VCPU:
		rc = ne_vm_create_vcpu(e, arg);
		break;
	case NE_ENCLAVE_START:
		rc = ne_vm_start(e, (void __user *)arg);
		break;
	}
out:
	mutex_unlock(&e->lock);
	return rc;
}

static __poll_t ne_vm_poll(struct file *file, poll_table *wait)
{
	struct ne_enclave *e = file->private_data;

	poll_wait(file, &e->eventq, wait);
	if (READ_ONCE(e->has_event) || ne_enclave_lost(e))
		return EPOLLHUP;
	return 0;
}

static const char *ne_state_name(struct ne_enclave *e)
{
	if (e->state == NE_STATE_INIT)
		return "init";
	if (e->state == NE_STATE_RUNNING)
		return "running";
	return "stopped";
}

static void ne_vm_show_fdinfo(struct seq_file *m, struct file *file)
{
	struct ne_enclave *e = file->private_data;

	mutex_lock(&e->lock);
	seq_printf(m, "ne_slot_uid:\t%#llx\n", e->slot_uid);
	seq_printf(m, "ne_state:\t%s\n", ne_state_name(e));
	seq_printf(m, "ne_enclave_cid:\t%llu\n", e->enclave_cid);
	seq_printf(m, "ne_flags:\t%#llx\n", e->flags);
	seq_printf(m, "ne_mem_bytes:\t%llu\n", e->mem_size);
	seq_printf(m, "ne_mem_ranges:\t%u\n", e->nr_ranges);
	seq_printf(m, "ne_vcpus:\t%u\n", e->nr_vcpus);
	seq_printf(m, "ne_parent_cpus:\t%*pbl\n", cpumask_pr_args(e->used_cpus));
	seq_printf(m, "ne_last_error:\t%s\n",
		   e->last_error ? e->last_error : "none");
	mutex_unlock(&e->lock);
}

static void ne_enclave_free(struct ne_enclave *e)
{
	struct ne_pins *pins, *tmp;

	list_for_each_entry_safe(pins, tmp, &e->pins, node) {
		unpin_user_pages(pins->pages, pins->nr);
		kvfree(pins);
	}
	if (e->mm)
		mmdrop(e->mm);
	free_cpumask_var(e->used_cpus);
	free_cpumask_var(e->cpus);
	kfree(e->vcpus);
	kfree(e->ranges);
	kfree(e->uranges);
	bitmap_free(e->slots_used);
	kfree(e);
}

/*
 * The last VM and vCPU fd is gone: stop the enclave if it may run, free
 * the slot, then unpin and give the cores back.  A slot the device would
 * not free keeps its pages pinned: the device may still hand them to the
 * enclave, so the parent must never get them back.
 */
static int ne_vm_release(struct inode *inode, struct file *file)
{
	struct ne_enclave *e = file->private_data;
	int rc;

	mutex_lock(&ne_list_lock);
	list_del(&e->node);
	mutex_unlock(&ne_list_lock);

	if (e->state == NE_STATE_RUNNING || e->wedged) {
		rc = ne_enclave_cmd_retry(e, NE_CMD_ENCLAVE_STOP);
		if (rc && rc != -ENODEV)
			pr_debug("enclave %#llx: ENCLAVE_STOP: %d\n",
				 e->slot_uid, rc);
	}
	rc = ne_enclave_cmd_retry(e, NE_CMD_SLOT_FREE);
	if (rc && rc != -ENODEV) {
		pr_err("enclave %#llx: SLOT_FREE failed (%d), its memory stays pinned\n",
		       e->slot_uid, rc);
		INIT_LIST_HEAD(&e->pins);
	}

	ne_pool_release(e);
	ne_enclave_free(e);
	return 0;
}

static const struct file_operations ne_vm_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = ne_vm_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.poll = ne_vm_poll,
	.release = ne_vm_release,
	.show_fdinfo = ne_vm_show_fdinfo,
	.llseek = noop_llseek,
};

static struct ne_enclave *ne_enclave_alloc(void)
{
	struct ne_enclave *e = kzalloc(sizeof(*e), GFP_KERNEL);

	if (!e)
		return NULL;
	mutex_init(&e->lock);
	init_waitqueue_head(&e->eventq);
	INIT_LIST_HEAD(&e->pins);
	INIT_LIST_HEAD(&e->node);
	if (!zalloc_cpumask_var(&e->cpus, GFP_KERNEL) ||
	    !zalloc_cpumask_var(&e->used_cpus, GFP_KERNEL)) {
		ne_enclave_free(e);
		return NULL;
	}
	return e;
}

/* Asks the device for a slot and sizes the enclave after its limits. */
static int ne_enclave_alloc_slot(struct ne_enclave *e)
{
	struct ne_req_slot_alloc req = { };
	struct ne_pci_reply reply;
	u64 max;
	int rc = -ENODEV;

	down_read(&ne_dev_sem);
	if (ne_dev) {
		e->dev_gen = ne_dev_gen;
		e->resets = READ_ONCE(ne_dev->resets);
		rc = ne_pci_cmd(ne_dev, NE_CMD_SLOT_ALLOC, &req, sizeof(req),
				&reply);
		/* A reset during SLOT_ALLOC: the slot, if any, is gone. */
		if (!rc && READ_ONCE(ne_dev->resets) != e->resets)
			rc = -ENODEV;
	}
	up_read(&ne_dev_sem);
	if (rc)
		return rc;

	e->slot_uid = reply.slot_uid;
	max = min_t(u64, reply.mem_regions, NE_MAX_MEM_REGIONS);
	e->max_mem_regions = max;
	e->slots_used = bitmap_zalloc(max, GFP_KERNEL);
	e->uranges = kcalloc(max, sizeof(*e->uranges), GFP_KERNEL);
	e->ranges = kcalloc(max, sizeof(*e->ranges), GFP_KERNEL);
	e->vcpus = kcalloc(e->max_vcpus, sizeof(*e->vcpus), GFP_KERNEL);
	if ((max && (!e->slots_used || !e->uranges || !e->ranges)) ||
	    (e->max_vcpus && !e->vcpus))
		return -ENOMEM;
	return 0;
}

static long ne_sys_create_vm(unsigned long type)
{
	struct ne_enclave *e;
	struct file *file;
	int fd, rc;

	if (type)
		return -EINVAL;
	e = ne_enclave_alloc();
	if (!e)
		return -ENOMEM;

	mutex_lock(&ne_pool_lock);
	ne_nr_enclaves++;
	e->max_vcpus = ne_pool_nr_cpus;
	e->node_id = ne_pool_node;
	mutex_unlock(&ne_pool_lock);
	e->mm = current->mm;
	mmgrab(e->mm);

	rc = ne_enclave_alloc_slot(e);
	if (rc)
		goto err_slot;

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		rc = fd;
		goto err_slot;
	}
	file = anon_inode_getfile("ne-vm", &ne_vm_fops, e, O_RDWR);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		rc = PTR_ERR(file);
		goto err_slot;
	}
	e->file = file;

	mutex_lock(&ne_list_lock);
	list_add_tail(&e->node, &ne_enclaves);
	mutex_unlock(&ne_list_lock);
	fd_install(fd, file);
	return fd;

err_slot:
	if (e->slot_uid)
		ne_enclave_cmd_retry(e, NE_CMD_SLOT_FREE);
	ne_pool_release(e);
	ne_enclave_free(e);
	return rc;
}

/* ----------------------------------------------------------------------- */
/* The system fd                                                             */
/* ----------------------------------------------------------------------- */

static long ne_sys_ioctl(struct file *file, unsigned int cmd,
			 unsigned long arg)
{
	switch (cmd) {
	case KVM_GET_API_VERSION:
		return arg ? -EINVAL : KVM_API_VERSION;
	case KVM_CHECK_EXTENSION:
		return ne_check_extension(NULL, arg);
	case KVM_CREATE_VM:
		return ne_sys_create_vm(arg);
	case KVM_GET_VCPU_MMAP_SIZE:
		return -EOPNOTSUPP;
	default:
		return -ENOTTY;
	}
}

static const struct file_operations ne_sys_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = ne_sys_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice ne_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = NE_MISC_NAME,
	.fops = &ne_sys_fops,
	.mode = 0660,
};

/* ----------------------------------------------------------------------- */
/* Interface with the PCI driver                                             */
/* ----------------------------------------------------------------------- */

/*
 * Out-of-band event: ask the device about every running enclave and wake
 * the pollers of those that stopped.  Runs in the device's work item.
 */
void ne_misc_handle_event(struct ne_pci_dev *ne)
{
	struct ne_pci_reply reply;
	struct ne_req_slot req;
	struct ne_enclave *e;

	mutex_lock(&ne_list_lock);
	list_for_each_entry(e, &ne_enclaves, node) {
		mutex_lock(&e->lock);
		req.slot_uid = e->slot_uid;
		if (e->state == NE_STATE_RUNNING &&
		    !ne_enclave_cmd(e, NE_CMD_SLOT_INFO, &req, sizeof(req),
				    &reply) &&
		    reply.state != e->state) {
			e->state = reply.state;
			WRITE_ONCE(e->has_event, true);
			wake_up_interruptible(&e->eventq);
		}
		mutex_unlock(&e->lock);
	}
	mutex_unlock(&ne_list_lock);
}

/* Learns the device's limit of memory ranges from a throwaway slot. */
static void ne_probe_limits(struct ne_pci_dev *ne)
{
	struct ne_req_slot_alloc alloc = { };
	struct ne_req_slot req = { };
	struct ne_pci_reply reply;

	if (ne_pci_cmd(ne, NE_CMD_SLOT_ALLOC, &alloc, sizeof(alloc), &reply))
		return;
	ne->max_mem_regions = min_t(u64, reply.mem_regions,
				    NE_MAX_MEM_REGIONS);
	req.slot_uid = reply.slot_uid;
	ne_pci_cmd(ne, NE_CMD_SLOT_FREE, &req, sizeof(req), &reply);
}

int ne_misc_register(struct ne_pci_dev *ne)
{
	int rc;

	down_write(&ne_dev_sem);
	if (ne_dev) {
		up_write(&ne_dev_sem);
		dev_err(&ne->pdev->dev, "only one NE device is supported\n");
		return -EBUSY;
	}
	ne_probe_limits(ne);
	ne_dev = ne;
	ne_dev_gen++;
	up_write(&ne_dev_sem);

	rc = misc_register(&ne_misc);
	if (rc) {
		down_write(&ne_dev_sem);
		ne_dev = NULL;
		up_write(&ne_dev_sem);
	}
	return rc;
}

/*
 * The device goes away: no new system fd, commands in flight finish, later
 * ones fail with ENODEV, and pollers of live enclaves see EPOLLHUP.
 */
void ne_misc_unregister(struct ne_pci_dev *ne)
{
	struct ne_enclave *e;

	misc_deregister(&ne_misc);
	down_write(&ne_dev_sem);
	ne_dev = NULL;
	up_write(&ne_dev_sem);

	mutex_lock(&ne_list_lock);
	list_for_each_entry(e, &ne_enclaves, node)
		wake_up_interruptible(&e->eventq);
	mutex_unlock(&ne_list_lock);
}

/* Module unload: every fd is closed (they hold the module), so no enclave. */
void ne_misc_exit(void)
{
	mutex_lock(&ne_pool_lock);
	ne_pool_clear();
	mutex_unlock(&ne_pool_lock);
}
