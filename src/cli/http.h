/*
 * Incremental HTTP/1.x request parser for the REST service (RFC 9112
 * sections 2-3 and 6, RFC 9110 sections 5 and 8.6). Pure: no I/O, no
 * allocation. The caller keeps every received byte of the current request in
 * one buffer and calls http_parse() again with the grown buffer; the parser
 * remembers how far it has looked, so a request trickling in byte by byte
 * costs linear time.
 *
 * What it accepts, and why so little:
 *  - origin-form targets only ("/vm/state"): that is all our clients send;
 *  - HTTP/1.0 and HTTP/1.1; other versions are 505;
 *  - bodies framed by Content-Length only. Transfer-Encoding is answered with
 *    411 (send a Content-Length) because no client of ours uses chunked;
 *  - CRLF or a bare LF ends a line (RFC 9112 2.2 allows the latter); a bare CR,
 *    NUL or any other control byte in the head is a 400;
 *  - empty lines before the request line are skipped (RFC 9112 2.2).
 *
 * The parser also hands back the fields the REST service's caller checks
 * (rest.c, "Who may call"): Host, whether an Origin or Sec-Fetch-Site was
 * sent, and Content-Type. It judges none of them; a repeated Host or
 * Content-Type is a 400, since a browser never sends one twice and two
 * values would leave "which one was checked" open.
 */
#ifndef KRUNKIT_CLI_HTTP_H
#define KRUNKIT_CLI_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The head (request line + header fields + blank line) and body limits. */
#define HTTP_MAX_HEAD_BYTES 8192
#define HTTP_MAX_BODY_BYTES 65536
#define HTTP_MAX_HEADER_FIELDS 64

enum http_method {
    HTTP_METHOD_OTHER, /* a valid token we do not serve: 405 or 404 */
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
    HTTP_METHOD_POST,
};

enum http_parse_result {
    HTTP_PARSE_INCOMPLETE, /* need more bytes */
    HTTP_PARSE_COMPLETE,   /* one whole request; see http_parser.req */
    HTTP_PARSE_ERROR,      /* answer http_parser.error_status and close */
};

/*
 * One parsed request. Pointers point into the buffer given to http_parse()
 * and are valid while that buffer is unchanged.
 */
struct http_request {
    enum http_method method;
    const char *method_str; /* the token as sent, not NUL-terminated */
    size_t method_len;
    const char *target; /* origin-form, query included, not NUL-terminated */
    size_t target_len;
    int version_minor; /* HTTP/1.<version_minor>: 0 or 1 */
    bool keep_alive;   /* after Connection and the version's default */
    bool has_content_length;
    uint64_t content_length; /* 0 when absent */
    bool expect_continue;    /* "Expect: 100-continue" */
    bool has_host;
    const char *host; /* Host's value, OWS trimmed, not NUL-terminated; NULL when absent */
    size_t host_len;
    bool has_origin;          /* an Origin field, whatever its value */
    const char *content_type; /* Content-Type's value, trimmed; NULL when absent */
    size_t content_type_len;
    const char *fetch_site; /* Sec-Fetch-Site's value, trimmed; NULL when absent */
    size_t fetch_site_len;
    const char *body; /* content_length bytes */
    size_t head_len;  /* bytes before the body, skipped empty lines included */
    size_t total_len; /* head_len + content_length: bytes this request used */
};

/* What the head's fields said, gathered line by line. */
struct http_head_flags {
    bool conn_close, conn_keep_alive;
    bool has_transfer_encoding;
    bool content_length_too_big;
    unsigned n_fields;
};

struct http_parser {
    size_t scanned;                /* bytes of the head already searched for its end */
    size_t line_start;             /* where the line being scanned begins */
    bool in_request;               /* the request line has begun (leading empty lines are over) */
    size_t head_len;               /* 0 until the blank line ending the head was seen */
    size_t method_off, target_off; /* so req can follow a buffer that moved */
    size_t host_off, content_type_off, fetch_site_off; /* likewise, when present */
    int error_status;                                  /* HTTP_PARSE_ERROR: 400, 411, 413 or 505 */
    const char *error_reason;
    struct http_head_flags flags;
    struct http_request req; /* head fields valid once head_len != 0 */
};

void http_parser_init(struct http_parser *p);

/*
 * Parse the request starting at buf[0]; len is every byte received so far
 * for it (buf may hold pipelined requests after it). Call again with the
 * same start and a larger len after HTTP_PARSE_INCOMPLETE; after
 * HTTP_PARSE_COMPLETE the request used req.total_len bytes: drop them and
 * http_parser_init() before the next one.
 */
enum http_parse_result http_parse(struct http_parser *p, const char *buf, size_t len);

/* True once the head is parsed (even while the body is still coming). */
static inline bool http_head_done(const struct http_parser *p)
{
    return p->head_len != 0;
}

/* "OK", "Not Found", ... for the status codes the REST service sends. */
const char *http_status_reason(int status);

#endif
