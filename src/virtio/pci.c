/*
 * Virtio PCI transport, modern only (virtio 1.2, 4.1), plus the generic
 * device state machine (2.1 status, 2.2 features, 3.1 initialization,
 * 2.4 reset).
 *
 * One 32 KiB memory BAR holds every structure the vendor capabilities
 * (4.1.4) point at: common configuration, ISR, device configuration,
 * notification (one 4-byte slot per queue, notify_off_multiplier 4), and
 * the MSI-X table and PBA (PCI 3.0, 6.8.2).
 *
 * Notifications: each queue's notify slot is a KVM ioeventfd, so a kick
 * wakes the device's I/O thread without a trip through userspace on the
 * vCPU. A notify write that does arrive as an MMIO exit (before the
 * ioeventfd is attached, or of an unexpected width) signals the same
 * eventfd. Interrupts: each MSI-X vector is a GSI with an MSI route and an
 * irqfd; masking is done here (pending bit in the PBA), because a
 * masked-and-removed route would lose the interrupt.
 */
#include "virtio/pci.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "virtio/devices.h"

#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_FMASK 0x4000
#define MSIX_VECTOR_MASKED 1

static void signal_efd(int fd)
{
    uint64_t one = 1;
    if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
        log_debug("virtio: eventfd write: %m");
}

/* ---- interrupts ---- */

static bool vector_masked(const struct virtio_dev *dev, unsigned v)
{
    return !dev->msix_enabled || dev->msix_masked || (dev->msix[v].ctrl & MSIX_VECTOR_MASKED);
}

static void raise_vector(struct virtio_dev *dev, uint16_t v)
{
    if (v == VIRTIO_MSI_NO_VECTOR || v >= dev->nvectors || !dev->msix_enabled)
        return; /* no INTx: this transport is MSI-X only */
    if (vector_masked(dev, v)) {
        dev->msix_pending |= 1ull << v;
        return;
    }
    signal_efd(dev->irq_fd[v]);
}

/* Bring vector v's KVM route in line with its table entry and mask state. */
static void update_vector(struct virtio_dev *dev, unsigned v)
{
    const struct vm_hooks *h = dev->m->hooks;
    bool masked = vector_masked(dev, v);
    if (dev->gsi[v] >= 0 && h && h->msi_set) {
        int rc = h->msi_set(h->opaque, dev->gsi[v], dev->msix[v].addr, dev->msix[v].data,
                            dev->pci.devfn, masked);
        if (rc)
            log_warn("%s: MSI-X vector %u route: %s", dev->name, v, strerror(-rc));
        dev->route_valid[v] = rc == 0 && !masked;
    }
    if (!masked && (dev->msix_pending & (1ull << v))) {
        dev->msix_pending &= ~(1ull << v);
        signal_efd(dev->irq_fd[v]);
    }
}

void virtio_notify_queue(struct virtio_dev *dev, unsigned q)
{
    if (q >= dev->nqueues)
        return;
    __atomic_or_fetch(&dev->isr, 1, __ATOMIC_SEQ_CST);
    raise_vector(dev, dev->queues[q].msix_vector);
}

void virtio_queue_flush(struct virtio_dev *dev, unsigned q)
{
    if (q < dev->nqueues && virtq_flush(&dev->queues[q].vq))
        virtio_notify_queue(dev, q);
}

void virtio_notify_config(struct virtio_dev *dev)
{
    dev->config_generation++;
    __atomic_or_fetch(&dev->isr, 2, __ATOMIC_SEQ_CST);
    raise_vector(dev, dev->config_vector);
}

void virtio_set_needs_reset(struct virtio_dev *dev)
{
    if (dev->status & VIRTIO_STATUS_NEEDS_RESET)
        return;
    log_warn("%s: device needs reset after a driver error", dev->name);
    dev->status |= VIRTIO_STATUS_NEEDS_RESET;
    if (dev->status & VIRTIO_STATUS_DRIVER_OK)
        virtio_notify_config(dev);
}

/* A device callback may have found a malformed queue: report it once. */
static void check_broken(struct virtio_dev *dev)
{
    for (unsigned i = 0; i < dev->nqueues; i++)
        if (dev->queues[i].vq.broken)
            virtio_set_needs_reset(dev);
}

/* ---- common configuration (4.1.4.3) ---- */

