/*
 * Backing files named by a qcow2 image: the image is untrusted, so the
 * files it names must not reach outside the directory of the image naming
 * them (absolute names, "..", symlinks leaving it), must be regular files
 * (a FIFO must not hang the open, a directory or device is refused), and
 * must have a recorded format (nothing is probed). allowBackingOutside
 * (blk_open_opts.allow_backing_outside) lifts only the first rule. The
 * same refusals are checked again with openat2 made unavailable by a
 * seccomp filter, where the block layer walks names itself.
 */
#include <endian.h>
#include <seccomp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "../block/block_test_util.h"
#include "core/log.h"

static int log_fd = -1;
static char img_dir[512]; /* the images' directory, inside bt_dir */

/* The images every test uses; built once with qemu-img. */
static int group_setup(void **state)
{
    (void)state;
    if (bt_make_dir() < 0)
        return -1;
    snprintf(img_dir, sizeof(img_dir), "%s/img", bt_dir);
    log_fd = open(bt_path("log"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    log_init(LOG_ERROR, log_fd);
    if (log_fd < 0)
        return -1;
    return bt_sh(
        "set -e; cd '%s'; mkdir -p img/layers img/sub; "
        "printf 'SECRET-KEY-MATERIAL' > secret.raw; truncate -s 1M secret.raw; "
        "cd img; "
        "printf 'BASE' > base.raw; truncate -s 1M base.raw; "
        "q() { qemu-img create -q -f qcow2 \"$@\"; }; "
        "q -F raw -b '%s/secret.raw' abs.qcow2 1M; "
        "q -F raw -b ../secret.raw -u dotdot.qcow2 1M; "
        "q -F raw -b sub/../../secret.raw -u dotdot2.qcow2 1M; "
        "q -F raw -b sub/../base.raw -u dotinside.qcow2 1M; "
        "ln -s ../secret.raw leak.raw; q -F raw -b leak.raw -u symlink.qcow2 1M; "
        "ln -s '%s/secret.raw' leakabs.raw; q -F raw -b leakabs.raw -u symlinkabs.qcow2 1M; "
        "ln -s base.raw alias.raw; q -F raw -b alias.raw -u alias.qcow2 1M; "
        "mkfifo fifo; q -F raw -b fifo -u fifo.qcow2 1M; "
        "q -F raw -b sub -u dir.qcow2 1M; "
        "q -F raw -b /dev/null -u dev.qcow2 1M; "
        "q -F raw -b /proc/self/root/etc/hostname -u magic.qcow2 1M; "
        "printf 'LAYER' > layers/base.raw; truncate -s 1M layers/base.raw; "
        "q -F raw -b base.raw layers/mid.qcow2; "
        "q -F qcow2 -b layers/mid.qcow2 nested.qcow2; "
        "q -F raw -b ../../secret.raw -u layers/escape.qcow2 1M; "
        "q -F qcow2 -b layers/escape.qcow2 -u nested_escape.qcow2 1M; "
        "q -F raw -b base.raw noformat.qcow2",
        bt_dir, bt_dir, bt_dir);
}

static int group_teardown(void **state)
{
    (void)state;
    log_init(LOG_INFO, -1);
    close(log_fd);
    bt_remove_dir();
    return 0;
}

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

static const char *in_img(const char *name)
{
    static char bufs[4][600];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, 600, "%s/%s", img_dir, name);
    return b;
}

/* Opens img/<name> read-only; on success checks the first bytes read as `expect`. */
static int try_open(const char *name, bool allow, const char *expect)
{
    struct blk_open_opts opts = {.allow_backing_outside = allow};
    struct blk_image *img = NULL;

    assert_int_equal(ftruncate(log_fd, 0), 0);
    lseek(log_fd, 0, SEEK_SET);
    int r = blk_open(in_img(name), BLK_FMT_QCOW2, true, &opts, &img);
    if (r < 0) {
        assert_null(img);
        return r;
    }
    if (expect) {
        char buf[64] = "";
        struct iovec v = {buf, sizeof(buf) - 1};
        assert_int_equal(blk_preadv(img, &v, 1, 0), 0);
        assert_memory_equal(buf, expect, strlen(expect));
    }
    blk_close(img);
    return r;
}

static void outside_names_are_refused(void **state)
{
    (void)state;
    assert_int_equal(try_open("abs.qcow2", false, NULL), -EACCES);
    assert_true(logged("abs.qcow2"));
    assert_true(logged("secret.raw"));
    assert_true(logged("allowBackingOutside=true"));
    assert_int_equal(try_open("dotdot.qcow2", false, NULL), -EACCES);
    assert_true(logged("\"../secret.raw\""));
    assert_int_equal(try_open("dotdot2.qcow2", false, NULL), -EACCES);
    /* A symlink inside the directory that points out of it. */
    assert_int_equal(try_open("symlink.qcow2", false, NULL), -EACCES);
    assert_true(logged("leak.raw"));
    assert_int_equal(try_open("symlinkabs.qcow2", false, NULL), -EACCES);
    assert_int_equal(try_open("magic.qcow2", false, NULL), -EACCES);
    /* A backing file inside whose own backing file leaves its directory. */
    assert_int_equal(try_open("nested_escape.qcow2", false, NULL), -EACCES);
    assert_true(logged("escape.qcow2"));
}

static void outside_names_allowed_by_option(void **state)
{
    (void)state;
    assert_int_equal(try_open("abs.qcow2", true, "SECRET"), 0);
    assert_int_equal(try_open("dotdot.qcow2", true, "SECRET"), 0);
    assert_int_equal(try_open("symlink.qcow2", true, "SECRET"), 0);
    assert_int_equal(try_open("nested_escape.qcow2", true, "SECRET"), 0);
}

static void special_files_are_refused(void **state)
{
    (void)state;
    /* A FIFO must not hang the open: the alarm ends a test that would. */
    alarm(10);
    for (int allow = 0; allow <= 1; allow++) {
        assert_int_equal(try_open("fifo.qcow2", allow, NULL), -EINVAL);
        assert_true(logged("a FIFO, not a regular file"));
    }
    alarm(0);
    assert_int_equal(try_open("dir.qcow2", false, NULL), -EINVAL);
    assert_true(logged("a directory"));
    assert_int_equal(try_open("dir.qcow2", true, NULL), -EINVAL);
    /* A device: outside the directory, and refused even where allowed. */
    assert_int_equal(try_open("dev.qcow2", false, NULL), -EACCES);
    assert_int_equal(try_open("dev.qcow2", true, NULL), -EINVAL);
    assert_true(logged("a character device"));
}

static void unrecorded_format_is_refused(void **state)
{
    (void)state;
    const char *p = in_img("noformat.qcow2");
    /* Turn the backing format extension into an unknown one (skipped by readers). */
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    uint8_t hdr[4096];
    assert_int_equal(pread(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
    bool found = false;
    for (size_t i = 104; i + 4 <= sizeof(hdr); i += 8) {
        uint32_t type;
        memcpy(&type, hdr + i, 4);
        if (be32toh(type) == 0xe2792acau) {
            uint32_t other = htobe32(0x12345678u);
            assert_int_equal(pwrite(fd, &other, 4, (off_t)i), 4);
            found = true;
            break;
        }
    }
    close(fd);
    assert_true(found);
    for (int allow = 0; allow <= 1; allow++) {
        assert_int_equal(try_open("noformat.qcow2", allow, NULL), -EINVAL);
        assert_true(logged("noformat.qcow2"));
        assert_true(logged("\"base.raw\" has no recorded format"));
    }
}

static void chains_inside_work(void **state)
{
    (void)state;
    assert_int_equal(try_open("nested.qcow2", false, "LAYER"), 0);
    /* A symlink that stays inside is followed (openat2 RESOLVE_BENEATH). */
    assert_int_equal(try_open("alias.qcow2", false, "BASE"), 0);
    /* ".." that stays inside the directory is fine too. */
    assert_int_equal(try_open("dotinside.qcow2", false, "BASE"), 0);
    /* A read-write top image: backing files stay read-only. */
    struct blk_image *img;
    assert_int_equal(blk_open(in_img("nested.qcow2"), BLK_FMT_QCOW2, false, NULL, &img), 0);
    char buf[4096];
    memset(buf, 'W', sizeof(buf));
    struct iovec v = {buf, sizeof(buf)};
    assert_int_equal(blk_pwritev(img, &v, 1, 65536), 0);
    blk_close(img);
    int fd = open(in_img("layers/base.raw"), O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, sizeof(buf), 65536), (ssize_t)sizeof(buf));
    close(fd);
    assert_int_equal(buf[0], 0); /* the write went to the top image */
}

/*
 * Without openat2 (ENOSYS from a seccomp filter, as on old kernels): the
 * refusals hold, and every symlink is refused, even one staying inside.
 */
static void refusals_hold_without_openat2(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0) < 0 ||
            seccomp_load(ctx) < 0)
            _exit(2);
        alarm(10);
        int bad = 0;
        bad |= (try_open("abs.qcow2", false, NULL) != -EACCES) << 0;
        bad |= (try_open("dotdot.qcow2", false, NULL) != -EACCES) << 1;
        bad |= (try_open("dotdot2.qcow2", false, NULL) != -EACCES) << 2;
        bad |= (try_open("symlink.qcow2", false, NULL) != -EACCES) << 3;
        bad |= (try_open("alias.qcow2", false, NULL) != -EACCES) << 4;
        bad |= (try_open("fifo.qcow2", false, NULL) != -EINVAL) << 5;
        bad |= (try_open("nested_escape.qcow2", false, NULL) != -EACCES) << 6;
        bad |= (try_open("nested.qcow2", false, "LAYER") != 0) << 7;
        bad |= (try_open("abs.qcow2", true, "SECRET") != 0) << 8;
        if (bad)
            fprintf(stderr, "without openat2, failed checks: 0x%x\n", bad);
        _exit(bad ? 1 : 0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
    int skip = bt_qemu_or_skip("test_block_chain");
    if (skip >= 0)
        return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(outside_names_are_refused),
        cmocka_unit_test(outside_names_allowed_by_option),
        cmocka_unit_test(special_files_are_refused),
        cmocka_unit_test(unrecorded_format_is_refused),
        cmocka_unit_test(chains_inside_work),
        cmocka_unit_test(refusals_hold_without_openat2),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
