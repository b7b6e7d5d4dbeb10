/*
 * The VM: builds the machine from a vm_config (KVM, RAM, board devices,
 * virtio devices, boot payload), runs the vCPUs, and implements the
 * lifecycle behind struct vm_control:
 *
 *   Starting -> Running <-> Paused          (Pause / Resume)
 *   Running  -> Stopping -> Stopped         (Stop: ACPI power button, guest powers off)
 *   any      -> Stopped                     (HardStop, guest power-off)
 *   any      -> Error                       (a vCPU failed)
 *
 * Pausing parks every vCPU outside KVM_RUN, quiesces every device (no
 * device writes guest memory until Resume) and freezes the guest clock
 * (arch_clock_freeze), so guest time does not advance while paused.
 *
 * A guest reset (reboot) rebuilds the machine from the config inside the
 * same process: the struct vmm, and with it the pid, the REST endpoint and
 * the control seam, stay; KVM, RAM, devices and vCPUs are made anew, which
 * is the only complete reset KVM offers.
 */
#include "vmm/vmm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>

#include "core/log.h"
#include "vmm/arch.h"
#include "vmm/host_files.h"
#include "vmm/memory.h"
#include "vmm/timesync.h"
#include "vmm/vm_devices.h"
#include "vmm/vm_internal.h"

static void set_state_locked(struct vmm *vmm, enum vm_state s)
{
    if (vmm->state != s)
        log_debug("VM state %s -> %s", vm_state_name(vmm->state), vm_state_name(s));
    vmm->state = s;
    pthread_cond_broadcast(&vmm->cond);
}

static void kick_all(struct vmm *vmm)
{
    for (unsigned i = 0; vmm->vcpus && i < vmm->ncpus; i++)
        vcpu_kick(&vmm->vcpus[i]);
}

/*
 * End this run of the machine once: every vCPU leaves. With reset the
 * machine is rebuilt and boots again; otherwise vmm_run returns status.
 */
static void vmm_end_run(struct vmm *vmm, int status, enum vm_state final, bool reset)
{
    pthread_mutex_lock(&vmm->lock);
    if (!vmm->ending) {
        vmm->ending = true;
        vmm->reset_requested = reset;
        vmm->exit_status = status;
        set_state_locked(vmm, final);
    } else if (!reset) {
        /* A stop wins over a reboot already under way. */
        vmm->reset_requested = false;
        set_state_locked(vmm, final);
    }
    /* Under the lock: a reboot's teardown frees the vCPUs under it too. */
    kick_all(vmm);
    pthread_mutex_unlock(&vmm->lock);
}

static void vmm_end(struct vmm *vmm, int status, enum vm_state final)
{
    vmm_end_run(vmm, status, final, false);
}

void vmm_guest_poweroff(struct vmm *vmm)
{
    log_info("guest powered off");
    vmm_end(vmm, 0, VM_STATE_STOPPED);
}

void vmm_guest_reset(struct vmm *vmm)
{
    log_info("guest requested a reset: rebooting");
    vmm_end_run(vmm, 0, VM_STATE_STARTING, true);
}

void vmm_fail(struct vmm *vmm, const char *why)
{
    log_error("%s", why);
    vmm_end(vmm, 1, VM_STATE_ERROR);
}

bool vmm_vcpu_may_run(struct vmm *vmm)
{
    pthread_mutex_lock(&vmm->lock);
    while (vmm->pause_requested && !vmm->ending) {
        vmm->parked++;
        pthread_cond_broadcast(&vmm->cond);
        pthread_cond_wait(&vmm->cond, &vmm->lock);
        vmm->parked--;
    }
    bool run = !vmm->ending;
    pthread_mutex_unlock(&vmm->lock);
    return run;
}

static enum vm_state control_state(void *opaque)
{
    struct vmm *vmm = opaque;
    pthread_mutex_lock(&vmm->lock);
    enum vm_state s = vmm->state;
    pthread_mutex_unlock(&vmm->lock);
    return s;
}

