/*
 * The enclave debug console: a vsock stream server at CID 0, port enclave
 * CID + 10000, living in the parent's QEMU as a service of the vsock relay
 * router (see ne-console.h).
 *
 * There is no host socket behind it: this file is the far end of the
 * parent guest's virtio-vsock connection and speaks the protocol itself
 * (shared/spec/vsock-relay.md, sections 1.3-1.6):
 *
 *   - REQUEST to a served port gets RESPONSE, then the source's history and
 *     live output as RW packets, never more than the peer's credit
 *     (buf_alloc - (tx_cnt - fwd_cnt), taken from every packet it sends).
 *     Linux as a receiver sends CREDIT_UPDATE on its own once its reader
 *     has drained enough, so a stalled connection needs no polling.
 *   - Payload from the peer is discarded but counted in our fwd_cnt; we
 *     report it before the peer could run out of credit, because Linux as
 *     a sender never asks (it just waits for a CREDIT_UPDATE).
 *   - When the enclave goes away each connection gets what is left, then a
 *     SHUTDOWN with both flags; Linux answers with an RST once its reader
 *     closes.  If that never comes, we send the RST ourselves after
 *     CONSOLE_LINGER_MS, as the spec asks.
 *
 * Connections belong to the NEConsole, not to a source, so that a source
 * can be freed as soon as its last connection has been shut down.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "ne-console.h"
#include "trace/trace-hw_ne.h"

/* Our receive buffer as the peer sees it; nothing is really buffered. */
#define CONSOLE_BUF_ALLOC   (64 * 1024)
/* Largest RW we send; the device splits it further to fit RX buffers. */
#define CONSOLE_MAX_RW      4096
/* A guest can forge REQUESTs without sockets: bound what it can pin. */
#define CONSOLE_MAX_CONNS   256
/* How long a shut-down connection waits for the peer's RST (Linux: 8 s). */
#define CONSOLE_LINGER_MS   8000
/*
 * The parent guest states its own buf_alloc; we believe at most this much
 * (Linux's largest default), so what the console can have queued in the
 * relay is bounded by CONSOLE_MAX_CONNS * CONSOLE_MAX_CREDIT.
 */
#define CONSOLE_MAX_CREDIT  (256 * 1024)
/* Output bytes one connection sends per pump; the rest from the BH. */
#define CONSOLE_PUMP_BUDGET (16 * 1024)

#define SHUTDOWN_BOTH (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND)

typedef struct ConsoleConn {
    NEConsole *console;
    NEConsoleSource *src;       /* NULL once our SHUTDOWN is out */
    uint32_t port;              /* ours (the source's port) */
    uint32_t peer_port;
    uint64_t pos;               /* next byte of the source output to send */
    /* credit, all free-running u32 counters as in the protocol */
    uint32_t tx_cnt;            /* payload bytes we sent */
    uint32_t peer_buf_alloc;
    uint32_t peer_fwd_cnt;
    uint32_t fwd_cnt;           /* payload bytes the peer sent (discarded) */
    uint32_t fwd_reported;      /* fwd_cnt as last told to the peer */
    uint32_t peer_shutdown;     /* VIRTIO_VSOCK_SHUTDOWN_* seen so far */
    QEMUTimer *linger;          /* armed once our SHUTDOWN is out */
    QLIST_ENTRY(ConsoleConn) next;
} ConsoleConn;

struct NEConsoleSource {
    NEConsole *console;
    uint64_t cid;
    uint32_t port;
    bool served;
    bool closed;                /* enclave gone, connections draining */
    uint8_t *ring;              /* NE_CONSOLE_HISTORY bytes, if served */
    uint64_t written;           /* bytes ever written; the ring has the tail */
    unsigned readers;           /* connections that still read from it */
    QLIST_ENTRY(NEConsoleSource) next;
};

struct NEConsole {
    VsockRelayService svc;
    VsockRelayRouter *router;
    QLIST_HEAD(, NEConsoleSource) sources;
    QLIST_HEAD(, ConsoleConn) conns;
    unsigned nr_conns;
    QEMUBH *bh;                 /* pumps what the budget left over */
};

/* --- sources -------------------------------------------------------------- */

/* Offset of the oldest byte the ring still holds. */
static uint64_t source_oldest(NEConsoleSource *src)
{
    return src->written - MIN(src->written, (uint64_t)NE_CONSOLE_HISTORY);
}

static void source_append(NEConsoleSource *src, const uint8_t *data,
                          size_t len)
{
    if (len > NE_CONSOLE_HISTORY) {
        /* only the tail fits; readers skip the rest as if they were slow */
        src->written += len - NE_CONSOLE_HISTORY;
        data += len - NE_CONSOLE_HISTORY;
        len = NE_CONSOLE_HISTORY;
    }
    while (len) {
        size_t off = src->written % NE_CONSOLE_HISTORY;
        size_t n = MIN(len, NE_CONSOLE_HISTORY - off);

        memcpy(src->ring + off, data, n);
        src->written += n;
        data += n;
        len -= n;
    }
}

