/*
 * The seals of every file the hypervisor hands an enclave VM (kernel,
 * initrd, the NSM's boot and renewal records): made sealable, written
 * once, then sealed before any child sees them, so that no one can change
 * them, nor unseal them.  A reader checks them before it trusts a byte.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_SEALED_FILE_H
#define HW_NE_NE_SEALED_FILE_H

#define NE_BOOT_FILE_SEALS      (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | \
                                 F_SEAL_WRITE)

#endif /* HW_NE_NE_SEALED_FILE_H */
