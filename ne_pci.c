// SPDX-License-Identifier: GPL-2.0
/*
 * PCI driver for the Nitro Enclaves device (1d0f:e4c1).
 *
 * The device takes one command at a time: the request goes into SEND_DATA,
 * then the command type into COMMAND; the device posts a 72-byte reply in
 * RECV_DATA and raises MSI-X vector 0.  The reply interrupt sets a flag
 * (ne->reply_ready), which is how a reply is detected; EVTCNT[15:0], which
 * the device is documented to bump per reply, is only compared with it,
 * and a mismatch is logged once.
 *
 * A reply carries no id, so exactly one command may be in flight, always:
 * a command is sent only when the reply of the previous one has been read,
 * or the device has been reset.  When a command's wait ends without a reply
 * (timeout, fatal signal, PCI remove), the command is marked stale and its
 * caller gets -ETIMEDOUT: "sent, effect unknown".  The next command first
 * settles the stale one: it waits, up to one more timeout, for the late
 * reply, and drops it (a late SLOT_ALLOC's slot is given back with
 * SLOT_FREE, which is settled the same way if it too goes unanswered; a
 * late SLOT_FREE that freed its slot is reported to the user API, whose
 * enclave then lets go of its memory and CPUs); if
 * the late reply never comes, the channel is reset: ENABLE off, and only
 * once ENABLE reads back 0 (the device abandoned the command and freed
 * every slot) is the reset epoch bumped and the handshake done again.  A
 * device that does not turn off is marked broken: its slots are kept as
 * unknown, so the user API keeps their pages pinned (see ne_vm.c).
 *
 * A slot that no enclave owns (a late SLOT_ALLOC's, the probe's) is an
 * orphan, kept in ne->orphans, until the device confirms it gone: a
 * refused or unanswered SLOT_FREE leaves it there, and the tidy work sends
 * SLOT_FREE again (100 ms, doubling to 2 s) until the device frees it, or
 * a late reply does (debugfs ne_kvm/orphans lists them).  A stale command
 * is settled by the tidy work, kicked when the command timed out, unless
 * another command comes first: the channel is then reset about twice the
 * timeout after the command was sent.  Without that, a slot the device
 * keeps for nobody would be one less for good.
 *
 * Each slot belongs to the reset epoch (ne->resets) it was allocated in;
 * ne_pci_cmd() sends a command about a slot only while its epoch is
 * current, checked under the command lock after settling.
 *
 * Device rc values that are not a plain errno (outside -4095..-1, or the
 * kernel-internal 512..529) become -EIO.
 *
 * Out-of-band events (vector 1) are handled in a work item that asks the
 * user API to refresh the state of running enclaves (SLOT_INFO); another
 * work item on the same ordered workqueue, the tidy work, settles a stale
 * command and frees orphan slots when no user command comes to do so, and
 * has the user API send SLOT_FREE again for its zombies.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/err.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/lockdep.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/sched/signal.h>

#include "ne_pci.h"

#define NE_DRV_NAME		"nitro_enclaves"

static unsigned int cmd_timeout_ms = 120000;
module_param(cmd_timeout_ms, uint, 0644);
MODULE_PARM_DESC(cmd_timeout_ms,
		 "How long to wait for a device reply, in ms (default 120000)");

static const struct pci_device_id ne_pci_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_AMAZON, PCI_DEVICE_ID_NE) },
	{ }
};
MODULE_DEVICE_TABLE(pci, ne_pci_ids);

static u16 ne_pci_reply_count(struct ne_pci_dev *ne)
{
	return ioread32(ne->iomem + NE_EVTCNT) & NE_EVTCNT_REPLY_MASK;
}

/*
 * Waits for the reply interrupt; under cmd_lock.  Returns 0 when a reply is
 * there, -ETIMEDOUT, -EINTR (fatal signal) or -ENODEV (PCI remove).
 */
static int ne_pci_wait_reply(struct ne_pci_dev *ne)
{
	unsigned long timeout = msecs_to_jiffies(READ_ONCE(cmd_timeout_ms));
	long left;

	left = wait_event_killable_timeout(ne->reply_wq,
					   READ_ONCE(ne->reply_ready) ||
					   READ_ONCE(ne->dying), timeout);
	/* Pairs with the release in ne_pci_reply_irq(): RECV_DATA after. */
	if (smp_load_acquire(&ne->reply_ready))
		return 0;
	if (READ_ONCE(ne->dying))
		return -ENODEV;
	return left < 0 ? -EINTR : -ETIMEDOUT;
}

