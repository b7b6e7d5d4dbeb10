/*
 * What the boot vCPU of a PC starts (arch_boot_* of vmm/arch.h): a Linux
 * kernel loaded directly (zero page, e820, ACPI tables in the BIOS area),
 * or UEFI firmware (the code image read-only below 4 GiB, the variable
 * store as CFI flash below it, fw_cfg carrying e820, ACPI, SMBIOS and
 * optionally a kernel). Firmware is used for EFI boot, and for Linux boot
 * when --firmware-path is given.
 *
 * Direct Linux boot follows Documentation/arch/x86/boot.rst: the e820 map
 * and the ACPI tables (in the reserved BIOS area, where Linux looks for the
 * RSDP) come first, then the kernel, initrd and command line, then the
 * boot vCPU is put at the 64-bit entry.
 *
 * Firmware boot maps the code image as a read-only KVM slot ending at
 * 4 GiB. The variable store is CFI flash: while the flash is in read-array
 * mode its buffer is a read-only KVM slot too, so the firmware's reads cost
 * no exit and its writes (flash commands) exit to the pflash model; in any
 * other mode the slot is removed so reads reach the model (QEMU calls this
 * "romd" mode). The boot vCPU starts at the reset vector, KVM's reset state.
 *
 * The firmware image and the variable store are loaded once, before KVM is
 * touched (boot_prepare: a bad firmware file is reported as such, whatever
 * the host's KVM can do), and kept across guest reboots (the store's descriptor, its lock
 * and its contents stay; the flash goes back to read-array mode); a reboot
 * only maps them into the new VM and builds fw_cfg again. Finding the
 * firmware and deciding whether the store is new happen once too: a reboot
 * looks at no path.
 */
#include "arch/x86/x86.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/e820.h"
#include "arch/x86/firmware.h"
#include "arch/x86/linux_boot.h"
#include "core/log.h"
#include "vmm/memory.h"
#include "hw/fw_cfg.h"
#include "hw/pflash.h"
#include "vmm/vm_internal.h"

/* OVMF places 32-bit BARs from the end of low RAM, but not below 2 GiB. */
#define FIRMWARE_PCI_HOLE_MIN 0x80000000ull

struct boot_state {
    struct firmware fw;
    bool fw_loaded;
    bool store_created; /* this run made the variable store: a failed start removes it */
    bool booted;        /* boot_firmware ran once (later runs are reboots) */
    struct fw_cfg *fw_cfg;
    struct kvm_vm *kvm;
    int vars_slot;
};

static bool boot_uses_firmware(const struct vm_config *cfg)
{
    return cfg->boot.kind != BOOT_LINUX || cfg->firmware_path;
}

static int boot_linux_direct(struct vmm *vmm)
{
    const struct boot_config *b = &vmm->cfg->boot;
    struct e820_map e820;
    int rc = e820_build(&e820, &vmm->mem);
    if (rc) {
        log_error("cannot build the memory map for %llu MiB",
                  (unsigned long long)vmm->cfg->memory_mib);
        return rc;
    }
    uint64_t rsdp = 0;
    rc = x86_board_write_acpi(vmm, &rsdp);
    if (rc)
        return rc;
    struct linux_boot lb;
    rc = linux_boot_load(&vmm->mem, b->kernel, b->initrd, b->cmdline, &e820, rsdp, &lb);
    if (rc)
        return rc;
    return x86_vcpu_setup_linux(&vmm->vcpus[0], lb.entry, lb.zero_page);
}

static void vars_mode_changed(void *opaque, bool array_mode)
{
    struct boot_state *bs = opaque;
    const struct firmware *fw = &bs->fw;
    kvm_vm_remap(bs->kvm, bs->vars_slot, fw->vars_gpa, array_mode ? fw->vars_size : 0,
                 pflash_host(fw->vars), true);
}

static uint64_t firmware_pci_hole_start(const struct vmm *vmm)
{
    uint64_t start = guest_mem_low_end(&vmm->mem);
    if (start < FIRMWARE_PCI_HOLE_MIN)
        start = FIRMWARE_PCI_HOLE_MIN;
    return start;
}