static void source_free(NEConsoleSource *src)
{
    QLIST_REMOVE(src, next);
    g_free(src->ring);
    g_free(src);
}

/* Free a closed source once its last connection has been shut down. */
static void source_reap(NEConsoleSource *src)
{
    if (src->closed && !src->readers) {
        source_free(src);
    }
}

/* The source a new connection to @port would read, if any. */
static NEConsoleSource *console_find_source(NEConsole *c, uint32_t port)
{
    NEConsoleSource *src;

    QLIST_FOREACH(src, &c->sources, next) {
        if (src->port == port && src->served && !src->closed) {
            return src;
        }
    }
    return NULL;
}

/* --- output and shutdown -------------------------------------------------- */

static void conn_send(ConsoleConn *conn, uint16_t op, uint32_t flags,
                      const uint8_t *data, uint32_t len)
{
    struct virtio_vsock_hdr hdr = {
        .src_cid = cpu_to_le64(NE_CONSOLE_CID),
        .dst_cid = cpu_to_le64(VSOCK_RELAY_PARENT_CID),
        .src_port = cpu_to_le32(conn->port),
        .dst_port = cpu_to_le32(conn->peer_port),
        .len = cpu_to_le32(len),
        .type = cpu_to_le16(VIRTIO_VSOCK_TYPE_STREAM),
        .op = cpu_to_le16(op),
        .flags = cpu_to_le32(flags),
        .buf_alloc = cpu_to_le32(CONSOLE_BUF_ALLOC),
        .fwd_cnt = cpu_to_le32(conn->fwd_cnt),
    };

    /* every packet carries our credit, so every packet reports it */
    conn->fwd_reported = conn->fwd_cnt;
    conn->tx_cnt += len;
    vsock_relay_router_to_parent(conn->console->router, &hdr, data);
}

/* Payload bytes the peer can still take (Linux clamps at 0 the same way). */
static uint32_t conn_credit(ConsoleConn *conn)
{
    int64_t credit = (int64_t)MIN(conn->peer_buf_alloc, CONSOLE_MAX_CREDIT) -
                     (uint32_t)(conn->tx_cnt - conn->peer_fwd_cnt);

    return MAX(credit, 0);
}

static bool conn_caught_up(ConsoleConn *conn)
{
    return conn->pos >= conn->src->written ||
           (conn->peer_shutdown & VIRTIO_VSOCK_SHUTDOWN_RCV);
}

/*
 * Send pending output as far as the peer's credit and the budget allow.
 * conn_send() only queues in the relay, so nothing here can be freed under
 * us.  True if output the peer has credit for is left for the next pump.
 */
static bool conn_send_output(ConsoleConn *conn)
{
    NEConsoleSource *src = conn->src;
    uint32_t budget = CONSOLE_PUMP_BUDGET;

    /* a reader that fell behind the ring loses the overwritten part */
    conn->pos = MAX(conn->pos, source_oldest(src));
    while (!conn_caught_up(conn)) {
        uint64_t off = conn->pos % NE_CONSOLE_HISTORY;
        uint64_t n = MIN(src->written - conn->pos, NE_CONSOLE_HISTORY - off);

        n = MIN(n, MIN(conn_credit(conn), CONSOLE_MAX_RW));
        if (!n) {
            return false;
        }
        if (!budget) {
            trace_ne_console_budget(conn->port, conn->peer_port);
            return true;
        }
        n = MIN(n, budget);
        conn_send(conn, VIRTIO_VSOCK_OP_RW, 0, src->ring + off, n);
        conn->pos += n;
        budget -= n;
    }
    return false;
}

/* Forget @conn without telling the peer; its source is left to the caller. */
static void conn_free(ConsoleConn *conn, const char *why)
{
    trace_ne_console_close(conn->port, conn->peer_port, why);
    if (conn->src) {
        conn->src->readers--;
    }
    if (conn->linger) {
        timer_free(conn->linger);
    }
    QLIST_REMOVE(conn, next);
    conn->console->nr_conns--;
    g_free(conn);
}

static void conn_linger_expired(void *opaque)
{
    ConsoleConn *conn = opaque;

    conn_send(conn, VIRTIO_VSOCK_OP_RST, 0, NULL, 0);
    conn_free(conn, "no RST after our SHUTDOWN");
}

/*
 * All output delivered after the enclave went away: shut down and stop
 * reading the source, which the caller reaps.  The connection itself stays
 * until the peer's RST, so late packets on it are not answered with RSTs.
 */
