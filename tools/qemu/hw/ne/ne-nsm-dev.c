/*
 * ne-nsm-device: the Nitro Secure Module of an enclave VM, a virtio device
 * (id 33) around the NSM core (ne-nsm-core.c).
 *
 * The wire is that of shared/spec/attestation.md section 1: one queue;
 * the Linux driver posts the request (device-readable, at most 0x1000
 * bytes) and then the response buffer (device-writable, 0x3000 bytes) as
 * two chains, and takes back the request first, then the response with
 * its length.  The device gets its PCRs and its signing identity from the
 * hypervisor at realize: boot=N names a descriptor (monitor fd syntax, as
 * the enclave's other files) of a sealed memory file holding the boot
 * record (ne-nsm-boot.h), which the launcher of ne-pci writes at
 * ENCLAVE_START.  Without it, PCR0-15 stay locked at zero and the module
 * cannot sign: a bare device for experiments.  renew=M names the end of
 * a SOCK_SEQPACKET pair on which ne-pci sends a fresh leaf every few
 * minutes (ne-attest-renew.h): each message carries one sealed renewal
 * record, taken in the main loop, between two requests.
 *
 * Re-entrancy: the buffers the guest posts may be MMIO (this transport's
 * registers, the relay's), so requests are served in one place, a bottom
 * half guarded by the transport's re-entrancy guard, which checks the
 * reset generation after every push, as vsock-relay.c does.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <openssl/crypto.h>
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/iov.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/sockets.h"
#include "hw/qdev-properties.h"
#include "hw/virtio/virtio.h"
#include "monitor/monitor.h"
#include "standard-headers/linux/virtio_ids.h"
#include "trace.h"

#include "ne-nsm-boot.h"
#include "ne-sealed-file.h"

#define TYPE_NE_NSM "ne-nsm-device"
OBJECT_DECLARE_SIMPLE_TYPE(NENsmDevice, NE_NSM)

/* A request and its response: two descriptor chains, two entries. */
#define NE_NSM_QUEUE_SIZE       2
/* Requests one run of the bottom half serves at most (then it yields). */
#define NE_NSM_BH_BUDGET        8

struct NENsmDevice {
    VirtIODevice parent_obj;
    VirtQueue *vq;
    QEMUBH *bh;
    uint32_t reset_gen;
    char *boot_fd;                      /* property boot= */
    char *renew_fd;                     /* property renew= */
    int renew_sock;                     /* -1: no renewals */
    struct ne_nsm nsm;
    uint8_t request[NE_NSM_REQUEST_MAX + 1];
    uint8_t response[NE_NSM_RESPONSE_MAX];
};

/*
 * Reads the record behind @fd (closed here) into @r, once it is known to
 * be sealed: a file that its writer could still change is not trusted.
 */
static bool ne_nsm_dev_read(int fd, struct ne_nsm_boot_record *r,
                            Error **errp)
{
    uint8_t *buf = g_malloc(NE_NSM_BOOT_RECORD_MAX + 1);
    int seals = fcntl(fd, F_GET_SEALS);
    const char *why;
    ssize_t len = -1;
    bool ok = false;

    if (seals < 0 || (seals & NE_BOOT_FILE_SEALS) != NE_BOOT_FILE_SEALS) {
        error_setg(errp, "ne-nsm: the record is not a sealed memory file");
    } else {
        len = pread(fd, buf, NE_NSM_BOOT_RECORD_MAX + 1, 0);
        if (len < 0) {
            error_setg_errno(errp, errno, "ne-nsm: cannot read the record");
        } else if (!ne_nsm_boot_record_decode(buf, len, r, &why)) {
            error_setg(errp, "ne-nsm: %s", why);
        } else {
            ok = true;
        }
    }
    close(fd);
    /* (the record holds the leaf's private key) */
    OPENSSL_cleanse(buf, NE_NSM_BOOT_RECORD_MAX + 1);
    g_free(buf);
    return ok;
}

