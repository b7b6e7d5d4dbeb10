/*
 * epoll event loop (src/vmm/evloop.c): handlers run on the loop's thread,
 * fds are added, modified and removed from other threads, stop joins the
 * thread, and a handler may remove itself or another fd in the same batch.
 * The thread outlives a stop: it parks, and the next start runs the loop
 * on it again (a device rebuilt after a guest reboot keeps its thread);
 * evloop_clear empties a stopped loop; evloop_destroy ends the thread.
 * "Nothing ran" is never checked by sleeping: on a running loop, a barrier
 * (loop_barrier) proves the loop has dispatched everything that was ready
 * before it; on a stopped loop, the probe is marked forbidden until the
 * loop is started again, and the pending event must then run exactly once.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/evloop.h"

struct probe {
    struct evloop *loop;
    int fd;
    atomic_uint calls;
    atomic_uint last_events;
    pthread_t thread;
    char thread_name[16];
    /* Optional actions taken from inside the handler. */
    bool consume;
    bool del_self;
    struct probe *del_other;
    int del_rc;
    bool stop_loop;
    unsigned sleep_ms;
    atomic_bool finished;
    atomic_bool after_stop;      /* set 100 ms after a handler's own evloop_stop */
    atomic_bool forbidden;       /* the handler must not run now ... */
    atomic_uint forbidden_calls; /* ... and these are the times it did */
};

/* Guards the thread identity a handler records, read by the test thread. */
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;

static void probe_cb(void *opaque, uint32_t events)
{
    struct probe *p = opaque;
    if (atomic_load(&p->forbidden))
        atomic_fetch_add(&p->forbidden_calls, 1);
    pthread_mutex_lock(&probe_lock);
    p->thread = pthread_self();
    pthread_getname_np(p->thread, p->thread_name, sizeof(p->thread_name));
    pthread_mutex_unlock(&probe_lock);
    atomic_store(&p->last_events, events);
    if (p->consume) {
        uint64_t v;
        if (read(p->fd, &v, sizeof(v)) < 0)
            p->del_rc = -errno;
    }
    if (p->del_other)
        p->del_rc = evloop_del(p->loop, p->del_other->fd);
    if (p->del_self)
        p->del_rc = evloop_del(p->loop, p->fd);
    if (p->sleep_ms)
        usleep(p->sleep_ms * 1000);
    atomic_store(&p->finished, true);
    if (p->stop_loop) {
        evloop_stop(p->loop);
        atomic_fetch_add(&p->calls, 1);
        /* Stay on the loop thread a while after asking it to stop. */
        usleep(100000);
        atomic_store(&p->after_stop, true);
        return;
    }
    atomic_fetch_add(&p->calls, 1);
}

/* The thread the handler last ran on, and its name. */
static pthread_t probe_thread(struct probe *p, char name[16])
{
    pthread_mutex_lock(&probe_lock);
    pthread_t t = p->thread;
    memcpy(name, p->thread_name, 16);
    pthread_mutex_unlock(&probe_lock);
    return t;
}

static void probe_init(struct probe *p, struct evloop *loop)
{
    memset(p, 0, sizeof(*p));
    p->loop = loop;
    p->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(p->fd >= 0);
}

static void kick(struct probe *p)
{
    uint64_t one = 1;
    assert_int_equal(write(p->fd, &one, sizeof(one)), sizeof(one));
}

/* Wait up to 5 s for at least n calls. */
static bool wait_calls(struct probe *p, unsigned n)
{
    for (int i = 0; i < 5000; i++) {
        if (atomic_load(&p->calls) >= n)
            return true;
        usleep(1000);
    }
    return false;
}

/*
 * A barrier through a running loop: when it returns, the loop has dispatched
 * every event that was ready before the call. Two round trips through an fd
 * of its own: the first handler may share an epoll batch with an earlier
 * event and run before it, but the second kick is made after that batch was
 * collected, so it comes in a later batch, after the whole first one.
 */
static void loop_barrier(struct evloop *loop)
{
    struct probe b;
    probe_init(&b, loop);
    b.consume = true;
    assert_int_equal(evloop_add(loop, b.fd, EPOLLIN, probe_cb, &b), 0);
    kick(&b);
    assert_true(wait_calls(&b, 1));
    kick(&b);
    assert_true(wait_calls(&b, 2));
    assert_int_equal(evloop_del(loop, b.fd), 0);
    close(b.fd);
}

