/* A test-only virtio-pci driver (see virtio_driver.h). */
#include "virtio_driver.h"

#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "virtio/pci.h"

void vdrv_init(struct vdrv *d, struct fake_vm *vm, struct pci_device *pdev, uint64_t heap_start,
               uint64_t heap_end)
{
    memset(d, 0, sizeof(*d));
    d->vm = vm;
    d->pdev = pdev;
    d->bar = pdev->bars[VIRTIO_BAR].addr;
    d->heap_next = heap_start;
    d->heap_end = heap_end;
}

uint64_t vdrv_alloc(struct vdrv *d, uint64_t size, uint64_t align)
{
    uint64_t a = (d->heap_next + align - 1) & ~(align - 1);
    if (a + size > d->heap_end)
        return 0;
    d->heap_next = a + size;
    memset(gm_ptr(d->vm->m.mem, a, size), 0, size);
    return a;
}

void *vdrv_host(struct vdrv *d, uint64_t gpa, uint64_t len)
{
    return gm_ptr(d->vm->m.mem, gpa, len);
}

uint64_t vdrv_read(struct vdrv *d, uint64_t off, unsigned len)
{
    uint64_t v = 0;
    io_bus_access(&d->vm->mmio, d->bar + off, &v, len, false);
    return v;
}

void vdrv_write(struct vdrv *d, uint64_t off, uint64_t value, unsigned len)
{
    io_bus_access(&d->vm->mmio, d->bar + off, &value, len, true);
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

void vdrv_enable_msix(struct vdrv *d, unsigned nvectors)
{
    int cap = find_cap(d->pdev, PCI_CAP_ID_MSIX);
    if (cap < 0)
        return;
    uint16_t ctrl = (uint16_t)pci_config_read(d->pdev, (unsigned)cap + 2, 2);
    pci_config_write(d->pdev, (unsigned)cap + 2, ctrl | 0x8000, 2);
    for (unsigned v = 0; v < nvectors; v++) {
        uint64_t e = VIRTIO_BAR_MSIX_TABLE + 16 * v;
        vdrv_write(d, e, VDRV_MSI_ADDR, 4);
        vdrv_write(d, e + 4, 0, 4);
        vdrv_write(d, e + 8, VDRV_MSI_DATA(v), 4);
        vdrv_write(d, e + 12, 0, 4);
    }
}

uint8_t vdrv_status(struct vdrv *d)
{
    return (uint8_t)vdrv_read(d, VIRTIO_PCI_COMMON_STATUS, 1);
}

uint8_t vdrv_negotiate(struct vdrv *d, uint64_t wanted)
{
    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS, 0, 1);
    /*
     * A reset with host I/O in flight completes later (device_status reads 0
     * then, 4.1.4.3.1); tests that reset a busy device wait for that first.
     * Not polled here: the fuzzer drives this with the BAR moved or off.
     */
    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE, 1);
    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
               1);
    uint64_t offered = 0;
    for (unsigned sel = 0; sel < 2; sel++) {
        vdrv_write(d, VIRTIO_PCI_COMMON_DFSELECT, sel, 4);
        offered |= vdrv_read(d, VIRTIO_PCI_COMMON_DF, 4) << (32 * sel);
    }
    d->features = offered & wanted;
    for (unsigned sel = 0; sel < 2; sel++) {
        vdrv_write(d, VIRTIO_PCI_COMMON_GFSELECT, sel, 4);
        vdrv_write(d, VIRTIO_PCI_COMMON_GF, (uint32_t)(d->features >> (32 * sel)), 4);
    }
    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS,
               VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK,
               1);
    return vdrv_status(d);
}

int vdrv_setup_queue(struct vdrv *d, unsigned q, uint16_t size, uint16_t vector)
{
    struct vdrv_queue *vq = &d->q[q];
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
    uint16_t max = (uint16_t)vdrv_read(d, VIRTIO_PCI_COMMON_Q_SIZE, 2);
    if (size == 0 || size > max)
        size = max;
    vq->size = size;
    vq->desc = vdrv_alloc(d, 16ull * size, 16);
    vq->avail = vdrv_alloc(d, 6ull + 2ull * size, 2);
    vq->used = vdrv_alloc(d, 6ull + 8ull * size, 4);
    vq->avail_idx = vq->next_desc = vq->used_seen = 0;
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_SIZE, size, 2);
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_MSIX, vector, 2);
    /* 64-bit fields as two 32-bit halves, as Linux writes them. */
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_DESCLO, (uint32_t)vq->desc, 4);
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_DESCLO + 4, vq->desc >> 32, 4);
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_AVAILLO, (uint32_t)vq->avail, 4);
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_AVAILLO + 4, vq->avail >> 32, 4);
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_USEDLO, (uint32_t)vq->used, 4);
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_USEDLO + 4, vq->used >> 32, 4);
    vdrv_write(d, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
    return (int)vdrv_read(d, VIRTIO_PCI_COMMON_Q_ENABLE, 2);
}

