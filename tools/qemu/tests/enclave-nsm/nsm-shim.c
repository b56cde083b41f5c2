/*
 * A stand-in for the Linux driver's /dev/nsm on the host, so that the
 * enclave's NSM tools (tools/enclave: nsm-fuzz, nsm-check) run against the
 * device's own core (hw/ne/ne-nsm-*.c) with no VM.  Linked into them with
 * -Wl,--wrap=open -Wl,--wrap=ioctl: open("/dev/nsm") gets a descriptor of
 * this file, and NSM_IOCTL_RAW on it does what drivers/misc/nsm.c does
 * (shared/spec/attestation.md section 7): a request over 0x1000 bytes is
 * EMSGSIZE; the device gets a 0x3000-byte response buffer; the caller gets
 * at most what it offered, and response.len says how much.  Every other
 * open() and ioctl() goes to libc.
 *
 * What it does not stand in for: the virtio transport (QEMU's virtio core
 * and ne-nsm-dev.c), which only an enclave exercises (selftests/enclave).
 *
 * The NSM is booted before main() like the hypervisor boots it: PCR0-4
 * measured (made-up values, none zero), PCR0-15 locked, and a leaf issued
 * by the instance CA whose PEM bundle NE_NSM_CA names (tools/attest-ca
 * makes one in a temporary directory for the tests).
 *
 * NE_NSM_SHIM_FAULT=KIND:N makes the "device" misbehave from its N-th
 * request on, so that the tests can see nsm-fuzz catch it: garbage (bytes
 * that are not CBOR), errno (EIO), success (LockPCRs to everything), pcr0
 * (PCR0 changes once, behind the enclave's back), hang (no answer, ever),
 * crash (SIGSEGV).
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/ioctl.h>
#include <linux/types.h>

#include "ne-nsm-ca.h"
#include "ne-nsm-core.h"

/* include/uapi/linux/nsm.h (Linux 6.8), which bookworm's headers lack */
struct nsm_iovec {
    __u64 addr;
    __u64 len;
};

struct nsm_raw {
    struct nsm_iovec request;
    struct nsm_iovec response;
};

#define NSM_IOCTL_RAW   _IOWR(0x0A, 0x0, struct nsm_raw)

enum fault { NO_FAULT, GARBAGE, ERRNO, SUCCESS, PCR0, HANG, CRASH };

static struct {
    struct ne_nsm nsm;
    NeNsmCa *ca;
    NeNsmLeaf leaf;
    int fd;                     /* what open("/dev/nsm") returned */
    enum fault fault;
    unsigned long fault_from, requests;
} shim = { .fd = -1 };

int __real_open(const char *path, int flags, ...);
int __real_ioctl(int fd, unsigned long request, ...);

int __wrap_open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    va_list ap;

    if (!strcmp(path, "/dev/nsm")) {
        /* a real descriptor, so that close() and dup() behave */
        shim.fd = __real_open("/dev/null", O_RDWR | (flags & O_CLOEXEC));
        return shim.fd;
    }
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    return __real_open(path, flags, mode);
}

/* A misbehaving device: true when it has answered (or failed) instead. */
static bool misbehave(uint8_t *resp, size_t *len, int *err)
{
    if (shim.fault == NO_FAULT || shim.requests < shim.fault_from) {
        return false;
    }
    switch (shim.fault) {
    case GARBAGE:
        memset(resp, 0xff, 16);         /* sixteen breaks */
        *len = 16;
        return true;
    case ERRNO:
        *err = EIO;
        return true;
    case SUCCESS:
        memcpy(resp, "\x68LockPCRs", 9);
        *len = 9;
        return true;
    case PCR0:
        shim.nsm.pcrs.value[0][0] ^= 1;
        shim.fault = NO_FAULT;          /* once */
        return false;
    case HANG:
        for (;;) {
            pause();
        }
    case CRASH:
        raise(SIGSEGV);
        return false;
    default:
        return false;
    }
}

/*
 * NSM_IOCTL_RAW as the driver does it.  The request goes to the core in a
 * buffer of its exact size, so that ASan sees any read past it.
 */
