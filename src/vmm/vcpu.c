/*
 * vCPU threads (see vcpu.h). Exits are handled inline on the vCPU thread:
 * port I/O and MMIO go to the io buses; everything else is a lifecycle
 * event. Kicks use KVM's immediate_exit plus a signal, so a kick that
 * lands just before KVM_RUN is not lost.
 */
#include "vmm/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/cpuid.h"
#include "arch/x86/linux_boot.h"
#include "core/log.h"
#include "vmm/sandbox.h"
#include "vmm/vm_internal.h"

#define VCPU_KICK_SIGNAL SIGUSR1

#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

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

static int set_msrs(struct vcpu *v)
{
    /* struct kvm_msrs ends in a flexible array: build it in a buffer. */
    union {
        struct kvm_msrs msrs;
        uint8_t buf[sizeof(struct kvm_msrs) + 2 * sizeof(struct kvm_msr_entry)];
    } m;
    memset(&m, 0, sizeof(m));
    m.msrs.nmsrs = 2;
    m.msrs.entries[0] = (struct kvm_msr_entry){.index = MSR_IA32_MISC_ENABLE, .data = 1};
    m.msrs.entries[1] = (struct kvm_msr_entry){.index = MSR_MTRR_DEF_TYPE, .data = (1u << 11) | 6};
    int n = ioctl(v->fd, KVM_SET_MSRS, &m.msrs);
    return n == 2 ? 0 : -EINVAL;
}

/* LINT0 as ExtINT (the PIC), LINT1 as NMI: the PC's virtual-wire mode. */
static int set_lapic_lint(struct vcpu *v)
{
    struct kvm_lapic_state s;
    if (ioctl(v->fd, KVM_GET_LAPIC, &s) < 0)
        return -errno;
    uint32_t lvt0, lvt1;
    memcpy(&lvt0, &s.regs[APIC_LVT0], 4);
    memcpy(&lvt1, &s.regs[APIC_LVT1], 4);
    lvt0 = (lvt0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
    lvt1 = (lvt1 & ~0x700u) | (APIC_MODE_NMI << 8);
    memcpy(&s.regs[APIC_LVT0], &lvt0, 4);
    memcpy(&s.regs[APIC_LVT1], &lvt1, 4);
    return ioctl(v->fd, KVM_SET_LAPIC, &s) < 0 ? -errno : 0;
}

static pthread_once_t kick_once = PTHREAD_ONCE_INIT;

int vcpu_create(struct vcpu *v, struct vmm *vmm, unsigned index)
{
    /* Here, at set-up, not in vcpu_start: no seccomp list allows sigaction once the VM runs. */
    pthread_once(&kick_once, install_kick_handler);
    memset(v, 0, sizeof(*v));
    v->vmm = vmm;
    v->index = index;
    v->fd = ioctl(vmm->kvm.vm_fd, KVM_CREATE_VCPU, index);
    if (v->fd < 0) {
        int err = -errno;
        log_error("KVM_CREATE_VCPU %u: %m", index);
        return err;
    }
    v->run =
        mmap(NULL, (size_t)vmm->kvm.vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->run == MAP_FAILED) {
        int err = -errno;
        log_error("mapping vCPU %u run area: %m", index);
        close(v->fd);
        v->fd = -1;
        v->run = NULL;
        return err;
    }
    size_t sz = sizeof(struct kvm_cpuid2) + vmm->cpuid->nent * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = malloc(sz);
    if (!c)
        return -ENOMEM;
    memcpy(c, vmm->cpuid, sz);
    int rc = cpuid_for_vcpu(c, index, vmm->ncpus, vmm->cfg->nested);
    if (rc == 0 && ioctl(v->fd, KVM_SET_CPUID2, c) < 0) {
        rc = -errno;
        log_error("KVM_SET_CPUID2 on vCPU %u: %m", index);
    }
    free(c);
    if (rc)
        return rc;
    rc = set_msrs(v);
    if (rc == 0)
        rc = set_lapic_lint(v);
    if (rc)
        log_error("vCPU %u: initial MSR/LAPIC state: %s", index, strerror(-rc));
    return rc;
}

void vcpu_destroy(struct vcpu *v)
{
    if (v->run)
        munmap(v->run, (size_t)v->vmm->kvm.vcpu_mmap_size);
    if (v->fd >= 0)
        close(v->fd);
    v->run = NULL;
    v->fd = -1;
}

/*
 * A triple fault resets the machine. Firmware and kernels use it on purpose
 * to reboot, but it is also how a guest dies of a broken stack or IDT: the
 * state it died in goes to the log either way.
 */
static void log_triple_fault(struct vcpu *v)
{
    struct kvm_regs r;
    struct kvm_sregs s;
    if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
        log_info("vCPU %u: triple fault, resetting", v->index);
        return;
    }
    log_info("vCPU %u: triple fault, resetting (rip 0x%llx rsp 0x%llx rflags 0x%llx cs 0x%x "
             "cr0 0x%llx cr2 0x%llx cr3 0x%llx cr4 0x%llx efer 0x%llx idt 0x%llx/%u)",
             v->index, (unsigned long long)r.rip, (unsigned long long)r.rsp,
             (unsigned long long)r.rflags, s.cs.selector, (unsigned long long)s.cr0,
             (unsigned long long)s.cr2, (unsigned long long)s.cr3, (unsigned long long)s.cr4,
             (unsigned long long)s.efer, (unsigned long long)s.idt.base, s.idt.limit);
}

