// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of nectl's pure parts: JSON, run arguments and --config,
 * the hugepage planner, cpu lists, the heartbeat timeout rule, enclave ids,
 * hex arguments, the attestation steps and the EIF signature's CBOR and
 * ECDSA.  Prints TAP.  Also a helper for tests/run, which changes every
 * byte of an attestation document in turn:
 *   nectl_unit_test attest-flips DOCUMENT ROOT.pem POSITIONS
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include <openssl/pem.h>

#include "allocator.h"
#include "attest.h"
#include "cli.h"
#include "eif.h"
#include "eif_sig.h"
#include "enclaves.h"
#include "errors.h"
#include "hugepages.h"
#include "json.h"
#include "launch.h"
#include "metadata.h"

static int test_number, failures;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void check(int ok, const char *fmt, ...)
{
	char line[1024], *p;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One TAP line per test, whatever the inputs contain. */
	for (p = line; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	printf("%s %d - %s\n", ok ? "ok" : "not ok", ++test_number, line);
	if (!ok)
		failures++;
}

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

/* ------------------------------------------------------------------ JSON */

static void test_json(void)
{
	static const struct {
		const char *text;
		int valid;
	} cases[] = {
		{ "{}", 1 }, { "[]", 1 }, { "0", 1 }, { "-0.5e+3", 1 }, { "\"a\\u00e9\\ud83d\\ude00\"", 1 },
		{ "{\"a\": [1, true, false, null, {\"b\": \"c\"}]}", 1 }, { " \n{ } \t", 1 },
		{ "", 0 }, { "{", 0 }, { "}", 0 }, { "[1,]", 0 }, { "{\"a\" 1}", 0 }, { "{\"a\":1,}", 0 },
		{ "01", 0 }, { "1.", 0 }, { "+1", 0 }, { ".5", 0 }, { "1e", 0 }, { "tru", 0 },
		{ "nul", 0 }, { "\"abc", 0 }, { "\"\\x\"", 0 }, { "\"\\ud800\"", 0 }, { "\"\\udc00\"", 0 },
		{ "\"\\u12\"", 0 }, { "\"a\nb\"", 0 }, { "{} {}", 0 }, { "{\"a\":1,\"a\":2}", 0 },
		{ "{1:2}", 0 }, { "\"\\u0000\"", 0 },
	};
	char deep[2 * (JSON_MAX_DEPTH + 2) + 1], err[160], *out = NULL;
	const char *text;
	struct json_value *v;
	struct json_writer w;
	size_t i, len;
	uint64_t n;
	FILE *f;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = json_parse(cases[i].text, strlen(cases[i].text), err, sizeof(err));
		check(!!v == cases[i].valid, "json: '%s' is %s%s%s", cases[i].text,
		      cases[i].valid ? "accepted" : "refused", v ? "" : ": ", v ? "" : err);
		json_free(v);
	}
	/* UTF-8 in strings: well-formed is kept byte for byte, anything else refused. */
	static const struct {
		const char *name, *text;
		int valid;
	} utf8[] = {
		{ "2, 3 and 4-byte sequences", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", 1 },
		{ "U+10FFFF", "\"\xf4\x8f\xbf\xbf\"", 1 },
		{ "a stray continuation byte", "\"\x80\"", 0 },
		{ "a lead byte and a quote", "\"\xd8\"", 0 },
		{ "a lead byte then ASCII", "\"\xd8x\"", 0 },
		{ "a truncated 3-byte sequence", "\"\xe2\x82\"", 0 },
		{ "an overlong '/' (C0 AF)", "\"\xc0\xaf\"", 0 },
		{ "an overlong 3-byte form (E0 80 80)", "\"\xe0\x80\x80\"", 0 },
		{ "a surrogate (ED A0 80)", "\"\xed\xa0\x80\"", 0 },
		{ "above U+10FFFF (F4 90 80 80)", "\"\xf4\x90\x80\x80\"", 0 },
		{ "F5", "\"\xf5\x80\x80\x80\"", 0 },
		{ "a bad byte in a key", "{\"\xff\": 1}", 0 },
	};

	for (i = 0; i < sizeof(utf8) / sizeof(utf8[0]); i++) {
		v = json_parse(utf8[i].text, strlen(utf8[i].text), err, sizeof(err));
		check(!!v == utf8[i].valid &&
		      (!v || (v->type == JSON_STRING &&
				!strncmp(v->text, utf8[i].text + 1, strlen(utf8[i].text) - 2))),
		      "json: a string with %s is %s%s%s", utf8[i].name,
		      utf8[i].valid ? "accepted as is" : "refused", v ? "" : ": ", v ? "" : err);
		json_free(v);
	}
	/* Exactly at the depth limit, then one past it. */
	for (i = 0; i < 2; i++) {
		size_t d = JSON_MAX_DEPTH + i;

		memset(deep, '[', d);
		memset(deep + d, ']', d);
		v = json_parse(deep, 2 * d, err, sizeof(err));
		check(i ? !v && strstr(err, "nested") : !!v, "json: depth %zu %s", d,
		      i ? "refused" : "accepted");
		json_free(v);
	}
	v = json_parse("{\"k\": 18446744073709551615, \"m\": 18446744073709551616, \"s\": -1}", 63,
		       err, sizeof(err));
	check(v && json_to_u64(json_get(v, "k"), &n) && n == UINT64_MAX,
	      "json: u64 max converts");
	check(v && !json_to_u64(json_get(v, "m"), &n) && !json_to_u64(json_get(v, "s"), &n),
	      "json: 2^64 and negative numbers do not convert");
	json_free(v);
	text = "\"a\\\"b\\\\c\\n\\u0001\"";
	v = json_parse(text, strlen(text), err, sizeof(err));
	f = open_memstream(&out, &len);
	json_init(&w, f);
	json_begin_object(&w);
	json_key(&w, "x");
	if (v)
		json_tree(&w, v);
	json_key(&w, "e");
	json_begin_array(&w);
	json_end_array(&w);
	json_end_object(&w);
	fclose(f);
	check(out && !strcmp(out, "{\n  \"x\": \"a\\\"b\\\\c\\n\\u0001\",\n  \"e\": []\n}"),
	      "json: writer escapes and indents like serde_json (got %s)", out);
	free(out);
	json_free(v);
	out = NULL;
	f = open_memstream(&out, &len);
	json_init(&w, f);
	json_string(&w, "\b\t\n\v\f\r\x1f\x7f\xc3\xa9");
	fclose(f);
	check(out && !strcmp(out, "\"\\b\\t\\n\\u000b\\f\\r\\u001f\x7f\xc3\xa9\""),
	      "json: control characters as serde_json writes them (\\b \\f short, \\u000b, DEL and UTF-8 as is)");
	free(out);
}

/*
 * The largest text nectl parses, a registry entry (2 MiB, a file any
 * member of group ne may write into the shared directory), made of
 * @items members: an object of distinct keys ("k0":0,...) or an array of
 * zeros.  Parsed in a child limited to JSON_CPU_LIMIT seconds of CPU: a
 * parser whose cost grows with the square of the members (a duplicate
 * check against every earlier key, an array grown one slot at a time)
 * takes minutes here, so every describe-enclaves would hang on one such
 * file; a linear one takes a fraction of a second.
 */
#define JSON_CPU_LIMIT	10

static bool parses_within_cpu_limit(bool object, size_t items, size_t dup_at, char *why,
				    size_t whylen)
{
	size_t cap = items * 24 + 16, len = 0, i;
	char *text = malloc(cap), err[160];
	struct json_value *v;
	int status;
	pid_t pid;

	if (!text)
		return false;
	text[len++] = object ? '{' : '[';
	for (i = 0; i < items; i++) {
		if (i)
			text[len++] = ',';
		if (object)
			len += sprintf(text + len, "\"k%zu\":0", i == dup_at ? 0 : i);
		else
			text[len++] = '0';
	}
	text[len++] = object ? '}' : ']';
	pid = fork();
	if (pid == 0) {
		struct rlimit cpu = { JSON_CPU_LIMIT, JSON_CPU_LIMIT };

		setrlimit(RLIMIT_CPU, &cpu);
		v = json_parse_depth(text, len, JSON_MAX_DEPTH + 1, err, sizeof(err));
		if (!v && dup_at < items && strstr(err, "duplicate key \"k0\""))
			_exit(0);
		_exit(v && dup_at >= items && v->count == items ? 0 : 1);
	}
	free(text);
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return false;
	if (WIFSIGNALED(status))
		snprintf(why, whylen, " (killed by signal %d after %d s of CPU)", WTERMSIG(status),
			 JSON_CPU_LIMIT);
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		snprintf(why, whylen, " (wrong result)");
	return WIFEXITED(status) && !WEXITSTATUS(status);
}

static void test_json_size(void)
{
	/* members of the 2 MiB registry limit ("k123456":0, is 12 bytes) */
	size_t keys = (2u << 20) / 12, zeros = (2u << 20) / 2;
	char why[80] = "";

	check(parses_within_cpu_limit(true, keys, SIZE_MAX, why, sizeof(why)),
	      "json: an object of %zu distinct keys (2 MiB) parses in linear time%s", keys, why);
	why[0] = '\0';
	check(parses_within_cpu_limit(true, keys, keys - 1, why, sizeof(why)),
	      "json: the same object with its last key a duplicate of its first is refused%s", why);
	why[0] = '\0';
	check(parses_within_cpu_limit(false, zeros, SIZE_MAX, why, sizeof(why)),
	      "json: an array of %zu members (2 MiB) parses in linear time%s", zeros, why);
}

/* Objects nested depth deep, {"a":{"a":...1...}}, as text (malloc'ed). */
static char *nested_text(int depth, size_t *len)
{
	char *text = malloc(6 * depth + 2);
	size_t pos = 0;
	int i;

	for (i = 0; i < depth; i++)
		pos += sprintf(text + pos, "{\"a\":");
	text[pos++] = '1';
	for (i = 0; i < depth; i++)
		text[pos++] = '}';
	text[pos] = '\0';
	*len = pos;
	return text;
}

/* v written alone, compactly comparable (malloc'ed). */
static char *tree_text(const struct json_value *v)
{
	struct json_writer w;
	char *out = NULL;
	size_t len;
	FILE *f = open_memstream(&out, &len);

	json_init(&w, f);
	if (v)
		json_tree(&w, v);
	fclose(f);
	return out;
}

/*
 * Deep metadata through the writer: the registry nests an EIF's metadata one
 * level deeper, and a writer that stopped counting at 32 levels wrote
 * `}"Heartbeat": ...` for metadata 31 deep, a registry nobody could read.
 */
static void test_json_depth(void)
{
	static const int depths[] = { 31, 32, 33, 100, JSON_MAX_DEPTH };
	struct registry_entry e = { .name = "deep", .slot_uid = 0x10, .holder = 1,
				    .state = "RUNNING", .eif_path = "/x.eif",
				    .no_heartbeat = true };
	struct json_value *meta, *reg;
	char err[160], *text, *reg_text, *a, *b;
	size_t i, len;

	for (i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		text = nested_text(depths[i], &len);
		meta = json_parse(text, len, err, sizeof(err));
		e.metadata = meta;
		reg_text = meta ? registry_render(&e, &len) : NULL;
		reg = reg_text ? registry_parse(reg_text, len) : NULL;
		a = tree_text(meta);
		b = tree_text(json_get(reg, "EifMetadata"));
		check(meta && reg && !strcmp(a, b) &&
		      json_get(reg, "Heartbeat") && json_get(reg, "HolderPID"),
		      "json: metadata nested %d deep survives the registry (written, read back, equal)",
		      depths[i]);
		free(a);
		free(b);
		json_free(reg);
		free(reg_text);
		json_free(meta);
		free(text);
	}
	text = nested_text(JSON_MAX_DEPTH + 1, &len);
	meta = json_parse(text, len, err, sizeof(err));
	check(!meta && strstr(err, "nested deeper than 127"),
	      "json: 128 levels refused, as serde_json (nitro-cli) refuses them: %s", err);
	json_free(meta);
	free(text);
}

/* What a writer call printed, as text (malloc'ed). */
#define WRITTEN(out, call) do {						\
		struct json_writer w_;					\
		size_t len_;						\
		FILE *f_ = open_memstream(&(out), &len_);		\
		json_init(&w_, f_);					\
		call;							\
		fclose(f_);						\
	} while (0)

