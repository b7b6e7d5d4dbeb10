/*
 * virtio-net (src/virtio/net.c) driven as a guest would, through the fake
 * machine and guest RAM, with a socketpair as the peer (fd= backend):
 * transmit framing on stream and datagram sockets, one interrupt per
 * transmit pass, receive with a correct header and num_buffers, mergeable
 * buffers, frames waiting in the socket for buffers, a stream split
 * anywhere, backpressure, hostile chains, a reset in mid-frame, and a peer
 * that disconnects or breaks the framing. The backend is the test's (as it
 * is the VM's): net_backend_open, borrowed by the device, closed after it.
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "cli/devopts.h"
#include "net/net_backend.h"
#include "support/fake_guest_mem.h"
#include "support/test_util.h"
#include "support/fake_hooks.h"
#include "support/virtio_driver.h"
#include "virtio/devices.h"
#include "virtio/pci.h"

#define RAM_SIZE (8u << 20)
#define HEAP_START 0x10000
#define WAIT_MS 5000
#define RXQ 0
#define TXQ 1
#define HDR 12
#define F_CSUM 0
#define F_MAC 5
#define F_MRG_RXBUF 15
#define F_STATUS 16

struct fixture {
    struct guest_mem gm;
    struct fake_vm vm;
    struct virtio_dev *dev;
    struct net_backend *be;
    struct vdrv drv;
    int peer; /* our end of the socketpair */
    uint16_t tx_used, rx_used;
};

/* SO_SNDBUF for the device's end of the next fixture's socketpair (0: default). */
static int next_sndbuf;

static struct fixture *fixture_new(int sock_type, const char *mac)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(fake_guest_mem_init(&f->gm, 0, RAM_SIZE), 0);
    assert_int_equal(fake_vm_init(&f->vm, &f->gm), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, sock_type | SOCK_CLOEXEC, 0, sv), 0);
    f->peer = sv[0];
    if (next_sndbuf)
        assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &next_sndbuf, sizeof(int)), 0);
    next_sndbuf = 0;
    struct dev_net cfg = {.type = sock_type == SOCK_STREAM ? NET_UNIXSTREAM : NET_UNIXGRAM,
                          .fd = sv[1]};
    if (mac) {
        assert_int_equal(parse_mac(mac, cfg.mac), 0);
        cfg.mac_set = true;
    }
    assert_int_equal(net_backend_open(&cfg, &f->be), 0);
    /*
     * The backend has its own duplicate of the inherited fd: close ours so
     * that the device's is the only one (the peer sees it hang up).
     */
    assert_int_not_equal(f->be->fd, sv[1]);
    close(sv[1]);
    assert_int_equal(virtio_net_create(&f->vm.m, &cfg, f->be, &f->dev), 0);
    vdrv_init(&f->drv, &f->vm, virtio_pci_function(f->dev), HEAP_START, RAM_SIZE);
    return f;
}

static void start(struct fixture *f, uint64_t features)
{
    vdrv_enable_msix(&f->drv, 3);
    assert_true(vdrv_negotiate(&f->drv, features) & VIRTIO_CONFIG_S_FEATURES_OK);
    assert_int_equal(vdrv_setup_queue(&f->drv, RXQ, 16, 1), 1);
    assert_int_equal(vdrv_setup_queue(&f->drv, TXQ, 16, 2), 1);
    vdrv_driver_ok(&f->drv);
}

static const uint64_t WITH_MRG = 1ull << VIRTIO_F_VERSION_1 | 1ull << F_MAC | 1ull << F_STATUS |
                                 1ull << F_MRG_RXBUF | 1ull << VIRTIO_RING_F_EVENT_IDX;
static const uint64_t NO_MRG = 1ull << VIRTIO_F_VERSION_1 | 1ull << F_MAC | 1ull << F_STATUS;

static void fixture_free(struct fixture *f)
{
    virtio_dev_destroy(f->dev);
    net_backend_close(f->be);
    if (f->peer >= 0)
        close(f->peer);
    fake_vm_destroy(&f->vm);
    fake_guest_mem_free(&f->gm);
    free(f);
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 7 + seed);
}

