/*
 * --device virtio-rng: an entropy source (docs/krunkit.1, DEVICES), served
 * by virtio/rng.c (virtio 1.2, 5.4). No options, nothing on the host.
 */
#include "core/devkind.h"
#include "virtio/devices.h"

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
