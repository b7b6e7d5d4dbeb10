/*
 * The FUSE server behind virtio-fs (see fuse_server.h): request framing,
 * version negotiation (FUSE_INIT, protocol 7.31) and the passthrough
 * operations, each made relative to a directory fd the guest holds.
 *
 * Rules every operation keeps, so a hostile guest stays inside the share:
 *  - a name from the guest is one component: NUL-terminated inside the
 *    request, 1..NAME_MAX bytes, no '/', never "." or "..";
 *  - it is resolved only against the parent's O_PATH fd, never
 *    following a symlink (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW,
 *    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
 *  - an inode is reopened through /proc/self/fd/N of its O_PATH fd, which
 *    lands on that very inode; symlink inodes are never reopened (the
 *    magic link would be the symlink, not something it points to);
 *  - only regular files and directories are opened, so a FIFO or device
 *    in the share cannot block the I/O thread or reach hardware.
 *
 * Privilege bits (unless the share has allowSetuid): everything runs with
 * krunkit's own credentials, so a root VMM would turn a guest's chmod 4755
 * into a setuid-root program on the host. The server therefore strips
 * S_ISUID and S_ISGID from every mode the guest gives (CREATE, MKDIR,
 * MKNOD, SETATTR), and before a WRITE, a truncation (SETATTR size, OPEN
 * or CREATE with O_TRUNC) or a chown of a regular file it clears what the
 * kernel's file_remove_privs would: S_ISUID always, S_ISGID when the group
 * may execute. The host kernel does that itself only for callers without
 * CAP_FSETID, which a root VMM has. INIT grants neither HANDLE_KILLPRIV
 * nor HANDLE_KILLPRIV_V2: the guest kernel keeps sending its own SETATTR
 * to drop the bits, which is what allowSetuid relies on; without the
 * option the server clears them whatever the guest sends.
 */
#include "fs/fuse_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/log.h"
#include "fs/fs_inode.h"
#include "fs/fs_share.h"

#define OUR_MINOR 31
#define MIN_KERNEL_MINOR 27
/* Largest READ/WRITE payload (also max_write in FUSE_INIT). */
#define MAX_RW (1u << 20)
/* Fixed arguments plus two names plus a symlink target fit in this. */
#define ARGS_MAX 8192
#define REPLY_MAX (128u * 1024)
#define MAX_IOV 1024
/* Seconds the guest may cache entries and attributes (host files can change under it). */
#define CACHE_SECONDS 1
#define OUT_HDR ((uint64_t)sizeof(struct fuse_out_header))
#define IN_HDR ((uint64_t)sizeof(struct fuse_in_header))

struct fuse_server {
    struct fs_tables t;
    struct fs_share *share; /* borrowed: one reference, dropped at destroy */
    int proc_fd;            /* the share's /proc/self/fd, to reopen O_PATH fds */
    bool allow_setid;       /* the share's allowSetuid */
    bool initialized;
    bool no_openat2;
    /* Cast to the FUSE structs: 8-byte aligned like them. */
    _Alignas(8) uint8_t args[ARGS_MAX + 1];
    _Alignas(8) uint8_t reply[REPLY_MAX];
    _Alignas(8) uint8_t dents[REPLY_MAX];
    struct iovec iov[MAX_IOV];
};

/* One request being served. */
struct req {
    struct fuse_server *s;
    struct fuse_in_header h;
    const uint8_t *arg; /* copy of the arguments (arg_len bytes, NUL after) */
    uint64_t arg_len;
    const struct iovec *in;
    unsigned nin;
    const struct iovec *out;
    unsigned nout;
    uint64_t room; /* writable bytes after the fuse_out_header */
    bool direct;   /* the payload was written into out already (READ) */
};

/* ---- buffers ---- */

static size_t iov_copy(const struct iovec *iov, unsigned n, uint64_t skip, void *buf, size_t len,
                       bool to_iov)
{
    size_t done = 0;
    for (unsigned i = 0; i < n && done < len; i++) {
        uint64_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        size_t take = (size_t)(l - skip) < len - done ? (size_t)(l - skip) : len - done;
        uint8_t *p = (uint8_t *)iov[i].iov_base + skip;
        if (to_iov)
            memcpy(p, (const uint8_t *)buf + done, take);
        else
            memcpy((uint8_t *)buf + done, p, take);
        done += take;
        skip = 0;
    }
    return done;
}

/* The `len` bytes at `skip` of iov as at most MAX_IOV iovecs in s->iov; returns the count. */
static unsigned iov_slice(struct fuse_server *s, const struct iovec *iov, unsigned n, uint64_t skip,
                          uint64_t len)
{
    unsigned k = 0;
    for (unsigned i = 0; i < n && len && k < MAX_IOV; i++) {
        uint64_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        uint64_t take = l - skip < len ? l - skip : len;
        s->iov[k++] = (struct iovec){(uint8_t *)iov[i].iov_base + skip, (size_t)take};
        len -= take;
        skip = 0;
    }
    return k;
}

/* ---- names and paths ---- */

/* One guest-supplied name at *off in the arguments; advances *off past its NUL. */
static int take_name(const struct req *r, uint64_t *off, const char **name)
{
    if (*off >= r->arg_len)
        return -EINVAL;
    const uint8_t *p = r->arg + *off;
    const uint8_t *nul = memchr(p, 0, r->arg_len - *off);
    if (!nul)
        return -EINVAL;
    size_t n = (size_t)(nul - p);
    if (n == 0)
        return -EINVAL;
    if (n > NAME_MAX)
        return -ENAMETOOLONG;
    if (memchr(p, '/', n) || !strcmp((const char *)p, ".") || !strcmp((const char *)p, ".."))
        return -EINVAL;
    *name = (const char *)p;
    *off += n + 1;
    return 0;
}

