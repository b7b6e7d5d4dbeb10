/*
 * Virtio PCI transport, modern only (virtio 1.2, 4.1). The device state
 * machine it drives (status, features, queues, reset) is virtio/virtio.c's;
 * this file owns the PCI function, the BAR layout and MSI-X.
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

#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_FMASK 0x4000
#define MSIX_VECTOR_MASKED 1
/* ISR bit 0, used buffers (4.1.4.5); the uapi header names only the config bit. */
#define ISR_QUEUE 0x1

struct msix_entry {
    uint64_t addr;
    uint32_t data;
    uint32_t ctrl; /* bit 0: vector masked */
};

struct virtio_pci {
    struct pci_device pci;
    struct virtio_dev *dev;
    uint32_t dfselect, gfselect;
    uint16_t queue_sel;
    uint16_t config_vector;
    uint16_t queue_vector[VIRTIO_MAX_QUEUES];
    uint8_t isr; /* read-to-clear; updated atomically */

    /* MSI-X (PCI 3.0, 6.8.2): one GSI, irqfd and eventfd per vector. */
    unsigned nvectors;
    int msix_cap;
    bool msix_enabled, msix_masked;
    struct msix_entry msix[VIRTIO_MAX_VECTORS];
    uint64_t msix_pending; /* PBA bits */
    int gsi[VIRTIO_MAX_VECTORS];
    int irq_fd[VIRTIO_MAX_VECTORS];
    bool route_valid[VIRTIO_MAX_VECTORS];

    int pci_cfg_cap;   /* VIRTIO_PCI_CAP_PCI_CFG window */
    uint64_t bar_addr; /* where the notify ioeventfds are registered (0: none) */
};

static struct virtio_pci *tp(const struct virtio_dev *dev)
{
    return dev->transport;
}

static void signal_efd(int fd)
{
    uint64_t one = 1;
    if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
        log_debug("virtio: eventfd write: %m");
}

/* ---- interrupts ---- */

static bool vector_masked(const struct virtio_pci *t, unsigned v)
{
    return !t->msix_enabled || t->msix_masked || (t->msix[v].ctrl & MSIX_VECTOR_MASKED);
}

static void raise_vector(struct virtio_pci *t, uint16_t v)
{
    if (v == VIRTIO_MSI_NO_VECTOR || v >= t->nvectors || !t->msix_enabled)
        return; /* no INTx: this transport is MSI-X only */
    if (vector_masked(t, v)) {
        t->msix_pending |= 1ull << v;
        return;
    }
    signal_efd(t->irq_fd[v]);
}

/* Bring vector v's KVM route in line with its table entry and mask state. */
static void update_vector(struct virtio_pci *t, unsigned v)
{
    const struct vm_hooks *h = t->dev->m->hooks;
    bool masked = vector_masked(t, v);
    if (t->gsi[v] >= 0 && h && h->msi_set) {
        int rc = h->msi_set(h->opaque, t->gsi[v], t->msix[v].addr, t->msix[v].data, t->pci.devfn,
                            masked);
        if (rc)
            log_warn("%s: MSI-X vector %u route: %s", t->dev->name, v, strerror(-rc));
        t->route_valid[v] = rc == 0 && !masked;
    }
    if (!masked && (t->msix_pending & (1ull << v))) {
        t->msix_pending &= ~(1ull << v);
        signal_efd(t->irq_fd[v]);
    }
}

static void pci_notify_queue(struct virtio_dev *dev, unsigned q)
{
    struct virtio_pci *t = tp(dev);
    __atomic_or_fetch(&t->isr, ISR_QUEUE, __ATOMIC_SEQ_CST);
    raise_vector(t, t->queue_vector[q]);
}

static void pci_notify_config(struct virtio_dev *dev)
{
    struct virtio_pci *t = tp(dev);
    __atomic_or_fetch(&t->isr, VIRTIO_PCI_ISR_CONFIG, __ATOMIC_SEQ_CST);
    raise_vector(t, t->config_vector);
}

