/*
 * Unit tests of the incremental HTTP/1.x request parser (src/cli/http.c):
 * whole and byte-by-byte input, pipelining, a buffer that moves between
 * calls, bad request lines and header fields, the head and body limits,
 * Content-Length forms, framing conflicts, and the keep-alive rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/http.h"

static enum http_parse_result parse_str(struct http_parser *p, const char *s)
{
    http_parser_init(p);
    return http_parse(p, s, strlen(s));
}

static void expect_error(const char *s, int status)
{
    struct http_parser p;
    enum http_parse_result r = parse_str(&p, s);
    if (r != HTTP_PARSE_ERROR || p.error_status != status)
        fail_msg("request %.60s: result %d status %d, expected error %d", s, r, p.error_status,
                 status);
    assert_non_null(p.error_reason);
}

static void test_simple_get(void **state)
{
    (void)state;
    struct http_parser p;
    const char *s = "GET /vm/state HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n";

    assert_int_equal(parse_str(&p, s), HTTP_PARSE_COMPLETE);
    assert_int_equal(p.req.method, HTTP_METHOD_GET);
    assert_int_equal(p.req.method_len, 3);
    assert_memory_equal(p.req.method_str, "GET", 3);
    assert_int_equal(p.req.target_len, strlen("/vm/state"));
    assert_memory_equal(p.req.target, "/vm/state", p.req.target_len);
    assert_int_equal(p.req.version_minor, 1);
    assert_true(p.req.keep_alive);
    assert_true(p.req.has_host);
    assert_false(p.req.has_content_length);
    assert_int_equal(p.req.content_length, 0);
    assert_int_equal(p.req.head_len, strlen(s));
    assert_int_equal(p.req.total_len, strlen(s));
}

static void test_methods(void **state)
{
    (void)state;
    struct http_parser p;
    assert_int_equal(parse_str(&p, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"), HTTP_PARSE_COMPLETE);
    assert_int_equal(p.req.method, HTTP_METHOD_HEAD);
    assert_int_equal(parse_str(&p, "POST / HTTP/1.1\r\nHost: x\r\n\r\n"), HTTP_PARSE_COMPLETE);
    assert_int_equal(p.req.method, HTTP_METHOD_POST);
    assert_int_equal(parse_str(&p, "PATCH / HTTP/1.1\r\nHost: x\r\n\r\n"), HTTP_PARSE_COMPLETE);
    assert_int_equal(p.req.method, HTTP_METHOD_OTHER);
    assert_memory_equal(p.req.method_str, "PATCH", 5);
    /* Methods are case-sensitive: "get" is some other method. */
    assert_int_equal(parse_str(&p, "get / HTTP/1.1\r\nHost: x\r\n\r\n"), HTTP_PARSE_COMPLETE);
    assert_int_equal(p.req.method, HTTP_METHOD_OTHER);
}

/* Every proper prefix is INCOMPLETE; the whole is COMPLETE. */
static void check_bytewise(const char *s, size_t body_len)
{
    size_t len = strlen(s);
    char *buf = malloc(len);
    struct http_parser p;

    assert_non_null(buf);
    http_parser_init(&p);
    for (size_t n = 1; n <= len; n++) {
        /* A fresh copy each time: nothing may be read beyond n. */
        memcpy(buf, s, n);
        enum http_parse_result r = http_parse(&p, buf, n);
        if (n < len && r != HTTP_PARSE_INCOMPLETE)
            fail_msg("prefix of %zu bytes: result %d (status %d)", n, r, p.error_status);
        if (n == len)
            assert_int_equal(r, HTTP_PARSE_COMPLETE);
    }
    assert_int_equal(p.req.total_len, len);
    assert_int_equal(p.req.content_length, body_len);
    assert_memory_equal(p.req.body, s + len - body_len, body_len);
    free(buf);
}

static void test_byte_by_byte(void **state)
{
    (void)state;
    check_bytewise("GET /vm/inspect HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    check_bytewise("POST /vm/state HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\n"
                   "{\"state\":\"Stop\"}",
                   16);
    check_bytewise("GET / HTTP/1.0\n\n", 0);
    check_bytewise("\r\n\r\nGET / HTTP/1.0\r\n\r\n", 0);
}

