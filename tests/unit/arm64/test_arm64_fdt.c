/*
 * The arm64 machine's device tree (src/arch/arm64/fdt.c), built for a
 * config and parsed back with libfdt: memory reg, one cpu node per vCPU
 * with its MPIDR and PSCI, the GICv3 and ITS regs, the PCI host's ranges,
 * bus-range and msi-map to the ITS, the devices at virt.h's addresses, and
 * chosen's bootargs, initrd and stdout-path. Pure code: runs on any host
 * (the Makefile's portable tests).
 */
#include <errno.h>
#include <libfdt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/arm64/fdt.h"
#include "arch/arm64/virt.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static const uint64_t mpidr4[4] = {0x80000000, 0x80000001, 0x80000002, 0x80000003};

static struct arm64_fdt_config config(void)
{
    return (struct arm64_fdt_config){
        .ram_base = VIRT_RAM_BASE,
        .ram_size = 1 * GiB,
        .ncpus = 4,
        .mpidr = mpidr4,
        .its = true,
        .mmio64_base = 0x80000000ull + 0 * GiB + GiB, /* 2 GiB: above 1 GiB of RAM at 1 GiB */
        .mmio64_size = VIRT_MMIO64_SIZE,
        .cmdline = "console=hvc0 root=/dev/vda rw",
        .initrd_start = 0x42000000,
        .initrd_end = 0x42345678,
        .kaslr_seed = 0x1122334455667788ull,
        .fw_cfg = true,
    };
}

static void *build_ok(const struct arm64_fdt_config *c)
{
    void *blob = NULL;
    size_t size = 0;
    assert_int_equal(arm64_fdt_build(c, &blob, &size), 0);
    assert_non_null(blob);
    assert_int_equal(fdt_check_header(blob), 0);
    assert_int_equal(fdt_totalsize(blob), size);
    assert_true(size <= 2 * MiB);
    return blob;
}

static int node(const void *fdt, const char *path)
{
    int off = fdt_path_offset(fdt, path);
    if (off < 0)
        fail_msg("no node %s (%s)", path, fdt_strerror(off));
    return off;
}

/* Property as big-endian cells; *n = how many. */
static const fdt32_t *cells(const void *fdt, int off, const char *name, int *n)
{
    int len = 0;
    const fdt32_t *p = fdt_getprop(fdt, off, name, &len);
    if (!p)
        fail_msg("no property %s", name);
    *n = len / 4;
    return p;
}

static uint64_t cell64(const fdt32_t *p)
{
    return (uint64_t)fdt32_to_cpu(p[0]) << 32 | fdt32_to_cpu(p[1]);
}

static uint32_t prop_u32(const void *fdt, int off, const char *name)
{
    int n;
    const fdt32_t *p = cells(fdt, off, name, &n);
    assert_int_equal(n, 1);
    return fdt32_to_cpu(p[0]);
}

static void assert_reg(const void *fdt, const char *path, uint64_t addr, uint64_t size)
{
    int n;
    const fdt32_t *p = cells(fdt, node(fdt, path), "reg", &n);
    assert_int_equal(n, 4);
    assert_int_equal(cell64(p), addr);
    assert_int_equal(cell64(p + 2), size);
}

static void test_memory_and_root(void **state)
{
    (void)state;
    struct arm64_fdt_config c = config();
    void *fdt = build_ok(&c);
    int root = node(fdt, "/");
    assert_int_equal(prop_u32(fdt, root, "#address-cells"), 2);
    assert_int_equal(prop_u32(fdt, root, "#size-cells"), 2);
    assert_int_equal(prop_u32(fdt, root, "interrupt-parent"), FDT_PHANDLE_GIC);
    assert_reg(fdt, "/memory@40000000", VIRT_RAM_BASE, 1 * GiB);
    assert_string_equal(fdt_getprop(fdt, node(fdt, "/memory@40000000"), "device_type", NULL),
                        "memory");
    free(fdt);
}

static void test_cpus(void **state)
{
    (void)state;
    struct arm64_fdt_config c = config();
    /* MPIDRs of vCPU ids past 15 (KVM puts id >> 4 in Aff1): reg keeps Aff1 and drops bit 31. */
    uint64_t mpidr[17];
    for (unsigned i = 0; i < 17; i++)
        mpidr[i] = 0x80000000ull | ((uint64_t)(i >> 4) << 8) | (i & 15);
    c.ncpus = 17;
    c.mpidr = mpidr;
    void *fdt = build_ok(&c);
    int cpus = node(fdt, "/cpus");
    assert_int_equal(prop_u32(fdt, cpus, "#address-cells"), 1);
    assert_int_equal(prop_u32(fdt, cpus, "#size-cells"), 0);
    unsigned count = 0;
    int off;
    fdt_for_each_subnode(off, fdt, cpus)
    {
        const char *type = fdt_getprop(fdt, off, "device_type", NULL);
        assert_non_null(type);
        assert_string_equal(type, "cpu");
        assert_string_equal(fdt_getprop(fdt, off, "enable-method", NULL), "psci");
        assert_int_equal(prop_u32(fdt, off, "reg"), mpidr[count] & 0xffffff);
        count++;
    }
    assert_int_equal(count, 17);
    node(fdt, "/cpus/cpu@100"); /* vCPU 16: Aff1 = 1 */
    int psci = node(fdt, "/psci");
    assert_string_equal(fdt_getprop(fdt, psci, "method", NULL), "hvc");
    assert_int_equal(fdt_node_check_compatible(fdt, psci, "arm,psci-0.2"), 0);
    int n;
    cells(fdt, node(fdt, "/timer"), "interrupts", &n);
    assert_int_equal(n, 12); /* four PPIs, three cells each */
    free(fdt);
}

