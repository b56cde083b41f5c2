/*
 * The NSM's boot record: what the hypervisor (the parent's QEMU, ne-pci)
 * hands to the NSM of one enclave VM (the child QEMU) at ENCLAVE_START.
 *
 * It carries the PCRs the hypervisor measured from the image it read
 * (0, 1, 2 and, for a signed image, 8) and took from its own properties
 * (3 and 4), the enclave's debug flag, and the signing identity issued for
 * this one enclave: the leaf's private key, the leaf and the chain above
 * it, and the module id.  The child gets it as a sealed memory file; it is
 * one CBOR map, loaded with the NSM's bounded loader:
 *
 *   { "pcrs": { index: bytes(48), ... },  "debug": bool,
 *     "module_id": text,  "key": bytes (PKCS#8 DER),
 *     "certificate": bytes (DER),  "cabundle": [ bytes (DER), ... ] }
 *
 * The last four are absent for an NSM that cannot sign (a hypervisor
 * without a CA): its Attestation answers InternalError.
 *
 * Renewal.  A leaf lasts 3 hours (AWS's) and a document is only signed
 * inside its validity, so the hypervisor sends a running enclave's NSM a
 * fresh leaf every few minutes, as a renewal record: the same map with no
 * PCR ("pcrs" empty: the enclave's measurements never change after boot)
 * and the identity of the same module id.
 *
 * Plain C with libcbor and OpenSSL, no QEMU header: unit-tested on the
 * host with the rest of the NSM core.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_NSM_BOOT_H
#define HW_NE_NE_NSM_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "ne-nsm-core.h"

/* Far more than a record holds (7 KiB of certificates, six PCRs, a key). */
#define NE_NSM_BOOT_RECORD_MAX  (16 * 1024)

struct ne_nsm_boot_record {
    uint8_t pcr[NE_NSM_NR_PCRS][NE_NSM_PCR_SIZE];
    uint32_t pcr_given;                 /* bit i: pcr[i] was measured */
    bool debug;
    struct ne_nsm_identity identity;    /* owned: see _clear() */
};

/*
 * The record as CBOR, malloc()ed, its length in *@len; NULL when out of
 * memory or when @r's key cannot be written out.
 */
uint8_t *ne_nsm_boot_record_encode(const struct ne_nsm_boot_record *r,
                                   size_t *len);

/*
 * Reads a record written by _encode() into @r (cleared first; the caller
 * clears it after use).  False, with *@why set, for anything else.  The
 * identity is not checked here: ne_nsm_boot_record_apply() does it.
 */
bool ne_nsm_boot_record_decode(const uint8_t *buf, size_t len,
                               struct ne_nsm_boot_record *r,
                               const char **why);

/* What every boot record measures: the image (0, 1, 2) and the instance */
#define NE_NSM_BOOT_PCRS_REQUIRED   (1u << 0 | 1u << 1 | 1u << 2 | 1u << 4)

/*
 * Boots @nsm with @r's PCRs (locking 0-15) and gives it @r's identity.
 * False for a record without NE_NSM_BOOT_PCRS_REQUIRED.
 */
bool ne_nsm_boot_record_apply(struct ne_nsm *nsm,
                              const struct ne_nsm_boot_record *r,
                              const char **why);

/*
 * Gives @nsm, booted and signing, the identity of the renewal record @r.
 * False, with *@why set and the identity kept, for a record that carries
 * PCRs or no identity, or whose module id is not @nsm's.
 */
bool ne_nsm_boot_record_renew(struct ne_nsm *nsm,
                              const struct ne_nsm_boot_record *r,
                              const char **why);

/* Frees what _decode() allocated, and the key; @r is zeroed. */
void ne_nsm_boot_record_clear(struct ne_nsm_boot_record *r);

#endif /* HW_NE_NE_NSM_BOOT_H */
