// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile enclave images against the device (boot-enclaves=on).
 *
 * Each test writes a broken image at enclave-physical 8 MiB through the
 * KVM-shaped API and starts it.  An image the hypervisor's checks refuse
 * (tools/qemu/hw/ne/ne-eif.c) fails NE_ENCLAVE_START with ENOEXEC and
 * starts no enclave QEMU; a kernel that cannot be booted directly
 * (ne-kernel.c: payload, decompression, ELF program headers, the fit in
 * memory) boots as the bzImage it is, and says why.  Both are read from
 * the device's trace (the run's trace.log: tools/ne-vm --trace
 * 'ne_launcher_*'), and after every test the device still answers.
 *
 * Run inside the parent VM by selftests/eif-hostile (which also fails the
 * run on any ASan or UBSan report of the sanitizer QEMU):
 *
 *   NE_EIF=<sample EIF> build/selftests/ne_eif_hostile [--seed N]
 *
 * The mutation fuzz prints its seed; NE_EIF_SEED=N (or --seed N) replays it,
 * NE_EIF_FUZZ=N sets the number of mutants (default 24).
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "kselftest_harness.h"
#include "ne_kvm_util.h"

#define ENCLAVE_MEM		(64 * MIB)	/* the least the device starts */
#define EIF_HDR			548
#define EIF_CRC_OFF		544
#define EIF_SEC_HDR		12
#define EIF_MAX_SEC		32
#define SEC_KERNEL		1
#define SEC_CMDLINE		2
#define SEC_RAMDISK		3

/* The bzImage setup header (Documentation/x86/boot.rst). */
#define BZ_SETUP_SECTS		0x1f1
#define BZ_VERSION		0x206
#define BZ_PAYLOAD_OFFSET	0x248
#define BZ_PAYLOAD_LENGTH	0x24c

/* A parsed image: sections in table order. */
struct sec {
	uint16_t type;
	uint16_t flags;
	uint8_t *data;
	uint64_t size;
};

struct img {
	uint8_t *buf;
	uint64_t len;
};

static struct sec valid[EIF_MAX_SEC];
static int valid_nr;
static uint8_t valid_hdr[EIF_HDR];
static struct img valid_img;
static unsigned int fuzz_seed;
static int seed_given;

/* Zeroed memory, or the program ends saying so: no test runs on NULL. */
static void *xalloc(size_t size)
{
	void *p = calloc(1, size ? size : 1);

	if (!p)
		ksft_exit_fail_msg("out of memory (%zu bytes)\n", size);
	return p;
}

static uint16_t be16(const uint8_t *p) { return p[0] << 8 | p[1]; }
static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}
static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }
static void put32(uint8_t *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = v >> (24 - 8 * i);
}
static void put64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = v >> (56 - 8 * i);
}
static void le32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get_le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* The CRC the format wants: the header up to the CRC, then every section. */
static void fix_crc(struct img *im)
{
	uint32_t crc = crc32(0, im->buf, EIF_CRC_OFF);
	uint16_t nr = be16(im->buf + 26);
	int i;

	for (i = 0; i < nr && i < EIF_MAX_SEC; i++) {
		uint64_t off = be64(im->buf + 28 + 8 * i);
		uint64_t size = be64(im->buf + 284 + 8 * i);

		if (off > im->len || size > im->len - off ||
		    im->len - off - size < EIF_SEC_HDR)
			continue;
		crc = crc32(crc, im->buf + off, EIF_SEC_HDR + size);
	}
	put32(im->buf + EIF_CRC_OFF, crc);
}

/* Lays @nr sections out one after the other, with a correct CRC. */
static struct img build(const struct sec *s, int nr)
{
	struct img im;
	uint64_t off = EIF_HDR;
	int i;

	im.len = EIF_HDR;
	for (i = 0; i < nr; i++)
		im.len += EIF_SEC_HDR + s[i].size;
	im.buf = xalloc(im.len);
	memcpy(im.buf, valid_hdr, EIF_HDR);
	memset(im.buf + 28, 0, 512);
	put16(im.buf + 26, nr);
	for (i = 0; i < nr; i++) {
		put64(im.buf + 28 + 8 * i, off);
		put64(im.buf + 284 + 8 * i, s[i].size);
		put16(im.buf + off, s[i].type);
		put16(im.buf + off + 2, s[i].flags);
		put64(im.buf + off + 4, s[i].size);
		memcpy(im.buf + off + EIF_SEC_HDR, s[i].data, s[i].size);
		off += EIF_SEC_HDR + s[i].size;
	}
	fix_crc(&im);
	return im;
}

static struct img copy_valid(void)
{
	struct img im = { xalloc(valid_img.len), valid_img.len };

	memcpy(im.buf, valid_img.buf, im.len);
	return im;
}

static int find_sec(int type)
{
	int i;

	for (i = 0; i < valid_nr; i++)
		if (valid[i].type == type)
			return i;
	return -1;
}

