/*
 * A guest memory for unit tests: each region is its own anonymous mapping,
 * as the VMM's RAM is (so a page the balloon releases is seen to leave
 * memory), no KVM involved.
 */
#ifndef KRUNKIT_TESTS_FAKE_GUEST_MEM_H
#define KRUNKIT_TESTS_FAKE_GUEST_MEM_H

#include <stdint.h>

#include "vmm/guest_mem.h"

/* One region of `size` bytes at guest address `gpa`; 0 or -errno. */
int fake_guest_mem_init(struct guest_mem *gm, uint64_t gpa, uint64_t size);
/* Add another region; 0 or -errno. */
int fake_guest_mem_add(struct guest_mem *gm, uint64_t gpa, uint64_t size);
void fake_guest_mem_free(struct guest_mem *gm);
/* Bytes of guest RAM resident in host memory now (mincore). */
uint64_t fake_guest_mem_resident(const struct guest_mem *gm);

#endif