static void conn_finish(ConsoleConn *conn)
{
    trace_ne_console_close(conn->port, conn->peer_port, "enclave gone");
    conn_send(conn, VIRTIO_VSOCK_OP_SHUTDOWN, SHUTDOWN_BOTH, NULL, 0);
    conn->src->readers--;
    conn->src = NULL;
    conn->linger = timer_new_ms(QEMU_CLOCK_VIRTUAL, conn_linger_expired,
                                conn);
    timer_mod(conn->linger,
              qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL) + CONSOLE_LINGER_MS);
}

/*
 * Send what the connection may send now, within the budget; never frees
 * anything.  What the budget leaves is sent by the console's bottom half.
 */
static void conn_pump(ConsoleConn *conn)
{
    if (!conn->src) {
        return;
    }
    if (conn_send_output(conn)) {
        qemu_bh_schedule(conn->console->bh);
        return;
    }
    if (conn->src->closed && conn_caught_up(conn)) {
        conn_finish(conn);
    }
}

/* --- connections ---------------------------------------------------------- */

static ConsoleConn *console_find_conn(NEConsole *c, uint32_t port,
                                      uint32_t peer_port)
{
    ConsoleConn *conn;

    QLIST_FOREACH(conn, &c->conns, next) {
        if (conn->port == port && conn->peer_port == peer_port) {
            return conn;
        }
    }
    return NULL;
}

/* Answer a packet that has no connection (and is no RST) with an RST. */
static void console_refuse(NEConsole *c, const struct virtio_vsock_hdr *hdr,
                           const char *why)
{
    struct virtio_vsock_hdr rst;

    trace_ne_console_refuse(le32_to_cpu(hdr->dst_port),
                            le32_to_cpu(hdr->src_port),
                            le16_to_cpu(hdr->op), why);
    vsock_relay_make_rst(&rst, hdr);
    vsock_relay_router_to_parent(c->router, &rst, NULL);
}

static void console_accept(NEConsole *c, const struct virtio_vsock_hdr *hdr)
{
    NEConsoleSource *src = console_find_source(c, le32_to_cpu(hdr->dst_port));
    ConsoleConn *conn;

    if (le16_to_cpu(hdr->type) != VIRTIO_VSOCK_TYPE_STREAM || !src) {
        console_refuse(c, hdr, "no stream listener");
        return;
    }
    if (c->nr_conns >= CONSOLE_MAX_CONNS) {
        console_refuse(c, hdr, "too many connections");
        return;
    }
    conn = g_new0(ConsoleConn, 1);
    conn->console = c;
    conn->src = src;
    conn->port = src->port;
    conn->peer_port = le32_to_cpu(hdr->src_port);
    conn->peer_buf_alloc = le32_to_cpu(hdr->buf_alloc);
    conn->peer_fwd_cnt = le32_to_cpu(hdr->fwd_cnt);
    /* a late client still gets the boot log */
    conn->pos = source_oldest(src);
    src->readers++;
    QLIST_INSERT_HEAD(&c->conns, conn, next);
    c->nr_conns++;
    trace_ne_console_connect(src->cid, conn->peer_port);
    conn_send(conn, VIRTIO_VSOCK_OP_RESPONSE, 0, NULL, 0);
    conn_pump(conn);
}

/*
 * Tell the peer about discarded payload before it could run dry: Linux
 * as a sender only waits for credit, it never asks for it.
 */
