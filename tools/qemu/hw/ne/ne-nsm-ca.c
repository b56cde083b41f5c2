/*
 * The installation's local attestation CA and the per-enclave leaf: see
 * ne-nsm-ca.h.  The shape of every level (subject attributes and their
 * order, extensions and their order, lifetimes, serials) is AWS's, as
 * shared/spec/attestation.md sections 4 and 5 record it from real
 * documents, with two deliberate differences: the names say "ne-kvm" and
 * "local" where AWS's say "aws", "Amazon" and a region (a local root must
 * never pass for AWS's), and the regional and zonal certificates carry no
 * CRL distribution point (there is no CRL to point to).
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include "ne-nsm-ca.h"

/* AWS's "<region>.aws" and "Amazon" become these */
#define NE_NSM_CA_REGION        "local"
#define NE_NSM_CA_PARTITION     "ne-kvm"
#define NE_NSM_CA_SUFFIX        ".nitro-enclaves"
#define NE_NSM_CA_NAME_TAIL \
    "." NE_NSM_CA_REGION "." NE_NSM_CA_PARTITION NE_NSM_CA_SUFFIX

#define NE_NSM_CA_HOUR          3600L
#define NE_NSM_CA_DAY           (24 * NE_NSM_CA_HOUR)
#define NE_NSM_CA_ROOT_YEARS    30
#define NE_NSM_CA_CN_MAX        128
/* X.520 caps a CN at 64 characters: 40 of module_id, 24 after it */
#define NE_NSM_CA_LEAF_TAIL_MAX 24

/* One certificate of the bundle, parsed and as DER */
typedef struct NeNsmCaCert {
    X509 *x509;
    NeNsmCaDer der;
} NeNsmCaCert;

typedef STACK_OF(X509) NeNsmCaStack;

struct NeNsmCa {
    EVP_PKEY *key;                              /* the instance CA's */
    NeNsmCaCert cert[NE_NSM_CA_BUNDLE_LEN];     /* root first */
    char instance_id[NE_NSM_CA_INSTANCE_ID_LEN + 1];
    char leaf_cn_tail[NE_NSM_CA_LEAF_TAIL_MAX + 1];     /* ".local.ne-kvm" */
    time_t not_before;                          /* the instance's */
    time_t not_after;
};

/* One subject attribute; a NULL value stands for the CN. */
typedef struct NeNsmCaRdn {
    int nid;
    int type;                   /* V_ASN1_PRINTABLESTRING or UTF8STRING */
    const char *value;
} NeNsmCaRdn;

typedef struct NeNsmCaExt {
    int nid;
    const char *value;          /* OpenSSL's x509v3_config syntax */
} NeNsmCaExt;

typedef struct NeNsmCaShape {
    const NeNsmCaRdn *subject;  /* in encoding order; the leaf has none */
    const NeNsmCaExt *ext;      /* in AWS's order */
    long lifetime;              /* seconds (the root: after 30 years) */
    int serial_len;             /* random bytes; the leaf's is built */
} NeNsmCaShape;

/*
 * The values: C is ISO 3166's user-assigned "ZZ" (no country), and the
 * string types are AWS's (PrintableString for C, UTF8String otherwise).
 */
#define NE_NSM_CA_C   { NID_countryName, V_ASN1_PRINTABLESTRING, "ZZ" }
#define NE_NSM_CA_ST  { NID_stateOrProvinceName, V_ASN1_UTF8STRING, "local" }
#define NE_NSM_CA_L   { NID_localityName, V_ASN1_UTF8STRING, "local" }
#define NE_NSM_CA_O   { NID_organizationName, V_ASN1_UTF8STRING, "ne-kvm" }
#define NE_NSM_CA_OU \
    { NID_organizationalUnitName, V_ASN1_UTF8STRING, "local" }
#define NE_NSM_CA_CN  { NID_commonName, V_ASN1_UTF8STRING, NULL }
#define NE_NSM_CA_END { NID_undef, 0, NULL }

/* root and regional: C, O, OU, CN */
static const NeNsmCaRdn ne_nsm_ca_subject_region[] = {
    NE_NSM_CA_C, NE_NSM_CA_O, NE_NSM_CA_OU, NE_NSM_CA_CN, NE_NSM_CA_END
};
/* zonal: CN, OU, O, C, ST, L */
static const NeNsmCaRdn ne_nsm_ca_subject_zonal[] = {
    NE_NSM_CA_CN, NE_NSM_CA_OU, NE_NSM_CA_O, NE_NSM_CA_C, NE_NSM_CA_ST,
    NE_NSM_CA_L, NE_NSM_CA_END
};
/* instance (and the leaf, a copy of its issuer's): C, ST, L, O, OU, CN */
static const NeNsmCaRdn ne_nsm_ca_subject_instance[] = {
    NE_NSM_CA_C, NE_NSM_CA_ST, NE_NSM_CA_L, NE_NSM_CA_O, NE_NSM_CA_OU,
    NE_NSM_CA_CN, NE_NSM_CA_END
};

