/*
 * The arm64 machine's device tree (see fdt.h for the bindings followed).
 * Addresses and interrupt numbers are virt.h's. Every node a device needs
 * is described, and nothing the machine does not have: Linux probes
 * exactly what is here.
 *
 * Choices worth knowing:
 * - cpus: reg is MPIDR_EL1's affinity (Aff2..Aff0; Aff3 is 0 for KVM's
 *   vCPU ids below 4096), read from KVM per vCPU, so the GIC's routing and
 *   PSCI CPU_ON agree with it; enable-method "psci" (KVM's PSCI, "hvc").
 * - GIC: GICv3 with one redistributor region sized for the vCPUs; the ITS
 *   is a child node, and the PCI host's msi-map sends every requester id
 *   (bus << 8 | devfn) to it unchanged: KVM's MSI routes carry that same
 *   id (vm_hooks.msi_set's devid). Without an ITS there is no msi-map, and
 *   no MSI (docs/porting.md says why that machine is refused anyway).
 * - PCI: pci-host-ecam-generic, no I/O range (the machine has no port
 *   I/O), no interrupt-map: the virtio devices are MSI-X only and declare
 *   no INTx pin.
 * - The AMBA devices (PL031, PL061) need the apb_pclk clock to be probed.
 */
#include "arch/arm64/fdt.h"

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/arm64/virt.h"

/* Interrupt specifier cells for the GICv3 binding. */
#define GIC_FDT_SPI 0
#define GIC_FDT_PPI 1
#define IRQ_LEVEL_HIGH 4

struct fdt_builder {
    void *fdt;
    int err; /* the first libfdt error */
};

static void chk(struct fdt_builder *b, int rc)
{
    if (rc < 0 && b->err == 0)
        b->err = rc;
}

static void begin(struct fdt_builder *b, const char *name)
{
    chk(b, fdt_begin_node(b->fdt, name));
}

static void begin_at(struct fdt_builder *b, const char *name, uint64_t addr)
{
    char n[64];
    snprintf(n, sizeof(n), "%s@%llx", name, (unsigned long long)addr);
    begin(b, n);
}

static void end(struct fdt_builder *b)
{
    chk(b, fdt_end_node(b->fdt));
}

static void prop_u32(struct fdt_builder *b, const char *name, uint32_t v)
{
    chk(b, fdt_property_u32(b->fdt, name, v));
}

static void prop_u64(struct fdt_builder *b, const char *name, uint64_t v)
{
    chk(b, fdt_property_u64(b->fdt, name, v));
}

static void prop_str(struct fdt_builder *b, const char *name, const char *s)
{
    chk(b, fdt_property_string(b->fdt, name, s));
}

static void prop_empty(struct fdt_builder *b, const char *name)
{
    chk(b, fdt_property(b->fdt, name, NULL, 0));
}

/* A string list ("a\0b\0"): len counts every NUL. */
static void prop_strs(struct fdt_builder *b, const char *name, const char *s, size_t len)
{
    chk(b, fdt_property(b->fdt, name, s, (int)len));
}

/* n cells, host order in, big-endian out. */
static void prop_cells(struct fdt_builder *b, const char *name, const uint32_t *cells, unsigned n)
{
    fdt32_t be[16];
    if (n > 16) {
        chk(b, -FDT_ERR_INTERNAL);
        return;
    }
    for (unsigned i = 0; i < n; i++)
        be[i] = cpu_to_fdt32(cells[i]);
    chk(b, fdt_property(b->fdt, name, be, (int)(n * sizeof(fdt32_t))));
}

/* reg with #address-cells = #size-cells = 2: (addr, size) pairs. */
static void prop_reg2(struct fdt_builder *b, const uint64_t *pairs, unsigned npairs)
{
    uint32_t c[16];
    for (unsigned i = 0; i < npairs && i < 4; i++) {
        c[4 * i] = (uint32_t)(pairs[2 * i] >> 32);
        c[4 * i + 1] = (uint32_t)pairs[2 * i];
        c[4 * i + 2] = (uint32_t)(pairs[2 * i + 1] >> 32);
        c[4 * i + 3] = (uint32_t)pairs[2 * i + 1];
    }
    prop_cells(b, "reg", c, 4 * npairs);
}

