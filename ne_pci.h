/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The Nitro Enclaves PCI device (1d0f:e4c1) as the driver sees it:
 * registers, commands and their wire structures, and the interface between
 * the PCI driver (ne_pci.c) and the user API (ne_misc.c).
 */
#ifndef _NE_PCI_H
#define _NE_PCI_H

#include <linux/atomic.h>
#include <linux/build_bug.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#define PCI_DEVICE_ID_NE		0xe4c1

/* BAR 3 registers. */
#define NE_PCI_BAR			3
#define NE_ENABLE			0x000	/* u8 */
#define NE_VERSION			0x002	/* u16 */
#define NE_COMMAND			0x004	/* u32, write only */
#define NE_EVTCNT			0x00c	/* u32, read only */
#define NE_SEND_DATA			0x010	/* 240 bytes */
#define NE_RECV_DATA			0x100	/* 240 bytes */
#define NE_DATA_SIZE			240

#define NE_ENABLE_OFF			0x00
#define NE_ENABLE_ON			0x01
#define NE_VERSION_MAX			0x0001

#define NE_EVTCNT_REPLY_MASK		0x0000ffff
#define NE_EVTCNT_EVENT_SHIFT		16

/* MSI-X vectors. */
#define NE_VEC_REPLY			0
#define NE_VEC_EVENT			1

enum ne_pci_cmd_type {
	NE_CMD_INVALID = 0,
	NE_CMD_ENCLAVE_START = 1,
	NE_CMD_ENCLAVE_GET_SLOT = 2,
	NE_CMD_ENCLAVE_STOP = 3,
	NE_CMD_SLOT_ALLOC = 4,
	NE_CMD_SLOT_FREE = 5,
	NE_CMD_SLOT_ADD_MEM = 6,
	NE_CMD_SLOT_ADD_VCPU = 7,
	NE_CMD_SLOT_COUNT = 8,
	NE_CMD_NEXT_SLOT = 9,
	NE_CMD_SLOT_INFO = 10,
	NE_CMD_SLOT_ADD_BULK_VCPUS = 11,
	NE_CMD_MAX = 12,
};

/* Request payloads, at natural alignment as on the wire. */
struct ne_req_enclave_start {
	u64 slot_uid;
	u64 enclave_cid;
	u64 flags;
};

struct ne_req_slot {			/* ENCLAVE_STOP, SLOT_FREE, SLOT_INFO */
	u64 slot_uid;
};

struct ne_req_slot_alloc {		/* also SLOT_COUNT */
	u8 unused;
};

struct ne_req_slot_add_mem {
	u64 slot_uid;
	u64 paddr;
	u64 size;
};

struct ne_req_slot_add_vcpu {
	u64 slot_uid;
	u32 vcpu_id;
	u8 padding[4];
};

/* The one reply layout of every command: 72 bytes. */
struct ne_pci_reply {
	s32 rc;
	u8 padding0[4];
	u64 slot_uid;
	u64 enclave_cid;
	u64 slot_count;
	u64 mem_regions;
	u64 mem_size;
	u64 nr_vcpus;
	u64 flags;
	u16 state;
	u8 padding1[6];
};

static_assert(sizeof(struct ne_pci_reply) == 72);

/* Slots nobody owns that the driver keeps trying to free, at most. */
#define NE_PCI_MAX_ORPHANS		8

/**
 * struct ne_pci_orphan - a slot that no enclave owns, not yet confirmed gone
 * @slot_uid:	the slot.
 * @tries:	the SLOT_FREEs sent for it (0: none could be sent yet).
 * @rc:		why the last one did not free it (its late answer, when it
 *		timed out and one came), or why the last try could not send
 *		one.
 */
struct ne_pci_orphan {
	u64 slot_uid;
	unsigned int tries;
	int rc;
};

