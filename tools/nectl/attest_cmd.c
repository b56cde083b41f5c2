// SPDX-License-Identifier: GPL-2.0
/* `nectl verify-attestation`: options, the pinned root, the JSON verdict. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "attest.h"
#include "cli.h"
#include "commands.h"
#include "eif.h"
#include "errors.h"
#include "json.h"

/*
 * The local root: the CA of this installation's emulated NSM.  Its
 * creation is not nectl's job; the path is fixed so that every tool finds
 * the same one, and the variable lets tests and unusual setups move it.
 */
#define LOCAL_ROOT_PATH		"/var/lib/ne-kvm/attestation/root.pem"
#define LOCAL_ROOT_ENV		"NECTL_ATTESTATION_ROOT"

static const char verify_help[] =
	"Usage: nectl verify-attestation --document FILE [--root-cert PEM]\n"
	"                                [--at UNIX_SECONDS | --at document]\n"
	"                                [--nonce HEX] [--user-data HEX] [--pcr N=HEX ...]\n\n"
	"Verifies an NSM attestation document (raw COSE_Sign1 bytes) in the order of\n"
	"shared/spec/attestation.md section 6, and stops at the first failed step:\n"
	"  cose, payload       the COSE_Sign1 (ES384) and the payload's keys, types, limits\n"
	"  chain               [certificate, cabundle[n-1] .. cabundle[1], pinned root],\n"
	"                      each issued by the next; cabundle[0] is never trusted\n"
	"  validity            every certificate valid at the check time\n"
	"  usage               basic constraints, key usage and path lengths\n"
	"  chain-signatures    PKIX path validation (OpenSSL, no CRL checks)\n"
	"  signature           ES384 over the COSE Sig_structure with the leaf's key\n"
	"  pcrs, nonce, user-data   the expected values, when given\n\n"
	"Prints {Verified, FailedStep, Reason, Steps, CheckTime, ModuleID, Timestamp,\n"
	"TimestampUTC, Digest, PCRs, Certificates, PublicKey, UserData, Nonce} and exits 0\n"
	"only when every step passed; otherwise with the failed step's code:\n"
	"E73 cose/payload, E75 chain/chain-signatures, E76 validity, E77 usage,\n"
	"E78 signature, E79 pcrs, E80 nonce, E81 user-data (nectl explain E73...).\n\n"
	"  --document FILE     the attestation document\n"
	"  --root-cert PEM     the root to pin (e.g. AWS_NitroEnclaves_Root-G1.pem); default:\n"
	"                      ne-kvm's local root " LOCAL_ROOT_PATH "\n"
	"                      ($" LOCAL_ROOT_ENV " overrides the path); E74 when missing\n"
	"  --at UNIX_SECONDS   check validity at that time instead of now; --at document\n"
	"                      uses the document's own timestamp (tests and audits only:\n"
	"                      a stored document is then accepted long after it expired)\n"
	"  --nonce HEX         the document's nonce must be exactly these bytes\n"
	"  --user-data HEX     the document's user_data must be exactly these bytes\n"
	"  --pcr N=HEX         PCR N (0-31) must be exactly HEX; repeat for more PCRs\n";

struct verify_args {
	const char *document;
	const char *root_cert;
	struct att_expect expect;
	bool at_document;
	bool at_given;
	time_t at;
};

static int hex_option(const char *name, const char *text, uint8_t *out, size_t max, size_t *len)
{
	int r = parse_hex(text, out, max, len);

	if (r == -1)
		return nectl_error(E_INVALID_ARG, "%s '%.80s' is not hex (two digits per byte)", name,
				   text);
	if (r == -2)
		return nectl_error(E_INVALID_ARG, "%s is longer than %zu bytes", name, max);
	return 0;
}

/* --pcr N=HEX */
static int pcr_option(const char *text, struct att_expect *e)
{
	const char *eq = strchr(text, '=');
	char index[8];
	uint64_t n;

	if (!eq || eq == text || (size_t)(eq - text) >= sizeof(index))
		return nectl_error(E_INVALID_ARG, "--pcr '%.80s' is not N=HEX", text);
	memcpy(index, text, eq - text);
	index[eq - text] = '\0';
	if (parse_u64(index, ATT_MAX_PCRS - 1, false, &n))
		return nectl_error(E_INVALID_ARG, "--pcr '%.80s': the index must be 0 to %d", text,
				   ATT_MAX_PCRS - 1);
	if (e->pcr_wanted[n])
		return nectl_error(E_CONFLICTING_ARGS, "--pcr %llu is given twice",
				   (unsigned long long)n);
	e->pcr_wanted[n] = true;
	return hex_option("--pcr value", eq + 1, e->pcr[n], ATT_MAX_PCR_SIZE, &e->pcr_len[n]);
}