static void pci_reset(struct virtio_dev *dev)
{
    struct virtio_pci *t = tp(dev);
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        t->queue_vector[i] = VIRTIO_MSI_NO_VECTOR;
    t->dfselect = t->gfselect = 0;
    t->queue_sel = 0;
    t->config_vector = VIRTIO_MSI_NO_VECTOR;
    __atomic_store_n(&t->isr, 0, __ATOMIC_SEQ_CST);
}

/* ---- common configuration (4.1.4.3) ---- */

static const struct {
    uint8_t off, size;
} common_fields[] = {
    {VIRTIO_PCI_COMMON_DFSELECT, 4},  {VIRTIO_PCI_COMMON_DF, 4},
    {VIRTIO_PCI_COMMON_GFSELECT, 4},  {VIRTIO_PCI_COMMON_GF, 4},
    {VIRTIO_PCI_COMMON_MSIX, 2},      {VIRTIO_PCI_COMMON_NUMQ, 2},
    {VIRTIO_PCI_COMMON_STATUS, 1},    {VIRTIO_PCI_COMMON_CFGGENERATION, 1},
    {VIRTIO_PCI_COMMON_Q_SELECT, 2},  {VIRTIO_PCI_COMMON_Q_SIZE, 2},
    {VIRTIO_PCI_COMMON_Q_MSIX, 2},    {VIRTIO_PCI_COMMON_Q_ENABLE, 2},
    {VIRTIO_PCI_COMMON_Q_NOFF, 2},    {VIRTIO_PCI_COMMON_Q_DESCLO, 8},
    {VIRTIO_PCI_COMMON_Q_AVAILLO, 8}, {VIRTIO_PCI_COMMON_Q_USEDLO, 8},
    {VIRTIO_PCI_COMMON_Q_NDATA, 2},   {VIRTIO_PCI_COMMON_Q_RESET, 2},
};

static struct virtio_queue *selected_queue(struct virtio_pci *t)
{
    struct virtio_dev *dev = t->dev;
    return t->queue_sel < dev->nqueues ? &dev->queues[t->queue_sel] : NULL;
}

static uint64_t common_get(struct virtio_pci *t, unsigned off)
{
    struct virtio_dev *dev = t->dev;
    struct virtio_queue *q = selected_queue(t);
    switch (off) {
    case VIRTIO_PCI_COMMON_DFSELECT:
        return t->dfselect;
    case VIRTIO_PCI_COMMON_DF:
        return t->dfselect < 2 ? (uint32_t)(dev->host_features >> (32 * t->dfselect)) : 0;
    case VIRTIO_PCI_COMMON_GFSELECT:
        return t->gfselect;
    case VIRTIO_PCI_COMMON_GF:
        return t->gfselect < 2 ? (uint32_t)(dev->guest_features >> (32 * t->gfselect)) : 0;
    case VIRTIO_PCI_COMMON_MSIX:
        return t->config_vector;
    case VIRTIO_PCI_COMMON_NUMQ:
        return dev->nqueues;
    case VIRTIO_PCI_COMMON_STATUS:
        return virtio_dev_get_status(dev);
    case VIRTIO_PCI_COMMON_CFGGENERATION:
        return dev->config_generation;
    case VIRTIO_PCI_COMMON_Q_SELECT:
        return t->queue_sel;
    }
    if (!q)
        return 0; /* queue_size 0: no such queue (4.1.4.3.2) */
    switch (off) {
    case VIRTIO_PCI_COMMON_Q_SIZE:
        return q->size;
    case VIRTIO_PCI_COMMON_Q_MSIX:
        return t->queue_vector[q->index];
    case VIRTIO_PCI_COMMON_Q_ENABLE:
        return q->enabled;
    case VIRTIO_PCI_COMMON_Q_NOFF:
        return q->index;
    case VIRTIO_PCI_COMMON_Q_DESCLO:
        return q->desc;
    case VIRTIO_PCI_COMMON_Q_AVAILLO:
        return q->avail;
    case VIRTIO_PCI_COMMON_Q_USEDLO:
        return q->used;
    }
    return 0;
}

