// SPDX-License-Identifier: GPL-2.0
/*
 * The system fd of the Nitro Enclaves driver (/dev/nitro_enclaves), the list
 * of enclaves, and the link with the PCI driver: the device pointer, commands
 * sent on behalf of an enclave, and out-of-band events.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/kvm.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/rwsem.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include <linux/ne_kvm.h>

#include "ne_enclave.h"

/**
 * struct ne_kvm - the driver's state, one instance
 * @dev_sem:	@dev and @gen.
 * @dev:	the bound NE device, NULL when there is none.
 * @gen:	bumped at each probe: a slot belongs to one device.
 * @list_lock:	@enclaves (and its order) and each enclave's zombie and
 *		reaping flags and retry state.
 * @enclaves:	every enclave, from KVM_CREATE_VM until its teardown freed
 *		it; zombies stay.
 * @nr_enclaves: how many, zombies included (read locklessly).
 * @nr_zombies:	how many zombies (read locklessly).
 * @event_seq:	bumped each time the event work starts.
 * @teardown_wq: runs the enclaves' teardown work.
 * @debugfs:	the driver's debugfs directory.
 */
struct ne_kvm {
	struct rw_semaphore dev_sem;
	struct ne_pci_dev *dev;
	unsigned int gen;
	struct mutex list_lock;		/* @enclaves, enclave->zombie, ->reaping... */
	struct list_head enclaves;
	atomic_t nr_enclaves;
	atomic_t nr_zombies;
	atomic_t event_seq;
	struct workqueue_struct *teardown_wq;
	struct dentry *debugfs;
};

static struct ne_kvm ne_kvm = {
	.dev_sem = __RWSEM_INITIALIZER(ne_kvm.dev_sem),
	.list_lock = __MUTEX_INITIALIZER(ne_kvm.list_lock),
	.enclaves = LIST_HEAD_INIT(ne_kvm.enclaves),
};

/*
 * Whether @e's slot is usable no more (its uid stale included: no command
 * about it is sent any more); under dev_sem.
 */
static bool ne_slot_lost(struct ne_enclave *e)
{
	struct ne_pci_dev *dev = ne_kvm.dev;

	return !dev || e->dev_gen != ne_kvm.gen || READ_ONCE(e->slot_gone) ||
	       READ_ONCE(dev->resets) != e->resets || READ_ONCE(dev->broken) ||
	       READ_ONCE(e->uid_stale);
}

/*
 * Whether the device confirmed that @e's slot is gone: it was turned off
 * (ENABLE read back 0) since the slot was allocated; under dev_sem.
 */
static bool ne_slot_gone(struct ne_enclave *e)
{
	if (READ_ONCE(e->slot_gone))
		return true;
	return ne_kvm.dev && e->dev_gen == ne_kvm.gen &&
	       READ_ONCE(ne_kvm.dev->resets) != e->resets;
}

bool ne_enclave_lost(struct ne_enclave *e)
{
	bool lost;

	down_read(&ne_kvm.dev_sem);
	lost = ne_slot_lost(e);
	up_read(&ne_kvm.dev_sem);
	return lost;
}

bool ne_enclave_gone(struct ne_enclave *e)
{
	bool gone;

	down_read(&ne_kvm.dev_sem);
	gone = ne_slot_gone(e);
	up_read(&ne_kvm.dev_sem);
	return gone;
}

/*
 * Sends a command about @e's slot: -ENODEV (nothing sent) once the slot is
 * lost or its uid stale, -ETIMEDOUT when its effect is unknown (see
 * ne_pci_cmd()).
 */
int ne_enclave_cmd(struct ne_enclave *e, enum ne_pci_cmd_type type,
		   const void *req, size_t size, struct ne_pci_reply *reply)
{
	int rc = -ENODEV;

	if (down_read_killable(&ne_kvm.dev_sem))
		return -EINTR;
	if (ne_kvm.dev && e->dev_gen == ne_kvm.gen && !READ_ONCE(e->slot_gone))
		rc = ne_pci_cmd_unless(ne_kvm.dev, e->resets, &e->uid_stale,
				       type, req, size, reply);
	up_read(&ne_kvm.dev_sem);
	return rc;
}

/*
 * STOP and FREE may meet a slot that is busy for a while: -EAGAIN is sent
 * again for up to @eagain_ms.
 */
