/*
 * The NSM's PCR bank (see ne-nsm-pcr.h).
 *
 * An extend hashes the raw request bytes after the old value, without
 * hashing them first (spec section 3: QEMU, dstack's simulator and AWS's
 * PCR3/PCR4 recipes agree, and 11 real PCR4 values match it).
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "ne-nsm-pcr.h"

/* The PCRs the hypervisor measures; debug mode zeroes the image ones. */
static const struct {
    unsigned int index;
    bool image;
} measured[] = {
    { NE_NSM_PCR_IMAGE, true },
    { NE_NSM_PCR_KERNEL, true },
    { NE_NSM_PCR_APP, true },
    { NE_NSM_PCR_PARENT_ROLE, false },
    { NE_NSM_PCR_PARENT_ID, false },
    /*
     * Whether real debug-mode enclaves keep PCR8 is not known (spec 3).
     * It measures the image's signer, like PCR0-2 measure the image, so it
     * goes with them.
     */
    { NE_NSM_PCR_SIGNER, true },
};

/* SHA-384(@old || @data) into @out, which may be @old. */
static bool hash_extend(const uint8_t *old, const void *data, size_t len,
                        uint8_t out[NE_NSM_PCR_SIZE])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t prev[NE_NSM_PCR_SIZE];
    unsigned int n = 0;
    bool ok;

    memcpy(prev, old, sizeof(prev));
    ERR_set_mark();
    ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha384(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, prev, sizeof(prev)) == 1 &&
         (!len || EVP_DigestUpdate(ctx, data, len) == 1) &&
         EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == NE_NSM_PCR_SIZE;
    EVP_MD_CTX_free(ctx);
    ERR_pop_to_mark();          /* a failure is told by the status */
    return ok;
}

void ne_nsm_pcr_reset(struct ne_nsm_pcr_bank *bank)
{
    memset(bank, 0, sizeof(*bank));
}

static int measured_slot(unsigned int index)
{
    size_t i;

    for (i = 0; i < sizeof(measured) / sizeof(measured[0]); i++) {
        if (measured[i].index == index) {
            return i;
        }
    }
    return -1;
}

bool ne_nsm_pcr_boot(struct ne_nsm_pcr_bank *bank,
                     const struct ne_nsm_boot_pcrs *boot)
{
    unsigned int i;
    int slot;

    ne_nsm_pcr_reset(bank);
    for (i = 0; i < NE_NSM_NR_PCRS; i++) {
        if (boot->value[i] && measured_slot(i) < 0) {
            ne_nsm_pcr_lock_range(bank, NE_NSM_PLATFORM_PCRS);
            return false;
        }
    }
    for (i = 0; i < NE_NSM_NR_PCRS; i++) {
        slot = measured_slot(i);
        if (!boot->value[i] || (boot->debug && measured[slot].image)) {
            continue;
        }
        memcpy(bank->value[i], boot->value[i], NE_NSM_PCR_SIZE);
    }
    return ne_nsm_pcr_lock_range(bank, NE_NSM_PLATFORM_PCRS) == NE_NSM_PCR_OK;
}

bool ne_nsm_pcr_measure(const void *data, size_t len,
                        uint8_t out[NE_NSM_PCR_SIZE])
{
    static const uint8_t zero[NE_NSM_PCR_SIZE];

    return hash_extend(zero, data, len, out);
}

enum ne_nsm_pcr_status ne_nsm_pcr_check(const struct ne_nsm_pcr_bank *bank,
                                        uint64_t index)
{
    if (index >= NE_NSM_NR_PCRS) {
        return NE_NSM_PCR_BAD_INDEX;
    }
    return ne_nsm_pcr_is_locked(bank, index) ? NE_NSM_PCR_READ_ONLY
                                             : NE_NSM_PCR_OK;
}

enum ne_nsm_pcr_status ne_nsm_pcr_extended(const struct ne_nsm_pcr_bank *bank,
                                           uint64_t index,
                                           const uint8_t *data, size_t len,
                                           uint8_t out[NE_NSM_PCR_SIZE])
{
    enum ne_nsm_pcr_status st = ne_nsm_pcr_check(bank, index);

    if (st != NE_NSM_PCR_OK) {
        return st;
    }
    return hash_extend(bank->value[index], data, len, out) ? NE_NSM_PCR_OK
                                                           : NE_NSM_PCR_FAILED;
}

enum ne_nsm_pcr_status ne_nsm_pcr_commit(struct ne_nsm_pcr_bank *bank,
                                         uint64_t index,
                                         const uint8_t value[NE_NSM_PCR_SIZE])
{
    enum ne_nsm_pcr_status st = ne_nsm_pcr_check(bank, index);

    if (st == NE_NSM_PCR_OK) {
        memcpy(bank->value[index], value, NE_NSM_PCR_SIZE);
    }
    return st;
}

enum ne_nsm_pcr_status ne_nsm_pcr_extend(struct ne_nsm_pcr_bank *bank,
                                         uint64_t index,
                                         const uint8_t *data, size_t len)
{
    uint8_t next[NE_NSM_PCR_SIZE];
    enum ne_nsm_pcr_status st;

    /* Computed aside, so that a failed hash leaves the PCR as it was. */
    st = ne_nsm_pcr_extended(bank, index, data, len, next);
    return st == NE_NSM_PCR_OK ? ne_nsm_pcr_commit(bank, index, next) : st;
}

enum ne_nsm_pcr_status ne_nsm_pcr_lock(struct ne_nsm_pcr_bank *bank,
                                       uint64_t index)
{
    enum ne_nsm_pcr_status st = ne_nsm_pcr_check(bank, index);

    if (st == NE_NSM_PCR_OK) {
        bank->locked |= UINT32_C(1) << index;
    }
    return st;
}

enum ne_nsm_pcr_status ne_nsm_pcr_lock_range(struct ne_nsm_pcr_bank *bank,
                                             uint64_t range)
{
    if (range > NE_NSM_NR_PCRS) {
        return NE_NSM_PCR_BAD_INDEX;
    }
    /* (64-bit: shifting a 32-bit 1 by 32 would be undefined) */
    bank->locked |= (uint32_t)((UINT64_C(1) << range) - 1);
    return NE_NSM_PCR_OK;
}

unsigned int ne_nsm_pcr_nr_locked(const struct ne_nsm_pcr_bank *bank)
{
    return __builtin_popcount(bank->locked);
}

bool ne_nsm_pcr_is_locked(const struct ne_nsm_pcr_bank *bank,
                          unsigned int index)
{
    return index < NE_NSM_NR_PCRS && (bank->locked >> index) & 1;
}