static const struct {
    uint8_t off, size;
} common_fields[] = {
    {VIRTIO_PCI_COMMON_DFSELECT, 4}, {VIRTIO_PCI_COMMON_DF, 4},
    {VIRTIO_PCI_COMMON_GFSELECT, 4}, {VIRTIO_PCI_COMMON_GF, 4},
    {VIRTIO_PCI_COMMON_MSIX, 2},     {VIRTIO_PCI_COMMON_NUMQ, 2},
    {VIRTIO_PCI_COMMON_STATUS, 1},   {VIRTIO_PCI_COMMON_CFGGENERATION, 1},
    {VIRTIO_PCI_COMMON_Q_SELECT, 2}, {VIRTIO_PCI_COMMON_Q_SIZE, 2},
    {VIRTIO_PCI_COMMON_Q_MSIX, 2},   {VIRTIO_PCI_COMMON_Q_ENABLE, 2},
    {VIRTIO_PCI_COMMON_Q_NOFF, 2},   {VIRTIO_PCI_COMMON_Q_DESC, 8},
    {VIRTIO_PCI_COMMON_Q_AVAIL, 8},  {VIRTIO_PCI_COMMON_Q_USED, 8},
    {VIRTIO_PCI_COMMON_Q_NDATA, 2},  {VIRTIO_PCI_COMMON_Q_RESET, 2},
};

static struct virtio_queue *selected_queue(struct virtio_dev *dev)
{
    return dev->queue_sel < dev->nqueues ? &dev->queues[dev->queue_sel] : NULL;
}

static uint64_t common_get(struct virtio_dev *dev, unsigned off)
{
    struct virtio_queue *q = selected_queue(dev);
    switch (off) {
    case VIRTIO_PCI_COMMON_DFSELECT:
        return dev->dfselect;
    case VIRTIO_PCI_COMMON_DF:
        return dev->dfselect < 2 ? (uint32_t)(dev->host_features >> (32 * dev->dfselect)) : 0;
    case VIRTIO_PCI_COMMON_GFSELECT:
        return dev->gfselect;
    case VIRTIO_PCI_COMMON_GF:
        return dev->gfselect < 2 ? (uint32_t)(dev->guest_features >> (32 * dev->gfselect)) : 0;
    case VIRTIO_PCI_COMMON_MSIX:
        return dev->config_vector;
    case VIRTIO_PCI_COMMON_NUMQ:
        return dev->nqueues;
    case VIRTIO_PCI_COMMON_STATUS:
        return dev->status;
    case VIRTIO_PCI_COMMON_CFGGENERATION:
        return dev->config_generation;
    case VIRTIO_PCI_COMMON_Q_SELECT:
        return dev->queue_sel;
    }
    if (!q)
        return 0; /* queue_size 0: no such queue (4.1.4.3.2) */
    switch (off) {
    case VIRTIO_PCI_COMMON_Q_SIZE:
        return q->size;
    case VIRTIO_PCI_COMMON_Q_MSIX:
        return q->msix_vector;
    case VIRTIO_PCI_COMMON_Q_ENABLE:
        return q->enabled;
    case VIRTIO_PCI_COMMON_Q_NOFF:
        return q->index;
    case VIRTIO_PCI_COMMON_Q_DESC:
        return q->desc;
    case VIRTIO_PCI_COMMON_Q_AVAIL:
        return q->avail;
    case VIRTIO_PCI_COMMON_Q_USED:
        return q->used;
    }
    return 0;
}

static void kick_enabled_queues(struct virtio_dev *dev)
{
    for (unsigned i = 0; i < dev->nqueues; i++)
        if (dev->queues[i].enabled)
            signal_efd(dev->queues[i].kick_fd);
}

static void reset_transport(struct virtio_dev *dev)
{
    for (unsigned i = 0; i < dev->nqueues; i++) {
        struct virtio_queue *q = &dev->queues[i];
        virtq_disable(&q->vq);
        q->enabled = false;
        q->size = q->max_size;
        q->msix_vector = VIRTIO_MSI_NO_VECTOR;
        q->desc = q->avail = q->used = 0;
    }
    dev->guest_features = 0;
    dev->dfselect = dev->gfselect = 0;
    dev->status = 0;
    dev->queue_sel = 0;
    dev->config_vector = VIRTIO_MSI_NO_VECTOR;
    __atomic_store_n(&dev->isr, 0, __ATOMIC_SEQ_CST);
}

static void reset_locked(struct virtio_dev *dev)
{
    if (dev->ops->reset)
        dev->ops->reset(dev);
    reset_transport(dev);
}

