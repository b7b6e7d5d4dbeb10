/*
 * The REST service: vfkit's and krunkit's HTTP/1.1 API (shared/compat/
 * CLIENTS.md) on one thread, an event loop (vmm/evloop.h) with
 * non-blocking sockets, so a slow or hostile client costs a buffer and a
 * slot, never the service. One loop timer follows the earliest deadline
 * (idle timeouts, lingering, the accept back-off); the loop's post-dispatch
 * hook frees the connections a batch closed and re-arms that timer.
 *
 * Endpoints and answers (every error body is {"error":"..."}):
 *   GET|HEAD /vm/state    200 {"state":NAME,"canStart":..,"canPause":..,
 *                         "canResume":..,"canStop":..,"canHardStop":..}
 *                         (vfkit's object; krunkit's {"state"} is a subset)
 *   POST /vm/state        body {"state":"Stop"|"HardStop"|"Pause"|"Resume"}
 *                         200 {"state":NAME} read after the request (krunkit)
 *                         400 bad JSON, not an object, no/non-string "state",
 *                             unknown action, duplicate key
 *                         409 the VM refused the action in its state
 *                         411 no Content-Length
 *                         500 any other failure of the request
 *   GET|HEAD /vm/inspect  200 the configuration JSON
 *   other path 404; known path, other method 405 with Allow.
 * Before any of that (rest.h, "Who may call"): a request with an Origin, a
 * Sec-Fetch-Site other than "none", or over TCP a Host that does not name
 * the service is 403; a POST with a text/plain or multipart/form-data body
 * is 415. Neither reaches the VM.
 * Framing errors from the parser (400, 411 for Transfer-Encoding, 413 for a
 * head over 8 KiB or a body over 64 KiB, 505) are answered and the connection
 * closed, as is a request not finished within the idle timeout (408).
 * Keep-alive follows the version and Connection; pipelined requests are
 * answered in order.
 */
#include "cli/rest.h"

#include "cli/http.h"
#include "core/log.h"
#include "vmm/evloop.h"
#include "vmm/sandbox.h"
#include "util/unix_socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define REST_MAX_LISTENERS 8
#define REST_BACKLOG 64
/* Whole request in memory at most: a full head plus a full body. */
#define CONN_IN_MAX (HTTP_MAX_HEAD_BYTES + HTTP_MAX_BODY_BYTES)
#define CONN_IN_INITIAL 2048
/* Stop answering pipelined requests while this much output is unsent. */
#define CONN_OUT_HIGH_WATER 65536
/* After the last response: how long and how much to read and discard before
 * closing, so unread input does not turn our close into a reset that eats
 * the response (RFC 9112 9.6). */
#define CONN_LINGER_MS 2000
#define CONN_LINGER_MAX_BYTES (1u << 20)
/* accept() failing for lack of fds: retry after this long, not in a spin. */
#define ACCEPT_BACKOFF_MS 100

/* A socket of the service: a listener's handler gets this, a connection's its rest_conn. */
struct rest_fd {
    int fd;
    struct rest_server *srv;
};

struct rest_conn {
    struct rest_fd ev;
    struct rest_conn *prev, *next;
    struct rest_server *srv;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off, out_cap;
    struct http_parser parser;
    bool sent_continue; /* 100 Continue already sent for the current request */
    bool peer_eof;      /* the client shut its side */
    bool closing;       /* the last response is queued: flush, then drain */
    bool draining;      /* our side is shut: discard input until EOF */
    bool dead;          /* closed; freed at the end of the event batch */
    size_t drained;
    uint32_t epoll_mask;
    uint64_t deadline_ms;
};

