/*
 * Nitro Enclaves PCI device (1d0f:e4c1): the control plane of the emulated
 * Nitro hypervisor, as a parent VM sees it.
 *
 * BAR 0 holds the MSI-X table (vector 0: command reply, vector 1: event),
 * BAR 3 the registers of ../shared/spec/ne-device-protocol.md:
 *
 *   0x000  u8   ENABLE     0 = off, 1 = on; reads back the current state
 *   0x002  u16  VERSION    the driver writes the version it wants and reads
 *                          back the one the device speaks
 *   0x004  u32  COMMAND    write-only doorbell: the command type
 *   0x00c  u32  EVTCNT     15:0 replies posted, 31:16 events raised
 *   0x010  240  SEND_DATA  request payload
 *   0x100  240  RECV_DATA  reply payload (72 bytes used)
 *
 * BAR 2 (only with test-controls=on) holds the test controls documented in
 * include/hw/ne/ne-testctl.h.  What each command does is ne-hv.c's business;
 * this file rings it in, completes it later on the virtual clock (one
 * command in flight, as on the real device) and posts the reply.
 * ENABLE = 0 (or a device reset) abandons the command in flight and stops
 * and frees every slot.  Commands rung while disabled answer -ENODEV.
 *
 * Properties: cmd-latency-us (50; virtual time from doorbell to reply),
 * max-slots (8), max-mem-regions (256; ranges per slot, the SLOT_ALLOC
 * reply's mem_regions: what the upstream driver's documentation assumes,
 * 512 MiB donated as 2 MiB regions), first-cid (16; where CID 0 = "choose"
 * starts), test-controls (off; BAR 2), reply-counter (on; off: EVTCNT
 * always reads 0, for drivers that must not depend on it), relay (a link
 * to the parent's vsock-relay-device, which enclaves are attached to;
 * needed with boot-enclaves=on), enclave-eif-max (1G; the largest enclave
 * image ENCLAVE_START reads out of the donated memory: a larger one is
 * refused with -ENOEXEC from its section table, before any of it is
 * copied, checked or decompressed), enclave-log-dir (none; where each
 * enclave's console is logged, enclave-<CID>.log) and enclave-logs-max
 * (32; the logs kept there, ne-enclave-log.h).
 *
 * A machine has at most one ne-pci: the hypervisor it emulates owns the
 * machine's memory, and a second one would donate the same pages again.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/pci/pci.h"
#include "hw/pci/msix.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "qom/object.h"
#include "hw/ne/ne-testctl.h"
#include "hw/ne/vsock-relay.h"
#include "ne-eif.h"
#include "ne-enclave-log.h"
#include "ne-hv.h"
#include "ne-launcher.h"
#include "trace.h"

OBJECT_DECLARE_SIMPLE_TYPE(NEPCIState, NE_PCI)

#define NE_PCI_VENDOR_ID        0x1d0f
#define NE_PCI_DEVICE_ID        0xe4c1

#define NE_MSIX_BAR             0
#define NE_REG_BAR              3
#define NE_REG_BAR_SIZE         0x1000
#define NE_MSIX_VECTORS         2
#define NE_VEC_REPLY            0
#define NE_VEC_EVENT            1

#define NE_REG_ENABLE           0x000
#define NE_REG_VERSION          0x002
#define NE_REG_COMMAND          0x004
#define NE_REG_EVTCNT           0x00c
#define NE_REG_SEND_DATA        0x010
#define NE_REG_RECV_DATA        0x100
#define NE_DATA_SIZE            240

#define NE_ENABLE_OFF           0x00
#define NE_ENABLE_ON            0x01
#define NE_VERSION_MAX          0x0001

/* A fault armed through the test controls, for the next "left" commands. */
typedef struct NEFaultKnob {
    uint32_t left;
    uint32_t type;
    uint32_t value;
} NEFaultKnob;

typedef struct NETestCtl {
    NEFaultKnob fail;
    NEFaultKnob delay;
    NEFaultKnob noreply;
    bool stuck;                 /* STUCK: the next ENABLE = 0 is ignored */
    bool off_stays;             /* OFF_STAYS: the next ENABLE = 1 too */
    uint64_t event_slot;
    int32_t event_status;
    uint32_t cmds_total;
    uint32_t cmds_ignored;
    uint32_t replies;
    uint32_t events;
    uint32_t faults_fired;
    uint32_t cmd_count[NE_TESTCTL_CMD_TYPES];
} NETestCtl;

