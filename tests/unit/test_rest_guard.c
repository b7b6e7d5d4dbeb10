/*
 * Unit tests of who may call the REST service (rest.h, "Who may call"):
 * rest_host_allowed() over tables of Host values (names, ports, IPv6
 * brackets, case, loopback and foreign literals, malformed ones) for a
 * loopback, a named, a wildcard and a UNIX listener, and
 * rest_request_check() over whole parsed requests (Origin,
 * Sec-Fetch-Site, Content-Type), so the header plumbing is covered too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cli/http.h"
#include "cli/rest.h"

struct host_case {
    const char *host;
    bool allowed;
};

static void check_hosts(const struct rest_guard *g, const struct host_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool got = rest_host_allowed(g, cases[i].host, strlen(cases[i].host));
        if (got != cases[i].allowed)
            fail_msg("listen %s: Host \"%s\" %s, expected %s",
                     g->listen_name ? g->listen_name : "(none)", cases[i].host,
                     got ? "allowed" : "refused", cases[i].allowed ? "allowed" : "refused");
    }
}

/* Allowed whatever the listener (loopback names and literals, any port). */
static const struct host_case loopback_cases[] = {
    {"localhost", true},
    {"localhost:8081", true},
    {"LOCALHOST:8081", true},
    {"LocalHost", true},
    {"localhost:", true}, /* empty port: RFC 3986 allows it */
    {"127.0.0.1", true},
    {"127.0.0.1:8081", true},
    {"127.1.2.3:1", true},
    {"127.255.255.255", true},
    {"[::1]", true},
    {"[::1]:8081", true},
    {"[0:0:0:0:0:0:0:1]:80", true},
    {"[::ffff:127.0.0.1]:8081", true},
    /* DNS rebinding: the attacker's own name */
    {"evil.example", false},
    {"evil.example:8081", false},
    {"localhost.evil.example", false},
    {"localhostx", false},
    {"xlocalhost", false},
    {"localhost.", false},
    /* foreign or odd literals */
    {"128.0.0.1", false},
    {"192.0.2.1:8081", false},
    {"0.0.0.0", false},
    {"[::2]", false},
    {"[::ffff:192.0.2.1]", false},
    {"127.1", false}, /* not a dotted quad: a name, and not ours */
    {"2130706433", false},
    /* malformed */
    {"", false},
    {":8081", false},
    {"[]:8081", false},
    {"[::1", false},
    {"[::1]x", false},
    {"[::1]8081", false},
    {"::1", false}, /* IPv6 literal without brackets */
    {"::1:8081", false},
    {"[localhost]", false},
    {"localhost:80a", false},
    {"localhost:123456", false},
    {"localhost:8081:1", false},
    {"127.0.0.1 ", false},
    {"localhost@evil", false},
};

static void test_loopback_listener(void **state)
{
    (void)state;
    struct rest_guard g = {.listen_name = "127.0.0.1"};
    check_hosts(&g, loopback_cases, sizeof(loopback_cases) / sizeof(loopback_cases[0]));
    g.listen_name = "localhost";
    check_hosts(&g, loopback_cases, sizeof(loopback_cases) / sizeof(loopback_cases[0]));
    g.listen_name = NULL;
    check_hosts(&g, loopback_cases, sizeof(loopback_cases) / sizeof(loopback_cases[0]));
}

/* A name that resolved to loopback only: it, any case, any port. */
static void test_named_listener(void **state)
{
    (void)state;
    struct rest_guard g = {.listen_name = "vm-api.local"};
    static const struct host_case cases[] = {
        {"vm-api.local", true},       {"VM-API.local:8081", true}, {"localhost:8081", true},
        {"vm-api.local.evil", false}, {"api.local", false},        {"vm-api", false},
        {"[vm-api.local]", false},
    };
    check_hosts(&g, cases, sizeof(cases) / sizeof(cases[0]));
}

/* An explicit non-loopback literal: its own address is a good Host. */
static void test_literal_listener(void **state)
{
    (void)state;
    struct rest_guard g = {.listen_name = "192.0.2.1"};
    static const struct host_case v4[] = {
        {"192.0.2.1:8081", true}, {"192.0.2.1", true}, {"192.0.2.2:8081", false},
        {"evil.example", false},  {"127.0.0.1", true},
    };
    check_hosts(&g, v4, sizeof(v4) / sizeof(v4[0]));
    g.listen_name = "2001:db8::1";
    static const struct host_case v6[] = {
        {"[2001:db8::1]:8081", true}, {"[2001:DB8:0::1]", true}, /* the same address written
                                                                    otherwise */
        {"[2001:db8::2]", false},     {"2001:db8::1", false},    {"[::1]", true},
    };
    check_hosts(&g, v6, sizeof(v6) / sizeof(v6[0]));
}

/* 0.0.0.0 or ::: any IP literal, still no foreign name. */
static void test_wildcard_listener(void **state)
{
    (void)state;
    struct rest_guard g = {.listen_name = "0.0.0.0", .any_ip_literal = true};
    static const struct host_case cases[] = {
        {"192.0.2.7:8081", true}, {"[2001:db8::5]:8081", true}, {"10.0.0.1", true},
        {"localhost", true},      {"evil.example:8081", false}, {"myhost", false},
        {"[myhost]", false},
    };
    check_hosts(&g, cases, sizeof(cases) / sizeof(cases[0]));
}

struct req_case {
    const char *request;
    bool unix_socket;
    int status; /* 0: served */
};

