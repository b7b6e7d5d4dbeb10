/*
 * virtio-balloon (src/virtio/balloon.c) over an anonymous fake guest RAM
 * like the VMM's: inflating releases the pages (resident memory drops,
 * the pages read back as zero), deflate, free page reporting, the
 * target/actual configuration fields, the statistics queue, and a bound
 * on the work one hostile inflate request can cause.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "support/fake_guest_mem.h"
#include "support/fake_hooks.h"
#include "support/virtio_driver.h"
#include "virtio/devices.h"
#include "virtio/pci.h"

#define RAM_SIZE (16u << 20)
#define HEAP_START 0x10000
#define HEAP_END 0x100000
#define WAIT_MS 5000
#define INFLATE 0
#define DEFLATE 1
#define STATS 2
#define REPORT 3
#define F_STATS 1
#define F_REPORTING 5
#define PAGE 4096u

struct fixture {
    struct guest_mem gm;
    struct fake_vm vm;
    struct virtio_dev *dev;
    struct vdrv drv;
    uint16_t used[4];
};

static void start(struct fixture *f, uint64_t features)
{
    struct vdrv *d = &f->drv;
    vdrv_enable_msix(d, 5);
    assert_true(vdrv_negotiate(d, features) & VIRTIO_CONFIG_S_FEATURES_OK);
    vdrv_write(d, VIRTIO_PCI_COMMON_MSIX, 0, 2);
    unsigned nq = 2 + !!(d->features & 1ull << F_STATS) + !!(d->features & 1ull << F_REPORTING);
    for (unsigned q = 0; q < nq; q++)
        assert_int_equal(vdrv_setup_queue(d, q, 32, (uint16_t)(q + 1)), 1);
    vdrv_driver_ok(d);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(fake_guest_mem_init(&f->gm, 0, RAM_SIZE), 0);
    assert_int_equal(fake_vm_init(&f->vm, &f->gm), 0);
    assert_int_equal(virtio_balloon_create(&f->vm.m, &f->dev), 0);
    vdrv_init(&f->drv, &f->vm, virtio_pci_function(f->dev), HEAP_START, HEAP_END);
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

/* Send a device-readable buffer on q and wait for it to come back. */
static void send(struct fixture *f, unsigned q, const void *data, uint32_t len)
{
    struct vdrv *d = &f->drv;
    uint64_t g = vdrv_alloc(d, len, 8);
    memcpy(vdrv_host(d, g, len), data, len);
    struct vdrv_buf b = {g, len, false};
    vdrv_add_chain(d, q, &b, 1);
    vdrv_kick(d, q);
    assert_true(vdrv_wait_used(d, q, ++f->used[q], WAIT_MS, NULL));
}

static void fill(struct fixture *f, uint64_t gpa, uint64_t len, int c)
{
    memset(gm_ptr(&f->gm, gpa, len), c, len);
}

static bool all_zero(struct fixture *f, uint64_t gpa, uint64_t len)
{
    const uint8_t *p = gm_ptr(&f->gm, gpa, len);
    for (uint64_t i = 0; i < len; i++)
        if (p[i])
            return false;
    return true;
}

static void test_target_and_actual(void **state)
{
    struct fixture *f = *state;
    start(f, ~0ull);
    assert_int_equal(pci_config_read(virtio_pci_function(f->dev), PCI_DEVICE_ID, 2), 0x1045);
    assert_int_equal(vdrv_read(&f->drv, VIRTIO_BAR_DEVICE, 4), 0);
    assert_int_equal(virtio_balloon_set_target(f->dev, 256), 0);
    assert_int_equal(vdrv_read(&f->drv, VIRTIO_BAR_DEVICE, 4), 256);
    /* A configuration change interrupt on the config vector. */
    assert_int_equal(vdrv_take_irqs(&f->drv, 0, WAIT_MS), 1);
    assert_int_equal(vdrv_read(&f->drv, VIRTIO_BAR_ISR, 1) & 2, 2);
    /* The driver may write `actual`, not num_pages. */
    vdrv_write(&f->drv, VIRTIO_BAR_DEVICE + 4, 200, 4);
    vdrv_write(&f->drv, VIRTIO_BAR_DEVICE, 7, 4);
    struct virtio_balloon_info info;
    assert_int_equal(virtio_balloon_info(f->dev, &info), 0);
    assert_int_equal(info.target_pages, 256);
    assert_int_equal(info.actual_pages, 200);
    assert_int_equal(vdrv_read(&f->drv, VIRTIO_BAR_DEVICE + 4, 4), 200);
}