/* The valid image with section @i's data replaced by @data of @size bytes. */
static struct img with_section(int i, const void *data, uint64_t size)
{
	struct sec s[EIF_MAX_SEC];

	memcpy(s, valid, sizeof(s));
	s[i].data = (uint8_t *)data;
	s[i].size = size;
	return build(s, valid_nr);
}

static int load_valid(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), i;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st)) {
		close(fd);
		return -1;
	}
	valid_img.len = st.st_size;
	valid_img.buf = xalloc(st.st_size);
	if (read(fd, valid_img.buf, st.st_size) != st.st_size) {
		close(fd);
		return -1;
	}
	close(fd);
	if (valid_img.len < EIF_HDR || memcmp(valid_img.buf, ".eif", 4))
		return -1;
	memcpy(valid_hdr, valid_img.buf, EIF_HDR);
	valid_nr = be16(valid_hdr + 26);
	if (valid_nr < 3 || valid_nr > EIF_MAX_SEC)
		return -1;
	for (i = 0; i < valid_nr; i++) {
		uint64_t off = be64(valid_hdr + 28 + 8 * i);

		valid[i].size = be64(valid_hdr + 284 + 8 * i);
		if (off > valid_img.len || valid_img.len - off < EIF_SEC_HDR ||
		    valid[i].size > valid_img.len - off - EIF_SEC_HDR)
			return -1;
		valid[i].type = be16(valid_img.buf + off);
		valid[i].data = valid_img.buf + off + EIF_SEC_HDR;
	}
	return find_sec(SEC_KERNEL) < 0 ? -1 : 0;
}

/* ---- the device's trace: what the launcher did with the last start ------- */

static char trace_path[512];
static off_t trace_mark;

static int trace_open(void)
{
	char cmdline[4096], *p;
	int fd = open("/proc/cmdline", O_RDONLY), n;

	if (fd < 0)
		return -1;
	n = read(fd, cmdline, sizeof(cmdline) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	cmdline[n] = 0;
	p = strstr(cmdline, "ne.run=");
	if (!p)
		return -1;
	snprintf(trace_path, sizeof(trace_path), "%.*s/trace.log",
		 (int)strcspn(p + 7, " \n"), p + 7);
	return access(trace_path, R_OK);
}

static void trace_begin(void)
{
	struct stat st;

	trace_mark = stat(trace_path, &st) ? 0 : st.st_size;
}

/* The trace lines since trace_begin() (malloc'd, NUL-terminated). */
static char *trace_since(void)
{
	int fd = open(trace_path, O_RDONLY | O_CLOEXEC);
	char *buf = xalloc(1 << 20);
	ssize_t n = 0;

	if (fd >= 0) {
		n = pread(fd, buf, (1 << 20) - 1, trace_mark);
		close(fd);
	}
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

/* ---- starting an image --------------------------------------------------- */

static char *mem;

enum outcome { REFUSED, BOOTED };

/*
 * Starts @im in @mem_size bytes of donated memory.  REFUSED: START failed
 * with ENOEXEC and no enclave QEMU was spawned (the trace has the reason);
 * BOOTED: it started (the enclave is terminated again); -1 otherwise, with
 * what happened in @why.
 */
static int start_image(const struct img *im, uint64_t mem_size, char **trace,
		       char *why, size_t why_len)
{
	uint64_t cid = 0;
	int vm, vcpu[2], rc, err, i;

	if (mem_size > NE_IMAGE_LOAD_GPA)
		memcpy(mem + NE_IMAGE_LOAD_GPA, im->buf,
		       im->len < mem_size - NE_IMAGE_LOAD_GPA ? im->len :
		       mem_size - NE_IMAGE_LOAD_GPA);
	vm = ne_create_vm();
	if (vm < 0) {
		snprintf(why, why_len, "KVM_CREATE_VM: %s", strerror(errno));
		return -1;
	}
	if (ne_set_region(vm, 0, 0, mem, mem_size, 0)) {
		snprintf(why, why_len, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
		close(vm);
		return -1;
	}
	for (i = 0; i < 2; i++) {
		vcpu[i] = ioctl(vm, KVM_CREATE_VCPU, i);
		if (vcpu[i] < 0) {
			snprintf(why, why_len, "KVM_CREATE_VCPU: %s", strerror(errno));
			close(vm);
			return -1;
		}
	}
	trace_begin();
	errno = 0;
	rc = ne_start(vm, 0, &cid);
	err = errno;
	/* the launcher traces before the reply: nothing more will come */
	*trace = trace_since();
	close(vcpu[0]);
	close(vcpu[1]);
	close(vm);
	if (rc == 0) {
		if (!strstr(*trace, "ne_launcher_spawn")) {
			snprintf(why, why_len, "started without a spawn in the trace");
			return -1;
		}
		return BOOTED;
	}
	if (err != ENOEXEC) {
		snprintf(why, why_len, "START: rc %d errno %d (%s), not ENOEXEC",
			 rc, err, strerror(err));
		return -1;
	}
	if (strstr(*trace, "ne_launcher_spawn")) {
		snprintf(why, why_len, "ENOEXEC, but an enclave QEMU was spawned");
		return -1;
	}
	return REFUSED;
}

/* The device still answers: a VM can be made, given memory and freed. */
static int device_alive(void)
{
	int vm = ne_create_vm(), rc;

	if (vm < 0)
		return 0;
	rc = ne_set_region(vm, 0, 0, mem, 2 * MIB, 0);
	close(vm);
	return rc == 0;
}

#define EXPECT_REFUSED(im, mem_size, needle) do {			\
	char *__t = NULL, __why[256] = "";				\
	int __o = start_image(&(im), mem_size, &__t, __why, sizeof(__why)); \
	ASSERT_EQ(REFUSED, __o) {					\
		TH_LOG("%s: %s; trace: %.600s", needle, __why, __t ? __t : ""); \
	}								\
	ASSERT_NE(NULL, strstr(__t, "ne_launcher_bad_image"));		\
	ASSERT_NE(NULL, strstr(__t, needle)) {				\
		TH_LOG("wanted '%s' in the trace: %.600s", needle, __t); \
	}								\
	free(__t);							\
	ASSERT_TRUE(device_alive());					\
} while (0)

/* The bzImage boots as it is, for the reason @needle (ne-kernel.c). */
#define EXPECT_BZIMAGE_BOOT(im, needle) do {				\
	char *__t = NULL, __why[256] = "";				\
	int __o = start_image(&(im), ENCLAVE_MEM, &__t, __why, sizeof(__why)); \
	ASSERT_EQ(BOOTED, __o) {					\
		TH_LOG("%s: %s; trace: %.600s", needle, __why, __t ? __t : ""); \
	}								\
	ASSERT_NE(NULL, strstr(__t, "ne_launcher_bzimage_boot")) {	\
		TH_LOG("no bzImage boot in the trace: %.600s", __t);	\
	}								\
	ASSERT_NE(NULL, strstr(__t, needle)) {				\
		TH_LOG("wanted '%s' in the trace: %.600s", needle, __t); \
	}								\
	free(__t);							\
	ASSERT_TRUE(device_alive());					\
} while (0)

/* ---- bzImages with a payload of our making -------------------------------- */

/* @len bytes of gzip (or raw deflate with @gzip false) of @in. */
static uint8_t *gzip_of(const void *in, size_t in_len, size_t *len)
{
	z_stream z = { 0 };
	size_t cap = compressBound(in_len) + 64;
	uint8_t *out = xalloc(cap);

	deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (Bytef *)in;
	z.avail_in = in_len;
	z.next_out = out;
	z.avail_out = cap;
	deflate(&z, Z_FINISH);
	*len = z.total_out;
	deflateEnd(&z);
	return out;
}

/* @len bytes of xz (CRC64, as the kernel's own) of @in. */
static uint8_t *xz_of(const void *in, size_t in_len, size_t *len)
{
	size_t cap = lzma_stream_buffer_bound(in_len);
	uint8_t *out = xalloc(cap);

	*len = 0;
	if (lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, NULL, in, in_len,
				    out, len, cap) != LZMA_OK)
		*len = 0;
	return out;
}

