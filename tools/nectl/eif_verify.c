// SPDX-License-Identifier: GPL-2.0
/*
 * The checks of a signed EIF.  describe-eif shows what nitro-cli's shows:
 * SignatureCheck is true when the COSE_Sign1 verifies with the key of the
 * certificate stored next to it and signs this image's PCR0.  run refuses
 * (E59) an image that fails that, or whose certificate is not valid now,
 * as nitro-cli's signature checker does (it checks the signature and the
 * dates; nectl also checks PCR0, which nitro-cli leaves to describe-eif).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eif_sig.h"

static void why(struct eif_sig_check *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void why(struct eif_sig_check *c, const char *fmt, ...)
{
	va_list ap;

	if (c->reason[0])
		return;		/* the first failure is the one to tell */
	va_start(ap, fmt);
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
}

static void asn1_utc(const ASN1_TIME *t, char *out, size_t len)
{
	struct tm tm;

	if (!ASN1_TIME_to_tm(t, &tm) || !strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, len, "(unreadable)");
}

/* nitro-cli's rule: not before notBefore, not after notAfter. */
static int validity_at(X509 *cert, time_t now)
{
	if (X509_cmp_time(X509_get0_notBefore(cert), &now) != -1)
		return -1;
	if (X509_cmp_time(X509_get0_notAfter(cert), &now) != 1)
		return 1;
	return 0;
}

/* The signed payload is compared as bytes with the one PCR0 gives, as nitro-cli does. */
static void check_payload(struct eif_sig_check *c, const struct eif_cose *cose,
			  const struct eif_info *info)
{
	char hex[2 * SHA384_DIGEST_LENGTH + 1];
	uint8_t *want;
	size_t len = 0;

	want = eif_sig_pcr_payload(EIF_SIG_PCR_INDEX, info->pcr0, SHA384_DIGEST_LENGTH, &len);
	c->pcr0_ok = want && len == cose->payload.len && !memcmp(want, cose->payload.data, len);
	free(want);
	if (!c->pcr0_ok) {
		eif_hex(info->pcr0, SHA384_DIGEST_LENGTH, hex);
		why(c, "the signature is valid but signs another PCR0 than this image's (%.16s...): the image changed after it was signed",
		    hex);
	}
}

static void check_cose(struct eif_sig_check *c, const struct eif_sig_bytes *bytes,
		       const struct eif_info *info)
{
	EVP_PKEY *key = X509_get0_pubkey(c->cert);
	const struct eif_sig_alg *alg = eif_sig_alg_of(key);
	struct eif_cose cose;
	uint8_t *tbs = NULL;
	size_t tbs_len = 0;
	char err[256];
	int64_t got;

	if (eif_sig_cose_decode(bytes->data, bytes->len, &cose, err, sizeof(err))) {
		why(c, "%s", err);
		goto out;
	}
	if (!alg) {
		why(c, "the certificate's key is not an EC key on P-256, P-384 or P-521");
		goto out;
	}
	if (!eif_sig_protected_alg(&cose.protected_hdr, &got)) {
		why(c, "the COSE_Sign1's protected header names no algorithm");
		goto out;
	}
	if (got != alg->cose_alg) {
		why(c, "the COSE_Sign1 is for algorithm %lld, the certificate's key for %s (%d)",
		    (long long)got, alg->name, alg->cose_alg);
		goto out;
	}
	tbs = eif_sig_tbs(&cose, &tbs_len);
	c->signature_ok = tbs && eif_sig_ecdsa_verify(key, alg, tbs, tbs_len, &cose.signature);
	if (c->signature_ok)
		check_payload(c, &cose, info);
	else
		why(c, "the %s signature does not verify with the certificate's key: the signature was changed, or made with another key",
		    alg->name);
out:
	free(tbs);
	eif_cose_release(&cose);
}

void eif_sig_check(struct eif_info *info, time_t now, struct eif_sig_check *c)
{
	struct eif_sig_entry entry;
	char err[256];

	memset(c, 0, sizeof(*c));
	if (!info->signature) {
		why(c, "the image has no signature section");
		return;
	}
	if (eif_sig_section_decode(info->signature, info->signature_len, &entry, err,
				   sizeof(err))) {
		why(c, "the signature section is malformed: %s", err);
		goto out;
	}
	c->cert = eif_sig_pem_cert(&entry.pem);
	if (!c->cert) {
		why(c, "the signing certificate in the signature section is not a PEM certificate");
		goto out;
	}
	if (!eif_sig_cert_pcr8(c->cert, info->pcr8)) {
		why(c, "cannot measure the signing certificate (PCR8)");
		goto out;
	}
	info->has_pcr8 = true;
	c->decoded = true;
	c->validity = validity_at(c->cert, now);
	check_cose(c, &entry.cose, info);
out:
	eif_sig_entry_release(&entry);
}

bool eif_sig_verified(const struct eif_sig_check *c)
{
	return c->decoded && c->signature_ok && c->pcr0_ok;
}

void eif_sig_check_release(struct eif_sig_check *c)
{
	X509_free(c->cert);
	c->cert = NULL;
}

void eif_sig_validity_reason(const struct eif_sig_check *c, char *err, size_t errlen)
{
	char when[32];

	if (c->validity > 0) {
		asn1_utc(X509_get0_notAfter(c->cert), when, sizeof(when));
		snprintf(err, errlen, "the signing certificate expired at %s", when);
	} else {
		asn1_utc(X509_get0_notBefore(c->cert), when, sizeof(when));
		snprintf(err, errlen, "the signing certificate is not valid before %s", when);
	}
}

int eif_sig_check_image(int fd, struct eif_info *info, char *err, size_t errlen)
{
	struct eif_sig_check c;
	struct eif_info m;
	int ret = -1;

	if (eif_read(fd, &m, true, err, errlen))
		return -1;
	if (m.computed_crc != info->computed_crc) {
		snprintf(err, errlen, "the image changed while it was being checked");
		eif_info_release(&m);
		return -1;
	}
	eif_sig_check(&m, time(NULL), &c);
	if (!eif_sig_verified(&c)) {
		snprintf(err, errlen, "%s", c.reason);
	} else if (c.validity) {
		eif_sig_validity_reason(&c, err, errlen);
	} else {
		info->has_pcr8 = true;
		memcpy(info->pcr8, m.pcr8, sizeof(m.pcr8));
		ret = 0;
	}
	eif_sig_check_release(&c);
	eif_info_release(&m);
	return ret;
}
