/*
 * epoll event loop for I/O threads (see evloop.h). Handlers are kept in a
 * small table indexed through epoll's data pointer; an eventfd wakes the
 * loop for stop requests.
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
#include <unistd.h>

#include "core/log.h"

struct evloop_handler {
    int fd;
    evloop_cb cb;
    void *opaque;
    struct evloop_handler *next;
};

struct evloop {
    int epfd;
    int stopfd;
    int reclaimfd; /* wakes the loop to free retired handlers */
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
    pthread_t thread;
    bool has_thread;
    /* Guarded by lock; cond signals changes of them. */
    pthread_cond_t cond;
    bool run_requested; /* the thread runs handlers until a stop clears it */
    bool quit;          /* evloop_destroy: the thread ends */
    char name[16];
    enum sandbox_class cls; /* the I/O thread's seccomp allow list */
};

#define RECLAIM_BATCH 64
/* epoll data of the reclaim eventfd (the stop eventfd's is NULL). */
static char reclaim_tag;

int evloop_create(struct evloop **out)
{
    struct evloop *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    l->reclaimfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    struct epoll_event rev = {.events = EPOLLIN, .data.ptr = &reclaim_tag};
    if (l->epfd < 0 || l->stopfd < 0 || l->reclaimfd < 0 ||
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->stopfd, &ev) < 0 ||
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->reclaimfd, &rev) < 0) {
        int err = -errno;
        if (l->epfd >= 0)
            close(l->epfd);
        if (l->stopfd >= 0)
            close(l->stopfd);
        if (l->reclaimfd >= 0)
            close(l->reclaimfd);
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
    close(l->reclaimfd);
    free_list(l->handlers);
    free_list(l->retired);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->lock);
    free(l);
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
    uint64_t one = 1;
    if (++l->nretired == RECLAIM_BATCH && write(l->reclaimfd, &one, sizeof(one)) < 0)
        log_debug("evloop %s: cannot wake it to free handlers: %m", l->name);
    pthread_mutex_unlock(&l->lock);
    return 0;
}

/* Between batches: no pointer from an earlier epoll_wait is held. */
static void reclaim(struct evloop *l)
{
    pthread_mutex_lock(&l->lock);
    free_list(l->retired);
    l->retired = NULL;
    l->nretired = 0;
    pthread_mutex_unlock(&l->lock);
}

int evloop_run(struct evloop *l)
{
    struct epoll_event evs[32];
    for (;;) {
        reclaim(l);
        int n = epoll_wait(l->epfd, evs, 32, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int err = -errno;
            log_error("evloop %s: epoll_wait: %m", l->name);
            return err;
        }
        for (int i = 0; i < n; i++) {
            struct evloop_handler *h = evs[i].data.ptr;
            if (!h) {
                uint64_t v;
                if (read(l->stopfd, &v, sizeof(v)) == sizeof(v))
                    return 0;
                continue;
            }
            if ((void *)h == &reclaim_tag) {
                uint64_t v;
                if (read(l->reclaimfd, &v, sizeof(v)) < 0)
                    log_debug("evloop %s: reclaim wake-up: %m", l->name);
                continue; /* the next pass frees them */
            }
            pthread_mutex_lock(&l->lock);
            evloop_cb cb = h->cb;
            void *opaque = h->opaque;
            pthread_mutex_unlock(&l->lock);
            if (cb)
                cb(opaque, evs[i].events);
        }
    }
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
    pthread_mutex_unlock(&l->lock);
}
