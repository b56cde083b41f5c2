// SPDX-License-Identifier: GPL-2.0
/*
 * describe-eif's "SigningCertificate", in the form nitro-cli gives it:
 * IssuerName as an object of the issuer's attributes by OpenSSL long name,
 * in sorted order with the last of a repeated attribute kept (a Rust
 * BTreeMap); Algorithm, the signature algorithm's long name; NotBefore and
 * NotAfter as OpenSSL prints times ("Jan  2 03:04:05 2025 GMT"); Signature,
 * the certificate's signature bytes as XX:XX:...
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/objects.h>

#include "eif_sig.h"

struct name_attr {
	char key[96];
	char *value;		/* OPENSSL_malloc'ed UTF-8, or NULL */
	int pos;
};

static int by_key_then_pos(const void *a, const void *b)
{
	const struct name_attr *x = a, *y = b;
	int d = strcmp(x->key, y->key);

	return d ? d : x->pos - y->pos;
}

static void write_issuer(struct json_writer *w, X509 *cert)
{
	const X509_NAME *name = X509_get_issuer_name(cert);
	int i, n = X509_NAME_entry_count(name);
	struct name_attr *attrs = calloc(n > 0 ? n : 1, sizeof(*attrs));

	json_key(w, "IssuerName");
	json_begin_object(w);
	for (i = 0; attrs && i < n; i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
		unsigned char *utf8 = NULL;

		OBJ_obj2txt(attrs[i].key, sizeof(attrs[i].key), X509_NAME_ENTRY_get_object(e), 0);
		if (ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e)) >= 0)
			attrs[i].value = (char *)utf8;
		attrs[i].pos = i;
	}
	if (attrs)
		qsort(attrs, n, sizeof(*attrs), by_key_then_pos);
	for (i = 0; attrs && i < n; i++) {
		if (i + 1 < n && !strcmp(attrs[i].key, attrs[i + 1].key))
			continue;	/* a later value replaces this one */
		json_key(w, attrs[i].key);
		json_string(w, attrs[i].value ? attrs[i].value : "error");
	}
	json_end_object(w);
	for (i = 0; attrs && i < n; i++)
		OPENSSL_free(attrs[i].value);
	free(attrs);
}

static void write_time(struct json_writer *w, const char *key, const ASN1_TIME *t)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *text = NULL;
	long len = 0;

	if (bio && ASN1_TIME_print(bio, t))
		len = BIO_get_mem_data(bio, &text);
	json_key(w, key);
	json_string_len(w, len > 0 ? text : "", len > 0 ? (size_t)len : 0);
	BIO_free(bio);
}

static void write_signature(struct json_writer *w, X509 *cert)
{
	static const char digits[] = "0123456789ABCDEF";
	const ASN1_BIT_STRING *sig;
	const unsigned char *p;
	char *hex;
	int i, n;

	X509_get0_signature(&sig, NULL, cert);
	p = ASN1_STRING_get0_data(sig);
	n = ASN1_STRING_length(sig);
	hex = malloc(3 * (size_t)(n > 0 ? n : 1));
	for (i = 0; hex && i < n; i++) {
		hex[3 * i] = digits[p[i] >> 4];
		hex[3 * i + 1] = digits[p[i] & 15];
		hex[3 * i + 2] = i + 1 < n ? ':' : '\0';
	}
	json_key(w, "Signature");
	json_string(w, hex && n > 0 ? hex : "");
	free(hex);
}

void eif_sig_write_certificate(struct json_writer *w, X509 *cert)
{
	const X509_ALGOR *alg;
	const ASN1_OBJECT *obj;
	char name[96] = "";

	json_key(w, "SigningCertificate");
	json_begin_object(w);
	write_issuer(w, cert);
	X509_get0_signature(NULL, &alg, cert);
	X509_ALGOR_get0(&obj, NULL, NULL, alg);
	OBJ_obj2txt(name, sizeof(name), obj, 0);
	json_key(w, "Algorithm");
	json_string(w, name);
	write_time(w, "NotBefore", X509_get0_notBefore(cert));
	write_time(w, "NotAfter", X509_get0_notAfter(cert));
	write_signature(w, cert);
	json_end_object(w);
}
