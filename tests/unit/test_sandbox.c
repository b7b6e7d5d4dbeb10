/*
 * The per-thread seccomp allow lists (src/vmm/sandbox.c). Every check runs
 * in a forked child, which enters a class and makes one call: a call
 * outside the class must kill the child by SIGSYS with a log line naming
 * it; an allowed call must come back (its result does not matter, only
 * that the filter let it through).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <seccomp.h>

#include "vmm/sandbox.h"

/* One call, made after entering a class; returns normally only if allowed. */
enum op {
    OP_OPEN_PASSWD,
    OP_SOCKET_INET,
    OP_SOCKET_UNIX_STREAM,
    OP_SOCKET_UNIX_DGRAM,
    OP_MMAP_EXEC,
    OP_MMAP_RW,
    OP_MPROTECT_EXEC,
    OP_TIOCSTI,
    OP_TCGETS,
    OP_KVM_RUN,
    OP_KVM_CREATE_VM,
    OP_SIGACTION,
    OP_FORK,
    OP_CLONE3,
    OP_THREAD,
    OP_CLONE_THREAD_RAW,
    OP_EVENTFD,
    OP_WRITE_READ,
    OP_GETRANDOM,
    OP_MADVISE,
    OP_IO_URING_SETUP,
    OP_IO_URING_ENTER,
    OP_PWRITE,
    OP_SENDMSG,
    OP_ACCEPT4,
    OP_OPENAT_IN_DIR,
    OP_POLL,
    OP_EPOLL_WAIT,
    OP_TIMERFD_SETTIME,
    OP_EXECVE,
};

static const char *op_syscall[] = {
    [OP_OPEN_PASSWD] = "openat",
    [OP_SOCKET_INET] = "socket",
    [OP_SOCKET_UNIX_STREAM] = "socket",
    [OP_SOCKET_UNIX_DGRAM] = "socket",
    [OP_MMAP_EXEC] = "mmap",
    [OP_MMAP_RW] = "mmap",
    [OP_MPROTECT_EXEC] = "mprotect",
    [OP_TIOCSTI] = "ioctl",
    [OP_TCGETS] = "ioctl",
    [OP_KVM_RUN] = "ioctl",
    [OP_KVM_CREATE_VM] = "ioctl",
    [OP_SIGACTION] = "rt_sigaction",
    [OP_FORK] = "clone",
    [OP_CLONE3] = "clone3",
    [OP_THREAD] = "clone",
    [OP_CLONE_THREAD_RAW] = "clone",
    [OP_EVENTFD] = "eventfd2",
    [OP_WRITE_READ] = "read",
    [OP_GETRANDOM] = "getrandom",
    [OP_MADVISE] = "madvise",
    [OP_IO_URING_SETUP] = "io_uring_setup",
    [OP_IO_URING_ENTER] = "io_uring_enter",
    [OP_PWRITE] = "pwrite64",
    [OP_SENDMSG] = "sendmsg",
    [OP_ACCEPT4] = "accept4",
    [OP_OPENAT_IN_DIR] = "openat",
    [OP_POLL] = "poll",
    [OP_EPOLL_WAIT] = "epoll_wait",
    [OP_TIMERFD_SETTIME] = "timerfd_settime",
    [OP_EXECVE] = "execve",
};

/* Set up before entering the class: what the op needs already open. */
struct fds {
    int pipe[2];
    int sock[2];
    int listener;
    int dir;
    int file;
    int epfd;
    int timerfd;
};

static void *thread_fn(void *arg)
{
    return arg;
}

