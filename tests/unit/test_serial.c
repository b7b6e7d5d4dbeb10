/* 16550A UART register behaviour, driven through its io_ops as a vCPU would. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hw/serial.h"

#define THR 0
#define RBR 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

struct fixture {
    struct serial *s;
    struct vm_hooks hooks;
    bool irq_level;
    unsigned irq_line;
    unsigned irq_changes;
    uint8_t out[256];
    size_t out_len;
    unsigned drained;
};

static int fake_set_irq_line(void *opaque, unsigned line, bool level)
{
    struct fixture *f = opaque;
    f->irq_line = line;
    f->irq_level = level;
    f->irq_changes++;
    return 0;
}

static void sink(void *opaque, const uint8_t *buf, size_t len)
{
    struct fixture *f = opaque;
    for (size_t i = 0; i < len && f->out_len < sizeof(f->out); i++)
        f->out[f->out_len++] = buf[i];
}

static void rx_drained(void *opaque)
{
    struct fixture *f = opaque;
    f->drained++;
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    f.hooks.set_irq_line = fake_set_irq_line;
    f.hooks.opaque = &f;
    struct serial_backend be = {.write = sink, .rx_drained = rx_drained, .opaque = &f};
    f.s = serial_create(&f.hooks, SERIAL_COM1_IRQ, &be);
    assert_non_null(f.s);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    serial_destroy(f->s);
    return 0;
}

static uint8_t rd(struct fixture *f, unsigned reg)
{
    uint8_t v = 0;
    serial_io_ops.read(f->s, reg, &v, 1);
    return v;
}

static void wr(struct fixture *f, unsigned reg, uint8_t v)
{
    serial_io_ops.write(f->s, reg, &v, 1);
}

static void test_thr_goes_to_sink(void **state)
{
    struct fixture *f = *state;
    wr(f, THR, 'h');
    wr(f, THR, 'i');
    assert_int_equal(f->out_len, 2);
    assert_memory_equal(f->out, "hi", 2);
}

static void test_lsr_transmitter_always_empty(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd(f, LSR) & 0x60, 0x60); /* THRE | TEMT */
    wr(f, THR, 'x');
    assert_int_equal(rd(f, LSR) & 0x60, 0x60);
    assert_int_equal(rd(f, LSR) & 0x01, 0); /* nothing received */
}

static void test_divisor_latch(void **state)
{
    struct fixture *f = *state;
    wr(f, LCR, 0x83); /* DLAB + 8N1 */
    wr(f, DLL, 0x01);
    wr(f, DLM, 0x02);
    assert_int_equal(rd(f, DLL), 0x01);
    assert_int_equal(rd(f, DLM), 0x02);
    /* Divisor writes are not data and do not touch IER. */
    assert_int_equal(f->out_len, 0);
    wr(f, LCR, 0x03);
    assert_int_equal(rd(f, LCR), 0x03);
    assert_int_equal(rd(f, IER), 0x00);
    wr(f, THR, 'a');
    assert_int_equal(f->out_len, 1);
    /* The latch keeps its value across DLAB toggles. */
    wr(f, LCR, 0x80);
    assert_int_equal(rd(f, DLL), 0x01);
    assert_int_equal(rd(f, DLM), 0x02);
}

static void test_scratch_register(void **state)
{
    struct fixture *f = *state;
    wr(f, SCR, 0xa5);
    assert_int_equal(rd(f, SCR), 0xa5);
    wr(f, SCR, 0x5a);
    assert_int_equal(rd(f, SCR), 0x5a);
}

static void test_ier_masks_reserved_bits(void **state)
{
    struct fixture *f = *state;
    wr(f, IER, 0xff);
    assert_int_equal(rd(f, IER), 0x0f);
    wr(f, IER, 0x00);
    assert_int_equal(rd(f, IER), 0x00);
}

static void test_receive_and_read(void **state)
{
    struct fixture *f = *state;
    const uint8_t msg[] = "ok";
    assert_int_equal(serial_receive(f->s, msg, 2), 2);
    assert_int_equal(rd(f, LSR) & 0x01, 0x01);
    assert_int_equal(rd(f, RBR), 'o');
    assert_int_equal(f->drained, 0);
    assert_int_equal(rd(f, RBR), 'k');
    assert_int_equal(rd(f, LSR) & 0x01, 0);
    assert_int_equal(f->drained, 1);
}

