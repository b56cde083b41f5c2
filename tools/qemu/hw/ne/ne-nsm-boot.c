/*
 * The NSM's boot record (see ne-nsm-boot.h).
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "ne-nsm-boot.h"
#include "ne-nsm-cbor.h"

/* ------------------------------------------------------------ encode */

static const cbor_item_t *field(const cbor_item_t *map, const char *name)
{
    struct cbor_pair *pairs = cbor_map_handle(map);
    size_t i;

    for (i = 0; i < cbor_map_size(map); i++) {
        if (ne_nsm_cbor_is_text(pairs[i].key, name)) {
            return pairs[i].value;
        }
    }
    return NULL;
}

/*
 * Wipes the private key's bytes in @map before it is freed: libcbor frees
 * without clearing, and the key must not linger in freed heap memory.
 */
static void wipe_key(cbor_item_t *map)
{
    const cbor_item_t *key = cbor_isa_map(map) ? field(map, "key") : NULL;

    if (key && cbor_isa_bytestring(key) && cbor_bytestring_is_definite(key)) {
        OPENSSL_cleanse(cbor_bytestring_handle(key),
                        cbor_bytestring_length(key));
    }
}


static cbor_item_t *encode_pcrs(const struct ne_nsm_boot_record *r)
{
    cbor_item_t *map = cbor_new_definite_map(NE_NSM_NR_PCRS);
    unsigned int i;

    for (i = 0; map && i < NE_NSM_NR_PCRS; i++) {
        if ((r->pcr_given & (1u << i)) &&
            !ne_nsm_cbor_put(map, ne_nsm_cbor_uint(i),
                             ne_nsm_cbor_bytes(r->pcr[i], NE_NSM_PCR_SIZE))) {
            cbor_decref(&map);
        }
    }
    return map;
}

static cbor_item_t *encode_cabundle(const struct ne_nsm_identity *id)
{
    cbor_item_t *array = cbor_new_definite_array(id->nr_cabundle);
    size_t i;

    for (i = 0; array && i < id->nr_cabundle; i++) {
        if (!ne_nsm_cbor_push(array, ne_nsm_cbor_bytes(id->cabundle[i].data,
                                           id->cabundle[i].len))) {
            cbor_decref(&array);
        }
    }
    return array;
}

/* The private key as PKCS#8 DER: a bytestring (wiped after copying). */
static cbor_item_t *encode_key(EVP_PKEY *key)
{
    unsigned char *der = NULL;
    cbor_item_t *item;
    int len;

    if (!key) {
        return NULL;
    }
    ERR_set_mark();
    len = i2d_PrivateKey(key, &der);
    ERR_pop_to_mark();
    if (len <= 0) {
        return NULL;
    }
    item = ne_nsm_cbor_bytes(der, len);
    OPENSSL_clear_free(der, len);
    return item;
}

static bool put(cbor_item_t *map, const char *name, cbor_item_t *value)
{
    return ne_nsm_cbor_put(map, cbor_build_string(name), value);
}

uint8_t *ne_nsm_boot_record_encode(const struct ne_nsm_boot_record *r,
                                   size_t *len)
{
    const struct ne_nsm_identity *id = &r->identity;
    bool signs = id->key != NULL;
    cbor_item_t *map = cbor_new_definite_map(signs ? 6 : 2);
    unsigned char *buf;

    if (!map ||
        !put(map, "pcrs", encode_pcrs(r)) ||
        !put(map, "debug", cbor_build_bool(r->debug)) ||
        (signs &&
         (!put(map, "module_id",
               cbor_build_string(id->module_id ? id->module_id : "")) ||
          !put(map, "key", encode_key(id->key)) ||
          !put(map, "certificate",
               ne_nsm_cbor_bytes(id->certificate.data,
                                 id->certificate.len)) ||
          !put(map, "cabundle", encode_cabundle(id))))) {
        if (map) {
            cbor_decref(&map);
        }
        return NULL;
    }
    /*
     * Into one buffer of the reader's limit: a growing one would leave
     * copies of the key behind in each block it outgrew.
     */
    buf = malloc(NE_NSM_BOOT_RECORD_MAX);
    *len = buf ? cbor_serialize(map, buf, NE_NSM_BOOT_RECORD_MAX) : 0;
    wipe_key(map);
    cbor_decref(&map);
    if (!*len) {
        if (buf) {
            OPENSSL_cleanse(buf, NE_NSM_BOOT_RECORD_MAX);
        }
        free(buf);
        return NULL;
    }
    return buf;
}