#define NE_NSM_CA_KU_CA "critical,digitalSignature,keyCertSign,cRLSign"

static const NeNsmCaExt ne_nsm_ca_ext_root[] = {
    { NID_basic_constraints, "critical,CA:TRUE" },
    { NID_subject_key_identifier, "hash" },
    { NID_key_usage, NE_NSM_CA_KU_CA },
    { NID_undef, NULL }
};
static const NeNsmCaExt ne_nsm_ca_ext_regional[] = {
    { NID_basic_constraints, "critical,CA:TRUE,pathlen:2" },
    { NID_authority_key_identifier, "keyid:always" },
    { NID_subject_key_identifier, "hash" },
    { NID_key_usage, NE_NSM_CA_KU_CA },
    { NID_undef, NULL }
};
static const NeNsmCaExt ne_nsm_ca_ext_zonal[] = {
    { NID_basic_constraints, "critical,CA:TRUE,pathlen:1" },
    { NID_authority_key_identifier, "keyid:always" },
    { NID_subject_key_identifier, "hash" },
    { NID_key_usage, NE_NSM_CA_KU_CA },
    { NID_undef, NULL }
};
static const NeNsmCaExt ne_nsm_ca_ext_instance[] = {
    { NID_basic_constraints, "critical,CA:TRUE,pathlen:0" },
    { NID_key_usage, "critical,keyCertSign" },
    { NID_subject_key_identifier, "hash" },
    { NID_authority_key_identifier, "keyid:always" },
    { NID_undef, NULL }
};
/* no SKI, no AKI, and a key usage that is not critical */
static const NeNsmCaExt ne_nsm_ca_ext_leaf[] = {
    { NID_basic_constraints, "critical,CA:FALSE" },
    { NID_key_usage, "digitalSignature,nonRepudiation" },
    { NID_undef, NULL }
};

/*
 * Lifetimes: root 30 years and 1 hour, regional 20 days and 1 hour, zonal
 * 6 days (AWS's are 5 d 14 h to 6 d), instance 24 hours, leaf 3 hours.
 * Serials: random, 16 bytes, 20 for the instance.
 */
static const NeNsmCaShape ne_nsm_ca_shapes[NE_NSM_CA_LEVELS] = {
    [NE_NSM_CA_ROOT] = {
        ne_nsm_ca_subject_region, ne_nsm_ca_ext_root, NE_NSM_CA_HOUR, 16
    },
    [NE_NSM_CA_REGIONAL] = {
        ne_nsm_ca_subject_region, ne_nsm_ca_ext_regional,
        20 * NE_NSM_CA_DAY + NE_NSM_CA_HOUR, 16
    },
    [NE_NSM_CA_ZONAL] = {
        ne_nsm_ca_subject_zonal, ne_nsm_ca_ext_zonal, 6 * NE_NSM_CA_DAY, 16
    },
    [NE_NSM_CA_INSTANCE] = {
        ne_nsm_ca_subject_instance, ne_nsm_ca_ext_instance, NE_NSM_CA_DAY, 20
    },
    [NE_NSM_CA_LEAF] = {
        NULL, ne_nsm_ca_ext_leaf, NE_NSM_CA_LEAF_LIFETIME, 0
    },
};

/*
 * Writes the reason into @err, with the last OpenSSL error when there is
 * one, and empties this thread's OpenSSL error queue (so that a failure
 * here never shows up as a later, unrelated one).
 */
static void ne_nsm_ca_fail(char *err, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void ne_nsm_ca_fail(char *err, size_t size, const char *fmt, ...)
{
    unsigned long e = ERR_peek_last_error();
    va_list ap;
    size_t n;

    if (err && size) {
        va_start(ap, fmt);
        vsnprintf(err, size, fmt, ap);
        va_end(ap);
        n = strlen(err);
        if (e && n + 3 < size) {
            snprintf(err + n, size - n, ": ");
            ERR_error_string_n(e, err + n + 2, size - n - 2);
        }
    }
    ERR_clear_error();
}

/* Every key of the chain is an EC key on P-384 (secp384r1). */
static bool ne_nsm_ca_is_p384(EVP_PKEY *key)
{
    char group[32];

    return key && EVP_PKEY_is_a(key, "EC") &&
           EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                          group, sizeof(group), NULL) &&
           strcmp(group, SN_secp384r1) == 0;
}

