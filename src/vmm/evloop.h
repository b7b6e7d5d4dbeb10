/*
 * A small epoll event loop: an I/O thread waits on file descriptors
 * (ioeventfds, backend sockets, completion fds) and calls their handlers.
 * evloop_add/del may be called from any thread.
 */
#ifndef KRUNKIT_VMM_EVLOOP_H
#define KRUNKIT_VMM_EVLOOP_H

#include <stdint.h>

#include "vmm/sandbox.h"

struct evloop;
typedef void (*evloop_cb)(void *opaque, uint32_t events);

int evloop_create(struct evloop **out);
void evloop_destroy(struct evloop *loop);
/* events: EPOLLIN/EPOLLOUT/...; the handler gets the ready events. */
int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_cb cb, void *opaque);
int evloop_mod(struct evloop *loop, int fd, uint32_t events);
int evloop_del(struct evloop *loop, int fd);
/* Runs handlers until evloop_stop(); returns 0 or -errno. */
int evloop_run(struct evloop *loop);
/*
 * Run the loop on its own thread, named `name` and confined to seccomp
 * class `cls` when this first call makes it; after an evloop_stop the same
 * thread runs the loop again.
 */
int evloop_start_thread(struct evloop *loop, const char *name, enum sandbox_class cls);
/*
 * Makes evloop_run return. With a thread: waits until the thread is parked
 * (no handler running; from a handler of this loop it only asks), and the
 * thread stays for the next evloop_start_thread; evloop_destroy ends it.
 */
void evloop_stop(struct evloop *loop);
/* Remove every handler; for a stopped loop (a device leaving a kept loop). */
void evloop_clear(struct evloop *loop);

#endif
