// SPDX-License-Identifier: GPL-2.0
/*
 * VM fds of the Nitro Enclaves driver: one VM fd is one enclave, that is one
 * device slot.  KVM_CREATE_VM makes it, NE_ENCLAVE_START starts it, poll
 * reports its end, and its release hands it to the teardown work.
 *
 * The invariant, enforced in one place (ne_enclave_teardown()): an
 * enclave's memory is unpinned and its cores return to the pool only after
 * the device has confirmed that its slot is gone: SLOT_FREE succeeded, or
 * the device was turned off (ENABLE written 0 and read back 0) since the
 * slot was allocated.  Anything else (SLOT_FREE refused or unanswered, a
 * device removed or reset without turning off, -ENODEV) makes the enclave a
 * zombie: it keeps its pins and cores, is named in the kernel log, listed in
 * debugfs (ne_kvm/zombies), keeps the CPU pool from changing and the module
 * from unloading (EBUSY), and is freed only if the device later confirms:
 * the tidy work sends SLOT_FREE again (after 100 ms, each zombie's delay
 * doubling up to a minute) while the device still knows the slot by its
 * uid, and a reset or the device turned off ends it too.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/bitmap.h>
#include <linux/cpumask.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kvm.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <linux/ne_kvm.h>

#include "ne_enclave.h"

/*
 * Records why a call was refused, for fdinfo, and returns @err.  Only the
 * creator's calls are recorded: another process holding the fd cannot
 * change what the creator reads.
 */
int ne_refuse(struct ne_enclave *e, int err, const char *why)
{
	if (current->mm == e->mm)
		e->last_error = why;
	pr_debug("enclave %#llx: %s (%d)\n", e->slot_uid, why, err);
	return err;
}

/* The errno of each shared refusal in each family (positive values). */
static const u16 ne_why_errno[NE_WHY_COUNT][2] = {
	[NE_WHY_NOT_INIT]	 = { EBUSY,  NE_ERR_NOT_IN_INIT_STATE },
	[NE_WHY_FLAGS]		 = { EINVAL, NE_ERR_INVALID_FLAG_VALUE },
	[NE_WHY_MEM_SIZE]	 = { EINVAL, NE_ERR_INVALID_MEM_REGION_SIZE },
	[NE_WHY_MEM_ADDR]	 = { EINVAL, NE_ERR_UNALIGNED_MEM_REGION_ADDR },
	[NE_WHY_MEM_NOT_USER]	 = { EFAULT, NE_ERR_INVALID_MEM_REGION_ADDR },
	[NE_WHY_MEM_OVERLAP]	 = { EEXIST, NE_ERR_MEM_REGION_ALREADY_USED },
	[NE_WHY_MEM_TWICE]	 = { EEXIST, NE_ERR_MEM_REGION_ALREADY_USED },
	[NE_WHY_MEM_NOT_HUGE]	 = { EINVAL, NE_ERR_MEM_NOT_HUGE_PAGE },
	[NE_WHY_MEM_PAGE_SIZE]	 = { EINVAL, NE_ERR_INVALID_PAGE_SIZE },
	[NE_WHY_MEM_NUMA]	 = { EINVAL, NE_ERR_MEM_DIFFERENT_NUMA_NODE },
	[NE_WHY_MEM_MAX_REGIONS] = { ENOSPC, NE_ERR_MEM_MAX_REGIONS },
	[NE_WHY_START_NO_MEM]	 = { EINVAL, NE_ERR_NO_MEM_REGIONS_ADDED },
	[NE_WHY_START_NO_VCPU]	 = { EINVAL, NE_ERR_NO_VCPUS_ADDED },
	[NE_WHY_START_MIN_SIZE]	 = { EINVAL, NE_ERR_ENCLAVE_MEM_MIN_SIZE },
	[NE_WHY_START_CORES]	 = { EINVAL, NE_ERR_FULL_CORES_NOT_USED },
	[NE_WHY_CID]		 = { EINVAL, NE_ERR_INVALID_ENCLAVE_CID },
	[NE_WHY_VCPU_USED]	 = { EEXIST, NE_ERR_VCPU_ALREADY_USED },
	[NE_WHY_VCPU_NOT_IN_POOL] = { ENOSPC, NE_ERR_VCPU_NOT_IN_CPU_POOL },
	[NE_WHY_VCPU_ID]	 = { EINVAL, NE_ERR_INVALID_VCPU },
	[NE_WHY_NO_CPUS]	 = { ENOSPC, NE_ERR_NO_CPUS_AVAIL_IN_POOL },
};

