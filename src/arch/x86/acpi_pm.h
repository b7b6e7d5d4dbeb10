/*
 * ACPI fixed hardware of a PIIX4-style power management function (ACPI 6.5
 * section 4.8, "ACPI Hardware Features"; Intel 82371AB PIIX4 data sheet,
 * "Power Management Registers"): the PM1a event block (PM1_STS/PM1_EN),
 * the PM1a control block, the 24-bit PM timer at 3.579545 MHz, and a GPE0
 * block. Register map, at the PM base (0x600 unless firmware moves it):
 *
 *   +0x00 PM1_STS (2)  write 1 to clear     +0x02 PM1_EN (2)
 *   +0x04 PM1_CNT (2)                       +0x08 PM_TMR (4, read-only)
 *   GPE0 at 0xAFE0: +0 GPE0_STS (2, write 1 to clear), +2 GPE0_EN (2)
 *
 * SCI is IRQ 9, level-triggered, asserted while any enabled status bit is
 * set. SCI_EN always reads 1: the machine is always in ACPI mode (the FADT
 * carries no SMI_CMD). A write to PM1_CNT with SLP_EN set and SLP_TYP ==
 * ACPI_S5_SLP_TYP powers the machine off; that is 0, the value QEMU's
 * PIIX4 treats as "soft power off", so the DSDT's \_S5 must be
 * Package { 0, 0 }. Other sleep types (S1-S4) are not supported and are
 * ignored: the DSDT must not offer them.
 *
 * TMR_STS is brought up to date whenever the guest touches the block; no
 * host timer raises the timer-overflow SCI on its own (TMR_EN is unused by
 * Linux and OVMF).
 */
#ifndef KRUNKIT_ARCH_X86_ACPI_PM_H
#define KRUNKIT_ARCH_X86_ACPI_PM_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/platform.h"
#include "vmm/io_bus.h"
#include "vmm/machine.h"

#define ACPI_PM_BASE_DEFAULT 0x600
#define ACPI_PM_LEN 0x40 /* the PIIX4's PM I/O space is 64 bytes */
#define ACPI_PM1_EVT_OFFSET 0x00
#define ACPI_PM1_CNT_OFFSET 0x04
#define ACPI_PM_TMR_OFFSET 0x08
#define ACPI_GPE0_BASE 0xafe0
#define ACPI_GPE0_LEN 4
#define ACPI_SCI_IRQ 9
#define ACPI_S5_SLP_TYP 0
#define ACPI_PM_TIMER_HZ 3579545u

/* PM1 status/enable bits. */
#define ACPI_PM1_TMR_STS 0x0001
#define ACPI_PM1_GBL_STS 0x0020
#define ACPI_PM1_PWRBTN_STS 0x0100
#define ACPI_PM1_SLPBTN_STS 0x0200
#define ACPI_PM1_RTC_STS 0x0400
#define ACPI_PM1_WAK_STS 0x8000
/* PM1 control bits. */
#define ACPI_PM1_SCI_EN 0x0001
#define ACPI_PM1_SLP_TYP_SHIFT 10
#define ACPI_PM1_SLP_TYP_MASK 0x1c00
#define ACPI_PM1_SLP_EN 0x2000

struct acpi_pm;

/* Monotonic nanoseconds; tests substitute a fake clock. */
typedef uint64_t (*acpi_pm_clock_fn)(void *opaque);

/*
 * hooks (may be NULL) drives the SCI line; events->poweroff is called on
 * S5 entry, from the vCPU thread, with no lock held. clock NULL:
 * CLOCK_MONOTONIC. NULL on ENOMEM.
 */
struct acpi_pm *acpi_pm_create(const struct vm_hooks *hooks, const struct platform_events *events,
                               acpi_pm_clock_fn clock, void *clock_opaque);
/* Unmaps what acpi_pm_register mapped, then frees. */
void acpi_pm_destroy(struct acpi_pm *pm);

/* The PM block (offsets 0..ACPI_PM_LEN-1) and GPE0 block; opaque = struct acpi_pm. */
extern const struct io_ops acpi_pm_io_ops;
extern const struct io_ops acpi_gpe0_io_ops;

/* Map the PM block at ACPI_PM_BASE_DEFAULT and GPE0 at ACPI_GPE0_BASE on pio. */
int acpi_pm_register(struct acpi_pm *pm, struct io_bus *pio);

/*
 * Move or unmap the PM block (the PIIX4 function's PMBA/PMIOSE changed;
 * called from its config_written hook on a vCPU thread, which io_bus allows).
 * -EEXIST if the new range overlaps another device's (the block stays
 * unmapped then); -ENODEV before acpi_pm_register.
 */
int acpi_pm_set_base(struct acpi_pm *pm, uint16_t base, bool enabled);

/*
 * Press the power button: sets PWRBTN_STS and raises SCI when the guest
 * enabled PWRBTN_EN. Thread-safe (called from the REST thread).
 */
void acpi_pm_press_power_button(struct acpi_pm *pm);

/* Set a GPE0 status bit (0..15), e.g. for hotplug; raises SCI if enabled. */
void acpi_pm_raise_gpe(struct acpi_pm *pm, unsigned bit);

#endif
