/*
 * libFuzzer target for fw_cfg as the guest drives it: the input is a
 * program of port accesses (selector, data, DMA address register halves)
 * and writes into guest RAM, so DMA descriptors, lengths, addresses and
 * selectors are all hostile. The sanitizers catch any access outside the
 * guest RAM buffers or the items.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hw/fw_cfg.h"

#define LOW_SIZE 0x10000u
#define HIGH_GPA 0x100000000ull
#define HIGH_SIZE 0x1000u

struct input {
    const uint8_t *p;
    size_t n;
};

static int take(struct input *in, void *out, size_t len)
{
    if (in->n < len)
        return 0;
    memcpy(out, in->p, len);
    in->p += len;
    in->n -= len;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *low, *high;
    if (!low) {
        low = malloc(LOW_SIZE);
        high = malloc(HIGH_SIZE);
        if (!low || !high)
            abort();
    }
    memset(low, 0, LOW_SIZE);
    memset(high, 0, HIGH_SIZE);
    struct guest_mem gm = {
        .regions = {{.gpa = 0, .size = LOW_SIZE, .host = low},
                    {.gpa = HIGH_GPA, .size = HIGH_SIZE, .host = high}},
        .nr_regions = 2,
        .ram_size = LOW_SIZE + HIGH_SIZE,
    };
    struct fw_cfg *fw = fw_cfg_create(&gm);
    if (!fw)
        return 0;
    static uint8_t blob[5000];
    for (unsigned i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)i;
    fw_cfg_add_u16(fw, FW_CFG_NB_CPUS, 2);
    fw_cfg_add_file(fw, "etc/blob", blob, sizeof(blob));
    fw_cfg_add_file(fw, "etc/empty", NULL, 0);
    fw_cfg_add_file_writable(fw, "etc/writable", blob, 16);
    fw_cfg_add_bytes(fw, FW_CFG_ARCH_LOCAL | 3, blob, 7);

    struct input in = {data, size};
    uint8_t op;
    while (take(&in, &op, 1)) {
        uint8_t buf[24];
        uint16_t off;
        switch (op % 8) {
        case 0:
            if (take(&in, buf, 2))
                fw_cfg_io_ops.write(fw, 0, buf, 2);
            break;
        case 1:
            fw_cfg_io_ops.read(fw, op & 0x10 ? 1 : 0, buf, 1 + (op >> 5));
            break;
        case 2:
            if (take(&in, buf, 4))
                fw_cfg_dma_ops.write(fw, 0, buf, 4);
            break;
        case 3:
            if (take(&in, buf, 4))
                fw_cfg_dma_ops.write(fw, 4, buf, 4);
            break;
        case 4:
            if (take(&in, buf, 8))
                fw_cfg_dma_ops.write(fw, 0, buf, 8);
            break;
        case 5: /* a descriptor (or anything) into low RAM */
            if (take(&in, &off, 2) && take(&in, buf, 16)) {
                size_t o = off % LOW_SIZE;
                size_t n = LOW_SIZE - o < 16 ? LOW_SIZE - o : 16;
                memcpy(low + o, buf, n);
            }
            break;
        case 6:
            if (take(&in, &off, 2) && take(&in, buf, 16)) {
                size_t o = off % HIGH_SIZE;
                size_t n = HIGH_SIZE - o < 16 ? HIGH_SIZE - o : 16;
                memcpy(high + o, buf, n);
            }
            break;
        case 7:
            fw_cfg_dma_ops.read(fw, (op >> 3) & 7, buf, 1 + ((op >> 6) & 3));
            if (op & 0x80)
                fw_cfg_reset(fw);
            break;
        }
    }
    fw_cfg_destroy(fw);
    return 0;
}
