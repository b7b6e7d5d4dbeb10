/* fw_cfg through its ports and the DMA interface, with hostile descriptors. */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hw/fw_cfg.h"
#include "vmm/io_bus.h"
#include "support/fake_guest_mem.h"

#define RAM_SIZE (1u << 20)
#define HIGH_GPA 0x100000000ull
#define HIGH_SIZE 0x10000u

struct fixture {
    struct guest_mem gm;
    struct fw_cfg *fw;
};

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    assert_int_equal(fake_guest_mem_init(&f.gm, 0, RAM_SIZE), 0);
    assert_int_equal(fake_guest_mem_add(&f.gm, HIGH_GPA, HIGH_SIZE), 0);
    f.fw = fw_cfg_create(&f.gm);
    assert_non_null(f.fw);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    fw_cfg_destroy(f->fw);
    fake_guest_mem_free(&f->gm);
    return 0;
}

static void sel(struct fixture *f, uint16_t key)
{
    uint16_t le = htole16(key);
    fw_cfg_io_ops.write(f->fw, 0, &le, 2);
}

static void rd(struct fixture *f, void *buf, size_t n)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++)
        fw_cfg_io_ops.read(f->fw, 1, &p[i], 1);
}

static uint8_t *ram(struct fixture *f, uint64_t gpa)
{
    return gm_ptr(&f->gm, gpa, 1);
}

/* Put a descriptor at gpa and start it the way OVMF does: high half, then low. */
static uint32_t dma(struct fixture *f, uint64_t desc, uint32_t control, uint32_t len, uint64_t addr)
{
    uint32_t be_ctl = htobe32(control), be_len = htobe32(len);
    uint64_t be_addr = htobe64(addr);
    uint8_t *d = gm_ptr(&f->gm, desc, 16);
    if (d) {
        memcpy(d, &be_ctl, 4);
        memcpy(d + 4, &be_len, 4);
        memcpy(d + 8, &be_addr, 8);
    }
    uint32_t hi = htobe32((uint32_t)(desc >> 32)), lo = htobe32((uint32_t)desc);
    fw_cfg_dma_ops.write(f->fw, 0, &hi, 4);
    fw_cfg_dma_ops.write(f->fw, 4, &lo, 4);
    uint32_t out = 0xdeadbeef;
    if (d) {
        memcpy(&out, d, 4);
        out = be32toh(out);
    }
    return out;
}

static void test_signature_and_id(void **state)
{
    struct fixture *f = *state;
    char sig[5] = {0};
    sel(f, FW_CFG_SIGNATURE);
    rd(f, sig, 4);
    assert_string_equal(sig, "QEMU");
    uint8_t past;
    rd(f, &past, 1);
    assert_int_equal(past, 0);

    uint32_t id;
    sel(f, FW_CFG_ID);
    rd(f, &id, 4);
    assert_int_equal(le32toh(id), FW_CFG_VERSION | FW_CFG_VERSION_DMA);

    /* Reselecting starts over. */
    sel(f, FW_CFG_SIGNATURE);
    rd(f, sig, 2);
    assert_memory_equal(sig, "QE", 2);

    /* The DMA register reads back "QEMU CFG". */
    uint8_t dsig[8];
    fw_cfg_dma_ops.read(f->fw, 0, dsig, 8);
    assert_memory_equal(dsig, "QEMU CFG", 8);
}

static void test_integers_little_endian(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(fw_cfg_add_u16(f->fw, FW_CFG_NB_CPUS, 3), 0);
    assert_int_equal(fw_cfg_add_u64(f->fw, FW_CFG_RAM_SIZE, 0x123456789ull), 0);
    uint8_t b[8];
    sel(f, FW_CFG_NB_CPUS);
    rd(f, b, 2);
    assert_int_equal(b[0], 3);
    assert_int_equal(b[1], 0);
    sel(f, FW_CFG_RAM_SIZE);
    rd(f, b, 8);
    assert_int_equal(b[0], 0x89);
    assert_int_equal(b[4], 0x01);

    /* Unknown and out-of-range keys read as zero. */
    sel(f, 0x1f);
    rd(f, b, 1);
    assert_int_equal(b[0], 0);
    sel(f, 0x3000);
    rd(f, b, 1);
    assert_int_equal(b[0], 0);

    /* Arch-local items live apart from the generic ones. */
    assert_int_equal(fw_cfg_add_u32(f->fw, FW_CFG_ARCH_LOCAL | 3, 0xabcd), 0);
    sel(f, FW_CFG_ARCH_LOCAL | 3);
    rd(f, b, 4);
    assert_int_equal(b[0], 0xcd);
    sel(f, 3);
    rd(f, b, 1);
    assert_int_equal(b[0], 0x89);

    assert_int_equal(fw_cfg_add_u16(f->fw, FW_CFG_FILE_FIRST, 1), -EINVAL);
    assert_int_equal(fw_cfg_add_u16(f->fw, FW_CFG_FILE_DIR, 1), -EINVAL);
}

