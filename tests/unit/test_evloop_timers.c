/*
 * evloop timers and the post-dispatch hook (src/vmm/evloop.h): timers fire
 * in deadline order, periodic ones repeat, a cancel from another thread
 * waits for a callback in progress and a cancel from the loop's own thread
 * (a handler, another timer, the timer itself) stops it for good; the hook
 * runs once per batch, after that batch's handlers and timers.
 *
 * Event-driven throughout: positive events are waited for on an eventfd
 * with a generous deadline; "it did not fire" is checked only when a later
 * fence timer fires, which the loop runs after anything due before it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/evloop.h"

#define MS 1000000ull
#define WAIT_MS 10000

/* A timer or handler that counts its calls and reports each on an eventfd. */
struct tick {
    struct evloop *loop;
    int done; /* eventfd, written on every call */
    atomic_uint calls;
    unsigned stop_after; /* cancel itself (id) on this call; 0: never */
    int id;
    int cancel_id; /* a timer to cancel on the first call; 0: none */
    int cancel_rc;
    bool stop_loop;  /* evloop_stop on the first call (loops run on the test thread) */
    char mark;       /* appended to the shared log on each call */
    char thread[16]; /* the name of the thread of the last call */
};

/* The order of calls across ticks and the hook, for the ordering tests. */
static char order[64];
static atomic_uint order_len;

static void log_mark(char c)
{
    unsigned i = atomic_fetch_add(&order_len, 1);
    if (i < sizeof(order) - 1)
        order[i] = c;
}

static void tick_init(struct tick *t, struct evloop *loop, char mark)
{
    memset(t, 0, sizeof(*t));
    t->loop = loop;
    t->mark = mark;
    t->done = eventfd(0, EFD_CLOEXEC);
    assert_true(t->done >= 0);
}

static void tick_fire(struct tick *t)
{
    pthread_getname_np(pthread_self(), t->thread, sizeof(t->thread));
    unsigned n = atomic_fetch_add(&t->calls, 1) + 1;
    if (t->mark)
        log_mark(t->mark);
    if (n == 1 && t->cancel_id)
        t->cancel_rc = evloop_timer_cancel(t->loop, t->cancel_id);
    if (t->stop_after && n == t->stop_after)
        t->cancel_rc = evloop_timer_cancel(t->loop, t->id);
    if (n == 1 && t->stop_loop)
        evloop_stop(t->loop);
    uint64_t one = 1;
    assert_int_equal(write(t->done, &one, sizeof(one)), sizeof(one));
}

static void tick_timer(void *opaque)
{
    tick_fire(opaque);
}

static void tick_handler(void *opaque, uint32_t events)
{
    struct tick *t = opaque;
    (void)events;
    uint64_t v;
    /* The handlers' fds are the ticks' own kick eventfds, stored in `id`. */
    assert_int_equal(read(t->id, &v, sizeof(v)), sizeof(v));
    tick_fire(t);
}

/* Wait for the tick's next call (true) or the deadline (false). */
static bool wait_tick(struct tick *t)
{
    struct pollfd p = {.fd = t->done, .events = POLLIN};
    if (poll(&p, 1, WAIT_MS) != 1)
        return false;
    uint64_t v;
    return read(t->done, &v, sizeof(v)) == sizeof(v);
}

static int setup(void **state)
{
    struct evloop *loop;
    assert_int_equal(evloop_create(&loop), 0);
    *state = loop;
    memset(order, 0, sizeof(order));
    atomic_store(&order_len, 0);
    alarm(60); /* a lost wakeup fails the run instead of hanging it */
    return 0;
}

static int teardown(void **state)
{
    evloop_destroy(*state);
    alarm(0);
    return 0;
}

static void start(struct evloop *loop)
{
    assert_int_equal(evloop_start_thread(loop, "io-timers", SANDBOX_IO_OTHER), 0);
}

static void test_timers_fire_in_deadline_order(void **state)
{
    struct evloop *loop = *state;
    start(loop);
    struct tick a, b, c;
    tick_init(&a, loop, 'a');
    tick_init(&b, loop, 'b');
    tick_init(&c, loop, 'c');
    /* Added latest-first, from this thread, to a loop already waiting. */
    assert_true(evloop_timer_add(loop, 30 * MS, 0, tick_timer, &c) > 0);
    assert_true(evloop_timer_add(loop, 20 * MS, 0, tick_timer, &b) > 0);
    assert_true(evloop_timer_add(loop, 10 * MS, 0, tick_timer, &a) > 0);
    assert_true(wait_tick(&c));
    assert_string_equal(order, "abc");
    assert_int_equal(atomic_load(&a.calls), 1);
    assert_int_equal(atomic_load(&b.calls), 1);
}