struct NEPCIState {
    PCIDevice parent_obj;

    MemoryRegion regs;
    QEMUTimer cmd_timer;

    /* Registers. */
    uint8_t enable;
    uint16_t version;
    uint32_t evtcnt;
    uint8_t send_data[NE_DATA_SIZE];
    uint8_t recv_data[NE_DATA_SIZE];

    /* The command in flight: its type and a snapshot of its request. */
    bool cmd_busy;
    uint32_t cmd_type;
    uint8_t cmd_req[NE_DATA_SIZE];
    bool cmd_forced;            /* FAIL knob: answer cmd_forced_rc */
    int32_t cmd_forced_rc;

    NEHv hv;

    MemoryRegion testctl_bar;
    NETestCtl tc;

    NELauncher *launcher;       /* NULL with boot-enclaves=off */
    VsockRelay *relay;          /* link: the parent's relay (guest-cid=3) */

    /* Properties (and hv.max_slots, hv.max_mem_regions, hv.first_cid). */
    uint32_t cmd_latency_us;
    bool test_controls;
    bool reply_counter;         /* off: EVTCNT reads 0 */
    bool boot_enclaves;
    char *enclave_qemu;
    char *enclave_accel;
    char *enclave_log_dir;
    uint32_t enclave_logs_max;
    bool enclave_direct_boot;
    uint64_t enclave_eif_max;
    char *attestation_ca;       /* the instance CA bundle (ne-attest.h) */
    char *parent_role;          /* PCR3 */
    uint32_t attestation_renew; /* seconds between NSM leaves; 0: never */
};

static void ne_pci_notify(NEPCIState *s, unsigned int vector)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    trace_ne_pci_irq(vector, msix_enabled(pdev));
    if (msix_enabled(pdev)) {
        msix_notify(pdev, vector);
    }
}

static void ne_pci_post_reply(NEPCIState *s, const NEReply *reply)
{
    memset(s->recv_data, 0, sizeof(s->recv_data));
    ne_hv_encode_reply(reply, s->recv_data);
    s->evtcnt = (s->evtcnt & 0xffff0000) | ((s->evtcnt + 1) & 0xffff);
    s->tc.replies++;
    trace_ne_pci_reply(s->cmd_type, ne_hv_cmd_name(s->cmd_type), reply->rc,
                       reply->slot_uid, s->evtcnt & 0xffff);
    ne_pci_notify(s, NE_VEC_REPLY);
}

/* Out-of-band event: EVTCNT[31:16] goes up and vector 1 fires. */
static void ne_pci_raise_event(void *opaque)
{
    NEPCIState *s = opaque;

    s->evtcnt = (s->evtcnt & 0xffff) | ((s->evtcnt + 0x10000) & 0xffff0000);
    s->tc.events++;
    trace_ne_pci_event(s->evtcnt >> 16);
    ne_pci_notify(s, NE_VEC_EVENT);
}

/*
 * The answer to a command ne_hv_execute() left pending (an ENCLAVE_START
 * whose image is checked in the background), from a bottom half.  A device
 * disabled or reset meanwhile dropped the command, and the slot with it.
 */
static void ne_pci_cmd_answer(void *opaque, const NEReply *reply)
{
    NEPCIState *s = opaque;

    if (!s->cmd_busy) {
        return;
    }
    s->cmd_busy = false;
    ne_pci_post_reply(s, reply);
}

/* Runs on the virtual clock, outside the MMIO handler that rang the bell. */
static void ne_pci_cmd_complete(void *opaque)
{
    NEPCIState *s = opaque;
    NEReply reply = { 0 };

    if (!s->cmd_busy) {
        return;
    }
    if (s->enable != NE_ENABLE_ON) {
        reply.rc = -NE_ERRNO_ENODEV;
    } else if (s->cmd_forced) {
        reply.rc = s->cmd_forced_rc;
    } else if (!ne_hv_execute(&s->hv, s->cmd_type, s->cmd_req, &reply,
                              ne_pci_cmd_answer, s)) {
        /* still in flight: ne_pci_cmd_answer() posts the reply */
        s->cmd_forced = false;
        return;
    }
    s->cmd_busy = false;
    s->cmd_forced = false;
    ne_pci_post_reply(s, &reply);
}

