/*
 * The flattened device tree that describes the arm64 machine to Linux
 * (Documentation/devicetree/bindings: arm/cpus.yaml, arm/psci.yaml,
 * timer/arm,arch_timer.yaml, interrupt-controller/arm,gic-v3.yaml,
 * pci/host-generic-pci.yaml, pci/pci-msi.txt (msi-map), serial/8250.yaml,
 * rtc/arm,pl031.yaml, gpio/pl061-gpio.yaml, input/gpio-keys.yaml,
 * firmware/qemu,fw-cfg-mmio.yaml; chosen.yaml). Built with libfdt's
 * sequential writer.
 *
 * Pure: no KVM, no arm64 header, so the unit test (tests/unit/arm64/
 * test_arm64_fdt.c) builds it on any host and parses it back.
 */
#ifndef KRUNKIT_ARCH_ARM64_FDT_H
#define KRUNKIT_ARCH_ARM64_FDT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Phandles of the nodes others point at. */
#define FDT_PHANDLE_GIC 1
#define FDT_PHANDLE_ITS 2
#define FDT_PHANDLE_CLK 3
#define FDT_PHANDLE_GPIO 4

struct arm64_fdt_config {
    uint64_t ram_base, ram_size;
    unsigned ncpus;
    const uint64_t *mpidr; /* ncpus MPIDR_EL1 values (the affinity fields are used) */
    bool its;              /* a GICv3 ITS is there: PCI MSIs go through it */
    uint64_t mmio64_base, mmio64_size;
    const char *cmdline;               /* NULL or "" : no bootargs */
    uint64_t initrd_start, initrd_end; /* end == start: no initrd */
    uint64_t kaslr_seed;               /* 0: none */
    bool fw_cfg;                       /* the fw_cfg node */
};

/*
 * Build the tree into a malloc'ed buffer (*blob, *size: the packed total
 * size). -EINVAL for a config that cannot be described (no CPU, too many
 * for the redistributor region), -ENOMEM.
 */
int arm64_fdt_build(const struct arm64_fdt_config *c, void **blob, size_t *size);

#endif
