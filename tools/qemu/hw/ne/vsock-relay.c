/*
 * vsock relay: the virtio-vsock device (virtqueues rx 0, tx 1, event 2).
 *
 * TX packets are checked (length, src_cid) and handed to the router
 * (parent, guest-cid=3) or to the link to the parent (enclave, connect=PATH
 * or fd=N).
 * A packet that cannot be routed is answered with an RST at once, so a
 * connect to a CID nobody has fails immediately instead of timing out.
 * Packets for the guest wait in host memory until it posts RX buffers;
 * RW packets larger than a buffer are split.  TX is always drained.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/iov.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "sysemu/dma.h"
#include "qemu/module.h"
#include "qapi/error.h"
#include "io/channel-socket.h"
#include "monitor/monitor.h"
#include "hw/qdev-properties.h"
#include "hw/virtio/virtio.h"
#include "migration/vmstate.h"
#include "hw/ne/vsock-relay.h"
#include "trace/trace-hw_ne.h"

#define RELAY_QUEUE_SIZE 128
/* Descriptors one run of the bottom half takes from a queue at most. */
#define RELAY_BH_BUDGET  (2 * RELAY_QUEUE_SIZE)

/*
 * Re-entrancy.  Whatever the guest can make a device write to (an RX buffer,
 * a used ring, an MSI-X address) may be an MMIO register: this device's own
 * virtio registers (device_status: a reset) or another device's (ne-pci
 * ENABLE: every enclave slot freed).  So guest memory is written in one
 * place only, relay_bh(), a bottom half guarded by the transport's memory
 * re-entrancy guard (the relay's own registers refuse a write from inside
 * it), and that code holds no pointer to anything a nested callback could
 * free: a packet is taken off the queue or updated before the push that
 * hands its buffer back, and after every push the reset generation is
 * compared, since a device reset discards the queues' state.  Everything
 * else (the router, the links, the console, resets) only queues packets and
 * schedules the bottom half.
 */

static bool relay_driver_ok(VsockRelay *s)
{
    return VIRTIO_DEVICE(s)->status & VIRTIO_CONFIG_S_DRIVER_OK;
}

static void relay_kick(VsockRelay *s)
{
    qemu_bh_schedule(s->bh);
}

/* What one source CID has queued for the parent guest. */
typedef struct RelaySource {
    uint64_t cid;               /* the key */
    uint64_t bytes;
} RelaySource;

/* Pending RX bytes of source @cid (parent only: the router's sources). */
static uint64_t relay_src_bytes(VsockRelay *s, uint64_t cid)
{
    RelaySource *src = g_hash_table_lookup(s->rx_src_bytes, &cid);

    return src ? src->bytes : 0;
}

static void relay_src_account(VsockRelay *s, uint64_t cid, int64_t delta)
{
    RelaySource *src = g_hash_table_lookup(s->rx_src_bytes, &cid);

    if (!src) {
        src = g_new0(RelaySource, 1);
        src->cid = cid;
        g_hash_table_insert(s->rx_src_bytes, &src->cid, src);
    }
    src->bytes += delta;
    if (!src->bytes) {
        g_hash_table_remove(s->rx_src_bytes, &cid);
    }
}

/*
 * What a queued packet of @len payload bytes takes in memory, which the
 * caps bound: the queue entry and the payload, plus the allocator's chunk
 * header, rounded to its 16-byte granularity (glibc's malloc).  Counting
 * only the header and payload let packets without payload take 1.5 times
 * the caps.
 */
static uint64_t relay_pending_cost(uint32_t len)
{
    return ROUND_UP(sizeof(VsockRelayPacket) + len + sizeof(size_t), 16);
}

static void relay_unlink_pending(VsockRelay *s, VsockRelayPacket *pkt)
{
    uint64_t size = relay_pending_cost(le32_to_cpu(pkt->hdr.len));

    s->rx_pending_bytes -= size;
    if (s->router) {
        relay_src_account(s, le64_to_cpu(pkt->hdr.src_cid), -(int64_t)size);
    }
    g_free(pkt);
}