static void test_pipelined(void **state)
{
    (void)state;
    const char buf[] = "POST /vm/state HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                       "GET /vm/state HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /vm/insp";
    size_t len = sizeof(buf) - 1, off = 0;
    struct http_parser p;

    http_parser_init(&p);
    assert_int_equal(http_parse(&p, buf, len), HTTP_PARSE_COMPLETE);
    assert_int_equal(p.req.method, HTTP_METHOD_POST);
    assert_memory_equal(p.req.body, "hello", 5);
    off += p.req.total_len;

    http_parser_init(&p);
    assert_int_equal(http_parse(&p, buf + off, len - off), HTTP_PARSE_COMPLETE);
    assert_int_equal(p.req.method, HTTP_METHOD_GET);
    assert_memory_equal(p.req.target, "/vm/state", 9);
    off += p.req.total_len;

    http_parser_init(&p);
    assert_int_equal(http_parse(&p, buf + off, len - off), HTTP_PARSE_INCOMPLETE);
}

static void test_body_pending_and_expect_continue(void **state)
{
    (void)state;
    const char *head = "POST /vm/state HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\n"
                       "Content-Length: 16\r\n\r\n";
    struct http_parser p;

    assert_int_equal(parse_str(&p, head), HTTP_PARSE_INCOMPLETE);
    assert_true(http_head_done(&p));
    assert_true(p.req.expect_continue);
    assert_int_equal(p.req.head_len, strlen(head));
    assert_int_equal(p.req.total_len, strlen(head) + 16);

    assert_int_equal(parse_str(&p, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"),
                     HTTP_PARSE_INCOMPLETE);
    assert_false(http_head_done(&p));
}

/* The connection's buffer may be reallocated between calls. */
static void test_buffer_moves_between_calls(void **state)
{
    (void)state;
    const char *s = "POST /vm/state HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody";
    size_t len = strlen(s);
    char *a = malloc(len), *b = malloc(len);
    struct http_parser p;

    assert_non_null(a);
    assert_non_null(b);
    memcpy(a, s, len - 2);
    http_parser_init(&p);
    assert_int_equal(http_parse(&p, a, len - 2), HTTP_PARSE_INCOMPLETE);
    assert_true(http_head_done(&p));
    memcpy(b, s, len);
    memset(a, 'Z', len - 2);
    assert_int_equal(http_parse(&p, b, len), HTTP_PARSE_COMPLETE);
    assert_ptr_equal(p.req.method_str, b);
    assert_ptr_equal(p.req.target, b + 5);
    assert_memory_equal(p.req.target, "/vm/state", 9);
    assert_ptr_equal(p.req.body, b + len - 4);
    free(a);
    free(b);
}

static void test_bad_request_lines(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "GARBAGE\r\n\r\n",
        "GET\r\n\r\n",
        "GET /vm/state\r\n\r\n",
        " GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /  HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
        "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET vm/state HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET * HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
        "G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1x\r\nHost: x\r\n\r\n",
        "GET / HTTP/11\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.a\r\nHost: x\r\n\r\n",
        "GET / HTTPS/1.1\r\nHost: x\r\n\r\n",
        "GET / http/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\r\nHost: x\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i], 400);
    expect_error("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
    expect_error("GET / HTTP/0.9\r\n\r\n", 505);
}

/* The request line is judged as soon as it ends, not when the head does. */
static void test_garbage_is_refused_early(void **state)
{
    (void)state;
    expect_error("\x16\x03\x01\x02\x05\x01\x11\x01\xfc\x03\x03\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: x\r\n\x01\x02\r\n", 400);
}

static void test_higher_minor_version_is_11(void **state)
{
    (void)state;
    struct http_parser p;
    assert_int_equal(parse_str(&p, "GET / HTTP/1.7\r\nHost: x\r\n\r\n"), HTTP_PARSE_COMPLETE);
    assert_int_equal(p.req.version_minor, 1);
}

static void test_bad_header_fields(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n: empty-name\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nName : space-before-colon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nN@me: v\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX: a\x01\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n continued\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n\tcontinued\r\n\r\n",
        "GET / HTTP/1.1\r\n Host: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", /* 1.1 without Host */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i], 400);

    /* A NUL is a control byte like any other, wherever it is. */
    static const char nul_in_value[] = "GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n";
    struct http_parser p;
    http_parser_init(&p);
    assert_int_equal(http_parse(&p, nul_in_value, sizeof(nul_in_value) - 1), HTTP_PARSE_ERROR);
    assert_int_equal(p.error_status, 400);
}

