/*
 * The vsock connection muxer (see muxer.h): the connection table, the
 * stream protocol of virtio 1.2 section 5.10.6 (request/response, shutdown,
 * reset, credit) and the host UNIX sockets behind each connection.
 *
 * Guest -> host data is written to the host socket straight from the
 * guest's buffers; only what the socket will not take now is copied into
 * the connection's buffer, whose size is the buf_alloc we advertise, so a
 * guest that respects its credit never finds it full (one that does not is
 * reset). fwd_cnt counts bytes the host socket has taken.
 * Host -> guest data is read from the host socket straight into a guest
 * receive buffer, never more than the guest's credit allows; while there is
 * no credit or no receive buffer the socket is simply not read.
 *
 * The host sockets and the request timeout live on an event loop of the
 * muxer's own (vmm/evloop.h) that has no thread: it is nested in the
 * virtio-vsock device's loop, whose handler calls vsock_muxer_poll, so the
 * muxer's fds and timer are served by that one I/O thread, under the
 * device's lock like everything else here.
 */
#include "vsock/muxer.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "util/unix_socket.h"
#include "vmm/evloop.h"

/* Host-side ports for connections the host opens start here (guests use low ones). */
#define LOCAL_PORT_FIRST 0x40000000u
#define LOCAL_PORT_LAST 0xfffffffeu
struct vsock_port {
    struct vsock_muxer *mx;
    uint32_t port;
    char *path;
    bool guest_connects;           /* listen mode: the guest initiates, we connect to path */
    struct unix_listener listener; /* connect mode: our socket at path */
};

enum conn_state {
    CONN_FREE = 0,
    CONN_REQUEST_SENT, /* host opened it: waiting for the guest's RESPONSE (or timeout) */
    CONN_ESTABLISHED,
    CONN_CLOSING, /* the guest shut down both ways: flushing to the host, then RST */
};

struct vsock_conn {
    struct vsock_muxer *mx; /* for the loop's handler; set for every slot at create */
    enum conn_state state;
    int fd;
    uint32_t local_port, peer_port;
    uint32_t events;   /* epoll interest now */
    bool in_epoll;     /* the fd has a handler on the muxer's loop */
    bool readable;     /* EPOLLIN seen and no EAGAIN since */
    bool hup;          /* the host side closed; fd left the epoll set */
    bool host_eof;     /* host read side at EOF: SHUTDOWN(SEND) sent to the guest */
    bool host_wr_shut; /* we shut the host socket's write side */
    uint32_t peer_shut;
    bool need_request, need_response, need_credit;
    bool credit_requested;
    /* host -> guest */
    uint32_t tx_cnt, peer_buf_alloc, peer_fwd_cnt;
    /* guest -> host */
    uint32_t rx_cnt, fwd_cnt, adv_fwd_cnt;
    uint8_t *buf; /* VSOCK_CONN_BUF bytes, allocated when the host socket first blocks */
    uint32_t buf_head, buf_len;
    uint64_t request_deadline; /* CONN_REQUEST_SENT: CLOCK_MONOTONIC ns */
};

struct pending_rst {
    uint32_t src_port, dst_port;
};

struct vsock_muxer {
    struct evloop *loop; /* nested in the device's loop: see the top of this file */
    struct vsock_port *ports;
    size_t nports;
    struct vsock_conn conns[VSOCK_MAX_CONNS];
    unsigned nconns;
    unsigned rr; /* where the next receive-buffer round starts */
    uint32_t next_local_port;
    struct pending_rst rst[VSOCK_MAX_PENDING_RST];
    unsigned rst_head, nrst;
    bool guest_ready;
    int timer; /* evloop timer: the earliest request_deadline */
};

/* ---- helpers ---- */

static uint32_t peer_credit(const struct vsock_conn *c)
{
    uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
    return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static struct vsock_port *find_port(struct vsock_muxer *mx, uint32_t port)
{
    for (size_t i = 0; i < mx->nports; i++)
        if (mx->ports[i].port == port)
            return &mx->ports[i];
    return NULL;
}

static struct vsock_conn *find_conn(struct vsock_muxer *mx, uint32_t local, uint32_t peer)
{
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
        struct vsock_conn *c = &mx->conns[i];
        if (c->state != CONN_FREE && c->local_port == local && c->peer_port == peer)
            return c;
    }
    return NULL;
}

