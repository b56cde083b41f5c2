/*
 * libcbor, used safely by the NSM: loading untrusted input within bounds,
 * and building items without leaking or crashing when out of memory.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_NSM_CBOR_H
#define HW_NE_NE_NSM_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

/* No NSM request nests deeper than 3; a little room for ignored fields. */
#define NE_NSM_CBOR_MAX_DEPTH   16

enum ne_nsm_cbor_status {
    NE_NSM_CBOR_OK = 0,
    /* not exactly one well-formed item, or beyond the bounds below */
    NE_NSM_CBOR_MALFORMED,
    NE_NSM_CBOR_NOMEM,
};

/*
 * Decodes @buf, which must hold exactly one CBOR item, into *@item.
 *
 * libcbor 0.8's cbor_load() allocates an array or map for the count its
 * header declares before any element is read: a 10-byte input declaring a
 * map of 2^32 pairs asks for 64 GiB.  So the input is first walked with
 * libcbor's streaming decoder, which allocates nothing, and refused unless
 * it is one complete item, every item its heads declare present (each at
 * least one byte), nesting within NE_NSM_CBOR_MAX_DEPTH.  What cbor_load()
 * then allocates for counts is bounded by the input's size.
 */
enum ne_nsm_cbor_status ne_nsm_cbor_load(const uint8_t *buf, size_t len,
                                         cbor_item_t **item);

/*
 * The walk of ne_nsm_cbor_load() alone: whether @buf is exactly one item
 * within those bounds.  Indefinite-length byte and text strings are
 * refused too (no request has one; see ne-nsm-cbor.c).
 */
bool ne_nsm_cbor_well_formed(const uint8_t *buf, size_t len);

/*
 * Builders that take ownership of their item arguments, which may be NULL
 * (a failed cbor_build_*()): they then fail, and release what they own.
 */
bool ne_nsm_cbor_put(cbor_item_t *map, cbor_item_t *key, cbor_item_t *value);
bool ne_nsm_cbor_push(cbor_item_t *array, cbor_item_t *item);

/* A definite byte string of @len bytes (@data may be NULL for none). */
cbor_item_t *ne_nsm_cbor_bytes(const uint8_t *data, size_t len);

/* A uint in its shortest form, as serde_cbor writes it. */
cbor_item_t *ne_nsm_cbor_uint(uint64_t value);

/* Whether @item is the definite text string @text. */
bool ne_nsm_cbor_is_text(const cbor_item_t *item, const char *text);

/*
 * Type predicates for any item, where libcbor's own abort.  libcbor 0.8's
 * cbor_is_null(), cbor_is_undef() and cbor_is_bool() call
 * cbor_ctrl_value(), which asserts that the item is not a float: a half
 * float where null is allowed would abort QEMU.  Every other accessor
 * used on decoded input (cbor_get_int(), cbor_get_bool(), the string,
 * array and map handles) is called only after the cbor_isa_*() or
 * definite check its assertions ask for.
 */
bool ne_nsm_cbor_is_null(const cbor_item_t *item);
/* Whether @item is true or false; *@value is which. */
bool ne_nsm_cbor_get_bool(const cbor_item_t *item, bool *value);

#endif /* HW_NE_NE_NSM_CBOR_H */
