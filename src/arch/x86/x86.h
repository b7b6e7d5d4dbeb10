/*
 * The x86-64 PC's own state and the calls between its files: what the
 * arch interface (vmm/arch.h) keeps per VM, and the pieces arch.c, board.c,
 * boot.c and vcpu.c share. Nothing outside src/arch/x86 includes this.
 */
#ifndef KRUNKIT_ARCH_X86_X86_H
#define KRUNKIT_ARCH_X86_X86_H

#include <linux/kvm.h>
#include <stdint.h>

#include "vmm/arch.h"

struct platform;
struct boot_state;

/* The PC's memory map (vmm/memory.h lays RAM out from it). */
#define X86_PCI_HOLE_START 0xc0000000ull /* low RAM ends here at most */
#define X86_MMIO32_END 0xfec00000ull     /* IOAPIC, then LAPIC, HPET, firmware */
#define X86_4G 0x100000000ull

/* Wired interrupt lines: ISA IRQs and IOAPIC pins 0-23; MSI GSIs follow. */
#define X86_FIRST_MSI_GSI 24

struct arch_vm {
    struct kvm_cpuid2 *cpuid;  /* KVM's supported CPUID, per boot */
    struct platform *platform; /* the PC's legacy devices, per boot (board.c) */
    struct boot_state *boot;   /* firmware and variable store, per VM (boot.c) */
    struct kvm_clock_data paused_clock;
};

/* boot.c: once per VM (firmware read, store opened) and its end. */
int x86_boot_prepare(struct vmm *vmm);
void x86_boot_release(struct vmm *vmm);
/* board.c: the ACPI tables of a direct boot; *rsdp = their root's address. */
int x86_board_write_acpi(struct vmm *vmm, uint64_t *rsdp);
/* vcpu.c: registers for the 64-bit Linux entry (boot vCPU only). */
int x86_vcpu_setup_linux(struct vcpu *v, uint64_t entry, uint64_t zero_page);

#endif
