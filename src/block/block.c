/*
 * The block layer's front door (block.h): opening and locking images,
 * choosing the format driver, request bounds checks, backing-chain loop
 * detection, and closing.
 */
#include "block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block_driver.h"
#include "block/image_lock.h"
#include "cli/log.h"

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

/* Backing files without a format header extension: qcow2 when it says so. */
static int probe_format(int fd)
{
    unsigned char magic[4];

    if (blk_file_pread(fd, magic, sizeof(magic), 0) == 0 && memcmp(magic, "QFI\xfb", 4) == 0)
        return BLK_FMT_QCOW2;
    return BLK_FMT_RAW;
}

static int open_image(const char *path, int fmt, bool readonly, const struct blk_chain *child,
                      struct blk_image **out)
{
    struct blk_image *img;
    struct stat st;
    int r;

    *out = NULL;
    img = calloc(1, sizeof(*img));
    if (!img)
        return -ENOMEM;
    img->fd = -1;
    pthread_mutex_init(&img->mutex, NULL);
    img->path = strdup(path);
    if (!img->path) {
        r = -ENOMEM;
        goto fail;
    }
    img->readonly = readonly;
    img->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (img->fd < 0) {
        r = -errno;
        log_error("%s: cannot open%s: %s", path, child ? " backing file" : "", strerror(errno));
        goto fail;
    }
    if (fstat(img->fd, &st) < 0) {
        r = -errno;
        log_error("%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    struct blk_chain link = {.dev = st.st_dev, .ino = st.st_ino, .child = child, .depth = 0};
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
    if (fmt < 0)
        fmt = probe_format(img->fd);
    else if (fmt == BLK_FMT_RAW && probe_format(img->fd) == BLK_FMT_QCOW2)
        log_warn("%s: opened as raw but it is a qcow2 image: the guest sees the qcow2 file "
                 "itself (use format=qcow2)",
                 path);
    img->drv = driver_for((enum blk_format)fmt);
    if (!img->drv) {
        log_error("%s: unknown image format %d", path, fmt);
        r = -EINVAL;
        goto fail;
    }
    r = img->drv->open(img, &link);
    if (r < 0) {
        img->drv = NULL;
        goto fail;
    }
    *out = img;
    return 0;

fail:
    if (img->fd >= 0)
        close(img->fd);
    pthread_mutex_destroy(&img->mutex);
    free(img->path);
    free(img);
    return r;
}

int blk_open(const char *path, enum blk_format fmt, bool readonly, struct blk_image **out)
{
    if (!path || !out)
        return -EINVAL;
    return open_image(path, (int)fmt, readonly, NULL, out);
}

int blk_open_backing(const char *path, int fmt, const struct blk_chain *chain,
                     struct blk_image **out)
{
    return open_image(path, fmt, true, chain, out);
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