/* Boots @s's NSM from the boot record behind @fd (closed here). */
static bool ne_nsm_dev_boot(NENsmDevice *s, int fd, Error **errp)
{
    struct ne_nsm_boot_record record;
    const char *why;
    bool ok;

    if (!ne_nsm_dev_read(fd, &record, errp)) {
        return false;
    }
    ok = ne_nsm_boot_record_apply(&s->nsm, &record, &why);
    ne_nsm_boot_record_clear(&record);
    if (!ok) {
        error_setg(errp, "ne-nsm: %s", why);
    }
    return ok;
}

/* The most descriptors one message may bring (each one is closed) */
#define NE_NSM_RENEW_MAX_FDS    8

/*
 * Closes every descriptor in @msg's SCM_RIGHTS messages but the one it
 * returns: the only one, when the message brought exactly one and was not
 * cut short; else -1.
 */
static int ne_nsm_renew_take_fd(struct msghdr *msg)
{
    int fds[NE_NSM_RENEW_MAX_FDS], nr = 0, i;
    struct cmsghdr *cmsg;

    for (cmsg = CMSG_FIRSTHDR(msg); cmsg; cmsg = CMSG_NXTHDR(msg, cmsg)) {
        size_t n, j;

        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS ||
            cmsg->cmsg_len < CMSG_LEN(0)) {
            continue;
        }
        n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (j = 0; j < n && nr < NE_NSM_RENEW_MAX_FDS; j++) {
            memcpy(&fds[nr++], CMSG_DATA(cmsg) + j * sizeof(int), sizeof(int));
        }
    }
    if (nr == 1 && !(msg->msg_flags & MSG_CTRUNC)) {
        return fds[0];
    }
    for (i = 0; i < nr; i++) {
        close(fds[i]);
    }
    return -1;
}

/*
 * Takes one message from the renewal socket: the descriptor of its record
 * into *@fd (-1: none, or not exactly one: every descriptor that came is
 * closed).  1 for a message, 0 when none is waiting, -1 when none will
 * come (ne-pci closed its end, or the socket broke).
 */
static int ne_nsm_renew_recv(int sock, int *fd)
{
    char tag;
    struct iovec iov = { .iov_base = &tag, .iov_len = 1 };
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(NE_NSM_RENEW_MAX_FDS * sizeof(int))];
    } control;
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buf,
        .msg_controllen = sizeof(control.buf),
    };
    ssize_t n;

    *fd = -1;
    do {
        n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
    *fd = ne_nsm_renew_take_fd(&msg);
    if (n != 1 && *fd >= 0) {
        /* (a record comes with its one tag byte; an empty read is the end) */
        close(*fd);
        *fd = -1;
    }
    return n == 0 && msg.msg_controllen == 0 ? -1 : 1;
}

/*
 * Messages from ne-pci: renewal records, applied between two requests.
 * Only the newest one of a backlog is applied (a child that was stopped
 * finds older leaves, maybe expired, before it).
 */
static void ne_nsm_renew_readable(void *opaque)
{
    NENsmDevice *s = opaque;
    struct ne_nsm_boot_record record;
    Error *err = NULL;
    const char *why;
    int fd, newest = -1, got;

    while ((got = ne_nsm_renew_recv(s->renew_sock, &fd)) > 0) {
        if (fd < 0) {
            warn_report_once("ne-nsm: a renewal message without exactly one "
                             "record, ignored");
            continue;
        }
        if (newest >= 0) {
            close(newest);
        }
        newest = fd;
    }
    if (got < 0) {
        /* ne-pci closed its end (or the socket broke): no more renewals */
        qemu_set_fd_handler(s->renew_sock, NULL, NULL, NULL);
        close(s->renew_sock);
        s->renew_sock = -1;
    }
    if (newest < 0) {
        return;
    }
    if (!ne_nsm_dev_read(newest, &record, &err)) {
        warn_report_once("ne-nsm: a renewal record refused: %s",
                         error_get_pretty(err));
        trace_ne_nsm_renew_refused(error_get_pretty(err));
        error_free(err);
        return;
    }
    if (ne_nsm_boot_record_renew(&s->nsm, &record, &why)) {
        trace_ne_nsm_renewed(s->nsm.signer.module_id);
    } else {
        warn_report_once("ne-nsm: a renewal record refused: %s", why);
        trace_ne_nsm_renew_refused(why);
    }
    ne_nsm_boot_record_clear(&record);
}

