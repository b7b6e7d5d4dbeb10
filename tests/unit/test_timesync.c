/*
 * --timesync (src/vmm/timesync.c) against a stand-in for the guest agent on
 * a UNIX socket: the command sent, each way a sync can end (answered,
 * refused by the agent, connection closed, no answer in time, nobody
 * there), and the thread syncing on request through the socket its vsock
 * port names. The way through the vsock device is test_virtio_vsock's.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/timesync.h"

enum agent_mode { AGENT_OK, AGENT_ERROR, AGENT_CLOSE, AGENT_SILENT, AGENT_NUL, AGENT_ENDLESS };

struct agent {
    int listener;
    enum agent_mode mode;
    char line[256];    /* what it received (the last connection's) */
    bool serve_all;    /* serve connections until agent_stop, not just one */
    unsigned accepted; /* connections it served; read after agent_stop */
    pthread_t thread;
};

static int listen_at(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    return fd;
}

/* Read one line from a connection, answer as the mode says. */
static void agent_serve(struct agent *ag, int fd)
{
    size_t got = 0;
    while (got < sizeof(ag->line) - 1 && !memchr(ag->line, '\n', got)) {
        ssize_t n = read(fd, ag->line + got, sizeof(ag->line) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    ag->line[got] = '\0';
    const char *answer = NULL;
    size_t len = 0;
    char endless[4096];
    if (ag->mode == AGENT_OK)
        answer = "{\"return\": {}}\n";
    else if (ag->mode == AGENT_ERROR)
        answer = "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}\n";
    if (answer)
        len = strlen(answer);
    if (ag->mode == AGENT_NUL) { /* a hostile agent: a NUL ahead of the newline */
        answer = "\0{\"return\": {}}\n";
        len = 17;
    } else if (ag->mode == AGENT_ENDLESS) { /* and one that never ends its line */
        memset(endless, 'x', sizeof(endless));
        answer = endless;
        len = sizeof(endless);
    }
    if (answer && write(fd, answer, len) < 0)
        answer = NULL;
    if (ag->mode == AGENT_SILENT) { /* no answer: hold on until the sender gives up */
        char c;
        while (read(fd, &c, 1) > 0)
            ;
    }
    close(fd);
}

/* Accept one connection (or, with serve_all, each until agent_stop). */
static void *agent_run(void *arg)
{
    struct agent *ag = arg;
    do {
        int fd = accept(ag->listener, NULL, NULL);
        if (fd < 0)
            break; /* agent_stop shut the listener down */
        ag->accepted++;
        agent_serve(ag, fd);
    } while (ag->serve_all);
    return NULL;
}

static void agent_start(struct agent *ag, const char *path, enum agent_mode mode)
{
    memset(ag, 0, sizeof(*ag));
    ag->listener = listen_at(path);
    ag->mode = mode;
    assert_int_equal(pthread_create(&ag->thread, NULL, agent_run, ag), 0);
}

static void agent_stop(struct agent *ag, const char *path)
{
    if (ag->serve_all)
        shutdown(ag->listener, SHUT_RDWR); /* ends its accept */
    pthread_join(ag->thread, NULL);
    close(ag->listener);
    unlink(path);
}

static char path[108];

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "/tmp/test-timesync-%d.sock", (int)getpid());
    return 0;
}

static void test_answered(void **state)
{
    (void)state;
    struct agent ag;
    agent_start(&ag, path, AGENT_OK);
    assert_int_equal(timesync_send(path, 1700000000123456789ull, 2000), 0);
    agent_stop(&ag, path);
    assert_string_equal(ag.line, "{\"execute\":\"guest-set-time\",\"arguments\":"
                                 "{\"time\":1700000000123456789}}\n");
}

static void test_agent_error(void **state)
{
    (void)state;
    struct agent ag;
    agent_start(&ag, path, AGENT_ERROR);
    assert_int_equal(timesync_send(path, 1, 2000), -EPROTO);
    agent_stop(&ag, path);
}

/* What a hostile guest's agent answers is only text, never trusted. */
static void test_hostile_answers(void **state)
{
    (void)state;
    struct agent ag;
    agent_start(&ag, path, AGENT_NUL);
    assert_int_equal(timesync_send(path, 1, 2000), -EPROTO);
    agent_stop(&ag, path);
    agent_start(&ag, path, AGENT_ENDLESS);
    assert_int_equal(timesync_send(path, 1, 2000), -EPROTO);
    agent_stop(&ag, path);
}

static void test_closed(void **state)
{
    (void)state;
    struct agent ag;
    agent_start(&ag, path, AGENT_CLOSE);
    assert_int_equal(timesync_send(path, 1, 2000), -ECONNRESET);
    agent_stop(&ag, path);
}

