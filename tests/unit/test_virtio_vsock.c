/*
 * virtio-vsock (src/virtio/vsock.c + src/vsock/muxer.c) driven as a guest
 * would, through the fake machine and guest RAM, against real UNIX sockets
 * in a temporary directory: a guest connection to a listen-mode port
 * reaches the host listener and data flows both ways with correct headers
 * and credit; a host connection to a connect-mode socket becomes a REQUEST
 * the guest answers; shutdown and reset both ways; credit exhaustion stops
 * the device and honest buffering when the host does not read; malformed
 * and misaddressed packets; the connection limit; device reset; the
 * sockets the device creates and removes, and its start errors. The muxer
 * (with its host sockets) is the test's, as it is the VM's: opened by
 * virtio_vsock_muxer_open, borrowed by the device, destroyed after it.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
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

#include "core/config.h"
#include "support/fake_guest_mem.h"
#include "support/fake_hooks.h"
#include "support/test_util.h"
#include "support/virtio_driver.h"
#include "virtio/devices.h"
#include "virtio/pci.h"
#include "vmm/timesync.h"
#include "vsock/muxer.h"

#define RAM_SIZE (32u << 20)
#define HEAP_START 0x10000
#define WAIT_MS 5000
#define QUIET_MS 150
#define RXQ 0
#define TXQ 1
#define EVQ 2
#define QSIZE 256
#define RXBUF (VSOCK_HDR_LEN + 4096)
#define NRX 32
#define G2H_PORT 1024 /* listen mode: the guest connects */
#define H2G_PORT 1025 /* connect mode: the host connects */
#define GUEST_PORT 5000

struct fixture {
    struct guest_mem gm;
    struct fake_vm vm;
    struct virtio_dev *dev;
    struct vsock_muxer *mx;
    struct vdrv drv;
    char dir[64], g2h_path[108], h2g_path[108];
    int listener; /* our UNIX listener behind G2H_PORT */
    struct vm_config cfg;
    struct dev_config devs[2];
    uint16_t tx_used, rx_used;
    uint64_t rx_gpa[QSIZE];
};

struct pkt {
    struct vsock_hdr h;
    uint8_t data[VSOCK_MAX_PKT];
    uint32_t len;
};

static int unix_listener(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 128), 0);
    return fd;
}

static int unix_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -errno;
    }
    return fd;
}

static void post_rx(struct fixture *f)
{
    uint64_t g = vdrv_alloc(&f->drv, RXBUF, 16);
    struct vdrv_buf b = {g, RXBUF, true};
    uint16_t head = vdrv_add_chain(&f->drv, RXQ, &b, 1);
    f->rx_gpa[head] = g;
}

static void fixture_config(struct fixture *f)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/test-vsock.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->g2h_path, sizeof(f->g2h_path), "%s/g2h.sock", f->dir);
    snprintf(f->h2g_path, sizeof(f->h2g_path), "%s/h2g.sock", f->dir);
    f->devs[0] =
        (struct dev_config){.type = DEV_VSOCK, .vsock = {G2H_PORT, f->g2h_path, .listen = true}};
    f->devs[1] =
        (struct dev_config){.type = DEV_VSOCK, .vsock = {H2G_PORT, f->h2g_path, .listen = false}};
    f->cfg.devices = f->devs;
    f->cfg.n_devices = 2;
}

/*
 * h2g_as_extra: the connect-mode port comes as the `extra` argument (as
 * --timesync's does), not as a device entry of the configuration.
 */
static void device_up(struct fixture *f);

static struct fixture *fixture_new_with(bool h2g_as_extra)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    fixture_config(f);
    const struct dev_vsock *extra = NULL;
    if (h2g_as_extra) {
        f->cfg.n_devices = 1;
        extra = &f->devs[1].vsock;
    }
    f->listener = unix_listener(f->g2h_path);
    assert_int_equal(fake_guest_mem_init(&f->gm, 0, RAM_SIZE), 0);
    assert_int_equal(fake_vm_init(&f->vm, &f->gm), 0);
    assert_int_equal(virtio_vsock_muxer_open(&f->cfg, extra, &f->mx), 0);
    device_up(f);
    return f;
}

/* A device on the fixture's muxer, driven up to DRIVER_OK with receive buffers posted. */
static void device_up(struct fixture *f)
{
    assert_int_equal(virtio_vsock_create(&f->vm.m, f->mx, &f->dev), 0);
    memset(&f->drv, 0, sizeof(f->drv));
    f->tx_used = f->rx_used = 0;
    vdrv_init(&f->drv, &f->vm, virtio_pci_function(f->dev), HEAP_START, RAM_SIZE);
    vdrv_enable_msix(&f->drv, 4);
    assert_true(vdrv_negotiate(&f->drv, ~0ull) & VIRTIO_CONFIG_S_FEATURES_OK);
    assert_int_equal(vdrv_setup_queue(&f->drv, RXQ, QSIZE, 1), 1);
    assert_int_equal(vdrv_setup_queue(&f->drv, TXQ, QSIZE, 2), 1);
    assert_int_equal(vdrv_setup_queue(&f->drv, EVQ, 16, 3), 1);
    vdrv_driver_ok(&f->drv);
    for (int i = 0; i < NRX; i++)
        post_rx(f);
    vdrv_kick(&f->drv, RXQ);
}