static void conn_ready(void *opaque, uint32_t events);

static struct vsock_conn *new_conn(struct vsock_muxer *mx, int fd, uint32_t local, uint32_t peer)
{
    if (mx->nconns >= VSOCK_MAX_CONNS)
        return NULL;
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
        struct vsock_conn *c = &mx->conns[i];
        if (c->state != CONN_FREE)
            continue;
        memset(c, 0, sizeof(*c));
        c->mx = mx;
        if (evloop_add(mx->loop, fd, 0, conn_ready, c) < 0)
            return NULL;
        c->fd = fd;
        c->in_epoll = true;
        c->local_port = local;
        c->peer_port = peer;
        c->state = CONN_ESTABLISHED;
        mx->nconns++;
        return c;
    }
    return NULL;
}

static void free_conn(struct vsock_muxer *mx, struct vsock_conn *c)
{
    if (c->state == CONN_FREE)
        return;
    if (c->in_epoll)
        evloop_del(mx->loop, c->fd);
    close(c->fd);
    free(c->buf);
    memset(c, 0, sizeof(*c));
    c->mx = mx;
    c->fd = -1;
    mx->nconns--;
}

static void queue_rst(struct vsock_muxer *mx, uint32_t src_port, uint32_t dst_port)
{
    if (mx->nrst == VSOCK_MAX_PENDING_RST) {
        log_debug("vsock: reset queue full, dropping RST %u -> %u", src_port, dst_port);
        return;
    }
    unsigned i = (mx->rst_head + mx->nrst) % VSOCK_MAX_PENDING_RST;
    mx->rst[i] = (struct pending_rst){src_port, dst_port};
    mx->nrst++;
}

/* End a connection abruptly: the guest gets RST, the host socket is closed. */
static void reset_conn(struct vsock_muxer *mx, struct vsock_conn *c)
{
    queue_rst(mx, c->local_port, c->peer_port);
    free_conn(mx, c);
}

static void update_interest(struct vsock_muxer *mx, struct vsock_conn *c)
{
    if (c->state == CONN_FREE || !c->in_epoll)
        return;
    uint32_t ev = 0;
    if (c->state == CONN_ESTABLISHED && mx->guest_ready && !c->readable && !c->host_eof &&
        !(c->peer_shut & VSOCK_SHUTDOWN_RCV))
        ev |= EPOLLIN;
    if (c->buf_len)
        ev |= EPOLLOUT;
    if (ev == c->events)
        return;
    if (evloop_mod(mx->loop, c->fd, ev) == 0)
        c->events = ev;
}

/* The guest's view of our free buffer got low and we have freed some: tell it. */
static void note_forwarded(struct vsock_conn *c, uint32_t n)
{
    c->fwd_cnt += n;
    uint32_t guest_sees_free = VSOCK_CONN_BUF - (c->rx_cnt - c->adv_fwd_cnt);
    if (c->fwd_cnt != c->adv_fwd_cnt && guest_sees_free < VSOCK_CONN_BUF / 2)
        c->need_credit = true;
}

/* Both directions are finished (or the guest closed and our buffer is empty): RST ends it. */
static void maybe_finish(struct vsock_muxer *mx, struct vsock_conn *c)
{
    if (c->buf_len)
        return;
    if ((c->peer_shut & VSOCK_SHUTDOWN_SEND) && !c->host_wr_shut) {
        shutdown(c->fd, SHUT_WR);
        c->host_wr_shut = true;
    }
    bool guest_done = c->state == CONN_CLOSING;
    bool both_done = (c->peer_shut & VSOCK_SHUTDOWN_SEND) && c->host_eof;
    if (guest_done || both_done)
        reset_conn(mx, c);
}

