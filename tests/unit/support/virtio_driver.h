/*
 * A minimal virtio-pci driver for unit tests: it talks to a device only as
 * a guest would, through PCI configuration space and the device's BAR on
 * the fake machine's MMIO bus, and builds split rings in fake guest RAM.
 * Uses only headers from src/virtio (no virtio symbols), so linking it into
 * every test costs nothing.
 */
#ifndef KRUNKIT_TESTS_VIRTIO_DRIVER_H
#define KRUNKIT_TESTS_VIRTIO_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "fake_hooks.h"
#include "hw/pci.h"

#define VDRV_MAX_QUEUES 8
#define VDRV_MSI_ADDR 0xfee00000u
#define VDRV_MSI_DATA(v) (0x40u + (v))

struct vdrv_queue {
    uint16_t size;
    uint64_t desc, avail, used;
    uint16_t avail_idx, next_desc, used_seen;
};

struct vdrv {
    struct fake_vm *vm;
    struct pci_device *pdev;
    uint64_t bar;
    uint64_t heap_next, heap_end; /* bump allocator in guest RAM */
    uint64_t features;
    struct vdrv_queue q[VDRV_MAX_QUEUES];
};

struct vdrv_buf {
    uint64_t gpa;
    uint32_t len;
    bool device_writes;
};

/* heap: [heap_start, heap_end) of guest RAM the driver may use. */
void vdrv_init(struct vdrv *d, struct fake_vm *vm, struct pci_device *pdev, uint64_t heap_start,
               uint64_t heap_end);
uint64_t vdrv_alloc(struct vdrv *d, uint64_t size, uint64_t align);
void *vdrv_host(struct vdrv *d, uint64_t gpa, uint64_t len);

uint64_t vdrv_read(struct vdrv *d, uint64_t bar_off, unsigned len);
void vdrv_write(struct vdrv *d, uint64_t bar_off, uint64_t value, unsigned len);

/* Enable MSI-X and program vector v -> VDRV_MSI_ADDR / VDRV_MSI_DATA(v), unmasked. */
void vdrv_enable_msix(struct vdrv *d, unsigned nvectors);
/*
 * Reset, ACKNOWLEDGE, DRIVER, write `features` (what the device offers
 * masked by `wanted`), FEATURES_OK. Returns the status read back.
 */
uint8_t vdrv_negotiate(struct vdrv *d, uint64_t wanted);
/* Set up queue q with `size` entries and MSI-X vector; returns queue_enable read back. */
int vdrv_setup_queue(struct vdrv *d, unsigned q, uint16_t size, uint16_t vector);
void vdrv_driver_ok(struct vdrv *d);
uint8_t vdrv_status(struct vdrv *d);

/* Put a chain on queue q's available ring (not kicked); returns its head. */
uint16_t vdrv_add_chain(struct vdrv *d, unsigned q, const struct vdrv_buf *bufs, unsigned n);
/* Notify through the ioeventfd when one is attached, else by an MMIO write. */
void vdrv_kick(struct vdrv *d, unsigned q);
/*
 * Wait (up to timeout_ms) until the used index of q reaches `want`;
 * true on success. *len gets the length of used entry want-1 when not NULL.
 */
bool vdrv_wait_used(struct vdrv *d, unsigned q, uint16_t want, int timeout_ms, uint32_t *len);
/* The interrupt eventfd for MSI-X vector v (-1 when none); reading it consumes. */
int vdrv_irq_fd(struct vdrv *d, unsigned v);
/*
 * Interrupts raised on vector v since the last call, waiting up to
 * timeout_ms for the first one (0 when none came).
 */
uint64_t vdrv_take_irqs(struct vdrv *d, unsigned v, int timeout_ms);

#endif