/*
 * Records a refusal that both families make (@text for fdinfo) and
 * returns its errno in @e's family: a standard errno for a VM fd made by
 * KVM_CREATE_VM, upstream's NE_ERR_* value for one made by NE_CREATE_VM.
 */
int ne_refuse_why(struct ne_enclave *e, enum ne_why why, const char *text)
{
	return ne_refuse(e, -(int)ne_why_errno[why][e->family], text);
}

/* ----------------------------------------------------------------------- */
/* NE_ENCLAVE_START                                                          */
/* ----------------------------------------------------------------------- */

/*
 * CIDs 1, 2 (well known), 3 (the parent) and from U32_MAX up are not an
 * enclave's; 0 asks the hypervisor to choose.
 */
int ne_vm_check_cid(struct ne_enclave *e, u64 cid)
{
	if (cid && (cid <= NE_PARENT_VM_CID || cid >= U32_MAX))
		return ne_refuse_why(e, NE_WHY_CID,
				     "CID 1, 2, 3 and from U32_MAX up are reserved");
	return 0;
}

/* Starts the enclave; @start is in and out, copied by the caller. */
int ne_vm_start(struct ne_enclave *e, struct ne_enclave_start *start)
{
	struct ne_req_enclave_start req = { .slot_uid = e->slot_uid };
	struct ne_pci_reply reply;
	unsigned int seq;
	int rc;

	if (e->state != NE_STATE_INIT)
		return ne_refuse_why(e, NE_WHY_NOT_INIT,
				     "enclave already started");
	if (start->flags & ~NE_ENCLAVE_START_FLAGS)
		return ne_refuse_why(e, NE_WHY_FLAGS, "unknown start flags");
	rc = ne_vm_check_cid(e, start->enclave_cid);
	if (rc)
		return rc;
	if (!e->nr_ranges)
		return ne_refuse_why(e, NE_WHY_START_NO_MEM,
				     "start without memory");
	if (e->mem_size < NE_MIN_ENCLAVE_MEM_SIZE)
		return ne_refuse_why(e, NE_WHY_START_MIN_SIZE,
				     "start with less than 64 MiB");
	if (!e->nr_vcpus)
		return ne_refuse_why(e, NE_WHY_START_NO_VCPU,
				     "start without a vCPU");
	if (!cpumask_equal(e->cpus, e->used_cpus))
		return ne_refuse_why(e, NE_WHY_START_CORES,
				     "start with a claimed core not fully used");

	req.enclave_cid = start->enclave_cid;
	req.flags = start->flags;
	seq = ne_event_seq();
	rc = ne_enclave_cmd(e, NE_CMD_ENCLAVE_START, &req, sizeof(req),
			    &reply);
	if (rc == -ETIMEDOUT)
		e->wedged = true;
	if (rc)
		return ne_refuse(e, rc, rc == -ETIMEDOUT ?
				 "the device did not answer ENCLAVE_START" :
				 "the device refused ENCLAVE_START");

	e->enclave_cid = reply.enclave_cid;
	e->flags = start->flags;
	WRITE_ONCE(e->state, NE_STATE_RUNNING);
	/*
	 * An event handled while the state was INIT skipped this enclave.
	 * Full barrier, paired with the one after the event work's bump of
	 * event_seq (ne_misc_handle_event()): either this sees the bump, or
	 * the work sees RUNNING; without it the store could pass the load,
	 * and both miss each other.
	 */
	smp_mb();
	if (ne_event_seq() != seq)
		ne_enclave_kick_events();
	start->enclave_cid = reply.enclave_cid;
	return 0;
}

