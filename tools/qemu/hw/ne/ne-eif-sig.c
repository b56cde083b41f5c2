/*
 * The signature section of an enclave image, verified (see ne-eif-sig.h).
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>

#include "ne-eif-sig.h"
#include "ne-nsm-cbor.h"

#define COSE_TAG_SIGN1          18
/* libcbor 0.8 refuses the one-byte heads of tags 6 to 20, 18's among them */
#define COSE_TAG_SIGN1_HEAD     0xd2
#define COSE_HEADER_ALG         1
#define COSE_HEADER_CRIT        2

#define KEY_CERT                "signing_certificate"
#define KEY_SIG                 "signature"
#define KEY_INDEX               "register_index"
#define KEY_VALUE               "register_value"
/* The one register that is signed today. */
#define SIGNED_PCR              0

/* The curves nitro-cli signs with, each with its RFC 8152 algorithm. */
struct sig_alg {
    const char *name;
    const char *group;                  /* OpenSSL's name of the curve */
    const char *curve;
    int64_t cose_alg;
    const EVP_MD *(*md)(void);
    size_t coord;                       /* bytes of r and of s */
};

static const struct sig_alg sig_algs[] = {
    { "ES256", SN_X9_62_prime256v1, "P-256", -7, EVP_sha256, 32 },
    { "ES384", SN_secp384r1, "P-384", -35, EVP_sha384, 48 },
    { "ES512", SN_secp521r1, "P-521", -36, EVP_sha512, 66 },
};

/* Bytes of a field, malloc'ed. */
struct bytes {
    uint8_t *data;
    size_t len;
};

/* A decoded COSE_Sign1: the strings point into @root. */
struct cose {
    cbor_item_t *root;
    const uint8_t *protected_hdr;
    size_t protected_len;
    const uint8_t *payload;
    size_t payload_len;
    const uint8_t *sig;
    size_t sig_len;
};

static bool fail(char *why, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool fail(char *why, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, NE_EIF_SIG_WHY_SIZE, fmt, ap);
    va_end(ap);
    return false;
}

/* What a load that failed says, but for out of memory. */
static bool fail_load(char *why, enum ne_nsm_cbor_status status,
                      const char *what)
{
    if (status == NE_NSM_CBOR_NOMEM) {
        return fail(why, "out of memory");
    }
    return fail(why, "%s is not one well-formed CBOR item", what);
}

/*
 * A byte field: a Vec<u8> as serde_cbor writes one (an array of unsigned
 * integers 0-255), or a definite byte string.
 */
static enum ne_nsm_cbor_status get_bytes(const cbor_item_t *item,
                                         struct bytes *out)
{
    size_t i, n;

    if (cbor_isa_bytestring(item) && cbor_bytestring_is_definite(item)) {
        n = cbor_bytestring_length(item);
        out->data = malloc(n ? n : 1);
        if (!out->data) {
            return NE_NSM_CBOR_NOMEM;
        }
        if (n) {
            memcpy(out->data, cbor_bytestring_handle(item), n);
        }
        out->len = n;
        return NE_NSM_CBOR_OK;
    }
    if (!cbor_isa_array(item)) {
        return NE_NSM_CBOR_MALFORMED;
    }
    n = cbor_array_size(item);
    out->data = malloc(n ? n : 1);
    if (!out->data) {
        return NE_NSM_CBOR_NOMEM;
    }
    for (i = 0; i < n; i++) {
        const cbor_item_t *b = cbor_array_handle(item)[i];

        if (!cbor_isa_uint(b) || cbor_get_int(b) > UINT8_MAX) {
            free(out->data);
            out->data = NULL;
            return NE_NSM_CBOR_MALFORMED;
        }
        out->data[i] = cbor_get_int(b);
    }
    out->len = n;
    return NE_NSM_CBOR_OK;
}

/*
 * The first entry's certificate and signature.  Unknown fields are skipped
 * and repeated ones refused, as serde reads a struct.
 */
static bool read_entry(const uint8_t *section, size_t len, struct bytes *pem,
                       struct bytes *cose, char *why)
{
    enum ne_nsm_cbor_status status;
    const cbor_item_t *entry;
    struct cbor_pair *pairs;
    cbor_item_t *root;
    bool ok = false;
    size_t i;

