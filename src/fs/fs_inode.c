/*
 * Nodeid and file-handle tables of the FUSE server (see fs_inode.h).
 * Inodes are found by (st_dev, st_ino) so the same host file always has
 * the same nodeid while the guest holds it, as the kernel expects (it
 * keys its inode cache on the nodeid).
 */
#include "fs/fs_inode.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/fd_budget.h"

#define HASH_BUCKETS 4096
#define INITIAL_CAP 64

static unsigned hash_of(dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev;
    return (unsigned)(h >> 20) % HASH_BUCKETS;
}

static uint64_t nodeid_of(const struct fs_tables *t, unsigned slot)
{
    return ((uint64_t)t->inodes[slot].gen << 32) | (slot + 1);
}

static int grow_inodes(struct fs_tables *t)
{
    if (t->cap_inodes >= FS_MAX_INODES)
        return -ENFILE;
    unsigned cap = t->cap_inodes ? t->cap_inodes * 2 : INITIAL_CAP;
    if (cap > FS_MAX_INODES)
        cap = FS_MAX_INODES;
    struct fs_inode *n = realloc(t->inodes, cap * sizeof(*n));
    if (!n)
        return -ENOMEM;
    for (unsigned i = t->cap_inodes; i < cap; i++)
        n[i] = (struct fs_inode){.fd = -1, .hash_next = -1};
    t->inodes = n;
    t->cap_inodes = cap;
    return 0;
}

static void hash_insert(struct fs_tables *t, unsigned slot)
{
    unsigned b = hash_of(t->inodes[slot].dev, t->inodes[slot].ino);
    t->inodes[slot].hash_next = t->buckets[b];
    t->buckets[b] = (int)slot;
}

static void hash_remove(struct fs_tables *t, unsigned slot)
{
    int *link = &t->buckets[hash_of(t->inodes[slot].dev, t->inodes[slot].ino)];
    while (*link >= 0) {
        if (*link == (int)slot) {
            *link = t->inodes[slot].hash_next;
            break;
        }
        link = &t->inodes[*link].hash_next;
    }
    t->inodes[slot].hash_next = -1;
}

static void free_inode(struct fs_tables *t, unsigned slot)
{
    struct fs_inode *i = &t->inodes[slot];
    hash_remove(t, slot);
    close(i->fd);
    fd_budget_release(1);
    i->fd = -1;
    i->nlookup = 0;
    i->gen++;
    t->n_inodes--;
    if (slot < t->free_hint)
        t->free_hint = slot;
}

int fs_tables_init(struct fs_tables *t, int root_fd)
{
    struct stat st;
    *t = (struct fs_tables){0};
    if (fstat(root_fd, &st) < 0)
        return -errno;
    t->buckets = malloc(HASH_BUCKETS * sizeof(*t->buckets));
    if (!t->buckets)
        return -ENOMEM;
    for (unsigned b = 0; b < HASH_BUCKETS; b++)
        t->buckets[b] = -1;
    int rc = grow_inodes(t);
    if (rc) {
        free(t->buckets);
        t->buckets = NULL;
        return rc;
    }
    t->inodes[0] = (struct fs_inode){.fd = root_fd,
                                     .dev = st.st_dev,
                                     .ino = st.st_ino,
                                     .type = st.st_mode & S_IFMT,
                                     .nlookup = 1,
                                     .hash_next = -1};
    hash_insert(t, 0);
    t->max_inodes = FS_MAX_INODES;
    t->max_handles = FS_MAX_HANDLES;
    t->n_inodes = 1;
    t->free_hint = 1;
    return 0;
}

void fs_tables_clear(struct fs_tables *t)
{
    for (unsigned s = 1; s < t->cap_inodes; s++)
        if (t->inodes[s].fd >= 0)
            free_inode(t, s);
    for (unsigned h = 0; h < t->cap_handles; h++)
        if (t->handles[h].fd >= 0) {
            close(t->handles[h].fd);
            fd_budget_release(1);
            t->handles[h].fd = -1;
            t->handles[h].gen++;
        }
    t->n_handles = 0;
}

void fs_tables_free(struct fs_tables *t)
{
    if (!t->inodes)
        return;
    fs_tables_clear(t);
    free(t->inodes);
    free(t->buckets);
    free(t->handles);
    *t = (struct fs_tables){0};
}