static void test_file_directory_sorted(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(fw_cfg_add_file(f->fw, "etc/table-loader", "LLLL", 4), 0);
    assert_int_equal(fw_cfg_add_file(f->fw, "bootorder", "", 0), 0);
    assert_int_equal(fw_cfg_add_file(f->fw, "etc/acpi/rsdp", "RSDP-data", 9), 0);
    assert_int_equal(fw_cfg_add_file(f->fw, "etc/e820", "e", 1), 0);
    assert_int_equal(fw_cfg_add_file(f->fw, "etc/e820", "x", 1), -EEXIST);
    char longname[FW_CFG_MAX_NAME + 1];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[FW_CFG_MAX_NAME] = 0;
    assert_int_equal(fw_cfg_add_file(f->fw, longname, "", 0), -ENAMETOOLONG);
    longname[FW_CFG_MAX_NAME - 1] = 0; /* 55 characters fit */
    assert_int_equal(fw_cfg_add_file(f->fw, longname, "L", 1), 0);

    const char *want[] = {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bootorder",
                          "etc/acpi/rsdp", "etc/e820", "etc/table-loader"};
    const uint32_t sizes[] = {1, 0, 9, 1, 4};
    uint32_t count;
    sel(f, FW_CFG_FILE_DIR);
    rd(f, &count, 4);
    assert_int_equal(be32toh(count), 5);
    for (unsigned i = 0; i < 5; i++) {
        uint8_t e[64];
        rd(f, e, 64);
        uint32_t size;
        uint16_t key;
        memcpy(&size, e, 4);
        memcpy(&key, e + 4, 2);
        assert_int_equal(be32toh(size), sizes[i]);
        assert_int_equal(be16toh(key), FW_CFG_FILE_FIRST + i);
        assert_string_equal((char *)e + 8, want[i]);
        assert_int_equal(fw_cfg_file_key(f->fw, want[i]), FW_CFG_FILE_FIRST + i);
    }
    assert_int_equal(fw_cfg_file_key(f->fw, "nope"), -ENOENT);

    /* A file's data under its key, zeros after its end. */
    char buf[12] = {0};
    sel(f, (uint16_t)fw_cfg_file_key(f->fw, "etc/acpi/rsdp"));
    rd(f, buf, 11);
    assert_memory_equal(buf, "RSDP-data\0\0", 11);

    assert_int_equal(fw_cfg_modify_file(f->fw, "etc/e820", "12345", 5), 0);
    sel(f, FW_CFG_FILE_DIR);
    uint8_t hdr[4 + 64 * 4];
    rd(f, hdr, sizeof(hdr));
    uint32_t size;
    memcpy(&size, hdr + 4 + 64 * 3, 4);
    assert_int_equal(be32toh(size), 5);
    assert_int_equal(fw_cfg_modify_file(f->fw, "etc/none", "", 0), -ENOENT);
}

