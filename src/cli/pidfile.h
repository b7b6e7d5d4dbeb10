/*
 * --pidfile: the PID as decimal text and a newline, written just before
 * the VM starts and removed when it ends or fails to start (CLIENTS.md,
 * "Files"). No locking, as upstream krunkit.
 */
#ifndef KRUNKIT_CLI_PIDFILE_H
#define KRUNKIT_CLI_PIDFILE_H

#include <sys/types.h>

/* Creates or truncates path and writes "PID\n". 0 or -errno (file removed). */
int pidfile_write(const char *path, pid_t pid);

/* Removes path; 0, or -errno other than ENOENT. */
int pidfile_remove(const char *path);

#endif
