/*
 * A guest memory for unit tests: regions mapped from one memfd (like the
 * VMM's RAM, so hole punching can be observed), no KVM involved.
 */
#ifndef KRUNKIT_TESTS_FAKE_GUEST_MEM_H
#define KRUNKIT_TESTS_FAKE_GUEST_MEM_H

#include <stdint.h>

#include "vmm/guest_mem.h"

/* One region of `size` bytes at guest address `gpa`; 0 or -errno. */
int fake_guest_mem_init(struct guest_mem *gm, uint64_t gpa, uint64_t size);
/* Add another region (at the next memfd offset); 0 or -errno. */
int fake_guest_mem_add(struct guest_mem *gm, uint64_t gpa, uint64_t size);
void fake_guest_mem_free(struct guest_mem *gm);
/* Bytes of the memfd actually backed by memory (allocated blocks). */
uint64_t fake_guest_mem_allocated(const struct guest_mem *gm);

#endif
