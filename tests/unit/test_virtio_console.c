/*
 * virtio-console (src/virtio/console.c): guest output appended to a log
 * file, emergency writes, a pty in both directions, and stdio on a
 * terminal (raw while the device lives, restored after).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/config.h"
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
    vdrv_init(&f->drv, &f->vm, &f->dev->pci, HEAP_START, RAM_SIZE);
    vdrv_enable_msix(&f->drv, 3);
    assert_true(vdrv_negotiate(&f->drv, ~0ull) & VIRTIO_STATUS_FEATURES_OK);
    assert_int_equal(vdrv_setup_queue(&f->drv, RXQ, 16, 1), 1);
    assert_int_equal(vdrv_setup_queue(&f->drv, TXQ, 16, 2), 1);
    vdrv_driver_ok(&f->drv);
}

static void fixture_free(struct fixture *f)
{
    virtio_dev_destroy(f->dev);
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
    assert_int_equal(virtio_console_create(&f->vm.m, &cfg, &f->dev), 0);
    assert_null(virtio_console_pty_path(f->dev));
    start(f);
    assert_int_equal(pci_config_read(&f->dev->pci, PCI_DEVICE_ID, 2), 0x1043);
    /* max_nr_ports */
    assert_int_equal(vdrv_read(&f->drv, VIRTIO_BAR_DEVICE + 4, 4), 1);

    guest_write(f, "hello ", "world\n");
    guest_write(f, "[    0.000000] Linux version\n", NULL);
    /* Emergency write through the configuration space. */
    vdrv_write(&f->drv, VIRTIO_BAR_DEVICE + 8, '!', 4);
    char buf[256];
    read_file(f->log, buf, sizeof(buf));
    assert_string_equal(buf, "old\nhello world\n[    0.000000] Linux version\n!");
    assert_false(vdrv_status(&f->drv) & VIRTIO_STATUS_NEEDS_RESET);
    fixture_free(f);
}

static void test_log_file_unwritable(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct dev_serial cfg = {.mode = SERIAL_LOGFILE, .log_file_path = "/nonexistent/dir/log"};
    f->dev = NULL;
    assert_true(virtio_console_create(&f->vm.m, &cfg, &f->dev) < 0);
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
    assert_int_equal(virtio_console_create(&f->vm.m, &cfg, &f->dev), 0);
    const char *path = virtio_console_pty_path(f->dev);
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
    assert_int_equal(virtio_console_create(&f->vm.m, &cfg, &f->dev), 0);
    int user = open(virtio_console_pty_path(f->dev), O_RDWR | O_NOCTTY);
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
    assert_false(vdrv_status(&f->drv) & VIRTIO_STATUS_NEEDS_RESET);
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
    assert_int_equal(virtio_console_create(&f->vm.m, &cfg, &f->dev), 0);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_file),
        cmocka_unit_test(test_log_file_unwritable),
        cmocka_unit_test(test_pty),
        cmocka_unit_test(test_pty_rx_buffer_not_writable),
        cmocka_unit_test(test_stdio_terminal_mode),
    };
    return cmocka_run_group_tests_name("virtio-console", tests, NULL, NULL);
}
