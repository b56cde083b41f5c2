// SPDX-License-Identifier: GPL-2.0
/*
 * The enclave's side of the Nitro Secure Module: see nsm.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/ioctl.h>
#include <linux/types.h>
#include "nsm.h"

#if __has_include(<linux/nsm.h>)
#include <linux/nsm.h>
#else
/*
 * Bookworm's linux-libc-dev (6.1) predates the driver: the uapi as Linux
 * 6.8 defines it (include/uapi/linux/nsm.h), two (address, length) pairs.
 */
struct nsm_iovec {
	__u64 addr;
	__u64 len;
};

struct nsm_raw {
	struct nsm_iovec request;
	struct nsm_iovec response;
};

#define NSM_MAGIC	0x0A
#define NSM_IOCTL_RAW	_IOWR(NSM_MAGIC, 0x0, struct nsm_raw)
#endif

int nsm_open(void)
{
	int fd = open(NSM_DEV, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int nsm_raw(int fd, const void *req, size_t req_len, void *resp,
	    size_t *resp_len)
{
	struct nsm_raw raw = {
		.request = { (uintptr_t)req, req_len },
		.response = { (uintptr_t)resp, *resp_len },
	};

	if (ioctl(fd, NSM_IOCTL_RAW, &raw) < 0)
		return -errno;
	/* the driver sets it to what it copied: never more than we gave */
	*resp_len = raw.response.len < *resp_len ? raw.response.len : *resp_len;
	return 0;
}

/* ---- requests ---------------------------------------------------------- */

static size_t finish(const struct cb_writer *w)
{
	return w->overflow ? 0 : w->len;
}

size_t nsm_req_plain(uint8_t *buf, size_t cap, const char *name)
{
	struct cb_writer w;

	cb_writer_init(&w, buf, cap);
	cb_put_text(&w, name);
	return finish(&w);
}

/* {name: {field: value}}: DescribePCR, LockPCR (index), LockPCRs (range) */
size_t nsm_req_u16(uint8_t *buf, size_t cap, const char *name,
		   const char *field, uint64_t value)
{
	struct cb_writer w;

	cb_writer_init(&w, buf, cap);
	cb_put_map(&w, 1);
	cb_put_text(&w, name);
	cb_put_map(&w, 1);
	cb_put_text(&w, field);
	cb_put_uint(&w, value);
	return finish(&w);
}

size_t nsm_req_extend_pcr(uint8_t *buf, size_t cap, uint64_t index,
			  const void *data, size_t len)
{
	struct cb_writer w;

	cb_writer_init(&w, buf, cap);
	cb_put_map(&w, 1);
	cb_put_text(&w, "ExtendPCR");
	cb_put_map(&w, 2);
	cb_put_text(&w, "index");
	cb_put_uint(&w, index);
	cb_put_text(&w, "data");
	cb_put_bytes(&w, data, len);
	return finish(&w);
}

static void put_blob(struct cb_writer *w, const char *key,
		     const struct nsm_blob *b)
{
	cb_put_text(w, key);
	if (b && b->data)
		cb_put_bytes(w, b->data, b->len);
	else
		cb_put_null(w);
}

/* The three fields in the API's declaration order, absent ones as null. */
size_t nsm_req_attestation(uint8_t *buf, size_t cap,
			   const struct nsm_blob *user_data,
			   const struct nsm_blob *nonce,
			   const struct nsm_blob *public_key)
{
	struct cb_writer w;

	cb_writer_init(&w, buf, cap);
	cb_put_map(&w, 1);
	cb_put_text(&w, "Attestation");
	cb_put_map(&w, 3);
	put_blob(&w, "user_data", user_data);
	put_blob(&w, "nonce", nonce);
	put_blob(&w, "public_key", public_key);
	return finish(&w);
}

/* ---- responses --------------------------------------------------------- */

bool nsm_parse(const void *resp, size_t len, struct nsm_resp *out,
	       const char **why)
{
	struct cb_reader r;
	struct cb_head h;
	uint64_t count;

	memset(out, 0, sizeof(*out));
	cb_reader_init(&r, resp, len);
	if (!cb_peek(&r, &h)) {
		*why = r.err;
		return false;
	}
	if (h.major == CB_TEXT) {
		cb_get_text(&r, &out->name, &out->name_len);
	} else if (h.major == CB_MAP) {
		cb_get_map(&r, &count);
		if (count != 1) {
			*why = "the response is a map of other than one entry";
			return false;
		}
		if (!cb_get_text(&r, &out->name, &out->name_len)) {
			*why = "the response's variant name is not a text string";
			return false;
		}
		out->has_body = true;
		out->body = r;
		if (!cb_skip(&r)) {
			*why = r.err;
			return false;
		}
		out->body.end = r.p;
	} else {
		*why = "the response is neither a text string nor a map";
		return false;
	}
	if (!cb_at_end(&r)) {
		*why = r.err ? r.err : "bytes follow the response";
		return false;
	}
	return true;
}

bool nsm_is(const struct nsm_resp *r, const char *name)
{
	return cb_text_is(r->name, r->name_len, name);
}

const char *nsm_error_code(const struct nsm_resp *r, char *buf, size_t size)
{
	struct cb_reader body = r->body;
	const char *code;
	size_t len;

	if (!nsm_is(r, "Error") || !r->has_body ||
	    !cb_get_text(&body, &code, &len))
		return "?";
	snprintf(buf, size, "%.*s", (int)len, code);
	return buf;
}

int nsm_attest(int fd, const struct nsm_blob *user_data,
	       const struct nsm_blob *nonce, const struct nsm_blob *public_key,
	       uint8_t *doc, size_t *doc_len, char *msg, size_t msg_size)
{
	uint8_t req[NSM_REQUEST_MAX];
	uint8_t *resp;
	size_t req_len, resp_len = NSM_RESPONSE_MAX, len;
	const uint8_t *data;
	struct nsm_resp r;
	struct cb_reader v;
	const char *why;
	char code[32];
	int rc;

	req_len = nsm_req_attestation(req, sizeof(req), user_data, nonce,
				      public_key);
	if (!req_len) {
		snprintf(msg, msg_size, "the request is over the NSM's %d bytes",
			 NSM_REQUEST_MAX);
		return -EMSGSIZE;
	}
	resp = malloc(NSM_RESPONSE_MAX);
	if (!resp) {
		snprintf(msg, msg_size, "out of memory");
		return -ENOMEM;
	}
	rc = nsm_raw(fd, req, req_len, resp, &resp_len);
	if (rc) {
		snprintf(msg, msg_size, "NSM_IOCTL_RAW: %s", strerror(-rc));
		goto out;
	}
	rc = -EPROTO;
	if (!nsm_parse(resp, resp_len, &r, &why)) {
		snprintf(msg, msg_size, "the NSM's response is not valid: %s", why);
		goto out;
	}
	if (nsm_is(&r, "Error")) {
		snprintf(msg, msg_size, "the NSM answered Error %s",
			 nsm_error_code(&r, code, sizeof(code)));
		goto out;
	}
	v = r.body;
	if (!nsm_is(&r, "Attestation") || !r.has_body ||
	    !cb_map_find(&v, "document", &v) || !cb_get_bytes(&v, &data, &len)) {
		snprintf(msg, msg_size, "the NSM's response is not an Attestation with a document");
		goto out;
	}
	if (len > *doc_len) {
		snprintf(msg, msg_size, "the document (%zu bytes) is over %zu bytes",
			 len, *doc_len);
		rc = -EOVERFLOW;
		goto out;
	}
	memcpy(doc, data, len);
	*doc_len = len;
	rc = 0;
out:
	free(resp);
	return rc;
}
