/*
 * virtio-rng (src/devices/rng.c): device-writable buffers come back filled
 * from getrandom, across several buffers, capped per request, and a chain
 * with nothing writable comes back empty.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/fake_guest_mem.h"
#include "support/fake_hooks.h"
#include "support/virtio_driver.h"
#include "virtio/devices.h"
#include "virtio/pci.h"

#define RAM_SIZE (4u << 20)
#define WAIT_MS 5000

struct fixture {
    struct guest_mem gm;
    struct fake_vm vm;
    struct virtio_dev *dev;
    struct vdrv drv;
    uint16_t used;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(fake_guest_mem_init(&f->gm, 0, RAM_SIZE), 0);
    assert_int_equal(fake_vm_init(&f->vm, &f->gm), 0);
    assert_int_equal(virtio_rng_create(&f->vm.m, &f->dev), 0);
    vdrv_init(&f->drv, &f->vm, virtio_pci_function(f->dev), 0x10000, RAM_SIZE);
    vdrv_enable_msix(&f->drv, 2);
    assert_true(vdrv_negotiate(&f->drv, ~0ull) & VIRTIO_CONFIG_S_FEATURES_OK);
    assert_int_equal(vdrv_setup_queue(&f->drv, 0, 16, 1), 1);
    vdrv_driver_ok(&f->drv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    virtio_dev_destroy(f->dev);
    fake_vm_destroy(&f->vm);
    fake_guest_mem_free(&f->gm);
    free(f);
    return 0;
}

static uint32_t request(struct fixture *f, const struct vdrv_buf *b, unsigned n)
{
    uint32_t len;
    vdrv_add_chain(&f->drv, 0, b, n);
    vdrv_kick(&f->drv, 0);
    assert_true(vdrv_wait_used(&f->drv, 0, ++f->used, WAIT_MS, &len));
    return len;
}

static unsigned zero_bytes(const uint8_t *p, size_t n)
{
    unsigned z = 0;
    for (size_t i = 0; i < n; i++)
        z += p[i] == 0;
    return z;
}

static void test_fill(void **state)
{
    struct fixture *f = *state;
    uint64_t a = vdrv_alloc(&f->drv, 256, 8), b = vdrv_alloc(&f->drv, 256, 8);
    struct vdrv_buf bufs[2] = {{a, 100, true}, {b, 156, true}};
    assert_int_equal(request(f, bufs, 2), 256);
    const uint8_t *pa = vdrv_host(&f->drv, a, 100), *pb = vdrv_host(&f->drv, b, 156);
    /* 256 random bytes with more than 16 zeroes: about 1e-9. */
    assert_true(zero_bytes(pa, 100) + zero_bytes(pb, 156) < 16);
    uint8_t first[100];
    memcpy(first, pa, 100);
    struct vdrv_buf again = {a, 100, true};
    assert_int_equal(request(f, &again, 1), 100);
    assert_memory_not_equal(first, pa, 100);
}

static void test_cap_and_readonly(void **state)
{
    struct fixture *f = *state;
    uint64_t big = vdrv_alloc(&f->drv, 1u << 20, 4096);
    struct vdrv_buf b = {big, 1u << 20, true};
    assert_int_equal(request(f, &b, 1), 65536);
    const uint8_t *p = vdrv_host(&f->drv, big, 1u << 20);
    assert_int_equal(zero_bytes(p + 65536, 4096), 4096); /* beyond the cap: untouched */
    /* Only device-readable buffers: nothing to fill. */
    struct vdrv_buf ro = {big, 64, false};
    assert_int_equal(request(f, &ro, 1), 0);
    assert_false(vdrv_status(&f->drv) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/*
 * Quiesced, the device fills nothing the guest posts and kicks (the generic
 * path: the I/O thread is parked); resumed, it serves the request.
 */
static void test_quiesce_resume(void **state)
{
    struct fixture *f = *state;
    virtio_dev_quiesce(f->dev);
    virtio_dev_quiesce(f->dev); /* twice is once */
    uint64_t a = vdrv_alloc(&f->drv, 64, 8);
    memset(vdrv_host(&f->drv, a, 64), 0, 64);
    struct vdrv_buf b = {a, 64, true};
    vdrv_add_chain(&f->drv, 0, &b, 1);
    vdrv_kick(&f->drv, 0);
    usleep(100 * 1000);
    uint16_t used;
    memcpy(&used, vdrv_host(&f->drv, f->drv.q[0].used + 2, 2), 2);
    assert_int_equal(used, 0);
    assert_int_equal(zero_bytes(vdrv_host(&f->drv, a, 64), 64), 64);
    virtio_dev_resume(f->dev);
    virtio_dev_resume(f->dev);
    uint32_t len;
    assert_true(vdrv_wait_used(&f->drv, 0, ++f->used, WAIT_MS, &len));
    assert_int_equal(len, 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_quiesce_resume, setup, teardown),
        T(test_fill),
        T(test_cap_and_readonly),
    };
    return cmocka_run_group_tests_name("virtio-rng", tests, NULL, NULL);
}