EVP_PKEY *ne_nsm_ca_new_key(char *err, size_t err_size)
{
    EVP_PKEY *key = EVP_EC_gen(SN_secp384r1);

    if (!key) {
        ne_nsm_ca_fail(err, err_size, "cannot generate a P-384 key");
    }
    return key;
}

/* 2 * @n random lower-case hex digits and a NUL into @hex */
static int ne_nsm_ca_random_hex(char *hex, size_t n)
{
    unsigned char bytes[16];
    size_t i;

    if (n > sizeof(bytes) || RAND_bytes(bytes, n) != 1) {
        ERR_clear_error();
        return -1;
    }
    for (i = 0; i < n; i++) {
        snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
    }
    return 0;
}

int ne_nsm_ca_new_cn(NeNsmCaLevel level, const char *instance_id,
                     char *cn, size_t size)
{
    char hex[33];
    int n;

    if (ne_nsm_ca_random_hex(hex, 8) < 0) {
        return -1;
    }
    switch (level) {
    case NE_NSM_CA_ROOT:
        n = snprintf(cn, size, "%s%s", NE_NSM_CA_PARTITION, NE_NSM_CA_SUFFIX);
        break;
    case NE_NSM_CA_REGIONAL:
        n = snprintf(cn, size, "%s%s", hex, NE_NSM_CA_NAME_TAIL);
        break;
    case NE_NSM_CA_ZONAL:
        n = snprintf(cn, size, "%s.zonal%s", hex, NE_NSM_CA_NAME_TAIL);
        break;
    case NE_NSM_CA_INSTANCE:
        /* AWS's instance IDs are 17 hex digits, the first one 0 */
        n = instance_id ?
            snprintf(cn, size, "%s%s", instance_id, NE_NSM_CA_NAME_TAIL) :
            snprintf(cn, size, "i-0%s%s", hex, NE_NSM_CA_NAME_TAIL);
        break;
    default:
        return -1;
    }
    return n > 0 && (size_t)n < size ? 0 : -1;
}

time_t ne_nsm_ca_not_after(NeNsmCaLevel level, time_t from)
{
    struct tm tm;

    if (level != NE_NSM_CA_ROOT) {
        return from + ne_nsm_ca_shapes[level].lifetime;
    }
    /* calendar years, as AWS's root: 2019-10-28 13:28 to 2049-10-28 14:28 */
    gmtime_r(&from, &tm);
    tm.tm_year += NE_NSM_CA_ROOT_YEARS;
    if (tm.tm_mon == 1 && tm.tm_mday == 29) {
        tm.tm_mday = 28;        /* 30 years after a 29 February */
    }
    return timegm(&tm) + ne_nsm_ca_shapes[level].lifetime;
}

/* ASN1_TIME_set() picks UTCTime before 2050, GeneralizedTime after */
static bool ne_nsm_ca_set_validity(X509 *x, time_t not_before,
                                   time_t not_after)
{
    return ASN1_TIME_set(X509_getm_notBefore(x), not_before) &&
           ASN1_TIME_set(X509_getm_notAfter(x), not_after);
}

static bool ne_nsm_ca_time(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;

    if (!ASN1_TIME_to_tm(t, &tm)) {
        return false;
    }
    *out = timegm(&tm);
    return true;
}

/* @len random bytes, positive, at most 20 octets once DER-encoded */
static ASN1_INTEGER *ne_nsm_ca_random_serial(int len)
{
    unsigned char bytes[20];
    ASN1_INTEGER *serial = NULL;
    BIGNUM *bn;

    if (len > (int)sizeof(bytes) || RAND_bytes(bytes, len) != 1) {
        return NULL;
    }
    /*
     * A non-zero first byte keeps the length AWS's have.  A 20-byte
     * serial also gets its top bit clear: DER would add a 21st octet for
     * the sign, as AWS's instance serials have, and RFC 5280 allows 20.
     */
    if (len == (int)sizeof(bytes)) {
        bytes[0] = (bytes[0] & 0x7f) | 0x40;
    } else {
        bytes[0] |= 0x01;
    }
    bn = BN_bin2bn(bytes, len, NULL);
    if (bn) {
        serial = BN_to_ASN1_INTEGER(bn, NULL);
        BN_free(bn);
    }
    return serial;
}