int ne_enclave_cmd_retry(struct ne_enclave *e, enum ne_pci_cmd_type type,
			 unsigned int eagain_ms)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(eagain_ms);
	struct ne_req_slot req = { .slot_uid = e->slot_uid };
	struct ne_pci_reply reply;
	int rc;

	for (;;) {
		rc = ne_enclave_cmd(e, type, &req, sizeof(req), &reply);
		if (rc != -EAGAIN || !time_before(jiffies, deadline))
			return rc;
		usleep_range(1000, 2000);
	}
}

/*
 * Where @ne sits (PCI domain, bus, devfn), never 0: 0 is an enclave that
 * holds no slot.  A device probed at the same place is taken for the same
 * device: the machine has one NE device, which cannot be swapped for
 * another, and a rescan finds it where it was.
 */
static u64 ne_dev_location(const struct ne_pci_dev *ne)
{
	return BIT_ULL(63) | (u64)pci_domain_nr(ne->pdev->bus) << 16 |
	       pci_dev_id(ne->pdev);
}

/*
 * Asks the device for a slot for @e and records which device and reset
 * epoch it belongs to; the epoch is the one the command was sent in, so a
 * slot allocated across a reset is in the new epoch, and freed at release.
 */
int ne_enclave_slot_alloc(struct ne_enclave *e, struct ne_pci_reply *reply)
{
	struct ne_req_slot_alloc req = { };
	int rc = -ENODEV;

	if (down_read_killable(&ne_kvm.dev_sem))
		return -EINTR;
	if (ne_kvm.dev) {
		e->dev_gen = ne_kvm.gen;
		rc = ne_pci_cmd_new(ne_kvm.dev, &e->resets, NE_CMD_SLOT_ALLOC,
				    &req, sizeof(req), reply);
		if (!rc)
			e->dev_loc = ne_dev_location(ne_kvm.dev);
	}
	up_read(&ne_kvm.dev_sem);
	return rc;
}

/*
 * The device's limit of memory ranges per slot, clamped as a slot's is; 0
 * without a device or while no SLOT_ALLOC has succeeded.
 */
u64 ne_dev_max_mem_regions(void)
{
	u64 val = 0;

	down_read(&ne_kvm.dev_sem);
	if (ne_kvm.dev)
		val = min_t(u64, READ_ONCE(ne_kvm.dev->max_mem_regions),
			    NE_MAX_MEM_REGIONS);
	up_read(&ne_kvm.dev_sem);
	return val;
}

void ne_enclave_link(struct ne_enclave *e)
{
	mutex_lock(&ne_kvm.list_lock);
	list_add_tail(&e->node, &ne_kvm.enclaves);
	atomic_inc(&ne_kvm.nr_enclaves);
	mutex_unlock(&ne_kvm.list_lock);
}

void ne_enclave_unlink(struct ne_enclave *e)
{
	mutex_lock(&ne_kvm.list_lock);
	if (e->zombie) {
		WRITE_ONCE(e->zombie, false);
		atomic_dec(&ne_kvm.nr_zombies);
	}
	if (!list_empty(&e->node)) {
		list_del_init(&e->node);
		atomic_dec(&ne_kvm.nr_enclaves);
	}
	mutex_unlock(&ne_kvm.list_lock);
}

/*
 * Hands @e to the teardown work.  The work holds a module reference until it
 * has freed @e: a zombie keeps it, so the module cannot be unloaded.
 */
void ne_enclave_queue_teardown(struct ne_enclave *e)
{
	__module_get(THIS_MODULE);
	queue_work(ne_kvm.teardown_wq, &e->teardown);
}

/*
 * @e is a zombie whose slot is gone: requeue its teardown, which lets go of
 * everything and frees @e.  Once only: a second queue_work() while that run
 * is under way would run it again on the freed enclave.  list_lock.
 */
static void ne_reap_zombie(struct ne_enclave *e)
{
	lockdep_assert_held(&ne_kvm.list_lock);
	if (!e->zombie || e->reaping)
		return;
	e->reaping = true;
	queue_work(ne_kvm.teardown_wq, &e->teardown);
}

/* How many zombies one round of the tidy work sends SLOT_FREE for, at most. */
#define NE_ZOMBIE_BATCH	16
/* Each zombie's own retries: after 100 ms, doubling up to a minute. */
#define NE_ZOMBIE_RETRY_MIN_MS	100
#define NE_ZOMBIE_RETRY_MAX_MS	60000

