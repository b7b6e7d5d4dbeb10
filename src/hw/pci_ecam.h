/*
 * PCI Express Enhanced Configuration Access Mechanism (PCIe Base 4.0,
 * 7.2.2): configuration space as MMIO, 4 KiB per function, the offset
 * inside the window being bus << 20 | devfn << 12 | register. This is how
 * a host bridge without port I/O (arm64's "virt" board, described by the
 * device tree's pci-host-ecam-generic node) reaches the bus.
 */
#ifndef KRUNKIT_HW_PCI_ECAM_H
#define KRUNKIT_HW_PCI_ECAM_H

#include <stdint.h>

#include "hw/pci.h"
#include "vmm/io_bus.h"

#define PCI_ECAM_BUS_SIZE (1ull << 20)

struct pci_ecam {
    struct pci_bus *bus;
    struct io_bus *mmio;
    uint64_t base;
};

/* Claim [base, base + nbuses MiB) on mmio for bus's configuration space. */
int pci_ecam_init(struct pci_ecam *e, struct pci_bus *bus, struct io_bus *mmio, uint64_t base,
                  unsigned nbuses);
void pci_ecam_destroy(struct pci_ecam *e);

#endif