/* Reads the reply that is there and checks the reply counter; cmd_lock. */
static void ne_pci_take_reply(struct ne_pci_dev *ne, struct ne_pci_reply *reply)
{
	u16 count;

	memcpy_fromio(reply, ne->iomem + NE_RECV_DATA, sizeof(*reply));
	WRITE_ONCE(ne->reply_ready, false);
	count = ne_pci_reply_count(ne);
	if (count != (u16)(ne->replies + 1))
		dev_notice_once(&ne->pdev->dev,
				"EVTCNT[15:0] went from %u to %u over one reply: not relied upon\n",
				ne->replies, count);
	ne->replies = count;
}

/*
 * Writes ENABLE = 0 and waits, up to the command timeout, for it to read 0;
 * with @abortable, only until PCI remove begins (a channel reset: the remove
 * then turns the device off itself, and waits once, not twice).  Returns
 * whether the device confirmed it is off (then it holds no slot and no
 * command).
 */
static bool ne_pci_disable(struct ne_pci_dev *ne, bool abortable)
{
	unsigned long deadline;

	iowrite8(NE_ENABLE_OFF, ne->iomem + NE_ENABLE);
	deadline = jiffies + msecs_to_jiffies(READ_ONCE(cmd_timeout_ms));
	while (ioread8(ne->iomem + NE_ENABLE) != NE_ENABLE_OFF) {
		if (abortable && READ_ONCE(ne->dying))
			return false;
		if (time_after(jiffies, deadline)) {
			dev_err(&ne->pdev->dev,
				"device did not turn off: its slots are kept as still in use\n");
			return false;
		}
		usleep_range(10000, 20000);
	}
	/* A reply interrupt raised before the device turned off is stale. */
	synchronize_irq(pci_irq_vector(ne->pdev, NE_VEC_REPLY));
	WRITE_ONCE(ne->reply_ready, false);
	return true;
}

static int ne_pci_enable(struct ne_pci_dev *ne)
{
	u16 version;
	u8 enable;

	iowrite16(NE_VERSION_MAX, ne->iomem + NE_VERSION);
	version = ioread16(ne->iomem + NE_VERSION);
	if (version != NE_VERSION_MAX) {
		dev_err(&ne->pdev->dev, "device speaks version %u, not %u\n",
			version, NE_VERSION_MAX);
		return -EIO;
	}

	iowrite8(NE_ENABLE_ON, ne->iomem + NE_ENABLE);
	enable = ioread8(ne->iomem + NE_ENABLE);
	if (enable != NE_ENABLE_ON) {
		dev_err(&ne->pdev->dev, "device did not turn on (0x%x)\n",
			enable);
		return -EIO;
	}
	ne->replies = ne_pci_reply_count(ne);
	return 0;
}

/*
 * The device confirmed it is off (ENABLE read back 0): every slot is gone,
 * the orphans' too, and the epoch moves on; under cmd_lock.
 */
static void ne_pci_confirmed_off(struct ne_pci_dev *ne)
{
	lockdep_assert_held(&ne->cmd_lock);
	spin_lock(&ne->orphans_lock);
	WRITE_ONCE(ne->resets, ne->resets + 1);
	ne->nr_orphans = 0;
	spin_unlock(&ne->orphans_lock);
}

/*
 * Turns the device off and on again; under cmd_lock.  The device then
 * forgets its slots, which the user API learns from the epoch (ne->resets);
 * the event work wakes every poller.
 */
static void ne_pci_reset_channel(struct ne_pci_dev *ne)
{
	ne->stale = false;
	ne->stale_type = NE_CMD_INVALID;
	ne->stale_slot = 0;
	if (ne_pci_disable(ne, true)) {
		ne_pci_confirmed_off(ne);
		if (ne_pci_enable(ne))
			ne->broken = true;
	} else {
		ne->broken = true;
	}
	mod_delayed_work(ne->event_wq, &ne->event_work, 0);
}

/* The kernel-internal errnos (ERESTARTSYS ... EIOCBQUEUED): never user's. */
#define NE_ERRNO_INTERNAL_MIN	512
#define NE_ERRNO_INTERNAL_MAX	529

/* A device rc as an errno: a plain negative errno, else -EIO. */
static int ne_pci_rc(s32 rc)
{
	if (rc >= 0)
		return 0;
	if (rc < -MAX_ERRNO ||
	    (-rc >= NE_ERRNO_INTERNAL_MIN && -rc <= NE_ERRNO_INTERNAL_MAX))
		return -EIO;
	return rc;
}

/*
 * A successful SLOT_ALLOC reply tells the device's limit of memory ranges
 * per slot: every one refreshes it, so that a limit unknown at probe (its
 * SLOT_ALLOC failed) is learnt from the next one.  Under cmd_lock.
 */
