// SPDX-License-Identifier: GPL-2.0
/*
 * `nectl pcr`: the PCR that one measurement of a file, or of a signing
 * certificate (PCR8), gives: SHA-384(48 zero bytes || SHA-384(data)),
 * printed as nitro-cli's `pcr` prints it ({"PCR": ...} or {"PCR8": ...}).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "commands.h"
#include "eif.h"
#include "errors.h"
#include "json.h"

static const char pcr_help[] =
	"Usage: nectl pcr (--input FILE | --signing-certificate PEM)\n\n"
	"Prints the PCR that measuring FILE gives, SHA384(48 zero bytes || SHA384(FILE)),\n"
	"as {\"PCR\": HEX}; or, for the PEM certificate that signs an EIF, PCR8 over the\n"
	"certificate's DER as {\"PCR8\": HEX}, as nitro-cli pcr does.\n";

static int file_digest(const char *path, uint8_t digest[SHA384_DIGEST_LENGTH])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t buf[65536];
	ssize_t n = 0;
	bool ok;

	if (fd < 0) {
		EVP_MD_CTX_free(md);
		return nectl_error(E_FILE_OPERATION, "cannot open %s: %s", path, strerror(errno));
	}
	ok = md && EVP_DigestInit_ex(md, EVP_sha384(), NULL) == 1;
	while (ok && (n = read(fd, buf, sizeof(buf))) > 0)
		ok = EVP_DigestUpdate(md, buf, n) == 1;
	if (n < 0) {
		close(fd);
		EVP_MD_CTX_free(md);
		return nectl_error(E_FILE_OPERATION, "cannot read %s: %s", path, strerror(errno));
	}
	close(fd);
	ok = ok && EVP_DigestFinal_ex(md, digest, NULL) == 1;
	EVP_MD_CTX_free(md);
	return ok ? 0 : nectl_error(E_HASHER, "SHA-384 of %s failed", path);
}

static int certificate_digest(const char *path, uint8_t digest[SHA384_DIGEST_LENGTH])
{
	FILE *f = fopen(path, "re");
	unsigned char *der = NULL;
	X509 *cert;
	int len;
	bool ok;

	if (!f)
		return nectl_error(E_FILE_OPERATION, "cannot open %s: %s", path, strerror(errno));
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	/* nitro-cli reports this as a hasher error too (E57). */
	if (!cert)
		return nectl_error(E_HASHER, "%s is not a PEM certificate", path);
	/* PCR8 measures the DER the PEM carries, not the PEM text. */
	len = i2d_X509(cert, &der);
	X509_free(cert);
	ok = len > 0 && EVP_Digest(der, len, digest, NULL, EVP_sha384(), NULL) == 1;
	OPENSSL_free(der);
	return ok ? 0 : nectl_error(E_HASHER, "cannot measure the certificate of %s", path);
}

static int print_pcr(const char *key, const uint8_t digest[SHA384_DIGEST_LENGTH])
{
	uint8_t pcr[SHA384_DIGEST_LENGTH];
	char hex[2 * SHA384_DIGEST_LENGTH + 1];
	struct json_writer w;

	if (!eif_pcr_extend_from_zero(digest, pcr))
		return nectl_error(E_HASHER, "SHA-384 failed");
	eif_hex(pcr, sizeof(pcr), hex);
	json_init(&w, stdout);
	json_begin_object(&w);
	json_key(&w, key);
	json_string(&w, hex);
	json_end_object(&w);
	json_finish(&w);
	return 0;
}

int cmd_pcr(int argc, char **argv)
{
	static const struct option options[] = {
		{ "input", required_argument, NULL, 'i' },
		{ "signing-certificate", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *input = NULL, *cert = NULL;
	uint8_t digest[SHA384_DIGEST_LENGTH];
	int opt, code;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
		if (opt == 'i') {
			input = optarg;
		} else if (opt == 's') {
			cert = optarg;
		} else if (opt == 'h') {
			fputs(pcr_help, stdout);
			return 0;
		} else {
			fputs(pcr_help, stderr);
			return nectl_error(E_INVALID_ARG, "unknown option or missing value: '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return nectl_error(E_INVALID_ARG, "unexpected argument '%s'", argv[optind]);
	if (input && cert)
		return nectl_error(E_CONFLICTING_ARGS, "give --input or --signing-certificate, not both");
	if (!input && !cert)
		return nectl_error(E_MISSING_ARG, "give --input FILE or --signing-certificate PEM");
	code = input ? file_digest(input, digest) : certificate_digest(cert, digest);
	return code ? code : print_pcr(input ? "PCR" : "PCR8", digest);
}
