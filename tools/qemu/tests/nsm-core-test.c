/*
 * Host unit tests of the NSM core (hw/ne/ne-nsm-*.c), in TAP: the PCR
 * bank, every request and error of the catalogue, the identity checks,
 * documents verified by nectl against a throwaway P-384 chain, their
 * layout against real AWS documents, the bound on libcbor's allocations
 * and a seeded fuzz of malformed and mutated requests.
 *
 * Usage: nsm-core-test --nectl NECTL --vectors DIR --tmp DIR
 *                      [--seed N] [--fuzz N] [--label NAME]
 * NE_SEED=N replays a fuzz run, like --seed.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ne-nsm-boot.h"
#include "ne-nsm-cbor.h"
#include "ne-nsm-core.h"
#include "nsm-core-test.h"

/* ------------------------------------------------------------ TAP */

static const char *label = "nsm";
static int nr_tests, nr_failed;

static bool ok(bool cond, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool ok(bool cond, const char *fmt, ...)
{
    va_list ap;

    nr_tests++;
    nr_failed += !cond;
    printf("%sok %d - %s: ", cond ? "" : "not ", nr_tests, label);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return cond;
}

static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void diag(const char *fmt, ...)
{
    va_list ap;

    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static void die(const char *what)
{
    printf("Bail out! %s\n", what);
    exit(1);
}

/* ------------------------------------------------------------ allocations */

/*
 * The largest single allocation asked for while tracking, to show what
 * libcbor would allocate.  The plain build replaces malloc() for the whole
 * process (libcbor included) and refuses anything over 256 MiB; the
 * ASan build asks ASan (max_allocation_size_mb=256 and
 * allocator_may_return_null=1, set by the runner, do the refusing).
 */
static size_t largest_alloc;
static bool tracking;

static void note_alloc(size_t size)
{
    if (tracking && size > largest_alloc) {
        largest_alloc = size;
    }
}

#ifdef NSM_TEST_ASAN
static void asan_malloc_hook(const volatile void *p, /* ASan's type */
                             size_t size)
{
    (void)p;
    note_alloc(size);
}

static void asan_free_hook(const volatile void *p) /* ASan's type */
{
    (void)p;
}

static void track_allocations(void)
{
    /* (ASan installs no hook unless both are given) */
    if (!__sanitizer_install_malloc_and_free_hooks(asan_malloc_hook,
                                                   asan_free_hook)) {
        die("ASan's allocation hooks cannot be installed");
    }
}
#else
#define ALLOC_LIMIT ((size_t)256 << 20)

void *malloc(size_t size)
{
    note_alloc(size);
    if (size > ALLOC_LIMIT) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    size_t total = n && size > SIZE_MAX / n ? SIZE_MAX : n * size;

    note_alloc(total);
    if (total > ALLOC_LIMIT) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    note_alloc(size);
    if (size > ALLOC_LIMIT) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_realloc(p, size);
}

static void track_allocations(void)
{
}
#endif

/* ------------------------------------------------------------ helpers */

static const char *tmp_dir, *nectl, *vectors;

static uint64_t now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void hex(const uint8_t *p, size_t len, char *out)
{
    size_t i;

    for (i = 0; i < len; i++) {
        sprintf(out + 2 * i, "%02x", p[i]);
    }
    out[2 * len] = '\0';
}

static void sha384_concat(const uint8_t *a, size_t alen, const uint8_t *b,
                          size_t blen, uint8_t out[48])
{
    uint8_t *buf = malloc(alen + blen + 1);

    memcpy(buf, a, alen);
    memcpy(buf + alen, b, blen);
    EVP_Digest(buf, alen + blen, out, NULL, EVP_sha384(), NULL);
    free(buf);
}

static bool write_file(const char *path, const uint8_t *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    bool good = f && fwrite(p, 1, len, f) == len;

    return f && !fclose(f) && good;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n = -1;

    if (!f) {
        return NULL;
    }
    if (!fseek(f, 0, SEEK_END)) {
        n = ftell(f);
    }
    if (n > 0 && !fseek(f, 0, SEEK_SET)) {
        buf = malloc(n);
        if (buf && fread(buf, 1, n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = n;
    }
    fclose(f);
    return buf;
}

/* ------------------------------------------------------------ requests */

static uint8_t resp[NE_NSM_RESPONSE_MAX + 64];
static size_t resp_len;

/* One item filling @p exactly (responses are the core's own output). */
static cbor_item_t *decode_all(const uint8_t *p, size_t len)
{
    struct cbor_load_result r;
    cbor_item_t *item;

    if (!len) {
        return NULL;
    }
    item = cbor_load(p, len, &r);
    if (item && r.read != len) {
        cbor_decref(&item);
    }
    return item;
}

static size_t call(struct ne_nsm *nsm, const uint8_t *req, size_t len)
{
    resp_len = ne_nsm_handle(nsm, req, len, resp, NE_NSM_RESPONSE_MAX);
    return resp_len;
}

/* Encodes @req (taken) and sends it. */
static size_t send_item(struct ne_nsm *nsm, cbor_item_t *req)
{
    uint8_t buf[2 * NE_NSM_REQUEST_MAX];
    size_t len = cbor_serialize(req, buf, sizeof(buf));

    cbor_decref(&req);
    if (!len) {
        die("a test request does not encode");
    }
    return call(nsm, buf, len);
}

/* {name: fields}, fields given as key, item pairs ending with NULL. */
static cbor_item_t *request(const char *name, ...)
{
    cbor_item_t *fields = cbor_new_indefinite_map(), *map;
    const char *key;
    va_list ap;

    va_start(ap, name);
    while ((key = va_arg(ap, const char *))) {
        ne_nsm_cbor_put(fields, cbor_build_string(key),
                        va_arg(ap, cbor_item_t *));
    }
    va_end(ap);
    map = cbor_new_definite_map(1);
    ne_nsm_cbor_put(map, cbor_build_string(name), fields);
    return map;
}

static cbor_item_t *u(uint64_t v)
{
    return ne_nsm_cbor_uint(v);
}

static cbor_item_t *bstr(const void *p, size_t len)
{
    return cbor_build_bytestring(len ? p : "", len);
}

/* The error name of the last answer, or NULL when it is no error. */
static const char *error_of_last(void)
{
    static char name[32];
    cbor_item_t *item = decode_all(resp, resp_len);
    struct cbor_pair *p;

    name[0] = '\0';
    if (item && cbor_isa_map(item) && cbor_map_size(item) == 1) {
        p = cbor_map_handle(item);
        if (ne_nsm_cbor_is_text(p->key, "Error") && cbor_isa_string(p->value) &&
            cbor_string_length(p->value) < sizeof(name)) {
            memcpy(name, cbor_string_handle(p->value),
                   cbor_string_length(p->value));
            name[cbor_string_length(p->value)] = '\0';
        }
    }
    if (item) {
        cbor_decref(&item);
    }
    return name[0] ? name : NULL;
}

static bool is_error(const char *want)
{
    const char *got = error_of_last();

    if (!got || strcmp(got, want)) {
        diag("expected Error %s, got %s (%zu bytes)", want,
             got ? got : "no error", resp_len);
        return false;
    }
    return true;
}

/*
 * The body of the last answer {name: body} (a new reference), or NULL.
 */
static cbor_item_t *body_of_last(const char *name)
{
    cbor_item_t *item = decode_all(resp, resp_len), *body = NULL;
    struct cbor_pair *p;

    if (item && cbor_isa_map(item) && cbor_map_size(item) == 1) {
        p = cbor_map_handle(item);
        if (ne_nsm_cbor_is_text(p->key, name)) {
            body = cbor_incref(p->value);
        }
    }
    if (item) {
        cbor_decref(&item);
    }
    return body;
}

static const cbor_item_t *field(const cbor_item_t *map, const char *key)
{
    struct cbor_pair *p = cbor_map_handle(map);
    size_t i;

    for (i = 0; i < cbor_map_size(map); i++) {
        if (ne_nsm_cbor_is_text(p[i].key, key)) {
            return p[i].value;
        }
    }
    return NULL;
}

static bool field_bytes(const cbor_item_t *map, const char *key,
                        const uint8_t **data, size_t *len)
{
    const cbor_item_t *v = map ? field(map, key) : NULL;

    if (!v || !cbor_isa_bytestring(v) || !cbor_bytestring_is_definite(v)) {
        return false;
    }
    *data = cbor_bytestring_handle(v);
    *len = cbor_bytestring_length(v);
    return true;
}

/* DescribePCR's answer: lock and data. */
static bool describe_pcr(struct ne_nsm *nsm, unsigned int index, bool *lock,
                         uint8_t data[48])
{
    cbor_item_t *body;
    const cbor_item_t *l;
    const uint8_t *d;
    size_t len;
    bool good;

    send_item(nsm, request("DescribePCR", "index", u(index), NULL));
    body = body_of_last("DescribePCR");
    good = body && cbor_isa_map(body) && cbor_map_size(body) == 2 &&
           (l = field(body, "lock")) && cbor_is_bool(l) &&
           field_bytes(body, "data", &d, &len) && len == 48;
    if (good) {
        *lock = cbor_get_bool(l);
        memcpy(data, d, 48);
    }
    if (body) {
        cbor_decref(&body);
    }
    return good;
}

/* ------------------------------------------------------------ test chain */

struct cert {
    EVP_PKEY *key;
    X509 *x509;
    uint8_t *der;
    int der_len;
};

static EVP_PKEY *new_key(const char *curve)
{
    EVP_PKEY *k = EVP_EC_gen(curve);

    if (!k) {
        die("EC key generation failed");
    }
    return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext || !X509_add_ext(x, ext, -1)) {
        die("X509v3 extension");
    }
    X509_EXTENSION_free(ext);
}

struct cert_spec {
    const char *cn;
    const char *constraints;    /* basicConstraints */
    const char *usage;          /* keyUsage */
    bool ids;                   /* SKI, and AKI when not self-signed */
    long lifetime;              /* seconds, from an hour ago */
    const char *comment;        /* an nsComment that pads the DER */
};

/* A P-384 certificate for @s, issued by @issuer (NULL: self-signed). */
static void make_cert(struct cert *c, const struct cert_spec *s,
                      const struct cert *issuer)
{
    X509_NAME *name;
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();

    c->key = new_key("P-384");
    X509_set_version(x, 2);
    BN_rand(serial, 120, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x));
    BN_free(serial);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC,
                               (const uint8_t *)"US", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               (const uint8_t *)"ne-kvm test", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const uint8_t *)s->cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->x509)
                                   : name);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), s->lifetime - 3600);
    X509_set_pubkey(x, c->key);
    add_ext(x, issuer ? issuer->x509 : x, NID_basic_constraints,
            s->constraints);
    add_ext(x, issuer ? issuer->x509 : x, NID_key_usage, s->usage);
    if (s->ids) {
        add_ext(x, x, NID_subject_key_identifier, "hash");
        if (issuer) {
            add_ext(x, issuer->x509, NID_authority_key_identifier,
                    "keyid:always");
        }
    }
    if (s->comment) {
        add_ext(x, x, NID_netscape_comment, s->comment);
    }
    if (!X509_sign(x, issuer ? issuer->key : c->key, EVP_sha384())) {
        die("X509_sign");
    }
    c->x509 = x;
    c->der = NULL;
    c->der_len = i2d_X509(x, &c->der);
}

static void free_cert(struct cert *c)
{
    EVP_PKEY_free(c->key);
    X509_free(c->x509);
    OPENSSL_free(c->der);
}

#define MODULE_ID "i-0123456789abcdef0-enc0123456789abcdef"
#define OTHER_MODULE_ID "i-0fedcba9876543210-encfedcba9876543210"
#define NR_CHAIN 5

/* AWS's shape (spec section 5): root, regional, zonal, instance, leaf. */
static const struct cert_spec chain_spec[NR_CHAIN] = {
    { "test.nitro-enclaves", "critical,CA:TRUE",
      "critical,digitalSignature,keyCertSign,cRLSign", true,
      30L * 365 * 86400, NULL },
    { "0123456789abcdef.eu-central-1.test.nitro-enclaves",
      "critical,CA:TRUE,pathlen:2",
      "critical,digitalSignature,keyCertSign,cRLSign", true, 20L * 86400,
      NULL },
    { "fedcba9876543210.zonal.eu-central-1.test.nitro-enclaves",
      "critical,CA:TRUE,pathlen:1",
      "critical,digitalSignature,keyCertSign,cRLSign", true, 6L * 86400,
      NULL },
    { "i-0123456789abcdef0.eu-central-1.test.nitro-enclaves",
      "critical,CA:TRUE,pathlen:0", "critical,keyCertSign", true, 86400,
      NULL },
    { MODULE_ID ".eu-central-1.test", "critical,CA:FALSE",
      "digitalSignature,nonRepudiation", false, 3 * 3600 + 3600, NULL },
};

static struct cert chain[NR_CHAIN];
static char root_pem[512];

static void make_chain(void)
{
    FILE *f;
    int i;

    for (i = 0; i < NR_CHAIN; i++) {
        make_cert(&chain[i], &chain_spec[i], i ? &chain[i - 1] : NULL);
    }
    snprintf(root_pem, sizeof(root_pem), "%s/root.pem", tmp_dir);
    f = fopen(root_pem, "w");
    if (!f || !PEM_write_X509(f, chain[0].x509) || fclose(f)) {
        die("cannot write the test root");
    }
}

