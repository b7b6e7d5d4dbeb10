/*
 * The seccomp deny list (see sandbox.h for what it is for and why it is a
 * deny list). Process creation is told apart from thread creation by the
 * clone flags: pthread_create passes CLONE_THREAD; clone3 takes its flags
 * in memory the filter cannot read, so it answers ENOSYS, which makes the
 * C library fall back to clone, whose flags it can check.
 */
#include "vmm/sandbox.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <string.h>

#include "cli/log.h"

static const char *const denied[] = {
    /* running programs and creating processes */
    "execve",
    "execveat",
    "fork",
    "vfork",
    /* other processes */
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    /* file systems, namespaces, root */
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "open_by_handle_at",
    "name_to_handle_at",
    "fsopen",
    "fsmount",
    "fsconfig",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "quotactl",
    "swapon",
    "swapoff",
    "acct",
    /* kernel code, kernel state */
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "perf_event_open",
    "reboot",
    "syslog",
    "personality",
    "iopl",
    "ioperm",
    "userfaultfd",
    "add_key",
    "request_key",
    "keyctl",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "lookup_dcookie",
    "vhangup",
};

int sandbox_enter(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return -ENOMEM;
    int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    for (size_t i = 0; r == 0 && i < sizeof(denied) / sizeof(denied[0]); i++) {
        int nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not a system call on this architecture */
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    }
    /* clone without CLONE_THREAD makes a process. */
    if (r == 0)
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
    if (r == 0)
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (r == 0)
        r = seccomp_load(ctx);
    seccomp_release(ctx);
    if (r > 0) { /* TSYNC names a thread that could not take the filter */
        log_error("sandbox: thread %d refused the seccomp filter", r);
        return -EPERM;
    }
    if (r < 0)
        log_error("sandbox: cannot install the seccomp filter: %s", strerror(-r));
    else
        log_debug("sandbox: seccomp filter installed on every thread");
    return r;
}