/* A transmit chain: the 12-byte header, then the frame cut at `split` (0: one buffer). */
static uint16_t guest_tx(struct fixture *f, size_t len, unsigned seed, size_t split)
{
    struct vdrv *d = &f->drv;
    uint64_t g = vdrv_alloc(d, HDR + len, 16);
    uint8_t *p = vdrv_host(d, g, HDR + len);
    memset(p, 0, HDR);
    fill(p + HDR, len, seed);
    struct vdrv_buf b[2];
    unsigned n = 1;
    b[0] = (struct vdrv_buf){g, (uint32_t)(HDR + len), false};
    if (split) {
        b[0].len = (uint32_t)(HDR + split);
        b[1] = (struct vdrv_buf){g + HDR + split, (uint32_t)(len - split), false};
        n = 2;
    }
    return vdrv_add_chain(d, TXQ, b, n);
}

static uint64_t guest_post_rx(struct fixture *f, uint32_t len)
{
    uint64_t g = vdrv_alloc(&f->drv, len, 16);
    memset(vdrv_host(&f->drv, g, len), 0xee, len);
    struct vdrv_buf b = {g, len, true};
    vdrv_add_chain(&f->drv, RXQ, &b, 1);
    return g;
}

static void read_all(int fd, uint8_t *buf, size_t len)
{
    assert_true(sock_read_full(fd, buf, len, WAIT_MS));
}