/* The subject of @level, attributes in the table's order, CN @cn */
static X509_NAME *ne_nsm_ca_subject(NeNsmCaLevel level, const char *cn)
{
    const NeNsmCaRdn *rdn = ne_nsm_ca_shapes[level].subject;
    X509_NAME *name = X509_NAME_new();

    for (; name && rdn->nid != NID_undef; rdn++) {
        const char *v = rdn->value ? rdn->value : cn;

        if (!X509_NAME_add_entry_by_NID(name, rdn->nid, rdn->type,
                                        (const unsigned char *)v, -1,
                                        -1, 0)) {
            X509_NAME_free(name);
            return NULL;
        }
    }
    return name;
}

/*
 * The extensions of @level in their order.  AKI and SKI are computed by
 * OpenSSL (SKI: SHA-1 of the public key, RFC 5280's method 1).
 */
static bool ne_nsm_ca_add_extensions(X509 *x, NeNsmCaLevel level,
                                     X509 *issuer)
{
    const NeNsmCaExt *e = ne_nsm_ca_shapes[level].ext;
    X509V3_CTX ctx;

    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    for (; e->nid != NID_undef; e++) {
        X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, e->nid,
                                                   e->value);
        bool ok = ext && X509_add_ext(x, ext, -1);

        X509_EXTENSION_free(ext);
        if (!ok) {
            return false;
        }
    }
    return true;
}

/*
 * A certificate of @level: version 3, @serial, @subject, issued by
 * @issuer (NULL: @subject itself) and signed with ecdsa-with-SHA384 by
 * @issuer_key (NULL: @key).
 */
static X509 *ne_nsm_ca_build(NeNsmCaLevel level, X509_NAME *subject,
                             EVP_PKEY *key, X509 *issuer,
                             EVP_PKEY *issuer_key, ASN1_INTEGER *serial,
                             time_t not_before, time_t not_after)
{
    X509 *x = X509_new();

    if (!x || !X509_set_version(x, X509_VERSION_3) ||
        !X509_set_serialNumber(x, serial) ||
        !X509_set_subject_name(x, subject) ||
        !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer)
                                        : subject) ||
        !ne_nsm_ca_set_validity(x, not_before, not_after) ||
        !X509_set_pubkey(x, key) ||
        !ne_nsm_ca_add_extensions(x, level, issuer) ||
        !X509_sign(x, issuer_key ? issuer_key : key, EVP_sha384())) {
        X509_free(x);
        return NULL;
    }
    return x;
}

X509 *ne_nsm_ca_make_cert(NeNsmCaLevel level, const char *cn, EVP_PKEY *key,
                          X509 *issuer, EVP_PKEY *issuer_key, time_t now,
                          char *err, size_t err_size)
{
    ASN1_INTEGER *serial;
    X509_NAME *subject;
    X509 *x = NULL;

    if (level >= NE_NSM_CA_LEAF || !cn || !ne_nsm_ca_is_p384(key) ||
        (level == NE_NSM_CA_ROOT) != !issuer || !issuer != !issuer_key) {
        ne_nsm_ca_fail(err, err_size, "a CA certificate needs a level, a CN, "
                       "a P-384 key and an issuer for all but the root");
        return NULL;
    }
    serial = ne_nsm_ca_random_serial(ne_nsm_ca_shapes[level].serial_len);
    subject = ne_nsm_ca_subject(level, cn);
    if (serial && subject) {
        x = ne_nsm_ca_build(level, subject, key, issuer, issuer_key, serial,
                            now, ne_nsm_ca_not_after(level, now));
    }
    if (!x) {
        ne_nsm_ca_fail(err, err_size, "cannot make the certificate of %s",
                       cn);
    }
    ASN1_INTEGER_free(serial);
    X509_NAME_free(subject);
    return x;
}

/* Loading the instance CA ------------------------------------------------ */

