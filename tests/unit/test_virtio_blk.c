/*
 * virtio-blk (src/virtio/blk.c) against a temporary raw image, driven
 * through the PCI transport by the test driver: read, write, flush,
 * discard, write-zeroes, GET_ID, read-only images, and requests the
 * driver got wrong (bad sector, bad length, short header, no status).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "block/block.h"
#include "block/block_driver.h"
#include <time.h>
#include "core/config.h"
#include "support/fake_guest_mem.h"
#include "support/fake_hooks.h"
#include "support/virtio_driver.h"
#include "virtio/devices.h"
#include "virtio/pci.h"
#include "vmm/evloop.h"

#define RAM_SIZE (4u << 20)
#define HEAP_START 0x10000
#define WAIT_MS 5000
#define DISK_SECTORS 2048
#define QSIZE 64

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2
#define F_RO 5
#define F_FLUSH 9
#define F_DISCARD 13
#define F_WRITE_ZEROES 14

struct fixture {
    struct guest_mem gm;
    struct fake_vm vm;
    struct virtio_dev *dev;
    struct blk_image *img; /* the test's, as the VM's: the device borrows it */
    struct vdrv drv;
    char path[64];
    int fd;
    uint16_t used; /* requests completed so far */
};

static uint8_t pattern(uint64_t off)
{
    return (uint8_t)(off * 7 + (off >> 9));
}

static struct fixture *make_fixture(bool readonly, const char *id)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->path, "/tmp/krunkit-test-blk-XXXXXX");
    f->fd = mkstemp(f->path);
    assert_true(f->fd >= 0);
    static uint8_t img[DISK_SECTORS * 512];
    for (size_t i = 0; i < sizeof(img); i++)
        img[i] = pattern(i);
    assert_int_equal(pwrite(f->fd, img, sizeof(img), 0), (ssize_t)sizeof(img));
    assert_int_equal(fake_guest_mem_init(&f->gm, 0, RAM_SIZE), 0);
    assert_int_equal(fake_vm_init(&f->vm, &f->gm), 0);
    struct dev_blk cfg = {
        .path = f->path, .format = BLK_FMT_RAW, .device_id = (char *)id, .readonly = readonly};
    assert_int_equal(blk_open(f->path, BLK_FMT_RAW, readonly, NULL, &f->img), 0);
    assert_int_equal(virtio_blk_create(&f->vm.m, &cfg, f->img, &f->dev), 0);
    vdrv_init(&f->drv, &f->vm, virtio_pci_function(f->dev), HEAP_START, RAM_SIZE);
    vdrv_enable_msix(&f->drv, 2);
    assert_true(vdrv_negotiate(&f->drv, ~0ull) & VIRTIO_CONFIG_S_FEATURES_OK);
    assert_int_equal(vdrv_setup_queue(&f->drv, 0, QSIZE, 1), 1);
    vdrv_driver_ok(&f->drv);
    return f;
}

static int setup(void **state)
{
    *state = make_fixture(false, "disk-serial-1");
    return 0;
}

static int setup_ro(void **state)
{
    *state = make_fixture(true, NULL);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    virtio_dev_destroy(f->dev);
    blk_close(f->img);
    fake_vm_destroy(&f->vm);
    fake_guest_mem_free(&f->gm);
    close(f->fd);
    unlink(f->path);
    free(f);
    return 0;
}

struct req {
    uint32_t type;
    uint64_t sector;
    uint64_t out_gpa; /* data the device reads (after the header) */
    uint32_t out_len;
    uint64_t in_gpa; /* data the device writes (before the status) */
    uint32_t in_len;
    bool no_status;
    bool header_with_data; /* header and out data in one descriptor */
};

