/*
 * The process sandbox: one seccomp allow list per thread class (docs/security.md,
 * "seccomp"). Each thread installs its class's filter on itself as the first
 * thing it does, and the main thread installs the control filter once the VM
 * is built, before the vCPUs run. A thread created by a filtered thread keeps
 * its parent's filter under its own, so what it may do is the intersection.
 *
 * A call outside the list raises SIGSYS (SECCOMP_RET_TRAP); the handler that
 * sandbox_init installs logs "sandbox: <thread> (<class>) made system call N
 * (<name>) outside its allow list" and the process dies by SIGSYS. No list
 * has rt_sigaction, so a hijacked thread cannot replace that handler.
 */
#ifndef KRUNKIT_VMM_SANDBOX_H
#define KRUNKIT_VMM_SANDBOX_H

#include <stddef.h>

enum sandbox_class {
    SANDBOX_CONTROL,    /* main thread after set-up: runs the VM, rebuilds it on reboot */
    SANDBOX_VCPU,       /* one per vCPU: KVM_RUN and the exits it handles */
    SANDBOX_IO_BLK,     /* virtio-blk I/O loop: io_uring submission, completions */
    SANDBOX_IO_NET,     /* virtio-net I/O loop: packets to and from the backend socket */
    SANDBOX_IO_CONSOLE, /* virtio-console I/O loop: reads and writes the console fds */
    SANDBOX_IO_RNG,     /* virtio-rng I/O loop: getrandom */
    SANDBOX_IO_BALLOON, /* virtio-balloon I/O loop: gives pages back with madvise */
    SANDBOX_IO_VSOCK,   /* virtio-vsock I/O loop: the connection muxer */
    SANDBOX_IO_FS,      /* virtio-fs I/O loop: the FUSE server on the shared directory */
    SANDBOX_IO_OTHER,   /* an I/O loop of a device without a class of its own: the base */
    SANDBOX_BLK_WORKER, /* block worker threads: synchronous image I/O */
    SANDBOX_REST,       /* the REST service */
    SANDBOX_TIMESYNC,   /* the timesync thread: talks to the guest agent over vsock */
    SANDBOX_SIGNAL,     /* the signal thread: SIGINT/SIGTERM to stop requests */
    SANDBOX_CLASS_COUNT,
};

/*
 * Build every class's filter and install the SIGSYS handler; log_fd is where
 * the handler writes its line (-1: stderr). Call it from the main thread
 * before any other thread exists: it sets no_new_privs, which every later
 * thread inherits. Until it has run, sandbox_thread_enter does nothing, so
 * unit tests that start device threads without it run unconfined.
 * Returns 0 or -errno.
 */
int sandbox_init(int log_fd);

/* Install class c's filter on the calling thread only; 0, or -errno. */
int sandbox_thread_enter(enum sandbox_class c);

/* The main thread's call once the VM is built: sandbox_thread_enter(SANDBOX_CONTROL). */
int sandbox_enter_control(void);

/* The name used in logs and docs ("vcpu", "io-blk", ...). */
const char *sandbox_class_name(enum sandbox_class c);

/*
 * The system calls class c allows (in full or for some arguments), their
 * names in out[] up to max; returns how many there are. For docs and tests.
 */
size_t sandbox_class_calls(enum sandbox_class c, const char **out, size_t max);

#endif