static int nsm_ioctl(struct nsm_raw *raw)
{
    uint8_t *req, *resp;
    size_t len = 0;
    int err = 0;

    if (raw->request.len > NE_NSM_REQUEST_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    req = malloc(raw->request.len ? raw->request.len : 1);
    resp = malloc(NE_NSM_RESPONSE_MAX);
    if (!req || !resp) {
        abort();
    }
    memcpy(req, (void *)(uintptr_t)raw->request.addr, raw->request.len);
    shim.requests++;
    if (!misbehave(resp, &len, &err)) {
        len = ne_nsm_handle(&shim.nsm, req, raw->request.len, resp,
                            NE_NSM_RESPONSE_MAX);
    }
    if (!err) {
        if (raw->response.len > len) {
            raw->response.len = len;
        }
        memcpy((void *)(uintptr_t)raw->response.addr, resp,
               raw->response.len);
    }
    free(req);
    free(resp);
    errno = err;
    return err ? -1 : 0;
}

int __wrap_ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    void *arg;

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (fd >= 0 && fd == shim.fd) {
        if (request != NSM_IOCTL_RAW) {
            errno = EINVAL;
            return -1;
        }
        return nsm_ioctl(arg);
    }
    return __real_ioctl(fd, request, arg);
}

static void __attribute__((noreturn)) die(const char *what, const char *why)
{
    fprintf(stderr, "nsm-shim: %s: %s\n", what, why);
    exit(2);
}

/* NE_NSM_SHIM_FAULT=KIND:N */
static void read_fault(void)
{
    static const char *const kinds[] = {
        [GARBAGE] = "garbage", [ERRNO] = "errno", [SUCCESS] = "success",
        [PCR0] = "pcr0", [HANG] = "hang", [CRASH] = "crash",
    };
    const char *spec = getenv("NE_NSM_SHIM_FAULT"), *colon;
    unsigned int k;

    if (!spec || !*spec) {
        return;
    }
    colon = strchr(spec, ':');
    for (k = GARBAGE; colon && k <= CRASH; k++) {
        if (strlen(kinds[k]) == (size_t)(colon - spec) &&
            !strncmp(spec, kinds[k], colon - spec)) {
            shim.fault = k;
            shim.fault_from = strtoul(colon + 1, NULL, 10);
            return;
        }
    }
    die("NE_NSM_SHIM_FAULT", "not KIND:N (garbage, errno, success, pcr0, "
        "hang, crash)");
}

/* The identity a hypervisor gives one enclave: a fresh leaf of the CA. */
static void set_identity(void)
{
    struct ne_nsm_identity id = { 0 };
    const char *path = getenv("NE_NSM_CA"), *why;
    char err[256];
    int i;

    if (!path) {
        die("NE_NSM_CA", "not set (the instance CA's PEM bundle)");
    }
    shim.ca = ne_nsm_ca_load_file(path, err, sizeof(err));
    if (!shim.ca) {
        die(path, err);
    }
    if (ne_nsm_ca_issue(shim.ca, NULL, 0, &shim.leaf, err, sizeof(err))) {
        die("issuing the leaf", err);
    }
    id.key = shim.leaf.key;
    id.certificate.data = shim.leaf.cert.data;
    id.certificate.len = shim.leaf.cert.len;
    for (i = 0; i < NE_NSM_CA_BUNDLE_LEN; i++) {
        id.cabundle[i].data = shim.leaf.cabundle[i].data;
        id.cabundle[i].len = shim.leaf.cabundle[i].len;
    }
    id.nr_cabundle = NE_NSM_CA_BUNDLE_LEN;
    id.module_id = shim.leaf.module_id;
    if (!ne_nsm_set_identity(&shim.nsm, &id, &why)) {
        die("the identity", why);
    }
}

static void __attribute__((constructor)) shim_boot(void)
{
    static uint8_t value[5][NE_NSM_PCR_SIZE];
    struct ne_nsm_boot_pcrs boot = { 0 };
    int i;

    read_fault();
    ne_nsm_init(&shim.nsm);
    /* PCR0-4 as a hypervisor measures them: set, and all different */
    for (i = 0; i < 5; i++) {
        memset(value[i], 0x11 * (i + 1), NE_NSM_PCR_SIZE);
        boot.value[i] = value[i];
    }
    if (!ne_nsm_boot(&shim.nsm, &boot)) {
        die("ne_nsm_boot", "refused");
    }
    set_identity();
}

/* Everything freed: LeakSanitizer then reports only the tools' leaks. */
static void __attribute__((destructor)) shim_end(void)
{
    ne_nsm_cleanup(&shim.nsm);
    ne_nsm_leaf_clear(&shim.leaf);
    ne_nsm_ca_free(shim.ca);
}