static int do_op(enum op op, const struct fds *f)
{
    char buf[16] = "x";
    switch (op) {
    case OP_OPEN_PASSWD:
        return open("/etc/passwd", O_RDONLY);
    case OP_SOCKET_INET:
        return socket(AF_INET, SOCK_STREAM, 0);
    case OP_SOCKET_UNIX_STREAM:
        return socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    case OP_SOCKET_UNIX_DGRAM:
        return socket(AF_UNIX, SOCK_DGRAM, 0);
    case OP_MMAP_EXEC:
        return mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
                       MAP_FAILED
                   ? -1
                   : 0;
    case OP_MMAP_RW: {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? -1 : munmap(p, 4096);
    }
    case OP_MPROTECT_EXEC: {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return mprotect(p, 4096, PROT_READ | PROT_EXEC);
    }
    case OP_TIOCSTI:
        return ioctl(f->pipe[0], TIOCSTI, "x");
    case OP_TCGETS: {
        char t[64];
        return ioctl(f->pipe[0], TCGETS, t);
    }
    case OP_KVM_RUN:
        return ioctl(f->pipe[0], KVM_RUN, 0); /* ENOTTY: not a vCPU fd, but let through */
    case OP_KVM_CREATE_VM:
        return ioctl(f->pipe[0], KVM_CREATE_VM, 0);
    case OP_SIGACTION: {
        struct sigaction sa = {.sa_handler = SIG_DFL};
        return sigaction(SIGSYS, &sa, NULL);
    }
    case OP_FORK: {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        return pid < 0 ? -1 : 0;
    }
    case OP_CLONE3:
        /* Answered, not trapped: glibc must see ENOSYS to fall back to clone. */
        return syscall(SYS_clone3, NULL, 0) == -1 && errno == ENOSYS ? 0 : 99;
    case OP_THREAD: {
        pthread_t t;
        void *ret;
        if (pthread_create(&t, NULL, thread_fn, (void *)(intptr_t)7) != 0)
            return 98;
        return pthread_join(t, &ret) == 0 && ret == (void *)7 ? 0 : 97;
    }
    case OP_CLONE_THREAD_RAW:
        /*
         * pthread_create blocks every signal around clone, and a trap with
         * SIGSYS blocked kills without the handler's line; the bare call
         * keeps SIGSYS deliverable. Used only where it must be refused.
         */
        return (int)syscall(SYS_clone,
                            CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                                CLONE_SYSVSEM,
                            NULL, NULL, NULL, 0);
    case OP_EVENTFD:
        return eventfd(0, EFD_CLOEXEC);
    case OP_WRITE_READ:
        return write(f->pipe[1], "y", 1) == 1 && read(f->pipe[0], buf, 1) == 1 ? 0 : 96;
    case OP_GETRANDOM:
        return getrandom(buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) ? 0 : 95;
    case OP_MADVISE: {
        void *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return madvise(p, 8192, MADV_DONTNEED);
    }
    case OP_IO_URING_SETUP:
        return (int)syscall(SYS_io_uring_setup, 4, NULL);
    case OP_IO_URING_ENTER:
        return (int)syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0);
    case OP_PWRITE:
        return pwrite(f->file, "z", 1, 0) == 1 ? 0 : 94;
    case OP_SENDMSG: {
        struct iovec iov = {.iov_base = buf, .iov_len = 1};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        return sendmsg(f->sock[0], &m, 0) == 1 ? 0 : 93;
    }
    case OP_ACCEPT4:
        return accept4(f->listener, NULL, NULL, SOCK_NONBLOCK) < 0 && errno == EAGAIN ? 0 : 92;
    case OP_OPENAT_IN_DIR:
        return openat(f->dir, "new-file", O_CREAT | O_WRONLY | O_CLOEXEC, 0600) >= 0 ? 0 : 91;
    case OP_POLL: {
        struct pollfd p = {.fd = f->pipe[0], .events = POLLIN};
        return poll(&p, 1, 0);
    }
    case OP_EPOLL_WAIT: {
        struct epoll_event ev;
        return epoll_wait(f->epfd, &ev, 1, 0);
    }
    case OP_TIMERFD_SETTIME: {
        struct itimerspec it = {0};
        return timerfd_settime(f->timerfd, 0, &it, NULL);
    }
    case OP_EXECVE: {
        char *argv[] = {"/bin/true", NULL};
        return execve(argv[0], argv, argv + 1);
    }
    }
    return -1;
}