static void test_gic_and_its(void **state)
{
    (void)state;
    struct arm64_fdt_config c = config();
    void *fdt = build_ok(&c);
    int gic = node(fdt, "/intc@8000000");
    assert_int_equal(fdt_node_check_compatible(fdt, gic, "arm,gic-v3"), 0);
    assert_non_null(fdt_getprop(fdt, gic, "interrupt-controller", NULL));
    assert_int_equal(prop_u32(fdt, gic, "#interrupt-cells"), 3);
    assert_int_equal(prop_u32(fdt, gic, "phandle"), FDT_PHANDLE_GIC);
    int n;
    const fdt32_t *reg = cells(fdt, gic, "reg", &n);
    assert_int_equal(n, 8);
    assert_int_equal(cell64(reg), VIRT_GICD_BASE);
    assert_int_equal(cell64(reg + 2), VIRT_GICD_SIZE);
    assert_int_equal(cell64(reg + 4), VIRT_GICR_BASE);
    assert_int_equal(cell64(reg + 6), 4 * VIRT_GICR_STRIDE); /* one redistributor per vCPU */
    int its = node(fdt, "/intc@8000000/its@8080000");
    assert_int_equal(fdt_node_check_compatible(fdt, its, "arm,gic-v3-its"), 0);
    assert_non_null(fdt_getprop(fdt, its, "msi-controller", NULL));
    assert_int_equal(prop_u32(fdt, its, "phandle"), FDT_PHANDLE_ITS);
    assert_reg(fdt, "/intc@8000000/its@8080000", VIRT_GITS_BASE, VIRT_GITS_SIZE);
    free(fdt);

    /* Without an ITS: no ITS node and no msi-map. */
    c.its = false;
    fdt = build_ok(&c);
    assert_true(fdt_path_offset(fdt, "/intc@8000000/its@8080000") < 0);
    assert_null(fdt_getprop(fdt, node(fdt, "/pcie@3f000000"), "msi-map", NULL));
    free(fdt);
}

static void test_pci(void **state)
{
    (void)state;
    struct arm64_fdt_config c = config();
    void *fdt = build_ok(&c);
    int pci = node(fdt, "/pcie@3f000000");
    assert_int_equal(fdt_node_check_compatible(fdt, pci, "pci-host-ecam-generic"), 0);
    assert_int_equal(prop_u32(fdt, pci, "#address-cells"), 3);
    assert_reg(fdt, "/pcie@3f000000", VIRT_PCI_ECAM_BASE, 16 * MiB);
    int n;
    const fdt32_t *br = cells(fdt, pci, "bus-range", &n);
    assert_int_equal(n, 2);
    assert_int_equal(fdt32_to_cpu(br[1]), VIRT_PCI_ECAM_BUSES - 1);
    const fdt32_t *r = cells(fdt, pci, "ranges", &n);
    assert_int_equal(n, 14);
    /* 32-bit window: MMIO space, PCI address = CPU address. */
    assert_int_equal(fdt32_to_cpu(r[0]), 0x02000000);
    assert_int_equal(cell64(r + 1), VIRT_PCI_MMIO32_BASE);
    assert_int_equal(cell64(r + 3), VIRT_PCI_MMIO32_BASE);
    assert_int_equal(cell64(r + 5), VIRT_PCI_MMIO32_END - VIRT_PCI_MMIO32_BASE);
    /* 64-bit window above RAM. */
    assert_int_equal(fdt32_to_cpu(r[7]), 0x03000000);
    assert_int_equal(cell64(r + 8), c.mmio64_base);
    assert_int_equal(cell64(r + 10), c.mmio64_base);
    assert_int_equal(cell64(r + 12), VIRT_MMIO64_SIZE);
    /* Every requester id goes to the ITS unchanged. */
    const fdt32_t *m = cells(fdt, pci, "msi-map", &n);
    assert_int_equal(n, 4);
    assert_int_equal(fdt32_to_cpu(m[0]), 0);
    assert_int_equal(fdt32_to_cpu(m[1]), FDT_PHANDLE_ITS);
    assert_int_equal(fdt32_to_cpu(m[2]), 0);
    assert_int_equal(fdt32_to_cpu(m[3]), 0x10000);
    /* No port I/O window: nothing in ranges has the I/O space code. */
    for (int i = 0; i < n; i += 7)
        assert_int_not_equal(fdt32_to_cpu(r[i]) & 0x03000000, 0x01000000);
    free(fdt);
}