static int setup(void **state)
{
    struct evloop *loop;
    assert_int_equal(evloop_create(&loop), 0);
    *state = loop;
    alarm(30); /* a lost wakeup or a stop that does not return fails the run */
    return 0;
}

static int teardown(void **state)
{
    evloop_destroy(*state);
    alarm(0);
    return 0;
}

struct adder {
    struct evloop *loop;
    struct probe *p;
    uint32_t events;
    int rc;
};

static void *add_from_thread(void *arg)
{
    struct adder *a = arg;
    a->rc = evloop_add(a->loop, a->p->fd, a->events, probe_cb, a->p);
    return NULL;
}

static void *del_from_thread(void *arg)
{
    struct adder *a = arg;
    a->rc = evloop_del(a->loop, a->p->fd);
    return NULL;
}

static void *mod_from_thread(void *arg)
{
    struct adder *a = arg;
    a->rc = evloop_mod(a->loop, a->p->fd, a->events);
    return NULL;
}

static int on_thread(void *(*fn)(void *), struct adder *a)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fn, a), 0);
    pthread_join(t, NULL);
    return a->rc;
}

static void test_add_from_other_thread_runs_on_loop_thread(void **state)
{
    struct evloop *loop = *state;
    struct probe p;
    probe_init(&p, loop);
    p.consume = true;
    assert_int_equal(evloop_start_thread(loop, "io-test", SANDBOX_IO_OTHER), 0);
    struct adder a = {.loop = loop, .p = &p, .events = EPOLLIN};
    assert_int_equal(on_thread(add_from_thread, &a), 0);
    /* The same fd twice is refused. */
    assert_int_equal(on_thread(add_from_thread, &a), -EEXIST);
    kick(&p);
    assert_true(wait_calls(&p, 1));
    char name[16];
    assert_false(pthread_equal(probe_thread(&p, name), pthread_self()));
    assert_string_equal(name, "io-test");
    assert_true(atomic_load(&p.last_events) & EPOLLIN);
    kick(&p);
    assert_true(wait_calls(&p, 2));
    evloop_stop(loop);
    close(p.fd);
}

static void test_mod_changes_events(void **state)
{
    struct evloop *loop = *state;
    struct probe p;
    probe_init(&p, loop);
    p.consume = true;
    /* An eventfd with a zero count is writable but not readable. */
    assert_int_equal(evloop_add(loop, p.fd, EPOLLIN, probe_cb, &p), 0);
    assert_int_equal(evloop_start_thread(loop, "io-mod", SANDBOX_IO_OTHER), 0);
    loop_barrier(loop);
    assert_int_equal(atomic_load(&p.calls), 0);
    struct adder a = {.loop = loop, .p = &p, .events = EPOLLOUT | EPOLLONESHOT};
    assert_int_equal(on_thread(mod_from_thread, &a), 0);
    assert_true(wait_calls(&p, 1));
    assert_int_equal(atomic_load(&p.last_events), EPOLLOUT);
    /* One shot: not called again although still writable. */
    loop_barrier(loop);
    assert_int_equal(atomic_load(&p.calls), 1);
    a.events = EPOLLIN;
    assert_int_equal(on_thread(mod_from_thread, &a), 0);
    kick(&p);
    assert_true(wait_calls(&p, 2));
    assert_int_equal(atomic_load(&p.last_events), EPOLLIN);
    evloop_stop(loop);

    struct probe unknown;
    probe_init(&unknown, loop);
    assert_int_equal(evloop_mod(loop, unknown.fd, EPOLLIN), -ENOENT);
    assert_int_equal(evloop_del(loop, unknown.fd), -ENOENT);
    close(unknown.fd);
    close(p.fd);
}

