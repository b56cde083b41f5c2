// SPDX-License-Identifier: GPL-2.0
/*
 * The cryptography of EIF signatures, with OpenSSL: ECDSA with COSE's raw
 * r || s signatures, the algorithm that the key's curve implies (what
 * aws-nitro-enclaves-cose does), and PCR8 of a certificate.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>

#include "eif_sig.h"

/* The curves nitro-cli's signer accepts, each with its RFC 8152 algorithm. */
static const struct eif_sig_alg algs[] = {
	{ "ES256", SN_X9_62_prime256v1, -7, EVP_sha256, 32 },
	{ "ES384", SN_secp384r1, -35, EVP_sha384, 48 },
	{ "ES512", SN_secp521r1, -36, EVP_sha512, 66 },
};

const struct eif_sig_alg *eif_sig_alg_of(EVP_PKEY *key)
{
	char group[64];
	size_t n, i;

	if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
	    EVP_PKEY_get_group_name(key, group, sizeof(group), &n) != 1)
		return NULL;
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (!strcmp(group, algs[i].curve))
			return &algs[i];
	return NULL;
}

/* OpenSSL's DER ECDSA-Sig-Value to COSE's fixed-size r || s. */
static uint8_t *der_to_raw(const unsigned char *der, size_t der_len, size_t coord)
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	uint8_t *raw = malloc(2 * coord);
	const BIGNUM *r, *s;

	if (!sig || !raw) {
		ECDSA_SIG_free(sig);
		free(raw);
		return NULL;
	}
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, raw, (int)coord) < 0 || BN_bn2binpad(s, raw + coord, (int)coord) < 0) {
		free(raw);
		raw = NULL;
	}
	ECDSA_SIG_free(sig);
	return raw;
}

static unsigned char *raw_to_der(const struct eif_sig_bytes *raw, size_t coord, int *der_len)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw->data, (int)coord, NULL);
	BIGNUM *s = BN_bin2bn(raw->data + coord, (int)coord, NULL);
	unsigned char *der = NULL;

	if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(sig);
		return NULL;
	}
	*der_len = i2d_ECDSA_SIG(sig, &der);
	ECDSA_SIG_free(sig);
	return *der_len > 0 ? der : NULL;
}

uint8_t *eif_sig_ecdsa_sign(EVP_PKEY *key, const struct eif_sig_alg *alg,
			    const uint8_t *tbs, size_t len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *der = NULL;
	size_t der_len = 0;
	uint8_t *raw = NULL;

	/* The first call gives the DER's largest size, the second the signature. */
	if (md && EVP_DigestSignInit(md, NULL, alg->md(), NULL, key) == 1 &&
	    EVP_DigestSign(md, NULL, &der_len, tbs, len) == 1)
		der = OPENSSL_malloc(der_len);
	if (der && EVP_DigestSign(md, der, &der_len, tbs, len) == 1)
		raw = der_to_raw(der, der_len, alg->coord_size);
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	return raw;
}

bool eif_sig_ecdsa_verify(EVP_PKEY *key, const struct eif_sig_alg *alg, const uint8_t *tbs,
			  size_t len, const struct eif_sig_bytes *sig)
{
	EVP_MD_CTX *md;
	unsigned char *der;
	int der_len = 0, v = 0;

	if (sig->len != 2 * alg->coord_size)
		return false;
	der = raw_to_der(sig, alg->coord_size, &der_len);
	md = EVP_MD_CTX_new();
	if (der && md && EVP_DigestVerifyInit(md, NULL, alg->md(), NULL, key) == 1)
		v = EVP_DigestVerify(md, der, der_len, tbs, len);
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	return v == 1;
}

/* PCR8 measures the DER that the PEM carries, not the PEM text. */
bool eif_sig_cert_pcr8(X509 *cert, uint8_t pcr8[SHA384_DIGEST_LENGTH])
{
	uint8_t digest[SHA384_DIGEST_LENGTH];
	unsigned char *der = NULL;
	int len = i2d_X509(cert, &der);
	bool ok;

	ok = len > 0 && EVP_Digest(der, len, digest, NULL, EVP_sha384(), NULL) == 1;
	OPENSSL_free(der);
	return ok && eif_pcr_extend_from_zero(digest, pcr8);
}

X509 *eif_sig_pem_cert(const struct eif_sig_bytes *pem)
{
	BIO *bio;
	X509 *cert;

	if (pem->len > INT32_MAX)
		return NULL;
	bio = BIO_new_mem_buf(pem->data, (int)pem->len);
	cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	return cert;
}
