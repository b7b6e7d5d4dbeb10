/*
 * Unit tests of the ACPI tables: layout validation; for several CPU counts
 * the tables placed for direct boot are walked from the RSDP the way an OS
 * does (signatures, revisions, lengths, checksums, pointers, FADT fields,
 * every MADT entry); the fw_cfg table-loader script is checked for form and
 * then executed by a small loader written from the protocol description,
 * which must produce byte-for-byte the tables acpi_place() produces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>

#include "arch/x86/acpi.h"
#include "support/fake_guest_mem.h"

#define TEST_GPA 0xe0000u
#define TEST_ROOM 0x20000u

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Guest memory as a few regions; at() returns NULL for anything outside them. */
struct fake_mem {
    struct {
        uint64_t gpa;
        uint8_t *p;
        size_t len;
    } r[2];
    unsigned n;
};

static const uint8_t *at(const struct fake_mem *m, uint64_t gpa, size_t len)
{
    for (unsigned i = 0; i < m->n; i++)
        if (gpa >= m->r[i].gpa && len <= m->r[i].len && gpa - m->r[i].gpa <= m->r[i].len - len)
            return m->r[i].p + (gpa - m->r[i].gpa);
    return NULL;
}

/* A table with the standard header: in memory, checksummed, of the expected kind. */
static const uint8_t *check_table(const struct fake_mem *m, uint64_t gpa, const char *sig,
                                  uint8_t rev)
{
    const uint8_t *h = at(m, gpa, 36);
    assert_non_null(h);
    assert_memory_equal(h, sig, 4);
    uint32_t len = (uint32_t)le(h + 4, 4);
    assert_true(len >= 36);
    assert_int_equal(h[8], rev);
    const uint8_t *t = at(m, gpa, len);
    assert_non_null(t);
    assert_int_equal(acpi_checksum(t, len), 0);
    assert_memory_equal(t + 10, "KRNKIT", 6);
    return t;
}

static void check_fadt(const uint8_t *f, unsigned ncpus)
{
    assert_int_equal(le(f + 4, 4), 276);
    assert_int_equal(le(f + 46, 2), ACPI_SCI_IRQ);
    assert_int_equal(le(f + 48, 4), 0); /* no SMI_CMD: always in ACPI mode */
    assert_int_equal(le(f + 56, 4), 0x600);
    assert_int_equal(le(f + 64, 4), 0x604);
    assert_int_equal(le(f + 76, 4), 0x608);
    assert_int_equal(le(f + 80, 4), 0xafe0);
    assert_int_equal(f[88], 4);
    assert_int_equal(f[89], 2);
    assert_int_equal(f[91], 4);
    assert_int_equal(f[92], 4);
    assert_int_equal(f[108], 0x32);
    assert_int_equal(le(f + 109, 2), 0x3); /* legacy devices, 8042 */
    uint32_t flags = (uint32_t)le(f + 112, 4);
    assert_int_equal(flags & (1u << 4), 0);              /* PWR_BUTTON clear: fixed feature */
    assert_int_equal(flags & (1u << 8), 0);              /* 24-bit PM timer */
    assert_int_not_equal(flags & (1u << 10), 0);         /* RESET_REG_SUP */
    assert_int_equal(flags & (1u << 20), 0);             /* not hardware-reduced */
    assert_int_equal(!!(flags & (1u << 19)), ncpus > 8); /* physical destination mode */
    /* RESET_REG: system I/O, 8 bits, byte access, port 0xcf9; value 6. */
    assert_memory_equal(f + 116, "\x01\x08\x00\x01", 4);
    assert_int_equal(le(f + 120, 8), 0xcf9);
    assert_int_equal(f[128], 6);
    /* X_ blocks agree with the legacy ones. */
    assert_memory_equal(f + 148, "\x01\x20\x00\x00", 4);
    assert_int_equal(le(f + 152, 8), 0x600);
    assert_memory_equal(f + 172, "\x01\x10\x00\x00", 4);
    assert_int_equal(le(f + 176, 8), 0x604);
    assert_memory_equal(f + 208, "\x01\x20\x00\x00", 4);
    assert_int_equal(le(f + 212, 8), 0x608);
    assert_int_equal(le(f + 224, 8), 0xafe0);
    assert_int_equal(le(f + 132, 8), 0); /* X_FIRMWARE_CTRL unused: the 32-bit one is set */
}