/* Run one request; returns the status byte, *used_len the used length. */
static int run(struct fixture *f, const struct req *r, uint32_t *used_len)
{
    struct vdrv *d = &f->drv;
    uint64_t hdr = vdrv_alloc(d, 16 + r->out_len, 16);
    uint64_t status = vdrv_alloc(d, 1, 1);
    uint8_t *h = vdrv_host(d, hdr, 16);
    memcpy(h, &r->type, 4);
    memset(h + 4, 0, 4);
    memcpy(h + 8, &r->sector, 8);
    *(uint8_t *)vdrv_host(d, status, 1) = 0xee;
    struct vdrv_buf bufs[4];
    unsigned n = 0;
    if (r->header_with_data) {
        memcpy(vdrv_host(d, hdr + 16, r->out_len), vdrv_host(d, r->out_gpa, r->out_len),
               r->out_len);
        bufs[n++] = (struct vdrv_buf){hdr, 16 + r->out_len, false};
    } else {
        bufs[n++] = (struct vdrv_buf){hdr, 16, false};
        if (r->out_len)
            bufs[n++] = (struct vdrv_buf){r->out_gpa, r->out_len, false};
    }
    if (r->in_len)
        bufs[n++] = (struct vdrv_buf){r->in_gpa, r->in_len, true};
    if (!r->no_status)
        bufs[n++] = (struct vdrv_buf){status, 1, true};
    vdrv_add_chain(d, 0, bufs, n);
    vdrv_kick(d, 0);
    f->used++;
    assert_true(vdrv_wait_used(d, 0, f->used, WAIT_MS, used_len));
    return *(uint8_t *)vdrv_host(d, status, 1);
}

static bool wait_status_zero(struct vdrv *d, int timeout_ms)
{
    for (int i = 0; i < timeout_ms; i++) {
        if (vdrv_status(d) == 0)
            return true;
        usleep(1000);
    }
    return false;
}

static uint64_t cfg64(struct fixture *f, unsigned off)
{
    return vdrv_read(&f->drv, VIRTIO_BAR_DEVICE + off, 4) |
           vdrv_read(&f->drv, VIRTIO_BAR_DEVICE + off + 4, 4) << 32;
}

static uint32_t cfg32(struct fixture *f, unsigned off)
{
    return (uint32_t)vdrv_read(&f->drv, VIRTIO_BAR_DEVICE + off, 4);
}

static void test_config_and_features(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(cfg64(f, 0), DISK_SECTORS);
    assert_int_equal(cfg32(f, 0x08), 1u << 20); /* size_max */
    assert_int_equal(cfg32(f, 0x0c), 254);      /* seg_max */
    assert_int_equal(cfg32(f, 0x14), 512);      /* blk_size */
    assert_true(cfg32(f, 0x24) > 0);            /* max_discard_sectors */
    assert_int_equal(cfg32(f, 0x28), 1);        /* max_discard_seg */
    assert_true(cfg32(f, 0x30) > 0);            /* max_write_zeroes_sectors */
    assert_int_equal(cfg32(f, 0x34), 1);
    assert_int_equal(vdrv_read(&f->drv, VIRTIO_BAR_DEVICE + 0x38, 1), 1);
    /* Reads past the configuration structure are refused (zero). */
    assert_int_equal(vdrv_read(&f->drv, VIRTIO_BAR_DEVICE + 0x3a, 4), 0);
    uint64_t feat = f->drv.features;
    assert_true(feat & 1ull << F_FLUSH);
    assert_true(feat & 1ull << F_DISCARD);
    assert_true(feat & 1ull << F_WRITE_ZEROES);
    assert_false(feat & 1ull << F_RO);
    assert_int_equal(pci_config_read(virtio_pci_function(f->dev), PCI_DEVICE_ID, 2), 0x1042);
}

static void test_read(void **state)
{
    struct fixture *f = *state;
    uint64_t buf = vdrv_alloc(&f->drv, 1024, 512);
    uint32_t len;
    struct req r = {.type = T_IN, .sector = 2, .in_gpa = buf, .in_len = 1024};
    assert_int_equal(run(f, &r, &len), S_OK);
    assert_int_equal(len, 1025);
    uint8_t *p = vdrv_host(&f->drv, buf, 1024);
    for (unsigned i = 0; i < 1024; i++)
        assert_int_equal(p[i], pattern(1024 + i));
    assert_int_equal(vdrv_take_irqs(&f->drv, 1, WAIT_MS), 1);
}

static void test_write_and_flush(void **state)
{
    struct fixture *f = *state;
    uint64_t buf = vdrv_alloc(&f->drv, 1024, 512);
    memset(vdrv_host(&f->drv, buf, 1024), 0xa5, 1024);
    struct req r = {.type = T_OUT, .sector = 4, .out_gpa = buf, .out_len = 1024};
    uint32_t len;
    assert_int_equal(run(f, &r, &len), S_OK);
    assert_int_equal(len, 1);
    uint8_t back[1024];
    assert_int_equal(pread(f->fd, back, sizeof(back), 4 * 512), (ssize_t)sizeof(back));
    for (unsigned i = 0; i < sizeof(back); i++)
        assert_int_equal(back[i], 0xa5);
    /* Header and data sharing one descriptor. */
    memset(vdrv_host(&f->drv, buf, 512), 0x3c, 512);
    r = (struct req){
        .type = T_OUT, .sector = 10, .out_gpa = buf, .out_len = 512, .header_with_data = true};
    assert_int_equal(run(f, &r, NULL), S_OK);
    assert_int_equal(pread(f->fd, back, 512, 10 * 512), 512);
    assert_int_equal(back[0], 0x3c);
    assert_int_equal(back[511], 0x3c);
    assert_int_equal(pread(f->fd, back, 1, 11 * 512), 1);
    assert_int_equal(back[0], pattern(11 * 512));

    r = (struct req){.type = T_FLUSH};
    assert_int_equal(run(f, &r, &len), S_OK);
    assert_int_equal(len, 1);
}

