// SPDX-License-Identifier: GPL-2.0
/*
 * Verification of NSM attestation documents with OpenSSL, step by step in
 * the order of shared/spec/attestation.md section 6: the document (cose.c),
 * then the certificate chain to the pinned root at the check time, each
 * certificate's validity and usage, the chain's signatures, the document's
 * ES384 signature and the caller's expected PCRs, nonce and user data.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/x509v3.h>

#include "attest.h"
#include "eif.h"
#include "errors.h"

struct att_run {
	const struct att_options *o;
	const struct att_doc *doc;
	struct att_result *res;
};

static const struct {
	const char *name;
	int error;
} steps[ATT_NR_STEPS] = {
	[ATT_STEP_COSE] = { "cose", E_ATTESTATION_MALFORMED },
	[ATT_STEP_PAYLOAD] = { "payload", E_ATTESTATION_MALFORMED },
	[ATT_STEP_CHAIN] = { "chain", E_ATTESTATION_CHAIN },
	[ATT_STEP_VALIDITY] = { "validity", E_ATTESTATION_VALIDITY },
	[ATT_STEP_USAGE] = { "usage", E_ATTESTATION_USAGE },
	[ATT_STEP_CHAIN_SIGNATURES] = { "chain-signatures", E_ATTESTATION_CHAIN },
	[ATT_STEP_SIGNATURE] = { "signature", E_ATTESTATION_SIGNATURE },
	[ATT_STEP_PCRS] = { "pcrs", E_ATTESTATION_PCR },
	[ATT_STEP_NONCE] = { "nonce", E_ATTESTATION_NONCE },
	[ATT_STEP_USER_DATA] = { "user-data", E_ATTESTATION_USER_DATA },
};

const char *att_step_name(enum att_step step)
{
	return steps[step].name;
}

int att_step_error(enum att_step step)
{
	return steps[step].error;
}

static bool why(struct att_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records the reason of the running step's failure; returns false. */
static bool why(struct att_run *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->res->reason, sizeof(r->res->reason), fmt, ap);
	va_end(ap);
	return false;
}

void att_chain_position(const struct att_result *res, size_t i, char *out, size_t len)
{
	if (i == 0)
		snprintf(out, len, "certificate (leaf)");
	else if (i + 1 == res->chain_len)
		snprintf(out, len, "pinned root");
	else
		snprintf(out, len, "cabundle[%zu]", res->chain_len - 1 - i);
}

/* "cabundle[2] (CN=...)" for messages. */
static const char *describe(const struct att_result *res, size_t i, char *out, size_t len)
{
	char pos[32], name[256] = "?";
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	att_chain_position(res, i, pos, sizeof(pos));
	if (b && res->chain[i] &&
	    X509_NAME_print_ex(b, X509_get_subject_name(res->chain[i]), 0, XN_FLAG_RFC2253) >= 0) {
		n = BIO_read(b, name, sizeof(name) - 1);
		name[n > 0 ? n : 0] = '\0';
	}
	BIO_free(b);
	snprintf(out, len, "%s (%s)", pos, name);
	return out;
}

static void utc(time_t t, char *out, size_t len)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, len, "%lld s", (long long)t);
}

/* ---------------------------------------------------------- step 3 */

static X509 *parse_der(const struct att_bytes *b)
{
	const unsigned char *p = b->data;
	X509 *c = d2i_X509(NULL, &p, (long)b->len);

	/* A certificate with bytes after its DER is not the signed one. */
	if (c && p != b->data + b->len) {
		X509_free(c);
		return NULL;
	}
	return c;
}

/*
 * The chain is positional (spec step 3): the leaf, then the bundle from
 * its end to entry 1, then the pinned root in place of cabundle[0], which
 * is never trusted.  Each certificate must name the next one as issuer.
 */
static bool step_chain(struct att_run *r)
{
	const struct att_doc *d = r->doc;
	struct att_result *res = r->res;
	char a[320], b[320];
	size_t i;

	res->chain_len = d->nr_cabundle + 1;
	res->chain[0] = parse_der(&d->certificate);
	for (i = 1; i + 1 < res->chain_len; i++)
		res->chain[i] = parse_der(&d->cabundle[d->nr_cabundle - i]);
	res->chain[i] = X509_dup(r->o->root);
	for (i = 0; i < res->chain_len; i++)
		if (!res->chain[i])
			return why(r, "%s is not a DER X.509 certificate", describe(res, i, a, sizeof(a)));
	for (i = 0; i + 1 < res->chain_len; i++)
		if (X509_NAME_cmp(X509_get_issuer_name(res->chain[i]),
				  X509_get_subject_name(res->chain[i + 1])))
			return why(r, "%s is not issued by the next certificate, %s",
				   describe(res, i, a, sizeof(a)), describe(res, i + 1, b, sizeof(b)));
	return true;
}

