/*
 * Hostile qcow2 images: headers and tables that lie (truncated files,
 * tables past the end or overlapping, oversized tables, unsupported or
 * unknown features, backing loops, bad compressed data, refcount
 * underflow, metadata past krunkit's limits). Each must be refused at open with a clear message, or
 * fail only the request that touches the bad part with -EIO; never crash, never touch bytes outside
 * the image file.
 */
#include <endian.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../block/block_test_util.h"
#include "core/log.h"

static int log_fd = -1;

static int group_setup(void **state)
{
    (void)state;
    if (!bt_have_qemu_img())
        return -1;
    int r = bt_make_dir();
    if (r < 0)
        return r;
    log_fd = open(bt_path("log"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    log_init(LOG_ERROR, log_fd);
    return log_fd < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    log_init(LOG_INFO, -1);
    close(log_fd);
    bt_remove_dir();
    return 0;
}

static void log_reset(void)
{
    assert_int_equal(ftruncate(log_fd, 0), 0);
    lseek(log_fd, 0, SEEK_SET);
}

/* True when the log since log_reset() contains `what`. */
static bool logged(const char *what)
{
    char buf[8192];
    ssize_t n = pread(log_fd, buf, sizeof(buf) - 1, 0);
    if (n < 0)
        return false;
    buf[n] = '\0';
    if (!strstr(buf, what)) {
        fprintf(stderr, "log does not mention \"%s\":\n%s", what, buf);
        return false;
    }
    return true;
}

static uint64_t get64(const char *path, uint64_t off)
{
    uint64_t v = 0;
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &v, 8, (off_t)off), 8);
    close(fd);
    return be64toh(v);
}

static void put_bytes(const char *path, uint64_t off, const void *p, size_t len)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, p, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static void put64(const char *path, uint64_t off, uint64_t v)
{
    v = htobe64(v);
    put_bytes(path, off, &v, 8);
}

static void put32(const char *path, uint64_t off, uint32_t v)
{
    v = htobe32(v);
    put_bytes(path, off, &v, 4);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/* A fresh 4 MiB image with data in its first four clusters. */
static const char *fresh_image(const char *name, const char *opts)
{
    const char *p = bt_path(name);
    assert_int_equal(bt_sh("rm -f '%s' && qemu-img create -q -f qcow2 %s%s '%s' 4M && qemu-io -f "
                           "qcow2 -c 'write -P 0x11 0 256k' '%s'",
                           p, opts ? "-o " : "", opts ? opts : "", p, p),
                     0);
    return p;
}

static int try_open(const char *path, bool ro)
{
    struct blk_image *img = NULL;
    log_reset();
    int r = blk_open(path, BLK_FMT_QCOW2, ro, NULL, &img);
    if (r == 0)
        blk_close(img);
    else
        assert_null(img);
    return r;
}

static void truncated_files_are_refused(void **state)
{
    (void)state;
    const char *p = fresh_image("trunc.qcow2", NULL);
    assert_int_equal(truncate(p, 65536 + 4096), 0); /* header cluster and part of the reftable */
    assert_int_equal(try_open(p, true), -EINVAL);
    assert_true(logged("outside the file"));
    assert_int_equal(truncate(p, 50), 0);
    assert_int_equal(try_open(p, true), -EINVAL);
    assert_true(logged("too short"));
    assert_int_equal(truncate(p, 0), 0);
    assert_int_equal(try_open(p, false), -EINVAL);

    /* Tables intact, data cut off: only the requests for the lost clusters fail. */
    p = fresh_image("truncdata.qcow2", "cluster_size=4096");
    struct blk_image *img;
    uint64_t size = file_size(p);
    assert_int_equal(truncate(p, size - 3 * 4096 - 100), 0);
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, false, NULL, &img), 0);
    uint8_t buf[4096];
    struct iovec v = {buf, sizeof(buf)};
    int failed = 0;
    for (uint64_t off = 0; off < 256 * 1024; off += 4096) {
        int r = blk_preadv(img, &v, 1, off);
        assert_true(r == 0 || r == -EIO);
        failed += r == -EIO;
    }
    assert_true(failed >= 2 && failed <= 4);
    assert_int_equal(blk_preadv(img, &v, 1, 1 << 20), 0); /* unallocated: fine */
    blk_close(img);
}

