/*
 * The generic virtio device (virtio 1.2): status and feature negotiation
 * (2.1, 2.2, 3.1.1), queue enabling (2.7), reset (2.4) that never waits on
 * a vCPU thread, quiesce/resume for a paused VM, the I/O thread's kick and
 * backend fd handlers, and the one queue-drain loop devices share.
 *
 * The transport (virtio/pci.c) is attached by virtio_dev_init and reached
 * only through dev->tops.
 */
#include "virtio/virtio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "virtio/devices.h"
#include "virtio/pci.h"

static void signal_efd(int fd)
{
    uint64_t one = 1;
    if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
        log_debug("virtio: eventfd write: %m");
}

/* ---- notifications ---- */

void virtio_notify_queue(struct virtio_dev *dev, unsigned q)
{
    if (q < dev->nqueues && dev->tops)
        dev->tops->notify_queue(dev, q);
}

void virtio_queue_flush(struct virtio_dev *dev, unsigned q)
{
    if (q < dev->nqueues && virtq_flush(&dev->queues[q].vq))
        virtio_notify_queue(dev, q);
}

void virtio_notify_config(struct virtio_dev *dev)
{
    dev->config_generation++;
    if (dev->tops)
        dev->tops->notify_config(dev);
}

void virtio_set_needs_reset(struct virtio_dev *dev)
{
    if (dev->status & VIRTIO_CONFIG_S_NEEDS_RESET)
        return;
    log_warn("%s: device needs reset after a driver error", dev->name);
    dev->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    if (dev->status & VIRTIO_CONFIG_S_DRIVER_OK)
        virtio_notify_config(dev);
}

/* A device callback may have found a malformed queue: report it once. */
static void check_broken(struct virtio_dev *dev)
{
    for (unsigned i = 0; i < dev->nqueues; i++)
        if (dev->queues[i].vq.broken)
            virtio_set_needs_reset(dev);
}

void virtio_queue_drain(struct virtio_dev *dev, unsigned q, virtio_chain_fn fn, void *opaque)
{
    struct virtq *vq = virtio_vq(dev, q);
    for (;;) {
        struct virtq_elem *e;
        int rc;
        virtq_disable_notify(vq);
        while ((rc = virtq_pop(vq, &e)) > 0)
            if (fn(dev, vq, e, opaque) == VIRTIO_CHAIN_STOP)
                goto out;
        if (rc < 0 || !virtq_enable_notify(vq))
            break;
    }
out:
    virtio_queue_flush(dev, q);
}

/* ---- status, features, queues ---- */

static void kick_enabled_queues(struct virtio_dev *dev)
{
    for (unsigned i = 0; i < dev->nqueues; i++)
        if (dev->queues[i].enabled)
            signal_efd(dev->queues[i].kick_fd);
}

static void reset_queues(struct virtio_dev *dev)
{
    for (unsigned i = 0; i < dev->nqueues; i++) {
        struct virtio_queue *q = &dev->queues[i];
        virtq_disable(&q->vq);
        q->enabled = false;
        q->size = q->max_size;
        q->desc = q->avail = q->used = 0;
    }
    dev->guest_features = 0;
    if (dev->tops)
        dev->tops->reset(dev);
}

/*
 * The queues stop at once, so nothing more is popped or published; only
 * host I/O already writing into guest buffers may outlive this, and until
 * it has (virtio_dev_reset_done) the driver keeps reading a non-zero
 * status, so it cannot reuse those buffers (2.4.1, 4.1.4.3.1).
 */
static void reset_locked(struct virtio_dev *dev)
{
    if (dev->resetting)
        return; /* already on its way to 0 */
    int rc = dev->ops->reset ? dev->ops->reset(dev) : 0;
    reset_queues(dev);
    if (rc == -EINPROGRESS && dev->status) {
        dev->resetting = true;
        log_debug("%s: reset waits for host I/O in flight", dev->name);
    } else {
        dev->status = 0;
    }
}

void virtio_dev_reset_done(struct virtio_dev *dev)
{
    if (!dev->resetting)
        return;
    dev->resetting = false;
    dev->status = 0;
    log_debug("%s: reset complete", dev->name);
}

uint8_t virtio_dev_get_status(const struct virtio_dev *dev)
{
    return dev->status;
}