static int at_option(const char *text, struct verify_args *a)
{
	uint64_t v;

	a->at_given = true;
	if (!strcmp(text, "document")) {
		a->at_document = true;
		return 0;
	}
	/* time_t is 64-bit here; the bound keeps gmtime and ASN.1 times sane. */
	if (parse_u64(text, 253402300799ULL, false, &v))
		return nectl_error(E_INVALID_ARG,
				   "--at '%.80s' is neither Unix seconds (up to year 9999) nor 'document'",
				   text);
	a->at = (time_t)v;
	return 0;
}

static int apply_option(int opt, const char *arg, struct verify_args *a)
{
	struct att_expect *e = &a->expect;

	switch (opt) {
	case 'd':
		a->document = arg;
		return 0;
	case 'r':
		a->root_cert = arg;
		return 0;
	case 't':
		return at_option(arg, a);
	case 'n':
		e->nonce_wanted = true;
		return hex_option("--nonce", arg, e->nonce, sizeof(e->nonce), &e->nonce_len);
	case 'u':
		e->user_data_wanted = true;
		return hex_option("--user-data", arg, e->user_data, sizeof(e->user_data),
				  &e->user_data_len);
	default:
		return pcr_option(arg, e);
	}
}

static int parse_args(int argc, char **argv, struct verify_args *a, bool *help)
{
	static const struct option options[] = {
		{ "document", required_argument, NULL, 'd' },
		{ "root-cert", required_argument, NULL, 'r' },
		{ "at", required_argument, NULL, 't' },
		{ "nonce", required_argument, NULL, 'n' },
		{ "user-data", required_argument, NULL, 'u' },
		{ "pcr", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt, code;

	memset(a, 0, sizeof(*a));
	*help = false;
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
		if (opt == 'h') {
			*help = true;
			return 0;
		}
		if (opt == '?' || opt == ':') {
			fputs(verify_help, stderr);
			return nectl_error(E_INVALID_ARG, "unknown option or missing value: '%s'",
					   argv[optind - 1]);
		}
		code = apply_option(opt, optarg, a);
		if (code)
			return code;
	}
	if (optind < argc)
		return nectl_error(E_INVALID_ARG, "unexpected argument '%s'", argv[optind]);
	if (!a->document)
		return nectl_error(E_MISSING_ARG, "--document FILE is required");
	if (!a->at_given)
		a->at = time(NULL);
	return 0;
}

static int load_root(const char *given, X509 **root)
{
	const char *env = getenv(LOCAL_ROOT_ENV);
	const char *path = given ? given : env && *env ? env : LOCAL_ROOT_PATH;
	FILE *f = fopen(path, "re");

	if (!f && !given && errno == ENOENT)
		return nectl_error(E_ATTESTATION_ROOT,
				   "no --root-cert, and the local attestation root %s does not exist (it is created once per installation); give --root-cert PEM",
				   path);
	if (!f)
		return nectl_error(E_ATTESTATION_ROOT, "cannot open the root certificate %s: %s", path,
				   strerror(errno));
	*root = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!*root)
		return nectl_error(E_ATTESTATION_ROOT, "%s holds no PEM certificate", path);
	return 0;
}

/* Reads at most one byte more than a document may have, so cose.c can tell. */
static int read_document(const char *path, uint8_t **buf, size_t *len)
{
	size_t max = COSE_MAX_DOCUMENT + 1, got = 0;
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return nectl_error(E_FILE_OPERATION, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return nectl_error(E_FILE_OPERATION, "%s is not a regular file", path);
	}
	*buf = malloc(max);
	if (!*buf) {
		close(fd);
		return nectl_error(E_FILE_OPERATION, "out of memory");
	}
	while (got < max && (n = read(fd, *buf + got, max - got)) > 0)
		got += n;
	close(fd);
	*len = got;
	return 0;
}

/* ---------------------------------------------------------- the verdict */

static void json_hex_or_null(struct json_writer *w, const char *key, const struct att_optional *v)
{
	char *hex;

	json_key(w, key);
	if (!v->present) {
		json_null(w);
		return;
	}
	hex = malloc(2 * v->value.len + 1);
	if (!hex) {
		json_null(w);
		return;
	}
	eif_hex(v->value.data, v->value.len, hex);
	json_string(w, hex);
	free(hex);
}

static void json_name(struct json_writer *w, const char *key, const X509_NAME *name)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *text;
	long n;

	json_key(w, key);
	/* RFC 2253 with its escapes: ASCII whatever the certificate holds. */
	if (!b || X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) < 0) {
		json_null(w);
	} else {
		n = BIO_get_mem_data(b, &text);
		json_string_len(w, text, n);
	}
	BIO_free(b);
}

