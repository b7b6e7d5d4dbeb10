/*
 * Guest physical memory: a few regions of one host mapping (RAM below the
 * 32-bit PCI hole and RAM above 4 GiB). Every access to guest memory by a
 * device goes through gm_ptr(), which checks that the whole range lies in
 * one region: a guest-supplied address or length is never trusted.
 * The regions are anonymous memory: the balloon frees a guest page with
 * MADV_DONTNEED, and it reads back as zeroes. Tests build a guest_mem the
 * same way (tests/unit/support/fake_guest_mem.c).
 */
#ifndef KRUNKIT_VMM_GUEST_MEM_H
#define KRUNKIT_VMM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define GUEST_MEM_MAX_REGIONS 4

struct guest_mem_region {
    uint64_t gpa;
    uint64_t size;
    uint8_t *host;
};

struct guest_mem {
    struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
    unsigned nr_regions;
    uint64_t ram_size; /* total RAM bytes */
};

/* Host pointer for [gpa, gpa+len) when it lies inside one region, else NULL. */
static inline void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < gm->nr_regions; i++) {
        const struct guest_mem_region *r = &gm->regions[i];
        if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
            return r->host + (gpa - r->gpa);
    }
    return NULL;
}

static inline bool gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len)
{
    void *p = gm_ptr(gm, gpa, len);
    if (!p)
        return false;
    memcpy(dst, p, len);
    return true;
}

static inline bool gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len)
{
    void *p = gm_ptr(gm, gpa, len);
    if (!p)
        return false;
    memcpy(p, src, len);
    return true;
}

#endif
