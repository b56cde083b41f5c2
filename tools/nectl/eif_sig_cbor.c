// SPDX-License-Identifier: GPL-2.0
/*
 * The CBOR of EIF signatures (see eif_sig.h): encoded with libcbor's
 * encoders in the shortest form, which is what serde_cbor writes, so that
 * nectl's sections are nitro-cli's byte for byte; decoded with libcbor
 * from untrusted files.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>

#include "cbor_load.h"
#include "eif_sig.h"

#define COSE_TAG_SIGN1		18
#define COSE_HEADER_ALG		1
#define CBOR_HEAD_MAX		9

static const char key_index[] = "register_index";
static const char key_value[] = "register_value";
static const char key_cert[] = "signing_certificate";
static const char key_sig[] = "signature";

/* ------------------------------------------------------------ encoding */

struct cbor_out {
	uint8_t *buf;
	size_t len, cap;
	bool failed;
};

static uint8_t *room(struct cbor_out *o, size_t n)
{
	size_t cap = o->cap ? o->cap : 256;
	uint8_t *b;

	if (o->failed)
		return NULL;
	if (o->cap - o->len >= n)
		return o->buf + o->len;
	while (cap - o->len < n)
		cap *= 2;
	b = realloc(o->buf, cap);
	if (!b) {
		o->failed = true;
		return NULL;
	}
	o->buf = b;
	o->cap = cap;
	return o->buf + o->len;
}

static void head(struct cbor_out *o, cbor_type major, uint64_t n)
{
	uint8_t *p = room(o, CBOR_HEAD_MAX);
	size_t w = 0;

	if (!p)
		return;
	switch (major) {
	case CBOR_TYPE_UINT:
		w = cbor_encode_uint(n, p, CBOR_HEAD_MAX);
		break;
	case CBOR_TYPE_NEGINT:
		w = cbor_encode_negint(n, p, CBOR_HEAD_MAX);
		break;
	case CBOR_TYPE_BYTESTRING:
		w = cbor_encode_bytestring_start(n, p, CBOR_HEAD_MAX);
		break;
	case CBOR_TYPE_STRING:
		w = cbor_encode_string_start(n, p, CBOR_HEAD_MAX);
		break;
	case CBOR_TYPE_ARRAY:
		w = cbor_encode_array_start(n, p, CBOR_HEAD_MAX);
		break;
	case CBOR_TYPE_MAP:
		w = cbor_encode_map_start(n, p, CBOR_HEAD_MAX);
		break;
	default:
		break;
	}
	if (!w)
		o->failed = true;
	o->len += w;
}

static void put(struct cbor_out *o, const void *data, size_t n)
{
	uint8_t *p = room(o, n);

	if (p && n) {
		memcpy(p, data, n);
		o->len += n;
	}
}

static void put_int(struct cbor_out *o, int64_t v)
{
	if (v >= 0)
		head(o, CBOR_TYPE_UINT, v);
	else
		head(o, CBOR_TYPE_NEGINT, (uint64_t)(-1 - v));
}

static void put_text(struct cbor_out *o, const char *s)
{
	head(o, CBOR_TYPE_STRING, strlen(s));
	put(o, s, strlen(s));
}

static void put_bytes(struct cbor_out *o, const struct eif_sig_bytes *b)
{
	head(o, CBOR_TYPE_BYTESTRING, b->len);
	put(o, b->data, b->len);
}

/* serde's Vec<u8>: an array with one integer per byte. */
static void put_u8_array(struct cbor_out *o, const uint8_t *data, size_t len)
{
	size_t i;

	head(o, CBOR_TYPE_ARRAY, len);
	for (i = 0; i < len; i++)
		head(o, CBOR_TYPE_UINT, data[i]);
}

static uint8_t *finish(struct cbor_out *o, size_t *out_len)
{
	if (o->failed) {
		free(o->buf);
		return NULL;
	}
	*out_len = o->len;
	return o->buf;
}

/* serde_cbor writes a struct as a map of its field names, in declaration order. */
uint8_t *eif_sig_pcr_payload(unsigned int index, const uint8_t *value, size_t len,
			     size_t *out_len)
{
	struct cbor_out o = { 0 };

	head(&o, CBOR_TYPE_MAP, 2);
	put_text(&o, key_index);
	put_int(&o, index);
	put_text(&o, key_value);
	put_u8_array(&o, value, len);
	return finish(&o, out_len);
}