/* Consumes one firing of @knob if it is armed for commands of @type. */
static bool ne_pci_knob_fires(NEPCIState *s, NEFaultKnob *knob,
                              const char *name, uint32_t type)
{
    if (!knob->left ||
        (knob->type != NE_TESTCTL_ANY_TYPE && knob->type != type)) {
        return false;
    }
    knob->left--;
    s->tc.faults_fired++;
    trace_ne_pci_fault(name, type, knob->value, knob->left);
    return true;
}

static void ne_pci_count_cmd(NEPCIState *s, uint32_t type)
{
    s->tc.cmds_total++;
    s->tc.cmd_count[MIN(type, NE_TESTCTL_CMD_TYPES - 1)]++;
}

static void ne_pci_cmd_submit(NEPCIState *s, uint32_t type)
{
    int64_t delay_ns = (int64_t)s->cmd_latency_us * SCALE_US;

    if (s->cmd_busy) {
        s->tc.cmds_ignored++;
        qemu_log_mask(LOG_GUEST_ERROR,
                      "ne-pci: command %u written while command %u is in "
                      "flight; ignored\n", type, s->cmd_type);
        trace_ne_pci_command_ignored(type, s->cmd_type);
        return;
    }
    s->cmd_busy = true;
    s->cmd_type = type;
    s->cmd_forced = false;
    memcpy(s->cmd_req, s->send_data, sizeof(s->cmd_req));
    ne_pci_count_cmd(s, type);
    trace_ne_pci_command(type, ne_hv_cmd_name(type), ldq_le_p(s->cmd_req),
                         ldq_le_p(s->cmd_req + 8), ldq_le_p(s->cmd_req + 16));

    /* A hung device: the command stays in flight until disabled. */
    if (ne_pci_knob_fires(s, &s->tc.noreply, "noreply", type)) {
        return;
    }
    if (ne_pci_knob_fires(s, &s->tc.fail, "fail", type)) {
        s->cmd_forced = true;
        s->cmd_forced_rc = (int32_t)s->tc.fail.value;
    }
    if (ne_pci_knob_fires(s, &s->tc.delay, "delay", type)) {
        delay_ns += (int64_t)s->tc.delay.value * SCALE_MS;
    }
    timer_mod(&s->cmd_timer,
              qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + delay_ns);
}

/* Disabling the device ends every enclave and abandons the command. */
static void ne_pci_disable(NEPCIState *s)
{
    timer_del(&s->cmd_timer);
    s->cmd_busy = false;
    s->cmd_forced = false;
    s->enable = NE_ENABLE_OFF;
    ne_hv_free_all(&s->hv);
}

static uint64_t ne_pci_read(void *opaque, hwaddr addr, unsigned size)
{
    NEPCIState *s = opaque;
    uint64_t val = 0;

    if (addr == NE_REG_ENABLE && size == 1) {
        val = s->enable;
    } else if (addr == NE_REG_VERSION && size == 2) {
        val = s->version;
    } else if (addr == NE_REG_EVTCNT && size == 4) {
        /* reply-counter=off: a device whose EVTCNT never moves. */
        val = s->reply_counter ? s->evtcnt : 0;
    } else if (addr >= NE_REG_SEND_DATA &&
               addr + size <= NE_REG_SEND_DATA + NE_DATA_SIZE) {
        val = ldn_le_p(s->send_data + addr - NE_REG_SEND_DATA, size);
    } else if (addr >= NE_REG_RECV_DATA &&
               addr + size <= NE_REG_RECV_DATA + NE_DATA_SIZE) {
        val = ldn_le_p(s->recv_data + addr - NE_REG_RECV_DATA, size);
    } else {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "ne-pci: read of size %u at 0x%" HWADDR_PRIx
                      " is not a register access\n", size, addr);
        val = 0;
    }
    trace_ne_pci_mmio_read(addr, size, val);
    return val;
}