    status = ne_nsm_cbor_load(section, len, &root);
    if (status != NE_NSM_CBOR_OK) {
        return fail_load(why, status, "the signature section");
    }
    if (!cbor_isa_array(root) || !cbor_array_size(root)) {
        fail(why, "the signature section is not a non-empty CBOR array");
        goto out;
    }
    entry = cbor_array_handle(root)[0];
    if (!cbor_isa_map(entry)) {
        fail(why, "the signature section's first entry is not a map");
        goto out;
    }
    pairs = cbor_map_handle(entry);
    for (i = 0; i < cbor_map_size(entry); i++) {
        struct bytes *dst;
        const char *name;

        if (ne_nsm_cbor_is_text(pairs[i].key, KEY_CERT)) {
            dst = pem;
            name = KEY_CERT;
        } else if (ne_nsm_cbor_is_text(pairs[i].key, KEY_SIG)) {
            dst = cose;
            name = KEY_SIG;
        } else {
            continue;
        }
        if (dst->data) {
            fail(why, "the signature section has %s twice", name);
            goto out;
        }
        status = get_bytes(pairs[i].value, dst);
        if (status == NE_NSM_CBOR_NOMEM) {
            fail(why, "out of memory");
            goto out;
        }
        if (status != NE_NSM_CBOR_OK) {
            fail(why, "the signature section's %s is not bytes (a byte "
                 "string or an array of integers 0-255)", name);
            goto out;
        }
    }
    if (!pem->data || !cose->data) {
        fail(why, "the signature section has no %s",
             pem->data ? KEY_SIG : KEY_CERT);
        goto out;
    }
    ok = true;
out:
    cbor_decref(&root);
    return ok;
}

static const struct sig_alg *alg_of(EVP_PKEY *key)
{
    char group[64];
    size_t n, i;

    if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
        EVP_PKEY_get_group_name(key, group, sizeof(group), &n) != 1) {
        return NULL;
    }
    for (i = 0; i < sizeof(sig_algs) / sizeof(sig_algs[0]); i++) {
        if (!strcmp(group, sig_algs[i].group)) {
            return &sig_algs[i];
        }
    }
    return NULL;
}

/* The first certificate of the PEM, and the algorithm its key signs with. */
static X509 *read_cert(const struct bytes *pem, const struct sig_alg **alg,
                       char *why)
{
    /* (no overflow of the int: the section is at most 64 KiB) */
    BIO *bio = BIO_new_mem_buf(pem->data, pem->len);
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    if (!cert) {
        fail(why, "the signing certificate is not a PEM certificate");
        return NULL;
    }
    *alg = alg_of(X509_get0_pubkey(cert));
    if (!*alg) {
        fail(why, "the signing certificate's key is not an EC key on P-256, "
             "P-384 or P-521");
        X509_free(cert);
        return NULL;
    }
    return cert;
}

static bool borrow(const cbor_item_t *item, const uint8_t **data, size_t *len)
{
    if (!cbor_isa_bytestring(item) || !cbor_bytestring_is_definite(item)) {
        return false;
    }
    *data = cbor_bytestring_handle(item);
    *len = cbor_bytestring_length(item);
    return true;
}

/* [protected bstr, unprotected map, payload bstr, signature bstr] */
static bool read_cose(const struct bytes *b, struct cose *c, char *why)
{
    enum ne_nsm_cbor_status status;
    const uint8_t *buf = b->data;
    const cbor_item_t *sign1;
    cbor_item_t **parts;
    size_t len = b->len;
    bool tagged = false;

    if (len > 1 && buf[0] == COSE_TAG_SIGN1_HEAD) {
        tagged = true;
        buf++;
        len--;
    }
    status = ne_nsm_cbor_load(buf, len, &c->root);
    if (status != NE_NSM_CBOR_OK) {
        return fail_load(why, status, "the signature");
    }
    sign1 = c->root;
    if (cbor_isa_tag(sign1)) {
        cbor_item_t *inner;

        if (tagged || cbor_tag_value(sign1) != COSE_TAG_SIGN1) {
            return fail(why, "the signature has a tag other than one 18 "
                        "(COSE_Sign1)");
        }
        /* the tag keeps its item: a borrowed pointer */
        inner = cbor_tag_item(sign1);
        sign1 = inner;
        cbor_decref(&inner);
    }
    if (!cbor_isa_array(sign1) || cbor_array_size(sign1) != 4) {
        return fail(why, "the signature is not a COSE_Sign1 (an array of 4)");
    }
    parts = cbor_array_handle(sign1);
    if (!borrow(parts[0], &c->protected_hdr, &c->protected_len) ||
        !cbor_isa_map(parts[1]) ||
        !borrow(parts[2], &c->payload, &c->payload_len) ||
        !borrow(parts[3], &c->sig, &c->sig_len)) {
        return fail(why, "the COSE_Sign1 is not [protected bstr, unprotected "
                    "map, payload bstr, signature bstr]");
    }
    return true;
}

