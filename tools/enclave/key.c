// SPDX-License-Identifier: GPL-2.0
/*
 * The enclave app's P-384 key pair: see key.h.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <gmp.h>
#include <nettle/ecc.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecdsa.h>
#include "key.h"

#define P384_BYTES	48

/*
 * The DER of everything before the point (RFC 5480 section 2): the outer
 * SEQUENCE (118 bytes), the AlgorithmIdentifier SEQUENCE with the OIDs
 * id-ecPublicKey (1.2.840.10045.2.1) and secp384r1 (1.3.132.0.34), and the
 * BIT STRING header (98 bytes, no unused bits) followed by 04: an
 * uncompressed point, X then Y.
 */
static const uint8_t spki_prefix[] = {
	0x30, 0x76,
	0x30, 0x10,
	0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
	0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22,
	0x03, 0x62, 0x00,
	0x04,
};

_Static_assert(sizeof(spki_prefix) + 2 * P384_BYTES == KEY_SPKI_SIZE,
	       "P-384 SubjectPublicKeyInfo size");

/* The private key lives as long as the app: it is the enclave's identity. */
static struct ecc_scalar private_key;

static int random_failed;

/* nettle's randomness callback: the kernel's CRNG (blocks until seeded) */
static void kernel_random(void *ctx, size_t len, uint8_t *dst)
{
	(void)ctx;
	while (len) {
		ssize_t n = getrandom(dst, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			random_failed = 1;
			memset(dst, 0, len);
			return;
		}
		dst += n;
		len -= n;
	}
}

/* A coordinate as exactly P384_BYTES big-endian bytes. */
static void put_coordinate(uint8_t *out, const mpz_t v)
{
	size_t n = (mpz_sizeinbase(v, 2) + 7) / 8;

	memset(out, 0, P384_BYTES);
	if (mpz_sgn(v))
		mpz_export(out + P384_BYTES - n, NULL, 1, 1, 1, 0, v);
}

int key_generate(uint8_t spki[KEY_SPKI_SIZE])
{
	const struct ecc_curve *curve = nettle_get_secp_384r1();
	struct ecc_point pub;
	mpz_t x, y;

	ecc_point_init(&pub, curve);
	ecc_scalar_init(&private_key, curve);
	random_failed = 0;
	ecdsa_generate_keypair(&pub, &private_key, NULL, kernel_random);
	if (random_failed) {
		ecc_point_clear(&pub);
		errno = EIO;
		return -1;
	}
	mpz_init(x);
	mpz_init(y);
	ecc_point_get(&pub, x, y);
	memcpy(spki, spki_prefix, sizeof(spki_prefix));
	put_coordinate(spki + sizeof(spki_prefix), x);
	put_coordinate(spki + sizeof(spki_prefix) + P384_BYTES, y);
	mpz_clear(x);
	mpz_clear(y);
	ecc_point_clear(&pub);
	return 0;
}
