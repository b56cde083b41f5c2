/*
 * The hypervisor's half of attestation (see ne-attest.h).
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include <openssl/crypto.h>

#include "ne-attest.h"
#include "ne-sealed-file.h"
#include "ne-nsm-boot.h"
#include "ne-nsm-ca.h"

/* PCR4 of an NSM without a CA: an instance id of AWS's form, all zero */
#define NE_ATTEST_NO_INSTANCE   "i-00000000000000000"

struct NEAttest {
    NeNsmCa *ca;                /* NULL: no signing */
    uint8_t pcr3[NE_NSM_PCR_SIZE];
    bool has_role;
    uint8_t pcr4[NE_NSM_PCR_SIZE];
};

NEAttest *ne_attest_new(const char *ca_path, const char *parent_role,
                        Error **errp)
{
    g_autofree NEAttest *a = g_new0(NEAttest, 1);
    const char *instance = NE_ATTEST_NO_INSTANCE;
    char err[256];
    int fd;

    if (ca_path && *ca_path) {
        fd = qemu_open(ca_path, O_RDONLY, errp);
        if (fd < 0) {
            error_prepend(errp, "attestation-ca: ");
            return NULL;
        }
        a->ca = ne_nsm_ca_load_fd(fd, err, sizeof(err));
        close(fd);
        if (!a->ca) {
            error_setg(errp, "attestation-ca %s: %s", ca_path, err);
            return NULL;
        }
        instance = ne_nsm_ca_instance_id(a->ca);
    }
    /* the parent's PCRs: one extend of zero with the raw string (spec 3) */
    if (parent_role && *parent_role) {
        a->has_role = ne_nsm_pcr_measure(parent_role, strlen(parent_role),
                                         a->pcr3);
        if (!a->has_role) {
            error_setg(errp, "cannot measure parent-role");
            ne_attest_free(g_steal_pointer(&a));
            return NULL;
        }
    }
    if (!ne_nsm_pcr_measure(instance, strlen(instance), a->pcr4)) {
        error_setg(errp, "cannot measure the instance id");
        ne_attest_free(g_steal_pointer(&a));
        return NULL;
    }
    return g_steal_pointer(&a);
}

void ne_attest_free(NEAttest *a)
{
    if (a) {
        ne_nsm_ca_free(a->ca);
        g_free(a);
    }
}

/* The record's identity from @leaf (pointers into it). */
static void ne_attest_identity(struct ne_nsm_identity *id,
                               const NeNsmLeaf *leaf)
{
    int i;

    id->key = leaf->key;
    id->certificate.data = leaf->cert.data;
    id->certificate.len = leaf->cert.len;
    for (i = 0; i < NE_NSM_CA_BUNDLE_LEN; i++) {
        id->cabundle[i].data = leaf->cabundle[i].data;
        id->cabundle[i].len = leaf->cabundle[i].len;
    }
    id->nr_cabundle = NE_NSM_CA_BUNDLE_LEN;
    id->module_id = leaf->module_id;
}

static void ne_attest_pcrs(NEAttest *a, struct ne_nsm_boot_record *r,
                           const struct ne_eif_pcrs *pcrs)
{
    memcpy(r->pcr[NE_NSM_PCR_IMAGE], pcrs->pcr0, NE_NSM_PCR_SIZE);
    memcpy(r->pcr[NE_NSM_PCR_KERNEL], pcrs->pcr1, NE_NSM_PCR_SIZE);
    memcpy(r->pcr[NE_NSM_PCR_APP], pcrs->pcr2, NE_NSM_PCR_SIZE);
    memcpy(r->pcr[NE_NSM_PCR_PARENT_ID], a->pcr4, NE_NSM_PCR_SIZE);
    r->pcr_given = 1u << NE_NSM_PCR_IMAGE | 1u << NE_NSM_PCR_KERNEL |
                   1u << NE_NSM_PCR_APP | 1u << NE_NSM_PCR_PARENT_ID;
    if (a->has_role) {
        memcpy(r->pcr[NE_NSM_PCR_PARENT_ROLE], a->pcr3, NE_NSM_PCR_SIZE);
        r->pcr_given |= 1u << NE_NSM_PCR_PARENT_ROLE;
    }
    if (pcrs->is_signed) {
        memcpy(r->pcr[NE_NSM_PCR_SIGNER], pcrs->pcr8, NE_NSM_PCR_SIZE);
        r->pcr_given |= 1u << NE_NSM_PCR_SIGNER;
    }
}

