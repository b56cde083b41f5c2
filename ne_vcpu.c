// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_CREATE_VCPU and vCPU fds of the Nitro Enclaves driver: a vCPU fd is a
 * parent CPU donated to the enclave; it cannot run.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/cpumask.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kvm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#include <linux/ne_kvm.h>

#include "ne_enclave.h"

struct ne_vcpu {
	struct ne_enclave *enclave;
	struct file *vm_file;		/* a reference */
	u32 id;
	unsigned int cpu;
};

/*
 * Every ioctl <linux/kvm.h> (6.1) defines for vCPU fds, of every
 * architecture whose argument type exists on this one.  KVM_ARM_VCPU_INIT
 * is the one left out: struct kvm_vcpu_init is arm64's alone.
 */
static bool ne_is_vcpu_ioctl(unsigned int cmd)
{
	switch (cmd) {
	/* generic */
	case KVM_RUN:
	case KVM_GET_REGS:
	case KVM_SET_REGS:
	case KVM_GET_SREGS:
	case KVM_SET_SREGS:
	case KVM_TRANSLATE:
	case KVM_INTERRUPT:
	case KVM_SET_SIGNAL_MASK:
	case KVM_GET_FPU:
	case KVM_SET_FPU:
	case KVM_GET_MP_STATE:
	case KVM_SET_MP_STATE:
	case KVM_SET_GUEST_DEBUG:
	case KVM_ENABLE_CAP:
	case KVM_GET_ONE_REG:
	case KVM_SET_ONE_REG:
	case KVM_GET_REG_LIST:
	case KVM_SET_DEVICE_ATTR:
	case KVM_GET_DEVICE_ATTR:
	case KVM_HAS_DEVICE_ATTR:
	case KVM_GET_STATS_FD:
	/* x86 */
	case KVM_GET_MSRS:
	case KVM_SET_MSRS:
	case KVM_SET_CPUID:
	case KVM_SET_CPUID2:
	case KVM_GET_CPUID2:
	case KVM_GET_SUPPORTED_HV_CPUID:
	case KVM_GET_LAPIC:
	case KVM_SET_LAPIC:
	case KVM_TPR_ACCESS_REPORTING:
	case KVM_SET_VAPIC_ADDR:
	case KVM_NMI:
	case KVM_SMI:
	case KVM_X86_SETUP_MCE:
	case KVM_X86_SET_MCE:
	case KVM_GET_VCPU_EVENTS:
	case KVM_SET_VCPU_EVENTS:
	case KVM_GET_DEBUGREGS:
	case KVM_SET_DEBUGREGS:
	case KVM_GET_XSAVE:
	case KVM_GET_XSAVE2:
	case KVM_SET_XSAVE:
	case KVM_GET_XCRS:
	case KVM_SET_XCRS:
	case KVM_GET_SREGS2:
	case KVM_SET_SREGS2:
	case KVM_KVMCLOCK_CTRL:
	case KVM_SET_TSC_KHZ:
	case KVM_GET_TSC_KHZ:
	case KVM_GET_NESTED_STATE:
	case KVM_SET_NESTED_STATE:
	case KVM_XEN_VCPU_GET_ATTR:
	case KVM_XEN_VCPU_SET_ATTR:
	/* s390 */
	case KVM_S390_INTERRUPT:
	case KVM_S390_IRQ:
	case KVM_S390_STORE_STATUS:
	case KVM_S390_SET_INITIAL_PSW:
	case KVM_S390_INITIAL_RESET:
	case KVM_S390_NORMAL_RESET:
	case KVM_S390_CLEAR_RESET:
	case KVM_S390_UCAS_MAP:
	case KVM_S390_UCAS_UNMAP:
	case KVM_S390_VCPU_FAULT:
	case KVM_S390_MEM_OP:
	case KVM_S390_SET_IRQ_STATE:
	case KVM_S390_GET_IRQ_STATE:
	case KVM_S390_PV_CPU_COMMAND:
	/* arm64, powerpc */
	case KVM_ARM_VCPU_FINALIZE:
	case KVM_DIRTY_TLB:
		return true;
	default:
		return false;
	}
}

/*
 * The hypervisor runs the vCPU; its state is the enclave's secret.  Every
 * call is refused; the owner's refusals are the VM's last error (under the
 * enclave's lock, as every ne_last_error), another process's are not: it
 * must not change the owner's fdinfo.  A killed caller records nothing.
 */