static void test_equal_deadlines_fire_in_arming_order(void **state)
{
    struct evloop *loop = *state;
    struct tick t[4];
    /* No thread yet: all four are due when the loop first looks. */
    for (int i = 0; i < 4; i++) {
        tick_init(&t[i], loop, (char)('1' + i));
        assert_true(evloop_timer_add(loop, 0, 0, tick_timer, &t[i]) > 0);
    }
    start(loop);
    assert_true(wait_tick(&t[3]));
    assert_string_equal(order, "1234");
}

static void test_periodic_timer_repeats_until_cancelled(void **state)
{
    struct evloop *loop = *state;
    start(loop);
    struct tick p, fence;
    tick_init(&p, loop, 0);
    tick_init(&fence, loop, 0);
    int id = evloop_timer_add(loop, 2 * MS, 2 * MS, tick_timer, &p);
    assert_true(id > 0);
    for (int i = 0; i < 5; i++)
        assert_true(wait_tick(&p));
    assert_int_equal(evloop_timer_cancel(loop, id), 0);
    unsigned n = atomic_load(&p.calls);
    /* Two more periods at least: the cancelled timer would have fired by then. */
    assert_true(evloop_timer_add(loop, 20 * MS, 0, tick_timer, &fence) > 0);
    assert_true(wait_tick(&fence));
    assert_int_equal(atomic_load(&p.calls), n);
    assert_int_equal(evloop_timer_cancel(loop, id), -ENOENT);
}

static void test_cancel_from_other_thread_before_it_fires(void **state)
{
    struct evloop *loop = *state;
    start(loop);
    struct tick victim, fence;
    tick_init(&victim, loop, 0);
    tick_init(&fence, loop, 0);
    int id = evloop_timer_add(loop, 1 * MS, 0, tick_timer, &victim);
    assert_true(id > 0);
    assert_int_equal(evloop_timer_cancel(loop, id), 0);
    assert_true(evloop_timer_add(loop, 20 * MS, 0, tick_timer, &fence) > 0);
    assert_true(wait_tick(&fence));
    assert_int_equal(atomic_load(&victim.calls), 0);
}

/* A callback that takes a while: cancel from another thread must wait for its end. */
struct slow {
    atomic_bool entered, finished;
};

static void slow_timer(void *opaque)
{
    struct slow *s = opaque;
    atomic_store(&s->entered, true);
    usleep(100 * 1000);
    atomic_store(&s->finished, true);
}

static void test_cancel_from_other_thread_waits_for_running_callback(void **state)
{
    struct evloop *loop = *state;
    start(loop);
    struct slow s = {0};
    int id = evloop_timer_add(loop, 0, 0, slow_timer, &s);
    assert_true(id > 0);
    for (int i = 0; i < WAIT_MS && !atomic_load(&s.entered); i++)
        usleep(1000);
    assert_true(atomic_load(&s.entered));
    assert_int_equal(evloop_timer_cancel(loop, id), 0);
    assert_true(atomic_load(&s.finished));
}

static void test_cancel_from_handler_in_same_batch(void **state)
{
    struct evloop *loop = *state;
    struct tick victim, h, fence;
    tick_init(&victim, loop, 0);
    tick_init(&h, loop, 0);
    tick_init(&fence, loop, 0);
    fence.stop_loop = true;
    /* Due at once, but handlers run before timers in a batch: the handler wins. */
    int vid = evloop_timer_add(loop, 0, 0, tick_timer, &victim);
    assert_true(vid > 0);
    h.cancel_id = vid;
    h.id = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(h.id >= 0);
    uint64_t one = 1;
    assert_int_equal(write(h.id, &one, sizeof(one)), sizeof(one));
    assert_int_equal(evloop_add(loop, h.id, EPOLLIN, tick_handler, &h), 0);
    assert_true(evloop_timer_add(loop, 20 * MS, 0, tick_timer, &fence) > 0);
    /* On this thread: returns when the fence has stopped it. */
    assert_int_equal(evloop_run(loop), 0);
    assert_int_equal(atomic_load(&h.calls), 1);
    assert_int_equal(h.cancel_rc, 0);
    assert_int_equal(atomic_load(&fence.calls), 1);
    assert_int_equal(atomic_load(&victim.calls), 0);
    assert_int_equal(evloop_del(loop, h.id), 0);
    close(h.id);
}