static void common_set(struct virtio_pci *t, unsigned off, uint64_t v)
{
    struct virtio_dev *dev = t->dev;
    struct virtio_queue *q = selected_queue(t);
    switch (off) {
    case VIRTIO_PCI_COMMON_DFSELECT:
        t->dfselect = (uint32_t)v;
        return;
    case VIRTIO_PCI_COMMON_GFSELECT:
        t->gfselect = (uint32_t)v;
        return;
    case VIRTIO_PCI_COMMON_GF:
        if (t->gfselect < 2 && !(dev->status & VIRTIO_CONFIG_S_FEATURES_OK) && !dev->resetting) {
            unsigned shift = 32 * t->gfselect;
            dev->guest_features &= ~(0xffffffffull << shift);
            dev->guest_features |= (v & 0xffffffffull) << shift;
        }
        return;
    case VIRTIO_PCI_COMMON_MSIX:
        t->config_vector = v < t->nvectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
        return;
    case VIRTIO_PCI_COMMON_STATUS:
        virtio_dev_set_status(dev, (uint8_t)v);
        return;
    case VIRTIO_PCI_COMMON_Q_SELECT:
        t->queue_sel = (uint16_t)v;
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
        t->queue_vector[q->index] = v < t->nvectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
        return;
    case VIRTIO_PCI_COMMON_Q_ENABLE:
        /* Writing 0 is not allowed (4.1.4.3.2); queue_reset is not offered. */
        if (v == 1)
            virtio_dev_queue_enable(dev, q->index);
        return;
    case VIRTIO_PCI_COMMON_Q_DESCLO:
        if (!q->enabled)
            q->desc = v;
        return;
    case VIRTIO_PCI_COMMON_Q_AVAILLO:
        if (!q->enabled)
            q->avail = v;
        return;
    case VIRTIO_PCI_COMMON_Q_USEDLO:
        if (!q->enabled)
            q->used = v;
        return;
    }
}

static void common_read(struct virtio_pci *t, unsigned off, uint8_t *data, unsigned len)
{
    for (unsigned b = 0; b < len; b++) {
        data[b] = 0;
        for (size_t f = 0; f < sizeof(common_fields) / sizeof(common_fields[0]); f++) {
            unsigned fo = common_fields[f].off;
            if (off + b >= fo && off + b < fo + common_fields[f].size) {
                data[b] = (uint8_t)(common_get(t, fo) >> (8 * (off + b - fo)));
                break;
            }
        }
    }
}

/* Fields may be written in parts (a 64-bit address as two 32-bit halves, 4.1.3.1). */
static void common_write(struct virtio_pci *t, unsigned off, const uint8_t *data, unsigned len)
{
    for (size_t f = 0; f < sizeof(common_fields) / sizeof(common_fields[0]); f++) {
        unsigned fo = common_fields[f].off, fs = common_fields[f].size;
        if (off >= fo + fs || off + len <= fo)
            continue;
        uint64_t v = common_get(t, fo);
        for (unsigned b = 0; b < len; b++) {
            if (off + b < fo || off + b >= fo + fs)
                continue;
            unsigned shift = 8 * (off + b - fo);
            v = (v & ~(0xffull << shift)) | ((uint64_t)data[b] << shift);
        }
        common_set(t, fo, v);
    }
}

/* ---- MSI-X table (PCI 3.0, 6.8.2.6) ---- */

static void msix_entry_bytes(const struct msix_entry *e, uint8_t out[16])
{
    uint32_t w[4] = {(uint32_t)e->addr, (uint32_t)(e->addr >> 32), e->data, e->ctrl};
    memcpy(out, w, 16);
}

