/*
 * KVM VM-level setup (Documentation/virt/kvm/api.rst), the part every
 * architecture shares: VM creation, memory slots, the GSI routing table,
 * irqfd and ioeventfd. The irqchip and the wired routes are the arch's
 * (arch_kvm_init: on x86 the PIC/IOAPIC/PIT and the ISA routes).
 *
 * KVM_SET_GSI_ROUTING replaces the whole table, so the table is kept here
 * and resent whole: the arch's irqchip routes first, then MSI routes from
 * the arch's first MSI GSI on.
 */
#include "vmm/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/arch.h"
#include "vmm/kvm_sys.h"

static int routing_commit(struct kvm_vm *k)
{
    if (kvm_ioctl(k->vm_fd, KVM_SET_GSI_ROUTING, k->routing) < 0) {
        int err = -errno;
        log_error("KVM_SET_GSI_ROUTING: %m");
        return err;
    }
    return 0;
}

static int routing_init(struct kvm_vm *k)
{
    size_t n = KVM_MAX_GSI + KVM_MAX_IRQCHIP_ROUTES;
    k->routing = calloc(1, sizeof(*k->routing) + n * sizeof(struct kvm_irq_routing_entry));
    return k->routing ? 0 : -ENOMEM;
}

int kvm_vm_route_irqchip(struct kvm_vm *k, unsigned gsi, unsigned chip, unsigned pin)
{
    struct kvm_irq_routing *r = k->routing;
    if (r->nr >= KVM_MAX_IRQCHIP_ROUTES || gsi >= KVM_MAX_GSI)
        return -ENOSPC;
    struct kvm_irq_routing_entry *e = &r->entries[r->nr++];
    memset(e, 0, sizeof(*e));
    e->gsi = gsi;
    e->type = KVM_IRQ_ROUTING_IRQCHIP;
    e->u.irqchip.irqchip = chip;
    e->u.irqchip.pin = pin;
    return 0;
}

int kvm_vm_routing_start(struct kvm_vm *k, unsigned first_msi_gsi)
{
    if (first_msi_gsi >= KVM_MAX_GSI)
        return -EINVAL;
    k->first_msi_gsi = first_msi_gsi;
    k->next_gsi = first_msi_gsi;
    return routing_commit(k);
}