uint8_t *eif_sig_protected_hdr(int alg, size_t *out_len)
{
	struct cbor_out o = { 0 };

	head(&o, CBOR_TYPE_MAP, 1);
	put_int(&o, COSE_HEADER_ALG);
	put_int(&o, alg);
	return finish(&o, out_len);
}

uint8_t *eif_sig_tbs(const struct eif_cose *cose, size_t *out_len)
{
	static const struct eif_sig_bytes no_aad = { NULL, 0 };
	struct cbor_out o = { 0 };

	head(&o, CBOR_TYPE_ARRAY, 4);
	put_text(&o, "Signature1");
	put_bytes(&o, &cose->protected_hdr);
	put_bytes(&o, &no_aad);
	put_bytes(&o, &cose->payload);
	return finish(&o, out_len);
}

/* Untagged, with an empty unprotected header, as nitro-cli's builder. */
uint8_t *eif_sig_cose_encode(const struct eif_cose *cose, size_t *out_len)
{
	struct cbor_out o = { 0 };

	head(&o, CBOR_TYPE_ARRAY, 4);
	put_bytes(&o, &cose->protected_hdr);
	head(&o, CBOR_TYPE_MAP, 0);
	put_bytes(&o, &cose->payload);
	put_bytes(&o, &cose->signature);
	return finish(&o, out_len);
}

uint8_t *eif_sig_section_encode(const struct eif_sig_entry *entry, size_t *out_len)
{
	struct cbor_out o = { 0 };

	head(&o, CBOR_TYPE_ARRAY, 1);
	head(&o, CBOR_TYPE_MAP, 2);
	put_text(&o, key_cert);
	put_u8_array(&o, entry->pem.data, entry->pem.len);
	put_text(&o, key_sig);
	put_u8_array(&o, entry->cose.data, entry->cose.len);
	return finish(&o, out_len);
}

/* ------------------------------------------------------------ decoding */

int eif_sig_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static bool copy_out(const uint8_t *data, size_t len, struct eif_sig_bytes *out)
{
	out->data = malloc(len ? len : 1);
	if (!out->data)
		return false;
	if (len)
		memcpy(out->data, data, len);
	out->len = len;
	return true;
}

/* A Vec<u8> as serde_cbor reads one: an array of integers 0-255. */
static bool get_u8_array(const cbor_item_t *v, struct eif_sig_bytes *out)
{
	cbor_item_t **items;
	size_t i, n;

	if (!cbor_isa_array(v))
		return false;
	n = cbor_array_size(v);
	items = cbor_array_handle(v);
	out->data = malloc(n ? n : 1);
	if (!out->data)
		return false;
	out->len = n;
	for (i = 0; i < n; i++) {
		if (!cbor_isa_uint(items[i]) || cbor_get_int(items[i]) > 0xFF)
			return false;
		out->data[i] = (uint8_t)cbor_get_int(items[i]);
	}
	return true;
}

static bool is_text(const cbor_item_t *item, const char *text)
{
	size_t n = strlen(text);

	return cbor_isa_string(item) && cbor_string_is_definite(item) &&
	       cbor_string_length(item) == n && !memcmp(cbor_string_handle(item), text, n);
}

/* A struct's field: unknown names are skipped and repeats refused, as serde does. */
static int entry_field(const struct cbor_pair *p, struct eif_sig_entry *e, char *err,
		       size_t errlen)
{
	struct eif_sig_bytes *dst;
	const char *name;

	if (is_text(p->key, key_cert)) {
		dst = &e->pem;
		name = key_cert;
	} else if (is_text(p->key, key_sig)) {
		dst = &e->cose;
		name = key_sig;
	} else {
		return 0;
	}
	if (dst->data)
		return eif_sig_fail(err, errlen, "entry 0 has %s twice", name);
	if (!get_u8_array(p->value, dst))
		return eif_sig_fail(err, errlen, "entry 0's %s is not an array of bytes (0-255)", name);
	return 0;
}

int eif_sig_section_decode(const uint8_t *buf, size_t len, struct eif_sig_entry *entry,
			   char *err, size_t errlen)
{
	const cbor_item_t *first;
	struct cbor_pair *pairs;
	cbor_item_t *root;
	const char *why;
	size_t i;
	int ret = -1;

	memset(entry, 0, sizeof(*entry));
	root = nectl_cbor_load(buf, len, &why);
	if (!root)
		return eif_sig_fail(err, errlen, "not CBOR: %s", why);
	if (!cbor_isa_array(root) || !cbor_array_size(root)) {
		eif_sig_fail(err, errlen, "not a non-empty CBOR array of PcrSignature");
		goto out;
	}
	entry->nr_entries = cbor_array_size(root);
	first = cbor_array_handle(root)[0];
	if (!cbor_isa_map(first)) {
		eif_sig_fail(err, errlen, "entry 0 is not a map {signing_certificate, signature}");
		goto out;
	}
	pairs = cbor_map_handle(first);
	for (i = 0; i < cbor_map_size(first); i++)
		if (entry_field(&pairs[i], entry, err, errlen))
			goto out;
	if (!entry->pem.data || !entry->cose.data) {
		eif_sig_fail(err, errlen, "entry 0 has no %s", entry->pem.data ? key_sig : key_cert);
		goto out;
	}
	ret = 0;
out:
	cbor_decref(&root);
	return ret;
}

