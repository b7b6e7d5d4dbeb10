/* Recording vm_hooks and a bus-only machine for unit tests (see fake_hooks.h). */
#include "fake_hooks.h"

#include <errno.h>
#include <string.h>

static int fake_msi_alloc(void *opaque)
{
    struct fake_vm *vm = opaque;
    return vm->next_gsi++;
}

static int fake_msi_set(void *opaque, int gsi, uint64_t addr, uint32_t data, uint32_t devid,
                        bool masked)
{
    struct fake_vm *vm = opaque;
    vm->msi_set_calls++;
    struct fake_route r = {
        .gsi = gsi, .addr = addr, .data = data, .devid = devid, .masked = masked};
    for (unsigned i = 0; i < vm->nr_routes; i++) {
        if (vm->routes[i].gsi == gsi) {
            vm->routes[i] = r;
            return 0;
        }
    }
    if (vm->nr_routes == FAKE_MAX_RECORDS)
        return -ENOSPC;
    vm->routes[vm->nr_routes++] = r;
    return 0;
}

static int fake_irqfd(void *opaque, int efd, int gsi, bool assign)
{
    struct fake_vm *vm = opaque;
    for (unsigned i = 0; i < vm->nr_irqfds; i++) {
        if (vm->irqfds[i].efd == efd && vm->irqfds[i].gsi == gsi) {
            if (assign)
                return -EEXIST;
            vm->irqfds[i] = vm->irqfds[--vm->nr_irqfds];
            return 0;
        }
    }
    if (!assign)
        return -ENOENT;
    if (vm->nr_irqfds == FAKE_MAX_RECORDS)
        return -ENOSPC;
    vm->irqfds[vm->nr_irqfds++] = (struct fake_irqfd){.efd = efd, .gsi = gsi};
    return 0;
}

static int fake_ioeventfd(void *opaque, uint64_t addr, unsigned len, bool pio, int efd, bool assign)
{
    struct fake_vm *vm = opaque;
    for (unsigned i = 0; i < vm->nr_ioeventfds; i++) {
        struct fake_ioeventfd *e = &vm->ioeventfds[i];
        if (e->addr == addr && e->pio == pio && e->efd == efd) {
            if (assign)
                return -EEXIST;
            *e = vm->ioeventfds[--vm->nr_ioeventfds];
            return 0;
        }
    }
    if (!assign)
        return -ENOENT;
    if (vm->nr_ioeventfds == FAKE_MAX_RECORDS)
        return -ENOSPC;
    vm->ioeventfds[vm->nr_ioeventfds++] =
        (struct fake_ioeventfd){.addr = addr, .len = len, .pio = pio, .efd = efd};
    return 0;
}

static int fake_set_irq_line(void *opaque, unsigned line, bool level)
{
    struct fake_vm *vm = opaque;
    (void)line;
    (void)level;
    vm->irq_line_calls++;
    return 0;
}

int fake_vm_init(struct fake_vm *vm, struct guest_mem *mem)
{
    memset(vm, 0, sizeof(*vm));
    vm->next_gsi = FAKE_FIRST_GSI;
    vm->hooks = (struct vm_hooks){
        .msi_alloc = fake_msi_alloc,
        .msi_set = fake_msi_set,
        .irqfd = fake_irqfd,
        .ioeventfd = fake_ioeventfd,
        .set_irq_line = fake_set_irq_line,
        .opaque = vm,
    };
    io_bus_init(&vm->mmio);
    io_bus_init(&vm->pio);
    int rc = pci_bus_init(&vm->pci, &vm->mmio, &vm->pio, 0xc0000000ull, 0xfec00000ull,
                          0x100000000ull << 4, 0x100000000ull << 5);
    if (rc)
        return rc;
    vm->m = (struct machine){
        .mem = mem, .mmio = &vm->mmio, .pio = &vm->pio, .pci = &vm->pci, .hooks = &vm->hooks};
    return 0;
}

void fake_vm_destroy(struct fake_vm *vm)
{
    pci_bus_destroy(&vm->pci);
    io_bus_destroy(&vm->mmio);
    io_bus_destroy(&vm->pio);
}

const struct fake_route *fake_vm_route(const struct fake_vm *vm, int gsi)
{
    for (unsigned i = 0; i < vm->nr_routes; i++)
        if (vm->routes[i].gsi == gsi)
            return &vm->routes[i];
    return NULL;
}

int fake_vm_irqfd(const struct fake_vm *vm, int gsi)
{
    for (unsigned i = 0; i < vm->nr_irqfds; i++)
        if (vm->irqfds[i].gsi == gsi)
            return vm->irqfds[i].efd;
    return -1;
}

int fake_vm_ioeventfd(const struct fake_vm *vm, uint64_t addr)
{
    for (unsigned i = 0; i < vm->nr_ioeventfds; i++)
        if (vm->ioeventfds[i].addr == addr)
            return vm->ioeventfds[i].efd;
    return -1;
}