static void test_write_zeroes_and_discard(void **state)
{
    struct fixture *f = *state;
    uint64_t seg = vdrv_alloc(&f->drv, 32, 16);
    uint8_t *s = vdrv_host(&f->drv, seg, 32);
    uint64_t sector = 16;
    uint32_t num = 8, flags = 0;
    memcpy(s, &sector, 8);
    memcpy(s + 8, &num, 4);
    memcpy(s + 12, &flags, 4);
    struct req r = {.type = T_WRITE_ZEROES, .out_gpa = seg, .out_len = 16};
    assert_int_equal(run(f, &r, NULL), S_OK);
    uint8_t back[8 * 512];
    assert_int_equal(pread(f->fd, back, sizeof(back), 16 * 512), (ssize_t)sizeof(back));
    for (unsigned i = 0; i < sizeof(back); i++)
        assert_int_equal(back[i], 0);
    assert_int_equal(pread(f->fd, back, 1, 24 * 512), 1);
    assert_int_equal(back[0], pattern(24 * 512));

    /* Without the unmap flag the range stays allocated in the file. */
    struct stat st;
    assert_int_equal(fstat(f->fd, &st), 0);
    blkcnt_t allocated = st.st_blocks;
    assert_true(allocated >= DISK_SECTORS);

    /* With the unmap flag: zeroes, and the file gets a hole (1 MiB, aligned). */
    sector = 1024;
    num = 1024;
    flags = 1;
    memcpy(s, &sector, 8);
    memcpy(s + 8, &num, 4);
    memcpy(s + 12, &flags, 4);
    assert_int_equal(run(f, &r, NULL), S_OK);
    assert_int_equal(pread(f->fd, back, sizeof(back), 1024 * 512), (ssize_t)sizeof(back));
    for (unsigned i = 0; i < sizeof(back); i++)
        assert_int_equal(back[i], 0);
    assert_int_equal(fstat(f->fd, &st), 0);
    assert_true(st.st_blocks <= allocated - 1024);
    num = 8;
    memcpy(s + 8, &num, 4);

    /* Discard: advisory, succeeds; the unmap flag is not allowed on it. */
    flags = 0;
    memcpy(s + 12, &flags, 4);
    r.type = T_DISCARD;
    assert_int_equal(run(f, &r, NULL), S_OK);
    flags = 1;
    memcpy(s + 12, &flags, 4);
    assert_int_equal(run(f, &r, NULL), S_UNSUPP);
    /* Two segments where one was offered. */
    r = (struct req){.type = T_DISCARD, .out_gpa = seg, .out_len = 32};
    assert_int_equal(run(f, &r, NULL), S_UNSUPP);
    /* Past the end of the disk. */
    sector = DISK_SECTORS - 4;
    flags = 0;
    memcpy(s, &sector, 8);
    memcpy(s + 12, &flags, 4);
    r = (struct req){.type = T_WRITE_ZEROES, .out_gpa = seg, .out_len = 16};
    assert_int_equal(run(f, &r, NULL), S_IOERR);
}