/*
 * Whether the tidy work of @ne sends SLOT_FREE again for @e, now or
 * later: a zombie whose slot on @ne is still usable (a reset, the remove
 * or a probe lets the others go) and still known to the device by its uid
 * (not after -ENOENT, nor once the uid went to a new slot).  Under dev_sem
 * and list_lock.
 */
static bool ne_zombie_retryable(struct ne_pci_dev *ne, struct ne_enclave *e)
{
	return e->zombie && !e->reaping && ne && ne_kvm.dev == ne &&
	       !READ_ONCE(ne->dying) && !ne_slot_lost(e);
}

/* @e refused its SLOT_FREE with @rc: when to try again; under list_lock. */
static void ne_zombie_refused(struct ne_enclave *e, int rc)
{
	e->free_rc = rc;
	if (rc == -ENOENT)
		WRITE_ONCE(e->uid_stale, true);	/* the device disowned it */
	e->retry_ms = clamp(2 * e->retry_ms, NE_ZOMBIE_RETRY_MIN_MS,
			    NE_ZOMBIE_RETRY_MAX_MS);
	e->retry_at = jiffies + msecs_to_jiffies(e->retry_ms);
}

/*
 * @e's slot may still be in use: keep it listed, counted and named, and have
 * the tidy work send SLOT_FREE again (ne_zombies_free_again()).  Returns
 * false, making no zombie, when the device confirmed the slot gone since the
 * caller last looked (a late SLOT_FREE reply, a reset): the caller lets go.
 * Checked under list_lock, which the confirmations take too, so that each
 * either is seen here or sees the zombie (and requeues its teardown).
 */
bool ne_enclave_set_zombie(struct ne_enclave *e, int rc)
{
	bool gone;

	down_read(&ne_kvm.dev_sem);
	mutex_lock(&ne_kvm.list_lock);
	gone = ne_slot_gone(e);
	if (!gone) {
		if (!e->zombie) {
			WRITE_ONCE(e->zombie, true);
			atomic_inc(&ne_kvm.nr_zombies);
		}
		ne_zombie_refused(e, rc);
		if (ne_zombie_retryable(ne_kvm.dev, e))
			ne_pci_tidy_soon(ne_kvm.dev);
	}
	mutex_unlock(&ne_kvm.list_lock);
	up_read(&ne_kvm.dev_sem);
	if (gone)
		return false;

	wake_up(&e->eventq);
	pr_warn_ratelimited("enclave %#llx: the device did not confirm its slot freed (%d): its memory stays pinned and CPUs %*pbl stay out of the pool until it does\n",
			    e->slot_uid, rc, cpumask_pr_args(e->cpus));
	return true;
}

/**
 * ne_misc_slot_freed() - the device confirmed, late, that a slot is gone
 * @ne:		the device.
 * @slot_uid:	the slot of a SLOT_FREE whose sender had stopped waiting.
 *
 * The late reply of a SLOT_FREE that timed out said the slot is freed: the
 * enclave it belonged to (a zombie by now, or about to be one) may let go.
 * Until another command is sent, the device cannot have given the uid to
 * a new slot, so that enclave is among those of @ne's current epoch with
 * this uid; any other one there had its own slot freed before.
 *
 * Context: under @ne's cmd_lock, in whoever settles the late reply (the
 * sender of the next command, the event work's SLOT_INFO, the tidy work,
 * the probe), which holds dev_sem (lock order: dev_sem, cmd_lock,
 * list_lock).
 */
void ne_misc_slot_freed(struct ne_pci_dev *ne, u64 slot_uid)
{
	struct ne_enclave *e;

	lockdep_assert_held(&ne_kvm.dev_sem);
	lockdep_assert_held(&ne->cmd_lock);
	if (ne_kvm.dev != ne)
		return;
	mutex_lock(&ne_kvm.list_lock);
	list_for_each_entry(e, &ne_kvm.enclaves, node) {
		if (e->dev_gen != ne_kvm.gen || e->resets != ne->resets ||
		    e->slot_uid != slot_uid)
			continue;
		/*
		 * A stale uid names another slot now: the SLOT_FREE was not
		 * about this enclave (no command about it is sent since).
		 */
		if (READ_ONCE(e->uid_stale))
			continue;
		/*
		 * Every other match: an enclave whose SLOT_FREE succeeded may
		 * still be listed (its teardown has not unlinked it yet) with
		 * the uid the device then gave to this one.
		 */
		WRITE_ONCE(e->slot_gone, true);
		ne_reap_zombie(e);
	}
	mutex_unlock(&ne_kvm.list_lock);
}