static struct ne_nsm_identity identity(void)
{
    struct ne_nsm_identity id = {
        .key = chain[NR_CHAIN - 1].key,
        .certificate = { chain[NR_CHAIN - 1].der, chain[NR_CHAIN - 1].der_len },
        .nr_cabundle = NR_CHAIN - 1,
        .module_id = MODULE_ID,
    };
    int i;

    for (i = 0; i < NR_CHAIN - 1; i++) {
        id.cabundle[i] = (struct ne_nsm_der) { chain[i].der, chain[i].der_len };
    }
    return id;
}

/* ------------------------------------------------------------ boot */

static uint8_t boot_value[NE_NSM_NR_PCRS][48];

/* An NSM as the hypervisor leaves it: PCR0-4 and 8 measured, 0-15 locked. */
static void boot_nsm(struct ne_nsm *nsm, bool debug)
{
    static const unsigned int measured[] = { 0, 1, 2, 3, 4, 8 };
    struct ne_nsm_boot_pcrs boot = { .debug = debug };
    struct ne_nsm_identity id = identity();
    const char *why;
    size_t i;
    char what[32];

    for (i = 0; i < sizeof(measured) / sizeof(measured[0]); i++) {
        snprintf(what, sizeof(what), "measurement %u", measured[i]);
        ne_nsm_pcr_measure(what, strlen(what), boot_value[measured[i]]);
        boot.value[measured[i]] = boot_value[measured[i]];
    }
    ne_nsm_init(nsm);
    if (!ne_nsm_boot(nsm, &boot) || !ne_nsm_set_identity(nsm, &id, &why)) {
        die("the test NSM does not boot");
    }
}

/* ------------------------------------------------------------ boot record */

/* A record as the launcher writes it: PCR0-4 and 8, the test identity. */
static struct ne_nsm_boot_record boot_record(bool debug)
{
    static const unsigned int measured[] = { 0, 1, 2, 3, 4, 8 };
    struct ne_nsm_boot_record r = { .debug = debug };
    size_t i;

    for (i = 0; i < sizeof(measured) / sizeof(measured[0]); i++) {
        ne_nsm_pcr_measure(&i, sizeof(i), r.pcr[measured[i]]);
        r.pcr_given |= 1u << measured[i];
    }
    r.identity = identity();
    return r;
}

static bool der_eq(const struct ne_nsm_der *a, const struct ne_nsm_der *b)
{
    return a->len == b->len && !memcmp(a->data, b->data, a->len);
}

static bool record_eq(const struct ne_nsm_boot_record *a,
                      const struct ne_nsm_boot_record *b)
{
    size_t i;

    if (a->pcr_given != b->pcr_given || a->debug != b->debug ||
        memcmp(a->pcr, b->pcr, sizeof(a->pcr)) ||
        strcmp(a->identity.module_id, b->identity.module_id) ||
        EVP_PKEY_eq(a->identity.key, b->identity.key) != 1 ||
        !der_eq(&a->identity.certificate, &b->identity.certificate) ||
        a->identity.nr_cabundle != b->identity.nr_cabundle) {
        return false;
    }
    for (i = 0; i < a->identity.nr_cabundle; i++) {
        if (!der_eq(&a->identity.cabundle[i], &b->identity.cabundle[i])) {
            return false;
        }
    }
    return true;
}

/* Whether the @len bytes at @buf decode (the result is thrown away). */
static bool record_decodes(const uint8_t *buf, size_t len)
{
    struct ne_nsm_boot_record r;
    const char *why;

    if (!ne_nsm_boot_record_decode(buf, len, &r, &why)) {
        return false;
    }
    ne_nsm_boot_record_clear(&r);
    return true;
}

static void test_boot_record(unsigned long long seed)
{
    struct ne_nsm_boot_record want = boot_record(true), got;
    struct ne_nsm nsm;
    const char *why = "";
    uint8_t *buf, resp[NE_NSM_RESPONSE_MAX];
    size_t len, i, cut_ok = 0, flips = 0;
    bool decoded, applied;

    buf = ne_nsm_boot_record_encode(&want, &len);
    ok(buf && len < NE_NSM_BOOT_RECORD_MAX, "boot record: encoded (%zu "
       "bytes)", len);
    if (!buf) {
        return;
    }
    decoded = ne_nsm_boot_record_decode(buf, len, &got, &why);
    ok(decoded && record_eq(&want, &got), "boot record: decodes to what was "
       "encoded (PCRs, debug, module id, key, certificate, bundle) %s",
       decoded ? "" : why);
    ne_nsm_init(&nsm);
    applied = decoded && ne_nsm_boot_record_apply(&nsm, &got, &why);
    ok(applied && ne_nsm_pcr_is_locked(&nsm.pcrs, 15) &&
       !ne_nsm_pcr_is_locked(&nsm.pcrs, 16) &&
       !memcmp(nsm.pcrs.value[3], want.pcr[3], NE_NSM_PCR_SIZE) &&
       ne_nsm_handle(&nsm, (const uint8_t *)"\x6b" "DescribeNSM", 12, resp,
                     sizeof(resp)) > 20,
       "boot record: applied, PCR0-15 locked, PCR3 kept in debug mode, "
       "DescribeNSM answers %s", applied ? "" : why);
    ne_nsm_cleanup(&nsm);
    if (decoded) {
        ne_nsm_boot_record_clear(&got);
    }

    for (i = 0; i < len; i++) {
        cut_ok += record_decodes(buf, i);
    }
    ok(!cut_ok, "boot record: none of its %zu shorter prefixes decodes", len);
    srandom(seed);
    for (i = 0; i < 2000; i++) {
        uint8_t *m = malloc(len);
        size_t at = random() % len;

        memcpy(m, buf, len);
        m[at] ^= 1 + random() % 255;
        flips += record_decodes(m, len);
        free(m);
    }
    /* (a crash or a sanitizer report here fails the run) */
    diag("boot record: 2000 one-byte changes decoded or refused (%zu "
         "decoded)", flips);

    /* the debug flag a half float: libcbor 0.8's cbor_is_bool() asserts */
    {
        static const uint8_t key[] = { 0x65, 'd', 'e', 'b', 'u', 'g', 0xf5 };
        uint8_t *at = memmem(buf, len, key, sizeof(key)), *m = malloc(len + 2);
        size_t off = at ? (size_t)(at - buf) + sizeof(key) - 1 : 0;

        why = "no debug flag found";
        decoded = true;
        if (at) {
            memcpy(m, buf, off);
            memcpy(m + off, "\xf9\x3c\x00", 3);
            memcpy(m + off + 3, buf + off + 1, len - off - 1);
            decoded = ne_nsm_boot_record_decode(m, len + 2, &got, &why);
        }
        ok(!decoded, "boot record: a half-float debug flag is refused: %s",
           decoded ? "decoded" : why);
        free(m);
    }
    /* the key's DER not a SEQUENCE: refused, no OpenSSL error left */
    {
        static const uint8_t key[] = { 0x63, 'k', 'e', 'y', 0x58 };
        uint8_t *at = memmem(buf, len, key, sizeof(key));

        ERR_clear_error();
        why = "no key found";
        decoded = true;
        if (at) {
            at[6] ^= 0x01;
            decoded = ne_nsm_boot_record_decode(buf, len, &got, &why);
            at[6] ^= 0x01;
        }
        ok(!decoded && !ERR_peek_error(), "boot record: a key whose DER is "
           "not a SEQUENCE is refused (%s), OpenSSL's error queue left "
           "empty", decoded ? "decoded" : why);
    }
    free(buf);

    want.pcr_given |= 1u << 5;
    buf = ne_nsm_boot_record_encode(&want, &len);
    decoded = buf && ne_nsm_boot_record_decode(buf, len, &got, &why);
    ne_nsm_init(&nsm);
    applied = decoded && ne_nsm_boot_record_apply(&nsm, &got, &why);
    ok(decoded && !applied, "boot record: a PCR the hypervisor does not "
       "measure (5) is refused at apply: %s", decoded ? why : "");
    ne_nsm_cleanup(&nsm);
    if (decoded) {
        ne_nsm_boot_record_clear(&got);
    }
    free(buf);
}

/* ------------------------------------------------------------ PCR bank */

static bool bank_is(const struct ne_nsm_pcr_bank *b, unsigned int i,
                    const uint8_t *want)
{
    return !memcmp(b->value[i], want, 48);
}

static void test_pcr_bank(void)
{
    static const uint8_t zero[48];
    struct ne_nsm_pcr_bank b;
    struct ne_nsm_boot_pcrs boot = { .debug = false };
    uint8_t want[48], v[48], parent_id[48];
    char h[97];
    unsigned int i;
    bool good;

    ne_nsm_pcr_reset(&b);
    good = !b.locked;
    for (i = 0; i < NE_NSM_NR_PCRS; i++) {
        good = good && bank_is(&b, i, zero);
    }
    ok(good, "pcr: a reset bank has 32 zero, unlocked PCRs");

    sha384_concat(zero, 48, (const uint8_t *)"abc", 3, want);
    ok(ne_nsm_pcr_extend(&b, 16, (const uint8_t *)"abc", 3) == NE_NSM_PCR_OK &&
       bank_is(&b, 16, want), "pcr: extend is SHA-384(PCR || data)");
    sha384_concat(want, 48, (const uint8_t *)"", 0, want);
    ok(ne_nsm_pcr_extend(&b, 16, NULL, 0) == NE_NSM_PCR_OK &&
       bank_is(&b, 16, want), "pcr: extend with no data hashes the PCR alone");
    ok(ne_nsm_pcr_extend(&b, 31, (const uint8_t *)"x", 1) == NE_NSM_PCR_OK &&
       ne_nsm_pcr_extend(&b, 32, (const uint8_t *)"x", 1) ==
       NE_NSM_PCR_BAD_INDEX &&
       ne_nsm_pcr_extend(&b, UINT64_MAX, (const uint8_t *)"x", 1) ==
       NE_NSM_PCR_BAD_INDEX,
       "pcr: extend takes index 31, refuses 32 and 2^64-1");
    sha384_concat(want, 48, (const uint8_t *)"z", 1, v);
    ok(ne_nsm_pcr_extended(&b, 16, (const uint8_t *)"z", 1, parent_id) ==
       NE_NSM_PCR_OK && !memcmp(parent_id, v, 48) && bank_is(&b, 16, want) &&
       ne_nsm_pcr_commit(&b, 16, parent_id) == NE_NSM_PCR_OK &&
       bank_is(&b, 16, v) && ne_nsm_pcr_extend(&b, 16, NULL, 0) ==
       NE_NSM_PCR_OK, "pcr: extended() computes without changing the PCR, "
       "commit() stores that value");
    memcpy(want, b.value[16], 48);
    ok(ne_nsm_pcr_lock(&b, 16) == NE_NSM_PCR_OK &&
       ne_nsm_pcr_commit(&b, 16, v) == NE_NSM_PCR_READ_ONLY &&
       ne_nsm_pcr_extend(&b, 16, (const uint8_t *)"y", 1) ==
       NE_NSM_PCR_READ_ONLY && bank_is(&b, 16, want),
       "pcr: a locked PCR refuses extend and commit, keeps its value");
    ok(ne_nsm_pcr_lock(&b, 16) == NE_NSM_PCR_READ_ONLY &&
       ne_nsm_pcr_lock(&b, 32) == NE_NSM_PCR_BAD_INDEX,
       "pcr: lock refuses a locked PCR and index 32");

    ne_nsm_pcr_reset(&b);
    ok(ne_nsm_pcr_lock_range(&b, 0) == NE_NSM_PCR_OK && !b.locked,
       "pcr: LockPCRs range 0 locks nothing");
    ok(ne_nsm_pcr_lock_range(&b, 20) == NE_NSM_PCR_OK &&
       b.locked == 0xfffff && ne_nsm_pcr_is_locked(&b, 19) &&
       !ne_nsm_pcr_is_locked(&b, 20), "pcr: LockPCRs range 20 locks 0-19 only");
    ok(ne_nsm_pcr_lock_range(&b, 32) == NE_NSM_PCR_OK &&
       b.locked == UINT32_MAX &&
       ne_nsm_pcr_lock_range(&b, 33) == NE_NSM_PCR_BAD_INDEX,
       "pcr: LockPCRs range 32 locks all (locked ones included), 33 is refused");

    /* AWS's published examples (User Guide; spec section 3) */
    ne_nsm_pcr_measure("i-1234567890abcdef0", 19, parent_id);
    hex(parent_id, 48, h);
    ok(!strncmp(h, "08f996b5", 8) && !strcmp(h + 88, "7ae79ce0"),
       "pcr: PCR4 of instance i-1234567890abcdef0 is AWS's 08f996b5...7ae79ce0");
    ne_nsm_pcr_measure("arn:aws:iam::123456789012:role/Webserver", 40, v);
    hex(v, 48, h);
    ok(!strncmp(h, "78fce75d", 8) && !strcmp(h + 88, "2e6921e6"),
       "pcr: PCR3 of role .../Webserver is AWS's 78fce75d...2e6921e6");

    for (i = 0; i <= 8; i++) {
        ne_nsm_pcr_measure(&i, sizeof(i), boot_value[i]);
        boot.value[i] = i <= 4 || i == 8 ? boot_value[i] : NULL;
    }
    good = ne_nsm_pcr_boot(&b, &boot) && b.locked == 0xffff;
    for (i = 0; i < NE_NSM_NR_PCRS; i++) {
        good = good && bank_is(&b, i, boot.value[i] ? boot.value[i] : zero);
    }
    ok(good, "pcr: boot sets PCR0-4 and 8 as measured, the rest zero, "
       "locks 0-15 only");
    boot.debug = true;
    good = ne_nsm_pcr_boot(&b, &boot) && b.locked == 0xffff;
    for (i = 0; i < NE_NSM_NR_PCRS; i++) {
        good = good && bank_is(&b, i, i == 3 || i == 4 ? boot.value[i] : zero);
    }
    ok(good, "pcr: a debug-mode boot zeroes PCR0, 1, 2 and 8, keeps the "
       "parent's PCR3 and 4, locks 0-15");
    boot.debug = false;
    boot.value[5] = boot_value[5];
    good = !ne_nsm_pcr_boot(&b, &boot) && b.locked == 0xffff;
    for (i = 0; i < NE_NSM_NR_PCRS; i++) {
        good = good && bank_is(&b, i, zero);
    }
    ok(good, "pcr: boot refuses a value for PCR5 (not measured by the "
       "hypervisor), and leaves every PCR zero with 0-15 locked (fails "
       "closed)");
}

