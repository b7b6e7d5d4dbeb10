/*
 * virtio-net (virtio 1.2, section 5.1) on a UNIX socket backend
 * (net/net_backend.h): one receive/transmit queue pair, no control queue.
 *
 * Features: VERSION_1 (so the 12-byte header with num_buffers, 5.1.6),
 * MAC (the configured address, or a random locally administered one),
 * STATUS (link up; down once the backend is gone), MRG_RXBUF (5.1.6.3.2).
 * No checksum or segmentation offload is offered: the guest hands over
 * whole, checksummed frames and gets the same, which every peer accepts.
 * `offloading=on` is accepted and changes nothing (docs/net.md).
 *
 * Frames go straight between guest buffers and the socket: transmit
 * sends the chain's buffers past the header as one iovec list; receive
 * learns the next frame's length from the backend, takes as many receive
 * chains as the frame needs (one without MRG_RXBUF) and reads into them.
 * When the guest has posted too few buffers the frame stays in the socket,
 * the socket leaves the event loop, and the next receive-queue kick resumes.
 * A frame the peer sends in pieces keeps its chains until it is complete.
 *
 * A hostile guest gets its bad chains back unused and nothing else: a
 * transmit chain shorter than the header, with no frame after it, or a
 * frame above NET_FRAME_MAX is completed without sending; a receive chain
 * that cannot hold the header is completed empty; a frame no posted
 * buffers can hold (or that would need more than NET_IOV_MAX pieces) is
 * dropped. A malformed ring stops the queue (DEVICE_NEEDS_RESET).
 * A backend that disconnects is logged once; transmits are then dropped
 * (completed, so the guest goes on) and the link is reported down.
 */
#include <errno.h>
#include <linux/virtio_net.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>

#include "core/log.h"
#include "net/net_backend.h"
#include "virtio/devices.h"
#include "virtio/virtio.h"

/* struct virtio_net_hdr (5.1.6) as VERSION_1 lays it out: num_buffers always there. */
#define NET_HDR_LEN sizeof(struct virtio_net_hdr_mrg_rxbuf)
#define NET_HDR_GSO_NONE VIRTIO_NET_HDR_GSO_NONE

/* Configuration space (5.1.4): mac, status, max_virtqueue_pairs. */
#define CFG_MAC offsetof(struct virtio_net_config, mac)
#define CFG_STATUS offsetof(struct virtio_net_config, status)
#define CFG_MAX_PAIRS offsetof(struct virtio_net_config, max_virtqueue_pairs)
#define CFG_LEN (CFG_MAX_PAIRS + 2)

#define NET_QUEUE_SIZE 256
#define RXQ 0
#define TXQ 1
/* Frames received per wakeup, so transmit and kicks get their turn. */
#define RX_BUDGET 256

struct virtio_net {
    struct virtio_dev vdev;
    struct net_backend *be;
    uint8_t mac[6];
    uint16_t status;
    uint32_t watching;  /* events the socket is registered for (0: not in the loop) */
    bool rx_no_buffers; /* the next frame waits for a receive-queue kick */
    bool tx_blocked;    /* the socket is full: wait for EPOLLOUT */
    /* The receive chains held for the frame being read (rx_len bytes). */
    struct virtq_elem *rx_held[VIRTQ_MAX_SIZE];
    unsigned rx_nheld;
    uint32_t rx_len;
    struct iovec rx_iov[NET_IOV_MAX];
    unsigned rx_niov;
    /* Counters for the debug log when the device goes away. */
    uint64_t rx_frames, tx_frames, rx_kicks, tx_kicks, tx_passes, tx_full, socket_wakeups;
};

static struct virtio_net *to_net(struct virtio_dev *dev)
{
    return (struct virtio_net *)dev;
}

static void socket_ready(struct virtio_dev *dev, int fd, uint32_t events);