static struct fixture *fixture_new(void)
{
    return fixture_new_with(false);
}

static void fixture_free(struct fixture *f)
{
    virtio_dev_destroy(f->dev);
    vsock_muxer_destroy(f->mx);
    close(f->listener);
    unlink(f->g2h_path);
    fake_vm_destroy(&f->vm);
    fake_guest_mem_free(&f->gm);
    /* The device must have removed the socket it created: rmdir fails otherwise. */
    assert_int_equal(access(f->h2g_path, F_OK), -1);
    assert_int_equal(rmdir(f->dir), 0);
    free(f);
}

static struct vsock_hdr hdr(uint32_t src_port, uint32_t dst_port, uint16_t op, uint32_t flags,
                            uint32_t len, uint32_t buf_alloc, uint32_t fwd_cnt)
{
    return (struct vsock_hdr){
        .src_cid = htole64(VSOCK_GUEST_CID),
        .dst_cid = htole64(VSOCK_HOST_CID),
        .src_port = htole32(src_port),
        .dst_port = htole32(dst_port),
        .len = htole32(len),
        .type = htole16(VSOCK_TYPE_STREAM),
        .op = htole16(op),
        .flags = htole32(flags),
        .buf_alloc = htole32(buf_alloc),
        .fwd_cnt = htole32(fwd_cnt),
    };
}

/* A tx chain: `hdr_len` bytes of *h in one buffer, `data_len` bytes of data in another. */
static void send_raw(struct fixture *f, const struct vsock_hdr *h, size_t hdr_len, const void *data,
                     size_t data_len)
{
    struct vdrv *d = &f->drv;
    struct vdrv_buf b[2];
    unsigned n = 0;
    uint64_t g = vdrv_alloc(d, hdr_len, 8);
    memcpy(vdrv_host(d, g, hdr_len), h, hdr_len);
    b[n++] = (struct vdrv_buf){g, (uint32_t)hdr_len, false};
    if (data_len) {
        g = vdrv_alloc(d, data_len, 8);
        memcpy(vdrv_host(d, g, data_len), data, data_len);
        b[n++] = (struct vdrv_buf){g, (uint32_t)data_len, false};
    }
    vdrv_add_chain(d, TXQ, b, n);
    vdrv_kick(d, TXQ);
    assert_true(vdrv_wait_used(d, TXQ, ++f->tx_used, WAIT_MS, NULL));
}

static void send_pkt(struct fixture *f, uint32_t src_port, uint32_t dst_port, uint16_t op,
                     uint32_t flags, const void *data, uint32_t len, uint32_t buf_alloc,
                     uint32_t fwd_cnt)
{
    struct vsock_hdr h = hdr(src_port, dst_port, op, flags, len, buf_alloc, fwd_cnt);
    send_raw(f, &h, sizeof(h), data, len);
}

/* The next packet the device put in a receive buffer (the buffer is replaced). */
static bool recv_pkt(struct fixture *f, struct pkt *p, int ms)
{
    struct vdrv *d = &f->drv;
    if (!vdrv_wait_used(d, RXQ, (uint16_t)(f->rx_used + 1), ms, NULL))
        return false;
    uint8_t *used = vdrv_host(d, d->q[RXQ].used, 4 + 8ull * QSIZE);
    uint32_t id, len;
    memcpy(&id, used + 4 + 8 * (f->rx_used % QSIZE), 4);
    memcpy(&len, used + 8 + 8 * (f->rx_used % QSIZE), 4);
    f->rx_used++;
    assert_true(id < QSIZE);
    assert_true(len >= VSOCK_HDR_LEN && len <= RXBUF);
    const uint8_t *buf = vdrv_host(d, f->rx_gpa[id], RXBUF);
    memcpy(&p->h, buf, VSOCK_HDR_LEN);
    p->len = le32toh(p->h.len);
    assert_int_equal(p->len, len - VSOCK_HDR_LEN);
    memcpy(p->data, buf + VSOCK_HDR_LEN, p->len);
    /* Every packet comes from the host to the guest, as a stream packet. */
    assert_int_equal(le64toh(p->h.src_cid), VSOCK_HOST_CID);
    assert_int_equal(le64toh(p->h.dst_cid), VSOCK_GUEST_CID);
    assert_int_equal(le16toh(p->h.type), VSOCK_TYPE_STREAM);
    post_rx(f);
    vdrv_kick(d, RXQ);
    return true;
}

