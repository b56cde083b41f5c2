/* SPDX-License-Identifier: GPL-2.0 */
#ifndef NECTL_CLI_H
#define NECTL_CLI_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NECTL_NAME_MAX		127
/*
 * The largest memory request nectl accepts (4 PiB): far above any machine,
 * and small enough that no byte count derived from it overflows.
 */
#define NECTL_MAX_MEMORY_MIB	(1ULL << 32)
#define NECTL_MAX_CPUS		1024

struct run_options {
	char eif_path[PATH_MAX];
	uint64_t memory_mib;
	bool memory_given;		/* 0 given is E26, none given is E01 */
	uint64_t cpu_count;
	bool cpu_count_given;
	uint64_t enclave_cid;		/* 0 = let the hypervisor choose */
	bool debug_mode;
	bool attach_console;
	bool no_heartbeat;		/* testing only; shown in the run JSON */
	char enclave_name[NECTL_NAME_MAX + 1];	/* "" = derive from the EIF name */
	char config_path[PATH_MAX];
};

/*
 * Strict unsigned parsing: decimal digits only (or 0x-hex when allow_hex),
 * no sign, no trailing text, value <= max.  Returns 0, or -1 (not a number),
 * or -2 (too large).
 */
int parse_u64(const char *s, uint64_t max, bool allow_hex, uint64_t *out);

/*
 * nitro-cli's --memory: decimal digits, then no unit or M/m (MiB), G/g (GiB)
 * or T/t (TiB), nothing else.  Returns 0 with *mib set, -1 (no number
 * first), -2 (another unit: "512MB", "1.5G", "2 G") or -3 (more than
 * NECTL_MAX_MEMORY_MIB).  0 parses: it is E26, a later check.
 */
int parse_memory(const char *s, uint64_t *mib);

/*
 * Hex bytes, two digits each, either case, no prefix or separators; ""
 * is zero bytes.  Returns 0, -1 (not hex) or -2 (more than max bytes).
 */
int parse_hex(const char *s, uint8_t *out, size_t max, size_t *len);

/*
 * `nectl run` arguments (argv[0] is "run").  Returns 0 or an error code
 * (errors.h) with a one-line message in err.  *want_help is set for --help.
 */
int run_options_parse(int argc, char **argv, struct run_options *o, bool *want_help,
		      char *err, size_t errlen);

/*
 * Applies a nitro-cli --config file (its RunEnclavesArgs, as serde reads
 * it) to o; --attach-console already in o stays.
 */
int run_options_from_config(const char *text, size_t len, struct run_options *o,
			    char *err, size_t errlen);

/* Checks an enclave name: 1..NECTL_NAME_MAX printable characters, no '/'. */
bool enclave_name_valid(const char *name);

/* Checks a CID given by the user (0 = auto). */
bool enclave_cid_valid(uint64_t cid);

#endif