static void test_inflate_releases_pages(void **state)
{
    struct fixture *f = *state;
    start(f, ~0ull);
    const uint64_t base = 4u << 20, len = 1u << 20;
    fill(f, base, len, 0x5a);
    fill(f, base + len, PAGE, 0x77); /* neighbour that must survive */
    fill(f, base + 2 * len, PAGE, 0x33);
    uint64_t before = fake_guest_mem_resident(&f->gm);
    assert_true(before >= len);

    /* 256 contiguous PFNs, one PFN outside RAM (ignored), then one more page. */
    uint32_t pfns[258];
    for (unsigned i = 0; i < 256; i++)
        pfns[i] = (uint32_t)(base / PAGE + i);
    pfns[256] = 0xfffffff0u;
    pfns[257] = (uint32_t)((base + 2 * len) / PAGE);
    send(f, INFLATE, pfns, sizeof(pfns));

    uint64_t after = fake_guest_mem_resident(&f->gm);
    /* 257 pages freed; the request itself may have touched up to two new heap pages. */
    assert_true(before - after >= len + PAGE - 2 * PAGE);
    assert_true(all_zero(f, base, len));
    assert_true(all_zero(f, base + 2 * len, PAGE));
    assert_int_equal(*(uint8_t *)gm_ptr(&f->gm, base + len, 1), 0x77);
    struct virtio_balloon_info info;
    virtio_balloon_info(f->dev, &info);
    assert_int_equal(info.pages_freed, 257);

    /* Deflate: the pages are simply usable again. */
    send(f, DEFLATE, pfns, 256 * 4);
    fill(f, base, PAGE, 1);
    assert_int_equal(*(uint8_t *)gm_ptr(&f->gm, base, 1), 1);
    assert_false(vdrv_status(&f->drv) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/*
 * On a host with 16 KiB pages (arm64): a host page is released only once the
 * balloon holds all four of its 4 KiB pages; until then the guest data in
 * its other pages survives, and a deflate takes a page out of the count.
 */
static void test_inflate_larger_host_pages(void **state)
{
    struct fixture *f = *state;
    const uint64_t hp = 4 * PAGE;
    assert_int_equal(virtio_balloon_set_host_page_size(f->dev, hp), 0);
    start(f, ~0ull);
    /* A guest address whose host page is 16 KiB aligned (the fake RAM is only 4 KiB aligned). */
    uint64_t base = 4u << 20;
    while ((uintptr_t)gm_ptr(&f->gm, base, 1) % hp)
        base += PAGE;
    fill(f, base, 3 * hp, 0x5a);
    struct virtio_balloon_info info;

    /* Three of the four pages of the first host page: nothing released yet. */
    uint32_t pfns[4];
    for (unsigned i = 0; i < 3; i++)
        pfns[i] = (uint32_t)(base / PAGE + i);
    send(f, INFLATE, pfns, 3 * 4);
    virtio_balloon_info(f->dev, &info);
    assert_int_equal(info.pages_freed, 0);
    assert_int_equal(*(uint8_t *)gm_ptr(&f->gm, base + 3 * PAGE, 1), 0x5a);
    assert_int_equal(*(uint8_t *)gm_ptr(&f->gm, base, 1), 0x5a);

    /* The fourth: the whole host page goes. */
    pfns[0] = (uint32_t)(base / PAGE + 3);
    send(f, INFLATE, pfns, 4);
    virtio_balloon_info(f->dev, &info);
    assert_int_equal(info.pages_freed, 4);
    assert_true(all_zero(f, base, hp));
    assert_int_equal(*(uint8_t *)gm_ptr(&f->gm, base + hp, 1), 0x5a);

    /* Deflated, a page no longer counts: three of the next host page plus it do not free it. */
    for (unsigned i = 0; i < 4; i++)
        pfns[i] = (uint32_t)((base + hp) / PAGE + i);
    send(f, INFLATE, pfns, 3 * 4);
    send(f, DEFLATE, pfns, 4);
    pfns[0] = (uint32_t)((base + hp) / PAGE + 3);
    send(f, INFLATE, pfns, 4);
    virtio_balloon_info(f->dev, &info);
    assert_int_equal(info.pages_freed, 4);
    assert_int_equal(*(uint8_t *)gm_ptr(&f->gm, base + hp + PAGE, 1), 0x5a);

    /* A 16 KiB range reported free inside two host pages releases neither. */
    uint64_t r = base + 2 * hp + 2 * PAGE;
    struct vdrv_buf b = {r, (uint32_t)hp, true};
    vdrv_add_chain(&f->drv, REPORT, &b, 1);
    vdrv_kick(&f->drv, REPORT);
    assert_true(vdrv_wait_used(&f->drv, REPORT, ++f->used[REPORT], WAIT_MS, NULL));
    virtio_balloon_info(f->dev, &info);
    assert_int_equal(info.pages_freed, 4);
    assert_int_equal(*(uint8_t *)gm_ptr(&f->gm, r, 1), 0x5a);
    assert_false(vdrv_status(&f->drv) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * A chain that names one 15 MiB buffer 32 times (120 M PFNs): the device
 * used to read them four bytes at a time, rescanning the chain for each,
 * for many seconds with the device lock held. Only the first PFNs count.
 */
static void test_huge_inflate_is_bounded(void **state)
{
    struct fixture *f = *state;
    start(f, ~0ull);
    const uint64_t base = 1u << 20, len = 15u << 20, victim = 0x8000;
    fill(f, base, len, 0xff); /* PFN 0xffffffff: outside RAM, ignored */
    fill(f, victim, PAGE, 0x5a);
    uint32_t pfn = victim / PAGE;
    memcpy(gm_ptr(&f->gm, base, 4), &pfn, 4);
    struct vdrv_buf bufs[32];
    for (unsigned i = 0; i < 32; i++)
        bufs[i] = (struct vdrv_buf){base, (uint32_t)len, false};
    uint64_t t0 = now_ms();
    vdrv_add_chain(&f->drv, INFLATE, bufs, 32);
    vdrv_kick(&f->drv, INFLATE);
    assert_true(vdrv_wait_used(&f->drv, INFLATE, 1, WAIT_MS, NULL));
    assert_true(now_ms() - t0 < 1000);
    assert_true(all_zero(f, victim, PAGE));
    struct virtio_balloon_info info;
    assert_int_equal(virtio_balloon_info(f->dev, &info), 0);
    assert_int_equal(info.pages_freed, 1);
    assert_false(vdrv_status(&f->drv) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void test_free_page_reporting(void **state)
{
    struct fixture *f = *state;
    start(f, ~0ull);
    assert_true(f->drv.features & 1ull << F_REPORTING);
    const uint64_t base = 8u << 20, len = 2u << 20;
    fill(f, base, len, 0x42);
    uint64_t before = fake_guest_mem_resident(&f->gm);
    struct vdrv_buf b = {base, (uint32_t)len, true};
    vdrv_add_chain(&f->drv, REPORT, &b, 1);
    vdrv_kick(&f->drv, REPORT);
    assert_true(vdrv_wait_used(&f->drv, REPORT, 1, WAIT_MS, NULL));
    assert_true(before - fake_guest_mem_resident(&f->gm) >= len);
    assert_true(all_zero(f, base, len));
}

static void test_reporting_without_stats(void **state)
{
    struct fixture *f = *state;
    /* Without STATS_VQ the reporting queue is number 2. */
    start(f, ~(1ull << F_STATS));
    const uint64_t base = 8u << 20, len = 1u << 20;
    fill(f, base, len, 0x42);
    struct vdrv_buf b = {base, (uint32_t)len, true};
    vdrv_add_chain(&f->drv, 2, &b, 1);
    vdrv_kick(&f->drv, 2);
    assert_true(vdrv_wait_used(&f->drv, 2, 1, WAIT_MS, NULL));
    assert_true(all_zero(f, base, len));
}

static void put_stat(uint8_t *p, uint16_t tag, uint64_t val)
{
    memcpy(p, &tag, 2);
    memcpy(p + 2, &val, 8);
}

static void test_stats(void **state)
{
    struct fixture *f = *state;
    start(f, ~0ull);
    struct vdrv *d = &f->drv;
    uint64_t g = vdrv_alloc(d, 30, 8);
    uint8_t *p = vdrv_host(d, g, 30);
    put_stat(p, 4, 1234);      /* MEMFREE */
    put_stat(p + 10, 5, 5678); /* MEMTOT */
    put_stat(p + 20, 99, 1);   /* unknown tag: ignored */
    struct vdrv_buf b = {g, 30, false};
    vdrv_add_chain(d, STATS, &b, 1);
    vdrv_kick(d, STATS);
    struct virtio_balloon_info info = {0};
    for (int i = 0; i < WAIT_MS && !(info.stats_valid & (1u << 5)); i++) {
        vdrv_take_irqs(d, 0, 1);
        virtio_balloon_info(f->dev, &info);
    }
    assert_int_equal(info.stats[4], 1234);
    assert_int_equal(info.stats[5], 5678);
    assert_int_equal(info.stats_valid, (1u << 4) | (1u << 5));
    /* The buffer is held until we ask for new numbers. */
    assert_false(vdrv_wait_used(d, STATS, 1, 20, NULL));
    assert_int_equal(virtio_balloon_request_stats(f->dev), 0);
    assert_true(vdrv_wait_used(d, STATS, 1, WAIT_MS, NULL));
    assert_int_equal(virtio_balloon_request_stats(f->dev), -EAGAIN);
    put_stat(p, 4, 999);
    vdrv_add_chain(d, STATS, &b, 1);
    vdrv_kick(d, STATS);
    for (int i = 0; i < WAIT_MS && info.stats[4] != 999; i++) {
        vdrv_take_irqs(d, 0, 1);
        virtio_balloon_info(f->dev, &info);
    }
    assert_int_equal(info.stats[4], 999);
}

static void test_wrong_device(void **state)
{
    (void)state;
    struct guest_mem gm;
    struct fake_vm vm;
    struct virtio_dev *rng;
    assert_int_equal(fake_guest_mem_init(&gm, 0, RAM_SIZE), 0);
    assert_int_equal(fake_vm_init(&vm, &gm), 0);
    assert_int_equal(virtio_rng_create(&vm.m, &rng), 0);
    assert_int_equal(virtio_balloon_set_target(rng, 1), -EINVAL);
    virtio_dev_destroy(rng);
    fake_vm_destroy(&vm);
    fake_guest_mem_free(&gm);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_target_and_actual),
        T(test_inflate_releases_pages),
        T(test_huge_inflate_is_bounded),
        T(test_free_page_reporting),
        T(test_inflate_larger_host_pages),
        T(test_reporting_without_stats),
        T(test_stats),
        cmocka_unit_test(test_wrong_device),
    };
    return cmocka_run_group_tests_name("virtio-balloon", tests, NULL, NULL);
}