/* An encrypted key in the bundle is refused, never prompted for. */
static int ne_nsm_ca_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* The key, then instance, zonal, regional, root, then nothing. */
static bool ne_nsm_ca_parse(NeNsmCa *ca, const char *pem, size_t len,
                            char *err, size_t err_size)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509 *extra;
    int i;

    ca->key = bio ? PEM_read_bio_PrivateKey(bio, NULL,
                                            ne_nsm_ca_no_passphrase, NULL)
                  : NULL;
    if (!ca->key) {
        BIO_free(bio);
        ne_nsm_ca_fail(err, err_size, "no private key at the start of the "
                       "instance CA bundle");
        return false;
    }
    for (i = NE_NSM_CA_INSTANCE; i >= NE_NSM_CA_ROOT; i--) {
        X509 *x = PEM_read_bio_X509(bio, NULL, ne_nsm_ca_no_passphrase, NULL);

        ca->cert[i].x509 = x;
        if (!x) {
            BIO_free(bio);
            ne_nsm_ca_fail(err, err_size, "the instance CA bundle has %d "
                           "certificates after its key, not 4 (instance, "
                           "zonal, regional, root)",
                           NE_NSM_CA_INSTANCE - i);
            return false;
        }
    }
    extra = PEM_read_bio_X509(bio, NULL, ne_nsm_ca_no_passphrase, NULL);
    BIO_free(bio);
    ERR_clear_error();          /* the expected end of the bundle */
    if (extra) {
        X509_free(extra);
        ne_nsm_ca_fail(err, err_size, "the instance CA bundle has more than "
                       "4 certificates after its key");
        return false;
    }
    return true;
}

/* P-384 keys and ecdsa-with-SHA384 signatures everywhere */
static bool ne_nsm_ca_check_algorithms(NeNsmCa *ca, char *err,
                                       size_t err_size)
{
    int i;

    if (!ne_nsm_ca_is_p384(ca->key)) {
        ne_nsm_ca_fail(err, err_size, "the instance CA key is not P-384");
        return false;
    }
    for (i = 0; i < NE_NSM_CA_BUNDLE_LEN; i++) {
        X509 *x = ca->cert[i].x509;

        if (!ne_nsm_ca_is_p384(X509_get0_pubkey(x)) ||
            X509_get_signature_nid(x) != NID_ecdsa_with_SHA384) {
            ne_nsm_ca_fail(err, err_size, "certificate %d of the bundle "
                           "(root 0) is not P-384 with ecdsa-with-SHA384", i);
            return false;
        }
    }
    if (X509_check_private_key(ca->cert[NE_NSM_CA_INSTANCE].x509,
                               ca->key) != 1) {
        ne_nsm_ca_fail(err, err_size, "the instance CA key does not match "
                       "the instance certificate");
        return false;
    }
    return true;
}

/*
 * The instance certificate must verify to the bundle's root: PKIX path
 * validation (signatures, basic constraints, path lengths, key usages),
 * strict, without CRLs and without the time (ne_nsm_ca_issue() checks
 * the instance's, the one every leaf depends on).  The instance must be
 * the last CA (pathLen 0) with keyCertSign.
 */
static bool ne_nsm_ca_check_chain(NeNsmCa *ca, char *err, size_t err_size)
{
    X509 *instance = ca->cert[NE_NSM_CA_INSTANCE].x509;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    NeNsmCaStack *mid = sk_X509_new_null();
    int rc = 0, vr = X509_V_ERR_UNSPECIFIED;

    if (store && ctx && mid && X509_STORE_add_cert(store, ca->cert[0].x509) &&
        sk_X509_push(mid, ca->cert[NE_NSM_CA_ZONAL].x509) &&
        sk_X509_push(mid, ca->cert[NE_NSM_CA_REGIONAL].x509) &&
        X509_STORE_CTX_init(ctx, store, instance, mid)) {
        X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME |
                                 X509_V_FLAG_X509_STRICT);
        rc = X509_verify_cert(ctx);
        vr = X509_STORE_CTX_get_error(ctx);
    }
    sk_X509_free(mid);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    if (rc != 1) {
        ne_nsm_ca_fail(err, err_size, "the instance CA chain does not verify "
                       "to its root: %s", X509_verify_cert_error_string(vr));
        return false;
    }
    if (X509_get_pathlen(instance) != 0 ||
        !(X509_get_key_usage(instance) & KU_KEY_CERT_SIGN)) {
        ne_nsm_ca_fail(err, err_size, "the instance certificate is not a CA "
                       "with pathLen 0 and keyCertSign");
        return false;
    }
    return true;
}