static void relay_drop_rx_pending(VsockRelay *s)
{
    VsockRelayPacket *pkt;

    while ((pkt = QSIMPLEQ_FIRST(&s->rx_pending))) {
        QSIMPLEQ_REMOVE_HEAD(&s->rx_pending, next);
        relay_unlink_pending(s, pkt);
    }
    assert(!s->rx_pending_bytes);
}

/* Forget what source @cid has queued for the guest. */
static void relay_drop_rx_from(VsockRelay *s, uint64_t cid)
{
    QSIMPLEQ_HEAD(, VsockRelayPacket) keep = QSIMPLEQ_HEAD_INITIALIZER(keep);
    VsockRelayPacket *pkt;

    while ((pkt = QSIMPLEQ_FIRST(&s->rx_pending))) {
        QSIMPLEQ_REMOVE_HEAD(&s->rx_pending, next);
        if (le64_to_cpu(pkt->hdr.src_cid) == cid) {
            relay_unlink_pending(s, pkt);
        } else {
            QSIMPLEQ_INSERT_TAIL(&keep, pkt, next);
        }
    }
    QSIMPLEQ_CONCAT(&s->rx_pending, &keep);
}

/* Hand back an element that will not be used (the device was reset). */
static void relay_discard(VsockRelay *s, VirtQueueElement *elem)
{
    AddressSpace *as = VIRTIO_DEVICE(s)->dma_as;
    unsigned i;

    for (i = 0; i < elem->in_num; i++) {
        dma_memory_unmap(as, elem->in_sg[i].iov_base, elem->in_sg[i].iov_len,
                         DMA_DIRECTION_FROM_DEVICE, 0);
    }
    for (i = 0; i < elem->out_num; i++) {
        dma_memory_unmap(as, elem->out_sg[i].iov_base,
                         elem->out_sg[i].iov_len, DMA_DIRECTION_TO_DEVICE, 0);
    }
    g_free(elem);
}

/* Ask for a TRANSPORT_RESET event: the guest's connections are all gone. */
static void relay_queue_reset_event(VsockRelay *s)
{
    s->reset_event_pending = true;
    relay_kick(s);
}

/* Bottom half only.  False if the device was reset meanwhile. */
static bool relay_send_reset_event(VsockRelay *s, uint32_t gen)
{
    struct virtio_vsock_event event = {
        .id = cpu_to_le32(VIRTIO_VSOCK_EVENT_TRANSPORT_RESET),
    };
    VirtQueueElement *elem = virtqueue_pop(s->event_vq, sizeof(*elem));

    if (!elem) {
        /* sent as soon as the driver posts an event buffer */
        return gen == s->reset_gen;
    }
    if (gen != s->reset_gen) {
        relay_discard(s, elem);
        return false;
    }
    s->reset_event_pending = false;
    iov_from_buf(elem->in_sg, elem->in_num, 0, &event, sizeof(event));
    trace_vsock_relay_reset_event(s->guest_cid);
    virtqueue_push(s->event_vq, elem, sizeof(event));
    g_free(elem);
    if (gen != s->reset_gen) {
        return false;
    }
    virtio_notify(VIRTIO_DEVICE(s), s->event_vq);
    return gen == s->reset_gen;
}

/*
 * Bottom half only: move pending packets into the guest's RX buffers,
 * splitting RW packets.  False if the device was reset meanwhile.
 */