static void status_write(struct virtio_dev *dev, uint8_t v)
{
    if (v == 0) {
        reset_locked(dev);
        return;
    }
    uint8_t old = dev->status;
    /*
     * A driver never clears a status bit but by a reset (2.1.2). One that
     * tries, say to renegotiate features under live queues, gets nothing
     * but NEEDS_RESET: what was negotiated stays as it was.
     */
    uint8_t cleared = old & ~v & ~VIRTIO_STATUS_NEEDS_RESET;
    if (cleared) {
        log_warn("%s: driver cleared status bits 0x%x without a reset", dev->name, cleared);
        virtio_set_needs_reset(dev);
        return;
    }
    uint8_t set = v & ~old;
    if (set & VIRTIO_STATUS_FEATURES_OK) {
        uint64_t extra = dev->guest_features & ~dev->host_features;
        if (extra || !virtio_has_feature(dev, VIRTIO_F_VERSION_1)) {
            log_warn("%s: driver features 0x%llx refused (%s)", dev->name,
                     (unsigned long long)dev->guest_features,
                     extra ? "not offered" : "VIRTIO_F_VERSION_1 missing");
            v &= ~VIRTIO_STATUS_FEATURES_OK;
        }
    }
    if ((set & VIRTIO_STATUS_DRIVER_OK) && !(v & VIRTIO_STATUS_FEATURES_OK)) {
        log_warn("%s: DRIVER_OK without FEATURES_OK ignored", dev->name);
        v &= ~VIRTIO_STATUS_DRIVER_OK;
    }
    /* NEEDS_RESET belongs to the device; only a reset clears it. */
    dev->status = (uint8_t)((v & ~VIRTIO_STATUS_NEEDS_RESET) | (old & VIRTIO_STATUS_NEEDS_RESET));
    if ((dev->status & ~old) & VIRTIO_STATUS_DRIVER_OK) {
        if (dev->ops->activate)
            dev->ops->activate(dev);
        /* Buffers may have been added (and kicked) before DRIVER_OK. */
        kick_enabled_queues(dev);
    }
}

static void queue_enable(struct virtio_dev *dev, struct virtio_queue *q)
{
    if (q->enabled)
        return;
    if (!(dev->status & VIRTIO_STATUS_FEATURES_OK)) {
        log_warn("%s: queue %u enabled before FEATURES_OK", dev->name, q->index);
        virtio_set_needs_reset(dev);
        return;
    }
    if (q->size > q->max_size) {
        log_warn("%s: queue %u size %u above the maximum %u", dev->name, q->index, q->size,
                 q->max_size);
        virtio_set_needs_reset(dev);
        return;
    }
    int rc = virtq_enable(&q->vq, dev->m->mem, q->size, q->desc, q->avail, q->used,
                          virtio_has_feature(dev, VIRTIO_RING_F_EVENT_IDX),
                          virtio_has_feature(dev, VIRTIO_RING_F_INDIRECT_DESC));
    if (rc) {
        log_warn("%s: queue %u layout refused (size %u, desc 0x%llx, avail 0x%llx, used 0x%llx)",
                 dev->name, q->index, q->size, (unsigned long long)q->desc,
                 (unsigned long long)q->avail, (unsigned long long)q->used);
        virtio_set_needs_reset(dev);
        return;
    }
    q->enabled = true;
}

static void common_set(struct virtio_dev *dev, unsigned off, uint64_t v)
{
    struct virtio_queue *q = selected_queue(dev);
    switch (off) {
    case VIRTIO_PCI_COMMON_DFSELECT:
        dev->dfselect = (uint32_t)v;
        return;
    case VIRTIO_PCI_COMMON_GFSELECT:
        dev->gfselect = (uint32_t)v;
        return;
    case VIRTIO_PCI_COMMON_GF:
        if (dev->gfselect < 2 && !(dev->status & VIRTIO_STATUS_FEATURES_OK)) {
            unsigned shift = 32 * dev->gfselect;
            dev->guest_features &= ~(0xffffffffull << shift);
            dev->guest_features |= (v & 0xffffffffull) << shift;
        }
        return;
    case VIRTIO_PCI_COMMON_MSIX:
        dev->config_vector = v < dev->nvectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
        return;
    case VIRTIO_PCI_COMMON_STATUS:
        status_write(dev, (uint8_t)v);
        return;
    case VIRTIO_PCI_COMMON_Q_SELECT:
        dev->queue_sel = (uint16_t)v;
        return;
    }
    if (!q)
        return;
    switch (off) {
    case VIRTIO_PCI_COMMON_Q_SIZE:
        if (!q->enabled)
            q->size = (uint16_t)v;
        return;
    case VIRTIO_PCI_COMMON_Q_MSIX:
        q->msix_vector = v < dev->nvectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
        return;
    case VIRTIO_PCI_COMMON_Q_ENABLE:
        /* Writing 0 is not allowed (4.1.4.3.2); queue_reset is not offered. */
        if (v == 1)
            queue_enable(dev, q);
        return;
    case VIRTIO_PCI_COMMON_Q_DESC:
        if (!q->enabled)
            q->desc = v;
        return;
    case VIRTIO_PCI_COMMON_Q_AVAIL:
        if (!q->enabled)
            q->avail = v;
        return;
    case VIRTIO_PCI_COMMON_Q_USED:
        if (!q->enabled)
            q->used = v;
        return;
    }
}

