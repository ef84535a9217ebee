/* test_httpd_parse.c — runtime/httpd_parse.h: tables of good and bad
 * heads, the early check of partial heads, chunked bodies fed whole and
 * byte by byte. Pure functions, no sockets.
 */
#include <stdio.h>
#include <string.h>

#include "runtime/httpd_parse.h"
#include "testing/lib/th.h"

/* ---- parser ------------------------------------------------------------ */

/* Finds the head in text and parses it with fn; 1 when incomplete. */
static int parse_with(int (*fn)(char *, size_t, httpd_head *), const char *text, httpd_head *h)
{
    static char b[8192];
    size_t len = strlen(text), scan = 0;
    memcpy(b, text, len);
    size_t end = httpd_head_end(b, len, &scan);
    if (end == 0) return 1;
    return fn(b, end, h);
}

static int parse(const char *text, httpd_head *h) { return parse_with(httpd_parse_head, text, h); }

static int parse_response(const char *text, httpd_head *h)
{
    return parse_with(httpd_parse_response_head, text, h);
}

/* Response heads (the exporter's client): the status, framing and
 * keep-alive; what a client must refuse. */
static void t_parse_response(void)
{
    static httpd_head h;
    TH_ASSERT_EQ_INT(parse_response("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n"
                                    "Content-Length: 4\r\nContent-Encoding: gzip\r\n"
                                    "Expect: nonsense\r\n\r\n", &h), 0);
    TH_ASSERT_EQ_INT(h.status, 503);
    TH_ASSERT(h.method == NULL && h.path == NULL);
    TH_ASSERT_EQ_INT(h.content_length, 4);
    TH_ASSERT_EQ_INT(h.keep_alive, 1);
    TH_ASSERT_EQ_STR(httpd_head_field(&h, "retry-after"), "7");
    TH_ASSERT_EQ_INT(parse_response("HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n", &h), 0);
    TH_ASSERT_EQ_INT(h.status, 200);
    TH_ASSERT_EQ_INT(h.chunked, 1);
    TH_ASSERT_EQ_INT(h.content_length, -1);
    TH_ASSERT_EQ_INT(parse_response("HTTP/1.0 204 No Content\n\n", &h), 0);
    TH_ASSERT_EQ_INT(h.keep_alive, 0);
    TH_ASSERT_EQ_INT(parse_response("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", &h), 0);
    TH_ASSERT_EQ_INT(h.keep_alive, 0);
    TH_ASSERT_EQ_INT(parse_response("HTTP/1.1 100 Continue\r\n\r\n", &h), 0);
    TH_ASSERT_EQ_INT(h.status, 100);
    static const struct { const char *text; int rc; } bad[] = {
        {"HTTP/1.1 2000 OK\r\n\r\n", -400},
        {"HTTP/1.1 20 OK\r\n\r\n", -400},
        {"HTTP/1.1 099 Low\r\n\r\n", -400},
        {"HTTP/1.1 600 High\r\n\r\n", -400},
        {"HTTP/1.1 2x0 OK\r\n\r\n", -400},
        {"HTTP/1.1\r\n\r\n", -400},
        {"HTTP/2.0 200 OK\r\n\r\n", -505},
        {"HTP/1.1 200 OK\r\n\r\n", -400},
        {"HTTP/1.1 200 O\x01K\r\n\r\n", -400},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", -400},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", -400},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", -501},
        {"HTTP/1.1 200 OK\r\n folded\r\n\r\n", -400},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TH_ASSERT_MSG(parse_response(bad[i].text, &h) == bad[i].rc, "%s: want %d", bad[i].text,
                      bad[i].rc);
    /* A request line is not a status line, nor the other way round. */
    TH_ASSERT(parse_response("POST / HTTP/1.1\r\n\r\n", &h) != 0);
    TH_ASSERT(parse("HTTP/1.1 200 OK\r\n\r\n", &h) != 0);
}

