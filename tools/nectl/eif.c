// SPDX-License-Identifier: GPL-2.0
/*
 * EIF reader and writer.  The reader never trusts the file: every offset and
 * size is checked against the file size before it is used (without integer
 * overflow), and all data is read with bounded pread() calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <openssl/evp.h>

#include "eif.h"

/*
 * zlib's CRC-32 of @len bytes after @crc.  (crc32_z() of a NULL buffer
 * returns the initial value, 0, whatever @crc: an empty piece leaves it.)
 */
static uint32_t crc_update(uint32_t crc, const void *data, size_t len)
{
	return len ? crc32_z(crc, data, len) : crc;
}

#define IO_CHUNK	(1u << 20)

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	put_be16(p, v >> 16);
	put_be16(p + 2, v);
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, v >> 32);
	put_be32(p + 4, v);
}

/* pread exactly len bytes; a short file is an error, not a short read. */
static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENODATA;
			return -1;
		}
		p += n;
		len -= n;
		off += n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

void eif_hex(const uint8_t *bytes, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * len] = '\0';
}

bool eif_pcr_extend_from_zero(const uint8_t data_digest[SHA384_DIGEST_LENGTH],
			      uint8_t pcr[SHA384_DIGEST_LENGTH])
{
	uint8_t buf[2 * SHA384_DIGEST_LENGTH] = { 0 };

	memcpy(buf + SHA384_DIGEST_LENGTH, data_digest, SHA384_DIGEST_LENGTH);
	return EVP_Digest(buf, sizeof(buf), pcr, NULL, EVP_sha384(), NULL) == 1;
}

static const char *section_name(uint16_t type)
{
	static const char *const names[] = {
		"invalid", "kernel", "cmdline", "ramdisk", "signature", "metadata",
	};

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : "unknown";
}

/* ------------------------------------------------------------------ reader */

static int check_header(const uint8_t *hdr, struct eif_info *info, char *err, size_t errlen)
{
	unsigned int i;

	if (memcmp(hdr, EIF_MAGIC, 4)) {
		set_err(err, errlen, "bad magic %02x %02x %02x %02x (an EIF starts with \".eif\")",
			hdr[0], hdr[1], hdr[2], hdr[3]);
		return -1;
	}
	info->version = get_be16(hdr + 4);
	info->flags = get_be16(hdr + 6);
	info->num_sections = get_be16(hdr + 26);
	info->stored_crc = get_be32(hdr + EIF_CRC_OFFSET);
	if (info->version < 1 || info->version > EIF_VERSION) {
		set_err(err, errlen, "unsupported EIF version %u (nectl reads versions 1 to %u)",
			info->version, EIF_VERSION);
		return -1;
	}
	if (info->flags & ~1u) {
		set_err(err, errlen, "unknown header flags 0x%x", info->flags);
		return -1;
	}
	if (info->num_sections == 0 || info->num_sections > EIF_MAX_SECTIONS) {
		set_err(err, errlen, "header declares %u sections (must be 1 to %u)",
			info->num_sections, EIF_MAX_SECTIONS);
		return -1;
	}
	for (i = 0; i < EIF_MAX_SECTIONS; i++) {
		uint64_t off = get_be64(hdr + 28 + 8 * i);
		uint64_t size = get_be64(hdr + 284 + 8 * i);

		if (i >= info->num_sections) {
			if (off || size) {
				set_err(err, errlen, "unused section slot %u is not zero", i);
				return -1;
			}
			continue;
		}
		info->sections[i].offset = off;
		info->sections[i].size = size;
	}
	return 0;
}

