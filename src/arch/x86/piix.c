/*
 * PIIX3 ISA bridge and PIIX4 PM function configuration space (82371SB and
 * 82371AB data sheets). See piix.h.
 */
#include "arch/x86/piix.h"

#define PCI_VENDOR_INTEL 0x8086
#define PIIX3_ISA_DEVICE 0x7000
#define PIIX4_PM_DEVICE 0x7113
#define PCI_CLASS_ISA_BRIDGE 0x060100u /* class, subclass, prog-if */
#define PCI_CLASS_OTHER_BRIDGE 0x068000u
#define PIIX4_PM_REVISION 0x03
#define HEADER_MULTI_FUNCTION 0x80
/* The same subsystem ids as the host bridge (QEMU's). */
#define SUBSYS_VENDOR 0x1af4
#define SUBSYS_ID 0x1100

#define PIRQ_DISABLED 0x80
#define PMBA_IO_SPACE 0x01
#define PMBA_ADDR_MASK 0xffc0u

/*
 * Class code and revision are written here rather than trusted to
 * pci_device_init's packing of class_code, so the ids stay right either way.
 */
static void set_class(struct pci_device *dev, uint32_t class_prog, uint8_t revision)
{
    pci_set_u8(dev, PCI_REVISION_ID, revision);
    pci_set_u8(dev, PCI_CLASS_PROG, (uint8_t)class_prog);
    pci_set_u16(dev, PCI_CLASS_DEVICE, (uint16_t)(class_prog >> 8));
}

void piix3_isa_init(struct pci_device *dev)
{
    pci_device_init(dev, PCI_VENDOR_INTEL, PIIX3_ISA_DEVICE, PCI_CLASS_ISA_BRIDGE, SUBSYS_VENDOR,
                    SUBSYS_ID);
    set_class(dev, PCI_CLASS_ISA_BRIDGE, 0);
    /* Functions 1-3 exist only when function 0 says the device is multi-function. */
    pci_set_u8(dev, PCI_HEADER_TYPE, HEADER_MULTI_FUNCTION);
    for (unsigned i = 0; i < 4; i++) {
        pci_set_u8(dev, PIIX_PIRQRC + i, PIRQ_DISABLED);
        dev->wmask[PIIX_PIRQRC + i] = 0x8f; /* enable-disable bit and IRQ number */
    }
    dev->ops = NULL;
    dev->opaque = NULL;
}

static void pm_config_written(struct pci_device *dev, unsigned offset, unsigned len)
{
    bool touches_pmba = offset < PIIX_PMBA + 4 && offset + len > PIIX_PMBA;
    bool touches_misc = offset <= PIIX_PMREGMISC && offset + len > PIIX_PMREGMISC;
    if (!touches_pmba && !touches_misc)
        return;
    uint16_t base = (uint16_t)(pci_get_u32(dev, PIIX_PMBA) & PMBA_ADDR_MASK);
    bool enabled = dev->config[PIIX_PMREGMISC] & PIIX_PMREGMISC_PMIOSE;
    acpi_pm_set_base(dev->opaque, base, enabled);
}

static const struct pci_device_ops pm_ops = {.config_written = pm_config_written};

void piix4_pm_init(struct pci_device *dev, struct acpi_pm *pm)
{
    pci_device_init(dev, PCI_VENDOR_INTEL, PIIX4_PM_DEVICE, PCI_CLASS_OTHER_BRIDGE, SUBSYS_VENDOR,
                    SUBSYS_ID);
    set_class(dev, PCI_CLASS_OTHER_BRIDGE, PIIX4_PM_REVISION);
    pci_set_u32(dev, PIIX_PMBA, ACPI_PM_BASE_DEFAULT | PMBA_IO_SPACE);
    dev->wmask[PIIX_PMBA] = (uint8_t)PMBA_ADDR_MASK;
    dev->wmask[PIIX_PMBA + 1] = (uint8_t)(PMBA_ADDR_MASK >> 8);
    pci_set_u8(dev, PIIX_PMREGMISC, PIIX_PMREGMISC_PMIOSE);
    dev->wmask[PIIX_PMREGMISC] = PIIX_PMREGMISC_PMIOSE;
    dev->ops = &pm_ops;
    dev->opaque = pm;
}
