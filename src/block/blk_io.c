/*
 * I/O vector arithmetic and full-length positional file I/O shared by the
 * format drivers. preadv/pwritev may transfer less than asked (signals,
 * end of file); these helpers loop until done and turn a short read into
 * -EIO.
 */
#include "block/block_driver.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

int64_t blk_iov_length(const struct iovec *iov, int iovcnt)
{
    uint64_t total = 0;

    if (iovcnt < 0 || (iovcnt > 0 && !iov))
        return -EINVAL;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > (uint64_t)INT64_MAX - total)
            return -EINVAL;
        total += iov[i].iov_len;
    }
    return (int64_t)total;
}

int blk_iov_slice(const struct iovec *iov, int iovcnt, uint64_t skip, uint64_t len,
                  struct iovec *out, int max)
{
    int n = 0;

    for (int i = 0; i < iovcnt && len > 0; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        uint64_t take = iov[i].iov_len - skip;
        if (take > len)
            take = len;
        if (n == max)
            return -EINVAL;
        out[n].iov_base = (char *)iov[i].iov_base + skip;
        out[n].iov_len = take;
        n++;
        len -= take;
        skip = 0;
    }
    return len ? -EINVAL : n;
}

/* Calls fn(segment, bytes, position in buf) for each part of [skip, skip+len). */
#define IOV_WALK(iov, iovcnt, skip, len, STMT)                                                     \
    do {                                                                                           \
        size_t done_ = 0;                                                                          \
        uint64_t skip_ = (skip);                                                                   \
        for (int i_ = 0; i_ < (iovcnt) && done_ < (len); i_++) {                                   \
            if (skip_ >= (iov)[i_].iov_len) {                                                      \
                skip_ -= (iov)[i_].iov_len;                                                        \
                continue;                                                                          \
            }                                                                                      \
            size_t n_ = (iov)[i_].iov_len - skip_;                                                 \
            if (n_ > (len)-done_)                                                                  \
                n_ = (len)-done_;                                                                  \
            char *seg_ = (char *)(iov)[i_].iov_base + skip_;                                       \
            STMT;                                                                                  \
            done_ += n_;                                                                           \
            skip_ = 0;                                                                             \
        }                                                                                          \
    } while (0)

void blk_iov_to_buf(const struct iovec *iov, int iovcnt, uint64_t skip, void *buf, size_t len)
{
    IOV_WALK(iov, iovcnt, skip, len, memcpy((char *)buf + done_, seg_, n_));
}

void blk_iov_from_buf(const struct iovec *iov, int iovcnt, uint64_t skip, const void *buf,
                      size_t len)
{
    IOV_WALK(iov, iovcnt, skip, len, memcpy(seg_, (const char *)buf + done_, n_));
}

void blk_iov_memset(const struct iovec *iov, int iovcnt, uint64_t skip, int c, size_t len)
{
    IOV_WALK(iov, iovcnt, skip, len, memset(seg_, c, n_));
}

/* Describes up to `max` entries of iov from byte `skip` on; returns the count. */
static int iov_window(const struct iovec *iov, int iovcnt, uint64_t skip, struct iovec *out,
                      int max)
{
    int n = 0;

    for (int i = 0; i < iovcnt && n < max; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        out[n].iov_base = (char *)iov[i].iov_base + skip;
        out[n].iov_len = iov[i].iov_len - skip;
        skip = 0;
        n++;
    }
    return n;
}

#define BLK_IOV_WINDOW 64

static int file_rw(int fd, const struct iovec *iov, int iovcnt, uint64_t offset, bool write)
{
    struct iovec window[BLK_IOV_WINDOW];
    int64_t total = blk_iov_length(iov, iovcnt);

    if (total < 0)
        return (int)total;
    if ((uint64_t)total > (uint64_t)INT64_MAX - offset)
        return -EINVAL;
    for (uint64_t pos = 0; pos < (uint64_t)total;) {
        int n = iov_window(iov, iovcnt, pos, window, BLK_IOV_WINDOW);
        ssize_t r = write ? pwritev(fd, window, n, (off_t)(offset + pos))
                          : preadv(fd, window, n, (off_t)(offset + pos));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return write ? -ENOSPC : -EIO;
        pos += (uint64_t)r;
    }
    return 0;
}

int blk_file_preadv(int fd, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    return file_rw(fd, iov, iovcnt, offset, false);
}

int blk_file_pwritev(int fd, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    return file_rw(fd, iov, iovcnt, offset, true);
}

int blk_file_pread(int fd, void *buf, size_t len, uint64_t offset)
{
    struct iovec v = {.iov_base = buf, .iov_len = len};
    return len ? file_rw(fd, &v, 1, offset, false) : 0;
}

int blk_file_pwrite(int fd, const void *buf, size_t len, uint64_t offset)
{
    struct iovec v = {.iov_base = (void *)buf, .iov_len = len};
    return len ? file_rw(fd, &v, 1, offset, true) : 0;
}