static void test_receive_backpressure(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[4096];
    memset(buf, 'z', sizeof(buf));
    size_t n = serial_receive(f->s, buf, sizeof(buf));
    assert_true(n > 0 && n < sizeof(buf));
    assert_int_equal(serial_receive(f->s, buf, 1), 0);
    /* Refusing bytes is not an overrun: nothing was lost. */
    assert_int_equal(rd(f, LSR) & 0x02, 0);
    rd(f, RBR);
    assert_int_equal(serial_receive(f->s, buf, 1), 1);
}

static void test_no_interrupt_when_disabled(void **state)
{
    struct fixture *f = *state;
    const uint8_t b = 'q';
    serial_receive(f->s, &b, 1);
    assert_false(f->irq_level);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x01);
}

static void test_rx_interrupt_asserts_and_clears(void **state)
{
    struct fixture *f = *state;
    wr(f, IER, 0x01);
    assert_false(f->irq_level);
    const uint8_t b = 'q';
    serial_receive(f->s, &b, 1);
    assert_true(f->irq_level);
    assert_int_equal(f->irq_line, SERIAL_COM1_IRQ);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x04);
    rd(f, RBR);
    assert_false(f->irq_level);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x01);
}

static void test_thre_interrupt(void **state)
{
    struct fixture *f = *state;
    /* Enabling ETBEI with THR empty raises the interrupt at once. */
    wr(f, IER, 0x02);
    assert_true(f->irq_level);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x02);
    /* That IIR read acknowledged it. */
    assert_false(f->irq_level);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x01);
    /* Each transmitted byte empties THR again and re-arms it. */
    wr(f, THR, 'a');
    assert_true(f->irq_level);
    /* Disabling ETBEI drops the line. */
    wr(f, IER, 0x00);
    assert_false(f->irq_level);
}

static void test_iir_priorities(void **state)
{
    struct fixture *f = *state;
    /* Overrun an RX buffer through loopback to get a line status condition. */
    wr(f, MCR, 0x10);
    for (int i = 0; i < 2000; i++)
        wr(f, THR, 'x');
    wr(f, MCR, 0x00); /* leaving loopback also changes the modem lines (MSR deltas) */
    wr(f, IER, 0x0f);
    assert_true(f->irq_level);
    /* Receiver line status first, cleared by reading LSR. */
    assert_int_equal(rd(f, IIR) & 0x0f, 0x06);
    assert_int_equal(rd(f, LSR) & 0x03, 0x03); /* OE + DR */
    /* Then received data. */
    assert_int_equal(rd(f, IIR) & 0x0f, 0x04);
    while (rd(f, LSR) & 0x01)
        rd(f, RBR);
    /* Then THR empty, acknowledged by the IIR read itself. */
    assert_int_equal(rd(f, IIR) & 0x0f, 0x02);
    /* Then modem status, cleared by reading MSR. */
    assert_int_equal(rd(f, IIR) & 0x0f, 0x00);
    assert_true(f->irq_level);
    assert_int_not_equal(rd(f, MSR) & 0x0f, 0);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x01);
    assert_false(f->irq_level);
}

static void test_fifo_bits_and_timeout_id(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd(f, IIR) & 0xc0, 0x00);
    wr(f, FCR, 0xc7); /* enable, clear both, trigger at 14 */
    assert_int_equal(rd(f, IIR) & 0xc0, 0xc0);
    wr(f, IER, 0x01);
    uint8_t buf[14];
    memset(buf, 'b', sizeof(buf));
    serial_receive(f->s, buf, 1);
    /* Below the trigger level data is reported as a character timeout. */
    assert_int_equal(rd(f, IIR) & 0x0f, 0x0c);
    serial_receive(f->s, buf, 13);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x04);
    /* Clearing the receive FIFO drops the data and the interrupt. */
    wr(f, FCR, 0xc3);
    assert_int_equal(rd(f, LSR) & 0x01, 0);
    assert_false(f->irq_level);
    wr(f, FCR, 0x00);
    assert_int_equal(rd(f, IIR) & 0xc0, 0x00);
}