/* Write what the host socket takes now from the connection's buffer. */
static int flush_buf(struct vsock_conn *c)
{
    while (c->buf_len) {
        struct iovec v[2];
        uint32_t first = VSOCK_CONN_BUF - c->buf_head;
        if (first > c->buf_len)
            first = c->buf_len;
        v[0] = (struct iovec){c->buf + c->buf_head, first};
        v[1] = (struct iovec){c->buf, c->buf_len - first};
        struct msghdr msg = {.msg_iov = v, .msg_iovlen = v[1].iov_len ? 2 : 1};
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -errno;
        }
        c->buf_head = (uint32_t)((c->buf_head + (uint32_t)n) % VSOCK_CONN_BUF);
        c->buf_len -= (uint32_t)n;
        note_forwarded(c, (uint32_t)n);
    }
    c->buf_head = 0;
    return 0;
}

/* Guest data for the host: in place when the socket takes it, else into our buffer. */
static int write_guest_data(struct vsock_conn *c, const struct iovec *iov, unsigned niov,
                            uint32_t len)
{
    uint32_t sent = 0;
    if (c->buf_len == 0 && len) {
        struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = niov};
        ssize_t n;
        do {
            n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        if (n < 0 && errno != EAGAIN)
            return -errno;
        if (n > 0) {
            sent = (uint32_t)n;
            note_forwarded(c, sent);
        }
    }
    uint32_t rest = len - sent;
    if (!rest)
        return 0;
    if (rest > VSOCK_CONN_BUF - c->buf_len)
        return -ENOBUFS; /* more than the credit we gave */
    if (!c->buf && !(c->buf = malloc(VSOCK_CONN_BUF)))
        return -ENOMEM;
    uint64_t skip = sent;
    for (unsigned i = 0; i < niov && rest; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        p += skip;
        l -= skip;
        skip = 0;
        if (l > rest)
            l = rest;
        for (size_t done = 0; done < l;) {
            uint32_t tail = (c->buf_head + c->buf_len) % VSOCK_CONN_BUF;
            size_t chunk = VSOCK_CONN_BUF - tail;
            if (chunk > l - done)
                chunk = l - done;
            memcpy(c->buf + tail, p + done, chunk);
            c->buf_len += (uint32_t)chunk;
            done += chunk;
        }
        rest -= (uint32_t)l;
    }
    return 0;
}

/* ---- guest -> host packets ---- */

static void guest_request(struct vsock_muxer *mx, const struct vsock_hdr *h)
{
    uint32_t port = le32toh(h->dst_port), peer = le32toh(h->src_port);
    struct vsock_port *p = find_port(mx, port);
    if (!p || !p->guest_connects) {
        log_debug("vsock: guest connects to port %u, which is not a listen-mode port", port);
        queue_rst(mx, port, peer);
        return;
    }
    if (mx->nconns >= VSOCK_MAX_CONNS) {
        log_warn("vsock port %u: %u connections open, refusing another", port, mx->nconns);
        queue_rst(mx, port, peer);
        return;
    }
    int fd = unix_connect(p->path, SOCK_STREAM | SOCK_NONBLOCK, NULL);
    if (fd < 0) {
        log_info("--device virtio-vsock socketURL=%s: cannot connect for guest port %u: %s",
                 p->path, peer, strerror(-fd));
        queue_rst(mx, port, peer);
        return;
    }
    struct vsock_conn *c = new_conn(mx, fd, port, peer);
    if (!c) {
        close(fd);
        queue_rst(mx, port, peer);
        return;
    }
    c->peer_buf_alloc = le32toh(h->buf_alloc);
    c->peer_fwd_cnt = le32toh(h->fwd_cnt);
    c->need_response = true;
    update_interest(mx, c);
    log_debug("vsock port %u: guest port %u connected to %s", port, peer, p->path);
}

static void guest_shutdown(struct vsock_muxer *mx, struct vsock_conn *c, uint32_t flags)
{
    c->peer_shut |= flags & (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
    if (c->peer_shut == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND))
        c->state = CONN_CLOSING;
    if (c->peer_shut & VSOCK_SHUTDOWN_RCV)
        c->readable = false; /* nothing more goes to the guest */
    maybe_finish(mx, c);
}