/* ------------------------------------------------------------ decode */

/* A definite bytestring of 1..@max bytes, copied. */
static bool copy_bytes(const cbor_item_t *item, size_t max,
                       struct ne_nsm_der *out)
{
    uint8_t *copy;
    size_t len;

    if (!item || !cbor_isa_bytestring(item) ||
        !cbor_bytestring_is_definite(item)) {
        return false;
    }
    len = cbor_bytestring_length(item);
    if (!len || len > max) {
        return false;
    }
    copy = malloc(len);
    if (!copy) {
        return false;
    }
    memcpy(copy, cbor_bytestring_handle(item), len);
    out->data = copy;
    out->len = len;
    return true;
}

static bool decode_pcrs(const cbor_item_t *map, struct ne_nsm_boot_record *r)
{
    struct cbor_pair *pairs;
    size_t i;

    if (!map || !cbor_isa_map(map)) {
        return false;
    }
    pairs = cbor_map_handle(map);
    for (i = 0; i < cbor_map_size(map); i++) {
        const cbor_item_t *v = pairs[i].value;
        uint64_t index;

        if (!cbor_isa_uint(pairs[i].key)) {
            return false;
        }
        index = cbor_get_int(pairs[i].key);
        if (index >= NE_NSM_NR_PCRS || (r->pcr_given & (1u << index)) ||
            !cbor_isa_bytestring(v) || !cbor_bytestring_is_definite(v) ||
            cbor_bytestring_length(v) != NE_NSM_PCR_SIZE) {
            return false;
        }
        memcpy(r->pcr[index], cbor_bytestring_handle(v), NE_NSM_PCR_SIZE);
        r->pcr_given |= 1u << index;
    }
    return true;
}

static bool decode_module_id(const cbor_item_t *item,
                             struct ne_nsm_boot_record *r)
{
    size_t len;
    char *id;

    if (!item || !cbor_isa_string(item) || !cbor_string_is_definite(item)) {
        return false;
    }
    len = cbor_string_length(item);
    if (len > NE_NSM_MODULE_ID_LEN) {
        return false;
    }
    id = calloc(1, len + 1);
    if (!id) {
        return false;
    }
    memcpy(id, cbor_string_handle(item), len);
    r->identity.module_id = id;
    return true;
}

static bool decode_key(const cbor_item_t *item, struct ne_nsm_boot_record *r)
{
    struct ne_nsm_der der;
    const unsigned char *p;

    if (!copy_bytes(item, NE_NSM_BOOT_RECORD_MAX, &der)) {
        return false;
    }
    p = der.data;
    ERR_set_mark();
    r->identity.key = d2i_AutoPrivateKey(NULL, &p, der.len);
    ERR_pop_to_mark();
    OPENSSL_clear_free((void *)der.data, der.len);
    return r->identity.key != NULL;
}

static bool decode_cabundle(const cbor_item_t *array,
                            struct ne_nsm_boot_record *r)
{
    cbor_item_t **items;
    size_t i, n;

    if (!array || !cbor_isa_array(array)) {
        return false;
    }
    n = cbor_array_size(array);
    if (n > NE_NSM_CABUNDLE_MAX) {
        return false;
    }
    items = cbor_array_handle(array);
    for (i = 0; i < n; i++) {
        if (!copy_bytes(items[i], NE_NSM_CERT_MAX,
                        &r->identity.cabundle[i])) {
            return false;
        }
        r->identity.nr_cabundle = i + 1;
    }
    return true;
}

static const char *decode_map(const cbor_item_t *map,
                              struct ne_nsm_boot_record *r)
{
    const cbor_item_t *debug;

