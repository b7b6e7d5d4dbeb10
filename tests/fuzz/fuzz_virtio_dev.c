/*
 * libFuzzer target for what the virtio devices do with a guest's requests
 * (virtio 1.2, 4.1 transport; 5.2 blk, 5.3 console, 5.4 rng, 5.5 balloon).
 * One device per input, created on a fake machine (tests/unit/support)
 * and driven the way a hostile guest could: bytes written anywhere in guest
 * RAM, MMIO accesses of any width anywhere in the BAR, PCI configuration
 * writes, kicks, host-side calls, and waits for the device to go idle.
 *
 * Input: byte 0 picks the device (blk on a memfd image, read-write or
 * read-only, io_uring or worker threads; balloon; console logging to a file, or on a pty we type
 * into; rng; bit 4: on a kept I/O loop that every such input borrows, as the
 * devices rebuilt after a guest reboot do), then a program of operations (see the OP_* list).
 * Besides the sanitizers, each settle checks that every new used-ring entry names a descriptor of
 * the ring and claims no more bytes than the chain offers the device to write (devices that only
 * read must claim none). Guest RAM sits between PROT_NONE guard pages, so a device write outside
 * RAM faults. FUZZ_VIRTIO_DEV_TRACE=1 prints what each settle saw.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../unit/support/fake_hooks.h"
#include "../unit/support/virtio_driver.h"
#include "block/block.h"
#include "core/config.h"
#include "core/log.h"
#include "virtio/devices.h"
#include "virtio/pci.h"
#include "vmm/evloop.h"

/* Guest RAM: low region at 0, a small high region, guard pages around each. */
#define PAGE 4096u
#define LOW_GPA 0x0u
#define LOW_SIZE 0x10000u
#define HIGH_GPA 0x100000u
#define HIGH_SIZE 0x4000u
/* Where SETUP puts queue q: desc, avail and used rings inside one page. */
#define QUEUE_AREA(q) (0x1000u * ((q) + 1))
#define QUEUE_AVAIL_OFF 0x800u
#define QUEUE_USED_OFF 0xa00u
#define QUEUE_SETUP_MAX 128
/* Indirect tables built by ADD_CHAIN, then request buffers. */
#define INDIRECT_AREA 0x5000u
#define INDIRECT_SLOT 0x200u
#define DATA_AREA 0x6000u
#define DISK_BYTES (128u * 512u)
#define MAX_CHAIN 16
#define SETTLE_WAIT_MS 200
#define PTY_WAIT_MS 20
#define BARRIER_WAIT_MS 30000

enum dev_kind {
    KIND_BLK,
    KIND_BLK_RO,
    KIND_BALLOON,
    KIND_CONSOLE,
    KIND_RNG,
    KIND_CONSOLE_PTY,
    KINDS
};

enum op {
    OP_SETUP,      /* u8 flags: a conforming driver brings the device up */
    OP_MMIO_WRITE, /* u16 offset, u8 width, value */
    OP_MMIO_READ,  /* u16 offset, u8 width */
    OP_RAM_WRITE,  /* u8 region, u16 offset, u8 len, bytes */
    OP_KICK,       /* u8 queue */
    OP_SETTLE,     /* wait until the device is idle, then check the used rings */
    OP_ADD_CHAIN,  /* u8 queue, u8 n (bit 7: indirect), n x {u8 flags, u16 off, u16 len} */
    OP_PCI_CONFIG, /* u16 offset, u8 width (bit 7: read; 6, 5: in a capability), u32 value */
    OP_HOST,       /* u8 call (0xf0 up: quiesce + resume), u32 argument */
    OP_BLK_REQ,    /* u8 type, u16 sector, u16 data length, u8 layout */
    OP_INPUT,      /* u8 len, bytes: typed on the console's pty */
    OPS
};

struct input {
    const uint8_t *p;
    size_t left;
};

static uint64_t take(struct input *in, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes && in->left; i++, in->left--)
        v |= (uint64_t)*in->p++ << (8 * i);
    return v;
}

/* The driver's view of a queue it set up with OP_SETUP. */
struct drv_queue {
    bool set;
    uint16_t size, avail_idx, next_desc;
    uint64_t desc, avail, used;
};

/* What a settle compares the device's used rings against. */
struct used_mark {
    uint16_t size, used_idx, last_avail;
    uint64_t desc_gpa, used_gpa;
};

static struct {
    bool ready, trace; /* FUZZ_VIRTIO_DEV_TRACE=1: say what each settle saw */
    struct guest_mem gm;
    uint8_t *reservation;
    size_t reservation_len;
    struct guest_mem snap_gm; /* RAM when the device was last set to work */
    uint8_t *snap;
    int disk_fd;
    char disk_path[64], console_path[64];
    /* Bit 4 of byte 0: the device runs on this loop, kept across inputs. */
    struct evloop *kept_loop;
} world;

