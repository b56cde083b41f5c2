/*
 * Direct boot of an enclave kernel: see ne-kernel.h.
 *
 * bzImage layout (ne-kernel.h): since boot protocol 2.08, payload_offset
 * and payload_length say where the compressed kernel starts after the
 * real-mode setup, and its length.  The payload is one compressed stream
 * followed by the kernel's uncompressed size; what it holds is the kernel
 * as an ELF file, which QEMU loads by its program headers.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "elf.h"
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>
#include "ne-kernel.h"


/* A kernel bigger than this is not one we boot directly. */
#define NE_KERNEL_MAX_SIZE      (512 * MiB)
#define NE_KERNEL_CHUNK         (1 * MiB)
#define NE_PAGE_SIZE            4096

struct NEKernelCache {
    char *key;                  /* SHA-256 of the bzImage, or NULL */
    int fd;                     /* its ELF kernel; -1: boot the bzImage */
    uint64_t mem_end;           /* end of its highest loadable segment */
    const char *why;            /* why there is no ELF (fd == -1) */
};

/* ---- reading the bzImage ----------------------------------------------- */

static bool read_all(int fd, void *buf, size_t len, off_t off)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = pread(fd, p, len, off);

        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            return false;
        }
        p += n;
        off += n;
        len -= n;
    }
    return true;
}

static char *file_sha256(int fd, off_t size)
{
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_autofree uint8_t *buf = g_malloc(NE_KERNEL_CHUNK);
    off_t off;

    for (off = 0; off < size; off += NE_KERNEL_CHUNK) {
        size_t len = MIN(NE_KERNEL_CHUNK, size - off);

        if (!read_all(fd, buf, len, off)) {
            return NULL;
        }
        g_checksum_update(sum, buf, len);
    }
    return g_strdup(g_checksum_get_string(sum));
}

/* The compressed payload of the bzImage @fd of @size bytes, or NULL. */
static uint8_t *bz_payload(int fd, off_t size, size_t *len, const char **why,
                           bool *hosts)
{
    uint8_t hdr[BZ_HEADER_END];
    uint64_t start, length;
    unsigned setup_sects;
    uint8_t *payload;

    if (size < BZ_HEADER_END || !read_all(fd, hdr, sizeof(hdr), 0)) {
        *why = "the bzImage is too short";
        return NULL;
    }
    if (lduw_le_p(hdr + BZ_VERSION) < BZ_MIN_VERSION) {
        *why = "boot protocol before 2.08 (no payload_offset)";
        return NULL;
    }
    setup_sects = hdr[BZ_SETUP_SECTS] ? hdr[BZ_SETUP_SECTS] : 4;
    start = (setup_sects + 1) * 512ULL +
            (uint32_t)ldl_le_p(hdr + BZ_PAYLOAD_OFFSET);
    length = (uint32_t)ldl_le_p(hdr + BZ_PAYLOAD_LENGTH);
    if (start > size || length > size - start || length < 8) {
        *why = "the payload lies outside the bzImage";
        return NULL;
    }
    payload = g_malloc(length);
    if (!read_all(fd, payload, length, start)) {
        g_free(payload);
        *why = "cannot read the bzImage";
        *hosts = true;
        return NULL;
    }
    *len = length;
    return payload;
}

/* ---- decompression into a memory file ---------------------------------- */

/*
 * In the decompressors, *@hosts tells a failure of the host's (no memory
 * for the decoder, the memory file not written) from the image's.
 */
static bool write_chunk(int out, const uint8_t *buf, size_t n,
                        const char **why, bool *hosts)
{
    if (qemu_write_full(out, buf, n) != n) {
        *why = "cannot write the ELF kernel";
        *hosts = true;
        return false;
    }
    return true;
}

