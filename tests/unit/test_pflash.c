/* CFI flash command sequences, query table, status register and write-through to the file. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hw/pflash.h"

#define NBLOCKS 8
#define SIZE (NBLOCKS * PFLASH_BLOCK_SIZE)

struct fixture {
    char path[64];
    uint8_t init[SIZE];
    struct pflash *p;
    bool modes[16]; /* mode handler calls, in order */
    unsigned nmodes;
};

static void on_mode(void *opaque, bool array)
{
    struct fixture *f = opaque;
    assert_true(f->nmodes < 16);
    f->modes[f->nmodes++] = array;
}

static int open_flash(struct fixture *f, bool readonly)
{
    int fd = open(f->path, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    uint8_t buf[SIZE];
    assert_int_equal(pread(fd, buf, SIZE, 0), SIZE);
    int rc = pflash_create(&f->p, buf, SIZE, fd, readonly);
    if (rc == 0)
        pflash_set_mode_handler(f->p, on_mode, f);
    return rc;
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    strcpy(f.path, "/tmp/test-pflash-XXXXXX");
    int fd = mkstemp(f.path);
    assert_true(fd >= 0);
    for (unsigned i = 0; i < SIZE; i++)
        f.init[i] = (uint8_t)(i * 7 + 3);
    /* OVMF probes the first byte that is not 0x00, 0x50 or 0x70. */
    f.init[0] = 0x00;
    assert_int_equal(write(fd, f.init, SIZE), SIZE);
    close(fd);
    assert_int_equal(open_flash(&f, false), 0);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    pflash_destroy(f->p);
    unlink(f->path);
    return 0;
}

static void wr8(struct fixture *f, uint64_t off, uint8_t v)
{
    pflash_io_ops.write(f->p, off, &v, 1);
}

static uint8_t rd8(struct fixture *f, uint64_t off)
{
    uint8_t v;
    pflash_io_ops.read(f->p, off, &v, 1);
    return v;
}

static uint8_t file_byte(struct fixture *f, uint64_t off)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    uint8_t v = 0;
    assert_int_equal(pread(fd, &v, 1, (off_t)off), 1);
    close(fd);
    return v;
}

static void test_read_array(void **state)
{
    struct fixture *f = *state;
    assert_true(pflash_array_mode(f->p));
    assert_int_equal(pflash_size(f->p), SIZE);
    assert_memory_equal(pflash_host(f->p), f->init, SIZE);
    assert_int_equal((uintptr_t)pflash_host(f->p) % 4096, 0);
    uint32_t w;
    pflash_io_ops.read(f->p, 0x100, &w, 4);
    assert_memory_equal(&w, f->init + 0x100, 4);
    assert_int_equal(f->nmodes, 0);
}

/* The exact sequence of OVMF's QemuFlashDetected(). */
static void test_ovmf_probe_sequence(void **state)
{
    struct fixture *f = *state;
    uint64_t off = 1; /* init[0] is 0x00, so OVMF skips it */
    uint8_t orig = rd8(f, off);
    assert_int_not_equal(orig, 0x50);
    wr8(f, off, 0x50);
    assert_int_equal(rd8(f, off), orig); /* clear status: back in read-array mode */
    assert_int_equal(f->nmodes, 0);
    wr8(f, off, 0x70);
    assert_false(pflash_array_mode(f->p));
    assert_int_equal(rd8(f, off), 0x00); /* cleared status: "FD behaves as FLASH" */
    wr8(f, off, 0xff);
    assert_true(pflash_array_mode(f->p));
    assert_int_equal(rd8(f, off), orig);
    assert_int_equal(f->nmodes, 2);
    assert_false(f->modes[0]);
    assert_true(f->modes[1]);
}