/*
 * The protected header names @alg once, and nothing critical.  (Other
 * parameters are covered by the signature and mean nothing here.)
 */
static bool check_alg(const struct cose *c, const struct sig_alg *alg,
                      char *why)
{
    enum ne_nsm_cbor_status status;
    struct cbor_pair *pairs;
    bool found = false, ok = false;
    cbor_item_t *map;
    int64_t got = 0;
    size_t i;

    status = ne_nsm_cbor_load(c->protected_hdr, c->protected_len, &map);
    if (status != NE_NSM_CBOR_OK) {
        return fail_load(why, status, "the COSE_Sign1's protected header");
    }
    if (!cbor_isa_map(map)) {
        fail(why, "the COSE_Sign1's protected header is not a map");
        goto out;
    }
    pairs = cbor_map_handle(map);
    for (i = 0; i < cbor_map_size(map); i++) {
        const cbor_item_t *v = pairs[i].value;

        if (!cbor_isa_uint(pairs[i].key)) {
            continue;
        }
        if (cbor_get_int(pairs[i].key) == COSE_HEADER_CRIT) {
            fail(why, "the COSE_Sign1's protected header has critical "
                 "parameters (crit), none of which is understood here");
            goto out;
        }
        if (cbor_get_int(pairs[i].key) != COSE_HEADER_ALG) {
            continue;
        }
        if (found) {
            fail(why, "the COSE_Sign1's protected header names the "
                 "algorithm twice");
            goto out;
        }
        found = true;
        if (cbor_isa_uint(v) && cbor_get_int(v) <= INT64_MAX) {
            got = cbor_get_int(v);
        } else if (cbor_isa_negint(v) && cbor_get_int(v) <= INT64_MAX) {
            got = -1 - (int64_t)cbor_get_int(v);
        } else {
            fail(why, "the COSE_Sign1's algorithm is not an integer");
            goto out;
        }
    }
    if (!found) {
        fail(why, "the COSE_Sign1's protected header names no algorithm");
    } else if (got != alg->cose_alg) {
        fail(why, "the COSE_Sign1 is for algorithm %lld, the signing "
             "certificate's %s key for %s (%lld)", (long long)got,
             alg->curve, alg->name, (long long)alg->cose_alg);
    } else {
        ok = true;
    }
out:
    cbor_decref(&map);
    return ok;
}

/* ["Signature1", protected, h'' (no external AAD), payload] */
static uint8_t *sig_structure(const struct cose *c, size_t *len)
{
    cbor_item_t *a = cbor_new_definite_array(4);
    unsigned char *buf = NULL;
    size_t size;
    bool ok;

    ok = ne_nsm_cbor_push(a, cbor_build_string("Signature1")) &&
         ne_nsm_cbor_push(a, ne_nsm_cbor_bytes(c->protected_hdr,
                                               c->protected_len)) &&
         ne_nsm_cbor_push(a, ne_nsm_cbor_bytes(NULL, 0)) &&
         ne_nsm_cbor_push(a, ne_nsm_cbor_bytes(c->payload, c->payload_len));
    *len = ok ? cbor_serialize_alloc(a, &buf, &size) : 0;
    if (a) {
        cbor_decref(&a);
    }
    return *len ? buf : NULL;
}

