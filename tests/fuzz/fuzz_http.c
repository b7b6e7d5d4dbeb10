/*
 * libFuzzer target for the REST service's HTTP request parser
 * (src/cli/http.c). The first input byte picks a chunk size; the rest is a
 * byte stream from a client. Requests are taken off the stream the way
 * rest.c does (pipelining included), each parsed twice: all at once, and
 * chunk by chunk from exact-size copies so any read past the bytes received
 * trips ASan. Both must agree; every pointer handed back must lie within
 * the request. Each whole request then goes through the REST service's
 * caller checks (rest_request_check, rest_host_allowed) for a TCP, a
 * wildcard and a UNIX listener, which may only serve or refuse it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/http.h"
#include "cli/rest.h"

static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_request(const struct http_parser *p, const char *buf, size_t len)
{
    const struct http_request *r = &p->req;
    check(r->total_len > 0 && r->total_len <= len);
    check(r->head_len <= r->total_len && r->total_len - r->head_len == r->content_length);
    check(r->content_length <= HTTP_MAX_BODY_BYTES && r->head_len <= HTTP_MAX_HEAD_BYTES);
    check(r->method_str >= buf && r->method_str + r->method_len <= buf + r->head_len);
    check(r->target >= buf && r->target + r->target_len <= buf + r->head_len);
    check(r->target_len > 0 && r->target[0] == '/');
    check(r->body == buf + r->head_len);
    check(r->version_minor == 0 || r->version_minor == 1);
    /* Header values lie in the head; absent ones are NULL with length 0. */
    check(r->has_host == (r->host != NULL));
    check(!r->host || (r->host >= buf && r->host + r->host_len <= buf + r->head_len));
    check(r->host || r->host_len == 0);
    check(!r->content_type ||
          (r->content_type >= buf && r->content_type + r->content_type_len <= buf + r->head_len));
    check(!r->fetch_site ||
          (r->fetch_site >= buf && r->fetch_site + r->fetch_site_len <= buf + r->head_len));
}

static void check_guard(const struct http_request *r)
{
    static const struct rest_guard guards[] = {
        {.listen_name = "localhost"},
        {.listen_name = "0.0.0.0", .any_ip_literal = true},
        {.listen_name = "::1"},
        {.unix_socket = true},
    };
    for (size_t i = 0; i < sizeof(guards) / sizeof(guards[0]); i++) {
        const char *why = NULL;
        int st = rest_request_check(&guards[i], r, &why);
        check(st == 0 || st == 403 || st == 415);
        check(st == 0 || why != NULL);
        check(!r->has_origin || st == 403);
        if (r->host)
            (void)rest_host_allowed(&guards[i], r->host, r->host_len);
    }
}

/* Parse buf[0, len) n bytes more at a time; returns the final result. */
static enum http_parse_result parse_in_steps(const char *buf, size_t len, size_t step,
                                             struct http_parser *p, size_t *used)
{
    enum http_parse_result r = HTTP_PARSE_INCOMPLETE;
    http_parser_init(p);
    for (size_t n = 0; n < len;) {
        n = n + step < len ? n + step : len;
        char *copy = malloc(n);
        if (!copy)
            abort();
        memcpy(copy, buf, n);
        r = http_parse(p, copy, n);
        if (r == HTTP_PARSE_COMPLETE) {
            check_request(p, copy, n);
            *used = p->req.total_len;
        }
        free(copy);
        if (r != HTTP_PARSE_INCOMPLETE)
            break;
    }
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 64 + 1;
    size--;
    char *stream = malloc(size ? size : 1);
    if (!stream)
        return 0;
    memcpy(stream, data + 1, size);

    for (size_t off = 0; off < size;) {
        struct http_parser whole, steps;
        size_t used = 0;
        http_parser_init(&whole);
        enum http_parse_result r = http_parse(&whole, stream + off, size - off);
        enum http_parse_result r2 = parse_in_steps(stream + off, size - off, step, &steps, &used);
        check(r == r2);
        if (r == HTTP_PARSE_ERROR) {
            int s = whole.error_status;
            check(s == steps.error_status);
            check(s == 400 || s == 411 || s == 413 || s == 505);
            check(whole.error_reason != NULL);
        }
        if (r != HTTP_PARSE_COMPLETE)
            break;
        check_request(&whole, stream + off, size - off);
        check(used == whole.req.total_len);
        check(whole.req.host_len == steps.req.host_len &&
              whole.req.content_type_len == steps.req.content_type_len &&
              whole.req.has_origin == steps.req.has_origin);
        check_guard(&whole.req);
        off += whole.req.total_len;
    }
    free(stream);
    return 0;
}