static void bad_header_fields_are_refused(void **state)
{
    (void)state;
    const char *p;

    p = fresh_image("magic.qcow2", NULL);
    put32(p, 0, 0x12345678);
    assert_int_equal(try_open(p, true), -EINVAL);
    assert_true(logged("bad magic"));

    p = fresh_image("version.qcow2", NULL);
    put32(p, 4, 4);
    assert_int_equal(try_open(p, true), -ENOTSUP);
    assert_true(logged("version 4"));

    p = fresh_image("cbits.qcow2", NULL);
    put32(p, 20, 30);
    assert_int_equal(try_open(p, true), -EINVAL);
    assert_true(logged("cluster size"));

    p = fresh_image("crypt.qcow2", NULL);
    put32(p, 32, 1);
    assert_int_equal(try_open(p, true), -ENOTSUP);
    assert_true(logged("encrypted"));

    p = fresh_image("rorder.qcow2", NULL);
    put32(p, 96, 7);
    assert_int_equal(try_open(p, true), -EINVAL);
    assert_true(logged("refcount width"));

    p = fresh_image("hlen.qcow2", NULL);
    put32(p, 100, 1 << 20);
    assert_int_equal(try_open(p, true), -EINVAL);
    assert_true(logged("header length"));

    p = fresh_image("backname.qcow2", NULL);
    put64(p, 8, 65000);
    put32(p, 16, 1000);
    assert_int_equal(try_open(p, true), -EINVAL);
    assert_true(logged("backing file name"));

    p = fresh_image("ext.qcow2", NULL);
    put32(p, 112, 0x12345678); /* an extension longer than the cluster */
    put32(p, 116, 0x7fffffff);
    assert_int_equal(try_open(p, true), -EINVAL);
    assert_true(logged("header extension"));
}

static void bad_tables_are_refused(void **state)
{
    (void)state;
    const char *p;

    p = fresh_image("l1eof.qcow2", NULL);
    put64(p, 40, 1ull << 40);
    assert_int_equal(try_open(p, true), -EINVAL);
    assert_true(logged("L1 table"));

    p = fresh_image("l1unaligned.qcow2", NULL);
    put64(p, 40, get64(p, 40) + 8);
    assert_int_equal(try_open(p, true), -EINVAL);

    p = fresh_image("l1overlap.qcow2", NULL);
    put64(p, 40, get64(p, 48));
    assert_int_equal(try_open(p, true), -EINVAL);
    assert_true(logged("overlap"));

    p = fresh_image("l1huge.qcow2", NULL);
    put32(p, 36, 0x10000000);
    assert_int_equal(try_open(p, true), -EINVAL);
    assert_true(logged("L1 table size"));

    p = fresh_image("l1small.qcow2", NULL);
    put64(p, 24, 1ull << 40); /* virtual size the L1 table cannot map */
    assert_int_equal(try_open(p, true), -EINVAL);

    p = fresh_image("rthuge.qcow2", NULL);
    put32(p, 56, 0x100000);
    assert_int_equal(try_open(p, true), -EINVAL);
    assert_true(logged("refcount table"));

    p = fresh_image("rtzero.qcow2", NULL);
    put32(p, 56, 0);
    assert_int_equal(try_open(p, true), -EINVAL);

    p = fresh_image("rbeof.qcow2", NULL);
    put64(p, get64(p, 48), 1ull << 40); /* first refcount block past the end */
    assert_int_equal(try_open(p, true), -EINVAL);
    assert_true(logged("refcount block"));

    p = fresh_image("rbonl1.qcow2", NULL);
    put64(p, get64(p, 48), get64(p, 40)); /* refcount block 0 on top of the L1 table */
    assert_int_equal(try_open(p, true), -EINVAL);
    assert_true(logged("overlaps"));

    p = fresh_image("rbheader.qcow2", NULL);
    put64(p, get64(p, 48), 0); /* refcount block 0 "at" offset 0: missing */
    put64(p, get64(p, 48), 4096);
    assert_int_equal(try_open(p, true), -EINVAL);
}