static int boot_firmware(struct vmm *vmm, struct boot_state *bs)
{
    const struct vm_config *cfg = vmm->cfg;
    struct firmware_request req;
    firmware_request_from_config(cfg, &req);
    bool first = !bs->booted;
    bs->booted = true;
    int rc = 0;
    struct firmware *fw = &bs->fw;
    rc = kvm_vm_map(bs->kvm, fw->code_gpa, fw->code_size, fw->code, true);
    if (rc >= 0 && fw->vars) {
        bs->vars_slot =
            kvm_vm_map(bs->kvm, fw->vars_gpa, fw->vars_size, pflash_host(fw->vars), true);
        rc = bs->vars_slot;
        if (rc >= 0)
            rc = pflash_register(fw->vars, &vmm->mmio, fw->vars_gpa);
        if (rc >= 0)
            pflash_set_mode_handler(fw->vars, vars_mode_changed, bs);
    }
    if (rc >= 0) {
        bs->fw_cfg = fw_cfg_create(&vmm->mem);
        rc = bs->fw_cfg ? 0 : -ENOMEM;
    }
    if (rc == 0) {
        struct acpi_layout layout = {
            .ncpus = vmm->ncpus,
            .pci_hole_start = firmware_pci_hole_start(vmm),
            .pci_hole_end = X86_MMIO32_END,
            .mmio64_base = vmm->pci.mmio64_next,
            .mmio64_size = vmm->pci.mmio64_end - vmm->pci.mmio64_next,
        };
        struct firmware_fw_cfg_info info = {
            .ncpus = vmm->ncpus,
            .mem = &vmm->mem,
            .acpi = &layout,
            .uuid = vmm->uuid, /* stable across guest reboots */
            .oem_strings = cfg->oem_strings,
            .n_oem_strings = cfg->n_oem_strings,
        };
        rc = firmware_fw_cfg_setup(bs->fw_cfg, &info);
    }
    if (rc == 0 && cfg->boot.kind == BOOT_LINUX)
        rc = firmware_fw_cfg_linux(bs->fw_cfg, cfg->boot.kernel, cfg->boot.initrd,
                                   cfg->boot.cmdline);
    if (rc == 0)
        rc = fw_cfg_register(bs->fw_cfg, &vmm->pio);
    if (rc == 0 && first)
        log_info("booting %s (variable store: %s)", fw->code_path,
                 fw->store_path ? fw->store_path : "volatile");
    return rc < 0 ? rc : 0;
}

int x86_boot_prepare(struct vmm *vmm)
{
    if (!boot_uses_firmware(vmm->cfg))
        return 0;
    struct boot_state *bs = calloc(1, sizeof(*bs));
    if (!bs)
        return -ENOMEM;
    bs->kvm = &vmm->kvm;
    bs->vars_slot = -1;
    vmm->arch->boot = bs;
    struct firmware_request req;
    firmware_request_from_config(vmm->cfg, &req);
    bool existed = req.variable_store && access(req.variable_store, F_OK) == 0;
    int rc = firmware_load(&req, &bs->fw);
    bs->store_created = req.variable_store && !existed && access(req.variable_store, F_OK) == 0;
    if (rc)
        return rc;
    bs->fw_loaded = true;
    return 0;
}

int arch_boot_load(struct vmm *vmm)
{
    if (!boot_uses_firmware(vmm->cfg))
        return boot_linux_direct(vmm);
    struct boot_state *bs = vmm->arch->boot;
    if (!bs || !bs->fw_loaded)
        return -EINVAL; /* boot_prepare failed or was not called */
    bs->vars_slot = -1;
    return boot_firmware(vmm, bs);
}

void arch_boot_unload(struct vmm *vmm)
{
    struct boot_state *bs = vmm->arch ? vmm->arch->boot : NULL;
    if (!bs)
        return;
    if (bs->fw_cfg)
        fw_cfg_destroy(bs->fw_cfg);
    bs->fw_cfg = NULL;
    struct pflash *vars = bs->fw_loaded ? bs->fw.vars : NULL;
    if (vars) {
        /* The next boot's flash starts in read-array mode, on disk up to here. */
        pflash_set_mode_handler(vars, NULL, NULL);
        pflash_reset(vars);
        int rc = pflash_flush(vars);
        if (rc)
            log_error("variable store: cannot sync to disk: %s", strerror(-rc));
    }
}

void x86_boot_release(struct vmm *vmm)
{
    arch_boot_unload(vmm);
    struct boot_state *bs = vmm->arch ? vmm->arch->boot : NULL;
    if (!bs)
        return;
    if (bs->fw_loaded)
        firmware_free(&bs->fw);
    /* Nothing half-created: a store this run made goes with a failed start. */
    if (vmm->failed_start && bs->store_created && vmm->cfg->boot.variable_store)
        unlink(vmm->cfg->boot.variable_store);
    free(bs);
    vmm->arch->boot = NULL;
}
