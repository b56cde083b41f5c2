// SPDX-License-Identifier: GPL-2.0
/*
 * nsm-check: the acceptance test of an NSM device, run inside an enclave
 * (static, in the sample image as /nsm-check; the sample app runs it for a
 * client of vsock port 5011).  Every request of the NSM's catalogue
 * (shared/spec/attestation.md section 2) goes through the upstream
 * driver's /dev/nsm, and the answers are checked against what a real NSM
 * gives (sections 2 to 4): DescribeNSM; DescribePCR of every PCR, their
 * sizes, locks and first values; ExtendPCR (new = SHA-384(old || data)),
 * refused on locked PCRs; LockPCR and LockPCRs; GetRandom; the driver's
 * hwrng; Attestation with and without user_data, nonce and public_key,
 * each document a COSE_Sign1 whose payload carries what was asked and the
 * PCRs, signed (ES384) by the key of its own certificate; and malformed,
 * unknown and oversized requests.
 *
 * It locks PCRs 16 to 31 for good: run it once per enclave.  It does not
 * check the certificate chain (the parent's verifier does that).
 *
 * Usage: nsm-check [--device-only]
 * The checks of the device through /dev/nsm come first, then the one of
 * the kernel's own use of it (its hwrng, which reads through the driver,
 * not /dev/nsm).  --device-only makes only the former: for a host harness
 * that stands in for /dev/nsm and has no such kernel.  The kernel's check
 * is then not in the plan at all, rather than a skip that would pass.
 *
 * Output: TAP (a plan, one line per check, "# N passed, N failed").
 * Exit status: 0 when every check passed, 1 otherwise, 2 on a bad
 * argument; without /dev/nsm it says so and bails out (status 1): an
 * enclave that should have an NSM and has none fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gmp.h>
#include <nettle/ecc.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecdsa.h>
#include <nettle/sha2.h>
#include "cbor.h"
#include "nsm.h"

#define PCR_SIZE	48	/* SHA-384 */
#define LOCKED_PCRS	16	/* 0..15, locked by the platform */
#define RANDOM_CALLS	16
#define RANDOM_MIN	24	/* the driver's hwrng misreads shorter answers */
#define FIELD_SIZE	1024	/* AWS's own check sends this much */
#define COSE_ES384	(-35)
#define SIG_SIZE	96	/* ES384: r || s */
#define P384_BYTES	48
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static int nsm_fd = -1;
static uint8_t resp[NSM_RESPONSE_MAX];
static size_t resp_len;
static char why[512];

/* What DescribeNSM and DescribePCR said, for later checks. */
static char module_id[128];
static uint8_t pcr[NSM_PCR_COUNT][PCR_SIZE];
static bool pcr_known[NSM_PCR_COUNT];

static const char *fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return why;
}

/*
 * Sends @len bytes of @req and decodes the answer's outer shape into @r.
 * Returns NULL, or why it failed.
 */
static const char *exchange(const uint8_t *req, size_t len, struct nsm_resp *r)
{
	const char *bad;
	int rc;

	if (!len)
		return fail("the request does not fit %d bytes", NSM_REQUEST_MAX);
	resp_len = sizeof(resp);
	rc = nsm_raw(nsm_fd, req, len, resp, &resp_len);
	if (rc)
		return fail("NSM_IOCTL_RAW: %s", strerror(-rc));
	if (!nsm_parse(resp, resp_len, r, &bad))
		return fail("the response (%zu bytes) is not valid: %s",
			    resp_len, bad);
	return NULL;
}

/* Sends a request that must succeed as variant @name (with a body if @body). */
static const char *expect_ok(const uint8_t *req, size_t len, const char *name,
			     bool body, struct nsm_resp *r)
{
	const char *err = exchange(req, len, r);
	char code[32];

	if (err)
		return err;
	if (nsm_is(r, "Error"))
		return fail("the NSM answered Error %s, expected %s",
			    nsm_error_code(r, code, sizeof(code)), name);
	if (!nsm_is(r, name) || r->has_body != body)
		return fail("the NSM answered %.*s%s, expected %s%s",
			    (int)r->name_len, r->name,
			    r->has_body ? " {...}" : "", name, body ? " {...}" : "");
	return NULL;
}

