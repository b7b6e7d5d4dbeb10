/*
 * libFuzzer target for the CFI flash (the EFI variable store) as the guest
 * drives it: the input is a program of MMIO reads and writes of any width at
 * any address around the flash, through the same io_bus the VMM uses, so
 * command sequences, block addresses and data are all hostile. Beyond what
 * the sanitizers catch, it checks the device's promise to the VMM: whenever
 * the mode handler last reported read-array mode, a read through MMIO
 * returns exactly the bytes of the host buffer the VMM maps into the guest.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hw/pflash.h"
#include "vmm/io_bus.h"

#define FLASH_GPA 0xffc00000ull
#define FLASH_BLOCKS 8
#define FLASH_SIZE (FLASH_BLOCKS * PFLASH_BLOCK_SIZE)

static bool array_mode;

static void mode_changed(void *opaque, bool array)
{
    (void)opaque;
    array_mode = array;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t init[FLASH_SIZE];
    for (unsigned i = 0; i < sizeof(init); i++)
        init[i] = (uint8_t)(i * 7);
    struct pflash *p;
    if (pflash_create(&p, init, sizeof(init), -1, size > 0 && data[0] == 0xee) < 0)
        abort();
    array_mode = true;
    pflash_set_mode_handler(p, mode_changed, NULL);
    struct io_bus bus;
    io_bus_init(&bus);
    if (pflash_register(p, &bus, FLASH_GPA) < 0)
        abort();

    /* Each operation: 1 byte op, 2 bytes offset (from 256 bytes below the flash), 4 bytes value. */
    static const unsigned widths[4] = {1, 2, 4, 8};
    while (size >= 7) {
        uint8_t op = data[0];
        uint64_t addr = FLASH_GPA - 256 + (data[1] | (uint64_t)data[2] << 8) * 2;
        uint64_t value = 0;
        memcpy(&value, data + 3, 4);
        value |= value << 32;
        data += 7;
        size -= 7;

        unsigned len = widths[op & 3];
        if (op & 0x80) {
            io_bus_access(&bus, addr, &value, len, true);
        } else if (op & 0x40) {
            pflash_reset(p);
            array_mode = true;
        } else {
            uint64_t got = 0;
            io_bus_access(&bus, addr, &got, len, false);
            bool inside = addr >= FLASH_GPA && addr + len <= FLASH_GPA + FLASH_SIZE;
            if (array_mode && inside && memcmp(&got, pflash_host(p) + (addr - FLASH_GPA), len) != 0)
                abort(); /* the mapped buffer and the device disagree */
            if (array_mode != pflash_array_mode(p))
                abort(); /* the VMM was not told about a mode change */
        }
    }
    io_bus_destroy(&bus);
    pflash_destroy(p);
    return 0;
}