static void test_del_from_other_thread(void **state)
{
    struct evloop *loop = *state;
    struct probe p;
    probe_init(&p, loop);
    p.consume = true;
    assert_int_equal(evloop_add(loop, p.fd, EPOLLIN, probe_cb, &p), 0);
    assert_int_equal(evloop_start_thread(loop, "io-del", SANDBOX_IO_OTHER), 0);
    kick(&p);
    assert_true(wait_calls(&p, 1));
    struct adder a = {.loop = loop, .p = &p};
    assert_int_equal(on_thread(del_from_thread, &a), 0);
    assert_int_equal(on_thread(del_from_thread, &a), -ENOENT);
    kick(&p);
    loop_barrier(loop);
    assert_int_equal(atomic_load(&p.calls), 1);
    /* The fd can come back with a new handler. */
    struct probe q;
    probe_init(&q, loop);
    close(q.fd);
    q.fd = p.fd;
    q.consume = true;
    assert_int_equal(evloop_add(loop, q.fd, EPOLLIN, probe_cb, &q), 0);
    assert_true(wait_calls(&q, 1));
    assert_int_equal(atomic_load(&p.calls), 1);
    evloop_stop(loop);
    close(p.fd);
}

static void test_stop_joins_running_handler(void **state)
{
    struct evloop *loop = *state;
    struct probe p;
    probe_init(&p, loop);
    p.consume = true;
    p.sleep_ms = 200;
    assert_int_equal(evloop_add(loop, p.fd, EPOLLIN, probe_cb, &p), 0);
    assert_int_equal(evloop_start_thread(loop, "io-stop", SANDBOX_IO_OTHER), 0);
    kick(&p);
    /* Wait until the handler is running, then stop while it sleeps. */
    char name[16] = "";
    for (int i = 0; i < 5000 && name[0] == 0; i++) {
        usleep(1000);
        probe_thread(&p, name);
    }
    assert_string_equal(name, "io-stop");
    evloop_stop(loop);
    assert_true(atomic_load(&p.finished));
    assert_int_equal(atomic_load(&p.calls), 1);
    /* Stopped: events are no longer handled until it starts again. */
    atomic_store(&p.forbidden, true);
    kick(&p);
    assert_int_equal(atomic_load(&p.calls), 1);
    /* And it can be started again: the pending kick runs once, then. */
    p.sleep_ms = 0;
    atomic_store(&p.forbidden, false);
    assert_int_equal(evloop_start_thread(loop, "io-again", SANDBOX_IO_OTHER), 0);
    assert_true(wait_calls(&p, 2));
    loop_barrier(loop);
    assert_int_equal(atomic_load(&p.calls), 2);
    assert_int_equal(atomic_load(&p.forbidden_calls), 0);
    evloop_stop(loop);
    close(p.fd);
}

/*
 * A handler stopping its own loop thread cannot join itself; the stop that
 * a teardown path makes afterwards must still wait for that thread, or the
 * loop could be freed under it.
 */
static void test_handler_stops_own_thread(void **state)
{
    struct evloop *loop = *state;
    struct probe p;
    probe_init(&p, loop);
    p.consume = true;
    p.stop_loop = true;
    assert_int_equal(evloop_add(loop, p.fd, EPOLLIN, probe_cb, &p), 0);
    assert_int_equal(evloop_start_thread(loop, "io-selfstop", SANDBOX_IO_OTHER), 0);
    kick(&p);
    assert_true(wait_calls(&p, 1));
    /* The handler is past its own evloop_stop and now lingers. */
    evloop_stop(loop);
    assert_true(atomic_load(&p.after_stop));
    /* Stopped for good: nothing runs until the loop is started again. */
    atomic_store(&p.forbidden, true);
    kick(&p);
    assert_int_equal(atomic_load(&p.calls), 1);
    p.stop_loop = false;
    atomic_store(&p.forbidden, false);
    assert_int_equal(evloop_start_thread(loop, "io-selfstop", SANDBOX_IO_OTHER), 0);
    assert_true(wait_calls(&p, 2));
    loop_barrier(loop);
    assert_int_equal(atomic_load(&p.calls), 2);
    assert_int_equal(atomic_load(&p.forbidden_calls), 0);
    evloop_stop(loop);
    close(p.fd);
}

