/*
 * PCI bus 0 and configuration mechanism #1 (src/hw/pci.c), driven the way
 * a guest drives it: dword writes to 0xCF8 and accesses to 0xCFC-0xCFF on a
 * real port I/O bus, BARs reached through the real MMIO/PIO buses.
 * PCI Local Bus 3.0: 3.2.2.3.2 (mechanism #1), 6.2.5.1 (BAR sizing).
 * The fixture's host bridge is the PC's (src/arch/x86/i440fx.c), so this
 * test is built for ARCH=x86 only.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/i440fx.h"
#include "hw/pci.h"
#include "hw/pci_ecam.h"
#include "vmm/io_bus.h"

#define MMIO32_BASE 0xc0000000ull
#define MMIO32_END 0xfec00000ull
#define MMIO64_BASE 0x1000000000ull
#define MMIO64_END 0x8000000000ull

struct move {
    int bar;
    uint64_t old_addr, new_addr;
};

/* A device with a 4 KiB MMIO BAR0, a 32-byte I/O BAR1, a 16 KiB 64-bit BAR2. */
struct tdev {
    struct pci_device pci;
    unsigned reads[PCI_NUM_BARS];
    uint64_t last_off[PCI_NUM_BARS];
    struct move moves[32];
    unsigned nr_moves;
    unsigned config_writes;
    int bar_tag[PCI_NUM_BARS];
};

struct fixture {
    struct io_bus mmio, pio;
    struct pci_bus pci;
    struct i440fx host;
    struct tdev dev;
    unsigned resets;
    uint8_t last_reset;
};

static void bar_read(void *opaque, uint64_t off, void *data, unsigned len)
{
    int *tag = opaque;
    /* Back from the tag to its device: tag i lives at bar_tag[i]. */
    struct tdev *d = (struct tdev *)((char *)(tag - *tag) - offsetof(struct tdev, bar_tag));
    d->reads[*tag]++;
    d->last_off[*tag] = off;
    uint64_t v = 0xb0 + (uint64_t)*tag;
    memcpy(data, &v, len);
}

static void bar_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
    (void)opaque, (void)off, (void)data, (void)len;
}

static const struct io_ops bar_ops = {.read = bar_read, .write = bar_write};

static void on_bar_moved(struct pci_device *pdev, int bar, uint64_t old_addr, uint64_t new_addr)
{
    struct tdev *d = pdev->opaque;
    if (d->nr_moves < 32)
        d->moves[d->nr_moves++] = (struct move){bar, old_addr, new_addr};
}

static void on_config_written(struct pci_device *pdev, unsigned offset, unsigned len)
{
    (void)offset, (void)len;
    struct tdev *d = pdev->opaque;
    d->config_writes++;
}

static const struct pci_device_ops tdev_ops = {.bar_moved = on_bar_moved,
                                               .config_written = on_config_written};

static void tdev_init(struct tdev *d)
{
    memset(d, 0, sizeof(*d));
    pci_device_init(&d->pci, 0x1af4, 0x1042, 0x010000, 0x1af4, 0x0002);
    d->pci.ops = &tdev_ops;
    d->pci.opaque = d;
    for (int i = 0; i < PCI_NUM_BARS; i++)
        d->bar_tag[i] = i;
    pci_device_set_bar(&d->pci, 0, 0x1000, false, false, &bar_ops, &d->bar_tag[0]);
    pci_device_set_bar(&d->pci, 1, 0x20, true, false, &bar_ops, &d->bar_tag[1]);
    pci_device_set_bar(&d->pci, 2, 0x4000, false, true, &bar_ops, &d->bar_tag[2]);
}

static void reset_ctl(void *opaque, uint8_t value)
{
    struct fixture *f = opaque;
    f->resets++;
    f->last_reset = value;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    io_bus_init(&f->mmio);
    io_bus_init(&f->pio);
    assert_int_equal(
        pci_bus_init(&f->pci, &f->mmio, &f->pio, MMIO32_BASE, MMIO32_END, MMIO64_BASE, MMIO64_END),
        0);
    assert_int_equal(i440fx_init(&f->host, &f->pci, &f->pio, reset_ctl, f), 0);
    tdev_init(&f->dev);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    i440fx_destroy(&f->host);
    pci_bus_destroy(&f->pci);
    io_bus_destroy(&f->mmio);
    io_bus_destroy(&f->pio);
    free(f);
    return 0;
}

