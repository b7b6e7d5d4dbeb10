/* i8042 controller and keyboard: the sequences firmware and Linux's i8042/atkbd drivers use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "arch/x86/i8042.h"

#define STS_OBF 0x01
#define STS_SYS 0x04
#define STS_CMD 0x08
#define STS_AUX_OBF 0x20
#define STS_TIMEOUT 0x40

struct fixture {
    struct i8042 *k;
    struct vm_hooks hooks;
    bool level[16];
    unsigned rises[16];
    unsigned resets;
};

static int fake_set_irq_line(void *opaque, unsigned line, bool level)
{
    struct fixture *f = opaque;
    assert_true(line < 16);
    if (level && !f->level[line])
        f->rises[line]++;
    f->level[line] = level;
    return 0;
}

static void on_reset(void *opaque)
{
    struct fixture *f = opaque;
    f->resets++;
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    f.hooks.set_irq_line = fake_set_irq_line;
    f.hooks.opaque = &f;
    struct platform_events ev = {.reset = on_reset, .opaque = &f};
    f.k = i8042_create(&f.hooks, &ev);
    assert_non_null(f.k);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    i8042_destroy(f->k);
    return 0;
}

static uint8_t status(struct fixture *f)
{
    uint8_t v;
    i8042_cmd_ops.read(f->k, 0, &v, 1);
    return v;
}

static void command(struct fixture *f, uint8_t cmd)
{
    i8042_cmd_ops.write(f->k, 0, &cmd, 1);
}

static void data_write(struct fixture *f, uint8_t v)
{
    i8042_data_ops.write(f->k, 0, &v, 1);
}

static uint8_t data_read(struct fixture *f)
{
    uint8_t v;
    i8042_data_ops.read(f->k, 0, &v, 1);
    return v;
}

/* Read one byte the way drivers do: wait for OBF, then read. */
static uint8_t expect_byte(struct fixture *f)
{
    assert_true(status(f) & STS_OBF);
    return data_read(f);
}

static void test_self_test(void **state)
{
    struct fixture *f = *state;
    assert_false(status(f) & STS_OBF);
    command(f, 0xaa);
    assert_true(status(f) & STS_CMD);
    assert_int_equal(expect_byte(f), 0x55);
    assert_false(status(f) & STS_OBF);
    assert_true(status(f) & STS_SYS);
    command(f, 0xab); /* keyboard interface test */
    assert_int_equal(expect_byte(f), 0x00);
}

static void test_command_byte_roundtrip(void **state)
{
    struct fixture *f = *state;
    command(f, 0x60);
    data_write(f, 0x45);
    assert_false(status(f) & STS_CMD);
    command(f, 0x20);
    assert_int_equal(expect_byte(f), 0x45);
    /* 0xAD/0xAE and 0xA7/0xA8 flip the disable bits in the command byte. */
    command(f, 0xad);
    command(f, 0xa7);
    command(f, 0x20);
    assert_int_equal(expect_byte(f), 0x45 | 0x10 | 0x20);
    command(f, 0xae);
    command(f, 0xa8);
    command(f, 0x20);
    assert_int_equal(expect_byte(f), 0x45);
}

static void test_pulse_reset(void **state)
{
    struct fixture *f = *state;
    command(f, 0xff); /* pulse nothing */
    assert_int_equal(f->resets, 0);
    command(f, 0xfe); /* pulse the reset line */
    assert_int_equal(f->resets, 1);
}

static void test_output_port_reset_and_a20(void **state)
{
    struct fixture *f = *state;
    command(f, 0xd0);
    uint8_t out = expect_byte(f);
    assert_int_equal(out & 0x03, 0x03); /* not in reset, A20 on */
    command(f, 0xd1);
    data_write(f, 0x01); /* A20 off, reset line still high */
    assert_int_equal(f->resets, 0);
    command(f, 0xd0);
    assert_int_equal(expect_byte(f) & 0x03, 0x01);
    command(f, 0xd1);
    data_write(f, 0x00); /* drive the reset line */
    assert_int_equal(f->resets, 1);
}

