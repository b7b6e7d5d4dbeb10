/*
 * Guest RAM in one memfd (so devices and helpers can map it and the
 * balloon can punch holes), mapped once and split into regions around the
 * 32-bit PCI hole (see memory.h).
 */
#include "vmm/memory.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli/log.h"

int guest_mem_create(struct guest_mem *gm, uint64_t ram_size)
{
    memset(gm, 0, sizeof(*gm));
    gm->fd = memfd_create("krunkit-ram", MFD_CLOEXEC);
    if (gm->fd < 0) {
        int err = -errno;
        log_error("memfd_create for %llu MiB of guest RAM: %m",
                  (unsigned long long)(ram_size >> 20));
        return err;
    }
    if (ftruncate(gm->fd, (off_t)ram_size) < 0) {
        int err = -errno;
        log_error("sizing guest RAM to %llu MiB: %m", (unsigned long long)(ram_size >> 20));
        close(gm->fd);
        gm->fd = -1;
        return err;
    }
    uint8_t *host = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                         gm->fd, 0);
    if (host == MAP_FAILED) {
        int err = -errno;
        log_error("mapping %llu MiB of guest RAM: %m", (unsigned long long)(ram_size >> 20));
        close(gm->fd);
        gm->fd = -1;
        return err;
    }
    madvise(host, ram_size, MADV_HUGEPAGE);
    gm->ram_size = ram_size;
    uint64_t low = ram_size < MEM_PCI_HOLE_START ? ram_size : MEM_PCI_HOLE_START;
    gm->regions[0] = (struct guest_mem_region){.gpa = 0, .size = low, .host = host};
    gm->nr_regions = 1;
    if (ram_size > low) {
        gm->regions[1] = (struct guest_mem_region){
            .gpa = MEM_4G, .size = ram_size - low, .host = host + low, .fd_offset = low};
        gm->nr_regions = 2;
    }
    return 0;
}

void guest_mem_destroy(struct guest_mem *gm)
{
    if (gm->nr_regions)
        munmap(gm->regions[0].host, gm->ram_size);
    if (gm->fd >= 0)
        close(gm->fd);
    memset(gm, 0, sizeof(*gm));
    gm->fd = -1;
}

uint64_t guest_mem_low_end(const struct guest_mem *gm)
{
    return gm->regions[0].size;
}

uint64_t guest_mem_high_end(const struct guest_mem *gm)
{
    return gm->nr_regions > 1 ? gm->regions[1].gpa + gm->regions[1].size : 0;
}
