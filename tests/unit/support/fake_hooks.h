/*
 * A machine for device-model unit tests: real I/O buses and PCI bus, and
 * vm_hooks that record what a device asked of KVM (MSI routes, irqfds,
 * ioeventfds) instead of doing it.
 */
#ifndef KRUNKIT_TESTS_FAKE_HOOKS_H
#define KRUNKIT_TESTS_FAKE_HOOKS_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/pci.h"
#include "vmm/machine.h"

#define FAKE_MAX_RECORDS 64
#define FAKE_FIRST_GSI 24

struct fake_route {
    int gsi;
    uint64_t addr;
    uint32_t data;
    uint32_t devid;
    bool masked;
};

struct fake_irqfd {
    int efd, gsi;
};

struct fake_ioeventfd {
    uint64_t addr;
    unsigned len;
    bool pio;
    int efd;
};

struct fake_vm {
    struct vm_hooks hooks;
    struct io_bus mmio, pio;
    struct pci_bus pci;
    struct machine m;
    int next_gsi;
    /* Latest route per GSI, and how many msi_set calls were made. */
    struct fake_route routes[FAKE_MAX_RECORDS];
    unsigned nr_routes, msi_set_calls;
    /* Currently assigned irqfds and ioeventfds. */
    struct fake_irqfd irqfds[FAKE_MAX_RECORDS];
    unsigned nr_irqfds;
    struct fake_ioeventfd ioeventfds[FAKE_MAX_RECORDS];
    unsigned nr_ioeventfds;
    unsigned irq_line_calls;
};

/* Buses, PCI host bridge and hooks over `mem`; 0 or -errno. */
int fake_vm_init(struct fake_vm *vm, struct guest_mem *mem);
void fake_vm_destroy(struct fake_vm *vm);
/* Route recorded for gsi, or NULL. */
const struct fake_route *fake_vm_route(const struct fake_vm *vm, int gsi);
/* eventfd attached to gsi by irqfd, or -1. */
int fake_vm_irqfd(const struct fake_vm *vm, int gsi);
/* eventfd attached at MMIO addr, or -1. */
int fake_vm_ioeventfd(const struct fake_vm *vm, uint64_t addr);

#endif
