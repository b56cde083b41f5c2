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
enum frame_kind { FRAME_ARRAY, FRAME_MAP, FRAME_TAG, FRAME_BYTES, FRAME_TEXT };
enum leaf_kind { LEAF_BYTES, LEAF_TEXT, LEAF_OTHER };

struct frame {
    enum frame_kind kind;
    bool indefinite;
    size_t left;                /* definite: items not complete yet */
    size_t seen;                /* indefinite: items so far */
};

struct walk {
    struct frame stack[NE_NSM_CBOR_MAX_DEPTH];
    unsigned int depth;
    size_t pending;             /* declared items not begun (>= 1 byte) */
    bool called;                /* the last head reached a callback */
    bool bad;
    bool done;                  /* the top-level item is complete */
};

static struct frame *top(struct walk *w)
{
    return w->depth ? &w->stack[w->depth - 1] : NULL;
}

/* An item begins: one declared item less is still to come. */
static void item_begins(struct walk *w)
{
    struct frame *f = top(w);

    if (f && !f->indefinite) {
        w->pending--;
    }
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

static bool in_string(struct walk *w)
{
    struct frame *f = top(w);

    return f && (f->kind == FRAME_BYTES || f->kind == FRAME_TEXT);
}

static void leaf(struct walk *w, enum leaf_kind kind)
{
    struct frame *f = top(w);

    w->called = true;
    /* An indefinite string's chunks are definite strings of its type. */
    if (in_string(w) &&
        kind != (f->kind == FRAME_BYTES ? LEAF_BYTES : LEAF_TEXT)) {
        w->bad = true;
        return;
    }
    item_begins(w);
    item_done(w);
}

static void open_frame(struct walk *w, enum frame_kind kind, size_t count,
                       bool indefinite)
{
    size_t slots = count;

    w->called = true;
    if (in_string(w) || (kind == FRAME_MAP && count > SIZE_MAX / 2)) {
        w->bad = true;
        return;
    }
    item_begins(w);
    if (kind == FRAME_MAP) {
        slots = 2 * count;
    }
    if (!indefinite && !slots) {
        item_done(w);
        return;
    }
    if (w->depth == NE_NSM_CBOR_MAX_DEPTH ||
        (!indefinite && slots > SIZE_MAX - w->pending)) {
        w->bad = true;
        return;
    }
    if (!indefinite) {
        w->pending += slots;
    }
    w->stack[w->depth++] = (struct frame) {
        .kind = kind, .indefinite = indefinite, .left = slots,
    };
}

static void close_frame(struct walk *w)
{
    struct frame *f = top(w);

    w->called = true;
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
    leaf(w, LEAF_OTHER);
}

static void on_u16(void *w, uint16_t v)
{
    (void)v;
    leaf(w, LEAF_OTHER);
}

static void on_u32(void *w, uint32_t v)
{
    (void)v;
    leaf(w, LEAF_OTHER);
}

static void on_u64(void *w, uint64_t v)
{
    (void)v;
    leaf(w, LEAF_OTHER);
}

static void on_float(void *w, float v)
{
    (void)v;
    leaf(w, LEAF_OTHER);
}

static void on_double(void *w, double v)
{
    (void)v;
    leaf(w, LEAF_OTHER);
}

static void on_bool(void *w, bool v)
{
    (void)v;
    leaf(w, LEAF_OTHER);
}

static void on_simple(void *w)
{
    leaf(w, LEAF_OTHER);
}

static void on_bytes(void *w, cbor_data data, size_t len)
{
    (void)data;
    (void)len;
    leaf(w, LEAF_BYTES);
}

static void on_text(void *w, cbor_data data, size_t len)
{
    (void)data;
    (void)len;
    leaf(w, LEAF_TEXT);
}

static void on_bytes_start(void *w)
{
    open_frame(w, FRAME_BYTES, 0, true);
}

static void on_text_start(void *w)
{
    open_frame(w, FRAME_TEXT, 0, true);
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
    cb->byte_string = on_bytes;
    cb->byte_string_start = on_bytes_start;
    cb->string = on_text;
    cb->string_start = on_text_start;
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

/* Whether @buf is one well-formed item within the bounds of the header. */
static bool walk_input(const uint8_t *buf, size_t len)
{
    struct cbor_callbacks cb;
    struct walk w = { .done = false };
    struct cbor_decoder_result r;
    size_t off = 0;

    walk_callbacks(&cb);
    while (!w.done) {
        if (off == len) {
            return false;       /* truncated */
        }
        w.called = false;
        r = cbor_stream_decode(buf + off, len - off, &cb, &w);
        if (r.status != CBOR_DECODER_FINISHED || !r.read || !w.called ||
            w.bad) {
            return false;
        }
        off += r.read;
        /* every declared item still to come takes at least one byte */
        if (w.pending > len - off) {
            return false;
        }
    }
    return off == len;
}

enum ne_nsm_cbor_status ne_nsm_cbor_load(const uint8_t *buf, size_t len,
                                         cbor_item_t **item)
{
    struct cbor_load_result r;

    *item = NULL;
    if (!len || !walk_input(buf, len)) {
        return NE_NSM_CBOR_MALFORMED;
    }
    *item = cbor_load(buf, len, &r);
    if (!*item) {
        return r.error.code == CBOR_ERR_MEMERROR ? NE_NSM_CBOR_NOMEM
                                                 : NE_NSM_CBOR_MALFORMED;
    }
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
