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
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#include "cli/log.h"
#include "virtio/devices.h"
#include "virtio/pci.h"

#define VIRTIO_CONSOLE_F_EMERG_WRITE 2
#define CONSOLE_QUEUE_SIZE 128
#define RX_QUEUE 0
#define TX_QUEUE 1
/* Config (5.3.4): cols, rows, max_nr_ports, emerg_wr. */
#define CFG_MAX_NR_PORTS 4
#define CFG_EMERG_WR 8
#define CFG_LEN 12

struct virtio_console {
    struct virtio_dev vdev;
    enum serial_mode mode;
    int out_fd, in_fd; /* -1 when absent */
    bool own_out_fd;   /* close on destroy (not stdout) */
    bool in_watched;   /* in_fd is in the event loop */
    int pty_slave;     /* kept open, see the header comment */
    char *pty_path;
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

static void write_out(struct virtio_console *c, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len && c->out_fd >= 0) {
        ssize_t n = write(c->out_fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                log_debug("virtio-console: output: %m");
            return; /* nobody reading a pty: the output is dropped */
        }
        p += n;
        len -= (size_t)n;
    }
}

static void tx_drain(struct virtio_console *c)
{
    struct virtio_dev *dev = &c->vdev;
    struct virtq *vq = virtio_vq(dev, TX_QUEUE);
    for (;;) {
        struct virtq_elem *e;
        int rc;
        virtq_disable_notify(vq);
        while ((rc = virtq_pop(vq, &e)) > 0) {
            for (unsigned i = 0; i < e->nr_out; i++)
                write_out(c, e->iov[i].iov_base, e->iov[i].iov_len);
            virtq_push(vq, e->head, 0);
            free(e);
        }
        if (rc < 0 || !virtq_enable_notify(vq))
            break;
    }
    virtio_queue_flush(dev, TX_QUEUE);
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

static void console_reset(struct virtio_dev *dev)
{
    watch_input(to_console(dev), false);
}

static void console_destroy(struct virtio_dev *dev)
{
    struct virtio_console *c = to_console(dev);
    if (c->mode == SERIAL_STDIO)
        restore_terminal();
    if (c->own_out_fd && c->out_fd >= 0)
        close(c->out_fd);
    if (c->mode == SERIAL_PTY && c->in_fd >= 0 && c->in_fd != c->out_fd)
        close(c->in_fd);
    if (c->pty_slave >= 0)
        close(c->pty_slave);
    free(c->pty_path);
    free(c);
}

static const struct virtio_dev_ops console_ops = {
    .queue_notify = console_queue_notify,
    .config_read = console_config_read,
    .config_write = console_config_write,
    .reset = console_reset,
    .destroy = console_destroy,
};

static int open_pty(struct virtio_console *c)
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
    c->pty_path = strdup(name);
    c->pty_slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (!c->pty_path || c->pty_slave < 0) {
        int err = c->pty_path ? -errno : -ENOMEM;
        close(m);
        return err;
    }
    struct termios t;
    if (tcgetattr(c->pty_slave, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(c->pty_slave, TCSANOW, &t);
    }
    fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
    c->out_fd = c->in_fd = m;
    c->own_out_fd = true;
    return 0;
}

static int open_backend(struct virtio_console *c, const struct dev_serial *cfg)
{
    switch (cfg->mode) {
    case SERIAL_LOGFILE:
        if (!cfg->log_file_path)
            return -EINVAL;
        c->out_fd = open(cfg->log_file_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (c->out_fd < 0) {
            int err = -errno;
            log_error("virtio-serial: cannot open log file %s: %s", cfg->log_file_path,
                      strerror(errno));
            return err;
        }
        c->own_out_fd = true;
        return 0;
    case SERIAL_STDIO: {
        c->out_fd = STDOUT_FILENO;
        c->in_fd = STDIN_FILENO;
        int rc = terminal_raw(STDIN_FILENO);
        if (rc)
            log_warn("virtio-serial: cannot put the terminal in raw mode: %s", strerror(-rc));
        return 0;
    }
    case SERIAL_PTY: {
        int rc = open_pty(c);
        if (rc) {
            log_error("virtio-serial: cannot create a pty: %s", strerror(-rc));
            return rc;
        }
        log_info("virtio-serial: guest console on pty %s", c->pty_path);
        return 0;
    }
    }
    return -EINVAL;
}

int virtio_console_create(struct machine *m, const struct dev_serial *cfg, struct virtio_dev **out)
{
    struct virtio_console *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->mode = cfg->mode;
    c->out_fd = c->in_fd = c->pty_slave = -1;
    int rc = open_backend(c, cfg);
    if (rc) {
        console_destroy(&c->vdev);
        return rc;
    }
    struct virtio_dev *dev = &c->vdev;
    /* Class: simple communication controller, other (0x0780). */
    rc = virtio_pci_init(dev, m, "virtio-console", VIRTIO_ID_CONSOLE, 0x078000, 2,
                         CONSOLE_QUEUE_SIZE, 1ull << VIRTIO_CONSOLE_F_EMERG_WRITE, CFG_LEN,
                         &console_ops);
    if (rc == 0)
        rc = virtio_pci_start(dev);
    if (rc) {
        log_error("virtio-console: cannot create: %s", strerror(-rc));
        virtio_pci_destroy(dev);
        return rc;
    }
    *out = dev;
    return 0;
}

const char *virtio_console_pty_path(const struct virtio_dev *dev)
{
    return dev->device_id == VIRTIO_ID_CONSOLE ? ((const struct virtio_console *)dev)->pty_path
                                               : NULL;
}
