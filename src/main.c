/*
 * krunkit entry point: parse -> validate -> log -> vmm_create -> REST ->
 * pidfile -> sandbox (seccomp) -> vmm_run -> teardown (ARCHITECTURE.md "What the program is",
 * CLIENTS.md "Files").
 *
 * A run that fails before the VM starts leaves nothing behind: validation
 * creates nothing, and whatever startup created (pidfile, a new log file,
 * the REST socket) is removed again. SIGINT/SIGTERM go to a signal thread
 * (signalfd): the first asks the VM to stop, the second hard-stops it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "cli/args.h"
#include "core/config.h"
#include "core/log.h"
#include "cli/pidfile.h"
#include "cli/rest.h"
#include "cli/vm_control.h"
#include "vmm/evloop.h"
#include "vmm/sandbox.h"
#include "vmm/vmm.h"

struct sig_thread {
    struct evloop *loop; /* its thread waits on the signalfd */
    int sfd;             /* signalfd for SIGINT, SIGTERM */
    pthread_mutex_t lock;
    const struct vm_control *ctl; /* NULL until the VMM exists */
    unsigned count;               /* signals received so far */
};

static void sig_ready(void *opaque, uint32_t events)
{
    struct sig_thread *st = opaque;
    struct signalfd_siginfo si;
    (void)events;
    if (read(st->sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        return;
    pthread_mutex_lock(&st->lock);
    unsigned n = ++st->count;
    const struct vm_control *ctl = st->ctl;
    pthread_mutex_unlock(&st->lock);
    const char *sig = si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
    if (!ctl) {
        log_info("%s before the VM started: not starting it", sig);
        return;
    }
    enum vm_request req = n == 1 ? VM_REQ_STOP : VM_REQ_HARD_STOP;
    log_info("%s: requesting %s", sig, n == 1 ? "a graceful stop" : "a hard stop");
    int r = ctl->request(ctl->opaque, req);
    if (r < 0)
        log_warn("%s: the VM refused the %s request: %s", sig, n == 1 ? "stop" : "hard stop",
                 strerror(-r));
}

/*
 * Blocks SIGINT/SIGTERM in this thread before any other thread exists, so
 * every thread inherits the mask and only the signalfd sees them. The
 * signalfd is the one handler of an event loop on a thread of its own
 * (class signal: it only waits and reads).
 */
static int sig_thread_start(struct sig_thread *st)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int r = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (r)
        return -r;
    st->ctl = NULL;
    st->count = 0;
    st->loop = NULL;
    st->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (st->sfd < 0)
        return -errno;
    pthread_mutex_init(&st->lock, NULL);
    r = evloop_create(&st->loop);
    if (r == 0)
        r = evloop_add(st->loop, st->sfd, EPOLLIN, sig_ready, st);
    if (r == 0)
        r = evloop_start_thread(st->loop, "signal", SANDBOX_SIGNAL);
    if (r) {
        evloop_destroy(st->loop);
        close(st->sfd);
        pthread_mutex_destroy(&st->lock);
        return r;
    }
    return 0;
}

/* Returns how many signals arrived before the VM was handed over. */
static unsigned sig_thread_attach(struct sig_thread *st, const struct vm_control *ctl)
{
    pthread_mutex_lock(&st->lock);
    st->ctl = ctl;
    unsigned n = st->count;
    pthread_mutex_unlock(&st->lock);
    return n;
}

static void sig_thread_stop(struct sig_thread *st)
{
    evloop_destroy(st->loop); /* waits for a request in progress, ends the thread */
    close(st->sfd);
    pthread_mutex_destroy(&st->lock);
}

/*
 * Our own log file; remembered so a failed start can take it back. It is
 * never opened through a symbolic link (O_NOFOLLOW: a link planted at the
 * path would otherwise aim our writes anywhere), is created 0600 (it may
 * quote paths and OEM strings), and is created with O_EXCL so "this run
 * made it" is known, not guessed from an earlier stat.
 */
struct log_file {
    int fd;
    bool created;
    dev_t dev;
    ino_t ino;
};

static int log_file_open(const char *path, struct log_file *lf)
{
    /* O_RDWR: log_file_discard reads it back. */
    const int flags = O_RDWR | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW;
    struct stat st;

    lf->created = false;
    /* Create it, or else append to the one there; the loop covers it being
     * removed or made between the two opens. */
    for (int tries = 0; tries < 8; tries++) {
        lf->fd = open(path, flags | O_CREAT | O_EXCL, 0600);
        if (lf->fd >= 0) {
            lf->created = true;
            break;
        }
        if (errno != EEXIST)
            return -errno;
        lf->fd = open(path, flags);
        if (lf->fd >= 0 || errno != ENOENT)
            break;
    }
    if (lf->fd < 0)
        return -errno;
    if (fstat(lf->fd, &st) < 0) {
        int e = errno;
        close(lf->fd);
        lf->fd = -1;
        if (lf->created)
            unlink(path);
        return -e;
    }
    lf->dev = st.st_dev;
    lf->ino = st.st_ino;
    return 0;
}

/*
 * The start failed: a log file this run created must go, but its messages
 * explain the failure, so they are copied to stderr first. It is removed
 * only while the path still names that file (not one put there since).
 */
static void log_file_discard(const char *path, struct log_file *lf)
{
    if (lf->fd < 0)
        return;
    if (lf->created) {
        char buf[4096];
        off_t off = 0;
        ssize_t n;
        struct stat st;
        while ((n = pread(lf->fd, buf, sizeof(buf), off)) > 0) {
            if (write(STDERR_FILENO, buf, (size_t)n) != n)
                break;
            off += n;
        }
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_dev == lf->dev &&
            st.st_ino == lf->ino)
            unlink(path);
    }
    log_init(log_level(), -1);
    close(lf->fd);
    lf->fd = -1;
}

