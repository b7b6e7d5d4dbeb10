/*
 * virtio-balloon (virtio 1.2, section 5.5): the host asks the guest to give
 * back memory by raising num_pages in the configuration space; the guest
 * sends the 4 KiB page frame numbers it gave up on inflateq and the ones it
 * takes back on deflateq, and reports how many it holds in `actual`.
 *
 * Guest RAM is private anonymous memory (vmm/memory.c), so MADV_DONTNEED
 * gives a released page back to the host at once, and KVM's mapping of it
 * follows through the MMU notifier. A deflated page needs nothing: it reads
 * back as zeroes on the guest's next touch.
 *
 * The balloon's page is 4 KiB whatever the guest's or host's page size
 * (5.5.6), but MADV_DONTNEED works in host pages, which may be 16 or
 * 64 KiB (arm64): releasing the host page around one balloon page would
 * zero the guest's data in the others. With larger host pages the device
 * keeps a bit per 4 KiB page of RAM the balloon holds and releases a host
 * page once every balloon page in it is inflated; a deflate clears its
 * bits, a reset all of them. Reported free ranges (5.5.6.6) are released
 * in the whole host pages they cover.
 *
 * Also offered: VIRTIO_BALLOON_F_STATS_VQ (5.5.6.3: the guest's buffer is
 * held and returned when we want fresh numbers), DEFLATE_ON_OOM, and
 * free page reporting (VIRTIO_BALLOON_F_REPORTING, 5.5.6.6), where
 * each device-writable buffer on reporting_vq *is* a free range of guest
 * RAM, released the same way. Queues are numbered without gaps: inflateq 0,
 * deflateq 1, statsq 2, reporting_vq 3 (no FREE_PAGE_HINT queue).
 */
#include <errno.h>
#include <linux/virtio_balloon.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"
#include "virtio/devices.h"
#include "virtio/virtio.h"

#define BALLOON_PAGE_SHIFT VIRTIO_BALLOON_PFN_SHIFT
#define BALLOON_PAGE_SIZE (1ull << BALLOON_PAGE_SHIFT)
#define BALLOON_QUEUE_SIZE 128
#define INFLATE_Q 0
#define DEFLATE_Q 1
#define STATS_Q 2
#define REPORTING_Q 3
#define NUM_QUEUES 4
#define CFG_NUM_PAGES offsetof(struct virtio_balloon_config, num_pages)
#define CFG_ACTUAL offsetof(struct virtio_balloon_config, actual)
#define CFG_LEN (CFG_ACTUAL + 4)
#define BALLOON_NR_STATS 16

struct virtio_balloon {
    struct virtio_dev vdev;
    uint32_t num_pages; /* target, host-owned */
    uint32_t actual;    /* guest-owned */
    uint64_t pages_freed;
    struct virtq_elem *stats_elem; /* held until we want new statistics */
    uint64_t stats[BALLOON_NR_STATS];
    uint32_t stats_valid; /* bit per tag */
    uint64_t host_page;   /* the unit MADV_DONTNEED releases */
    /* host_page > 4 KiB: per RAM region, a bit per balloon page held. */
    uint8_t *held[GUEST_MEM_MAX_REGIONS];
};

static struct virtio_balloon *to_balloon(struct virtio_dev *dev)
{
    return (struct virtio_balloon *)dev;
}

/* Give [host, host+len) of guest RAM back to the host; the caller checked it is RAM. */
static int release(uint8_t *host, uint64_t len)
{
    if (madvise(host, len, MADV_DONTNEED) == 0)
        return 0;
    int err = -errno;
    log_debug("virtio-balloon: releasing %llu bytes of guest RAM: %m", (unsigned long long)len);
    return err;
}

static const struct guest_mem_region *region_of_gpa(const struct guest_mem *gm, uint64_t gpa,
                                                    uint64_t len)
{
    for (unsigned i = 0; i < gm->nr_regions; i++) {
        const struct guest_mem_region *r = &gm->regions[i];
        if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
            return r;
    }
    return NULL;
}

