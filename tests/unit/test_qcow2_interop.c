/*
 * qcow2 interoperability with QEMU: images made by qemu-img (cluster sizes
 * 512 B..2 MiB, v2 and v3, compressed, preallocated, backing chains, odd
 * refcount widths) read back byte for byte; after our writes, discards and
 * write-zeroes, `qemu-img check` finds no corruption and no leak and
 * `qemu-img compare` matches the expected contents.
 */
#include <endian.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../block/block_test_util.h"

#define MIB (1ull << 20)

struct interop_case {
    const char *name;
    uint64_t cluster;
    const char *create_opts; /* extra -o options for qemu-img convert/create */
    bool compressed;         /* convert -c */
    bool with_backing;       /* image gets a qcow2 backing file with data */
    uint64_t size;
    unsigned ops;
};

static int group_setup(void **state)
{
    (void)state;
    if (!bt_have_qemu_img()) {
        fprintf(stderr, "qemu-img/qemu-io not installed: run scripts/deps.sh qemu-utils\n");
        return -1;
    }
    return bt_make_dir();
}

static int group_teardown(void **state)
{
    (void)state;
    bt_remove_dir();
    return 0;
}

/*
 * Builds the image for a case and returns its expected contents (what
 * qemu-img itself reads from it).
 */
static uint8_t *make_image(const struct interop_case *c, const char *img)
{
    const char *raw = bt_path("src.raw");
    const char *expect = bt_path("expect.raw");
    uint8_t *data = bt_make_pattern(c->size, c->cluster);
    size_t len;

    assert_non_null(data);
    assert_int_equal(bt_write_file(raw, data, c->size), 0);
    free(data);
    if (c->with_backing) {
        const char *base = bt_path("base.qcow2");
        assert_int_equal(bt_sh("qemu-img convert -f raw -O qcow2 -o cluster_size=%llu%s%s '%s' "
                               "'%s'",
                               (unsigned long long)c->cluster, c->create_opts ? "," : "",
                               c->create_opts ? c->create_opts : "", raw, base),
                         0);
        assert_int_equal(bt_sh("qemu-img create -q -f qcow2 -F qcow2 -b base.qcow2 -o "
                               "cluster_size=%llu%s%s '%s'",
                               (unsigned long long)c->cluster, c->create_opts ? "," : "",
                               c->create_opts ? c->create_opts : "", img),
                         0);
        /* Some clusters of the overlay hold their own data, one is zeroed. */
        assert_int_equal(
            bt_sh("qemu-io -f qcow2 -c 'write -P 0x5a 0 %llu' -c 'write -P 0xa5 "
                  "%llu 3000' -c 'write -z %llu %llu' '%s'",
                  (unsigned long long)c->cluster, (unsigned long long)(3 * c->cluster + 100),
                  (unsigned long long)(8 * c->cluster), (unsigned long long)c->cluster, img),
            0);
    } else {
        assert_int_equal(bt_sh("qemu-img convert %s -f raw -O qcow2 -o cluster_size=%llu%s%s "
                               "'%s' '%s'",
                               c->compressed ? "-c" : "", (unsigned long long)c->cluster,
                               c->create_opts ? "," : "", c->create_opts ? c->create_opts : "", raw,
                               img),
                         0);
    }
    assert_int_equal(bt_sh("qemu-img convert -O raw '%s' '%s'", img, expect), 0);
    uint8_t *e = bt_read_file(expect, &len);
    assert_non_null(e);
    assert_int_equal(len, c->size);
    return e;
}

static void read_matches_qemu(void **state)
{
    const struct interop_case *c = *state;
    char name[64];
    snprintf(name, sizeof(name), "%s.qcow2", c->name);
    const char *img = bt_path(name);
    uint8_t *expect = make_image(c, img);
    struct blk_image *bi;

    assert_int_equal(blk_open(img, BLK_FMT_QCOW2, true, NULL, &bi), 0);
    assert_int_equal(blk_size(bi), c->size);
    assert_true(blk_readonly(bi));
    int64_t bad = bt_image_differs(bi, expect, c->size);
    if (bad >= 0)
        fprintf(stderr, "%s: first difference at %lld\n", c->name, (long long)bad);
    assert_int_equal(bad, -1);
    blk_close(bi);
    free(expect);
}

static void writes_pass_qemu_check(void **state)
{
    const struct interop_case *c = *state;
    char name[64];
    snprintf(name, sizeof(name), "%s.qcow2", c->name);
    const char *img = bt_path(name);
    const char *expect_path = bt_path("expect.raw");
    uint8_t *mirror = make_image(c, img);
    struct blk_image *bi;
    struct bt_ops_stats st = {0};

    assert_int_equal(blk_open(img, BLK_FMT_QCOW2, false, NULL, &bi), 0);
    assert_int_equal(
        bt_random_ops(bi, mirror, c->size, c->cluster ^ c->size, c->ops, c->cluster, &st), 0);
    /* Everything still reads back before and after close. */
    assert_int_equal(bt_image_differs(bi, mirror, c->size), -1);
    blk_close(bi);
    assert_int_equal(bt_write_file(expect_path, mirror, c->size), 0);
    assert_int_equal(bt_qemu_check(img), 0);
    assert_int_equal(bt_qemu_compare(img, "qcow2", expect_path), 0);

    assert_int_equal(blk_open(img, BLK_FMT_QCOW2, true, NULL, &bi), 0);
    assert_int_equal(bt_image_differs(bi, mirror, c->size), -1);
    blk_close(bi);
    free(mirror);
}

