/*
 * The VMM's event loop: one epoll set, the handlers of its file
 * descriptors, its timers and a post-dispatch hook, served by one thread.
 * Device I/O threads, the REST service, the vsock muxer, timesync and the
 * signal thread all run on one (each its own instance and thread, under
 * its own seccomp class).
 *
 * Handlers. evloop_add/mod/del may be called from any thread; a handler
 * runs on the loop's thread with the ready events. A handler removed
 * (evloop_del, evloop_clear) is not called again once the removal
 * returns, even if its fd is in the batch the loop is dispatching; its
 * memory is reclaimed once no dispatch can reach it (between batches, or
 * at once on a parked loop), so removing and re-adding an fd forever keeps
 * memory flat.
 *
 * Batches. Each pass of the loop takes what one epoll_wait returned and
 * runs, in order: the handlers of the ready fds, then the timers that are
 * due (earliest first; equal deadlines in the order they were armed), then
 * the post-dispatch hook, once, if any handler or timer ran. The hook is
 * where work that handlers only note is done once per batch: virtio-net
 * will coalesce the interrupts of a batch there, REST frees the
 * connections a batch closed and re-arms its idle-timeout timer.
 *
 * Timers. evloop_timer_add returns an id; the timer fires first_ns from
 * now (CLOCK_MONOTONIC) and then every period_ns (0: once; it stays,
 * disarmed, until re-armed or cancelled). A periodic timer that falls
 * behind skips the periods it missed instead of firing a burst. A timer
 * armed with a delay of 0 fires in the next batch, never again in the one
 * that armed it, so a callback re-arming itself cannot starve the loop.
 * Any thread may add, re-arm or cancel. The guarantee of evloop_timer_cancel:
 *   - from another thread: when it returns, the callback is not running
 *     and never runs again (it waits for a callback in progress, so the
 *     caller must not hold a lock that the callback takes);
 *   - from the loop's own thread (any handler, timer callback or hook of
 *     this loop, including the timer's own callback): the callback never
 *     starts again; the one that called cancel may finish.
 * The same holds for evloop_set_post_dispatch: once it returns (from
 * another thread), the old hook is not running and is not called again.
 *
 * Threads. evloop_start_thread runs the loop on a thread of its own, which
 * outlives a stop: evloop_stop parks it and the next start runs the loop
 * on it again (a device rebuilt after a guest reboot keeps its thread;
 * the process is confined by then and may not be able to make threads).
 * evloop_run runs it on the caller's thread instead. A loop without a
 * thread can also be nested in another loop: the outer loop watches
 * evloop_fd(inner) and its handler calls evloop_dispatch(inner), so the
 * inner loop's handlers and timers run on the outer loop's thread (the
 * vsock muxer runs on the virtio-vsock device's thread this way). One
 * thread at a time serves a loop.
 *
 * System calls (vmm/sandbox.c): a loop's thread makes epoll_wait and read;
 * with timers, timerfd_settime; the timerfd is created by the first
 * evloop_timer_add (timerfd_create), so loops without timers never need it.
 */
#ifndef KRUNKIT_VMM_EVLOOP_H
#define KRUNKIT_VMM_EVLOOP_H

#include <stdint.h>

#include "vmm/sandbox.h"

struct evloop;
typedef void (*evloop_cb)(void *opaque, uint32_t events);
typedef void (*evloop_timer_cb)(void *opaque);
typedef void (*evloop_post_cb)(void *opaque);

/* first_ns for a timer that is not armed (evloop_timer_add, evloop_timer_set). */
#define EVLOOP_TIMER_OFF UINT64_MAX

int evloop_create(struct evloop **out);
void evloop_destroy(struct evloop *loop);
/* events: EPOLLIN/EPOLLOUT/...; the handler gets the ready events. */
int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_cb cb, void *opaque);
int evloop_mod(struct evloop *loop, int fd, uint32_t events);
int evloop_del(struct evloop *loop, int fd);

/*
 * A timer firing first_ns from now (EVLOOP_TIMER_OFF: not armed), then
 * every period_ns (0: once). Returns its id (> 0) or -errno.
 */
int evloop_timer_add(struct evloop *loop, uint64_t first_ns, uint64_t period_ns, evloop_timer_cb cb,
                     void *opaque);
/* Re-arm (or with EVLOOP_TIMER_OFF disarm) timer id; 0 or -ENOENT. */
int evloop_timer_set(struct evloop *loop, int id, uint64_t first_ns, uint64_t period_ns);
/* Remove timer id and free it (the guarantee is above); 0 or -ENOENT. */
int evloop_timer_cancel(struct evloop *loop, int id);
/* The hook run after each batch (NULL: none); replaces the previous one. */
void evloop_set_post_dispatch(struct evloop *loop, evloop_post_cb cb, void *opaque);

/* Runs handlers until evloop_stop(); returns 0 or -errno. */
int evloop_run(struct evloop *loop);
/*
 * One batch without waiting, for a loop nested in another (see above):
 * whatever is ready now. Returns 0 or -errno.
 */
int evloop_dispatch(struct evloop *loop);
/* The epoll fd an outer loop watches (EPOLLIN) for evloop_dispatch. */
int evloop_fd(const struct evloop *loop);
/*
 * Run the loop on its own thread, named `name` and confined to seccomp
 * class `cls` when this first call makes it; after an evloop_stop the same
 * thread runs the loop again. The thread keeps the creator's signal mask.
 */
int evloop_start_thread(struct evloop *loop, const char *name, enum sandbox_class cls);
/*
 * Makes evloop_run return. With a thread: waits until the thread is parked
 * (no handler running; from a handler of this loop it only asks), and the
 * thread stays for the next evloop_start_thread; evloop_destroy ends it.
 */
void evloop_stop(struct evloop *loop);
/*
 * Remove every handler and timer and the post-dispatch hook; for a stopped
 * loop (a device leaving a kept loop).
 */
void evloop_clear(struct evloop *loop);

#endif