/* Sends a request that the NSM must refuse with an Error. */
static const char *expect_error(const uint8_t *req, size_t len, const char *what)
{
	struct nsm_resp r;
	const char *err = exchange(req, len, &r);
	struct cb_reader body;
	const char *code;
	size_t code_len;

	if (err)
		return fail("%s: %s", what, err);
	if (!nsm_is(&r, "Error"))
		return fail("%s: the NSM answered %.*s, expected Error", what,
			    (int)r.name_len, r.name);
	body = r.body;
	if (!r.has_body || !cb_get_text(&body, &code, &code_len) ||
	    !cb_at_end(&body))
		return fail("%s: Error without an ErrorCode name", what);
	return NULL;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	while (len--)
		if (*p++)
			return false;
	return true;
}

/* DescribePCR @index: its lock and value (PCR_SIZE bytes expected). */
static const char *describe_pcr(unsigned int index, bool *lock, uint8_t *value)
{
	uint8_t req[64];
	struct nsm_resp r;
	struct cb_reader v;
	const uint8_t *data;
	size_t len;
	const char *err;

	err = expect_ok(req, nsm_req_u16(req, sizeof(req), "DescribePCR",
					 "index", index),
			"DescribePCR", true, &r);
	if (err)
		return fail("DescribePCR %u: %s", index, err);
	v = r.body;
	if (!cb_map_find(&v, "lock", &v) || !cb_get_bool(&v, lock))
		return fail("DescribePCR %u: no boolean lock", index);
	v = r.body;
	if (!cb_map_find(&v, "data", &v) || !cb_get_bytes(&v, &data, &len))
		return fail("DescribePCR %u: no data bytes", index);
	if (len != PCR_SIZE)
		return fail("DescribePCR %u: %zu bytes, expected %d", index,
			    len, PCR_SIZE);
	memcpy(value, data, PCR_SIZE);
	return NULL;
}

/* ---- the checks -------------------------------------------------------- */

static const char *check_describe_nsm(void)
{
	static const char *const nums[] = {
		"version_major", "version_minor", "version_patch", "max_pcrs",
	};
	uint8_t req[32];
	struct nsm_resp r;
	struct cb_reader v;
	uint64_t n, count, i, seen = 0;
	const char *err, *text;
	size_t len;

	err = expect_ok(req, nsm_req_plain(req, sizeof(req), "DescribeNSM"),
			"DescribeNSM", true, &r);
	if (err)
		return err;
	for (i = 0; i < ARRAY_SIZE(nums); i++) {
		v = r.body;
		if (!cb_map_find(&v, nums[i], &v) || !cb_get_uint(&v, &n) ||
		    n > 0xffff)
			return fail("no %s (a u16)", nums[i]);
		if (!strcmp(nums[i], "max_pcrs") && n != NSM_PCR_COUNT)
			return fail("max_pcrs %llu, expected %d",
				    (unsigned long long)n, NSM_PCR_COUNT);
	}
	v = r.body;
	if (!cb_map_find(&v, "module_id", &v) || !cb_get_text(&v, &text, &len) ||
	    !len || len >= sizeof(module_id))
		return fail("no module_id, or an empty one");
	snprintf(module_id, sizeof(module_id), "%.*s", (int)len, text);
	v = r.body;
	if (!cb_map_find(&v, "digest", &v) || !cb_get_text(&v, &text, &len) ||
	    !cb_text_is(text, len, "SHA384"))
		return fail("digest is not \"SHA384\"");
	v = r.body;
	if (!cb_map_find(&v, "locked_pcrs", &v) || !cb_get_array(&v, &count))
		return fail("no locked_pcrs array");
	for (i = 0; count == CB_INDEFINITE ? !cb_at_break(&v) : i < count; i++) {
		if (!cb_get_uint(&v, &n) || n >= 64)
			return fail("locked_pcrs holds something other than a PCR index");
		seen |= 1ULL << n;
	}
	if (seen != (1ULL << LOCKED_PCRS) - 1)
		return fail("locked_pcrs is not exactly 0..15 (bits %#llx)",
			    (unsigned long long)seen);
	return NULL;
}

static const char *check_describe_pcrs(void)
{
	unsigned int i;
	const char *err;
	bool lock;

	for (i = 0; i < NSM_PCR_COUNT; i++) {
		err = describe_pcr(i, &lock, pcr[i]);
		if (err)
			return err;
		pcr_known[i] = true;
		if (lock != (i < LOCKED_PCRS))
			return fail("PCR%u is %slocked, expected %slocked", i,
				    lock ? "" : "not ", i < LOCKED_PCRS ? "" : "not ");
	}
	return NULL;
}

/* PCR0..2 measure the image: all set, or all zero (a debug-mode enclave). */
static const char *check_image_pcrs(void)
{
	int zero = all_zero(pcr[0], PCR_SIZE) + all_zero(pcr[1], PCR_SIZE) +
		   all_zero(pcr[2], PCR_SIZE);

	if (zero != 0 && zero != 3)
		return fail("%d of PCR0..2 are zero: expected none (or all, in debug mode)",
			    zero);
	return NULL;
}

