/*
 * Thin wrapper over the KVM VM-level API: create the VM with the in-kernel
 * irqchip and PIT, map memory slots, and the interrupt plumbing devices
 * need (GSI routing with MSI routes, irqfd, ioeventfd, IRQ lines).
 */
#ifndef KRUNKIT_VMM_KVM_H
#define KRUNKIT_VMM_KVM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/machine.h"

#define KVM_MAX_GSI 1024
#define KVM_FIRST_MSI_GSI 24

struct kvm_vm {
    int kvm_fd;
    int vm_fd;
    int vcpu_mmap_size;
    pthread_mutex_t gsi_lock;
    struct kvm_irq_routing *routing; /* KVM_MAX_GSI + irqchip entries */
    unsigned next_gsi;
    unsigned next_slot;
    bool msi_devid; /* the irqchip needs each MSI's requester id (arm64 ITS) */
};

/* Opens /dev/kvm, checks the extensions we need, creates irqchip and PIT. */
int kvm_vm_create(struct kvm_vm *k);
void kvm_vm_destroy(struct kvm_vm *k);
/* Map host memory at gpa in a new slot; returns the slot (>= 0) or -errno. */
int kvm_vm_map(struct kvm_vm *k, uint64_t gpa, uint64_t size, void *host, bool readonly);
/* Change or remove (size 0) an existing slot. */
int kvm_vm_remap(struct kvm_vm *k, int slot, uint64_t gpa, uint64_t size, void *host,
                 bool readonly);
/* The hooks devices use (struct vm_hooks), backed by this VM. */
void kvm_vm_hooks(struct kvm_vm *k, struct vm_hooks *hooks);
/* Supported CPUID of the host, as KVM reports it (caller frees). */
struct kvm_cpuid2 *kvm_supported_cpuid(struct kvm_vm *k);

#endif
