/*
 * The x86-64 PC behind the arch interface (vmm/arch.h): its memory map,
 * its KVM set-up and its clock. The board is board.c's, the payload
 * boot.c's, the vCPUs vcpu.c's.
 *
 * KVM set-up follows Documentation/virt/kvm/api.rst for x86: the TSS and
 * identity-map pages that VMX needs (placed just below the firmware, where
 * nothing else is mapped), the in-kernel irqchip (PIC + IOAPIC + LAPIC)
 * and PIT. Wired interrupt routes follow the PC convention the MADT
 * describes: ISA IRQ 0 (the PIT) reaches IOAPIC pin 2, IRQs 1-15 the PIC
 * and the same IOAPIC pin, 16-23 the IOAPIC only; MSI routes start at 24.
 */
#include "arch/x86/x86.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/cpuid.h"
#include "core/log.h"
#include "vmm/vm_internal.h"

#define KVM_TSS_ADDR 0xfffbd000ull
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ull

int arch_create(struct vmm *vmm)
{
    vmm->arch = calloc(1, sizeof(*vmm->arch));
    if (!vmm->arch)
        return -ENOMEM;
    return x86_boot_prepare(vmm);
}

void arch_destroy(struct vmm *vmm)
{
    if (!vmm->arch)
        return;
    x86_boot_release(vmm);
    free(vmm->arch);
    vmm->arch = NULL;
}

void arch_memory_layout(const struct vmm *vmm, struct arch_mem_layout *l)
{
    (void)vmm;
    *l = (struct arch_mem_layout){
        .ram_base = 0,
        .hole_start = X86_PCI_HOLE_START,
        .hole_end = X86_4G,
        .mmio32_base = X86_PCI_HOLE_START,
        .mmio32_end = X86_MMIO32_END,
        .mmio64_size = 64ull << 30,
        .has_pio = true,
    };
}

unsigned long arch_kvm_vm_type(int kvm_fd)
{
    (void)kvm_fd;
    return 0;
}

static int vm_ioctl(struct kvm_vm *k, unsigned long req, void *arg, const char *name)
{
    if (ioctl(k->vm_fd, req, arg) < 0) {
        int err = -errno;
        log_error("%s: %m", name);
        return err;
    }
    return 0;
}

static int add_pc_routes(struct kvm_vm *k)
{
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < 16; i++)
        if (i != 2) /* the cascade */
            rc = kvm_vm_route_irqchip(k, i, i < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
                                      i % 8);
    for (unsigned i = 0; rc == 0 && i < 24; i++)
        if (i != 2)
            rc = kvm_vm_route_irqchip(k, i, KVM_IRQCHIP_IOAPIC, i == 0 ? 2 : i);
    return rc ?: kvm_vm_routing_start(k, X86_FIRST_MSI_GSI);
}

static struct kvm_cpuid2 *kvm_supported_cpuid(struct kvm_vm *k)
{
    for (unsigned n = 128; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
        if (!c)
            return NULL;
        c->nent = n;
        if (ioctl(k->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            /*
             * The TSC-deadline timer is emulated by KVM's in-kernel LAPIC, so the
             * supported list leaves it out and the VMM adds it. Without it Linux
             * calibrates and reprograms the LAPIC timer, exits that cost dearly.
             */
            if (ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
                cpuid_add_tsc_deadline(c);
            return c;
        }
        free(c);
        if (errno != E2BIG)
            break;
    }
    log_error("KVM_GET_SUPPORTED_CPUID: %m");
    return NULL;
}
int arch_kvm_init(struct vmm *vmm)
{
    struct kvm_vm *k = &vmm->kvm;
    if (ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_PIT2) <= 0) {
        log_error("/dev/kvm lacks KVM_CAP_PIT2");
        return -ENODEV;
    }
    uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    int rc = vm_ioctl(k, KVM_SET_TSS_ADDR, (void *)(uintptr_t)KVM_TSS_ADDR, "KVM_SET_TSS_ADDR");
    rc = rc ?: vm_ioctl(k, KVM_SET_IDENTITY_MAP_ADDR, &idmap, "KVM_SET_IDENTITY_MAP_ADDR");
    rc = rc ?: vm_ioctl(k, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP");
    rc = rc ?: vm_ioctl(k, KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2");
    rc = rc ?: add_pc_routes(k);
    if (rc)
        return rc;
    vmm->arch->cpuid = kvm_supported_cpuid(k);
    if (!vmm->arch->cpuid)
        return -ENODEV;
    if (vmm->cfg->nested && !cpuid_has_nested(vmm->arch->cpuid)) {
        log_error("--nested: this host's KVM does not expose SVM/VMX to guests (load kvm_amd or "
                  "kvm_intel with nested=1)");
        return -ENOTSUP;
    }
    return 0;
}

void arch_kvm_fini(struct vmm *vmm)
{
    if (!vmm->arch)
        return;
    free(vmm->arch->cpuid);
    vmm->arch->cpuid = NULL;
}

int arch_kvm_irq_line(struct kvm_vm *k, unsigned line, bool level)
{
    struct kvm_irq_level l = {.irq = line, .level = level};
    if (ioctl(k->vm_fd, KVM_IRQ_LINE, &l) < 0)
        return -errno;
    return 0;
}

/* kvmclock: what the guest reads as time; saved at pause, put back at resume. */
void arch_clock_freeze(struct vmm *vmm)
{
    if (ioctl(vmm->kvm.vm_fd, KVM_GET_CLOCK, &vmm->arch->paused_clock) < 0)
        log_warn("KVM_GET_CLOCK: %m (guest time will jump across the pause)");
}

void arch_clock_thaw(struct vmm *vmm)
{
    struct kvm_clock_data c = {.clock = vmm->arch->paused_clock.clock};
    if (vmm->arch->paused_clock.clock && ioctl(vmm->kvm.vm_fd, KVM_SET_CLOCK, &c) < 0)
        log_warn("KVM_SET_CLOCK: %m");
}
