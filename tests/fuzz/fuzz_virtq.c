/*
 * libFuzzer target for the split virtqueue (src/virtio/queue.c): the input
 * becomes guest RAM holding the rings, descriptor tables and buffers; the
 * device side pops every chain it can, copies through its buffers, and
 * pushes it back. Whatever the guest wrote, nothing outside guest RAM may
 * be touched and no walk may run away.
 *
 * Input: 8 bytes of parameters, then the contents of guest RAM.
 *   [0] queue size = 1 << (b & 7)     [1] bit 0 EVENT_IDX, bit 1 INDIRECT
 *   [2..3] desc, [4..5] avail, [6..7] used: ring offsets into RAM
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/queue.h"

#define RAM_GPA 0x10000u
#define RAM_SIZE 0x10000u
#define HIGH_GPA 0x100000u
#define HIGH_SIZE 0x1000u

static uint8_t ram[RAM_SIZE], high[HIGH_SIZE];
static uint8_t scratch[1 << 17];
static struct virtq q;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint16_t qsize = (uint16_t)(1u << (data[0] & 7));
    bool event_idx = data[1] & 1, indirect = data[1] & 2;
    uint16_t desc, avail, used;
    memcpy(&desc, data + 2, 2);
    memcpy(&avail, data + 4, 2);
    memcpy(&used, data + 6, 2);
    data += 8;
    size -= 8;
    memset(ram, 0, sizeof(ram));
    memset(high, 0, sizeof(high));
    memcpy(ram, data, size < sizeof(ram) ? size : sizeof(ram));
    if (size > sizeof(ram))
        memcpy(high, data + sizeof(ram),
               size - sizeof(ram) < sizeof(high) ? size - sizeof(ram) : sizeof(high));

    struct guest_mem gm = {.nr_regions = 2, .ram_size = RAM_SIZE + HIGH_SIZE};
    gm.regions[0] = (struct guest_mem_region){.gpa = RAM_GPA, .size = RAM_SIZE, .host = ram};
    gm.regions[1] = (struct guest_mem_region){.gpa = HIGH_GPA, .size = HIGH_SIZE, .host = high};

    if (virtq_enable(&q, &gm, qsize, RAM_GPA + (desc & ~15u), RAM_GPA + (avail & ~1u),
                     RAM_GPA + (used & ~3u), event_idx, indirect) < 0)
        return 0;
    for (int i = 0; i < 4 * 128; i++) {
        struct virtq_elem *e;
        virtq_disable_notify(&q);
        int rc = virtq_pop(&q, &e);
        if (rc <= 0)
            break;
        size_t n = e->out_len < sizeof(scratch) ? e->out_len : sizeof(scratch);
        virtq_elem_read(e, 0, scratch, n);
        n = e->in_len < sizeof(scratch) ? e->in_len : sizeof(scratch);
        virtq_elem_write(e, 0, scratch, n);
        virtq_push(&q, e->head, (uint32_t)n);
        free(e);
        if ((i & 3) == 3)
            virtq_flush(&q);
        virtq_enable_notify(&q);
    }
    virtq_flush(&q);
    virtq_disable(&q);
    return 0;
}
