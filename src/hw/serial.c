/*
 * 16550A UART model (PC16550D data sheet, "Registers" and "FIFO Interrupt
 * Mode Operation"). See serial.h for what is simplified and why.
 */
#include "hw/serial.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hw/platform.h"

/* Register offsets (DLAB selects the divisor latch at 0 and 1). */
enum {
    REG_RBR_THR_DLL = 0,
    REG_IER_DLM = 1,
    REG_IIR_FCR = 2,
    REG_LCR = 3,
    REG_MCR = 4,
    REG_LSR = 5,
    REG_MSR = 6,
    REG_SCR = 7,
};

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* transmitter holding register empty */
#define IER_ELSI 0x04  /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */
#define IER_MASK 0x0f

#define IIR_NO_INT 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_CTI 0x0c /* character timeout: data below the trigger level */
#define IIR_FIFO_ON 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04
#define FCR_TRIGGER_SHIFT 6

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_PE 0x04
#define LSR_FE 0x08
#define LSR_BI 0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRORS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_DELTAS 0x0f
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

/*
 * The guest-visible FIFO is 16 bytes, but the guest cannot tell how much
 * more the host has queued behind it; a larger buffer lets a paste or a
 * burst of console input arrive in one go.
 */
#define RX_BUF_SIZE 1024

struct serial {
    pthread_mutex_t lock;
    const struct vm_hooks *hooks;
    unsigned irq;
    struct serial_backend backend;
    unsigned reg_shift; /* registers 1 << reg_shift bytes apart (0 on the ISA bus) */

    uint8_t ier, lcr, mcr, lsr_errors, msr, scr, fcr;
    uint16_t divisor;
    bool thr_ipending; /* THR-empty interrupt armed, cleared by an IIR read or a THR write */
    bool irq_level;

    uint8_t rx[RX_BUF_SIZE];
    size_t rx_head, rx_count;
};

static const uint8_t trigger_levels[4] = {1, 4, 8, 14};

static bool fifo_enabled(const struct serial *s)
{
    return s->fcr & FCR_ENABLE;
}

static uint8_t compute_iir(const struct serial *s)
{
    if ((s->ier & IER_ELSI) && (s->lsr_errors & LSR_ERRORS))
        return IIR_RLSI;
    if ((s->ier & IER_ERBFI) && s->rx_count) {
        if (fifo_enabled(s) && s->rx_count < trigger_levels[s->fcr >> FCR_TRIGGER_SHIFT])
            return IIR_CTI;
        return IIR_RDI;
    }
    if ((s->ier & IER_ETBEI) && s->thr_ipending)
        return IIR_THRI;
    if ((s->ier & IER_EDSSI) && (s->msr & MSR_DELTAS))
        return IIR_MSI;
    return IIR_NO_INT;
}

/* Called with the lock held after every state change. */
static void update_irq(struct serial *s)
{
    bool level = compute_iir(s) != IIR_NO_INT;
    if (level != s->irq_level) {
        s->irq_level = level;
        platform_set_irq(s->hooks, s->irq, level);
    }
}

static void rx_clear(struct serial *s)
{
    s->rx_head = 0;
    s->rx_count = 0;
}

static void rx_push(struct serial *s, uint8_t byte)
{
    if (s->rx_count == RX_BUF_SIZE) {
        s->lsr_errors |= LSR_OE;
        return;
    }
    s->rx[(s->rx_head + s->rx_count) % RX_BUF_SIZE] = byte;
    s->rx_count++;
}

/* In loopback the modem inputs are wired to the modem outputs. */
static uint8_t loopback_msr_lines(uint8_t mcr)
{
    uint8_t lines = 0;
    if (mcr & MCR_RTS)
        lines |= MSR_CTS;
    if (mcr & MCR_DTR)
        lines |= MSR_DSR;
    if (mcr & MCR_OUT1)
        lines |= MSR_RI;
    if (mcr & MCR_OUT2)
        lines |= MSR_DCD;
    return lines;
}

