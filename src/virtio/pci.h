/*
 * Virtio over PCI, modern interface only (virtio 1.2, section 4.1), and the
 * generic device state every virtio device shares (section 2: status,
 * feature bits, notifications, configuration space).
 *
 * A device model embeds struct virtio_dev, fills virtio_dev_ops, calls
 * virtio_pci_init and virtio_pci_start. Its queue handlers and backend fd
 * handlers run on the device's own I/O thread with dev->lock held; the
 * vCPU threads only touch the transport registers (under the same lock),
 * and guest kicks reach the I/O thread through ioeventfds.
 */
#ifndef KRUNKIT_VIRTIO_PCI_H
#define KRUNKIT_VIRTIO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hw/pci.h"
#include "virtio/queue.h"
#include "vmm/evloop.h"
#include "vmm/machine.h"

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

/* Reserved feature bits (6). */
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define VIRTIO_MSI_NO_VECTOR 0xffff

/* Virtio device ids (5). */
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040 /* + device id (4.1.2.1) */

/* Capability types (4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG 5

/* Layout of our one memory BAR. */
#define VIRTIO_BAR 0
#define VIRTIO_BAR_COMMON 0x0000
#define VIRTIO_BAR_ISR 0x1000
#define VIRTIO_BAR_DEVICE 0x2000
#define VIRTIO_BAR_NOTIFY 0x3000
#define VIRTIO_BAR_MSIX_TABLE 0x4000
#define VIRTIO_BAR_MSIX_PBA 0x6000
#define VIRTIO_BAR_SIZE 0x8000
#define VIRTIO_NOTIFY_MULTIPLIER 4
#define VIRTIO_COMMON_CFG_LEN 0x3c
#define VIRTIO_DEVICE_CFG_MAX 0x1000

/* Common configuration structure offsets (4.1.4.3). */
#define VIRTIO_PCI_COMMON_DFSELECT 0x00
#define VIRTIO_PCI_COMMON_DF 0x04
#define VIRTIO_PCI_COMMON_GFSELECT 0x08
#define VIRTIO_PCI_COMMON_GF 0x0c
#define VIRTIO_PCI_COMMON_MSIX 0x10
#define VIRTIO_PCI_COMMON_NUMQ 0x12
#define VIRTIO_PCI_COMMON_STATUS 0x14
#define VIRTIO_PCI_COMMON_CFGGENERATION 0x15
#define VIRTIO_PCI_COMMON_Q_SELECT 0x16
#define VIRTIO_PCI_COMMON_Q_SIZE 0x18
#define VIRTIO_PCI_COMMON_Q_MSIX 0x1a
#define VIRTIO_PCI_COMMON_Q_ENABLE 0x1c
#define VIRTIO_PCI_COMMON_Q_NOFF 0x1e
#define VIRTIO_PCI_COMMON_Q_DESC 0x20
#define VIRTIO_PCI_COMMON_Q_AVAIL 0x28
#define VIRTIO_PCI_COMMON_Q_USED 0x30
#define VIRTIO_PCI_COMMON_Q_NDATA 0x38
#define VIRTIO_PCI_COMMON_Q_RESET 0x3a

#define VIRTIO_MAX_QUEUES 8
#define VIRTIO_MAX_VECTORS (VIRTIO_MAX_QUEUES + 1)
#define VIRTIO_MAX_FD_HANDLERS 4

struct virtio_dev;

struct virtio_dev_ops {
    /* The driver kicked queue q (I/O thread, lock held, device running). */
    void (*queue_notify)(struct virtio_dev *dev, unsigned q);
    /* Device-specific configuration space (lock held); offset/len already bounded. */
    void (*config_read)(struct virtio_dev *dev, unsigned offset, void *data, unsigned len);
    void (*config_write)(struct virtio_dev *dev, unsigned offset, const void *data, unsigned len);
    /* DRIVER_OK was set: features are final, enabled queues are live (lock held). */
    void (*activate)(struct virtio_dev *dev);
    /*
     * Device reset (lock held): finish or drop in-flight work so nothing
     * touches guest memory afterwards. Queues are reset by the transport.
     */
    void (*reset)(struct virtio_dev *dev);
    /* Free the model's own resources (thread already stopped). */
    void (*destroy)(struct virtio_dev *dev);
};

