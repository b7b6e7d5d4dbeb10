/*
 * ACPI PM block: PM timer, PM1 status/enable/control (S5), power button and
 * SCI, GPE0, and the PIIX4 PM function's PMBA moving the block.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "arch/x86/acpi.h"
#include "arch/x86/acpi_pm.h"
#include "arch/x86/i440fx.h"
#include "arch/x86/piix.h"

/* The tables the guest reads and the hardware it drives must agree. */
_Static_assert(ACPI_PM_BASE == ACPI_PM_BASE_DEFAULT, "PM base");
_Static_assert(ACPI_PM1A_CNT_BLK == ACPI_PM_BASE_DEFAULT + ACPI_PM1_CNT_OFFSET, "PM1a_CNT");
_Static_assert(ACPI_PM_TMR_BLK == ACPI_PM_BASE_DEFAULT + ACPI_PM_TMR_OFFSET, "PM_TMR");
_Static_assert(ACPI_GPE0_BLK == ACPI_GPE0_BASE && ACPI_GPE0_BLK_LEN == ACPI_GPE0_LEN, "GPE0");
_Static_assert(ACPI_SCI_IRQ == 9, "SCI");

#define PM1_STS 0
#define PM1_EN 2
#define PM1_CNT 4
#define PM_TMR 8

struct fixture {
    struct acpi_pm *pm;
    struct vm_hooks hooks;
    bool sci;
    unsigned bad_lines;
    unsigned poweroffs;
    uint64_t ns;
};

static int fake_set_irq_line(void *opaque, unsigned line, bool level)
{
    struct fixture *f = opaque;
    if (line == ACPI_SCI_IRQ)
        f->sci = level;
    else
        f->bad_lines++;
    return 0;
}

static void on_poweroff(void *opaque)
{
    struct fixture *f = opaque;
    f->poweroffs++;
}

static uint64_t fake_clock(void *opaque)
{
    struct fixture *f = opaque;
    return f->ns;
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    f.hooks.set_irq_line = fake_set_irq_line;
    f.hooks.opaque = &f;
    f.ns = 1000000000ull;
    struct platform_events ev = {.poweroff = on_poweroff, .opaque = &f};
    f.pm = acpi_pm_create(&f.hooks, &ev, fake_clock, &f);
    assert_non_null(f.pm);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(f->bad_lines, 0);
    acpi_pm_destroy(f->pm);
    return 0;
}

static uint32_t rd(struct fixture *f, unsigned off, unsigned len)
{
    uint32_t v = 0;
    acpi_pm_io_ops.read(f->pm, off, &v, len);
    return v;
}

static void wr(struct fixture *f, unsigned off, uint32_t v, unsigned len)
{
    acpi_pm_io_ops.write(f->pm, off, &v, len);
}

static uint64_t ticks_at(uint64_t ns)
{
    return (uint64_t)((unsigned __int128)ns * ACPI_PM_TIMER_HZ / 1000000000u);
}

static void test_timer_rate(void **state)
{
    struct fixture *f = *state;
    uint32_t t0 = rd(f, PM_TMR, 4);
    f->ns += 1000000000ull;
    uint32_t t1 = rd(f, PM_TMR, 4);
    assert_int_equal((t1 - t0) & 0xffffff, ACPI_PM_TIMER_HZ);
    f->ns += 1000; /* 1 us is 3 or 4 ticks */
    uint32_t t2 = rd(f, PM_TMR, 4);
    assert_in_range((t2 - t1) & 0xffffff, 3, 4);
}

static void test_timer_wraps_at_24_bits(void **state)
{
    struct fixture *f = *state;
    /* Find a clock value just before the counter wraps. */
    uint64_t ns = 1000000000ull;
    while ((ticks_at(ns) & 0xffffff) < 0xffff00)
        ns += 1000;
    f->ns = ns;
    uint32_t before = rd(f, PM_TMR, 4);
    assert_true(before >= 0xffff00 && before <= 0xffffff);
    f->ns += 1000000; /* 1 ms = ~3580 ticks */
    uint32_t after = rd(f, PM_TMR, 4);
    assert_true(after < 0x1000);
    assert_int_equal(after >> 24, 0);
    /* Long after, still 24 bits, and no overflow in the arithmetic. */
    f->ns = 400ull * 24 * 3600 * 1000000000ull; /* 400 days */
    assert_int_equal(rd(f, PM_TMR, 4), ticks_at(f->ns) & 0xffffff);
}

