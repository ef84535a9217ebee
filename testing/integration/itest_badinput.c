/* itest_badinput.c — the receiver refuses bad input with the right status
 * and body, times out stalled clients, and neither leaks nor stops serving
 * after many bad requests. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testing/lib/th.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define PB "Content-Type: application/x-protobuf\r\n"
#define JS "Content-Type: application/json\r\n"

/* Small body cap and read timeout so the limits are cheap to reach. */
static th_stack *start(void)
{
    th_stack_opts o = {.max_body = "64KiB", .read_timeout = "1s"};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    return s;
}

static const th_resp *post(th_http *c, const char *path, const char *hdr, const void *body,
                           size_t len)
{
    const th_resp *r = th_http_request(c, "POST", path, hdr, body, len);
    TH_ASSERT_MSG(r, "POST %s: %s", path, th_http_error(c));
    return r;
}

static void expect_400(const th_resp *r, int json, const char *what)
{
    char why[512];
    TH_ASSERT_MSG(r->status == 400, "%s: status %d, want 400", what, r->status);
    TH_ASSERT_MSG(th_otlp_check_status_body(r, json, why, sizeof(why)) == 0, "%s: %s", what, why);
}

static void t_garbage_protobuf(void)
{
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0x0a, 0x7f, 0x01, 0x02};
    th_stack *s = start();
    th_http *c = th_stack_client(s);
    expect_400(post(c, "/v1/traces", PB, junk, sizeof(junk)), 0, "garbage protobuf");
}

static void t_truncated_protobuf(void)
{
    th_stack *s = start();
    th_http *c = th_stack_client(s);
    for (int sig = 0; sig < SIG_COUNT; sig++) {
        th_otlp *d = th_otlp_new((sw_signal)sig, 42, 6);
        char path[32];
        TH_ASSERT(d && d->pb_len > 8);
        snprintf(path, sizeof(path), "/v1/%s", sw_signal_name((sw_signal)sig));
        expect_400(post(c, path, PB, d->pb, d->pb_len - 3), 0, sw_signal_name((sw_signal)sig));
    }
    th_mock_stats st;
    TH_ASSERT(th_stack_mock_stats(s, &st) == 0);
    TH_ASSERT_EQ_INT(st.requests[0] + st.requests[1] + st.requests[2], 0);
}

static void t_invalid_json(void)
{
    static const char bad[] = "{\"resourceSpans\": [ {\"scopeSpans\": [";
    th_stack *s = start();
    th_http *c = th_stack_client(s);
    expect_400(post(c, "/v1/traces", JS, bad, strlen(bad)), 1, "invalid JSON");
}

static void t_wrong_json_types(void)
{
    static const char *const bad[] = {
        "{\"resourceSpans\": \"not an array\"}",
        "{\"resourceSpans\": [{\"scopeSpans\": [{\"spans\": [{\"traceId\": 5, \"name\": \"x\"}]}]}]}",
        "{\"resourceLogs\": [{\"scopeLogs\": [{\"logRecords\": [{\"severityNumber\": \"high\"}]}]}]}",
        "[1, 2, 3]",
    };
    static const char *const paths[] = {"/v1/traces", "/v1/traces", "/v1/logs", "/v1/metrics"};
    th_stack *s = start();
    th_http *c = th_stack_client(s);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char what[64];
        snprintf(what, sizeof(what), "wrong JSON types #%zu", i);
        expect_400(post(c, paths[i], JS, bad[i], strlen(bad[i])), 1, what);
    }
}

static void t_text_plain_415(void)
{
    th_stack *s = start();
    th_http *c = th_stack_client(s);
    const th_resp *r = post(c, "/v1/traces", "Content-Type: text/plain\r\n", "hello", 5);
    TH_ASSERT_EQ_INT(r->status, 415);
}

static void t_oversized_413(void)
{
    th_stack *s = start();
    th_http *c = th_stack_client(s);
    size_t n = 100 * 1024;
    uint8_t *big = calloc(1, n);
    TH_ASSERT(big);
    const th_resp *r = th_http_request(c, "POST", "/v1/traces", PB, big, n);
    free(big);
    TH_ASSERT_MSG(r, "%s", th_http_error(c));
    TH_ASSERT_EQ_INT(r->status, 413);
}

