/*
 * Writes the ACPI tables we generate, linked as for a direct Linux boot at
 * 0xE0000, one file per table (rsdp.dat, facs.dat, dsdt.dat, facp.dat,
 * apic.dat, xsdt.dat), so `iasl -d` can decode them; the RSDP, which iasl
 * does not decode on its own, is checked here.
 *
 * With --fwcfg it writes the fw_cfg files instead (etc-acpi-rsdp.dat,
 * etc-acpi-tables.dat, etc-table-loader.dat), e.g. to hand our tables to
 * stock firmware under QEMU (-machine acpi=off -fw_cfg name=etc/...,file=...).
 *
 * usage: acpi_gen [--fwcfg] OUTDIR NCPUS [MMIO64_BASE MMIO64_SIZE]
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/acpi.h"

#define GEN_GPA 0xe0000u
#define GEN_ROOM 0x20000u

static const char *const gen_names[ACPI_TABLE_COUNT] = {
    [ACPI_TABLE_FACS] = "facs", [ACPI_TABLE_DSDT] = "dsdt", [ACPI_TABLE_FADT] = "facp",
    [ACPI_TABLE_MADT] = "apic", [ACPI_TABLE_XSDT] = "xsdt", [ACPI_TABLE_RSDP] = "rsdp",
};

static int write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "acpi_gen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t w = fwrite(p, 1, n, f);
    if (fclose(f) != 0 || w != n) {
        fprintf(stderr, "acpi_gen: writing %s failed\n", path);
        return -1;
    }
    return 0;
}

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int write_fwcfg(const char *dir, const struct acpi_tables *t)
{
    struct acpi_fwcfg fw;
    if (acpi_build_fwcfg(t, &fw) < 0)
        return 1;
    int rc = 0;
    if (write_file(dir, "etc-acpi-rsdp", fw.rsdp.data, fw.rsdp.len) < 0 ||
        write_file(dir, "etc-acpi-tables", fw.tables.data, fw.tables.len) < 0 ||
        write_file(dir, "etc-table-loader", fw.loader.data, fw.loader.len) < 0)
        rc = 1;
    acpi_fwcfg_free(&fw);
    return rc;
}

int main(int argc, char **argv)
{
    bool fwcfg = argc > 1 && strcmp(argv[1], "--fwcfg") == 0;
    if (fwcfg) {
        argc--;
        argv++;
    }
    if (argc != 3 && argc != 5) {
        fprintf(stderr, "usage: acpi_gen [--fwcfg] OUTDIR NCPUS [MMIO64_BASE MMIO64_SIZE]\n");
        return 2;
    }
    struct acpi_layout l = {
        .ncpus = (unsigned)strtoul(argv[2], NULL, 0),
        .pci_hole_start = 0x80000000u,
    };
    if (argc == 5) {
        l.mmio64_base = strtoull(argv[3], NULL, 0);
        l.mmio64_size = strtoull(argv[4], NULL, 0);
    }
    struct acpi_tables t;
    if (acpi_build(&l, &t) < 0)
        return 1;
    if (fwcfg) {
        int rc = write_fwcfg(argv[1], &t);
        acpi_tables_free(&t);
        return rc;
    }
    static uint8_t mem[GEN_ROOM];
    uint64_t rsdp;
    if (acpi_place(&t, mem, sizeof(mem), GEN_GPA, &rsdp) < 0)
        return 1;

    /* Find each table through the pointers, as an OS would. */
    const uint8_t *r = mem + (rsdp - GEN_GPA);
    const uint8_t *xsdt = mem + (le(r + 24, 8) - GEN_GPA);
    const uint8_t *fadt = mem + (le(xsdt + 36, 8) - GEN_GPA);
    const uint8_t *madt = mem + (le(xsdt + 44, 8) - GEN_GPA);
    const uint8_t *dsdt = mem + (le(fadt + 140, 8) - GEN_GPA);
    const uint8_t *facs = mem + (le(fadt + 36, 4) - GEN_GPA);
    const uint8_t *found[ACPI_TABLE_COUNT] = {
        [ACPI_TABLE_FACS] = facs, [ACPI_TABLE_DSDT] = dsdt, [ACPI_TABLE_FADT] = fadt,
        [ACPI_TABLE_MADT] = madt, [ACPI_TABLE_XSDT] = xsdt, [ACPI_TABLE_RSDP] = r,
    };
    /* iasl cannot decode a bare RSDP: check it here. */
    int rc = 0;
    if (memcmp(r, "RSD PTR ", 8) != 0 || r[15] != 2 || le(r + 20, 4) != 36 ||
        acpi_checksum(r, 20) != 0 || acpi_checksum(r, 36) != 0) {
        fprintf(stderr, "acpi_gen: bad RSDP\n");
        rc = 1;
    }
    for (int i = 0; i < ACPI_TABLE_COUNT; i++) {
        size_t len = i == ACPI_TABLE_RSDP ? 36 : (size_t)le(found[i] + 4, 4);
        if (found[i] < mem || found[i] + len > mem + sizeof(mem) ||
            write_file(argv[1], gen_names[i], found[i], len) < 0)
            rc = 1;
    }
    acpi_tables_free(&t);
    return rc;
}
