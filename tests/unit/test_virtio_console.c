/*
 * virtio-console (src/virtio/console.c): guest output appended to a log
 * file, emergency writes, a pty in both directions, and stdio on a
 * terminal (raw while the device lives, restored after). The host side
 * (console_host_open) is the test's, as it is the VM's: opened once, the
 * device borrows it. The log file: created 0600, never through a symlink,
 * capped at logFileMaxSize, removed by a failed start only if this run made it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "support/fake_guest_mem.h"
#include "support/fake_hooks.h"
#include "support/virtio_driver.h"
#include "virtio/devices.h"
#include "virtio/pci.h"

#define RAM_SIZE (2u << 20)
#define HEAP_START 0x10000
#define WAIT_MS 5000
#define RXQ 0
#define TXQ 1

struct fixture {
    struct guest_mem gm;
    struct fake_vm vm;
    struct virtio_dev *dev;
    struct console_host *host;
    struct vdrv drv;
    char log[64];
    uint16_t tx_used, rx_used;
};

static struct fixture *fixture_new(void)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(fake_guest_mem_init(&f->gm, 0, RAM_SIZE), 0);
    assert_int_equal(fake_vm_init(&f->vm, &f->gm), 0);
    return f;
}

static void start(struct fixture *f)
{
    vdrv_init(&f->drv, &f->vm, virtio_pci_function(f->dev), HEAP_START, RAM_SIZE);
    vdrv_enable_msix(&f->drv, 3);
    assert_true(vdrv_negotiate(&f->drv, ~0ull) & VIRTIO_CONFIG_S_FEATURES_OK);
    assert_int_equal(vdrv_setup_queue(&f->drv, RXQ, 16, 1), 1);
    assert_int_equal(vdrv_setup_queue(&f->drv, TXQ, 16, 2), 1);
    vdrv_driver_ok(&f->drv);
}

static void fixture_free(struct fixture *f)
{
    virtio_dev_destroy(f->dev);
    console_host_close(f->host, false);
    fake_vm_destroy(&f->vm);
    fake_guest_mem_free(&f->gm);
    if (f->log[0])
        unlink(f->log);
    free(f);
}

static void guest_write(struct fixture *f, const char *a, const char *b)
{
    struct vdrv *d = &f->drv;
    struct vdrv_buf bufs[2];
    unsigned n = 0;
    for (const char *s = a; s; s = (s == a ? b : NULL)) {
        uint64_t g = vdrv_alloc(d, strlen(s), 1);
        memcpy(vdrv_host(d, g, strlen(s)), s, strlen(s));
        bufs[n++] = (struct vdrv_buf){g, (uint32_t)strlen(s), false};
    }
    vdrv_add_chain(d, TXQ, bufs, n);
    vdrv_kick(d, TXQ);
    assert_true(vdrv_wait_used(d, TXQ, ++f->tx_used, WAIT_MS, NULL));
}

static uint64_t guest_post_rx(struct fixture *f, uint32_t len)
{
    uint64_t g = vdrv_alloc(&f->drv, len, 1);
    struct vdrv_buf b = {g, len, true};
    vdrv_add_chain(&f->drv, RXQ, &b, 1);
    vdrv_kick(&f->drv, RXQ);
    return g;
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    assert_true(n >= 0);
    buf[n] = 0;
    return (size_t)n;
}

static void test_log_file(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    strcpy(f->log, "/tmp/krunkit-test-console-XXXXXX");
    int fd = mkstemp(f->log);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "old\n", 4), 4);
    close(fd);
    struct dev_serial cfg = {.mode = SERIAL_LOGFILE, .log_file_path = f->log};
    assert_int_equal(console_host_open(&cfg, &f->host), 0);
    assert_int_equal(virtio_console_create(&f->vm.m, f->host, &f->dev), 0);
    assert_null(console_host_pty_path(f->host));
    start(f);
    assert_int_equal(pci_config_read(virtio_pci_function(f->dev), PCI_DEVICE_ID, 2), 0x1043);
    /* max_nr_ports */
    assert_int_equal(vdrv_read(&f->drv, VIRTIO_BAR_DEVICE + 4, 4), 1);

    guest_write(f, "hello ", "world\n");
    guest_write(f, "[    0.000000] Linux version\n", NULL);
    /* Emergency write through the configuration space. */
    vdrv_write(&f->drv, VIRTIO_BAR_DEVICE + 8, '!', 4);
    char buf[256];
    read_file(f->log, buf, sizeof(buf));
    assert_string_equal(buf, "old\nhello world\n[    0.000000] Linux version\n!");
    assert_false(vdrv_status(&f->drv) & VIRTIO_CONFIG_S_NEEDS_RESET);
    fixture_free(f);
}

