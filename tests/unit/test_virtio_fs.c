/*
 * virtio-fs (src/virtio/fs.c) driven as a guest would, through the fake
 * machine and guest RAM, against a temporary share: PCI identity and the
 * configuration space (tag, num_request_queues), FUSE requests on the
 * request queue with READ data landing in the guest's buffers and WRITE
 * data taken from them, FORGET on the hiprio queue (no reply), chains with
 * nothing or too little to write into, a malformed chain (DEVICE_NEEDS_RESET),
 * device reset (the server forgets the driver), and create errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "fs/fs_share.h"
#include "support/fake_guest_mem.h"
#include "support/fake_hooks.h"
#include "support/virtio_driver.h"
#include "virtio/devices.h"
#include "virtio/pci.h"

#define RAM_SIZE (16u << 20)
#define HEAP_START 0x10000
#define WAIT_MS 5000
#define HIPRIO 0
#define REQQ 1
#define QSIZE 64
#define TAG "share-tag"

struct fixture {
    struct guest_mem gm;
    struct fake_vm vm;
    struct virtio_dev *dev;
    struct vdrv drv;
    char dir[64];
    struct dev_fs cfg;
    struct fs_share *share; /* kept across the devices made on it, as across reboots */
    uint16_t used[2];
    uint64_t unique;
};

