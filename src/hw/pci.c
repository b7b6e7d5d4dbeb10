/*
 * PCI bus 0 (PCI Local Bus Specification 3.0): its devices' configuration
 * space and BARs. How the CPU reaches configuration space is the host
 * bridge's business: ECAM (hw/pci_ecam.c) or, on a PC, configuration
 * mechanism #1 (arch/x86/i440fx.c); both end in pci_bus_config_read/write.
 *
 * BARs: the bus owns the generic rules. A BAR reads back its address with
 * the low size bits clear (so writing all ones sizes it), and a BAR is
 * mapped on the MMIO or PIO bus only while the command register enables
 * that decode and the address is plausible. Moving a BAR moves the range
 * and tells the device (bar_moved), which moves its ioeventfds.
 */
#include "hw/pci.h"

#include <errno.h>
#include <string.h>

#include "core/log.h"

static bool bar_is_upper_half(const struct pci_device *dev, int i)
{
    return i > 0 && dev->bars[i - 1].size && dev->bars[i - 1].is_64;
}

static uint32_t bar_flags(const struct pci_bar *bar)
{
    if (bar->is_io)
        return 0x1;
    return bar->is_64 ? 0x4 : 0x0;
}

/* Current BAR address as programmed in config space. */
static uint64_t bar_programmed_addr(const struct pci_device *dev, int i)
{
    const struct pci_bar *bar = &dev->bars[i];
    uint64_t v = pci_get_u32(dev, PCI_BASE_ADDRESS_0 + 4 * i);
    if (bar->is_64 && i + 1 < PCI_NUM_BARS)
        v |= (uint64_t)pci_get_u32(dev, PCI_BASE_ADDRESS_0 + 4 * (i + 1)) << 32;
    /*
     * Keep all 32 bits of an I/O BAR: one at or above 64 KiB matches no x86
     * port address, so the range check in bar_remap leaves it unmapped.
     */
    return v & ~(bar->size - 1) & (bar->is_io ? ~0x3ull : ~0xfull);
}

static void bar_remap(struct pci_device *dev, int i)
{
    struct pci_bus *bus = dev->bus;
    struct pci_bar *bar = &dev->bars[i];
    uint16_t cmd = pci_get_u16(dev, PCI_COMMAND);
    uint64_t addr = bar_programmed_addr(dev, i);
    bool decode = cmd & (bar->is_io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY);
    uint64_t limit = bar->is_io ? 0x10000 : (bar->is_64 ? (1ull << 52) : (1ull << 32));
    bool sane = addr != 0 && addr < limit && bar->size <= limit - addr;
    uint64_t want = decode && sane ? addr : 0;
    uint64_t old = bar->mapped ? bar->addr : 0;
    if (want == old)
        return;
    struct io_bus *iob = bar->is_io ? bus->pio : bus->mmio;
    if (bar->mapped)
        io_bus_unregister(iob, bar->addr);
    bar->mapped = false;
    if (want) {
        int rc = io_bus_register(iob, want, bar->size, bar->ops, bar->opaque);
        if (rc == 0) {
            bar->mapped = true;
        } else {
            log_debug("pci %02x.%x: BAR%d at 0x%llx not mapped: %d", dev->devfn >> 3,
                      dev->devfn & 7, i, (unsigned long long)want, rc);
            want = 0;
        }
    }
    bar->addr = want;
    if (dev->ops && dev->ops->bar_moved && old != want)
        dev->ops->bar_moved(dev, i, old, want);
}

static void remap_all(struct pci_device *dev)
{
    for (int i = 0; i < PCI_NUM_BARS; i++)
        if (dev->bars[i].size && !bar_is_upper_half(dev, i))
            bar_remap(dev, i);
}

uint32_t pci_config_read(struct pci_device *dev, unsigned offset, unsigned len)
{
    if (len == 0 || len > 4 || offset >= PCI_CONFIG_SIZE || offset + len > PCI_CONFIG_SIZE)
        return 0xffffffffu;
    uint32_t v = 0;
    for (unsigned i = 0; i < len; i++)
        v |= (uint32_t)dev->config[offset + i] << (8 * i);
    return v;
}

