/*
 * Raw images: the guest's disk is the file, byte for byte. Discard punches
 * holes, write-zeroes uses fallocate zero ranges where the filesystem has
 * them and falls back to writing zeroes.
 */
#include "block/block_driver.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

/* Learned once, read by every worker thread: hence atomic. */
struct raw_state {
    _Atomic bool no_punch;      /* the filesystem refused FALLOC_FL_PUNCH_HOLE */
    _Atomic bool no_zero_range; /* ... and FALLOC_FL_ZERO_RANGE */
};

static int raw_open(struct blk_image *img, const struct blk_chain *chain)
{
    struct stat st;
    (void)chain;

    if (fstat(img->fd, &st) < 0) {
        int r = -errno;
        log_error("%s: cannot stat: %s", img->path, strerror(errno));
        return r;
    }
    if (S_ISBLK(st.st_mode)) {
        uint64_t bytes;
        if (ioctl(img->fd, BLKGETSIZE64, &bytes) < 0) {
            int r = -errno;
            log_error("%s: cannot get the device size: %s", img->path, strerror(errno));
            return r;
        }
        img->size = bytes;
    } else if (S_ISREG(st.st_mode)) {
        img->size = (uint64_t)st.st_size;
    } else {
        log_error("%s: not a regular file or block device", img->path);
        return -EINVAL;
    }
    img->state = calloc(1, sizeof(struct raw_state));
    return img->state ? 0 : -ENOMEM;
}

static int raw_preadv(struct blk_image *img, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    return blk_file_preadv(img->fd, iov, iovcnt, offset);
}

static int raw_pwritev(struct blk_image *img, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    return blk_file_pwritev(img->fd, iov, iovcnt, offset);
}

static int raw_flush(struct blk_image *img)
{
    return fdatasync(img->fd) < 0 ? -errno : 0;
}

static int write_zero_buffer(struct blk_image *img, uint64_t offset, uint64_t len)
{
    static const size_t chunk = 1 << 20;
    void *zero = calloc(1, chunk);
    int r = 0;

    if (!zero)
        return -ENOMEM;
    while (len && r == 0) {
        size_t n = len < chunk ? (size_t)len : chunk;
        r = blk_file_pwrite(img->fd, zero, n, offset);
        offset += n;
        len -= n;
    }
    free(zero);
    return r;
}

static int raw_fallocate(int fd, int mode, uint64_t offset, uint64_t len)
{
    return fallocate(fd, mode, (off_t)offset, (off_t)len) < 0 ? -errno : 0;
}

static bool unsupported(int r)
{
    return r == -EOPNOTSUPP || r == -ENOSYS || r == -EINVAL || r == -ENODEV;
}

static int raw_discard(struct blk_image *img, uint64_t offset, uint64_t len)
{
    struct raw_state *s = img->state;

    if (s->no_punch)
        return 0;
    int r = raw_fallocate(img->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len);
    if (unsupported(r)) {
        s->no_punch = true;
        return 0; /* discard is advisory */
    }
    return r;
}

static int raw_write_zeroes(struct blk_image *img, uint64_t offset, uint64_t len, bool may_unmap)
{
    struct raw_state *s = img->state;
    int r;

    if (may_unmap && !s->no_punch) {
        r = raw_fallocate(img->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len);
        if (!unsupported(r))
            return r;
        s->no_punch = true;
    }
    if (!s->no_zero_range) {
        r = raw_fallocate(img->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, len);
        if (!unsupported(r))
            return r;
        s->no_zero_range = true;
    }
    return write_zero_buffer(img, offset, len);
}

static void raw_close(struct blk_image *img)
{
    free(img->state);
    img->state = NULL;
}

const struct blk_driver blk_raw_driver = {
    .name = "raw",
    .thread_safe = true,
    .async_workers = 4,
    .use_uring = true,
    .open = raw_open,
    .preadv = raw_preadv,
    .pwritev = raw_pwritev,
    .flush = raw_flush,
    .discard = raw_discard,
    .write_zeroes = raw_write_zeroes,
    .close = raw_close,
};