static void cf8(struct fixture *f, bool enable, unsigned bus, unsigned devfn, unsigned reg)
{
    uint32_t v = (enable ? 0x80000000u : 0) | bus << 16 | devfn << 8 | reg;
    assert_true(io_bus_access(&f->pio, 0xcf8, &v, 4, true));
}

/* Config read of len bytes at offset through 0xCFC + (offset & 3). */
static uint32_t cfg_rd(struct fixture *f, unsigned devfn, unsigned offset, unsigned len)
{
    cf8(f, true, 0, devfn, offset & 0xfc);
    uint32_t v = 0;
    io_bus_access(&f->pio, 0xcfc + (offset & 3), &v, len, false);
    return v;
}

static void cfg_wr(struct fixture *f, unsigned devfn, unsigned offset, uint32_t value, unsigned len)
{
    cf8(f, true, 0, devfn, offset & 0xfc);
    io_bus_access(&f->pio, 0xcfc + (offset & 3), &value, len, true);
}

/* Whether addr on the MMIO (or PIO) bus reaches BAR bar of the test device. */
static bool reaches(struct fixture *f, bool pio, uint64_t addr, int bar)
{
    unsigned before = f->dev.reads[bar];
    uint32_t v = 0;
    bool hit = io_bus_access(pio ? &f->pio : &f->mmio, addr, &v, 4, false);
    return hit && f->dev.reads[bar] == before + 1 && v == 0xb0u + (unsigned)bar;
}

static uint64_t bar_addr(struct fixture *f, unsigned devfn, int bar)
{
    uint32_t lo = cfg_rd(f, devfn, PCI_BASE_ADDRESS_0 + 4 * bar, 4);
    if (lo & 1)
        return lo & ~3u;
    uint64_t a = lo & ~0xfu;
    if ((lo & 6) == 4)
        a |= (uint64_t)cfg_rd(f, devfn, PCI_BASE_ADDRESS_0 + 4 * bar + 4, 4) << 32;
    return a;
}

static void test_host_bridge_identity(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(cfg_rd(f, 0, PCI_VENDOR_ID, 4), 0x12378086);
    assert_int_equal(cfg_rd(f, 0, PCI_DEVICE_ID, 2), 0x1237);
    /* Class 06/00/00: bridge, host bridge, no programming interface. */
    assert_int_equal(cfg_rd(f, 0, PCI_REVISION_ID, 4) >> 8, 0x060000);
    assert_int_equal(cfg_rd(f, 0, 0x0b, 1), 0x06);
    assert_int_equal(cfg_rd(f, 0, 0x0a, 1), 0x00);
    assert_int_equal(cfg_rd(f, 0, PCI_CLASS_PROG, 1), 0x00);
    assert_int_equal(cfg_rd(f, 0, PCI_HEADER_TYPE, 1), 0x00);
    assert_ptr_equal(f->pci.devices[0], &f->host.host_bridge);
}

static void test_config_address_latch(void **state)
{
    struct fixture *f = *state;
    /* Reserved bits 30:24 and 1:0 are not kept. */
    uint32_t v = 0xff000813u;
    assert_true(io_bus_access(&f->pio, 0xcf8, &v, 4, true));
    v = 0;
    assert_true(io_bus_access(&f->pio, 0xcf8, &v, 4, false));
    assert_int_equal(v, 0x80000810u);
}

static void test_disabled_or_absent_reads_all_ones(void **state)
{
    struct fixture *f = *state;
    uint32_t v;
    cf8(f, false, 0, 0, 0);
    assert_true(io_bus_access(&f->pio, 0xcfc, &v, 4, false));
    assert_int_equal(v, 0xffffffffu);
    /* A write with the enable bit clear is no config cycle. */
    cf8(f, false, 0, 0, PCI_INTERRUPT_LINE);
    v = 0x5a;
    assert_true(io_bus_access(&f->pio, 0xcfc, &v, 1, true));
    assert_int_equal(cfg_rd(f, 0, PCI_INTERRUPT_LINE, 1), 0x00);
    /* Bus 1 has nothing, not even a host bridge. */
    cf8(f, true, 1, 0, 0);
    assert_true(io_bus_access(&f->pio, 0xcfc, &v, 4, false));
    assert_int_equal(v, 0xffffffffu);
    cf8(f, true, 1, 0, PCI_INTERRUPT_LINE);
    v = 0x77;
    io_bus_access(&f->pio, 0xcfc, &v, 1, true);
    assert_int_equal(cfg_rd(f, 0, PCI_INTERRUPT_LINE, 1), 0x00);
    /* An empty slot, and function 1 of the host bridge. */
    assert_int_equal(cfg_rd(f, 5 << 3, 0, 4), 0xffffffffu);
    assert_int_equal(cfg_rd(f, 1, 0, 2), 0xffff);
}

