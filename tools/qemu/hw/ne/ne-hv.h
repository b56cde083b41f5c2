/*
 * The emulated Nitro hypervisor behind the ne-pci device: slots, donated
 * memory and vCPUs, CIDs, enclave states, and the carve-out of donated
 * memory from the parent.  ne-pci.c is only the PCI front end (registers,
 * doorbell, interrupts, test controls); everything a command does to the
 * hypervisor's bookkeeping is here, in ne-hv.c.
 *
 * Hook for an enclave launcher.  A launcher (which runs the enclave as a
 * separate VM) registers an NEHvLauncherOps with ne_hv_set_launcher():
 *   - start(slot) is called by ENCLAVE_START after every check passed and
 *     after the carve-out is in place; a negative Linux errno refuses the
 *     start (the carve-out is undone and the slot stays INIT).  The enclave
 *     memory is the slot's ranges concatenated in donation order from
 *     enclave-physical 0; read it with ne_hv_slot_read().  A start that
 *     takes time returns NE_HV_START_PENDING and answers later, from the
 *     main loop, with ne_hv_start_done(); until then the slot is
 *     "starting" (still INIT on the wire) and the command stays in flight.
 *   - cancel(slot) is called when a starting slot is freed (device disable
 *     or reset): the launcher forgets it and never calls
 *     ne_hv_start_done() for it.
 *   - stop(slot) is called when a RUNNING slot leaves RUNNING (ENCLAVE_STOP,
 *     SLOT_FREE, device disable or reset, ne_hv_enclave_exited(), or
 *     ne_hv_forget_slot()), after
 *     the slot is marked STOPPED (so nothing it sets off can stop the slot
 *     again).  It must detach whatever start() set up from the slot, must
 *     not call back into ne-hv and must not wait (the parent's vCPUs do
 *     not wait on an enclave: what takes time finishes in the background);
 *     it is called at most once per successful start().
 * Without a launcher, starting and stopping only change the bookkeeping.
 * When the enclave ends on its own, the launcher calls
 * ne_hv_enclave_exited(): the slot becomes STOPPED and the device raises an
 * out-of-band event (MSI-X vector 1), exactly as the test-controls knob
 * does.  All of this runs under the BQL, in the main loop.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_HV_H
#define HW_NE_NE_HV_H

#include "exec/memory.h"
#include "qemu/queue.h"

#define TYPE_NE_PCI "ne-pci"

/* Command types written to the COMMAND register. */
enum {
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

/* Linux errno values on the wire, whatever the host's errno.h says. */
#define NE_ERRNO_EPERM          1
#define NE_ERRNO_ENOENT         2
#define NE_ERRNO_ENOEXEC        8
#define NE_ERRNO_EAGAIN         11
#define NE_ERRNO_ENOMEM         12
#define NE_ERRNO_EBUSY          16
#define NE_ERRNO_ENODEV         19
#define NE_ERRNO_EINVAL         22
#define NE_ERRNO_ENOSPC         28
#define NE_ERRNO_EOPNOTSUPP     95
#define NE_ERRNO_EADDRINUSE     98

/* Slot states on the wire (SLOT_INFO reply.state). */
#define NE_STATE_INIT           0x0000
#define NE_STATE_RUNNING        0x0002
#define NE_STATE_STOPPED        0xffff

#define NE_MEM_GRANULE          (2 * MiB)
#define NE_MIN_ENCLAVE_MEM      (64 * MiB)
#define NE_START_FLAG_DEBUG     0x1ULL

/* The 72-byte reply, decoded; ne_hv_encode_reply() lays it out. */
#define NE_REPLY_SIZE           72
typedef struct NEReply {
    int32_t rc;
    uint64_t slot_uid;
    uint64_t enclave_cid;
    uint64_t slot_count;
    uint64_t mem_regions;
    uint64_t mem_size;
    uint64_t nr_vcpus;
    uint64_t flags;
    uint16_t state;
} NEReply;

typedef struct NECarveOut NECarveOut;

/* One donated range of parent guest-physical memory. */
typedef struct NEMemRange {
    uint64_t gpa;
    uint64_t size;
    MemoryRegion *ram;          /* the RAM block under it (referenced) */
    hwaddr ram_offset;          /* where gpa lies in @ram */
    NECarveOut *carve;          /* the overlay, from START until FREE */
} NEMemRange;

typedef struct NEHv NEHv;

typedef struct NESlot {
    QTAILQ_ENTRY(NESlot) next;
    NEHv *hv;
    uint64_t uid;
    uint16_t state;
    uint64_t cid;               /* 0 until started */
    uint64_t flags;             /* ENCLAVE_START flags */
    NEMemRange *ranges;         /* hv->max_mem_regions entries */
    uint32_t nr_ranges;
    uint64_t mem_size;
    GArray *vcpus;              /* uint32_t parent CPU indexes, in order */
    bool starting;              /* ENCLAVE_START waits for the launcher */
    void *launcher_data;        /* free for the launcher's use */
} NESlot;

/* start() will answer with ne_hv_start_done(). */
#define NE_HV_START_PENDING     1

typedef struct NEHvLauncherOps {
    int (*start)(NESlot *slot, void *opaque);
    void (*stop)(NESlot *slot, void *opaque);
    void (*cancel)(NESlot *slot, void *opaque);
} NEHvLauncherOps;

/* Delivers the reply of a command that ne_hv_execute() left pending. */
typedef void NEHvReplyFn(void *opaque, const NEReply *reply);

struct NEHv {
    /* Set by the front end before ne_hv_init() (its QOM properties). */
    uint32_t max_slots;
    uint32_t max_mem_regions;
    uint32_t first_cid;