/* @len bytes of zstd of @in (one frame, as the kernel's own). */
static uint8_t *zstd_of(const void *in, size_t in_len, size_t *len)
{
	size_t cap = ZSTD_compressBound(in_len);
	uint8_t *out = xalloc(cap);

	*len = ZSTD_compress(out, cap, in, in_len, 19);
	if (ZSTD_isError(*len))
		*len = 0;
	return out;
}

/*
 * A zstd frame that decompresses to @mib MiB of zeros in 4 bytes per 128
 * KiB: RLE blocks (a 3-byte block header and the byte to repeat).
 */
static uint8_t *zstd_bomb(unsigned int mib, size_t *len)
{
	unsigned int blocks = mib * 8, i;	/* 128 KiB each */
	uint8_t *p = xalloc(6 + 4 * blocks), *q = p;

	q[0] = 0x28, q[1] = 0xb5, q[2] = 0x2f, q[3] = 0xfd;	/* magic */
	q[4] = 0;		/* no content size, no checksum, a window */
	q[5] = 7 << 3;		/* window: 2^(10 + 7) = 128 KiB */
	q += 6;
	for (i = 0; i < blocks; i++, q += 4) {
		uint32_t h = (128 << 10) << 3 | 1 << 1 | (i == blocks - 1);

		q[0] = h, q[1] = h >> 8, q[2] = h >> 16;	/* RLE block */
		q[3] = 0;
	}
	*len = q - p;
	return p;
}

/*
 * A gzip stream that inflates to @mib MiB of zeros in a few KiB per MiB:
 * one fixed-Huffman block of a literal 0 and copies of 258 bytes at
 * distance 1, built bit by bit (deflating that much under TCG is slow).
 */
struct bits {
	uint8_t *p;
	size_t n;		/* bits written */
};