static char tmpdir[64];

static int seccomp_nr(const char *name)
{
    return seccomp_syscall_resolve_name(name);
}

static void make_fds(struct fds *f)
{
    assert_int_equal(pipe2(f->pipe, O_CLOEXEC), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, f->sock), 0);
    f->listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(f->listener >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/l.sock", tmpdir);
    unlink(sa.sun_path);
    assert_int_equal(bind(f->listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->listener, 1), 0);
    f->dir = open(tmpdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    assert_true(f->dir >= 0);
    char path[128];
    snprintf(path, sizeof(path), "%s/file", tmpdir);
    f->file = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    assert_true(f->file >= 0);
    f->epfd = epoll_create1(EPOLL_CLOEXEC);
    assert_true(f->epfd >= 0);
    f->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    assert_true(f->timerfd >= 0);
}

/* The child's whole life: enter, call, report. Its stderr is the log pipe. */
static void child(enum sandbox_class c, enum op op, bool via_control_thread, int log_w)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core); /* SIGSYS dumps core by default */
    struct fds f;
    make_fds(&f);
    dup2(log_w, STDERR_FILENO);
    /* As krunkit does: glibc installs its own signal handlers at the first pthread_create. */
    pthread_t t;
    if (pthread_create(&t, NULL, thread_fn, NULL) != 0 || pthread_join(t, NULL) != 0)
        _exit(79);
    if (sandbox_init(-1) != 0)
        _exit(80);
    if (via_control_thread && sandbox_enter_control() != 0)
        _exit(81);
    if (sandbox_thread_enter(c) != 0)
        _exit(82);
    do_op(op, &f);
    _exit(0);
}

struct outcome {
    int status;
    char log[1024];
};

static void run(enum sandbox_class c, enum op op, bool via_control, struct outcome *o)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        child(c, op, via_control, p[1]);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(o->log) - 1 && (r = read(p[0], o->log + n, sizeof(o->log) - 1 - n)) > 0)
        n += (size_t)r;
    o->log[n] = '\0';
    close(p[0]);
    assert_int_equal(waitpid(pid, &o->status, 0), pid);
}

static void expect_killed(enum sandbox_class c, enum op op)
{
    struct outcome o;
    run(c, op, false, &o);
    if (!WIFSIGNALED(o.status) || WTERMSIG(o.status) != SIGSYS)
        fail_msg("class %s, %s: not killed by SIGSYS (status 0x%x)", sandbox_class_name(c),
                 op_syscall[op], o.status);
    char want[96];
    snprintf(want, sizeof(want), "(%s) made system call %d (%s) outside its allow list",
             sandbox_class_name(c), seccomp_nr(op_syscall[op]), op_syscall[op]);
    if (!strstr(o.log, want))
        fail_msg("class %s: log \"%s\" lacks \"%s\"", sandbox_class_name(c), o.log, want);
}

static void expect_allowed(enum sandbox_class c, enum op op)
{
    struct outcome o;
    run(c, op, false, &o);
    if (!WIFEXITED(o.status) || WEXITSTATUS(o.status) != 0)
        fail_msg("class %s, %s: status 0x%x, log: %s", sandbox_class_name(c), op_syscall[op],
                 o.status, o.log);
}

/* Allowed (true) or killed (false) per class; each class's test runs its rows. */
struct row {
    enum sandbox_class c;
    enum op op;
    bool allowed;
};

#define ALL_CLASSES_KILL(c)                                                                        \
    {c, OP_SOCKET_INET, false}, {c, OP_MMAP_EXEC, false}, {c, OP_MPROTECT_EXEC, false},            \
        {c, OP_SIGACTION, false}, {c, OP_EXECVE, false}, {c, OP_IO_URING_SETUP, false},            \
        {c, OP_FORK, false}, {c, OP_TIOCSTI, false}, {c, OP_CLONE3, true},                         \
    {                                                                                              \
        c, OP_MMAP_RW, true                                                                        \
    }

