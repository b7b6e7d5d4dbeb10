/*
 * The process-wide descriptor budget (see fd_budget.h). The pool is a
 * size and a count of what is taken, both atomic: shares run on their own
 * I/O threads and take and give back fds without a lock. A take is a
 * compare-and-swap that never lets the count pass the pool, so the
 * reserve beyond it is never handed out, however many shares ask at once.
 */
#include "vmm/fd_budget.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include "core/log.h"

/* Far above any real fd limit; keeps the arithmetic clear of RLIM_INFINITY. */
#define POOL_MAX (1ull << 30)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t pool;
static _Atomic uint64_t taken;
static unsigned reserve = FD_BUDGET_RESERVE;

static uint64_t pool_for(uint64_t nofile)
{
    if (nofile > POOL_MAX)
        nofile = POOL_MAX;
    return nofile > reserve ? nofile - reserve : 0;
}

void fd_budget_init_reserve(unsigned r)
{
    if (r < FD_BUDGET_RESERVE)
        reserve = r;
    fd_budget_init();
}

static void init_once(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        log_warn("fd budget: getrlimit(RLIMIT_NOFILE): %m; virtio-fs gets no descriptors");
        return;
    }
    /* The default soft limit (often 1024) is far too few for a guest walking a tree. */
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit raised = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl = raised;
    }
    uint64_t p = pool_for(rl.rlim_cur);
    atomic_store(&pool, p);
    if (p == 0)
        log_warn("fd budget: RLIMIT_NOFILE %llu leaves nothing beyond the %u descriptors kept "
                 "for the VMM; virtio-fs requests will fail with EMFILE (raise ulimit -Hn)",
                 (unsigned long long)rl.rlim_cur, reserve);
    else
        log_debug("fd budget: RLIMIT_NOFILE %llu, %u kept for the VMM, %llu for virtio-fs",
                  (unsigned long long)rl.rlim_cur, reserve, (unsigned long long)p);
}

void fd_budget_init(void)
{
    pthread_once(&once, init_once);
}

bool fd_budget_acquire(unsigned n)
{
    fd_budget_init();
    uint64_t p = atomic_load(&pool);
    uint64_t cur = atomic_load(&taken);
    do {
        if (cur + n > p)
            return false;
    } while (!atomic_compare_exchange_weak(&taken, &cur, cur + n));
    return true;
}

void fd_budget_release(unsigned n)
{
    uint64_t before = atomic_fetch_sub(&taken, n);
    if (before < n) {
        /* A release without its acquire: a bug; do not let the pool grow past its size. */
        atomic_fetch_add(&taken, n);
        log_error("fd budget: %u descriptors given back, only %llu were taken", n,
                  (unsigned long long)before);
    }
}

uint64_t fd_budget_pool(void)
{
    fd_budget_init();
    return atomic_load(&pool);
}

uint64_t fd_budget_available(void)
{
    fd_budget_init();
    uint64_t p = atomic_load(&pool), t = atomic_load(&taken);
    return t < p ? p - t : 0;
}

void fd_budget_init_for_test(uint64_t nofile)
{
    fd_budget_init();
    atomic_store(&pool, pool_for(nofile));
}
