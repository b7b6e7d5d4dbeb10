/*
 * virtio-blk (virtio 1.2, section 5.2) over the block layer (block/block.h).
 *
 * One request queue. A request (5.2.6) is a 16-byte header {type, reserved,
 * sector} in the device-readable part, data, and a status byte as the last
 * device-writable byte. Supported: IN, OUT, FLUSH (fdatasync via
 * blk_flush), GET_ID (the configured deviceId, 20 bytes at most), DISCARD
 * and WRITE_ZEROES (one segment each, 5.2.6.2). A read-only image offers
 * VIRTIO_BLK_F_RO and fails writes with IOERR.
 *
 * Requests go to the block layer's workers with blk_submit; completions come
 * back on the device's I/O thread through blk_completion_fd, and all the
 * completions of one wakeup are published with a single used-index update
 * and (EVENT_IDX permitting) a single interrupt.
 *
 * A request the driver formed badly (short header, no status byte, length
 * not a multiple of 512, range past the end) fails with IOERR or UNSUPP;
 * only a malformed ring stops the device (DEVICE_NEEDS_RESET).
 */
#include <errno.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "block/block.h"
#include "core/log.h"
#include "virtio/devices.h"
#include "virtio/virtio.h"

#define SECTOR_SHIFT 9
#define BLK_QUEUE_SIZE 256
#define BLK_SEG_MAX (BLK_QUEUE_SIZE - 2) /* header and status take a descriptor each */
#define BLK_SIZE_MAX (1u << 20)
#define BLK_MAX_DISCARD_SECTORS (1u << 22) /* 2 GiB per request */
#define BLK_DISCARD_ALIGN_SECTORS 8        /* 4 KiB: the granularity hole punching has */

/* Device configuration layout (5.2.4), the fields we use. */
#define CFG_OFF(field) offsetof(struct virtio_blk_config, field)
#define CFG_CAPACITY CFG_OFF(capacity)
#define CFG_SIZE_MAX CFG_OFF(size_max)
#define CFG_SEG_MAX CFG_OFF(seg_max)
#define CFG_BLK_SIZE CFG_OFF(blk_size)
#define CFG_MAX_DISCARD_SECTORS CFG_OFF(max_discard_sectors)
#define CFG_MAX_DISCARD_SEG CFG_OFF(max_discard_seg)
#define CFG_DISCARD_ALIGN CFG_OFF(discard_sector_alignment)
#define CFG_MAX_WZ_SECTORS CFG_OFF(max_write_zeroes_sectors)
#define CFG_MAX_WZ_SEG CFG_OFF(max_write_zeroes_seg)
#define CFG_WZ_MAY_UNMAP CFG_OFF(write_zeroes_may_unmap)
/* Up to write_zeroes_may_unmap and its padding: no secure erase, no zoned fields. */
#define CFG_LEN (CFG_OFF(unused1) + 3)

struct virtio_blk {
    struct virtio_dev vdev;
    struct blk_image *img;
    char id[VIRTIO_BLK_ID_BYTES];
    size_t id_len;
    bool readonly;
    uint64_t capacity; /* sectors */
    unsigned inflight;
    bool draining; /* reset: completions must not touch the rings */
    uint8_t config[CFG_LEN];
};

struct blk_request {
    struct blk_req req;
    struct virtio_blk *blk;
    struct virtq_elem *elem;
    uint8_t *status; /* last device-writable byte */
    uint32_t written;
    int iovcnt;
    struct iovec iov[];
};