static bool ne_nsm_ca_is_hex(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

/*
 * The instance's CN is "i-<17 hex>.<region>.<partition>.nitro-enclaves";
 * the instance ID starts every module_id, and the leaf's CN ends with
 * ".<region>.<partition>" (AWS: instance "i-X.eu-central-1.aws.nitro-
 * enclaves", leaf "i-X-encY.eu-central-1.aws").
 */
static bool ne_nsm_ca_parse_instance_cn(NeNsmCa *ca, char *err,
                                        size_t err_size)
{
    X509_NAME *name = X509_get_subject_name(ca->cert[NE_NSM_CA_INSTANCE].x509);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    const ASN1_STRING *s = i < 0 ? NULL :
        X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    const char *cn = s ? (const char *)ASN1_STRING_get0_data(s) : "";
    size_t n = s ? (size_t)ASN1_STRING_length(s) : 0;
    size_t id = NE_NSM_CA_INSTANCE_ID_LEN, sfx = strlen(NE_NSM_CA_SUFFIX);
    size_t tail;

    if (n <= id + 1 || memchr(cn, 0, n) || strncmp(cn, "i-", 2) ||
        !ne_nsm_ca_is_hex(cn + 2, id - 2) || cn[id] != '.') {
        ne_nsm_ca_fail(err, err_size, "the instance certificate's CN is not "
                       "\"i-<17 hex>.<region>...\"");
        return false;
    }
    memcpy(ca->instance_id, cn, id);
    ca->instance_id[id] = 0;
    tail = n - id;
    if (tail > sfx && !memcmp(cn + n - sfx, NE_NSM_CA_SUFFIX, sfx)) {
        tail -= sfx;
    }
    if (tail > NE_NSM_CA_LEAF_TAIL_MAX) {
        ne_nsm_ca_fail(err, err_size, "the instance certificate's CN is too "
                       "long for a leaf CN of 64 characters");
        return false;
    }
    memcpy(ca->leaf_cn_tail, cn + id, tail);
    ca->leaf_cn_tail[tail] = 0;
    return true;
}

static bool ne_nsm_ca_encode(NeNsmCa *ca, char *err, size_t err_size)
{
    X509 *instance = ca->cert[NE_NSM_CA_INSTANCE].x509;
    int i, n;

    for (i = 0; i < NE_NSM_CA_BUNDLE_LEN; i++) {
        ca->cert[i].der.data = NULL;
        n = i2d_X509(ca->cert[i].x509, &ca->cert[i].der.data);
        if (n <= 0) {
            ne_nsm_ca_fail(err, err_size, "cannot encode certificate %d", i);
            return false;
        }
        ca->cert[i].der.len = n;
    }
    if (!ne_nsm_ca_time(X509_get0_notBefore(instance), &ca->not_before) ||
        !ne_nsm_ca_time(X509_get0_notAfter(instance), &ca->not_after)) {
        ne_nsm_ca_fail(err, err_size, "the instance certificate's validity "
                       "cannot be read");
        return false;
    }
    return true;
}

NeNsmCa *ne_nsm_ca_load_pem(const char *pem, size_t len,
                            char *err, size_t err_size)
{
    NeNsmCa *ca;

    if (!pem || len == 0 || len > NE_NSM_CA_PEM_MAX) {
        ne_nsm_ca_fail(err, err_size, "the instance CA bundle is empty or "
                       "larger than %d bytes", NE_NSM_CA_PEM_MAX);
        return NULL;
    }
    ca = OPENSSL_zalloc(sizeof(*ca));
    if (!ca) {
        ne_nsm_ca_fail(err, err_size, "out of memory");
        return NULL;
    }
    if (!ne_nsm_ca_parse(ca, pem, len, err, err_size) ||
        !ne_nsm_ca_check_algorithms(ca, err, err_size) ||
        !ne_nsm_ca_check_chain(ca, err, err_size) ||
        !ne_nsm_ca_parse_instance_cn(ca, err, err_size) ||
        !ne_nsm_ca_encode(ca, err, err_size)) {
        ne_nsm_ca_free(ca);
        return NULL;
    }
    return ca;
}

/* The whole file from offset 0 (pread), or a pipe's bytes to its end */
static ssize_t ne_nsm_ca_read_all(int fd, char *buf, size_t size)
{
    size_t got = 0;
    bool seekable = true;
    ssize_t n;

    while (got < size) {
        n = seekable ? pread(fd, buf + got, size - got, got)
                     : read(fd, buf + got, size - got);
        if (n < 0 && errno == ESPIPE && seekable && got == 0) {
            seekable = false;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            return got;
        }
        got += n;
    }
    errno = EFBIG;
    return -1;
}

NeNsmCa *ne_nsm_ca_load_fd(int fd, char *err, size_t err_size)
{
    /* one byte more than the largest bundle, to tell a larger one */
    size_t size = NE_NSM_CA_PEM_MAX + 1;
    char *buf = OPENSSL_malloc(size);
    NeNsmCa *ca = NULL;
    ssize_t n;

    if (!buf) {
        ne_nsm_ca_fail(err, err_size, "out of memory");
        return NULL;
    }
    n = ne_nsm_ca_read_all(fd, buf, size);
    if (n < 0) {
        ne_nsm_ca_fail(err, err_size, "cannot read the instance CA bundle: "
                       "%s", strerror(errno));
    } else {
        ca = ne_nsm_ca_load_pem(buf, n, err, err_size);
    }
    OPENSSL_clear_free(buf, size);      /* it held the private key */
    return ca;
}

NeNsmCa *ne_nsm_ca_load_file(const char *path, char *err, size_t err_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    NeNsmCa *ca;

    if (fd < 0) {
        ne_nsm_ca_fail(err, err_size, "cannot open %s: %s", path,
                       strerror(errno));
        return NULL;
    }
    ca = ne_nsm_ca_load_fd(fd, err, err_size);
    close(fd);
    return ca;
}

void ne_nsm_ca_free(NeNsmCa *ca)
{
    int i;

    if (!ca) {
        return;
    }
    EVP_PKEY_free(ca->key);
    for (i = 0; i < NE_NSM_CA_BUNDLE_LEN; i++) {
        X509_free(ca->cert[i].x509);
        OPENSSL_free(ca->cert[i].der.data);
    }
    OPENSSL_free(ca);
}

const char *ne_nsm_ca_instance_id(const NeNsmCa *ca)
{
    return ca->instance_id;
}

time_t ne_nsm_ca_expires(const NeNsmCa *ca)
{
    return ca->not_after;
}

/* Issuing a leaf ---------------------------------------------------------- */

/* A new enclave's ID: milliseconds since the epoch (6 bytes), 2 random */
static bool ne_nsm_ca_new_enclave_id(uint8_t *id, time_t now)
{
    struct timeval tv;
    uint64_t ms;
    int i;

    gettimeofday(&tv, NULL);
    ms = (uint64_t)now * 1000 + tv.tv_usec / 1000;
    for (i = 0; i < 6; i++) {
        id[i] = ms >> (8 * (5 - i));
    }
    if (RAND_bytes(id + 6, NE_NSM_CA_ENCLAVE_ID_LEN - 6) != 1) {
        return false;
    }
    return true;
}

/* AWS's: the enclave ID, 4 zero bytes, the issue time (32 bits, seconds) */
static ASN1_INTEGER *ne_nsm_ca_leaf_serial(const uint8_t *enclave_id,
                                           time_t issued)
{
    unsigned char bytes[NE_NSM_CA_ENCLAVE_ID_LEN + 8] = { 0 };
    ASN1_INTEGER *serial = NULL;
    uint32_t t = (uint32_t)issued;
    BIGNUM *bn;
    int i;

    memcpy(bytes, enclave_id, NE_NSM_CA_ENCLAVE_ID_LEN);
    for (i = 0; i < 4; i++) {
        bytes[sizeof(bytes) - 1 - i] = t >> (8 * i);
    }
    bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
    if (bn) {
        serial = BN_to_ASN1_INTEGER(bn, NULL);
        BN_free(bn);
    }
    return serial;
}

/* The instance's subject, the same attributes, with the leaf's CN */
static X509_NAME *ne_nsm_ca_leaf_subject(const NeNsmCa *ca, const char *cn)
{
    X509_NAME *name = X509_NAME_dup(
        X509_get_subject_name(ca->cert[NE_NSM_CA_INSTANCE].x509));
    int i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;

    if (i < 0) {
        X509_NAME_free(name);
        return NULL;
    }
    X509_NAME_ENTRY_free(X509_NAME_delete_entry(name, i));
    if (!X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                                    (const unsigned char *)cn, -1, i, 0)) {
        X509_NAME_free(name);
        return NULL;
    }
    return name;
}

