/*
 * Incremental HTTP/1.x request parser (RFC 9112 2-3 and 6, RFC 9110 5 and
 * 8.6). See http.h for what is accepted. Every byte comes from an untrusted
 * peer: every index is checked against len before it is read.
 */
#include "cli/http.h"

#include <string.h>

void http_parser_init(struct http_parser *p)
{
    memset(p, 0, sizeof(*p));
}

static enum http_parse_result fail(struct http_parser *p, int status, const char *reason)
{
    p->error_status = status;
    p->error_reason = reason;
    return HTTP_PARSE_ERROR;
}

/* RFC 9110 5.6.2 tchar. */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 9110 5.5 field-value bytes: VCHAR, SP, HTAB, obs-text. */
static bool is_field_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool token_equals(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    if (len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (ascii_lower(s[i]) != lit[i])
            return false;
    }
    return true;
}

static enum http_method method_from_token(const char *s, size_t len)
{
    /* Methods are case-sensitive (RFC 9110 9.1). */
    if (len == 3 && memcmp(s, "GET", 3) == 0)
        return HTTP_METHOD_GET;
    if (len == 4 && memcmp(s, "HEAD", 4) == 0)
        return HTTP_METHOD_HEAD;
    if (len == 4 && memcmp(s, "POST", 4) == 0)
        return HTTP_METHOD_POST;
    return HTTP_METHOD_OTHER;
}

static enum http_parse_result parse_request_line(struct http_parser *p, const char *s, size_t len)
{
    struct http_request *r = &p->req;
    size_t i = 0;

    while (i < len && is_tchar((unsigned char)s[i]))
        i++;
    if (i == 0 || i >= len || s[i] != ' ')
        return fail(p, 400, "malformed request method");
    r->method_str = s;
    r->method_len = i;
    r->method = method_from_token(s, i);

    size_t t = ++i;
    while (i < len && (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f)
        i++;
    if (i == t || i >= len || s[i] != ' ')
        return fail(p, 400, "malformed request target");
    if (s[t] != '/')
        return fail(p, 400, "request target is not an absolute path");
    r->target = s + t;
    r->target_len = i - t;

    const char *v = s + i + 1;
    size_t vlen = len - i - 1;
    if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return fail(p, 400, "malformed HTTP version");
    if (v[5] != '1')
        return fail(p, 505, "only HTTP/1.x is supported");
    /* A higher 1.x minor is served as 1.1 (RFC 9110 2.5). */
    r->version_minor = v[7] == '0' ? 0 : 1;
    return HTTP_PARSE_COMPLETE;
}

/* Comma-separated Connection options (RFC 9110 7.6.1). */
static void parse_connection(const char *v, size_t len, bool *close, bool *keep_alive)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ',' || is_ows(v[i])))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',' && !is_ows(v[i]))
            i++;
        if (token_equals(v + start, i - start, "close"))
            *close = true;
        else if (token_equals(v + start, i - start, "keep-alive"))
            *keep_alive = true;
    }
}

static enum http_parse_result parse_field(struct http_parser *p, const char *buf, const char *s,
                                          size_t len)
{
    struct http_head_flags *f = &p->flags;
    struct http_request *r = &p->req;

    if (len > 0 && is_ows(s[0]))
        return fail(p, 400, "obsolete line folding");
    if (++f->n_fields > HTTP_MAX_HEADER_FIELDS)
        return fail(p, 413, "too many header fields");

    size_t i = 0;
    while (i < len && is_tchar((unsigned char)s[i]))
        i++;
    if (i == 0 || i >= len || s[i] != ':')
        return fail(p, 400, "malformed header field");
    const char *name = s;
    size_t name_len = i;

    for (size_t k = i + 1; k < len; k++) {
        if (!is_field_byte((unsigned char)s[k]))
            return fail(p, 400, "invalid byte in header field value");
    }
    const char *v = s + i + 1;
    size_t vlen = len - i - 1;
    while (vlen > 0 && is_ows(v[0])) {
        v++;
        vlen--;
    }
    while (vlen > 0 && is_ows(v[vlen - 1]))
        vlen--;

    if (token_equals(name, name_len, "content-length")) {
        /* Any repeat is refused, even an identical one: two framings of one
         * body are how request smuggling starts. */
        if (r->has_content_length)
            return fail(p, 400, "duplicate Content-Length");
        if (vlen == 0)
            return fail(p, 400, "empty Content-Length");
        uint64_t n = 0;
        for (size_t k = 0; k < vlen; k++) {
            if (v[k] < '0' || v[k] > '9')
                return fail(p, 400, "malformed Content-Length");
            /* Saturate above the limit instead of overflowing. */
            if (n <= HTTP_MAX_BODY_BYTES)
                n = n * 10 + (uint64_t)(v[k] - '0');
        }
        if (n > HTTP_MAX_BODY_BYTES)
            f->content_length_too_big = true;
        r->has_content_length = true;
        r->content_length = n;
    } else if (token_equals(name, name_len, "transfer-encoding")) {
        f->has_transfer_encoding = true;
    } else if (token_equals(name, name_len, "connection")) {
        parse_connection(v, vlen, &f->conn_close, &f->conn_keep_alive);
    } else if (token_equals(name, name_len, "host")) {
        if (r->has_host)
            return fail(p, 400, "duplicate Host");
        r->has_host = true;
        r->host = v;
        r->host_len = vlen;
        p->host_off = (size_t)(v - buf);
    } else if (token_equals(name, name_len, "origin")) {
        r->has_origin = true;
    } else if (token_equals(name, name_len, "content-type")) {
        if (r->content_type)
            return fail(p, 400, "duplicate Content-Type");
        r->content_type = v;
        r->content_type_len = vlen;
        p->content_type_off = (size_t)(v - buf);
    } else if (token_equals(name, name_len, "sec-fetch-site")) {
        /* Only ever one value from a browser; keep the first of any repeat. */
        if (!r->fetch_site) {
            r->fetch_site = v;
            r->fetch_site_len = vlen;
            p->fetch_site_off = (size_t)(v - buf);
        }
    } else if (token_equals(name, name_len, "expect")) {
        if (token_equals(v, vlen, "100-continue"))
            r->expect_continue = true;
    }
    return HTTP_PARSE_COMPLETE;
}

