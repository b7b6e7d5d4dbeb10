/*
 * --device virtio-serial: the guest console to a log file, stdio or a pty
 * (docs/krunkit.1, DEVICES), served by virtio/console.c (virtio 1.2, 5.3).
 * The descriptor half: options, host checks, JSON, create.
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

static int parse(const struct optctx *c, struct kvlist *l, struct dev_config *d)
{
    struct dev_serial *s = &d->serial;
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

static int conflicts(const struct optctx *c, const struct dev_config *o, const struct dev_config *d)
{
    if (d->serial.mode == SERIAL_STDIO && o->serial.mode == SERIAL_STDIO)
        return opt_error(c, "only one virtio-serial device can use stdio");
    return 0;
}

static int validate(const struct dev_config *d, char *err, size_t errlen)
{
    if (d->serial.mode == SERIAL_LOGFILE)
        return cli_check_creatable("--device virtio-serial logFilePath", d->serial.log_file_path,
                                   err, errlen);
    return 0;
}

static void to_json(struct jbuild *b, json_t *o, const struct dev_config *d)
{
    jset(b, o, "logFilePath",
         jstr(d->serial.mode == SERIAL_LOGFILE ? d->serial.log_file_path : NULL));
    jset(b, o, "stdio", json_boolean(d->serial.mode == SERIAL_STDIO));
    jset(b, o, "pty", json_boolean(d->serial.mode == SERIAL_PTY));
    if (d->serial.mode == SERIAL_LOGFILE)
        jset(b, o, "logFileMaxSize", json_integer((json_int_t)d->serial.log_max_bytes));
}

static void free_cfg(struct dev_config *d)
{
    free(d->serial.log_file_path);
}

static int open_host(const struct vm_config *cfg, const struct dev_vsock *timesync_port,
                     struct dev_backend *b)
{
    (void)cfg, (void)timesync_port;
    return console_host_open(&b->cfg->serial, &b->console);
}

static void close_host(struct dev_backend *b, bool failed_start)
{
    console_host_close(b->console, failed_start);
    b->console = NULL;
}

static int create(struct machine *m, struct dev_backend *b, struct virtio_dev **out)
{
    return virtio_console_create(m, b->console, out);
}

const struct dev_kind dev_kind_serial = {
    .name = "virtio-serial",
    .type = DEV_SERIAL,
    .parse = parse,
    .conflicts = conflicts,
    .validate = validate,
    .to_json = to_json,
    .free = free_cfg,
    .open = open_host,
    .close = close_host,
    .create = create,
};
