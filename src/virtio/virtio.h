/*
 * A virtio device apart from its transport (virtio 1.2, sections 2 and 3):
 * device status (2.1), feature bits (2.2), notifications (2.3), the device
 * configuration space (2.5), virtqueues (2.7), reset (2.4) and the driver's
 * initialization sequence (3.1).
 *
 * A device model fills a struct virtio_dev_ops (what it offers and how it
 * serves its queues), embeds struct virtio_dev first in its own struct,
 * and calls virtio_dev_init, then virtio_dev_start. The transport (today
 * only virtio-pci, virtio/pci.h) attaches itself in virtio_dev_init
 * through struct virtio_transport_ops: it turns the driver's register
 * accesses into the virtio_dev_* calls below and delivers the interrupts
 * a device asks for. Nothing here knows about PCI.
 *
 * Threads: queue handlers and backend fd handlers run on the device's
 * I/O thread with dev->lock held; the transport's register accesses come
 * from vCPU threads under the same lock, and kicks reach the I/O thread
 * through one eventfd per queue. No vCPU thread ever waits for host I/O:
 * a reset that finds requests in flight reads back a non-zero status until
 * they have finished (virtio_dev_reset_done).
 */
#ifndef KRUNKIT_VIRTIO_VIRTIO_H
#define KRUNKIT_VIRTIO_VIRTIO_H

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtio/queue.h"
#include "vmm/evloop.h"
#include "vmm/machine.h"

#define VIRTIO_MAX_QUEUES 8
#define VIRTIO_MAX_FD_HANDLERS 4
#define VIRTIO_DEVICE_CFG_MAX 0x1000

struct virtio_dev;

struct virtio_dev_ops {
    const char *name;           /* logs and the I/O thread's name */
    uint16_t device_id;         /* VIRTIO_ID_* (5) */
    enum sandbox_class sandbox; /* the I/O thread's seccomp list (docs/security.md) */
    unsigned config_len;        /* bytes of device configuration space */
    /* Queue set-up: how many queues, and the largest size each may have. */
    unsigned nqueues;
    uint16_t queue_size;
    /* Device-specific feature bits offered; VERSION_1, EVENT_IDX, INDIRECT_DESC are added. */
    uint64_t (*features)(struct virtio_dev *dev);
    /* The driver kicked queue q (I/O thread, lock held, device running). */
    void (*queue_notify)(struct virtio_dev *dev, unsigned q);
    /* Device configuration space (lock held); offset/len already bounded. */
    void (*config_read)(struct virtio_dev *dev, unsigned offset, void *data, unsigned len);
    void (*config_write)(struct virtio_dev *dev, unsigned offset, const void *data, unsigned len);
    /* DRIVER_OK was set: features are final, enabled queues are live (lock held). */
    void (*activate)(struct virtio_dev *dev);
    /*
     * The driver reset the device (lock held, possibly on a vCPU thread:
     * never wait for host I/O here). Drop the driver's state; return 0,
     * or -EINPROGRESS when host I/O into guest buffers is still in flight:
     * the device then drops those completions and calls
     * virtio_dev_reset_done once the last one is back. Queues are reset by
     * the caller.
     */
    int (*reset)(struct virtio_dev *dev);
    /*
     * Finish whatever still writes guest memory besides the I/O thread
     * (host I/O in flight) before returning; completions that arrive now
     * may still be published. Control thread, lock NOT held (take it as
     * needed: a hung backend must not keep the lock from the vCPUs and
     * the API); may wait. Called by virtio_dev_quiesce with the I/O thread
     * parked, and by a machine reset or destroy that must see I/O back.
     * resume (lock held) undoes what quiesce set up.
     */
    void (*quiesce)(struct virtio_dev *dev);
    void (*resume)(struct virtio_dev *dev);
    /* Free the model's own resources (thread already stopped, I/O drained). */
    void (*destroy)(struct virtio_dev *dev);
};

/* What a transport provides to the generic device (all with dev->lock held). */
struct virtio_transport_ops {
    /* Used-buffer notification for queue q (2.3). */
    void (*notify_queue)(struct virtio_dev *dev, unsigned q);
    /* Configuration change notification (2.3); the generation is already bumped. */
    void (*notify_config)(struct virtio_dev *dev);
    /* Forget the transport's per-driver state (vectors, selectors, pending ISR). */
    void (*reset)(struct virtio_dev *dev);
    /* Make the device reachable by the guest (lock not held). */
    int (*start)(struct virtio_dev *dev);
    /* Unreachable again: no register access arrives after this (lock not held). */
    void (*stop)(struct virtio_dev *dev);
    /* Free the transport (lock not held; after stop). */
    void (*destroy)(struct virtio_dev *dev);
};

struct virtio_queue {
    struct virtq vq;
    struct virtio_dev *dev;
    unsigned index;
    uint16_t max_size;
    uint16_t size; /* as the driver set it */
    bool enabled;
    uint64_t desc, avail, used;
    int kick_fd; /* eventfd the guest's notifications signal */
};

