/*
 * Pre-boot validation of a parsed vm_config against this host (see
 * cli_validate in args.h). It opens files only to prove they can be opened
 * and closes them again; it never creates, truncates or removes anything,
 * so a run that fails here leaves nothing behind.
 */
#include "cli/args.h"

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

static int fail(char *err, size_t errlen, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -e;
}

/* what: e.g. `--device virtio-blk path`; errors read "<what> "<path>": ..." */
static int check_openable(const char *what, const char *path, int flags, bool want_regular,
                          char *err, size_t errlen)
{
    /* O_NONBLOCK: a FIFO must not block validation. */
    int fd = open(path, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        return fail(err, errlen, e, "%s \"%s\": cannot open %s: %s", what, path,
                    (flags & O_ACCMODE) == O_RDWR ? "read-write" : "for reading", strerror(e));
    }
    struct stat st;
    int r = fstat(fd, &st);
    int e = errno;
    close(fd);
    if (r < 0)
        return fail(err, errlen, e, "%s \"%s\": %s", what, path, strerror(e));
    if (S_ISDIR(st.st_mode) || (want_regular && !S_ISREG(st.st_mode)))
        return fail(err, errlen, EINVAL, "%s \"%s\": not a regular file", what, path);
    return 0;
}

/* The directory a file will be created in at start must exist now. */
static int check_parent_dir(const char *what, const char *path, char *err, size_t errlen)
{
    char *copy = strdup(path);
    if (!copy)
        return fail(err, errlen, ENOMEM, "out of memory");
    const char *dir = dirname(copy);
    struct stat st;
    int r = 0;
    if (stat(dir, &st) < 0) {
        int e = errno;
        r = fail(err, errlen, e, "%s \"%s\": directory %s: %s", what, path, dir, strerror(e));
    } else if (!S_ISDIR(st.st_mode)) {
        r = fail(err, errlen, ENOTDIR, "%s \"%s\": %s is not a directory", what, path, dir);
    }
    free(copy);
    return r;
}

/* A file opened with O_CREAT at start: writable if it exists, else its directory exists. */
static int check_creatable(const char *what, const char *path, char *err, size_t errlen)
{
    if (access(path, F_OK) == 0)
        return check_openable(what, path, O_WRONLY, false, err, errlen);
    return check_parent_dir(what, path, err, errlen);
}

/*
 * A UNIX socket we bind at start: its directory must exist, and a file
 * already there may only be a (stale) socket, which start replaces.
 */
static int check_socket_to_bind(const char *what, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
        return fail(err, errlen, EEXIST, "%s \"%s\": exists and is not a socket", what, path);
    return check_parent_dir(what, path, err, errlen);
}

static int check_blk(const struct dev_blk *b, char *err, size_t errlen)
{
    return check_openable("--device virtio-blk path", b->path, b->readonly ? O_RDONLY : O_RDWR,
                          false, err, errlen);
}

static int check_inherited_fd(int fd, char *err, size_t errlen)
{
    if (fcntl(fd, F_GETFD) < 0)
        return fail(err, errlen, EBADF, "--device virtio-net fd=%d: not an open file descriptor",
                    fd);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return fail(err, errlen, ENOTSOCK, "--device virtio-net fd=%d: not a socket", fd);
    return 0;
}

static int check_net(const struct dev_net *n, char *err, size_t errlen)
{
    if (n->mac_set) {
        char mac[18];
        snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1], n->mac[2],
                 n->mac[3], n->mac[4], n->mac[5]);
        if (n->mac[0] & 1)
            return fail(err, errlen, EINVAL,
                        "--device virtio-net mac=%s: a multicast address cannot be a NIC's "
                        "address (the first octet must be even)",
                        mac);
        static const uint8_t zero[6];
        if (!memcmp(n->mac, zero, sizeof(zero)))
            return fail(err, errlen, EINVAL, "--device virtio-net mac=%s: all-zero address", mac);
    }
    if (n->type != NET_NAT && n->fd >= 0)
        return check_inherited_fd(n->fd, err, errlen);
    if (n->path) {
        /* The peer (gvproxy, passt, ...) is started first and owns the socket. */
        const char *what = n->unix_socket_path_form ? "unixSocketPath" : "path";
        struct stat st;
        if (stat(n->path, &st) < 0) {
            int e = errno;
            return fail(err, errlen, e, "--device virtio-net %s=%s: %s", what, n->path,
                        strerror(e));
        }
        if (!S_ISSOCK(st.st_mode))
            return fail(err, errlen, ENOTSOCK, "--device virtio-net %s=%s: not a socket", what,
                        n->path);
    }
    return 0;
}

static int check_device(const struct dev_config *d, char *err, size_t errlen)
{
    struct stat st;
    switch (d->type) {
    case DEV_BLK:
        return check_blk(&d->blk, err, errlen);
    case DEV_NET:
        return check_net(&d->net, err, errlen);
    case DEV_SERIAL:
        if (d->serial.mode == SERIAL_LOGFILE)
            return check_creatable("--device virtio-serial logFilePath", d->serial.log_file_path,
                                   err, errlen);
        return 0;
    case DEV_VSOCK:
        /*
         * connect: we create the socket and take host connections on it.
         * listen: we connect to it for each guest connection; it belongs
         * to another program (podman's ready socket) and may appear later.
         */
        if (!d->vsock.listen)
            return check_socket_to_bind("--device virtio-vsock socketURL", d->vsock.socket_url, err,
                                        errlen);
        return 0;
    case DEV_FS:
        if (stat(d->fs.shared_dir, &st) < 0) {
            int e = errno;
            return fail(err, errlen, e, "--device virtio-fs sharedDir \"%s\": %s", d->fs.shared_dir,
                        strerror(e));
        }
        if (!S_ISDIR(st.st_mode))
            return fail(err, errlen, ENOTDIR,
                        "--device virtio-fs sharedDir \"%s\": not a directory", d->fs.shared_dir);
        return 0;
    case DEV_RNG:
    case DEV_BALLOON:
    case DEV_GPU:
    case DEV_INPUT:
        return 0;
    }
    return 0;
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
        return check_openable("--bootloader variable-store", b->variable_store, O_RDWR, true, err,
                              errlen);
    case BOOT_LINUX:
        r = check_openable("--bootloader linux kernel", b->kernel, O_RDONLY, true, err, errlen);
        if (r == 0 && b->initrd)
            r = check_openable("--bootloader linux initrd", b->initrd, O_RDONLY, true, err, errlen);
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
        return fail(err, errlen, ENOMEM, "--memory %llu MiB: more than this host has (%llu MiB)",
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
        r = check_openable("--firmware-path", cfg->firmware_path, O_RDONLY, true, err, errlen);
        if (r < 0)
            return r;
    }
    for (size_t i = 0; i < cfg->n_devices; i++) {
        r = check_device(&cfg->devices[i], err, errlen);
        if (r < 0)
            return r;
    }
    if (cfg->pidfile) {
        r = check_creatable("--pidfile", cfg->pidfile, err, errlen);
        if (r < 0)
            return r;
    }
    if (cfg->log_file) {
        r = check_creatable("--log-file", cfg->log_file, err, errlen);
        if (r < 0)
            return r;
    }
    if (cfg->rest.scheme == REST_UNIX) {
        r = check_socket_to_bind("--restful-uri", cfg->rest.path, err, errlen);
        if (r < 0)
            return r;
    }
    return 0;
}
