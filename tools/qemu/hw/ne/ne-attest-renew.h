/*
 * Keeping a running enclave's NSM able to sign: its leaf lasts 3 hours
 * (AWS's), so ne-pci sends the enclave VM's NSM a fresh one of the same
 * module id every few minutes (attestation-renew=, seconds), as a renewal
 * record (ne-nsm-boot.h) in a sealed memory file, over a SOCK_SEQPACKET
 * pair whose other end is the NSM's renew= descriptor: one message, one
 * descriptor, never half of either.
 *
 * Everything runs in the main loop.  A child that does not read its end
 * (stopped, or hung) has one record waiting for it and misses the others,
 * rather than blocking ne-pci; the renewal ends with the child's slot.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_ATTEST_RENEW_H
#define HW_NE_NE_ATTEST_RENEW_H

#include "ne-attest.h"

/* The longest attestation-renew=: well inside a leaf's 3 hours */
#define NE_ATTEST_RENEW_MAX_S   3600

typedef struct NEAttestRenewal NEAttestRenewal;

/*
 * Renews the leaf of the enclave @enclave_id every @period_s seconds over
 * @sock (taken: closed by _free()).  @uid names the slot in traces.
 */
NEAttestRenewal *ne_attest_renewal_new(NEAttest *a, const uint8_t *enclave_id,
                                       int sock, uint32_t period_s,
                                       uint64_t uid);
void ne_attest_renewal_free(NEAttestRenewal *r);

#endif /* HW_NE_NE_ATTEST_RENEW_H */
