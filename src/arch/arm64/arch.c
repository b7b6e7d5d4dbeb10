/*
 * The arm64 "virt" machine behind the arch interface (vmm/arch.h): its
 * memory map (virt.h), its KVM set-up and its clock. The board is
 * board.c's, the payload boot.c's, the vCPUs vcpu.c's.
 *
 * KVM set-up follows Documentation/virt/kvm/api.rst (arm64 parts) and
 * devices/arm-vgic-v3.rst, devices/arm-vgic-its.rst:
 * - the VM type carries the guest's IPA size (KVM_CAP_ARM_VM_IPA_SIZE),
 *   as many bits as the highest guest-physical address needs;
 * - the interrupt controller is a vGICv3 (KVM_CREATE_DEVICE) with its
 *   distributor and redistributor addresses and the number of interrupts
 *   set now, and an ITS for MSIs; both are initialised
 *   (KVM_DEV_ARM_VGIC_CTRL_INIT) only once every vCPU exists, which KVM
 *   requires (arm64_gic_finalize, from the last arch_vcpu_init);
 * - MSI routes carry the requester id (msi_devid): the ITS translates per
 *   device. There are no wired routes: wired lines are injected with
 *   KVM_IRQ_LINE (SPI encoding), and GSIs below VIRT_NR_SPIS stay what
 *   KVM's default table makes them (GSI n = SPI n) so MSI GSIs start above.
 *
 * Without an ITS (a host whose KVM cannot emulate a GICv3 with one, i.e. a
 * GICv2-only host) the machine is refused: virtio-pci here is MSI-X only,
 * so PCI devices would have no interrupt at all. docs/porting.md says what
 * a fallback would take (GICv3 "mbi-ranges" or GICv2m SPIs, and MSI
 * routes turned into SPI routes in vmm/kvm.c).
 *
 * Pause freezes the guest's virtual counter (KVM_REG_ARM_TIMER_CNT): read
 * at freeze, written back at thaw, so paused time does not run for it.
 */
#include "arch/arm64/arm64.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/vm_internal.h"

/* IPA bits KVM assumes when the VM type does not say (api.rst, KVM_CREATE_VM). */
#define ARM64_DEFAULT_IPA_BITS 40

/*
 * The top of the guest-physical map, from arch_memory_layout to
 * arch_kvm_vm_type (which the core calls without the VM: one VM per process).
 */
static uint64_t ipa_top;

int arch_create(struct vmm *vmm)
{
    vmm->arch = calloc(1, sizeof(*vmm->arch));
    if (!vmm->arch)
        return -ENOMEM;
    vmm->arch->gic_fd = vmm->arch->its_fd = -1;
    if (vmm->ncpus == 0 || vmm->ncpus > VIRT_MAX_CPUS) {
        log_error("arm64: %u vCPUs: this machine has redistributors for 1 to %llu", vmm->ncpus,
                  (unsigned long long)VIRT_MAX_CPUS);
        return -EINVAL;
    }
    const struct boot_config *b = &vmm->cfg->boot;
    if (b->kind != BOOT_LINUX || vmm->cfg->firmware_path) {
        /* Named so the user knows what to use instead: --bootloader linux / --kernel. */
        log_error("arm64: EFI boot (--bootloader efi, the default, or --firmware-path) is not "
                  "implemented yet on arm64; boot a kernel directly with --kernel");
        return -ENOTSUP;
    }
    return 0;
}

void arch_destroy(struct vmm *vmm)
{
    if (!vmm->arch)
        return;
    free(vmm->arch);
    vmm->arch = NULL;
}

