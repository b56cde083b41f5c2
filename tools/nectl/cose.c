// SPDX-License-Identifier: GPL-2.0
/*
 * Decoding of NSM attestation documents with libcbor: the COSE_Sign1
 * envelope (verification step 1 of shared/spec/attestation.md section 6)
 * and the payload map's keys, types and limits (step 2).  Nothing here
 * trusts the document: it is checked against the pinned root later.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbor_load.h"
#include "cose.h"

#define COSE_TAG_SIGN1		18
#define COSE_HEADER_ALG		1
#define COSE_ALG_ES384		(-35)

static enum cose_failure fail(enum cose_failure step, char *err, size_t errlen,
			      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum cose_failure fail(enum cose_failure step, char *err, size_t errlen,
			      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return step;
}

/*
 * Definite-length byte strings only: real documents never split one into
 * chunks, and the signature must cover exactly the bytes read here.
 */
static bool get_bytes(const cbor_item_t *item, size_t min, size_t max, struct att_bytes *out)
{
	if (!cbor_isa_bytestring(item) || !cbor_bytestring_is_definite(item))
		return false;
	out->data = cbor_bytestring_handle(item);
	out->len = cbor_bytestring_length(item);
	return out->len >= min && out->len <= max;
}

static bool is_text(const cbor_item_t *item, const char *text)
{
	size_t n = strlen(text);

	return cbor_isa_string(item) && cbor_string_is_definite(item) &&
	       cbor_string_length(item) == n && !memcmp(cbor_string_handle(item), text, n);
}

/* ---------------------------------------------------------- step 1 */

/* The protected header must be exactly {1: -35}: ES384 and nothing else. */
static bool protected_is_es384(const struct att_bytes *hdr)
{
	const char *why;
	cbor_item_t *map = nectl_cbor_load(hdr->data, hdr->len, &why);
	struct cbor_pair *pair;
	bool ok;

	if (!map)
		return false;
	ok = cbor_isa_map(map) && cbor_map_size(map) == 1;
	if (ok) {
		pair = cbor_map_handle(map);
		ok = cbor_isa_uint(pair->key) && cbor_get_int(pair->key) == COSE_HEADER_ALG &&
		     cbor_isa_negint(pair->value) &&
		     cbor_get_int(pair->value) == (uint64_t)(-1 - COSE_ALG_ES384);
	}
	cbor_decref(&map);
	return ok;
}

static enum cose_failure decode_envelope(const uint8_t *buf, size_t len, struct att_doc *doc,
					 char *err, size_t errlen)
{
	const cbor_item_t *sign1;
	cbor_item_t **parts;
	const char *why;

	/*
	 * Real documents are untagged; the COSE RFC allows tag 18 (spec
	 * section 4).  libcbor 0.8 refuses the one-byte heads of tags 6 to 20
	 * (0xC6-0xD4, unassigned in RFC 7049), 18's among them, so that one
	 * byte is taken off here; the two-byte form D8 12 goes through libcbor.
	 */
	if (len > 1 && buf[0] == 0xD2) {
		doc->tagged = true;
		buf++;
		len--;
	}
	doc->cose = nectl_cbor_load(buf, len, &why);
	if (!doc->cose)
		return fail(COSE_BAD_ENVELOPE, err, errlen, "not a CBOR document: %s", why);
	sign1 = doc->cose;
	if (cbor_isa_tag(sign1)) {
		cbor_item_t *inner;

		if (cbor_tag_value(sign1) != COSE_TAG_SIGN1 || doc->tagged)
			return fail(COSE_BAD_ENVELOPE, err, errlen,
				    "tagged %llu%s, not COSE_Sign1 (one tag 18)",
				    (unsigned long long)cbor_tag_value(sign1),
				    doc->tagged ? " inside tag 18" : "");
		doc->tagged = true;
		/* A borrowed pointer: the tag keeps its item alive. */
		inner = cbor_tag_item(sign1);
		sign1 = inner;
		cbor_decref(&inner);
	}
	if (!cbor_isa_array(sign1) || cbor_array_size(sign1) != 4)
		return fail(COSE_BAD_ENVELOPE, err, errlen,
			    "not a COSE_Sign1: expected an array of 4 items");
	parts = cbor_array_handle(sign1);
	if (!get_bytes(parts[0], 1, len, &doc->protected_hdr) ||
	    !protected_is_es384(&doc->protected_hdr))
		return fail(COSE_BAD_ENVELOPE, err, errlen,
			    "the protected header is not {1: -35} (alg ES384)");
	if (!cbor_isa_map(parts[1]))
		return fail(COSE_BAD_ENVELOPE, err, errlen, "the unprotected header is not a map");
	if (!get_bytes(parts[2], 1, len, &doc->payload))
		return fail(COSE_BAD_ENVELOPE, err, errlen,
			    "the payload is not a non-empty definite byte string");
	if (!get_bytes(parts[3], COSE_ES384_SIG_SIZE, COSE_ES384_SIG_SIZE, &doc->signature))
		return fail(COSE_BAD_ENVELOPE, err, errlen,
			    "the signature is not a %d-byte byte string (ES384 r||s)",
			    COSE_ES384_SIG_SIZE);
	return COSE_OK;
}