static bool unxz(const uint8_t *in, size_t len, int out, const char **why,
                 bool *hosts)
{
    lzma_stream s = LZMA_STREAM_INIT;
    g_autofree uint8_t *buf = g_malloc(NE_KERNEL_CHUNK);
    lzma_ret ret;

    /* one stream, no concatenation: the kernel's size follows it */
    if (lzma_stream_decoder(&s, 256 * MiB, 0) != LZMA_OK) {
        *why = "cannot start the xz decoder";
        *hosts = true;
        return false;
    }
    s.next_in = in;
    s.avail_in = len;
    do {
        s.next_out = buf;
        s.avail_out = NE_KERNEL_CHUNK;
        ret = lzma_code(&s, LZMA_FINISH);
        if (s.total_out > NE_KERNEL_MAX_SIZE) {
            lzma_end(&s);
            *why = "the payload decompresses to more than 512 MiB";
            return false;
        }
        if (ret != LZMA_OK && ret != LZMA_STREAM_END) {
            lzma_end(&s);
            *why = "the xz payload does not decompress";
            return false;
        }
        if (!write_chunk(out, buf, NE_KERNEL_CHUNK - s.avail_out, why,
                         hosts)) {
            lzma_end(&s);
            return false;
        }
    } while (ret != LZMA_STREAM_END);
    lzma_end(&s);
    return true;
}