void pci_config_write(struct pci_device *dev, unsigned offset, uint32_t value, unsigned len)
{
    if (len == 0 || len > 4 || offset >= PCI_CONFIG_SIZE || offset + len > PCI_CONFIG_SIZE)
        return;
    for (unsigned i = 0; i < len; i++) {
        uint8_t m = dev->wmask[offset + i];
        uint8_t b = (uint8_t)(value >> (8 * i));
        dev->config[offset + i] = (uint8_t)((dev->config[offset + i] & ~m) | (b & m));
    }
    /* Keep the BAR type bits, which wmask protects, and remap as needed. */
    bool touches_bars =
        offset < PCI_BASE_ADDRESS_0 + 4 * PCI_NUM_BARS && offset + len > PCI_BASE_ADDRESS_0;
    bool touches_cmd = offset < PCI_COMMAND + 2 && offset + len > PCI_COMMAND;
    if (dev->bus && (touches_bars || touches_cmd))
        remap_all(dev);
    if (dev->ops && dev->ops->config_written)
        dev->ops->config_written(dev, offset, len);
}

void pci_device_init(struct pci_device *dev, uint16_t vendor, uint16_t device, uint32_t class_code,
                     uint16_t subsys_vendor, uint16_t subsys_id)
{
    memset(dev->config, 0, sizeof(dev->config));
    memset(dev->wmask, 0, sizeof(dev->wmask));
    memset(dev->bars, 0, sizeof(dev->bars));
    pci_set_u16(dev, PCI_VENDOR_ID, vendor);
    pci_set_u16(dev, PCI_DEVICE_ID, device);
    /* class_code is base class << 16 | subclass << 8 | programming interface. */
    pci_set_u8(dev, PCI_CLASS_PROG, (uint8_t)class_code);
    pci_set_u16(dev, PCI_CLASS_DEVICE, (uint16_t)(class_code >> 8));
    pci_set_u16(dev, PCI_SUBSYSTEM_VENDOR_ID, subsys_vendor);
    pci_set_u16(dev, PCI_SUBSYSTEM_ID, subsys_id);
    /* I/O, memory, bus master, INTx disable. */
    pci_set_u16(dev, PCI_COMMAND, 0);
    dev->wmask[PCI_COMMAND] = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    dev->wmask[PCI_COMMAND + 1] = 0x04;
    dev->wmask[PCI_INTERRUPT_LINE] = 0xff;
    dev->next_cap = 0x40;
}

void pci_device_set_bar(struct pci_device *dev, int bar, uint64_t size, bool is_io, bool is_64,
                        const struct io_ops *ops, void *opaque)
{
    if (bar < 0 || bar >= PCI_NUM_BARS || (is_64 && bar + 1 >= PCI_NUM_BARS) || size < 16 ||
        (size & (size - 1)))
        return;
    dev->bars[bar] = (struct pci_bar){
        .size = size, .is_io = is_io, .is_64 = is_64 && !is_io, .ops = ops, .opaque = opaque};
    uint64_t mask = ~(size - 1);
    unsigned off = PCI_BASE_ADDRESS_0 + 4 * (unsigned)bar;
    uint32_t low_mask = (uint32_t)mask & (is_io ? 0xfffffffcu : 0xfffffff0u);
    for (int i = 0; i < 4; i++)
        dev->wmask[off + i] = (uint8_t)(low_mask >> (8 * i));
    pci_set_u32(dev, off, bar_flags(&dev->bars[bar]));
    if (dev->bars[bar].is_64)
        for (int i = 0; i < 4; i++)
            dev->wmask[off + 4 + i] = (uint8_t)(mask >> (32 + 8 * i));
}

int pci_add_cap(struct pci_device *dev, uint8_t cap_id, unsigned len)
{
    unsigned off = (dev->next_cap + 3u) & ~3u;
    if (len < 2 || off + len > PCI_CONFIG_SIZE)
        return -ENOSPC;
    pci_set_u8(dev, off, cap_id);
    /* Prepend to the list: next pointer = current head. */
    pci_set_u8(dev, off + 1, dev->config[PCI_CAPABILITY_LIST]);
    pci_set_u8(dev, PCI_CAPABILITY_LIST, (uint8_t)off);
    pci_set_u16(dev, PCI_STATUS, pci_get_u16(dev, PCI_STATUS) | PCI_STATUS_CAP_LIST);
    dev->next_cap = (uint8_t)(off + len);
    if (off + len == PCI_CONFIG_SIZE)
        dev->next_cap = 0xff;
    return (int)off;
}

static int alloc_window(uint64_t *next, uint64_t end, uint64_t size, uint64_t *addr)
{
    uint64_t a = (*next + size - 1) & ~(size - 1);
    if (a < *next || a > end || size > end - a)
        return -ENOSPC;
    *addr = a;
    *next = a + size;
    return 0;
}

