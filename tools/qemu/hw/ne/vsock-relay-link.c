/*
 * vsock relay: a framed packet link between two QEMU processes.
 *
 * A frame is a virtio-vsock packet exactly as a guest sends it: the 44-byte
 * little-endian header, then hdr.len payload bytes.  The link never blocks
 * and never stops reading: frames that the socket cannot take yet wait in
 * host memory (up to a cap), because a relay that stalls one guest on the
 * other can deadlock the two virtio-vsock drivers (vsock-relay.md 2.B.4).
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "qapi/error.h"
#include "hw/ne/vsock-relay.h"
#include "trace/trace-hw_ne.h"

/* Read this much per wakeup at most, so one busy link cannot starve QEMU. */
#define LINK_READ_CHUNK (256 * 1024)
/* An output buffer drained of more than this is given back, not kept. */
#define LINK_OUT_KEEP   (256 * 1024)
/*
 * At the cap, the bytes the socket took are dropped from the front of the
 * output buffer when they are 1/LINK_OUT_SLACK of the cap or more: a move
 * of the rest per cap / LINK_OUT_SLACK bytes written at most.
 */
#define LINK_OUT_SLACK  8

struct VsockRelayLink {
    QIOChannel *ioc;
    uint64_t cap;
    VsockRelayFrameFn *frame;
    VsockRelayClosedFn *closed;
    void *opaque;

    guint read_watch;
    guint write_watch;
    bool open;

    GByteArray *in;     /* bytes read, not yet a whole frame */
    GByteArray *out;    /* frames queued for the socket */
    size_t out_head;    /* bytes of @out already written */
};

VsockRelayPacket *vsock_relay_packet_new(const struct virtio_vsock_hdr *hdr,
                                         const void *data)
{
    uint32_t len = le32_to_cpu(hdr->len);
    VsockRelayPacket *pkt = g_malloc(sizeof(*pkt) + len);

    pkt->hdr = *hdr;
    pkt->delivered = 0;
    if (len) {
        memcpy(pkt->data, data, len);
    }
    return pkt;
}

bool vsock_relay_len_fits_op(const struct virtio_vsock_hdr *hdr)
{
    return !hdr->len || le16_to_cpu(hdr->op) == VIRTIO_VSOCK_OP_RW;
}

void vsock_relay_make_rst(struct virtio_vsock_hdr *hdr,
                          const struct virtio_vsock_hdr *req)
{
    memset(hdr, 0, sizeof(*hdr));
    hdr->src_cid = req->dst_cid;
    hdr->dst_cid = req->src_cid;
    hdr->src_port = req->dst_port;
    hdr->dst_port = req->src_port;
    hdr->type = req->type;
    hdr->op = cpu_to_le16(VIRTIO_VSOCK_OP_RST);
}

bool vsock_relay_link_is_open(VsockRelayLink *link)
{
    return link && link->open;
}

static void link_stop_io(VsockRelayLink *link)
{
    if (link->read_watch) {
        g_source_remove(link->read_watch);
        link->read_watch = 0;
    }
    if (link->write_watch) {
        g_source_remove(link->write_watch);
        link->write_watch = 0;
    }
    link->open = false;
    qio_channel_close(link->ioc, NULL);
}

static void link_free(VsockRelayLink *link)
{
    object_unref(OBJECT(link->ioc));
    g_byte_array_free(link->in, true);
    g_byte_array_free(link->out, true);
    g_free(link);
}

static void link_closed_bh(void *opaque)
{
    VsockRelayLink *link = opaque;

    if (link->closed) {
        link->closed(link->opaque, link);
    }
    link_free(link);
}

void vsock_relay_link_close(VsockRelayLink *link, const char *why)
{
    if (!link->open) {
        return;
    }
    trace_vsock_relay_link_close(link, why);
    link_stop_io(link);
    /*
     * Tell the owner from a bottom half: we may be deep inside one of its
     * own callbacks, which must not see the link vanish under it.
     */
    aio_bh_schedule_oneshot(qemu_get_aio_context(), link_closed_bh, link);
}

void vsock_relay_link_destroy(VsockRelayLink *link)
{
    if (!link->open) {
        /* a close is already scheduled and will free it */
        link->closed = NULL;
        return;
    }
    link_stop_io(link);
    link_free(link);
}

static gboolean link_writable(QIOChannel *ioc, GIOCondition cond,
                              gpointer opaque);

/* Write as much of the queue as the socket takes now. */
static void link_flush(VsockRelayLink *link)
{
    while (link->open && link->out_head < link->out->len) {
        ssize_t n = qio_channel_write(link->ioc,
                                      (char *)link->out->data + link->out_head,
                                      link->out->len - link->out_head, NULL);
        if (n == QIO_CHANNEL_ERR_BLOCK) {
            break;
        }
        if (n < 0) {
            vsock_relay_link_close(link, "write error");
            return;
        }
        link->out_head += n;
    }
    if (link->out_head == link->out->len) {
        if (link->out->len > LINK_OUT_KEEP) {
            /* (a GByteArray keeps its allocation when emptied) */
            g_byte_array_free(link->out, true);
            link->out = g_byte_array_new();
        } else {
            g_byte_array_set_size(link->out, 0);
        }
        link->out_head = 0;
    } else if (link->out_head > link->out->len / 2) {
        /* compact, so the buffer does not grow without bound */
        g_byte_array_remove_range(link->out, 0, link->out_head);
        link->out_head = 0;
    }
    if (link->open && link->out->len && !link->write_watch) {
        link->write_watch = qio_channel_add_watch(link->ioc, G_IO_OUT,
                                                  link_writable, link, NULL);
    }
}

