/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small, bounded CBOR (RFC 8949) writer and reader for the NSM's requests
 * and responses: just what the enclave tools need, never more than the
 * buffer they are given.
 *
 * Why not libcbor: Debian's libcbor-dev ships no static library, and the
 * enclave's programs are static.  The NSM speaks a handful of shapes (maps
 * of text keys, byte and text strings, small unsigned integers, booleans,
 * null, arrays), so a writer for those and a reader that can walk and skip
 * any well-formed item is all that is needed.
 *
 * Writer: every cb_put_*() appends to the buffer; one that does not fit
 * sets w->overflow and writes nothing more, so a caller checks once at the
 * end.  Reader: every cb_get_*() reads one item at r->p; one that is not
 * well formed, not of the wanted type, or runs past the end sets r->err
 * and fails from then on.
 */
#ifndef NE_ENCLAVE_CBOR_H
#define NE_ENCLAVE_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* major types */
#define CB_UINT		0
#define CB_NINT		1
#define CB_BYTES	2
#define CB_TEXT		3
#define CB_ARRAY	4
#define CB_MAP		5
#define CB_TAG		6
#define CB_SIMPLE	7

/* simple values (major type 7) */
#define CB_FALSE	20
#define CB_TRUE		21
#define CB_NULL		22

/* An indefinite-length array or map: cb_head's value says so. */
#define CB_INDEFINITE	UINT64_MAX

/* How deep the reader follows nested arrays and maps when skipping. */
#define CB_MAX_DEPTH	16

struct cb_writer {
	uint8_t *buf;
	size_t len, cap;
	bool overflow;
};

struct cb_reader {
	const uint8_t *p, *end;
	const char *err;	/* NULL, or why the input was refused */
};

/* One item's head: major type and argument (length, value or count). */
struct cb_head {
	unsigned int major;
	uint64_t value;		/* CB_INDEFINITE for an indefinite array or map */
};

void cb_writer_init(struct cb_writer *w, uint8_t *buf, size_t cap);
void cb_put_uint(struct cb_writer *w, uint64_t v);
void cb_put_bytes(struct cb_writer *w, const void *data, size_t len);
void cb_put_text(struct cb_writer *w, const char *s);
void cb_put_map(struct cb_writer *w, uint64_t pairs);
void cb_put_array(struct cb_writer *w, uint64_t items);
void cb_put_null(struct cb_writer *w);
/* Bytes that are already CBOR (or meant not to be): appended as they are. */
void cb_put_raw(struct cb_writer *w, const void *data, size_t len);

void cb_reader_init(struct cb_reader *r, const void *buf, size_t len);
bool cb_peek(struct cb_reader *r, struct cb_head *h);
bool cb_get_head(struct cb_reader *r, struct cb_head *h);
bool cb_get_uint(struct cb_reader *r, uint64_t *v);
bool cb_get_int(struct cb_reader *r, int64_t *v);
bool cb_get_bool(struct cb_reader *r, bool *v);
bool cb_get_null(struct cb_reader *r);
/* A definite byte or text string: *data points into the input. */
bool cb_get_bytes(struct cb_reader *r, const uint8_t **data, size_t *len);
bool cb_get_text(struct cb_reader *r, const char **text, size_t *len);
bool cb_text_is(const char *text, size_t len, const char *want);
/*
 * A map or array: *count is its number of pairs or items, CB_INDEFINITE
 * for the indefinite form, whose end cb_at_break() tells.
 */
bool cb_get_map(struct cb_reader *r, uint64_t *count);
bool cb_get_array(struct cb_reader *r, uint64_t *count);
bool cb_at_break(struct cb_reader *r);
bool cb_skip(struct cb_reader *r);
bool cb_at_end(const struct cb_reader *r);
/*
 * In the map that starts at r->p, finds the value of text key @key and
 * leaves *val positioned on it (r itself moves past the whole map).
 * Returns false if the key is absent or the map is not well formed.
 */
bool cb_map_find(struct cb_reader *r, const char *key, struct cb_reader *val);

#endif
