/*
 * --device virtio-blk: a disk (docs/krunkit.1, DEVICES), on the image the
 * VM opened once (block/block.h), served by virtio/blk.c (virtio 1.2, 5.2).
 * The descriptor half of the device: options, host checks, JSON, create.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "cli/devopts.h"
#include "cli/validate.h"
#include "core/config_json.h"
#include "core/devkind.h"
#include "virtio/devices.h"
#include "vmm/backends.h"

static int parse(const struct optctx *c, struct kvlist *l, struct dev_config *d)
{
    struct dev_blk *b = &d->blk;
    int r = kv_string(c, l, "path", &b->path);
    if (r < 0)
        return r;
    if (r == 0)
        return opt_error(c, "virtio-blk needs path=");
    char *fmt = NULL;
    r = kv_string(c, l, "format", &fmt);
    if (r < 0)
        return r;
    b->format = BLK_FMT_RAW;
    if (r == 1) {
        if (!strcmp(fmt, "qcow2")) {
            b->format = BLK_FMT_QCOW2;
        } else if (strcmp(fmt, "raw")) {
            r = opt_error(c, "unknown format \"%s\" (expected raw or qcow2)", fmt);
            free(fmt);
            return r;
        }
        free(fmt);
    }
    r = kv_string(c, l, "deviceId", &b->device_id);
    if (r < 0)
        return r;
    if (b->device_id && strlen(b->device_id) > VIRTIO_BLK_ID_MAX)
        return opt_error(c, "deviceId \"%s\" is longer than %d bytes", b->device_id,
                         VIRTIO_BLK_ID_MAX);
    r = kv_bool(c, l, "readonly", &b->readonly);
    if (r < 0)
        return r;
    r = kv_bool(c, l, "allowBackingOutside", &b->allow_backing_outside);
    return r < 0 ? r : 0;
}

static int validate(const struct dev_config *d, char *err, size_t errlen)
{
    return cli_check_openable("--device virtio-blk path", d->blk.path,
                              d->blk.readonly ? O_RDONLY : O_RDWR, false, err, errlen);
}

static void to_json(struct jbuild *b, json_t *o, const struct dev_config *d)
{
    jset(b, o, "path", jstr(d->blk.path));
    jset(b, o, "format", json_string(d->blk.format == BLK_FMT_QCOW2 ? "qcow2" : "raw"));
    jset(b, o, "deviceId", jstr(d->blk.device_id));
    jset(b, o, "readonly", json_boolean(d->blk.readonly));
    jset(b, o, "allowBackingOutside", json_boolean(d->blk.allow_backing_outside));
}

static void free_cfg(struct dev_config *d)
{
    free(d->blk.path);
    free(d->blk.device_id);
}

static int open_host(const struct vm_config *cfg, const struct dev_vsock *timesync_port,
                     struct dev_backend *b)
{
    (void)cfg, (void)timesync_port;
    const struct dev_blk *d = &b->cfg->blk;
    struct blk_open_opts opts = {.allow_backing_outside = d->allow_backing_outside};
    return blk_open(d->path, d->format, d->readonly, &opts, &b->img);
}

static void close_host(struct dev_backend *b, bool failed_start)
{
    (void)failed_start;
    if (b->img)
        blk_close(b->img);
    b->img = NULL;
}

static int create(struct machine *m, struct dev_backend *b, struct virtio_dev **out)
{
    return virtio_blk_create(m, &b->cfg->blk, b->img, out);
}

const struct dev_kind dev_kind_blk = {
    .name = "virtio-blk",
    .type = DEV_BLK,
    .parse = parse,
    .validate = validate,
    .to_json = to_json,
    .free = free_cfg,
    .open = open_host,
    .close = close_host,
    .create = create,
};