static const struct row rows[] = {
    ALL_CLASSES_KILL(SANDBOX_CONTROL),
    {SANDBOX_CONTROL, OP_OPEN_PASSWD, false},
    {SANDBOX_CONTROL, OP_SOCKET_UNIX_STREAM, false},
    {SANDBOX_CONTROL, OP_KVM_CREATE_VM, true},
    {SANDBOX_CONTROL, OP_KVM_RUN, true},
    {SANDBOX_CONTROL, OP_THREAD, true},
    {SANDBOX_CONTROL, OP_EVENTFD, true},
    {SANDBOX_CONTROL, OP_POLL, true},

    ALL_CLASSES_KILL(SANDBOX_VCPU),
    {SANDBOX_VCPU, OP_OPEN_PASSWD, false},
    {SANDBOX_VCPU, OP_KVM_CREATE_VM, false},
    {SANDBOX_VCPU, OP_CLONE_THREAD_RAW, false},
    {SANDBOX_VCPU, OP_EVENTFD, false},
    {SANDBOX_VCPU, OP_IO_URING_ENTER, false},
    {SANDBOX_VCPU, OP_KVM_RUN, true},
    {SANDBOX_VCPU, OP_WRITE_READ, true},
    {SANDBOX_VCPU, OP_PWRITE, true},

    ALL_CLASSES_KILL(SANDBOX_IO_BLK),
    {SANDBOX_IO_BLK, OP_OPEN_PASSWD, false},
    {SANDBOX_IO_BLK, OP_KVM_RUN, false},
    {SANDBOX_IO_BLK, OP_IO_URING_ENTER, true},
    {SANDBOX_IO_BLK, OP_PWRITE, true},

    ALL_CLASSES_KILL(SANDBOX_IO_NET),
    {SANDBOX_IO_NET, OP_OPEN_PASSWD, false},
    {SANDBOX_IO_NET, OP_SOCKET_UNIX_STREAM, false},
    {SANDBOX_IO_NET, OP_ACCEPT4, false},
    {SANDBOX_IO_NET, OP_IO_URING_ENTER, false},
    {SANDBOX_IO_NET, OP_GETRANDOM, false},
    {SANDBOX_IO_NET, OP_SENDMSG, true},
    {SANDBOX_IO_NET, OP_WRITE_READ, true},
    {SANDBOX_IO_NET, OP_TIMERFD_SETTIME, false},

    ALL_CLASSES_KILL(SANDBOX_IO_CONSOLE),
    {SANDBOX_IO_CONSOLE, OP_OPEN_PASSWD, false},
    {SANDBOX_IO_CONSOLE, OP_TCGETS, false},
    {SANDBOX_IO_CONSOLE, OP_WRITE_READ, true},

    ALL_CLASSES_KILL(SANDBOX_IO_RNG),
    {SANDBOX_IO_RNG, OP_OPEN_PASSWD, false},
    {SANDBOX_IO_RNG, OP_GETRANDOM, true},

    ALL_CLASSES_KILL(SANDBOX_IO_BALLOON),
    {SANDBOX_IO_BALLOON, OP_OPEN_PASSWD, false},
    {SANDBOX_IO_BALLOON, OP_MADVISE, true},
    {SANDBOX_IO_BALLOON, OP_PWRITE, false},

    ALL_CLASSES_KILL(SANDBOX_IO_VSOCK),
    {SANDBOX_IO_VSOCK, OP_OPEN_PASSWD, false},
    {SANDBOX_IO_VSOCK, OP_SOCKET_UNIX_DGRAM, false},
    {SANDBOX_IO_VSOCK, OP_SOCKET_UNIX_STREAM, true},
    {SANDBOX_IO_VSOCK, OP_ACCEPT4, true},
    {SANDBOX_IO_VSOCK, OP_SENDMSG, true},
    {SANDBOX_IO_VSOCK, OP_TIMERFD_SETTIME, true},

    ALL_CLASSES_KILL(SANDBOX_IO_FS),
    {SANDBOX_IO_FS, OP_SOCKET_UNIX_STREAM, false},
    {SANDBOX_IO_FS, OP_OPENAT_IN_DIR, true},
    {SANDBOX_IO_FS, OP_PWRITE, true},

    ALL_CLASSES_KILL(SANDBOX_IO_OTHER),
    {SANDBOX_IO_OTHER, OP_OPEN_PASSWD, false},
    {SANDBOX_IO_OTHER, OP_WRITE_READ, true},

    ALL_CLASSES_KILL(SANDBOX_BLK_WORKER),
    {SANDBOX_BLK_WORKER, OP_OPEN_PASSWD, false},
    {SANDBOX_BLK_WORKER, OP_IO_URING_ENTER, false},
    {SANDBOX_BLK_WORKER, OP_PWRITE, true},

    ALL_CLASSES_KILL(SANDBOX_REST),
    {SANDBOX_REST, OP_OPEN_PASSWD, false},
    {SANDBOX_REST, OP_SOCKET_UNIX_STREAM, false},
    {SANDBOX_REST, OP_KVM_RUN, false},
    {SANDBOX_REST, OP_PWRITE, false},
    {SANDBOX_REST, OP_ACCEPT4, true},
    {SANDBOX_REST, OP_WRITE_READ, true},
    {SANDBOX_REST, OP_EPOLL_WAIT, true},
    {SANDBOX_REST, OP_TIMERFD_SETTIME, true},

    ALL_CLASSES_KILL(SANDBOX_TIMESYNC),
    {SANDBOX_TIMESYNC, OP_OPEN_PASSWD, false},
    {SANDBOX_TIMESYNC, OP_ACCEPT4, false},
    {SANDBOX_TIMESYNC, OP_SOCKET_UNIX_STREAM, true},
    {SANDBOX_TIMESYNC, OP_POLL, false},
    {SANDBOX_TIMESYNC, OP_EPOLL_WAIT, true},
    {SANDBOX_TIMESYNC, OP_TIMERFD_SETTIME, true},

    ALL_CLASSES_KILL(SANDBOX_SIGNAL),
    {SANDBOX_SIGNAL, OP_OPEN_PASSWD, false},
    {SANDBOX_SIGNAL, OP_SENDMSG, false},
    {SANDBOX_SIGNAL, OP_KVM_RUN, false},
    {SANDBOX_SIGNAL, OP_POLL, false},
    {SANDBOX_SIGNAL, OP_EPOLL_WAIT, true},
    {SANDBOX_SIGNAL, OP_TIMERFD_SETTIME, false},
    {SANDBOX_SIGNAL, OP_WRITE_READ, true},
};