/* ------------------------------------------------------------ catalogue */

static const uint8_t describe_nsm_req[] = {
    0x6b, 'D', 'e', 's', 'c', 'r', 'i', 'b', 'e', 'N', 'S', 'M'
};
static const uint8_t get_random_req[] = {
    0x69, 'G', 'e', 't', 'R', 'a', 'n', 'd', 'o', 'm'
};

static void test_describe_nsm(struct ne_nsm *nsm)
{
    static const char *const keys[] = {
        "version_major", "version_minor", "version_patch", "module_id",
        "max_pcrs", "locked_pcrs", "digest",
    };
    cbor_item_t *body;
    const cbor_item_t *locked;
    struct cbor_pair *p;
    bool good;
    size_t i;

    call(nsm, describe_nsm_req, sizeof(describe_nsm_req));
    body = body_of_last("DescribeNSM");
    good = body && cbor_isa_map(body) && cbor_map_size(body) == 7;
    for (i = 0; good && i < 7; i++) {
        p = cbor_map_handle(body);
        good = ne_nsm_cbor_is_text(p[i].key, keys[i]);
    }
    ok(good, "DescribeNSM: {\"DescribeNSM\": map(7)} in the API's field order");
    good = good && cbor_get_int(field(body, "version_major")) == 1 &&
           cbor_get_int(field(body, "version_minor")) == 0 &&
           cbor_get_int(field(body, "version_patch")) == 0 &&
           ne_nsm_cbor_is_text(field(body, "module_id"), MODULE_ID) &&
           cbor_get_int(field(body, "max_pcrs")) == 32 &&
           ne_nsm_cbor_is_text(field(body, "digest"), "SHA384");
    ok(good, "DescribeNSM: version 1.0.0, the identity's module_id, "
       "max_pcrs 32, digest SHA384");
    locked = good ? field(body, "locked_pcrs") : NULL;
    good = locked && cbor_isa_array(locked) && cbor_array_is_definite(locked) &&
           cbor_array_size(locked) == 16;
    for (i = 0; good && i < 16; i++) {
        good = cbor_get_int(cbor_array_handle(locked)[i]) == i;
    }
    ok(good, "DescribeNSM: locked_pcrs is exactly [0, ..., 15] after boot");
    if (body) {
        cbor_decref(&body);
    }
}

static void test_describe_pcr(struct ne_nsm *nsm)
{
    static const uint8_t wide[] = {
        0xa1, 0x6b, 'D', 'e', 's', 'c', 'r', 'i', 'b', 'e', 'P', 'C', 'R',
        0xa1, 0x65, 'i', 'n', 'd', 'e', 'x', 0x1a, 0, 0, 0, 4,
    };
    static const uint8_t zero[48];
    uint8_t data[48];
    bool lock, good = true;
    unsigned int i;

    for (i = 0; i < NE_NSM_NR_PCRS; i++) {
        good = good && describe_pcr(nsm, i, &lock, data) && lock == (i < 16) &&
               !memcmp(data, i <= 4 || i == 8 ? boot_value[i] : zero, 48);
    }
    ok(good, "DescribePCR 0-31: 48 bytes each, the boot values, "
       "PCR0-15 locked, 16-31 not");
    call(nsm, wide, sizeof(wide));
    good = resp_len && !error_of_last();
    ok(good, "DescribePCR: an index encoded as a 32-bit uint is taken");
    send_item(nsm, request("DescribePCR", "index", u(32), NULL));
    ok(is_error("InvalidIndex"), "DescribePCR 32: InvalidIndex");
    send_item(nsm, request("DescribePCR", "index", u(65535), NULL));
    ok(is_error("InvalidIndex"), "DescribePCR 65535: InvalidIndex");
    send_item(nsm, request("DescribePCR", "index", u(65536), NULL));
    ok(is_error("InvalidArgument"),
       "DescribePCR 65536 (wider than the API's u16): InvalidArgument");
    send_item(nsm, request("DescribePCR", "index", cbor_build_negint8(0),
                           NULL));
    ok(is_error("InvalidArgument"), "DescribePCR -1: InvalidArgument");
    send_item(nsm, request("DescribePCR", "index", cbor_build_string("1"),
                           NULL));
    ok(is_error("InvalidArgument"),
       "DescribePCR index as text: InvalidArgument");
    send_item(nsm, request("DescribePCR", NULL));
    ok(is_error("InvalidArgument"),
       "DescribePCR without index: InvalidArgument");
    send_item(nsm, request("DescribePCR", "index", u(1), "index", u(2), NULL));
    ok(is_error("InvalidArgument"), "DescribePCR with index twice: "
       "InvalidArgument");
    send_item(nsm, cbor_build_string("DescribePCR"));
    ok(is_error("InvalidArgument"),
       "DescribePCR as a bare text string (no fields): InvalidArgument");
    send_item(nsm, request("DescribePCR", "index", u(3), "extra", u(1), NULL));
    ok(resp_len && !error_of_last(),
       "DescribePCR with an unknown extra field: answered (ignored, as serde)");
}

/* ExtendPCR{index, data}; the new value in @value. */
static bool extend(struct ne_nsm *nsm, unsigned int index, cbor_item_t *data,
                   uint8_t value[48])
{
    cbor_item_t *body;
    const uint8_t *d;
    size_t len;
    bool good;

    send_item(nsm, request("ExtendPCR", "index", u(index), "data", data, NULL));
    body = body_of_last("ExtendPCR");
    good = body && cbor_isa_map(body) && cbor_map_size(body) == 1 &&
           field_bytes(body, "data", &d, &len) && len == 48;
    if (good) {
        memcpy(value, d, 48);
    }
    if (body) {
        cbor_decref(&body);
    }
    return good;
}

static void test_extend_pcr(struct ne_nsm *nsm)
{
    static const uint8_t zero[48];
    uint8_t v1[48], v2[48], want[48], seen[48];
    bool lock;

    sha384_concat(zero, 48, (const uint8_t *)"hello", 5, want);
    ok(extend(nsm, 16, bstr("hello", 5), v1) && !memcmp(v1, want, 48) &&
       describe_pcr(nsm, 16, &lock, seen) && !memcmp(seen, want, 48) && !lock,
       "ExtendPCR 16: {\"ExtendPCR\": {\"data\": SHA-384(0 || data)}}, "
       "DescribePCR agrees");
    sha384_concat(v1, 48, (const uint8_t *)"hello", 5, want);
    ok(extend(nsm, 16, bstr("hello", 5), v2) && !memcmp(v2, want, 48) &&
       memcmp(v1, v2, 48), "ExtendPCR 16 again: a new, chained value");
    sha384_concat(zero, 48, (const uint8_t *)"text", 4, want);
    ok(extend(nsm, 17, cbor_build_string("text"), v1) &&
       !memcmp(v1, want, 48), "ExtendPCR: data as a text string is taken "
       "(as serde_bytes)");
    send_item(nsm, request("ExtendPCR", "data", bstr("r", 1), "index", u(18),
                           NULL));
    ok(resp_len && !error_of_last(), "ExtendPCR: fields in the other order");
    send_item(nsm, request("ExtendPCR", "index", u(0), "data", bstr("x", 1),
                           NULL));
    ok(is_error("ReadOnlyIndex") && describe_pcr(nsm, 0, &lock, seen) &&
       !memcmp(seen, boot_value[0], 48),
       "ExtendPCR 0 (locked at boot): ReadOnlyIndex, PCR0 unchanged");
    send_item(nsm, request("ExtendPCR", "index", u(15), "data", bstr("x", 1),
                           NULL));
    ok(is_error("ReadOnlyIndex"), "ExtendPCR 15: ReadOnlyIndex");
    send_item(nsm, request("ExtendPCR", "index", u(32), "data", bstr("x", 1),
                           NULL));
    ok(is_error("InvalidIndex"), "ExtendPCR 32: InvalidIndex");
    send_item(nsm, request("ExtendPCR", "index", u(16), NULL));
    ok(is_error("InvalidArgument"), "ExtendPCR without data: InvalidArgument");
    send_item(nsm, request("ExtendPCR", "data", bstr("x", 1), NULL));
    ok(is_error("InvalidArgument"), "ExtendPCR without index: InvalidArgument");
    send_item(nsm, request("ExtendPCR", "index", u(16), "data", u(7), NULL));
    ok(is_error("InvalidArgument"), "ExtendPCR with integer data: "
       "InvalidArgument");
}

static void test_lock(struct ne_nsm *nsm)
{
    uint8_t v[48];
    bool lock;

    send_item(nsm, request("LockPCR", "index", u(20), NULL));
    ok(resp_len == 8 && !memcmp(resp, "\x67LockPCR", 8) &&
       describe_pcr(nsm, 20, &lock, v) && lock,
       "LockPCR 20: the text \"LockPCR\", DescribePCR shows it locked");
    send_item(nsm, request("ExtendPCR", "index", u(20), "data", bstr("x", 1),
                           NULL));
    ok(is_error("ReadOnlyIndex"), "ExtendPCR on the PCR locked by LockPCR: "
       "ReadOnlyIndex");
    send_item(nsm, request("LockPCR", "index", u(20), NULL));
    ok(is_error("ReadOnlyIndex"), "LockPCR 20 again: ReadOnlyIndex");
    send_item(nsm, request("LockPCR", "index", u(0), NULL));
    ok(is_error("ReadOnlyIndex"), "LockPCR 0 (locked at boot): ReadOnlyIndex");
    send_item(nsm, request("LockPCR", "index", u(32), NULL));
    ok(is_error("InvalidIndex"), "LockPCR 32: InvalidIndex");
    send_item(nsm, request("LockPCR", "index", bstr("\x01", 1), NULL));
    ok(is_error("InvalidArgument"), "LockPCR with a byte-string index: "
       "InvalidArgument");

    send_item(nsm, request("LockPCRs", "range", u(24), NULL));
    ok(resp_len == 9 && !memcmp(resp, "\x68LockPCRs", 9) &&
       describe_pcr(nsm, 23, &lock, v) && lock &&
       describe_pcr(nsm, 24, &lock, v) && !lock,
       "LockPCRs 24: the text \"LockPCRs\", PCR23 locked, PCR24 not");
    send_item(nsm, request("LockPCRs", "range", u(33), NULL));
    ok(is_error("InvalidIndex") && describe_pcr(nsm, 24, &lock, v) && !lock,
       "LockPCRs 33: InvalidIndex, nothing locked");
    send_item(nsm, request("LockPCRs", "range", u(32), NULL));
    ok(resp_len == 9 && !error_of_last() && describe_pcr(nsm, 31, &lock, v) &&
       lock, "LockPCRs 32 with PCRs already locked: succeeds, all 32 locked");
    send_item(nsm, request("LockPCRs", NULL));
    ok(is_error("InvalidArgument"), "LockPCRs without range: InvalidArgument");
    send_item(nsm, request("LockPCRs", "range", cbor_new_null(), NULL));
    ok(is_error("InvalidArgument"), "LockPCRs with a null range: "
       "InvalidArgument");
}

static void test_get_random(struct ne_nsm *nsm)
{
    static const uint8_t head[] = {
        0xa1, 0x69, 'G', 'e', 't', 'R', 'a', 'n', 'd', 'o', 'm',
        0xa1, 0x66, 'r', 'a', 'n', 'd', 'o', 'm', 0x59, 0x01, 0x00,
    };
    uint8_t prev[NE_NSM_RANDOM_SIZE];
    bool good = true;
    int i;

    for (i = 0; i < 16; i++) {
        call(nsm, get_random_req, sizeof(get_random_req));
        good = good && resp_len == sizeof(head) + NE_NSM_RANDOM_SIZE &&
               !memcmp(resp, head, sizeof(head)) &&
               (!i || memcmp(prev, resp + sizeof(head), sizeof(prev)));
        memcpy(prev, resp + sizeof(head), sizeof(prev));
    }
    ok(good, "GetRandom x16: A1 69 \"GetRandom\" A1 66 \"random\" 59 01 00 "
       "(the Linux hwrng's prefix) and 256 bytes, different each time");
    send_item(nsm, request("GetRandom", NULL));
    ok(is_error("InvalidArgument"), "GetRandom as a map (with fields): "
       "InvalidArgument");
}