struct fs_inode *fs_inode_get(struct fs_tables *t, uint64_t nodeid)
{
    uint64_t low = nodeid & 0xffffffffu;
    if (low == 0 || low > t->cap_inodes)
        return NULL;
    struct fs_inode *i = &t->inodes[low - 1];
    if (i->fd < 0 || i->gen != (uint32_t)(nodeid >> 32))
        return NULL;
    return i;
}

int fs_inode_ref(struct fs_tables *t, int fd, uint64_t *nodeid)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    for (int s = t->buckets[hash_of(st.st_dev, st.st_ino)]; s >= 0; s = t->inodes[s].hash_next) {
        struct fs_inode *i = &t->inodes[s];
        if (i->dev == st.st_dev && i->ino == st.st_ino) {
            close(fd);
            i->nlookup++;
            *nodeid = nodeid_of(t, (unsigned)s);
            return 0;
        }
    }
    if (t->n_inodes >= t->max_inodes) {
        close(fd);
        return -ENFILE;
    }
    if (!fd_budget_acquire(1)) {
        close(fd);
        return -EMFILE;
    }
    unsigned slot = t->free_hint;
    while (slot < t->cap_inodes && t->inodes[slot].fd >= 0)
        slot++;
    if (slot == t->cap_inodes) {
        int rc = grow_inodes(t);
        if (rc) {
            close(fd);
            fd_budget_release(1);
            return rc;
        }
    }
    struct fs_inode *i = &t->inodes[slot];
    i->fd = fd;
    i->dev = st.st_dev;
    i->ino = st.st_ino;
    i->type = st.st_mode & S_IFMT;
    i->nlookup = 1;
    hash_insert(t, slot);
    t->n_inodes++;
    t->free_hint = slot + 1;
    *nodeid = nodeid_of(t, slot);
    return 0;
}

void fs_inode_forget(struct fs_tables *t, uint64_t nodeid, uint64_t n)
{
    struct fs_inode *i = fs_inode_get(t, nodeid);
    if (!i || i == &t->inodes[0])
        return;
    if (n >= i->nlookup)
        free_inode(t, (unsigned)(i - t->inodes));
    else
        i->nlookup -= n;
}

int fs_handle_new(struct fs_tables *t, int fd, bool dir, uint64_t *fh)
{
    if (t->n_handles >= t->max_handles) {
        close(fd);
        return -ENFILE;
    }
    if (!fd_budget_acquire(1)) {
        close(fd);
        return -EMFILE;
    }
    unsigned slot = 0;
    while (slot < t->cap_handles && t->handles[slot].fd >= 0)
        slot++;
    if (slot == t->cap_handles) {
        int err = 0;
        struct fs_handle *n = NULL;
        unsigned cap = t->cap_handles ? t->cap_handles * 2 : INITIAL_CAP;
        if (t->cap_handles >= FS_MAX_HANDLES)
            err = -ENFILE;
        else if (!(n = realloc(t->handles, cap * sizeof(*n))))
            err = -ENOMEM;
        if (err) {
            close(fd);
            fd_budget_release(1);
            return err;
        }
        for (unsigned h = t->cap_handles; h < cap; h++)
            n[h] = (struct fs_handle){.fd = -1};
        t->handles = n;
        t->cap_handles = cap;
    }
    t->handles[slot].fd = fd;
    t->handles[slot].dir = dir;
    t->n_handles++;
    *fh = ((uint64_t)t->handles[slot].gen << 32) | slot;
    return 0;
}

struct fs_handle *fs_handle_get(struct fs_tables *t, uint64_t fh)
{
    uint64_t slot = fh & 0xffffffffu;
    if (slot >= t->cap_handles)
        return NULL;
    struct fs_handle *h = &t->handles[slot];
    if (h->fd < 0 || h->gen != (uint32_t)(fh >> 32))
        return NULL;
    return h;
}

int fs_handle_release(struct fs_tables *t, uint64_t fh)
{
    struct fs_handle *h = fs_handle_get(t, fh);
    if (!h)
        return -EBADF;
    close(h->fd);
    fd_budget_release(1);
    h->fd = -1;
    h->gen++;
    t->n_handles--;
    return 0;
}
