# SPDX-License-Identifier: GPL-2.0
#
# tools/qemu/devices.mak: the devices of the project's QEMU.  tools/qemu/build
# copies it to configs/devices/x86_64-softmmu/ne-kvm.mak in the QEMU tree
# and configures --without-default-devices --with-devices-x86_64=ne-kvm,
# so only these boards and devices, and what they select in QEMU's
# Kconfig, are compiled: the parent VM, the enclave VMs and the tests use
# nothing else.  A device missing here is refused by QEMU at start ("'X' is
# not a valid device model name").

# The parent VM (tools/ne-vm: -machine q35) and the enclave VMs
# (hw/ne/ne-launcher.c: -machine microvm, which selects virtio-mmio).
CONFIG_Q35=y
CONFIG_MICROVM=y

# The enclave VMs' i8042 (-device i8042: Nitro's reboot=k resets through
# it), which q35 selects too; named here for microvm's sake.
CONFIG_PCKBD=y

# The Nitro Enclaves device, which selects the vsock relay
# (vsock-relay-pci, vsock-relay-device) and the NSM (ne-nsm-device).
CONFIG_NE_PCI=y

# The parent VM's shares: virtio-9p-pci.
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_9P=y

# selftests/deb/run: the clean Debian root, a virtio-blk-pci disk.
CONFIG_VIRTIO_BLK=y

# selftests/ne_foreign_ram_test.c: an ivshmem-plain BAR (a pc-dimm comes
# with q35's DIMM).
CONFIG_IVSHMEM_DEVICE=y

# tools/qemu/tests/pvh_setup_data.py: the guest reports through
# isa-debug-exit.
CONFIG_ISA_DEBUG=y
