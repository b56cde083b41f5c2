/* SPDX-License-Identifier: GPL-2.0 */
#ifndef NECTL_COSE_H
#define NECTL_COSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

/*
 * An NSM attestation document: a COSE_Sign1 whose payload is the CBOR map
 * of shared/spec/attestation.md section 4.  Decoding it is steps 1 and 2 of
 * that spec's verification (section 6); the rest is in attest.c.
 */

/* No NSM response can hold more (0x3000 bytes); a little margin for tests. */
#define COSE_MAX_DOCUMENT	(32 * 1024)
#define COSE_ES384_SIG_SIZE	96
#define ATT_MAX_PCRS		32
#define ATT_MAX_PCR_SIZE	64
/* Real chains have 4 bundle entries; anything far above is not a chain. */
#define ATT_MAX_CABUNDLE	16
#define ATT_MAX_CERT_SIZE	1024
#define ATT_MAX_MODULE_ID	255
/* user_data, nonce and public_key: see cose.c for why 1024. */
#define ATT_MAX_FIELD_SIZE	1024

/* Byte strings point into the decoded CBOR items owned by the document. */
struct att_bytes {
	const uint8_t *data;
	size_t len;
};

/* An optional field: present is false for CBOR null. */
struct att_optional {
	bool present;
	struct att_bytes value;
};

struct att_doc {
	cbor_item_t *cose;		/* the whole COSE_Sign1 */
	cbor_item_t *payload_map;	/* the decoded payload */
	bool tagged;			/* wrapped in tag 18 */
	struct att_bytes protected_hdr, payload, signature;

	char module_id[ATT_MAX_MODULE_ID + 1];
	char digest[16];
	uint64_t timestamp_ms;
	bool pcr_present[ATT_MAX_PCRS];
	struct att_bytes pcrs[ATT_MAX_PCRS];
	struct att_bytes certificate;
	struct att_bytes cabundle[ATT_MAX_CABUNDLE];
	size_t nr_cabundle;
	struct att_optional public_key, user_data, nonce;
};

enum cose_failure {
	COSE_OK = 0,
	COSE_BAD_ENVELOPE,	/* step 1: not a COSE_Sign1 with ES384 */
	COSE_BAD_PAYLOAD,	/* step 2: the payload map breaks the rules */
};

/*
 * Decodes buf into doc (zeroed first).  Returns COSE_OK, or the step that
 * failed with a one-line reason in err; doc keeps what was decoded before
 * the failure and must be released either way.
 */
enum cose_failure cose_decode(const uint8_t *buf, size_t len, struct att_doc *doc,
			      char *err, size_t errlen);
void cose_release(struct att_doc *doc);

/*
 * The bytes the signature covers: the CBOR array
 * ["Signature1", protected, h'' (no external AAD), payload].
 * Returns a malloc'ed buffer, or NULL when out of memory.
 */
uint8_t *cose_sig_structure(const struct att_doc *doc, size_t *len);

#endif
