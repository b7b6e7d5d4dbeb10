/*
 * The arch interface: everything the arch-neutral VMM core (vm.c, vcpu.c,
 * kvm.c, memory.c) asks of an architecture. One implementation is linked
 * in, from src/arch/<arch>/ (x86-64: src/arch/x86/arch.c); docs/porting.md
 * says what a second one implements and in which order.
 *
 * The lifetimes, in the order the core calls them:
 *
 *   arch_create            once per VM, before KVM: firmware and variable
 *                          store read and opened (host files are opened
 *                          once: a reboot looks at no path)
 *   per boot (the first and each guest reboot):
 *     arch_memory_layout   where RAM and the PCI windows go
 *     arch_kvm_init        after KVM_CREATE_VM and RAM: irqchip, timers,
 *                          wired interrupt routes, the first MSI GSI; the
 *                          hypervisor's nested support is checked here
 *     arch_board_create    platform devices (the PCI host bridge and how it
 *                          is reached, serial, power/reset controls)
 *     arch_vcpu_init       per vCPU: its identity, registers, local irqchip
 *     (the core creates the virtio devices now)
 *     arch_boot_load       the payload: firmware or a kernel, and the tables
 *                          describing the machine (ACPI, device tree)
 *     ... vCPUs run; arch_vcpu_exit gets the exits the core does not know
 *     arch_boot_unload, arch_board_destroy, arch_kvm_fini
 *   arch_destroy           once, at the end
 *
 * Every function logs what failed, with context, and returns -errno.
 */
#ifndef KRUNKIT_VMM_ARCH_H
#define KRUNKIT_VMM_ARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/sandbox.h"

struct vmm;
struct vcpu;
struct kvm_vm;

/* The guest-physical map of one machine. */
struct arch_mem_layout {
    uint64_t ram_base;   /* RAM starts here ... */
    uint64_t hole_start; /* ... is cut at hole_start (UINT64_MAX: no hole) ... */
    uint64_t hole_end;   /* ... and goes on from hole_end */
    /* Where PCI BARs are placed: 32-bit window, and a 64-bit one above RAM. */
    uint64_t mmio32_base, mmio32_end;
    uint64_t mmio64_size; /* placed on a 1 GiB boundary above RAM */
    bool has_pio;         /* the machine has port I/O (x86) */
};

/* Lifetime of the VM. */
int arch_create(struct vmm *vmm);
void arch_destroy(struct vmm *vmm);

/* The memory map for ram_size bytes of RAM. */
void arch_memory_layout(const struct vmm *vmm, struct arch_mem_layout *l);

/* The KVM_CREATE_VM machine type (0 where the arch has one machine type). */
unsigned long arch_kvm_vm_type(int kvm_fd);
int arch_kvm_init(struct vmm *vmm);
void arch_kvm_fini(struct vmm *vmm);
/* Drive wired interrupt line `line` (the arch numbers them: x86 GSI 0-23). */
int arch_kvm_irq_line(struct kvm_vm *k, unsigned line, bool level);

int arch_board_create(struct vmm *vmm);
void arch_board_destroy(struct vmm *vmm);
/* Ask the guest to shut down (ACPI power button, or the arch's equivalent). */
void arch_press_power_button(struct vmm *vmm);

int arch_vcpu_init(struct vcpu *v);
/*
 * An exit the core does not handle (port I/O, a triple fault, ...): true
 * when the arch handled it, false when it is unexpected (the VM fails).
 */
bool arch_vcpu_exit(struct vcpu *v);

int arch_boot_load(struct vmm *vmm);
void arch_boot_unload(struct vmm *vmm);

/*
 * Pause: guest time stands still while paused. freeze runs with every vCPU
 * parked; thaw before they run again.
 */
void arch_clock_freeze(struct vmm *vmm);
void arch_clock_thaw(struct vmm *vmm);

/*
 * The arch's own ioctl requests each thread class may make, indexed by
 * class, each list 0-terminated (NULL: none), added to the core's allow
 * list for that class (vmm/sandbox.c).
 */
extern const unsigned long *const arch_sandbox_ioctls[SANDBOX_CLASS_COUNT];

#endif
