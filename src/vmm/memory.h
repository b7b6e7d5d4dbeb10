/*
 * Guest RAM: one 2 MiB-aligned anonymous mapping (huge pages) split around
 * the 32-bit PCI hole.
 *   [0, min(ram, 3 GiB))          low RAM
 *   [3 GiB, 4 GiB)                PCI MMIO, IOAPIC, LAPIC, firmware
 *   [4 GiB, 4 GiB + rest)         high RAM
 */
#ifndef KRUNKIT_VMM_MEMORY_H
#define KRUNKIT_VMM_MEMORY_H

#include <stdint.h>

#include "vmm/guest_mem.h"

#define MEM_PCI_HOLE_START 0xc0000000ull
#define MEM_4G 0x100000000ull

int guest_mem_create(struct guest_mem *gm, uint64_t ram_size);
void guest_mem_destroy(struct guest_mem *gm);
/* End of low RAM (start of the hole or the end of RAM) and of high RAM (0 when none). */
uint64_t guest_mem_low_end(const struct guest_mem *gm);
uint64_t guest_mem_high_end(const struct guest_mem *gm);

#endif
