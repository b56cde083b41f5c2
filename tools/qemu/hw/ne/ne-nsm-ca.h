/*
 * The installation's local attestation CA and the per-enclave leaf.
 *
 * Attestation documents of the emulated NSM are signed by a leaf key of
 * their own enclave, chained like AWS's (shared/spec/attestation.md
 * section 5): root -> regional -> zonal -> instance -> enclave leaf, all
 * P-384 keys signed with ecdsa-with-SHA384, with AWS's path lengths, key
 * usages, validity periods and subject shapes.  The root, regional and
 * zonal certificates and the instance CA are made once per installation
 * by the host tool (tools/attest-ca); the hypervisor loads the instance
 * CA (its key and the chain up to the root) and issues a fresh leaf for
 * every enclave with ne_nsm_ca_issue().
 *
 * Plain C and OpenSSL, no QEMU header: the same file builds the host tool
 * and its unit tests (tools/qemu/tests/nsm-ca).  Nothing here keeps
 * global state: a loaded NeNsmCa is read-only, so ne_nsm_ca_issue() may
 * run on any thread, and a NeNsmLeaf owns copies of everything it holds
 * (it outlives the CA it came from).
 *
 * Errors: the functions that can fail take ERR and ERR_SIZE, a buffer the
 * reason is written into (NUL-terminated, OpenSSL's reason appended), and
 * leave OpenSSL's error queue of the calling thread empty.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_NSM_CA_H
#define HW_NE_NE_NSM_CA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* The levels of the chain, root first, as cabundle orders them. */
typedef enum NeNsmCaLevel {
    NE_NSM_CA_ROOT,
    NE_NSM_CA_REGIONAL,
    NE_NSM_CA_ZONAL,
    NE_NSM_CA_INSTANCE,
    NE_NSM_CA_LEAF,
    NE_NSM_CA_LEVELS
} NeNsmCaLevel;

/* cabundle: root, regional, zonal, instance */
#define NE_NSM_CA_BUNDLE_LEN        NE_NSM_CA_LEAF

/* AWS's leaf: valid from 3 s before its issue to 3 h after it */
#define NE_NSM_CA_LEAF_BACKDATE     3
#define NE_NSM_CA_LEAF_LIFETIME     (3 * 3600)

/* module_id "i-<17 hex>-enc<16 hex>"; the enclave ID is the 16 hex */
#define NE_NSM_CA_ENCLAVE_ID_LEN    8
#define NE_NSM_CA_INSTANCE_ID_LEN   19          /* "i-" and 17 hex */
#define NE_NSM_CA_MODULE_ID_LEN     (NE_NSM_CA_INSTANCE_ID_LEN + 4 + 16)

/* The largest PEM bundle ne_nsm_ca_load_fd() reads */
#define NE_NSM_CA_PEM_MAX           (64 * 1024)

typedef struct NeNsmCa NeNsmCa;

typedef struct NeNsmCaDer {
    unsigned char *data;        /* OPENSSL_malloc'ed */
    size_t len;
} NeNsmCaDer;

/*
 * One enclave's signer: what an attestation document needs besides its
 * payload.  The document's "certificate" is @cert, its "cabundle" is
 * @cabundle[0..NE_NSM_CA_BUNDLE_LEN-1] in that order (root first), its
 * "module_id" is @module_id, and its COSE_Sign1 is signed (ES384) with
 * @key, whose public half @cert carries.  Free with ne_nsm_leaf_clear().
 */
typedef struct NeNsmLeaf {
    EVP_PKEY *key;              /* P-384 private key of this leaf */
    NeNsmCaDer cert;            /* the leaf certificate, DER */
    NeNsmCaDer cabundle[NE_NSM_CA_BUNDLE_LEN];
    char module_id[NE_NSM_CA_MODULE_ID_LEN + 1];
    uint8_t enclave_id[NE_NSM_CA_ENCLAVE_ID_LEN];
    time_t issued;              /* the serial's and the validity's origin */
    time_t not_before;
    time_t not_after;
} NeNsmLeaf;

