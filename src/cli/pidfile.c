/* --pidfile writer and remover (see pidfile.h for the rules and why). */
#include "cli/pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The file the last pidfile_write made (one pidfile per process). Its
 * descriptor stays open until pidfile_remove: while it is, the inode cannot
 * be freed and its number handed to a file made after ours was deleted, so
 * equal device and inode numbers really mean "the same file".
 */
static int written_fd = -1;
static dev_t written_dev;
static ino_t written_ino;

static void forget_written(void)
{
    if (written_fd >= 0)
        close(written_fd);
    written_fd = -1;
}

int pidfile_write(const char *path, pid_t pid)
{
    char buf[24], tmp[PATH_MAX];
    struct stat st;
    int len = snprintf(buf, sizeof(buf), "%ld\n", (long)pid);

    forget_written();
    if (!*path)
        return -ENOENT;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
        return S_ISDIR(st.st_mode) ? -EISDIR : -EEXIST;

    /* "<dir>/.<name>.XXXXXX": same directory, so rename() is atomic. */
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path + 1) : 0;
    const char *name = path + dir_len;
    if (!*name)
        return -EISDIR;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%.*s.%s.XXXXXX", (int)dir_len, path, name) >=
        sizeof(tmp))
        return -ENAMETOOLONG;
    /* mkostemp: O_CREAT|O_EXCL, mode 0600, so never a file someone planted. */
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int e = 0;
    ssize_t w = write(fd, buf, (size_t)len);
    if (w < 0)
        e = errno;
    else if (w != len)
        e = EIO;
    if (!e && fstat(fd, &st) < 0)
        e = errno;
    /* rename() replaces a link at path with our file and never follows it. */
    if (!e && rename(tmp, path) < 0)
        e = errno;
    if (e) {
        /* A half-written pidfile would mislead whoever reads it. */
        unlink(tmp);
        close(fd);
        return -e;
    }
    written_fd = fd;
    written_dev = st.st_dev;
    written_ino = st.st_ino;
    return 0;
}

int pidfile_remove(const char *path)
{
    struct stat st;

    int r = 0;

    if (written_fd < 0)
        return 0;
    if (lstat(path, &st) < 0) {
        if (errno != ENOENT)
            r = -errno;
    } else if (S_ISREG(st.st_mode) && st.st_dev == written_dev && st.st_ino == written_ino) {
        if (unlink(path) < 0 && errno != ENOENT)
            r = -errno;
    } /* else replaced since: someone else's now */
    forget_written();
    return r;
}
