/*
 * The virtio devices the VMM can add to a machine (virtio 1.2, section 5),
 * each a device model on the generic virtio core (virtio/virtio.h), placed
 * on the PCI transport (virtio/pci.h), with its own I/O thread (the VM's
 * kept m->io_loop, or one of its own in unit tests).
 *
 * Each create borrows the host side the VM opened once (vmm/backends.h:
 * image, console output, socket, muxer, share), registers a PCI function on
 * m->pci and starts serving; on failure it returns -errno after logging
 * why, and nothing is left behind. Destroying a device leaves its host side
 * open for the next boot.
 */
#ifndef KRUNKIT_VIRTIO_DEVICES_H
#define KRUNKIT_VIRTIO_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "vmm/machine.h"

struct virtio_dev;

/*
 * virtio-blk (5.2) on a raw or qcow2 image the VM opened (block/block.h);
 * the device borrows it: the image outlives guest reboots.
 */
struct blk_image;
int virtio_blk_create(struct machine *m, const struct dev_blk *cfg, struct blk_image *img,
                      struct virtio_dev **out);
/*
 * virtio-net (5.1) on a unixgram or unixstream socket (net/net_backend.h)
 * the VM opened; borrowed, like the image above.
 */
struct net_backend;
int virtio_net_create(struct machine *m, const struct dev_net *cfg, struct net_backend *be,
                      struct virtio_dev **out);
/*
 * virtio-console (5.3), one port (hvc0), on a host side opened once (log
 * file, stdio or a pty) that the VM keeps across guest reboots and that
 * COM1 writes through too.
 */
struct console_host;
int console_host_open(const struct dev_serial *cfg, struct console_host **out);
/* failed_start: also remove a log file this run created (if it is still ours). */
void console_host_close(struct console_host *h, bool failed_start);
/* Output, capped at the log's logFileMaxSize; thread-safe. */
void console_host_write(struct console_host *h, const void *buf, size_t len);
/* The pty a console in pty mode created (for inspection), else NULL. */
const char *console_host_pty_path(const struct console_host *h);
int virtio_console_create(struct machine *m, struct console_host *host, struct virtio_dev **out);
/* virtio-rng (5.4) fed by getrandom(2). */
int virtio_rng_create(struct machine *m, struct virtio_dev **out);
/*
 * virtio-fs (5.11): the mountTag in the configuration space, a FUSE
 * server passing through to sharedDir and confined to it (fs/fuse_server.h).
 * The device borrows share (fs/fs_share.h, opened once from cfg): it keeps
 * a reference while it lives, and destroying it closes only the session's
 * nodeids and handles, never the share's directory.
 */
struct fs_share;
int virtio_fs_create(struct machine *m, const struct dev_fs *cfg, struct fs_share *share,
                     struct virtio_dev **out);
/* virtio-balloon (5.5): inflated pages are given back to the host (MADV_DONTNEED). */
int virtio_balloon_create(struct machine *m, struct virtio_dev **out);

struct virtio_balloon_info {
    uint32_t target_pages; /* 4 KiB pages we asked the guest for */
    uint32_t actual_pages; /* pages the guest says it holds */
    uint64_t pages_freed;  /* pages of guest RAM released so far (inflate + reporting) */
    uint32_t stats_valid;  /* bit per statistics tag (5.5.6.3) present in stats[] */
    uint64_t stats[16];    /* VIRTIO_BALLOON_S_* values, as the guest last sent them */
};
/* Ask the guest to hold `pages` 4 KiB pages in the balloon (config change). */
int virtio_balloon_set_target(struct virtio_dev *dev, uint32_t pages);
int virtio_balloon_info(struct virtio_dev *dev, struct virtio_balloon_info *info);
/* Give the guest its statistics buffer back so it sends fresh numbers; -EAGAIN if none held. */
int virtio_balloon_request_stats(struct virtio_dev *dev);
/*
 * Tests: behave as on a host whose pages are `size` bytes (a power of two,
 * at least 4 KiB) instead of this host's; forgets what the balloon holds.
 */
int virtio_balloon_set_host_page_size(struct virtio_dev *dev, size_t size);

/*
 * virtio-vsock (5.10): one device for every DEV_VSOCK entry of cfg and
 * `extra` (the --timesync port, or NULL). The muxer, with its host
 * sockets, is opened once and kept across guest reboots; the device
 * borrows it, and a device reset closes the guest's connections.
 */
struct vsock_muxer;
int virtio_vsock_muxer_open(const struct vm_config *cfg, const struct dev_vsock *extra,
                            struct vsock_muxer **out);
int virtio_vsock_create(struct machine *m, struct vsock_muxer *mx, struct virtio_dev **out);

/* Stops the device's thread, unregisters it, waits for its host I/O, frees it. */
void virtio_dev_destroy(struct virtio_dev *dev);
/*
 * Machine reset: the device forgets the driver (as a status write of 0),
 * and, not being on a vCPU thread, waits here for host I/O in flight.
 */
void virtio_dev_reset(struct virtio_dev *dev);
/*
 * Pause: once this returns the device writes no guest memory (rings, used
 * entries, buffers) until virtio_dev_resume: its I/O thread is parked and
 * host I/O in flight has been collected (it may wait for the backend). Kicks
 * and backend data arriving meanwhile wait in their fds. Control thread only.
 */
void virtio_dev_quiesce(struct virtio_dev *dev);
void virtio_dev_resume(struct virtio_dev *dev);

#endif