/*
 * Loading the instance CA.  The bundle is PEM: the instance CA's private
 * key (PKCS#8, P-384), then the certificates from the instance up to the
 * root (instance, zonal, regional, root), nothing else.  The chain must
 * verify to the self-signed root it ends with (signatures, basic
 * constraints, key usages and path lengths; not the time, which
 * ne_nsm_ca_issue() checks).  The key bytes read are wiped once parsed.
 *
 * ne_nsm_ca_load_fd() reads the whole file behind @fd from offset 0
 * (pread, so the same descriptor can be loaded again), or a pipe to its
 * end; it never closes @fd.
 */
NeNsmCa *ne_nsm_ca_load_pem(const char *pem, size_t len,
                            char *err, size_t err_size);
NeNsmCa *ne_nsm_ca_load_fd(int fd, char *err, size_t err_size);
NeNsmCa *ne_nsm_ca_load_file(const char *path, char *err, size_t err_size);
void ne_nsm_ca_free(NeNsmCa *ca);

/* "i-<17 hex>", taken from the instance certificate's CN (PCR4's input) */
const char *ne_nsm_ca_instance_id(const NeNsmCa *ca);
/* The instance certificate's notAfter: no leaf is issued past it. */
time_t ne_nsm_ca_expires(const NeNsmCa *ca);

/*
 * Issues a leaf for one enclave at time @now (0: the current time): a new
 * P-384 key, its certificate (serial: the enclave ID, 4 zero bytes, the
 * issue time in seconds; valid NE_NSM_CA_LEAF_BACKDATE s before @now to
 * NE_NSM_CA_LEAF_LIFETIME s after it; subject the instance's with the CN
 * "<module_id>.<region>.<partition>"), and copies of the cabundle DERs.
 *
 * @enclave_id NULL gives the enclave a new ID (its first 6 bytes the
 * milliseconds since the epoch, then 2 random bytes, as AWS's look);
 * passing the ID of an earlier leaf renews that enclave's leaf, module_id
 * unchanged.  Fails when the instance certificate is not valid for the
 * whole life of the leaf.  Returns 0, or -1 with @leaf zeroed.
 */
int ne_nsm_ca_issue(const NeNsmCa *ca, const uint8_t *enclave_id,
                    time_t now, NeNsmLeaf *leaf, char *err, size_t err_size);
void ne_nsm_leaf_clear(NeNsmLeaf *leaf);

/*
 * Building blocks of the host tool that makes the installation's CA
 * (tools/attest-ca), here so that one table defines every level's shape.
 *
 * ne_nsm_ca_new_key(): a fresh P-384 key.
 * ne_nsm_ca_new_cn(): a CN in AWS's form for @level, with fresh random
 *   hex IDs, "local" for the region and "ne-kvm" for AWS's partition:
 *   "ne-kvm.nitro-enclaves", "<16 hex>.local.ne-kvm.nitro-enclaves",
 *   "<16 hex>.zonal.local.ne-kvm.nitro-enclaves" and, for the instance,
 *   "<@instance_id>.local.ne-kvm.nitro-enclaves" (@instance_id NULL: a
 *   new "i-<17 hex>").  Returns 0, or -1 when @size is too small.
 * ne_nsm_ca_make_cert(): the certificate of @level (not the leaf) for
 *   @key with subject CN @cn, valid from @now for the level's lifetime,
 *   signed by @issuer_key and issued by @issuer (both NULL: self-signed,
 *   for the root).
 */
EVP_PKEY *ne_nsm_ca_new_key(char *err, size_t err_size);
int ne_nsm_ca_new_cn(NeNsmCaLevel level, const char *instance_id,
                     char *cn, size_t size);
X509 *ne_nsm_ca_make_cert(NeNsmCaLevel level, const char *cn, EVP_PKEY *key,
                          X509 *issuer, EVP_PKEY *issuer_key, time_t now,
                          char *err, size_t err_size);
/* The notAfter a certificate of @level issued at @from gets */
time_t ne_nsm_ca_not_after(NeNsmCaLevel level, time_t from);

#endif