static void ne_pci_orphan_answered(struct ne_pci_dev *ne, u64 slot_uid,
				   int rc);

/*
 * A SLOT_ALLOC reply gave a new slot @reply->slot_uid: whatever the uid
 * named before (an orphan, an enclave's slot) is known by it no more.
 * Before any other command, under cmd_lock: see ne_pci_cmd_unless().
 */
static void ne_pci_learn(struct ne_pci_dev *ne, enum ne_pci_cmd_type type,
			 const struct ne_pci_reply *reply)
{
	if (type == NE_CMD_SLOT_ALLOC && reply->rc >= 0 && reply->slot_uid) {
		WRITE_ONCE(ne->max_mem_regions, reply->mem_regions);
		ne_pci_orphan_answered(ne, reply->slot_uid, 0);
		ne_misc_slot_allocated(ne, reply->slot_uid);
	}
}

/* The slot that a SLOT_FREE request frees; 0 for any other command. */
static u64 ne_pci_freed_slot(enum ne_pci_cmd_type type, const void *req,
			     size_t req_size)
{
	const struct ne_req_slot *slot = req;

	if (type != NE_CMD_SLOT_FREE || req_size < sizeof(*slot))
		return 0;
	return slot->slot_uid;
}

/*
 * Queues the tidy work at once, unless the caller is the tidy work: what
 * its own run leaves (a stale command, an orphan) is retried with backoff.
 */
static void ne_pci_kick_tidy(struct ne_pci_dev *ne)
{
	if (current_work() != &ne->tidy_work.work)
		mod_delayed_work(ne->event_wq, &ne->tidy_work, 0);
}

/* The event and tidy works' retries: after 100 ms, doubling up to 2 s. */
#define NE_WORK_RETRY_MIN_MS	100
#define NE_WORK_RETRY_MAX_MS	2000

/**
 * ne_pci_tidy_soon() - have the tidy work run after its shortest delay
 * @ne:		the device.
 *
 * For what is retried there but did not fail in a command of the tidy
 * work's own (a zombie's SLOT_FREE); a run already queued keeps its time.
 *
 * Context: any, while @ne is the user API's device (dev_sem held): its
 * workqueue goes at remove, after ne_misc_unregister().
 */
void ne_pci_tidy_soon(struct ne_pci_dev *ne)
{
	queue_delayed_work(ne->event_wq, &ne->tidy_work,
			   msecs_to_jiffies(NE_WORK_RETRY_MIN_MS));
}

/*
 * Sends one command and waits for its reply; under cmd_lock, with no
 * command in flight.  -ETIMEDOUT: sent, but no reply read (the command is
 * stale, its effect unknown).
 */
static int ne_pci_exchange(struct ne_pci_dev *ne, enum ne_pci_cmd_type type,
			   const void *req, size_t req_size,
			   struct ne_pci_reply *reply)
{
	int rc;

	WRITE_ONCE(ne->reply_ready, false);
	memcpy_toio(ne->iomem + NE_SEND_DATA, req, req_size);
	memset_io(ne->iomem + NE_SEND_DATA + req_size, 0,
		  NE_DATA_SIZE - req_size);
	iowrite32(type, ne->iomem + NE_COMMAND);

	rc = ne_pci_wait_reply(ne);
	if (rc) {
		if (rc == -ETIMEDOUT)
			dev_err_ratelimited(&ne->pdev->dev,
					    "command %u: no reply within %u ms\n",
					    type, READ_ONCE(cmd_timeout_ms));
		ne->stale = true;
		ne->stale_type = type;
		ne->stale_slot = ne_pci_freed_slot(type, req, req_size);
		/* by the tidy work, if no other command comes first */
		ne_pci_kick_tidy(ne);
		return -ETIMEDOUT;
	}
	ne_pci_take_reply(ne, reply);
	ne_pci_learn(ne, type, reply);
	return ne_pci_rc(reply->rc);
}

/*
 * A SLOT_FREE of an orphan answered -ENOENT: the device holds no such slot.
 * (An enclave's slot is not taken as gone so: the device may still map its
 * memory.  An orphan was never given any.)
 */
static bool ne_pci_orphan_gone(int rc)
{
	return !rc || rc == -ENOENT;
}

/*
 * The device did not confirm @o's slot, which no enclave owns, gone: it
 * becomes an orphan, at the end of the list, and the tidy work tries again;
 * under cmd_lock.  With no room left it is only named: the device may keep
 * it until it is turned off, which the driver does not do for that alone
 * (the running enclaves would be lost with it).
 */
