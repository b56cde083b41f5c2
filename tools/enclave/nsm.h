/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The enclave's side of the Nitro Secure Module: requests through the
 * upstream Linux driver's /dev/nsm (drivers/misc/nsm.c, Linux 6.8+) and
 * its one ioctl, NSM_IOCTL_RAW, which carries a CBOR request to the device
 * and its CBOR response back (shared/spec/attestation.md sections 2 and 7).
 *
 * Requests and responses are the serde "externally tagged" encodings of
 * the NSM API's enums: a request without fields is its name as a text
 * string, one with fields a map of one entry {name: {field: value, ...}};
 * a response likewise, and a failure is {"Error": "<ErrorCode name>"}.
 */
#ifndef NE_ENCLAVE_NSM_H
#define NE_ENCLAVE_NSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cbor.h"

#define NSM_DEV			"/dev/nsm"
#define NSM_REQUEST_MAX		0x1000	/* the driver refuses more: EMSGSIZE */
#define NSM_RESPONSE_MAX	0x3000	/* what the driver posts to the device */
#define NSM_PCR_COUNT		32

/* An optional byte string of a request: data == NULL means absent (null). */
struct nsm_blob {
	const void *data;
	size_t len;
};

/* A decoded response: the variant's name and, for one with fields, its body. */
struct nsm_resp {
	const char *name;
	size_t name_len;
	bool has_body;
	struct cb_reader body;	/* on the body's value (a map, or Error's text) */
};

/* Opens /dev/nsm: a descriptor, or -errno (-ENOENT: no NSM device). */
int nsm_open(void);

/*
 * One NSM_IOCTL_RAW: sends @req_len bytes, receives up to *resp_len bytes
 * (pass NSM_RESPONSE_MAX) and sets *resp_len to what came back.  Returns 0
 * or -errno (-EMSGSIZE: request too large; -ETIMEDOUT: the device did not
 * answer in the driver's 120 s).
 */
int nsm_raw(int fd, const void *req, size_t req_len, void *resp,
	    size_t *resp_len);

/*
 * Request encoders: each writes one request into @buf of @cap bytes and
 * returns its length, or 0 if it does not fit.
 */
size_t nsm_req_plain(uint8_t *buf, size_t cap, const char *name);
size_t nsm_req_u16(uint8_t *buf, size_t cap, const char *name,
		   const char *field, uint64_t value);
size_t nsm_req_extend_pcr(uint8_t *buf, size_t cap, uint64_t index,
			  const void *data, size_t len);
size_t nsm_req_attestation(uint8_t *buf, size_t cap,
			   const struct nsm_blob *user_data,
			   const struct nsm_blob *nonce,
			   const struct nsm_blob *public_key);

/*
 * Decodes a response's outer shape.  Returns false, with *why, if it is
 * not a text string or a one-entry map with a text key, or if bytes follow.
 */
bool nsm_parse(const void *resp, size_t len, struct nsm_resp *out,
	       const char **why);
bool nsm_is(const struct nsm_resp *r, const char *name);
/* The ErrorCode name of an Error response, or "?" */
const char *nsm_error_code(const struct nsm_resp *r, char *buf, size_t size);

/*
 * The whole Attestation exchange on @fd: the document goes to @doc (at
 * most *doc_len bytes; *doc_len is set to its length).  Returns 0, or
 * -errno with @msg saying what went wrong in words (an NSM-level Error
 * is -EPROTO with its ErrorCode name).
 */
int nsm_attest(int fd, const struct nsm_blob *user_data,
	       const struct nsm_blob *nonce, const struct nsm_blob *public_key,
	       uint8_t *doc, size_t *doc_len, char *msg, size_t msg_size);

#endif