static void features_are_checked(void **state)
{
    (void)state;
    const char *p;

    p = fresh_image("unknown.qcow2", NULL);
    put64(p, 72, 1ull << 40);
    assert_int_equal(try_open(p, true), -ENOTSUP);
    assert_true(logged("bit 40"));

    p = bt_path("extl2.qcow2");
    assert_int_equal(bt_sh("qemu-img create -q -f qcow2 -o extended_l2=on '%s' 1M", p), 0);
    assert_int_equal(try_open(p, true), -ENOTSUP);
    assert_true(logged("extended L2"));

    p = bt_path("datafile.qcow2");
    assert_int_equal(
        bt_sh("qemu-img create -q -f qcow2 -o data_file='%s' '%s' 1M", bt_path("datafile.raw"), p),
        0);
    assert_int_equal(try_open(p, true), -ENOTSUP);
    assert_true(logged("external data file"));

    p = bt_path("zstd.qcow2");
    assert_int_equal(bt_sh("qemu-img create -q -f qcow2 -o compression_type=zstd '%s' 1M", p), 0);
    assert_int_equal(try_open(p, true), -ENOTSUP);
    assert_true(logged("compression type"));

    p = fresh_image("corrupt.qcow2", NULL);
    put64(p, 72, 2);
    assert_int_equal(try_open(p, false), -EROFS);
    assert_true(logged("corrupt"));
    assert_int_equal(try_open(p, true), 0);

    /*
     * Dirty (lazy refcounts, QEMU killed): readable as is; a read-write open
     * rebuilds the refcounts and clears the bit, as QEMU does.
     */
    p = bt_path("dirty.qcow2");
    assert_int_equal(bt_sh("qemu-img create -q -f qcow2 -o lazy_refcounts=on,cluster_size=4096 "
                           "'%s' 16M && cp '%s' '%s'.ref; qemu-io -f qcow2 -c 'write -P 0x33 0 1M' "
                           "-c 'write -P 0x44 4M 100k' -c abort '%s'; true",
                           p, p, p, p),
                     0);
    assert_int_equal(get64(p, 72) & 1, 1);
    assert_int_not_equal(bt_sh("qemu-img check '%s'", p), 0); /* refcounts are wrong */
    assert_int_equal(try_open(p, true), 0);
    assert_int_equal(get64(p, 72) & 1, 1);
    log_init(LOG_INFO, log_fd);
    assert_int_equal(try_open(p, false), 0);
    log_init(LOG_ERROR, log_fd);
    assert_true(logged("repaired"));
    assert_int_equal(get64(p, 72) & 1, 0);
    assert_int_equal(bt_qemu_check(p), 0);
    assert_int_equal(bt_sh("qemu-io -f qcow2 -c 'read -P 0x33 0 1M' -c 'read -P 0x44 4M 100k' "
                           "-c 'read -P 0 1M 3M' '%s' | grep -q 'Pattern verification failed' "
                           "&& exit 1; exit 0",
                           p),
                     0);
    /* A dirty image whose tables point outside the file is not repaired. */
    assert_int_equal(bt_sh("qemu-io -f qcow2 -c 'write 8M 4k' -c abort '%s'; true", p), 0);
    assert_int_equal(get64(p, 72) & 1, 1);
    put64(p, get64(p, 40), (1ull << 63) | (1ull << 40));
    assert_int_equal(try_open(p, false), -EIO);
    assert_true(logged("cannot repair"));
    assert_int_equal(try_open(p, true), 0);

    /* Internal snapshots: readable, not writable. */
    p = fresh_image("snap.qcow2", NULL);
    assert_int_equal(bt_sh("qemu-img snapshot -c s1 '%s'", p), 0);
    assert_int_equal(try_open(p, false), -EROFS);
    assert_true(logged("snapshots"));
    assert_int_equal(try_open(p, true), 0);

    /* Autoclear bits are dropped on a read-write open, as the spec asks. */
    p = fresh_image("autoclear.qcow2", NULL);
    put64(p, 88, 1ull << 5);
    assert_int_equal(try_open(p, false), 0);
    assert_int_equal(get64(p, 88), 0);
}