static void ne_pci_keep_orphan(struct ne_pci_dev *ne,
			       const struct ne_pci_orphan *o)
{
	lockdep_assert_held(&ne->cmd_lock);
	if (ne->nr_orphans == NE_PCI_MAX_ORPHANS) {
		dev_err_ratelimited(&ne->pdev->dev,
				    "slot %#llx, which no enclave owns, is not freed (%d) and not tracked: the device may keep it until it is turned off\n",
				    o->slot_uid, o->rc);
		return;
	}
	if (o->rc != -ETIMEDOUT && o->rc != -ENODEV)
		dev_warn_ratelimited(&ne->pdev->dev,
				     "cannot free slot %#llx, which no enclave owns (%d): trying again until the device does\n",
				     o->slot_uid, o->rc);
	spin_lock(&ne->orphans_lock);
	ne->orphans[ne->nr_orphans++] = *o;
	spin_unlock(&ne->orphans_lock);
	ne_pci_kick_tidy(ne);
}

/*
 * The late reply of the SLOT_FREE of @slot_uid, which timed out, says @rc:
 * gone, the slot is no longer an orphan (the others keep their order);
 * else the orphan keeps the device's answer.  Under cmd_lock.
 */
static void ne_pci_orphan_answered(struct ne_pci_dev *ne, u64 slot_uid,
				   int rc)
{
	unsigned int i;

	lockdep_assert_held(&ne->cmd_lock);
	spin_lock(&ne->orphans_lock);
	for (i = 0; i < ne->nr_orphans; i++) {
		if (ne->orphans[i].slot_uid != slot_uid)
			continue;
		if (!ne_pci_orphan_gone(rc)) {
			ne->orphans[i].rc = rc;
			break;
		}
		ne->nr_orphans--;
		memmove(&ne->orphans[i], &ne->orphans[i + 1],
			(ne->nr_orphans - i) * sizeof(*ne->orphans));
		break;
	}
	spin_unlock(&ne->orphans_lock);
}

/*
 * Sends SLOT_FREE for @o's slot, which no enclave owns; under cmd_lock, with
 * no command in flight (none once PCI remove began).  Returns 0 when the
 * device confirmed it gone, else why not (also in @o->rc); an unanswered
 * SLOT_FREE is stale, and a late reply that says freed forgets the orphan.
 */
static int ne_pci_slot_free_unowned(struct ne_pci_dev *ne,
				    struct ne_pci_orphan *o)
{
	struct ne_req_slot req = { .slot_uid = o->slot_uid };
	struct ne_pci_reply reply;
	int rc;

	if (READ_ONCE(ne->dying)) {
		o->rc = -ENODEV;
		return o->rc;
	}
	o->tries++;
	rc = ne_pci_exchange(ne, NE_CMD_SLOT_FREE, &req, sizeof(req), &reply);
	o->rc = ne_pci_orphan_gone(rc) ? 0 : rc;
	return o->rc;
}

/* Gives back @slot_uid, which no enclave owns, or keeps it as an orphan. */
static void ne_pci_free_unowned(struct ne_pci_dev *ne, u64 slot_uid)
{
	struct ne_pci_orphan o = { .slot_uid = slot_uid };

	if (ne_pci_slot_free_unowned(ne, &o))
		ne_pci_keep_orphan(ne, &o);
}

/*
 * One SLOT_FREE for each orphan, in order, while the channel allows (a
 * timeout makes it stale; none once PCI remove began); under cmd_lock, with
 * no command in flight.  Those not confirmed gone stay orphans, quietly;
 * those not tried go first next time, so that one slot whose SLOT_FREE
 * keeps timing out does not keep the others from being tried.  The list
 * stays as it was until the round is over, for debugfs.
 */
static void ne_pci_free_orphans(struct ne_pci_dev *ne)
{
	struct ne_pci_orphan todo[NE_PCI_MAX_ORPHANS];
	struct ne_pci_orphan next[NE_PCI_MAX_ORPHANS];
	unsigned int n = ne->nr_orphans, untried = 0, refused = 0, i;

	lockdep_assert_held(&ne->cmd_lock);
	memcpy(todo, ne->orphans, n * sizeof(*todo));
	for (i = 0; i < n; i++) {
		if (ne->stale || ne->broken || READ_ONCE(ne->dying))
			next[untried++] = todo[i];
		else if (ne_pci_slot_free_unowned(ne, &todo[i]))
			todo[refused++] = todo[i];	/* refused <= i */
	}
	memcpy(&next[untried], todo, refused * sizeof(*todo));
	spin_lock(&ne->orphans_lock);
	memcpy(ne->orphans, next, (untried + refused) * sizeof(*next));
	ne->nr_orphans = untried + refused;
	spin_unlock(&ne->orphans_lock);
}

