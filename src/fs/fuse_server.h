/*
 * A FUSE server (protocol 7.31, linux/fuse.h) passing requests through to
 * one host directory, for virtio-fs (virtio 1.2, section 5.11). The
 * transport hands over each request as the iovecs of one virtqueue chain:
 * device-readable (fuse_in_header + arguments) and device-writable
 * (fuse_out_header + reply); the server checks every length against them.
 *
 * Confinement: the guest only ever names single path components relative
 * to a directory it already holds (an O_PATH fd inside the share), and no
 * host call made for it follows a symlink. See docs/fs.md.
 */
#ifndef KRUNKIT_FS_FUSE_SERVER_H
#define KRUNKIT_FS_FUSE_SERVER_H

#include <stdint.h>
#include <sys/uio.h>

struct fuse_server;
struct fs_share;

/*
 * A server for one guest session on share (fs/fs_share.h), which it
 * borrows: it takes a reference and opens nothing by path. -errno after
 * logging why.
 */
int fuse_server_create(struct fs_share *share, struct fuse_server **out);
/* Close every nodeid and handle (their budget goes back) and drop the share reference. */
void fuse_server_destroy(struct fuse_server *s);
/* Forget every nodeid and handle the guest had (device reset); INIT is expected next. */
void fuse_server_reset(struct fuse_server *s);

/*
 * Serve one request. in/nin: the readable buffers (in_len bytes in all),
 * out/nout: the writable ones (out_len bytes). Returns the bytes written
 * into out: 0 when the request takes no reply (FORGET, BATCH_FORGET,
 * INTERRUPT) or when out cannot even hold a fuse_out_header.
 */
uint32_t fuse_server_handle(struct fuse_server *s, const struct iovec *in, unsigned nin,
                            uint64_t in_len, const struct iovec *out, unsigned nout,
                            uint64_t out_len);

/*
 * Most nodeids and open handles this server's guest may hold at once
 * (each is a host fd; at most FS_MAX_INODES and FS_MAX_HANDLES, the
 * defaults); past them LOOKUP and OPEN fail with ENFILE. Every one of
 * them also comes out of the process-wide budget (vmm/fd_budget.h), shared
 * by all shares: when that is spent they fail with EMFILE.
 */
void fuse_server_set_limits(struct fuse_server *s, unsigned max_inodes, unsigned max_handles);

/* Nodeids and handles alive now (for tests: FORGET/RELEASE really drop them). */
unsigned fuse_server_inode_count(const struct fuse_server *s);
unsigned fuse_server_handle_count(const struct fuse_server *s);

#endif