static void test_class(void **state)
{
    enum sandbox_class c = (enum sandbox_class)(intptr_t)*state;
    unsigned n = 0;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (rows[i].c != c)
            continue;
        if (rows[i].allowed)
            expect_allowed(c, rows[i].op);
        else
            expect_killed(c, rows[i].op);
        n++;
    }
    assert_true(n >= 10);
}

/* Filters stack: a vCPU thread made by the filtered main thread gets the intersection. */
static void test_stacked_filters(void **state)
{
    (void)state;
    struct outcome o;
    run(SANDBOX_VCPU, OP_KVM_RUN, true, &o);
    assert_true(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
    run(SANDBOX_VCPU, OP_EVENTFD, true, &o); /* control allows it, the vCPU list does not */
    assert_true(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGSYS);
    assert_non_null(strstr(o.log, "(vcpu) made system call"));
}

/* Every class has its list; counts go to docs/security.md. */
static void test_class_lists(void **state)
{
    (void)state;
    for (int c = 0; c < SANDBOX_CLASS_COUNT; c++) {
        const char *names[128];
        size_t n = sandbox_class_calls((enum sandbox_class)c, names, 128);
        assert_true(n > 10 && n < 128);
        if (getenv("SANDBOX_PRINT_LISTS")) {
            printf("%s (%zu):", sandbox_class_name((enum sandbox_class)c), n);
            for (size_t i = 0; i < n; i++)
                printf(" %s", names[i]);
            printf("\n");
        }
        for (size_t i = 0; i < n; i++)
            assert_true(strcmp(names[i], "rt_sigaction") != 0 && strcmp(names[i], "open") != 0 &&
                        strcmp(names[i], "io_uring_setup") != 0 && strcmp(names[i], "execve") != 0);
    }
}

/* Without sandbox_init (unit tests that start device threads) entering is a no-op. */
static void test_enter_before_init_is_noop(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (sandbox_thread_enter(SANDBOX_SIGNAL) != 0)
            _exit(1);
        int fd = open("/proc/self/status", O_RDONLY);
        _exit(fd >= 0 ? 0 : 2);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*
 * A confined device thread that frees a burst of buffers: glibc trims its
 * arena's heap, and the first shrink would read /proc/sys/vm/overcommit_memory
 * (an openat the filter kills) unless sandbox_init keeps heaps from shrinking.
 */
static void *churn_arena(void *arg)
{
    (void)arg;
    if (sandbox_thread_enter(SANDBOX_IO_OTHER) != 0)
        return (void *)1;
    enum { N = 256, SIZE = 60 << 10 }; /* below the mmap threshold: from the arena's heap */
    static void *p[N];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N; i++) {
            p[i] = malloc(SIZE);
            if (!p[i])
                return (void *)2;
            memset(p[i], i, SIZE);
        }
        for (int i = N - 1; i >= 0; i--)
            free(p[i]);
    }
    return NULL;
}