static void json_asn1_time(struct json_writer *w, const char *key, const ASN1_TIME *t)
{
	char out[32];
	struct tm tm;

	json_key(w, key);
	/* strftime of a year beyond 9999 would not fit: null then. */
	if (ASN1_TIME_to_tm(t, &tm) && strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", &tm))
		json_string(w, out);
	else
		json_null(w);
}

static void json_certificates(struct json_writer *w, const struct att_result *res)
{
	char pos[32];
	size_t i;

	json_key(w, "Certificates");
	json_begin_array(w);
	for (i = 0; i < res->chain_len; i++) {
		X509 *c = res->chain[i];

		json_begin_object(w);
		att_chain_position(res, i, pos, sizeof(pos));
		json_key(w, "Position");
		json_string(w, pos);
		if (c) {
			json_name(w, "Subject", X509_get_subject_name(c));
			json_name(w, "Issuer", X509_get_issuer_name(c));
			json_asn1_time(w, "NotBefore", X509_get0_notBefore(c));
			json_asn1_time(w, "NotAfter", X509_get0_notAfter(c));
		}
		json_end_object(w);
	}
	json_end_array(w);
}

static void json_pcrs(struct json_writer *w, const struct att_doc *doc)
{
	char key[8], hex[2 * ATT_MAX_PCR_SIZE + 1];
	int i;

	json_key(w, "PCRs");
	json_begin_object(w);
	for (i = 0; i < ATT_MAX_PCRS; i++) {
		if (!doc->pcr_present[i])
			continue;
		snprintf(key, sizeof(key), "PCR%d", i);
		eif_hex(doc->pcrs[i].data, doc->pcrs[i].len, hex);
		json_key(w, key);
		json_string(w, hex);
	}
	json_end_object(w);
}

static void json_utc_ms(struct json_writer *w, uint64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	char out[48], stamp[32];
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm)) {
		json_null(w);
		return;
	}
	snprintf(out, sizeof(out), "%s.%03uZ", stamp, (unsigned int)(ms % 1000));
	json_string(w, out);
}

/* The payload's fields, once steps 1 and 2 passed; null before that. */
static void json_document(struct json_writer *w, const struct att_doc *doc, bool decoded)
{
	static const struct att_optional absent = { false, { NULL, 0 } };

	json_key(w, "ModuleID");
	decoded ? json_string(w, doc->module_id) : json_null(w);
	json_key(w, "Timestamp");
	decoded ? json_u64(w, doc->timestamp_ms) : json_null(w);
	json_key(w, "TimestampUTC");
	decoded ? json_utc_ms(w, doc->timestamp_ms) : json_null(w);
	json_key(w, "Digest");
	decoded ? json_string(w, doc->digest) : json_null(w);
	if (decoded) {
		json_pcrs(w, doc);
	} else {
		json_key(w, "PCRs");
		json_null(w);
	}
	json_hex_or_null(w, "PublicKey", decoded ? &doc->public_key : &absent);
	json_hex_or_null(w, "UserData", decoded ? &doc->user_data : &absent);
	json_hex_or_null(w, "Nonce", decoded ? &doc->nonce : &absent);
}

static void json_steps(struct json_writer *w, const struct att_result *res)
{
	static const char *const outcome[] = {
		[ATT_NOT_RUN] = "not run", [ATT_PASSED] = "passed",
		[ATT_FAILED] = "failed", [ATT_NOT_REQUESTED] = "not requested",
	};
	int i;

	json_key(w, "Steps");
	json_begin_object(w);
	for (i = 0; i < ATT_NR_STEPS; i++) {
		json_key(w, att_step_name(i));
		json_string(w, outcome[res->outcome[i]]);
	}
	json_end_object(w);
}

static void print_verdict(const struct att_doc *doc, const struct att_result *res, bool ok)
{
	struct json_writer w;

	json_init(&w, stdout);
	json_begin_object(&w);
	json_key(&w, "Verified");
	json_bool(&w, ok);
	json_key(&w, "FailedStep");
	ok ? json_null(&w) : json_string(&w, att_step_name(res->failed_step));
	json_key(&w, "Reason");
	ok ? json_null(&w) : json_string(&w, res->reason);
	json_steps(&w, res);
	json_key(&w, "CheckTime");
	res->check_time_known ? json_u64(&w, (uint64_t)res->check_time) : json_null(&w);
	json_document(&w, doc, res->outcome[ATT_STEP_PAYLOAD] == ATT_PASSED);
	json_certificates(&w, res);
	json_end_object(&w);
	json_finish(&w);
}

int cmd_verify_attestation(int argc, char **argv)
{
	struct verify_args a;
	struct att_options o;
	struct att_result res;
	struct att_doc doc;
	X509 *root = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	bool help, ok;
	int code;

	code = parse_args(argc, argv, &a, &help);
	if (help)
		fputs(verify_help, stdout);
	if (code || help)
		return code;
	code = load_root(a.root_cert, &root);
	if (!code)
		code = read_document(a.document, &buf, &len);
	if (code) {
		X509_free(root);
		return code;
	}
	o = (struct att_options){ root, a.at_document, a.at, &a.expect };
	ok = att_verify(buf, len, &o, &doc, &res);
	print_verdict(&doc, &res, ok);
	if (!ok)
		code = nectl_error(att_step_error(res.failed_step), "%s: step %s: %s", a.document,
				   att_step_name(res.failed_step), res.reason);
	att_result_release(&res);
	cose_release(&doc);
	X509_free(root);
	free(buf);
	return code;
}