/* Refcount table growth: 512-byte clusters cover little per table cluster. */
static void refcount_table_grows(void **state)
{
    (void)state;
    const char *img = bt_path("grow.qcow2");
    const char *expect_path = bt_path("grow.raw");
    const uint64_t size = 24 * MIB;
    struct blk_image *bi;

    assert_int_equal(bt_sh("qemu-img create -q -f qcow2 -o cluster_size=512 '%s' %llu", img,
                           (unsigned long long)size),
                     0);
    uint8_t *data = malloc(size);
    bt_fill(data, size, 42);
    assert_int_equal(blk_open(img, BLK_FMT_QCOW2, false, NULL, &bi), 0);
    for (uint64_t off = 0; off < size; off += MIB) {
        struct iovec v = {data + off, MIB};
        assert_int_equal(blk_pwritev(bi, &v, 1, off), 0);
    }
    assert_int_equal(blk_flush(bi), 0);
    assert_int_equal(bt_image_differs(bi, data, size), -1);
    blk_close(bi);
    /* The table started as one cluster (64 blocks of 128 KiB): it must have grown. */
    uint32_t rt_clusters = 0;
    int fd = open(img, O_RDONLY);
    assert_int_equal(pread(fd, &rt_clusters, 4, 56), 4);
    close(fd);
    assert_true(be32toh(rt_clusters) > 1);
    assert_int_equal(bt_write_file(expect_path, data, size), 0);
    assert_int_equal(bt_qemu_check(img), 0);
    assert_int_equal(bt_qemu_compare(img, "qcow2", expect_path), 0);
    free(data);
}

/* A chain raw <- qcow2 <- qcow2 with relative names, read through. */
static void backing_chain_reads_through(void **state)
{
    (void)state;
    const uint64_t size = 8 * MIB;
    uint8_t *data = bt_make_pattern(size, 99);
    struct blk_image *bi;
    size_t len;

    assert_int_equal(bt_write_file(bt_path("chain0.raw"), data, size), 0);
    free(data);
    assert_int_equal(bt_sh("cd '%s' && qemu-img create -q -f qcow2 -F raw -b chain0.raw "
                           "chain1.qcow2 && qemu-io -f qcow2 -c 'write -P 1 65536 200000' "
                           "chain1.qcow2 && qemu-img create -q -f qcow2 -F qcow2 -b chain1.qcow2 "
                           "-o cluster_size=4096 chain2.qcow2 %llu && qemu-io -f qcow2 -c "
                           "'write -P 2 100000 5000' -c 'write -z 4096 8192' chain2.qcow2",
                           bt_dir, (unsigned long long)(size + MIB)),
                     0);
    assert_int_equal(
        bt_sh("qemu-img convert -O raw '%s' '%s'", bt_path("chain2.qcow2"), bt_path("chain.raw")),
        0);
    uint8_t *expect = bt_read_file(bt_path("chain.raw"), &len);
    assert_int_equal(len, size + MIB);
    assert_int_equal(blk_open(bt_path("chain2.qcow2"), BLK_FMT_QCOW2, false, NULL, &bi), 0);
    assert_int_equal(blk_size(bi), size + MIB);
    assert_int_equal(bt_image_differs(bi, expect, len), -1);
    /* Copy-on-write into the top image leaves the backing files alone. */
    struct bt_ops_stats st = {0};
    assert_int_equal(bt_random_ops(bi, expect, len, 5, 200, 4096, &st), 0);
    blk_close(bi);
    assert_int_equal(bt_write_file(bt_path("chain.raw"), expect, len), 0);
    assert_int_equal(bt_qemu_check(bt_path("chain2.qcow2")), 0);
    assert_int_equal(bt_qemu_check(bt_path("chain1.qcow2")), 0);
    assert_int_equal(bt_qemu_compare(bt_path("chain2.qcow2"), "qcow2", bt_path("chain.raw")), 0);
    free(expect);
}

