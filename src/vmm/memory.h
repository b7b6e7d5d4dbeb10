/*
 * Guest RAM: one 2 MiB-aligned anonymous mapping (huge pages), laid out as
 * the arch says (struct arch_mem_layout): from ram_base up to hole_start,
 * the rest from hole_end. On a PC:
 *   [0, min(ram, 3 GiB))          low RAM
 *   [3 GiB, 4 GiB)                PCI MMIO, IOAPIC, LAPIC, firmware
 *   [4 GiB, 4 GiB + rest)         high RAM
 * A machine without a hole (arm64: RAM from 1 GiB up) has one region.
 */
#ifndef KRUNKIT_VMM_MEMORY_H
#define KRUNKIT_VMM_MEMORY_H

#include <stdint.h>

#include "vmm/arch.h"
#include "vmm/guest_mem.h"

/* -EINVAL (logged) when ram_size does not fit the layout. */
int guest_mem_create(struct guest_mem *gm, uint64_t ram_size, const struct arch_mem_layout *l);
void guest_mem_destroy(struct guest_mem *gm);
/* End of low RAM (start of the hole or the end of RAM) and of high RAM (0 when none). */
uint64_t guest_mem_low_end(const struct guest_mem *gm);
uint64_t guest_mem_high_end(const struct guest_mem *gm);
/* End of the highest region: where the space above RAM starts. */
uint64_t guest_mem_end(const struct guest_mem *gm);

#endif
