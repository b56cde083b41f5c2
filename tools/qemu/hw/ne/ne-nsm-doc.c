/*
 * The NSM's signing identity and its attestation documents (see
 * ne-nsm-doc.h).
 *
 * A document is what real Nitro enclaves get (spec section 4): an
 * untagged COSE_Sign1 [protected, {}, payload, signature] whose protected
 * header is the 4 bytes A1 01 38 22 ({1: -35}, ES384), whose payload is a
 * map of module_id, digest, timestamp, pcrs, certificate, cabundle,
 * public_key, user_data and nonce in that order, absent fields as null,
 * and whose signature is ECDSA P-384 over the COSE Sig_structure, raw r||s.
 * The payload map is indefinite-length, as in AWS's latest documents
 * (2025-12; those of 2021 to 2025-01 are definite, and when AWS switched
 * is not known), with pcrs and cabundle definite as there.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ne-nsm-cbor.h"
#include "ne-nsm-doc.h"

#define COSE_HEADER_ALG         1
#define COSE_ALG_ES384          (-35)
#define ES384_COORD             (NE_NSM_ES384_SIG_SIZE / 2) /* r, s */

/* ------------------------------------------------------------ identity */

static bool is_p384_private(EVP_PKEY *key)
{
    BIGNUM *priv = NULL;
    char group[32];
    size_t n;
    bool ok;

    ok = key && EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
         EVP_PKEY_get_group_name(key, group, sizeof(group), &n) == 1 &&
         !strcmp(group, SN_secp384r1) &&
         EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &priv) == 1;
    BN_clear_free(priv);
    return ok;
}

static bool is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* i-<17 lowercase hex>-enc<16 lowercase hex>, as in real documents */
static bool is_module_id(const char *id)
{
    static const char form[] = "i-hhhhhhhhhhhhhhhhh-enchhhhhhhhhhhhhhhh";
    size_t i;

    if (!id || strlen(id) != NE_NSM_MODULE_ID_LEN) {
        return false;
    }
    for (i = 0; i < NE_NSM_MODULE_ID_LEN; i++) {
        if (form[i] == 'h' ? !is_lower_hex(id[i]) : id[i] != form[i]) {
            return false;
        }
    }
    return true;
}

/* A certificate whose DER is exactly @der, or NULL. */
static X509 *parse_cert(const struct ne_nsm_der *der)
{
    const unsigned char *p = der->data;
    X509 *c;

    if (!der->data || !der->len || der->len > NE_NSM_CERT_MAX) {
        return NULL;
    }
    c = d2i_X509(NULL, &p, der->len);
    if (c && p != der->data + der->len) {
        X509_free(c);
        return NULL;
    }
    return c;
}

static const char *check_sizes(const struct ne_nsm_identity *id)
{
    size_t i, total = id->certificate.len;

    if (!id->nr_cabundle || id->nr_cabundle > NE_NSM_CABUNDLE_MAX) {
        return "the cabundle must hold 1 to 8 certificates";
    }
    for (i = 0; i < id->nr_cabundle; i++) {
        total += id->cabundle[i].len;
    }
    if (total > NE_NSM_CERTS_MAX) {
        return "the certificates take more than 7 KiB: a document would not "
               "fit a response";
    }
    return NULL;
}

/*
 * The order real documents use: cabundle[0] the (self-issued) root, each
 * entry the issuer of the next, the last one the leaf's.  A caller's
 * mistake here would only show as documents that fail verification.
 */
static const char *check_chain(const struct ne_nsm_identity *id, X509 *leaf,
                               X509 **bundle)
{
    size_t i, n = id->nr_cabundle;

    for (i = 0; i < n; i++) {
        if (!bundle[i]) {
            return "a cabundle entry is not a DER certificate of 1 to 1024 "
                   "bytes";
        }
    }
    if (X509_check_issued(bundle[0], bundle[0]) != X509_V_OK) {
        return "cabundle[0] is not a root: the bundle goes root first";
    }
    for (i = 1; i < n; i++) {
        if (X509_check_issued(bundle[i - 1], bundle[i]) != X509_V_OK) {
            return "a cabundle entry is not issued by the one before it";
        }
    }
    if (X509_check_issued(bundle[n - 1], leaf) != X509_V_OK) {
        return "the certificate is not issued by the last cabundle entry";
    }
    return NULL;
}

