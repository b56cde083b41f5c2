// SPDX-License-Identifier: GPL-2.0
/*
 * nsm-ca-test VECTORS CA OTHER OUT: host unit tests of ne-nsm-ca.c (TAP,
 * one line per check).  tools/qemu/tests/nsm-ca/run makes the two CAs and
 * runs this, also built with ASan and UBSan.
 *
 *   VECTORS  shared/attestation-vectors: real documents of real enclaves
 *   CA       the private directory of a CA made by ne-attest-ca
 *   OTHER    the private directory of another installation's CA
 *   OUT      where the leaf, its cabundle and a signed document go, for
 *            the run script's openssl verify and nectl verify-attestation
 *
 * The local chain is compared, level by level and field by field, with
 * AWS's chains in two real documents (2025-01 eu-central-1, 2025-12
 * us-east-1): the same key type, signature algorithm, basic constraints
 * and path length, key usage, validity length, subject attributes (types
 * and order), extensions (order and criticality; AWS's CRL distribution
 * points excepted), serial length, issuer and key identifier links.
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cbor.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "ne-nsm-ca.h"

#define LEVELS		NE_NSM_CA_LEVELS	/* with the leaf */
#define LEAF		NE_NSM_CA_LEAF

static const char *const level_name[LEVELS] = {
	"root", "regional", "zonal", "instance", "leaf"
};

static const char *const vectors[] = {
	"yawn-nitro-attest_2025-01-06_eu-central-1.cose",
	"dstack_2025-12-25_us-east-1.cose",
};

static int tests, failed;

static bool __attribute__((format(printf, 2, 3)))
ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", cond ? "" : "not ", ++tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!cond)
		failed++;
	fflush(stdout);
	return cond;
}

