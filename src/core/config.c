/*
 * struct vm_config lifetime and its JSON form, printed by --print-config
 * and served by GET /vm/inspect. Key names follow vfkit's camelCase; the
 * whole schema is documented in docs/krunkit.1 ("CONFIGURATION JSON").
 * Absent optional values are JSON null so that every key is always there.
 */
#include "core/config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vm_config_init(struct vm_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = 3;
    cfg->rest.scheme = REST_NONE;
    cfg->boot.kind = BOOT_DEFAULT;
}

void dev_config_free(struct dev_config *dev)
{
    switch (dev->type) {
    case DEV_BLK:
        free(dev->blk.path);
        free(dev->blk.device_id);
        break;
    case DEV_NET:
        free(dev->net.path);
        break;
    case DEV_SERIAL:
        free(dev->serial.log_file_path);
        break;
    case DEV_VSOCK:
        free(dev->vsock.socket_url);
        break;
    case DEV_FS:
        free(dev->fs.shared_dir);
        free(dev->fs.mount_tag);
        break;
    case DEV_RNG:
    case DEV_BALLOON:
    case DEV_GPU:
    case DEV_INPUT:
        break;
    }
}

void vm_config_free(struct vm_config *cfg)
{
    free(cfg->log_file);
    free(cfg->rest.uri);
    free(cfg->rest.host);
    free(cfg->rest.path);
    free(cfg->pidfile);
    free(cfg->firmware_path);
    for (size_t i = 0; i < cfg->n_oem_strings; i++)
        free(cfg->oem_strings[i]);
    free(cfg->oem_strings);
    free(cfg->boot.variable_store);
    free(cfg->boot.kernel);
    free(cfg->boot.initrd);
    free(cfg->boot.cmdline);
    for (size_t i = 0; i < cfg->n_devices; i++)
        dev_config_free(&cfg->devices[i]);
    free(cfg->devices);
    vm_config_init(cfg);
}

const char *dev_type_name(enum dev_type type)
{
    switch (type) {
    case DEV_BLK:
        return "virtio-blk";
    case DEV_NET:
        return "virtio-net";
    case DEV_SERIAL:
        return "virtio-serial";
    case DEV_VSOCK:
        return "virtio-vsock";
    case DEV_FS:
        return "virtio-fs";
    case DEV_RNG:
        return "virtio-rng";
    case DEV_BALLOON:
        return "virtio-balloon";
    case DEV_GPU:
        return "virtio-gpu";
    case DEV_INPUT:
        return "virtio-input";
    }
    return "unknown";
}

/*
 * Paths on Linux are bytes, JSON strings are UTF-8: keep every valid
 * sequence and replace each invalid byte with U+FFFD, so a strange path
 * still shows up instead of making the whole document fail.
 */
static json_t *jstr_lossy(const char *s)
{
    size_t len = strlen(s);
    char *buf = malloc(len * 3 + 1);
    if (!buf)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        unsigned char ch = (unsigned char)s[i];
        size_t seq = ch < 0x80             ? 1
                     : (ch & 0xE0) == 0xC0 ? 2
                     : (ch & 0xF0) == 0xE0 ? 3
                     : (ch & 0xF8) == 0xF0 ? 4
                                           : 0;
        json_t *probe = NULL;
        if (seq > 1 && i + seq <= len)
            probe = json_stringn(s + i, seq); /* jansson validates the sequence */
        if (seq == 1 || probe) {
            memcpy(buf + n, s + i, seq);
            n += seq;
            i += seq;
        } else {
            memcpy(buf + n, "\xEF\xBF\xBD", 3);
            n += 3;
            i++;
        }
        json_decref(probe);
    }
    json_t *j = json_stringn(buf, n);
    free(buf);
    return j;
}

static json_t *jstr(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    return j ? j : jstr_lossy(s);
}

/*
 * Builders below carry on past a failed allocation and report ENOMEM at the
 * end; jansson's *_new setters release the value when they fail.
 */
struct jbuild {
    bool oom;
};

static void jset(struct jbuild *b, json_t *obj, const char *key, json_t *val)
{
    if (!val || json_object_set_new(obj, key, val) < 0)
        b->oom = true;
}

static void jpush(struct jbuild *b, json_t *arr, json_t *val)
{
    if (!val || json_array_append_new(arr, val) < 0)
        b->oom = true;
}