/* L2 entry of guest cluster `index` (64 KiB clusters, first L2 table). */
static uint64_t l2_entry_offset(const char *p, unsigned index)
{
    uint64_t l1 = get64(p, get64(p, 40));
    uint64_t l2 = l1 & 0x00fffffffffffe00ull;
    assert_true(l2 != 0);
    return l2 + 8ull * index;
}

static int read_at(struct blk_image *img, uint64_t off, size_t len)
{
    uint8_t *buf = malloc(len);
    struct iovec v = {buf, len};
    int r = blk_preadv(img, &v, 1, off);
    free(buf);
    return r;
}

static int write_at(struct blk_image *img, uint64_t off, size_t len)
{
    uint8_t *buf = calloc(1, len);
    struct iovec v = {buf, len};
    int r = blk_pwritev(img, &v, 1, off);
    free(buf);
    return r;
}

static void bad_pointers_fail_only_their_requests(void **state)
{
    (void)state;
    struct blk_image *img;
    const char *p = fresh_image("l2eof.qcow2", NULL);
    uint64_t size_before;

    put64(p, l2_entry_offset(p, 0), (1ull << 63) | (1ull << 40));
    put64(p, l2_entry_offset(p, 2), (1ull << 63) | get64(p, 48)); /* points at the reftable */
    size_before = file_size(p);
    log_reset();
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, false, NULL, &img), 0);
    assert_int_equal(read_at(img, 0, 4096), -EIO);
    assert_int_equal(read_at(img, 65536, 65536), 0);
    assert_int_equal(read_at(img, 2 * 65536, 512), -EIO);
    assert_int_equal(write_at(img, 100, 512), -EIO);
    assert_int_equal(write_at(img, 2 * 65536, 512), -EIO);
    assert_int_equal(read_at(img, 3 * 65536, 65536), 0);
    blk_close(img);
    assert_true(logged("past the end of the file"));
    assert_int_equal(file_size(p), size_before);

    /* L1 entry past the end of the file. */
    p = fresh_image("l1entry.qcow2", NULL);
    put64(p, get64(p, 40), (1ull << 63) | (1ull << 41));
    size_before = file_size(p);
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, false, NULL, &img), 0);
    assert_int_equal(read_at(img, 0, 512), -EIO);
    assert_int_equal(write_at(img, 0, 512), -EIO);
    assert_int_equal(blk_write_zeroes(img, 0, 65536, true), -EIO);
    assert_int_equal(blk_discard(img, 0, 65536), -EIO);
    blk_close(img);
    assert_int_equal(file_size(p), size_before);
}