void vdrv_driver_ok(struct vdrv *d)
{
    uint8_t s = vdrv_status(d);
    vdrv_write(d, VIRTIO_PCI_COMMON_STATUS, s | VIRTIO_CONFIG_S_DRIVER_OK, 1);
}

uint16_t vdrv_add_chain(struct vdrv *d, unsigned q, const struct vdrv_buf *bufs, unsigned n)
{
    struct vdrv_queue *vq = &d->q[q];
    struct virtq_desc *desc = vdrv_host(d, vq->desc, 16ull * vq->size);
    uint16_t head = vq->next_desc;
    for (unsigned i = 0; i < n; i++) {
        uint16_t idx = (uint16_t)((head + i) % vq->size);
        desc[idx] = (struct virtq_desc){
            .addr = bufs[i].gpa,
            .len = bufs[i].len,
            .flags = (uint16_t)((bufs[i].device_writes ? VRING_DESC_F_WRITE : 0) |
                                (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
            .next = (uint16_t)((idx + 1) % vq->size),
        };
    }
    vq->next_desc = (uint16_t)((head + n) % vq->size);
    uint16_t *avail = vdrv_host(d, vq->avail, 6ull + 2ull * vq->size);
    avail[2 + vq->avail_idx % vq->size] = head;
    vq->avail_idx++;
    __atomic_store_n(&avail[1], vq->avail_idx, __ATOMIC_RELEASE);
    return head;
}

void vdrv_kick(struct vdrv *d, unsigned q)
{
    uint64_t addr = d->bar + VIRTIO_BAR_NOTIFY + VIRTIO_NOTIFY_MULTIPLIER * q;
    int efd = fake_vm_ioeventfd(d->vm, addr);
    if (efd >= 0) {
        uint64_t one = 1;
        if (write(efd, &one, sizeof(one)) != sizeof(one))
            return;
    } else {
        vdrv_write(d, VIRTIO_BAR_NOTIFY + VIRTIO_NOTIFY_MULTIPLIER * q, q, 2);
    }
}

bool vdrv_wait_used(struct vdrv *d, unsigned q, uint16_t want, int timeout_ms, uint32_t *len)
{
    struct vdrv_queue *vq = &d->q[q];
    uint8_t *used = vdrv_host(d, vq->used, 6ull + 8ull * vq->size);
    for (int waited = 0;; waited++) {
        uint16_t idx = __atomic_load_n((uint16_t *)(used + 2), __ATOMIC_ACQUIRE);
        if ((uint16_t)(idx - want) < 0x8000) {
            if (len)
                memcpy(len, used + 4 + 8 * ((uint16_t)(want - 1) % vq->size) + 4, 4);
            vq->used_seen = idx;
            /* Like Linux with EVENT_IDX: interrupt me for the next completion. */
            uint16_t *avail = vdrv_host(d, vq->avail, 6ull + 2ull * vq->size);
            __atomic_store_n(&avail[2 + vq->size], idx, __ATOMIC_RELEASE);
            return true;
        }
        if (waited >= timeout_ms)
            return false;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000000};
        nanosleep(&ts, NULL);
    }
}

int vdrv_irq_fd(struct vdrv *d, unsigned v)
{
    for (unsigned i = 0; i < d->vm->nr_routes; i++) {
        const struct fake_route *r = &d->vm->routes[i];
        if (r->data == VDRV_MSI_DATA(v) && r->addr == VDRV_MSI_ADDR)
            return fake_vm_irqfd(d->vm, r->gsi);
    }
    return -1;
}

uint64_t vdrv_take_irqs(struct vdrv *d, unsigned v, int timeout_ms)
{
    int fd = vdrv_irq_fd(d, v);
    uint64_t n = 0;
    if (fd < 0)
        return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) == 1 && read(fd, &n, sizeof(n)) != sizeof(n))
        n = 0;
    return n;
}
