/*
 * The VM lifecycle (src/vmm/vm.c, vcpu.c, kvm.c) against a fake KVM and a
 * fake architecture: create, run, power-off, reboot, stop, hard stop,
 * pause/resume, and the ways a VM fails (KVM_RUN errors, unexpected exits,
 * a machine that cannot be built at start or at a reboot), each checked
 * for what it leaves behind (every fd closed, every board and payload
 * unloaded, the arch state freed).
 *
 * The fake KVM (vmm/kvm_sys.h) hands out eventfds as its VM and vCPU fds
 * and a zeroed page as each vCPU's run area. Its KVM_RUN blocks until the
 * test scripts an exit for vCPU 0 or the VMM kicks the vCPU
 * (immediate_exit), as the real one does. The fake arch is this file's
 * arch_* functions: linking them keeps src/arch/x86 out of this test.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "vmm/arch.h"
#include "vmm/kvm_sys.h"
#include "vmm/vm_internal.h"
#include "vmm/vmm.h"

#define NCPUS 2
#define RUN_SIZE 4096
#define MAX_FDS 64
#define DEADLINE_MS 5000

enum fd_kind { FD_FREE, FD_KVM, FD_VM, FD_VCPU };

struct fake_fd {
    int fd;
    enum fd_kind kind;
    unsigned vcpu;
    struct kvm_run *run;
};

/* Everything the fakes record, under lock; cond wakes KVM_RUN and the test. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct fake_fd fds[MAX_FDS];
    unsigned open_fds;
    unsigned vm_creates, fail_create_vm_at; /* 0: never fail */
    unsigned in_run;                        /* vCPUs inside KVM_RUN now */
    /* The next exit of vCPU 0: an exit reason, or run_errno for a failing KVM_RUN. */
    bool exit_pending;
    uint32_t exit_reason, event_type;
    int run_errno;
    bool exit_handled_by_arch; /* arch_vcpu_exit's answer */
    /* The fake arch's counts. */
    unsigned arch_creates, arch_destroys, boards, boards_destroyed, boots, boots_unloaded,
        kvm_inits, kvm_finis, power_buttons, freezes, thaws, vcpu_inits;
    /* What is built now: the core tears down whatever part of a boot was built. */
    unsigned boards_live, kvm_live;
} fk = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static struct fake_fd *fd_find(int fd)
{
    for (unsigned i = 0; i < MAX_FDS; i++)
        if (fk.fds[i].kind != FD_FREE && fk.fds[i].fd == fd)
            return &fk.fds[i];
    return NULL;
}

static int fd_new(enum fd_kind kind, unsigned vcpu)
{
    int fd = eventfd(0, EFD_CLOEXEC);
    if (fd < 0)
        return -1;
    for (unsigned i = 0; i < MAX_FDS; i++) {
        if (fk.fds[i].kind == FD_FREE) {
            fk.fds[i] = (struct fake_fd){.fd = fd, .kind = kind, .vcpu = vcpu};
            fk.open_fds++;
            return fd;
        }
    }
    close(fd);
    errno = EMFILE;
    return -1;
}

static int fake_open_kvm(void)
{
    pthread_mutex_lock(&fk.lock);
    int fd = fd_new(FD_KVM, 0);
    pthread_mutex_unlock(&fk.lock);
    return fd;
}

static int fake_close(int fd)
{
    pthread_mutex_lock(&fk.lock);
    struct fake_fd *f = fd_find(fd);
    if (f) {
        f->kind = FD_FREE;
        fk.open_fds--;
    }
    pthread_mutex_unlock(&fk.lock);
    return close(fd);
}

static void *fake_mmap_run(int vcpu_fd, size_t size)
{
    pthread_mutex_lock(&fk.lock);
    struct fake_fd *f = fd_find(vcpu_fd);
    void *p = NULL;
    if (f && f->kind == FD_VCPU && size == RUN_SIZE && !f->run)
        p = f->run = calloc(1, size);
    pthread_mutex_unlock(&fk.lock);
    if (!p)
        errno = EINVAL;
    return p;
}

static void fake_munmap_run(void *run, size_t size)
{
    assert_int_equal(size, RUN_SIZE);
    pthread_mutex_lock(&fk.lock);
    for (unsigned i = 0; i < MAX_FDS; i++)
        if (fk.fds[i].run == run)
            fk.fds[i].run = NULL;
    pthread_mutex_unlock(&fk.lock);
    free(run);
}

