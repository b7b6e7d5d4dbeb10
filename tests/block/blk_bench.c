/*
 * blk_bench: drives the block layer's asynchronous interface the way
 * virtio-blk does (one submitting thread, completions from the completion
 * fd) and prints IOPS and throughput, for comparison with
 * `qemu-img bench` on the same image. Not part of `make check`:
 *
 *   make build/blk_bench
 *   build/blk_bench IMAGE raw|qcow2 read|write|randread|randwrite BS DEPTH SECONDS
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/block.h"

struct slot {
    struct blk_req req;
    struct iovec iov;
};

static uint64_t done_count, failed;
static struct slot *slots;
static unsigned *free_list, nfree;

static void on_done(struct blk_req *req)
{
    done_count++;
    if (req->result < 0)
        failed++;
    free_list[nfree++] = (unsigned)((struct slot *)req->opaque - slots);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr,
                "usage: %s IMAGE raw|qcow2 read|write|randread|randwrite BS DEPTH "
                "SECONDS\n",
                argv[0]);
        return 2;
    }
    enum blk_format fmt = strcmp(argv[2], "qcow2") == 0 ? BLK_FMT_QCOW2 : BLK_FMT_RAW;
    bool write = strstr(argv[3], "write") != NULL;
    bool rnd = strncmp(argv[3], "rand", 4) == 0;
    uint64_t bs = strtoull(argv[4], NULL, 0);
    unsigned depth = (unsigned)atoi(argv[5]);
    double seconds = atof(argv[6]);
    struct blk_image *img;

    if (blk_open(argv[1], fmt, !write, NULL, &img) < 0)
        return 1;
    uint64_t blocks = blk_size(img) / bs, next = 0, rng = 88172645463325252ull;
    slots = calloc(depth, sizeof(*slots));
    uint8_t *buf = aligned_alloc(4096, depth * bs);
    memset(buf, 0x5a, depth * bs);
    int fd = blk_completion_fd(img);
    uint64_t submitted = 0;
    double start = now(), end = start + seconds;

    for (unsigned i = 0; i < depth; i++) {
        slots[i].iov = (struct iovec){buf + i * bs, bs};
        slots[i].req.iov = &slots[i].iov;
        slots[i].req.iovcnt = 1;
        slots[i].req.op = write ? BLK_OP_WRITE : BLK_OP_READ;
        slots[i].req.done = on_done;
    }
    /* Keep `depth` requests in flight; a slot is free again once done. */
    free_list = calloc(depth, sizeof(*free_list));
    nfree = depth;
    for (unsigned i = 0; i < depth; i++)
        free_list[i] = i;
    while (now() < end || submitted > done_count) {
        while (nfree && now() < end) {
            struct slot *s = &slots[free_list[--nfree]];
            uint64_t blk;
            if (rnd) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                blk = rng % blocks;
            } else {
                blk = next++ % blocks;
            }
            s->req.offset = blk * bs;
            s->req.opaque = s;
            if (blk_submit(img, &s->req) < 0)
                return 1;
            submitted++;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 100);
        blk_complete(img);
    }
    double elapsed = now() - start;
    blk_close(img);
    printf("%s %s bs=%llu depth=%u: %.0f IOPS, %.1f MiB/s (%llu failed)\n", argv[2], argv[3],
           (unsigned long long)bs, depth, done_count / elapsed,
           done_count * (double)bs / elapsed / (1 << 20), (unsigned long long)failed);
    return failed ? 1 : 0;
}