int pci_register(struct pci_bus *bus, struct pci_device *dev, int devfn)
{
    pthread_mutex_lock(&bus->lock);
    if (devfn < 0) {
        for (int slot = 1; slot < 32 && devfn < 0; slot++)
            if (!bus->devices[slot << 3])
                devfn = slot << 3;
        if (devfn < 0) {
            pthread_mutex_unlock(&bus->lock);
            return -ENOSPC;
        }
    }
    if (devfn >= PCI_MAX_DEVFN || bus->devices[devfn]) {
        pthread_mutex_unlock(&bus->lock);
        return -EEXIST;
    }
    /* Place BARs, largest first is not needed at our sizes. */
    for (int i = 0; i < PCI_NUM_BARS; i++) {
        struct pci_bar *bar = &dev->bars[i];
        if (!bar->size || bar_is_upper_half(dev, i))
            continue;
        uint64_t addr;
        int rc;
        if (bar->is_io) {
            uint64_t next = bus->pio_next;
            rc = alloc_window(&next, bus->pio_end, bar->size, &addr);
            bus->pio_next = (uint32_t)next;
        } else {
            rc = alloc_window(&bus->mmio32_next, bus->mmio32_end, bar->size, &addr);
        }
        if (rc) {
            pthread_mutex_unlock(&bus->lock);
            return rc;
        }
        unsigned off = PCI_BASE_ADDRESS_0 + 4 * (unsigned)i;
        pci_set_u32(dev, off, (uint32_t)addr | bar_flags(bar));
        if (bar->is_64)
            pci_set_u32(dev, off + 4, (uint32_t)(addr >> 32));
    }
    dev->devfn = (uint8_t)devfn;
    dev->bus = bus;
    bus->devices[devfn] = dev;
    pci_set_u16(dev, PCI_COMMAND,
                pci_get_u16(dev, PCI_COMMAND) | PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    remap_all(dev);
    pthread_mutex_unlock(&bus->lock);
    return 0;
}

void pci_unregister(struct pci_bus *bus, struct pci_device *dev)
{
    pthread_mutex_lock(&bus->lock);
    if (dev->bus == bus && bus->devices[dev->devfn] == dev) {
        pci_set_u16(dev, PCI_COMMAND, 0);
        remap_all(dev);
        bus->devices[dev->devfn] = NULL;
        dev->bus = NULL;
    }
    pthread_mutex_unlock(&bus->lock);
}

/* Under the bus lock; absent devices (and other buses: we have bus 0 only) read as ones. */
static struct pci_device *addressed_device(struct pci_bus *bus, unsigned bus_nr, unsigned devfn)
{
    if (bus_nr != 0 || devfn >= PCI_MAX_DEVFN)
        return NULL;
    return bus->devices[devfn];
}

uint32_t pci_bus_config_read(struct pci_bus *bus, unsigned bus_nr, unsigned devfn, unsigned offset,
                             unsigned len)
{
    uint32_t v = 0xffffffffu;
    if (offset >= PCI_CONFIG_SIZE || len > PCI_CONFIG_SIZE - offset)
        return v; /* extended config space (ECAM's 4 KiB): nothing there */
    pthread_mutex_lock(&bus->lock);
    struct pci_device *dev = addressed_device(bus, bus_nr, devfn);
    if (dev)
        v = pci_config_read(dev, offset, len);
    pthread_mutex_unlock(&bus->lock);
    return v;
}

void pci_bus_config_write(struct pci_bus *bus, unsigned bus_nr, unsigned devfn, unsigned offset,
                          uint32_t value, unsigned len)
{
    if (offset >= PCI_CONFIG_SIZE || len > PCI_CONFIG_SIZE - offset)
        return;
    pthread_mutex_lock(&bus->lock);
    struct pci_device *dev = addressed_device(bus, bus_nr, devfn);
    if (dev)
        pci_config_write(dev, offset, value, len);
    pthread_mutex_unlock(&bus->lock);
}

int pci_bus_init(struct pci_bus *bus, struct io_bus *mmio, struct io_bus *pio, uint64_t mmio32_base,
                 uint64_t mmio32_end, uint64_t mmio64_base, uint64_t mmio64_end)
{
    memset(bus, 0, sizeof(*bus));
    bus->mmio = mmio;
    bus->pio = pio;
    bus->mmio32_next = mmio32_base;
    bus->mmio32_end = mmio32_end;
    bus->mmio64_next = mmio64_base;
    bus->mmio64_end = mmio64_end;
    /* Where a PC's firmware puts I/O BARs; a machine without port I/O has no window. */
    bus->pio_next = pio ? 0xc000 : 0;
    bus->pio_end = pio ? 0x10000 : 0;
    pthread_mutex_init(&bus->lock, NULL);
    return 0;
}

void pci_bus_destroy(struct pci_bus *bus)
{
    pthread_mutex_destroy(&bus->lock);
}
