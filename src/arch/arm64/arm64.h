/*
 * The arm64 "virt" machine's own state and the calls between its files:
 * what the arch interface (vmm/arch.h) keeps per VM, and what arch.c,
 * board.c, boot.c and vcpu.c share. Nothing outside src/arch/arm64
 * includes this.
 */
#ifndef KRUNKIT_ARCH_ARM64_ARM64_H
#define KRUNKIT_ARCH_ARM64_ARM64_H

#include <stdbool.h>
#include <stdint.h>

#include "arch/arm64/virt.h"
#include "vmm/arch.h"

struct arm64_board;

struct arch_vm {
    int gic_fd;              /* the vGICv3 device (KVM_CREATE_DEVICE), per boot */
    int its_fd;              /* its ITS, per boot */
    bool gic_ready;          /* KVM_DEV_ARM_VGIC_CTRL_INIT done (after the last vCPU) */
    uint32_t vcpu_target;    /* KVM_ARM_PREFERRED_TARGET's answer, per boot */
    uint32_t vcpu_features0; /* KVM_ARM_VCPU_INIT features[0] beyond PSCI and POWER_OFF */
    uint64_t *mpidr;         /* per vCPU, read back from KVM for the device tree */
    struct arm64_board *board;
    /* Pause: the guest's virtual counter when it was frozen. */
    uint64_t paused_cnt;
    bool cnt_saved;
};

/* arch.c: finish the vGIC once every vCPU exists (KVM requires that order). */
int arm64_gic_finalize(struct vmm *vmm);
/* vcpu.c: the boot vCPU's entry registers (booting.rst: x0 = DTB, x1-x3 = 0). */
int arm64_vcpu_setup_linux(struct vcpu *v, uint64_t entry, uint64_t dtb);
/* vcpu.c: the guest's virtual counter through vCPU v (KVM_REG_ARM_TIMER_CNT). */
int arm64_vcpu_get_counter(struct vcpu *v, uint64_t *cnt);
int arm64_vcpu_set_counter(struct vcpu *v, uint64_t cnt);

#endif
