/*
 * An arm64 vCPU (the arch_vcpu_* half of vmm/arch.h, and the entry state
 * of a direct Linux boot), following Documentation/virt/kvm/api.rst
 * (KVM_ARM_VCPU_INIT, KVM_SET_ONE_REG / KVM_GET_ONE_REG, the arm64 core
 * and system register ids) and Documentation/arch/arm64/booting.rst
 * ("Call the kernel image").
 *
 * Every vCPU is initialised as KVM_ARM_PREFERRED_TARGET says, with PSCI
 * 0.2 (or later: KVM answers PSCI calls itself, CPU_ON included); all but
 * vCPU 0 start powered off and wait for the guest's PSCI CPU_ON. Each
 * vCPU's MPIDR_EL1, which KVM derives from its id, is read back for the
 * device tree's cpu nodes. Once the last vCPU exists the vGIC is
 * initialised (arch.c).
 *
 * There are no arm64-only exits to handle: PSCI SYSTEM_OFF and
 * SYSTEM_RESET arrive as KVM_EXIT_SYSTEM_EVENT, which the core turns into
 * power-off and reboot, and the devices' MMIO is the core's.
 */
#include "arch/arm64/arm64.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/log.h"
#include "vmm/vm_internal.h"

/* A core register's ONE_REG id: its offset in struct kvm_regs, in 32-bit words. */
#define CORE_REG(field)                                                                            \
    (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(field))
#define MPIDR_EL1 ARM64_SYS_REG(3, 0, 0, 0, 5)

/* booting.rst: EL1h (EL2h when the vCPU has EL2), with Debug, SError, IRQ and FIQ masked. */
#define PSR_MODE_EL1H 0x5ull
#define PSR_MODE_EL2H 0x9ull
#define PSR_DAIF (0xfull << 6)

static int set_reg(struct vcpu *v, uint64_t id, uint64_t val)
{
    struct kvm_one_reg r = {.id = id, .addr = (uint64_t)(uintptr_t)&val};
    return ioctl(v->fd, KVM_SET_ONE_REG, &r) < 0 ? -errno : 0;
}

static int get_reg(struct vcpu *v, uint64_t id, uint64_t *val)
{
    struct kvm_one_reg r = {.id = id, .addr = (uint64_t)(uintptr_t)val};
    return ioctl(v->fd, KVM_GET_ONE_REG, &r) < 0 ? -errno : 0;
}

int arch_vcpu_init(struct vcpu *v)
{
    struct vmm *vmm = v->vmm;
    struct arch_vm *a = vmm->arch;
    struct kvm_vcpu_init init;
    memset(&init, 0, sizeof(init));
    init.target = a->vcpu_target;
    init.features[0] = (1u << KVM_ARM_VCPU_PSCI_0_2) | a->vcpu_features0;
    if (v->index > 0)
        init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;
    if (ioctl(v->fd, KVM_ARM_VCPU_INIT, &init) < 0) {
        int err = -errno;
        log_error("arm64: KVM_ARM_VCPU_INIT on vCPU %u (target %u): %m", v->index, init.target);
        return err;
    }
    int rc = get_reg(v, MPIDR_EL1, &a->mpidr[v->index]);
    if (rc) {
        log_error("arm64: vCPU %u: reading MPIDR_EL1: %s", v->index, strerror(-rc));
        return rc;
    }
    /* KVM initialises the vGIC only once every vCPU exists: now. */
    if (v->index == vmm->ncpus - 1)
        return arm64_gic_finalize(vmm);
    return 0;
}

int arm64_vcpu_setup_linux(struct vcpu *v, uint64_t entry, uint64_t dtb)
{
    /* A vCPU with EL2 (--nested) enters there, so the guest kernel can run KVM itself. */
    uint64_t mode = PSR_MODE_EL1H;
#ifdef KVM_ARM_VCPU_HAS_EL2
    if (v->vmm->arch->vcpu_features0 & (1u << KVM_ARM_VCPU_HAS_EL2))
        mode = PSR_MODE_EL2H;
#endif
    int rc = set_reg(v, CORE_REG(regs.pstate), mode | PSR_DAIF);
    rc = rc ?: set_reg(v, CORE_REG(regs.regs[0]), dtb);
    for (int i = 1; rc == 0 && i <= 3; i++)
        rc = set_reg(v, CORE_REG(regs.regs[i]), 0); /* booting.rst: reserved, zero */
    rc = rc ?: set_reg(v, CORE_REG(regs.pc), entry);
    if (rc)
        log_error("arm64: vCPU %u: setting the entry registers: %s", v->index, strerror(-rc));
    return rc;
}

int arm64_vcpu_get_counter(struct vcpu *v, uint64_t *cnt)
{
    return get_reg(v, KVM_REG_ARM_TIMER_CNT, cnt);
}

int arm64_vcpu_set_counter(struct vcpu *v, uint64_t cnt)
{
    return set_reg(v, KVM_REG_ARM_TIMER_CNT, cnt);
}

bool arch_vcpu_exit(struct vcpu *v)
{
    (void)v;
    return false;
}