static const char *check_free_pcrs_start_zero(void)
{
	unsigned int i;

	for (i = LOCKED_PCRS; i < NSM_PCR_COUNT; i++)
		if (!all_zero(pcr[i], PCR_SIZE))
			return fail("PCR%u is not zero before any ExtendPCR", i);
	return NULL;
}

static const char *check_describe_pcr_out_of_range(void)
{
	uint8_t req[64];

	return expect_error(req, nsm_req_u16(req, sizeof(req), "DescribePCR",
					     "index", NSM_PCR_COUNT),
			    "DescribePCR 32");
}

/* ExtendPCR @index with @data; the NSM's new value goes to @value. */
static const char *extend_pcr(unsigned int index, const void *data, size_t len,
			      uint8_t *value)
{
	uint8_t req[NSM_REQUEST_MAX];
	struct nsm_resp r;
	struct cb_reader v;
	const uint8_t *got;
	size_t got_len;
	const char *err;

	err = expect_ok(req, nsm_req_extend_pcr(req, sizeof(req), index, data, len),
			"ExtendPCR", true, &r);
	if (err)
		return fail("ExtendPCR %u: %s", index, err);
	v = r.body;
	if (!cb_map_find(&v, "data", &v) || !cb_get_bytes(&v, &got, &got_len) ||
	    got_len != PCR_SIZE)
		return fail("ExtendPCR %u: no %d-byte data", index, PCR_SIZE);
	memcpy(value, got, PCR_SIZE);
	return NULL;
}

static void sha384_extend(const uint8_t *old, const void *data, size_t len,
			  uint8_t *out)
{
	struct sha384_ctx ctx;

	sha384_init(&ctx);
	sha384_update(&ctx, PCR_SIZE, old);
	sha384_update(&ctx, len, data);
	sha384_digest(&ctx, PCR_SIZE, out);
}

/* Twice on each free PCR, with data of different sizes, formula checked. */
static const char *check_extend_free_pcrs(void)
{
	uint8_t data[200], want[PCR_SIZE], got[PCR_SIZE], now[PCR_SIZE];
	unsigned int i, round;
	const char *err;
	bool lock;

	for (i = LOCKED_PCRS; i < NSM_PCR_COUNT; i++) {
		for (round = 0; round < 2; round++) {
			size_t len = round ? sizeof(data) : i;

			memset(data, i * 2 + round, sizeof(data));
			sha384_extend(pcr[i], data, len, want);
			err = extend_pcr(i, data, len, got);
			if (err)
				return err;
			if (memcmp(got, want, PCR_SIZE))
				return fail("ExtendPCR %u: not SHA-384(old || data)",
					    i);
			err = describe_pcr(i, &lock, now);
			if (err)
				return err;
			if (memcmp(now, got, PCR_SIZE))
				return fail("DescribePCR %u: not what ExtendPCR answered",
					    i);
			memcpy(pcr[i], got, PCR_SIZE);
		}
	}
	return NULL;
}

static const char *check_extend_refused(void)
{
	uint8_t req[64], value[PCR_SIZE];
	char what[48];
	unsigned int i;
	const char *err;
	bool lock;

	for (i = 0; i <= NSM_PCR_COUNT; i++) {
		if (i >= LOCKED_PCRS && i < NSM_PCR_COUNT)
			continue;	/* the free ones: above */
		snprintf(what, sizeof(what), "ExtendPCR %u (%s)", i,
			 i < NSM_PCR_COUNT ? "locked" : "no such PCR");
		err = expect_error(req, nsm_req_extend_pcr(req, sizeof(req), i,
							   "x", 1), what);
		if (err)
			return err;
		if (i < NSM_PCR_COUNT) {
			err = describe_pcr(i, &lock, value);
			if (err)
				return err;
			if (memcmp(value, pcr[i], PCR_SIZE))
				return fail("%s changed the PCR", what);
		}
	}
	return NULL;
}

static const char *check_lock_locked_refused(void)
{
	uint8_t req[64];
	char what[32];
	unsigned int i;
	const char *err;

	for (i = 0; i < LOCKED_PCRS; i++) {
		snprintf(what, sizeof(what), "LockPCR %u (locked)", i);
		err = expect_error(req, nsm_req_u16(req, sizeof(req), "LockPCR",
						    "index", i), what);
		if (err)
			return err;
	}
	return expect_error(req, nsm_req_u16(req, sizeof(req), "LockPCR",
					     "index", NSM_PCR_COUNT),
			    "LockPCR 32 (no such PCR)");
}