/**
 * ne_misc_slot_allocated() - the device gave a new slot this uid
 * @ne:		the device.
 * @slot_uid:	the new slot's uid.
 *
 * An enclave of the same epoch with that uid is no longer known to the
 * device by it (its slot was freed, or, from a device that misbehaves,
 * dropped without a word): no command about it is sent any more, which
 * would reach the new slot; it is lost (its pollers are woken).  That is
 * no confirmation that the device let go of its memory: a zombie stays
 * one, and is not retried.
 *
 * Context: under @ne's cmd_lock, before any other command, with dev_sem
 * held (as ne_misc_slot_freed()).
 */
void ne_misc_slot_allocated(struct ne_pci_dev *ne, u64 slot_uid)
{
	struct ne_enclave *e;

	lockdep_assert_held(&ne_kvm.dev_sem);
	lockdep_assert_held(&ne->cmd_lock);
	if (ne_kvm.dev != ne)
		return;
	mutex_lock(&ne_kvm.list_lock);
	list_for_each_entry(e, &ne_kvm.enclaves, node) {
		if (e->dev_gen != ne_kvm.gen || e->resets != ne->resets ||
		    e->slot_uid != slot_uid)
			continue;
		if (READ_ONCE(e->slot_gone) || e->reaping)
			continue;	/* freed: letting go already */
		WRITE_ONCE(e->uid_stale, true);
		wake_up(&e->eventq);
		pr_warn_ratelimited("enclave %#llx: the device gave its slot's uid to a new slot: nothing is sent about it any more, and it keeps its memory and CPUs\n",
				    e->slot_uid);
	}
	mutex_unlock(&ne_kvm.list_lock);
}

/* Requeues the teardown of every zombie whose slot is now gone; list_lock. */
static void ne_reap_gone_zombies(void)
{
	struct ne_enclave *e;

	lockdep_assert_held(&ne_kvm.list_lock);
	list_for_each_entry(e, &ne_kvm.enclaves, node)
		if (ne_slot_gone(e))
			ne_reap_zombie(e);
}

/*
 * Up to NE_ZOMBIE_BATCH zombies due for a retry, in list order, each with
 * a reference, into @z; how many.  *@left: whether one more is left for
 * later.
 */
static unsigned int ne_zombies_collect(struct ne_pci_dev *ne,
				       struct ne_enclave **z, bool *left)
{
	struct ne_enclave *e;
	unsigned int n = 0;

	*left = false;
	down_read(&ne_kvm.dev_sem);
	mutex_lock(&ne_kvm.list_lock);
	list_for_each_entry(e, &ne_kvm.enclaves, node) {
		if (!ne_zombie_retryable(ne, e) ||
		    time_before(jiffies, e->retry_at)) {
			*left |= ne_zombie_retryable(ne, e);
			continue;
		}
		if (n == NE_ZOMBIE_BATCH) {
			*left = true;
			break;
		}
		refcount_inc(&e->refs);		/* the teardown holds one */
		z[n++] = e;
	}
	mutex_unlock(&ne_kvm.list_lock);
	up_read(&ne_kvm.dev_sem);
	return n;
}

/*
 * The retry of zombie @e's SLOT_FREE said @rc.  Freed: the slot is gone, its
 * teardown runs again and lets go.  Refused: it keeps the answer, waits
 * twice as long as last time, and goes to the end of the list, so that
 * one whose SLOT_FREE always times out does not keep the others from
 * their turn.  (Nothing sent, the device going: nothing to keep.)
 * Returns whether it is still a zombie to retry.
 */
