/*
 * virtio-console (virtio 1.2, section 5.3) with a single port, which a
 * Linux guest sees as hvc0: receiveq (0) carries host input to the guest,
 * transmitq (1) guest output to the host. No MULTIPORT; EMERG_WRITE
 * (5.3.4) is offered so early guest output can go through the config space.
 *
 * Backends (virtio-serial on the command line):
 *   logFilePath  output appended to a file (O_APPEND); no input.
 *   stdio        output to stdout, input from stdin; a terminal is put in
 *                raw mode and restored at exit, on device destroy and on
 *                fatal signals.
 *   pty          a new pseudo-terminal whose path is logged; we keep its
 *                slave open so the master never reports a hang-up while
 *                nobody is attached, and drop output that would block.
 * Input is read only when the guest has posted receive buffers; otherwise
 * the input fd leaves the event loop until the guest kicks receiveq.
 *
 * The host side (struct console_host) is opened once when the VM is made
 * and outlives guest reboots, which rebuild only the device: a reboot never
 * reopens the log file by path (a guest that can write the log's directory,
 * through a share, could have put a symlink there meanwhile). COM1 writes
 * through the same host side. A log file is created 0600, never through a
 * symlink, and stops growing at logFileMaxSize (a guest can print forever;
 * the host's disk is not its to fill): past it the output is dropped and
 * the log says so once.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/virtio_console.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#include "core/log.h"
#include "virtio/devices.h"
#include "virtio/virtio.h"

#define CONSOLE_QUEUE_SIZE 128
#define RX_QUEUE 0
#define TX_QUEUE 1
/* Config (5.3.4): cols, rows, max_nr_ports, emerg_wr. */
#define CFG_MAX_NR_PORTS offsetof(struct virtio_console_config, max_nr_ports)
#define CFG_EMERG_WR offsetof(struct virtio_console_config, emerg_wr)
#define CFG_LEN sizeof(struct virtio_console_config)

struct console_host {
    enum serial_mode mode;
    int out_fd, in_fd; /* -1 when absent */
    bool own_out_fd;   /* close at the end (not stdout) */
    int pty_slave;     /* kept open, see the header comment */
    char *pty_path;
    /* A log file this run created (removed if the start fails). */
    bool created;
    char *log_path;
    /* Output comes from COM1 (a vCPU thread) and the device's I/O thread. */
    pthread_mutex_t lock;
    uint64_t max_bytes; /* 0: no cap */
    uint64_t size;      /* the log file's size as we wrote it */
    bool capped;        /* the cap was reached and logged */
};

struct virtio_console {
    struct virtio_dev vdev;
    struct console_host *host; /* borrowed: the VM keeps it across reboots */
    int in_fd;                 /* host->in_fd until input ends, then -1 */
    bool in_watched;           /* in_fd is in the event loop */
};

/* ---- terminal mode for stdio ---- */

static struct termios saved_termios;
static volatile sig_atomic_t termios_saved;
static int termios_fd = -1;

static void restore_terminal(void)
{
    if (termios_saved) {
        tcsetattr(termios_fd, TCSANOW, &saved_termios);
        termios_saved = 0;
    }
}

static void restore_terminal_on_signal(int sig)
{
    restore_terminal();
    /* SA_RESETHAND put the default action back: deliver it. */
    raise(sig);
}

