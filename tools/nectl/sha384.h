/* SPDX-License-Identifier: GPL-2.0 */
#ifndef NECTL_SHA384_H
#define NECTL_SHA384_H

#include <stddef.h>
#include <stdint.h>

#define SHA384_DIGEST_SIZE	48
#define SHA384_BLOCK_SIZE	128

struct sha384_ctx {
	uint64_t state[8];
	uint64_t total_bytes;
	uint8_t buffer[SHA384_BLOCK_SIZE];
	size_t buffered;
};

void sha384_init(struct sha384_ctx *ctx);
void sha384_update(struct sha384_ctx *ctx, const void *data, size_t len);
void sha384_final(struct sha384_ctx *ctx, uint8_t digest[SHA384_DIGEST_SIZE]);
void sha384(const void *data, size_t len, uint8_t digest[SHA384_DIGEST_SIZE]);

#endif