static void bad_compressed_data_fails_the_read(void **state)
{
    (void)state;
    struct blk_image *img;
    const char *raw = bt_path("c.raw");
    const char *p = bt_path("c.qcow2");
    uint8_t *data = malloc(1 << 20);

    /* Compressible: a random eighth in every cluster, zeroes after it. */
    memset(data, 0, 1 << 20);
    for (unsigned i = 0; i < 16; i++)
        bt_fill(data + i * 65536, 8192, i + 1);
    assert_int_equal(bt_write_file(raw, data, 1 << 20), 0);
    assert_int_equal(bt_sh("qemu-img convert -c -O qcow2 '%s' '%s'", raw, p), 0);
    uint64_t e0 = get64(p, l2_entry_offset(p, 0));
    uint64_t e1 = get64(p, l2_entry_offset(p, 1));
    assert_true(e0 & (1ull << 62));
    uint64_t coff = e1 & ((1ull << 54) - 1); /* 64 KiB clusters: 62 - (16 - 8) offset bits */
    uint8_t junk[256];
    memset(junk, 0xff, sizeof(junk));
    put_bytes(p, coff, junk, sizeof(junk));
    put64(p, l2_entry_offset(p, 2), (1ull << 62) | (1ull << 50)); /* past the end */

    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, false, NULL, &img), 0);
    assert_int_equal(read_at(img, 0, 65536), 0);
    log_reset();
    assert_int_equal(read_at(img, 65536, 4096), -EIO);
    assert_true(logged("decompress"));
    assert_int_equal(read_at(img, 2 * 65536, 4096), -EIO);
    assert_int_equal(write_at(img, 65536 + 10, 100), -EIO); /* copy-on-write needs the old data */
    assert_int_equal(read_at(img, 3 * 65536, 65536), 0);
    /* A whole-cluster write replaces the bad cluster without reading it. */
    assert_int_equal(write_at(img, 65536, 65536), 0);
    assert_int_equal(read_at(img, 65536, 65536), 0);
    blk_close(img);
    free(data);
}

static void backing_loops_are_refused(void **state)
{
    (void)state;
    assert_int_equal(bt_sh("cd '%s' && qemu-img create -q -f qcow2 la.qcow2 1M && "
                           "qemu-img create -q -f qcow2 -F qcow2 -b la.qcow2 lb.qcow2 && "
                           "qemu-img rebase -u -F qcow2 -b lb.qcow2 la.qcow2 && "
                           "qemu-img create -q -f qcow2 self.qcow2 1M && "
                           "qemu-img rebase -u -F qcow2 -b self.qcow2 self.qcow2",
                           bt_dir),
                     0);
    assert_int_equal(try_open(bt_path("lb.qcow2"), false), -ELOOP);
    assert_true(logged("loop"));
    assert_int_equal(try_open(bt_path("self.qcow2"), true), -ELOOP);

    /* A chain deeper than the limit. */
    assert_int_equal(bt_sh("cd '%s' && qemu-img create -q -f qcow2 d0.qcow2 1M && for i in "
                           "$(seq 1 20); do qemu-img create -q -f qcow2 -F qcow2 -b "
                           "d$((i-1)).qcow2 d$i.qcow2; done",
                           bt_dir),
                     0);
    assert_int_equal(try_open(bt_path("d20.qcow2"), true), -ELOOP);
    assert_true(logged("deeper"));
    assert_int_equal(try_open(bt_path("d10.qcow2"), true), 0);

    /* Missing backing file. */
    assert_int_equal(bt_sh("cd '%s' && truncate -s 1M nowhere.raw && qemu-img create -q -f qcow2 "
                           "-F raw -b nowhere.raw orphan.qcow2 && rm nowhere.raw",
                           bt_dir),
                     0);
    assert_int_equal(try_open(bt_path("orphan.qcow2"), true), -ENOENT);
    assert_true(logged("nowhere.raw"));
}

