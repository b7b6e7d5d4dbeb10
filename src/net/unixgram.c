/*
 * The unixgram framing (gvproxy, vmnet-helper, vfkit's file-handle
 * attachment): one Ethernet frame per datagram on a connected AF_UNIX
 * SOCK_DGRAM socket.
 *
 * With path= we bind a socket of our own first, so the peer has an address
 * to answer to: next to the peer's socket as vfkit does
 * (krunkit-<pid>-<random>.sock), or, when that directory is not usable or
 * the name would be too long, in a private directory under $TMPDIR or /tmp.
 * It is removed when the device goes away and when connecting fails.
 * With vfkitMagic the 4 bytes "VFKT" are the first datagram sent after
 * connecting (gvproxy in vfkit mode waits for them); buffer sizes follow
 * vfkit's too (1 MiB send, 4 MiB receive).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "net/net_backend.h"
#include "util/unix_socket.h"

#define DGRAM_SNDBUF (1 << 20)
#define DGRAM_RCVBUF (4 << 20)
/* Empty or oversized datagrams skipped per call, so one call stays short. */
#define DGRAM_SKIP_MAX 64

int net_dgram_send(struct net_backend *be, const struct iovec *iov, unsigned n, size_t len)
{
    if (be->dead)
        return -EPIPE;
    if (len == 0 || len > NET_FRAME_MAX || n > NET_IOV_MAX)
        return -EMSGSIZE;
    struct iovec v[NET_IOV_MAX];
    struct msghdr msg = {.msg_iov = v, .msg_iovlen = net_iov_slice(iov, n, 0, len, v, NET_IOV_MAX)};
    ssize_t w;
    do {
        w = sendmsg(be->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    if (w >= 0)
        return 0; /* a datagram goes whole or not at all */
    switch (errno) {
    case EAGAIN:
        return -EAGAIN;
    case EMSGSIZE:
    case ENOBUFS:
        return -EMSGSIZE;
    default:
        return net_backend_dead(be, "send", errno);
    }
}

ssize_t net_dgram_next_len(struct net_backend *be)
{
    if (be->dead)
        return -EPIPE;
    if (be->dgram_len)
        return be->dgram_len;
    for (unsigned skipped = 0; skipped < DGRAM_SKIP_MAX; skipped++) {
        uint8_t byte;
        /* MSG_TRUNC with MSG_PEEK: the datagram's real length, nothing consumed. */
        ssize_t r = recv(be->fd, &byte, 1, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return -EAGAIN;
            return net_backend_dead(be, "receive", errno);
        }
        if (r > 0 && r <= (ssize_t)NET_FRAME_MAX) {
            be->dgram_len = (uint32_t)r;
            return r;
        }
        log_debug("virtio-net %s: %s datagram (%zd bytes) dropped", be->what,
                  r ? "oversized" : "empty", r);
        if (recv(be->fd, &byte, 1, MSG_DONTWAIT) < 0 && errno != EINTR && errno != EAGAIN)
            return net_backend_dead(be, "receive", errno);
    }
    return -EAGAIN; /* more to skip: the socket stays readable */
}

int net_dgram_recv(struct net_backend *be, const struct iovec *iov, unsigned n)
{
    if (be->dead)
        return -EPIPE;
    if (!be->dgram_len)
        return -EINVAL; /* next_len first */
    struct iovec v[NET_IOV_MAX];
    struct msghdr msg = {.msg_iov = v,
                         .msg_iovlen = net_iov_slice(iov, n, 0, be->dgram_len, v, NET_IOV_MAX)};
    ssize_t r;
    do {
        r = recvmsg(be->fd, &msg, MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno == EAGAIN)
            return -EAGAIN;
        return net_backend_dead(be, "receive", errno);
    }
    be->dgram_len = 0;
    /* The peeked datagram is the one read: the socket has one reader, us. */
    if ((msg.msg_flags & MSG_TRUNC) || r == 0)
        return -EAGAIN;
    return 0;
}

static int send_magic(struct net_backend *be)
{
    ssize_t w;
    do {
        w = send(be->fd, NET_VFKIT_MAGIC, 4, MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    if (w == 4)
        return 0;
    int err = w < 0 ? errno : EIO;
    log_error("--device virtio-net %s: cannot send the vfkit magic: %s", be->what, strerror(err));
    return -err;
}

/* Bind fd to a fresh name in dir; 0, -ENAMETOOLONG or -errno of bind. */
static int bind_in(int fd, const char *dir, char **path_out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    for (int attempt = 0; attempt < 8; attempt++) {
        uint32_t rnd = 0;
        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) < 0)
            rnd = (uint32_t)rand();
        int len = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/krunkit-%x-%x.sock", dir,
                           (unsigned)getpid(), rnd);
        if (len < 0 || (size_t)len >= sizeof(sa.sun_path))
            return -ENAMETOOLONG;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            *path_out = strdup(sa.sun_path);
            if (!*path_out) {
                unlink(sa.sun_path);
                return -ENOMEM;
            }
            return 0;
        }
        if (errno != EADDRINUSE)
            return -errno;
    }
    return -EADDRINUSE;
}

static int bind_local(struct net_backend *be, int fd, const char *peer)
{
    char *dir = strdup(peer);
    if (!dir)
        return -ENOMEM;
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    int rc = bind_in(fd, dir, &be->local_path);
    free(dir);
    if (rc == 0)
        return 0;
    /* The peer's directory is not ours to write, or too deep: a private one. */
    const char *tmp = getenv("TMPDIR");
    char tmpl[PATH_MAX];
    if (!tmp || !*tmp)
        tmp = "/tmp";
    if (snprintf(tmpl, sizeof(tmpl), "%s/krunkit-net-XXXXXX", tmp) >= (int)sizeof(tmpl) ||
        !mkdtemp(tmpl))
        return rc;
    be->local_dir = strdup(tmpl);
    if (!be->local_dir) {
        rmdir(tmpl);
        return -ENOMEM;
    }
    return bind_in(fd, tmpl, &be->local_path);
}

int net_dgram_connect_path(const struct dev_net *cfg, struct net_backend *be)
{
    struct sockaddr_un sa;
    if (unix_addr(cfg->path, &sa) < 0) {
        log_error("--device virtio-net %s: socket path too long", be->what);
        return -ENAMETOOLONG;
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int err = errno;
        log_error("--device virtio-net %s: socket: %s", be->what, strerror(err));
        return -err;
    }
    be->fd = fd; /* from here net_backend_close undoes everything */
    int rc = bind_local(be, fd, cfg->path);
    if (rc) {
        log_error("--device virtio-net %s: cannot bind a local socket: %s", be->what,
                  strerror(-rc));
        return rc;
    }
    rc = unix_connect_fd(fd, cfg->path);
    if (rc) {
        log_error("--device virtio-net %s: %s", be->what, strerror(-rc));
        return rc;
    }
    int sz = DGRAM_SNDBUF;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    sz = DGRAM_RCVBUF;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    if (cfg->vfkit_magic) {
        rc = send_magic(be);
        if (rc)
            return rc;
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        return -errno;
    log_debug("virtio-net %s: bound to %s", be->what, be->local_path);
    return 0;
}

int net_dgram_send_magic(struct net_backend *be)
{
    return send_magic(be);
}
