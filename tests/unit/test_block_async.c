/*
 * Asynchronous block requests: many in flight on raw and qcow2 images,
 * completions reported through the completion fd and run in blk_complete,
 * each done() exactly once with the right result, and close finishing
 * whatever is still queued.
 */
#include <liburing.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../block/block_test_util.h"

#define NREQ 96
#define BLK 4096

struct tracked {
    struct blk_req req;
    struct iovec iov[2];
    unsigned done_calls;
};

static unsigned completed;

static void on_done(struct blk_req *req)
{
    struct tracked *t = req->opaque;
    t->done_calls++;
    completed++;
}

static int group_setup(void **state)
{
    (void)state;
    if (!bt_have_qemu_img())
        return -1;
    return bt_make_dir();
}

static int group_teardown(void **state)
{
    (void)state;
    bt_remove_dir();
    return 0;
}

/* Waits on the completion fd and runs completions until `target` are done. */
static unsigned wait_for(struct blk_image *img, unsigned target)
{
    unsigned wakeups = 0;
    int fd = blk_completion_fd(img);
    assert_true(fd >= 0);
    while (completed < target) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 10000), 1);
        blk_complete(img);
        wakeups++;
    }
    return wakeups;
}

static void run_batch(struct blk_image *img, struct tracked *t, uint8_t *data, int op)
{
    completed = 0;
    for (unsigned i = 0; i < NREQ; i++) {
        memset(&t[i], 0, sizeof(t[i]));
        /* Two segments per request; requests interleave over the disk. */
        uint64_t off = (uint64_t)((i * 37) % NREQ) * BLK * 3;
        t[i].iov[0] = (struct iovec){data + i * BLK, 1000};
        t[i].iov[1] = (struct iovec){data + i * BLK + 1000, BLK - 1000};
        t[i].req = (struct blk_req){.op = op,
                                    .offset = off,
                                    .iov = t[i].iov,
                                    .iovcnt = 2,
                                    .done = on_done,
                                    .opaque = &t[i]};
        assert_int_equal(blk_submit(img, &t[i].req), 0);
    }
    unsigned wakeups = wait_for(img, NREQ);
    assert_true(wakeups >= 1 && wakeups <= NREQ);
    for (unsigned i = 0; i < NREQ; i++) {
        assert_int_equal(t[i].done_calls, 1);
        assert_int_equal(t[i].req.result, 0);
    }
}

/* io_uring instances this process holds open. */
static int uring_fds(void)
{
    char link[64], target[128];
    int n = 0;
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t len = readlink(link, target, sizeof(target) - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        n += strstr(target, "io_uring") != NULL;
    }
    return n;
}

static bool kernel_has_io_uring(void)
{
    struct io_uring ring;
    if (io_uring_queue_init(4, &ring, 0) < 0)
        return false;
    io_uring_queue_exit(&ring);
    return true;
}