static void write_all(int fd, const void *buf, size_t len)
{
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The stream peer expects a frame of len bytes made by fill(seed). */
static void expect_stream_frame(int fd, size_t len, unsigned seed)
{
    uint8_t prefix[4], want_prefix[4];
    read_all(fd, prefix, 4);
    be32(want_prefix, (uint32_t)len);
    assert_memory_equal(prefix, want_prefix, 4);
    uint8_t *got = malloc(len), *want = malloc(len);
    read_all(fd, got, len);
    fill(want, len, seed);
    assert_memory_equal(got, want, len);
    free(got);
    free(want);
}

static void peer_send_stream(int fd, size_t len, unsigned seed)
{
    uint8_t *p = malloc(4 + len);
    be32(p, (uint32_t)len);
    fill(p + 4, len, seed);
    write_all(fd, p, 4 + len);
    free(p);
}

struct used_entry {
    uint32_t id, len;
};

static struct used_entry used_entry(struct fixture *f, unsigned q, uint16_t i)
{
    struct vdrv_queue *vq = &f->drv.q[q];
    uint8_t *slot = vdrv_host(&f->drv, vq->used + 4 + 8ull * (i % vq->size), 8);
    struct used_entry e;
    memcpy(&e.id, slot, 4);
    memcpy(&e.len, slot + 4, 4);
    return e;
}

static uint16_t cfg_status(struct fixture *f)
{
    return (uint16_t)vdrv_read(&f->drv, VIRTIO_BAR_DEVICE + 6, 2);
}

static void test_config(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(SOCK_STREAM, "52:54:00:12:34:56");
    assert_int_equal(pci_config_read(virtio_pci_function(f->dev), PCI_DEVICE_ID, 2), 0x1041);
    /* Device features, both halves. */
    vdrv_write(&f->drv, VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
    uint64_t feat = vdrv_read(&f->drv, VIRTIO_PCI_COMMON_DF, 4);
    vdrv_write(&f->drv, VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
    feat |= vdrv_read(&f->drv, VIRTIO_PCI_COMMON_DF, 4) << 32;
    assert_true(feat & 1ull << F_MAC);
    assert_true(feat & 1ull << F_STATUS);
    assert_true(feat & 1ull << F_MRG_RXBUF);
    assert_true(feat & 1ull << VIRTIO_F_VERSION_1);
    assert_false(feat & 1ull << F_CSUM); /* no offload without an implementation */
    start(f, WITH_MRG);
    uint8_t mac[6];
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)vdrv_read(&f->drv, VIRTIO_BAR_DEVICE + i, 1);
    static const uint8_t want[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    assert_memory_equal(mac, want, 6);
    assert_int_equal(cfg_status(f), 1); /* VIRTIO_NET_S_LINK_UP */
    fixture_free(f);

    /* No mac=: a locally administered unicast address, different each time. */
    struct fixture *a = fixture_new(SOCK_STREAM, NULL), *b = fixture_new(SOCK_STREAM, NULL);
    uint8_t ma[6], mb[6];
    for (int i = 0; i < 6; i++) {
        ma[i] = (uint8_t)vdrv_read(&a->drv, VIRTIO_BAR_DEVICE + i, 1);
        mb[i] = (uint8_t)vdrv_read(&b->drv, VIRTIO_BAR_DEVICE + i, 1);
    }
    assert_int_equal(ma[0] & 3, 2);
    assert_int_equal(mb[0] & 3, 2);
    assert_memory_not_equal(ma, mb, 6);
    fixture_free(a);
    fixture_free(b);
}

static void test_tx_stream(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(SOCK_STREAM, NULL);
    start(f, WITH_MRG);
    /* Three frames, one kick: one pass, one interrupt. */
    guest_tx(f, 60, 1, 0);
    guest_tx(f, 1514, 2, 100);
    guest_tx(f, 9000, 3, 4000);
    vdrv_kick(&f->drv, TXQ);
    f->tx_used += 3;
    uint32_t len = 99;
    assert_true(vdrv_wait_used(&f->drv, TXQ, f->tx_used, WAIT_MS, &len));
    assert_int_equal(len, 0); /* the device writes nothing into transmit buffers */
    expect_stream_frame(f->peer, 60, 1);
    expect_stream_frame(f->peer, 1514, 2);
    expect_stream_frame(f->peer, 9000, 3);
    assert_int_equal(vdrv_take_irqs(&f->drv, 2, WAIT_MS), 1);
    assert_false(sock_readable(f->peer, 50));
    fixture_free(f);
}

static void test_tx_dgram(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(SOCK_DGRAM, NULL);
    start(f, WITH_MRG);
    guest_tx(f, 1514, 5, 14);
    guest_tx(f, 42, 6, 0);
    vdrv_kick(&f->drv, TXQ);
    f->tx_used += 2;
    assert_true(vdrv_wait_used(&f->drv, TXQ, f->tx_used, WAIT_MS, NULL));
    uint8_t buf[2000], want[2000];
    assert_true(sock_readable(f->peer, WAIT_MS));
    assert_int_equal(recv(f->peer, buf, sizeof(buf), 0), 1514);
    fill(want, 1514, 5);
    assert_memory_equal(buf, want, 1514);
    assert_int_equal(recv(f->peer, buf, sizeof(buf), 0), 42);
    fill(want, 42, 6);
    assert_memory_equal(buf, want, 42);
    fixture_free(f);
}

/* A frame spread over three 1000-byte buffers, the header in the first. */
static void test_rx_mergeable(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(SOCK_STREAM, NULL);
    start(f, WITH_MRG);
    uint64_t g[4];
    for (int i = 0; i < 4; i++)
        g[i] = guest_post_rx(f, 1000);
    vdrv_kick(&f->drv, RXQ);
    peer_send_stream(f->peer, 2500, 9);
    f->rx_used += 3;
    assert_true(vdrv_wait_used(&f->drv, RXQ, f->rx_used, WAIT_MS, NULL));
    struct used_entry e0 = used_entry(f, RXQ, 0), e1 = used_entry(f, RXQ, 1),
                      e2 = used_entry(f, RXQ, 2);
    assert_int_equal(e0.len, 1000);
    assert_int_equal(e1.len, 1000);
    assert_int_equal(e2.len, 2512 - 2000);
    /* Header: no flags, GSO_NONE, num_buffers = 3. */
    uint8_t *h = vdrv_host(&f->drv, g[0], HDR);
    static const uint8_t want_hdr[HDR] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0};
    assert_memory_equal(h, want_hdr, HDR);
    uint8_t want[2500], got[2500];
    fill(want, 2500, 9);
    memcpy(got, vdrv_host(&f->drv, g[0] + HDR, 988), 988);
    memcpy(got + 988, vdrv_host(&f->drv, g[1], 1000), 1000);
    memcpy(got + 1988, vdrv_host(&f->drv, g[2], 512), 512);
    assert_memory_equal(got, want, 2500);
    /* The fourth buffer was not touched. */
    assert_int_equal(*(uint8_t *)vdrv_host(&f->drv, g[3], 1), 0xee);
    assert_true(vdrv_take_irqs(&f->drv, 1, WAIT_MS) >= 1);

    /* The next small frame goes to the fourth buffer, num_buffers 1. */
    peer_send_stream(f->peer, 60, 10);
    assert_true(vdrv_wait_used(&f->drv, RXQ, ++f->rx_used, WAIT_MS, NULL));
    assert_int_equal(used_entry(f, RXQ, 3).len, HDR + 60);
    assert_int_equal(*(uint16_t *)vdrv_host(&f->drv, g[3] + 10, 2), 1);
    fill(want, 60, 10);
    assert_memory_equal(vdrv_host(&f->drv, g[3] + HDR, 60), want, 60);
    fixture_free(f);
}

/* Without MRG_RXBUF one buffer per frame; a frame too big for it is dropped. */
static void test_rx_single_buffer(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(SOCK_DGRAM, NULL);
    start(f, NO_MRG);
    uint64_t g = guest_post_rx(f, HDR + 1514);
    vdrv_kick(&f->drv, RXQ);
    uint8_t big[3000], small[100];
    fill(big, sizeof(big), 1);
    fill(small, sizeof(small), 2);
    write_all(f->peer, big, sizeof(big));
    write_all(f->peer, small, sizeof(small));
    uint32_t len;
    assert_true(vdrv_wait_used(&f->drv, RXQ, ++f->rx_used, WAIT_MS, &len));
    assert_int_equal(len, HDR + sizeof(small));
    assert_int_equal(*(uint16_t *)vdrv_host(&f->drv, g + 10, 2), 1);
    assert_memory_equal(vdrv_host(&f->drv, g + HDR, sizeof(small)), small, sizeof(small));
    assert_false(vdrv_status(&f->drv) & VIRTIO_CONFIG_S_NEEDS_RESET);
    fixture_free(f);
}

/* A frame sent before the guest posts buffers waits in the socket. */
static void test_rx_waits_for_buffers(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(SOCK_STREAM, NULL);
    start(f, WITH_MRG);
    peer_send_stream(f->peer, 300, 4);
    peer_send_stream(f->peer, 400, 5);
    assert_false(vdrv_wait_used(&f->drv, RXQ, 1, 100, NULL));
    /* Too little room for the first frame: still nothing, and no spinning meanwhile. */
    guest_post_rx(f, 100);
    vdrv_kick(&f->drv, RXQ);
    assert_false(vdrv_wait_used(&f->drv, RXQ, 1, 100, NULL));
    clock_t c0 = clock();
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_true((double)(clock() - c0) / CLOCKS_PER_SEC < 0.1);
    uint64_t g2 = guest_post_rx(f, 2048);
    vdrv_kick(&f->drv, RXQ);
    f->rx_used += 2; /* 100 + 212 bytes of the first frame */
    assert_true(vdrv_wait_used(&f->drv, RXQ, f->rx_used, WAIT_MS, NULL));
    assert_int_equal(used_entry(f, RXQ, 0).len, 100);
    assert_int_equal(used_entry(f, RXQ, 1).len, HDR + 300 - 100);
    uint8_t want[400];
    fill(want, 300, 4);
    assert_memory_equal(vdrv_host(&f->drv, g2, 212), want + 88, 212);
    /* The second frame waits for the next buffer. */
    assert_false(vdrv_wait_used(&f->drv, RXQ, f->rx_used + 1, 100, NULL));
    uint64_t g3 = guest_post_rx(f, 2048);
    vdrv_kick(&f->drv, RXQ);
    assert_true(vdrv_wait_used(&f->drv, RXQ, ++f->rx_used, WAIT_MS, NULL));
    fill(want, 400, 5);
    assert_memory_equal(vdrv_host(&f->drv, g3 + HDR, 400), want, 400);
    fixture_free(f);
}

/* The stream splits anywhere: inside the prefix, inside the frame. */
static void test_rx_split_stream(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(SOCK_STREAM, NULL);
    start(f, WITH_MRG);
    uint64_t g = guest_post_rx(f, 4096);
    vdrv_kick(&f->drv, RXQ);
    uint8_t msg[4 + 1500];
    be32(msg, 1500);
    fill(msg + 4, 1500, 3);
    static const size_t cuts[] = {1, 3, 7, 700, 1504};
    size_t at = 0;
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        write_all(f->peer, msg + at, cuts[i] - at);
        at = cuts[i];
        if (at < sizeof(msg))
            assert_false(vdrv_wait_used(&f->drv, RXQ, 1, 30, NULL));
    }
    uint32_t len;
    assert_true(vdrv_wait_used(&f->drv, RXQ, ++f->rx_used, WAIT_MS, &len));
    assert_int_equal(len, HDR + 1500);
    assert_memory_equal(vdrv_host(&f->drv, g + HDR, 1500), msg + 4, 1500);
    fixture_free(f);
}

/* A full socket holds transmit chains back until the peer reads; order is kept. */
static void test_tx_backpressure(void **state)
{
    (void)state;
    /* A socketpair's datagrams are limited by the sender's buffer only. */
    next_sndbuf = 4096;
    struct fixture *f = fixture_new(SOCK_DGRAM, NULL);
    start(f, WITH_MRG);
    /* A 16-entry ring of 1000-byte frames, twice over, in two passes. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 15; i++)
            guest_tx(f, 1000, (unsigned)(round * 15 + i), 0);
        vdrv_kick(&f->drv, TXQ);
        if (round == 0) {
            /* The peer reads nothing yet: the send buffer fills. */
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
            assert_false(vdrv_wait_used(&f->drv, TXQ, 15, 0, NULL));
        }
        uint8_t buf[2000], want[1000];
        for (int i = 0; i < 15; i++) {
            assert_true(sock_readable(f->peer, WAIT_MS));
            assert_int_equal(recv(f->peer, buf, sizeof(buf), 0), 1000);
            fill(want, 1000, (unsigned)(round * 15 + i));
            assert_memory_equal(buf, want, 1000);
        }
        f->tx_used += 15;
        assert_true(vdrv_wait_used(&f->drv, TXQ, f->tx_used, WAIT_MS, NULL));
    }
    fixture_free(f);
}

