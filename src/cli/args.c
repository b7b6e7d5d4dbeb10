/*
 * argv -> struct vm_config: the option table of krunkit and vfkit, in both
 * `--opt value` and `--opt=value` forms (short: `-c 2`, `-c2`). Values of
 * --device, --bootloader and --timesync go to devopts.c. Documented in
 * docs/krunkit.1; follows krunkit's docs/usage.md and CLIENTS.md.
 *
 * Choices where upstream is silent or inconsistent:
 * - --cpus and --memory are required (usage.md: "is required").
 * - an option other than --device and --oem-string given twice is an
 *   error, as krunkit's clap parser does;
 * - --krun-log-level above 5 means trace (usage.md: "5 or more=trace");
 * - no --restful-uri means no REST service (upstream's code, CLIENTS.md).
 */
#include "cli/args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/devopts.h"

enum opt_id {
    OPT_CPUS,
    OPT_MEMORY,
    OPT_NESTED,
    OPT_LOG_LEVEL,
    OPT_VFKIT_LOG_LEVEL,
    OPT_LOG_FILE,
    OPT_RESTFUL_URI,
    OPT_PIDFILE,
    OPT_TIMESYNC,
    OPT_FIRMWARE,
    OPT_OEM_STRING,
    OPT_GUI,
    OPT_BOOTLOADER,
    OPT_KERNEL,
    OPT_INITRD,
    OPT_KERNEL_CMDLINE,
    OPT_DEVICE,
    OPT_HELP,
    OPT_VERSION,
    OPT_PRINT_CONFIG,
    OPT_COUNT,
};

struct opt_def {
    const char *name;
    char short_name;
    bool has_arg;
    bool repeatable;
    enum opt_id id;
};

static const struct opt_def opt_defs[] = {
    {"cpus", 'c', true, false, OPT_CPUS},
    {"memory", 'm', true, false, OPT_MEMORY},
    {"nested", 'n', false, false, OPT_NESTED},
    {"krun-log-level", 0, true, false, OPT_LOG_LEVEL},
    {"log-level", 0, true, false, OPT_VFKIT_LOG_LEVEL},
    {"log-file", 0, true, false, OPT_LOG_FILE},
    {"restful-uri", 0, true, false, OPT_RESTFUL_URI},
    {"pidfile", 0, true, false, OPT_PIDFILE},
    {"timesync", 0, true, false, OPT_TIMESYNC},
    {"firmware-path", 'f', true, false, OPT_FIRMWARE},
    {"oem-string", 0, true, true, OPT_OEM_STRING},
    {"gui", 0, false, false, OPT_GUI},
    {"bootloader", 0, true, false, OPT_BOOTLOADER},
    {"kernel", 0, true, false, OPT_KERNEL},
    {"initrd", 0, true, false, OPT_INITRD},
    {"kernel-cmdline", 0, true, false, OPT_KERNEL_CMDLINE},
    {"device", 0, true, true, OPT_DEVICE},
    {"help", 'h', false, false, OPT_HELP},
    {"version", 0, false, false, OPT_VERSION},
    {"print-config", 0, false, false, OPT_PRINT_CONFIG},
};

static int errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int parse_cpus(const struct optctx *c, unsigned *out)
{
    uint64_t v;
    int r = parse_u64(c->arg, &v);
    if (r == -EINVAL)
        return opt_error(c, "not a number of vCPUs");
    /* -ERANGE leaves v unset: out of range as well. */
    if (r < 0 || v < 1 || v > VM_MAX_CPUS)
        return opt_error(c, "vCPUs must be between 1 and %d", VM_MAX_CPUS);
    *out = (unsigned)v;
    return 0;
}

