/*
 * The arm64 Image header and boot layout (src/arch/arm64/image.c,
 * Documentation/arch/arm64/booting.rst): header fields, what is refused
 * (bad magic, big-endian, short), the pre-3.17 header, a gzip'ed Image
 * inflated with zlib, and where kernel, initrd and DTB go (2 MiB
 * alignment, RAM bounds, the 32 GiB initrd window). Pure code: runs on any
 * host (the Makefile's portable tests).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "arch/arm64/image.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A header as a v3.17+ kernel has it; the rest of the image is len - 64 bytes of pattern. */
static uint8_t *make_image(size_t len, uint64_t text_offset, uint64_t image_size, uint64_t flags)
{
    uint8_t *img = calloc(1, len);
    assert_non_null(img);
    put_le(img + 8, text_offset, 8);
    put_le(img + 16, image_size, 8);
    put_le(img + 24, flags, 8);
    put_le(img + 56, ARM64_IMAGE_MAGIC, 4);
    for (size_t i = 64; i < len; i++)
        img[i] = (uint8_t)(i * 7);
    return img;
}

static void test_header_fields(void **state)
{
    (void)state;
    /* 4 KiB pages (flags bits 1-2 = 1), placement anywhere (bit 3). */
    uint8_t *img = make_image(4096, 0, 30 * MiB, (1u << 1) | (1u << 3));
    struct arm64_image im;
    assert_int_equal(arm64_image_parse(img, 4096, &im), 0);
    assert_int_equal(im.text_offset, 0);
    assert_int_equal(im.image_size, 30 * MiB);
    assert_int_equal(im.page_kib, 4);
    assert_int_equal(im.anywhere, 1);
    free(img);

    img = make_image(4096, 0x80000, 20 * MiB, 3u << 1); /* 64 KiB pages */
    assert_int_equal(arm64_image_parse(img, 4096, &im), 0);
    assert_int_equal(im.text_offset, 0x80000);
    assert_int_equal(im.page_kib, 64);
    assert_int_equal(im.anywhere, 0);
    free(img);
}

static void test_refused(void **state)
{
    (void)state;
    struct arm64_image im;
    uint8_t *img = make_image(4096, 0, 8 * MiB, 0);
    assert_int_equal(arm64_image_parse(img, 63, &im), -ENOEXEC);
    img[56] ^= 1; /* the magic */
    assert_int_equal(arm64_image_parse(img, 4096, &im), -ENOEXEC);
    img[56] ^= 1;
    put_le(img + 24, 1, 8); /* big-endian kernel */
    assert_int_equal(arm64_image_parse(img, 4096, &im), -ENOTSUP);
    put_le(img + 24, 0, 8);
    put_le(img + 8, 2 * MiB, 8); /* text_offset outside the 2 MiB region */
    assert_int_equal(arm64_image_parse(img, 4096, &im), -ENOEXEC);
    put_le(img + 8, 0x123, 8); /* not page aligned */
    assert_int_equal(arm64_image_parse(img, 4096, &im), -ENOEXEC);
    free(img);
}

static void test_legacy_and_trailing(void **state)
{
    (void)state;
    struct arm64_image im;
    /* Pre-3.17: image_size 0 means text_offset 0x80000 whatever the field says. */
    uint8_t *img = make_image(10000, 0x1234, 0, 0);
    assert_int_equal(arm64_image_parse(img, 10000, &im), 0);
    assert_int_equal(im.text_offset, ARM64_IMAGE_LEGACY_TEXT_OFFSET);
    assert_true(im.image_size >= 10000 + 16 * MiB);
    free(img);
    /* A file longer than image_size still gets room for all of it. */
    img = make_image(3 * 4096 + 5, 0, 4096, 0);
    assert_int_equal(arm64_image_parse(img, 3 * 4096 + 5, &im), 0);
    assert_int_equal(im.image_size, 4 * 4096);
    free(img);
}

static void test_gzip(void **state)
{
    (void)state;
    size_t len = 3 * MiB + 123;
    uint8_t *img = make_image(len, 0, 8 * MiB, 1u << 3);
    /* Compress with gzip framing, as distributions' Image.gz are. */
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, len);
    uint8_t *gz = malloc(cap);
    assert_non_null(gz);
    zs.next_in = img;
    zs.avail_in = (uInt)len;
    zs.next_out = gz;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t gz_len = zs.total_out;
    deflateEnd(&zs);

    assert_true(arm64_image_is_gzip(gz, gz_len));
    assert_false(arm64_image_is_gzip(img, len));
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert_int_equal(arm64_image_gunzip(gz, gz_len, &out, &out_len), 0);
    assert_int_equal(out_len, len);
    assert_memory_equal(out, img, len);
    struct arm64_image im;
    assert_int_equal(arm64_image_parse(out, out_len, &im), 0);
    assert_int_equal(im.image_size, 8 * MiB);
    free(out);

    /* A corrupt stream (CRC-32 of the trailer) is refused, not half-loaded. */
    gz[gz_len - 6] ^= 0xff;
    assert_int_equal(arm64_image_gunzip(gz, gz_len, &out, &out_len), -EINVAL);
    assert_null(out);
    /* A truncated one too. */
    gz[gz_len - 6] ^= 0xff;
    assert_int_not_equal(arm64_image_gunzip(gz, gz_len / 2, &out, &out_len), 0);
    assert_null(out);
    free(gz);
    free(img);
}

static void test_layout(void **state)
{
    (void)state;
    struct arm64_image im = {.text_offset = 0, .image_size = 30 * MiB + 4096};
    struct arm64_boot_layout l;
    uint64_t base = 0x40000000;
    assert_int_equal(arm64_boot_layout(&im, base, 512 * MiB, 5 * MiB + 1, 8000, &l), 0);
    assert_int_equal(l.kernel, base);
    assert_int_equal(l.kernel_end, base + 30 * MiB + 4096);
    assert_int_equal(l.initrd, base + 32 * MiB); /* next 2 MiB boundary */
    assert_int_equal(l.dtb, base + 32 * MiB + 6 * MiB);
    assert_int_equal(l.dtb % (2 * MiB), 0);
    assert_true(l.dtb >= l.initrd + 5 * MiB + 1);

    /* text_offset is added to the 2 MiB aligned base; no initrd: the DTB follows the kernel. */
    im.text_offset = 0x80000;
    assert_int_equal(arm64_boot_layout(&im, base, 512 * MiB, 0, 8000, &l), 0);
    assert_int_equal(l.kernel, base + 0x80000);
    assert_int_equal(l.initrd, 0);
    assert_int_equal(l.dtb, base + 32 * MiB);

    /* Too little RAM: the DTB would not fit. Exactly enough: it does. */
    assert_int_equal(arm64_boot_layout(&im, base, 32 * MiB, 0, 8000, &l), -ENOMEM);
    assert_int_equal(arm64_boot_layout(&im, base, 32 * MiB + 8000, 0, 8000, &l), 0);
    /* An unaligned base, an empty or oversized DTB. */
    assert_int_equal(arm64_boot_layout(&im, base + 4096, 512 * MiB, 0, 8000, &l), -EINVAL);
    assert_int_equal(arm64_boot_layout(&im, base, 512 * MiB, 0, 0, &l), -EINVAL);
    assert_int_equal(arm64_boot_layout(&im, base, 512 * MiB, 0, 2 * MiB + 1, &l), -EINVAL);
    /* An initrd that would leave the 32 GiB window around the kernel. */
    assert_int_equal(arm64_boot_layout(&im, base, 64 * GiB, 33 * GiB, 8000, &l), -ENOMEM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_legacy_and_trailing),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
