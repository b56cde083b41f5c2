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

/* How long the seals of one enclave's files wait out held pages, in ms */
#define NE_SEAL_WAIT_MS         3000

/*
 * Adds NE_BOOT_FILE_SEALS to @fd (nothing if it has them all), trying
 * again for about @wait_ms (0: one try) while the kernel refuses with
 * EBUSY: F_SEAL_WRITE fails so while anything else holds a reference to
 * one of the file's pages (page migration and compaction hold them for a
 * moment, longer on a loaded host than the kernel's own wait of 150 ms),
 * or for good while the file is mapped shared and writable, which the
 * files sealed here never are.  The last try may end up to 200 ms past
 * @wait_ms.  Returns 0 or a negative errno; *@retries (if given) counts
 * the kernel's EBUSY refusals.
 */
int ne_seal_boot_file(int fd, unsigned int wait_ms, unsigned int *retries);

#endif /* HW_NE_NE_SEALED_FILE_H */
