// SPDX-License-Identifier: GPL-2.0
/*
 * The upstream Nitro Enclaves ioctls of <linux/nitro_enclaves.h> on the
 * same node as the KVM-shaped ones (Documentation/ne-kvm/upstream-api.rst):
 * NE_CREATE_VM on the system fd; NE_ADD_VCPU, NE_GET_IMAGE_LOAD_INFO,
 * NE_SET_USER_MEMORY_REGION and NE_START_ENCLAVE on the VM fds it makes.
 * They make the upstream driver's checks, in its order, with its NE_ERR_*
 * values, so that nitro-cli, the kernel's sample and anything that
 * switches on those values work unchanged.  Behind such an fd is the same
 * enclave as behind a KVM_CREATE_VM one: one slot, the same pinning and
 * merging of memory (ne_mem_donate()), the same pool, the same teardown.
 *
 * Mixing: a VM fd answers only its own family.  On a VM fd made by
 * NE_CREATE_VM every other ioctl, KVM's included, is ENOTTY; on one made
 * by KVM_CREATE_VM the NE_* ioctls other than NE_ENCLAVE_START (which is
 * upstream's NE_START_ENCLAVE number with KVM's errnos) are ENOTTY.
 *
 * Where this differs from upstream, on purpose: another process than the
 * creator gets EIO from NE_ADD_VCPU and NE_SET_USER_MEMORY_REGION before
 * any other check (upstream makes some checks first, and claims a core
 * before it says EIO); the same physical memory donated twice is refused
 * with NE_ERR_MEM_REGION_ALREADY_USED (upstream donates it twice); an
 * enclave takes at most as many NE_SET_USER_MEMORY_REGION calls as the
 * device takes ranges (NE_ERR_MEM_MAX_REGIONS, also when the calls' pages
 * would have merged); and NE_ERR_VCPU_INVALID_CPU_CORE is never returned,
 * since the pool's cores are checked when ne_cpus is set.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpumask.h>
#include <linux/mutex.h>
#include <linux/nitro_enclaves.h>
#include <linux/sched.h>
#include <linux/uaccess.h>

#include <linux/ne_kvm.h>

#include "ne_enclave.h"

/* NE_CREATE_VM: a VM fd of the upstream family; its slot uid goes out. */
long ne_sys_ne_create_vm(void __user *slot_uid)
{
	struct ne_enclave *e;
	int fd;

	if (!ne_pool_free_cpus())
		return -NE_ERR_NO_CPUS_AVAIL_IN_POOL;
	e = ne_vm_create(NE_FAMILY_NE, &fd);
	if (IS_ERR(e))
		return PTR_ERR(e);
	if (put_user(e->slot_uid, (u64 __user *)slot_uid)) {
		ne_vm_abandon(e, fd);
		return -EFAULT;
	}
	ne_vm_install(e, fd);
	return fd;
}

/* The NE_* ioctls a VM fd made by KVM_CREATE_VM refuses. */
bool ne_is_ne_vm_ioctl(unsigned int cmd)
{
	return cmd == NE_ADD_VCPU || cmd == NE_GET_IMAGE_LOAD_INFO ||
	       cmd == NE_SET_USER_MEMORY_REGION;
}

/* The CPU for NE_ADD_VCPU's @id (0: the driver's pick), claimed for @e. */
static int ne_ne_vcpu_cpu(struct ne_enclave *e, u32 id, int *claimed)
{
	int cpu;

	if (id >= nr_cpu_ids)
		return ne_refuse_why(e, NE_WHY_VCPU_ID,
				     "the vCPU id is not a CPU of the parent");
	if (!id) {
		cpu = ne_pool_pick_cpu(e, claimed);
		if (cpu < 0)
			return ne_refuse_why(e, NE_WHY_NO_CPUS,
					     "no free CPU in the pool");
		return cpu;
	}
	if (cpumask_test_cpu(id, e->used_cpus))
		return ne_refuse_why(e, NE_WHY_VCPU_USED,
				     "the CPU is already a vCPU of this enclave");
	if (ne_pool_claim_cpu(e, id, claimed))
		return ne_refuse_why(e, NE_WHY_VCPU_NOT_IN_POOL,
				     "the CPU is not in the pool, or another enclave's");
	return id;
}

static long ne_ne_add_vcpu(struct ne_enclave *e, u32 __user *uid)
{
	int cpu = -1, claimed, rc;
	u32 id;

	if (get_user(id, uid))
		return -EFAULT;
	if (current->mm != e->mm)
		return -EIO;
	if (mutex_lock_killable(&e->lock))
		return -EINTR;
	rc = ne_vm_check_usable(e);
	if (rc)
		goto out;
	if (e->state != NE_STATE_INIT) {
		rc = ne_refuse_why(e, NE_WHY_NOT_INIT, "vCPU after start");
		goto out;
	}
	cpu = ne_ne_vcpu_cpu(e, id, &claimed);
	if (cpu < 0) {
		rc = cpu;
		goto out;
	}
	rc = ne_vcpu_add(e, cpu, cpu, claimed);
out:
	mutex_unlock(&e->lock);
	if (!rc && put_user(cpu, uid))
		rc = ne_refuse_unlocked(e, -EFAULT,
					"vCPU added, but cannot write its id back");
	return rc;
}

static long ne_ne_image_load_info(struct ne_enclave *e,
				  struct ne_image_load_info __user *uinfo)
{
	struct ne_image_load_info info;
	long rc;