void arch_memory_layout(const struct vmm *vmm, struct arch_mem_layout *l)
{
    *l = (struct arch_mem_layout){
        .ram_base = VIRT_RAM_BASE,
        .hole_start = UINT64_MAX,
        .hole_end = UINT64_MAX,
        .mmio32_base = VIRT_PCI_MMIO32_BASE,
        .mmio32_end = VIRT_PCI_MMIO32_END,
        .mmio64_size = VIRT_MMIO64_SIZE,
        .has_pio = false,
    };
    /* As vm.c places the 64-bit window: on a 1 GiB boundary above RAM (tests pass no VM). */
    if (!vmm || !vmm->cfg)
        return;
    uint64_t ram_end = VIRT_RAM_BASE + (vmm->cfg->memory_mib << 20);
    ipa_top = ((ram_end + (1ull << 30) - 1) & ~((1ull << 30) - 1)) + VIRT_MMIO64_SIZE;
}

unsigned long arch_kvm_vm_type(int kvm_fd)
{
    unsigned bits = 32;
    while (bits < 52 && (1ull << bits) < ipa_top)
        bits++;
    int max = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);
    if (max <= 0) {
        /* A kernel without the capability has 40 bits, asked for with type 0. */
        if (bits > ARM64_DEFAULT_IPA_BITS)
            log_error("arm64: the guest-physical map needs %u address bits; this host's KVM "
                      "has %d (less RAM)",
                      bits, ARM64_DEFAULT_IPA_BITS);
        return 0;
    }
    if ((int)bits > max)
        log_error("arm64: the guest-physical map needs %u address bits; this host's KVM has %d "
                  "(less RAM)",
                  bits, max);
    /* The smallest that fits: fewer stage-2 table levels. Too many bits: KVM_CREATE_VM fails. */
    return KVM_VM_TYPE_ARM_IPA_SIZE(bits);
}

static int dev_attr(int fd, uint32_t group, uint64_t attr, void *val, const char *what)
{
    struct kvm_device_attr a = {.group = group, .attr = attr, .addr = (uint64_t)(uintptr_t)val};
    if (ioctl(fd, KVM_SET_DEVICE_ATTR, &a) < 0) {
        int err = -errno;
        log_error("arm64: %s: %m", what);
        return err;
    }
    return 0;
}

static int create_device(struct kvm_vm *k, uint32_t type, int *fd)
{
    struct kvm_create_device cd = {.type = type};
    if (ioctl(k->vm_fd, KVM_CREATE_DEVICE, &cd) < 0)
        return -errno;
    *fd = (int)cd.fd;
    return 0;
}

static int create_gic(struct vmm *vmm)
{
    struct arch_vm *a = vmm->arch;
    struct kvm_vm *k = &vmm->kvm;
    int rc = create_device(k, KVM_DEV_TYPE_ARM_VGIC_V3, &a->gic_fd);
    if (rc) {
        log_error("arm64: KVM cannot create a GICv3 (%s): a host with a GICv3 is needed "
                  "(GICv2-only hosts are not supported)",
                  strerror(-rc));
        return rc;
    }
    uint64_t dist = VIRT_GICD_BASE, redist = VIRT_GICR_BASE;
    uint32_t nr_irqs = GIC_SPI_BASE + VIRT_NR_SPIS;
    rc = dev_attr(a->gic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &dist,
                  "GICv3 distributor address");
    rc = rc
             ?: dev_attr(a->gic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST,
                         &redist, "GICv3 redistributor address");
    rc = rc
             ?: dev_attr(a->gic_fd, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs,
                         "GICv3 number of interrupts");
    if (rc)
        return rc;
    rc = create_device(k, KVM_DEV_TYPE_ARM_VGIC_ITS, &a->its_fd);
    if (rc) {
        log_error("arm64: KVM cannot create a GICv3 ITS (%s): the PCI devices' MSI-X needs it",
                  strerror(-rc));
        return rc;
    }
    uint64_t its = VIRT_GITS_BASE;
    return dev_attr(a->its_fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, &its,
                    "GICv3 ITS address");
}

int arm64_gic_finalize(struct vmm *vmm)
{
    struct arch_vm *a = vmm->arch;
    if (a->gic_ready)
        return 0;
    int rc = dev_attr(a->gic_fd, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL,
                      "GICv3 initialisation");
    rc = rc
             ?: dev_attr(a->its_fd, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL,
                         "GICv3 ITS initialisation");
    if (rc == 0)
        a->gic_ready = true;
    return rc;
}