static void put_bits(struct bits *b, uint32_t v, int count)	/* LSB first */
{
	int i;

	for (i = 0; i < count; i++, b->n++)
		if (v >> i & 1)
			b->p[b->n / 8] |= 1 << (b->n % 8);
}

static void put_code(struct bits *b, uint32_t code, int count)	/* MSB first */
{
	int i;

	for (i = count - 1; i >= 0; i--)
		put_bits(b, code >> i & 1, 1);
}

static uint8_t *gzip_bomb(unsigned int mib, size_t *len)
{
	static const uint8_t gz_hdr[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };
	uint64_t total = (uint64_t)mib << 20, done = 1;
	size_t cap = 16 + (total / 258 * 13) / 8 + 64;
	struct bits b = { xalloc(cap), 0 };
	size_t n;

	memcpy(b.p, gz_hdr, 10);
	b.n = 80;
	put_bits(&b, 1, 1);		/* BFINAL */
	put_bits(&b, 1, 2);		/* BTYPE 01: fixed Huffman */
	put_code(&b, 0x30, 8);		/* literal 0 */
	while (total - done >= 258) {
		put_code(&b, 0xc5, 8);	/* length code 285: 258 bytes */
		put_code(&b, 0, 5);	/* distance code 0: 1 byte back */
		done += 258;
	}
	put_code(&b, 0, 7);		/* end of block */
	n = (b.n + 7) / 8;
	/* CRC and size are never reached: the size cap stops first */
	memset(b.p + n, 0, 8);
	*len = n + 8;
	return b.p;
}

/* The valid bzImage's setup part with @payload as its compressed kernel. */
static uint8_t *bzimage_with(const uint8_t *payload, size_t plen, size_t *len)
{
	int k = find_sec(SEC_KERNEL);
	const uint8_t *bz = valid[k].data;
	unsigned int sects = bz[BZ_SETUP_SECTS] ? bz[BZ_SETUP_SECTS] : 4;
	uint64_t start = (sects + 1) * 512ULL + get_le32(bz + BZ_PAYLOAD_OFFSET);
	uint8_t *out = xalloc(start + plen + 4);

	memcpy(out, bz, start);
	memcpy(out + start, payload, plen);
	le32(out + BZ_PAYLOAD_LENGTH, plen);
	le32(out + start + plen, 16 * MIB);	/* the "uncompressed size" */
	*len = start + plen + 4;
	return out;
}

/* A small x86-64 ELF "kernel": a PT_LOAD and a PT_NOTE with a PVH entry. */
struct tiny_elf {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[2];
	uint32_t note[4];	/* namesz descsz type "Xen\0" */
	uint32_t entry;
	uint8_t text[64];
} __attribute__((packed));

static void tiny_elf(struct tiny_elf *e)
{
	memset(e, 0, sizeof(*e));
	memcpy(e->eh.e_ident, ELFMAG, 4);
	e->eh.e_ident[EI_CLASS] = ELFCLASS64;
	e->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	e->eh.e_ident[EI_VERSION] = EV_CURRENT;
	e->eh.e_type = ET_EXEC;
	e->eh.e_machine = EM_X86_64;
	e->eh.e_version = EV_CURRENT;
	e->eh.e_entry = 0x1000000;
	e->eh.e_phoff = offsetof(struct tiny_elf, ph);
	e->eh.e_ehsize = sizeof(Elf64_Ehdr);
	e->eh.e_phentsize = sizeof(Elf64_Phdr);
	e->eh.e_phnum = 2;
	e->ph[0].p_type = PT_LOAD;
	e->ph[0].p_offset = offsetof(struct tiny_elf, text);
	e->ph[0].p_paddr = e->ph[0].p_vaddr = 0x1000000;
	e->ph[0].p_filesz = e->ph[0].p_memsz = sizeof(e->text);
	e->ph[0].p_flags = PF_R | PF_X;
	e->ph[1].p_type = PT_NOTE;
	e->ph[1].p_offset = offsetof(struct tiny_elf, note);
	e->ph[1].p_filesz = sizeof(e->note) + sizeof(e->entry);
	e->note[0] = 4;
	e->note[1] = 4;
	e->note[2] = 18;		/* XEN_ELFNOTE_PHYS32_ENTRY */
	memcpy(&e->note[3], "Xen", 4);
	e->entry = 0x1000000;
	memset(e->text, 0xf4, sizeof(e->text));	/* hlt */
}

/* The valid image whose kernel is the valid setup with @elf gzipped. */
static struct img image_with_elf(const void *elf, size_t elf_len)
{
	size_t plen, bzlen;
	uint8_t *payload = gzip_of(elf, elf_len, &plen);
	uint8_t *bz = bzimage_with(payload, plen, &bzlen);
	struct img im = with_section(find_sec(SEC_KERNEL), bz, bzlen);

	free(payload);
	free(bz);
	return im;
}

/* ---- the tests ------------------------------------------------------------ */

FIXTURE(eif) {
	int unused;
};