static void expect_pkt(struct fixture *f, struct pkt *p, uint16_t op, uint32_t src_port,
                       uint32_t dst_port)
{
    assert_true(recv_pkt(f, p, WAIT_MS));
    assert_int_equal(le16toh(p->h.op), op);
    assert_int_equal(le32toh(p->h.src_port), src_port);
    assert_int_equal(le32toh(p->h.dst_port), dst_port);
}

static struct pkt *pkt_new(void)
{
    struct pkt *p = malloc(sizeof(*p));
    assert_non_null(p);
    return p;
}

/* Guest connects to G2H_PORT from `gport`; returns the host's accepted socket. */
static int guest_connect(struct fixture *f, struct pkt *p, uint32_t gport, uint32_t buf_alloc)
{
    send_pkt(f, gport, G2H_PORT, VSOCK_OP_REQUEST, 0, NULL, 0, buf_alloc, 0);
    expect_pkt(f, p, VSOCK_OP_RESPONSE, G2H_PORT, gport);
    assert_int_equal(le32toh(p->h.buf_alloc), VSOCK_CONN_BUF);
    assert_int_equal(le32toh(p->h.fwd_cnt), 0);
    int fd = accept4(f->listener, NULL, NULL, SOCK_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

/* Host connects to the connect-mode socket; the guest accepts. Returns our socket. */
static int host_connect(struct fixture *f, struct pkt *p, uint32_t buf_alloc, uint32_t *hport)
{
    int fd = unix_connect(f->h2g_path);
    assert_true(fd >= 0);
    assert_true(recv_pkt(f, p, WAIT_MS));
    assert_int_equal(le16toh(p->h.op), VSOCK_OP_REQUEST);
    assert_int_equal(le32toh(p->h.dst_port), H2G_PORT);
    *hport = le32toh(p->h.src_port);
    assert_true(*hport >= 0x40000000u);
    send_pkt(f, H2G_PORT, *hport, VSOCK_OP_RESPONSE, 0, NULL, 0, buf_alloc, 0);
    return fd;
}

static void test_config(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    uint64_t cid = vdrv_read(&f->drv, VIRTIO_BAR_DEVICE, 4);
    cid |= vdrv_read(&f->drv, VIRTIO_BAR_DEVICE + 4, 4) << 32;
    assert_int_equal(cid, VSOCK_GUEST_CID);
    assert_int_equal(vdrv_read(&f->drv, VIRTIO_PCI_COMMON_NUMQ, 2), 3);
    /* The connect-mode socket exists while the device lives. */
    struct stat st;
    assert_int_equal(stat(f->h2g_path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    fixture_free(f);
}

static void test_guest_connects(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct pkt *p = pkt_new();
    int host = guest_connect(f, p, GUEST_PORT, 65536);

    send_pkt(f, GUEST_PORT, G2H_PORT, VSOCK_OP_RW, 0, "hello", 5, 65536, 0);
    char buf[64];
    assert_true(sock_readable(host, WAIT_MS));
    assert_int_equal(read(host, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "hello", 5);

    assert_int_equal(write(host, "world!", 6), 6);
    expect_pkt(f, p, VSOCK_OP_RW, G2H_PORT, GUEST_PORT);
    assert_int_equal(p->len, 6);
    assert_memory_equal(p->data, "world!", 6);
    assert_int_equal(le32toh(p->h.buf_alloc), VSOCK_CONN_BUF);
    assert_int_equal(le32toh(p->h.fwd_cnt), 5); /* the 5 bytes the host socket took */

    /* Host half-closes: the guest sees SHUTDOWN(SEND), and can still send. */
    assert_int_equal(shutdown(host, SHUT_WR), 0);
    expect_pkt(f, p, VSOCK_OP_SHUTDOWN, G2H_PORT, GUEST_PORT);
    assert_int_equal(le32toh(p->h.flags), VSOCK_SHUTDOWN_SEND);
    send_pkt(f, GUEST_PORT, G2H_PORT, VSOCK_OP_RW, 0, "late", 4, 65536, 6);
    assert_true(sock_readable(host, WAIT_MS));
    assert_int_equal(read(host, buf, sizeof(buf)), 4);

    /* Guest closes both ways: the host reads EOF, the guest gets the final RST. */
    send_pkt(f, GUEST_PORT, G2H_PORT, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND,
             NULL, 0, 65536, 6);
    expect_pkt(f, p, VSOCK_OP_RST, G2H_PORT, GUEST_PORT);
    assert_true(sock_readable(host, WAIT_MS));
    assert_int_equal(read(host, buf, sizeof(buf)), 0);
    assert_false(recv_pkt(f, p, QUIET_MS));
    close(host);
    free(p);
    fixture_free(f);
}

static void test_guest_half_close_then_host(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct pkt *p = pkt_new();
    int host = guest_connect(f, p, GUEST_PORT, 65536);
    char buf[64];
    /* Guest shuts its sending side: the host reads EOF but may still answer. */
    send_pkt(f, GUEST_PORT, G2H_PORT, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND, NULL, 0, 65536, 0);
    assert_true(sock_readable(host, WAIT_MS));
    assert_int_equal(read(host, buf, sizeof(buf)), 0);
    assert_int_equal(write(host, "answer", 6), 6);
    expect_pkt(f, p, VSOCK_OP_RW, G2H_PORT, GUEST_PORT);
    assert_memory_equal(p->data, "answer", 6);
    /* Host closes: SHUTDOWN(SEND), and with both directions done, RST ends it. */
    close(host);
    expect_pkt(f, p, VSOCK_OP_SHUTDOWN, G2H_PORT, GUEST_PORT);
    expect_pkt(f, p, VSOCK_OP_RST, G2H_PORT, GUEST_PORT);
    /* A packet for the finished connection is answered with RST. */
    send_pkt(f, GUEST_PORT, G2H_PORT, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0, 65536, 6);
    expect_pkt(f, p, VSOCK_OP_RST, G2H_PORT, GUEST_PORT);
    free(p);
    fixture_free(f);
}

/* Data for a host socket that is gone: the write fails and the guest gets RST. */
static void test_host_error_resets(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct pkt *p = pkt_new();
    int host = guest_connect(f, p, GUEST_PORT, 65536);
    close(host);
    expect_pkt(f, p, VSOCK_OP_SHUTDOWN, G2H_PORT, GUEST_PORT);
    send_pkt(f, GUEST_PORT, G2H_PORT, VSOCK_OP_RW, 0, "lost", 4, 65536, 0);
    expect_pkt(f, p, VSOCK_OP_RST, G2H_PORT, GUEST_PORT);
    assert_false(recv_pkt(f, p, QUIET_MS));
    free(p);
    fixture_free(f);
}

static void test_guest_connect_refused(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct pkt *p = pkt_new();
    /* Nobody listens on the host side any more: the guest gets RST. */
    close(f->listener);
    unlink(f->g2h_path);
    f->listener = socket(AF_UNIX, SOCK_STREAM, 0);
    send_pkt(f, GUEST_PORT, G2H_PORT, VSOCK_OP_REQUEST, 0, NULL, 0, 65536, 0);
    expect_pkt(f, p, VSOCK_OP_RST, G2H_PORT, GUEST_PORT);
    /* A connect-mode port does not take guest connections. */
    send_pkt(f, GUEST_PORT, H2G_PORT, VSOCK_OP_REQUEST, 0, NULL, 0, 65536, 0);
    expect_pkt(f, p, VSOCK_OP_RST, H2G_PORT, GUEST_PORT);
    free(p);
    fixture_free(f);
}

static void test_host_connects(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct pkt *p = pkt_new();
    uint32_t hport;
    int host = host_connect(f, p, 65536, &hport);

    assert_int_equal(write(host, "ping", 4), 4);
    expect_pkt(f, p, VSOCK_OP_RW, hport, H2G_PORT);
    assert_int_equal(p->len, 4);
    assert_memory_equal(p->data, "ping", 4);

    send_pkt(f, H2G_PORT, hport, VSOCK_OP_RW, 0, "pong", 4, 65536, 4);
    char buf[16];
    assert_true(sock_readable(host, WAIT_MS));
    assert_int_equal(read(host, buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "pong", 4);

    /* A second host connection gets its own host-side port. */
    uint32_t hport2;
    int host2 = host_connect(f, p, 65536, &hport2);
    assert_int_not_equal(hport, hport2);
    /* The guest resets the first: the host sees the connection end. */
    send_pkt(f, H2G_PORT, hport, VSOCK_OP_RST, 0, NULL, 0, 0, 0);
    assert_true(sock_readable(host, WAIT_MS));
    assert_int_equal(read(host, buf, sizeof(buf)), 0);
    close(host);
    /* The host closes the second: the guest sees SHUTDOWN(SEND). */
    close(host2);
    expect_pkt(f, p, VSOCK_OP_SHUTDOWN, hport2, H2G_PORT);
    assert_int_equal(le32toh(p->h.flags), VSOCK_SHUTDOWN_SEND);
    send_pkt(f, H2G_PORT, hport2, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND, NULL,
             0, 65536, 0);
    expect_pkt(f, p, VSOCK_OP_RST, hport2, H2G_PORT);
    free(p);
    fixture_free(f);
}

struct timesync_call {
    const char *path;
    int rc;
};

static void *timesync_call(void *arg)
{
    struct timesync_call *c = arg;
    c->rc = timesync_send(c->path, 1234567890123456789ull, WAIT_MS);
    return NULL;
}

/*
 * --timesync end to end on the host side: its port (given as `extra`)
 * gets a socket; timesync_send through it reaches the guest's port as a
 * connection carrying one guest-set-time command, and the agent's answer
 * makes it succeed.
 */
static void test_timesync_port(void **state)
{
    (void)state;
    struct fixture *f = fixture_new_with(true);
    struct pkt *p = pkt_new();
    struct timesync_call c = {.path = f->h2g_path, .rc = 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, timesync_call, &c), 0);
    assert_true(recv_pkt(f, p, WAIT_MS));
    assert_int_equal(le16toh(p->h.op), VSOCK_OP_REQUEST);
    assert_int_equal(le32toh(p->h.dst_port), H2G_PORT);
    uint32_t hport = le32toh(p->h.src_port);
    send_pkt(f, H2G_PORT, hport, VSOCK_OP_RESPONSE, 0, NULL, 0, 65536, 0);
    expect_pkt(f, p, VSOCK_OP_RW, hport, H2G_PORT);
    const char want[] =
        "{\"execute\":\"guest-set-time\",\"arguments\":{\"time\":1234567890123456789}}\n";
    assert_int_equal(p->len, strlen(want));
    assert_memory_equal(p->data, want, p->len);
    const char answer[] = "{\"return\": {}}\n";
    send_pkt(f, H2G_PORT, hport, VSOCK_OP_RW, 0, answer, sizeof(answer) - 1, 65536, p->len);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(c.rc, 0);
    free(p);
    fixture_free(f);
}

static void test_host_connect_guest_refuses(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct pkt *p = pkt_new();
    int host = unix_connect(f->h2g_path);
    assert_true(host >= 0);
    assert_true(recv_pkt(f, p, WAIT_MS));
    assert_int_equal(le16toh(p->h.op), VSOCK_OP_REQUEST);
    uint32_t hport = le32toh(p->h.src_port);
    /* No listener in the guest: it answers RST; the host connection is closed. */
    send_pkt(f, H2G_PORT, hport, VSOCK_OP_RST, 0, NULL, 0, 0, 0);
    char c;
    assert_true(sock_readable(host, WAIT_MS));
    assert_int_equal(read(host, &c, 1), 0);
    close(host);
    free(p);
    fixture_free(f);
}

/* A guest that never answers a host connection: reset after the timeout, not held forever. */
static void test_host_connect_guest_silent(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct pkt *p = pkt_new();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int host = unix_connect(f->h2g_path);
    assert_true(host >= 0);
    assert_true(recv_pkt(f, p, WAIT_MS));
    assert_int_equal(le16toh(p->h.op), VSOCK_OP_REQUEST);
    uint32_t hport = le32toh(p->h.src_port);
    /* Not before the timeout ... */
    assert_false(sock_readable(host, VSOCK_REQUEST_TIMEOUT_MS / 2));
    /* ... but then the host's socket closes and the guest gets RST. */
    char c;
    assert_true(sock_readable(host, WAIT_MS));
    assert_int_equal(read(host, &c, 1), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= VSOCK_REQUEST_TIMEOUT_MS - 50 && ms < VSOCK_REQUEST_TIMEOUT_MS + 1500);
    expect_pkt(f, p, VSOCK_OP_RST, hport, H2G_PORT);
    /* A late RESPONSE finds no connection: RST again, the device stays healthy. */
    send_pkt(f, H2G_PORT, hport, VSOCK_OP_RESPONSE, 0, NULL, 0, 4096, 0);
    expect_pkt(f, p, VSOCK_OP_RST, hport, H2G_PORT);
    close(host);
    free(p);
    fixture_free(f);
}

/* The device never sends more than the guest's credit, and resumes on CREDIT_UPDATE. */
static void test_credit_to_guest(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct pkt *p = pkt_new();
    uint32_t hport;
    int host = host_connect(f, p, 100, &hport);
    uint8_t out[300];
    for (int i = 0; i < 300; i++)
        out[i] = (uint8_t)(i * 13);
    assert_int_equal(write(host, out, sizeof(out)), 300);

    uint32_t got = 0;
    while (got < 100) {
        expect_pkt(f, p, VSOCK_OP_RW, hport, H2G_PORT);
        assert_true(got + p->len <= 100);
        assert_memory_equal(p->data, out + got, p->len);
        got += p->len;
    }
    /* Out of credit: one CREDIT_REQUEST, then silence. */
    expect_pkt(f, p, VSOCK_OP_CREDIT_REQUEST, hport, H2G_PORT);
    assert_false(recv_pkt(f, p, QUIET_MS));
    /* The guest consumed 100 bytes: 100 more may come, not more. */
    send_pkt(f, H2G_PORT, hport, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0, 100, 100);
    while (got < 200) {
        expect_pkt(f, p, VSOCK_OP_RW, hport, H2G_PORT);
        assert_true(got + p->len <= 200);
        assert_memory_equal(p->data, out + got, p->len);
        got += p->len;
    }
    expect_pkt(f, p, VSOCK_OP_CREDIT_REQUEST, hport, H2G_PORT);
    /* A bigger buffer: the rest flows. */
    send_pkt(f, H2G_PORT, hport, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0, 4096, 200);
    while (got < 300) {
        expect_pkt(f, p, VSOCK_OP_RW, hport, H2G_PORT);
        assert_memory_equal(p->data, out + got, p->len);
        got += p->len;
    }
    assert_false(recv_pkt(f, p, QUIET_MS));
    /* A guest claiming it forwarded more than was sent gets no extra credit. */
    send_pkt(f, H2G_PORT, hport, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0, 4096, 0x80000000u);
    assert_int_equal(write(host, out, 10), 10);
    expect_pkt(f, p, VSOCK_OP_CREDIT_REQUEST, hport, H2G_PORT);
    assert_false(recv_pkt(f, p, QUIET_MS));
    close(host);
    free(p);
    fixture_free(f);
}

/*
 * A host that does not read: the device takes guest data only within the
 * credit it advertised, buffers honestly, and delivers everything once the
 * host reads. A guest going beyond its credit is reset.
 */
static void test_credit_from_guest(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct pkt *p = pkt_new();
    int host = guest_connect(f, p, GUEST_PORT, 65536);
    enum { CHUNK = 16384, MAXSENT = 4 << 20 };
    uint8_t *data = malloc(MAXSENT);
    assert_non_null(data);
    for (size_t i = 0; i < MAXSENT; i++)
        data[i] = (uint8_t)(i * 7 + (i >> 12));
    uint32_t sent = 0, fwd = 0, buf_alloc = VSOCK_CONN_BUF;
    for (;;) {
        while (recv_pkt(f, p, 0)) {
            assert_int_equal(le16toh(p->h.op), VSOCK_OP_CREDIT_UPDATE);
            fwd = le32toh(p->h.fwd_cnt);
            buf_alloc = le32toh(p->h.buf_alloc);
        }
        if (buf_alloc - (sent - fwd) < CHUNK) {
            /* No credit for another chunk: ask, and stop when the answer gives none. */
            send_pkt(f, GUEST_PORT, G2H_PORT, VSOCK_OP_CREDIT_REQUEST, 0, NULL, 0, 65536, 0);
            expect_pkt(f, p, VSOCK_OP_CREDIT_UPDATE, G2H_PORT, GUEST_PORT);
            fwd = le32toh(p->h.fwd_cnt);
            if (buf_alloc - (sent - fwd) < CHUNK)
                break;
        }
        assert_true(sent + CHUNK <= MAXSENT);
        send_pkt(f, GUEST_PORT, G2H_PORT, VSOCK_OP_RW, 0, data + sent, CHUNK, 65536, 0);
        sent += CHUNK;
    }
    /* The device holds what the socket did not take, no more than it advertised. */
    assert_true(sent - fwd <= VSOCK_CONN_BUF);
    assert_true(sent - fwd > VSOCK_CONN_BUF - CHUNK);

    /* The host reads it all, in order; the guest hears that the buffer drained. */
    uint8_t *in = malloc(sent);
    assert_non_null(in);
    uint32_t got = 0;
    while (got < sent) {
        assert_true(sock_readable(host, WAIT_MS));
        ssize_t n = read(host, in + got, sent - got);
        assert_true(n > 0);
        got += (uint32_t)n;
    }
    assert_memory_equal(in, data, sent);
    while (fwd != sent) {
        expect_pkt(f, p, VSOCK_OP_CREDIT_UPDATE, G2H_PORT, GUEST_PORT);
        fwd = le32toh(p->h.fwd_cnt);
    }

    /* Now fill the credit again and go beyond it: the connection is reset. */
    uint32_t beyond = MAXSENT;
    uint32_t off = 0;
    bool reset = false;
    while (off < beyond && !reset) {
        send_pkt(f, GUEST_PORT, G2H_PORT, VSOCK_OP_RW, 0, data + off, CHUNK, 65536, 0);
        off += CHUNK;
        while (recv_pkt(f, p, 0)) {
            if (le16toh(p->h.op) == VSOCK_OP_RST)
                reset = true;
        }
    }
    if (!reset)
        reset = recv_pkt(f, p, WAIT_MS) && le16toh(p->h.op) == VSOCK_OP_RST;
    assert_true(reset);
    free(in);
    free(data);
    close(host);
    free(p);
    fixture_free(f);
}

static void test_malformed(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct pkt *p = pkt_new();
    int host = guest_connect(f, p, GUEST_PORT, 65536);

    /* A short header is dropped without an answer. */
    struct vsock_hdr h = hdr(GUEST_PORT, G2H_PORT, VSOCK_OP_RW, 0, 0, 65536, 0);
    send_raw(f, &h, 20, NULL, 0);
    assert_false(recv_pkt(f, p, QUIET_MS));

    /* Unknown op on a live connection: RST, and the host side is closed. */
    send_pkt(f, GUEST_PORT, G2H_PORT, 99, 0, NULL, 0, 65536, 0);
    expect_pkt(f, p, VSOCK_OP_RST, G2H_PORT, GUEST_PORT);
    char c;
    assert_true(sock_readable(host, WAIT_MS));
    assert_int_equal(read(host, &c, 1), 0);
    close(host);

    /* len larger than the chain holds: RST, nothing reaches the host. */
    host = guest_connect(f, p, GUEST_PORT + 1, 65536);
    h = hdr(GUEST_PORT + 1, G2H_PORT, VSOCK_OP_RW, 0, 1000, 65536, 0);
    send_raw(f, &h, sizeof(h), "0123456789", 10);
    expect_pkt(f, p, VSOCK_OP_RST, G2H_PORT, GUEST_PORT + 1);
    assert_true(sock_readable(host, WAIT_MS));
    assert_int_equal(read(host, &c, 1), 0);
    close(host);

    /* Wrong destination CID, wrong source CID, a datagram type: RST. */
    h = hdr(GUEST_PORT, G2H_PORT, VSOCK_OP_REQUEST, 0, 0, 65536, 0);
    h.dst_cid = htole64(7);
    send_raw(f, &h, sizeof(h), NULL, 0);
    expect_pkt(f, p, VSOCK_OP_RST, G2H_PORT, GUEST_PORT);
    h = hdr(GUEST_PORT, G2H_PORT, VSOCK_OP_REQUEST, 0, 0, 65536, 0);
    h.src_cid = htole64(2);
    send_raw(f, &h, sizeof(h), NULL, 0);
    expect_pkt(f, p, VSOCK_OP_RST, G2H_PORT, GUEST_PORT);
    h = hdr(GUEST_PORT, G2H_PORT, VSOCK_OP_REQUEST, 0, 0, 65536, 0);
    h.type = htole16(2);
    send_raw(f, &h, sizeof(h), NULL, 0);
    expect_pkt(f, p, VSOCK_OP_RST, G2H_PORT, GUEST_PORT);
    /* A port nobody configured, and data for a connection that does not exist. */
    send_pkt(f, GUEST_PORT, 999, VSOCK_OP_REQUEST, 0, NULL, 0, 65536, 0);
    expect_pkt(f, p, VSOCK_OP_RST, 999, GUEST_PORT);
    send_pkt(f, GUEST_PORT + 7, G2H_PORT, VSOCK_OP_RW, 0, "x", 1, 65536, 0);
    expect_pkt(f, p, VSOCK_OP_RST, G2H_PORT, GUEST_PORT + 7);
    /* A RST is never answered. */
    send_pkt(f, GUEST_PORT + 8, G2H_PORT, VSOCK_OP_RST, 0, NULL, 0, 0, 0);
    assert_false(recv_pkt(f, p, QUIET_MS));
    /* A response to a request we never made: RST. */
    send_pkt(f, GUEST_PORT, G2H_PORT, VSOCK_OP_RESPONSE, 0, NULL, 0, 65536, 0);
    expect_pkt(f, p, VSOCK_OP_RST, G2H_PORT, GUEST_PORT);

    /* The device is still healthy: a new connection works. */
    assert_int_equal(vdrv_status(&f->drv) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
    host = guest_connect(f, p, GUEST_PORT + 2, 65536);
    send_pkt(f, GUEST_PORT + 2, G2H_PORT, VSOCK_OP_RW, 0, "ok", 2, 65536, 0);
    char buf[4];
    assert_true(sock_readable(host, WAIT_MS));
    assert_int_equal(read(host, buf, sizeof(buf)), 2);
    close(host);
    free(p);
    fixture_free(f);
}

static void test_connection_limit(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct pkt *p = pkt_new();
    int hosts[VSOCK_MAX_CONNS];
    for (int i = 0; i < VSOCK_MAX_CONNS; i++)
        hosts[i] = guest_connect(f, p, GUEST_PORT + (uint32_t)i, 65536);
    send_pkt(f, GUEST_PORT + VSOCK_MAX_CONNS, G2H_PORT, VSOCK_OP_REQUEST, 0, NULL, 0, 65536, 0);
    expect_pkt(f, p, VSOCK_OP_RST, G2H_PORT, GUEST_PORT + VSOCK_MAX_CONNS);
    /* A host connection beyond the limit is closed at once. */
    int extra = unix_connect(f->h2g_path);
    assert_true(extra >= 0);
    char c;
    assert_true(sock_readable(extra, WAIT_MS));
    assert_int_equal(read(extra, &c, 1), 0);
    close(extra);
    assert_false(recv_pkt(f, p, QUIET_MS));
    /* One ends: there is room again. */
    send_pkt(f, GUEST_PORT, G2H_PORT, VSOCK_OP_RST, 0, NULL, 0, 0, 0);
    close(hosts[0]);
    hosts[0] = guest_connect(f, p, GUEST_PORT + VSOCK_MAX_CONNS, 65536);
    for (int i = 0; i < VSOCK_MAX_CONNS; i++)
        close(hosts[i]);
    free(p);
    fixture_free(f);
}

static void test_reset_closes_connections(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct pkt *p = pkt_new();
    int a = guest_connect(f, p, GUEST_PORT, 65536);
    uint32_t hport;
    int b = host_connect(f, p, 65536, &hport);
    /* The driver resets the device: both host sockets see the end. */
    vdrv_write(&f->drv, VIRTIO_PCI_COMMON_STATUS, 0, 1);
    char c;
    assert_true(sock_readable(a, WAIT_MS));
    assert_int_equal(read(a, &c, 1), 0);
    assert_true(sock_readable(b, WAIT_MS));
    assert_int_equal(read(b, &c, 1), 0);
    /* Until the driver is back, host connections are refused. */
    int x = unix_connect(f->h2g_path);
    assert_true(x >= 0);
    assert_true(sock_readable(x, WAIT_MS));
    assert_int_equal(read(x, &c, 1), 0);
    close(x);
    close(a);
    close(b);
    free(p);
    fixture_free(f);
}

/*
 * One muxer for every vsock entry (and --timesync's port). The old case
 * "a second vsock entry returns 0 and no device" is gone: the board now
 * makes one slot per vsock device (src/vmm/backends.c), so the caller
 * creates the device once. What stays: the muxer holds every entry's
 * socket, outlives the device (a guest reboot), and serves the next one.
 */
static void test_one_muxer_for_all_ports(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    struct stat st;
    assert_int_equal(stat(f->h2g_path, &st), 0); /* the second entry's socket */
    assert_true(S_ISSOCK(st.st_mode));

    /* The device goes (a reboot): the muxer's socket stays. */
    virtio_dev_destroy(f->dev);
    f->dev = NULL;
    assert_int_equal(stat(f->h2g_path, &st), 0);

    /* A new device on the same muxer: a host connection reaches its guest. */
    device_up(f);
    struct pkt *p = pkt_new();
    int host = unix_connect(f->h2g_path);
    assert_true(host >= 0);
    assert_true(recv_pkt(f, p, WAIT_MS));
    assert_int_equal(le16toh(p->h.op), VSOCK_OP_REQUEST);
    assert_int_equal(le32toh(p->h.dst_port), H2G_PORT);
    uint32_t hport = le32toh(p->h.src_port);
    send_pkt(f, H2G_PORT, hport, VSOCK_OP_RST, 0, NULL, 0, 0, 0);
    char c;
    assert_true(sock_readable(host, WAIT_MS));
    assert_int_equal(read(host, &c, 1), 0);
    close(host);
    free(p);
    /* fixture_free destroys the muxer, which removes the socket. */
    fixture_free(f);
}

static void test_start_errors(void **state)
{
    (void)state;
    char dir[] = "/tmp/test-vsock-err.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], path2[128];
    snprintf(path, sizeof(path), "%s/h2g.sock", dir);
    snprintf(path2, sizeof(path2), "%s/other.sock", dir);
    struct vsock_muxer *mx = NULL;

    /* A regular file where the socket should go: refused and left alone. */
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    struct dev_vsock conn = {H2G_PORT, path, .listen = false};
    const struct dev_vsock *one[] = {&conn};
    assert_int_equal(vsock_muxer_create(one, 1, &mx), -EEXIST);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    unlink(path);

    /* A stale socket (nobody listening) is replaced; a live one is refused. */
    int l = unix_listener(path);
    close(l);
    assert_int_equal(vsock_muxer_create(one, 1, &mx), 0);
    assert_int_equal(vsock_muxer_create(one, 1, &(struct vsock_muxer *){NULL}), -EADDRINUSE);
    vsock_muxer_destroy(mx);
    assert_int_equal(access(path, F_OK), -1);

    /* A duplicate port fails the start and removes the socket made before it. */
    struct dev_vsock dup = {H2G_PORT, path2, .listen = true};
    const struct dev_vsock *two[] = {&conn, &dup};
    assert_int_equal(vsock_muxer_create(two, 2, &mx), -EINVAL);
    assert_int_equal(access(path, F_OK), -1);

    /* A directory that does not exist. */
    struct dev_vsock missing = {H2G_PORT, "/nonexistent-dir/x.sock", .listen = false};
    const struct dev_vsock *m1[] = {&missing};
    assert_int_equal(vsock_muxer_create(m1, 1, &mx), -ENOENT);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_timesync_port),
        cmocka_unit_test(test_guest_connects),
        cmocka_unit_test(test_guest_half_close_then_host),
        cmocka_unit_test(test_host_error_resets),
        cmocka_unit_test(test_guest_connect_refused),
        cmocka_unit_test(test_host_connects),
        cmocka_unit_test(test_host_connect_guest_refuses),
        cmocka_unit_test(test_host_connect_guest_silent),
        cmocka_unit_test(test_credit_to_guest),
        cmocka_unit_test(test_credit_from_guest),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_connection_limit),
        cmocka_unit_test(test_reset_closes_connections),
        cmocka_unit_test(test_one_muxer_for_all_ports),
        cmocka_unit_test(test_start_errors),
    };
    return cmocka_run_group_tests_name("virtio-vsock", tests, NULL, NULL);
}
