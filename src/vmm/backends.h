/*
 * The host side of every device, opened once when the VM is created and
 * kept until the process ends: disk images with their backing chains,
 * console outputs (log file, stdio, pty), network sockets (inherited fd=
 * sockets duplicated), the vsock muxer with its listening sockets, and each
 * device's I/O thread.
 *
 * Why: a guest reboot rebuilds the machine (vm.c: a fresh KVM VM is the only
 * complete reset), but it must reopen nothing by path. Paths can change
 * under a running VM (a guest that writes the VM's directory through a
 * share can swap a disk image or a log for a symlink to the user's files),
 * inherited descriptors cannot be had again, and the process is confined
 * by then (vmm/sandbox.h): it no longer may open files or make threads for
 * devices. So each rebuilt device borrows its backend and its thread here.
 */
#ifndef KRUNKIT_VMM_BACKENDS_H
#define KRUNKIT_VMM_BACKENDS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "vmm/machine.h"

struct evloop;
struct blk_image;
struct console_host;
struct net_backend;
struct vsock_muxer;
struct fs_share;

/* One virtio device's slot. */
struct dev_backend {
    const struct dev_config *cfg; /* NULL: the vsock device only --timesync asks for */
    struct evloop *loop;          /* the device's I/O thread, parked between boots */
    struct machine m;             /* what the device is made on: the VM's machine + loop */
    struct blk_image *img;        /* DEV_BLK */
    struct console_host *console; /* DEV_SERIAL */
    struct net_backend *net;      /* DEV_NET */
    struct vsock_muxer *vsock;    /* DEV_VSOCK (the first entry) or --timesync */
    struct fs_share *fs;          /* DEV_FS: sharedDir, opened once */
};

struct vm_backends {
    struct dev_backend *dev;
    size_t n;
    struct console_host *com1; /* where COM1 writes: the first log-file or stdio console */
};

/*
 * Open everything cfg's devices use on the host (timesync_port: the
 * --timesync vsock port, or NULL); on failure, -errno after logging why,
 * with nothing left open or created.
 */
int backends_open(const struct vm_config *cfg, const struct dev_vsock *timesync_port,
                  struct vm_backends *b);
/* failed_start: the VM never ran; files this run created are removed too. */
void backends_close(struct vm_backends *b, bool failed_start);

#endif
