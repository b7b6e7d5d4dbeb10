/*
 * Guest RAM layout (src/vmm/memory.c): one 2 MiB-aligned anonymous mapping
 * advised for huge pages, split around the 32-bit PCI hole, and gm_ptr()'s
 * bounds checks (vmm/guest_mem.h), including lengths and addresses chosen
 * to overflow gpa + len. The mapping is MAP_NORESERVE and untouched pages
 * cost nothing, so even 5 GiB is cheap here.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "vmm/memory.h"
#include "arch/x86/x86.h"

/*
 * Guest RAM laid out as on a PC (the x86 arch's map), spelled out rather
 * than asked of the linked arch: this test runs for every ARCH.
 */
static int pc_mem_create(struct guest_mem *gm, uint64_t ram_size)
{
    struct arch_mem_layout l = {
        .ram_base = 0,
        .hole_start = X86_PCI_HOLE_START,
        .hole_end = X86_4G,
        .mmio32_base = X86_PCI_HOLE_START,
        .mmio32_end = X86_MMIO32_END,
        .mmio64_size = 64ull << 30,
        .has_pio = true,
    };
    return guest_mem_create(gm, ram_size, &l);
}

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* smaps: a mapping's first line starts with its hex address, its fields with a capital. */
static bool is_mapping_header(const char *line)
{
    return (line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f');
}

/* The /proc/self/smaps entry of the mapping starting at addr: a VmFlags flag. */
static bool mapping_has_flag(const void *addr, const char *flag)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    assert_non_null(f);
    char line[512], start[32];
    snprintf(start, sizeof(start), "%lx-", (unsigned long)(uintptr_t)addr);
    bool in = false, found = false;
    while (fgets(line, sizeof(line), f)) {
        if (is_mapping_header(line))
            in = strncmp(line, start, strlen(start)) == 0;
        if (in && strncmp(line, "VmFlags:", 8) == 0) {
            char want[8];
            snprintf(want, sizeof(want), " %s", flag);
            found = strstr(line, want) != NULL;
            break;
        }
    }
    fclose(f);
    return found;
}

/* Resident KiB of the mapping starting at addr. */
static unsigned long mapping_rss_kib(const void *addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    assert_non_null(f);
    char line[512], start[32];
    snprintf(start, sizeof(start), "%lx-", (unsigned long)(uintptr_t)addr);
    bool in = false;
    unsigned long kib = ~0ul;
    while (fgets(line, sizeof(line), f)) {
        if (is_mapping_header(line))
            in = strncmp(line, start, strlen(start)) == 0;
        if (in && sscanf(line, "Rss: %lu kB", &kib) == 1)
            break;
    }
    fclose(f);
    return kib;
}

static void test_512m_is_one_low_region(void **state)
{
    (void)state;
    struct guest_mem gm;
    assert_int_equal(pc_mem_create(&gm, 512 * MiB), 0);
    assert_int_equal(gm.nr_regions, 1);
    assert_int_equal(gm.regions[0].gpa, 0);
    assert_int_equal(gm.regions[0].size, 512 * MiB);
    assert_int_equal(gm.ram_size, 512 * MiB);
    assert_int_equal(guest_mem_low_end(&gm), 512 * MiB);
    assert_int_equal(guest_mem_high_end(&gm), 0);
    /* On a huge-page boundary, and advised for huge pages. */
    assert_int_equal((uintptr_t)gm.regions[0].host % (2 * MiB), 0);
    assert_true(mapping_has_flag(gm.regions[0].host, "hg"));
    /* The memory is usable at both ends. */
    uint8_t *first = gm_ptr(&gm, 0, 1), *last = gm_ptr(&gm, 512 * MiB - 1, 1);
    assert_non_null(first);
    assert_non_null(last);
    *first = 0xa5;
    *last = 0x5a;
    assert_int_equal(*(uint8_t *)gm_ptr(&gm, 0, 1), 0xa5);
    assert_int_equal(*(uint8_t *)gm_ptr(&gm, 512 * MiB - 1, 1), 0x5a);
    assert_null(gm_ptr(&gm, 512 * MiB, 1));
    guest_mem_destroy(&gm);
    assert_int_equal(gm.nr_regions, 0);
}