static void msix_table_read(struct virtio_pci *t, unsigned off, uint8_t *data, unsigned len)
{
    for (unsigned b = 0; b < len; b++) {
        unsigned v = (off + b) / 16;
        uint8_t bytes[16];
        if (v >= t->nvectors) {
            data[b] = 0;
            continue;
        }
        msix_entry_bytes(&t->msix[v], bytes);
        data[b] = bytes[(off + b) % 16];
    }
}

static void msix_table_write(struct virtio_pci *t, unsigned off, const uint8_t *data, unsigned len)
{
    unsigned v = off / 16;
    if (v >= t->nvectors || (off % 16) + len > 16)
        return;
    struct msix_entry *e = &t->msix[v];
    uint8_t bytes[16];
    msix_entry_bytes(e, bytes);
    memcpy(bytes + off % 16, data, len);
    uint32_t w[4];
    memcpy(w, bytes, 16);
    struct msix_entry n = {.addr = w[0] | (uint64_t)w[1] << 32, .data = w[2], .ctrl = w[3] & 1};
    if (n.addr == e->addr && n.data == e->data && n.ctrl == e->ctrl)
        return;
    *e = n;
    update_vector(t, v);
}

/* ---- the BAR ---- */

static void bar_read(void *opaque, uint64_t off, void *data, unsigned len)
{
    struct virtio_pci *t = opaque;
    struct virtio_dev *dev = t->dev;
    memset(data, 0, len);
    if (off >= VIRTIO_BAR_ISR && off < VIRTIO_BAR_ISR + 4) {
        /* Reading the ISR acknowledges it (4.1.4.5). */
        if (off == VIRTIO_BAR_ISR)
            *(uint8_t *)data = __atomic_exchange_n(&t->isr, 0, __ATOMIC_SEQ_CST);
        return;
    }
    pthread_mutex_lock(&dev->lock);
    if (off < VIRTIO_COMMON_CFG_LEN) {
        unsigned n = off + len > VIRTIO_COMMON_CFG_LEN ? VIRTIO_COMMON_CFG_LEN - off : len;
        common_read(t, (unsigned)off, data, n);
    } else if (off >= VIRTIO_BAR_DEVICE && off < VIRTIO_BAR_DEVICE + dev->config_len) {
        unsigned o = (unsigned)(off - VIRTIO_BAR_DEVICE);
        if (o + len <= dev->config_len && dev->ops->config_read)
            dev->ops->config_read(dev, o, data, len);
    } else if (off >= VIRTIO_BAR_MSIX_TABLE && off < VIRTIO_BAR_MSIX_PBA) {
        msix_table_read(t, (unsigned)(off - VIRTIO_BAR_MSIX_TABLE), data, len);
    } else if (off >= VIRTIO_BAR_MSIX_PBA && off < VIRTIO_BAR_MSIX_PBA + 8) {
        uint64_t pba = t->msix_pending;
        unsigned o = (unsigned)(off - VIRTIO_BAR_MSIX_PBA);
        for (unsigned b = 0; b < len && o + b < 8; b++)
            ((uint8_t *)data)[b] = (uint8_t)(pba >> (8 * (o + b)));
    }
    pthread_mutex_unlock(&dev->lock);
}

static void bar_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
    struct virtio_pci *t = opaque;
    struct virtio_dev *dev = t->dev;
    if (off >= VIRTIO_BAR_NOTIFY &&
        off < VIRTIO_BAR_NOTIFY + (uint64_t)VIRTIO_NOTIFY_MULTIPLIER * dev->nqueues) {
        /* The ioeventfd missed this one: hand it to the I/O thread the same way. */
        virtio_dev_kick(dev, (unsigned)(off - VIRTIO_BAR_NOTIFY) / VIRTIO_NOTIFY_MULTIPLIER);
        return;
    }
    pthread_mutex_lock(&dev->lock);
    if (off < VIRTIO_COMMON_CFG_LEN) {
        unsigned n = off + len > VIRTIO_COMMON_CFG_LEN ? VIRTIO_COMMON_CFG_LEN - off : len;
        common_write(t, (unsigned)off, data, n);
    } else if (off >= VIRTIO_BAR_DEVICE && off < VIRTIO_BAR_DEVICE + dev->config_len) {
        unsigned o = (unsigned)(off - VIRTIO_BAR_DEVICE);
        if (o + len <= dev->config_len && dev->ops->config_write)
            dev->ops->config_write(dev, o, data, len);
    } else if (off >= VIRTIO_BAR_MSIX_TABLE && off < VIRTIO_BAR_MSIX_PBA) {
        msix_table_write(t, (unsigned)(off - VIRTIO_BAR_MSIX_TABLE), data, len);
    }
    pthread_mutex_unlock(&dev->lock);
}