static const struct guest_mem_region *region_of_host(const struct guest_mem *gm, const void *p,
                                                     uint64_t len)
{
    for (unsigned i = 0; i < gm->nr_regions; i++) {
        const struct guest_mem_region *r = &gm->regions[i];
        const uint8_t *h = p;
        if (h >= r->host && (uint64_t)(h - r->host) <= r->size &&
            len <= r->size - (uint64_t)(h - r->host))
            return r;
    }
    return NULL;
}

static bool bit_get(const uint8_t *m, uint64_t i)
{
    return (m[i / 8] >> (i % 8)) & 1;
}

static void bit_put(uint8_t *m, uint64_t i, bool on)
{
    if (on)
        m[i / 8] |= (uint8_t)(1u << (i % 8));
    else
        m[i / 8] &= (uint8_t) ~(1u << (i % 8));
}

/*
 * Host pages larger than the balloon's: note that the balloon holds pfn
 * (or gave it back), and release its host page once the balloon holds all
 * of it. A host page that sticks out of its RAM region is never released.
 */
static void hold_pfn(struct virtio_balloon *b, uint64_t pfn, bool inflate)
{
    const struct guest_mem *gm = b->vdev.m->mem;
    uint64_t gpa = pfn << BALLOON_PAGE_SHIFT;
    for (unsigned i = 0; i < gm->nr_regions; i++) {
        const struct guest_mem_region *r = &gm->regions[i];
        if (gpa < r->gpa || gpa - r->gpa >= r->size ||
            r->size - (gpa - r->gpa) < BALLOON_PAGE_SIZE || !b->held[i])
            continue;
        uint64_t idx = (gpa - r->gpa) >> BALLOON_PAGE_SHIFT;
        if (!inflate || bit_get(b->held[i], idx)) {
            bit_put(b->held[i], idx, inflate);
            return;
        }
        bit_put(b->held[i], idx, true);
        uintptr_t host = (uintptr_t)(r->host + (gpa - r->gpa));
        uintptr_t start = host & ~(uintptr_t)(b->host_page - 1);
        if (start < (uintptr_t)r->host || start + b->host_page > (uintptr_t)(r->host + r->size))
            return;
        uint64_t first = (start - (uintptr_t)r->host) >> BALLOON_PAGE_SHIFT;
        uint64_t n = b->host_page >> BALLOON_PAGE_SHIFT;
        for (uint64_t k = 0; k < n; k++)
            if (!bit_get(b->held[i], first + k))
                return;
        if (release((uint8_t *)start, b->host_page) == 0)
            b->pages_freed += n;
        return;
    }
}

static void release_pfns(struct virtio_balloon *b, uint64_t first, uint64_t count)
{
    if (b->host_page > BALLOON_PAGE_SIZE) {
        for (uint64_t i = 0; i < count; i++)
            hold_pfn(b, first + i, true);
        return;
    }
    const struct guest_mem *gm = b->vdev.m->mem;
    uint64_t gpa = first << BALLOON_PAGE_SHIFT, len = count << BALLOON_PAGE_SHIFT;
    const struct guest_mem_region *r = region_of_gpa(gm, gpa, len);
    if (!r) {
        /* The run may straddle regions or leave RAM: go page by page. */
        if (count > 1) {
            for (uint64_t i = 0; i < count; i++)
                release_pfns(b, first + i, 1);
        }
        return;
    }
    if (release(r->host + (gpa - r->gpa), len) == 0)
        b->pages_freed += count;
}

/*
 * Most PFNs taken from one inflate/deflate buffer (Linux sends at most 256),
 * and statistics entries from one stats buffer. A chain may name the same
 * large buffer hundreds of times; without a bound the I/O thread would chew
 * on it for minutes holding the device lock, which every API call and BAR
 * access of this device also needs.
 */
