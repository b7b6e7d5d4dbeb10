/*
 * What a device model is given when it is created: guest memory, the I/O
 * buses, the PCI bus, and the few things only the VM can do for it (MSI
 * routes, irqfds, ioeventfds). In the VMM these hooks are KVM ioctls; in
 * unit tests they are fakes, so device models are tested without KVM.
 */
#ifndef KRUNKIT_VMM_MACHINE_H
#define KRUNKIT_VMM_MACHINE_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/pci.h"
#include "vmm/evloop.h"
#include "vmm/guest_mem.h"
#include "vmm/io_bus.h"

struct vm_hooks {
    /* Allocate a GSI for an MSI route; returns gsi >= 0 or -errno. */
    int (*msi_alloc)(void *opaque);
    /*
     * Point gsi at an MSI message (masked: route disabled). devid is the
     * sender's PCI requester id (bus << 8 | devfn): an arm64 ITS maps
     * interrupts per device with it; x86 ignores it.
     */
    int (*msi_set)(void *opaque, int gsi, uint64_t addr, uint32_t data, uint32_t devid,
                   bool masked);
    /* Writes to efd raise gsi (KVM_IRQFD); assign=false detaches. */
    int (*irqfd)(void *opaque, int efd, int gsi, bool assign);
    /* Guest writes of len bytes at addr (MMIO, or port I/O when pio: x86 only) signal efd. */
    int (*ioeventfd)(void *opaque, uint64_t addr, unsigned len, bool pio, int efd, bool assign);
    /*
     * Drive a wired interrupt line (level: assert/deassert), numbered by the
     * arch (x86: ISA IRQ / IOAPIC pin; vmm/arch.h arch_kvm_irq_line).
     */
    int (*set_irq_line)(void *opaque, unsigned line, bool level);
    void *opaque;
};

struct machine {
    struct guest_mem *mem;
    struct io_bus *mmio;
    struct io_bus *pio; /* NULL where the arch has no port I/O */
    struct pci_bus *pci;
    const struct vm_hooks *hooks;
    /*
     * The I/O loop the device made on this machine runs on, kept by the VM
     * across guest reboots (vmm/backends.h); NULL: the device makes its own
     * (unit tests).
     */
    struct evloop *io_loop;
};

#endif