    Object *owner;
    QTAILQ_HEAD(, NESlot) slots;
    uint32_t nr_slots;
    QSLIST_HEAD(, NECarveOut) carve_pool;   /* unused overlays */
    const NEHvLauncherOps *launcher;
    void *launcher_opaque;
    void (*raise_event)(void *opaque);
    void *event_opaque;
    NEHvReplyFn *pending_reply;         /* the START waiting for its answer */
    void *pending_opaque;

    /* Parent accesses that hit carved-out memory (test-controls counters). */
    uint32_t carve_reads;
    uint32_t carve_writes;
    /* The uid the next SLOT_ALLOC gives, 0: a new one (ne_hv_forget_slot) */
    uint64_t reuse_uid;
};

/* Checks the limits; @raise_event posts an out-of-band event. */
bool ne_hv_init(NEHv *hv, Object *owner, void (*raise_event)(void *),
                void *opaque, Error **errp);
void ne_hv_set_launcher(NEHv *hv, const NEHvLauncherOps *ops, void *opaque);

/*
 * Carries out one command; @req is the 240-byte request window.  Returns
 * true with @reply filled in, or false when the reply comes later through
 * @later(@opaque, reply), from the main loop (an ENCLAVE_START whose image
 * is read and checked in the background).  A pending command is dropped,
 * never answered, when ne_hv_free_all() runs first.
 */
bool ne_hv_execute(NEHv *hv, uint32_t type, const uint8_t *req,
                   NEReply *reply, NEHvReplyFn *later, void *opaque);
/* The launcher's answer to a start it left pending: 0 or -errno. */
void ne_hv_start_done(NESlot *slot, int rc);
void ne_hv_encode_reply(const NEReply *reply, uint8_t *buf);
const char *ne_hv_cmd_name(uint32_t type);

/*
 * Stops and frees every slot (device disabled, reset or unplugged), and
 * forgets the uid ne_hv_forget_slot() left to give.
 */
void ne_hv_free_all(NEHv *hv);
/* Frees everything, overlays included: only from the owner's finalize. */
void ne_hv_finalize(NEHv *hv);

NESlot *ne_hv_find_slot(NEHv *hv, uint64_t uid);

/* The hypervisor behind an ne-pci device (NULL if @obj is not one). */
NEHv *ne_pci_get_hv(Object *obj);

/*
 * The enclave of slot @uid stopped on its own: a RUNNING slot becomes
 * STOPPED (the launcher's stop() is called), and an event is raised.
 * @uid 0 raises an event about no slot.  Returns 0, or -NE_ERRNO_ENOENT
 * (no event) when there is no such slot.
 */
int ne_hv_enclave_exited(NEHv *hv, uint64_t uid);

/*
 * Test controls: the device loses slot @uid without a word (its enclave
 * stops, its memory, CPUs and CID are let go, as at SLOT_FREE; no reply,
 * no event) and gives its uid to the next successful SLOT_ALLOC (only the
 * last forgotten uid is kept).  A device that misbehaves so is what the
 * driver must survive.  Returns 0, -NE_ERRNO_ENOENT when there is no such
 * slot (uid 0 included), -NE_ERRNO_EBUSY while the launcher boots its
 * enclave (a START still queued in the device is not under way yet: it
 * answers -ENOENT).  Runs in the MMIO handler, under the BQL, as
 * ne_hv_enclave_exited() does: what stop() starts finishes in the
 * background.
 */
int ne_hv_forget_slot(NEHv *hv, uint64_t uid);

/*
 * Reads enclave memory: @addr is enclave-physical (the donated ranges
 * concatenated in donation order).  Reads the RAM itself, carve-out or
 * not.  False if [addr, addr + len) is not wholly donated.
 */
bool ne_hv_slot_read(NESlot *slot, uint64_t addr, void *buf, uint64_t len);
/* Host pointer to the RAM of one donated range (valid until SLOT_FREE). */
void *ne_hv_range_host_ptr(const NEMemRange *range);

#endif /* HW_NE_NE_HV_H */