/* Register the socket for exactly `events` (an fd in epoll always reports HUP/ERR). */
static void set_watch(struct virtio_net *n, uint32_t events)
{
    if (!n->be || events == n->watching)
        return;
    int fd = net_backend_fd(n->be);
    int rc = 0;
    if (!events)
        rc = virtio_dev_del_fd(&n->vdev, fd);
    else if (!n->watching)
        rc = virtio_dev_add_fd(&n->vdev, fd, events, socket_ready);
    else
        rc = evloop_mod(n->vdev.loop, fd, events);
    if (rc && events) {
        log_warn("virtio-net %s: cannot watch the socket: %s", n->be->what, strerror(-rc));
        return;
    }
    n->watching = events;
}

static void update_watch(struct virtio_net *n)
{
    struct virtio_dev *dev = &n->vdev;
    uint32_t ev = 0;
    if (n->be && !n->be->dead && virtio_running(dev)) {
        if (dev->queues[RXQ].enabled && virtq_ready(virtio_vq(dev, RXQ)) && !n->rx_no_buffers)
            ev |= EPOLLIN;
        if (n->tx_blocked || net_backend_tx_pending(n->be))
            ev |= EPOLLOUT;
    }
    set_watch(n, ev);
}

static void link_down(struct virtio_net *n)
{
    if (!(n->status & VIRTIO_NET_S_LINK_UP))
        return;
    n->status &= (uint16_t)~VIRTIO_NET_S_LINK_UP;
    if (virtio_has_feature(&n->vdev, VIRTIO_NET_F_STATUS) && virtio_running(&n->vdev))
        virtio_notify_config(&n->vdev);
}

/* ---- receive ---- */

/* Give back the chains held for a frame, as if never popped. */
static void rx_unhold(struct virtio_net *n, bool unpop)
{
    struct virtq *vq = virtio_vq(&n->vdev, RXQ);
    for (unsigned i = 0; i < n->rx_nheld; i++) {
        if (unpop)
            virtq_unpop(vq);
        free(n->rx_held[i]);
    }
    n->rx_nheld = 0;
    n->rx_niov = 0;
    n->rx_len = 0;
}

enum gather { GATHER_OK, GATHER_WAIT, GATHER_DROP, GATHER_BROKEN };

/*
 * Take receive chains until they hold the header and `len` bytes. With
 * MRG_RXBUF the frame may span chains (the header in the first one only).
 */
static enum gather rx_gather(struct virtio_net *n, uint32_t len, bool *pushed)
{
    struct virtio_dev *dev = &n->vdev;
    struct virtq *vq = virtio_vq(dev, RXQ);
    bool mergeable = virtio_has_feature(dev, VIRTIO_NET_F_MRG_RXBUF);
    uint64_t have = 0; /* frame bytes the held chains take */

    while (n->rx_nheld == 0 || have < len) {
        if (n->rx_nheld == vq->size) {
            rx_unhold(n, true); /* the whole ring cannot hold it */
            return GATHER_DROP;
        }
        struct virtq_elem *e;
        int rc = virtq_pop(vq, &e);
        if (rc < 0) {
            rx_unhold(n, false);
            return GATHER_BROKEN;
        }
        if (rc == 0) {
            /*
             * Ask for a kick when more buffers come, unless some came
             * meanwhile; asked while the held chains still count as
             * taken, so only new ones answer.
             */
            if (virtq_enable_notify(vq))
                continue;
            rx_unhold(n, true);
            return GATHER_WAIT;
        }
        bool first = n->rx_nheld == 0;
        if (first && e->in_len < NET_HDR_LEN) {
            /* No room for the header: give it back empty (the guest counts an error). */
            virtq_push(vq, e->head, 0);
            free(e);
            *pushed = true;
            continue;
        }
        if (!mergeable && e->in_len < NET_HDR_LEN + (uint64_t)len) {
            virtq_unpop(vq); /* kept for a smaller frame */
            free(e);
            return GATHER_DROP;
        }
        n->rx_held[n->rx_nheld++] = e;
        uint64_t skip = first ? NET_HDR_LEN : 0;
        uint64_t take = e->in_len - skip;
        if (take > len - have)
            take = len - have;
        unsigned cnt = net_iov_slice(e->iov + e->nr_out, e->nr_in, skip, take,
                                     n->rx_iov + n->rx_niov, NET_IOV_MAX - n->rx_niov);
        uint64_t got = 0;
        for (unsigned i = 0; i < cnt; i++)
            got += n->rx_iov[n->rx_niov + i].iov_len;
        if (got < take) {
            rx_unhold(n, true); /* scattered over too many pieces */
            return GATHER_DROP;
        }
        n->rx_niov += cnt;
        have += take;
    }
    n->rx_len = len;
    return GATHER_OK;
}

