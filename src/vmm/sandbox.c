/*
 * Per-thread seccomp allow lists (see sandbox.h; docs/security.md "seccomp"
 * says why each call is there).
 *
 * All filters are compiled by libseccomp in sandbox_init, while the process
 * is still unconfined, and kept as BPF programs; a thread then installs its
 * program with one seccomp(2) call. That keeps libseccomp (its allocations,
 * its probes of the kernel) out of the confined threads, so the lists name
 * only what the VMM itself does.
 *
 * Argument checks: mmap/mprotect never with PROT_EXEC (no new code after
 * set-up); clone only with CLONE_THREAD (threads, never processes); clone3
 * answers ENOSYS because its flags are in memory a filter cannot read, and
 * glibc then falls back to clone; tgkill only to this process; ioctl only
 * with the request numbers of the class; socket only AF_UNIX stream.
 */
#include "vmm/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/ioctl.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/arch.h"

/* How a call's arguments are checked. */
enum arg_check {
    ARG_ANY,
    ARG_NO_EXEC,      /* mmap, mprotect: argument 2 without PROT_EXEC */
    ARG_CLONE_THREAD, /* clone: argument 0 with CLONE_THREAD */
    ARG_SELF,         /* tgkill: argument 0 is this process */
    ARG_UNIX_STREAM,  /* socket: AF_UNIX, SOCK_STREAM (flags aside) */
    ARG_IOCTL,        /* ioctl: argument 1 in the class's request list */
    ARG_PRCTL_NAME,   /* prctl: PR_SET_NAME / PR_GET_NAME only */
    ARG_SECCOMP_ADD,  /* seccomp: SECCOMP_SET_MODE_FILTER without flags (a new thread's filter) */
};

struct call {
    const char *name;
    enum arg_check check;
};

/* Every class: thread life, memory, time, locks, the log line. */
static const struct call base_calls[] = {
    {"futex", ARG_ANY},           /* mutexes, condition variables, pthread_join */
    {"set_robust_list", ARG_ANY}, /* glibc's start of a new thread */
    {"rseq", ARG_ANY},            /* glibc's start of a new thread */
    {"restart_syscall", ARG_ANY}, /* the kernel restarts a sleep cut by a signal */
    {"rt_sigreturn", ARG_ANY},    /* return from the vCPU kick handler */
    {"rt_sigprocmask", ARG_ANY},  /* pthread_create, vCPU signal mask */
    {"exit", ARG_ANY},            /* a thread ends */
    {"exit_group", ARG_ANY},      /* the process ends */
    {"gettid", ARG_ANY},
    {"getpid", ARG_ANY},  /* every log line */
    {"tgkill", ARG_SELF}, /* pthread_kill: kick a vCPU; raise() */
    {"sched_yield", ARG_ANY},
    {"nanosleep", ARG_ANY},
    {"clock_nanosleep", ARG_ANY}, /* usleep: io_uring retry, REST back-off */
    {"clock_gettime", ARG_ANY},   /* the vDSO falls back to it on some clock sources */
    {"gettimeofday", ARG_ANY},
    {"brk", ARG_ANY},      /* malloc */
    {"mmap", ARG_NO_EXEC}, /* malloc, thread stacks */
    {"munmap", ARG_ANY},
    {"mprotect", ARG_NO_EXEC}, /* malloc arenas, stack guard pages */
    {"mremap", ARG_ANY},       /* realloc of large blocks (keeps protections) */
    {"madvise", ARG_ANY},      /* malloc trim, thread stack release, balloon */
    {"write", ARG_ANY},        /* log lines, eventfds */
    {"close", ARG_ANY},        /* closing only takes access away */
    {NULL, ARG_ANY},
};

/* An event loop (src/vmm/evloop.c) and its eventfds. */
static const struct call loop_calls[] = {
    {"read", ARG_ANY},        {"epoll_wait", ARG_ANY},
    {"epoll_pwait", ARG_ANY}, {"epoll_ctl", ARG_ANY}, /* devices watch backend fds while they run */
    {NULL, ARG_ANY},
};

