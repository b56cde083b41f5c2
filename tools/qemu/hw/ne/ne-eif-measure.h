/*
 * The measurements of an enclave image (shared/spec/attestation.md section
 * 3, enclave-launch.md 1.6): what the hypervisor puts in the NSM's PCR0,
 * 1, 2 and, for a signed image, 8, computed from the very bytes it boots.
 *
 * The EIF reader (ne-eif.c) feeds every section it copies, in the order it
 * reads them, in chunks:
 *   PCR0 = H(Z || H(kernel || cmdline || ramdisk 1 || ... || ramdisk n))
 *   PCR1 = H(Z || H(kernel || cmdline || ramdisk 1))
 *   PCR2 = H(Z || H(ramdisk 2 || ... || ramdisk n))
 *   PCR8 = H(Z || H(DER of the signing certificate)), the certificate
 *          being the PEM in the signature section's first entry, once
 *          the section's signature is verified over PCR0 (ne-eif-sig.h)
 * with H = SHA-384 and Z 48 zero bytes.  Metadata is not measured.  An
 * image has at most one signature section.
 *
 * Plain C with OpenSSL and libcbor, no QEMU header: unit-tested on the host
 * against nectl's describe-eif.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_EIF_MEASURE_H
#define HW_NE_NE_EIF_MEASURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NE_EIF_PCR_SIZE         48
/* A signature section holds a certificate and a COSE_Sign1: a few KiB. */
#define NE_EIF_SIGNATURE_MAX    (64 * 1024)

enum ne_eif_section_type {
    NE_EIF_SECTION_KERNEL = 1,
    NE_EIF_SECTION_CMDLINE = 2,
    NE_EIF_SECTION_RAMDISK = 3,
    NE_EIF_SECTION_SIGNATURE = 4,
    NE_EIF_SECTION_METADATA = 5,
};

struct ne_eif_pcrs {
    uint8_t pcr0[NE_EIF_PCR_SIZE];
    uint8_t pcr1[NE_EIF_PCR_SIZE];
    uint8_t pcr2[NE_EIF_PCR_SIZE];
    uint8_t pcr8[NE_EIF_PCR_SIZE];
    bool is_signed;                     /* pcr8 is meaningful */
};

struct ne_eif_measure;

/* NULL when out of memory. */
struct ne_eif_measure *ne_eif_measure_new(void);
void ne_eif_measure_free(struct ne_eif_measure *m);

/*
 * Each call below returns false with *@why saying what went wrong, a text
 * that lives as long as @m.
 */

/*
 * A new section of @type starts; its data follows in _data() calls.  A
 * second signature section is refused.
 */
bool ne_eif_measure_section(struct ne_eif_measure *m, unsigned int type,
                            const char **why);
/*
 * More data of the current section.  Fails when hashing fails, or when the
 * signature section is over NE_EIF_SIGNATURE_MAX or cannot be kept.
 */
bool ne_eif_measure_data(struct ne_eif_measure *m, const void *buf,
                         size_t len, const char **why);

/*
 * The PCRs, once every section was fed.  Fails when hashing fails, and for
 * a signed image when its signature section does not verify over its PCR0
 * (see ne-eif-sig.h): PCR8 is only ever that of a verified signer.
 */
bool ne_eif_measure_finish(struct ne_eif_measure *m, struct ne_eif_pcrs *out,
                           const char **why);

#endif /* HW_NE_NE_EIF_MEASURE_H */