/* OVMF's QemuFlashWrite(): 0x10 + byte per byte, then 0xFF at the last byte. */
static void test_program_persists(void **state)
{
    struct fixture *f = *state;
    const uint8_t data[] = {0xde, 0xad, 0xbe, 0xef};
    uint64_t base = 2 * PFLASH_BLOCK_SIZE + 17;
    for (unsigned i = 0; i < sizeof(data); i++) {
        wr8(f, base + i, 0x10);
        assert_false(pflash_array_mode(f->p));
        wr8(f, base + i, data[i]);
        /* Between bytes the device answers status: ready, no error. */
        assert_int_equal(rd8(f, base + i), PFLASH_SR_READY);
        uint32_t st = 0xffffffff;
        pflash_io_ops.read(f->p, base, &st, 4);
        assert_int_equal(st, PFLASH_SR_READY);
    }
    wr8(f, base + sizeof(data) - 1, 0xff);
    assert_true(pflash_array_mode(f->p));
    for (unsigned i = 0; i < sizeof(data); i++) {
        assert_int_equal(rd8(f, base + i), data[i]);
        assert_int_equal(pflash_host(f->p)[base + i], data[i]);
        assert_int_equal(file_byte(f, base + i), data[i]);
    }
    assert_int_equal(file_byte(f, base - 1), f->init[base - 1]);
    /* One leave and one return for the whole write, not one per byte. */
    assert_int_equal(f->nmodes, 2);

    /* 0x40 with a wider access programs all its bytes. */
    uint32_t cmd = 0x40, word = 0x11223344;
    pflash_io_ops.write(f->p, 0x200, &cmd, 4);
    pflash_io_ops.write(f->p, 0x200, &word, 4);
    wr8(f, 0x200, 0xff);
    assert_int_equal(file_byte(f, 0x200), 0x44);
    assert_int_equal(file_byte(f, 0x203), 0x11);

    /* Survives a restart: a new device over the same file sees it. */
    pflash_destroy(f->p);
    f->p = NULL;
    assert_int_equal(open_flash(f, false), 0);
    assert_int_equal(rd8(f, base), 0xde);
    assert_int_equal(rd8(f, 0x201), 0x33);
}

static void test_block_erase(void **state)
{
    struct fixture *f = *state;
    uint64_t inblock = 3 * PFLASH_BLOCK_SIZE + 0x123;
    wr8(f, inblock, 0x20);
    /* Nothing happens before the confirm cycle. */
    assert_int_equal(pflash_host(f->p)[3 * PFLASH_BLOCK_SIZE], f->init[3 * PFLASH_BLOCK_SIZE]);
    wr8(f, inblock, 0xd0);
    assert_int_equal(rd8(f, inblock), PFLASH_SR_READY);
    wr8(f, inblock, 0xff);
    for (unsigned i = 0; i < PFLASH_BLOCK_SIZE; i++)
        assert_int_equal(pflash_host(f->p)[3 * PFLASH_BLOCK_SIZE + i], 0xff);
    assert_int_equal(rd8(f, 3 * PFLASH_BLOCK_SIZE - 1), f->init[3 * PFLASH_BLOCK_SIZE - 1]);
    assert_int_equal(rd8(f, 4 * PFLASH_BLOCK_SIZE), f->init[4 * PFLASH_BLOCK_SIZE]);
    assert_int_equal(file_byte(f, 3 * PFLASH_BLOCK_SIZE), 0xff);
    assert_int_equal(file_byte(f, 4 * PFLASH_BLOCK_SIZE - 1), 0xff);
    assert_int_equal(file_byte(f, 4 * PFLASH_BLOCK_SIZE), f->init[4 * PFLASH_BLOCK_SIZE]);

    /* Erase aborted by read array: nothing erased. */
    wr8(f, 5 * PFLASH_BLOCK_SIZE, 0x20);
    wr8(f, 5 * PFLASH_BLOCK_SIZE, 0xff);
    assert_true(pflash_array_mode(f->p));
    assert_int_equal(rd8(f, 5 * PFLASH_BLOCK_SIZE + 1), f->init[5 * PFLASH_BLOCK_SIZE + 1]);
}

static void test_status_register_errors(void **state)
{
    struct fixture *f = *state;
    /* Bad confirm: both error bits, ready, status mode, nothing erased. */
    wr8(f, 0, 0x20);
    wr8(f, 0, 0x33);
    uint8_t st = rd8(f, 0);
    assert_int_equal(st, PFLASH_SR_READY | PFLASH_SR_ERASE_ERROR | PFLASH_SR_PROGRAM_ERROR);
    assert_int_equal(pflash_host(f->p)[5], f->init[5]);
    /* Errors stick through read status until cleared. */
    wr8(f, 0, 0x70);
    assert_int_equal(rd8(f, 0), st);
    wr8(f, 0, 0x50);
    assert_true(pflash_array_mode(f->p));
    wr8(f, 0, 0x70);
    assert_int_equal(rd8(f, 0), 0);
    wr8(f, 0, 0xff);

    /* Block lock setup + confirm is accepted and changes nothing. */
    wr8(f, 0, 0x60);
    wr8(f, 0, 0xd0);
    assert_int_equal(rd8(f, 0) & PFLASH_SR_READY, PFLASH_SR_READY);
    wr8(f, 0, 0xff);
    assert_int_equal(rd8(f, 1), f->init[1]);

    /* Unknown command: back to read array. */
    wr8(f, 0, 0xe8);
    assert_true(pflash_array_mode(f->p));
}