static void test_log_file_unwritable(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct dev_serial cfg = {.mode = SERIAL_LOGFILE, .log_file_path = "/nonexistent/dir/log"};
    f->dev = NULL;
    /* The host side fails to open: no device is made at all. */
    assert_true(console_host_open(&cfg, &f->host) < 0);
    assert_null(f->host);
    assert_null(f->dev);
    assert_int_equal(f->vm.nr_irqfds, 0);
    fake_vm_destroy(&f->vm);
    fake_guest_mem_free(&f->gm);
    free(f);
}

static bool wait_readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

static void test_pty(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct dev_serial cfg = {.mode = SERIAL_PTY};
    assert_int_equal(console_host_open(&cfg, &f->host), 0);
    assert_int_equal(virtio_console_create(&f->vm.m, f->host, &f->dev), 0);
    const char *path = console_host_pty_path(f->host);
    assert_non_null(path);
    assert_memory_equal(path, "/dev/pts/", 9);
    int user = open(path, O_RDWR | O_NOCTTY);
    assert_true(user >= 0);
    start(f);

    /* Output: guest -> pty. */
    guest_write(f, "login: ", NULL);
    assert_true(wait_readable(user, WAIT_MS));
    char buf[64] = {0};
    assert_int_equal(read(user, buf, sizeof(buf)), 7);
    assert_string_equal(buf, "login: ");

    /* Input typed before the guest posted a buffer waits for one. */
    assert_int_equal(write(user, "root\r", 5), 5);
    assert_false(vdrv_wait_used(&f->drv, RXQ, 1, 50, NULL));
    uint64_t g = guest_post_rx(f, 64);
    uint32_t len;
    assert_true(vdrv_wait_used(&f->drv, RXQ, ++f->rx_used, WAIT_MS, &len));
    assert_int_equal(len, 5);
    assert_memory_equal(vdrv_host(&f->drv, g, 5), "root\r", 5);
    assert_int_equal(vdrv_take_irqs(&f->drv, 1, WAIT_MS), 1);

    /* A posted buffer is filled when input arrives. */
    g = guest_post_rx(f, 64);
    assert_int_equal(write(user, "ls\r", 3), 3);
    assert_true(vdrv_wait_used(&f->drv, RXQ, ++f->rx_used, WAIT_MS, &len));
    assert_int_equal(len, 3);
    assert_memory_equal(vdrv_host(&f->drv, g, 3), "ls\r", 3);
    close(user);
    fixture_free(f);
}

/*
 * A receive chain with no device-writable buffer used to be taken for end
 * of input, after which typed input never reached the guest again.
 */
static void test_pty_rx_buffer_not_writable(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct dev_serial cfg = {.mode = SERIAL_PTY};
    assert_int_equal(console_host_open(&cfg, &f->host), 0);
    assert_int_equal(virtio_console_create(&f->vm.m, f->host, &f->dev), 0);
    int user = open(console_host_pty_path(f->host), O_RDWR | O_NOCTTY);
    assert_true(user >= 0);
    start(f);

    uint64_t bad = vdrv_alloc(&f->drv, 16, 1);
    struct vdrv_buf b = {bad, 16, false};
    vdrv_add_chain(&f->drv, RXQ, &b, 1);
    vdrv_kick(&f->drv, RXQ);
    assert_int_equal(write(user, "ab", 2), 2);
    uint32_t len = 99;
    assert_true(vdrv_wait_used(&f->drv, RXQ, ++f->rx_used, WAIT_MS, &len));
    assert_int_equal(len, 0);

    /* The input is still there for the next proper buffer. */
    uint64_t g = guest_post_rx(f, 64);
    assert_true(vdrv_wait_used(&f->drv, RXQ, ++f->rx_used, WAIT_MS, &len));
    assert_int_equal(len, 2);
    assert_memory_equal(vdrv_host(&f->drv, g, 2), "ab", 2);
    assert_false(vdrv_status(&f->drv) & VIRTIO_CONFIG_S_NEEDS_RESET);
    close(user);
    fixture_free(f);
}

