/*
 * Helpers shared by the block layer's unit tests (header-only, each test
 * binary is one translation unit): scratch directories, running qemu-img
 * (the interoperability oracle), deterministic data, and the random
 * operation sequence checked against an in-memory mirror.
 */
#ifndef KRUNKIT_TESTS_BLOCK_TEST_UTIL_H
#define KRUNKIT_TESTS_BLOCK_TEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block/block.h"

static char bt_dir[256];

static __attribute__((unused)) int bt_make_dir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(bt_dir, sizeof(bt_dir), "%s/krunkit-blk-XXXXXX", base ? base : "/tmp");
    return mkdtemp(bt_dir) ? 0 : -errno;
}

static __attribute__((unused)) void bt_remove_dir(void)
{
    char cmd[512];
    if (!bt_dir[0])
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bt_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", bt_dir);
    bt_dir[0] = '\0';
}

/* A path inside the scratch directory (static buffers, rotating). */
static __attribute__((unused)) const char *bt_path(const char *name)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 512, "%s/%s", bt_dir, name);
    return b;
}

/* Runs a shell command; returns its exit status (or -1). Output goes to
 * `out` when given, else is discarded unless BT_VERBOSE is set. */
static int bt_sh_out(char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static __attribute__((unused)) int bt_sh_out(char *out, size_t outlen, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    cmd[0] = '(';
    vsnprintf(cmd + 1, sizeof(cmd) - 3, fmt, ap);
    va_end(ap);
    strcat(cmd, ")");
    if (getenv("BT_VERBOSE"))
        fprintf(stderr, "+ %s\n", cmd);
    if (!out) {
        if (!getenv("BT_VERBOSE"))
            strncat(cmd, " >/dev/null 2>&1", sizeof(cmd) - strlen(cmd) - 1);
        int st = system(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    if (getenv("BT_VERBOSE"))
        fprintf(stderr, "%s", out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define bt_sh(...) bt_sh_out(NULL, 0, __VA_ARGS__)

static __attribute__((unused)) bool bt_have_qemu_img(void)
{
    return bt_sh("qemu-img --version") == 0 && bt_sh("qemu-io --version") == 0;
}

/*
 * Call first in main(): without qemu-img the test skips (exit 0), unless
 * BT_REQUIRE_QEMU is set (make check-block), where it fails. Returns -1 to
 * run the tests, else the exit status.
 */
static __attribute__((unused)) int bt_qemu_or_skip(const char *test)
{
    if (bt_have_qemu_img())
        return -1;
    if (getenv("BT_REQUIRE_QEMU")) {
        fprintf(stderr, "%s: qemu-img/qemu-io missing (scripts/deps.sh qemu-utils)\n", test);
        return 1;
    }
    fprintf(stderr,
            "%s: skipped, qemu-img/qemu-io not installed (make check-block installs "
            "them)\n",
            test);
    return 0;
}

/* xorshift64*: reproducible from the seed. */
static __attribute__((unused)) uint64_t bt_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static __attribute__((unused)) void bt_fill(uint8_t *buf, size_t len, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = bt_rand(&s);
        memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
    }
}

static __attribute__((unused)) int bt_write_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -errno;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, (const char *)buf + done, len - done);
        if (n <= 0) {
            close(fd);
            return -EIO;
        }
        done += (size_t)n;
    }
    close(fd);
    return 0;
}

static __attribute__((unused)) uint8_t *bt_read_file(const char *path, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY);
    if (fd < 0 || fstat(fd, &st) < 0)
        return NULL;
    uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    size_t done = 0;
    while (buf && done < (size_t)st.st_size) {
        ssize_t n = pread(fd, buf + done, (size_t)st.st_size - done, (off_t)done);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    close(fd);
    *len = done;
    return buf;
}

/* A raw test image: patterned data with holes and zero runs (sizes in MiB). */
static __attribute__((unused)) uint8_t *bt_make_pattern(size_t len, uint64_t seed)
{
    uint8_t *buf = calloc(1, len);
    uint64_t s = seed + 7;
    if (!buf)
        return NULL;
    for (size_t off = 0; off < len;) {
        size_t run = ((bt_rand(&s) % 64) + 1) * 4096;
        if (run > len - off)
            run = len - off;
        if (bt_rand(&s) % 3)
            bt_fill(buf + off, run, bt_rand(&s));
        off += run + ((bt_rand(&s) % 4) * 65536);
    }
    return buf;
}

/* qemu-img check: 0 only with no corruption and no leaked clusters. */
static __attribute__((unused)) int bt_qemu_check(const char *img)
{
    char out[8192];
    int st = bt_sh_out(out, sizeof(out), "qemu-img check -f qcow2 '%s'", img);
    if (st != 0)
        fprintf(stderr, "qemu-img check %s: status %d\n%s", img, st, out);
    return st;
}

static __attribute__((unused)) int bt_qemu_compare(const char *img, const char *fmt,
                                                   const char *raw)
{
    char out[4096];
    int st = bt_sh_out(out, sizeof(out), "qemu-img compare -f %s -F raw '%s' '%s'", fmt, img, raw);
    if (st != 0)
        fprintf(stderr, "qemu-img compare %s %s: status %d\n%s", img, raw, st, out);
    return st;
}

/* Reads the whole image and compares it with `expect`; returns the first bad offset or -1. */
static __attribute__((unused)) int64_t bt_image_differs(struct blk_image *img,
                                                        const uint8_t *expect, size_t len)
{
    const size_t chunk = 1 << 20;
    uint8_t *buf = malloc(chunk);
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        struct iovec v = {buf, n};
        if (blk_preadv(img, &v, 1, off) != 0) {
            free(buf);
            return (int64_t)off;
        }
        if (memcmp(buf, expect + off, n) != 0) {
            for (size_t i = 0; i < n; i++)
                if (buf[i] != expect[off + i]) {
                    free(buf);
                    return (int64_t)(off + i);
                }
        }
    }
    free(buf);
    return -1;
}

