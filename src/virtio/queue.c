/*
 * Split virtqueue walking (virtio 1.2, 2.7): descriptor chains, indirect
 * tables (2.7.5.3), the used ring and notification suppression with
 * VIRTIO_RING_F_EVENT_IDX (2.7.7, 2.7.10).
 *
 * The guest owns the ring memory and may change it while we read it, so
 * each descriptor is copied once and only the copy is checked and used.
 * A chain is refused (and the queue marked broken) when a descriptor
 * points outside RAM, the chain loops or grows past the table, an index is
 * out of range, a readable buffer follows a writable one, or an indirect
 * table is empty, misaligned, nested or combined with NEXT.
 * Little-endian hosts only (x86-64, arm64): the ring fields are used in
 * place, in host order. The ordering 2.7.13 asks for comes from acquire
 * loads of avail->idx, release stores of used->idx and full fences around
 * the event-index checks, which weakly ordered CPUs (arm64) honour as
 * well as x86 does.
 */
#include "virtio/queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "virtqueues are used in place: little-endian hosts only");

uint64_t virtq_desc_bytes(uint16_t size)
{
    return 16ull * size;
}

uint64_t virtq_avail_bytes(uint16_t size)
{
    return 6ull + 2ull * size;
}

uint64_t virtq_used_bytes(uint16_t size)
{
    return 6ull + 8ull * size;
}

