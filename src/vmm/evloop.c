/*
 * The event loop (see evloop.h). Handlers are kept in a small list and
 * reached through epoll's data pointer; an eventfd (stopfd) asks the loop
 * to return, another (wakefd) wakes it to free retired handlers or to
 * re-program its timerfd.
 *
 * Timers: one timerfd per loop and a min-heap of deadlines, not a timerfd
 * per timer. A timer then costs no fd (REST and the muxer keep timers
 * whose number follows their connections, and the VMM's fds are budgeted),
 * arming one is a heap operation, and only the loop's own thread programs
 * the timerfd (with the earliest deadline, before it waits): another
 * thread that moves the earliest deadline only writes wakefd, so the
 * classes of threads that arm timers of other loops need no timer calls,
 * and every callback goes through one place that can keep the cancel
 * guarantee (`running_timer` and `cond`).
 *
 * The thread outlives a stop: evloop_stop parks it (it waits on `cond`
 * until the next evloop_start_thread or evloop_destroy), so a device
 * rebuilt after a guest reboot runs on the same thread. That keeps thread
 * creation out of the reboot path, where the process is already confined
 * (vmm/sandbox.h: a thread inherits its creator's filter).
 */
#include "vmm/evloop.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

struct evloop_handler {
    int fd;
    evloop_cb cb;
    void *opaque;
    struct evloop_handler *next;
};

struct evloop_timer {
    int id;
    int idx;           /* place in the heap; -1: not armed */
    uint64_t deadline; /* CLOCK_MONOTONIC ns, while armed */
    uint64_t seq;      /* when it was armed: orders equal deadlines, one firing per batch */
    uint64_t period;   /* 0: once */
    evloop_timer_cb cb;
    void *opaque;
    bool dead; /* cancelled by its own callback: the loop frees it after the callback */
    struct evloop_timer *next;
};

struct evloop {
    int epfd;
    int stopfd;
    int wakefd;  /* wakes the loop: free retired handlers, re-program the timerfd */
    int timerfd; /* -1 until the first timer */
    pthread_mutex_t lock;
    struct evloop_handler *handlers;
    /*
     * Handlers removed while the loop may still hold a pointer from the
     * batch it is dispatching. The loop frees them before its next
     * epoll_wait, when no pointer of an earlier batch is left, and is woken
     * for that once RECLAIM_BATCH of them wait; a parked loop frees them at
     * once. So a device that removes and re-adds its fd on every stall
     * (virtio-net, the console) keeps its memory flat.
     */
    struct evloop_handler *retired;
    unsigned nretired;
    /* Timers, all under lock: every one in `timers`, the armed ones in the heap. */
    struct evloop_timer *timers;
    struct evloop_timer **heap;
    size_t nheap, heap_cap;
    int next_id;
    uint64_t next_seq;
    uint64_t armed_at;                  /* the timerfd's deadline; 0: not armed */
    struct evloop_timer *running_timer; /* its callback is running now */
    evloop_post_cb post_cb;
    void *post_opaque;
    bool post_running;
    /* The thread dispatching now (evloop_run, evloop_dispatch), when `dispatching`. */
    pthread_t owner;
    bool dispatching;
    pthread_t thread;
    bool has_thread;
    /* Guarded by lock; cond signals changes of them (and of the running callbacks above). */
    pthread_cond_t cond;
    bool run_requested; /* the thread runs handlers until a stop clears it */
    bool quit;          /* evloop_destroy: the thread ends */
    char name[16];
    enum sandbox_class cls; /* the I/O thread's seccomp allow list */
};

#define RECLAIM_BATCH 64
#define BATCH_EVENTS 32
/* epoll data of the wake eventfd and the timerfd (the stop eventfd's is NULL). */
static char wake_tag, timer_tag;

int evloop_create(struct evloop **out)
{
    struct evloop *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->timerfd = -1;
    l->next_id = 1;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &wake_tag};
    if (l->epfd < 0 || l->stopfd < 0 || l->wakefd < 0 ||
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->stopfd, &ev) < 0 ||
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &wev) < 0) {
        int err = -errno;
        if (l->epfd >= 0)
            close(l->epfd);
        if (l->stopfd >= 0)
            close(l->stopfd);
        if (l->wakefd >= 0)
            close(l->wakefd);
        free(l);
        return err;
    }
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
    *out = l;
    return 0;
}

