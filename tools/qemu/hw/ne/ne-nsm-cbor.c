/*
 * libcbor, used safely by the NSM (see ne-nsm-cbor.h).
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include "ne-nsm-cbor.h"

/*
 * The walk before cbor_load(): a stack of the containers that are open at
 * the current position, fed by the streaming decoder's callbacks, one
 * head (or definite string) per call.
 */
enum frame_kind { FRAME_ARRAY, FRAME_MAP, FRAME_TAG };

struct frame {
    enum frame_kind kind;
    bool indefinite;
    size_t left;                /* definite: items not complete yet */
    size_t seen;                /* indefinite: items so far */
};

struct walk {
    struct frame stack[NE_NSM_CBOR_MAX_DEPTH];
    unsigned int depth;
    size_t room;                /* the bytes from the current head on */
    bool called;                /* the last head reached a callback */
    bool bad;
    bool done;                  /* the top-level item is complete */
};

static struct frame *top(struct walk *w)
{
    return w->depth ? &w->stack[w->depth - 1] : NULL;
}

/* An item is complete, and with it maybe its container, and so on. */
static void item_done(struct walk *w)
{
    struct frame *f;

    while ((f = top(w))) {
        if (f->indefinite) {
            f->seen++;
            return;
        }
        if (--f->left) {
            return;
        }
        w->depth--;
    }
    w->done = true;
}

static void leaf(struct walk *w)
{
    w->called = true;
    item_done(w);
}

/*
 * Indefinite byte and text strings are refused outright: no request has
 * one (serde_cbor writes definite strings), and libcbor 0.8 leaks the
 * chunks it has read when growing an indefinite string's chunk array
 * runs out of memory.
 */
static void refuse(struct walk *w)
{
    w->called = true;
    w->bad = true;
}

static void open_frame(struct walk *w, enum frame_kind kind, size_t count,
                       bool indefinite)
{
    size_t slots;

    w->called = true;
    /*
     * More declared items than bytes left can never be complete; refused
     * here so that 2 * count cannot wrap: map(2^63 + 1) would otherwise
     * end after one pair, and cbor_load() allocate for 2^63 + 1.
     */
    if (!indefinite && count > w->room) {
        w->bad = true;
        return;
    }
    slots = kind == FRAME_MAP ? 2 * count : count;
    if (!indefinite && !slots) {
        item_done(w);
        return;
    }
    /* the depth cbor_load() recurses to, and this stack's size */
    if (w->depth == NE_NSM_CBOR_MAX_DEPTH) {
        w->bad = true;
        return;
    }
    w->stack[w->depth++] = (struct frame) {
        .kind = kind, .indefinite = indefinite, .left = slots,
    };
}

static void close_frame(struct walk *w)
{
    struct frame *f = top(w);

    w->called = true;
    /*
     * A break closes an indefinite container, of whole pairs for a map:
     * the walk's own stack would be wrong otherwise (whatever cbor_load()
     * would then say).
     */
    if (!f || !f->indefinite || (f->kind == FRAME_MAP && f->seen % 2)) {
        w->bad = true;
        return;
    }
    w->depth--;
    item_done(w);
}

/* The callbacks, one per libcbor signature; only the shape matters. */
static void on_u8(void *w, uint8_t v)
{
    (void)v;
    leaf(w);
}

static void on_u16(void *w, uint16_t v)
{
    (void)v;
    leaf(w);
}

static void on_u32(void *w, uint32_t v)
{
    (void)v;
    leaf(w);
}

static void on_u64(void *w, uint64_t v)
{
    (void)v;
    leaf(w);
}

static void on_float(void *w, float v)
{
    (void)v;
    leaf(w);
}

static void on_double(void *w, double v)
{
    (void)v;
    leaf(w);
}

static void on_bool(void *w, bool v)
{
    (void)v;
    leaf(w);
}

static void on_simple(void *w)
{
    leaf(w);
}

static void on_string(void *w, cbor_data data, size_t len)
{
    (void)data;
    (void)len;
    leaf(w);
}

static void on_string_start(void *w)
{
    refuse(w);
}

static void on_array(void *w, size_t count)
{
    open_frame(w, FRAME_ARRAY, count, false);
}

static void on_indef_array(void *w)
{
    open_frame(w, FRAME_ARRAY, 0, true);
}

static void on_map(void *w, size_t count)
{
    open_frame(w, FRAME_MAP, count, false);
}

static void on_indef_map(void *w)
{
    open_frame(w, FRAME_MAP, 0, true);
}

static void on_tag(void *w, uint64_t tag)
{
    (void)tag;
    open_frame(w, FRAME_TAG, 1, false);
}

static void on_break(void *w)
{
    close_frame(w);
}

static void walk_callbacks(struct cbor_callbacks *cb)
{
    /* (a base that calls nothing, for any callback a later libcbor adds) */
    *cb = cbor_empty_callbacks;
    cb->uint8 = on_u8;
    cb->uint16 = on_u16;
    cb->uint32 = on_u32;
    cb->uint64 = on_u64;
    cb->negint8 = on_u8;
    cb->negint16 = on_u16;
    cb->negint32 = on_u32;
    cb->negint64 = on_u64;
    cb->byte_string = on_string;
    cb->byte_string_start = on_string_start;
    cb->string = on_string;
    cb->string_start = on_string_start;
    cb->array_start = on_array;
    cb->indef_array_start = on_indef_array;
    cb->map_start = on_map;
    cb->indef_map_start = on_indef_map;
    cb->tag = on_tag;
    cb->float2 = on_float;
    cb->float4 = on_float;
    cb->float8 = on_double;
    cb->undefined = on_simple;
    cb->null = on_simple;
    cb->boolean = on_bool;
    cb->indef_break = on_break;
}