/* ---------------------------------------------------------- step 2 */

static enum cose_failure field_module_id(const cbor_item_t *v, struct att_doc *doc,
					 char *err, size_t errlen)
{
	size_t len, i;
	const uint8_t *s;

	if (!cbor_isa_string(v) || !cbor_string_is_definite(v))
		return fail(COSE_BAD_PAYLOAD, err, errlen, "module_id is not a text string");
	len = cbor_string_length(v);
	s = cbor_string_handle(v);
	if (len == 0 || len > ATT_MAX_MODULE_ID)
		return fail(COSE_BAD_PAYLOAD, err, errlen, "module_id is empty or longer than %d bytes",
			    ATT_MAX_MODULE_ID);
	/* Real ids are ASCII (i-<hex>-enc<hex>); it is printed, so no control bytes. */
	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return fail(COSE_BAD_PAYLOAD, err, errlen,
				    "module_id has a byte that is not printable ASCII");
	memcpy(doc->module_id, s, len);
	doc->module_id[len] = '\0';
	return COSE_OK;
}

static enum cose_failure field_digest(const cbor_item_t *v, struct att_doc *doc,
				      char *err, size_t errlen)
{
	if (!is_text(v, "SHA384"))
		return fail(COSE_BAD_PAYLOAD, err, errlen, "digest is not \"SHA384\"");
	strcpy(doc->digest, "SHA384");
	return COSE_OK;
}

static enum cose_failure field_timestamp(const cbor_item_t *v, struct att_doc *doc,
					 char *err, size_t errlen)
{
	if (!cbor_isa_uint(v) || cbor_get_int(v) == 0)
		return fail(COSE_BAD_PAYLOAD, err, errlen,
			    "timestamp is not a positive integer (milliseconds)");
	doc->timestamp_ms = cbor_get_int(v);
	return COSE_OK;
}

static bool pcr_size_ok(size_t len)
{
	return len == 32 || len == 48 || len == 64;
}

static enum cose_failure field_pcrs(const cbor_item_t *v, struct att_doc *doc,
				    char *err, size_t errlen)
{
	struct cbor_pair *pairs;
	size_t n, i;
	uint64_t idx;

	if (!cbor_isa_map(v) || cbor_map_size(v) < 1 || cbor_map_size(v) > ATT_MAX_PCRS)
		return fail(COSE_BAD_PAYLOAD, err, errlen, "pcrs is not a map of 1 to %d entries",
			    ATT_MAX_PCRS);
	pairs = cbor_map_handle(v);
	n = cbor_map_size(v);
	for (i = 0; i < n; i++) {
		if (!cbor_isa_uint(pairs[i].key) || cbor_get_int(pairs[i].key) >= ATT_MAX_PCRS)
			return fail(COSE_BAD_PAYLOAD, err, errlen,
				    "a pcrs key is not an integer from 0 to %d", ATT_MAX_PCRS - 1);
		idx = cbor_get_int(pairs[i].key);
		if (doc->pcr_present[idx])
			return fail(COSE_BAD_PAYLOAD, err, errlen, "PCR%llu appears twice",
				    (unsigned long long)idx);
		if (!get_bytes(pairs[i].value, 0, ATT_MAX_PCR_SIZE, &doc->pcrs[idx]) ||
		    !pcr_size_ok(doc->pcrs[idx].len))
			return fail(COSE_BAD_PAYLOAD, err, errlen,
				    "PCR%llu is not a byte string of 32, 48 or 64 bytes",
				    (unsigned long long)idx);
		doc->pcr_present[idx] = true;
	}
	return COSE_OK;
}

