/*
 * The arm64 KVM ioctls each thread class may make, on top of the core's
 * (vmm/sandbox.c, which already has KVM_RUN, routing, irqfd, ioeventfd,
 * memory slots and VM/vCPU creation): vCPU initialisation and registers
 * through ONE_REG, the vGIC and ITS devices, wired SPIs.
 *
 * The core's system call lists name some calls arm64 does not have (open,
 * poll, ...): sandbox.c skips names that do not resolve for the build's
 * architecture, so nothing here needs to undo them.
 */
#include <linux/kvm.h>
#include <stddef.h>

#include "vmm/arch.h"

/* A vCPU: its MMIO to the UART and the GPIO raises SPIs. */
static const unsigned long vcpu_ioctls[] = {KVM_IRQ_LINE, 0};

/* The main thread: what vCPUs do, plus building the machine again at a reboot. */
static const unsigned long control_ioctls[] = {
    KVM_IRQ_LINE,    KVM_ARM_PREFERRED_TARGET, KVM_ARM_VCPU_INIT,   KVM_GET_ONE_REG,
    KVM_SET_ONE_REG, KVM_CREATE_DEVICE,        KVM_SET_DEVICE_ATTR, 0,
};

/* REST: pause and resume keep the guest's counter; a stop presses the power button (an SPI). */
static const unsigned long rest_ioctls[] = {KVM_GET_ONE_REG, KVM_SET_ONE_REG, KVM_IRQ_LINE, 0};
/* The signal thread: a stop presses the power button. */
static const unsigned long signal_ioctls[] = {KVM_IRQ_LINE, 0};

const unsigned long *const arch_sandbox_ioctls[SANDBOX_CLASS_COUNT] = {
    [SANDBOX_VCPU] = vcpu_ioctls,
    [SANDBOX_CONTROL] = control_ioctls,
    [SANDBOX_REST] = rest_ioctls,
    [SANDBOX_SIGNAL] = signal_ioctls,
};