/* A loop whose fds are all added before its thread runs: waiting only. */
static const struct call loop_wait_calls[] = {
    {"read", ARG_ANY},
    {"epoll_wait", ARG_ANY},
    {"epoll_pwait", ARG_ANY},
    {NULL, ARG_ANY},
};

/* Data on sockets and files already open. */
static const struct call stream_calls[] = {
    {"readv", ARG_ANY},   {"writev", ARG_ANY},   {"recvmsg", ARG_ANY},
    {"sendmsg", ARG_ANY}, {"recvfrom", ARG_ANY}, /* recv() */
    {"sendto", ARG_ANY},                         /* send() */
    {NULL, ARG_ANY},
};

static const struct call poll_calls[] = {
    {"poll", ARG_ANY},
    {"ppoll", ARG_ANY},
    {NULL, ARG_ANY},
};

/* Synchronous I/O on open image and flash files. */
static const struct call file_io_calls[] = {
    {"pread64", ARG_ANY},   {"pwrite64", ARG_ANY}, {"preadv", ARG_ANY}, {"pwritev", ARG_ANY},
    {"fdatasync", ARG_ANY}, {"fsync", ARG_ANY},    {NULL, ARG_ANY},
};

/* Only the main thread creates threads after set-up (vCPUs on a reboot). */
static const struct call control_calls[] = {
    {"ioctl", ARG_IOCTL},
    {"clone", ARG_CLONE_THREAD},
    {"seccomp", ARG_SECCOMP_ADD}, /* a new vCPU thread installs its own filter */
    {"prctl", ARG_PRCTL_NAME},    /* a new vCPU thread names itself */
    {"eventfd2", ARG_ANY},        /* rebuilding: ioeventfds, irqfds, loop wake-ups */
    {"epoll_create1", ARG_ANY},
    {"unlink", ARG_ANY}, /* teardown removes what start made: pidfile, sockets */
    {"unlinkat", ARG_ANY},
    {"fcntl", ARG_ANY},      /* teardown releases image locks */
    {"shutdown", ARG_ANY},   /* teardown closes REST and vsock connections */
    {"getrandom", ARG_ANY},  /* a rebuilt machine's identifiers */
    {"newfstatat", ARG_ANY}, /* teardown: a socket is removed only while it is still ours */
    {"lseek", ARG_ANY},      /* a reboot rewinds the files kept from start (host_files.c) */
    {"flock", ARG_ANY},      /* ...and locks the kept variable store again (one OFD: no wait) */
    {NULL, ARG_ANY},
};

static const struct call vcpu_calls[] = {
    {"ioctl", ARG_IOCTL},   {"read", ARG_ANY}, /* eventfds while a device resets */
    {"epoll_ctl", ARG_ANY}, /* a device activated or reset stops or starts watching fds */
    {"shutdown", ARG_ANY},  /* a vsock reset ends its connections */
    {NULL, ARG_ANY},
};

static const struct call blk_calls[] = {
    {"io_uring_enter", ARG_ANY}, /* submit to the image's ring */
    {NULL, ARG_ANY},
};

static const struct call worker_calls[] = {
    {"fallocate", ARG_ANY}, /* discard, write zeroes */
    {"ftruncate", ARG_ANY}, /* qcow2 growth */
    {"fstat", ARG_ANY},     /* image size */
    {"newfstatat", ARG_ANY}, {"lseek", ARG_ANY}, {NULL, ARG_ANY},
};

static const struct call rng_calls[] = {
    {"getrandom", ARG_ANY},
    {NULL, ARG_ANY},
};

static const struct call vsock_calls[] = {
    {"accept4", ARG_ANY},        /* host programs connect to listening ports */
    {"socket", ARG_UNIX_STREAM}, /* a guest connects to a connect-mode port */
    {"connect", ARG_ANY},
    {"shutdown", ARG_ANY},        /* half-close from either side */
    {"getsockopt", ARG_ANY},      /* SO_ERROR of a non-blocking connect */
    {"timerfd_settime", ARG_ANY}, /* connection timeouts: the muxer's loop timer */
    {NULL, ARG_ANY},
};

