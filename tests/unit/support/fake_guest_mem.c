/* Guest memory for unit tests (see fake_guest_mem.h). */
#include "fake_guest_mem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int fake_guest_mem_init(struct guest_mem *gm, uint64_t gpa, uint64_t size)
{
    memset(gm, 0, sizeof(*gm));
    return fake_guest_mem_add(gm, gpa, size);
}

int fake_guest_mem_add(struct guest_mem *gm, uint64_t gpa, uint64_t size)
{
    if (gm->nr_regions >= GUEST_MEM_MAX_REGIONS)
        return -ENOSPC;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    gm->regions[gm->nr_regions++] = (struct guest_mem_region){.gpa = gpa, .size = size, .host = p};
    gm->ram_size += size;
    return 0;
}

void fake_guest_mem_free(struct guest_mem *gm)
{
    for (unsigned i = 0; i < gm->nr_regions; i++)
        munmap(gm->regions[i].host, gm->regions[i].size);
    memset(gm, 0, sizeof(*gm));
}

uint64_t fake_guest_mem_resident(const struct guest_mem *gm)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint64_t resident = 0;
    unsigned char vec[256];
    for (unsigned i = 0; i < gm->nr_regions; i++) {
        const struct guest_mem_region *r = &gm->regions[i];
        for (uint64_t off = 0; off < r->size; off += sizeof(vec) * page) {
            uint64_t len = r->size - off < sizeof(vec) * page ? r->size - off : sizeof(vec) * page;
            if (mincore(r->host + off, len, vec) < 0)
                return 0;
            for (uint64_t p = 0; p < (len + page - 1) / page; p++)
                resident += (vec[p] & 1) ? page : 0;
        }
    }
    return resident;
}
