/*
 * arm64 Image header and boot layout (see image.h; Documentation/arch/
 * arm64/booting.rst). The header's integers are little-endian for a
 * little-endian kernel (flags bit 0 clear), which is the only kind this
 * machine runs: the vCPUs start little-endian.
 */
#include "arch/arm64/image.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* A pre-3.17 kernel does not say how big its BSS is: leave this much past the file. */
#define LEGACY_BSS_MARGIN (32ull << 20)

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

int arm64_image_parse(const uint8_t *img, size_t len, struct arm64_image *out)
{
    memset(out, 0, sizeof(*out));
    if (len < ARM64_IMAGE_HEADER_SIZE || le32(img + 56) != ARM64_IMAGE_MAGIC)
        return -ENOEXEC;
    uint64_t text_offset = le64(img + 8);
    uint64_t image_size = le64(img + 16);
    uint64_t flags = le64(img + 24);
    if (image_size == 0) {
        /* Before 3.17 the fields' endianness was unspecified and flags did not exist. */
        out->text_offset = ARM64_IMAGE_LEGACY_TEXT_OFFSET;
        out->image_size = align_up(len, 4096) + LEGACY_BSS_MARGIN;
        return 0;
    }
    if (flags & 1)
        return -ENOTSUP;
    /* text_offset places the kernel inside its 2 MiB region, page aligned. */
    if (text_offset >= ARM64_IMAGE_ALIGN || (text_offset & 4095) || image_size > (1ull << 40))
        return -ENOEXEC;
    static const unsigned page_kib[4] = {0, 4, 16, 64};
    out->text_offset = text_offset;
    /* The whole file is copied: trailing bytes past image_size (padding) still need room. */
    out->image_size = image_size < len ? align_up(len, 4096) : image_size;
    out->flags = flags;
    out->page_kib = page_kib[(flags >> 1) & 3];
    out->anywhere = (flags >> 3) & 1;
    return 0;
}

int arm64_image_is_gzip(const uint8_t *buf, size_t len)
{
    return len >= 10 && buf[0] == 0x1f && buf[1] == 0x8b && buf[2] == 8;
}

int arm64_image_gunzip(const uint8_t *gz, size_t len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (len > UINT32_MAX)
        return -EFBIG;
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    /* 16 + MAX_WBITS: a gzip header and trailer (CRC-32 checked), not raw zlib. */
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return -ENOMEM;
    size_t cap = len * 4 > (16u << 20) ? len * 4 : (16u << 20);
    if (cap > ARM64_IMAGE_MAX_INFLATED)
        cap = ARM64_IMAGE_MAX_INFLATED;
    uint8_t *buf = malloc(cap);
    int rc = buf ? 0 : -ENOMEM;
    zs.next_in = (Bytef *)(uintptr_t)gz;
    zs.avail_in = (uInt)len;
    while (rc == 0) {
        if (zs.total_out == cap) {
            if (cap >= ARM64_IMAGE_MAX_INFLATED) {
                rc = -EFBIG;
                break;
            }
            size_t ncap = cap * 2 > ARM64_IMAGE_MAX_INFLATED ? ARM64_IMAGE_MAX_INFLATED : cap * 2;
            uint8_t *n = realloc(buf, ncap);
            if (!n) {
                rc = -ENOMEM;
                break;
            }
            buf = n;
            cap = ncap;
        }
        zs.next_out = buf + zs.total_out;
        zs.avail_out = (uInt)(cap - zs.total_out);
        int z = inflate(&zs, Z_NO_FLUSH);
        if (z == Z_STREAM_END)
            break;
        if (z == Z_OK)
            continue;
        /* Z_BUF_ERROR with input left means the output was full: grow and go on. */
        if (z == Z_BUF_ERROR && zs.avail_out == 0)
            continue;
        rc = z == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
    }
    size_t total = zs.total_out;
    inflateEnd(&zs);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = total;
    return 0;
}

int arm64_boot_layout(const struct arm64_image *im, uint64_t ram_base, uint64_t ram_size,
                      uint64_t initrd_size, uint64_t dtb_size, struct arm64_boot_layout *out)
{
    if (ram_base & (ARM64_IMAGE_ALIGN - 1))
        return -EINVAL;
    if (dtb_size == 0 || dtb_size > ARM64_DTB_MAX)
        return -EINVAL;
    uint64_t ram_end = ram_base + ram_size;
    struct arm64_boot_layout l = {0};
    l.kernel = ram_base + im->text_offset;
    l.kernel_end = l.kernel + im->image_size;
    uint64_t next = align_up(l.kernel_end, ARM64_IMAGE_ALIGN);
    if (initrd_size) {
        l.initrd = next;
        next = align_up(l.initrd + initrd_size, ARM64_IMAGE_ALIGN);
    }
    l.dtb = next;
    /* Overflow-safe "does [ram_base, dtb + dtb_size) fit": each step only grows. */
    if (l.kernel_end < l.kernel || next < l.kernel_end || l.dtb > ram_end ||
        dtb_size > ram_end - l.dtb)
        return -ENOMEM;
    /* booting.rst: the initrd is inside a 1 GiB aligned window of at most 32 GiB with the kernel.
     */
    if (initrd_size &&
        align_up(l.initrd + initrd_size, 1ull << 30) - (ram_base & ~((1ull << 30) - 1)) >
            (32ull << 30))
        return -ENOMEM;
    *out = l;
    return 0;
}
