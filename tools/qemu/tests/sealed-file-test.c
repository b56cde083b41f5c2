/*
 * The seals of the files an enclave VM boots from (hw/ne/ne-sealed-file.c),
 * on the host's kernel (TAP).  A page of a file is held the way the kernel
 * holds one for a moment (page migration, compaction): as a reference
 * taken by vmsplice(2) into a pipe, let go when the pipe is closed.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "ne-sealed-file.h"

static int n_test, n_failed;

static void result(bool ok, const char *what)
{
    n_test++;
    printf("%sok %d - sealed-file: %s\n", ok ? "" : "not ", n_test, what);
    if (!ok) {
        n_failed++;
    }
}

static void die(const char *what)
{
    printf("Bail out! sealed-file: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* A sealable memory file of @pages pages of data */
static int written_file(unsigned int flags, int pages)
{
    long page = sysconf(_SC_PAGESIZE);
    char *buf = malloc(page);
    int fd = memfd_create("sealed-file-test", MFD_CLOEXEC | flags);
    int i;

    if (fd < 0 || !buf) {
        die("memfd_create");
    }
    memset(buf, 0x5a, page);
    for (i = 0; i < pages; i++) {
        if (write(fd, buf, page) != page) {
            die("write");
        }
    }
    free(buf);
    return fd;
}

/* A reference to @fd's first page, held by the pipe (its read end returned) */
static int hold_first_page(int fd)
{
    long page = sysconf(_SC_PAGESIZE);
    struct iovec iov;
    int p[2];
    void *map;

    if (pipe(p) < 0) {
        die("pipe");
    }
    /* a private mapping: no writable mapping stands in the seal's way */
    map = mmap(NULL, page, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        die("mmap");
    }
    iov.iov_base = map;
    iov.iov_len = page;
    if (vmsplice(p[1], &iov, 1, 0) != page) {
        die("vmsplice");
    }
    munmap(map, page);
    close(p[1]);
    return p[0];
}

static void *let_go_later(void *opaque)
{
    int held = *(int *)opaque;
    struct timespec ts = { 0, 500 * 1000 * 1000 };

    nanosleep(&ts, NULL);
    close(held);
    return NULL;
}

/*
 * The seals of @fd that this is about: with vm.memfd_noexec set, the
 * kernel adds F_SEAL_EXEC to every memory file.
 */
static int seals_of(int fd)
{
    int seals = fcntl(fd, F_GET_SEALS);

    return seals < 0 ? seals : seals & NE_BOOT_FILE_SEALS;
}

static void test_plain(void)
{
    int fd = written_file(MFD_ALLOW_SEALING, 3);
    int rc = ne_seal_boot_file(fd, NE_SEAL_WAIT_MS, NULL);
    unsigned int retries = 99;

    result(rc == 0 && seals_of(fd) == NE_BOOT_FILE_SEALS,
           "a written file takes every seal");
    result(write(fd, "x", 1) < 0 && errno == EPERM &&
           ftruncate(fd, 0) < 0 && errno == EPERM &&
           fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) < 0 && errno == EPERM,
           "the sealed file refuses a write, a shrink and another seal");
    rc = ne_seal_boot_file(fd, NE_SEAL_WAIT_MS, &retries);
    result(rc == 0 && retries == 0, "a sealed file is taken as it is");
    close(fd);
}

static void test_refused(void)
{
    int fd = written_file(MFD_ALLOW_SEALING, 1);
    unsigned int retries = 99;
    int p[2];

    /*
     * (sealed against seals, not made without MFD_ALLOW_SEALING: with
     * vm.memfd_noexec set, the kernel makes every memory file sealable)
     */
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL) < 0) {
        die("F_SEAL_SEAL");
    }
    result(ne_seal_boot_file(fd, NE_SEAL_WAIT_MS, &retries) == -EPERM &&
           retries == 0,
           "a file that takes no more seals: EPERM, no wait");
    close(fd);
    if (pipe(p) < 0) {
        die("pipe");
    }
    result(ne_seal_boot_file(p[0], NE_SEAL_WAIT_MS, NULL) == -EINVAL,
           "a pipe: EINVAL");
    close(p[0]);
    close(p[1]);
}

static void test_held_briefly(void)
{
    int fd = written_file(MFD_ALLOW_SEALING, 2);
    int held = hold_first_page(fd);
    unsigned int retries = 0;
    pthread_t t;
    int rc;

    if (pthread_create(&t, NULL, let_go_later, &held)) {
        die("pthread_create");
    }
    rc = ne_seal_boot_file(fd, NE_SEAL_WAIT_MS, &retries);
    pthread_join(t, NULL);
    printf("# held 500 ms: rc %d after %u refusals\n", rc, retries);
    result(rc == 0 && retries > 0 && seals_of(fd) == NE_BOOT_FILE_SEALS,
           "a page held for 500 ms: waited out, then every seal");
    close(fd);
}

static void test_held_too_long(void)
{
    int fd = written_file(MFD_ALLOW_SEALING, 2);
    int held = hold_first_page(fd);
    unsigned int retries = 0;
    int rc = ne_seal_boot_file(fd, 0, &retries);

    result(rc == -EBUSY && retries == 1 && seals_of(fd) == 0,
           "a page held, no wait: one try, EBUSY");
    rc = ne_seal_boot_file(fd, 200, &retries);

    printf("# held past a 200 ms wait: rc %d after %u refusals\n", rc,
           retries);
    result(rc == -EBUSY && retries > 0 && seals_of(fd) == 0,
           "a page held past the wait: EBUSY, and no seal added");
    close(held);
    result(ne_seal_boot_file(fd, NE_SEAL_WAIT_MS, NULL) == 0 &&
           seals_of(fd) == NE_BOOT_FILE_SEALS,
           "the same file, let go: every seal");
    close(fd);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_plain();
    test_refused();
    test_held_briefly();
    test_held_too_long();
    printf("1..%d\n", n_test);
    return n_failed ? 1 : 0;
}
