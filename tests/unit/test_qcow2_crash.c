/*
 * qcow2 crash consistency without a VM: a child process rewrites slots of
 * a qcow2 image (copy-on-write over a backing file, partial clusters,
 * write-zeroes, discards, flushes) and is killed with SIGKILL at random
 * moments. After each kill, `qemu-img check` must find no corruption (leaked
 * clusters are allowed) and every slot must hold, sector by sector, one of
 * the versions written since its last flushed write: acknowledged data is
 * never lost, and nothing else appears.
 */
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

#include <cmocka.h>

#include "../block/block_test_util.h"
#include "core/log.h"

#define SLOTS 48
#define SLOT_BYTES (72 * 1024) /* not a cluster multiple: partial clusters */
#define SECTOR 512
#define ROUNDS 20

struct progress {
    volatile int64_t issued; /* op being executed */
    volatile int64_t acked;  /* all ops up to this one are flushed */
};

struct crash_case {
    const char *name;
    const char *create; /* qemu-img create options */
    bool backing;
    bool async; /* batches of concurrent requests through blk_submit */
};

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

enum op_kind { OP_WRITE, OP_ZERO, OP_DISCARD };

static unsigned op_slot(int64_t j)
{
    uint64_t s = (uint64_t)j * 0x9E3779B97F4A7C15ull + 1;
    return (unsigned)(bt_rand(&s) % SLOTS);
}

static enum op_kind op_kind(int64_t j)
{
    uint64_t s = (uint64_t)j * 0xC2B2AE3D27D4EB4Full + 3;
    unsigned k = (unsigned)(bt_rand(&s) % 10);
    return k < 8 ? OP_WRITE : k == 8 ? OP_ZERO : OP_DISCARD;
}

/* The bytes op j leaves in its slot; NULL contents for discard (old or zero). */
static void op_data(int64_t j, uint8_t *buf)
{
    if (op_kind(j) == OP_WRITE)
        bt_fill(buf, SLOT_BYTES, (uint64_t)j + 1000);
    else
        memset(buf, 0, SLOT_BYTES);
}

static void child_run(const char *path, struct progress *pg, int64_t first)
{
    struct blk_image *img;
    uint8_t *buf = malloc(SLOT_BYTES);

    log_init(getenv("BT_DEBUG") ? LOG_DEBUG : LOG_OFF, -1);
    if (blk_open(path, BLK_FMT_QCOW2, false, NULL, &img) < 0)
        _exit(2);
    for (int64_t j = first;; j++) {
        pg->issued = j;
        uint64_t off = (uint64_t)op_slot(j) * SLOT_BYTES;
        int r;
        switch (op_kind(j)) {
        case OP_WRITE:
            op_data(j, buf);
            r = blk_pwritev(img, &(struct iovec){buf, SLOT_BYTES}, 1, off);
            break;
        case OP_ZERO:
            r = blk_write_zeroes(img, off, SLOT_BYTES, j & 1);
            break;
        default:
            r = blk_discard(img, off, SLOT_BYTES);
            break;
        }
        if (r < 0)
            _exit(3);
        if (j % 5 == 4) {
            if (blk_flush(img) < 0)
                _exit(4);
            pg->acked = j;
        }
    }
}

static unsigned async_done;

static void count_done(struct blk_req *req)
{
    if (req->result < 0)
        _exit(3);
    async_done++;
}

/*
 * The way virtio-blk drives an image: batches of requests in flight at once
 * (distinct slots, so their order does not matter), then a flush.
 */