static void test_byte_word_and_unaligned_access(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(cfg_rd(f, 0, 0, 1), 0x86);
    assert_int_equal(cfg_rd(f, 0, 1, 1), 0x80);
    assert_int_equal(cfg_rd(f, 0, 2, 1), 0x37);
    assert_int_equal(cfg_rd(f, 0, 3, 1), 0x12);
    assert_int_equal(cfg_rd(f, 0, 2, 2), 0x1237);
    /* Word at 0xCFD: inside the window, bytes 1-2 of the dword. */
    assert_int_equal(cfg_rd(f, 0, 1, 2), 0x3780);
    /* Accesses running past 0xCFF are refused and read as all ones. */
    uint32_t v = 0;
    cf8(f, true, 0, 0, 0);
    assert_false(io_bus_access(&f->pio, 0xcff, &v, 2, false));
    assert_int_equal(v & 0xffff, 0xffff);
    assert_false(io_bus_access(&f->pio, 0xcfe, &v, 4, false));
    assert_int_equal(v, 0xffffffffu);
    /* The last dword of config space, byte by byte. */
    pci_set_u32(&f->host.host_bridge, 0xfc, 0x44332211);
    assert_int_equal(cfg_rd(f, 0, 0xfc, 4), 0x44332211);
    assert_int_equal(cfg_rd(f, 0, 0xff, 1), 0x44);
    assert_int_equal(cfg_rd(f, 0, 0xfe, 2), 0x4433);
}

static void test_write_masks(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(pci_register(&f->pci, &f->dev.pci, -1), 0);
    unsigned d = f->dev.pci.devfn;
    cfg_wr(f, d, PCI_VENDOR_ID, 0xffffffff, 4);
    assert_int_equal(cfg_rd(f, d, PCI_VENDOR_ID, 4), 0x10421af4);
    cfg_wr(f, d, PCI_REVISION_ID, 0xffffffff, 4);
    assert_int_equal(cfg_rd(f, d, PCI_REVISION_ID, 4), 0x01000000);
    /* Command: I/O, memory, bus master, INTx disable are writable. */
    cfg_wr(f, d, PCI_COMMAND, 0xffff, 2);
    assert_int_equal(cfg_rd(f, d, PCI_COMMAND, 2), 0x0407);
    /* Status is not writable through a dword write of the command register. */
    cfg_wr(f, d, PCI_COMMAND, 0xffff0003, 4);
    assert_int_equal(cfg_rd(f, d, PCI_COMMAND, 4), 0x00000003);
    /* Interrupt line is, interrupt pin is not. */
    cfg_wr(f, d, PCI_INTERRUPT_LINE, 0xffff, 2);
    assert_int_equal(cfg_rd(f, d, PCI_INTERRUPT_LINE, 2), 0x00ff);
    cfg_wr(f, d, PCI_INTERRUPT_LINE, 0x0b, 1);
    assert_int_equal(cfg_rd(f, d, PCI_INTERRUPT_LINE, 1), 0x0b);
    /* Unused BARs stay zero. */
    cfg_wr(f, d, PCI_BASE_ADDRESS_0 + 16, 0xffffffff, 4);
    assert_int_equal(cfg_rd(f, d, PCI_BASE_ADDRESS_0 + 16, 4), 0);
    cfg_wr(f, d, PCI_BASE_ADDRESS_0 + 20, 0xffffffff, 4);
    assert_int_equal(cfg_rd(f, d, PCI_BASE_ADDRESS_0 + 20, 4), 0);
    assert_true(f->dev.config_writes >= 8);
}