static void test_malformed(struct ne_nsm *nsm)
{
    static const struct {
        const char *what;
        const char *bytes;
        size_t len;
    } bad[] = {
        { "an empty request", "", 0 },
        { "0xff (a break outside any item)", "\xff", 1 },
        { "a truncated text string", "\x6b" "Describe", 9 },
        { "DescribeNSM then a trailing byte", "\x6b" "DescribeNSM\x00", 13 },
        { "an unknown request \"Foo\"", "\x63" "Foo", 4 },
        { "a lower-case \"describensm\"", "\x6b" "describensm", 12 },
        { "an integer", "\x01", 1 },
        { "a map of 2 requests", "\xa2\x61x\x01\x61y\x02", 7 },
        { "an empty map", "\xa0", 1 },
        { "a map keyed by an integer", "\xa1\x01\xa0", 3 },
        { "an array", "\x81\x6b" "DescribeNSM", 13 },
        { "a reserved head byte (0x1c)", "\x1c", 1 },
        { "an indefinite text string of a byte chunk", "\x7f\x41x\xff", 4 },
        { "tag 18 around DescribeNSM", "\xd8\x12\x6b" "DescribeNSM", 14 },
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        call(nsm, (const uint8_t *)bad[i].bytes, bad[i].len);
        ok(is_error("InvalidOperation"), "%s: InvalidOperation", bad[i].what);
    }
}

static void test_sizes(struct ne_nsm *nsm)
{
    static uint8_t big[NE_NSM_REQUEST_MAX + 1];
    uint8_t v[48], cap_resp[64];
    cbor_item_t *req;
    size_t len, n;
    bool lock;

    /* ExtendPCR{index: 25, data} of exactly 0x1000 bytes */
    for (n = NE_NSM_REQUEST_MAX - 40; ; n++) {
        req = request("ExtendPCR", "index", u(25), "data", bstr(big, n), NULL);
        len = cbor_serialize(req, big, sizeof(big));
        cbor_decref(&req);
        if (len >= NE_NSM_REQUEST_MAX) {
            break;
        }
    }
    call(nsm, big, len);
    ok(len == NE_NSM_REQUEST_MAX && resp_len && !error_of_last(),
       "a request of exactly 0x1000 bytes is answered");
    /* a byte string of 0x1000 - 4 bytes after its 5-byte head */
    memset(big, 0, sizeof(big));
    big[0] = 0x5a;
    big[3] = (NE_NSM_REQUEST_MAX - 4) >> 8;
    big[4] = (NE_NSM_REQUEST_MAX - 4) & 0xff;
    call(nsm, big, NE_NSM_REQUEST_MAX + 1);
    ok(is_error("InputTooLarge"), "a request of 0x1001 bytes: InputTooLarge");

    /* answers that do not fit the caller's buffer */
    resp_len = ne_nsm_handle(nsm, get_random_req, sizeof(get_random_req),
                             resp, 100);
    ok(resp_len && resp_len <= 100 && is_error("BufferTooSmall"),
       "GetRandom into 100 bytes: BufferTooSmall (not a truncated answer)");
    req = request("ExtendPCR", "index", u(26), "data", bstr("x", 1), NULL);
    len = cbor_serialize(req, big, sizeof(big));
    cbor_decref(&req);
    resp_len = ne_nsm_handle(nsm, big, len, resp, 40);
    ok(is_error("BufferTooSmall") && describe_pcr(nsm, 26, &lock, v) &&
       !memcmp(v, (uint8_t[48]) { 0 }, 48),
       "ExtendPCR into 40 bytes: BufferTooSmall, and the PCR is not extended");
    req = request("LockPCR", "index", u(26), NULL);
    len = cbor_serialize(req, big, sizeof(big));
    cbor_decref(&req);
    memset(cap_resp, 0xee, sizeof(cap_resp));
    n = ne_nsm_handle(nsm, big, len, cap_resp, 7);
    ok(n == 0 && cap_resp[0] == 0xee && describe_pcr(nsm, 26, &lock, v) &&
       !lock, "LockPCR into 7 bytes (not even the error fits): 0, nothing "
       "written, the PCR not locked");
    n = ne_nsm_handle(nsm, big, len, cap_resp, 8);
    ok(n == 8 && !memcmp(cap_resp, "\x67LockPCR", 8) &&
       describe_pcr(nsm, 26, &lock, v) && lock,
       "LockPCR into exactly 8 bytes: answered and applied");
}

static void test_error_names(void)
{
    static const char *const names[] = {
        "Success", "InvalidArgument", "InvalidIndex", "InvalidResponse",
        "ReadOnlyIndex", "InvalidOperation", "BufferTooSmall",
        "InputTooLarge", "InternalError",
    };
    bool good = true;
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        good = good && !strcmp(ne_nsm_error_name(i), names[i]);
    }
    ok(good, "the ErrorCode names, in the API's enum order");
}

static void test_no_identity(void)
{
    struct ne_nsm nsm;

    ne_nsm_init(&nsm);
    call(&nsm, describe_nsm_req, sizeof(describe_nsm_req));
    ok(is_error("InternalError"), "DescribeNSM before an identity is set: "
       "InternalError");
    send_item(&nsm, request("Attestation", NULL));
    ok(is_error("InternalError"), "Attestation before an identity is set: "
       "InternalError");
    ne_nsm_cleanup(&nsm);
}

/*
 * Before a boot succeeds, PCR0-15 are locked at zero and there is no
 * document: else an enclave could extend PCR0 with any image's digest,
 * lock it, and get a signed document claiming that image.
 */
static void test_not_booted(void)
{
    static const uint8_t zero[48];
    struct ne_nsm_boot_pcrs boot = { .debug = false };
    struct ne_nsm_identity id = identity();
    struct ne_nsm nsm;
    uint8_t v[48];
    const char *why;
    bool lock, good = true;
    unsigned int i;

    ne_nsm_init(&nsm);
    for (i = 0; i < NE_NSM_NR_PCRS; i++) {
        good = good && describe_pcr(&nsm, i, &lock, v) && lock == (i < 16) &&
               !memcmp(v, zero, 48);
    }
    ok(good, "before boot: PCR0-15 locked at zero, 16-31 zero and unlocked");
    send_item(&nsm, request("ExtendPCR", "index", u(0), "data",
                            bstr("image", 5), NULL));
    good = is_error("ReadOnlyIndex");
    send_item(&nsm, request("LockPCR", "index", u(0), NULL));
    ok(good && is_error("ReadOnlyIndex"), "before boot: ExtendPCR 0 and "
       "LockPCR 0 are ReadOnlyIndex");
    ok(ne_nsm_set_identity(&nsm, &id, &why), "before boot: an identity is "
       "taken");
    send_item(&nsm, request("Attestation", NULL));
    ok(is_error("InternalError"), "before boot, with an identity: "
       "Attestation is InternalError");

    boot.value[5] = boot_value[0];
    ok(!ne_nsm_boot(&nsm, &boot), "a boot with a value for PCR5 is refused");
    good = describe_pcr(&nsm, 0, &lock, v) && lock && !memcmp(v, zero, 48);
    send_item(&nsm, request("ExtendPCR", "index", u(0), "data",
                            bstr("image", 5), NULL));
    good = good && is_error("ReadOnlyIndex");
    send_item(&nsm, request("Attestation", NULL));
    ok(good && is_error("InternalError"), "after a refused boot: PCR0 "
       "locked at zero, ExtendPCR 0 ReadOnlyIndex, Attestation "
       "InternalError");

    boot.value[5] = NULL;
    boot.value[0] = boot_value[0];
    ok(ne_nsm_boot(&nsm, &boot), "then a good boot is taken");
    send_item(&nsm, request("Attestation", NULL));
    ok(resp_len && !error_of_last(), "after it: Attestation answered");
    boot.value[5] = boot_value[0];
    ne_nsm_boot(&nsm, &boot);
    send_item(&nsm, request("Attestation", NULL));
    ok(is_error("InternalError") && describe_pcr(&nsm, 0, &lock, v) && lock &&
       !memcmp(v, zero, 48), "a refused boot after a good one: PCR0 locked "
       "at zero again, Attestation InternalError");
    ne_nsm_cleanup(&nsm);
}

/* ------------------------------------------------------------ identity */

static bool refused(struct ne_nsm *nsm, struct ne_nsm_identity *id,
                    const char *what)
{
    const char *why = NULL;
    bool r = !ne_nsm_set_identity(nsm, id, &why) && why;

    diag("%s: %s", what, why ? why : "(accepted)");
    return r;
}

static void test_identity(void)
{
    struct ne_nsm nsm;
    struct ne_nsm_identity id;
    struct cert padded;
    struct cert_spec pad = chain_spec[1];
    EVP_PKEY *p256 = new_key("P-256");
    char comment[401];
    const char *why;
    size_t i;

    boot_nsm(&nsm, false);
    ERR_clear_error();
    id = identity();
    id.key = p256;
    ok(refused(&nsm, &id, "P-256 key"), "identity: a P-256 key is refused");
    id = identity();
    id.key = chain[3].key;
    ok(refused(&nsm, &id, "another key"),
       "identity: a key that is not the certificate's is refused");
    id = identity();
    id.module_id = "i-0123-enc0123";
    ok(refused(&nsm, &id, "short module id"),
       "identity: a module id not of AWS's form is refused");
    id = identity();
    for (i = 0; i < NR_CHAIN - 1; i++) {
        id.cabundle[i] = identity().cabundle[NR_CHAIN - 2 - i];
    }
    ok(refused(&nsm, &id, "leaf-side first"),
       "identity: a bundle not ordered root first is refused");
    id = identity();
    id.nr_cabundle = 0;
    ok(refused(&nsm, &id, "empty bundle"), "identity: an empty bundle is "
       "refused");
    id = identity();
    id.certificate.len--;
    ok(refused(&nsm, &id, "cut certificate"),
       "identity: a certificate DER one byte short is refused");

    memset(comment, 'p', sizeof(comment) - 1);
    comment[sizeof(comment) - 1] = '\0';
    pad.comment = comment;
    make_cert(&padded, &pad, &chain[0]);
    id = identity();
    for (i = 1; i < NE_NSM_CABUNDLE_MAX; i++) {
        id.cabundle[i] = (struct ne_nsm_der) { padded.der, padded.der_len };
    }
    id.nr_cabundle = NE_NSM_CABUNDLE_MAX;
    ok(padded.der_len <= NE_NSM_CERT_MAX &&
       refused(&nsm, &id, "8 certificates of ~1 KiB"),
       "identity: certificates of at most 1024 bytes each but over 7 KiB in "
       "all are refused (%d-byte entries)", padded.der_len);

    ok(!ERR_peek_error(), "identity: the refusals leave OpenSSL's error "
       "queue as it was (empty)");
    call(&nsm, describe_nsm_req, sizeof(describe_nsm_req));
    ok(resp_len && !error_of_last() && memmem(resp, resp_len, MODULE_ID, 39),
       "identity: after refusals, the previous identity is still in use");
    id = identity();
    id.module_id = OTHER_MODULE_ID;
    ok(ne_nsm_set_identity(&nsm, &id, &why) &&
       call(&nsm, describe_nsm_req, sizeof(describe_nsm_req)) &&
       memmem(resp, resp_len, OTHER_MODULE_ID, 39),
       "identity: a new identity replaces the previous one");
    free_cert(&padded);
    EVP_PKEY_free(p256);
    ne_nsm_cleanup(&nsm);
}

/* ------------------------------------------------------------ documents */

static uint64_t fixed_ms;

static uint64_t test_clock(void *opaque)
{
    (void)opaque;
    return fixed_ms;
}

struct doc_req {
    size_t nonce, user_data, public_key;        /* SIZE_MAX: absent */
};

static cbor_item_t *opt_field(size_t len, uint8_t fill)
{
    uint8_t buf[NE_NSM_FIELD_MAX + 1];

    if (len == SIZE_MAX) {
        return cbor_new_null();
    }
    memset(buf, fill, len);
    return bstr(buf, len);
}

/* Asks for a document; returns it (malloc'ed) or NULL. */
static uint8_t *attest(struct ne_nsm *nsm, const struct doc_req *r,
                       size_t *len)
{
    cbor_item_t *body;
    const uint8_t *d;
    uint8_t *doc = NULL;

    send_item(nsm, request("Attestation",
                           "user_data", opt_field(r->user_data, 0x11),
                           "nonce", opt_field(r->nonce, 0x22),
                           "public_key", opt_field(r->public_key, 0x33),
                           NULL));
    body = body_of_last("Attestation");
    if (body && cbor_isa_map(body) && cbor_map_size(body) == 1 &&
        field_bytes(body, "document", &d, len)) {
        doc = malloc(*len);
        memcpy(doc, d, *len);
    }
    if (body) {
        cbor_decref(&body);
    }
    return doc;
}

