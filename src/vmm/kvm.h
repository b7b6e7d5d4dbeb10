/*
 * Thin wrapper over the KVM VM-level API, arch-neutral: create the VM, map
 * memory slots, and the interrupt plumbing devices need (the GSI routing
 * table with MSI routes, irqfd, ioeventfd). The arch adds the irqchip and
 * its wired routes (vmm/arch.h: arch_kvm_init).
 */
#ifndef KRUNKIT_VMM_KVM_H
#define KRUNKIT_VMM_KVM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/machine.h"

#define KVM_MAX_GSI 1024
#define KVM_MAX_IRQCHIP_ROUTES 64 /* wired routes the arch may add */

struct kvm_vm {
    int kvm_fd;
    int vm_fd;
    int vcpu_mmap_size;
    pthread_mutex_t gsi_lock;
    struct kvm_irq_routing *routing; /* KVM_MAX_GSI + irqchip entries */
    unsigned first_msi_gsi;          /* below: the arch's wired lines */
    unsigned next_gsi;
    unsigned next_slot;
    bool msi_devid; /* the irqchip needs each MSI's requester id (arm64 ITS) */
};

/* Opens /dev/kvm, checks the extensions every arch needs, creates the VM. */
int kvm_vm_create(struct kvm_vm *k);
/* For arch_kvm_init: add a wired route (before any MSI), then commit the table. */
int kvm_vm_route_irqchip(struct kvm_vm *k, unsigned gsi, unsigned chip, unsigned pin);
int kvm_vm_routing_start(struct kvm_vm *k, unsigned first_msi_gsi);
void kvm_vm_destroy(struct kvm_vm *k);
/* Map host memory at gpa in a new slot; returns the slot (>= 0) or -errno. */
int kvm_vm_map(struct kvm_vm *k, uint64_t gpa, uint64_t size, void *host, bool readonly);
/* Change or remove (size 0) an existing slot. */
int kvm_vm_remap(struct kvm_vm *k, int slot, uint64_t gpa, uint64_t size, void *host,
                 bool readonly);
/* The hooks devices use (struct vm_hooks), backed by this VM. */
void kvm_vm_hooks(struct kvm_vm *k, struct vm_hooks *hooks);

#endif
