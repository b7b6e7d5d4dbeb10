/*
 * Block layer: disk images (raw, qcow2) behind one small interface, used by
 * virtio-blk. Synchronous calls return 0 or -errno and transfer the full
 * length or fail. The asynchronous calls queue requests (io_uring for raw
 * images, worker threads otherwise) and report completions through one fd
 * an event loop can wait on.
 *
 * Images are locked on open with the same OFD byte locks QEMU uses
 * (block/file-posix.c), so krunkit and QEMU refuse each other's writers.
 */
#ifndef KRUNKIT_BLOCK_BLOCK_H
#define KRUNKIT_BLOCK_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/config.h"

struct blk_image;

/*
 * How blk_open treats what the image itself asks for. The defaults (all
 * false, or a NULL pointer) are the safe ones: an image is untrusted input
 * and must not make krunkit open host files the user did not hand over.
 */
struct blk_open_opts {
    /*
     * Backing files may lie outside the directory of the image that names
     * them (absolute names, "..", symlinks leaving that directory). Even
     * then they must be regular files, are opened read-only and need a
     * recorded backing format. virtio-blk's allowBackingOutside=true.
     */
    bool allow_backing_outside;
};

/*
 * Opens `path` as `fmt` (the user's format: never probed) with its whole
 * backing chain; opts may be NULL for the defaults. On failure returns
 * -errno after a log_error naming the file and the reason (locked by
 * another process, unsupported qcow2 feature, corrupt header, backing file
 * refused, metadata past a limit, ...). Every file of the chain is opened
 * here and kept until blk_close: nothing reopens a path later, so an
 * image opened once may be kept across guest reboots.
 */
int blk_open(const char *path, enum blk_format fmt, bool readonly, const struct blk_open_opts *opts,
             struct blk_image **out);
/* Virtual size in bytes. */
uint64_t blk_size(const struct blk_image *img);
bool blk_readonly(const struct blk_image *img);
const char *blk_path(const struct blk_image *img);

/*
 * Synchronous I/O, callable from several threads at once. Requests must lie
 * within [0, blk_size): others fail with -EINVAL; writes to a read-only
 * image fail with -EROFS.
 */
int blk_preadv(struct blk_image *img, const struct iovec *iov, int iovcnt, uint64_t offset);
int blk_pwritev(struct blk_image *img, const struct iovec *iov, int iovcnt, uint64_t offset);
/* Makes every completed write durable (fdatasync; for qcow2 also metadata). */
int blk_flush(struct blk_image *img);
/* Advisory: the range may read back as zeroes or as its old contents. */
int blk_discard(struct blk_image *img, uint64_t offset, uint64_t len);
/* The range reads back as zeroes; may_unmap lets the image free the space. */
int blk_write_zeroes(struct blk_image *img, uint64_t offset, uint64_t len, bool may_unmap);
/*
 * Finishes queued asynchronous requests (their done() runs before this
 * returns), flushes, unlocks and frees.
 */
void blk_close(struct blk_image *img);

/* Asynchronous I/O. */
enum blk_op {
    BLK_OP_READ,
    BLK_OP_WRITE,
    BLK_OP_FLUSH,
    BLK_OP_DISCARD,
    BLK_OP_WRITE_ZEROES,       /* zeroes, the range stays allocated */
    BLK_OP_WRITE_ZEROES_UNMAP, /* zeroes, the image may free the space */
};

struct blk_req {
    int op;                  /* enum blk_op */
    uint64_t offset, len;    /* len: DISCARD/WRITE_ZEROES only; READ/WRITE use iov */
    const struct iovec *iov; /* READ/WRITE; must stay valid until done() */
    int iovcnt;
    int result; /* 0 or -errno, set before done() runs */
    void (*done)(struct blk_req *req);
    void *opaque;
    struct blk_req *link; /* private to the block layer */
};

/*
 * Queues req; done() runs later from blk_complete(). Returns 0, or -errno
 * when the request cannot be queued (done() then never runs). Call from one
 * thread per image.
 */
int blk_submit(struct blk_image *img, struct blk_req *req);
/*
 * Between blk_plug() and blk_unplug(), requests bound for io_uring are
 * queued but handed to the kernel together, with one system call, at
 * blk_unplug() (a device plugs around one pass over its queue).
 */
void blk_plug(struct blk_image *img);
void blk_unplug(struct blk_image *img);
/* Readable when completions are waiting; put it in an epoll loop. */
int blk_completion_fd(struct blk_image *img);
/* Runs done() for every finished request; call when the fd is readable. */
void blk_complete(struct blk_image *img);

#endif
