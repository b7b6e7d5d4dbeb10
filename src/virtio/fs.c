/*
 * virtio-fs (virtio 1.2, section 5.11): the guest's FUSE client talks to
 * our FUSE server (fs/fuse_server.h) over virtqueues, and the server
 * passes every request through to one host directory, confined to it.
 *
 * Queue 0 is the high-priority queue (FORGET, BATCH_FORGET, INTERRUPT),
 * queue 1 the one request queue (num_request_queues = 1). Every chain is
 * one FUSE request: the device-readable buffers hold fuse_in_header and
 * the arguments, the device-writable ones take fuse_out_header and the
 * reply (5.11.6). The server reads arguments and writes replies straight
 * in those guest buffers (READ and WRITE data are never copied); the used
 * length is what it wrote, 0 for requests without a reply.
 *
 * Configuration space (5.11.4): tag[36] (the mountTag, NUL-padded, not
 * NUL-terminated when it is 36 bytes long) and le32 num_request_queues.
 * No feature bits: no VIRTIO_FS_F_NOTIFICATION and no DAX window.
 *
 * Both queues are served on the device's one I/O thread, so the server
 * needs no locking; a request that fails is answered with an error in its
 * fuse_out_header, only a malformed ring stops the device.
 *
 * The device borrows the share (fs/fs_share.h): the host directory is
 * opened once, by whoever owns the share, and kept across guest reboots.
 * Destroying the device (a reboot rebuilds every device) frees the FUSE
 * server's session state, its nodeids and handles, but not the share.
 */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_fs.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "fs/fs_share.h"
#include "fs/fuse_server.h"
#include "virtio/devices.h"
#include "virtio/virtio.h"

#define FS_QUEUE_SIZE 256
#define HIPRIO_QUEUE 0
#define REQUEST_QUEUE 1
#define FS_NUM_QUEUES 2
#define FS_NUM_REQUEST_QUEUES 1

/* Configuration layout (5.11.4). */
#define CFG_TAG offsetof(struct virtio_fs_config, tag)
#define CFG_TAG_LEN 36
#define CFG_NUM_REQUEST_QUEUES offsetof(struct virtio_fs_config, num_request_queues)
#define CFG_LEN sizeof(struct virtio_fs_config)

_Static_assert(CFG_TAG_LEN == VIRTIO_FS_TAG_MAX, "mountTag length is the config tag length");
_Static_assert(CFG_TAG_LEN == sizeof(((struct virtio_fs_config *)0)->tag), "the uapi tag length");

struct virtio_fs {
    struct virtio_dev vdev;
    struct fuse_server *server;
    uint8_t config[CFG_LEN];
};

static struct virtio_fs *to_fs(struct virtio_dev *dev)
{
    return (struct virtio_fs *)dev;
}

static enum virtio_chain serve_chain(struct virtio_dev *dev, struct virtq *vq, struct virtq_elem *e,
                                     void *opaque)
{
    struct virtio_fs *f = to_fs(dev);
    (void)opaque;
    uint32_t n = fuse_server_handle(f->server, e->iov, e->nr_out, e->out_len, e->iov + e->nr_out,
                                    e->nr_in, e->in_len);
    virtq_push(vq, e->head, n);
    free(e);
    return VIRTIO_CHAIN_DONE;
}

static void fs_queue_notify(struct virtio_dev *dev, unsigned q)
{
    if (q < FS_NUM_QUEUES)
        virtio_queue_drain(dev, q, serve_chain, NULL);
}

static void fs_config_read(struct virtio_dev *dev, unsigned off, void *data, unsigned len)
{
    struct virtio_fs *f = to_fs(dev);
    if (off < CFG_LEN && len <= CFG_LEN - off)
        memcpy(data, f->config + off, len);
}

static void fs_config_write(struct virtio_dev *dev, unsigned off, const void *data, unsigned len)
{
    /* Both fields are read-only for the driver. */
    (void)dev;
    (void)off;
    (void)data;
    (void)len;
}

static int fs_reset(struct virtio_dev *dev)
{
    struct virtio_fs *f = to_fs(dev);
    /* The next driver starts with FUSE_INIT and knows none of the old nodeids. */
    if (f->server)
        fuse_server_reset(f->server);
    return 0;
}

static void fs_destroy(struct virtio_dev *dev)
{
    struct virtio_fs *f = to_fs(dev);
    fuse_server_destroy(f->server);
    free(f);
}

static const struct virtio_dev_ops fs_ops = {
    .name = "virtio-fs",
    .device_id = VIRTIO_ID_FS,
    .sandbox = SANDBOX_IO_FS,
    .config_len = CFG_LEN,
    .nqueues = FS_NUM_QUEUES,
    .queue_size = FS_QUEUE_SIZE,
    .queue_notify = fs_queue_notify,
    .config_read = fs_config_read,
    .config_write = fs_config_write,
    .reset = fs_reset,
    .destroy = fs_destroy,
};

int virtio_fs_create(struct machine *m, const struct dev_fs *cfg, struct fs_share *share,
                     struct virtio_dev **out)
{
    size_t tag_len = strlen(cfg->mount_tag);
    if (tag_len == 0 || tag_len > CFG_TAG_LEN) {
        log_error("--device virtio-fs mountTag \"%s\": must be 1 to %d bytes", cfg->mount_tag,
                  CFG_TAG_LEN);
        return -EINVAL;
    }
    struct virtio_fs *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    memcpy(f->config + CFG_TAG, cfg->mount_tag, tag_len);
    uint32_t nrq = htole32(FS_NUM_REQUEST_QUEUES);
    memcpy(f->config + CFG_NUM_REQUEST_QUEUES, &nrq, sizeof(nrq));
    int rc = fuse_server_create(share, &f->server);
    if (rc) {
        free(f);
        return rc;
    }
    struct virtio_dev *dev = &f->vdev;
    rc = virtio_dev_init(dev, m, &fs_ops);
    if (rc == 0)
        rc = virtio_dev_start(dev);
    if (rc) {
        log_error("--device virtio-fs mountTag \"%s\": cannot create: %s", cfg->mount_tag,
                  strerror(-rc));
        virtio_dev_destroy(dev);
        return rc;
    }
    *out = dev;
    return 0;
}
