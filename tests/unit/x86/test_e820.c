/*
 * e820 map for direct boot (src/arch/x86/e820.c) over the real guest RAM
 * layouts of src/vmm/memory.c: 512 MiB, exactly 3 GiB, 4 GiB (RAM above
 * 4 GiB), and RAM too small to hold the low megabyte plus a kernel.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/e820.h"
#include "vmm/memory.h"
#include "arch/x86/x86.h"

/* Guest RAM laid out as on a PC (the x86 arch's map). */
static int pc_mem_create(struct guest_mem *gm, uint64_t ram_size)
{
    struct arch_mem_layout l;
    arch_memory_layout(NULL, &l);
    return guest_mem_create(gm, ram_size, &l);
}

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static void expect(const struct e820_map *m, unsigned i, uint64_t addr, uint64_t size,
                   uint32_t type)
{
    assert_true(i < m->nr);
    assert_int_equal(m->entries[i].addr, addr);
    assert_int_equal(m->entries[i].size, size);
    assert_int_equal(m->entries[i].type, type);
}

/* Sorted, non-overlapping, and RAM exactly where guest_mem has RAM. */
static void check_consistent(const struct e820_map *m, const struct guest_mem *gm)
{
    uint64_t ram = 0;
    for (unsigned i = 0; i < m->nr; i++) {
        const struct e820_entry *e = &m->entries[i];
        assert_true(e->size > 0);
        if (i > 0)
            assert_true(m->entries[i - 1].addr + m->entries[i - 1].size <= e->addr);
        if (e->type == E820_RAM) {
            assert_non_null(gm_ptr(gm, e->addr, e->size));
            ram += e->size;
        }
    }
    /* All of RAM but the EBDA and the BIOS area. */
    assert_int_equal(ram, gm->ram_size - (E820_1M - E820_BIOS_START) - (0xa0000 - E820_EBDA_START) -
                              (E820_BIOS_START - 0xa0000));
}

static void test_512m(void **state)
{
    (void)state;
    struct guest_mem gm;
    struct e820_map m;
    assert_int_equal(pc_mem_create(&gm, 512 * MiB), 0);
    assert_int_equal(e820_build(&m, &gm), 0);
    assert_int_equal(m.nr, 4);
    expect(&m, 0, 0, 0x9fc00, E820_RAM);
    expect(&m, 1, 0x9fc00, 0x400, E820_RESERVED);
    expect(&m, 2, 0xe0000, 0x20000, E820_RESERVED);
    expect(&m, 3, 0x100000, 512 * MiB - 0x100000, E820_RAM);
    check_consistent(&m, &gm);
    guest_mem_destroy(&gm);
}

static void test_exactly_3g(void **state)
{
    (void)state;
    struct guest_mem gm;
    struct e820_map m;
    assert_int_equal(pc_mem_create(&gm, 3 * GiB), 0);
    assert_int_equal(e820_build(&m, &gm), 0);
    assert_int_equal(m.nr, 4);
    expect(&m, 3, 0x100000, 3 * GiB - 0x100000, E820_RAM);
    /* Nothing reaches into the PCI hole. */
    for (unsigned i = 0; i < m.nr; i++)
        assert_true(m.entries[i].addr + m.entries[i].size <= X86_PCI_HOLE_START);
    check_consistent(&m, &gm);
    guest_mem_destroy(&gm);
}

static void test_4g_puts_the_rest_above_4g(void **state)
{
    (void)state;
    struct guest_mem gm;
    struct e820_map m;
    assert_int_equal(pc_mem_create(&gm, 4 * GiB), 0);
    assert_int_equal(e820_build(&m, &gm), 0);
    assert_int_equal(m.nr, 5);
    expect(&m, 3, 0x100000, 3 * GiB - 0x100000, E820_RAM);
    expect(&m, 4, X86_4G, 1 * GiB, E820_RAM);
    check_consistent(&m, &gm);
    guest_mem_destroy(&gm);
}

static void test_tiny_ram_refused(void **state)
{
    (void)state;
    struct guest_mem gm;
    struct e820_map m;
    assert_int_equal(pc_mem_create(&gm, 1 * MiB), 0);
    assert_int_equal(e820_build(&m, &gm), -EINVAL);
    assert_int_equal(m.nr, 0);
    guest_mem_destroy(&gm);
    assert_int_equal(pc_mem_create(&gm, 2 * MiB - 4096), 0);
    assert_int_equal(e820_build(&m, &gm), -EINVAL);
    guest_mem_destroy(&gm);
    /* 2 MiB is the smallest accepted. */
    assert_int_equal(pc_mem_create(&gm, 2 * MiB), 0);
    assert_int_equal(e820_build(&m, &gm), 0);
    expect(&m, 3, 0x100000, 0x100000, E820_RAM);
    guest_mem_destroy(&gm);
    /* No RAM at all, or low RAM not starting at 0. */
    struct guest_mem none = {0};
    assert_int_equal(e820_build(&m, &none), -EINVAL);
    struct guest_mem shifted = {.nr_regions = 1};
    shifted.regions[0] = (struct guest_mem_region){.gpa = 0x1000, .size = 64 * MiB};
    assert_int_equal(e820_build(&m, &shifted), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_512m),
        cmocka_unit_test(test_exactly_3g),
        cmocka_unit_test(test_4g_puts_the_rest_above_4g),
        cmocka_unit_test(test_tiny_ram_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
