/*
 * The process-wide descriptor budget (src/vmm/fd_budget.c) alone and as
 * virtio-fs shares use it: the pool is the limit less the fixed reserve;
 * takes never pass it, also from many threads at once; what is given back
 * can be taken again; two shares whose guests look up everything they can
 * get EMFILE once the pool is spent, and the process then holds no more
 * fds than the pool allows, so the reserve is intact for REST, vsock and
 * a reboot's rebuild.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "fs/fs_share.h"
#include "fs/fuse_server.h"
#include "vmm/fd_budget.h"

#define N_FILES 100
#define SHARED_FDS 40 /* the pool beyond the two shares' fixed parts */

static unsigned count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    unsigned n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void test_pool_is_the_limit_less_the_reserve(void **state)
{
    (void)state;
    fd_budget_init();
    /* At start the soft limit was raised to the hard one. */
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_true(rl.rlim_cur == rl.rlim_max);
    assert_int_equal(fd_budget_pool(),
                     rl.rlim_cur > FD_BUDGET_RESERVE ? rl.rlim_cur - FD_BUDGET_RESERVE : 0);

    fd_budget_init_for_test(FD_BUDGET_RESERVE + 100);
    assert_int_equal(fd_budget_pool(), 100);
    assert_int_equal(fd_budget_available(), 100);
    assert_true(fd_budget_acquire(60));
    assert_false(fd_budget_acquire(41)); /* all or nothing */
    assert_int_equal(fd_budget_available(), 40);
    assert_true(fd_budget_acquire(40));
    assert_false(fd_budget_acquire(1));
    /* What is given back can be taken again. */
    fd_budget_release(60);
    assert_int_equal(fd_budget_available(), 60);
    assert_true(fd_budget_acquire(60));
    fd_budget_release(100);
    assert_int_equal(fd_budget_available(), 100);

    /* A limit below the reserve leaves nothing: the reserve is never handed out. */
    fd_budget_init_for_test(FD_BUDGET_RESERVE - 1);
    assert_int_equal(fd_budget_pool(), 0);
    assert_false(fd_budget_acquire(1));
    fd_budget_init_for_test(FD_BUDGET_RESERVE);
    assert_false(fd_budget_acquire(1));
}

/* ---- concurrency ---- */

#define THREADS 8
#define ROUNDS 20000
#define CONC_POOL 1000

static _Atomic int64_t in_use, max_in_use;
static _Atomic unsigned refused;

static void *churn(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    unsigned held[64];
    unsigned n_held = 0;
    for (unsigned i = 0; i < ROUNDS; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned n = 1 + (seed >> 16) % 40;
        if (n_held < 64 && (seed & 0x100) && fd_budget_acquire(n)) {
            int64_t now = atomic_fetch_add(&in_use, n) + n;
            int64_t m = atomic_load(&max_in_use);
            while (now > m && !atomic_compare_exchange_weak(&max_in_use, &m, now))
                ;
            held[n_held++] = n;
        } else if (n_held) {
            n = held[--n_held];
            atomic_fetch_sub(&in_use, n);
            fd_budget_release(n);
        } else {
            atomic_fetch_add(&refused, 1);
        }
    }
    while (n_held) {
        unsigned n = held[--n_held];
        atomic_fetch_sub(&in_use, n);
        fd_budget_release(n);
    }
    return NULL;
}

static void test_concurrent_takes_never_pass_the_pool(void **state)
{
    (void)state;
    fd_budget_init_for_test(FD_BUDGET_RESERVE + CONC_POOL);
    assert_int_equal(fd_budget_available(), CONC_POOL);
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn, (void *)(i + 1)), 0);
    for (unsigned i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    /* 8 threads holding up to 64 x 40 each ask for far more than the pool. */
    assert_true(atomic_load(&max_in_use) <= CONC_POOL);
    assert_true(atomic_load(&max_in_use) > CONC_POOL / 2);
    assert_int_equal(atomic_load(&in_use), 0);
    assert_int_equal(fd_budget_available(), CONC_POOL);
}

/* ---- two shares ---- */

struct share_fx {
    char dir[64];
};

static int share_setup(void **state)
{
    struct share_fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test-fd-budget.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    for (unsigned i = 0; i < N_FILES; i++) {
        char p[128];
        snprintf(p, sizeof(p), "%s/f%03u", f->dir, i);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);
    }
    *state = f;
    return 0;
}

