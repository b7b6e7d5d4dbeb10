/*
 * 16550A UART (the PC's COM1 at 0x3F8, IRQ 4, or on MMIO with spaced
 * registers, as device trees describe with reg-shift), as described in the
 * National Semiconductor PC16550D data sheet: RBR/THR, IER, IIR/FCR with
 * FIFOs, LCR with the divisor latch, MCR with loopback, LSR, MSR, SCR.
 *
 * Transmission is instantaneous: every THR write goes straight to the
 * sink, so THRE and TEMT always read set. Received bytes are pushed in by
 * the host (serial_receive) into a buffer the guest drains through RBR;
 * when it is full serial_receive accepts fewer bytes and the host retries
 * once the rx_drained callback fires. The interrupt output follows the
 * IIR "pending" state (asserted while an enabled source is pending), as the
 * chip's INTR pin does; OUT2 does not gate it.
 */
#ifndef KRUNKIT_HW_SERIAL_H
#define KRUNKIT_HW_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/io_bus.h"
#include "vmm/machine.h"

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_NR_PORTS 8

struct serial;

struct serial_backend {
    /*
     * Bytes the guest transmitted. Called on the writing vCPU thread with
     * the UART lock held (so output keeps the guest's order): it must not
     * call back into serial_*.
     */
    void (*write)(void *opaque, const uint8_t *buf, size_t len);
    /* Optional: the receive buffer became empty; called without the lock. */
    void (*rx_drained)(void *opaque);
    void *opaque;
};

/* hooks->set_irq_line drives `irq`; hooks may be NULL (no interrupt). NULL on ENOMEM. */
struct serial *serial_create(const struct vm_hooks *hooks, unsigned irq,
                             const struct serial_backend *backend);
void serial_destroy(struct serial *s);

/* The 8-port register window; opaque is the struct serial. */
extern const struct io_ops serial_io_ops;

/*
 * Map the UART at base on bus: the port I/O bus with reg_shift 0 (COM1 at
 * SERIAL_COM1_BASE), or an MMIO bus with registers 1 << reg_shift bytes
 * apart (reg_shift <= 3). -EINVAL / the bus's -errno.
 */
int serial_register(struct serial *s, struct io_bus *bus, uint64_t base, unsigned reg_shift);

/*
 * Host -> guest bytes. Returns how many were accepted (0 when the buffer is
 * full). Thread-safe.
 */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);

#endif
