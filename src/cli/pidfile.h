/*
 * --pidfile: the PID as decimal text and a newline, written just before
 * the VM starts and removed when it ends or fails to start (CLIENTS.md,
 * "Files"). No locking, as upstream krunkit.
 *
 * The path may lie in a directory others can write to, so nothing is ever
 * written through what is found there: the file is made fresh (O_EXCL,
 * 0600) under a temporary name in the same directory and renamed over the
 * path. A regular file or a symbolic link at the path is replaced (the link
 * itself, never its target); anything else there (a directory, socket,
 * FIFO, device) is refused with EEXIST. Removal takes the path away only if
 * it is still the file this process wrote (same device and inode, by
 * lstat), so a pidfile another run has put there since is left alone.
 */
#ifndef KRUNKIT_CLI_PIDFILE_H
#define KRUNKIT_CLI_PIDFILE_H

#include <sys/types.h>

/* Writes "PID\n" to path as above. 0 or -errno (nothing left behind). */
int pidfile_write(const char *path, pid_t pid);

/*
 * Removes path if it is the file the last successful pidfile_write() of
 * this process made; 0 (also when it is gone or is not ours), or -errno.
 */
int pidfile_remove(const char *path);

#endif
