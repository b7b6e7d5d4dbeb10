/*
 * The arm64 board around the CPUs (arch_board_* of vmm/arch.h), at the
 * addresses of QEMU's virt board (virt.h):
 *
 * - the console UART: a 16550 on MMIO with registers 4 bytes apart
 *   (hw/serial.c, reg-shift 2 in the device tree), not a PL011. The virtio
 *   console is the guest's main console; the UART carries early and
 *   emergency output, for which Linux's 8250 driver (earlycon
 *   "uart8250,mmio32", of_serial) is as good, and the 16550 model is the
 *   one the PC already uses and tests. AAVMF's own serial output expects a
 *   PL011: that comes with EFI boot (docs/porting.md);
 * - a PL031 RTC, so the guest reads the wall-clock time at boot;
 * - a PL061 GPIO whose line 3 is the power button (a gpio-keys KEY_POWER
 *   in the device tree, as on QEMU's virt board): a REST Stop presses it
 *   and the guest's power key handling shuts down with PSCI SYSTEM_OFF;
 * - the PCIe host bridge as ECAM (hw/pci_ecam.c, 16 buses);
 * - fw_cfg on MMIO (the CPU count), for the guest's qemu_fw_cfg driver
 *   now and AAVMF later.
 * The virtio devices are vmm/vm_devices.c's.
 */
#include "arch/arm64/arm64.h"

#include <errno.h>
#include <stdlib.h>

#include "arch/arm64/amba.h"
#include "core/log.h"
#include "hw/fw_cfg.h"
#include "hw/pci_ecam.h"
#include "hw/serial.h"
#include "virtio/devices.h" /* console_host_write */
#include "vmm/vm_internal.h"

struct arm64_board {
    struct serial *uart;
    struct pl031 *rtc;
    struct pl061 *gpio;
    struct fw_cfg *fw_cfg;
    struct pci_ecam ecam;
    /* What is registered on the MMIO bus, to unregister exactly that. */
    bool uart_on, rtc_on, gpio_on, fw_cfg_on;
};

/* The UART goes where the virtio console goes (early and emergency kernel output). */
static void uart_write(void *opaque, const uint8_t *buf, size_t len)
{
    struct vmm *vmm = opaque;
    if (vmm->backends.com1)
        console_host_write(vmm->backends.com1, buf, len);
}

int arch_board_create(struct vmm *vmm)
{
    struct arm64_board *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    vmm->arch->board = b;
    struct serial_backend sb = {.write = uart_write, .opaque = vmm};
    b->uart = serial_create(&vmm->hooks, VIRT_SPI_UART, &sb);
    b->rtc = pl031_create(NULL);
    b->gpio = pl061_create(&vmm->hooks, VIRT_SPI_GPIO);
    b->fw_cfg = fw_cfg_create(&vmm->mem);
    if (!b->uart || !b->rtc || !b->gpio || !b->fw_cfg)
        return -ENOMEM;
    int rc = serial_register(b->uart, &vmm->mmio, VIRT_UART_BASE, VIRT_UART_REG_SHIFT);
    b->uart_on = rc == 0;
    if (rc == 0) {
        rc = io_bus_register(&vmm->mmio, VIRT_RTC_BASE, AMBA_WINDOW, &pl031_io_ops, b->rtc);
        b->rtc_on = rc == 0;
    }
    if (rc == 0) {
        rc = io_bus_register(&vmm->mmio, VIRT_GPIO_BASE, AMBA_WINDOW, &pl061_io_ops, b->gpio);
        b->gpio_on = rc == 0;
    }
    rc = rc ?: fw_cfg_add_u16(b->fw_cfg, FW_CFG_NB_CPUS, (uint16_t)vmm->ncpus);
    if (rc == 0) {
        rc = fw_cfg_register_mmio(b->fw_cfg, &vmm->mmio, VIRT_FW_CFG_BASE);
        b->fw_cfg_on = rc == 0;
    }
    rc = rc
             ?: pci_ecam_init(&b->ecam, &vmm->pci, &vmm->mmio, VIRT_PCI_ECAM_BASE,
                              VIRT_PCI_ECAM_BUSES);
    if (rc)
        log_error("arm64: cannot build the board: %s", strerror(-rc));
    return rc;
}

void arch_press_power_button(struct vmm *vmm)
{
    struct arm64_board *b = vmm->arch ? vmm->arch->board : NULL;
    if (b && b->gpio)
        pl061_press(b->gpio, VIRT_GPIO_POWER_LINE);
}

void arch_board_destroy(struct vmm *vmm)
{
    struct arm64_board *b = vmm->arch ? vmm->arch->board : NULL;
    if (!b)
        return;
    pci_ecam_destroy(&b->ecam);
    if (b->fw_cfg_on)
        io_bus_unregister(&vmm->mmio, VIRT_FW_CFG_BASE);
    if (b->gpio_on)
        io_bus_unregister(&vmm->mmio, VIRT_GPIO_BASE);
    if (b->rtc_on)
        io_bus_unregister(&vmm->mmio, VIRT_RTC_BASE);
    if (b->uart_on)
        io_bus_unregister(&vmm->mmio, VIRT_UART_BASE);
    if (b->fw_cfg)
        fw_cfg_destroy(b->fw_cfg);
    pl061_destroy(b->gpio);
    pl031_destroy(b->rtc);
    if (b->uart)
        serial_destroy(b->uart);
    free(b);
    vmm->arch->board = NULL;
}
