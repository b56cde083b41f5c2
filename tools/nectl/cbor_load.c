// SPDX-License-Identifier: GPL-2.0
/*
 * libcbor's cbor_load() for untrusted input (attestation documents, EIF
 * signature sections).
 */
#include <stdbool.h>

#include "cbor_load.h"

/*
 * libcbor 0.8 allocates an array or map for the count its header declares,
 * before it knows whether the items follow: a 10-byte input declaring 2^31
 * map entries asks for 32 GiB.  So a first pass with the library's
 * streaming decoder (which allocates nothing) refuses counts that the
 * remaining bytes cannot hold (every item takes at least one byte).
 */
struct preflight {
	size_t remaining;
	bool oversized;
};

static void preflight_array(void *ctx, size_t count)
{
	struct preflight *p = ctx;

	if (count > p->remaining)
		p->oversized = true;
}

static void preflight_map(void *ctx, size_t count)
{
	struct preflight *p = ctx;

	if (count > p->remaining / 2)
		p->oversized = true;
}

static const char *preflight(const uint8_t *buf, size_t len)
{
	struct cbor_callbacks cb = cbor_empty_callbacks;
	struct preflight p = { 0, false };
	size_t off = 0;

	cb.array_start = preflight_array;
	cb.map_start = preflight_map;
	while (off < len) {
		struct cbor_decoder_result r;

		p.remaining = len - off;
		r = cbor_stream_decode(buf + off, len - off, &cb, &p);
		if (r.status == CBOR_DECODER_NEDATA)
			return "truncated CBOR";
		if (r.status != CBOR_DECODER_FINISHED || r.read == 0)
			return "malformed CBOR";
		if (p.oversized)
			return "a CBOR array or map declares more items than the input holds";
		off += r.read;
	}
	return NULL;
}

cbor_item_t *nectl_cbor_load(const uint8_t *buf, size_t len, const char **why)
{
	struct cbor_load_result r;
	cbor_item_t *item;

	*why = len ? preflight(buf, len) : "empty input";
	if (*why)
		return NULL;
	item = cbor_load(buf, len, &r);
	if (!item) {
		*why = r.error.code == CBOR_ERR_MEMERROR ? "out of memory" :
		       r.error.code == CBOR_ERR_NOTENOUGHDATA ? "truncated CBOR" :
		       "malformed or too deeply nested CBOR";
		return NULL;
	}
	if (r.read != len) {
		cbor_decref(&item);
		*why = "bytes after the end of the CBOR item";
		return NULL;
	}
	return item;
}
