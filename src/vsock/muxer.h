/*
 * The vsock connection muxer: guest vsock stream connections <-> host UNIX
 * stream sockets (virtio 1.2, section 5.10.6 for the packet protocol).
 *
 * Each configured port is one `--device virtio-vsock,port=N,socketURL=P`:
 *   listen (default)  the guest connects to host port N; for each such
 *                     connection the muxer connects to the UNIX socket P
 *                     (where e.g. podman listens).
 *   connect           the muxer listens on P (it creates the socket and
 *                     removes it on destroy); for each host connection it
 *                     opens a connection to the guest's port N.
 * (docs/vsock.md gives the sources for these meanings.)
 *
 * The virtio device (virtio/vsock.c) owns the queues: it hands every
 * well-formed guest packet to vsock_muxer_recv and asks vsock_muxer_fill_rx
 * to fill receive buffers. Flow control (5.10.6.3) is honest both ways: we
 * never send the guest more bytes than its credit allows, and the buffer we
 * advertise (buf_alloc) is a real per-connection buffer that bounds what we
 * hold when the host socket would block.
 *
 * Not thread-safe: the device calls everything under its lock, and the
 * host side runs on the device's I/O thread only. The muxer's sockets and
 * its request timeout sit on an event loop of its own without a thread
 * (vmm/evloop.h, nested loops): the device's loop watches vsock_muxer_fd
 * and its handler calls vsock_muxer_poll, which dispatches them.
 */
#ifndef KRUNKIT_VSOCK_MUXER_H
#define KRUNKIT_VSOCK_MUXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/config.h"

#define VSOCK_HOST_CID 2
#define VSOCK_GUEST_CID 3

/* Packet header (5.10.6), little-endian on the wire. */
struct vsock_hdr {
    uint64_t src_cid;
    uint64_t dst_cid;
    uint32_t src_port;
    uint32_t dst_port;
    uint32_t len;
    uint16_t type;
    uint16_t op;
    uint32_t flags;
    uint32_t buf_alloc;
    uint32_t fwd_cnt;
} __attribute__((packed));

#define VSOCK_HDR_LEN 44
#define VSOCK_TYPE_STREAM 1

enum vsock_op {
    VSOCK_OP_INVALID = 0,
    VSOCK_OP_REQUEST = 1,
    VSOCK_OP_RESPONSE = 2,
    VSOCK_OP_RST = 3,
    VSOCK_OP_SHUTDOWN = 4,
    VSOCK_OP_RW = 5,
    VSOCK_OP_CREDIT_UPDATE = 6,
    VSOCK_OP_CREDIT_REQUEST = 7,
};

#define VSOCK_SHUTDOWN_RCV 1
#define VSOCK_SHUTDOWN_SEND 2

/* Connections open at once; beyond it new ones are refused (RST / closed). */
#define VSOCK_MAX_CONNS 64
/* Our receive buffer per connection (buf_alloc we advertise). */
#define VSOCK_CONN_BUF (128u * 1024)
/* Largest payload we put in one receive buffer. */
#define VSOCK_MAX_PKT 65536u
/* RSTs for packets that match no connection, waiting for receive buffers. */
#define VSOCK_MAX_PENDING_RST 64
/* A host connection the guest has not answered (RESPONSE or RST) by then is reset. */
#define VSOCK_REQUEST_TIMEOUT_MS 2000

struct vsock_muxer;

/*
 * One muxer for the `n` virtio-vsock devices in `devs` (ports are unique;
 * a duplicate is refused naming the port). In connect mode the UNIX socket
 * is created here: a failure is logged naming the option and value, and
 * nothing is left behind.
 */
int vsock_muxer_create(const struct dev_vsock *const *devs, size_t n, struct vsock_muxer **out);
/* Closes every connection and socket, removes the sockets it created. */
void vsock_muxer_destroy(struct vsock_muxer *mx);
/* The fd the device's loop watches for EPOLLIN (the muxer's loop, evloop_fd). */
int vsock_muxer_fd(const struct vsock_muxer *mx);

/*
 * The guest is (or is no longer) able to take packets: while not, host
 * connections to listening sockets are refused and host data stays unread.
 */
void vsock_muxer_set_guest_ready(struct vsock_muxer *mx, bool ready);
/* Device reset: every connection is closed (listening sockets stay). */
void vsock_muxer_reset(struct vsock_muxer *mx);

/*
 * One packet from the guest's transmit queue. The device has checked that
 * the header was complete and that `len` bytes of payload are in `payload`
 * (device-readable guest buffers, used in place).
 */
void vsock_muxer_recv(struct vsock_muxer *mx, const struct vsock_hdr *hdr,
                      const struct iovec *payload, unsigned niov);
/* Answer a packet the device rejected (bad cid, bad length) with RST. */
void vsock_muxer_reject(struct vsock_muxer *mx, const struct vsock_hdr *hdr);

/*
 * Serve the host sockets that are ready (accept, read EOF, write) and the
 * request timeout: one batch of the muxer's loop, on the calling thread,
 * which must always be the same one (the device's I/O thread).
 */
void vsock_muxer_poll(struct vsock_muxer *mx);

/* true when a packet is waiting for a receive buffer. */
bool vsock_muxer_has_rx(struct vsock_muxer *mx);
/*
 * Fill one receive buffer (device-writable `iov`, `cap` bytes in all) with
 * the next packet: header, then payload read from the host socket straight
 * into the guest's buffer. Returns the bytes written (header included), or
 * 0 when there was nothing to send.
 */
size_t vsock_muxer_fill_rx(struct vsock_muxer *mx, const struct iovec *iov, unsigned niov,
                           size_t cap);

/* For tests: connections open now. */
unsigned vsock_muxer_nconns(const struct vsock_muxer *mx);

#endif
