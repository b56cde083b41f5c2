/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The enclave app's key pair: ECDSA P-384 (secp384r1), made at start from
 * the kernel's random numbers, whose public half the app can put in its
 * attestation documents (public_key), DER-encoded as an X.509
 * SubjectPublicKeyInfo (RFC 5480), the form a relying party hands to its
 * crypto library as it is.
 *
 * Why P-384 with nettle: the app is static, and of the static crypto
 * libraries Debian has (libcrypto.a, libnettle.a/libhogweed.a with
 * libgmp.a, libgcrypt.a), nettle makes the smallest binary (under 1 MB,
 * against over 4 MB for libcrypto, which also links glibc's NSS) and
 * links cleanly; P-384 is the curve the NSM itself signs with.
 */
#ifndef NE_ENCLAVE_KEY_H
#define NE_ENCLAVE_KEY_H

#include <stddef.h>
#include <stdint.h>

/* SEQUENCE { SEQUENCE { ecPublicKey, secp384r1 }, BIT STRING 04 X Y } */
#define KEY_SPKI_SIZE	120

/*
 * Makes the key pair and writes its public key's DER into @spki.
 * Returns 0, or -1 with errno set.
 */
int key_generate(uint8_t spki[KEY_SPKI_SIZE]);

#endif