/*
 * Makes sure no command is in flight; under cmd_lock.  Drops the late reply
 * of a stale command, gives back a slot that a late SLOT_ALLOC allocated, or
 * resets the channel.  Returns 0 when a command may be sent, -EINTR or
 * -ENODEV otherwise (the command still in flight stays stale).
 */
static int ne_pci_settle(struct ne_pci_dev *ne)
{
	struct ne_pci_reply reply;
	int rc;

	while (ne->stale && !ne->broken) {
		rc = ne_pci_wait_reply(ne);
		if (rc == -EINTR || rc == -ENODEV)
			return rc;
		if (rc) {
			dev_warn(&ne->pdev->dev,
				 "command %u never answered: resetting the device, its enclaves are lost\n",
				 ne->stale_type);
			ne_pci_reset_channel(ne);
			break;
		}
		ne_pci_take_reply(ne, &reply);
		ne_pci_learn(ne, ne->stale_type, &reply);
		ne->stale = false;
		/* Before any other command: the uid cannot be reused yet. */
		rc = ne_pci_rc(reply.rc);
		if (ne->stale_slot)
			ne_pci_orphan_answered(ne, ne->stale_slot, rc);
		if (ne->stale_slot && !rc)
			ne_misc_slot_freed(ne, ne->stale_slot);
		/* An unanswered SLOT_FREE is stale: the loop settles it. */
		if (ne->stale_type == NE_CMD_SLOT_ALLOC && reply.rc >= 0 &&
		    reply.slot_uid)
			ne_pci_free_unowned(ne, reply.slot_uid);
	}
	ne->stale_type = NE_CMD_INVALID;
	ne->stale_slot = 0;
	return ne->broken ? -ENODEV : 0;
}

/**
 * ne_pci_discard_slot() - give back a slot that no enclave owns
 * @ne:		the device.
 * @epoch:	the reset epoch the slot was allocated in.
 * @slot_uid:	the slot.
 *
 * SLOT_FREE at once; a slot the device does not confirm freed is an orphan,
 * which the tidy work frees later.  Nothing to do once @epoch is over.
 *
 * Context: process context, with the user API's dev_sem held (a late
 * SLOT_FREE reply may be settled: ne_misc_slot_freed()).
 */
void ne_pci_discard_slot(struct ne_pci_dev *ne, unsigned int epoch,
			 u64 slot_uid)
{
	int rc;

	mutex_lock(&ne->cmd_lock);
	rc = ne_pci_settle(ne);
	if (ne->resets == epoch && !ne->broken) {
		struct ne_pci_orphan o = { .slot_uid = slot_uid, .rc = rc };

		if (rc)
			ne_pci_keep_orphan(ne, &o);
		else
			ne_pci_free_unowned(ne, slot_uid);
	}
	mutex_unlock(&ne->cmd_lock);
}

/**
 * ne_pci_tidy() - settle a stale command and free the orphan slots
 * @ne:		the device.
 *
 * For the tidy work, so that neither waits for the next user command.
 *
 * Context: the tidy work, with the user API's dev_sem held.
 * Return: 0 when nothing is left to do (or the device cannot be used or is
 * going), else why not: -EINPROGRESS, a command is still stale; -EAGAIN,
 * an orphan is left.  The caller tries again later.
 */
int ne_pci_tidy(struct ne_pci_dev *ne)
{
	int rc;

	mutex_lock(&ne->cmd_lock);
	rc = ne_pci_settle(ne);
	if (!rc)
		ne_pci_free_orphans(ne);
	if (!rc && !ne->broken && !READ_ONCE(ne->dying)) {
		if (ne->stale)
			rc = -EINPROGRESS;
		else if (ne->nr_orphans)
			rc = -EAGAIN;
	}
	mutex_unlock(&ne->cmd_lock);
	return rc == -ENODEV ? 0 : rc;
}

/**
 * ne_pci_orphans() - the orphan slots, for debugfs
 * @ne:		the device.
 * @list:	filled with them, in the order the tidy work tries them next.
 * @epoch:	set to the reset epoch they belong to.
 *
 * Context: process context, with the user API's dev_sem held (read) so that
 * @ne stays; takes only orphans_lock: does not wait for a command in
 * flight.
 * Return: how many there are.
 */
unsigned int ne_pci_orphans(struct ne_pci_dev *ne,
			    struct ne_pci_orphan list[NE_PCI_MAX_ORPHANS],
			    unsigned int *epoch)
{
	unsigned int n;

	spin_lock(&ne->orphans_lock);
	n = ne->nr_orphans;
	memcpy(list, ne->orphans, n * sizeof(*list));
	*epoch = ne->resets;
	spin_unlock(&ne->orphans_lock);
	return n;
}