static void conn_report_credit(ConsoleConn *conn)
{
    if (conn->fwd_cnt - conn->fwd_reported >= CONSOLE_BUF_ALLOC / 2) {
        conn_send(conn, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
    }
}

/* A packet on a known connection; @conn may be freed. */
static void conn_receive(ConsoleConn *conn, const struct virtio_vsock_hdr *hdr)
{
    conn->peer_buf_alloc = le32_to_cpu(hdr->buf_alloc);
    conn->peer_fwd_cnt = le32_to_cpu(hdr->fwd_cnt);

    switch (le16_to_cpu(hdr->op)) {
    case VIRTIO_VSOCK_OP_RW:
        /* the console is output-only */
        conn->fwd_cnt += le32_to_cpu(hdr->len);
        break;
    case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        conn_send(conn, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
        break;
    case VIRTIO_VSOCK_OP_SHUTDOWN:
        /* shutdown hints are permanent, so they add up */
        conn->peer_shutdown |= le32_to_cpu(hdr->flags) & SHUTDOWN_BOTH;
        if (conn->peer_shutdown == SHUTDOWN_BOTH) {
            conn_send(conn, VIRTIO_VSOCK_OP_RST, 0, NULL, 0);
            conn_free(conn, "peer shut down");
            return;
        }
        break;
    case VIRTIO_VSOCK_OP_RST:
        conn_free(conn, "peer reset");
        return;
    default:
        /* CREDIT_UPDATE only carries credit; Linux ignores other ops too */
        break;
    }
    conn_pump(conn);
    conn_report_credit(conn);
}

/* The router hands us every packet the parent sends to CID 0. */
static void console_receive(VsockRelayService *svc,
                            const struct virtio_vsock_hdr *hdr,
                            const uint8_t *data)
{
    NEConsole *c = container_of(svc, NEConsole, svc);
    uint16_t op = le16_to_cpu(hdr->op);
    ConsoleConn *conn = NULL;
    NEConsoleSource *src = NULL;

    if (le16_to_cpu(hdr->type) == VIRTIO_VSOCK_TYPE_STREAM) {
        conn = console_find_conn(c, le32_to_cpu(hdr->dst_port),
                                 le32_to_cpu(hdr->src_port));
    }
    if (conn) {
        /* whatever happens to @conn, its source may have to be reaped */
        src = conn->src;
    }
    if (op == VIRTIO_VSOCK_OP_REQUEST) {
        if (conn) {
            /*
             * The guest reused the port, so it no longer has the old socket
             * (its device was reset): an RST would hit the new one.
             */
            conn_free(conn, "port reused");
        }
        console_accept(c, hdr);
    } else if (conn) {
        conn_receive(conn, hdr);
    } else if (op != VIRTIO_VSOCK_OP_RST) {
        console_refuse(c, hdr, "no such connection");
    }
    if (src) {
        source_reap(src);
    }
}

/* Output the budget held back, and sources whose last reader finished. */
static void console_bh(void *opaque)
{
    NEConsole *c = opaque;
    NEConsoleSource *src, *next_src;
    ConsoleConn *conn;

    QLIST_FOREACH(conn, &c->conns, next) {
        conn_pump(conn);
    }
    QLIST_FOREACH_SAFE(src, &c->sources, next, next_src) {
        source_reap(src);
    }
}

/* --- API ---------------------------------------------------------------- */

NEConsole *ne_console_new(VsockRelayRouter *router)
{
    NEConsole *c = g_new0(NEConsole, 1);

    /* its output goes to the parent's relay: share that device's guard */
    c->bh = vsock_relay_router_bh_new(router, console_bh, c);
    c->router = router;
    c->svc.cid = NE_CONSOLE_CID;
    c->svc.receive = console_receive;
    QLIST_INIT(&c->sources);
    QLIST_INIT(&c->conns);
    vsock_relay_router_add_service(router, &c->svc);
    return c;
}

void ne_console_free(NEConsole *c)
{
    ConsoleConn *conn, *next_conn;
    NEConsoleSource *src, *next_src;

    QLIST_FOREACH_SAFE(conn, &c->conns, next, next_conn) {
        conn_send(conn, VIRTIO_VSOCK_OP_RST, 0, NULL, 0);
        conn_free(conn, "console freed");
    }
    /* closed sources may still have been draining */
    QLIST_FOREACH_SAFE(src, &c->sources, next, next_src) {
        source_free(src);
    }
    vsock_relay_router_del_service(c->router, &c->svc);
    qemu_bh_delete(c->bh);
    g_free(c);
}

NEConsoleSource *ne_console_source_new(NEConsole *c, uint64_t cid,
                                       bool served)
{
    NEConsoleSource *src = g_new0(NEConsoleSource, 1);

    src->console = c;
    src->cid = cid;
    /* ports are 32-bit: a CID within 10000 of 2^32 wraps around */
    src->port = (uint32_t)(cid + NE_CONSOLE_PORT_BASE);
    src->served = served;
    if (served) {
        /* untouched pages cost nothing until the enclave writes */
        src->ring = g_malloc(NE_CONSOLE_HISTORY);
    }
    QLIST_INSERT_HEAD(&c->sources, src, next);
    return src;
}

void ne_console_source_write(NEConsoleSource *src, const void *data,
                             size_t len)
{
    ConsoleConn *conn;

    if (!src->served || src->closed || !len) {
        return;
    }
    source_append(src, data, len);
    QLIST_FOREACH(conn, &src->console->conns, next) {
        if (conn->src == src) {
            /* from the bottom half: a console write costs O(len) here */
            qemu_bh_schedule(src->console->bh);
            break;
        }
    }
}

void ne_console_source_close(NEConsoleSource *src)
{
    ConsoleConn *conn;

    src->closed = true;
    QLIST_FOREACH(conn, &src->console->conns, next) {
        if (conn->src != src) {
            continue;
        }
        conn_pump(conn);
        if (conn->src && !conn_credit(conn)) {
            /*
             * Still owed data but no credit: ask.  A live peer answers with
             * a CREDIT_UPDATE, a socket that vanished (guest device reset)
             * with an RST, so a dead connection does not keep the source.
             */
            conn_send(conn, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0, NULL, 0);
        }
    }
    source_reap(src);
}
