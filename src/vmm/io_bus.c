/*
 * Port I/O and MMIO range dispatch (see io_bus.h). Ranges are kept sorted
 * and looked up by binary search; exits are frequent, registrations rare.
 */
#include "vmm/io_bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void io_bus_init(struct io_bus *bus)
{
    memset(bus, 0, sizeof(*bus));
    pthread_rwlock_init(&bus->lock, NULL);
}

void io_bus_destroy(struct io_bus *bus)
{
    free(bus->ranges);
    bus->ranges = NULL;
    bus->nr = bus->cap = 0;
    pthread_rwlock_destroy(&bus->lock);
}

/* Index of the first range whose end is above addr. */
static unsigned io_bus_lower_bound(const struct io_bus *bus, uint64_t addr)
{
    unsigned lo = 0, hi = bus->nr;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        const struct io_range *r = &bus->ranges[mid];
        if (r->base + (r->len - 1) < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len, const struct io_ops *ops,
                    void *opaque)
{
    if (len == 0 || base + (len - 1) < base)
        return -EINVAL;
    pthread_rwlock_wrlock(&bus->lock);
    unsigned i = io_bus_lower_bound(bus, base);
    if (i < bus->nr && bus->ranges[i].base <= base + (len - 1)) {
        pthread_rwlock_unlock(&bus->lock);
        return -EEXIST;
    }
    if (bus->nr == bus->cap) {
        unsigned cap = bus->cap ? bus->cap * 2 : 16;
        struct io_range *n = realloc(bus->ranges, cap * sizeof(*n));
        if (!n) {
            pthread_rwlock_unlock(&bus->lock);
            return -ENOMEM;
        }
        bus->ranges = n;
        bus->cap = cap;
    }
    memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->nr - i) * sizeof(bus->ranges[0]));
    bus->ranges[i] = (struct io_range){.base = base, .len = len, .ops = ops, .opaque = opaque};
    bus->nr++;
    pthread_rwlock_unlock(&bus->lock);
    return 0;
}

int io_bus_unregister(struct io_bus *bus, uint64_t base)
{
    pthread_rwlock_wrlock(&bus->lock);
    unsigned i = io_bus_lower_bound(bus, base);
    if (i >= bus->nr || bus->ranges[i].base != base) {
        pthread_rwlock_unlock(&bus->lock);
        return -ENOENT;
    }
    memmove(&bus->ranges[i], &bus->ranges[i + 1], (bus->nr - i - 1) * sizeof(bus->ranges[0]));
    bus->nr--;
    pthread_rwlock_unlock(&bus->lock);
    return 0;
}

bool io_bus_access(struct io_bus *bus, uint64_t addr, void *data, unsigned len, bool is_write)
{
    pthread_rwlock_rdlock(&bus->lock);
    unsigned i = io_bus_lower_bound(bus, addr);
    const struct io_range *r = i < bus->nr ? &bus->ranges[i] : NULL;
    /* The whole access must fall inside the range. */
    if (!r || addr < r->base || addr - r->base > r->len - len || len > r->len) {
        pthread_rwlock_unlock(&bus->lock);
        if (!is_write)
            memset(data, 0xff, len);
        return false;
    }
    /*
     * Call the device outside the lock: a handler may itself move ranges
     * (a BAR write in configuration space remaps I/O ranges on this same bus).
     * Devices outlive the vCPUs, so the copied range stays valid.
     */
    struct io_range hit = *r;
    pthread_rwlock_unlock(&bus->lock);
    uint64_t off = addr - hit.base;
    if (is_write) {
        if (hit.ops->write)
            hit.ops->write(hit.opaque, off, data, len);
    } else if (hit.ops->read) {
        hit.ops->read(hit.opaque, off, data, len);
    } else {
        memset(data, 0xff, len);
    }
    return true;
}
