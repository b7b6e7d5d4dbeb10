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
/* Start evloop_run on a new thread named `name`, confined to seccomp class `cls`. */
int evloop_start_thread(struct evloop *loop, const char *name, enum sandbox_class cls);
/* Makes evloop_run return and joins the thread if one was started. */
void evloop_stop(struct evloop *loop);

#endif