static json_t *boot_json(struct jbuild *b, const struct boot_config *boot)
{
    json_t *o = json_object();
    switch (boot->kind) {
    case BOOT_DEFAULT:
        jset(b, o, "kind", json_string("default"));
        break;
    case BOOT_EFI:
        jset(b, o, "kind", json_string("efi"));
        jset(b, o, "variableStore", jstr(boot->variable_store));
        jset(b, o, "create", json_boolean(boot->create));
        break;
    case BOOT_LINUX:
        jset(b, o, "kind", json_string("linux"));
        jset(b, o, "kernel", jstr(boot->kernel));
        jset(b, o, "initrd", jstr(boot->initrd));
        jset(b, o, "cmdline", jstr(boot->cmdline));
        break;
    }
    return o;
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

static json_t *net_json(struct jbuild *b, json_t *o, const struct dev_net *n)
{
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
    return o;
}

static json_t *device_json(struct jbuild *b, const struct dev_config *d)
{
    json_t *o = json_object();
    jset(b, o, "kind", json_string(dev_type_name(d->type)));
    switch (d->type) {
    case DEV_BLK:
        jset(b, o, "path", jstr(d->blk.path));
        jset(b, o, "format", json_string(d->blk.format == BLK_FMT_QCOW2 ? "qcow2" : "raw"));
        jset(b, o, "deviceId", jstr(d->blk.device_id));
        jset(b, o, "readonly", json_boolean(d->blk.readonly));
        jset(b, o, "allowBackingOutside", json_boolean(d->blk.allow_backing_outside));
        break;
    case DEV_NET:
        net_json(b, o, &d->net);
        break;
    case DEV_SERIAL:
        jset(b, o, "logFilePath",
             jstr(d->serial.mode == SERIAL_LOGFILE ? d->serial.log_file_path : NULL));
        jset(b, o, "stdio", json_boolean(d->serial.mode == SERIAL_STDIO));
        jset(b, o, "pty", json_boolean(d->serial.mode == SERIAL_PTY));
        if (d->serial.mode == SERIAL_LOGFILE)
            jset(b, o, "logFileMaxSize", json_integer((json_int_t)d->serial.log_max_bytes));
        break;
    case DEV_VSOCK:
        jset(b, o, "port", json_integer(d->vsock.port));
        jset(b, o, "socketURL", jstr(d->vsock.socket_url));
        jset(b, o, "listen", json_boolean(d->vsock.listen));
        break;
    case DEV_FS:
        jset(b, o, "sharedDir", jstr(d->fs.shared_dir));
        jset(b, o, "mountTag", jstr(d->fs.mount_tag));
        jset(b, o, "allowSetuid", json_boolean(d->fs.allow_setuid));
        break;
    case DEV_GPU:
        jset(b, o, "width", json_integer(d->gpu.width));
        jset(b, o, "height", json_integer(d->gpu.height));
        break;
    case DEV_INPUT:
        jset(b, o, "inputType",
             json_string(d->input.kind == INPUT_KEYBOARD ? "keyboard" : "pointing"));
        break;
    case DEV_RNG:
    case DEV_BALLOON:
        break;
    }
    return o;
}

char *vm_config_to_json(const struct vm_config *cfg)
{
    struct jbuild b = {.oom = false};
    json_t *root = json_object();
    jset(&b, root, "cpus", json_integer(cfg->cpus));
    jset(&b, root, "memoryMiB", json_integer((json_int_t)cfg->memory_mib));
    jset(&b, root, "nested", json_boolean(cfg->nested));
    jset(&b, root, "bootloader", boot_json(&b, &cfg->boot));
    json_t *devs = json_array();
    for (size_t i = 0; i < cfg->n_devices; i++)
        jpush(&b, devs, device_json(&b, &cfg->devices[i]));
    jset(&b, root, "devices", devs);
    jset(&b, root, "restfulUri", jstr(cfg->rest.uri));
    jset(&b, root, "pidfile", jstr(cfg->pidfile));
    jset(&b, root, "logFile", jstr(cfg->log_file));
    jset(&b, root, "logLevel", json_integer(cfg->log_level));
    if (cfg->timesync) {
        json_t *ts = json_object();
        jset(&b, ts, "vsockPort", json_integer(cfg->timesync_port));
        jset(&b, root, "timesync", ts);
    } else {
        jset(&b, root, "timesync", json_null());
    }
    jset(&b, root, "firmwarePath", jstr(cfg->firmware_path));
    json_t *oem = json_array();
    for (size_t i = 0; i < cfg->n_oem_strings; i++)
        jpush(&b, oem, jstr(cfg->oem_strings[i]));
    jset(&b, root, "oemStrings", oem);
    jset(&b, root, "gui", json_boolean(cfg->gui));

    char *text = b.oom ? NULL : json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return text;
}