static void __attribute__((format(printf, 1, 2))) note(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
	if (n > 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc(n);
		if (buf && fread(buf, 1, n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = n;
	}
	fclose(f);
	return buf;
}

static X509 *x509_of(const unsigned char *der, size_t len)
{
	return d2i_X509(NULL, &der, len);
}

/* One chain, root first, the leaf last, and what its document says */
struct chain {
	X509 *cert[LEVELS];
	char module_id[128];
	time_t timestamp;		/* seconds */
	bool aws;
};

static void free_chain(struct chain *c)
{
	int i;

	for (i = 0; i < LEVELS; i++)
		X509_free(c->cert[i]);
	memset(c, 0, sizeof(*c));
}

/* The value of @key in the CBOR map @map, or NULL */
static cbor_item_t *map_get(cbor_item_t *map, const char *key)
{
	struct cbor_pair *p = cbor_map_handle(map);
	size_t i, n = cbor_map_size(map), len = strlen(key);

	for (i = 0; i < n; i++)
		if (cbor_isa_string(p[i].key) &&
		    cbor_string_length(p[i].key) == len &&
		    !memcmp(cbor_string_handle(p[i].key), key, len))
			return p[i].value;
	return NULL;
}

static bool chain_from_payload(cbor_item_t *payload, struct chain *c)
{
	cbor_item_t *cert = map_get(payload, "certificate");
	cbor_item_t *bundle = map_get(payload, "cabundle");
	cbor_item_t *mid = map_get(payload, "module_id");
	cbor_item_t *ts = map_get(payload, "timestamp");
	size_t i;

	if (!cert || !bundle || !mid || !ts || !cbor_isa_array(bundle) ||
	    cbor_array_size(bundle) != NE_NSM_CA_BUNDLE_LEN ||
	    cbor_string_length(mid) >= sizeof(c->module_id))
		return false;
	for (i = 0; i < NE_NSM_CA_BUNDLE_LEN; i++) {
		cbor_item_t *b = cbor_array_handle(bundle)[i];

		c->cert[i] = x509_of(cbor_bytestring_handle(b),
				     cbor_bytestring_length(b));
	}
	c->cert[LEAF] = x509_of(cbor_bytestring_handle(cert),
				cbor_bytestring_length(cert));
	memcpy(c->module_id, cbor_string_handle(mid), cbor_string_length(mid));
	c->timestamp = cbor_get_int(ts) / 1000;
	for (i = 0; i < LEVELS; i++)
		if (!c->cert[i])
			return false;
	return true;
}

/* A real document: COSE_Sign1 [protected, {}, payload, signature] */
static bool load_vector(const char *path, struct chain *c)
{
	struct cbor_load_result res;
	cbor_item_t *cose, *payload = NULL;
	unsigned char *buf;
	size_t len = 0;
	bool good = false;

	memset(c, 0, sizeof(*c));
	c->aws = true;
	buf = read_file(path, &len);
	if (!buf)
		return false;
	cose = cbor_load(buf, len, &res);
	if (cose && cbor_isa_array(cose) && cbor_array_size(cose) == 4) {
		cbor_item_t *p = cbor_array_handle(cose)[2];

		payload = cbor_load(cbor_bytestring_handle(p),
				    cbor_bytestring_length(p), &res);
	}
	if (payload && cbor_isa_map(payload))
		good = chain_from_payload(payload, c);
	if (payload)
		cbor_decref(&payload);
	if (cose)
		cbor_decref(&cose);
	free(buf);
	return good;
}

/* Field by field ---------------------------------------------------------- */

static bool is_p384(X509 *x)
{
	EVP_PKEY *k = X509_get0_pubkey(x);
	char group[32];

	return k && EVP_PKEY_is_a(k, "EC") &&
	       EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME,
					      group, sizeof(group), NULL) &&
	       !strcmp(group, "secp384r1");
}

static int ext_critical(X509 *x, int nid)
{
	int i = X509_get_ext_by_NID(x, nid, -1);

	return i < 0 ? -1 : X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

/* "CA:TRUE pathlen:2 critical" */
static void basic_constraints(X509 *x, char *buf, size_t size)
{
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints,
						 NULL, NULL);

	if (!bc) {
		snprintf(buf, size, "none");
		return;
	}
	snprintf(buf, size, "CA:%s pathlen:%ld critical:%d",
		 bc->ca ? "TRUE" : "FALSE",
		 bc->pathlen ? ASN1_INTEGER_get(bc->pathlen) : -1,
		 ext_critical(x, NID_basic_constraints));
	BASIC_CONSTRAINTS_free(bc);
}

static void key_usage(X509 *x, char *buf, size_t size)
{
	snprintf(buf, size, "bits:%#x critical:%d", X509_get_key_usage(x),
		 ext_critical(x, NID_key_usage));
}

/* The subject's attributes: "C/P ST/U ..." (P PrintableString, U UTF8) */
static void subject_shape(X509 *x, char *buf, size_t size)
{
	X509_NAME *name = X509_get_subject_name(x);
	size_t len = 0;
	int i;

	buf[0] = 0;
	for (i = 0; i < X509_NAME_entry_count(name) && len < size; i++) {
		X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
		int type = ASN1_STRING_type(X509_NAME_ENTRY_get_data(e));

		len += snprintf(buf + len, size - len, "%s%s/%s", i ? " " : "",
				OBJ_nid2sn(OBJ_obj2nid(
					X509_NAME_ENTRY_get_object(e))),
				type == V_ASN1_PRINTABLESTRING ? "P" :
				type == V_ASN1_UTF8STRING ? "U" : "?");
	}
}

/* Extensions in order with their criticality; AWS's CRL DP left out */
static void extension_shape(X509 *x, char *buf, size_t size)
{
	size_t len = 0;
	int i;

	buf[0] = 0;
	for (i = 0; i < X509_get_ext_count(x) && len < size; i++) {
		X509_EXTENSION *e = X509_get_ext(x, i);
		int nid = OBJ_obj2nid(X509_EXTENSION_get_object(e));

		if (nid == NID_crl_distribution_points)
			continue;
		len += snprintf(buf + len, size - len, "%s%s%s", len ? " " : "",
				OBJ_nid2sn(nid),
				X509_EXTENSION_get_critical(e) ? "!" : "");
	}
}

static time_t time_of(const ASN1_TIME *t)
{
	struct tm tm;

	return ASN1_TIME_to_tm(t, &tm) ? timegm(&tm) : 0;
}

/*
 * The level's lifetime, as a class: the root's is 30 calendar years and
 * an hour; the zonal's anything from 5 d 14 h to 6 d (AWS's vary); the
 * others exact seconds.
 */
static void validity_shape(X509 *x, int level, char *buf, size_t size)
{
	time_t nb = time_of(X509_get0_notBefore(x));
	time_t na = time_of(X509_get0_notAfter(x));
	struct tm b, a;
	long d = na - nb;
	int years;

	if (level == NE_NSM_CA_ROOT) {
		/* whole years from notBefore, then seconds */
		gmtime_r(&nb, &b);
		gmtime_r(&na, &a);
		years = a.tm_year - b.tm_year;
		if (a.tm_mon < b.tm_mon ||
		    (a.tm_mon == b.tm_mon && a.tm_mday < b.tm_mday))
			years--;
		b.tm_year += years;
		snprintf(buf, size, "%d years and %ld s", years,
			 (long)(na - timegm(&b)));
	} else if (level == NE_NSM_CA_REGIONAL) {
		/* 20 d 1 h: one of AWS's is a second shorter */
		snprintf(buf, size, "%s", d >= 20 * 86400 + 3600 - 60 &&
			 d <= 20 * 86400 + 3600 ? "20 d 1 h (-1 min)" : "other");
	} else if (level == NE_NSM_CA_ZONAL) {
		snprintf(buf, size, "%s", d >= 5 * 86400 + 14 * 3600 &&
			 d <= 6 * 86400 ? "5 d 14 h to 6 d" : "other");
	} else {
		snprintf(buf, size, "%ld s", d);
	}
}

static int serial_bytes(X509 *x)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	int n = bn ? BN_num_bytes(bn) : -1;

	BN_free(bn);
	return n;
}

