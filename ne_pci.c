// SPDX-License-Identifier: GPL-2.0
/*
 * PCI driver for the Nitro Enclaves device (1d0f:e4c1).
 *
 * The device takes one command at a time: the request goes into SEND_DATA,
 * then the command type into COMMAND; the device posts a 72-byte reply in
 * RECV_DATA, counts it in EVTCNT[15:0] and raises MSI-X vector 0.
 *
 * A reply carries no id.  The driver therefore identifies replies by the
 * reply counter: the reply to a command is the one that moves EVTCNT[15:0]
 * past the value read just before the command was sent.  When a command
 * times out, the channel is marked stale; the next command first waits, for
 * up to one more timeout, for the counter to move (the late reply, which is
 * discarded) and is sent only then, so a late reply is never taken for the
 * answer to a newer command.  A late SLOT_ALLOC reply that allocated a slot
 * is answered with SLOT_FREE, so that slot does not leak.  If the late reply
 * never comes, the channel is reset: ENABLE off (the device abandons the
 * command and frees every slot), then the handshake again.  The reset is
 * counted in ne->resets; the user API treats every slot allocated before a
 * reset as gone (its fds fail with ENODEV).
 *
 * Out-of-band events (vector 1) are handled in a work item that asks the
 * user API to refresh the state of running enclaves (SLOT_INFO).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/pci.h>

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

/* Waits until the reply counter moves past ne->replies; under cmd_lock. */
static bool ne_pci_wait_reply(struct ne_pci_dev *ne)
{
	unsigned long timeout = msecs_to_jiffies(READ_ONCE(cmd_timeout_ms));

	return wait_event_timeout(ne->reply_wq,
				  ne_pci_reply_count(ne) != ne->replies,
				  timeout) ||
	       ne_pci_reply_count(ne) != ne->replies;
}

/* Writes ENABLE = 0 and waits, up to the command timeout, for it to read 0. */
static void ne_pci_disable(struct ne_pci_dev *ne)
{
	unsigned long deadline;

	iowrite8(NE_ENABLE_OFF, ne->iomem + NE_ENABLE);
	deadline = jiffies + msecs_to_jiffies(READ_ONCE(cmd_timeout_ms));
	while (ioread8(ne->iomem + NE_ENABLE) != NE_ENABLE_OFF) {
		if (time_after(jiffies, deadline)) {
			dev_err(&ne->pdev->dev, "device did not turn off\n");
			return;
		}
		usleep_range(10000, 20000);
	}
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
	return 0;
}

/*
 * The late reply never came: turn the device off and on again.  The device
 * then forgets its slots, which the user API learns from ne->resets.
 */
static void ne_pci_reset_channel(struct ne_pci_dev *ne)
{
	dev_warn(&ne->pdev->dev,
		 "command %u never answered: resetting the device, its enclaves are lost\n",
		 ne->stale_type);
	ne_pci_disable(ne);
	WRITE_ONCE(ne->resets, ne->resets + 1);
	ne->stale = false;
	if (ne_pci_enable(ne)) {
		ne->broken = true;
		return;
	}
	ne->replies = ne_pci_reply_count(ne);
}

/* Sends one command and waits for its reply; under cmd_lock. */
static int ne_pci_exchange(struct ne_pci_dev *ne, enum ne_pci_cmd_type type,
			   const void *req, size_t req_size,
			   struct ne_pci_reply *reply)
{
	memcpy_toio(ne->iomem + NE_SEND_DATA, req, req_size);
	memset_io(ne->iomem + NE_SEND_DATA + req_size, 0,
		  NE_DATA_SIZE - req_size);
	iowrite32(type, ne->iomem + NE_COMMAND);

	if (!ne_pci_wait_reply(ne)) {
		dev_err_ratelimited(&ne->pdev->dev,
				    "command %u: no reply within %u ms\n",
				    type, READ_ONCE(cmd_timeout_ms));
		ne->stale = true;
		ne->stale_type = type;
		return -ETIMEDOUT;
	}
	ne->replies = ne_pci_reply_count(ne);
	memcpy_fromio(reply, ne->iomem + NE_RECV_DATA, sizeof(*reply));
	return reply->rc < 0 ? reply->rc : 0;
}

/*
 * The late reply of a timed-out command has landed (or not): drop it, give
 * back a slot that a late SLOT_ALLOC allocated, or reset the channel.
 */