/* The FUSE server: everything relative to fds under the shared directory. */
static const struct call fs_calls[] = {
    {"openat", ARG_ANY},     {"openat2", ARG_ANY},    {"newfstatat", ARG_ANY},
    {"fstat", ARG_ANY},      {"fstatfs", ARG_ANY},    {"faccessat", ARG_ANY},
    {"faccessat2", ARG_ANY}, {"fchmodat", ARG_ANY},   {"fchownat", ARG_ANY},
    {"ftruncate", ARG_ANY},  {"utimensat", ARG_ANY},  {"linkat", ARG_ANY},
    {"lseek", ARG_ANY},      {"mkdirat", ARG_ANY},    {"mknodat", ARG_ANY},
    {"readlinkat", ARG_ANY}, {"renameat2", ARG_ANY},  {"symlinkat", ARG_ANY},
    {"renameat", ARG_ANY}, /* glibc turns renameat2 without flags into renameat */
    {"unlinkat", ARG_ANY},   {"getdents64", ARG_ANY}, {"fcntl", ARG_ANY},
    {NULL, ARG_ANY},
};

static const struct call rest_calls[] = {
    {"accept4", ARG_ANY},  /* new clients on the listening socket */
    {"shutdown", ARG_ANY}, /* end a response */
    {"ioctl", ARG_IOCTL},  /* pause/resume keep the guest clock; stop presses the power button */
    {"timerfd_settime", ARG_ANY}, /* idle timeouts: the loop's timer */
    {NULL, ARG_ANY},
};

static const struct call timesync_calls[] = {
    {"socket", ARG_UNIX_STREAM}, /* one connection to the guest agent per sync */
    {"connect", ARG_ANY},
    {"getsockopt", ARG_ANY},      /* SO_ERROR of the non-blocking connect */
    {"timerfd_settime", ARG_ANY}, /* re-arm the clock-was-set watch; the sync's deadline */
    {NULL, ARG_ANY},
};

static const struct call signal_calls[] = {
    {"ioctl", ARG_IOCTL}, /* a stop presses the power button (an IRQ line) */
    {NULL, ARG_ANY},
};

/*
 * ioctl requests per class (KVM ioctls go to already-open KVM, VM and vCPU
 * fds): those every arch makes here, the arch's own from
 * arch_sandbox_ioctls (src/arch/<arch>/seccomp.c).
 */
static const unsigned long vcpu_ioctls[] = {
    KVM_RUN,
    KVM_SET_GSI_ROUTING, /* the guest programs MSI-X vectors */
    KVM_IRQFD,
    KVM_IOEVENTFD,              /* BARs move; devices reset */
    KVM_SET_USER_MEMORY_REGION, /* flash switches between ROM and command mode */
    0,
};

/* What vCPUs need, plus building a machine again on already-open fds. */
static const unsigned long control_ioctls[] = {
    KVM_RUN,
    KVM_SET_GSI_ROUTING,
    KVM_IRQFD,
    KVM_IOEVENTFD,
    KVM_SET_USER_MEMORY_REGION,
    KVM_GET_API_VERSION,
    KVM_CHECK_EXTENSION,
    KVM_GET_VCPU_MMAP_SIZE,
    KVM_CREATE_VM,
    KVM_CREATE_VCPU,
    TCSETS, /* the console puts the terminal back at exit (tcsetattr TCSANOW) */
    0,
};

struct class_def {
    const char *name;
    const struct call *lists[6];
    const unsigned long *ioctls;
};

