/*
 * PCI bus 0, whatever host bridge reaches it: ECAM on MMIO (hw/pci_ecam.h)
 * or, on a PC, configuration mechanism #1 (arch/x86/i440fx.h).
 *
 * A device fills its 256-byte configuration space header and capabilities,
 * declares its BARs, and registers. The bus handles the generic parts:
 * write masks, BAR sizing and placement (the guest or firmware may move BARs;
 * the bus then moves the device's MMIO/PIO range and tells the device so it
 * can move its ioeventfds), and the command register's decode enables.
 */
#ifndef KRUNKIT_HW_PCI_H
#define KRUNKIT_HW_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/io_bus.h"

#define PCI_MAX_DEVFN 256 /* slot << 3 | function */
#define PCI_NUM_BARS 6
#define PCI_CONFIG_SIZE 256

/* Standard configuration header offsets. */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_STATUS 0x06
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_CLASS_DEVICE 0x0a
#define PCI_HEADER_TYPE 0x0e
#define PCI_BASE_ADDRESS_0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

#define PCI_CAP_ID_MSIX 0x11
#define PCI_CAP_ID_VNDR 0x09

struct pci_device;

struct pci_bar {
    uint64_t size; /* power of two, 0 = unused */
    bool is_io;
    bool is_64; /* memory BAR taking two slots */
    const struct io_ops *ops;
    void *opaque;
    uint64_t addr; /* current guest address (0 = unassigned) */
    bool mapped;   /* currently registered on the bus */
};

struct pci_device_ops {
    /* Optional: the BAR moved from old to new (either may be 0 = unmapped). */
    void (*bar_moved)(struct pci_device *dev, int bar, uint64_t old_addr, uint64_t new_addr);
    /* Optional: after the guest wrote [offset, offset+len) of config space. */
    void (*config_written)(struct pci_device *dev, unsigned offset, unsigned len);
};

struct pci_device {
    uint8_t config[PCI_CONFIG_SIZE];
    uint8_t wmask[PCI_CONFIG_SIZE]; /* bits the guest may write */
    struct pci_bar bars[PCI_NUM_BARS];
    const struct pci_device_ops *ops;
    void *opaque;
    uint8_t devfn;    /* slot << 3 | function, set by pci_register */
    uint8_t next_cap; /* where the next capability goes (pci_add_cap) */
    struct pci_bus *bus;
};

struct pci_bus {
    struct io_bus *mmio, *pio;
    struct pci_device *devices[PCI_MAX_DEVFN];
    pthread_mutex_t lock; /* config cycles and BAR moves */
    /* Where pci_register places BARs initially (firmware may move them). */
    uint64_t mmio32_next, mmio32_end, mmio64_next, mmio64_end;
    uint32_t pio_next, pio_end; /* empty without port I/O (pio NULL) */
};

/* Little-endian accessors for config space. */
static inline void pci_set_u8(struct pci_device *d, unsigned off, uint8_t v)
{
    d->config[off] = v;
}
static inline void pci_set_u16(struct pci_device *d, unsigned off, uint16_t v)
{
    d->config[off] = (uint8_t)v;
    d->config[off + 1] = (uint8_t)(v >> 8);
}
static inline void pci_set_u32(struct pci_device *d, unsigned off, uint32_t v)
{
    pci_set_u16(d, off, (uint16_t)v);
    pci_set_u16(d, off + 2, (uint16_t)(v >> 16));
}
static inline uint16_t pci_get_u16(const struct pci_device *d, unsigned off)
{
    return (uint16_t)(d->config[off] | d->config[off + 1] << 8);
}
static inline uint32_t pci_get_u32(const struct pci_device *d, unsigned off)
{
    return pci_get_u16(d, off) | (uint32_t)pci_get_u16(d, off + 2) << 16;
}

/*
 * Bus setup: BAR windows [mmio32_base, mmio32_end) and [mmio64_base,
 * mmio64_end); pio may be NULL (no port I/O). The host bridge at 00.0 and
 * the configuration access mechanism are the board's to add.
 */
int pci_bus_init(struct pci_bus *bus, struct io_bus *mmio, struct io_bus *pio, uint64_t mmio32_base,
                 uint64_t mmio32_end, uint64_t mmio64_base, uint64_t mmio64_end);

/*
 * Prepare a type-0 header: ids, class (base << 16 | sub << 8 | prog-if), subsystem, header type,
 * interrupt pin (0 = none), capability list empty, write masks for command/BARs/int line.
 */
void pci_device_init(struct pci_device *dev, uint16_t vendor, uint16_t device, uint32_t class_code,
                     uint16_t subsys_vendor, uint16_t subsys_id);

/* Declare a BAR before pci_register (size: power of two >= 16, 4 KiB for MMIO is best). */
void pci_device_set_bar(struct pci_device *dev, int bar, uint64_t size, bool is_io, bool is_64,
                        const struct io_ops *ops, void *opaque);

/*
 * Append a capability of len bytes (including the 2-byte id/next header);
 * returns its offset in config space, or -ENOSPC. The caller fills the body
 * and sets wmask for fields the guest may write.
 */
int pci_add_cap(struct pci_device *dev, uint8_t cap_id, unsigned len);

/*
 * Put the device at devfn (slot << 3 | function), or at function 0 of the
 * first free slot when devfn < 0; assign its BARs from the windows, enable
 * decoding and map them. -ENOSPC / -EEXIST / -ENOMEM.
 */
int pci_register(struct pci_bus *bus, struct pci_device *dev, int devfn);
void pci_unregister(struct pci_bus *bus, struct pci_device *dev);
void pci_bus_destroy(struct pci_bus *bus);

/*
 * A configuration cycle for (bus_nr, devfn, offset) as a host bridge passes
 * it on: absent devices read as all ones and ignore writes.
 */
uint32_t pci_bus_config_read(struct pci_bus *bus, unsigned bus_nr, unsigned devfn, unsigned offset,
                             unsigned len);
void pci_bus_config_write(struct pci_bus *bus, unsigned bus_nr, unsigned devfn, unsigned offset,
                          uint32_t value, unsigned len);

/* Config space access as the guest sees it, on one device (bus lock held or a test). */
uint32_t pci_config_read(struct pci_device *dev, unsigned offset, unsigned len);
void pci_config_write(struct pci_device *dev, unsigned offset, uint32_t value, unsigned len);

#endif
