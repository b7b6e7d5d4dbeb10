/*
 * i8042 keyboard controller (ports 0x60 data, 0x64 status/command) with an
 * idle AT keyboard behind it and no mouse, enough for Linux's i8042/atkbd
 * probe and for firmware: self test, command byte, output port (A20 and
 * the reset line), 0xFx pulse commands (0xFE resets the machine), keyboard
 * ACKs on IRQ 1. Register and command semantics follow the IBM PC AT
 * Technical Reference, "Keyboard Controller".
 *
 * Port 0x61 (system control port B: PIT channel 2 gate, speaker, refresh
 * toggle) is separate (i8042_port61_ops) because with KVM_CREATE_PIT2 and
 * KVM_PIT_SPEAKER_DUMMY the kernel already answers it with the real
 * channel 2 output; register it only when the in-kernel PIT does not.
 */
#ifndef KRUNKIT_ARCH_X86_I8042_H
#define KRUNKIT_ARCH_X86_I8042_H

#include <stdint.h>

#include "hw/platform.h"
#include "vmm/io_bus.h"
#include "vmm/machine.h"

#define I8042_DATA_PORT 0x60
#define I8042_PORT_B 0x61
#define I8042_CMD_PORT 0x64
#define I8042_KBD_IRQ 1
#define I8042_AUX_IRQ 12

struct i8042;

/* hooks (may be NULL) drive IRQ 1/12; events->reset is called for pulse-reset. */
struct i8042 *i8042_create(const struct vm_hooks *hooks, const struct platform_events *events);
void i8042_destroy(struct i8042 *k);

/* 1-byte ranges at 0x60 and 0x64, opaque = the struct i8042 (i8042_register maps both). */
extern const struct io_ops i8042_data_ops;
extern const struct io_ops i8042_cmd_ops;
/* Port 0x61, opaque = the struct i8042 (see above for when to map it). */
extern const struct io_ops i8042_port61_ops;

/* Maps 0x60 and 0x64 on pio. */
int i8042_register(struct i8042 *k, struct io_bus *pio);

#endif