static void child_run_async(const char *path, struct progress *pg, int64_t first)
{
    enum { BATCH = 12 };
    struct blk_image *img;
    struct blk_req reqs[BATCH];
    struct iovec iovs[BATCH];
    uint8_t *bufs = malloc((size_t)BATCH * SLOT_BYTES);

    log_init(LOG_OFF, -1);
    if (blk_open(path, BLK_FMT_QCOW2, false, NULL, &img) < 0)
        _exit(2);
    int fd = blk_completion_fd(img);
    for (int64_t j = first;;) {
        bool used[SLOTS] = {false};
        unsigned n = 0;
        while (n < BATCH && !used[op_slot(j)]) {
            used[op_slot(j)] = true;
            struct blk_req *r = &reqs[n];
            memset(r, 0, sizeof(*r));
            r->offset = (uint64_t)op_slot(j) * SLOT_BYTES;
            r->done = count_done;
            switch (op_kind(j)) {
            case OP_WRITE:
                op_data(j, bufs + (size_t)n * SLOT_BYTES);
                iovs[n] = (struct iovec){bufs + (size_t)n * SLOT_BYTES, SLOT_BYTES};
                r->op = BLK_OP_WRITE;
                r->iov = &iovs[n];
                r->iovcnt = 1;
                break;
            case OP_ZERO:
                r->op = j & 1 ? BLK_OP_WRITE_ZEROES_UNMAP : BLK_OP_WRITE_ZEROES;
                r->len = SLOT_BYTES;
                break;
            default:
                r->op = BLK_OP_DISCARD;
                r->len = SLOT_BYTES;
                break;
            }
            n++;
            j++;
        }
        pg->issued = j - 1;
        async_done = 0;
        for (unsigned i = 0; i < n; i++)
            if (blk_submit(img, &reqs[i]) < 0)
                _exit(3);
        while (async_done < n) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            poll(&p, 1, 1000);
            blk_complete(img);
        }
        if (blk_flush(img) < 0)
            _exit(4);
        pg->acked = j - 1;
    }
}

/*
 * Op j is durable when the process that ran it flushed after it: a later
 * process's flush says nothing about an op that was cut short by SIGKILL.
 */
static struct {
    int64_t first, acked;
} rounds[ROUNDS];
static int nrounds;

static bool durable(int64_t j)
{
    for (int r = 0; r < nrounds; r++)
        if (j >= rounds[r].first && j <= rounds[r].acked)
            return true;
    return false;
}

/* Checks every slot sector by sector against the versions it may hold. */
static void verify(const char *path, const uint8_t *initial, int64_t acked, int64_t issued)
{
    struct blk_image *img;
    uint8_t *got = malloc(SLOT_BYTES), *cand = malloc(SLOT_BYTES);

    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, true, NULL, &img), 0);
    for (unsigned slot = 0; slot < SLOTS; slot++) {
        assert_int_equal(
            blk_preadv(img, &(struct iovec){got, SLOT_BYTES}, 1, (uint64_t)slot * SLOT_BYTES), 0);
        int64_t last_acked = -1;
        for (int64_t j = acked; j >= 0; j--)
            if (op_slot(j) == slot && durable(j)) {
                last_acked = j;
                break;
            }
        /* Which sectors some candidate explains. */
        bool ok[SLOT_BYTES / SECTOR] = {false};
        const uint8_t *init = initial + (uint64_t)slot * SLOT_BYTES;
        bool discard_seen = false;
        if (last_acked < 0)
            for (unsigned s = 0; s < SLOT_BYTES / SECTOR; s++)
                ok[s] |= !memcmp(got + s * SECTOR, init + s * SECTOR, SECTOR);
        for (int64_t j = last_acked < 0 ? 0 : last_acked; j <= issued; j++) {
            if (op_slot(j) != slot)
                continue;
            if (op_kind(j) == OP_DISCARD)
                discard_seen = true;
            op_data(j, cand);
            for (unsigned s = 0; s < SLOT_BYTES / SECTOR; s++)
                ok[s] |= !memcmp(got + s * SECTOR, cand + s * SECTOR, SECTOR);
        }
        for (unsigned s = 0; s < SLOT_BYTES / SECTOR; s++) {
            if (!ok[s] && discard_seen) {
                /* a discard may also leave any older version: accept data of any op */
                for (int64_t j = 0; j <= issued && !ok[s]; j++) {
                    if (op_slot(j) != slot)
                        continue;
                    op_data(j, cand);
                    ok[s] = !memcmp(got + s * SECTOR, cand + s * SECTOR, SECTOR);
                }
                ok[s] |= !memcmp(got + s * SECTOR, init + s * SECTOR, SECTOR);
            }
            if (!ok[s]) {
                fprintf(stderr, "slot %u sector %u: unexpected data (acked %lld, issued %lld)\n",
                        slot, s, (long long)acked, (long long)issued);
                for (int64_t j = 0; j <= issued + 50; j++) {
                    op_data(j, cand);
                    if (!memcmp(got + s * SECTOR, cand + s * SECTOR, SECTOR))
                        fprintf(stderr, "  matches op %lld (slot %u kind %d)\n", (long long)j,
                                op_slot(j), op_kind(j));
                }
                for (int64_t j = 0; j <= issued; j++)
                    if (op_slot(j) == slot)
                        fprintf(stderr, "  op %lld kind %d\n", (long long)j, op_kind(j));
                fprintf(stderr, "  initial %d\n",
                        !memcmp(got + s * SECTOR, init + s * SECTOR, SECTOR));
            }
            assert_true(ok[s]);
        }
    }
    blk_close(img);
    free(got);
    free(cand);
}