static void ne_pci_write(void *opaque, hwaddr addr, uint64_t val,
                         unsigned size)
{
    NEPCIState *s = opaque;

    trace_ne_pci_mmio_write(addr, size, val);
    if (addr == NE_REG_ENABLE && size == 1) {
        if (val == NE_ENABLE_OFF && s->tc.stuck) {
            /* A device that does not turn off: nothing changes. */
            s->tc.stuck = false;
            s->tc.faults_fired++;
            trace_ne_pci_fault("stuck", 0, 0, 0);
        } else if (val == NE_ENABLE_OFF) {
            ne_pci_disable(s);
        } else if (val == NE_ENABLE_ON && s->tc.off_stays) {
            /* A device that does not turn on again: nothing changes. */
            s->tc.off_stays = false;
            s->tc.faults_fired++;
            trace_ne_pci_fault("off-stays", 0, 0, 0);
        } else if (val == NE_ENABLE_ON) {
            s->enable = NE_ENABLE_ON;
        } else {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "ne-pci: ENABLE value 0x%" PRIx64 " ignored\n", val);
        }
    } else if (addr == NE_REG_VERSION && size == 2) {
        /* Answer with a version the device speaks; a mismatch tells no. */
        s->version = (val >= 1 && val <= NE_VERSION_MAX) ? val : NE_VERSION_MAX;
    } else if (addr == NE_REG_COMMAND && size == 4) {
        ne_pci_cmd_submit(s, val);
    } else if (addr >= NE_REG_SEND_DATA &&
               addr + size <= NE_REG_SEND_DATA + NE_DATA_SIZE) {
        stn_le_p(s->send_data + addr - NE_REG_SEND_DATA, size, val);
    } else {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "ne-pci: write of size %u at 0x%" HWADDR_PRIx
                      " is not a register access; ignored\n", size, addr);
    }
}

static const MemoryRegionOps ne_pci_reg_ops = {
    .read = ne_pci_read,
    .write = ne_pci_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
};

/* ---- test controls (BAR 2, test-controls=on only) ----------------------- */

static NEFaultKnob *ne_testctl_knob(NEPCIState *s, hwaddr addr)
{
    switch (addr & ~0xfULL) {
    case NE_TESTCTL_FAIL_ARM:
        return &s->tc.fail;
    case NE_TESTCTL_DELAY_ARM:
        return &s->tc.delay;
    case NE_TESTCTL_NOREPLY_ARM:
        return &s->tc.noreply;
    default:
        return NULL;
    }
}

static bool ne_testctl_read32(NEPCIState *s, hwaddr addr, uint32_t *val)
{
    NEFaultKnob *knob = ne_testctl_knob(s, addr);

    if (knob && (addr & 0xf) <= 8) {
        *val = (addr & 0xf) == 0 ? knob->left :
               (addr & 0xf) == 4 ? knob->type : knob->value;
        return true;
    }
    if (addr >= NE_TESTCTL_CMD_COUNT_BASE &&
        addr < NE_TESTCTL_CMD_COUNT(NE_TESTCTL_CMD_TYPES)) {
        *val = s->tc.cmd_count[(addr - NE_TESTCTL_CMD_COUNT_BASE) / 4];
        return true;
    }
    switch (addr) {
    case NE_TESTCTL_MAGIC:
        *val = NE_TESTCTL_MAGIC_VALUE;
        return true;
    case NE_TESTCTL_LAYOUT:
        *val = NE_TESTCTL_LAYOUT_VERSION;
        return true;
    case NE_TESTCTL_EVENT_SLOT:
        *val = s->tc.event_slot;
        return true;
    case NE_TESTCTL_EVENT_SLOT + 4:
        *val = s->tc.event_slot >> 32;
        return true;
    case NE_TESTCTL_EVENT_STATUS:
        *val = s->tc.event_status;
        return true;
    case NE_TESTCTL_STUCK_ARM:
        *val = s->tc.stuck;
        return true;
    case NE_TESTCTL_OFF_STAYS_ARM:
        *val = s->tc.off_stays;
        return true;
    case NE_TESTCTL_CMDS_TOTAL:
        *val = s->tc.cmds_total;
        return true;
    case NE_TESTCTL_CMDS_IGNORED:
        *val = s->tc.cmds_ignored;
        return true;
    case NE_TESTCTL_REPLIES:
        *val = s->tc.replies;
        return true;
    case NE_TESTCTL_EVENTS:
        *val = s->tc.events;
        return true;
    case NE_TESTCTL_FAULTS_FIRED:
        *val = s->tc.faults_fired;
        return true;
    case NE_TESTCTL_CARVE_READS:
        *val = s->hv.carve_reads;
        return true;
    case NE_TESTCTL_CARVE_WRITES:
        *val = s->hv.carve_writes;
        return true;
    case NE_TESTCTL_SLOTS:
        *val = s->hv.nr_slots;
        return true;
    case NE_TESTCTL_COUNTERS_RESET:
        *val = 0;
        return true;
    default:
        return false;
    }
}