/* The issuer DN's DER is the parent's subject DN's, byte for byte. */
static bool issuer_is(X509 *x, X509 *parent)
{
	const unsigned char *a, *b;
	size_t alen, blen;

	return X509_NAME_get0_der(X509_get_issuer_name(x), &a, &alen) &&
	       X509_NAME_get0_der(X509_get_subject_name(parent), &b, &blen) &&
	       alen == blen && !memcmp(a, b, alen);
}

/* AKI's key ID is the parent's SKI, or neither has one */
static bool aki_links(X509 *x, X509 *parent)
{
	const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(parent);

	if (!aki)
		return X509_get_ext_by_NID(x, NID_authority_key_identifier,
					   -1) < 0;
	return ski && !ASN1_OCTET_STRING_cmp(aki, ski);
}

/* The CN in AWS's form; partition "aws" or "ne-kvm", any region */
static bool cn_shape(X509 *x, int level, char *cn, size_t size)
{
	static const char *const pattern[LEVELS] = {
		"^P\\.nitro-enclaves$",
		"^[0-9a-f]{16}\\.R\\.P\\.nitro-enclaves$",
		"^[0-9a-f]{16}\\.zonal\\.R\\.P\\.nitro-enclaves$",
		"^i-[0-9a-f]{17}\\.R\\.P\\.nitro-enclaves$",
		"^i-[0-9a-f]{17}-enc[0-9a-f]{16}\\.R\\.P$",
	};
	char re[256];
	const char *p;
	size_t n = 0;
	regex_t rx;
	bool match;

	for (p = pattern[level]; *p && n + 16 < sizeof(re); p++)
		n += snprintf(re + n, sizeof(re) - n, "%s",
			      *p == 'P' ? "(aws|ne-kvm)" :
			      *p == 'R' ? "[a-z0-9-]+" : (char[]){ *p, 0 });
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
				      cn, size) <= 0 ||
	    regcomp(&rx, re, REG_EXTENDED | REG_NOSUB))
		return false;
	match = regexec(&rx, cn, 0, NULL, 0) == 0;
	regfree(&rx);
	return match;
}

#define FIELD	512

/* @what of one level, ours against AWS's: one check */
static void same(const char *level, const char *what, const char *ours,
		 const char *aws, const char *tag)
{
	ok(!strcmp(ours, aws), "%s %s as AWS's (%s): %s%s%s", level, what, tag,
	   ours, strcmp(ours, aws) ? " / AWS: " : "",
	   strcmp(ours, aws) ? aws : "");
}

static void compare_level(int level, X509 *ours, X509 *aws, const char *tag)
{
	typedef void (*field_fn)(X509 *, char *, size_t);
	static const struct {
		const char *what;
		field_fn fn;
	} fields[] = {
		{ "basicConstraints", basic_constraints },
		{ "keyUsage", key_usage },
		{ "subject attributes", subject_shape },
		{ "extensions", extension_shape },
	};
	const char *name = level_name[level];
	char a[FIELD], b[FIELD];
	size_t i;

	ok(is_p384(ours) && is_p384(aws) && X509_get_version(ours) == 2 &&
	   X509_get_version(aws) == 2,
	   "%s: X.509 v3 with a P-384 key, as AWS's (%s)", name, tag);
	ok(X509_get_signature_nid(ours) == NID_ecdsa_with_SHA384 &&
	   X509_get_signature_nid(aws) == NID_ecdsa_with_SHA384,
	   "%s: signed with ecdsa-with-SHA384, as AWS's (%s)", name, tag);
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		fields[i].fn(ours, a, sizeof(a));
		fields[i].fn(aws, b, sizeof(b));
		same(name, fields[i].what, a, b, tag);
	}
	validity_shape(ours, level, a, sizeof(a));
	validity_shape(aws, level, b, sizeof(b));
	same(name, "validity", a, b, tag);
	snprintf(a, sizeof(a), "%d bytes", serial_bytes(ours));
	snprintf(b, sizeof(b), "%d bytes", serial_bytes(aws));
	same(name, "serial", a, b, tag);
	ok(cn_shape(ours, level, a, sizeof(a)) &&
	   cn_shape(aws, level, b, sizeof(b)),
	   "%s CN in AWS's form (%s): %s / AWS: %s", name, tag, a, b);
}

/* The enclave ID from a module_id "i-<17 hex>-enc<16 hex>" */
static bool enclave_id_of(const char *module_id, unsigned char *id)
{
	const char *hex = strstr(module_id, "-enc");
	int i;

	if (!hex || strlen(hex + 4) != 16)
		return false;
	for (i = 0; i < 8; i++)
		if (sscanf(hex + 4 + 2 * i, "%2hhx", &id[i]) != 1)
			return false;
	return true;
}

