/*
 * Network backends behind virtio-net: a UNIX socket to a user-space network
 * (gvproxy, vmnet-helper, passt, socket_vmnet) carrying whole Ethernet
 * frames, without virtio-net headers.
 *
 *   unixgram    one frame per datagram; optionally the 4-byte "VFKT" magic
 *               as the first datagram (gvproxy in vfkit mode).
 *   unixstream  each frame preceded by its length, 4 bytes big-endian
 *               (passt's and socket_vmnet's framing).
 *
 * The device moves frames straight between guest buffers and the socket
 * (iovecs onto guest memory): it asks for the next frame's length, finds
 * guest buffers for it, then receives into them. Frames the peer has not
 * sent completely stay in the socket; nothing is queued on the host side.
 * Everything here runs on the device's I/O thread; no locking.
 */
#ifndef KRUNKIT_NET_NET_BACKEND_H
#define KRUNKIT_NET_NET_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/config.h"

/* Largest frame either way: a 64 KiB IP packet plus Ethernet and VLAN headers. */
#define NET_FRAME_MAX 65550u
/* vfkit's greeting to gvproxy (first datagram after connecting). */
#define NET_VFKIT_MAGIC "VFKT"
#define NET_STREAM_PREFIX 4u
/* Most iovecs a frame may come in (sendmsg's limit, less one for a stream's prefix). */
#define NET_IOV_MAX 1023u

enum net_framing { NET_FRAMING_DGRAM, NET_FRAMING_STREAM };

struct net_backend {
    enum net_framing framing;
    int fd; /* non-blocking, close-on-exec; -1 once closed */
    /* For messages: "path=/x/y.sock" or "fd=3", as the user wrote it. */
    char what[128];
    /* unixgram with path=: our bound socket, removed on close (NULL otherwise). */
    char *local_path;
    char *local_dir; /* private directory holding local_path, removed too */
    bool dead;       /* disconnected or protocol error: no more traffic */
    /* The guest's MAC when none was given: picked once, kept across reboots. */
    uint8_t guest_mac[6];
    bool guest_mac_set;

    /* Receive side of a stream: the prefix being read, then the frame. */
    uint8_t rx_prefix[NET_STREAM_PREFIX];
    unsigned rx_prefix_got;
    uint32_t rx_len;  /* length of the frame whose prefix was read (0: none) */
    uint32_t rx_got;  /* bytes of that frame received so far */
    bool rx_dropping; /* the frame goes to the bit bucket, not to a caller */
    /* Receive side of datagrams: the length peeked for the next one. */
    uint32_t dgram_len;

    /*
     * Transmit side of a stream: the tail of a frame the socket took only
     * part of. It is sent before anything else, so the stream stays framed,
     * and the guest's buffers are not held while the socket is full.
     */
    uint8_t *tx_tail;
    size_t tx_tail_len, tx_tail_off;
};

/*
 * Connect per the config (path= / unixSocketPath= or an inherited fd=).
 * On failure logs "--device virtio-net path=X: reason", leaves nothing
 * behind (no socket file) and returns -errno.
 */
int net_backend_open(const struct dev_net *cfg, struct net_backend **out);
/* Closes the socket and removes the local socket file, if any. NULL is fine. */
void net_backend_close(struct net_backend *be);
/* The socket to poll (EPOLLIN: a frame may be readable; EPOLLOUT: send may go on). */
static inline int net_backend_fd(const struct net_backend *be)
{
    return be->fd;
}

/*
 * Send one frame of `len` bytes (1..NET_FRAME_MAX) gathered from iov[0..n).
 * 0: the frame is on its way (the caller may reuse the buffers);
 * -EAGAIN: the socket is full and took nothing of it: retry when writable;
 * -EMSGSIZE: the frame was refused and dropped;
 * -EPIPE: the peer is gone (logged once; the backend is dead from now on).
 */
int net_backend_send(struct net_backend *be, const struct iovec *iov, unsigned n, size_t len);

/*
 * A frame the socket took only part of is still being sent: watch for
 * EPOLLOUT and call net_backend_flush, even if no other frame follows.
 */
static inline bool net_backend_tx_pending(const struct net_backend *be)
{
    return !be->dead && be->tx_tail_off < be->tx_tail_len;
}
/* Send what is pending: 0 all gone, -EAGAIN still pending, -EPIPE dead. */
int net_backend_flush(struct net_backend *be);

/*
 * Length of the next frame (1..NET_FRAME_MAX); reading its length prefix
 * (stream) or peeking at it (datagram) as far as needed. -EAGAIN: none
 * yet; -EPIPE: peer gone or protocol error (logged; the backend is dead).
 * Empty and oversized datagrams are dropped here.
 */
ssize_t net_backend_next_len(struct net_backend *be);
/*
 * Receive the frame next_len announced into iov[0..n), which holds at least
 * that many bytes. 0: the whole frame is there; -EAGAIN: part of it (a
 * stream) or nothing came yet: call again with the same iov when readable;
 * -EPIPE: peer gone (dead).
 */
int net_backend_recv(struct net_backend *be, const struct iovec *iov, unsigned n);
/* Drop the frame next_len announced (no buffer for it). Results as recv. */
int net_backend_drop(struct net_backend *be);
/*
 * The frame being received was abandoned part-way (device reset): the rest
 * of it is dropped when it arrives, so the next frame starts clean.
 */
void net_backend_abort_recv(struct net_backend *be);

/* Framings, for tests: a backend over a connected socket we already own. */
int net_backend_from_socket(int fd, enum net_framing framing, const char *what,
                            struct net_backend **out);

/* Internal to src/net: the framing implementations. */
int net_stream_send(struct net_backend *be, const struct iovec *iov, unsigned n, size_t len);
ssize_t net_stream_next_len(struct net_backend *be);
int net_stream_recv(struct net_backend *be, const struct iovec *iov, unsigned n);
int net_stream_drop(struct net_backend *be);
int net_dgram_send(struct net_backend *be, const struct iovec *iov, unsigned n, size_t len);
ssize_t net_dgram_next_len(struct net_backend *be);
int net_dgram_recv(struct net_backend *be, const struct iovec *iov, unsigned n);
int net_dgram_connect_path(const struct dev_net *cfg, struct net_backend *be);
int net_stream_connect_path(const struct dev_net *cfg, struct net_backend *be);
int net_dgram_send_magic(struct net_backend *be);
int net_backend_dead(struct net_backend *be, const char *why, int err);
/*
 * out[] = the bytes [skip, skip + len) of iov[0..n), at most max entries;
 * returns the number of entries (the range is cut short when it runs out).
 */
unsigned net_iov_slice(const struct iovec *iov, unsigned n, size_t skip, size_t len,
                       struct iovec *out, unsigned max);

#endif