#define BALLOON_MAX_PFNS 4096
#define BALLOON_MAX_STAT_ENTRIES 64
#define PFN_CHUNK 256

/*
 * inflateq: le32 PFNs; contiguous runs are released in one call.
 * deflateq: the same list; only the bits of larger host pages need it.
 */
static void handle_pfns(struct virtio_balloon *b, struct virtq_elem *e, bool inflate)
{
    if (!inflate && b->host_page <= BALLOON_PAGE_SIZE)
        return;
    uint64_t run_start = 0, run_len = 0;
    uint64_t total = e->out_len / 4;
    if (total > BALLOON_MAX_PFNS)
        total = BALLOON_MAX_PFNS;
    uint32_t pfns[PFN_CHUNK];
    for (uint64_t done = 0; done < total;) {
        size_t n = total - done < PFN_CHUNK ? (size_t)(total - done) : PFN_CHUNK;
        virtq_elem_read(e, done * 4, pfns, n * 4);
        for (size_t i = 0; i < n && !inflate; i++)
            hold_pfn(b, pfns[i], false);
        for (size_t i = 0; i < n && inflate; i++) {
            if (run_len && pfns[i] == run_start + run_len) {
                run_len++;
                continue;
            }
            if (run_len)
                release_pfns(b, run_start, run_len);
            run_start = pfns[i];
            run_len = 1;
        }
        done += n;
    }
    if (run_len)
        release_pfns(b, run_start, run_len);
}

/* reporting_vq: every buffer is a free, page-aligned range of guest RAM. */
static void handle_report(struct virtio_balloon *b, struct virtq_elem *e)
{
    const struct guest_mem *gm = b->vdev.m->mem;
    for (unsigned i = e->nr_out; i < e->nr_out + e->nr_in; i++) {
        uint8_t *p = e->iov[i].iov_base;
        uint64_t len = e->iov[i].iov_len;
        const struct guest_mem_region *r = region_of_host(gm, p, len);
        /* Only whole host pages: never free a neighbour's data. */
        uintptr_t mask = (uintptr_t)(b->host_page - 1);
        uintptr_t start = ((uintptr_t)p + mask) & ~mask;
        uintptr_t end = ((uintptr_t)p + len) & ~mask;
        if (r && end > start && release((uint8_t *)start, end - start) == 0)
            b->pages_freed += (end - start) >> BALLOON_PAGE_SHIFT;
    }
}

/* statsq: {le16 tag, le64 val} entries, packed (5.5.6.3). */
static void handle_stats(struct virtio_balloon *b, struct virtq_elem *e)
{
    uint8_t ents[BALLOON_MAX_STAT_ENTRIES * 10];
    uint64_t n = e->out_len / 10;
    if (n > BALLOON_MAX_STAT_ENTRIES)
        n = BALLOON_MAX_STAT_ENTRIES;
    virtq_elem_read(e, 0, ents, n * 10);
    for (uint64_t i = 0; i < n; i++) {
        uint16_t tag;
        uint64_t val;
        memcpy(&tag, ents + 10 * i, 2);
        memcpy(&val, ents + 10 * i + 2, 8);
        if (tag < BALLOON_NR_STATS) {
            b->stats[tag] = val;
            b->stats_valid |= 1u << tag;
        }
    }
}

/*
 * What queue q is for: queues of features the driver did not take are
 * left out of the numbering (as Linux numbers them), so the reporting
 * queue is 2 without STATS_VQ.
 */
static unsigned queue_role(struct virtio_dev *dev, unsigned q)
{
    if (q == STATS_Q && !virtio_has_feature(dev, VIRTIO_BALLOON_F_STATS_VQ))
        return REPORTING_Q;
    return q;
}