static void test_register_maps_bars(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(pci_register(&f->pci, &f->dev.pci, -1), 0);
    unsigned d = f->dev.pci.devfn;
    assert_int_equal(cfg_rd(f, d, PCI_COMMAND, 2) & 3, 3);
    uint64_t b0 = bar_addr(f, d, 0), b1 = bar_addr(f, d, 1), b2 = bar_addr(f, d, 2);
    assert_true(b0 >= MMIO32_BASE && b0 + 0x1000 <= MMIO32_END);
    assert_int_equal(b0 & 0xfff, 0);
    assert_true(b1 >= 0xc000 && b1 + 0x20 <= 0x10000);
    assert_int_equal(b1 & 0x1f, 0);
    assert_true(b2 >= MMIO32_BASE && b2 + 0x4000 <= MMIO64_END);
    assert_int_equal(b2 & 0x3fff, 0);
    /* BAR type bits. */
    assert_int_equal(cfg_rd(f, d, PCI_BASE_ADDRESS_0, 4) & 0xf, 0x0);
    assert_int_equal(cfg_rd(f, d, PCI_BASE_ADDRESS_0 + 4, 4) & 0x3, 0x1);
    assert_int_equal(cfg_rd(f, d, PCI_BASE_ADDRESS_0 + 8, 4) & 0xf, 0x4);
    assert_true(reaches(f, false, b0, 0));
    assert_true(reaches(f, false, b0 + 0xffc, 0));
    assert_int_equal(f->dev.last_off[0], 0xffc);
    assert_true(reaches(f, true, b1 + 0x1c, 1));
    assert_true(reaches(f, false, b2 + 0x3ffc, 2));
    assert_false(reaches(f, false, b0 + 0x1000, 0));
    /* bar_moved told the device about each initial placement. */
    assert_int_equal(f->dev.nr_moves, 3);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(f->dev.moves[i].old_addr, 0);
}

static void test_bar_sizing(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(pci_register(&f->pci, &f->dev.pci, -1), 0);
    unsigned d = f->dev.pci.devfn;
    uint32_t saved[PCI_NUM_BARS];
    for (int i = 0; i < PCI_NUM_BARS; i++)
        saved[i] = cfg_rd(f, d, PCI_BASE_ADDRESS_0 + 4 * i, 4);
    /* As Linux does: decode off while sizing. */
    cfg_wr(f, d, PCI_COMMAND, 0, 2);
    for (int i = 0; i < PCI_NUM_BARS; i++)
        cfg_wr(f, d, PCI_BASE_ADDRESS_0 + 4 * i, 0xffffffff, 4);
    assert_int_equal(cfg_rd(f, d, PCI_BASE_ADDRESS_0, 4), 0xfffff000u);      /* 4 KiB mem32 */
    assert_int_equal(cfg_rd(f, d, PCI_BASE_ADDRESS_0 + 4, 4), 0xffffffe1u);  /* 32 B I/O */
    assert_int_equal(cfg_rd(f, d, PCI_BASE_ADDRESS_0 + 8, 4), 0xffffc004u);  /* 16 KiB mem64 */
    assert_int_equal(cfg_rd(f, d, PCI_BASE_ADDRESS_0 + 12, 4), 0xffffffffu); /* its upper half */
    assert_int_equal(cfg_rd(f, d, PCI_BASE_ADDRESS_0 + 16, 4), 0);
    /* Nothing was mapped at the sizing pattern. */
    assert_int_equal(f->mmio.nr, 0);
    assert_int_equal(f->pio.nr, 2); /* 0xCF8 and 0xCFC only */
    for (int i = 0; i < PCI_NUM_BARS; i++)
        cfg_wr(f, d, PCI_BASE_ADDRESS_0 + 4 * i, saved[i], 4);
    for (int i = 0; i < PCI_NUM_BARS; i++)
        assert_int_equal(cfg_rd(f, d, PCI_BASE_ADDRESS_0 + 4 * i, 4), saved[i]);
    cfg_wr(f, d, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY, 2);
    assert_true(reaches(f, false, bar_addr(f, d, 0), 0));
    assert_true(reaches(f, true, bar_addr(f, d, 1), 1));
    assert_true(reaches(f, false, bar_addr(f, d, 2), 2));
    /* Sizing a 64-bit BAR larger than 4 GiB: the upper half carries the mask. */
    struct tdev big;
    memset(&big, 0, sizeof(big));
    pci_device_init(&big.pci, 0x1234, 0x5678, 0xff0000, 0, 0);
    pci_device_set_bar(&big.pci, 0, 1ull << 33, false, true, &bar_ops, &big.bar_tag[0]);
    pci_config_write(&big.pci, PCI_BASE_ADDRESS_0, 0xffffffff, 4);
    pci_config_write(&big.pci, PCI_BASE_ADDRESS_0 + 4, 0xffffffff, 4);
    assert_int_equal(pci_config_read(&big.pci, PCI_BASE_ADDRESS_0, 4), 0x00000004u);
    assert_int_equal(pci_config_read(&big.pci, PCI_BASE_ADDRESS_0 + 4, 4), 0xfffffffeu);
}

