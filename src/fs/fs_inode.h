/*
 * The FUSE server's tables: nodeids the guest holds (each an O_PATH fd on
 * one host inode inside the share, with the kernel's lookup count, FUSE
 * 7.x "nlookup" semantics) and open file handles. Both are bounded; ids
 * carry a generation in their upper 32 bits so a stale or forged id is
 * recognised instead of reaching whatever reuses the slot.
 *
 * Every fd the tables own (all but the root's, which belongs to the
 * share) is drawn from the process-wide budget (vmm/fd_budget.h): when it
 * is spent a new nodeid or handle fails with EMFILE, while the per-table
 * caps below answer ENFILE.
 */
#ifndef KRUNKIT_FS_INODE_H
#define KRUNKIT_FS_INODE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Most nodeids / handles one table holds at once; past this LOOKUP/OPEN get -ENFILE. */
#define FS_MAX_INODES 65536
#define FS_MAX_HANDLES 4096
#define FS_ROOT_NODEID 1

struct fs_inode {
    int fd; /* O_PATH | O_NOFOLLOW; -1: free slot */
    dev_t dev;
    ino_t ino;
    mode_t type; /* S_IFMT bits, fixed for the inode's life */
    uint64_t nlookup;
    uint32_t gen;
    int hash_next; /* next slot in the (dev, ino) bucket, -1 at the end */
};

struct fs_handle {
    int fd; /* -1: free slot */
    bool dir;
    uint32_t gen;
};

struct fs_tables {
    struct fs_inode *inodes;
    unsigned n_inodes, cap_inodes, free_hint;
    int *buckets; /* (dev, ino) hash -> first slot, -1 empty */
    struct fs_handle *handles;
    unsigned n_handles, cap_handles;
    /* Limits in force (at most FS_MAX_*; lower when the process has fewer fds). */
    unsigned max_inodes, max_handles;
};

/* Slot 0 becomes the root (nodeid 1) on root_fd, which stays the caller's (the share's). */
int fs_tables_init(struct fs_tables *t, int root_fd);
void fs_tables_free(struct fs_tables *t);
/* Drop every nodeid but the root and close every handle (unmount, reset). */
void fs_tables_clear(struct fs_tables *t);

/* The live inode for a nodeid, or NULL (stale, forged, out of range). */
struct fs_inode *fs_inode_get(struct fs_tables *t, uint64_t nodeid);
/*
 * Take one lookup reference on the inode fd refers to (fd is an O_PATH
 * fd, consumed: kept, or closed when the inode already has a nodeid).
 * Returns 0 and the nodeid, -ENFILE when the table is full, -EMFILE when
 * the process budget is spent.
 */
int fs_inode_ref(struct fs_tables *t, int fd, uint64_t *nodeid);
/* FORGET: drop n references; at 0 the fd is closed and the id dies. Root is kept. */
void fs_inode_forget(struct fs_tables *t, uint64_t nodeid, uint64_t n);

/* New handle owning fd; 0 and the fh, or -ENFILE / -EMFILE (fd is then closed). */
int fs_handle_new(struct fs_tables *t, int fd, bool dir, uint64_t *fh);
struct fs_handle *fs_handle_get(struct fs_tables *t, uint64_t fh);
/* Close and free; -EBADF for an unknown fh. */
int fs_handle_release(struct fs_tables *t, uint64_t fh);

#endif
