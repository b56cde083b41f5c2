/*
 * The NSM's signing identity and its attestation documents: COSE_Sign1
 * with ES384, laid out as real Nitro documents are (shared/spec/
 * attestation.md sections 4 and 5).
 *
 * The identity is issued elsewhere (a local CA: the launcher's CA code)
 * and handed to the NSM as a struct ne_nsm_identity; the NSM keeps its
 * own copy.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_NSM_DOC_H
#define HW_NE_NE_NSM_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "ne-nsm-pcr.h"

/* Each certificate: ATT caps them at 1024 bytes, as nectl's verifier does. */
#define NE_NSM_CERT_MAX         1024
/*
 * Real bundles hold 4 (root, regional, zonal, instance); 8 leaves room for
 * another depth while every document still fits a 0x3000-byte response.
 */
#define NE_NSM_CABUNDLE_MAX     8
/* AWS's form i-<17 hex>-enc<16 hex>: i-0bee92034f3d60691-enc01943c5eaab3ad6a */
#define NE_NSM_MODULE_ID_LEN    39
/* user_data, nonce, public_key: AWS's own check sends 1024 bytes of each. */
#define NE_NSM_FIELD_MAX        1024
/*
 * The leaf's and the bundle's DER bytes together.  The rest of a document
 * takes at most about 5 KiB (32 PCRs, the three fields at their largest,
 * keys, heads, signature, the response around it), so with certificates
 * within this every document fits a 0x3000-byte response.
 */
#define NE_NSM_CERTS_MAX        (7 * 1024)

/* ES384's COSE signature: r||s, each 48 bytes, big-endian, 0-padded */
#define NE_NSM_ES384_SIG_SIZE   96

struct ne_nsm_der {
    const uint8_t *data;
    size_t len;
};

/*
 * What the NSM signs with, filled in by whoever issues the leaf.  Nothing
 * in it is kept: ne_nsm_set_identity() copies the DERs and the module id
 * and takes its own reference on the key, so the caller releases its own.
 */
struct ne_nsm_identity {
    EVP_PKEY *key;                      /* the leaf's P-384 private key */
    struct ne_nsm_der certificate;      /* the leaf, DER */
    /* DER, root first, then each issuer down to the leaf's (real order) */
    struct ne_nsm_der cabundle[NE_NSM_CABUNDLE_MAX];
    size_t nr_cabundle;
    const char *module_id;              /* NE_NSM_MODULE_ID_LEN characters */
};

/* The NSM's copy of an identity. */
struct ne_nsm_signer {
    EVP_PKEY *key;                      /* NULL: no identity yet */
    uint8_t *certificate;
    size_t certificate_len;
    uint8_t *cabundle[NE_NSM_CABUNDLE_MAX];
    size_t cabundle_len[NE_NSM_CABUNDLE_MAX];
    size_t nr_cabundle;
    char module_id[NE_NSM_MODULE_ID_LEN + 1];
    /* the leaf's validity, seconds since the epoch: documents stay inside */
    int64_t not_before;
    int64_t not_after;
};

/* An optional document field: absent ones are null in the document. */
struct ne_nsm_blob {
    bool present;
    const uint8_t *data;
    size_t len;
};

struct ne_nsm_doc_fields {
    struct ne_nsm_blob public_key, user_data, nonce;
};

/*
 * Checks @id and replaces @s's identity with a copy of it.  On error @s
 * is unchanged and *@why says what is wrong with @id: never NULL then, a
 * static string (nothing to free).
 */
bool ne_nsm_signer_set(struct ne_nsm_signer *s,
                       const struct ne_nsm_identity *id, const char **why);
void ne_nsm_signer_clear(struct ne_nsm_signer *s);

/*
 * The COSE_Sign1 document over @bank's locked PCRs, signed by @s (which
 * must hold an identity), in a malloc'ed buffer of *@len bytes; NULL when
 * out of memory, when signing failed, or when @timestamp_ms is outside
 * the leaf's validity (no verifier would accept the document: the
 * hypervisor renews the leaf long before, see ne-nsm-boot.h).
 */
uint8_t *ne_nsm_doc_sign(const struct ne_nsm_signer *s,
                         const struct ne_nsm_pcr_bank *bank,
                         uint64_t timestamp_ms,
                         const struct ne_nsm_doc_fields *fields, size_t *len);

/*
 * The DER ECDSA-Sig-Value @der (exactly @len bytes: SEQUENCE {r, s},
 * minimal INTEGERs, so a sign byte 00 before a high bit and fewer bytes
 * for a small value) as COSE's fixed-size r||s into @sig.  False when
 * @der is no such value or r or s is wider than 48 bytes.
 */
bool ne_nsm_doc_es384_raw(const uint8_t *der, size_t len,
                          uint8_t sig[NE_NSM_ES384_SIG_SIZE]);

#endif /* HW_NE_NE_NSM_DOC_H */