/* @t as seconds since the epoch, or false for a time OpenSSL cannot read */
static bool asn1_seconds(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;

    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
        return false;
    }
    *out = timegm(&tm);
    return true;
}

static const char *check_identity(const struct ne_nsm_identity *id,
                                  struct ne_nsm_signer *validity)
{
    X509 *leaf = NULL, *bundle[NE_NSM_CABUNDLE_MAX] = { NULL };
    const char *why = check_sizes(id);
    size_t i;

    if (why) {
        return why;
    }
    if (!is_module_id(id->module_id)) {
        return "the module id is not i-<17 hex>-enc<16 hex>";
    }
    if (!is_p384_private(id->key)) {
        return "the key is not an EC P-384 private key";
    }
    leaf = parse_cert(&id->certificate);
    for (i = 0; i < id->nr_cabundle; i++) {
        bundle[i] = parse_cert(&id->cabundle[i]);
    }
    if (!leaf) {
        why = "the certificate is not a DER certificate of 1 to 1024 bytes";
    } else if (X509_check_private_key(leaf, id->key) != 1) {
        why = "the certificate is not the key's";
    } else if (!asn1_seconds(X509_get0_notBefore(leaf),
                             &validity->not_before) ||
               !asn1_seconds(X509_get0_notAfter(leaf),
                             &validity->not_after) ||
               validity->not_after <= validity->not_before) {
        why = "the certificate's validity is unreadable or empty";
    } else {
        why = check_chain(id, leaf, bundle);
    }
    X509_free(leaf);
    for (i = 0; i < id->nr_cabundle; i++) {
        X509_free(bundle[i]);
    }
    return why;
}

static uint8_t *copy_der(const struct ne_nsm_der *der)
{
    uint8_t *p = malloc(der->len);

    if (p) {
        memcpy(p, der->data, der->len);
    }
    return p;
}

/* @s's copy of @id, or false (with @s cleared) when out of memory. */
static bool copy_identity(struct ne_nsm_signer *s,
                          const struct ne_nsm_identity *id)
{
    size_t i;
    bool ok;

    memset(s, 0, sizeof(*s));
    s->certificate = copy_der(&id->certificate);
    s->certificate_len = id->certificate.len;
    ok = s->certificate != NULL;
    for (i = 0; i < id->nr_cabundle; i++) {
        s->cabundle[i] = copy_der(&id->cabundle[i]);
        s->cabundle_len[i] = id->cabundle[i].len;
        ok = ok && s->cabundle[i];
    }
    s->nr_cabundle = id->nr_cabundle;
    /* (checked: exactly NE_NSM_MODULE_ID_LEN characters) */
    memcpy(s->module_id, id->module_id, NE_NSM_MODULE_ID_LEN + 1);
    if (ok && EVP_PKEY_up_ref(id->key) == 1) {
        s->key = id->key;
        return true;
    }
    ne_nsm_signer_clear(s);
    return false;
}

bool ne_nsm_signer_set(struct ne_nsm_signer *s,
                       const struct ne_nsm_identity *id, const char **why)
{
    struct ne_nsm_signer next, validity = { 0 };

    /* OpenSSL's errors of a refused identity are not left to the caller */
    ERR_set_mark();
    *why = check_identity(id, &validity);
    if (!*why && !copy_identity(&next, id)) {
        *why = "out of memory";
    }
    ERR_pop_to_mark();
    if (*why) {
        return false;
    }
    next.not_before = validity.not_before;
    next.not_after = validity.not_after;
    ne_nsm_signer_clear(s);
    *s = next;
    return true;
}

