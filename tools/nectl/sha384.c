// SPDX-License-Identifier: GPL-2.0
/*
 * SHA-384 (FIPS 180-4): SHA-512's compression function with its own initial
 * values, truncated to 48 bytes.  Written for nectl so that it needs no
 * crypto library; tests/ check it against Python's hashlib.
 */
#include <string.h>

#include "sha384.h"

/* First 64 bits of the fractional parts of the cube roots of the first 80 primes. */
static const uint64_t round_constants[80] = {
	0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL,
	0xb5c0fbcfec4d3b2fULL, 0xe9b5dba58189dbbcULL,
	0x3956c25bf348b538ULL, 0x59f111f1b605d019ULL,
	0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL,
	0xd807aa98a3030242ULL, 0x12835b0145706fbeULL,
	0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL,
	0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL,
	0x9bdc06a725c71235ULL, 0xc19bf174cf692694ULL,
	0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL,
	0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL,
	0x2de92c6f592b0275ULL, 0x4a7484aa6ea6e483ULL,
	0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL,
	0x983e5152ee66dfabULL, 0xa831c66d2db43210ULL,
	0xb00327c898fb213fULL, 0xbf597fc7beef0ee4ULL,
	0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL,
	0x06ca6351e003826fULL, 0x142929670a0e6e70ULL,
	0x27b70a8546d22ffcULL, 0x2e1b21385c26c926ULL,
	0x4d2c6dfc5ac42aedULL, 0x53380d139d95b3dfULL,
	0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL,
	0x81c2c92e47edaee6ULL, 0x92722c851482353bULL,
	0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL,
	0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL,
	0xd192e819d6ef5218ULL, 0xd69906245565a910ULL,
	0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL,
	0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL,
	0x2748774cdf8eeb99ULL, 0x34b0bcb5e19b48a8ULL,
	0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL,
	0x5b9cca4f7763e373ULL, 0x682e6ff3d6b2b8a3ULL,
	0x748f82ee5defb2fcULL, 0x78a5636f43172f60ULL,
	0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
	0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL,
	0xbef9a3f7b2c67915ULL, 0xc67178f2e372532bULL,
	0xca273eceea26619cULL, 0xd186b8c721c0c207ULL,
	0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL,
	0x06f067aa72176fbaULL, 0x0a637dc5a2c898a6ULL,
	0x113f9804bef90daeULL, 0x1b710b35131c471bULL,
	0x28db77f523047d84ULL, 0x32caab7b40c72493ULL,
	0x3c9ebe0a15c9bebcULL, 0x431d67c49c100d4cULL,
	0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL,
	0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL,
};

/* First 64 bits of the fractional parts of the square roots of primes 9 to 16. */
static const uint64_t sha384_initial_state[8] = {
	0xcbbb9d5dc1059ed8ULL, 0x629a292a367cd507ULL,
	0x9159015a3070dd17ULL, 0x152fecd8f70e5939ULL,
	0x67332667ffc00b31ULL, 0x8eb44a8768581511ULL,
	0xdb0c2e0d64f98fa7ULL, 0x47b5481dbefa4fa4ULL,
};

static inline uint64_t ror64(uint64_t x, unsigned int n)
{
	return (x >> n) | (x << (64 - n));
}

static inline uint64_t load_be64(const uint8_t *p)
{
	return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 |
	       (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
	       (uint64_t)p[6] << 8 | p[7];
}

static void store_be64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = v & 0xff;
		v >>= 8;
	}
}

#define BSIG0(x)	(ror64(x, 28) ^ ror64(x, 34) ^ ror64(x, 39))
#define BSIG1(x)	(ror64(x, 14) ^ ror64(x, 18) ^ ror64(x, 41))
#define SSIG0(x)	(ror64(x, 1) ^ ror64(x, 8) ^ ((x) >> 7))
#define SSIG1(x)	(ror64(x, 19) ^ ror64(x, 61) ^ ((x) >> 6))
#define CH(e, f, g)	((g) ^ ((e) & ((f) ^ (g))))
#define MAJ(a, b, c)	(((a) & (b)) | ((c) & ((a) | (b))))

/*
 * One round, with the working variables renamed instead of moved: the
 * caller rotates the argument list.  w is the 16-word schedule window.
 */
#define ROUND(a, b, c, d, e, f, g, h, i, k) do {				\
		uint64_t t1 = (h) + BSIG1(e) + CH(e, f, g) + (k) + w[(i) & 15];	\
		(d) += t1;							\
		(h) = t1 + BSIG0(a) + MAJ(a, b, c);				\
	} while (0)