static void test_cancel_other_timer_from_timer(void **state)
{
    struct evloop *loop = *state;
    struct tick first, second, fence;
    tick_init(&first, loop, 'f');
    tick_init(&second, loop, 's');
    tick_init(&fence, loop, 'F');
    fence.stop_loop = true;
    /* Both due in the first batch: the earlier one cancels the later one. */
    assert_true(evloop_timer_add(loop, 0, 0, tick_timer, &first) > 0);
    int sid = evloop_timer_add(loop, 0, 0, tick_timer, &second);
    assert_true(sid > 0);
    first.cancel_id = sid;
    assert_true(evloop_timer_add(loop, 20 * MS, 0, tick_timer, &fence) > 0);
    assert_int_equal(evloop_run(loop), 0);
    assert_int_equal(first.cancel_rc, 0);
    assert_string_equal(order, "fF");
}

static void test_periodic_cancels_itself_from_callback(void **state)
{
    struct evloop *loop = *state;
    start(loop);
    struct tick p, fence;
    tick_init(&p, loop, 0);
    tick_init(&fence, loop, 0);
    p.stop_after = 3;
    /* Armed only once it knows its id. */
    p.id = evloop_timer_add(loop, EVLOOP_TIMER_OFF, 0, tick_timer, &p);
    assert_true(p.id > 0);
    assert_int_equal(evloop_timer_set(loop, p.id, 1 * MS, 1 * MS), 0);
    for (int i = 0; i < 3; i++)
        assert_true(wait_tick(&p));
    assert_true(evloop_timer_add(loop, 20 * MS, 0, tick_timer, &fence) > 0);
    assert_true(wait_tick(&fence));
    assert_int_equal(p.cancel_rc, 0);
    assert_int_equal(atomic_load(&p.calls), 3);
    assert_int_equal(evloop_timer_cancel(loop, p.id), -ENOENT);
}

static void test_rearm_and_disarm(void **state)
{
    struct evloop *loop = *state;
    start(loop);
    struct tick t, fence;
    tick_init(&t, loop, 0);
    tick_init(&fence, loop, 0);
    /* Created disarmed; armed later from this thread. */
    int id = evloop_timer_add(loop, EVLOOP_TIMER_OFF, 0, tick_timer, &t);
    assert_true(id > 0);
    assert_int_equal(evloop_timer_set(loop, id, 1 * MS, 0), 0);
    assert_true(wait_tick(&t));
    /* A one-shot timer stays after it fired and can be armed again. */
    assert_int_equal(evloop_timer_set(loop, id, 1 * MS, 0), 0);
    assert_true(wait_tick(&t));
    /* Pushed later, then disarmed: it must not fire before the fence. */
    assert_int_equal(evloop_timer_set(loop, id, 5 * MS, 0), 0);
    assert_int_equal(evloop_timer_set(loop, id, EVLOOP_TIMER_OFF, 0), 0);
    assert_true(evloop_timer_add(loop, 30 * MS, 0, tick_timer, &fence) > 0);
    assert_true(wait_tick(&fence));
    assert_int_equal(atomic_load(&t.calls), 2);
    assert_int_equal(evloop_timer_set(loop, 12345, 0, 0), -ENOENT);
    assert_int_equal(evloop_timer_cancel(loop, id), 0);
}

/* ---- post-dispatch ---- */

struct hook {
    struct evloop *loop;
    atomic_uint calls;
    bool stop_loop;
    pthread_t thread;
};

static void hook_cb(void *opaque)
{
    struct hook *h = opaque;
    atomic_fetch_add(&h->calls, 1);
    h->thread = pthread_self();
    log_mark('P');
    if (h->stop_loop)
        evloop_stop(h->loop);
}

static void add_kicked_handler(struct evloop *loop, struct tick *t, char mark)
{
    tick_init(t, loop, mark);
    t->id = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(t->id >= 0);
    uint64_t one = 1;
    assert_int_equal(write(t->id, &one, sizeof(one)), sizeof(one));
    assert_int_equal(evloop_add(loop, t->id, EPOLLIN, tick_handler, t), 0);
}

static void test_post_dispatch_once_per_batch_after_handlers(void **state)
{
    struct evloop *loop = *state;
    struct tick h[3], timer;
    struct hook hk = {.loop = loop, .stop_loop = true};
    evloop_set_post_dispatch(loop, hook_cb, &hk);
    /* Three ready fds and a due timer: one batch, then the hook once. */
    for (int i = 0; i < 3; i++)
        add_kicked_handler(loop, &h[i], 'h');
    tick_init(&timer, loop, 't');
    assert_true(evloop_timer_add(loop, 0, 0, tick_timer, &timer) > 0);
    assert_int_equal(evloop_run(loop), 0);
    assert_string_equal(order, "hhhtP");
    assert_int_equal(atomic_load(&hk.calls), 1);

    /* A second batch with two of them: the hook once more, after both. */
    memset(order, 0, sizeof(order));
    atomic_store(&order_len, 0);
    uint64_t one = 1;
    assert_int_equal(write(h[0].id, &one, sizeof(one)), sizeof(one));
    assert_int_equal(write(h[2].id, &one, sizeof(one)), sizeof(one));
    assert_int_equal(evloop_run(loop), 0);
    assert_string_equal(order, "hhP");
    assert_int_equal(atomic_load(&hk.calls), 2);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(evloop_del(loop, h[i].id), 0);
        close(h[i].id);
    }
}