FIXTURE_SETUP(eif)
{
	ASSERT_LT(0, valid_nr) TH_LOG("set NE_EIF to the sample enclave image");
	ASSERT_EQ(0, ne_ensure_pool());
	if (!mem) {
		mem = ne_huge_alloc(ENCLAVE_MEM);
		ASSERT_NE(MAP_FAILED, mem) { mem = NULL; }
	}
	ASSERT_EQ(0, trace_open())
		TH_LOG("no trace.log in the run directory: run under tools/ne-vm --trace 'ne_launcher_*'");
}

FIXTURE_TEARDOWN(eif)
{
}

/* The control: the valid image starts, so the refusals below mean something. */
TEST_F(eif, valid_image_starts)
{
	char *t = NULL, why[256] = "";

	ASSERT_EQ(BOOTED, start_image(&valid_img, ENCLAVE_MEM, &t, why, sizeof(why)))
		TH_LOG("%s; trace: %.600s", why, t ? t : "");
	free(t);
}

/*
 * ne-eif.c's "memory ends before 8 MiB" cannot be reached: the device
 * (and the driver before it) refuses to start less than 64 MiB, before the
 * image is read.  Checked here, so that the branch stays unreachable.
 */
TEST_F(eif, memory_below_64mib_is_refused_before_the_image)
{
	char *t = NULL, why[256] = "";

	ASSERT_EQ(-1, start_image(&valid_img, 6 * MIB, &t, why, sizeof(why)));
	ASSERT_NE(NULL, strstr(why, "errno 22")) TH_LOG("%s", why);
	ASSERT_EQ(NULL, strstr(t, "ne_launcher_")) TH_LOG("trace: %.600s", t);
	free(t);
	ASSERT_TRUE(device_alive());
}

/* A ramdisk that runs 4 MiB past the end of the donated memory. */
TEST_F(eif, image_runs_past_the_memory)
{
	uint64_t size = ENCLAVE_MEM - NE_IMAGE_LOAD_GPA + 4 * MIB;
	uint8_t *big = xalloc(size);
	struct img im = with_section(find_sec(SEC_RAMDISK), big, size);

	EXPECT_REFUSED(im, ENCLAVE_MEM, "does not fit in the enclave memory");
}

TEST_F(eif, bad_magic)
{
	struct img im = copy_valid();

	im.buf[0] = 'x';
	EXPECT_REFUSED(im, ENCLAVE_MEM, "no EIF magic");
}

TEST_F(eif, version_too_old)
{
	struct img im = copy_valid();

	put16(im.buf + 4, 3);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "too old");
}

TEST_F(eif, arm64_flag)
{
	struct img im = copy_valid();

	put16(im.buf + 6, 1);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "aarch64");
}

TEST_F(eif, zero_sections)
{
	struct img im = copy_valid();

	put16(im.buf + 26, 0);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "declares 0 sections");
}

TEST_F(eif, too_many_sections)
{
	struct img im = copy_valid();

	put16(im.buf + 26, 33);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "declares 33 sections");
}

TEST_F(eif, section_inside_the_header)
{
	struct img im = copy_valid();

	put64(im.buf + 28, 100);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "does not fit");
}

TEST_F(eif, section_offset_past_memory)
{
	struct img im = copy_valid();

	put64(im.buf + 28, ENCLAVE_MEM);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "does not fit");
}

TEST_F(eif, section_header_straddles_the_end)
{
	struct img im = copy_valid();

	put64(im.buf + 28, ENCLAVE_MEM - NE_IMAGE_LOAD_GPA - 4);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "does not fit");
}

TEST_F(eif, section_size_wraps)
{
	struct img im = copy_valid();

	put64(im.buf + 284, UINT64_MAX - 8);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "does not fit");
}

TEST_F(eif, section_type_zero)
{
	struct sec s[EIF_MAX_SEC];
	struct img im;

	memcpy(s, valid, sizeof(s));
	s[valid_nr - 1].type = 0;
	im = build(s, valid_nr);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "invalid type 0");
}

TEST_F(eif, section_type_six)
{
	struct sec s[EIF_MAX_SEC];
	struct img im;

	memcpy(s, valid, sizeof(s));
	s[0].type = 6;
	im = build(s, valid_nr);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "invalid type 6");
}

TEST_F(eif, section_flags)
{
	struct sec s[EIF_MAX_SEC];
	struct img im;

	memcpy(s, valid, sizeof(s));
	s[1].flags = 0x8000;
	im = build(s, valid_nr);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "flags 0x8000");
}

TEST_F(eif, section_header_disagrees_with_table)
{
	struct img im = copy_valid();
	uint64_t off = be64(im.buf + 28);

	put64(im.buf + off + 4, be64(im.buf + off + 4) - 1);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "header says");
}

TEST_F(eif, sections_overlap)
{
	struct img im = copy_valid();

	/* the second entry points at the first section */
	put64(im.buf + 28 + 8, be64(im.buf + 28));
	put64(im.buf + 284 + 8, be64(im.buf + 284));
	EXPECT_REFUSED(im, ENCLAVE_MEM, "overlap");
}