static void common_read(struct virtio_dev *dev, unsigned off, uint8_t *data, unsigned len)
{
    for (unsigned b = 0; b < len; b++) {
        data[b] = 0;
        for (size_t f = 0; f < sizeof(common_fields) / sizeof(common_fields[0]); f++) {
            unsigned fo = common_fields[f].off;
            if (off + b >= fo && off + b < fo + common_fields[f].size) {
                data[b] = (uint8_t)(common_get(dev, fo) >> (8 * (off + b - fo)));
                break;
            }
        }
    }
}

/* Fields may be written in parts (a 64-bit address as two 32-bit halves, 4.1.3.1). */
static void common_write(struct virtio_dev *dev, unsigned off, const uint8_t *data, unsigned len)
{
    for (size_t f = 0; f < sizeof(common_fields) / sizeof(common_fields[0]); f++) {
        unsigned fo = common_fields[f].off, fs = common_fields[f].size;
        if (off >= fo + fs || off + len <= fo)
            continue;
        uint64_t v = common_get(dev, fo);
        for (unsigned b = 0; b < len; b++) {
            if (off + b < fo || off + b >= fo + fs)
                continue;
            unsigned shift = 8 * (off + b - fo);
            v = (v & ~(0xffull << shift)) | ((uint64_t)data[b] << shift);
        }
        common_set(dev, fo, v);
    }
}

/* ---- MSI-X table (PCI 3.0, 6.8.2.6) ---- */

static void msix_entry_bytes(const struct msix_entry *e, uint8_t out[16])
{
    uint32_t w[4] = {(uint32_t)e->addr, (uint32_t)(e->addr >> 32), e->data, e->ctrl};
    memcpy(out, w, 16);
}

static void msix_table_read(struct virtio_dev *dev, unsigned off, uint8_t *data, unsigned len)
{
    for (unsigned b = 0; b < len; b++) {
        unsigned v = (off + b) / 16;
        uint8_t bytes[16];
        if (v >= dev->nvectors) {
            data[b] = 0;
            continue;
        }
        msix_entry_bytes(&dev->msix[v], bytes);
        data[b] = bytes[(off + b) % 16];
    }
}

static void msix_table_write(struct virtio_dev *dev, unsigned off, const uint8_t *data,
                             unsigned len)
{
    unsigned v = off / 16;
    if (v >= dev->nvectors || (off % 16) + len > 16)
        return;
    struct msix_entry *e = &dev->msix[v];
    uint8_t bytes[16];
    msix_entry_bytes(e, bytes);
    memcpy(bytes + off % 16, data, len);
    uint32_t w[4];
    memcpy(w, bytes, 16);
    struct msix_entry n = {.addr = w[0] | (uint64_t)w[1] << 32, .data = w[2], .ctrl = w[3] & 1};
    if (n.addr == e->addr && n.data == e->data && n.ctrl == e->ctrl)
        return;
    *e = n;
    update_vector(dev, v);
}

/* ---- the BAR ---- */

static void bar_read(void *opaque, uint64_t off, void *data, unsigned len)
{
    struct virtio_dev *dev = opaque;
    memset(data, 0, len);
    if (off >= VIRTIO_BAR_ISR && off < VIRTIO_BAR_ISR + 4) {
        /* Reading the ISR acknowledges it (4.1.4.5). */
        if (off == VIRTIO_BAR_ISR)
            *(uint8_t *)data = __atomic_exchange_n(&dev->isr, 0, __ATOMIC_SEQ_CST);
        return;
    }
    pthread_mutex_lock(&dev->lock);
    if (off < VIRTIO_COMMON_CFG_LEN) {
        unsigned n = off + len > VIRTIO_COMMON_CFG_LEN ? VIRTIO_COMMON_CFG_LEN - off : len;
        common_read(dev, (unsigned)off, data, n);
    } else if (off >= VIRTIO_BAR_DEVICE && off < VIRTIO_BAR_DEVICE + dev->config_len) {
        unsigned o = (unsigned)(off - VIRTIO_BAR_DEVICE);
        if (o + len <= dev->config_len && dev->ops->config_read)
            dev->ops->config_read(dev, o, data, len);
    } else if (off >= VIRTIO_BAR_MSIX_TABLE && off < VIRTIO_BAR_MSIX_PBA) {
        msix_table_read(dev, (unsigned)(off - VIRTIO_BAR_MSIX_TABLE), data, len);
    } else if (off >= VIRTIO_BAR_MSIX_PBA && off < VIRTIO_BAR_MSIX_PBA + 8) {
        uint64_t pba = dev->msix_pending;
        unsigned o = (unsigned)(off - VIRTIO_BAR_MSIX_PBA);
        for (unsigned b = 0; b < len && o + b < 8; b++)
            ((uint8_t *)data)[b] = (uint8_t)(pba >> (8 * (o + b)));
    }
    pthread_mutex_unlock(&dev->lock);
}