void virtio_dev_set_status(struct virtio_dev *dev, uint8_t v)
{
    if (dev->resetting)
        return; /* the driver is to poll until it reads 0 (2.4.2) */
    if (v == 0) {
        reset_locked(dev);
        return;
    }
    uint8_t old = dev->status;
    /*
     * A driver never clears a status bit but by a reset (2.1.2). One that
     * tries, say to renegotiate features under live queues, gets nothing
     * but NEEDS_RESET: what was negotiated stays as it was.
     */
    uint8_t cleared = old & ~v & ~VIRTIO_CONFIG_S_NEEDS_RESET;
    if (cleared) {
        log_warn("%s: driver cleared status bits 0x%x without a reset", dev->name, cleared);
        virtio_set_needs_reset(dev);
        return;
    }
    uint8_t set = v & ~old;
    if (set & VIRTIO_CONFIG_S_FEATURES_OK) {
        uint64_t extra = dev->guest_features & ~dev->host_features;
        if (extra || !virtio_has_feature(dev, VIRTIO_F_VERSION_1)) {
            log_warn("%s: driver features 0x%llx refused (%s)", dev->name,
                     (unsigned long long)dev->guest_features,
                     extra ? "not offered" : "VIRTIO_F_VERSION_1 missing");
            v &= ~VIRTIO_CONFIG_S_FEATURES_OK;
        }
    }
    if ((set & VIRTIO_CONFIG_S_DRIVER_OK) && !(v & VIRTIO_CONFIG_S_FEATURES_OK)) {
        log_warn("%s: DRIVER_OK without FEATURES_OK ignored", dev->name);
        v &= ~VIRTIO_CONFIG_S_DRIVER_OK;
    }
    /* NEEDS_RESET belongs to the device; only a reset clears it. */
    dev->status =
        (uint8_t)((v & ~VIRTIO_CONFIG_S_NEEDS_RESET) | (old & VIRTIO_CONFIG_S_NEEDS_RESET));
    if ((dev->status & ~old) & VIRTIO_CONFIG_S_DRIVER_OK) {
        if (dev->ops->activate)
            dev->ops->activate(dev);
        /* Buffers may have been added (and kicked) before DRIVER_OK. */
        kick_enabled_queues(dev);
    }
}