/*
 * The bound on cbor_load()'s allocations needs no check of its own: the
 * whole input is walked before cbor_load() sees it, and an input the walk
 * takes holds every item its heads declare, each at least one byte, so
 * no declared count exceeds its length.  What the bound needs is a walk
 * that is right, and each check here is there for that:
 *  - the status: the decoder's own verdict on the head;
 *  - !r.read: never with CBOR_DECODER_FINISHED in libcbor 0.8, but the
 *    loop would not end if it happened;
 *  - !w.called: a head that reached no callback of ours (one a later
 *    libcbor adds to the empty base) would leave the stack behind;
 *  - w.bad: open_frame() (a count that wraps, the depth), close_frame()
 *    and refuse();
 *  - off == len: exactly one item, neither truncated nor followed.
 */
bool ne_nsm_cbor_well_formed(const uint8_t *buf, size_t len)
{
    struct cbor_callbacks cb;
    struct walk w = { .done = false };
    struct cbor_decoder_result r;
    size_t off = 0;

    walk_callbacks(&cb);
    while (!w.done) {
        if (off == len) {
            return false;       /* truncated, or empty */
        }
        w.called = false;
        w.room = len - off;
        r = cbor_stream_decode(buf + off, len - off, &cb, &w);
        if (r.status != CBOR_DECODER_FINISHED || !r.read || !w.called ||
            w.bad) {
            return false;
        }
        off += r.read;
    }
    return off == len;
}

enum ne_nsm_cbor_status ne_nsm_cbor_load(const uint8_t *buf, size_t len,
                                         cbor_item_t **item)
{
    struct cbor_load_result r;

    *item = NULL;
    if (!ne_nsm_cbor_well_formed(buf, len)) {
        return NE_NSM_CBOR_MALFORMED;
    }
    *item = cbor_load(buf, len, &r);
    if (!*item) {
        return r.error.code == CBOR_ERR_MEMERROR ? NE_NSM_CBOR_NOMEM
                                                 : NE_NSM_CBOR_MALFORMED;
    }
    /*
     * (The walk has seen exactly one item: this only guards against
     * cbor_load() reading the input otherwise than its own stream decoder.)
     */
    if (r.read != len) {
        cbor_decref(item);
        return NE_NSM_CBOR_MALFORMED;
    }
    return NE_NSM_CBOR_OK;
}

bool ne_nsm_cbor_put(cbor_item_t *map, cbor_item_t *key, cbor_item_t *value)
{
    bool ok = map && key && value &&
              cbor_map_add(map, (struct cbor_pair) { key, value });

    /* cbor_map_add() took references of its own */
    if (key) {
        cbor_decref(&key);
    }
    if (value) {
        cbor_decref(&value);
    }
    return ok;
}

bool ne_nsm_cbor_push(cbor_item_t *array, cbor_item_t *item)
{
    bool ok = array && item && cbor_array_push(array, item);

    if (item) {
        cbor_decref(&item);
    }
    return ok;
}

cbor_item_t *ne_nsm_cbor_bytes(const uint8_t *data, size_t len)
{
    /* (libcbor copies from the pointer even for 0 bytes) */
    return cbor_build_bytestring(len ? data : (const uint8_t *)"", len);
}

cbor_item_t *ne_nsm_cbor_uint(uint64_t value)
{
    if (value <= UINT8_MAX) {
        return cbor_build_uint8(value);
    }
    if (value <= UINT16_MAX) {
        return cbor_build_uint16(value);
    }
    if (value <= UINT32_MAX) {
        return cbor_build_uint32(value);
    }
    return cbor_build_uint64(value);
}

bool ne_nsm_cbor_is_text(const cbor_item_t *item, const char *text)
{
    size_t n = strlen(text);

    return cbor_isa_string(item) && cbor_string_is_definite(item) &&
           cbor_string_length(item) == n &&
           !memcmp(cbor_string_handle(item), text, n);
}

/* A simple value (null, true, ...), not a float: cbor_ctrl_value() is safe. */
static bool is_ctrl(const cbor_item_t *item)
{
    return cbor_isa_float_ctrl(item) && cbor_float_ctrl_is_ctrl(item);
}

bool ne_nsm_cbor_is_null(const cbor_item_t *item)
{
    return is_ctrl(item) && cbor_ctrl_value(item) == CBOR_CTRL_NULL;
}

bool ne_nsm_cbor_get_bool(const cbor_item_t *item, bool *value)
{
    if (!is_ctrl(item) || (cbor_ctrl_value(item) != CBOR_CTRL_TRUE &&
                           cbor_ctrl_value(item) != CBOR_CTRL_FALSE)) {
        return false;
    }
    *value = cbor_ctrl_value(item) == CBOR_CTRL_TRUE;
    return true;
}
