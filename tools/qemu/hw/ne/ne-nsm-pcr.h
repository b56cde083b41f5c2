/*
 * The NSM's bank of platform configuration registers (PCRs): 32 SHA-384
 * registers that only ever move forward (extend) and that can be frozen
 * (lock), never unfrozen (shared/spec/attestation.md section 3).
 *
 * Plain C and OpenSSL, no QEMU header: unit-tested on the host.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_NSM_PCR_H
#define HW_NE_NE_NSM_PCR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NE_NSM_NR_PCRS          32
#define NE_NSM_PCR_SIZE         48      /* SHA-384 */
/* PCR0-15 belong to the platform: locked before the enclave runs. */
#define NE_NSM_PLATFORM_PCRS    16

/* Where the hypervisor's measurements go (AWS's meanings, spec 3). */
enum {
    NE_NSM_PCR_IMAGE = 0,       /* the whole EIF */
    NE_NSM_PCR_KERNEL = 1,      /* kernel, cmdline and bootstrap ramdisk */
    NE_NSM_PCR_APP = 2,         /* the user ramdisks */
    NE_NSM_PCR_PARENT_ROLE = 3, /* the parent's IAM role ARN */
    NE_NSM_PCR_PARENT_ID = 4,   /* the parent's instance id */
    NE_NSM_PCR_SIGNER = 8,      /* the EIF's signing certificate */
};

struct ne_nsm_pcr_bank {
    uint8_t value[NE_NSM_NR_PCRS][NE_NSM_PCR_SIZE];
    uint32_t locked;            /* bit i: PCR i is locked */
};

enum ne_nsm_pcr_status {
    NE_NSM_PCR_OK = 0,
    NE_NSM_PCR_BAD_INDEX,       /* index >= 32, or range > 32 */
    NE_NSM_PCR_READ_ONLY,       /* the PCR is locked */
    NE_NSM_PCR_FAILED,          /* SHA-384 failed (OpenSSL out of memory) */
};

/*
 * What the hypervisor measured before the enclave runs: the final value of
 * each PCR it sets (ne_nsm_pcr_measure() computes the single-extend values
 * of spec section 3), NULL for a PCR that stays zero (PCR3 for a parent
 * without an IAM role, PCR8 for an unsigned EIF).  Only PCR0, 1, 2, 3, 4
 * and 8 may be given.
 */
struct ne_nsm_boot_pcrs {
    const uint8_t *value[NE_NSM_NR_PCRS];
    /*
     * A debug-mode enclave: its image measurements (PCR0, 1, 2 and 8) read
     * as zero while the parent's (PCR3, 4) keep their values, as in real
     * debug-mode documents (spec 3).
     */
    bool debug;
};

/* All 32 PCRs zero and unlocked. */
void ne_nsm_pcr_reset(struct ne_nsm_pcr_bank *bank);

/*
 * Resets the bank, sets the measured PCRs and locks PCR0-15.  Returns
 * false when @boot gives a value for a PCR the hypervisor does not
 * measure, with every PCR zero and PCR0-15 still locked: a refused boot
 * fails closed, leaving the enclave no platform PCR to set itself.
 */
bool ne_nsm_pcr_boot(struct ne_nsm_pcr_bank *bank,
                     const struct ne_nsm_boot_pcrs *boot);

/* SHA-384(48 zero bytes || data): a zero PCR extended once with @data. */
bool ne_nsm_pcr_measure(const void *data, size_t len,
                        uint8_t out[NE_NSM_PCR_SIZE]);

/* Whether ExtendPCR or LockPCR may act on PCR @index, and why not. */
enum ne_nsm_pcr_status ne_nsm_pcr_check(const struct ne_nsm_pcr_bank *bank,
                                        uint64_t index);

/* The value PCR @index would have after extending it with @data. */
enum ne_nsm_pcr_status ne_nsm_pcr_extended(const struct ne_nsm_pcr_bank *bank,
                                           uint64_t index,
                                           const uint8_t *data, size_t len,
                                           uint8_t out[NE_NSM_PCR_SIZE]);

/*
 * Sets PCR @index to @value, which ne_nsm_pcr_extended() computed on
 * this bank, unchanged since: an extend in two steps, hashed once.  A
 * locked PCR is refused.
 */
enum ne_nsm_pcr_status ne_nsm_pcr_commit(struct ne_nsm_pcr_bank *bank,
                                         uint64_t index,
                                         const uint8_t value[NE_NSM_PCR_SIZE]);

/* PCR = SHA-384(PCR || data); a locked PCR is refused. */
enum ne_nsm_pcr_status ne_nsm_pcr_extend(struct ne_nsm_pcr_bank *bank,
                                         uint64_t index,
                                         const uint8_t *data, size_t len);

/* Locks one PCR; locking a locked one is refused (READ_ONLY). */
enum ne_nsm_pcr_status ne_nsm_pcr_lock(struct ne_nsm_pcr_bank *bank,
                                       uint64_t index);

/* Locks PCR [0, @range), whether or not some already are; range <= 32. */
enum ne_nsm_pcr_status ne_nsm_pcr_lock_range(struct ne_nsm_pcr_bank *bank,
                                             uint64_t range);

/* How many PCRs are locked: the size of the lists that name them. */
unsigned int ne_nsm_pcr_nr_locked(const struct ne_nsm_pcr_bank *bank);

bool ne_nsm_pcr_is_locked(const struct ne_nsm_pcr_bank *bank,
                          unsigned int index);

#endif /* HW_NE_NE_NSM_PCR_H */
