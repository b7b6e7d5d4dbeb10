/*
 * The PC's PCI host bridge: the i440FX function at 00.0 (8086:1237, the
 * only host bridge OVMF's PC platform code accepts) and configuration
 * mechanism #1 (PCI Local Bus 3.0, 3.2.2.3.2) at ports 0xCF8-0xCFF.
 *
 * 0xCF8 holds CONFIG_ADDRESS (enable bit 31, bus 23:16, devfn 15:8,
 * register 7:2); 0xCFC-0xCFF is the data window. A byte write to 0xCF9 is
 * no config cycle but PIIX's reset control register (arch/x86/reset.h),
 * which shares the port range: it is passed on.
 */
#ifndef KRUNKIT_ARCH_X86_I440FX_H
#define KRUNKIT_ARCH_X86_I440FX_H

#include <stdint.h>

#include "hw/pci.h"
#include "vmm/io_bus.h"

struct i440fx {
    struct pci_bus *bus;
    struct io_bus *pio;
    uint32_t config_address; /* the 0xCF8 latch, accessed atomically */
    void (*reset_ctl_write)(void *opaque, uint8_t value);
    void *reset_ctl_opaque;
    struct pci_device host_bridge; /* 00:00.0 */
};

/*
 * Put the host bridge at 00.0 of bus and claim 0xCF8-0xCFF on pio; byte
 * writes to 0xCF9 go to reset_ctl_write (may be NULL). -errno.
 */
int i440fx_init(struct i440fx *h, struct pci_bus *bus, struct io_bus *pio,
                void (*reset_ctl_write)(void *opaque, uint8_t value), void *reset_ctl_opaque);
void i440fx_destroy(struct i440fx *h);

#endif
