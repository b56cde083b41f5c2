// SPDX-License-Identifier: GPL-2.0
/*
 * Signing at build-eif time: the certificate and key are checked before
 * anything is written, PCR0 is measured from the input files, and the
 * signature section over it is made as nitro-cli makes it (eif_sig.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "eif_sig.h"

/* Far above one certificate; the section it goes into has a 64 KiB limit. */
#define MAX_PEM_FILE	(16u << 10)
#define IO_CHUNK	(1u << 20)

static int read_pem_file(const char *what, const char *path, struct eif_sig_bytes *out,
			 char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return eif_sig_fail(err, errlen, "cannot open the %s %s: %s", what, path, strerror(errno));
	out->data = malloc(MAX_PEM_FILE + 1);
	n = out->data ? fread(out->data, 1, MAX_PEM_FILE + 1, f) : 0;
	fclose(f);
	if (!out->data)
		return eif_sig_fail(err, errlen, "out of memory");
	if (n > MAX_PEM_FILE)
		return eif_sig_fail(err, errlen, "the %s %s is larger than %u bytes: not one PEM %s",
			    what, path, MAX_PEM_FILE, what);
	out->len = n;
	return 0;
}

/* A passphrase would be asked on the terminal: refuse instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

static int load_key(const char *path, EVP_PKEY **key, char *err, size_t errlen)
{
	struct eif_sig_bytes text = { 0 };
	BIO *bio;
	int ret = 0;

	if (read_pem_file("private key", path, &text, err, errlen)) {
		free(text.data);
		return -1;
	}
	bio = BIO_new_mem_buf(text.data, (int)text.len);
	*key = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
	BIO_free(bio);
	if (!*key && memmem(text.data, text.len, "ENCRYPTED", 9))
		ret = eif_sig_fail(err, errlen, "the private key %s is encrypted: nectl asks no passphrase, give it an unencrypted key (openssl pkey -in %s -out KEY)",
			   path, path);
	else if (!*key)
		ret = eif_sig_fail(err, errlen, "%s is not a PEM private key", path);
	OPENSSL_cleanse(text.data, text.len);
	free(text.data);
	return ret;
}

static int check_key(const struct eif_signer *s, const char *key_path, char *err,
		     size_t errlen)
{
	char group[64] = "";
	size_t n;

	if (!s->alg) {
		EVP_PKEY_get_group_name(s->key, group, sizeof(group), &n);
		return eif_sig_fail(err, errlen, "the private key %s is %s%s%s: EIFs are signed with EC keys on P-256, P-384 or P-521 (ES256, ES384, ES512), as nitro-cli does",
			    key_path, EVP_PKEY_get0_type_name(s->key) ?: "of an unknown type",
			    group[0] ? " on " : "", group);
	}
	/* nitro-cli signs with any key; a mismatch would only show at run (E59). */
	if (EVP_PKEY_eq(X509_get0_pubkey(s->cert), s->key) != 1)
		return eif_sig_fail(err, errlen, "the private key %s does not belong to the certificate (their public keys differ)",
			    key_path);
	return 0;
}

int eif_signer_load(const char *cert_path, const char *key_path, struct eif_signer *s,
		    char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	if (read_pem_file("certificate", cert_path, &s->pem, err, errlen))
		return -1;
	s->cert = eif_sig_pem_cert(&s->pem);
	if (!s->cert)
		return eif_sig_fail(err, errlen, "%s is not a PEM certificate", cert_path);
	if (load_key(key_path, &s->key, err, errlen))
		return -1;
	s->alg = eif_sig_alg_of(s->key);
	return check_key(s, key_path, err, errlen);
}

void eif_signer_release(struct eif_signer *s)
{
	free(s->pem.data);
	X509_free(s->cert);
	EVP_PKEY_free(s->key);
	memset(s, 0, sizeof(*s));
}