/*
 * A process name is its process's to choose (prctl PR_SET_NAME): in
 * describe-enclaves' JSON and in messages on root's terminal, bytes other
 * than printable ASCII (escapes, bytes that are not UTF-8) come out as '?'.
 */
static void test_comm_printable(void)
{
	char comm[32] = "\xff\x1b]0;x\x07ok~";

	enclave_printable(comm);
	check(!strcmp(comm, "??]0;x?ok~"),
	      "comm: a holder's process name is printable ASCII in nectl's output ('%s')", comm);
}

/*
 * A registry that cannot be read whole is an error, not a list with names
 * missing (a launch would then take a name in use): with no fd left to
 * open an entry, registry_taken_names() fails with EMFILE.  The old one
 * skipped the entry and answered no name taken.  In a child: it lowers
 * its fd limit.
 */
static void test_registry_unreadable(void)
{
	char dir[] = "/tmp/nectl-unit.XXXXXX", path[64], **names;
	int status = -1, fd, highest;
	struct rlimit lim;
	size_t n;
	pid_t pid;
	FILE *f;

	if (!mkdtemp(dir)) {
		check(0, "registry: mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/1f.json", dir);
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "{\"HolderPID\": %d, \"EnclaveName\": \"x\"}", (int)getpid());
		fclose(f);
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		setenv("NECTL_RUN_DIR", dir, 1);
		highest = dup(0);	/* the lowest free fd: the directory takes it */
		close(highest);
		lim.rlim_cur = lim.rlim_max = highest + 1;
		if (setrlimit(RLIMIT_NOFILE, &lim))
			_exit(3);
		fd = registry_taken_names(&names, &n);
		_exit(fd == -1 && errno == EMFILE ? 0 : fd ? 2 : 1);
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
	unlink(path);
	rmdir(dir);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "registry: an entry that cannot be opened (no fd left) fails the pass with EMFILE, not 'no name taken' (child status %d)",
	      status);
}

/* nitro-cli leaves out the keys it has no value for (serde skip_serializing_if). */
static void test_json_omitted(void)
{
	static const char reg_text[] =
		"{\"EnclaveName\": \"e1\", \"HolderPID\": 7, \"EifMetadata\": {\"ImageName\": \"img\", "
		"\"ImageVersion\": \"1.0\", \"BuildMetadata\": {\"BuildTime\": \"t\", \"BuildTool\": \"b\", "
		"\"BuildToolVersion\": \"v\", \"OperatingSystem\": \"Linux\", \"KernelVersion\": \"6\", "
		"\"Extra\": 1}, \"DockerInfo\": {\"d\": 1}, \"CustomMetadata\": {\"team\": \"x\"}}}";
	struct enclave e = { .slot_uid = 0x42, .pid = 7, .cid = 16, .vcpus = 2, .mem_bytes = 64 << 20,
			     .state = "running" };
	struct json_value *reg = registry_parse(reg_text, strlen(reg_text));
	char *out = NULL;

	strcpy(e.comm, "other");
	WRITTEN(out, enclave_describe(&w_, &e, true));
	check(out && !strstr(out, "EnclaveName") && !strstr(out, "ImageName") &&
	      !strstr(out, "Metadata") && !strstr(out, "Measurements") &&
	      strstr(out, "\"Launcher\": \"other\""),
	      "json: describe-enclaves of a foreign enclave omits EnclaveName, Measurements, ImageName, Metadata (no nulls)");
	free(out);
	e.registry = reg;
	e.name = "e1";
	WRITTEN(out, enclave_describe(&w_, &e, false));
	check(out && strstr(out, "{\n  \"EnclaveName\": \"e1\",\n  \"EnclaveID\"") &&
	      !strstr(out, "ImageName") && !strstr(out, "Launcher"),
	      "json: describe-enclaves: EnclaveName first; without --metadata no image keys");
	free(out);
	WRITTEN(out, enclave_describe(&w_, &e, true));
	check(out && strstr(out, "\"ImageName\": \"img\",\n  \"ImageVersion\": \"1.0\",\n  \"Metadata\": {\n"
			     "    \"BuildTime\": \"t\",\n    \"BuildTool\": \"b\",\n    \"BuildToolVersion\": \"v\",\n"
			     "    \"OperatingSystem\": \"Linux\",\n    \"KernelVersion\": \"6\",\n"
			     "    \"DockerInfo\": {\n      \"d\": 1\n    },\n    \"team\": \"x\"\n  }") &&
	      !strstr(out, "Extra"),
	      "json: --metadata: the five build fields, DockerInfo, then the custom keys, as nitro-cli's MetadataDescribeInfo");
	free(out);
	json_free(reg);
	WRITTEN(out, enclave_write_terminated(&w_, NULL, "i-0-enc42"));
	check(out && !strcmp(out, "{\n  \"EnclaveID\": \"i-0-enc42\",\n  \"Terminated\": true\n}"),
	      "json: terminate-enclave without a name omits EnclaveName (got %s)", out);
	free(out);
	WRITTEN(out, enclave_write_terminated(&w_, "n", "i-0-enc42"));
	check(out && strstr(out, "{\n  \"EnclaveName\": \"n\",\n  \"EnclaveID\""),
	      "json: terminate-enclave: EnclaveName, EnclaveID, Terminated");
	free(out);
	WRITTEN(out, metadata_write_identity(&w_, NULL));
	check(out && !*out, "json: no metadata, no ImageName, ImageVersion nor Metadata");
	free(out);
}

/* ------------------------------------------------------- run arguments */