static int share_teardown(void **state)
{
    struct share_fx *f = *state;
    char cmd[100];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* One request: the reply's error, or its payload length; the payload lands in out + 16. */
static int fuse_req(struct fuse_server *s, uint32_t op, uint64_t nodeid, const void *args,
                    size_t alen, uint8_t out[4096])
{
    uint8_t in[512];
    struct fuse_in_header h = {
        .len = (uint32_t)(sizeof(h) + alen), .opcode = op, .unique = 1, .nodeid = nodeid};
    assert_true(sizeof(h) + alen <= sizeof(in));
    memcpy(in, &h, sizeof(h));
    memcpy(in + sizeof(h), args, alen);
    struct iovec iv = {in, sizeof(h) + alen}, ov = {out, 4096};
    uint32_t n = fuse_server_handle(s, &iv, 1, iv.iov_len, &ov, 1, 4096);
    struct fuse_out_header oh;
    assert_true(n >= sizeof(oh));
    memcpy(&oh, out, sizeof(oh));
    return oh.error ? oh.error : (int)(n - sizeof(oh));
}

static struct fuse_server *server_on(const char *dir)
{
    struct dev_fs cfg = {.shared_dir = (char *)dir, .mount_tag = "t"};
    struct fs_share *share;
    assert_int_equal(fs_share_open(&cfg, &share), 0);
    struct fuse_server *s;
    assert_int_equal(fuse_server_create(share, &s), 0);
    fs_share_close(share);
    uint8_t out[4096];
    struct fuse_init_in init = {.major = 7, .minor = 31};
    assert_int_equal(fuse_req(s, FUSE_INIT, 0, &init, sizeof(init), out),
                     sizeof(struct fuse_init_out));
    return s;
}

static int lookup(struct fuse_server *s, unsigned i)
{
    char name[16];
    uint8_t out[4096];
    int len = snprintf(name, sizeof(name), "f%03u", i) + 1;
    int rc = fuse_req(s, FUSE_LOOKUP, FUSE_ROOT_ID, name, (size_t)len, out);
    return rc < 0 ? rc : 0;
}

static void test_two_shares_cannot_starve_the_reserve(void **state)
{
    struct share_fx *f = *state;
    const uint64_t pool = 2 * FS_SHARE_FIXED_FDS + SHARED_FDS;
    fd_budget_init_for_test(FD_BUDGET_RESERVE + pool);
    unsigned fds_before = count_fds();
    struct fuse_server *a = server_on(f->dir), *b = server_on(f->dir);
    assert_int_equal(fd_budget_available(), SHARED_FDS);

    /* Both guests look up every file they can, in turns. */
    unsigned got_a = 0, got_b = 0;
    int last_a = 0, last_b = 0;
    for (unsigned i = 0; i < N_FILES; i++) {
        struct fuse_server *s = i % 2 ? b : a;
        int rc = lookup(s, i);
        if (rc == 0)
            *(i % 2 ? &got_b : &got_a) += 1;
        else
            *(i % 2 ? &last_b : &last_a) = rc;
    }
    assert_int_equal(got_a + got_b, SHARED_FDS);
    assert_int_equal(last_a, -EMFILE);
    assert_int_equal(last_b, -EMFILE);
    assert_int_equal(fd_budget_available(), 0);
    uint8_t out[4096];
    struct fuse_open_in op = {0};
    assert_int_equal(fuse_req(a, FUSE_OPENDIR, FUSE_ROOT_ID, &op, sizeof(op), out), -EMFILE);
    /* A third share finds nothing left for its own fds. */
    struct dev_fs cfg = {.shared_dir = f->dir, .mount_tag = "t3"};
    struct fs_share *third = NULL;
    assert_int_equal(fs_share_open(&cfg, &third), -EMFILE);
    assert_null(third);
    /* What the shares hold is within the pool: the reserve's fds are all still there. */
    assert_true(count_fds() <= fds_before + pool);

    /* Closing a share's session gives its fds back; the other share can use them. */
    fuse_server_destroy(a);
    assert_int_equal(fd_budget_available(), got_a + FS_SHARE_FIXED_FDS);
    assert_int_equal(lookup(b, 0), 0);
    fuse_server_destroy(b);
    assert_int_equal(fd_budget_available(), pool);
    assert_true(count_fds() <= fds_before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_is_the_limit_less_the_reserve),
        cmocka_unit_test(test_concurrent_takes_never_pass_the_pool),
        cmocka_unit_test_setup_teardown(test_two_shares_cannot_starve_the_reserve, share_setup,
                                        share_teardown),
    };
    return cmocka_run_group_tests_name("fd-budget", tests, NULL, NULL);
}
