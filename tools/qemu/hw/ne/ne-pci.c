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
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "hw/pci/pci.h"
#include "hw/pci/msix.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "qom/object.h"
#include "trace.h"

#define TYPE_NE_PCI "ne-pci"
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

#define NE_REPLY_SIZE           72

/* Linux errno values on the wire, whatever the host's are. */
#define NE_ERRNO_ENODEV         19
#define NE_ERRNO_EOPNOTSUPP     95

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

    /* Properties. */
    uint32_t cmd_latency_us;
};

static void ne_pci_notify(NEPCIState *s, unsigned int vector)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    trace_ne_pci_irq(vector, msix_enabled(pdev));
    if (msix_enabled(pdev)) {
        msix_notify(pdev, vector);
    }
}

static void ne_pci_post_reply(NEPCIState *s, int32_t rc)
{
    memset(s->recv_data, 0, sizeof(s->recv_data));
    stl_le_p(s->recv_data, rc);
    s->evtcnt = (s->evtcnt & 0xffff0000) | ((s->evtcnt + 1) & 0xffff);
    trace_ne_pci_reply(s->cmd_type, rc, s->evtcnt & 0xffff);
    ne_pci_notify(s, NE_VEC_REPLY);
}

/* Runs on the virtual clock, outside the MMIO handler that rang the bell. */
static void ne_pci_cmd_complete(void *opaque)
{
    NEPCIState *s = opaque;

    if (!s->cmd_busy) {
        return;
    }
    s->cmd_busy = false;
    if (s->enable != NE_ENABLE_ON) {
        ne_pci_post_reply(s, -NE_ERRNO_ENODEV);
        return;
    }
    ne_pci_post_reply(s, -NE_ERRNO_EOPNOTSUPP);
}

static void ne_pci_cmd_submit(NEPCIState *s, uint32_t type)
{
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);

    if (s->cmd_busy) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "ne-pci: command %u written while command %u is in "
                      "flight; ignored\n", type, s->cmd_type);
        return;
    }
    s->cmd_busy = true;
    s->cmd_type = type;
    memcpy(s->cmd_req, s->send_data, sizeof(s->cmd_req));
    trace_ne_pci_command(type);
    timer_mod(&s->cmd_timer, now + (int64_t)s->cmd_latency_us * SCALE_US);
}

/* Disabling the device ends every enclave and abandons the command. */
static void ne_pci_disable(NEPCIState *s)
{
    timer_del(&s->cmd_timer);
    s->cmd_busy = false;
    s->enable = NE_ENABLE_OFF;
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
        val = s->evtcnt;
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
        if (val == NE_ENABLE_OFF) {
            ne_pci_disable(s);
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

static void ne_pci_realize(PCIDevice *pdev, Error **errp)
{
    NEPCIState *s = NE_PCI(pdev);
    int i;

    if (msix_init_exclusive_bar(pdev, NE_MSIX_VECTORS, NE_MSIX_BAR, errp)) {
        return;
    }
    for (i = 0; i < NE_MSIX_VECTORS; i++) {
        msix_vector_use(pdev, i);
    }

    memory_region_init_io(&s->regs, OBJECT(s), &ne_pci_reg_ops, s,
                          "ne-pci-regs", NE_REG_BAR_SIZE);
    pci_register_bar(pdev, NE_REG_BAR, PCI_BASE_ADDRESS_SPACE_MEMORY,
                     &s->regs);
    timer_init_ns(&s->cmd_timer, QEMU_CLOCK_VIRTUAL, ne_pci_cmd_complete, s);
}

static void ne_pci_exit(PCIDevice *pdev)
{
    NEPCIState *s = NE_PCI(pdev);

    ne_pci_disable(s);
    msix_uninit_exclusive_bar(pdev);
}

static void ne_pci_reset(DeviceState *dev)
{
    NEPCIState *s = NE_PCI(dev);
    int i;

    ne_pci_disable(s);
    s->version = NE_VERSION_MAX;
    s->evtcnt = 0;
    memset(s->send_data, 0, sizeof(s->send_data));
    memset(s->recv_data, 0, sizeof(s->recv_data));
    for (i = 0; i < NE_MSIX_VECTORS; i++) {
        msix_vector_use(PCI_DEVICE(s), i);
    }
}

static Property ne_pci_properties[] = {
    DEFINE_PROP_UINT32("cmd-latency-us", NEPCIState, cmd_latency_us, 50),
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