static void free_list(struct evloop_handler *h)
{
    while (h) {
        struct evloop_handler *n = h->next;
        free(h);
        h = n;
    }
}

/* Under lock: free every timer but a running one, which its callback's end frees. */
static void drop_timers(struct evloop *l)
{
    for (struct evloop_timer *t = l->timers, *n; t; t = n) {
        n = t->next;
        if (t == l->running_timer)
            t->dead = true;
        else
            free(t);
    }
    l->timers = NULL;
    l->nheap = 0;
}

void evloop_destroy(struct evloop *l)
{
    if (!l)
        return;
    evloop_stop(l);
    if (l->has_thread) {
        pthread_mutex_lock(&l->lock);
        l->quit = true;
        pthread_cond_broadcast(&l->cond);
        pthread_mutex_unlock(&l->lock);
        pthread_join(l->thread, NULL);
        l->has_thread = false;
    }
    close(l->epfd);
    close(l->stopfd);
    close(l->wakefd);
    if (l->timerfd >= 0)
        close(l->timerfd);
    free_list(l->handlers);
    free_list(l->retired);
    drop_timers(l);
    free(l->heap);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static void wake(struct evloop *l)
{
    uint64_t one = 1;
    if (write(l->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_debug("evloop %s: cannot wake it: %m", l->name);
}

/* Under lock: the caller is the thread serving the loop now. */
static bool on_loop_thread(const struct evloop *l)
{
    return l->dispatching && pthread_equal(l->owner, pthread_self());
}

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_cb cb, void *opaque)
{
    struct evloop_handler *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->fd = fd;
    h->cb = cb;
    h->opaque = opaque;
    struct epoll_event ev = {.events = events, .data.ptr = h};
    pthread_mutex_lock(&l->lock);
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = -errno;
        pthread_mutex_unlock(&l->lock);
        free(h);
        return err;
    }
    h->next = l->handlers;
    l->handlers = h;
    pthread_mutex_unlock(&l->lock);
    return 0;
}

static struct evloop_handler *find_handler(struct evloop *l, int fd, struct evloop_handler ***link)
{
    for (struct evloop_handler **p = &l->handlers; *p; p = &(*p)->next) {
        if ((*p)->fd == fd) {
            if (link)
                *link = p;
            return *p;
        }
    }
    return NULL;
}

int evloop_mod(struct evloop *l, int fd, uint32_t events)
{
    pthread_mutex_lock(&l->lock);
    struct evloop_handler *h = find_handler(l, fd, NULL);
    int rc = -ENOENT;
    if (h) {
        struct epoll_event ev = {.events = events, .data.ptr = h};
        rc = epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
    }
    pthread_mutex_unlock(&l->lock);
    return rc;
}

int evloop_del(struct evloop *l, int fd)
{
    pthread_mutex_lock(&l->lock);
    struct evloop_handler **link;
    struct evloop_handler *h = find_handler(l, fd, &link);
    if (!h) {
        pthread_mutex_unlock(&l->lock);
        return -ENOENT;
    }
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    *link = h->next;
    /* The loop may have this handler in its current batch: mark it dead. */
    h->cb = NULL;
    h->next = l->retired;
    l->retired = h;
    if (++l->nretired == RECLAIM_BATCH)
        wake(l);
    pthread_mutex_unlock(&l->lock);
    return 0;
}

/* ---- timers: a binary min-heap on (deadline, seq), under lock ---- */

static bool timer_before(const struct evloop_timer *a, const struct evloop_timer *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_place(struct evloop *l, size_t i, struct evloop_timer *t)
{
    l->heap[i] = t;
    t->idx = (int)i;
}

static void sift_up(struct evloop *l, size_t i)
{
    struct evloop_timer *t = l->heap[i];
    while (i > 0 && timer_before(t, l->heap[(i - 1) / 2])) {
        heap_place(l, i, l->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_place(l, i, t);
}

static void sift_down(struct evloop *l, size_t i)
{
    struct evloop_timer *t = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->nheap)
            break;
        if (c + 1 < l->nheap && timer_before(l->heap[c + 1], l->heap[c]))
            c++;
        if (!timer_before(l->heap[c], t))
            break;
        heap_place(l, i, l->heap[c]);
        i = c;
    }
    heap_place(l, i, t);
}

static void heap_remove(struct evloop *l, struct evloop_timer *t)
{
    if (t->idx < 0)
        return;
    size_t i = (size_t)t->idx;
    t->idx = -1;
    struct evloop_timer *last = l->heap[--l->nheap];
    if (i == l->nheap)
        return;
    heap_place(l, i, last);
    sift_down(l, i);
    sift_up(l, (size_t)last->idx);
}

/* The heap has room for every timer (timer_add grows it), so this cannot fail. */
static void heap_insert(struct evloop *l, struct evloop_timer *t)
{
    heap_place(l, l->nheap++, t);
    sift_up(l, (size_t)t->idx);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Under lock: (re)arm t, or leave it disarmed; true when the loop must be woken. */
static bool arm(struct evloop *l, struct evloop_timer *t, uint64_t first_ns, uint64_t period_ns)
{
    heap_remove(l, t);
    t->period = period_ns;
    if (first_ns == EVLOOP_TIMER_OFF)
        return false;
    uint64_t now = now_ns();
    t->deadline = first_ns > UINT64_MAX - now ? UINT64_MAX : now + first_ns;
    t->seq = l->next_seq++;
    heap_insert(l, t);
    /* The loop's own thread programs the timerfd before it waits again. */
    return l->heap[0] == t && !on_loop_thread(l);
}

static struct evloop_timer *find_timer(struct evloop *l, int id, struct evloop_timer ***link)
{
    for (struct evloop_timer **p = &l->timers; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            if (link)
                *link = p;
            return *p;
        }
    }
    return NULL;
}

/* Under lock: the first timer makes the timerfd (so loops without timers never need one). */
static int ensure_timerfd(struct evloop *l)
{
    if (l->timerfd >= 0)
        return 0;
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &timer_tag};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    l->timerfd = fd;
    return 0;
}

int evloop_timer_add(struct evloop *l, uint64_t first_ns, uint64_t period_ns, evloop_timer_cb cb,
                     void *opaque)
{
    struct evloop_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->idx = -1;
    t->cb = cb;
    t->opaque = opaque;
    pthread_mutex_lock(&l->lock);
    int rc = ensure_timerfd(l);
    size_t ntimers = 1;
    for (const struct evloop_timer *o = l->timers; o; o = o->next)
        ntimers++;
    if (rc == 0 && ntimers > l->heap_cap) {
        size_t cap = l->heap_cap ? 2 * l->heap_cap : 8;
        struct evloop_timer **h = realloc(l->heap, cap * sizeof(*h));
        if (h) {
            l->heap = h;
            l->heap_cap = cap;
        } else {
            rc = -ENOMEM;
        }
    }
    if (rc) {
        pthread_mutex_unlock(&l->lock);
        free(t);
        return rc;
    }
    /* Ids are not reused while their timer lives, even after the counter wraps. */
    do {
        t->id = l->next_id;
        l->next_id = l->next_id == INT32_MAX ? 1 : l->next_id + 1;
    } while (find_timer(l, t->id, NULL));
    t->next = l->timers;
    l->timers = t;
    bool need_wake = arm(l, t, first_ns, period_ns);
    int id = t->id;
    pthread_mutex_unlock(&l->lock);
    if (need_wake)
        wake(l);
    return id;
}

int evloop_timer_set(struct evloop *l, int id, uint64_t first_ns, uint64_t period_ns)
{
    pthread_mutex_lock(&l->lock);
    struct evloop_timer *t = find_timer(l, id, NULL);
    bool need_wake = t && arm(l, t, first_ns, period_ns);
    pthread_mutex_unlock(&l->lock);
    if (need_wake)
        wake(l);
    return t ? 0 : -ENOENT;
}

int evloop_timer_cancel(struct evloop *l, int id)
{
    pthread_mutex_lock(&l->lock);
    struct evloop_timer **link;
    struct evloop_timer *t = find_timer(l, id, &link);
    if (!t) {
        pthread_mutex_unlock(&l->lock);
        return -ENOENT;
    }
    *link = t->next;
    heap_remove(l, t);
    /* A stale timerfd expiry is harmless: the loop finds nothing due and re-programs it. */
    if (t == l->running_timer && on_loop_thread(l)) {
        t->dead = true; /* cancelled from its own callback: freed when that returns */
    } else {
        while (t == l->running_timer)
            pthread_cond_wait(&l->cond, &l->lock);
        free(t);
    }
    pthread_mutex_unlock(&l->lock);
    return 0;
}

void evloop_set_post_dispatch(struct evloop *l, evloop_post_cb cb, void *opaque)
{
    pthread_mutex_lock(&l->lock);
    l->post_cb = cb;
    l->post_opaque = opaque;
    while (l->post_running && !on_loop_thread(l))
        pthread_cond_wait(&l->cond, &l->lock);
    pthread_mutex_unlock(&l->lock);
}

/* Under lock, on the loop's thread: the timerfd follows the earliest deadline. */
static void program_timerfd(struct evloop *l)
{
    uint64_t want = l->nheap ? l->heap[0]->deadline : 0;
    if (l->timerfd < 0 || want == l->armed_at)
        return;
    struct itimerspec it = {0};
    if (want) {
        it.it_value.tv_sec = (time_t)(want / 1000000000ull);
        it.it_value.tv_nsec = (long)(want % 1000000000ull);
    }
    if (timerfd_settime(l->timerfd, TFD_TIMER_ABSTIME, &it, NULL) < 0)
        log_error("evloop %s: timerfd_settime: %m", l->name);
    else
        l->armed_at = want;
}

/*
 * The timers due now, earliest first. Only timers armed before this pass
 * began (seq < limit) fire, so one re-armed with no delay by a callback
 * waits for the next batch.
 */
static bool run_timers(struct evloop *l)
{
    bool ran = false;
    pthread_mutex_lock(&l->lock);
    if (!l->nheap) {
        pthread_mutex_unlock(&l->lock);
        return false;
    }
    uint64_t now = now_ns(), limit = l->next_seq;
    while (l->nheap && l->heap[0]->deadline <= now && l->heap[0]->seq < limit) {
        struct evloop_timer *t = l->heap[0];
        heap_remove(l, t);
        if (t->period) {
            /* Late by more than a period: skip the missed ones, no burst. */
            uint64_t next = t->deadline + t->period;
            t->deadline = next > now ? next : now + t->period;
            t->seq = l->next_seq++;
            heap_insert(l, t);
        }
        l->running_timer = t;
        evloop_timer_cb cb = t->cb;
        void *opaque = t->opaque;
        pthread_mutex_unlock(&l->lock);
        cb(opaque);
        pthread_mutex_lock(&l->lock);
        l->running_timer = NULL;
        if (t->dead)
            free(t);
        pthread_cond_broadcast(&l->cond); /* a cancel from another thread may wait */
        ran = true;
    }
    pthread_mutex_unlock(&l->lock);
    return ran;
}

static void run_post_dispatch(struct evloop *l)
{
    pthread_mutex_lock(&l->lock);
    evloop_post_cb cb = l->post_cb;
    void *opaque = l->post_opaque;
    l->post_running = cb != NULL;
    pthread_mutex_unlock(&l->lock);
    if (!cb)
        return;
    cb(opaque);
    pthread_mutex_lock(&l->lock);
    l->post_running = false;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

/* Between batches: no pointer from an earlier epoll_wait is held. */
static void reclaim(struct evloop *l)
{
    pthread_mutex_lock(&l->lock);
    free_list(l->retired);
    l->retired = NULL;
    l->nretired = 0;
    program_timerfd(l);
    pthread_mutex_unlock(&l->lock);
}

/* One epoll_wait and what it made ready: 1 when a stop was asked, 0, or -errno. */
static int run_batch(struct evloop *l, int timeout_ms)
{
    struct epoll_event evs[BATCH_EVENTS];
    reclaim(l);
    int n = epoll_wait(l->epfd, evs, BATCH_EVENTS, timeout_ms);
    if (n < 0) {
        if (errno == EINTR)
            return 0;
        int err = -errno;
        log_error("evloop %s: epoll_wait: %m", l->name);
        return err;
    }
    bool ran = false, stop = false;
    for (int i = 0; i < n && !stop; i++) {
        struct evloop_handler *h = evs[i].data.ptr;
        uint64_t v;
        if (!h) {
            stop = read(l->stopfd, &v, sizeof(v)) == sizeof(v);
            continue;
        }
        if ((void *)h == &wake_tag) {
            if (read(l->wakefd, &v, sizeof(v)) < 0)
                log_debug("evloop %s: wake-up: %m", l->name);
            continue; /* the next pass frees handlers and programs the timerfd */
        }
        if ((void *)h == &timer_tag) {
            if (read(l->timerfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                log_debug("evloop %s: timerfd: %m", l->name);
            pthread_mutex_lock(&l->lock);
            l->armed_at = 0; /* expired: program it again for what is left */
            pthread_mutex_unlock(&l->lock);
            continue;
        }
        pthread_mutex_lock(&l->lock);
        evloop_cb cb = h->cb;
        void *opaque = h->opaque;
        pthread_mutex_unlock(&l->lock);
        if (cb) {
            cb(opaque, evs[i].events);
            ran = true;
        }
    }
    if (!stop && run_timers(l))
        ran = true;
    if (ran)
        run_post_dispatch(l);
    /* What this batch armed: a nested loop may not be dispatched again before it is due. */
    pthread_mutex_lock(&l->lock);
    program_timerfd(l);
    pthread_mutex_unlock(&l->lock);
    return stop ? 1 : 0;
}

static void set_dispatching(struct evloop *l, bool on)
{
    pthread_mutex_lock(&l->lock);
    l->owner = pthread_self();
    l->dispatching = on;
    pthread_mutex_unlock(&l->lock);
}

int evloop_run(struct evloop *l)
{
    set_dispatching(l, true);
    int rc;
    while ((rc = run_batch(l, -1)) == 0)
        ;
    set_dispatching(l, false);
    return rc < 0 ? rc : 0;
}

int evloop_dispatch(struct evloop *l)
{
    set_dispatching(l, true);
    int rc = run_batch(l, 0);
    set_dispatching(l, false);
    return rc < 0 ? rc : 0;
}

int evloop_fd(const struct evloop *l)
{
    return l->epfd;
}

static void *evloop_thread(void *arg)
{
    struct evloop *l = arg;
    /* Named here, not by the creator: naming another thread opens /proc, which filters forbid. */
    pthread_setname_np(pthread_self(), l->name);
    int confined = sandbox_thread_enter(l->cls);
    pthread_mutex_lock(&l->lock);
    for (;;) {
        while (confined == 0 && !l->run_requested && !l->quit)
            pthread_cond_wait(&l->cond, &l->lock);
        if (confined < 0 || l->quit)
            break; /* a failed confinement is logged; a stop then finds the loop parked */
        pthread_mutex_unlock(&l->lock);
        evloop_run(l);
        pthread_mutex_lock(&l->lock);
        /* Parked: nothing of a handler runs until the next start. */
        l->run_requested = false;
        pthread_cond_broadcast(&l->cond);
    }
    l->run_requested = false;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

int evloop_start_thread(struct evloop *l, const char *name, enum sandbox_class cls)
{
    if (!l->has_thread) {
        /* The class is the device's: the same slot holds the same kind of device every boot. */
        snprintf(l->name, sizeof(l->name), "%s", name);
        l->cls = cls;
        int rc = pthread_create(&l->thread, NULL, evloop_thread, l);
        if (rc)
            return -rc;
        l->has_thread = true;
    }
    pthread_mutex_lock(&l->lock);
    l->run_requested = true;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
    return 0;
}

void evloop_stop(struct evloop *l)
{
    if (!l->has_thread) {
        /* evloop_run on the caller's own thread (tests): just make it return. */
        uint64_t one = 1;
        if (write(l->stopfd, &one, sizeof(one)) < 0)
            log_error("evloop %s: cannot signal stop: %m", l->name);
        return;
    }
    pthread_mutex_lock(&l->lock);
    if (l->run_requested) {
        uint64_t one = 1;
        if (write(l->stopfd, &one, sizeof(one)) < 0)
            log_error("evloop %s: cannot signal stop: %m", l->name);
        /*
         * A handler stopping its own loop cannot wait for itself: the loop
         * returns after this handler, and a stop from another thread waits
         * until it has.
         */
        while (l->run_requested && !pthread_equal(pthread_self(), l->thread))
            pthread_cond_wait(&l->cond, &l->lock);
    }
    if (!l->run_requested) {
        /* Parked: no handler runs, so retired handlers cannot be in use. */
        free_list(l->retired);
        l->retired = NULL;
        l->nretired = 0;
    }
    pthread_mutex_unlock(&l->lock);
}

void evloop_clear(struct evloop *l)
{
    pthread_mutex_lock(&l->lock);
    for (struct evloop_handler *h = l->handlers; h; h = h->next)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, h->fd, NULL);
    free_list(l->handlers);
    l->handlers = NULL;
    if (!l->run_requested) {
        free_list(l->retired);
        l->retired = NULL;
        l->nretired = 0;
    }
    drop_timers(l);
    l->post_cb = NULL;
    l->post_opaque = NULL;
    pthread_mutex_unlock(&l->lock);
}
