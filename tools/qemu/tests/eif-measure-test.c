/*
 * The hypervisor's image measurements (hw/ne/ne-eif-measure.c) and its
 * check of a signed image (hw/ne/ne-eif-sig.c) on a real EIF, printed for
 * tests/eif-measure to compare with nectl describe-eif.
 *
 *   eif-measure-test EIF                  PCR0, PCR1, PCR2 of the image,
 *                                         and PCR8 of a signed one whose
 *                                         signature holds; every section
 *                                         is fed as the table lists it
 *   eif-measure-test EIF --sign PEMFILE   the image with a signature
 *                                         section added, holding PEMFILE
 *                                         as nitro-cli writes it (a CBOR
 *                                         array of one map whose fields
 *                                         are arrays of bytes) but a junk
 *                                         signature: refused
 *   eif-measure-test EIF --raw-signature FILE
 *                                         the same with FILE as the whole
 *                                         signature section (bad ones)
 *
 * Prints "PCRn <hex>" lines; exits 1 with the measurement's reason when it
 * refuses the image, 2 on a usage or I/O error.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>

#include "ne-eif-measure.h"

#define EIF_HEADER_SIZE         548
#define EIF_NR_SECTIONS_AT      26
#define EIF_OFFSETS_AT          28
#define EIF_SIZES_AT            (EIF_OFFSETS_AT + 32 * 8)
#define EIF_SECTION_HDR_SIZE    12

static void die(const char *what)
{
    fprintf(stderr, "eif-measure-test: %s\n", what);
    exit(2);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (!f || fseek(f, 0, SEEK_END)) {
        die(path);
    }
    n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET)) {
        die(path);
    }
    buf = malloc(n ? n : 1);
    if (!buf || fread(buf, 1, n, f) != (size_t)n) {
        die(path);
    }
    fclose(f);
    *len = n;
    return buf;
}

static uint64_t be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;

    while (bytes--) {
        v = v << 8 | *p++;
    }
    return v;
}

/*
 * Feeds @len bytes in odd-sized chunks, as a reader copying in pieces (a
 * signature section in pieces of 1000).
 */
static bool feed(struct ne_eif_measure *m, const uint8_t *p, size_t len,
                 size_t chunk, const char **why)
{
    while (len) {
        size_t n = len < chunk ? len : chunk;

        if (!ne_eif_measure_data(m, p, n, why)) {
            return false;
        }
        p += n;
        len -= n;
    }
    return true;
}

/* nitro-cli's signature section around the PEM in @pem. */
static uint8_t *signature_section(const uint8_t *pem, size_t pem_len,
                                  size_t *len)
{
    cbor_item_t *array = cbor_new_definite_array(1);
    cbor_item_t *entry = cbor_new_definite_map(2);
    cbor_item_t *cert = cbor_new_definite_array(pem_len);
    cbor_item_t *sig = cbor_new_definite_array(4);
    unsigned char *buf = NULL;
    size_t size, i;

    for (i = 0; i < pem_len; i++) {
        cbor_array_push(cert, cbor_move(cbor_build_uint8(pem[i])));
    }
    for (i = 0; i < 4; i++) {
        cbor_array_push(sig, cbor_move(cbor_build_uint8(0xd0 + i)));
    }
    cbor_map_add(entry, (struct cbor_pair) {
        cbor_move(cbor_build_string("signing_certificate")), cbor_move(cert) });
    cbor_map_add(entry, (struct cbor_pair) {
        cbor_move(cbor_build_string("signature")), cbor_move(sig) });
    cbor_array_push(array, cbor_move(entry));
    *len = cbor_serialize_alloc(array, &buf, &size);
    cbor_decref(&array);
    if (!*len) {
        die("cannot build the signature section");
    }
    return buf;
}

static void print_pcr(const char *name, const uint8_t *pcr)
{
    int i;

    printf("%s ", name);
    for (i = 0; i < NE_EIF_PCR_SIZE; i++) {
        printf("%02x", pcr[i]);
    }
    printf("\n");
}

/*
 * Feeds @eif's sections to @m in table order, then @sig as one more
 * signature section if given.  NULL, or why the measurement refuses it.
 */
static const char *measure(struct ne_eif_measure *m, const uint8_t *eif,
                           size_t len, const uint8_t *sig, size_t sig_len,
                           struct ne_eif_pcrs *pcrs)
{
    static char where[256];
    unsigned int i, nr = be(eif + EIF_NR_SECTIONS_AT, 2);
    const char *why;

    for (i = 0; i < nr && i < 32; i++) {
        uint64_t off = be(eif + EIF_OFFSETS_AT + 8 * i, 8);
        uint64_t size = be(eif + EIF_SIZES_AT + 8 * i, 8);
        unsigned int type;

        if (off > len || EIF_SECTION_HDR_SIZE > len - off ||
            size > len - off - EIF_SECTION_HDR_SIZE) {
            die("a section lies outside the file");
        }
        type = be(eif + off, 2);
        if (!ne_eif_measure_section(m, type, &why) ||
            !feed(m, eif + off + EIF_SECTION_HDR_SIZE, size,
                  type == NE_EIF_SECTION_SIGNATURE ? 1000 : 65519, &why)) {
            snprintf(where, sizeof(where), "section %u: %s", i, why);
            return where;
        }
    }
    if (sig && (!ne_eif_measure_section(m, NE_EIF_SECTION_SIGNATURE, &why) ||
                !feed(m, sig, sig_len, 1000, &why))) {
        snprintf(where, sizeof(where), "the added signature section: %s",
                 why);
        return where;
    }
    return ne_eif_measure_finish(m, pcrs, &why) ? NULL : why;
}

int main(int argc, char **argv)
{
    struct ne_eif_measure *m = ne_eif_measure_new();
    struct ne_eif_pcrs pcrs;
    uint8_t *eif, *extra = NULL, *sig = NULL;
    size_t len, extra_len = 0, sig_len = 0;
    const char *why;
    int rc;

    if (argc != 2 && argc != 4) {
        die("usage: eif-measure-test EIF [--sign PEM | --raw-signature "
            "FILE]");
    }
    if (!m) {
        die("out of memory");
    }
    eif = slurp(argv[1], &len);
    if (len < EIF_HEADER_SIZE) {
        die("not an EIF");
    }
    if (argc == 4) {
        extra = slurp(argv[3], &extra_len);
        if (!strcmp(argv[2], "--sign")) {
            sig = signature_section(extra, extra_len, &sig_len);
        } else if (!strcmp(argv[2], "--raw-signature")) {
            sig = extra;
            sig_len = extra_len;
            extra = NULL;
        } else {
            die("unknown option");
        }
    }
    why = measure(m, eif, len, sig, sig_len, &pcrs);
    rc = why ? 1 : 0;
    if (why) {
        fprintf(stderr, "eif-measure-test: %s\n", why);
    } else {
        print_pcr("PCR0", pcrs.pcr0);
        print_pcr("PCR1", pcrs.pcr1);
        print_pcr("PCR2", pcrs.pcr2);
        if (pcrs.is_signed) {
            print_pcr("PCR8", pcrs.pcr8);
        }
    }
    ne_eif_measure_free(m);
    free(eif);
    free(extra);
    free(sig);
    return rc;
}
