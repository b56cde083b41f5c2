/*
 * The Nitro Secure Module without its device (see ne-nsm-core.h): request
 * decoding, the catalogue of shared/spec/attestation.md section 2, and the
 * encoding of the answers.
 *
 * The wire format is serde's (AWS's Rust API through serde_cbor): a request
 * without fields is a text string holding its name, one with fields a
 * map(1) {name: {field: value, ...}}; the answers have the same shapes, and
 * a failure is {"Error": "<ErrorCode name>"}.  Where serde decides, this
 * file decides the same way: fields in any order, unknown fields ignored,
 * a field given twice refused, a missing optional field taken as null.
 *
 * Which ErrorCode a real NSM gives for each failure is not known (spec 2).
 * The choice here:
 *   InputTooLarge     a request over 0x1000 bytes, or an Attestation field
 *                     over 1024 bytes
 *   InvalidOperation  not exactly one well-formed CBOR item, or not a
 *                     request of the catalogue (as QEMU answers)
 *   InvalidArgument   a known request whose fields are missing, of the
 *                     wrong type or shape, or an index wider than u16
 *   InvalidIndex      an index >= 32 or a range > 32 (as QEMU)
 *   ReadOnlyIndex     ExtendPCR or LockPCR on a locked PCR (as QEMU)
 *   BufferTooSmall    the answer does not fit the response buffer
 *   InternalError     no identity yet, Attestation before a successful
 *                     boot, out of memory, a crypto failure
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "ne-nsm-cbor.h"
#include "ne-nsm-core.h"

static const char *const error_names[] = {
    [NE_NSM_SUCCESS] = "Success",
    [NE_NSM_INVALID_ARGUMENT] = "InvalidArgument",
    [NE_NSM_INVALID_INDEX] = "InvalidIndex",
    [NE_NSM_INVALID_RESPONSE] = "InvalidResponse",
    [NE_NSM_READ_ONLY_INDEX] = "ReadOnlyIndex",
    [NE_NSM_INVALID_OPERATION] = "InvalidOperation",
    [NE_NSM_BUFFER_TOO_SMALL] = "BufferTooSmall",
    [NE_NSM_INPUT_TOO_LARGE] = "InputTooLarge",
    [NE_NSM_INTERNAL_ERROR] = "InternalError",
};

/*
 * What a request changes, applied only once its answer is known to fit:
 * a client that cannot receive the answer must not see the effect either.
 */
struct nsm_effect {
    enum { EFFECT_NONE, EFFECT_EXTEND, EFFECT_LOCK, EFFECT_LOCK_RANGE } kind;
    uint64_t index;                     /* or the range */
    uint8_t value[NE_NSM_PCR_SIZE];     /* extend: the PCR's new value */
};

/* One request being answered. */
struct nsm_call {
    struct ne_nsm *nsm;
    const cbor_item_t *fields;          /* NULL for a text-string request */
    enum ne_nsm_error error;            /* why the handler gave no answer */
    struct nsm_effect effect;
};

static cbor_item_t *fail(struct nsm_call *c, enum ne_nsm_error error)
{
    c->error = error;
    return NULL;
}

const char *ne_nsm_error_name(enum ne_nsm_error error)
{
    return (unsigned int)error < sizeof(error_names) / sizeof(error_names[0])
           ? error_names[error] : "InternalError";
}

/* ------------------------------------------------------------ fields */

/*
 * Finds the fields @names of the request in @out (NULL where absent).
 * False when the request has no field map or gives a field twice.
 */
static bool get_fields(const struct nsm_call *c, const char *const names[],
                       const cbor_item_t *out[], size_t n)
{
    struct cbor_pair *pairs;
    size_t i, k;

    memset(out, 0, n * sizeof(*out));
    if (!c->fields) {
        return false;
    }
    pairs = cbor_map_handle(c->fields);
    for (i = 0; i < cbor_map_size(c->fields); i++) {
        for (k = 0; k < n && !ne_nsm_cbor_is_text(pairs[i].key, names[k]);
             k++) {
            /* search */
        }
        if (k == n) {
            continue;
        }
        if (out[k]) {
            return false;
        }
        out[k] = pairs[i].value;
    }
    return true;
}

