/*
 * The devices' host side opened once (src/vmm/backends.c): one slot per
 * virtio device in command-line order, each with its I/O loop and what it
 * holds (image, console, socket, vsock muxer); every vsock entry after the
 * first joins the first one's slot, and --timesync alone adds one; COM1
 * writes to the first log-file or stdio console. A failure leaves nothing
 * open and removes the files this start created.
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

#include "block/block.h"
#include "core/config.h"
#include "support/test_util.h"
#include "virtio/devices.h"
#include "vmm/backends.h"

#define DISK_BYTES (1u << 20)

struct fixture {
    char dir[64];
    char disk[128], log[128], missing[128], sock1[128], sock2[128], sock3[128];
    struct dev_config devs[8];
    struct vm_config cfg;
    struct vm_backends b;
    int fds_before, tasks_before;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->dir, "/tmp/krunkit-test-backends-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->disk, sizeof(f->disk), "%s/disk.img", f->dir);
    snprintf(f->log, sizeof(f->log), "%s/console.log", f->dir);
    snprintf(f->missing, sizeof(f->missing), "%s/no-such-dir/disk2.img", f->dir);
    snprintf(f->sock1, sizeof(f->sock1), "%s/v1.sock", f->dir);
    snprintf(f->sock2, sizeof(f->sock2), "%s/v2.sock", f->dir);
    snprintf(f->sock3, sizeof(f->sock3), "%s/v3.sock", f->dir);
    int fd = open(f->disk, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, DISK_BYTES), 0);
    close(fd);
    f->cfg.devices = f->devs;
    f->fds_before = dir_entry_count("/proc/self/fd");
    f->tasks_before = dir_entry_count("/proc/self/task");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    /* Whatever a test opened is closed by now: no descriptor or thread left. */
    assert_int_equal(dir_entry_count("/proc/self/fd"), f->fds_before);
    assert_int_equal(dir_entry_count("/proc/self/task"), f->tasks_before);
    unlink(f->disk);
    unlink(f->log);
    /* Every socket the vsock muxers made was removed: rmdir fails otherwise. */
    assert_int_equal(rmdir(f->dir), 0);
    free(f);
    return 0;
}

static struct dev_config *add(struct fixture *f, struct dev_config d)
{
    assert_true(f->cfg.n_devices < sizeof(f->devs) / sizeof(f->devs[0]));
    f->devs[f->cfg.n_devices] = d;
    return &f->devs[f->cfg.n_devices++];
}

static struct dev_config raw_disk(const char *path)
{
    return (struct dev_config){.type = DEV_BLK,
                               .blk = {.path = (char *)path, .format = BLK_FMT_RAW}};
}

static struct dev_config log_console(const char *path)
{
    return (struct dev_config){.type = DEV_SERIAL,
                               .serial = {.mode = SERIAL_LOGFILE, .log_file_path = (char *)path}};
}

static struct dev_config vsock_connect(uint32_t port, const char *path)
{
    return (struct dev_config){
        .type = DEV_VSOCK, .vsock = {.port = port, .socket_url = (char *)path, .listen = false}};
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void test_slots_in_order(void **state)
{
    struct fixture *f = *state;
    add(f, raw_disk(f->disk));
    add(f, log_console(f->log));
    add(f, (struct dev_config){.type = DEV_RNG});
    assert_int_equal(backends_open(&f->cfg, NULL, &f->b), 0);
    assert_int_equal(f->b.n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_ptr_equal(f->b.dev[i].cfg, &f->devs[i]);
        assert_non_null(f->b.dev[i].loop);
        assert_null(f->b.dev[i].vsock);
        assert_null(f->b.dev[i].net);
    }
    /* The disk: its image, open. */
    assert_non_null(f->b.dev[0].img);
    assert_int_equal(blk_size(f->b.dev[0].img), DISK_BYTES);
    assert_null(f->b.dev[0].console);
    /* The console: its host side, the log created; COM1 writes there too. */
    assert_non_null(f->b.dev[1].console);
    assert_null(f->b.dev[1].img);
    assert_ptr_equal(f->b.com1, f->b.dev[1].console);
    assert_true(exists(f->log));
    console_host_write(f->b.com1, "SeaBIOS\n", 8);
    /* The rng: nothing of the host's but its loop. */
    assert_null(f->b.dev[2].img);
    assert_null(f->b.dev[2].console);

    backends_close(&f->b, false);
    assert_int_equal(f->b.n, 0);
    assert_null(f->b.dev);
    assert_null(f->b.com1);
    /* A VM that ran keeps its log. */
    int fd = open(f->log, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    char buf[16] = {0};
    assert_int_equal(read(fd, buf, sizeof(buf) - 1), 8);
    assert_string_equal(buf, "SeaBIOS\n");
    close(fd);
}

/* A second disk at a missing path: nothing left open, the log this start made removed. */
static void test_failure_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    add(f, raw_disk(f->disk));
    add(f, log_console(f->log));
    add(f, (struct dev_config){.type = DEV_RNG});
    add(f, raw_disk(f->missing));
    f->b.n = 99; /* overwritten */
    assert_true(backends_open(&f->cfg, NULL, &f->b) < 0);
    assert_int_equal(f->b.n, 0);
    assert_null(f->b.dev);
    assert_null(f->b.com1);
    assert_false(exists(f->log));
    /* teardown checks that no descriptor or thread is left. */

    /* A log that was there before the failed start is kept, as it was. */
    int fd = open(f->log, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "old\n", 4), 4);
    close(fd);
    assert_true(backends_open(&f->cfg, NULL, &f->b) < 0);
    struct stat st;
    assert_int_equal(stat(f->log, &st), 0);
    assert_int_equal(st.st_size, 4);
}