static void test_read_id_and_query(void **state)
{
    struct fixture *f = *state;
    wr8(f, 0, 0x90);
    assert_int_equal(rd8(f, 0), PFLASH_MANUFACTURER_ID);
    assert_int_equal(rd8(f, 1), PFLASH_DEVICE_ID);
    assert_int_equal(rd8(f, PFLASH_BLOCK_SIZE + 2), 0); /* block unlocked */
    wr8(f, 0, 0x98);
    assert_int_equal(rd8(f, 0x10), 'Q');
    assert_int_equal(rd8(f, 0x11), 'R');
    assert_int_equal(rd8(f, 0x12), 'Y');
    assert_int_equal(rd8(f, 0x13), 0x01); /* Intel/Sharp */
    assert_int_equal(rd8(f, 0x14), 0x00);
    assert_int_equal(rd8(f, 0x15), 0x31);
    assert_int_equal(rd8(f, 0x27), 15); /* 32 KiB = 2^15 */
    assert_int_equal(rd8(f, 0x28), 0x00);
    assert_int_equal(rd8(f, 0x2c), 1);
    assert_int_equal(rd8(f, 0x2d) | rd8(f, 0x2e) << 8, NBLOCKS - 1);
    assert_int_equal((rd8(f, 0x2f) | rd8(f, 0x30) << 8) * 256, PFLASH_BLOCK_SIZE);
    uint8_t pri[5];
    pflash_io_ops.read(f->p, 0x31, pri, 4);
    pri[4] = rd8(f, 0x35);
    assert_memory_equal(pri, "PRI10", 5);
    assert_int_equal(rd8(f, 0x80), 0);
    /* Other writes keep query mode; read array leaves it. */
    wr8(f, 0, 0x42);
    assert_int_equal(rd8(f, 0x10), 'Q');
    wr8(f, 0, 0xff);
    assert_int_equal(rd8(f, 0x10), f->init[0x10]);
}

static void test_readonly_and_volatile(void **state)
{
    struct fixture *f = *state;
    pflash_destroy(f->p);
    f->p = NULL;
    assert_int_equal(open_flash(f, true), 0);
    wr8(f, 8, 0x10);
    wr8(f, 8, 0x00);
    assert_int_equal(rd8(f, 8) & PFLASH_SR_PROGRAM_ERROR, PFLASH_SR_PROGRAM_ERROR);
    wr8(f, 8, 0x20);
    wr8(f, 8, 0xd0);
    assert_int_equal(rd8(f, 8) & PFLASH_SR_ERASE_ERROR, PFLASH_SR_ERASE_ERROR);
    wr8(f, 8, 0xff);
    assert_int_equal(rd8(f, 8), f->init[8]);
    assert_int_equal(file_byte(f, 8), f->init[8]);

    /* Volatile: programs work, the file is not touched. */
    struct pflash *v;
    assert_int_equal(pflash_create(&v, f->init, SIZE, -1, false), 0);
    uint8_t b = 0x10;
    pflash_io_ops.write(v, 9, &b, 1);
    b = 0x5a;
    pflash_io_ops.write(v, 9, &b, 1);
    b = 0xff;
    pflash_io_ops.write(v, 9, &b, 1);
    assert_int_equal(pflash_host(v)[9], 0x5a);
    assert_int_equal(pflash_flush(v), 0);
    pflash_destroy(v);
    assert_int_equal(file_byte(f, 9), f->init[9]);

    assert_int_equal(pflash_create(&v, f->init, 1000, -1, false), -EINVAL);
    assert_int_equal(pflash_create(&v, f->init, 0, -1, false), -EINVAL);
}

static void test_reset_returns_to_array(void **state)
{
    struct fixture *f = *state;
    wr8(f, 0, 0x98);
    assert_false(pflash_array_mode(f->p));
    pflash_reset(f->p);
    assert_true(pflash_array_mode(f->p));
    assert_int_equal(f->nmodes, 2);
    assert_int_equal(rd8(f, 0x10), f->init[0x10]);
    /* Status after reset: ready. */
    wr8(f, 0, 0x70);
    assert_int_equal(rd8(f, 0), PFLASH_SR_READY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_array, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ovmf_probe_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_program_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block_erase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_register_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_id_and_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_and_volatile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_returns_to_array, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