static const struct class_def classes[SANDBOX_CLASS_COUNT] = {
    [SANDBOX_CONTROL] = {"control",
                         {base_calls, loop_calls, poll_calls, stream_calls, file_io_calls,
                          control_calls},
                         control_ioctls},
    [SANDBOX_VCPU] = {"vcpu", {base_calls, vcpu_calls, poll_calls, file_io_calls}, vcpu_ioctls},
    [SANDBOX_IO_BLK] = {"io-blk", {base_calls, loop_calls, poll_calls, file_io_calls, blk_calls}},
    [SANDBOX_IO_NET] = {"io-net", {base_calls, loop_calls, stream_calls}},
    [SANDBOX_IO_CONSOLE] = {"io-console", {base_calls, loop_calls, stream_calls}},
    [SANDBOX_IO_RNG] = {"io-rng", {base_calls, loop_calls, rng_calls}},
    [SANDBOX_IO_BALLOON] = {"io-balloon", {base_calls, loop_calls}},
    [SANDBOX_IO_VSOCK] = {"io-vsock", {base_calls, loop_calls, stream_calls, vsock_calls}},
    [SANDBOX_IO_FS] = {"io-fs", {base_calls, loop_calls, stream_calls, file_io_calls, fs_calls}},
    [SANDBOX_IO_OTHER] = {"io", {base_calls, loop_calls}},
    [SANDBOX_BLK_WORKER] = {"blk-worker", {base_calls, file_io_calls, worker_calls}},
    [SANDBOX_REST] = {"rest", {base_calls, loop_calls, stream_calls, rest_calls}},
    [SANDBOX_TIMESYNC] = {"timesync", {base_calls, loop_calls, stream_calls, timesync_calls}},
    [SANDBOX_SIGNAL] = {"signal", {base_calls, loop_wait_calls, signal_calls}},
};

/* Compiled filters, kept from sandbox_init on. */
static struct sock_fprog programs[SANDBOX_CLASS_COUNT];
static bool initialized;
static int trap_fd = STDERR_FILENO;

/* Names for the SIGSYS line, looked up before any filter (the handler may not allocate). */
#define NAMED_SYSCALLS 512
static char syscall_names[NAMED_SYSCALLS][24];

/* Who this thread is, for the SIGSYS line. */
static __thread int thread_class = -1;
static __thread char thread_name[16];

const char *sandbox_class_name(enum sandbox_class c)
{
    return (unsigned)c < SANDBOX_CLASS_COUNT ? classes[c].name : "?";
}

/* Each system call once, in list order; returns how many. */
static size_t class_calls(enum sandbox_class c, const struct call **out, size_t max)
{
    size_t n = 0;
    for (size_t l = 0; l < 6 && classes[c].lists[l]; l++) {
        for (const struct call *k = classes[c].lists[l]; k->name; k++) {
            bool seen = false;
            for (size_t i = 0; i < n && i < max; i++)
                seen = seen || strcmp(out[i]->name, k->name) == 0;
            if (seen)
                continue;
            if (n < max)
                out[n] = k;
            n++;
        }
    }
    return n;
}

size_t sandbox_class_calls(enum sandbox_class c, const char **out, size_t max)
{
    if ((unsigned)c >= SANDBOX_CLASS_COUNT)
        return 0;
    const struct call *all[128];
    size_t n = class_calls(c, all, 128);
    for (size_t i = 0; i < n && i < max && i < 128; i++)
        out[i] = all[i]->name;
    return n;
}

static int add_rule(scmp_filter_ctx ctx, enum sandbox_class c, const struct call *k)
{
    int nr = seccomp_syscall_resolve_name(k->name);
    if (nr == __NR_SCMP_ERROR)
        return 0; /* not a system call on this architecture (poll, open on arm64) */
    switch (k->check) {
    case ARG_ANY:
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    case ARG_NO_EXEC:
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                                SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    case ARG_CLONE_THREAD:
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                                SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
    case ARG_SELF:
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                                SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
    case ARG_UNIX_STREAM:
        /* The type argument carries SOCK_NONBLOCK/SOCK_CLOEXEC besides the type. */
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 2, SCMP_A0(SCMP_CMP_EQ, AF_UNIX),
                                SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM));
    case ARG_PRCTL_NAME: {
        int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
        return r ? r
                 : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME));
    }
    case ARG_SECCOMP_ADD:
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 2,
                                SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER),
                                SCMP_A1(SCMP_CMP_EQ, 0));
    case ARG_IOCTL: {
        const unsigned long *lists[2] = {classes[c].ioctls, arch_sandbox_ioctls[c]};
        for (unsigned l = 0; l < 2; l++) {
            for (const unsigned long *req = lists[l]; req && *req; req++) {
                /* The kernel takes the request as 32 bits: compare those only. */
                int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                                         SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, *req));
                if (r)
                    return r;
            }
        }
        return 0;
    }
    }
    return -EINVAL;
}