struct rest_server {
    struct vm_control ctl;
    char *inspect_json;
    struct rest_limits limits;
    struct evloop *loop;
    int timer; /* evloop timer at the earliest deadline (connections, listener back-off) */
    bool thread_started;
    struct rest_fd listeners[REST_MAX_LISTENERS];
    size_t n_listeners;
    bool listeners_paused;
    uint64_t listeners_resume_ms;
    struct rest_guard guard;
    char *listen_name;              /* guard.listen_name's storage */
    unsigned long refused;          /* requests refused by rest_request_check */
    struct unix_listener unix_sock; /* its name, removed at the end while still ours */
    unsigned port;
    struct rest_conn *conns; /* live connections, oldest last */
    unsigned n_conns;
    struct rest_conn *dead; /* closed this batch, linked through next; freed after it */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- connections ---- */

static void conn_set_mask(struct rest_conn *c, uint32_t mask)
{
    if (c->epoll_mask == mask)
        return;
    int r = evloop_mod(c->srv->loop, c->ev.fd, mask);
    if (r == 0)
        c->epoll_mask = mask;
    else
        log_warn("rest: epoll_ctl on connection fd %d: %s", c->ev.fd, strerror(-r));
}

static void conn_kill(struct rest_conn *c)
{
    struct rest_server *srv = c->srv;
    if (c->dead)
        return;
    c->dead = true;
    /* Its handler is not called again; the memory goes after the batch (rest_after_batch). */
    evloop_del(srv->loop, c->ev.fd);
    close(c->ev.fd);
    c->ev.fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_conns--;
    c->prev = NULL;
    c->next = srv->dead;
    srv->dead = c;
}

static void conn_free(struct rest_conn *c)
{
    free(c->in);
    free(c->out);
    free(c);
}

static int out_reserve(struct rest_conn *c, size_t more)
{
    if (c->out_cap - c->out_len >= more)
        return 0;
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        if (c->out_cap - c->out_len >= more)
            return 0;
    }
    size_t cap = c->out_cap ? c->out_cap : 1024;
    while (cap - c->out_len < more)
        cap *= 2;
    char *p = realloc(c->out, cap);
    if (!p)
        return -ENOMEM;
    c->out = p;
    c->out_cap = cap;
    return 0;
}

