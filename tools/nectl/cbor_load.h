/* SPDX-License-Identifier: GPL-2.0 */
#ifndef NECTL_CBOR_LOAD_H
#define NECTL_CBOR_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

/*
 * Decodes the one CBOR item that fills buf exactly, with libcbor, from
 * untrusted input: counts that the input cannot hold are refused before
 * libcbor allocates for them.  Returns the item (cbor_decref() it), or NULL
 * with a short reason in *why.
 */
cbor_item_t *nectl_cbor_load(const uint8_t *buf, size_t len, const char **why);

#endif
