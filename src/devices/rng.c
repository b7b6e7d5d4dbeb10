/*
 * --device virtio-rng, the entropy device (virtio 1.2, section 5.4;
 * docs/krunkit.1, DEVICES): one request queue of device-writable buffers,
 * which we fill from getrandom(2). No feature bits, no configuration
 * space, no options, nothing on the host.
 *
 * The whole device in one file: the model and its descriptor (the
 * dev_kind at the end), with its line in core/device_list.h. This is the
 * shape of a new device; the larger models keep theirs in src/virtio/ and
 * their descriptor here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/devkind.h"
#include "core/log.h"
#include "virtio/devices.h"
#include "virtio/virtio.h"

/* Per-request cap, so one huge buffer does not stall the thread. */
#define RNG_MAX_REQUEST 65536

struct virtio_rng {
    struct virtio_dev vdev;
};

static size_t fill_random(struct virtq_elem *e)
{
    size_t done = 0;
    for (unsigned i = e->nr_out; i < e->nr_out + e->nr_in && done < RNG_MAX_REQUEST; i++) {
        size_t want = e->iov[i].iov_len;
        if (want > RNG_MAX_REQUEST - done)
            want = RNG_MAX_REQUEST - done;
        uint8_t *p = e->iov[i].iov_base;
        size_t got = 0;
        while (got < want) {
            ssize_t n = getrandom(p + got, want - got, 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                log_warn("virtio-rng: getrandom: %m");
                return done + got;
            }
            got += (size_t)n;
        }
        done += got;
    }
    return done;
}

static enum virtio_chain rng_chain(struct virtio_dev *dev, struct virtq *vq, struct virtq_elem *e,
                                   void *opaque)
{
    (void)dev;
    (void)opaque;
    virtq_push(vq, e->head, (uint32_t)fill_random(e));
    free(e);
    return VIRTIO_CHAIN_DONE;
}

static void rng_queue_notify(struct virtio_dev *dev, unsigned q)
{
    virtio_queue_drain(dev, q, rng_chain, NULL);
}

static void rng_destroy(struct virtio_dev *dev)
{
    free(dev);
}

static const struct virtio_dev_ops rng_ops = {
    .name = "virtio-rng",
    .device_id = VIRTIO_ID_RNG,
    .sandbox = SANDBOX_IO_RNG,
    .nqueues = 1,
    .queue_size = 256,
    .queue_notify = rng_queue_notify,
    .destroy = rng_destroy,
};

int virtio_rng_create(struct machine *m, struct virtio_dev **out)
{
    struct virtio_rng *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    struct virtio_dev *dev = &r->vdev;
    int rc = virtio_dev_init(dev, m, &rng_ops);
    if (rc == 0)
        rc = virtio_dev_start(dev);
    if (rc) {
        log_error("virtio-rng: cannot create: %s", strerror(-rc));
        virtio_dev_destroy(dev);
        return rc;
    }
    *out = dev;
    return 0;
}

static int create(struct machine *m, struct dev_backend *b, struct virtio_dev **out)
{
    (void)b;
    return virtio_rng_create(m, out);
}

const struct dev_kind dev_kind_rng = {
    .name = "virtio-rng",
    .type = DEV_RNG,
    .create = create,
};