/* Bounds of section i, its header, and that both fit in the file. */
static int check_section(int fd, struct eif_info *info, unsigned int i, char *err, size_t errlen)
{
	struct eif_section *s = &info->sections[i];
	uint8_t sh[EIF_SECTION_HEADER_SIZE];
	uint64_t declared;

	if (s->offset < EIF_HEADER_SIZE || s->offset > info->file_size ||
	    info->file_size - s->offset < EIF_SECTION_HEADER_SIZE) {
		set_err(err, errlen, "section %u header at offset %llu lies outside the file (%llu bytes)",
			i, (unsigned long long)s->offset, (unsigned long long)info->file_size);
		return -1;
	}
	if (s->size > info->file_size - s->offset - EIF_SECTION_HEADER_SIZE) {
		set_err(err, errlen, "section %u (%llu bytes at offset %llu) runs past the end of the file (%llu bytes)",
			i, (unsigned long long)s->size, (unsigned long long)s->offset,
			(unsigned long long)info->file_size);
		return -1;
	}
	if (pread_full(fd, sh, sizeof(sh), s->offset)) {
		set_err(err, errlen, "cannot read section %u header: %s", i, strerror(errno));
		return -1;
	}
	s->type = get_be16(sh);
	declared = get_be64(sh + 4);
	if (s->type < EIF_SECTION_KERNEL || s->type > EIF_SECTION_METADATA) {
		set_err(err, errlen, "section %u has invalid type %u", i, s->type);
		return -1;
	}
	if (get_be16(sh + 2)) {
		set_err(err, errlen, "section %u (%s) has non-zero flags 0x%x", i,
			section_name(s->type), get_be16(sh + 2));
		return -1;
	}
	if (declared != s->size) {
		set_err(err, errlen, "section %u (%s) header says %llu bytes, main header says %llu",
			i, section_name(s->type), (unsigned long long)declared,
			(unsigned long long)s->size);
		return -1;
	}
	return 0;
}

