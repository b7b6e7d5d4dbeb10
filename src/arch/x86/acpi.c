/*
 * ACPI tables for the i440FX/PIIX4-style PC (ACPI 6.4): RSDP (5.2.5),
 * XSDT (5.2.8), FADT revision 6 (5.2.9), FACS (5.2.10), DSDT (5.2.11.1)
 * and MADT (5.2.12), plus the two ways of handing them to the guest:
 * linked in place for direct Linux boot, or as fw_cfg files with a
 * table-loader script in the format of QEMU's bios-linker-loader
 * (ALLOCATE / ADD_POINTER / ADD_CHECKSUM, 128-byte commands) for OVMF.
 *
 * Tables are built unlinked, and one list (acpi_links) says which field of
 * which table points at which other table; both hand-over paths walk it, so
 * they cannot disagree.
 */
#include "arch/x86/acpi.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/aml.h"
#include "core/log.h"

#define ACPI_OEM_ID "KRNKIT"
#define ACPI_OEM_TABLE_ID "KRUNKIT "
#define ACPI_OEM_REVISION 1
#define ACPI_CREATOR_ID "KRNK"
#define ACPI_CREATOR_REVISION 1

#define ACPI_HEADER_LEN 36
#define ACPI_HEADER_CHECKSUM 9
#define ACPI_RSDP_LEN 36
#define ACPI_RSDP_V1_LEN 20
#define ACPI_RSDP_CHECKSUM 8
#define ACPI_RSDP_EXT_CHECKSUM 32
#define ACPI_RSDP_XSDT_ADDR 24
#define ACPI_FACS_LEN 64
#define ACPI_FADT_LEN 276
#define ACPI_FADT_REVISION 6

/* FADT field offsets (Table 5.9). */
#define FADT_FIRMWARE_CTRL 36
#define FADT_DSDT 40
#define FADT_SCI_INT 46
#define FADT_PM1A_EVT_BLK 56
#define FADT_PM1A_CNT_BLK 64
#define FADT_PM_TMR_BLK 76
#define FADT_GPE0_BLK 80
#define FADT_PM1_EVT_LEN 88
#define FADT_PM1_CNT_LEN 89
#define FADT_PM_TMR_LEN 91
#define FADT_GPE0_BLK_LEN 92
#define FADT_P_LVL2_LAT 96
#define FADT_P_LVL3_LAT 98
#define FADT_CENTURY 108
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS 112
#define FADT_RESET_REG 116
#define FADT_RESET_VALUE 128
#define FADT_MINOR_VERSION 131
#define FADT_X_DSDT 140
#define FADT_X_PM1A_EVT_BLK 148
#define FADT_X_PM1A_CNT_BLK 172
#define FADT_X_PM_TMR_BLK 208
#define FADT_X_GPE0_BLK 220

/* FADT fixed feature flags (Table 5.10). */
#define FADT_F_WBINVD (1u << 0)
#define FADT_F_PROC_C1 (1u << 2)
#define FADT_F_SLP_BUTTON (1u << 5) /* set: no fixed-feature sleep button */
#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_F_USE_PLATFORM_CLOCK (1u << 15)
#define FADT_F_FORCE_APIC_PHYS_DEST (1u << 19)
/* IA-PC boot architecture flags (Table 5.11). */
#define FADT_BOOT_LEGACY_DEVICES (1u << 0)
#define FADT_BOOT_8042 (1u << 1)

/* Generic Address Structure (5.2.3.2). */
#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1

/* MADT (5.2.12) structures. */
#define MADT_PCAT_COMPAT 1u
#define MADT_LAPIC 0
#define MADT_IOAPIC 1
#define MADT_ISO 2
#define MADT_LAPIC_NMI 4
#define MADT_X2APIC 9
#define MADT_X2APIC_NMI 10
#define MADT_ENABLED 1u
#define MADT_ALL_PROCESSORS_UID8 0xff
#define MADT_ALL_PROCESSORS_UID32 0xffffffffu
/* MPS INTI flags: polarity bits 0-1, trigger mode bits 2-3. */
#define MPS_INTI_ACTIVE_HIGH 0x1
#define MPS_INTI_LEVEL 0xc
#define XAPIC_MAX_ID 254 /* 0xff is the broadcast id */

#define ACPI_PCI_HOLE_DEFAULT_END 0xfec00000ull
#define ACPI_4G 0x100000000ull

