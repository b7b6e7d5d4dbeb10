/*
 * The virtio PCI transport, modern interface only (virtio 1.2, section
 * 4.1): one PCI function per virtio device (virtio/virtio.h), with its
 * capabilities (4.1.4), one memory BAR and MSI-X (PCI 3.0, 6.8.2). The
 * transport's state lives in virtio/pci.c; a device reaches it only
 * through struct virtio_transport_ops.
 */
#ifndef KRUNKIT_VIRTIO_PCI_H
#define KRUNKIT_VIRTIO_PCI_H

#include <linux/virtio_pci.h>

#include "hw/pci.h"
#include "virtio/virtio.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040 /* + device id (4.1.2.1) */

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

#define VIRTIO_MAX_VECTORS (VIRTIO_MAX_QUEUES + 1)

/*
 * Give dev (queues and config length already set) a PCI function: header,
 * capabilities, BAR, one interrupt eventfd + GSI per vector. Its start
 * registers the function on m->pci and its notify slots as ioeventfds.
 */
int virtio_pci_attach(struct virtio_dev *dev);

/* Inspection, for tests and fuzzers. */
struct pci_device *virtio_pci_function(struct virtio_dev *dev);
int virtio_pci_vector_gsi(const struct virtio_dev *dev, unsigned v);
int virtio_pci_msix_cap(const struct virtio_dev *dev);
int virtio_pci_cfg_cap(const struct virtio_dev *dev);

/* BAR accessors, exposed for tests (the BAR is also reached through the MMIO bus). */
extern const struct io_ops virtio_pci_bar_ops;

#endif