static void test_stdio_terminal_mode(void **state)
{
    (void)state;
    /* Give the process a terminal as stdin and a pipe as stdout. */
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(master >= 0);
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    assert_true(slave >= 0);
    int out[2];
    assert_int_equal(pipe(out), 0);
    int saved_in = dup(STDIN_FILENO), saved_out = dup(STDOUT_FILENO);
    assert_true(dup2(slave, STDIN_FILENO) >= 0);
    assert_true(dup2(out[1], STDOUT_FILENO) >= 0);
    struct termios before;
    assert_int_equal(tcgetattr(STDIN_FILENO, &before), 0);
    assert_true(before.c_lflag & ICANON);

    struct fixture *f = fixture_new();
    struct dev_serial cfg = {.mode = SERIAL_STDIO};
    assert_int_equal(console_host_open(&cfg, &f->host), 0);
    assert_int_equal(virtio_console_create(&f->vm.m, f->host, &f->dev), 0);
    struct termios raw;
    assert_int_equal(tcgetattr(STDIN_FILENO, &raw), 0);
    assert_false(raw.c_lflag & (ICANON | ECHO | ISIG));
    start(f);

    guest_write(f, "# ", NULL);
    char buf[16] = {0};
    assert_true(wait_readable(out[0], WAIT_MS));
    assert_int_equal(read(out[0], buf, sizeof(buf)), 2);
    assert_string_equal(buf, "# ");

    uint64_t g = guest_post_rx(f, 16);
    assert_int_equal(write(master, "\x03", 1), 1); /* Ctrl-C reaches the guest as a byte */
    uint32_t len;
    assert_true(vdrv_wait_used(&f->drv, RXQ, ++f->rx_used, WAIT_MS, &len));
    assert_int_equal(len, 1);
    assert_int_equal(*(uint8_t *)vdrv_host(&f->drv, g, 1), 3);

    fixture_free(f);
    struct termios after;
    assert_int_equal(tcgetattr(STDIN_FILENO, &after), 0);
    assert_true(after.c_lflag & ICANON);
    assert_true(after.c_lflag & ECHO);

    dup2(saved_in, STDIN_FILENO);
    dup2(saved_out, STDOUT_FILENO);
    close(saved_in);
    close(saved_out);
    close(out[0]);
    close(out[1]);
    close(slave);
    close(master);
}

/* ---- the log file's host side ---- */

