/*
 * The Nitro Secure Module (NSM) without its device: one CBOR request in,
 * one CBOR response out (shared/spec/attestation.md sections 1-4).  A
 * virtio device wraps it; this half is plain C with libcbor and OpenSSL
 * and no QEMU header, so that it is unit-tested on the host.
 *
 * Lifecycle, for the device:
 *   ne_nsm_init()           once; every PCR zero, PCR0-15 locked, not
 *                           booted, no identity
 *   ne_nsm_boot()           before the enclave runs: the hypervisor's
 *                           measurements, PCR0-15 locked
 *   ne_nsm_set_identity()   the signer (again when its leaf is renewed)
 *   ne_nsm_handle()         per request, one at a time
 *   ne_nsm_cleanup()        at the end
 * Nothing here locks: the device serialises requests, as the queue does.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_NSM_CORE_H
#define HW_NE_NE_NSM_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ne-nsm-doc.h"
#include "ne-nsm-pcr.h"

#define NE_NSM_REQUEST_MAX      0x1000
#define NE_NSM_RESPONSE_MAX     0x3000
/* {"Error": "BufferTooSmall"}: the shortest answer to any request */
#define NE_NSM_RESPONSE_MIN     22
/* GetRandom's length; the Linux driver's hwrng needs at least 24. */
#define NE_NSM_RANDOM_SIZE      256
#define NE_NSM_VERSION_MAJOR    1
#define NE_NSM_VERSION_MINOR    0
#define NE_NSM_VERSION_PATCH    0

/* The ErrorCode names of the wire, in the API's enum order. */
enum ne_nsm_error {
    NE_NSM_SUCCESS = 0,
    NE_NSM_INVALID_ARGUMENT,
    NE_NSM_INVALID_INDEX,
    NE_NSM_INVALID_RESPONSE,
    NE_NSM_READ_ONLY_INDEX,
    NE_NSM_INVALID_OPERATION,
    NE_NSM_BUFFER_TOO_SMALL,
    NE_NSM_INPUT_TOO_LARGE,
    NE_NSM_INTERNAL_ERROR,
};

struct ne_nsm {
    struct ne_nsm_pcr_bank pcrs;        /* what a migration saves */
    bool booted;                        /* the last ne_nsm_boot() succeeded */
    struct ne_nsm_signer signer;
    /* the documents' time, ms since the epoch (default: the host's clock) */
    uint64_t (*clock_ms)(void *opaque);
    void *clock_opaque;
    uint8_t scratch[NE_NSM_RESPONSE_MAX];       /* the response, encoded */
};

/*
 * Fails closed: until ne_nsm_boot() succeeds, PCR0-15 are locked at zero
 * (an enclave cannot put any image's measurement there itself) and
 * Attestation answers InternalError.  For a new struct, or one after
 * ne_nsm_cleanup(): on a live NSM it would drop (leak) its identity.
 */
void ne_nsm_init(struct ne_nsm *nsm);
void ne_nsm_cleanup(struct ne_nsm *nsm);

/*
 * Sets the PCRs the hypervisor measured (see struct ne_nsm_boot_pcrs;
 * debug mode included) and locks PCR0-15.  False for a value given for a
 * PCR the hypervisor does not measure: then every PCR is zero, PCR0-15
 * stay locked and the NSM is not booted (no document) until a boot
 * succeeds.
 */
bool ne_nsm_boot(struct ne_nsm *nsm, const struct ne_nsm_boot_pcrs *boot);

/*
 * Checks @id (a P-384 private key whose certificate is the leaf, every DER
 * 1-1024 bytes and 7 KiB in all, the bundle root first and linked by
 * issuer down to the leaf, the module id in AWS's form) and signs with a
 * copy of it from now on.  False, with *@why saying what is wrong and the
 * previous identity kept, otherwise; *@why is then never NULL (a static
 * string, nothing to free).  Until an identity is set, DescribeNSM and
 * Attestation answer InternalError.
 */
bool ne_nsm_set_identity(struct ne_nsm *nsm,
                         const struct ne_nsm_identity *id, const char **why);

void ne_nsm_set_clock(struct ne_nsm *nsm, uint64_t (*clock_ms)(void *),
                      void *opaque);

/*
 * Answers the request @req and returns the length of the answer written
 * to @resp: a success response, or {"Error": name}.  Never more than
 * NE_NSM_RESPONSE_MAX bytes, whatever @resp_cap says.
 *
 * An answer that does not fit @resp_cap is not cut short: the request has
 * no effect (an ExtendPCR or a lock is not applied) and the answer is
 * BufferTooSmall, which the client can act on, where a truncated CBOR item
 * would only fail to decode.  (The Linux driver always offers 0x3000
 * bytes; only clients of the older out-of-tree driver can offer less.)
 * An error answer that does not fit either becomes BufferTooSmall.
 * Returns 0, nothing written, only when @resp_cap is below
 * NE_NSM_RESPONSE_MIN (not even that error fits), or when memory ran out.
 */
size_t ne_nsm_handle(struct ne_nsm *nsm, const uint8_t *req, size_t req_len,
                     uint8_t *resp, size_t resp_cap);

/* "InvalidIndex" for NE_NSM_INVALID_INDEX, ... */
const char *ne_nsm_error_name(enum ne_nsm_error error);

#endif /* HW_NE_NE_NSM_CORE_H */
