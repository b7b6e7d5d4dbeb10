/*
 * An x86-64 vCPU (the arch_vcpu_* half of vmm/arch.h, and the entry state
 * of a direct Linux boot).
 *
 * Initial state: the CPUID of cpuid.c for this vCPU's place in the
 * topology, IA32_MISC_ENABLE with fast strings (Linux expects firmware to
 * have set it), MTRRs defaulting to write-back (no firmware programs them
 * on a direct boot, and uncached RAM would crawl), and the LAPIC's LINT0/1
 * in virtual-wire mode so the PIC's interrupts reach vCPU 0.
 *
 * Exits only x86 has: port I/O goes to the port I/O bus; a triple fault
 * (KVM_EXIT_SHUTDOWN) resets the machine, as a PC does.
 */
#include "arch/x86/x86.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/cpuid.h"
#include "arch/x86/linux_boot.h"
#include "core/log.h"
#include "vmm/vm_internal.h"

#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static int set_msrs(struct vcpu *v)
{
    /* struct kvm_msrs ends in a flexible array: build it in a buffer. */
    union {
        struct kvm_msrs msrs;
        uint8_t buf[sizeof(struct kvm_msrs) + 2 * sizeof(struct kvm_msr_entry)];
    } m;
    memset(&m, 0, sizeof(m));
    m.msrs.nmsrs = 2;
    m.msrs.entries[0] = (struct kvm_msr_entry){.index = MSR_IA32_MISC_ENABLE, .data = 1};
    m.msrs.entries[1] = (struct kvm_msr_entry){.index = MSR_MTRR_DEF_TYPE, .data = (1u << 11) | 6};
    int n = ioctl(v->fd, KVM_SET_MSRS, &m.msrs);
    return n == 2 ? 0 : -EINVAL;
}

/* LINT0 as ExtINT (the PIC), LINT1 as NMI: the PC's virtual-wire mode. */
static int set_lapic_lint(struct vcpu *v)
{
    struct kvm_lapic_state s;
    if (ioctl(v->fd, KVM_GET_LAPIC, &s) < 0)
        return -errno;
    uint32_t lvt0, lvt1;
    memcpy(&lvt0, &s.regs[APIC_LVT0], 4);
    memcpy(&lvt1, &s.regs[APIC_LVT1], 4);
    lvt0 = (lvt0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
    lvt1 = (lvt1 & ~0x700u) | (APIC_MODE_NMI << 8);
    memcpy(&s.regs[APIC_LVT0], &lvt0, 4);
    memcpy(&s.regs[APIC_LVT1], &lvt1, 4);
    return ioctl(v->fd, KVM_SET_LAPIC, &s) < 0 ? -errno : 0;
}

int arch_vcpu_init(struct vcpu *v)
{
    struct vmm *vmm = v->vmm;
    size_t sz =
        sizeof(struct kvm_cpuid2) + vmm->arch->cpuid->nent * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = malloc(sz);
    if (!c)
        return -ENOMEM;
    memcpy(c, vmm->arch->cpuid, sz);
    int rc = cpuid_for_vcpu(c, v->index, vmm->ncpus, vmm->cfg->nested);
    if (rc == 0 && ioctl(v->fd, KVM_SET_CPUID2, c) < 0) {
        rc = -errno;
        log_error("KVM_SET_CPUID2 on vCPU %u: %m", v->index);
    }
    free(c);
    if (rc)
        return rc;
    rc = set_msrs(v);
    if (rc == 0)
        rc = set_lapic_lint(v);
    if (rc)
        log_error("vCPU %u: initial MSR/LAPIC state: %s", v->index, strerror(-rc));
    return rc;
}

/*
 * A triple fault resets the machine. Firmware and kernels use it on purpose
 * to reboot, but it is also how a guest dies of a broken stack or IDT: the
 * state it died in goes to the log either way.
 */
static void log_triple_fault(struct vcpu *v)
{
    struct kvm_regs r;
    struct kvm_sregs s;
    if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
        log_info("vCPU %u: triple fault, resetting", v->index);
        return;
    }
    log_info("vCPU %u: triple fault, resetting (rip 0x%llx rsp 0x%llx rflags 0x%llx cs 0x%x "
             "cr0 0x%llx cr2 0x%llx cr3 0x%llx cr4 0x%llx efer 0x%llx idt 0x%llx/%u)",
             v->index, (unsigned long long)r.rip, (unsigned long long)r.rsp,
             (unsigned long long)r.rflags, s.cs.selector, (unsigned long long)s.cr0,
             (unsigned long long)s.cr2, (unsigned long long)s.cr3, (unsigned long long)s.cr4,
             (unsigned long long)s.efer, (unsigned long long)s.idt.base, s.idt.limit);
}

int x86_vcpu_setup_linux(struct vcpu *v, uint64_t entry, uint64_t zero_page)
{
    struct kvm_sregs s;
    if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
        return -errno;
    struct kvm_segment code = {.base = 0,
                               .limit = 0xffffffff,
                               .selector = 0x10,
                               .type = 0xb,
                               .present = 1,
                               .s = 1,
                               .l = 1,
                               .g = 1};
    struct kvm_segment data = {.base = 0,
                               .limit = 0xffffffff,
                               .selector = 0x18,
                               .type = 0x3,
                               .present = 1,
                               .s = 1,
                               .db = 1,
                               .g = 1};
    struct kvm_segment tss = {
        .base = 0, .limit = 0x67, .selector = 0x20, .type = 0xb, .present = 1};
    s.cs = code;
    s.ds = s.es = s.fs = s.gs = s.ss = data;
    s.tr = tss;
    s.gdt.base = BOOT_GDT_ADDR;
    s.gdt.limit = 5 * 8 - 1;
    s.idt.base = 0;
    s.idt.limit = 0;
    s.cr0 = 0x80000011ull; /* PG | ET | PE */
    s.cr3 = BOOT_PML4_ADDR;
    s.cr4 = 0x20;   /* PAE */
    s.efer = 0x500; /* LME | LMA */
    if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0)
        return -errno;
    struct kvm_regs r = {.rip = entry, .rsi = zero_page, .rflags = 2};
    if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
        return -errno;
    struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
    if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
        return -errno;
    return 0;
}

static void handle_io(struct vcpu *v)
{
    struct kvm_run *run = v->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    bool out = run->io.direction == KVM_EXIT_IO_OUT;
    for (uint32_t i = 0; i < run->io.count; i++) {
        io_bus_access(&v->vmm->pio, run->io.port, data, run->io.size, out);
        data += run->io.size;
    }
}

bool arch_vcpu_exit(struct vcpu *v)
{
    struct kvm_run *run = v->run;
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        v->io_exits++;
        if (run->io.port == v->hot_port)
            v->hot_port_exits++;
        else if (v->hot_port_exits-- <= 1)
            v->hot_port = run->io.port, v->hot_port_exits = 1;
        handle_io(v);
        return true;
    case KVM_EXIT_SHUTDOWN:
        log_triple_fault(v);
        vmm_guest_reset(v->vmm);
        return true;
    default:
        return false;
    }
}