/* A pointer field in one table that holds the address of another. */
struct acpi_link {
    enum acpi_table_id from;
    uint32_t offset;
    uint8_t size;
    enum acpi_table_id to;
};

/* The XSDT entries are links too; FADT and MADT are entries 0 and 1. */
static const struct acpi_link acpi_links[] = {
    {ACPI_TABLE_FADT, FADT_FIRMWARE_CTRL, 4, ACPI_TABLE_FACS},
    {ACPI_TABLE_FADT, FADT_DSDT, 4, ACPI_TABLE_DSDT},
    {ACPI_TABLE_FADT, FADT_X_DSDT, 8, ACPI_TABLE_DSDT},
    {ACPI_TABLE_XSDT, ACPI_HEADER_LEN + 0, 8, ACPI_TABLE_FADT},
    {ACPI_TABLE_XSDT, ACPI_HEADER_LEN + 8, 8, ACPI_TABLE_MADT},
    {ACPI_TABLE_RSDP, ACPI_RSDP_XSDT_ADDR, 8, ACPI_TABLE_XSDT},
};
#define ACPI_XSDT_ENTRIES 2

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint8_t acpi_checksum(const uint8_t *p, size_t n)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum = (uint8_t)(sum + p[i]);
    return sum;
}

static void acpi_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
    memcpy(t, sig, 4);
    put32(t + 4, len);
    t[8] = rev;
    t[ACPI_HEADER_CHECKSUM] = 0;
    memcpy(t + 10, ACPI_OEM_ID, 6);
    memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
    put32(t + 24, ACPI_OEM_REVISION);
    memcpy(t + 28, ACPI_CREATOR_ID, 4);
    put32(t + 32, ACPI_CREATOR_REVISION);
}

static void acpi_gas_io(uint8_t *p, uint8_t bit_width, uint8_t access, uint16_t port)
{
    p[0] = GAS_SYSTEM_IO;
    p[1] = bit_width;
    p[2] = 0; /* bit offset */
    p[3] = access;
    put_le(p + 4, port, 8);
}

static int acpi_blob_alloc(struct acpi_blob *b, size_t len)
{
    b->data = calloc(1, len);
    if (!b->data)
        return -ENOMEM;
    b->len = len;
    return 0;
}

static int acpi_build_rsdp(struct acpi_blob *b)
{
    int rc = acpi_blob_alloc(b, ACPI_RSDP_LEN);
    if (rc)
        return rc;
    memcpy(b->data, "RSD PTR ", 8);
    memcpy(b->data + 9, ACPI_OEM_ID, 6);
    b->data[15] = 2;        /* ACPI 2.0+: XSDT address and extended checksum valid */
    put32(b->data + 16, 0); /* no RSDT */
    put32(b->data + 20, ACPI_RSDP_LEN);
    return 0;
}

static int acpi_build_xsdt(struct acpi_blob *b)
{
    uint32_t len = ACPI_HEADER_LEN + 8 * ACPI_XSDT_ENTRIES;
    int rc = acpi_blob_alloc(b, len);
    if (rc)
        return rc;
    acpi_header(b->data, "XSDT", len, 1);
    return 0;
}

static int acpi_build_facs(struct acpi_blob *b)
{
    int rc = acpi_blob_alloc(b, ACPI_FACS_LEN);
    if (rc)
        return rc;
    memcpy(b->data, "FACS", 4);
    put32(b->data + 4, ACPI_FACS_LEN);
    b->data[32] = 2; /* version */
    return 0;
}

