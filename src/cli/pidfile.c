/* --pidfile writer and remover (see pidfile.h). */
#include "cli/pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int pidfile_write(const char *path, pid_t pid)
{
    char buf[24];
    int len = snprintf(buf, sizeof(buf), "%ld\n", (long)pid);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, buf, (size_t)len);
    int e = w < 0 ? errno : w != len ? EIO : 0;
    if (close(fd) < 0 && !e)
        e = errno;
    if (e) {
        /* A half-written pidfile would mislead whoever reads it. */
        unlink(path);
        return -e;
    }
    return 0;
}

int pidfile_remove(const char *path)
{
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}
