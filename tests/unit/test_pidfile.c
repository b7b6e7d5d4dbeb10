/* pidfile_write / pidfile_remove against a real temporary directory. */
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

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return rmdir(dir);
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
    mode_t old = umask(022);
    assert_int_equal(pidfile_write(path, 1234), 0);
    umask(old);
    read_file(buf, sizeof(buf));
    assert_string_equal(buf, "1234\n");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0644);
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
    assert_true(pidfile_remove(path) < 0);
    assert_int_equal(rmdir(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncates_existing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