static void test_keyboard_irq_follows_obf(void **state)
{
    struct fixture *f = *state;
    /* Default command byte enables the keyboard interrupt. */
    data_write(f, 0xf4); /* enable scanning */
    assert_true(f->level[I8042_KBD_IRQ]);
    assert_int_equal(expect_byte(f), 0xfa);
    assert_false(f->level[I8042_KBD_IRQ]);
    /* With the interrupt disabled in the command byte, no line. */
    command(f, 0x60);
    data_write(f, 0x44);
    data_write(f, 0xf4);
    assert_true(status(f) & STS_OBF);
    assert_false(f->level[I8042_KBD_IRQ]);
    data_read(f);
}

static void test_each_queued_byte_gets_an_edge(void **state)
{
    struct fixture *f = *state;
    data_write(f, 0xff); /* keyboard reset: ACK then BAT OK */
    assert_int_equal(f->rises[I8042_KBD_IRQ], 1);
    assert_int_equal(expect_byte(f), 0xfa);
    assert_int_equal(f->rises[I8042_KBD_IRQ], 2);
    assert_int_equal(expect_byte(f), 0xaa);
    assert_false(status(f) & STS_OBF);
    assert_false(f->level[I8042_KBD_IRQ]);
}

static void test_keyboard_identify(void **state)
{
    struct fixture *f = *state;
    data_write(f, 0xf2);
    assert_int_equal(expect_byte(f), 0xfa);
    assert_int_equal(expect_byte(f), 0xab);
    assert_int_equal(expect_byte(f), 0x41); /* translated (default command byte) */
    command(f, 0x60);
    data_write(f, 0x01); /* translation off */
    data_write(f, 0xf2);
    data_read(f);
    data_read(f);
    assert_int_equal(expect_byte(f), 0x83);
}

static void test_keyboard_parameter_commands(void **state)
{
    struct fixture *f = *state;
    data_write(f, 0xed); /* LEDs */
    assert_int_equal(expect_byte(f), 0xfa);
    data_write(f, 0x07);
    assert_int_equal(expect_byte(f), 0xfa);
    data_write(f, 0xf0); /* scancode set */
    assert_int_equal(expect_byte(f), 0xfa);
    data_write(f, 0x00); /* query */
    assert_int_equal(expect_byte(f), 0xfa);
    assert_int_equal(expect_byte(f), 0x02);
    data_write(f, 0xee);
    assert_int_equal(expect_byte(f), 0xee);
    data_write(f, 0x12); /* not a command */
    assert_int_equal(expect_byte(f), 0xfe);
}

static void test_aux_loopback_and_absent_mouse(void **state)
{
    struct fixture *f = *state;
    command(f, 0xd3);
    data_write(f, 0x5a);
    uint8_t st = status(f);
    assert_true(st & STS_AUX_OBF);
    assert_true(f->level[I8042_AUX_IRQ]);
    assert_false(f->level[I8042_KBD_IRQ]);
    assert_int_equal(data_read(f), 0x5a);
    assert_false(f->level[I8042_AUX_IRQ]);
    /* Talking to the mouse times out: there is none. */
    command(f, 0xd4);
    data_write(f, 0xff);
    st = status(f);
    assert_true(st & STS_AUX_OBF);
    assert_true(st & STS_TIMEOUT);
    assert_int_equal(data_read(f), 0xfe);
    assert_false(status(f) & STS_TIMEOUT);
}

static void test_port61_refresh_toggles(void **state)
{
    struct fixture *f = *state;
    uint8_t v = 0x03;
    i8042_port61_ops.write(f->k, 0, &v, 1);
    i8042_port61_ops.read(f->k, 0, &v, 1);
    assert_int_equal(v & 0x0f, 0x03);
    uint8_t first = v & 0x10;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    bool toggled = false;
    do {
        i8042_port61_ops.read(f->k, 0, &v, 1);
        if ((v & 0x10) != first)
            toggled = true;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (!toggled && now.tv_sec - start.tv_sec < 2);
    assert_true(toggled);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_self_test, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_byte_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pulse_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_port_reset_and_a20, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyboard_irq_follows_obf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_queued_byte_gets_an_edge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyboard_identify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyboard_parameter_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aux_loopback_and_absent_mouse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port61_refresh_toggles, setup, teardown),
    };
    return cmocka_run_group_tests_name("i8042", tests, NULL, NULL);
}