static bool relay_flush_rx(VsockRelay *s, uint32_t gen, bool *more)
{
    unsigned budget = RELAY_BH_BUDGET;
    bool pushed = false;

    while (!QSIMPLEQ_EMPTY(&s->rx_pending)) {
        VsockRelayPacket *pkt;
        struct virtio_vsock_hdr hdr;
        VirtQueueElement *elem;
        uint32_t len, chunk, used;
        size_t room;

        if (!budget--) {
            *more = true;
            break;
        }
        elem = virtqueue_pop(s->rx_vq, sizeof(*elem));
        if (!elem) {
            break;
        }
        /* reading the ring may have reached an MMIO register too */
        pkt = QSIMPLEQ_FIRST(&s->rx_pending);
        if (gen != s->reset_gen || !pkt) {
            relay_discard(s, elem);
            return gen == s->reset_gen;
        }
        room = iov_size(elem->in_sg, elem->in_num);
        if (room < VSOCK_RELAY_HDR_SIZE) {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "vsock-relay: RX buffer of %zu bytes is too small\n",
                          room);
            used = 0;
        } else {
            len = le32_to_cpu(pkt->hdr.len);
            hdr = pkt->hdr;
            chunk = MIN(len - pkt->delivered, room - VSOCK_RELAY_HDR_SIZE);
            hdr.len = cpu_to_le32(chunk);
            if (pkt->delivered + chunk < len &&
                le16_to_cpu(hdr.type) == VIRTIO_VSOCK_TYPE_SEQPACKET) {
                /* only the last fragment ends the message or record */
                hdr.flags &= ~cpu_to_le32(VIRTIO_VSOCK_SEQ_EOM |
                                          VIRTIO_VSOCK_SEQ_EOR);
            }
            iov_from_buf(elem->in_sg, elem->in_num, 0, &hdr, sizeof(hdr));
            iov_from_buf(elem->in_sg, elem->in_num, VSOCK_RELAY_HDR_SIZE,
                         pkt->data + pkt->delivered, chunk);
            used = VSOCK_RELAY_HDR_SIZE + chunk;
            trace_vsock_relay_rx(s->guest_cid, le16_to_cpu(hdr.op), chunk);
            /* done with @pkt before the push, which may re-enter */
            pkt->delivered += chunk;
            if (pkt->delivered == len) {
                QSIMPLEQ_REMOVE_HEAD(&s->rx_pending, next);
                relay_unlink_pending(s, pkt);
            }
        }
        virtqueue_push(s->rx_vq, elem, used);
        g_free(elem);
        if (gen != s->reset_gen) {
            return false;
        }
        pushed = true;
    }
    if (pushed) {
        virtio_notify(VIRTIO_DEVICE(s), s->rx_vq);
    }
    return gen == s->reset_gen;
}

static void relay_tx_packet(VsockRelay *s, const struct virtio_vsock_hdr *hdr,
                            const uint8_t *data);

/* Bottom half only.  False if the device was reset meanwhile. */
static bool relay_drain_tx(VsockRelay *s, uint32_t gen, bool *more)
{
    unsigned budget = RELAY_BH_BUDGET;
    VirtQueueElement *elem;
    bool pushed = false;

    while ((elem = virtqueue_pop(s->tx_vq, sizeof(*elem)))) {
        size_t size = iov_size(elem->out_sg, elem->out_num);
        struct virtio_vsock_hdr hdr;
        uint32_t len;

        if (gen != s->reset_gen) {
            relay_discard(s, elem);
            return false;
        }
        if (size < VSOCK_RELAY_HDR_SIZE) {
            qemu_log_mask(LOG_GUEST_ERROR, "vsock-relay: short TX packet\n");
            goto done;
        }
        iov_to_buf(elem->out_sg, elem->out_num, 0, &hdr, sizeof(hdr));
        len = le32_to_cpu(hdr.len);
        if (len > VSOCK_RELAY_MAX_PAYLOAD ||
            size < VSOCK_RELAY_HDR_SIZE + len) {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "vsock-relay: TX packet length %u is wrong\n", len);
            goto done;
        }
        iov_to_buf(elem->out_sg, elem->out_num, VSOCK_RELAY_HDR_SIZE,
                   s->tx_buf, len);
        relay_tx_packet(s, &hdr, s->tx_buf);
done:
        virtqueue_push(s->tx_vq, elem, 0);
        g_free(elem);
        if (gen != s->reset_gen) {
            return false;
        }
        pushed = true;
        if (!--budget) {
            *more = true;
            break;
        }
    }
    if (pushed) {
        virtio_notify(VIRTIO_DEVICE(s), s->tx_vq);
    }
    return gen == s->reset_gen;
}