static int out_append(struct rest_conn *c, const char *data, size_t len)
{
    int r = out_reserve(c, len);
    if (r < 0)
        return r;
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

static size_t out_pending(const struct rest_conn *c)
{
    return c->out_len - c->out_off;
}

/*
 * Queue one response. head_only (HEAD) sends the headers of the body
 * without it. close adds "Connection: close" and makes it the last one.
 */
static void queue_response(struct rest_conn *c, int status, const char *allow, const char *body,
                           bool head_only, bool close, bool http10_keep_alive)
{
    char head[512];
    size_t body_len = body ? strlen(body) : 0;
    int n = snprintf(
        head, sizeof(head),
        "HTTP/1.1 %d %s\r\n"
        "%s"
        "Content-Length: %zu\r\n"
        "%s%s%s"
        "%s"
        "\r\n",
        status, http_status_reason(status), body ? "Content-Type: application/json\r\n" : "",
        body_len, allow ? "Allow: " : "", allow ? allow : "", allow ? "\r\n" : "",
        close ? "Connection: close\r\n" : (http10_keep_alive ? "Connection: keep-alive\r\n" : ""));
    if (n < 0 || (size_t)n >= sizeof(head) || out_append(c, head, (size_t)n) < 0 ||
        (!head_only && body_len && out_append(c, body, body_len) < 0)) {
        log_error("rest: out of memory queueing a %d response", status);
        conn_kill(c);
        return;
    }
    if (close)
        c->closing = true;
}

/* {"error": msg} as a malloc'ed string, or NULL on ENOMEM. */
static char *error_body(const char *msg)
{
    json_t *o = json_pack("{s:s}", "error", msg);
    /* msg may quote the client's bytes (jansson's parse errors do); when
     * they are not UTF-8 the message goes without them. */
    if (!o)
        o = json_pack("{s:s}", "error", "invalid request");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static void queue_error(struct rest_conn *c, int status, const char *allow, const char *msg,
                        bool head_only, bool close, bool http10_keep_alive)
{
    char *body = error_body(msg);
    if (!body) {
        log_error("rest: out of memory building a %d response", status);
        conn_kill(c);
        return;
    }
    queue_response(c, status, allow, body, head_only, close, http10_keep_alive);
    free(body);
}

/* ---- who may call ---- */

static bool ci_equal(const char *a, size_t alen, const char *b)
{
    return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}

static bool in6_is_loopback(const struct in6_addr *a)
{
    /* ::1, or an IPv4-mapped 127.0.0.0/8 (::ffff:127.0.0.1). */
    return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

bool rest_host_allowed(const struct rest_guard *g, const char *host, size_t len)
{
    const char *name = host, *end;
    char buf[INET6_ADDRSTRLEN + 8];
    bool bracketed = len > 0 && host[0] == '[';

    if (bracketed) {
        end = memchr(host, ']', len);
        if (!end)
            return false;
        name = host + 1;
    } else {
        end = memchr(host, ':', len);
        if (!end)
            end = host + len;
        else if (memchr(end + 1, ':', len - (size_t)(end + 1 - host)))
            return false; /* an IPv6 literal must come in brackets */
    }
    size_t name_len = (size_t)(end - name);
    /* What follows the name: nothing, or ":" and a port (RFC 3986 3.2.3). */
    const char *rest = end + (bracketed ? 1 : 0), *stop = host + len;
    if (rest < stop) {
        if (*rest != ':' || stop - rest > 6)
            return false;
        for (const char *q = rest + 1; q < stop; q++)
            if (*q < '0' || *q > '9')
                return false;
    }
    if (name_len == 0)
        return false;

    if (bracketed) {
        struct in6_addr a, l;
        if (name_len >= sizeof(buf))
            return false;
        memcpy(buf, name, name_len);
        buf[name_len] = '\0';
        if (inet_pton(AF_INET6, buf, &a) != 1)
            return false;
        if (in6_is_loopback(&a) || g->any_ip_literal)
            return true;
        return g->listen_name && inet_pton(AF_INET6, g->listen_name, &l) == 1 &&
               memcmp(&a, &l, sizeof(a)) == 0;
    }
    if (ci_equal(name, name_len, "localhost"))
        return true;
    if (name_len < sizeof(buf)) {
        struct in_addr a;
        memcpy(buf, name, name_len);
        buf[name_len] = '\0';
        if (inet_pton(AF_INET, buf, &a) == 1 &&
            ((ntohl(a.s_addr) >> 24) == 127 || g->any_ip_literal))
            return true;
    }
    return g->listen_name && ci_equal(name, name_len, g->listen_name);
}

/* The media type of a Content-Type value: up to ";" or white space. */
static bool media_type_is(const char *v, size_t len, const char *type)
{
    size_t n = 0;
    while (n < len && v[n] != ';' && v[n] != ' ' && v[n] != '\t')
        n++;
    return ci_equal(v, n, type);
}

int rest_request_check(const struct rest_guard *g, const struct http_request *r, const char **why)
{
    if (r->has_origin) {
        *why = "requests with an Origin header (from a web page) are refused";
        return 403;
    }
    if (r->fetch_site && !ci_equal(r->fetch_site, r->fetch_site_len, "none")) {
        *why = "requests a web page makes (Sec-Fetch-Site) are refused";
        return 403;
    }
    if (!g->unix_socket && r->has_host && !rest_host_allowed(g, r->host, r->host_len)) {
        *why = "the Host header does not name this service";
        return 403;
    }
    if (r->method == HTTP_METHOD_POST && r->content_type &&
        (media_type_is(r->content_type, r->content_type_len, "text/plain") ||
         media_type_is(r->content_type, r->content_type_len, "multipart/form-data"))) {
        *why = "send the body as application/json";
        return 415;
    }
    return 0;
}

/* ---- endpoints ---- */

static char *state_body(const struct rest_server *srv)
{
    enum vm_state st = srv->ctl.get_state(srv->ctl.opaque);
    /* The can* flags describe what POST /vm/state may ask for now; there is
     * no Start action over this API, so canStart is always false. */
    json_t *o = json_pack("{s:s,s:b,s:b,s:b,s:b,s:b}", "state", vm_state_name(st), "canStart", 0,
                          "canPause", st == VM_STATE_RUNNING, "canResume", st == VM_STATE_PAUSED,
                          "canStop", st == VM_STATE_RUNNING, "canHardStop", st != VM_STATE_STOPPED);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static const char *request_name(enum vm_request req)
{
    switch (req) {
    case VM_REQ_STOP:
        return "Stop";
    case VM_REQ_HARD_STOP:
        return "HardStop";
    case VM_REQ_PAUSE:
        return "Pause";
    case VM_REQ_RESUME:
        return "Resume";
    }
    return "?";
}

/* Status and malloc'ed body for POST /vm/state. */
static int post_state(struct rest_server *srv, const struct http_request *r, char **body)
{
    char msg[256];
    json_error_t jerr;
    int status = 400;

    *body = NULL;
    if (!r->has_content_length) {
        *body = error_body("POST needs a Content-Length");
        return 411;
    }
    json_t *doc = json_loadb(r->body, (size_t)r->content_length, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        snprintf(msg, sizeof(msg), "invalid JSON: %s", jerr.text);
        *body = error_body(msg);
        return 400;
    }
    json_t *state = json_object_get(doc, "state");
    if (!json_is_object(doc)) {
        *body = error_body("body must be a JSON object");
    } else if (!state) {
        *body = error_body("missing \"state\"");
    } else if (!json_is_string(state)) {
        *body = error_body("\"state\" must be a string");
    } else {
        int req = vm_request_from_name(json_string_value(state));
        if (req < 0) {
            *body = error_body("unknown state; expected Stop, HardStop, Pause or Resume");
        } else {
            int rc = srv->ctl.request(srv->ctl.opaque, (enum vm_request)req);
            enum vm_state now = srv->ctl.get_state(srv->ctl.opaque);
            if (rc == 0) {
                log_info("rest: %s requested, VM now %s", request_name((enum vm_request)req),
                         vm_state_name(now));
                json_t *o = json_pack("{s:s}", "state", vm_state_name(now));
                *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
                json_decref(o);
                status = 200;
            } else {
                status = rc == -EINVAL ? 409 : 500;
                snprintf(msg, sizeof(msg), "%s refused in state %s: %s",
                         request_name((enum vm_request)req), vm_state_name(now), strerror(-rc));
                log_warn("rest: %s", msg);
                *body = error_body(msg);
            }
        }
    }
    json_decref(doc);
    return status;
}

static bool path_is(const char *path, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(path, lit, len) == 0;
}

static void handle_request(struct rest_conn *c, const struct http_request *r)
{
    struct rest_server *srv = c->srv;
    const char *q = memchr(r->target, '?', r->target_len);
    size_t path_len = q ? (size_t)(q - r->target) : r->target_len;
    bool head_only = r->method == HTTP_METHOD_HEAD;
    bool is_get = r->method == HTTP_METHOD_GET || head_only;
    bool close = !r->keep_alive;
    bool ka10 = r->keep_alive && r->version_minor == 0;
    char *body = NULL;
    int status;
    const char *allow = NULL;

    log_debug("rest: %.*s %.*s", (int)r->method_len, r->method_str,
              (int)(r->target_len > 200 ? 200 : r->target_len), r->target);

    const char *why = NULL;
    if ((status = rest_request_check(&srv->guard, r, &why)) != 0) {
        /* A web page can send these in a loop: log the 1st, 2nd, 4th, 8th... */
        unsigned long n = ++srv->refused;
        if ((n & (n - 1)) == 0)
            log_warn("rest: refused %.*s %.*s with %d (%lu so far): %s", (int)r->method_len,
                     r->method_str, (int)(r->target_len > 200 ? 200 : r->target_len), r->target,
                     status, n, why);
        body = error_body(why);
    } else if (path_is(r->target, path_len, "/vm/state")) {
        if (is_get) {
            body = state_body(srv);
            status = 200;
        } else if (r->method == HTTP_METHOD_POST) {
            status = post_state(srv, r, &body);
        } else {
            allow = "GET, HEAD, POST";
            status = 405;
            body = error_body("method not allowed");
        }
    } else if (path_is(r->target, path_len, "/vm/inspect")) {
        if (is_get) {
            body = strdup(srv->inspect_json);
            status = 200;
        } else {
            allow = "GET, HEAD";
            status = 405;
            body = error_body("method not allowed");
        }
    } else {
        status = 404;
        body = error_body("not found");
    }
    if (!body) {
        log_error("rest: out of memory answering a request");
        conn_kill(c);
        return;
    }
    queue_response(c, status, allow, body, head_only, close, ka10);
    free(body);
}

/* ---- I/O ---- */

static void conn_update_mask(struct rest_conn *c)
{
    uint32_t mask = 0;
    if (c->draining) {
        mask = EPOLLIN;
    } else {
        if (out_pending(c))
            mask |= EPOLLOUT;
        /* Read more only when there is room and the output is flowing. */
        if (!c->closing && !c->peer_eof && c->in_len < CONN_IN_MAX &&
            out_pending(c) < CONN_OUT_HIGH_WATER)
            mask |= EPOLLIN;
    }
    conn_set_mask(c, mask);
}

/* Answer every complete request in the input buffer, in order. */
static void conn_process(struct rest_conn *c)
{
    while (!c->dead && !c->closing && c->in_len > 0 && out_pending(c) < CONN_OUT_HIGH_WATER) {
        enum http_parse_result res = http_parse(&c->parser, c->in, c->in_len);
        if (res == HTTP_PARSE_INCOMPLETE) {
            /* HTTP/1.0 clients do not know interim responses (RFC 9110 10.1.1). */
            if (http_head_done(&c->parser) && c->parser.req.expect_continue &&
                c->parser.req.version_minor == 1 && !c->sent_continue) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                c->sent_continue = true;
                if (out_append(c, cont, sizeof(cont) - 1) < 0)
                    conn_kill(c);
            }
            break;
        }
        if (res == HTTP_PARSE_ERROR) {
            log_debug("rest: bad request on fd %d: %d %s", c->ev.fd, c->parser.error_status,
                      c->parser.error_reason);
            queue_error(c, c->parser.error_status, NULL, c->parser.error_reason, false, true,
                        false);
            break;
        }
        struct http_request req = c->parser.req;
        handle_request(c, &req);
        if (c->dead)
            return;
        memmove(c->in, c->in + req.total_len, c->in_len - req.total_len);
        c->in_len -= req.total_len;
        http_parser_init(&c->parser);
        c->sent_continue = false;
        c->deadline_ms = now_ms() + c->srv->limits.idle_timeout_ms;
    }
    /* A request cut short by the client's EOF can never complete. */
    if (!c->dead && c->peer_eof && !c->closing && out_pending(c) < CONN_OUT_HIGH_WATER)
        c->closing = true;
}

static void conn_start_drain(struct rest_conn *c)
{
    shutdown(c->ev.fd, SHUT_WR);
    c->draining = true;
    c->drained = 0;
    free(c->in);
    c->in = NULL;
    c->in_len = c->in_cap = 0;
    c->deadline_ms = now_ms() + CONN_LINGER_MS;
    if (c->peer_eof)
        conn_kill(c);
}

static void conn_flush(struct rest_conn *c)
{
    while (out_pending(c)) {
        ssize_t n = send(c->ev.fd, c->out + c->out_off, out_pending(c), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_kill(c); /* EPIPE, ECONNRESET: the client is gone */
            return;
        }
        c->out_off += (size_t)n;
        if (!c->closing)
            c->deadline_ms = now_ms() + c->srv->limits.idle_timeout_ms;
    }
    if (!out_pending(c)) {
        c->out_len = c->out_off = 0;
        if (c->closing && !c->draining)
            conn_start_drain(c);
    }
}

static void conn_read(struct rest_conn *c)
{
    if (c->draining) {
        char sink[4096];
        ssize_t n = recv(c->ev.fd, sink, sizeof(sink), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            conn_kill(c);
        else if (n > 0 && (c->drained += (size_t)n) > CONN_LINGER_MAX_BYTES)
            conn_kill(c);
        return;
    }
    if (c->closing || c->in_len >= CONN_IN_MAX)
        return;
    if (c->in_cap - c->in_len == 0) {
        size_t cap = c->in_cap ? c->in_cap * 2 : CONN_IN_INITIAL;
        if (cap > CONN_IN_MAX)
            cap = CONN_IN_MAX;
        char *p = realloc(c->in, cap);
        if (!p) {
            log_error("rest: out of memory for a request buffer");
            conn_kill(c);
            return;
        }
        c->in = p;
        c->in_cap = cap;
    }
    ssize_t n = recv(c->ev.fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_kill(c);
        return;
    }
    if (n == 0)
        c->peer_eof = true;
    else
        c->in_len += (size_t)n;
}

static void conn_event(struct rest_conn *c, uint32_t events)
{
    if (events & EPOLLERR) {
        conn_kill(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP))
        conn_read(c);
    if (!c->dead && (events & EPOLLHUP) && !(events & EPOLLIN)) {
        conn_kill(c);
        return;
    }
    /* Answer, send, and once the output has drained, answer what pipelined
     * requests were held back by it. */
    for (int round = 0; round < 2 && !c->dead; round++) {
        conn_process(c);
        if (!c->dead)
            conn_flush(c);
    }
    if (!c->dead)
        conn_update_mask(c);
}

static void conn_timeout(struct rest_conn *c)
{
    if (c->draining || c->closing || out_pending(c) || c->in_len == 0) {
        /* Lingering done, or the client neither reads nor sends: drop it. */
        conn_kill(c);
        return;
    }
    log_debug("rest: request on fd %d not finished in time", c->ev.fd);
    queue_error(c, 408, NULL, "request not finished in time", false, true, false);
    if (c->dead)
        return;
    c->deadline_ms = now_ms() + CONN_LINGER_MS;
    conn_flush(c);
    if (!c->dead)
        conn_update_mask(c);
}

/* ---- listeners ---- */

static void listeners_set(struct rest_server *srv, bool on)
{
    for (size_t i = 0; i < srv->n_listeners; i++)
        evloop_mod(srv->loop, srv->listeners[i].fd, on ? EPOLLIN : 0);
    srv->listeners_paused = !on;
}

static struct rest_conn *stalest_conn(struct rest_server *srv)
{
    struct rest_conn *best = NULL;
    for (struct rest_conn *c = srv->conns; c; c = c->next) {
        if (!best || c->deadline_ms <= best->deadline_ms)
            best = c;
    }
    return best;
}

static void conn_ready(void *opaque, uint32_t events)
{
    struct rest_conn *c = opaque;
    if (!c->dead)
        conn_event(c, events);
}

static void accept_all(struct rest_server *srv, struct rest_fd *l)
{
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_warn("rest: accept: %s; pausing for %d ms", strerror(errno), ACCEPT_BACKOFF_MS);
                listeners_set(srv, false);
                srv->listeners_resume_ms = now_ms() + ACCEPT_BACKOFF_MS;
            }
            return;
        }
        if (srv->n_conns >= srv->limits.max_connections) {
            struct rest_conn *victim = stalest_conn(srv);
            log_warn("rest: %u connections open; closing the stalest", srv->n_conns);
            if (victim)
                conn_kill(victim);
        }
        struct rest_conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->ev.fd = fd;
        c->ev.srv = srv;
        c->srv = srv;
        c->epoll_mask = EPOLLIN;
        c->deadline_ms = now_ms() + srv->limits.idle_timeout_ms;
        http_parser_init(&c->parser);
        int r = evloop_add(srv->loop, fd, EPOLLIN, conn_ready, c);
        if (r < 0) {
            log_warn("rest: epoll_ctl add: %s", strerror(-r));
            close(fd);
            free(c);
            continue;
        }
        c->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = c;
        srv->conns = c;
        srv->n_conns++;
    }
}

/* ---- the loop's handlers, timer and hook ---- */

static void listener_ready(void *opaque, uint32_t events)
{
    struct rest_fd *l = opaque;
    (void)events;
    accept_all(l->srv, l);
}

/* The earliest deadline has come: time out connections, end the accept back-off. */
static void rest_tick(void *opaque)
{
    struct rest_server *srv = opaque;
    uint64_t now = now_ms();
    for (struct rest_conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        if (c->deadline_ms <= now)
            conn_timeout(c);
    }
    if (srv->listeners_paused && srv->listeners_resume_ms <= now)
        listeners_set(srv, true);
}

/* After each batch: free what it closed; the timer follows the earliest deadline left. */
static void rest_after_batch(void *opaque)
{
    struct rest_server *srv = opaque;
    while (srv->dead) {
        struct rest_conn *c = srv->dead;
        srv->dead = c->next;
        conn_free(c);
    }
    uint64_t next = UINT64_MAX;
    for (struct rest_conn *c = srv->conns; c; c = c->next) {
        if (c->deadline_ms < next)
            next = c->deadline_ms;
    }
    if (srv->listeners_paused && srv->listeners_resume_ms < next)
        next = srv->listeners_resume_ms;
    uint64_t now = now_ms();
    uint64_t delay = next == UINT64_MAX ? EVLOOP_TIMER_OFF
                     : next <= now      ? 0
                                        : (next - now) * 1000000ull;
    evloop_timer_set(srv->loop, srv->timer, delay, 0);
}

/* ---- start and stop ---- */

static void server_free(struct rest_server *srv)
{
    if (srv->thread_started)
        evloop_stop(srv->loop); /* parked: no handler runs while the rest goes */
    while (srv->conns)
        conn_kill(srv->conns);
    while (srv->dead) {
        struct rest_conn *c = srv->dead;
        srv->dead = c->next;
        conn_free(c);
    }
    for (size_t i = 0; i < srv->n_listeners; i++) {
        evloop_del(srv->loop, srv->listeners[i].fd);
        close(srv->listeners[i].fd);
    }
    unix_listener_close(&srv->unix_sock);
    evloop_destroy(srv->loop); /* ends the thread */
    free(srv->inspect_json);
    free(srv->listen_name);
    free(srv);
}

static int add_listener(struct rest_server *srv, int fd)
{
    struct rest_fd *l = &srv->listeners[srv->n_listeners];
    l->fd = fd;
    l->srv = srv;
    srv->n_listeners++;
    return evloop_add(srv->loop, fd, EPOLLIN, listener_ready, l);
}

static bool sockaddr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    return sa->sa_family == AF_INET6 &&
           in6_is_loopback(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

static bool sockaddr_is_wildcard(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
    return sa->sa_family == AF_INET6 &&
           IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

/*
 * The addresses to listen on for host (brackets removed), at most max, into
 * out; returns how many, or -errno (logged). See rest_start() for the rule.
 */
static int tcp_addresses(const struct rest_config *rc, const char *host,
                         struct sockaddr_storage *out, socklen_t *out_len, size_t max,
                         bool *wildcard)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    const char *uri = rc->uri ? rc->uri : "tcp://";
    size_t n = 0;
    int err;

    *wildcard = false;
    if (strcasecmp(host, "localhost") == 0) {
        /* Not resolved: /etc/hosts or DNS may say anything about it. */
        struct sockaddr_in *v4 = (struct sockaddr_in *)&out[0];
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out[1];
        memset(out, 0, 2 * sizeof(*out));
        v4->sin_family = AF_INET;
        v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        out_len[0] = sizeof(*v4);
        v6->sin6_family = AF_INET6;
        v6->sin6_addr = in6addr_loopback;
        out_len[1] = sizeof(*v6);
        return 2;
    }
    /* A numeric address is the user's explicit choice, loopback or not. */
    hints.ai_flags = AI_NUMERICHOST;
    err = getaddrinfo(host, NULL, &hints, &res);
    bool numeric = err == 0;
    if (err == EAI_NONAME) {
        hints.ai_flags = 0;
        err = getaddrinfo(host, NULL, &hints, &res);
    }
    if (err) {
        log_error("rest: %s: cannot resolve %s: %s", uri, host, gai_strerror(err));
        return err == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
    }
    int ret = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(*out))
            continue;
        if (!numeric && !sockaddr_is_loopback(ai->ai_addr)) {
            char addr[NI_MAXHOST] = "?";
            getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr), NULL, 0, NI_NUMERICHOST);
            log_error("rest: --restful-uri %s: %s resolves to %s, which is not a loopback "
                      "address; refusing to listen beyond this host (to do that on purpose, give "
                      "the address itself: tcp://%s%s%s:%u)",
                      uri, host, addr, ai->ai_family == AF_INET6 ? "[" : "", addr,
                      ai->ai_family == AF_INET6 ? "]" : "", rc->port);
            ret = -EADDRNOTAVAIL;
            break;
        }
        bool seen = false;
        for (size_t i = 0; i < n; i++)
            seen |= out_len[i] == ai->ai_addrlen && !memcmp(&out[i], ai->ai_addr, ai->ai_addrlen);
        if (seen || n == max)
            continue;
        memset(&out[n], 0, sizeof(out[n]));
        memcpy(&out[n], ai->ai_addr, ai->ai_addrlen);
        out_len[n] = ai->ai_addrlen;
        *wildcard |= numeric && sockaddr_is_wildcard(ai->ai_addr);
        n++;
    }
    freeaddrinfo(res);
    return ret < 0 ? ret : (int)n;
}

