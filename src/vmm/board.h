/*
 * The PC board around the CPUs: which legacy devices sit at which ports
 * (COM1, i8042, CMOS/RTC, PIIX4 ACPI PM, reset control) and the ACPI
 * tables describing the machine.
 */
#ifndef KRUNKIT_VMM_BOARD_H
#define KRUNKIT_VMM_BOARD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"

#define BOARD_MMIO32_END 0xfec00000ull /* IOAPIC, then LAPIC, HPET, firmware */

struct vmm;
struct platform;

int board_create(struct vmm *vmm);
/* Write the ACPI tables for direct boot; *rsdp = their root's guest address. */
int board_write_acpi(struct vmm *vmm, uint64_t *rsdp);
void board_press_power_button(struct platform *p);
void board_destroy(struct vmm *vmm);

#endif