static int acpi_build_fadt(const struct acpi_layout *l, struct acpi_blob *b)
{
    int rc = acpi_blob_alloc(b, ACPI_FADT_LEN);
    if (rc)
        return rc;
    uint8_t *t = b->data;
    acpi_header(t, "FACP", ACPI_FADT_LEN, ACPI_FADT_REVISION);
    put16(t + FADT_SCI_INT, ACPI_SCI_IRQ);
    /* SMI_CMD, ACPI_ENABLE, ACPI_DISABLE stay 0: the machine is always in ACPI mode. */
    put32(t + FADT_PM1A_EVT_BLK, ACPI_PM1A_EVT_BLK);
    put32(t + FADT_PM1A_CNT_BLK, ACPI_PM1A_CNT_BLK);
    put32(t + FADT_PM_TMR_BLK, ACPI_PM_TMR_BLK);
    put32(t + FADT_GPE0_BLK, ACPI_GPE0_BLK);
    t[FADT_PM1_EVT_LEN] = ACPI_PM1_EVT_LEN;
    t[FADT_PM1_CNT_LEN] = ACPI_PM1_CNT_LEN;
    t[FADT_PM_TMR_LEN] = ACPI_PM_TMR_LEN;
    t[FADT_GPE0_BLK_LEN] = ACPI_GPE0_BLK_LEN;
    /* Latencies above 100 / 1000 us say C2 / C3 are not supported. */
    put16(t + FADT_P_LVL2_LAT, 0x0fff);
    put16(t + FADT_P_LVL3_LAT, 0x0fff);
    t[FADT_CENTURY] = ACPI_CMOS_CENTURY;
    put16(t + FADT_IAPC_BOOT_ARCH, FADT_BOOT_LEGACY_DEVICES | FADT_BOOT_8042);

    /*
     * PWR_BUTTON stays clear: the power button is the fixed feature
     * (PM1_STS.PWRBTN_STS + SCI) that a graceful stop presses.
     */
    uint32_t flags = FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_SLP_BUTTON | FADT_F_RESET_REG_SUP |
                     FADT_F_USE_PLATFORM_CLOCK;
    /* xAPIC logical flat mode addresses at most 8 CPUs. */
    if (l->ncpus > 8)
        flags |= FADT_F_FORCE_APIC_PHYS_DEST;
    put32(t + FADT_FLAGS, flags);

    acpi_gas_io(t + FADT_RESET_REG, 8, GAS_ACCESS_BYTE, ACPI_RESET_PORT);
    t[FADT_RESET_VALUE] = ACPI_RESET_VALUE;
    t[FADT_MINOR_VERSION] = 0;

    acpi_gas_io(t + FADT_X_PM1A_EVT_BLK, ACPI_PM1_EVT_LEN * 8, 0, ACPI_PM1A_EVT_BLK);
    acpi_gas_io(t + FADT_X_PM1A_CNT_BLK, ACPI_PM1_CNT_LEN * 8, 0, ACPI_PM1A_CNT_BLK);
    acpi_gas_io(t + FADT_X_PM_TMR_BLK, ACPI_PM_TMR_LEN * 8, 0, ACPI_PM_TMR_BLK);
    acpi_gas_io(t + FADT_X_GPE0_BLK, ACPI_GPE0_BLK_LEN * 8, 0, ACPI_GPE0_BLK);
    return 0;
}

static size_t acpi_madt_len(unsigned ncpus)
{
    size_t len = ACPI_HEADER_LEN + 8;
    for (unsigned id = 0; id < ncpus; id++)
        len += id <= XAPIC_MAX_ID ? 8 : 16;
    len += 12;     /* IOAPIC */
    len += 2 * 10; /* interrupt source overrides */
    len += 6;      /* LAPIC NMI */
    if (ncpus > XAPIC_MAX_ID + 1)
        len += 12; /* x2APIC NMI */
    return len;
}

static uint8_t *madt_iso(uint8_t *p, uint8_t irq, uint32_t gsi, uint16_t flags)
{
    p[0] = MADT_ISO;
    p[1] = 10;
    p[2] = 0; /* ISA */
    p[3] = irq;
    put32(p + 4, gsi);
    put16(p + 8, flags);
    return p + 10;
}