/* Runs nectl verify-attestation; its exit status, its output in @out. */
static int verify(const char *doc_path, const char *extra, char *out,
                  size_t out_size)
{
    char cmd[16384], h[97];
    size_t n = 0;
    FILE *p;
    int i, st;

    n += snprintf(cmd + n, sizeof(cmd) - n,
                  "%s verify-attestation --document %s --root-cert %s",
                  nectl, doc_path, root_pem);
    for (i = 0; i <= 8; i++) {
        if (i <= 4 || i == 8) {
            hex(boot_value[i], 48, h);
            n += snprintf(cmd + n, sizeof(cmd) - n, " --pcr %d=%s", i, h);
        }
    }
    snprintf(cmd + n, sizeof(cmd) - n, " %s 2>&1", extra);
    p = popen(cmd, "r");
    if (!p) {
        return -1;
    }
    n = fread(out, 1, out_size - 1, p);
    out[n] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void hex_arg(char *out, const char *opt, size_t len, uint8_t fill)
{
    uint8_t buf[NE_NSM_FIELD_MAX];
    int n = sprintf(out, " %s ", opt);

    memset(buf, fill, len);
    if (!len) {
        sprintf(out + n, "''");
    } else {
        hex(buf, len, out + n);
    }
}

/* The verifier's JSON says @key is null, or is @len bytes of @fill. */
static bool json_field(const char *out, const char *key, size_t len,
                       uint8_t fill)
{
    char want[2 * NE_NSM_FIELD_MAX + 64];
    uint8_t buf[NE_NSM_FIELD_MAX];
    int n;

    if (len == SIZE_MAX) {
        snprintf(want, sizeof(want), "\"%s\": null", key);
    } else {
        n = snprintf(want, sizeof(want), "\"%s\": \"", key);
        memset(buf, fill, len);
        hex(buf, len, want + n);
        strcat(want, "\"");
    }
    return strstr(out, want) != NULL;
}

static void test_documents(struct ne_nsm *nsm)
{
    static char out[65536];
    char path[600], args[3 * (2 * NE_NSM_FIELD_MAX + 16)];
    struct doc_req r;
    uint8_t *doc, *p;
    uint64_t before, after, stamp;
    const char *ts;
    size_t len;
    int combo, rc;
    bool good;

    for (combo = 0; combo < 8; combo++) {
        before = now_ms();
        r.nonce = combo & 1 ? 32 : SIZE_MAX;
        r.user_data = combo & 2 ? 64 : SIZE_MAX;
        r.public_key = combo & 4 ? 97 : SIZE_MAX;
        doc = attest(nsm, &r, &len);
        snprintf(path, sizeof(path), "%s/doc-%d.cose", tmp_dir, combo);
        args[0] = '\0';
        if (r.nonce != SIZE_MAX) {
            hex_arg(args, "--nonce", r.nonce, 0x22);
        }
        if (r.user_data != SIZE_MAX) {
            hex_arg(args + strlen(args), "--user-data", r.user_data, 0x11);
        }
        after = now_ms();
        rc = doc && write_file(path, doc, len) ?
             verify(path, args, out, sizeof(out)) : -1;
        ts = strstr(out, "\"Timestamp\": ");
        good = rc == 0 && strstr(out, "\"Verified\": true") && ts &&
               sscanf(ts + 13, "%" SCNu64, &stamp) == 1 && stamp >= before &&
               stamp <= after &&
               json_field(out, "Nonce", r.nonce, 0x22) &&
               json_field(out, "UserData", r.user_data, 0x11) &&
               json_field(out, "PublicKey", r.public_key, 0x33) &&
               strstr(out, "\"ModuleID\": \"" MODULE_ID "\"");
        if (!ok(good, "document with nonce %s, user_data %s, public_key %s: "
                "nectl verifies it (chain, ES384, PCR0-4 and 8, nonce, "
                "user data), absent fields null, timestamp the time in ms",
                r.nonce == SIZE_MAX ?
                "absent" : "present", r.user_data == SIZE_MAX ? "absent" :
                "present", r.public_key == SIZE_MAX ? "absent" : "present")) {
            diag("nectl exit %d: %.600s", rc, out);
        }
        free(doc);
    }

    r = (struct doc_req) { 0, 0, SIZE_MAX };
    doc = attest(nsm, &r, &len);
    snprintf(path, sizeof(path), "%s/doc-empty.cose", tmp_dir);
    rc = doc && write_file(path, doc, len) ?
         verify(path, "--nonce '' --user-data ''", out, sizeof(out)) : -1;
    ok(rc == 0 && json_field(out, "Nonce", 0, 0) &&
       json_field(out, "UserData", 0, 0),
       "document with an empty nonce and user_data: verified, both present "
       "and empty");
    free(doc);

    /* AWS's check asks for 1024 bytes of each (spec section 2) */
    r = (struct doc_req) { 1024, 1024, 1024 };
    doc = attest(nsm, &r, &len);
    snprintf(path, sizeof(path), "%s/doc-max.cose", tmp_dir);
    hex_arg(args, "--nonce", 1024, 0x22);
    hex_arg(args + strlen(args), "--user-data", 1024, 0x11);
    rc = doc && write_file(path, doc, len) ?
         verify(path, args, out, sizeof(out)) : -1;
    ok(rc == 0 && resp_len <= NE_NSM_RESPONSE_MAX,
       "document with 1024-byte nonce, user_data and public_key: verified, "
       "the answer %zu bytes (<= 0x3000)", resp_len);

    /* tampering: one byte of the nonce in the payload, one of r||s */
    p = doc ? memmem(doc, len, "\x22\x22\x22\x22", 4) : NULL;
    if (p) {
        p[2] ^= 0x01;
        write_file(path, doc, len);
        rc = verify(path, "", out, sizeof(out));
        ok(rc != 0 && strstr(out, "\"FailedStep\": \"signature\""),
           "one payload byte changed: nectl rejects it at the signature "
           "(exit %d)", rc);
        p[2] ^= 0x01;
        doc[len - 1] ^= 0x80;
        write_file(path, doc, len);
        rc = verify(path, "", out, sizeof(out));
        ok(rc != 0 && strstr(out, "\"FailedStep\": \"signature\""),
           "one signature byte changed: nectl rejects it (exit %d)", rc);
    } else {
        ok(false, "one payload byte changed: no document");
        ok(false, "one signature byte changed: no document");
    }
    free(doc);

    r.nonce = r.user_data = r.public_key = 1025;
    for (combo = 0; combo < 3; combo++) {
        static const char *const names[] = { "nonce", "user_data",
                                             "public_key" };
        struct doc_req big = { SIZE_MAX, SIZE_MAX, SIZE_MAX };

        *(combo == 0 ? &big.nonce : combo == 1 ? &big.user_data
                                               : &big.public_key) = 1025;
        doc = attest(nsm, &big, &len);
        ok(!doc && is_error("InputTooLarge"), "Attestation with a 1025-byte "
           "%s: InputTooLarge", names[combo]);
    }
    r = (struct doc_req) { SIZE_MAX, SIZE_MAX, 0 };
    ok(!attest(nsm, &r, &len) && is_error("InvalidArgument"),
       "Attestation with an empty public_key: InvalidArgument");
    send_item(nsm, request("Attestation", "nonce", u(5), NULL));
    ok(is_error("InvalidArgument"), "Attestation with an integer nonce: "
       "InvalidArgument");
    for (combo = 0; combo < 9; combo++) {
        static const char *const names[] = { "user_data", "nonce",
                                             "public_key" };
        static const char *const widths[] = { "half", "single", "double" };
        cbor_item_t *f = combo % 3 == 0 ? cbor_build_float2(1.0f) :
                         combo % 3 == 1 ? cbor_build_float4(1.0f) :
                         cbor_build_float8(1.0);

        /* libcbor 0.8's cbor_is_null() asserts on a float (SIGABRT) */
        send_item(nsm, request("Attestation", names[combo / 3], f, NULL));
        ok(is_error("InvalidArgument"), "Attestation with a %s-float %s: "
           "InvalidArgument", widths[combo % 3], names[combo / 3]);
    }
    send_item(nsm, cbor_build_string("Attestation"));
    ok(is_error("InvalidArgument"), "Attestation as a bare text string: "
       "InvalidArgument");
    send_item(nsm, request("Attestation", NULL));
    ok(resp_len && !error_of_last(), "Attestation with no fields at all "
       "(missing = null, as serde): answered");
}

/* A locked application PCR is in the document (ATT: all locked PCRs). */
static void test_locked_in_document(struct ne_nsm *nsm)
{
    static char out[65536];
    struct doc_req r = { SIZE_MAX, SIZE_MAX, SIZE_MAX };
    char path[600], arg[128];
    uint8_t v[48], *doc;
    size_t len;
    int rc;

    extend(nsm, 30, bstr("app", 3), v);
    send_item(nsm, request("LockPCR", "index", u(30), NULL));
    doc = attest(nsm, &r, &len);
    snprintf(path, sizeof(path), "%s/doc-pcr30.cose", tmp_dir);
    strcpy(arg, "--pcr 30=");
    hex(v, 48, arg + strlen(arg));
    rc = doc && write_file(path, doc, len) ?
         verify(path, arg, out, sizeof(out)) : -1;
    ok(rc == 0 && !strstr(out, "\"PCR29\""),
       "a PCR locked by the enclave (30) is in the document with its value; "
       "unlocked ones (29) are not");
    free(doc);
}

/* The leaf certificate (DER) of document @doc, malloc'ed; NULL if none. */
static uint8_t *doc_certificate(const uint8_t *doc, size_t len, size_t *cert_len)
{
    cbor_item_t *cose = decode_all(doc, len), *payload = NULL;
    uint8_t *cert = NULL;
    const uint8_t *d;

    if (cose && cbor_isa_array(cose) && cbor_array_size(cose) == 4 &&
        cbor_isa_bytestring(cbor_array_handle(cose)[2])) {
        cbor_item_t *p = cbor_array_handle(cose)[2];

        payload = decode_all(cbor_bytestring_handle(p),
                             cbor_bytestring_length(p));
    }
    if (payload && cbor_isa_map(payload) &&
        field_bytes(payload, "certificate", &d, cert_len)) {
        cert = malloc(*cert_len);
        memcpy(cert, d, *cert_len);
    }
    if (payload) {
        cbor_decref(&payload);
    }
    if (cose) {
        cbor_decref(&cose);
    }
    return cert;
}

/* Whether the next document of @nsm is signed with the leaf @want. */
static bool signs_with(struct ne_nsm *nsm, const struct cert *want)
{
    struct doc_req r = { SIZE_MAX, SIZE_MAX, SIZE_MAX };
    size_t len, cert_len = 0;
    uint8_t *doc = attest(nsm, &r, &len), *cert = NULL;
    bool same;

    if (doc) {
        cert = doc_certificate(doc, len, &cert_len);
    }
    same = cert && cert_len == (size_t)want->der_len &&
           !memcmp(cert, want->der, cert_len);
    free(cert);
    free(doc);
    return same;
}

static int64_t cert_time(const ASN1_TIME *t)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1) {
        die("ASN1_TIME_to_tm");
    }
    return timegm(&tm);
}

/*
 * Documents are signed only inside the leaf's validity: one a second
 * before its notBefore or at its notAfter would fail every verifier.
 */
static void test_leaf_validity(void)
{
    const struct cert *leaf = &chain[NR_CHAIN - 1];
    int64_t nb = cert_time(X509_get0_notBefore(leaf->x509));
    int64_t na = cert_time(X509_get0_notAfter(leaf->x509));
    static const struct { int64_t from_nb, from_na; bool ok; } at[] = {
        { -1, 0, false }, { 0, 0, true }, { 0, -1, true }, { 0, 0, false },
    };
    struct ne_nsm nsm;
    size_t i;

    boot_nsm(&nsm, false);
    ne_nsm_set_clock(&nsm, test_clock, NULL);
    for (i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        /* rows 0, 1 around notBefore; rows 2, 3 around notAfter */
        int64_t t = i < 2 ? nb + at[i].from_nb : na + at[i].from_na;

        fixed_ms = (uint64_t)t * 1000 + (i == 2 ? 999 : 0);
        send_item(&nsm, request("Attestation", "user_data", cbor_new_null(),
                                "nonce", cbor_new_null(), "public_key",
                                cbor_new_null(), NULL));
        if (at[i].ok) {
            cbor_item_t *body = body_of_last("Attestation");

            ok(body != NULL, "a document at %+lld s from the leaf's %s",
               (long long)(i < 2 ? at[i].from_nb : at[i].from_na),
               i < 2 ? "notBefore" : "notAfter (minus 1 ms)");
            if (body) {
                cbor_decref(&body);
            }
        } else {
            ok(is_error("InternalError"), "no document %lld s %s the leaf's "
               "validity: InternalError",
               (long long)(i < 2 ? -at[i].from_nb : at[i].from_na),
               i < 2 ? "before" : "after the end of");
        }
    }
    ne_nsm_cleanup(&nsm);
}

/* A renewal record with @id, PCRs if @pcrs, through encode and decode. */
static bool renew_with(struct ne_nsm *nsm, const struct ne_nsm_identity *id,
                       bool pcrs, const char **why)
{
    struct ne_nsm_boot_record r = { .identity = *id }, got;
    uint8_t *buf;
    size_t len;
    bool done;

    if (pcrs) {
        ne_nsm_pcr_measure("x", 1, r.pcr[0]);
        r.pcr_given = 1;
    }
    buf = ne_nsm_boot_record_encode(&r, &len);
    if (!buf || !ne_nsm_boot_record_decode(buf, len, &got, why)) {
        free(buf);
        return false;
    }
    free(buf);
    done = ne_nsm_boot_record_renew(nsm, &got, why);
    ne_nsm_boot_record_clear(&got);
    return done;
}