static void bar_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
    struct virtio_dev *dev = opaque;
    if (off >= VIRTIO_BAR_NOTIFY &&
        off < VIRTIO_BAR_NOTIFY + (uint64_t)VIRTIO_NOTIFY_MULTIPLIER * dev->nqueues) {
        /* The ioeventfd missed this one: hand it to the I/O thread the same way. */
        unsigned q = (unsigned)(off - VIRTIO_BAR_NOTIFY) / VIRTIO_NOTIFY_MULTIPLIER;
        signal_efd(dev->queues[q].kick_fd);
        return;
    }
    pthread_mutex_lock(&dev->lock);
    if (off < VIRTIO_COMMON_CFG_LEN) {
        unsigned n = off + len > VIRTIO_COMMON_CFG_LEN ? VIRTIO_COMMON_CFG_LEN - off : len;
        common_write(dev, (unsigned)off, data, n);
    } else if (off >= VIRTIO_BAR_DEVICE && off < VIRTIO_BAR_DEVICE + dev->config_len) {
        unsigned o = (unsigned)(off - VIRTIO_BAR_DEVICE);
        if (o + len <= dev->config_len && dev->ops->config_write)
            dev->ops->config_write(dev, o, data, len);
    } else if (off >= VIRTIO_BAR_MSIX_TABLE && off < VIRTIO_BAR_MSIX_PBA) {
        msix_table_write(dev, (unsigned)(off - VIRTIO_BAR_MSIX_TABLE), data, len);
    }
    pthread_mutex_unlock(&dev->lock);
}

const struct io_ops virtio_pci_bar_ops = {.read = bar_read, .write = bar_write};

/* ---- PCI configuration space hooks ---- */

static void move_notify(struct virtio_dev *dev, uint64_t old, uint64_t new_addr)
{
    const struct vm_hooks *h = dev->m->hooks;
    if (!h || !h->ioeventfd)
        return;
    for (unsigned i = 0; i < dev->nqueues; i++) {
        uint64_t off = VIRTIO_BAR_NOTIFY + (uint64_t)VIRTIO_NOTIFY_MULTIPLIER * i;
        if (old)
            h->ioeventfd(h->opaque, old + off, 2, false, dev->queues[i].kick_fd, false);
        if (new_addr &&
            h->ioeventfd(h->opaque, new_addr + off, 2, false, dev->queues[i].kick_fd, true) < 0)
            log_warn("%s: queue %u notifications will take the slow path", dev->name, i);
    }
    dev->bar_addr = new_addr;
}

static void pci_bar_moved(struct pci_device *pdev, int bar, uint64_t old, uint64_t new_addr)
{
    struct virtio_dev *dev = pdev->opaque;
    if (bar == VIRTIO_BAR)
        move_notify(dev, dev->bar_addr, new_addr);
    (void)old;
}

static bool overlaps(unsigned off, unsigned len, unsigned start, unsigned n)
{
    return off < start + n && off + len > start;
}

/* VIRTIO_PCI_CAP_PCI_CFG (4.1.4.9): a window onto the BAR through config space. */
static void pci_cfg_window(struct virtio_dev *dev, unsigned off, unsigned len)
{
    struct pci_device *p = &dev->pci;
    unsigned c = (unsigned)dev->pci_cfg_cap;
    uint8_t bar = p->config[c + 4];
    uint32_t boff = pci_get_u32(p, c + 8), blen = pci_get_u32(p, c + 12);
    if (bar != VIRTIO_BAR || (blen != 1 && blen != 2 && blen != 4) || boff >= VIRTIO_BAR_SIZE ||
        boff + blen > VIRTIO_BAR_SIZE)
        return;
    if (overlaps(off, len, c + 16, 4)) {
        bar_write(dev, boff, &p->config[c + 16], blen);
    } else {
        /* We cannot see config reads, so the read happens when the window is aimed. */
        uint32_t v = 0;
        bar_read(dev, boff, &v, blen);
        pci_set_u32(p, c + 16, v);
    }
}