static bool moved(const struct tdev *d, int bar, uint64_t old_addr, uint64_t new_addr)
{
    for (unsigned i = 0; i < d->nr_moves; i++)
        if (d->moves[i].bar == bar && d->moves[i].old_addr == old_addr &&
            d->moves[i].new_addr == new_addr)
            return true;
    return false;
}

static void test_bar_moves_remap(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(pci_register(&f->pci, &f->dev.pci, -1), 0);
    unsigned d = f->dev.pci.devfn;
    uint64_t b0 = bar_addr(f, d, 0), b1 = bar_addr(f, d, 1), b2 = bar_addr(f, d, 2);
    f->dev.nr_moves = 0;

    cfg_wr(f, d, PCI_BASE_ADDRESS_0, 0xd0000000, 4);
    assert_int_equal(bar_addr(f, d, 0), 0xd0000000);
    assert_false(reaches(f, false, b0, 0));
    assert_true(reaches(f, false, 0xd0000010, 0));
    assert_int_equal(f->dev.last_off[0], 0x10);
    assert_int_equal(f->dev.nr_moves, 1);
    assert_true(moved(&f->dev, 0, b0, 0xd0000000));

    cfg_wr(f, d, PCI_BASE_ADDRESS_0 + 4, 0xe000, 4);
    assert_false(reaches(f, true, b1, 1));
    assert_true(reaches(f, true, 0xe004, 1));
    assert_true(moved(&f->dev, 1, b1, 0xe000));

    /* 64-bit BAR above 4 GiB: low half first, then high half. */
    cfg_wr(f, d, PCI_BASE_ADDRESS_0 + 8, 0x00004000, 4);
    cfg_wr(f, d, PCI_BASE_ADDRESS_0 + 12, 0x20, 4);
    assert_int_equal(bar_addr(f, d, 2), 0x2000004000ull);
    assert_false(reaches(f, false, b2, 2));
    assert_true(reaches(f, false, 0x2000004000ull + 0x3ffc, 2));
    struct move last = f->dev.moves[f->dev.nr_moves - 1];
    assert_int_equal(last.bar, 2);
    assert_int_equal(last.new_addr, 0x2000004000ull);
    /* Every move the device was told about chains from the previous one. */
    uint64_t at = b2;
    for (unsigned i = 0; i < f->dev.nr_moves; i++) {
        if (f->dev.moves[i].bar != 2)
            continue;
        assert_int_equal(f->dev.moves[i].old_addr, at);
        at = f->dev.moves[i].new_addr;
    }
    assert_int_equal(at, 0x2000004000ull);

    /* Onto another BAR's range: cannot be mapped, the device hears "unmapped". */
    cfg_wr(f, d, PCI_BASE_ADDRESS_0, 0xd0000000, 4);
    assert_true(reaches(f, false, 0xd0000000, 0));
    cfg_wr(f, d, PCI_BASE_ADDRESS_0 + 12, 0, 4);
    cfg_wr(f, d, PCI_BASE_ADDRESS_0 + 8, 0xd0000000, 4);
    assert_true(reaches(f, false, 0xd0000000, 0));
    assert_false(f->dev.pci.bars[2].mapped);
    last = f->dev.moves[f->dev.nr_moves - 1];
    assert_int_equal(last.bar, 2);
    assert_int_equal(last.new_addr, 0);
    /* Moved out of the way, it maps again. */
    cfg_wr(f, d, PCI_BASE_ADDRESS_0 + 8, 0xd0010000, 4);
    assert_true(reaches(f, false, 0xd0010000, 2));
    assert_true(moved(&f->dev, 2, 0, 0xd0010000));
    /* An address of 0 means unassigned. */
    cfg_wr(f, d, PCI_BASE_ADDRESS_0, 0, 4);
    assert_false(reaches(f, false, 0xd0000000, 0));
    assert_true(moved(&f->dev, 0, 0xd0000000, 0));
}

/*
 * x86 port addresses are 16 bits: an I/O BAR programmed at or above 64 KiB
 * matches no port access and must not be decoded at its low 16 bits.
 */
