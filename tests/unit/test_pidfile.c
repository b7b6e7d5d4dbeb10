/*
 * pidfile_write / pidfile_remove against a real temporary directory: mode
 * 0600 whatever the umask, a symbolic link or a planted file at the path is
 * replaced and never written through, other file types are refused, and
 * removal leaves a file that is no longer the one written.
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

#include "cli/pidfile.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/krunkit-pidfile-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/vm.pid", dir);
    return 0;
}

static char target[128];

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    unlink(target);
    return rmdir(dir);
}

/* Files in dir other than the pidfile (a temporary left behind?). */
static int stray_files(void)
{
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "test $(ls -A %s | grep -v -x -e vm.pid -e target | wc -l) -eq 0",
             dir);
    return system(cmd) != 0;
}

static void read_file(char *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, len - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    close(fd);
}

static void test_write_and_remove(void **state)
{
    (void)state;
    char buf[64];
    mode_t old = umask(0);
    assert_int_equal(pidfile_write(path, 1234), 0);
    umask(old);
    assert_false(stray_files());
    read_file(buf, sizeof(buf));
    assert_string_equal(buf, "1234\n");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(pidfile_remove(path), 0);
    assert_int_equal(access(path, F_OK), -1);
    /* Removing what is not there is not an error. */
    assert_int_equal(pidfile_remove(path), 0);
}

static void test_truncates_existing(void **state)
{
    (void)state;
    char buf[64];
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("99999999 stale content\n", f);
    fclose(f);
    assert_int_equal(pidfile_write(path, 7), 0);
    read_file(buf, sizeof(buf));
    assert_string_equal(buf, "7\n");
}

static void test_errors(void **state)
{
    (void)state;
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/no-such-dir/vm.pid", dir);
    assert_int_equal(pidfile_write(missing, 1), -ENOENT);
    assert_int_equal(access(missing, F_OK), -1);
    /* A directory in the way cannot be removed as a pidfile. */
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(pidfile_write(path, 1), -EISDIR);
    /* Not ours: left where it is. */
    assert_int_equal(pidfile_remove(path), 0);
    assert_int_equal(rmdir(path), 0);
    /* Nor is a FIFO (or socket, device) replaced. */
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(pidfile_write(path, 1), -EEXIST);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(unlink(path), 0);
    assert_false(stray_files());
}

/* A link at the path: replaced by our file, its target untouched. */
static void test_symlink_is_not_followed(void **state)
{
    (void)state;
    char buf[64];
    snprintf(target, sizeof(target), "%s/target", dir);
    FILE *f = fopen(target, "w");
    assert_non_null(f);
    fputs("precious\n", f);
    fclose(f);
    assert_int_equal(chmod(target, 0644), 0);
    assert_int_equal(symlink(target, path), 0);
    assert_int_equal(pidfile_write(path, 42), 0);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    read_file(buf, sizeof(buf));
    assert_string_equal(buf, "42\n");
    f = fopen(target, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    assert_string_equal(buf, "precious\n");
    assert_int_equal(stat(target, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    /* A dangling link is no different. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink("/nonexistent/krunkit-pid", path), 0);
    assert_int_equal(pidfile_write(path, 43), 0);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(access("/nonexistent/krunkit-pid", F_OK), -1);
}

/* Removal takes only the file we wrote, not one put there since. */
static void test_remove_only_ours(void **state)
{
    (void)state;
    assert_int_equal(pidfile_write(path, 5), 0);
    assert_int_equal(unlink(path), 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("6\n", f);
    fclose(f);
    assert_int_equal(pidfile_remove(path), 0);
    assert_int_equal(access(path, F_OK), 0);
    /* The same when a link now stands there. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(pidfile_write(path, 7), 0);
    snprintf(target, sizeof(target), "%s/target", dir);
    assert_int_equal(rename(path, target), 0);
    assert_int_equal(symlink(target, path), 0);
    assert_int_equal(pidfile_remove(path), 0);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(access(target, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncates_existing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_is_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_only_ours, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