static void test_good_header_fields(void **state)
{
    (void)state;
    struct http_parser p;
    /* obs-text, tabs, empty values, odd but valid names, OWS around values. */
    assert_int_equal(parse_str(&p, "GET / HTTP/1.1\r\nHost: x\r\nX-\xc3\xa9t\xc3\xa9: ok\r\n\r\n"),
                     HTTP_PARSE_ERROR); /* a name must be a token */
    assert_int_equal(parse_str(&p, "GET / HTTP/1.1\r\nhOsT:x\r\nX: caf\xc3\xa9\t1\r\nE:\r\n"
                                   "!#$%&'*+-.^_`|~09az: v\r\ncontent-LENGTH:\t 3 \t\r\n\r\nabc"),
                     HTTP_PARSE_COMPLETE);
    assert_true(p.req.has_host);
    assert_int_equal(p.req.content_length, 3);
    assert_memory_equal(p.req.body, "abc", 3);
}

static void test_content_length(void **state)
{
    (void)state;
    struct http_parser p;
    char req[256];

    assert_int_equal(parse_str(&p, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0017\r\n\r\n"),
                     HTTP_PARSE_INCOMPLETE);
    assert_int_equal(p.req.content_length, 17);
    assert_int_equal(parse_str(&p, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
                     HTTP_PARSE_COMPLETE);
    assert_true(p.req.has_content_length);
    assert_int_equal(p.req.content_length, 0);

    snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",
             HTTP_MAX_BODY_BYTES);
    assert_int_equal(parse_str(&p, req), HTTP_PARSE_INCOMPLETE);
    assert_int_equal(p.req.content_length, HTTP_MAX_BODY_BYTES);
    snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",
             HTTP_MAX_BODY_BYTES + 1);
    expect_error(req, 413);

    /* Values that overflow 64 bits are too large, not wrapped to small ones. */
    expect_error("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n", 413);
    expect_error("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551621\r\n\r\n", 413);
    expect_error("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: "
                 "99999999999999999999999999999999999999999999999999\r\n\r\n",
                 413);

    static const char *const bad[] = {
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i], 400);
    expect_error("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 411);
    expect_error("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", 411);
}

static void test_head_limit(void **state)
{
    (void)state;
    const char *start = "GET / HTTP/1.1\r\nHost: x\r\nX: ";
    const char *end = "\r\n\r\n";
    size_t fill = HTTP_MAX_HEAD_BYTES - strlen(start) - strlen(end);
    char *buf = malloc(HTTP_MAX_HEAD_BYTES + 2);
    struct http_parser p;

    assert_non_null(buf);
    /* Exactly at the limit: served. */
    strcpy(buf, start);
    memset(buf + strlen(start), 'a', fill);
    strcpy(buf + strlen(start) + fill, end);
    assert_int_equal(strlen(buf), HTTP_MAX_HEAD_BYTES);
    assert_int_equal(parse_str(&p, buf), HTTP_PARSE_COMPLETE);

    /* One byte more: 413, whether or not the end has arrived. */
    strcpy(buf, start);
    memset(buf + strlen(start), 'a', fill + 1);
    strcpy(buf + strlen(start) + fill + 1, end);
    expect_error(buf, 413);
    buf[HTTP_MAX_HEAD_BYTES] = '\0';
    expect_error(buf, 413);

    /* Without any line end at all. */
    memset(buf, 'A', HTTP_MAX_HEAD_BYTES);
    buf[HTTP_MAX_HEAD_BYTES] = '\0';
    expect_error(buf, 413);
    buf[HTTP_MAX_HEAD_BYTES - 1] = '\0';
    assert_int_equal(parse_str(&p, buf), HTTP_PARSE_INCOMPLETE);

    /* Empty lines before the request count too. */
    memset(buf, '\n', HTTP_MAX_HEAD_BYTES);
    buf[HTTP_MAX_HEAD_BYTES] = '\0';
    expect_error(buf, 413);
    free(buf);
}

static void test_too_many_fields(void **state)
{
    (void)state;
    char buf[4096];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 1; i < HTTP_MAX_HEADER_FIELDS; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X%d: v\r\n", i);
    snprintf(buf + n, sizeof(buf) - n, "\r\n");
    struct http_parser p;
    assert_int_equal(parse_str(&p, buf), HTTP_PARSE_COMPLETE);
    snprintf(buf + n, sizeof(buf) - n, "Y: v\r\n\r\n");
    expect_error(buf, 413);
}

static void test_keep_alive_rules(void **state)
{
    (void)state;
    static const struct {
        const char *req;
        bool keep_alive;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: CLOSE\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade,close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct http_parser p;
        assert_int_equal(parse_str(&p, cases[i].req), HTTP_PARSE_COMPLETE);
        if (p.req.keep_alive != cases[i].keep_alive)
            fail_msg("%s: keep_alive %d", cases[i].req, p.req.keep_alive);
    }
}