static int acpi_build_madt(const struct acpi_layout *l, struct acpi_blob *b)
{
    size_t len = acpi_madt_len(l->ncpus);
    int rc = acpi_blob_alloc(b, len);
    if (rc)
        return rc;
    uint8_t *t = b->data;
    acpi_header(t, "APIC", (uint32_t)len, 3);
    put32(t + 36, ACPI_LAPIC_ADDR);
    put32(t + 40, MADT_PCAT_COMPAT); /* the 8259s are there (KVM's irqchip) */
    uint8_t *p = t + 44;

    for (unsigned id = 0; id < l->ncpus; id++) {
        if (id <= XAPIC_MAX_ID) {
            p[0] = MADT_LAPIC;
            p[1] = 8;
            p[2] = (uint8_t)id; /* ACPI processor UID, as the DSDT's _UID */
            p[3] = (uint8_t)id; /* APIC id */
            put32(p + 4, MADT_ENABLED);
            p += 8;
        } else {
            p[0] = MADT_X2APIC;
            p[1] = 16;
            put16(p + 2, 0);
            put32(p + 4, id);
            put32(p + 8, MADT_ENABLED);
            put32(p + 12, id);
            p += 16;
        }
    }

    p[0] = MADT_IOAPIC;
    p[1] = 12;
    p[2] = ACPI_IOAPIC_ID;
    p[3] = 0;
    put32(p + 4, ACPI_IOAPIC_ADDR);
    put32(p + 8, 0); /* GSI base */
    p += 12;

    /* The PIT's IRQ0 is wired to IOAPIC pin 2, as on real PCs and in KVM. */
    p = madt_iso(p, 0, 2, 0);
    p = madt_iso(p, ACPI_SCI_IRQ, ACPI_SCI_IRQ, MPS_INTI_ACTIVE_HIGH | MPS_INTI_LEVEL);

    p[0] = MADT_LAPIC_NMI;
    p[1] = 6;
    p[2] = MADT_ALL_PROCESSORS_UID8;
    put16(p + 3, 0);
    p[5] = 1; /* LINT1 */
    p += 6;

    if (l->ncpus > XAPIC_MAX_ID + 1) {
        p[0] = MADT_X2APIC_NMI;
        p[1] = 12;
        put16(p + 2, 0);
        put32(p + 4, MADT_ALL_PROCESSORS_UID32);
        p[8] = 1; /* LINT1 */
        memset(p + 9, 0, 3);
        p += 12;
    }
    return (size_t)(p - t) == len ? 0 : -EFAULT;
}

static void dsdt_isa_devices(struct aml *a)
{
    /* The PIIX3 ISA bridge is function 0 of slot 1. */
    struct aml_mark isa = aml_device_begin(a, "ISA");
    aml_name_decl(a, "_ADR");
    aml_integer(a, 0x00010000);

    struct aml_mark dev = aml_device_begin(a, "KBD");
    aml_name_decl(a, "_HID");
    aml_eisaid(a, "PNP0303");
    aml_name_decl(a, "_CRS");
    struct aml_mark res = aml_restemplate_begin(a);
    aml_res_io(a, 0x60, 0x60, 0x01, 0x01);
    aml_res_io(a, 0x64, 0x64, 0x01, 0x01);
    aml_res_irq_noflags(a, 1u << 1);
    aml_restemplate_end(a, res);
    aml_end(a, dev);

    dev = aml_device_begin(a, "COM1");
    aml_name_decl(a, "_HID");
    aml_eisaid(a, "PNP0501");
    aml_name_decl(a, "_UID");
    aml_integer(a, 1);
    struct aml_mark sta = aml_method_begin(a, "_STA", 0, false);
    aml_return(a);
    aml_integer(a, 0x0f); /* present, enabled, shown, functioning */
    aml_end(a, sta);
    aml_name_decl(a, "_CRS");
    res = aml_restemplate_begin(a);
    aml_res_io(a, 0x3f8, 0x3f8, 0x00, 0x08);
    aml_res_irq_noflags(a, 1u << 4);
    aml_restemplate_end(a, res);
    aml_end(a, dev);

    dev = aml_device_begin(a, "RTC");
    aml_name_decl(a, "_HID");
    aml_eisaid(a, "PNP0B00");
    aml_name_decl(a, "_CRS");
    res = aml_restemplate_begin(a);
    aml_res_io(a, 0x70, 0x70, 0x10, 0x02);
    aml_res_irq_noflags(a, 1u << 8);
    aml_restemplate_end(a, res);
    aml_end(a, dev);

    aml_end(a, isa);
}

static void dsdt_pci_crs(struct aml *a, const struct acpi_layout *l, uint64_t hole_end)
{
    aml_name_decl(a, "_CRS");
    struct aml_mark res = aml_restemplate_begin(a);
    aml_res_word(a, AML_ADDR_BUS, 0, 0x00, 0xff);
    aml_res_io(a, 0xcf8, 0xcf8, 0x01, 0x08); /* configuration mechanism #1 */
    aml_res_word(a, AML_ADDR_IO, AML_IO_ENTIRE_RANGE, 0x0000, 0x0cf7);
    aml_res_word(a, AML_ADDR_IO, AML_IO_ENTIRE_RANGE, 0x0d00, 0xffff);
    /* Legacy VGA window, forwarded to PCI as on every PC host bridge. */
    aml_res_dword(a, AML_ADDR_MEMORY, AML_MEM_READWRITE | AML_MEM_CACHEABLE, 0x000a0000,
                  0x000bffff);
    aml_res_dword(a, AML_ADDR_MEMORY, AML_MEM_READWRITE, (uint32_t)l->pci_hole_start,
                  (uint32_t)(hole_end - 1));
    if (l->mmio64_size)
        aml_res_qword(a, AML_ADDR_MEMORY, AML_MEM_READWRITE | AML_MEM_CACHEABLE, l->mmio64_base,
                      l->mmio64_base + l->mmio64_size - 1);
    aml_restemplate_end(a, res);
}