static int parse_args(const char *line, struct run_options *o, char *err, size_t errlen)
{
	char *copy = strdup(line), *argv[32], *tok, *save;
	int argc = 0;
	bool help;
	int code;

	for (tok = strtok_r(copy, " ", &save); tok && argc < 31; tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	code = run_options_parse(argc, argv, o, &help, err, errlen);
	free(copy);
	return code;
}

static bool memory_is(const char *text, uint64_t mib)
{
	uint64_t got = ~0ULL;

	return parse_memory(text, &got) == 0 && got == mib;
}

static bool memory_refused(const char *text, int why)
{
	uint64_t got;

	return parse_memory(text, &got) == why;
}

static void test_run_args(void)
{
	static const struct {
		const char *args;
		int code;
	} cases[] = {
		{ "run --eif-path a.eif --memory 512 --cpu-count 2", 0 },
		{ "run --eif-path a.eif --memory 512 --cpu-count 2 --enclave-cid 16 --debug-mode --enclave-name x", 0 },
		{ "run --eif-path=a.eif --memory=512 --cpu-count=2 --no-heartbeat", 0 },
		{ "run --memory 512 --cpu-count 2", E_MISSING_ARG },
		{ "run --eif-path a.eif --cpu-count 2", E_MISSING_ARG },
		{ "run --eif-path a.eif --memory 512", E_MISSING_ARG },
		{ "run --eif-path a.eif --memory 0 --cpu-count 2", E_MEMORY_REQUEST_TOO_SMALL },
		{ "run --eif-path a.eif --memory 0G --cpu-count 2", E_MEMORY_REQUEST_TOO_SMALL },
		{ "run --eif-path a.eif --memory 512 --cpu-count 0", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 12x --cpu-count 2", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory -1 --cpu-count 2", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 0x10 --cpu-count 2", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory= --cpu-count 2", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 4294967296 --cpu-count 2", 0 },
		{ "run --eif-path a.eif --memory 4294967297 --cpu-count 2", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory=4096T --cpu-count 2", 0 },
		{ "run --eif-path a.eif --memory=4097T --cpu-count 2", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 512MB --cpu-count 2", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 1.5G --cpu-count 2", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory G --cpu-count 2", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 512k --cpu-count 2", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 2cpu --cpu-count 2", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 2 --cpu-count two", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 99999999999999999999999 --cpu-count 2", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 512 --cpu-count 1024", 0 },
		{ "run --eif-path a.eif --memory 512 --cpu-count 1025", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 512 --cpu-count 2 --enclave-cid 1", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 512 --cpu-count 2 --enclave-cid 2", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 512 --cpu-count 2 --enclave-cid 3", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 512 --cpu-count 2 --enclave-cid 4", 0 },
		{ "run --eif-path a.eif --memory 512 --cpu-count 2 --enclave-cid 4294967294", 0 },
		{ "run --eif-path a.eif --memory 512 --cpu-count 2 --enclave-cid 4294967295", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 512 --cpu-count 2 --enclave-cid 4294967296", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 512 --cpu-count 2 --cpu-ids 1", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 512 --cpu-count 2 --bogus", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory 512 --cpu-count 2 extra", E_INVALID_ARG },
		{ "run --eif-path a.eif --memory", E_INVALID_ARG },
		{ "run --config x.json --memory 512", E_CONFLICTING_ARGS },
		{ "run --eif-path a.eif --memory 512 --cpu-count 2 --enclave-name a/b", E_NAMING },
	};
	struct run_options o;
	char err[512], name[200];
	size_t i;
	int code;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		code = parse_args(cases[i].args, &o, err, sizeof(err));
		check(code == cases[i].code, "args: '%s' gives E%02d (got E%02d%s%s)", cases[i].args,
		      cases[i].code, code, code ? ": " : "", code ? err : "");
	}
	check(memory_is("512", 512) && memory_is("512M", 512) && memory_is("512m", 512) &&
	      memory_is("0512", 512) && memory_is("2G", 2048) && memory_is("2g", 2048) &&
	      memory_is("1T", 1ULL << 20) && memory_is("1t", 1ULL << 20) && memory_is("0", 0),
	      "args: --memory 512, 512M, 512m, 0512 = 512 MiB; 2G, 2g = 2048; 1T, 1t = 1048576 (nitro-cli's units)");
	check(memory_refused("", -1) && memory_refused("+512", -1) && memory_refused(" 512", -1) &&
	      memory_refused("512 ", -2) && memory_refused("512MiB", -2) && memory_refused("2GB", -2) &&
	      memory_refused("2Gi", -2) && memory_refused("512K", -2) && memory_refused("512B", -2) &&
	      memory_refused("99999999999999999999999", -3) && memory_refused("4194305G", -3),
	      "args: --memory '', +512, ' 512' (no number), '512 ', 512MiB, 2GB, 2Gi, 512K, 512B (unit), 10^23 and 4194305G (too large) refused");
	code = parse_args("run --eif-path a.eif --memory 512 --cpu-count 2 --attach-console", &o,
			  err, sizeof(err));
	check(!code && o.attach_console && o.debug_mode && o.memory_mib == 512 && o.cpu_count == 2 &&
	      !strcmp(o.eif_path, "a.eif"), "args: --attach-console implies debug mode, values kept");
	memset(name, 'n', NECTL_NAME_MAX);
	name[NECTL_NAME_MAX] = '\0';
	check(enclave_name_valid(name), "name: %d characters accepted", NECTL_NAME_MAX);
	name[NECTL_NAME_MAX] = 'n';
	name[NECTL_NAME_MAX + 1] = '\0';
	check(!enclave_name_valid(name), "name: %d characters refused", NECTL_NAME_MAX + 1);
	check(!enclave_name_valid("") && !enclave_name_valid("a\tb") && enclave_name_valid("my enclave_1"),
	      "name: empty and control characters refused");
}

#define CFG_BASE "\"eif_path\": \"a.eif\", \"memory_mib\": 256"

static void test_config(void)
{
	static const struct {
		const char *json;
		int code;
	} cases[] = {
		{ "{" CFG_BASE ", \"cpu_count\": 2}", 0 },
		/* null where nitro-cli's field is an Option */
		{ "{" CFG_BASE ", \"cpu_count\": 2, \"cpu_ids\": null, \"enclave_cid\": null, \"enclave_name\": null}", 0 },
		{ "{" CFG_BASE ", \"cpu_count\": 2, \"debug_mode\": false, \"attach_console\": false}", 0 },
		/* unknown keys are ignored, as serde ignores them */
		{ "{" CFG_BASE ", \"cpu_count\": 2, \"colour\": 1, \"memory\": \"2G\", \"x\": {\"y\": [null]}}", 0 },
		{ "{\"cpu_count\": 2, \"memory_mib\": 256, \"eif_path\": \"a.eif\"}", 0 },
		/* required keys and their types */
		{ "{\"memory_mib\": 256, \"cpu_count\": 2}", E_CONFIG_PARSE },
		{ "{\"eif_path\": \"a.eif\", \"cpu_count\": 2}", E_CONFIG_PARSE },
		{ "{\"eif_path\": null, \"memory_mib\": 256, \"cpu_count\": 2}", E_CONFIG_PARSE },
		{ "{\"eif_path\": 7, \"memory_mib\": 256, \"cpu_count\": 2}", E_CONFIG_PARSE },
		{ "{\"eif_path\": \"a.eif\", \"memory_mib\": null, \"cpu_count\": 2}", E_CONFIG_PARSE },
		{ "{\"eif_path\": \"a.eif\", \"memory_mib\": \"256\", \"cpu_count\": 2}", E_CONFIG_PARSE },
		{ "{\"eif_path\": \"a.eif\", \"memory_mib\": \"2G\", \"cpu_count\": 2}", E_CONFIG_PARSE },
		{ "{\"eif_path\": \"a.eif\", \"memory_mib\": 256.5, \"cpu_count\": 2}", E_CONFIG_PARSE },
		{ "{\"eif_path\": \"a.eif\", \"memory_mib\": 256.0, \"cpu_count\": 2}", E_CONFIG_PARSE },
		{ "{\"eif_path\": \"a.eif\", \"memory_mib\": 2e2, \"cpu_count\": 2}", E_CONFIG_PARSE },
		{ "{\"eif_path\": \"a.eif\", \"memory_mib\": -256, \"cpu_count\": 2}", E_CONFIG_PARSE },
		{ "{\"eif_path\": \"a.eif\", \"memory_mib\": 18446744073709551616, \"cpu_count\": 2}", E_CONFIG_PARSE },
		{ "{\"eif_path\": \"a.eif\", \"memory_mib\": 4294967297, \"cpu_count\": 2}", E_INVALID_ARG },
		/* bools default to false when absent, but null is not a bool */
		{ "{" CFG_BASE ", \"cpu_count\": 2, \"debug_mode\": null}", E_CONFIG_PARSE },
		{ "{" CFG_BASE ", \"cpu_count\": 2, \"debug_mode\": 1}", E_CONFIG_PARSE },
		{ "{" CFG_BASE ", \"cpu_count\": 2, \"attach_console\": \"true\"}", E_CONFIG_PARSE },
		/* cpu_count: u32 */
		{ "{" CFG_BASE ", \"cpu_count\": \"2\"}", E_CONFIG_PARSE },
		{ "{" CFG_BASE ", \"cpu_count\": 4294967296}", E_CONFIG_PARSE },
		{ "{" CFG_BASE ", \"cpu_count\": 1025}", E_INVALID_ARG },
		{ "{" CFG_BASE ", \"cpu_count\": null}", E_MISSING_ARG },
		{ "{" CFG_BASE "}", E_MISSING_ARG },
		/* cpu_ids: Vec<u32>, exclusive with cpu_count, then not supported */
		{ "{" CFG_BASE ", \"cpu_ids\": [1, 3]}", E_INVALID_ARG },
		{ "{" CFG_BASE ", \"cpu_ids\": [1, 3], \"cpu_count\": 2}", E_CONFLICTING_ARGS },
		{ "{" CFG_BASE ", \"cpu_ids\": \"1,3\"}", E_CONFIG_PARSE },
		{ "{" CFG_BASE ", \"cpu_ids\": [1, -3]}", E_CONFIG_PARSE },
		{ "{" CFG_BASE ", \"cpu_ids\": [4294967296]}", E_CONFIG_PARSE },
		/* enclave_cid: u64; enclave_name: String */
		{ "{" CFG_BASE ", \"cpu_count\": 2, \"enclave_cid\": \"16\"}", E_CONFIG_PARSE },
		{ "{" CFG_BASE ", \"cpu_count\": 2, \"enclave_cid\": 18446744073709551616}", E_CONFIG_PARSE },
		{ "{" CFG_BASE ", \"cpu_count\": 2, \"enclave_name\": 5}", E_CONFIG_PARSE },
		/* the file itself */
		{ "{" CFG_BASE ", \"cpu_count\": 2", E_CONFIG_PARSE },
		{ "{" CFG_BASE ", \"cpu_count\": 2, \"cpu_count\": 2}", E_CONFIG_PARSE },
		{ "[\"a.eif\", null, 256]", E_CONFIG_PARSE },
		{ "", E_CONFIG_PARSE },
	};
	struct run_options o;
	const char *json;
	char err[512];
	size_t i;
	int code;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&o, 0, sizeof(o));
		code = run_options_from_config(cases[i].json, strlen(cases[i].json), &o, err, sizeof(err));
		check(code == cases[i].code, "config: %s gives E%02d (got E%02d%s%s)", cases[i].json,
		      cases[i].code, code, code ? ": " : "", code ? err : "");
	}
	memset(&o, 0, sizeof(o));
	json = "{\"eif_path\": \"/x/a.eif\", \"memory_mib\": 300, \"cpu_count\": 4, \"enclave_cid\": 17, \"attach_console\": true, \"enclave_name\": \"n1\"}";
	code = run_options_from_config(json, strlen(json), &o, err, sizeof(err));
	check(!code && !strcmp(o.eif_path, "/x/a.eif") && o.memory_mib == 300 && o.cpu_count == 4 &&
	      o.enclave_cid == 17 && o.attach_console && o.debug_mode && !strcmp(o.enclave_name, "n1"),
	      "config: every key lands in its field");
	memset(&o, 0, sizeof(o));
	json = "{\"attach_console\": true, \"debug_mode\": false, " CFG_BASE ", \"cpu_count\": 2}";
	code = run_options_from_config(json, strlen(json), &o, err, sizeof(err));
	check(!code && o.attach_console && o.debug_mode,
	      "config: attach_console implies debug mode whatever the key order (debug_mode false after it)");
	memset(&o, 0, sizeof(o));
	json = "{" CFG_BASE ", \"cpu_count\": 2, \"debug_mode\": false}";
	code = run_options_from_config(json, strlen(json), &o, err, sizeof(err));
	check(!code && !o.attach_console && !o.debug_mode,
	      "config: debug_mode false, attach_console absent: neither");
	json = "{\"eif_path\": \"a.eif\", \"memory_mib\": \"x\", \"cpu_count\": 2}";
	code = run_options_from_config(json, strlen(json), &o, err, sizeof(err));
	check(code == E_CONFIG_PARSE && strstr(err, "memory_mib must be a number of MiB") &&
	      strstr(err, "not a string"), "config: a wrong type names the key, the type wanted and the type found: %s",
	      err);
}

