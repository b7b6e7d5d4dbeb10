/*
 * The unixstream framing (passt, socket_vmnet, QEMU's -netdev stream): a
 * byte stream where each Ethernet frame is preceded by its length as a
 * 4-byte big-endian integer.
 *
 * A stream may split anywhere, the prefix included, so both directions keep
 * their place across calls. A length of 0 or above NET_FRAME_MAX from the
 * peer cannot be resynchronised: it is a protocol error that ends the
 * connection (logged), never a crash or an allocation of that size.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "net/net_backend.h"
#include "util/unix_socket.h"

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static ssize_t send_iov(int fd, struct iovec *iov, unsigned n)
{
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = n};
    ssize_t w;
    do {
        /* MSG_NOSIGNAL: a peer that went away is EPIPE here, not a SIGPIPE. */
        w = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    return w < 0 ? -errno : w;
}

static int send_failed(struct net_backend *be, int err)
{
    if (err == -EAGAIN || err == -EWOULDBLOCK)
        return -EAGAIN;
    return net_backend_dead(be, "send", -err);
}

/* Send what is left of a frame the socket took only part of. */
int net_backend_flush(struct net_backend *be)
{
    if (be->dead)
        return -EPIPE;
    while (be->tx_tail_off < be->tx_tail_len) {
        struct iovec v = {be->tx_tail + be->tx_tail_off, be->tx_tail_len - be->tx_tail_off};
        ssize_t w = send_iov(be->fd, &v, 1);
        if (w < 0)
            return send_failed(be, (int)w);
        be->tx_tail_off += (size_t)w;
    }
    be->tx_tail_off = be->tx_tail_len = 0;
    return 0;
}

int net_stream_send(struct net_backend *be, const struct iovec *iov, unsigned n, size_t len)
{
    if (be->dead)
        return -EPIPE;
    if (len == 0 || len > NET_FRAME_MAX || n > NET_IOV_MAX)
        return -EMSGSIZE;
    int rc = net_backend_flush(be);
    if (rc)
        return rc;
    uint8_t prefix[NET_STREAM_PREFIX];
    put_be32(prefix, (uint32_t)len);
    struct iovec v[NET_IOV_MAX + 1];
    v[0] = (struct iovec){prefix, sizeof(prefix)};
    unsigned cnt = 1 + net_iov_slice(iov, n, 0, len, v + 1, NET_IOV_MAX);
    ssize_t w = send_iov(be->fd, v, cnt);
    if (w < 0)
        return send_failed(be, (int)w);
    size_t total = sizeof(prefix) + len;
    if ((size_t)w >= total)
        return 0;
    /*
     * The socket took part of the frame: keep a copy of the rest, so the
     * guest's buffers can be completed now and the stream stays framed.
     */
    if (!be->tx_tail) {
        be->tx_tail = malloc(NET_STREAM_PREFIX + NET_FRAME_MAX);
        if (!be->tx_tail)
            return net_backend_dead(be, "no memory for a partly sent frame", ENOMEM);
    }
    size_t done = 0;
    for (unsigned i = 0; i < cnt; i++) {
        const uint8_t *p = v[i].iov_base;
        size_t l = v[i].iov_len;
        if ((size_t)w >= l) {
            w -= (ssize_t)l;
            continue;
        }
        memcpy(be->tx_tail + done, p + w, l - (size_t)w);
        done += l - (size_t)w;
        w = 0;
    }
    be->tx_tail_len = done;
    be->tx_tail_off = 0;
    rc = net_backend_flush(be);
    return rc == -EAGAIN ? 0 : rc;
}

static ssize_t recv_iov(int fd, struct iovec *iov, unsigned n)
{
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = n};
    ssize_t r;
    do {
        r = recvmsg(fd, &msg, MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

static int recv_failed(struct net_backend *be, ssize_t r)
{
    if (r == 0)
        return net_backend_dead(be, "the peer closed the connection", 0);
    if (r == -EAGAIN || r == -EWOULDBLOCK)
        return -EAGAIN;
    return net_backend_dead(be, "receive", (int)-r);
}

/* Read the rest of the current frame into iov (NULL: into a scratch buffer). */
static int read_frame(struct net_backend *be, const struct iovec *iov, unsigned n)
{
    uint8_t scratch[4096];
    while (be->rx_got < be->rx_len) {
        struct iovec v[NET_IOV_MAX];
        unsigned cnt;
        size_t want = be->rx_len - be->rx_got;
        if (iov) {
            cnt = net_iov_slice(iov, n, be->rx_got, want, v, NET_IOV_MAX);
            if (cnt == 0)
                return net_backend_dead(be, "receive buffer smaller than the frame", EINVAL);
        } else {
            v[0] = (struct iovec){scratch, want < sizeof(scratch) ? want : sizeof(scratch)};
            cnt = 1;
        }
        ssize_t r = recv_iov(be->fd, v, cnt);
        if (r <= 0)
            return recv_failed(be, r);
        be->rx_got += (uint32_t)r;
    }
    be->rx_len = be->rx_got = 0;
    be->rx_dropping = false;
    return 0;
}

ssize_t net_stream_next_len(struct net_backend *be)
{
    if (be->dead)
        return -EPIPE;
    if (be->rx_len && be->rx_dropping) {
        int rc = read_frame(be, NULL, 0);
        if (rc)
            return rc;
    }
    if (be->rx_len)
        return be->rx_len;
    while (be->rx_prefix_got < NET_STREAM_PREFIX) {
        struct iovec v = {be->rx_prefix + be->rx_prefix_got, NET_STREAM_PREFIX - be->rx_prefix_got};
        ssize_t r = recv_iov(be->fd, &v, 1);
        if (r <= 0)
            return recv_failed(be, r);
        be->rx_prefix_got += (unsigned)r;
    }
    be->rx_prefix_got = 0;
    uint32_t len = get_be32(be->rx_prefix);
    if (len == 0 || len > NET_FRAME_MAX) {
        log_error("virtio-net %s: protocol error: the peer announced a frame of %u bytes "
                  "(1..%u allowed)",
                  be->what, len, NET_FRAME_MAX);
        /* The stream cannot be resynchronised: tell the peer too. */
        shutdown(be->fd, SHUT_RDWR);
        return net_backend_dead(be, "disconnected after a protocol error", 0);
    }
    be->rx_len = len;
    be->rx_got = 0;
    be->rx_dropping = false;
    return len;
}

int net_stream_recv(struct net_backend *be, const struct iovec *iov, unsigned n)
{
    if (be->dead)
        return -EPIPE;
    if (!be->rx_len || be->rx_dropping)
        return -EINVAL; /* next_len first */
    return read_frame(be, iov, n);
}

int net_stream_drop(struct net_backend *be)
{
    if (!be->rx_len)
        return 0;
    /* Marked first: if the rest is not there yet, next_len skips it later. */
    be->rx_dropping = true;
    return read_frame(be, NULL, 0);
}

int net_stream_connect_path(const struct dev_net *cfg, struct net_backend *be)
{
    /* Blocking connect (a peer's full backlog waits), non-blocking I/O after. */
    int fd = unix_connect(cfg->path, SOCK_STREAM, NULL);
    if (fd < 0) {
        log_error("--device virtio-net %s: %s", be->what,
                  fd == -ENAMETOOLONG ? "socket path too long" : strerror(-fd));
        return fd;
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    be->fd = fd;
    return 0;
}