static enum virtio_chain stats_chain(struct virtio_dev *dev, struct virtq *vq, struct virtq_elem *e,
                                     void *opaque)
{
    struct virtio_balloon *b = to_balloon(dev);
    (void)opaque;
    handle_stats(b, e);
    if (b->stats_elem) {
        /* A second buffer: give the older one back. */
        virtq_push(vq, b->stats_elem->head, 0);
        free(b->stats_elem);
    }
    b->stats_elem = e;
    return VIRTIO_CHAIN_DONE;
}

static enum virtio_chain pages_chain(struct virtio_dev *dev, struct virtq *vq, struct virtq_elem *e,
                                     void *opaque)
{
    struct virtio_balloon *b = to_balloon(dev);
    unsigned q = *(const unsigned *)opaque;
    if (q == INFLATE_Q || q == DEFLATE_Q)
        handle_pfns(b, e, q == INFLATE_Q);
    else if (q == REPORTING_Q)
        handle_report(b, e);
    /* A deflated page comes back on its own at the next touch. */
    virtq_push(vq, e->head, 0);
    free(e);
    return VIRTIO_CHAIN_DONE;
}

static void balloon_queue_notify(struct virtio_dev *dev, unsigned qi)
{
    unsigned q = queue_role(dev, qi);
    if (q == REPORTING_Q && !virtio_has_feature(dev, VIRTIO_BALLOON_F_REPORTING))
        return;
    virtio_queue_drain(dev, qi, q == STATS_Q ? stats_chain : pages_chain, &q);
}

static void balloon_config_read(struct virtio_dev *dev, unsigned off, void *data, unsigned len)
{
    struct virtio_balloon *b = to_balloon(dev);
    uint8_t cfg[CFG_LEN];
    memcpy(cfg + CFG_NUM_PAGES, &b->num_pages, 4);
    memcpy(cfg + CFG_ACTUAL, &b->actual, 4);
    if (off + len <= sizeof(cfg))
        memcpy(data, cfg + off, len);
}

static void balloon_config_write(struct virtio_dev *dev, unsigned off, const void *data,
                                 unsigned len)
{
    struct virtio_balloon *b = to_balloon(dev);
    /* Only `actual` is the driver's; allow partial writes of it. */
    if (off >= CFG_ACTUAL && off + len <= CFG_LEN) {
        uint8_t bytes[4];
        memcpy(bytes, &b->actual, 4);
        memcpy(bytes + (off - CFG_ACTUAL), data, len);
        memcpy(&b->actual, bytes, 4);
    }
}

static int balloon_reset(struct virtio_dev *dev)
{
    struct virtio_balloon *b = to_balloon(dev);
    free(b->stats_elem);
    b->stats_elem = NULL;
    b->actual = 0;
    /* The next driver starts with an empty balloon. */
    const struct guest_mem *gm = b->vdev.m ? b->vdev.m->mem : NULL;
    for (unsigned i = 0; gm && i < gm->nr_regions; i++)
        if (b->held[i])
            memset(b->held[i], 0, (size_t)((gm->regions[i].size >> BALLOON_PAGE_SHIFT) + 7) / 8);
    return 0;
}

static void free_held(struct virtio_balloon *b)
{
    for (unsigned i = 0; i < GUEST_MEM_MAX_REGIONS; i++) {
        free(b->held[i]);
        b->held[i] = NULL;
    }
}

static int set_host_page(struct virtio_balloon *b, const struct guest_mem *gm, uint64_t size)
{
    if (size < BALLOON_PAGE_SIZE || (size & (size - 1)))
        return -EINVAL;
    free_held(b);
    b->host_page = size;
    if (size == BALLOON_PAGE_SIZE)
        return 0;
    for (unsigned i = 0; i < gm->nr_regions; i++) {
        b->held[i] = calloc((size_t)((gm->regions[i].size >> BALLOON_PAGE_SHIFT) + 7) / 8, 1);
        if (!b->held[i]) {
            free_held(b);
            return -ENOMEM;
        }
    }
    return 0;
}