    if (!cbor_isa_map(map)) {
        return "the boot record is not a map";
    }
    /* PCRs and debug flag, and either the whole identity or nothing of it */
    if (cbor_map_size(map) != 2 && cbor_map_size(map) != 6) {
        return "the boot record has other keys than the PCRs, the debug "
               "flag and a whole identity";
    }
    if (!decode_pcrs(field(map, "pcrs"), r)) {
        return "the boot record's PCRs are malformed";
    }
    debug = field(map, "debug");
    if (!debug || !ne_nsm_cbor_get_bool(debug, &r->debug)) {
        return "the boot record has no debug flag";
    }
    if (!field(map, "key") && !field(map, "certificate")) {
        /* an NSM that cannot sign: nothing else of an identity */
        return cbor_map_size(map) == 2 ? NULL :
               "the boot record has part of an identity";
    }
    if (!decode_module_id(field(map, "module_id"), r)) {
        return "the boot record's module id is malformed";
    }
    if (!decode_key(field(map, "key"), r)) {
        return "the boot record's key is not a private key";
    }
    if (!copy_bytes(field(map, "certificate"), NE_NSM_CERT_MAX,
                    &r->identity.certificate)) {
        return "the boot record's certificate is malformed";
    }
    if (!decode_cabundle(field(map, "cabundle"), r)) {
        return "the boot record's CA bundle is malformed";
    }
    return NULL;
}

bool ne_nsm_boot_record_decode(const uint8_t *buf, size_t len,
                               struct ne_nsm_boot_record *r,
                               const char **why)
{
    cbor_item_t *map = NULL;

    memset(r, 0, sizeof(*r));
    if (len > NE_NSM_BOOT_RECORD_MAX) {
        *why = "the boot record is too large";
        return false;
    }
    switch (ne_nsm_cbor_load(buf, len, &map)) {
    case NE_NSM_CBOR_OK:
        break;
    case NE_NSM_CBOR_NOMEM:
        *why = "out of memory";
        return false;
    default:
        *why = "the boot record is not one CBOR item";
        return false;
    }
    *why = decode_map(map, r);
    wipe_key(map);
    cbor_decref(&map);
    if (*why) {
        ne_nsm_boot_record_clear(r);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ apply */

bool ne_nsm_boot_record_apply(struct ne_nsm *nsm,
                              const struct ne_nsm_boot_record *r,
                              const char **why)
{
    struct ne_nsm_boot_pcrs boot = { .debug = r->debug };
    unsigned int i;

    /* an image is always measured: a record without it is not booted from */
    if ((r->pcr_given & NE_NSM_BOOT_PCRS_REQUIRED) !=
        NE_NSM_BOOT_PCRS_REQUIRED) {
        *why = "the boot record lacks PCR0, 1, 2 or 4 (the image and the "
               "instance): it is not the hypervisor's";
        return false;
    }
    for (i = 0; i < NE_NSM_NR_PCRS; i++) {
        if (r->pcr_given & (1u << i)) {
            boot.value[i] = r->pcr[i];
        }
    }
    if (!ne_nsm_boot(nsm, &boot)) {
        *why = "the boot record gives a PCR the hypervisor does not measure";
        return false;
    }
    return !r->identity.key || ne_nsm_set_identity(nsm, &r->identity, why);
}

bool ne_nsm_boot_record_renew(struct ne_nsm *nsm,
                              const struct ne_nsm_boot_record *r,
                              const char **why)
{
    if (!nsm->booted || !nsm->signer.key) {
        *why = "a renewal for an NSM that was not booted with an identity";
        return false;
    }
    if (r->pcr_given) {
        *why = "a renewal record gives PCRs: they are set once, at boot";
        return false;
    }
    if (!r->identity.key) {
        *why = "a renewal record without an identity";
        return false;
    }
    if (strcmp(r->identity.module_id, nsm->signer.module_id)) {
        *why = "a renewal record for another module id";
        return false;
    }
    /* a fresh leaf under the same root: never a change of whom to trust */
    if (!r->identity.nr_cabundle || !nsm->signer.nr_cabundle ||
        r->identity.cabundle[0].len != nsm->signer.cabundle_len[0] ||
        memcmp(r->identity.cabundle[0].data, nsm->signer.cabundle[0],
               nsm->signer.cabundle_len[0])) {
        *why = "a renewal record under another root";
        return false;
    }
    return ne_nsm_set_identity(nsm, &r->identity, why);
}

void ne_nsm_boot_record_clear(struct ne_nsm_boot_record *r)
{
    struct ne_nsm_identity *id = &r->identity;
    size_t i;

    EVP_PKEY_free(id->key);
    free((void *)id->certificate.data);
    for (i = 0; i < id->nr_cabundle; i++) {
        free((void *)id->cabundle[i].data);
    }
    free((void *)id->module_id);
    memset(r, 0, sizeof(*r));
}