/* --config files through `nectl run`'s own parsing (files in /tmp). */
static void test_config_file(void)
{
	static const struct {
		const char *json;
		const char *extra;
		int code;
	} cases[] = {
		{ "{" CFG_BASE ", \"cpu_count\": 2}", "", 0 },
		{ "{" CFG_BASE ", \"cpu_count\": 2}", " --attach-console --no-heartbeat", 0 },
		{ "{" CFG_BASE ", \"cpu_count\": 2}", " --memory 512", E_CONFLICTING_ARGS },
		{ "{" CFG_BASE ", \"cpu_count\": 2}", " --debug-mode", E_CONFLICTING_ARGS },
		{ "{" CFG_BASE ", \"cpu_count\": 2}", " --enclave-name x", E_CONFLICTING_ARGS },
		{ "{" CFG_BASE ", \"cpu_count\": 2, \"enclave_cid\": 3}", "", E_INVALID_ARG },
		{ "{" CFG_BASE ", \"cpu_count\": 0}", "", E_INVALID_ARG },
		{ "{\"eif_path\": \"a.eif\", \"memory_mib\": 0, \"cpu_count\": 2}", "", E_MEMORY_REQUEST_TOO_SMALL },
	};
	struct run_options o;
	char path[64], line[256], err[512];
	size_t i;
	FILE *f;
	int code;

	snprintf(path, sizeof(path), "/tmp/nectl-cfg-%d.json", (int)getpid());
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		f = fopen(path, "w");
		fputs(cases[i].json, f);
		fclose(f);
		snprintf(line, sizeof(line), "run --config=%s%s", path, cases[i].extra);
		code = parse_args(line, &o, err, sizeof(err));
		check(code == cases[i].code, "config file: %s%s gives E%02d (got E%02d%s%s)",
		      cases[i].json, cases[i].extra, cases[i].code, code, code ? ": " : "",
		      code ? err : "");
	}
	f = fopen(path, "w");
	fputs(cases[0].json, f);
	fclose(f);
	snprintf(line, sizeof(line), "run --config %s --attach-console", path);
	code = parse_args(line, &o, err, sizeof(err));
	check(!code && o.attach_console && o.debug_mode && o.memory_mib == 256,
	      "config file: --attach-console with --config attaches (nitro-cli accepts and ignores it)");
	unlink(path);
	code = parse_args("run --config /nonexistent/x.json", &o, err, sizeof(err));
	check(code == E_FILE_OPERATION, "config file: a missing file is E19, as nitro-cli (got E%02d)", code);
}

/* ------------------------------------------------------- hugepage planner */

static struct hp_pool pool_of(uint64_t free_1g, uint64_t free_2m)
{
	struct hp_pool p = { .nr_sizes = 2, .page_bytes = { GIB, 2 * MIB },
			     .free_pages = { free_1g, free_2m }, .total_pages = { free_1g, free_2m },
			     .node = -1, .dir = "/sys/kernel/mm/hugepages" };
	return p;
}

static void test_planner(void)
{
	static const struct {
		uint64_t free_1g, free_2m, need;
		int ok;
		uint64_t pages_1g, pages_2m;
	} cases[] = {
		/* nitro-cli #602: 256 MiB with 1 GiB pages free used to give 1 GiB. */
		{ 4, 512, 256 * MIB, 1, 0, 128 },
		{ 4, 512, 1 * GIB, 1, 1, 0 },
		{ 4, 512, 1 * GIB + 2 * MIB, 1, 1, 1 },
		{ 0, 512, 1 * GIB, 1, 0, 512 },		/* every page of the pool */
		{ 0, 512, 1 * GIB + 2 * MIB, 0, 0, 0 },	/* one past it */
		{ 2, 10, 2 * GIB + 20 * MIB, 1, 2, 10 },
		{ 1, 10, 256 * MIB, 1, 1, 0 },		/* small pages short: one 1 GiB page, no waste kept */
		{ 0, 0, 64 * MIB, 0, 0, 0 },
		{ 3, 0, 3 * GIB, 1, 3, 0 },
		{ 3, 0, 3 * GIB + 2 * MIB, 0, 0, 0 },
	};
	struct hp_pool pool;
	struct hp_plan plan;
	char msg[768];
	size_t i;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pool = pool_of(cases[i].free_1g, cases[i].free_2m);
		r = hp_plan(&pool, cases[i].need, &plan, msg, sizeof(msg));
		if (cases[i].ok)
			check(!r && plan.pages[0] == cases[i].pages_1g && plan.pages[1] == cases[i].pages_2m,
			      "hugepages: %llu MiB from %llu x 1G + %llu x 2M = %llu x 1G + %llu x 2M (got %llu + %llu)",
			      (unsigned long long)(cases[i].need / MIB), (unsigned long long)cases[i].free_1g,
			      (unsigned long long)cases[i].free_2m, (unsigned long long)cases[i].pages_1g,
			      (unsigned long long)cases[i].pages_2m, (unsigned long long)plan.pages[0],
			      (unsigned long long)plan.pages[1]);
		else
			check(r == -1 && strstr(msg, "missing") && strstr(msg, "2 MiB"),
			      "hugepages: %llu MiB from %llu x 1G + %llu x 2M refused, naming what is missing: %s",
			      (unsigned long long)(cases[i].need / MIB), (unsigned long long)cases[i].free_1g,
			      (unsigned long long)cases[i].free_2m, msg);
	}
	pool = pool_of(0, 100);
	pool.total_pages[1] = 120;
	hp_plan(&pool, 300 * MIB, &plan, msg, sizeof(msg));
	check(strstr(msg, "missing 100 MiB = 50 more 2 MiB pages") &&
	      strstr(msg, "echo 170 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"),
	      "hugepages: the shortage message gives the count to reserve: %s", msg);
}

/*
 * hp_prefault() on an ordinary mapping of base pages standing in for
 * hugepages of @stride base pages each (no transparent hugepages, which
 * would fault in neighbours too): which base pages are resident after it
 * (mincore): each "hugepage" at its first byte, and nothing else.  Returns
 * the number of mismatches, described in @msg.  (It checks how the pages
 * are shared out; with one usable CPU there is one share, the caller's.)
 */
static int prefault_mismatches(uint64_t pages, unsigned int stride, char *msg, size_t len)
{
	size_t base = sysconf(_SC_PAGESIZE), small = pages * stride + 1, i;
	unsigned char *vec = calloc(small, 1);
	char *p = mmap(NULL, small * base, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int bad = 0;

	snprintf(msg, len, "no mismatch");
	if (p == MAP_FAILED || !vec || madvise(p, small * base, MADV_NOHUGEPAGE) ||
	    mincore(p, small * base, vec)) {
		snprintf(msg, len, "cannot map or query %zu pages: %s", small, strerror(errno));
		bad = -1;
		goto out;
	}
	for (i = 0; i < small; i++)
		if (vec[i] & 1) {
			snprintf(msg, len, "page %zu resident before", i);
			bad = -1;
			goto out;
		}
	hp_prefault(p, base * stride, pages, -1);
	if (mincore(p, small * base, vec)) {
		snprintf(msg, len, "mincore: %s", strerror(errno));
		bad = -1;
		goto out;
	}
	for (i = 0; i < small; i++) {
		bool want = i < pages * stride && i % stride == 0;

		if ((vec[i] & 1) != want && !bad++)
			snprintf(msg, len, "page %zu: %s", i, want ? "not faulted in" : "faulted in");
	}
out:
	if (p != MAP_FAILED)
		munmap(p, small * base);
	free(vec);
	return bad;
}

static void test_prefault(void)
{
	static const struct { uint64_t pages; unsigned int stride; } cases[] = {
		{ 0, 1 }, { 1, 1 }, { 2, 1 }, { 37, 1 }, { 10, 2 }, { 9, 3 }, { 100, 1 },
	};
	char msg[128];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check(!prefault_mismatches(cases[i].pages, cases[i].stride, msg, sizeof(msg)),
		      "hugepages: prefault of %llu pages of %u base pages faults in the first byte of each, nothing else (%s)",
		      (unsigned long long)cases[i].pages, cases[i].stride, msg);
}

/* Writes the line @text to @root/@rel, making its directories. */
static void put_file(const char *root, const char *rel, const char *text)
{
	char path[512], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (slash = strchr(path + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0755);
		*slash = '/';
	}
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "%s\n", text);
		fclose(f);
	}
}