static void test_timer_status_on_bit23_toggle(void **state)
{
    struct fixture *f = *state;
    wr(f, PM1_STS, 0xffff, 2);
    assert_int_equal(rd(f, PM1_STS, 2) & ACPI_PM1_TMR_STS, 0);
    f->ns += 2400000000ull; /* 2.4 s > 2^23 ticks */
    assert_int_equal(rd(f, PM1_STS, 2) & ACPI_PM1_TMR_STS, ACPI_PM1_TMR_STS);
    wr(f, PM1_STS, ACPI_PM1_TMR_STS, 2);
    assert_int_equal(rd(f, PM1_STS, 2) & ACPI_PM1_TMR_STS, 0);
}

static void test_timer_is_read_only(void **state)
{
    struct fixture *f = *state;
    uint32_t t0 = rd(f, PM_TMR, 4);
    wr(f, PM_TMR, 0, 4);
    assert_int_equal(rd(f, PM_TMR, 4), t0);
}

static void test_s5_powers_off(void **state)
{
    struct fixture *f = *state;
    /* ACPICA writes SLP_TYP first, then SLP_TYP | SLP_EN. */
    wr(f, PM1_CNT, ACPI_S5_SLP_TYP << ACPI_PM1_SLP_TYP_SHIFT, 2);
    assert_int_equal(f->poweroffs, 0);
    wr(f, PM1_CNT, ACPI_S5_SLP_TYP << ACPI_PM1_SLP_TYP_SHIFT | ACPI_PM1_SLP_EN, 2);
    assert_int_equal(f->poweroffs, 1);
}

static void test_s5_by_byte_write(void **state)
{
    struct fixture *f = *state;
    wr(f, PM1_CNT + 1, ACPI_PM1_SLP_EN >> 8, 1);
    assert_int_equal(f->poweroffs, 1);
}

static void test_other_sleep_types_do_not_power_off(void **state)
{
    struct fixture *f = *state;
    for (unsigned typ = 1; typ < 8; typ++)
        wr(f, PM1_CNT, typ << ACPI_PM1_SLP_TYP_SHIFT | ACPI_PM1_SLP_EN, 2);
    assert_int_equal(f->poweroffs, 0);
    /* SLP_TYP reads back; SLP_EN does not; SCI_EN always reads 1. */
    wr(f, PM1_CNT, 5 << ACPI_PM1_SLP_TYP_SHIFT, 2);
    uint32_t cnt = rd(f, PM1_CNT, 2);
    assert_int_equal(cnt & ACPI_PM1_SLP_TYP_MASK, 5 << ACPI_PM1_SLP_TYP_SHIFT);
    assert_int_equal(cnt & ACPI_PM1_SLP_EN, 0);
    assert_int_equal(cnt & ACPI_PM1_SCI_EN, ACPI_PM1_SCI_EN);
    wr(f, PM1_CNT, 0, 2);
    assert_int_equal(rd(f, PM1_CNT, 2) & ACPI_PM1_SCI_EN, ACPI_PM1_SCI_EN);
    /* A write to the low byte alone keeps SLP_TYP. */
    wr(f, PM1_CNT, 5 << ACPI_PM1_SLP_TYP_SHIFT, 2);
    wr(f, PM1_CNT, 0, 1);
    assert_int_equal(rd(f, PM1_CNT, 2) & ACPI_PM1_SLP_TYP_MASK, 5 << ACPI_PM1_SLP_TYP_SHIFT);
    assert_int_equal(f->poweroffs, 0);
}

static void test_power_button_sci(void **state)
{
    struct fixture *f = *state;
    acpi_pm_press_power_button(f->pm);
    /* Status is set even while disabled, but no SCI. */
    assert_int_equal(rd(f, PM1_STS, 2) & ACPI_PM1_PWRBTN_STS, ACPI_PM1_PWRBTN_STS);
    assert_false(f->sci);
    wr(f, PM1_EN, ACPI_PM1_PWRBTN_STS, 2);
    assert_true(f->sci);
    assert_int_equal(rd(f, PM1_EN, 2), ACPI_PM1_PWRBTN_STS);
    /* Writing 0 clears nothing; writing 1 clears and drops SCI. */
    wr(f, PM1_STS, 0, 2);
    assert_true(f->sci);
    wr(f, PM1_STS, ACPI_PM1_PWRBTN_STS, 2);
    assert_false(f->sci);
    assert_int_equal(rd(f, PM1_STS, 2) & ACPI_PM1_PWRBTN_STS, 0);
    /* Pressed again with the enable on: SCI at once. */
    acpi_pm_press_power_button(f->pm);
    assert_true(f->sci);
    /* Disabling the event drops SCI while the status stays. */
    wr(f, PM1_EN, 0, 2);
    assert_false(f->sci);
    assert_int_equal(rd(f, PM1_STS, 2) & ACPI_PM1_PWRBTN_STS, ACPI_PM1_PWRBTN_STS);
}