static void ne_testctl_reset_counters(NEPCIState *s)
{
    s->tc.cmds_total = 0;
    s->tc.cmds_ignored = 0;
    s->tc.replies = 0;
    s->tc.events = 0;
    s->tc.faults_fired = 0;
    memset(s->tc.cmd_count, 0, sizeof(s->tc.cmd_count));
    s->hv.carve_reads = 0;
    s->hv.carve_writes = 0;
}

static bool ne_testctl_write32(NEPCIState *s, hwaddr addr, uint32_t val)
{
    NEFaultKnob *knob = ne_testctl_knob(s, addr);

    if (knob && (addr & 0xf) <= 8) {
        if ((addr & 0xf) == 0) {
            knob->left = val;
        } else if ((addr & 0xf) == 4) {
            knob->type = val;
        } else {
            knob->value = val;
        }
        return true;
    }
    switch (addr) {
    case NE_TESTCTL_EVENT_SLOT:
        s->tc.event_slot = deposit64(s->tc.event_slot, 0, 32, val);
        return true;
    case NE_TESTCTL_EVENT_SLOT + 4:
        s->tc.event_slot = deposit64(s->tc.event_slot, 32, 32, val);
        return true;
    case NE_TESTCTL_EVENT_RAISE:
        if (val == 1) {
            s->tc.event_status = ne_hv_enclave_exited(&s->hv,
                                                      s->tc.event_slot);
        }
        return true;
    case NE_TESTCTL_FORGET_SLOT:
        if (val == 1) {
            s->tc.event_status = ne_hv_forget_slot(&s->hv, s->tc.event_slot);
        }
        return true;
    case NE_TESTCTL_STUCK_ARM:
        s->tc.stuck = val != 0;
        return true;
    case NE_TESTCTL_OFF_STAYS_ARM:
        s->tc.off_stays = val != 0;
        return true;
    case NE_TESTCTL_COUNTERS_RESET:
        if (val == 1) {
            ne_testctl_reset_counters(s);
        }
        return true;
    default:
        return false;
    }
}

static uint64_t ne_testctl_read(void *opaque, hwaddr addr, unsigned size)
{
    NEPCIState *s = opaque;
    uint32_t lo = 0, hi = 0;
    uint64_t val = 0;

    if (size == 4 && ne_testctl_read32(s, addr, &lo)) {
        val = lo;
    } else if (size == 8 && addr == NE_TESTCTL_EVENT_SLOT) {
        ne_testctl_read32(s, addr, &lo);
        ne_testctl_read32(s, addr + 4, &hi);
        val = deposit64(lo, 32, 32, hi);
    } else {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "ne-pci: test-controls read of size %u at 0x%"
                      HWADDR_PRIx " is not a register access\n", size, addr);
    }
    trace_ne_pci_testctl_read(addr, size, val);
    return val;
}

static void ne_testctl_write(void *opaque, hwaddr addr, uint64_t val,
                             unsigned size)
{
    NEPCIState *s = opaque;

    trace_ne_pci_testctl_write(addr, size, val);
    if (size == 4 && ne_testctl_write32(s, addr, val)) {
        return;
    }
    if (size == 8 && addr == NE_TESTCTL_EVENT_SLOT) {
        s->tc.event_slot = val;
        return;
    }
    qemu_log_mask(LOG_GUEST_ERROR,
                  "ne-pci: test-controls write of size %u at 0x%"
                  HWADDR_PRIx " is not a register access; ignored\n",
                  size, addr);
}

