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

#include "core/devkind.h"

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

struct kvitem *kv_find(struct kvlist *l, const char *key)
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

int opt_check_socket_path(const struct optctx *c, const char *key, const char *path)
{
    if (strlen(path) > sun_path_max())
        return opt_error(c, "%s is longer than %zu bytes and does not fit a UNIX socket address",
                         key, sun_path_max());
    return 0;
}

/* "virtio-blk, virtio-net, ... or virtio-input": every kind, in table order. */
static void kind_list(char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < dev_kinds_count && n < len; i++) {
        const char *sep = i == 0 ? "" : i + 1 == dev_kinds_count ? " or " : ", ";
        int w = snprintf(buf + n, len - n, "%s%s", sep, dev_kinds[i]->name);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

/* Uniqueness across devices of one kind (vsock ports, virtio-fs tags, one stdio console). */
static int check_against_others(const struct optctx *c, const struct vm_config *cfg,
                                const struct dev_kind *k, const struct dev_config *d)
{
    for (size_t i = 0; k->conflicts && i < cfg->n_devices; i++) {
        if (cfg->devices[i].type != d->type)
            continue;
        int r = k->conflicts(c, &cfg->devices[i], d);
        if (r < 0)
            return r;
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
    const struct dev_kind *k = l.items[0].value ? NULL : dev_kind_find(name);
    if (!k) {
        char kinds[256];
        kind_list(kinds, sizeof(kinds));
        r = opt_error(&c, "unknown device type \"%s\" (expected %s)", name, kinds);
        goto fail;
    }
    l.items[0].used = true;
    d.type = k->type;
    r = k->parse ? k->parse(&c, &l, &d) : 0;
    if (r < 0)
        goto fail;
    r = kv_reject_unused(&c, &l);
    if (r < 0)
        goto fail;
    r = check_against_others(&c, cfg, k, &d);
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