static void raw_images_work(void **state)
{
    (void)state;
    const uint64_t size = 16 * MIB;
    uint8_t *data = bt_make_pattern(size, 3);
    struct blk_image *bi;
    struct bt_ops_stats st = {0};

    assert_int_equal(bt_write_file(bt_path("plain.raw"), data, size), 0);
    assert_int_equal(blk_open(bt_path("plain.raw"), BLK_FMT_RAW, false, NULL, &bi), 0);
    assert_int_equal(blk_size(bi), size);
    assert_int_equal(bt_image_differs(bi, data, size), -1);
    assert_int_equal(bt_random_ops(bi, data, size, 77, 400, 4096, &st), 0);
    blk_close(bi);
    assert_int_equal(bt_write_file(bt_path("plain.expect"), data, size), 0);
    assert_int_equal(bt_qemu_compare(bt_path("plain.raw"), "raw", bt_path("plain.expect")), 0);
    free(data);
}

static void out_of_range_requests_fail(void **state)
{
    (void)state;
    struct blk_image *bi;
    uint8_t buf[1024] = {0};
    struct iovec v = {buf, sizeof(buf)};

    assert_int_equal(bt_sh("qemu-img create -q -f qcow2 '%s' 1M", bt_path("small.qcow2")), 0);
    assert_int_equal(blk_open(bt_path("small.qcow2"), BLK_FMT_QCOW2, false, NULL, &bi), 0);
    assert_int_equal(blk_preadv(bi, &v, 1, MIB - 512), -EINVAL);
    assert_int_equal(blk_pwritev(bi, &v, 1, UINT64_MAX - 10), -EINVAL);
    assert_int_equal(blk_discard(bi, MIB, 1), -EINVAL);
    assert_int_equal(blk_write_zeroes(bi, 0, MIB + 1, true), -EINVAL);
    assert_int_equal(blk_pwritev(bi, &v, 1, MIB - 1024), 0);
    blk_close(bi);
    assert_int_equal(blk_open(bt_path("small.qcow2"), BLK_FMT_QCOW2, true, NULL, &bi), 0);
    assert_int_equal(blk_pwritev(bi, &v, 1, 0), -EROFS);
    blk_close(bi);
    assert_int_equal(bt_qemu_check(bt_path("small.qcow2")), 0);
}

#define CASE(n, ...) static const struct interop_case n = {.name = #n, __VA_ARGS__}
CASE(c4k, .cluster = 4096, .size = 16 * MIB, .ops = 400);
CASE(c64k, .cluster = 65536, .size = 32 * MIB, .ops = 400);
CASE(c2m, .cluster = 2 * MIB, .size = 40 * MIB, .ops = 120);
CASE(c512, .cluster = 512, .size = 4 * MIB, .ops = 300);
CASE(v2, .cluster = 65536, .create_opts = "compat=0.10", .size = 16 * MIB, .ops = 300);
CASE(compressed64k, .cluster = 65536, .compressed = true, .size = 16 * MIB, .ops = 300);
CASE(compressed4k, .cluster = 4096, .compressed = true, .size = 8 * MIB, .ops = 300);
CASE(backing64k, .cluster = 65536, .with_backing = true, .size = 16 * MIB, .ops = 300);
CASE(backing4k_v2, .cluster = 4096, .with_backing = true, .create_opts = "compat=0.10",
     .size = 8 * MIB, .ops = 300);
CASE(prealloc_metadata, .cluster = 65536, .create_opts = "preallocation=metadata", .size = 16 * MIB,
     .ops = 300);
CASE(prealloc_falloc, .cluster = 65536, .create_opts = "preallocation=falloc", .size = 16 * MIB,
     .ops = 200);
CASE(prealloc_full, .cluster = 65536, .create_opts = "preallocation=full", .size = 16 * MIB,
     .ops = 200);
CASE(refcount1, .cluster = 65536, .create_opts = "refcount_bits=1", .size = 16 * MIB, .ops = 300);
CASE(refcount64, .cluster = 4096, .create_opts = "refcount_bits=64", .size = 8 * MIB, .ops = 300);
CASE(lazy_refcounts, .cluster = 65536, .create_opts = "lazy_refcounts=on", .size = 8 * MIB,
     .ops = 200);

#define BOTH(c)                                                                                    \
    {"read_" #c, read_matches_qemu, NULL, NULL, (void *)&c},                                       \
    {                                                                                              \
        "write_" #c, writes_pass_qemu_check, NULL, NULL, (void *)&c                                \
    }

int main(void)
{
    int skip = bt_qemu_or_skip("test_qcow2_interop");
    if (skip >= 0)
        return skip;
    const struct CMUnitTest tests[] = {
        BOTH(c4k),
        BOTH(c64k),
        BOTH(c2m),
        BOTH(c512),
        BOTH(v2),
        BOTH(compressed64k),
        BOTH(compressed4k),
        BOTH(backing64k),
        BOTH(backing4k_v2),
        BOTH(prealloc_metadata),
        BOTH(prealloc_falloc),
        BOTH(prealloc_full),
        BOTH(refcount1),
        BOTH(refcount64),
        BOTH(lazy_refcounts),
        cmocka_unit_test(refcount_table_grows),
        cmocka_unit_test(backing_chain_reads_through),
        cmocka_unit_test(raw_images_work),
        cmocka_unit_test(out_of_range_requests_fail),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
