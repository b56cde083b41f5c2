// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/nitro_enclaves, the KVM-shaped user API.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/kvm.h>
#include <linux/miscdevice.h>
#include <linux/module.h>

#include <linux/ne_kvm.h>

#include "ne_kvm_compat.h"
#include "ne_pci.h"

static long ne_sys_ioctl(struct file *file, unsigned int cmd,
			 unsigned long arg)
{
	switch (cmd) {
	case KVM_GET_API_VERSION:
		return arg ? -EINVAL : KVM_API_VERSION;
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

int ne_misc_register(struct ne_pci_dev *ne)
{
	return misc_register(&ne_misc);
}

void ne_misc_unregister(struct ne_pci_dev *ne)
{
	misc_deregister(&ne_misc);
}
