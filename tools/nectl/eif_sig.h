/* SPDX-License-Identifier: GPL-2.0 */
#ifndef NECTL_EIF_SIG_H
#define NECTL_EIF_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "eif.h"
#include "json.h"

/*
 * EIF signatures, byte for byte as nitro-cli writes them (its crates
 * aws-nitro-enclaves-image-format and aws-nitro-enclaves-cose, through
 * serde_cbor).  The signature section is
 *
 *   [ {"signing_certificate": [u8, ...], "signature": [u8, ...]} ]
 *
 * where Rust's Vec<u8> becomes a CBOR array of integers, not a byte string.
 * signing_certificate holds the bytes of the PEM file given to the builder;
 * signature holds an untagged COSE_Sign1
 *
 *   [ h'{1: alg}', {}, h'payload', h'r || s' ]
 *
 * signed over the Sig_structure ["Signature1", protected, h'', payload],
 * whose payload is the PcrInfo of PCR0:
 *
 *   {"register_index": 0, "register_value": [u8 x 48]}
 *
 * The algorithm follows the key's curve: ES256, ES384 or ES512 on P-256,
 * P-384 or P-521.  PCR8 = SHA384(48 zero bytes || SHA384(DER of the
 * certificate)), of the first certificate in the PEM.
 */

#define EIF_SIG_PCR_INDEX	0	/* the one PCR that is signed today */

/* Bytes owned by whoever holds them (free()). */
struct eif_sig_bytes {
	uint8_t *data;
	size_t len;
};

/* One PcrSignature: the two byte arrays, as stored. */
struct eif_sig_entry {
	struct eif_sig_bytes pem;
	struct eif_sig_bytes cose;
	size_t nr_entries;		/* entries in the section; only the first is used */
};

/* A decoded COSE_Sign1. */
struct eif_cose {
	bool tagged;
	struct eif_sig_bytes protected_hdr;
	struct eif_sig_bytes payload;
	struct eif_sig_bytes signature;
};

/* ---- eif_sig_cbor.c: the CBOR shapes (no cryptography) */

/* Formats the reason into @err (@errlen bytes) and returns -1. */
int eif_sig_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Each returns a malloc'ed encoding, or NULL when out of memory. */
uint8_t *eif_sig_pcr_payload(unsigned int index, const uint8_t *value, size_t len,
			     size_t *out_len);
uint8_t *eif_sig_protected_hdr(int alg, size_t *out_len);
uint8_t *eif_sig_tbs(const struct eif_cose *cose, size_t *out_len);
uint8_t *eif_sig_cose_encode(const struct eif_cose *cose, size_t *out_len);
uint8_t *eif_sig_section_encode(const struct eif_sig_entry *entry, size_t *out_len);

/* 0, or -1 with a reason in err.  Release the result either way. */
int eif_sig_section_decode(const uint8_t *buf, size_t len, struct eif_sig_entry *entry,
			   char *err, size_t errlen);
int eif_sig_cose_decode(const uint8_t *buf, size_t len, struct eif_cose *cose,
			char *err, size_t errlen);
/* The protected header's alg (label 1) into *alg; false when there is none. */
bool eif_sig_protected_alg(const struct eif_sig_bytes *hdr, int64_t *alg);
void eif_sig_entry_release(struct eif_sig_entry *entry);
void eif_cose_release(struct eif_cose *cose);

/* ---- eif_sig_crypto.c: ECDSA as COSE does it, and PCR8 */

struct eif_sig_alg {
	const char *name;		/* "ES384" */
	const char *curve;		/* OpenSSL's group name */
	int cose_alg;			/* -35 */
	const EVP_MD *(*md)(void);
	size_t coord_size;		/* bytes of r and of s */
};

/* The algorithm of an EC key on a supported curve; NULL for any other key. */
const struct eif_sig_alg *eif_sig_alg_of(EVP_PKEY *key);
/* Signs tbs: a malloc'ed r || s of 2 * coord_size bytes, or NULL. */
uint8_t *eif_sig_ecdsa_sign(EVP_PKEY *key, const struct eif_sig_alg *alg,
			    const uint8_t *tbs, size_t len);
bool eif_sig_ecdsa_verify(EVP_PKEY *key, const struct eif_sig_alg *alg, const uint8_t *tbs,
			  size_t len, const struct eif_sig_bytes *sig);
bool eif_sig_cert_pcr8(X509 *cert, uint8_t pcr8[SHA384_DIGEST_LENGTH]);
/* The first certificate of a PEM buffer, or NULL. */
X509 *eif_sig_pem_cert(const struct eif_sig_bytes *pem);

/* ---- eif_sign.c: what build-eif signs with */

struct eif_signer {
	struct eif_sig_bytes pem;	/* the certificate file, stored as it is */
	X509 *cert;
	EVP_PKEY *key;
	const struct eif_sig_alg *alg;
};

/*
 * Loads the PEM certificate and private key and checks that they belong
 * together and that the key is one nitro-cli signs with.  0, or -1 with a
 * reason in err.  Release the signer either way.
 */
int eif_signer_load(const char *cert_path, const char *key_path, struct eif_signer *s,
		    char *err, size_t errlen);
void eif_signer_release(struct eif_signer *s);
/* PCR0 of what eif_write() will write for in, from the input files. */
int eif_measure_pcr0(const struct eif_build_input *in, uint8_t pcr0[SHA384_DIGEST_LENGTH],
		     char *err, size_t errlen);
/* The signature section over pcr0: malloc'ed into *out. */
int eif_sign_section(const struct eif_signer *s, const uint8_t pcr0[SHA384_DIGEST_LENGTH],
		     struct eif_sig_bytes *out, char *err, size_t errlen);

/* ---- eif_verify.c: describe-eif's and run's checks */

struct eif_sig_check {
	X509 *cert;			/* entry 0's certificate, when it could be read */
	bool decoded;			/* section and certificate read: PCR8 is known */
	bool signature_ok;		/* the COSE_Sign1 verifies with the certificate's key */
	bool pcr0_ok;			/* and signs {0, this image's PCR0} */
	int validity;			/* 0: valid at the check time; <0 not yet; >0 expired */
	char reason[384];		/* the first thing that failed */
};

/*
 * Checks the signature of info (read with measured = true) at time now,
 * and sets info's PCR8 when the certificate could be read.  Release c.
 */
void eif_sig_check(struct eif_info *info, time_t now, struct eif_sig_check *c);
/* What describe-eif shows as SignatureCheck: signature and PCR0 hold. */
bool eif_sig_verified(const struct eif_sig_check *c);
void eif_sig_check_release(struct eif_sig_check *c);
/* "the signing certificate expired at ..." for a check with validity != 0. */
void eif_sig_validity_reason(const struct eif_sig_check *c, char *err, size_t errlen);
/*
 * run's check of a signed image read unmeasured from fd: measures it,
 * then requires signature, PCR0 and a certificate valid now.  0, or -1
 * with a reason in err.
 */
int eif_sig_check_image(int fd, struct eif_info *info, char *err, size_t errlen);

/* ---- eif_sig_show.c */

/* "SigningCertificate": {IssuerName, Algorithm, NotBefore, NotAfter, Signature}. */
void eif_sig_write_certificate(struct json_writer *w, X509 *cert);

#endif