static void test_status_and_enable_in_one_dword(void **state)
{
    struct fixture *f = *state;
    acpi_pm_press_power_button(f->pm);
    /* Enable in the high half, status untouched in the low half. */
    wr(f, PM1_STS, (uint32_t)ACPI_PM1_PWRBTN_STS << 16, 4);
    uint32_t v = rd(f, PM1_STS, 4);
    assert_int_equal(v & 0xffff & ACPI_PM1_PWRBTN_STS, ACPI_PM1_PWRBTN_STS);
    assert_int_equal(v >> 16, ACPI_PM1_PWRBTN_STS);
    assert_true(f->sci);
}

static void *press_thread(void *arg)
{
    acpi_pm_press_power_button(arg);
    return NULL;
}

static void test_power_button_from_another_thread(void **state)
{
    struct fixture *f = *state;
    wr(f, PM1_EN, ACPI_PM1_PWRBTN_STS, 2);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, press_thread, f->pm), 0);
    pthread_join(t, NULL);
    assert_true(f->sci);
}

static uint32_t gpe_rd(struct fixture *f, unsigned off, unsigned len)
{
    uint32_t v = 0;
    acpi_gpe0_io_ops.read(f->pm, off, &v, len);
    return v;
}

static void gpe_wr(struct fixture *f, unsigned off, uint32_t v, unsigned len)
{
    acpi_gpe0_io_ops.write(f->pm, off, &v, len);
}

static void test_gpe0(void **state)
{
    struct fixture *f = *state;
    acpi_pm_raise_gpe(f->pm, 3);
    assert_int_equal(gpe_rd(f, 0, 2), 0x0008);
    assert_false(f->sci);
    gpe_wr(f, 2, 0x0008, 2);
    assert_true(f->sci);
    assert_int_equal(gpe_rd(f, 0, 4), 0x00080008);
    gpe_wr(f, 0, 0x0008, 1);
    assert_false(f->sci);
    assert_int_equal(gpe_rd(f, 0, 2), 0);
    acpi_pm_raise_gpe(f->pm, 99); /* out of range: ignored */
    assert_int_equal(gpe_rd(f, 0, 2), 0);
}

static void test_register_and_move(void **state)
{
    struct fixture *f = *state;
    struct io_bus pio;
    io_bus_init(&pio);
    assert_int_equal(acpi_pm_register(f->pm, &pio), 0);
    uint32_t v = 0;
    assert_true(io_bus_access(&pio, ACPI_PM_TMR_BLK, &v, 4, false));
    assert_true(io_bus_access(&pio, ACPI_GPE0_BLK, &v, 2, false));

    assert_int_equal(acpi_pm_set_base(f->pm, 0xb000, true), 0);
    assert_false(io_bus_access(&pio, ACPI_PM_TMR_BLK, &v, 4, false));
    assert_true(io_bus_access(&pio, 0xb000 + ACPI_PM_TMR_OFFSET, &v, 4, false));
    assert_int_equal(acpi_pm_set_base(f->pm, 0xb000, false), 0);
    assert_false(io_bus_access(&pio, 0xb000 + ACPI_PM_TMR_OFFSET, &v, 4, false));
    /* A block that would collide with GPE0 stays unmapped. */
    assert_int_equal(acpi_pm_set_base(f->pm, ACPI_GPE0_BASE & 0xffc0, true), -EEXIST);

    acpi_pm_destroy(f->pm);
    f->pm = acpi_pm_create(NULL, NULL, NULL, NULL); /* for teardown */
    io_bus_destroy(&pio);
}

/* Config space through mechanism #1, as OVMF reaches it. */
static uint32_t cfg_read(struct io_bus *pio, unsigned devfn, unsigned reg, unsigned len)
{
    uint32_t addr = 0x80000000u | devfn << 8 | (reg & 0xfc), v = 0;
    io_bus_access(pio, 0xcf8, &addr, 4, true);
    io_bus_access(pio, 0xcfc + (reg & 3), &v, len, false);
    return v;
}