/* ----------------------------------------------------------------------- */
/* VM fds                                                                    */
/* ----------------------------------------------------------------------- */

long ne_check_extension(struct ne_enclave *e, unsigned long cap)
{
	switch (cap) {
	case KVM_CAP_USER_MEMORY:
		return 1;
	case KVM_CAP_NR_VCPUS:
	case KVM_CAP_MAX_VCPUS:
	case KVM_CAP_MAX_VCPU_ID:
		return ne_pool_cpus_for(e);
	case KVM_CAP_NR_MEMSLOTS:
		return e ? e->max_mem_regions : ne_dev_max_mem_regions();
	default:
		return 0;
	}
}

/* The enclave's own refusals common to its resource and start ioctls. */
int ne_vm_check_usable(struct ne_enclave *e)
{
	if (e->dead)
		return ne_refuse(e, -EIO, e->dead);
	if (ne_enclave_lost(e))
		return ne_refuse(e, -ENODEV, "the device or its slot is gone");
	/* Upstream's family says NE_ERR_NOT_IN_INIT_STATE, where it checks. */
	if (e->state != NE_STATE_INIT && e->state != NE_STATE_RUNNING &&
	    e->family == NE_FAMILY_KVM)
		return ne_refuse(e, -EIO, "the enclave has stopped");
	if (e->wedged)
		return ne_refuse(e, -EIO,
				 "a device command timed out: close and retry");
	return 0;
}

/* Records a refusal found outside the enclave's lock. */
long ne_refuse_unlocked(struct ne_enclave *e, int err, const char *why)
{
	if (mutex_lock_killable(&e->lock))
		return err;
	ne_refuse(e, err, why);
	mutex_unlock(&e->lock);
	return err;
}

/*
 * Arguments are copied in before the enclave's lock is taken and results
 * copied out after it is dropped; only the owner's ioctls (same mm) get
 * there, so only the owner changes ne_last_error.
 */