/* alloc_pool_node() on a made-up sysfs (NECTL_SYSFS). */
static void test_pool_node(void)
{
	static const struct {
		const char *ne_cpus, *node0, *node1;	/* NULL: no such file */
		const char *link;			/* a CPU's node link */
		int node;
	} cases[] = {
		/* the pool's CPUs are offline: only their links name the node */
		{ "4-5", "0-3", "", "cpu4/node1", 1 },
		{ "2,3", "0-1", "4-5", "cpu2/node0", 0 },
		{ "4-5", "0-3", "", "cpu5/node1", -1 },	/* the first CPU's counts */
		{ "4-5", "0-3", "4-5", NULL, 1 },	/* online: the node's list */
		{ "", "0-3", "4-5", "cpu4/node1", -1 },	/* an empty pool */
		{ NULL, "0-3", "4-5", "cpu4/node1", -1 },	/* no driver */
		{ "2-3", NULL, NULL, NULL, 0 },		/* no NUMA: one node */
		{ "9", "0-3", "4-5", NULL, -1 },	/* a CPU of no node */
	};
	char dir[] = "/tmp/nectl-sysfs.XXXXXX", cmd[600];
	char *old = getenv("NECTL_SYSFS") ? strdup(getenv("NECTL_SYSFS")) : NULL;
	size_t i;
	int got;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!mkdtemp(dir)) {
			check(0, "pool node: mkdtemp: %s", strerror(errno));
			break;
		}
		if (cases[i].ne_cpus)
			put_file(dir, "module/ne_kvm/parameters/ne_cpus", cases[i].ne_cpus);
		if (cases[i].node0) {
			put_file(dir, "devices/system/node/node0/cpulist", cases[i].node0);
			put_file(dir, "devices/system/node/node1/cpulist", cases[i].node1);
		}
		if (cases[i].link) {
			snprintf(cmd, sizeof(cmd), "devices/system/cpu/%s/subsystem", cases[i].link);
			put_file(dir, cmd, "");	/* makes cpuN/nodeM, as a directory */
		}
		setenv("NECTL_SYSFS", dir, 1);
		got = alloc_pool_node();
		check(got == cases[i].node,
		      "hugepages: the NUMA node of the pool '%s' is %d, node0 '%s', node1 '%s', %s (got %d)",
		      cases[i].ne_cpus ? cases[i].ne_cpus : "(no ne_cpus)", cases[i].node,
		      cases[i].node0 ? cases[i].node0 : "(none)",
		      cases[i].node1 ? cases[i].node1 : "(none)",
		      cases[i].link ? cases[i].link : "no link", got);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd))
			check(0, "pool node: cannot remove %s", dir);
		strcpy(dir, "/tmp/nectl-sysfs.XXXXXX");
	}
	if (old)
		setenv("NECTL_SYSFS", old, 1);
	else
		unsetenv("NECTL_SYSFS");
	free(old);
}

/*
 * The pages nectl plans from, on a made-up sysfs: the system's free and
 * unreserved ones (hp_pool_read), then those of the pool's node only
 * (hp_pool_limit_node; a node counts no reservations of its own).
 */
