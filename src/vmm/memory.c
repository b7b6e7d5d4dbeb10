/*
 * Guest RAM: one private anonymous mapping, placed on a 2 MiB boundary and
 * advised for transparent huge pages, split into regions around the arch's
 * hole (see memory.h). Huge pages matter: KVM maps guest memory with
 * the host page size it finds, and with 4 KiB pages every guest TLB miss
 * walks a much deeper nested page table (in the nested lab, Linux's early
 * struct-page setup took 0.57 s instead of 0.01 s). A memfd would not get
 * them: shmem huge pages are off by default on Debian
 * (/sys/kernel/mm/transparent_hugepage/shmem_enabled = never).
 */
#include "vmm/memory.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"

#define HUGE_PAGE (2ull << 20)

int guest_mem_create(struct guest_mem *gm, uint64_t ram_size, const struct arch_mem_layout *l)
{
    memset(gm, 0, sizeof(*gm));
    uint64_t low_room = l->hole_start > l->ram_base ? l->hole_start - l->ram_base : 0;
    uint64_t high_room = l->hole_start == UINT64_MAX ? 0 : UINT64_MAX - l->hole_end;
    if (ram_size == 0 || ram_size > UINT64_MAX - HUGE_PAGE ||
        (ram_size > low_room && ram_size - low_room > high_room)) {
        log_error("guest RAM of %llu bytes cannot be mapped", (unsigned long long)ram_size);
        return -EINVAL;
    }
    /* Reserve a huge page more than needed, then trim to a 2 MiB-aligned start. */
    uint64_t span = ram_size + HUGE_PAGE;
    uint8_t *raw = mmap(NULL, span, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) {
        int err = -errno;
        log_error("mapping %llu MiB of guest RAM: %m", (unsigned long long)(ram_size >> 20));
        return err;
    }
    uint8_t *host = (uint8_t *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (host > raw)
        munmap(raw, (size_t)(host - raw));
    if (raw + span > host + ram_size)
        munmap(host + ram_size, (size_t)(raw + span - (host + ram_size)));
    madvise(host, ram_size, MADV_HUGEPAGE);
    /* A core dump (a seccomp trap ends in SIGSYS) must not carry the guest's memory. */
    madvise(host, ram_size, MADV_DONTDUMP);
    gm->ram_size = ram_size;
    uint64_t low = ram_size < low_room ? ram_size : low_room;
    gm->regions[0] = (struct guest_mem_region){.gpa = l->ram_base, .size = low, .host = host};
    gm->nr_regions = 1;
    if (ram_size > low) {
        gm->regions[1] = (struct guest_mem_region){
            .gpa = l->hole_end, .size = ram_size - low, .host = host + low};
        gm->nr_regions = 2;
    }
    return 0;
}

void guest_mem_destroy(struct guest_mem *gm)
{
    if (gm->nr_regions)
        munmap(gm->regions[0].host, gm->ram_size);
    memset(gm, 0, sizeof(*gm));
}

uint64_t guest_mem_low_end(const struct guest_mem *gm)
{
    return gm->regions[0].size;
}

uint64_t guest_mem_high_end(const struct guest_mem *gm)
{
    return gm->nr_regions > 1 ? gm->regions[1].gpa + gm->regions[1].size : 0;
}

uint64_t guest_mem_end(const struct guest_mem *gm)
{
    if (!gm->nr_regions)
        return 0;
    const struct guest_mem_region *last = &gm->regions[gm->nr_regions - 1];
    return last->gpa + last->size;
}
