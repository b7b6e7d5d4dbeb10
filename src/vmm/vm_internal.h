/*
 * The VM as the VMM's own files see it (vm.c, vcpu.c): the machine's parts
 * and the lifecycle state shared between vCPU threads and control callers.
 */
#ifndef KRUNKIT_VMM_VM_INTERNAL_H
#define KRUNKIT_VMM_VM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "cli/vm_control.h"
#include "hw/pci.h"
#include "vmm/backends.h"
#include "vmm/guest_mem.h"
#include "vmm/io_bus.h"
#include "vmm/kvm.h"
#include "vmm/machine.h"
#include "vmm/vcpu.h"

struct arch_vm; /* the arch's own state (src/arch/<arch>/) */

struct vmm {
    const struct vm_config *cfg;
    struct kvm_vm kvm;
    struct guest_mem mem;
    struct io_bus mmio, pio;
    struct pci_bus pci;
    struct vm_hooks hooks;
    struct machine machine;

    struct vcpu *vcpus;
    unsigned ncpus;

    /* Lifecycle: guarded by lock; cond wakes parked vCPUs and waiters. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    enum vm_state state;
    bool pause_requested;
    unsigned parked;
    bool ending;          /* this boot is over: vCPUs leave */
    bool reset_requested; /* ...and the machine boots again */
    int exit_status;

    struct arch_vm *arch; /* board, boot payload, CPU model: vmm/arch.h */
    uint8_t uuid[16];     /* SMBIOS system UUID, one per process */
    struct virtio_dev **virtio;
    unsigned nr_virtio;
    struct vm_backends backends; /* the devices' host side, opened once */
    bool failed_start;           /* vmm_create failed: remove what it created */
    struct timesync *timesync;   /* --timesync, lives across reboots */
};

/* Called by vCPU threads: the guest powered off / reset / the VM failed. */
void vmm_guest_poweroff(struct vmm *vmm);
void vmm_guest_reset(struct vmm *vmm);
void vmm_fail(struct vmm *vmm, const char *why);
/* vCPU threads wait here while the VM is paused; false when the VM is ending. */
bool vmm_vcpu_may_run(struct vmm *vmm);

#endif
