/*
 * Sealing the files an enclave VM boots from (see ne-sealed-file.h).
 * Plain C, unit-tested on the host (tools/qemu/tests/sealed-file-test.c).
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <time.h>

#include "ne-sealed-file.h"

/* Between two tries: the kernel has just waited 150 ms of its own */
#define NE_SEAL_PAUSE_MS        50

static uint64_t ne_seal_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ne_seal_pause(void)
{
    struct timespec ts = { 0, NE_SEAL_PAUSE_MS * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        continue;
    }
}

/* One try: 0 or a negative errno */
static int ne_seal_try(int fd)
{
    return fcntl(fd, F_ADD_SEALS, NE_BOOT_FILE_SEALS) < 0 ? -errno : 0;
}

int ne_seal_boot_file(int fd, unsigned int wait_ms, unsigned int *retries)
{
    uint64_t deadline = ne_seal_now_ms() + wait_ms;
    unsigned int busy = 0;
    int seals, rc;

    seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0) {
        rc = -errno;
    } else if ((seals & NE_BOOT_FILE_SEALS) == NE_BOOT_FILE_SEALS) {
        rc = 0;
    } else {
        /* only EBUSY is worth waiting for: the pages' references are */
        while ((rc = ne_seal_try(fd)) == -EBUSY) {
            busy++;
            if (ne_seal_now_ms() >= deadline) {
                break;
            }
            ne_seal_pause();
        }
    }
    if (retries) {
        *retries = busy;
    }
    return rc;
}