static void dsdt_pci_prt(struct aml *a)
{
    /* Slot 0 is the host bridge, which raises no interrupts. */
    aml_name_decl(a, "_PRT");
    struct aml_mark prt = aml_package_begin(a, 31 * 4);
    for (unsigned slot = 1; slot < 32; slot++) {
        for (unsigned pin = 0; pin < 4; pin++) {
            struct aml_mark e = aml_package_begin(a, 4);
            aml_integer(a, ((uint64_t)slot << 16) | 0xffff); /* any function */
            aml_integer(a, pin);
            aml_integer(a, 0); /* no link device: the last element is a GSI */
            aml_integer(a, acpi_pci_intx_gsi(slot, pin));
            aml_end(a, e);
        }
    }
    aml_end(a, prt);
}

static int acpi_build_dsdt(const struct acpi_layout *l, uint64_t hole_end, struct acpi_blob *b)
{
    struct aml a;
    aml_init(&a);
    uint8_t header[ACPI_HEADER_LEN] = {0};
    aml_raw(&a, header, sizeof(header));

    struct aml_mark sb = aml_scope_begin(&a, "\\_SB");

    struct aml_mark pci = aml_device_begin(&a, "PCI0");
    aml_name_decl(&a, "_HID");
    aml_eisaid(&a, "PNP0A03");
    /* No _ADR: a device has a _HID or an _ADR, not both (6.1). */
    aml_name_decl(&a, "_UID");
    aml_integer(&a, 0);
    aml_name_decl(&a, "_BBN");
    aml_integer(&a, 0);
    dsdt_pci_crs(&a, l, hole_end);
    dsdt_pci_prt(&a);
    dsdt_isa_devices(&a);
    aml_end(&a, pci);

    /* Processor devices; _UID matches the MADT's processor UID (the APIC id). */
    for (unsigned id = 0; id < l->ncpus; id++) {
        char name[8];
        snprintf(name, sizeof(name), "C%03X", id & 0xfff);
        struct aml_mark cpu = aml_device_begin(&a, name);
        aml_name_decl(&a, "_HID");
        aml_string(&a, "ACPI0007");
        aml_name_decl(&a, "_UID");
        aml_integer(&a, id);
        aml_end(&a, cpu);
    }
    aml_end(&a, sb);

    /* \_S5: SLP_TYP for PM1a and PM1b, then two reserved values. */
    aml_name_decl(&a, "\\_S5");
    struct aml_mark s5 = aml_package_begin(&a, 4);
    aml_integer(&a, ACPI_S5_SLP_TYP);
    aml_integer(&a, ACPI_S5_SLP_TYP);
    aml_integer(&a, 0);
    aml_integer(&a, 0);
    aml_end(&a, s5);

    int rc = aml_status(&a);
    if (rc) {
        aml_release(&a);
        return rc;
    }
    /* Revision 2: integers are 64 bits wide, as the QWord window needs. */
    acpi_header(a.buf, "DSDT", (uint32_t)a.len, 2);
    b->data = a.buf;
    b->len = a.len;
    return 0;
}

unsigned acpi_pci_intx_gsi(unsigned slot, unsigned pin)
{
    /* The usual swizzle, so neighbouring slots spread over the eight pins. */
    return ACPI_PCI_INTX_GSI_BASE + ((slot + pin) % ACPI_PCI_INTX_GSI_COUNT);
}

