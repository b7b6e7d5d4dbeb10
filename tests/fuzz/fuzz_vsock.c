/*
 * libFuzzer target for virtio-vsock (virtio 1.2, 5.10; src/virtio/vsock.c
 * and src/vsock/muxer.c): arbitrary packets on the transmit queue, cut
 * into descriptors anywhere, mixed with host-side activity on the real
 * UNIX sockets (connections to the connect-mode socket, writes, closes,
 * half-closes) and receive buffers of any size.
 *
 * One muxer (its sockets in a temporary directory) and one I/O loop live
 * across inputs, as the VM keeps them across guest reboots; the device on
 * them lives across inputs too, and each input starts with a driver reset,
 * which must close every connection. An input whose length is 7 mod 8
 * ends with a "reboot": the device is destroyed and a new one made on the
 * same muxer and loop. Besides the sanitizers, every used receive buffer is checked:
 * it names a buffer we posted, claims no more than its size, and is either
 * empty (too small for a header) or one well-formed host-to-guest packet
 * whose header length matches. The device must never ask for a reset.
 *
 * Input: a program of operations, one byte each plus arguments (OP_*).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../unit/support/fake_guest_mem.h"
#include "../unit/support/fake_hooks.h"
#include "../unit/support/virtio_driver.h"
#include "core/config.h"
#include "core/log.h"
#include "virtio/devices.h"
#include "virtio/pci.h"
#include "vmm/evloop.h"
#include "vsock/muxer.h"

#define RAM_SIZE (4u << 20)
#define HEAP_START 0x10000
#define RXQ 0
#define TXQ 1
#define EVQ 2
#define QSIZE 64
#define MAX_RX_OUT 32
#define MAX_HOST 8
#define MAX_PKT 4096
#define MAX_OPS 48
#define WAIT_MS 2000

enum op {
    OP_PACKET,       /* u8 shape, u8 op, u8 ports, u16 len, u8 ndesc, payload */
    OP_RAW_PACKET,   /* u16 len, u8 ndesc, raw bytes (header included) */
    OP_HOST_CONNECT, /* connect to the connect-mode socket */
    OP_HOST_WRITE,   /* u8 idx, u8 len */
    OP_HOST_CLOSE,   /* u8 idx (bit 7: half-close) */
    OP_RX_POST,      /* u8 count, u16 size */
    OP_SETTLE,       /* let the device run, then check the receive ring */
    OPS
};

static struct {
    bool ready;
    struct guest_mem gm;
    struct fake_vm vm;
    struct virtio_dev *dev;
    struct vsock_muxer *mx; /* the VM's: outlives the device */
    struct evloop *loop;    /* the device's kept I/O loop */
    struct vdrv drv;
    char dir[64], g2h[108], h2g[108];
    int listener;
    struct dev_config devs[2];
    struct vm_config cfg;
    int host[MAX_HOST];
    uint16_t tx_used, rx_used, rx_out;
    uint64_t rx_gpa[QSIZE];
    uint32_t rx_len[QSIZE];
    uint32_t last_hport; /* host-side port of the latest REQUEST the device sent */
} F;

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_vsock: %s\n", what);
        __builtin_trap();
    }
}