/* The API's u16, in whatever width it is encoded. */
static bool get_u16(const cbor_item_t *item, uint64_t *value)
{
    if (!item || !cbor_isa_uint(item) || cbor_get_int(item) > UINT16_MAX) {
        return false;
    }
    *value = cbor_get_int(item);
    return true;
}

/*
 * A byte field: a definite byte string, or text (serde_bytes takes both,
 * and so does QEMU's NSM).
 */
static bool get_data(const cbor_item_t *item, const uint8_t **data,
                     size_t *len)
{
    if (item && cbor_isa_bytestring(item) &&
        cbor_bytestring_is_definite(item)) {
        *data = cbor_bytestring_handle(item);
        *len = cbor_bytestring_length(item);
        return true;
    }
    if (item && cbor_isa_string(item) && cbor_string_is_definite(item)) {
        *data = cbor_string_handle(item);
        *len = cbor_string_length(item);
        return true;
    }
    return false;
}

/* The one index or range field @name of the request. */
static bool get_index(struct nsm_call *c, const char *name, uint64_t *value)
{
    const char *const names[] = { name };
    const cbor_item_t *item[1];

    return get_fields(c, names, item, 1) && get_u16(item[0], value);
}

/* ------------------------------------------------------------ answers */

static cbor_item_t *text(const char *s)
{
    return cbor_build_string(s);
}

/* {name: @body}; takes @body. */
static cbor_item_t *variant(const char *name, cbor_item_t *body)
{
    cbor_item_t *map = cbor_new_definite_map(1);

    if (!ne_nsm_cbor_put(map, text(name), body) && map) {
        cbor_decref(&map);
    }
    return map;
}

/* {name: {key: @value}}; takes @value. */
static cbor_item_t *variant1(const char *name, const char *key,
                             cbor_item_t *value)
{
    cbor_item_t *body = cbor_new_definite_map(1);

    if (!ne_nsm_cbor_put(body, text(key), value)) {
        if (body) {
            cbor_decref(&body);
        }
        return NULL;
    }
    return variant(name, body);
}

static enum ne_nsm_error pcr_error(enum ne_nsm_pcr_status st)
{
    switch (st) {
    case NE_NSM_PCR_OK:
        return NE_NSM_SUCCESS;
    case NE_NSM_PCR_BAD_INDEX:
        return NE_NSM_INVALID_INDEX;
    case NE_NSM_PCR_READ_ONLY:
        return NE_NSM_READ_ONLY_INDEX;
    default:
        return NE_NSM_INTERNAL_ERROR;
    }
}

/* ------------------------------------------------------------ requests */

static cbor_item_t *locked_pcrs(const struct ne_nsm_pcr_bank *bank)
{
    cbor_item_t *array;
    unsigned int i;
    bool ok = true;

    /* definite and ascending, as serde_cbor writes the API's BTreeSet */
    array = cbor_new_definite_array(ne_nsm_pcr_nr_locked(bank));
    for (i = 0; ok && i < NE_NSM_NR_PCRS; i++) {
        if (ne_nsm_pcr_is_locked(bank, i)) {
            ok = ne_nsm_cbor_push(array, ne_nsm_cbor_uint(i));
        }
    }
    if (!ok && array) {
        cbor_decref(&array);
    }
    return array;
}

static cbor_item_t *describe_nsm(struct nsm_call *c)
{
    const struct ne_nsm *nsm = c->nsm;
    cbor_item_t *body;
    bool ok;

    /*
     * The module id comes with the identity.  A real NSM always has one,
     * and AWS's check wants it non-empty (spec 2): without an identity
     * there is no answer rather than an empty or made-up id, and the
     * device always sets one at boot.
     */
    if (!nsm->signer.key) {
        return fail(c, NE_NSM_INTERNAL_ERROR);
    }
    body = cbor_new_definite_map(7);
    /* in the API's declaration order, as serde_cbor writes them */
    ok = ne_nsm_cbor_put(body, text("version_major"),
                         ne_nsm_cbor_uint(NE_NSM_VERSION_MAJOR)) &&
         ne_nsm_cbor_put(body, text("version_minor"),
                         ne_nsm_cbor_uint(NE_NSM_VERSION_MINOR)) &&
         ne_nsm_cbor_put(body, text("version_patch"),
                         ne_nsm_cbor_uint(NE_NSM_VERSION_PATCH)) &&
         ne_nsm_cbor_put(body, text("module_id"),
                         text(nsm->signer.module_id)) &&
         ne_nsm_cbor_put(body, text("max_pcrs"),
                         ne_nsm_cbor_uint(NE_NSM_NR_PCRS)) &&
         ne_nsm_cbor_put(body, text("locked_pcrs"), locked_pcrs(&nsm->pcrs)) &&
         ne_nsm_cbor_put(body, text("digest"), text("SHA384"));
    if (!ok) {
        if (body) {
            cbor_decref(&body);
        }
        return NULL;
    }
    return variant("DescribeNSM", body);
}

