/* SPDX-License-Identifier: GPL-2.0 */
#ifndef NECTL_ERRORS_H
#define NECTL_ERRORS_H

/*
 * Stable error codes.  The exit status of nectl is the code.  Where nitro-cli
 * (1.5: E00..E60) has a code for a failure, nectl uses it with nitro-cli's
 * meaning, even where nectl could be finer: nitro-cli reports every refused
 * ioctl as E29 and an empty CPU pool as E22, so nectl does too.  Codes from
 * 70 on are nectl's own, for failures nitro-cli has no code for.
 * `nectl explain CODE` prints the long text.
 */
enum nectl_error {
	E_OK = 0,
	E_MISSING_ARG = 1,
	E_CONFLICTING_ARGS = 2,
	E_INVALID_ARG = 3,
	E_PROCESS_SPAWN = 5,
	E_READ_FROM_DISK = 7,
	E_EPOLL = 12,
	E_LOCK = 15,
	E_CONFIG_PARSE = 17,
	E_FILE_OPERATION = 19,
	E_INSUFFICIENT_CPUS = 22,
	E_MEMORY_REQUEST_TOO_SMALL = 26,
	E_INSUFFICIENT_MEMORY = 27,
	E_IOCTL = 29,
	E_EIF = 35,
	E_BOOT = 36,
	E_HOLDER = 39,
	E_CONSOLE_CONNECT = 44,
	E_CONSOLE_READ = 45,
	E_CONSOLE_WRITE = 46,
	E_INTEGER_PARSE = 47,
	E_EIF_BUILD = 48,
	E_HASHER = 57,
	E_NAMING = 58,
	E_EIF_SIGNATURE = 59,
	E_EIF_SIGNING = 60,
	E_NO_SUCH_ENCLAVE = 70,
	E_NOT_OURS = 71,
	E_TERMINATE = 72,
	/* verify-attestation: one code per step of the verification */
	E_ATTESTATION_MALFORMED = 73,
	E_ATTESTATION_ROOT = 74,
	E_ATTESTATION_CHAIN = 75,
	E_ATTESTATION_VALIDITY = 76,
	E_ATTESTATION_USAGE = 77,
	E_ATTESTATION_SIGNATURE = 78,
	E_ATTESTATION_PCR = 79,
	E_ATTESTATION_NONCE = 80,
	E_ATTESTATION_USER_DATA = 81,
};

/* Prints "[ E## ] message" (one line) and a pointer to `nectl explain`; returns code. */
int nectl_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *nectl_error_title(int code);
/* `nectl explain`: 0 when the code is known. */
int nectl_explain(const char *arg);
void nectl_list_errors(void);

#endif
