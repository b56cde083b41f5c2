/*
 * vsock relay: the switch in the parent's QEMU.
 *
 * Enclave QEMUs reach it in one of two ways: the ne-pci launcher hands each
 * enclave VM it starts one end of a socketpair and attaches the other here
 * with the CID the hypervisor gave that enclave (vsock_relay_router_attach);
 * or, with listen=PATH, an enclave QEMU started by hand connects to a unix
 * socket and introduces itself with a HELLO frame carrying its CID.
 * Packets from the parent guest go to the link (or local service) that owns
 * their dst_cid;
 * packets from an enclave may only go to the parent (CID 3), anything else
 * is answered with an RST.
 *
 * The only state kept per enclave is the set of (parent port, enclave port)
 * pairs seen on its link, so that when the enclave goes away the parent's
 * sockets to it can be reset with one RST each, without touching its
 * connections to other enclaves (a TRANSPORT_RESET would kill them all).
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qapi/error.h"
#include "io/channel-socket.h"
#include "io/net-listener.h"
#include "hw/ne/vsock-relay.h"
#include "trace/trace-hw_ne.h"

typedef struct RouterPeer {
    VsockRelayRouter *router;
    VsockRelayLink *link;
    uint64_t cid;               /* 0 until HELLO */
    GHashTable *ports;          /* (parent_port << 32 | enclave_port) */
    QLIST_ENTRY(RouterPeer) next;
} RouterPeer;

struct VsockRelayRouter {
    QIONetListener *listener;
    char *path;
    uint64_t cap;
    const VsockRelayParentOps *ops;
    void *opaque;
    QLIST_HEAD(, RouterPeer) peers;
    QLIST_HEAD(, VsockRelayService) services;
};

static guint64 port_pair(uint32_t parent_port, uint32_t enclave_port)
{
    return (guint64)parent_port << 32 | enclave_port;
}

/*
 * The peer that holds @cid.  A connection on the socket that has not said
 * HELLO yet holds none: its cid is 0, which must not match the parent's
 * packets to CID 0 (the hypervisor's console service, when it is not
 * registered).
 */
static RouterPeer *router_find_peer(VsockRelayRouter *r, uint64_t cid)
{
    RouterPeer *peer;

    if (!cid) {
        return NULL;
    }
    QLIST_FOREACH(peer, &r->peers, next) {
        if (peer->cid == cid && vsock_relay_link_is_open(peer->link)) {
            return peer;
        }
    }
    return NULL;
}

/*
 * Remember a connection when it is requested or accepted, forget it when
 * either side resets it; data packets need no bookkeeping.  False when
 * @hdr would open a connection the full table cannot remember: the caller
 * refuses it with RSTs (VSOCK_RELAY_MAX_PORTS per enclave, so neither side
 * can grow the table without bound by never resetting).
 */
static bool peer_track(RouterPeer *peer, const struct virtio_vsock_hdr *hdr,
                       bool from_parent)
{
    uint32_t sport = le32_to_cpu(hdr->src_port);
    uint32_t dport = le32_to_cpu(hdr->dst_port);
    guint64 key = from_parent ? port_pair(sport, dport) :
                                port_pair(dport, sport);

    switch (le16_to_cpu(hdr->op)) {
    case VIRTIO_VSOCK_OP_REQUEST:
    case VIRTIO_VSOCK_OP_RESPONSE:
        if (g_hash_table_contains(peer->ports, &key)) {
            break;
        }
        if (g_hash_table_size(peer->ports) >= VSOCK_RELAY_MAX_PORTS) {
            trace_vsock_relay_router_ports_full(peer->cid, key >> 32,
                                                (uint32_t)key);
            return false;
        }
        g_hash_table_add(peer->ports, g_memdup2(&key, sizeof(key)));
        break;
    case VIRTIO_VSOCK_OP_RST:
        g_hash_table_remove(peer->ports, &key);
        break;
    default:
        break;
    }
    return true;
}

/* The RST @hdr's receiver would send back, sent on to that receiver. */
static void router_make_fwd_rst(struct virtio_vsock_hdr *rst,
                                const struct virtio_vsock_hdr *hdr)
{
    struct virtio_vsock_hdr back;

    vsock_relay_make_rst(&back, hdr);
    vsock_relay_make_rst(rst, &back);
}

/* The enclave went away or reset: reset every parent socket to it. */
static void peer_reset_parent_sockets(RouterPeer *peer)
{
    VsockRelayRouter *r = peer->router;
    GHashTableIter it;
    gpointer key;

    g_hash_table_iter_init(&it, peer->ports);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        guint64 pair = *(guint64 *)key;
        struct virtio_vsock_hdr rst = {
            .src_cid = cpu_to_le64(peer->cid),
            .dst_cid = cpu_to_le64(VSOCK_RELAY_PARENT_CID),
            .src_port = cpu_to_le32((uint32_t)pair),
            .dst_port = cpu_to_le32(pair >> 32),
            .type = cpu_to_le16(VIRTIO_VSOCK_TYPE_STREAM),
            .op = cpu_to_le16(VIRTIO_VSOCK_OP_RST),
        };

        /*
         * The type does not matter to Linux for an RST to a known socket
         * (it looks sockets up by address); STREAM is what it sends.
         */
        r->ops->deliver(r->opaque, &rst, NULL);
    }
    g_hash_table_remove_all(peer->ports);
}