/* COSE's r || s as the DER ECDSA-Sig-Value OpenSSL verifies. */
static unsigned char *sig_der(const uint8_t *raw, size_t coord, int *len)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, coord, NULL);
    BIGNUM *s = BN_bin2bn(raw + coord, coord, NULL);
    unsigned char *der = NULL;

    *len = 0;
    if (sig && r && s && ECDSA_SIG_set0(sig, r, s)) {
        r = s = NULL;               /* the signature owns them */
        *len = i2d_ECDSA_SIG(sig, &der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return *len > 0 ? der : NULL;
}

static bool check_signature(const struct cose *c, X509 *cert,
                            const struct sig_alg *alg, char *why)
{
    EVP_MD_CTX *md = NULL;
    unsigned char *der = NULL;
    uint8_t *tbs = NULL;
    size_t tbs_len = 0;
    int der_len = 0, v = 0;

    if (c->sig_len != 2 * alg->coord) {
        return fail(why, "the %s signature has %zu bytes, not %zu (r || s)",
                    alg->name, c->sig_len, 2 * alg->coord);
    }
    tbs = sig_structure(c, &tbs_len);
    der = sig_der(c->sig, alg->coord, &der_len);
    md = EVP_MD_CTX_new();
    if (!tbs || !der || !md) {
        fail(why, "out of memory");
    } else {
        if (EVP_DigestVerifyInit(md, NULL, alg->md(), NULL,
                                 X509_get0_pubkey(cert)) == 1) {
            v = EVP_DigestVerify(md, der, der_len, tbs, tbs_len);
        }
        if (v != 1) {
            fail(why, "the %s signature does not verify with the signing "
                 "certificate's key", alg->name);
        }
    }
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    free(tbs);
    return v == 1;
}

/* The signed payload is {"register_index": 0, "register_value": @pcr0}. */
static bool check_payload(const struct cose *c, const uint8_t *pcr0,
                          char *why)
{
    const cbor_item_t *index = NULL, *value = NULL;
    enum ne_nsm_cbor_status status;
    struct bytes got = { NULL, 0 };
    struct cbor_pair *pairs;
    cbor_item_t *map;
    bool ok = false;
    size_t i;

    status = ne_nsm_cbor_load(c->payload, c->payload_len, &map);
    if (status != NE_NSM_CBOR_OK) {
        return fail_load(why, status, "the signed payload");
    }
    if (cbor_isa_map(map) && cbor_map_size(map) == 2) {
        pairs = cbor_map_handle(map);
        for (i = 0; i < 2; i++) {
            if (ne_nsm_cbor_is_text(pairs[i].key, KEY_INDEX)) {
                index = pairs[i].value;
            } else if (ne_nsm_cbor_is_text(pairs[i].key, KEY_VALUE)) {
                value = pairs[i].value;
            }
        }
    }
    if (!index || !value) {
        fail(why, "the signed payload is not a map of %s and %s alone",
             KEY_INDEX, KEY_VALUE);
        goto out;
    }
    if (!cbor_isa_uint(index) || cbor_get_int(index) != SIGNED_PCR) {
        fail(why, "the signature signs another register than PCR0");
        goto out;
    }
    status = get_bytes(value, &got);
    if (status != NE_NSM_CBOR_OK) {
        fail(why, status == NE_NSM_CBOR_NOMEM ? "out of memory" :
             "the signed register_value is not bytes");
        goto out;
    }
    if (got.len != NE_EIF_PCR_SIZE || memcmp(got.data, pcr0, got.len)) {
        fail(why, "the signature holds but signs another PCR0 than this "
             "image's: it was made for another image, or the image changed");
        goto out;
    }
    ok = true;
out:
    free(got.data);
    cbor_decref(&map);
    return ok;
}

X509 *ne_eif_sig_verify(const uint8_t *section, size_t len,
                        const uint8_t pcr0[NE_EIF_PCR_SIZE], char *why)
{
    struct bytes pem = { NULL, 0 }, cose_bytes = { NULL, 0 };
    struct cose cose = { .root = NULL };
    const struct sig_alg *alg = NULL;
    X509 *cert = NULL;
    bool ok;

    if (len > NE_EIF_SIGNATURE_MAX) {
        fail(why, "the signature section is larger than %d bytes",
             NE_EIF_SIGNATURE_MAX);
        return NULL;
    }
    ERR_set_mark();
    if (read_entry(section, len, &pem, &cose_bytes, why)) {
        cert = read_cert(&pem, &alg, why);
    }
    ok = cert && read_cose(&cose_bytes, &cose, why) &&
         check_alg(&cose, alg, why) &&
         check_signature(&cose, cert, alg, why) &&
         check_payload(&cose, pcr0, why);
    ERR_pop_to_mark();
    if (cose.root) {
        cbor_decref(&cose.root);
    }
    free(pem.data);
    free(cose_bytes.data);
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}
