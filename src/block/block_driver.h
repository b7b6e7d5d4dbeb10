/*
 * Inside the block layer: what a format driver (raw, qcow2) provides and the
 * image object every driver shares. Not for use outside src/block/.
 */
#ifndef KRUNKIT_BLOCK_BLOCK_DRIVER_H
#define KRUNKIT_BLOCK_BLOCK_DRIVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "block/block.h"

struct blk_async;

/* Backing chains longer than this are refused (QEMU has no fixed limit). */
#define BLK_MAX_BACKING_DEPTH 16

/* The images above an image being opened, for loop detection. */
struct blk_chain {
    dev_t dev;
    ino_t ino;
    const struct blk_chain *child; /* the image whose backing we are */
    unsigned depth;
};

struct blk_driver {
    const char *name;
    /* true: calls may run concurrently; false: the image mutex serializes them */
    bool thread_safe;
    /* Worker threads for asynchronous requests. */
    unsigned async_workers;
    /* Reads, writes and flushes go straight to the file through io_uring. */
    bool use_uring;
    int (*open)(struct blk_image *img, const struct blk_chain *chain);
    int (*preadv)(struct blk_image *img, const struct iovec *iov, int iovcnt, uint64_t offset);
    int (*pwritev)(struct blk_image *img, const struct iovec *iov, int iovcnt, uint64_t offset);
    int (*flush)(struct blk_image *img);
    int (*discard)(struct blk_image *img, uint64_t offset, uint64_t len);
    int (*write_zeroes)(struct blk_image *img, uint64_t offset, uint64_t len, bool may_unmap);
    void (*close)(struct blk_image *img);
};

struct blk_image {
    const struct blk_driver *drv;
    void *state; /* the driver's */
    char *path;
    int fd;
    bool readonly;
    uint64_t size;
    pthread_mutex_t mutex; /* serializes drivers that are not thread_safe */
    struct blk_async *async;
};

extern const struct blk_driver blk_raw_driver;
extern const struct blk_driver blk_qcow2_driver;

/* Opens a backing file read-only; `chain` lists the images above it. */
int blk_open_backing(const char *path, int fmt /* enum blk_format or -1: probe */,
                     const struct blk_chain *chain, struct blk_image **out);

/* Total length of an iovec array; -EINVAL when it overflows. */
int64_t blk_iov_length(const struct iovec *iov, int iovcnt);
/*
 * Describes bytes [skip, skip + len) of iov in out (at most max entries);
 * returns the entry count or -EINVAL when out is too small.
 */
int blk_iov_slice(const struct iovec *iov, int iovcnt, uint64_t skip, uint64_t len,
                  struct iovec *out, int max);
void blk_iov_to_buf(const struct iovec *iov, int iovcnt, uint64_t skip, void *buf, size_t len);
void blk_iov_from_buf(const struct iovec *iov, int iovcnt, uint64_t skip, const void *buf,
                      size_t len);
void blk_iov_memset(const struct iovec *iov, int iovcnt, uint64_t skip, int c, size_t len);

/* Full-length positional I/O on a file; short transfers become -EIO. */
int blk_file_preadv(int fd, const struct iovec *iov, int iovcnt, uint64_t offset);
int blk_file_pwritev(int fd, const struct iovec *iov, int iovcnt, uint64_t offset);
int blk_file_pread(int fd, void *buf, size_t len, uint64_t offset);
int blk_file_pwrite(int fd, const void *buf, size_t len, uint64_t offset);

/* Asynchronous engine (block_async.c). */
int blk_async_init(struct blk_image *img);
void blk_async_fini(struct blk_image *img);

#endif
