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
/*
 * Metadata the drivers of one chain may allocate at open, all images
 * together (qcow2: L1 and refcount tables, table caches, cluster buffers).
 * Each image has its own limits too; this one keeps a deep chain of
 * images each just under them from adding up to gigabytes.
 */
#define BLK_MAX_CHAIN_METADATA (256ull << 20)

/*
 * An image being opened, and the images above it: for loop detection, the
 * depth limit, the metadata budget, and resolving the backing file names
 * it contains. Lives only while blk_open runs.
 */
struct blk_chain {
    dev_t dev;
    ino_t ino;
    const struct blk_chain *child; /* the image whose backing we are */
    unsigned depth;
    const char *path; /* as shown in messages */
    int dirfd;        /* O_PATH directory its backing names are relative to */
    const struct blk_open_opts *opts;
    uint64_t *meta_bytes; /* charged so far by the whole chain */
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

/*
 * Opens the backing file `name` (as recorded in the image `chain`
 * describes, relative to its directory) read-only as `fmt`. Refused unless
 * it is a regular file that lies beneath chain->dirfd (or the user allowed
 * files outside it).
 */
int blk_open_backing(const struct blk_chain *chain, const char *name, enum blk_format fmt,
                     struct blk_image **out);
/*
 * Adds `bytes` to the chain's metadata budget; -EFBIG, after a log_error
 * naming the image and the limit, when that would pass
 * BLK_MAX_CHAIN_METADATA.
 */
int blk_chain_charge(const struct blk_chain *chain, uint64_t bytes);

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
