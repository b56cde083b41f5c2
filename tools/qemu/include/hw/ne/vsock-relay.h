/*
 * vsock relay: a virtio-vsock device that forwards packets between guests
 * (the parent VM at CID 3 and its enclave VMs) instead of terminating them.
 *
 * Both ends run the stock Linux virtio-vsock driver, which does the whole
 * protocol (connect, credit, shutdown) end to end; the relay keeps no
 * per-connection state.  See shared/spec/vsock-relay.md, section 2.B.
 *
 * Pieces:
 *   VsockRelayLink    a framed, non-blocking packet link over a socket
 *   VsockRelayRouter  the switch in the parent's QEMU: holds one link per
 *                     enclave QEMU and routes the parent's packets by CID
 *   vsock-relay-device / vsock-relay-pci
 *                     the virtio device; with guest-cid=3 it owns a router
 *                     (parent; listen=PATH also accepts enclave QEMUs
 *                     started by hand), with connect=PATH or fd=N a single
 *                     link (enclave)
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_NE_VSOCK_RELAY_H
#define HW_NE_VSOCK_RELAY_H

#include "hw/virtio/virtio.h"
#include "io/channel.h"
#include "qemu/queue.h"
#include "qom/object.h"
#include "standard-headers/linux/virtio_vsock.h"

#define VSOCK_RELAY_HDR_SIZE      sizeof(struct virtio_vsock_hdr)
/* Linux never sends more payload than this in one packet. */
#define VSOCK_RELAY_MAX_PAYLOAD   (64 * 1024)
#define VSOCK_RELAY_PARENT_CID    3
/* Host memory a relay may hold for a slow reader before it gives up. */
#define VSOCK_RELAY_DEFAULT_CAP   (64 * 1024 * 1024)
/* The parent's share of that for one source (one enclave, the console). */
#define VSOCK_RELAY_DEFAULT_SOURCE_CAP (16 * 1024 * 1024)
/* Connections the router remembers per enclave; more are refused (RST). */
#define VSOCK_RELAY_MAX_PORTS     4096

/*
 * Link control frames use op INVALID, which no guest ever sends; they are
 * never delivered to a guest.  The flags field says which one.
 */
enum {
    VSOCK_RELAY_CTL_HELLO = 0,      /* src_cid = the sender's guest CID */
    VSOCK_RELAY_CTL_PEER_RESET = 1, /* the sender's guest reset its device */
};

/* One packet in host memory: header (guest byte order, LE) and payload. */
typedef struct VsockRelayPacket {
    QSIMPLEQ_ENTRY(VsockRelayPacket) next;
    struct virtio_vsock_hdr hdr;
    uint32_t delivered;             /* payload bytes already given to RX */
    uint8_t data[];
} VsockRelayPacket;

VsockRelayPacket *vsock_relay_packet_new(const struct virtio_vsock_hdr *hdr,
                                         const void *data);
/*
 * Whether @hdr may carry a payload: only data (RW) packets do.  A control
 * packet with one would be cut, like data, into one copy per RX buffer of
 * the guest it reaches.
 */
bool vsock_relay_len_fits_op(const struct virtio_vsock_hdr *hdr);
/* Fill @hdr with the RST that answers @req (cids and ports swapped). */
void vsock_relay_make_rst(struct virtio_vsock_hdr *hdr,
                          const struct virtio_vsock_hdr *req);

/* --- framed link -------------------------------------------------------- */

typedef struct VsockRelayLink VsockRelayLink;
typedef void VsockRelayFrameFn(void *opaque, VsockRelayLink *link,
                               const struct virtio_vsock_hdr *hdr,
                               const uint8_t *data);
typedef void VsockRelayClosedFn(void *opaque, VsockRelayLink *link);

/*
 * Take a reference on @ioc and start reading frames from it.  @closed runs
 * once, from a bottom half, after the link is closed for any reason; the
 * link is freed right after it returns.
 */
VsockRelayLink *vsock_relay_link_new(QIOChannel *ioc, uint64_t cap,
                                     VsockRelayFrameFn *frame,
                                     VsockRelayClosedFn *closed,
                                     void *opaque);
/* Queue a frame; never blocks.  False if the link is closed or overflowed. */
bool vsock_relay_link_send(VsockRelayLink *link,
                           const struct virtio_vsock_hdr *hdr,
                           const void *data);
bool vsock_relay_link_send_ctl(VsockRelayLink *link, uint64_t cid,
                               uint32_t what);