static bool ne_nsm_ca_der_copy(NeNsmCaDer *to, const NeNsmCaDer *from)
{
    to->data = OPENSSL_memdup(from->data, from->len);
    to->len = to->data ? from->len : 0;
    return to->data != NULL;
}

/* The leaf's certificate for @leaf->key, its DER and the cabundle copies */
static bool ne_nsm_ca_leaf_cert(const NeNsmCa *ca, NeNsmLeaf *leaf)
{
    char cn[NE_NSM_CA_MODULE_ID_LEN + NE_NSM_CA_LEAF_TAIL_MAX + 1];
    ASN1_INTEGER *serial;
    X509_NAME *subject;
    X509 *x = NULL;
    int i, n = -1;

    snprintf(cn, sizeof(cn), "%s%s", leaf->module_id, ca->leaf_cn_tail);
    serial = ne_nsm_ca_leaf_serial(leaf->enclave_id, leaf->issued);
    subject = ne_nsm_ca_leaf_subject(ca, cn);
    if (serial && subject) {
        x = ne_nsm_ca_build(NE_NSM_CA_LEAF, subject, leaf->key,
                            ca->cert[NE_NSM_CA_INSTANCE].x509, ca->key, serial,
                            leaf->not_before, leaf->not_after);
    }
    ASN1_INTEGER_free(serial);
    X509_NAME_free(subject);
    if (x) {
        n = i2d_X509(x, &leaf->cert.data);
        X509_free(x);
    }
    if (n <= 0) {
        return false;
    }
    leaf->cert.len = n;
    for (i = 0; i < NE_NSM_CA_BUNDLE_LEN; i++) {
        if (!ne_nsm_ca_der_copy(&leaf->cabundle[i], &ca->cert[i].der)) {
            return false;
        }
    }
    return true;
}