int virtq_enable(struct virtq *q, const struct guest_mem *mem, uint16_t size, uint64_t desc,
                 uint64_t avail, uint64_t used, bool event_idx, bool indirect)
{
    virtq_disable(q);
    if (size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
        return -EINVAL;
    /* 2.7: descriptor table 16-byte, available ring 2-byte, used ring 4-byte aligned. */
    if ((desc & 15) || (avail & 1) || (used & 3))
        return -EINVAL;
    void *d = gm_ptr(mem, desc, virtq_desc_bytes(size));
    void *a = gm_ptr(mem, avail, virtq_avail_bytes(size));
    void *u = gm_ptr(mem, used, virtq_used_bytes(size));
    if (!d || !a || !u)
        return -EINVAL;
    q->mem = mem;
    q->size = size;
    q->desc_gpa = desc;
    q->avail_gpa = avail;
    q->used_gpa = used;
    q->desc = d;
    q->avail = a;
    q->used = u;
    q->event_idx = event_idx;
    q->indirect = indirect;
    return 0;
}

void virtq_disable(struct virtq *q)
{
    q->size = 0;
    q->desc = NULL;
    q->avail = NULL;
    q->used = NULL;
    q->last_avail = 0;
    q->used_idx = 0;
    q->published_used = 0;
    q->signalled_used = 0;
    q->signalled_valid = false;
    q->broken = false;
}

static uint16_t avail_idx(const struct virtq *q)
{
    /* Acquire: ring entries before idx were written before it (2.7.13). */
    return __atomic_load_n(&q->avail[1], __ATOMIC_ACQUIRE);
}

static uint16_t *used_idx_ptr(const struct virtq *q)
{
    return (uint16_t *)(q->used + 2);
}

static uint16_t *avail_event_ptr(const struct virtq *q)
{
    return (uint16_t *)(q->used + 4 + 8 * (size_t)q->size);
}

static int ring_broken(struct virtq *q, const char *why, unsigned value)
{
    if (!q->broken)
        log_warn("virtqueue at 0x%llx: %s (%u); queue stopped until reset",
                 (unsigned long long)q->desc_gpa, why, value);
    q->broken = true;
    return -EBADMSG;
}

bool virtq_has_avail(struct virtq *q)
{
    if (!virtq_ready(q))
        return false;
    return avail_idx(q) != q->last_avail;
}

static int add_buffer(struct virtq *q, const struct virtq_desc *d, unsigned *nr_out,
                      unsigned *nr_in, uint64_t *out_len, uint64_t *in_len)
{
    if (d->len == 0)
        return 0; /* nothing to transfer; harmless */
    void *p = gm_ptr(q->mem, d->addr, d->len);
    if (!p)
        return ring_broken(q, "buffer outside guest RAM, length", d->len);
    unsigned n = *nr_out + *nr_in;
    if (n >= VIRTQ_MAX_SEGS)
        return ring_broken(q, "chain has too many buffers", n);
    if (d->flags & VRING_DESC_F_WRITE) {
        (*nr_in)++;
        *in_len += d->len;
    } else {
        /* 2.7.4.2: device-readable buffers come before device-writable ones. */
        if (*nr_in)
            return ring_broken(q, "readable buffer after a writable one, index", n);
        (*nr_out)++;
        *out_len += d->len;
    }
    q->scratch[n].iov_base = p;
    q->scratch[n].iov_len = d->len;
    return 0;
}

/* Walk one chain starting at head into q->scratch. */
static int walk_chain(struct virtq *q, uint16_t head, unsigned *nr_out, unsigned *nr_in,
                      uint64_t *out_len, uint64_t *in_len)
{
    const struct virtq_desc *table = q->desc;
    unsigned table_len = q->size;
    bool in_indirect = false;
    unsigned seen = 0; /* descriptors visited in the current table */
    unsigned i = head;

    *nr_out = *nr_in = 0;
    *out_len = *in_len = 0;
    for (;;) {
        struct virtq_desc d;
        if (i >= table_len)
            return ring_broken(q, "descriptor index out of range", i);
        /* A chain longer than its table must revisit an entry: a loop. */
        if (++seen > table_len)
            return ring_broken(q, "descriptor chain loops or is too long, head", head);
        memcpy(&d, &table[i], sizeof(d));
        /* Like READ_ONCE: the compiler must not re-read the guest's copy later. */
        __asm__ __volatile__("" ::: "memory");

        if (d.flags & VRING_DESC_F_INDIRECT) {
            if (!q->indirect)
                return ring_broken(q, "indirect descriptor not negotiated, head", head);
            if (in_indirect)
                return ring_broken(q, "nested indirect table, head", head);
            if (d.flags & VRING_DESC_F_NEXT)
                return ring_broken(q, "indirect descriptor with NEXT, head", head);
            if (d.len == 0 || d.len % sizeof(struct virtq_desc) ||
                d.len / sizeof(struct virtq_desc) > VIRTQ_MAX_SEGS)
                return ring_broken(q, "bad indirect table length", d.len);
            const void *t = gm_ptr(q->mem, d.addr, d.len);
            if (!t)
                return ring_broken(q, "indirect table outside guest RAM, head", head);
            table = t;
            table_len = d.len / sizeof(struct virtq_desc);
            in_indirect = true;
            seen = 0;
            i = 0;
            continue;
        }
        int rc = add_buffer(q, &d, nr_out, nr_in, out_len, in_len);
        if (rc)
            return rc;
        if (!(d.flags & VRING_DESC_F_NEXT))
            return 0;
        i = d.next;
    }
}

int virtq_pop(struct virtq *q, struct virtq_elem **out)
{
    *out = NULL;
    if (!virtq_ready(q))
        return 0;
    uint16_t avail = avail_idx(q);
    if (avail == q->last_avail)
        return 0;
    /* The driver can be at most a full ring ahead of us (2.7.6). */
    if ((uint16_t)(avail - q->last_avail) > q->size)
        return ring_broken(q, "available index ran ahead by", (uint16_t)(avail - q->last_avail));
    uint16_t head =
        __atomic_load_n(&q->avail[2 + (q->last_avail & (q->size - 1))], __ATOMIC_RELAXED);
    unsigned nr_out, nr_in;
    uint64_t out_len, in_len;
    int rc = walk_chain(q, head, &nr_out, &nr_in, &out_len, &in_len);
    if (rc)
        return rc;
    unsigned n = nr_out + nr_in;
    struct virtq_elem *e = malloc(sizeof(*e) + n * sizeof(struct iovec));
    if (!e)
        return -ENOMEM;
    e->head = head;
    e->nr_out = nr_out;
    e->nr_in = nr_in;
    e->out_len = out_len;
    e->in_len = in_len;
    memcpy(e->iov, q->scratch, n * sizeof(struct iovec));
    q->last_avail++;
    *out = e;
    return 1;
}

void virtq_unpop(struct virtq *q)
{
    q->last_avail--;
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
    if (!virtq_ready(q))
        return;
    uint8_t *slot = q->used + 4 + 8 * (size_t)(q->used_idx & (q->size - 1));
    uint32_t id = head;
    memcpy(slot, &id, 4);
    memcpy(slot + 4, &len, 4);
    q->used_idx++;
}

bool virtq_flush(struct virtq *q)
{
    if (!virtq_ready(q) || q->used_idx == q->published_used)
        return false;
    /* Release: the entries are visible before the index that covers them. */
    __atomic_store_n(used_idx_ptr(q), q->used_idx, __ATOMIC_RELEASE);
    q->published_used = q->used_idx;
    /* Order the idx store before reading the driver's suppression fields (2.7.10). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t old = q->signalled_used, new_idx = q->used_idx;
    bool valid = q->signalled_valid;
    if (q->event_idx) {
        uint16_t used_event = __atomic_load_n(&q->avail[2 + q->size], __ATOMIC_RELAXED);
        q->signalled_used = new_idx;
        q->signalled_valid = true;
        return !valid || vring_need_event(used_event, new_idx, old);
    }
    return !(__atomic_load_n(&q->avail[0], __ATOMIC_RELAXED) & VRING_AVAIL_F_NO_INTERRUPT);
}

void virtq_disable_notify(struct virtq *q)
{
    if (!virtq_ready(q) || q->event_idx)
        return; /* with EVENT_IDX, avail_event already says "from here on" */
    uint16_t *flags = (uint16_t *)q->used;
    __atomic_store_n(flags, VRING_USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
}

bool virtq_enable_notify(struct virtq *q)
{
    if (!virtq_ready(q))
        return false;
    if (q->event_idx)
        __atomic_store_n(avail_event_ptr(q), q->last_avail, __ATOMIC_RELAXED);
    else
        __atomic_store_n((uint16_t *)q->used, 0, __ATOMIC_RELAXED);
    /* The driver may have added a chain before it saw the store: look again. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return avail_idx(q) != q->last_avail;
}

/* Copy between buf and iov[0..n), starting skip bytes into the vector. */
static size_t iov_copy(const struct iovec *iov, unsigned n, uint64_t skip, void *buf, size_t len,
                       bool to_iov)
{
    size_t done = 0;
    for (unsigned i = 0; i < n && done < len; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        size_t chunk = iov[i].iov_len - skip;
        if (chunk > len - done)
            chunk = len - done;
        uint8_t *guest = (uint8_t *)iov[i].iov_base + skip;
        if (to_iov)
            memcpy(guest, (uint8_t *)buf + done, chunk);
        else
            memcpy((uint8_t *)buf + done, guest, chunk);
        done += chunk;
        skip = 0;
    }
    return done;
}

size_t virtq_elem_read(const struct virtq_elem *e, uint64_t skip, void *buf, size_t len)
{
    return iov_copy(e->iov, e->nr_out, skip, buf, len, false);
}

size_t virtq_elem_write(const struct virtq_elem *e, uint64_t skip, const void *buf, size_t len)
{
    return iov_copy(e->iov + e->nr_out, e->nr_in, skip, (void *)buf, len, true);
}