const struct io_ops virtio_pci_bar_ops = {.read = bar_read, .write = bar_write};

/* ---- PCI configuration space hooks ---- */

static void move_notify(struct virtio_pci *t, uint64_t old, uint64_t new_addr)
{
    struct virtio_dev *dev = t->dev;
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
    t->bar_addr = new_addr;
}

static void pci_bar_moved(struct pci_device *pdev, int bar, uint64_t old, uint64_t new_addr)
{
    struct virtio_pci *t = pdev->opaque;
    if (bar == VIRTIO_BAR)
        move_notify(t, t->bar_addr, new_addr);
    (void)old;
}

static bool overlaps(unsigned off, unsigned len, unsigned start, unsigned n)
{
    return off < start + n && off + len > start;
}

/* VIRTIO_PCI_CAP_PCI_CFG (4.1.4.9): a window onto the BAR through config space. */
static void pci_cfg_window(struct virtio_pci *t, unsigned off, unsigned len)
{
    struct pci_device *p = &t->pci;
    unsigned c = (unsigned)t->pci_cfg_cap;
    uint8_t bar = p->config[c + 4];
    uint32_t boff = pci_get_u32(p, c + 8), blen = pci_get_u32(p, c + 12);
    if (bar != VIRTIO_BAR || (blen != 1 && blen != 2 && blen != 4) || boff >= VIRTIO_BAR_SIZE ||
        boff + blen > VIRTIO_BAR_SIZE)
        return;
    if (overlaps(off, len, c + 16, 4)) {
        bar_write(t, boff, &p->config[c + 16], blen);
    } else {
        /* We cannot see config reads, so the read happens when the window is aimed. */
        uint32_t v = 0;
        bar_read(t, boff, &v, blen);
        pci_set_u32(p, c + 16, v);
    }
}

static void pci_config_written(struct pci_device *pdev, unsigned off, unsigned len)
{
    struct virtio_pci *t = pdev->opaque;
    struct virtio_dev *dev = t->dev;
    if (t->msix_cap > 0 && overlaps(off, len, (unsigned)t->msix_cap + 2, 2)) {
        uint16_t ctrl = pci_get_u16(pdev, (unsigned)t->msix_cap + 2);
        pthread_mutex_lock(&dev->lock);
        bool en = ctrl & MSIX_CTRL_ENABLE, fm = ctrl & MSIX_CTRL_FMASK;
        if (en != t->msix_enabled || fm != t->msix_masked) {
            t->msix_enabled = en;
            t->msix_masked = fm;
            for (unsigned v = 0; v < t->nvectors; v++)
                update_vector(t, v);
        }
        pthread_mutex_unlock(&dev->lock);
    }
    if (t->pci_cfg_cap > 0 && overlaps(off, len, (unsigned)t->pci_cfg_cap + 4, 16))
        pci_cfg_window(t, off, len);
}

static const struct pci_device_ops virtio_pci_device_ops = {
    .bar_moved = pci_bar_moved,
    .config_written = pci_config_written,
};

/* ---- setup ---- */