/* ---------------------------------------------------------- step 4 */

static void asn1_utc(const ASN1_TIME *t, char *out, size_t len)
{
	struct tm tm;

	if (!ASN1_TIME_to_tm(t, &tm) || !strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, len, "(unreadable)");
}

static bool step_validity(struct att_run *r)
{
	struct att_result *res = r->res;
	char pos[320], when[32], at[32];
	time_t t = res->check_time;
	size_t i;

	utc(t, at, sizeof(at));
	for (i = 0; i < res->chain_len; i++) {
		const ASN1_TIME *nb = X509_get0_notBefore(res->chain[i]);
		const ASN1_TIME *na = X509_get0_notAfter(res->chain[i]);
		/* -1: earlier than or equal to t, 1: later, 0: unreadable. */
		int before = X509_cmp_time(nb, &t), after = X509_cmp_time(na, &t);

		describe(res, i, pos, sizeof(pos));
		if (!before || !after)
			return why(r, "%s has an unreadable validity period", pos);
		if (before != -1) {
			asn1_utc(nb, when, sizeof(when));
			return why(r, "%s is not valid before %s (check time %s)", pos, when, at);
		}
		if (after != 1) {
			asn1_utc(na, when, sizeof(when));
			return why(r, "%s expired at %s (check time %s; --at sets another)", pos, when,
				   at);
		}
	}
	return true;
}

/* ---------------------------------------------------------- step 5 */

/* The leaf signs documents: digitalSignature, not a CA, no path length. */
static bool leaf_usage(struct att_run *r)
{
	X509 *c = r->res->chain[0];
	uint32_t flags = X509_get_extension_flags(c);
	char pos[320];

	describe(r->res, 0, pos, sizeof(pos));
	if (flags & EXFLAG_CA)
		return why(r, "%s is a CA certificate", pos);
	if (X509_get_pathlen(c) != -1)
		return why(r, "%s has a path length constraint", pos);
	if (!(flags & EXFLAG_KUSAGE) || !(X509_get_key_usage(c) & KU_DIGITAL_SIGNATURE))
		return why(r, "%s has no key usage digitalSignature", pos);
	return true;
}

/* A CA at chain index i has i - 1 CAs below it (the leaf is not one). */
static bool ca_usage(struct att_run *r, size_t i)
{
	X509 *c = r->res->chain[i];
	uint32_t flags = X509_get_extension_flags(c);
	long pathlen = X509_get_pathlen(c);
	char pos[320];

	describe(r->res, i, pos, sizeof(pos));
	if (!(flags & EXFLAG_BCONS) || !(flags & EXFLAG_CA))
		return why(r, "%s is not a CA (basic constraints CA:TRUE missing)", pos);
	if (!(flags & EXFLAG_KUSAGE) || !(X509_get_key_usage(c) & KU_KEY_CERT_SIGN))
		return why(r, "%s has no key usage keyCertSign", pos);
	if (pathlen != -1 && (size_t)pathlen < i - 1)
		return why(r, "%s allows %ld CA certificates below it, the chain has %zu", pos,
			   pathlen, i - 1);
	return true;
}

static bool step_usage(struct att_run *r)
{
	char pos[320];
	size_t i;

	for (i = 0; i < r->res->chain_len; i++)
		if (X509_get_extension_flags(r->res->chain[i]) & EXFLAG_INVALID)
			return why(r, "%s has malformed extensions",
				   describe(r->res, i, pos, sizeof(pos)));
	if (!leaf_usage(r))
		return false;
	for (i = 1; i < r->res->chain_len; i++)
		if (!ca_usage(r, i))
			return false;
	return true;
}

/* ---------------------------------------------------------- step 6 */

