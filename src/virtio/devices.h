/*
 * The virtio devices the VMM can add to a machine (virtio 1.2, section 5),
 * each on the PCI transport (virtio/pci.h) with its own I/O thread.
 *
 * Each create opens the device's backend, registers a PCI function on
 * m->pci and starts serving; on failure it returns -errno after logging
 * why, and nothing is left behind.
 */
#ifndef KRUNKIT_VIRTIO_DEVICES_H
#define KRUNKIT_VIRTIO_DEVICES_H

#include "cli/config.h"
#include "vmm/machine.h"

struct virtio_dev;

/* virtio-blk (5.2) on a raw or qcow2 image. */
int virtio_blk_create(struct machine *m, const struct dev_blk *cfg, struct virtio_dev **out);
/* virtio-console (5.3), one port (hvc0): log file, stdio or a pty. */
int virtio_console_create(struct machine *m, const struct dev_serial *cfg, struct virtio_dev **out);
/* The pty a console in pty mode created (for inspection), else NULL. */
const char *virtio_console_pty_path(const struct virtio_dev *dev);
/* virtio-rng (5.4) fed by getrandom(2). */
int virtio_rng_create(struct machine *m, struct virtio_dev **out);
/* virtio-balloon (5.5): inflated pages are punched out of the guest memfd. */
int virtio_balloon_create(struct machine *m, struct virtio_dev **out);

/* Stops the device's thread, unregisters it, closes its backend, frees it. */
void virtio_dev_destroy(struct virtio_dev *dev);
/* Machine reset: the device forgets the driver (as a status write of 0). */
void virtio_dev_reset(struct virtio_dev *dev);

#endif