/* The frame is in the held chains: header, used entries, one per chain. */
static void rx_complete(struct virtio_net *n)
{
    struct virtq *vq = virtio_vq(&n->vdev, RXQ);
    uint8_t hdr[NET_HDR_LEN] = {0};
    hdr[1] = NET_HDR_GSO_NONE;
    uint16_t nbuf = (uint16_t)n->rx_nheld;
    memcpy(hdr + 10, &nbuf, 2);
    virtq_elem_write(n->rx_held[0], 0, hdr, sizeof(hdr));
    uint64_t left = NET_HDR_LEN + (uint64_t)n->rx_len;
    for (unsigned i = 0; i < n->rx_nheld; i++) {
        struct virtq_elem *e = n->rx_held[i];
        uint64_t l = e->in_len < left ? e->in_len : left;
        virtq_push(vq, e->head, (uint32_t)l);
        left -= l;
        free(e);
    }
    n->rx_nheld = 0;
    n->rx_niov = 0;
    n->rx_len = 0;
}

static void rx_process(struct virtio_net *n)
{
    struct virtio_dev *dev = &n->vdev;
    struct virtq *vq = virtio_vq(dev, RXQ);
    bool pushed = false;
    if (!virtio_running(dev) || !dev->queues[RXQ].enabled || !virtq_ready(vq) || n->be->dead)
        goto out;
    for (unsigned budget = 0; budget < RX_BUDGET; budget++) {
        if (!n->rx_nheld) {
            ssize_t len = net_backend_next_len(n->be);
            if (len < 0)
                break; /* -EAGAIN: nothing yet; -EPIPE: dead, logged */
            enum gather g = rx_gather(n, (uint32_t)len, &pushed);
            if (g == GATHER_WAIT) {
                log_trace("virtio-net: %zd-byte frame waits for receive buffers (%llu received)",
                          len, (unsigned long long)n->rx_frames);
                n->rx_no_buffers = true;
                break;
            }
            if (g == GATHER_BROKEN)
                break;
            if (g == GATHER_DROP) {
                log_debug("virtio-net %s: no receive buffers for a %zd-byte frame: dropped",
                          n->be->what, len);
                if (net_backend_drop(n->be))
                    break;
                continue;
            }
        }
        int rc = net_backend_recv(n->be, n->rx_iov, n->rx_niov);
        if (rc == -EAGAIN) {
            log_trace("virtio-net: frame %llu partly received, %u chains held",
                      (unsigned long long)n->rx_frames, n->rx_nheld);
            break; /* the rest of the frame is on its way: keep the chains */
        }
        if (rc) {
            rx_unhold(n, true);
            break;
        }
        rx_complete(n);
        n->rx_frames++;
        pushed = true;
    }
out:
    if (pushed)
        virtio_queue_flush(dev, RXQ);
}

/* ---- transmit ---- */

/* Send one chain's frame; -EAGAIN when the socket is full, else 0 (sent or dropped). */
static int tx_one(struct virtio_net *n, const struct virtq_elem *e)
{
    if (n->be->dead)
        return 0;
    if (e->out_len <= NET_HDR_LEN || e->out_len - NET_HDR_LEN > NET_FRAME_MAX) {
        log_debug("virtio-net %s: transmit chain of %llu bytes dropped", n->be->what,
                  (unsigned long long)e->out_len);
        return 0;
    }
    size_t len = (size_t)(e->out_len - NET_HDR_LEN);
    struct iovec v[NET_IOV_MAX];
    unsigned cnt = net_iov_slice(e->iov, e->nr_out, NET_HDR_LEN, len, v, NET_IOV_MAX);
    size_t got = 0;
    for (unsigned i = 0; i < cnt; i++)
        got += v[i].iov_len;
    if (got < len) {
        log_debug("virtio-net %s: transmit chain in too many pieces dropped", n->be->what);
        return 0;
    }
    int rc = net_backend_send(n->be, v, cnt, len);
    return rc == -EAGAIN ? -EAGAIN : 0;
}