/* MiB, or with a suffix M, G, T, P (binary multiples, either case). */
static int parse_memory(const struct optctx *c, uint64_t *out)
{
    const char *s = c->arg;
    size_t len = strlen(s);
    uint64_t mult = 1;
    char digits[32];
    if (len > 0) {
        switch (s[len - 1]) {
        case 'M':
        case 'm':
            mult = 1;
            len--;
            break;
        case 'G':
        case 'g':
            mult = 1024;
            len--;
            break;
        case 'T':
        case 't':
            mult = 1024 * 1024;
            len--;
            break;
        case 'P':
        case 'p':
            mult = 1024 * 1024 * 1024;
            len--;
            break;
        }
    }
    if (len == 0 || len >= sizeof(digits))
        return opt_error(c, "not an amount of memory (MiB, or a number with suffix M, G, T or P)");
    memcpy(digits, s, len);
    digits[len] = '\0';
    uint64_t v;
    int r = parse_u64(digits, &v);
    if (r == -EINVAL)
        return opt_error(c, "not an amount of memory (MiB, or a number with suffix M, G, T or P)");
    if (r == 0 && v == 0)
        return opt_error(c, "memory must be more than 0");
    /* The byte count must fit 64 bits for the VMM's address arithmetic. */
    if (r < 0 || v > (UINT64_MAX >> 20) / mult)
        return opt_error(c, "memory size is too large");
    *out = v * mult;
    return 0;
}

static int parse_log_level(const struct optctx *c, int *out)
{
    uint64_t v;
    int r = parse_u64(c->arg, &v);
    if (r == -EINVAL)
        return opt_error(c, "not a log level (0=off, 1=error, 2=warn, 3=info, 4=debug, 5=trace)");
    if (r < 0 || v > UINT32_MAX)
        return opt_error(c, "log level out of range");
    *out = v > 5 ? 5 : (int)v;
    return 0;
}

/* vfkit's --log-level takes names (logrus: any case); older krunkit had it too. */
static int parse_log_level_name(const struct optctx *c, int *out)
{
    static const char *const names[] = {"off", "error", "warn", "info", "debug", "trace"};
    for (int i = 0; i < 6; i++) {
        if (!strcasecmp(c->arg, names[i])) {
            *out = i;
            return 0;
        }
    }
    if (!strcasecmp(c->arg, "warning")) {
        *out = 2;
        return 0;
    }
    return opt_error(c, "not a log level (off, error, warn, info, debug or trace)");
}

int cli_parse_restful_uri(const char *uri, struct rest_config *rc, char *err, size_t errlen)
{
    struct optctx c = {.opt = "--restful-uri", .arg = uri, .err = err, .errlen = errlen};
    struct rest_config r = {.scheme = REST_NONE};
    if (!strncmp(uri, "none://", 7)) {
        if (uri[7])
            return opt_error(&c, "none:// takes nothing after the scheme");
    } else if (!strncmp(uri, "tcp://", 6)) {
        const char *hp = uri + 6;
        if (strpbrk(hp, "/?#"))
            return opt_error(&c, "a tcp:// URI has no path (expected tcp://HOST:PORT)");
        if (strchr(hp, '@'))
            return opt_error(&c, "a tcp:// URI has no user (expected tcp://HOST:PORT)");
        const char *host = hp, *host_end, *colon;
        if (*hp == '[') {
            host = hp + 1;
            host_end = strchr(host, ']');
            if (!host_end)
                return opt_error(&c, "unterminated [IPv6] host");
            colon = host_end + 1;
            if (*colon != ':')
                return opt_error(&c, "missing :PORT (expected tcp://HOST:PORT)");
        } else {
            colon = strrchr(hp, ':');
            if (!colon)
                return opt_error(&c, "missing :PORT (expected tcp://HOST:PORT)");
            host_end = colon;
            if (memchr(hp, ':', (size_t)(colon - hp)))
                return opt_error(&c, "an IPv6 host must be written in brackets: tcp://[::1]:PORT");
        }
        if (host_end == host)
            return opt_error(&c, "missing HOST (expected tcp://HOST:PORT)");
        uint64_t port;
        if (parse_u64(colon + 1, &port) < 0 || port < 1 || port > 65535)
            return opt_error(&c, "PORT must be a number between 1 and 65535");
        r.scheme = REST_TCP;
        r.port = (uint16_t)port;
        r.host = strndup(host, (size_t)(host_end - host));
        if (!r.host)
            return -ENOMEM;
    } else if (!strncmp(uri, "unix://", 7)) {
        const char *path = uri + 7;
        if (*path != '/')
            return opt_error(&c, "expected unix:///ABSOLUTE/PATH (three slashes)");
        if (path[strlen(path) - 1] == '/')
            return opt_error(&c, "the socket path names a directory");
        if (strlen(path) > sun_path_max())
            return opt_error(&c, "the socket path is longer than %zu bytes", sun_path_max());
        r.scheme = REST_UNIX;
        r.path = strdup(path);
        if (!r.path)
            return -ENOMEM;
    } else {
        return opt_error(&c, "unknown scheme (expected none://, tcp://HOST:PORT or unix:///PATH)");
    }
    r.uri = strdup(uri);
    if (!r.uri) {
        free(r.host);
        free(r.path);
        return -ENOMEM;
    }
    *rc = r;
    return 0;
}

