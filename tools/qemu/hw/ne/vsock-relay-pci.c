/*
 * vsock relay: the virtio-pci proxy, used by the parent VM (q35).
 *
 *   -device vsock-relay-pci,guest-cid=3,listen=/path/to/relay.sock
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/module.h"
#include "hw/qdev-properties.h"
#include "hw/virtio/virtio-pci.h"
#include "hw/ne/vsock-relay.h"
#include "qom/object.h"

#define TYPE_VSOCK_RELAY_PCI "vsock-relay-pci-base"
OBJECT_DECLARE_SIMPLE_TYPE(VsockRelayPCI, VSOCK_RELAY_PCI)

struct VsockRelayPCI {
    VirtIOPCIProxy parent_obj;
    VsockRelay vdev;
};

static Property relay_pci_properties[] = {
    /* one vector per queue (rx, tx, event) plus the config change */
    DEFINE_PROP_UINT32("vectors", VirtIOPCIProxy, nvectors, 4),
    DEFINE_PROP_END_OF_LIST(),
};

static void relay_pci_realize(VirtIOPCIProxy *vpci_dev, Error **errp)
{
    VsockRelayPCI *dev = VSOCK_RELAY_PCI(vpci_dev);

    /* a new device: no legacy interface to keep compatible */
    virtio_pci_force_virtio_1(vpci_dev);
    qdev_realize(DEVICE(&dev->vdev), BUS(&vpci_dev->bus), errp);
}

static void relay_pci_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    VirtioPCIClass *k = VIRTIO_PCI_CLASS(klass);
    PCIDeviceClass *pcidev_k = PCI_DEVICE_CLASS(klass);

    k->realize = relay_pci_realize;
    /* the ne-pci launcher keeps pointers to its router while enclaves run */
    dc->hotpluggable = false;
    set_bit(DEVICE_CATEGORY_NETWORK, dc->categories);
    device_class_set_props(dc, relay_pci_properties);
    pcidev_k->vendor_id = PCI_VENDOR_ID_REDHAT_QUMRANET;
    pcidev_k->device_id = PCI_DEVICE_ID_VIRTIO_VSOCK;
    pcidev_k->revision = 0x00;
    pcidev_k->class_id = PCI_CLASS_COMMUNICATION_OTHER;
}

static void relay_pci_instance_init(Object *obj)
{
    VsockRelayPCI *dev = VSOCK_RELAY_PCI(obj);

    virtio_instance_init_common(obj, &dev->vdev, sizeof(dev->vdev),
                                TYPE_VSOCK_RELAY);
}

static const VirtioPCIDeviceTypeInfo relay_pci_info = {
    .base_name = TYPE_VSOCK_RELAY_PCI,
    .generic_name = "vsock-relay-pci",
    .instance_size = sizeof(VsockRelayPCI),
    .instance_init = relay_pci_instance_init,
    .class_init = relay_pci_class_init,
};

static void relay_pci_register(void)
{
    virtio_pci_types_register(&relay_pci_info);
}

type_init(relay_pci_register)