static int compare_offsets(const void *a, const void *b)
{
	const struct eif_section *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/*
 * nitro-cli reads an EIF in file order: section headers back to back from
 * byte 548 until the file ends, whatever the header's table says.  The
 * hypervisor (and QEMU) go by the table.  Both read the same sections, in
 * the same order, only if the table's sections tile the file: sorted by
 * offset, each starts where the previous ends, the first at the header's
 * end and the last at the file's.  A gap would be read by nitro-cli as a
 * section header, and so would trailing bytes (a tail shorter than one it
 * ignores; nectl refuses that too).  Sorting makes the PCRs and the CRC
 * follow the file order, as nitro-cli's.
 */
static int check_tiling(struct eif_info *info, char *err, size_t errlen)
{
	uint64_t expected = EIF_HEADER_SIZE;
	unsigned int i;

	qsort(info->sections, info->num_sections, sizeof(info->sections[0]), compare_offsets);
	for (i = 0; i < info->num_sections; i++) {
		const struct eif_section *s = &info->sections[i];

		if (s->offset != expected) {
			set_err(err, errlen, "the %s section starts at byte %llu, not %llu: sections %s (nitro-cli reads them back to back from byte %u)",
				section_name(s->type), (unsigned long long)s->offset,
				(unsigned long long)expected,
				s->offset < expected ? "overlap" : "have a gap between them",
				EIF_HEADER_SIZE);
			return -1;
		}
		/* Within the file (check_section), so this cannot overflow. */
		expected = s->offset + EIF_SECTION_HEADER_SIZE + s->size;
	}
	if (expected != info->file_size) {
		set_err(err, errlen, "%llu bytes after the last section (it ends at byte %llu of %llu): an EIF ends with its last section",
			(unsigned long long)(info->file_size - expected),
			(unsigned long long)expected, (unsigned long long)info->file_size);
		return -1;
	}
	return 0;
}

static int check_layout(struct eif_info *info, char *err, size_t errlen)
{
	unsigned int count[EIF_SECTION_METADATA + 1] = { 0 };
	unsigned int i;

	if (check_tiling(info, err, errlen))
		return -1;
	for (i = 0; i < info->num_sections; i++)
		count[info->sections[i].type]++;
	if (count[EIF_SECTION_KERNEL] != 1 || count[EIF_SECTION_CMDLINE] != 1 ||
	    !count[EIF_SECTION_RAMDISK]) {
		set_err(err, errlen, "needs exactly one kernel, one cmdline and at least one ramdisk section (has %u, %u, %u)",
			count[EIF_SECTION_KERNEL], count[EIF_SECTION_CMDLINE],
			count[EIF_SECTION_RAMDISK]);
		return -1;
	}
	if (count[EIF_SECTION_METADATA] > 1 || count[EIF_SECTION_SIGNATURE] > 1) {
		set_err(err, errlen, "more than one metadata or signature section");
		return -1;
	}
	info->is_signed = count[EIF_SECTION_SIGNATURE] == 1;
	return 0;
}

/*
 * PCR1 measures a prefix of what PCR0 measures (kernel, cmdline, first
 * ramdisk) and the reference builder's order puts that prefix first: while
 * both have been fed the same bytes, only PCR0's context is updated and
 * PCR1 shares it ("pcr1_shared"); it gets its own copy when the two diverge.
 * This halves the hashing of the kernel, by far the largest section.
 */
struct eif_hashers {
	EVP_MD_CTX *pcr0, *pcr1, *pcr2;
	unsigned int ramdisks_seen;
	bool pcr1_shared;
	bool failed;		/* OpenSSL failed (out of memory) */
};

static bool hashers_init(struct eif_hashers *h)
{
	memset(h, 0, sizeof(*h));
	h->pcr1_shared = true;
	h->pcr0 = EVP_MD_CTX_new();
	h->pcr1 = EVP_MD_CTX_new();
	h->pcr2 = EVP_MD_CTX_new();
	return h->pcr0 && h->pcr1 && h->pcr2 &&
	       EVP_DigestInit_ex(h->pcr0, EVP_sha384(), NULL) == 1 &&
	       EVP_DigestInit_ex(h->pcr2, EVP_sha384(), NULL) == 1;
}

static void hashers_free(struct eif_hashers *h)
{
	EVP_MD_CTX_free(h->pcr0);
	EVP_MD_CTX_free(h->pcr1);
	EVP_MD_CTX_free(h->pcr2);
}

/* PCR0, 1 and 2 of @info from the hashers fed the whole image. */
static bool hashers_final(struct eif_hashers *h, struct eif_info *info)
{
	uint8_t digest[SHA384_DIGEST_LENGTH];

	if (h->failed || (h->pcr1_shared && EVP_MD_CTX_copy_ex(h->pcr1, h->pcr0) != 1))
		return false;
	return EVP_DigestFinal_ex(h->pcr0, digest, NULL) == 1 &&
	       eif_pcr_extend_from_zero(digest, info->pcr0) &&
	       EVP_DigestFinal_ex(h->pcr1, digest, NULL) == 1 &&
	       eif_pcr_extend_from_zero(digest, info->pcr1) &&
	       EVP_DigestFinal_ex(h->pcr2, digest, NULL) == 1 &&
	       eif_pcr_extend_from_zero(digest, info->pcr2);
}

static void measure(struct eif_hashers *h, uint16_t type, const uint8_t *buf, size_t len)
{
	bool to_pcr1, ok = true;

	if (!h || h->failed)
		return;
	switch (type) {
	case EIF_SECTION_KERNEL:
	case EIF_SECTION_CMDLINE:
	case EIF_SECTION_RAMDISK:
		to_pcr1 = type != EIF_SECTION_RAMDISK || h->ramdisks_seen == 1;
		if (h->pcr1_shared && !to_pcr1) {
			ok = EVP_MD_CTX_copy_ex(h->pcr1, h->pcr0) == 1;
			h->pcr1_shared = false;
		}
		ok = ok && EVP_DigestUpdate(h->pcr0, buf, len) == 1;
		if (to_pcr1 && !h->pcr1_shared)
			ok = ok && EVP_DigestUpdate(h->pcr1, buf, len) == 1;
		if (type == EIF_SECTION_RAMDISK && !to_pcr1)
			ok = ok && EVP_DigestUpdate(h->pcr2, buf, len) == 1;
		if (!ok)
			h->failed = true;
		break;
	default:
		break;	/* metadata and signature are never measured */
	}
}

#define HOLD_FAILED	((uint8_t *)-1)

/*
 * The metadata and signature sections are kept in memory for their readers
 * (NUL-terminated, for the JSON parser).  Returns the buffer to fill, NULL
 * for a section that is only streamed, or HOLD_FAILED.
 */
static uint8_t *hold_section(struct eif_info *info, const struct eif_section *s,
			     char *err, size_t errlen)
{
	bool meta = s->type == EIF_SECTION_METADATA;
	uint64_t limit = meta ? EIF_MAX_METADATA_SIZE : EIF_MAX_SIGNATURE_SIZE;
	uint8_t *buf;

	if (!meta && s->type != EIF_SECTION_SIGNATURE)
		return NULL;
	if (s->size > limit) {
		set_err(err, errlen, "%s section is %llu bytes (limit %llu)", section_name(s->type),
			(unsigned long long)s->size, (unsigned long long)limit);
		return HOLD_FAILED;
	}
	buf = malloc(s->size + 1);
	if (!buf) {
		set_err(err, errlen, "out of memory");
		return HOLD_FAILED;
	}
	buf[s->size] = '\0';
	if (meta) {
		info->metadata = (char *)buf;
		info->metadata_len = s->size;
	} else {
		info->signature = buf;
		info->signature_len = s->size;
	}
	return buf;
}

/* One pass over every section, in file order: CRC, PCRs, metadata and signature copies. */
static int scan_sections(int fd, struct eif_info *info, const uint8_t *hdr, bool measured,
			 char *err, size_t errlen)
{
	struct eif_hashers h = { 0 }, *hp = measured ? &h : NULL;
	uint8_t *buf = malloc(IO_CHUNK);
	bool hashers = !measured || hashers_init(&h);
	uint32_t crc;
	unsigned int i;
	int rc = -1;

	if (!buf || !hashers) {
		set_err(err, errlen, "out of memory");
		goto out;
	}
	crc = crc_update(0, hdr, EIF_CRC_OFFSET);
	for (i = 0; i < info->num_sections; i++) {
		const struct eif_section *s = &info->sections[i];
		uint64_t off = s->offset + EIF_SECTION_HEADER_SIZE, left = s->size;
		size_t held_pos = 0;
		uint8_t *held;

		if (pread_full(fd, buf, EIF_SECTION_HEADER_SIZE, s->offset))
			goto io_error;
		crc = crc_update(crc, buf, EIF_SECTION_HEADER_SIZE);
		if (s->type == EIF_SECTION_RAMDISK)
			h.ramdisks_seen++;
		held = hold_section(info, s, err, errlen);
		if (held == HOLD_FAILED)
			goto out;
		while (left) {
			size_t n = left < IO_CHUNK ? left : IO_CHUNK;

			if (pread_full(fd, buf, n, off))
				goto io_error;
			crc = crc_update(crc, buf, n);
			measure(hp, s->type, buf, n);
			if (held) {
				memcpy(held + held_pos, buf, n);
				held_pos += n;
			}
			off += n;
			left -= n;
		}
	}
	info->computed_crc = crc;
	info->crc_ok = crc == info->stored_crc;
	info->measured = measured;
	if (measured && !hashers_final(&h, info)) {
		set_err(err, errlen, "out of memory to measure the image");
		goto out;
	}
	rc = 0;
	goto out;
io_error:
	set_err(err, errlen, "cannot read section %u: %s", i,
		errno == ENODATA ? "file shrank while reading" : strerror(errno));
out:
	hashers_free(&h);
	free(buf);
	return rc;
}

int eif_read(int fd, struct eif_info *info, bool measured, char *err, size_t errlen)
{
	uint8_t hdr[EIF_HEADER_SIZE];
	struct stat st;
	unsigned int i;

	memset(info, 0, sizeof(*info));
	if (fstat(fd, &st)) {
		set_err(err, errlen, "cannot stat: %s", strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, errlen, "not a regular file");
		return -1;
	}
	info->file_size = st.st_size;
	if (info->file_size < EIF_HEADER_SIZE) {
		set_err(err, errlen, "truncated: %llu bytes, shorter than the %u-byte EIF header",
			(unsigned long long)info->file_size, EIF_HEADER_SIZE);
		return -1;
	}
	if (pread_full(fd, hdr, sizeof(hdr), 0)) {
		set_err(err, errlen, "cannot read the header: %s", strerror(errno));
		return -1;
	}
	if (check_header(hdr, info, err, errlen))
		return -1;
	for (i = 0; i < info->num_sections; i++)
		if (check_section(fd, info, i, err, errlen))
			return -1;
	if (check_layout(info, err, errlen))
		return -1;
	if (scan_sections(fd, info, hdr, measured, err, errlen)) {
		eif_info_release(info);
		return -1;
	}
	return 0;
}

void eif_info_release(struct eif_info *info)
{
	free(info->metadata);
	info->metadata = NULL;
	info->metadata_len = 0;
	free(info->signature);
	info->signature = NULL;
	info->signature_len = 0;
}

/* ------------------------------------------------------------------ writer */

struct build_section {
	uint16_t type;
	const char *path;	/* data from this file, or */
	const char *bytes;	/* from memory */
	uint64_t size;
	int fd;
};

/* Copies one section (header, then data) into out, updating the CRC. */
static int emit_section(int out, const struct build_section *s, uint32_t *crc,
			uint8_t *buf, char *err, size_t errlen)
{
	uint8_t sh[EIF_SECTION_HEADER_SIZE];
	uint64_t off = 0;

	put_be16(sh, s->type);
	put_be16(sh + 2, 0);
	put_be64(sh + 4, s->size);
	*crc = crc_update(*crc, sh, sizeof(sh));
	if (write_full(out, sh, sizeof(sh)))
		goto write_error;
	if (!s->path) {
		*crc = crc_update(*crc, s->bytes, s->size);
		if (write_full(out, s->bytes, s->size))
			goto write_error;
		return 0;
	}
	while (off < s->size) {
		size_t n = s->size - off < IO_CHUNK ? s->size - off : IO_CHUNK;

		if (pread_full(s->fd, buf, n, off)) {
			set_err(err, errlen, "cannot read %s: %s", s->path,
				errno == ENODATA ? "file shrank while reading" : strerror(errno));
			return -1;
		}
		*crc = crc_update(*crc, buf, n);
		if (write_full(out, buf, n))
			goto write_error;
		off += n;
	}
	return 0;
write_error:
	set_err(err, errlen, "cannot write the EIF: %s", strerror(errno));
	return -1;
}

static int open_input(struct build_section *s, char *err, size_t errlen)
{
	struct stat st;

	s->fd = open(s->path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0 || fstat(s->fd, &st)) {
		set_err(err, errlen, "cannot open %s %s: %s", section_name(s->type), s->path,
			strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, errlen, "%s %s is not a regular file", section_name(s->type), s->path);
		return -1;
	}
	if (st.st_size == 0) {
		set_err(err, errlen, "%s %s is empty", section_name(s->type), s->path);
		return -1;
	}
	s->size = st.st_size;
	return 0;
}

static int write_sections(int out, struct build_section *secs, unsigned int n,
			  char *err, size_t errlen)
{
	uint8_t hdr[EIF_HEADER_SIZE] = { 0 };
	uint64_t off = EIF_HEADER_SIZE;
	uint8_t *buf = malloc(IO_CHUNK);
	uint32_t crc;
	unsigned int i;
	int ret = -1;

	if (!buf) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	memcpy(hdr, EIF_MAGIC, 4);
	put_be16(hdr + 4, EIF_VERSION);
	put_be16(hdr + 6, 0);			/* x86_64 */
	put_be64(hdr + 8, 1ULL << 30);		/* default_mem, as the reference builder */
	put_be64(hdr + 16, 2);			/* default_cpus, likewise */
	put_be16(hdr + 26, n);
	for (i = 0; i < n; i++) {
		put_be64(hdr + 28 + 8 * i, off);
		put_be64(hdr + 284 + 8 * i, secs[i].size);
		off += EIF_SECTION_HEADER_SIZE + secs[i].size;
	}
	crc = crc_update(0, hdr, EIF_CRC_OFFSET);
	if (write_full(out, hdr, sizeof(hdr))) {
		set_err(err, errlen, "cannot write the EIF: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < n; i++)
		if (emit_section(out, &secs[i], &crc, buf, err, errlen))
			goto out;
	/* The CRC covers everything but itself, so it is patched in last. */
	put_be32(hdr, crc);
	if (pwrite(out, hdr, 4, EIF_CRC_OFFSET) != 4) {
		set_err(err, errlen, "cannot write the CRC: %s", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

int eif_write(const struct eif_build_input *in, const char *out_path, char *err, size_t errlen)
{
	unsigned int max_ramdisks = EIF_MAX_RAMDISKS - !!in->signature;
	struct build_section secs[EIF_MAX_SECTIONS];
	char tmp_path[4096];
	unsigned int n = 0, i;
	int out = -1, ret = -1;

	if (in->nr_ramdisks < 1 || in->nr_ramdisks > max_ramdisks) {
		set_err(err, errlen, "%u ramdisks given: an EIF holds 1 to %u%s", in->nr_ramdisks,
			max_ramdisks, in->signature ? " when signed" : "");
		return -1;
	}
	memset(secs, 0, sizeof(secs));
	/* The reference builder's order: kernel, cmdline, metadata, ramdisks, signature. */
	secs[n++] = (struct build_section){ EIF_SECTION_KERNEL, in->kernel_path, NULL, 0, -1 };
	secs[n++] = (struct build_section){ EIF_SECTION_CMDLINE, NULL, in->cmdline,
					    strlen(in->cmdline), -1 };
	secs[n++] = (struct build_section){ EIF_SECTION_METADATA, NULL, in->metadata_json,
					    strlen(in->metadata_json), -1 };
	for (i = 0; i < in->nr_ramdisks; i++)
		secs[n++] = (struct build_section){ EIF_SECTION_RAMDISK, in->ramdisk_paths[i],
						    NULL, 0, -1 };
	if (in->signature)
		secs[n++] = (struct build_section){ EIF_SECTION_SIGNATURE, NULL,
						    (const char *)in->signature,
						    in->signature_len, -1 };
	for (i = 0; i < n; i++)
		if (secs[i].path && open_input(&secs[i], err, errlen))
			goto out;
	if (snprintf(tmp_path, sizeof(tmp_path), "%s.tmp.%d", out_path, (int)getpid()) >=
	    (int)sizeof(tmp_path)) {
		set_err(err, errlen, "output path too long");
		goto out;
	}
	/* (a file of our own, not one planted under that name) */
	unlink(tmp_path);
	out = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (out < 0) {
		set_err(err, errlen, "cannot create %s: %s", tmp_path, strerror(errno));
		goto out;
	}
	if (write_sections(out, secs, n, err, errlen))
		goto out;
	if (fsync(out) || rename(tmp_path, out_path)) {
		set_err(err, errlen, "cannot write %s: %s", out_path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (out >= 0) {
		close(out);
		if (ret)
			unlink(tmp_path);
	}
	for (i = 0; i < n; i++)
		if (secs[i].fd >= 0)
			close(secs[i].fd);
	return ret;
}
