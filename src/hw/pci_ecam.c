/*
 * ECAM (see pci_ecam.h). Accesses are naturally aligned and at most 4
 * bytes (a wider or straddling one reads as ones and writes nothing, as
 * the spec leaves them undefined); the 4 KiB of a function past its 256
 * bytes of conventional space read as ones, since no device here has
 * extended capabilities.
 */
#include "hw/pci_ecam.h"

#include <errno.h>
#include <string.h>

static bool decode(uint64_t off, unsigned len, unsigned *bus_nr, unsigned *devfn, unsigned *reg)
{
    if (len == 0 || len > 4 || (off & (len - 1)))
        return false;
    *bus_nr = (unsigned)(off >> 20) & 0xff;
    *devfn = (unsigned)(off >> 12) & 0xff;
    *reg = (unsigned)off & 0xfff;
    return true;
}

static void ecam_read(void *opaque, uint64_t off, void *data, unsigned len)
{
    struct pci_ecam *e = opaque;
    unsigned bus_nr, devfn, reg;
    uint32_t v = 0xffffffffu;
    if (decode(off, len, &bus_nr, &devfn, &reg))
        v = pci_bus_config_read(e->bus, bus_nr, devfn, reg, len);
    memset(data, 0xff, len);
    memcpy(data, &v, len < 4 ? len : 4);
}

static void ecam_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
    struct pci_ecam *e = opaque;
    unsigned bus_nr, devfn, reg;
    if (!decode(off, len, &bus_nr, &devfn, &reg))
        return;
    uint32_t v = 0;
    memcpy(&v, data, len);
    pci_bus_config_write(e->bus, bus_nr, devfn, reg, v, len);
}

static const struct io_ops ecam_ops = {.read = ecam_read, .write = ecam_write};

int pci_ecam_init(struct pci_ecam *e, struct pci_bus *bus, struct io_bus *mmio, uint64_t base,
                  unsigned nbuses)
{
    memset(e, 0, sizeof(*e));
    if (nbuses == 0 || nbuses > 256 || (base & (PCI_ECAM_BUS_SIZE - 1)))
        return -EINVAL;
    int rc = io_bus_register(mmio, base, nbuses * PCI_ECAM_BUS_SIZE, &ecam_ops, e);
    if (rc)
        return rc;
    e->bus = bus;
    e->mmio = mmio;
    e->base = base;
    return 0;
}

void pci_ecam_destroy(struct pci_ecam *e)
{
    if (e->mmio)
        io_bus_unregister(e->mmio, e->base);
    e->mmio = NULL;
}