static void test_3g_fills_low_ram_exactly(void **state)
{
    (void)state;
    struct guest_mem gm;
    assert_int_equal(pc_mem_create(&gm, 3 * GiB), 0);
    assert_int_equal(gm.nr_regions, 1);
    assert_int_equal(gm.regions[0].size, X86_PCI_HOLE_START);
    assert_int_equal(guest_mem_low_end(&gm), 3 * GiB);
    assert_int_equal(guest_mem_high_end(&gm), 0);
    assert_non_null(gm_ptr(&gm, 3 * GiB - 4096, 4096));
    assert_null(gm_ptr(&gm, 3 * GiB - 4096, 4097));
    assert_null(gm_ptr(&gm, X86_4G, 1));
    guest_mem_destroy(&gm);
}

static void test_one_page_over_3g_goes_above_4g(void **state)
{
    (void)state;
    struct guest_mem gm;
    assert_int_equal(pc_mem_create(&gm, 3 * GiB + 4096), 0);
    assert_int_equal(gm.nr_regions, 2);
    assert_int_equal(gm.regions[0].size, 3 * GiB);
    assert_int_equal(gm.regions[1].gpa, X86_4G);
    assert_int_equal(gm.regions[1].size, 4096);
    assert_int_equal(guest_mem_high_end(&gm), X86_4G + 4096);
    assert_null(gm_ptr(&gm, 3 * GiB, 1));
    guest_mem_destroy(&gm);
}

static void test_5g_splits_around_the_hole(void **state)
{
    (void)state;
    struct guest_mem gm;
    assert_int_equal(pc_mem_create(&gm, 5 * GiB), 0);
    assert_int_equal(gm.nr_regions, 2);
    assert_int_equal(gm.regions[0].gpa, 0);
    assert_int_equal(gm.regions[0].size, 3 * GiB);
    assert_int_equal(gm.regions[1].gpa, X86_4G);
    assert_int_equal(gm.regions[1].size, 2 * GiB);
    /* High RAM follows low RAM in the same mapping. */
    assert_ptr_equal(gm.regions[1].host, gm.regions[0].host + 3 * GiB);
    assert_int_equal(guest_mem_low_end(&gm), 3 * GiB);
    assert_int_equal(guest_mem_high_end(&gm), 6 * GiB);
    /* The hole is not RAM. */
    assert_null(gm_ptr(&gm, 3 * GiB, 1));
    assert_null(gm_ptr(&gm, X86_4G - 1, 1));
    /* A range crossing the hole lies in no single region. */
    assert_null(gm_ptr(&gm, 3 * GiB - 8, 16));
    assert_null(gm_ptr(&gm, X86_4G - 8, 16));
    uint8_t *hi = gm_ptr(&gm, X86_4G, 8);
    assert_non_null(hi);
    memcpy(hi, "high-ram", 8);
    assert_memory_equal(gm.regions[0].host + 3 * GiB, "high-ram", 8);
    assert_non_null(gm_ptr(&gm, 6 * GiB - 1, 1));
    assert_null(gm_ptr(&gm, 6 * GiB - 1, 2));
    assert_null(gm_ptr(&gm, 6 * GiB, 1));
    /* Sparse: creating and touching it made next to nothing resident. */
    assert_true(mapping_rss_kib(gm.regions[0].host) < 64 * 1024);
    guest_mem_destroy(&gm);
}