static enum virtio_chain tx_chain(struct virtio_dev *dev, struct virtq *vq, struct virtq_elem *e,
                                  void *opaque)
{
    struct virtio_net *n = opaque;
    (void)dev;
    if (tx_one(n, e) == -EAGAIN) {
        virtq_unpop(vq);
        free(e);
        n->tx_blocked = true;
        n->tx_full++;
        log_trace("virtio-net: socket full after %llu frames sent",
                  (unsigned long long)n->tx_frames);
        return VIRTIO_CHAIN_STOP;
    }
    n->tx_frames++;
    virtq_push(vq, e->head, 0);
    free(e);
    return VIRTIO_CHAIN_DONE;
}

static void tx_process(struct virtio_net *n)
{
    struct virtio_dev *dev = &n->vdev;
    struct virtq *vq = virtio_vq(dev, TXQ);
    if (!virtio_running(dev) || !dev->queues[TXQ].enabled || !virtq_ready(vq))
        return;
    if (n->tx_blocked && !n->be->dead)
        return; /* the socket's EPOLLOUT resumes */
    n->tx_blocked = false;
    n->tx_passes++;
    /* One used-index update and at most one interrupt for the whole pass. */
    virtio_queue_drain(dev, TXQ, tx_chain, n);
}

/* ---- events ---- */

static void after_io(struct virtio_net *n)
{
    if (n->be->dead) {
        if (n->rx_nheld)
            rx_unhold(n, true);
        n->tx_blocked = false;
        link_down(n);
    }
    update_watch(n);
}

static void socket_ready(struct virtio_dev *dev, int fd, uint32_t events)
{
    struct virtio_net *n = to_net(dev);
    (void)fd;
    n->socket_wakeups++;
    if (n->tx_blocked && (events & EPOLLOUT))
        log_trace("virtio-net: socket writable again");
    if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && net_backend_tx_pending(n->be))
        net_backend_flush(n->be);
    if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && n->tx_blocked) {
        n->tx_blocked = false;
        tx_process(n);
    }
    if (n->watching & EPOLLIN)
        rx_process(n);
    else if (events & (EPOLLHUP | EPOLLERR))
        /* Not reading, so nothing else would notice; and epoll would report it forever. */
        net_backend_dead(n->be, "the peer hung up", 0);
    after_io(n);
}

static void net_queue_notify(struct virtio_dev *dev, unsigned q)
{
    struct virtio_net *n = to_net(dev);
    if (q == TXQ) {
        n->tx_kicks++;
        tx_process(n);
    } else if (q == RXQ) {
        n->rx_kicks++;
        if (n->rx_no_buffers)
            log_trace("virtio-net: receive buffers posted");
        n->rx_no_buffers = false; /* new buffers: the waiting frame may fit */
        rx_process(n);
    }
    after_io(n);
}

static void net_activate(struct virtio_dev *dev)
{
    struct virtio_net *n = to_net(dev);
    n->rx_no_buffers = false;
    n->tx_blocked = false;
    update_watch(n);
}

static int net_reset(struct virtio_dev *dev)
{
    struct virtio_net *n = to_net(dev);
    if (n->rx_nheld) {
        /* The rings are going away; the rest of that frame is skipped when it comes. */
        rx_unhold(n, false);
        if (n->be)
            net_backend_abort_recv(n->be);
    }
    n->rx_no_buffers = false;
    n->tx_blocked = false;
    set_watch(n, 0);
    return 0;
}