TEST_F(eif, two_kernels)
{
	struct sec s[EIF_MAX_SEC];
	struct img im;

	memcpy(s, valid, sizeof(s));
	s[valid_nr] = valid[find_sec(SEC_KERNEL)];
	im = build(s, valid_nr + 1);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "one kernel, one command line");
}

TEST_F(eif, no_command_line)
{
	struct sec s[EIF_MAX_SEC];
	struct img im;
	int i, n = 0;

	for (i = 0; i < valid_nr; i++)
		if (valid[i].type != SEC_CMDLINE)
			s[n++] = valid[i];
	im = build(s, n);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "one kernel, one command line");
}

TEST_F(eif, no_ramdisk)
{
	struct sec s[EIF_MAX_SEC];
	struct img im;
	int i, n = 0;

	for (i = 0; i < valid_nr; i++)
		if (valid[i].type != SEC_RAMDISK)
			s[n++] = valid[i];
	im = build(s, n);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "at least one ramdisk");
}

TEST_F(eif, command_line_too_long)
{
	char line[2048];
	struct img im;

	memset(line, 'a', sizeof(line));
	im = with_section(find_sec(SEC_CMDLINE), line, sizeof(line));
	EXPECT_REFUSED(im, ENCLAVE_MEM, "the command line has 2048 bytes");
}

TEST_F(eif, command_line_not_text)
{
	static const char line[] = "console=ttyS0\001 quiet";
	struct img im = with_section(find_sec(SEC_CMDLINE), line, sizeof(line) - 1);

	EXPECT_REFUSED(im, ENCLAVE_MEM, "non-text byte 0x01");
}

TEST_F(eif, command_line_inner_nul)
{
	static const char line[] = "console=ttyS0\0quiet";
	struct img im = with_section(find_sec(SEC_CMDLINE), line, sizeof(line) - 1);

	EXPECT_REFUSED(im, ENCLAVE_MEM, "non-text byte 0x00");
}

TEST_F(eif, crc_mismatch)
{
	struct img im = copy_valid();

	im.buf[EIF_CRC_OFF] ^= 1;
	EXPECT_REFUSED(im, ENCLAVE_MEM, "CRC mismatch");
}

TEST_F(eif, kernel_too_short)
{
	struct img im = with_section(find_sec(SEC_KERNEL), valid[find_sec(SEC_KERNEL)].data, 0x200);

	EXPECT_REFUSED(im, ENCLAVE_MEM, "not a bzImage");
}

TEST_F(eif, kernel_without_hdrs)
{
	int k = find_sec(SEC_KERNEL);
	uint8_t *bz = xalloc(valid[k].size);
	struct img im;

	memcpy(bz, valid[k].data, valid[k].size);
	memcpy(bz + 0x202, "HdrX", 4);
	im = with_section(k, bz, valid[k].size);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "not a bzImage");
}

TEST_F(eif, bzimage_setup_past_the_kernel)
{
	int k = find_sec(SEC_KERNEL);
	uint8_t *bz = xalloc(0x1000);
	struct img im;

	memcpy(bz, valid[k].data, 0x1000);
	bz[BZ_SETUP_SECTS] = 0xff;	/* 128 KiB of setup in a 4 KiB kernel */
	im = with_section(k, bz, 0x1000);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "bzImage");
}

TEST_F(eif, bzimage_payload_past_the_kernel)
{
	int k = find_sec(SEC_KERNEL);
	uint8_t *bz = xalloc(valid[k].size);
	struct img im;

	unsigned int sects;

	memcpy(bz, valid[k].data, valid[k].size);
	sects = bz[BZ_SETUP_SECTS] ? bz[BZ_SETUP_SECTS] : 4;
	/* one byte more than the kernel holds after the payload's start */
	le32(bz + BZ_PAYLOAD_LENGTH, valid[k].size - (sects + 1) * 512 -
	     get_le32(bz + BZ_PAYLOAD_OFFSET) + 1);
	im = with_section(k, bz, valid[k].size);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "payload");
}

TEST_F(eif, bzimage_payload_offset_wraps)
{
	int k = find_sec(SEC_KERNEL);
	uint8_t *bz = xalloc(valid[k].size);
	struct img im;

	memcpy(bz, valid[k].data, valid[k].size);
	le32(bz + BZ_PAYLOAD_OFFSET, 0xfffffff0);
	im = with_section(k, bz, valid[k].size);
	EXPECT_REFUSED(im, ENCLAVE_MEM, "payload");
}

/* ---- kernels that boot as the bzImage (ne-kernel.c) ---------------------- */

TEST_F(eif, boot_protocol_before_2_08)
{
	int k = find_sec(SEC_KERNEL);
	uint8_t *bz = xalloc(valid[k].size);
	struct img im;

	memcpy(bz, valid[k].data, valid[k].size);
	bz[BZ_VERSION] = 0x07;
	bz[BZ_VERSION + 1] = 0x02;
	im = with_section(k, bz, valid[k].size);
	EXPECT_BZIMAGE_BOOT(im, "before 2.08");
}