/* expect_uring: 1 the image must use io_uring, 0 must not, -1 either. */
static void async_roundtrip(const char *path, enum blk_format fmt, int expect_uring)
{
    struct blk_image *img;
    struct tracked *t = calloc(NREQ, sizeof(*t));
    uint8_t *wdata = malloc(NREQ * BLK), *rdata = calloc(NREQ, BLK);

    bt_fill(wdata, NREQ * BLK, fmt + 1);
    assert_int_equal(blk_open(path, fmt, false, NULL, &img), 0);
    run_batch(img, t, wdata, BLK_OP_WRITE);
    if (expect_uring >= 0)
        assert_int_equal(uring_fds() > 0, expect_uring);
    run_batch(img, t, rdata, BLK_OP_READ);
    assert_memory_equal(wdata, rdata, NREQ * BLK);

    /* Flush, write-zeroes and discard through the same path. */
    struct tracked z = {0}, zu = {0}, d = {0}, f = {0};
    completed = 0;
    z.req = (struct blk_req){
        .op = BLK_OP_WRITE_ZEROES, .offset = 0, .len = 3 * BLK, .done = on_done, .opaque = &z};
    d.req = (struct blk_req){
        .op = BLK_OP_DISCARD, .offset = 65536, .len = 65536, .done = on_done, .opaque = &d};
    f.req = (struct blk_req){.op = BLK_OP_FLUSH, .done = on_done, .opaque = &f};
    zu.req = (struct blk_req){.op = BLK_OP_WRITE_ZEROES_UNMAP,
                              .offset = 3 * BLK,
                              .len = BLK,
                              .done = on_done,
                              .opaque = &zu};
    assert_int_equal(blk_submit(img, &z.req), 0);
    assert_int_equal(blk_submit(img, &zu.req), 0);
    assert_int_equal(blk_submit(img, &d.req), 0);
    assert_int_equal(blk_submit(img, &f.req), 0);
    wait_for(img, 4);
    assert_int_equal(z.req.result, 0);
    assert_int_equal(zu.req.result, 0);
    assert_int_equal(d.req.result, 0);
    assert_int_equal(f.req.result, 0);
    uint8_t buf[3 * BLK];
    struct iovec v = {buf, sizeof(buf)};
    assert_int_equal(blk_preadv(img, &v, 1, 0), 0);
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0);
    assert_int_equal(blk_preadv(img, &(struct iovec){buf, BLK}, 1, 3 * BLK), 0);
    for (size_t i = 0; i < BLK; i++)
        assert_int_equal(buf[i], 0);

    /* A bad request completes with its error; others are unaffected. */
    struct tracked bad = {0};
    completed = 0;
    bad.iov[0] = (struct iovec){buf, BLK};
    bad.req = (struct blk_req){.op = BLK_OP_READ,
                               .offset = blk_size(img),
                               .iov = bad.iov,
                               .iovcnt = 1,
                               .done = on_done,
                               .opaque = &bad};
    assert_int_equal(blk_submit(img, &bad.req), 0);
    wait_for(img, 1);
    assert_int_equal(bad.req.result, -EINVAL);
    assert_int_equal(blk_submit(img, &(struct blk_req){.op = 99, .done = on_done}), -EINVAL);

    /* Close with requests still queued: all of them complete first. */
    completed = 0;
    for (unsigned i = 0; i < NREQ; i++) {
        memset(&t[i], 0, sizeof(t[i]));
        t[i].iov[0] = (struct iovec){wdata + i * BLK, BLK};
        t[i].req = (struct blk_req){.op = BLK_OP_WRITE,
                                    .offset = (uint64_t)i * BLK,
                                    .iov = t[i].iov,
                                    .iovcnt = 1,
                                    .done = on_done,
                                    .opaque = &t[i]};
        assert_int_equal(blk_submit(img, &t[i].req), 0);
    }
    blk_close(img);
    assert_int_equal(completed, NREQ);
    for (unsigned i = 0; i < NREQ; i++)
        assert_int_equal(t[i].req.result, 0);

    assert_int_equal(blk_open(path, fmt, true, NULL, &img), 0);
    v = (struct iovec){rdata, NREQ * BLK};
    assert_int_equal(blk_preadv(img, &v, 1, 0), 0);
    assert_memory_equal(wdata, rdata, NREQ * BLK);
    blk_close(img);
    free(t);
    free(wdata);
    free(rdata);
}

static void async_raw(void **state)
{
    (void)state;
    const char *p = bt_path("a.raw");
    assert_int_equal(bt_sh("truncate -s 8M '%s'", p), 0);
    async_roundtrip(p, BLK_FMT_RAW, kernel_has_io_uring());
}

static void async_raw_workers(void **state)
{
    (void)state;
    const char *p = bt_path("w.raw");
    assert_int_equal(bt_sh("truncate -s 8M '%s'", p), 0);
    setenv("KRUNKIT_NO_IO_URING", "1", 1);
    async_roundtrip(p, BLK_FMT_RAW, 0);
    unsetenv("KRUNKIT_NO_IO_URING");
}