static long ne_vm_ioctl(struct file *file, unsigned int cmd,
			unsigned long arg)
{
	struct ne_enclave *e = file->private_data;
	void __user *argp = (void __user *)arg;
	struct kvm_userspace_memory_region region;
	struct ne_enclave_start start;
	long rc;

	if (e->family == NE_FAMILY_NE)
		return ne_vm_ne_ioctl(e, cmd, argp);
	if (current->mm != e->mm)
		return -EIO;
	/* A dead VM answers EIO to everything, as KVM's does. */
	if (READ_ONCE(e->dead))
		return ne_refuse_unlocked(e, -EIO, READ_ONCE(e->dead));
	if (ne_is_ne_vm_ioctl(cmd))
		return ne_refuse_unlocked(e, -ENOTTY,
					  "an NE_* ioctl on a VM fd made by KVM_CREATE_VM");

	switch (cmd) {
	case KVM_CHECK_EXTENSION:
		return ne_check_extension(e, arg);
	case KVM_SET_USER_MEMORY_REGION:
		if (copy_from_user(&region, argp, sizeof(region)))
			return ne_refuse_unlocked(e, -EFAULT,
						  "cannot read the memory region");
		break;
	case NE_ENCLAVE_START:
		if (copy_from_user(&start, argp, sizeof(start)))
			return ne_refuse_unlocked(e, -EFAULT,
						  "cannot read the start argument");
		break;
	case KVM_CREATE_VCPU:
		break;
	default:
		return ne_refuse_unlocked(e, -ENOTTY, "unknown ioctl");
	}

	if (mutex_lock_killable(&e->lock))
		return -EINTR;
	rc = ne_vm_check_usable(e);
	if (rc)
		goto out;
	switch (cmd) {
	case KVM_SET_USER_MEMORY_REGION:
		rc = ne_vm_set_memory(e, &region);
		break;
	case KVM_CREATE_VCPU:
		rc = ne_vm_create_vcpu(e, arg);
		break;
	case NE_ENCLAVE_START:
		rc = ne_vm_start(e, &start);
		break;
	}
out:
	mutex_unlock(&e->lock);
	if (cmd == NE_ENCLAVE_START && !rc &&
	    copy_to_user(argp, &start, sizeof(start)))
		rc = ne_refuse_unlocked(e, -EFAULT,
					"started, but cannot write the CID back");
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

	/* An ioctl may hold the lock across a device command: killable. */
	if (mutex_lock_killable(&e->lock))
		return;
	seq_printf(m, "ne_slot_uid: %#llx\n", e->slot_uid);
	seq_printf(m, "ne_state: %s\n", ne_state_name(e));
	seq_printf(m, "ne_enclave_cid: %llu\n", e->enclave_cid);
	seq_printf(m, "ne_flags: %#llx\n", e->flags);
	seq_printf(m, "ne_mem_bytes: %llu\n", e->mem_size);
	seq_printf(m, "ne_mem_ranges: %u\n", e->nr_ranges);
	seq_printf(m, "ne_vcpus: %u\n", e->nr_vcpus);
	seq_printf(m, "ne_parent_cpus: %*pbl\n", cpumask_pr_args(e->used_cpus));
	seq_printf(m, "ne_last_error: %s\n",
		   e->last_error ? e->last_error : "none");
	seq_printf(m, "ne_dead: %s\n", e->dead ? e->dead : "no");
	mutex_unlock(&e->lock);
}