/*
 * @len bytes of @buf in a new memory file, sealed against any change
 * (waiting up to @seal_wait_ms: ne_seal_boot_file()).
 */
static int ne_attest_sealed_file(const uint8_t *buf, size_t len,
                                 unsigned int seal_wait_ms, Error **errp)
{
    /* (sealable, sealed once written: the child reads it as it is) */
    int fd = memfd_create("ne-nsm-boot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    int rc;

    if (fd < 0) {
        error_setg_errno(errp, errno, "memfd_create");
        return -1;
    }
    if (qemu_write_full(fd, buf, len) != len) {
        error_setg_errno(errp, errno, "cannot write the NSM's boot record");
        close(fd);
        return -1;
    }
    rc = ne_seal_boot_file(fd, seal_wait_ms, NULL);
    if (rc < 0) {
        error_setg_errno(errp, -rc, "cannot seal the NSM's boot record");
        close(fd);
        return -1;
    }
    return fd;
}

bool ne_attest_can_sign(const NEAttest *a)
{
    return a->ca != NULL;
}

/* @r's record in a sealed memory file; the encoding is wiped after. */
static int ne_attest_record_file(const struct ne_nsm_boot_record *r,
                                 unsigned int seal_wait_ms, Error **errp)
{
    uint8_t *enc;
    size_t len;
    int fd;

    enc = ne_nsm_boot_record_encode(r, &len);
    if (!enc) {
        error_setg(errp, "cannot encode the NSM's boot record");
        return -1;
    }
    fd = ne_attest_sealed_file(enc, len, seal_wait_ms, errp);
    /* (the record holds the leaf's private key) */
    OPENSSL_cleanse(enc, len);
    free(enc);
    return fd;
}

/* A leaf for @enclave_id (NULL: a new enclave) into @r's identity. */
static bool ne_attest_issue(NEAttest *a, const uint8_t *enclave_id,
                            NeNsmLeaf *leaf, struct ne_nsm_boot_record *r,
                            Error **errp)
{
    char err[256];

    if (ne_nsm_ca_issue(a->ca, enclave_id, 0, leaf, err, sizeof(err)) < 0) {
        error_setg(errp, "cannot issue the enclave's NSM certificate: %s",
                   err);
        return false;
    }
    ne_attest_identity(&r->identity, leaf);
    return true;
}

int ne_attest_boot_file(NEAttest *a, const struct ne_eif_pcrs *pcrs,
                        bool debug, uint8_t *enclave_id,
                        unsigned int seal_wait_ms, Error **errp)
{
    struct ne_nsm_boot_record r = { .debug = debug };
    NeNsmLeaf leaf = { 0 };
    int fd;

    QEMU_BUILD_BUG_ON(NE_ATTEST_ENCLAVE_ID_LEN != NE_NSM_CA_ENCLAVE_ID_LEN);
    memset(enclave_id, 0, NE_ATTEST_ENCLAVE_ID_LEN);
    ne_attest_pcrs(a, &r, pcrs);
    if (a->ca && !ne_attest_issue(a, NULL, &leaf, &r, errp)) {
        ne_nsm_leaf_clear(&leaf);
        return -1;
    }
    fd = ne_attest_record_file(&r, seal_wait_ms, errp);
    if (fd >= 0 && a->ca) {
        memcpy(enclave_id, leaf.enclave_id, NE_ATTEST_ENCLAVE_ID_LEN);
    }
    ne_nsm_leaf_clear(&leaf);
    return fd;
}

int ne_attest_renewal_file(NEAttest *a, const uint8_t *enclave_id,
                           Error **errp)
{
    struct ne_nsm_boot_record r = { 0 };   /* no PCR: an identity only */
    NeNsmLeaf leaf = { 0 };
    int fd;

    if (!a->ca) {
        error_setg(errp, "no attestation CA: nothing to renew");
        return -1;
    }
    if (!ne_attest_issue(a, enclave_id, &leaf, &r, errp)) {
        ne_nsm_leaf_clear(&leaf);
        return -1;
    }
    /* (one try: this runs in the main loop, and the next renewal retries) */
    fd = ne_attest_record_file(&r, 0, errp);
    ne_nsm_leaf_clear(&leaf);
    return fd;
}
