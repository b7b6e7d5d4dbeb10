/*
 * Asynchronous requests (blk_submit / blk_complete).
 *
 * Raw images read, write and flush through io_uring (liburing): one ring per
 * image, its completions announced on the image's eventfd. Everything else
 * (qcow2, discard and write-zeroes, and raw when io_uring is unavailable)
 * goes to a small pool of worker threads running the synchronous calls;
 * their finished requests are collected on a list and announced through the
 * same eventfd, written only when the list goes from empty to non-empty. A
 * burst of completions thus costs the event loop one wakeup and the device
 * one interrupt.
 */
#include "block/block_driver.h"

#include <errno.h>
#include <limits.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/sandbox.h"

#define BLK_ASYNC_MAX_WORKERS 8

struct blk_async {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    struct blk_req *queue_head, *queue_tail; /* submitted, not started */
    struct blk_req *done_head, *done_tail;   /* finished, done() not yet run */
    unsigned in_flight;                      /* submitted and not yet done() */
    bool stopping;
    int efd;
    unsigned nthreads;
    pthread_t threads[BLK_ASYNC_MAX_WORKERS];
    bool uring_ok;
    struct io_uring ring;     /* used only by the submitting thread */
    unsigned uring_in_flight; /* queued on the ring, done() not yet run */
    bool plugged;             /* blk_plug(): hold submissions until blk_unplug() */
    unsigned unsubmitted;     /* queued on the ring, not yet handed to the kernel */
};

#define BLK_URING_DEPTH 256

static int run_request(struct blk_image *img, struct blk_req *req)
{
    switch (req->op) {
    case BLK_OP_READ:
        return blk_preadv(img, req->iov, req->iovcnt, req->offset);
    case BLK_OP_WRITE:
        return blk_pwritev(img, req->iov, req->iovcnt, req->offset);
    case BLK_OP_FLUSH:
        return blk_flush(img);
    case BLK_OP_DISCARD:
        return blk_discard(img, req->offset, req->len);
    case BLK_OP_WRITE_ZEROES:
        return blk_write_zeroes(img, req->offset, req->len, false);
    case BLK_OP_WRITE_ZEROES_UNMAP:
        return blk_write_zeroes(img, req->offset, req->len, true);
    }
    return -EINVAL;
}

static void *worker(void *opaque)
{
    if (sandbox_thread_enter(SANDBOX_BLK_WORKER) < 0)
        return NULL; /* logged; the other workers and the ring still serve */
    struct blk_image *img = opaque;
    struct blk_async *a = img->async;

    pthread_mutex_lock(&a->mutex);
    for (;;) {
        while (!a->queue_head && !a->stopping)
            pthread_cond_wait(&a->cond, &a->mutex);
        struct blk_req *req = a->queue_head;
        if (!req)
            break; /* stopping and nothing left */
        a->queue_head = req->link;
        if (!a->queue_head)
            a->queue_tail = NULL;
        pthread_mutex_unlock(&a->mutex);

        req->result = run_request(img, req);
        req->link = NULL;

        pthread_mutex_lock(&a->mutex);
        bool was_empty = !a->done_head;
        if (a->done_tail)
            a->done_tail->link = req;
        else
            a->done_head = req;
        a->done_tail = req;
        if (was_empty) {
            uint64_t one = 1;
            if (write(a->efd, &one, sizeof(one)) < 0)
                log_warn("%s: completion eventfd write failed", img->path);
        }
    }
    pthread_mutex_unlock(&a->mutex);
    return NULL;
}

/*
 * The ring starts disabled so that, before anything can be submitted, it is
 * limited to the operations submit_uring queues (readv, writev, fsync, and
 * the nop that wakes a stuck submission) and to no further registrations:
 * a hijacked thread that reaches the ring cannot turn it into an open(),
 * a socket or a file copy, which seccomp would never see (io_uring requests
 * are not system calls).
 */
/*
 * liburing 2.3 declares io_uring_register_restrictions and
 * io_uring_enable_rings, but Debian's liburing.so.2.3 does not export them
 * (its symbol map lacks them): the two registrations go to the kernel
 * directly.
 */
static int uring_register(struct io_uring *ring, unsigned op, const void *arg, unsigned n)
{
    return syscall(__NR_io_uring_register, ring->ring_fd, op, arg, n) < 0 ? -errno : 0;
}

