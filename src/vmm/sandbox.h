/*
 * The process sandbox: a seccomp filter (libseccomp) installed on every
 * thread once the VM is built and before its vCPUs run, so that a guest
 * that finds a bug in a device model cannot turn the VMM into a launcher
 * of programs, a debugger of other processes, or a loader of kernel code.
 *
 * It is a deny list, not an allow list: the VMM keeps every system call it
 * uses (open, mmap, io_uring, sockets, KVM ioctls) so a guest reboot that
 * rebuilds the machine, a REST client, or a new log line can never be
 * killed by a forgotten entry; what it loses are calls a VM launcher never
 * makes after start: executing programs, creating processes (threads stay
 * allowed), tracing or reading other processes' memory, mounting, changing
 * namespaces or root, loading modules or kernels, BPF, perf, keyrings,
 * userfaultfd, raw port I/O, reboot. A denied call fails with EPERM rather
 * than killing the process, so a stray use shows up as an error message.
 */
#ifndef KRUNKIT_VMM_SANDBOX_H
#define KRUNKIT_VMM_SANDBOX_H

/* Install the filter on every thread of the process; -errno on failure. */
int sandbox_enter(void);

#endif
