/*
 * Pre-boot validation of a parsed vm_config against this host (see
 * cli_validate in args.h). It opens files only to prove they can be opened
 * and closes them again; it never creates, truncates or removes anything,
 * so a run that fails here leaves nothing behind.
 */
#include "cli/args.h"
#include "cli/validate.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "core/devkind.h"

int cli_fail(char *err, size_t errlen, int e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -e;
}

/* what: e.g. `--device virtio-blk path`; errors read "<what> "<path>": ..." */
int cli_check_openable(const char *what, const char *path, int flags, bool want_regular, char *err,
                       size_t errlen)
{
    /* O_NONBLOCK: a FIFO must not block validation. */
    int fd = open(path, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        return cli_fail(err, errlen, e, "%s \"%s\": cannot open %s: %s", what, path,
                        (flags & O_ACCMODE) == O_RDWR ? "read-write" : "for reading", strerror(e));
    }
    struct stat st;
    int r = fstat(fd, &st);
    int e = errno;
    close(fd);
    if (r < 0)
        return cli_fail(err, errlen, e, "%s \"%s\": %s", what, path, strerror(e));
    if (S_ISDIR(st.st_mode) || (want_regular && !S_ISREG(st.st_mode)))
        return cli_fail(err, errlen, EINVAL, "%s \"%s\": not a regular file", what, path);
    return 0;
}

/* The directory a file will be created in at start must exist now. */
static int check_parent_dir(const char *what, const char *path, char *err, size_t errlen)
{
    char *copy = strdup(path);
    if (!copy)
        return cli_fail(err, errlen, ENOMEM, "out of memory");
    const char *dir = dirname(copy);
    struct stat st;
    int r = 0;
    if (stat(dir, &st) < 0) {
        int e = errno;
        r = cli_fail(err, errlen, e, "%s \"%s\": directory %s: %s", what, path, dir, strerror(e));
    } else if (!S_ISDIR(st.st_mode)) {
        r = cli_fail(err, errlen, ENOTDIR, "%s \"%s\": %s is not a directory", what, path, dir);
    }
    free(copy);
    return r;
}

/* A file opened with O_CREAT at start: writable if it exists, else its directory exists. */
int cli_check_creatable(const char *what, const char *path, char *err, size_t errlen)
{
    if (access(path, F_OK) == 0)
        return cli_check_openable(what, path, O_WRONLY, false, err, errlen);
    return check_parent_dir(what, path, err, errlen);
}

/*
 * A UNIX socket we bind at start: its directory must exist, and a file
 * already there may only be a (stale) socket, which start replaces.
 */
int cli_check_socket_to_bind(const char *what, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
        return cli_fail(err, errlen, EEXIST, "%s \"%s\": exists and is not a socket", what, path);
    return check_parent_dir(what, path, err, errlen);
}

static int check_device(const struct dev_config *d, char *err, size_t errlen)
{
    const struct dev_kind *k = dev_kind_of(d->type);
    return k && k->validate ? k->validate(d, err, errlen) : 0;
}

static int check_boot(const struct boot_config *b, char *err, size_t errlen)
{
    int r;
    switch (b->kind) {
    case BOOT_DEFAULT:
        return 0;
    case BOOT_EFI:
        if (!b->variable_store)
            return 0;
        if (access(b->variable_store, F_OK) < 0 && errno == ENOENT && b->create)
            return check_parent_dir("--bootloader variable-store", b->variable_store, err, errlen);
        return cli_check_openable("--bootloader variable-store", b->variable_store, O_RDWR, true,
                                  err, errlen);
    case BOOT_LINUX:
        r = cli_check_openable("--bootloader linux kernel", b->kernel, O_RDONLY, true, err, errlen);
        if (r == 0 && b->initrd)
            r = cli_check_openable("--bootloader linux initrd", b->initrd, O_RDONLY, true, err,
                                   errlen);
        return r;
    }
    return 0;
}

uint64_t cli_host_memory_mib(void)
{
    struct sysinfo si;
    if (sysinfo(&si) < 0)
        return 0;
    return (uint64_t)si.totalram * si.mem_unit >> 20;
}

int cli_check_memory(uint64_t memory_mib, uint64_t host_mib, char *err, size_t errlen)
{
    if (host_mib && memory_mib > host_mib)
        return cli_fail(err, errlen, ENOMEM,
                        "--memory %llu MiB: more than this host has (%llu MiB)",
                        (unsigned long long)memory_mib, (unsigned long long)host_mib);
    return 0;
}

int cli_validate(const struct vm_config *cfg, char *err, size_t errlen)
{
    int r = cli_check_memory(cfg->memory_mib, cli_host_memory_mib(), err, errlen);
    if (r < 0)
        return r;
    r = check_boot(&cfg->boot, err, errlen);
    if (r < 0)
        return r;
    if (cfg->firmware_path) {
        r = cli_check_openable("--firmware-path", cfg->firmware_path, O_RDONLY, true, err, errlen);
        if (r < 0)
            return r;
    }
    for (size_t i = 0; i < cfg->n_devices; i++) {
        r = check_device(&cfg->devices[i], err, errlen);
        if (r < 0)
            return r;
    }
    if (cfg->pidfile) {
        r = cli_check_creatable("--pidfile", cfg->pidfile, err, errlen);
        if (r < 0)
            return r;
    }
    if (cfg->log_file) {
        r = cli_check_creatable("--log-file", cfg->log_file, err, errlen);
        if (r < 0)
            return r;
    }
    if (cfg->rest.scheme == REST_UNIX) {
        r = cli_check_socket_to_bind("--restful-uri", cfg->rest.path, err, errlen);
        if (r < 0)
            return r;
    }
    return 0;
}
