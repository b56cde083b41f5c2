/* SPDX-License-Identifier: GPL-2.0 */
#ifndef NECTL_ATTEST_H
#define NECTL_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "cose.h"

/*
 * The verification of an attestation document, in the order of
 * shared/spec/attestation.md section 6.  Each step runs only when every
 * earlier one passed.
 */
enum att_step {
	ATT_STEP_COSE,			/* 1: COSE_Sign1, alg ES384 */
	ATT_STEP_PAYLOAD,		/* 2: payload keys, types and limits */
	ATT_STEP_CHAIN,			/* 3: [leaf, cabundle[n-1]..[1], pinned root], names linked */
	ATT_STEP_VALIDITY,		/* 4: every certificate valid at the check time */
	ATT_STEP_USAGE,			/* 5: basic constraints, key usage, path length */
	ATT_STEP_CHAIN_SIGNATURES,	/* 6: PKIX path validation, no CRL */
	ATT_STEP_SIGNATURE,		/* 7: ES384 over the COSE Sig_structure */
	ATT_STEP_PCRS,			/* 8: application checks */
	ATT_STEP_NONCE,
	ATT_STEP_USER_DATA,
	ATT_NR_STEPS
};

enum att_outcome { ATT_NOT_RUN, ATT_PASSED, ATT_FAILED, ATT_NOT_REQUESTED };

/* The chain can hold the leaf, every bundle entry but the first, and the root. */
#define ATT_MAX_CHAIN		(ATT_MAX_CABUNDLE + 1)

struct att_expect {
	bool pcr_wanted[ATT_MAX_PCRS];
	uint8_t pcr[ATT_MAX_PCRS][ATT_MAX_PCR_SIZE];
	size_t pcr_len[ATT_MAX_PCRS];
	bool nonce_wanted;
	uint8_t nonce[ATT_MAX_FIELD_SIZE];
	size_t nonce_len;
	bool user_data_wanted;
	uint8_t user_data[ATT_MAX_FIELD_SIZE];
	size_t user_data_len;
};

struct att_options {
	X509 *root;			/* the pinned root */
	bool at_document;		/* check at the document's own timestamp */
	time_t at;			/* otherwise at this time */
	const struct att_expect *expect;
};

struct att_result {
	enum att_outcome outcome[ATT_NR_STEPS];
	int failed_step;		/* -1 when every step passed */
	char reason[768];
	time_t check_time;
	bool check_time_known;		/* false: --at document, undecodable document */
	/* Leaf first, pinned root last; NULL where a DER did not parse. */
	X509 *chain[ATT_MAX_CHAIN];
	size_t chain_len;
};

/*
 * Decodes and verifies the document in buf.  doc and res are filled in as
 * far as the steps went (release both).  Returns true when every step passed.
 */
bool att_verify(const uint8_t *buf, size_t len, const struct att_options *o,
		struct att_doc *doc, struct att_result *res);
void att_result_release(struct att_result *res);

const char *att_step_name(enum att_step step);
/* The nectl error code (errors.h) that names a failed step. */
int att_step_error(enum att_step step);
/* "certificate (leaf)", "cabundle[2]", "pinned root" for a chain index. */
void att_chain_position(const struct att_result *res, size_t i, char *out, size_t len);

#endif