static const MemoryRegionOps ne_testctl_ops = {
    .read = ne_testctl_read,
    .write = ne_testctl_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
};

/* The machine's one ne-pci, or NULL (realize and exit run under the BQL). */
static NEPCIState *ne_pci_instance;

static void ne_pci_realize(PCIDevice *pdev, Error **errp)
{
    NEPCIState *s = NE_PCI(pdev);
    int i;

    if (ne_pci_instance) {
        g_autofree char *other =
            object_get_canonical_path(OBJECT(ne_pci_instance));

        error_setg(errp, "only one ne-pci device per machine: %s is "
                   "already the machine's Nitro Enclaves device", other);
        return;
    }
    if (!ne_hv_init(&s->hv, OBJECT(s), ne_pci_raise_event, s, errp)) {
        return;
    }
    if (s->boot_enclaves && (!s->relay || !s->relay->router)) {
        error_setg(errp, "boot-enclaves=on needs relay=<the parent's "
                   "vsock-relay-device, guest-cid=3>");
        return;
    }
    if (s->boot_enclaves) {
        NELauncherConfig cfg = {
            .router = s->relay->router,
            .qemu = s->enclave_qemu,
            .accel = s->enclave_accel ? s->enclave_accel : "tcg",
            .log_dir = s->enclave_log_dir,
            .logs_max = s->enclave_logs_max,
            .direct_boot = s->enclave_direct_boot,
            .eif_max = s->enclave_eif_max,
            .attestation_ca = s->attestation_ca,
            .parent_role = s->parent_role,
            .attestation_renew = s->attestation_renew,
        };

        if (s->enclave_eif_max < NE_EIF_HEADER_SIZE) {
            error_setg(errp, "enclave-eif-max (%" PRIu64 " bytes) is smaller "
                       "than an EIF header (%d bytes)", s->enclave_eif_max,
                       NE_EIF_HEADER_SIZE);
            return;
        }

        s->launcher = ne_launcher_new(&s->hv, &cfg, errp);
        if (!s->launcher) {
            return;
        }
    }
    if (msix_init_exclusive_bar(pdev, NE_MSIX_VECTORS, NE_MSIX_BAR, errp)) {
        ne_launcher_free(s->launcher);
        s->launcher = NULL;
        return;
    }
    for (i = 0; i < NE_MSIX_VECTORS; i++) {
        msix_vector_use(pdev, i);
    }

    memory_region_init_io(&s->regs, OBJECT(s), &ne_pci_reg_ops, s,
                          "ne-pci-regs", NE_REG_BAR_SIZE);
    pci_register_bar(pdev, NE_REG_BAR, PCI_BASE_ADDRESS_SPACE_MEMORY,
                     &s->regs);
    if (s->test_controls) {
        memory_region_init_io(&s->testctl_bar, OBJECT(s), &ne_testctl_ops, s,
                              "ne-pci-testctl", NE_TESTCTL_BAR_SIZE);
        pci_register_bar(pdev, NE_TESTCTL_BAR, PCI_BASE_ADDRESS_SPACE_MEMORY,
                         &s->testctl_bar);
    }
    timer_init_ns(&s->cmd_timer, QEMU_CLOCK_VIRTUAL, ne_pci_cmd_complete, s);
    ne_pci_instance = s;
}

static void ne_pci_exit(PCIDevice *pdev)
{
    NEPCIState *s = NE_PCI(pdev);
    int i;

    ne_pci_disable(s);
    timer_del(&s->cmd_timer);
    ne_launcher_free(s->launcher);
    s->launcher = NULL;
    for (i = 0; i < NE_MSIX_VECTORS; i++) {
        msix_vector_unuse(pdev, i);
    }
    msix_uninit_exclusive_bar(pdev);
    if (ne_pci_instance == s) {
        ne_pci_instance = NULL;
    }
}

NEHv *ne_pci_get_hv(Object *obj)
{
    NEPCIState *s = (NEPCIState *)object_dynamic_cast(obj, TYPE_NE_PCI);

    return s ? &s->hv : NULL;
}

