/* MC146818 RTC and CMOS RAM through ports 0x70/0x71, against a fake wall clock. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "arch/x86/cmos.h"

struct fixture {
    struct cmos *c;
    struct timespec now;
};

static void fake_clock(void *opaque, struct timespec *now)
{
    struct fixture *f = opaque;
    *now = f->now;
}

/* 2024-02-29 13:45:56 UTC, a Thursday. */
static time_t leap_day(void)
{
    struct tm tm = {
        .tm_year = 124, .tm_mon = 1, .tm_mday = 29, .tm_hour = 13, .tm_min = 45, .tm_sec = 56};
    return timegm(&tm);
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    f.now.tv_sec = leap_day();
    f.now.tv_nsec = 500000000;
    f.c = cmos_create(fake_clock, &f);
    assert_non_null(f.c);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cmos_destroy(f->c);
    return 0;
}

static uint8_t rd(struct fixture *f, uint8_t index)
{
    uint8_t v;
    cmos_io_ops.write(f->c, 0, &index, 1);
    cmos_io_ops.read(f->c, 1, &v, 1);
    return v;
}

static void wr(struct fixture *f, uint8_t index, uint8_t v)
{
    cmos_io_ops.write(f->c, 0, &index, 1);
    cmos_io_ops.write(f->c, 1, &v, 1);
}

static void test_bcd_24h_default(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd(f, 0x0b) & 0x06, 0x02); /* BCD, 24-hour */
    assert_int_equal(rd(f, 0x00), 0x56);
    assert_int_equal(rd(f, 0x02), 0x45);
    assert_int_equal(rd(f, 0x04), 0x13);
    assert_int_equal(rd(f, 0x06), 0x05); /* Sunday = 1 */
    assert_int_equal(rd(f, 0x07), 0x29);
    assert_int_equal(rd(f, 0x08), 0x02);
    assert_int_equal(rd(f, 0x09), 0x24);
    assert_int_equal(rd(f, CMOS_CENTURY), 0x20);
}

static void test_binary_mode(void **state)
{
    struct fixture *f = *state;
    wr(f, 0x0b, 0x06);
    assert_int_equal(rd(f, 0x00), 56);
    assert_int_equal(rd(f, 0x02), 45);
    assert_int_equal(rd(f, 0x04), 13);
    assert_int_equal(rd(f, 0x07), 29);
    assert_int_equal(rd(f, 0x09), 24);
    assert_int_equal(rd(f, CMOS_CENTURY), 20);
}

static void test_12h_mode(void **state)
{
    struct fixture *f = *state;
    wr(f, 0x0b, 0x00);                   /* BCD, 12-hour */
    assert_int_equal(rd(f, 0x04), 0x81); /* 1 PM */
    wr(f, 0x0b, 0x04);                   /* binary, 12-hour */
    assert_int_equal(rd(f, 0x04), 0x81);
    f->now.tv_sec += 23 * 3600; /* 12:45 the next day: noon is 12 PM */
    assert_int_equal(rd(f, 0x04), 0x8c);
    f->now.tv_sec -= 12 * 3600; /* 00:45: midnight is 12 AM */
    assert_int_equal(rd(f, 0x04), 12);
    wr(f, 0x0b, 0x00);
    assert_int_equal(rd(f, 0x04), 0x12);
}

static void test_time_advances_with_host(void **state)
{
    struct fixture *f = *state;
    f->now.tv_sec += 5;
    assert_int_equal(rd(f, 0x00), 0x01);
    assert_int_equal(rd(f, 0x02), 0x46);
}

static void test_set_clock(void **state)
{
    struct fixture *f = *state;
    /* What Linux's rtc-cmos does: SET, write the fields, clear SET. */
    wr(f, 0x0b, 0x82);
    wr(f, 0x00, 0x05);
    wr(f, 0x02, 0x04);
    wr(f, 0x04, 0x03);
    wr(f, 0x07, 0x02);
    wr(f, 0x08, 0x01);
    wr(f, 0x09, 0x30);
    wr(f, CMOS_CENTURY, 0x20);
    /* Frozen while SET is on. */
    f->now.tv_sec += 100;
    assert_int_equal(rd(f, 0x00), 0x05);
    assert_int_equal(rd(f, 0x0a) & 0x80, 0); /* no update in progress either */
    wr(f, 0x0b, 0x02);
    assert_int_equal(rd(f, 0x00), 0x05);
    assert_int_equal(rd(f, 0x09), 0x30);
    assert_int_equal(rd(f, 0x08), 0x01);
    assert_int_equal(rd(f, 0x06), 0x04); /* 2030-01-02 is a Wednesday */
    f->now.tv_sec += 10;
    assert_int_equal(rd(f, 0x00), 0x15);
    assert_int_equal(rd(f, 0x04), 0x03);
}

static void test_write_field_while_running(void **state)
{
    struct fixture *f = *state;
    wr(f, 0x02, 0x10); /* minutes := 10 */
    assert_int_equal(rd(f, 0x02), 0x10);
    assert_int_equal(rd(f, 0x04), 0x13);
    assert_int_equal(rd(f, 0x00), 0x56);
    f->now.tv_sec += 4;
    assert_int_equal(rd(f, 0x00), 0x00);
    assert_int_equal(rd(f, 0x02), 0x11);
}

