/*
 * Port I/O / MMIO range dispatch (src/vmm/io_bus.c): registration rules
 * (overlap, wraparound), lookup at range edges, accesses straddling a range
 * end, unregistering, and handlers that change the bus from inside a call.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/io_bus.h"

/* What a device saw: the last call and how many calls. */
struct dev {
    int id;
    unsigned reads, writes;
    uint64_t last_off;
    unsigned last_len;
    uint64_t last_value;
};

static void dev_read(void *opaque, uint64_t off, void *data, unsigned len)
{
    struct dev *d = opaque;
    d->reads++;
    d->last_off = off;
    d->last_len = len;
    /* Answer with something that names the device and the offset. */
    uint64_t v = (uint64_t)d->id << 32 | off;
    memcpy(data, &v, len);
}

static void dev_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
    struct dev *d = opaque;
    d->writes++;
    d->last_off = off;
    d->last_len = len;
    d->last_value = 0;
    memcpy(&d->last_value, data, len);
}

static const struct io_ops dev_ops = {.read = dev_read, .write = dev_write};

static int setup(void **state)
{
    struct io_bus *bus = calloc(1, sizeof(*bus));
    io_bus_init(bus);
    *state = bus;
    /* A re-entrancy deadlock must fail the run, not hang it. */
    alarm(20);
    return 0;
}

static int teardown(void **state)
{
    io_bus_destroy(*state);
    free(*state);
    alarm(0);
    return 0;
}

static uint64_t rd(struct io_bus *bus, uint64_t addr, unsigned len, bool *hit)
{
    uint64_t v = 0;
    bool h = io_bus_access(bus, addr, &v, len, false);
    if (hit)
        *hit = h;
    return v;
}

static bool wr(struct io_bus *bus, uint64_t addr, uint64_t value, unsigned len)
{
    return io_bus_access(bus, addr, &value, len, true);
}

static void test_lookup_at_edges(void **state)
{
    struct io_bus *bus = *state;
    struct dev a = {.id = 1}, b = {.id = 2};
    assert_int_equal(io_bus_register(bus, 0x110, 0x10, &dev_ops, &b), 0);
    /* Adjacent ranges do not overlap. */
    assert_int_equal(io_bus_register(bus, 0x100, 0x10, &dev_ops, &a), 0);
    bool hit;

    assert_int_equal(rd(bus, 0x100, 1, &hit), 0x00);
    assert_true(hit);
    assert_int_equal(a.reads, 1);
    assert_int_equal(rd(bus, 0x10f, 1, &hit), 0x0f);
    assert_true(hit);
    assert_int_equal(a.reads, 2);
    assert_int_equal(rd(bus, 0x110, 1, &hit), 0x00);
    assert_true(hit);
    assert_int_equal(b.reads, 1);
    assert_int_equal(rd(bus, 0x11c, 4, &hit), 0x0c);
    assert_true(hit);
    assert_int_equal(b.last_len, 4);

    /* Just outside both ends: nothing mapped, reads all ones. */
    assert_int_equal(rd(bus, 0xff, 1, &hit), 0xff);
    assert_false(hit);
    assert_int_equal(rd(bus, 0x120, 2, &hit), 0xffff);
    assert_false(hit);
    assert_int_equal(a.reads + b.reads, 4);

    assert_true(wr(bus, 0x104, 0xdeadbeef, 4));
    assert_int_equal(a.writes, 1);
    assert_int_equal(a.last_off, 4);
    assert_int_equal(a.last_value, 0xdeadbeef);
    assert_false(wr(bus, 0x120, 1, 1));
    assert_int_equal(a.writes + b.writes, 1);
}