static void setup_once(void)
{
    log_init(0, -1);
    snprintf(F.dir, sizeof(F.dir), "/tmp/fuzz-vsock.XXXXXX");
    check(mkdtemp(F.dir) != NULL, "mkdtemp");
    snprintf(F.g2h, sizeof(F.g2h), "%s/g2h.sock", F.dir);
    snprintf(F.h2g, sizeof(F.h2g), "%s/h2g.sock", F.dir);
    F.listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, F.g2h);
    check(bind(F.listener, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind");
    check(listen(F.listener, 128) == 0, "listen");
    F.devs[0] = (struct dev_config){.type = DEV_VSOCK, .vsock = {1024, F.g2h, .listen = true}};
    F.devs[1] = (struct dev_config){.type = DEV_VSOCK, .vsock = {1025, F.h2g, .listen = false}};
    F.cfg.devices = F.devs;
    F.cfg.n_devices = 2;
    check(fake_guest_mem_init(&F.gm, 0, RAM_SIZE) == 0, "guest mem");
    check(fake_vm_init(&F.vm, &F.gm) == 0, "fake vm");
    check(virtio_vsock_muxer_open(&F.cfg, NULL, &F.mx) == 0, "muxer");
    check(evloop_create(&F.loop) == 0, "loop");
    F.vm.m.io_loop = F.loop;
    check(virtio_vsock_create(&F.vm.m, F.mx, &F.dev) == 0, "create");
    for (int i = 0; i < MAX_HOST; i++)
        F.host[i] = -1;
    F.ready = true;
}

static void post_rx(uint32_t size)
{
    if (F.rx_out >= MAX_RX_OUT)
        return;
    uint64_t g = vdrv_alloc(&F.drv, size, 8);
    if (!g)
        return;
    struct vdrv_buf b = {g, size, true};
    uint16_t head = vdrv_add_chain(&F.drv, RXQ, &b, 1);
    F.rx_gpa[head] = g;
    F.rx_len[head] = size;
    F.rx_out++;
}

static void start_driver(void)
{
    vdrv_init(&F.drv, &F.vm, virtio_pci_function(F.dev), HEAP_START, RAM_SIZE);
    vdrv_enable_msix(&F.drv, 4);
    check(vdrv_negotiate(&F.drv, ~0ull) & VIRTIO_CONFIG_S_FEATURES_OK, "features");
    vdrv_setup_queue(&F.drv, RXQ, QSIZE, 1);
    vdrv_setup_queue(&F.drv, TXQ, QSIZE, 2);
    vdrv_setup_queue(&F.drv, EVQ, 8, 3);
    vdrv_driver_ok(&F.drv);
    F.tx_used = F.rx_used = F.rx_out = 0;
    memset(F.rx_gpa, 0, sizeof(F.rx_gpa));
    for (int i = 0; i < 8; i++)
        post_rx(VSOCK_HDR_LEN + 1024);
    vdrv_kick(&F.drv, RXQ);
}

/* Check every receive buffer the device has used since the last call. */
static void drain_rx(void)
{
    struct vdrv *d = &F.drv;
    uint8_t *used = vdrv_host(d, d->q[RXQ].used, 4 + 8ull * QSIZE);
    uint16_t idx = __atomic_load_n((uint16_t *)(used + 2), __ATOMIC_ACQUIRE);
    while (F.rx_used != idx) {
        uint32_t id, len;
        memcpy(&id, used + 4 + 8 * (F.rx_used % QSIZE), 4);
        memcpy(&len, used + 8 + 8 * (F.rx_used % QSIZE), 4);
        F.rx_used++;
        check(id < QSIZE && F.rx_gpa[id], "used id names no posted buffer");
        check(len <= F.rx_len[id], "used length beyond the buffer");
        check(len == 0 || len >= VSOCK_HDR_LEN, "partial header");
        if (len) {
            struct vsock_hdr h;
            memcpy(&h, vdrv_host(d, F.rx_gpa[id], VSOCK_HDR_LEN), VSOCK_HDR_LEN);
            check(le64toh(h.src_cid) == VSOCK_HOST_CID && le64toh(h.dst_cid) == VSOCK_GUEST_CID,
                  "cids");
            check(le16toh(h.type) == VSOCK_TYPE_STREAM, "type");
            check(le32toh(h.len) == len - VSOCK_HDR_LEN, "header len");
            uint16_t op = le16toh(h.op);
            check(op >= VSOCK_OP_REQUEST && op <= VSOCK_OP_CREDIT_REQUEST, "op");
            check(op == VSOCK_OP_RW || h.len == 0, "payload on a control packet");
            if (op == VSOCK_OP_REQUEST)
                F.last_hport = le32toh(h.src_port);
        }
        F.rx_gpa[id] = 0;
        F.rx_out--;
    }
    vdrv_wait_used(d, RXQ, 0, 0, NULL); /* re-arm used_event like a driver */
}

static void accept_host(void)
{
    for (;;) {
        int fd = accept4(F.listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int slot = -1;
        for (int i = 0; i < MAX_HOST; i++)
            if (F.host[i] < 0)
                slot = i;
        if (slot < 0)
            close(fd);
        else
            F.host[slot] = fd;
    }
}

static void settle(void)
{
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    accept_host();
    drain_rx();
    check(!(vdrv_status(&F.drv) & VIRTIO_CONFIG_S_NEEDS_RESET), "device asked for a reset");
}

/* Put `len` bytes on the tx queue cut into `ndesc` buffers. */
static void send_chain(const uint8_t *bytes, size_t len, unsigned ndesc)
{
    struct vdrv_buf b[4];
    if (ndesc < 1)
        ndesc = 1;
    if (ndesc > 4)
        ndesc = 4;
    if (len == 0)
        ndesc = 1;
    size_t off = 0;
    for (unsigned i = 0; i < ndesc; i++) {
        size_t part = i + 1 == ndesc ? len - off : (len - off) / (ndesc - i);
        uint64_t g = vdrv_alloc(&F.drv, part ? part : 1, 8);
        if (!g)
            return;
        memcpy(vdrv_host(&F.drv, g, part), bytes + off, part);
        b[i] = (struct vdrv_buf){g, (uint32_t)part, false};
        off += part;
    }
    vdrv_add_chain(&F.drv, TXQ, b, ndesc);
    vdrv_kick(&F.drv, TXQ);
    check(vdrv_wait_used(&F.drv, TXQ, ++F.tx_used, WAIT_MS, NULL), "tx chain not completed");
}

static const uint32_t ports[] = {1024, 1025, 5000, 5001, 999, 0, 0xffffffffu};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!F.ready)
        setup_once();
    start_driver();
    size_t pos = 0;
#define TAKE(n) (pos + (n) <= size ? (pos += (n), data + pos - (n)) : NULL)
    static uint8_t pkt[VSOCK_HDR_LEN + MAX_PKT];
    for (int nops = 0; nops < MAX_OPS && pos < size; nops++) {
        uint8_t op = data[pos++] % OPS;
        const uint8_t *a;
        switch (op) {
        case OP_PACKET: {
            if (!(a = TAKE(7)))
                break;
            uint16_t len = (uint16_t)((a[3] | a[4] << 8) % (MAX_PKT + 1));
            size_t have = size - pos < len ? size - pos : len;
            struct vsock_hdr h = {
                .src_cid = htole64(a[0] & 1 ? 7 : VSOCK_GUEST_CID),
                .dst_cid = htole64(a[0] & 2 ? 3 : VSOCK_HOST_CID),
                .type = htole16(a[0] & 4 ? 2 : VSOCK_TYPE_STREAM),
                .op = htole16(a[1] % 9),
                .flags = htole32(a[0] >> 5),
                .buf_alloc = htole32(a[0] & 8 ? 64 : 65536),
                .fwd_cnt = htole32(a[0] & 16 ? 0x80000000u : 0),
            };
            uint8_t pp = a[2];
            h.src_port = htole32(ports[(pp & 7) % 7]);
            h.dst_port = htole32((pp & 0x40) ? F.last_hport : ports[((pp >> 3) & 7) % 7]);
            if (pp & 0x80)
                h.src_port = htole32(1025);
            h.len = htole32((a[0] & 0x80) ? len + 16u : (uint32_t)have);
            memcpy(pkt, &h, sizeof(h));
            memcpy(pkt + VSOCK_HDR_LEN, data + pos, have);
            pos += have;
            send_chain(pkt, VSOCK_HDR_LEN + have, a[5] % 5);
            (void)a[6];
            break;
        }
        case OP_RAW_PACKET: {
            if (!(a = TAKE(3)))
                break;
            size_t len = (size_t)(a[0] | a[1] << 8) % (VSOCK_HDR_LEN + MAX_PKT + 1);
            if (len > size - pos)
                len = size - pos;
            send_chain(data + pos, len, a[2] % 5);
            pos += len;
            break;
        }
        case OP_HOST_CONNECT:
            for (int i = 0; i < MAX_HOST; i++) {
                if (F.host[i] >= 0)
                    continue;
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                struct sockaddr_un sa = {.sun_family = AF_UNIX};
                strcpy(sa.sun_path, F.h2g);
                if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                    F.host[i] = fd;
                else if (fd >= 0)
                    close(fd);
                break;
            }
            break;
        case OP_HOST_WRITE: {
            if (!(a = TAKE(2)))
                break;
            int fd = F.host[a[0] % MAX_HOST];
            if (fd >= 0) {
                uint8_t buf[256];
                memset(buf, a[1], sizeof(buf));
                if (send(fd, buf, a[1], MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN)
                    break;
            }
            break;
        }
        case OP_HOST_CLOSE: {
            if (!(a = TAKE(1)))
                break;
            int *fd = &F.host[a[0] % MAX_HOST];
            if (*fd >= 0 && (a[0] & 0x80)) {
                shutdown(*fd, SHUT_WR);
            } else if (*fd >= 0) {
                close(*fd);
                *fd = -1;
            }
            break;
        }
        case OP_RX_POST: {
            if (!(a = TAKE(3)))
                break;
            for (unsigned i = 0; i < (a[0] & 7u); i++)
                post_rx((uint32_t)(a[1] | a[2] << 8) % 2048u + 1);
            vdrv_kick(&F.drv, RXQ);
            break;
        }
        case OP_SETTLE:
            settle();
            break;
        }
    }
    settle();
    /* A driver reset ends every connection: host sockets see EOF or an error. */
    vdrv_write(&F.drv, VIRTIO_PCI_COMMON_STATUS, 0, 1);
    for (int i = 0; i < MAX_HOST; i++) {
        if (F.host[i] < 0)
            continue;
        struct pollfd p = {.fd = F.host[i], .events = POLLIN};
        check(poll(&p, 1, WAIT_MS) == 1, "connection still open after a device reset");
        close(F.host[i]);
        F.host[i] = -1;
    }
    accept_host();
    for (int i = 0; i < MAX_HOST; i++) {
        if (F.host[i] >= 0)
            close(F.host[i]);
        F.host[i] = -1;
    }
    if (size % 8 == 7) {
        /* A guest reboot: a new device on the kept muxer and loop. */
        virtio_dev_destroy(F.dev);
        F.dev = NULL;
        check(virtio_vsock_create(&F.vm.m, F.mx, &F.dev) == 0, "create after a reboot");
    }
    return 0;
}