/* LockPCR 16..31, then they are locked and refuse ExtendPCR. */
static const char *check_lock_free_pcrs(void)
{
	uint8_t req[64], value[PCR_SIZE];
	struct nsm_resp r;
	unsigned int i;
	const char *err;
	bool lock;

	for (i = LOCKED_PCRS; i < NSM_PCR_COUNT; i++) {
		err = expect_ok(req, nsm_req_u16(req, sizeof(req), "LockPCR",
						 "index", i),
				"LockPCR", false, &r);
		if (err)
			return fail("LockPCR %u: %s", i, err);
		err = describe_pcr(i, &lock, value);
		if (err)
			return err;
		if (!lock)
			return fail("PCR%u is not locked after LockPCR", i);
		if (memcmp(value, pcr[i], PCR_SIZE))
			return fail("LockPCR %u changed the PCR's value", i);
		err = expect_error(req, nsm_req_extend_pcr(req, sizeof(req), i,
							   "x", 1),
				   "ExtendPCR of a PCR locked by LockPCR");
		if (err)
			return err;
	}
	return NULL;
}

static const char *check_lock_pcrs(void)
{
	uint8_t req[64];
	struct nsm_resp r;
	const char *err;

	err = expect_ok(req, nsm_req_u16(req, sizeof(req), "LockPCRs", "range",
					 NSM_PCR_COUNT),
			"LockPCRs", false, &r);
	if (err)
		return fail("LockPCRs 32: %s", err);
	return expect_error(req, nsm_req_u16(req, sizeof(req), "LockPCRs",
					     "range", NSM_PCR_COUNT + 1),
			    "LockPCRs 33");
}

static const char *check_get_random(void)
{
	static uint8_t last[NSM_RESPONSE_MAX];
	size_t last_len = 0, len;
	uint8_t req[32];
	struct nsm_resp r;
	struct cb_reader v;
	const uint8_t *data;
	const char *err;
	int i;

	for (i = 0; i < RANDOM_CALLS; i++) {
		err = expect_ok(req, nsm_req_plain(req, sizeof(req), "GetRandom"),
				"GetRandom", true, &r);
		if (err)
			return fail("call %d: %s", i + 1, err);
		v = r.body;
		if (!cb_map_find(&v, "random", &v) || !cb_get_bytes(&v, &data, &len))
			return fail("call %d: no random bytes", i + 1);
		if (len < RANDOM_MIN)
			return fail("call %d: %zu bytes, fewer than the driver's hwrng reads (%d)",
				    i + 1, len, RANDOM_MIN);
		if (len == last_len && !memcmp(data, last, len))
			return fail("call %d returned what call %d did", i + 1, i);
		memcpy(last, data, len);
		last_len = len;
	}
	return NULL;
}

/* The kernel's own use of the NSM: its hwrng, which sends GetRandom. */
static const char *check_hwrng(void)
{
	char avail[256] = "";
	uint8_t buf[64];
	ssize_t n;
	int fd;

	fd = open("/sys/class/misc/hw_random/rng_available", O_RDONLY);
	if (fd < 0)
		return fail("no /sys/class/misc/hw_random/rng_available: %s",
			    strerror(errno));
	n = read(fd, avail, sizeof(avail) - 1);
	close(fd);
	if (n < 0 || !strstr(avail, "nsm-hwrng"))
		return fail("nsm-hwrng is not among the hwrngs (%s)",
			    n > 0 ? avail : "none");
	fd = open("/dev/hwrng", O_RDONLY);
	if (fd < 0)
		return fail("/dev/hwrng: %s", strerror(errno));
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0)
		return fail("reading /dev/hwrng: %s", n < 0 ? strerror(errno) : "nothing");
	return NULL;
}

/* ---- attestation documents ---------------------------------------------- */

/*
 * A DER element at *p (< end): its tag, and its contents [*c, *c + *len).
 * Moves *p past it.  Only the definite, short and long length forms.
 */
static bool der_next(const uint8_t **p, const uint8_t *end, uint8_t *tag,
		     const uint8_t **c, size_t *len)
{
	size_t n = 0, k;

	if (end - *p < 2)
		return false;
	*tag = (*p)[0];
	if ((*p)[1] < 0x80) {
		n = (*p)[1];
		*p += 2;
	} else {
		k = (*p)[1] & 0x7f;
		if (!k || k > 3 || (size_t)(end - *p) < 2 + k)
			return false;
		for (size_t i = 0; i < k; i++)
			n = n << 8 | (*p)[2 + i];
		*p += 2 + k;
	}
	if (n > (size_t)(end - *p))
		return false;
	*c = *p;
	*len = n;
	*p += n;
	return true;
}