static void test_dma_read_skip_select(void **state)
{
    struct fixture *f = *state;
    uint8_t blob[300];
    for (unsigned i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)i;
    assert_int_equal(fw_cfg_add_file(f->fw, "etc/blob", blob, sizeof(blob)), 0);
    uint16_t key = (uint16_t)fw_cfg_file_key(f->fw, "etc/blob");

    memset(ram(f, 0x2000), 0xee, 512);
    uint32_t st = dma(f, 0x1000, (uint32_t)key << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ,
                      10, 0x2000);
    assert_int_equal(st, 0);
    assert_memory_equal(ram(f, 0x2000), blob, 10);
    assert_int_equal(ram(f, 0x2000)[10], 0xee);

    /* Skip continues from the current offset, then read goes on from there. */
    assert_int_equal(dma(f, 0x1000, FW_CFG_DMA_CTL_SKIP, 90, 0), 0);
    assert_int_equal(dma(f, 0x1000, FW_CFG_DMA_CTL_READ, 4, 0x2000), 0);
    assert_memory_equal(ram(f, 0x2000), blob + 100, 4);

    /* Past the end: data up to the end, zeros after, no error. */
    memset(ram(f, 0x2000), 0xee, 512);
    assert_int_equal(dma(f, 0x1000, FW_CFG_DMA_CTL_READ, 300, 0x2000), 0);
    assert_memory_equal(ram(f, 0x2000), blob + 104, 196);
    for (unsigned i = 196; i < 300; i++)
        assert_int_equal(ram(f, 0x2000)[i], 0);

    /* A descriptor with no operation bit transfers nothing and succeeds. */
    memset(ram(f, 0x2000), 0xee, 16);
    assert_int_equal(dma(f, 0x1000, (uint32_t)key << 16 | FW_CFG_DMA_CTL_SELECT, 16, 0x2000), 0);
    assert_int_equal(ram(f, 0x2000)[0], 0xee);

    /* Unaligned descriptor and buffer, in high RAM, one 64-bit trigger. */
    uint64_t desc = HIGH_GPA + 0x101;
    uint32_t ctl = htobe32((uint32_t)key << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ);
    uint32_t len = htobe32(3);
    uint64_t addr = htobe64(HIGH_GPA + 0x203);
    uint8_t *d = ram(f, desc);
    memcpy(d, &ctl, 4);
    memcpy(d + 4, &len, 4);
    memcpy(d + 8, &addr, 8);
    uint64_t trig = htobe64(desc);
    fw_cfg_dma_ops.write(f->fw, 0, &trig, 8);
    assert_memory_equal(ram(f, HIGH_GPA + 0x203), blob, 3);
    assert_int_equal(d[3], 0);
}