static bool gunzip(const uint8_t *in, size_t len, int out, const char **why,
                   bool *hosts)
{
    z_stream z = { 0 };
    g_autofree uint8_t *buf = g_malloc(NE_KERNEL_CHUNK);
    int ret;

    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {   /* gzip framing */
        *why = "cannot start the gzip decoder";
        *hosts = true;
        return false;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = len;
    do {
        z.next_out = buf;
        z.avail_out = NE_KERNEL_CHUNK;
        ret = inflate(&z, Z_NO_FLUSH);
        if (z.total_out > NE_KERNEL_MAX_SIZE) {
            inflateEnd(&z);
            *why = "the payload decompresses to more than 512 MiB";
            return false;
        }
        if (ret != Z_OK && ret != Z_STREAM_END) {
            inflateEnd(&z);
            *why = "the gzip payload does not decompress";
            return false;
        }
        if (!write_chunk(out, buf, NE_KERNEL_CHUNK - z.avail_out, why,
                         hosts)) {
            inflateEnd(&z);
            return false;
        }
    } while (ret != Z_STREAM_END);
    inflateEnd(&z);
    return true;
}

/*
 * zstd (Debian's 6.12 kernels): one frame, then the kernel's size (4
 * bytes) that the decoder must not take for a next frame.
 */
static bool unzstd(const uint8_t *in, size_t len, int out, const char **why,
                   bool *hosts)
{
    ZSTD_DStream *z = ZSTD_createDStream();
    g_autofree uint8_t *buf = g_malloc(NE_KERNEL_CHUNK);
    ZSTD_inBuffer src = { in, len, 0 };
    uint64_t total = 0;
    size_t ret;

    /* the kernel's own decompressor needs no larger window than this */
    if (!z || ZSTD_isError(ZSTD_DCtx_setParameter(z, ZSTD_d_windowLogMax,
                                                  27))) {
        ZSTD_freeDStream(z);
        *why = "cannot start the zstd decoder";
        *hosts = true;
        return false;
    }
    do {
        ZSTD_outBuffer dst = { buf, NE_KERNEL_CHUNK, 0 };

        ret = ZSTD_decompressStream(z, &dst, &src);
        total += dst.pos;
        if (total > NE_KERNEL_MAX_SIZE) {
            ZSTD_freeDStream(z);
            *why = "the payload decompresses to more than 512 MiB";
            return false;
        }
        if (ZSTD_isError(ret) ||
            (ret && src.pos == src.size && dst.pos < NE_KERNEL_CHUNK)) {
            ZSTD_freeDStream(z);
            *why = "the zstd payload does not decompress";
            return false;
        }
        if (!write_chunk(out, buf, dst.pos, why, hosts)) {
            ZSTD_freeDStream(z);
            return false;
        }
    } while (ret);      /* 0: the frame is complete and flushed */
    ZSTD_freeDStream(z);
    return true;
}

/* ---- the ELF kernel ---------------------------------------------------- */

/* Does the note segment @notes of @len bytes hold Xen's PHYS32_ENTRY? */
static bool has_pvh_note(const uint8_t *notes, uint64_t len)
{
    uint64_t off = 0;

    while (len - off >= 12) {
        uint32_t namesz = ldl_le_p(notes + off);
        uint32_t descsz = ldl_le_p(notes + off + 4);
        uint32_t type = ldl_le_p(notes + off + 8);
        uint64_t name = off + 12;
        uint64_t next = name + QEMU_ALIGN_UP((uint64_t)namesz, 4) +
                        QEMU_ALIGN_UP((uint64_t)descsz, 4);

        if (next > len) {
            return false;
        }
        if (namesz == 4 && !memcmp(notes + name, "Xen", 4) &&
            type == XEN_ELFNOTE_PHYS32_ENTRY && descsz >= 4) {
            return true;
        }
        off = next;
    }
    return false;
}

/*
 * Checks what QEMU's PVH loader needs of the ELF @fd of @size bytes (an
 * x86-64 executable, a PVH entry note) and finds the end of its loadable
 * segments in guest-physical memory.
 */
static bool check_elf(int fd, uint64_t size, uint64_t *mem_end,
                      const char **why)
{
    Elf64_Ehdr eh;
    g_autofree Elf64_Phdr *ph = NULL;
    bool pvh = false;
    int i;

    *mem_end = 0;
    if (size < sizeof(eh) || !read_all(fd, &eh, sizeof(eh), 0) ||
        memcmp(eh.e_ident, ELFMAG, 4) ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_ident[EI_DATA] != ELFDATA2LSB ||
        le16_to_cpu(eh.e_machine) != EM_X86_64) {
        *why = "the payload is not an x86-64 ELF kernel";
        return false;
    }
    /* QEMU's elfboot refuses these flags outright */
    if (le32_to_cpu(eh.e_flags) & 0x00010004 ||
        le16_to_cpu(eh.e_phentsize) != sizeof(Elf64_Phdr) ||
        le16_to_cpu(eh.e_phnum) == 0 ||
        le64_to_cpu(eh.e_phoff) > size ||
        le16_to_cpu(eh.e_phnum) * sizeof(Elf64_Phdr) >
            size - le64_to_cpu(eh.e_phoff)) {
        *why = "the ELF kernel's program headers are not usable";
        return false;
    }
    ph = g_new(Elf64_Phdr, le16_to_cpu(eh.e_phnum));
    if (!read_all(fd, ph, le16_to_cpu(eh.e_phnum) * sizeof(Elf64_Phdr),
                  le64_to_cpu(eh.e_phoff))) {
        *why = "cannot read the ELF kernel";
        return false;
    }
    for (i = 0; i < le16_to_cpu(eh.e_phnum); i++) {
        uint32_t type = le32_to_cpu(ph[i].p_type);
        uint64_t off = le64_to_cpu(ph[i].p_offset);
        uint64_t filesz = le64_to_cpu(ph[i].p_filesz);
        uint64_t paddr = le64_to_cpu(ph[i].p_paddr);
        uint64_t memsz = le64_to_cpu(ph[i].p_memsz);
        g_autofree uint8_t *notes = NULL;

        if (off > size || filesz > size - off) {
            *why = "an ELF segment lies outside the file";
            return false;
        }
        if (type == PT_LOAD) {
            if (paddr + memsz < paddr) {
                *why = "an ELF segment wraps around";
                return false;
            }
            *mem_end = MAX(*mem_end, paddr + memsz);
        } else if (type == PT_NOTE && !pvh && filesz <= 1 * MiB) {
            notes = g_malloc(filesz);
            pvh = read_all(fd, notes, filesz, off) &&
                  has_pvh_note(notes, filesz);
        }
    }
    if (!pvh) {
        *why = "the kernel has no PVH entry point (CONFIG_PVH)";
        return false;
    }
    return true;
}

/*
 * Takes the ELF kernel out of the bzImage @fd into a new memory file,
 * sealed (waiting NE_SEAL_WAIT_MS at most: once per kernel, so a budget of
 * its own).  *@hosts tells whether a failure was the host's, not the
 * image's.
 */
static int extract(int fd, off_t size, uint64_t *mem_end, const char **why,
                   bool *hosts)
{
    static const uint8_t xz_magic[] = { 0xfd, '7', 'z', 'X', 'Z', 0 };
    static const uint8_t gz_magic[] = { 0x1f, 0x8b };
    static const uint8_t zstd_magic[] = { 0x28, 0xb5, 0x2f, 0xfd };
    g_autofree uint8_t *payload = NULL;
    size_t len;
    int out;
    bool ok;

    payload = bz_payload(fd, size, &len, why, hosts);
    if (!payload) {
        return -1;
    }
    out = memfd_create("enclave-vmlinux", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (out < 0) {
        *why = "memfd_create failed";
        *hosts = true;
        return -1;
    }
    if (!memcmp(payload, xz_magic, sizeof(xz_magic))) {
        ok = unxz(payload, len, out, why, hosts);
    } else if (!memcmp(payload, gz_magic, sizeof(gz_magic))) {
        ok = gunzip(payload, len, out, why, hosts);
    } else if (!memcmp(payload, zstd_magic, sizeof(zstd_magic))) {
        ok = unzstd(payload, len, out, why, hosts);
    } else {
        *why = "the kernel is compressed with neither xz, gzip nor zstd";
        ok = false;
    }
    if (!ok || !check_elf(out, lseek(out, 0, SEEK_END), mem_end, why)) {
        close(out);
        return -1;
    }
    if (ne_seal_boot_file(out, NE_SEAL_WAIT_MS, NULL) < 0) {
        *why = "cannot seal the ELF kernel";
        *hosts = true;
        close(out);
        return -1;
    }
    return out;
}

/* ---- the cache --------------------------------------------------------- */

NEKernelCache *ne_kernel_cache_new(void)
{
    NEKernelCache *c = g_new0(NEKernelCache, 1);

    c->fd = -1;
    return c;
}

static void ne_kernel_cache_clear(NEKernelCache *c)
{
    if (c->fd >= 0) {
        close(c->fd);
    }
    g_free(c->key);
    c->key = NULL;
    c->fd = -1;
    c->mem_end = 0;
    c->why = NULL;
}

void ne_kernel_cache_free(NEKernelCache *c)
{
    if (c) {
        ne_kernel_cache_clear(c);
        g_free(c);
    }
}

int ne_kernel_direct_boot_fd(NEKernelCache *c, int bzimage_fd,
                             uint64_t mem_size, uint64_t initrd_size,
                             bool *cached, const char **why)
{
    off_t size = lseek(bzimage_fd, 0, SEEK_END);
    g_autofree char *key = size > 0 ? file_sha256(bzimage_fd, size) : NULL;
    bool hosts = false;

    *cached = c->key && key && !strcmp(c->key, key);
    if (!*cached) {
        ne_kernel_cache_clear(c);
        if (!key) {
            *why = "cannot read the bzImage";
            return -1;
        }
        c->key = g_steal_pointer(&key);
        c->fd = extract(bzimage_fd, size, &c->mem_end, &c->why, &hosts);
    }
    if (c->fd < 0) {
        *why = c->why;
        if (hosts) {
            ne_kernel_cache_clear(c);
        }
        return -1;
    }
    /*
     * QEMU puts the initrd at the top of memory, page aligned, and unlike
     * the bzImage's decompressor, the PVH loader does not move the kernel
     * out of its way: the two must not overlap.
     */
    if (c->mem_end > mem_size || initrd_size > mem_size - c->mem_end ||
        mem_size - c->mem_end - initrd_size < 2 * NE_PAGE_SIZE) {
        *why = "the ELF kernel and the initrd do not both fit in the "
               "enclave's memory";
        return -1;
    }
    return c->fd;
}