void vsock_relay_link_close(VsockRelayLink *link, const char *why);
bool vsock_relay_link_is_open(VsockRelayLink *link);
/* Close immediately, without calling @closed (owner teardown). */
void vsock_relay_link_destroy(VsockRelayLink *link);

/* --- router (the switch of the parent's QEMU) ----------------------------- */

typedef struct VsockRelayRouter VsockRelayRouter;

/* How the router hands packets to the parent's device. */
typedef struct VsockRelayParentOps {
    /* Deliver one packet into the parent guest's RX queue. */
    void (*deliver)(void *opaque, const struct virtio_vsock_hdr *hdr,
                    const uint8_t *data);
    /* A bottom half under the parent device's re-entrancy guard. */
    QEMUBH *(*bh_new)(void *opaque, QEMUBHFunc *cb, void *cb_opaque);
} VsockRelayParentOps;

/*
 * A local service with its own CID (e.g. the console at CID 0).  It gets
 * the parent's packets addressed to @cid and answers through
 * vsock_relay_router_to_parent().
 */
typedef struct VsockRelayService {
    uint64_t cid;
    void (*receive)(struct VsockRelayService *svc,
                    const struct virtio_vsock_hdr *hdr, const uint8_t *data);
    QLIST_ENTRY(VsockRelayService) next;
} VsockRelayService;

/* @path NULL: no listening socket, only attached links. */
VsockRelayRouter *vsock_relay_router_new(const char *path, uint64_t cap,
                                         const VsockRelayParentOps *ops,
                                         void *opaque, Error **errp);
void vsock_relay_router_free(VsockRelayRouter *r);
/*
 * Attach an enclave's link (takes its own reference on @ioc) under the CID
 * the caller vouches for.  False if @cid is reserved or already attached.
 */
bool vsock_relay_router_attach(VsockRelayRouter *r, QIOChannel *ioc,
                               uint64_t cid);
/* Route a packet from the parent guest.  False if nobody has dst_cid. */
bool vsock_relay_router_route(VsockRelayRouter *r,
                              const struct virtio_vsock_hdr *hdr,
                              const uint8_t *data);
/* The parent's device was reset: every enclave resets its connections. */
void vsock_relay_router_parent_reset(VsockRelayRouter *r);
void vsock_relay_router_add_service(VsockRelayRouter *r,
                                    VsockRelayService *svc);
void vsock_relay_router_del_service(VsockRelayRouter *r,
                                    VsockRelayService *svc);
/* Queue a packet for the parent guest (never writes to it directly). */
void vsock_relay_router_to_parent(VsockRelayRouter *r,
                                  const struct virtio_vsock_hdr *hdr,
                                  const uint8_t *data);
/* A bottom half for a service, guarded like the parent's relay device. */
QEMUBH *vsock_relay_router_bh_new(VsockRelayRouter *r, QEMUBHFunc *cb,
                                  void *opaque);
/* Close the link of enclave @cid (its connections are reset). */
void vsock_relay_router_drop_cid(VsockRelayRouter *r, uint64_t cid);
/* Is enclave @cid attached (its link open)? */
bool vsock_relay_router_has_cid(VsockRelayRouter *r, uint64_t cid);

/* --- the virtio device -------------------------------------------------- */

#define TYPE_VSOCK_RELAY "vsock-relay-device"
OBJECT_DECLARE_SIMPLE_TYPE(VsockRelay, VSOCK_RELAY)

struct VsockRelay {
    VirtIODevice parent_obj;

    VirtQueue *rx_vq;
    VirtQueue *tx_vq;
    VirtQueue *event_vq;

    /*
     * The guest is written to only from @bh, which runs under the
     * transport's re-entrancy guard; everything else queues and kicks it.
     */
    QEMUBH *bh;
    uint32_t reset_gen;         /* bumped by every device reset */
    uint8_t *tx_buf;            /* one TX payload */

    /* Packets waiting for RX buffers, oldest first. */
    QSIMPLEQ_HEAD(, VsockRelayPacket) rx_pending;
    uint64_t rx_pending_bytes;  /* what the queued packets take in memory */
    GHashTable *rx_src_bytes;   /* parent: src CID -> what its packets take */
    bool reset_event_pending;   /* TRANSPORT_RESET not delivered yet */

    VsockRelayRouter *router;   /* listen= mode (parent) */
    VsockRelayLink *uplink;     /* connect= mode (enclave) */

    /* properties */
    uint64_t guest_cid;
    uint64_t peer_cid;
    char *listen_path;
    char *connect_path;
    char *link_fd;
    uint64_t buffer_cap;
    uint64_t source_cap;
    bool seqpacket;
};

#endif
