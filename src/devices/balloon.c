/*
 * --device virtio-balloon: a memory balloon (docs/krunkit.1, DEVICES),
 * served by virtio/balloon.c (virtio 1.2, 5.5). No options.
 */
#include "core/devkind.h"
#include "virtio/devices.h"

static int create(struct machine *m, struct dev_backend *b, struct virtio_dev **out)
{
    (void)b;
    return virtio_balloon_create(m, out);
}

const struct dev_kind dev_kind_balloon = {
    .name = "virtio-balloon",
    .type = DEV_BALLOON,
    .create = create,
};
