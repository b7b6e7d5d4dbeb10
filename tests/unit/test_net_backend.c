/*
 * Network backends (src/net): the unixstream framing (4-byte big-endian
 * length) with writes and reads split anywhere, lengths a peer must not
 * send, dropping frames; the unixgram framing with empty and oversized
 * datagrams; connecting by path (the vfkit magic first, our bound socket
 * next to the peer's or in a private directory, and gone afterwards, also
 * when connecting fails); inherited sockets whose type picks the framing.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/test_util.h"

#include "net/net_backend.h"

static void fill(uint8_t *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 13 + seed);
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void read_all(int fd, uint8_t *buf, size_t len)
{
    assert_true(sock_read_full(fd, buf, len, 5000));
}

static struct net_backend *pair(int type, enum net_framing framing, int *peer)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, type, 0, sv), 0);
    struct net_backend *be;
    assert_int_equal(net_backend_from_socket(sv[1], framing, "test", &be), 0);
    *peer = sv[0];
    return be;
}

static void test_stream_send(void **state)
{
    (void)state;
    int peer;
    struct net_backend *be = pair(SOCK_STREAM, NET_FRAMING_STREAM, &peer);
    uint8_t a[3] = {1, 2, 3}, b[300];
    fill(b, sizeof(b), 1);
    struct iovec iov[2] = {{a, 3}, {b, 300}};
    /* Only len bytes of the vector form the frame. */
    assert_int_equal(net_backend_send(be, iov, 2, 200), 0);
    uint8_t got[204];
    read_all(peer, got, sizeof(got));
    static const uint8_t prefix[4] = {0, 0, 0, 200};
    assert_memory_equal(got, prefix, 4);
    assert_memory_equal(got + 4, a, 3);
    assert_memory_equal(got + 7, b, 197);
    assert_false(sock_readable(peer, 20));
    assert_int_equal(net_backend_send(be, iov, 2, 0), -EMSGSIZE);
    assert_int_equal(net_backend_send(be, iov, 2, NET_FRAME_MAX + 1), -EMSGSIZE);
    net_backend_close(be);
    close(peer);
}

/* read_all for a peer of a backend with a frame part-sent: flush as room appears. */
static void read_all_flushing(int fd, struct net_backend *be, uint8_t *buf, size_t len)
{
    size_t got = 0;
    for (int idle = 0; got < len; idle++) {
        int rc = net_backend_flush(be);
        assert_true(rc == 0 || rc == -EAGAIN);
        assert_true(sock_readable(fd, 1000) || net_backend_tx_pending(be));
        assert_true(idle < 5000);
        ssize_t r = recv(fd, buf + got, len - got, MSG_DONTWAIT);
        if (r > 0)
            got += (size_t)r;
    }
}