static int listen_tcp(struct rest_server *srv, const struct rest_config *rc)
{
    struct sockaddr_storage addrs[REST_MAX_LISTENERS];
    socklen_t addr_lens[REST_MAX_LISTENERS];
    bool wildcard;

    if (!rc->host || !*rc->host) {
        log_error("rest: %s: no host to listen on", rc->uri ? rc->uri : "tcp://");
        return -EINVAL;
    }
    /* An IPv6 literal may come bracketed as in the URI ("[::1]"). */
    char host[256];
    size_t hlen = strlen(rc->host);
    if (hlen >= sizeof(host)) {
        log_error("rest: host name %.64s... is too long", rc->host);
        return -ENAMETOOLONG;
    }
    if (hlen > 2 && rc->host[0] == '[' && rc->host[hlen - 1] == ']')
        snprintf(host, sizeof(host), "%.*s", (int)(hlen - 2), rc->host + 1);
    else
        snprintf(host, sizeof(host), "%s", rc->host);
    int n = tcp_addresses(rc, host, addrs, addr_lens, REST_MAX_LISTENERS, &wildcard);
    if (n < 0)
        return n;
    srv->listen_name = strdup(host);
    if (!srv->listen_name)
        return -ENOMEM;
    srv->guard.listen_name = srv->listen_name;
    srv->guard.any_ip_literal = wildcard;
    srv->port = rc->port;
    int ret = 0;
    for (int i = 0; i < n; i++) {
        struct sockaddr *sa = (struct sockaddr *)&addrs[i];
        /* Port 0 (tests): every address gets the port the first one got. */
        if (sa->sa_family == AF_INET)
            ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)srv->port);
        else
            ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)srv->port);

        int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            if (errno == EAFNOSUPPORT)
                continue;
            ret = -errno;
            log_error("rest: socket: %s", strerror(errno));
            break;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (sa->sa_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        char addr[NI_MAXHOST] = "?";
        getnameinfo(sa, addr_lens[i], addr, sizeof(addr), NULL, 0, NI_NUMERICHOST);
        if (bind(fd, sa, addr_lens[i]) < 0 || listen(fd, REST_BACKLOG) < 0) {
            int e = errno;
            close(fd);
            /* An address family the host has no address in (::1 with IPv6 off). */
            if (e == EADDRNOTAVAIL || e == EAFNOSUPPORT) {
                log_debug("rest: skipping %s: %s", addr, strerror(e));
                continue;
            }
            log_error("rest: cannot listen on %s port %u: %s", addr, srv->port, strerror(e));
            ret = -e;
            break;
        }
        if (srv->port == 0) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof(ss);
            if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
                srv->port =
                    ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                  : ((struct sockaddr_in6 *)&ss)->sin6_port);
        }
        ret = add_listener(srv, fd);
        if (ret < 0)
            break;
        log_info("rest: listening on %s port %u%s", addr, srv->port,
                 sockaddr_is_loopback(sa)
                     ? ""
                     : " (not a loopback address: reachable from other hosts)");
    }
    if (ret == 0 && srv->n_listeners == 0) {
        log_error("rest: no usable address for %s", host);
        ret = -EADDRNOTAVAIL;
    }
    return ret;
}

