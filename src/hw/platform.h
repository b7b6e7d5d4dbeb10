/*
 * How platform devices (on a PC: i8042, reset control, ACPI PM) tell the
 * VMM that the guest asked for a machine-level event: power off (ACPI S5)
 * or reset (on a PC: an i8042 pulse, port 0x92, the reset control
 * register). Devices call these from the vCPU thread that performed the
 * I/O, never with a device lock held, so the VMM may stop vCPUs or call
 * back into the devices from them.
 */
#ifndef KRUNKIT_HW_PLATFORM_H
#define KRUNKIT_HW_PLATFORM_H

#include <stdbool.h>

#include "vmm/machine.h"

struct platform_events {
    void (*poweroff)(void *opaque); /* guest entered S5 */
    void (*reset)(void *opaque);    /* guest asked for a system reset */
    void *opaque;
};

static inline void platform_poweroff(const struct platform_events *ev)
{
    if (ev && ev->poweroff)
        ev->poweroff(ev->opaque);
}

static inline void platform_reset(const struct platform_events *ev)
{
    if (ev && ev->reset)
        ev->reset(ev->opaque);
}

/* Drive a wired interrupt line (the arch numbers them); a machine without hooks (tests) has none.
 */
static inline void platform_set_irq(const struct vm_hooks *hooks, unsigned line, bool level)
{
    if (hooks && hooks->set_irq_line)
        hooks->set_irq_line(hooks->opaque, line, level);
}

#endif