/* The P-384 point of an X.509 certificate's subjectPublicKeyInfo. */
static const char *cert_p384_key(const uint8_t *cert, size_t cert_len,
				 struct ecc_point *pub)
{
	/* SEQUENCE { SEQUENCE { ecPublicKey, secp384r1 }, BIT STRING 00 04 } */
	static const uint8_t alg[] = {
		0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
		0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22,
	};
	const uint8_t *p = cert, *end = cert + cert_len, *c, *tbs_end;
	size_t len;
	uint8_t tag;
	int i;
	mpz_t x, y;
	bool ok;

	if (!der_next(&p, end, &tag, &c, &len) || tag != 0x30)
		return "the certificate is not a DER SEQUENCE";
	p = c;
	end = c + len;
	if (!der_next(&p, end, &tag, &c, &len) || tag != 0x30)
		return "no tbsCertificate";
	p = c;
	tbs_end = c + len;
	if (p < tbs_end && *p == 0xa0 &&	/* [0] version */
	    !der_next(&p, tbs_end, &tag, &c, &len))
		return "a bad version";
	/* serial, signature algorithm, issuer, validity, subject */
	for (i = 0; i < 5; i++)
		if (!der_next(&p, tbs_end, &tag, &c, &len))
			return "a bad tbsCertificate";
	if (!der_next(&p, tbs_end, &tag, &c, &len) || tag != 0x30)
		return "no subjectPublicKeyInfo";
	if (len != sizeof(alg) + 4 + 2 * P384_BYTES ||
	    memcmp(c, alg, sizeof(alg)) || c[sizeof(alg)] != 0x03 ||
	    c[sizeof(alg) + 1] != 2 + 2 * P384_BYTES ||
	    c[sizeof(alg) + 2] != 0 || c[sizeof(alg) + 3] != 0x04)
		return "the certificate's key is not an uncompressed P-384 key";
	c += sizeof(alg) + 4;
	mpz_init(x);
	mpz_init(y);
	mpz_import(x, P384_BYTES, 1, 1, 1, 0, c);
	mpz_import(y, P384_BYTES, 1, 1, 1, 0, c + P384_BYTES);
	ok = ecc_point_set(pub, x, y);
	mpz_clear(x);
	mpz_clear(y);
	return ok ? NULL : "the certificate's key is not on P-384";
}

/* ES384 over the COSE Sig_structure ["Signature1", protected, h'', payload]. */
static const char *check_signature(const uint8_t *prot, size_t prot_len,
				   const uint8_t *payload, size_t payload_len,
				   const uint8_t *sig, const uint8_t *cert,
				   size_t cert_len)
{
	static uint8_t tbs[NSM_RESPONSE_MAX + 64];
	uint8_t digest[PCR_SIZE];
	struct sha384_ctx ctx;
	struct dsa_signature rs;
	struct ecc_point pub;
	struct cb_writer w;
	const char *err;
	int ok;

	cb_writer_init(&w, tbs, sizeof(tbs));
	cb_put_array(&w, 4);
	cb_put_text(&w, "Signature1");
	cb_put_bytes(&w, prot, prot_len);
	cb_put_bytes(&w, "", 0);
	cb_put_bytes(&w, payload, payload_len);
	if (w.overflow)
		return "the Sig_structure does not fit";
	sha384_init(&ctx);
	sha384_update(&ctx, w.len, tbs);
	sha384_digest(&ctx, sizeof(digest), digest);

	ecc_point_init(&pub, nettle_get_secp_384r1());
	err = cert_p384_key(cert, cert_len, &pub);
	if (err) {
		ecc_point_clear(&pub);
		return err;
	}
	dsa_signature_init(&rs);
	mpz_import(rs.r, P384_BYTES, 1, 1, 1, 0, sig);
	mpz_import(rs.s, P384_BYTES, 1, 1, 1, 0, sig + P384_BYTES);
	ok = ecdsa_verify(&pub, sizeof(digest), digest, &rs);
	dsa_signature_clear(&rs);
	ecc_point_clear(&pub);
	return ok ? NULL : "the ES384 signature does not verify with the certificate's key";
}