static int do_pause_locked(struct vmm *vmm)
{
    set_state_locked(vmm, VM_STATE_PAUSING);
    vmm->pause_requested = true;
    kick_all(vmm);
    while (vmm->parked < vmm->ncpus && !vmm->ending)
        pthread_cond_wait(&vmm->cond, &vmm->lock);
    if (vmm->ending)
        return -EINVAL;
    /*
     * With the vCPUs parked no new request comes; the devices finish or
     * hold what they have, so guest memory stands still until Resume.
     * Under the lock: a reboot or HardStop cannot tear the devices down
     * meanwhile (a disk that never answers keeps them waiting too).
     */
    vm_devices_quiesce(vmm);
    arch_clock_freeze(vmm);
    set_state_locked(vmm, VM_STATE_PAUSED);
    return 0;
}

static void do_resume_locked(struct vmm *vmm)
{
    set_state_locked(vmm, VM_STATE_RESUMING);
    vm_devices_resume(vmm);
    arch_clock_thaw(vmm);
    vmm->pause_requested = false;
    set_state_locked(vmm, VM_STATE_RUNNING);
    /* The guest's clock stood still while paused. */
    if (vmm->timesync)
        timesync_request(vmm->timesync);
}

static int control_request(void *opaque, enum vm_request req)
{
    struct vmm *vmm = opaque;
    int rc = 0;
    if (req == VM_REQ_HARD_STOP) {
        log_info("hard stop requested");
        vmm_end(vmm, 0, VM_STATE_STOPPED);
        return 0;
    }
    pthread_mutex_lock(&vmm->lock);
    enum vm_state s = vmm->state;
    switch (req) {
    case VM_REQ_PAUSE:
        if (s != VM_STATE_RUNNING)
            rc = -EINVAL;
        else
            rc = do_pause_locked(vmm);
        break;
    case VM_REQ_RESUME:
        if (s != VM_STATE_PAUSED)
            rc = -EINVAL;
        else
            do_resume_locked(vmm);
        break;
    case VM_REQ_STOP:
        if (s == VM_STATE_PAUSED)
            do_resume_locked(vmm);
        else if (s != VM_STATE_RUNNING && s != VM_STATE_STOPPING)
            rc = -EINVAL;
        if (rc == 0) {
            log_info("stop requested: pressing the ACPI power button");
            set_state_locked(vmm, VM_STATE_STOPPING);
            /* Under the lock: a reboot cannot tear the board down meanwhile. */
            arch_press_power_button(vmm);
            pthread_mutex_unlock(&vmm->lock);
            return 0;
        }
        break;
    default:
        rc = -EINVAL;
    }
    pthread_mutex_unlock(&vmm->lock);
    return rc;
}

struct vm_control vmm_control(struct vmm *vmm)
{
    return (struct vm_control){
        .get_state = control_state, .request = control_request, .opaque = vmm};
}

/* Devices the VMM cannot build yet are refused by name, never dropped. */
static int check_supported(const struct vm_config *cfg)
{
    for (size_t i = 0; i < cfg->n_devices; i++) {
        if (!vm_device_supported(cfg->devices[i].type)) {
            log_error("--device %s is not implemented yet by this VMM",
                      dev_type_name(cfg->devices[i].type));
            return -ENOTSUP;
        }
    }
    return 0;
}

