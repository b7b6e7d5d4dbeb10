/*
 * The e820 memory map handed to a directly booted Linux (zero page) and,
 * in fw_cfg form, to firmware: RAM below 640 KiB, the legacy BIOS area and
 * our ACPI tables reserved, RAM from 1 MiB to the PCI hole and above 4 GiB.
 */
#ifndef KRUNKIT_ARCH_X86_E820_H
#define KRUNKIT_ARCH_X86_E820_H

#include <stdint.h>

#include "vmm/guest_mem.h"

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_MAX_ENTRIES 16

/* Direct-boot layout of the low megabyte. */
#define E820_EBDA_START 0x9fc00ull
#define E820_BIOS_START 0xe0000ull /* ACPI tables live here (Linux scans for the RSDP) */
#define E820_1M 0x100000ull

struct e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
} __attribute__((packed));

struct e820_map {
    struct e820_entry entries[E820_MAX_ENTRIES];
    unsigned nr;
};

/* Build the map for guest memory gm (low RAM must be at least 2 MiB). */
int e820_build(struct e820_map *map, const struct guest_mem *gm);

#endif
