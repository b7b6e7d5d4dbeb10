/*
 * The process-wide descriptor budget. RLIMIT_NOFILE is one limit for the
 * whole process, but virtio-fs shares turn guest requests into host fds
 * (every nodeid and open handle is one): sized each on its own, two shares
 * could take every fd and leave REST, vsock, the log and a guest reboot's
 * rebuild (VM fd, vCPU fds, eventfds) failing with EMFILE. So the limit is
 * read once, a fixed reserve is kept for everything that is not a share,
 * and shares draw what is left on demand; when it is gone a share answers
 * its guest with EMFILE and the reserve stays untouched.
 */
#ifndef KRUNKIT_VMM_FD_BUDGET_H
#define KRUNKIT_VMM_FD_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Descriptors kept for the rest of the VMM, sized for the largest
 * configuration the option parser accepts, counted twice where a guest
 * reboot may hold the old and the new set at once:
 *   - vCPUs: VM_MAX_CPUS (255) vCPU fds + /dev/kvm + the VM fd = 257, x2   =  514
 *   - virtio devices: CLI_MAX_DEVICES (128) x 13 (3 ioeventfds, 4 irqfds,
 *     3 for the device's event loop: epoll, wake eventfd, timerfd; 3 for a
 *     backend: an image or socket, an io_uring and its eventfd), x2        = 3328
 *   - REST: listener + REST_DEFAULT_MAX_CONNECTIONS (32)                   =   33
 *   - vsock: VSOCK_MAX_CONNS (64) + 16 listeners                           =   80
 *   - stdio, log, pidfile, firmware, variable store, signals, timesync     =   64
 * 4019 in all, rounded up.
 */
#define FD_BUDGET_RESERVE 4096u

/*
 * Read RLIMIT_NOFILE (raising the soft limit to the hard one first) and
 * size the shares' pool: the limit less FD_BUDGET_RESERVE. Runs once;
 * later calls, and the first acquire, do nothing more. Call it at start,
 * before the process opens many fds, so that the raised limit is in force.
 */
void fd_budget_init(void);
/*
 * The same, keeping back r descriptors instead of FD_BUDGET_RESERVE (only
 * a smaller reserve is taken): the VM sizes it for its own configuration
 * (vmm/backends.c), so that a host whose hard limit is 4096, common
 * enough, still gives its shares descriptors.
 */
void fd_budget_init_reserve(unsigned r);

/* Take n descriptors from the pool: false (nothing taken) when fewer are left. */
bool fd_budget_acquire(unsigned n);
/* Give back n descriptors taken with fd_budget_acquire. */
void fd_budget_release(unsigned n);

/* The pool's size and what is not taken now (for logs and tests). */
uint64_t fd_budget_pool(void);
uint64_t fd_budget_available(void);

/*
 * Tests: size the pool as if RLIMIT_NOFILE were nofile, without touching
 * the real limit. What is taken stays taken.
 */
void fd_budget_init_for_test(uint64_t nofile);

#endif
