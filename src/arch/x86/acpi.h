/*
 * The ACPI tables of our i440FX/PIIX4-style PC (ACPI 6.4, chapter 5):
 * RSDP, XSDT, FADT, FACS, DSDT and MADT, built once from a machine layout
 * and then either laid out in guest memory for a directly booted Linux
 * (acpi_place) or handed to firmware through fw_cfg with a QEMU-format
 * table-loader script (acpi_build_fwcfg), so both paths see the same tables.
 *
 * The platform constants below are what the tables promise; the device
 * models (PIIX4 PM block, reset control, IOAPIC routing) must implement
 * exactly these.
 */
#ifndef KRUNKIT_ARCH_X86_ACPI_H
#define KRUNKIT_ARCH_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/guest_mem.h"

/* Interrupt controllers. */
#define ACPI_LAPIC_ADDR 0xfee00000u
#define ACPI_IOAPIC_ADDR 0xfec00000u
/* KVM's in-kernel IOAPIC resets its ID register to 0; QEMU declares 0 too. */
#define ACPI_IOAPIC_ID 0
#define ACPI_IOAPIC_PINS 24

/* PIIX4 power management I/O block at QEMU's default PM base. */
#define ACPI_PM_BASE 0x600
#define ACPI_PM1A_EVT_BLK (ACPI_PM_BASE + 0x0) /* PM1_STS (2) + PM1_EN (2) */
#define ACPI_PM1_EVT_LEN 4
#define ACPI_PM1A_CNT_BLK (ACPI_PM_BASE + 0x4)
#define ACPI_PM1_CNT_LEN 2
#define ACPI_PM_TMR_BLK (ACPI_PM_BASE + 0x8) /* 24-bit, 3.579545 MHz */
#define ACPI_PM_TMR_LEN 4
#define ACPI_GPE0_BLK 0xafe0 /* GPE0_STS (2) + GPE0_EN (2) */
#define ACPI_GPE0_BLK_LEN 4
#define ACPI_SCI_IRQ 9
/* PM1_CNT.SLP_TYP (bits 10-12) the DSDT's \_S5 asks for: soft off on PIIX4. */
#define ACPI_S5_SLP_TYP 0
/* Reset: write ACPI_RESET_VALUE to the PIIX3 reset control register. */
#define ACPI_RESET_PORT 0xcf9
#define ACPI_RESET_VALUE 0x06
/* RTC CMOS index of the century byte. */
#define ACPI_CMOS_CENTURY 0x32

/* PCI INTx are routed straight to IOAPIC pins, level triggered, active low. */
#define ACPI_PCI_INTX_GSI_BASE 16
#define ACPI_PCI_INTX_GSI_COUNT 8

/* APIC ids above 254 need x2APIC entries; the DSDT names CPUs C000..CFFF. */
#define ACPI_MAX_CPUS 4096

/* The fw_cfg files of QEMU's table-loader protocol, as OVMF looks them up. */
#define ACPI_FWCFG_RSDP "etc/acpi/rsdp"
#define ACPI_FWCFG_TABLES "etc/acpi/tables"
#define ACPI_FWCFG_LOADER "etc/table-loader"

/* bios-linker-loader script format: 128-byte commands, 56-byte file names. */
#define ACPI_LOADER_ENTRY_SIZE 128
#define ACPI_LOADER_FNAME_SIZE 56
enum acpi_loader_cmd {
    ACPI_LOADER_ALLOCATE = 1,
    ACPI_LOADER_ADD_POINTER = 2,
    ACPI_LOADER_ADD_CHECKSUM = 3,
};
enum acpi_loader_zone {
    ACPI_LOADER_ZONE_HIGH = 1,
    ACPI_LOADER_ZONE_FSEG = 2,
};

struct acpi_layout {
    unsigned ncpus;          /* 1..ACPI_MAX_CPUS; APIC ids and ACPI UIDs 0..ncpus-1 */
    uint64_t pci_hole_start; /* 32-bit PCI MMIO window [start, end) */
    uint64_t pci_hole_end;   /* 0: up to the IOAPIC (0xfec00000) */
    uint64_t mmio64_base;    /* 64-bit PCI MMIO window; size 0: none */
    uint64_t mmio64_size;
};

/*
 * Tables in the order they are laid out: the FACS first, so that the
 * 64-byte alignment of the block is its alignment.
 */
enum acpi_table_id {
    ACPI_TABLE_FACS,
    ACPI_TABLE_DSDT,
    ACPI_TABLE_FADT,
    ACPI_TABLE_MADT,
    ACPI_TABLE_XSDT,
    ACPI_TABLE_RSDP,
    ACPI_TABLE_COUNT
};

struct acpi_blob {
    uint8_t *data;
    size_t len;
};

/*
 * Each table on its own, unlinked: pointer fields hold 0 and checksums are
 * computed later by acpi_place() or by the firmware's loader.
 */
struct acpi_tables {
    struct acpi_blob table[ACPI_TABLE_COUNT];
};

/* The three fw_cfg files of the table-loader protocol. */
struct acpi_fwcfg {
    struct acpi_blob rsdp;   /* ACPI_FWCFG_RSDP */
    struct acpi_blob tables; /* ACPI_FWCFG_TABLES: every table but the RSDP */
    struct acpi_blob loader; /* ACPI_FWCFG_LOADER: the command script */
};

/* Build every table for layout l; -EINVAL on a layout we cannot describe. */
int acpi_build(const struct acpi_layout *l, struct acpi_tables *out);
void acpi_tables_free(struct acpi_tables *t);

/* Bytes acpi_place() needs: the RSDP, then the other tables 64-byte aligned. */
size_t acpi_placed_size(const struct acpi_tables *t);
/*
 * Copy the tables into dst (room bytes, at guest physical address gpa, which
 * must be 64-byte aligned and below 4 GiB), link every pointer to its guest
 * address and fill in every checksum. The RSDP is at gpa itself: for Linux's
 * scan put gpa in 0xE0000-0xFFFFF. Stores the RSDP address in *rsdp_gpa.
 */
int acpi_place(const struct acpi_tables *t, uint8_t *dst, size_t room, uint64_t gpa,
               uint64_t *rsdp_gpa);

/*
 * Direct boot in one call: build the tables for l and place them in guest
 * memory at gpa (room bytes there must be RAM that the e820 map reserves;
 * the legacy BIOS area 0xE0000-0xFFFFF is the usual place).
 */
int acpi_install(const struct acpi_layout *l, const struct guest_mem *gm, uint64_t gpa,
                 uint64_t room, uint64_t *rsdp_gpa);

/* Build the fw_cfg files: blobs with relative pointers and a loader script. */
int acpi_build_fwcfg(const struct acpi_tables *t, struct acpi_fwcfg *out);
void acpi_fwcfg_free(struct acpi_fwcfg *f);

/* The GSI that INTx pin (0 = INTA .. 3 = INTD) of a device in slot 0..31 raises. */
unsigned acpi_pci_intx_gsi(unsigned slot, unsigned pin);

/* Sum of n bytes mod 256: zero over a whole, valid table. */
uint8_t acpi_checksum(const uint8_t *p, size_t n);

#endif
