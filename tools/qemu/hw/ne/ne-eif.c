/*
 * Reading the enclave image (EIF) out of donated memory: see ne-eif.h.
 * Format: shared/spec/enclave-launch.md section 1 (big-endian, a 548-byte
 * header with a table of up to 32 sections, each a 12-byte header and its
 * data, CRC-32 over the header up to the CRC field and then every section
 * header and data in table order).
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include <zlib.h>
#include "ne-eif.h"
#include "ne-kernel.h"

#define EIF_CRC_OFFSET          544
#define EIF_SECTION_HDR_SIZE    12
#define EIF_MAX_SECTIONS        32
#define EIF_MIN_VERSION         4
#define EIF_FLAG_ARM64          0x1
/* Linux's x86 COMMAND_LINE_SIZE; the launcher appends a few words. */
#define EIF_MAX_CMDLINE         2048
#define EIF_COPY_CHUNK          (1 * MiB)


enum {
    EIF_SEC_KERNEL = 1,
    EIF_SEC_CMDLINE = 2,
    EIF_SEC_RAMDISK = 3,
    EIF_SEC_SIGNATURE = 4,
    EIF_SEC_METADATA = 5,
};

typedef struct EifSection {
    uint16_t type;
    uint64_t offset;            /* of the section header, from the EIF start */
    uint64_t size;              /* of the data */
} EifSection;

typedef struct EifReader {
    NESlot *slot;
    const bool *cancel;         /* set (by another thread): stop reading */
    uint64_t base;              /* enclave-physical address of the EIF */
    uint64_t limit;             /* bytes from base to the end of memory */
    uint16_t nr;
    EifSection sec[EIF_MAX_SECTIONS];
    uint32_t crc;
    struct ne_eif_measure *measure;     /* fed what the CRC is fed */
} EifReader;

static bool eif_read(EifReader *r, uint64_t off, void *buf, uint64_t len,
                     Error **errp)
{
    if (r->cancel && qatomic_read(r->cancel)) {
        error_setg(errp, "the start was abandoned (its slot is gone)");
        return false;
    }
    if (off > r->limit || len > r->limit - off ||
        !ne_hv_slot_read(r->slot, r->base + off, buf, len)) {
        error_setg(errp, "bytes %" PRIu64 "..%" PRIu64 " of the image lie "
                   "outside the enclave memory", off, off + len);
        return false;
    }
    return true;
}

static bool eif_check_header(EifReader *r, const uint8_t *hdr, Error **errp)
{
    uint16_t version = lduw_be_p(hdr + 4);
    uint16_t flags = lduw_be_p(hdr + 6);
    int i;

    if (memcmp(hdr, ".eif", 4)) {
        error_setg(errp, "no EIF magic at 8 MiB (found %02x %02x %02x %02x)",
                   hdr[0], hdr[1], hdr[2], hdr[3]);
        return false;
    }
    if (version < EIF_MIN_VERSION) {
        error_setg(errp, "EIF version %u is too old (4 or later)", version);
        return false;
    }
    if (flags & EIF_FLAG_ARM64) {
        error_setg(errp, "the image is for aarch64, the enclave is x86_64");
        return false;
    }
    r->nr = lduw_be_p(hdr + 26);
    if (r->nr == 0 || r->nr > EIF_MAX_SECTIONS) {
        error_setg(errp, "the header declares %u sections (1 to %d)",
                   r->nr, EIF_MAX_SECTIONS);
        return false;
    }
    for (i = 0; i < r->nr; i++) {
        r->sec[i].offset = ldq_be_p(hdr + 28 + 8 * i);
        r->sec[i].size = ldq_be_p(hdr + 284 + 8 * i);
    }
    return true;
}

/* Section @i, as the table says: after the header, inside the memory. */
static bool eif_check_bounds(EifReader *r, int i, Error **errp)
{
    const EifSection *s = &r->sec[i];

    if (s->offset < NE_EIF_HEADER_SIZE || s->offset > r->limit ||
        r->limit - s->offset < EIF_SECTION_HDR_SIZE ||
        s->size > r->limit - s->offset - EIF_SECTION_HDR_SIZE) {
        error_setg(errp, "section %d (%" PRIu64 " bytes at offset %" PRIu64
                   ") does not fit in the enclave memory", i, s->size,
                   s->offset);
        return false;
    }
    return true;
}