/*
 * AWS's leaf: serial = enclave ID, 4 zero bytes, issue time; valid from
 * issue - 3 s to issue + 3 h; issued at or before the document.
 */
static bool leaf_serial_shape(const struct chain *c, char *why, size_t size)
{
	X509 *leaf = c->cert[LEAF];
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
	unsigned char s[16], id[8];
	time_t nb = time_of(X509_get0_notBefore(leaf));
	time_t na = time_of(X509_get0_notAfter(leaf));
	uint32_t issued;
	bool good;

	good = bn && BN_bn2binpad(bn, s, sizeof(s)) == sizeof(s) &&
	       enclave_id_of(c->module_id, id);
	BN_free(bn);
	if (!good) {
		snprintf(why, size, "no 16-byte serial or enclave ID");
		return false;
	}
	issued = (uint32_t)s[12] << 24 | s[13] << 16 | s[14] << 8 | s[15];
	snprintf(why, size, "serial %s the enclave ID, %s, issue %u, "
		 "notBefore issue%+ld s, notAfter issue%+ld s, document "
		 "issue%+ld s", memcmp(s, id, 8) ? "not" : "starts with",
		 memcmp(s + 8, "\0\0\0\0", 4) ? "not 4 zero bytes" :
		 "4 zero bytes", issued, (long)(nb - issued),
		 (long)(na - issued), (long)(c->timestamp - issued));
	return !memcmp(s, id, 8) && !memcmp(s + 8, "\0\0\0\0", 4) &&
	       nb == (time_t)issued - NE_NSM_CA_LEAF_BACKDATE &&
	       na == (time_t)issued + NE_NSM_CA_LEAF_LIFETIME &&
	       c->timestamp >= (time_t)issued;
}

/* The chain's own links: issuer DNs, key identifiers, sizes */
static void chain_links(const struct chain *c, const char *tag)
{
	int i;

	for (i = 1; i < LEVELS; i++) {
		ok(issuer_is(c->cert[i], c->cert[i - 1]),
		   "%s: the %s's issuer DN is the %s's subject DN, byte for "
		   "byte", tag, level_name[i], level_name[i - 1]);
		ok(aki_links(c->cert[i], c->cert[i - 1]),
		   "%s: the %s's authority key ID is the %s's subject key ID "
		   "(or it has none)", tag, level_name[i], level_name[i - 1]);
	}
	for (i = 0; i < LEVELS; i++) {
		int n = i2d_X509(c->cert[i], NULL);

		ok(n > 0 && n <= 1024, "%s: the %s is %d bytes of DER (AWS's "
		   "limit: 1024)", tag, level_name[i], n);
	}
}

/* The local CA ------------------------------------------------------------ */

static char err[1024];

static X509 *load_pem_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	return x;
}

/* A leaf's chain as struct chain, the document's time being @now */
static bool chain_of_leaf(const NeNsmLeaf *leaf, struct chain *c)
{
	int i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < NE_NSM_CA_BUNDLE_LEN; i++)
		c->cert[i] = x509_of(leaf->cabundle[i].data,
				     leaf->cabundle[i].len);
	c->cert[LEAF] = x509_of(leaf->cert.data, leaf->cert.len);
	snprintf(c->module_id, sizeof(c->module_id), "%s", leaf->module_id);
	c->timestamp = leaf->issued;
	for (i = 0; i < LEVELS; i++)
		if (!c->cert[i])
			return false;
	return true;
}

/*
 * OpenSSL's PKIX path validation of @c's leaf pinned on @root at @when,
 * cabundle[1..] as the untrusted intermediates (cabundle[0] is never
 * trusted), no CRLs: X509_V_OK or the error.  Not X509_V_FLAG_X509_STRICT:
 * it wants an AKI in every certificate but the root, and AWS's leaves,
 * and so ours, have none.
 */
static int verify_leaf(const struct chain *c, X509 *root, time_t when)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *mid = sk_X509_new_null();
	int i, rc = X509_V_ERR_UNSPECIFIED;

	for (i = 1; i < NE_NSM_CA_BUNDLE_LEN; i++)
		sk_X509_push(mid, c->cert[i]);
	if (X509_STORE_add_cert(store, root) &&
	    X509_STORE_CTX_init(ctx, store, c->cert[LEAF], mid)) {
		X509_STORE_CTX_set_time(ctx, 0, when);
		rc = X509_verify_cert(ctx) == 1 ? X509_V_OK
						: X509_STORE_CTX_get_error(ctx);
	}
	sk_X509_free(mid);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return rc;
}

static bool same_public_key(EVP_PKEY *a, EVP_PKEY *b)
{
	return EVP_PKEY_eq(a, b) == 1;
}

/* A COSE_Sign1 document signed by the leaf ------------------------------- */