static void test_io_bar_above_64k_not_decoded(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(pci_register(&f->pci, &f->dev.pci, -1), 0);
    unsigned d = f->dev.pci.devfn;
    uint64_t b1 = bar_addr(f, d, 1);
    cfg_wr(f, d, PCI_BASE_ADDRESS_0 + 4, 0x1e000, 4);
    assert_int_equal(cfg_rd(f, d, PCI_BASE_ADDRESS_0 + 4, 4), 0x1e001);
    assert_false(reaches(f, true, 0xe000, 1));
    assert_false(reaches(f, true, b1, 1));
    assert_false(f->dev.pci.bars[1].mapped);
    assert_true(moved(&f->dev, 1, b1, 0));
    /* Sizing with I/O decode left on maps nothing either. */
    cfg_wr(f, d, PCI_BASE_ADDRESS_0 + 4, 0xffffffff, 4);
    assert_int_equal(cfg_rd(f, d, PCI_BASE_ADDRESS_0 + 4, 4), 0xffffffe1u);
    assert_false(reaches(f, true, 0xffe0, 1));
    assert_int_equal(f->pio.nr, 2);
    /* Back below 64 KiB it decodes again. */
    cfg_wr(f, d, PCI_BASE_ADDRESS_0 + 4, 0xffe0, 4);
    assert_true(reaches(f, true, 0xffe0, 1));
    assert_true(moved(&f->dev, 1, 0, 0xffe0));
}