/* The only code that writes to the guest (see the comment at the top). */
static void relay_bh(void *opaque)
{
    VsockRelay *s = opaque;
    uint32_t gen = s->reset_gen;
    bool more = false;

    if (!relay_driver_ok(s)) {
        return;
    }
    if (s->reset_event_pending && !relay_send_reset_event(s, gen)) {
        return;
    }
    if (!relay_drain_tx(s, gen, &more) || !relay_flush_rx(s, gen, &more)) {
        return;
    }
    if (more) {
        /* the rest in the next run, so one guest cannot hog the loop */
        relay_kick(s);
    }
}

/*
 * A source sent more than the guest took.  An enclave loses its link (which
 * resets the parent's sockets to it, and nothing else); for a local source
 * (the console, our own RSTs) the packet is dropped.
 */
static void relay_source_over_cap(VsockRelay *s, uint64_t cid, uint16_t op)
{
    trace_vsock_relay_rx_over_cap(s->guest_cid, cid, relay_src_bytes(s, cid));
    if (!vsock_relay_router_has_cid(s->router, cid)) {
        trace_vsock_relay_rx_drop(s->guest_cid, cid, op);
        return;
    }
    qemu_log_mask(LOG_GUEST_ERROR,
                  "vsock-relay: CID %" PRIu64 " sent more than CID %" PRIu64
                  " reads; dropping its link\n", cid, s->guest_cid);
    relay_drop_rx_from(s, cid);
    vsock_relay_router_drop_cid(s->router, cid);
}

/* The enclave holding the most of the parent's RX buffer; 0 if none does. */
static uint64_t relay_largest_enclave(VsockRelay *s)
{
    uint64_t cid = 0, most = 0;
    GHashTableIter it;
    gpointer value;

    g_hash_table_iter_init(&it, s->rx_src_bytes);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        RelaySource *src = value;

        if (src->bytes > most &&
            vsock_relay_router_has_cid(s->router, src->cid)) {
            most = src->bytes;
            cid = src->cid;
        }
    }
    return cid;
}

/*
 * The parent's RX buffer is full, every source within its own share, and
 * an enclave sends: the enclave that holds the most of it loses its link,
 * as one over its share does, rather than the packet of whoever sends
 * next being lost (a well-behaved enclave's data, or its answer to a
 * connect).  Only when that link alone makes the room: one packet never
 * costs two links, and a local source's packet (the console, the relay's
 * own RSTs) never costs one.  False when the packet from @src still
 * cannot be queued.
 */
static bool relay_make_room(VsockRelay *s, uint64_t src, uint64_t size)
{
    uint64_t need = s->rx_pending_bytes + size - s->buffer_cap;
    uint64_t hog;

    if (!vsock_relay_router_has_cid(s->router, src)) {
        return false;
    }
    hog = relay_largest_enclave(s);
    if (!hog || relay_src_bytes(s, hog) < need) {
        return false;
    }
    trace_vsock_relay_rx_full(s->guest_cid, hog, relay_src_bytes(s, hog));
    qemu_log_mask(LOG_GUEST_ERROR,
                  "vsock-relay: CID %" PRIu64 "'s RX buffer is full; CID %"
                  PRIu64 ", which holds the most of it, loses its link\n",
                  s->guest_cid, hog);
    relay_drop_rx_from(s, hog);
    vsock_relay_router_drop_cid(s->router, hog);
    return hog != src;
}