void vsock_muxer_recv(struct vsock_muxer *mx, const struct vsock_hdr *h,
                      const struct iovec *payload, unsigned niov)
{
    uint16_t op = le16toh(h->op);
    uint32_t local = le32toh(h->dst_port), peer = le32toh(h->src_port);
    struct vsock_conn *c = find_conn(mx, local, peer);

    if (le16toh(h->type) != VSOCK_TYPE_STREAM) {
        if (op != VSOCK_OP_RST) {
            if (c)
                reset_conn(mx, c);
            else
                queue_rst(mx, local, peer);
        }
        return;
    }
    if (!c) {
        if (op == VSOCK_OP_REQUEST)
            guest_request(mx, h);
        else if (op != VSOCK_OP_RST)
            queue_rst(mx, local, peer);
        return;
    }
    if (op == VSOCK_OP_RST) {
        log_debug("vsock: guest reset connection %u <-> %u", local, peer);
        free_conn(mx, c);
        return;
    }
    /* Every packet carries the guest's receive credit (5.10.6.3). */
    c->peer_buf_alloc = le32toh(h->buf_alloc);
    c->peer_fwd_cnt = le32toh(h->fwd_cnt);
    c->credit_requested = false;

    uint32_t len = le32toh(h->len);
    int rc;
    switch (op) {
    case VSOCK_OP_RESPONSE:
        if (c->state != CONN_REQUEST_SENT) {
            reset_conn(mx, c);
            return;
        }
        c->state = CONN_ESTABLISHED;
        log_debug("vsock: guest port %u accepted host connection %u", peer, local);
        break;
    case VSOCK_OP_RW:
        if (c->state != CONN_ESTABLISHED || (c->peer_shut & VSOCK_SHUTDOWN_SEND)) {
            reset_conn(mx, c);
            return;
        }
        c->rx_cnt += len;
        rc = write_guest_data(c, payload, niov, len);
        if (rc) {
            log_debug("vsock: connection %u <-> %u: host write: %s", local, peer, strerror(-rc));
            reset_conn(mx, c);
            return;
        }
        break;
    case VSOCK_OP_SHUTDOWN:
        if (c->state == CONN_REQUEST_SENT) {
            reset_conn(mx, c);
            return;
        }
        guest_shutdown(mx, c, le32toh(h->flags));
        if (c->state == CONN_FREE)
            return;
        break;
    case VSOCK_OP_CREDIT_UPDATE:
        break;
    case VSOCK_OP_CREDIT_REQUEST:
        c->need_credit = true;
        break;
    default: /* REQUEST on a live connection, unknown ops */
        reset_conn(mx, c);
        return;
    }
    update_interest(mx, c);
}

void vsock_muxer_reject(struct vsock_muxer *mx, const struct vsock_hdr *h)
{
    if (le16toh(h->op) == VSOCK_OP_RST)
        return;
    uint32_t local = le32toh(h->dst_port), peer = le32toh(h->src_port);
    struct vsock_conn *c = find_conn(mx, local, peer);
    if (c)
        reset_conn(mx, c);
    else
        queue_rst(mx, local, peer);
}

/* ---- host sockets ---- */

static uint32_t alloc_local_port(struct vsock_muxer *mx, uint32_t peer)
{
    for (;;) {
        uint32_t p = mx->next_local_port++;
        if (mx->next_local_port > LOCAL_PORT_LAST)
            mx->next_local_port = LOCAL_PORT_FIRST;
        if (!find_port(mx, p) && !find_conn(mx, p, peer))
            return p;
    }
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* Arm the timer for the earliest host connection still waiting for the guest (or disarm it). */
static void arm_request_timer(struct vsock_muxer *mx)
{
    uint64_t first = 0;
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
        const struct vsock_conn *c = &mx->conns[i];
        if (c->state == CONN_REQUEST_SENT && (!first || c->request_deadline < first))
            first = c->request_deadline;
    }
    uint64_t now = now_ns();
    evloop_timer_set(mx->loop, mx->timer,
                     !first        ? EVLOOP_TIMER_OFF
                     : first > now ? first - now
                                   : 0,
                     0);
}

/* The guest left host connections unanswered: reset them (the host sees its socket close). */
static void expire_requests(void *opaque)
{
    struct vsock_muxer *mx = opaque;
    uint64_t now = now_ns();
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
        struct vsock_conn *c = &mx->conns[i];
        if (c->state == CONN_REQUEST_SENT && c->request_deadline <= now) {
            log_info("vsock port %u: the guest did not answer a host connection within %u ms; "
                     "closed",
                     c->peer_port, VSOCK_REQUEST_TIMEOUT_MS);
            reset_conn(mx, c);
        }
    }
    arm_request_timer(mx);
}