static int build_machine(struct vmm *vmm)
{
    const struct vm_config *cfg = vmm->cfg;
    struct arch_mem_layout layout;
    arch_memory_layout(vmm, &layout);
    int rc = kvm_vm_create(&vmm->kvm);
    if (rc)
        return rc;
    kvm_vm_hooks(&vmm->kvm, &vmm->hooks);
    rc = guest_mem_create(&vmm->mem, cfg->memory_mib << 20, &layout);
    if (rc)
        return rc;
    for (unsigned i = 0; i < vmm->mem.nr_regions; i++) {
        rc = kvm_vm_map(&vmm->kvm, vmm->mem.regions[i].gpa, vmm->mem.regions[i].size,
                        vmm->mem.regions[i].host, false);
        if (rc < 0)
            return rc;
    }
    rc = arch_kvm_init(vmm);
    if (rc)
        return rc;
    io_bus_init(&vmm->mmio);
    io_bus_init(&vmm->pio);
    /* The 64-bit BAR window: on a 1 GiB boundary above the end of RAM. */
    uint64_t ram_end = guest_mem_end(&vmm->mem);
    uint64_t mmio64 = (ram_end + (1ull << 30) - 1) & ~((1ull << 30) - 1);
    if (mmio64 < layout.hole_end && layout.hole_end != UINT64_MAX)
        mmio64 = layout.hole_end;
    rc = pci_bus_init(&vmm->pci, &vmm->mmio, layout.has_pio ? &vmm->pio : NULL, layout.mmio32_base,
                      layout.mmio32_end, mmio64, mmio64 + layout.mmio64_size);
    if (rc)
        return rc;
    vmm->machine = (struct machine){.mem = &vmm->mem,
                                    .mmio = &vmm->mmio,
                                    .pio = layout.has_pio ? &vmm->pio : NULL,
                                    .pci = &vmm->pci,
                                    .hooks = &vmm->hooks};
    return arch_board_create(vmm);
}

/* Build KVM, RAM, board, vCPUs and devices, and load the boot payload. */
static int machine_start(struct vmm *vmm)
{
    int rc = build_machine(vmm);
    if (rc == 0) {
        struct vcpu *vcpus = calloc(vmm->ncpus, sizeof(*vcpus));
        pthread_mutex_lock(&vmm->lock);
        vmm->vcpus = vcpus;
        pthread_mutex_unlock(&vmm->lock);
        if (!vcpus)
            rc = -ENOMEM;
        for (unsigned i = 0; rc == 0 && i < vmm->ncpus; i++)
            rc = vcpu_create(&vmm->vcpus[i], vmm, i);
    }
    if (rc == 0)
        rc = vm_devices_create(vmm);
    if (rc == 0)
        rc = arch_boot_load(vmm);
    return rc;
}

/* Undo machine_start, whatever part of it ran. The vCPU threads have ended. */
static void machine_teardown(struct vmm *vmm)
{
    arch_boot_unload(vmm);
    pthread_mutex_lock(&vmm->lock);
    vm_devices_destroy(vmm);
    arch_board_destroy(vmm);
    struct vcpu *vcpus = vmm->vcpus;
    vmm->vcpus = NULL;
    pthread_mutex_unlock(&vmm->lock);
    for (unsigned i = 0; vcpus && i < vmm->ncpus; i++)
        if (vcpus[i].vmm)
            vcpu_destroy(&vcpus[i]);
    free(vcpus);
    if (vmm->pci.mmio)
        pci_bus_destroy(&vmm->pci);
    memset(&vmm->pci, 0, sizeof(vmm->pci));
    if (vmm->mmio.cap || vmm->pio.cap) {
        io_bus_destroy(&vmm->mmio);
        io_bus_destroy(&vmm->pio);
    }
    memset(&vmm->mmio, 0, sizeof(vmm->mmio));
    memset(&vmm->pio, 0, sizeof(vmm->pio));
    if (vmm->mem.nr_regions)
        guest_mem_destroy(&vmm->mem);
    arch_kvm_fini(vmm);
    if (vmm->kvm.routing)
        kvm_vm_destroy(&vmm->kvm);
    memset(&vmm->kvm, 0, sizeof(vmm->kvm));
}