static int __ne_pci_cmd(struct ne_pci_dev *ne, const unsigned int *want,
			unsigned int *got, const bool *abandoned,
			enum ne_pci_cmd_type type, const void *req,
			size_t req_size, struct ne_pci_reply *reply)
{
	int rc;

	if (type <= NE_CMD_INVALID || type >= NE_CMD_MAX ||
	    req_size > NE_DATA_SIZE)
		return -EINVAL;
	if (READ_ONCE(ne->dying))
		return -ENODEV;

	if (mutex_lock_killable(&ne->cmd_lock))
		return -EINTR;
	rc = ne_pci_settle(ne);
	if (!rc && READ_ONCE(ne->dying))
		rc = -ENODEV;
	if (!rc && want && *want != ne->resets)
		rc = -ENODEV;
	/* set under cmd_lock too: ne_misc_slot_allocated() */
	if (!rc && abandoned && READ_ONCE(*abandoned))
		rc = -ENODEV;
	if (!rc) {
		if (got)
			*got = ne->resets;
		rc = ne_pci_exchange(ne, type, req, req_size, reply);
	}
	mutex_unlock(&ne->cmd_lock);
	return rc;
}

/**
 * ne_pci_cmd() - send one command about a slot and wait for its reply
 * @ne:		the device.
 * @epoch:	the reset epoch of the slot: the command is sent only while
 *		it is current.
 * @type:	the command.
 * @req:	its request payload.
 * @req_size:	the payload's size, at most NE_DATA_SIZE.
 * @reply:	where the reply goes.
 *
 * Context: process context; sleeps until the reply or the timeout, after
 * settling a previous command whose reply is still due: up to the timeout
 * for that reply, and twice more when it is a SLOT_ALLOC's and the SLOT_FREE
 * that gives back its slot goes unanswered too.  Killable.
 * Return: 0; the device's rc as a negative errno; -ETIMEDOUT when the
 * command was sent but its reply not read (no reply in time, fatal signal,
 * PCI remove): its effect is unknown; -EINTR when a fatal signal came before
 * it was sent; -ENODEV when the device is unusable or going, or the slot's
 * epoch is over (nothing sent); -EINVAL for a request the device cannot take.
 */
int ne_pci_cmd(struct ne_pci_dev *ne, unsigned int epoch,
	       enum ne_pci_cmd_type type, const void *req, size_t req_size,
	       struct ne_pci_reply *reply)
{
	return __ne_pci_cmd(ne, &epoch, NULL, NULL, type, req, req_size,
			    reply);
}

/**
 * ne_pci_cmd_unless() - send one command about a slot unless abandoned
 * @ne:		the device.
 * @epoch:	as for ne_pci_cmd().
 * @abandoned:	checked under the command lock, after settling: when true,
 *		the slot's uid may name another slot now, and nothing is sent.
 * @type:	the command.
 * @req:	its request payload.
 * @req_size:	the payload's size, at most NE_DATA_SIZE.
 * @reply:	where the reply goes.
 *
 * Context and return: as ne_pci_cmd() (-ENODEV when abandoned).
 */
int ne_pci_cmd_unless(struct ne_pci_dev *ne, unsigned int epoch,
		      const bool *abandoned, enum ne_pci_cmd_type type,
		      const void *req, size_t req_size,
		      struct ne_pci_reply *reply)
{
	return __ne_pci_cmd(ne, &epoch, NULL, abandoned, type, req, req_size,
			    reply);
}

/**
 * ne_pci_cmd_new() - send a command in whatever epoch is current
 * @ne:		the device.
 * @epoch:	set to the epoch the command was sent in, under the command
 *		lock: a slot that a SLOT_ALLOC allocated belongs to it.
 * @type:	the command.
 * @req:	its request payload.
 * @req_size:	the payload's size, at most NE_DATA_SIZE.
 * @reply:	where the reply goes.
 *
 * Context and return: as ne_pci_cmd().
 */
int ne_pci_cmd_new(struct ne_pci_dev *ne, unsigned int *epoch,
		   enum ne_pci_cmd_type type, const void *req, size_t req_size,
		   struct ne_pci_reply *reply)
{
	return __ne_pci_cmd(ne, NULL, epoch, NULL, type, req, req_size,
			    reply);
}

/* Runs the event work again (an event may have been missed), now. */
void ne_pci_kick_events(struct ne_pci_dev *ne)
{
	mod_delayed_work(ne->event_wq, &ne->event_work, 0);
}