/*
 * The image ends with its last section; it may be no larger than
 * @max_size (enclave-eif-max).  Only the table is looked at: nothing past
 * the cap is read, copied or decompressed.
 */
static bool eif_check_size(EifReader *r, uint64_t max_size, Error **errp)
{
    uint64_t end = NE_EIF_HEADER_SIZE;
    int i;

    for (i = 0; i < r->nr; i++) {
        /* inside limit (eif_check_bounds), so the sum cannot wrap */
        end = MAX(end, r->sec[i].offset + EIF_SECTION_HDR_SIZE +
                       r->sec[i].size);
    }
    if (end > max_size) {
        error_setg(errp, "the image is %" PRIu64 " bytes, larger than "
                   "enclave-eif-max (%" PRIu64 " bytes)", end, max_size);
        return false;
    }
    return true;
}

/* Section @i's header, agreeing with the table. */
static bool eif_check_section(EifReader *r, int i, Error **errp)
{
    EifSection *s = &r->sec[i];
    uint8_t sh[EIF_SECTION_HDR_SIZE];

    if (!eif_read(r, s->offset, sh, sizeof(sh), errp)) {
        return false;
    }
    s->type = lduw_be_p(sh);
    if (s->type < EIF_SEC_KERNEL || s->type > EIF_SEC_METADATA) {
        error_setg(errp, "section %d has invalid type %u", i, s->type);
        return false;
    }
    if (lduw_be_p(sh + 2)) {
        error_setg(errp, "section %d has flags 0x%x (must be 0)", i,
                   lduw_be_p(sh + 2));
        return false;
    }
    if (ldq_be_p(sh + 4) != s->size) {
        error_setg(errp, "section %d header says %" PRIu64 " bytes, the "
                   "table %" PRIu64, i, ldq_be_p(sh + 4), s->size);
        return false;
    }
    return true;
}

/*
 * One kernel, one command line, ramdisks, at most one signature and one
 * metadata section (which one would count?); no overlap, so no byte twice.
 */
static bool eif_check_layout(EifReader *r, Error **errp)
{
    int count[EIF_SEC_METADATA + 1] = { 0 };
    int i, j;

    for (i = 0; i < r->nr; i++) {
        const EifSection *a = &r->sec[i];

        count[a->type]++;
        for (j = i + 1; j < r->nr; j++) {
            const EifSection *b = &r->sec[j];
            /* both lie inside limit, so the sums cannot wrap */
            uint64_t a_end = a->offset + EIF_SECTION_HDR_SIZE + a->size;
            uint64_t b_end = b->offset + EIF_SECTION_HDR_SIZE + b->size;

            if (a->offset < b_end && b->offset < a_end) {
                error_setg(errp, "sections %d and %d overlap", i, j);
                return false;
            }
        }
        if (a->type == EIF_SEC_CMDLINE && a->size >= EIF_MAX_CMDLINE) {
            error_setg(errp, "the command line has %" PRIu64 " bytes (at "
                       "most %d)", a->size, EIF_MAX_CMDLINE - 1);
            return false;
        }
        if (a->type == EIF_SEC_SIGNATURE && a->size > NE_EIF_SIGNATURE_MAX) {
            error_setg(errp, "the signature section has %" PRIu64 " bytes "
                       "(at most %d)", a->size, NE_EIF_SIGNATURE_MAX);
            return false;
        }
    }
    if (count[EIF_SEC_KERNEL] != 1 || count[EIF_SEC_CMDLINE] != 1 ||
        count[EIF_SEC_RAMDISK] == 0) {
        error_setg(errp, "the image needs one kernel, one command line and "
                   "at least one ramdisk (it has %d, %d and %d)",
                   count[EIF_SEC_KERNEL], count[EIF_SEC_CMDLINE],
                   count[EIF_SEC_RAMDISK]);
        return false;
    }
    if (count[EIF_SEC_SIGNATURE] > 1 || count[EIF_SEC_METADATA] > 1) {
        error_setg(errp, "the image has %d signature and %d metadata "
                   "sections (at most one of each)",
                   count[EIF_SEC_SIGNATURE], count[EIF_SEC_METADATA]);
        return false;
    }
    return true;
}