/**
 * struct ne_pci_dev - one probed NE PCI device
 * @pdev:	the PCI device.
 * @iomem:	BAR 3.
 * @cmd_lock:	serialises commands: the device takes one at a time.
 * @reply_wq:	woken by the reply interrupt and by ne_pci_abort().
 * @reply_ready: set by the reply interrupt, cleared under @cmd_lock just
 *		before a command is sent and once its reply is read.
 * @replies:	EVTCNT[15:0] after the last reply, under @cmd_lock: only a
 *		cross-check of @reply_ready, never relied upon.
 * @stale:	a command was sent and its reply not read: it may still be in
 *		flight, so no other command may be sent; under @cmd_lock.
 * @stale_type:	the type of that command, under @cmd_lock.
 * @stale_slot:	the slot uid of that command when it is a SLOT_FREE: a late
 *		reply that says freed is the device confirming that slot gone
 *		(ne_misc_slot_freed()); under @cmd_lock.
 * @broken:	the device is unusable (it did not turn off, or not on again
 *		after a reset, or PCI remove cut a reset's wait for it to
 *		turn off short): every command fails with -ENODEV; under
 *		@cmd_lock.
 * @dying:	PCI remove has begun: waits end, commands fail with -ENODEV.
 * @resets:	the reset epoch: bumped, under @cmd_lock and @orphans_lock
 *		(ne_pci_orphans() reads it with the list), each time the device
 *		confirmed it is off (ENABLE written 0 and read back 0), which
 *		frees every slot.  A slot belongs to the epoch it was allocated
 *		in: once the epoch moved, the device no longer holds it.  Read
 *		locklessly with READ_ONCE.
 * @event_wq:	runs @event_work, which handles out-of-band events, and
 *		@tidy_work, one at a time (ordered).
 * @event_work:	asks the device about running enclaves after vector 1, and
 *		wakes every poller after a reset; runs again later when it
 *		could not ask (ne_pci_event_work()).
 * @event_retry_ms: the delay of that retry, 0 after a run that finished;
 *		@event_work's own (an ordered workqueue runs it alone).
 * @tidy_work:	settles a stale command and frees @orphans when no user
 *		command comes to do so (ne_pci_tidy()), then sends SLOT_FREE
 *		again for the zombies (ne_misc_tidy()); queued when a command
 *		times out, an orphan is kept or a zombie made, and again while
 *		one is left.
 * @tidy_retry_ms: the delay of that retry, @tidy_work's own.
 * @orphans_lock: @orphans and @nr_orphans: changed under @cmd_lock and
 *		this spinlock, read under either (debugfs reads them without
 *		waiting for a command).
 * @orphans:	slots of the current epoch that no enclave owns (that of a
 *		late SLOT_ALLOC reply, the probe's) and that the device did not
 *		confirm freed, in the order @tidy_work tries them next: it sends
 *		SLOT_FREE again until the device frees them; cleared when the
 *		device turns off.
 * @nr_orphans:	how many @orphans there are.
 * @max_mem_regions: the device's limit of memory ranges per slot, as the
 *		last successful SLOT_ALLOC reply said (the probe sends one),
 *		0 until one did; written under @cmd_lock, read with
 *		READ_ONCE.
 */
struct ne_pci_dev {
	struct pci_dev *pdev;
	void __iomem *iomem;
	struct mutex cmd_lock;		/* one command at a time */
	wait_queue_head_t reply_wq;
	bool reply_ready;
	u16 replies;
	bool stale;
	enum ne_pci_cmd_type stale_type;
	u64 stale_slot;
	bool broken;
	bool dying;
	unsigned int resets;
	spinlock_t orphans_lock;	/* @orphans, @nr_orphans */
	struct ne_pci_orphan orphans[NE_PCI_MAX_ORPHANS];
	unsigned int nr_orphans;
	struct workqueue_struct *event_wq;
	struct delayed_work event_work;
	unsigned int event_retry_ms;
	struct delayed_work tidy_work;
	unsigned int tidy_retry_ms;
	u64 max_mem_regions;
};

int ne_pci_cmd(struct ne_pci_dev *ne, unsigned int epoch,
	       enum ne_pci_cmd_type type, const void *req, size_t req_size,
	       struct ne_pci_reply *reply);
int ne_pci_cmd_unless(struct ne_pci_dev *ne, unsigned int epoch,
		      const bool *abandoned, enum ne_pci_cmd_type type,
		      const void *req, size_t req_size,
		      struct ne_pci_reply *reply);
int ne_pci_cmd_new(struct ne_pci_dev *ne, unsigned int *epoch,
		   enum ne_pci_cmd_type type, const void *req, size_t req_size,
		   struct ne_pci_reply *reply);
void ne_pci_discard_slot(struct ne_pci_dev *ne, unsigned int epoch,
			 u64 slot_uid);
int ne_pci_tidy(struct ne_pci_dev *ne);
void ne_pci_tidy_soon(struct ne_pci_dev *ne);
unsigned int ne_pci_orphans(struct ne_pci_dev *ne,
			    struct ne_pci_orphan list[NE_PCI_MAX_ORPHANS],
			    unsigned int *epoch);
void ne_pci_kick_events(struct ne_pci_dev *ne);
bool ne_pci_shutdown(struct ne_pci_dev *ne);

/* Implemented by the user API (ne_misc.c). */
int ne_misc_init(void);
void ne_misc_device_off(struct ne_pci_dev *ne);
int ne_misc_register(struct ne_pci_dev *ne);
void ne_misc_unregister(struct ne_pci_dev *ne);
int ne_misc_handle_event(struct ne_pci_dev *ne);
int ne_misc_tidy(struct ne_pci_dev *ne);
void ne_misc_slot_freed(struct ne_pci_dev *ne, u64 slot_uid);
void ne_misc_slot_allocated(struct ne_pci_dev *ne, u64 slot_uid);
void ne_misc_exit(void);

#endif /* _NE_PCI_H */
