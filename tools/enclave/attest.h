/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The sample app's attest service (vsock port 5010): attestation
 * documents from the NSM for a client on the parent.
 *
 * Request: one line of at most ATTEST_LINE_MAX bytes, ended by "\n" (or
 * by the client's end of writing), of words separated by spaces, each at
 * most once, in any order:
 *
 *   nonce=<hex>        the document's nonce, 0 to ATTEST_FIELD_MAX bytes
 *   user-data=<hex>    its user_data, 0 to ATTEST_FIELD_MAX bytes
 *   public-key         its public_key: the app's P-384 public key, DER
 *                      (an X.509 SubjectPublicKeyInfo, 120 bytes)
 *
 * <hex> is an even number of hex digits, possibly none (an empty nonce is
 * a present one; a word left out is absent: null in the request).  An
 * empty line asks for a document with none of the three.
 *
 * Answer: "ok <N>\n" followed by the N bytes of the document as the NSM
 * gave it (a CBOR COSE_Sign1), or a single line "error <reason>\n"
 * (e.g. "error no /dev/nsm: ..." in an enclave without an NSM device);
 * then the app closes the connection.  A client that sends no complete
 * line within ATTEST_READ_TIMEOUT seconds gets an error line.
 */
#ifndef NE_ENCLAVE_ATTEST_H
#define NE_ENCLAVE_ATTEST_H

#include <stddef.h>
#include <stdint.h>

/*
 * Each field at most 1024 bytes: the largest AWS's own NSM check sends
 * (shared/spec/attestation.md section 2); three of them fit the NSM's
 * 4096-byte request limit.
 */
#define ATTEST_FIELD_MAX	1024
#define ATTEST_LINE_MAX		4352
#define ATTEST_READ_TIMEOUT	10

/*
 * Serves one connection @conn (which it does not close).  @public_key of
 * @public_key_len bytes is what "public-key" puts in, NULL if the app has
 * none.
 */
void serve_attest(int conn, const uint8_t *public_key, size_t public_key_len);

#endif