static void accept_host(struct vsock_muxer *mx, struct vsock_port *p)
{
    for (;;) {
        int fd = accept4(p->listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR)
                log_warn("--device virtio-vsock socketURL=%s: accept: %s", p->path,
                         strerror(errno));
            return;
        }
        if (!mx->guest_ready) {
            log_debug("vsock port %u: host connection refused: the guest driver is not ready",
                      p->port);
            close(fd);
            continue;
        }
        struct vsock_conn *c = NULL;
        if (mx->nconns < VSOCK_MAX_CONNS)
            c = new_conn(mx, fd, alloc_local_port(mx, p->port), p->port);
        if (!c) {
            log_warn("vsock port %u: %u connections open, refusing another", p->port, mx->nconns);
            close(fd);
            continue;
        }
        c->state = CONN_REQUEST_SENT;
        c->need_request = true;
        c->request_deadline = now_ns() + VSOCK_REQUEST_TIMEOUT_MS * 1000000ull;
        arm_request_timer(mx);
    }
}

static void conn_event(struct vsock_muxer *mx, struct vsock_conn *c, uint32_t ev)
{
    if (c->state == CONN_FREE)
        return;
    if (ev & EPOLLERR) {
        reset_conn(mx, c);
        return;
    }
    if (ev & EPOLLOUT) {
        if (flush_buf(c) < 0) {
            reset_conn(mx, c);
            return;
        }
        maybe_finish(mx, c);
        if (c->state == CONN_FREE)
            return;
    }
    if (ev & EPOLLIN)
        c->readable = true;
    if (ev & EPOLLHUP) {
        /* The host closed: what it sent is still readable; it reads nothing more. */
        evloop_del(mx->loop, c->fd);
        c->in_epoll = false;
        c->hup = true;
        if (c->state == CONN_REQUEST_SENT || c->buf_len) {
            reset_conn(mx, c);
            return;
        }
        c->readable = !c->host_eof;
    }
    update_interest(mx, c);
}

static void conn_ready(void *opaque, uint32_t events)
{
    struct vsock_conn *c = opaque;
    conn_event(c->mx, c, events);
}

static void listener_ready(void *opaque, uint32_t events)
{
    struct vsock_port *p = opaque;
    (void)events;
    accept_host(p->mx, p);
}

void vsock_muxer_poll(struct vsock_muxer *mx)
{
    int rc = evloop_dispatch(mx->loop);
    if (rc < 0)
        log_debug("vsock: its event loop: %s", strerror(-rc));
}

/* ---- host -> guest packets ---- */

static bool data_ready(const struct vsock_conn *c)
{
    return c->state == CONN_ESTABLISHED && c->readable && !c->host_eof &&
           !(c->peer_shut & VSOCK_SHUTDOWN_RCV);
}

static bool conn_has_work(const struct vsock_conn *c)
{
    if (c->state == CONN_FREE)
        return false;
    if (c->need_request || c->need_response || c->need_credit)
        return true;
    if (data_ready(c))
        return peer_credit(c) > 0 || !c->credit_requested;
    return false;
}

bool vsock_muxer_has_rx(struct vsock_muxer *mx)
{
    if (!mx->guest_ready)
        return false;
    if (mx->nrst)
        return true;
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
        if (conn_has_work(&mx->conns[i]))
            return true;
    return false;
}

static size_t iov_put(const struct iovec *iov, unsigned niov, const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t done = 0;
    for (unsigned i = 0; i < niov && done < len; i++) {
        size_t l = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;
        memcpy(iov[i].iov_base, p + done, l);
        done += l;
    }
    return done;
}

static size_t put_hdr(const struct iovec *iov, unsigned niov, uint32_t src_port, uint32_t dst_port,
                      uint16_t op, uint32_t flags, uint32_t len, const struct vsock_conn *c)
{
    struct vsock_hdr h = {
        .src_cid = htole64(VSOCK_HOST_CID),
        .dst_cid = htole64(VSOCK_GUEST_CID),
        .src_port = htole32(src_port),
        .dst_port = htole32(dst_port),
        .len = htole32(len),
        .type = htole16(VSOCK_TYPE_STREAM),
        .op = htole16(op),
        .flags = htole32(flags),
        .buf_alloc = htole32(c ? VSOCK_CONN_BUF : 0),
        .fwd_cnt = htole32(c ? c->fwd_cnt : 0),
    };
    iov_put(iov, niov, &h, sizeof(h));
    return sizeof(h) + len;
}