static void test_overlap_refused(void **state)
{
    struct io_bus *bus = *state;
    struct dev a = {.id = 1};
    assert_int_equal(io_bus_register(bus, 0x1000, 0x100, &dev_ops, &a), 0);
    assert_int_equal(io_bus_register(bus, 0x1000, 0x100, &dev_ops, &a), -EEXIST);
    assert_int_equal(io_bus_register(bus, 0x10ff, 1, &dev_ops, &a), -EEXIST);
    assert_int_equal(io_bus_register(bus, 0xf00, 0x101, &dev_ops, &a), -EEXIST);
    assert_int_equal(io_bus_register(bus, 0x1080, 0x10, &dev_ops, &a), -EEXIST);
    assert_int_equal(io_bus_register(bus, 0x800, 0x1000, &dev_ops, &a), -EEXIST);
    /* Touching either end is fine. */
    assert_int_equal(io_bus_register(bus, 0xf00, 0x100, &dev_ops, &a), 0);
    assert_int_equal(io_bus_register(bus, 0x1100, 0x100, &dev_ops, &a), 0);
    assert_int_equal(bus->nr, 3);
    /* A range spanning a gap between two others still overlaps them. */
    assert_int_equal(io_bus_register(bus, 0x3000, 0x10, &dev_ops, &a), 0);
    assert_int_equal(io_bus_register(bus, 0x1200, 0x2000, &dev_ops, &a), -EEXIST);
    assert_int_equal(bus->nr, 4);
}

static void test_len_zero_and_wraparound(void **state)
{
    struct io_bus *bus = *state;
    struct dev a = {.id = 1};
    assert_int_equal(io_bus_register(bus, 0x1000, 0, &dev_ops, &a), -EINVAL);
    assert_int_equal(io_bus_register(bus, UINT64_MAX - 0xff, 0x200, &dev_ops, &a), -EINVAL);
    assert_int_equal(io_bus_register(bus, 2, UINT64_MAX, &dev_ops, &a), -EINVAL);
    assert_int_equal(bus->nr, 0);
    /* Ending exactly at the top of the address space is not a wrap. */
    assert_int_equal(io_bus_register(bus, UINT64_MAX - 0xff, 0x100, &dev_ops, &a), 0);
    bool hit;
    assert_int_equal(rd(bus, UINT64_MAX, 1, &hit), 0xff);
    assert_true(hit);
    assert_int_equal(a.last_off, 0xff);
    assert_int_equal(rd(bus, UINT64_MAX - 7, 8, &hit) & 0xffffffff, 0xf8);
    assert_true(hit);
    /* A read of 2 at the last byte would wrap: refused. */
    rd(bus, UINT64_MAX, 2, &hit);
    assert_false(hit);
    /* The whole address space as one range. */
    assert_int_equal(io_bus_unregister(bus, UINT64_MAX - 0xff), 0);
    assert_int_equal(io_bus_register(bus, 0, UINT64_MAX, &dev_ops, &a), 0);
    assert_int_equal(rd(bus, UINT64_MAX - 1, 1, &hit), 0xfe);
    assert_true(hit);
}

static void test_straddling_access_refused(void **state)
{
    struct io_bus *bus = *state;
    struct dev a = {.id = 1}, b = {.id = 2}, tiny = {.id = 3};
    assert_int_equal(io_bus_register(bus, 0x100, 0x10, &dev_ops, &a), 0);
    assert_int_equal(io_bus_register(bus, 0x110, 0x10, &dev_ops, &b), 0);
    assert_int_equal(io_bus_register(bus, 0x200, 2, &dev_ops, &tiny), 0);
    bool hit;
    /* Last four bytes of a: fine. One further straddles into b: refused. */
    rd(bus, 0x10c, 4, &hit);
    assert_true(hit);
    assert_int_equal(rd(bus, 0x10d, 4, &hit), 0xffffffff);
    assert_false(hit);
    assert_int_equal(rd(bus, 0x10f, 2, &hit), 0xffff);
    assert_false(hit);
    assert_int_equal(rd(bus, 0x11c, 8, &hit), UINT64_MAX);
    assert_false(hit);
    /* Wider than the whole range. */
    assert_int_equal(rd(bus, 0x200, 4, &hit), 0xffffffff);
    assert_false(hit);
    assert_false(wr(bus, 0x200, 0, 4));
    assert_false(wr(bus, 0x10f, 0, 2));
    assert_int_equal(a.reads, 1);
    assert_int_equal(b.reads + tiny.reads + a.writes + b.writes + tiny.writes, 0);
    rd(bus, 0x200, 2, &hit);
    assert_true(hit);
}

