/*
 * Opening and closing a network backend (net_backend.h), and the calls the
 * device makes, dispatched on the framing: from the command line's
 * path=/unixSocketPath= (we connect) or fd= (an inherited socket, whose
 * own type, SOCK_STREAM or SOCK_DGRAM, decides the framing).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "net/net_backend.h"

unsigned net_iov_slice(const struct iovec *iov, unsigned n, size_t skip, size_t len,
                       struct iovec *out, unsigned max)
{
    unsigned cnt = 0;
    for (unsigned i = 0; i < n && len && cnt < max; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        size_t take = l - skip;
        if (take > len)
            take = len;
        out[cnt++] = (struct iovec){(uint8_t *)iov[i].iov_base + skip, take};
        len -= take;
        skip = 0;
    }
    return cnt;
}

int net_backend_dead(struct net_backend *be, const char *why, int err)
{
    if (!be->dead) {
        if (err)
            log_error("virtio-net %s: %s: %s; the guest's traffic is dropped from now on", be->what,
                      why, strerror(err));
        else
            log_error("virtio-net %s: %s; the guest's traffic is dropped from now on", be->what,
                      why);
    }
    be->dead = true;
    return -EPIPE;
}

int net_backend_send(struct net_backend *be, const struct iovec *iov, unsigned n, size_t len)
{
    return be->framing == NET_FRAMING_STREAM ? net_stream_send(be, iov, n, len)
                                             : net_dgram_send(be, iov, n, len);
}

ssize_t net_backend_next_len(struct net_backend *be)
{
    return be->framing == NET_FRAMING_STREAM ? net_stream_next_len(be) : net_dgram_next_len(be);
}

int net_backend_recv(struct net_backend *be, const struct iovec *iov, unsigned n)
{
    return be->framing == NET_FRAMING_STREAM ? net_stream_recv(be, iov, n)
                                             : net_dgram_recv(be, iov, n);
}

int net_backend_drop(struct net_backend *be)
{
    if (be->dead)
        return -EPIPE;
    if (be->framing == NET_FRAMING_DGRAM) {
        uint8_t byte;
        be->dgram_len = 0;
        if (recv(be->fd, &byte, 1, MSG_DONTWAIT) < 0 && errno != EAGAIN && errno != EINTR)
            return net_backend_dead(be, "receive", errno);
        return 0;
    }
    return net_stream_drop(be);
}

void net_backend_abort_recv(struct net_backend *be)
{
    if (be->framing == NET_FRAMING_STREAM && be->rx_len)
        be->rx_dropping = true;
    be->dgram_len = 0;
}

static struct net_backend *backend_new(void)
{
    struct net_backend *be = calloc(1, sizeof(*be));
    if (be)
        be->fd = -1;
    return be;
}

int net_backend_from_socket(int fd, enum net_framing framing, const char *what,
                            struct net_backend **out)
{
    struct net_backend *be = backend_new();
    if (!be)
        return -ENOMEM;
    be->framing = framing;
    be->fd = fd;
    snprintf(be->what, sizeof(be->what), "%s", what);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        int err = -errno;
        be->fd = -1;
        free(be);
        return err;
    }
    *out = be;
    return 0;
}

static int open_inherited(const struct dev_net *cfg, struct net_backend **out)
{
    char what[32];
    snprintf(what, sizeof(what), "fd=%d", cfg->fd);
    int type;
    socklen_t len = sizeof(type);
    if (getsockopt(cfg->fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
        int err = errno;
        log_error("--device virtio-net %s: %s", what,
                  err == ENOTSOCK ? "not a socket" : strerror(err));
        return -err;
    }
    enum net_framing framing;
    if (type == SOCK_STREAM) {
        framing = NET_FRAMING_STREAM;
    } else if (type == SOCK_DGRAM || type == SOCK_SEQPACKET) {
        framing = NET_FRAMING_DGRAM;
    } else {
        log_error("--device virtio-net %s: socket type %d is neither stream nor datagram", what,
                  type);
        return -EPROTOTYPE;
    }
    if ((framing == NET_FRAMING_STREAM) != (cfg->type == NET_UNIXSTREAM))
        log_warn("--device virtio-net %s: the socket is a %s socket: using %s framing", what,
                 framing == NET_FRAMING_STREAM ? "stream" : "datagram",
                 framing == NET_FRAMING_STREAM ? "unixstream" : "unixgram");
    /*
     * Our own descriptor for the socket, kept for the life of the process:
     * the inherited number is never closed or reused by us, so whatever
     * happens to it (a library, a later open) cannot redirect our frames.
     */
    int fd = fcntl(cfg->fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) {
        int err = errno;
        log_error("--device virtio-net %s: cannot duplicate it: %s", what, strerror(err));
        return -err;
    }
    int rc = net_backend_from_socket(fd, framing, what, out);
    if (rc) {
        close(fd);
        log_error("--device virtio-net %s: %s", what, strerror(-rc));
        return rc;
    }
    if (cfg->vfkit_magic && framing == NET_FRAMING_DGRAM) {
        rc = net_dgram_send_magic(*out);
        if (rc) {
            net_backend_close(*out);
            *out = NULL;
            return rc;
        }
    }
    return 0;
}

int net_backend_open(const struct dev_net *cfg, struct net_backend **out)
{
    *out = NULL;
    if (cfg->type == NET_NAT) {
        log_error("--device virtio-net nat: not available on Linux (use a unixgram or "
                  "unixstream peer such as gvproxy or passt)");
        return -ENOTSUP;
    }
    if (cfg->fd >= 0)
        return open_inherited(cfg, out);
    if (!cfg->path)
        return -EINVAL;
    struct net_backend *be = backend_new();
    if (!be)
        return -ENOMEM;
    snprintf(be->what, sizeof(be->what), "%s=%s",
             cfg->unix_socket_path_form ? "unixSocketPath" : "path", cfg->path);
    int rc;
    if (cfg->type == NET_UNIXSTREAM) {
        be->framing = NET_FRAMING_STREAM;
        rc = net_stream_connect_path(cfg, be);
    } else {
        be->framing = NET_FRAMING_DGRAM;
        rc = net_dgram_connect_path(cfg, be);
    }
    if (rc) {
        net_backend_close(be);
        return rc;
    }
    *out = be;
    return 0;
}

void net_backend_close(struct net_backend *be)
{
    if (!be)
        return;
    if (be->fd >= 0)
        close(be->fd);
    if (be->local_path)
        unlink(be->local_path);
    if (be->local_dir)
        rmdir(be->local_dir);
    free(be->local_path);
    free(be->local_dir);
    free(be->tx_tail);
    free(be);
}