static void test_gm_ptr_overflowing_ranges(void **state)
{
    (void)state;
    struct guest_mem gm;
    assert_int_equal(pc_mem_create(&gm, 5 * GiB), 0);
    /* gpa + len wraps around to a small, in-range value. */
    assert_null(gm_ptr(&gm, 0x1000, UINT64_MAX));
    assert_null(gm_ptr(&gm, 0x1000, UINT64_MAX - 0xfff + 0x10));
    assert_null(gm_ptr(&gm, UINT64_MAX, 2));
    assert_null(gm_ptr(&gm, UINT64_MAX - 0xf, 0x20));
    assert_null(gm_ptr(&gm, X86_4G + 0x1000, UINT64_MAX - X86_4G));
    assert_null(gm_ptr(&gm, 0, 3 * GiB + 1));
    assert_null(gm_ptr(&gm, 0, UINT64_MAX));
    /* Exactly a whole region, and an empty range at its end. */
    assert_non_null(gm_ptr(&gm, 0, 3 * GiB));
    assert_non_null(gm_ptr(&gm, X86_4G, 2 * GiB));
    assert_ptr_equal(gm_ptr(&gm, 3 * GiB, 0), gm.regions[0].host + 3 * GiB);
    assert_null(gm_ptr(&gm, 3 * GiB + 1, 0));
    /* gm_read/gm_write refuse the same ranges and copy nothing. */
    uint8_t buf[16] = {1};
    assert_false(gm_write(&gm, UINT64_MAX - 7, buf, 16));
    assert_false(gm_read(&gm, 3 * GiB - 8, buf, 16));
    assert_true(gm_write(&gm, 3 * GiB - 16, buf, 16));
    assert_true(gm_read(&gm, 3 * GiB - 16, buf, 16));
    assert_int_equal(buf[0], 1);
    guest_mem_destroy(&gm);
}

static void test_absurd_size_fails_cleanly(void **state)
{
    (void)state;
    struct guest_mem gm;
    log_init(LOG_OFF, -1); /* the failures below are expected */
    /* Larger than any address space: mmap must fail. */
    int rc = pc_mem_create(&gm, 1ull << 62);
    int rc0;
    struct guest_mem gm0;
    rc0 = pc_mem_create(&gm0, 0);
    log_init(LOG_INFO, -1);
    assert_true(rc < 0);
    assert_int_equal(gm.nr_regions, 0);
    assert_true(rc0 < 0);
    assert_int_equal(gm0.nr_regions, 0);
    /*
     * The memfd was closed; its number must not stay in gm, or cleaning up
     * with guest_mem_destroy would close whatever reused that number.
     */
    int other = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(other >= 0);
    guest_mem_destroy(&gm);
    guest_mem_destroy(&gm0);
    assert_true(fcntl(other, F_GETFD) >= 0);
    close(other);
}

/* A machine whose RAM starts at 1 GiB with no hole (arm64's virt board). */
static void test_layout_without_hole(void **state)
{
    (void)state;
    struct arch_mem_layout l = {
        .ram_base = 1 * GiB, .hole_start = UINT64_MAX, .hole_end = UINT64_MAX};
    struct guest_mem gm;
    assert_int_equal(guest_mem_create(&gm, 5 * GiB, &l), 0);
    assert_int_equal(gm.nr_regions, 1);
    assert_int_equal(gm.regions[0].gpa, 1 * GiB);
    assert_int_equal(gm.regions[0].size, 5 * GiB);
    assert_int_equal(guest_mem_end(&gm), 6 * GiB);
    assert_null(gm_ptr(&gm, 0, 1));
    assert_null(gm_ptr(&gm, 1 * GiB - 1, 2));
    assert_non_null(gm_ptr(&gm, 6 * GiB - 8, 8));
    assert_null(gm_ptr(&gm, 6 * GiB - 8, 9));
    guest_mem_destroy(&gm);

    /* RAM that cannot fit above ram_base is refused, not wrapped. */
    struct arch_mem_layout top = {
        .ram_base = UINT64_MAX - 2 * MiB + 1, .hole_start = UINT64_MAX, .hole_end = UINT64_MAX};
    log_init(LOG_OFF, -1);
    int rc = guest_mem_create(&gm, 4 * MiB, &top);
    log_init(LOG_INFO, -1);
    assert_int_equal(rc, -EINVAL);
    assert_int_equal(gm.nr_regions, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_512m_is_one_low_region),
        cmocka_unit_test(test_3g_fills_low_ram_exactly),
        cmocka_unit_test(test_one_page_over_3g_goes_above_4g),
        cmocka_unit_test(test_5g_splits_around_the_hole),
        cmocka_unit_test(test_gm_ptr_overflowing_ranges),
        cmocka_unit_test(test_absurd_size_fails_cleanly),
        cmocka_unit_test(test_layout_without_hole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