static void test_many_ranges_binary_search(void **state)
{
    struct io_bus *bus = *state;
    enum { N = 200 };
    static struct dev devs[N];
    /* Range i: [0x1000 * i + 0x10, + 0x100 + i); registered in a scrambled order. */
    for (unsigned k = 0; k < N; k++) {
        unsigned i = (k * 67) % N;
        devs[i] = (struct dev){.id = (int)i + 1};
        assert_int_equal(io_bus_register(bus, 0x1000ull * i + 0x10, 0x100 + i, &dev_ops, &devs[i]),
                         0);
    }
    assert_int_equal(bus->nr, N);
    for (unsigned i = 1; i < bus->nr; i++)
        assert_true(bus->ranges[i - 1].base + bus->ranges[i - 1].len <= bus->ranges[i].base);
    bool hit;
    for (unsigned i = 0; i < N; i++) {
        uint64_t base = 0x1000ull * i + 0x10, last = base + 0x100 + i - 1;
        assert_int_equal(rd(bus, base, 1, &hit), 0);
        assert_true(hit);
        assert_int_equal(devs[i].last_off, 0);
        uint64_t v = rd(bus, last, 1, &hit);
        assert_true(hit);
        assert_int_equal(devs[i].last_off, last - base);
        assert_int_equal(v & 0xff, (last - base) & 0xff);
        assert_int_equal(devs[i].reads, 2);
        rd(bus, base - 1, 1, &hit);
        assert_false(hit);
        rd(bus, last + 1, 1, &hit);
        assert_false(hit);
    }
}

static void test_unregister(void **state)
{
    struct io_bus *bus = *state;
    struct dev a = {.id = 1}, b = {.id = 2}, c = {.id = 3};
    assert_int_equal(io_bus_register(bus, 0x100, 0x10, &dev_ops, &a), 0);
    assert_int_equal(io_bus_register(bus, 0x200, 0x10, &dev_ops, &b), 0);
    assert_int_equal(io_bus_register(bus, 0x300, 0x10, &dev_ops, &c), 0);
    /* Only a range's base names it. */
    assert_int_equal(io_bus_unregister(bus, 0x208), -ENOENT);
    assert_int_equal(io_bus_unregister(bus, 0x400), -ENOENT);
    assert_int_equal(io_bus_unregister(bus, 0x200), 0);
    assert_int_equal(io_bus_unregister(bus, 0x200), -ENOENT);
    bool hit;
    rd(bus, 0x200, 1, &hit);
    assert_false(hit);
    rd(bus, 0x100, 1, &hit);
    assert_true(hit);
    rd(bus, 0x30f, 1, &hit);
    assert_true(hit);
    assert_int_equal(b.reads, 0);
    /* The freed space can be taken by a different-sized range. */
    assert_int_equal(io_bus_register(bus, 0x110, 0x1f0, &dev_ops, &b), 0);
    rd(bus, 0x2ff, 1, &hit);
    assert_true(hit);
    assert_int_equal(b.last_off, 0x1ef);
    assert_int_equal(io_bus_unregister(bus, 0x100), 0);
    assert_int_equal(io_bus_unregister(bus, 0x110), 0);
    assert_int_equal(io_bus_unregister(bus, 0x300), 0);
    assert_int_equal(bus->nr, 0);
    rd(bus, 0x300, 1, &hit);
    assert_false(hit);
}

static void test_missing_callbacks(void **state)
{
    struct io_bus *bus = *state;
    static const struct io_ops no_ops = {0};
    assert_int_equal(io_bus_register(bus, 0x80, 1, &no_ops, NULL), 0);
    bool hit;
    /* Mapped (the exit is handled) but there is nothing to read. */
    assert_int_equal(rd(bus, 0x80, 1, &hit), 0xff);
    assert_true(hit);
    assert_true(wr(bus, 0x80, 0x12, 1));
}

/*
 * A device that, like a PCI config write moving a BAR, changes the bus it
 * is being called from: each write moves range "moved" to the written
 * address, and a write of 0 removes the device's own range.
 */
struct remapper {
    struct io_bus *bus;
    uint64_t self_base;
    uint64_t moved_base;
    struct dev *moved;
    int last_rc;
    unsigned calls;
};