/* A connected null-modem: carrier, data set ready and clear to send. */
#define MSR_CONNECTED (MSR_DCD | MSR_DSR | MSR_CTS)

static void set_msr_lines(struct serial *s, uint8_t lines)
{
    uint8_t old = s->msr & ~MSR_DELTAS;
    uint8_t changed = old ^ lines;
    uint8_t deltas = s->msr & MSR_DELTAS;
    if (changed & MSR_CTS)
        deltas |= MSR_DCTS;
    if (changed & MSR_DSR)
        deltas |= MSR_DDSR;
    if (changed & MSR_DCD)
        deltas |= MSR_DDCD;
    /* TERI flags the trailing edge only: RI going from on to off. */
    if ((old & MSR_RI) && !(lines & MSR_RI))
        deltas |= MSR_TERI;
    s->msr = lines | deltas;
}

static void write_mcr(struct serial *s, uint8_t val)
{
    uint8_t old = s->mcr;
    s->mcr = val & MCR_MASK;
    if (s->mcr & MCR_LOOP)
        set_msr_lines(s, loopback_msr_lines(s->mcr));
    else if (old & MCR_LOOP)
        set_msr_lines(s, MSR_CONNECTED);
}

static void write_fcr(struct serial *s, uint8_t val)
{
    /* Toggling the FIFO enable resets both FIFOs (data sheet, FCR bit 0). */
    if ((val ^ s->fcr) & FCR_ENABLE)
        val |= FCR_CLEAR_RX | FCR_CLEAR_TX;
    if (val & FCR_CLEAR_RX) {
        rx_clear(s);
    }
    /* The transmitter is always empty: clearing it changes nothing. */
    s->fcr = val & (FCR_ENABLE | (3 << FCR_TRIGGER_SHIFT));
    if (!(s->fcr & FCR_ENABLE))
        s->fcr = 0;
}

static void write_thr(struct serial *s, uint8_t val)
{
    if (s->mcr & MCR_LOOP)
        rx_push(s, val);
    else if (s->backend.write)
        s->backend.write(s->backend.opaque, &val, 1);
    /* Sent at once: THR is empty again, which re-arms the THRE interrupt. */
    s->thr_ipending = true;
}

static void reg_write(struct serial *s, unsigned reg, uint8_t val)
{
    switch (reg) {
    case REG_RBR_THR_DLL:
        if (s->lcr & LCR_DLAB)
            s->divisor = (s->divisor & 0xff00) | val;
        else
            write_thr(s, val);
        break;
    case REG_IER_DLM:
        if (s->lcr & LCR_DLAB) {
            s->divisor = (uint16_t)((s->divisor & 0x00ff) | val << 8);
        } else {
            uint8_t old = s->ier;
            s->ier = val & IER_MASK;
            /* Enabling ETBEI while THR is empty raises the interrupt at once. */
            if (!(old & IER_ETBEI) && (s->ier & IER_ETBEI))
                s->thr_ipending = true;
        }
        break;
    case REG_IIR_FCR:
        write_fcr(s, val);
        break;
    case REG_LCR:
        s->lcr = val;
        break;
    case REG_MCR:
        write_mcr(s, val);
        break;
    case REG_LSR:
    case REG_MSR:
        /* Factory test registers on the real part; writes are ignored. */
        break;
    case REG_SCR:
        s->scr = val;
        break;
    }
}