/* Queue one packet for this device's guest; never writes to the guest. */
static void relay_deliver(void *opaque, const struct virtio_vsock_hdr *hdr,
                          const uint8_t *data)
{
    VsockRelay *s = opaque;
    uint64_t size = relay_pending_cost(le32_to_cpu(hdr->len));
    uint64_t src = le64_to_cpu(hdr->src_cid);
    VsockRelayPacket *pkt;

    if (s->router) {
        /*
         * Parent: each source (enclave link, console, our own RSTs) has its
         * own share, so a peer that ignores credit loses only its link.
         */
        if (relay_src_bytes(s, src) + size > s->source_cap) {
            relay_source_over_cap(s, src, le16_to_cpu(hdr->op));
            return;
        }
        if (s->rx_pending_bytes + size > s->buffer_cap &&
            !relay_make_room(s, src, size)) {
            trace_vsock_relay_rx_drop(s->guest_cid, src,
                                      le16_to_cpu(hdr->op));
            return;
        }
    } else if (s->rx_pending_bytes + size > s->buffer_cap) {
        /*
         * Enclave: its only peer is the parent, which sent more than the
         * guest reads: reset everything rather than lose data silently.
         */
        trace_vsock_relay_rx_over_cap(s->guest_cid, src, s->rx_pending_bytes);
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vsock-relay: CID %" PRIu64 " does not read its RX "
                      "queue; resetting its connections\n", s->guest_cid);
        relay_drop_rx_pending(s);
        if (s->uplink) {
            vsock_relay_link_close(s->uplink, "guest RX over the cap");
        }
        relay_queue_reset_event(s);
        return;
    }
    /* One allocation: the queue macros evaluate their element repeatedly. */
    pkt = vsock_relay_packet_new(hdr, data);
    QSIMPLEQ_INSERT_TAIL(&s->rx_pending, pkt, next);
    s->rx_pending_bytes += size;
    if (s->router) {
        relay_src_account(s, src, size);
    }
    relay_kick(s);
}

static QEMUBH *relay_parent_bh_new(void *opaque, QEMUBHFunc *cb,
                                   void *cb_opaque)
{
    return virtio_bh_new_guarded(DEVICE(opaque), cb, cb_opaque);
}

static const VsockRelayParentOps relay_parent_ops = {
    .deliver = relay_deliver,
    .bh_new = relay_parent_bh_new,
};

/* Route one packet the guest sent; answer it with an RST if nobody can. */
static void relay_tx_packet(VsockRelay *s, const struct virtio_vsock_hdr *hdr,
                            const uint8_t *data)
{
    uint64_t src = le64_to_cpu(hdr->src_cid);
    uint64_t dst = le64_to_cpu(hdr->dst_cid);
    uint16_t op = le16_to_cpu(hdr->op);
    bool routed = false;

    trace_vsock_relay_tx(src, dst, op, le32_to_cpu(hdr->len));
    if (src != s->guest_cid) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vsock-relay: packet from CID %" PRIu64 " on the device "
                      "of CID %" PRIu64 " dropped\n", src, s->guest_cid);
        return;
    }
    if (op == VIRTIO_VSOCK_OP_INVALID) {
        /* reserved for relay control frames; never forwarded */
        qemu_log_mask(LOG_GUEST_ERROR, "vsock-relay: INVALID op dropped\n");
        return;
    }
    if (!vsock_relay_len_fits_op(hdr)) {
        /* cut like data, it would reach the peer as many copies of itself */
        qemu_log_mask(LOG_GUEST_ERROR, "vsock-relay: op %u with a payload "
                      "(%u bytes) refused\n", op, le32_to_cpu(hdr->len));
    } else if (s->router) {
        routed = vsock_relay_router_route(s->router, hdr, data);
    } else if (dst == s->peer_cid && vsock_relay_link_is_open(s->uplink)) {
        routed = vsock_relay_link_send(s->uplink, hdr, data);
    }
    if (!routed && op != VIRTIO_VSOCK_OP_RST) {
        struct virtio_vsock_hdr rst;

        trace_vsock_relay_unroutable(src, dst);
        vsock_relay_make_rst(&rst, hdr);
        relay_deliver(s, &rst, NULL);
    }
}