/* A stream socket that takes part of a frame: the rest follows with no further frame. */
static void test_tx_stream_partial(void **state)
{
    (void)state;
    next_sndbuf = 4096;
    struct fixture *f = fixture_new(SOCK_STREAM, NULL);
    int small = 4096;
    assert_int_equal(setsockopt(f->peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    start(f, WITH_MRG);
    guest_tx(f, 60000, 3, 30000);
    vdrv_kick(&f->drv, TXQ);
    /* Completed once the socket took part of it (the rest is the device's copy). */
    assert_true(vdrv_wait_used(&f->drv, TXQ, ++f->tx_used, WAIT_MS, NULL));
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    expect_stream_frame(f->peer, 60000, 3);
    guest_tx(f, 100, 4, 0);
    vdrv_kick(&f->drv, TXQ);
    expect_stream_frame(f->peer, 100, 4);
    fixture_free(f);
}

/* Transmit chains a driver should never send are completed and not sent. */
static void test_tx_hostile(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(SOCK_STREAM, NULL);
    start(f, WITH_MRG);
    struct vdrv *d = &f->drv;
    uint64_t g = vdrv_alloc(d, HDR + NET_FRAME_MAX + 1, 16);
    memset(vdrv_host(d, g, HDR + NET_FRAME_MAX + 1), 0x55, HDR + NET_FRAME_MAX + 1);
    struct vdrv_buf header_only = {g, HDR, false};
    struct vdrv_buf short_hdr = {g, 5, false};
    struct vdrv_buf empty = {g, 0, false};
    struct vdrv_buf oversize = {g, HDR + NET_FRAME_MAX + 1, false};
    struct vdrv_buf writable_only = {g, 64, true};
    vdrv_add_chain(d, TXQ, &header_only, 1);
    vdrv_add_chain(d, TXQ, &short_hdr, 1);
    vdrv_add_chain(d, TXQ, &empty, 1);
    vdrv_add_chain(d, TXQ, &oversize, 1);
    vdrv_add_chain(d, TXQ, &writable_only, 1);
    guest_tx(f, 100, 8, 0);
    vdrv_kick(d, TXQ);
    f->tx_used += 6;
    assert_true(vdrv_wait_used(d, TXQ, f->tx_used, WAIT_MS, NULL));
    expect_stream_frame(f->peer, 100, 8); /* the only thing sent */
    assert_false(sock_readable(f->peer, 50));
    /* The largest legal frame goes through. */
    struct vdrv_buf max = {g, HDR + NET_FRAME_MAX, false};
    vdrv_add_chain(d, TXQ, &max, 1);
    vdrv_kick(d, TXQ);
    uint8_t *big = malloc(4 + NET_FRAME_MAX);
    read_all(f->peer, big, 4 + NET_FRAME_MAX);
    assert_int_equal(big[1], NET_FRAME_MAX >> 16);
    assert_int_equal(big[2], (NET_FRAME_MAX >> 8) & 0xff);
    assert_int_equal(big[3], NET_FRAME_MAX & 0xff);
    assert_int_equal(big[4 + NET_FRAME_MAX - 1], 0x55);
    free(big);
    assert_true(vdrv_wait_used(d, TXQ, ++f->tx_used, WAIT_MS, NULL));
    assert_false(vdrv_status(d) & VIRTIO_CONFIG_S_NEEDS_RESET);
    fixture_free(f);
}

/* Receive chains that cannot hold a header come back empty; the frame goes on. */
static void test_rx_hostile(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(SOCK_STREAM, NULL);
    start(f, WITH_MRG);
    struct vdrv *d = &f->drv;
    uint64_t tiny = vdrv_alloc(d, 16, 16);
    struct vdrv_buf b4 = {tiny, 4, true};
    struct vdrv_buf readable_only = {tiny, 16, false};
    vdrv_add_chain(d, RXQ, &b4, 1);
    vdrv_add_chain(d, RXQ, &readable_only, 1);
    uint64_t g = guest_post_rx(f, 2048);
    vdrv_kick(d, RXQ);
    peer_send_stream(f->peer, 64, 1);
    f->rx_used += 3;
    assert_true(vdrv_wait_used(d, RXQ, f->rx_used, WAIT_MS, NULL));
    assert_int_equal(used_entry(f, RXQ, 0).len, 0);
    assert_int_equal(used_entry(f, RXQ, 1).len, 0);
    assert_int_equal(used_entry(f, RXQ, 2).len, HDR + 64);
    uint8_t want[64];
    fill(want, 64, 1);
    assert_memory_equal(vdrv_host(d, g + HDR, 64), want, 64);
    /* The readable-only buffer was not written. */
    assert_int_equal(*(uint8_t *)vdrv_host(d, tiny + 4, 1), 0);
    assert_false(vdrv_status(d) & VIRTIO_CONFIG_S_NEEDS_RESET);
    fixture_free(f);
}

/* A reset in the middle of a frame: its rest is skipped, the next one is whole. */
static void test_reset_mid_frame(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(SOCK_STREAM, NULL);
    start(f, WITH_MRG);
    guest_post_rx(f, 4096);
    vdrv_kick(&f->drv, RXQ);
    uint8_t msg[4 + 2000];
    be32(msg, 2000);
    fill(msg + 4, 2000, 1);
    write_all(f->peer, msg, 1000);
    assert_false(vdrv_wait_used(&f->drv, RXQ, 1, 50, NULL));
    virtio_dev_reset(f->dev);
    vdrv_init(&f->drv, &f->vm, virtio_pci_function(f->dev), f->drv.heap_next, RAM_SIZE);
    start(f, WITH_MRG);
    uint64_t g = guest_post_rx(f, 4096);
    vdrv_kick(&f->drv, RXQ);
    write_all(f->peer, msg + 1000, sizeof(msg) - 1000);
    peer_send_stream(f->peer, 500, 2);
    uint32_t len;
    assert_true(vdrv_wait_used(&f->drv, RXQ, 1, WAIT_MS, &len));
    assert_int_equal(len, HDR + 500);
    uint8_t want[500];
    fill(want, 500, 2);
    assert_memory_equal(vdrv_host(&f->drv, g + HDR, 500), want, 500);
    fixture_free(f);
}

/* The peer goes away: transmits complete (dropped), the link goes down, no reset needed. */
static void test_peer_disconnect(void **state)
{
    (void)state;
    for (int type = 0; type < 2; type++) {
        struct fixture *f = fixture_new(type ? SOCK_DGRAM : SOCK_STREAM, NULL);
        start(f, WITH_MRG);
        guest_post_rx(f, 2048);
        vdrv_kick(&f->drv, RXQ);
        close(f->peer);
        f->peer = -1;
        for (int i = 0; i < 3; i++) {
            guest_tx(f, 100, (unsigned)i, 0);
            vdrv_kick(&f->drv, TXQ);
            assert_true(vdrv_wait_used(&f->drv, TXQ, ++f->tx_used, WAIT_MS, NULL));
        }
        int waited = 0;
        while (cfg_status(f) != 0 && waited++ < WAIT_MS) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        assert_int_equal(cfg_status(f), 0);
        assert_false(vdrv_status(&f->drv) & VIRTIO_CONFIG_S_NEEDS_RESET);
        /* The device thread is idle, not spinning on the dead socket. */
        clock_t c0 = clock();
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        clock_t c1 = clock();
        assert_true((double)(c1 - c0) / CLOCKS_PER_SEC < 0.1);
        fixture_free(f);
    }
}

/* A stream peer announcing an impossible length is disconnected, not obeyed. */
static void test_stream_protocol_error(void **state)
{
    (void)state;
    static const uint32_t bad[] = {0, NET_FRAME_MAX + 1, 0xffffffff};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fixture *f = fixture_new(SOCK_STREAM, NULL);
        start(f, WITH_MRG);
        guest_post_rx(f, 2048);
        vdrv_kick(&f->drv, RXQ);
        uint8_t prefix[4];
        be32(prefix, bad[i]);
        write_all(f->peer, prefix, 4);
        /* We hang up on it. */
        assert_true(sock_readable(f->peer, WAIT_MS));
        uint8_t byte;
        assert_int_equal(read(f->peer, &byte, 1), 0);
        assert_false(vdrv_wait_used(&f->drv, RXQ, 1, 30, NULL));
        guest_tx(f, 100, 1, 0);
        vdrv_kick(&f->drv, TXQ);
        assert_true(vdrv_wait_used(&f->drv, TXQ, ++f->tx_used, WAIT_MS, NULL));
        assert_int_equal(cfg_status(f), 0);
        fixture_free(f);
    }
}

static void test_open_errors(void **state)
{
    (void)state;
    /* The VM opens the backend before any device: these fail there, with no device made. */
    struct net_backend *be = NULL;
    struct dev_net cfg = {.type = NET_UNIXSTREAM, .path = "/nonexistent/krunkit.sock", .fd = -1};
    assert_int_equal(net_backend_open(&cfg, &be), -ENOENT);
    cfg.type = NET_UNIXGRAM;
    assert_true(net_backend_open(&cfg, &be) < 0);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    cfg = (struct dev_net){.type = NET_UNIXGRAM, .fd = pipefd[0]};
    assert_int_equal(net_backend_open(&cfg, &be), -ENOTSOCK);
    /* The refused inherited fd is still the caller's. */
    assert_true(fcntl(pipefd[0], F_GETFD) >= 0);
    cfg = (struct dev_net){.type = NET_NAT, .fd = -1};
    assert_int_equal(net_backend_open(&cfg, &be), -ENOTSUP);
    assert_null(be);
    close(pipefd[0]);
    close(pipefd[1]);
}

/*
 * fd=: the backend works on its own duplicate (close-on-exec); the
 * inherited number stays open, never closed by the device or the backend.
 */
static void test_inherited_fd_duplicated(void **state)
{
    (void)state;
    struct guest_mem gm;
    struct fake_vm vm;
    assert_int_equal(fake_guest_mem_init(&gm, 0, RAM_SIZE), 0);
    assert_int_equal(fake_vm_init(&vm, &gm), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
    int fdflags = fcntl(sv[1], F_GETFD);
    struct dev_net cfg = {.type = NET_UNIXGRAM, .fd = sv[1]};
    struct net_backend *be = NULL;
    assert_int_equal(net_backend_open(&cfg, &be), 0);
    assert_true(be->fd >= 0);
    assert_int_not_equal(be->fd, sv[1]);
    assert_true(fcntl(be->fd, F_GETFD) & FD_CLOEXEC);
    struct virtio_dev *dev = NULL;
    assert_int_equal(virtio_net_create(&vm.m, &cfg, be, &dev), 0);
    virtio_dev_destroy(dev);
    net_backend_close(be);
    /*
     * The inherited descriptor: open, its descriptor flags as they were,
     * still the socket. (Its file status flags are shared with the
     * duplicate, so O_NONBLOCK may now be set: not checked.)
     */
    assert_int_equal(fcntl(sv[1], F_GETFD), fdflags);
    assert_int_equal(send(sv[0], "ping", 4, 0), 4);
    char buf[8];
    assert_int_equal(recv(sv[1], buf, sizeof(buf), 0), 4);
    assert_memory_equal(buf, "ping", 4);
    close(sv[0]);
    close(sv[1]);
    fake_vm_destroy(&vm);
    fake_guest_mem_free(&gm);
}

/* A MAC picked at random is the backend's: a device rebuilt on it (a reboot) keeps it. */
static void test_random_mac_kept_across_devices(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(SOCK_STREAM, NULL);
    uint8_t first[6], again[6];
    for (int i = 0; i < 6; i++)
        first[i] = (uint8_t)vdrv_read(&f->drv, VIRTIO_BAR_DEVICE + i, 1);
    virtio_dev_destroy(f->dev);
    struct dev_net cfg = {.type = NET_UNIXSTREAM, .fd = -1};
    assert_int_equal(virtio_net_create(&f->vm.m, &cfg, f->be, &f->dev), 0);
    memset(&f->drv, 0, sizeof(f->drv));
    vdrv_init(&f->drv, &f->vm, virtio_pci_function(f->dev), HEAP_START, RAM_SIZE);
    for (int i = 0; i < 6; i++)
        again[i] = (uint8_t)vdrv_read(&f->drv, VIRTIO_BAR_DEVICE + i, 1);
    assert_memory_equal(first, again, 6);
    assert_int_equal(first[0] & 3, 2); /* unicast, locally administered */
    /* And it still moves frames. */
    start(f, WITH_MRG);
    guest_tx(f, 100, 3, 0);
    vdrv_kick(&f->drv, TXQ);
    assert_true(vdrv_wait_used(&f->drv, TXQ, ++f->tx_used, WAIT_MS, NULL));
    assert_true(sock_readable(f->peer, WAIT_MS));
    fixture_free(f);
}

static uint16_t used_idx(struct fixture *f, unsigned q)
{
    uint16_t v;
    memcpy(&v, vdrv_host(&f->drv, f->drv.q[q].used + 2, 2), 2);
    return v;
}

/*
 * Pause: while quiesced the device writes no guest memory even though the
 * backend has a frame for it and the guest posted a buffer and kicked;
 * the frame arrives once resumed, and so does a transmit kicked meanwhile.
 */
static void test_quiesce_holds_rx_and_tx(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(SOCK_STREAM, NULL);
    start(f, NO_MRG);
    virtio_dev_quiesce(f->dev);
    uint64_t g = guest_post_rx(f, 2048);
    vdrv_kick(&f->drv, RXQ);
    peer_send_stream(f->peer, 100, 21);
    guest_tx(f, 80, 22, 0);
    vdrv_kick(&f->drv, TXQ);
    usleep(200 * 1000);
    assert_int_equal(used_idx(f, RXQ), 0);
    assert_int_equal(used_idx(f, TXQ), 0);
    uint8_t untouched[2048];
    memset(untouched, 0xee, sizeof(untouched));
    assert_memory_equal(vdrv_host(&f->drv, g, 2048), untouched, 2048);
    struct pollfd p = {.fd = f->peer, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 0); /* nothing transmitted either */

    virtio_dev_resume(f->dev);
    assert_true(vdrv_wait_used(&f->drv, RXQ, ++f->rx_used, WAIT_MS, NULL));
    uint8_t want[100];
    fill(want, sizeof(want), 21);
    assert_memory_equal(vdrv_host(&f->drv, g + HDR, 100), want, 100);
    assert_true(vdrv_wait_used(&f->drv, TXQ, ++f->tx_used, WAIT_MS, NULL));
    expect_stream_frame(f->peer, 80, 22);
    fixture_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_tx_stream),
        cmocka_unit_test(test_tx_dgram),
        cmocka_unit_test(test_rx_mergeable),
        cmocka_unit_test(test_rx_single_buffer),
        cmocka_unit_test(test_rx_waits_for_buffers),
        cmocka_unit_test(test_rx_split_stream),
        cmocka_unit_test(test_tx_backpressure),
        cmocka_unit_test(test_tx_stream_partial),
        cmocka_unit_test(test_tx_hostile),
        cmocka_unit_test(test_rx_hostile),
        cmocka_unit_test(test_reset_mid_frame),
        cmocka_unit_test(test_peer_disconnect),
        cmocka_unit_test(test_stream_protocol_error),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_inherited_fd_duplicated),
        cmocka_unit_test(test_random_mac_kept_across_devices),
        cmocka_unit_test(test_quiesce_holds_rx_and_tx),
    };
    return cmocka_run_group_tests_name("virtio-net", tests, NULL, NULL);
}
