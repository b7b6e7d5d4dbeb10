/* UNIX socket helpers (see unix_socket.h). */
#include "util/unix_socket.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int unix_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n == 0)
        return -EINVAL;
    if (n >= sizeof(sa->sun_path))
        return -ENAMETOOLONG;
    memcpy(sa->sun_path, path, n + 1);
    return 0;
}

int unix_connect_fd(int fd, const char *path)
{
    struct sockaddr_un sa;
    int rc = unix_addr(path, &sa);
    if (rc)
        return rc;
    do {
        rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

int unix_connect(const char *path, int type, bool *in_progress)
{
    struct sockaddr_un sa;
    int rc = unix_addr(path, &sa);
    if (rc)
        return rc;
    if (in_progress)
        *in_progress = false;
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    rc = unix_connect_fd(fd, path);
    if (rc == 0)
        return fd;
    if (rc == -EINPROGRESS && in_progress) {
        *in_progress = true;
        return fd;
    }
    close(fd);
    return rc;
}

/* Is a process listening at path? When it cannot tell: yes (keep the name). */
static bool live(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return true;
    int r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    int e = errno;
    close(fd);
    return r == 0 || (e != ECONNREFUSED && e != ENOENT);
}

static int remove_stale(const char *path, const struct sockaddr_un *sa)
{
    struct stat st, again;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EEXIST;
    if (st.st_uid != geteuid())
        return -EPERM;
    if (live(sa))
        return -EADDRINUSE;
    if (lstat(path, &again) < 0 || again.st_dev != st.st_dev || again.st_ino != st.st_ino)
        return -EAGAIN;
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

int unix_listen(const char *path, int backlog, struct unix_listener *out)
{
    out->fd = -1;
    out->path = NULL;
    struct sockaddr_un sa;
    int rc = unix_addr(path, &sa);
    if (rc == 0)
        rc = remove_stale(path, &sa);
    if (rc)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct stat st;
    /* 0600 before the name exists: no window for another user to connect. */
    if (fchmod(fd, 0600) < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (lstat(path, &st) < 0)
        rc = -errno;
    else if (st.st_mode & 077)
        rc = -EACCES; /* group or other bits: this kernel did not take the mode */
    else if (listen(fd, backlog) < 0)
        rc = -errno;
    else if (!(out->path = strdup(path)))
        rc = -ENOMEM;
    if (rc) {
        unlink(path); /* the name bind just made */
        close(fd);
        return rc;
    }
    out->fd = fd;
    out->dev = st.st_dev;
    out->ino = st.st_ino;
    return 0;
}

const char *unix_listen_problem(int rc)
{
    switch (rc) {
    case -EEXIST:
        return "exists and is not a socket";
    case -EPERM:
        return "is another user's socket";
    case -EADDRINUSE:
        return "another process listens there";
    case -EAGAIN:
        return "changed while it was checked";
    case -ENAMETOOLONG:
        return "path too long for a UNIX socket";
    default:
        return strerror(-rc);
    }
}

void unix_listener_close(struct unix_listener *l)
{
    struct stat st;
    if (l->path && lstat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
        unlink(l->path);
    if (l->fd >= 0)
        close(l->fd);
    free(l->path);
    l->fd = -1;
    l->path = NULL;
}