/* The blank line ending the head: checks that need every field. */
static enum http_parse_result finish_head(struct http_parser *p)
{
    struct http_request *r = &p->req;
    const struct http_head_flags *f = &p->flags;

    if (f->has_transfer_encoding) {
        if (r->has_content_length)
            return fail(p, 400, "both Transfer-Encoding and Content-Length");
        return fail(p, 411, "Transfer-Encoding is not supported; send Content-Length");
    }
    if (r->version_minor == 1 && !r->has_host)
        return fail(p, 400, "HTTP/1.1 request without Host");
    if (f->content_length_too_big)
        return fail(p, 413, "request body too large");
    if (r->version_minor == 1)
        r->keep_alive = !f->conn_close;
    else
        r->keep_alive = f->conn_keep_alive && !f->conn_close;
    r->head_len = p->head_len;
    r->total_len = p->head_len + (size_t)r->content_length;
    return HTTP_PARSE_COMPLETE;
}

/* One complete line of the head, without its CRLF or LF, at buf[start]. */
static enum http_parse_result parse_line(struct http_parser *p, const char *buf, size_t start,
                                         size_t n, size_t next)
{
    const char *line = buf + start;
    enum http_parse_result res;

    if (!p->in_request) {
        if (n == 0)
            return HTTP_PARSE_INCOMPLETE; /* an empty line before the request */
        p->in_request = true;
        res = parse_request_line(p, line, n);
        if (res == HTTP_PARSE_COMPLETE) {
            p->method_off = (size_t)(p->req.method_str - buf);
            p->target_off = (size_t)(p->req.target - buf);
            res = HTTP_PARSE_INCOMPLETE;
        }
        return res;
    }
    if (n == 0) {
        p->head_len = next;
        return finish_head(p);
    }
    for (size_t k = 0; k < n; k++) {
        if (line[k] == '\r' || line[k] == '\0')
            return fail(p, 400, "stray CR or NUL in header");
    }
    res = parse_field(p, buf, line, n);
    return res == HTTP_PARSE_COMPLETE ? HTTP_PARSE_INCOMPLETE : res;
}

/*
 * Parse the head line by line from where the last call stopped, so garbage
 * is refused as soon as its line ends. COMPLETE once the blank line is seen.
 */
static enum http_parse_result parse_head(struct http_parser *p, const char *buf, size_t len)
{
    size_t limit = len < HTTP_MAX_HEAD_BYTES ? len : HTTP_MAX_HEAD_BYTES;

    for (size_t i = p->scanned; i < limit; i++) {
        if (buf[i] != '\n')
            continue;
        size_t n = i - p->line_start;
        if (n > 0 && buf[i - 1] == '\r')
            n--;
        p->scanned = i + 1;
        enum http_parse_result res = parse_line(p, buf, p->line_start, n, i + 1);
        p->line_start = i + 1;
        if (res != HTTP_PARSE_INCOMPLETE)
            return res;
    }
    p->scanned = limit;
    if (len >= HTTP_MAX_HEAD_BYTES)
        return fail(p, 413, "request head too large");
    return HTTP_PARSE_INCOMPLETE;
}

enum http_parse_result http_parse(struct http_parser *p, const char *buf, size_t len)
{
    if (p->error_status)
        return HTTP_PARSE_ERROR;
    if (len < p->scanned)
        return fail(p, 400, "request buffer shrank"); /* a caller bug, not a peer's */
    if (!http_head_done(p)) {
        enum http_parse_result res = parse_head(p, buf, len);
        if (res != HTTP_PARSE_COMPLETE)
            return res;
    }
    /* The caller's buffer may have moved since the head was parsed. */
    p->req.method_str = buf + p->method_off;
    p->req.target = buf + p->target_off;
    p->req.body = buf + p->head_len;
    if (p->req.host)
        p->req.host = buf + p->host_off;
    if (p->req.content_type)
        p->req.content_type = buf + p->content_type_off;
    if (p->req.fetch_site)
        p->req.fetch_site = buf + p->fetch_site_off;
    if (len < p->req.total_len)
        return HTTP_PARSE_INCOMPLETE;
    return HTTP_PARSE_COMPLETE;
}

const char *http_status_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}