static void relay_handle_tx(VirtIODevice *vdev, VirtQueue *vq)
{
    relay_kick(VSOCK_RELAY(vdev));
}

static void relay_handle_rx(VirtIODevice *vdev, VirtQueue *vq)
{
    relay_kick(VSOCK_RELAY(vdev));
}

static void relay_handle_event(VirtIODevice *vdev, VirtQueue *vq)
{
    relay_kick(VSOCK_RELAY(vdev));
}

/* --- the link to the parent (enclave side) ------------------------------- */

static void relay_uplink_frame(void *opaque, VsockRelayLink *link,
                               const struct virtio_vsock_hdr *hdr,
                               const uint8_t *data)
{
    VsockRelay *s = opaque;

    if (le16_to_cpu(hdr->op) == VIRTIO_VSOCK_OP_INVALID) {
        if (le32_to_cpu(hdr->flags) == VSOCK_RELAY_CTL_PEER_RESET) {
            relay_drop_rx_pending(s);
            relay_queue_reset_event(s);
        }
        return;
    }
    if (le64_to_cpu(hdr->dst_cid) != s->guest_cid ||
        le64_to_cpu(hdr->src_cid) != s->peer_cid) {
        trace_vsock_relay_misrouted(le64_to_cpu(hdr->src_cid),
                                    le64_to_cpu(hdr->dst_cid));
        return;
    }
    relay_deliver(s, hdr, data);
}

static void relay_uplink_closed(void *opaque, VsockRelayLink *link)
{
    VsockRelay *s = opaque;

    s->uplink = NULL;
    warn_report("vsock-relay: CID %" PRIu64 " lost its link to the parent",
                s->guest_cid);
    relay_drop_rx_pending(s);
    relay_queue_reset_event(s);
}

/* The link socket: fd=N (given by the launcher) or connect=PATH. */
static QIOChannelSocket *relay_open_uplink(VsockRelay *s, Error **errp)
{
    QIOChannelSocket *sioc;
    SocketAddress addr = {
        .type = SOCKET_ADDRESS_TYPE_UNIX,
        .u.q_unix.path = s->connect_path,
    };
    int fd;

    if (s->link_fd) {
        fd = monitor_fd_param(monitor_cur(), s->link_fd, errp);
        if (fd < 0) {
            return NULL;
        }
        /* the fd is the device's now: not a socket, it is closed */
        sioc = qio_channel_socket_new_fd(fd, errp);
        if (!sioc) {
            close(fd);
        }
        return sioc;
    }
    sioc = qio_channel_socket_new();
    if (qio_channel_socket_connect_sync(sioc, &addr, errp) < 0) {
        object_unref(OBJECT(sioc));
        return NULL;
    }
    return sioc;
}

static bool relay_connect(VsockRelay *s, Error **errp)
{
    QIOChannelSocket *sioc = relay_open_uplink(s, errp);

    if (!sioc) {
        error_prepend(errp, "vsock-relay: cannot reach the parent's relay: ");
        return false;
    }
    s->uplink = vsock_relay_link_new(QIO_CHANNEL(sioc), s->buffer_cap,
                                     relay_uplink_frame, relay_uplink_closed,
                                     s);
    object_unref(OBJECT(sioc));
    vsock_relay_link_send_ctl(s->uplink, s->guest_cid, VSOCK_RELAY_CTL_HELLO);
    return true;
}

/* --- device ------------------------------------------------------------ */

static bool relay_cid_is_reserved(uint64_t cid)
{
    return cid <= 2 || cid >= UINT32_MAX;
}