/* Frees @e's memory; what it holds on the device is teardown's business. */
void ne_enclave_put(struct ne_enclave *e)
{
	if (!refcount_dec_and_test(&e->refs))
		return;
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

/**
 * ne_enclave_stop_and_free() - ask the device to stop an enclave, then free
 * its slot
 * @e:		the enclave, which no fd refers to any more.
 * @eagain_ms:	how long a busy device (-EAGAIN) is asked again: the
 *		teardown waits for it; a zombie's retries, which come again
 *		anyway, send each command once (0).
 *
 * ENCLAVE_STOP is sent unless the device surely runs nothing in the slot:
 * the enclave was never started (and no command about it timed out), or
 * the device confirmed an ENCLAVE_STOP already.
 *
 * Context: the teardown work, or the tidy work for a zombie: one at a time
 * (a zombie is retried only once its teardown has made it one).
 * Return: SLOT_FREE's result; without @eagain_ms, ENCLAVE_STOP's
 * -ETIMEDOUT, SLOT_FREE then not sent (it would first wait for that reply).
 */
int ne_enclave_stop_and_free(struct ne_enclave *e, unsigned int eagain_ms)
{
	int rc;

	if (!e->stop_confirmed &&
	    /* acquire: pairs with ne_event_stopped() (stop_unsure first) */
	    (smp_load_acquire(&e->state) == NE_STATE_RUNNING ||
	     e->wedged || READ_ONCE(e->stop_unsure))) {
		rc = ne_enclave_cmd_retry(e, NE_CMD_ENCLAVE_STOP, eagain_ms);
		if (!rc)
			e->stop_confirmed = true;
		else
			pr_debug("enclave %#llx: ENCLAVE_STOP: %d\n",
				 e->slot_uid, rc);
		if (rc == -ETIMEDOUT && !eagain_ms)
			return rc;
	}
	rc = ne_enclave_cmd_retry(e, NE_CMD_SLOT_FREE, eagain_ms);
	WRITE_ONCE(e->free_tries, e->free_tries + 1);
	return rc;
}

/**
 * ne_enclave_teardown() - stop and free an enclave's slot, then let go
 * @work:	the enclave's teardown work.
 *
 * The one place that unpins an enclave's memory and gives its cores back to
 * the pool, and only once the device confirmed the slot gone (see the top
 * of this file); otherwise the enclave becomes a zombie.  Runs on the
 * driver's teardown workqueue, after the last close or a failed
 * KVM_CREATE_VM, and again for a zombie once the device confirmed its slot
 * gone (a retried SLOT_FREE, a late reply, the device turned off).
 *
 * Context: workqueue; nobody else holds or waits for the enclave's lock.
 */
void ne_enclave_teardown(struct work_struct *work)
{
	struct ne_enclave *e = container_of(work, struct ne_enclave, teardown);
	struct ne_pins *pins, *tmp;
	int rc;

	if (e->slot_uid && !ne_enclave_gone(e)) {
		rc = ne_enclave_stop_and_free(e, NE_EAGAIN_RETRY_MS);
		if (rc && ne_enclave_set_zombie(e, rc))
			return;
	}

	ne_enclave_unlink(e);
	list_for_each_entry_safe(pins, tmp, &e->pins, node) {
		unpin_user_pages(pins->pages, pins->nr);
		kvfree(pins);
	}
	ne_pool_release(e);
	WRITE_ONCE(e->torn_down, true);
	wake_up(&e->eventq);
	ne_enclave_put(e);
	module_put(THIS_MODULE);
}

/* How long an exiting task's last close waits for the teardown, at most. */
#define NE_EXIT_RELEASE_WAIT_MS	5000

/*
 * Waits until the teardown work let go of everything or made a zombie, so
 * that a close returns with the memory and CPUs back as with KVM, also at
 * exit (a parent that reaped it finds them back).  The wait is
 * interruptible (S state).  An exiting task, killed or not, cannot
 * rely on an interruptible wait (a pending signal ends it at once): it waits
 * uninterruptibly, but NE_EXIT_RELEASE_WAIT_MS at most, never for the
 * command timeout.  Ending the wait never ends the teardown.
 */
static void ne_enclave_wait_teardown(struct ne_enclave *e)
{
	if ((current->flags & PF_EXITING) || fatal_signal_pending(current))
		wait_event_timeout(e->eventq, READ_ONCE(e->torn_down) ||
				   READ_ONCE(e->zombie),
				   msecs_to_jiffies(NE_EXIT_RELEASE_WAIT_MS));
	else
		wait_event_interruptible(e->eventq, READ_ONCE(e->torn_down) ||
					 READ_ONCE(e->zombie));
}

/*
 * A kernel thread or an io_uring worker only hands the teardown over: no
 * signal would end its wait.  A last close in a kernel thread (a file an
 * io_uring's table held, a unix socket's garbage collection) runs in the
 * worker that serves every deferred close of the system; one in an
 * io_uring worker (a close the ring ran async, or its SQPOLL thread)
 * stalls every request of the rings it serves.
 */
static void ne_enclave_release(struct ne_enclave *e)
{
	refcount_inc(&e->refs);
	ne_enclave_queue_teardown(e);
	if (!(current->flags & (PF_KTHREAD | PF_IO_WORKER)))
		ne_enclave_wait_teardown(e);
	ne_enclave_put(e);
}

/*
 * The last VM and vCPU fd is gone: the teardown runs on the driver's
 * workqueue, so close and exit never sit in D state waiting for the device.
 */
static int ne_vm_release(struct inode *inode, struct file *file)
{
	ne_enclave_release(file->private_data);
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
	struct ne_enclave *e = kzalloc(sizeof(*e), GFP_KERNEL_ACCOUNT);

	if (!e)
		return NULL;
	mutex_init(&e->lock);
	init_waitqueue_head(&e->eventq);
	INIT_LIST_HEAD(&e->pins);
	INIT_LIST_HEAD(&e->node);
	INIT_WORK(&e->teardown, ne_enclave_teardown);
	refcount_set(&e->refs, 1);
	if (!zalloc_cpumask_var(&e->cpus, GFP_KERNEL_ACCOUNT) ||
	    !zalloc_cpumask_var(&e->used_cpus, GFP_KERNEL_ACCOUNT)) {
		ne_enclave_put(e);
		return NULL;
	}
	return e;
}

/* Asks the device for a slot and sizes the enclave after its limits. */
static int ne_enclave_alloc_slot(struct ne_enclave *e)
{
	struct ne_pci_reply reply;
	u64 max;
	int rc;

	rc = ne_enclave_slot_alloc(e, &reply);
	if (rc)
		return rc;

	e->slot_uid = reply.slot_uid;
	max = min_t(u64, reply.mem_regions, NE_MAX_MEM_REGIONS);
	e->max_mem_regions = max;
	e->slots_used = bitmap_zalloc(max, GFP_KERNEL_ACCOUNT);
	e->uranges = kcalloc(max, sizeof(*e->uranges), GFP_KERNEL_ACCOUNT);
	e->ranges = kcalloc(max, sizeof(*e->ranges), GFP_KERNEL_ACCOUNT);
	e->vcpus = kcalloc(e->max_vcpus, sizeof(*e->vcpus),
			   GFP_KERNEL_ACCOUNT);
	if ((max && (!e->slots_used || !e->uranges || !e->ranges)) ||
	    (e->max_vcpus && !e->vcpus))
		return -ENOMEM;
	return 0;
}

/**
 * ne_vm_create() - a new enclave with its slot, and a reserved fd for it
 * @family:	the ioctl family of the VM fd.
 * @fd:		out: the fd reserved (O_CLOEXEC), not yet installed.
 *
 * The caller installs the VM file with ne_vm_install(), or gives up with
 * ne_vm_abandon() (which frees the slot through the teardown).
 *
 * Return: the enclave, or an ERR_PTR.
 */
struct ne_enclave *ne_vm_create(enum ne_family family, int *fd)
{
	struct ne_enclave *e;
	struct file *file;
	int rc;

	e = ne_enclave_alloc();
	if (!e)
		return ERR_PTR(-ENOMEM);
	e->family = family;
	ne_pool_enclave_add(e);
	e->mm = current->mm;
	mmgrab(e->mm);
	/* Listed before it has a slot, so that PCI remove sees it. */
	ne_enclave_link(e);

	rc = ne_enclave_alloc_slot(e);
	if (rc)
		goto err_slot;

	*fd = get_unused_fd_flags(O_CLOEXEC);
	if (*fd < 0) {
		rc = *fd;
		goto err_slot;
	}
	file = anon_inode_getfile("ne-vm", &ne_vm_fops, e, O_RDWR);
	if (IS_ERR(file)) {
		put_unused_fd(*fd);
		rc = PTR_ERR(file);
		goto err_slot;
	}
	e->file = file;
	return e;

err_slot:
	ne_enclave_release(e);
	return ERR_PTR(rc);
}

/* The VM fd reserved by ne_vm_create() now names @e's file. */
void ne_vm_install(struct ne_enclave *e, int fd)
{
	fd_install(fd, e->file);
}

/* Drops a VM file never installed: its release frees the slot. */
void ne_vm_abandon(struct ne_enclave *e, int fd)
{
	put_unused_fd(fd);
	fput(e->file);
}

long ne_sys_create_vm(unsigned long type)
{
	struct ne_enclave *e;
	int fd;

	if (type)
		return -EINVAL;
	e = ne_vm_create(NE_FAMILY_KVM, &fd);
	if (IS_ERR(e))
		return PTR_ERR(e);
	ne_vm_install(e, fd);
	return fd;
}