/*
 * Copies section @i's header and data once: into the CRC, the measurements
 * and to @fd.
 */
static bool eif_copy_section(EifReader *r, int i, int fd, char *cmdline,
                             Error **errp)
{
    const EifSection *s = &r->sec[i];
    g_autofree uint8_t *buf = g_malloc(MIN(s->size, EIF_COPY_CHUNK) +
                                       EIF_SECTION_HDR_SIZE);
    uint64_t done = 0;
    const char *why;

    /* the header as it was checked (its flags were 0), not a second read */
    stw_be_p(buf, s->type);
    stw_be_p(buf + 2, 0);
    stq_be_p(buf + 4, s->size);
    r->crc = crc32(r->crc, buf, EIF_SECTION_HDR_SIZE);
    if (!ne_eif_measure_section(r->measure, s->type, &why)) {
        error_setg(errp, "section %d cannot be measured: %s", i, why);
        return false;
    }

    while (done < s->size) {
        uint64_t n = MIN(s->size - done, EIF_COPY_CHUNK);

        if (!eif_read(r, s->offset + EIF_SECTION_HDR_SIZE + done, buf, n,
                      errp)) {
            return false;
        }
        r->crc = crc32(r->crc, buf, n);
        if (!ne_eif_measure_data(r->measure, buf, n, &why)) {
            error_setg(errp, "section %d cannot be measured: %s", i, why);
            return false;
        }
        if (cmdline) {
            memcpy(cmdline + done, buf, n);
        } else if (fd >= 0 && qemu_write_full(fd, buf, n) != n) {
            error_setg_errno(errp, errno, "cannot keep the image");
            return false;
        }
        done += n;
    }
    return true;
}

/*
 * The kernel must be a bzImage whose setup header holds together: the
 * real-mode setup inside the kernel and, from boot protocol 2.08 on, the
 * compressed payload it declares too (the boot loader and the
 * decompressor read them).
 */
static bool eif_check_kernel(int fd, Error **errp)
{
    uint8_t hdr[BZ_HEADER_END];
    off_t size = lseek(fd, 0, SEEK_END);
    uint64_t setup, start, length;

    if (size < BZ_HEADER_END ||
        pread(fd, hdr, sizeof(hdr), 0) != sizeof(hdr) ||
        memcmp(hdr + BZ_MAGIC, "HdrS", 4)) {
        error_setg(errp, "the kernel section is not a bzImage");
        return false;
    }
    setup = ((hdr[BZ_SETUP_SECTS] ? hdr[BZ_SETUP_SECTS] : 4) + 1) * 512ULL;
    if (setup >= size) {
        error_setg(errp, "the bzImage's setup (%" PRIu64 " bytes) leaves no "
                   "kernel in its %" PRIu64 " bytes", setup, (uint64_t)size);
        return false;
    }
    if (lduw_le_p(hdr + BZ_VERSION) < BZ_MIN_VERSION) {
        return true;
    }
    start = setup + (uint32_t)ldl_le_p(hdr + BZ_PAYLOAD_OFFSET);
    length = (uint32_t)ldl_le_p(hdr + BZ_PAYLOAD_LENGTH);
    if (start > size || length > size - start) {
        error_setg(errp, "the bzImage's payload (%" PRIu64 " bytes at %"
                   PRIu64 ") lies outside its %" PRIu64 " bytes", length,
                   start, (uint64_t)size);
        return false;
    }
    return true;
}

/* The command line must be text; the builder may or may not end it in NUL. */
static bool eif_check_cmdline(const char *cmdline, uint64_t size,
                              Error **errp)
{
    uint64_t i;

    for (i = 0; i < size; i++) {
        if (cmdline[i] == '\0' && i == size - 1) {
            break;
        }
        if (!g_ascii_isprint(cmdline[i]) && cmdline[i] != '\n' &&
            cmdline[i] != '\t') {
            error_setg(errp, "the command line has a non-text byte 0x%02x",
                       (uint8_t)cmdline[i]);
            return false;
        }
    }
    return true;
}

