/* Port 0x92 and the 0xCF9 reset control register, and 0xCF9 through the PCI bus's window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hw/pci.h"
#include "arch/x86/i440fx.h"
#include "arch/x86/reset.h"

static unsigned resets;

static void on_reset(void *opaque)
{
    (void)opaque;
    resets++;
}

static int setup(void **state)
{
    struct platform_events ev = {.reset = on_reset};
    resets = 0;
    *state = reset_ctl_create(&ev);
    assert_non_null(*state);
    return 0;
}

static int teardown(void **state)
{
    reset_ctl_destroy(*state);
    return 0;
}

static void test_cf9_reset_values(void **state)
{
    struct reset_ctl *r = *state;
    reset_ctl_write(r, 0x02); /* SYS_RST alone only selects the reset kind */
    assert_int_equal(resets, 0);
    assert_int_equal(reset_ctl_read(r), 0x02);
    reset_ctl_write(r, 0x06); /* the FADT's RESET_VALUE */
    assert_int_equal(resets, 1);
    reset_ctl_write(r, 0x0e);
    assert_int_equal(resets, 2);
    /* RST_CPU does not stick. */
    assert_int_equal(reset_ctl_read(r) & 0x04, 0);
    reset_ctl_write(r, 0x00);
    assert_int_equal(resets, 2);
}

static void test_cf9_through_pci_window(void **state)
{
    struct reset_ctl *r = *state;
    struct io_bus mmio, pio;
    static struct pci_bus bus;
    static struct i440fx host;
    io_bus_init(&mmio);
    io_bus_init(&pio);
    assert_int_equal(pci_bus_init(&bus, &mmio, &pio, 0xc0000000, 0xfec00000, 0, 0), 0);
    assert_int_equal(i440fx_init(&host, &bus, &pio, reset_ctl_write, r), 0);

    /* A 32-bit CONFIG_ADDRESS write does not reach the reset register. */
    uint32_t addr = 0x80000000u;
    assert_true(io_bus_access(&pio, 0xcf8, &addr, 4, true));
    assert_int_equal(resets, 0);
    uint8_t v = 0x06;
    assert_true(io_bus_access(&pio, RESET_CTL_PORT, &v, 1, true));
    assert_int_equal(resets, 1);

    i440fx_destroy(&host);
    pci_bus_destroy(&bus);
    io_bus_destroy(&pio);
    io_bus_destroy(&mmio);
}

static void test_port92(void **state)
{
    struct reset_ctl *r = *state;
    uint8_t v;
    port92_io_ops.read(r, 0, &v, 1);
    assert_int_equal(v, 0x02); /* A20 on, not resetting */
    v = 0x00;
    port92_io_ops.write(r, 0, &v, 1);
    port92_io_ops.read(r, 0, &v, 1);
    assert_int_equal(v, 0x00);
    assert_int_equal(resets, 0);
    v = 0x03; /* bit 0 rising: reset */
    port92_io_ops.write(r, 0, &v, 1);
    assert_int_equal(resets, 1);
    port92_io_ops.read(r, 0, &v, 1);
    assert_int_equal(v, 0x02);
    v = 0x02;
    port92_io_ops.write(r, 0, &v, 1);
    assert_int_equal(resets, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cf9_reset_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cf9_through_pci_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port92, setup, teardown),
    };
    return cmocka_run_group_tests_name("reset", tests, NULL, NULL);
}