static void reg1(struct fdt_builder *b, uint64_t addr, uint64_t size)
{
    uint64_t p[2] = {addr, size};
    prop_reg2(b, p, 1);
}

static void irq(struct fdt_builder *b, uint32_t type, uint32_t nr)
{
    uint32_t c[3] = {type, nr, IRQ_LEVEL_HIGH};
    prop_cells(b, "interrupts", c, 3);
}

static void amba_clock(struct fdt_builder *b)
{
    prop_u32(b, "clocks", FDT_PHANDLE_CLK);
    prop_str(b, "clock-names", "apb_pclk");
}

static void add_chosen(struct fdt_builder *b, const struct arm64_fdt_config *c)
{
    char path[32];
    begin(b, "chosen");
    if (c->cmdline && c->cmdline[0])
        prop_str(b, "bootargs", c->cmdline);
    snprintf(path, sizeof(path), "/serial@%llx", (unsigned long long)VIRT_UART_BASE);
    prop_str(b, "stdout-path", path);
    if (c->initrd_end > c->initrd_start) {
        prop_u64(b, "linux,initrd-start", c->initrd_start);
        prop_u64(b, "linux,initrd-end", c->initrd_end);
    }
    if (c->kaslr_seed)
        prop_u64(b, "kaslr-seed", c->kaslr_seed);
    end(b);
}

static void add_cpus(struct fdt_builder *b, const struct arm64_fdt_config *c)
{
    begin(b, "cpus");
    prop_u32(b, "#address-cells", 1);
    prop_u32(b, "#size-cells", 0);
    for (unsigned i = 0; i < c->ncpus; i++) {
        /* Aff2 (bits 23:16), Aff1 (15:8), Aff0 (7:0); bits 24-31 (MT, U) are not affinity. */
        uint32_t aff = (uint32_t)(c->mpidr[i] & 0xffffffull);
        begin_at(b, "cpu", aff);
        prop_str(b, "device_type", "cpu");
        prop_str(b, "compatible", "arm,arm-v8");
        prop_u32(b, "reg", aff);
        prop_str(b, "enable-method", "psci");
        end(b);
    }
    end(b);
}

static void add_gic(struct fdt_builder *b, const struct arm64_fdt_config *c)
{
    uint64_t regs[4] = {VIRT_GICD_BASE, VIRT_GICD_SIZE, VIRT_GICR_BASE,
                        (uint64_t)c->ncpus * VIRT_GICR_STRIDE};
    begin_at(b, "intc", VIRT_GICD_BASE);
    prop_str(b, "compatible", "arm,gic-v3");
    prop_u32(b, "#interrupt-cells", 3);
    prop_u32(b, "#address-cells", 2);
    prop_u32(b, "#size-cells", 2);
    prop_empty(b, "ranges");
    prop_empty(b, "interrupt-controller");
    prop_u32(b, "#redistributor-regions", 1);
    prop_reg2(b, regs, 2);
    irq(b, GIC_FDT_PPI, VIRT_PPI_GIC_MAINT);
    prop_u32(b, "phandle", FDT_PHANDLE_GIC);
    if (c->its) {
        begin_at(b, "its", VIRT_GITS_BASE);
        prop_str(b, "compatible", "arm,gic-v3-its");
        prop_empty(b, "msi-controller");
        prop_u32(b, "#msi-cells", 1);
        reg1(b, VIRT_GITS_BASE, VIRT_GITS_SIZE);
        prop_u32(b, "phandle", FDT_PHANDLE_ITS);
        end(b);
    }
    end(b);
}