static uint64_t balloon_features(struct virtio_dev *dev)
{
    (void)dev;
    return 1ull << VIRTIO_BALLOON_F_STATS_VQ | 1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM |
           1ull << VIRTIO_BALLOON_F_REPORTING;
}

static void balloon_destroy(struct virtio_dev *dev)
{
    balloon_reset(dev);
    free_held(to_balloon(dev));
    free(dev);
}

static const struct virtio_dev_ops balloon_ops = {
    .name = "virtio-balloon",
    .device_id = VIRTIO_ID_BALLOON,
    .sandbox = SANDBOX_IO_BALLOON,
    .config_len = CFG_LEN,
    .nqueues = NUM_QUEUES,
    .queue_size = BALLOON_QUEUE_SIZE,
    .features = balloon_features,
    .queue_notify = balloon_queue_notify,
    .config_read = balloon_config_read,
    .config_write = balloon_config_write,
    .reset = balloon_reset,
    .destroy = balloon_destroy,
};

int virtio_balloon_create(struct machine *m, struct virtio_dev **out)
{
    struct virtio_balloon *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    struct virtio_dev *dev = &b->vdev;
    long page = sysconf(_SC_PAGESIZE);
    int rc = set_host_page(b, m->mem, page > 0 ? (uint64_t)page : BALLOON_PAGE_SIZE);
    if (rc) {
        free(b);
        return rc;
    }
    rc = virtio_dev_init(dev, m, &balloon_ops);
    if (rc == 0)
        rc = virtio_dev_start(dev);
    if (rc) {
        log_error("virtio-balloon: cannot create: %s", strerror(-rc));
        virtio_dev_destroy(dev);
        return rc;
    }
    *out = dev;
    return 0;
}

int virtio_balloon_set_host_page_size(struct virtio_dev *dev, size_t size)
{
    if (dev->device_id != VIRTIO_ID_BALLOON)
        return -EINVAL;
    pthread_mutex_lock(&dev->lock);
    int rc = set_host_page(to_balloon(dev), dev->m->mem, size);
    pthread_mutex_unlock(&dev->lock);
    return rc;
}

int virtio_balloon_set_target(struct virtio_dev *dev, uint32_t pages)
{
    if (dev->device_id != VIRTIO_ID_BALLOON)
        return -EINVAL;
    struct virtio_balloon *b = to_balloon(dev);
    pthread_mutex_lock(&dev->lock);
    if (b->num_pages != pages) {
        b->num_pages = pages;
        virtio_notify_config(dev);
    }
    pthread_mutex_unlock(&dev->lock);
    return 0;
}

int virtio_balloon_info(struct virtio_dev *dev, struct virtio_balloon_info *info)
{
    if (dev->device_id != VIRTIO_ID_BALLOON)
        return -EINVAL;
    struct virtio_balloon *b = to_balloon(dev);
    pthread_mutex_lock(&dev->lock);
    info->target_pages = b->num_pages;
    info->actual_pages = b->actual;
    info->pages_freed = b->pages_freed;
    info->stats_valid = b->stats_valid;
    memcpy(info->stats, b->stats, sizeof(info->stats));
    pthread_mutex_unlock(&dev->lock);
    return 0;
}

int virtio_balloon_request_stats(struct virtio_dev *dev)
{
    if (dev->device_id != VIRTIO_ID_BALLOON)
        return -EINVAL;
    struct virtio_balloon *b = to_balloon(dev);
    int rc = -EAGAIN;
    pthread_mutex_lock(&dev->lock);
    if (b->stats_elem && virtio_running(dev)) {
        virtq_push(virtio_vq(dev, STATS_Q), b->stats_elem->head, 0);
        free(b->stats_elem);
        b->stats_elem = NULL;
        virtio_queue_flush(dev, STATS_Q);
        rc = 0;
    }
    pthread_mutex_unlock(&dev->lock);
    return rc;
}
