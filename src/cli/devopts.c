/*
 * Option value grammar (see devopts.h) and the --device, --bootloader and
 * --timesync values built on it, following krunkit's docs/usage.md and
 * vfkit's device syntax (docs/krunkit.1, "DEVICES").
 */
#include "cli/devopts.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

int opt_error(const struct optctx *c, const char *fmt, ...)
{
    int n = snprintf(c->err, c->errlen, "%s \"%s\": ", c->opt, c->arg);
    if (n >= 0 && (size_t)n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static int oom(const struct optctx *c)
{
    snprintf(c->err, c->errlen, "%s: out of memory", c->opt);
    return -ENOMEM;
}

size_t sun_path_max(void)
{
    return sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
}

int parse_u64(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return -EINVAL;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int parse_bool(const char *s, bool *out)
{
    if (!strcmp(s, "true") || !strcmp(s, "on")) {
        *out = true;
        return 0;
    }
    if (!strcmp(s, "false") || !strcmp(s, "off")) {
        *out = false;
        return 0;
    }
    return -EINVAL;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int parse_mac(const char *s, uint8_t mac[6])
{
    if (strlen(s) != 17)
        return -EINVAL;
    for (int i = 0; i < 6; i++) {
        const char *p = s + 3 * i;
        int hi = hexval(p[0]), lo = hexval(p[1]);
        if (hi < 0 || lo < 0 || (i < 5 && p[2] != ':'))
            return -EINVAL;
        mac[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void kvlist_free(struct kvlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].key);
        free(l->items[i].value);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* Copies one value, removing quotes, from *pp up to the next unquoted comma. */
static int parse_value(const struct optctx *c, const char **pp, const char *key, char **out)
{
    const char *p = *pp;
    char *buf = malloc(strlen(p) + 1);
    if (!buf)
        return oom(c);
    size_t n = 0;
    while (*p && *p != ',') {
        if (*p == '"' || *p == '\'') {
            char q = *p++;
            while (*p && *p != q) {
                if (q == '"' && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
                    p++;
                buf[n++] = *p++;
            }
            if (!*p) {
                free(buf);
                return opt_error(c, "unterminated quote in the value of %s", key);
            }
            p++;
        } else {
            buf[n++] = *p++;
        }
    }
    buf[n] = '\0';
    if (n == 0) {
        free(buf);
        return opt_error(c, "empty value for %s", key);
    }
    *pp = p;
    *out = buf;
    return 0;
}

int kvlist_parse(const struct optctx *c, const char *s, const char *rest_key, struct kvlist *out)
{
    out->items = NULL;
    out->n = 0;
    if (!*s)
        return opt_error(c, "empty value");
    const char *p = s;
    for (;;) {
        const char *ks = p;
        while (*p && *p != '=' && *p != ',') {
            if (*p == '"' || *p == '\'') {
                kvlist_free(out);
                return opt_error(c, "quote in a key name");
            }
            p++;
        }
        size_t klen = (size_t)(p - ks);
        if (klen == 0) {
            kvlist_free(out);
            return *p == '=' ? opt_error(c, "empty key name") : opt_error(c, "empty item");
        }
        char *key = strndup(ks, klen);
        if (!key) {
            kvlist_free(out);
            return oom(c);
        }
        for (size_t i = 0; i < out->n; i++) {
            if (!strcmp(out->items[i].key, key)) {
                int r = opt_error(c, "%s given twice", key);
                free(key);
                kvlist_free(out);
                return r;
            }
        }
        char *value = NULL;
        if (*p == '=') {
            p++;
            int r;
            if (rest_key && !strcmp(key, rest_key) && *p && *p != '"' && *p != '\'') {
                value = strdup(p);
                r = value ? 0 : oom(c);
                p += strlen(p);
            } else {
                r = parse_value(c, &p, key, &value);
            }
            if (r < 0) {
                free(key);
                kvlist_free(out);
                return r;
            }
        }
        struct kvitem *items = realloc(out->items, (out->n + 1) * sizeof(*items));
        if (!items) {
            free(key);
            free(value);
            kvlist_free(out);
            return oom(c);
        }
        out->items = items;
        out->items[out->n++] = (struct kvitem){.key = key, .value = value};
        if (*p == ',') {
            p++;
            continue;
        }
        return 0;
    }
}

static struct kvitem *kv_find(struct kvlist *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!strcmp(l->items[i].key, key)) {
            l->items[i].used = true;
            return &l->items[i];
        }
    }
    return NULL;
}

int kv_string(const struct optctx *c, struct kvlist *l, const char *key, char **out)
{
    struct kvitem *it = kv_find(l, key);
    if (!it)
        return 0;
    if (!it->value)
        return opt_error(c, "%s needs a value (%s=...)", key, key);
    char *s = strdup(it->value);
    if (!s)
        return oom(c);
    free(*out);
    *out = s;
    return 1;
}

int kv_bool(const struct optctx *c, struct kvlist *l, const char *key, bool *out)
{
    struct kvitem *it = kv_find(l, key);
    if (!it)
        return 0;
    if (!it->value) {
        *out = true;
        return 1;
    }
    if (parse_bool(it->value, out) < 0)
        return opt_error(c, "invalid value %s=%s (expected true, false, on or off)", key,
                         it->value);
    return 1;
}

int kv_u32(const struct optctx *c, struct kvlist *l, const char *key, uint32_t min, uint32_t max,
           uint32_t *out)
{
    struct kvitem *it = kv_find(l, key);
    if (!it)
        return 0;
    if (!it->value)
        return opt_error(c, "%s needs a value (%s=N)", key, key);
    uint64_t v;
    int r = parse_u64(it->value, &v);
    if (r == -EINVAL)
        return opt_error(c, "invalid number %s=%s", key, it->value);
    if (r < 0 || v < min || v > max)
        return opt_error(c, "%s=%s is out of range (%u..%u)", key, it->value, min, max);
    *out = (uint32_t)v;
    return 1;
}

int kv_reject_unused(const struct optctx *c, const struct kvlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!l->items[i].used)
            return opt_error(c, "unknown key \"%s\"", l->items[i].key);
    }
    return 0;
}

static int check_socket_path(const struct optctx *c, const char *key, const char *path)
{
    if (strlen(path) > sun_path_max())
        return opt_error(c, "%s is longer than %zu bytes and does not fit a UNIX socket address",
                         key, sun_path_max());
    return 0;
}

static int parse_blk(const struct optctx *c, struct kvlist *l, struct dev_blk *b)
{
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

static int parse_net(const struct optctx *c, struct kvlist *l, struct dev_net *n)
{
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
        r = check_socket_path(c, n->unix_socket_path_form ? "unixSocketPath" : "path", n->path);
out:
    free(usp);
    free(type);
    free(mac);
    return r;
}

static int parse_serial(const struct optctx *c, struct kvlist *l, struct dev_serial *s)
{
    bool stdio = false, pty = false;
    int r1 = kv_string(c, l, "logFilePath", &s->log_file_path);
    if (r1 < 0)
        return r1;
    int r2 = kv_bool(c, l, "stdio", &stdio);
    if (r2 < 0)
        return r2;
    int r3 = kv_bool(c, l, "pty", &pty);
    if (r3 < 0)
        return r3;
    if (r1 + stdio + pty != 1)
        return opt_error(c, "virtio-serial needs exactly one of logFilePath=, stdio or pty");
    s->mode = r1 ? SERIAL_LOGFILE : stdio ? SERIAL_STDIO : SERIAL_PTY;
    s->log_max_bytes = SERIAL_LOG_MAX_DEFAULT;
    struct kvitem *cap = kv_find(l, "logFileMaxSize");
    if (cap) {
        cap->used = true;
        if (!r1)
            return opt_error(c, "logFileMaxSize= applies to logFilePath= only");
        if (!cap->value || parse_u64(cap->value, &s->log_max_bytes) < 0)
            return opt_error(c,
                             "invalid logFileMaxSize=%s (expected a size in bytes, 0 for no "
                             "limit)",
                             cap->value ? cap->value : "");
    }
    return 0;
}

static int parse_vsock(const struct optctx *c, struct kvlist *l, struct dev_vsock *v)
{
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
    r = check_socket_path(c, "socketURL", v->socket_url);
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

static int parse_fs(const struct optctx *c, struct kvlist *l, struct dev_fs *f)
{
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

static int parse_gpu(const struct optctx *c, struct kvlist *l, struct dev_gpu *g)
{
    g->width = 800;
    g->height = 600;
    int r = kv_u32(c, l, "width", 1, 16384, &g->width);
    if (r < 0)
        return r;
    r = kv_u32(c, l, "height", 1, 16384, &g->height);
    return r < 0 ? r : 0;
}

static int parse_input(const struct optctx *c, struct kvlist *l, struct dev_input *in)
{
    bool kbd = false, ptr = false;
    int r = kv_bool(c, l, "keyboard", &kbd);
    if (r < 0)
        return r;
    r = kv_bool(c, l, "pointing", &ptr);
    if (r < 0)
        return r;
    if (kbd + ptr != 1)
        return opt_error(c, "virtio-input needs exactly one of keyboard or pointing");
    in->kind = kbd ? INPUT_KEYBOARD : INPUT_POINTING;
    return 0;
}

static const struct {
    const char *name;
    enum dev_type type;
} dev_names[] = {
    {"virtio-blk", DEV_BLK},         {"virtio-net", DEV_NET}, {"virtio-serial", DEV_SERIAL},
    {"virtio-vsock", DEV_VSOCK},     {"virtio-fs", DEV_FS},   {"virtio-rng", DEV_RNG},
    {"virtio-balloon", DEV_BALLOON}, {"virtio-gpu", DEV_GPU}, {"virtio-input", DEV_INPUT},
};

/* Uniqueness across devices: vsock ports, virtio-fs tags, one stdio console. */
static int check_against_others(const struct optctx *c, const struct vm_config *cfg,
                                const struct dev_config *d)
{
    for (size_t i = 0; i < cfg->n_devices; i++) {
        const struct dev_config *o = &cfg->devices[i];
        if (o->type != d->type)
            continue;
        if (d->type == DEV_VSOCK && o->vsock.port == d->vsock.port)
            return opt_error(c, "vsock port %u is already used by another virtio-vsock device",
                             d->vsock.port);
        if (d->type == DEV_FS && !strcmp(o->fs.mount_tag, d->fs.mount_tag))
            return opt_error(c, "mountTag \"%s\" is already used by another virtio-fs device",
                             d->fs.mount_tag);
        if (d->type == DEV_SERIAL && d->serial.mode == SERIAL_STDIO &&
            o->serial.mode == SERIAL_STDIO)
            return opt_error(c, "only one virtio-serial device can use stdio");
    }
    return 0;
}

int parse_device(const char *value, struct vm_config *cfg, char *err, size_t errlen)
{
    struct optctx c = {.opt = "--device", .arg = value, .err = err, .errlen = errlen};
    struct kvlist l;
    if (cfg->n_devices >= CLI_MAX_DEVICES)
        return opt_error(&c, "too many devices (at most %d)", CLI_MAX_DEVICES);
    int r = kvlist_parse(&c, value, NULL, &l);
    if (r < 0)
        return r;
    struct dev_config d;
    memset(&d, 0, sizeof(d));
    const char *name = l.items[0].key;
    size_t i;
    for (i = 0; i < sizeof(dev_names) / sizeof(dev_names[0]); i++) {
        if (!strcmp(dev_names[i].name, name))
            break;
    }
    if (l.items[0].value || i == sizeof(dev_names) / sizeof(dev_names[0])) {
        r = opt_error(&c,
                      "unknown device type \"%s\" (expected virtio-blk, virtio-net, "
                      "virtio-serial, virtio-vsock, virtio-fs, virtio-rng, virtio-balloon, "
                      "virtio-gpu or virtio-input)",
                      name);
        goto fail;
    }
    l.items[0].used = true;
    d.type = dev_names[i].type;
    switch (d.type) {
    case DEV_BLK:
        r = parse_blk(&c, &l, &d.blk);
        break;
    case DEV_NET:
        r = parse_net(&c, &l, &d.net);
        break;
    case DEV_SERIAL:
        r = parse_serial(&c, &l, &d.serial);
        break;
    case DEV_VSOCK:
        r = parse_vsock(&c, &l, &d.vsock);
        break;
    case DEV_FS:
        r = parse_fs(&c, &l, &d.fs);
        break;
    case DEV_GPU:
        r = parse_gpu(&c, &l, &d.gpu);
        break;
    case DEV_INPUT:
        r = parse_input(&c, &l, &d.input);
        break;
    case DEV_RNG:
    case DEV_BALLOON:
        r = 0;
        break;
    }
    if (r < 0)
        goto fail;
    r = kv_reject_unused(&c, &l);
    if (r < 0)
        goto fail;
    r = check_against_others(&c, cfg, &d);
    if (r < 0)
        goto fail;
    struct dev_config *devs = realloc(cfg->devices, (cfg->n_devices + 1) * sizeof(*devs));
    if (!devs) {
        r = oom(&c);
        goto fail;
    }
    cfg->devices = devs;
    cfg->devices[cfg->n_devices++] = d;
    kvlist_free(&l);
    return 0;
fail:
    dev_config_free(&d);
    kvlist_free(&l);
    return r;
}

int parse_bootloader(const char *value, struct vm_config *cfg, char *err, size_t errlen)
{
    struct optctx c = {.opt = "--bootloader", .arg = value, .err = err, .errlen = errlen};
    struct kvlist l;
    struct boot_config b = {.kind = BOOT_DEFAULT};
    int r = kvlist_parse(&c, value, "cmdline", &l);
    if (r < 0)
        return r;
    const char *kind = l.items[0].key;
    l.items[0].used = true;
    if (!l.items[0].value && !strcmp(kind, "efi")) {
        b.kind = BOOT_EFI;
        r = kv_string(&c, &l, "variable-store", &b.variable_store);
        if (r >= 0)
            r = kv_bool(&c, &l, "create", &b.create);
        if (r >= 0 && b.create && !b.variable_store)
            r = opt_error(&c, "create needs variable-store=");
    } else if (!l.items[0].value && !strcmp(kind, "linux")) {
        b.kind = BOOT_LINUX;
        r = kv_string(&c, &l, "kernel", &b.kernel);
        if (r == 0)
            r = opt_error(&c, "linux needs kernel=");
        if (r >= 0)
            r = kv_string(&c, &l, "initrd", &b.initrd);
        if (r >= 0)
            r = kv_string(&c, &l, "cmdline", &b.cmdline);
    } else {
        r = opt_error(&c, "unknown bootloader \"%s\" (expected efi or linux)", kind);
    }
    if (r >= 0)
        r = kv_reject_unused(&c, &l);
    kvlist_free(&l);
    if (r < 0) {
        free(b.variable_store);
        free(b.kernel);
        free(b.initrd);
        free(b.cmdline);
        return r;
    }
    cfg->boot = b;
    return 0;
}

int parse_timesync(const char *value, struct vm_config *cfg, char *err, size_t errlen)
{
    struct optctx c = {.opt = "--timesync", .arg = value, .err = err, .errlen = errlen};
    struct kvlist l;
    uint32_t port = 0;
    int r = kvlist_parse(&c, value, NULL, &l);
    if (r < 0)
        return r;
    r = kv_u32(&c, &l, "vsockPort", 0, VSOCK_PORT_MAX, &port);
    if (r == 0)
        r = opt_error(&c, "timesync needs vsockPort=N");
    if (r >= 0)
        r = kv_reject_unused(&c, &l);
    kvlist_free(&l);
    if (r < 0)
        return r;
    cfg->timesync = true;
    cfg->timesync_port = port;
    return 0;
}