static void remapper_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
    (void)off;
    struct remapper *r = opaque;
    uint64_t to = 0;
    memcpy(&to, data, len);
    r->calls++;
    if (to == 0) {
        r->last_rc = io_bus_unregister(r->bus, r->self_base);
        return;
    }
    r->last_rc = io_bus_unregister(r->bus, r->moved_base);
    if (r->last_rc == 0)
        r->last_rc = io_bus_register(r->bus, to, 0x10, &dev_ops, r->moved);
    if (r->last_rc == 0)
        r->moved_base = to;
}

static void remapper_read(void *opaque, uint64_t off, void *data, unsigned len)
{
    struct remapper *r = opaque;
    r->calls++;
    /* A read that looks at the bus while being called from it. */
    uint64_t v = 0;
    io_bus_access(r->bus, r->moved_base + off, &v, len, false);
    memcpy(data, &v, len);
}

static const struct io_ops remapper_ops = {.read = remapper_read, .write = remapper_write};

static void test_handler_changes_its_own_bus(void **state)
{
    struct io_bus *bus = *state;
    struct dev moved = {.id = 7};
    struct remapper r = {.bus = bus, .self_base = 0xcfc, .moved_base = 0x1000, .moved = &moved};
    assert_int_equal(io_bus_register(bus, 0xcfc, 4, &remapper_ops, &r), 0);
    assert_int_equal(io_bus_register(bus, 0x1000, 0x10, &dev_ops, &moved), 0);
    /* Enough moves to make the range table grow while a handler runs. */
    for (uint64_t i = 1; i <= 40; i++) {
        assert_true(wr(bus, 0xcfc, 0x10000 + 0x100 * i, 4));
        assert_int_equal(r.last_rc, 0);
        assert_int_equal(bus->nr, 2);
    }
    bool hit;
    rd(bus, 0x1000, 1, &hit);
    assert_false(hit);
    assert_int_equal(rd(bus, 0x10000 + 0x100 * 40 + 3, 1, &hit), 3);
    assert_true(hit);
    /* The handler's read reaches the moved device through the same bus. */
    assert_int_equal(rd(bus, 0xcfc + 2, 1, &hit), 2);
    assert_true(hit);
    assert_int_equal(moved.last_off, 2);
    /* A handler removing its own range. */
    assert_true(wr(bus, 0xcfc, 0, 4));
    assert_int_equal(r.last_rc, 0);
    rd(bus, 0xcfc, 4, &hit);
    assert_false(hit);
    assert_int_equal(r.calls, 42);
}

/* vCPU threads dispatching while another thread moves ranges. */
struct stress {
    struct io_bus *bus;
    atomic_bool stop;
    atomic_uint bad;
};

/* Stateless, so several vCPU threads may call it at once. */
static void echo_read(void *opaque, uint64_t off, void *data, unsigned len)
{
    (void)opaque;
    memcpy(data, &off, len);
}

static const struct io_ops echo_ops = {.read = echo_read};

static void *stress_reader(void *arg)
{
    struct stress *s = arg;
    while (!atomic_load(&s->stop)) {
        uint32_t v = 0;
        /* Range 0x100 is never moved; it must always answer. */
        if (!io_bus_access(s->bus, 0x104, &v, 4, false) || v != 4)
            atomic_fetch_add(&s->bad, 1);
        io_bus_access(s->bus, 0x2000, &v, 4, false);
    }
    return NULL;
}

static void test_concurrent_dispatch_and_moves(void **state)
{
    struct io_bus *bus = *state;
    assert_int_equal(io_bus_register(bus, 0x100, 0x10, &echo_ops, NULL), 0);
    struct stress s = {.bus = bus};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, stress_reader, &s), 0);
    for (unsigned i = 0; i < 20000; i++) {
        uint64_t base = 0x1000 + 0x1000 * (i % 64);
        assert_int_equal(io_bus_register(bus, base, 0x1000, &echo_ops, NULL), 0);
        assert_int_equal(io_bus_unregister(bus, base), 0);
    }
    atomic_store(&s.stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&s.bad), 0);
    assert_int_equal(bus->nr, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lookup_at_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlap_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_len_zero_and_wraparound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_straddling_access_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_ranges_binary_search, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unregister, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_changes_its_own_bus, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_dispatch_and_moves, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
