/*
 * --device virtio-net: a network card on a unix socket (docs/krunkit.1,
 * DEVICES; docs/net.md), served by virtio/net.c (virtio 1.2, 5.1) over
 * net/net_backend.h. The descriptor half: options, host checks, JSON, create.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/devopts.h"
#include "cli/validate.h"
#include "core/config_json.h"
#include "core/devkind.h"
#include "net/net_backend.h"
#include "virtio/devices.h"
#include "vmm/backends.h"

static int parse(const struct optctx *c, struct kvlist *l, struct dev_config *d)
{
    struct dev_net *n = &d->net;
    char *usp = NULL, *type = NULL, *mac = NULL;
    uint32_t fd = 0;
    bool nat = false, off = false, magic = false;
    int r_usp, r_type, r_path, r_fd, r_nat, r_mac, r_off, r_magic, r = 0;

    n->fd = -1;
    if ((r_usp = kv_string(c, l, "unixSocketPath", &usp)) < 0 ||
        (r_type = kv_string(c, l, "type", &type)) < 0 ||
        (r_path = kv_string(c, l, "path", &n->path)) < 0 ||
        (r_fd = kv_u32(c, l, "fd", 0, INT_MAX, &fd)) < 0 ||
        (r_nat = kv_bool(c, l, "nat", &nat)) < 0 || (r_mac = kv_string(c, l, "mac", &mac)) < 0 ||
        (r_off = kv_bool(c, l, "offloading", &off)) < 0 ||
        (r_magic = kv_bool(c, l, "vfkitMagic", &magic)) < 0) {
        r = -EINVAL;
        goto out;
    }
    if (r_mac == 1) {
        if (parse_mac(mac, n->mac) < 0) {
            r = opt_error(c, "invalid mac \"%s\" (expected xx:xx:xx:xx:xx:xx)", mac);
            goto out;
        }
        n->mac_set = true;
    }
    if (r_nat == 1 && nat) {
        if (r_usp || r_type || r_path || r_fd) {
            r = opt_error(c, "nat cannot be combined with unixSocketPath, type, path or fd");
            goto out;
        }
        if (r_off || r_magic) {
            r = opt_error(c, "offloading and vfkitMagic need a socket backend, not nat");
            goto out;
        }
        n->type = NET_NAT;
    } else if (r_usp == 1) {
        if (r_type || r_path || r_fd) {
            r = opt_error(c, "unixSocketPath cannot be combined with type, path or fd");
            goto out;
        }
        /* vfkit's form: gvproxy in vfkit mode, so offloading and magic by default. */
        n->type = NET_UNIXGRAM;
        n->unix_socket_path_form = true;
        n->path = usp;
        usp = NULL;
        n->offloading = r_off ? off : true;
        n->vfkit_magic = r_magic ? magic : true;
    } else if (r_type == 1) {
        if (!strcmp(type, "unixgram")) {
            n->type = NET_UNIXGRAM;
        } else if (!strcmp(type, "unixstream")) {
            n->type = NET_UNIXSTREAM;
        } else {
            r = opt_error(c, "unknown type \"%s\" (expected unixgram or unixstream)", type);
            goto out;
        }
        if (r_path && r_fd) {
            r = opt_error(c, "path and fd are mutually exclusive");
            goto out;
        }
        if (!r_path && !r_fd) {
            r = opt_error(c, "type=%s needs path= or fd=", type);
            goto out;
        }
        if (r_fd)
            n->fd = (int)fd;
        n->offloading = r_off ? off : false;
        n->vfkit_magic = r_magic ? magic : false;
        if (n->vfkit_magic && n->type != NET_UNIXGRAM) {
            r = opt_error(c, "vfkitMagic is only supported with type=unixgram");
            goto out;
        }
    } else if (r_fd == 1) {
        /* vfkit's fd=N form: an inherited datagram socket. */
        if (r_path) {
            r = opt_error(c, "path and fd are mutually exclusive");
            goto out;
        }
        n->type = NET_UNIXGRAM;
        n->fd = (int)fd;
        n->offloading = r_off ? off : false;
        n->vfkit_magic = r_magic ? magic : false;
    } else if (r_path == 1) {
        r = opt_error(c, "path= needs type=unixgram or type=unixstream");
        goto out;
    } else {
        r = opt_error(c, "virtio-net needs unixSocketPath=, type=unixgram|unixstream, fd= or nat");
        goto out;
    }
    if (n->path)
        r = opt_check_socket_path(c, n->unix_socket_path_form ? "unixSocketPath" : "path", n->path);