static void test_post_dispatch_runs_on_loop_thread_and_can_be_removed(void **state)
{
    struct evloop *loop = *state;
    struct hook hk = {.loop = loop};
    evloop_set_post_dispatch(loop, hook_cb, &hk);
    start(loop);
    struct tick t, fence;
    tick_init(&t, loop, 0);
    tick_init(&fence, loop, 0);
    assert_true(evloop_timer_add(loop, 1 * MS, 0, tick_timer, &t) > 0);
    assert_true(wait_tick(&t));
    /* The hook follows the timer's batch; a fence batch proves it ran. */
    assert_true(evloop_timer_add(loop, 1 * MS, 0, tick_timer, &fence) > 0);
    assert_true(wait_tick(&fence));
    unsigned n = atomic_load(&hk.calls);
    assert_true(n >= 1);
    assert_false(pthread_equal(hk.thread, pthread_self()));
    /* Removed from this thread: once it returns, no batch calls it. */
    evloop_set_post_dispatch(loop, NULL, NULL);
    n = atomic_load(&hk.calls);
    assert_true(evloop_timer_add(loop, 1 * MS, 0, tick_timer, &fence) > 0);
    assert_true(wait_tick(&fence));
    assert_true(evloop_timer_add(loop, 1 * MS, 0, tick_timer, &fence) > 0);
    assert_true(wait_tick(&fence));
    assert_int_equal(atomic_load(&hk.calls), n);
}

/* ---- nested: an inner loop served by an outer loop's thread ---- */

static void dispatch_inner(void *opaque, uint32_t events)
{
    (void)events;
    assert_int_equal(evloop_dispatch(opaque), 0);
}

static void test_nested_loop_timers_run_on_outer_thread(void **state)
{
    struct evloop *outer = *state, *inner;
    assert_int_equal(evloop_create(&inner), 0);
    assert_int_equal(evloop_add(outer, evloop_fd(inner), EPOLLIN, dispatch_inner, inner), 0);
    start(outer);
    struct tick t, p;
    tick_init(&t, inner, 0);
    tick_init(&p, inner, 0);
    /* Armed from this thread: the inner loop's wake-up reaches the outer one. */
    assert_true(evloop_timer_add(inner, 2 * MS, 0, tick_timer, &t) > 0);
    assert_true(wait_tick(&t));
    assert_string_equal(t.thread, "io-timers"); /* the outer loop's thread */
    int id = evloop_timer_add(inner, 1 * MS, 1 * MS, tick_timer, &p);
    assert_true(id > 0);
    for (int i = 0; i < 3; i++)
        assert_true(wait_tick(&p));
    assert_int_equal(evloop_timer_cancel(inner, id), 0);
    evloop_stop(outer);
    assert_int_equal(evloop_del(outer, evloop_fd(inner)), 0);
    evloop_destroy(inner);
}

static void test_add_cancel_many_timers(void **state)
{
    struct evloop *loop = *state;
    start(loop);
    struct tick t, fence;
    tick_init(&t, loop, 0);
    tick_init(&fence, loop, 0);
    int ids[100];
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 100; i++) {
            ids[i] = evloop_timer_add(loop, (uint64_t)(i % 7 + 1) * MS, 0, tick_timer, &t);
            assert_true(ids[i] > 0);
        }
        for (int i = 99; i >= 0; i--)
            assert_int_equal(evloop_timer_cancel(loop, ids[i]), 0);
    }
    assert_true(evloop_timer_add(loop, 20 * MS, 0, tick_timer, &fence) > 0);
    assert_true(wait_tick(&fence));
    /* Some may have fired before their cancel; none after: the fence came last. */
    unsigned n = atomic_load(&t.calls);
    assert_true(evloop_timer_add(loop, 20 * MS, 0, tick_timer, &fence) > 0);
    assert_true(wait_tick(&fence));
    assert_int_equal(atomic_load(&t.calls), n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_timers_fire_in_deadline_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_equal_deadlines_fire_in_arming_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_timer_repeats_until_cancelled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel_from_other_thread_before_it_fires, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel_from_other_thread_waits_for_running_callback,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_from_handler_in_same_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_other_timer_from_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_cancels_itself_from_callback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rearm_and_disarm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_dispatch_once_per_batch_after_handlers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_post_dispatch_runs_on_loop_thread_and_can_be_removed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_loop_timers_run_on_outer_thread, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_add_cancel_many_timers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