/*
 * The hypervisor renews a running NSM's leaf: the next documents carry
 * the new one.  A renewal that gives PCRs, another module's identity or
 * comes before the boot is refused and changes nothing.
 */
static void test_renewal(void)
{
    struct cert fresh, other, root2, leaf2;
    struct cert_spec other_spec = chain_spec[NR_CHAIN - 1];
    struct ne_nsm_identity id = identity();
    struct ne_nsm nsm;
    const char *why = "";
    bool done;

    make_cert(&fresh, &chain_spec[NR_CHAIN - 1], &chain[NR_CHAIN - 2]);
    other_spec.cn = OTHER_MODULE_ID ".eu-central-1.test";
    make_cert(&other, &other_spec, &chain[NR_CHAIN - 2]);

    ne_nsm_init(&nsm);
    id.key = fresh.key;
    id.certificate = (struct ne_nsm_der) { fresh.der, fresh.der_len };
    done = renew_with(&nsm, &id, false, &why);
    ok(!done && strstr(why, "not booted"),
       "a renewal before the boot is refused (%s)", why);
    ne_nsm_cleanup(&nsm);

    boot_nsm(&nsm, false);
    ok(signs_with(&nsm, &chain[NR_CHAIN - 1]), "booted: documents carry "
       "the boot record's leaf");
    done = renew_with(&nsm, &id, false, &why);
    ok(done, "a renewal with a fresh leaf of the same module id is taken");
    ok(signs_with(&nsm, &fresh), "after it, documents carry the fresh leaf");
    done = renew_with(&nsm, &id, true, &why);
    ok(!done && strstr(why, "gives PCRs") && signs_with(&nsm, &fresh),
       "a renewal that gives PCRs is refused, the leaf kept (%s)", why);
    id.key = other.key;
    id.certificate = (struct ne_nsm_der) { other.der, other.der_len };
    id.module_id = OTHER_MODULE_ID;
    done = renew_with(&nsm, &id, false, &why);
    ok(!done && strstr(why, "another module id") && signs_with(&nsm, &fresh),
       "a renewal for another module id is refused, the leaf kept (%s)",
       why);
    /* a whole chain of its own: another root, and a leaf of this module */
    make_cert(&root2, &chain_spec[0], NULL);
    make_cert(&leaf2, &chain_spec[NR_CHAIN - 1], &root2);
    id = (struct ne_nsm_identity) {
        .key = leaf2.key,
        .certificate = { leaf2.der, leaf2.der_len },
        .cabundle = { { root2.der, root2.der_len } },
        .nr_cabundle = 1,
        .module_id = MODULE_ID,
    };
    done = renew_with(&nsm, &id, false, &why);
    ok(!done && strstr(why, "another root") && signs_with(&nsm, &fresh),
       "a renewal under another root is refused, the leaf kept (%s)", why);
    free_cert(&root2);
    free_cert(&leaf2);
    ne_nsm_cleanup(&nsm);
    free_cert(&fresh);
    free_cert(&other);
}

static void test_debug_document(void)
{
    static char out[65536];
    static const uint8_t zero[48];
    struct doc_req r = { SIZE_MAX, SIZE_MAX, SIZE_MAX };
    struct ne_nsm nsm;
    char path[600], args[1024], h[97];
    uint8_t *doc;
    size_t len;
    int rc, i;

    boot_nsm(&nsm, true);
    doc = attest(&nsm, &r, &len);
    snprintf(path, sizeof(path), "%s/doc-debug.cose", tmp_dir);
    args[0] = '\0';
    for (i = 0; i <= 8; i++) {
        if (i > 4 && i < 8) {
            continue;
        }
        hex(i == 3 || i == 4 ? boot_value[i] : zero, 48, h);
        sprintf(args + strlen(args), " --pcr %d=%s", i, h);
    }
    /* (verify() asks for the measured values first; these come later) */
    rc = doc && write_file(path, doc, len) ?
         verify(path, "", out, sizeof(out)) : -1;
    ok(rc != 0 && strstr(out, "\"FailedStep\": \"pcrs\""),
       "debug-mode document: PCR0 is not the measured value (nectl fails it "
       "at pcrs)");
    snprintf(out, sizeof(out), "%s verify-attestation --document %s "
             "--root-cert %s%s > /dev/null 2>&1", nectl, path, root_pem, args);
    rc = system(out);
    ok(rc == 0, "debug-mode document: PCR0-2 and 8 zero, PCR3 and 4 "
       "measured, verified");
    free(doc);
    ne_nsm_cleanup(&nsm);
}

/* ------------------------------------------------------------ r||s */

/* DER INTEGER of @len bytes of @fill after @lead (a sign byte 00 or not) */
static size_t der_int(uint8_t *p, int lead, size_t len, uint8_t fill)
{
    size_t n = 0;

    p[n++] = 0x02;
    p[n++] = len + (lead >= 0);
    if (lead >= 0) {
        p[n++] = lead;
    }
    memset(p + n, fill, len);
    return n + len;
}

/* SEQUENCE { r, s } (every length here is under 128: short form) */
static size_t der_sig(uint8_t *p, int r_lead, size_t r_len, uint8_t r_fill,
                      int s_lead, size_t s_len, uint8_t s_fill)
{
    size_t n = 2;

    n += der_int(p + n, r_lead, r_len, r_fill);
    n += der_int(p + n, s_lead, s_len, s_fill);
    p[0] = 0x30;
    p[1] = n - 2;
    return n;
}

/* @len bytes of zero, then @fill up to 48 bytes */
static bool coord_is(const uint8_t *c, size_t zeros, uint8_t fill)
{
    size_t i;

    for (i = 0; i < 48; i++) {
        if (c[i] != (i < zeros ? 0 : fill)) {
            return false;
        }
    }
    return true;
}

static void test_es384_raw(struct ne_nsm *nsm)
{
    static char out[65536];
    struct doc_req r = { SIZE_MAX, SIZE_MAX, SIZE_MAX };
    uint8_t der[160], sig[NE_NSM_ES384_SIG_SIZE], *doc = NULL;
    char path[600];
    size_t n, len = 0;
    int tries, rc;

    n = der_sig(der, -1, 48, 0x11, -1, 48, 0x22);
    ok(ne_nsm_doc_es384_raw(der, n, sig) && coord_is(sig, 0, 0x11) &&
       coord_is(sig + 48, 0, 0x22), "r||s: 48-byte r and s are copied");
    n = der_sig(der, -1, 1, 0x01, -1, 48, 0x22);
    ok(ne_nsm_doc_es384_raw(der, n, sig) && coord_is(sig, 47, 0x01) &&
       coord_is(sig + 48, 0, 0x22), "r||s: a 1-byte r is padded with 47 "
       "leading zero bytes");
    n = der_sig(der, 0x00, 48, 0x91, -1, 48, 0x22);
    ok(ne_nsm_doc_es384_raw(der, n, sig) && coord_is(sig, 0, 0x91) &&
       coord_is(sig + 48, 0, 0x22), "r||s: an r with the sign byte 00 "
       "(49 DER bytes, high bit set) gives its 48 bytes");
    n = der_sig(der, 0x00, 47, 0x81, -1, 46, 0x33);
    ok(ne_nsm_doc_es384_raw(der, n, sig) && coord_is(sig, 1, 0x81) &&
       coord_is(sig + 48, 2, 0x33), "r||s: a 47-byte r with a sign byte "
       "and a 46-byte s are each padded to 48");
    n = der_sig(der, 0x01, 48, 0x11, -1, 48, 0x22);
    ok(!ne_nsm_doc_es384_raw(der, n, sig), "r||s: an r of 49 significant "
       "bytes is refused");
    n = der_sig(der, -1, 48, 0x11, -1, 48, 0x22);
    der[n] = 0;
    ERR_clear_error();
    ok(!ne_nsm_doc_es384_raw(der, n + 1, sig) &&
       !ne_nsm_doc_es384_raw(der, n - 1, sig) && !ERR_peek_error(),
       "r||s: a byte after the DER, or one missing, is refused (OpenSSL's "
       "error queue left empty)");

    /* one in 128 signatures has r or s below 2^376: one such, verified */
    for (tries = 0; tries < 3000; tries++) {
        free(doc);
        doc = attest(nsm, &r, &len);
        if (!doc || len < 96 || !doc[len - 96] || !doc[len - 48]) {
            break;
        }
    }
    snprintf(path, sizeof(path), "%s/doc-short-coord.cose", tmp_dir);
    rc = doc && len >= 96 && (!doc[len - 96] || !doc[len - 48]) &&
         write_file(path, doc, len) ? verify(path, "", out, sizeof(out)) : -1;
    if (!ok(rc == 0, "a document whose %s has a zero first byte (after %d "
            "documents): nectl verifies it", doc && len >= 96 &&
            !doc[len - 96] ? "r" : "s", tries + 1)) {
        diag("nectl exit %d: %.600s", rc, out);
    }
    free(doc);
}

/* ------------------------------------------------------------ real layout */

struct layout {
    uint8_t prefix[8];          /* 84 44 A1 01 38 22 A0 59 */
    uint8_t payload_head;       /* A9 (definite) or BF */
    char keys[9][16];
    uint8_t heads[9][2];        /* each value's first two bytes */
    size_t nr_keys, sig_len, nr_pcrs, pcr_len, nr_cabundle;
};

static void value_heads(const cbor_item_t *v, uint8_t head[2])
{
    unsigned char *buf = NULL;
    size_t size;

    memset(head, 0, 2);
    if (cbor_serialize_alloc(v, &buf, &size) >= 2) {
        memcpy(head, buf, 2);
    }
    free(buf);
}

static void payload_layout(const cbor_item_t *map, struct layout *l)
{
    struct cbor_pair *p = cbor_map_handle(map);
    size_t i, n = cbor_map_size(map);

    for (i = 0; i < n && i < 9; i++) {
        if (cbor_isa_string(p[i].key) &&
            cbor_string_length(p[i].key) < sizeof(l->keys[i])) {
            memcpy(l->keys[i], cbor_string_handle(p[i].key),
                   cbor_string_length(p[i].key));
        }
        value_heads(p[i].value, l->heads[i]);
        if (!strcmp(l->keys[i], "pcrs") && cbor_isa_map(p[i].value)) {
            l->nr_pcrs = cbor_map_size(p[i].value);
            l->pcr_len = cbor_bytestring_length(
                cbor_map_handle(p[i].value)[0].value);
        }
        if (!strcmp(l->keys[i], "cabundle") && cbor_isa_array(p[i].value)) {
            l->nr_cabundle = cbor_array_size(p[i].value);
        }
    }
    l->nr_keys = n;
}

/* The layout of a document, through the NSM's own bounded loader. */
static bool layout(const uint8_t *doc, size_t len, struct layout *l)
{
    cbor_item_t *cose = NULL, *payload = NULL;
    cbor_item_t **parts;
    bool good;

    memset(l, 0, sizeof(*l));
    good = len > 8 && ne_nsm_cbor_load(doc, len, &cose) == NE_NSM_CBOR_OK &&
           cbor_isa_array(cose) && cbor_array_size(cose) == 4;
    if (good) {
        parts = cbor_array_handle(cose);
        memcpy(l->prefix, doc, 8);
        l->sig_len = cbor_bytestring_length(parts[3]);
        good = ne_nsm_cbor_load(cbor_bytestring_handle(parts[2]),
                                cbor_bytestring_length(parts[2]),
                                &payload) == NE_NSM_CBOR_OK &&
               cbor_isa_map(payload);
        l->payload_head = cbor_bytestring_handle(parts[2])[0];
    }
    if (good) {
        payload_layout(payload, l);
    }
    if (payload) {
        cbor_decref(&payload);
    }
    if (cose) {
        cbor_decref(&cose);
    }
    return good;
}

static bool same_keys(const struct layout *a, const struct layout *b)
{
    size_t i;

    for (i = 0; i < 9; i++) {
        if (strcmp(a->keys[i], b->keys[i])) {
            return false;
        }
    }
    return a->nr_keys == 9 && b->nr_keys == 9;
}

static bool same_heads(const struct layout *a, const struct layout *b)
{
    size_t i;

    for (i = 0; i < 9; i++) {
        /* the module id's length and certificate sizes are alike, not equal */
        if (a->heads[i][0] != b->heads[i][0]) {
            diag("%s: value head %02x, the real one %02x", a->keys[i],
                 a->heads[i][0], b->heads[i][0]);
            return false;
        }
    }
    return true;
}

/*
 * Our document beside a real one: @r asks for the optional fields the
 * real one has, with their sizes.
 */
