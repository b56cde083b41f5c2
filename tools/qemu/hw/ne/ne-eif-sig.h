/*
 * The signature section of an enclave image (shared/spec/enclave-launch.md
 * section 1.4, type 4), verified by the hypervisor before PCR8 measures
 * its certificate.
 *
 * PCR8 says "this enclave booted from an image signed by certificate X".
 * The parent is not trusted: it could copy a vendor's signature section
 * onto an image of its own, so the hypervisor itself checks that the
 * section signs the very image it boots.  The section, as nitro-cli
 * writes it (serde_cbor), is
 *
 *   [ {"signing_certificate": PEM bytes, "signature": COSE_Sign1 bytes},
 *     ... ]
 *
 * both byte fields being CBOR arrays of unsigned integers 0-255 (Rust's
 * Vec<u8>); definite byte strings are accepted too.  Only the first entry
 * is read (nitro-cli's reader and builder use no other; further entries
 * are neither verified nor measured).  Its signature must be a COSE_Sign1,
 * untagged or tag 18,
 *
 *   [ h'{1: alg}', {...}, h'payload', h'r || s' ]
 *
 * whose protected header names the algorithm of the certificate's key
 * (ES256, ES384, ES512 for an EC key on P-256, P-384, P-521) and has no
 * "crit" (label 2: no header parameter is understood here), whose payload
 * is the PcrInfo of PCR0,
 *
 *   {"register_index": 0, "register_value": 48 bytes}
 *
 * (the 48 bytes an array of integers or a byte string, nothing else in
 * the map) with exactly the image's PCR0, and whose ECDSA signature r || s
 * verifies with the key of the certificate (the first in the PEM) over the
 * Sig_structure ["Signature1", protected, h'', payload] hashed with the
 * algorithm's SHA-2.
 *
 * The certificate's dates, its issuer and its extensions are not checked:
 * PCR8 names the signer, and whether to trust that certificate (a
 * self-signed one, one issued by a vendor's CA, one that has expired since
 * the image was signed) is the relying party's decision, made from its own
 * knowledge of X with its own clock.  The hypervisor's check is what only
 * it can make: the signature holds over the image it measured.  nitro-cli
 * (and nectl) refuse an expired certificate in the parent at run time; an
 * enclave whose parent skips that check still gets the PCR8 its image's
 * signature proves.
 *
 * Plain C with OpenSSL and libcbor, no QEMU header: unit-tested on the host
 * (tools/qemu/tests/eif-measure) against images signed by nectl build-eif.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_EIF_SIG_H
#define HW_NE_NE_EIF_SIG_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "ne-eif-measure.h"

/* The room for a reason (the longest names an algorithm and a curve) */
#define NE_EIF_SIG_WHY_SIZE     192

/*
 * Verifies the signature section @section (@len bytes, at most
 * NE_EIF_SIGNATURE_MAX) of an image whose PCR0 is @pcr0.  Returns the
 * signing certificate, to be freed with X509_free(), when the section
 * signs that PCR0; NULL otherwise, with @why (NE_EIF_SIG_WHY_SIZE bytes)
 * saying what is wrong.  OpenSSL's error queue is left as it was.
 */
X509 *ne_eif_sig_verify(const uint8_t *section, size_t len,
                        const uint8_t pcr0[NE_EIF_PCR_SIZE], char *why);

#endif /* HW_NE_NE_EIF_SIG_H */
