/*
 * Image locking compatible with QEMU (block/file-posix.c): every user of an
 * image holds shared OFD locks on one byte per permission it uses
 * (100 + bit) and one byte per permission it refuses to share (200 + bit).
 * A new user first takes its own bytes, then tests for conflicting ones.
 */
#ifndef KRUNKIT_BLOCK_IMAGE_LOCK_H
#define KRUNKIT_BLOCK_IMAGE_LOCK_H

#include <stdbool.h>

/* QEMU's permission bits (BLK_PERM_*), which are the lock byte offsets. */
enum image_perm {
    IMAGE_PERM_CONSISTENT_READ = 0,
    IMAGE_PERM_WRITE = 1,
    IMAGE_PERM_WRITE_UNCHANGED = 2,
    IMAGE_PERM_RESIZE = 3,
    IMAGE_PERM_COUNT = 4,
};

#define IMAGE_LOCK_PERM_BASE 100
#define IMAGE_LOCK_SHARED_BASE 200

/*
 * Locks fd (an open image file) for a reader or a writer. Both refuse to
 * share write and resize, as a QEMU guest disk does. Returns 0, or -EBUSY
 * after logging which permission another process holds; other -errno when
 * locking itself fails (a filesystem without OFD locks only gets a warning).
 * The locks go away when the file is closed.
 */
int image_lock(int fd, const char *path, bool write);

#endif