static void cfg_write(struct io_bus *pio, unsigned devfn, unsigned reg, uint32_t v, unsigned len)
{
    uint32_t addr = 0x80000000u | devfn << 8 | (reg & 0xfc);
    io_bus_access(pio, 0xcf8, &addr, 4, true);
    io_bus_access(pio, 0xcfc + (reg & 3), &v, len, true);
}

static void test_piix_functions(void **state)
{
    struct fixture *f = *state;
    struct io_bus mmio, pio;
    static struct pci_bus bus;
    static struct pci_device isa, pmdev;
    static struct i440fx host;
    io_bus_init(&mmio);
    io_bus_init(&pio);
    assert_int_equal(pci_bus_init(&bus, &mmio, &pio, 0xc0000000, 0xfec00000, 0, 0), 0);
    assert_int_equal(i440fx_init(&host, &bus, &pio, NULL, NULL), 0);
    assert_int_equal(acpi_pm_register(f->pm, &pio), 0);
    piix3_isa_init(&isa);
    assert_int_equal(pci_register(&bus, &isa, PIIX_ISA_DEVFN), 0);
    piix4_pm_init(&pmdev, f->pm);
    assert_int_equal(pci_register(&bus, &pmdev, PIIX_PM_DEVFN), 0);

    assert_int_equal(cfg_read(&pio, PIIX_ISA_DEVFN, 0, 4), 0x70008086);
    assert_int_equal(cfg_read(&pio, PIIX_ISA_DEVFN, 0x0a, 2), 0x0601);
    assert_int_equal(cfg_read(&pio, PIIX_ISA_DEVFN, 0x0e, 1), 0x80);
    assert_int_equal(cfg_read(&pio, PIIX_ISA_DEVFN, 0x60, 4), 0x80808080);
    cfg_write(&pio, PIIX_ISA_DEVFN, 0x60, 0x0b0b0a0a, 4);
    assert_int_equal(cfg_read(&pio, PIIX_ISA_DEVFN, 0x60, 4), 0x0b0b0a0a);

    assert_int_equal(cfg_read(&pio, PIIX_PM_DEVFN, 0, 4), 0x71138086);
    assert_int_equal(cfg_read(&pio, PIIX_PM_DEVFN, 0x0a, 2), 0x0680);
    /* Already configured, so OVMF keeps our base. */
    assert_int_equal(cfg_read(&pio, PIIX_PM_DEVFN, PIIX_PMBA, 4), ACPI_PM_BASE | 1);
    assert_int_equal(cfg_read(&pio, PIIX_PM_DEVFN, PIIX_PMREGMISC, 1), 1);

    /* Firmware moving the block, from inside a port I/O handler. */
    cfg_write(&pio, PIIX_PM_DEVFN, PIIX_PMBA, 0xb000, 4);
    assert_int_equal(cfg_read(&pio, PIIX_PM_DEVFN, PIIX_PMBA, 4), 0xb001);
    uint32_t v;
    assert_false(io_bus_access(&pio, ACPI_PM_TMR_BLK, &v, 4, false));
    assert_true(io_bus_access(&pio, 0xb008, &v, 4, false));
    /* PMIOSE off unmaps it, on maps it back. */
    cfg_write(&pio, PIIX_PM_DEVFN, PIIX_PMREGMISC, 0, 1);
    assert_false(io_bus_access(&pio, 0xb008, &v, 4, false));
    cfg_write(&pio, PIIX_PM_DEVFN, PIIX_PMREGMISC, 1, 1);
    assert_true(io_bus_access(&pio, 0xb008, &v, 4, false));

    acpi_pm_destroy(f->pm);
    f->pm = acpi_pm_create(NULL, NULL, NULL, NULL);
    i440fx_destroy(&host);
    pci_bus_destroy(&bus);
    io_bus_destroy(&pio);
    io_bus_destroy(&mmio);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_timer_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_wraps_at_24_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_status_on_bit23_toggle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_is_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s5_powers_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s5_by_byte_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_sleep_types_do_not_power_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_button_sci, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_and_enable_in_one_dword, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_button_from_another_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gpe0, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_and_move, setup, teardown),
        cmocka_unit_test_setup_teardown(test_piix_functions, setup, teardown),
    };
    return cmocka_run_group_tests_name("acpi_pm", tests, NULL, NULL);
}