	if (copy_from_user(&info, uinfo, sizeof(info)))
		return -EFAULT;
	if (mutex_lock_killable(&e->lock))
		return -EINTR;
	rc = ne_vm_check_usable(e);
	if (!rc && e->state != NE_STATE_INIT)
		rc = ne_refuse_why(e, NE_WHY_NOT_INIT,
				   "image load info after start");
	if (!rc && info.flags != NE_EIF_IMAGE)
		rc = ne_refuse_why(e, NE_WHY_FLAGS,
				   "image load flags must be NE_EIF_IMAGE");
	mutex_unlock(&e->lock);
	if (rc)
		return rc;
	info.memory_offset = NE_IMAGE_LOAD_GPA;
	if (copy_to_user(uinfo, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

/* Upstream's checks of a region, in its order; @e locked. */
static int ne_ne_check_region(struct ne_enclave *e,
			      const struct ne_user_memory_region *r)
{
	unsigned int i;

	if (r->flags >= NE_MEMORY_REGION_MAX_FLAG_VAL)
		return ne_refuse_why(e, NE_WHY_FLAGS,
				     "memory region flags must be NE_DEFAULT_MEMORY_REGION");
	if (e->state != NE_STATE_INIT)
		return ne_refuse_why(e, NE_WHY_NOT_INIT, "memory after start");
	if (!IS_ALIGNED(r->memory_size, NE_MEM_ALIGN))
		return ne_refuse_why(e, NE_WHY_MEM_SIZE,
				     "memory_size must be a 2 MiB multiple");
	if (!IS_ALIGNED(r->userspace_addr, NE_MEM_ALIGN))
		return ne_refuse_why(e, NE_WHY_MEM_ADDR,
				     "userspace_addr must be 2 MiB aligned");
	if (!access_ok(u64_to_user_ptr(r->userspace_addr), r->memory_size))
		return ne_refuse_why(e, NE_WHY_MEM_NOT_USER,
				     "memory region is not user memory");
	for (i = 0; i < e->nr_uranges; i++) {
		const struct ne_user_range *u = &e->uranges[i];

		if (r->userspace_addr < u->uaddr + u->size &&
		    u->uaddr < r->userspace_addr + r->memory_size)
			return ne_refuse_why(e, NE_WHY_MEM_OVERLAP,
					     "memory region overlaps a donated one");
	}
	/* Upstream pins nothing for an empty region and says ENOMEM. */
	if (!r->memory_size)
		return ne_refuse(e, -ENOMEM, "memory_size 0");
	return 0;
}

static long ne_ne_set_memory(struct ne_enclave *e,
			     struct ne_user_memory_region __user *ur)
{
	struct ne_user_memory_region r;
	bool kept;
	long rc;

	if (copy_from_user(&r, ur, sizeof(r)))
		return -EFAULT;
	if (current->mm != e->mm)
		return -EIO;
	if (mutex_lock_killable(&e->lock))
		return -EINTR;
	rc = ne_vm_check_usable(e);
	if (!rc)
		rc = ne_ne_check_region(e, &r);
	if (!rc)
		rc = ne_mem_donate(e, r.userspace_addr, r.memory_size, &kept);
	mutex_unlock(&e->lock);
	return rc;
}

/* Upstream checks the flags and the CID first, then the state. */
static long ne_ne_start(struct ne_enclave *e,
			struct ne_enclave_start __user *ustart)
{
	struct ne_enclave_start start;
	long rc;

	if (copy_from_user(&start, ustart, sizeof(start)))
		return -EFAULT;
	if (mutex_lock_killable(&e->lock))
		return -EINTR;
	if (start.flags >= NE_ENCLAVE_START_MAX_FLAG_VAL)
		rc = ne_refuse_why(e, NE_WHY_FLAGS, "unknown start flags");
	else
		rc = ne_vm_check_cid(e, start.enclave_cid);
	if (!rc)
		rc = ne_vm_check_usable(e);
	if (!rc)
		rc = ne_vm_start(e, &start);
	mutex_unlock(&e->lock);
	if (!rc && copy_to_user(ustart, &start, sizeof(start)))
		rc = ne_refuse_unlocked(e, -EFAULT,
					"started, but cannot write the CID back");
	return rc;
}

/**
 * ne_vm_ne_ioctl() - an ioctl on a VM fd made by NE_CREATE_VM
 * @e:		the enclave.
 * @cmd:	the ioctl.
 * @argp:	its argument.
 *
 * Return: 0, a standard negative errno or a negative NE_ERR_* value.
 */
long ne_vm_ne_ioctl(struct ne_enclave *e, unsigned int cmd,
		    void __user *argp)
{
	switch (cmd) {
	case NE_ADD_VCPU:
		return ne_ne_add_vcpu(e, argp);
	case NE_GET_IMAGE_LOAD_INFO:
		return ne_ne_image_load_info(e, argp);
	case NE_SET_USER_MEMORY_REGION:
		return ne_ne_set_memory(e, argp);
	case NE_START_ENCLAVE:
		return ne_ne_start(e, argp);
	default:
		if (current->mm != e->mm)
			return -ENOTTY;
		return ne_refuse_unlocked(e, -ENOTTY, _IOC_TYPE(cmd) == KVMIO ?
					  "a KVM ioctl on a VM fd made by NE_CREATE_VM" :
					  "unknown ioctl");
	}
}