static void test_run_on_caller_thread_until_stop(void **state)
{
    struct evloop *loop = *state;
    struct probe p;
    probe_init(&p, loop);
    p.consume = true;
    p.stop_loop = true;
    assert_int_equal(evloop_add(loop, p.fd, EPOLLIN, probe_cb, &p), 0);
    kick(&p);
    assert_int_equal(evloop_run(loop), 0);
    assert_int_equal(atomic_load(&p.calls), 1);
    char name[16];
    assert_true(pthread_equal(probe_thread(&p, name), pthread_self()));
    close(p.fd);
}

/* Both fds are ready before the loop waits, so both are in one epoll batch. */
static void test_handler_deletes_other_fd_in_same_batch(void **state)
{
    struct evloop *loop = *state;
    struct probe a, b;
    probe_init(&a, loop);
    probe_init(&b, loop);
    a.del_other = &b;
    a.stop_loop = true;
    b.del_other = &a;
    b.stop_loop = true;
    a.consume = b.consume = true;
    assert_int_equal(evloop_add(loop, a.fd, EPOLLIN, probe_cb, &a), 0);
    assert_int_equal(evloop_add(loop, b.fd, EPOLLIN, probe_cb, &b), 0);
    kick(&a);
    kick(&b);
    assert_int_equal(evloop_run(loop), 0);
    /* Whichever ran first removed the other, which must then not run. */
    assert_int_equal(atomic_load(&a.calls) + atomic_load(&b.calls), 1);
    struct probe *ran = atomic_load(&a.calls) ? &a : &b;
    struct probe *other = ran == &a ? &b : &a;
    assert_int_equal(ran->del_rc, 0);
    assert_int_equal(evloop_del(loop, other->fd), -ENOENT);
    assert_int_equal(evloop_del(loop, ran->fd), 0);
    close(a.fd);
    close(b.fd);
}

static void test_handler_deletes_itself(void **state)
{
    struct evloop *loop = *state;
    struct probe self, other;
    probe_init(&self, loop);
    probe_init(&other, loop);
    /* Not consumed: the fd stays readable, so only the deletion stops calls. */
    self.del_self = true;
    other.consume = true;
    assert_int_equal(evloop_add(loop, self.fd, EPOLLIN, probe_cb, &self), 0);
    assert_int_equal(evloop_add(loop, other.fd, EPOLLIN, probe_cb, &other), 0);
    kick(&self);
    kick(&other);
    assert_int_equal(evloop_start_thread(loop, "io-self", SANDBOX_IO_OTHER), 0);
    assert_true(wait_calls(&self, 1));
    assert_true(wait_calls(&other, 1));
    kick(&other);
    assert_true(wait_calls(&other, 2));
    loop_barrier(loop);
    assert_int_equal(atomic_load(&self.calls), 1);
    assert_int_equal(self.del_rc, 0);
    evloop_stop(loop);
    close(self.fd);
    close(other.fd);
}

/* Many fds added and removed from two threads while the loop serves them. */
struct churn {
    struct evloop *loop;
    struct probe probes[16];
    int errors;
};

static void *churn_thread(void *arg)
{
    struct churn *c = arg;
    for (int round = 0; round < 300; round++) {
        for (int i = 0; i < 16; i++)
            if (evloop_add(c->loop, c->probes[i].fd, EPOLLIN, probe_cb, &c->probes[i]))
                c->errors++;
        /* No cmocka assertions off the test's thread: count failures instead. */
        for (int i = 0; i < 16; i++) {
            uint64_t one = 1;
            if (write(c->probes[i].fd, &one, sizeof(one)) != sizeof(one))
                c->errors++;
        }
        for (int i = 0; i < 16; i++)
            if (evloop_del(c->loop, c->probes[i].fd))
                c->errors++;
    }
    return NULL;
}

static void test_concurrent_add_del(void **state)
{
    struct evloop *loop = *state;
    static struct churn c[2];
    for (int t = 0; t < 2; t++) {
        c[t].loop = loop;
        c[t].errors = 0;
        for (int i = 0; i < 16; i++) {
            probe_init(&c[t].probes[i], loop);
            c[t].probes[i].consume = true;
        }
    }
    assert_int_equal(evloop_start_thread(loop, "io-churn", SANDBOX_IO_OTHER), 0);
    pthread_t th[2];
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_create(&th[t], NULL, churn_thread, &c[t]), 0);
    for (int t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    evloop_stop(loop);
    for (int t = 0; t < 2; t++) {
        assert_int_equal(c[t].errors, 0);
        for (int i = 0; i < 16; i++)
            close(c[t].probes[i].fd);
    }
}