static void relay_realize(DeviceState *dev, Error **errp)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(dev);
    VsockRelay *s = VSOCK_RELAY(dev);
    bool is_parent;

    if (relay_cid_is_reserved(s->guest_cid)) {
        error_setg(errp, "vsock-relay: guest-cid=%" PRIu64 " is missing or "
                   "reserved (use 3 to 4294967294)", s->guest_cid);
        return;
    }
    is_parent = s->guest_cid == VSOCK_RELAY_PARENT_CID;
    if (s->connect_path && s->link_fd) {
        error_setg(errp, "vsock-relay: give connect=PATH or fd=N, not both");
        return;
    }
    if (is_parent && (s->connect_path || s->link_fd)) {
        error_setg(errp, "vsock-relay: guest-cid=%d is the parent, which "
                   "routes (listen=PATH) and connects nowhere",
                   VSOCK_RELAY_PARENT_CID);
        return;
    }
    if (!is_parent && s->listen_path) {
        error_setg(errp, "vsock-relay: listen= is for the parent, whose "
                   "guest-cid must be %d", VSOCK_RELAY_PARENT_CID);
        return;
    }
    if (!is_parent && !s->connect_path && !s->link_fd) {
        error_setg(errp, "vsock-relay: an enclave's relay needs connect=PATH "
                   "or fd=N to reach the parent");
        return;
    }
    if (!is_parent && (relay_cid_is_reserved(s->peer_cid) ||
                       s->peer_cid == s->guest_cid)) {
        error_setg(errp, "vsock-relay: peer-cid=%" PRIu64 " is not usable",
                   s->peer_cid);
        return;
    }
    if (s->buffer_cap < 2 * relay_pending_cost(VSOCK_RELAY_MAX_PAYLOAD)) {
        error_setg(errp, "vsock-relay: buffer-cap=%" PRIu64 " is too small",
                   s->buffer_cap);
        return;
    }

    if (s->source_cap > s->buffer_cap) {
        error_setg(errp, "vsock-relay: source-cap=%" PRIu64 " is above "
                   "buffer-cap=%" PRIu64, s->source_cap, s->buffer_cap);
        return;
    }
    if (s->source_cap < 2 * relay_pending_cost(VSOCK_RELAY_MAX_PAYLOAD)) {
        error_setg(errp, "vsock-relay: source-cap=%" PRIu64 " is too small",
                   s->source_cap);
        return;
    }

    /* (the link's and the router's callbacks run later, in the main loop) */
    if (is_parent) {
        s->router = vsock_relay_router_new(s->listen_path, s->buffer_cap,
                                           &relay_parent_ops, s, errp);
        if (!s->router) {
            return;
        }
    } else if (!relay_connect(s, errp)) {
        return;
    }
    QSIMPLEQ_INIT(&s->rx_pending);
    s->rx_src_bytes = g_hash_table_new_full(g_int64_hash, g_int64_equal,
                                            NULL, g_free);
    s->tx_buf = g_malloc(VSOCK_RELAY_MAX_PAYLOAD);

    virtio_init(vdev, VIRTIO_ID_VSOCK, sizeof(struct virtio_vsock_config));
    s->rx_vq = virtio_add_queue(vdev, RELAY_QUEUE_SIZE, relay_handle_rx);
    s->tx_vq = virtio_add_queue(vdev, RELAY_QUEUE_SIZE, relay_handle_tx);
    s->event_vq = virtio_add_queue(vdev, RELAY_QUEUE_SIZE, relay_handle_event);
    /* guarded: see the comment on re-entrancy at the top */
    s->bh = virtio_bh_new_guarded(dev, relay_bh, s);
}

static void relay_unrealize(DeviceState *dev)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(dev);
    VsockRelay *s = VSOCK_RELAY(dev);

    if (s->router) {
        vsock_relay_router_free(s->router);
        s->router = NULL;
    }
    if (s->uplink) {
        vsock_relay_link_destroy(s->uplink);
        s->uplink = NULL;
    }
    qemu_bh_delete(s->bh);
    relay_drop_rx_pending(s);
    g_hash_table_destroy(s->rx_src_bytes);
    g_free(s->tx_buf);
    virtio_delete_queue(s->rx_vq);
    virtio_delete_queue(s->tx_vq);
    virtio_delete_queue(s->event_vq);
    virtio_cleanup(vdev);
}