struct virtio_dev {
    struct machine *m;
    const struct virtio_dev_ops *ops;
    const char *name;
    uint16_t device_id;
    pthread_mutex_t lock;
    struct evloop *loop;
    bool loop_borrowed; /* machine.io_loop: stopped and cleared, never destroyed, here */
    bool thread_started;

    uint64_t host_features;
    uint64_t guest_features;
    uint8_t status;
    uint8_t config_generation;
    unsigned config_len;
    bool resetting; /* a reset waits for host I/O: status reads back non-zero */
    bool quiesced;  /* virtio_dev_quiesce: nothing may write guest memory */
    /* A quiesce is carried out on the device's own thread: asked by this eventfd. */
    int quiesce_efd;
    bool quiesce_done;
    pthread_cond_t quiesce_cond;

    unsigned nqueues;
    struct virtio_queue queues[VIRTIO_MAX_QUEUES];

    struct virtio_fd_handler {
        struct virtio_dev *dev;
        int fd; /* -1: free slot */
        void (*cb)(struct virtio_dev *dev, int fd, uint32_t events);
    } fd_handlers[VIRTIO_MAX_FD_HANDLERS];

    const struct virtio_transport_ops *tops;
    void *transport;
};

/* ---- for device models ---- */

/*
 * Set up the generic state from ops (queues, kick eventfds, the I/O loop:
 * m->io_loop when set, else one of its own) and attach the transport.
 * On failure the caller still calls virtio_dev_destroy.
 */
int virtio_dev_init(struct virtio_dev *dev, struct machine *m, const struct virtio_dev_ops *ops);
/* Make the device visible to the guest and start its I/O thread. */
int virtio_dev_start(struct virtio_dev *dev);

/* Backend fds served by the device's I/O thread; cb runs with dev->lock held. */
int virtio_dev_add_fd(struct virtio_dev *dev, int fd, uint32_t events,
                      void (*cb)(struct virtio_dev *dev, int fd, uint32_t events));
int virtio_dev_del_fd(struct virtio_dev *dev, int fd);

static inline bool virtio_has_feature(const struct virtio_dev *dev, unsigned bit)
{
    return (dev->guest_features >> bit) & 1;
}
static inline bool virtio_running(const struct virtio_dev *dev)
{
    return (dev->status & VIRTIO_CONFIG_S_DRIVER_OK) && !dev->resetting && !dev->quiesced &&
           !(dev->status & (VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED));
}
static inline struct virtq *virtio_vq(struct virtio_dev *dev, unsigned q)
{
    return &dev->queues[q].vq;
}

/* Used-buffer notification for queue q. Lock held. */
void virtio_notify_queue(struct virtio_dev *dev, unsigned q);
/* Publish q's used entries and interrupt when the driver asked for it. Lock held. */
void virtio_queue_flush(struct virtio_dev *dev, unsigned q);
/* Configuration change notification. Lock held. */
void virtio_notify_config(struct virtio_dev *dev);
/* The device hit a malformed queue: set DEVICE_NEEDS_RESET and tell the driver (2.1.2). */
void virtio_set_needs_reset(struct virtio_dev *dev);
/* A reset that returned -EINPROGRESS is complete: status reads 0 from now on. Lock held. */
void virtio_dev_reset_done(struct virtio_dev *dev);

/*
 * What a chain handler did with the chain virtio_queue_drain gave it.
 * DONE: the handler owns it now (pushed and freed, or kept in flight).
 * STOP: the handler gave it back (virtq_unpop + free, or kept it) and
 * the drain ends here, notifications left disabled: the handler's own
 * event (socket writable, ...) resumes the queue.
 */
enum virtio_chain { VIRTIO_CHAIN_DONE, VIRTIO_CHAIN_STOP };
typedef enum virtio_chain (*virtio_chain_fn)(struct virtio_dev *dev, struct virtq *vq,
                                             struct virtq_elem *e, void *opaque);
/*
 * The queue loop every device shares (2.7.13, 2.7.14): with notifications
 * off, pop every available chain and hand it to fn; turn notifications back
 * on and drain again if more arrived meanwhile; then publish the used
 * entries with one index update and at most one interrupt. Lock held.
 */
void virtio_queue_drain(struct virtio_dev *dev, unsigned q, virtio_chain_fn fn, void *opaque);

/* ---- for transports (lock held unless said) ---- */

/* device_status as the driver reads it: non-zero while a reset is completing. */
uint8_t virtio_dev_get_status(const struct virtio_dev *dev);
/* A driver's device_status write (2.1, 3.1.1); 0 resets the device (never waits). */
void virtio_dev_set_status(struct virtio_dev *dev, uint8_t v);
/* queue_enable written 1 for queue q (its size and addresses already set). */
void virtio_dev_queue_enable(struct virtio_dev *dev, unsigned q);
/* A notification for queue q that did not come through its eventfd. Any thread. */
void virtio_dev_kick(struct virtio_dev *dev, unsigned q);

#endif
