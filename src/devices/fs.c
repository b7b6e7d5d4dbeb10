/*
 * --device virtio-fs: a shared host directory (docs/krunkit.1, DEVICES;
 * docs/fs.md), served by virtio/fs.c (virtio 1.2, 5.11) over the share
 * the VM opened once. The descriptor half: options, host checks, JSON,
 * create.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/devopts.h"
#include "cli/validate.h"
#include "fs/fs_share.h"
#include "core/config_json.h"
#include "core/devkind.h"
#include "virtio/devices.h"
#include "vmm/backends.h"

static int parse(const struct optctx *c, struct kvlist *l, struct dev_config *d)
{
    struct dev_fs *f = &d->fs;
    int r = kv_string(c, l, "sharedDir", &f->shared_dir);
    if (r < 0)
        return r;
    if (r == 0)
        return opt_error(c, "virtio-fs needs sharedDir=");
    r = kv_string(c, l, "mountTag", &f->mount_tag);
    if (r < 0)
        return r;
    if (r == 0)
        return opt_error(c, "virtio-fs needs mountTag=");
    if (strlen(f->mount_tag) > VIRTIO_FS_TAG_MAX)
        return opt_error(c, "mountTag \"%s\" is longer than %d bytes", f->mount_tag,
                         VIRTIO_FS_TAG_MAX);
    r = kv_bool(c, l, "allowSetuid", &f->allow_setuid);
    return r < 0 ? r : 0;
}

static int conflicts(const struct optctx *c, const struct dev_config *o, const struct dev_config *d)
{
    if (!strcmp(o->fs.mount_tag, d->fs.mount_tag))
        return opt_error(c, "mountTag \"%s\" is already used by another virtio-fs device",
                         d->fs.mount_tag);
    return 0;
}

static int validate(const struct dev_config *d, char *err, size_t errlen)
{
    struct stat st;
    if (stat(d->fs.shared_dir, &st) < 0) {
        int e = errno;
        return cli_fail(err, errlen, e, "--device virtio-fs sharedDir \"%s\": %s", d->fs.shared_dir,
                        strerror(e));
    }
    if (!S_ISDIR(st.st_mode))
        return cli_fail(err, errlen, ENOTDIR,
                        "--device virtio-fs sharedDir \"%s\": not a directory", d->fs.shared_dir);
    return 0;
}

static void to_json(struct jbuild *b, json_t *o, const struct dev_config *d)
{
    jset(b, o, "sharedDir", jstr(d->fs.shared_dir));
    jset(b, o, "mountTag", jstr(d->fs.mount_tag));
    jset(b, o, "allowSetuid", json_boolean(d->fs.allow_setuid));
}

static void free_cfg(struct dev_config *d)
{
    free(d->fs.shared_dir);
    free(d->fs.mount_tag);
}

static int open_host(const struct vm_config *cfg, const struct dev_vsock *timesync_port,
                     struct dev_backend *b)
{
    (void)cfg, (void)timesync_port;
    return fs_share_open(&b->cfg->fs, &b->fs);
}

static void close_host(struct dev_backend *b, bool failed_start)
{
    (void)failed_start;
    if (b->fs)
        fs_share_close(b->fs);
    b->fs = NULL;
}

static int create(struct machine *m, struct dev_backend *b, struct virtio_dev **out)
{
    return virtio_fs_create(m, &b->cfg->fs, b->fs, out);
}

const struct dev_kind dev_kind_fs = {
    .name = "virtio-fs",
    .type = DEV_FS,
    .parse = parse,
    .conflicts = conflicts,
    .validate = validate,
    .to_json = to_json,
    .free = free_cfg,
    .open = open_host,
    .close = close_host,
    .create = create,
};
