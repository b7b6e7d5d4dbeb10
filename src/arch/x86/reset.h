/*
 * The PC's two chipset reset paths that are not the i8042:
 *  - port 0x92, "system control port A" (PS/2 fast A20): bit 1 gates A20,
 *    a 0 -> 1 transition of bit 0 resets the machine;
 *  - 0xCF9, the reset control register of PIIX3/PIIX4 and later chipsets
 *    (82371AB data sheet, "RC - Reset Control Register"): writing a value
 *    with RST_CPU (bit 2) set resets, so 0x06 (the FADT's RESET_VALUE) and
 *    0x0E both do; SYS_RST (bit 1) and FULL_RST (bit 3) read back.
 *
 * 0xCF9 sits inside the PCI configuration mechanism #1 window 0xCF8-0xCFF,
 * where CONFIG_ADDRESS (0xCF8) only answers 32-bit accesses. The PCI bus
 * owns the window and forwards 1-byte writes at 0xCF9 to reset_ctl_write.
 *
 * KVM does not model the A20 gate (the guest always sees A20 enabled), so
 * bit 1 is only remembered for reads.
 */
#ifndef KRUNKIT_ARCH_X86_RESET_H
#define KRUNKIT_ARCH_X86_RESET_H

#include <stdint.h>

#include "hw/platform.h"
#include "vmm/io_bus.h"

#define RESET_PORT92 0x92
#define RESET_CTL_PORT 0xcf9
#define RESET_CTL_RST_CPU 0x04

struct reset_ctl;

/* events->reset is called (no lock held) when the guest asks for a reset. NULL on ENOMEM. */
struct reset_ctl *reset_ctl_create(const struct platform_events *events);
void reset_ctl_destroy(struct reset_ctl *r);

/* Port 0x92, a 1-byte range; opaque = struct reset_ctl. */
extern const struct io_ops port92_io_ops;
int reset_ctl_register(struct reset_ctl *r, struct io_bus *pio);

/*
 * The 0xCF9 byte register. reset_ctl_write has the shape of struct
 * pci_bus's reset_ctl_write hook: bus->reset_ctl_write = reset_ctl_write,
 * bus->reset_ctl_opaque = the struct reset_ctl.
 */
uint8_t reset_ctl_read(struct reset_ctl *r);
void reset_ctl_write(void *reset_ctl, uint8_t val);

#endif