/* A payload field that must be @want's bytes, or null when @want is absent. */
static const char *check_echoed(struct cb_reader payload, const char *key,
				const struct nsm_blob *want)
{
	struct cb_reader v;
	const uint8_t *data;
	size_t len;

	if (!cb_map_find(&payload, key, &v))
		return fail("the payload has no %s (absent ones are null)", key);
	if (!want->data)
		return cb_get_null(&v) ? NULL : fail("%s is not null", key);
	if (!cb_get_bytes(&v, &data, &len) || len != want->len ||
	    memcmp(data, want->data, len))
		return fail("%s is not what was sent (%zu bytes)", key, want->len);
	return NULL;
}

static const char *check_payload(const uint8_t *payload, size_t len,
				 const struct nsm_blob *user_data,
				 const struct nsm_blob *nonce,
				 const struct nsm_blob *public_key,
				 const uint8_t **cert, size_t *cert_len)
{
	struct cb_reader p, v;
	const char *text, *err;
	size_t n;
	uint64_t ts, count, i, index;
	const uint8_t *value;

	cb_reader_init(&p, payload, len);
	v = p;
	if (!cb_skip(&v) || !cb_at_end(&v))
		return fail("the payload is not one CBOR item");
	v = p;
	if (!cb_map_find(&v, "module_id", &v) || !cb_get_text(&v, &text, &n) ||
	    !cb_text_is(text, n, module_id))
		return fail("module_id is not DescribeNSM's \"%s\"", module_id);
	v = p;
	if (!cb_map_find(&v, "digest", &v) || !cb_get_text(&v, &text, &n) ||
	    !cb_text_is(text, n, "SHA384"))
		return fail("digest is not \"SHA384\"");
	v = p;
	/* milliseconds: after 2020-01-01, whatever the enclave's clock says */
	if (!cb_map_find(&v, "timestamp", &v) || !cb_get_uint(&v, &ts) ||
	    ts < 1577836800000ULL)
		return fail("timestamp is not milliseconds since 1970 (after 2020)");
	v = p;
	if (!cb_map_find(&v, "pcrs", &v) || !cb_get_map(&v, &count))
		return fail("no pcrs map");
	for (i = 0; count == CB_INDEFINITE ? !cb_at_break(&v) : i < count; i++) {
		if (!cb_get_uint(&v, &index) || index >= NSM_PCR_COUNT ||
		    !cb_get_bytes(&v, &value, &n) || n != PCR_SIZE)
			return fail("pcrs holds something other than PCR index: 48 bytes");
		if (pcr_known[index] && memcmp(value, pcr[index], PCR_SIZE))
			return fail("pcrs[%llu] is not what DescribePCR gave",
				    (unsigned long long)index);
	}
	if (count != CB_INDEFINITE && count < LOCKED_PCRS)
		return fail("pcrs has %llu entries, fewer than the %d locked PCRs",
			    (unsigned long long)count, LOCKED_PCRS);
	v = p;
	if (!cb_map_find(&v, "certificate", &v) || !cb_get_bytes(&v, cert, cert_len) ||
	    !*cert_len)
		return fail("no certificate");
	v = p;
	if (!cb_map_find(&v, "cabundle", &v) || !cb_get_array(&v, &count) ||
	    !count || count == CB_INDEFINITE)
		return fail("no cabundle array (root first)");
	for (i = 0; i < count; i++)
		if (!cb_get_bytes(&v, &value, &n) || !n)
			return fail("cabundle[%llu] is not a certificate's bytes",
				    (unsigned long long)i);
	err = check_echoed(p, "user_data", user_data);
	if (!err)
		err = check_echoed(p, "nonce", nonce);
	if (!err)
		err = check_echoed(p, "public_key", public_key);
	return err;
}