static void test_pool_limit_node(void)
{
	char dir[] = "/tmp/nectl-hp.XXXXXX", sys[96], node[96], msg[768], cmd[192];
	struct hp_pool pool;
	struct hp_plan plan;
	int r;

	if (!mkdtemp(dir)) {
		check(0, "hugepages per node: mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(sys, sizeof(sys), "%s/kernel/mm/hugepages", dir);
	snprintf(node, sizeof(node), "%s/devices/system/node/node1/hugepages", dir);
	/* the system: 40 free 2 MiB pages, 4 of them reserved; 2 free 1 GiB */
	put_file(dir, "kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "40");
	put_file(dir, "kernel/mm/hugepages/hugepages-2048kB/resv_hugepages", "4");
	put_file(dir, "kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "50");
	put_file(dir, "kernel/mm/hugepages/hugepages-1048576kB/free_hugepages", "2");
	put_file(dir, "kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", "2");
	/* node 1: 30 of the free 2 MiB pages, none of the 1 GiB ones */
	put_file(dir, "devices/system/node/node1/hugepages/hugepages-2048kB/free_hugepages", "30");
	put_file(dir, "devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages", "31");
	put_file(dir, "devices/system/node/node1/hugepages/hugepages-1048576kB/free_hugepages",
		 "0");

	r = hp_pool_read(sys, &pool);
	check(!r && pool.nr_sizes == 2 && pool.free_pages[0] == 2 && pool.free_pages[1] == 36,
	      "hugepages: the system's pool is 2 x 1G and 40 - 4 reserved x 2M (got %u sizes, %llu, %llu)",
	      pool.nr_sizes, (unsigned long long)pool.free_pages[0],
	      (unsigned long long)pool.free_pages[1]);
	r = hp_pool_limit_node(&pool, node, 1);
	check(!r && pool.free_pages[0] == 0 && pool.free_pages[1] == 30 && pool.total_pages[1] == 31,
	      "hugepages: node 1's share is 0 x 1G and 30 x 2M of 31 (got %llu, %llu of %llu)",
	      (unsigned long long)pool.free_pages[0], (unsigned long long)pool.free_pages[1],
	      (unsigned long long)pool.total_pages[1]);
	r = hp_plan(&pool, 48 * MIB, &plan, msg, sizeof(msg));
	check(!r && plan.pages[0] == 0 && plan.pages[1] == 24,
	      "hugepages: 48 MiB on node 1 is 24 x 2M (got %d: %llu x 1G, %llu x 2M)", r,
	      (unsigned long long)plan.pages[0], (unsigned long long)plan.pages[1]);
	r = hp_plan(&pool, 1024 * MIB, &plan, msg, sizeof(msg));
	snprintf(cmd, sizeof(cmd), "echo 513 > %s/hugepages-2048kB/nr_hugepages", node);
	check(r == -1 && strstr(msg, "on NUMA node 1 (the CPU pool's)") &&
	      strstr(msg, "missing 964 MiB = 482 more 2 MiB pages") && strstr(msg, cmd),
	      "hugepages: 1 GiB on node 1 is refused although the system has it free, naming the node's file: %s",
	      msg);
	/* a node 1 reservations could eat: the system's unreserved count bounds it */
	put_file(dir, "kernel/mm/hugepages/hugepages-2048kB/resv_hugepages", "20");
	hp_pool_read(sys, &pool);
	hp_pool_limit_node(&pool, node, 1);
	check(pool.free_pages[1] == 20,
	      "hugepages: node 1's 30 free pages count as 20 when the system has 20 unreserved (got %llu)",
	      (unsigned long long)pool.free_pages[1]);
	snprintf(node, sizeof(node), "%s/devices/system/node/node7/hugepages", dir);
	check(hp_pool_limit_node(&pool, node, 7) == -1 && pool.node == 1,
	      "hugepages: a node without a hugepages directory leaves the pool as it was");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		check(0, "hugepages per node: cannot remove %s", dir);
}

/* ------------------------------------------------------------ allocator */

static void test_alloc_config(void)
{
	static const struct {
		const char *text, *error;	/* error: NULL, or what msg must name */
		uint64_t memory_mib;
		unsigned int cpu_count;
		const char *cpu_pool;
	} cases[] = {
		/* nitro-cli's own file, comments and all */
		{ "---\n# Enclave configuration file.\n#\n# How much memory to allocate for enclaves (in MiB).\n"
		  "memory_mib: 512\n#\n# How many CPUs to reserve for enclaves.\ncpu_count: 2\n#\n"
		  "# cpu_pool: 2,3,6-9\n", NULL, 512, 2, "" },
		{ "memory_mib: 1024\ncpu_pool: 2,3,6-9\n", NULL, 1024, 0, "2,3,6-9" },
		{ "---\r\nmemory_mib: \"256\"   # MiB\r\ncpu_pool: '1-2'\r\n...\nignored: 1\n", NULL, 256, 0, "1-2" },
		{ "", "memory_mib is missing", 0, 0, NULL },
		{ "---\ncpu_count: 2\n", "memory_mib is missing", 0, 0, NULL },
		{ "memory_mib: 512\n", "neither cpu_count nor cpu_pool", 0, 0, NULL },
		{ "memory_mib: 512\ncpu_count: 2\ncpu_pool: 2,3\n", "both given", 0, 0, NULL },
		{ "memory_mib: 512\ncpu_cnt: 2\n", "line 2: unknown key \"cpu_cnt\"", 0, 0, NULL },
		{ "memory_mib:\ncpu_count: 2\n", "line 1: memory_mib has no value", 0, 0, NULL },
		{ "memory_mib: 512M\ncpu_count: 2\n", "line 1: memory_mib \"512M\"", 0, 0, NULL },
		{ "memory_mib: 0\ncpu_count: 2\n", "line 1: memory_mib \"0\"", 0, 0, NULL },
		{ "memory_mib: 512\ncpu_count: -2\n", "line 2: cpu_count \"-2\"", 0, 0, NULL },
		{ "memory_mib: 512\ncpu_pool: 3-1\n", "line 2: cpu_pool \"3-1\"", 0, 0, NULL },
		{ "memory_mib: 512\nmemory_mib: 256\ncpu_count: 2\n", "line 2: memory_mib given twice", 0, 0, NULL },
		{ "memory_mib: 512\n  cpu_count: 2\n", "line 2: indented", 0, 0, NULL },
		{ "memory_mib 512\ncpu_count: 2\n", "line 1: \"memory_mib 512\" is not", 0, 0, NULL },
		{ "memory_mib: 512\n---\ncpu_count: 2\n", "line 2: a second document", 0, 0, NULL },
	};
	struct alloc_config cfg;
	char msg[512];
	size_t i;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = alloc_config_parse(cases[i].text, &cfg, msg, sizeof(msg));
		if (!cases[i].error)
			check(!r && cfg.memory_mib == cases[i].memory_mib &&
			      cfg.cpu_count == cases[i].cpu_count && !strcmp(cfg.cpu_pool, cases[i].cpu_pool),
			      "allocator.yaml case %zu: memory_mib %llu, cpu_count %u, cpu_pool \"%s\" (%s)",
			      i, (unsigned long long)cfg.memory_mib, cfg.cpu_count, cfg.cpu_pool,
			      r ? msg : "read");
		else
			check(r == -1 && strstr(msg, cases[i].error),
			      "allocator.yaml case %zu refused: \"%s\" names \"%s\"", i, msg, cases[i].error);
	}
}

static void test_alloc_cores(void)
{
	/* 8 CPUs, 2 threads per core (siblings n and n+4), node 0: 0-1,4-5; node 1: 2-3,6-7 */
	struct alloc_cpu two_nodes[8];
	/* 6 CPUs without SMT on one node */
	struct alloc_cpu flat[6];
	char pool[256], msg[256];
	unsigned int i;
	int r;

	for (i = 0; i < 8; i++)
		two_nodes[i] = (struct alloc_cpu){ .id = i, .node = (i % 4) / 2, .core = i % 4,
						   .threads = 2 };
	for (i = 0; i < 6; i++)
		flat[i] = (struct alloc_cpu){ .id = i, .node = 0, .core = i, .threads = 1 };

	r = alloc_pick_cores(two_nodes, 8, 2, pool, sizeof(pool), msg, sizeof(msg));
	check(!r && !strcmp(pool, "1,5"), "cores: 2 CPUs = CPU 0's node, not its core: %s", pool);
	r = alloc_pick_cores(two_nodes, 8, 4, pool, sizeof(pool), msg, sizeof(msg));
	check(r == -1 && strstr(msg, "node 0 of CPU 0 has 2 CPUs"),
	      "cores: 4 CPUs refused, CPU 0's node has one other core: %s", msg);
	r = alloc_pick_cores(two_nodes, 8, 1, pool, sizeof(pool), msg, sizeof(msg));
	check(r == -1 && strstr(msg, "not a whole number of cores (2 threads each)"),
	      "cores: 1 CPU refused, half a core: %s", msg);
	r = alloc_pick_cores(flat, 6, 3, pool, sizeof(pool), msg, sizeof(msg));
	check(!r && !strcmp(pool, "1,2,3"), "cores: without SMT, the lowest CPUs but 0: %s", pool);
	r = alloc_pick_cores(flat, 6, 5, pool, sizeof(pool), msg, sizeof(msg));
	check(!r && !strcmp(pool, "1,2,3,4,5"), "cores: every CPU but 0: %s", pool);
	r = alloc_pick_cores(flat, 6, 6, pool, sizeof(pool), msg, sizeof(msg));
	check(r == -1, "cores: CPU 0 is never taken: %s", msg);
	/* A core with an offline thread (node -2 from read_topology) is skipped. */
	flat[1].node = -2;
	r = alloc_pick_cores(flat, 6, 2, pool, sizeof(pool), msg, sizeof(msg));
	check(!r && !strcmp(pool, "2,3"), "cores: a core not whole is skipped: %s", pool);
	r = alloc_pick_cores(flat + 1, 5, 2, pool, sizeof(pool), msg, sizeof(msg));
	check(r == -1 && strstr(msg, "CPU 0"), "cores: no CPU 0 listed: %s", msg);
}

struct fake_kernel {
	uint64_t count[HP_MAX_SIZES], cap[HP_MAX_SIZES];
	unsigned int sets;
};

static int64_t fake_set(void *ctx, unsigned int i, uint64_t count)
{
	struct fake_kernel *k = ctx;

	k->sets++;
	k->count[i] = count < k->cap[i] ? count : k->cap[i];
	return k->count[i];
}

static void test_alloc_reserve(void)
{
	static const struct {
		uint64_t cap_1g, cap_2m, need, old_1g, old_2m;
		int ok;
		uint64_t pages_1g, pages_2m;
	} cases[] = {
		{ 8, 4096, 512 * MIB, 1, 0, 1, 0, 256 },	/* the old 1 GiB page goes */
		{ 8, 4096, 3 * GIB + 6 * MIB, 0, 0, 1, 3, 3 },
		{ 8, 4096, 1 * MIB, 0, 0, 1, 0, 1 },		/* rounded up to 2 MiB */
		{ 1, 4096, 3 * GIB, 0, 0, 1, 1, 1024 },		/* 1 GiB pages short: 2 MiB ones */
		{ 0, 100, 256 * MIB, 0, 7, 0, 0, 7 },		/* short: the old counts back */
	};
	struct fake_kernel k;
	struct hp_pool pool;
	uint64_t got[HP_MAX_SIZES];
	char msg[512];
	size_t i;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&k, 0, sizeof(k));
		pool = pool_of(0, 0);
		pool.total_pages[0] = k.count[0] = cases[i].old_1g;
		pool.total_pages[1] = k.count[1] = cases[i].old_2m;
		k.cap[0] = cases[i].cap_1g;
		k.cap[1] = cases[i].cap_2m;
		r = hp_reserve(&pool, cases[i].need, fake_set, &k, got, msg, sizeof(msg));
		if (cases[i].ok)
			check(!r && k.count[0] == cases[i].pages_1g && k.count[1] == cases[i].pages_2m &&
			      got[0] == k.count[0] && got[1] == k.count[1],
			      "reserve: %llu MiB = %llu x 1G + %llu x 2M (kernel: %llu + %llu)",
			      (unsigned long long)(cases[i].need / MIB),
			      (unsigned long long)cases[i].pages_1g, (unsigned long long)cases[i].pages_2m,
			      (unsigned long long)k.count[0], (unsigned long long)k.count[1]);
		else
			check(r == -1 && k.count[0] == cases[i].old_1g && k.count[1] == cases[i].old_2m &&
			      strstr(msg, "not enough hugepages: 256 MiB asked, the kernel reserved 200 MiB") &&
			      strstr(msg, "56 MiB missing"),
			      "reserve: short, the old counts back (%llu + %llu), and says so: %s",
			      (unsigned long long)k.count[0], (unsigned long long)k.count[1], msg);
	}
}

/* ------------------------------------------------------------ misc */

static void test_misc(void)
{
	unsigned int ids[8];
	char buf[200];
	int n, saved;

	n = parse_cpu_list("2-3,5", ids, 8);
	check(n == 3 && ids[0] == 2 && ids[1] == 3 && ids[2] == 5, "cpu list: 2-3,5");
	check(parse_cpu_list("", ids, 8) == 0, "cpu list: empty");
	check(parse_cpu_list("0-8", ids, 8) == -1, "cpu list: 9 ids into 8 slots refused");
	check(parse_cpu_list("0-7", ids, 8) == 8, "cpu list: 8 ids into 8 slots");
	check(parse_cpu_list("3-2", ids, 8) == -1 && parse_cpu_list("a", ids, 8) == -1 &&
	      parse_cpu_list("1,,2", ids, 8) == -1, "cpu list: malformed lists refused");
	check(heartbeat_timeout_seconds(10 << 20, 64 << 20) == 180, "heartbeat: minimum 180 s");
	check(heartbeat_timeout_seconds(10 * GIB, 128 * GIB) == 360,
	      "heartbeat: 10 GiB EIF, 128 GiB memory gives 360 s");
	check(heartbeat_timeout_seconds(6 * GIB, 100 * GIB) == 180 &&
	      heartbeat_timeout_seconds(6 * GIB + 1, 100 * GIB + 1) == 360,
	      "heartbeat: unit boundaries (6 GiB, 100 GiB)");
	enclave_id(0x1a2b, buf, sizeof(buf));
	check(strstr(buf, "-enc1a2b") && enclave_id_matches(0x1a2b, buf) &&
	      enclave_id_matches(0x1a2b, "enc1a2b") && enclave_id_matches(0x1a2b, "1a2b") &&
	      !enclave_id_matches(0x1a2b, "enc1a2") && !enclave_id_matches(0x1a2b, "xenc1a2b"),
	      "enclave id: %s and its short forms match, others do not", buf);
	fflush(stdout);
	saved = dup(1);
	dup2(open("/dev/null", O_WRONLY | O_CLOEXEC), 1);	/* explain prints its text */
	n = nectl_explain("E27") == 0 && nectl_explain("27") == 0 && nectl_explain("E99") == -1 &&
	    nectl_explain("") == -1 && nectl_explain("E2x") == -1;
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	check(n, "explain: known and unknown codes");
}

/* ---------------------------------------------------------- attestation */

static void test_attest(void)
{
	static const uint8_t prot[] = { 0xa1, 0x01, 0x38, 0x22 }, body[] = { 'a', 'b' };
	static const char expected[] = "846a5369676e61747572653144a101382240426162";
	struct att_doc doc = { .protected_hdr = { prot, 4 }, .payload = { body, 2 } };
	struct att_result res = { .chain_len = 5 };
	uint8_t out[4], *tbs;
	char hex[64], pos[32];
	size_t len = 99, n;
	int i, j, distinct = 1;

	check(parse_hex("00aBfF", out, 4, &len) == 0 && len == 3 && out[0] == 0 && out[1] == 0xab &&
	      out[2] == 0xff, "hex: 00aBfF is 3 bytes");
	check(parse_hex("", out, 4, &len) == 0 && len == 0, "hex: empty is 0 bytes");
	check(parse_hex("abc", out, 4, &len) == -1 && parse_hex("0x00", out, 4, &len) == -1 &&
	      parse_hex("g0", out, 4, &len) == -1 && parse_hex("00 11", out, 4, &len) == -1,
	      "hex: odd length, 0x prefix, non-hex digits and spaces refused");
	check(parse_hex("0011223344", out, 4, &len) == -2 && parse_hex("00112233", out, 4, &len) == 0,
	      "hex: 5 bytes into 4 refused, 4 fit");
	tbs = cose_sig_structure(&doc, &n);
	if (tbs)
		eif_hex(tbs, n, hex);
	check(tbs && !strcmp(hex, expected), "cose: Sig_structure of {ES384} and \"ab\" is %s",
	      tbs ? hex : "NULL");
	free(tbs);
	for (i = 0; i < ATT_NR_STEPS; i++)
		for (j = 0; j < i; j++)
			distinct &= !!strcmp(att_step_name(i), att_step_name(j));
	check(distinct && att_step_error(ATT_STEP_COSE) == E_ATTESTATION_MALFORMED &&
	      att_step_error(ATT_STEP_VALIDITY) == E_ATTESTATION_VALIDITY &&
	      att_step_error(ATT_STEP_CHAIN_SIGNATURES) == E_ATTESTATION_CHAIN &&
	      att_step_error(ATT_STEP_USER_DATA) == E_ATTESTATION_USER_DATA,
	      "attest: step names are distinct and map to their error codes");
	att_chain_position(&res, 0, hex, sizeof(hex));
	att_chain_position(&res, 1, pos, sizeof(pos));
	check(!strcmp(hex, "certificate (leaf)") && !strcmp(pos, "cabundle[3]"),
	      "attest: chain index 0 is the leaf, 1 is cabundle[3] of 4");
	att_chain_position(&res, 4, pos, sizeof(pos));
	check(!strcmp(pos, "pinned root"), "attest: the last chain index is the pinned root");
}

/* ---------------------------------------------------------- EIF signature */

static size_t unhex(const char *hex, uint8_t *out)
{
	size_t n = 0;
	unsigned int byte;

	while (hex[0] && hex[1] && sscanf(hex, "%2x", &byte) == 1) {
		out[n++] = (uint8_t)byte;
		hex += 2;
	}
	return n;
}

/* serde_cbor's shapes: shortest heads, Vec<u8> as an array of integers. */
static void test_eif_sig_encoding(void)
{
	static const uint8_t value[] = { 0x00, 0x17, 0x18, 0xff };
	/* {"register_index": 0, "register_value": [0, 23, 24, 255]} */
	static const char payload_hex[] =
		"a26e72656769737465725f696e646578006e72656769737465725f76616c7565"
		"8400171818 18ff";
	static const struct { int alg; const char *hex; } prot[] = {
		{ -7, "a10126" }, { -35, "a1013822" }, { -36, "a1013823" },
	};
	char want[128], got[256];
	uint8_t *p;
	size_t n, i, j;

	for (i = j = 0; payload_hex[i]; i++)
		if (payload_hex[i] != ' ')
			want[j++] = payload_hex[i];
	want[j] = '\0';
	p = eif_sig_pcr_payload(0, value, sizeof(value), &n);
	if (p)
		eif_hex(p, n, got);
	check(p && !strcmp(got, want), "eif sig: PcrInfo {0, [0, 23, 24, 255]} is %s", p ? got : "NULL");
	free(p);
	for (i = 0; i < 3; i++) {
		p = eif_sig_protected_hdr(prot[i].alg, &n);
		if (p)
			eif_hex(p, n, got);
		check(p && !strcmp(got, prot[i].hex), "eif sig: protected header of alg %d is %s",
		      prot[i].alg, prot[i].hex);
		free(p);
	}
}

static int decode_hex(const char *hex, struct eif_sig_entry *e)
{
	uint8_t buf[256];
	char err[256];
	size_t n = unhex(hex, buf);
	int r = eif_sig_section_decode(buf, n, e, err, sizeof(err));

	return r;
}

/* [{"signing_certificate": CERT, "signature": SIG}] with the two given as hex CBOR. */
static void section_hex(const char *cert, const char *sig, const char *extra, char *out, size_t len)
{
	snprintf(out, len, "81a%c7373%s%s6973%s%s%s", extra[0] ? '3' : '2',
		 "69676e696e675f6365727469666963617465", cert, "69676e6174757265", sig, extra);
}

static void test_eif_sig_section(void)
{
	static const struct { const char *cert, *sig, *extra, *what; int ok; } cases[] = {
		{ "820102", "8103", "", "arrays of bytes", 1 },
		{ "820102", "8103", "63666f6f01", "an unknown key (skipped, as serde does)", 1 },
		{ "420102", "8103", "", "a byte string instead of an array of bytes", 0 },
		{ "8201190100", "8103", "", "an element above 255", 0 },
		{ "820120", "8103", "", "a negative element", 0 },
		{ "820102", "8163616263", "", "a text element", 0 },
	};
	struct eif_sig_entry e;
	char hex[512];
	size_t i;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		section_hex(cases[i].cert, cases[i].sig, cases[i].extra, hex, sizeof(hex));
		r = decode_hex(hex, &e);
		check((r == 0) == cases[i].ok && (!cases[i].ok ||
		      (e.pem.len == 2 && e.pem.data[1] == 2 && e.cose.len == 1 && e.cose.data[0] == 3)),
		      "eif sig: section with %s %s", cases[i].what, cases[i].ok ? "decodes" : "is refused");
		eif_sig_entry_release(&e);
	}
	r = decode_hex("80", &e);
	eif_sig_entry_release(&e);
	check(r, "eif sig: an empty array is refused");
	r = decode_hex("818101", &e);
	eif_sig_entry_release(&e);
	check(r, "eif sig: an entry that is not a map is refused");
	r = decode_hex("81a1697369676e61747572658101", &e);
	eif_sig_entry_release(&e);
	check(r, "eif sig: an entry without signing_certificate is refused");
	r = decode_hex("81a2697369676e61747572658101697369676e61747572658101", &e);
	eif_sig_entry_release(&e);
	check(r, "eif sig: a repeated key is refused");
	section_hex("820102", "8103", "", hex, sizeof(hex));
	strcat(hex, "00");
	r = decode_hex(hex, &e);
	eif_sig_entry_release(&e);
	check(r, "eif sig: bytes after the section's CBOR are refused");
	r = decode_hex("9bffffffffffffffff", &e);
	eif_sig_entry_release(&e);
	check(r, "eif sig: an array declaring 2^64-1 items is refused before allocation");
}

