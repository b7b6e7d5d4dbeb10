/*
 * The system calls the VMM core makes on KVM's file descriptors, behind
 * one table: the real ones in the program, a fake KVM in the lifecycle
 * unit tests (tests/unit/test_vm.c), so that creating, rebooting, pausing
 * and stopping a VM, and each way of failing, are tested without KVM.
 * Only the arch-neutral core goes through it; src/arch/ code talks to KVM
 * directly and is replaced as a whole in those tests.
 */
#ifndef KRUNKIT_VMM_KVM_SYS_H
#define KRUNKIT_VMM_KVM_SYS_H

#include <stddef.h>
#include <stdint.h>

struct kvm_sys {
    int (*open_kvm)(void); /* /dev/kvm, O_RDWR; -1 with errno */
    /* ioctl(2): -1 with errno, as the kernel's; integer arguments cast to void *. */
    int (*ioctl)(int fd, unsigned long req, void *arg);
    void *(*mmap_run)(int vcpu_fd, size_t size); /* NULL with errno */
    void (*munmap_run)(void *run, size_t size);
    int (*close)(int fd);
};

const struct kvm_sys *kvm_sys(void);
/* Tests: stand in for KVM (NULL: the real system calls again). */
void kvm_sys_replace(const struct kvm_sys *sys);

static inline int kvm_ioctl(int fd, unsigned long req, void *arg)
{
    return kvm_sys()->ioctl(fd, req, arg);
}
static inline int kvm_ioctl_int(int fd, unsigned long req, unsigned long arg)
{
    return kvm_sys()->ioctl(fd, req, (void *)(uintptr_t)arg);
}

#endif