static bool same_chain(struct att_run *r, STACK_OF(X509) *built)
{
	size_t i;

	if ((size_t)sk_X509_num(built) != r->res->chain_len)
		return false;
	for (i = 0; i < r->res->chain_len; i++)
		if (X509_cmp(sk_X509_value(built, i), r->res->chain[i]))
			return false;
	return true;
}

/*
 * OpenSSL's path validation: every signature (the root's own included),
 * validity, constraints and critical extensions, without CRLs (ATT 3.2.4).
 * It may only find the positional chain of step 3.
 */
static bool step_chain_signatures(struct att_run *r)
{
	struct att_result *res = r->res;
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	bool ok = false;
	size_t i;
	int e;

	if (!untrusted || !store || !ctx || !X509_STORE_add_cert(store, res->chain[res->chain_len - 1]))
		goto out;
	for (i = 1; i + 1 < res->chain_len; i++)
		if (!sk_X509_push(untrusted, res->chain[i]))
			goto out;
	if (!X509_STORE_CTX_init(ctx, store, res->chain[0], untrusted))
		goto out;
	X509_STORE_CTX_set_time(ctx, 0, res->check_time);
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_CHECK_SS_SIGNATURE);
	if (X509_verify_cert(ctx) != 1) {
		char pos[320];

		e = X509_STORE_CTX_get_error_depth(ctx);
		if (e < 0 || (size_t)e >= res->chain_len)
			e = 0;
		why(r, "%s: %s", describe(res, e, pos, sizeof(pos)),
		    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto done;
	}
	ok = same_chain(r, X509_STORE_CTX_get0_chain(ctx));
	if (!ok)
		why(r, "OpenSSL validated another path than the document's chain");
	goto done;
out:
	why(r, "out of memory");
done:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_free(untrusted);
	return ok;
}

/* ---------------------------------------------------------- step 7 */

/* COSE's raw r||s as the DER ECDSA-Sig-Value OpenSSL verifies. */
static unsigned char *es384_der(const struct att_bytes *sig, int *len)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *br = BN_bin2bn(sig->data, COSE_ES384_SIG_SIZE / 2, NULL);
	BIGNUM *bs = BN_bin2bn(sig->data + COSE_ES384_SIG_SIZE / 2, COSE_ES384_SIG_SIZE / 2, NULL);
	unsigned char *der = NULL;

	if (!s || !br || !bs || !ECDSA_SIG_set0(s, br, bs)) {
		BN_free(br);
		BN_free(bs);
		ECDSA_SIG_free(s);
		return NULL;
	}
	*len = i2d_ECDSA_SIG(s, &der);
	ECDSA_SIG_free(s);
	return *len > 0 ? der : NULL;
}

static bool leaf_is_p384(EVP_PKEY *key)
{
	char group[64];
	size_t n;

	return key && EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
	       EVP_PKEY_get_group_name(key, group, sizeof(group), &n) == 1 &&
	       !strcmp(group, SN_secp384r1);
}

static bool step_signature(struct att_run *r)
{
	EVP_PKEY *key = X509_get0_pubkey(r->res->chain[0]);
	EVP_MD_CTX *md = NULL;
	unsigned char *der = NULL;
	uint8_t *tbs = NULL;
	size_t tbs_len = 0;
	int der_len = 0, v = 0;

	if (!leaf_is_p384(key))
		return why(r, "the leaf's key is not an EC P-384 key, which ES384 needs");
	tbs = cose_sig_structure(r->doc, &tbs_len);
	der = es384_der(&r->doc->signature, &der_len);
	md = EVP_MD_CTX_new();
	if (tbs && der && md && EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, key) == 1)
		v = EVP_DigestVerify(md, der, der_len, tbs, tbs_len);
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	free(tbs);
	if (v != 1)
		return why(r, "the ES384 signature over the COSE Sig_structure does not verify with the leaf's key");
	return true;
}

/* ---------------------------------------------------------- step 8 */

static bool same_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && (!alen || !memcmp(a, b, alen));
}

static bool step_pcrs(struct att_run *r)
{
	const struct att_expect *e = r->o->expect;
	char got[2 * ATT_MAX_PCR_SIZE + 1], want[2 * ATT_MAX_PCR_SIZE + 1];
	int i;

	for (i = 0; i < ATT_MAX_PCRS; i++) {
		if (!e->pcr_wanted[i])
			continue;
		if (!r->doc->pcr_present[i])
			return why(r, "the document has no PCR%d", i);
		if (same_bytes(r->doc->pcrs[i].data, r->doc->pcrs[i].len, e->pcr[i], e->pcr_len[i]))
			continue;
		eif_hex(r->doc->pcrs[i].data, r->doc->pcrs[i].len, got);
		eif_hex(e->pcr[i], e->pcr_len[i], want);
		return why(r, "PCR%d is %s, expected %s", i, got, want);
	}
	return true;
}