static int uring_setup(struct blk_async *a)
{
    struct io_uring_params p = {.flags = IORING_SETUP_R_DISABLED};
    int r = io_uring_queue_init_params(BLK_URING_DEPTH, &a->ring, &p);
    if (r < 0)
        return r;
    static const uint8_t ops[] = {IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC,
                                  IORING_OP_NOP};
    struct io_uring_restriction res[sizeof(ops)];
    memset(res, 0, sizeof(res));
    for (size_t i = 0; i < sizeof(ops); i++) {
        res[i].opcode = IORING_RESTRICTION_SQE_OP;
        res[i].sqe_op = ops[i];
    }
    /* The eventfd first: after the restrictions no register operation is left. */
    r = io_uring_register_eventfd(&a->ring, a->efd);
    if (r == 0)
        r = uring_register(&a->ring, IORING_REGISTER_RESTRICTIONS, res, (unsigned)sizeof(ops));
    if (r == 0)
        r = uring_register(&a->ring, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
    if (r < 0)
        io_uring_queue_exit(&a->ring);
    return r;
}

int blk_async_init(struct blk_image *img)
{
    struct blk_async *a;
    int r;

    if (img->async)
        return 0;
    a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    pthread_mutex_init(&a->mutex, NULL);
    pthread_cond_init(&a->cond, NULL);
    a->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->efd < 0) {
        r = -errno;
        free(a);
        return r;
    }
    img->async = a;
    /* KRUNKIT_NO_IO_URING=1: workers only (kernels or sandboxes where io_uring misbehaves). */
    const char *no_uring = getenv("KRUNKIT_NO_IO_URING");
    bool want_uring = img->drv->use_uring && !(no_uring && no_uring[0] == '1');
    if (want_uring && uring_setup(a) == 0)
        a->uring_ok = true;
    if (want_uring && !a->uring_ok)
        log_debug("%s: io_uring unavailable, using worker threads", img->path);
    unsigned want = img->drv->async_workers;
    if (want < 1)
        want = 1;
    if (want > BLK_ASYNC_MAX_WORKERS)
        want = BLK_ASYNC_MAX_WORKERS;
    for (unsigned i = 0; i < want; i++) {
        r = pthread_create(&a->threads[i], NULL, worker, img);
        if (r) {
            log_error("%s: cannot start I/O worker: error %d", img->path, r);
            if (a->nthreads == 0) {
                close(a->efd);
                img->async = NULL;
                free(a);
                return -r;
            }
            break;
        }
        a->nthreads++;
    }
    return 0;
}

/*
 * Hands every held request to the kernel. A failure here (the kernel short
 * of memory) is retried briefly; what is still held after that goes with
 * the next submission.
 */
static void submit_held(struct blk_image *img)
{
    struct blk_async *a = img->async;
    for (int tries = 0; a->unsubmitted && tries < 100; tries++) {
        int r = io_uring_submit(&a->ring);
        if (r >= 0) {
            a->unsubmitted = (unsigned)r >= a->unsubmitted ? 0 : a->unsubmitted - (unsigned)r;
            continue;
        }
        if (r != -EINTR && r != -EAGAIN && r != -EBUSY) {
            log_error("%s: io_uring submission failed: %s", img->path, strerror(-r));
            return;
        }
        usleep(1000);
    }
}

void blk_plug(struct blk_image *img)
{
    if (img->async)
        img->async->plugged = true;
}

void blk_unplug(struct blk_image *img)
{
    struct blk_async *a = img->async;
    if (!a)
        return;
    a->plugged = false;
    if (a->unsubmitted)
        submit_held(img);
}

/*
 * Queues a read, write or flush on the ring. Returns false when the request
 * should go to the workers instead (invalid: they report the error; ring
 * full).
 */
