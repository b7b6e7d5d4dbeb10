/*
 * What the boot vCPU starts: a Linux kernel loaded directly (zero page,
 * e820, ACPI tables in the BIOS area), or UEFI firmware (the code image
 * read-only below 4 GiB, the variable store as CFI flash below it, and
 * fw_cfg carrying e820, ACPI, SMBIOS and optionally a kernel).
 */
#ifndef KRUNKIT_VMM_BOOT_H
#define KRUNKIT_VMM_BOOT_H

#include <stdbool.h>

#include "core/config.h"

struct vmm;

/* Firmware is used for EFI boot, and for Linux boot when --firmware-path is given. */
bool boot_uses_firmware(const struct vm_config *cfg);
/* Load the payload into the built machine; logs and returns -errno. */
/*
 * Once, before KVM: find and read the firmware, open or create the variable
 * store (nothing when booting Linux directly). A failed start removes a store
 * it created (boot_release).
 */
int boot_prepare(struct vmm *vmm);
int boot_load(struct vmm *vmm);
/* Undo boot_load for a reboot: the firmware and variable store stay loaded (flushed). */
void boot_unload(struct vmm *vmm);
/* The end of the VM: boot_unload, then the firmware and store go too. */
void boot_release(struct vmm *vmm);

#endif