static size_t conn_packet(struct vsock_conn *c, const struct iovec *iov, unsigned niov, uint16_t op,
                          uint32_t flags, uint32_t len)
{
    c->adv_fwd_cnt = c->fwd_cnt;
    c->need_credit = false;
    return put_hdr(iov, niov, c->local_port, c->peer_port, op, flags, len, c);
}

/* Read host data into the payload part of the buffer. 0: nothing produced. */
static size_t conn_data(struct vsock_muxer *mx, struct vsock_conn *c, const struct iovec *iov,
                        unsigned niov, size_t cap)
{
    uint32_t credit = peer_credit(c);
    if (!credit) {
        /* Out of credit: ask once; the guest's next packet says how much it freed. */
        c->credit_requested = true;
        return conn_packet(c, iov, niov, VSOCK_OP_CREDIT_REQUEST, 0, 0);
    }
    size_t want = cap - VSOCK_HDR_LEN;
    if (want > VSOCK_MAX_PKT)
        want = VSOCK_MAX_PKT;
    if (want > credit)
        want = credit;
    struct iovec piov[64];
    unsigned pn = 0;
    size_t skip = VSOCK_HDR_LEN, got = 0;
    for (unsigned i = 0; i < niov && pn < 64 && got < want; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        size_t take = l - skip < want - got ? l - skip : want - got;
        piov[pn++] = (struct iovec){(uint8_t *)iov[i].iov_base + skip, take};
        got += take;
        skip = 0;
    }
    ssize_t n;
    do {
        n = readv(c->fd, piov, (int)pn);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        c->tx_cnt += (uint32_t)n;
        return conn_packet(c, iov, niov, VSOCK_OP_RW, 0, (uint32_t)n);
    }
    if (n < 0 && errno == EAGAIN) {
        c->readable = false;
        update_interest(mx, c);
        return 0;
    }
    if (n == 0) {
        c->host_eof = true;
        c->readable = false;
        size_t r = conn_packet(c, iov, niov, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND, 0);
        maybe_finish(mx, c);
        return r;
    }
    log_debug("vsock: connection %u <-> %u: host read: %s", c->local_port, c->peer_port,
              strerror(errno));
    reset_conn(mx, c);
    return 0;
}

static size_t conn_fill(struct vsock_muxer *mx, struct vsock_conn *c, const struct iovec *iov,
                        unsigned niov, size_t cap)
{
    if (c->need_request) {
        c->need_request = false;
        return conn_packet(c, iov, niov, VSOCK_OP_REQUEST, 0, 0);
    }
    if (c->need_response) {
        c->need_response = false;
        return conn_packet(c, iov, niov, VSOCK_OP_RESPONSE, 0, 0);
    }
    if (data_ready(c) && (peer_credit(c) > 0 || !c->credit_requested)) {
        size_t r = conn_data(mx, c, iov, niov, cap);
        if (r)
            return r;
        if (c->state == CONN_FREE)
            return 0;
    }
    if (c->need_credit)
        return conn_packet(c, iov, niov, VSOCK_OP_CREDIT_UPDATE, 0, 0);
    return 0;
}

size_t vsock_muxer_fill_rx(struct vsock_muxer *mx, const struct iovec *iov, unsigned niov,
                           size_t cap)
{
    if (cap < VSOCK_HDR_LEN || !mx->guest_ready)
        return 0;
    for (;;) {
        if (mx->nrst) {
            struct pending_rst r = mx->rst[mx->rst_head];
            mx->rst_head = (mx->rst_head + 1) % VSOCK_MAX_PENDING_RST;
            mx->nrst--;
            return put_hdr(iov, niov, r.src_port, r.dst_port, VSOCK_OP_RST, 0, 0, NULL);
        }
        bool progress = false;
        for (unsigned k = 0; k < VSOCK_MAX_CONNS; k++) {
            unsigned i = (mx->rr + k) % VSOCK_MAX_CONNS;
            struct vsock_conn *c = &mx->conns[i];
            if (!conn_has_work(c))
                continue;
            size_t r = conn_fill(mx, c, iov, niov, cap);
            if (r) {
                mx->rr = (i + 1) % VSOCK_MAX_CONNS;
                return r;
            }
            progress = true; /* EAGAIN or a reset: state changed, look again */
            break;
        }
        if (!progress)
            return 0;
    }
}