static void t_gzip_bomb_413(void)
{
    th_stack *s = start();
    th_http *c = th_stack_client(s);
    size_t n = 8u << 20, zlen = 0;
    uint8_t *zeros = calloc(1, n);
    TH_ASSERT(zeros);
    uint8_t *z = th_compress("gzip", zeros, n, &zlen);
    free(zeros);
    TH_ASSERT(z);
    printf("# gzip bomb: %zu bytes expanding to %zu\n", zlen, n);
    const th_resp *r = th_http_request(c, "POST", "/v1/traces", PB "Content-Encoding: gzip\r\n",
                                       z, zlen);
    free(z);
    TH_ASSERT_MSG(r, "%s", th_http_error(c));
    TH_ASSERT_EQ_INT(r->status, 413);
}

static void t_wrong_method_and_path(void)
{
    th_stack *s = start();
    th_http *c = th_stack_client(s);
    const th_resp *r = th_http_request(c, "GET", "/v1/traces", NULL, NULL, 0);
    TH_ASSERT_MSG(r, "%s", th_http_error(c));
    TH_ASSERT_EQ_INT(r->status, 405);
    r = post(c, "/v1/nope", PB, "", 0);
    TH_ASSERT_EQ_INT(r->status, 404);
}

static void t_empty_body_200(void)
{
    char why[512];
    th_stack *s = start();
    th_http *c = th_stack_client(s);
    const th_resp *r = post(c, "/v1/traces", PB, "", 0);
    TH_ASSERT_MSG(th_otlp_check_success(r, SIG_TRACES, TH_ENC_PB, why, sizeof(why)) == 0, "%s",
                  why);
    r = post(c, "/v1/logs", JS, "{}", 2);
    TH_ASSERT_MSG(th_otlp_check_success(r, SIG_LOGS, TH_ENC_JSON, why, sizeof(why)) == 0,
                  "JSON {}: %s", why);
}

/* A client that sends headers (or half of them) and stalls is disconnected
 * after read_timeout (1 s) while others are served meanwhile. */
static void t_slow_client_timed_out(void)
{
    static const char head[] = "POST /v1/traces HTTP/1.1\r\nHost: x\r\n" PB
                               "Content-Length: 100\r\n\r\nabc";
    static const char partial[] = "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Ty";
    char why[512];
    th_stack *s = start();
    th_http *slow1 = th_stack_client(s), *slow2 = th_stack_client(s), *c = th_stack_client(s);
    TH_ASSERT(slow1 && slow2 && c);
    int64_t t0 = th_now_ms();
    TH_ASSERT(th_http_send_raw(slow1, head, strlen(head)) == 0);
    TH_ASSERT(th_http_send_raw(slow2, partial, strlen(partial)) == 0);
    th_otlp *d = th_otlp_new(SIG_TRACES, 9, 3);
    TH_ASSERT(d);
    const th_resp *r = th_otlp_send(c, d, TH_ENC_PB);
    TH_ASSERT_MSG(th_otlp_check_success(r, SIG_TRACES, TH_ENC_PB, why, sizeof(why)) == 0,
                  "while a client stalls: %s", why);
    long ms1 = th_http_wait_closed(slow1, 6000);
    ms1 = ms1 < 0 ? -1 : (long)(th_now_ms() - t0);
    long ms2 = th_http_wait_closed(slow2, 6000);
    ms2 = ms2 < 0 ? -1 : (long)(th_now_ms() - t0);
    printf("# stalled clients closed %ld ms (in body) and %ld ms (in headers) after their "
           "last byte\n", ms1, ms2);
    TH_ASSERT_MSG(ms1 >= 0, "stalled client (in body) still connected after 6 s");
    TH_ASSERT_MSG(ms2 >= 0, "stalled client (in headers) still connected after 6 s");
    r = th_otlp_send(c, d, TH_ENC_PB);
    TH_ASSERT_MSG(th_otlp_check_success(r, SIG_TRACES, TH_ENC_PB, why, sizeof(why)) == 0,
                  "after the timeouts: %s", why);
}