static void map_put(cbor_item_t *map, const char *key, cbor_item_t *value)
{
	cbor_map_add(map, (struct cbor_pair) {
		.key = cbor_move(cbor_build_string(key)),
		.value = cbor_move(value),
	});
}

/* The payload of attestation.md section 4, in its key order */
static cbor_item_t *payload_of(const NeNsmLeaf *leaf)
{
	static const unsigned char zero[48];
	cbor_item_t *map = cbor_new_definite_map(9);
	cbor_item_t *pcrs = cbor_new_definite_map(16);
	cbor_item_t *bundle = cbor_new_definite_array(NE_NSM_CA_BUNDLE_LEN);
	int i;

	for (i = 0; i < 16; i++)
		cbor_map_add(pcrs, (struct cbor_pair) {
			.key = cbor_move(cbor_build_uint8(i)),
			.value = cbor_move(cbor_build_bytestring(zero, 48)),
		});
	for (i = 0; i < NE_NSM_CA_BUNDLE_LEN; i++)
		cbor_array_push(bundle, cbor_move(cbor_build_bytestring(
			leaf->cabundle[i].data, leaf->cabundle[i].len)));
	map_put(map, "module_id", cbor_build_string(leaf->module_id));
	map_put(map, "digest", cbor_build_string("SHA384"));
	map_put(map, "timestamp",
		cbor_build_uint64((uint64_t)leaf->issued * 1000 + 500));
	map_put(map, "pcrs", pcrs);
	map_put(map, "certificate",
		cbor_build_bytestring(leaf->cert.data, leaf->cert.len));
	map_put(map, "cabundle", bundle);
	map_put(map, "public_key", cbor_new_null());
	map_put(map, "user_data", cbor_new_null());
	map_put(map, "nonce", cbor_new_null());
	return map;
}

/* ES384 over @tbs with @key: raw r || s, 96 bytes */
static bool es384_sign(EVP_PKEY *key, const unsigned char *tbs, size_t len,
		       unsigned char *sig)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[128];
	const unsigned char *p = der;
	size_t der_len = sizeof(der);
	ECDSA_SIG *es = NULL;
	bool good;

	good = md && EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key) &&
	       EVP_DigestSign(md, der, &der_len, tbs, len) &&
	       (es = d2i_ECDSA_SIG(NULL, &p, der_len)) &&
	       BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 48) == 48 &&
	       BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 48, 48) == 48;
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	return good;
}

static bool es384_verify(X509 *cert, const unsigned char *tbs, size_t len,
			 const unsigned char *sig)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ECDSA_SIG *es = ECDSA_SIG_new();
	unsigned char *der = NULL;
	int der_len;
	bool good;

	good = md && es && ECDSA_SIG_set0(es, BN_bin2bn(sig, 48, NULL),
					  BN_bin2bn(sig + 48, 48, NULL)) &&
	       (der_len = i2d_ECDSA_SIG(es, &der)) > 0 &&
	       EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL,
				    X509_get0_pubkey(cert)) == 1 &&
	       EVP_DigestVerify(md, der, der_len, tbs, len) == 1;
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return good;
}

static unsigned char *serialize(cbor_item_t *item, size_t *len)
{
	unsigned char *buf = NULL;
	size_t size;

	*len = cbor_serialize_alloc(item, &buf, &size);
	return buf;
}

/*
 * [protected {1: -35}, {}, payload, signature over the Sig_structure
 * ["Signature1", protected, h'', payload]] into @path; the signature is
 * checked with the leaf certificate's key first.
 */
static bool write_document(const NeNsmLeaf *leaf, X509 *cert,
			   const char *path)
{
	static const unsigned char prot[] = { 0xa1, 0x01, 0x38, 0x22 };
	cbor_item_t *payload = payload_of(leaf);
	cbor_item_t *tbs = cbor_new_definite_array(4);
	cbor_item_t *cose = cbor_new_definite_array(4);
	unsigned char *pay, *tbs_buf, *doc, sig[96];
	size_t pay_len, tbs_len, doc_len;
	FILE *f;
	bool good;

	pay = serialize(payload, &pay_len);
	cbor_array_push(tbs, cbor_move(cbor_build_string("Signature1")));
	cbor_array_push(tbs, cbor_move(cbor_build_bytestring(prot, 4)));
	cbor_array_push(tbs, cbor_move(cbor_build_bytestring(prot, 0)));
	cbor_array_push(tbs, cbor_move(cbor_build_bytestring(pay, pay_len)));
	tbs_buf = serialize(tbs, &tbs_len);
	good = es384_sign(leaf->key, tbs_buf, tbs_len, sig) &&
	       es384_verify(cert, tbs_buf, tbs_len, sig);
	cbor_array_push(cose, cbor_move(cbor_build_bytestring(prot, 4)));
	cbor_array_push(cose, cbor_move(cbor_new_definite_map(0)));
	cbor_array_push(cose, cbor_move(cbor_build_bytestring(pay, pay_len)));
	cbor_array_push(cose, cbor_move(cbor_build_bytestring(sig, 96)));
	doc = serialize(cose, &doc_len);
	f = fopen(path, "wb");
	good = good && f && fwrite(doc, 1, doc_len, f) == doc_len;
	if (f)
		good = !fclose(f) && good;
	free(doc);
	free(tbs_buf);
	free(pay);
	cbor_decref(&cose);
	cbor_decref(&tbs);
	cbor_decref(&payload);
	return good;
}

