/*
 * Direct Linux boot (Documentation/arch/x86/boot.rst, 64-bit boot
 * protocol): load a bzImage, its initrd and command line into guest RAM,
 * build the zero page with the e820 map, and put the boot vCPU in long
 * mode at the kernel's 64-bit entry point.
 */
#ifndef KRUNKIT_ARCH_X86_LINUX_BOOT_H
#define KRUNKIT_ARCH_X86_LINUX_BOOT_H

#include <stdint.h>

#include "arch/x86/e820.h"
#include "vmm/guest_mem.h"

/* Fixed guest addresses of the boot structures (all below 640 KiB). */
#define BOOT_GDT_ADDR 0x500ull
#define BOOT_ZERO_PAGE_ADDR 0x7000ull
#define BOOT_PML4_ADDR 0x9000ull /* + PDPT at 0xa000, 4 PDs at 0xb000..0xefff */
#define BOOT_CMDLINE_ADDR 0x20000ull
#define BOOT_CMDLINE_MAX 0x10000ull

struct linux_boot {
    uint64_t entry;     /* 64-bit entry point */
    uint64_t zero_page; /* rsi at entry */
    uint64_t kernel_addr, kernel_end;
    uint64_t initrd_addr, initrd_size;
};

/*
 * Load the kernel (and initrd, cmdline when not NULL) into gm. rsdp is the
 * guest address of the ACPI RSDP (0 = let Linux scan). Logs what is wrong
 * with the files and returns -errno.
 */
int linux_boot_load(const struct guest_mem *gm, const char *kernel_path, const char *initrd_path,
                    const char *cmdline, const struct e820_map *e820, uint64_t rsdp,
                    struct linux_boot *out);

/* Parse-only check of a bzImage header (for tests and early validation). */
int linux_boot_check_header(const uint8_t *hdr, size_t len, const char *path);

/* Page tables and GDT for the 64-bit entry, written into guest RAM. */
int linux_boot_write_cpu_tables(const struct guest_mem *gm);

#endif