void virtio_dev_queue_enable(struct virtio_dev *dev, unsigned qi)
{
    if (qi >= dev->nqueues || dev->resetting)
        return;
    struct virtio_queue *q = &dev->queues[qi];
    if (q->enabled)
        return;
    if (!(dev->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
        log_warn("%s: queue %u enabled before FEATURES_OK", dev->name, q->index);
        virtio_set_needs_reset(dev);
        return;
    }
    if (q->size > q->max_size) {
        log_warn("%s: queue %u size %u above the maximum %u", dev->name, q->index, q->size,
                 q->max_size);
        virtio_set_needs_reset(dev);
        return;
    }
    int rc = virtq_enable(&q->vq, dev->m->mem, q->size, q->desc, q->avail, q->used,
                          virtio_has_feature(dev, VIRTIO_RING_F_EVENT_IDX),
                          virtio_has_feature(dev, VIRTIO_RING_F_INDIRECT_DESC));
    if (rc) {
        log_warn("%s: queue %u layout refused (size %u, desc 0x%llx, avail 0x%llx, used 0x%llx)",
                 dev->name, q->index, q->size, (unsigned long long)q->desc,
                 (unsigned long long)q->avail, (unsigned long long)q->used);
        virtio_set_needs_reset(dev);
        return;
    }
    q->enabled = true;
}

void virtio_dev_kick(struct virtio_dev *dev, unsigned q)
{
    if (q < dev->nqueues)
        signal_efd(dev->queues[q].kick_fd);
}

/* ---- the I/O thread ---- */

static void kick_handler(void *opaque, uint32_t events)
{
    struct virtio_queue *q = opaque;
    struct virtio_dev *dev = q->dev;
    uint64_t cnt;
    (void)events;
    /*
     * Quiesced (the loop is about to park): leave the kick in its eventfd
     * for the resume, and touch nothing.
     */
    if (__atomic_load_n(&dev->quiesced, __ATOMIC_ACQUIRE))
        return;
    if (read(q->kick_fd, &cnt, sizeof(cnt)) < 0)
        return;
    pthread_mutex_lock(&dev->lock);
    if (virtio_running(dev) && q->enabled && virtq_ready(&q->vq) && dev->ops->queue_notify) {
        dev->ops->queue_notify(dev, q->index);
        check_broken(dev);
    }
    pthread_mutex_unlock(&dev->lock);
}

static void fd_handler(void *opaque, uint32_t events)
{
    struct virtio_fd_handler *h = opaque;
    struct virtio_dev *dev = h->dev;
    pthread_mutex_lock(&dev->lock);
    /* Quiesced: backend data waits in its fd for the resume. */
    if (h->cb && h->fd >= 0 && !dev->quiesced) {
        h->cb(dev, h->fd, events);
        check_broken(dev);
    }
    pthread_mutex_unlock(&dev->lock);
}

int virtio_dev_add_fd(struct virtio_dev *dev, int fd, uint32_t events,
                      void (*cb)(struct virtio_dev *dev, int fd, uint32_t events))
{
    for (unsigned i = 0; i < VIRTIO_MAX_FD_HANDLERS; i++) {
        struct virtio_fd_handler *h = &dev->fd_handlers[i];
        if (h->fd >= 0)
            continue;
        h->dev = dev;
        h->fd = fd;
        h->cb = cb;
        int rc = evloop_add(dev->loop, fd, events, fd_handler, h);
        if (rc) {
            h->fd = -1;
            h->cb = NULL;
        }
        return rc;
    }
    return -ENOSPC;
}

int virtio_dev_del_fd(struct virtio_dev *dev, int fd)
{
    for (unsigned i = 0; i < VIRTIO_MAX_FD_HANDLERS; i++) {
        struct virtio_fd_handler *h = &dev->fd_handlers[i];
        if (h->fd == fd) {
            int rc = evloop_del(dev->loop, fd);
            h->fd = -1;
            h->cb = NULL;
            return rc;
        }
    }
    return -ENOENT;
}

/* ---- life cycle ---- */

static void quiesce_handler(void *opaque, uint32_t events);

int virtio_dev_init(struct virtio_dev *dev, struct machine *m, const struct virtio_dev_ops *ops)
{
    /* Set first: virtio_dev_destroy undoes a failed init too. */
    dev->m = m;
    dev->ops = ops;
    dev->name = ops->name;
    dev->device_id = ops->device_id;
    for (unsigned i = 0; i < VIRTIO_MAX_FD_HANDLERS; i++)
        dev->fd_handlers[i].fd = -1;
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        dev->queues[i].kick_fd = -1;
    dev->quiesce_efd = -1;
    pthread_mutex_init(&dev->lock, NULL);
    pthread_cond_init(&dev->quiesce_cond, NULL);
    uint16_t qmax = ops->queue_size;
    if (ops->nqueues == 0 || ops->nqueues > VIRTIO_MAX_QUEUES ||
        ops->config_len > VIRTIO_DEVICE_CFG_MAX || qmax == 0 || qmax > VIRTQ_MAX_SIZE ||
        (qmax & (qmax - 1)))
        return -EINVAL;
    dev->nqueues = ops->nqueues;
    dev->config_len = ops->config_len;
    uint64_t features = ops->features ? ops->features(dev) : 0;
    dev->host_features = features | 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_EVENT_IDX |
                         1ull << VIRTIO_RING_F_INDIRECT_DESC;
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
        struct virtio_queue *q = &dev->queues[i];
        q->dev = dev;
        q->index = i;
        q->max_size = qmax;
    }
    reset_queues(dev);

    int rc;
    if (m->io_loop) {
        dev->loop = m->io_loop;
        dev->loop_borrowed = true;
    } else {
        rc = evloop_create(&dev->loop);
        if (rc)
            return rc;
    }
    for (unsigned i = 0; i < dev->nqueues; i++) {
        struct virtio_queue *q = &dev->queues[i];
        q->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (q->kick_fd < 0)
            return -errno;
        rc = evloop_add(dev->loop, q->kick_fd, EPOLLIN, kick_handler, q);
        if (rc)
            return rc;
    }
    dev->quiesce_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (dev->quiesce_efd < 0)
        return -errno;
    rc = evloop_add(dev->loop, dev->quiesce_efd, EPOLLIN, quiesce_handler, dev);
    if (rc)
        return rc;
    /* virtio-pci is the one transport; another (virtio-mmio) would be chosen here. */
    return virtio_pci_attach(dev);
}

int virtio_dev_start(struct virtio_dev *dev)
{
    int rc = dev->tops->start(dev);
    if (rc)
        return rc;
    rc = evloop_start_thread(dev->loop, dev->name, dev->ops->sandbox);
    if (rc) {
        log_error("%s: cannot start its I/O thread: %s", dev->name, strerror(-rc));
        return rc;
    }
    dev->thread_started = true;
    return 0;
}

void virtio_dev_reset(struct virtio_dev *dev)
{
    pthread_mutex_lock(&dev->lock);
    reset_locked(dev);
    bool wait = dev->resetting;
    pthread_mutex_unlock(&dev->lock);
    /* Not a vCPU: this caller may wait for the device's host I/O. */
    if (wait && dev->ops->quiesce)
        dev->ops->quiesce(dev);
    pthread_mutex_lock(&dev->lock);
    virtio_dev_reset_done(dev);
    pthread_mutex_unlock(&dev->lock);
}