int kvm_vm_create(struct kvm_vm *k)
{
    memset(k, 0, sizeof(*k));
    k->vm_fd = -1;
    pthread_mutex_init(&k->gsi_lock, NULL);
    k->kvm_fd = kvm_sys()->open_kvm();
    if (k->kvm_fd < 0) {
        int err = -errno;
        log_error("cannot open /dev/kvm: %m (KVM is required: load the kvm module for this "
                  "CPU and check permissions)");
        return err;
    }
    int rc = -ENODEV;
    if (kvm_ioctl_int(k->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
        log_error("/dev/kvm: unsupported KVM API version");
        goto fail;
    }
    static const struct {
        int cap;
        const char *name;
    } needed[] = {
        {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
        {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
        {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
        {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING"},
        {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
        {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    };
    for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
        if (kvm_ioctl_int(k->kvm_fd, KVM_CHECK_EXTENSION, (unsigned long)needed[i].cap) <= 0) {
            log_error("/dev/kvm lacks %s", needed[i].name);
            goto fail;
        }
    }
    k->vcpu_mmap_size = kvm_ioctl_int(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    k->vm_fd = kvm_ioctl_int(k->kvm_fd, KVM_CREATE_VM, arch_kvm_vm_type(k->kvm_fd));
    if (k->vm_fd < 0 || k->vcpu_mmap_size <= 0) {
        rc = -errno;
        log_error("KVM_CREATE_VM: %m");
        goto fail;
    }
    rc = routing_init(k);
    if (rc)
        goto fail;
    return 0;
fail:
    kvm_vm_destroy(k);
    return rc;
}

void kvm_vm_destroy(struct kvm_vm *k)
{
    if (k->vm_fd >= 0)
        kvm_sys()->close(k->vm_fd);
    if (k->kvm_fd >= 0)
        kvm_sys()->close(k->kvm_fd);
    k->vm_fd = k->kvm_fd = -1;
    free(k->routing);
    k->routing = NULL;
}

int kvm_vm_remap(struct kvm_vm *k, int slot, uint64_t gpa, uint64_t size, void *host, bool readonly)
{
    struct kvm_userspace_memory_region r = {
        .slot = (uint32_t)slot,
        .flags = readonly ? KVM_MEM_READONLY : 0,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)host,
    };
    if (kvm_ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
        int err = -errno;
        log_error("KVM_SET_USER_MEMORY_REGION slot %d at 0x%llx (+0x%llx): %m", slot,
                  (unsigned long long)gpa, (unsigned long long)size);
        return err;
    }
    return 0;
}

int kvm_vm_map(struct kvm_vm *k, uint64_t gpa, uint64_t size, void *host, bool readonly)
{
    int slot = (int)k->next_slot;
    int rc = kvm_vm_remap(k, slot, gpa, size, host, readonly);
    if (rc)
        return rc;
    k->next_slot++;
    return slot;
}

static int hook_msi_alloc(void *opaque)
{
    struct kvm_vm *k = opaque;
    pthread_mutex_lock(&k->gsi_lock);
    int gsi = k->next_gsi < KVM_MAX_GSI ? (int)k->next_gsi++ : -ENOSPC;
    pthread_mutex_unlock(&k->gsi_lock);
    return gsi;
}

static int hook_msi_set(void *opaque, int gsi, uint64_t addr, uint32_t data, uint32_t devid,
                        bool masked)
{
    struct kvm_vm *k = opaque;
    if (gsi < (int)k->first_msi_gsi || gsi >= KVM_MAX_GSI)
        return -EINVAL;
    pthread_mutex_lock(&k->gsi_lock);
    struct kvm_irq_routing *r = k->routing;
    unsigned i;
    for (i = 0; i < r->nr; i++)
        if (r->entries[i].gsi == (unsigned)gsi)
            break;
    if (masked) {
        if (i < r->nr)
            r->entries[i] = r->entries[--r->nr];
    } else {
        if (i == r->nr)
            r->nr++;
        struct kvm_irq_routing_entry *e = &r->entries[i];
        memset(e, 0, sizeof(*e));
        e->gsi = (unsigned)gsi;
        e->type = KVM_IRQ_ROUTING_MSI;
        e->u.msi.address_lo = (uint32_t)addr;
        e->u.msi.address_hi = (uint32_t)(addr >> 32);
        e->u.msi.data = data;
        if (k->msi_devid) {
            e->flags = KVM_MSI_VALID_DEVID;
            e->u.msi.devid = devid;
        }
    }
    int rc = routing_commit(k);
    pthread_mutex_unlock(&k->gsi_lock);
    return rc;
}

static int hook_irqfd(void *opaque, int efd, int gsi, bool assign)
{
    struct kvm_vm *k = opaque;
    struct kvm_irqfd f = {
        .fd = (uint32_t)efd, .gsi = (uint32_t)gsi, .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN};
    if (kvm_ioctl(k->vm_fd, KVM_IRQFD, &f) < 0) {
        int err = -errno;
        log_error("KVM_IRQFD gsi %d: %m", gsi);
        return err;
    }
    return 0;
}

static int hook_ioeventfd(void *opaque, uint64_t addr, unsigned len, bool pio, int efd, bool assign)
{
    struct kvm_vm *k = opaque;
    struct kvm_ioeventfd e = {
        .addr = addr,
        .len = len,
        .fd = efd,
        .flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
    };
    if (kvm_ioctl(k->vm_fd, KVM_IOEVENTFD, &e) < 0) {
        int err = -errno;
        log_error("KVM_IOEVENTFD at 0x%llx: %m", (unsigned long long)addr);
        return err;
    }
    return 0;
}

static int hook_set_irq_line(void *opaque, unsigned line, bool level)
{
    return arch_kvm_irq_line(opaque, line, level);
}

void kvm_vm_hooks(struct kvm_vm *k, struct vm_hooks *h)
{
    *h = (struct vm_hooks){
        .msi_alloc = hook_msi_alloc,
        .msi_set = hook_msi_set,
        .irqfd = hook_irqfd,
        .ioeventfd = hook_ioeventfd,
        .set_irq_line = hook_set_irq_line,
        .opaque = k,
    };
}
