/* --timesync: the guest's wall clock set through qemu-ga (see timesync.h). */
#include "vmm/timesync.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "util/unix_socket.h"
#include "vmm/evloop.h"
#include "vmm/sandbox.h"

#define TIMESYNC_TIMEOUT_MS 3000
#define TIMESYNC_REPLY_MAX 512

/*
 * One guest-set-time exchange, driven by an event loop: connect, send the
 * command, read the one-line answer, all before a timer of the loop ends
 * it. timesync_send runs one on a loop of its own; the thread's loop runs
 * one per sync.
 */
struct sync_op {
    struct evloop *loop;
    int timer; /* the exchange's deadline */
    int fd;    /* -1: no exchange in progress */
    char cmd[128];
    int len, sent;
    char reply[TIMESYNC_REPLY_MAX];
    size_t got;
    void (*done)(struct sync_op *op, int rc);
    void *opaque;
};

struct timesync {
    struct dev_vsock vsock;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct evloop *loop; /* the thread's: requests, the clock watch, the exchange */
    int request_timer;   /* armed with no delay by timesync_request */
    int clock_fd;        /* timerfd watching for the host's clock being set */
    struct sync_op op;
    bool again;         /* asked for while a sync was in progress: one more after it */
    bool clock_was_set; /* why the next sync runs, for its log line */
    pthread_mutex_t lock;
    unsigned count;
};