static enum cose_failure field_certificate(const cbor_item_t *v, struct att_doc *doc,
					   char *err, size_t errlen)
{
	if (!get_bytes(v, 1, ATT_MAX_CERT_SIZE, &doc->certificate))
		return fail(COSE_BAD_PAYLOAD, err, errlen,
			    "certificate is not a byte string of 1 to %d bytes", ATT_MAX_CERT_SIZE);
	return COSE_OK;
}

static enum cose_failure field_cabundle(const cbor_item_t *v, struct att_doc *doc,
					char *err, size_t errlen)
{
	cbor_item_t **items;
	size_t i;

	if (!cbor_isa_array(v) || cbor_array_size(v) < 1 || cbor_array_size(v) > ATT_MAX_CABUNDLE)
		return fail(COSE_BAD_PAYLOAD, err, errlen,
			    "cabundle is not an array of 1 to %d certificates", ATT_MAX_CABUNDLE);
	items = cbor_array_handle(v);
	for (i = 0; i < cbor_array_size(v); i++)
		if (!get_bytes(items[i], 1, ATT_MAX_CERT_SIZE, &doc->cabundle[i]))
			return fail(COSE_BAD_PAYLOAD, err, errlen,
				    "cabundle[%zu] is not a byte string of 1 to %d bytes", i,
				    ATT_MAX_CERT_SIZE);
	doc->nr_cabundle = cbor_array_size(v);
	return COSE_OK;
}

/*
 * Null, checked without libcbor's cbor_is_null(): in libcbor 0.8 it calls
 * cbor_ctrl_value(), which asserts that the item is no float, so a
 * half-float nonce would abort nectl.  (Every other accessor here runs
 * after the cbor_isa_*() or definite check its assertions ask for.)
 */
static bool is_null(const cbor_item_t *item)
{
	return cbor_isa_float_ctrl(item) && cbor_float_ctrl_is_ctrl(item) &&
	       cbor_ctrl_value(item) == CBOR_CTRL_NULL;
}

/*
 * Absent optional fields are null in real documents.  ATT caps user_data
 * and nonce at 512 bytes, but AWS's own NSM check expects a real NSM to
 * accept 1024 bytes of each (spec section 2), so 1024 is the limit for all
 * three; public_key may not be empty (ATT: 1..1024).
 */
static enum cose_failure field_optional(const cbor_item_t *v, const char *name, size_t min,
					struct att_optional *out, char *err, size_t errlen)
{
	if (is_null(v))
		return COSE_OK;
	if (!get_bytes(v, min, ATT_MAX_FIELD_SIZE, &out->value))
		return fail(COSE_BAD_PAYLOAD, err, errlen,
			    "%s is neither null nor a byte string of %zu to %d bytes", name, min,
			    ATT_MAX_FIELD_SIZE);
	out->present = true;
	return COSE_OK;
}

enum payload_key {
	KEY_MODULE_ID, KEY_DIGEST, KEY_TIMESTAMP, KEY_PCRS, KEY_CERTIFICATE, KEY_CABUNDLE,
	KEY_PUBLIC_KEY, KEY_USER_DATA, KEY_NONCE, NR_KEYS
};

/* In the order real documents use; the first six are mandatory. */
static const char *const payload_keys[NR_KEYS] = {
	"module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle",
	"public_key", "user_data", "nonce",
};
#define NR_MANDATORY_KEYS	6

static enum cose_failure payload_field(enum payload_key key, const cbor_item_t *v,
				       struct att_doc *doc, char *err, size_t errlen)
{
	switch (key) {
	case KEY_MODULE_ID:
		return field_module_id(v, doc, err, errlen);
	case KEY_DIGEST:
		return field_digest(v, doc, err, errlen);
	case KEY_TIMESTAMP:
		return field_timestamp(v, doc, err, errlen);
	case KEY_PCRS:
		return field_pcrs(v, doc, err, errlen);
	case KEY_CERTIFICATE:
		return field_certificate(v, doc, err, errlen);
	case KEY_CABUNDLE:
		return field_cabundle(v, doc, err, errlen);
	case KEY_PUBLIC_KEY:
		return field_optional(v, "public_key", 1, &doc->public_key, err, errlen);
	case KEY_USER_DATA:
		return field_optional(v, "user_data", 0, &doc->user_data, err, errlen);
	default:
		return field_optional(v, "nonce", 0, &doc->nonce, err, errlen);
	}
}