/* Returns the byte; *drained reports that the receive buffer just emptied. */
static uint8_t reg_read(struct serial *s, unsigned reg, bool *drained)
{
    uint8_t val = 0;
    switch (reg) {
    case REG_RBR_THR_DLL:
        if (s->lcr & LCR_DLAB)
            return (uint8_t)s->divisor;
        if (s->rx_count) {
            val = s->rx[s->rx_head];
            s->rx_head = (s->rx_head + 1) % RX_BUF_SIZE;
            s->rx_count--;
            if (!s->rx_count)
                *drained = true;
        }
        return val;
    case REG_IER_DLM:
        if (s->lcr & LCR_DLAB)
            return (uint8_t)(s->divisor >> 8);
        return s->ier;
    case REG_IIR_FCR:
        val = compute_iir(s);
        /* Reading IIR while it reports THRE acknowledges that interrupt. */
        if (val == IIR_THRI)
            s->thr_ipending = false;
        if (fifo_enabled(s))
            val |= IIR_FIFO_ON;
        return val;
    case REG_LCR:
        return s->lcr;
    case REG_MCR:
        return s->mcr;
    case REG_LSR:
        val = LSR_THRE | LSR_TEMT | s->lsr_errors;
        if (s->rx_count)
            val |= LSR_DR;
        s->lsr_errors = 0;
        return val;
    case REG_MSR:
        val = s->msr;
        s->msr &= ~MSR_DELTAS;
        return val;
    case REG_SCR:
        return s->scr;
    }
    return 0xff;
}

/* Wider accesses behave as consecutive byte cycles, as on the ISA bus. */
static void serial_io_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    struct serial *s = opaque;
    uint8_t *out = data;
    bool drained = false;

    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < len; i++) {
        uint64_t reg = offset + i;
        out[i] = reg < SERIAL_NR_PORTS ? reg_read(s, (unsigned)reg, &drained) : 0xff;
    }
    update_irq(s);
    pthread_mutex_unlock(&s->lock);

    if (drained && s->backend.rx_drained)
        s->backend.rx_drained(s->backend.opaque);
}

static void serial_io_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct serial *s = opaque;
    const uint8_t *in = data;

    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < len; i++) {
        uint64_t reg = offset + i;
        if (reg < SERIAL_NR_PORTS)
            reg_write(s, (unsigned)reg, in[i]);
    }
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
}

const struct io_ops serial_io_ops = {
    .read = serial_io_read,
    .write = serial_io_write,
};

struct serial *serial_create(const struct vm_hooks *hooks, unsigned irq,
                             const struct serial_backend *backend)
{
    struct serial *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    s->hooks = hooks;
    s->irq = irq;
    if (backend)
        s->backend = *backend;
    s->divisor = 12; /* 9600 baud from the 1.8432 MHz clock */
    s->lcr = 0x03;   /* 8N1 */
    s->msr = MSR_CONNECTED;
    return s;
}

void serial_destroy(struct serial *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/*
 * Spaced registers (an MMIO UART with reg-shift): one register per
 * 1 << reg_shift bytes, reached at its first byte by an access of any
 * width; the register is the access's low byte, the rest reads as zero.
 * Accesses elsewhere in a register's span read as zero and write nothing.
 */
static void serial_spaced_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    struct serial *s = opaque;
    memset(data, 0, len);
    if (offset & ((1u << s->reg_shift) - 1))
        return;
    serial_io_read(s, offset >> s->reg_shift, data, 1);
}

static void serial_spaced_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct serial *s = opaque;
    (void)len;
    if (offset & ((1u << s->reg_shift) - 1))
        return;
    serial_io_write(s, offset >> s->reg_shift, data, 1);
}

static const struct io_ops serial_spaced_ops = {
    .read = serial_spaced_read,
    .write = serial_spaced_write,
};

int serial_register(struct serial *s, struct io_bus *bus, uint64_t base, unsigned reg_shift)
{
    if (reg_shift > 3)
        return -EINVAL;
    s->reg_shift = reg_shift;
    if (reg_shift == 0)
        return io_bus_register(bus, base, SERIAL_NR_PORTS, &serial_io_ops, s);
    return io_bus_register(bus, base, (uint64_t)SERIAL_NR_PORTS << reg_shift, &serial_spaced_ops,
                           s);
}

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
    size_t n;

    pthread_mutex_lock(&s->lock);
    if (s->mcr & MCR_LOOP) {
        /* The receiver is cut off from the line in loopback: bytes are lost. */
        n = len;
    } else {
        n = RX_BUF_SIZE - s->rx_count;
        if (n > len)
            n = len;
        for (size_t i = 0; i < n; i++)
            rx_push(s, buf[i]);
    }
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
    return n;
}