static void test_leading_empty_lines_and_bare_lf(void **state)
{
    (void)state;
    struct http_parser p;
    const char *s = "\r\n\n\r\nGET /vm/state HTTP/1.1\nHost: x\n\n";
    assert_int_equal(parse_str(&p, s), HTTP_PARSE_COMPLETE);
    assert_int_equal(p.req.total_len, strlen(s));
    assert_memory_equal(p.req.target, "/vm/state", 9);
    assert_int_equal(parse_str(&p, "\r\n\r\n"), HTTP_PARSE_INCOMPLETE);
}

static void test_errors_are_sticky(void **state)
{
    (void)state;
    struct http_parser p;
    const char *s = "BAD\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(parse_str(&p, s), HTTP_PARSE_ERROR);
    assert_int_equal(http_parse(&p, s, strlen(s)), HTTP_PARSE_ERROR);
    assert_int_equal(p.error_status, 400);
}

/* The fields rest.c judges callers by: handed back, trimmed, never judged here. */
static void test_caller_fields(void **state)
{
    (void)state;
    struct http_parser p;
    assert_int_equal(parse_str(&p,
                               "GET / HTTP/1.1\r\nHOST:  Example:80 \r\nORIGIN: null\r\n"
                               "content-type:\ttext/plain\t\r\nSec-Fetch-Site: cross-site\r\n\r\n"),
                     HTTP_PARSE_COMPLETE);
    assert_int_equal(p.req.host_len, strlen("Example:80"));
    assert_memory_equal(p.req.host, "Example:80", p.req.host_len);
    assert_true(p.req.has_origin);
    assert_int_equal(p.req.content_type_len, strlen("text/plain"));
    assert_memory_equal(p.req.content_type, "text/plain", p.req.content_type_len);
    assert_int_equal(p.req.fetch_site_len, strlen("cross-site"));
    assert_memory_equal(p.req.fetch_site, "cross-site", p.req.fetch_site_len);
    /* Absent: NULL and false. */
    assert_int_equal(parse_str(&p, "GET / HTTP/1.0\r\n\r\n"), HTTP_PARSE_COMPLETE);
    assert_null(p.req.host);
    assert_null(p.req.content_type);
    assert_null(p.req.fetch_site);
    assert_false(p.req.has_origin);
    /* An empty Host is there, with no bytes. */
    assert_int_equal(parse_str(&p, "GET / HTTP/1.1\r\nHost:\r\n\r\n"), HTTP_PARSE_COMPLETE);
    assert_true(p.req.has_host);
    assert_int_equal(p.req.host_len, 0);
    /* Two Content-Types: which one was checked? Neither: 400. */
    expect_error("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Content-Type: text/plain\r\nContent-Length: 0\r\n\r\n",
                 400);
}

static void test_status_reasons(void **state)
{
    (void)state;
    assert_string_equal(http_status_reason(200), "OK");
    assert_string_equal(http_status_reason(400), "Bad Request");
    assert_string_equal(http_status_reason(404), "Not Found");
    assert_string_equal(http_status_reason(405), "Method Not Allowed");
    assert_string_equal(http_status_reason(408), "Request Timeout");
    assert_string_equal(http_status_reason(409), "Conflict");
    assert_string_equal(http_status_reason(411), "Length Required");
    assert_string_equal(http_status_reason(403), "Forbidden");
    assert_string_equal(http_status_reason(413), "Content Too Large");
    assert_string_equal(http_status_reason(415), "Unsupported Media Type");
    assert_string_equal(http_status_reason(505), "HTTP Version Not Supported");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_body_pending_and_expect_continue),
        cmocka_unit_test(test_buffer_moves_between_calls),
        cmocka_unit_test(test_bad_request_lines),
        cmocka_unit_test(test_garbage_is_refused_early),
        cmocka_unit_test(test_higher_minor_version_is_11),
        cmocka_unit_test(test_bad_header_fields),
        cmocka_unit_test(test_good_header_fields),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_head_limit),
        cmocka_unit_test(test_too_many_fields),
        cmocka_unit_test(test_keep_alive_rules),
        cmocka_unit_test(test_leading_empty_lines_and_bare_lf),
        cmocka_unit_test(test_errors_are_sticky),
        cmocka_unit_test(test_caller_fields),
        cmocka_unit_test(test_status_reasons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
