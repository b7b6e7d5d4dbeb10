/*
 * e820 map construction (ACPI 6.x, 15 "System Address Map Interfaces";
 * Linux Documentation/arch/x86/zero-page.rst for the zero-page table).
 */
#include "arch/x86/e820.h"

#include <errno.h>

static int e820_add(struct e820_map *map, uint64_t addr, uint64_t size, uint32_t type)
{
    if (size == 0)
        return 0;
    if (map->nr == E820_MAX_ENTRIES)
        return -ENOSPC;
    map->entries[map->nr++] = (struct e820_entry){.addr = addr, .size = size, .type = type};
    return 0;
}

int e820_build(struct e820_map *map, const struct guest_mem *gm)
{
    map->nr = 0;
    if (gm->nr_regions == 0 || gm->regions[0].gpa != 0 || gm->regions[0].size < 2 * E820_1M)
        return -EINVAL;
    int rc = e820_add(map, 0, E820_EBDA_START, E820_RAM);
    rc = rc ?: e820_add(map, E820_EBDA_START, 0xa0000 - E820_EBDA_START, E820_RESERVED);
    rc = rc ?: e820_add(map, E820_BIOS_START, E820_1M - E820_BIOS_START, E820_RESERVED);
    rc = rc ?: e820_add(map, E820_1M, gm->regions[0].size - E820_1M, E820_RAM);
    for (unsigned i = 1; i < gm->nr_regions && !rc; i++)
        rc = e820_add(map, gm->regions[i].gpa, gm->regions[i].size, E820_RAM);
    return rc;
}