static void pci_config_written(struct pci_device *pdev, unsigned off, unsigned len)
{
    struct virtio_dev *dev = pdev->opaque;
    if (dev->msix_cap > 0 && overlaps(off, len, (unsigned)dev->msix_cap + 2, 2)) {
        uint16_t ctrl = pci_get_u16(pdev, (unsigned)dev->msix_cap + 2);
        pthread_mutex_lock(&dev->lock);
        bool en = ctrl & MSIX_CTRL_ENABLE, fm = ctrl & MSIX_CTRL_FMASK;
        if (en != dev->msix_enabled || fm != dev->msix_masked) {
            dev->msix_enabled = en;
            dev->msix_masked = fm;
            for (unsigned v = 0; v < dev->nvectors; v++)
                update_vector(dev, v);
        }
        pthread_mutex_unlock(&dev->lock);
    }
    if (dev->pci_cfg_cap > 0 && overlaps(off, len, (unsigned)dev->pci_cfg_cap + 4, 16))
        pci_cfg_window(dev, off, len);
}

static const struct pci_device_ops virtio_pci_device_ops = {
    .bar_moved = pci_bar_moved,
    .config_written = pci_config_written,
};

/* ---- the I/O thread ---- */

static void kick_handler(void *opaque, uint32_t events)
{
    struct virtio_queue *q = opaque;
    struct virtio_dev *dev = q->dev;
    uint64_t cnt;
    (void)events;
    if (read(q->kick_fd, &cnt, sizeof(cnt)) < 0)
        return;
    pthread_mutex_lock(&dev->lock);
    if (virtio_running(dev) && q->enabled && virtq_ready(&q->vq) && dev->ops->queue_notify) {
        dev->ops->queue_notify(dev, q->index);
        check_broken(dev);
    }
    pthread_mutex_unlock(&dev->lock);
}

static void fd_handler(void *opaque, uint32_t events)
{
    struct virtio_fd_handler *h = opaque;
    struct virtio_dev *dev = h->dev;
    pthread_mutex_lock(&dev->lock);
    if (h->cb && h->fd >= 0) {
        h->cb(dev, h->fd, events);
        check_broken(dev);
    }
    pthread_mutex_unlock(&dev->lock);
}

int virtio_dev_add_fd(struct virtio_dev *dev, int fd, uint32_t events,
                      void (*cb)(struct virtio_dev *dev, int fd, uint32_t events))
{
    for (unsigned i = 0; i < VIRTIO_MAX_FD_HANDLERS; i++) {
        struct virtio_fd_handler *h = &dev->fd_handlers[i];
        if (h->fd >= 0)
            continue;
        h->dev = dev;
        h->fd = fd;
        h->cb = cb;
        int rc = evloop_add(dev->loop, fd, events, fd_handler, h);
        if (rc) {
            h->fd = -1;
            h->cb = NULL;
        }
        return rc;
    }
    return -ENOSPC;
}

int virtio_dev_del_fd(struct virtio_dev *dev, int fd)
{
    for (unsigned i = 0; i < VIRTIO_MAX_FD_HANDLERS; i++) {
        struct virtio_fd_handler *h = &dev->fd_handlers[i];
        if (h->fd == fd) {
            int rc = evloop_del(dev->loop, fd);
            h->fd = -1;
            h->cb = NULL;
            return rc;
        }
    }
    return -ENOENT;
}

/* ---- setup ---- */

static int add_virtio_cap(struct virtio_dev *dev, uint8_t type, uint32_t offset, uint32_t length,
                          unsigned cap_len)
{
    struct pci_device *p = &dev->pci;
    int c = pci_add_cap(p, PCI_CAP_ID_VNDR, cap_len);
    if (c < 0)
        return c;
    unsigned o = (unsigned)c;
    pci_set_u8(p, o + 2, (uint8_t)cap_len);
    pci_set_u8(p, o + 3, type);
    pci_set_u8(p, o + 4, VIRTIO_BAR);
    pci_set_u8(p, o + 5, 0); /* id: only one structure of each type */
    pci_set_u32(p, o + 8, offset);
    pci_set_u32(p, o + 12, length);
    return c;
}

