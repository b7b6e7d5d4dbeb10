/*
 * The block layer's front door (block.h): opening and locking images,
 * choosing the format driver, request bounds checks, backing-chain loop
 * detection, and closing.
 *
 * Backing files are named by the image, which is untrusted: they are
 * opened here, on descriptors, confined to the directory of the image
 * naming them (openat2 RESOLVE_BENEATH), read-only, without blocking, and
 * kept only when they are regular files. The format is the one the image
 * records; nothing is probed.
 */
#include "block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "block/block_driver.h"
#include "block/image_lock.h"
#include "core/log.h"

static const struct blk_driver *driver_for(enum blk_format fmt)
{
    switch (fmt) {
    case BLK_FMT_RAW:
        return &blk_raw_driver;
    case BLK_FMT_QCOW2:
        return &blk_qcow2_driver;
    }
    return NULL;
}

/* True when the file starts with the qcow2 magic (for a warning only: formats are never probed). */
static bool looks_like_qcow2(int fd)
{
    unsigned char magic[4];

    return blk_file_pread(fd, magic, sizeof(magic), 0) == 0 && memcmp(magic, "QFI\xfb", 4) == 0;
}

/*
 * Without openat2 (kernels before 5.6, or a seccomp filter refusing it):
 * walks `name` one component at a time from dirfd, refusing absolute
 * names, ".." and every symlink (O_NOFOLLOW), so the result is beneath
 * dirfd. Stricter than openat2, which follows symlinks that stay inside.
 */
static int walk_beneath(int dirfd, const char *name, int flags)
{
    char *copy = strdup(name), *save = NULL;
    int cur = dirfd, r;

    if (!copy)
        return -ENOMEM;
    if (name[0] == '/') {
        free(copy);
        return -EXDEV;
    }
    char *comp = strtok_r(copy, "/", &save);
    if (!comp) {
        free(copy);
        return -ENOENT;
    }
    for (;;) {
        char *next = strtok_r(NULL, "/", &save);
        if (strcmp(comp, "..") == 0) {
            r = -EXDEV;
            break;
        }
        if (!next) {
            r = openat(cur, comp, flags | O_NOFOLLOW);
            r = r < 0 ? -errno : r;
            break;
        }
        if (strcmp(comp, ".") != 0) {
            int fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                /* A symlink opened with O_PATH|O_NOFOLLOW is not a directory. */
                r = errno == ENOTDIR ? -ELOOP : -errno;
                break;
            }
            if (cur != dirfd)
                close(cur);
            cur = fd;
        }
        comp = next;
    }
    if (cur != dirfd)
        close(cur);
    free(copy);
    return r;
}

/*
 * Opens `name` relative to dirfd such that the file reached lies beneath
 * dirfd: absolute names, ".." above it and symlinks (or /proc magic links)
 * leaving it fail with -EXDEV or -ELOOP. Decided on descriptors by the
 * kernel, not on strings, so a symlink anywhere on the way counts.
 */
static int open_beneath(int dirfd, const char *name, int flags)
{
    struct open_how how = {
        .flags = (uint64_t)flags,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));

    if (fd >= 0)
        return (int)fd;
    if (errno != ENOSYS && errno != EPERM)
        return -errno;
    return walk_beneath(dirfd, name, flags);
}

static int open_backing_at(const struct blk_chain *chain, const char *name, int flags)
{
    if (chain->opts && chain->opts->allow_backing_outside) {
        int fd = openat(chain->dirfd, name, flags);
        return fd < 0 ? -errno : fd;
    }
    return open_beneath(chain->dirfd, name, flags);
}

