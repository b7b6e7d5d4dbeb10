/*
 * The virtio devices of one boot, made from the config in command-line
 * order (so the first virtio-blk is /dev/vda), each on the host side the
 * VM opened once (vmm/backends.h) and on that device's kept I/O thread.
 */
#include "vmm/vm_devices.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/devkind.h"
#include "core/log.h"
#include "virtio/devices.h"
#include "vmm/vm_internal.h"

bool vm_device_supported(enum dev_type type)
{
    const struct dev_kind *k = dev_kind_of(type);
    return k && k->create;
}

static int create_virtio(struct vmm *vmm, struct dev_backend *b, struct virtio_dev **out)
{
    /* The machine of this boot, on the device's kept I/O thread. */
    b->m = vmm->machine;
    b->m.io_loop = b->loop;
    /* No config: the vsock device only --timesync asks for. */
    const struct dev_kind *k = dev_kind_of(b->cfg ? b->cfg->type : DEV_VSOCK);
    return k && k->create ? k->create(&b->m, b, out) : -ENOTSUP;
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

void vm_devices_quiesce(struct vmm *vmm)
{
    for (unsigned i = 0; i < vmm->nr_virtio; i++)
        virtio_dev_quiesce(vmm->virtio[i]);
}

void vm_devices_resume(struct vmm *vmm)
{
    for (unsigned i = 0; i < vmm->nr_virtio; i++)
        virtio_dev_resume(vmm->virtio[i]);
}