/**
 * ne_pci_shutdown() - turn the device off for good, before it goes away
 * @ne:		the device, with ne_pci_abort() done.
 *
 * Context: process context, at PCI remove, with no command left to come.
 * Return: true when the device confirmed it is off (ENABLE read back 0): its
 * slots are then gone, and the epoch moved.
 */
bool ne_pci_shutdown(struct ne_pci_dev *ne)
{
	bool off;

	mutex_lock(&ne->cmd_lock);
	ne->stale = false;
	off = ne_pci_disable(ne, false);
	if (off)
		ne_pci_confirmed_off(ne);
	ne->broken = true;
	mutex_unlock(&ne->cmd_lock);
	return off;
}

/* PCI remove begins: waits for replies end, new commands fail at once. */
static void ne_pci_abort(struct ne_pci_dev *ne)
{
	WRITE_ONCE(ne->dying, true);
	wake_up(&ne->reply_wq);
}

static irqreturn_t ne_pci_reply_irq(int irq, void *data)
{
	struct ne_pci_dev *ne = data;

	/* Release: pairs with the acquire in ne_pci_wait_reply(). */
	smp_store_release(&ne->reply_ready, true);
	wake_up(&ne->reply_wq);
	return IRQ_HANDLED;
}

static irqreturn_t ne_pci_event_irq(int irq, void *data)
{
	struct ne_pci_dev *ne = data;

	mod_delayed_work(ne->event_wq, &ne->event_work, 0);
	return IRQ_HANDLED;
}

/*
 * After a run of @dwork that could not finish: again later, each time
 * twice as late (*@retry_ms, the work's own).  Returns the delay, 0 when
 * the run finished.
 */
static unsigned int ne_pci_retry(struct ne_pci_dev *ne,
				 struct delayed_work *dwork,
				 unsigned int *retry_ms, int rc)
{
	if (!rc) {
		*retry_ms = 0;
		return 0;
	}
	*retry_ms = clamp(2 * *retry_ms, NE_WORK_RETRY_MIN_MS,
			  NE_WORK_RETRY_MAX_MS);
	queue_delayed_work(ne->event_wq, dwork, msecs_to_jiffies(*retry_ms));
	return *retry_ms;
}

/*
 * An event the work could not finish (a SLOT_INFO failed or timed out)
 * is handled again later: the device raises it only once, and an enclave
 * taken for still running would never report EPOLLHUP.  An event arriving
 * meanwhile runs the work at once (mod_delayed_work() above).
 */
static void ne_pci_event_work(struct work_struct *work)
{
	struct ne_pci_dev *ne = container_of(to_delayed_work(work),
					     struct ne_pci_dev, event_work);
	int rc = ne_misc_handle_event(ne);

	if (ne_pci_retry(ne, &ne->event_work, &ne->event_retry_ms, rc))
		dev_warn_ratelimited(&ne->pdev->dev,
				     "could not ask which enclaves stopped (%d): again in %u ms\n",
				     rc, ne->event_retry_ms);
}

/*
 * Settles a stale command and frees the orphan slots when no user command
 * comes to do it (ne_pci_tidy()); again later while something is left.
 */
static void ne_pci_tidy_work(struct work_struct *work)
{
	struct ne_pci_dev *ne = container_of(to_delayed_work(work),
					     struct ne_pci_dev, tidy_work);

	ne_pci_retry(ne, &ne->tidy_work, &ne->tidy_retry_ms,
		     ne_misc_tidy(ne));
}

static int ne_pci_setup_irqs(struct ne_pci_dev *ne)
{
	struct pci_dev *pdev = ne->pdev;
	int nvec, rc;

	nvec = pci_msix_vec_count(pdev);
	if (nvec < 2) {
		dev_err(&pdev->dev, "device has %d MSI-X vectors, needs 2\n",
			nvec);
		return nvec < 0 ? nvec : -EINVAL;
	}
	rc = pci_alloc_irq_vectors(pdev, nvec, nvec, PCI_IRQ_MSIX);
	if (rc < 0)
		return rc;

	rc = request_irq(pci_irq_vector(pdev, NE_VEC_REPLY), ne_pci_reply_irq,
			 0, "enclave_cmd", ne);
	if (rc)
		goto err_vectors;

	ne->event_wq = alloc_ordered_workqueue("ne_pci_dev_wq", 0);
	if (!ne->event_wq) {
		rc = -ENOMEM;
		goto err_reply_irq;
	}
	INIT_DELAYED_WORK(&ne->event_work, ne_pci_event_work);
	INIT_DELAYED_WORK(&ne->tidy_work, ne_pci_tidy_work);

	rc = request_irq(pci_irq_vector(pdev, NE_VEC_EVENT), ne_pci_event_irq,
			 0, "enclave_evt", ne);
	if (rc)
		goto err_wq;
	return 0;

err_wq:
	destroy_workqueue(ne->event_wq);
err_reply_irq:
	free_irq(pci_irq_vector(pdev, NE_VEC_REPLY), ne);
err_vectors:
	pci_free_irq_vectors(pdev);
	return rc;
}