static void router_peer_frame(void *opaque, VsockRelayLink *link,
                              const struct virtio_vsock_hdr *hdr,
                              const uint8_t *data)
{
    RouterPeer *peer = opaque;
    VsockRelayRouter *r = peer->router;
    uint64_t src = le64_to_cpu(hdr->src_cid);
    uint64_t dst = le64_to_cpu(hdr->dst_cid);

    if (le16_to_cpu(hdr->op) == VIRTIO_VSOCK_OP_INVALID) {
        uint32_t what = le32_to_cpu(hdr->flags);

        if (what == VSOCK_RELAY_CTL_HELLO && peer->cid && src == peer->cid) {
            /* an attached enclave confirming the CID it was given */
        } else if (what == VSOCK_RELAY_CTL_HELLO && !peer->cid) {
            if (src <= VSOCK_RELAY_PARENT_CID || src >= UINT32_MAX ||
                router_find_peer(r, src)) {
                trace_vsock_relay_router_reject(src);
                vsock_relay_link_close(link, "CID reserved or in use");
                return;
            }
            peer->cid = src;
            trace_vsock_relay_router_hello(src);
        } else if (what == VSOCK_RELAY_CTL_PEER_RESET && peer->cid) {
            peer_reset_parent_sockets(peer);
        } else {
            vsock_relay_link_close(link, "bad control frame");
        }
        return;
    }
    if (!peer->cid) {
        vsock_relay_link_close(link, "data before HELLO");
        return;
    }
    if (src != peer->cid) {
        /* the enclave's own device enforces this; a peer that lies is cut */
        vsock_relay_link_close(link, "spoofed src_cid");
        return;
    }
    if (!vsock_relay_len_fits_op(hdr)) {
        /* the enclave's own device refuses these too (relay_tx_packet()) */
        vsock_relay_link_close(link, "payload on a control packet");
        return;
    }
    if (dst != VSOCK_RELAY_PARENT_CID) {
        if (le16_to_cpu(hdr->op) != VIRTIO_VSOCK_OP_RST) {
            struct virtio_vsock_hdr rst;

            vsock_relay_make_rst(&rst, hdr);
            vsock_relay_link_send(link, &rst, NULL);
        }
        return;
    }
    if (!peer_track(peer, hdr, false)) {
        struct virtio_vsock_hdr rst;

        vsock_relay_make_rst(&rst, hdr);
        vsock_relay_link_send(link, &rst, NULL);
        if (le16_to_cpu(hdr->op) == VIRTIO_VSOCK_OP_RESPONSE) {
            /* the parent's connect waits for this answer */
            router_make_fwd_rst(&rst, hdr);
            r->ops->deliver(r->opaque, &rst, NULL);
        }
        return;
    }
    trace_vsock_relay_route(src, dst, le16_to_cpu(hdr->op),
                            le32_to_cpu(hdr->len));
    r->ops->deliver(r->opaque, hdr, data);
}

static void router_peer_closed(void *opaque, VsockRelayLink *link)
{
    RouterPeer *peer = opaque;

    trace_vsock_relay_router_gone(peer->cid);
    if (peer->cid) {
        peer_reset_parent_sockets(peer);
    }
    QLIST_REMOVE(peer, next);
    g_hash_table_destroy(peer->ports);
    g_free(peer);
}

static RouterPeer *router_add_peer(VsockRelayRouter *r, QIOChannel *ioc,
                                   uint64_t cid)
{
    RouterPeer *peer = g_new0(RouterPeer, 1);

    peer->router = r;
    peer->cid = cid;
    peer->ports = g_hash_table_new_full(g_int64_hash, g_int64_equal,
                                        g_free, NULL);
    QLIST_INSERT_HEAD(&r->peers, peer, next);
    peer->link = vsock_relay_link_new(ioc, r->cap, router_peer_frame,
                                      router_peer_closed, peer);
    return peer;
}

static void router_accept(QIONetListener *listener, QIOChannelSocket *sioc,
                          gpointer opaque)
{
    router_add_peer(opaque, QIO_CHANNEL(sioc), 0);
}

bool vsock_relay_router_attach(VsockRelayRouter *r, QIOChannel *ioc,
                               uint64_t cid)
{
    if (cid <= VSOCK_RELAY_PARENT_CID || cid >= UINT32_MAX ||
        router_find_peer(r, cid)) {
        trace_vsock_relay_router_reject(cid);
        return false;
    }
    router_add_peer(r, ioc, cid);
    trace_vsock_relay_router_hello(cid);
    return true;
}

