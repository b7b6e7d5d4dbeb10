/* --timesync: the guest's wall clock set through qemu-ga (see timesync.h). */
#include "vmm/timesync.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/sandbox.h"
#include "util/unix_socket.h"

#define TIMESYNC_TIMEOUT_MS 3000
#define TIMESYNC_REPLY_MAX 512

struct timesync {
    struct dev_vsock vsock;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    pthread_t thread;
    int wake_fd;  /* eventfd: a request or the stop */
    int clock_fd; /* timerfd watching for the host's clock being set */
    pthread_mutex_t lock;
    bool requested, stopping;
    unsigned count;
};

static uint64_t clock_ns(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* Milliseconds left until `deadline` (CLOCK_MONOTONIC ns), at least 0. */
static int ms_left(uint64_t deadline)
{
    uint64_t now = clock_ns(CLOCK_MONOTONIC);
    return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

/* Wait for `events` on fd until the deadline: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, ms_left(deadline));
        if (r > 0)
            return 0;
        if (r == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

int timesync_send(const char *path, uint64_t time_ns, int timeout_ms)
{
    uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + (uint64_t)timeout_ms * 1000000ull;
    bool pending;
    int fd = unix_connect(path, SOCK_STREAM | SOCK_NONBLOCK, &pending);
    if (fd < 0)
        return fd;
    int rc = 0;
    char cmd[128];
    int len = snprintf(cmd, sizeof(cmd),
                       "{\"execute\":\"guest-set-time\",\"arguments\":{\"time\":%llu}}\n",
                       (unsigned long long)time_ns);
    if (pending && (rc = wait_fd(fd, POLLOUT, deadline)))
        goto out;
    for (int sent = 0; sent < len;) {
        ssize_t n = send(fd, cmd + sent, (size_t)(len - sent), MSG_NOSIGNAL);
        if (n >= 0) {
            sent += (int)n;
        } else if (errno == EAGAIN) {
            if ((rc = wait_fd(fd, POLLOUT, deadline)))
                goto out;
        } else if (errno != EINTR) {
            rc = -errno;
            goto out;
        }
    }
    char reply[TIMESYNC_REPLY_MAX];
    size_t got = 0;
    char *nl;
    while (!(nl = memchr(reply, '\n', got))) {
        if (got == sizeof(reply) - 1) {
            rc = -EPROTO;
            goto out;
        }
        ssize_t n = read(fd, reply + got, sizeof(reply) - 1 - got);
        if (n > 0) {
            got += (size_t)n;
        } else if (n == 0) {
            rc = -ECONNRESET; /* the muxer closed it: nothing listens on the guest's port */
            goto out;
        } else if (errno == EAGAIN) {
            if ((rc = wait_fd(fd, POLLIN, deadline)))
                goto out;
        } else if (errno != EINTR) {
            rc = -errno;
            goto out;
        }
    }
    /* The guest wrote it: a NUL before the newline just ends the text early. */
    *nl = '\0';
    if (!strstr(reply, "\"return\"")) {
        log_warn("timesync: the guest agent answered %s", reply);
        rc = -EPROTO;
    }
out:
    close(fd);
    return rc;
}

/*
 * Arm `tfd` (CLOCK_REALTIME) far in the future with TFD_TIMER_CANCEL_ON_SET:
 * it never expires, but a read fails with ECANCELED once the host's wall
 * clock is set, which includes the kernel adding the time spent suspended.
 */
static int arm_clock_watch(int tfd)
{
    struct itimerspec it = {0};
    clock_gettime(CLOCK_REALTIME, &it.it_value);
    it.it_value.tv_sec += 10 * 365 * 86400;
    if (timerfd_settime(tfd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &it, NULL) < 0)
        return -errno;
    return 0;
}