static void test_get_id(void **state)
{
    struct fixture *f = *state;
    uint64_t buf = vdrv_alloc(&f->drv, 32, 16);
    memset(vdrv_host(&f->drv, buf, 32), 0xff, 32);
    uint32_t len;
    struct req r = {.type = T_GET_ID, .in_gpa = buf, .in_len = 20};
    assert_int_equal(run(f, &r, &len), S_OK);
    assert_int_equal(len, 21);
    char want[20] = "disk-serial-1";
    assert_memory_equal(vdrv_host(&f->drv, buf, 20), want, 20);
    /* A smaller buffer gets what fits. */
    memset(vdrv_host(&f->drv, buf, 32), 0xff, 32);
    r.in_len = 4;
    assert_int_equal(run(f, &r, &len), S_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(vdrv_host(&f->drv, buf, 4), "disk", 4);
    assert_int_equal(*(uint8_t *)vdrv_host(&f->drv, buf + 4, 1), 0xff);
}

static void test_bad_requests(void **state)
{
    struct fixture *f = *state;
    uint64_t buf = vdrv_alloc(&f->drv, 4096, 512);
    uint32_t len;
    /* Past the end, and straddling it. */
    struct req r = {.type = T_IN, .sector = DISK_SECTORS, .in_gpa = buf, .in_len = 512};
    assert_int_equal(run(f, &r, &len), S_IOERR);
    r.sector = DISK_SECTORS - 1;
    r.in_len = 1024;
    assert_int_equal(run(f, &r, NULL), S_IOERR);
    r.sector = UINT64_MAX;
    assert_int_equal(run(f, &r, NULL), S_IOERR);
    /* Not a whole number of sectors. */
    r = (struct req){.type = T_IN, .sector = 0, .in_gpa = buf, .in_len = 100};
    assert_int_equal(run(f, &r, NULL), S_IOERR);
    r = (struct req){.type = T_OUT, .sector = 0, .out_gpa = buf, .out_len = 700};
    assert_int_equal(run(f, &r, NULL), S_IOERR);
    /* Unknown request type. */
    r = (struct req){.type = 99, .in_gpa = buf, .in_len = 512};
    assert_int_equal(run(f, &r, NULL), S_UNSUPP);

    /* Header shorter than 16 bytes. */
    struct vdrv *d = &f->drv;
    uint64_t hdr = vdrv_alloc(d, 16, 16), status = vdrv_alloc(d, 1, 1);
    *(uint8_t *)vdrv_host(d, status, 1) = 0xee;
    struct vdrv_buf b[2] = {{hdr, 8, false}, {status, 1, true}};
    vdrv_add_chain(d, 0, b, 2);
    vdrv_kick(d, 0);
    assert_true(vdrv_wait_used(d, 0, ++f->used, WAIT_MS, &len));
    assert_int_equal(*(uint8_t *)vdrv_host(d, status, 1), S_IOERR);

    /* No writable byte for the status: returned with nothing written. */
    r = (struct req){.type = T_OUT, .sector = 0, .out_gpa = buf, .out_len = 512, .no_status = true};
    run(f, &r, &len);
    assert_int_equal(len, 0);
    uint8_t back;
    assert_int_equal(pread(f->fd, &back, 1, 0), 1);
    assert_int_equal(back, pattern(0));

    /* The device still works. */
    r = (struct req){.type = T_IN, .sector = 1, .in_gpa = buf, .in_len = 512};
    assert_int_equal(run(f, &r, NULL), S_OK);
    assert_int_equal(*(uint8_t *)vdrv_host(d, buf, 1), pattern(512));
    assert_false(vdrv_status(d) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void test_many_requests_one_kick(void **state)
{
    struct fixture *f = *state;
    struct vdrv *d = &f->drv;
    enum { N = QSIZE / 3 }; /* three descriptors each */
    uint64_t bufs[N], status[N];
    for (unsigned i = 0; i < N; i++) {
        bufs[i] = vdrv_alloc(d, 512, 512);
        status[i] = vdrv_alloc(d, 1, 1);
        *(uint8_t *)vdrv_host(d, status[i], 1) = 0xee;
        uint64_t hdr = vdrv_alloc(d, 16, 16);
        uint32_t type = T_IN;
        uint64_t sector = 100 + i;
        memcpy(vdrv_host(d, hdr, 4), &type, 4);
        memcpy(vdrv_host(d, hdr + 8, 8), &sector, 8);
        struct vdrv_buf b[3] = {{hdr, 16, false}, {bufs[i], 512, true}, {status[i], 1, true}};
        vdrv_add_chain(d, 0, b, 3);
    }
    vdrv_kick(d, 0);
    f->used += N;
    assert_true(vdrv_wait_used(d, 0, f->used, WAIT_MS, NULL));
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(*(uint8_t *)vdrv_host(d, status[i], 1), S_OK);
        assert_int_equal(*(uint8_t *)vdrv_host(d, bufs[i] + 3, 1), pattern((100 + i) * 512 + 3));
    }
    uint64_t irqs = vdrv_take_irqs(d, 1, WAIT_MS);
    assert_true(irqs >= 1 && irqs <= N);
}

static void test_indirect_request(void **state)
{
    struct fixture *f = *state;
    struct vdrv *d = &f->drv;
    uint64_t hdr = vdrv_alloc(d, 16, 16), data = vdrv_alloc(d, 512, 512);
    uint64_t status = vdrv_alloc(d, 1, 1), table = vdrv_alloc(d, 48, 16);
    uint32_t type = T_IN;
    uint64_t sector = 7;
    memcpy(vdrv_host(d, hdr, 4), &type, 4);
    memcpy(vdrv_host(d, hdr + 8, 8), &sector, 8);
    struct virtq_desc *t = vdrv_host(d, table, 48);
    t[0] = (struct virtq_desc){hdr, 16, VRING_DESC_F_NEXT, 1};
    t[1] = (struct virtq_desc){data, 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2};
    t[2] = (struct virtq_desc){status, 1, VRING_DESC_F_WRITE, 0};
    /* One descriptor in the ring pointing at the table. */
    struct vdrv_buf b = {table, 48, false};
    uint16_t head = vdrv_add_chain(d, 0, &b, 1);
    struct virtq_desc *ring = vdrv_host(d, d->q[0].desc, 16ull * QSIZE);
    ring[head].flags = VRING_DESC_F_INDIRECT;
    vdrv_kick(d, 0);
    assert_true(vdrv_wait_used(d, 0, ++f->used, WAIT_MS, NULL));
    assert_int_equal(*(uint8_t *)vdrv_host(d, status, 1), S_OK);
    assert_int_equal(*(uint8_t *)vdrv_host(d, data + 5, 1), pattern(7 * 512 + 5));
}

static void test_readonly(void **state)
{
    struct fixture *f = *state;
    assert_true(f->drv.features & 1ull << F_RO);
    assert_false(f->drv.features & 1ull << F_DISCARD);
    assert_false(f->drv.features & 1ull << F_WRITE_ZEROES);
    uint64_t buf = vdrv_alloc(&f->drv, 512, 512);
    memset(vdrv_host(&f->drv, buf, 512), 0x11, 512);
    struct req r = {.type = T_OUT, .sector = 0, .out_gpa = buf, .out_len = 512};
    assert_int_equal(run(f, &r, NULL), S_IOERR);
    uint8_t back;
    assert_int_equal(pread(f->fd, &back, 1, 0), 1);
    assert_int_equal(back, pattern(0));
    r = (struct req){.type = T_IN, .sector = 0, .in_gpa = buf, .in_len = 512};
    assert_int_equal(run(f, &r, NULL), S_OK);
    assert_int_equal(*(uint8_t *)vdrv_host(&f->drv, buf + 1, 1), pattern(1));
    /* No deviceId configured. */
    r = (struct req){.type = T_GET_ID, .in_gpa = buf, .in_len = 20};
    assert_int_equal(run(f, &r, NULL), S_UNSUPP);
}

static void test_reset_with_requests(void **state)
{
    struct fixture *f = *state;
    struct vdrv *d = &f->drv;
    uint64_t buf = vdrv_alloc(d, 512 * 16, 512);
    for (unsigned i = 0; i < 16; i++) {
        uint64_t hdr = vdrv_alloc(d, 16, 16), st = vdrv_alloc(d, 1, 1);
        uint32_t type = T_IN;
        uint64_t sector = i;
        memcpy(vdrv_host(d, hdr, 4), &type, 4);
        memcpy(vdrv_host(d, hdr + 8, 8), &sector, 8);
        struct vdrv_buf b[3] = {{hdr, 16, false}, {buf + 512 * i, 512, true}, {st, 1, true}};
        vdrv_add_chain(d, 0, b, 3);
    }
    vdrv_kick(d, 0);
    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS, 0, 1);
    /* Requests still in flight keep the status non-zero a while (4.1.4.3.1): poll. */
    assert_true(wait_status_zero(d, WAIT_MS));
    /* The device comes back and serves requests. */
    vdrv_enable_msix(d, 2);
    assert_true(vdrv_negotiate(d, ~0ull) & VIRTIO_CONFIG_S_FEATURES_OK);
    assert_int_equal(vdrv_setup_queue(d, 0, QSIZE, 1), 1);
    vdrv_driver_ok(d);
    f->used = 0;
    struct req r = {.type = T_IN, .sector = 3, .in_gpa = buf, .in_len = 512};
    assert_int_equal(run(f, &r, NULL), S_OK);
    assert_int_equal(*(uint8_t *)vdrv_host(d, buf, 1), pattern(3 * 512));
}

static void test_create_errors(void **state)
{
    (void)state;
    struct guest_mem gm;
    struct fake_vm vm;
    struct virtio_dev *dev = NULL;
    assert_int_equal(fake_guest_mem_init(&gm, 0, RAM_SIZE), 0);
    assert_int_equal(fake_vm_init(&vm, &gm), 0);
    /* A missing image: the VM's blk_open fails, before any device is made. */
    struct blk_image *img = NULL;
    assert_true(blk_open("/nonexistent/disk.img", BLK_FMT_RAW, false, NULL, &img) < 0);
    assert_null(img);
    char path[] = "/tmp/krunkit-test-blk-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 4096), 0);
    assert_int_equal(blk_open(path, BLK_FMT_RAW, false, NULL, &img), 0);
    struct dev_blk cfg = {.path = path, .device_id = "123456789012345678901"};
    assert_int_equal(virtio_blk_create(&vm.m, &cfg, img, &dev), -EINVAL);
    assert_null(dev);
    /* The image stays the caller's, still usable. */
    assert_int_equal(blk_size(img), 4096);
    blk_close(img);
    /* Nothing was left on the bus or attached to the VM. */
    for (int slot = 1; slot < 32; slot++)
        assert_null(vm.pci.devices[slot << 3]);
    assert_int_equal(vm.nr_irqfds, 0);
    assert_int_equal(vm.nr_ioeventfds, 0);
    close(fd);
    unlink(path);
    fake_vm_destroy(&vm);
    fake_guest_mem_free(&gm);
}

/* ---- a device on a borrowed loop (machine.io_loop, as the VM's backends give) ---- */

struct probe {
    int efd;
    pthread_t thread;
    volatile int seen;
};

static void probe_cb(void *opaque, uint32_t events)
{
    (void)events;
    struct probe *p = opaque;
    uint64_t v;
    if (read(p->efd, &v, sizeof(v)) != sizeof(v))
        return;
    p->thread = pthread_self();
    __atomic_store_n(&p->seen, 1, __ATOMIC_RELEASE);
}

/* The thread the loop runs its handlers on (a probe handler, removed by the device's destroy). */
static pthread_t loop_thread(struct evloop *loop)
{
    struct probe p = {.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
    assert_true(p.efd >= 0);
    assert_int_equal(evloop_add(loop, p.efd, EPOLLIN, probe_cb, &p), 0);
    uint64_t one = 1;
    assert_int_equal(write(p.efd, &one, sizeof(one)), sizeof(one));
    for (int i = 0; i < WAIT_MS && !__atomic_load_n(&p.seen, __ATOMIC_ACQUIRE); i++)
        usleep(1000);
    assert_true(p.seen);
    assert_int_equal(evloop_del(loop, p.efd), 0);
    close(p.efd);
    return p.thread;
}

static void borrowed_device_up(struct fixture *f)
{
    struct dev_blk cfg = {.path = f->path, .format = BLK_FMT_RAW};
    assert_int_equal(virtio_blk_create(&f->vm.m, &cfg, f->img, &f->dev), 0);
    assert_ptr_equal(f->dev->loop, f->vm.m.io_loop);
    memset(&f->drv, 0, sizeof(f->drv));
    vdrv_init(&f->drv, &f->vm, virtio_pci_function(f->dev), HEAP_START, RAM_SIZE);
    vdrv_enable_msix(&f->drv, 2);
    assert_true(vdrv_negotiate(&f->drv, ~0ull) & VIRTIO_CONFIG_S_FEATURES_OK);
    assert_int_equal(vdrv_setup_queue(&f->drv, 0, QSIZE, 1), 1);
    vdrv_driver_ok(&f->drv);
    f->used = 0;
}

static void borrowed_device_read(struct fixture *f, uint64_t sector)
{
    uint64_t buf = vdrv_alloc(&f->drv, 512, 512);
    struct req r = {.type = T_IN, .sector = sector, .in_gpa = buf, .in_len = 512};
    assert_int_equal(run(f, &r, NULL), S_OK);
    assert_int_equal(*(uint8_t *)vdrv_host(&f->drv, buf, 1), pattern(sector * 512));
}

/*
 * A guest reboot: the device is destroyed and a new one made on the same
 * kept loop; the loop survives (stopped and cleared, not destroyed) and
 * the new device's requests complete on the same thread.
 */
static void test_borrowed_loop_across_devices(void **state)
{
    struct fixture *f = *state;
    /* The fixture's own device (own loop) leaves; the next ones borrow `loop`. */
    virtio_dev_destroy(f->dev);
    f->dev = NULL;
    struct evloop *loop = NULL;
    assert_int_equal(evloop_create(&loop), 0);
    f->vm.m.io_loop = loop;

    borrowed_device_up(f);
    borrowed_device_read(f, 5);
    pthread_t first = loop_thread(loop);
    assert_false(pthread_equal(first, pthread_self()));
    virtio_dev_destroy(f->dev);
    f->dev = NULL;

    borrowed_device_up(f);
    borrowed_device_read(f, 7);
    borrowed_device_read(f, 9);
    assert_true(pthread_equal(loop_thread(loop), first));
    virtio_dev_destroy(f->dev);
    f->dev = NULL;

    /* The loop is still the test's: destroy ends its thread. */
    evloop_destroy(loop);
    f->vm.m.io_loop = NULL;
}

/*
 * A backend that hangs: reads wait at a gate the test opens, as a disk on a
 * dead NFS server would. Worker threads only (no io_uring), so every read
 * goes through the driver's preadv.
 */
static struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    unsigned entered;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};
static struct blk_driver gated_driver;

static int gated_preadv(struct blk_image *img, const struct iovec *iov, int iovcnt, uint64_t off)
{
    pthread_mutex_lock(&gate.mu);
    gate.entered++;
    pthread_cond_broadcast(&gate.cv);
    while (!gate.open)
        pthread_cond_wait(&gate.cv, &gate.mu);
    pthread_mutex_unlock(&gate.mu);
    return blk_raw_driver.preadv(img, iov, iovcnt, off);
}

static void gate_set(bool open)
{
    pthread_mutex_lock(&gate.mu);
    gate.open = open;
    if (!open)
        gate.entered = 0;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
}

static void gate_wait_entered(unsigned n)
{
    pthread_mutex_lock(&gate.mu);
    while (gate.entered < n)
        pthread_cond_wait(&gate.cv, &gate.mu);
    pthread_mutex_unlock(&gate.mu);
}

static int setup_gated(void **state)
{
    setenv("KRUNKIT_NO_IO_URING", "1", 1);
    struct fixture *f = make_fixture(false, NULL);
    unsetenv("KRUNKIT_NO_IO_URING");
    gated_driver = *f->img->drv;
    gated_driver.preadv = gated_preadv;
    f->img->drv = &gated_driver;
    gate_set(false);
    *state = f;
    return 0;
}

static int teardown_gated(void **state)
{
    gate_set(true);
    return teardown(state);
}

static uint16_t used_idx(struct fixture *f)
{
    uint16_t v;
    memcpy(&v, vdrv_host(&f->drv, f->drv.q[0].used + 2, 2), 2);
    return v;
}

/* Queue a one-sector read of `sector` into buf; *status_gpa gets its status byte (0xee). */
static void add_read(struct fixture *f, uint64_t sector, uint64_t buf, uint64_t *status_gpa)
{
    struct vdrv *d = &f->drv;
    uint64_t hdr = vdrv_alloc(d, 16, 16), st = vdrv_alloc(d, 1, 1);
    uint32_t type = T_IN;
    memset(vdrv_host(d, hdr, 16), 0, 16);
    memcpy(vdrv_host(d, hdr, 4), &type, 4);
    memcpy(vdrv_host(d, hdr + 8, 8), &sector, 8);
    *(uint8_t *)vdrv_host(d, st, 1) = 0xee;
    struct vdrv_buf b[3] = {{hdr, 16, false}, {buf, 512, true}, {st, 1, true}};
    vdrv_add_chain(d, 0, b, 3);
    *status_gpa = st;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The driver resets while a read hangs in the backend: the status write
 * (a vCPU's) returns at once, the status reads non-zero until the read is
 * back, then 0; the late completion is never written to the used ring or
 * the status byte.
 */
static void test_reset_does_not_wait_for_hung_io(void **state)
{
    struct fixture *f = *state;
    struct vdrv *d = &f->drv;
    uint64_t buf = vdrv_alloc(d, 512, 512), st;
    add_read(f, 5, buf, &st);
    vdrv_kick(d, 0);
    gate_wait_entered(1);

    int64_t t0 = now_ms();
    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS, 0, 1);
    assert_true(now_ms() - t0 < 500);
    usleep(100 * 1000);
    assert_int_not_equal(vdrv_status(d), 0); /* still resetting: the read owns buf */
    assert_int_equal(used_idx(f), 0);

    gate_set(true);
    assert_true(wait_status_zero(d, WAIT_MS));
    usleep(50 * 1000);
    assert_int_equal(used_idx(f), 0);
    assert_int_equal(*(uint8_t *)vdrv_host(d, st, 1), 0xee);

    /* The device serves the next driver. */
    vdrv_enable_msix(d, 2);
    assert_true(vdrv_negotiate(d, ~0ull) & VIRTIO_CONFIG_S_FEATURES_OK);
    assert_int_equal(vdrv_setup_queue(d, 0, QSIZE, 1), 1);
    vdrv_driver_ok(d);
    f->used = 0;
    struct req r = {.type = T_IN, .sector = 7, .in_gpa = buf, .in_len = 512};
    assert_int_equal(run(f, &r, NULL), S_OK);
    assert_int_equal(*(uint8_t *)vdrv_host(d, buf, 1), pattern(7 * 512));
}

/* While resetting, the driver's other status writes are ignored until it reads 0. */
static void test_status_writes_ignored_while_resetting(void **state)
{
    struct fixture *f = *state;
    struct vdrv *d = &f->drv;
    uint64_t buf = vdrv_alloc(d, 512, 512), st;
    add_read(f, 1, buf, &st);
    vdrv_kick(d, 0);
    gate_wait_entered(1);
    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS, 0, 1);
    uint8_t during = vdrv_status(d);
    assert_int_not_equal(during, 0);
    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE, 1);
    assert_int_equal(vdrv_status(d), during);
    gate_set(true);
    assert_true(wait_status_zero(d, WAIT_MS));
}