static void check_madt(const uint8_t *t, unsigned ncpus)
{
    uint32_t len = (uint32_t)le(t + 4, 4);
    assert_int_equal(le(t + 36, 4), ACPI_LAPIC_ADDR);
    assert_int_equal(le(t + 40, 4), 1); /* PCAT_COMPAT */
    unsigned next_cpu = 0, ioapics = 0, irq0 = 0, sci = 0, nmi = 0, x2nmi = 0;
    size_t off = 44;
    while (off < len) {
        assert_true(len - off >= 2);
        uint8_t type = t[off], elen = t[off + 1];
        assert_true(elen >= 2 && elen <= len - off);
        const uint8_t *e = t + off;
        switch (type) {
        case 0:
            assert_int_equal(elen, 8);
            assert_true(next_cpu <= 254);
            assert_int_equal(e[2], next_cpu); /* UID */
            assert_int_equal(e[3], next_cpu); /* APIC id */
            assert_int_equal(le(e + 4, 4), 1);
            next_cpu++;
            break;
        case 9:
            assert_int_equal(elen, 16);
            assert_true(next_cpu > 254);
            assert_int_equal(le(e + 4, 4), next_cpu);
            assert_int_equal(le(e + 8, 4), 1);
            assert_int_equal(le(e + 12, 4), next_cpu);
            next_cpu++;
            break;
        case 1:
            assert_int_equal(elen, 12);
            assert_int_equal(e[2], ACPI_IOAPIC_ID);
            assert_int_equal(le(e + 4, 4), ACPI_IOAPIC_ADDR);
            assert_int_equal(le(e + 8, 4), 0);
            ioapics++;
            break;
        case 2:
            assert_int_equal(elen, 10);
            assert_int_equal(e[2], 0);
            if (e[3] == 0) {
                assert_int_equal(le(e + 4, 4), 2);
                assert_int_equal(le(e + 8, 2), 0);
                irq0++;
            } else {
                assert_int_equal(e[3], ACPI_SCI_IRQ);
                assert_int_equal(le(e + 4, 4), ACPI_SCI_IRQ);
                assert_int_equal(le(e + 8, 2), 0xd); /* level, active high */
                sci++;
            }
            break;
        case 4:
            assert_int_equal(elen, 6);
            assert_int_equal(e[2], 0xff);
            assert_int_equal(e[5], 1);
            nmi++;
            break;
        case 10:
            assert_int_equal(elen, 12);
            assert_int_equal(le(e + 4, 4), 0xffffffffu);
            assert_int_equal(e[8], 1);
            x2nmi++;
            break;
        default:
            fail_msg("unexpected MADT entry type %u", type);
        }
        off += elen;
    }
    assert_int_equal(off, len);
    assert_int_equal(next_cpu, ncpus);
    assert_int_equal(ioapics, 1);
    assert_int_equal(irq0, 1);
    assert_int_equal(sci, 1);
    assert_int_equal(nmi, 1);
    assert_int_equal(x2nmi, ncpus > 255 ? 1 : 0);
}

static bool contains(const uint8_t *hay, size_t n, const void *needle, size_t k)
{
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return true;
    return false;
}

static void check_dsdt(const uint8_t *d, unsigned ncpus, bool mmio64)
{
    size_t len = (size_t)le(d + 4, 4);
    assert_true(contains(d, len, "PCI0", 4));
    assert_true(contains(d, len, "_PRT", 4));
    assert_true(contains(d, len, "\x0c\x41\xd0\x0a\x03", 5)); /* EisaId PNP0A03 */
    assert_true(contains(d, len, "\x0c\x41\xd0\x05\x01", 5)); /* EisaId PNP0501 */
    /* Name (\_S5, Package (4) {0, 0, 0, 0}). */
    assert_true(contains(d, len, "\x08\x5c_S5_\x12\x06\x04\x00\x00\x00\x00", 13));
    /* A QWord window only when there is a 64-bit window. */
    assert_int_equal(contains(d, len, "\x8a\x2b\x00", 3), mmio64);
    /* One processor device per CPU, named by its UID. */
    for (unsigned i = 0; i < ncpus; i++) {
        char name[5];
        snprintf(name, sizeof(name), "C%03X", i);
        assert_true(contains(d, len, name, 4));
    }
    char past[5];
    snprintf(past, sizeof(past), "C%03X", ncpus);
    assert_false(contains(d, len, past, 4));
    /* _PRT entries for slots 1..31 match acpi_pci_intx_gsi(): pins 2 and 3 as samples. */
    for (unsigned slot = 1; slot < 32; slot++) {
        for (unsigned pin = 2; pin < 4; pin++) {
            uint8_t e[] = {0x12,
                           0x0c,
                           0x04,
                           0x0c,
                           0xff,
                           0xff,
                           (uint8_t)slot,
                           0x00,
                           0x0a,
                           (uint8_t)pin,
                           0x00,
                           0x0a,
                           (uint8_t)acpi_pci_intx_gsi(slot, pin)};
            assert_true(contains(d, len, e, sizeof(e)));
        }
    }
}

