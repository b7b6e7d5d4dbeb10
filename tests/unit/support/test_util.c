/* Small helpers for the unit tests (see test_util.h). */
#include "test_util.h"

#include <dirent.h>
#include <poll.h>
#include <string.h>
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

int dir_entry_count(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}
