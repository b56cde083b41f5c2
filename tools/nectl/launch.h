/* SPDX-License-Identifier: GPL-2.0 */
#ifndef NECTL_LAUNCH_H
#define NECTL_LAUNCH_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"

#define NECTL_DEVICE		"/dev/nitro_enclaves"
#define NECTL_HEARTBEAT_PORT	9000
#define NECTL_HEARTBEAT_BYTE	0xB7

/* `nectl run`: returns the exit status (0 or an error code). */
int nectl_run(const struct run_options *opt);

/* nitro-cli's rule: 90 s per started 6 GiB of EIF plus 90 s per started 100 GiB of memory. */
unsigned int heartbeat_timeout_seconds(uint64_t eif_bytes, uint64_t mem_bytes);

/*
 * Accepts on listen_fd until a peer (the enclave with this CID, for vsock)
 * sends the 0xB7 heartbeat, which is echoed.  Gives up after timeout seconds,
 * when sig_fd (if >= 0) becomes readable, or when the enclave stops (vm_fd,
 * if >= 0, reports POLLHUP).  Returns 0 or E_BOOT with err set.
 */
int heartbeat_wait(int listen_fd, int sig_fd, int vm_fd, uint64_t cid, unsigned int timeout,
		   char *err, size_t errlen);

/*
 * Streams the console of the enclave with this CID to stdout, until it
 * closes (E45) or for disconnect_timeout seconds (-1: no limit; 0 leaves
 * at once, as nitro-cli).  Shared with `nectl console`.
 */
int console_attach(uint64_t cid, int64_t disconnect_timeout);

#endif
