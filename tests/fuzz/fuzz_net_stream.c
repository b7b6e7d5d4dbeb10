/*
 * libFuzzer target for the unixstream de-framer (src/net/unixstream.c):
 * what a hostile or broken peer (passt, socket_vmnet) may send. The input
 * is the byte stream itself; byte 0 seeds how the stream is cut into
 * writes and what the receiver does with each frame (receive it into 1-3
 * buffers, drop it, or abandon it part-way as a device reset does).
 *
 * Besides the sanitizers, a reference parse of the same bytes checks every
 * answer: each announced length is the next prefix and lies in
 * 1..NET_FRAME_MAX, each received frame holds exactly the bytes that
 * followed it, "nothing yet" only while bytes are missing, and a bad
 * length (0 or too big) ends the connection, after which nothing else
 * is read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "net/net_backend.h"

static uint32_t rng_state;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void die(const char *what, long a, long b)
{
    fprintf(stderr, "fuzz_net_stream: %s (%ld, %ld)\n", what, a, b);
    abort();
}

static uint32_t be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static struct {
    const uint8_t *stream;
    size_t len;     /* whole stream */
    size_t written; /* bytes the peer has sent so far */
    size_t pos;     /* where the reference expects the next prefix */
    bool in_frame;  /* a length was announced and the frame not yet taken */
    uint32_t frame_len;
    unsigned action;
    bool dead;
} ref;

static uint8_t frame_buf[NET_FRAME_MAX];

/* Check an answer of "nothing yet": only valid while bytes are missing. */
static void check_eagain(size_t need_until)
{
    if (ref.written >= need_until)
        die("no progress although the bytes are there", (long)ref.written, (long)need_until);
}

static void check_dead(void)
{
    /* Dead is right at EOF (all written, peer closed) or on a bad prefix. */
    if (ref.pos + 4 <= ref.written && !ref.in_frame) {
        uint32_t l = be32_at(ref.stream + ref.pos);
        if (l != 0 && l <= NET_FRAME_MAX && ref.written < ref.len)
            die("disconnected on a valid length", (long)l, (long)ref.pos);
    } else if (ref.written < ref.len) {
        die("disconnected with the peer still there", (long)ref.written, (long)ref.len);
    }
    ref.dead = true;
}

static void drive(struct net_backend *be, bool peer_gone)
{
    for (;;) {
        if (!ref.in_frame) {
            ssize_t l = net_backend_next_len(be);
            if (l == -EAGAIN) {
                if (peer_gone)
                    die("nothing yet after the peer closed", 0, 0);
                check_eagain(ref.pos + 4);
                return;
            }
            if (l < 0) {
                check_dead();
                return;
            }
            if (ref.pos + 4 > ref.written)
                die("length announced before its prefix arrived", (long)ref.pos, (long)ref.written);
            uint32_t want = be32_at(ref.stream + ref.pos);
            if ((uint32_t)l != want || l < 1 || l > (ssize_t)NET_FRAME_MAX)
                die("announced length differs from the prefix", (long)l, (long)want);
            ref.pos += 4;
            ref.in_frame = true;
            ref.frame_len = (uint32_t)l;
            ref.action = rnd() % 4;
        }
        if (ref.action == 2) {
            int rc = net_backend_drop(be);
            ref.pos += ref.frame_len;
            ref.in_frame = false;
            if (rc == -EAGAIN) {
                check_eagain(ref.pos);
                return;
            }
            if (rc < 0 && rc != -EPIPE)
                die("drop failed", rc, 0);
            continue; /* -EPIPE: the next length reads it again */
        }
        /* Receive into up to three pieces that hold the frame. */
        struct iovec iov[3];
        uint32_t l = ref.frame_len, a = l ? rnd() % (l + 1) : 0,
                 b = l - a ? rnd() % (l - a + 1) : 0;
        iov[0] = (struct iovec){frame_buf, a};
        iov[1] = (struct iovec){frame_buf + a, b};
        iov[2] = (struct iovec){frame_buf + a + b, NET_FRAME_MAX - a - b};
        int rc = net_backend_recv(be, iov, 3);
        if (rc == -EAGAIN) {
            if (peer_gone)
                die("receive waits after the peer closed", 0, 0);
            check_eagain(ref.pos + l);
            if (ref.action == 3) {
                /* Abandoned part-way, like a reset: the rest must be skipped. */
                net_backend_abort_recv(be);
                ref.pos += l;
                ref.in_frame = false;
            }
            return;
        }
        if (rc < 0) {
            ref.in_frame = false;
            check_dead();
            return;
        }
        if (memcmp(frame_buf, ref.stream + ref.pos, l))
            die("received frame differs from the stream", (long)ref.pos, (long)l);
        ref.pos += l;
        ref.in_frame = false;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        log_init(0, -1);
        ready = true;
    }
    if (size < 1)
        return 0;
    rng_state = 0x9e3779b9u ^ data[0] ^ (uint32_t)size << 8;
    memset(&ref, 0, sizeof(ref));
    ref.stream = data + 1;
    ref.len = size - 1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        die("socketpair", errno, 0);
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    struct net_backend *be;
    if (net_backend_from_socket(sv[1], NET_FRAMING_STREAM, "fuzz", &be))
        die("backend", 0, 0);
    while (ref.written < ref.len && !ref.dead) {
        size_t chunk = 1 + rnd() % ((data[0] & 0x80) ? 4096 : 16);
        if (chunk > ref.len - ref.written)
            chunk = ref.len - ref.written;
        ssize_t w = write(sv[0], ref.stream + ref.written, chunk);
        if (w <= 0)
            die("write", errno, 0);
        ref.written += (size_t)w;
        drive(be, false);
    }
    if (!ref.dead) {
        close(sv[0]);
        sv[0] = -1;
        drive(be, true);
        drive(be, true);
    }
    if (sv[0] >= 0)
        close(sv[0]);
    net_backend_close(be);
    return 0;
}