static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* KVM_RUN: until a scripted exit (vCPU 0) or a kick. Called without fk.lock. */
static int fake_run(struct fake_fd *f)
{
    struct kvm_run *run = f->run;
    pthread_mutex_lock(&fk.lock);
    fk.in_run++;
    pthread_cond_broadcast(&fk.cond);
    int rc = 0;
    for (;;) {
        if (__atomic_load_n(&run->immediate_exit, __ATOMIC_SEQ_CST)) {
            errno = EINTR;
            rc = -1;
            break;
        }
        if (f->vcpu == 0 && fk.exit_pending) {
            fk.exit_pending = false;
            if (fk.run_errno) {
                errno = fk.run_errno;
                fk.run_errno = 0;
                rc = -1;
            } else {
                run->exit_reason = fk.exit_reason;
                run->system_event.type = fk.event_type;
            }
            break;
        }
        /* A kick sets immediate_exit without signalling cond: look again soon. */
        struct timespec ts;
        deadline_in(&ts, 1);
        pthread_cond_timedwait(&fk.cond, &fk.lock, &ts);
    }
    fk.in_run--;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
    return rc;
}

static int fake_ioctl(int fd, unsigned long req, void *arg)
{
    pthread_mutex_lock(&fk.lock);
    struct fake_fd *f = fd_find(fd);
    if (!f) {
        pthread_mutex_unlock(&fk.lock);
        errno = EBADF;
        return -1;
    }
    int rc = 0;
    switch (req) {
    case KVM_GET_API_VERSION:
        rc = f->kind == FD_KVM ? KVM_API_VERSION : -1;
        break;
    case KVM_CHECK_EXTENSION:
        rc = 1;
        break;
    case KVM_GET_VCPU_MMAP_SIZE:
        rc = RUN_SIZE;
        break;
    case KVM_CREATE_VM:
        fk.vm_creates++;
        if (fk.vm_creates == fk.fail_create_vm_at) {
            errno = ENOMEM;
            rc = -1;
        } else {
            rc = fd_new(FD_VM, 0);
        }
        break;
    case KVM_CREATE_VCPU:
        rc = f->kind == FD_VM ? fd_new(FD_VCPU, (unsigned)(uintptr_t)arg) : -1;
        break;
    case KVM_RUN:
        if (f->kind != FD_VCPU || !f->run) {
            errno = EINVAL;
            rc = -1;
            break;
        }
        pthread_mutex_unlock(&fk.lock);
        return fake_run(f);
    case KVM_SET_USER_MEMORY_REGION:
    case KVM_SET_GSI_ROUTING:
    case KVM_IRQFD:
    case KVM_IOEVENTFD:
        rc = f->kind == FD_VM ? 0 : -1;
        break;
    default:
        errno = ENOTTY;
        rc = -1;
    }
    pthread_mutex_unlock(&fk.lock);
    return rc;
}

static const struct kvm_sys fake_sys = {
    .open_kvm = fake_open_kvm,
    .ioctl = fake_ioctl,
    .mmap_run = fake_mmap_run,
    .munmap_run = fake_munmap_run,
    .close = fake_close,
};

/* The fake architecture. */
struct arch_vm {
    int boots;
};

static void count(unsigned *c)
{
    pthread_mutex_lock(&fk.lock);
    (*c)++;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
}

int arch_create(struct vmm *vmm)
{
    vmm->arch = calloc(1, sizeof(*vmm->arch));
    count(&fk.arch_creates);
    return vmm->arch ? 0 : -ENOMEM;
}

void arch_destroy(struct vmm *vmm)
{
    if (!vmm->arch)
        return;
    free(vmm->arch);
    vmm->arch = NULL;
    count(&fk.arch_destroys);
}

void arch_memory_layout(const struct vmm *vmm, struct arch_mem_layout *l)
{
    (void)vmm;
    *l = (struct arch_mem_layout){.ram_base = 1ull << 30,
                                  .hole_start = UINT64_MAX,
                                  .hole_end = UINT64_MAX,
                                  .mmio32_base = 0x10000000,
                                  .mmio32_end = 0x3f000000,
                                  .mmio64_size = 1ull << 30};
}

unsigned long arch_kvm_vm_type(int kvm_fd)
{
    (void)kvm_fd;
    return 0;
}