static void install_restore_handlers(void)
{
    static bool installed;
    if (installed)
        return;
    installed = true;
    atexit(restore_terminal);
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
        struct sigaction old;
        if (sigaction(fatal[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
            !(old.sa_flags & SA_SIGINFO)) {
            struct sigaction sa = {.sa_handler = restore_terminal_on_signal,
                                   .sa_flags = (int)SA_RESETHAND};
            sigemptyset(&sa.sa_mask);
            sigaction(fatal[i], &sa, NULL);
        }
    }
}

static int terminal_raw(int fd)
{
    struct termios t;
    if (!isatty(fd) || tcgetattr(fd, &t) < 0)
        return 0; /* not a terminal: nothing to change */
    if (!termios_saved) {
        saved_termios = t;
        termios_fd = fd;
        termios_saved = 1;
        install_restore_handlers();
    }
    /* Keys go to the guest (Ctrl-C included); the guest's tty does the echo. */
    cfmakeraw(&t);
    if (tcsetattr(fd, TCSANOW, &t) < 0)
        return -errno;
    return 0;
}

/* ---- data path ---- */

static struct virtio_console *to_console(struct virtio_dev *dev)
{
    return (struct virtio_console *)dev;
}

void console_host_write(struct console_host *h, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    pthread_mutex_lock(&h->lock);
    if (h->max_bytes) {
        uint64_t room = h->size < h->max_bytes ? h->max_bytes - h->size : 0;
        if (len > room) {
            len = (size_t)room;
            if (!h->capped)
                log_warn("virtio-serial logFilePath %s: reached logFileMaxSize=%llu bytes; "
                         "further guest console output is dropped",
                         h->log_path, (unsigned long long)h->max_bytes);
            h->capped = true;
        }
    }
    while (len && h->out_fd >= 0) {
        ssize_t n = write(h->out_fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                log_debug("virtio-console: output: %m");
            break; /* nobody reading a pty: the output is dropped */
        }
        p += n;
        len -= (size_t)n;
        h->size += (uint64_t)n;
    }
    pthread_mutex_unlock(&h->lock);
}

static void write_out(struct virtio_console *c, const void *buf, size_t len)
{
    console_host_write(c->host, buf, len);
}

static enum virtio_chain tx_chain(struct virtio_dev *dev, struct virtq *vq, struct virtq_elem *e,
                                  void *opaque)
{
    (void)opaque;
    for (unsigned i = 0; i < e->nr_out; i++)
        write_out(to_console(dev), e->iov[i].iov_base, e->iov[i].iov_len);
    virtq_push(vq, e->head, 0);
    free(e);
    return VIRTIO_CHAIN_DONE;
}

static void tx_drain(struct virtio_console *c)
{
    virtio_queue_drain(&c->vdev, TX_QUEUE, tx_chain, NULL);
}

static void input_ready(struct virtio_dev *dev, int fd, uint32_t events);

static void watch_input(struct virtio_console *c, bool on)
{
    if (c->in_fd < 0 || on == c->in_watched)
        return;
    int rc = on ? virtio_dev_add_fd(&c->vdev, c->in_fd, EPOLLIN, input_ready)
                : virtio_dev_del_fd(&c->vdev, c->in_fd);
    if (on && rc) {
        /* Regular files and /dev/null cannot be polled: no input then. */
        log_debug("virtio-console: input not watched: %s", strerror(-rc));
        c->in_fd = -1;
        return;
    }
    c->in_watched = on;
}

static void input_ready(struct virtio_dev *dev, int fd, uint32_t events)
{
    struct virtio_console *c = to_console(dev);
    struct virtq *vq = virtio_vq(dev, RX_QUEUE);
    (void)events;
    if (!virtio_running(dev) || !dev->queues[RX_QUEUE].enabled) {
        watch_input(c, false);
        return;
    }
    struct virtq_elem *e;
    int rc = virtq_pop(vq, &e);
    if (rc < 0) {
        watch_input(c, false); /* broken queue: the device waits for a reset */
        return;
    }
    if (rc == 0) {
        /*
         * No receive buffer: ask for a kick when the guest posts one (this
         * also moves avail_event under EVENT_IDX) and stop reading until then.
         */
        if (!virtq_enable_notify(vq))
            watch_input(c, false);
        return;
    }
    if (e->nr_in == 0) {
        /*
         * A receive buffer the device may not write: complete it empty.
         * Taking it for end of input would stop the console's input for good.
         */
        virtq_push(vq, e->head, 0);
        free(e);
        virtio_queue_flush(dev, RX_QUEUE);
        return;
    }
    ssize_t n = readv(fd, e->iov + e->nr_out, (int)e->nr_in);
    if (n <= 0) {
        virtq_unpop(vq);
        free(e);
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            /* End of input (stdin closed): stop listening for good. */
            watch_input(c, false);
            c->in_fd = -1;
        }
        return;
    }
    virtq_push(vq, e->head, (uint32_t)n);
    free(e);
    virtio_queue_flush(dev, RX_QUEUE);
}

static void console_queue_notify(struct virtio_dev *dev, unsigned q)
{
    struct virtio_console *c = to_console(dev);
    if (q == TX_QUEUE)
        tx_drain(c);
    else if (q == RX_QUEUE)
        watch_input(c, true); /* new receive buffers: input may flow again */
}

static void console_config_read(struct virtio_dev *dev, unsigned off, void *data, unsigned len)
{
    uint8_t cfg[CFG_LEN] = {0};
    uint32_t ports = 1;
    (void)dev;
    memcpy(cfg + CFG_MAX_NR_PORTS, &ports, 4);
    if (off + len <= sizeof(cfg))
        memcpy(data, cfg + off, len);
}

static void console_config_write(struct virtio_dev *dev, unsigned off, const void *data,
                                 unsigned len)
{
    /* emerg_wr: one character, usable before the queues are set up (5.3.6.1). */
    if (off == CFG_EMERG_WR && virtio_has_feature(dev, VIRTIO_CONSOLE_F_EMERG_WRITE))
        write_out(to_console(dev), data, 1);
    (void)len;
}

static int console_reset(struct virtio_dev *dev)
{
    watch_input(to_console(dev), false);
    return 0;
}

static uint64_t console_features(struct virtio_dev *dev)
{
    (void)dev;
    return 1ull << VIRTIO_CONSOLE_F_EMERG_WRITE;
}

static void console_destroy(struct virtio_dev *dev)
{
    free(to_console(dev));
}

