/*
 * Image locking against ourselves and against QEMU: a writer excludes every
 * other user that needs consistent data (QEMU's default permissions), readers
 * share, backing files are held read-only, and QEMU's tools see our locks as
 * we see theirs.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "../block/block_test_util.h"
#include "core/log.h"

static int group_setup(void **state)
{
    (void)state;
    if (!bt_have_qemu_img())
        return -1;
    log_init(LOG_OFF, -1); /* the refusals below are expected */
    return bt_make_dir();
}

static int group_teardown(void **state)
{
    (void)state;
    log_init(LOG_INFO, -1);
    bt_remove_dir();
    return 0;
}

static const char *image(const char *name)
{
    const char *p = bt_path(name);
    assert_int_equal(bt_sh("rm -f '%s' && qemu-img create -q -f qcow2 '%s' 1M", p, p), 0);
    return p;
}

static void writers_exclude_everyone(void **state)
{
    (void)state;
    const char *p = image("a.qcow2");
    struct blk_image *w, *other;

    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, false, NULL, &w), 0);
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, false, NULL, &other), -EBUSY);
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, true, NULL, &other), -EBUSY);
    assert_int_equal(blk_open(p, BLK_FMT_RAW, true, NULL, &other), -EBUSY);
    blk_close(w);
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, false, NULL, &w), 0);
    blk_close(w);
}

static void readers_share(void **state)
{
    (void)state;
    const char *p = image("b.qcow2");
    struct blk_image *r1, *r2, *w;

    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, true, NULL, &r1), 0);
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, true, NULL, &r2), 0);
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, false, NULL, &w), -EBUSY);
    blk_close(r1);
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, false, NULL, &w), -EBUSY);
    blk_close(r2);
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, false, NULL, &w), 0);
    blk_close(w);
}

/* QEMU's tools see our locks. */
static void qemu_tools_respect_our_locks(void **state)
{
    (void)state;
    const char *p = image("c.qcow2");
    struct blk_image *img;

    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, false, NULL, &img), 0);
    assert_int_not_equal(bt_sh("qemu-img info '%s'", p), 0);
    assert_int_not_equal(bt_sh("qemu-io -f qcow2 -c 'write 0 512' '%s'", p), 0);
    assert_int_equal(bt_sh("qemu-img info -U '%s'", p), 0);
    blk_close(img);

    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, true, NULL, &img), 0);
    assert_int_equal(bt_sh("qemu-img info '%s'", p), 0);
    assert_int_not_equal(bt_sh("qemu-io -f qcow2 -c 'write 0 512' '%s'", p), 0);
    blk_close(img);
    assert_int_equal(bt_sh("qemu-io -f qcow2 -c 'write 0 512' '%s'", p), 0);
}

/* Runs qemu-io on path until its stdin closes; returns the pid and the pipe to close. */
static pid_t hold_with_qemu_io(const char *path, bool readonly, int *stdin_fd)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[0], 0);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        close(fds[1]);
        if (readonly)
            execlp("qemu-io", "qemu-io", "-r", "-f", "qcow2", path, (char *)NULL);
        else
            execlp("qemu-io", "qemu-io", "-f", "qcow2", path, (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    *stdin_fd = fds[1];
    /* Wait until its consistent-read lock byte (100) is held. */
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    for (int i = 0; i < 500; i++) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 1};
        assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
        if (fl.l_type != F_UNLCK)
            break;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    close(fd);
    return pid;
}

static void release(pid_t pid, int stdin_fd)
{
    int st;
    close(stdin_fd); /* qemu-io quits at end of input */
    assert_int_equal(waitpid(pid, &st, 0), pid);
}

static void qemu_locks_are_respected(void **state)
{
    (void)state;
    const char *p = image("d.qcow2");
    struct blk_image *img;
    int in;

    pid_t pid = hold_with_qemu_io(p, false, &in);
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, false, NULL, &img), -EBUSY);
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, true, NULL, &img), -EBUSY);
    release(pid, in);

    pid = hold_with_qemu_io(p, true, &in);
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, false, NULL, &img), -EBUSY);
    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, true, NULL, &img), 0);
    blk_close(img);
    release(pid, in);

    assert_int_equal(blk_open(p, BLK_FMT_QCOW2, false, NULL, &img), 0);
    blk_close(img);
}

static void backing_files_are_held_read_only(void **state)
{
    (void)state;
    const char *base = image("base.qcow2");
    const char *top = bt_path("top.qcow2");
    struct blk_image *img, *b;

    assert_int_equal(bt_sh("cd '%s' && qemu-img create -q -f qcow2 -F qcow2 -b base.qcow2 "
                           "top.qcow2",
                           bt_dir),
                     0);
    assert_int_equal(blk_open(top, BLK_FMT_QCOW2, false, NULL, &img), 0);
    assert_int_equal(blk_open(base, BLK_FMT_QCOW2, true, NULL, &b), 0); /* readers share */
    blk_close(b);
    assert_int_equal(blk_open(base, BLK_FMT_QCOW2, false, NULL, &b), -EBUSY);
    assert_int_not_equal(bt_sh("qemu-io -f qcow2 -c 'write 0 512' '%s'", base), 0);
    assert_int_equal(bt_sh("qemu-img info '%s'", base), 0);
    /* The backing file itself was opened read-only. */
    int fd = open(base, O_RDONLY);
    assert_true(fd >= 0);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 101, .l_len = 1};
    assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
    assert_int_equal(fl.l_type, F_UNLCK); /* nobody holds "write" on it */
    close(fd);
    blk_close(img);
}

int main(void)
{
    int skip = bt_qemu_or_skip("test_block_lock");
    if (skip >= 0)
        return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writers_exclude_everyone),
        cmocka_unit_test(readers_share),
        cmocka_unit_test(qemu_tools_respect_our_locks),
        cmocka_unit_test(qemu_locks_are_respected),
        cmocka_unit_test(backing_files_are_held_read_only),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
