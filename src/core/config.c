/*
 * struct vm_config lifetime and its JSON form, printed by --print-config
 * and served by GET /vm/inspect. Key names follow vfkit's camelCase; the
 * whole schema is documented in docs/krunkit.1 ("CONFIGURATION JSON").
 * Absent optional values are JSON null so that every key is always there.
 */
#include "core/config.h"

#include <jansson.h>

#include "core/config_json.h"
#include "core/devkind.h"
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
    const struct dev_kind *k = dev_kind_of(dev->type);
    if (k && k->free)
        k->free(dev);
    /* What priv points into is the kind's to free (above); the block itself is freed here. */
    free(dev->priv);
    dev->priv = NULL;
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
    const struct dev_kind *k = dev_kind_of(type);
    return k ? k->name : "unknown";
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

json_t *jstr(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    return j ? j : jstr_lossy(s);
}

/* jansson's *_new setters release the value when they fail. */
void jset(struct jbuild *b, json_t *obj, const char *key, json_t *val)
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

static json_t *device_json(struct jbuild *b, const struct dev_config *d)
{
    json_t *o = json_object();
    jset(b, o, "kind", json_string(dev_type_name(d->type)));
    const struct dev_kind *k = dev_kind_of(d->type);
    if (o && k && k->to_json)
        k->to_json(b, o, d);
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