/* Bundles that must not load --------------------------------------------- */

/* @path's text, split after its key block into @key and @certs */
static bool split_bundle(const char *path, char **key, char **certs)
{
	static const char end[] = "-----END PRIVATE KEY-----\n";
	size_t len = 0;
	char *text = (char *)read_file(path, &len), *cut;

	if (!text)
		return false;
	text = realloc(text, len + 1);
	text[len] = 0;
	cut = strstr(text, end);
	if (!cut) {
		free(text);
		return false;
	}
	cut += strlen(end);
	*certs = strdup(cut);
	*cut = 0;
	*key = text;
	return true;
}

/* The PEM of @key, encrypted with @cipher (NULL: in the clear) */
static char *key_pem(EVP_PKEY *key, const EVP_CIPHER *cipher)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *copy = NULL;
	long len;

	if (PEM_write_bio_PrivateKey(bio, key, cipher, NULL, 0, NULL,
				     (void *)"secret")) {
		len = BIO_get_mem_data(bio, &data);
		copy = strndup(data, len);
	}
	BIO_free(bio);
	return copy;
}

/* The first @n certificates of a PEM text */
static char *first_certs(const char *certs, int n)
{
	static const char end[] = "-----END CERTIFICATE-----\n";
	const char *p = certs;

	while (n-- > 0 && (p = strstr(p, end)))
		p += strlen(end);
	return p ? strndup(certs, p - certs) : strdup(certs);
}

static void refused(const char *what, const char *a, const char *b,
		    const char *c, const char *expect)
{
	NeNsmCa *ca = NULL;
	char *pem;

	err[0] = 0;
	if (asprintf(&pem, "%s%s%s", a, b, c ? c : "") > 0) {
		ca = ne_nsm_ca_load_pem(pem, strlen(pem), err, sizeof(err));
		free(pem);
	}
	ok(!ca && strstr(err, expect) && ERR_peek_error() == 0,
	   "a bundle %s is refused (\"%s\"), OpenSSL's error queue left "
	   "empty", what, err);
	ne_nsm_ca_free(ca);
}

static void bad_bundles(const char *priv, const char *other_priv)
{
	char path[4096], *key, *certs, *okey, *ocerts, *p, *q;
	EVP_PKEY *p256 = EVP_EC_gen("P-256");
	EVP_PKEY *p384 = EVP_EC_gen("P-384");

	snprintf(path, sizeof(path), "%s/instance.pem", priv);
	if (!split_bundle(path, &key, &certs))
		return (void)ok(false, "%s splits into key and certificates",
				path);
	snprintf(path, sizeof(path), "%s/instance.pem", other_priv);
	if (!split_bundle(path, &okey, &ocerts))
		return (void)ok(false, "%s splits into key and certificates",
				path);
	refused("whose key is another installation's", okey, certs, NULL,
		"does not match");
	p = first_certs(certs, 3);
	refused("without its root", key, p, NULL, "certificates after");
	free(p);
	p = first_certs(ocerts, 1);
	refused("with a fifth certificate", key, certs, p, "more than 4");
	free(p);
	/* our instance under the other installation's zonal, regional, root */
	p = first_certs(ocerts, 1);
	q = strdup(ocerts + strlen(p));
	free(p);
	p = first_certs(certs, 1);
	refused("whose instance is not issued by its zonal", key, p, q,
		"does not verify");
	free(p);
	free(q);
	p = key_pem(p256, NULL);
	refused("with a P-256 key", p, certs, NULL, "not P-384");
	free(p);
	p = key_pem(p384, EVP_aes_256_cbc());
	refused("with an encrypted key (never prompted for)", p, certs, NULL,
		"no private key");
	free(p);
	refused("that is only certificates", "", certs, NULL,
		"no private key");
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
	free(key);
	free(certs);
	free(okey);
	free(ocerts);
}

/* Loading and issuing ----------------------------------------------------- */