static const struct virtio_dev_ops console_ops = {
    .name = "virtio-console",
    .device_id = VIRTIO_ID_CONSOLE,
    .sandbox = SANDBOX_IO_CONSOLE,
    .config_len = CFG_LEN,
    .nqueues = 2,
    .queue_size = CONSOLE_QUEUE_SIZE,
    .features = console_features,
    .queue_notify = console_queue_notify,
    .config_read = console_config_read,
    .config_write = console_config_write,
    .reset = console_reset,
    .destroy = console_destroy,
};

/* ---- the host side, opened once ---- */

static int open_pty(struct console_host *h)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0)
        return -errno;
    char *name = NULL;
    if (grantpt(m) < 0 || unlockpt(m) < 0 || !(name = ptsname(m))) {
        int err = -errno;
        close(m);
        return err;
    }
    h->pty_path = strdup(name);
    h->pty_slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (!h->pty_path || h->pty_slave < 0) {
        int err = h->pty_path ? -errno : -ENOMEM;
        close(m);
        return err;
    }
    struct termios t;
    if (tcgetattr(h->pty_slave, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(h->pty_slave, TCSANOW, &t);
    }
    fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
    h->out_fd = h->in_fd = m;
    h->own_out_fd = true;
    return 0;
}

/*
 * The log file: created 0600 if missing (O_EXCL tells whether this run made
 * it), appended to otherwise; never through a symlink (O_NOFOLLOW), never
 * blocking on a FIFO with no reader (O_NONBLOCK at open).
 */
static int open_log(struct console_host *h, const char *path)
{
    const int flags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK;
    int fd = open(path, flags | O_CREAT | O_EXCL, 0600);
    if (fd >= 0)
        h->created = true;
    else if (errno == EEXIST)
        fd = open(path, flags);
    if (fd < 0) {
        int err = -errno;
        log_error("virtio-serial logFilePath %s: %s", path,
                  errno == ELOOP ? "is a symbolic link (refused: krunkit never writes through one)"
                                 : strerror(errno));
        return err;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        h->size = (uint64_t)st.st_size;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    }
    h->out_fd = fd;
    h->own_out_fd = true;
    h->log_path = strdup(path);
    return h->log_path ? 0 : -ENOMEM;
}

int console_host_open(const struct dev_serial *cfg, struct console_host **out)
{
    struct console_host *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->mode = cfg->mode;
    h->out_fd = h->in_fd = h->pty_slave = -1;
    pthread_mutex_init(&h->lock, NULL);
    int rc = -EINVAL;
    switch (cfg->mode) {
    case SERIAL_LOGFILE:
        h->max_bytes = cfg->log_max_bytes;
        rc = cfg->log_file_path ? open_log(h, cfg->log_file_path) : -EINVAL;
        break;
    case SERIAL_STDIO:
        h->out_fd = STDOUT_FILENO;
        h->in_fd = STDIN_FILENO;
        rc = terminal_raw(STDIN_FILENO);
        if (rc)
            log_warn("virtio-serial: cannot put the terminal in raw mode: %s", strerror(-rc));
        rc = 0;
        break;
    case SERIAL_PTY:
        rc = open_pty(h);
        if (rc)
            log_error("virtio-serial: cannot create a pty: %s", strerror(-rc));
        else
            log_info("virtio-serial: guest console on pty %s", h->pty_path);
        break;
    }
    if (rc) {
        console_host_close(h, true);
        return rc;
    }
    *out = h;
    return 0;
}

void console_host_close(struct console_host *h, bool failed_start)
{
    if (!h)
        return;
    if (h->mode == SERIAL_STDIO)
        restore_terminal();
    /*
     * A failed start leaves nothing it created; the name is removed only
     * while it still is the file we made (not whatever was put there since).
     */
    struct stat mine, now;
    if (failed_start && h->created && h->out_fd >= 0 && fstat(h->out_fd, &mine) == 0 &&
        lstat(h->log_path, &now) == 0 && mine.st_dev == now.st_dev && mine.st_ino == now.st_ino)
        unlink(h->log_path);
    if (h->own_out_fd && h->out_fd >= 0)
        close(h->out_fd);
    if (h->mode == SERIAL_PTY && h->in_fd >= 0 && h->in_fd != h->out_fd)
        close(h->in_fd);
    if (h->pty_slave >= 0)
        close(h->pty_slave);
    free(h->pty_path);
    free(h->log_path);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

const char *console_host_pty_path(const struct console_host *h)
{
    return h ? h->pty_path : NULL;
}

int virtio_console_create(struct machine *m, struct console_host *host, struct virtio_dev **out)
{
    struct virtio_console *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->host = host;
    c->in_fd = host->in_fd;
    struct virtio_dev *dev = &c->vdev;
    int rc = virtio_dev_init(dev, m, &console_ops);
    if (rc == 0)
        rc = virtio_dev_start(dev);
    if (rc) {
        log_error("virtio-console: cannot create: %s", strerror(-rc));
        virtio_dev_destroy(dev);
        return rc;
    }
    *out = dev;
    return 0;
}