static void test_eif_sig_cose(void)
{
	static const struct { const char *hex, *what; int ok, tagged; } cases[] = {
		{ "8443a10126a0426869420102", "untagged", 1, 0 },
		{ "d28443a10126a0426869420102", "tag 18 in one byte", 1, 1 },
		{ "d8128443a10126a0426869420102", "tag 18 in two bytes", 1, 1 },
		{ "d38443a10126a0426869420102", "tag 19", 0, 0 },
		{ "d2d8128443a10126a0426869420102", "tag 18 twice", 0, 0 },
		{ "8343a10126a04268694201", "an array of 3", 0, 0 },
		{ "8443a10126804268694201 02", "an array as unprotected header", 0, 0 },
		{ "84a10126a0426869420102", "a map as protected header", 0, 0 },
	};
	struct eif_cose cose;
	uint8_t buf[64];
	char err[256], hex[64];
	size_t i, j, n;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (j = n = 0; cases[i].hex[j] && n + 1 < sizeof(hex); j++)
			if (cases[i].hex[j] != ' ')
				hex[n++] = cases[i].hex[j];
		hex[n] = '\0';
		n = unhex(hex, buf);
		r = eif_sig_cose_decode(buf, n, &cose, err, sizeof(err));
		check((r == 0) == cases[i].ok && (!cases[i].ok || (cose.tagged == cases[i].tagged &&
		      cose.payload.len == 2 && cose.signature.len == 2 && cose.protected_hdr.len == 3)),
		      "eif sig: COSE_Sign1 %s %s", cases[i].what, cases[i].ok ? "decodes" : "is refused");
		eif_cose_release(&cose);
	}
}

static bool alg_of_hex(const char *hex, int64_t *alg)
{
	uint8_t buf[32];
	struct eif_sig_bytes b = { buf, unhex(hex, buf) };

	return eif_sig_protected_alg(&b, alg);
}

static void test_eif_sig_alg(void)
{
	int64_t alg = 0;

	check(alg_of_hex("a1013822", &alg) && alg == -35, "eif sig: alg of {1: -35} is -35");
	check(alg_of_hex("a2046161013823", &alg) && alg == -36, "eif sig: alg of {4: 'a', 1: -36} is -36");
	check(!alg_of_hex("a0", &alg) && !alg_of_hex("a1016161", &alg) && !alg_of_hex("", &alg) &&
	      !alg_of_hex("a1013b7fffffffffffffff", &alg) && !alg_of_hex("ff", &alg),
	      "eif sig: no alg in {}, {1: 'a'}, nothing, a huge negative, not CBOR");
}