static void test_loopback(void **state)
{
    struct fixture *f = *state;
    /* What Linux's autoconfig checks: RTS|OUT2 in loopback read back as CTS|DCD. */
    wr(f, MCR, 0x10 | 0x0a);
    assert_int_equal(rd(f, MSR) & 0xf0, 0x90);
    wr(f, MCR, 0x10 | 0x05); /* DTR | OUT1 -> DSR | RI */
    assert_int_equal(rd(f, MSR) & 0xf0, 0x60);
    /* Transmitted bytes come back on the receiver, not the wire. */
    wr(f, THR, 'L');
    assert_int_equal(f->out_len, 0);
    assert_int_equal(rd(f, LSR) & 0x01, 0x01);
    assert_int_equal(rd(f, RBR), 'L');
    /* Host input is cut off while looping back. */
    const uint8_t b = 'h';
    serial_receive(f->s, &b, 1);
    assert_int_equal(rd(f, LSR) & 0x01, 0);
    /* Leaving loopback: a connected line again, and output reaches the sink. */
    wr(f, MCR, 0x0b);
    assert_int_equal(rd(f, MSR) & 0xb0, 0xb0);
    wr(f, THR, 'W');
    assert_int_equal(f->out_len, 1);
    assert_int_equal(f->out[0], 'W');
}

static void test_msr_deltas_clear_on_read(void **state)
{
    struct fixture *f = *state;
    wr(f, MCR, 0x10); /* all modem outputs off: CTS/DSR/DCD drop */
    uint8_t msr = rd(f, MSR);
    assert_int_equal(msr & 0x0b, 0x0b); /* DCTS, DDSR, DDCD */
    assert_int_equal(rd(f, MSR) & 0x0f, 0);
}

static void test_wide_access_is_byte_cycles(void **state)
{
    struct fixture *f = *state;
    /* A 16-bit write at LCR also writes MCR. */
    uint16_t v = 0x0803; /* LCR=0x03, MCR=0x08 */
    serial_io_ops.write(f->s, LCR, &v, 2);
    assert_int_equal(rd(f, LCR), 0x03);
    assert_int_equal(rd(f, MCR), 0x08);
    /* Bytes past the window read as open bus. */
    uint32_t r = 0;
    serial_io_ops.read(f->s, SCR, &r, 4);
    assert_int_equal(r >> 8, 0xffffff);
}

/* On MMIO with reg-shift 2: one register per 32-bit word, through the bus. */
static void test_mmio_spaced_registers(void **state)
{
    struct fixture *f = *state;
    struct io_bus mmio;
    io_bus_init(&mmio);
    const uint64_t base = 0x09000000;
    assert_int_equal(serial_register(f->s, &mmio, base, 4), -EINVAL);
    assert_int_equal(serial_register(f->s, &mmio, base, 2), 0);
    uint32_t v = 'k';
    assert_true(io_bus_access(&mmio, base + (THR << 2), &v, 4, true));
    assert_int_equal(f->out_len, 1);
    assert_int_equal(f->out[0], 'k');
    v = 0x5a;
    assert_true(io_bus_access(&mmio, base + (SCR << 2), &v, 4, true));
    v = 0;
    assert_true(io_bus_access(&mmio, base + (SCR << 2), &v, 4, false));
    assert_int_equal(v, 0x5a); /* the register in the low byte, zeroes above */
    uint8_t b = 0;
    assert_true(io_bus_access(&mmio, base + (LSR << 2), &b, 1, false));
    assert_int_equal(b & 0x60, 0x60); /* THRE | TEMT */
    /* Inside a register's word but not at its start: nothing there. */
    v = 0xff;
    assert_true(io_bus_access(&mmio, base + (SCR << 2) + 1, &v, 1, true));
    assert_int_equal(rd(f, SCR), 0x5a);
    assert_true(io_bus_access(&mmio, base + (SCR << 2) + 2, &v, 2, false));
    assert_int_equal(v & 0xffff, 0);
    /* The window is 8 registers of 4 bytes. */
    assert_false(io_bus_access(&mmio, base + 32, &v, 4, false));
    io_bus_destroy(&mmio);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_thr_goes_to_sink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lsr_transmitter_always_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_divisor_latch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scratch_register, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ier_masks_reserved_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive_and_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_interrupt_when_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_interrupt_asserts_and_clears, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thre_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iir_priorities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_bits_and_timeout_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msr_deltas_clear_on_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wide_access_is_byte_cycles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mmio_spaced_registers, setup, teardown),
    };
    return cmocka_run_group_tests_name("serial", tests, NULL, NULL);
}
