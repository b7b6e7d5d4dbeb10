/*
 * The FUSE server (src/fs/fuse_server.c, fs_inode.c) on a real temporary
 * directory, fed requests as iovecs the way the virtio-fs device hands
 * them over: INIT negotiation, the passthrough operations and what they do
 * on the host, lookup counts and handles that really go away, and
 * confinement: bad names, symlinks leading out of the share (never
 * followed, never opened), FIFOs and devices, forged and stale nodeids and
 * handles, headers whose lengths lie, replies that do not fit.
 *
 * Layout of every test's temp dir: T/outside.txt (must never change),
 * T/outside-dir/, and the share T/share/ with file.txt ("hello share\n"),
 * sub/, sub/inner.txt, out-link -> ../outside.txt, abs-link -> T/outside.txt,
 * dir-link -> ../outside-dir, fifo.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "fs/fs_share.h"
#include "fs/fuse_server.h"
#include "vmm/fd_budget.h"
#include "vmm/sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define KRUNKIT_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KRUNKIT_UNDER_ASAN 1
#endif
#endif
#ifndef KRUNKIT_UNDER_ASAN
#define KRUNKIT_UNDER_ASAN 0
#endif

#define OUTSIDE_TEXT "outside, must not change\n"
#define FILE_TEXT "hello share\n"
#define OUT_MAX (1u << 20)

struct fx {
    char top[64], share[96], outside[96];
    struct fuse_server *s;
    uint64_t unique;
    uint8_t in[16384];
    uint8_t out[OUT_MAX + 4096];
    struct fuse_out_header oh; /* header of the last reply */
    uint32_t written;          /* bytes the server wrote for the last request */
};

/* Arguments of one request, built up piece by piece. */
struct args {
    uint8_t b[12288];
    size_t n;
};

static void put(struct args *a, const void *p, size_t n)
{
    assert_true(a->n + n <= sizeof(a->b));
    memcpy(a->b + a->n, p, n);
    a->n += n;
}

static void put_str(struct args *a, const char *s)
{
    put(a, s, strlen(s) + 1);
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static char *read_file(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    ssize_t got = read(fd, buf, n - 1);
    close(fd);
    buf[got < 0 ? 0 : got] = 0;
    return buf;
}

static const char *at(struct fx *f, const char *rel)
{
    static char p[2][256];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof(p[k]), "%s/%s", f->share, rel);
    return p[k];
}

/* A server on its own share of dir (the server keeps the share's only reference). */
static int server_on(const char *dir, bool allow_setuid, struct fuse_server **out)
{
    struct dev_fs cfg = {.shared_dir = (char *)dir, .mount_tag = "t", .allow_setuid = allow_setuid};
    struct fs_share *share;
    int rc = fs_share_open(&cfg, &share);
    if (rc)
        return rc;
    rc = fuse_server_create(share, out);
    fs_share_close(share);
    return rc;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->top, sizeof(f->top), "/tmp/test-fuse.XXXXXX");
    assert_non_null(mkdtemp(f->top));
    snprintf(f->share, sizeof(f->share), "%s/share", f->top);
    snprintf(f->outside, sizeof(f->outside), "%s/outside.txt", f->top);
    char p[256];
    assert_int_equal(mkdir(f->share, 0755), 0);
    snprintf(p, sizeof(p), "%s/outside-dir", f->top);
    assert_int_equal(mkdir(p, 0755), 0);
    write_file(f->outside, OUTSIDE_TEXT);
    write_file(at(f, "file.txt"), FILE_TEXT);
    assert_int_equal(mkdir(at(f, "sub"), 0755), 0);
    write_file(at(f, "sub/inner.txt"), "inner\n");
    assert_int_equal(symlink("../outside.txt", at(f, "out-link")), 0);
    assert_int_equal(symlink(f->outside, at(f, "abs-link")), 0);
    assert_int_equal(symlink("../outside-dir", at(f, "dir-link")), 0);
    assert_int_equal(mkfifo(at(f, "fifo"), 0644), 0);
    assert_int_equal(server_on(f->share, false, &f->s), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fuse_server_destroy(f->s);
    /* Nothing outside the share changed, whatever the test did. */
    char buf[256];
    assert_non_null(read_file(f->outside, buf, sizeof(buf)));
    assert_string_equal(buf, OUTSIDE_TEXT);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "ls -A %s | tr '\\n' ' '", f->top);
    FILE *ls = popen(cmd, "r");
    assert_non_null(ls);
    assert_non_null(fgets(buf, sizeof(buf), ls));
    pclose(ls);
    assert_string_equal(buf, "outside-dir outside.txt share ");
    snprintf(cmd, sizeof(cmd), "%s/outside-dir", f->top);
    assert_int_equal(rmdir(cmd), 0); /* still empty */
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->top);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/*
 * Send one request: header (len = 40 + args, unless hdr_len overrides it)
 * and args, split over iovecs of `chunk` bytes (0: one iovec); reply room
 * `room` bytes (split in two iovecs). Returns the reply's error (<= 0) or
 * its payload length; the payload is at f->out + 16.
 */
static int raw_req(struct fx *f, uint32_t op, uint64_t nodeid, const struct args *a,
                   int64_t hdr_len, size_t chunk, size_t room)
{
    size_t alen = a ? a->n : 0;
    struct fuse_in_header h = {
        .len = hdr_len >= 0 ? (uint32_t)hdr_len : (uint32_t)(sizeof(h) + alen),
        .opcode = op,
        .unique = ++f->unique,
        .nodeid = nodeid,
        .uid = 0,
    };
    memcpy(f->in, &h, sizeof(h));
    if (alen)
        memcpy(f->in + sizeof(h), a->b, alen);
    size_t total = sizeof(h) + alen;
    struct iovec in[512], out[2];
    unsigned nin = 0;
    if (!chunk)
        chunk = total;
    for (size_t off = 0; off < total; off += chunk) {
        assert_true(nin < 512);
        in[nin++] = (struct iovec){f->in + off, off + chunk < total ? chunk : total - off};
    }
    assert_true(room <= sizeof(f->out));
    memset(f->out, 0xa5, room + 64);
    out[0] = (struct iovec){f->out, room < 7 ? room : 7};
    out[1] = (struct iovec){f->out + out[0].iov_len, room - out[0].iov_len};
    f->written = fuse_server_handle(f->s, in, nin, total, out, 2, room);
    /* Never a byte past the room it was given. */
    for (size_t i = room; i < room + 64; i++)
        assert_int_equal(f->out[i], 0xa5);
    if (f->written == 0)
        return INT32_MIN;
    assert_true(f->written >= sizeof(f->oh) && f->written <= room);
    memcpy(&f->oh, f->out, sizeof(f->oh));
    assert_int_equal(f->oh.len, f->written);
    assert_int_equal(f->oh.unique, h.unique);
    if (f->oh.error) {
        assert_int_equal(f->oh.len, sizeof(f->oh));
        assert_true(f->oh.error < 0);
        return f->oh.error;
    }
    return (int)(f->oh.len - sizeof(f->oh));
}

static int req(struct fx *f, uint32_t op, uint64_t nodeid, const struct args *a)
{
    return raw_req(f, op, nodeid, a, -1, 0, 4096);
}

static void *payload(struct fx *f)
{
    return f->out + sizeof(struct fuse_out_header);
}

static void do_init(struct fx *f)
{
    struct args a = {0};
    struct fuse_init_in in = {.major = 7,
                              .minor = 36,
                              .max_readahead = 65536,
                              .flags = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES |
                                       FUSE_DO_READDIRPLUS | FUSE_POSIX_LOCKS};
    put(&a, &in, sizeof(in));
    assert_int_equal(req(f, FUSE_INIT, 0, &a), sizeof(struct fuse_init_out));
}

/* LOOKUP name in parent: 0 and the entry, or the error. */
static int lookup(struct fx *f, uint64_t parent, const char *name, struct fuse_entry_out *e)
{
    struct args a = {0};
    put_str(&a, name);
    int rc = req(f, FUSE_LOOKUP, parent, &a);
    if (rc < 0)
        return rc;
    assert_int_equal(rc, sizeof(*e));
    memcpy(e, payload(f), sizeof(*e));
    return 0;
}

static uint64_t lookup_ok(struct fx *f, uint64_t parent, const char *name)
{
    struct fuse_entry_out e;
    assert_int_equal(lookup(f, parent, name, &e), 0);
    assert_true(e.nodeid != 0);
    return e.nodeid;
}

static void forget(struct fx *f, uint64_t nodeid, uint64_t n)
{
    struct args a = {0};
    struct fuse_forget_in in = {.nlookup = n};
    put(&a, &in, sizeof(in));
    assert_int_equal(req(f, FUSE_FORGET, nodeid, &a), INT32_MIN); /* no reply */
}

/* OPEN / OPENDIR: the fh, or the error (as a negative int64). */
static int64_t open_node(struct fx *f, uint64_t nodeid, bool dir, uint32_t flags)
{
    struct args a = {0};
    struct fuse_open_in in = {.flags = flags};
    put(&a, &in, sizeof(in));
    int rc = req(f, dir ? FUSE_OPENDIR : FUSE_OPEN, nodeid, &a);
    if (rc < 0)
        return rc;
    assert_int_equal(rc, sizeof(struct fuse_open_out));
    return (int64_t)((struct fuse_open_out *)payload(f))->fh;
}