/*
 * Serves the request in @out into the response buffer @in, hands both
 * back (request first, as the driver expects) and frees them.  False if a
 * reset came in between: the queue's state is gone.
 */
static bool ne_nsm_serve(NENsmDevice *s, VirtQueueElement *out,
                         VirtQueueElement *in)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(s);
    uint32_t gen = s->reset_gen;
    size_t req_len, cap, len;

    /* a request over the limit is answered InputTooLarge by the core */
    req_len = iov_to_buf(out->out_sg, out->out_num, 0, s->request,
                         sizeof(s->request));
    cap = MIN(iov_size(in->in_sg, in->in_num), sizeof(s->response));
    len = ne_nsm_handle(&s->nsm, s->request, req_len, s->response, cap);
    trace_ne_nsm_request(req_len, cap, len);
    iov_from_buf(in->in_sg, in->in_num, 0, s->response, len);

    virtqueue_push(s->vq, out, 0);
    g_free(out);
    if (gen != s->reset_gen) {
        g_free(in);
        return false;
    }
    virtqueue_push(s->vq, in, len);
    g_free(in);
    if (gen != s->reset_gen) {
        return false;
    }
    virtio_notify(vdev, s->vq);
    return gen == s->reset_gen;
}

/* Pops a request and its response buffer, or nothing (false). */
static bool ne_nsm_pop(NENsmDevice *s, VirtQueueElement **out,
                       VirtQueueElement **in)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(s);

    *out = virtqueue_pop(s->vq, sizeof(VirtQueueElement));
    if (!*out) {
        return false;
    }
    /* (no segment at all: an empty request, answered with an Error) */
    if ((*out)->in_num) {
        virtio_error(vdev, "ne-nsm: a request must be device-readable only");
        virtqueue_detach_element(s->vq, *out, 0);
        g_free(*out);
        return false;
    }
    *in = virtqueue_pop(s->vq, sizeof(VirtQueueElement));
    if (!*in) {
        /* the response buffer is not posted yet: wait for its kick */
        virtqueue_unpop(s->vq, *out, 0);
        g_free(*out);
        return false;
    }
    if ((*in)->out_num || !(*in)->in_num) {
        virtio_error(vdev, "ne-nsm: a response buffer must be "
                     "device-writable only");
        virtqueue_detach_element(s->vq, *out, 0);
        virtqueue_detach_element(s->vq, *in, 0);
        g_free(*out);
        g_free(*in);
        return false;
    }
    return true;
}

static void ne_nsm_bh(void *opaque)
{
    NENsmDevice *s = opaque;
    VirtIODevice *vdev = VIRTIO_DEVICE(s);
    VirtQueueElement *out, *in;
    int budget = NE_NSM_BH_BUDGET;

    if (!(vdev->status & VIRTIO_CONFIG_S_DRIVER_OK) || vdev->broken) {
        return;
    }
    while (ne_nsm_pop(s, &out, &in)) {
        if (!ne_nsm_serve(s, out, in)) {
            return;
        }
        if (!--budget) {
            /* a guest that keeps the queue full waits for the next run */
            qemu_bh_schedule(s->bh);
            return;
        }
    }
}

static void ne_nsm_handle_queue(VirtIODevice *vdev, VirtQueue *vq)
{
    qemu_bh_schedule(NE_NSM(vdev)->bh);
}

