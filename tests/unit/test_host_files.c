/*
 * The open-once table (src/vmm/host_files.c): the first open of a path
 * opens it and keeps the descriptor; later opens of that path get a
 * rewound duplicate and never look at the path again (a file swapped for
 * a symlink meanwhile is not followed); after host_files_seal an unknown
 * path is refused with EPERM; host_files_close_all forgets everything.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/host_files.h"

struct dir {
    char path[64];
    char a[128], b[128], c[128]; /* a: the file opened; b: another file; c: never created */
};

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* Read what is left from fd's offset. */
static void read_rest(int fd, char *buf, size_t cap)
{
    ssize_t n = read(fd, buf, cap - 1);
    assert_true(n >= 0);
    buf[n] = 0;
}

static int setup(void **state)
{
    struct dir *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    strcpy(d->path, "/tmp/krunkit-test-host-files-XXXXXX");
    assert_non_null(mkdtemp(d->path));
    snprintf(d->a, sizeof(d->a), "%s/firmware.fd", d->path);
    snprintf(d->b, sizeof(d->b), "%s/user-secret", d->path);
    snprintf(d->c, sizeof(d->c), "%s/never-opened", d->path);
    write_file(d->a, "original firmware");
    write_file(d->b, "user secret");
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    struct dir *d = *state;
    host_files_close_all();
    unlink(d->a);
    unlink(d->b);
    unlink(d->c);
    assert_int_equal(rmdir(d->path), 0);
    free(d);
    return 0;
}

static void test_reopen_after_symlink_swap(void **state)
{
    struct dir *d = *state;
    int fd1 = host_file_open(d->a, O_RDONLY);
    assert_true(fd1 >= 0);
    assert_true(fcntl(fd1, F_GETFD) & FD_CLOEXEC);
    char buf[64];
    read_rest(fd1, buf, sizeof(buf));
    assert_string_equal(buf, "original firmware");
    struct stat st1;
    assert_int_equal(fstat(fd1, &st1), 0);
    close(fd1); /* the caller's copy; the table keeps its own */

    /* Between two boots, the path becomes a symlink to another file. */
    assert_int_equal(unlink(d->a), 0);
    assert_int_equal(symlink(d->b, d->a), 0);

    int fd2 = host_file_open(d->a, O_RDONLY);
    assert_true(fd2 >= 0);
    struct stat st2;
    assert_int_equal(fstat(fd2, &st2), 0);
    assert_int_equal(st2.st_dev, st1.st_dev);
    assert_int_equal(st2.st_ino, st1.st_ino);
    read_rest(fd2, buf, sizeof(buf));
    assert_string_equal(buf, "original firmware");

    /* A third open: a new descriptor again, the original file again. */
    int fd3 = host_file_open(d->a, O_RDONLY);
    assert_true(fd3 >= 0);
    assert_int_not_equal(fd3, fd2);
    read_rest(fd3, buf, sizeof(buf));
    assert_string_equal(buf, "original firmware");
    close(fd2);
    close(fd3);
}

static void test_offset_starts_at_zero(void **state)
{
    struct dir *d = *state;
    int fd1 = host_file_open(d->a, O_RDONLY);
    assert_true(fd1 >= 0);
    assert_int_equal(lseek(fd1, 0, SEEK_CUR), 0);
    char buf[64];
    assert_int_equal(read(fd1, buf, 9), 9); /* "original " */
    close(fd1);
    /* The duplicate shares the kept descriptor's offset: the table rewinds it. */
    int fd2 = host_file_open(d->a, O_RDONLY);
    assert_true(fd2 >= 0);
    assert_int_equal(lseek(fd2, 0, SEEK_CUR), 0);
    read_rest(fd2, buf, sizeof(buf));
    assert_string_equal(buf, "original firmware");
    /* Read to the end, then open again: still from the start. */
    int fd3 = host_file_open(d->a, O_RDONLY);
    assert_true(fd3 >= 0);
    read_rest(fd3, buf, sizeof(buf));
    assert_string_equal(buf, "original firmware");
    close(fd2);
    close(fd3);
}

/* An open of the same path with another access mode is a separate entry. */
static void test_access_mode_is_part_of_the_key(void **state)
{
    struct dir *d = *state;
    int ro = host_file_open(d->a, O_RDONLY);
    assert_true(ro >= 0);
    int rw = host_file_open(d->a, O_RDWR);
    assert_true(rw >= 0);
    assert_int_equal(fcntl(ro, F_GETFL) & O_ACCMODE, O_RDONLY);
    assert_int_equal(fcntl(rw, F_GETFL) & O_ACCMODE, O_RDWR);
    close(ro);
    close(rw);
    host_files_seal();
    /* Both modes were opened before the seal: both still work. */
    ro = host_file_open(d->a, O_RDONLY);
    rw = host_file_open(d->a, O_RDWR);
    assert_true(ro >= 0);
    assert_true(rw >= 0);
    assert_int_equal(fcntl(rw, F_GETFL) & O_ACCMODE, O_RDWR);
    close(ro);
    close(rw);
    /* But a write-only open of that path is new: refused. */
    errno = 0;
    assert_int_equal(host_file_open(d->a, O_WRONLY), -1);
    assert_int_equal(errno, EPERM);
}

static void test_seal(void **state)
{
    struct dir *d = *state;
    int fd = host_file_open(d->a, O_RDONLY);
    assert_true(fd >= 0);
    close(fd);
    /* A failed open is not kept. */
    errno = 0;
    assert_int_equal(host_file_open(d->c, O_RDONLY), -1);
    assert_int_equal(errno, ENOENT);

    host_files_seal();
    /* An unknown path fails with EPERM, even one that exists; nothing is created. */
    errno = 0;
    assert_int_equal(host_file_open(d->b, O_RDONLY), -1);
    assert_int_equal(errno, EPERM);
    errno = 0;
    assert_int_equal(host_file_open(d->c, O_RDWR | O_CREAT), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(access(d->c, F_OK), -1);
    /* A known one still works. */
    fd = host_file_open(d->a, O_RDONLY);
    assert_true(fd >= 0);
    char buf[64];
    read_rest(fd, buf, sizeof(buf));
    assert_string_equal(buf, "original firmware");
    close(fd);
}

static void test_close_all_resets(void **state)
{
    struct dir *d = *state;
    int fd = host_file_open(d->a, O_RDONLY);
    assert_true(fd >= 0);
    close(fd);
    host_files_seal();
    assert_int_equal(unlink(d->a), 0);
    assert_int_equal(symlink(d->b, d->a), 0);

    host_files_close_all();
    /* Unsealed, and nothing kept: the path is opened afresh (now the symlink's target). */
    fd = host_file_open(d->a, O_RDONLY);
    assert_true(fd >= 0);
    char buf[64];
    read_rest(fd, buf, sizeof(buf));
    assert_string_equal(buf, "user secret");
    close(fd);
    fd = host_file_open(d->b, O_RDONLY);
    assert_true(fd >= 0);
    close(fd);
    /* Twice in a row is fine. */
    host_files_close_all();
    host_files_close_all();
    fd = host_file_open(d->b, O_RDONLY);
    assert_true(fd >= 0);
    close(fd);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_reopen_after_symlink_swap),
        T(test_offset_starts_at_zero),
        T(test_access_mode_is_part_of_the_key),
        T(test_seal),
        T(test_close_all_resets),
    };
    return cmocka_run_group_tests_name("host-files", tests, NULL, NULL);
}
