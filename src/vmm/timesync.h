/*
 * --timesync vsockPort=N: keeps the guest's wall clock right through the
 * QEMU guest agent (qemu-ga) listening on vsock port N in the guest.
 *
 * As upstream krunkit does it, port N joins the vsock device in connect
 * mode on a socket of the VMM's own (/tmp/krunkit_timesync_PID.sock); to
 * set the time the VMM connects there, which the muxer (vsock/muxer.h)
 * turns into a connection to the guest's port, and sends one
 * `guest-set-time` command with the host's time in nanoseconds.
 *
 * When: upstream syncs when the macOS host wakes from sleep. Here, on
 * Linux: whenever the host's wall clock is set, which the kernel also
 * does when it resumes from suspend (a CLOCK_REALTIME timerfd armed with
 * TFD_TIMER_CANCEL_ON_SET reports it, no polling), and after a REST
 * Resume, because the guest's clock stands still while the VM is paused
 * (vm.c restores kvmclock on resume). One thread does it, an event loop
 * (vmm/evloop.h) idle otherwise; a sync gives up after a few seconds (no
 * agent yet, guest busy; a loop timer) and is logged.
 */
#ifndef KRUNKIT_VMM_TIMESYNC_H
#define KRUNKIT_VMM_TIMESYNC_H

#include <stdint.h>

#include "core/config.h"

struct timesync;

/* Start the thread for vsock port `port`; 0 or -errno (logged). */
int timesync_create(uint32_t port, struct timesync **out);
/* The vsock port the VMM's vsock device must serve (connect mode). */
const struct dev_vsock *timesync_vsock(const struct timesync *ts);
/* Set the guest's time soon (from any thread; does not wait). */
void timesync_request(struct timesync *ts);
/* Completed syncs so far (the guest agent answered "return"). */
unsigned timesync_count(struct timesync *ts);
/* Stops the thread and frees ts (NULL is fine). */
void timesync_destroy(struct timesync *ts);

/*
 * One sync: connect to the UNIX socket `path`, send guest-set-time with
 * `time_ns`, read the agent's one-line answer within `timeout_ms`. 0 when
 * it answered "return"; -EPROTO when it answered an error (its text goes
 * into the log); -ETIMEDOUT, -ECONNRESET (the connection closed: nobody
 * listens on the guest's port) or another -errno.
 */
int timesync_send(const char *path, uint64_t time_ns, int timeout_ms);

#endif
