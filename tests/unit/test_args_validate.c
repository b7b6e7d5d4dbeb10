/*
 * cli_validate: the pre-boot checks against a real temporary directory,
 * each failure case by case, and proof that validation creates nothing.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/args.h"
#include "core/config.h"
#include "support/test_util.h"

static char dir[64];
static char err[512];
static int dgram_fd = -1;

static void touch(const char *name, const char *content)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/krunkit-validate-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    touch("disk.raw", "disk");
    touch("kernel", "bzImage");
    touch("initrd", "cpio");
    touch("vars", "efivars");
    touch("fw.fd", "firmware");
    touch("file.txt", "x");
    char p[256];
    snprintf(p, sizeof(p), "%s/shared", dir);
    mkdir(p, 0755);
    /* A listening peer socket, as gvproxy would leave it. */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/net.sock", dir);
    dgram_fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (dgram_fd < 0 || bind(dgram_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    close(dgram_fd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* printf into one of a few rotating buffers; %s placeholders get dir. */
static const char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *P(const char *fmt, ...)
{
    static char bufs[16][400];
    static unsigned next;
    char *b = bufs[next++ % 16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof(bufs[0]), fmt, ap);
    va_end(ap);
    return b;
}

static int count_entries(void)
{
    int n = dir_entry_count(dir);
    assert_true(n >= 0);
    return n;
}

static int validate_argv(const char **argv)
{
    struct vm_config cfg;
    enum cli_action act;
    int argc = 0;
    while (argv[argc])
        argc++;
    if (cli_parse(argc, (char **)argv, &cfg, &act, err, sizeof(err)) < 0)
        fail_msg("parse failed: %s", err);
    memset(err, 0, sizeof(err));
    int r = cli_validate(&cfg, err, sizeof(err));
    vm_config_free(&cfg);
    return r;
}

#define VALIDATE(...)                                                                              \
    validate_argv((const char *[]){"krunkit", "-c", "1", "-m", "64", __VA_ARGS__, NULL})

static void expect_fail(int r, int want_errno, const char *needle1, const char *needle2)
{
    if (r != -want_errno)
        fail_msg("expected -%d, got %d (error \"%s\")", want_errno, r, err);
    if (needle1 && !strstr(err, needle1))
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle1);
    if (needle2 && !strstr(err, needle2))
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle2);
}

static void test_everything_valid_creates_nothing(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char fdarg[64];
    snprintf(fdarg, sizeof(fdarg), "virtio-net,type=unixstream,fd=%d", sv[0]);
    int before = count_entries();
    int r = VALIDATE(
        "--bootloader", P("efi,variable-store=%s/new-vars,create", dir), "--firmware-path",
        P("%s/fw.fd", dir), "--device", P("virtio-blk,path=%s/disk.raw", dir), "--device",
        P("virtio-blk,path=%s/disk.raw,readonly", dir), "--device",
        P("virtio-fs,sharedDir=%s/shared,mountTag=t", dir), "--device",
        P("virtio-net,unixSocketPath=%s/net.sock,mac=5a:94:ef:e4:0c:ee", dir), "--device",
        P("virtio-net,type=unixgram,path=%s/net.sock", dir), "--device", fdarg, "--device",
        "virtio-net,nat", "--device", P("virtio-vsock,port=1,socketURL=%s/v.sock,connect", dir),
        "--device", P("virtio-vsock,port=2,socketURL=%s/nodir/v.sock,listen", dir), "--device",
        P("virtio-serial,logFilePath=%s/console.log", dir), "--device", "virtio-serial,stdio",
        "--device", "virtio-rng", "--pidfile", P("%s/vm.pid", dir), "--log-file",
        P("%s/vm.log", dir), "--restful-uri", P("unix://%s/rest.sock", dir));
    if (r)
        fail_msg("unexpected failure: %s", err);
    assert_int_equal(count_entries(), before);
    close(sv[0]);
    close(sv[1]);

    r = VALIDATE("--kernel", P("%s/kernel", dir), "--initrd", P("%s/initrd", dir));
    assert_int_equal(r, 0);
    r = VALIDATE("--bootloader", P("efi,variable-store=%s/vars", dir));
    assert_int_equal(r, 0);
    /* Existing files that start would open for appending or truncate. */
    r = VALIDATE("--pidfile", P("%s/file.txt", dir), "--log-file", P("%s/file.txt", dir));
    assert_int_equal(r, 0);
    assert_int_equal(count_entries(), before);
}

static void test_blk(void **state)
{
    (void)state;
    expect_fail(VALIDATE("--device", P("virtio-blk,path=%s/missing.raw", dir)), ENOENT,
                "--device virtio-blk path", "missing.raw");
    expect_fail(VALIDATE("--device", P("virtio-blk,path=%s/missing.raw,readonly", dir)), ENOENT,
                "cannot open for reading", "No such file");
    expect_fail(VALIDATE("--device", P("virtio-blk,path=%s/shared", dir)), EISDIR,
                "cannot open read-write", "shared");
    expect_fail(VALIDATE("--device", P("virtio-blk,path=%s/shared,readonly", dir)), EINVAL,
                "not a regular file", "shared");
    if (geteuid() != 0) {
        /* Root opens any file read-write, so this only means something for users. */
        char p[256];
        snprintf(p, sizeof(p), "%s/disk.raw", dir);
        chmod(p, 0444);
        expect_fail(VALIDATE("--device", P("virtio-blk,path=%s", p)), EACCES, "read-write", p);
        assert_int_equal(VALIDATE("--device", P("virtio-blk,path=%s,readonly", p)), 0);
    }
}

static void test_fs(void **state)
{
    (void)state;
    expect_fail(VALIDATE("--device", P("virtio-fs,sharedDir=%s/nope,mountTag=t", dir)), ENOENT,
                "--device virtio-fs sharedDir", "nope");
    expect_fail(VALIDATE("--device", P("virtio-fs,sharedDir=%s/file.txt,mountTag=t", dir)), ENOTDIR,
                "not a directory", "file.txt");
}

static void test_net(void **state)
{
    (void)state;
    /* usage.md's examples use the broadcast address: valid syntax, refused before boot. */
    expect_fail(VALIDATE("--device", P("virtio-net,type=unixgram,path=%s/net.sock,"
                                       "mac=ff:ff:ff:ff:ff:ff",
                                       dir)),
                EINVAL, "mac=ff:ff:ff:ff:ff:ff", "multicast");
    expect_fail(VALIDATE("--device", P("virtio-net,unixSocketPath=%s/net.sock,"
                                       "mac=01:00:5e:00:00:01",
                                       dir)),
                EINVAL, "mac=01:00:5e:00:00:01", "multicast");
    expect_fail(VALIDATE("--device", "virtio-net,nat,mac=00:00:00:00:00:00"), EINVAL,
                "mac=00:00:00:00:00:00", "all-zero");
    expect_fail(VALIDATE("--device", P("virtio-net,unixSocketPath=%s/gone.sock", dir)), ENOENT,
                "unixSocketPath=", "gone.sock");
    expect_fail(VALIDATE("--device", P("virtio-net,type=unixstream,path=%s/file.txt", dir)),
                ENOTSOCK, "path=", "not a socket");

    /* Inherited fds: closed, or open but not a socket. */
    int fd = open("/dev/null", O_RDONLY);
    assert_true(fd >= 0);
    char arg[64];
    snprintf(arg, sizeof(arg), "virtio-net,type=unixgram,fd=%d", fd);
    expect_fail(VALIDATE("--device", arg), ENOTSOCK, arg + 25, "not a socket");
    close(fd);
    expect_fail(VALIDATE("--device", arg), EBADF, arg + 25, "not an open file descriptor");
    snprintf(arg, sizeof(arg), "virtio-net,fd=%d", fd);
    expect_fail(VALIDATE("--device", arg), EBADF, "fd=", "not an open file descriptor");
}

static void test_boot_files(void **state)
{
    (void)state;
    expect_fail(VALIDATE("--bootloader", P("linux,kernel=%s/nokernel", dir)), ENOENT, "kernel",
                "nokernel");
    expect_fail(VALIDATE("--kernel", P("%s/kernel", dir), "--initrd", P("%s/noinitrd", dir)),
                ENOENT, "initrd", "noinitrd");
    expect_fail(VALIDATE("--kernel", P("%s/shared", dir)), EINVAL, "kernel", "not a regular file");
    expect_fail(VALIDATE("--bootloader", P("efi,variable-store=%s/novars", dir)), ENOENT,
                "--bootloader variable-store", "novars");
    expect_fail(VALIDATE("--bootloader", P("efi,variable-store=%s/nodir/vars,create", dir)), ENOENT,
                "--bootloader variable-store", "nodir");
    expect_fail(VALIDATE("--bootloader", P("efi,variable-store=%s/file.txt/vars,create", dir)),
                ENOTDIR, "--bootloader variable-store", "file.txt");
    expect_fail(VALIDATE("-f", P("%s/nofw.fd", dir)), ENOENT, "--firmware-path", "nofw.fd");
}

static void test_created_files_need_their_directory(void **state)
{
    (void)state;
    expect_fail(VALIDATE("--pidfile", P("%s/nodir/vm.pid", dir)), ENOENT, "--pidfile", "nodir");
    expect_fail(VALIDATE("--log-file", P("%s/nodir/vm.log", dir)), ENOENT, "--log-file", "nodir");
    expect_fail(VALIDATE("--pidfile", P("%s/file.txt/vm.pid", dir)), ENOTDIR, "--pidfile",
                "file.txt is not a directory");
    expect_fail(VALIDATE("--log-file", P("%s/shared", dir)), EISDIR, "--log-file", "shared");
    expect_fail(VALIDATE("--restful-uri", P("unix://%s/nodir/rest.sock", dir)), ENOENT,
                "--restful-uri", "nodir");
    expect_fail(VALIDATE("--device", P("virtio-serial,logFilePath=%s/nodir/c.log", dir)), ENOENT,
                "logFilePath", "nodir");
    expect_fail(
        VALIDATE("--device", P("virtio-vsock,port=1,socketURL=%s/nodir/v.sock,connect", dir)),
        ENOENT, "socketURL", "nodir");
}

static void test_sockets_we_bind(void **state)
{
    (void)state;
    /* A stale socket is fine (start replaces it); any other file is not. */
    assert_int_equal(VALIDATE("--restful-uri", P("unix://%s/net.sock", dir)), 0);
    expect_fail(VALIDATE("--restful-uri", P("unix://%s/file.txt", dir)), EEXIST, "--restful-uri",
                "exists and is not a socket");
    expect_fail(VALIDATE("--restful-uri", P("unix://%s/shared", dir)), EEXIST, "--restful-uri",
                "shared");
    expect_fail(VALIDATE("--device", P("virtio-vsock,port=1,socketURL=%s/file.txt,connect", dir)),
                EEXIST, "socketURL", "exists and is not a socket");
    /* listen (the default): the socket belongs to someone else and may appear later. */
    assert_int_equal(VALIDATE("--device", P("virtio-vsock,port=1,socketURL=%s/file.txt", dir)), 0);
}

static void test_memory_above_host(void **state)
{
    (void)state;
    const char *argv[] = {"krunkit", "-c", "1", "-m", "1P", NULL};
    expect_fail(validate_argv(argv), ENOMEM, "--memory 1073741824 MiB", "more than this host has");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_everything_valid_creates_nothing),
        cmocka_unit_test(test_blk),
        cmocka_unit_test(test_fs),
        cmocka_unit_test(test_net),
        cmocka_unit_test(test_boot_files),
        cmocka_unit_test(test_created_files_need_their_directory),
        cmocka_unit_test(test_sockets_we_bind),
        cmocka_unit_test(test_memory_above_host),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