static void add_timer_psci(struct fdt_builder *b)
{
    begin(b, "psci");
    prop_str(b, "compatible", "arm,psci-0.2");
    prop_str(b, "method", "hvc");
    end(b);

    /* Secure, non-secure physical, virtual, hypervisor timers: the binding's order. */
    uint32_t t[12] = {GIC_FDT_PPI, VIRT_PPI_TIMER_SEC,  IRQ_LEVEL_HIGH,
                      GIC_FDT_PPI, VIRT_PPI_TIMER_NS,   IRQ_LEVEL_HIGH,
                      GIC_FDT_PPI, VIRT_PPI_TIMER_VIRT, IRQ_LEVEL_HIGH,
                      GIC_FDT_PPI, VIRT_PPI_TIMER_HYP,  IRQ_LEVEL_HIGH};
    begin(b, "timer");
    prop_str(b, "compatible", "arm,armv8-timer");
    prop_cells(b, "interrupts", t, 12);
    prop_empty(b, "always-on");
    end(b);
}

static void add_platform(struct fdt_builder *b, const struct arm64_fdt_config *c)
{
    static const char pl031[] = "arm,pl031\0arm,primecell";
    static const char pl061[] = "arm,pl061\0arm,primecell";

    begin(b, "apb-pclk");
    prop_str(b, "compatible", "fixed-clock");
    prop_u32(b, "#clock-cells", 0);
    prop_u32(b, "clock-frequency", 24000000);
    prop_str(b, "clock-output-names", "clk24mhz");
    prop_u32(b, "phandle", FDT_PHANDLE_CLK);
    end(b);

    begin_at(b, "serial", VIRT_UART_BASE);
    prop_str(b, "compatible", "ns16550a");
    reg1(b, VIRT_UART_BASE, VIRT_UART_SIZE);
    prop_u32(b, "reg-shift", VIRT_UART_REG_SHIFT);
    prop_u32(b, "reg-io-width", 4);
    prop_u32(b, "clock-frequency", 1843200); /* the 16550's 115200 baud crystal */
    irq(b, GIC_FDT_SPI, VIRT_SPI_UART);
    end(b);

    begin_at(b, "rtc", VIRT_RTC_BASE);
    prop_strs(b, "compatible", pl031, sizeof(pl031));
    reg1(b, VIRT_RTC_BASE, VIRT_RTC_SIZE);
    irq(b, GIC_FDT_SPI, VIRT_SPI_RTC);
    amba_clock(b);
    end(b);

    begin_at(b, "gpio", VIRT_GPIO_BASE);
    prop_strs(b, "compatible", pl061, sizeof(pl061));
    reg1(b, VIRT_GPIO_BASE, VIRT_GPIO_SIZE);
    irq(b, GIC_FDT_SPI, VIRT_SPI_GPIO);
    prop_empty(b, "gpio-controller");
    prop_u32(b, "#gpio-cells", 2);
    amba_clock(b);
    prop_u32(b, "phandle", FDT_PHANDLE_GPIO);
    end(b);

    uint32_t gpios[3] = {FDT_PHANDLE_GPIO, VIRT_GPIO_POWER_LINE, 0 /* active high */};
    begin(b, "gpio-keys");
    prop_str(b, "compatible", "gpio-keys");
    begin(b, "poweroff");
    prop_str(b, "label", "GPIO Key Poweroff");
    prop_u32(b, "linux,code", VIRT_KEY_POWER);
    prop_cells(b, "gpios", gpios, 3);
    end(b);
    end(b);

    if (c->fw_cfg) {
        begin_at(b, "fw-cfg", VIRT_FW_CFG_BASE);
        prop_str(b, "compatible", "qemu,fw-cfg-mmio");
        reg1(b, VIRT_FW_CFG_BASE, VIRT_FW_CFG_SIZE);
        prop_empty(b, "dma-coherent");
        end(b);
    }
}