static int listen_unix(struct rest_server *srv, const struct rest_config *rc)
{
    const char *path = rc->path;
    srv->guard.unix_socket = true;
    if (!path || !*path) {
        log_error("rest: %s: no socket path", rc->uri ? rc->uri : "unix://");
        return -EINVAL;
    }
    /* 0600 from bind, a stale socket of ours replaced, anything else refused. */
    int r = unix_listen(path, REST_BACKLOG, &srv->unix_sock);
    if (r) {
        log_error("rest: %s: %s", path, unix_listen_problem(r));
        return r;
    }
    int fd = srv->unix_sock.fd;
    srv->unix_sock.fd = -1; /* the listener table owns it from here */
    r = add_listener(srv, fd);
    if (r == 0)
        log_info("rest: listening on %s", path);
    return r;
}

int rest_start_with_limits(const struct rest_config *rc, const struct vm_control *ctl,
                           const char *inspect_json, const struct rest_limits *limits,
                           struct rest_server **out)
{
    *out = NULL;
    if (rc->scheme == REST_NONE)
        return 0;
    if (!ctl || !ctl->get_state || !ctl->request || !inspect_json) {
        log_error("rest: started without a VM to control");
        return -EINVAL;
    }
    struct rest_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    srv->unix_sock.fd = -1;
    srv->ctl = *ctl;
    srv->limits.max_connections = REST_DEFAULT_MAX_CONNECTIONS;
    srv->limits.idle_timeout_ms = REST_DEFAULT_IDLE_TIMEOUT_MS;
    if (limits) {
        if (limits->max_connections)
            srv->limits.max_connections = limits->max_connections;
        if (limits->idle_timeout_ms)
            srv->limits.idle_timeout_ms = limits->idle_timeout_ms;
    }
    int r = -ENOMEM;
    srv->inspect_json = strdup(inspect_json);
    if (!srv->inspect_json)
        goto fail;
    r = evloop_create(&srv->loop);
    if (r == 0) {
        /* Made before the process is confined: the first timer creates the loop's timerfd. */
        srv->timer = evloop_timer_add(srv->loop, EVLOOP_TIMER_OFF, 0, rest_tick, srv);
        r = srv->timer < 0 ? srv->timer : 0;
    }
    if (r < 0) {
        log_error("rest: its event loop: %s", strerror(-r));
        goto fail;
    }
    evloop_set_post_dispatch(srv->loop, rest_after_batch, srv);
    if (rc->scheme == REST_TCP) {
        r = listen_tcp(srv, rc);
    } else if (rc->scheme == REST_UNIX) {
        r = listen_unix(srv, rc);
    } else {
        log_error("rest: unknown URI scheme %d", (int)rc->scheme);
        r = -EINVAL;
    }
    if (r < 0)
        goto fail;

    /* Signals are for the main thread: the service thread blocks them all. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = evloop_start_thread(srv->loop, "rest", SANDBOX_REST);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r < 0) {
        log_error("rest: cannot start the service thread: %s", strerror(-r));
        goto fail;
    }
    srv->thread_started = true;
    *out = srv;
    return 0;
fail:
    server_free(srv);
    return r;
}

int rest_start(const struct rest_config *rc, const struct vm_control *ctl, const char *inspect_json,
               struct rest_server **out)
{
    return rest_start_with_limits(rc, ctl, inspect_json, NULL, out);
}

unsigned rest_tcp_port(const struct rest_server *srv)
{
    return srv && !srv->unix_sock.path ? srv->port : 0;
}

void rest_stop(struct rest_server *srv)
{
    if (!srv)
        return;
    server_free(srv);
}
