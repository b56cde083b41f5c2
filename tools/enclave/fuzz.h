/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Malformed NSM requests from a seed, for nsm-fuzz: each one is a valid
 * request of the catalogue (shared/spec/attestation.md section 2) with at
 * most one mutation, so that a failure names what was done to what.  No
 * I/O here: the same seed gives the same requests wherever it runs (the
 * enclave, or the host harness of tools/qemu/tests/enclave-nsm).
 */
#ifndef NE_ENCLAVE_FUZZ_H
#define NE_ENCLAVE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include "nsm.h"

/* Room for requests over the driver's limit, which it must refuse. */
#define FUZZ_REQ_CAP	(2 * NSM_REQUEST_MAX)

/* splitmix64: 64 bits of state, any seed (0 included) is a good one */
struct fuzz_rng {
	uint64_t state;
};

enum fuzz_base {
	FB_DESCRIBE_NSM,
	FB_GET_RANDOM,
	FB_DESCRIBE_PCR,
	FB_EXTEND_PCR,
	FB_LOCK_PCR,
	FB_LOCK_PCRS,
	FB_ATTESTATION,
	FUZZ_NR_BASES
};

enum fuzz_mutation {
	FM_NONE,		/* the valid request as it is */
	FM_BIT_FLIP,		/* 1 to 4 bits flipped */
	FM_INSERT,		/* 1 to 8 random bytes inserted */
	FM_DELETE,		/* 1 to 8 bytes deleted */
	FM_TRUNCATE,		/* a strict prefix, at least 1 byte */
	FM_APPEND,		/* random bytes, or a second request, after it */
	FM_MAJOR,		/* one item's major type changed */
	FM_HUGE_LENGTH,		/* one item's length or count made huge */
	FM_INDEFINITE,		/* one item made indefinite-length */
	FM_NEST,		/* wrapped in deep arrays, maps or tags */
	FM_DUP_KEY,		/* a field, or the request itself, given twice */
	FM_FIELD_VALUE,		/* a field of another type, width or value */
	FM_RANDOM,		/* random bytes only */
	FM_OVERSIZE,		/* padded to about the driver's limit, or over */
	FM_HAVOC,		/* 2 to 8 byte-level changes at once */
	FUZZ_NR_MUTATIONS
};

/* What the answer must be, besides an Error or a well-formed success. */
enum fuzz_expect {
	FE_ANY,
	FE_ERROR,	/* not one CBOR item (a strict prefix, bytes after it) */
	FE_EMSGSIZE,	/* over NSM_REQUEST_MAX: the driver refuses it */
};

struct fuzz_req {
	uint8_t buf[FUZZ_REQ_CAP];
	size_t len;		/* 1 to FUZZ_REQ_CAP: never empty */
	enum fuzz_base base;
	enum fuzz_mutation mutation;
	enum fuzz_expect expect;
};

void fuzz_seed(struct fuzz_rng *r, uint64_t seed);
uint64_t fuzz_next(struct fuzz_rng *r);
/* Uniform in [0, n) (0 for n == 0). */
uint64_t fuzz_below(struct fuzz_rng *r, uint64_t n);

/* The next request of the stream into @q. */
void fuzz_make(struct fuzz_rng *r, struct fuzz_req *q);

const char *fuzz_base_name(enum fuzz_base base);
const char *fuzz_mutation_name(enum fuzz_mutation mutation);

#endif