/* The enclave's ID (@enclave_id, or a new one) and its module_id */
static bool ne_nsm_ca_leaf_identity(const NeNsmCa *ca,
                                    const uint8_t *enclave_id,
                                    NeNsmLeaf *leaf)
{
    char hex[2 * NE_NSM_CA_ENCLAVE_ID_LEN + 1];
    int i;

    if (enclave_id) {
        memcpy(leaf->enclave_id, enclave_id, NE_NSM_CA_ENCLAVE_ID_LEN);
    } else if (!ne_nsm_ca_new_enclave_id(leaf->enclave_id, leaf->issued)) {
        return false;
    }
    for (i = 0; i < NE_NSM_CA_ENCLAVE_ID_LEN; i++) {
        snprintf(hex + 2 * i, 3, "%02x", leaf->enclave_id[i]);
    }
    snprintf(leaf->module_id, sizeof(leaf->module_id), "%s-enc%s",
             ca->instance_id, hex);
    return true;
}

int ne_nsm_ca_issue(const NeNsmCa *ca, const uint8_t *enclave_id,
                    time_t now, NeNsmLeaf *leaf, char *err, size_t err_size)
{
    memset(leaf, 0, sizeof(*leaf));
    leaf->issued = now ? now : time(NULL);
    leaf->not_before = leaf->issued - NE_NSM_CA_LEAF_BACKDATE;
    leaf->not_after = ne_nsm_ca_not_after(NE_NSM_CA_LEAF, leaf->issued);
    /*
     * A verifier checks every certificate at the document's time, which
     * comes after the issue: the instance must be valid from the issue
     * to the leaf's end.  (The leaf's 3 s of backdating may reach before
     * the instance's notBefore, as no document is that old.)
     */
    if (leaf->issued < ca->not_before || leaf->not_after > ca->not_after) {
        ne_nsm_ca_fail(err, err_size, "the instance certificate (valid until "
                       "%lld) does not cover a leaf issued at %lld for %d s: "
                       "renew it (ne-attest-ca ensure)",
                       (long long)ca->not_after, (long long)leaf->issued,
                       NE_NSM_CA_LEAF_LIFETIME);
        ne_nsm_leaf_clear(leaf);
        return -1;
    }
    if (!ne_nsm_ca_leaf_identity(ca, enclave_id, leaf)) {
        ne_nsm_ca_fail(err, err_size, "no random bytes for an enclave ID");
        ne_nsm_leaf_clear(leaf);
        return -1;
    }
    leaf->key = ne_nsm_ca_new_key(NULL, 0);
    if (!leaf->key || !ne_nsm_ca_leaf_cert(ca, leaf)) {
        ne_nsm_ca_fail(err, err_size, "cannot issue the leaf of %s",
                       leaf->module_id);
        ne_nsm_leaf_clear(leaf);
        return -1;
    }
    return 0;
}

void ne_nsm_leaf_clear(NeNsmLeaf *leaf)
{
    int i;

    EVP_PKEY_free(leaf->key);
    OPENSSL_free(leaf->cert.data);
    for (i = 0; i < NE_NSM_CA_BUNDLE_LEN; i++) {
        OPENSSL_free(leaf->cabundle[i].data);
    }
    memset(leaf, 0, sizeof(*leaf));
}
