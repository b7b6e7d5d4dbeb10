/*
 * MC146818 real-time clock and its 128 bytes of CMOS RAM behind the index
 * port 0x70 (bit 7 masks NMI) and the data port 0x71 (Motorola MC146818A
 * data sheet). Time is the host's clock plus an offset the guest changes by
 * setting the clock; BCD or binary and 12/24-hour formats per register B;
 * UIP reads set during the last 244 us before each second's update; the
 * century lives in byte 0x32, as the FADT's CENTURY field says.
 * No interrupts on IRQ 8: nothing we boot relies on them, and register C
 * still reports the update-ended flag for software that polls it.
 *
 * The VMM also stores what firmware reads from CMOS (cmos_set_memory,
 * cmos_set_byte): the memory size bytes 0x15-0x18, 0x30/0x31, 0x34/0x35,
 * 0x5b-0x5d and the CPU count in 0x5f, in QEMU's layout that OVMF and
 * SeaBIOS expect.
 */
#ifndef KRUNKIT_ARCH_X86_CMOS_H
#define KRUNKIT_ARCH_X86_CMOS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "vmm/io_bus.h"

#define CMOS_BASE_PORT 0x70
#define CMOS_NR_PORTS 2
#define CMOS_SIZE 128
#define CMOS_CENTURY 0x32

struct cmos;

/* A wall clock (CLOCK_REALTIME semantics); tests substitute a fake one. */
typedef void (*cmos_clock_fn)(void *opaque, struct timespec *now);

/* clock NULL: the host's CLOCK_REALTIME. NULL on ENOMEM. */
struct cmos *cmos_create(cmos_clock_fn clock, void *clock_opaque);
void cmos_destroy(struct cmos *c);

extern const struct io_ops cmos_io_ops; /* ports 0x70-0x71, opaque = struct cmos */
int cmos_register(struct cmos *c, struct io_bus *pio);

/* Plain RAM bytes (not the clock registers 0x00-0x0d); -EINVAL out of range. */
int cmos_set_byte(struct cmos *c, unsigned index, uint8_t val);
uint8_t cmos_get_byte(struct cmos *c, unsigned index);

/*
 * Memory size as firmware reads it: ram_below_4g and ram_above_4g in bytes
 * (the RAM split around the PCI hole), and the number of vCPUs.
 */
void cmos_set_memory(struct cmos *c, uint64_t ram_below_4g, uint64_t ram_above_4g);
void cmos_set_cpus(struct cmos *c, unsigned cpus);

/* Whether the guest masked NMI through bit 7 of port 0x70. */
bool cmos_nmi_masked(struct cmos *c);

#endif