static void test_devices(void **state)
{
    (void)state;
    struct arm64_fdt_config c = config();
    void *fdt = build_ok(&c);
    int uart = node(fdt, "/serial@9000000");
    assert_int_equal(fdt_node_check_compatible(fdt, uart, "ns16550a"), 0);
    assert_int_equal(prop_u32(fdt, uart, "reg-shift"), 2);
    int n;
    const fdt32_t *irq = cells(fdt, uart, "interrupts", &n);
    assert_int_equal(n, 3);
    assert_int_equal(fdt32_to_cpu(irq[0]), 0); /* SPI */
    assert_int_equal(fdt32_to_cpu(irq[1]), VIRT_SPI_UART);
    assert_reg(fdt, "/serial@9000000", VIRT_UART_BASE, VIRT_UART_SIZE);
    assert_int_equal(fdt_node_check_compatible(fdt, node(fdt, "/rtc@9010000"), "arm,pl031"), 0);
    assert_int_equal(fdt_node_check_compatible(fdt, node(fdt, "/rtc@9010000"), "arm,primecell"), 0);
    int gpio = node(fdt, "/gpio@9030000");
    assert_int_equal(fdt_node_check_compatible(fdt, gpio, "arm,pl061"), 0);
    assert_int_equal(prop_u32(fdt, gpio, "phandle"), FDT_PHANDLE_GPIO);
    int key = node(fdt, "/gpio-keys/poweroff");
    assert_int_equal(prop_u32(fdt, key, "linux,code"), VIRT_KEY_POWER);
    const fdt32_t *g = cells(fdt, key, "gpios", &n);
    assert_int_equal(n, 3);
    assert_int_equal(fdt32_to_cpu(g[0]), FDT_PHANDLE_GPIO);
    assert_int_equal(fdt32_to_cpu(g[1]), VIRT_GPIO_POWER_LINE);
    /* AMBA devices are probed only with their bus clock. */
    assert_int_equal(prop_u32(fdt, gpio, "clocks"), FDT_PHANDLE_CLK);
    assert_int_equal(prop_u32(fdt, node(fdt, "/apb-pclk"), "phandle"), FDT_PHANDLE_CLK);
    assert_reg(fdt, "/fw-cfg@9020000", VIRT_FW_CFG_BASE, VIRT_FW_CFG_SIZE);
    free(fdt);
}

static void test_chosen(void **state)
{
    (void)state;
    struct arm64_fdt_config c = config();
    void *fdt = build_ok(&c);
    int ch = node(fdt, "/chosen");
    assert_string_equal(fdt_getprop(fdt, ch, "bootargs", NULL), c.cmdline);
    assert_string_equal(fdt_getprop(fdt, ch, "stdout-path", NULL), "/serial@9000000");
    int n;
    assert_int_equal(cell64(cells(fdt, ch, "linux,initrd-start", &n)), 0x42000000);
    assert_int_equal(n, 2);
    assert_int_equal(cell64(cells(fdt, ch, "linux,initrd-end", &n)), 0x42345678);
    assert_int_equal(cell64(cells(fdt, ch, "kaslr-seed", &n)), c.kaslr_seed);
    free(fdt);

    /* No command line, initrd or seed: none of those properties. */
    c.cmdline = NULL;
    c.initrd_start = c.initrd_end = 0;
    c.kaslr_seed = 0;
    fdt = build_ok(&c);
    ch = node(fdt, "/chosen");
    assert_null(fdt_getprop(fdt, ch, "bootargs", NULL));
    assert_null(fdt_getprop(fdt, ch, "linux,initrd-start", NULL));
    assert_null(fdt_getprop(fdt, ch, "kaslr-seed", NULL));
    free(fdt);
}

static void test_long_cmdline_and_limits(void **state)
{
    (void)state;
    struct arm64_fdt_config c = config();
    /* Longer than the first buffer: the builder grows it. */
    char *cmd = malloc(40000);
    assert_non_null(cmd);
    memset(cmd, 'x', 39999);
    cmd[39999] = '\0';
    c.cmdline = cmd;
    void *fdt = build_ok(&c);
    assert_int_equal(strlen(fdt_getprop(fdt, node(fdt, "/chosen"), "bootargs", NULL)), 39999);
    free(fdt);
    free(cmd);

    void *blob = (void *)1;
    size_t size = 1;
    c = config();
    c.ncpus = 0;
    assert_int_equal(arm64_fdt_build(&c, &blob, &size), -EINVAL);
    assert_null(blob);
    c.ncpus = VIRT_MAX_CPUS + 1;
    assert_int_equal(arm64_fdt_build(&c, &blob, &size), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_and_root),
        cmocka_unit_test(test_cpus),
        cmocka_unit_test(test_gic_and_its),
        cmocka_unit_test(test_pci),
        cmocka_unit_test(test_devices),
        cmocka_unit_test(test_chosen),
        cmocka_unit_test(test_long_cmdline_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
