/*
 * --device virtio-vsock: one guest vsock port joined to a host unix socket
 * (docs/krunkit.1, DEVICES; docs/vsock.md). Every such option, and
 * --timesync's port, shares one device (virtio/vsock.c, virtio 1.2, 5.10)
 * over the connection muxer. The descriptor half: options, host checks,
 * JSON, create.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/devopts.h"
#include "cli/validate.h"
#include "core/config_json.h"
#include "core/devkind.h"
#include "virtio/devices.h"
#include "vmm/backends.h"
#include "vsock/muxer.h"

static int parse(const struct optctx *c, struct kvlist *l, struct dev_config *d)
{
    struct dev_vsock *v = &d->vsock;
    bool listen = false, connect = false;
    int r = kv_u32(c, l, "port", 0, VSOCK_PORT_MAX, &v->port);
    if (r < 0)
        return r;
    if (r == 0)
        return opt_error(c, "virtio-vsock needs port=");
    r = kv_string(c, l, "socketURL", &v->socket_url);
    if (r < 0)
        return r;
    if (r == 0)
        return opt_error(c, "virtio-vsock needs socketURL=");
    r = opt_check_socket_path(c, "socketURL", v->socket_url);
    if (r < 0)
        return r;
    int rl = kv_bool(c, l, "listen", &listen);
    if (rl < 0)
        return rl;
    int rc = kv_bool(c, l, "connect", &connect);
    if (rc < 0)
        return rc;
    if (rl && rc)
        return opt_error(c, "listen and connect are mutually exclusive");
    v->listen = rc ? !connect : rl ? listen : true;
    return 0;
}

static int conflicts(const struct optctx *c, const struct dev_config *o, const struct dev_config *d)
{
    if (o->vsock.port == d->vsock.port)
        return opt_error(c, "vsock port %u is already used by another virtio-vsock device",
                         d->vsock.port);
    return 0;
}

static int validate(const struct dev_config *d, char *err, size_t errlen)
{
    /*
     * connect: we create the socket and take host connections on it.
     * listen: we connect to it for each guest connection; it belongs
     * to another program (podman's ready socket) and may appear later.
     */
    if (!d->vsock.listen)
        return cli_check_socket_to_bind("--device virtio-vsock socketURL", d->vsock.socket_url, err,
                                        errlen);
    return 0;
}

static void to_json(struct jbuild *b, json_t *o, const struct dev_config *d)
{
    jset(b, o, "port", json_integer(d->vsock.port));
    jset(b, o, "socketURL", jstr(d->vsock.socket_url));
    jset(b, o, "listen", json_boolean(d->vsock.listen));
}

static void free_cfg(struct dev_config *d)
{
    free(d->vsock.socket_url);
}

/* b->cfg is NULL for the device only --timesync asks for: the muxer is all it needs. */
/* One muxer for every virtio-vsock option and the --timesync port (b->cfg NULL then). */
static int open_host(const struct vm_config *cfg, const struct dev_vsock *timesync_port,
                     struct dev_backend *b)
{
    return virtio_vsock_muxer_open(cfg, timesync_port, &b->vsock);
}

static void close_host(struct dev_backend *b, bool failed_start)
{
    (void)failed_start;
    if (b->vsock)
        vsock_muxer_destroy(b->vsock);
    b->vsock = NULL;
}

static int create(struct machine *m, struct dev_backend *b, struct virtio_dev **out)
{
    return virtio_vsock_create(m, b->vsock, out);
}

const struct dev_kind dev_kind_vsock = {
    .name = "virtio-vsock",
    .type = DEV_VSOCK,
    .parse = parse,
    .conflicts = conflicts,
    .validate = validate,
    .to_json = to_json,
    .free = free_cfg,
    .open = open_host,
    .close = close_host,
    .create = create,
};