static void ne_nsm_set_status(VirtIODevice *vdev, uint8_t status)
{
    if (status & VIRTIO_CONFIG_S_DRIVER_OK) {
        qemu_bh_schedule(NE_NSM(vdev)->bh);
    }
}

static void ne_nsm_reset(VirtIODevice *vdev)
{
    /* a run this reset interrupted stops at its next check */
    NE_NSM(vdev)->reset_gen++;
}

static uint64_t ne_nsm_get_features(VirtIODevice *vdev, uint64_t features,
                                    Error **errp)
{
    return features;            /* the NSM has no feature bit */
}

static void ne_nsm_realize(DeviceState *dev, Error **errp)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(dev);
    NENsmDevice *s = NE_NSM(dev);
    int fd;

    ne_nsm_init(&s->nsm);
    s->renew_sock = -1;
    if (s->boot_fd) {
        fd = monitor_fd_param(monitor_cur(), s->boot_fd, errp);
        if (fd < 0 || !ne_nsm_dev_boot(s, fd, errp)) {
            ne_nsm_cleanup(&s->nsm);
            return;
        }
    }
    if (s->renew_fd) {
        s->renew_sock = monitor_fd_param(monitor_cur(), s->renew_fd, errp);
        if (s->renew_sock < 0) {
            ne_nsm_cleanup(&s->nsm);
            return;
        }
        qemu_socket_set_nonblock(s->renew_sock);
        shutdown(s->renew_sock, SHUT_WR);       /* it only ever reads */
        qemu_set_fd_handler(s->renew_sock, ne_nsm_renew_readable, NULL, s);
    }
    virtio_init(vdev, VIRTIO_ID_NITRO_SEC_MOD, 0);
    /* the driver posts a request of 0 bytes as it is: not a broken device */
    vdev->empty_buffers_ok = true;
    s->vq = virtio_add_queue(vdev, NE_NSM_QUEUE_SIZE, ne_nsm_handle_queue);
    /* guarded: see the comment on re-entrancy at the top */
    s->bh = virtio_bh_new_guarded(dev, ne_nsm_bh, s);
}

static void ne_nsm_unrealize(DeviceState *dev)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(dev);
    NENsmDevice *s = NE_NSM(dev);

    if (s->renew_sock >= 0) {
        qemu_set_fd_handler(s->renew_sock, NULL, NULL, NULL);
        close(s->renew_sock);
    }
    qemu_bh_delete(s->bh);
    virtio_delete_queue(s->vq);
    virtio_cleanup(vdev);
    ne_nsm_cleanup(&s->nsm);
}

static const VMStateDescription vmstate_ne_nsm = {
    .name = "ne-nsm",
    .unmigratable = 1,
};

static Property ne_nsm_properties[] = {
    DEFINE_PROP_STRING("boot", NENsmDevice, boot_fd),
    DEFINE_PROP_STRING("renew", NENsmDevice, renew_fd),
    DEFINE_PROP_END_OF_LIST(),
};

static void ne_nsm_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    VirtioDeviceClass *vdc = VIRTIO_DEVICE_CLASS(klass);

    device_class_set_props(dc, ne_nsm_properties);
    dc->vmsd = &vmstate_ne_nsm;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    vdc->realize = ne_nsm_realize;
    vdc->unrealize = ne_nsm_unrealize;
    vdc->get_features = ne_nsm_get_features;
    vdc->set_status = ne_nsm_set_status;
    vdc->reset = ne_nsm_reset;
}

static const TypeInfo ne_nsm_info = {
    .name = TYPE_NE_NSM,
    .parent = TYPE_VIRTIO_DEVICE,
    .instance_size = sizeof(NENsmDevice),
    .class_init = ne_nsm_class_init,
};

static void ne_nsm_register_types(void)
{
    type_register_static(&ne_nsm_info);
}

type_init(ne_nsm_register_types)