static void test_thread_arena_free_burst(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(p[1], STDERR_FILENO);
        if (sandbox_init(-1) != 0)
            _exit(80);
        pthread_t t;
        void *ret = (void *)3;
        if (pthread_create(&t, NULL, churn_arena, NULL) != 0 || pthread_join(t, &ret) != 0)
            _exit(79);
        _exit(ret ? 1 : 0);
    }
    close(p[1]);
    char log[512] = "";
    ssize_t n = read(p[0], log, sizeof(log) - 1);
    log[n > 0 ? n : 0] = '\0';
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("a confined thread freeing its buffers died (status 0x%x): %s", status, log);
}

#define CLASS_TEST(c) cmocka_unit_test_prestate(test_class, (void *)(intptr_t)(c))

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_sandbox.XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    const struct CMUnitTest tests[] = {
        CLASS_TEST(SANDBOX_CONTROL),
        CLASS_TEST(SANDBOX_VCPU),
        CLASS_TEST(SANDBOX_IO_BLK),
        CLASS_TEST(SANDBOX_IO_NET),
        CLASS_TEST(SANDBOX_IO_CONSOLE),
        CLASS_TEST(SANDBOX_IO_RNG),
        CLASS_TEST(SANDBOX_IO_BALLOON),
        CLASS_TEST(SANDBOX_IO_VSOCK),
        CLASS_TEST(SANDBOX_IO_FS),
        CLASS_TEST(SANDBOX_IO_OTHER),
        CLASS_TEST(SANDBOX_BLK_WORKER),
        CLASS_TEST(SANDBOX_REST),
        CLASS_TEST(SANDBOX_TIMESYNC),
        CLASS_TEST(SANDBOX_SIGNAL),
        cmocka_unit_test(test_stacked_filters),
        cmocka_unit_test(test_class_lists),
        cmocka_unit_test(test_enter_before_init_is_noop),
        cmocka_unit_test(test_thread_arena_free_burst),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        r = r ? r : 1;
    return r;
}