int arch_kvm_init(struct vmm *vmm)
{
    count(&fk.kvm_inits);
    count(&fk.kvm_live);
    return kvm_vm_routing_start(&vmm->kvm, 32);
}

/* Teardown calls the fini of a part never built too (a failed start): that is no error. */
static void uncount(unsigned *live, unsigned *c)
{
    pthread_mutex_lock(&fk.lock);
    if (*live) {
        (*live)--;
        (*c)++;
    }
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
}

void arch_kvm_fini(struct vmm *vmm)
{
    (void)vmm;
    uncount(&fk.kvm_live, &fk.kvm_finis);
}

int arch_kvm_irq_line(struct kvm_vm *k, unsigned line, bool level)
{
    (void)k, (void)line, (void)level;
    return 0;
}

int arch_board_create(struct vmm *vmm)
{
    (void)vmm;
    count(&fk.boards);
    count(&fk.boards_live);
    return 0;
}

void arch_board_destroy(struct vmm *vmm)
{
    (void)vmm;
    uncount(&fk.boards_live, &fk.boards_destroyed);
}

void arch_press_power_button(struct vmm *vmm)
{
    (void)vmm;
    count(&fk.power_buttons);
}

int arch_vcpu_init(struct vcpu *v)
{
    (void)v;
    count(&fk.vcpu_inits);
    return 0;
}

bool arch_vcpu_exit(struct vcpu *v)
{
    (void)v;
    return fk.exit_handled_by_arch;
}

int arch_boot_load(struct vmm *vmm)
{
    vmm->arch->boots++;
    count(&fk.boots);
    return 0;
}

void arch_boot_unload(struct vmm *vmm)
{
    (void)vmm;
    count(&fk.boots_unloaded);
}

void arch_clock_freeze(struct vmm *vmm)
{
    (void)vmm;
    count(&fk.freezes);
}

void arch_clock_thaw(struct vmm *vmm)
{
    (void)vmm;
    count(&fk.thaws);
}

const unsigned long *const arch_sandbox_ioctls[SANDBOX_CLASS_COUNT];

/* The test's side. */
struct fixture {
    struct vm_config cfg;
    struct vmm *vmm;
    struct vm_control ctl;
    pthread_t runner;
    bool running;
    int status;
};

static void *run_vm(void *arg)
{
    struct fixture *f = arg;
    f->status = vmm_run(f->vmm);
    return NULL;
}

/* Wait (on the fakes' cond) until pred() holds; false at the deadline. */
static bool wait_for(bool (*pred)(void *), void *arg)
{
    struct timespec ts;
    deadline_in(&ts, DEADLINE_MS);
    pthread_mutex_lock(&fk.lock);
    bool ok;
    while (!(ok = pred(arg)))
        if (pthread_cond_timedwait(&fk.cond, &fk.lock, &ts) == ETIMEDOUT) {
            ok = pred(arg);
            break;
        }
    pthread_mutex_unlock(&fk.lock);
    return ok;
}

static bool all_in_run(void *arg)
{
    (void)arg;
    return fk.in_run == NCPUS;
}

static bool none_in_run(void *arg)
{
    (void)arg;
    return fk.in_run == 0;
}

static bool exit_taken_and_all_in_run(void *arg)
{
    (void)arg;
    return !fk.exit_pending && fk.in_run == NCPUS;
}

static bool boots_at_least(void *arg)
{
    return fk.boots >= *(unsigned *)arg;
}

/* Script vCPU 0's next exit. */
static void script_exit(uint32_t reason, uint32_t event_type, int run_errno)
{
    pthread_mutex_lock(&fk.lock);
    fk.exit_reason = reason;
    fk.event_type = event_type;
    fk.run_errno = run_errno;
    fk.exit_pending = true;
    pthread_cond_broadcast(&fk.cond);
    pthread_mutex_unlock(&fk.lock);
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    pthread_mutex_lock(&fk.lock);
    memset(fk.fds, 0, sizeof(fk.fds));
    fk.open_fds = fk.vm_creates = fk.fail_create_vm_at = fk.in_run = 0;
    fk.exit_pending = fk.exit_handled_by_arch = false;
    fk.arch_creates = fk.arch_destroys = fk.boards = fk.boards_destroyed = fk.boots =
        fk.boots_unloaded = fk.kvm_inits = fk.kvm_finis = fk.power_buttons = fk.freezes = fk.thaws =
            fk.vcpu_inits = fk.boards_live = fk.kvm_live = 0;
    pthread_mutex_unlock(&fk.lock);
    kvm_sys_replace(&fake_sys);
    f.cfg.cpus = NCPUS;
    f.cfg.memory_mib = 16;
    f.cfg.boot.kind = BOOT_LINUX;
    *state = &f;
    return 0;
}