static bool submit_uring(struct blk_image *img, struct blk_req *req)
{
    struct blk_async *a = img->async;

    if (!a->uring_ok || req->op > BLK_OP_FLUSH || req->iovcnt > IOV_MAX)
        return false;
    if (req->op != BLK_OP_FLUSH) {
        int64_t len = blk_iov_length(req->iov, req->iovcnt);
        if (len <= 0 || req->offset > img->size || (uint64_t)len > img->size - req->offset ||
            (req->op == BLK_OP_WRITE && img->readonly))
            return false;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&a->ring);
    if (!sqe && a->unsubmitted) {
        /* The submission ring is full of held requests: hand them over first. */
        submit_held(img);
        sqe = io_uring_get_sqe(&a->ring);
    }
    if (!sqe)
        return false;
    switch (req->op) {
    case BLK_OP_READ:
        io_uring_prep_readv(sqe, img->fd, req->iov, (unsigned)req->iovcnt, req->offset);
        break;
    case BLK_OP_WRITE:
        io_uring_prep_writev(sqe, img->fd, req->iov, (unsigned)req->iovcnt, req->offset);
        break;
    default:
        io_uring_prep_fsync(sqe, img->fd, IORING_FSYNC_DATASYNC);
        break;
    }
    io_uring_sqe_set_data(sqe, req);
    if (a->plugged) {
        a->unsubmitted++;
        a->uring_in_flight++;
        return true;
    }
    if (io_uring_submit(&a->ring) < 0) {
        /* Not taken by the kernel: give the slot back as a no-op and use a worker. */
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data(sqe, NULL);
        a->uring_in_flight++;
        return false;
    }
    a->uring_in_flight++;
    return true;
}

/* Runs done() for every request the ring finished. */
static void reap_uring(struct blk_image *img)
{
    struct blk_async *a = img->async;
    struct io_uring_cqe *cqe;

    while (a->uring_ok && io_uring_peek_cqe(&a->ring, &cqe) == 0) {
        struct blk_req *req = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&a->ring, cqe);
        a->uring_in_flight--;
        if (!req)
            continue;
        if (req->op == BLK_OP_FLUSH) {
            req->result = res < 0 ? res : 0;
        } else if (res >= 0 && res == blk_iov_length(req->iov, req->iovcnt)) {
            req->result = 0;
        } else if (res == -EINTR || res == -EAGAIN || res >= 0) {
            /* Interrupted or short: finish it here, synchronously (rare). */
            req->result = req->op == BLK_OP_READ
                              ? blk_file_preadv(img->fd, req->iov, req->iovcnt, req->offset)
                              : blk_file_pwritev(img->fd, req->iov, req->iovcnt, req->offset);
        } else {
            req->result = res;
        }
        req->done(req);
    }
}

int blk_submit(struct blk_image *img, struct blk_req *req)
{
    int r;

    if (!req || !req->done || req->op < BLK_OP_READ || req->op > BLK_OP_WRITE_ZEROES_UNMAP)
        return -EINVAL;
    if (!img->async && (r = blk_async_init(img)) < 0)
        return r;
    struct blk_async *a = img->async;
    req->link = NULL;
    req->result = 0;
    if (submit_uring(img, req))
        return 0;
    pthread_mutex_lock(&a->mutex);
    if (a->queue_tail)
        a->queue_tail->link = req;
    else
        a->queue_head = req;
    a->queue_tail = req;
    a->in_flight++;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->mutex);
    return 0;
}

int blk_completion_fd(struct blk_image *img)
{
    if (!img->async && blk_async_init(img) < 0)
        return -1;
    return img->async->efd;
}

void blk_complete(struct blk_image *img)
{
    struct blk_async *a = img->async;
    uint64_t count;

    if (!a)
        return;
    if (read(a->efd, &count, sizeof(count)) < 0 && errno != EAGAIN)
        log_warn("%s: completion eventfd read failed", img->path);
    reap_uring(img);
    pthread_mutex_lock(&a->mutex);
    struct blk_req *req = a->done_head;
    a->done_head = a->done_tail = NULL;
    pthread_mutex_unlock(&a->mutex);
    while (req) {
        struct blk_req *next = req->link;
        req->link = NULL;
        pthread_mutex_lock(&a->mutex);
        a->in_flight--;
        pthread_mutex_unlock(&a->mutex);
        req->done(req);
        req = next;
    }
}

void blk_async_fini(struct blk_image *img)
{
    struct blk_async *a = img->async;

    if (!a)
        return;
    pthread_mutex_lock(&a->mutex);
    a->stopping = true;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->mutex);
    for (unsigned i = 0; i < a->nthreads; i++)
        pthread_join(a->threads[i], NULL);
    /* Workers drained the queue; run the remaining done() callbacks. */
    if (a->uring_ok)
        submit_held(img); /* a close between plug and unplug */
    blk_complete(img);
    while (a->uring_ok && a->uring_in_flight) {
        struct io_uring_cqe *cqe;
        if (io_uring_wait_cqe(&a->ring, &cqe) < 0)
            break;
        reap_uring(img);
    }
    if (a->uring_ok)
        io_uring_queue_exit(&a->ring);
    close(a->efd);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->mutex);
    free(a);
    img->async = NULL;
}