static struct virtio_blk *to_blk(struct virtio_dev *dev)
{
    return (struct virtio_blk *)dev;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void build_config(struct virtio_blk *b)
{
    uint8_t *c = b->config;
    memset(c, 0, sizeof(b->config));
    memcpy(c + CFG_CAPACITY, &b->capacity, 8);
    put_le32(c + CFG_SIZE_MAX, BLK_SIZE_MAX);
    put_le32(c + CFG_SEG_MAX, BLK_SEG_MAX);
    put_le32(c + CFG_BLK_SIZE, 1u << SECTOR_SHIFT);
    put_le32(c + CFG_MAX_DISCARD_SECTORS, BLK_MAX_DISCARD_SECTORS);
    put_le32(c + CFG_MAX_DISCARD_SEG, 1);
    put_le32(c + CFG_DISCARD_ALIGN, BLK_DISCARD_ALIGN_SECTORS);
    put_le32(c + CFG_MAX_WZ_SECTORS, BLK_MAX_DISCARD_SECTORS);
    put_le32(c + CFG_MAX_WZ_SEG, 1);
    c[CFG_WZ_MAY_UNMAP] = 1;
}

static void blk_config_read(struct virtio_dev *dev, unsigned off, void *data, unsigned len)
{
    struct virtio_blk *b = to_blk(dev);
    if (off + len <= sizeof(b->config))
        memcpy(data, b->config + off, len);
}

/* Finish a request: status byte, used entry. Publication happens per batch. */
static void request_finish(struct blk_request *r, uint8_t status)
{
    struct virtio_blk *b = r->blk;
    if (!b->draining) {
        *r->status = status;
        virtq_push(virtio_vq(&b->vdev, 0), r->elem->head, r->written + 1);
    }
    free(r->elem);
    free(r);
}

static void request_done(struct blk_req *req)
{
    struct blk_request *r = (struct blk_request *)req;
    struct virtio_blk *b = r->blk;
    b->inflight--;
    if (req->result)
        log_debug("virtio-blk %s: request type %d at %llu failed: %s", blk_path(b->img), req->op,
                  (unsigned long long)req->offset, strerror(-req->result));
    if (req->result == 0 && req->op == BLK_OP_READ)
        r->written = (uint32_t)(r->elem->in_len - 1);
    request_finish(r, req->result ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
}

static void submit(struct blk_request *r)
{
    struct virtio_blk *b = r->blk;
    r->req.done = request_done;
    r->req.iov = r->iov;
    r->req.iovcnt = r->iovcnt;
    int rc = blk_submit(b->img, &r->req);
    if (rc) {
        log_debug("virtio-blk: cannot queue request: %s", strerror(-rc));
        request_finish(r, VIRTIO_BLK_S_IOERR);
        return;
    }
    b->inflight++;
}

/* Data buffers: the readable part after the header, or the writable part before the status. */
static int collect_data(struct blk_request *r, const struct virtq_elem *e, bool device_writes,
                        uint64_t *len)
{
    uint64_t skip = device_writes ? 0 : sizeof(struct virtio_blk_outhdr);
    uint64_t want = device_writes ? e->in_len - 1 : e->out_len - sizeof(struct virtio_blk_outhdr);
    unsigned first = device_writes ? e->nr_out : 0;
    unsigned end = device_writes ? e->nr_out + e->nr_in : e->nr_out;
    uint64_t left = want;
    int n = 0;
    for (unsigned i = first; i < end && left; i++) {
        const struct iovec *v = &e->iov[i];
        if (skip >= v->iov_len) {
            skip -= v->iov_len;
            continue;
        }
        size_t take = v->iov_len - skip;
        if (take > left)
            take = left;
        r->iov[n].iov_base = (uint8_t *)v->iov_base + skip;
        r->iov[n].iov_len = take;
        n++;
        left -= take;
        skip = 0;
    }
    r->iovcnt = n;
    *len = want;
    return 0;
}

static bool range_ok(const struct virtio_blk *b, uint64_t sector, uint64_t sectors)
{
    return sector <= b->capacity && sectors <= b->capacity - sector;
}

/* DISCARD / WRITE_ZEROES: one {sector, num_sectors, flags} segment (5.2.6.2). */
static uint8_t start_discard(struct blk_request *r, const struct virtq_elem *e, bool zeroes)
{
    struct virtio_blk *b = r->blk;
    struct virtio_blk_discard_write_zeroes seg;
    if (b->readonly)
        return VIRTIO_BLK_S_IOERR;
    if (e->out_len != sizeof(struct virtio_blk_outhdr) + sizeof(seg))
        return VIRTIO_BLK_S_UNSUPP; /* we offered max_*_seg = 1 */
    virtq_elem_read(e, sizeof(struct virtio_blk_outhdr), &seg, sizeof(seg));
    uint32_t allowed = zeroes ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
    if (seg.flags & ~allowed)
        return VIRTIO_BLK_S_UNSUPP;
    if (seg.num_sectors > BLK_MAX_DISCARD_SECTORS || !range_ok(b, seg.sector, seg.num_sectors))
        return VIRTIO_BLK_S_IOERR;
    /*
     * The unmap flag lets the image free the range (a hole in a raw file,
     * zero clusters without allocation in qcow2); without it the range stays
     * allocated, so a later write there cannot fail for lack of space.
     */
    if (!zeroes)
        r->req.op = BLK_OP_DISCARD;
    else if (seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
        r->req.op = BLK_OP_WRITE_ZEROES_UNMAP;
    else
        r->req.op = BLK_OP_WRITE_ZEROES;
    r->req.offset = seg.sector << SECTOR_SHIFT;
    r->req.len = (uint64_t)seg.num_sectors << SECTOR_SHIFT;
    if (r->req.len == 0)
        return VIRTIO_BLK_S_OK;
    submit(r);
    return 0xff; /* in flight */
}

/* Returns a status to complete with now, or 0xff when the request is in flight. */
static uint8_t start_request(struct virtio_blk *b, struct blk_request *r, struct virtq_elem *e)
{
    struct virtio_blk_outhdr h;
    if (e->out_len < sizeof(h))
        return VIRTIO_BLK_S_IOERR;
    virtq_elem_read(e, 0, &h, sizeof(h));
    uint64_t len;
    switch (h.type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
        bool is_read = h.type == VIRTIO_BLK_T_IN;
        if (!is_read && b->readonly)
            return VIRTIO_BLK_S_IOERR;
        collect_data(r, e, is_read, &len);
        if (len & ((1u << SECTOR_SHIFT) - 1) || !range_ok(b, h.sector, len >> SECTOR_SHIFT))
            return VIRTIO_BLK_S_IOERR;
        if (len == 0)
            return VIRTIO_BLK_S_OK;
        r->req.op = is_read ? BLK_OP_READ : BLK_OP_WRITE;
        r->req.offset = h.sector << SECTOR_SHIFT;
        submit(r);
        return 0xff;
    }
    case VIRTIO_BLK_T_FLUSH:
        r->req.op = BLK_OP_FLUSH;
        r->iovcnt = 0;
        submit(r);
        return 0xff;
    case VIRTIO_BLK_T_GET_ID: {
        if (!b->id_len)
            return VIRTIO_BLK_S_UNSUPP;
        /* 5.2.6: the id is 20 bytes, NUL-padded when shorter. */
        char id[VIRTIO_BLK_ID_BYTES] = {0};
        memcpy(id, b->id, b->id_len);
        size_t room = e->in_len - 1;
        size_t n = room < sizeof(id) ? room : sizeof(id);
        r->written = (uint32_t)virtq_elem_write(e, 0, id, n);
        return VIRTIO_BLK_S_OK;
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        return start_discard(r, e, h.type == VIRTIO_BLK_T_WRITE_ZEROES);
    default:
        return VIRTIO_BLK_S_UNSUPP;
    }
}

static enum virtio_chain handle_elem(struct virtio_dev *dev, struct virtq *vq, struct virtq_elem *e,
                                     void *opaque)
{
    struct virtio_blk *b = to_blk(dev);
    (void)opaque;
    if (e->in_len == 0) {
        /* Nowhere to put a status: give the chain back unprocessed. */
        log_debug("virtio-blk: request without a status byte");
        virtq_push(vq, e->head, 0);
        free(e);
        return VIRTIO_CHAIN_DONE;
    }
    unsigned nseg = e->nr_out + e->nr_in;
    struct blk_request *r = calloc(1, sizeof(*r) + nseg * sizeof(struct iovec));
    if (!r) {
        virtq_push(vq, e->head, 0);
        free(e);
        return VIRTIO_CHAIN_DONE;
    }
    r->blk = b;
    r->elem = e;
    const struct iovec *last = &e->iov[e->nr_out + e->nr_in - 1];
    r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
    uint8_t status = start_request(b, r, e);
    if (status != 0xff)
        request_finish(r, status);
    return VIRTIO_CHAIN_DONE;
}

static void blk_queue_notify(struct virtio_dev *dev, unsigned q)
{
    struct virtio_blk *b = to_blk(dev);
    /*
     * Everything this pass finds goes to the kernel in one submission;
     * requests finished synchronously (errors, GET_ID) are published by
     * the drain.
     */
    blk_plug(b->img);
    virtio_queue_drain(dev, q, handle_elem, NULL);
    blk_unplug(b->img);
}

static void blk_completion(struct virtio_dev *dev, int fd, uint32_t events)
{
    struct virtio_blk *b = to_blk(dev);
    (void)fd;
    (void)events;
    blk_complete(b->img);
    if (!b->draining) {
        virtio_queue_flush(dev, 0);
    } else if (!b->inflight) {
        b->draining = false;
        virtio_dev_reset_done(dev);
    }
}

/*
 * The driver's reset may come on a vCPU thread: never wait for the image
 * here (a hung disk would hang the vCPU). Requests in flight still write
 * guest buffers, so the status stays non-zero until the last one is back;
 * their completions are dropped (request_finish), never put on the rings.
 */
static int blk_reset(struct virtio_dev *dev)
{
    struct virtio_blk *b = to_blk(dev);
    if (!b->img || !b->inflight)
        return 0;
    b->draining = true;
    return -EINPROGRESS;
}

/*
 * Control thread: collect every request still in flight. The lock is taken
 * only to complete, so a disk that hangs holds up this caller, not the
 * vCPUs or the API.
 */
static void blk_quiesce(struct virtio_dev *dev)
{
    struct virtio_blk *b = to_blk(dev);
    if (!b->img)
        return;
    for (;;) {
        pthread_mutex_lock(&dev->lock);
        blk_complete(b->img);
        bool busy = b->inflight != 0;
        if (!busy && b->draining) {
            b->draining = false;
            virtio_dev_reset_done(dev);
        } else if (!busy) {
            virtio_queue_flush(dev, 0);
        }
        pthread_mutex_unlock(&dev->lock);
        if (!busy)
            return;
        struct pollfd p = {.fd = blk_completion_fd(b->img), .events = POLLIN};
        poll(&p, 1, 1000);
    }
}

static uint64_t blk_features(struct virtio_dev *dev)
{
    uint64_t f = 1ull << VIRTIO_BLK_F_SIZE_MAX | 1ull << VIRTIO_BLK_F_SEG_MAX |
                 1ull << VIRTIO_BLK_F_BLK_SIZE | 1ull << VIRTIO_BLK_F_FLUSH;
    if (to_blk(dev)->readonly)
        return f | 1ull << VIRTIO_BLK_F_RO;
    return f | 1ull << VIRTIO_BLK_F_DISCARD | 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
}

static void blk_destroy(struct virtio_dev *dev)
{
    /* The image is the VM's (opened once, kept across reboots). */
    free(to_blk(dev));
}

static const struct virtio_dev_ops blk_ops = {
    .name = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .sandbox = SANDBOX_IO_BLK,
    .config_len = CFG_LEN,
    .nqueues = 1,
    .queue_size = BLK_QUEUE_SIZE,
    .features = blk_features,
    .queue_notify = blk_queue_notify,
    .config_read = blk_config_read,
    .reset = blk_reset,
    .quiesce = blk_quiesce,
    .destroy = blk_destroy,
};

int virtio_blk_create(struct machine *m, const struct dev_blk *cfg, struct blk_image *img,
                      struct virtio_dev **out)
{
    if (cfg->device_id && strlen(cfg->device_id) > VIRTIO_BLK_ID_BYTES) {
        log_error("virtio-blk %s: deviceId longer than %d bytes", cfg->path, VIRTIO_BLK_ID_BYTES);
        return -EINVAL;
    }
    struct virtio_blk *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->img = img;
    b->readonly = cfg->readonly || blk_readonly(b->img);
    b->capacity = blk_size(b->img) >> SECTOR_SHIFT;
    if (cfg->device_id) {
        b->id_len = strlen(cfg->device_id);
        memcpy(b->id, cfg->device_id, b->id_len);
    }
    build_config(b);

    struct virtio_dev *dev = &b->vdev;
    int rc = virtio_dev_init(dev, m, &blk_ops);
    if (rc == 0)
        rc = virtio_dev_add_fd(dev, blk_completion_fd(b->img), EPOLLIN, blk_completion);
    if (rc == 0)
        rc = virtio_dev_start(dev);
    if (rc) {
        log_error("virtio-blk %s: cannot create: %s", cfg->path, strerror(-rc));
        virtio_dev_destroy(dev);
        return rc;
    }
    log_debug("virtio-blk %s: %llu sectors%s", cfg->path, (unsigned long long)b->capacity,
              b->readonly ? ", read-only" : "");
    *out = dev;
    return 0;
}