static void test_no_answer_in_time(void **state)
{
    (void)state;
    struct agent ag;
    agent_start(&ag, path, AGENT_SILENT);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(timesync_send(path, 1, 200), -ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 190 && ms < 550);
    agent_stop(&ag, path);
}

static void test_nobody_there(void **state)
{
    (void)state;
    unlink(path);
    assert_int_equal(timesync_send(path, 1, 200), -ENOENT);
    int l = listen_at(path);
    close(l); /* a socket file nobody listens on */
    assert_int_equal(timesync_send(path, 1, 200), -ECONNREFUSED);
    unlink(path);
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(timesync_send(longpath, 1, 200), -ENAMETOOLONG);
}

static void test_thread_syncs_on_request(void **state)
{
    (void)state;
    struct timesync *ts;
    assert_int_equal(timesync_create(1026, &ts), 0);
    const struct dev_vsock *v = timesync_vsock(ts);
    assert_int_equal(v->port, 1026);
    assert_false(v->listen); /* the VMM makes the socket and connects to the guest */
    char want[108];
    snprintf(want, sizeof(want), "/tmp/krunkit_timesync_%d.sock", (int)getpid());
    assert_string_equal(v->socket_url, want);
    assert_int_equal(timesync_count(ts), 0);

    struct agent ag;
    agent_start(&ag, v->socket_url, AGENT_OK);
    struct timespec before;
    clock_gettime(CLOCK_REALTIME, &before);
    timesync_request(ts);
    for (int i = 0; i < 500 && timesync_count(ts) == 0; i++)
        usleep(10 * 1000);
    assert_int_equal(timesync_count(ts), 1);
    agent_stop(&ag, v->socket_url);
    /* It sent the host's time of the request. */
    unsigned long long sent = 0;
    assert_int_equal(
        sscanf(ag.line, "{\"execute\":\"guest-set-time\",\"arguments\":{\"time\":%llu}}", &sent),
        1);
    unsigned long long b =
        (unsigned long long)before.tv_sec * 1000000000ull + (unsigned long long)before.tv_nsec;
    assert_true(sent >= b && sent - b < 5000000000ull);
    timesync_destroy(ts);
}

/* Wait up to 5 s for the thread's count of syncs to reach n. */
static void wait_count(struct timesync *ts, unsigned n)
{
    for (int i = 0; i < 500 && timesync_count(ts) < n; i++)
        usleep(10 * 1000);
    assert_int_equal(timesync_count(ts), n);
}

/*
 * The host's clock being set (as the kernel does on resume from suspend)
 * makes the thread sync on its own, and nothing else does. The test sets
 * CLOCK_REALTIME to what it reads, which moves it back by the nanoseconds
 * in between; without CAP_SYS_TIME it is skipped. "Nothing else" is not
 * checked by sleeping: the agent counts every connection; requests before
 * and after the clock set bracket it, and timesync_destroy joins the
 * thread, so a sync of its own anywhere in between is a fourth connection.
 */
static void test_thread_syncs_when_clock_set(void **state)
{
    (void)state;
    struct timesync *ts;
    assert_int_equal(timesync_create(1026, &ts), 0);
    /* A copy: the path lives in ts, which timesync_destroy frees. */
    char path[128];
    snprintf(path, sizeof(path), "%s", timesync_vsock(ts)->socket_url);
    struct agent ag;
    memset(&ag, 0, sizeof(ag));
    ag.listener = listen_at(path);
    ag.mode = AGENT_OK;
    ag.serve_all = true;
    assert_int_equal(pthread_create(&ag.thread, NULL, agent_run, &ag), 0);
    assert_int_equal(timesync_count(ts), 0);
    timesync_request(ts); /* the thread is up and serving */
    wait_count(ts, 1);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (clock_settime(CLOCK_REALTIME, &now) < 0) {
        timesync_destroy(ts);
        agent_stop(&ag, path);
        skip();
    }
    wait_count(ts, 2);
    assert_non_null(strstr(ag.line, "guest-set-time"));
    timesync_request(ts); /* the barrier after it */
    wait_count(ts, 3);
    timesync_destroy(ts);
    agent_stop(&ag, path);
    assert_int_equal(ag.accepted, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_answered, setup),
        cmocka_unit_test_setup(test_agent_error, setup),
        cmocka_unit_test_setup(test_hostile_answers, setup),
        cmocka_unit_test_setup(test_closed, setup),
        cmocka_unit_test_setup(test_no_answer_in_time, setup),
        cmocka_unit_test_setup(test_nobody_there, setup),
        cmocka_unit_test(test_thread_syncs_on_request),
        cmocka_unit_test(test_thread_syncs_when_clock_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