static bool ne_zombie_answered(struct ne_pci_dev *ne, struct ne_enclave *e,
			       int rc)
{
	bool again;

	down_read(&ne_kvm.dev_sem);
	mutex_lock(&ne_kvm.list_lock);
	if (!rc && e->zombie) {
		pr_notice_ratelimited("enclave %#llx: the device freed its slot at SLOT_FREE number %u: its memory and CPUs are given back\n",
				      e->slot_uid, READ_ONCE(e->free_tries));
		WRITE_ONCE(e->slot_gone, true);
		ne_reap_zombie(e);
	} else if (rc && ne_zombie_retryable(ne, e)) {
		ne_zombie_refused(e, rc);
		list_move_tail(&e->node, &ne_kvm.enclaves);
	}
	again = ne_zombie_retryable(ne, e);
	mutex_unlock(&ne_kvm.list_lock);
	up_read(&ne_kvm.dev_sem);
	return again;
}

/**
 * ne_zombies_free_again() - send SLOT_FREE again for the zombies
 * @ne:		the device.
 *
 * A refused SLOT_FREE is not the device's last word (it may have been
 * busy, or failed for a while): the tidy work sends it again, with its
 * backoff, for as long as the zombie lasts.  A round stops at the first
 * command that times out, as the orphans' do: the ones not tried go first
 * next time.
 *
 * Context: the tidy work, no lock held.
 * Return: 0 when no zombie is left to retry, else -EAGAIN.
 */
static int ne_zombies_free_again(struct ne_pci_dev *ne)
{
	struct ne_enclave *z[NE_ZOMBIE_BATCH];
	unsigned int n, i;
	bool again;
	int rc = 0;

	n = ne_zombies_collect(ne, z, &again);
	for (i = 0; i < n; i++) {
		if (rc != -ETIMEDOUT) {
			rc = ne_enclave_stop_and_free(z[i], 0);
			if (ne_zombie_answered(ne, z[i], rc))
				again = true;
		} else {
			again = true;	/* not tried: the device is stale */
		}
		ne_enclave_put(z[i]);
	}
	return again ? -EAGAIN : 0;
}

unsigned int ne_event_seq(void)
{
	return atomic_read(&ne_kvm.event_seq);
}

/* Runs the event work again: an event may have found an enclave in INIT. */
void ne_enclave_kick_events(void)
{
	down_read(&ne_kvm.dev_sem);
	if (ne_kvm.dev)
		ne_pci_kick_events(ne_kvm.dev);
	up_read(&ne_kvm.dev_sem);
}

/**
 * ne_enclaves_exist() - whether any enclave holds or may hold resources
 *
 * Context: any; takes no lock, so the CPU pool may ask under ne_pool_lock.
 * Return: true while an enclave exists, zombies included.
 */
bool ne_enclaves_exist(void)
{
	return atomic_read(&ne_kvm.nr_enclaves) > 0;
}

/**
 * ne_zombies() - how many enclaves the device did not confirm freed
 *
 * Context: any; takes no lock.
 * Return: the number of zombies.
 */