static int dup_value(const struct optctx *c, char **out)
{
    *out = strdup(c->arg);
    return *out ? 0 : -ENOMEM;
}

static int add_oem_string(const struct optctx *c, struct vm_config *cfg)
{
    char **v = realloc(cfg->oem_strings, (cfg->n_oem_strings + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    cfg->oem_strings = v;
    v[cfg->n_oem_strings] = strdup(c->arg);
    if (!v[cfg->n_oem_strings])
        return -ENOMEM;
    cfg->n_oem_strings++;
    return 0;
}

/* The old vfkit kernel options collected until the end of argv. */
struct legacy_boot {
    const char *kernel, *initrd, *cmdline;
};

static int apply_option(const struct opt_def *d, const struct optctx *c, struct vm_config *cfg,
                        struct legacy_boot *lb, bool flag)
{
    switch (d->id) {
    case OPT_CPUS:
        return parse_cpus(c, &cfg->cpus);
    case OPT_MEMORY:
        return parse_memory(c, &cfg->memory_mib);
    case OPT_NESTED:
        cfg->nested = flag;
        return 0;
    case OPT_GUI:
        cfg->gui = flag;
        return 0;
    case OPT_LOG_LEVEL:
        return parse_log_level(c, &cfg->log_level);
    case OPT_VFKIT_LOG_LEVEL:
        return parse_log_level_name(c, &cfg->log_level);
    case OPT_LOG_FILE:
        return dup_value(c, &cfg->log_file);
    case OPT_PIDFILE:
        return dup_value(c, &cfg->pidfile);
    case OPT_FIRMWARE:
        return dup_value(c, &cfg->firmware_path);
    case OPT_OEM_STRING:
        return add_oem_string(c, cfg);
    case OPT_RESTFUL_URI:
        return cli_parse_restful_uri(c->arg, &cfg->rest, c->err, c->errlen);
    case OPT_TIMESYNC:
        return parse_timesync(c->arg, cfg, c->err, c->errlen);
    case OPT_BOOTLOADER:
        return parse_bootloader(c->arg, cfg, c->err, c->errlen);
    case OPT_DEVICE:
        return parse_device(c->arg, cfg, c->err, c->errlen);
    case OPT_KERNEL:
        lb->kernel = c->arg;
        return 0;
    case OPT_INITRD:
        lb->initrd = c->arg;
        return 0;
    case OPT_KERNEL_CMDLINE:
        lb->cmdline = c->arg;
        return 0;
    case OPT_HELP:
    case OPT_VERSION:
    case OPT_PRINT_CONFIG:
    case OPT_COUNT:
        break;
    }
    return 0;
}

static int apply_legacy_boot(const struct legacy_boot *lb, struct vm_config *cfg, bool bootloader,
                             char *err, size_t errlen)
{
    if (!lb->kernel && !lb->initrd && !lb->cmdline)
        return 0;
    if (!lb->kernel)
        return errf(err, errlen, "%s \"%s\": needs --kernel",
                    lb->initrd ? "--initrd" : "--kernel-cmdline",
                    lb->initrd ? lb->initrd : lb->cmdline);
    if (bootloader)
        return errf(err, errlen,
                    "--kernel \"%s\": cannot be combined with --bootloader "
                    "(use --bootloader linux,kernel=...)",
                    lb->kernel);
    cfg->boot.kind = BOOT_LINUX;
    cfg->boot.kernel = strdup(lb->kernel);
    cfg->boot.initrd = lb->initrd ? strdup(lb->initrd) : NULL;
    cfg->boot.cmdline = lb->cmdline ? strdup(lb->cmdline) : NULL;
    if (!cfg->boot.kernel || (lb->initrd && !cfg->boot.initrd) ||
        (lb->cmdline && !cfg->boot.cmdline))
        return -ENOMEM;
    return 0;
}

static int check_timesync_port(const struct vm_config *cfg, char *err, size_t errlen)
{
    if (!cfg->timesync)
        return 0;
    for (size_t i = 0; i < cfg->n_devices; i++) {
        const struct dev_config *d = &cfg->devices[i];
        if (d->type == DEV_VSOCK && d->vsock.port == cfg->timesync_port)
            return errf(err, errlen,
                        "--timesync \"vsockPort=%u\": vsock port %u is already used by a "
                        "virtio-vsock device",
                        cfg->timesync_port, cfg->timesync_port);
    }
    return 0;
}

/* Finds the definition for argv[*i], consuming its value; *name is the spelling used. */
static int next_option(int argc, char **argv, int *i, const struct opt_def **def,
                       const char **value, char *name, size_t namelen, char *err, size_t errlen)
{
    const char *a = argv[*i];
    const char *inline_val = NULL;
    const struct opt_def *d = NULL;
    size_t n = sizeof(opt_defs) / sizeof(opt_defs[0]);

    if (a[0] == '-' && a[1] == '-' && a[2]) {
        const char *nm = a + 2;
        const char *eq = strchr(nm, '=');
        size_t len = eq ? (size_t)(eq - nm) : strlen(nm);
        for (size_t k = 0; k < n; k++) {
            if (strlen(opt_defs[k].name) == len && !strncmp(opt_defs[k].name, nm, len))
                d = &opt_defs[k];
        }
        if (!d)
            return errf(err, errlen, "unknown option \"%.*s\" (see --help)", (int)len + 2, a);
        snprintf(name, namelen, "--%s", d->name);
        if (eq)
            inline_val = eq + 1;
    } else if (a[0] == '-' && a[1] && a[1] != '-') {
        for (size_t k = 0; k < n; k++) {
            if (opt_defs[k].short_name && opt_defs[k].short_name == a[1])
                d = &opt_defs[k];
        }
        if (!d)
            return errf(err, errlen, "unknown option \"-%c\" (see --help)", a[1]);
        snprintf(name, namelen, "-%c", a[1]);
        if (a[2]) {
            if (!d->has_arg)
                return errf(err, errlen, "option %s takes no value, got \"%s\"", name, a);
            inline_val = a + 2;
        }
    } else {
        return errf(err, errlen, "unexpected argument \"%s\" (options start with --)", a);
    }

    if (d->has_arg && !inline_val) {
        if (*i + 1 >= argc)
            return errf(err, errlen, "option %s needs a value", name);
        inline_val = argv[++*i];
    }
    if (d->has_arg && !*inline_val)
        return errf(err, errlen, "option %s: empty value", name);
    *def = d;
    *value = inline_val;
    return 0;
}

int cli_parse(int argc, char **argv, struct vm_config *cfg, enum cli_action *action, char *err,
              size_t errlen)
{
    bool seen[OPT_COUNT] = {false};
    struct legacy_boot lb = {NULL, NULL, NULL};
    int r = 0;

    vm_config_init(cfg);
    *action = CLI_RUN;
    if (errlen)
        err[0] = '\0';
    for (int i = 1; i < argc; i++) {
        const struct opt_def *d = NULL;
        const char *value = NULL;
        char name[32];
        r = next_option(argc, argv, &i, &d, &value, name, sizeof(name), err, errlen);
        if (r < 0)
            goto fail;
        if (seen[d->id] && !d->repeatable) {
            r = errf(err, errlen, "option --%s given more than once", d->name);
            goto fail;
        }
        seen[d->id] = true;
        if (seen[OPT_LOG_LEVEL] && seen[OPT_VFKIT_LOG_LEVEL]) {
            r = errf(err, errlen, "--log-level and --krun-log-level cannot be combined");
            goto fail;
        }

        bool flag = true;
        if (!d->has_arg && value && parse_bool(value, &flag) < 0) {
            r = errf(err, errlen, "option %s \"%s\": expected true, false, on or off", name, value);
            goto fail;
        }
        if ((d->id == OPT_HELP || d->id == OPT_VERSION) && !flag)
            continue;
        if (d->id == OPT_HELP || d->id == OPT_VERSION) {
            vm_config_free(cfg);
            *action = d->id == OPT_HELP ? CLI_HELP : CLI_VERSION;
            return 0;
        }
        if (d->id == OPT_PRINT_CONFIG) {
            if (flag)
                *action = CLI_PRINT_CONFIG;
            continue;
        }
        struct optctx c = {.opt = name, .arg = value, .err = err, .errlen = errlen};
        r = apply_option(d, &c, cfg, &lb, flag);
        if (r < 0) {
            if (r == -ENOMEM)
                snprintf(err, errlen, "%s: out of memory", name);
            goto fail;
        }
    }
    r = apply_legacy_boot(&lb, cfg, seen[OPT_BOOTLOADER], err, errlen);
    if (r < 0)
        goto fail;
    if (!seen[OPT_CPUS]) {
        r = errf(err, errlen, "--cpus is required (number of vCPUs, 1..%d)", VM_MAX_CPUS);
        goto fail;
    }
    if (!seen[OPT_MEMORY]) {
        r = errf(err, errlen, "--memory is required (RAM in MiB, or with suffix M, G, T, P)");
        goto fail;
    }
    r = check_timesync_port(cfg, err, errlen);
    if (r < 0)
        goto fail;
    return 0;
fail:
    vm_config_free(cfg);
    *action = CLI_RUN;
    return r;
}

const char *cli_usage(void)
{
    return "Usage: krunkit --cpus N --memory MIB [OPTIONS]\n"
           "\n"
           "Boot a virtual machine with KVM (krunkit and vfkit command line).\n"
           "\n"
           "Options:\n"
           "  -c, --cpus N                 vCPUs, 1..255 (required)\n"
           "  -m, --memory SIZE            RAM in MiB, or with suffix M, G, T, P (required)\n"
           "  -n, --nested                 enable nested virtualization\n"
           "      --bootloader efi[,variable-store=PATH][,create]\n"
           "      --bootloader linux,kernel=PATH[,initrd=PATH][,cmdline=\"...\"]\n"
           "      --kernel PATH --initrd PATH --kernel-cmdline STR   (vfkit's form)\n"
           "  -f, --firmware-path PATH     EFI firmware image\n"
           "      --device SPEC            add a device (repeatable), SPEC is one of:\n"
           "          virtio-blk,path=PATH[,format=raw|qcow2][,deviceId=ID][,readonly]\n"
           "                     [,allowBackingOutside=true]\n"
           "          virtio-net,unixSocketPath=PATH[,mac=MAC]\n"
           "          virtio-net,type=unixgram|unixstream,path=PATH|fd=N[,mac=MAC]\n"
           "                     [,offloading=on|off][,vfkitMagic=on|off]\n"
           "          virtio-net,nat[,mac=MAC]\n"
           "          virtio-serial,logFilePath=PATH[,logFileMaxSize=BYTES]\n"
           "          virtio-serial,stdio | virtio-serial,pty\n"
           "          virtio-vsock,port=N,socketURL=PATH[,listen|,connect]\n"
           "          virtio-fs,sharedDir=PATH,mountTag=TAG[,allowSetuid=true]\n"
           "          virtio-rng | virtio-balloon\n"
           "          virtio-gpu[,width=W][,height=H]\n"
           "          virtio-input,keyboard | virtio-input,pointing\n"
           "      --restful-uri URI        none://, tcp://HOST:PORT or unix:///PATH\n"
           "      --pidfile PATH           write the PID here while the VM runs\n"
           "      --krun-log-level N       0 off, 1 error, 2 warn, 3 info (default), 4 debug,\n"
           "                               5 or more trace\n"
           "      --log-level NAME         vfkit's form: off, error, warn, info, debug, trace\n"
           "      --log-file PATH          append the log here instead of stderr\n"
           "      --timesync vsockPort=N   guest time synchronisation port\n"
           "      --oem-string STR         SMBIOS OEM string (repeatable)\n"
           "      --gui                    accepted and ignored\n"
           "      --print-config           print the configuration as JSON and exit\n"
           "  -h, --help                   show this help\n"
           "      --version                show the version\n"
           "\n"
           "See krunkit(1) for details.\n";
}
