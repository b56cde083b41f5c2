/*
 * Reading the enclave image (EIF) out of donated memory.
 *
 * The parent writes the EIF at enclave-physical 8 MiB before ENCLAVE_START;
 * the hypervisor checks it (magic, version, architecture, section table,
 * section headers, CRC, a bzImage kernel, the signature of a signed image:
 * ne-eif-sig.h) and unpacks it into files the enclave VM boots from.  Every
 * byte is read from the parent's memory once, and the CRC, the
 * measurements and the signature check are computed over the copy that is
 * kept, so a parent that rewrites the image meanwhile cannot get an
 * unchecked byte booted.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_EIF_H
#define HW_NE_NE_EIF_H

#include "ne-hv.h"
#include "ne-eif-measure.h"

#define NE_EIF_LOAD_OFFSET      (8 * MiB)
#define NE_EIF_HEADER_SIZE      548
/* The largest image read at ENCLAVE_START, unless enclave-eif-max says. */
#define NE_EIF_MAX_DEFAULT      (1 * GiB)

typedef struct NEEifImage {
    /* memfds that take seals (the launcher seals them for the child) */
    int kernel_fd;              /* the bzImage */
    int initrd_fd;              /* every ramdisk, in order */
    char *cmdline;              /* NUL-terminated */
    uint64_t eif_size;          /* bytes from the header to the last section */
    struct ne_eif_pcrs pcrs;    /* its measurements, from the bytes kept */
} NEEifImage;

/*
 * Checks and unpacks the EIF at enclave-physical @addr of @slot.  An image
 * larger than @max_size bytes is refused from its section table, before
 * anything else of it is read.  Once *@cancel is true (set by another
 * thread; @cancel may be NULL) it stops at its next read of the image, at
 * most a chunk of 1 MiB later.  On error @img is left empty and @errp says
 * what is wrong with the image, or that it was abandoned.
 */
bool ne_eif_load(NESlot *slot, uint64_t addr, uint64_t max_size,
                 const bool *cancel, NEEifImage *img, Error **errp);
void ne_eif_release(NEEifImage *img);

#endif /* HW_NE_NE_EIF_H */