int arch_kvm_init(struct vmm *vmm)
{
    struct arch_vm *a = vmm->arch;
    struct kvm_vm *k = &vmm->kvm;
    a->gic_ready = false;
    a->mpidr = calloc(vmm->ncpus, sizeof(*a->mpidr));
    if (!a->mpidr)
        return -ENOMEM;
    struct kvm_vcpu_init pref;
    memset(&pref, 0, sizeof(pref));
    if (ioctl(k->vm_fd, KVM_ARM_PREFERRED_TARGET, &pref) < 0) {
        int err = -errno;
        log_error("arm64: KVM_ARM_PREFERRED_TARGET: %m");
        return err;
    }
    a->vcpu_target = pref.target;
    a->vcpu_features0 = 0;
    if (vmm->cfg->nested) {
#ifdef KVM_ARM_VCPU_HAS_EL2
        if (ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_EL2) <= 0) {
            log_error("--nested: this host's KVM cannot give guests EL2 (KVM_CAP_ARM_EL2: needs "
                      "FEAT_NV2 hardware and kvm-arm.mode=nested)");
            return -ENOTSUP;
        }
        a->vcpu_features0 |= 1u << KVM_ARM_VCPU_HAS_EL2;
#else
        log_error("--nested: this build's kernel headers predate arm64 nested virtualisation "
                  "(KVM_ARM_VCPU_HAS_EL2)");
        return -ENOTSUP;
#endif
    }
    int rc = create_gic(vmm);
    if (rc)
        return rc;
    k->msi_devid = true;
    return kvm_vm_routing_start(k, VIRT_NR_SPIS);
}

void arch_kvm_fini(struct vmm *vmm)
{
    struct arch_vm *a = vmm->arch;
    if (!a)
        return;
    if (a->its_fd >= 0)
        close(a->its_fd);
    if (a->gic_fd >= 0)
        close(a->gic_fd);
    a->gic_fd = a->its_fd = -1;
    a->gic_ready = false;
    free(a->mpidr);
    a->mpidr = NULL;
    a->cnt_saved = false;
}

/* api.rst KVM_IRQ_LINE, arm64: irq_type (bits 24-27) SPI, irq_id (bits 0-15) the INTID. */
int arch_kvm_irq_line(struct kvm_vm *k, unsigned line, bool level)
{
    if (line >= VIRT_NR_SPIS)
        return -EINVAL;
    struct kvm_irq_level l = {
        .irq = (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | (GIC_SPI_BASE + line),
        .level = level,
    };
    if (ioctl(k->vm_fd, KVM_IRQ_LINE, &l) < 0)
        return -errno;
    return 0;
}

/*
 * The virtual counter is one per VM (KVM keeps one offset for every vCPU),
 * read through vCPU 0. It is written back through each vCPU: kernels
 * before 6.4 apply the write per vCPU, later ones to the VM, and the same
 * value either way leaves them in step.
 */
void arch_clock_freeze(struct vmm *vmm)
{
    struct arch_vm *a = vmm->arch;
    a->cnt_saved = vmm->vcpus && arm64_vcpu_get_counter(&vmm->vcpus[0], &a->paused_cnt) == 0;
    if (!a->cnt_saved)
        log_warn("arm64: cannot read the guest's counter (guest time will jump across the pause)");
}

void arch_clock_thaw(struct vmm *vmm)
{
    struct arch_vm *a = vmm->arch;
    if (!a->cnt_saved || !vmm->vcpus)
        return;
    for (unsigned i = 0; i < vmm->ncpus; i++)
        if (arm64_vcpu_set_counter(&vmm->vcpus[i], a->paused_cnt) < 0) {
            log_warn("arm64: cannot set vCPU %u's counter", i);
            break;
        }
    a->cnt_saved = false;
}