static void test_dma_hostile(void **state)
{
    struct fixture *f = *state;
    uint8_t blob[64];
    memset(blob, 0x5a, sizeof(blob));
    assert_int_equal(fw_cfg_add_file(f->fw, "etc/blob", blob, sizeof(blob)), 0);
    uint32_t key = (uint32_t)fw_cfg_file_key(f->fw, "etc/blob");
    uint32_t rd_sel = key << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ;

    /* Buffer outside RAM: in the hole, far above, wrapping around. */
    assert_int_equal(dma(f, 0x1000, rd_sel, 16, RAM_SIZE + 0x1000) & FW_CFG_DMA_CTL_ERROR, 1);
    assert_int_equal(dma(f, 0x1000, rd_sel, 16, 0xfffffffffffffff8ull) & FW_CFG_DMA_CTL_ERROR, 1);
    /* Buffer straddling the end of a region. */
    memset(ram(f, RAM_SIZE - 8), 0x11, 8);
    assert_int_equal(dma(f, 0x1000, rd_sel, 16, RAM_SIZE - 8) & FW_CFG_DMA_CTL_ERROR, 1);
    assert_int_equal(ram(f, RAM_SIZE - 8)[0], 0x11);
    /* Huge length past the item: zero fill must still be bounded by RAM. */
    assert_int_equal(dma(f, 0x1000, rd_sel, 0xffffffffu, 0x3000) & FW_CFG_DMA_CTL_ERROR, 1);
    assert_memory_equal(ram(f, 0x3000), blob, 64); /* the item part was copied first */
    /* Same with nothing selected: the zero fill fails as a whole. */
    memset(ram(f, 0x3000), 0x77, 16);
    assert_int_equal(dma(f, 0x1000, 0x7777u << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ,
                         0xffffffffu, 0x3000) &
                         FW_CFG_DMA_CTL_ERROR,
                     1);
    assert_int_equal(ram(f, 0x3000)[0], 0x77);

    /* Descriptor itself outside RAM or straddling: ignored, nothing breaks. */
    assert_int_equal(dma(f, RAM_SIZE + 0x100, rd_sel, 16, 0x2000), 0xdeadbeef);
    memset(ram(f, 0x2000), 0, 16);
    uint8_t *tail = ram(f, RAM_SIZE - 8);
    uint32_t be = htobe32(rd_sel), be_len = htobe32(16);
    memcpy(tail, &be, 4);
    memcpy(tail + 4, &be_len, 4);
    uint32_t lo = htobe32(RAM_SIZE - 8), hi = 0;
    fw_cfg_dma_ops.write(f->fw, 0, &hi, 4);
    fw_cfg_dma_ops.write(f->fw, 4, &lo, 4);
    assert_memory_equal(tail, &be, 4); /* untouched */
    assert_int_equal(ram(f, 0x2000)[0], 0);

    /* Writes: read-only item refused, writable item only as a whole fit. */
    memset(ram(f, 0x2000), 0x99, 64);
    uint32_t wr_sel = key << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_WRITE;
    assert_int_equal(dma(f, 0x1000, wr_sel, 4, 0x2000) & FW_CFG_DMA_CTL_ERROR, 1);
    sel(f, (uint16_t)key);
    uint8_t b;
    rd(f, &b, 1);
    assert_int_equal(b, 0x5a);

    uint8_t init[8] = {0};
    assert_int_equal(fw_cfg_add_file_writable(f->fw, "etc/w", init, sizeof(init)), 0);
    uint32_t wkey = (uint32_t)fw_cfg_file_key(f->fw, "etc/w");
    uint32_t w_sel = wkey << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_WRITE;
    assert_int_equal(dma(f, 0x1000, w_sel, 4, 0x2000), 0);
    assert_int_equal(dma(f, 0x1000, w_sel, 9, 0x2000) & FW_CFG_DMA_CTL_ERROR, 1);
    assert_int_equal(dma(f, 0x1000, w_sel, 4, RAM_SIZE + 4) & FW_CFG_DMA_CTL_ERROR, 1);
    uint8_t back[8];
    sel(f, (uint16_t)wkey);
    rd(f, back, 8);
    assert_int_equal(back[0], 0x99);
    assert_int_equal(back[3], 0x99);
    assert_int_equal(back[4], 0);

    /* Only the low-half write starts a transfer; a lone high half does nothing. */
    memset(ram(f, 0x2000), 0, 8);
    uint32_t desc_hi = 0;
    fw_cfg_dma_ops.write(f->fw, 0, &desc_hi, 4);
    assert_int_equal(ram(f, 0x2000)[0], 0);
    /* Odd sizes on the DMA register are ignored. */
    uint16_t odd = 0x1000;
    fw_cfg_dma_ops.write(f->fw, 4, &odd, 2);
}

static void test_select_via_dma_then_ports(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(fw_cfg_add_u16(f->fw, FW_CFG_NB_CPUS, 7), 0);
    assert_int_equal(dma(f, 0x1000, FW_CFG_NB_CPUS << 16 | FW_CFG_DMA_CTL_SELECT, 0, 0), 0);
    uint8_t b[2];
    rd(f, b, 2);
    assert_int_equal(b[0], 7);
    fw_cfg_reset(f->fw);
    rd(f, b, 1);
    assert_int_equal(b[0], 0);
}

struct select_log {
    struct fw_cfg *fw;
    unsigned calls, released;
};

static void on_select(void *opaque, const char *name)
{
    struct select_log *l = opaque;
    assert_string_equal(name, "etc/dynamic");
    l->calls++;
    char v = (char)('0' + l->calls);
    /* The lock is held and recursive: modifying a file from here works. */
    assert_int_equal(fw_cfg_modify_file(l->fw, "etc/dynamic", &v, 1), 0);
}

static void on_release(void *opaque)
{
    ((struct select_log *)opaque)->released++;
}