static struct {
    enum dev_kind kind;
    struct fake_vm vm;
    struct virtio_dev *dev;
    /* The host side the device borrows (opened per input, closed after the device). */
    struct blk_image *img;
    struct console_host *host;
    struct vdrv drv;
    struct drv_queue q[VIRTIO_MAX_QUEUES];
    struct used_mark mark[VIRTIO_MAX_QUEUES];
    unsigned indirect_next;
    /* The device may have work since the last settle. */
    bool triggered;
    int barrier_fd, barrier_done_fd;
    /* Console on a pty: our end, bytes typed, bytes seen in receive buffers. */
    int pty_fd;
    uint64_t input_written, input_received;
    /* Input may still reach the guest on its own: checks are off from here. */
    bool racy;
    int barrier_stage;
} run;

static void die(const char *what, unsigned q, unsigned long long a, unsigned long long b)
{
    fprintf(stderr, "fuzz_virtio_dev: %s (queue %u: %llu, %llu)\n", what, q, a, b);
    abort();
}

/* ---- guest RAM between guard pages, a disk image, a console log ---- */

static int map_region(uint8_t *at, uint64_t size, uint64_t gpa)
{
    void *p =
        mmap(at, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    world.gm.regions[world.gm.nr_regions++] =
        (struct guest_mem_region){.gpa = gpa, .size = size, .host = p};
    return 0;
}

static void world_init(void)
{
    world.trace = getenv("FUZZ_VIRTIO_DEV_TRACE") != NULL;
    log_init(world.trace ? 2 : 0, -1);
    world.reservation_len = PAGE + LOW_SIZE + PAGE + HIGH_SIZE + PAGE;
    world.reservation = mmap(NULL, world.reservation_len, PROT_NONE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (world.reservation == MAP_FAILED ||
        map_region(world.reservation + PAGE, LOW_SIZE, LOW_GPA) ||
        map_region(world.reservation + 2 * PAGE + LOW_SIZE, HIGH_SIZE, HIGH_GPA))
        die("cannot set up guest RAM", 0, (unsigned long long)errno, 0);
    world.gm.ram_size = LOW_SIZE + HIGH_SIZE;
    world.snap = malloc(world.gm.ram_size);
    if (!world.snap)
        die("cannot allocate the RAM snapshot", 0, 0, 0);
    world.snap_gm = world.gm;
    for (unsigned i = 0, off = 0; i < world.gm.nr_regions; off += world.gm.regions[i++].size)
        world.snap_gm.regions[i].host = world.snap + off;
    world.disk_fd = memfd_create("fuzz-disk", MFD_CLOEXEC);
    if (world.disk_fd < 0)
        die("cannot create the disk", 0, (unsigned long long)errno, 0);
    snprintf(world.disk_path, sizeof(world.disk_path), "/proc/self/fd/%d", world.disk_fd);
    snprintf(world.console_path, sizeof(world.console_path), "/tmp/fuzz-virtio-dev-%d.log",
             (int)getpid());
    if (evloop_create(&world.kept_loop))
        die("cannot create the kept loop", 0, 0, 0);
    world.ready = true;
}

static void world_reset(void)
{
    /* Zero RAM through the file: this also refills what a balloon punched. */
    for (unsigned i = 0; i < world.gm.nr_regions; i++)
        memset(world.gm.regions[i].host, 0, world.gm.regions[i].size);
    if (ftruncate(world.disk_fd, 0) < 0 || ftruncate(world.disk_fd, DISK_BYTES) < 0)
        die("cannot reset the disk", 0, (unsigned long long)errno, 0);
    static const char label[] = "fuzz disk sector 0";
    if (pwrite(world.disk_fd, label, sizeof(label), 0) != (ssize_t)sizeof(label))
        die("cannot write the disk", 0, (unsigned long long)errno, 0);
}

/* ---- waiting for the device's I/O thread ---- */

/*
 * Runs on the device's I/O thread. The first call re-arms the eventfd, so
 * the second call comes from a later epoll batch: by then every handler
 * that was ready when the barrier was raised has finished.
 */
static void barrier_cb(struct virtio_dev *dev, int fd, uint32_t events)
{
    uint64_t v;
    (void)dev;
    (void)events;
    if (read(fd, &v, sizeof(v)) != sizeof(v))
        return;
    uint64_t one = 1;
    if (run.barrier_stage == 1) {
        run.barrier_stage = 2;
        if (write(fd, &one, sizeof(one)) != sizeof(one))
            die("barrier write", 0, 0, 0);
    } else if (run.barrier_stage == 2) {
        run.barrier_stage = 0;
        if (write(run.barrier_done_fd, &one, sizeof(one)) != sizeof(one))
            die("barrier write", 0, 0, 0);
    }
}

static void barrier(void)
{
    uint64_t one = 1, v;
    pthread_mutex_lock(&run.dev->lock);
    run.barrier_stage = 1;
    pthread_mutex_unlock(&run.dev->lock);
    if (write(run.barrier_fd, &one, sizeof(one)) != sizeof(one))
        die("barrier write", 0, 0, 0);
    /* Generous: the machine may be shared with busy VMs; a hung device still shows. */
    struct pollfd p = {.fd = run.barrier_done_fd, .events = POLLIN};
    if (poll(&p, 1, BARRIER_WAIT_MS) != 1 || read(run.barrier_done_fd, &v, sizeof(v)) != sizeof(v))
        die("device I/O thread did not answer (barrier stage)", 0,
            (unsigned long long)__atomic_load_n(&run.barrier_stage, __ATOMIC_RELAXED),
            BARRIER_WAIT_MS);
}

/* blk completes on the block layer's workers: wait until every popped chain came back. */
static bool blk_idle(void)
{
    struct virtq *vq = virtio_vq(run.dev, 0);
    pthread_mutex_lock(&run.dev->lock);
    bool idle = !virtq_ready(vq) || vq->used_idx == vq->last_avail;
    pthread_mutex_unlock(&run.dev->lock);
    return idle;
}

/* ---- invariants on the used rings ---- */

struct range {
    uint64_t start, len;
};

struct ranges {
    struct range r[4096];
    unsigned n;
    bool overflow;
};

static void ranges_add(struct ranges *rs, uint64_t start, uint64_t len)
{
    if (rs->n == sizeof(rs->r) / sizeof(rs->r[0]))
        rs->overflow = true;
    else
        rs->r[rs->n++] = (struct range){start, len};
}

static bool ranges_overlap(const struct ranges *a, const struct ranges *b)
{
    for (unsigned i = 0; i < a->n; i++)
        for (unsigned j = 0; j < b->n; j++)
            if (a->r[i].start < b->r[j].start + b->r[j].len &&
                b->r[j].start < a->r[i].start + a->r[i].len)
                return true;
    return false;
}

/*
 * Our own walk of the chain at head, as it is in guest RAM now: the bytes
 * it offers the device to write. false when the walk is not conclusive.
 */
static bool chain_writable(const struct virtq *vq, uint16_t head, uint64_t *writable,
                           struct ranges *descs, struct ranges *wbufs)
{
    uint64_t table = vq->desc_gpa;
    unsigned table_len = vq->size, steps = 0, i = head;
    bool indirect = false;
    *writable = 0;
    for (;;) {
        struct virtq_desc d;
        if (i >= table_len || ++steps > table_len ||
            !gm_read(&world.snap_gm, table + 16ull * i, &d, sizeof(d)))
            return false;
        ranges_add(descs, table + 16ull * i, sizeof(d));
        if (d.flags & VRING_DESC_F_INDIRECT) {
            if (indirect || !vq->indirect || d.len == 0 || d.len % 16)
                return false;
            table = d.addr;
            table_len = d.len / 16;
            steps = 0;
            i = 0;
            indirect = true;
            continue;
        }
        if ((d.flags & VRING_DESC_F_WRITE) && d.len) {
            *writable += d.len;
            ranges_add(wbufs, d.addr, d.len);
        }
        if (!(d.flags & VRING_DESC_F_NEXT))
            return true;
        i = d.next;
    }
}

static struct ranges check_descs, check_wbufs;

/*
 * New used entries of queue q since the last settle. Guest RAM was not
 * rewritten meanwhile (ram_touched), so the used ring holds what the device
 * wrote, unless the device wrote over it itself.
 */
static void check_queue(unsigned q)
{
    struct virtq *vq = virtio_vq(run.dev, q);
    struct used_mark *m = &run.mark[q];
    struct used_mark now = {vq->size, vq->used_idx, vq->last_avail, vq->desc_gpa, vq->used_gpa};
    uint16_t fresh = (uint16_t)(now.used_idx - m->used_idx);
    uint16_t popped = (uint16_t)(now.last_avail - m->last_avail);
    /* A queue set up again, reset or disabled: start over from here. */
    if (run.racy || !vq->size || !vq->used || now.size != m->size || now.desc_gpa != m->desc_gpa ||
        now.used_gpa != m->used_gpa || fresh > now.size || popped > now.size) {
        *m = now;
        return;
    }
    /* Devices that only read from the guest write nothing but used entries. */
    bool writes_data = run.kind != KIND_BALLOON && run.kind != KIND_CONSOLE &&
                       !(run.kind == KIND_CONSOLE_PTY && q == 1);
    check_descs.n = check_wbufs.n = 0;
    check_descs.overflow = check_wbufs.overflow = false;
    bool conclusive = true;
    uint32_t ids[VIRTQ_MAX_SIZE], lens[VIRTQ_MAX_SIZE];
    uint64_t writable[VIRTQ_MAX_SIZE];
    for (uint16_t k = 0; k < fresh; k++) {
        const uint8_t *slot = vq->used + 4 + 8 * (size_t)((m->used_idx + k) & (vq->size - 1));
        memcpy(&ids[k], slot, 4);
        memcpy(&lens[k], slot + 4, 4);
        writable[k] = UINT64_MAX;
        if (!writes_data) {
            if (ids[k] >= vq->size)
                die("used entry names a descriptor outside the ring", q, ids[k], vq->size);
            if (lens[k] != 0)
                die("device that writes nothing reported written bytes", q, ids[k], lens[k]);
        } else if (ids[k] < vq->size && conclusive &&
                   !chain_writable(vq, (uint16_t)ids[k], &writable[k], &check_descs,
                                   &check_wbufs)) {
            conclusive = false;
        }
    }
    if (!writes_data)
        goto out;
    /*
     * Every chain popped since the last settle may have been written to,
     * whatever its used entry says now.
     */
    for (uint16_t k = 0; k < popped && conclusive; k++) {
        uint16_t head;
        uint64_t slot = vq->avail_gpa + 4 + 2ull * ((m->last_avail + k) & (vq->size - 1));
        uint64_t ignored;
        if (!gm_read(&world.snap_gm, slot, &head, 2) || head >= vq->size ||
            !chain_writable(vq, head, &ignored, &check_descs, &check_wbufs))
            conclusive = false;
    }
    ranges_add(&check_descs, vq->avail_gpa, virtq_avail_bytes(vq->size));
    /*
     * The device's own writes (data, status bytes) may have landed on
     * descriptors or the available ring after it popped them, or on the
     * used ring: then RAM no longer shows what it saw, and there is nothing
     * to compare.
     */
    static struct ranges used_ring;
    used_ring.n = 0;
    ranges_add(&used_ring, vq->used_gpa, virtq_used_bytes(vq->size));
    if (!conclusive || check_descs.overflow || check_wbufs.overflow ||
        ranges_overlap(&check_descs, &check_wbufs) || ranges_overlap(&check_descs, &used_ring) ||
        ranges_overlap(&check_wbufs, &used_ring))
        goto out;
    if (world.trace)
        fprintf(stderr, "  queue %u: %u used entries checked\n", q, fresh);
    for (uint16_t k = 0; k < fresh; k++) {
        if (ids[k] >= vq->size)
            die("used entry names a descriptor outside the ring", q, ids[k], vq->size);
        if (lens[k] > writable[k])
            die("used length exceeds the chain's writable bytes", q, lens[k], writable[k]);
    }
out:
    *m = now;
}

/* Bytes the console put in receive buffers since the last settle (lock held). */
static uint64_t rx_received_since_mark(void)
{
    struct virtq *vq = virtio_vq(run.dev, 0);
    const struct used_mark *m = &run.mark[0];
    uint16_t fresh = (uint16_t)(vq->used_idx - m->used_idx);
    uint64_t sum = 0;
    if (!vq->size || !vq->used || vq->size != m->size || vq->used_gpa != m->used_gpa ||
        fresh > vq->size)
        return 0;
    for (uint16_t k = 0; k < fresh; k++) {
        uint32_t len;
        memcpy(&len, vq->used + 4 + 8 * (size_t)((m->used_idx + k) & (vq->size - 1)) + 4, 4);
        sum += len;
    }
    return sum;
}

/*
 * Typed bytes travel through the pty on the kernel's time: wait until the
 * console took them all, or has no receive buffer left to put them in.
 */
static bool pty_input_settled(void)
{
    pthread_mutex_lock(&run.dev->lock);
    struct virtq *vq = virtio_vq(run.dev, 0);
    bool settled = run.input_received + rx_received_since_mark() >= run.input_written ||
                   !virtio_running(run.dev) || !run.dev->queues[0].enabled || !virtq_has_avail(vq);
    pthread_mutex_unlock(&run.dev->lock);
    return settled;
}

static void settle(void)
{
    barrier();
    if (run.kind == KIND_BLK || run.kind == KIND_BLK_RO) {
        for (int waited = 0; !blk_idle() && waited < SETTLE_WAIT_MS; waited++) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (run.kind == KIND_CONSOLE_PTY && !run.racy) {
        for (int waited = 0; !pty_input_settled() && waited < PTY_WAIT_MS; waited++) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            barrier();
        }
    }
    pthread_mutex_lock(&run.dev->lock);
    if (run.kind == KIND_CONSOLE_PTY) {
        run.input_received += rx_received_since_mark();
        /* Input left over may be read whenever the guest posts a buffer. */
        if (run.input_received < run.input_written)
            run.racy = true;
    }
    if (world.trace) {
        fprintf(stderr, "settle: status 0x%x\n", run.dev->status);
        for (unsigned q = 0; q < run.dev->nqueues; q++)
            fprintf(stderr, "  queue %u: size %u, popped %u, used %u%s\n", q,
                    run.dev->queues[q].vq.size, run.dev->queues[q].vq.last_avail,
                    run.dev->queues[q].vq.used_idx, run.dev->queues[q].vq.broken ? ", broken" : "");
    }
    for (unsigned q = 0; q < run.dev->nqueues; q++)
        check_queue(q);
    pthread_mutex_unlock(&run.dev->lock);
    run.triggered = false;
}

/* ---- operations ---- */

static void settle(void);

/*
 * The guest is about to rewrite RAM: if the device may be working, let it
 * finish and check what it did first, so every check compares the used
 * ring with the chains the device really saw (and runs stay deterministic).
 */
static void ram_touched(void)
{
    if (run.triggered)
        settle();
}

/*
 * The device may start work now. Guest RAM as it is here is what the device
 * will read (the program does not write RAM again before a settle), so the
 * settle's checks walk the chains in this copy rather than in RAM the
 * device may since have written over.
 */
static void device_poked(void)
{
    if (run.triggered)
        return;
    run.triggered = true;
    for (unsigned i = 0; i < world.gm.nr_regions; i++)
        memcpy(world.snap_gm.regions[i].host, world.gm.regions[i].host, world.gm.regions[i].size);
}

static uint64_t bar(void)
{
    run.drv.bar = virtio_pci_function(run.dev)->bars[VIRTIO_BAR].addr;
    return run.drv.bar;
}

static void guest_write(uint64_t gpa, const void *src, uint64_t len)
{
    void *p = gm_ptr(&world.gm, gpa, len);
    if (p)
        memcpy(p, src, len);
}

static void op_setup(uint8_t flags)
{
    struct vdrv *d = &run.drv;
    unsigned nq = run.dev->nqueues;
    bar();
    uint16_t size = (uint16_t)(1u << ((flags >> 4) & 7));
    ram_touched(); /* the rings are cleared here */
    for (unsigned q = 0; q < nq && q < 4; q++)
        memset(gm_ptr(&world.gm, LOW_GPA + QUEUE_AREA(q), PAGE), 0, PAGE);
    device_poked();
    if (!(flags & 8))
        vdrv_enable_msix(d, nq + 1);
    uint64_t wanted = 1ull << VIRTIO_F_VERSION_1;
    if (flags & 1)
        wanted |= 1ull << VIRTIO_RING_F_EVENT_IDX;
    if (flags & 2)
        wanted |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
    if (flags & 4)
        wanted |= 0xffffffull; /* every device-specific bit offered */
    vdrv_negotiate(d, wanted);
    vdrv_write(d, VIRTIO_PCI_COMMON_MSIX, 0, 2);
    for (unsigned q = 0; q < nq && q < 4; q++) {
        struct drv_queue *dq = &run.q[q];
        uint64_t base = LOW_GPA + QUEUE_AREA(q);
        *dq = (struct drv_queue){.set = true,
                                 .size = size,
                                 .desc = base,
                                 .avail = base + QUEUE_AVAIL_OFF,
                                 .used = base + QUEUE_USED_OFF};
        vdrv_write(d, VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
        vdrv_write(d, VIRTIO_PCI_COMMON_Q_SIZE, size, 2);
        vdrv_write(d, VIRTIO_PCI_COMMON_Q_MSIX, q + 1, 2);
        vdrv_write(d, VIRTIO_PCI_COMMON_Q_DESCLO, dq->desc, 8);
        vdrv_write(d, VIRTIO_PCI_COMMON_Q_AVAILLO, dq->avail, 8);
        vdrv_write(d, VIRTIO_PCI_COMMON_Q_USEDLO, dq->used, 8);
        vdrv_write(d, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
    }
    if (!(flags & 0x80))
        vdrv_driver_ok(d);
}

static uint64_t data_gpa(uint8_t where, uint16_t off)
{
    return (where & 1) ? HIGH_GPA + off : LOW_GPA + off;
}

/* Publish n descriptors as one chain (or one indirect table) on queue q. */
static void add_chain(unsigned q, struct virtq_desc *descs, unsigned n, bool indirect)
{
    struct drv_queue *dq = &run.q[q];
    if (!dq->set || n == 0)
        return;
    uint16_t head = dq->next_desc;
    if (indirect) {
        uint64_t table = LOW_GPA + INDIRECT_AREA + INDIRECT_SLOT * (run.indirect_next++ % 8);
        for (unsigned i = 0; i < n; i++) {
            if (descs[i].flags & VRING_DESC_F_NEXT && descs[i].next == 0xffff)
                descs[i].next = (uint16_t)(i + 1);
            guest_write(table + 16ull * i, &descs[i], 16);
        }
        struct virtq_desc top = {.addr = table, .len = 16 * n, .flags = VRING_DESC_F_INDIRECT};
        guest_write(dq->desc + 16ull * head, &top, 16);
        dq->next_desc = (uint16_t)((head + 1) % dq->size);
    } else {
        for (unsigned i = 0; i < n; i++) {
            uint16_t idx = (uint16_t)((head + i) % dq->size);
            if (descs[i].flags & VRING_DESC_F_NEXT && descs[i].next == 0xffff)
                descs[i].next = (uint16_t)((idx + 1) % dq->size);
            guest_write(dq->desc + 16ull * idx, &descs[i], 16);
        }
        dq->next_desc = (uint16_t)((head + n) % dq->size);
    }
    guest_write(dq->avail + 4 + 2ull * (dq->avail_idx % dq->size), &head, 2);
    dq->avail_idx++;
    uint16_t *idx = gm_ptr(&world.gm, dq->avail + 2, 2);
    __atomic_store_n(idx, dq->avail_idx, __ATOMIC_RELEASE);
}

static void op_add_chain(struct input *in)
{
    unsigned q = (unsigned)take(in, 1) % VIRTIO_MAX_QUEUES;
    uint8_t nb = (uint8_t)take(in, 1);
    unsigned n = 1 + (nb & (MAX_CHAIN - 1));
    struct virtq_desc descs[MAX_CHAIN];
    for (unsigned i = 0; i < n; i++) {
        uint8_t f = (uint8_t)take(in, 1);
        uint16_t off = (uint16_t)take(in, 2);
        uint32_t len = (uint32_t)take(in, 2);
        if (f & 0x20)
            len <<= 8; /* a length past the end of RAM */
        /* NEXT links to the following descriptor unless bit 0 flips it. */
        uint16_t flags = (uint16_t)(f & (VRING_DESC_F_WRITE | VRING_DESC_F_INDIRECT));
        if ((i + 1 < n) != (bool)(f & 1))
            flags |= VRING_DESC_F_NEXT;
        uint16_t next = 0xffff;
        if (f & 0x40)
            next = (uint16_t)take(in, 1); /* anywhere: loops, out of range */
        descs[i] = (struct virtq_desc){
            .addr = data_gpa(f >> 4, off), .len = len, .flags = flags, .next = next};
    }
    ram_touched();
    add_chain(q, descs, n, nb & 0x80);
}

/* A virtio-blk request laid out as a driver would, with a few ways to get it wrong. */
static void op_blk_req(struct input *in)
{
    static const uint32_t types[] = {0, 1, 4, 8, 11, 13, 2, 0xffffffff};
    uint8_t t = (uint8_t)take(in, 1);
    uint64_t sector = take(in, 2);
    uint32_t data_len = (uint32_t)take(in, 2) % (LOW_SIZE - DATA_AREA - 64);
    uint8_t layout = (uint8_t)take(in, 1);
    uint32_t type = types[t & 7];
    if (t & 0x80)
        sector |= 0xffffull << 48; /* far past the end */
    uint64_t hdr = LOW_GPA + DATA_AREA, data = hdr + 32, status = data + data_len;
    ram_touched();
    uint8_t h[16] = {0};
    memcpy(h, &type, 4);
    memcpy(h + 8, &sector, 8);
    guest_write(hdr, h, 16);
    if (type == 11 || type == 13) {
        /* One segment: {sector, num_sectors, flags}. */
        uint8_t seg[16] = {0};
        uint32_t num = data_len, segflags = (layout >> 4) & 3;
        memcpy(seg, &sector, 8);
        memcpy(seg + 8, &num, 4);
        memcpy(seg + 12, &segflags, 4);
        guest_write(data, seg, 16);
        if (!(layout & 8))
            data_len = 16;
    }
    bool writes = type == 0 || type == 8;
    struct virtq_desc descs[5];
    unsigned n = 0;
    if (layout & 1) {
        descs[n++] = (struct virtq_desc){hdr, 32 + (writes ? 0 : data_len), 0, 0xffff};
    } else {
        descs[n++] = (struct virtq_desc){hdr, (layout & 2) ? 8 : 16, 0, 0xffff};
        if (data_len && !writes)
            descs[n++] = (struct virtq_desc){data, data_len, 0, 0xffff};
    }
    if (data_len && writes) {
        uint32_t half = (layout & 4) ? data_len / 2 : data_len;
        descs[n++] = (struct virtq_desc){data, half, VRING_DESC_F_WRITE, 0xffff};
        if (half != data_len)
            descs[n++] =
                (struct virtq_desc){data + half, data_len - half, VRING_DESC_F_WRITE, 0xffff};
    }
    if (!(layout & 0x40))
        descs[n++] = (struct virtq_desc){status, 1, VRING_DESC_F_WRITE, 0xffff};
    for (unsigned i = 0; i + 1 < n; i++)
        descs[i].flags |= VRING_DESC_F_NEXT;
    add_chain(0, descs, n, layout & 0x80);
}

static void op_mmio(struct input *in, bool write)
{
    uint64_t off = take(in, 2) % VIRTIO_BAR_SIZE;
    unsigned width = 1u << (take(in, 1) & 3);
    uint64_t v = write ? take(in, width) : 0;
    uint64_t base = bar();
    if (write) {
        device_poked();
        io_bus_access(&run.vm.mmio, base + off, &v, width, true);
    } else {
        io_bus_access(&run.vm.mmio, base + off, &v, width, false);
    }
}

static void op_kick(unsigned q)
{
    uint64_t addr = bar() + VIRTIO_BAR_NOTIFY + VIRTIO_NOTIFY_MULTIPLIER * (uint64_t)q;
    int efd = fake_vm_ioeventfd(&run.vm, addr);
    device_poked();
    if (efd >= 0) {
        uint64_t one = 1;
        if (write(efd, &one, sizeof(one)) != sizeof(one))
            die("kick write", q, 0, 0);
    } else {
        uint16_t v = (uint16_t)q;
        io_bus_access(&run.vm.mmio, addr, &v, 2, true);
    }
}

static void op_pci_config(struct input *in)
{
    unsigned off = (unsigned)take(in, 2) % sizeof(virtio_pci_function(run.dev)->config);
    uint8_t w = (uint8_t)take(in, 1);
    unsigned width = 1u << ((w & 3) % 3);
    uint32_t v = (uint32_t)take(in, 4);
    /* Aim at the capabilities a driver programs: the BAR window and MSI-X. */
    if ((w & 0x40) && virtio_pci_cfg_cap(run.dev) > 0)
        off = (unsigned)virtio_pci_cfg_cap(run.dev) + off % 20;
    else if ((w & 0x20) && virtio_pci_msix_cap(run.dev) > 0)
        off = (unsigned)virtio_pci_msix_cap(run.dev) + off % 12;
    off &= ~(width - 1);
    if (w & 0x80) {
        pci_config_read(virtio_pci_function(run.dev), off, width);
    } else {
        device_poked();
        pci_config_write(virtio_pci_function(run.dev), off, v, width);
    }
}

static void op_host(struct input *in)
{
    uint8_t call = (uint8_t)take(in, 1);
    uint32_t arg = (uint32_t)take(in, 4);
    struct virtio_balloon_info info;
    device_poked();
    if (call >= 0xf0) {
        /*
         * A pause and resume (the VM's Pause): whatever state the device is
         * in, in-flight I/O included, quiesce must return and resume must
         * bring it back; the settles after check what it did meanwhile.
         */
        virtio_dev_quiesce(run.dev);
        virtio_dev_resume(run.dev);
        return;
    }
    switch (call % 4) {
    case 0:
        virtio_dev_reset(run.dev);
        memset(run.q, 0, sizeof(run.q));
        break;
    case 1:
        virtio_balloon_set_target(run.dev, arg);
        break;
    case 2:
        virtio_balloon_request_stats(run.dev);
        break;
    case 3:
        virtio_balloon_info(run.dev, &info);
        break;
    }
}

static void op_ram_write(struct input *in)
{
    uint8_t where = (uint8_t)take(in, 1);
    uint16_t off = (uint16_t)take(in, 2);
    unsigned len = (unsigned)take(in, 1);
    uint8_t buf[256];
    unsigned n = 0;
    while (n < len && in->left)
        buf[n++] = (uint8_t)take(in, 1);
    uint64_t gpa = data_gpa(where, off);
    ram_touched();
    for (unsigned i = 0; i < n; i++)
        guest_write(gpa + i, &buf[i], 1);
}

static void op_input(struct input *in)
{
    unsigned len = (unsigned)take(in, 1);
    uint8_t buf[256];
    unsigned n = 0;
    while (n < len && in->left)
        buf[n++] = (uint8_t)take(in, 1);
    if (run.pty_fd < 0 || n == 0)
        return;
    device_poked();
    ssize_t w = write(run.pty_fd, buf, n);
    if (w > 0)
        run.input_written += (uint64_t)w;
}

static void run_program(struct input *in)
{
    for (unsigned steps = 0; in->left && steps < 512; steps++) {
        switch (take(in, 1) % OPS) {
        case OP_SETUP:
            op_setup((uint8_t)take(in, 1));
            break;
        case OP_MMIO_WRITE:
            op_mmio(in, true);
            break;
        case OP_MMIO_READ:
            op_mmio(in, false);
            break;
        case OP_RAM_WRITE:
            op_ram_write(in);
            break;
        case OP_KICK:
            op_kick((unsigned)take(in, 1) % VIRTIO_MAX_QUEUES);
            break;
        case OP_SETTLE:
            settle();
            break;
        case OP_ADD_CHAIN:
            op_add_chain(in);
            break;
        case OP_PCI_CONFIG:
            op_pci_config(in);
            break;
        case OP_HOST:
            op_host(in);
            break;
        case OP_BLK_REQ:
            op_blk_req(in);
            break;
        case OP_INPUT:
            op_input(in);
            break;
        }
    }
}

/* ---- one input ---- */

static int create_device(uint8_t sel)
{
    struct machine *m = &run.vm.m;
    run.kind = (enum dev_kind)((sel & 7) % KINDS);
    switch (run.kind) {
    case KIND_BLK:
    case KIND_BLK_RO: {
        struct dev_blk cfg = {.path = world.disk_path,
                              .format = BLK_FMT_RAW,
                              .device_id = (sel & 0x80) ? "fuzz-disk-serial-0123" : NULL,
                              .readonly = run.kind == KIND_BLK_RO};
        if (sel & 0x40)
            cfg.device_id = "short";
        if (cfg.device_id && strlen(cfg.device_id) > 20)
            cfg.device_id = "fuzz-disk-serial-012";
        /* Bit 5: the block layer's worker threads instead of io_uring. */
        if (sel & 0x20)
            setenv("KRUNKIT_NO_IO_URING", "1", 1);
        else
            unsetenv("KRUNKIT_NO_IO_URING");
        int rc = blk_open(cfg.path, cfg.format, cfg.readonly, NULL, &run.img);
        return rc ? rc : virtio_blk_create(m, &cfg, run.img, &run.dev);
    }
    case KIND_BALLOON:
        return virtio_balloon_create(m, &run.dev);
    case KIND_CONSOLE: {
        /* Bit 3: a log capped at 64 bytes (logFileMaxSize). */
        struct dev_serial cfg = {.mode = SERIAL_LOGFILE,
                                 .log_file_path = world.console_path,
                                 .log_max_bytes = (sel & 0x08) ? 64 : 0};
        int rc = console_host_open(&cfg, &run.host);
        return rc ? rc : virtio_console_create(m, run.host, &run.dev);
    }
    case KIND_CONSOLE_PTY: {
        struct dev_serial cfg = {.mode = SERIAL_PTY};
        int rc = console_host_open(&cfg, &run.host);
        rc = rc ?: virtio_console_create(m, run.host, &run.dev);
        if (rc == 0) {
            run.pty_fd =
                open(console_host_pty_path(run.host), O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
            rc = run.pty_fd < 0 ? -errno : 0;
        }
        return rc;
    }
    case KIND_RNG:
    default:
        return virtio_rng_create(m, &run.dev);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!world.ready)
        world_init();
    world_reset();
    memset(&run, 0, sizeof(run));
    run.pty_fd = -1;
    if (fake_vm_init(&run.vm, &world.gm))
        die("cannot set up the fake machine", 0, 0, 0);
    if (data[0] & 0x10)
        run.vm.m.io_loop = world.kept_loop;
    if (create_device(data[0]))
        die("cannot create the device", data[0], 0, 0);
    vdrv_init(&run.drv, &run.vm, virtio_pci_function(run.dev), LOW_GPA + DATA_AREA,
              LOW_GPA + LOW_SIZE);
    run.barrier_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    run.barrier_done_fd = eventfd(0, EFD_CLOEXEC);
    if (run.barrier_fd < 0 || run.barrier_done_fd < 0 ||
        virtio_dev_add_fd(run.dev, run.barrier_fd, EPOLLIN, barrier_cb))
        die("cannot attach the barrier", 0, 0, 0);

    struct input in = {data + 1, size - 1};
    run_program(&in);
    settle();

    virtio_dev_destroy(run.dev);
    if (run.img)
        blk_close(run.img);
    console_host_close(run.host, false);
    if (run.pty_fd >= 0)
        close(run.pty_fd);
    close(run.barrier_fd);
    close(run.barrier_done_fd);
    fake_vm_destroy(&run.vm);
    if (run.kind == KIND_CONSOLE)
        unlink(world.console_path);
    return 0;
}