static int release(struct fx *f, uint64_t fh, bool dir)
{
    struct args a = {0};
    struct fuse_release_in in = {.fh = fh};
    put(&a, &in, sizeof(in));
    return req(f, dir ? FUSE_RELEASEDIR : FUSE_RELEASE, 1, &a);
}

static int do_read(struct fx *f, uint32_t op, uint64_t fh, uint64_t off, uint32_t size, size_t room)
{
    struct args a = {0};
    struct fuse_read_in in = {.fh = fh, .offset = off, .size = size};
    put(&a, &in, sizeof(in));
    return raw_req(f, op, 1, &a, -1, 0, room);
}

static int do_write(struct fx *f, uint64_t fh, uint64_t off, const void *data, uint32_t size,
                    uint32_t claimed)
{
    struct args a = {0};
    struct fuse_write_in in = {.fh = fh, .offset = off, .size = claimed};
    put(&a, &in, sizeof(in));
    put(&a, data, size);
    /* Small iovecs: the data is read in place across many of them. */
    int rc = raw_req(f, FUSE_WRITE, 1, &a, -1, 13, 4096);
    if (rc < 0)
        return rc;
    assert_int_equal(rc, sizeof(struct fuse_write_out));
    return (int)((struct fuse_write_out *)payload(f))->size;
}

static int getattr(struct fx *f, uint64_t nodeid, struct fuse_attr *attr)
{
    struct args a = {0};
    struct fuse_getattr_in in = {0};
    put(&a, &in, sizeof(in));
    int rc = req(f, FUSE_GETATTR, nodeid, &a);
    if (rc < 0)
        return rc;
    assert_int_equal(rc, sizeof(struct fuse_attr_out));
    *attr = ((struct fuse_attr_out *)payload(f))->attr;
    return 0;
}

/* ---- INIT ---- */

static void test_init_negotiation(void **state)
{
    struct fx *f = *state;
    struct args a = {0};
    /* Nothing but INIT before INIT. */
    put_str(&a, "file.txt");
    assert_int_equal(req(f, FUSE_LOOKUP, 1, &a), -EIO);

    /* A newer major: we answer with ours only, the kernel retries. */
    a.n = 0;
    struct fuse_init_in in = {.major = 8, .minor = 0};
    put(&a, &in, sizeof(in));
    assert_int_equal(req(f, FUSE_INIT, 0, &a), sizeof(struct fuse_init_out));
    struct fuse_init_out *o = payload(f);
    assert_int_equal(o->major, 7);
    assert_int_equal(o->max_write, 0);
    a.n = 0;
    put_str(&a, "file.txt");
    assert_int_equal(req(f, FUSE_LOOKUP, 1, &a), -EIO);

    /* Too old a minor. */
    a.n = 0;
    in = (struct fuse_init_in){.major = 7, .minor = 26};
    put(&a, &in, sizeof(in));
    assert_int_equal(req(f, FUSE_INIT, 0, &a), -EPROTO);

    /*
     * 7.36 with a mix of flags: we say 7.31 and grant only what we do. Never
     * HANDLE_KILLPRIV(_V2): the guest kernel keeps asking for the privilege
     * bits to go (allowSetuid relies on it).
     */
    a.n = 0;
    in = (struct fuse_init_in){.major = 7,
                               .minor = 36,
                               .max_readahead = 131072,
                               .flags = FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_WRITEBACK_CACHE |
                                        FUSE_MAX_PAGES | FUSE_DO_READDIRPLUS | FUSE_FLOCK_LOCKS |
                                        FUSE_HANDLE_KILLPRIV | FUSE_HANDLE_KILLPRIV_V2};
    put(&a, &in, sizeof(in));
    assert_int_equal(req(f, FUSE_INIT, 0, &a), sizeof(struct fuse_init_out));
    o = payload(f);
    assert_int_equal(o->major, 7);
    assert_int_equal(o->minor, 31);
    assert_int_equal(o->max_readahead, 131072);
    assert_int_equal(o->flags, FUSE_ASYNC_READ | FUSE_MAX_PAGES | FUSE_DO_READDIRPLUS);
    assert_int_equal(o->max_write, 1u << 20);
    assert_int_equal(o->max_pages, 256);

    /* 7.29 gets 7.29 back. */
    a.n = 0;
    in.minor = 29;
    put(&a, &in, sizeof(in));
    assert_int_equal(req(f, FUSE_INIT, 0, &a), sizeof(struct fuse_init_out));
    assert_int_equal(((struct fuse_init_out *)payload(f))->minor, 29);

    /* Now LOOKUP works. */
    struct fuse_entry_out e;
    assert_int_equal(lookup(f, 1, "file.txt", &e), 0);

    /* Reset forgets everything: INIT again first. */
    fuse_server_reset(f->s);
    assert_int_equal(fuse_server_inode_count(f->s), 1);
    assert_int_equal(lookup(f, 1, "file.txt", &e), -EIO);
    do_init(f);
    /* DESTROY likewise. */
    assert_int_equal(lookup(f, 1, "file.txt", &e), 0);
    assert_int_equal(req(f, FUSE_DESTROY, 0, NULL), 0);
    assert_int_equal(fuse_server_inode_count(f->s), 1);
    assert_int_equal(lookup(f, 1, "file.txt", &e), -EIO);
}

/* ---- the operations ---- */

static void test_lookup_getattr_forget(void **state)
{
    struct fx *f = *state;
    do_init(f);
    struct fuse_entry_out e;
    assert_int_equal(lookup(f, 1, "file.txt", &e), 0);
    struct stat st;
    assert_int_equal(stat(at(f, "file.txt"), &st), 0);
    assert_int_equal(e.attr.ino, st.st_ino);
    assert_int_equal(e.attr.size, strlen(FILE_TEXT));
    assert_true(S_ISREG(e.attr.mode));
    assert_int_equal(fuse_server_inode_count(f->s), 2);
    /* Same inode, same nodeid: a second reference, not a second inode. */
    assert_int_equal(lookup_ok(f, 1, "file.txt"), e.nodeid);
    assert_int_equal(fuse_server_inode_count(f->s), 2);
    uint64_t sub = lookup_ok(f, 1, "sub");
    uint64_t inner = lookup_ok(f, sub, "inner.txt");
    assert_int_equal(fuse_server_inode_count(f->s), 4);
    struct fuse_attr attr;
    assert_int_equal(getattr(f, inner, &attr), 0);
    assert_int_equal(attr.size, 6);
    assert_int_equal(getattr(f, 1, &attr), 0);
    assert_true(S_ISDIR(attr.mode));
    assert_int_equal(lookup(f, 1, "missing", &e), -ENOENT);
    assert_int_equal(lookup(f, e.nodeid == 0 ? inner : inner, "x", &e), -ENOTDIR);

    /* Two references: one FORGET keeps it, the second drops it. */
    uint64_t file = lookup_ok(f, 1, "file.txt"); /* now 3 references */
    forget(f, file, 2);
    assert_int_equal(fuse_server_inode_count(f->s), 4);
    assert_int_equal(getattr(f, file, &attr), 0);
    forget(f, file, 1);
    assert_int_equal(fuse_server_inode_count(f->s), 3);
    assert_int_equal(getattr(f, file, &attr), -ESTALE);
    /* The slot is reused with a new generation: the old id stays dead. */
    uint64_t again = lookup_ok(f, 1, "file.txt");
    assert_int_not_equal(again, file);
    assert_int_equal(again & 0xffffffffu, file & 0xffffffffu);
    assert_int_equal(getattr(f, file, &attr), -ESTALE);
    assert_int_equal(getattr(f, again, &attr), 0);

    /* BATCH_FORGET, its count larger than the entries it carries. */
    struct args a = {0};
    struct fuse_batch_forget_in b = {.count = 1000};
    struct fuse_forget_one one[2] = {{.nodeid = inner, .nlookup = 1},
                                     {.nodeid = sub, .nlookup = 1}};
    put(&a, &b, sizeof(b));
    put(&a, one, sizeof(one));
    assert_int_equal(req(f, FUSE_BATCH_FORGET, 0, &a), INT32_MIN);
    assert_int_equal(fuse_server_inode_count(f->s), 2);
    /* The root is never forgotten. */
    forget(f, 1, 1000);
    assert_int_equal(getattr(f, 1, &attr), 0);
    assert_int_equal(fuse_server_inode_count(f->s), 2);
}