static int acpi_check_layout(const struct acpi_layout *l, uint64_t *hole_end)
{
    if (l->ncpus < 1 || l->ncpus > ACPI_MAX_CPUS) {
        log_error("acpi: %u CPUs, the tables describe 1 to %u", l->ncpus, ACPI_MAX_CPUS);
        return -EINVAL;
    }
    uint64_t end = l->pci_hole_end ? l->pci_hole_end : ACPI_PCI_HOLE_DEFAULT_END;
    if (l->pci_hole_start >= end || end > ACPI_4G) {
        log_error("acpi: PCI hole [0x%llx, 0x%llx) is not a window below 4 GiB",
                  (unsigned long long)l->pci_hole_start, (unsigned long long)end);
        return -EINVAL;
    }
    if (l->mmio64_size && l->mmio64_base + l->mmio64_size - 1 < l->mmio64_base) {
        log_error("acpi: 64-bit MMIO window at 0x%llx wraps around",
                  (unsigned long long)l->mmio64_base);
        return -EINVAL;
    }
    *hole_end = end;
    return 0;
}

int acpi_build(const struct acpi_layout *l, struct acpi_tables *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t hole_end;
    int rc = acpi_check_layout(l, &hole_end);
    if (rc)
        return rc;

    rc = acpi_build_facs(&out->table[ACPI_TABLE_FACS]);
    if (!rc)
        rc = acpi_build_dsdt(l, hole_end, &out->table[ACPI_TABLE_DSDT]);
    if (!rc)
        rc = acpi_build_fadt(l, &out->table[ACPI_TABLE_FADT]);
    if (!rc)
        rc = acpi_build_madt(l, &out->table[ACPI_TABLE_MADT]);
    if (!rc)
        rc = acpi_build_xsdt(&out->table[ACPI_TABLE_XSDT]);
    if (!rc)
        rc = acpi_build_rsdp(&out->table[ACPI_TABLE_RSDP]);
    if (rc) {
        log_error("acpi: building the tables failed: %s", strerror(-rc));
        acpi_tables_free(out);
    }
    return rc;
}

void acpi_tables_free(struct acpi_tables *t)
{
    for (int i = 0; i < ACPI_TABLE_COUNT; i++)
        free(t->table[i].data);
    memset(t, 0, sizeof(*t));
}

static bool acpi_tables_complete(const struct acpi_tables *t)
{
    for (int i = 0; i < ACPI_TABLE_COUNT; i++)
        if (!t->table[i].data || !t->table[i].len)
            return false;
    return t->table[ACPI_TABLE_RSDP].len == ACPI_RSDP_LEN;
}

/*
 * Offsets of every table but the RSDP in a block starting at base (a
 * multiple of 64): FACS first and 64-byte aligned, the rest 8-byte aligned.
 * Returns the end of the block.
 */
static size_t acpi_block_offsets(const struct acpi_tables *t, size_t base,
                                 size_t off[ACPI_TABLE_COUNT])
{
    size_t pos = base;
    for (int i = 0; i < ACPI_TABLE_COUNT; i++) {
        if (i == ACPI_TABLE_RSDP)
            continue;
        size_t align = i == ACPI_TABLE_FACS ? 64 : 8;
        pos = (pos + align - 1) & ~(align - 1);
        off[i] = pos;
        pos += t->table[i].len;
    }
    return pos;
}

/* The RSDP goes first when placed; the block starts at the next 64 bytes. */
#define ACPI_PLACED_BLOCK_BASE 64

size_t acpi_placed_size(const struct acpi_tables *t)
{
    size_t off[ACPI_TABLE_COUNT];
    return acpi_block_offsets(t, ACPI_PLACED_BLOCK_BASE, off);
}

static bool acpi_has_header(enum acpi_table_id id)
{
    return id != ACPI_TABLE_FACS && id != ACPI_TABLE_RSDP;
}

/* Fill in the checksum of every table at base + off[] (RSDP at off[RSDP]). */
static void acpi_fill_checksums(uint8_t *base, const struct acpi_tables *t,
                                const size_t off[ACPI_TABLE_COUNT])
{
    for (int i = 0; i < ACPI_TABLE_COUNT; i++) {
        if (!acpi_has_header(i))
            continue;
        uint8_t *p = base + off[i];
        p[ACPI_HEADER_CHECKSUM] = 0;
        p[ACPI_HEADER_CHECKSUM] = (uint8_t)-acpi_checksum(p, t->table[i].len);
    }
    uint8_t *r = base + off[ACPI_TABLE_RSDP];
    r[ACPI_RSDP_CHECKSUM] = 0;
    r[ACPI_RSDP_EXT_CHECKSUM] = 0;
    r[ACPI_RSDP_CHECKSUM] = (uint8_t)-acpi_checksum(r, ACPI_RSDP_V1_LEN);
    r[ACPI_RSDP_EXT_CHECKSUM] = (uint8_t)-acpi_checksum(r, ACPI_RSDP_LEN);
}

