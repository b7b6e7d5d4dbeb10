/*
 * The seccomp sandbox (src/vmm/sandbox.c), entered in a child process so
 * the test runner keeps its freedom: programs cannot be run and processes
 * cannot be created afterwards, on the calling thread and on a thread that
 * existed before (TSYNC); threads, files and memory still work.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/sandbox.h"

/* Exit codes of the child: 0 all as expected, else the number of the failed check. */
static int exec_denied(void)
{
    char *argv[] = {"/bin/true", NULL};
    char *envp[] = {NULL};
    return execve(argv[0], argv, envp) < 0 && errno == EPERM;
}

static void *early_thread(void *arg)
{
    int *go = arg;
    while (!__atomic_load_n(go, __ATOMIC_ACQUIRE))
        usleep(1000);
    return (void *)(intptr_t)exec_denied();
}

static void *late_thread(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)42;
}

static int child(void)
{
    int go = 0;
    pthread_t early, late;
    void *ret;
    if (pthread_create(&early, NULL, early_thread, &go) != 0)
        return 1;
    if (sandbox_enter() != 0)
        return 2;
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    if (!exec_denied())
        return 3;
    if (pthread_join(early, &ret) != 0 || ret != (void *)1)
        return 4; /* the thread that existed before is confined too */
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    if (pid >= 0 || errno != EPERM)
        return 5;
    if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) == 0 || errno != EPERM)
        return 6;
    if (syscall(SYS_unshare, 0) == 0 || errno != EPERM)
        return 7;
    if (pthread_create(&late, NULL, late_thread, NULL) != 0)
        return 8; /* threads still work */
    if (pthread_join(late, &ret) != 0 || ret != (void *)42)
        return 9;
    int fd = open("/proc/self/status", O_RDONLY);
    char buf[64];
    if (fd < 0 || read(fd, buf, sizeof(buf)) <= 0)
        return 10;
    close(fd);
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return 11;
    munmap(m, 4096);
    return 0;
}

static void test_sandbox_confines_every_thread(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child());
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sandbox_confines_every_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