/* True when the host's clock was set since the watch was armed (re-armed then). */
static bool clock_was_set(struct timesync *ts)
{
    uint64_t n;
    if (read(ts->clock_fd, &n, sizeof(n)) >= 0 || errno != ECANCELED)
        return false;
    arm_clock_watch(ts->clock_fd);
    return true;
}

static void *timesync_thread(void *arg)
{
    if (sandbox_thread_enter(SANDBOX_TIMESYNC) < 0)
        return NULL; /* logged */
    struct timesync *ts = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = ts->wake_fd, .events = POLLIN},
                              {.fd = ts->clock_fd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        uint64_t n;
        if (p[0].revents)
            (void)!read(ts->wake_fd, &n, sizeof(n)); /* zeroes the counter */
        bool set = p[1].revents && clock_was_set(ts);
        pthread_mutex_lock(&ts->lock);
        bool stop = ts->stopping, want = ts->requested || set;
        ts->requested = false;
        pthread_mutex_unlock(&ts->lock);
        if (stop)
            break;
        if (!want)
            continue;
        if (set)
            log_info("timesync: the host's clock was set (or it resumed from sleep); "
                     "setting the guest's clock");
        int rc = timesync_send(ts->path, clock_ns(CLOCK_REALTIME), TIMESYNC_TIMEOUT_MS);
        if (rc)
            log_warn("timesync: cannot set the guest's time through vsock port %u: %s",
                     ts->vsock.port, strerror(-rc));
        else
            log_debug("timesync: guest time set");
        pthread_mutex_lock(&ts->lock);
        ts->count += rc == 0;
        pthread_mutex_unlock(&ts->lock);
    }
    return NULL;
}

static void wake(struct timesync *ts)
{
    uint64_t one = 1;
    if (write(ts->wake_fd, &one, sizeof(one)) < 0)
        log_warn("timesync: cannot wake its thread: %m");
}

int timesync_create(uint32_t port, struct timesync **out)
{
    *out = NULL;
    struct timesync *ts = calloc(1, sizeof(*ts));
    if (!ts)
        return -ENOMEM;
    snprintf(ts->path, sizeof(ts->path), "/tmp/krunkit_timesync_%d.sock", (int)getpid());
    ts->vsock = (struct dev_vsock){.port = port, .socket_url = ts->path, .listen = false};
    pthread_mutex_init(&ts->lock, NULL);
    int rc = 0;
    ts->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ts->clock_fd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
    if (ts->wake_fd < 0 || ts->clock_fd < 0)
        rc = -errno;
    else
        rc = arm_clock_watch(ts->clock_fd);
    if (!rc)
        rc = -pthread_create(&ts->thread, NULL, timesync_thread, ts);
    if (rc) {
        log_error("--timesync: cannot start its thread: %s", strerror(-rc));
        if (ts->wake_fd >= 0)
            close(ts->wake_fd);
        if (ts->clock_fd >= 0)
            close(ts->clock_fd);
        pthread_mutex_destroy(&ts->lock);
        free(ts);
        return rc;
    }
    *out = ts;
    return 0;
}

const struct dev_vsock *timesync_vsock(const struct timesync *ts)
{
    return &ts->vsock;
}

void timesync_request(struct timesync *ts)
{
    pthread_mutex_lock(&ts->lock);
    ts->requested = true;
    pthread_mutex_unlock(&ts->lock);
    wake(ts);
}

unsigned timesync_count(struct timesync *ts)
{
    pthread_mutex_lock(&ts->lock);
    unsigned n = ts->count;
    pthread_mutex_unlock(&ts->lock);
    return n;
}

void timesync_destroy(struct timesync *ts)
{
    if (!ts)
        return;
    pthread_mutex_lock(&ts->lock);
    ts->stopping = true;
    pthread_mutex_unlock(&ts->lock);
    wake(ts);
    pthread_join(ts->thread, NULL);
    close(ts->wake_fd);
    close(ts->clock_fd);
    pthread_mutex_destroy(&ts->lock);
    free(ts);
}
