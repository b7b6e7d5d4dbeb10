/*
 * A virtio-fs share's host state, apart from the device: the sharedDir
 * and /proc/self/fd directory fds, opened once by path, and the share's
 * policy (allowSetuid). A guest reboot destroys and rebuilds the device
 * (and with it the FUSE server's nodeids and handles: a new boot starts
 * with FUSE_INIT) but must reopen nothing by path, so the share outlives
 * the devices made on it. After fs_share_open nothing in src/fs opens an
 * absolute path or one relative to the working directory: every open is
 * relative to one of these two fds or to an fd reached from them.
 *
 * A share is reference counted: fs_share_open gives the caller one
 * reference, every FUSE server made on it holds another, and
 * fs_share_close drops one; the fds are closed with the last.
 */
#ifndef KRUNKIT_FS_FS_SHARE_H
#define KRUNKIT_FS_FS_SHARE_H

#include <stdatomic.h>
#include <stdbool.h>

#include "core/config.h"

/*
 * Descriptors a share draws from the process budget (vmm/fd_budget.h)
 * when it is opened, beside one per nodeid and open handle: its two
 * directory fds, and fds a request holds for a moment before they are
 * counted or closed (a lookup's fd before it is found to be known
 * already, CREATE's and truncation's reopened fds).
 */
#define FS_SHARE_FIXED_FDS 8

struct fs_share {
    int root_fd;      /* O_PATH | O_DIRECTORY on sharedDir */
    int proc_fd;      /* O_PATH on /proc/self/fd, to reopen O_PATH fds */
    bool allow_setid; /* allowSetuid: keep setuid/setgid bits the guest sets */
    atomic_uint refs;
    char *dir; /* sharedDir as given, for messages only, never opened again */
};

/* Open cfg->shared_dir (it must be a directory) once; -errno after logging why. */
int fs_share_open(const struct dev_fs *cfg, struct fs_share **out);
/* Another reference (a FUSE server borrowing the share). */
struct fs_share *fs_share_ref(struct fs_share *share);
/* Drop one reference; the last closes the fds. NULL is ignored. */
void fs_share_close(struct fs_share *share);

#endif