/* t: a one-block request of op at off, buffer buf. */
static void one_block(struct tracked *t, int op, uint8_t *buf, uint64_t off)
{
    *t = (struct tracked){0};
    t->iov[0] = (struct iovec){buf, BLK};
    t->req = (struct blk_req){
        .op = op, .offset = off, .iov = t->iov, .iovcnt = 1, .done = on_done, .opaque = t};
}

/* Plugged: nothing reaches the kernel until unplug, then all of it at once. */
static void async_raw_plugged(void **state)
{
    (void)state;
    if (!kernel_has_io_uring())
        skip();
    enum { N = 300 }; /* more than the submission ring holds */
    const char *p = bt_path("plug.raw");
    assert_int_equal(bt_sh("truncate -s 8M '%s'", p), 0);
    struct blk_image *img;
    assert_int_equal(blk_open(p, BLK_FMT_RAW, false, NULL, &img), 0);
    struct tracked *t = calloc(N, sizeof(*t));
    uint8_t *data = malloc(N * BLK), *back = malloc(N * BLK);
    bt_fill(data, N * BLK, 7);
    int fd = blk_completion_fd(img);
    assert_true(fd >= 0);

    completed = 0;
    blk_plug(img);
    for (unsigned i = 0; i < 8; i++) {
        one_block(&t[i], BLK_OP_WRITE, data + i * BLK, (uint64_t)i * BLK);
        assert_int_equal(blk_submit(img, &t[i].req), 0);
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 200), 0); /* held, not submitted */
    blk_unplug(img);
    wait_for(img, 8);

    /* A plugged pass larger than the ring: the held part is handed over when it fills. */
    completed = 0;
    blk_plug(img);
    for (unsigned i = 0; i < N; i++) {
        one_block(&t[i], BLK_OP_WRITE, data + i * BLK, (uint64_t)i * BLK);
        assert_int_equal(blk_submit(img, &t[i].req), 0);
    }
    blk_unplug(img);
    wait_for(img, N);
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(t[i].done_calls, 1);
        assert_int_equal(t[i].req.result, 0);
    }
    assert_int_equal(uring_fds() > 0, 1);

    /* Closing while plugged still completes what was held. */
    completed = 0;
    blk_plug(img);
    for (unsigned i = 0; i < 4; i++) {
        one_block(&t[i], BLK_OP_READ, back + i * BLK, (uint64_t)i * BLK);
        assert_int_equal(blk_submit(img, &t[i].req), 0);
    }
    blk_close(img);
    assert_int_equal(completed, 4);
    assert_memory_equal(back, data, 4 * BLK);

    assert_int_equal(blk_open(p, BLK_FMT_RAW, true, NULL, &img), 0);
    struct iovec v = {back, N * BLK};
    assert_int_equal(blk_preadv(img, &v, 1, 0), 0);
    assert_memory_equal(back, data, N * BLK);
    blk_close(img);
    free(t);
    free(data);
    free(back);
}

static void async_qcow2(void **state)
{
    (void)state;
    const char *p = bt_path("a.qcow2");
    assert_int_equal(bt_sh("qemu-img create -q -f qcow2 '%s' 8M", p), 0);
    async_roundtrip(p, BLK_FMT_QCOW2, 0);
    assert_int_equal(bt_qemu_check(p), 0);
}

/*
 * Many workers at once on one qcow2 image with a backing file: writes,
 * reads, write-zeroes, discards and flushes on disjoint but cluster-sharing
 * ranges, batch after batch; the image must match a mirror and pass
 * qemu-img check.
 */
#define MIX_SLOTS 64
#define MIX_SLOT (40 * 1024 + 512)