static int build_config_space(struct virtio_dev *dev, uint32_t class_code)
{
    struct pci_device *p = &dev->pci;
    pci_device_init(p, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + dev->device_id), 0,
                    VIRTIO_PCI_VENDOR, 0x1100);
    /* Revision 1 marks a modern-only device (4.1.2.1); class code is base:sub:prog. */
    pci_set_u8(p, PCI_REVISION_ID, 1);
    pci_set_u8(p, PCI_CLASS_PROG, (uint8_t)class_code);
    pci_set_u16(p, PCI_CLASS_DEVICE, (uint16_t)(class_code >> 8));
    pci_set_u8(p, PCI_INTERRUPT_PIN, 0);
    p->ops = &virtio_pci_device_ops;
    p->opaque = dev;
    pci_device_set_bar(p, VIRTIO_BAR, VIRTIO_BAR_SIZE, false, false, &virtio_pci_bar_ops, dev);

    int c = add_virtio_cap(dev, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_BAR_COMMON, VIRTIO_COMMON_CFG_LEN,
                           16);
    if (c >= 0)
        c = add_virtio_cap(dev, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_BAR_ISR, 1, 16);
    if (c >= 0) {
        c = add_virtio_cap(dev, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_BAR_NOTIFY,
                           VIRTIO_NOTIFY_MULTIPLIER * dev->nqueues, 20);
        if (c >= 0)
            pci_set_u32(p, (unsigned)c + 16, VIRTIO_NOTIFY_MULTIPLIER);
    }
    if (c >= 0 && dev->config_len)
        c = add_virtio_cap(dev, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_BAR_DEVICE, dev->config_len, 16);
    if (c >= 0) {
        c = add_virtio_cap(dev, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 20);
        if (c >= 0) {
            dev->pci_cfg_cap = c;
            pci_set_u8(p, (unsigned)c + 4, 0);
            /* bar, offset, length and data are the driver's to write. */
            p->wmask[c + 4] = 0xff;
            memset(&p->wmask[c + 8], 0xff, 12);
        }
    }
    if (c >= 0) {
        c = pci_add_cap(p, PCI_CAP_ID_MSIX, 12);
        if (c >= 0) {
            dev->msix_cap = c;
            pci_set_u16(p, (unsigned)c + 2, (uint16_t)(dev->nvectors - 1));
            pci_set_u32(p, (unsigned)c + 4, VIRTIO_BAR_MSIX_TABLE | VIRTIO_BAR);
            pci_set_u32(p, (unsigned)c + 8, VIRTIO_BAR_MSIX_PBA | VIRTIO_BAR);
            p->wmask[c + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK) >> 8;
        }
    }
    return c < 0 ? c : 0;
}

int virtio_pci_init(struct virtio_dev *dev, struct machine *m, const char *name, uint16_t device_id,
                    uint32_t class_code, unsigned nqueues, uint16_t queue_max, uint64_t features,
                    unsigned config_len, const struct virtio_dev_ops *ops)
{
    /* Set first: virtio_pci_destroy undoes a failed init too. */
    dev->m = m;
    dev->ops = ops;
    dev->name = name;
    for (unsigned i = 0; i < VIRTIO_MAX_FD_HANDLERS; i++)
        dev->fd_handlers[i].fd = -1;
    for (unsigned v = 0; v < VIRTIO_MAX_VECTORS; v++) {
        dev->gsi[v] = -1;
        dev->irq_fd[v] = -1;
    }
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        dev->queues[i].kick_fd = -1;
    pthread_mutex_init(&dev->lock, NULL);
    if (nqueues == 0 || nqueues > VIRTIO_MAX_QUEUES || config_len > VIRTIO_DEVICE_CFG_MAX ||
        queue_max == 0 || queue_max > VIRTQ_MAX_SIZE || (queue_max & (queue_max - 1)))
        return -EINVAL;
    dev->device_id = device_id;
    dev->nqueues = nqueues;
    dev->nvectors = nqueues + 1;
    dev->config_len = config_len;
    dev->host_features = features | 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_EVENT_IDX |
                         1ull << VIRTIO_RING_F_INDIRECT_DESC;
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
        struct virtio_queue *q = &dev->queues[i];
        q->dev = dev;
        q->index = i;
        q->max_size = queue_max;
    }
    reset_transport(dev);

    int rc = build_config_space(dev, class_code);
    if (rc)
        return rc;
    if (m->io_loop) {
        dev->loop = m->io_loop;
        dev->loop_borrowed = true;
    } else {
        rc = evloop_create(&dev->loop);
        if (rc)
            return rc;
    }
    for (unsigned i = 0; i < nqueues; i++) {
        struct virtio_queue *q = &dev->queues[i];
        q->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (q->kick_fd < 0)
            return -errno;
        rc = evloop_add(dev->loop, q->kick_fd, EPOLLIN, kick_handler, q);
        if (rc)
            return rc;
    }
    const struct vm_hooks *h = m->hooks;
    for (unsigned v = 0; v < dev->nvectors; v++) {
        dev->irq_fd[v] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (dev->irq_fd[v] < 0)
            return -errno;
        dev->msix[v].ctrl = MSIX_VECTOR_MASKED; /* reset state (6.8.2.9) */
        if (!h || !h->msi_alloc || !h->irqfd)
            continue;
        int gsi = h->msi_alloc(h->opaque);
        if (gsi < 0) {
            log_error("%s: no GSI for MSI-X vector %u: %s", name, v, strerror(-gsi));
            return gsi;
        }
        dev->gsi[v] = gsi;
        rc = h->irqfd(h->opaque, dev->irq_fd[v], gsi, true);
        if (rc)
            return rc;
    }
    return 0;
}

