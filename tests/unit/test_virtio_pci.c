/*
 * The virtio-pci transport (src/virtio/pci.c), driven the way a guest
 * driver does it: PCI configuration space (pci_config_read/write) and the
 * BAR through the MMIO bus of a fake machine whose vm_hooks record what
 * the device asked of KVM. The device under test is virtio-rng, the
 * simplest one.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/fake_guest_mem.h"
#include "support/fake_hooks.h"
#include "support/virtio_driver.h"
#include "virtio/devices.h"
#include "virtio/pci.h"

#define RAM_SIZE (2u << 20)
#define HEAP_START 0x10000
#define WAIT_MS 5000

struct fixture {
    struct guest_mem gm;
    struct fake_vm vm;
    struct virtio_dev *dev;
    struct vdrv drv;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(fake_guest_mem_init(&f->gm, 0, RAM_SIZE), 0);
    assert_int_equal(fake_vm_init(&f->vm, &f->gm), 0);
    assert_int_equal(virtio_rng_create(&f->vm.m, &f->dev), 0);
    vdrv_init(&f->drv, &f->vm, virtio_pci_function(f->dev), HEAP_START, RAM_SIZE);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    virtio_dev_destroy(f->dev);
    /* Everything the device attached to the VM is detached again. */
    assert_int_equal(f->vm.nr_irqfds, 0);
    assert_int_equal(f->vm.nr_ioeventfds, 0);
    fake_vm_destroy(&f->vm);
    fake_guest_mem_free(&f->gm);
    free(f);
    return 0;
}

/* Offset of the vendor capability of cfg_type, or -1. */
static int find_virtio_cap(struct pci_device *p, uint8_t type)
{
    unsigned off = pci_config_read(p, PCI_CAPABILITY_LIST, 1);
    for (int n = 0; off && n < 48; n++) {
        if (pci_config_read(p, off, 1) == PCI_CAP_ID_VNDR && pci_config_read(p, off + 3, 1) == type)
            return (int)off;
        off = pci_config_read(p, off + 1, 1);
    }
    return -1;
}

static int find_cap(struct pci_device *p, uint8_t id)
{
    unsigned off = pci_config_read(p, PCI_CAPABILITY_LIST, 1);
    for (int n = 0; off && n < 48; n++) {
        if (pci_config_read(p, off, 1) == id)
            return (int)off;
        off = pci_config_read(p, off + 1, 1);
    }
    return -1;
}