static void start(struct fixture *f)
{
    assert_int_equal(vmm_create(&f->cfg, &f->vmm), 0);
    f->ctl = vmm_control(f->vmm);
    assert_int_equal(pthread_create(&f->runner, NULL, run_vm, f), 0);
    f->running = true;
    assert_true(wait_for(all_in_run, NULL));
    assert_int_equal(f->ctl.get_state(f->ctl.opaque), VM_STATE_RUNNING);
}

/* vmm_run returned: join it, destroy the VM, and check nothing is left. */
static int finish(struct fixture *f)
{
    if (f->running)
        pthread_join(f->runner, NULL);
    f->running = false;
    if (f->vmm)
        vmm_destroy(f->vmm);
    f->vmm = NULL;
    return f->status;
}

static void assert_nothing_left(void)
{
    assert_int_equal(fk.open_fds, 0);
    assert_int_equal(fk.in_run, 0);
    assert_int_equal(fk.arch_creates, fk.arch_destroys);
    assert_int_equal(fk.boards_live, 0);
    assert_int_equal(fk.kvm_live, 0);
    assert_int_equal(fk.boards, fk.boards_destroyed);
    assert_int_equal(fk.kvm_inits, fk.kvm_finis);
    assert_true(fk.boots_unloaded >= fk.boots);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->running || f->vmm) {
        if (f->vmm && f->running)
            f->ctl.request(f->ctl.opaque, VM_REQ_HARD_STOP);
        finish(f);
    }
    kvm_sys_replace(NULL);
    return 0;
}

static void test_poweroff(void **state)
{
    struct fixture *f = *state;
    start(f);
    assert_int_equal(fk.vm_creates, 1);
    assert_int_equal(fk.vcpu_inits, NCPUS);
    assert_int_equal(fk.boots, 1);
    script_exit(KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_SHUTDOWN, 0);
    assert_int_equal(finish(f), 0);
    assert_nothing_left();
}

static void test_reboot_rebuilds_the_machine(void **state)
{
    struct fixture *f = *state;
    start(f);
    script_exit(KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_RESET, 0);
    unsigned two = 2;
    assert_true(wait_for(boots_at_least, &two));
    assert_true(wait_for(all_in_run, NULL));
    /* A new KVM VM, board and payload; the VM's own state stays. */
    assert_int_equal(fk.vm_creates, 2);
    assert_int_equal(fk.boards, 2);
    assert_int_equal(fk.boards_destroyed, 1);
    assert_int_equal(fk.vcpu_inits, 2 * NCPUS);
    assert_int_equal(fk.arch_creates, 1);
    assert_int_equal(f->vmm->arch->boots, 2);
    assert_int_equal(f->ctl.get_state(f->ctl.opaque), VM_STATE_RUNNING);
    script_exit(KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_SHUTDOWN, 0);
    assert_int_equal(finish(f), 0);
    assert_nothing_left();
}

static void test_stop_presses_the_power_button(void **state)
{
    struct fixture *f = *state;
    start(f);
    assert_int_equal(f->ctl.request(f->ctl.opaque, VM_REQ_STOP), 0);
    assert_int_equal(fk.power_buttons, 1);
    assert_int_equal(f->ctl.get_state(f->ctl.opaque), VM_STATE_STOPPING);
    /* The guest then powers off. */
    script_exit(KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_SHUTDOWN, 0);
    assert_int_equal(finish(f), 0);
    assert_nothing_left();
}

static void test_hard_stop(void **state)
{
    struct fixture *f = *state;
    start(f);
    assert_int_equal(f->ctl.request(f->ctl.opaque, VM_REQ_HARD_STOP), 0);
    assert_int_equal(finish(f), 0);
    assert_int_equal(fk.power_buttons, 0);
    assert_nothing_left();
}