/* Walk the tables from the RSDP as an OS does and check everything on the way. */
static void check_from_rsdp(const struct fake_mem *m, uint64_t rsdp_gpa, unsigned ncpus,
                            bool mmio64)
{
    assert_int_equal(rsdp_gpa % 16, 0);
    const uint8_t *r = at(m, rsdp_gpa, 36);
    assert_non_null(r);
    assert_memory_equal(r, "RSD PTR ", 8);
    assert_int_equal(r[15], 2);
    assert_int_equal(le(r + 16, 4), 0);
    assert_int_equal(le(r + 20, 4), 36);
    assert_int_equal(acpi_checksum(r, 20), 0);
    assert_int_equal(acpi_checksum(r, 36), 0);

    const uint8_t *x = check_table(m, le(r + 24, 8), "XSDT", 1);
    assert_int_equal(le(x + 4, 4), 36 + 2 * 8);
    const uint8_t *f = check_table(m, le(x + 36, 8), "FACP", 6);
    const uint8_t *madt = check_table(m, le(x + 44, 8), "APIC", 3);
    check_fadt(f, ncpus);
    check_madt(madt, ncpus);

    uint64_t facs_gpa = le(f + 36, 4);
    assert_int_equal(facs_gpa % 64, 0);
    const uint8_t *facs = at(m, facs_gpa, 64);
    assert_non_null(facs);
    assert_memory_equal(facs, "FACS", 4);
    assert_int_equal(le(facs + 4, 4), 64);

    assert_int_equal(le(f + 40, 4), le(f + 140, 8)); /* DSDT and X_DSDT agree */
    const uint8_t *d = check_table(m, le(f + 140, 8), "DSDT", 2);
    check_dsdt(d, ncpus, mmio64);
}

static void build_and_place(unsigned ncpus, bool mmio64)
{
    struct acpi_layout l = {.ncpus = ncpus, .pci_hole_start = 0xc0000000u};
    if (mmio64) {
        l.mmio64_base = 0x8000000000ull;
        l.mmio64_size = 0x8000000000ull;
    }
    struct acpi_tables t;
    assert_int_equal(acpi_build(&l, &t), 0);
    size_t need = acpi_placed_size(&t);
    assert_true(need <= TEST_ROOM);
    uint8_t *mem = calloc(1, TEST_ROOM);
    assert_non_null(mem);
    uint64_t rsdp = 0;
    assert_int_equal(acpi_place(&t, mem, TEST_ROOM, TEST_GPA, &rsdp), 0);
    assert_int_equal(rsdp, TEST_GPA);
    struct fake_mem m = {.r = {{TEST_GPA, mem, need}}, .n = 1};
    check_from_rsdp(&m, rsdp, ncpus, mmio64);
    free(mem);
    acpi_tables_free(&t);
}

static void test_place_1cpu(void **state)
{
    (void)state;
    build_and_place(1, false);
}

static void test_place_2cpus_mmio64(void **state)
{
    (void)state;
    build_and_place(2, true);
}

static void test_place_9cpus(void **state)
{
    (void)state;
    build_and_place(9, false);
}

static void test_place_255cpus(void **state)
{
    (void)state;
    build_and_place(255, true);
}

static void test_place_x2apic(void **state)
{
    (void)state;
    build_and_place(256, false);
    build_and_place(300, true);
}

