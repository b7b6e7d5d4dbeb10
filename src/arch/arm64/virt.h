/*
 * The arm64 machine's guest-physical map and interrupt numbers. They are
 * the facts of QEMU's "virt" board (hw/arm/virt.c, its base memory map),
 * kept so that AAVMF (ArmVirtQemu) and Linux find their devices where they
 * look for them on that board:
 *
 *   0x00000000  64 MiB + 64 MiB  two CFI flash banks (AAVMF code, variables)
 *   0x08000000  64 KiB           GICv3 distributor
 *   0x08080000  128 KiB          GICv3 ITS (control + translation frames)
 *   0x080a0000  up to 0xf60000   GICv3 redistributors, 128 KiB per vCPU
 *   0x09000000  4 KiB            UART (16550, registers 4 bytes apart)
 *   0x09010000  4 KiB            PL031 RTC
 *   0x09020000  24 bytes         fw_cfg (MMIO flavour)
 *   0x09030000  4 KiB            PL061 GPIO (the power button on line 3)
 *   0x10000000  ~752 MiB         PCI 32-bit MMIO window
 *   0x3f000000  16 MiB           PCIe ECAM, buses 0-15
 *   0x40000000  RAM              (no hole)
 *   above RAM, on a 1 GiB boundary: the 64-bit PCI MMIO window
 *
 * This header is free of <linux/kvm.h> so that the device tree builder
 * (fdt.c) and its unit test compile on any host.
 */
#ifndef KRUNKIT_ARCH_ARM64_VIRT_H
#define KRUNKIT_ARCH_ARM64_VIRT_H

#define VIRT_FLASH_BASE 0x00000000ull
#define VIRT_FLASH_BANK_SIZE 0x04000000ull
#define VIRT_GICD_BASE 0x08000000ull
#define VIRT_GICD_SIZE 0x00010000ull
#define VIRT_GITS_BASE 0x08080000ull
#define VIRT_GITS_SIZE 0x00020000ull
#define VIRT_GICR_BASE 0x080a0000ull
#define VIRT_GICR_REGION 0x00f60000ull
#define VIRT_GICR_STRIDE 0x00020000ull /* RD_base + SGI_base frames, 64 KiB each */
#define VIRT_MAX_CPUS (VIRT_GICR_REGION / VIRT_GICR_STRIDE) /* 123 */
#define VIRT_UART_BASE 0x09000000ull
#define VIRT_UART_SIZE 0x00001000ull
#define VIRT_UART_REG_SHIFT 2
#define VIRT_RTC_BASE 0x09010000ull
#define VIRT_RTC_SIZE 0x00001000ull
#define VIRT_FW_CFG_BASE 0x09020000ull
#define VIRT_FW_CFG_SIZE 0x18ull
#define VIRT_GPIO_BASE 0x09030000ull
#define VIRT_GPIO_SIZE 0x00001000ull
#define VIRT_PCI_MMIO32_BASE 0x10000000ull
#define VIRT_PCI_MMIO32_END 0x3eff0000ull
#define VIRT_PCI_ECAM_BASE 0x3f000000ull
#define VIRT_PCI_ECAM_BUSES 16u
#define VIRT_RAM_BASE 0x40000000ull
#define VIRT_MMIO64_SIZE (64ull << 30)

/*
 * Wired interrupts are SPIs, numbered from 0 as the device tree's second
 * interrupt cell (GIC INTID = 32 + SPI). These are the "line" numbers of
 * arch_kvm_irq_line and hooks->set_irq_line on arm64.
 */
#define VIRT_SPI_UART 1
#define VIRT_SPI_RTC 2
#define VIRT_SPI_GPIO 7
#define VIRT_NR_SPIS 96 /* the vGIC is given 32 private + 96 shared interrupts */
#define GIC_SPI_BASE 32

/* PPIs (device tree cell = INTID - 16): the generic timer and the GIC maintenance IRQ. */
#define VIRT_PPI_TIMER_SEC 13
#define VIRT_PPI_TIMER_NS 14
#define VIRT_PPI_TIMER_VIRT 11
#define VIRT_PPI_TIMER_HYP 10
#define VIRT_PPI_GIC_MAINT 9

/* The power button: PL061 line 3, reported to the guest as KEY_POWER. */
#define VIRT_GPIO_POWER_LINE 3
#define VIRT_KEY_POWER 116

#endif