int acpi_place(const struct acpi_tables *t, uint8_t *dst, size_t room, uint64_t gpa,
               uint64_t *rsdp_gpa)
{
    if (!acpi_tables_complete(t))
        return -EINVAL;
    size_t off[ACPI_TABLE_COUNT];
    off[ACPI_TABLE_RSDP] = 0;
    size_t size = acpi_block_offsets(t, ACPI_PLACED_BLOCK_BASE, off);
    if (gpa % 64) {
        log_error("acpi: tables at 0x%llx, not 64-byte aligned", (unsigned long long)gpa);
        return -EINVAL;
    }
    if (size > room || gpa >= ACPI_4G || ACPI_4G - gpa < size) {
        log_error("acpi: %zu bytes of tables do not fit %zu bytes at 0x%llx below 4 GiB", size,
                  room, (unsigned long long)gpa);
        return -ENOSPC;
    }

    memset(dst, 0, size);
    for (int i = 0; i < ACPI_TABLE_COUNT; i++)
        memcpy(dst + off[i], t->table[i].data, t->table[i].len);
    for (size_t i = 0; i < sizeof(acpi_links) / sizeof(acpi_links[0]); i++) {
        const struct acpi_link *k = &acpi_links[i];
        put_le(dst + off[k->from] + k->offset, gpa + off[k->to], k->size);
    }
    acpi_fill_checksums(dst, t, off);
    *rsdp_gpa = gpa;
    return 0;
}

int acpi_install(const struct acpi_layout *l, const struct guest_mem *gm, uint64_t gpa,
                 uint64_t room, uint64_t *rsdp_gpa)
{
    struct acpi_tables t;
    int rc = acpi_build(l, &t);
    if (rc)
        return rc;
    size_t need = acpi_placed_size(&t);
    uint8_t *dst = need <= room ? gm_ptr(gm, gpa, need) : NULL;
    if (!dst) {
        log_error("acpi: no room for %zu bytes of tables in guest RAM at 0x%llx", need,
                  (unsigned long long)gpa);
        rc = -ENOSPC;
    } else {
        rc = acpi_place(&t, dst, need, gpa, rsdp_gpa);
    }
    acpi_tables_free(&t);
    return rc;
}

/* One 128-byte loader command; the rest of the entry stays zero. */
static uint8_t *loader_entry(struct acpi_blob *l, size_t *used, uint32_t cmd)
{
    uint8_t *e = l->data + *used;
    *used += ACPI_LOADER_ENTRY_SIZE;
    put32(e, cmd);
    return e + 4;
}

static void loader_fname(uint8_t *p, const char *name)
{
    /* Names are compile-time constants well under the 56-byte limit. */
    strncpy((char *)p, name, ACPI_LOADER_FNAME_SIZE - 1);
}

static void loader_allocate(struct acpi_blob *l, size_t *used, const char *file, uint32_t align,
                            uint8_t zone)
{
    uint8_t *p = loader_entry(l, used, ACPI_LOADER_ALLOCATE);
    loader_fname(p, file);
    put32(p + ACPI_LOADER_FNAME_SIZE, align);
    p[ACPI_LOADER_FNAME_SIZE + 4] = zone;
}

static void loader_add_pointer(struct acpi_blob *l, size_t *used, const char *pointer_file,
                               const char *pointee_file, uint32_t offset, uint8_t size)
{
    uint8_t *p = loader_entry(l, used, ACPI_LOADER_ADD_POINTER);
    loader_fname(p, pointer_file);
    loader_fname(p + ACPI_LOADER_FNAME_SIZE, pointee_file);
    put32(p + 2 * ACPI_LOADER_FNAME_SIZE, offset);
    p[2 * ACPI_LOADER_FNAME_SIZE + 4] = size;
}

static void loader_add_checksum(struct acpi_blob *l, size_t *used, const char *file,
                                uint32_t result, uint32_t start, uint32_t len)
{
    uint8_t *p = loader_entry(l, used, ACPI_LOADER_ADD_CHECKSUM);
    loader_fname(p, file);
    put32(p + ACPI_LOADER_FNAME_SIZE, result);
    put32(p + ACPI_LOADER_FNAME_SIZE + 4, start);
    put32(p + ACPI_LOADER_FNAME_SIZE + 8, len);
}