/* Every check of an attestation document, asked for with these fields. */
static const char *check_document(const uint8_t *doc, size_t doc_len,
				  const struct nsm_blob *user_data,
				  const struct nsm_blob *nonce,
				  const struct nsm_blob *public_key)
{
	size_t prot_len, payload_len, sig_len, cert_len;
	const uint8_t *prot, *payload, *sig, *cert;
	struct cb_reader d, h;
	struct cb_head head;
	uint64_t count;
	int64_t alg;
	const char *err;

	cb_reader_init(&d, doc, doc_len);
	if (cb_peek(&d, &head) && head.major == CB_TAG) {
		cb_get_head(&d, &head);
		if (head.value != 18)
			return fail("the document has tag %llu, not COSE_Sign1's 18",
				    (unsigned long long)head.value);
	}
	if (!cb_get_array(&d, &count) || count != 4)
		return fail("the document is not a COSE_Sign1 array of 4");
	if (!cb_get_bytes(&d, &prot, &prot_len))
		return fail("the protected header is not a byte string");
	cb_reader_init(&h, prot, prot_len);
	if (!cb_get_map(&h, &count) || count != 1 || !cb_get_int(&h, &alg) ||
	    alg != 1 || !cb_get_int(&h, &alg) || alg != COSE_ES384 ||
	    !cb_at_end(&h))
		return fail("the protected header is not {1: -35} (ES384)");
	if (!cb_get_map(&d, &count) || (count && count != CB_INDEFINITE))
		return fail("the unprotected header is not an empty map");
	if (count == CB_INDEFINITE && !cb_at_break(&d))
		return fail("the unprotected header is not an empty map");
	if (!cb_get_bytes(&d, &payload, &payload_len) ||
	    !cb_get_bytes(&d, &sig, &sig_len) || !cb_at_end(&d))
		return fail("the document's payload or signature is not a byte string");
	if (sig_len != SIG_SIZE)
		return fail("the signature has %zu bytes, not ES384's %d",
			    sig_len, SIG_SIZE);
	err = check_payload(payload, payload_len, user_data, nonce, public_key,
			    &cert, &cert_len);
	if (err)
		return err;
	err = check_signature(prot, prot_len, payload, payload_len, sig, cert,
			      cert_len);
	return err ? fail("%s", err) : NULL;
}

/* One Attestation request and every check of its document. */
static const char *attest(const struct nsm_blob *user_data,
			  const struct nsm_blob *nonce,
			  const struct nsm_blob *public_key)
{
	static uint8_t doc[NSM_RESPONSE_MAX];
	size_t doc_len = sizeof(doc);
	char msg[160];

	if (nsm_attest(nsm_fd, user_data, nonce, public_key, doc, &doc_len,
		       msg, sizeof(msg)))
		return fail("%s", msg);
	return check_document(doc, doc_len, user_data, nonce, public_key);
}

static uint8_t field[FIELD_SIZE];

static const char *check_attestation_empty(void)
{
	struct nsm_blob none = { 0 };

	return attest(&none, &none, &none);
}

static const char *check_attestation_user_data(void)
{
	struct nsm_blob ud = { field, sizeof(field) }, none = { 0 };

	return attest(&ud, &none, &none);
}

static const char *check_attestation_user_data_nonce(void)
{
	struct nsm_blob b = { field, sizeof(field) }, none = { 0 };

	return attest(&b, &b, &none);
}

static const char *check_attestation_all(void)
{
	struct nsm_blob b = { field, sizeof(field) };

	return attest(&b, &b, &b);
}

/* Present but empty fields are not absent ones: they come back empty. */
/*
 * Empty user_data and nonce are fields of no bytes, kept as such; an empty
 * public_key is no key (ATT: 1 to 1024 bytes), which the NSM refuses
 * rather than put in a document that verifiers would reject.
 */
static const char *check_attestation_empty_fields(void)
{
	struct nsm_blob empty = { "", 0 }, none = { NULL, 0 };
	uint8_t req[64];
	const char *err = attest(&empty, &empty, &none);

	if (err)
		return err;
	return expect_error(req, nsm_req_attestation(req, sizeof(req), &empty,
						     &empty, &empty),
			    "Attestation with an empty public_key");
}

/* ---- refusals ---------------------------------------------------------- */

static const char *check_request_too_large(void)
{
	static uint8_t req[NSM_REQUEST_MAX + 1];
	size_t len = sizeof(resp);
	int rc;

	/* a valid CBOR text string one byte over the limit */
	req[0] = 0x79;
	req[1] = (sizeof(req) - 3) >> 8;
	req[2] = (sizeof(req) - 3) & 0xff;
	memset(req + 3, 'a', sizeof(req) - 3);
	rc = nsm_raw(nsm_fd, req, sizeof(req), resp, &len);
	if (rc != -EMSGSIZE)
		return fail("a %zu-byte request: %s, expected EMSGSIZE",
			    sizeof(req), rc ? strerror(-rc) : "accepted");
	return NULL;
}

static const char *check_unknown_request(void)
{
	uint8_t req[32];

	return expect_error(req, nsm_req_plain(req, sizeof(req), "NoSuchRequest"),
			    "the request \"NoSuchRequest\"");
}

static const char *check_malformed_request(void)
{
	/* a map of 2 entries of which only half of one is there */
	static const uint8_t req[] = { 0xa2, 0x6b, 'A', 't', 't' };

	return expect_error(req, sizeof(req), "a truncated CBOR request");
}