static void compare_real(struct ne_nsm *nsm, const char *file,
                         const struct doc_req *r, bool definite)
{
    struct layout real, ours;
    char path[600];
    uint8_t *vec, *doc;
    size_t vlen, dlen;

    snprintf(path, sizeof(path), "%s/%s", vectors, file);
    vec = read_file(path, &vlen);
    if (!vec) {
        /* (never a skip: the runner says where it looked for them) */
        ok(false, "%s: cannot read %s: the shared attestation vectors are "
           "missing (NE_SHARED=DIR takes DIR/attestation-vectors)", file,
           path);
        return;
    }
    doc = attest(nsm, r, &dlen);
    if (!ok(layout(vec, vlen, &real),
            "%s: read and decoded by the bounded loader", file) ||
        !ok(doc && layout(doc, dlen, &ours), "our document decodes")) {
        free(vec);
        free(doc);
        return;
    }
    ok(!memcmp(real.prefix, ours.prefix, 8) && ours.sig_len == 96 &&
       real.sig_len == 96, "layout vs %s: the same first 8 bytes "
       "(untagged array, protected header A1 01 38 22, empty unprotected, "
       "payload head), 96-byte signature", file);
    ok(same_keys(&real, &ours), "layout vs %s: the same 9 payload keys in "
       "the same order", file);
    ok(same_heads(&ours, &real) && ours.nr_pcrs == real.nr_pcrs &&
       ours.pcr_len == 48 && real.pcr_len == 48 &&
       ours.nr_cabundle == real.nr_cabundle,
       "layout vs %s: every value of the same type and form (9-byte "
       "timestamp, definite pcrs of 16 48-byte values, 4-entry cabundle, "
       "null for absent fields)", file);
    if (definite) {
        ok(real.payload_head == 0xa9 && ours.payload_head == 0xbf,
           "layout vs %s: it has the definite map(9) of documents before "
           "2025-12, ours the indefinite map AWS writes now", file);
    } else {
        ok(real.payload_head == 0xbf && ours.payload_head == 0xbf,
           "layout vs %s: both payloads are indefinite-length maps", file);
    }
    free(vec);
    free(doc);
}

static void test_real_layout(struct ne_nsm *nsm)
{
    /* dstack 2025-12: user_data 64 bytes, no nonce or public key */
    struct doc_req dstack = { SIZE_MAX, 64, SIZE_MAX };
    /* yawn 2025-01: a 294-byte public key */
    struct doc_req yawn = { SIZE_MAX, SIZE_MAX, 294 };

    compare_real(nsm, "dstack_2025-12-25_us-east-1.cose", &dstack, false);
    compare_real(nsm, "yawn-nitro-attest_2025-01-06_eu-central-1.cose",
                 &yawn, true);
}

/* ------------------------------------------------------------ libcbor */

static void test_cbor_bound(struct ne_nsm *nsm)
{
    /* map of 2^32 pairs, then one byte: 10 bytes */
    static const uint8_t huge_map[] = {
        0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x00
    };
    /* array of 2^32 - 1 items, nested four deep */
    static const uint8_t nested[] = {
        0x9a, 0xff, 0xff, 0xff, 0xff, 0x9a, 0xff, 0xff, 0xff, 0xff,
        0x9a, 0xff, 0xff, 0xff, 0xff, 0x9a, 0xff, 0xff, 0xff, 0xff, 0x00,
    };
    uint8_t deep[NE_NSM_CBOR_MAX_DEPTH + 2];
    struct cbor_load_result r;
    cbor_item_t *item;
    size_t big;

    tracking = true;
    largest_alloc = 0;
    item = cbor_load(huge_map, sizeof(huge_map), &r);
    big = largest_alloc;
    tracking = false;
#ifdef NSM_TEST_ASAN
    (void)big;
    ok(!item && r.error.code == CBOR_ERR_MEMERROR,
       "libcbor: plain cbor_load() of a 10-byte map(2^32) fails for memory "
       "(ASan refuses its allocation: over max_allocation_size_mb)");
#else
    ok(!item && r.error.code == CBOR_ERR_MEMERROR && big >= (16ULL << 32),
       "libcbor: plain cbor_load() of a 10-byte map(2^32) fails for memory "
       "(it asked for %zu bytes; refused over 256 MiB)", big);
#endif
    if (item) {
        cbor_decref(&item);
    }

    tracking = true;
    largest_alloc = 0;
    call(nsm, huge_map, sizeof(huge_map));
    tracking = false;
    ok(is_error("InvalidOperation") && largest_alloc < 64 * 1024,
       "libcbor: the same 10 bytes as a request: InvalidOperation, the "
       "largest allocation %zu bytes", largest_alloc);
    tracking = true;
    largest_alloc = 0;
    call(nsm, nested, sizeof(nested));
    tracking = false;
    ok(is_error("InvalidOperation") && largest_alloc < 64 * 1024,
       "libcbor: arrays of 2^32-1 items nested 4 deep: InvalidOperation, "
       "the largest allocation %zu bytes", largest_alloc);

    memset(deep, 0x81, sizeof(deep));
    deep[NE_NSM_CBOR_MAX_DEPTH] = 0x00;
    ok(ne_nsm_cbor_load(deep, NE_NSM_CBOR_MAX_DEPTH + 1, &item) ==
       NE_NSM_CBOR_OK, "libcbor: 16 nested arrays load");
    if (item) {
        cbor_decref(&item);
    }
    deep[NE_NSM_CBOR_MAX_DEPTH] = 0x81;
    deep[NE_NSM_CBOR_MAX_DEPTH + 1] = 0x00;
    ok(ne_nsm_cbor_load(deep, sizeof(deep), &item) == NE_NSM_CBOR_MALFORMED,
       "libcbor: 17 nested arrays are refused before cbor_load()");
    ok(ne_nsm_cbor_load((const uint8_t *)"\xbf\x01\xff", 3, &item) ==
       NE_NSM_CBOR_MALFORMED &&
       ne_nsm_cbor_load((const uint8_t *)"\xbf\x01\x02\xff", 4, &item) ==
       NE_NSM_CBOR_OK, "libcbor: an indefinite map with a key and no value "
       "is refused, with both it loads");
    if (item) {
        cbor_decref(&item);
    }
}

/*
 * The walk alone (ne_nsm_cbor_load() checks cbor_load()'s end as well,
 * which would hide some of its mistakes).
 */
static void test_cbor_walk(void)
{
    static const struct {
        const char *what;
        const char *bytes;
        size_t len;
        bool well_formed;
    } cases[] = {
        { "0", "\x00", 1, true },
        { "an empty input", "", 0, false },
        { "0 then a byte", "\x00\x00", 2, false },
        { "a uint16 cut short", "\x19\x01", 2, false },
        { "[1, 2]", "\x82\x01\x02", 3, true },
        { "array(2) of one item", "\x82\x01", 2, false },
        { "array(2^64-1) and a byte",
          "\x9b\xff\xff\xff\xff\xff\xff\xff\xff\x00", 10, false },
        /* 2 * count wraps to 0, then to 2 */
        { "map(2^63)", "\xbb\x80\x00\x00\x00\x00\x00\x00\x00", 9, false },
        { "map(2^63 + 1) and one pair",
          "\xbb\x80\x00\x00\x00\x00\x00\x00\x01\x01\x02", 11, false },
        /* each declares what fits alone, not both together */
        { "array(3) holding array(3) in 6 bytes",
          "\x83\x83\x01\x02\x03\x04", 6, false },
        { "array(2) holding array(3), 6 bytes", "\x82\x83\x01\x02\x03\x04",
          6, true },
        { "{1: 2}", "\xa1\x01\x02", 3, true },
        { "map(1) with a key only", "\xa1\x01", 2, false },
        { "indefinite map {1: 2}", "\xbf\x01\x02\xff", 4, true },
        { "indefinite map with a key only", "\xbf\x01\xff", 3, false },
        { "indefinite array [1]", "\x9f\x01\xff", 3, true },
        { "indefinite array without its break", "\x9f\x01", 2, false },
        { "a break alone", "\xff", 1, false },
        { "a break inside a definite array", "\x81\xff", 2, false },
        { "tag 1 around 0", "\xc1\x00", 2, true },
        { "tag 1 around nothing", "\xc1", 1, false },
        { "a definite byte string", "\x42\x01\x02", 3, true },
        { "a byte string of 3 with 2 bytes", "\x43\x01\x02", 3, false },
        { "an indefinite byte string", "\x5f\x41\x00\xff", 4, false },
        { "an empty indefinite text string", "\x7f\xff", 2, false },
        { "a half float", "\xf9\x3c\x00", 3, true },
        { "the simple value 16", "\xf0", 1, false },
        { "a reserved head (0x1c)", "\x1c", 1, false },
    };
    static const char *const verdict[] = { "taken", "refused" };
    uint8_t deep[NE_NSM_CBOR_MAX_DEPTH + 2];
    size_t i, bad = 0;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (ne_nsm_cbor_well_formed((const uint8_t *)cases[i].bytes,
                                    cases[i].len) != cases[i].well_formed) {
            diag("walk: %s: %s, expected otherwise", cases[i].what,
                 verdict[cases[i].well_formed]);
            bad++;
        }
    }
    ok(!bad, "walk: %zu inputs, each taken or refused by the walk alone "
       "(counts beyond the input, alone and together, map counts that wrap, "
       "breaks, indefinite strings refused, tags, trailing and missing "
       "bytes)", i);
    memset(deep, 0x81, sizeof(deep));
    deep[NE_NSM_CBOR_MAX_DEPTH] = 0x00;
    i = ne_nsm_cbor_well_formed(deep, NE_NSM_CBOR_MAX_DEPTH + 1);
    deep[NE_NSM_CBOR_MAX_DEPTH] = 0x81;
    deep[NE_NSM_CBOR_MAX_DEPTH + 1] = 0x00;
    ok(i && !ne_nsm_cbor_well_formed(deep, sizeof(deep)),
       "walk: 16 nested arrays are taken, 17 refused");
}

/* ------------------------------------------------------------ fuzz */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64*: reproducible from the seed */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static size_t rnd_below(size_t n)
{
    return n ? rnd() % n : 0;
}

/* The answer is one CBOR item of a shape the catalogue has. */
static bool valid_answer(const uint8_t *p, size_t len)
{
    cbor_item_t *item = decode_all(p, len);
    struct cbor_pair *pair;
    bool good = false;
    size_t i;

    if (item && cbor_isa_string(item)) {
        good = ne_nsm_cbor_is_text(item, "LockPCR") ||
               ne_nsm_cbor_is_text(item, "LockPCRs");
    } else if (item && cbor_isa_map(item) && cbor_map_size(item) == 1) {
        pair = cbor_map_handle(item);
        good = cbor_isa_string(pair->key);
        if (ne_nsm_cbor_is_text(pair->key, "Error")) {
            good = false;
            for (i = 1; i <= NE_NSM_INTERNAL_ERROR; i++) {
                good = good || ne_nsm_cbor_is_text(pair->value,
                                                   ne_nsm_error_name(i));
            }
        }
    }
    if (item) {
        cbor_decref(&item);
    }
    return good;
}

/*
 * Field values of unusual types: each request of the catalogue gets each
 * of them in each of its fields, and in a field it does not have.
 */
static const struct odd_value {
    const char *what;
    const char *bytes;
    size_t len;
    bool refused;               /* no CBOR the loader takes: InvalidOperation */
} odd_values[] = {
    { "a half float", "\xf9\x3c\x00", 3, false },
    { "a single float", "\xfa\x3f\x80\x00\x00", 5, false },
    { "a double float", "\xfb\x3f\xf0\x00\x00\x00\x00\x00\x00", 9, false },
    { "undefined", "\xf7", 1, false },
    { "true", "\xf5", 1, false },
    /* (libcbor 0.8 refuses unassigned simple values) */
    { "the simple value 16", "\xf0", 1, true },
    { "tag 1 around 0", "\xc1\x00", 2, false },
    /* (refused by the loader's walk) */
    { "an indefinite byte string", "\x5f\x41\x00\xff", 4, true },
    { "an indefinite text string", "\x7f\x61x\xff", 4, true },
    { "-1", "\x20", 1, false },
    { "2^64-1", "\x1b\xff\xff\xff\xff\xff\xff\xff\xff", 9, false },
    { "an empty map", "\xa0", 1, false },
    { "an empty array", "\x80", 1, false },
    { "an empty indefinite map", "\xbf\xff", 2, false },
};
#define NR_ODD_VALUES (sizeof(odd_values) / sizeof(odd_values[0]))

/* The catalogue's requests, each field with a value that is taken. */
static const struct {
    const char *name;
    const char *fields[3];
    const char *good[3];        /* CBOR of a good value of each */
    size_t good_len[3];
    bool has_fields;
} catalogue[] = {
    { "DescribeNSM", { NULL }, { NULL }, { 0 }, false },
    { "GetRandom", { NULL }, { NULL }, { 0 }, false },
    { "DescribePCR", { "index" }, { "\x01" }, { 1 }, true },
    { "ExtendPCR", { "index", "data" }, { "\x10", "\x41\x01" }, { 1, 2 },
      true },
    { "LockPCR", { "index" }, { "\x10" }, { 1 }, true },
    { "LockPCRs", { "range" }, { "\x14" }, { 1 }, true },
    { "Attestation", { "user_data", "nonce", "public_key" },
      { "\xf6", "\x41\x01", "\x41\x02" }, { 1, 2, 2 }, true },
};
#define NR_CATALOGUE (sizeof(catalogue) / sizeof(catalogue[0]))

static size_t put_text(uint8_t *p, const char *s)
{
    size_t n = strlen(s);

    p[0] = 0x60 | n;            /* (every name here is under 24 bytes) */
    memcpy(p + 1, s, n);
    return n + 1;
}

/*
 * {name: {field: value, ...}} with request @r's fields, the one at @odd
 * (or an unknown one, "extra", when @odd is the number of fields) given
 * @value; a request without fields gets {"extra": @value}.
 */