/* Overlays go only when nothing can refer to the device any more. */
static void ne_pci_instance_finalize(Object *obj)
{
    NEPCIState *s = NE_PCI(obj);

    if (s->hv.owner) {
        ne_hv_finalize(&s->hv);
    }
}

/*
 * The vectors stay in use from realize to exit: msix_reset() (which the PCI
 * core runs on a reset) clears the table and the pending bits, not the use
 * counts, so using them again here would only grow the counts.
 */
static void ne_pci_reset(DeviceState *dev)
{
    NEPCIState *s = NE_PCI(dev);

    ne_pci_disable(s);
    s->version = NE_VERSION_MAX;
    s->evtcnt = 0;
    memset(s->send_data, 0, sizeof(s->send_data));
    memset(s->recv_data, 0, sizeof(s->recv_data));
    memset(&s->tc, 0, sizeof(s->tc));
    ne_testctl_reset_counters(s);
}

static Property ne_pci_properties[] = {
    DEFINE_PROP_UINT32("cmd-latency-us", NEPCIState, cmd_latency_us, 50),
    DEFINE_PROP_UINT32("max-slots", NEPCIState, hv.max_slots, 8),
    DEFINE_PROP_UINT32("max-mem-regions", NEPCIState, hv.max_mem_regions,
                       256),
    DEFINE_PROP_UINT32("first-cid", NEPCIState, hv.first_cid, 16),
    DEFINE_PROP_BOOL("test-controls", NEPCIState, test_controls, false),
    DEFINE_PROP_BOOL("reply-counter", NEPCIState, reply_counter, true),
    /* off: ENCLAVE_START only keeps the books (the driver's own tests) */
    DEFINE_PROP_BOOL("boot-enclaves", NEPCIState, boot_enclaves, true),
    DEFINE_PROP_LINK("relay", NEPCIState, relay, TYPE_VSOCK_RELAY,
                     VsockRelay *),
    DEFINE_PROP_STRING("enclave-qemu", NEPCIState, enclave_qemu),
    DEFINE_PROP_STRING("enclave-accel", NEPCIState, enclave_accel),
    DEFINE_PROP_STRING("enclave-log-dir", NEPCIState, enclave_log_dir),
    DEFINE_PROP_UINT32("enclave-logs-max", NEPCIState, enclave_logs_max,
                       NE_ENCLAVE_LOGS_MAX_DEFAULT),
    /* boot the ELF inside the image's bzImage through PVH (ne-kernel.h) */
    DEFINE_PROP_BOOL("enclave-direct-boot", NEPCIState, enclave_direct_boot,
                     true),
    DEFINE_PROP_STRING("attestation-ca", NEPCIState, attestation_ca),
    DEFINE_PROP_STRING("parent-role", NEPCIState, parent_role),
    /* AWS's leaves are minutes old when they sign: renew every 5 minutes */
    DEFINE_PROP_UINT32("attestation-renew", NEPCIState, attestation_renew,
                       300),
    DEFINE_PROP_SIZE("enclave-eif-max", NEPCIState, enclave_eif_max,
                     NE_EIF_MAX_DEFAULT),
    DEFINE_PROP_END_OF_LIST(),
};

/* Enclaves are sibling processes: a parent with them cannot migrate. */
static const VMStateDescription ne_pci_vmstate = {
    .name = TYPE_NE_PCI,
    .unmigratable = 1,
};

static void ne_pci_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = ne_pci_realize;
    k->exit = ne_pci_exit;
    k->vendor_id = NE_PCI_VENDOR_ID;
    k->device_id = NE_PCI_DEVICE_ID;
    k->revision = 0x01;
    k->class_id = PCI_CLASS_SYSTEM_OTHER;
    dc->desc = "Nitro Enclaves device (emulated Nitro hypervisor)";
    dc->reset = ne_pci_reset;
    dc->vmsd = &ne_pci_vmstate;
    device_class_set_props(dc, ne_pci_properties);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo ne_pci_info = {
    .name = TYPE_NE_PCI,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(NEPCIState),
    .instance_finalize = ne_pci_instance_finalize,
    .class_init = ne_pci_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { },
    },
};

static void ne_pci_register_types(void)
{
    type_register_static(&ne_pci_info);
}

type_init(ne_pci_register_types)
