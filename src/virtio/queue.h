/*
 * Split virtqueue, device side (virtio 1.2, section 2.7), with
 * VIRTIO_RING_F_INDIRECT_DESC (2.7.5.3) and VIRTIO_RING_F_EVENT_IDX (2.7.7,
 * 2.7.10). The rings live in guest memory, which the guest may rewrite at
 * any moment: every descriptor is copied once, then checked, then used.
 *
 * One thread consumes a queue (the device's I/O thread); the transport
 * configures it while that thread is held off by the device lock.
 */
#ifndef KRUNKIT_VIRTIO_QUEUE_H
#define KRUNKIT_VIRTIO_QUEUE_H

#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/guest_mem.h"

/* Largest queue a device offers; the spec allows 32768. */
#define VIRTQ_MAX_SIZE 1024
/* Most buffers one chain may carry, direct and indirect together. */
#define VIRTQ_MAX_SEGS 1024

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

/*
 * One popped chain. iov[0, nr_out) are device-readable buffers (driver to
 * device), iov[nr_out, nr_out + nr_in) device-writable ones, each pointing
 * into guest memory already checked to be RAM.
 */
struct virtq_elem {
    uint16_t head;
    unsigned nr_out, nr_in;
    uint64_t out_len, in_len; /* bytes */
    struct iovec iov[];
};

struct virtq {
    const struct guest_mem *mem;
    uint16_t size; /* power of two, 0 = not set up */
    bool event_idx, indirect;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    /* Host views of the rings, valid while the queue is enabled. */
    struct virtq_desc *desc;
    uint16_t *avail;         /* flags, idx, ring[size], used_event */
    uint8_t *used;           /* flags, idx, {id, len}[size], avail_event */
    uint16_t last_avail;     /* next avail entry the device consumes */
    uint16_t used_idx;       /* entries added to the used ring (may be unpublished) */
    uint16_t published_used; /* what used->idx holds */
    uint16_t signalled_used; /* used idx when the driver was last interrupted */
    bool signalled_valid;
    bool broken; /* a malformed ring or chain was seen: stop touching it */
    struct iovec scratch[VIRTQ_MAX_SEGS];
};

/* Bytes each ring area takes for a queue of `size` entries (2.7). */
uint64_t virtq_desc_bytes(uint16_t size);
uint64_t virtq_avail_bytes(uint16_t size);
uint64_t virtq_used_bytes(uint16_t size);

/*
 * Check the three areas (size, alignment, inside RAM) and start using them
 * from index 0. -EINVAL when the layout is unusable (queue left disabled).
 */
int virtq_enable(struct virtq *q, const struct guest_mem *mem, uint16_t size, uint64_t desc,
                 uint64_t avail, uint64_t used, bool event_idx, bool indirect);
void virtq_disable(struct virtq *q);
static inline bool virtq_ready(const struct virtq *q)
{
    return q->size != 0 && !q->broken;
}

/*
 * Take the next available chain. Returns 1 and a malloc'ed element in *out
 * (free() it after virtq_push), 0 when the ring is empty, -EBADMSG when the
 * ring or chain is malformed (the queue is then marked broken and the
 * device should ask for a reset), -ENOMEM.
 */
int virtq_pop(struct virtq *q, struct virtq_elem **out);
/* Put a pop back (the device could not start it); the next pop returns it. */
void virtq_unpop(struct virtq *q);
/* true when the driver has published chains the device has not popped. */
bool virtq_has_avail(struct virtq *q);

/* Add (head, written bytes) to the used ring; visible after virtq_flush. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);
/*
 * Publish pushed entries and decide whether the driver wants an interrupt
 * (VRING_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX).
 */
bool virtq_flush(struct virtq *q);

/*
 * Notification suppression while the device drains the queue: disable
 * before draining, enable after; enable returns true when more chains
 * arrived meanwhile (drain again).
 */
void virtq_disable_notify(struct virtq *q);
bool virtq_enable_notify(struct virtq *q);

/* Copy between an element's buffers and a flat buffer; returns bytes moved. */
size_t virtq_elem_read(const struct virtq_elem *e, uint64_t skip, void *buf, size_t len);
size_t virtq_elem_write(const struct virtq_elem *e, uint64_t skip, const void *buf, size_t len);

#endif
