// SPDX-License-Identifier: GPL-2.0
/*
 * The system fd of the Nitro Enclaves driver (/dev/nitro_enclaves), the list
 * of enclaves, and the link with the PCI driver: the device pointer, commands
 * sent on behalf of an enclave, and out-of-band events.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/kvm.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/wait.h>

#include <linux/ne_kvm.h>

#include "ne_enclave.h"

static DEFINE_MUTEX(ne_list_lock);
static LIST_HEAD(ne_enclaves);		/* under ne_list_lock */

static DECLARE_RWSEM(ne_dev_sem);
static struct ne_pci_dev *ne_dev;	/* under ne_dev_sem */
static unsigned int ne_dev_gen;		/* under ne_dev_sem */

/* Whether @e's slot is gone: device removed, replaced or reset. */
static bool ne_slot_lost(struct ne_enclave *e)
{
	return !ne_dev || e->dev_gen != ne_dev_gen ||
	       READ_ONCE(ne_dev->resets) != e->resets;
}

bool ne_enclave_lost(struct ne_enclave *e)
{
	bool lost;

	down_read(&ne_dev_sem);
	lost = ne_slot_lost(e);
	up_read(&ne_dev_sem);
	return lost;
}

/* Sends a command about @e's slot; -ENODEV once the slot is gone. */
int ne_enclave_cmd(struct ne_enclave *e, enum ne_pci_cmd_type type,
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
int ne_enclave_cmd_retry(struct ne_enclave *e,
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

/*
 * Asks the device for a slot for @e and records which device and reset
 * epoch it belongs to.
 */
int ne_enclave_slot_alloc(struct ne_enclave *e, struct ne_pci_reply *reply)
{
	struct ne_req_slot_alloc req = { };
	int rc = -ENODEV;

	down_read(&ne_dev_sem);
	if (ne_dev) {
		e->dev_gen = ne_dev_gen;
		e->resets = READ_ONCE(ne_dev->resets);
		rc = ne_pci_cmd(ne_dev, NE_CMD_SLOT_ALLOC, &req, sizeof(req),
				reply);
		/* A reset during SLOT_ALLOC: the slot, if any, is gone. */
		if (!rc && READ_ONCE(ne_dev->resets) != e->resets)
			rc = -ENODEV;
	}
	up_read(&ne_dev_sem);
	return rc;
}

/* The device's limit of memory ranges per slot, 0 without a device. */
u64 ne_dev_max_mem_regions(void)
{
	u64 val = 0;

	down_read(&ne_dev_sem);
	if (ne_dev)
		val = ne_dev->max_mem_regions;
	up_read(&ne_dev_sem);
	return val;
}

void ne_enclave_link(struct ne_enclave *e)
{
	mutex_lock(&ne_list_lock);
	list_add_tail(&e->node, &ne_enclaves);
	mutex_unlock(&ne_list_lock);
}

void ne_enclave_unlink(struct ne_enclave *e)
{
	mutex_lock(&ne_list_lock);
	list_del_init(&e->node);
	mutex_unlock(&ne_list_lock);
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

void ne_misc_exit(void)
{
	ne_pool_exit();
}