static const char *check_wrong_field_type(void)
{
	uint8_t req[64];
	struct cb_writer w;

	/* DescribePCR with a text index */
	cb_writer_init(&w, req, sizeof(req));
	cb_put_map(&w, 1);
	cb_put_text(&w, "DescribePCR");
	cb_put_map(&w, 1);
	cb_put_text(&w, "index");
	cb_put_text(&w, "0");
	return expect_error(req, w.len, "DescribePCR with a text index");
}

/* ---- the runner --------------------------------------------------------- */

static const struct {
	const char *name;
	const char *(*fn)(void);
} checks[] = {
	{ "DescribeNSM: version, module_id, max_pcrs 32, locked_pcrs 0..15, SHA384",
	  check_describe_nsm },
	{ "DescribePCR 0..31: 48 bytes each, 0..15 locked, 16..31 not",
	  check_describe_pcrs },
	{ "PCR0..2 (the image) all set, or all zero in debug mode",
	  check_image_pcrs },
	{ "PCR16..31 start zero", check_free_pcrs_start_zero },
	{ "DescribePCR 32 is an Error", check_describe_pcr_out_of_range },
	{ "Attestation without user_data, nonce or public_key",
	  check_attestation_empty },
	{ "Attestation with 1024 bytes of user_data",
	  check_attestation_user_data },
	{ "Attestation with 1024 bytes of user_data and nonce",
	  check_attestation_user_data_nonce },
	{ "Attestation with 1024 bytes of user_data, nonce and public_key",
	  check_attestation_all },
	{ "Attestation with empty user_data and nonce; an empty public_key is an Error",
	  check_attestation_empty_fields },
	{ "ExtendPCR 16..31: SHA-384(old || data), as DescribePCR then says",
	  check_extend_free_pcrs },
	{ "ExtendPCR of 0..15 (locked) and 32 is an Error, PCRs unchanged",
	  check_extend_refused },
	{ "LockPCR of 0..15 (locked) and 32 is an Error",
	  check_lock_locked_refused },
	{ "LockPCR 16..31: locked, value kept, ExtendPCR then an Error",
	  check_lock_free_pcrs },
	{ "LockPCRs 32 succeeds, LockPCRs 33 is an Error", check_lock_pcrs },
	{ "Attestation after the locks: PCRs as DescribePCR says",
	  check_attestation_empty },
	{ "GetRandom 16 times: at least 24 bytes, never the same twice",
	  check_get_random },
	{ "a request over 4096 bytes: EMSGSIZE from the driver",
	  check_request_too_large },
	{ "an unknown request is an Error", check_unknown_request },
	{ "a truncated CBOR request is an Error", check_malformed_request },
	{ "a field of the wrong type is an Error", check_wrong_field_type },
};

/* The kernel's own use of the device: not through /dev/nsm. */
static const struct {
	const char *name;
	const char *(*fn)(void);
} kernel_checks[] = {
	{ "the kernel's nsm-hwrng is registered and /dev/hwrng reads",
	  check_hwrng },
};

/* Check @i of this run: the device's checks, then the kernel's. */
static const char *run_check(int i, const char **name)
{
	int n = ARRAY_SIZE(checks);

	if (i < n) {
		*name = checks[i].name;
		return checks[i].fn();
	}
	*name = kernel_checks[i - n].name;
	return kernel_checks[i - n].fn();
}

int main(int argc, char **argv)
{
	bool device_only = argc == 2 && !strcmp(argv[1], "--device-only");
	int n = ARRAY_SIZE(checks), i, failed = 0;

	if (argc > 2 || (argc == 2 && !device_only)) {
		fprintf(stderr, "usage: nsm-check [--device-only]\n");
		return 2;
	}
	if (!device_only)
		n += ARRAY_SIZE(kernel_checks);
	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(field, 0x80, sizeof(field));
	printf("TAP version 13\n1..%d\n", n);
	nsm_fd = nsm_open();
	if (nsm_fd < 0) {
		printf("not ok 1 - open %s: %s\n", NSM_DEV,
		       nsm_fd == -ENOENT ?
		       "no /dev/nsm (no NSM device in this enclave, or nsm.ko not loaded)" :
		       strerror(-nsm_fd));
		printf("Bail out! no usable %s\n", NSM_DEV);
		printf("# 0 passed, %d failed\n", n);
		return 1;
	}
	for (i = 0; i < n; i++) {
		const char *name, *err = run_check(i, &name);

		if (err) {
			printf("not ok %d - %s\n#   %s\n", i + 1, name, err);
			failed++;
		} else {
			printf("ok %d - %s\n", i + 1, name);
		}
	}
	printf("# %d passed, %d failed\n", n - failed, failed);
	return failed ? 1 : 0;
}