/* The directory fd that the backing names inside backing file `name` are relative to. */
static int backing_dirfd(const struct blk_chain *chain, const char *name)
{
    const char *slash = strrchr(name, '/');

    if (!slash) {
        int fd = fcntl(chain->dirfd, F_DUPFD_CLOEXEC, 0);
        return fd < 0 ? -errno : fd;
    }
    char *dir = slash == name ? strdup("/") : strndup(name, (size_t)(slash - name));
    if (!dir)
        return -ENOMEM;
    int fd = open_backing_at(chain, dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    return fd;
}

/* The directory of a path given by the user (the top image), as an O_PATH fd. */
static int parent_dirfd(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = !slash          ? strdup(".")
                : slash == path ? strdup("/")
                                : strndup(path, (size_t)(slash - path));
    if (!dir)
        return -ENOMEM;
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int r = fd < 0 ? -errno : fd;
    if (fd < 0)
        log_error("%s: cannot open its directory %s: %s", path, dir, strerror(errno));
    free(dir);
    return r;
}

/* Backing names are shown relative to the directory of the image naming them. */
static char *display_path(const char *image, const char *name)
{
    const char *slash = strrchr(image, '/');
    char *p = NULL;

    if (name[0] == '/' || !slash)
        return strdup(name);
    if (asprintf(&p, "%.*s/%s", (int)(slash - image), image, name) < 0)
        return NULL;
    return p;
}

int blk_chain_charge(const struct blk_chain *chain, uint64_t bytes)
{
    if (bytes > BLK_MAX_CHAIN_METADATA || *chain->meta_bytes > BLK_MAX_CHAIN_METADATA - bytes) {
        log_error("%s: image metadata needs %llu bytes, the backing chain already %llu: more "
                  "than the limit of %llu MiB for a whole chain",
                  chain->path, (unsigned long long)bytes, (unsigned long long)*chain->meta_bytes,
                  BLK_MAX_CHAIN_METADATA >> 20);
        return -EFBIG;
    }
    *chain->meta_bytes += bytes;
    return 0;
}

/*
 * Takes over fd and dirfd (closed on failure, dirfd always): checks the
 * chain, locks the file and opens it with the driver for fmt.
 */
static int open_image(char *path, int fd, int dirfd, enum blk_format fmt, bool readonly,
                      const struct blk_chain *child, const struct blk_open_opts *opts,
                      uint64_t *meta_bytes, struct blk_image **out)
{
    struct blk_image *img;
    struct stat st;
    int r;

    *out = NULL;
    img = calloc(1, sizeof(*img));
    if (!img) {
        close(fd);
        close(dirfd);
        free(path);
        return -ENOMEM;
    }
    pthread_mutex_init(&img->mutex, NULL);
    img->path = path;
    img->fd = fd;
    img->readonly = readonly;
    if (fstat(img->fd, &st) < 0) {
        r = -errno;
        log_error("%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    struct blk_chain link = {.dev = st.st_dev,
                             .ino = st.st_ino,
                             .child = child,
                             .depth = 0,
                             .path = path,
                             .dirfd = dirfd,
                             .opts = opts,
                             .meta_bytes = meta_bytes};
    if (child) {
        link.depth = child->depth + 1;
        if (link.depth > BLK_MAX_BACKING_DEPTH) {
            log_error("%s: backing chain deeper than %d images", path, BLK_MAX_BACKING_DEPTH);
            r = -ELOOP;
            goto fail;
        }
        for (const struct blk_chain *c = child; c; c = c->child) {
            if (c->dev == st.st_dev && c->ino == st.st_ino) {
                log_error("%s: backing chain loop: this file is its own backing file "
                          "(directly or through others)",
                          path);
                r = -ELOOP;
                goto fail;
            }
        }
    }
    r = image_lock(img->fd, path, !readonly);
    if (r < 0)
        goto fail;
    if (fmt == BLK_FMT_RAW && !child && looks_like_qcow2(img->fd))
        log_warn("%s: opened as raw but it is a qcow2 image: the guest sees the qcow2 file "
                 "itself (use format=qcow2)",
                 path);
    img->drv = driver_for(fmt);
    if (!img->drv) {
        log_error("%s: unknown image format %d", path, (int)fmt);
        r = -EINVAL;
        goto fail;
    }
    r = img->drv->open(img, &link);
    if (r < 0) {
        img->drv = NULL;
        goto fail;
    }
    close(dirfd); /* every backing file is open: nothing resolves names any more */
    *out = img;
    return 0;

fail:
    close(img->fd);
    close(dirfd);
    pthread_mutex_destroy(&img->mutex);
    free(img->path);
    free(img);
    return r;
}

int blk_open(const char *path, enum blk_format fmt, bool readonly, const struct blk_open_opts *opts,
             struct blk_image **out)
{
    static const struct blk_open_opts defaults;
    uint64_t meta_bytes = 0;

    if (!path || !out)
        return -EINVAL;
    *out = NULL;
    char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    int dirfd = parent_dirfd(path);
    if (dirfd < 0) {
        free(p);
        return dirfd;
    }
    /* The user named this file: it may be a block device (raw), or anywhere. */
    int fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        int r = -errno;
        log_error("%s: cannot open: %s", path, strerror(errno));
        close(dirfd);
        free(p);
        return r;
    }
    return open_image(p, fd, dirfd, fmt, readonly, NULL, opts ? opts : &defaults, &meta_bytes, out);
}

int blk_open_backing(const struct blk_chain *chain, const char *name, enum blk_format fmt,
                     struct blk_image **out)
{
    bool outside_ok = chain->opts && chain->opts->allow_backing_outside;
    struct stat st;
    int r;

    *out = NULL;
    char *path = display_path(chain->path, name);
    if (!path)
        return -ENOMEM;
    /*
     * O_NONBLOCK: a FIFO must not hang the start; it (or a directory or
     * device) is refused by the fstat below, on the descriptor opened.
     */
    int fd = open_backing_at(chain, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd == -EXDEV || (fd == -ELOOP && !outside_ok)) {
        log_error("%s: backing file \"%s\" is refused: it %s; allow backing files outside the "
                  "image's directory with allowBackingOutside=true",
                  chain->path, name,
                  fd == -EXDEV ? "lies outside the directory of the image naming it"
                               : "is reached through a symlink that is not followed (a /proc "
                                 "magic link, a loop, or any symlink where openat2 is "
                                 "unavailable)");
        free(path);
        return -EACCES;
    }
    if (fd < 0) {
        log_error("%s: cannot open its backing file \"%s\" (%s): %s", chain->path, name, path,
                  strerror(-fd));
        free(path);
        return fd;
    }
    if (fstat(fd, &st) < 0) {
        r = -errno;
        log_error("%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        log_error("%s: backing file \"%s\" is refused: it is %s, not a regular file", chain->path,
                  name,
                  S_ISDIR(st.st_mode)    ? "a directory"
                  : S_ISFIFO(st.st_mode) ? "a FIFO"
                  : S_ISBLK(st.st_mode)  ? "a block device"
                  : S_ISCHR(st.st_mode)  ? "a character device"
                  : S_ISSOCK(st.st_mode) ? "a socket"
                                         : "a special file");
        r = -EINVAL;
        goto fail;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        r = -errno;
        goto fail;
    }
    int dirfd = backing_dirfd(chain, name);
    if (dirfd < 0) {
        r = dirfd;
        log_error("%s: cannot open the directory of its backing file \"%s\": %s", chain->path, name,
                  strerror(-r));
        goto fail;
    }
    return open_image(path, fd, dirfd, fmt, true, chain, chain->opts, chain->meta_bytes, out);

fail:
    close(fd);
    free(path);
    return r;
}

uint64_t blk_size(const struct blk_image *img)
{
    return img->size;
}

bool blk_readonly(const struct blk_image *img)
{
    return img->readonly;
}

const char *blk_path(const struct blk_image *img)
{
    return img->path;
}

static int check_range(const struct blk_image *img, uint64_t offset, uint64_t len)
{
    if (offset > img->size || len > img->size - offset)
        return -EINVAL;
    return 0;
}

static void lock_driver(struct blk_image *img)
{
    if (!img->drv->thread_safe)
        pthread_mutex_lock(&img->mutex);
}

static void unlock_driver(struct blk_image *img)
{
    if (!img->drv->thread_safe)
        pthread_mutex_unlock(&img->mutex);
}

static int blk_rw(struct blk_image *img, const struct iovec *iov, int iovcnt, uint64_t offset,
                  bool write)
{
    int64_t len = blk_iov_length(iov, iovcnt);
    int r;

    if (write && img->readonly)
        return -EROFS;
    if (len < 0)
        return (int)len;
    if ((r = check_range(img, offset, (uint64_t)len)) < 0)
        return r;
    if (len == 0)
        return 0;
    lock_driver(img);
    r = write ? img->drv->pwritev(img, iov, iovcnt, offset)
              : img->drv->preadv(img, iov, iovcnt, offset);
    unlock_driver(img);
    return r;
}

int blk_preadv(struct blk_image *img, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    return blk_rw(img, iov, iovcnt, offset, false);
}

int blk_pwritev(struct blk_image *img, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    return blk_rw(img, iov, iovcnt, offset, true);
}

int blk_flush(struct blk_image *img)
{
    int r;

    if (img->readonly)
        return 0;
    lock_driver(img);
    r = img->drv->flush(img);
    unlock_driver(img);
    return r;
}

int blk_discard(struct blk_image *img, uint64_t offset, uint64_t len)
{
    int r;

    if (img->readonly)
        return -EROFS;
    if ((r = check_range(img, offset, len)) < 0)
        return r;
    if (len == 0)
        return 0;
    lock_driver(img);
    r = img->drv->discard(img, offset, len);
    unlock_driver(img);
    return r;
}

int blk_write_zeroes(struct blk_image *img, uint64_t offset, uint64_t len, bool may_unmap)
{
    int r;

    if (img->readonly)
        return -EROFS;
    if ((r = check_range(img, offset, len)) < 0)
        return r;
    if (len == 0)
        return 0;
    lock_driver(img);
    r = img->drv->write_zeroes(img, offset, len, may_unmap);
    unlock_driver(img);
    return r;
}

void blk_close(struct blk_image *img)
{
    if (!img)
        return;
    blk_async_fini(img);
    if (!img->readonly) {
        int r = blk_flush(img);
        if (r < 0)
            log_error("%s: flush on close failed: %s", img->path, strerror(-r));
    }
    img->drv->close(img);
    close(img->fd);
    pthread_mutex_destroy(&img->mutex);
    free(img->path);
    free(img);
}