/* A full socket: part of a frame goes, the rest follows before the next frame. */
static void test_stream_send_partial(void **state)
{
    (void)state;
    int peer;
    struct net_backend *be = pair(SOCK_STREAM, NET_FRAMING_STREAM, &peer);
    int small = 4096;
    assert_int_equal(setsockopt(be->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    assert_int_equal(setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    static uint8_t frame[40000];
    unsigned sent = 0;
    int rc = 0;
    bool tail_seen = false;
    /* Send until the socket refuses; some frame along the way was cut. */
    while (sent < 64) {
        fill(frame, sizeof(frame), sent);
        struct iovec v = {frame, sizeof(frame)};
        rc = net_backend_send(be, &v, 1, sizeof(frame));
        if (be->tx_tail_len > be->tx_tail_off)
            tail_seen = true;
        if (rc == -EAGAIN)
            break;
        assert_int_equal(rc, 0);
        sent++;
    }
    assert_int_equal(rc, -EAGAIN);
    assert_true(tail_seen);
    assert_true(sent >= 1);
    /* The peer reads everything: every frame whole and in order. */
    static uint8_t got[4 + sizeof(frame)], want[sizeof(frame)];
    for (unsigned i = 0; i < sent; i++) {
        read_all_flushing(peer, be, got, sizeof(got));
        uint8_t prefix[4];
        be32(prefix, sizeof(frame));
        assert_memory_equal(got, prefix, 4);
        fill(want, sizeof(want), i);
        assert_memory_equal(got + 4, want, sizeof(want));
    }
    assert_false(net_backend_tx_pending(be));
    assert_false(sock_readable(peer, 20));
    /* Room again: the next frame goes. */
    fill(frame, 100, 7);
    struct iovec v = {frame, 100};
    assert_int_equal(net_backend_send(be, &v, 1, 100), 0);
    read_all(peer, got, 104);
    fill(want, 100, 7);
    assert_memory_equal(got + 4, want, 100);
    net_backend_close(be);
    close(peer);
}

/* The peer writes a frame byte by byte: prefix split, frame split. */
static void test_stream_recv_split(void **state)
{
    (void)state;
    int peer;
    struct net_backend *be = pair(SOCK_STREAM, NET_FRAMING_STREAM, &peer);
    uint8_t msg[4 + 1000];
    be32(msg, 1000);
    fill(msg + 4, 1000, 3);
    uint8_t a[10], b[2000];
    struct iovec iov[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
    assert_int_equal(net_backend_next_len(be), -EAGAIN);
    static const size_t cuts[] = {1, 2, 4, 5, 11, 600, 1004};
    size_t at = 0;
    ssize_t len = -EAGAIN;
    int rc = -EAGAIN;
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        assert_int_equal(write(peer, msg + at, cuts[i] - at), (ssize_t)(cuts[i] - at));
        at = cuts[i];
        if (len < 0) {
            len = net_backend_next_len(be);
            if (at < 4)
                assert_int_equal(len, -EAGAIN);
        }
        if (len > 0) {
            assert_int_equal(len, 1000);
            rc = net_backend_recv(be, iov, 2);
            assert_int_equal(rc, at == sizeof(msg) ? 0 : -EAGAIN);
        }
    }
    assert_int_equal(rc, 0);
    assert_memory_equal(a, msg + 4, 10);
    assert_memory_equal(b, msg + 14, 990);
    assert_int_equal(net_backend_next_len(be), -EAGAIN);
    net_backend_close(be);
    close(peer);
}

static void test_stream_bad_lengths(void **state)
{
    (void)state;
    static const uint32_t lens[] = {0, NET_FRAME_MAX + 1, 0x80000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        int peer;
        struct net_backend *be = pair(SOCK_STREAM, NET_FRAMING_STREAM, &peer);
        uint8_t p[4];
        be32(p, lens[i]);
        assert_int_equal(write(peer, p, 4), 4);
        assert_int_equal(net_backend_next_len(be), -EPIPE);
        assert_true(be->dead);
        /* We hung up on the peer, and send nothing more. */
        uint8_t byte;
        assert_int_equal(read(peer, &byte, 1), 0);
        struct iovec v = {&byte, 1};
        assert_int_equal(net_backend_send(be, &v, 1, 1), -EPIPE);
        net_backend_close(be);
        close(peer);
    }
    /* The largest legal frame is fine. */
    int peer;
    struct net_backend *be = pair(SOCK_STREAM, NET_FRAMING_STREAM, &peer);
    uint8_t p[4];
    be32(p, NET_FRAME_MAX);
    assert_int_equal(write(peer, p, 4), 4);
    assert_int_equal(net_backend_next_len(be), NET_FRAME_MAX);
    net_backend_close(be);
    close(peer);
}

static void test_stream_peer_closes(void **state)
{
    (void)state;
    int peer;
    struct net_backend *be = pair(SOCK_STREAM, NET_FRAMING_STREAM, &peer);
    uint8_t msg[4 + 10];
    be32(msg, 100);
    assert_int_equal(write(peer, msg, sizeof(msg)), (ssize_t)sizeof(msg));
    uint8_t buf[100];
    struct iovec v = {buf, sizeof(buf)};
    assert_int_equal(net_backend_next_len(be), 100);
    assert_int_equal(net_backend_recv(be, &v, 1), -EAGAIN);
    close(peer);
    assert_int_equal(net_backend_recv(be, &v, 1), -EPIPE);
    assert_true(be->dead);
    assert_int_equal(net_backend_next_len(be), -EPIPE);
    net_backend_close(be);
}

/* Dropping a frame that is still arriving, and an abandoned receive. */
static void test_stream_drop(void **state)
{
    (void)state;
    int peer;
    struct net_backend *be = pair(SOCK_STREAM, NET_FRAMING_STREAM, &peer);
    uint8_t msg[4 + 3000];
    be32(msg, 3000);
    fill(msg + 4, 3000, 1);
    assert_int_equal(write(peer, msg, 1000), 1000);
    assert_int_equal(net_backend_next_len(be), 3000);
    assert_int_equal(net_backend_drop(be), -EAGAIN);
    assert_int_equal(write(peer, msg + 1000, sizeof(msg) - 1000), (ssize_t)(sizeof(msg) - 1000));
    uint8_t next[4 + 5] = {0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
    assert_int_equal(write(peer, next, sizeof(next)), (ssize_t)sizeof(next));
    assert_int_equal(net_backend_next_len(be), 5);
    uint8_t buf[5];
    struct iovec v = {buf, 5};
    assert_int_equal(net_backend_recv(be, &v, 1), 0);
    assert_memory_equal(buf, "hello", 5);

    /* A receive abandoned part-way: the rest is skipped. */
    assert_int_equal(write(peer, msg, 2000), 2000);
    uint8_t big[3000];
    struct iovec vb = {big, sizeof(big)};
    assert_int_equal(net_backend_next_len(be), 3000);
    assert_int_equal(net_backend_recv(be, &vb, 1), -EAGAIN);
    net_backend_abort_recv(be);
    assert_int_equal(net_backend_next_len(be), -EAGAIN);
    assert_int_equal(write(peer, msg + 2000, sizeof(msg) - 2000), (ssize_t)(sizeof(msg) - 2000));
    assert_int_equal(write(peer, next, sizeof(next)), (ssize_t)sizeof(next));
    assert_int_equal(net_backend_next_len(be), 5);
    net_backend_close(be);
    close(peer);
}

static void test_dgram(void **state)
{
    (void)state;
    int peer;
    struct net_backend *be = pair(SOCK_DGRAM, NET_FRAMING_DGRAM, &peer);
    int big = 1 << 20;
    setsockopt(peer, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(be->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    uint8_t a[7] = "abcdefg", b[1500];
    fill(b, sizeof(b), 2);
    struct iovec iov[2] = {{a, 7}, {b, 1500}};
    assert_int_equal(net_backend_send(be, iov, 2, 1000), 0);
    uint8_t got[2000];
    assert_int_equal(recv(peer, got, sizeof(got), 0), 1000);
    assert_memory_equal(got, a, 7);
    assert_memory_equal(got + 7, b, 993);

    assert_int_equal(net_backend_next_len(be), -EAGAIN);
    /* Empty and oversized datagrams are skipped; the next one is read whole. */
    static uint8_t huge[NET_FRAME_MAX + 100];
    assert_int_equal(send(peer, "", 0, 0), 0);
    assert_int_equal(send(peer, huge, sizeof(huge), 0), (ssize_t)sizeof(huge));
    assert_int_equal(send(peer, b, 1500, 0), 1500);
    assert_int_equal(net_backend_next_len(be), 1500);
    uint8_t r1[100], r2[1400];
    struct iovec riov[2] = {{r1, 100}, {r2, 1400}};
    assert_int_equal(net_backend_recv(be, riov, 2), 0);
    assert_memory_equal(r1, b, 100);
    assert_memory_equal(r2, b + 100, 1400);
    /* Drop. */
    assert_int_equal(send(peer, a, 7, 0), 7);
    assert_int_equal(send(peer, b, 20, 0), 20);
    assert_int_equal(net_backend_next_len(be), 7);
    assert_int_equal(net_backend_drop(be), 0);
    assert_int_equal(net_backend_next_len(be), 20);
    net_backend_close(be);
    close(peer);
}

struct tmpdir {
    char path[64];
};

static void tmpdir_make(struct tmpdir *t)
{
    strcpy(t->path, "/tmp/krunkit-test-net-XXXXXX");
    assert_non_null(mkdtemp(t->path));
}

static unsigned count_entries(const char *dir)
{
    int n = dir_entry_count(dir);
    assert_true(n >= 0);
    return (unsigned)n;
}

static int bind_dgram(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof(sa.sun_path));
    strcpy(sa.sun_path, path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* unixgram by path, like gvproxy in vfkit mode: magic first, answers reach us. */
static void test_unixgram_path_magic(void **state)
{
    (void)state;
    struct tmpdir t;
    tmpdir_make(&t);
    char peer_path[128];
    snprintf(peer_path, sizeof(peer_path), "%s/gv.sock", t.path);
    int server = bind_dgram(peer_path);
    struct dev_net cfg = {.type = NET_UNIXGRAM,
                          .unix_socket_path_form = true,
                          .path = peer_path,
                          .fd = -1,
                          .vfkit_magic = true};
    struct net_backend *be;
    assert_int_equal(net_backend_open(&cfg, &be), 0);
    assert_int_equal(be->framing, NET_FRAMING_DGRAM);
    assert_non_null(strstr(be->what, "unixSocketPath="));
    /* Our socket sits next to the peer's. */
    assert_non_null(be->local_path);
    assert_memory_equal(be->local_path, t.path, strlen(t.path));
    assert_int_equal(count_entries(t.path), 2);

    uint8_t buf[2000];
    struct sockaddr_un from;
    socklen_t fromlen = sizeof(from);
    assert_int_equal(recvfrom(server, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen), 4);
    assert_memory_equal(buf, "VFKT", 4);
    assert_string_equal(from.sun_path, be->local_path);
    /* Then frames, and the peer's answers to the address it saw. */
    uint8_t frame[60];
    fill(frame, sizeof(frame), 4);
    struct iovec v = {frame, sizeof(frame)};
    assert_int_equal(net_backend_send(be, &v, 1, sizeof(frame)), 0);
    assert_int_equal(recv(server, buf, sizeof(buf), 0), 60);
    assert_memory_equal(buf, frame, 60);
    assert_int_equal(sendto(server, frame, 42, 0, (struct sockaddr *)&from, fromlen), 42);
    assert_true(sock_readable(be->fd, 5000));
    assert_int_equal(net_backend_next_len(be), 42);

    net_backend_close(be);
    assert_int_equal(count_entries(t.path), 1); /* ours is gone */
    close(server);
    unlink(peer_path);
    rmdir(t.path);
}

/* Without the magic, the first datagram is the first frame. */
static void test_unixgram_no_magic(void **state)
{
    (void)state;
    struct tmpdir t;
    tmpdir_make(&t);
    char peer_path[128];
    snprintf(peer_path, sizeof(peer_path), "%s/vmnet.sock", t.path);
    int server = bind_dgram(peer_path);
    struct dev_net cfg = {.type = NET_UNIXGRAM, .path = peer_path, .fd = -1};
    struct net_backend *be;
    assert_int_equal(net_backend_open(&cfg, &be), 0);
    assert_non_null(strstr(be->what, "path="));
    uint8_t frame[20] = "first-frame", buf[64];
    struct iovec v = {frame, sizeof(frame)};
    assert_int_equal(net_backend_send(be, &v, 1, sizeof(frame)), 0);
    assert_int_equal(recv(server, buf, sizeof(buf), 0), 20);
    assert_memory_equal(buf, "first-frame", 11);
    net_backend_close(be);
    close(server);
    unlink(peer_path);
    rmdir(t.path);
}

/* A peer directory too deep for our name: a private directory, removed afterwards. */
static void test_unixgram_private_dir(void **state)
{
    (void)state;
    struct tmpdir t, tmp;
    tmpdir_make(&t);
    tmpdir_make(&tmp);
    char dir[100], peer_path[160];
    /* 100-byte socket path: fits sun_path, but krunkit-<pid>-<rnd>.sock next to it does not. */
    snprintf(dir, sizeof(dir), "%s/%s", t.path,
             "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(peer_path, sizeof(peer_path), "%s/p.sock", dir);
    assert_true(strlen(peer_path) < 108);
    int server = bind_dgram(peer_path);
    setenv("TMPDIR", tmp.path, 1);
    struct dev_net cfg = {.type = NET_UNIXGRAM, .path = peer_path, .fd = -1};
    struct net_backend *be;
    assert_int_equal(net_backend_open(&cfg, &be), 0);
    unsetenv("TMPDIR");
    assert_memory_equal(be->local_path, tmp.path, strlen(tmp.path));
    assert_int_equal(count_entries(tmp.path), 1);
    net_backend_close(be);
    assert_int_equal(count_entries(tmp.path), 0);
    assert_int_equal(count_entries(dir), 1);
    close(server);
    unlink(peer_path);
    rmdir(dir);
    rmdir(t.path);
    rmdir(tmp.path);
}

/* Nobody behind the socket: a clear error and no socket file of ours left. */
static void test_connect_refused_leaves_nothing(void **state)
{
    (void)state;
    struct tmpdir t;
    tmpdir_make(&t);
    char peer_path[128];
    snprintf(peer_path, sizeof(peer_path), "%s/dead.sock", t.path);
    close(bind_dgram(peer_path)); /* the file stays, nobody receives */
    struct dev_net cfg = {.type = NET_UNIXGRAM, .path = peer_path, .fd = -1, .vfkit_magic = true};
    struct net_backend *be = (struct net_backend *)1;
    assert_int_equal(net_backend_open(&cfg, &be), -ECONNREFUSED);
    assert_null(be);
    assert_int_equal(count_entries(t.path), 1);
    cfg.type = NET_UNIXSTREAM;
    cfg.vfkit_magic = false;
    assert_int_equal(net_backend_open(&cfg, &be), -ECONNREFUSED);
    assert_int_equal(count_entries(t.path), 1);
    unlink(peer_path);
    rmdir(t.path);
}

static void test_unixstream_path(void **state)
{
    (void)state;
    struct tmpdir t;
    tmpdir_make(&t);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/passt.sock", t.path);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 1), 0);
    struct dev_net cfg = {.type = NET_UNIXSTREAM, .path = sa.sun_path, .fd = -1};
    struct net_backend *be;
    assert_int_equal(net_backend_open(&cfg, &be), 0);
    assert_int_equal(be->framing, NET_FRAMING_STREAM);
    assert_null(be->local_path);
    int conn = accept(lfd, NULL, NULL);
    assert_true(conn >= 0);
    uint8_t frame[3] = {7, 8, 9}, got[7];
    struct iovec v = {frame, 3};
    assert_int_equal(net_backend_send(be, &v, 1, 3), 0);
    read_all(conn, got, 7);
    static const uint8_t want[7] = {0, 0, 0, 3, 7, 8, 9};
    assert_memory_equal(got, want, 7);
    net_backend_close(be);
    close(conn);
    close(lfd);
    unlink(sa.sun_path);
    rmdir(t.path);
}

/* fd=: the socket's own type decides the framing; the magic only on datagrams. */
static void test_inherited_fd(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct dev_net cfg = {.type = NET_UNIXGRAM, .fd = sv[1]};
    struct net_backend *be;
    assert_int_equal(net_backend_open(&cfg, &be), 0);
    assert_int_equal(be->framing, NET_FRAMING_STREAM);
    assert_memory_equal(be->what, "fd=", 3);
    assert_true(fcntl(sv[1], F_GETFL) & O_NONBLOCK);
    net_backend_close(be);
    close(sv[0]);

    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
    cfg = (struct dev_net){.type = NET_UNIXGRAM, .fd = sv[1], .vfkit_magic = true};
    assert_int_equal(net_backend_open(&cfg, &be), 0);
    assert_int_equal(be->framing, NET_FRAMING_DGRAM);
    uint8_t buf[16];
    assert_int_equal(recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT), 4);
    assert_memory_equal(buf, "VFKT", 4);
    net_backend_close(be);
    close(sv[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_send),
        cmocka_unit_test(test_stream_send_partial),
        cmocka_unit_test(test_stream_recv_split),
        cmocka_unit_test(test_stream_bad_lengths),
        cmocka_unit_test(test_stream_peer_closes),
        cmocka_unit_test(test_stream_drop),
        cmocka_unit_test(test_dgram),
        cmocka_unit_test(test_unixgram_path_magic),
        cmocka_unit_test(test_unixgram_no_magic),
        cmocka_unit_test(test_unixgram_private_dir),
        cmocka_unit_test(test_connect_refused_leaves_nothing),
        cmocka_unit_test(test_unixstream_path),
        cmocka_unit_test(test_inherited_fd),
    };
    return cmocka_run_group_tests_name("net-backend", tests, NULL, NULL);
}