static void test_request_check(void **state)
{
    (void)state;
    static const struct req_case cases[] = {
        /* podman's Go client: Host localhost:PORT, no Content-Type */
        {"POST /vm/state HTTP/1.1\r\nHost: localhost:8081\r\nUser-Agent: Go-http-client/1.1\r\n"
         "Content-Length: 2\r\nAccept-Encoding: gzip\r\n\r\n{}",
         false, 0},
        /* curl -d: application/x-www-form-urlencoded */
        {"POST /vm/state HTTP/1.1\r\nHost: 127.0.0.1:8081\r\nContent-Type: "
         "application/x-www-form-urlencoded\r\nContent-Length: 2\r\n\r\n{}",
         false, 0},
        {"POST /vm/state HTTP/1.1\r\nHost: [::1]:8081\r\nContent-Type: application/json; "
         "charset=utf-8\r\nContent-Length: 2\r\n\r\n{}",
         false, 0},
        {"GET /vm/state HTTP/1.0\r\n\r\n", false, 0}, /* no Host at all (1.0) */
        {"GET /vm/state HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: none\r\n\r\n", false, 0},
        /* a browser page: Origin (any value), whatever else */
        {"POST /vm/state HTTP/1.1\r\nHost: localhost:8081\r\nOrigin: https://evil.example\r\n"
         "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}",
         false, 403},
        {"POST /vm/state HTTP/1.1\r\nHost: localhost:8081\r\nOrigin: null\r\nContent-Length: "
         "2\r\n\r\n{}",
         false, 403},
        {"GET /vm/inspect HTTP/1.1\r\nHost: localhost\r\norigin: http://localhost:8081\r\n\r\n",
         false, 403},
        {"GET /vm/inspect HTTP/1.1\r\nHost: x\r\nOrigin:\r\n\r\n", true, 403},
        {"GET /vm/inspect HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: cross-site\r\n\r\n", false,
         403},
        {"GET /vm/inspect HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: same-origin\r\n\r\n",
         false, 403},
        /* DNS rebinding: the page's own name in Host */
        {"GET /vm/inspect HTTP/1.1\r\nHost: rebind.evil.example:8081\r\n\r\n", false, 403},
        {"GET /vm/inspect HTTP/1.1\r\nHost:\r\n\r\n", false, 403},
        /* over a UNIX socket any Host is fine (vfkit's tests: "vfkit"; curl: "d") */
        {"GET /vm/inspect HTTP/1.1\r\nHost: vfkit\r\n\r\n", true, 0},
        {"GET /vm/inspect HTTP/1.1\r\nHost: d\r\n\r\n", true, 0},
        /* form bodies a page can send without a preflight */
        {"POST /vm/state HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
         "Content-Length: 2\r\n\r\n{}",
         false, 415},
        {"POST /vm/state HTTP/1.1\r\nHost: localhost\r\nContent-Type: TEXT/PLAIN;charset=UTF-8\r\n"
         "Content-Length: 2\r\n\r\n{}",
         false, 415},
        {"POST /vm/state HTTP/1.1\r\nHost: d\r\nContent-Type: multipart/form-data; boundary=x\r\n"
         "Content-Length: 2\r\n\r\n{}",
         true, 415},
        /* a GET's Content-Type is no one's business */
        {"GET /vm/state HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n\r\n", false, 0},
    };
    struct rest_guard tcp = {.listen_name = "localhost"};
    struct rest_guard unix_g = {.unix_socket = true};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct http_parser p;
        http_parser_init(&p);
        const char *s = cases[i].request;
        if (http_parse(&p, s, strlen(s)) != HTTP_PARSE_COMPLETE)
            fail_msg("case %zu does not parse: %s", i, p.error_reason);
        const char *why = NULL;
        int st = rest_request_check(cases[i].unix_socket ? &unix_g : &tcp, &p.req, &why);
        if (st != cases[i].status)
            fail_msg("case %zu (%.50s...): status %d, expected %d", i, s, st, cases[i].status);
        if (st)
            assert_non_null(why);
    }
}

/* The parser hands back Host and Content-Type even after the buffer moved. */
static void test_fields_follow_a_moved_buffer(void **state)
{
    (void)state;
    static const char req[] =
        "POST /vm/state HTTP/1.1\r\nHost: localhost:9\r\nContent-Type: "
        "application/json\r\nSec-Fetch-Site: none\r\nContent-Length: 4\r\n\r\n";
    char a[sizeof(req) + 4], b[sizeof(req) + 4];
    struct http_parser p;
    http_parser_init(&p);
    memcpy(a, req, sizeof(req) - 1);
    assert_int_equal(http_parse(&p, a, sizeof(req) - 1), HTTP_PARSE_INCOMPLETE);
    memcpy(b, req, sizeof(req) - 1);
    memcpy(b + sizeof(req) - 1, "null", 4);
    memset(a, 'Z', sizeof(a));
    assert_int_equal(http_parse(&p, b, sizeof(req) + 3), HTTP_PARSE_COMPLETE);
    assert_int_equal(p.req.host_len, strlen("localhost:9"));
    assert_memory_equal(p.req.host, "localhost:9", p.req.host_len);
    assert_int_equal(p.req.content_type_len, strlen("application/json"));
    assert_memory_equal(p.req.content_type, "application/json", p.req.content_type_len);
    assert_memory_equal(p.req.fetch_site, "none", 4);
    assert_false(p.req.has_origin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback_listener),
        cmocka_unit_test(test_named_listener),
        cmocka_unit_test(test_literal_listener),
        cmocka_unit_test(test_wildcard_listener),
        cmocka_unit_test(test_request_check),
        cmocka_unit_test(test_fields_follow_a_moved_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