/* Each device type's I/O thread runs under its own seccomp list (docs/security.md). */
static enum sandbox_class sandbox_class_of(uint16_t device_id)
{
    switch (device_id) {
    case VIRTIO_ID_BLOCK:
        return SANDBOX_IO_BLK;
    case 1: /* network card (virtio 1.2, 5 "Device Types"; net.c has the name) */
        return SANDBOX_IO_NET;
    case VIRTIO_ID_CONSOLE:
        return SANDBOX_IO_CONSOLE;
    case VIRTIO_ID_RNG:
        return SANDBOX_IO_RNG;
    case VIRTIO_ID_BALLOON:
        return SANDBOX_IO_BALLOON;
    case 19: /* socket device */
        return SANDBOX_IO_VSOCK;
    case 26: /* file system device */
        return SANDBOX_IO_FS;
    }
    return SANDBOX_IO_OTHER;
}

int virtio_pci_start(struct virtio_dev *dev)
{
    int rc = pci_register(dev->m->pci, &dev->pci, -1);
    if (rc) {
        log_error("%s: cannot place on the PCI bus: %s", dev->name, strerror(-rc));
        return rc;
    }
    rc = evloop_start_thread(dev->loop, dev->name, sandbox_class_of(dev->device_id));
    if (rc) {
        log_error("%s: cannot start its I/O thread: %s", dev->name, strerror(-rc));
        return rc;
    }
    dev->thread_started = true;
    log_debug("%s at %02x.%x, BAR0 0x%llx", dev->name, dev->pci.devfn >> 3, dev->pci.devfn & 7,
              (unsigned long long)dev->pci.bars[VIRTIO_BAR].addr);
    return 0;
}

void virtio_pci_reset(struct virtio_dev *dev)
{
    pthread_mutex_lock(&dev->lock);
    reset_locked(dev);
    pthread_mutex_unlock(&dev->lock);
}

void virtio_pci_destroy(struct virtio_dev *dev)
{
    if (!dev)
        return;
    if (dev->loop)
        evloop_stop(dev->loop);
    if (dev->pci.bus)
        pci_unregister(dev->pci.bus, &dev->pci);
    if (dev->bar_addr)
        move_notify(dev, dev->bar_addr, 0);
    pthread_mutex_lock(&dev->lock);
    if (dev->ops->reset)
        dev->ops->reset(dev);
    pthread_mutex_unlock(&dev->lock);
    const struct vm_hooks *h = dev->m->hooks;
    for (unsigned v = 0; v < VIRTIO_MAX_VECTORS; v++) {
        if (dev->gsi[v] >= 0 && h && h->irqfd)
            h->irqfd(h->opaque, dev->irq_fd[v], dev->gsi[v], false);
        if (dev->gsi[v] >= 0 && dev->route_valid[v] && h && h->msi_set)
            h->msi_set(h->opaque, dev->gsi[v], 0, 0, dev->pci.devfn, true);
        if (dev->irq_fd[v] >= 0)
            close(dev->irq_fd[v]);
    }
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        if (dev->queues[i].kick_fd >= 0)
            close(dev->queues[i].kick_fd);
    if (dev->loop && dev->loop_borrowed)
        evloop_clear(dev->loop); /* parked above; the loop's thread serves the next boot */
    else if (dev->loop)
        evloop_destroy(dev->loop);
    dev->loop = NULL;
    pthread_mutex_destroy(&dev->lock);
    if (dev->ops->destroy)
        dev->ops->destroy(dev);
}

void virtio_dev_destroy(struct virtio_dev *dev)
{
    virtio_pci_destroy(dev);
}

void virtio_dev_reset(struct virtio_dev *dev)
{
    virtio_pci_reset(dev);
}
