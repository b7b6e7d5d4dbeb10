/*
 * The host checks cli_validate (cli/args.h) is made of, shared with the
 * device descriptors (src/devices/): each proves a path can be used at
 * start without creating, truncating or removing anything. Every one
 * returns 0 or -errno with the message in err; `what` names the option,
 * e.g. "--device virtio-blk path", and messages read `<what> "<path>": ...`.
 */
#ifndef KRUNKIT_CLI_VALIDATE_H
#define KRUNKIT_CLI_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

/* Formats the message into err; returns -e. */
int cli_fail(char *err, size_t errlen, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* open(2) with flags works (O_NONBLOCK: a FIFO does not block); no directory. */
int cli_check_openable(const char *what, const char *path, int flags, bool want_regular, char *err,
                       size_t errlen);
/* A file opened with O_CREAT at start: writable if it exists, else its directory exists. */
int cli_check_creatable(const char *what, const char *path, char *err, size_t errlen);
/* A UNIX socket bound at start: its directory exists; a file there may only be a socket. */
int cli_check_socket_to_bind(const char *what, const char *path, char *err, size_t errlen);

#endif
