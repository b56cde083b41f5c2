/* SPDX-License-Identifier: GPL-2.0 */
#ifndef NECTL_EIF_H
#define NECTL_EIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/sha.h>	/* SHA384_DIGEST_LENGTH */

/* Enclave Image Format, version 4 (see enclave-launch.md section 1). */
#define EIF_MAGIC		".eif"
#define EIF_VERSION		4
#define EIF_HEADER_SIZE		548
#define EIF_CRC_OFFSET		544
#define EIF_SECTION_HEADER_SIZE	12
#define EIF_MAX_SECTIONS	32
#define EIF_MAX_RAMDISKS	(EIF_MAX_SECTIONS - 3)
/* The metadata is held in memory: refuse absurd sizes from hostile files. */
#define EIF_MAX_METADATA_SIZE	(1u << 20)
/*
 * So is the signature section; libcbor makes an item of each of its bytes
 * (the certificate and COSE_Sign1 are arrays of uint8), so the limit is
 * lower.  A real one (one certificate) is 2 to 3 KiB.
 */
#define EIF_MAX_SIGNATURE_SIZE	(64u << 10)

enum eif_section_type {
	EIF_SECTION_INVALID = 0,
	EIF_SECTION_KERNEL = 1,
	EIF_SECTION_CMDLINE = 2,
	EIF_SECTION_RAMDISK = 3,
	EIF_SECTION_SIGNATURE = 4,
	EIF_SECTION_METADATA = 5,
};

struct eif_section {
	uint16_t type;
	uint64_t offset;	/* of the 12-byte section header */
	uint64_t size;		/* of the data */
};

struct eif_info {
	uint64_t file_size;
	uint16_t version;
	uint16_t flags;
	uint16_t num_sections;
	struct eif_section sections[EIF_MAX_SECTIONS];	/* in file order */
	uint32_t stored_crc;
	uint32_t computed_crc;
	bool crc_ok;
	bool is_signed;
	bool measured;		/* the PCRs below were computed */
	uint8_t pcr0[SHA384_DIGEST_LENGTH];
	uint8_t pcr1[SHA384_DIGEST_LENGTH];
	uint8_t pcr2[SHA384_DIGEST_LENGTH];
	char *metadata;		/* NUL-terminated JSON text, or NULL */
	size_t metadata_len;
	uint8_t *signature;	/* the signature section's data, or NULL */
	size_t signature_len;
	bool has_pcr8;		/* pcr8 holds the signer's PCR (eif_sig.h) */
	uint8_t pcr8[SHA384_DIGEST_LENGTH];
};

/*
 * Validates the structure of the EIF open on fd, computes the CRC and, when
 * measured, the PCRs (SHA-384 is the slow part), over the sections in file
 * order as nitro-cli does; the header's sections must tile the file (no
 * gap, no trailing byte).  Returns 0, or -1 with a one-line reason in err
 * for a file that is not a usable EIF.  A CRC mismatch is not an error
 * here: see info->crc_ok.  The metadata is not parsed (metadata.h).
 */
int eif_read(int fd, struct eif_info *info, bool measured, char *err, size_t errlen);
void eif_info_release(struct eif_info *info);

struct eif_build_input {
	const char *kernel_path;
	const char *cmdline;
	const char *const *ramdisk_paths;
	unsigned int nr_ramdisks;
	const char *metadata_json;
	const uint8_t *signature;	/* the signature section's data, or NULL */
	size_t signature_len;
};

/*
 * Writes an EIF v4 to out_path (atomically, through a temporary file), with
 * the signature section last when there is one, as the reference builder.
 */
int eif_write(const struct eif_build_input *in, const char *out_path, char *err, size_t errlen);

/* PCR = SHA384(48 zero bytes || SHA384(data)): one extend from zero. */
bool eif_pcr_extend_from_zero(const uint8_t data_digest[SHA384_DIGEST_LENGTH],
			      uint8_t pcr[SHA384_DIGEST_LENGTH]);
void eif_hex(const uint8_t *bytes, size_t len, char *out);

#endif
