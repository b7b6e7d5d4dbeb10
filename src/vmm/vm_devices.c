/*
 * The virtio devices of one boot, made from the config in command-line
 * order (so the first virtio-blk is /dev/vda), each on the host side the
 * VM opened once (vmm/backends.h) and on that device's kept I/O thread.
 */
#include "vmm/vm_devices.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "virtio/devices.h"
#include "vmm/vm_internal.h"

bool vm_device_supported(enum dev_type type)
{
    switch (type) {
    case DEV_BLK:
    case DEV_SERIAL:
    case DEV_RNG:
    case DEV_BALLOON:
    case DEV_NET:
    case DEV_VSOCK:
    case DEV_FS:
        return true;
    default:
        return false;
    }
}

static int create_virtio(struct vmm *vmm, struct dev_backend *b, struct virtio_dev **out)
{
    /* The machine of this boot, on the device's kept I/O thread. */
    b->m = vmm->machine;
    b->m.io_loop = b->loop;
    const struct dev_config *d = b->cfg;
    if (!d) /* the vsock device only --timesync asks for */
        return virtio_vsock_create(&b->m, b->vsock, out);
    switch (d->type) {
    case DEV_BLK:
        return virtio_blk_create(&b->m, &d->blk, b->img, out);
    case DEV_SERIAL:
        return virtio_console_create(&b->m, b->console, out);
    case DEV_RNG:
        return virtio_rng_create(&b->m, out);
    case DEV_BALLOON:
        return virtio_balloon_create(&b->m, out);
    case DEV_NET:
        return virtio_net_create(&b->m, &d->net, b->net, out);
    case DEV_VSOCK:
        return virtio_vsock_create(&b->m, b->vsock, out);
    case DEV_FS:
        return virtio_fs_create(&b->m, &d->fs, b->fs, out);
    default:
        return -ENOTSUP;
    }
}

int vm_devices_create(struct vmm *vmm)
{
    vmm->virtio = calloc(vmm->backends.n, sizeof(*vmm->virtio));
    if (!vmm->virtio)
        return -ENOMEM;
    for (size_t i = 0; i < vmm->backends.n; i++) {
        struct dev_backend *b = &vmm->backends.dev[i];
        int rc = create_virtio(vmm, b, &vmm->virtio[vmm->nr_virtio]);
        if (rc) {
            log_error("--device %s: cannot create the device: %s",
                      b->cfg ? dev_type_name(b->cfg->type) : "virtio-vsock (--timesync)",
                      strerror(-rc));
            return rc;
        }
        vmm->nr_virtio++;
    }
    return 0;
}

void vm_devices_destroy(struct vmm *vmm)
{
    for (unsigned i = 0; i < vmm->nr_virtio; i++)
        virtio_dev_destroy(vmm->virtio[i]);
    free(vmm->virtio);
    vmm->virtio = NULL;
    vmm->nr_virtio = 0;
}