static cbor_item_t *describe_pcr(struct nsm_call *c)
{
    const struct ne_nsm_pcr_bank *bank = &c->nsm->pcrs;
    cbor_item_t *body;
    uint64_t index;

    if (!get_index(c, "index", &index)) {
        return fail(c, NE_NSM_INVALID_ARGUMENT);
    }
    if (index >= NE_NSM_NR_PCRS) {
        return fail(c, NE_NSM_INVALID_INDEX);
    }
    body = cbor_new_definite_map(2);
    if (!ne_nsm_cbor_put(body, text("lock"),
                         cbor_build_bool(ne_nsm_pcr_is_locked(bank, index))) ||
        !ne_nsm_cbor_put(body, text("data"),
                         ne_nsm_cbor_bytes(bank->value[index],
                                           NE_NSM_PCR_SIZE))) {
        if (body) {
            cbor_decref(&body);
        }
        return NULL;
    }
    return variant("DescribePCR", body);
}

static cbor_item_t *extend_pcr(struct nsm_call *c)
{
    static const char *const names[] = { "index", "data" };
    const cbor_item_t *f[2];
    struct nsm_effect *e = &c->effect;
    enum ne_nsm_pcr_status st;
    const uint8_t *data;
    size_t len;

    if (!get_fields(c, names, f, 2) || !get_u16(f[0], &e->index) ||
        !get_data(f[1], &data, &len)) {
        return fail(c, NE_NSM_INVALID_ARGUMENT);
    }
    /* hashed once: apply() stores this value */
    st = ne_nsm_pcr_extended(&c->nsm->pcrs, e->index, data, len, e->value);
    if (st != NE_NSM_PCR_OK) {
        return fail(c, pcr_error(st));
    }
    e->kind = EFFECT_EXTEND;
    return variant1("ExtendPCR", "data",
                    ne_nsm_cbor_bytes(e->value, sizeof(e->value)));
}

static cbor_item_t *lock_pcr(struct nsm_call *c)
{
    enum ne_nsm_pcr_status st;

    if (!get_index(c, "index", &c->effect.index)) {
        return fail(c, NE_NSM_INVALID_ARGUMENT);
    }
    st = ne_nsm_pcr_check(&c->nsm->pcrs, c->effect.index);
    if (st != NE_NSM_PCR_OK) {
        return fail(c, pcr_error(st));
    }
    c->effect.kind = EFFECT_LOCK;
    return text("LockPCR");
}

static cbor_item_t *lock_pcrs(struct nsm_call *c)
{
    if (!get_index(c, "range", &c->effect.index)) {
        return fail(c, NE_NSM_INVALID_ARGUMENT);
    }
    /* [0, 32] all succeed, locked PCRs among them or not (AWS's check) */
    if (c->effect.index > NE_NSM_NR_PCRS) {
        return fail(c, NE_NSM_INVALID_INDEX);
    }
    c->effect.kind = EFFECT_LOCK_RANGE;
    return text("LockPCRs");
}

static cbor_item_t *get_random(struct nsm_call *c)
{
    uint8_t random[NE_NSM_RANDOM_SIZE];

    if (RAND_bytes(random, sizeof(random)) != 1) {
        return fail(c, NE_NSM_INTERNAL_ERROR);
    }
    return variant1("GetRandom", "random",
                    ne_nsm_cbor_bytes(random, sizeof(random)));
}

/* An Attestation field: absent or null, else 0-1024 bytes. */
static enum ne_nsm_error get_optional(const cbor_item_t *item,
                                      struct ne_nsm_blob *b)
{
    b->present = item && !ne_nsm_cbor_is_null(item);
    if (!b->present) {
        return NE_NSM_SUCCESS;
    }
    if (!get_data(item, &b->data, &b->len)) {
        return NE_NSM_INVALID_ARGUMENT;
    }
    return b->len > NE_NSM_FIELD_MAX ? NE_NSM_INPUT_TOO_LARGE : NE_NSM_SUCCESS;
}

