/*
 * libFuzzer target for the virtio-fs FUSE server (src/fs/fuse_server.c,
 * fs_inode.c): arbitrary request sequences against a real temporary share
 * whose neighbours must never change.
 *
 * Layout (made once): T/outside.txt, T/outside-dir/ (empty), T/share/.
 * Each input starts from a fresh share (file.txt, sub/inner.txt, fifo, and
 * symlinks out-link -> ../outside.txt, abs-link -> T/outside.txt, dir-link
 * -> ../outside-dir, up -> ..), a server reset and an INIT, then runs a
 * program of requests. Nodeids and handles the server hands out are kept
 * so later requests can use them (or forged ones). After every request:
 * the reply stays inside its room and is well formed; after every input:
 * outside.txt keeps its bytes, mode and mtime, outside-dir is still empty,
 * T holds only those three names, no file or directory in the share has
 * S_ISUID or S_ISGID (none of them had one and the share is served
 * without allowSetuid, so any would be the guest's), and a reset leaves
 * the root alone, no handle, no more fds than before the input and every
 * fd it drew given back to the process budget.
 *
 * Input: a program of requests, each:
 *   u8 op (index into OPCODES, or raw opcode from the next u32 when past it)
 *   u8 nodeid selector (known nodeid by index; 0xfe: forged u64 follows)
 *   u8 fh selector (patched into the request's fh field when it has one)
 *   u8 shape: bits 0-1 header len lie (0 none, 1 +n, 2 -n, 3 raw u32),
 *             bits 2-4 iovec chunking, bit 5 second name, bit 6 short room
 *   u8 name index (NAMES), u8 name2 index
 *   u16 fixed-argument length + bytes
 *   u16 room (when bit 6)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "fs/fs_share.h"
#include "fs/fuse_server.h"
#include "vmm/fd_budget.h"

#define MAX_REQS 64
#define MAX_ARGS 8192
#define MAX_ROOM (256u * 1024)
#define MAX_KNOWN 32
#define OUTSIDE_TEXT "outside: never changes\n"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_fuse: check failed at line %d: %s\n", __LINE__, #c);             \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

static const uint32_t OPCODES[] = {
    FUSE_LOOKUP,  FUSE_FORGET, FUSE_GETATTR,   FUSE_SETATTR, FUSE_READLINK,     FUSE_SYMLINK,
    FUSE_MKNOD,   FUSE_MKDIR,  FUSE_UNLINK,    FUSE_RMDIR,   FUSE_RENAME,       FUSE_LINK,
    FUSE_OPEN,    FUSE_READ,   FUSE_WRITE,     FUSE_STATFS,  FUSE_RELEASE,      FUSE_FSYNC,
    FUSE_FLUSH,   FUSE_INIT,   FUSE_OPENDIR,   FUSE_READDIR, FUSE_RELEASEDIR,   FUSE_FSYNCDIR,
    FUSE_ACCESS,  FUSE_CREATE, FUSE_INTERRUPT, FUSE_DESTROY, FUSE_BATCH_FORGET, FUSE_READDIRPLUS,
    FUSE_RENAME2,
};
#define N_OPCODES (sizeof(OPCODES) / sizeof(OPCODES[0]))

static const char *const NAMES[] = {
    "file.txt",    "sub",         "inner.txt", "fifo", "out-link",
    "abs-link",    "dir-link",    "up",        "new",  "new2",
    "..",          ".",           "",          "a/b",  "../outside.txt",
    "outside.txt", "outside-dir", "share",
};
#define N_NAMES (sizeof(NAMES) / sizeof(NAMES[0]))

static struct {
    bool ready, trace;
    char top[64], share[96], outside[96], outside_dir[96];
    struct stat outside_st;
    struct fuse_server *s;
    uint64_t nodeids[MAX_KNOWN], fhs[MAX_KNOWN];
    unsigned n_nodeids, n_fhs;
    uint8_t in[sizeof(struct fuse_in_header) + MAX_ARGS + 2 * 300];
    uint8_t out[MAX_ROOM];
    uint64_t unique;
} F;

struct input {
    const uint8_t *p;
    size_t n;
};

static bool take(struct input *in, void *dst, size_t len)
{
    if (in->n < len)
        return false;
    memcpy(dst, in->p, len);
    in->p += len;
    in->n -= len;
    return true;
}

static void remove_tree(int parent, const char *name)
{
    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
        return;
    /* A directory the guest left without search or write permission. */
    fchmodat(parent, name, 0700, 0);
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    CHECK(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            remove_tree(dirfd(d), e->d_name);
    closedir(d);
    CHECK(unlinkat(parent, name, AT_REMOVEDIR) == 0);
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

/* Empty the share (the directory itself stays: the server holds it) and fill it again. */
static void make_share(void)
{
    char p[160];
    if (mkdir(F.share, 0755) < 0) {
        CHECK(errno == EEXIST);
        CHECK(chmod(F.share, 0755) == 0);
        int fd = open(F.share, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(fd >= 0);
        DIR *d = fdopendir(fd);
        CHECK(d);
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                remove_tree(dirfd(d), e->d_name);
        closedir(d);
    }
    snprintf(p, sizeof(p), "%s/file.txt", F.share);
    write_file(p, "file in the share\n");
    snprintf(p, sizeof(p), "%s/sub", F.share);
    CHECK(mkdir(p, 0755) == 0);
    snprintf(p, sizeof(p), "%s/sub/inner.txt", F.share);
    write_file(p, "inner\n");
    snprintf(p, sizeof(p), "%s/fifo", F.share);
    CHECK(mkfifo(p, 0644) == 0);
    snprintf(p, sizeof(p), "%s/out-link", F.share);
    CHECK(symlink("../outside.txt", p) == 0);
    snprintf(p, sizeof(p), "%s/abs-link", F.share);
    CHECK(symlink(F.outside, p) == 0);
    snprintf(p, sizeof(p), "%s/dir-link", F.share);
    CHECK(symlink("../outside-dir", p) == 0);
    snprintf(p, sizeof(p), "%s/up", F.share);
    CHECK(symlink("..", p) == 0);
}

static void cleanup(void)
{
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", F.top);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_fuse: could not remove %s\n", F.top);
}

static void setup(void)
{
    log_init(0, -1);
    F.trace = getenv("FUZZ_FUSE_TRACE") != NULL;
    snprintf(F.top, sizeof(F.top), "/tmp/fuzz-fuse.XXXXXX");
    CHECK(mkdtemp(F.top));
    snprintf(F.share, sizeof(F.share), "%s/share", F.top);
    snprintf(F.outside, sizeof(F.outside), "%s/outside.txt", F.top);
    snprintf(F.outside_dir, sizeof(F.outside_dir), "%s/outside-dir", F.top);
    write_file(F.outside, OUTSIDE_TEXT);
    CHECK(chmod(F.outside, 0644) == 0);
    CHECK(mkdir(F.outside_dir, 0755) == 0);
    CHECK(stat(F.outside, &F.outside_st) == 0);
    make_share();
    struct dev_fs cfg = {.shared_dir = F.share, .mount_tag = "fuzz"};
    struct fs_share *share;
    CHECK(fs_share_open(&cfg, &share) == 0);
    CHECK(fuse_server_create(share, &F.s) == 0);
    fs_share_close(share);
    atexit(cleanup);
    F.ready = true;
}

static unsigned count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK(d);
    unsigned n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Nothing beside the share changed. */
static void check_outside(void)
{
    struct stat st;
    CHECK(stat(F.outside, &st) == 0);
    CHECK(st.st_ino == F.outside_st.st_ino && st.st_size == F.outside_st.st_size);
    CHECK(st.st_mode == F.outside_st.st_mode && st.st_nlink == 1);
    CHECK(st.st_mtim.tv_sec == F.outside_st.st_mtim.tv_sec &&
          st.st_mtim.tv_nsec == F.outside_st.st_mtim.tv_nsec);
    char buf[64] = {0};
    int fd = open(F.outside, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(read(fd, buf, sizeof(buf) - 1) == (ssize_t)strlen(OUTSIDE_TEXT));
    close(fd);
    CHECK(!strcmp(buf, OUTSIDE_TEXT));
    CHECK(rmdir(F.outside_dir) == 0); /* empty: nothing was made in it */
    CHECK(mkdir(F.outside_dir, 0755) == 0);
    DIR *d = opendir(F.top);
    CHECK(d);
    struct dirent *e;
    unsigned n = 0;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
            continue;
        CHECK(!strcmp(name, "share") || !strcmp(name, "outside.txt") ||
              !strcmp(name, "outside-dir"));
        n++;
    }
    closedir(d);
    CHECK(n == 3);
}

/*
 * No privilege bit anywhere in the share. The share's directories have no
 * S_ISGID to pass on, so every S_ISUID or S_ISGID would be one the guest
 * set: stricter than the rule (S_ISUID, or S_ISGID with group exec).
 * A directory the guest left without search permission is opened after
 * its mode was checked (the chmod that makes it readable drops nothing
 * that was not already checked).
 */
static void check_no_setid(int parent, const char *name, unsigned depth)
{
    struct stat st;
    CHECK(fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0);
    if (st.st_mode & (S_ISUID | S_ISGID)) {
        fprintf(stderr, "fuzz_fuse: %s has mode %o\n", name, (unsigned)st.st_mode);
        CHECK(!(st.st_mode & (S_ISUID | S_ISGID)));
    }
    if (!S_ISDIR(st.st_mode) || depth > 64)
        return;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES && fchmodat(parent, name, 0700, 0) == 0)
        fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    CHECK(fd >= 0);
    DIR *d = fdopendir(fd);
    CHECK(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            check_no_setid(dirfd(d), e->d_name, depth + 1);
    closedir(d);
}

static void remember(uint64_t *list, unsigned *n, uint64_t v)
{
    if (*n < MAX_KNOWN)
        list[(*n)++] = v;
    else
        list[v % MAX_KNOWN] = v;
}

static uint64_t pick(const uint64_t *list, unsigned n, uint8_t sel, struct input *in)
{
    if (sel == 0xfe) {
        uint64_t v = 0;
        take(in, &v, sizeof(v));
        return v;
    }
    if (sel == 0 || n == 0)
        return FUSE_ROOT_ID;
    return list[(sel - 1) % n];
}

/* Offset of the fh field in op's fixed arguments, or -1. */
static int fh_offset(uint32_t op)
{
    switch (op) {
    case FUSE_READ:
    case FUSE_READDIR:
    case FUSE_READDIRPLUS:
        return offsetof(struct fuse_read_in, fh);
    case FUSE_WRITE:
        return offsetof(struct fuse_write_in, fh);
    case FUSE_RELEASE:
    case FUSE_RELEASEDIR:
        return offsetof(struct fuse_release_in, fh);
    case FUSE_FSYNC:
    case FUSE_FSYNCDIR:
        return offsetof(struct fuse_fsync_in, fh);
    case FUSE_FLUSH:
        return offsetof(struct fuse_flush_in, fh);
    case FUSE_SETATTR:
        return offsetof(struct fuse_setattr_in, fh);
    default:
        return -1;
    }
}

/* Offset of a second nodeid (newdir, oldnodeid) in the fixed arguments, or -1. */
static int node2_offset(uint32_t op)
{
    switch (op) {
    case FUSE_RENAME:
        return offsetof(struct fuse_rename_in, newdir);
    case FUSE_RENAME2:
        return offsetof(struct fuse_rename2_in, newdir);
    case FUSE_LINK:
        return offsetof(struct fuse_link_in, oldnodeid);
    default:
        return -1;
    }
}

static void learn(uint32_t op, const uint8_t *payload, uint32_t len)
{
    switch (op) {
    case FUSE_LOOKUP:
    case FUSE_MKDIR:
    case FUSE_MKNOD:
    case FUSE_SYMLINK:
    case FUSE_LINK:
    case FUSE_CREATE:
        if (len >= sizeof(struct fuse_entry_out)) {
            struct fuse_entry_out e;
            memcpy(&e, payload, sizeof(e));
            remember(F.nodeids, &F.n_nodeids, e.nodeid);
        }
        if (op == FUSE_CREATE &&
            len >= sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out)) {
            struct fuse_open_out o;
            memcpy(&o, payload + sizeof(struct fuse_entry_out), sizeof(o));
            remember(F.fhs, &F.n_fhs, o.fh);
        }
        break;
    case FUSE_OPEN:
    case FUSE_OPENDIR:
        if (len >= sizeof(struct fuse_open_out)) {
            struct fuse_open_out o;
            memcpy(&o, payload, sizeof(o));
            remember(F.fhs, &F.n_fhs, o.fh);
        }
        break;
    case FUSE_READDIRPLUS:
        for (uint32_t pos = 0; pos + FUSE_NAME_OFFSET_DIRENTPLUS <= len;) {
            struct fuse_direntplus dp;
            memcpy(&dp, payload + pos, sizeof(dp));
            if (dp.entry_out.nodeid)
                remember(F.nodeids, &F.n_nodeids, dp.entry_out.nodeid);
            CHECK(dp.dirent.namelen > 0 && dp.dirent.namelen <= 255);
            pos += FUSE_DIRENTPLUS_SIZE(&dp);
        }
        break;
    default:
        break;
    }
}