static void test_config_space(void **state)
{
    struct fixture *f = *state;
    struct pci_device *p = virtio_pci_function(f->dev);
    assert_int_equal(pci_config_read(p, PCI_VENDOR_ID, 2), 0x1af4);
    assert_int_equal(pci_config_read(p, PCI_DEVICE_ID, 2), 0x1040 + VIRTIO_ID_RNG);
    assert_true(pci_config_read(p, PCI_REVISION_ID, 1) >= 1);
    assert_true(pci_config_read(p, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);

    static const struct {
        uint8_t type;
        uint32_t offset;
        uint32_t min_len;
    } want[] = {
        {VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_BAR_COMMON, 0x38},
        {VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_BAR_ISR, 1},
        {VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_BAR_NOTIFY, 2},
        {VIRTIO_PCI_CAP_PCI_CFG, 0, 0},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        int c = find_virtio_cap(p, want[i].type);
        assert_true(c >= 0x40);
        assert_int_equal(pci_config_read(p, (unsigned)c + 4, 1), 0); /* bar */
        assert_int_equal(pci_config_read(p, (unsigned)c + 8, 4), want[i].offset);
        assert_true(pci_config_read(p, (unsigned)c + 12, 4) >= want[i].min_len);
    }
    /* rng has no device configuration. */
    assert_int_equal(find_virtio_cap(p, VIRTIO_PCI_CAP_DEVICE_CFG), -1);
    int n = find_virtio_cap(p, VIRTIO_PCI_CAP_NOTIFY_CFG);
    assert_int_equal(pci_config_read(p, (unsigned)n + 2, 1), 20);
    assert_int_equal(pci_config_read(p, (unsigned)n + 16, 4), VIRTIO_NOTIFY_MULTIPLIER);

    int m = find_cap(p, PCI_CAP_ID_MSIX);
    assert_true(m >= 0x40);
    assert_int_equal(pci_config_read(p, (unsigned)m + 2, 2) & 0x7ff, 1); /* 2 vectors */
    assert_int_equal(pci_config_read(p, (unsigned)m + 4, 4), VIRTIO_BAR_MSIX_TABLE);
    assert_int_equal(pci_config_read(p, (unsigned)m + 8, 4), VIRTIO_BAR_MSIX_PBA);

    /* BAR0 is a 32 KiB memory BAR placed in the MMIO window. */
    pci_config_write(p, PCI_BASE_ADDRESS_0, 0xffffffff, 4);
    assert_int_equal(pci_config_read(p, PCI_BASE_ADDRESS_0, 4) & 0xfffffff0u,
                     (uint32_t) ~(VIRTIO_BAR_SIZE - 1));
    pci_config_write(p, PCI_BASE_ADDRESS_0, (uint32_t)f->drv.bar, 4);
    assert_int_equal(pci_config_read(p, PCI_BASE_ADDRESS_0, 4) & 0xfffffff0u, f->drv.bar);
}

static void test_notify_ioeventfd_follows_bar(void **state)
{
    struct fixture *f = *state;
    struct pci_device *p = virtio_pci_function(f->dev);
    uint64_t old = f->drv.bar;
    assert_true(old >= 0xc0000000ull);
    assert_true(fake_vm_ioeventfd(&f->vm, old + VIRTIO_BAR_NOTIFY) >= 0);
    assert_int_equal(f->vm.ioeventfds[0].len, 2);

    uint64_t moved = 0xd0000000ull;
    pci_config_write(p, PCI_BASE_ADDRESS_0, (uint32_t)moved, 4);
    assert_int_equal(fake_vm_ioeventfd(&f->vm, old + VIRTIO_BAR_NOTIFY), -1);
    assert_true(fake_vm_ioeventfd(&f->vm, moved + VIRTIO_BAR_NOTIFY) >= 0);
    assert_int_equal(f->vm.nr_ioeventfds, 1);

    /* Memory decode off: nothing mapped, nothing attached. */
    uint16_t cmd = (uint16_t)pci_config_read(p, PCI_COMMAND, 2);
    pci_config_write(p, PCI_COMMAND, cmd & ~PCI_COMMAND_MEMORY, 2);
    assert_int_equal(f->vm.nr_ioeventfds, 0);
    pci_config_write(p, PCI_COMMAND, cmd, 2);
    assert_true(fake_vm_ioeventfd(&f->vm, moved + VIRTIO_BAR_NOTIFY) >= 0);
}

static void test_feature_negotiation(void **state)
{
    struct fixture *f = *state;
    struct vdrv *d = &f->drv;
    vdrv_write(d, VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
    uint64_t hi = vdrv_read(d, VIRTIO_PCI_COMMON_DF, 4);
    assert_true(hi & 1); /* VIRTIO_F_VERSION_1 */
    vdrv_write(d, VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
    uint64_t lo = vdrv_read(d, VIRTIO_PCI_COMMON_DF, 4);
    assert_true(lo & (1u << VIRTIO_RING_F_EVENT_IDX));
    assert_true(lo & (1u << VIRTIO_RING_F_INDIRECT_DESC));
    vdrv_write(d, VIRTIO_PCI_COMMON_DFSELECT, 7, 4);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_DF, 4), 0);

    /* A legacy driver (no VERSION_1) is refused. */
    uint8_t s = vdrv_negotiate(d, 1ull << VIRTIO_RING_F_EVENT_IDX);
    assert_false(s & VIRTIO_CONFIG_S_FEATURES_OK);
    /* Features the device did not offer are refused. */
    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS, 0, 1);
    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
               1);
    vdrv_write(d, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
    vdrv_write(d, VIRTIO_PCI_COMMON_GF, 1 | 1u << 5, 4);
    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS, 0x0b, 1);
    assert_false(vdrv_status(d) & VIRTIO_CONFIG_S_FEATURES_OK);
    /* DRIVER_OK without FEATURES_OK is ignored. */
    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS, 0x07, 1);
    assert_false(vdrv_status(d) & VIRTIO_CONFIG_S_DRIVER_OK);

    s = vdrv_negotiate(d, ~0ull);
    assert_true(s & VIRTIO_CONFIG_S_FEATURES_OK);
    vdrv_write(d, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_GF, 4), 1);
    /* After FEATURES_OK the features are frozen. */
    vdrv_write(d, VIRTIO_PCI_COMMON_GF, 0, 4);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_GF, 4), 1);
    assert_int_equal(f->dev->guest_features, d->features);

    /* Clearing FEATURES_OK to renegotiate under a live device: refused. */
    vdrv_driver_ok(d);
    uint8_t live = vdrv_status(d);
    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
               1);
    assert_int_equal(vdrv_status(d), live | VIRTIO_CONFIG_S_NEEDS_RESET);
    vdrv_write(d, VIRTIO_PCI_COMMON_GF, 0, 4);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_GF, 4), 1);
    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS, 0, 1);
    assert_int_equal(vdrv_status(d), 0);
}

