/*
 * The hypervisor's half of attestation: what ne-pci gives each enclave's
 * NSM at ENCLAVE_START.
 *
 * ne-pci holds the installation's instance CA (attestation-ca=, a PEM
 * bundle made by tools/attest-ca and handed over as a descriptor, so that
 * the parent guest never sees the key) and the parent's IAM role
 * (parent-role=, PCR3; empty: none, PCR3 stays zero).  For each enclave
 * it issues a fresh leaf, and writes the NSM's boot record
 * (ne-nsm-boot.h): PCR0, 1, 2 and 8 as measured from the image it read,
 * PCR3 and PCR4 (the CA's instance id), the debug flag, and the leaf.
 * The enclave's QEMU gets the record as a sealed memory file.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_ATTEST_H
#define HW_NE_NE_ATTEST_H

#include "ne-eif-measure.h"

typedef struct NEAttest NEAttest;

/*
 * @ca_path: the instance CA bundle (a /dev/fdset/N path, or a file), or
 * NULL: enclaves then get an NSM that measures but cannot sign
 * (Attestation answers InternalError).  @parent_role may be NULL.
 */
NEAttest *ne_attest_new(const char *ca_path, const char *parent_role,
                        Error **errp);
void ne_attest_free(NEAttest *a);

/* The length of an enclave id (the 8 bytes after "-enc" in a module id) */
#define NE_ATTEST_ENCLAVE_ID_LEN    8

/* Whether @a's enclaves get a signing identity (it has a CA) */
bool ne_attest_can_sign(const NEAttest *a);

/*
 * The boot record of one enclave's NSM, as a memory file sealed against
 * any change (waiting up to @seal_wait_ms: ne_seal_boot_file()); -1 with
 * @errp set on failure.  The new enclave's id goes to @enclave_id (zeros
 * when @a cannot sign), for its renewals.  Safe on any thread.
 */
int ne_attest_boot_file(NEAttest *a, const struct ne_eif_pcrs *pcrs,
                        bool debug, uint8_t *enclave_id,
                        unsigned int seal_wait_ms, Error **errp);

/*
 * A renewal record (ne-nsm-boot.h) for the enclave @enclave_id: a fresh
 * leaf of the same module id, in a sealed memory file (one try at the
 * seals: it never waits); -1 with @errp set on failure.  Safe on any
 * thread.
 */
int ne_attest_renewal_file(NEAttest *a, const uint8_t *enclave_id,
                           Error **errp);

#endif /* HW_NE_NE_ATTEST_H */
