/*
 * The PCI faces of the PIIX southbridge that firmware looks for on an
 * i440FX machine (Intel 82371SB PIIX3 and 82371AB PIIX4 data sheets, PCI
 * configuration registers), at QEMU's addresses:
 *  - 00:01.0 PIIX3 PCI-to-ISA bridge 8086:7000, multi-function, with the
 *    PIRQ route registers 0x60-0x63 (reset value 0x80: routing disabled);
 *  - 00:01.3 PIIX4 power management function 8086:7113: PMBA (0x40, bits
 *    15:6 writable, bit 0 hard-wired 1 = I/O space) and PMREGMISC (0x80,
 *    bit 0 PMIOSE enables the PM I/O block).
 * We come out of reset with PMBA = 0x600 and PMIOSE set, i.e. as if firmware
 * had already configured it: OVMF then leaves the block where our ACPI
 * tables say it is. A later change moves the block (acpi_pm_set_base).
 */
#ifndef KRUNKIT_ARCH_X86_PIIX_H
#define KRUNKIT_ARCH_X86_PIIX_H

#include "arch/x86/acpi_pm.h"
#include "hw/pci.h"

#define PIIX_ISA_DEVFN ((1 << 3) | 0) /* 00:01.0 */
#define PIIX_PM_DEVFN ((1 << 3) | 3)  /* 00:01.3 */

#define PIIX_PIRQRC 0x60
#define PIIX_PMBA 0x40
#define PIIX_PMREGMISC 0x80
#define PIIX_PMREGMISC_PMIOSE 0x01

/* Fill dev as the ISA bridge; then pci_register(bus, dev, PIIX_ISA_DEVFN). */
void piix3_isa_init(struct pci_device *dev);

/*
 * Fill dev as the PM function driving pm (already acpi_pm_register-ed);
 * then pci_register(bus, dev, PIIX_PM_DEVFN). dev->opaque is set to pm.
 */
void piix4_pm_init(struct pci_device *dev, struct acpi_pm *pm);

#endif