static void test_queue_registers_and_reset(void **state)
{
    struct fixture *f = *state;
    struct vdrv *d = &f->drv;
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_NUMQ, 2), 1);
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_SELECT, 1, 2);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_Q_SIZE, 2), 0); /* no queue 1 */
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_Q_NOFF, 2), 0);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);

    vdrv_negotiate(d, ~0ull);
    assert_int_equal(vdrv_setup_queue(d, 0, 64, 1), 1);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_Q_SIZE, 2), 64);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_Q_DESCLO, 8), d->q[0].desc);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_Q_USEDLO, 4), (uint32_t)d->q[0].used);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_Q_MSIX, 2), 1);
    /* Vectors beyond the table read back as NO_VECTOR. */
    vdrv_write(d, VIRTIO_PCI_COMMON_MSIX, 9, 2);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
    vdrv_write(d, VIRTIO_PCI_COMMON_MSIX, 0, 2);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_MSIX, 2), 0);
    /* Addresses are frozen while the queue is enabled. */
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_DESCLO, 0x5000, 4);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_Q_DESCLO, 4), (uint32_t)d->q[0].desc);

    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS, 0, 1);
    assert_int_equal(vdrv_status(d), 0);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
    vdrv_write(d, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_GF, 4), 0);
}

static void test_bad_queue_layout_needs_reset(void **state)
{
    struct fixture *f = *state;
    struct vdrv *d = &f->drv;
    vdrv_negotiate(d, ~0ull);
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_SIZE, 100, 2); /* not a power of two */
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_DESCLO, 0x1000, 4);
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_AVAILLO, 0x2000, 4);
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_USEDLO, 0x3000, 4);
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
    assert_true(vdrv_status(d) & VIRTIO_CONFIG_S_NEEDS_RESET);
    /* The driver cannot clear NEEDS_RESET except by resetting. */
    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS, 0x0f, 1);
    assert_true(vdrv_status(d) & VIRTIO_CONFIG_S_NEEDS_RESET);
    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS, 0, 1);
    assert_int_equal(vdrv_status(d), 0);

    /* Rings outside RAM. */
    vdrv_negotiate(d, ~0ull);
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_SIZE, 64, 2);
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_DESCLO, 0x80000000ull, 8);
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
    assert_true(vdrv_status(d) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void test_msix_routes(void **state)
{
    struct fixture *f = *state;
    struct vdrv *d = &f->drv;
    struct pci_device *p = virtio_pci_function(f->dev);
    int m = find_cap(p, PCI_CAP_ID_MSIX);
    /* Every vector has its GSI and irqfd from creation on. */
    assert_int_equal(f->vm.nr_irqfds, 2);
    unsigned before = f->vm.msi_set_calls;

    vdrv_enable_msix(d, 2);
    assert_true(f->vm.msi_set_calls > before);
    int gsi0 = virtio_pci_vector_gsi(f->dev, 0), gsi1 = virtio_pci_vector_gsi(f->dev, 1);
    const struct fake_route *r0 = fake_vm_route(&f->vm, gsi0);
    const struct fake_route *r1 = fake_vm_route(&f->vm, gsi1);
    assert_non_null(r0);
    assert_non_null(r1);
    assert_int_equal(r1->addr, VDRV_MSI_ADDR);
    assert_int_equal(r1->data, VDRV_MSI_DATA(1));
    assert_false(r1->masked);
    /* The route names its sender (the ITS on arm64 needs the requester id). */
    assert_int_equal(r1->devid, p->devfn);
    assert_true(p->devfn != 0);
    assert_true(fake_vm_irqfd(&f->vm, gsi1) >= 0);

    /* Table reads back what was written. */
    assert_int_equal(vdrv_read(d, VIRTIO_BAR_MSIX_TABLE + 16 + 8, 4), VDRV_MSI_DATA(1));
    /* Retarget vector 1 with a 64-bit write. */
    vdrv_write(d, VIRTIO_BAR_MSIX_TABLE + 16, 0xfee01000ull, 8);
    assert_int_equal(fake_vm_route(&f->vm, gsi1)->addr, 0xfee01000ull);
    /* Per-vector mask. */
    vdrv_write(d, VIRTIO_BAR_MSIX_TABLE + 16 + 12, 1, 4);
    assert_true(fake_vm_route(&f->vm, gsi1)->masked);
    assert_false(fake_vm_route(&f->vm, gsi0)->masked);
    vdrv_write(d, VIRTIO_BAR_MSIX_TABLE + 16 + 12, 0, 4);
    assert_false(fake_vm_route(&f->vm, gsi1)->masked);
    /* Function mask masks all. */
    uint16_t ctrl = (uint16_t)pci_config_read(p, (unsigned)m + 2, 2);
    pci_config_write(p, (unsigned)m + 2, ctrl | 0x4000, 2);
    assert_true(fake_vm_route(&f->vm, gsi0)->masked);
    assert_true(fake_vm_route(&f->vm, gsi1)->masked);
    pci_config_write(p, (unsigned)m + 2, ctrl & ~0x4000, 2);
    assert_false(fake_vm_route(&f->vm, gsi1)->masked);
    /* Table size bits are read-only. */
    pci_config_write(p, (unsigned)m + 2, 0xffff, 2);
    assert_int_equal(pci_config_read(p, (unsigned)m + 2, 2) & 0x7ff, 1);
}

/* Set up the rng queue with vector 1 and run one request of n bytes. */
static uint64_t start_device(struct fixture *f)
{
    struct vdrv *d = &f->drv;
    vdrv_enable_msix(d, 2);
    assert_true(vdrv_negotiate(d, ~0ull) & VIRTIO_CONFIG_S_FEATURES_OK);
    vdrv_write(d, VIRTIO_PCI_COMMON_MSIX, 0, 2);
    assert_int_equal(vdrv_setup_queue(d, 0, 16, 1), 1);
    vdrv_driver_ok(d);
    assert_true(vdrv_status(d) & VIRTIO_CONFIG_S_DRIVER_OK);
    return vdrv_alloc(d, 4096, 64);
}

static void test_request_and_interrupt(void **state)
{
    struct fixture *f = *state;
    struct vdrv *d = &f->drv;
    uint64_t buf = start_device(f);
    struct vdrv_buf b = {.gpa = buf, .len = 64, .device_writes = true};
    vdrv_add_chain(d, 0, &b, 1);
    vdrv_kick(d, 0);
    uint32_t len;
    assert_true(vdrv_wait_used(d, 0, 1, WAIT_MS, &len));
    assert_int_equal(len, 64);
    assert_int_equal(vdrv_take_irqs(d, 1, WAIT_MS), 1);
    /* ISR bit 0 is set, and reading it clears it. */
    assert_int_equal(vdrv_read(d, VIRTIO_BAR_ISR, 1), 1);
    assert_int_equal(vdrv_read(d, VIRTIO_BAR_ISR, 1), 0);

    /* A notify that arrives as an MMIO exit takes the same path. */
    vdrv_add_chain(d, 0, &b, 1);
    vdrv_write(d, VIRTIO_BAR_NOTIFY, 0, 2);
    assert_true(vdrv_wait_used(d, 0, 2, WAIT_MS, &len));
    assert_int_equal(vdrv_take_irqs(d, 1, WAIT_MS), 1);
}

static void test_masked_vector_pends(void **state)
{
    struct fixture *f = *state;
    struct vdrv *d = &f->drv;
    uint64_t buf = start_device(f);
    vdrv_write(d, VIRTIO_BAR_MSIX_TABLE + 16 + 12, 1, 4); /* mask vector 1 */
    struct vdrv_buf b = {.gpa = buf, .len = 8, .device_writes = true};
    vdrv_add_chain(d, 0, &b, 1);
    vdrv_kick(d, 0);
    assert_true(vdrv_wait_used(d, 0, 1, WAIT_MS, NULL));
    /* The device thread publishes, then interrupts (or pends): wait for the PBA. */
    for (int i = 0; i < WAIT_MS && !(vdrv_read(d, VIRTIO_BAR_MSIX_PBA, 4) & 2); i++)
        vdrv_take_irqs(d, 0, 1);
    assert_int_equal(vdrv_read(d, VIRTIO_BAR_MSIX_PBA, 4), 2);
    assert_int_equal(vdrv_take_irqs(d, 1, 0), 0);
    vdrv_write(d, VIRTIO_BAR_MSIX_TABLE + 16 + 12, 0, 4);
    assert_int_equal(vdrv_take_irqs(d, 1, WAIT_MS), 1);
    assert_int_equal(vdrv_read(d, VIRTIO_BAR_MSIX_PBA, 4), 0);
}

static void test_malformed_chain_needs_reset(void **state)
{
    struct fixture *f = *state;
    struct vdrv *d = &f->drv;
    start_device(f);
    /* A buffer far outside guest RAM. */
    struct vdrv_buf b = {.gpa = 0x7ff000000000ull, .len = 64, .device_writes = true};
    vdrv_add_chain(d, 0, &b, 1);
    vdrv_kick(d, 0);
    /* The driver hears about it on the configuration vector. */
    assert_int_equal(vdrv_take_irqs(d, 0, WAIT_MS), 1);
    assert_true(vdrv_status(d) & VIRTIO_CONFIG_S_NEEDS_RESET);
    assert_int_equal(vdrv_read(d, VIRTIO_BAR_ISR, 1) & 2, 2);
    /* A reset brings the device back. */
    uint64_t buf = start_device(f);
    assert_false(vdrv_status(d) & VIRTIO_CONFIG_S_NEEDS_RESET);
    b = (struct vdrv_buf){.gpa = buf, .len = 16, .device_writes = true};
    vdrv_add_chain(d, 0, &b, 1);
    vdrv_kick(d, 0);
    assert_true(vdrv_wait_used(d, 0, 1, WAIT_MS, NULL));
}

static void test_buffers_before_driver_ok(void **state)
{
    struct fixture *f = *state;
    struct vdrv *d = &f->drv;
    vdrv_enable_msix(d, 2);
    vdrv_negotiate(d, ~0ull);
    assert_int_equal(vdrv_setup_queue(d, 0, 16, 1), 1);
    uint64_t buf = vdrv_alloc(d, 64, 64);
    struct vdrv_buf b = {.gpa = buf, .len = 32, .device_writes = true};
    vdrv_add_chain(d, 0, &b, 1);
    vdrv_kick(d, 0);
    /* Not consumed before DRIVER_OK (3.1.1) ... */
    assert_false(vdrv_wait_used(d, 0, 1, 50, NULL));
    /* ... and consumed without another kick once it is set. */
    vdrv_driver_ok(d);
    assert_true(vdrv_wait_used(d, 0, 1, WAIT_MS, NULL));
}

static void test_pci_cfg_window(void **state)
{
    struct fixture *f = *state;
    struct pci_device *p = virtio_pci_function(f->dev);
    int c = find_virtio_cap(p, VIRTIO_PCI_CAP_PCI_CFG);
    assert_true(c > 0);
    unsigned o = (unsigned)c;
    /* Read num_queues through the window. */
    pci_config_write(p, o + 4, 0, 1);
    pci_config_write(p, o + 12, 2, 4);
    pci_config_write(p, o + 8, VIRTIO_PCI_COMMON_NUMQ, 4);
    assert_int_equal(pci_config_read(p, o + 16, 2), 1);
    /* Write queue_select through it. */
    pci_config_write(p, o + 8, VIRTIO_PCI_COMMON_Q_SELECT, 4);
    pci_config_write(p, o + 16, 5, 4);
    assert_int_equal(vdrv_read(&f->drv, VIRTIO_PCI_COMMON_Q_SELECT, 2), 5);
}

static void test_bar_edges(void **state)
{
    struct fixture *f = *state;
    struct vdrv *d = &f->drv;
    /* Unused parts of the BAR read as zero and ignore writes. */
    assert_int_equal(vdrv_read(d, 0x0800, 4), 0);
    vdrv_write(d, 0x0800, 0xffffffff, 4);
    assert_int_equal(vdrv_read(d, VIRTIO_BAR_DEVICE, 4), 0);
    vdrv_write(d, VIRTIO_BAR_NOTIFY + 4 * 5, 0, 2); /* a queue that does not exist */
    assert_int_equal(vdrv_read(d, VIRTIO_BAR_MSIX_TABLE + 16 * 7, 4), 0);
    vdrv_write(d, VIRTIO_BAR_MSIX_TABLE + 16 * 7, 0xfee00000, 4);
    /* An access straddling the end of the common structure. */
    assert_int_equal(vdrv_read(d, VIRTIO_COMMON_CFG_LEN - 2, 8), 0);
    /* Byte-wide access to a 16-bit field. */
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_SELECT + 1, 0x01, 1);
    assert_int_equal(vdrv_read(d, VIRTIO_PCI_COMMON_Q_SELECT, 2), 0x100);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_config_space),
        T(test_notify_ioeventfd_follows_bar),
        T(test_feature_negotiation),
        T(test_queue_registers_and_reset),
        T(test_bad_queue_layout_needs_reset),
        T(test_msix_routes),
        T(test_request_and_interrupt),
        T(test_masked_vector_pends),
        T(test_malformed_chain_needs_reset),
        T(test_buffers_before_driver_ok),
        T(test_pci_cfg_window),
        T(test_bar_edges),
    };
    return cmocka_run_group_tests_name("virtio-pci", tests, NULL, NULL);
}