static void ne_pci_settle_stale(struct ne_pci_dev *ne)
{
	struct ne_pci_reply reply;
	struct ne_req_slot req = { };

	if (!ne_pci_wait_reply(ne)) {
		ne_pci_reset_channel(ne);
		return;
	}
	ne->stale = false;
	ne->replies = ne_pci_reply_count(ne);
	memcpy_fromio(&reply, ne->iomem + NE_RECV_DATA, sizeof(reply));
	if (ne->stale_type != NE_CMD_SLOT_ALLOC || reply.rc < 0 ||
	    !reply.slot_uid)
		return;

	req.slot_uid = reply.slot_uid;
	if (ne_pci_exchange(ne, NE_CMD_SLOT_FREE, &req, sizeof(req), &reply))
		dev_warn(&ne->pdev->dev,
			 "cannot free slot %#llx of a timed-out SLOT_ALLOC\n",
			 req.slot_uid);
}

/**
 * ne_pci_cmd() - send one command to the device and wait for its reply
 * @ne:		the device.
 * @type:	the command.
 * @req:	its request payload.
 * @req_size:	the payload's size, at most NE_DATA_SIZE.
 * @reply:	where the reply goes.
 *
 * Context: process context; sleeps until the reply or the timeout (twice the
 * timeout when a previous command's reply is still due).
 * Return: 0, the device's negative rc, -ETIMEDOUT when the device did not
 * answer in time, -ENODEV when the device is unusable, or -EINVAL for a
 * request the device cannot take.
 */
int ne_pci_cmd(struct ne_pci_dev *ne, enum ne_pci_cmd_type type,
	       const void *req, size_t req_size, struct ne_pci_reply *reply)
{
	int rc;

	if (type <= NE_CMD_INVALID || type >= NE_CMD_MAX ||
	    req_size > NE_DATA_SIZE)
		return -EINVAL;

	mutex_lock(&ne->cmd_lock);
	if (!ne->broken &&
	    (ne->stale || ne->replies != ne_pci_reply_count(ne)))
		ne_pci_settle_stale(ne);
	if (ne->broken)
		rc = -ENODEV;
	else
		rc = ne_pci_exchange(ne, type, req, req_size, reply);
	mutex_unlock(&ne->cmd_lock);
	return rc;
}

static irqreturn_t ne_pci_reply_irq(int irq, void *data)
{
	struct ne_pci_dev *ne = data;

	wake_up(&ne->reply_wq);
	return IRQ_HANDLED;
}

static irqreturn_t ne_pci_event_irq(int irq, void *data)
{
	struct ne_pci_dev *ne = data;

	queue_work(ne->event_wq, &ne->event_work);
	return IRQ_HANDLED;
}

static void ne_pci_event_work(struct work_struct *work)
{
	struct ne_pci_dev *ne = container_of(work, struct ne_pci_dev,
					     event_work);

	ne_misc_handle_event(ne);
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
	INIT_WORK(&ne->event_work, ne_pci_event_work);

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
	cancel_work_sync(&ne->event_work);
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

	ne_pci_disable(ne);
	rc = ne_pci_enable(ne);
	if (rc)
		goto err_irqs;
	ne->replies = ne_pci_reply_count(ne);

	rc = ne_misc_register(ne);
	if (rc)
		goto err_disable;
	return 0;

err_disable:
	ne_pci_disable(ne);
err_irqs:
	ne_pci_teardown_irqs(ne);
	return rc;
}

/*
 * The user API lets go of the device first (its enclaves' fds then fail
 * with ENODEV), then the device is turned off, which frees its slots.
 */
static void ne_pci_remove(struct pci_dev *pdev)
{
	struct ne_pci_dev *ne = pci_get_drvdata(pdev);

	ne_misc_unregister(ne);
	ne_pci_disable(ne);
	ne_pci_teardown_irqs(ne);
}

static struct pci_driver ne_pci_driver = {
	.name = NE_DRV_NAME,
	.id_table = ne_pci_ids,
	.probe = ne_pci_probe,
	.remove = ne_pci_remove,
	.shutdown = ne_pci_remove,
};

static int __init ne_init(void)
{
	int rc = pci_register_driver(&ne_pci_driver);

	/* ne_cpus may already have taken CPUs offline: give them back. */
	if (rc)
		ne_misc_exit();
	return rc;
}

/* The CPU pool outlives the device: it goes back online only at unload. */
static void __exit ne_exit(void)
{
	pci_unregister_driver(&ne_pci_driver);
	ne_misc_exit();
}

module_init(ne_init);
module_exit(ne_exit);

MODULE_DESCRIPTION("Nitro Enclaves driver with a KVM-shaped user API");
MODULE_LICENSE("GPL");
