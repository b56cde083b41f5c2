/*
 * Direct boot of an enclave kernel.
 *
 * An EIF carries a bzImage, which under TCG spends seconds decompressing
 * itself (about 4 s for Debian's 6.1 kernel).  Like the VMMs that boot a
 * kernel directly, the launcher may instead take the ELF kernel out of the
 * bzImage, decompressing it natively, and boot it through its PVH entry
 * point (the x86/HVM direct boot ABI that QEMU implements with pvh.bin).
 * The enclave sees the same kernel, command line and ramdisks; the image
 * and its measurements are unchanged.  A kernel that this cannot handle (a
 * compression other than xz, gzip or zstd, no PVH entry, segments outside the
 * enclave's memory) boots as the bzImage it is.
 *
 * The last kernel taken out is kept, keyed by the SHA-256 of the bzImage,
 * so enclaves that boot the same image pay for the decompression once.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_KERNEL_H
#define HW_NE_NE_KERNEL_H

/* The bzImage setup header (Documentation/x86/boot.rst), byte offsets. */
#define BZ_SETUP_SECTS          0x1f1
#define BZ_MAGIC                0x202   /* "HdrS" */
#define BZ_VERSION              0x206
#define BZ_PAYLOAD_OFFSET       0x248
#define BZ_PAYLOAD_LENGTH       0x24c
#define BZ_HEADER_END           0x250
#define BZ_MIN_VERSION          0x208   /* the first with payload_offset */

#include "ne-sealed-file.h"

typedef struct NEKernelCache NEKernelCache;

NEKernelCache *ne_kernel_cache_new(void);
void ne_kernel_cache_free(NEKernelCache *c);

/*
 * A descriptor of the ELF kernel inside the bzImage @bzimage_fd, whose
 * loadable segments fit in @mem_size bytes of memory below an initrd of
 * @initrd_size bytes, or -1 (with @why set to a static string saying why)
 * when the bzImage should boot as it is.  The descriptor belongs to @c and
 * stays valid until the next call; it is sealed (NE_BOOT_FILE_SEALS),
 * waiting for that NE_SEAL_WAIT_MS at most (ne_seal_boot_file()).
 * *@cached tells whether it was already there.  A failure of the host's
 * (no memory file, no seal) is not kept: the next call tries again.
 */
int ne_kernel_direct_boot_fd(NEKernelCache *c, int bzimage_fd,
                             uint64_t mem_size, uint64_t initrd_size,
                             bool *cached, const char **why);

#endif /* HW_NE_NE_KERNEL_H */