unsigned int ne_zombies(void)
{
	return atomic_read(&ne_kvm.nr_zombies);
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
	case NE_CREATE_VM:
		return ne_sys_ne_create_vm((void __user *)arg);
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

/* What the event work asks the device about: one running slot. */
struct ne_event_query {
	u64 slot_uid;
	unsigned int dev_gen;
	unsigned int resets;
};

/* The running enclaves of @ne, at most @max, into @q; under list_lock. */
static unsigned int ne_event_collect(struct ne_event_query *q,
				     unsigned int max)
{
	struct ne_enclave *e;
	unsigned int n = 0;

	list_for_each_entry(e, &ne_kvm.enclaves, node) {
		wake_up(&e->eventq);
		if (READ_ONCE(e->state) != NE_STATE_RUNNING || e->zombie ||
		    READ_ONCE(e->uid_stale))
			continue;
		if (q && n < max)
			q[n] = (struct ne_event_query){ e->slot_uid, e->dev_gen,
							e->resets };
		n++;
	}
	return n;
}

/*
 * @q's enclave stopped: tell its pollers; under list_lock.  Whatever state
 * other than RUNNING the device reported, a started enclave never goes back
 * (to INIT, where it would take resources and a START again): it stopped.
 * @unsure: the device did not say STOPPED, so the teardown makes sure.
 */
static void ne_event_stopped(const struct ne_event_query *q, bool unsure)
{
	struct ne_enclave *e;

	list_for_each_entry(e, &ne_kvm.enclaves, node) {
		if (e->slot_uid != q->slot_uid || e->dev_gen != q->dev_gen ||
		    e->resets != q->resets ||
		    READ_ONCE(e->state) != NE_STATE_RUNNING)
			continue;
		if (unsure)
			WRITE_ONCE(e->stop_unsure, true);
		/* release: the teardown that sees STOPPED sees stop_unsure */
		smp_store_release(&e->state, NE_STATE_STOPPED);
		WRITE_ONCE(e->has_event, true);
		wake_up(&e->eventq);
	}
}

/*
 * Asks the device (SLOT_INFO) whether @q's enclave still runs, and marks it
 * stopped if not.  A slot the device does not know (-ENOENT) runs no
 * enclave; the teardown's SLOT_FREE will most likely be refused the same
 * way (-ENOENT), and the enclave then stays a zombie, its pages pinned and
 * its SLOT_FREE not sent again, until the device is turned off.  Returns 0
 * once answered (or when the device is gone: a reset or the remove marks
 * the enclave lost), else why not: the caller asks again later.
 */
static int ne_event_query_one(struct ne_pci_dev *ne,
			      const struct ne_event_query *q)
{
	struct ne_req_slot req = { .slot_uid = q->slot_uid };
	struct ne_pci_reply reply;
	int rc = -ENODEV;

	down_read(&ne_kvm.dev_sem);
	if (ne_kvm.dev == ne && ne_kvm.gen == q->dev_gen)
		rc = ne_pci_cmd(ne, q->resets, NE_CMD_SLOT_INFO, &req,
				sizeof(req), &reply);
	up_read(&ne_kvm.dev_sem);
	if (rc == -ENODEV)
		return 0;
	if (rc && rc != -ENOENT)
		return rc;
	if (!rc && reply.state == NE_STATE_RUNNING)
		return 0;

	if (rc)
		dev_notice_ratelimited(&ne->pdev->dev,
				       "SLOT_INFO: slot %#llx unknown: taken as stopped\n",
				       q->slot_uid);
	else if (reply.state != NE_STATE_STOPPED)
		dev_notice_ratelimited(&ne->pdev->dev,
				       "SLOT_INFO: slot %#llx in state %#x: taken as stopped\n",
				       q->slot_uid, reply.state);
	mutex_lock(&ne_kvm.list_lock);
	ne_event_stopped(q, rc || reply.state != NE_STATE_STOPPED);
	mutex_unlock(&ne_kvm.list_lock);
	return 0;
}

/*
 * Out-of-band event, or a reset: wake every poller (a lost enclave polls
 * EPOLLHUP), ask the device about every running enclave and mark those that
 * stopped.  Runs in the device's work item; holds the list lock only to
 * walk the list, never across a command, and never takes an enclave's lock.
 * Returns 0, or when it could not ask about every one the first error (no
 * memory, a SLOT_INFO that failed or timed out): the caller runs it again
 * later.
 */
int ne_misc_handle_event(struct ne_pci_dev *ne)
{
	struct ne_event_query *q;
	unsigned int i, n;
	int rc, again = 0;

	atomic_inc(&ne_kvm.event_seq);
	/* paired with the barrier of ne_vm_start() after it sets RUNNING */
	smp_mb__after_atomic();
	mutex_lock(&ne_kvm.list_lock);
	n = ne_event_collect(NULL, 0);
	mutex_unlock(&ne_kvm.list_lock);
	q = kcalloc(max(n, 1U), sizeof(*q), GFP_KERNEL);
	if (!q) {
		again = -ENOMEM;
		goto retry_zombies;
	}
	mutex_lock(&ne_kvm.list_lock);
	n = min(n, ne_event_collect(q, n));
	mutex_unlock(&ne_kvm.list_lock);

	for (i = 0; i < n; i++) {
		rc = ne_event_query_one(ne, &q[i]);
		if (rc && !again)
			again = rc;
	}
	kfree(q);

retry_zombies:
	/* After a reset, the slots of zombies of the old epoch are gone. */
	down_read(&ne_kvm.dev_sem);
	mutex_lock(&ne_kvm.list_lock);
	ne_reap_gone_zombies();
	mutex_unlock(&ne_kvm.list_lock);
	up_read(&ne_kvm.dev_sem);
	return again;
}

/**
 * ne_misc_tidy() - settle a stale command, free the slots nobody owns and
 * those of zombies
 * @ne:		the device.
 *
 * Context: the device's tidy work.
 * Return: 0 when nothing is left to do (or @ne is no longer the user API's
 * device), else why not: the tidy work runs again later.
 */
int ne_misc_tidy(struct ne_pci_dev *ne)
{
	int rc = 0;

	down_read(&ne_kvm.dev_sem);
	if (ne_kvm.dev == ne)
		rc = ne_pci_tidy(ne);
	up_read(&ne_kvm.dev_sem);
	/* Not while a command is stale: its reply may free a zombie. */
	if (rc && rc != -EAGAIN)
		return rc;
	return ne_zombies_free_again(ne) ?: rc;
}

/*
 * Learns the device's limit of memory ranges from a throwaway slot (the
 * PCI driver keeps what each successful SLOT_ALLOC reply says: when this
 * one fails, the first KVM_CREATE_VM teaches it).
 */
static void ne_probe_limits(struct ne_pci_dev *ne)
{
	struct ne_req_slot_alloc alloc = { };
	struct ne_pci_reply reply;
	unsigned int epoch;
	int rc;

	rc = ne_pci_cmd_new(ne, &epoch, NE_CMD_SLOT_ALLOC, &alloc,
			    sizeof(alloc), &reply);
	if (rc) {
		dev_warn(&ne->pdev->dev,
			 "SLOT_ALLOC failed (%d): KVM_CAP_NR_MEMSLOTS is 0 until a KVM_CREATE_VM succeeds\n",
			 rc);
		return;
	}
	if (reply.slot_uid)
		ne_pci_discard_slot(ne, epoch, reply.slot_uid);
}

/**
 * ne_misc_device_off() - a probe turned the device off
 * @ne:		the device being probed, ENABLE just read back 0.
 *
 * Every slot that an earlier instance of the same device held is gone,
 * those of zombies included (a remove that could not turn the device off
 * left them): they may let go, whether or not this probe goes on to
 * succeed.
 *
 * Context: process context, at probe, before ne_misc_register().
 */
void ne_misc_device_off(struct ne_pci_dev *ne)
{
	u64 loc = ne_dev_location(ne);
	struct ne_enclave *e;

	down_write(&ne_kvm.dev_sem);
	mutex_lock(&ne_kvm.list_lock);
	list_for_each_entry(e, &ne_kvm.enclaves, node)
		if (e->dev_loc == loc)
			WRITE_ONCE(e->slot_gone, true);
	ne_reap_gone_zombies();
	mutex_unlock(&ne_kvm.list_lock);
	up_write(&ne_kvm.dev_sem);
}

/**
 * ne_misc_register() - a device was probed: the user API may use it
 * @ne:		the device, which its probe turned off and on again.
 *
 * Context: process context, at probe.
 * Return: 0, -EBUSY when another NE device is already in use, or
 * misc_register()'s error.
 */
int ne_misc_register(struct ne_pci_dev *ne)
{
	int rc;

	down_write(&ne_kvm.dev_sem);
	if (ne_kvm.dev) {
		up_write(&ne_kvm.dev_sem);
		dev_err(&ne->pdev->dev, "only one NE device is supported\n");
		return -EBUSY;
	}
	ne_probe_limits(ne);
	ne_kvm.dev = ne;
	ne_kvm.gen++;
	up_write(&ne_kvm.dev_sem);

	rc = misc_register(&ne_misc);
	if (rc) {
		down_write(&ne_kvm.dev_sem);
		ne_kvm.dev = NULL;
		up_write(&ne_kvm.dev_sem);
	}
	return rc;
}

/*
 * The device goes away (ne_pci_abort() done): no new system fd, commands in
 * flight end, the device is turned off, and only then are its enclaves
 * told: their slots are gone if the device confirmed it is off, and kept as
 * in use (their release makes zombies) if not.  Every poller is woken.
 */
void ne_misc_unregister(struct ne_pci_dev *ne)
{
	struct ne_enclave *e;
	bool off;

	misc_deregister(&ne_misc);
	down_write(&ne_kvm.dev_sem);
	off = ne_pci_shutdown(ne);
	mutex_lock(&ne_kvm.list_lock);
	list_for_each_entry(e, &ne_kvm.enclaves, node)
		if (e->dev_gen == ne_kvm.gen && ne_slot_gone(e))
			WRITE_ONCE(e->slot_gone, true);
	mutex_unlock(&ne_kvm.list_lock);
	ne_kvm.dev = NULL;
	up_write(&ne_kvm.dev_sem);
	if (!off)
		dev_err(&ne->pdev->dev,
			"removed without turning off: its enclaves keep their memory and CPUs\n");

	down_read(&ne_kvm.dev_sem);
	mutex_lock(&ne_kvm.list_lock);
	list_for_each_entry(e, &ne_kvm.enclaves, node)
		wake_up(&e->eventq);
	ne_reap_gone_zombies();
	mutex_unlock(&ne_kvm.list_lock);
	up_read(&ne_kvm.dev_sem);
}

/*
 * When zombie @e's SLOT_FREE is sent again: in how many ms (0: due), or -1
 * when it is not (its device unusable or going, its uid stale); under
 * list_lock.
 */
static long ne_zombie_retry_in_ms(struct ne_enclave *e)
{
	long left;

	if (!ne_zombie_retryable(ne_kvm.dev, e))
		return -1;
	left = (long)(e->retry_at - jiffies);
	return left > 0 ? jiffies_to_msecs(left) : 0;
}

/*
 * debugfs ne_kvm/zombies: one line per enclave the device may still hold;
 * under dev_sem (read) and list_lock.
 */
static int ne_zombies_show(struct seq_file *m, void *unused)
{
	struct ne_enclave *e;
	struct ne_pins *pins;
	unsigned long pages;

	if (down_read_killable(&ne_kvm.dev_sem))
		return -EINTR;
	mutex_lock(&ne_kvm.list_lock);
	list_for_each_entry(e, &ne_kvm.enclaves, node) {
		if (!e->zombie)
			continue;
		pages = 0;
		list_for_each_entry(pins, &e->pins, node)
			pages += pins->nr;
		seq_printf(m, "slot_uid: %#llx device: %u epoch: %u free_tries: %u free_rc: %d retry_in_ms: %ld pinned_pages: %lu cpus: %*pbl\n",
			   e->slot_uid, e->dev_gen, e->resets,
			   READ_ONCE(e->free_tries), e->free_rc,
			   ne_zombie_retry_in_ms(e), pages,
			   cpumask_pr_args(e->cpus));
	}
	mutex_unlock(&ne_kvm.list_lock);
	up_read(&ne_kvm.dev_sem);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(ne_zombies);

/*
 * debugfs ne_kvm/orphans: one line per slot that no enclave owns and that
 * the device did not confirm freed yet, in the order they are tried next.
 */
static int ne_orphans_show(struct seq_file *m, void *unused)
{
	struct ne_pci_orphan list[NE_PCI_MAX_ORPHANS];
	unsigned int n = 0, epoch = 0, gen, i;

	if (down_read_killable(&ne_kvm.dev_sem))
		return -EINTR;
	gen = ne_kvm.gen;
	if (ne_kvm.dev)
		n = ne_pci_orphans(ne_kvm.dev, list, &epoch);
	up_read(&ne_kvm.dev_sem);
	for (i = 0; i < n; i++)
		seq_printf(m, "slot_uid: %#llx device: %u epoch: %u free_tries: %u free_rc: %d\n",
			   list[i].slot_uid, gen, epoch, list[i].tries,
			   list[i].rc);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(ne_orphans);

/* Module load; on failure the caller undoes it with ne_misc_exit(). */
int __init ne_misc_init(void)
{
	ne_kvm.teardown_wq = alloc_workqueue("ne_kvm_teardown", WQ_UNBOUND, 0);
	if (!ne_kvm.teardown_wq)
		return -ENOMEM;
	ne_kvm.debugfs = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("zombies", 0400, ne_kvm.debugfs, NULL,
			    &ne_zombies_fops);
	debugfs_create_file("orphans", 0400, ne_kvm.debugfs, NULL,
			    &ne_orphans_fops);
	/* ne_cpus given at load was only checked and stored: apply it now. */
	return ne_pool_init();
}

/* Module unload: no fd and no zombie is left (they hold the module). */
void ne_misc_exit(void)
{
	debugfs_remove_recursive(ne_kvm.debugfs);
	if (ne_kvm.teardown_wq)
		destroy_workqueue(ne_kvm.teardown_wq);
	ne_pool_exit();
}
