/*
 * The REST service (--restful-uri): vfkit's and krunkit's HTTP API over TCP
 * or a UNIX socket, on its own thread, reaching the VM only through
 * struct vm_control. Endpoints and bodies follow shared/compat/CLIENTS.md;
 * the comment at the top of rest.c lists every status code.
 */
#ifndef KRUNKIT_CLI_REST_H
#define KRUNKIT_CLI_REST_H

#include "core/config.h"
#include "cli/http.h"
#include "cli/vm_control.h"

#include <stdbool.h>
#include <stddef.h>

struct rest_server;

#define REST_DEFAULT_MAX_CONNECTIONS 32
#define REST_DEFAULT_IDLE_TIMEOUT_MS 30000

struct rest_limits {
    /* Open connections at most; a new one beyond it evicts the stalest. */
    unsigned max_connections;
    /* A connection must finish its next request (or take its response) this
     * soon after the last one, or it is closed (408 if a request was begun). */
    unsigned idle_timeout_ms;
};

/*
 * Who may call (docs/rest-security.md). Any local program can reach the
 * service, and so can a web page in any browser on the host: it may POST to
 * tcp://localhost without a CORS preflight, and with DNS rebinding it may
 * read the answers under a name of its own. A request is therefore served
 * only when it carries no Origin (browsers add it to every cross-origin and
 * every POST request; our clients never send it), no Sec-Fetch-Site other
 * than "none", and, over TCP, a Host that names this service (below). A POST
 * whose Content-Type is text/plain or multipart/form-data (what an HTML form
 * can send without a preflight) is refused too; application/json, no
 * Content-Type (podman's Go client) and application/x-www-form-urlencoded
 * (what `curl -d` sends) are served.
 */
struct rest_guard {
    /* Over a UNIX socket every Host is taken: clients send made-up names
     * ("localhost", "d", "vfkit") and no browser can connect to one. */
    bool unix_socket;
    /* Listening on a wildcard address (0.0.0.0, ::): any IP literal is a
     * name of the service, since clients use whichever address reaches it. */
    bool any_ip_literal;
    /* The host of --restful-uri, brackets removed; NULL for none. */
    const char *listen_name;
};

/*
 * Whether a Host field value (host[0, len), "name[:port]" or "[v6][:port]")
 * names the service: "localhost", a loopback literal (127.0.0.0/8, ::1,
 * ::ffff:127.x.y.z), g->listen_name, or with g->any_ip_literal any IP
 * literal; any port. Names are compared without regard to case. A DNS name
 * other than those is how DNS rebinding looks, and is refused.
 */
bool rest_host_allowed(const struct rest_guard *g, const char *host, size_t len);

/*
 * 0 when r may be served; else the status to refuse it with (403, or 415
 * for a form-type POST body) and *why, a static message for the client.
 * Decided before anything else about the request, so a refused request
 * changes nothing.
 */
int rest_request_check(const struct rest_guard *g, const struct http_request *r, const char **why);

/*
 * Start serving rc (REST_NONE: *out = NULL, return 0). Binds and listens
 * before returning. TCP: "localhost" is 127.0.0.1 and ::1 whatever the
 * resolver says; a numeric address is listened on as given (0.0.0.0 too:
 * naming it is asking for it); any other name must resolve to loopback
 * addresses only, or the start fails (EADDRNOTAVAIL, logged with the URI).
 * UNIX: the socket at rc->path is created 0600 (its mode is set on the
 * descriptor before bind, so no other user ever sees it open); a path that
 * exists is refused unless it is a socket of ours nobody listens on (a
 * stale one, which is replaced). inspect_json is copied. ctl must stay
 * valid until rest_stop(); its callbacks run on the service thread and must
 * not block. Returns 0 or -errno (logged); on failure nothing is left open
 * or on disk.
 */
int rest_start(const struct rest_config *rc, const struct vm_control *ctl, const char *inspect_json,
               struct rest_server **out);

/* rest_start with other limits (tests); limits NULL means the defaults. */
int rest_start_with_limits(const struct rest_config *rc, const struct vm_control *ctl,
                           const char *inspect_json, const struct rest_limits *limits,
                           struct rest_server **out);

/* The TCP port listened on (the chosen one when rc->port was 0); 0 for UNIX. */
unsigned rest_tcp_port(const struct rest_server *srv);

/*
 * Stop the service thread, close every connection and listener, and remove
 * the UNIX socket (if it is still ours). Returns after all of it; srv is
 * freed. NULL is a no-op.
 */
void rest_stop(struct rest_server *srv);

#endif