static size_t odd_request(uint8_t *p, size_t r, size_t odd,
                          const struct odd_value *value)
{
    size_t n = 0, i, nr = 0;

    while (nr < 3 && catalogue[r].fields[nr]) {
        nr++;
    }
    p[n++] = 0xa1;
    n += put_text(p + n, catalogue[r].name);
    p[n++] = 0xa0 | (nr + (odd == nr));
    for (i = 0; i < nr; i++) {
        n += put_text(p + n, catalogue[r].fields[i]);
        memcpy(p + n, i == odd ? value->bytes : catalogue[r].good[i],
               i == odd ? value->len : catalogue[r].good_len[i]);
        n += i == odd ? value->len : catalogue[r].good_len[i];
    }
    if (odd == nr) {
        n += put_text(p + n, "extra");
        memcpy(p + n, value->bytes, value->len);
        n += value->len;
    }
    return n;
}

static bool valid_answer(const uint8_t *p, size_t len);

static void test_field_types(void)
{
    uint8_t req[128];
    struct ne_nsm nsm;
    size_t r, f, v, nr, len, bad;
    const char *want, *got;

    for (r = 0; r < NR_CATALOGUE; r++) {
        for (nr = 0; nr < 3 && catalogue[r].fields[nr]; nr++) {
            /* count */
        }
        for (f = 0; f <= nr; f++) {
            bad = 0;
            for (v = 0; v < NR_ODD_VALUES; v++) {
                /* a fresh NSM: a LockPCR that succeeds is not repeated */
                boot_nsm(&nsm, false);
                len = odd_request(req, r, f, &odd_values[v]);
                call(&nsm, req, len);
                /*
                 * An unknown field is ignored (as serde); a known one
                 * of the wrong type is InvalidArgument; a request of no
                 * fields given some is InvalidArgument.
                 */
                want = odd_values[v].refused ? "InvalidOperation" :
                       !catalogue[r].has_fields ? "InvalidArgument" :
                       f == nr ? NULL : "InvalidArgument";
                got = resp_len && valid_answer(resp, resp_len) ?
                      error_of_last() : "no valid answer";
                if (want ? !got || strcmp(want, got) : got != NULL) {
                    diag("%s, %s %s: %s, expected %s", catalogue[r].name,
                         f == nr ? "extra" : catalogue[r].fields[f],
                         odd_values[v].what, got ? got : "success",
                         want ? want : "success");
                    bad++;
                }
                ne_nsm_cleanup(&nsm);
            }
            ok(!bad, "%s, %s%s as each of %zu unusual types (floats, "
               "undefined, true, a simple value, a tag, indefinite strings, "
               "-1, 2^64-1, empty maps and arrays): %s, no crash",
               catalogue[r].name, f == nr ? "an unknown field" : "field ",
               f == nr ? "" : catalogue[r].fields[f], NR_ODD_VALUES,
               !catalogue[r].has_fields ? "InvalidArgument" :
               f == nr ? "ignored (answered)" : "InvalidArgument");
        }
    }
}

/* Random CBOR, mostly well-formed heads with hostile counts and lengths. */
static size_t gen_item(uint8_t *p, size_t cap, int depth)
{
    static const uint8_t widths[] = { 0, 24, 25, 26, 27, 31 };
    size_t n = 0, i, count;
    uint8_t major = rnd_below(8), info = widths[rnd_below(6)];

    if (cap < 12) {
        return 0;
    }
    if (info == 0) {
        info = rnd_below(24);
    }
    count = info < 24 ? info : rnd_below(4) ? rnd_below(8) : rnd();
    p[n++] = major << 5 | info;
    for (i = 0; info >= 24 && info <= 27 && i < (1u << (info - 24)); i++) {
        p[n++] = count >> (8 * ((1u << (info - 24)) - 1 - i));
    }
    if ((major == 2 || major == 3) && info != 31) {
        for (i = 0; i < count && n < cap && i < 64; i++) {
            p[n++] = rnd();
        }
    } else if ((major == 4 || major == 5 || major == 6) && depth < 20) {
        count = info == 31 ? rnd_below(4) : count;
        for (i = 0; i < count * (major == 5 ? 2 : 1) && i < 8; i++) {
            n += gen_item(p + n, cap - n, depth + 1);
        }
        if (info == 31 && n < cap) {
            p[n++] = 0xff;
        }
    }
    return n;
}

/*
 * A request of the catalogue by name whose fields (its own, an unknown
 * one, repeated or missing, in a definite or an indefinite map) hold a
 * good value, a value of an unusual type, or random CBOR.
 */
static size_t known_request(uint8_t *p, size_t cap)
{
    size_t r = rnd_below(NR_CATALOGUE), nr = 0, n = 0, i, k, f;
    bool indefinite = rnd_below(4) == 0;
    const struct odd_value *v;

    while (nr < 3 && catalogue[r].fields[nr]) {
        nr++;
    }
    k = rnd_below(nr + 2);
    p[n++] = 0xa1;
    n += put_text(p + n, catalogue[r].name);
    p[n++] = indefinite ? 0xbf : 0xa0 | k;
    for (i = 0; i < k && n + 96 < cap; i++) {
        f = rnd_below(nr + 1);
        n += put_text(p + n, f < nr ? catalogue[r].fields[f] : "extra");
        switch (f < nr ? rnd_below(3) : 1 + rnd_below(2)) {
        case 0:
            memcpy(p + n, catalogue[r].good[f], catalogue[r].good_len[f]);
            n += catalogue[r].good_len[f];
            break;
        case 1:
            v = &odd_values[rnd_below(NR_ODD_VALUES)];
            memcpy(p + n, v->bytes, v->len);
            n += v->len;
            break;
        default:
            n += gen_item(p + n, 64, 1);
            break;
        }
    }
    if (indefinite) {
        p[n++] = 0xff;
    }
    return n;
}

static size_t valid_request(uint8_t *p, size_t cap)
{
    cbor_item_t *req;
    size_t len;

    switch (rnd_below(7)) {
    case 0:
        memcpy(p, describe_nsm_req, sizeof(describe_nsm_req));
        return sizeof(describe_nsm_req);
    case 1:
        memcpy(p, get_random_req, sizeof(get_random_req));
        return sizeof(get_random_req);
    case 2:
        req = request("DescribePCR", "index", u(rnd_below(40)), NULL);
        break;
    case 3:
        req = request("ExtendPCR", "index", u(rnd_below(40)), "data",
                      bstr("fuzz", rnd_below(5)), NULL);
        break;
    case 4:
        req = request("LockPCR", "index", u(16 + rnd_below(20)), NULL);
        break;
    case 5:
        req = request("LockPCRs", "range", u(rnd_below(40)), NULL);
        break;
    default:
        req = request("Attestation", "nonce", opt_field(rnd_below(40), 1),
                      "user_data", cbor_new_null(), NULL);
        break;
    }
    len = cbor_serialize(req, p, cap);
    cbor_decref(&req);
    return len;
}

static size_t mutate(uint8_t *p, size_t len, size_t cap)
{
    /* none one time in five: valid requests reach every handler */
    int k, rounds = rnd_below(5);
    size_t at;

    for (k = 0; k < rounds && len; k++) {
        at = rnd_below(len);
        switch (rnd_below(6)) {
        case 0:
            p[at] ^= 1 << rnd_below(8);
            break;
        case 1:
            p[at] = rnd();
            break;
        case 2:                 /* insert */
            if (len < cap) {
                memmove(p + at + 1, p + at, len - at);
                p[at] = rnd();
                len++;
            }
            break;
        case 3:                 /* delete */
            memmove(p + at, p + at + 1, len - at - 1);
            len--;
            break;
        case 4:                 /* truncate */
            len = at;
            break;
        default:                /* a head byte that declares a huge count */
            p[at] = (p[at] & 0xe0) | (24 + rnd_below(4));
            break;
        }
    }
    return len;
}

/* The first failures of a kind, shown in full. */
static void show_failure(const uint8_t *req, size_t len, size_t cap,
                         size_t out)
{
    char h[2 * 64 + 1];

    if (out > NE_NSM_RESPONSE_MAX) {
        out = 0;
    }
    hex(req, len < 64 ? len : 64, h);
    diag("request %zu bytes %s%s", len, h, len > 64 ? "..." : "");
    hex(resp, out < 64 ? out : 64, h);
    diag("buffer %zu bytes, answer %zu bytes %s%s", cap, out, h,
         out > 64 ? "..." : "");
}

static void fuzz(unsigned long long seed, int rounds)
{
    static const char *const kinds[] = {
        "random bytes", "mutated valid requests", "generated CBOR",
        "known requests with unusual field values",
    };
    static uint8_t req[NE_NSM_REQUEST_MAX + 16];
    struct ne_nsm nsm;
    int kind, i, bad, empty, last_bad, answered;
    size_t len, cap, out;

    rng_state = seed ? seed : 1;
    boot_nsm(&nsm, false);
    for (kind = 0; kind < 4; kind++) {
        bad = empty = last_bad = answered = 0;
        for (i = 0; i < rounds; i++) {
            if (kind == 0) {
                len = rnd_below(64);
                for (cap = 0; cap < len; cap++) {
                    req[cap] = rnd();
                }
            } else if (kind == 1) {
                len = mutate(req, valid_request(req, sizeof(req)),
                             sizeof(req));
            } else if (kind == 2) {
                len = gen_item(req, sizeof(req), 0);
            } else {
                len = known_request(req, sizeof(req));
                if (rnd_below(4) == 0) {
                    len = mutate(req, len, sizeof(req));
                }
            }
            /* now and then a small response buffer */
            cap = rnd_below(8) ? NE_NSM_RESPONSE_MAX : rnd_below(40);
            out = ne_nsm_handle(&nsm, req, len, resp, cap);
            if (!out) {
                /* only where not even {"Error": "BufferTooSmall"} fits */
                empty++;
                bad += cap >= NE_NSM_RESPONSE_MIN;
            } else if (out > cap || !valid_answer(resp, out)) {
                bad++;
            } else {
                resp_len = out;
                answered += !error_of_last();
            }
            if (bad && bad == last_bad + 1) {
                show_failure(req, len, cap, out);
                last_bad = bad;
            }
            /* a fresh NSM now and then: LockPCRs soon locks everything */
            if (rnd_below(100) == 0) {
                ne_nsm_cleanup(&nsm);
                boot_nsm(&nsm, false);
            }
        }
        ok(!bad, "fuzz (seed %llu): %d %s, each answered by one valid CBOR "
           "item (%d successes, %d with no room for any answer), %d not",
           seed, rounds, kinds[kind], answered, empty, bad);
    }
    ne_nsm_cleanup(&nsm);
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    unsigned long long seed = 0;
    int rounds = 20000, i;
    struct ne_nsm nsm;
    const char *env = getenv("NE_SEED");

    for (i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--nectl")) {
            nectl = argv[i + 1];
        } else if (!strcmp(argv[i], "--vectors")) {
            vectors = argv[i + 1];
        } else if (!strcmp(argv[i], "--tmp")) {
            tmp_dir = argv[i + 1];
        } else if (!strcmp(argv[i], "--seed")) {
            sscanf(argv[i + 1], "%llu", &seed);
        } else if (!strcmp(argv[i], "--fuzz")) {
            rounds = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--label")) {
            label = argv[i + 1];
        }
    }
    if (!nectl || !vectors || !tmp_dir) {
        fprintf(stderr, "usage: %s --nectl NECTL --vectors DIR --tmp DIR "
                "[--seed N] [--fuzz N] [--label NAME]\n", argv[0]);
        return 2;
    }
    if (!seed && !(env && sscanf(env, "%llu", &seed) == 1)) {
        seed = time(NULL);
    }
    diag("%s: fuzz seed %llu (NE_SEED=%llu or --seed replays it)", label,
         seed, seed);
    track_allocations();
    make_chain();

    test_pcr_bank();
    test_error_names();
    test_no_identity();
    test_identity();
    test_not_booted();

    boot_nsm(&nsm, false);
    fixed_ms = (uint64_t)time(NULL) * 1000 + 123;
    ne_nsm_set_clock(&nsm, test_clock, NULL);
    test_describe_nsm(&nsm);
    test_describe_pcr(&nsm);
    test_extend_pcr(&nsm);
    test_lock(&nsm);
    test_get_random(&nsm);
    test_malformed(&nsm);
    ne_nsm_cleanup(&nsm);

    boot_nsm(&nsm, false);
    test_sizes(&nsm);
    ne_nsm_cleanup(&nsm);

    boot_nsm(&nsm, false);
    test_documents(&nsm);
    test_real_layout(&nsm);
    test_locked_in_document(&nsm);
    test_es384_raw(&nsm);
    test_cbor_bound(&nsm);
    test_cbor_walk();
    ne_nsm_cleanup(&nsm);
    test_debug_document();
    test_leaf_validity();
    test_renewal();

    test_boot_record(seed);
    test_field_types();
    fuzz(seed, rounds);

    for (i = 0; i < NR_CHAIN; i++) {
        free_cert(&chain[i]);
    }
    /*
     * (no "passed, failed" summary: tools/tap-verify holds one to the
     * whole output of make -C tools/qemu test, which has other programs')
     */
    printf("1..%d\n", nr_tests);
    printf("# %s: %d checks, %d not ok\n", label, nr_tests, nr_failed);
    return nr_failed ? 1 : 0;
}