static const char *acpi_fwcfg_file(enum acpi_table_id id)
{
    return id == ACPI_TABLE_RSDP ? ACPI_FWCFG_RSDP : ACPI_FWCFG_TABLES;
}

int acpi_build_fwcfg(const struct acpi_tables *t, struct acpi_fwcfg *out)
{
    memset(out, 0, sizeof(*out));
    if (!acpi_tables_complete(t))
        return -EINVAL;
    size_t off[ACPI_TABLE_COUNT];
    size_t tables_len = acpi_block_offsets(t, 0, off);
    off[ACPI_TABLE_RSDP] = 0;
    const size_t nlinks = sizeof(acpi_links) / sizeof(acpi_links[0]);
    /* Two allocations, every link, one checksum per headed table, two for the RSDP. */
    size_t ncmds = 2 + nlinks + (ACPI_TABLE_COUNT - 2) + 2;

    int rc = acpi_blob_alloc(&out->rsdp, ACPI_RSDP_LEN);
    if (!rc)
        rc = acpi_blob_alloc(&out->tables, tables_len);
    if (!rc)
        rc = acpi_blob_alloc(&out->loader, ncmds * ACPI_LOADER_ENTRY_SIZE);
    if (rc) {
        acpi_fwcfg_free(out);
        return rc;
    }

    /*
     * Pointer fields hold offsets into the pointee file (the loader adds the
     * file's address); checksum fields stay 0, because OVMF sums the range
     * including the checksum byte and stores the result there.
     */
    for (int i = 0; i < ACPI_TABLE_COUNT; i++) {
        uint8_t *base = i == ACPI_TABLE_RSDP ? out->rsdp.data : out->tables.data;
        memcpy(base + off[i], t->table[i].data, t->table[i].len);
        if (acpi_has_header(i))
            base[off[i] + ACPI_HEADER_CHECKSUM] = 0;
    }
    out->rsdp.data[ACPI_RSDP_CHECKSUM] = 0;
    out->rsdp.data[ACPI_RSDP_EXT_CHECKSUM] = 0;
    for (size_t i = 0; i < nlinks; i++) {
        const struct acpi_link *k = &acpi_links[i];
        uint8_t *base = k->from == ACPI_TABLE_RSDP ? out->rsdp.data : out->tables.data;
        put_le(base + off[k->from] + k->offset, off[k->to], k->size);
    }

    size_t used = 0;
    loader_allocate(&out->loader, &used, ACPI_FWCFG_RSDP, 16, ACPI_LOADER_ZONE_FSEG);
    loader_allocate(&out->loader, &used, ACPI_FWCFG_TABLES, 64, ACPI_LOADER_ZONE_HIGH);
    /* Per table: patch its pointers, then checksum it with the final values. */
    for (int i = 0; i < ACPI_TABLE_COUNT; i++) {
        for (size_t j = 0; j < nlinks; j++) {
            const struct acpi_link *k = &acpi_links[j];
            if ((int)k->from != i)
                continue;
            loader_add_pointer(&out->loader, &used, acpi_fwcfg_file(k->from),
                               acpi_fwcfg_file(k->to), (uint32_t)(off[k->from] + k->offset),
                               k->size);
        }
        if (acpi_has_header(i))
            loader_add_checksum(&out->loader, &used, ACPI_FWCFG_TABLES,
                                (uint32_t)(off[i] + ACPI_HEADER_CHECKSUM), (uint32_t)off[i],
                                (uint32_t)t->table[i].len);
    }
    /* The extended checksum covers the first one, so it comes last. */
    loader_add_checksum(&out->loader, &used, ACPI_FWCFG_RSDP, ACPI_RSDP_CHECKSUM, 0,
                        ACPI_RSDP_V1_LEN);
    loader_add_checksum(&out->loader, &used, ACPI_FWCFG_RSDP, ACPI_RSDP_EXT_CHECKSUM, 0,
                        ACPI_RSDP_LEN);
    if (used != out->loader.len) {
        acpi_fwcfg_free(out);
        return -EFAULT;
    }
    return 0;
}

void acpi_fwcfg_free(struct acpi_fwcfg *f)
{
    free(f->rsdp.data);
    free(f->tables.data);
    free(f->loader.data);
    memset(f, 0, sizeof(*f));
}
