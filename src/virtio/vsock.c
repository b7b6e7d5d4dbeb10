/*
 * virtio-vsock (virtio 1.2, section 5.10): rx (0), tx (1) and event (2)
 * queues, guest_cid 3 in the configuration space, stream sockets only.
 * Every `--device virtio-vsock` names one port; all of them share this one
 * PCI device, whose host side is the connection muxer (vsock/muxer.h).
 *
 * The device checks what the queues carry (a complete header, a payload
 * length the chain really holds, the CIDs) and hands the packet to the
 * muxer with the payload still in the guest's buffers; receive buffers are
 * filled by the muxer in place. The event queue is never used: we have no
 * transport reset to report (5.10.6.6 is for migration).
 */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_vsock.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "core/log.h"
#include "virtio/devices.h"
#include "virtio/virtio.h"
#include "vsock/muxer.h"

/* 5.10.3: bit 0 is stream; the uapi header names only SEQPACKET (1). */
#define VIRTIO_VSOCK_F_STREAM 0
#define VSOCK_QUEUE_SIZE 256
#define RX_QUEUE 0
#define TX_QUEUE 1
#define EVENT_QUEUE 2
#define CFG_LEN sizeof(struct virtio_vsock_config)

struct virtio_vsock {
    struct virtio_dev vdev;
    struct vsock_muxer *mx;
    struct iovec payload[VIRTQ_MAX_SEGS];
};

static struct virtio_vsock *to_vsock(struct virtio_dev *dev)
{
    return (struct virtio_vsock *)dev;
}

static void rx_pump(struct virtio_vsock *v)
{
    struct virtio_dev *dev = &v->vdev;
    struct virtq *vq = virtio_vq(dev, RX_QUEUE);
    if (!virtio_running(dev) || !dev->queues[RX_QUEUE].enabled || !virtq_ready(vq))
        return;
    while (vsock_muxer_has_rx(v->mx)) {
        struct virtq_elem *e;
        int rc = virtq_pop(vq, &e);
        if (rc < 0)
            break;
        if (rc == 0) {
            /* No receive buffer: the guest's next rx kick brings us back. */
            if (virtq_enable_notify(vq))
                continue;
            break;
        }
        if (e->in_len < VSOCK_HDR_LEN) {
            /* Too small for a header: give it back unused. */
            virtq_push(vq, e->head, 0);
            free(e);
            continue;
        }
        size_t n = vsock_muxer_fill_rx(v->mx, e->iov + e->nr_out, e->nr_in, e->in_len);
        if (n == 0) {
            virtq_unpop(vq);
            free(e);
            break;
        }
        virtq_push(vq, e->head, (uint32_t)n);
        free(e);
    }
    virtio_queue_flush(dev, RX_QUEUE);
}

/* The payload of a tx chain: `len` bytes after the header, in the guest's buffers. */
static unsigned payload_iov(struct virtio_vsock *v, const struct virtq_elem *e, uint32_t len)
{
    uint64_t skip = VSOCK_HDR_LEN;
    unsigned n = 0;
    for (unsigned i = 0; i < e->nr_out && len; i++) {
        uint64_t l = e->iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        uint64_t take = l - skip < len ? l - skip : len;
        v->payload[n++] = (struct iovec){(uint8_t *)e->iov[i].iov_base + skip, (size_t)take};
        len -= (uint32_t)take;
        skip = 0;
    }
    return n;
}

static void tx_packet(struct virtio_vsock *v, const struct virtq_elem *e)
{
    struct vsock_hdr h;
    if (e->out_len < VSOCK_HDR_LEN || virtq_elem_read(e, 0, &h, sizeof(h)) != sizeof(h)) {
        log_debug("virtio-vsock: dropping a packet shorter than its header");
        return;
    }
    uint32_t len = le32toh(h.len);
    if (len > e->out_len - VSOCK_HDR_LEN || le64toh(h.src_cid) != VSOCK_GUEST_CID ||
        le64toh(h.dst_cid) != VSOCK_HOST_CID) {
        log_debug("virtio-vsock: rejecting a packet (len %u in %llu bytes, cid %llu -> %llu)", len,
                  (unsigned long long)e->out_len, (unsigned long long)le64toh(h.src_cid),
                  (unsigned long long)le64toh(h.dst_cid));
        vsock_muxer_reject(v->mx, &h);
        return;
    }
    unsigned n = payload_iov(v, e, len);
    vsock_muxer_recv(v->mx, &h, v->payload, n);
}