static bool one_request(struct input *in)
{
    uint8_t hdr[6];
    if (!take(in, hdr, sizeof(hdr)))
        return false;
    uint32_t op;
    if (hdr[0] < N_OPCODES)
        op = OPCODES[hdr[0]];
    else if (!take(in, &op, sizeof(op)))
        return false;
    uint64_t nodeid = pick(F.nodeids, F.n_nodeids, hdr[1], in);
    uint64_t fh = pick(F.fhs, F.n_fhs, hdr[2], in);
    uint8_t shape = hdr[3];
    uint16_t alen = 0;
    if (!take(in, &alen, sizeof(alen)))
        return false;
    alen %= 512;
    uint8_t *args = F.in + sizeof(struct fuse_in_header);
    memset(args, 0, alen);
    size_t got = alen < in->n ? alen : in->n;
    take(in, args, got);
    /* WRITE carries up to 64 KiB of data after its fixed part. */
    if (op == FUSE_WRITE && alen >= sizeof(struct fuse_write_in)) {
        struct fuse_write_in w;
        memcpy(&w, args, sizeof(w));
        uint32_t data = w.size % 65536;
        if (alen + data <= MAX_ARGS) {
            memset(args + alen, 'w', data);
            alen += data;
        }
    }
    int off = fh_offset(op);
    if (off >= 0 && hdr[2] != 0xff && (size_t)off + 8 <= alen)
        memcpy(args + off, &fh, 8);
    off = node2_offset(op);
    if (off >= 0 && (size_t)off + 8 <= alen) {
        uint64_t n2 = pick(F.nodeids, F.n_nodeids, hdr[2], in);
        memcpy(args + off, &n2, 8);
    }
    size_t total_args = alen;
    if (hdr[4] < N_NAMES * 2) {
        const char *name = NAMES[hdr[4] % N_NAMES];
        size_t l = strlen(name) + (hdr[4] < N_NAMES); /* the upper half: no NUL */
        memcpy(args + total_args, name, l);
        total_args += l;
        if (shape & 0x20) {
            const char *n2 = NAMES[hdr[5] % N_NAMES];
            memcpy(args + total_args, n2, strlen(n2) + 1);
            total_args += strlen(n2) + 1;
        }
    }
    size_t total = sizeof(struct fuse_in_header) + total_args;
    struct fuse_in_header h = {
        .len = (uint32_t)total, .opcode = op, .unique = ++F.unique, .nodeid = nodeid};
    uint32_t lie = hdr[5];
    switch (shape & 3) {
    case 1:
        h.len += lie;
        break;
    case 2:
        h.len -= lie;
        break;
    case 3:
        take(in, &h.len, sizeof(h.len));
        break;
    }
    memcpy(F.in, &h, sizeof(h));

    struct iovec iv[64];
    unsigned niv = 0;
    size_t chunk = (shape >> 2) & 7 ? ((size_t)1 << (((shape >> 2) & 7) * 2)) : total;
    for (size_t o = 0; o < total && niv < 63; o += chunk)
        iv[niv++] = (struct iovec){F.in + o, o + chunk < total ? chunk : total - o};
    size_t covered = 0;
    for (unsigned i = 0; i < niv; i++)
        covered += iv[i].iov_len;
    if (covered < total) /* the rest in one last iovec */
        iv[niv++] = (struct iovec){F.in + covered, total - covered};

    uint32_t room = MAX_ROOM;
    if (shape & 0x40) {
        uint16_t r = 0;
        take(in, &r, sizeof(r));
        room = r;
    }
    bool guard = room + 64 <= MAX_ROOM;
    if (guard)
        memset(F.out + room, 0xee, 64);
    struct iovec ov[2] = {{F.out, room / 3}, {F.out + room / 3, room - room / 3}};
    uint32_t w = fuse_server_handle(F.s, iv, niv, total, ov, 2, room);
    if (F.trace) {
        struct fuse_out_header t = {0};
        if (w >= sizeof(t))
            memcpy(&t, F.out, sizeof(t));
        fprintf(stderr, "op %u nodeid %#llx len %u/%zu room %u -> %u bytes, error %d\n", op,
                (unsigned long long)nodeid, h.len, total, room, w, t.error);
    }
    CHECK(w <= room);
    for (unsigned i = 0; guard && i < 64; i++)
        CHECK(F.out[room + i] == 0xee); /* never past the room */
    if (w) {
        struct fuse_out_header oh;
        CHECK(w >= sizeof(oh));
        memcpy(&oh, F.out, sizeof(oh));
        CHECK(oh.len == w);
        CHECK(oh.error <= 0 && oh.error > -4096);
        CHECK(oh.error == 0 || oh.len == sizeof(oh));
        if (oh.error == 0 && oh.unique == h.unique)
            learn(op, F.out + sizeof(oh), w - (uint32_t)sizeof(oh));
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!F.ready)
        setup();
    make_share();
    fuse_server_reset(F.s);
    unsigned fds = count_fds();
    uint64_t budget = fd_budget_available();
    F.n_nodeids = F.n_fhs = 0;
    /* INIT first, so the rest is served. */
    struct fuse_init_in init = {.major = 7, .minor = 31, .flags = FUSE_DO_READDIRPLUS};
    struct {
        struct fuse_in_header h;
        struct fuse_init_in i;
    } req = {{.len = sizeof(req), .opcode = FUSE_INIT, .unique = ++F.unique}, init};
    struct iovec iv = {&req, sizeof(req)}, ov = {F.out, 4096};
    CHECK(fuse_server_handle(F.s, &iv, 1, sizeof(req), &ov, 1, 4096) ==
          sizeof(struct fuse_out_header) + sizeof(struct fuse_init_out));

    struct input in = {data, size};
    for (int i = 0; i < MAX_REQS && one_request(&in); i++)
        ;
    check_outside();
    check_no_setid(AT_FDCWD, F.share, 0);
    fuse_server_reset(F.s);
    CHECK(fuse_server_inode_count(F.s) == 1);
    CHECK(fuse_server_handle_count(F.s) == 0);
    CHECK(count_fds() <= fds);
    CHECK(fd_budget_available() == budget);
    return 0;
}