static void net_config_read(struct virtio_dev *dev, unsigned off, void *data, unsigned len)
{
    struct virtio_net *n = to_net(dev);
    uint8_t cfg[CFG_LEN] = {0};
    uint16_t pairs = 1;
    memcpy(cfg + CFG_MAC, n->mac, 6);
    memcpy(cfg + CFG_STATUS, &n->status, 2);
    memcpy(cfg + CFG_MAX_PAIRS, &pairs, 2);
    if (off + len <= sizeof(cfg))
        memcpy(data, cfg + off, len);
}

static void net_config_write(struct virtio_dev *dev, unsigned off, const void *data, unsigned len)
{
    /* Without VIRTIO_NET_F_CTRL_MAC_ADDR the MAC is read-only (5.1.4.2). */
    (void)dev, (void)off, (void)data, (void)len;
}

static void net_destroy(struct virtio_dev *dev)
{
    struct virtio_net *n = to_net(dev);
    log_debug("virtio-net %s: %llu frames sent (%llu kicks, %llu passes, socket full %llu times), "
              "%llu received (%llu kicks), %llu socket wakeups",
              n->be ? n->be->what : "-", (unsigned long long)n->tx_frames,
              (unsigned long long)n->tx_kicks, (unsigned long long)n->tx_passes,
              (unsigned long long)n->tx_full, (unsigned long long)n->rx_frames,
              (unsigned long long)n->rx_kicks, (unsigned long long)n->socket_wakeups);
    for (unsigned i = 0; i < n->rx_nheld; i++)
        free(n->rx_held[i]);
    /* The backend is the VM's (opened once, kept across reboots). */
    free(n);
}

static uint64_t net_features(struct virtio_dev *dev)
{
    (void)dev;
    return 1ull << VIRTIO_NET_F_MAC | 1ull << VIRTIO_NET_F_MRG_RXBUF | 1ull << VIRTIO_NET_F_STATUS;
}

static const struct virtio_dev_ops net_ops = {
    .name = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .sandbox = SANDBOX_IO_NET,
    .config_len = CFG_LEN,
    .nqueues = 2,
    .queue_size = NET_QUEUE_SIZE,
    .features = net_features,
    .queue_notify = net_queue_notify,
    .config_read = net_config_read,
    .config_write = net_config_write,
    .activate = net_activate,
    .reset = net_reset,
    .destroy = net_destroy,
};

/* A MAC picked at random is kept with the backend: the guest keeps it across reboots. */
static void pick_mac(const struct dev_net *cfg, struct net_backend *be, uint8_t mac[6])
{
    if (cfg->mac_set) {
        memcpy(mac, cfg->mac, 6);
        return;
    }
    if (!be->guest_mac_set) {
        uint8_t *r = be->guest_mac;
        if (getrandom(r, 6, GRND_NONBLOCK) != 6) {
            for (int i = 0; i < 6; i++)
                r[i] = (uint8_t)rand();
        }
        /* Unicast (bit 0 clear), locally administered (bit 1 set). */
        r[0] = (uint8_t)((r[0] & 0xfc) | 0x02);
        be->guest_mac_set = true;
    }
    memcpy(mac, be->guest_mac, 6);
}

int virtio_net_create(struct machine *m, const struct dev_net *cfg, struct net_backend *be,
                      struct virtio_dev **out)
{
    struct virtio_net *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->be = be;
    pick_mac(cfg, be, n->mac);
    n->status = VIRTIO_NET_S_LINK_UP;
    if (cfg->offloading)
        log_debug("virtio-net %s: offloading=on accepted; no offload is offered", n->be->what);
    struct virtio_dev *dev = &n->vdev;
    int rc = virtio_dev_init(dev, m, &net_ops);
    if (rc == 0)
        rc = virtio_dev_start(dev);
    if (rc) {
        log_error("virtio-net: cannot create: %s", strerror(-rc));
        virtio_dev_destroy(dev);
        return rc;
    }
    log_info("virtio-net %s: %s framing, mac %02x:%02x:%02x:%02x:%02x:%02x", n->be->what,
             n->be->framing == NET_FRAMING_STREAM ? "unixstream" : "unixgram", n->mac[0], n->mac[1],
             n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
    *out = dev;
    return 0;
}
