/*
 * QEMU-compatible image locking; see image_lock.h. The byte layout and the
 * take-then-test order are QEMU's (raw_apply_lock_bytes and
 * raw_check_lock_bytes in block/file-posix.c); all locks are shared, a
 * conflict is detected by asking whether an exclusive lock could be taken.
 */
#include "block/image_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "core/log.h"

static const char *const perm_names[IMAGE_PERM_COUNT] = {"consistent read", "write",
                                                         "write unchanged", "resize"};

static int lock_byte(int fd, int off)
{
    struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = off, .l_len = 1};

    if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
        return -errno;
    return 0;
}

/* 1 when another open file description holds a lock on the byte. */
static int byte_locked_by_other(int fd, int off)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = off, .l_len = 1};

    if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
        return -errno;
    return fl.l_type != F_UNLCK;
}

int image_lock(int fd, const char *path, bool write)
{
    unsigned perm = 1u << IMAGE_PERM_CONSISTENT_READ;
    unsigned unshared = (1u << IMAGE_PERM_WRITE) | (1u << IMAGE_PERM_RESIZE);
    int r;

    if (write)
        perm |= 1u << IMAGE_PERM_WRITE;

    for (int i = 0; i < IMAGE_PERM_COUNT; i++) {
        if ((perm & (1u << i)) && (r = lock_byte(fd, IMAGE_LOCK_PERM_BASE + i)) < 0)
            goto lock_failed;
        if ((unshared & (1u << i)) && (r = lock_byte(fd, IMAGE_LOCK_SHARED_BASE + i)) < 0)
            goto lock_failed;
    }
    for (int i = 0; i < IMAGE_PERM_COUNT; i++) {
        if (perm & (1u << i)) {
            r = byte_locked_by_other(fd, IMAGE_LOCK_SHARED_BASE + i);
            if (r < 0)
                goto lock_failed;
            if (r) {
                log_error("%s: another process (a VM, qemu-img or qemu-io) refuses to share "
                          "\"%s\" access to this image; is it still in use?",
                          path, perm_names[i]);
                return -EBUSY;
            }
        }
        if (unshared & (1u << i)) {
            r = byte_locked_by_other(fd, IMAGE_LOCK_PERM_BASE + i);
            if (r < 0)
                goto lock_failed;
            if (r) {
                log_error("%s: another process (a VM, qemu-img or qemu-io) holds \"%s\" "
                          "access to this image; is it still in use?",
                          path, perm_names[i]);
                return -EBUSY;
            }
        }
    }
    return 0;

lock_failed:
    if (r == -EINVAL || r == -ENOLCK || r == -EOPNOTSUPP) {
        /* The filesystem has no OFD locks; QEMU (locking=auto) goes on too. */
        log_warn("%s: the filesystem does not support image locking (%s); other users of "
                 "the image will not be detected",
                 path, strerror(-r));
        return 0;
    }
    log_error("%s: cannot lock the image: %s", path, strerror(-r));
    return r;
}