static void test_update_in_progress(void **state)
{
    struct fixture *f = *state;
    f->now.tv_nsec = 999900000; /* 100 us before the update */
    assert_int_equal(rd(f, 0x0a) & 0x80, 0x80);
    f->now.tv_nsec = 999700000; /* 300 us before: not yet */
    assert_int_equal(rd(f, 0x0a) & 0x80, 0);
    f->now.tv_nsec = 0;
    assert_int_equal(rd(f, 0x0a), 0x26); /* and the rest of A reads back */
    /* UIP is read-only. */
    wr(f, 0x0a, 0xa6);
    assert_int_equal(rd(f, 0x0a), 0x26);
}

static void test_registers_c_and_d(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd(f, 0x0d), 0x80);
    assert_int_equal(rd(f, 0x0c), 0x00);
    f->now.tv_sec += 1;
    assert_int_equal(rd(f, 0x0c) & 0x10, 0x10); /* update ended */
    assert_int_equal(rd(f, 0x0c), 0x00);        /* cleared by the read */
    wr(f, 0x0b, 0x12);                          /* UIE */
    f->now.tv_sec += 1;
    assert_int_equal(rd(f, 0x0c), 0x90);
    /* C and D are read-only. */
    wr(f, 0x0d, 0x00);
    assert_int_equal(rd(f, 0x0d), 0x80);
}

static void test_memory_size_bytes(void **state)
{
    struct fixture *f = *state;
    const uint64_t mib = 1024 * 1024;
    cmos_set_memory(f->c, 2048 * mib, 6144 * mib);
    assert_int_equal(rd(f, 0x15) | rd(f, 0x16) << 8, 640);
    assert_int_equal(rd(f, 0x17) | rd(f, 0x18) << 8, 0xffff); /* capped */
    assert_int_equal(rd(f, 0x30) | rd(f, 0x31) << 8, 0xffff);
    assert_int_equal(rd(f, 0x34) | rd(f, 0x35) << 8, (2048 - 16) * 16);
    assert_int_equal(rd(f, 0x5b) | rd(f, 0x5c) << 8 | rd(f, 0x5d) << 16, 6144 * 16);

    cmos_set_memory(f->c, 64 * mib, 0);
    assert_int_equal(rd(f, 0x17) | rd(f, 0x18) << 8, 63 * 1024);
    assert_int_equal(rd(f, 0x34) | rd(f, 0x35) << 8, 48 * 16);
    assert_int_equal(rd(f, 0x5b) | rd(f, 0x5c) << 8 | rd(f, 0x5d) << 16, 0);

    cmos_set_cpus(f->c, 4);
    assert_int_equal(rd(f, 0x5f), 3);
}

static void test_ram_bytes_and_setter(void **state)
{
    struct fixture *f = *state;
    wr(f, 0x40, 0xab);
    assert_int_equal(rd(f, 0x40), 0xab);
    assert_int_equal(cmos_set_byte(f->c, 0x41, 0xcd), 0);
    assert_int_equal(rd(f, 0x41), 0xcd);
    assert_int_equal(cmos_get_byte(f->c, 0x41), 0xcd);
    /* The clock registers and out-of-range indexes are not RAM. */
    assert_int_equal(cmos_set_byte(f->c, 0x00, 1), -EINVAL);
    assert_int_equal(cmos_set_byte(f->c, 0x0d, 1), -EINVAL);
    assert_int_equal(cmos_set_byte(f->c, CMOS_CENTURY, 1), -EINVAL);
    assert_int_equal(cmos_set_byte(f->c, CMOS_SIZE, 1), -EINVAL);
}

static void test_index_port(void **state)
{
    struct fixture *f = *state;
    uint8_t v = 0x80 | 0x40; /* NMI masked, index 0x40 */
    wr(f, 0x40, 0x11);
    cmos_io_ops.write(f->c, 0, &v, 1);
    assert_true(cmos_nmi_masked(f->c));
    cmos_io_ops.read(f->c, 1, &v, 1);
    assert_int_equal(v, 0x11);
    cmos_io_ops.read(f->c, 0, &v, 1);
    assert_int_equal(v, 0xff); /* the index register is write-only */
    v = 0x40;
    cmos_io_ops.write(f->c, 0, &v, 1);
    assert_false(cmos_nmi_masked(f->c));
}

static void test_garbage_time_is_harmless(void **state)
{
    struct fixture *f = *state;
    wr(f, 0x0b, 0x82);
    wr(f, 0x08, 0xff); /* month 165 */
    wr(f, 0x07, 0x00);
    wr(f, 0x04, 0xff);
    wr(f, 0x0b, 0x02);
    /* Whatever it normalised to, the fields read back in range. */
    uint8_t month = rd(f, 0x08);
    assert_true(month >= 0x01 && month <= 0x12);
    uint8_t hour = rd(f, 0x04);
    assert_true(hour <= 0x23);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bcd_24h_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_12h_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_advances_with_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_field_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_in_progress, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registers_c_and_d, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_size_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ram_bytes_and_setter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_time_is_harmless, setup, teardown),
    };
    return cmocka_run_group_tests_name("cmos", tests, NULL, NULL);
}
