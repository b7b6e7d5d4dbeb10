/*
 * The two small ARM PrimeCell devices of the arm64 machine, each an MMIO
 * register window with the PrimeCell identification registers at
 * 0xfe0-0xffc that Linux's AMBA bus reads to match a driver:
 *
 * - PL031 real-time clock (ARM DDI 0224, PrimeCell RTC PL031 TRM): a
 *   seconds counter RTCDR = RTCLR + seconds since the load, following the
 *   host's CLOCK_REALTIME. The match interrupt (alarm) is not generated:
 *   RTCMR is kept and RTCRIS stays 0 (Linux's rtc-pl031 then has no alarm,
 *   nothing else depends on it).
 * - PL061 GPIO (ARM DDI 0190, PrimeCell GPIO PL061 TRM): eight lines with
 *   the data register masked by address bits [9:2], direction, and edge or
 *   level interrupts (IS, IBE, IEV, IE, RIS, MIS, IC) on one output line.
 *   The VMM drives input lines (pl061_set_input): line 3 is the power
 *   button, described to the guest as a gpio-keys KEY_POWER.
 *
 * Pure device models (the interrupt goes through vm_hooks), so they are
 * unit-tested on any host (tests/unit/arm64/test_arm64_amba.c).
 */
#ifndef KRUNKIT_ARCH_ARM64_AMBA_H
#define KRUNKIT_ARCH_ARM64_AMBA_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/io_bus.h"
#include "vmm/machine.h"

#define AMBA_WINDOW 0x1000

struct pl031;
struct pl061;

/* now: seconds of the host's real-time clock (NULL: CLOCK_REALTIME); tests pass a fake. */
struct pl031 *pl031_create(uint64_t (*now)(void));
void pl031_destroy(struct pl031 *r);
extern const struct io_ops pl031_io_ops;

/* hooks->set_irq_line drives `line` (hooks may be NULL). NULL on ENOMEM. */
struct pl061 *pl061_create(const struct vm_hooks *hooks, unsigned line);
void pl061_destroy(struct pl061 *g);
extern const struct io_ops pl061_io_ops;
/* The level the outside world drives on input `pin` (0-7); edges raise interrupts. */
void pl061_set_input(struct pl061 *g, unsigned pin, bool level);
/*
 * Press the power button on `pin`: the line goes high now and low again
 * once the guest has read it high (its gpio-keys driver reads the line
 * after the interrupt, debounced): a press the guest saw, then a release,
 * with no timer in the VMM.
 */
void pl061_press(struct pl061 *g, unsigned pin);

#endif