static int add_virtio_cap(struct virtio_pci *t, uint8_t type, uint32_t offset, uint32_t length,
                          unsigned cap_len)
{
    struct pci_device *p = &t->pci;
    int c = pci_add_cap(p, PCI_CAP_ID_VNDR, cap_len);
    if (c < 0)
        return c;
    unsigned o = (unsigned)c;
    pci_set_u8(p, o + VIRTIO_PCI_CAP_LEN, (uint8_t)cap_len);
    pci_set_u8(p, o + VIRTIO_PCI_CAP_CFG_TYPE, type);
    pci_set_u8(p, o + VIRTIO_PCI_CAP_BAR, VIRTIO_BAR);
    pci_set_u8(p, o + 5, 0); /* id: only one structure of each type */
    pci_set_u32(p, o + VIRTIO_PCI_CAP_OFFSET, offset);
    pci_set_u32(p, o + VIRTIO_PCI_CAP_LENGTH, length);
    return c;
}

/*
 * The PCI class each device type reports (base:sub:prog), as other virtio
 * implementations do: a transport property, so it lives here and not in
 * the device models.
 */
static uint32_t class_code_of(uint16_t device_id)
{
    switch (device_id) {
    case VIRTIO_ID_NET:
        return 0x020000; /* network, ethernet */
    case VIRTIO_ID_BLOCK:
        return 0x010000; /* mass storage, SCSI */
    case VIRTIO_ID_CONSOLE:
    case VIRTIO_ID_VSOCK:
        return 0x078000; /* communication, other */
    case VIRTIO_ID_FS:
        return 0x018000; /* mass storage, other */
    }
    return 0xff0000; /* "other": no class for entropy sources, balloons */
}

static int build_config_space(struct virtio_pci *t)
{
    struct virtio_dev *dev = t->dev;
    struct pci_device *p = &t->pci;
    uint32_t class_code = class_code_of(dev->device_id);
    pci_device_init(p, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + dev->device_id), 0,
                    VIRTIO_PCI_VENDOR, 0x1100);
    /* Revision 1 marks a modern-only device (4.1.2.1); class code is base:sub:prog. */
    pci_set_u8(p, PCI_REVISION_ID, 1);
    pci_set_u8(p, PCI_CLASS_PROG, (uint8_t)class_code);
    pci_set_u16(p, PCI_CLASS_DEVICE, (uint16_t)(class_code >> 8));
    pci_set_u8(p, PCI_INTERRUPT_PIN, 0);
    p->ops = &virtio_pci_device_ops;
    p->opaque = t;
    pci_device_set_bar(p, VIRTIO_BAR, VIRTIO_BAR_SIZE, false, false, &virtio_pci_bar_ops, t);

    int c =
        add_virtio_cap(t, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_BAR_COMMON, VIRTIO_COMMON_CFG_LEN, 16);
    if (c >= 0)
        c = add_virtio_cap(t, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_BAR_ISR, 1, 16);
    if (c >= 0) {
        c = add_virtio_cap(t, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_BAR_NOTIFY,
                           VIRTIO_NOTIFY_MULTIPLIER * dev->nqueues, 20);
        if (c >= 0)
            pci_set_u32(p, (unsigned)c + 16, VIRTIO_NOTIFY_MULTIPLIER);
    }
    if (c >= 0 && dev->config_len)
        c = add_virtio_cap(t, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_BAR_DEVICE, dev->config_len, 16);
    if (c >= 0) {
        c = add_virtio_cap(t, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 20);
        if (c >= 0) {
            t->pci_cfg_cap = c;
            pci_set_u8(p, (unsigned)c + 4, 0);
            /* bar, offset, length and data are the driver's to write. */
            p->wmask[c + 4] = 0xff;
            memset(&p->wmask[c + 8], 0xff, 12);
        }
    }
    if (c >= 0) {
        c = pci_add_cap(p, PCI_CAP_ID_MSIX, 12);
        if (c >= 0) {
            t->msix_cap = c;
            pci_set_u16(p, (unsigned)c + 2, (uint16_t)(t->nvectors - 1));
            pci_set_u32(p, (unsigned)c + 4, VIRTIO_BAR_MSIX_TABLE | VIRTIO_BAR);
            pci_set_u32(p, (unsigned)c + 8, VIRTIO_BAR_MSIX_PBA | VIRTIO_BAR);
            p->wmask[c + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK) >> 8;
        }
    }
    return c < 0 ? c : 0;
}

