/*
 * A tiny AF_VSOCK stream client and server for the L2 test guest (busybox
 * has none), built static by tests/lab/build-guest.sh:
 *
 *   vsock-echo connect CID PORT   stdin goes to the peer, then our write
 *                                 side is shut (the peer sees EOF); what
 *                                 the peer sends until it closes goes to
 *                                 stdout.
 *   vsock-echo listen PORT        accept one connection, read it to EOF,
 *                                 send everything back, close.
 *   vsock-echo agent PORT         a stand-in for the QEMU guest agent:
 *                                 accept one connection, read one line
 *                                 (a command), print it on stdout, answer
 *                                 {"return": {}}, close.
 *
 * Exit status 0 on success, 1 with a message on stderr otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int die(const char *what)
{
    fprintf(stderr, "vsock-echo: %s: %s\n", what, strerror(errno));
    return 1;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Copy from `in` to `out` until EOF; -1 on error. */
static int pump(int in, int out)
{
    char buf[16384];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (write_all(out, buf, (size_t)n) < 0)
            return -1;
    }
}

static int do_connect(unsigned cid, unsigned port)
{
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s < 0)
        return die("socket");
    struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return die("connect");
    if (pump(STDIN_FILENO, s) < 0)
        return die("send");
    if (shutdown(s, SHUT_WR) < 0)
        return die("shutdown");
    if (pump(s, STDOUT_FILENO) < 0)
        return die("receive");
    close(s);
    return 0;
}

static int fail_fd(const char *what)
{
    die(what);
    return -1;
}

/* Listen on `port`, accept one connection; its fd, or -1 after a message. */
static int accept_one(unsigned port)
{
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s < 0)
        return fail_fd("socket");
    struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return fail_fd("bind");
    if (listen(s, 1) < 0)
        return fail_fd("listen");
    int c = accept(s, NULL, NULL);
    if (c < 0)
        return fail_fd("accept");
    close(s);
    return c;
}

static int do_agent(unsigned port)
{
    int c = accept_one(port);
    if (c < 0)
        return 1;
    char line[4096];
    size_t len = 0;
    while (len < sizeof(line) - 1 && !memchr(line, '\n', len)) {
        ssize_t n = read(c, line + len, sizeof(line) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return die("receive");
        len += (size_t)n;
    }
    const char *answer = "{\"return\": {}}\n";
    if (write_all(STDOUT_FILENO, line, len) < 0 || write_all(c, answer, strlen(answer)) < 0)
        return die("send");
    close(c);
    return 0;
}

static int do_listen(unsigned port)
{
    int c = accept_one(port);
    if (c < 0)
        return 1;
    size_t cap = 1 << 16, len = 0;
    char *data = malloc(cap);
    for (;;) {
        if (!data)
            return die("malloc");
        if (len == cap)
            data = realloc(data, cap *= 2);
        if (!data)
            return die("realloc");
        ssize_t n = read(c, data + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return die("receive");
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (write_all(c, data, len) < 0)
        return die("send");
    fprintf(stderr, "vsock-echo: echoed %zu bytes on port %u\n", len, port);
    free(data);
    close(c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "connect"))
        return do_connect((unsigned)strtoul(argv[2], NULL, 0), (unsigned)strtoul(argv[3], NULL, 0));
    if (argc == 3 && !strcmp(argv[1], "listen"))
        return do_listen((unsigned)strtoul(argv[2], NULL, 0));
    if (argc == 3 && !strcmp(argv[1], "agent"))
        return do_agent((unsigned)strtoul(argv[2], NULL, 0));
    fprintf(stderr, "usage: vsock-echo connect CID PORT | listen PORT | agent PORT\n");
    return 2;
}