/* ---- the thread survives a stop ---- */

/* Kick p and wait for its handler; returns the thread it ran on. */
static pthread_t kick_and_wait(struct probe *p)
{
    unsigned before = atomic_load(&p->calls);
    kick(p);
    assert_true(wait_calls(p, before + 1));
    char name[16];
    return probe_thread(p, name);
}

static void test_stop_then_start_same_thread(void **state)
{
    struct evloop *loop = *state;
    struct probe p;
    probe_init(&p, loop);
    p.consume = true;
    assert_int_equal(evloop_add(loop, p.fd, EPOLLIN, probe_cb, &p), 0);
    assert_int_equal(evloop_start_thread(loop, "io-keep", SANDBOX_IO_OTHER), 0);
    pthread_t first = kick_and_wait(&p);
    assert_false(pthread_equal(first, pthread_self()));
    for (int round = 0; round < 5; round++) {
        evloop_stop(loop);
        /* Parked: nothing runs until the next start. */
        unsigned calls = atomic_load(&p.calls);
        atomic_store(&p.forbidden, true);
        kick(&p);
        assert_int_equal(atomic_load(&p.calls), calls);
        atomic_store(&p.forbidden, false);
        /* Started again (under another name: the thread keeps its first one). */
        assert_int_equal(evloop_start_thread(loop, "io-other", SANDBOX_IO_OTHER), 0);
        assert_true(wait_calls(&p, calls + 1)); /* the kick made while parked */
        assert_int_equal(atomic_load(&p.forbidden_calls), 0);
        assert_true(pthread_equal(kick_and_wait(&p), first));
        char name[16];
        probe_thread(&p, name);
        assert_string_equal(name, "io-keep");
    }
    /* A second start while running is harmless: still the one thread. */
    assert_int_equal(evloop_start_thread(loop, "io-keep", SANDBOX_IO_OTHER), 0);
    assert_true(pthread_equal(kick_and_wait(&p), first));
    /* Stopping a parked loop again returns at once. */
    evloop_stop(loop);
    evloop_stop(loop);
    close(p.fd);
}

/* evloop_stop from a handler parks the loop after it; a start runs it again on that thread. */
static void test_stop_from_handler_then_restart(void **state)
{
    struct evloop *loop = *state;
    struct probe p;
    probe_init(&p, loop);
    p.consume = true;
    p.stop_loop = true;
    assert_int_equal(evloop_add(loop, p.fd, EPOLLIN, probe_cb, &p), 0);
    assert_int_equal(evloop_start_thread(loop, "io-hstop", SANDBOX_IO_OTHER), 0);
    pthread_t first = kick_and_wait(&p);
    /* The handler's own stop did not wait for itself; this one waits for the park. */
    evloop_stop(loop);
    assert_true(atomic_load(&p.after_stop));
    unsigned calls = atomic_load(&p.calls);
    atomic_store(&p.forbidden, true);
    kick(&p);
    assert_int_equal(atomic_load(&p.calls), calls);
    /* Restarted: the pending kick is handled, on the same thread, and it stops again. */
    atomic_store(&p.after_stop, false);
    atomic_store(&p.forbidden, false);
    assert_int_equal(evloop_start_thread(loop, "io-hstop", SANDBOX_IO_OTHER), 0);
    assert_true(wait_calls(&p, calls + 1));
    assert_int_equal(atomic_load(&p.forbidden_calls), 0);
    char name[16];
    assert_true(pthread_equal(probe_thread(&p, name), first));
    evloop_stop(loop);
    assert_true(atomic_load(&p.after_stop));
    /* And once more without stopping from the handler. */
    p.stop_loop = false;
    assert_int_equal(evloop_start_thread(loop, "io-hstop", SANDBOX_IO_OTHER), 0);
    assert_true(pthread_equal(kick_and_wait(&p), first));
    evloop_stop(loop);
    close(p.fd);
}

