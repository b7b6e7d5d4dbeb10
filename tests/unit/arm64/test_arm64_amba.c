/*
 * The arm64 machine's PrimeCell devices (src/arch/arm64/amba.c): the
 * identification registers Linux's AMBA bus matches on, the PL031 RTC's
 * counter (load, running seconds), and the PL061 GPIO's power button:
 * with the interrupt set up as gpio-keys does (both edges), a press raises
 * the line, the guest sees the pin high, the pin drops once read (a second
 * edge, the release), and clearing the interrupts lowers the line. Pure
 * code: runs on any host (the Makefile's portable tests).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arch/arm64/amba.h"

static uint64_t fake_time = 1000000;
static uint64_t fake_now(void)
{
    return fake_time;
}

static bool irq_level;
static unsigned irq_line, irq_calls;
static int set_irq(void *opaque, unsigned line, bool level)
{
    (void)opaque;
    irq_line = line;
    irq_level = level;
    irq_calls++;
    return 0;
}

static uint32_t rd(const struct io_ops *ops, void *dev, uint64_t off)
{
    uint32_t v = 0xdeadbeef;
    ops->read(dev, off, &v, 4);
    return v;
}

static void wr(const struct io_ops *ops, void *dev, uint64_t off, uint32_t v)
{
    ops->write(dev, off, &v, 4);
}

static void test_pl031(void **state)
{
    (void)state;
    struct pl031 *r = pl031_create(fake_now);
    assert_non_null(r);
    /* PrimeCell ids: part 0x031, designer ARM, then the cell id B105F00D. */
    assert_int_equal(rd(&pl031_io_ops, r, 0xfe0), 0x31);
    assert_int_equal(rd(&pl031_io_ops, r, 0xfe4), 0x10);
    assert_int_equal(rd(&pl031_io_ops, r, 0xff0), 0x0d);
    assert_int_equal(rd(&pl031_io_ops, r, 0xffc), 0xb1);
    /* Out of reset it shows the host's time and runs with it. */
    assert_int_equal(rd(&pl031_io_ops, r, 0x00), 1000000);
    fake_time += 5;
    assert_int_equal(rd(&pl031_io_ops, r, 0x00), 1000005);
    /* The guest sets the clock (RTCLR): it runs on from there. */
    wr(&pl031_io_ops, r, 0x08, 42);
    fake_time += 3;
    assert_int_equal(rd(&pl031_io_ops, r, 0x00), 45);
    assert_int_equal(rd(&pl031_io_ops, r, 0x0c), 1); /* started */
    wr(&pl031_io_ops, r, 0x04, 99);
    assert_int_equal(rd(&pl031_io_ops, r, 0x04), 99);
    pl031_destroy(r);
}

static void test_pl061_power_button(void **state)
{
    (void)state;
    struct vm_hooks hooks = {.set_irq_line = set_irq};
    struct pl061 *g = pl061_create(&hooks, 7);
    assert_non_null(g);
    irq_calls = 0;
    irq_level = false;
    assert_int_equal(rd(&pl061_io_ops, g, 0xfe0), 0x61);
    /* gpio-keys: pin 3 input, edge-sensitive on both edges, unmasked. */
    wr(&pl061_io_ops, g, 0x400, 0);      /* DIR */
    wr(&pl061_io_ops, g, 0x404, 0);      /* IS: edge */
    wr(&pl061_io_ops, g, 0x408, 1 << 3); /* IBE */
    wr(&pl061_io_ops, g, 0x410, 1 << 3); /* IE */
    assert_false(irq_level);

    pl061_press(g, 3);
    assert_true(irq_level);
    assert_int_equal(irq_line, 7);
    assert_int_equal(rd(&pl061_io_ops, g, 0x418), 1 << 3); /* MIS */
    /* The driver acknowledges, then reads the pin (address bit 5 = pin 3): high. */
    wr(&pl061_io_ops, g, 0x41c, 1 << 3);
    assert_false(irq_level);
    assert_int_equal(rd(&pl061_io_ops, g, (1 << 3) << 2), 1 << 3);
    /* Having been seen, the button is released: the falling edge interrupts again. */
    assert_true(irq_level);
    wr(&pl061_io_ops, g, 0x41c, 1 << 3);
    assert_false(irq_level);
    assert_int_equal(rd(&pl061_io_ops, g, (1 << 3) << 2), 0);
    assert_false(irq_level);

    /* A masked address reads nothing of pin 3, and does not release it. */
    pl061_press(g, 3);
    wr(&pl061_io_ops, g, 0x41c, 1 << 3);
    assert_int_equal(rd(&pl061_io_ops, g, (1 << 2) << 2), 0);
    assert_false(irq_level);
    assert_int_equal(rd(&pl061_io_ops, g, 0x3fc), 1 << 3);
    pl061_destroy(g);
}

static void test_pl061_levels_and_outputs(void **state)
{
    (void)state;
    struct vm_hooks hooks = {.set_irq_line = set_irq};
    struct pl061 *g = pl061_create(&hooks, 7);
    irq_level = false;
    /* Pin 0: level-sensitive, active high. Pending while high, whatever IC says. */
    wr(&pl061_io_ops, g, 0x404, 1);
    wr(&pl061_io_ops, g, 0x40c, 1);
    wr(&pl061_io_ops, g, 0x410, 1);
    pl061_set_input(g, 0, true);
    assert_true(irq_level);
    wr(&pl061_io_ops, g, 0x41c, 1);
    assert_true(irq_level);
    pl061_set_input(g, 0, false);
    assert_false(irq_level);
    /* Outputs read back what the guest wrote, through the address mask. */
    wr(&pl061_io_ops, g, 0x400, 0xf0);
    wr(&pl061_io_ops, g, 0x3fc, 0xa0);
    assert_int_equal(rd(&pl061_io_ops, g, 0x3fc), 0xa0);
    wr(&pl061_io_ops, g, (0x80u << 2), 0x00); /* only pin 7 written */
    assert_int_equal(rd(&pl061_io_ops, g, 0x3fc), 0x20);
    pl061_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pl031),
        cmocka_unit_test(test_pl061_power_button),
        cmocka_unit_test(test_pl061_levels_and_outputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
