// SPDX-License-Identifier: GPL-2.0
/* Parsing of `nectl run` arguments and of nitro-cli style --config files. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "errors.h"
#include "json.h"

/* Bigger config files are not configs. */
#define CONFIG_MAX_SIZE		(64 * 1024)

static int report(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int report(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

int parse_u64(const char *s, uint64_t max, bool allow_hex, uint64_t *out)
{
	unsigned long long v;
	int base = 10;
	const char *p = s;
	char *end;

	if (allow_hex && (s[0] == '0') && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		p += 2;
	}
	if (!*p)
		return -1;
	for (end = (char *)p; *end; end++)
		if (!(base == 16 ? !!strchr("0123456789abcdefABCDEF", *end) : (*end >= '0' && *end <= '9')))
			return -1;
	errno = 0;
	v = strtoull(p, &end, base);
	if (errno == ERANGE || v > max)
		return -2;
	*out = v;
	return 0;
}

int parse_memory(const char *s, uint64_t *mib)
{
	static const struct {
		const char *unit;
		uint64_t mib;
	} units[] = {
		{ "", 1 }, { "M", 1 }, { "m", 1 }, { "G", 1ULL << 10 }, { "g", 1ULL << 10 },
		{ "T", 1ULL << 20 }, { "t", 1ULL << 20 },
	};
	size_t digits = strspn(s, "0123456789"), i;
	char number[32];
	uint64_t n;

	if (!digits)
		return -1;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(s + digits, units[i].unit))
			break;
	if (i == sizeof(units) / sizeof(units[0]))
		return -2;
	if (digits >= sizeof(number))
		return -3;
	memcpy(number, s, digits);
	number[digits] = '\0';
	if (parse_u64(number, NECTL_MAX_MEMORY_MIB, false, &n) ||
	    n > NECTL_MAX_MEMORY_MIB / units[i].mib)
		return -3;
	*mib = n * units[i].mib;
	return 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int parse_hex(const char *s, uint8_t *out, size_t max, size_t *len)
{
	size_t n = strlen(s), i;

	if (n % 2)
		return -1;
	for (i = 0; i < n; i++)
		if (hex_digit(s[i]) < 0)
			return -1;
	if (n / 2 > max)
		return -2;
	for (i = 0; i < n / 2; i++)
		out[i] = hex_digit(s[2 * i]) << 4 | hex_digit(s[2 * i + 1]);
	*len = n / 2;
	return 0;
}

bool enclave_name_valid(const char *name)
{
	size_t len = strlen(name), i;

	if (len == 0 || len > NECTL_NAME_MAX)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f || name[i] == '/')
			return false;
	return true;
}

bool enclave_cid_valid(uint64_t cid)
{
	/* 1 and 2 are reserved by vsock, 3 is the parent, U32_MAX is "any". */
	return cid == 0 || (cid > 3 && cid < 0xFFFFFFFFULL);
}

/* nitro-cli: a value that is not a number is an invalid argument (E03). */
static int set_number(const char *what, const char *text, uint64_t max, uint64_t *out,
		      char *err, size_t errlen)
{
	int r = parse_u64(text, max, false, out);

	if (r == -1)
		return report(err, errlen, E_INVALID_ARG,
			      "%s '%s' is not a non-negative decimal integer", what, text);
	if (r == -2)
		return report(err, errlen, E_INVALID_ARG, "%s %s is too large (at most %llu)",
			      what, text, (unsigned long long)max);
	return 0;
}

static int set_memory(const char *text, struct run_options *o, char *err, size_t errlen)
{
	switch (parse_memory(text, &o->memory_mib)) {
	case 0:
		o->memory_given = true;
		return 0;
	case -1:
		return report(err, errlen, E_INVALID_ARG,
			      "--memory '%s' does not start with a number (MiB, or a number and M, G or T)",
			      text);
	case -2:
		return report(err, errlen, E_INVALID_ARG,
			      "--memory '%s' has an unknown size unit: M or none for MiB, G for GiB, T for TiB (as nitro-cli)",
			      text);
	default:
		return report(err, errlen, E_INVALID_ARG, "--memory %s is too large (at most %llu MiB)",
			      text, (unsigned long long)NECTL_MAX_MEMORY_MIB);
	}
}

static int copy_string(char *dst, size_t size, const char *what, const char *src,
		       char *err, size_t errlen)
{
	if (strlen(src) >= size)
		return report(err, errlen, E_INVALID_ARG, "%s is too long (at most %zu bytes)",
			      what, size - 1);
	strcpy(dst, src);
	return 0;
}

/* Checks that do not depend on where the values came from. */
static int run_options_check(const struct run_options *o, char *err, size_t errlen)
{
	if (!o->eif_path[0])
		return report(err, errlen, E_MISSING_ARG, "--eif-path is required");
	if (!o->memory_given)
		return report(err, errlen, E_MISSING_ARG,
			      "--memory (MiB, or with a unit: 512M, 2G) is required");
	if (!o->memory_mib)
		return report(err, errlen, E_MEMORY_REQUEST_TOO_SMALL,
			      "memory 0: an enclave needs memory, at least 64 MiB and 4 x the EIF size");
	if (!o->cpu_count_given)
		return report(err, errlen, E_MISSING_ARG, "--cpu-count (at least 1) is required");
	if (!o->cpu_count)
		return report(err, errlen, E_INVALID_ARG, "CPU count 0: an enclave needs at least 1 vCPU");
	if (!enclave_cid_valid(o->enclave_cid))
		return report(err, errlen, E_INVALID_ARG,
			      "enclave CID %llu is reserved (0 = automatic; 1, 2, 3 and 4294967295 are not allowed)",
			      (unsigned long long)o->enclave_cid);
	if (o->enclave_name[0] && !enclave_name_valid(o->enclave_name))
		return report(err, errlen, E_NAMING,
			      "the enclave name must be 1 to %d printable characters without '/'",
			      NECTL_NAME_MAX);
	return 0;
}

static int read_small_file(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return report(err, errlen, E_FILE_OPERATION, "cannot open config %s: %s", path,
			      strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX_SIZE) {
		close(fd);
		return report(err, errlen, E_FILE_OPERATION,
			      "config %s is not a regular file of at most %d bytes", path,
			      CONFIG_MAX_SIZE);
	}
	*text = malloc(st.st_size + 1);
	if (!*text) {
		close(fd);
		return report(err, errlen, E_FILE_OPERATION, "out of memory");
	}
	n = read(fd, *text, st.st_size);
	close(fd);
	if (n != st.st_size) {
		free(*text);
		return report(err, errlen, E_FILE_OPERATION, "cannot read config %s", path);
	}
	*len = n;
	return 0;
}

static const struct option run_long_options[] = {
	{ "eif-path", required_argument, NULL, 'e' },
	{ "memory", required_argument, NULL, 'm' },
	{ "cpu-count", required_argument, NULL, 'c' },
	{ "cpu-ids", required_argument, NULL, 'I' },
	{ "enclave-cid", required_argument, NULL, 'C' },
	{ "debug-mode", no_argument, NULL, 'd' },
	{ "attach-console", no_argument, NULL, 'a' },
	{ "enclave-name", required_argument, NULL, 'n' },
	{ "config", required_argument, NULL, 'f' },
	{ "no-heartbeat", no_argument, NULL, 'H' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int apply_run_option(int opt, const char *arg, struct run_options *o,
			    char *err, size_t errlen)
{
	switch (opt) {
	case 'e':
		return copy_string(o->eif_path, sizeof(o->eif_path), "--eif-path", arg, err, errlen);
	case 'm':
		return set_memory(arg, o, err, errlen);
	case 'c':
		o->cpu_count_given = true;
		return set_number("--cpu-count", arg, NECTL_MAX_CPUS, &o->cpu_count, err, errlen);
	case 'I':
		return report(err, errlen, E_INVALID_ARG,
			      "--cpu-ids is not supported: ne-kvm's driver picks the parent CPUs (whole cores first); use --cpu-count");
	case 'C':
		return set_number("--enclave-cid", arg, UINT64_MAX, &o->enclave_cid, err, errlen);
	case 'd':
		o->debug_mode = true;
		return 0;
	case 'a':
		o->attach_console = true;
		o->debug_mode = true;	/* the console exists only in debug mode */
		return 0;
	case 'n':
		return copy_string(o->enclave_name, sizeof(o->enclave_name), "--enclave-name",
				   arg, err, errlen);
	case 'f':
		return copy_string(o->config_path, sizeof(o->config_path), "--config", arg,
				   err, errlen);
	case 'H':
		o->no_heartbeat = true;
		return 0;
	default:
		return report(err, errlen, E_INVALID_ARG, "unknown option (see nectl run --help)");
	}
}

/* Launch options nitro-cli's --config excludes; --attach-console and --no-heartbeat go with it. */
static bool excluded_by_config(int opt)
{
	return opt != 'f' && opt != 'a' && opt != 'H';
}

static int apply_config_file(struct run_options *o, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int code = read_small_file(o->config_path, &text, &len, err, errlen);

	if (code)
		return code;
	code = run_options_from_config(text, len, o, err, errlen);
	free(text);
	return code;
}

int run_options_parse(int argc, char **argv, struct run_options *o, bool *want_help,
		      char *err, size_t errlen)
{
	bool excluded_seen = false;
	int opt, code;

	memset(o, 0, sizeof(*o));
	*want_help = false;
	optind = 0;	/* GNU: full re-initialisation, so parsing can be repeated */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+", run_long_options, NULL)) != -1) {
		if (opt == 'h') {
			*want_help = true;
			return 0;
		}
		if (opt == '?' || opt == ':')
			return report(err, errlen, E_INVALID_ARG,
				      "unknown option or missing value: '%s' (see nectl run --help)",
				      argv[optind - 1]);
		excluded_seen |= excluded_by_config(opt);
		code = apply_run_option(opt, optarg, o, err, errlen);
		if (code)
			return code;
	}
	if (optind < argc)
		return report(err, errlen, E_INVALID_ARG, "unexpected argument '%s'", argv[optind]);
	if (o->config_path[0]) {
		if (excluded_seen)
			return report(err, errlen, E_CONFLICTING_ARGS,
				      "--config gives the launch options itself: only --attach-console and --no-heartbeat go with it");
		code = apply_config_file(o, err, errlen);
		if (code)
			return code;
	}
	return run_options_check(o, err, errlen);
}

/* ---------------------------------------------------------------- --config */

/*
 * nitro-cli reads --config with serde into its RunEnclavesArgs: the same
 * keys and types are accepted here, null wherever an Option<> field takes
 * it, unknown keys ignored (serde's default), debug_mode and
 * attach_console false when absent (but not null: a bool is not an
 * Option), eif_path and memory_mib required.  Type errors are E17, as
 * nitro-cli's serde errors.
 */
struct config_seen {
	bool eif_path, memory_mib, cpu_count, cpu_ids, debug_mode, attach_console;
};

static int config_type_error(const char *key, const char *want, const struct json_value *v,
			     char *err, size_t errlen)
{
	if (v->type == JSON_NUMBER || v->type == JSON_STRING)
		return report(err, errlen, E_CONFIG_PARSE, "config key %s must be %s, not %s (%.40s%s)",
			      key, want, json_kind(v), v->text, strlen(v->text) > 40 ? "..." : "");
	return report(err, errlen, E_CONFIG_PARSE, "config key %s must be %s, not %s", key, want,
		      json_kind(v));
}

/* An integer 0..type_max (serde's u64 or u32); above max (nectl's bound) is E03. */
static int config_integer(const struct json_value *v, const char *key, const char *want,
			  uint64_t type_max, uint64_t max, uint64_t *out, char *err, size_t errlen)
{
	if (!json_to_u64(v, out) || *out > type_max)
		return config_type_error(key, want, v, err, errlen);
	if (*out > max)
		return report(err, errlen, E_INVALID_ARG, "config key %s is too large (at most %llu)",
			      key, (unsigned long long)max);
	return 0;
}

static int config_bool(const struct json_value *v, const char *key, bool *out,
		       char *err, size_t errlen)
{
	if (v->type != JSON_BOOL)
		return config_type_error(key, "true or false", v, err, errlen);
	*out = v->boolean;
	return 0;
}

static int config_string(const struct json_value *v, const char *key, char *dst, size_t size,
			 char *err, size_t errlen)
{
	if (v->type != JSON_STRING)
		return config_type_error(key, "a string", v, err, errlen);
	return copy_string(dst, size, key, v->text, err, errlen);
}

/* cpu_ids: Option<Vec<u32>>.  Checked for its type only: nectl cannot place CPUs. */
static int config_cpu_ids(const struct json_value *v, char *err, size_t errlen)
{
	uint64_t id;
	size_t i;

	if (v->type != JSON_ARRAY)
		return config_type_error("cpu_ids", "an array of CPU numbers or null", v, err, errlen);
	for (i = 0; i < v->count; i++)
		if (!json_to_u64(v->items[i], &id) || id > UINT32_MAX)
			return config_type_error("cpu_ids", "an array of CPU numbers (0 to 4294967295)",
						 v->items[i], err, errlen);
	return 0;
}

static int config_optional(const char *key, const struct json_value *v, struct run_options *o,
			   struct config_seen *seen, char *err, size_t errlen)
{
	if (!strcmp(key, "cpu_count")) {
		seen->cpu_count = o->cpu_count_given = true;
		return config_integer(v, key, "a number of vCPUs (0 to 4294967295) or null", UINT32_MAX,
				      NECTL_MAX_CPUS, &o->cpu_count, err, errlen);
	}
	if (!strcmp(key, "cpu_ids")) {
		seen->cpu_ids = true;
		return config_cpu_ids(v, err, errlen);
	}
	if (!strcmp(key, "enclave_cid"))
		return config_integer(v, key, "a CID (0 to 2^64-1) or null", UINT64_MAX, UINT64_MAX,
				      &o->enclave_cid, err, errlen);
	return config_string(v, key, o->enclave_name, sizeof(o->enclave_name), err, errlen);
}

static int apply_config_key(const char *key, const struct json_value *v, struct run_options *o,
			    struct config_seen *seen, char *err, size_t errlen)
{
	if (!strcmp(key, "eif_path")) {
		seen->eif_path = true;
		return config_string(v, key, o->eif_path, sizeof(o->eif_path), err, errlen);
	}
	if (!strcmp(key, "memory_mib")) {
		seen->memory_mib = o->memory_given = true;
		return config_integer(v, key, "a number of MiB (an integer, no unit)", UINT64_MAX,
				      NECTL_MAX_MEMORY_MIB, &o->memory_mib, err, errlen);
	}
	if (!strcmp(key, "debug_mode"))
		return config_bool(v, key, &seen->debug_mode, err, errlen);
	if (!strcmp(key, "attach_console"))
		return config_bool(v, key, &seen->attach_console, err, errlen);
	if (!strcmp(key, "cpu_count") || !strcmp(key, "cpu_ids") || !strcmp(key, "enclave_cid") ||
	    !strcmp(key, "enclave_name"))
		return v->type == JSON_NULL ? 0 : config_optional(key, v, o, seen, err, errlen);
	return 0;	/* unknown keys are ignored, as serde ignores them */
}

/* What nitro-cli checks once the file is read: required keys, then the CPUs. */
static int config_complete(const struct config_seen *seen, struct run_options *o,
			   char *err, size_t errlen)
{
	if (!seen->eif_path || !seen->memory_mib)
		return report(err, errlen, E_CONFIG_PARSE,
			      "config has no %s key (eif_path and memory_mib are required, as for nitro-cli)",
			      seen->eif_path ? "memory_mib" : "eif_path");
	if (seen->cpu_count && seen->cpu_ids)
		return report(err, errlen, E_CONFLICTING_ARGS,
			      "config gives both cpu_count and cpu_ids: give one");
	if (seen->cpu_ids)
		return report(err, errlen, E_INVALID_ARG,
			      "config key cpu_ids is not supported: ne-kvm's driver picks the parent CPUs; use cpu_count");
	if (!seen->cpu_count)
		return report(err, errlen, E_MISSING_ARG, "config has neither cpu_count nor cpu_ids");
	o->debug_mode |= seen->debug_mode || seen->attach_console;
	o->attach_console |= seen->attach_console;
	return 0;
}

int run_options_from_config(const char *text, size_t len, struct run_options *o,
			    char *err, size_t errlen)
{
	struct config_seen seen = { 0 };
	char perr[160];
	struct json_value *root = json_parse(text, len, perr, sizeof(perr));
	size_t i;
	int code = 0;

	if (!root)
		return report(err, errlen, E_CONFIG_PARSE, "config is not valid JSON: %s", perr);
	if (root->type != JSON_OBJECT) {
		code = report(err, errlen, E_CONFIG_PARSE, "config must be a JSON object, not %s",
			      json_kind(root));
		json_free(root);
		return code;
	}
	for (i = 0; i < root->count && !code; i++)
		code = apply_config_key(root->keys[i], root->items[i], o, &seen, err, errlen);
	json_free(root);
	return code ? code : config_complete(&seen, o, err, errlen);
}