static void test_clear_removes_all_handlers(void **state)
{
    struct evloop *loop = *state;
    struct probe p[3];
    for (int i = 0; i < 3; i++) {
        probe_init(&p[i], loop);
        p[i].consume = true;
        assert_int_equal(evloop_add(loop, p[i].fd, EPOLLIN, probe_cb, &p[i]), 0);
    }
    assert_int_equal(evloop_start_thread(loop, "io-clear", SANDBOX_IO_OTHER), 0);
    pthread_t first = kick_and_wait(&p[0]);
    kick_and_wait(&p[1]);
    kick_and_wait(&p[2]);
    evloop_stop(loop);
    evloop_clear(loop);
    /* Nothing is registered any more. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(evloop_del(loop, p[i].fd), -ENOENT);
        assert_int_equal(evloop_mod(loop, p[i].fd, EPOLLIN), -ENOENT);
    }
    assert_int_equal(evloop_start_thread(loop, "io-clear", SANDBOX_IO_OTHER), 0);
    for (int i = 0; i < 3; i++)
        kick(&p[i]);
    loop_barrier(loop);
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&p[i].calls), 1);
    /* The same fds can be added again (a rebuilt device), served on the same thread. */
    assert_int_equal(evloop_add(loop, p[1].fd, EPOLLIN, probe_cb, &p[1]), 0);
    assert_true(wait_calls(&p[1], 2)); /* the kick made while it was gone */
    char name[16];
    assert_true(pthread_equal(probe_thread(&p[1], name), first));
    assert_int_equal(atomic_load(&p[0].calls), 1);
    assert_int_equal(atomic_load(&p[2].calls), 1);
    evloop_stop(loop);
    /* Clearing a loop that never had a thread, or is already empty, is fine. */
    evloop_clear(loop);
    evloop_clear(loop);
    for (int i = 0; i < 3; i++)
        close(p[i].fd);
}

static pid_t tid_seen;

static void tid_cb(void *opaque, uint32_t events)
{
    (void)events;
    int fd = *(int *)opaque;
    uint64_t v;
    if (read(fd, &v, sizeof(v)) == sizeof(v))
        __atomic_store_n(&tid_seen, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
}

static bool task_exists(pid_t tid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d", (int)tid);
    return access(path, F_OK) == 0;
}

/* The loop's thread, found through a handler (by its kernel thread id). */
static pid_t loop_tid(struct evloop *loop, int fd)
{
    __atomic_store_n(&tid_seen, 0, __ATOMIC_RELEASE);
    uint64_t one = 1;
    assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
    for (int i = 0; i < 5000 && !__atomic_load_n(&tid_seen, __ATOMIC_ACQUIRE); i++)
        usleep(1000);
    (void)loop;
    pid_t t = __atomic_load_n(&tid_seen, __ATOMIC_ACQUIRE);
    assert_true(t > 0);
    return t;
}

/* Destroying a stopped (parked) loop ends and joins its thread; so does destroying a running one.
 */
static void test_destroy_after_stop_joins(void **state)
{
    (void)state;
    for (int stop_first = 1; stop_first >= 0; stop_first--) {
        struct evloop *loop;
        assert_int_equal(evloop_create(&loop), 0);
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        assert_true(fd >= 0);
        assert_int_equal(evloop_add(loop, fd, EPOLLIN, tid_cb, &fd), 0);
        assert_int_equal(evloop_start_thread(loop, "io-join", SANDBOX_IO_OTHER), 0);
        pid_t tid = loop_tid(loop, fd);
        assert_int_not_equal(tid, (pid_t)syscall(SYS_gettid));
        if (stop_first) {
            evloop_stop(loop);
            assert_true(task_exists(tid)); /* parked, not ended */
        }
        evloop_destroy(loop);
        /* Joined: the thread is gone when destroy returns. */
        assert_false(task_exists(tid));
        close(fd);
    }
    /* A loop whose thread never started, and NULL. */
    struct evloop *loop;
    assert_int_equal(evloop_create(&loop), 0);
    evloop_stop(loop);
    evloop_destroy(loop);
    evloop_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_from_other_thread_runs_on_loop_thread, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mod_changes_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_del_from_other_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_joins_running_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_stops_own_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_on_caller_thread_until_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_deletes_other_fd_in_same_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_handler_deletes_itself, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_add_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_then_start_same_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_from_handler_then_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear_removes_all_handlers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_after_stop_joins, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
