/* Guest memory over a memfd for unit tests (see fake_guest_mem.h). */
#include "fake_guest_mem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int fake_guest_mem_init(struct guest_mem *gm, uint64_t gpa, uint64_t size)
{
    memset(gm, 0, sizeof(*gm));
    gm->fd = memfd_create("fake-guest-ram", MFD_CLOEXEC);
    if (gm->fd < 0)
        return -errno;
    return fake_guest_mem_add(gm, gpa, size);
}

int fake_guest_mem_add(struct guest_mem *gm, uint64_t gpa, uint64_t size)
{
    if (gm->nr_regions >= GUEST_MEM_MAX_REGIONS)
        return -ENOSPC;
    uint64_t off = gm->ram_size;
    if (ftruncate(gm->fd, (off_t)(off + size)) < 0)
        return -errno;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, gm->fd, (off_t)off);
    if (p == MAP_FAILED)
        return -errno;
    gm->regions[gm->nr_regions++] =
        (struct guest_mem_region){.gpa = gpa, .size = size, .host = p, .fd_offset = off};
    gm->ram_size += size;
    return 0;
}

void fake_guest_mem_free(struct guest_mem *gm)
{
    for (unsigned i = 0; i < gm->nr_regions; i++)
        munmap(gm->regions[i].host, gm->regions[i].size);
    if (gm->fd >= 0)
        close(gm->fd);
    memset(gm, 0, sizeof(*gm));
    gm->fd = -1;
}

uint64_t fake_guest_mem_allocated(const struct guest_mem *gm)
{
    struct stat st;
    if (fstat(gm->fd, &st) < 0)
        return 0;
    return (uint64_t)st.st_blocks * 512;
}