/*
 * A quiesce asked of a running device runs here, on its I/O thread (no
 * lock held, as ops->quiesce may wait): in that thread's seccomp class,
 * with the calls the device's host I/O needs (a disk's completions), which
 * the asking thread (REST) must not have. From `quiesced` on, the kick and
 * fd handlers leave their events pending, so nothing is served between
 * here and the park that the asking thread then waits for (evloop_stop).
 */
static void quiesce_handler(void *opaque, uint32_t events)
{
    struct virtio_dev *dev = opaque;
    (void)events;
    uint64_t n;
    if (read(dev->quiesce_efd, &n, sizeof(n)) < 0)
        return; /* EAGAIN: asked once, already served */
    pthread_mutex_lock(&dev->lock);
    __atomic_store_n(&dev->quiesced, true, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&dev->lock);
    if (dev->ops->quiesce)
        dev->ops->quiesce(dev);
    pthread_mutex_lock(&dev->lock);
    dev->quiesce_done = true;
    pthread_cond_broadcast(&dev->quiesce_cond);
    pthread_mutex_unlock(&dev->lock);
}

void virtio_dev_quiesce(struct virtio_dev *dev)
{
    pthread_mutex_lock(&dev->lock);
    bool was = dev->quiesced;
    pthread_mutex_unlock(&dev->lock);
    if (was)
        return;
    if (dev->thread_started && dev->quiesce_efd >= 0) {
        pthread_mutex_lock(&dev->lock);
        dev->quiesce_done = false;
        pthread_mutex_unlock(&dev->lock);
        uint64_t one = 1;
        if (write(dev->quiesce_efd, &one, sizeof(one)) == sizeof(one)) {
            pthread_mutex_lock(&dev->lock);
            while (!dev->quiesce_done)
                pthread_cond_wait(&dev->quiesce_cond, &dev->lock);
            pthread_mutex_unlock(&dev->lock);
            evloop_stop(dev->loop); /* returns once the thread is parked */
            return;
        }
        log_error("%s: cannot ask its I/O thread to quiesce: %m", dev->name);
    }
    /* No thread of its own running (unit tests): the caller drains. */
    if (dev->thread_started)
        evloop_stop(dev->loop);
    pthread_mutex_lock(&dev->lock);
    __atomic_store_n(&dev->quiesced, true, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&dev->lock);
    if (dev->ops->quiesce)
        dev->ops->quiesce(dev);
}

void virtio_dev_resume(struct virtio_dev *dev)
{
    pthread_mutex_lock(&dev->lock);
    bool was = dev->quiesced;
    __atomic_store_n(&dev->quiesced, false, __ATOMIC_RELEASE);
    if (was && dev->ops->resume)
        dev->ops->resume(dev);
    pthread_mutex_unlock(&dev->lock);
    /* Kicks and backend data that came meanwhile wait in their fds (level-triggered). */
    if (was && dev->thread_started) {
        int rc = evloop_start_thread(dev->loop, dev->name, dev->ops->sandbox);
        if (rc)
            log_error("%s: cannot restart its I/O thread: %s", dev->name, strerror(-rc));
    }
}

void virtio_dev_destroy(struct virtio_dev *dev)
{
    if (!dev)
        return;
    if (dev->loop)
        evloop_stop(dev->loop);
    if (dev->tops)
        dev->tops->stop(dev);
    /* Host I/O must be back before the model's memory goes. */
    if (dev->ops->quiesce)
        dev->ops->quiesce(dev);
    pthread_mutex_lock(&dev->lock);
    if (dev->ops->reset)
        dev->ops->reset(dev);
    virtio_dev_reset_done(dev);
    pthread_mutex_unlock(&dev->lock);
    if (dev->tops)
        dev->tops->destroy(dev);
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        if (dev->queues[i].kick_fd >= 0)
            close(dev->queues[i].kick_fd);
    if (dev->loop && dev->loop_borrowed)
        evloop_clear(dev->loop); /* parked above; the loop's thread serves the next boot */
    else if (dev->loop)
        evloop_destroy(dev->loop);
    dev->loop = NULL;
    if (dev->quiesce_efd >= 0)
        close(dev->quiesce_efd);
    dev->quiesce_efd = -1;
    pthread_cond_destroy(&dev->quiesce_cond);
    pthread_mutex_destroy(&dev->lock);
    if (dev->ops->destroy)
        dev->ops->destroy(dev);
}
