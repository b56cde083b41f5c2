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
 * ENCLAVE_START.  Without it, the module answers with every PCR zero and
 * unlocked and cannot sign: a bare device for experiments.
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
#include "qapi/error.h"
#include "qemu/iov.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "hw/qdev-properties.h"
#include "hw/virtio/virtio.h"
#include "monitor/monitor.h"
#include "standard-headers/linux/virtio_ids.h"
#include "trace.h"

#include "ne-nsm-boot.h"

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
    struct ne_nsm nsm;
    uint8_t request[NE_NSM_REQUEST_MAX + 1];
    uint8_t response[NE_NSM_RESPONSE_MAX];
};

/* Reads the boot record behind @fd (closed here) into @nsm. */
static bool ne_nsm_dev_boot(NENsmDevice *s, int fd, Error **errp)
{
    g_autofree uint8_t *buf = g_malloc(NE_NSM_BOOT_RECORD_MAX + 1);
    struct ne_nsm_boot_record record;
    const char *why;
    ssize_t len;
    bool ok;

    len = pread(fd, buf, NE_NSM_BOOT_RECORD_MAX + 1, 0);
    close(fd);
    if (len < 0) {
        error_setg_errno(errp, errno, "ne-nsm: cannot read the boot record");
        return false;
    }
    if (!ne_nsm_boot_record_decode(buf, len, &record, &why)) {
        error_setg(errp, "ne-nsm: %s", why);
        return false;
    }
    ok = ne_nsm_boot_record_apply(&s->nsm, &record, &why);
    ne_nsm_boot_record_clear(&record);
    if (!ok) {
        error_setg(errp, "ne-nsm: %s", why);
    }
    return ok;
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
    if (!(*out)->out_num || (*out)->in_num) {
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
    if (s->boot_fd) {
        fd = monitor_fd_param(monitor_cur(), s->boot_fd, errp);
        if (fd < 0 || !ne_nsm_dev_boot(s, fd, errp)) {
            ne_nsm_cleanup(&s->nsm);
            return;
        }
    }
    virtio_init(vdev, VIRTIO_ID_NITRO_SEC_MOD, 0);
    s->vq = virtio_add_queue(vdev, NE_NSM_QUEUE_SIZE, ne_nsm_handle_queue);
    /* guarded: see the comment on re-entrancy at the top */
    s->bh = virtio_bh_new_guarded(dev, ne_nsm_bh, s);
}

static void ne_nsm_unrealize(DeviceState *dev)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(dev);
    NENsmDevice *s = NE_NSM(dev);

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