static NeNsmCa *load_ways(const char *priv)
{
	char path[4096];
	NeNsmCa *ca, *again;
	int fd, pipefd[2];
	regex_t rx;

	snprintf(path, sizeof(path), "%s/instance.pem", priv);
	ca = ne_nsm_ca_load_file(path, err, sizeof(err));
	if (!ok(ca != NULL, "the instance CA bundle loads (%s)",
		ca ? path : err))
		return NULL;
	ok(!regcomp(&rx, "^i-0[0-9a-f]{16}$", REG_EXTENDED | REG_NOSUB) &&
	   !regexec(&rx, ne_nsm_ca_instance_id(ca), 0, NULL, 0),
	   "its instance ID is AWS's form i-<17 hex>: %s",
	   ne_nsm_ca_instance_id(ca));
	regfree(&rx);
	/* the hypervisor gets the bundle as a descriptor (ne-vm) */
	fd = open(path, O_RDONLY);
	again = ne_nsm_ca_load_fd(fd, err, sizeof(err));
	ne_nsm_ca_free(again);
	again = ne_nsm_ca_load_fd(fd, err, sizeof(err));
	ok(again != NULL, "the same descriptor loads twice (pread from 0)");
	ne_nsm_ca_free(again);
	close(fd);
	if (pipe(pipefd) == 0) {
		size_t len = 0;
		unsigned char *pem = read_file(path, &len);

		ok(pem && write(pipefd[1], pem, len) == (ssize_t)len &&
		   !close(pipefd[1]) &&
		   (again = ne_nsm_ca_load_fd(pipefd[0], err, sizeof(err))),
		   "a pipe loads too");
		ne_nsm_ca_free(again);
		close(pipefd[0]);
		free(pem);
	}
	return ca;
}

static void issue_refusals(const NeNsmCa *ca)
{
	time_t end = ne_nsm_ca_expires(ca);
	NeNsmLeaf leaf;
	int rc;

	rc = ne_nsm_ca_issue(ca, NULL, end - 3600, &leaf, err, sizeof(err));
	ok(rc < 0 && !leaf.key && !leaf.cert.data && ERR_peek_error() == 0,
	   "no leaf outlives the instance certificate: 1 h before its end, "
	   "refused (\"%s\")", err);
	rc = ne_nsm_ca_issue(ca, NULL, end - 86400 - 3600, &leaf, err,
			     sizeof(err));
	ok(rc < 0 && !leaf.key, "no leaf is issued before the instance "
	   "certificate's notBefore (\"%s\")", err);
	ne_nsm_leaf_clear(&leaf);
	rc = ne_nsm_ca_issue(ca, NULL, end - NE_NSM_CA_LEAF_LIFETIME, &leaf,
			     err, sizeof(err));
	ok(rc == 0, "a leaf ending exactly with the instance certificate is "
	   "issued");
	ne_nsm_leaf_clear(&leaf);
}

/* Two enclaves, and one enclave's renewed leaf */
static void per_enclave(const NeNsmCa *ca, const NeNsmLeaf *first)
{
	X509 *a = x509_of(first->cert.data, first->cert.len), *b = NULL;
	NeNsmLeaf two, again;

	ok(!ne_nsm_ca_issue(ca, NULL, 0, &two, err, sizeof(err)) &&
	   !same_public_key(first->key, two.key) &&
	   strcmp(first->module_id, two.module_id) &&
	   memcmp(first->enclave_id, two.enclave_id, 8),
	   "two enclaves get different leaf keys and module_ids (%s, %s)",
	   first->module_id, two.module_id);
	ok(!ne_nsm_ca_issue(ca, first->enclave_id, first->issued + 7200,
			    &again, err, sizeof(err)) &&
	   !strcmp(again.module_id, first->module_id) &&
	   !same_public_key(first->key, again.key) &&
	   (b = x509_of(again.cert.data, again.cert.len)) &&
	   ASN1_INTEGER_cmp(X509_get0_serialNumber(a),
			    X509_get0_serialNumber(b)),
	   "an enclave's renewed leaf keeps its module_id, with a new key and "
	   "serial");
	X509_free(a);
	X509_free(b);
	ne_nsm_leaf_clear(&two);
	ne_nsm_leaf_clear(&again);
}

static void write_pem(const char *out, const char *name, X509 *const *x,
		      int n)
{
	char path[4096];
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "%s/%s", out, name);
	f = fopen(path, "w");
	for (i = 0; f && i < n; i++)
		PEM_write_X509(f, x[i]);
	if (f)
		fclose(f);
}

