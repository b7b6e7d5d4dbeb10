/*
 * Opening the devices' host side once (see backends.h). One slot per
 * virtio device, in command-line order; every virtio-vsock option after
 * the first joins the first one's device and gets no slot. What a slot
 * opens and closes is its kind's (core/devkind.h: open, close).
 */
#include "vmm/backends.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/devkind.h"
#include "core/log.h"
#include "vmm/evloop.h"
#include "vmm/fd_budget.h"

/* A slot's kind: its option's, or vsock for the device only --timesync asks for. */
static const struct dev_kind *slot_kind(const struct dev_backend *s)
{
    return dev_kind_of(s->cfg ? s->cfg->type : DEV_VSOCK);
}

static int open_slot(const struct vm_config *cfg, const struct dev_vsock *timesync_port,
                     struct dev_backend *s)
{
    int rc = evloop_create(&s->loop);
    if (rc)
        return rc;
    const struct dev_kind *k = slot_kind(s);
    return k->open ? k->open(cfg, timesync_port, s) : 0;
}

/*
 * Descriptors this configuration may hold besides its shares' (the same
 * items as FD_BUDGET_RESERVE, for these vCPUs and devices; a reboot may hold
 * the old and new machine at once, hence twice).
 */
static unsigned fd_reserve_for(const struct vm_config *cfg)
{
    return 2 * (cfg->cpus + 2) + 2 * 13 * (unsigned)(cfg->n_devices + 1) + 33 + 80 + 64;
}

int backends_open(const struct vm_config *cfg, const struct dev_vsock *timesync_port,
                  struct vm_backends *b)
{
    memset(b, 0, sizeof(*b));
    fd_budget_init_reserve(fd_reserve_for(cfg));
    /* One more for a vsock device that only --timesync asks for. */
    b->dev = calloc(cfg->n_devices + 1, sizeof(*b->dev));
    if (!b->dev)
        return -ENOMEM;
    bool has_vsock = false;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i <= cfg->n_devices; i++) {
        const struct dev_config *d = i < cfg->n_devices ? &cfg->devices[i] : NULL;
        if (d && d->type == DEV_VSOCK && has_vsock)
            continue;
        if (!d && (has_vsock || !timesync_port))
            break;
        has_vsock |= d && d->type == DEV_VSOCK;
        struct dev_backend *s = &b->dev[b->n++];
        s->cfg = d;
        rc = open_slot(cfg, timesync_port, s);
        if (rc)
            log_error("--device %s: cannot open it: %s",
                      d ? dev_type_name(d->type) : "virtio-vsock (--timesync)", strerror(-rc));
        if (rc == 0 && d && d->type == DEV_SERIAL && !b->com1 && d->serial.mode != SERIAL_PTY)
            b->com1 = s->console;
    }
    if (rc)
        backends_close(b, true);
    return rc;
}

void backends_close(struct vm_backends *b, bool failed_start)
{
    for (size_t i = 0; i < b->n; i++) {
        struct dev_backend *s = &b->dev[i];
        /* The thread first: nothing of the device may still run on it. */
        evloop_destroy(s->loop);
        const struct dev_kind *k = slot_kind(s);
        if (k->close)
            k->close(s, failed_start);
    }
    free(b->dev);
    memset(b, 0, sizeof(*b));
}