/* libseccomp 2.5 exports BPF only to an fd: a memfd, read back. */
static int compile(enum sandbox_class c, struct sock_fprog *prog)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!ctx)
        return -ENOMEM;
    int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    const struct call *all[128];
    size_t n = class_calls(c, all, 128);
    if (n > 128)
        r = -E2BIG;
    for (size_t i = 0; r == 0 && i < n; i++)
        r = add_rule(ctx, c, all[i]);
    /* Every class: glibc falls back from clone3 to clone on ENOSYS only. */
    if (r == 0)
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    int fd = -1;
    if (r == 0 && (fd = memfd_create("seccomp-bpf", MFD_CLOEXEC)) < 0)
        r = -errno;
    if (r == 0)
        r = seccomp_export_bpf(ctx, fd);
    seccomp_release(ctx);
    off_t size = r == 0 ? lseek(fd, 0, SEEK_END) : 0;
    if (r == 0 && (size <= 0 || size % sizeof(struct sock_filter) != 0 ||
                   size / sizeof(struct sock_filter) > BPF_MAXINSNS))
        r = -EINVAL;
    struct sock_filter *insns = r == 0 ? malloc((size_t)size) : NULL;
    if (r == 0 && !insns)
        r = -ENOMEM;
    if (r == 0 && pread(fd, insns, (size_t)size, 0) != size)
        r = -EIO;
    if (fd >= 0)
        close(fd);
    if (r) {
        free(insns);
        return r;
    }
    prog->len = (unsigned short)(size / sizeof(struct sock_filter));
    prog->filter = insns;
    return 0;
}

/* ---- the SIGSYS handler: async-signal-safe from here to its end ---- */

static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at < cap)
        buf[at++] = *s++;
    return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, unsigned long v, unsigned base)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v && n < sizeof(tmp));
    if (base == 16)
        at = put_str(buf, at, cap, "0x");
    while (n && at < cap)
        buf[at++] = tmp[--n];
    return at;
}

static void sigsys_handler(int sig, siginfo_t *si, void *uctx)
{
    (void)sig;
    int nr = si->si_syscall;
    unsigned long a[6] = {0};
    ucontext_t *uc = uctx;
#if defined(__x86_64__)
    a[0] = (unsigned long)uc->uc_mcontext.gregs[REG_RDI];
    a[1] = (unsigned long)uc->uc_mcontext.gregs[REG_RSI];
    a[2] = (unsigned long)uc->uc_mcontext.gregs[REG_RDX];
    a[3] = (unsigned long)uc->uc_mcontext.gregs[REG_R10];
    a[4] = (unsigned long)uc->uc_mcontext.gregs[REG_R8];
    a[5] = (unsigned long)uc->uc_mcontext.gregs[REG_R9];
#elif defined(__aarch64__)
    for (int i = 0; i < 6; i++)
        a[i] = (unsigned long)uc->uc_mcontext.regs[i];
#else
    (void)uc;
#endif
    char line[256];
    size_t cap = sizeof(line) - 1, n = 0;
    n = put_str(line, n, cap, "sandbox: ");
    n = put_str(line, n, cap, thread_name[0] ? thread_name : "?");
    n = put_str(line, n, cap, " (");
    n = put_str(line, n, cap, sandbox_class_name((enum sandbox_class)thread_class));
    n = put_str(line, n, cap, ") made system call ");
    n = put_num(line, n, cap, (unsigned long)nr, 10);
    n = put_str(line, n, cap, " (");
    n = put_str(line, n, cap,
                nr >= 0 && nr < NAMED_SYSCALLS && syscall_names[nr][0] ? syscall_names[nr] : "?");
    n = put_str(line, n, cap, ") outside its allow list; arguments ");
    for (int i = 0; i < 3; i++) {
        n = put_num(line, n, cap, a[i], 16);
        n = put_str(line, n, cap, i < 2 ? ", " : "");
    }
    line[n++] = '\n';
    (void)!write(trap_fd, line, n);
    if (trap_fd != STDERR_FILENO)
        (void)!write(STDERR_FILENO, line, n);
    /*
     * Die by SIGSYS: the same call with the same arguments traps again, and
     * with SIGSYS blocked (we are in its handler) the kernel resets it to
     * its default action, which ends the process. rt_sigaction is outside
     * every list, so it is the fallback should the first call not trap.
     */
    syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    syscall(SYS_rt_sigaction, SIGSYS, NULL, NULL, sizeof(sigset_t));
    _exit(128 + SIGSYS);
}