static long ne_vcpu_ioctl(struct file *file, unsigned int cmd,
			  unsigned long arg)
{
	struct ne_vcpu *vcpu = file->private_data;
	struct ne_enclave *e = vcpu->enclave;
	const char *why;
	int rc;

	/* Another process: EIO, as KVM answers. */
	if (current->mm != e->mm)
		return -EIO;

	if (mutex_lock_killable(&e->lock))
		return -EINTR;
	if (e->dead) {
		/* A dead VM: EIO, as KVM answers; the reason stays. */
		rc = ne_refuse(e, -EIO, e->dead);
	} else {
		if (ne_is_vcpu_ioctl(cmd)) {
			rc = -EOPNOTSUPP;
			why = "vCPU ioctl: the hypervisor runs the vCPU, its state is not shown";
		} else {
			rc = -ENOTTY;
			why = "unknown vCPU ioctl";
		}
		rc = ne_refuse(e, rc, why);
	}
	mutex_unlock(&e->lock);
	return rc;
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

	seq_printf(m, "ne_vcpu_id: %u\n", vcpu->id);
	seq_printf(m, "ne_parent_cpu: %u\n", vcpu->cpu);
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

	vcpu = kzalloc(sizeof(*vcpu), GFP_KERNEL_ACCOUNT);
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

/**
 * ne_vcpu_add() - give parent CPU @cpu to the enclave as its vCPU @id
 * @e:		the enclave, locked, in INIT.
 * @id:		the vCPU id (KVM's id; upstream's is the CPU itself).
 * @cpu:	a CPU of a core @e claimed, not yet used.
 * @claimed:	the core claimed for this call, or -1: it goes back to the
 *		pool if the device refuses the CPU.
 *
 * Return: 0, or the device's refusal (recorded).
 */
int ne_vcpu_add(struct ne_enclave *e, u32 id, unsigned int cpu, int claimed)
{
	struct ne_req_slot_add_vcpu req = {
		.slot_uid = e->slot_uid,
		.vcpu_id = cpu,
	};
	struct ne_pci_reply reply;
	int rc;

	/* Each is a distinct CPU of the pool, which is frozen while @e lives. */
	if (WARN_ON_ONCE(e->nr_vcpus >= e->max_vcpus)) {
		if (claimed >= 0)
			ne_pool_unclaim(e, claimed);
		return ne_refuse_why(e, NE_WHY_NO_CPUS, "no room for another vCPU");
	}
	rc = ne_enclave_cmd(e, NE_CMD_SLOT_ADD_VCPU, &req, sizeof(req),
			    &reply);
	if (rc == -ETIMEDOUT) {
		/* The device may hold the CPU: keep it until release. */
		e->wedged = true;
		cpumask_set_cpu(cpu, e->used_cpus);
		return ne_refuse(e, rc,
				 "the device did not answer SLOT_ADD_VCPU");
	}
	if (rc) {
		if (claimed >= 0)
			ne_pool_unclaim(e, claimed);
		return ne_refuse(e, rc, "the device refused SLOT_ADD_VCPU");
	}
	cpumask_set_cpu(cpu, e->used_cpus);
	e->vcpus[e->nr_vcpus++] = (struct ne_vcpu_slot){ id, cpu };
	return 0;
}

long ne_vm_create_vcpu(struct ne_enclave *e, unsigned long id)
{
	struct ne_vcpu *vcpu;
	struct file *file;
	unsigned int i;
	int fd, cpu, claimed, rc;

	if (e->state != NE_STATE_INIT)
		return ne_refuse(e, -EBUSY, "vCPU after start");
	/*
	 * The limit is this VM fd's KVM_CAP_MAX_VCPU_ID, which shrinks while
	 * other enclaves claim cores; never above e->max_vcpus, the size of
	 * e->vcpus, since the pool does not change while enclaves exist.
	 */
	if (id >= min(ne_pool_cpus_for(e), e->max_vcpus))
		return ne_refuse(e, -EINVAL,
				 "vCPU id not below KVM_CAP_MAX_VCPU_ID");
	for (i = 0; i < e->nr_vcpus; i++)
		if (e->vcpus[i].id == id)
			return ne_refuse(e, -EEXIST, "vCPU id already used");

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		return ne_refuse(e, fd, fd == -EMFILE ?
				 "no free file descriptor for the vCPU fd" :
				 "cannot reserve a file descriptor");
	file = ne_vcpu_file(e, id);
	if (IS_ERR(file)) {
		rc = ne_refuse(e, PTR_ERR(file), "cannot make the vCPU fd");
		goto err_fd;
	}

	cpu = ne_pool_pick_cpu(e, &claimed);
	if (cpu < 0) {
		rc = ne_refuse(e, cpu, "no free CPU in the pool");
		goto err_file;
	}
	rc = ne_vcpu_add(e, id, cpu, claimed);
	if (rc)
		goto err_file;

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