static void ne_pci_teardown_irqs(struct ne_pci_dev *ne)
{
	free_irq(pci_irq_vector(ne->pdev, NE_VEC_EVENT), ne);
	/*
	 * Neither work queues the other once the user API let go of the
	 * device (ne_misc_unregister(), or the probe's failed registration):
	 * both only act on ne_kvm's current device, under its dev_sem.
	 */
	cancel_delayed_work_sync(&ne->event_work);
	cancel_delayed_work_sync(&ne->tidy_work);
	destroy_workqueue(ne->event_wq);
	free_irq(pci_irq_vector(ne->pdev, NE_VEC_REPLY), ne);
	pci_free_irq_vectors(ne->pdev);
}

static int ne_pci_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct ne_pci_dev *ne;
	int rc;

	ne = devm_kzalloc(&pdev->dev, sizeof(*ne), GFP_KERNEL);
	if (!ne)
		return -ENOMEM;
	ne->pdev = pdev;
	mutex_init(&ne->cmd_lock);
	spin_lock_init(&ne->orphans_lock);
	init_waitqueue_head(&ne->reply_wq);

	rc = pcim_enable_device(pdev);
	if (rc)
		return dev_err_probe(&pdev->dev, rc, "cannot enable device\n");
	pci_set_master(pdev);

	rc = pcim_iomap_regions(pdev, BIT(NE_PCI_BAR), NE_DRV_NAME);
	if (rc)
		return dev_err_probe(&pdev->dev, rc, "cannot map BAR %d\n",
				     NE_PCI_BAR);
	ne->iomem = pcim_iomap_table(pdev)[NE_PCI_BAR];
	pci_set_drvdata(pdev, ne);

	rc = ne_pci_setup_irqs(ne);
	if (rc)
		return dev_err_probe(&pdev->dev, rc, "cannot set up MSI-X\n");

	if (!ne_pci_disable(ne, false)) {
		rc = -EIO;
		goto err_irqs;
	}
	ne_misc_device_off(ne);
	rc = ne_pci_enable(ne);
	if (rc)
		goto err_irqs;

	rc = ne_misc_register(ne);
	if (rc)
		goto err_disable;
	return 0;

err_disable:
	ne_pci_disable(ne, false);
err_irqs:
	ne_pci_teardown_irqs(ne);
	return rc;
}

/*
 * Waits for replies end at once (their commands become stale: effect
 * unknown), then the user API turns the device off (ne_pci_shutdown()) and
 * only then tells its enclaves, whose slots are gone if the device confirmed
 * it is off, and kept as still in use otherwise.
 */
static void ne_pci_remove(struct pci_dev *pdev)
{
	struct ne_pci_dev *ne = pci_get_drvdata(pdev);

	ne_pci_abort(ne);
	ne_misc_unregister(ne);
	ne_pci_teardown_irqs(ne);
}

static struct pci_driver ne_pci_driver = {
	.name = NE_DRV_NAME,
	.id_table = ne_pci_ids,
	.probe = ne_pci_probe,
	.remove = ne_pci_remove,
	.shutdown = ne_pci_remove,
};

static bool ne_pci_registered;

/*
 * When the distribution's nitro_enclaves driver is loaded, it owns the
 * device (and the driver name): ne_kvm then loads without a device and says
 * so.
 */
static int __init ne_init(void)
{
	int rc;

	rc = ne_misc_init();
	if (rc)
		goto err;
	if (driver_find(NE_DRV_NAME, &pci_bus_type)) {
		pr_warn("the NE device belongs to the nitro_enclaves module: rmmod nitro_enclaves, then load ne_kvm again\n");
		return 0;
	}
	rc = pci_register_driver(&ne_pci_driver);
	if (rc)
		goto err;
	ne_pci_registered = true;
	return 0;

err:
	/* ne_cpus may already have taken CPUs offline: give them back. */
	ne_misc_exit();
	return rc;
}

/* The CPU pool outlives the device: it goes back online only at unload. */
static void __exit ne_exit(void)
{
	if (ne_pci_registered)
		pci_unregister_driver(&ne_pci_driver);
	ne_misc_exit();
}

module_init(ne_init);
module_exit(ne_exit);

MODULE_DESCRIPTION("Nitro Enclaves driver with a KVM-shaped user API");
MODULE_LICENSE("GPL");