static void test_pause_parks_every_vcpu(void **state)
{
    struct fixture *f = *state;
    start(f);
    assert_int_equal(f->ctl.request(f->ctl.opaque, VM_REQ_RESUME), -EINVAL);
    assert_int_equal(f->ctl.request(f->ctl.opaque, VM_REQ_PAUSE), 0);
    /* Pause returns once every vCPU is out of KVM_RUN, with the clock frozen. */
    assert_int_equal(f->ctl.get_state(f->ctl.opaque), VM_STATE_PAUSED);
    pthread_mutex_lock(&fk.lock);
    assert_int_equal(fk.in_run, 0);
    assert_int_equal(fk.freezes, 1);
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(f->ctl.request(f->ctl.opaque, VM_REQ_PAUSE), -EINVAL);
    assert_int_equal(f->ctl.request(f->ctl.opaque, VM_REQ_RESUME), 0);
    assert_int_equal(fk.thaws, 1);
    assert_true(wait_for(all_in_run, NULL));
    assert_int_equal(f->ctl.get_state(f->ctl.opaque), VM_STATE_RUNNING);
    /* Stop while paused resumes first, then presses the button. */
    assert_int_equal(f->ctl.request(f->ctl.opaque, VM_REQ_PAUSE), 0);
    assert_int_equal(f->ctl.request(f->ctl.opaque, VM_REQ_STOP), 0);
    assert_int_equal(fk.thaws, 2);
    assert_int_equal(fk.power_buttons, 1);
    assert_int_equal(f->ctl.request(f->ctl.opaque, VM_REQ_HARD_STOP), 0);
    assert_int_equal(finish(f), 0);
    assert_nothing_left();
}

static void test_kvm_run_error_fails_the_vm(void **state)
{
    struct fixture *f = *state;
    start(f);
    log_init(LOG_OFF, -1); /* the failure below is expected */
    script_exit(0, 0, EFAULT);
    int status = finish(f);
    log_init(LOG_INFO, -1);
    assert_int_equal(status, 1);
    assert_nothing_left();
}

static void test_unexpected_exit_fails_the_vm(void **state)
{
    struct fixture *f = *state;
    start(f);
    log_init(LOG_OFF, -1);
    script_exit(KVM_EXIT_IO, 0, 0); /* the fake arch does not handle it */
    assert_true(wait_for(none_in_run, NULL));
    assert_int_equal(f->ctl.get_state(f->ctl.opaque), VM_STATE_ERROR);
    int status = finish(f);
    log_init(LOG_INFO, -1);
    assert_int_equal(status, 1);
    assert_nothing_left();
}

static void test_arch_handled_exit_runs_on(void **state)
{
    struct fixture *f = *state;
    start(f);
    fk.exit_handled_by_arch = true;
    script_exit(KVM_EXIT_IO, 0, 0);
    /* vCPU 0 took the exit and went back into KVM_RUN. */
    assert_true(wait_for(exit_taken_and_all_in_run, NULL));
    assert_int_equal(f->ctl.get_state(f->ctl.opaque), VM_STATE_RUNNING);
    assert_int_equal(f->ctl.request(f->ctl.opaque, VM_REQ_HARD_STOP), 0);
    assert_int_equal(finish(f), 0);
    assert_nothing_left();
}

static void test_create_failure_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    fk.fail_create_vm_at = 1;
    log_init(LOG_OFF, -1);
    int rc = vmm_create(&f->cfg, &f->vmm);
    log_init(LOG_INFO, -1);
    assert_int_equal(rc, -ENOMEM);
    assert_null(f->vmm);
    assert_int_equal(fk.boards, 0);
    assert_nothing_left();
}

static void test_failed_reboot_ends_in_error(void **state)
{
    struct fixture *f = *state;
    start(f);
    fk.fail_create_vm_at = 2;
    log_init(LOG_OFF, -1);
    script_exit(KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_RESET, 0);
    int status = finish(f);
    log_init(LOG_INFO, -1);
    assert_int_equal(status, 1);
    assert_int_equal(fk.vm_creates, 2);
    assert_nothing_left();
}

int main(void)
{
    log_init(LOG_INFO, -1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_poweroff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reboot_rebuilds_the_machine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_presses_the_power_button, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hard_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_parks_every_vcpu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kvm_run_error_fails_the_vm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unexpected_exit_fails_the_vm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arch_handled_exit_runs_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_failure_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_reboot_ends_in_error, setup, teardown),
    };
    return cmocka_run_group_tests_name("vm lifecycle", tests, NULL, NULL);
}