int vcpu_setup_linux(struct vcpu *v, uint64_t entry, uint64_t zero_page)
{
    struct kvm_sregs s;
    if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
        return -errno;
    struct kvm_segment code = {.base = 0,
                               .limit = 0xffffffff,
                               .selector = 0x10,
                               .type = 0xb,
                               .present = 1,
                               .s = 1,
                               .l = 1,
                               .g = 1};
    struct kvm_segment data = {.base = 0,
                               .limit = 0xffffffff,
                               .selector = 0x18,
                               .type = 0x3,
                               .present = 1,
                               .s = 1,
                               .db = 1,
                               .g = 1};
    struct kvm_segment tss = {
        .base = 0, .limit = 0x67, .selector = 0x20, .type = 0xb, .present = 1};
    s.cs = code;
    s.ds = s.es = s.fs = s.gs = s.ss = data;
    s.tr = tss;
    s.gdt.base = BOOT_GDT_ADDR;
    s.gdt.limit = 5 * 8 - 1;
    s.idt.base = 0;
    s.idt.limit = 0;
    s.cr0 = 0x80000011ull; /* PG | ET | PE */
    s.cr3 = BOOT_PML4_ADDR;
    s.cr4 = 0x20;   /* PAE */
    s.efer = 0x500; /* LME | LMA */
    if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0)
        return -errno;
    struct kvm_regs r = {.rip = entry, .rsi = zero_page, .rflags = 2};
    if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
        return -errno;
    struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
    if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
        return -errno;
    return 0;
}

static void handle_io(struct vcpu *v)
{
    struct kvm_run *run = v->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    bool out = run->io.direction == KVM_EXIT_IO_OUT;
    for (uint32_t i = 0; i < run->io.count; i++) {
        io_bus_access(&v->vmm->pio, run->io.port, data, run->io.size, out);
        data += run->io.size;
    }
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *v = arg;
    char name[16];
    snprintf(name, sizeof(name), "vcpu%u", v->index);
    /* Named here: naming another thread opens /proc, which the control filter forbids. */
    pthread_setname_np(pthread_self(), name);
    if (sandbox_thread_enter(SANDBOX_VCPU) < 0) {
        vmm_fail(v->vmm, "a vCPU cannot enter its seccomp sandbox");
        return NULL;
    }
    struct vmm *vmm = v->vmm;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, VCPU_KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    while (vmm_vcpu_may_run(vmm)) {
        if (ioctl(v->fd, KVM_RUN, 0) < 0) {
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
        case KVM_EXIT_IO:
            v->io_exits++;
            if (run->io.port == v->hot_port)
                v->hot_port_exits++;
            else if (v->hot_port_exits-- <= 1)
                v->hot_port = run->io.port, v->hot_port_exits = 1;
            handle_io(v);
            break;
        case KVM_EXIT_MMIO:
            v->mmio_exits++;
            io_bus_access(&vmm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
                          run->mmio.is_write);
            break;
        case KVM_EXIT_SHUTDOWN:
            log_triple_fault(v);
            vmm_guest_reset(vmm);
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
            char why[96];
            snprintf(why, sizeof(why), "vCPU %u: unexpected exit reason %u", v->index,
                     run->exit_reason);
            vmm_fail(vmm, why);
            break;
        }
        }
    }
    return NULL;
}

int vcpu_start(struct vcpu *v)
{
    /* vCPU threads unblock the kick signal themselves; others keep it blocked. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, VCPU_KICK_SIGNAL);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        return -rc;
    v->started = true;
    return 0;
}

void vcpu_kick(struct vcpu *v)
{
    if (!v->started)
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
