/*
 * Opening a virtio-fs share once (see fs_share.h). sharedDir is followed
 * as the user wrote it, symlinks included: it is the user's own path,
 * resolved once here; what the guest names later never is.
 */
#include "fs/fs_share.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/fd_budget.h"

int fs_share_open(const struct dev_fs *cfg, struct fs_share **out)
{
    fd_budget_init();
    if (!fd_budget_acquire(FS_SHARE_FIXED_FDS)) {
        log_error("--device virtio-fs sharedDir \"%s\": no descriptors left for another share "
                  "(%llu for all shares; raise ulimit -Hn)",
                  cfg->shared_dir, (unsigned long long)fd_budget_pool());
        return -EMFILE;
    }
    struct fs_share *sh = calloc(1, sizeof(*sh));
    int err = -ENOMEM;
    if (!sh || !(sh->dir = strdup(cfg->shared_dir)))
        goto fail;
    sh->root_fd = sh->proc_fd = -1;
    sh->allow_setid = cfg->allow_setuid;
    atomic_init(&sh->refs, 1);
    sh->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (sh->proc_fd < 0) {
        err = -errno;
        log_error("virtio-fs: /proc/self/fd: %m (needed to reopen files in the share)");
        goto fail;
    }
    sh->root_fd = open(cfg->shared_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (sh->root_fd < 0) {
        err = -errno;
        log_error("--device virtio-fs sharedDir \"%s\": %m", cfg->shared_dir);
        goto fail;
    }
    *out = sh;
    return 0;
fail:
    if (sh) {
        if (sh->proc_fd >= 0)
            close(sh->proc_fd);
        free(sh->dir);
        free(sh);
    }
    fd_budget_release(FS_SHARE_FIXED_FDS);
    return err;
}

struct fs_share *fs_share_ref(struct fs_share *share)
{
    atomic_fetch_add(&share->refs, 1);
    return share;
}

void fs_share_close(struct fs_share *share)
{
    if (!share || atomic_fetch_sub(&share->refs, 1) != 1)
        return;
    close(share->root_fd);
    close(share->proc_fd);
    free(share->dir);
    free(share);
    fd_budget_release(FS_SHARE_FIXED_FDS);
}