static void async_qcow2_mixed_concurrency(void **state)
{
    (void)state;
    const uint64_t size = (uint64_t)MIX_SLOTS * MIX_SLOT;
    uint8_t *mirror = malloc(size), *data = malloc(size), *got = malloc(size);
    struct tracked *t = calloc(MIX_SLOTS + 1, sizeof(*t));
    int kinds[MIX_SLOTS];
    struct blk_image *img;
    uint64_t rng = 99;

    bt_fill(mirror, size, 4);
    assert_int_equal(bt_write_file(bt_path("mix-base.raw"), mirror, size), 0);
    assert_int_equal(bt_sh("cd '%s' && qemu-img create -q -f qcow2 -F raw -b mix-base.raw -o "
                           "cluster_size=16384 mix.qcow2",
                           bt_dir),
                     0);
    assert_int_equal(blk_open(bt_path("mix.qcow2"), BLK_FMT_QCOW2, false, NULL, &img), 0);
    for (int batch = 0; batch < 40; batch++) {
        completed = 0;
        for (unsigned i = 0; i < MIX_SLOTS; i++) {
            uint64_t off = (uint64_t)i * MIX_SLOT;
            memset(&t[i], 0, sizeof(t[i]));
            kinds[i] = (int)(bt_rand(&rng) % 6);
            t[i].req.offset = off;
            t[i].req.done = on_done;
            t[i].req.opaque = &t[i];
            switch (kinds[i]) {
            case 0:
            case 1:
                bt_fill(data + off, MIX_SLOT, bt_rand(&rng));
                t[i].iov[0] = (struct iovec){data + off, MIX_SLOT};
                t[i].req.op = BLK_OP_WRITE;
                t[i].req.iov = t[i].iov;
                t[i].req.iovcnt = 1;
                memcpy(mirror + off, data + off, MIX_SLOT);
                break;
            case 2:
                t[i].iov[0] = (struct iovec){got + off, MIX_SLOT};
                t[i].req.op = BLK_OP_READ;
                t[i].req.iov = t[i].iov;
                t[i].req.iovcnt = 1;
                break;
            case 3:
                t[i].req.op = bt_rand(&rng) % 2 ? BLK_OP_WRITE_ZEROES : BLK_OP_WRITE_ZEROES_UNMAP;
                t[i].req.len = MIX_SLOT;
                memset(mirror + off, 0, MIX_SLOT);
                break;
            case 4:
                t[i].req.op = BLK_OP_DISCARD;
                t[i].req.len = MIX_SLOT;
                break;
            default:
                t[i].req.op = BLK_OP_FLUSH;
                break;
            }
        }
        /* Reads see the state before the batch: their slots are not written in it. */
        uint8_t *before = malloc(size);
        memcpy(before, mirror, size);
        for (unsigned i = 0; i < MIX_SLOTS; i++)
            assert_int_equal(blk_submit(img, &t[i].req), 0);
        wait_for(img, MIX_SLOTS);
        for (unsigned i = 0; i < MIX_SLOTS; i++) {
            uint64_t off = (uint64_t)i * MIX_SLOT;
            assert_int_equal(t[i].req.result, 0);
            if (kinds[i] == 2)
                assert_memory_equal(got + off, before + off, MIX_SLOT);
            if (kinds[i] == 4) {
                struct iovec v = {got + off, MIX_SLOT};
                assert_int_equal(blk_preadv(img, &v, 1, off), 0);
                for (unsigned k = 0; k < MIX_SLOT; k++)
                    assert_true(got[off + k] == 0 || got[off + k] == mirror[off + k]);
                memcpy(mirror + off, got + off, MIX_SLOT);
            }
        }
        free(before);
    }
    struct iovec all = {got, size};
    assert_int_equal(blk_preadv(img, &all, 1, 0), 0);
    assert_memory_equal(got, mirror, size);
    blk_close(img);
    assert_int_equal(bt_write_file(bt_path("mix.raw"), mirror, size), 0);
    assert_int_equal(bt_qemu_check(bt_path("mix.qcow2")), 0);
    assert_int_equal(bt_qemu_compare(bt_path("mix.qcow2"), "qcow2", bt_path("mix.raw")), 0);
    free(mirror);
    free(data);
    free(got);
    free(t);
}

int main(void)
{
    int skip = bt_qemu_or_skip("test_block_async");
    if (skip >= 0)
        return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(async_raw),
        cmocka_unit_test(async_raw_workers),
        cmocka_unit_test(async_raw_plugged),
        cmocka_unit_test(async_qcow2),
        cmocka_unit_test(async_qcow2_mixed_concurrency),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