/* One bad request of kind k (0..7); returns the status. */
static int bad_request(th_http *c, int k, const uint8_t *bomb, size_t bomb_len,
                       const th_otlp *d)
{
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x0a, 0x7f};
    static const char badjson[] = "{\"resourceSpans\": [ {";
    static uint8_t big[70 * 1024];
    const th_resp *r = NULL;
    switch (k) {
    case 0: r = th_http_request(c, "POST", "/v1/traces", PB, junk, sizeof(junk)); break;
    case 1: r = th_http_request(c, "POST", "/v1/logs", PB, d->pb, d->pb_len - 2); break;
    case 2: r = th_http_request(c, "POST", "/v1/traces", JS, badjson, strlen(badjson)); break;
    case 3: r = th_http_request(c, "POST", "/v1/metrics", "Content-Type: text/plain\r\n", "x", 1); break;
    case 4: r = th_http_request(c, "GET", "/v1/logs", NULL, NULL, 0); break;
    case 5: r = th_http_request(c, "POST", "/v1/nope", PB, "", 0); break;
    case 6: r = th_http_request(c, "POST", "/v1/traces", PB "Content-Encoding: gzip\r\n", bomb, bomb_len); break;
    default: r = th_http_request(c, "POST", "/v1/traces", PB, big, sizeof(big)); break;
    }
    return r ? r->status : -1;
}

static int bad_round(th_http *c, int count, const uint8_t *bomb, size_t bomb_len, const th_otlp *d)
{
    static const int want[] = {400, 400, 400, 415, 405, 404, 413, 413};
    for (int i = 0; i < count; i++) {
        int st = bad_request(c, i % 8, bomb, bomb_len, d);
        if (st != want[i % 8]) {
            printf("# bad request kind %d answered %d, want %d (%s)\n", i % 8, st, want[i % 8],
                   th_http_error(c));
            return -1;
        }
    }
    return 0;
}

static void t_many_bad_requests_no_leak(void)
{
    char why[512];
    th_stack *s = start();
    th_http *c = th_stack_client(s);
    size_t n = 4u << 20, blen = 0;
    uint8_t *zeros = calloc(1, n);
    TH_ASSERT(zeros);
    uint8_t *bomb = th_compress("gzip", zeros, n, &blen);
    free(zeros);
    TH_ASSERT(bomb && th_res_add(free, bomb) == 0);
    th_otlp *d = th_otlp_new(SIG_LOGS, 5, 8);
    TH_ASSERT(d);
    pid_t pid = th_proc_pid(th_stack_spillway(s));
    TH_ASSERT_MSG(bad_round(c, 200, bomb, blen, d) == 0, "warm-up: wrong status");
    long before = th_proc_rss_kib(pid);
    TH_ASSERT_MSG(bad_round(c, 1000, bomb, blen, d) == 0, "wrong status among 1000 requests");
    long after = th_proc_rss_kib(pid);
    printf("# VmRSS after warm-up %ld KiB, after 1000 bad requests %ld KiB (+%ld KiB)\n", before,
           after, after - before);
    TH_ASSERT(before > 0 && after > 0);
    if (th_proc_has_asan(pid))
        printf("# skipped: RSS bound under AddressSanitizer (its quarantine keeps freed "
               "memory; make test checks it); its leak check runs at the exit below\n");
    else
        TH_ASSERT_MSG(after - before < 8 * 1024, "RSS grew by %ld KiB", after - before);
    const th_resp *r = th_otlp_send(c, d, TH_ENC_PB);
    TH_ASSERT_MSG(th_otlp_check_success(r, SIG_LOGS, TH_ENC_PB, why, sizeof(why)) == 0,
                  "good request after the bad ones: %s", why);
    /* A clean exit: under sanitizers this is where leaks are reported. */
    int status = 0;
    th_proc *sw = th_stack_spillway(s);
    TH_ASSERT(th_proc_signal(sw, SIGTERM) == 0);
    TH_ASSERT_MSG(th_proc_wait_exit(sw, 10000, &status) == 0, "still running 10 s after SIGTERM");
    TH_ASSERT_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "exit status 0x%x after SIGTERM (sanitizer report in the log tail)", status);
}

int main(void)
{
    TH_ICASE(t_garbage_protobuf);
    TH_ICASE(t_truncated_protobuf);
    TH_ICASE(t_invalid_json);
    TH_ICASE(t_wrong_json_types);
    TH_ICASE(t_text_plain_415);
    TH_ICASE(t_oversized_413);
    TH_ICASE(t_gzip_bomb_413);
    TH_ICASE(t_wrong_method_and_path);
    TH_ICASE(t_empty_body_200);
    TH_ICASE(t_slow_client_timed_out);
    TH_ICASE(t_many_bad_requests_no_leak);
    return th_done();
}