static void refcount_underflow_is_contained(void **state)
{
    (void)state;
    struct blk_image *img;
    const char *p = fresh_image("under.qcow2", NULL);

    /* Two L2 entries share one cluster whose refcount is 1: the second free underflows. */
    put64(p, l2_entry_offset(p, 1), get64(p, l2_entry_offset(p, 0)));
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, false, NULL, &img), 0);
    assert_int_equal(blk_discard(img, 0, 2 * 65536), 0);
    log_reset();
    assert_int_equal(blk_flush(img), 0);
    assert_true(logged("underflow"));
    assert_int_equal(read_at(img, 0, 2 * 65536), 0);
    blk_close(img);

    /* Rebuilding 1-bit refcounts for a cluster referenced twice would overflow. */
    p = bt_path("overflow.qcow2");
    assert_int_equal(bt_sh("qemu-img create -q -f qcow2 -o lazy_refcounts=on,refcount_bits=1 '%s' "
                           "4M && (qemu-io -f qcow2 -c 'write -P 1 0 128k' -c abort '%s'; true)",
                           p, p),
                     0);
    assert_int_equal(get64(p, 72) & 1, 1);
    put64(p, l2_entry_offset(p, 1), get64(p, l2_entry_offset(p, 0)));
    assert_int_equal(try_open(p, false), -EIO);
    assert_true(logged("1-bit refcounts"));
    assert_int_equal(try_open(p, true), 0);

    /* A 1-bit refcount at its maximum cannot be raised. */
    p = fresh_image("one.qcow2", "refcount_bits=1");
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, false, NULL, &img), 0);
    assert_int_equal(write_at(img, 1 << 20, 65536), 0);
    blk_close(img);
    assert_int_equal(bt_qemu_check(p), 0);
}

/* Each limit in docs/qcow2.md ("Limits"), met by a crafted header: refused, naming the limit. */
static void metadata_limits_are_refused(void **state)
{
    (void)state;
    const char *p;

    /* More header extensions than QCOW2_MAX_EXTENSIONS (64), each empty. */
    p = fresh_image("extcount.qcow2", NULL);
    for (unsigned i = 0; i < 65; i++) {
        put32(p, 112 + 8 * i, 0x12345678);
        put32(p, 116 + 8 * i, 0);
    }
    assert_int_equal(try_open(p, true), -EINVAL);
    assert_true(logged("extcount.qcow2"));
    assert_true(logged("more than 64 header extensions"));

    /* One extension longer than QCOW2_MAX_EXT_BYTES, in a 2 MiB header cluster. */
    p = fresh_image("extlen.qcow2", "cluster_size=2M");
    put32(p, 112, 0x12345678);
    put32(p, 116, 65537);
    assert_int_equal(try_open(p, true), -EINVAL);
    assert_true(logged("more than the limit of 65536"));

    /* A backing file name of 1024 bytes, inside the header cluster. */
    p = fresh_image("backlen.qcow2", NULL);
    put64(p, 8, 4096);
    put32(p, 16, 1024);
    assert_int_equal(try_open(p, true), -EINVAL);
    assert_true(logged("too long"));

    /*
     * A dirty image with more clusters in its file than the repair limit
     * (2^23; here 512-byte clusters and a sparse 4 GiB file): refused
     * read-write before anything is allocated, readable read-only.
     */
    p = bt_path("bigdirty.qcow2");
    assert_int_equal(
        bt_sh("qemu-img create -q -f qcow2 -o lazy_refcounts=on,cluster_size=512 "
              "'%s' 4M && (qemu-io -f qcow2 -c 'write -P 1 0 64k' -c abort '%s'; true)",
              p, p),
        0);
    assert_int_equal(get64(p, 72) & 1, 1);
    assert_int_equal(truncate(p, (off_t)((1ull << 23) * 512 + 512)), 0);
    assert_int_equal(try_open(p, false), -EFBIG);
    assert_true(logged("more than the 8388608 krunkit repairs"));
    assert_int_equal(try_open(p, true), 0);
    assert_int_equal(truncate(p, 0), 0);

    /*
     * A chain of images each just under the per-image L1 limit (32 MiB,
     * sparse): the chain's metadata budget (256 MiB) refuses it.
     */
    assert_int_equal(bt_sh("cd '%s' && qemu-img create -q -f qcow2 m0.qcow2 1M && for i in "
                           "$(seq 1 7); do qemu-img create -q -f qcow2 -F qcow2 -b "
                           "m$((i-1)).qcow2 m$i.qcow2; done",
                           bt_dir),
                     0);
    for (int i = 0; i <= 7; i++) {
        char name[32];
        snprintf(name, sizeof(name), "m%d.qcow2", i);
        p = bt_path(name);
        put32(p, 36, 4u << 20);
        assert_int_equal(truncate(p, (off_t)(get64(p, 40) + (32ull << 20))), 0);
    }
    assert_int_equal(try_open(bt_path("m2.qcow2"), true), 0);
    assert_int_equal(try_open(bt_path("m7.qcow2"), true), -EFBIG);
    assert_true(logged("for a whole chain"));
    for (int i = 0; i <= 7; i++) {
        char name[32];
        snprintf(name, sizeof(name), "m%d.qcow2", i);
        assert_int_equal(truncate(bt_path(name), 0), 0);
    }
}

