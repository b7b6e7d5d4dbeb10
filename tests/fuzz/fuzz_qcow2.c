/*
 * libFuzzer target for the qcow2 driver's parsing of untrusted images:
 * the header and its extensions, the L1 and refcount tables, and the L2
 * entries met by a few reads, writes, discards and a flush. The input is
 * the image file (in a memfd); backing file names are cut so the target
 * never opens other files.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/block.h"
#include "block/qcow2_format.h"
#include "core/log.h"

#define MAX_INPUT (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(struct blk_image *img)
{
    static uint8_t buf[128 * 1024];
    uint64_t vsize = blk_size(img);
    const uint64_t probes[] = {0, 512, 65536, 1u << 20, vsize / 2, vsize ? vsize - 1 : 0};

    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        uint64_t off = probes[i];
        if (off >= vsize)
            continue;
        uint64_t len = vsize - off < sizeof(buf) ? vsize - off : sizeof(buf);
        struct iovec v = {buf, len};
        (void)blk_preadv(img, &v, 1, off);
    }
    if (blk_readonly(img) || vsize < 4096)
        return;
    memset(buf, 0xab, 4096);
    struct iovec w = {buf, 4096};
    (void)blk_pwritev(img, &w, 1, 0);
    (void)blk_pwritev(img, &w, 1, vsize / 2 & ~511ull);
    (void)blk_write_zeroes(img, 0, vsize < (1u << 20) ? vsize : (1u << 20), false);
    (void)blk_discard(img, 0, vsize < (1u << 20) ? vsize : (1u << 20));
    (void)blk_pwritev(img, &w, 1, 8192);
    (void)blk_flush(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    char path[64];
    struct qcow2_header h;

    if (!quiet) {
        log_init(LOG_OFF, -1);
        quiet = true;
    }
    if (size > MAX_INPUT)
        return 0;
    (void)qcow2_parse_header(data, size, size, "fuzz", true, &h);

    int fd = memfd_create("fuzz-qcow2", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) {
        close(fd);
        return 0;
    }
    memcpy(copy, data, size);
    if (size >= 20)
        memset(copy + 8, 0, 12); /* backing_file_offset and _size: no other files */
    if (write(fd, copy, size) == (ssize_t)size) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        for (int readonly = 1; readonly >= 0; readonly--) {
            struct blk_image *img;
            if (blk_open(path, BLK_FMT_QCOW2, readonly, NULL, &img) == 0) {
                exercise(img);
                blk_close(img);
            }
        }
    }
    free(copy);
    close(fd);
    return 0;
}
