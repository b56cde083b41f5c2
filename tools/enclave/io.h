/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Writing whole buffers, for the enclave's tools (the app's services,
 * nsm-fuzz): a socket or pipe may take a write in pieces.
 */
#ifndef ENCLAVE_IO_H
#define ENCLAVE_IO_H

#include <stddef.h>

/* Writes all @len bytes of @buf to @fd (retrying EINTR); 0, or -1. */
int write_all(int fd, const void *buf, size_t len);

#endif /* ENCLAVE_IO_H */