TEST_F(eif, payload_neither_xz_gzip_nor_zstd)
{
	static const uint8_t junk[4096] = { 'B', 'Z', 'h' };
	size_t len;
	uint8_t *bz = bzimage_with(junk, sizeof(junk), &len);
	struct img im = with_section(find_sec(SEC_KERNEL), bz, len);

	EXPECT_BZIMAGE_BOOT(im, "neither xz, gzip nor zstd");
}

/*
 * An xz stream of our making (the sample kernel's may be compressed with
 * something else, e.g. zstd) whose header is valid and whose data is not.
 */
TEST_F(eif, xz_payload_corrupt)
{
	struct tiny_elf e;
	size_t plen, len;
	uint8_t *payload, *bz;
	struct img im;

	tiny_elf(&e);
	payload = xz_of(&e, sizeof(e), &plen);
	ASSERT_LT(24, plen) TH_LOG("liblzma could not compress the tiny ELF");
	/* after the 12-byte stream header, before the 12-byte footer */
	memset(payload + 12, 0x5a, plen - 24);
	bz = bzimage_with(payload, plen, &len);
	im = with_section(find_sec(SEC_KERNEL), bz, len);
	EXPECT_BZIMAGE_BOOT(im, "xz payload does not decompress");
}

TEST_F(eif, gzip_payload_truncated)
{
	struct tiny_elf e;
	size_t plen, len;
	uint8_t *payload, *bz;
	struct img im;

	tiny_elf(&e);
	payload = gzip_of(&e, sizeof(e), &plen);
	bz = bzimage_with(payload, plen / 2, &len);
	im = with_section(find_sec(SEC_KERNEL), bz, len);
	EXPECT_BZIMAGE_BOOT(im, "gzip payload does not decompress");
}

TEST_F(eif, zstd_payload_truncated)
{
	struct tiny_elf e;
	size_t plen, len;
	uint8_t *payload, *bz;
	struct img im;

	tiny_elf(&e);
	payload = zstd_of(&e, sizeof(e), &plen);
	ASSERT_LT(16, plen) TH_LOG("libzstd could not compress the tiny ELF");
	bz = bzimage_with(payload, plen / 2, &len);
	im = with_section(find_sec(SEC_KERNEL), bz, len);
	EXPECT_BZIMAGE_BOOT(im, "zstd payload does not decompress");
}

TEST_F(eif, zstd_decompression_bomb)
{
	size_t plen, len;
	uint8_t *payload = zstd_bomb(600, &plen), *bz;
	struct img im;

	bz = bzimage_with(payload, plen, &len);
	im = with_section(find_sec(SEC_KERNEL), bz, len);
	EXPECT_BZIMAGE_BOOT(im, "more than");
}

TEST_F(eif, gzip_decompression_bomb)
{
	size_t plen, len;
	uint8_t *payload = gzip_bomb(600, &plen), *bz;
	struct img im;

	bz = bzimage_with(payload, plen, &len);
	im = with_section(find_sec(SEC_KERNEL), bz, len);
	EXPECT_BZIMAGE_BOOT(im, "more than");
}

TEST_F(eif, payload_not_elf)
{
	static const char text[4096] = "not an ELF file";

	struct img im = image_with_elf(text, sizeof(text));

	EXPECT_BZIMAGE_BOOT(im, "not an x86-64 ELF kernel");
}

TEST_F(eif, elf_wrong_machine)
{
	struct tiny_elf e;
	struct img im;

	tiny_elf(&e);
	e.eh.e_machine = EM_AARCH64;
	im = image_with_elf(&e, sizeof(e));
	EXPECT_BZIMAGE_BOOT(im, "not an x86-64 ELF kernel");
}

TEST_F(eif, elf_program_headers_past_the_file)
{
	struct tiny_elf e;
	struct img im;

	tiny_elf(&e);
	e.eh.e_phnum = 0xffff;
	im = image_with_elf(&e, sizeof(e));
	EXPECT_BZIMAGE_BOOT(im, "program headers are not usable");
}

TEST_F(eif, elf_phentsize)
{
	struct tiny_elf e;
	struct img im;

	tiny_elf(&e);
	e.eh.e_phentsize = 32;
	im = image_with_elf(&e, sizeof(e));
	EXPECT_BZIMAGE_BOOT(im, "program headers are not usable");
}

TEST_F(eif, elf_phoff_wraps)
{
	struct tiny_elf e;
	struct img im;

	tiny_elf(&e);
	e.eh.e_phoff = UINT64_MAX - 8;
	im = image_with_elf(&e, sizeof(e));
	EXPECT_BZIMAGE_BOOT(im, "program headers are not usable");
}

TEST_F(eif, elf_segment_past_the_file)
{
	struct tiny_elf e;
	struct img im;

	tiny_elf(&e);
	e.ph[0].p_filesz = UINT64_MAX - 16;
	im = image_with_elf(&e, sizeof(e));
	EXPECT_BZIMAGE_BOOT(im, "segment lies outside the file");
}

