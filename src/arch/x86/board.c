/*
 * The PC board around the CPUs (arch_board_* of vmm/arch.h): the i440FX
 * host bridge with PIIX3 ISA and PIIX4 ACPI functions, and the legacy
 * devices at their ISA ports (COM1, i8042, CMOS/RTC, ACPI PM, reset
 * control), with machine events (S5 power-off, reset) routed to the VM
 * lifecycle; and the ACPI tables describing it for a direct Linux boot.
 * The virtio devices are vmm/vm_devices.c's.
 */
#include "arch/x86/x86.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/e820.h"
#include "arch/x86/i440fx.h"
#include "core/log.h"
#include "vmm/memory.h"
#include "arch/x86/acpi_pm.h"
#include "arch/x86/cmos.h"
#include "arch/x86/i8042.h"
#include "arch/x86/piix.h"
#include "hw/platform.h"
#include "arch/x86/reset.h"
#include "hw/serial.h"
#include "virtio/devices.h" /* console_host_write */
#include "vmm/vm_internal.h"

struct platform {
    struct platform_events events;
    struct serial *com1;
    struct i8042 *kbc;
    struct cmos *cmos;
    struct acpi_pm *pm;
    struct reset_ctl *reset;
    struct i440fx host;
    struct pci_device piix_isa, piix_pm;
};

static void on_poweroff(void *opaque)
{
    vmm_guest_poweroff(opaque);
}

static void on_reset(void *opaque)
{
    vmm_guest_reset(opaque);
}

/* COM1 goes where the virtio console goes (firmware and early kernel output). */
static void com1_write(void *opaque, const uint8_t *buf, size_t len)
{
    struct vmm *vmm = opaque;
    if (vmm->backends.com1)
        console_host_write(vmm->backends.com1, buf, len);
}

int arch_board_create(struct vmm *vmm)
{
    struct platform *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    vmm->arch->platform = p;
    p->events = (struct platform_events){.poweroff = on_poweroff, .reset = on_reset, .opaque = vmm};
    struct serial_backend sb = {.write = com1_write, .opaque = vmm};
    p->com1 = serial_create(&vmm->hooks, SERIAL_COM1_IRQ, &sb);
    p->kbc = i8042_create(&vmm->hooks, &p->events);
    p->cmos = cmos_create(NULL, NULL);
    p->pm = acpi_pm_create(&vmm->hooks, &p->events, NULL, NULL);
    p->reset = reset_ctl_create(&p->events);
    if (!p->com1 || !p->kbc || !p->cmos || !p->pm || !p->reset)
        return -ENOMEM;
    /* Port 0x61 is the in-kernel PIT's (KVM_PIT_SPEAKER_DUMMY), so not mapped here. */
    int rc = serial_register(p->com1, &vmm->pio, SERIAL_COM1_BASE, 0);
    rc = rc ?: i8042_register(p->kbc, &vmm->pio);
    rc = rc ?: cmos_register(p->cmos, &vmm->pio);
    rc = rc ?: acpi_pm_register(p->pm, &vmm->pio);
    rc = rc ?: reset_ctl_register(p->reset, &vmm->pio);
    if (rc)
        return rc;
    uint64_t low = guest_mem_low_end(&vmm->mem);
    cmos_set_memory(p->cmos, low, vmm->mem.ram_size - low);
    cmos_set_cpus(p->cmos, vmm->ncpus);
    /* The host bridge at 00.0, then PIIX in slot 1, before virtio takes free slots. */
    rc = i440fx_init(&p->host, &vmm->pci, &vmm->pio, reset_ctl_write, p->reset);
    if (rc)
        return rc;
    piix3_isa_init(&p->piix_isa);
    rc = pci_register(&vmm->pci, &p->piix_isa, PIIX_ISA_DEVFN);
    if (rc == 0) {
        piix4_pm_init(&p->piix_pm, p->pm);
        rc = pci_register(&vmm->pci, &p->piix_pm, PIIX_PM_DEVFN);
    }
    return rc;
}

int x86_board_write_acpi(struct vmm *vmm, uint64_t *rsdp)
{
    struct acpi_layout l = {
        .ncpus = vmm->ncpus,
        .pci_hole_start = X86_PCI_HOLE_START,
        .pci_hole_end = X86_MMIO32_END,
        .mmio64_base = vmm->pci.mmio64_next,
        .mmio64_size = vmm->pci.mmio64_end - vmm->pci.mmio64_next,
    };
    int rc = acpi_install(&l, &vmm->mem, E820_BIOS_START, E820_1M - E820_BIOS_START, rsdp);
    if (rc)
        log_error("cannot build the ACPI tables: %s", strerror(-rc));
    return rc;
}

void arch_press_power_button(struct vmm *vmm)
{
    struct platform *p = vmm->arch->platform;
    if (p && p->pm)
        acpi_pm_press_power_button(p->pm);
}

void arch_board_destroy(struct vmm *vmm)
{
    struct platform *p = vmm->arch ? vmm->arch->platform : NULL;
    if (!p)
        return;
    i440fx_destroy(&p->host);
    if (p->piix_isa.bus)
        pci_unregister(&vmm->pci, &p->piix_isa);
    if (p->piix_pm.bus)
        pci_unregister(&vmm->pci, &p->piix_pm);
    if (p->com1)
        serial_destroy(p->com1);
    if (p->kbc)
        i8042_destroy(p->kbc);
    if (p->cmos)
        cmos_destroy(p->cmos);
    if (p->pm)
        acpi_pm_destroy(p->pm);
    if (p->reset)
        reset_ctl_destroy(p->reset);
    free(p);
    vmm->arch->platform = NULL;
}