static void test_command_register_decode(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(pci_register(&f->pci, &f->dev.pci, -1), 0);
    unsigned d = f->dev.pci.devfn;
    uint64_t b0 = bar_addr(f, d, 0), b1 = bar_addr(f, d, 1), b2 = bar_addr(f, d, 2);
    f->dev.nr_moves = 0;
    /* Memory decode off: both memory BARs go, the I/O BAR stays. */
    cfg_wr(f, d, PCI_COMMAND, PCI_COMMAND_IO, 2);
    assert_false(reaches(f, false, b0, 0));
    assert_false(reaches(f, false, b2, 2));
    assert_true(reaches(f, true, b1, 1));
    assert_int_equal(f->dev.nr_moves, 2);
    assert_true(moved(&f->dev, 0, b0, 0));
    assert_true(moved(&f->dev, 2, b2, 0));
    /* The BARs keep their programmed addresses. */
    assert_int_equal(bar_addr(f, d, 0), b0);
    /* I/O off too, via a byte write. */
    cfg_wr(f, d, PCI_COMMAND, 0, 1);
    assert_false(reaches(f, true, b1, 1));
    assert_true(moved(&f->dev, 1, b1, 0));
    assert_int_equal(f->mmio.nr, 0);
    /* Back on: everything where it was. */
    cfg_wr(f, d, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
    assert_true(reaches(f, false, b0, 0));
    assert_true(reaches(f, true, b1, 1));
    assert_true(reaches(f, false, b2, 2));
    assert_true(moved(&f->dev, 0, 0, b0));
    assert_int_equal(f->dev.nr_moves, 6);
    /* Rewriting the same command value moves nothing. */
    cfg_wr(f, d, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
    assert_int_equal(f->dev.nr_moves, 6);
}

static void test_capability_chain(void **state)
{
    struct fixture *f = *state;
    struct pci_device *p = &f->dev.pci;
    assert_int_equal(pci_add_cap(p, PCI_CAP_ID_VNDR, 1), -ENOSPC);
    int a = pci_add_cap(p, PCI_CAP_ID_VNDR, 5);
    int b = pci_add_cap(p, PCI_CAP_ID_MSIX, 12);
    assert_int_equal(a, 0x40);
    assert_int_equal(b, 0x48); /* dword aligned after 0x45 */
    assert_int_equal(pci_register(&f->pci, p, -1), 0);
    unsigned d = p->devfn;
    assert_true(cfg_rd(f, d, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
    /* Walk the list as a guest does. */
    unsigned seen[4], n = 0;
    for (unsigned off = cfg_rd(f, d, PCI_CAPABILITY_LIST, 1); off && n < 4;
         off = cfg_rd(f, d, off + 1, 1)) {
        assert_int_equal(off & 3, 0);
        assert_true(off >= 0x40);
        seen[n++] = cfg_rd(f, d, off, 1);
    }
    assert_int_equal(n, 2);
    assert_int_equal(seen[0] + seen[1], PCI_CAP_ID_VNDR + PCI_CAP_ID_MSIX);
    assert_int_not_equal(seen[0], seen[1]);
    /* Fill config space: the last one may end exactly at 256, nothing after. */
    int c = pci_add_cap(p, PCI_CAP_ID_VNDR, 0x100 - 0x54);
    assert_int_equal(c, 0x54);
    assert_int_equal(pci_add_cap(p, PCI_CAP_ID_VNDR, 2), -ENOSPC);
    assert_int_equal(cfg_rd(f, d, PCI_CAPABILITY_LIST, 1), 0x54);
    /* Without capabilities the status bit is clear. */
    assert_false(cfg_rd(f, 0, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
}

static void test_register_placement(void **state)
{
    struct fixture *f = *state;
    static struct pci_device devs[40];
    for (int i = 0; i < 40; i++)
        pci_device_init(&devs[i], 0x1af4, 0x1000 + i, 0xff0000, 0, 0);
    assert_int_equal(pci_register(&f->pci, &devs[0], -1), 0);
    assert_int_equal(devs[0].devfn, 1 << 3);
    assert_int_equal(pci_register(&f->pci, &devs[1], 3 << 3), 0);
    assert_int_equal(devs[1].devfn, 3 << 3);
    /* First free slot, not after the highest used one. */
    assert_int_equal(pci_register(&f->pci, &devs[2], -1), 0);
    assert_int_equal(devs[2].devfn, 2 << 3);
    assert_int_equal(pci_register(&f->pci, &devs[3], 3 << 3), -EEXIST);
    assert_int_equal(pci_register(&f->pci, &devs[3], 0), -EEXIST); /* the host bridge */
    assert_int_equal(pci_register(&f->pci, &devs[3], PCI_MAX_DEVFN), -EEXIST);
    /* A function other than 0. */
    assert_int_equal(pci_register(&f->pci, &devs[3], 3 << 3 | 2), 0);
    assert_int_equal(cfg_rd(f, 3 << 3 | 2, PCI_DEVICE_ID, 2), 0x1003);
    assert_int_equal(cfg_rd(f, 3 << 3 | 1, PCI_DEVICE_ID, 2), 0xffff);
    /* Fill slots 4..31, then there is no room. */
    for (int i = 4; i < 32; i++)
        assert_int_equal(pci_register(&f->pci, &devs[i], -1), 0);
    assert_int_equal(devs[31].devfn, 31 << 3);
    assert_int_equal(pci_register(&f->pci, &devs[32], -1), -ENOSPC);
    /* Unregistering frees the slot for the next one. */
    pci_unregister(&f->pci, &devs[2]);
    assert_int_equal(cfg_rd(f, 2 << 3, 0, 4), 0xffffffffu);
    assert_int_equal(pci_register(&f->pci, &devs[32], -1), 0);
    assert_int_equal(devs[32].devfn, 2 << 3);
    assert_int_equal(cfg_rd(f, 2 << 3, PCI_DEVICE_ID, 2), 0x1020);
}

static void test_unregister_unmaps(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(pci_register(&f->pci, &f->dev.pci, 7 << 3), 0);
    unsigned d = 7 << 3;
    uint64_t b0 = bar_addr(f, d, 0), b1 = bar_addr(f, d, 1);
    pci_unregister(&f->pci, &f->dev.pci);
    assert_false(reaches(f, false, b0, 0));
    assert_false(reaches(f, true, b1, 1));
    assert_int_equal(f->mmio.nr, 0);
    assert_int_equal(cfg_rd(f, d, 0, 4), 0xffffffffu);
    assert_true(moved(&f->dev, 0, b0, 0));
}

static void test_bar_window_exhausted(void **state)
{
    struct fixture *f = *state;
    struct pci_bus small;
    struct io_bus mmio, pio;
    io_bus_init(&mmio);
    io_bus_init(&pio);
    assert_int_equal(pci_bus_init(&small, &mmio, &pio, 0xc0000000, 0xc0002000, 0, 0), 0);
    /* BAR0 and BAR2 (16 KiB) do not both fit in 8 KiB. */
    assert_int_equal(pci_register(&small, &f->dev.pci, -1), -ENOSPC);
    assert_null(small.devices[1 << 3]);
    pci_bus_destroy(&small);
    io_bus_destroy(&mmio);
    io_bus_destroy(&pio);
}

static void test_reset_control_port(void **state)
{
    struct fixture *f = *state;
    uint8_t v = 0x06;
    assert_true(io_bus_access(&f->pio, 0xcf9, &v, 1, true));
    assert_int_equal(f->resets, 1);
    assert_int_equal(f->last_reset, 0x06);
    /* Not a byte write to 0xCF9: no reset. */
    uint16_t w = 0x0606;
    io_bus_access(&f->pio, 0xcf9, &w, 2, true);
    assert_int_equal(f->resets, 1);
}

static void test_config_accessors_bounds(void **state)
{
    struct fixture *f = *state;
    struct pci_device *p = &f->dev.pci;
    assert_int_equal(pci_config_read(p, 0xff, 2), 0xffffffffu);
    assert_int_equal(pci_config_read(p, 0x100, 1), 0xffffffffu);
    assert_int_equal(pci_config_read(p, 0, 0), 0xffffffffu);
    assert_int_equal(pci_config_read(p, 0, 8), 0xffffffffu);
    assert_int_equal(pci_config_read(p, UINT32_MAX, 4), 0xffffffffu);
    p->wmask[0xff] = 0xff;
    pci_config_write(p, 0xff, 0xabcd, 2);
    assert_int_equal(p->config[0xff], 0);
    pci_config_write(p, 0xff, 0xab, 1);
    assert_int_equal(p->config[0xff], 0xab);
}

/* ECAM reaches the same bus as mechanism #1: bus << 20 | devfn << 12 | reg. */
static void test_ecam_reaches_the_same_bus(void **state)
{
    struct fixture *f = *state;
    const uint64_t base = 0x10000000;
    struct pci_ecam e;
    assert_int_equal(pci_ecam_init(&e, &f->pci, &f->mmio, base + 4096, 1), -EINVAL);
    assert_int_equal(pci_ecam_init(&e, &f->pci, &f->mmio, base, 0), -EINVAL);
    assert_int_equal(pci_ecam_init(&e, &f->pci, &f->mmio, base, 1), 0);
    assert_int_equal(pci_register(&f->pci, &f->dev.pci, -1), 0);
    unsigned devfn = f->dev.pci.devfn;
    uint64_t fn = base + ((uint64_t)devfn << 12);
    uint32_t v = 0;
    assert_true(io_bus_access(&f->mmio, base, &v, 4, false));
    assert_int_equal(v, 0x12378086); /* the host bridge at 00.0 */
    assert_true(io_bus_access(&f->mmio, fn, &v, 4, false));
    assert_int_equal(v, cfg_rd(f, devfn, 0, 4));
    /* A write lands in the device's config space, seen through 0xCFC too. */
    v = 0x5a;
    assert_true(io_bus_access(&f->mmio, fn + PCI_INTERRUPT_LINE, &v, 1, true));
    assert_int_equal(cfg_rd(f, devfn, PCI_INTERRUPT_LINE, 1), 0x5a);
    uint16_t w = 0;
    assert_true(io_bus_access(&f->mmio, fn + 2, &w, 2, false));
    assert_int_equal(w, cfg_rd(f, devfn, 2, 2));
    /* Extended space, misaligned accesses and empty slots read as ones. */
    assert_true(io_bus_access(&f->mmio, fn + 0x100, &v, 4, false));
    assert_int_equal(v, 0xffffffffu);
    assert_true(io_bus_access(&f->mmio, fn + 2, &v, 4, false));
    assert_int_equal(v, 0xffffffffu);
    assert_true(io_bus_access(&f->mmio, base + (31ull << 15), &v, 4, false));
    assert_int_equal(v, 0xffffffffu);
    /* One bus claimed: bus 1 is outside the window. */
    assert_false(io_bus_access(&f->mmio, base + PCI_ECAM_BUS_SIZE, &v, 4, false));
    pci_unregister(&f->pci, &f->dev.pci);
    pci_ecam_destroy(&e);
    assert_false(io_bus_access(&f->mmio, base, &v, 4, false));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_host_bridge_identity),
        T(test_ecam_reaches_the_same_bus),
        T(test_config_address_latch),
        T(test_disabled_or_absent_reads_all_ones),
        T(test_byte_word_and_unaligned_access),
        T(test_write_masks),
        T(test_register_maps_bars),
        T(test_bar_sizing),
        T(test_bar_moves_remap),
        T(test_io_bar_above_64k_not_decoded),
        T(test_command_register_decode),
        T(test_capability_chain),
        T(test_register_placement),
        T(test_unregister_unmaps),
        T(test_bar_window_exhausted),
        T(test_reset_control_port),
        T(test_config_accessors_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