static uint64_t clock_ns(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* The exchange is over: the socket goes, the deadline is disarmed, `done` gets the result. */
static void op_finish(struct sync_op *op, int rc)
{
    if (op->fd < 0)
        return;
    evloop_del(op->loop, op->fd);
    close(op->fd);
    op->fd = -1;
    evloop_timer_set(op->loop, op->timer, EVLOOP_TIMER_OFF, 0);
    op->done(op, rc);
}

/* Send what the socket takes; 1 when all is sent, 0 to wait, or -errno. */
static int op_send(struct sync_op *op)
{
    while (op->sent < op->len) {
        ssize_t n = send(op->fd, op->cmd + op->sent, (size_t)(op->len - op->sent), MSG_NOSIGNAL);
        if (n >= 0)
            op->sent += (int)n;
        else if (errno == EAGAIN)
            return 0;
        else if (errno != EINTR)
            return -errno;
    }
    return 1;
}

/* Read the answer; 1 with the whole line, 0 to wait, or -errno. */
static int op_read(struct sync_op *op)
{
    char *nl;
    while (!(nl = memchr(op->reply, '\n', op->got))) {
        if (op->got == sizeof(op->reply) - 1)
            return -EPROTO;
        ssize_t n = read(op->fd, op->reply + op->got, sizeof(op->reply) - 1 - op->got);
        if (n > 0)
            op->got += (size_t)n;
        else if (n == 0)
            return -ECONNRESET; /* the muxer closed it: nothing listens on the guest's port */
        else if (errno == EAGAIN)
            return 0;
        else if (errno != EINTR)
            return -errno;
    }
    /* The guest wrote it: a NUL before the newline just ends the text early. */
    *nl = '\0';
    if (!strstr(op->reply, "\"return\"")) {
        log_warn("timesync: the guest agent answered %s", op->reply);
        return -EPROTO;
    }
    return 1;
}

static void op_ready(void *opaque, uint32_t events)
{
    struct sync_op *op = opaque;
    (void)events; /* errors and hang-ups show in send and read */
    int rc;
    if (op->sent < op->len) {
        rc = op_send(op);
        if (rc == 1 && evloop_mod(op->loop, op->fd, EPOLLIN) < 0)
            rc = -errno;
        if (rc <= 0) {
            if (rc < 0)
                op_finish(op, rc);
            return;
        }
    }
    rc = op_read(op);
    if (rc != 0)
        op_finish(op, rc < 0 ? rc : 0);
}

static void op_timeout(void *opaque)
{
    op_finish(opaque, -ETIMEDOUT);
}

/* A loop's exchange; op_start may then be called once at a time. 0 or -errno. */
static int op_init(struct sync_op *op, struct evloop *loop, void (*done)(struct sync_op *, int),
                   void *opaque)
{
    memset(op, 0, sizeof(*op));
    op->loop = loop;
    op->fd = -1;
    op->done = done;
    op->opaque = opaque;
    op->timer = evloop_timer_add(loop, EVLOOP_TIMER_OFF, 0, op_timeout, op);
    return op->timer < 0 ? op->timer : 0;
}

/* Connect and start the exchange; on an error here `done` is not called. */
static int op_start(struct sync_op *op, const char *path, uint64_t time_ns, int timeout_ms)
{
    op->len = snprintf(op->cmd, sizeof(op->cmd),
                       "{\"execute\":\"guest-set-time\",\"arguments\":{\"time\":%llu}}\n",
                       (unsigned long long)time_ns);
    op->sent = 0;
    op->got = 0;
    /* Connected or still connecting: writable once it is, or with its error. */
    bool pending;
    int fd = unix_connect(path, SOCK_STREAM | SOCK_NONBLOCK, &pending);
    if (fd < 0)
        return fd;
    int rc = evloop_add(op->loop, fd, EPOLLOUT, op_ready, op);
    if (rc) {
        close(fd);
        return rc;
    }
    op->fd = fd;
    evloop_timer_set(op->loop, op->timer, (uint64_t)timeout_ms * 1000000ull, 0);
    return 0;
}

struct send_wait {
    int rc;
};

static void send_done(struct sync_op *op, int rc)
{
    struct send_wait *w = op->opaque;
    w->rc = rc;
    evloop_stop(op->loop);
}

int timesync_send(const char *path, uint64_t time_ns, int timeout_ms)
{
    struct evloop *loop;
    int rc = evloop_create(&loop);
    if (rc)
        return rc;
    struct send_wait w = {0};
    struct sync_op op;
    rc = op_init(&op, loop, send_done, &w);
    if (rc == 0)
        rc = op_start(&op, path, time_ns, timeout_ms);
    /* On this thread until the exchange ends (send_done stops the loop). */
    if (rc == 0)
        rc = evloop_run(loop) < 0 ? -EIO : w.rc;
    if (op.fd >= 0)
        close(op.fd);
    evloop_destroy(loop);
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

/* On the thread: a sync now, or after the one in progress. */
static void sync_soon(struct timesync *ts)
{
    if (ts->op.fd >= 0) {
        ts->again = true;
        return;
    }
    if (ts->clock_was_set)
        log_info("timesync: the host's clock was set (or it resumed from sleep); "
                 "setting the guest's clock");
    ts->clock_was_set = false;
    int rc = op_start(&ts->op, ts->path, clock_ns(CLOCK_REALTIME), TIMESYNC_TIMEOUT_MS);
    if (rc)
        ts->op.done(&ts->op, rc);
}

static void sync_done(struct sync_op *op, int rc)
{
    struct timesync *ts = op->opaque;
    if (rc)
        log_warn("timesync: cannot set the guest's time through vsock port %u: %s", ts->vsock.port,
                 strerror(-rc));
    else
        log_debug("timesync: guest time set");
    pthread_mutex_lock(&ts->lock);
    ts->count += rc == 0;
    pthread_mutex_unlock(&ts->lock);
    if (ts->again) {
        ts->again = false;
        sync_soon(ts);
    }
}

static void requested(void *opaque)
{
    sync_soon(opaque);
}

/* The watch fails its read with ECANCELED once the host's clock was set: re-arm it, sync. */
static void clock_ready(void *opaque, uint32_t events)
{
    struct timesync *ts = opaque;
    uint64_t n;
    (void)events;
    if (read(ts->clock_fd, &n, sizeof(n)) >= 0 || errno != ECANCELED)
        return;
    arm_clock_watch(ts->clock_fd);
    ts->clock_was_set = true;
    sync_soon(ts);
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
    ts->op.fd = -1;
    ts->clock_fd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
    int rc = ts->clock_fd < 0 ? -errno : arm_clock_watch(ts->clock_fd);
    if (!rc)
        rc = evloop_create(&ts->loop);
    if (!rc)
        rc = op_init(&ts->op, ts->loop, sync_done, ts);
    if (!rc) {
        ts->request_timer = evloop_timer_add(ts->loop, EVLOOP_TIMER_OFF, 0, requested, ts);
        rc = ts->request_timer < 0 ? ts->request_timer : 0;
    }
    if (!rc)
        rc = evloop_add(ts->loop, ts->clock_fd, EPOLLIN, clock_ready, ts);
    if (!rc)
        rc = evloop_start_thread(ts->loop, "timesync", SANDBOX_TIMESYNC);
    if (rc) {
        log_error("--timesync: cannot start its thread: %s", strerror(-rc));
        evloop_destroy(ts->loop);
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
    /* Requests before the thread gets to it are one sync, as they were one flag. */
    evloop_timer_set(ts->loop, ts->request_timer, 0, 0);
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
    /* A sync in progress is dropped with its socket (the guest sees the connection close). */
    evloop_destroy(ts->loop);
    if (ts->op.fd >= 0)
        close(ts->op.fd);
    close(ts->clock_fd);
    pthread_mutex_destroy(&ts->lock);
    free(ts);
}