static void test_select_callback(void **state)
{
    struct fixture *f = *state;
    static struct select_log log;
    memset(&log, 0, sizeof(log));
    log.fw = f->fw;
    assert_int_equal(fw_cfg_add_file(f->fw, "etc/dynamic", "x", 1), 0);
    assert_int_equal(fw_cfg_set_select_cb(f->fw, "etc/none", on_select, &log, NULL), -ENOENT);
    assert_int_equal(fw_cfg_set_select_cb(f->fw, "etc/dynamic", on_select, &log, on_release), 0);
    uint16_t key = (uint16_t)fw_cfg_file_key(f->fw, "etc/dynamic");

    /* Reading the directory does not trigger it; selecting the file does. */
    sel(f, FW_CFG_FILE_DIR);
    assert_int_equal(log.calls, 0);
    char c;
    sel(f, key);
    rd(f, &c, 1);
    assert_int_equal(log.calls, 1);
    assert_int_equal(c, '1');
    assert_int_equal(dma(f, 0x1000,
                         (uint32_t)key << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ, 1,
                         0x2000),
                     0);
    assert_int_equal(log.calls, 2);
    assert_int_equal(ram(f, 0x2000)[0], '2');
    /* Adding files later keeps the callback with its file. */
    assert_int_equal(fw_cfg_add_file(f->fw, "a-first", "", 0), 0);
    sel(f, (uint16_t)fw_cfg_file_key(f->fw, "etc/dynamic"));
    assert_int_equal(log.calls, 3);
    fw_cfg_destroy(f->fw);
    f->fw = fw_cfg_create(&f->gm);
    assert_int_equal(log.released, 1);
}

/* The MMIO flavour: big-endian selector at +8, data at +0, DMA at +16, on an MMIO bus. */
static void test_mmio_flavour(void **state)
{
    struct fixture *f = *state;
    const uint64_t base = 0x09020000;
    struct io_bus mmio;
    io_bus_init(&mmio);
    assert_int_equal(fw_cfg_register_mmio(f->fw, &mmio, base), 0);
    uint8_t blob[12] = "abcdefghijk";
    assert_int_equal(fw_cfg_add_file(f->fw, "etc/blob", blob, sizeof(blob)), 0);
    uint16_t key = (uint16_t)fw_cfg_file_key(f->fw, "etc/blob");

    uint16_t be = htobe16(FW_CFG_SIGNATURE);
    assert_true(io_bus_access(&mmio, base + FW_CFG_MMIO_SELECTOR, &be, 2, true));
    uint32_t sig = 0;
    assert_true(io_bus_access(&mmio, base + FW_CFG_MMIO_DATA, &sig, 4, false));
    assert_memory_equal(&sig, "QEMU", 4);
    /* A little-endian key would select something else: the selector is big-endian. */
    be = htobe16(key);
    assert_true(io_bus_access(&mmio, base + FW_CFG_MMIO_SELECTOR, &be, 2, true));
    uint64_t word = 0;
    assert_true(io_bus_access(&mmio, base + FW_CFG_MMIO_DATA, &word, 8, false));
    assert_memory_equal(&word, "abcdefgh", 8); /* bytes in order, as 8 byte reads */
    uint8_t b = 0;
    assert_true(io_bus_access(&mmio, base + FW_CFG_MMIO_DATA, &b, 1, false));
    assert_int_equal(b, 'i');

    /* DMA through +16, one 64-bit big-endian write. */
    uint32_t ctl = htobe32((uint32_t)key << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ);
    uint32_t len = htobe32(4);
    uint64_t addr = htobe64(0x3000);
    uint8_t *d = ram(f, 0x1000);
    memcpy(d, &ctl, 4);
    memcpy(d + 4, &len, 4);
    memcpy(d + 8, &addr, 8);
    uint64_t trig = htobe64(0x1000);
    assert_true(io_bus_access(&mmio, base + FW_CFG_MMIO_DMA, &trig, 8, true));
    assert_memory_equal(ram(f, 0x3000), "abcd", 4);
    assert_int_equal(d[3], 0); /* status: done, no error */
    uint64_t dsig = 0;
    assert_true(io_bus_access(&mmio, base + FW_CFG_MMIO_DMA, &dsig, 8, false));
    assert_int_equal(be64toh(dsig), FW_CFG_DMA_SIGNATURE);
    io_bus_destroy(&mmio);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mmio_flavour, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signature_and_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_integers_little_endian, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_directory_sorted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_read_skip_select, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_select_via_dma_then_ports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_select_callback, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