struct virtio_queue {
    struct virtq vq;
    struct virtio_dev *dev;
    unsigned index;
    uint16_t max_size;
    uint16_t size; /* as the driver set it */
    uint16_t msix_vector;
    bool enabled;
    uint64_t desc, avail, used;
    int kick_fd; /* ioeventfd the guest's notify writes signal */
};

struct msix_entry {
    uint64_t addr;
    uint32_t data;
    uint32_t ctrl; /* bit 0: vector masked */
};

struct virtio_dev {
    struct pci_device pci;
    struct machine *m;
    const struct virtio_dev_ops *ops;
    const char *name; /* for logs and the thread name */
    uint16_t device_id;
    pthread_mutex_t lock;
    struct evloop *loop;
    bool loop_borrowed; /* machine.io_loop: stopped and cleared, never destroyed, here */
    bool thread_started;

    uint64_t host_features;
    uint64_t guest_features;
    uint32_t dfselect, gfselect;
    uint8_t status;
    uint8_t config_generation;
    uint16_t queue_sel;
    uint16_t config_vector;
    uint8_t isr; /* read-to-clear; updated atomically */
    unsigned config_len;

    unsigned nqueues;
    struct virtio_queue queues[VIRTIO_MAX_QUEUES];

    /* MSI-X (PCI 3.0, 6.8.2): one GSI, irqfd and eventfd per vector. */
    unsigned nvectors;
    int msix_cap;
    bool msix_enabled, msix_masked;
    struct msix_entry msix[VIRTIO_MAX_VECTORS];
    uint64_t msix_pending; /* PBA bits */
    int gsi[VIRTIO_MAX_VECTORS];
    int irq_fd[VIRTIO_MAX_VECTORS];
    bool route_valid[VIRTIO_MAX_VECTORS];

    struct virtio_fd_handler {
        struct virtio_dev *dev;
        int fd; /* -1: free slot */
        void (*cb)(struct virtio_dev *dev, int fd, uint32_t events);
    } fd_handlers[VIRTIO_MAX_FD_HANDLERS];

    int pci_cfg_cap;   /* VIRTIO_PCI_CAP_PCI_CFG window */
    uint64_t bar_addr; /* where the notify ioeventfds are registered (0: none) */
};

/*
 * Set up the transport: PCI header and capabilities, the BAR, one kick
 * eventfd per queue, one interrupt eventfd + GSI per vector, the I/O loop.
 * `features` are the device-specific bits; VERSION_1, EVENT_IDX and
 * INDIRECT_DESC are added here.
 */
int virtio_pci_init(struct virtio_dev *dev, struct machine *m, const char *name, uint16_t device_id,
                    uint32_t class_code, unsigned nqueues, uint16_t queue_max, uint64_t features,
                    unsigned config_len, const struct virtio_dev_ops *ops);
/* Register on the PCI bus, attach the ioeventfds and start the I/O thread. */
int virtio_pci_start(struct virtio_dev *dev);
/* Stop the thread, unregister, close fds, then ops->destroy. */
void virtio_pci_destroy(struct virtio_dev *dev);
/* Reset as if the driver wrote 0 to device_status. */
void virtio_pci_reset(struct virtio_dev *dev);

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
    return (dev->status & VIRTIO_STATUS_DRIVER_OK) &&
           !(dev->status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED));
}
static inline struct virtq *virtio_vq(struct virtio_dev *dev, unsigned q)
{
    return &dev->queues[q].vq;
}

/* Used-buffer notification for queue q (ISR bit 0 + its MSI-X vector). Lock held. */
void virtio_notify_queue(struct virtio_dev *dev, unsigned q);
/* Publish q's used entries and interrupt when the driver asked for it. Lock held. */
void virtio_queue_flush(struct virtio_dev *dev, unsigned q);
/* Configuration change notification (ISR bit 1). Lock held. */
void virtio_notify_config(struct virtio_dev *dev);
/* The device hit a malformed queue: set DEVICE_NEEDS_RESET and tell the driver (2.1.2). */
void virtio_set_needs_reset(struct virtio_dev *dev);

/* BAR accessors, exposed for tests (the BAR is also reached through the MMIO bus). */
extern const struct io_ops virtio_pci_bar_ops;

#endif