/* A fresh directory for a log path that does not exist yet. */
static void temp_dir(char dir[64])
{
    strcpy(dir, "/tmp/krunkit-test-console-dir-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* logFileMaxSize: output past the cap is dropped, whoever writes (COM1 or the device). */
static void test_log_max_bytes(void **state)
{
    (void)state;
    char dir[64], log[128];
    temp_dir(dir);
    snprintf(log, sizeof(log), "%s/console.log", dir);
    struct dev_serial cfg = {.mode = SERIAL_LOGFILE, .log_file_path = log, .log_max_bytes = 10};
    struct console_host *h = NULL;
    assert_int_equal(console_host_open(&cfg, &h), 0);
    console_host_write(h, "0123456", 7);
    console_host_write(h, "789abcdefghijklmno", 18); /* 25 bytes in all */
    console_host_write(h, "x", 1);
    console_host_close(h, false);
    char buf[64];
    assert_int_equal(read_file(log, buf, sizeof(buf)), 10);
    assert_string_equal(buf, "0123456789");

    /* An existing log counts toward the cap: reopened, it grows by nothing. */
    assert_int_equal(console_host_open(&cfg, &h), 0);
    console_host_write(h, "more", 4);
    console_host_close(h, true); /* not created by this open: kept */
    assert_int_equal(file_size(log), 10);

    /* 0 is no cap (a struct built by hand, not by the parser). */
    cfg.log_max_bytes = 0;
    assert_int_equal(console_host_open(&cfg, &h), 0);
    console_host_write(h, "0123456789abcdefghijklmno", 25);
    console_host_close(h, false);
    assert_int_equal(file_size(log), 35);
    assert_int_equal(unlink(log), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* A symlink at logFilePath is refused; its target is not touched. */
static void test_log_symlink_refused(void **state)
{
    (void)state;
    char dir[64], log[128], target[128];
    temp_dir(dir);
    snprintf(log, sizeof(log), "%s/console.log", dir);
    snprintf(target, sizeof(target), "%s/user-file", dir);
    int fd = open(target, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "precious", 8), 8);
    close(fd);
    assert_int_equal(symlink(target, log), 0);

    struct dev_serial cfg = {.mode = SERIAL_LOGFILE, .log_file_path = log};
    struct console_host *h = NULL;
    assert_true(console_host_open(&cfg, &h) < 0);
    assert_null(h);
    char buf[64];
    assert_int_equal(read_file(target, buf, sizeof(buf)), 8);
    assert_string_equal(buf, "precious");
    struct stat st;
    assert_int_equal(lstat(log, &st), 0);
    assert_true(S_ISLNK(st.st_mode)); /* the failed open removed nothing either */

    /* A dangling symlink is not followed to create its target. */
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/missing", dir);
    assert_int_equal(unlink(log), 0);
    assert_int_equal(symlink(missing, log), 0);
    assert_true(console_host_open(&cfg, &h) < 0);
    assert_int_equal(access(missing, F_OK), -1);

    unlink(log);
    unlink(target);
    assert_int_equal(rmdir(dir), 0);
}

static void test_log_created_0600(void **state)
{
    (void)state;
    char dir[64], log[128];
    temp_dir(dir);
    snprintf(log, sizeof(log), "%s/console.log", dir);
    mode_t old = umask(022);
    struct dev_serial cfg = {.mode = SERIAL_LOGFILE, .log_file_path = log};
    struct console_host *h = NULL;
    assert_int_equal(console_host_open(&cfg, &h), 0);
    umask(old);
    struct stat st;
    assert_int_equal(stat(log, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    console_host_close(h, false);
    /* A clean close keeps the log. */
    assert_int_equal(access(log, F_OK), 0);
    unlink(log);
    assert_int_equal(rmdir(dir), 0);
}

/* A failed start removes a log this run created, never one that was there. */
static void test_log_failed_start_cleanup(void **state)
{
    (void)state;
    char dir[64], log[128];
    temp_dir(dir);
    snprintf(log, sizeof(log), "%s/console.log", dir);
    struct dev_serial cfg = {.mode = SERIAL_LOGFILE, .log_file_path = log};
    struct console_host *h = NULL;

    assert_int_equal(console_host_open(&cfg, &h), 0);
    console_host_write(h, "boot\n", 5);
    console_host_close(h, true);
    assert_int_equal(access(log, F_OK), -1);
    assert_int_equal(errno, ENOENT);

    int fd = open(log, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "user\n", 5), 5);
    close(fd);
    assert_int_equal(console_host_open(&cfg, &h), 0);
    console_host_write(h, "boot\n", 5);
    console_host_close(h, true);
    char buf[64];
    assert_int_equal(read_file(log, buf, sizeof(buf)), 10);
    assert_string_equal(buf, "user\nboot\n");

    /* Created by this run but replaced since: what is there now is not ours to remove. */
    assert_int_equal(unlink(log), 0);
    assert_int_equal(console_host_open(&cfg, &h), 0);
    assert_int_equal(unlink(log), 0);
    fd = open(log, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    console_host_close(h, true);
    assert_int_equal(access(log, F_OK), 0);

    unlink(log);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_file),
        cmocka_unit_test(test_log_file_unwritable),
        cmocka_unit_test(test_pty),
        cmocka_unit_test(test_pty_rx_buffer_not_writable),
        cmocka_unit_test(test_stdio_terminal_mode),
        cmocka_unit_test(test_log_max_bytes),
        cmocka_unit_test(test_log_symlink_refused),
        cmocka_unit_test(test_log_created_0600),
        cmocka_unit_test(test_log_failed_start_cleanup),
    };
    return cmocka_run_group_tests_name("virtio-console", tests, NULL, NULL);
}