static uint64_t relay_get_features(VirtIODevice *vdev, uint64_t features,
                                   Error **errp)
{
    VsockRelay *s = VSOCK_RELAY(vdev);

    if (s->seqpacket) {
        virtio_add_feature(&features, VIRTIO_VSOCK_F_SEQPACKET);
    }
    return features;
}

static void relay_get_config(VirtIODevice *vdev, uint8_t *config)
{
    VsockRelay *s = VSOCK_RELAY(vdev);
    struct virtio_vsock_config cfg = {
        .guest_cid = cpu_to_le64(s->guest_cid),
    };

    memcpy(config, &cfg, sizeof(cfg));
}

static void relay_set_status(VirtIODevice *vdev, uint8_t status)
{
    VsockRelay *s = VSOCK_RELAY(vdev);

    if (status & VIRTIO_CONFIG_S_DRIVER_OK) {
        relay_kick(s);
    }
}

/*
 * The guest reset the device (reboot, driver reload): its sockets are gone,
 * so its peers must drop their ends too.
 */
static void relay_reset(VirtIODevice *vdev)
{
    VsockRelay *s = VSOCK_RELAY(vdev);

    /* a flush this reset interrupted stops at its next check */
    s->reset_gen++;
    relay_drop_rx_pending(s);
    s->reset_event_pending = false;
    if (s->router) {
        vsock_relay_router_parent_reset(s->router);
    } else if (vsock_relay_link_is_open(s->uplink)) {
        vsock_relay_link_send_ctl(s->uplink, s->guest_cid,
                                  VSOCK_RELAY_CTL_PEER_RESET);
    }
}

static const VMStateDescription vmstate_vsock_relay = {
    .name = "vsock-relay",
    .unmigratable = 1,
};

static Property relay_properties[] = {
    DEFINE_PROP_UINT64("guest-cid", VsockRelay, guest_cid, 0),
    DEFINE_PROP_UINT64("peer-cid", VsockRelay, peer_cid,
                       VSOCK_RELAY_PARENT_CID),
    DEFINE_PROP_STRING("listen", VsockRelay, listen_path),
    DEFINE_PROP_STRING("connect", VsockRelay, connect_path),
    DEFINE_PROP_STRING("fd", VsockRelay, link_fd),
    DEFINE_PROP_UINT64("buffer-cap", VsockRelay, buffer_cap,
                       VSOCK_RELAY_DEFAULT_CAP),
    DEFINE_PROP_UINT64("source-cap", VsockRelay, source_cap,
                       VSOCK_RELAY_DEFAULT_SOURCE_CAP),
    DEFINE_PROP_BOOL("seqpacket", VsockRelay, seqpacket, true),
    DEFINE_PROP_END_OF_LIST(),
};

static void relay_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    VirtioDeviceClass *vdc = VIRTIO_DEVICE_CLASS(klass);

    device_class_set_props(dc, relay_properties);
    dc->vmsd = &vmstate_vsock_relay;
    set_bit(DEVICE_CATEGORY_NETWORK, dc->categories);
    vdc->realize = relay_realize;
    vdc->unrealize = relay_unrealize;
    vdc->get_features = relay_get_features;
    vdc->get_config = relay_get_config;
    vdc->set_status = relay_set_status;
    vdc->reset = relay_reset;
}

static const TypeInfo relay_info = {
    .name = TYPE_VSOCK_RELAY,
    .parent = TYPE_VIRTIO_DEVICE,
    .instance_size = sizeof(VsockRelay),
    .class_init = relay_class_init,
};

static void relay_register_types(void)
{
    type_register_static(&relay_info);
}

type_init(relay_register_types)