/* ---- lifecycle ---- */

void vsock_muxer_set_guest_ready(struct vsock_muxer *mx, bool ready)
{
    mx->guest_ready = ready;
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
        update_interest(mx, &mx->conns[i]);
}

void vsock_muxer_reset(struct vsock_muxer *mx)
{
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
        free_conn(mx, &mx->conns[i]);
    mx->nrst = 0;
    mx->rst_head = 0;
}

int vsock_muxer_fd(const struct vsock_muxer *mx)
{
    return evloop_fd(mx->loop);
}

unsigned vsock_muxer_nconns(const struct vsock_muxer *mx)
{
    return mx->nconns;
}

/* connect mode: create and listen on the UNIX socket (util/unix_socket.h). */
static int bind_listener(struct vsock_port *p)
{
    int rc = unix_listen(p->path, 64, &p->listener);
    if (rc)
        log_error("--device virtio-vsock socketURL=%s: %s", p->path, unix_listen_problem(rc));
    return rc;
}

void vsock_muxer_destroy(struct vsock_muxer *mx)
{
    if (!mx)
        return;
    if (mx->loop)
        vsock_muxer_reset(mx);
    for (size_t i = 0; i < mx->nports; i++) {
        struct vsock_port *p = &mx->ports[i];
        if (p->listener.fd >= 0 && mx->loop)
            evloop_del(mx->loop, p->listener.fd);
        unix_listener_close(&p->listener);
        free(p->path);
    }
    free(mx->ports);
    evloop_destroy(mx->loop); /* its timer with it */
    free(mx);
}

int vsock_muxer_create(const struct dev_vsock *const *devs, size_t n, struct vsock_muxer **out)
{
    struct vsock_muxer *mx = calloc(1, sizeof(*mx));
    if (!mx)
        return -ENOMEM;
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
        mx->conns[i].fd = -1;
        mx->conns[i].mx = mx;
    }
    mx->next_local_port = LOCAL_PORT_FIRST;
    mx->ports = calloc(n ? n : 1, sizeof(*mx->ports));
    int rc = mx->ports ? evloop_create(&mx->loop) : -ENOMEM;
    if (rc)
        goto fail;
    /* Made here, before any confinement: the timer's timerfd comes with the first timer. */
    mx->timer = evloop_timer_add(mx->loop, EVLOOP_TIMER_OFF, 0, expire_requests, mx);
    if (mx->timer < 0) {
        rc = mx->timer;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const struct dev_vsock *d = devs[i];
        if (find_port(mx, d->port)) {
            log_error("--device virtio-vsock port=%u: the port is given twice", d->port);
            rc = -EINVAL;
            goto fail;
        }
        struct vsock_port *p = &mx->ports[mx->nports++];
        p->mx = mx;
        p->port = d->port;
        p->guest_connects = d->listen;
        p->listener.fd = -1;
        if (!(p->path = strdup(d->socket_url ? d->socket_url : ""))) {
            rc = -ENOMEM;
            goto fail;
        }
        if (p->guest_connects) {
            struct sockaddr_un sa;
            if (unix_addr(p->path, &sa) == -ENAMETOOLONG) {
                log_error("--device virtio-vsock socketURL=%s: path too long for a UNIX socket",
                          p->path);
                rc = -ENAMETOOLONG;
                goto fail;
            }
            continue;
        }
        rc = bind_listener(p);
        if (rc)
            goto fail;
        rc = evloop_add(mx->loop, p->listener.fd, EPOLLIN, listener_ready, p);
        if (rc)
            goto fail;
        log_info("vsock port %u: host connections on %s go to the guest", p->port, p->path);
    }
    *out = mx;
    return 0;
fail:
    vsock_muxer_destroy(mx);
    return rc;
}