void ne_nsm_signer_clear(struct ne_nsm_signer *s)
{
    size_t i;

    EVP_PKEY_free(s->key);
    free(s->certificate);
    for (i = 0; i < s->nr_cabundle; i++) {
        free(s->cabundle[i]);
    }
    memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------ payload */

static cbor_item_t *pcr_map(const struct ne_nsm_pcr_bank *bank)
{
    cbor_item_t *map;
    unsigned int i;
    bool ok = true;

    /* "all locked PCRs" (ATT), in ascending order, a definite map */
    map = cbor_new_definite_map(ne_nsm_pcr_nr_locked(bank));
    for (i = 0; ok && i < NE_NSM_NR_PCRS; i++) {
        if (ne_nsm_pcr_is_locked(bank, i)) {
            ok = ne_nsm_cbor_put(map, ne_nsm_cbor_uint(i),
                                 ne_nsm_cbor_bytes(bank->value[i],
                                                   NE_NSM_PCR_SIZE));
        }
    }
    if (!ok && map) {
        cbor_decref(&map);
    }
    return map;
}

static cbor_item_t *cabundle(const struct ne_nsm_signer *s)
{
    cbor_item_t *array = cbor_new_definite_array(s->nr_cabundle);
    size_t i;
    bool ok = true;

    for (i = 0; ok && i < s->nr_cabundle; i++) {
        ok = ne_nsm_cbor_push(array, ne_nsm_cbor_bytes(s->cabundle[i],
                                                       s->cabundle_len[i]));
    }
    if (!ok && array) {
        cbor_decref(&array);
    }
    return array;
}

static cbor_item_t *optional(const struct ne_nsm_blob *b)
{
    return b->present ? ne_nsm_cbor_bytes(b->data, b->len) : cbor_new_null();
}

static cbor_item_t *payload(const struct ne_nsm_signer *s,
                            const struct ne_nsm_pcr_bank *bank,
                            uint64_t timestamp_ms,
                            const struct ne_nsm_doc_fields *f)
{
    cbor_item_t *map = cbor_new_indefinite_map();
    bool ok;

    ok = ne_nsm_cbor_put(map, cbor_build_string("module_id"),
                         cbor_build_string(s->module_id)) &&
         ne_nsm_cbor_put(map, cbor_build_string("digest"),
                         cbor_build_string("SHA384")) &&
         /* always the 9-byte form (1B + 8 bytes), as in real documents */
         ne_nsm_cbor_put(map, cbor_build_string("timestamp"),
                         cbor_build_uint64(timestamp_ms)) &&
         ne_nsm_cbor_put(map, cbor_build_string("pcrs"), pcr_map(bank)) &&
         ne_nsm_cbor_put(map, cbor_build_string("certificate"),
                         ne_nsm_cbor_bytes(s->certificate,
                                           s->certificate_len)) &&
         ne_nsm_cbor_put(map, cbor_build_string("cabundle"), cabundle(s)) &&
         ne_nsm_cbor_put(map, cbor_build_string("public_key"),
                         optional(&f->public_key)) &&
         ne_nsm_cbor_put(map, cbor_build_string("user_data"),
                         optional(&f->user_data)) &&
         ne_nsm_cbor_put(map, cbor_build_string("nonce"),
                         optional(&f->nonce));
    if (!ok && map) {
        cbor_decref(&map);
    }
    return map;
}

/* ------------------------------------------------------------ COSE */

/* @item's encoding in a malloc'ed buffer; releases @item. */
static uint8_t *encode(cbor_item_t *item, size_t *len)
{
    unsigned char *buf = NULL;
    size_t size;

    *len = 0;
    if (item) {
        *len = cbor_serialize_alloc(item, &buf, &size);
        cbor_decref(&item);
    }
    return *len ? buf : NULL;
}

/* {1: -35}: A1 01 38 22 */
static uint8_t *protected_header(size_t *len)
{
    cbor_item_t *map = cbor_new_definite_map(1);

    if (!ne_nsm_cbor_put(map, cbor_build_uint8(COSE_HEADER_ALG),
                         cbor_build_negint8(-1 - COSE_ALG_ES384))) {
        if (map) {
            cbor_decref(&map);
        }
        return NULL;
    }
    return encode(map, len);
}

/* ["Signature1", protected, h'' (no external AAD), payload] */
static uint8_t *sig_structure(const uint8_t *prot, size_t prot_len,
                              const uint8_t *pay, size_t pay_len, size_t *len)
{
    cbor_item_t *a = cbor_new_definite_array(4);
    bool ok;

    ok = ne_nsm_cbor_push(a, cbor_build_string("Signature1")) &&
         ne_nsm_cbor_push(a, ne_nsm_cbor_bytes(prot, prot_len)) &&
         ne_nsm_cbor_push(a, ne_nsm_cbor_bytes(NULL, 0)) &&
         ne_nsm_cbor_push(a, ne_nsm_cbor_bytes(pay, pay_len));
    if (!ok) {
        if (a) {
            cbor_decref(&a);
        }
        return NULL;
    }
    return encode(a, len);
}

bool ne_nsm_doc_es384_raw(const uint8_t *der, size_t len,
                          uint8_t sig[NE_NSM_ES384_SIG_SIZE])
{
    const unsigned char *p = der;
    ECDSA_SIG *s;
    bool ok;

    ERR_set_mark();
    s = d2i_ECDSA_SIG(NULL, &p, len);
    /* BN_bn2binpad() fails for a value wider than 48 bytes */
    ok = s && p == der + len &&
         BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, ES384_COORD) == ES384_COORD &&
         BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + ES384_COORD,
                      ES384_COORD) == ES384_COORD;
    ECDSA_SIG_free(s);
    ERR_pop_to_mark();
    return ok;
}