int vmm_create(const struct vm_config *cfg, struct vmm **out)
{
    *out = NULL;
    int rc = check_supported(cfg);
    if (rc)
        return rc;
    struct vmm *vmm = calloc(1, sizeof(*vmm));
    if (!vmm)
        return -ENOMEM;
    vmm->cfg = cfg;
    vmm->state = VM_STATE_STARTING;
    pthread_mutex_init(&vmm->lock, NULL);
    pthread_cond_init(&vmm->cond, NULL);
    vmm->ncpus = cfg->cpus;
    /* RFC 4122 version 4 (random) UUID. */
    if (getrandom(vmm->uuid, sizeof(vmm->uuid), 0) != sizeof(vmm->uuid))
        memset(vmm->uuid, 0x5a, sizeof(vmm->uuid));
    vmm->uuid[6] = (uint8_t)((vmm->uuid[6] & 0x0f) | 0x40);
    vmm->uuid[8] = (uint8_t)((vmm->uuid[8] & 0x3f) | 0x80);
    if (cfg->timesync)
        rc = timesync_create(cfg->timesync_port, &vmm->timesync);
    if (rc == 0)
        rc = backends_open(cfg, vmm->timesync ? timesync_vsock(vmm->timesync) : NULL,
                           &vmm->backends);
    if (rc == 0)
        rc = arch_create(vmm);
    if (rc == 0)
        rc = machine_start(vmm);
    if (rc) {
        vmm->failed_start = true;
        vmm_destroy(vmm);
        return rc;
    }
    /* Built once: a reboot rebuilds from what is open now, never by path. */
    host_files_seal();
    log_debug("machine built: %u vCPUs, %llu MiB, %u virtio devices", vmm->ncpus,
              (unsigned long long)cfg->memory_mib, vmm->nr_virtio);
    *out = vmm;
    return 0;
}

/* One boot of the machine: start the vCPUs, wait until they have all left. */
static void run_vcpus(struct vmm *vmm)
{
    pthread_mutex_lock(&vmm->lock);
    set_state_locked(vmm, VM_STATE_RUNNING);
    pthread_mutex_unlock(&vmm->lock);
    for (unsigned i = 0; i < vmm->ncpus; i++) {
        int rc = vcpu_start(&vmm->vcpus[i]);
        if (rc) {
            log_error("starting vCPU %u: %s", i, strerror(-rc));
            vmm_end(vmm, 1, VM_STATE_ERROR);
            break;
        }
    }
    for (unsigned i = 0; i < vmm->ncpus; i++)
        vcpu_join(&vmm->vcpus[i]);
}

int vmm_run(struct vmm *vmm)
{
    for (;;) {
        run_vcpus(vmm);
        pthread_mutex_lock(&vmm->lock);
        bool reboot = vmm->reset_requested;
        pthread_mutex_unlock(&vmm->lock);
        if (!reboot)
            break;
        machine_teardown(vmm);
        int rc = machine_start(vmm);
        pthread_mutex_lock(&vmm->lock);
        /* A HardStop or Stop that arrived during the rebuild ends it here. */
        bool stop = !vmm->reset_requested;
        vmm->ending = stop || rc != 0;
        vmm->reset_requested = false;
        vmm->pause_requested = false;
        if (rc) {
            log_error("rebooting: the machine could not be rebuilt");
            vmm->exit_status = 1;
            set_state_locked(vmm, VM_STATE_ERROR);
        }
        pthread_mutex_unlock(&vmm->lock);
        if (rc || stop)
            break;
    }
    return vmm->exit_status;
}

void vmm_destroy(struct vmm *vmm)
{
    if (!vmm)
        return;
    vmm_end(vmm, vmm->exit_status,
            vmm->state == VM_STATE_ERROR ? VM_STATE_ERROR : VM_STATE_STOPPED);
    for (unsigned i = 0; vmm->vcpus && i < vmm->ncpus; i++)
        vcpu_join(&vmm->vcpus[i]);
    machine_teardown(vmm);
    arch_destroy(vmm);
    backends_close(&vmm->backends, vmm->failed_start);
    host_files_close_all();
    timesync_destroy(vmm->timesync);
    pthread_mutex_destroy(&vmm->lock);
    pthread_cond_destroy(&vmm->cond);
    free(vmm);
}
