/*
 * The hypervisor's image measurements (hw/ne/ne-eif-measure.c) on a real
 * EIF, printed for tests/eif-measure to compare with nectl describe-eif
 * and with PCR8 computed by the openssl tool.
 *
 *   eif-measure-test EIF                  PCR0, PCR1, PCR2 of the image
 *   eif-measure-test EIF --sign PEMFILE   the image with a signature
 *                                         section holding PEMFILE (as
 *                                         nitro-cli writes it: a CBOR array
 *                                         of one map whose
 *                                         signing_certificate is an array
 *                                         of bytes), PCR8 too
 *   eif-measure-test EIF --raw-signature FILE
 *                                         the same with FILE as the whole
 *                                         signature section (bad ones)
 *
 * Prints "PCRn <hex>" lines; exits 1 with a message when the measurement
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

    if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET)) {
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

/* Feeds @len bytes in odd-sized chunks, as a reader copying in pieces. */
static bool feed(struct ne_eif_measure *m, const uint8_t *p, size_t len)
{
    size_t chunk = 65519;

    while (len) {
        size_t n = len < chunk ? len : chunk;

        if (!ne_eif_measure_data(m, p, n)) {
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

int main(int argc, char **argv)
{
    struct ne_eif_measure *m = ne_eif_measure_new();
    struct ne_eif_pcrs pcrs;
    uint8_t *eif, *extra = NULL, *sig = NULL;
    size_t len, extra_len = 0, sig_len = 0;
    const char *why;
    unsigned int i, nr;

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
    nr = be(eif + EIF_NR_SECTIONS_AT, 2);
    for (i = 0; i < nr && i < 32; i++) {
        uint64_t off = be(eif + EIF_OFFSETS_AT + 8 * i, 8);
        uint64_t size = be(eif + EIF_SIZES_AT + 8 * i, 8);

        if (off > len || size > len - off ||
            EIF_SECTION_HDR_SIZE > len - off - size) {
            die("a section lies outside the file");
        }
        if (!ne_eif_measure_section(m, be(eif + off, 2)) ||
            !feed(m, eif + off + EIF_SECTION_HDR_SIZE, size)) {
            fprintf(stderr, "eif-measure-test: section %u refused\n", i);
            return 1;
        }
    }
    if (sig && (!ne_eif_measure_section(m, NE_EIF_SECTION_SIGNATURE) ||
                !feed(m, sig, sig_len))) {
        fprintf(stderr, "eif-measure-test: the signature section is "
                "refused (over %d bytes?)\n", NE_EIF_SIGNATURE_MAX);
        return 1;
    }
    if (!ne_eif_measure_finish(m, &pcrs, &why)) {
        fprintf(stderr, "eif-measure-test: %s\n", why);
        return 1;
    }
    print_pcr("PCR0", pcrs.pcr0);
    print_pcr("PCR1", pcrs.pcr1);
    print_pcr("PCR2", pcrs.pcr2);
    if (pcrs.is_signed) {
        print_pcr("PCR8", pcrs.pcr8);
    }
    ne_eif_measure_free(m);
    free(eif);
    free(extra);
    free(sig);
    return 0;
}
