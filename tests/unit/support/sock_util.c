/* Socket helpers for the unit tests (see sock_util.h). */
#include "sock_util.h"

#include <poll.h>
#include <unistd.h>

bool sock_readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

bool sock_read_full(int fd, uint8_t *buf, size_t len, int ms)
{
    for (size_t got = 0; got < len;) {
        if (!sock_readable(fd, ms))
            return false;
        ssize_t r = read(fd, buf + got, len - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}