/* Every vsock entry shares the first one's slot; --timesync joins it too. */
static void test_one_vsock_slot(void **state)
{
    struct fixture *f = *state;
    add(f, vsock_connect(1024, f->sock1));
    add(f, raw_disk(f->disk));
    add(f, vsock_connect(1025, f->sock2));
    struct dev_vsock timesync = {.port = 1026, .socket_url = f->sock3, .listen = false};
    assert_int_equal(backends_open(&f->cfg, &timesync, &f->b), 0);
    assert_int_equal(f->b.n, 2);
    assert_ptr_equal(f->b.dev[0].cfg, &f->devs[0]);
    assert_non_null(f->b.dev[0].vsock);
    assert_ptr_equal(f->b.dev[1].cfg, &f->devs[1]);
    assert_non_null(f->b.dev[1].img);
    assert_null(f->b.com1); /* no console */
    /* The one muxer holds every port's socket. */
    assert_true(exists(f->sock1));
    assert_true(exists(f->sock2));
    assert_true(exists(f->sock3));
    backends_close(&f->b, false);
    assert_false(exists(f->sock1));
    assert_false(exists(f->sock2));
    assert_false(exists(f->sock3));
}

/* --timesync without a vsock device: a slot of its own, last, with no configuration entry. */
static void test_timesync_only_slot(void **state)
{
    struct fixture *f = *state;
    add(f, raw_disk(f->disk));
    struct dev_vsock timesync = {.port = 1026, .socket_url = f->sock3, .listen = false};
    assert_int_equal(backends_open(&f->cfg, &timesync, &f->b), 0);
    assert_int_equal(f->b.n, 2);
    assert_ptr_equal(f->b.dev[0].cfg, &f->devs[0]);
    assert_null(f->b.dev[1].cfg);
    assert_non_null(f->b.dev[1].vsock);
    assert_non_null(f->b.dev[1].loop);
    assert_true(exists(f->sock3));
    backends_close(&f->b, false);
    assert_false(exists(f->sock3));

    /* Without --timesync, no such slot. */
    assert_int_equal(backends_open(&f->cfg, NULL, &f->b), 0);
    assert_int_equal(f->b.n, 1);
    backends_close(&f->b, false);
}

/* COM1 goes to the first log-file or stdio console, never to a pty. */
static void test_com1_skips_pty(void **state)
{
    struct fixture *f = *state;
    add(f, (struct dev_config){.type = DEV_SERIAL, .serial = {.mode = SERIAL_PTY}});
    add(f, log_console(f->log));
    assert_int_equal(backends_open(&f->cfg, NULL, &f->b), 0);
    assert_int_equal(f->b.n, 2);
    assert_non_null(console_host_pty_path(f->b.dev[0].console));
    assert_ptr_equal(f->b.com1, f->b.dev[1].console);
    backends_close(&f->b, false);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_slots_in_order),     T(test_failure_leaves_nothing), T(test_one_vsock_slot),
        T(test_timesync_only_slot), T(test_com1_skips_pty),
    };
    return cmocka_run_group_tests_name("backends", tests, NULL, NULL);
}