static void fd_name(int fd, char buf[16])
{
    snprintf(buf, 16, "%d", fd);
}

/* O_PATH fd for `name` in dir, the name itself if it is a symlink. */
static int open_child(struct fuse_server *s, int dirfd, const char *name)
{
    if (!s->no_openat2) {
        struct open_how how = {
            .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
        if (fd >= 0)
            return (int)fd;
        /* ENOSYS: an old kernel; EPERM: a seccomp profile (container) refusing it. */
        if (errno != ENOSYS && errno != EPERM)
            return -errno;
        s->no_openat2 = true;
    }
    int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* A real open of a regular file or directory inode (never a symlink: see the header). */
static int reopen(struct fuse_server *s, const struct fs_inode *i, int flags)
{
    char n[16];
    if (i->type == S_IFLNK)
        return -ELOOP;
    if (i->type != S_IFREG && i->type != S_IFDIR)
        return -ENXIO;
    fd_name(i->fd, n);
    int fd = openat(s->proc_fd, n, flags | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* ---- setuid and setgid (see the header comment) ---- */

#define SETID_BITS ((mode_t)(S_ISUID | S_ISGID))

/*
 * The permission bits of a mode the guest asks for. The guest kernel has
 * applied its umask (we do not grant DONT_MASK) and the host applies
 * ours, but a umask only covers 0777: the setuid and setgid bits must be
 * taken out here.
 */
static mode_t guest_mode(const struct fuse_server *s, uint32_t mode)
{
    mode_t m = (mode_t)mode & 07777;
    return s->allow_setid ? m : m & ~SETID_BITS;
}

/* Whether a write, truncation or chown clears privilege bits: always, unless allowSetuid. */
static bool kills_privs(const struct fuse_server *s, bool guest_asked)
{
    return !s->allow_setid || guest_asked;
}

/*
 * The bits the kernel's file_remove_privs would clear: S_ISUID always,
 * S_ISGID only with S_IXGRP (without it, S_ISGID marks mandatory locking,
 * not a privilege). Only regular files run as programs.
 */
static mode_t privs_of(const struct stat *st)
{
    if (!S_ISREG(st->st_mode))
        return 0;
    mode_t k = st->st_mode & S_ISUID;
    if ((st->st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
        k |= S_ISGID;
    return k;
}

/* Clear them on an open file. */
static int kill_privs_fd(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    mode_t k = privs_of(&st);
    if (k && fchmod(fd, (st.st_mode & 07777) & ~k) < 0)
        return -errno;
    return 0;
}

/* The same through an inode's O_PATH fd (fchmod refuses those: via /proc/self/fd). */
static int kill_privs_inode(struct fuse_server *s, const struct fs_inode *i)
{
    if (i->type != S_IFREG)
        return 0;
    struct stat st;
    if (fstat(i->fd, &st) < 0)
        return -errno;
    mode_t k = privs_of(&st);
    if (!k)
        return 0;
    char n[16];
    fd_name(i->fd, n);
    return fchmodat(s->proc_fd, n, (st.st_mode & 07777) & ~k, 0) < 0 ? -errno : 0;
}

/* ---- replies ---- */

static void fill_attr(struct fuse_attr *a, const struct stat *st)
{
    *a = (struct fuse_attr){
        .ino = st->st_ino,
        .size = (uint64_t)st->st_size,
        .blocks = (uint64_t)st->st_blocks,
        .atime = (uint64_t)st->st_atim.tv_sec,
        .mtime = (uint64_t)st->st_mtim.tv_sec,
        .ctime = (uint64_t)st->st_ctim.tv_sec,
        .atimensec = (uint32_t)st->st_atim.tv_nsec,
        .mtimensec = (uint32_t)st->st_mtim.tv_nsec,
        .ctimensec = (uint32_t)st->st_ctim.tv_nsec,
        .mode = st->st_mode,
        .nlink = (uint32_t)st->st_nlink,
        .uid = st->st_uid,
        .gid = st->st_gid,
        .rdev = (uint32_t)st->st_rdev,
        .blksize = (uint32_t)st->st_blksize,
    };
}

static int reply_attr(struct req *r, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    struct fuse_attr_out *o = (struct fuse_attr_out *)r->s->reply;
    *o = (struct fuse_attr_out){.attr_valid = CACHE_SECONDS};
    fill_attr(&o->attr, &st);
    return sizeof(*o);
}

/* Look `name` up in parent, take a reference on it and describe it in e. */
static int lookup_entry(struct fuse_server *s, int dirfd, const char *name,
                        struct fuse_entry_out *e)
{
    int fd = open_child(s, dirfd, name);
    if (fd < 0)
        return fd;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    uint64_t id;
    int rc = fs_inode_ref(&s->t, fd, &id);
    if (rc)
        return rc;
    *e = (struct fuse_entry_out){
        .nodeid = id, .entry_valid = CACHE_SECONDS, .attr_valid = CACHE_SECONDS};
    fill_attr(&e->attr, &st);
    return 0;
}

static int reply_entry(struct req *r, struct fs_inode *parent, const char *name)
{
    struct fuse_entry_out *e = (struct fuse_entry_out *)r->s->reply;
    int rc = lookup_entry(r->s, parent->fd, name, e);
    return rc ? rc : (int)sizeof(*e);
}

/* ---- operations ---- */

#define ARG(r, type) ((const type *)(r)->arg)

static struct fs_inode *node(struct req *r)
{
    return fs_inode_get(&r->s->t, r->h.nodeid);
}

static int dir_node(struct req *r, struct fs_inode **out)
{
    struct fs_inode *i = node(r);
    if (!i)
        return -ESTALE;
    if (i->type != S_IFDIR)
        return -ENOTDIR;
    *out = i;
    return 0;
}

static int op_init(struct req *r)
{
    const struct fuse_init_in *in = ARG(r, struct fuse_init_in);
    struct fuse_init_out *o = (struct fuse_init_out *)r->s->reply;
    *o = (struct fuse_init_out){.major = FUSE_KERNEL_VERSION, .minor = OUR_MINOR};
    if (in->major > FUSE_KERNEL_VERSION)
        return sizeof(*o); /* the kernel retries INIT with our major */
    if (in->major < FUSE_KERNEL_VERSION || in->minor < MIN_KERNEL_MINOR) {
        log_warn("virtio-fs: guest FUSE %u.%u is too old (need 7.%u)", in->major, in->minor,
                 MIN_KERNEL_MINOR);
        return -EPROTO;
    }
    if (in->minor < OUR_MINOR)
        o->minor = in->minor;
    o->max_readahead = in->max_readahead;
    o->flags = in->flags &
               (FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_PARALLEL_DIROPS | FUSE_AUTO_INVAL_DATA |
                FUSE_MAX_PAGES | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO);
    o->max_background = 64;
    o->congestion_threshold = 48;
    o->max_write = MAX_RW;
    o->time_gran = 1;
    o->max_pages = MAX_RW / 4096;
    r->s->initialized = true;
    return sizeof(*o);
}

static int op_destroy(struct req *r)
{
    fs_tables_clear(&r->s->t);
    r->s->initialized = false;
    return 0;
}

static int op_lookup(struct req *r)
{
    struct fs_inode *p;
    const char *name;
    uint64_t off = 0;
    int rc = dir_node(r, &p);
    if (rc == 0)
        rc = take_name(r, &off, &name);
    return rc ? rc : reply_entry(r, p, name);
}

static int op_getattr(struct req *r)
{
    struct fs_inode *i = node(r);
    return i ? reply_attr(r, i->fd) : -ESTALE;
}

static int set_times(struct fuse_server *s, struct fs_inode *i, int fh_fd,
                     const struct fuse_setattr_in *in)
{
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
    if (in->valid & FATTR_ATIME_NOW)
        ts[0].tv_nsec = UTIME_NOW;
    else if (in->valid & FATTR_ATIME)
        ts[0] = (struct timespec){(time_t)in->atime, in->atimensec % 1000000000u};
    if (in->valid & FATTR_MTIME_NOW)
        ts[1].tv_nsec = UTIME_NOW;
    else if (in->valid & FATTR_MTIME)
        ts[1] = (struct timespec){(time_t)in->mtime, in->mtimensec % 1000000000u};
    if (fh_fd >= 0)
        return futimens(fh_fd, ts) < 0 ? -errno : 0;
    if (i->type == S_IFLNK)
        return -EPERM;
    char n[16];
    fd_name(i->fd, n);
    return utimensat(s->proc_fd, n, ts, 0) < 0 ? -errno : 0;
}

static int op_setattr(struct req *r)
{
    struct fuse_server *s = r->s;
    const struct fuse_setattr_in *in = ARG(r, struct fuse_setattr_in);
    struct fs_inode *i = node(r);
    if (!i)
        return -ESTALE;
    int fh_fd = -1;
    if (in->valid & FATTR_FH) {
        struct fs_handle *h = fs_handle_get(&s->t, in->fh);
        if (!h)
            return -EBADF;
        if (!h->dir)
            fh_fd = h->fd;
    }
    char n[16];
    fd_name(i->fd, n);
    bool kill = kills_privs(s, in->valid & FATTR_KILL_SUIDGID);
    if (in->valid & FATTR_MODE) {
        if (i->type == S_IFLNK)
            return -EPERM;
        if (fchmodat(s->proc_fd, n, guest_mode(s, in->mode), 0) < 0)
            return -errno;
    }
    if (in->valid & (FATTR_UID | FATTR_GID)) {
        uid_t uid = (in->valid & FATTR_UID) ? in->uid : (uid_t)-1;
        gid_t gid = (in->valid & FATTR_GID) ? in->gid : (gid_t)-1;
        /* Before the chown: after it, krunkit may no longer own the file. */
        int rc = kill ? kill_privs_inode(s, i) : 0;
        if (rc)
            return rc;
        if (fchownat(i->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
            return -errno;
    }
    if (in->valid & FATTR_SIZE) {
        if (in->size > (uint64_t)INT64_MAX)
            return -EFBIG;
        int rc = kill ? kill_privs_inode(s, i) : 0;
        if (rc)
            return rc;
        if (fh_fd >= 0) {
            if (ftruncate(fh_fd, (off_t)in->size) < 0)
                return -errno;
        } else {
            if (i->type != S_IFREG)
                return i->type == S_IFDIR ? -EISDIR : -EINVAL;
            int fd = reopen(s, i, O_WRONLY);
            if (fd < 0)
                return fd;
            int rc = ftruncate(fd, (off_t)in->size) < 0 ? -errno : 0;
            close(fd);
            if (rc)
                return rc;
        }
    }
    if (in->valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)) {
        int rc = set_times(s, i, fh_fd, in);
        if (rc)
            return rc;
    }
    return reply_attr(r, i->fd);
}

static int op_readlink(struct req *r)
{
    struct fs_inode *i = node(r);
    if (!i)
        return -ESTALE;
    if (i->type != S_IFLNK)
        return -EINVAL;
    ssize_t n = readlinkat(i->fd, "", (char *)r->s->reply, PATH_MAX);
    if (n < 0)
        return -errno;
    if ((uint64_t)n > r->room)
        return -ERANGE;
    return (int)n;
}

static int op_symlink(struct req *r)
{
    struct fs_inode *p;
    const char *name, *target;
    uint64_t off = 0;
    int rc = dir_node(r, &p);
    rc = rc ?: take_name(r, &off, &name);
    if (rc)
        return rc;
    /* The target is text stored in the link, never resolved here: only its framing is checked. */
    if (off >= r->arg_len || !memchr(r->arg + off, 0, r->arg_len - off))
        return -EINVAL;
    target = (const char *)r->arg + off;
    if (target[0] == 0)
        return -ENOENT;
    if (strlen(target) >= PATH_MAX)
        return -ENAMETOOLONG;
    if (symlinkat(target, p->fd, name) < 0)
        return -errno;
    return reply_entry(r, p, name);
}

static int op_mknod(struct req *r)
{
    const struct fuse_mknod_in *in = ARG(r, struct fuse_mknod_in);
    struct fs_inode *p;
    const char *name;
    uint64_t off = sizeof(*in);
    int rc = dir_node(r, &p);
    rc = rc ?: take_name(r, &off, &name);
    if (rc)
        return rc;
    /* No device nodes (they would reach host hardware) and no sockets. */
    if (!S_ISREG(in->mode) && !S_ISFIFO(in->mode))
        return -EPERM;
    if (mknodat(p->fd, name, (in->mode & S_IFMT) | guest_mode(r->s, in->mode), 0) < 0)
        return -errno;
    return reply_entry(r, p, name);
}

static int op_mkdir(struct req *r)
{
    const struct fuse_mkdir_in *in = ARG(r, struct fuse_mkdir_in);
    struct fs_inode *p;
    const char *name;
    uint64_t off = sizeof(*in);
    int rc = dir_node(r, &p);
    rc = rc ?: take_name(r, &off, &name);
    if (rc)
        return rc;
    if (mkdirat(p->fd, name, guest_mode(r->s, in->mode)) < 0)
        return -errno;
    return reply_entry(r, p, name);
}

static int op_unlink(struct req *r, int flags)
{
    struct fs_inode *p;
    const char *name;
    uint64_t off = 0;
    int rc = dir_node(r, &p);
    rc = rc ?: take_name(r, &off, &name);
    if (rc)
        return rc;
    return unlinkat(p->fd, name, flags) < 0 ? -errno : 0;
}

static int op_rename(struct req *r, bool v2)
{
    struct fs_inode *p, *np;
    const char *oldname, *newname;
    uint64_t newdir;
    uint32_t flags = 0;
    uint64_t off;
    if (v2) {
        const struct fuse_rename2_in *in = ARG(r, struct fuse_rename2_in);
        newdir = in->newdir;
        flags = in->flags;
        off = sizeof(*in);
    } else {
        newdir = ARG(r, struct fuse_rename_in)->newdir;
        off = sizeof(struct fuse_rename_in);
    }
    if (flags & ~(uint32_t)RENAME_NOREPLACE)
        return -EINVAL;
    int rc = dir_node(r, &p);
    rc = rc ?: take_name(r, &off, &oldname);
    rc = rc ?: take_name(r, &off, &newname);
    if (rc)
        return rc;
    np = fs_inode_get(&r->s->t, newdir);
    if (!np)
        return -ESTALE;
    if (np->type != S_IFDIR)
        return -ENOTDIR;
    return renameat2(p->fd, oldname, np->fd, newname, flags) < 0 ? -errno : 0;
}

static int op_link(struct req *r)
{
    struct fuse_server *s = r->s;
    const struct fuse_link_in *in = ARG(r, struct fuse_link_in);
    struct fs_inode *p, *old;
    const char *name;
    uint64_t off = sizeof(*in);
    int rc = dir_node(r, &p);
    rc = rc ?: take_name(r, &off, &name);
    if (rc)
        return rc;
    old = fs_inode_get(&s->t, in->oldnodeid);
    if (!old)
        return -ESTALE;
    if (old->type == S_IFDIR)
        return -EPERM;
    if (old->type == S_IFLNK) {
        /* Through /proc the link would be followed: only the fd itself names the symlink. */
        if (linkat(old->fd, "", p->fd, name, AT_EMPTY_PATH) < 0)
            return errno == ENOENT ? -EPERM : -errno;
    } else {
        char n[16];
        fd_name(old->fd, n);
        if (linkat(s->proc_fd, n, p->fd, name, AT_SYMLINK_FOLLOW) < 0)
            return -errno;
    }
    return reply_entry(r, p, name);
}

/* Open flags the guest may ask for; creation and path flags are ours to set. */
static int guest_open_flags(uint32_t flags)
{
    return (int)(flags & (O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC));
}

static int reply_open(struct req *r, int fd, bool dir)
{
    struct fuse_open_out *o = (struct fuse_open_out *)r->s->reply;
    uint64_t fh;
    int rc = fs_handle_new(&r->s->t, fd, dir, &fh);
    if (rc)
        return rc;
    *o = (struct fuse_open_out){.fh = fh};
    return sizeof(*o);
}

static int op_open(struct req *r, bool dir)
{
    const struct fuse_open_in *in = ARG(r, struct fuse_open_in);
    struct fs_inode *i = node(r);
    if (!i)
        return -ESTALE;
    if (dir && i->type != S_IFDIR)
        return -ENOTDIR;
    if (!dir && i->type == S_IFDIR)
        return -EISDIR;
    int flags = dir ? O_RDONLY | O_DIRECTORY : guest_open_flags(in->flags);
    int fd = reopen(r->s, i, flags);
    if (fd < 0)
        return fd;
    /* The open truncated the file: clear what a truncation would. */
    if ((flags & O_TRUNC) && kills_privs(r->s, in->open_flags & FUSE_OPEN_KILL_SUIDGID)) {
        int rc = kill_privs_fd(fd);
        if (rc) {
            close(fd);
            return rc;
        }
    }
    return reply_open(r, fd, dir);
}

/*
 * CREATE's open: O_EXCL always, so a name that exists is never opened by
 * name (a symlink planted there is not followed, a FIFO or device is not
 * opened). Without the guest's O_EXCL an existing regular file is then
 * opened through its own inode, like OPEN does.
 */
static int create_or_open(struct fuse_server *s, int dirfd, const char *name, uint32_t guest_flags,
                          mode_t mode)
{
    int flags = guest_open_flags(guest_flags) | O_CLOEXEC;
    int fd = openat(dirfd, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    if (fd >= 0)
        return fd;
    if (errno != EEXIST || (guest_flags & O_EXCL))
        return -errno;
    int pfd = open_child(s, dirfd, name);
    if (pfd < 0)
        return pfd;
    struct stat st;
    if (fstat(pfd, &st) < 0) {
        int err = -errno;
        close(pfd);
        return err;
    }
    struct fs_inode tmp = {.fd = pfd, .type = st.st_mode & S_IFMT};
    fd = tmp.type == S_IFDIR ? -EISDIR : reopen(s, &tmp, flags);
    close(pfd);
    return fd;
}

static int op_create(struct req *r)
{
    struct fuse_server *s = r->s;
    const struct fuse_create_in *in = ARG(r, struct fuse_create_in);
    struct fs_inode *p;
    const char *name;
    uint64_t off = sizeof(*in);
    int rc = dir_node(r, &p);
    rc = rc ?: take_name(r, &off, &name);
    if (rc)
        return rc;
    int fd = create_or_open(s, p->fd, name, in->flags, guest_mode(s, in->mode));
    if (fd < 0)
        return fd;
    /* An existing file was opened with O_TRUNC: clear what a truncation would. */
    if ((in->flags & O_TRUNC) && kills_privs(s, in->open_flags & FUSE_OPEN_KILL_SUIDGID)) {
        rc = kill_privs_fd(fd);
        if (rc) {
            close(fd);
            return rc;
        }
    }
    /* The inode's O_PATH fd comes from the open file itself, not from the name again. */
    char n[16];
    fd_name(fd, n);
    int pfd = openat(s->proc_fd, n, O_PATH | O_CLOEXEC);
    struct stat st;
    if (pfd < 0 || fstat(fd, &st) < 0) {
        rc = -errno;
        if (pfd >= 0)
            close(pfd);
        close(fd);
        return rc;
    }
    uint64_t id, fh;
    rc = fs_inode_ref(&s->t, pfd, &id);
    if (rc) {
        close(fd);
        return rc;
    }
    rc = fs_handle_new(&s->t, fd, false, &fh);
    if (rc) {
        fs_inode_forget(&s->t, id, 1);
        return rc;
    }
    struct {
        struct fuse_entry_out e;
        struct fuse_open_out o;
    } *o = (void *)s->reply;
    o->e = (struct fuse_entry_out){
        .nodeid = id, .entry_valid = CACHE_SECONDS, .attr_valid = CACHE_SECONDS};
    fill_attr(&o->e.attr, &st);
    o->o = (struct fuse_open_out){.fh = fh};
    return sizeof(*o);
}

static int file_handle(struct req *r, uint64_t fh, bool dir, int *fd)
{
    struct fs_handle *h = fs_handle_get(&r->s->t, fh);
    if (!h)
        return -EBADF;
    if (h->dir != dir)
        return dir ? -ENOTDIR : -EISDIR;
    *fd = h->fd;
    return 0;
}

static int op_read(struct req *r)
{
    const struct fuse_read_in *in = ARG(r, struct fuse_read_in);
    int fd;
    int rc = file_handle(r, in->fh, false, &fd);
    if (rc)
        return rc;
    if (in->offset > (uint64_t)INT64_MAX)
        return -EINVAL;
    uint64_t size = in->size;
    if (size > MAX_RW)
        size = MAX_RW;
    if (size > r->room)
        size = r->room;
    unsigned n = iov_slice(r->s, r->out, r->nout, OUT_HDR, size);
    ssize_t got = n ? preadv(fd, r->s->iov, (int)n, (off_t)in->offset) : 0;
    if (got < 0)
        return -errno;
    r->direct = true;
    return (int)got;
}

static int op_write(struct req *r)
{
    const struct fuse_write_in *in = ARG(r, struct fuse_write_in);
    int fd;
    int rc = file_handle(r, in->fh, false, &fd);
    if (rc)
        return rc;
    if (in->size > r->arg_len - sizeof(*in) || in->size > MAX_RW ||
        in->offset > (uint64_t)INT64_MAX)
        return -EINVAL;
    /* Before the data lands, as file_remove_privs does: never a modified setuid program. */
    if (in->size && kills_privs(r->s, in->write_flags & FUSE_WRITE_KILL_SUIDGID)) {
        rc = kill_privs_fd(fd);
        if (rc)
            return rc;
    }
    unsigned n = iov_slice(r->s, r->in, r->nin, IN_HDR + sizeof(*in), in->size);
    ssize_t put = n ? pwritev(fd, r->s->iov, (int)n, (off_t)in->offset) : 0;
    if (put < 0)
        return -errno;
    struct fuse_write_out *o = (struct fuse_write_out *)r->s->reply;
    *o = (struct fuse_write_out){.size = (uint32_t)put};
    return sizeof(*o);
}

static int op_statfs(struct req *r)
{
    struct fs_inode *i = node(r);
    struct statfs sf;
    if (!i)
        return -ESTALE;
    if (fstatfs(i->fd, &sf) < 0)
        return -errno;
    struct fuse_statfs_out *o = (struct fuse_statfs_out *)r->s->reply;
    *o = (struct fuse_statfs_out){.st = {
                                      .blocks = sf.f_blocks,
                                      .bfree = sf.f_bfree,
                                      .bavail = sf.f_bavail,
                                      .files = sf.f_files,
                                      .ffree = sf.f_ffree,
                                      .bsize = (uint32_t)sf.f_bsize,
                                      .namelen = (uint32_t)sf.f_namelen,
                                      .frsize = (uint32_t)sf.f_frsize,
                                  }};
    return sizeof(*o);
}

static int op_release(struct req *r)
{
    return fs_handle_release(&r->s->t, ARG(r, struct fuse_release_in)->fh);
}

static int op_fsync(struct req *r, bool dir)
{
    const struct fuse_fsync_in *in = ARG(r, struct fuse_fsync_in);
    int fd;
    int rc = file_handle(r, in->fh, dir, &fd);
    if (rc)
        return rc;
    rc = (in->fsync_flags & 1) ? fdatasync(fd) : fsync(fd);
    return rc < 0 ? -errno : 0;
}

static int op_flush(struct req *r)
{
    struct fs_handle *h = fs_handle_get(&r->s->t, ARG(r, struct fuse_flush_in)->fh);
    return h ? 0 : -EBADF;
}

static int op_access(struct req *r)
{
    const struct fuse_access_in *in = ARG(r, struct fuse_access_in);
    struct fs_inode *i = node(r);
    if (!i)
        return -ESTALE;
    if (i->type == S_IFLNK)
        return 0;
    char n[16];
    fd_name(i->fd, n);
    return faccessat(r->s->proc_fd, n, (int)(in->mask & 7), AT_EACCESS) < 0 ? -errno : 0;
}

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static bool dot_or_dotdot(const char *name)
{
    return name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0));
}

/*
 * Entries from the directory position `offset` (a d_off the kernel got
 * from us) until `size` bytes are filled. Stateless: every call seeks, so
 * a guest can restart anywhere, and a partial batch is simply read again.
 * READDIRPLUS also looks every entry up (a lookup reference the kernel
 * owns from then on), except "." and "..", which the kernel never links:
 * they get nodeid 0, as does an entry that vanished meanwhile.
 */
static int op_readdir(struct req *r, bool plus)
{
    struct fuse_server *s = r->s;
    const struct fuse_read_in *in = ARG(r, struct fuse_read_in);
    int fd;
    int rc = file_handle(r, in->fh, true, &fd);
    if (rc)
        return rc;
    uint64_t size = in->size;
    if (size > r->room)
        size = r->room;
    if (size > REPLY_MAX)
        size = REPLY_MAX;
    if (in->offset > (uint64_t)INT64_MAX)
        return -EINVAL;
    if (lseek(fd, (off_t)in->offset, SEEK_SET) < 0)
        return -errno;
    /* Host records are about as long as ours: read little more than fits. */
    size_t chunk = size + 1024 < sizeof(s->dents) ? (size_t)size + 1024 : sizeof(s->dents);
    uint64_t used = 0;
    for (;;) {
        long got = syscall(SYS_getdents64, fd, s->dents, chunk);
        if (got < 0)
            return used ? (int)used : -errno;
        if (got == 0)
            break;
        for (long pos = 0; pos < got;) {
            const struct linux_dirent64 *d = (const void *)(s->dents + pos);
            size_t namelen = strlen(d->d_name);
            uint64_t hdr = plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
            uint64_t rec = FUSE_DIRENT_ALIGN(hdr + namelen);
            if (used + rec > size)
                return (int)used;
            struct fuse_dirent *out;
            if (plus) {
                struct fuse_direntplus *dp = (struct fuse_direntplus *)(s->reply + used);
                dp->entry_out = (struct fuse_entry_out){0};
                if (!dot_or_dotdot(d->d_name) && lookup_entry(s, fd, d->d_name, &dp->entry_out) < 0)
                    dp->entry_out = (struct fuse_entry_out){0};
                out = &dp->dirent;
            } else {
                out = (struct fuse_dirent *)(s->reply + used);
            }
            out->ino = d->d_ino;
            out->off = (uint64_t)d->d_off;
            out->namelen = (uint32_t)namelen;
            out->type = d->d_type;
            memcpy(out->name, d->d_name, namelen);
            memset(out->name + namelen, 0, rec - hdr - namelen);
            used += rec;
            pos += d->d_reclen;
        }
    }
    return (int)used;
}

/* ---- dispatch ---- */

struct op_desc {
    bool known;
    bool no_reply;
    /* Fixed argument bytes the request must carry. */
    uint32_t arg_min;
    /* Fixed reply bytes; the writable part must hold them before we act. */
    uint32_t reply_min;
};

#define OP(arg, reply)                                                                             \
    {                                                                                              \
        true, false, (arg), (reply)                                                                \
    }
#define OP_NO_REPLY(arg)                                                                           \
    {                                                                                              \
        true, true, (arg), 0                                                                       \
    }

static const struct op_desc ops[] = {
    [FUSE_INIT] = OP(16, 24),
    [FUSE_DESTROY] = OP(0, 0),
    [FUSE_LOOKUP] = OP(0, sizeof(struct fuse_entry_out)),
    [FUSE_FORGET] = OP_NO_REPLY(sizeof(struct fuse_forget_in)),
    [FUSE_BATCH_FORGET] = OP_NO_REPLY(sizeof(struct fuse_batch_forget_in)),
    [FUSE_INTERRUPT] = OP_NO_REPLY(0),
    [FUSE_GETATTR] = OP(0, sizeof(struct fuse_attr_out)),
    [FUSE_SETATTR] = OP(sizeof(struct fuse_setattr_in), sizeof(struct fuse_attr_out)),
    [FUSE_READLINK] = OP(0, 0),
    [FUSE_SYMLINK] = OP(0, sizeof(struct fuse_entry_out)),
    [FUSE_MKNOD] = OP(sizeof(struct fuse_mknod_in), sizeof(struct fuse_entry_out)),
    [FUSE_MKDIR] = OP(sizeof(struct fuse_mkdir_in), sizeof(struct fuse_entry_out)),
    [FUSE_UNLINK] = OP(0, 0),
    [FUSE_RMDIR] = OP(0, 0),
    [FUSE_RENAME] = OP(sizeof(struct fuse_rename_in), 0),
    [FUSE_RENAME2] = OP(sizeof(struct fuse_rename2_in), 0),
    [FUSE_LINK] = OP(sizeof(struct fuse_link_in), sizeof(struct fuse_entry_out)),
    [FUSE_OPEN] = OP(sizeof(struct fuse_open_in), sizeof(struct fuse_open_out)),
    [FUSE_OPENDIR] = OP(sizeof(struct fuse_open_in), sizeof(struct fuse_open_out)),
    [FUSE_CREATE] = OP(sizeof(struct fuse_create_in),
                       sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out)),
    [FUSE_READ] = OP(sizeof(struct fuse_read_in), 0),
    [FUSE_READDIR] = OP(sizeof(struct fuse_read_in), 0),
    [FUSE_READDIRPLUS] = OP(sizeof(struct fuse_read_in), 0),
    [FUSE_WRITE] = OP(sizeof(struct fuse_write_in), sizeof(struct fuse_write_out)),
    [FUSE_STATFS] = OP(0, sizeof(struct fuse_statfs_out)),
    [FUSE_RELEASE] = OP(sizeof(struct fuse_release_in), 0),
    [FUSE_RELEASEDIR] = OP(sizeof(struct fuse_release_in), 0),
    [FUSE_FLUSH] = OP(sizeof(struct fuse_flush_in), 0),
    [FUSE_FSYNC] = OP(sizeof(struct fuse_fsync_in), 0),
    [FUSE_FSYNCDIR] = OP(sizeof(struct fuse_fsync_in), 0),
    [FUSE_ACCESS] = OP(sizeof(struct fuse_access_in), 0),
};

static bool known(uint32_t opcode)
{
    return opcode < sizeof(ops) / sizeof(ops[0]) && ops[opcode].known;
}

static void forget_batch(struct req *r)
{
    const struct fuse_batch_forget_in *b = ARG(r, struct fuse_batch_forget_in);
    uint64_t max = (r->arg_len - sizeof(*b)) / sizeof(struct fuse_forget_one);
    uint64_t count = b->count < max ? b->count : max;
    for (uint64_t k = 0; k < count; k++) {
        struct fuse_forget_one one;
        uint64_t at = IN_HDR + sizeof(*b) + k * sizeof(one);
        if (iov_copy(r->in, r->nin, at, &one, sizeof(one), false) != sizeof(one))
            break;
        fs_inode_forget(&r->s->t, one.nodeid, one.nlookup);
    }
}

static int dispatch(struct req *r)
{
    switch (r->h.opcode) {
    case FUSE_INIT:
        return op_init(r);
    case FUSE_DESTROY:
        return op_destroy(r);
    case FUSE_LOOKUP:
        return op_lookup(r);
    case FUSE_GETATTR:
        return op_getattr(r);
    case FUSE_SETATTR:
        return op_setattr(r);
    case FUSE_READLINK:
        return op_readlink(r);
    case FUSE_SYMLINK:
        return op_symlink(r);
    case FUSE_MKNOD:
        return op_mknod(r);
    case FUSE_MKDIR:
        return op_mkdir(r);
    case FUSE_UNLINK:
        return op_unlink(r, 0);
    case FUSE_RMDIR:
        return op_unlink(r, AT_REMOVEDIR);
    case FUSE_RENAME:
        return op_rename(r, false);
    case FUSE_RENAME2:
        return op_rename(r, true);
    case FUSE_LINK:
        return op_link(r);
    case FUSE_OPEN:
        return op_open(r, false);
    case FUSE_OPENDIR:
        return op_open(r, true);
    case FUSE_CREATE:
        return op_create(r);
    case FUSE_READ:
        return op_read(r);
    case FUSE_READDIR:
        return op_readdir(r, false);
    case FUSE_READDIRPLUS:
        return op_readdir(r, true);
    case FUSE_WRITE:
        return op_write(r);
    case FUSE_STATFS:
        return op_statfs(r);
    case FUSE_RELEASE:
    case FUSE_RELEASEDIR:
        return op_release(r);
    case FUSE_FLUSH:
        return op_flush(r);
    case FUSE_FSYNC:
        return op_fsync(r, false);
    case FUSE_FSYNCDIR:
        return op_fsync(r, true);
    case FUSE_ACCESS:
        return op_access(r);
    default:
        return -ENOSYS;
    }
}

static uint32_t send_reply(struct req *r, int result)
{
    uint64_t payload = result > 0 ? (uint64_t)result : 0;
    if (payload > r->room) {
        /* Never write past the guest's buffers: the reply did not fit. */
        result = -ERANGE;
        payload = 0;
    }
    if (payload && !r->direct &&
        iov_copy(r->out, r->nout, OUT_HDR, r->s->reply, payload, true) != payload)
        return 0;
    struct fuse_out_header oh = {
        .len = (uint32_t)(OUT_HDR + payload),
        .error = result < 0 ? result : 0,
        .unique = r->h.unique,
    };
    iov_copy(r->out, r->nout, 0, &oh, sizeof(oh), true);
    return oh.len;
}

uint32_t fuse_server_handle(struct fuse_server *s, const struct iovec *in, unsigned nin,
                            uint64_t in_len, const struct iovec *out, unsigned nout,
                            uint64_t out_len)
{
    struct req r = {.s = s, .in = in, .nin = nin, .out = out, .nout = nout};
    bool can_reply = out_len >= OUT_HDR;
    r.room = can_reply ? out_len - OUT_HDR : 0;
    if (in_len < IN_HDR || iov_copy(in, nin, 0, &r.h, sizeof(r.h), false) != sizeof(r.h)) {
        log_debug("virtio-fs: request shorter than its header (%llu bytes)",
                  (unsigned long long)in_len);
        r.h = (struct fuse_in_header){0};
        return can_reply ? send_reply(&r, -EINVAL) : 0;
    }
    uint32_t op = r.h.opcode;
    bool no_reply = known(op) && ops[op].no_reply;
    if (!can_reply && !no_reply)
        return 0;
    if (r.h.len < IN_HDR || r.h.len > in_len) {
        log_debug("virtio-fs: opcode %u claims %u bytes, the chain holds %llu", op, r.h.len,
                  (unsigned long long)in_len);
        return no_reply ? 0 : send_reply(&r, -EINVAL);
    }
    if (!known(op))
        return send_reply(&r, -ENOSYS);
    r.arg_len = r.h.len - IN_HDR;
    if (r.arg_len < ops[op].arg_min)
        return no_reply ? 0 : send_reply(&r, -EINVAL);
    /* WRITE data and BATCH_FORGET entries are read in place; only their fixed part is copied. */
    uint64_t copy = r.arg_len;
    if (op == FUSE_WRITE || op == FUSE_BATCH_FORGET)
        copy = ops[op].arg_min;
    else if (copy > ARGS_MAX)
        return no_reply ? 0 : send_reply(&r, -EINVAL);
    iov_copy(in, nin, IN_HDR, s->args, (size_t)copy, false);
    /* Fixed structs shorter than ours (older minors) read as zero beyond what was sent. */
    memset(s->args + copy, 0, sizeof(s->args) - copy);
    r.arg = s->args;

    if (no_reply) {
        if (op == FUSE_FORGET)
            fs_inode_forget(&s->t, r.h.nodeid, ARG(&r, struct fuse_forget_in)->nlookup);
        else if (op == FUSE_BATCH_FORGET)
            forget_batch(&r);
        return 0;
    }
    if (r.room < ops[op].reply_min)
        return send_reply(&r, -EINVAL);
    if (!s->initialized && op != FUSE_INIT)
        return send_reply(&r, -EIO);
    int rc = dispatch(&r);
    if (op == FUSE_INIT && rc > 0 && (uint64_t)rc > r.room)
        rc = (int)r.room; /* older kernels take the shorter init_out */
    return send_reply(&r, rc);
}

void fuse_server_reset(struct fuse_server *s)
{
    fs_tables_clear(&s->t);
    s->initialized = false;
}

void fuse_server_set_limits(struct fuse_server *s, unsigned max_inodes, unsigned max_handles)
{
    s->t.max_inodes = max_inodes < 1 ? 1 : max_inodes > FS_MAX_INODES ? FS_MAX_INODES : max_inodes;
    s->t.max_handles = max_handles > FS_MAX_HANDLES ? FS_MAX_HANDLES : max_handles;
}

unsigned fuse_server_inode_count(const struct fuse_server *s)
{
    return s->t.n_inodes;
}

unsigned fuse_server_handle_count(const struct fuse_server *s)
{
    return s->t.n_handles;
}

int fuse_server_create(struct fs_share *share, struct fuse_server **out)
{
    struct fuse_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    int rc = fs_tables_init(&s->t, share->root_fd);
    if (rc) {
        log_error("--device virtio-fs sharedDir \"%s\": %s", share->dir, strerror(-rc));
        free(s);
        return rc;
    }
    s->share = fs_share_ref(share);
    s->proc_fd = share->proc_fd;
    s->allow_setid = share->allow_setid;
    *out = s;
    return 0;
}

void fuse_server_destroy(struct fuse_server *s)
{
    if (!s)
        return;
    fs_tables_free(&s->t);
    fs_share_close(s->share);
    free(s);
}
