/*
 * UNIX socket plumbing every part of the VMM shares: an address from a path,
 * a connection to a path, and a listening socket made safely at a path.
 *
 * A listening socket is 0600 from the moment its name exists (the socket
 * inode's mode, set before bind, is what Linux gives the file), and a name
 * already there is replaced only when it is a stale socket of our own user
 * that nobody listens on, checked twice so a swap in between is noticed;
 * a file, a link, another user's socket or a live one is refused. Removal
 * at the end happens only while the name still is the socket we made.
 * Nothing here logs: callers name the option in their own messages
 * (unix_listen_problem turns the refusals into words).
 */
#ifndef KRUNKIT_UTIL_UNIX_SOCKET_H
#define KRUNKIT_UTIL_UNIX_SOCKET_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/un.h>

/* sa for path; -ENAMETOOLONG when it does not fit sun_path. */
int unix_addr(const char *path, struct sockaddr_un *sa);

/*
 * A new AF_UNIX socket of `type` (SOCK_STREAM or SOCK_DGRAM, may carry
 * SOCK_NONBLOCK; SOCK_CLOEXEC is always added) connected to path: the fd,
 * or -errno. A non-blocking stream connect still in progress returns the fd
 * with *in_progress set (in_progress may be NULL when the caller waits for
 * nothing: then that case is -EINPROGRESS).
 */
int unix_connect(const char *path, int type, bool *in_progress);
/*
 * Connect an AF_UNIX socket the caller made (and perhaps bound: a datagram
 * client needs its own name first) to path: 0 or -errno.
 */
int unix_connect_fd(int fd, const char *path);

struct unix_listener {
    int fd; /* -1 when none */
    char *path;
    dev_t dev; /* the socket file bind made */
    ino_t ino;
};

/*
 * Listen at path (stream, non-blocking, close-on-exec) as described above.
 * 0 or -errno: -EEXIST a non-socket is there, -EPERM another user's
 * socket, -EADDRINUSE a process listens there, -EAGAIN it changed while
 * checked, -ENAMETOOLONG, or what socket/bind/listen said.
 */
int unix_listen(const char *path, int backlog, struct unix_listener *out);
/* Why unix_listen refused, in words ("is not a socket", ...). */
const char *unix_listen_problem(int rc);
/* Close it and remove the name while it still is our socket. */
void unix_listener_close(struct unix_listener *l);

#endif
