/*
 * The REST service (--restful-uri): vfkit's and krunkit's HTTP API over TCP
 * or a UNIX socket, on its own thread, reaching the VM only through
 * struct vm_control. Endpoints and bodies follow shared/compat/CLIENTS.md;
 * the comment at the top of rest.c lists every status code.
 */
#ifndef KRUNKIT_CLI_REST_H
#define KRUNKIT_CLI_REST_H

#include "cli/config.h"
#include "cli/vm_control.h"

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
 * Start serving rc (REST_NONE: *out = NULL, return 0). Binds and listens
 * before returning: TCP on every address the host name resolves to; UNIX at
 * rc->path, refusing a path that exists unless it is a socket nobody listens
 * on (a stale one, which is replaced). inspect_json is copied. ctl must stay
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