static int print_config(const struct vm_config *cfg)
{
    char *json = vm_config_to_json(cfg);
    if (!json) {
        fprintf(stderr, "krunkit: --print-config: out of memory\n");
        return 1;
    }
    int r = printf("%s\n", json) < 0 || fflush(stdout) != 0;
    free(json);
    if (r)
        fprintf(stderr, "krunkit: --print-config: cannot write to stdout: %s\n", strerror(errno));
    return r ? 1 : 0;
}

/* Everything from the log file to the end of the VM; cfg is valid. */
static int run_vm(const struct vm_config *cfg)
{
    struct log_file lf = {.fd = -1, .created = false};
    struct sig_thread sigs;
    struct vmm *vmm = NULL;
    struct rest_server *rest = NULL;
    struct vm_control ctl;
    char *inspect = NULL;
    char why[600]; /* the one-line reason printed when the start fails */
    bool pidfile_written = false;
    int r, status = 1;

    if (cfg->log_file) {
        r = log_file_open(cfg->log_file, &lf);
        if (r < 0) {
            fprintf(stderr, "krunkit: --log-file \"%s\": %s\n", cfg->log_file, strerror(-r));
            return 1;
        }
    }
    log_init(cfg->log_level, lf.fd);

    /* A peer closing a socket (REST client, network backend) is an error to handle, not death. */
    signal(SIGPIPE, SIG_IGN);
    /* Before the first thread: filters and SIGSYS handler exist before anyone needs them. */
    r = sandbox_init(lf.fd);
    if (r < 0) {
        fprintf(stderr, "krunkit: cannot prepare the seccomp sandbox: %s\n", strerror(-r));
        log_file_discard(cfg->log_file, &lf);
        return 1;
    }
    r = sig_thread_start(&sigs);
    if (r < 0) {
        log_error("cannot set up signal handling: %s", strerror(-r));
        fprintf(stderr, "krunkit: cannot set up signal handling: %s\n", strerror(-r));
        log_file_discard(cfg->log_file, &lf);
        return 1;
    }

    r = vmm_create(cfg, &vmm);
    if (r < 0) {
        snprintf(why, sizeof(why), "cannot create the VM: %s", strerror(-r));
        goto fail;
    }
    ctl = vmm_control(vmm);

    inspect = vm_config_to_json(cfg);
    if (!inspect) {
        r = -ENOMEM;
        snprintf(why, sizeof(why), "out of memory");
        goto fail;
    }
    r = rest_start(&cfg->rest, &ctl, inspect, &rest);
    if (r < 0) {
        snprintf(why, sizeof(why), "--restful-uri \"%s\": cannot start the REST service: %s",
                 cfg->rest.uri, strerror(-r));
        goto fail;
    }

    if (cfg->pidfile) {
        r = pidfile_write(cfg->pidfile, getpid());
        if (r < 0) {
            log_error("--pidfile \"%s\": %s", cfg->pidfile, strerror(-r));
            snprintf(why, sizeof(why), "--pidfile \"%s\": %s", cfg->pidfile, strerror(-r));
            goto fail;
        }
        pidfile_written = true;
    }

    if (sig_thread_attach(&sigs, &ctl) > 0) {
        log_info("interrupted before the VM started");
        snprintf(why, sizeof(why), "interrupted before the VM started");
        goto fail;
    }

    r = sandbox_enter_control();
    if (r < 0) {
        snprintf(why, sizeof(why), "cannot confine the VMM (seccomp): %s", strerror(-r));
        goto fail;
    }

    status = vmm_run(vmm);
    log_info("VM finished with status %d", status);

    /* Stop taking requests before the VM's state goes away. */
    rest_stop(rest);
    if (pidfile_written && (r = pidfile_remove(cfg->pidfile)) < 0)
        log_warn("--pidfile \"%s\": cannot remove it: %s", cfg->pidfile, strerror(-r));
    sig_thread_stop(&sigs);
    vmm_destroy(vmm);
    free(inspect);
    if (lf.fd >= 0) {
        log_init(log_level(), -1);
        close(lf.fd);
    }
    return status;

fail:
    rest_stop(rest);
    if (pidfile_written)
        pidfile_remove(cfg->pidfile);
    sig_thread_stop(&sigs);
    if (vmm)
        vmm_destroy(vmm);
    free(inspect);
    log_file_discard(cfg->log_file, &lf);
    fprintf(stderr, "krunkit: %s\n", why);
    return 1;
}

int main(int argc, char **argv)
{
    struct vm_config cfg;
    enum cli_action action;
    char err[512];

    if (cli_parse(argc, argv, &cfg, &action, err, sizeof(err)) < 0) {
        fprintf(stderr, "krunkit: %s\n", err);
        return 1;
    }
    int status;
    switch (action) {
    case CLI_HELP:
        fputs(cli_usage(), stdout);
        return fflush(stdout) ? 1 : 0;
    case CLI_VERSION:
        printf("krunkit %s\n", KRUNKIT_VERSION);
        return fflush(stdout) ? 1 : 0;
    case CLI_PRINT_CONFIG:
        status = print_config(&cfg);
        vm_config_free(&cfg);
        return status;
    case CLI_RUN:
        break;
    }
    if (cli_validate(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "krunkit: %s\n", err);
        vm_config_free(&cfg);
        return 1;
    }
    status = run_vm(&cfg);
    vm_config_free(&cfg);
    return status;
}