static bool check_field(struct att_run *r, const char *name, const struct att_optional *got,
			const uint8_t *want, size_t want_len)
{
	if (!got->present)
		return why(r, "the document's %s is null, expected %zu bytes", name, want_len);
	if (!same_bytes(got->value.data, got->value.len, want, want_len))
		return why(r, "the document's %s (%zu bytes) differs from the expected one (%zu bytes)",
			   name, got->value.len, want_len);
	return true;
}

static bool step_nonce(struct att_run *r)
{
	const struct att_expect *e = r->o->expect;

	return check_field(r, "nonce", &r->doc->nonce, e->nonce, e->nonce_len);
}

static bool step_user_data(struct att_run *r)
{
	const struct att_expect *e = r->o->expect;

	return check_field(r, "user_data", &r->doc->user_data, e->user_data, e->user_data_len);
}

static bool requested(const struct att_expect *e, enum att_step step)
{
	int i;

	switch (step) {
	case ATT_STEP_PCRS:
		for (i = 0; i < ATT_MAX_PCRS; i++)
			if (e->pcr_wanted[i])
				return true;
		return false;
	case ATT_STEP_NONCE:
		return e->nonce_wanted;
	case ATT_STEP_USER_DATA:
		return e->user_data_wanted;
	default:
		return true;
	}
}

/* ---------------------------------------------------------- the run */

static bool (*const checks[ATT_NR_STEPS])(struct att_run *r) = {
	[ATT_STEP_CHAIN] = step_chain,
	[ATT_STEP_VALIDITY] = step_validity,
	[ATT_STEP_USAGE] = step_usage,
	[ATT_STEP_CHAIN_SIGNATURES] = step_chain_signatures,
	[ATT_STEP_SIGNATURE] = step_signature,
	[ATT_STEP_PCRS] = step_pcrs,
	[ATT_STEP_NONCE] = step_nonce,
	[ATT_STEP_USER_DATA] = step_user_data,
};

static bool fail_step(struct att_result *res, enum att_step step)
{
	res->outcome[step] = ATT_FAILED;
	res->failed_step = step;
	return false;
}

/* Steps 1 and 2 are one decoding pass; the failure says which one broke. */
static bool decode(const uint8_t *buf, size_t len, struct att_doc *doc, struct att_result *res)
{
	switch (cose_decode(buf, len, doc, res->reason, sizeof(res->reason))) {
	case COSE_OK:
		res->outcome[ATT_STEP_COSE] = ATT_PASSED;
		res->outcome[ATT_STEP_PAYLOAD] = ATT_PASSED;
		return true;
	case COSE_BAD_ENVELOPE:
		return fail_step(res, ATT_STEP_COSE);
	default:
		res->outcome[ATT_STEP_COSE] = ATT_PASSED;
		return fail_step(res, ATT_STEP_PAYLOAD);
	}
}

bool att_verify(const uint8_t *buf, size_t len, const struct att_options *o,
		struct att_doc *doc, struct att_result *res)
{
	struct att_run r = { o, doc, res };
	int step;

	memset(res, 0, sizeof(*res));
	res->failed_step = -1;
	res->check_time = o->at;
	res->check_time_known = !o->at_document;
	if (!decode(buf, len, doc, res))
		return false;
	if (o->at_document)
		res->check_time = (time_t)(doc->timestamp_ms / 1000);
	res->check_time_known = true;
	for (step = ATT_STEP_CHAIN; step < ATT_NR_STEPS; step++) {
		if (!requested(o->expect, step)) {
			res->outcome[step] = ATT_NOT_REQUESTED;
			continue;
		}
		if (!checks[step](&r))
			return fail_step(res, step);
		res->outcome[step] = ATT_PASSED;
	}
	return true;
}

void att_result_release(struct att_result *res)
{
	size_t i;

	for (i = 0; i < res->chain_len; i++)
		X509_free(res->chain[i]);
	res->chain_len = 0;
}
