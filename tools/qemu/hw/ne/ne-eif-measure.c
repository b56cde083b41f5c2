/*
 * The measurements of an enclave image (see ne-eif-measure.h).
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ne-eif-measure.h"
#include "ne-eif-sig.h"

struct ne_eif_measure {
    EVP_MD_CTX *pcr0, *pcr1, *pcr2;
    unsigned int type;                  /* of the section being fed */
    unsigned int ramdisks;              /* begun so far */
    uint8_t *signature;                 /* the signature section, kept */
    size_t signature_len;
    bool has_signature;
    char why[NE_EIF_SIG_WHY_SIZE];      /* why the last call failed */
};

static EVP_MD_CTX *sha384_new(void)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx && !EVP_DigestInit_ex(ctx, EVP_sha384(), NULL)) {
        EVP_MD_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

struct ne_eif_measure *ne_eif_measure_new(void)
{
    struct ne_eif_measure *m = calloc(1, sizeof(*m));

    if (!m) {
        return NULL;
    }
    m->pcr0 = sha384_new();
    m->pcr1 = sha384_new();
    m->pcr2 = sha384_new();
    if (!m->pcr0 || !m->pcr1 || !m->pcr2) {
        ne_eif_measure_free(m);
        return NULL;
    }
    return m;
}

void ne_eif_measure_free(struct ne_eif_measure *m)
{
    if (!m) {
        return;
    }
    EVP_MD_CTX_free(m->pcr0);
    EVP_MD_CTX_free(m->pcr1);
    EVP_MD_CTX_free(m->pcr2);
    free(m->signature);
    free(m);
}

bool ne_eif_measure_section(struct ne_eif_measure *m, unsigned int type,
                            const char **why)
{
    m->type = type;
    if (type == NE_EIF_SECTION_RAMDISK) {
        m->ramdisks++;
    } else if (type == NE_EIF_SECTION_SIGNATURE) {
        /* which one would PCR8 be of? (ne-eif.c refuses them first) */
        if (m->has_signature) {
            *why = "the image has more than one signature section";
            return false;
        }
        m->has_signature = true;
    }
    return true;
}

static bool keep_signature(struct ne_eif_measure *m, const void *buf,
                           size_t len, const char **why)
{
    uint8_t *grown;

    if (len > NE_EIF_SIGNATURE_MAX - m->signature_len) {
        snprintf(m->why, sizeof(m->why), "the signature section is larger "
                 "than %d bytes", NE_EIF_SIGNATURE_MAX);
        *why = m->why;
        return false;
    }
    if (!len) {
        return true;
    }
    grown = realloc(m->signature, m->signature_len + len);
    if (!grown) {
        *why = "out of memory for the signature section";
        return false;
    }
    memcpy(grown + m->signature_len, buf, len);
    m->signature = grown;
    m->signature_len += len;
    return true;
}

bool ne_eif_measure_data(struct ne_eif_measure *m, const void *buf,
                         size_t len, const char **why)
{
    bool to_pcr1, to_pcr2;

    switch (m->type) {
    case NE_EIF_SECTION_KERNEL:
    case NE_EIF_SECTION_CMDLINE:
    case NE_EIF_SECTION_RAMDISK:
        break;
    case NE_EIF_SECTION_SIGNATURE:
        return keep_signature(m, buf, len, why);
    default:
        return true;                    /* metadata: not measured */
    }
    to_pcr1 = m->type != NE_EIF_SECTION_RAMDISK || m->ramdisks == 1;
    to_pcr2 = m->type == NE_EIF_SECTION_RAMDISK && m->ramdisks > 1;
    if (!EVP_DigestUpdate(m->pcr0, buf, len) ||
        (to_pcr1 && !EVP_DigestUpdate(m->pcr1, buf, len)) ||
        (to_pcr2 && !EVP_DigestUpdate(m->pcr2, buf, len))) {
        *why = "SHA-384 failed";
        return false;
    }
    return true;
}

/* @pcr = H(Z || @digest): one extend of a zero PCR. */
static bool extend_from_zero(const uint8_t *digest, uint8_t *pcr)
{
    uint8_t buf[2 * NE_EIF_PCR_SIZE] = { 0 };

    memcpy(buf + NE_EIF_PCR_SIZE, digest, NE_EIF_PCR_SIZE);
    return EVP_Digest(buf, sizeof(buf), pcr, NULL, EVP_sha384(), NULL);
}

static bool finish_stream(EVP_MD_CTX *ctx, uint8_t *pcr)
{
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int len;

    return EVP_DigestFinal_ex(ctx, digest, &len) &&
           len == NE_EIF_PCR_SIZE && extend_from_zero(digest, pcr);
}

/* PCR8 from the kept signature section, once it is verified over @pcr0. */
static bool measure_signer(struct ne_eif_measure *m, const uint8_t *pcr0,
                           uint8_t *pcr8, const char **why)
{
    uint8_t digest[NE_EIF_PCR_SIZE];
    unsigned char *der = NULL;
    X509 *cert;
    int der_len;
    bool ok;

    cert = ne_eif_sig_verify(m->signature, m->signature_len, pcr0, m->why);
    if (!cert) {
        *why = m->why;
        return false;
    }
    ERR_set_mark();
    der_len = i2d_X509(cert, &der);
    ok = der_len > 0 &&
         EVP_Digest(der, der_len, digest, NULL, EVP_sha384(), NULL) &&
         extend_from_zero(digest, pcr8);
    ERR_pop_to_mark();
    OPENSSL_free(der);
    X509_free(cert);
    if (!ok) {
        *why = "SHA-384 of the signing certificate failed";
    }
    return ok;
}

bool ne_eif_measure_finish(struct ne_eif_measure *m, struct ne_eif_pcrs *out,
                           const char **why)
{
    memset(out, 0, sizeof(*out));
    if (!finish_stream(m->pcr0, out->pcr0) ||
        !finish_stream(m->pcr1, out->pcr1) ||
        !finish_stream(m->pcr2, out->pcr2)) {
        *why = "SHA-384 failed";
        return false;
    }
    if (m->has_signature) {
        if (!measure_signer(m, out->pcr0, out->pcr8, why)) {
            memset(out, 0, sizeof(*out));
            return false;
        }
        out->is_signed = true;
    }
    *why = NULL;
    return true;
}
