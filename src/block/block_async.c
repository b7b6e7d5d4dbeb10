/*
 * Asynchronous requests (blk_submit / blk_complete): a small pool of worker
 * threads per image runs the synchronous calls; finished requests are
 * collected on a list and announced through one eventfd, written only when
 * the list goes from empty to non-empty, so a burst of completions costs
 * the event loop one wakeup and the device one interrupt.
 *
 * Formats whose driver is not thread-safe (qcow2) get one worker: the
 * image mutex would serialize more anyway.
 */
#include "block/block_driver.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cli/log.h"

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
};

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
    blk_complete(img);
    close(a->efd);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->mutex);
    free(a);
    img->async = NULL;
}