static void t_parse_good(void)
{
    static httpd_head h;
    TH_ASSERT_EQ_INT(parse("POST /v1/traces?x=1 HTTP/1.1\r\nHost: a\r\n"
                           "content-LENGTH: 12\r\nX-Empty:\r\n\r\n", &h), 0);
    TH_ASSERT_EQ_STR(h.method, "POST");
    TH_ASSERT_EQ_STR(h.path, "/v1/traces");
    TH_ASSERT_EQ_STR(h.query, "x=1");
    TH_ASSERT_EQ_INT(h.content_length, 12);
    TH_ASSERT_EQ_INT(h.keep_alive, 1);
    TH_ASSERT_EQ_STR(httpd_head_field(&h, "Content-Length"), "12");
    TH_ASSERT_EQ_STR(httpd_head_field(&h, "x-empty"), "");
    TH_ASSERT(httpd_head_field(&h, "nope") == NULL);
    TH_ASSERT_EQ_INT(parse("GET / HTTP/1.0\nConnection: Keep-Alive\n\n", &h), 0);
    TH_ASSERT_EQ_INT(h.minor, 0);
    TH_ASSERT_EQ_INT(h.keep_alive, 1);
    TH_ASSERT_EQ_INT(parse("GET / HTTP/1.0\r\n\r\n", &h), 0);
    TH_ASSERT_EQ_INT(h.keep_alive, 0);
    TH_ASSERT_EQ_INT(parse("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n", &h), 0);
    TH_ASSERT_EQ_INT(h.keep_alive, 0);
    TH_ASSERT_EQ_INT(parse("GET http://host:1/a/b?q HTTP/1.1\r\n\r\n", &h), 0);
    TH_ASSERT_EQ_STR(h.path, "/a/b");
    TH_ASSERT_EQ_INT(parse("GET http://host HTTP/1.1\r\n\r\n", &h), 0);
    TH_ASSERT_EQ_STR(h.path, "/");
    TH_ASSERT_EQ_INT(parse("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n"
                           "Expect: 100-continue\r\nV:  a b \t\r\n\r\n", &h), 0);
    TH_ASSERT_EQ_INT(h.chunked, 1);
    TH_ASSERT_EQ_INT(h.expect_continue, 1);
    TH_ASSERT_EQ_STR(httpd_head_field(&h, "v"), "a b");
    TH_ASSERT_EQ_INT(parse("GET / HTTP/1.1\r\nHost: a\r\n", &h), 1);
}