/*
 * A long vector (more iovecs than are sliced directly) over a 3 MiB
 * contiguous run goes through the bounded bounce buffer in chunks and
 * reads back the right bytes.
 */
static void long_vectors_read_in_chunks(void **state)
{
    (void)state;
    struct blk_image *img;
    const char *p = bt_path("bounce.qcow2");
    assert_int_equal(bt_sh("qemu-img create -q -f qcow2 '%s' 8M && qemu-io -f qcow2 -c "
                           "'write -P 0x5a 0 4M' '%s'",
                           p, p),
                     0);
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, true, NULL, &img), 0);
    enum { N = 128, PIECE = 24 * 1024 };
    uint8_t *buf = malloc((size_t)N * PIECE);
    struct iovec v[N];
    for (int i = 0; i < N; i++)
        v[i] = (struct iovec){buf + (size_t)i * PIECE, PIECE};
    memset(buf, 0, (size_t)N * PIECE);
    assert_int_equal(blk_preadv(img, v, N, 512), 0);
    for (size_t i = 0; i < (size_t)N * PIECE; i++)
        if (buf[i] != 0x5a)
            fail_msg("byte %zu reads %#x", i, buf[i]);
    blk_close(img);
    free(buf);
}

/*
 * A discard over more scattered clusters than the deferred-free list holds
 * (65536 runs): the list is flushed on the way instead of growing, and the
 * image stays consistent. Written in reverse so the freed host clusters
 * are not adjacent (adjacent ones merge into one run).
 */
static void long_discards_flush_on_the_way(void **state)
{
    (void)state;
    struct blk_image *img;
    enum { N = 70000 };
    const char *p = bt_path("scatter.qcow2");
    assert_int_equal(
        bt_sh("qemu-img create -q -f qcow2 -o cluster_size=512 '%s' %u", p, 2 * N * 512), 0);
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, false, NULL, &img), 0);
    for (int i = N - 1; i >= 0; i--)
        assert_int_equal(write_at(img, (uint64_t)i * 2 * 512, 512), 0);
    assert_int_equal(blk_flush(img), 0);
    assert_int_equal(blk_discard(img, 0, (uint64_t)2 * N * 512), 0);
    assert_int_equal(blk_flush(img), 0);
    blk_close(img);
    assert_int_equal(bt_qemu_check(p), 0);
}

int main(void)
{
    int skip = bt_qemu_or_skip("test_qcow2_hostile");
    if (skip >= 0)
        return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(truncated_files_are_refused),
        cmocka_unit_test(bad_header_fields_are_refused),
        cmocka_unit_test(bad_tables_are_refused),
        cmocka_unit_test(features_are_checked),
        cmocka_unit_test(bad_pointers_fail_only_their_requests),
        cmocka_unit_test(bad_compressed_data_fails_the_read),
        cmocka_unit_test(backing_loops_are_refused),
        cmocka_unit_test(refcount_underflow_is_contained),
        cmocka_unit_test(metadata_limits_are_refused),
        cmocka_unit_test(long_vectors_read_in_chunks),
        cmocka_unit_test(long_discards_flush_on_the_way),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
