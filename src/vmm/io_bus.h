/*
 * Address-range dispatch for port I/O and MMIO exits: devices register a
 * [base, base+len) range with read/write callbacks; a vCPU thread looks the
 * address up and calls the device with the offset into its range.
 * Registration may change at run time (PCI BAR reprogramming), from inside
 * a handler too: callbacks run outside the bus lock, so a device must stay
 * alive until the vCPUs have stopped, even after it is unregistered.
 */
#ifndef KRUNKIT_VMM_IO_BUS_H
#define KRUNKIT_VMM_IO_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct io_ops {
    /* len is 1, 2, 4 or 8; data is little-endian guest bytes. */
    void (*read)(void *opaque, uint64_t offset, void *data, unsigned len);
    void (*write)(void *opaque, uint64_t offset, const void *data, unsigned len);
};

struct io_range {
    uint64_t base, len;
    const struct io_ops *ops;
    void *opaque;
};

struct io_bus {
    pthread_rwlock_t lock;
    struct io_range *ranges; /* sorted by base, non-overlapping */
    unsigned nr, cap;
};

void io_bus_init(struct io_bus *bus);
void io_bus_destroy(struct io_bus *bus);
/* -EEXIST when the range overlaps another, -EINVAL for len 0 or wraparound. */
int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len, const struct io_ops *ops,
                    void *opaque);
int io_bus_unregister(struct io_bus *bus, uint64_t base);
/* false when nothing is mapped there (reads then return all ones). */
bool io_bus_access(struct io_bus *bus, uint64_t addr, void *data, unsigned len, bool is_write);

#endif