static void test_eif_sig_ecdsa(void)
{
	static const char *const curves[] = { "P-256", "P-384", "P-521" };
	static const uint8_t tbs[] = "Sig_structure stand-in";
	const struct eif_sig_alg *alg;
	struct eif_sig_bytes sig;
	EVP_PKEY *key;
	size_t i;
	bool ok;

	for (i = 0; i < 3; i++) {
		key = EVP_EC_gen(curves[i]);
		alg = eif_sig_alg_of(key);
		sig.data = alg ? eif_sig_ecdsa_sign(key, alg, tbs, sizeof(tbs)) : NULL;
		sig.len = alg ? 2 * alg->coord_size : 0;
		ok = sig.data && eif_sig_ecdsa_verify(key, alg, tbs, sizeof(tbs), &sig);
		if (ok) {
			sig.data[sig.len - 1] ^= 1;
			ok = !eif_sig_ecdsa_verify(key, alg, tbs, sizeof(tbs), &sig);
			sig.data[sig.len - 1] ^= 1;
			sig.len--;
			ok = ok && !eif_sig_ecdsa_verify(key, alg, tbs, sizeof(tbs), &sig);
		}
		check(ok, "eif sig: %s r||s of %zu bytes verifies, and not with a changed or shortened signature",
		      alg ? alg->name : curves[i], alg ? 2 * alg->coord_size : 0);
		free(sig.data);
		EVP_PKEY_free(key);
	}
	key = EVP_RSA_gen(1024);
	check(key && !eif_sig_alg_of(key), "eif sig: no algorithm for an RSA key");
	EVP_PKEY_free(key);
	key = EVP_EC_gen("secp256k1");
	check(key && !eif_sig_alg_of(key), "eif sig: no algorithm for a secp256k1 key");
	EVP_PKEY_free(key);
}

static uint8_t *read_all(const char *path, size_t max, size_t *len)
{
	uint8_t *buf = malloc(max);
	FILE *f = fopen(path, "re");

	if (!buf || !f) {
		free(buf);
		if (f)
			fclose(f);
		return NULL;
	}
	*len = fread(buf, 1, max, f);
	fclose(f);
	return buf;
}

static bool verify_bytes(const uint8_t *buf, size_t len, const struct att_options *o, int *step)
{
	struct att_result res;
	struct att_doc doc;
	bool ok = att_verify(buf, len, o, &doc, &res);

	*step = res.failed_step;
	att_result_release(&res);
	cose_release(&doc);
	return ok;
}

/*
 * The document's bytes at the positions listed in POSITIONS (one decimal
 * per line), each changed alone (XOR with a non-zero value that varies with
 * the position) and verified at the document's time: none may pass.
 * In-process, because thousands of nectl runs take minutes.
 */
static int attest_flips(const char *doc_path, const char *root_path, const char *positions)
{
	static const struct att_expect none;
	size_t len, pos, flips = 0, accepted = 0, per_step[ATT_NR_STEPS] = { 0 };
	struct att_options o = { NULL, true, 0, &none };
	uint8_t *buf = read_all(doc_path, COSE_MAX_DOCUMENT, &len);
	FILE *f = fopen(root_path, "re"), *list = fopen(positions, "re");
	int step;

	if (f) {
		o.root = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (!buf || !o.root || !list || !verify_bytes(buf, len, &o, &step)) {
		printf("cannot read the inputs, or the unchanged document does not verify\n");
		return 1;
	}
	while (fscanf(list, "%zu", &pos) == 1 && pos < len) {
		uint8_t saved = buf[pos];

		buf[pos] ^= (uint8_t)(pos * 167 % 255 + 1);
		flips++;
		if (verify_bytes(buf, len, &o, &step))
			accepted++;
		else
			per_step[step]++;
		buf[pos] = saved;
	}
	fclose(list);
	printf("flips %zu accepted %zu steps", flips, accepted);
	for (step = 0; step < ATT_NR_STEPS; step++)
		if (per_step[step])
			printf(" %s=%zu", att_step_name(step), per_step[step]);
	printf("\n");
	X509_free(o.root);
	free(buf);
	return accepted ? 1 : 0;
}

/* ---------------------------------------------- heartbeat (over AF_UNIX) */

enum peer_action { PEER_NONE, PEER_GOOD, PEER_WRONG_BYTE, PEER_SILENT };

/* A stand-in for the enclave's init: connect, send a byte, expect it back. */
static pid_t start_peer(const struct sockaddr_un *addr, enum peer_action action)
{
	unsigned char byte = action == PEER_WRONG_BYTE ? 0x00 : 0xB7, echo = 0;
	pid_t pid = fork();
	int fd;

	if (pid != 0)
		return pid;
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)))
		_exit(2);
	if (action == PEER_SILENT) {
		/* Says nothing; returns when the parent gives up and closes. */
		_exit(read(fd, &echo, 1) == 0 ? 0 : 5);
	}
	if (write(fd, &byte, 1) != 1)
		_exit(3);
	/* Exit 0 only if the parent echoed the heartbeat. */
	_exit(read(fd, &echo, 1) == 1 && echo == 0xB7 ? 0 : 4);
}

static void test_heartbeat(void)
{
	static const struct {
		enum peer_action action;
		int code;
		const char *reason;
	} cases[] = {
		{ PEER_GOOD, 0, "" },
		{ PEER_WRONG_BYTE, E_BOOT, "sent 0x00 instead of the 0xB7" },
		{ PEER_NONE, E_BOOT, "no heartbeat from the enclave within 1 s" },
		{ PEER_SILENT, E_BOOT, "sent no heartbeat byte within 1 s" },
	};
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char err[512];
	int sig[2];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int lfd = socket(AF_UNIX, SOCK_STREAM, 0), code, status = 0;
		pid_t peer = -1;
		time_t start = time(NULL);

		snprintf(addr.sun_path, sizeof(addr.sun_path), "/tmp/nectl-hb-%d-%zu", (int)getpid(), i);
		unlink(addr.sun_path);
		if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) || listen(lfd, 1)) {
			check(0, "heartbeat: cannot set up the AF_UNIX listener");
			continue;
		}
		if (cases[i].action != PEER_NONE)
			peer = start_peer(&addr, cases[i].action);
		err[0] = '\0';
		code = heartbeat_wait(lfd, -1, -1, 16, 1, err, sizeof(err));
		if (peer > 0)
			waitpid(peer, &status, 0);
		check(code == cases[i].code && strstr(err, cases[i].reason) &&
		      (cases[i].action != PEER_GOOD || (WIFEXITED(status) && !WEXITSTATUS(status))) &&
		      (code == 0 || cases[i].action == PEER_WRONG_BYTE || time(NULL) - start >= 1),
		      "heartbeat: peer %d gives E%02d %s(got E%02d: %s)", cases[i].action,
		      cases[i].code, cases[i].action == PEER_GOOD ? "and gets 0xB7 back " : "",
		      code, err);
		close(lfd);
		unlink(addr.sun_path);
	}
	/* A termination request (signalfd readable) ends the wait at once. */
	if (pipe(sig) == 0) {
		int lfd = socket(AF_UNIX, SOCK_STREAM, 0), code;

		snprintf(addr.sun_path, sizeof(addr.sun_path), "/tmp/nectl-hb-%d-sig", (int)getpid());
		unlink(addr.sun_path);
		bind(lfd, (struct sockaddr *)&addr, sizeof(addr));
		listen(lfd, 1);
		if (write(sig[1], "x", 1) != 1)
			check(0, "heartbeat: pipe write");
		code = heartbeat_wait(lfd, sig[0], -1, 16, 30, err, sizeof(err));
		check(code == E_BOOT && strstr(err, "interrupted"),
		      "heartbeat: a termination request interrupts the wait (%s)", err);
		close(lfd);
		close(sig[0]);
		close(sig[1]);
		unlink(addr.sun_path);
	}
}

/* console_attach's first line goes to stdout, as nitro-cli's println!, even when it fails. */
static void test_console_lines(void)
{
	char path[64], text[256] = "";
	int saved, saved_err, fd, code;
	ssize_t n;

	snprintf(path, sizeof(path), "/tmp/nectl-console-%d", (int)getpid());
	fflush(stdout);
	saved = dup(1);
	saved_err = dup(2);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 1);
	dup2(open("/dev/null", O_WRONLY | O_CLOEXEC), 2);	/* the E47 line */
	code = console_attach(UINT64_MAX, 0);	/* no port for this CID: E47, no network */
	fflush(stdout);
	dup2(saved, 1);
	dup2(saved_err, 2);
	close(saved);
	close(saved_err);
	n = pread(fd, text, sizeof(text) - 1, 0);
	text[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	check(code == E_INTEGER_PARSE &&
	      !strcmp(text, "Connecting to the console for enclave 18446744073709551615...\n"),
	      "console: 'Connecting to the console for enclave N...' on stdout first, then E47 for a CID without a port (got E%02d, '%s')",
	      code, text);
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "attest-flips"))
		return attest_flips(argv[2], argv[3], argv[4]);
	test_json();
	test_json_depth();
	test_json_size();
	test_json_omitted();
	test_comm_printable();
	test_registry_unreadable();
	test_run_args();
	test_config();
	test_config_file();
	test_planner();
	test_prefault();
	test_pool_node();
	test_pool_limit_node();
	test_alloc_config();
	test_alloc_cores();
	test_alloc_reserve();
	test_misc();
	test_heartbeat();
	test_console_lines();
	test_attest();
	test_eif_sig_encoding();
	test_eif_sig_section();
	test_eif_sig_cose();
	test_eif_sig_alg();
	test_eif_sig_ecdsa();
	printf("# %d tests, %d failed\n", test_number, failures);
	return failures ? 1 : 0;
}
