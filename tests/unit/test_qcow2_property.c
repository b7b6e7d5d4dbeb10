/*
 * Property test: for random image shapes (cluster size, version, backing
 * file, refcount width) and random operation sequences (writes of any size
 * and alignment, reads, write-zeroes with and without unmap, discards,
 * flushes, close and reopen), the qcow2 image always reads back like a raw
 * mirror, and afterwards `qemu-img check` finds nothing and `qemu-img
 * compare` agrees. Seeded and bounded in time: BT_PROPERTY_SECONDS (default
 * 10) and BT_PROPERTY_SEED (default: the date) reproduce a run; a failure
 * prints its seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "../block/block_test_util.h"

static int group_setup(void **state)
{
    (void)state;
    return bt_make_dir();
}

static int group_teardown(void **state)
{
    (void)state;
    bt_remove_dir();
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void one_case(uint64_t seed)
{
    static const unsigned cluster_bits[] = {9, 12, 16, 16, 16, 21};
    static const unsigned refcount_bits[] = {16, 16, 16, 1, 8, 64};
    uint64_t s = seed;
    uint64_t cluster = 1ull << cluster_bits[bt_rand(&s) % 6];
    bool v2 = bt_rand(&s) % 4 == 0;
    bool backing = bt_rand(&s) % 2;
    unsigned rbits = v2 ? 16 : refcount_bits[bt_rand(&s) % 6];
    uint64_t size = ((bt_rand(&s) % 24) + 1) << 20;
    if (cluster == (1u << 21) && size < (8u << 20))
        size = 8u << 20;
    size += (bt_rand(&s) % 8) * 512; /* not always a cluster multiple */
    const char *img = bt_path("prop.qcow2");
    const char *expect = bt_path("prop.raw");
    uint8_t *mirror;

    if (getenv("BT_VERBOSE"))
        fprintf(stderr, "seed %llu: cluster %llu v%d backing %d refcount_bits %u size %llu\n",
                (unsigned long long)seed, (unsigned long long)cluster, v2 ? 2 : 3, backing, rbits,
                (unsigned long long)size);
    char opts[128];
    snprintf(opts, sizeof(opts), "cluster_size=%llu,refcount_bits=%u%s",
             (unsigned long long)cluster, rbits, v2 ? ",compat=0.10" : "");
    if (backing) {
        mirror = bt_make_pattern(size, seed);
        assert_int_equal(bt_write_file(bt_path("prop-base.raw"), mirror, size), 0);
        assert_int_equal(bt_sh("cd '%s' && rm -f prop.qcow2 && qemu-img create -q -f qcow2 -F raw "
                               "-b prop-base.raw -o %s prop.qcow2",
                               bt_dir, opts),
                         0);
    } else {
        mirror = calloc(1, size);
        assert_int_equal(bt_sh("rm -f '%s' && qemu-img create -q -f qcow2 -o %s '%s' %llu", img,
                               opts, img, (unsigned long long)size),
                         0);
    }
    unsigned rounds = 1 + bt_rand(&s) % 3;
    for (unsigned r = 0; r < rounds; r++) {
        struct blk_image *bi;
        struct bt_ops_stats st = {0};
        assert_int_equal(blk_open(img, BLK_FMT_QCOW2, false, NULL, &bi), 0);
        assert_int_equal(blk_size(bi), size);
        int rc = bt_random_ops(bi, mirror, size, bt_rand(&s), 60 + bt_rand(&s) % 200, cluster, &st);
        if (rc != 0)
            fprintf(stderr, "property test failed: BT_PROPERTY_SEED=%llu\n",
                    (unsigned long long)seed);
        assert_int_equal(rc, 0);
        blk_close(bi); /* reopen: everything comes back from the file */
    }
    assert_int_equal(bt_write_file(expect, mirror, size), 0);
    int check = bt_qemu_check(img);
    int cmp = bt_qemu_compare(img, "qcow2", expect);
    if (check || cmp)
        fprintf(stderr, "property test failed: BT_PROPERTY_SEED=%llu\n", (unsigned long long)seed);
    assert_int_equal(check, 0);
    assert_int_equal(cmp, 0);
    free(mirror);
}

static void random_sequences_match_a_raw_mirror(void **state)
{
    (void)state;
    const char *sec = getenv("BT_PROPERTY_SECONDS");
    const char *fixed = getenv("BT_PROPERTY_SEED");
    double budget = sec ? atof(sec) : 10.0;
    uint64_t seed = fixed ? strtoull(fixed, NULL, 0) : (uint64_t)time(NULL) / 86400;
    double start = now();
    unsigned cases = 0;

    do {
        one_case(seed + cases);
        cases++;
    } while (!fixed && now() - start < budget);
    fprintf(stderr, "property: %u random images from seed %llu\n", cases, (unsigned long long)seed);
}

int main(void)
{
    int skip = bt_qemu_or_skip("test_qcow2_property");
    if (skip >= 0)
        return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_sequences_match_a_raw_mirror),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
