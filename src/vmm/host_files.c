/* The open-once table (see host_files.h): a short list, searched by path and access mode. */
#include "vmm/host_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

struct kept {
    char *path;
    int flags; /* O_ACCMODE bits the first open asked for */
    int fd;
};

static struct kept *kept;
static size_t n_kept;
static bool sealed;

static int dup_rewound(int fd)
{
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    /* The duplicate shares the offset: the caller reads from the start as after an open. */
    if (d >= 0)
        lseek(d, 0, SEEK_SET);
    return d;
}

int host_file_open(const char *path, int flags)
{
    for (size_t i = 0; i < n_kept; i++)
        if ((kept[i].flags & O_ACCMODE) == (flags & O_ACCMODE) && !strcmp(kept[i].path, path))
            return dup_rewound(kept[i].fd);
    if (sealed) {
        log_error("%s: refused to open it by path after the VM started (every host file is "
                  "opened once, at start)",
                  path);
        errno = EPERM;
        return -1;
    }
    struct kept *k = realloc(kept, (n_kept + 1) * sizeof(*kept));
    if (!k) {
        errno = ENOMEM;
        return -1;
    }
    kept = k;
    int fd = open(path, flags | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    char *p = strdup(path);
    int d = p ? dup_rewound(fd) : -1;
    if (d < 0) {
        int err = p ? errno : ENOMEM;
        free(p);
        close(fd);
        errno = err;
        return -1;
    }
    kept[n_kept++] = (struct kept){.path = p, .flags = flags, .fd = fd};
    return d;
}

void host_files_seal(void)
{
    sealed = true;
}

void host_files_close_all(void)
{
    for (size_t i = 0; i < n_kept; i++) {
        close(kept[i].fd);
        free(kept[i].path);
    }
    free(kept);
    kept = NULL;
    n_kept = 0;
    sealed = false;
}