static enum virtio_chain tx_chain(struct virtio_dev *dev, struct virtq *vq, struct virtq_elem *e,
                                  void *opaque)
{
    (void)opaque;
    tx_packet(to_vsock(dev), e);
    virtq_push(vq, e->head, 0);
    free(e);
    return VIRTIO_CHAIN_DONE;
}

static void tx_drain(struct virtio_vsock *v)
{
    virtio_queue_drain(&v->vdev, TX_QUEUE, tx_chain, NULL);
}

static void vsock_queue_notify(struct virtio_dev *dev, unsigned q)
{
    struct virtio_vsock *v = to_vsock(dev);
    if (q == TX_QUEUE)
        tx_drain(v);
    if (q == TX_QUEUE || q == RX_QUEUE)
        rx_pump(v);
}

static void muxer_ready(struct virtio_dev *dev, int fd, uint32_t events)
{
    struct virtio_vsock *v = to_vsock(dev);
    (void)fd;
    (void)events;
    vsock_muxer_poll(v->mx);
    rx_pump(v);
}

static void vsock_config_read(struct virtio_dev *dev, unsigned off, void *data, unsigned len)
{
    uint64_t cid = htole64(VSOCK_GUEST_CID);
    (void)dev;
    if (off < CFG_LEN && len <= CFG_LEN - off)
        memcpy(data, (const uint8_t *)&cid + off, len);
}

static void vsock_config_write(struct virtio_dev *dev, unsigned off, const void *data, unsigned len)
{
    /* guest_cid is read-only. */
    (void)dev;
    (void)off;
    (void)data;
    (void)len;
}

static void vsock_activate(struct virtio_dev *dev)
{
    struct virtio_vsock *v = to_vsock(dev);
    vsock_muxer_set_guest_ready(v->mx, true);
    rx_pump(v);
}

static int vsock_reset(struct virtio_dev *dev)
{
    struct virtio_vsock *v = to_vsock(dev);
    if (!v->mx)
        return 0;
    vsock_muxer_set_guest_ready(v->mx, false);
    vsock_muxer_reset(v->mx);
    return 0;
}

static uint64_t vsock_features(struct virtio_dev *dev)
{
    (void)dev;
    return 1ull << VIRTIO_VSOCK_F_STREAM;
}

static void vsock_destroy(struct virtio_dev *dev)
{
    /* The muxer (its listening sockets) is the VM's: it serves the next boot. */
    free(to_vsock(dev));
}

static const struct virtio_dev_ops vsock_ops = {
    .name = "virtio-vsock",
    .device_id = VIRTIO_ID_VSOCK,
    .sandbox = SANDBOX_IO_VSOCK,
    .config_len = CFG_LEN,
    .nqueues = 3,
    .queue_size = VSOCK_QUEUE_SIZE,
    .features = vsock_features,
    .queue_notify = vsock_queue_notify,
    .config_read = vsock_config_read,
    .config_write = vsock_config_write,
    .activate = vsock_activate,
    .reset = vsock_reset,
    .destroy = vsock_destroy,
};

int virtio_vsock_muxer_open(const struct vm_config *cfg, const struct dev_vsock *extra,
                            struct vsock_muxer **out)
{
    const struct dev_vsock **devs = calloc(cfg->n_devices + 1, sizeof(*devs));
    if (!devs)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_devices; i++)
        if (cfg->devices[i].type == DEV_VSOCK)
            devs[n++] = &cfg->devices[i].vsock;
    if (extra)
        devs[n++] = extra;
    int rc = vsock_muxer_create(devs, n, out);
    free(devs);
    return rc;
}

int virtio_vsock_create(struct machine *m, struct vsock_muxer *mx, struct virtio_dev **out)
{
    struct virtio_vsock *v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    v->mx = mx;
    struct virtio_dev *dev = &v->vdev;
    int rc = virtio_dev_init(dev, m, &vsock_ops);
    if (rc == 0)
        rc = virtio_dev_add_fd(dev, vsock_muxer_fd(v->mx), EPOLLIN, muxer_ready);
    if (rc == 0)
        rc = virtio_dev_start(dev);
    if (rc) {
        log_error("virtio-vsock: cannot create: %s", strerror(-rc));
        virtio_dev_destroy(dev);
        return rc;
    }
    *out = dev;
    return 0;
}