/* Names READDIR(PLUS) returns from fh, in chunks of `size` bytes, and the lookups it took. */
static void list_dir(struct fx *f, uint64_t fh, bool plus, uint32_t size, char *names,
                     size_t names_len, unsigned *with_nodeid)
{
    uint64_t off = 0;
    names[0] = 0;
    *with_nodeid = 0;
    for (int round = 0; round < 100; round++) {
        int rc = do_read(f, plus ? FUSE_READDIRPLUS : FUSE_READDIR, fh, off, size, 4096);
        assert_true(rc >= 0);
        if (rc == 0)
            return;
        assert_true((uint32_t)rc <= size);
        const uint8_t *p = payload(f);
        for (int pos = 0; pos < rc;) {
            const struct fuse_dirent *d;
            if (plus) {
                const struct fuse_direntplus *dp = (const void *)(p + pos);
                d = &dp->dirent;
                bool dot =
                    !strncmp(d->name, ".", d->namelen) || !strncmp(d->name, "..", d->namelen);
                if (dot)
                    assert_int_equal(dp->entry_out.nodeid, 0);
                else
                    assert_int_not_equal(dp->entry_out.nodeid, 0);
                *with_nodeid += dp->entry_out.nodeid != 0;
                pos += FUSE_DIRENTPLUS_SIZE(dp);
            } else {
                d = (const void *)(p + pos);
                pos += FUSE_DIRENT_SIZE(d);
            }
            assert_true(d->namelen > 0 && d->namelen <= NAME_MAX);
            strncat(names, " ", names_len - strlen(names) - 1);
            strncat(names, d->name,
                    d->namelen < names_len - strlen(names) - 1 ? d->namelen
                                                               : names_len - strlen(names) - 1);
            off = d->off;
        }
    }
    fail_msg("READDIR never reached the end");
}

static int count_words(const char *s, const char *w)
{
    int n = 0;
    size_t l = strlen(w);
    for (const char *p = s; (p = strstr(p, w)); p += l)
        if (p[-1] == ' ' && (p[l] == ' ' || p[l] == 0))
            n++;
    return n;
}

static void test_readdir(void **state)
{
    struct fx *f = *state;
    do_init(f);
    for (int i = 0; i < 40; i++) {
        char n[64];
        snprintf(n, sizeof(n), "many-%02d-with-a-longer-name-to-fill-records", i);
        write_file(at(f, n), "x");
    }
    int64_t fh = open_node(f, 1, true, 0);
    assert_true(fh >= 0);
    assert_int_equal(fuse_server_handle_count(f->s), 1);
    char names[8192];
    unsigned refs;
    /* 200-byte replies: many rounds, each resumed at the last d_off. */
    list_dir(f, (uint64_t)fh, false, 200, names, sizeof(names), &refs);
    assert_int_equal(refs, 0);
    const char *want[] = {".",
                          "..",
                          "file.txt",
                          "sub",
                          "out-link",
                          "abs-link",
                          "dir-link",
                          "fifo",
                          "many-00-with-a-longer-name-to-fill-records",
                          "many-39-with-a-longer-name-to-fill-records"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(count_words(names, want[i]), 1);
    assert_int_equal(fuse_server_inode_count(f->s), 1);

    /* READDIRPLUS: each entry but . and .. is looked up (46 of them). */
    list_dir(f, (uint64_t)fh, true, 4096, names, sizeof(names), &refs);
    assert_int_equal(refs, 46);
    assert_int_equal(count_words(names, "many-17-with-a-longer-name-to-fill-records"), 1);
    assert_int_equal(fuse_server_inode_count(f->s), 47);
    /* A second pass takes a second reference on the same nodeids. */
    list_dir(f, (uint64_t)fh, true, 4096, names, sizeof(names), &refs);
    assert_int_equal(fuse_server_inode_count(f->s), 47);
    uint64_t sub = lookup_ok(f, 1, "sub");
    forget(f, sub, 2);
    assert_int_equal(fuse_server_inode_count(f->s), 47);
    forget(f, sub, 1);
    assert_int_equal(fuse_server_inode_count(f->s), 46);

    /* A file handle is not a directory handle and back. */
    assert_int_equal(do_read(f, FUSE_READ, (uint64_t)fh, 0, 10, 4096), -EISDIR);
    assert_int_equal(release(f, (uint64_t)fh, true), 0);
    assert_int_equal(fuse_server_handle_count(f->s), 0);
    assert_int_equal(do_read(f, FUSE_READDIR, (uint64_t)fh, 0, 4096, 4096), -EBADF);
    /* OPENDIR on a file, OPEN on a directory. */
    uint64_t file = lookup_ok(f, 1, "file.txt");
    assert_int_equal(open_node(f, file, true, 0), -ENOTDIR);
    assert_int_equal(open_node(f, 1, false, O_RDONLY), -EISDIR);
}

static void test_open_read_write_release(void **state)
{
    struct fx *f = *state;
    do_init(f);
    uint64_t file = lookup_ok(f, 1, "file.txt");
    int64_t fh = open_node(f, file, false, O_RDWR);
    assert_true(fh >= 0);
    assert_int_equal(do_read(f, FUSE_READ, (uint64_t)fh, 0, 100, 4096), strlen(FILE_TEXT));
    assert_memory_equal(payload(f), FILE_TEXT, strlen(FILE_TEXT));
    /* Reads at an offset, and limited by the reply room. */
    assert_int_equal(do_read(f, FUSE_READ, (uint64_t)fh, 6, 100, 4096), 6);
    assert_memory_equal(payload(f), "share\n", 6);
    assert_int_equal(do_read(f, FUSE_READ, (uint64_t)fh, 0, 100, 16 + 5), 5);
    assert_memory_equal(payload(f), "hello", 5);
    /* Write across 13-byte iovecs, at an offset. */
    char data[3000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)('a' + i % 26);
    assert_int_equal(do_write(f, (uint64_t)fh, 6, data, sizeof(data), sizeof(data)), sizeof(data));
    char *host = malloc(4096);
    assert_non_null(read_file(at(f, "file.txt"), host, 4096));
    assert_int_equal(strlen(host), 6 + sizeof(data));
    assert_memory_equal(host, "hello ", 6);
    assert_memory_equal(host + 6, data, sizeof(data));
    /* A WRITE claiming more data than the request carries changes nothing. */
    assert_int_equal(do_write(f, (uint64_t)fh, 0, "XYZ", 3, 4), -EINVAL);
    assert_non_null(read_file(at(f, "file.txt"), host, 4096));
    assert_memory_equal(host, "hello ", 6);
    /* A big read straight into the reply buffers. */
    assert_int_equal(do_read(f, FUSE_READ, (uint64_t)fh, 0, 1u << 20, OUT_MAX), 6 + sizeof(data));
    assert_memory_equal((uint8_t *)payload(f) + 6, data, sizeof(data));
    free(host);

    /* Read-only handle: writes fail on the host. */
    int64_t ro = open_node(f, file, false, O_RDONLY);
    assert_true(ro >= 0);
    assert_int_equal(do_write(f, (uint64_t)ro, 0, "Z", 1, 1), -EBADF);
    assert_int_equal(fuse_server_handle_count(f->s), 2);

    /* FLUSH, FSYNC, then RELEASE: the handle dies. */
    struct args a = {0};
    struct fuse_flush_in fl = {.fh = (uint64_t)fh};
    put(&a, &fl, sizeof(fl));
    assert_int_equal(req(f, FUSE_FLUSH, file, &a), 0);
    a.n = 0;
    struct fuse_fsync_in fs = {.fh = (uint64_t)fh, .fsync_flags = 1};
    put(&a, &fs, sizeof(fs));
    assert_int_equal(req(f, FUSE_FSYNC, file, &a), 0);
    assert_int_equal(release(f, (uint64_t)fh, false), 0);
    assert_int_equal(release(f, (uint64_t)ro, false), 0);
    assert_int_equal(fuse_server_handle_count(f->s), 0);
    /* Stale handles. */
    assert_int_equal(release(f, (uint64_t)fh, false), -EBADF);
    assert_int_equal(do_read(f, FUSE_READ, (uint64_t)fh, 0, 10, 4096), -EBADF);
    assert_int_equal(do_write(f, (uint64_t)fh, 0, "Z", 1, 1), -EBADF);
    assert_int_equal(req(f, FUSE_FSYNC, file, &a), -EBADF);
    /* A new handle reusing the slot has a new generation. */
    int64_t fh2 = open_node(f, file, false, O_RDONLY);
    assert_true(fh2 >= 0 && fh2 != fh);
    assert_int_equal(do_read(f, FUSE_READ, (uint64_t)fh, 0, 10, 4096), -EBADF);
    /* Forged handles. */
    assert_int_equal(do_read(f, FUSE_READ, 77, 0, 10, 4096), -EBADF);
    assert_int_equal(do_read(f, FUSE_READ, UINT64_MAX, 0, 10, 4096), -EBADF);
    assert_int_equal(do_read(f, FUSE_READ, (uint64_t)fh2 + (1ull << 32), 0, 10, 4096), -EBADF);
    assert_int_equal(do_read(f, FUSE_READ, (uint64_t)fh2, 1ull << 63, 10, 4096), -EINVAL);
    assert_int_equal(release(f, (uint64_t)fh2, false), 0);
}

static int create(struct fx *f, uint64_t parent, const char *name, uint32_t flags, uint32_t mode,
                  uint64_t *nodeid, uint64_t *fh)
{
    struct args a = {0};
    struct fuse_create_in in = {.flags = flags, .mode = S_IFREG | mode};
    put(&a, &in, sizeof(in));
    put_str(&a, name);
    int rc = req(f, FUSE_CREATE, parent, &a);
    if (rc < 0)
        return rc;
    assert_int_equal(rc, sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out));
    const struct fuse_entry_out *e = payload(f);
    const struct fuse_open_out *o = (const void *)(e + 1);
    *nodeid = e->nodeid;
    *fh = o->fh;
    return 0;
}