static void t_parse_bad(void)
{
    static const struct {
        const char *text;
        int want;
    } cases[] = {
        {"GET /\r\n\r\n", -400},
        {"GET  / HTTP/1.1\r\n\r\n", -400},
        {"G(T / HTTP/1.1\r\n\r\n", -400},
        {"GET / HTTP/2.0\r\n\r\n", -505},
        {"GET / HTTP/1.2\r\n\r\n", -505},
        {"GETGETGETGETGETGETGETGETGETGETGETG / HTTP/1.1\r\n\r\n", -400}, /* method over 32 */
        {"POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Encoding: zstd\r\n\r\n", -400},
        {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", -505},
        {"GET / HTTP/1.1x\r\n\r\n", -400},
        {"GET / FTP/1.1\r\n\r\n", -400},
        {"GET x HTTP/1.1\r\n\r\n", -400},
        {"GET /a\x01 HTTP/1.1\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -501},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
         -400},
        {"POST / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", -417},
    };
    static httpd_head h;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = parse(cases[i].text, &h);
        TH_ASSERT_MSG(rc == cases[i].want, "case %zu: %d, want %d", i, rc, cases[i].want);
    }
    /* more fields than HTTPD_MAX_HEADERS */
    static char many[8192];
    size_t n = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= HTTPD_MAX_HEADERS; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "h%d: v\r\n", i);
    snprintf(many + n, sizeof many - n, "\r\n");
    TH_ASSERT_EQ_INT(parse(many, &h), -431);
    /* a saturated Content-Length parses (and then fails any cap) */
    TH_ASSERT_EQ_INT(parse("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                           &h), 0);
    TH_ASSERT(h.content_length > (int64_t)1 << 60);
}

/* Heads not complete yet: refused at once when they cannot become one. */
static void t_prefix_check(void)
{
    static const struct {
        const char *text;
        size_t len;
        int want;
    } cases[] = {
        {"P", 1, 0},
        {"POST /v1/traces HTTP/1.", 23, 0},
        {"POST /v1/traces HTTP/1.1\r\nHost: a\r\n", 37, 0},
        {"GET / HTTP/1.0\n", 15, 0},
        {"\x16\x03\x01\x02\x00\x01", 6, -400},       /* TLS ClientHello */
        {"\x00\x01\x02", 3, -400},
        {"GET /\r\n", 7, -400},                        /* HTTP/0.9 */
        {"GET /\n", 6, -400},
        {"GET  /", 6, -400},
        {"GET / FTP/", 10, -400},
        {"GET / HTTP/1.1x", 15, -400},
        {"PRI * HTTP/2.0\r\n", 16, -505},              /* HTTP/2 preface */
        {"GET / HTTP/2", 12, -505},
        {"GET / HTTP/1.2", 14, -505},
        {"GETGETGETGETGETGETGETGETGETGETGETGET", 36, -400}, /* method too long */
        {" GET", 4, -400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = httpd_head_prefix_check(cases[i].text, cases[i].len);
        TH_ASSERT_MSG(rc == cases[i].want, "case %zu: %d, want %d", i, rc, cases[i].want);
    }
}

/* Decodes text as a chunked body, fed in pieces of `step` bytes. */
static int dechunk(const char *text, size_t step, size_t cap, char *out, size_t *out_len,
                   size_t *used)
{
    static uint8_t b[8192];
    size_t len = strlen(text), have = 0;
    httpd_chunked c;
    httpd_chunked_init(&c);
    int rc = 0;
    while (rc == 0 && have < len) {
        size_t n = len - have < step ? len - have : step;
        memcpy(b + have, text + have, n);
        have += n;
        rc = httpd_chunked_step(&c, b, have, cap, 1024);
    }
    if (rc == 1) {
        memcpy(out, b, c.out);
        *out_len = c.out;
        *used = c.in;
    }
    return rc;
}

static void t_chunked(void)
{
    static const char good[] = "5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n"
                               "Trailer-A: x\r\n\r\nNEXT";
    char out[64];
    size_t n = 0, used = 0;
    for (size_t step = 1; step <= sizeof good; step += 3) {
        int rc = dechunk(good, step, 100, out, &n, &used);
        TH_ASSERT_MSG(rc == 1, "step %zu: %d", step, rc);
        TH_ASSERT_EQ_INT(n, 12);
        TH_ASSERT_MEM_EQ(out, "hello world!", 12);
        TH_ASSERT_EQ_INT(used, sizeof good - 1 - 4);
    }
    TH_ASSERT_EQ_INT(dechunk("0\n\n", 1, 10, out, &n, &used), 1);
    TH_ASSERT_EQ_INT(n, 0);
    TH_ASSERT_EQ_INT(dechunk("zz\r\n", 100, 10, out, &n, &used), -400);
    TH_ASSERT_EQ_INT(dechunk("\r\n", 100, 10, out, &n, &used), -400);
    TH_ASSERT_EQ_INT(dechunk("3\r\nabcX\r\n", 100, 10, out, &n, &used), -400);
    TH_ASSERT_EQ_INT(dechunk("8\r\n", 100, 7, out, &n, &used), -413);
    TH_ASSERT_EQ_INT(dechunk("4\r\nabcd\r\n4\r\n", 100, 7, out, &n, &used), -413);
    TH_ASSERT_EQ_INT(dechunk("ffffffffffffffffff\r\n", 100, 7, out, &n, &used), -400);
    TH_ASSERT_EQ_INT(dechunk("0\r\nbad trailer\r\n\r\n", 100, 7, out, &n, &used), -400);
    static char longline[6000];
    memset(longline, 'a', sizeof longline - 1);
    longline[0] = '1';
    longline[1] = ';';
    TH_ASSERT_EQ_INT(dechunk(longline, 1000, 10, out, &n, &used), -400);
}


int main(void)
{
    TH_RUN(t_parse_good);
    TH_RUN(t_parse_bad);
    TH_RUN(t_parse_response);
    TH_RUN(t_prefix_check);
    TH_RUN(t_chunked);
    return th_done();
}
