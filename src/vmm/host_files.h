/*
 * Host files the machine build reads by path (firmware code and template,
 * the variable store, a direct-boot kernel and initrd, /dev/kvm), opened
 * once: the first open of a path really opens it and keeps that
 * descriptor; every later open of the same path (a guest reboot rebuilds
 * the machine) gets a duplicate of it, rewound, and never looks at the
 * path again. Once the VM has started (host_files_seal), an open of a path
 * not opened before fails with EPERM and says so in the log: nothing is
 * opened by path after start (the devices' own host side is in
 * vmm/backends.h, opened once in the same way).
 *
 * Why: between two boots the file at a path can be another (a guest that
 * writes the VM's directory through a share can replace the variable store
 * with a symlink to the user's files); the descriptor keeps the file the
 * user started with. Not thread-safe: the machine is built on one thread.
 */
#ifndef KRUNKIT_VMM_HOST_FILES_H
#define KRUNKIT_VMM_HOST_FILES_H

/* open(2)'s contract (-1 and errno on failure); close the result as usual. */
int host_file_open(const char *path, int flags);
/* From now on, only paths opened before may be opened. */
void host_files_seal(void);
/* Close every kept descriptor and forget them (the end of the VM). */
void host_files_close_all(void);

#endif
