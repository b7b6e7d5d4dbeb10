/*
 * The i440FX host bridge and configuration mechanism #1 (see i440fx.h).
 * The latch is per machine, as on the real chipset: two vCPUs racing
 * through 0xCF8/0xCFC get what a PC gives them, and the guest serialises
 * its config cycles itself (Linux holds pci_config_lock).
 */
#include "arch/x86/i440fx.h"

#include <string.h>

#define CF8_ENABLE 0x80000000u
#define CF8_PORT 0xcf8
#define CFC_PORT 0xcfc

static void cf8_read(void *opaque, uint64_t off, void *data, unsigned len)
{
    struct i440fx *h = opaque;
    uint32_t v = 0xffffffffu;
    if (off == 0 && len == 4)
        v = __atomic_load_n(&h->config_address, __ATOMIC_RELAXED);
    memcpy(data, &v, len);
}

static void cf8_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
    struct i440fx *h = opaque;
    if (off == 0 && len == 4) {
        uint32_t v;
        memcpy(&v, data, 4);
        __atomic_store_n(&h->config_address, v & 0x80fffffcu, __ATOMIC_RELAXED);
    } else if (off == 1 && len == 1 && h->reset_ctl_write) {
        h->reset_ctl_write(h->reset_ctl_opaque, *(const uint8_t *)data);
    }
}

/* false: the latch does not enable a cycle (the data window then reads as ones). */
static bool decode(struct i440fx *h, uint64_t off, unsigned *bus_nr, unsigned *devfn, unsigned *reg)
{
    uint32_t a = __atomic_load_n(&h->config_address, __ATOMIC_RELAXED);
    if (!(a & CF8_ENABLE))
        return false;
    *bus_nr = (a >> 16) & 0xff;
    *devfn = (a >> 8) & 0xff;
    *reg = (a & 0xfc) + (unsigned)off;
    return true;
}

static void cfc_read(void *opaque, uint64_t off, void *data, unsigned len)
{
    struct i440fx *h = opaque;
    unsigned bus_nr, devfn, reg;
    uint32_t v = 0xffffffffu;
    if (decode(h, off, &bus_nr, &devfn, &reg))
        v = pci_bus_config_read(h->bus, bus_nr, devfn, reg, len);
    memcpy(data, &v, len);
}

static void cfc_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
    struct i440fx *h = opaque;
    unsigned bus_nr, devfn, reg;
    uint32_t v = 0;
    memcpy(&v, data, len);
    if (decode(h, off, &bus_nr, &devfn, &reg))
        pci_bus_config_write(h->bus, bus_nr, devfn, reg, v, len);
}

static const struct io_ops cf8_ops = {.read = cf8_read, .write = cf8_write};
static const struct io_ops cfc_ops = {.read = cfc_read, .write = cfc_write};

int i440fx_init(struct i440fx *h, struct pci_bus *bus, struct io_bus *pio,
                void (*reset_ctl_write)(void *opaque, uint8_t value), void *reset_ctl_opaque)
{
    memset(h, 0, sizeof(*h));
    h->bus = bus;
    h->reset_ctl_write = reset_ctl_write;
    h->reset_ctl_opaque = reset_ctl_opaque;
    int rc = io_bus_register(pio, CF8_PORT, 4, &cf8_ops, h);
    if (rc)
        return rc;
    rc = io_bus_register(pio, CFC_PORT, 4, &cfc_ops, h);
    if (rc) {
        io_bus_unregister(pio, CF8_PORT);
        return rc;
    }
    h->pio = pio;
    pci_device_init(&h->host_bridge, 0x8086, 0x1237, 0x060000, 0x1af4, 0x1100);
    rc = pci_register(bus, &h->host_bridge, 0);
    if (rc)
        i440fx_destroy(h);
    return rc;
}

void i440fx_destroy(struct i440fx *h)
{
    if (h->host_bridge.bus)
        pci_unregister(h->bus, &h->host_bridge);
    if (h->pio) {
        io_bus_unregister(h->pio, CF8_PORT);
        io_bus_unregister(h->pio, CFC_PORT);
    }
    h->pio = NULL;
}
