/*
 * The x86 KVM ioctls each thread class may make, on top of the core's
 * (vmm/sandbox.c): register and LAPIC state, MSRs and CPUID, the PC's
 * irqchip, PIT and VMX pages, wired IRQ lines and kvmclock.
 */
#include <linux/kvm.h>
#include <stddef.h>

#include "vmm/arch.h"

/* A vCPU: register state for INIT/SIPI and failure dumps; platform devices raise IRQ lines. */
static const unsigned long vcpu_ioctls[] = {
    KVM_GET_REGS, KVM_SET_REGS,  KVM_GET_SREGS, KVM_SET_SREGS, KVM_SET_FPU,
    KVM_SET_MSRS, KVM_GET_LAPIC, KVM_SET_LAPIC, KVM_IRQ_LINE,  0,
};

/* The main thread: what vCPUs do, plus building the machine again at a reboot. */
static const unsigned long control_ioctls[] = {
    KVM_GET_REGS,
    KVM_SET_REGS,
    KVM_GET_SREGS,
    KVM_SET_SREGS,
    KVM_SET_FPU,
    KVM_SET_MSRS,
    KVM_GET_LAPIC,
    KVM_SET_LAPIC,
    KVM_IRQ_LINE,
    KVM_SET_TSS_ADDR,
    KVM_SET_IDENTITY_MAP_ADDR,
    KVM_CREATE_IRQCHIP,
    KVM_CREATE_PIT2,
    KVM_GET_SUPPORTED_CPUID,
    KVM_SET_CPUID2,
    KVM_GET_CLOCK,
    KVM_SET_CLOCK,
    0,
};

/* REST: pause and resume keep kvmclock; a stop presses the power button (SCI). */
static const unsigned long rest_ioctls[] = {KVM_GET_CLOCK, KVM_SET_CLOCK, KVM_IRQ_LINE, 0};
/* The signal thread: a stop presses the power button. */
static const unsigned long signal_ioctls[] = {KVM_IRQ_LINE, 0};

const unsigned long *const arch_sandbox_ioctls[SANDBOX_CLASS_COUNT] = {
    [SANDBOX_VCPU] = vcpu_ioctls,
    [SANDBOX_CONTROL] = control_ioctls,
    [SANDBOX_REST] = rest_ioctls,
    [SANDBOX_SIGNAL] = signal_ioctls,
};