static int hash_file(EVP_MD_CTX *md, const char *path, uint8_t *buf, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return eif_sig_fail(err, errlen, "cannot open %s: %s", path, strerror(errno));
	while ((n = read(fd, buf, IO_CHUNK)) > 0)
		if (EVP_DigestUpdate(md, buf, n) != 1)
			break;
	close(fd);
	if (n)
		return eif_sig_fail(err, errlen, "cannot read %s: %s", path,
			    n < 0 ? strerror(errno) : "SHA-384 failed");
	return 0;
}

/*
 * PCR0 is the data of kernel, cmdline and ramdisks, in that order.  The
 * files are read twice (here and by eif_write()); build-eif checks the
 * written image against the signature, so a file that changed in between
 * is caught.
 */
int eif_measure_pcr0(const struct eif_build_input *in, uint8_t pcr0[SHA384_DIGEST_LENGTH],
		     char *err, size_t errlen)
{
	uint8_t digest[SHA384_DIGEST_LENGTH], *buf = malloc(IO_CHUNK);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int i;
	int ret = -1;

	if (!buf || !md || EVP_DigestInit_ex(md, EVP_sha384(), NULL) != 1) {
		eif_sig_fail(err, errlen, "out of memory");
		goto out;
	}
	if (hash_file(md, in->kernel_path, buf, err, errlen))
		goto out;
	if (EVP_DigestUpdate(md, in->cmdline, strlen(in->cmdline)) != 1) {
		eif_sig_fail(err, errlen, "SHA-384 failed");
		goto out;
	}
	for (i = 0; i < in->nr_ramdisks; i++)
		if (hash_file(md, in->ramdisk_paths[i], buf, err, errlen))
			goto out;
	if (EVP_DigestFinal_ex(md, digest, NULL) != 1 ||
	    !eif_pcr_extend_from_zero(digest, pcr0)) {
		eif_sig_fail(err, errlen, "SHA-384 failed");
		goto out;
	}
	ret = 0;
out:
	EVP_MD_CTX_free(md);
	free(buf);
	return ret;
}

/* The COSE_Sign1 over PCR0's PcrInfo, encoded. */
static int sign_pcr0(const struct eif_signer *s, const uint8_t pcr0[SHA384_DIGEST_LENGTH],
		     struct eif_sig_bytes *out)
{
	struct eif_cose cose = { 0 };
	uint8_t *tbs = NULL;
	size_t tbs_len = 0;

	cose.payload.data = eif_sig_pcr_payload(EIF_SIG_PCR_INDEX, pcr0, SHA384_DIGEST_LENGTH,
						&cose.payload.len);
	cose.protected_hdr.data = eif_sig_protected_hdr(s->alg->cose_alg,
							&cose.protected_hdr.len);
	if (cose.payload.data && cose.protected_hdr.data)
		tbs = eif_sig_tbs(&cose, &tbs_len);
	if (tbs)
		cose.signature.data = eif_sig_ecdsa_sign(s->key, s->alg, tbs, tbs_len);
	cose.signature.len = 2 * s->alg->coord_size;
	out->data = cose.signature.data ? eif_sig_cose_encode(&cose, &out->len) : NULL;
	free(tbs);
	eif_cose_release(&cose);
	return out->data ? 0 : -1;
}

int eif_sign_section(const struct eif_signer *s, const uint8_t pcr0[SHA384_DIGEST_LENGTH],
		     struct eif_sig_bytes *out, char *err, size_t errlen)
{
	struct eif_sig_entry entry = { 0 };

	out->data = NULL;
	if (sign_pcr0(s, pcr0, &entry.cose))
		return eif_sig_fail(err, errlen, "%s signing of PCR0 failed", s->alg->name);
	entry.pem = s->pem;
	out->data = eif_sig_section_encode(&entry, &out->len);
	free(entry.cose.data);
	if (!out->data)
		return eif_sig_fail(err, errlen, "out of memory");
	if (out->len > EIF_MAX_SIGNATURE_SIZE)
		return eif_sig_fail(err, errlen, "the signature section would be %zu bytes, over the %u that readers take: the certificate file is too large",
			    out->len, EIF_MAX_SIGNATURE_SIZE);
	return 0;
}