out:
    free(usp);
    free(type);
    free(mac);
    return r;
}

static int check_inherited_fd(int fd, char *err, size_t errlen)
{
    if (fcntl(fd, F_GETFD) < 0)
        return cli_fail(err, errlen, EBADF,
                        "--device virtio-net fd=%d: not an open file descriptor", fd);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return cli_fail(err, errlen, ENOTSOCK, "--device virtio-net fd=%d: not a socket", fd);
    return 0;
}

static int validate(const struct dev_config *d, char *err, size_t errlen)
{
    const struct dev_net *n = &d->net;
    if (n->mac_set) {
        char mac[18];
        snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1], n->mac[2],
                 n->mac[3], n->mac[4], n->mac[5]);
        if (n->mac[0] & 1)
            return cli_fail(err, errlen, EINVAL,
                            "--device virtio-net mac=%s: a multicast address cannot be a NIC's "
                            "address (the first octet must be even)",
                            mac);
        static const uint8_t zero[6];
        if (!memcmp(n->mac, zero, sizeof(zero)))
            return cli_fail(err, errlen, EINVAL, "--device virtio-net mac=%s: all-zero address",
                            mac);
    }
    if (n->type != NET_NAT && n->fd >= 0)
        return check_inherited_fd(n->fd, err, errlen);
    if (n->path) {
        /* The peer (gvproxy, passt, ...) is started first and owns the socket. */
        const char *what = n->unix_socket_path_form ? "unixSocketPath" : "path";
        struct stat st;
        if (stat(n->path, &st) < 0) {
            int e = errno;
            return cli_fail(err, errlen, e, "--device virtio-net %s=%s: %s", what, n->path,
                            strerror(e));
        }
        if (!S_ISSOCK(st.st_mode))
            return cli_fail(err, errlen, ENOTSOCK, "--device virtio-net %s=%s: not a socket", what,
                            n->path);
    }
    return 0;
}

static const char *net_type_name(enum net_type t)
{
    switch (t) {
    case NET_UNIXGRAM:
        return "unixgram";
    case NET_UNIXSTREAM:
        return "unixstream";
    case NET_NAT:
        return "nat";
    }
    return "unknown";
}

static void to_json(struct jbuild *b, json_t *o, const struct dev_config *d)
{
    const struct dev_net *n = &d->net;
    jset(b, o, "type", json_string(net_type_name(n->type)));
    if (n->unix_socket_path_form)
        jset(b, o, "unixSocketPath", jstr(n->path));
    else if (n->path)
        jset(b, o, "path", jstr(n->path));
    else if (n->fd >= 0)
        jset(b, o, "fd", json_integer(n->fd));
    if (n->mac_set) {
        char mac[18];
        snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1], n->mac[2],
                 n->mac[3], n->mac[4], n->mac[5]);
        jset(b, o, "mac", json_string(mac));
    } else {
        jset(b, o, "mac", json_null());
    }
    jset(b, o, "offloading", json_boolean(n->offloading));
    jset(b, o, "vfkitMagic", json_boolean(n->vfkit_magic));
}

static void free_cfg(struct dev_config *d)
{
    free(d->net.path);
}

static int open_host(const struct vm_config *cfg, const struct dev_vsock *timesync_port,
                     struct dev_backend *b)
{
    (void)cfg, (void)timesync_port;
    return net_backend_open(&b->cfg->net, &b->net);
}

static void close_host(struct dev_backend *b, bool failed_start)
{
    (void)failed_start;
    net_backend_close(b->net);
    b->net = NULL;
}

static int create(struct machine *m, struct dev_backend *b, struct virtio_dev **out)
{
    return virtio_net_create(m, &b->cfg->net, b->net, out);
}

const struct dev_kind dev_kind_net = {
    .name = "virtio-net",
    .type = DEV_NET,
    .parse = parse,
    .validate = validate,
    .to_json = to_json,
    .free = free_cfg,
    .open = open_host,
    .close = close_host,
    .create = create,
};