static void *quiesce_thread(void *arg)
{
    virtio_dev_quiesce(arg);
    return NULL;
}

/*
 * Pause with a read in flight: quiesce waits for it (its completion is
 * published before quiesce returns); after that, a request the guest adds
 * and kicks is not touched, buffer, status byte or used ring, until resume.
 */
static void test_quiesce(void **state)
{
    struct fixture *f = *state;
    struct vdrv *d = &f->drv;
    uint64_t buf = vdrv_alloc(d, 512, 512), st;
    add_read(f, 2, buf, &st);
    vdrv_kick(d, 0);
    gate_wait_entered(1);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, quiesce_thread, f->dev), 0);
    usleep(100 * 1000);
    assert_int_equal(used_idx(f), 0);
    /* The wait holds no lock a vCPU needs: a register read answers at once. */
    int64_t t0 = now_ms();
    assert_int_not_equal(vdrv_status(d), 0);
    assert_true(now_ms() - t0 < 500);
    gate_set(true);
    pthread_join(t, NULL);
    assert_int_equal(used_idx(f), 1);
    assert_int_equal(*(uint8_t *)vdrv_host(d, st, 1), S_OK);

    uint64_t buf2 = vdrv_alloc(d, 512, 512), st2;
    memset(vdrv_host(d, buf2, 512), 0xaa, 512);
    add_read(f, 3, buf2, &st2);
    vdrv_kick(d, 0);
    usleep(200 * 1000);
    assert_int_equal(used_idx(f), 1);
    assert_int_equal(*(uint8_t *)vdrv_host(d, st2, 1), 0xee);
    uint8_t untouched[512];
    memset(untouched, 0xaa, sizeof(untouched));
    assert_memory_equal(vdrv_host(d, buf2, 512), untouched, 512);

    virtio_dev_resume(f->dev);
    assert_true(vdrv_wait_used(d, 0, 2, WAIT_MS, NULL));
    assert_int_equal(*(uint8_t *)vdrv_host(d, st2, 1), S_OK);
    assert_int_equal(*(uint8_t *)vdrv_host(d, buf2, 1), pattern(3 * 512));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TG(fn) cmocka_unit_test_setup_teardown(fn, setup_gated, teardown_gated)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_config_and_features),
        T(test_read),
        T(test_write_and_flush),
        T(test_write_zeroes_and_discard),
        T(test_get_id),
        T(test_bad_requests),
        T(test_many_requests_one_kick),
        T(test_indirect_request),
        cmocka_unit_test_setup_teardown(test_readonly, setup_ro, teardown),
        T(test_reset_with_requests),
        T(test_borrowed_loop_across_devices),
        cmocka_unit_test(test_create_errors),
        TG(test_reset_does_not_wait_for_hung_io),
        TG(test_status_writes_ignored_while_resetting),
        TG(test_quiesce),
    };
    return cmocka_run_group_tests_name("virtio-blk", tests, NULL, NULL);
}