/* ---- the public calls ---- */

int sandbox_init(int log_fd)
{
    if (initialized)
        return 0;
    trap_fd = log_fd >= 0 ? log_fd : STDERR_FILENO;
    for (int nr = 0; nr < NAMED_SYSCALLS; nr++) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        if (name) {
            snprintf(syscall_names[nr], sizeof(syscall_names[nr]), "%s", name);
            free(name);
        }
    }
    for (int c = 0; c < SANDBOX_CLASS_COUNT; c++) {
        int r = compile((enum sandbox_class)c, &programs[c]);
        if (r < 0) {
            log_error("sandbox: cannot build the %s filter: %s", classes[c].name, strerror(-r));
            return r;
        }
    }
    /*
     * glibc reads files behind the scenes on a first use; make those first
     * uses here, unconfined: the first gmtime_r (every log line) reads
     * /etc/localtime, and the first extra malloc arena reads the CPU count
     * unless the arena limit is already set (this is glibc's own default).
     */
    tzset();
    mallopt(M_ARENA_MAX, 8 * get_nprocs());
    /*
     * And one it makes only once, at a time of its choosing: the first
     * shrink of a thread arena's heap reads /proc/sys/vm/overcommit_memory,
     * so a device thread freeing a burst of buffers would trap and end the
     * VM. A heap shrinks only when its free top exceeds the trim threshold;
     * thread heaps are at most 64 MiB, so a 1 GiB threshold means never.
     * (Freed memory stays in the arena for reuse; whole free heaps are still
     * unmapped. Guest RAM is not malloc's.)
     */
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    struct sigaction sa = {.sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO};
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) < 0)
        return -errno;
    /* Filters without CAP_SYS_ADMIN need it; threads created from now on inherit it. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    initialized = true;
    return 0;
}

int sandbox_thread_enter(enum sandbox_class c)
{
    if ((unsigned)c >= SANDBOX_CLASS_COUNT)
        return -EINVAL;
    if (!__atomic_load_n(&initialized, __ATOMIC_ACQUIRE))
        return 0;
    /* Before the filter: the parent's lists allow PR_GET_NAME (control) or it is unfiltered. */
    if (prctl(PR_GET_NAME, thread_name, 0, 0, 0) < 0)
        thread_name[0] = '\0';
    thread_name[sizeof(thread_name) - 1] = '\0';
    thread_class = (int)c;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &programs[c]) < 0) {
        int err = -errno;
        log_error("sandbox: cannot install the %s filter: %s", classes[c].name, strerror(-err));
        return err;
    }
    log_debug("sandbox: %s runs under the %s allow list", thread_name, classes[c].name);
    return 0;
}

int sandbox_enter_control(void)
{
    return sandbox_thread_enter(SANDBOX_CONTROL);
}