static int pci_start(struct virtio_dev *dev)
{
    struct virtio_pci *t = tp(dev);
    int rc = pci_register(dev->m->pci, &t->pci, -1);
    if (rc) {
        log_error("%s: cannot place on the PCI bus: %s", dev->name, strerror(-rc));
        return rc;
    }
    log_debug("%s at %02x.%x, BAR0 0x%llx", dev->name, t->pci.devfn >> 3, t->pci.devfn & 7,
              (unsigned long long)t->pci.bars[VIRTIO_BAR].addr);
    return 0;
}

static void pci_stop(struct virtio_dev *dev)
{
    struct virtio_pci *t = tp(dev);
    if (t->pci.bus)
        pci_unregister(t->pci.bus, &t->pci);
    if (t->bar_addr)
        move_notify(t, t->bar_addr, 0);
}

static void pci_destroy(struct virtio_dev *dev)
{
    struct virtio_pci *t = tp(dev);
    const struct vm_hooks *h = dev->m->hooks;
    for (unsigned v = 0; v < VIRTIO_MAX_VECTORS; v++) {
        if (t->gsi[v] >= 0 && h && h->irqfd)
            h->irqfd(h->opaque, t->irq_fd[v], t->gsi[v], false);
        if (t->gsi[v] >= 0 && t->route_valid[v] && h && h->msi_set)
            h->msi_set(h->opaque, t->gsi[v], 0, 0, t->pci.devfn, true);
        if (t->irq_fd[v] >= 0)
            close(t->irq_fd[v]);
    }
    free(t);
    dev->transport = NULL;
    dev->tops = NULL;
}

static const struct virtio_transport_ops pci_transport_ops = {
    .notify_queue = pci_notify_queue,
    .notify_config = pci_notify_config,
    .reset = pci_reset,
    .start = pci_start,
    .stop = pci_stop,
    .destroy = pci_destroy,
};

int virtio_pci_attach(struct virtio_dev *dev)
{
    struct virtio_pci *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->dev = dev;
    for (unsigned v = 0; v < VIRTIO_MAX_VECTORS; v++) {
        t->gsi[v] = -1;
        t->irq_fd[v] = -1;
    }
    t->nvectors = dev->nqueues + 1;
    dev->transport = t;
    dev->tops = &pci_transport_ops;
    pci_reset(dev);

    int rc = build_config_space(t);
    if (rc)
        return rc;
    const struct vm_hooks *h = dev->m->hooks;
    for (unsigned v = 0; v < t->nvectors; v++) {
        t->irq_fd[v] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (t->irq_fd[v] < 0)
            return -errno;
        t->msix[v].ctrl = MSIX_VECTOR_MASKED; /* reset state (6.8.2.9) */
        if (!h || !h->msi_alloc || !h->irqfd)
            continue;
        int gsi = h->msi_alloc(h->opaque);
        if (gsi < 0) {
            log_error("%s: no GSI for MSI-X vector %u: %s", dev->name, v, strerror(-gsi));
            return gsi;
        }
        t->gsi[v] = gsi;
        rc = h->irqfd(h->opaque, t->irq_fd[v], gsi, true);
        if (rc)
            return rc;
    }
    return 0;
}

struct pci_device *virtio_pci_function(struct virtio_dev *dev)
{
    return &tp(dev)->pci;
}

int virtio_pci_vector_gsi(const struct virtio_dev *dev, unsigned v)
{
    return v < VIRTIO_MAX_VECTORS ? tp(dev)->gsi[v] : -1;
}

int virtio_pci_msix_cap(const struct virtio_dev *dev)
{
    return tp(dev)->msix_cap;
}

int virtio_pci_cfg_cap(const struct virtio_dev *dev)
{
    return tp(dev)->pci_cfg_cap;
}