static void write_host(struct fixture *f, const char *name, const char *text)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/%s", f->dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void start_driver(struct fixture *f)
{
    assert_true(vdrv_negotiate(&f->drv, ~0ull) & VIRTIO_CONFIG_S_FEATURES_OK);
    assert_int_equal(vdrv_setup_queue(&f->drv, HIPRIO, QSIZE, 1), 1);
    assert_int_equal(vdrv_setup_queue(&f->drv, REQQ, QSIZE, 2), 1);
    vdrv_driver_ok(&f->drv);
    f->used[0] = f->used[1] = 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test-vfs.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    write_host(f, "hello.txt", "hello from the host\n");
    f->cfg = (struct dev_fs){.shared_dir = f->dir, .mount_tag = TAG};
    assert_int_equal(fake_guest_mem_init(&f->gm, 0, RAM_SIZE), 0);
    assert_int_equal(fake_vm_init(&f->vm, &f->gm), 0);
    assert_int_equal(fs_share_open(&f->cfg, &f->share), 0);
    assert_int_equal(virtio_fs_create(&f->vm.m, &f->cfg, f->share, &f->dev), 0);
    vdrv_init(&f->drv, &f->vm, virtio_pci_function(f->dev), HEAP_START, RAM_SIZE);
    vdrv_enable_msix(&f->drv, 3);
    start_driver(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    virtio_dev_destroy(f->dev);
    fs_share_close(f->share);
    fake_vm_destroy(&f->vm);
    fake_guest_mem_free(&f->gm);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Submit a chain on q and wait for it; returns the used length. */
static uint32_t submit(struct fixture *f, unsigned q, const struct vdrv_buf *b, unsigned n)
{
    uint32_t len;
    vdrv_add_chain(&f->drv, q, b, n);
    vdrv_kick(&f->drv, q);
    assert_true(vdrv_wait_used(&f->drv, q, ++f->used[q], WAIT_MS, &len));
    return len;
}

/* Guest buffer holding header + args; returns its address. */
static uint64_t request_buf(struct fixture *f, uint32_t op, uint64_t nodeid, const void *args,
                            size_t alen)
{
    struct fuse_in_header h = {
        .len = (uint32_t)(sizeof(h) + alen), .opcode = op, .unique = ++f->unique, .nodeid = nodeid};
    uint64_t g = vdrv_alloc(&f->drv, sizeof(h) + alen, 8);
    memcpy(vdrv_host(&f->drv, g, sizeof(h)), &h, sizeof(h));
    if (alen)
        memcpy(vdrv_host(&f->drv, g + sizeof(h), alen), args, alen);
    return g;
}

/* One request on the request queue, reply room `room`; the reply header and payload address. */
static int call(struct fixture *f, uint32_t op, uint64_t nodeid, const void *args, size_t alen,
                uint32_t room, uint64_t *reply)
{
    uint64_t in = request_buf(f, op, nodeid, args, alen);
    uint64_t out = vdrv_alloc(&f->drv, room, 8);
    struct vdrv_buf b[2] = {{in, (uint32_t)(sizeof(struct fuse_in_header) + alen), false},
                            {out, room, true}};
    uint32_t len = submit(f, REQQ, b, 2);
    struct fuse_out_header oh;
    memcpy(&oh, vdrv_host(&f->drv, out, sizeof(oh)), sizeof(oh));
    assert_int_equal(oh.len, len);
    assert_int_equal(oh.unique, f->unique);
    if (reply)
        *reply = out + sizeof(oh);
    return oh.error ? oh.error : (int)(len - sizeof(oh));
}

static void fuse_init(struct fixture *f)
{
    struct fuse_init_in in = {.major = 7, .minor = 31, .flags = FUSE_MAX_PAGES};
    assert_int_equal(call(f, FUSE_INIT, 0, &in, sizeof(in), 4096, NULL),
                     sizeof(struct fuse_init_out));
}

static uint64_t lookup(struct fixture *f, uint64_t parent, const char *name)
{
    uint64_t r;
    int rc = call(f, FUSE_LOOKUP, parent, name, strlen(name) + 1, 4096, &r);
    if (rc < 0)
        return 0;
    struct fuse_entry_out e;
    memcpy(&e, vdrv_host(&f->drv, r, sizeof(e)), sizeof(e));
    return e.nodeid;
}

static uint64_t open_file(struct fixture *f, uint64_t nodeid, uint32_t flags)
{
    struct fuse_open_in in = {.flags = flags};
    uint64_t r;
    assert_int_equal(call(f, FUSE_OPEN, nodeid, &in, sizeof(in), 4096, &r),
                     sizeof(struct fuse_open_out));
    return ((struct fuse_open_out *)vdrv_host(&f->drv, r, sizeof(struct fuse_open_out)))->fh;
}

static void test_identity_and_config(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(pci_config_read(virtio_pci_function(f->dev), PCI_DEVICE_ID, 2), 0x1040 + 26);
    assert_int_equal(pci_config_read(virtio_pci_function(f->dev), PCI_VENDOR_ID, 2), 0x1af4);
    char tag[37] = {0};
    for (unsigned i = 0; i < 36; i++)
        tag[i] = (char)vdrv_read(&f->drv, VIRTIO_BAR_DEVICE + i, 1);
    assert_string_equal(tag, TAG);
    /* NUL-padded to 36 bytes. */
    for (unsigned i = strlen(TAG); i < 36; i++)
        assert_int_equal(vdrv_read(&f->drv, VIRTIO_BAR_DEVICE + i, 1), 0);
    assert_int_equal(vdrv_read(&f->drv, VIRTIO_BAR_DEVICE + 36, 4), 1);
    /* Read-only for the driver. */
    vdrv_write(&f->drv, VIRTIO_BAR_DEVICE + 36, 8, 4);
    vdrv_write(&f->drv, VIRTIO_BAR_DEVICE, 'X', 1);
    assert_int_equal(vdrv_read(&f->drv, VIRTIO_BAR_DEVICE + 36, 4), 1);
    assert_int_equal(vdrv_read(&f->drv, VIRTIO_BAR_DEVICE, 1), 's');
    /* Two queues: hiprio and one request queue. */
    assert_int_equal(vdrv_read(&f->drv, VIRTIO_PCI_COMMON_NUMQ, 2), 2);
    /* A 36-byte tag fills the field, without a NUL. */
    struct virtio_dev *dev2;
    char tag36[37];
    memset(tag36, 't', 36);
    tag36[36] = 0;
    struct dev_fs cfg = {.shared_dir = f->dir, .mount_tag = tag36};
    assert_int_equal(virtio_fs_create(&f->vm.m, &cfg, f->share, &dev2), 0);
    virtio_dev_destroy(dev2);
}

static void test_requests_in_guest_buffers(void **state)
{
    struct fixture *f = *state;
    /* Before INIT: EIO. */
    assert_int_equal(call(f, FUSE_LOOKUP, 1, "hello.txt", 10, 4096, NULL), -EIO);
    fuse_init(f);
    uint64_t id = lookup(f, 1, "hello.txt");
    assert_true(id != 0);
    uint64_t fh = open_file(f, id, O_RDWR);

    /* READ into three guest buffers: header in the first, data across the others. */
    struct fuse_read_in rd = {.fh = fh, .offset = 0, .size = 4096};
    uint64_t in = request_buf(f, FUSE_READ, id, &rd, sizeof(rd));
    uint64_t o1 = vdrv_alloc(&f->drv, 16, 8), o2 = vdrv_alloc(&f->drv, 5, 8),
             o3 = vdrv_alloc(&f->drv, 100, 8);
    struct vdrv_buf b[4] = {
        {in, 40 + sizeof(rd), false}, {o1, 16, true}, {o2, 5, true}, {o3, 100, true}};
    assert_int_equal(submit(f, REQQ, b, 4), 16 + 20);
    assert_memory_equal(vdrv_host(&f->drv, o2, 5), "hello", 5);
    assert_memory_equal(vdrv_host(&f->drv, o3, 15), " from the host\n", 15);

    /* WRITE with the data in a separate guest buffer, split in two. */
    struct fuse_write_in wr = {.fh = fh, .offset = 0, .size = 12};
    in = request_buf(f, FUSE_WRITE, id, &wr, sizeof(wr));
    uint64_t d1 = vdrv_alloc(&f->drv, 7, 8), d2 = vdrv_alloc(&f->drv, 5, 8);
    memcpy(vdrv_host(&f->drv, d1, 7), "written", 7);
    memcpy(vdrv_host(&f->drv, d2, 5), " by g", 5);
    /* The header claims the data too. */
    struct fuse_in_header *h = vdrv_host(&f->drv, in, sizeof(*h));
    h->len += 12;
    uint64_t out = vdrv_alloc(&f->drv, 64, 8);
    struct vdrv_buf w[4] = {
        {in, 40 + sizeof(wr), false}, {d1, 7, false}, {d2, 5, false}, {out, 64, true}};
    assert_int_equal(submit(f, REQQ, w, 4), 16 + sizeof(struct fuse_write_out));
    struct fuse_write_out wo;
    memcpy(&wo, vdrv_host(&f->drv, out + 16, sizeof(wo)), sizeof(wo));
    assert_int_equal(wo.size, 12);
    char buf[64] = {0};
    char p[128];
    snprintf(p, sizeof(p), "%s/hello.txt", f->dir);
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
    close(fd);
    assert_string_equal(buf, "written by ghe host\n");

    /* FORGET on the hiprio queue: used with length 0, the nodeid dies. */
    struct fuse_forget_in fg = {.nlookup = 1};
    in = request_buf(f, FUSE_FORGET, id, &fg, sizeof(fg));
    struct vdrv_buf fb = {in, 40 + sizeof(fg), false};
    assert_int_equal(submit(f, HIPRIO, &fb, 1), 0);
    struct fuse_getattr_in ga = {0};
    assert_int_equal(call(f, FUSE_GETATTR, id, &ga, sizeof(ga), 4096, NULL), -ESTALE);
    assert_false(vdrv_status(&f->drv) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void test_short_chains(void **state)
{
    struct fixture *f = *state;
    fuse_init(f);
    /* Nothing writable: no reply can be given, the chain comes back empty. */
    uint64_t in = request_buf(f, FUSE_LOOKUP, 1, "hello.txt", 10);
    struct vdrv_buf only_in = {in, 50, false};
    assert_int_equal(submit(f, REQQ, &only_in, 1), 0);
    /* Writable part shorter than a fuse_out_header. */
    uint64_t out = vdrv_alloc(&f->drv, 64, 8);
    memset(vdrv_host(&f->drv, out, 64), 0x5a, 64);
    struct vdrv_buf tiny[2] = {{in, 50, false}, {out, 15, true}};
    assert_int_equal(submit(f, REQQ, tiny, 2), 0);
    for (int i = 0; i < 64; i++)
        assert_int_equal(((uint8_t *)vdrv_host(&f->drv, out, 64))[i], 0x5a);
    /* Room for the header only: an error reply. */
    struct vdrv_buf hdr_only[2] = {{in, 50, false}, {out, 16, true}};
    assert_int_equal(submit(f, REQQ, hdr_only, 2), 16);
    struct fuse_out_header oh;
    memcpy(&oh, vdrv_host(&f->drv, out, 16), 16);
    assert_int_equal(oh.error, -EINVAL);
    /* Only a writable part: a header-less request. */
    struct vdrv_buf only_out = {out, 64, true};
    assert_int_equal(submit(f, REQQ, &only_out, 1), 16);
    memcpy(&oh, vdrv_host(&f->drv, out, 16), 16);
    assert_int_equal(oh.error, -EINVAL);
    /* A header claiming more than the chain holds. */
    struct fuse_in_header *h = vdrv_host(&f->drv, in, sizeof(*h));
    h->len = 4000;
    struct vdrv_buf lying[2] = {{in, 50, false}, {out, 64, true}};
    assert_int_equal(submit(f, REQQ, lying, 2), 16);
    memcpy(&oh, vdrv_host(&f->drv, out, 16), 16);
    assert_int_equal(oh.error, -EINVAL);
    /* The device keeps serving. */
    assert_true(lookup(f, 1, "hello.txt") != 0);
    assert_false(vdrv_status(&f->drv) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void test_malformed_chain_needs_reset(void **state)
{
    struct fixture *f = *state;
    fuse_init(f);
    /* A buffer outside guest RAM: the queue is broken, the device asks for a reset. */
    uint64_t in = request_buf(f, FUSE_LOOKUP, 1, "hello.txt", 10);
    struct vdrv_buf bad[2] = {{in, 50, false}, {RAM_SIZE + 0x1000, 4096, true}};
    vdrv_add_chain(&f->drv, REQQ, bad, 2);
    vdrv_kick(&f->drv, REQQ);
    for (int i = 0; i < 500 && !(vdrv_status(&f->drv) & VIRTIO_CONFIG_S_NEEDS_RESET); i++)
        usleep(10000);
    assert_true(vdrv_status(&f->drv) & VIRTIO_CONFIG_S_NEEDS_RESET);
    /* A reset and a new driver: the server starts over at INIT, old nodeids are gone. */
    start_driver(f);
    assert_false(vdrv_status(&f->drv) & VIRTIO_CONFIG_S_NEEDS_RESET);
    assert_int_equal(call(f, FUSE_LOOKUP, 1, "hello.txt", 10, 4096, NULL), -EIO);
    fuse_init(f);
    assert_true(lookup(f, 1, "hello.txt") != 0);
}

static void test_reset_forgets_the_driver(void **state)
{
    struct fixture *f = *state;
    fuse_init(f);
    uint64_t id = lookup(f, 1, "hello.txt");
    uint64_t fh = open_file(f, id, O_RDONLY);
    virtio_dev_reset(f->dev);
    start_driver(f);
    fuse_init(f);
    struct fuse_getattr_in ga = {0};
    assert_int_equal(call(f, FUSE_GETATTR, id, &ga, sizeof(ga), 4096, NULL), -ESTALE);
    struct fuse_read_in rd = {.fh = fh, .size = 10};
    assert_int_equal(call(f, FUSE_READ, id, &rd, sizeof(rd), 4096, NULL), -EBADF);
}

static void test_create_errors(void **state)
{
    struct fixture *f = *state;
    struct virtio_dev *dev = NULL;
    struct fs_share *share = NULL;
    struct dev_fs cfg = {.shared_dir = "/nonexistent/share", .mount_tag = "t"};
    assert_int_equal(fs_share_open(&cfg, &share), -ENOENT);
    assert_null(share);
    cfg = (struct dev_fs){.shared_dir = f->dir, .mount_tag = ""};
    assert_int_equal(virtio_fs_create(&f->vm.m, &cfg, f->share, &dev), -EINVAL);
    char tag37[38];
    memset(tag37, 't', 37);
    tag37[37] = 0;
    cfg.mount_tag = tag37;
    assert_int_equal(virtio_fs_create(&f->vm.m, &cfg, f->share, &dev), -EINVAL);
    assert_null(dev);
}

/*
 * A guest reboot destroys the device and makes a new one on the same
 * share: the new one starts from FUSE_INIT with none of the old nodeids,
 * and reaches the share through the fd opened at the start, not by its
 * path again (here the path no longer leads to it).
 */
static void test_rebuild_keeps_the_share(void **state)
{
    struct fixture *f = *state;
    fuse_init(f);
    uint64_t old = lookup(f, 1, "hello.txt");
    assert_true(old != 0);
    virtio_dev_destroy(f->dev);
    f->dev = NULL;
    assert_true(fcntl(f->share->root_fd, F_GETFD) >= 0);
    char moved[80];
    snprintf(moved, sizeof(moved), "%s.moved", f->dir);
    assert_int_equal(rename(f->dir, moved), 0);

    assert_int_equal(virtio_fs_create(&f->vm.m, &f->cfg, f->share, &f->dev), 0);
    vdrv_init(&f->drv, &f->vm, virtio_pci_function(f->dev), HEAP_START, RAM_SIZE);
    vdrv_enable_msix(&f->drv, 3);
    start_driver(f);
    struct fuse_getattr_in ga = {0};
    assert_int_equal(call(f, FUSE_GETATTR, 1, &ga, sizeof(ga), 4096, NULL), -EIO);
    fuse_init(f);
    assert_int_equal(call(f, FUSE_GETATTR, old, &ga, sizeof(ga), 4096, NULL), -ESTALE);
    assert_true(lookup(f, 1, "hello.txt") != 0);
    assert_int_equal(rename(moved, f->dir), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_identity_and_config),
        T(test_requests_in_guest_buffers),
        T(test_short_chains),
        T(test_malformed_chain_needs_reset),
        T(test_reset_forgets_the_driver),
        T(test_create_errors),
        T(test_rebuild_keeps_the_share),
    };
    return cmocka_run_group_tests_name("virtio-fs", tests, NULL, NULL);
}
