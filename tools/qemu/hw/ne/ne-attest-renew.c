/*
 * Renewing an enclave NSM's leaf (see ne-attest-renew.h).
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/timer.h"
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include "trace.h"

#include "ne-attest-renew.h"

struct NEAttestRenewal {
    NEAttest *attest;
    uint8_t enclave_id[NE_ATTEST_ENCLAVE_ID_LEN];
    int sock;
    uint32_t period_s;
    uint64_t uid;
    bool warned;                /* a failure is reported once per streak */
    QEMUTimer timer;
};

/*
 * Sends @fd as one message; 0, or the errno (EAGAIN: the child has not
 * read the ones before).
 */
static int ne_attest_renewal_send(int sock, int fd)
{
    char tag = 'R';
    struct iovec iov = { .iov_base = &tag, .iov_len = 1 };
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int))];
    } control = { 0 };
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buf,
        .msg_controllen = sizeof(control.buf),
    };
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    while (sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        if (errno != EINTR) {
            return errno;
        }
    }
    return 0;
}

/* Whether the child has not read the record sent before (or cannot tell) */
static bool ne_attest_renewal_unread(int sock)
{
    int queued;

    return ioctl(sock, SIOCOUTQ, &queued) < 0 || queued > 0;
}

/*
 * One renewal, in the main loop: a key and two signatures, a few
 * milliseconds every few minutes (the launcher's heavy work, image reading
 * and kernels, runs in workers; this is not worth a thread).
 */
static void ne_attest_renewal_tick(void *opaque)
{
    NEAttestRenewal *r = opaque;
    Error *err = NULL;
    int fd, e;

    timer_mod(&r->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
              (int64_t)r->period_s * 1000);
    if (ne_attest_renewal_unread(r->sock)) {
        /* a stopped child: one record waits for it, the newest one later */
        trace_ne_attest_renew(r->uid, EAGAIN);
        return;
    }
    fd = ne_attest_renewal_file(r->attest, r->enclave_id, &err);
    if (fd < 0) {
        /* documents stop at the old leaf's end: say why, once */
        trace_ne_attest_renew_failed(r->uid, error_get_pretty(err));
        if (!r->warned) {
            warn_report("ne-pci: slot 0x%" PRIx64 ": the NSM's leaf cannot "
                        "be renewed (%s); if the instance certificate is at "
                        "its end, restart the parent VM, whose ne-vm "
                        "reissues it", r->uid, error_get_pretty(err));
            r->warned = true;
        }
        error_free(err);
        return;
    }
    e = ne_attest_renewal_send(r->sock, fd);
    close(fd);
    trace_ne_attest_renew(r->uid, e);
    if (e && e != EAGAIN && !r->warned) {
        /* (the child's end is seen by its pidfd, which frees this) */
        warn_report("ne-pci: slot 0x%" PRIx64 ": cannot send the NSM's "
                    "fresh leaf: %s", r->uid, strerror(e));
        r->warned = true;
    } else if (!e) {
        r->warned = false;
    }
}

NEAttestRenewal *ne_attest_renewal_new(NEAttest *a, const uint8_t *enclave_id,
                                       int sock, uint32_t period_s,
                                       uint64_t uid)
{
    NEAttestRenewal *r = g_new0(NEAttestRenewal, 1);

    r->attest = a;
    memcpy(r->enclave_id, enclave_id, NE_ATTEST_ENCLAVE_ID_LEN);
    r->sock = sock;
    r->period_s = period_s;
    r->uid = uid;
    timer_init_ms(&r->timer, QEMU_CLOCK_REALTIME, ne_attest_renewal_tick, r);
    timer_mod(&r->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
              (int64_t)period_s * 1000);
    return r;
}

void ne_attest_renewal_free(NEAttestRenewal *r)
{
    if (r) {
        timer_del(&r->timer);
        close(r->sock);
        g_free(r);
    }
}
