// SPDX-License-Identifier: GPL-2.0
/*
 * klog_splat: a throwaway module that makes the debug kernel report one
 * defect of each kind on load, so that tools/klog-tests/e2e can watch
 * tools/klog-check fail on real reports.  Never loaded anywhere else.
 *
 * Lockdep goes first: a KASAN report taints the kernel in a way that turns
 * lock debugging off.  The module stays loaded (the boot ends right after).
 */
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

static DEFINE_MUTEX(splat_a);
static DEFINE_MUTEX(splat_b);
static DEFINE_SPINLOCK(splat_lock);

/* Kept out of the compiler's sight, so that nothing is folded away. */
static int splat_index = 16;
module_param(splat_index, int, 0444);
MODULE_PARM_DESC(splat_index, "out-of-bounds index into a 16-byte object");
static int splat_shift = 40;
module_param(splat_shift, int, 0444);
MODULE_PARM_DESC(splat_shift, "shift count applied to a 32-bit int");

/* A then B, later B then A: the circular dependency lockdep reports. */
static void splat_lock_order(void)
{
	mutex_lock(&splat_a);
	mutex_lock(&splat_b);
	mutex_unlock(&splat_b);
	mutex_unlock(&splat_a);

	mutex_lock(&splat_b);
	mutex_lock(&splat_a);
	mutex_unlock(&splat_a);
	mutex_unlock(&splat_b);
}

static void splat_atomic_sleep(void)
{
	spin_lock(&splat_lock);
	might_sleep();
	spin_unlock(&splat_lock);
}

static void splat_shift_overflow(void)
{
	int one = 1;

	OPTIMIZER_HIDE_VAR(one);
	pr_info("klog_splat: shifted %d\n", one << splat_shift);
}

static void splat_out_of_bounds(void)
{
	char *p = kmalloc(16, GFP_KERNEL);

	if (!p)
		return;
	pr_info("klog_splat: read %d\n", READ_ONCE(p[splat_index]));
	kfree(p);
}

/* Allocated, written, and the only pointer to it dropped. */
static void splat_leak(void)
{
	u64 *p = kmalloc(128, GFP_KERNEL);

	if (p)
		WRITE_ONCE(*p, 0x6b6c6f675f6c6561ULL);
}

static int __init klog_splat_init(void)
{
	splat_lock_order();
	splat_atomic_sleep();
	WARN(1, "klog_splat: a deliberate warning\n");
	splat_shift_overflow();
	splat_out_of_bounds();
	splat_leak();
	return 0;
}
module_init(klog_splat_init);

MODULE_DESCRIPTION("Deliberate kernel reports for the kernel-log checker's test");
MODULE_LICENSE("GPL");