/* ECDSA P-384 over SHA-384(@tbs), as COSE wants it: r||s, 48 bytes each. */
static bool es384_sign(EVP_PKEY *key, const uint8_t *tbs, size_t len,
                       uint8_t sig[NE_NSM_ES384_SIG_SIZE])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[160];
    size_t der_len = sizeof(der);
    bool ok;

    ok = md && EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key) == 1 &&
         EVP_DigestSign(md, der, &der_len, tbs, len) == 1 &&
         ne_nsm_doc_es384_raw(der, der_len, sig);
    EVP_MD_CTX_free(md);
    return ok;
}

static uint8_t *sign1(const uint8_t *prot, size_t prot_len,
                      const uint8_t *pay, size_t pay_len,
                      const uint8_t sig[NE_NSM_ES384_SIG_SIZE], size_t *len)
{
    cbor_item_t *a = cbor_new_definite_array(4);
    bool ok;

    /* untagged, as every real document is (no tag 18) */
    ok = ne_nsm_cbor_push(a, ne_nsm_cbor_bytes(prot, prot_len)) &&
         ne_nsm_cbor_push(a, cbor_new_definite_map(0)) &&
         ne_nsm_cbor_push(a, ne_nsm_cbor_bytes(pay, pay_len)) &&
         ne_nsm_cbor_push(a, ne_nsm_cbor_bytes(sig, NE_NSM_ES384_SIG_SIZE));
    if (!ok) {
        if (a) {
            cbor_decref(&a);
        }
        return NULL;
    }
    return encode(a, len);
}

uint8_t *ne_nsm_doc_sign(const struct ne_nsm_signer *s,
                         const struct ne_nsm_pcr_bank *bank,
                         uint64_t timestamp_ms,
                         const struct ne_nsm_doc_fields *fields, size_t *len)
{
    uint8_t *prot, *pay = NULL, *tbs = NULL, *doc = NULL;
    size_t prot_len, pay_len = 0, tbs_len = 0;
    uint8_t sig[NE_NSM_ES384_SIG_SIZE];

    *len = 0;
    if (!s->key || (int64_t)(timestamp_ms / 1000) < s->not_before ||
        (int64_t)(timestamp_ms / 1000) >= s->not_after) {
        return NULL;
    }
    ERR_set_mark();
    prot = protected_header(&prot_len);
    if (prot) {
        pay = encode(payload(s, bank, timestamp_ms, fields), &pay_len);
    }
    if (pay) {
        tbs = sig_structure(prot, prot_len, pay, pay_len, &tbs_len);
    }
    if (tbs && es384_sign(s->key, tbs, tbs_len, sig)) {
        doc = sign1(prot, prot_len, pay, pay_len, sig, len);
    }
    free(prot);
    free(pay);
    free(tbs);
    ERR_pop_to_mark();          /* (a failure is InternalError, no more) */
    return doc;
}
