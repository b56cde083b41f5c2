// SPDX-License-Identifier: GPL-2.0
/*
 * A small, bounded CBOR writer and reader: see cbor.h.
 */
#include <string.h>
#include "cbor.h"

/* ---- writer ------------------------------------------------------------ */

void cb_writer_init(struct cb_writer *w, uint8_t *buf, size_t cap)
{
	w->buf = buf;
	w->len = 0;
	w->cap = cap;
	w->overflow = false;
}

static void put_raw(struct cb_writer *w, const void *data, size_t len)
{
	if (w->overflow || len > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	if (len)
		memcpy(w->buf + w->len, data, len);
	w->len += len;
}

/* The shortest head for @major and @v, as RFC 8949 section 4.2.1 asks. */
static void put_head(struct cb_writer *w, unsigned int major, uint64_t v)
{
	uint8_t h[9];
	size_t n, i;

	if (v < 24) {
		h[0] = major << 5 | v;
		n = 1;
	} else if (v <= 0xff) {
		h[0] = major << 5 | 24;
		n = 2;
	} else if (v <= 0xffff) {
		h[0] = major << 5 | 25;
		n = 3;
	} else if (v <= 0xffffffff) {
		h[0] = major << 5 | 26;
		n = 5;
	} else {
		h[0] = major << 5 | 27;
		n = 9;
	}
	for (i = n - 1; i >= 1; i--) {	/* big-endian argument */
		h[i] = v & 0xff;
		v >>= 8;
	}
	put_raw(w, h, n);
}

void cb_put_uint(struct cb_writer *w, uint64_t v)
{
	put_head(w, CB_UINT, v);
}

void cb_put_bytes(struct cb_writer *w, const void *data, size_t len)
{
	put_head(w, CB_BYTES, len);
	put_raw(w, data, len);
}

void cb_put_text(struct cb_writer *w, const char *s)
{
	size_t len = strlen(s);

	put_head(w, CB_TEXT, len);
	put_raw(w, s, len);
}

void cb_put_map(struct cb_writer *w, uint64_t pairs)
{
	put_head(w, CB_MAP, pairs);
}

void cb_put_array(struct cb_writer *w, uint64_t items)
{
	put_head(w, CB_ARRAY, items);
}

void cb_put_null(struct cb_writer *w)
{
	put_head(w, CB_SIMPLE, CB_NULL);
}

void cb_put_raw(struct cb_writer *w, const void *data, size_t len)
{
	put_raw(w, data, len);
}

/* ---- reader ------------------------------------------------------------ */

void cb_reader_init(struct cb_reader *r, const void *buf, size_t len)
{
	r->p = buf;
	r->end = r->p + len;
	r->err = NULL;
}

static bool refuse(struct cb_reader *r, const char *why)
{
	if (!r->err)
		r->err = why;
	return false;
}

/* Decodes the head at r->p without moving; *size is its length in bytes. */
static bool decode_head(struct cb_reader *r, struct cb_head *h, size_t *size)
{
	size_t avail = r->end - r->p, n, i;
	unsigned int info;

	if (r->err)
		return false;
	if (!avail)
		return refuse(r, "CBOR ends early");
	h->major = r->p[0] >> 5;
	info = r->p[0] & 0x1f;
	if (info < 24) {
		h->value = info;
		*size = 1;
		return true;
	}
	if (info == 31) {
		/* only indefinite arrays and maps; strings must be definite */
		if (h->major != CB_ARRAY && h->major != CB_MAP)
			return refuse(r, "an indefinite-length item other than an array or map");
		h->value = CB_INDEFINITE;
		*size = 1;
		return true;
	}
	if (info > 27)
		return refuse(r, "a reserved CBOR additional information value");
	n = (size_t)1 << (info - 24);
	if (avail < 1 + n)
		return refuse(r, "CBOR ends early");
	h->value = 0;
	for (i = 1; i <= n; i++)
		h->value = h->value << 8 | r->p[i];
	*size = 1 + n;
	return true;
}

bool cb_peek(struct cb_reader *r, struct cb_head *h)
{
	size_t size;

	return decode_head(r, h, &size);
}

bool cb_get_head(struct cb_reader *r, struct cb_head *h)
{
	size_t size;

	if (!decode_head(r, h, &size))
		return false;
	r->p += size;
	return true;
}

static bool get_typed(struct cb_reader *r, unsigned int major, struct cb_head *h)
{
	struct cb_head peek;

	if (!cb_peek(r, &peek))
		return false;
	if (peek.major != major)
		return refuse(r, "a CBOR item of another type than expected");
	return cb_get_head(r, h);
}

bool cb_get_uint(struct cb_reader *r, uint64_t *v)
{
	struct cb_head h;

	if (!get_typed(r, CB_UINT, &h))
		return false;
	*v = h.value;
	return true;
}

bool cb_get_int(struct cb_reader *r, int64_t *v)
{
	struct cb_head h;

	if (!cb_peek(r, &h))
		return false;
	if ((h.major != CB_UINT && h.major != CB_NINT) || h.value > INT64_MAX)
		return refuse(r, "not a CBOR integer in range");
	cb_get_head(r, &h);
	*v = h.major == CB_UINT ? (int64_t)h.value : -1 - (int64_t)h.value;
	return true;
}

bool cb_get_bool(struct cb_reader *r, bool *v)
{
	struct cb_head h;

	if (!get_typed(r, CB_SIMPLE, &h))
		return false;
	if (h.value != CB_TRUE && h.value != CB_FALSE)
		return refuse(r, "not a CBOR boolean");
	*v = h.value == CB_TRUE;
	return true;
}

bool cb_get_null(struct cb_reader *r)
{
	struct cb_head h;

	if (!cb_peek(r, &h) || h.major != CB_SIMPLE || h.value != CB_NULL)
		return false;	/* not an error: callers ask "is it null?" */
	return cb_get_head(r, &h);
}

static bool get_string(struct cb_reader *r, unsigned int major,
		       const uint8_t **data, size_t *len)
{
	struct cb_head h;

	if (!get_typed(r, major, &h))
		return false;
	if (h.value > (uint64_t)(r->end - r->p))
		return refuse(r, "a CBOR string runs past the end");
	*data = r->p;
	*len = h.value;
	r->p += h.value;
	return true;
}

bool cb_get_bytes(struct cb_reader *r, const uint8_t **data, size_t *len)
{
	return get_string(r, CB_BYTES, data, len);
}

bool cb_get_text(struct cb_reader *r, const char **text, size_t *len)
{
	const uint8_t *data;

	/*
	 * Not get_string(..., (const uint8_t **)text, ...): a store through
	 * that cast does not alias a "const char *" object, and GCC at -Os
	 * then read the caller's pointer as it was before (NULL).
	 */
	if (!get_string(r, CB_TEXT, &data, len))
		return false;
	*text = (const char *)data;
	return true;
}

bool cb_text_is(const char *text, size_t len, const char *want)
{
	return strlen(want) == len && !memcmp(text, want, len);
}

bool cb_get_map(struct cb_reader *r, uint64_t *count)
{
	struct cb_head h;

	if (!get_typed(r, CB_MAP, &h))
		return false;
	*count = h.value;
	return true;
}

bool cb_get_array(struct cb_reader *r, uint64_t *count)
{
	struct cb_head h;

	if (!get_typed(r, CB_ARRAY, &h))
		return false;
	*count = h.value;
	return true;
}

/* The "break" byte that ends an indefinite array or map: consumed if there. */
bool cb_at_break(struct cb_reader *r)
{
	if (r->err || r->p >= r->end || r->p[0] != 0xff)
		return false;
	r->p++;
	return true;
}

static bool skip(struct cb_reader *r, int depth)
{
	struct cb_head h;
	uint64_t i;

	if (depth > CB_MAX_DEPTH)
		return refuse(r, "CBOR nested too deeply");
	if (!cb_get_head(r, &h))
		return false;
	switch (h.major) {
	case CB_UINT:
	case CB_NINT:
		return true;
	case CB_BYTES:
	case CB_TEXT:
		if (h.value > (uint64_t)(r->end - r->p))
			return refuse(r, "a CBOR string runs past the end");
		r->p += h.value;
		return true;
	case CB_ARRAY:
	case CB_MAP:
		if (h.value == CB_INDEFINITE) {
			while (!cb_at_break(r))
				if (!skip(r, depth + 1) ||
				    (h.major == CB_MAP && !skip(r, depth + 1)))
					return false;
			return true;
		}
		/* each item takes a byte at least: a huge count fails soon */
		for (i = 0; i < h.value; i++)
			if (!skip(r, depth + 1) ||
			    (h.major == CB_MAP && !skip(r, depth + 1)))
				return false;
		return true;
	case CB_TAG:
		return skip(r, depth + 1);
	default:	/* simple values and floats carry no nested item */
		return true;
	}
}

bool cb_skip(struct cb_reader *r)
{
	return skip(r, 0);
}

bool cb_at_end(const struct cb_reader *r)
{
	return !r->err && r->p == r->end;
}

bool cb_map_find(struct cb_reader *r, const char *key, struct cb_reader *val)
{
	struct cb_reader m = *r, at = { 0 };	/* @val may be @r itself */
	uint64_t count, i;
	bool found = false;

	if (!cb_get_map(&m, &count))
		goto out;
	for (i = 0; count == CB_INDEFINITE ? !cb_at_break(&m) : i < count; i++) {
		struct cb_head h;
		const char *k = NULL;
		size_t klen = 0;

		if (m.err)
			break;
		if (cb_peek(&m, &h) && h.major == CB_TEXT) {
			if (!cb_get_text(&m, &k, &klen))
				break;
			if (!found && cb_text_is(k, klen, key)) {
				at = m;
				found = true;
			}
		} else if (!cb_skip(&m)) {
			break;
		}
		if (!cb_skip(&m))
			break;
	}
out:
	*r = m;
	if (m.err || !found)
		return false;
	*val = at;
	return true;
}