bool vsock_relay_router_route(VsockRelayRouter *r,
                              const struct virtio_vsock_hdr *hdr,
                              const uint8_t *data)
{
    uint64_t dst = le64_to_cpu(hdr->dst_cid);
    VsockRelayService *svc;
    RouterPeer *peer;

    QLIST_FOREACH(svc, &r->services, next) {
        if (svc->cid == dst) {
            svc->receive(svc, hdr, data);
            return true;
        }
    }
    peer = router_find_peer(r, dst);
    if (!peer) {
        return false;
    }
    if (!peer_track(peer, hdr, true)) {
        if (le16_to_cpu(hdr->op) == VIRTIO_VSOCK_OP_RESPONSE) {
            /* the enclave's connect waits for this answer */
            struct virtio_vsock_hdr rst;

            router_make_fwd_rst(&rst, hdr);
            vsock_relay_link_send(peer->link, &rst, NULL);
        }
        /* the parent's device answers with an RST */
        return false;
    }
    /* on overflow the link closes, which resets both sides: no silent loss */
    vsock_relay_link_send(peer->link, hdr, data);
    return true;
}

void vsock_relay_router_parent_reset(VsockRelayRouter *r)
{
    RouterPeer *peer;

    QLIST_FOREACH(peer, &r->peers, next) {
        if (peer->cid && vsock_relay_link_is_open(peer->link)) {
            g_hash_table_remove_all(peer->ports);
            vsock_relay_link_send_ctl(peer->link, VSOCK_RELAY_PARENT_CID,
                                      VSOCK_RELAY_CTL_PEER_RESET);
        }
    }
}

void vsock_relay_router_drop_cid(VsockRelayRouter *r, uint64_t cid)
{
    RouterPeer *peer = router_find_peer(r, cid);

    if (peer) {
        vsock_relay_link_close(peer->link, "dropped by the device");
    }
}

bool vsock_relay_router_has_cid(VsockRelayRouter *r, uint64_t cid)
{
    return router_find_peer(r, cid) != NULL;
}

void vsock_relay_router_add_service(VsockRelayRouter *r,
                                    VsockRelayService *svc)
{
    QLIST_INSERT_HEAD(&r->services, svc, next);
}

void vsock_relay_router_del_service(VsockRelayRouter *r,
                                    VsockRelayService *svc)
{
    QLIST_REMOVE(svc, next);
}

void vsock_relay_router_to_parent(VsockRelayRouter *r,
                                  const struct virtio_vsock_hdr *hdr,
                                  const uint8_t *data)
{
    r->ops->deliver(r->opaque, hdr, data);
}

QEMUBH *vsock_relay_router_bh_new(VsockRelayRouter *r, QEMUBHFunc *cb,
                                  void *opaque)
{
    return r->ops->bh_new(r->opaque, cb, opaque);
}

/* Accept enclave QEMUs started by hand on the unix socket @path. */
static bool router_listen(VsockRelayRouter *r, const char *path, Error **errp)
{
    SocketAddress addr = {
        .type = SOCKET_ADDRESS_TYPE_UNIX,
        .u.q_unix.path = (char *)path,
    };
    struct stat st;

    /* a socket left behind by a QEMU that died would make bind fail */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(path);
    }
    r->listener = qio_net_listener_new();
    if (qio_net_listener_open_sync(r->listener, &addr, 16, errp) < 0) {
        object_unref(OBJECT(r->listener));
        r->listener = NULL;
        return false;
    }
    r->path = g_strdup(path);
    qio_net_listener_set_client_func(r->listener, router_accept, r, NULL);
    return true;
}

VsockRelayRouter *vsock_relay_router_new(const char *path, uint64_t cap,
                                         const VsockRelayParentOps *ops,
                                         void *opaque, Error **errp)
{
    VsockRelayRouter *r = g_new0(VsockRelayRouter, 1);

    r->cap = cap;
    r->ops = ops;
    r->opaque = opaque;
    QLIST_INIT(&r->peers);
    QLIST_INIT(&r->services);
    if (path && !router_listen(r, path, errp)) {
        g_free(r);
        return NULL;
    }
    return r;
}

void vsock_relay_router_free(VsockRelayRouter *r)
{
    RouterPeer *peer, *tmp;

    if (r->listener) {
        qio_net_listener_disconnect(r->listener);
        object_unref(OBJECT(r->listener));
        unlink(r->path);
    }
    QLIST_FOREACH_SAFE(peer, &r->peers, next, tmp) {
        vsock_relay_link_destroy(peer->link);
        QLIST_REMOVE(peer, next);
        g_hash_table_destroy(peer->ports);
        g_free(peer);
    }
    g_free(r->path);
    g_free(r);
}