static int name_op(struct fx *f, uint32_t op, uint64_t parent, const void *fixed, size_t fixed_len,
                   const char *name, const char *name2)
{
    struct args a = {0};
    if (fixed_len)
        put(&a, fixed, fixed_len);
    put_str(&a, name);
    if (name2)
        put_str(&a, name2);
    return req(f, op, parent, &a);
}

static void test_create_mkdir_unlink_rename_links(void **state)
{
    struct fx *f = *state;
    do_init(f);
    struct stat st;
    uint64_t id, fh;
    assert_int_equal(create(f, 1, "new.txt", O_RDWR, 0640, &id, &fh), 0);
    assert_int_equal(stat(at(f, "new.txt"), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0640 & ~0); /* our umask is the guest's business */
    assert_int_equal(do_write(f, fh, 0, "created", 7, 7), 7);
    assert_int_equal(release(f, fh, false), 0);
    char buf[64];
    assert_string_equal(read_file(at(f, "new.txt"), buf, sizeof(buf)), "created");
    /* O_EXCL on an existing name; without it, the existing file is opened. */
    assert_int_equal(create(f, 1, "new.txt", O_RDWR | O_EXCL, 0600, &id, &fh), -EEXIST);
    assert_int_equal(create(f, 1, "new.txt", O_RDWR, 0600, &id, &fh), 0);
    assert_int_equal(release(f, fh, false), 0);

    struct fuse_mkdir_in mk = {.mode = 0750};
    assert_int_equal(name_op(f, FUSE_MKDIR, 1, &mk, sizeof(mk), "d", NULL),
                     sizeof(struct fuse_entry_out));
    uint64_t d = ((struct fuse_entry_out *)payload(f))->nodeid;
    assert_int_equal(stat(at(f, "d"), &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(name_op(f, FUSE_MKDIR, 1, &mk, sizeof(mk), "d", NULL), -EEXIST);

    /* RENAME into d, then RENAME2 with NOREPLACE onto an existing name. */
    struct fuse_rename_in rn = {.newdir = d};
    assert_int_equal(name_op(f, FUSE_RENAME, 1, &rn, sizeof(rn), "new.txt", "moved.txt"), 0);
    assert_int_equal(access(at(f, "new.txt"), F_OK), -1);
    assert_string_equal(read_file(at(f, "d/moved.txt"), buf, sizeof(buf)), "created");
    write_file(at(f, "d/other.txt"), "other");
    struct fuse_rename2_in rn2 = {.newdir = d, .flags = RENAME_NOREPLACE};
    assert_int_equal(name_op(f, FUSE_RENAME2, d, &rn2, sizeof(rn2), "moved.txt", "other.txt"),
                     -EEXIST);
    rn2.flags = RENAME_EXCHANGE;
    assert_int_equal(name_op(f, FUSE_RENAME2, d, &rn2, sizeof(rn2), "moved.txt", "other.txt"),
                     -EINVAL);
    rn2.flags = 0;
    assert_int_equal(name_op(f, FUSE_RENAME2, d, &rn2, sizeof(rn2), "moved.txt", "other.txt"), 0);
    assert_string_equal(read_file(at(f, "d/other.txt"), buf, sizeof(buf)), "created");

    /* SYMLINK + READLINK; the target is text, never resolved. */
    assert_int_equal(name_op(f, FUSE_SYMLINK, d, NULL, 0, "sl", "../../../etc/passwd"),
                     sizeof(struct fuse_entry_out));
    uint64_t sl = ((struct fuse_entry_out *)payload(f))->nodeid;
    assert_true(S_ISLNK(((struct fuse_entry_out *)payload(f))->attr.mode));
    assert_int_equal(readlink(at(f, "d/sl"), buf, sizeof(buf)), 19);
    assert_int_equal(req(f, FUSE_READLINK, sl, NULL), 19);
    assert_memory_equal(payload(f), "../../../etc/passwd", 19);
    /* A reply room shorter than the target. */
    assert_int_equal(raw_req(f, FUSE_READLINK, sl, NULL, -1, 0, 16 + 10), -ERANGE);
    assert_int_equal(req(f, FUSE_READLINK, d, NULL), -EINVAL);
    assert_int_equal(open_node(f, sl, false, O_RDONLY), -ELOOP);

    /* LINK: a second name for a file, not for a directory. */
    uint64_t other = lookup_ok(f, d, "other.txt");
    struct fuse_link_in ln = {.oldnodeid = other};
    assert_int_equal(name_op(f, FUSE_LINK, 1, &ln, sizeof(ln), "hard.txt", NULL),
                     sizeof(struct fuse_entry_out));
    assert_int_equal(((struct fuse_entry_out *)payload(f))->nodeid, other);
    assert_string_equal(read_file(at(f, "hard.txt"), buf, sizeof(buf)), "created");
    ln.oldnodeid = d;
    assert_int_equal(name_op(f, FUSE_LINK, 1, &ln, sizeof(ln), "hard-dir", NULL), -EPERM);
    ln.oldnodeid = 0xdead00000007ull;
    assert_int_equal(name_op(f, FUSE_LINK, 1, &ln, sizeof(ln), "hard2", NULL), -ESTALE);

    /* MKNOD: a FIFO yes, a device or socket no. */
    struct fuse_mknod_in mn = {.mode = S_IFIFO | 0600};
    assert_int_equal(name_op(f, FUSE_MKNOD, d, &mn, sizeof(mn), "pipe", NULL),
                     sizeof(struct fuse_entry_out));
    mn = (struct fuse_mknod_in){.mode = S_IFCHR | 0600, .rdev = makedev(1, 3)};
    assert_int_equal(name_op(f, FUSE_MKNOD, d, &mn, sizeof(mn), "null", NULL), -EPERM);
    mn.mode = S_IFBLK | 0600;
    assert_int_equal(name_op(f, FUSE_MKNOD, d, &mn, sizeof(mn), "blk", NULL), -EPERM);
    mn.mode = S_IFSOCK | 0600;
    assert_int_equal(name_op(f, FUSE_MKNOD, d, &mn, sizeof(mn), "sock", NULL), -EPERM);
    assert_int_equal(access(at(f, "d/null"), F_OK), -1);

    /* UNLINK and RMDIR. */
    assert_int_equal(name_op(f, FUSE_RMDIR, 1, NULL, 0, "d", NULL), -ENOTEMPTY);
    assert_int_equal(name_op(f, FUSE_UNLINK, d, NULL, 0, "other.txt", NULL), 0);
    assert_int_equal(name_op(f, FUSE_UNLINK, d, NULL, 0, "sl", NULL), 0);
    assert_int_equal(name_op(f, FUSE_UNLINK, d, NULL, 0, "pipe", NULL), 0);
    assert_int_equal(name_op(f, FUSE_UNLINK, d, NULL, 0, "gone", NULL), -ENOENT);
    assert_int_equal(name_op(f, FUSE_UNLINK, 1, NULL, 0, "d", NULL), -EISDIR);
    assert_int_equal(name_op(f, FUSE_RMDIR, 1, NULL, 0, "d", NULL), 0);
    assert_int_equal(access(at(f, "d"), F_OK), -1);
    /* The unlinked file is still reachable through its nodeid (hard.txt holds it). */
    struct fuse_attr attr;
    assert_int_equal(getattr(f, other, &attr), 0);
    assert_int_equal(attr.nlink, 1);
    /* The removed directory's nodeid lives until FORGET, but nothing can be made in it. */
    assert_int_equal(name_op(f, FUSE_MKDIR, d, &mk, sizeof(mk), "x", NULL), -ENOENT);
}

static void test_setattr(void **state)
{
    struct fx *f = *state;
    do_init(f);
    uint64_t file = lookup_ok(f, 1, "file.txt");
    struct args a = {0};
    struct fuse_setattr_in in = {.valid = FATTR_MODE, .mode = 0600};
    put(&a, &in, sizeof(in));
    assert_int_equal(req(f, FUSE_SETATTR, file, &a), sizeof(struct fuse_attr_out));
    struct stat st;
    assert_int_equal(stat(at(f, "file.txt"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(((struct fuse_attr_out *)payload(f))->attr.mode & 07777, 0600);
    /* Truncate by nodeid and through a handle. */
    a.n = 0;
    in = (struct fuse_setattr_in){.valid = FATTR_SIZE, .size = 5};
    put(&a, &in, sizeof(in));
    assert_int_equal(req(f, FUSE_SETATTR, file, &a), sizeof(struct fuse_attr_out));
    assert_int_equal(stat(at(f, "file.txt"), &st), 0);
    assert_int_equal(st.st_size, 5);
    int64_t fh = open_node(f, file, false, O_RDWR);
    assert_true(fh >= 0);
    a.n = 0;
    in = (struct fuse_setattr_in){.valid = FATTR_SIZE | FATTR_FH, .size = 2, .fh = (uint64_t)fh};
    put(&a, &in, sizeof(in));
    assert_int_equal(req(f, FUSE_SETATTR, file, &a), sizeof(struct fuse_attr_out));
    assert_int_equal(stat(at(f, "file.txt"), &st), 0);
    assert_int_equal(st.st_size, 2);
    /* A forged handle. */
    a.n = 0;
    in.fh = (uint64_t)fh + 5;
    put(&a, &in, sizeof(in));
    assert_int_equal(req(f, FUSE_SETATTR, file, &a), -EBADF);
    /* Times. */
    a.n = 0;
    in = (struct fuse_setattr_in){
        .valid = FATTR_MTIME | FATTR_ATIME, .mtime = 1000000000, .atime = 1200000000};
    put(&a, &in, sizeof(in));
    assert_int_equal(req(f, FUSE_SETATTR, file, &a), sizeof(struct fuse_attr_out));
    assert_int_equal(stat(at(f, "file.txt"), &st), 0);
    assert_int_equal(st.st_mtime, 1000000000);
    assert_int_equal(st.st_atime, 1200000000);
    /* Size of a directory. */
    a.n = 0;
    in = (struct fuse_setattr_in){.valid = FATTR_SIZE, .size = 0};
    put(&a, &in, sizeof(in));
    assert_int_equal(req(f, FUSE_SETATTR, 1, &a), -EISDIR);
    assert_int_equal(release(f, (uint64_t)fh, false), 0);
    /* STATFS and ACCESS. */
    assert_int_equal(req(f, FUSE_STATFS, 1, NULL), sizeof(struct fuse_statfs_out));
    assert_true(((struct fuse_statfs_out *)payload(f))->st.bsize > 0);
    a.n = 0;
    struct fuse_access_in ac = {.mask = R_OK};
    put(&a, &ac, sizeof(ac));
    assert_int_equal(req(f, FUSE_ACCESS, file, &a), 0);
}

/* ---- setuid and setgid ---- */

/* The host's mode bits of a name in the share (07777 part). */
static mode_t host_mode(struct fx *f, const char *rel)
{
    struct stat st;
    assert_int_equal(lstat(at(f, rel), &st), 0);
    return st.st_mode & 07777;
}

static int setattr_mode(struct fx *f, uint64_t nodeid, uint32_t valid, uint32_t mode, uint64_t size)
{
    struct args a = {0};
    struct fuse_setattr_in in = {.valid = valid, .mode = mode, .size = size};
    if (valid & FATTR_UID)
        in.uid = getuid();
    put(&a, &in, sizeof(in));
    return req(f, FUSE_SETATTR, nodeid, &a);
}

static int write_flags(struct fx *f, uint64_t fh, const char *data, uint32_t flags)
{
    struct args a = {0};
    struct fuse_write_in in = {.fh = fh, .size = (uint32_t)strlen(data), .write_flags = flags};
    put(&a, &in, sizeof(in));
    put(&a, data, strlen(data));
    return req(f, FUSE_WRITE, 1, &a);
}

static int mkdir_mode(struct fx *f, const char *name, uint32_t mode)
{
    struct fuse_mkdir_in mk = {.mode = mode};
    return name_op(f, FUSE_MKDIR, 1, &mk, sizeof(mk), name, NULL);
}

static void test_setid_stripped_from_guest_modes(void **state)
{
    struct fx *f = *state;
    do_init(f);
    uint64_t file = lookup_ok(f, 1, "file.txt");
    /* SETATTR: chmod 4755, 2755, 6777, 2644 all land without the bits. */
    const uint32_t modes[][2] = {{04755, 0755}, {02755, 0755}, {06777, 0777}, {02644, 0644}};
    for (unsigned k = 0; k < 4; k++) {
        assert_int_equal(setattr_mode(f, file, FATTR_MODE, modes[k][0], 0),
                         sizeof(struct fuse_attr_out));
        assert_int_equal(host_mode(f, "file.txt"), modes[k][1]);
        assert_int_equal(((struct fuse_attr_out *)payload(f))->attr.mode & 07777, modes[k][1]);
    }
    /* A directory, and the share's root itself. */
    uint64_t sub = lookup_ok(f, 1, "sub");
    assert_int_equal(setattr_mode(f, sub, FATTR_MODE, 06755, 0), sizeof(struct fuse_attr_out));
    assert_int_equal(host_mode(f, "sub"), 0755);
    assert_int_equal(setattr_mode(f, 1, FATTR_MODE, 02755, 0), sizeof(struct fuse_attr_out));
    struct stat st;
    assert_int_equal(stat(f->share, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);

    /* CREATE, MKDIR and MKNOD with setuid/setgid modes (our umask 022 also applies). */
    uint64_t id, fh;
    assert_int_equal(create(f, 1, "suid", O_RDWR, 04755, &id, &fh), 0);
    assert_int_equal(host_mode(f, "suid") & (S_ISUID | S_ISGID), 0);
    assert_int_equal(((struct fuse_entry_out *)payload(f))->attr.mode & (S_ISUID | S_ISGID), 0);
    assert_int_equal(release(f, fh, false), 0);
    assert_int_equal(create(f, 1, "sgid", O_RDWR, 06775, &id, &fh), 0);
    assert_int_equal(host_mode(f, "sgid") & (S_ISUID | S_ISGID), 0);
    assert_int_equal(release(f, fh, false), 0);
    assert_int_equal(mkdir_mode(f, "gdir", 02775), sizeof(struct fuse_entry_out));
    assert_int_equal(host_mode(f, "gdir") & (S_ISUID | S_ISGID), 0);
    assert_int_equal(mkdir_mode(f, "udir", 04755), sizeof(struct fuse_entry_out));
    assert_int_equal(host_mode(f, "udir") & (S_ISUID | S_ISGID), 0);
    struct fuse_mknod_in mn = {.mode = S_IFREG | 06755};
    assert_int_equal(name_op(f, FUSE_MKNOD, 1, &mn, sizeof(mn), "node", NULL),
                     sizeof(struct fuse_entry_out));
    assert_int_equal(host_mode(f, "node") & (S_ISUID | S_ISGID), 0);
    mn.mode = S_IFIFO | 06644;
    assert_int_equal(name_op(f, FUSE_MKNOD, 1, &mn, sizeof(mn), "pipe", NULL),
                     sizeof(struct fuse_entry_out));
    assert_int_equal(host_mode(f, "pipe") & (S_ISUID | S_ISGID), 0);
}

/* A file the host made setuid (the test does, directly) loses the bits when the guest changes it.
 */
static void test_setid_cleared_on_change(void **state)
{
    struct fx *f = *state;
    do_init(f);
    uint64_t file = lookup_ok(f, 1, "file.txt");
    /* WRITE: S_ISUID always, S_ISGID with group exec. */
    assert_int_equal(chmod(at(f, "file.txt"), 04755), 0);
    int64_t fh = open_node(f, file, false, O_RDWR);
    assert_true(fh >= 0);
    assert_int_equal(write_flags(f, (uint64_t)fh, "x", 0), sizeof(struct fuse_write_out));
    assert_int_equal(host_mode(f, "file.txt"), 0755);
    assert_int_equal(chmod(at(f, "file.txt"), 06775), 0);
    assert_int_equal(write_flags(f, (uint64_t)fh, "y", 0), sizeof(struct fuse_write_out));
    assert_int_equal(host_mode(f, "file.txt"), 0775);
    /* S_ISGID without group exec is a locking mark, not a privilege: kept, as the kernel does. */
    assert_int_equal(chmod(at(f, "file.txt"), 02644), 0);
    assert_int_equal(write_flags(f, (uint64_t)fh, "z", 0), sizeof(struct fuse_write_out));
    assert_int_equal(host_mode(f, "file.txt"), 02644);
    /* Truncation through the handle and by nodeid. */
    assert_int_equal(chmod(at(f, "file.txt"), 04755), 0);
    struct args a = {0};
    struct fuse_setattr_in sa = {.valid = FATTR_SIZE | FATTR_FH, .size = 1, .fh = (uint64_t)fh};
    put(&a, &sa, sizeof(sa));
    assert_int_equal(req(f, FUSE_SETATTR, file, &a), sizeof(struct fuse_attr_out));
    assert_int_equal(host_mode(f, "file.txt"), 0755);
    assert_int_equal(release(f, (uint64_t)fh, false), 0);
    assert_int_equal(chmod(at(f, "file.txt"), 06755), 0);
    assert_int_equal(setattr_mode(f, file, FATTR_SIZE, 0, 0), sizeof(struct fuse_attr_out));
    assert_int_equal(host_mode(f, "file.txt"), 0755);
    assert_int_equal(((struct fuse_attr_out *)payload(f))->attr.mode & 07777, 0755);
    /* chown (to krunkit's own uid: allowed whoever runs the test). */
    assert_int_equal(chmod(at(f, "file.txt"), 04755), 0);
    assert_int_equal(setattr_mode(f, file, FATTR_UID, 0, 0), sizeof(struct fuse_attr_out));
    assert_int_equal(host_mode(f, "file.txt"), 0755);
    /* OPEN with O_TRUNC, and CREATE of the existing name with O_TRUNC. */
    assert_int_equal(chmod(at(f, "file.txt"), 04755), 0);
    fh = open_node(f, file, false, O_WRONLY | O_TRUNC);
    assert_true(fh >= 0);
    assert_int_equal(host_mode(f, "file.txt"), 0755);
    assert_int_equal(release(f, (uint64_t)fh, false), 0);
    assert_int_equal(chmod(at(f, "file.txt"), 06755), 0);
    uint64_t id, cfh;
    assert_int_equal(create(f, 1, "file.txt", O_WRONLY | O_TRUNC, 0644, &id, &cfh), 0);
    assert_int_equal(host_mode(f, "file.txt"), 0755);
    assert_int_equal(release(f, cfh, false), 0);
    /* Opening without O_TRUNC and reading change nothing. */
    assert_int_equal(chmod(at(f, "file.txt"), 04755), 0);
    fh = open_node(f, file, false, O_RDONLY);
    assert_true(fh >= 0);
    assert_int_equal(host_mode(f, "file.txt"), 04755);
    assert_int_equal(release(f, (uint64_t)fh, false), 0);
    assert_int_equal(chmod(at(f, "file.txt"), 0644), 0);
}

/* allowSetuid=true: the guest's bits are kept; only what the guest asks for is cleared. */
static void test_setid_allowed(void **state)
{
    struct fx *f = *state;
    fuse_server_destroy(f->s);
    assert_int_equal(server_on(f->share, true, &f->s), 0);
    do_init(f);
    uint64_t file = lookup_ok(f, 1, "file.txt");
    assert_int_equal(setattr_mode(f, file, FATTR_MODE, 04755, 0), sizeof(struct fuse_attr_out));
    assert_int_equal(host_mode(f, "file.txt"), 04755);
    assert_int_equal(setattr_mode(f, file, FATTR_MODE, 02755, 0), sizeof(struct fuse_attr_out));
    assert_int_equal(host_mode(f, "file.txt"), 02755);
    uint64_t id, fh;
    assert_int_equal(create(f, 1, "suid", O_RDWR, 04755, &id, &fh), 0);
    assert_int_equal(host_mode(f, "suid"), 04755);
    /* A write keeps them, unless the guest kernel asks for the kill. */
    assert_int_equal(write_flags(f, fh, "x", 0), sizeof(struct fuse_write_out));
    assert_int_equal(host_mode(f, "suid"), 04755);
    assert_int_equal(write_flags(f, fh, "x", FUSE_WRITE_KILL_SUIDGID),
                     sizeof(struct fuse_write_out));
    assert_int_equal(host_mode(f, "suid"), 0755);
    assert_int_equal(release(f, fh, false), 0);
    assert_int_equal(setattr_mode(f, file, FATTR_SIZE, 0, 0), sizeof(struct fuse_attr_out));
    assert_int_equal(host_mode(f, "file.txt"), 02755);
    assert_int_equal(setattr_mode(f, file, FATTR_SIZE | FATTR_KILL_SUIDGID, 0, 0),
                     sizeof(struct fuse_attr_out));
    assert_int_equal(host_mode(f, "file.txt"), 0755);
    /* mkdir(2) itself drops both bits on Linux (a directory only inherits S_ISGID); chmod keeps
     * them. */
    assert_int_equal(mkdir_mode(f, "gdir", 02755), sizeof(struct fuse_entry_out));
    assert_int_equal(host_mode(f, "gdir"), 0755);
    uint64_t gdir = ((struct fuse_entry_out *)payload(f))->nodeid;
    assert_int_equal(setattr_mode(f, gdir, FATTR_MODE, 02755, 0), sizeof(struct fuse_attr_out));
    assert_int_equal(host_mode(f, "gdir"), 02755);
    assert_int_equal(chmod(at(f, "suid"), 0644), 0);
}

/* ---- confinement ---- */

static void test_bad_names(void **state)
{
    struct fx *f = *state;
    do_init(f);
    struct fuse_entry_out e;
    assert_int_equal(lookup(f, 1, "..", &e), -EINVAL);
    assert_int_equal(lookup(f, 1, ".", &e), -EINVAL);
    assert_int_equal(lookup(f, 1, "", &e), -EINVAL);
    assert_int_equal(lookup(f, 1, "sub/inner.txt", &e), -EINVAL);
    assert_int_equal(lookup(f, 1, "/etc", &e), -EINVAL);
    assert_int_equal(lookup(f, 1, "../outside.txt", &e), -EINVAL);
    uint64_t sub = lookup_ok(f, 1, "sub");
    assert_int_equal(lookup(f, sub, "..", &e), -EINVAL);
    assert_int_equal(lookup(f, sub, "../../outside.txt", &e), -EINVAL);
    char longname[NAME_MAX + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[NAME_MAX + 1] = 0;
    assert_int_equal(lookup(f, 1, longname, &e), -ENAMETOOLONG);
    /* A name without its NUL (the request ends inside it). */
    struct args a = {0};
    put(&a, "file.txt", 8);
    assert_int_equal(req(f, FUSE_LOOKUP, 1, &a), -EINVAL);
    /* ... even when the bytes after the claimed length have a NUL. */
    put(&a, "", 1);
    assert_int_equal(raw_req(f, FUSE_LOOKUP, 1, &a, 40 + 8, 0, 4096), -EINVAL);
    /* Names in the creating operations. */
    struct fuse_mkdir_in mk = {.mode = 0755};
    assert_int_equal(name_op(f, FUSE_MKDIR, 1, &mk, sizeof(mk), "..", NULL), -EINVAL);
    assert_int_equal(name_op(f, FUSE_MKDIR, 1, &mk, sizeof(mk), "../escaped", NULL), -EINVAL);
    uint64_t id, fh;
    assert_int_equal(create(f, 1, "../escaped.txt", O_RDWR, 0644, &id, &fh), -EINVAL);
    assert_int_equal(name_op(f, FUSE_SYMLINK, 1, NULL, 0, "../escaped-link", "x"), -EINVAL);
    assert_int_equal(name_op(f, FUSE_UNLINK, 1, NULL, 0, "../outside.txt", NULL), -EINVAL);
    assert_int_equal(name_op(f, FUSE_RMDIR, sub, NULL, 0, "..", NULL), -EINVAL);
    struct fuse_rename_in rn = {.newdir = 1};
    assert_int_equal(name_op(f, FUSE_RENAME, 1, &rn, sizeof(rn), "file.txt", "../moved"), -EINVAL);
    assert_int_equal(name_op(f, FUSE_RENAME, sub, &rn, sizeof(rn), "..", "x"), -EINVAL);
    /* RENAME with only one name. */
    a.n = 0;
    put(&a, &rn, sizeof(rn));
    put_str(&a, "file.txt");
    assert_int_equal(req(f, FUSE_RENAME, 1, &a), -EINVAL);
    struct fuse_link_in ln = {.oldnodeid = lookup_ok(f, 1, "file.txt")};
    assert_int_equal(name_op(f, FUSE_LINK, 1, &ln, sizeof(ln), "../linked", NULL), -EINVAL);
    struct stat st;
    assert_int_equal(stat(at(f, "file.txt"), &st), 0);
    assert_int_equal(st.st_nlink, 1);
}

static void test_symlinks_out_of_the_share(void **state)
{
    struct fx *f = *state;
    do_init(f);
    struct stat outside;
    assert_int_equal(stat(f->outside, &outside), 0);
    const char *links[] = {"out-link", "abs-link"};
    for (int i = 0; i < 2; i++) {
        struct fuse_entry_out e;
        /* LOOKUP gives the link itself, not what it points to. */
        assert_int_equal(lookup(f, 1, links[i], &e), 0);
        assert_true(S_ISLNK(e.attr.mode));
        assert_int_not_equal(e.attr.ino, outside.st_ino);
        struct fuse_attr attr;
        assert_int_equal(getattr(f, e.nodeid, &attr), 0);
        assert_true(S_ISLNK(attr.mode));
        /* OPEN never reaches the target, whatever the flags. */
        assert_int_equal(open_node(f, e.nodeid, false, O_RDONLY), -ELOOP);
        assert_int_equal(open_node(f, e.nodeid, false, O_RDWR | O_TRUNC), -ELOOP);
        assert_int_equal(open_node(f, e.nodeid, true, 0), -ENOTDIR);
        /* Nor SETATTR: no truncate, no chmod, no times through the link. */
        struct args a = {0};
        struct fuse_setattr_in in = {.valid = FATTR_SIZE, .size = 0};
        put(&a, &in, sizeof(in));
        assert_true(req(f, FUSE_SETATTR, e.nodeid, &a) < 0);
        a.n = 0;
        in = (struct fuse_setattr_in){.valid = FATTR_MODE, .mode = 0777};
        put(&a, &in, sizeof(in));
        assert_int_equal(req(f, FUSE_SETATTR, e.nodeid, &a), -EPERM);
        a.n = 0;
        in = (struct fuse_setattr_in){.valid = FATTR_MTIME, .mtime = 1};
        put(&a, &in, sizeof(in));
        assert_int_equal(req(f, FUSE_SETATTR, e.nodeid, &a), -EPERM);
        /* Nor as a directory to look in. */
        assert_int_equal(lookup(f, e.nodeid, "outside.txt", &e), -ENOTDIR);
        /* CREATE over the link's name follows nothing, with or without O_EXCL. */
        uint64_t id, fh;
        assert_int_equal(create(f, 1, links[i], O_RDWR | O_TRUNC, 0644, &id, &fh), -ELOOP);
        assert_int_equal(create(f, 1, links[i], O_RDWR | O_EXCL, 0644, &id, &fh), -EEXIST);
        /* LINK of the link makes another link (or is refused), never a link to the target. */
        a.n = 0;
        struct fuse_link_in ln = {.oldnodeid = lookup_ok(f, 1, links[i])};
        put(&a, &ln, sizeof(ln));
        put_str(&a, "linked");
        int rc = req(f, FUSE_LINK, 1, &a);
        if (rc >= 0) {
            struct stat st;
            assert_int_equal(lstat(at(f, "linked"), &st), 0);
            assert_true(S_ISLNK(st.st_mode));
            assert_int_equal(unlink(at(f, "linked")), 0);
        } else {
            assert_int_equal(rc, -EPERM);
        }
    }
    /* A symlink to a directory outside: not a directory to the server. */
    uint64_t dl = lookup_ok(f, 1, "dir-link");
    struct fuse_mkdir_in mk = {.mode = 0755};
    assert_int_equal(name_op(f, FUSE_MKDIR, dl, &mk, sizeof(mk), "planted", NULL), -ENOTDIR);
    uint64_t id, fh;
    assert_int_equal(create(f, dl, "planted.txt", O_RDWR, 0644, &id, &fh), -ENOTDIR);
    assert_int_equal(open_node(f, dl, true, 0), -ENOTDIR);
    struct fuse_rename_in rn = {.newdir = dl};
    assert_int_equal(name_op(f, FUSE_RENAME, 1, &rn, sizeof(rn), "file.txt", "moved"), -ENOTDIR);
    /* A symlink the guest makes to the outside is as harmless. */
    assert_int_equal(name_op(f, FUSE_SYMLINK, 1, NULL, 0, "mine", f->outside),
                     sizeof(struct fuse_entry_out));
    uint64_t mine = ((struct fuse_entry_out *)payload(f))->nodeid;
    assert_int_equal(open_node(f, mine, false, O_WRONLY | O_TRUNC), -ELOOP);
    /* teardown checks outside.txt and the top directory. */
}

static void test_fifo_never_opened(void **state)
{
    struct fx *f = *state;
    do_init(f);
    /* Opening a FIFO would block the I/O thread (and this test: the alarm ends it). */
    alarm(10);
    uint64_t fifo = lookup_ok(f, 1, "fifo");
    assert_int_equal(open_node(f, fifo, false, O_RDONLY), -ENXIO);
    assert_int_equal(open_node(f, fifo, false, O_WRONLY), -ENXIO);
    uint64_t id, fh;
    assert_int_equal(create(f, 1, "fifo", O_RDONLY, 0644, &id, &fh), -ENXIO);
    assert_int_equal(fuse_server_handle_count(f->s), 0);
    /* CREATE over a directory. */
    assert_int_equal(create(f, 1, "sub", O_RDONLY, 0644, &id, &fh), -EISDIR);
    alarm(0);
}

static void test_forged_nodeids(void **state)
{
    struct fx *f = *state;
    do_init(f);
    struct fuse_attr attr;
    const uint64_t forged[] = {
        0, 2, 3, 65537, 0xffffffffull, 1ull << 32 | 1, UINT64_MAX, 0x100000002ull};
    for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
        assert_int_equal(getattr(f, forged[i], &attr), -ESTALE);
        struct fuse_entry_out e;
        assert_int_equal(lookup(f, forged[i], "file.txt", &e), -ESTALE);
        assert_int_equal(open_node(f, forged[i], false, O_RDONLY), -ESTALE);
        assert_int_equal(req(f, FUSE_READLINK, forged[i], NULL), -ESTALE);
        struct fuse_rename_in rn = {.newdir = forged[i]};
        assert_int_equal(name_op(f, FUSE_RENAME, 1, &rn, sizeof(rn), "file.txt", "x"), -ESTALE);
        forget(f, forged[i], 1); /* ignored */
    }
    assert_int_equal(fuse_server_inode_count(f->s), 1);
    assert_int_equal(getattr(f, 1, &attr), 0);
    struct stat st;
    assert_int_equal(stat(at(f, "file.txt"), &st), 0);
}

/* ---- framing ---- */

static void test_lying_headers(void **state)
{
    struct fx *f = *state;
    do_init(f);
    struct args a = {0};
    put_str(&a, "file.txt");
    /* len larger than the chain: refused. */
    assert_int_equal(raw_req(f, FUSE_LOOKUP, 1, &a, 40 + 9 + 1, 0, 4096), -EINVAL);
    assert_int_equal(raw_req(f, FUSE_LOOKUP, 1, &a, UINT32_MAX, 0, 4096), -EINVAL);
    /* len smaller than the header. */
    assert_int_equal(raw_req(f, FUSE_LOOKUP, 1, &a, 39, 0, 4096), -EINVAL);
    assert_int_equal(raw_req(f, FUSE_LOOKUP, 1, &a, 0, 0, 4096), -EINVAL);
    /* len cutting the fixed arguments short. */
    a.n = 0;
    struct fuse_read_in rd = {.size = 10};
    put(&a, &rd, sizeof(rd));
    assert_int_equal(raw_req(f, FUSE_READ, 1, &a, 40 + 8, 0, 4096), -EINVAL);
    struct fuse_write_in wr = {.size = 100};
    a.n = 0;
    put(&a, &wr, sizeof(wr));
    put(&a, "short", 5);
    assert_int_equal(raw_req(f, FUSE_WRITE, 1, &a, -1, 0, 4096), -EBADF); /* fh 0 is free */
    /* A header split over iovecs of 3 bytes is fine. */
    a.n = 0;
    put_str(&a, "file.txt");
    assert_true(raw_req(f, FUSE_LOOKUP, 1, &a, -1, 3, 4096) > 0);
    /* Chains shorter than a fuse_in_header: an error with unique 0. */
    struct iovec in = {f->in, 20}, out = {f->out, 4096};
    memset(f->in, 0, 40);
    assert_int_equal(fuse_server_handle(f->s, &in, 1, 20, &out, 1, 4096), 16);
    memcpy(&f->oh, f->out, 16);
    assert_int_equal(f->oh.error, -EINVAL);
    assert_int_equal(f->oh.unique, 0);
    /* Arguments larger than the server ever takes. */
    struct args *big = calloc(1, sizeof(*big));
    assert_non_null(big);
    memset(big->b, 'x', 9000);
    big->n = 9000;
    big->b[8999] = 0;
    assert_int_equal(raw_req(f, FUSE_LOOKUP, 1, big, -1, 0, 4096), -EINVAL);
    free(big);
    /* An opcode we do not know, and one past every table. */
    assert_int_equal(req(f, 9999, 1, NULL), -ENOSYS);
    assert_int_equal(req(f, FUSE_GETXATTR, 1, NULL), -ENOSYS);
    /* Nothing was created by any of it. */
    assert_int_equal(fuse_server_inode_count(f->s), 2);
}

static void test_short_reply_room(void **state)
{
    struct fx *f = *state;
    do_init(f);
    struct args a = {0};
    put_str(&a, "file.txt");
    /* No room for even the header: no reply, nothing written, nothing done. */
    assert_int_equal(raw_req(f, FUSE_LOOKUP, 1, &a, -1, 0, 15), INT32_MIN);
    assert_int_equal(raw_req(f, FUSE_LOOKUP, 1, &a, -1, 0, 0), INT32_MIN);
    assert_int_equal(fuse_server_inode_count(f->s), 1);
    /* Room for the header but not the entry: an error, and no reference taken. */
    assert_int_equal(raw_req(f, FUSE_LOOKUP, 1, &a, -1, 0, 16 + sizeof(struct fuse_entry_out) - 1),
                     -EINVAL);
    assert_int_equal(fuse_server_inode_count(f->s), 1);
    uint64_t id, fh;
    a.n = 0;
    struct fuse_create_in cin = {.flags = O_RDWR, .mode = S_IFREG | 0644};
    put(&a, &cin, sizeof(cin));
    put_str(&a, "never.txt");
    assert_int_equal(raw_req(f, FUSE_CREATE, 1, &a, -1, 0, 16 + 100), -EINVAL);
    assert_int_equal(access(at(f, "never.txt"), F_OK), -1);
    (void)id;
    (void)fh;
    /* READ and READDIR fill only the room there is. */
    uint64_t file = lookup_ok(f, 1, "file.txt");
    int64_t h = open_node(f, file, false, O_RDONLY);
    assert_true(h >= 0);
    assert_int_equal(do_read(f, FUSE_READ, (uint64_t)h, 0, 4096, 16), 0);
    assert_int_equal(do_read(f, FUSE_READ, (uint64_t)h, 0, 4096, 17), 1);
    int64_t d = open_node(f, 1, true, 0);
    assert_true(d >= 0);
    int rc = do_read(f, FUSE_READDIRPLUS, (uint64_t)d, 0, 4096, 16 + 200);
    assert_true(rc >= 0 && rc <= 200);
    /* INIT into a short room: the part that fits (older kernels' init_out). */
    a.n = 0;
    struct fuse_init_in in = {.major = 7, .minor = 31};
    put(&a, &in, sizeof(in));
    assert_int_equal(raw_req(f, FUSE_INIT, 0, &a, -1, 0, 16 + 24), 24);
    /* FORGET needs no room at all. */
    forget(f, file, 1);
    a.n = 0;
    struct fuse_forget_in fg = {.nlookup = 1};
    put(&a, &fg, sizeof(fg));
    assert_int_equal(fuse_server_inode_count(f->s), 1);
}

static void test_limits(void **state)
{
    struct fx *f = *state;
    do_init(f);
    /* The root and two more nodeids; one open handle. */
    fuse_server_set_limits(f->s, 3, 1);
    uint64_t file = lookup_ok(f, 1, "file.txt");
    uint64_t sub = lookup_ok(f, 1, "sub");
    struct fuse_entry_out e;
    assert_int_equal(lookup(f, 1, "fifo", &e), -ENFILE);
    /* A nodeid already held takes another reference, not a new slot. */
    assert_int_equal(lookup_ok(f, 1, "sub"), sub);
    uint64_t id, fh;
    assert_int_equal(create(f, 1, "new.txt", O_RDWR, 0644, &id, &fh), -ENFILE);
    int64_t h = open_node(f, file, false, O_RDONLY);
    assert_true(h >= 0);
    assert_int_equal(open_node(f, file, false, O_RDONLY), -ENFILE);
    assert_int_equal(open_node(f, 1, true, 0), -ENFILE);
    assert_int_equal(fuse_server_handle_count(f->s), 1);
    /* FORGET and RELEASE make room again. */
    forget(f, sub, 2);
    assert_int_equal(lookup(f, 1, "fifo", &e), 0);
    assert_int_equal(release(f, (uint64_t)h, false), 0);
    assert_true(open_node(f, 1, true, 0) >= 0);
}

/* ---- under the seccomp sandbox ---- */

/* A request without cmocka asserts (for a forked child): error or payload length. */
static int plain_req(struct fuse_server *s, uint32_t op, uint64_t nodeid, const void *args,
                     size_t alen, uint8_t *out)
{
    uint8_t in[512];
    struct fuse_in_header h = {.len = (uint32_t)(sizeof(h) + alen), .opcode = op, .nodeid = nodeid};
    if (sizeof(h) + alen > sizeof(in))
        return -E2BIG;
    memcpy(in, &h, sizeof(h));
    if (alen) /* memcpy from NULL is undefined even for 0 bytes */
        memcpy(in + sizeof(h), args, alen);
    struct iovec iv = {in, sizeof(h) + alen}, ov = {out, 4096};
    uint32_t n = fuse_server_handle(s, &iv, 1, iv.iov_len, &ov, 1, 4096);
    struct fuse_out_header oh;
    if (n < sizeof(oh))
        return -EPROTO;
    memcpy(&oh, out, sizeof(oh));
    return oh.error ? oh.error : (int)(n - sizeof(oh));
}

/* Each step of a session served under the virtio-fs I/O filter; 0 or the failing step. */
static int sandboxed_session(const char *share)
{
    struct fuse_server *s;
    uint8_t out[4096];
    if (server_on(share, false, &s) != 0)
        return 1;
    if (sandbox_init(-1) != 0 || sandbox_thread_enter(SANDBOX_IO_FS) != 0)
        return 2;
    struct fuse_init_in init = {.major = 7, .minor = 31};
    if (plain_req(s, FUSE_INIT, 0, &init, sizeof(init), out) <= 0)
        return 3;
    if (plain_req(s, FUSE_LOOKUP, 1, "file.txt", 9, out) != sizeof(struct fuse_entry_out))
        return 4;
    uint64_t file = ((struct fuse_entry_out *)(out + 16))->nodeid;
    struct fuse_open_in op = {.flags = O_RDWR};
    if (plain_req(s, FUSE_OPEN, file, &op, sizeof(op), out) != sizeof(struct fuse_open_out))
        return 5;
    uint64_t fh = ((struct fuse_open_out *)(out + 16))->fh;
    struct fuse_read_in rd = {.fh = fh, .size = 100};
    if (plain_req(s, FUSE_READ, file, &rd, sizeof(rd), out) != (int)strlen(FILE_TEXT))
        return 6;
    uint8_t args[64] = {0};
    struct fuse_create_in cr = {.flags = O_RDWR, .mode = S_IFREG | 0644};
    memcpy(args, &cr, sizeof(cr));
    memcpy(args + sizeof(cr), "made.txt", 9);
    if (plain_req(s, FUSE_CREATE, 1, args, sizeof(cr) + 9, out) <= 0)
        return 7;
    if (plain_req(s, FUSE_SYMLINK, 1, "ln\0made.txt", 12, out) <= 0)
        return 8;
    struct fuse_rename2_in rn = {.newdir = 1};
    memcpy(args, &rn, sizeof(rn));
    memcpy(args + sizeof(rn), "made.txt\0moved.txt", 19);
    if (plain_req(s, FUSE_RENAME2, 1, args, sizeof(rn) + 19, out) != 0)
        return 9;
    struct fuse_link_in ln = {.oldnodeid = file};
    memcpy(args, &ln, sizeof(ln));
    memcpy(args + sizeof(ln), "hard.txt", 9);
    if (plain_req(s, FUSE_LINK, 1, args, sizeof(ln) + 9, out) <= 0)
        return 10;
    struct fuse_mknod_in mn = {.mode = S_IFIFO | 0600};
    memcpy(args, &mn, sizeof(mn));
    memcpy(args + sizeof(mn), "pipe2", 6);
    if (plain_req(s, FUSE_MKNOD, 1, args, sizeof(mn) + 6, out) <= 0)
        return 11;
    struct fuse_open_in od = {0};
    if (plain_req(s, FUSE_OPENDIR, 1, &od, sizeof(od), out) != sizeof(struct fuse_open_out))
        return 12;
    rd = (struct fuse_read_in){.fh = ((struct fuse_open_out *)(out + 16))->fh, .size = 4096};
    if (plain_req(s, FUSE_READDIRPLUS, 1, &rd, sizeof(rd), out) <= 0)
        return 13;
    struct fuse_setattr_in sa = {.valid = FATTR_MODE | FATTR_SIZE | FATTR_MTIME, .mode = 0600};
    if (plain_req(s, FUSE_SETATTR, file, &sa, sizeof(sa), out) <= 0)
        return 14;
    if (plain_req(s, FUSE_STATFS, 1, NULL, 0, out) <= 0)
        return 15;
    if (plain_req(s, FUSE_UNLINK, 1, "hard.txt", 9, out) != 0)
        return 16;
    fuse_server_destroy(s);
    return 0;
}

static void test_under_sandbox(void **state)
{
    struct fx *f = *state;
    /* The filter is for the whole process: install it in a child. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(sandboxed_session(f->share));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    struct stat st;
    assert_int_equal(stat(at(f, "moved.txt"), &st), 0);
    assert_int_equal(stat(at(f, "file.txt"), &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_create_errors(void **state)
{
    struct fx *f = *state;
    struct fuse_server *s = NULL;
    uint64_t avail = fd_budget_available();
    assert_int_equal(server_on("/nonexistent/dir", false, &s), -ENOENT);
    assert_int_equal(server_on(f->outside, false, &s), -ENOTDIR);
    /* A share that failed to open gives its budget back. */
    assert_int_equal(fd_budget_available(), avail);
    assert_null(s);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_init_negotiation),
        T(test_lookup_getattr_forget),
        T(test_readdir),
        T(test_open_read_write_release),
        T(test_create_mkdir_unlink_rename_links),
        T(test_setattr),
        T(test_setid_stripped_from_guest_modes),
        T(test_setid_cleared_on_change),
        T(test_setid_allowed),
        T(test_bad_names),
        T(test_symlinks_out_of_the_share),
        T(test_fifo_never_opened),
        T(test_forged_nodeids),
        T(test_lying_headers),
        T(test_short_reply_room),
        T(test_limits),
#if !KRUNKIT_UNDER_ASAN
        /* ASan's runtime calls sigaltstack in every thread, which the io-fs filter
         * rightly forbids; the plain build (check-unit) runs this one. */
        T(test_under_sandbox),
#endif
        T(test_create_errors),
    };
    return cmocka_run_group_tests_name("fuse-server", tests, NULL, NULL);
}