struct bt_ops_stats {
    unsigned writes, reads, zeroes, discards, flushes;
};

/*
 * Runs `nops` random operations (writes of assorted sizes and alignments,
 * read-back checks, write-zeroes, discards, flushes) on img and on the
 * mirror `m` (the image's expected contents). Discarded bytes may read back
 * old or zero; the mirror takes what the image returns after checking that.
 * Returns 0, or -1 after printing the first mismatch.
 */
static __attribute__((unused)) int bt_random_ops(struct blk_image *img, uint8_t *m, uint64_t size,
                                                 uint64_t seed, unsigned nops, uint64_t cluster,
                                                 struct bt_ops_stats *st)
{
    uint64_t s = seed * 2654435761u + 11;
    size_t maxlen = 4 * cluster > (1 << 20) ? 4 * cluster : (1 << 20);
    uint8_t *buf = malloc(maxlen), *rb = malloc(maxlen);
    int ret = -1;

    for (unsigned i = 0; i < nops; i++) {
        unsigned kind = bt_rand(&s) % 20;
        uint64_t len, off;
        switch (bt_rand(&s) % 4) {
        case 0: /* small, sector aligned */
            len = ((bt_rand(&s) % 16) + 1) * 512;
            break;
        case 1: /* whole clusters */
            len = ((bt_rand(&s) % 3) + 1) * cluster;
            break;
        case 2: /* odd bytes */
            len = (bt_rand(&s) % 9000) + 1;
            break;
        default:
            len = (bt_rand(&s) % maxlen) + 1;
        }
        if (len > maxlen)
            len = maxlen;
        if (len > size)
            len = size;
        off = bt_rand(&s) % (size - len + 1);
        if (bt_rand(&s) % 2)
            off &= ~(cluster - 1);
        if (off + len > size)
            off = size - len;
        int r = 0;
        if (kind < 9) {
            bt_fill(buf, len, bt_rand(&s));
            /* split into a few iovecs to exercise slicing */
            struct iovec v[3];
            uint64_t a = len / 3, b = len / 2;
            v[0] = (struct iovec){buf, a};
            v[1] = (struct iovec){buf + a, b - a};
            v[2] = (struct iovec){buf + b, len - b};
            r = blk_pwritev(img, v, 3, off);
            memcpy(m + off, buf, len);
            st->writes++;
        } else if (kind < 14) {
            struct iovec v = {rb, len};
            r = blk_preadv(img, &v, 1, off);
            if (r == 0 && memcmp(rb, m + off, len) != 0) {
                for (uint64_t k = 0; k < len; k++)
                    if (rb[k] != m[off + k]) {
                        fprintf(stderr, "op %u: read mismatch at %llu (seed %llu)\n", i,
                                (unsigned long long)(off + k), (unsigned long long)seed);
                        break;
                    }
                goto out;
            }
            st->reads++;
        } else if (kind < 16) {
            r = blk_write_zeroes(img, off, len, bt_rand(&s) % 2);
            memset(m + off, 0, len);
            st->zeroes++;
        } else if (kind < 18) {
            r = blk_discard(img, off, len);
            if (r == 0) {
                struct iovec v = {rb, len};
                r = blk_preadv(img, &v, 1, off);
                for (uint64_t k = 0; r == 0 && k < len; k++) {
                    if (rb[k] != 0 && rb[k] != m[off + k]) {
                        fprintf(stderr, "op %u: discard made up data at %llu\n", i,
                                (unsigned long long)(off + k));
                        goto out;
                    }
                }
                memcpy(m + off, rb, len);
            }
            st->discards++;
        } else {
            r = blk_flush(img);
            st->flushes++;
        }
        if (r != 0) {
            fprintf(stderr, "op %u (kind %u, off %llu, len %llu) failed: %s\n", i, kind,
                    (unsigned long long)off, (unsigned long long)len, strerror(-r));
            goto out;
        }
    }
    ret = 0;
out:
    free(buf);
    free(rb);
    return ret;
}

#endif