static void add_pci(struct fdt_builder *b, const struct arm64_fdt_config *c)
{
    uint64_t m32 = VIRT_PCI_MMIO32_BASE, m32_size = VIRT_PCI_MMIO32_END - VIRT_PCI_MMIO32_BASE;
    /* (PCI address: space code, hi, lo; CPU address: hi, lo; size: hi, lo) per window. */
    uint32_t ranges[14] = {
        0x02000000,
        (uint32_t)(m32 >> 32),
        (uint32_t)m32,
        (uint32_t)(m32 >> 32),
        (uint32_t)m32,
        (uint32_t)(m32_size >> 32),
        (uint32_t)m32_size,
        0x03000000,
        (uint32_t)(c->mmio64_base >> 32),
        (uint32_t)c->mmio64_base,
        (uint32_t)(c->mmio64_base >> 32),
        (uint32_t)c->mmio64_base,
        (uint32_t)(c->mmio64_size >> 32),
        (uint32_t)c->mmio64_size,
    };
    uint32_t bus_range[2] = {0, VIRT_PCI_ECAM_BUSES - 1};
    /* Requester ids 0..0xffff map 1:1 onto ITS device ids. */
    uint32_t msi_map[4] = {0, FDT_PHANDLE_ITS, 0, 0x10000};

    begin_at(b, "pcie", VIRT_PCI_ECAM_BASE);
    prop_str(b, "compatible", "pci-host-ecam-generic");
    prop_str(b, "device_type", "pci");
    prop_u32(b, "#address-cells", 3);
    prop_u32(b, "#size-cells", 2);
    prop_u32(b, "linux,pci-domain", 0);
    prop_cells(b, "bus-range", bus_range, 2);
    reg1(b, VIRT_PCI_ECAM_BASE, (uint64_t)VIRT_PCI_ECAM_BUSES << 20);
    prop_cells(b, "ranges", ranges, c->mmio64_size ? 14 : 7);
    prop_empty(b, "dma-coherent");
    if (c->its)
        prop_cells(b, "msi-map", msi_map, 4);
    end(b);
}

static int build(const struct arm64_fdt_config *c, void *buf, size_t size)
{
    struct fdt_builder b = {.fdt = buf};
    static const char compat[] = "linux,dummy-virt";
    chk(&b, fdt_create(buf, (int)size));
    chk(&b, fdt_finish_reservemap(buf));
    begin(&b, "");
    prop_str(&b, "compatible", compat);
    prop_str(&b, "model", "krunkit arm64 virt");
    prop_u32(&b, "#address-cells", 2);
    prop_u32(&b, "#size-cells", 2);
    prop_u32(&b, "interrupt-parent", FDT_PHANDLE_GIC);
    add_chosen(&b, c);
    begin_at(&b, "memory", c->ram_base);
    prop_str(&b, "device_type", "memory");
    reg1(&b, c->ram_base, c->ram_size);
    end(&b);
    add_cpus(&b, c);
    add_gic(&b, c);
    add_timer_psci(&b);
    add_platform(&b, c);
    add_pci(&b, c);
    end(&b);
    chk(&b, fdt_finish(buf));
    return b.err;
}

int arm64_fdt_build(const struct arm64_fdt_config *c, void **blob, size_t *size)
{
    *blob = NULL;
    *size = 0;
    if (c->ncpus == 0 || c->ncpus > VIRT_MAX_CPUS || !c->mpidr)
        return -EINVAL;
    /* Sized for the worst case of a long command line; grown when libfdt says so. */
    for (size_t cap = 16384; cap <= (2u << 20); cap *= 2) {
        void *buf = calloc(1, cap);
        if (!buf)
            return -ENOMEM;
        int rc = build(c, buf, cap);
        if (rc == 0) {
            *blob = buf;
            *size = fdt_totalsize(buf);
            return 0;
        }
        free(buf);
        if (rc != -FDT_ERR_NOSPACE)
            return -EINVAL;
    }
    return -E2BIG; /* booting.rst: a DTB is at most 2 MiB */
}