static gboolean link_writable(QIOChannel *ioc, GIOCondition cond,
                              gpointer opaque)
{
    VsockRelayLink *link = opaque;

    link->write_watch = 0;
    link_flush(link);
    return G_SOURCE_REMOVE;
}

bool vsock_relay_link_send(VsockRelayLink *link,
                           const struct virtio_vsock_hdr *hdr,
                           const void *data)
{
    uint32_t len = le32_to_cpu(hdr->len);
    size_t frame = VSOCK_RELAY_HDR_SIZE + len;

    if (!link->open) {
        return false;
    }
    /*
     * The buffer's length, the bytes the socket took (until link_flush()
     * drops them at half the buffer) included, stays within the cap.
     */
    if (link->out->len + frame > link->cap &&
        link->out_head >= link->cap / LINK_OUT_SLACK) {
        g_byte_array_remove_range(link->out, 0, link->out_head);
        link->out_head = 0;
    }
    if (link->out->len + frame > link->cap) {
        vsock_relay_link_close(link, "output over the cap");
        return false;
    }
    g_byte_array_append(link->out, (const guint8 *)hdr, VSOCK_RELAY_HDR_SIZE);
    if (len) {
        g_byte_array_append(link->out, data, len);
    }
    trace_vsock_relay_link_queued(link, link->out->len,
                                  link->out->len - link->out_head, link->cap);
    link_flush(link);
    return link->open;
}

bool vsock_relay_link_send_ctl(VsockRelayLink *link, uint64_t cid,
                               uint32_t what)
{
    struct virtio_vsock_hdr hdr = {
        .src_cid = cpu_to_le64(cid),
        .op = cpu_to_le16(VIRTIO_VSOCK_OP_INVALID),
        .flags = cpu_to_le32(what),
    };

    return vsock_relay_link_send(link, &hdr, NULL);
}

/* Hand every whole frame in @in to the owner. */
static void link_parse(VsockRelayLink *link)
{
    size_t pos = 0;

    while (link->open && link->in->len - pos >= VSOCK_RELAY_HDR_SIZE) {
        struct virtio_vsock_hdr hdr;
        uint32_t len;

        memcpy(&hdr, link->in->data + pos, sizeof(hdr));
        len = le32_to_cpu(hdr.len);
        if (len > VSOCK_RELAY_MAX_PAYLOAD) {
            vsock_relay_link_close(link, "frame too long");
            return;
        }
        if (link->in->len - pos < VSOCK_RELAY_HDR_SIZE + len) {
            break;
        }
        link->frame(link->opaque, link, &hdr,
                    link->in->data + pos + VSOCK_RELAY_HDR_SIZE);
        pos += VSOCK_RELAY_HDR_SIZE + len;
    }
    if (link->open && pos) {
        g_byte_array_remove_range(link->in, 0, pos);
    }
}

static gboolean link_readable(QIOChannel *ioc, GIOCondition cond,
                              gpointer opaque)
{
    VsockRelayLink *link = opaque;
    size_t total = 0;

    while (link->open && total < LINK_READ_CHUNK) {
        size_t old = link->in->len;
        ssize_t n;

        g_byte_array_set_size(link->in, old + 65536);
        n = qio_channel_read(ioc, (char *)link->in->data + old, 65536, NULL);
        g_byte_array_set_size(link->in, old + MAX(n, 0));
        if (n == QIO_CHANNEL_ERR_BLOCK) {
            break;
        }
        if (n <= 0) {
            vsock_relay_link_close(link, n == 0 ? "peer closed" : "read error");
            break;
        }
        total += n;
        link_parse(link);
    }
    if (!link->open) {
        link->read_watch = 0;
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

VsockRelayLink *vsock_relay_link_new(QIOChannel *ioc, uint64_t cap,
                                     VsockRelayFrameFn *frame,
                                     VsockRelayClosedFn *closed,
                                     void *opaque)
{
    VsockRelayLink *link = g_new0(VsockRelayLink, 1);

    object_ref(OBJECT(ioc));
    link->ioc = ioc;
    link->cap = cap;
    link->frame = frame;
    link->closed = closed;
    link->opaque = opaque;
    link->in = g_byte_array_new();
    link->out = g_byte_array_new();
    link->open = true;
    qio_channel_set_blocking(ioc, false, NULL);
    link->read_watch = qio_channel_add_watch(ioc, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                             link_readable, link, NULL);
    trace_vsock_relay_link_new(link);
    return link;
}