static enum ne_nsm_error attestation_fields(struct nsm_call *c,
                                            struct ne_nsm_doc_fields *d)
{
    static const char *const names[] = { "user_data", "nonce", "public_key" };
    const cbor_item_t *f[3];
    enum ne_nsm_error e;

    if (!get_fields(c, names, f, 3)) {
        return NE_NSM_INVALID_ARGUMENT;
    }
    e = get_optional(f[0], &d->user_data);
    if (!e) {
        e = get_optional(f[1], &d->nonce);
    }
    if (!e) {
        e = get_optional(f[2], &d->public_key);
    }
    /* a key of no bytes is no key (ATT: 1-1024; verifiers refuse 0) */
    if (!e && d->public_key.present && !d->public_key.len) {
        e = NE_NSM_INVALID_ARGUMENT;
    }
    return e;
}

static cbor_item_t *attestation(struct nsm_call *c)
{
    struct ne_nsm *nsm = c->nsm;
    struct ne_nsm_doc_fields fields;
    enum ne_nsm_error e;
    cbor_item_t *answer;
    uint8_t *doc;
    size_t len;

    e = attestation_fields(c, &fields);
    if (e) {
        return fail(c, e);
    }
    if (!nsm->booted) {
        /* PCR0-15 are zero: a document would attest to no image */
        return fail(c, NE_NSM_INTERNAL_ERROR);
    }
    doc = ne_nsm_doc_sign(&nsm->signer, &nsm->pcrs,
                          nsm->clock_ms(nsm->clock_opaque), &fields, &len);
    if (!doc) {
        return fail(c, NE_NSM_INTERNAL_ERROR);  /* no identity, or memory */
    }
    answer = variant1("Attestation", "document", ne_nsm_cbor_bytes(doc, len));
    free(doc);
    return answer;
}

static const struct {
    const char *name;
    bool has_fields;
    cbor_item_t *(*handle)(struct nsm_call *c);
} requests[] = {
    { "DescribeNSM", false, describe_nsm },
    { "DescribePCR", true, describe_pcr },
    { "ExtendPCR", true, extend_pcr },
    { "LockPCR", true, lock_pcr },
    { "LockPCRs", true, lock_pcrs },
    { "GetRandom", false, get_random },
    { "Attestation", true, attestation },
};

/* The answer to the decoded request @req, or NULL and c->error. */
static cbor_item_t *dispatch(struct nsm_call *c, const cbor_item_t *req)
{
    const cbor_item_t *name = req;
    size_t i;

    if (cbor_isa_map(req)) {
        if (cbor_map_size(req) != 1) {
            return fail(c, NE_NSM_INVALID_OPERATION);
        }
        name = cbor_map_handle(req)[0].key;
        c->fields = cbor_map_handle(req)[0].value;
    }
    for (i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        if (!ne_nsm_cbor_is_text(name, requests[i].name)) {
            continue;
        }
        /* a known request in the wrong form: its arguments are wrong */
        if (requests[i].has_fields != (c->fields != NULL) ||
            (c->fields && !cbor_isa_map(c->fields))) {
            return fail(c, NE_NSM_INVALID_ARGUMENT);
        }
        return requests[i].handle(c);
    }
    return fail(c, NE_NSM_INVALID_OPERATION);
}

static bool apply(struct ne_nsm *nsm, const struct nsm_effect *e)
{
    switch (e->kind) {
    case EFFECT_EXTEND:
        return ne_nsm_pcr_commit(&nsm->pcrs, e->index, e->value) ==
               NE_NSM_PCR_OK;
    case EFFECT_LOCK:
        return ne_nsm_pcr_lock(&nsm->pcrs, e->index) == NE_NSM_PCR_OK;
    case EFFECT_LOCK_RANGE:
        return ne_nsm_pcr_lock_range(&nsm->pcrs, e->index) == NE_NSM_PCR_OK;
    default:
        return true;
    }
}