static int find_key(const cbor_item_t *k)
{
	int i;

	for (i = 0; i < NR_KEYS; i++)
		if (is_text(k, payload_keys[i]))
			return i;
	return -1;
}

/* Definite and indefinite maps alike: AWS moved to the latter in 2025. */
static enum cose_failure decode_payload(struct att_doc *doc, char *err, size_t errlen)
{
	bool seen[NR_KEYS] = { false };
	struct cbor_pair *pairs;
	enum cose_failure r;
	const char *why;
	size_t i;
	int key;

	doc->payload_map = nectl_cbor_load(doc->payload.data, doc->payload.len, &why);
	if (!doc->payload_map)
		return fail(COSE_BAD_PAYLOAD, err, errlen, "the payload is not CBOR: %s", why);
	if (!cbor_isa_map(doc->payload_map))
		return fail(COSE_BAD_PAYLOAD, err, errlen, "the payload is not a CBOR map");
	pairs = cbor_map_handle(doc->payload_map);
	for (i = 0; i < cbor_map_size(doc->payload_map); i++) {
		key = find_key(pairs[i].key);
		if (key < 0)
			return fail(COSE_BAD_PAYLOAD, err, errlen,
				    "the payload has a key that is not one of the 9 known names");
		if (seen[key])
			return fail(COSE_BAD_PAYLOAD, err, errlen, "the payload has %s twice",
				    payload_keys[key]);
		seen[key] = true;
		r = payload_field(key, pairs[i].value, doc, err, errlen);
		if (r)
			return r;
	}
	for (key = 0; key < NR_MANDATORY_KEYS; key++)
		if (!seen[key])
			return fail(COSE_BAD_PAYLOAD, err, errlen, "the payload has no %s",
				    payload_keys[key]);
	return COSE_OK;
}

enum cose_failure cose_decode(const uint8_t *buf, size_t len, struct att_doc *doc,
			      char *err, size_t errlen)
{
	enum cose_failure r;

	memset(doc, 0, sizeof(*doc));
	if (len > COSE_MAX_DOCUMENT)
		return fail(COSE_BAD_ENVELOPE, err, errlen,
			    "%zu bytes: larger than any NSM document (at most %d)", len,
			    COSE_MAX_DOCUMENT);
	r = decode_envelope(buf, len, doc, err, errlen);
	return r ? r : decode_payload(doc, err, errlen);
}

void cose_release(struct att_doc *doc)
{
	if (doc->payload_map)
		cbor_decref(&doc->payload_map);
	if (doc->cose)
		cbor_decref(&doc->cose);
}

/* A byte-string head then the bytes; returns the new end, or NULL. */
static uint8_t *put_bytes(uint8_t *p, const uint8_t *end, const struct att_bytes *b)
{
	size_t n = cbor_encode_bytestring_start(b->len, p, end - p);

	if (!n || (size_t)(end - p) - n < b->len)
		return NULL;
	if (b->len)
		memcpy(p + n, b->data, b->len);
	return p + n + b->len;
}

uint8_t *cose_sig_structure(const struct att_doc *doc, size_t *len)
{
	static const struct att_bytes no_aad = { NULL, 0 };
	static const char context[] = "Signature1";
	/* 4 heads of at most 9 bytes, the context, the two byte strings. */
	size_t size = 4 * 9 + sizeof(context) + doc->protected_hdr.len + doc->payload.len;
	uint8_t *buf = malloc(size), *p, *end = buf + size;
	size_t n;

	if (!buf)
		return NULL;
	p = buf + cbor_encode_array_start(4, buf, size);
	n = cbor_encode_string_start(strlen(context), p, end - p);
	memcpy(p + n, context, strlen(context));
	p += n + strlen(context);
	p = put_bytes(p, end, &doc->protected_hdr);
	p = p ? put_bytes(p, end, &no_aad) : NULL;
	p = p ? put_bytes(p, end, &doc->payload) : NULL;
	if (!p) {
		free(buf);
		return NULL;
	}
	*len = p - buf;
	return buf;
}