#define SCHEDULE(i)	(w[(i) & 15] += SSIG1(w[((i) - 2) & 15]) + w[((i) - 7) & 15] + \
			 SSIG0(w[((i) - 15) & 15]))

/*
 * Unrolled by eight, with the schedule kept in a 16-word window: nothing
 * but the block and the constants is read from memory in the rounds, which
 * matters most under emulation (the parent VM runs under TCG).
 */
static void sha384_compress(struct sha384_ctx *ctx, const uint8_t *block)
{
	uint64_t w[16], a, b, c, d, e, f, g, h;
	const uint64_t *k = round_constants;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = load_be64(block + 8 * i);
	a = ctx->state[0];
	b = ctx->state[1];
	c = ctx->state[2];
	d = ctx->state[3];
	e = ctx->state[4];
	f = ctx->state[5];
	g = ctx->state[6];
	h = ctx->state[7];
	for (i = 0; i < 80; i += 8) {
		if (i >= 16) {
			SCHEDULE(i);
			SCHEDULE(i + 1);
			SCHEDULE(i + 2);
			SCHEDULE(i + 3);
			SCHEDULE(i + 4);
			SCHEDULE(i + 5);
			SCHEDULE(i + 6);
			SCHEDULE(i + 7);
		}
		ROUND(a, b, c, d, e, f, g, h, i, k[i]);
		ROUND(h, a, b, c, d, e, f, g, i + 1, k[i + 1]);
		ROUND(g, h, a, b, c, d, e, f, i + 2, k[i + 2]);
		ROUND(f, g, h, a, b, c, d, e, i + 3, k[i + 3]);
		ROUND(e, f, g, h, a, b, c, d, i + 4, k[i + 4]);
		ROUND(d, e, f, g, h, a, b, c, i + 5, k[i + 5]);
		ROUND(c, d, e, f, g, h, a, b, i + 6, k[i + 6]);
		ROUND(b, c, d, e, f, g, h, a, i + 7, k[i + 7]);
	}
	ctx->state[0] += a;
	ctx->state[1] += b;
	ctx->state[2] += c;
	ctx->state[3] += d;
	ctx->state[4] += e;
	ctx->state[5] += f;
	ctx->state[6] += g;
	ctx->state[7] += h;
}

void sha384_init(struct sha384_ctx *ctx)
{
	memcpy(ctx->state, sha384_initial_state, sizeof(ctx->state));
	ctx->total_bytes = 0;
	ctx->buffered = 0;
}

void sha384_update(struct sha384_ctx *ctx, const void *data, size_t len)
{
	const uint8_t *p = data;

	ctx->total_bytes += len;
	if (ctx->buffered) {
		size_t take = SHA384_BLOCK_SIZE - ctx->buffered;

		if (take > len)
			take = len;
		memcpy(ctx->buffer + ctx->buffered, p, take);
		ctx->buffered += take;
		p += take;
		len -= take;
		if (ctx->buffered < SHA384_BLOCK_SIZE)
			return;
		sha384_compress(ctx, ctx->buffer);
		ctx->buffered = 0;
	}
	while (len >= SHA384_BLOCK_SIZE) {
		sha384_compress(ctx, p);
		p += SHA384_BLOCK_SIZE;
		len -= SHA384_BLOCK_SIZE;
	}
	memcpy(ctx->buffer, p, len);
	ctx->buffered = len;
}

void sha384_final(struct sha384_ctx *ctx, uint8_t digest[SHA384_DIGEST_SIZE])
{
	uint64_t bits = ctx->total_bytes * 8;
	int i;

	/* Padding: 0x80, zeros, then the 128-bit message length (high half 0). */
	ctx->buffer[ctx->buffered++] = 0x80;
	if (ctx->buffered > SHA384_BLOCK_SIZE - 16) {
		memset(ctx->buffer + ctx->buffered, 0, SHA384_BLOCK_SIZE - ctx->buffered);
		sha384_compress(ctx, ctx->buffer);
		ctx->buffered = 0;
	}
	memset(ctx->buffer + ctx->buffered, 0, SHA384_BLOCK_SIZE - 8 - ctx->buffered);
	store_be64(ctx->buffer + SHA384_BLOCK_SIZE - 8, bits);
	sha384_compress(ctx, ctx->buffer);
	for (i = 0; i < SHA384_DIGEST_SIZE / 8; i++)
		store_be64(digest + 8 * i, ctx->state[i]);
}

void sha384(const void *data, size_t len, uint8_t digest[SHA384_DIGEST_SIZE])
{
	struct sha384_ctx ctx;

	sha384_init(&ctx);
	sha384_update(&ctx, data, len);
	sha384_final(&ctx, digest);
}
