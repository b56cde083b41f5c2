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

/* How long a seal waits out pages the kernel still holds, in ms */
#define NE_SEAL_WAIT_MS         3000

/*
 * Adds NE_BOOT_FILE_SEALS to @fd (nothing if it has them all), waiting up
 * to @wait_ms for the kernel to let go of the file's pages: F_SEAL_WRITE
 * fails with EBUSY while anything else holds a reference to one (page
 * migration and compaction hold them for a moment, longer on a loaded
 * host than the kernel's own wait of 150 ms).  Returns 0 or a negative
 * errno; *@retries (if given) counts the kernel's EBUSY refusals.
 */
int ne_seal_boot_file(int fd, unsigned int wait_ms, unsigned int *retries);

#endif /* HW_NE_NE_SEALED_FILE_H */
