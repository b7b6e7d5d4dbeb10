/*
 * Socket helpers shared by the unit tests that talk to a device's host
 * side through real sockets (net, vsock): wait for data, read exactly n
 * bytes. No cmocka here (the fuzz targets link the support files too);
 * callers assert on the results.
 */
#ifndef KRUNKIT_TESTS_SOCK_UTIL_H
#define KRUNKIT_TESTS_SOCK_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when fd has something to read (or EOF) within ms milliseconds. */
bool sock_readable(int fd, int ms);
/* Read exactly len bytes, waiting at most ms for each piece; false on EOF, error or timeout. */
bool sock_read_full(int fd, uint8_t *buf, size_t len, int ms);

#endif
