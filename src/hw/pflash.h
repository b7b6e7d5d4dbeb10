/*
 * CFI parallel flash with the Intel/Sharp command set (CFI primary vendor
 * command set 0x0001), byte wide with 4 KiB blocks, as QEMU's pflash_cfi01
 * presents the OVMF variable store on the PC machine and as OVMF's
 * QemuFlashFvbServicesRuntimeDxe drives it: read array 0xFF, read status
 * 0x70, clear status 0x50, byte program 0x10/0x40, block erase 0x20 + 0xD0,
 * read identifier 0x90, CFI query 0x98, block lock setup 0x60 (accepted,
 * no effect). Sources: JEDEC JESD68 (CFI), Intel application note 646
 * (command set 0001), and QEMU hw/block/pflash_cfi01.c for the details
 * OVMF depends on (clear status returns to read-array mode; after a
 * program or erase the device answers status until 0xFF).
 *
 * Backing: the whole flash is one page-aligned host buffer (pflash_host())
 * so the VMM can map it into the guest as a KVM read-only memory slot while
 * the device is in read-array mode: reads then cost no exit, and every
 * guest write still arrives as an MMIO exit at pflash_io_ops. When a command
 * leaves read-array mode, reads must reach the device (they return status,
 * ID or query data), so the device calls the mode handler and the VMM
 * unmaps the slot until the handler reports read-array mode again. The
 * MMIO handlers answer correctly in every mode, so a VMM that never maps
 * the buffer also works, only slower.
 *
 * Programs and erases are written through to the backing file (pwrite at
 * the same offset) and made durable (fdatasync) when the device returns to
 * read-array mode and on pflash_flush()/pflash_destroy(). Without a file
 * (fd < 0) the flash is volatile: changes live as long as the process.
 */
#ifndef KRUNKIT_HW_PFLASH_H
#define KRUNKIT_HW_PFLASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/io_bus.h"

#define PFLASH_BLOCK_SIZE 4096
#define PFLASH_MANUFACTURER_ID 0x89 /* Intel */
#define PFLASH_DEVICE_ID 0x18

/* Status register bits. */
#define PFLASH_SR_READY 0x80
#define PFLASH_SR_ERASE_ERROR 0x20
#define PFLASH_SR_PROGRAM_ERROR 0x10

struct pflash;

/* array_mode: true when plain reads may be served from pflash_host() again. */
typedef void (*pflash_mode_fn)(void *opaque, bool array_mode);

/*
 * A flash of size bytes (a multiple of PFLASH_BLOCK_SIZE) holding a copy of
 * init. fd: the backing file, whose bytes [0, size) mirror the flash; the
 * device takes ownership of it (closed by pflash_destroy); -1 for volatile.
 * readonly: programs and erases fail with status error bits.
 * -EINVAL, -ENOMEM.
 */
int pflash_create(struct pflash **out, const void *init, size_t size, int fd, bool readonly);
void pflash_destroy(struct pflash *p);

uint8_t *pflash_host(struct pflash *p);
size_t pflash_size(const struct pflash *p);
bool pflash_array_mode(struct pflash *p);

/* Called with the device lock held on every change of array mode. */
void pflash_set_mode_handler(struct pflash *p, pflash_mode_fn fn, void *opaque);

/* Machine reset: read-array mode, status ready. */
void pflash_reset(struct pflash *p);
/* Make written data durable now; -errno from fdatasync. */
int pflash_flush(struct pflash *p);

/* MMIO handlers for the flash's guest range; opaque = struct pflash. */
extern const struct io_ops pflash_io_ops;
int pflash_register(struct pflash *p, struct io_bus *mmio, uint64_t gpa);

#endif