static bool get_bytes(const cbor_item_t *item, struct eif_sig_bytes *out)
{
	return cbor_isa_bytestring(item) && cbor_bytestring_is_definite(item) &&
	       copy_out(cbor_bytestring_handle(item), cbor_bytestring_length(item), out);
}

/* The COSE_Sign1 array inside root, which may be tag 18. */
static const cbor_item_t *sign1_of(const cbor_item_t *root, struct eif_cose *cose,
				   cbor_item_t **inner)
{
	if (!cbor_isa_tag(root))
		return root;
	if (cbor_tag_value(root) != COSE_TAG_SIGN1 || cose->tagged)
		return NULL;
	cose->tagged = true;
	*inner = cbor_tag_item(root);
	return *inner;
}

int eif_sig_cose_decode(const uint8_t *buf, size_t len, struct eif_cose *cose,
			char *err, size_t errlen)
{
	cbor_item_t *root, *inner = NULL, **parts;
	const cbor_item_t *sign1;
	const char *why;
	int ret = -1;

	memset(cose, 0, sizeof(*cose));
	/* libcbor 0.8 refuses tag 18's one-byte head (0xD2): see cose.c. */
	if (len > 1 && buf[0] == 0xD2) {
		cose->tagged = true;
		buf++;
		len--;
	}
	root = nectl_cbor_load(buf, len, &why);
	if (!root)
		return eif_sig_fail(err, errlen, "the COSE_Sign1 is not CBOR: %s", why);
	sign1 = sign1_of(root, cose, &inner);
	if (!sign1 || !cbor_isa_array(sign1) || cbor_array_size(sign1) != 4) {
		eif_sig_fail(err, errlen, "the signature is not a COSE_Sign1 (an array of 4, untagged or tag 18)");
		goto out;
	}
	parts = cbor_array_handle(sign1);
	if (!get_bytes(parts[0], &cose->protected_hdr) || !cbor_isa_map(parts[1]) ||
	    !get_bytes(parts[2], &cose->payload) || !get_bytes(parts[3], &cose->signature)) {
		eif_sig_fail(err, errlen, "the COSE_Sign1 is not [bstr protected, map, bstr payload, bstr signature]");
		goto out;
	}
	ret = 0;
out:
	if (inner)
		cbor_decref(&inner);
	cbor_decref(&root);
	return ret;
}

bool eif_sig_protected_alg(const struct eif_sig_bytes *hdr, int64_t *alg)
{
	cbor_item_t *map;
	struct cbor_pair *pairs;
	const char *why;
	bool found = false;
	size_t i;

	map = nectl_cbor_load(hdr->data, hdr->len, &why);
	if (!map)
		return false;
	if (cbor_isa_map(map)) {
		pairs = cbor_map_handle(map);
		for (i = 0; i < cbor_map_size(map); i++) {
			const cbor_item_t *v = pairs[i].value;

			if (!cbor_isa_uint(pairs[i].key) || cbor_get_int(pairs[i].key) != COSE_HEADER_ALG)
				continue;
			/* COSE algorithm numbers are small; anything else is no alg. */
			if ((!cbor_isa_uint(v) && !cbor_isa_negint(v)) || cbor_get_int(v) > INT32_MAX)
				break;
			*alg = cbor_isa_uint(v) ? (int64_t)cbor_get_int(v) : -1 - (int64_t)cbor_get_int(v);
			found = true;
			break;
		}
	}
	cbor_decref(&map);
	return found;
}

void eif_sig_entry_release(struct eif_sig_entry *entry)
{
	free(entry->pem.data);
	free(entry->cose.data);
	memset(entry, 0, sizeof(*entry));
}

void eif_cose_release(struct eif_cose *cose)
{
	free(cose->protected_hdr.data);
	free(cose->payload.data);
	free(cose->signature.data);
	memset(cose, 0, sizeof(*cose));
}