static void killed_writer_loses_nothing_acknowledged(void **state)
{
    const struct crash_case *c = *state;
    char img[64];
    const uint64_t size = (uint64_t)SLOTS * SLOT_BYTES;
    uint8_t *initial = calloc(1, size);
    struct progress *pg =
        mmap(NULL, sizeof(*pg), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(pg != MAP_FAILED);

    snprintf(img, sizeof(img), "%s.qcow2", c->name);
    const char *path = bt_path(img);
    if (c->backing) {
        bt_fill(initial, size, 5);
        assert_int_equal(bt_write_file(bt_path("crash-base.raw"), initial, size), 0);
        assert_int_equal(bt_sh("cd '%s' && qemu-img create -q -f qcow2 -F raw -b crash-base.raw "
                               "-o %s '%s'",
                               bt_dir, c->create, img),
                         0);
    } else {
        assert_int_equal(bt_sh("qemu-img create -q -f qcow2 -o %s '%s' %llu", c->create, path,
                               (unsigned long long)size),
                         0);
    }

    uint64_t seed = 1234;
    nrounds = 0;
    int64_t acked = -1, next = 0;
    unsigned leaky = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pg->issued = next - 1;
        pg->acked = acked;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            if (c->async)
                child_run_async(path, pg, next);
            else
                child_run(path, pg, next);
        }
        long ms = 5 + (long)(bt_rand(&seed) % 60);
        nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000}, NULL);
        kill(pid, SIGKILL);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFSIGNALED(st)); /* it was still writing, not failing */
        acked = pg->acked;
        int64_t issued = pg->issued;
        rounds[nrounds].first = next;
        rounds[nrounds].acked = acked;
        nrounds++;

        char out[4096];
        int check = bt_sh_out(out, sizeof(out), "qemu-img check -f qcow2 '%s'", path);
        if (check != 0 && check != 3)
            fprintf(stderr, "round %d: qemu-img check status %d:\n%s", round, check, out);
        assert_true(check == 0 || check == 3); /* 3: leaked clusters only */
        leaky += check == 3;
        if (getenv("BT_VERBOSE"))
            fprintf(stderr, "round %d: ops %lld..%lld, acked %lld, check %d\n", round,
                    (long long)next, (long long)issued, (long long)acked, check);
        verify(path, initial, acked, issued);
        next = issued + 1;
    }
    /* Leaks are repairable, and then the image is clean. */
    assert_int_equal(bt_sh("qemu-img check -q -r leaks -f qcow2 '%s'", path), 0);
    assert_int_equal(bt_qemu_check(path), 0);
    if (getenv("BT_VERBOSE"))
        fprintf(stderr, "%s: %u of %d crashes leaked clusters, %lld ops\n", c->name, leaky, ROUNDS,
                (long long)next);
    munmap(pg, sizeof(*pg));
    free(initial);
}

static const struct crash_case cow64k = {"cow64k", "cluster_size=65536", true, false};
static const struct crash_case tiny512 = {"tiny512", "cluster_size=512", false, false};
static const struct crash_case v2_4k = {"v2_4k", "cluster_size=4096,compat=0.10", true, false};
static const struct crash_case async64k = {"async64k", "cluster_size=65536", true, true};

int main(void)
{
    int skip = bt_qemu_or_skip("test_qcow2_crash");
    if (skip >= 0)
        return skip;
    const struct CMUnitTest tests[] = {
        {"crash_cow64k", killed_writer_loses_nothing_acknowledged, NULL, NULL, (void *)&cow64k},
        {"crash_tiny512", killed_writer_loses_nothing_acknowledged, NULL, NULL, (void *)&tiny512},
        {"crash_v2_4k", killed_writer_loses_nothing_acknowledged, NULL, NULL, (void *)&v2_4k},
        {"crash_async64k", killed_writer_loses_nothing_acknowledged, NULL, NULL, (void *)&async64k},
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
