/* util/unix_socket: addresses, connections, and listening sockets made safely at a path. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/unix_socket.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_unix_socket.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/s.sock", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A socket file nobody listens on, as a crashed krunkit leaves it. */
static void make_stale(const char *p)
{
    struct unix_listener l;
    assert_int_equal(unix_listen(p, 1, &l), 0);
    close(l.fd);
    free(l.path);
}

static void test_listen_is_0600_under_umask_0(void **state)
{
    (void)state;
    mode_t old = umask(0);
    struct unix_listener l;
    int rc = unix_listen(path, 4, &l);
    umask(old);
    assert_int_equal(rc, 0);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    /* A client gets through, and the name goes at close. */
    int c = unix_connect(path, SOCK_STREAM, NULL);
    assert_true(c >= 0);
    close(c);
    unix_listener_close(&l);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_stale_replaced_live_refused(void **state)
{
    (void)state;
    make_stale(path);
    struct unix_listener l, second;
    assert_int_equal(unix_listen(path, 4, &l), 0);
    assert_int_equal(unix_listen(path, 4, &second), -EADDRINUSE);
    assert_string_equal(unix_listen_problem(-EADDRINUSE), "another process listens there");
    unix_listener_close(&l);
}

static void test_not_a_socket_or_a_link_refused(void **state)
{
    (void)state;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    struct unix_listener l;
    assert_int_equal(unix_listen(path, 4, &l), -EEXIST);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode)); /* untouched */
    unlink(path);
    /* A link to a stale socket: the link is not ours to replace. */
    char target[160];
    snprintf(target, sizeof(target), "%s/real.sock", dir);
    make_stale(target);
    assert_int_equal(symlink(target, path), 0);
    assert_int_equal(unix_listen(path, 4, &l), -EEXIST);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(lstat(target, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
}

static void test_other_users_socket_refused(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip(); /* only root can make another user's file; CI and the lab run as root */
    make_stale(path);
    assert_int_equal(chown(path, 4242, 4242), 0);
    struct unix_listener l;
    assert_int_equal(unix_listen(path, 4, &l), -EPERM);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_uid, 4242);
}

static void test_close_removes_only_ours(void **state)
{
    (void)state;
    struct unix_listener l;
    assert_int_equal(unix_listen(path, 4, &l), 0);
    /* Someone replaced the name meanwhile: theirs stays. */
    assert_int_equal(unlink(path), 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    unix_listener_close(&l);
    assert_int_equal(access(path, F_OK), 0);
}

static void test_connect_and_addr_errors(void **state)
{
    (void)state;
    assert_int_equal(unix_connect(path, SOCK_STREAM, NULL), -ENOENT);
    char longp[200];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = 0;
    struct sockaddr_un sa;
    assert_int_equal(unix_addr(longp, &sa), -ENAMETOOLONG);
    assert_int_equal(unix_addr("", &sa), -EINVAL);
    assert_int_equal(unix_connect(longp, SOCK_STREAM, NULL), -ENAMETOOLONG);
    struct unix_listener l;
    assert_int_equal(unix_listen(longp, 4, &l), -ENAMETOOLONG);
    make_stale(path);
    assert_int_equal(unix_connect(path, SOCK_STREAM | SOCK_NONBLOCK, NULL), -ECONNREFUSED);
}

/* A datagram client binds its own name first, then connects its socket to the peer's path. */
static void test_connect_fd_datagram(void **state)
{
    (void)state;
    int peer = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa;
    assert_int_equal(unix_addr(path, &sa), 0);
    assert_int_equal(bind(peer, (struct sockaddr *)&sa, sizeof(sa)), 0);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(peer >= 0 && fd >= 0);
    assert_int_equal(unix_connect_fd(fd, path), 0);
    assert_int_equal(send(fd, "x", 1, 0), 1);
    char c = 0;
    assert_int_equal(recv(peer, &c, 1, 0), 1);
    assert_int_equal(c, 'x');
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/none.sock", dir);
    assert_int_equal(unix_connect_fd(fd, missing), -ENOENT);
    char longp[200];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = 0;
    assert_int_equal(unix_connect_fd(fd, longp), -ENAMETOOLONG);
    close(fd);
    close(peer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_listen_is_0600_under_umask_0, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_replaced_live_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_socket_or_a_link_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_users_socket_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_removes_only_ours, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_and_addr_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_fd_datagram, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