static int eif_memfd(const char *name, Error **errp)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

    if (fd < 0) {
        error_setg_errno(errp, errno, "memfd_create");
    }
    return fd;
}

static bool eif_unpack(EifReader *r, const uint8_t *hdr, NEEifImage *img,
                       Error **errp)
{
    uint64_t end = NE_EIF_HEADER_SIZE;
    const char *why;
    int i;

    img->kernel_fd = eif_memfd("enclave-kernel", errp);
    img->initrd_fd = img->kernel_fd < 0 ? -1 :
                     eif_memfd("enclave-initrd", errp);
    if (img->initrd_fd < 0) {
        return false;
    }
    r->crc = crc32(0, hdr, EIF_CRC_OFFSET);
    for (i = 0; i < r->nr; i++) {
        const EifSection *s = &r->sec[i];
        int fd = -1;
        char *cmdline = NULL;

        if (s->type == EIF_SEC_KERNEL) {
            fd = img->kernel_fd;
        } else if (s->type == EIF_SEC_RAMDISK) {
            fd = img->initrd_fd;
        } else if (s->type == EIF_SEC_CMDLINE) {
            cmdline = img->cmdline = g_malloc0(s->size + 1);
        }
        if (!eif_copy_section(r, i, fd, cmdline, errp)) {
            return false;
        }
        if (cmdline && !eif_check_cmdline(cmdline, s->size, errp)) {
            return false;
        }
        end = MAX(end, s->offset + EIF_SECTION_HDR_SIZE + s->size);
    }
    if (r->crc != ldl_be_p(hdr + EIF_CRC_OFFSET)) {
        error_setg(errp, "CRC mismatch: the header says 0x%08x, the image "
                   "has 0x%08x", ldl_be_p(hdr + EIF_CRC_OFFSET), r->crc);
        return false;
    }
    img->eif_size = end;
    if (!ne_eif_measure_finish(r->measure, &img->pcrs, &why)) {
        error_setg(errp, "%s", why);
        return false;
    }
    return eif_check_kernel(img->kernel_fd, errp);
}

void ne_eif_release(NEEifImage *img)
{
    if (img->kernel_fd >= 0) {
        close(img->kernel_fd);
    }
    if (img->initrd_fd >= 0) {
        close(img->initrd_fd);
    }
    g_free(img->cmdline);
    img->kernel_fd = img->initrd_fd = -1;
    img->cmdline = NULL;
    img->eif_size = 0;
}

bool ne_eif_load(NESlot *slot, uint64_t addr, uint64_t max_size,
                 const bool *cancel, NEEifImage *img, Error **errp)
{
    EifReader r = { .slot = slot, .cancel = cancel, .base = addr };
    uint8_t hdr[NE_EIF_HEADER_SIZE];
    int i;

    img->kernel_fd = img->initrd_fd = -1;
    img->cmdline = NULL;
    if (addr >= slot->mem_size) {
        error_setg(errp, "the enclave memory ends before 8 MiB");
        return false;
    }
    r.limit = slot->mem_size - addr;
    if (max_size < NE_EIF_HEADER_SIZE) {
        error_setg(errp, "enclave-eif-max (%" PRIu64 " bytes) leaves no "
                   "room for the header", max_size);
        return false;
    }
    if (!eif_read(&r, 0, hdr, sizeof(hdr), errp) ||
        !eif_check_header(&r, hdr, errp)) {
        return false;
    }
    for (i = 0; i < r.nr; i++) {
        if (!eif_check_bounds(&r, i, errp)) {
            return false;
        }
    }
    if (!eif_check_size(&r, max_size, errp)) {
        return false;
    }
    for (i = 0; i < r.nr; i++) {
        if (!eif_check_section(&r, i, errp)) {
            return false;
        }
    }
    r.measure = ne_eif_measure_new();
    if (!r.measure) {
        error_setg(errp, "out of memory");
        return false;
    }
    if (!eif_check_layout(&r, errp) || !eif_unpack(&r, hdr, img, errp)) {
        ne_eif_measure_free(r.measure);
        ne_eif_release(img);
        return false;
    }
    ne_eif_measure_free(r.measure);
    return true;
}
