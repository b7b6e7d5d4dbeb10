/*
 * Small helpers shared by the unit tests: waiting on and reading a socket
 * that stands for a device's host side (net, vsock), and counting what a
 * directory holds (tests that check nothing was left behind). No cmocka
 * here (the fuzz targets link the support files too); callers assert on
 * the results.
 */
#ifndef KRUNKIT_TESTS_TEST_UTIL_H
#define KRUNKIT_TESTS_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when fd has something to read (or EOF) within ms milliseconds. */
bool sock_readable(int fd, int ms);
/* Read exactly len bytes, waiting at most ms for each piece; false on EOF, error or timeout. */
bool sock_read_full(int fd, uint8_t *buf, size_t len, int ms);
/* Entries in dir besides "." and ".."; -1 when it cannot be read. */
int dir_entry_count(const char *dir);

#endif