static void test_layout_rejected(void **state)
{
    (void)state;
    static const struct acpi_layout bad[] = {
        {.ncpus = 0, .pci_hole_start = 0xc0000000u},
        {.ncpus = ACPI_MAX_CPUS + 1, .pci_hole_start = 0xc0000000u},
        {.ncpus = 1, .pci_hole_start = 0xfec00000u},
        {.ncpus = 1, .pci_hole_start = 0xc0000000u, .pci_hole_end = 0x100000001ull},
        {.ncpus = 1, .pci_hole_start = 0xc0000000u, .pci_hole_end = 0xb0000000u},
        {.ncpus = 1,
         .pci_hole_start = 0xc0000000u,
         .mmio64_base = 0xffffffff00000000ull,
         .mmio64_size = 0x100000000ull + 1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct acpi_tables t;
        assert_int_equal(acpi_build(&bad[i], &t), -EINVAL);
        for (int j = 0; j < ACPI_TABLE_COUNT; j++)
            assert_null(t.table[j].data);
    }
}

static void test_place_rejected(void **state)
{
    (void)state;
    struct acpi_layout l = {.ncpus = 4, .pci_hole_start = 0xc0000000u};
    struct acpi_tables t;
    assert_int_equal(acpi_build(&l, &t), 0);
    size_t need = acpi_placed_size(&t);
    uint8_t *mem = calloc(1, need);
    assert_non_null(mem);
    uint64_t rsdp = 0;
    assert_int_equal(acpi_place(&t, mem, need - 1, TEST_GPA, &rsdp), -ENOSPC);
    assert_int_equal(acpi_place(&t, mem, need, TEST_GPA + 16, &rsdp), -EINVAL);
    /* 4-byte pointers (FIRMWARE_CTRL, DSDT) cannot reach above 4 GiB. */
    assert_int_equal(acpi_place(&t, mem, need, 0x100000000ull - 64, &rsdp), -ENOSPC);
    assert_int_equal(acpi_place(&t, mem, need, TEST_GPA, &rsdp), 0);
    free(mem);
    acpi_tables_free(&t);
}

static void test_intx_routing(void **state)
{
    (void)state;
    for (unsigned slot = 0; slot < 32; slot++) {
        unsigned seen = 0;
        for (unsigned pin = 0; pin < 4; pin++) {
            unsigned gsi = acpi_pci_intx_gsi(slot, pin);
            assert_true(gsi >= 16 && gsi < ACPI_IOAPIC_PINS);
            seen |= 1u << (gsi - 16);
        }
        assert_int_equal(__builtin_popcount(seen), 4); /* a slot's pins do not share */
    }
}

static void test_install_in_guest_mem(void **state)
{
    (void)state;
    struct guest_mem gm;
    assert_int_equal(fake_guest_mem_init(&gm, 0, 0x100000), 0);
    struct acpi_layout l = {.ncpus = 2, .pci_hole_start = 0xc0000000u};
    uint64_t rsdp = 0;
    assert_int_equal(acpi_install(&l, &gm, 0xe0000, 0x20000, &rsdp), 0);
    assert_int_equal(rsdp, 0xe0000);
    struct fake_mem m = {.r = {{0xe0000, gm_ptr(&gm, 0xe0000, 0x20000), 0x20000}}, .n = 1};
    check_from_rsdp(&m, rsdp, 2, false);
    /* Too little room, or not in guest RAM at all. */
    assert_int_equal(acpi_install(&l, &gm, 0xe0000, 256, &rsdp), -ENOSPC);
    assert_int_equal(acpi_install(&l, &gm, 0xfffc0, 0x20000, &rsdp), -ENOSPC);
    l.ncpus = 0;
    assert_int_equal(acpi_install(&l, &gm, 0xe0000, 0x20000, &rsdp), -EINVAL);
    fake_guest_mem_free(&gm);
}

/* ---- fw_cfg table-loader ---- */

struct loader_file {
    const char *name;
    uint8_t *data;
    size_t len;
    uint64_t base; /* where the "firmware" put it; 0 until allocated */
};

static struct loader_file *find_file(struct loader_file *files, unsigned n, const uint8_t *name)
{
    assert_non_null(memchr(name, '\0', ACPI_LOADER_FNAME_SIZE)); /* NUL inside the field */
    for (unsigned i = 0; i < n; i++)
        if (strcmp(files[i].name, (const char *)name) == 0)
            return &files[i];
    fail_msg("loader names unknown file '%s'", (const char *)name);
    return NULL;
}

/*
 * Execute the script against copies of the files, the way the protocol says
 * a firmware does; bases[] are the addresses the allocations get.
 */
static void run_loader(const struct acpi_fwcfg *fw, struct loader_file files[2],
                       const uint64_t bases[2], unsigned *npointers)
{
    const struct acpi_blob *src[2] = {&fw->rsdp, &fw->tables};
    static const char *const names[2] = {ACPI_FWCFG_RSDP, ACPI_FWCFG_TABLES};
    for (int i = 0; i < 2; i++) {
        files[i].name = names[i];
        files[i].len = src[i]->len;
        files[i].data = malloc(src[i]->len);
        assert_non_null(files[i].data);
        memcpy(files[i].data, src[i]->data, src[i]->len);
        files[i].base = 0;
    }
    assert_int_equal(fw->loader.len % ACPI_LOADER_ENTRY_SIZE, 0);
    *npointers = 0;
    for (size_t off = 0; off < fw->loader.len; off += ACPI_LOADER_ENTRY_SIZE) {
        const uint8_t *e = fw->loader.data + off;
        const uint8_t *c = e + 4;
        switch (le(e, 4)) {
        case ACPI_LOADER_ALLOCATE: {
            struct loader_file *f = find_file(files, 2, c);
            assert_int_equal(f->base, 0);
            uint32_t align = (uint32_t)le(c + 56, 4);
            uint8_t zone = c[60];
            if (f == &files[0]) {
                assert_int_equal(zone, ACPI_LOADER_ZONE_FSEG);
                assert_int_equal(align, 16);
            } else {
                assert_int_equal(zone, ACPI_LOADER_ZONE_HIGH);
                assert_int_equal(align, 64);
            }
            f->base = bases[f - files];
            assert_int_equal(f->base % align, 0);
            break;
        }
        case ACPI_LOADER_ADD_POINTER: {
            struct loader_file *ptr = find_file(files, 2, c);
            struct loader_file *pointee = find_file(files, 2, c + 56);
            assert_int_not_equal(ptr->base, 0);
            assert_int_not_equal(pointee->base, 0);
            uint32_t offset = (uint32_t)le(c + 112, 4);
            uint8_t size = c[116];
            assert_true(size == 1 || size == 2 || size == 4 || size == 8);
            assert_true(offset + size <= ptr->len);
            uint64_t v = le(ptr->data + offset, size);
            assert_true(v < pointee->len); /* an offset into the pointee */
            v += pointee->base;
            if (size < 8)
                assert_int_equal(v >> (8 * size), 0);
            for (unsigned i = 0; i < size; i++)
                ptr->data[offset + i] = (uint8_t)(v >> (8 * i));
            (*npointers)++;
            break;
        }
        case ACPI_LOADER_ADD_CHECKSUM: {
            struct loader_file *f = find_file(files, 2, c);
            uint32_t result = (uint32_t)le(c + 56, 4);
            uint32_t start = (uint32_t)le(c + 60, 4);
            uint32_t len = (uint32_t)le(c + 64, 4);
            assert_true(result < f->len && start <= f->len && len <= f->len - start);
            assert_true(result >= start && result < start + len);
            /* The byte must be 0 beforehand: the sum includes it. */
            assert_int_equal(f->data[result], 0);
            f->data[result] = (uint8_t)-acpi_checksum(f->data + start, len);
            break;
        }
        default:
            fail_msg("unexpected loader command %u", (unsigned)le(e, 4));
        }
    }
}

static void fwcfg_matches_place(unsigned ncpus, bool mmio64)
{
    struct acpi_layout l = {.ncpus = ncpus, .pci_hole_start = 0x80000000u};
    if (mmio64) {
        l.mmio64_base = 0x10000000000ull;
        l.mmio64_size = 0x4000000000ull;
    }
    struct acpi_tables t;
    assert_int_equal(acpi_build(&l, &t), 0);
    struct acpi_fwcfg fw;
    assert_int_equal(acpi_build_fwcfg(&t, &fw), 0);
    assert_int_equal(fw.rsdp.len, 36);
    assert_memory_equal(fw.rsdp.data, "RSD PTR ", 8);
    assert_int_equal(fw.loader.len, 14 * ACPI_LOADER_ENTRY_SIZE);

    /* The tables placed for direct boot at TEST_GPA: RSDP there, the rest from +64. */
    size_t need = acpi_placed_size(&t);
    uint8_t *placed = calloc(1, need);
    assert_non_null(placed);
    uint64_t rsdp = 0;
    assert_int_equal(acpi_place(&t, placed, need, TEST_GPA, &rsdp), 0);

    /* A firmware that happens to allocate at the same addresses ends with the same bytes. */
    struct loader_file files[2];
    const uint64_t bases[2] = {TEST_GPA, TEST_GPA + 64};
    unsigned npointers = 0;
    run_loader(&fw, files, bases, &npointers);
    assert_int_equal(npointers, 6);
    assert_int_equal(files[1].len, need - 64);
    assert_memory_equal(files[0].data, placed, 36);
    assert_memory_equal(files[1].data, placed + 64, files[1].len);
    free(files[0].data);
    free(files[1].data);

    /* And at unrelated addresses (RSDP in the F segment, tables high) it is still valid. */
    const uint64_t bases2[2] = {0xf5a30, 0x7ffd0000};
    run_loader(&fw, files, bases2, &npointers);
    struct fake_mem m = {
        .r = {{bases2[0], files[0].data, files[0].len}, {bases2[1], files[1].data, files[1].len}},
        .n = 2,
    };
    check_from_rsdp(&m, bases2[0], ncpus, mmio64);
    free(files[0].data);
    free(files[1].data);

    free(placed);
    acpi_fwcfg_free(&fw);
    acpi_tables_free(&t);
}

static void test_fwcfg_1cpu(void **state)
{
    (void)state;
    fwcfg_matches_place(1, false);
}

static void test_fwcfg_many_cpus(void **state)
{
    (void)state;
    fwcfg_matches_place(64, true);
    fwcfg_matches_place(288, false);
}

static void test_fwcfg_script_order(void **state)
{
    (void)state;
    struct acpi_layout l = {.ncpus = 2, .pci_hole_start = 0x80000000u};
    struct acpi_tables t;
    assert_int_equal(acpi_build(&l, &t), 0);
    struct acpi_fwcfg fw;
    assert_int_equal(acpi_build_fwcfg(&t, &fw), 0);
    /* Both allocations come first, the RSDP's extended checksum last. */
    const uint8_t *e = fw.loader.data;
    size_t n = fw.loader.len / ACPI_LOADER_ENTRY_SIZE;
    assert_int_equal(le(e, 4), ACPI_LOADER_ALLOCATE);
    assert_int_equal(le(e + ACPI_LOADER_ENTRY_SIZE, 4), ACPI_LOADER_ALLOCATE);
    for (size_t i = 2; i < n; i++)
        assert_int_not_equal(le(e + i * ACPI_LOADER_ENTRY_SIZE, 4), ACPI_LOADER_ALLOCATE);
    const uint8_t *last = e + (n - 1) * ACPI_LOADER_ENTRY_SIZE;
    assert_int_equal(le(last, 4), ACPI_LOADER_ADD_CHECKSUM);
    assert_string_equal((const char *)last + 4, ACPI_FWCFG_RSDP);
    assert_int_equal(le(last + 4 + 56, 4), 32);
    assert_int_equal(le(last + 4 + 64, 4), 36);
    /* Every byte past a command's fields is zero padding. */
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = e + i * ACPI_LOADER_ENTRY_SIZE;
        for (size_t b = 4 + 117; b < ACPI_LOADER_ENTRY_SIZE; b++)
            assert_int_equal(c[b], 0);
    }
    acpi_fwcfg_free(&fw);
    acpi_tables_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_place_1cpu),           cmocka_unit_test(test_place_2cpus_mmio64),
        cmocka_unit_test(test_place_9cpus),          cmocka_unit_test(test_place_255cpus),
        cmocka_unit_test(test_place_x2apic),         cmocka_unit_test(test_layout_rejected),
        cmocka_unit_test(test_place_rejected),       cmocka_unit_test(test_intx_routing),
        cmocka_unit_test(test_install_in_guest_mem), cmocka_unit_test(test_fwcfg_1cpu),
        cmocka_unit_test(test_fwcfg_many_cpus),      cmocka_unit_test(test_fwcfg_script_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