TEST_F(eif, elf_segment_wraps)
{
	struct tiny_elf e;
	struct img im;

	tiny_elf(&e);
	e.ph[0].p_paddr = UINT64_MAX - 4095;
	e.ph[0].p_memsz = 8192;
	im = image_with_elf(&e, sizeof(e));
	EXPECT_BZIMAGE_BOOT(im, "wraps around");
}

TEST_F(eif, elf_without_pvh_note)
{
	struct tiny_elf e;
	struct img im;

	tiny_elf(&e);
	e.note[2] = 17;
	im = image_with_elf(&e, sizeof(e));
	EXPECT_BZIMAGE_BOOT(im, "no PVH entry point");
}

TEST_F(eif, elf_note_sizes_wrap)
{
	struct tiny_elf e;
	struct img im;

	tiny_elf(&e);
	e.note[0] = 0xfffffffc;
	im = image_with_elf(&e, sizeof(e));
	EXPECT_BZIMAGE_BOOT(im, "no PVH entry point");
}

TEST_F(eif, elf_too_big_for_the_memory)
{
	struct tiny_elf e;
	struct img im;

	tiny_elf(&e);
	e.ph[0].p_memsz = ENCLAVE_MEM;
	im = image_with_elf(&e, sizeof(e));
	EXPECT_BZIMAGE_BOOT(im, "do not both fit");
}

/* The fit check added the segment's end and the initrd's size unchecked. */
TEST_F(eif, elf_fit_check_wraps)
{
	struct tiny_elf e;
	struct img im;

	tiny_elf(&e);
	e.ph[0].p_paddr = UINT64_MAX - 2 * 4096 - 63;
	e.ph[0].p_memsz = 64;
	im = image_with_elf(&e, sizeof(e));
	EXPECT_BZIMAGE_BOOT(im, "do not both fit");
}

/* ---- mutation fuzz -------------------------------------------------------- */

/*
 * Mutants of the valid image: a few bytes of the header, the section
 * headers, the bzImage setup header or the command line changed, the CRC
 * made right again (or not, one time in eight).  Any answer but a crash
 * is fine: ENOEXEC with no spawn, or a start (terminated at once).
 */
TEST_F_TIMEOUT(eif, mutation_fuzz, 900)
{
	int n = getenv("NE_EIF_FUZZ") ? atoi(getenv("NE_EIF_FUZZ")) : 24;
	int k = find_sec(SEC_KERNEL), c = find_sec(SEC_CMDLINE);
	uint64_t koff = valid[k].data - valid_img.buf;
	uint64_t coff = valid[c].data - valid_img.buf;
	int i, refused = 0, booted = 0;

	srandom(fuzz_seed);
	for (i = 0; i < n; i++) {
		struct img im = copy_valid();
		int j, flips = 1 + random() % 4, o;
		char *t = NULL, why[256] = "";

		for (j = 0; j < flips; j++) {
			uint64_t at;

			switch (random() % 4) {
			case 0: at = random() % EIF_HDR; break;
			case 1: at = be64(valid_hdr + 28 + 8 * (random() % valid_nr)) +
				     random() % EIF_SEC_HDR; break;
			case 2: at = koff + 0x1f0 + random() % 0x70; break;
			default: at = coff + random() % valid[c].size; break;
			}
			if (random() % 2)
				im.buf[at] ^= 1 << (random() % 8);
			else
				im.buf[at] = random();
		}
		if (random() % 8)
			fix_crc(&im);
		o = start_image(&im, ENCLAVE_MEM, &t, why, sizeof(why));
		ASSERT_NE(-1, o)
			TH_LOG("mutant %d (seed %u): %s; trace: %.600s", i, fuzz_seed, why, t);
		ASSERT_TRUE(device_alive())
			TH_LOG("mutant %d (seed %u): the device no longer answers", i, fuzz_seed);
		refused += o == REFUSED;
		booted += o == BOOTED;
		free(t);
		free(im.buf);
	}
	TH_LOG("seed %u: %d mutants, %d refused with ENOEXEC, %d started", fuzz_seed,
	       n, refused, booted);
}

int main(int argc, char **argv)
{
	const char *eif = getenv("NE_EIF");

	if (getenv("NE_EIF_SEED")) {
		fuzz_seed = strtoul(getenv("NE_EIF_SEED"), NULL, 0);
		seed_given = 1;
	}
	if (argc >= 3 && !strcmp(argv[1], "--seed")) {
		fuzz_seed = strtoul(argv[2], NULL, 0);
		seed_given = 1;
		argv[2] = argv[0];
		argv += 2;
		argc -= 2;
	}
	if (!seed_given)
		fuzz_seed = time(NULL) ^ getpid();
	printf("# seed %u (replay: NE_EIF_SEED=%u)\n", fuzz_seed, fuzz_seed);
	if (!eif || load_valid(eif))
		printf("# NE_EIF (%s) is not a usable EIF\n", eif ? eif : "unset");
	return test_harness_run(argc, argv);
}