/* The leaf against the three roots, and what the run script checks */
static void leaf_checks(const NeNsmLeaf *leaf, struct chain *c,
			const char *pub, X509 *other_root, X509 *aws_root,
			const char *out)
{
	char path[4096];
	X509 *root;
	int rc;

	snprintf(path, sizeof(path), "%s/root.pem", pub);
	root = load_pem_cert(path);
	ok(root && !X509_cmp(root, c->cert[0]), "cabundle[0] is %s", path);
	ok(X509_check_private_key(c->cert[LEAF], leaf->key) == 1,
	   "the leaf key is the leaf certificate's");
	rc = root ? verify_leaf(c, root, time(NULL)) : -1;
	ok(rc == X509_V_OK, "the leaf verifies to the local root, now "
	   "(OpenSSL): %s", X509_verify_cert_error_string(rc));
	rc = verify_leaf(c, other_root, time(NULL));
	ok(rc != X509_V_OK, "pinned on another installation's root, the leaf "
	   "is rejected: %s", X509_verify_cert_error_string(rc));
	rc = aws_root ? verify_leaf(c, aws_root, time(NULL)) : X509_V_OK;
	ok(rc != X509_V_OK, "pinned on AWS's root, the leaf is rejected: %s",
	   X509_verify_cert_error_string(rc));
	rc = root ? verify_leaf(c, root, leaf->not_after + 1) : -1;
	ok(rc == X509_V_ERR_CERT_HAS_EXPIRED, "a second after its 3 h the "
	   "leaf has expired: %s", X509_verify_cert_error_string(rc));
	write_pem(out, "leaf.pem", &c->cert[LEAF], 1);
	write_pem(out, "cabundle.pem", c->cert, NE_NSM_CA_BUNDLE_LEN);
	snprintf(path, sizeof(path), "%s/document.cose", out);
	ok(write_document(leaf, c->cert[LEAF], path), "a document signed "
	   "with the leaf key (ES384) verifies with the leaf certificate: %s",
	   path);
	X509_free(root);
}

int main(int argc, char **argv)
{
	struct chain aws[2], local, other_chain;
	X509 *aws_root = NULL, *other_root;
	NeNsmCa *ca, *other;
	NeNsmLeaf leaf, other_leaf;
	/* (shorter than the paths made of them) */
	char priv[2048], other_priv[2048], path[4096], why[512];
	int i, level;

	if (argc != 5) {
		fprintf(stderr, "usage: %s VECTORS CA-DIR OTHER-CA-DIR OUT\n",
			argv[0]);
		return 2;
	}
	snprintf(priv, sizeof(priv), "%s/private", argv[2]);
	snprintf(other_priv, sizeof(other_priv), "%s/private", argv[3]);
	ca = load_ways(priv);
	snprintf(path, sizeof(path), "%s/instance.pem", other_priv);
	other = ne_nsm_ca_load_file(path, err, sizeof(err));
	if (!ca || !other ||
	    !ok(!ne_nsm_ca_issue(ca, NULL, 0, &leaf, err, sizeof(err)) &&
		!ne_nsm_ca_issue(other, NULL, 0, &other_leaf, err,
				 sizeof(err)) && chain_of_leaf(&leaf, &local),
		"leaves are issued (%s)", err)) {
		printf("1..%d\n", tests);
		return 1;
	}
	note("module_id %s, leaf valid %lld to %lld", leaf.module_id,
	     (long long)leaf.not_before, (long long)leaf.not_after);
	ok(strlen(leaf.module_id) == NE_NSM_CA_MODULE_ID_LEN &&
	   !strncmp(leaf.module_id, ne_nsm_ca_instance_id(ca),
		    NE_NSM_CA_INSTANCE_ID_LEN),
	   "module_id is the instance ID, -enc and 16 hex: %s",
	   leaf.module_id);
	ok(leaf_serial_shape(&local, why, sizeof(why)),
	   "local leaf: %s", why);
	chain_links(&local, "local");
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", argv[1], vectors[i]);
		if (!ok(load_vector(path, &aws[i]), "AWS's chain from %s",
			path))
			continue;
		/* (the same check as the local leaf's, at the document's time) */
		ok(verify_leaf(&aws[i], aws[i].cert[0], aws[i].timestamp) ==
		   X509_V_OK, "AWS's chain verifies to its root at its "
		   "document's time (%s)", vectors[i]);
		note("AWS: module_id %s", aws[i].module_id);
		ok(leaf_serial_shape(&aws[i], why, sizeof(why)),
		   "AWS's leaf (%s): %s", vectors[i], why);
		for (level = 0; level < LEVELS; level++)
			compare_level(level, local.cert[level],
				      aws[i].cert[level], vectors[i]);
		if (!aws_root)
			aws_root = X509_dup(aws[i].cert[0]);
	}
	other_root = x509_of(other_leaf.cabundle[0].data,
			     other_leaf.cabundle[0].len);
	leaf_checks(&leaf, &local, argv[2], other_root, aws_root, argv[4]);
	ok(chain_of_leaf(&other_leaf, &other_chain) &&
	   verify_leaf(&other_chain, local.cert[0], time(NULL)) != X509_V_OK,
	   "another installation's leaf is rejected by the local root");
	free_chain(&other_chain);
	per_enclave(ca, &leaf);
	issue_refusals(ca);
	bad_bundles(priv, other_priv);

	for (i = 0; i < 2; i++)
		free_chain(&aws[i]);
	free_chain(&local);
	X509_free(aws_root);
	X509_free(other_root);
	ne_nsm_leaf_clear(&leaf);
	ne_nsm_leaf_clear(&other_leaf);
	ne_nsm_ca_free(ca);
	ne_nsm_ca_free(other);
	printf("1..%d\n# %d tests, %d failed\n", tests, tests, failed);
	return failed ? 1 : 0;
}
