/*
 * vCPU threads (see vcpu.h). Exits are handled inline on the vCPU thread:
 * MMIO goes to the MMIO bus, system events to the VM lifecycle, and what
 * only an architecture knows (port I/O, a triple fault) to arch_vcpu_exit. Kicks use KVM's
 * immediate_exit plus a signal, so a kick that lands just before KVM_RUN is not lost.
 */
#include "vmm/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/arch.h"
#include "vmm/kvm_sys.h"
#include "vmm/sandbox.h"
#include "vmm/vm_internal.h"

#define VCPU_KICK_SIGNAL SIGUSR1

static void kick_handler(int sig)
{
    (void)sig;
}

/* No SA_RESTART: the signal's only job is to make KVM_RUN return EINTR. */
static void install_kick_handler(void)
{
    struct sigaction sa = {.sa_handler = kick_handler};
    sigemptyset(&sa.sa_mask);
    sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

static pthread_once_t kick_once = PTHREAD_ONCE_INIT;

int vcpu_create(struct vcpu *v, struct vmm *vmm, unsigned index)
{
    /* Here, at set-up, not in vcpu_start: no seccomp list allows sigaction once the VM runs. */
    pthread_once(&kick_once, install_kick_handler);
    memset(v, 0, sizeof(*v));
    v->vmm = vmm;
    v->index = index;
    v->fd = kvm_ioctl_int(vmm->kvm.vm_fd, KVM_CREATE_VCPU, index);
    if (v->fd < 0) {
        int err = -errno;
        log_error("KVM_CREATE_VCPU %u: %m", index);
        return err;
    }
    v->run = kvm_sys()->mmap_run(v->fd, (size_t)vmm->kvm.vcpu_mmap_size);
    if (!v->run) {
        int err = -errno;
        log_error("mapping vCPU %u run area: %m", index);
        kvm_sys()->close(v->fd);
        v->fd = -1;
        return err;
    }
    return arch_vcpu_init(v);
}

void vcpu_destroy(struct vcpu *v)
{
    if (v->run)
        kvm_sys()->munmap_run(v->run, (size_t)v->vmm->kvm.vcpu_mmap_size);
    if (v->fd >= 0)
        kvm_sys()->close(v->fd);
    v->run = NULL;
    v->fd = -1;
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *v = arg;
    char name[16];
    snprintf(name, sizeof(name), "vcpu%u", v->index);
    /* Named here: naming another thread opens /proc, which the control filter forbids. */
    pthread_setname_np(pthread_self(), name);
    struct vmm *vmm = v->vmm;
    if (sandbox_thread_enter(SANDBOX_VCPU) < 0) {
        vmm_fail(vmm, "a vCPU cannot enter its seccomp sandbox");
        goto out;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, VCPU_KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    while (vmm_vcpu_may_run(vmm)) {
        if (kvm_ioctl_int(v->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                v->run->immediate_exit = 0;
                continue;
            }
            char why[96];
            snprintf(why, sizeof(why), "KVM_RUN on vCPU %u: %s", v->index, strerror(errno));
            vmm_fail(vmm, why);
            break;
        }
        struct kvm_run *run = v->run;
        switch (run->exit_reason) {
        case KVM_EXIT_MMIO:
            v->mmio_exits++;
            io_bus_access(&vmm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
                          run->mmio.is_write);
            break;
        case KVM_EXIT_SYSTEM_EVENT:
            if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
                vmm_guest_reset(vmm);
            else
                vmm_guest_poweroff(vmm);
            break;
        case KVM_EXIT_HLT:
            break;
        case KVM_EXIT_INTR:
            break;
        case KVM_EXIT_FAIL_ENTRY: {
            char why[96];
            snprintf(why, sizeof(why), "vCPU %u: entry failed, hardware reason 0x%llx", v->index,
                     (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
            vmm_fail(vmm, why);
            break;
        }
        case KVM_EXIT_INTERNAL_ERROR: {
            char why[96];
            snprintf(why, sizeof(why), "vCPU %u: KVM internal error, suberror %u", v->index,
                     run->internal.suberror);
            vmm_fail(vmm, why);
            break;
        }
        default: {
            if (arch_vcpu_exit(v))
                break;
            char why[96];
            snprintf(why, sizeof(why), "vCPU %u: unexpected exit reason %u", v->index,
                     run->exit_reason);
            vmm_fail(vmm, why);
            break;
        }
        }
    }
out:
    /* From here on no kick may target this thread (vcpu_kick). */
    pthread_mutex_lock(&vmm->lock);
    v->running = false;
    pthread_mutex_unlock(&vmm->lock);
    return NULL;
}

int vcpu_start(struct vcpu *v)
{
    /* vCPU threads unblock the kick signal themselves; others keep it blocked. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, VCPU_KICK_SIGNAL);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    /*
     * Under the VM lock, with kicks: a kick sent once the thread exists but
     * before `running` said so would be lost, and the vCPU would sit in
     * KVM_RUN through a stop or a pause (seen under load in test_vm).
     */
    pthread_mutex_lock(&v->vmm->lock);
    int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);
    if (rc == 0)
        v->started = v->running = true;
    pthread_mutex_unlock(&v->vmm->lock);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -rc;
}

void vcpu_kick(struct vcpu *v)
{
    if (!v->running)
        return;
    __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *v)
{
    if (!v->started)
        return;
    pthread_join(v->thread, NULL);
    v->started = false;
    log_debug("vCPU %u: %llu port I/O exits (most frequent: port 0x%x), %llu MMIO exits", v->index,
              (unsigned long long)v->io_exits, v->hot_port, (unsigned long long)v->mmio_exits);
}