/* Encodes @answer (taken) into nsm->scratch; 0 when it cannot. */
static size_t encode(struct ne_nsm *nsm, cbor_item_t *answer)
{
    size_t len;

    if (!answer) {
        return 0;
    }
    len = cbor_serialize(answer, nsm->scratch, sizeof(nsm->scratch));
    cbor_decref(&answer);
    return len;
}

/* {"Error": name} into nsm->scratch */
static size_t encode_error(struct ne_nsm *nsm, enum ne_nsm_error error)
{
    return encode(nsm, variant("Error", text(ne_nsm_error_name(error))));
}

/* Encodes the answer to @req in nsm->scratch and applies its effect. */
static size_t answer(struct nsm_call *c, const uint8_t *req, size_t req_len,
                     size_t resp_cap)
{
    cbor_item_t *item;
    size_t len;

    if (req_len > NE_NSM_REQUEST_MAX) {
        c->error = NE_NSM_INPUT_TOO_LARGE;
        return 0;
    }
    switch (ne_nsm_cbor_load(req, req_len, &item)) {
    case NE_NSM_CBOR_OK:
        break;
    case NE_NSM_CBOR_NOMEM:
        c->error = NE_NSM_INTERNAL_ERROR;
        return 0;
    default:
        c->error = NE_NSM_INVALID_OPERATION;
        return 0;
    }
    len = encode(c->nsm, dispatch(c, item));
    if (!len && !c->error) {
        /* out of memory, or over NE_NSM_RESPONSE_MAX (see NE_NSM_CERTS_MAX) */
        c->error = NE_NSM_INTERNAL_ERROR;
    } else if (len > resp_cap) {
        c->error = NE_NSM_BUFFER_TOO_SMALL;
    } else if (len && !apply(c->nsm, &c->effect)) {
        c->error = NE_NSM_INTERNAL_ERROR;
    }
    cbor_decref(&item);
    return c->error ? 0 : len;
}

size_t ne_nsm_handle(struct ne_nsm *nsm, const uint8_t *req, size_t req_len,
                     uint8_t *resp, size_t resp_cap)
{
    struct nsm_call c = { .nsm = nsm, .error = NE_NSM_SUCCESS };
    size_t len;

    if (resp_cap > NE_NSM_RESPONSE_MAX) {
        resp_cap = NE_NSM_RESPONSE_MAX;
    }
    /* OpenSSL's errors end as InternalError: none left on the queue */
    ERR_set_mark();
    len = answer(&c, req, req_len, resp_cap);
    ERR_pop_to_mark();
    if (c.error) {
        len = encode_error(nsm, c.error);
    }
    if (len > resp_cap) {
        /* an error too long for the buffer is, first of all, that */
        len = encode_error(nsm, NE_NSM_BUFFER_TOO_SMALL);
    }
    if (!len || len > resp_cap) {
        return 0;
    }
    memcpy(resp, nsm->scratch, len);
    return len;
}

/* ------------------------------------------------------------ setup */

static uint64_t host_clock_ms(void *opaque)
{
    struct timespec ts;

    (void)opaque;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ne_nsm_init(struct ne_nsm *nsm)
{
    memset(nsm, 0, sizeof(*nsm));
    ne_nsm_pcr_reset(&nsm->pcrs);
    /* fail closed: the platform PCRs are not the enclave's to set */
    ne_nsm_pcr_lock_range(&nsm->pcrs, NE_NSM_PLATFORM_PCRS);
    nsm->booted = false;
    nsm->clock_ms = host_clock_ms;
}

void ne_nsm_cleanup(struct ne_nsm *nsm)
{
    ne_nsm_signer_clear(&nsm->signer);
}

bool ne_nsm_boot(struct ne_nsm *nsm, const struct ne_nsm_boot_pcrs *boot)
{
    nsm->booted = ne_nsm_pcr_boot(&nsm->pcrs, boot);
    return nsm->booted;
}

bool ne_nsm_set_identity(struct ne_nsm *nsm,
                         const struct ne_nsm_identity *id, const char **why)
{
    return ne_nsm_signer_set(&nsm->signer, id, why);
}

void ne_nsm_set_clock(struct ne_nsm *nsm, uint64_t (*clock_ms)(void *),
                      void *opaque)
{
    nsm->clock_ms = clock_ms ? clock_ms : host_clock_ms;
    nsm->clock_opaque = opaque;
}
