/* itest_http_metrics.c — the spillway_http_* series of the OTLP/HTTP
 * receiver's and the telemetry server's HTTP servers: junk refused, a
 * stalled head and a stalled body timed out, idle connections evicted at the cap, the
 * open-connections gauge. */
#include <stdio.h>
#include <string.h>

#include "testing/lib/th.h"
#include "testing/lib/th_http.h"
#include "testing/lib/th_stack.h"
#include "testing/lib/th_wait.h"

#define IO_MS 5000

/* Sample of name{server=...[,more]} on a fresh page; -1 if absent. */
static double series(th_stack *s, const char *name, const char *labels)
{
    const char *text = th_stack_metrics(s);
    if (!text) return -1;
    int found = 0;
    double v = th_prom_sum(text, name, labels, &found);
    return found == 1 ? v : -1;
}

static const char junk[] = "\x16\x03\x01\x00\x05hello"; /* a TLS record, not HTTP */

static void t_refused_and_timed_out(void)
{
    th_stack_opts o = {.receiver_yaml = "      header_timeout: 300ms\n      min_body_rate: 1KiB\n"};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    const char *fams[] = {"spillway_http_connections", "spillway_http_connections_evicted_total",
                          "spillway_http_connection_cap_pauses_total",
                          "spillway_http_accept_pauses_total", "spillway_http_head_timeouts_total",
                          "spillway_http_body_timeouts_total",
                          "spillway_http_refused_requests_total"};
    const char *page = th_stack_metrics(s);
    TH_ASSERT(page);
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
        TH_ASSERT_MSG(th_prom_has_family(page, fams[i]), "no family %s", fams[i]);
    TH_ASSERT_EQ_INT((long)series(s, "spillway_http_refused_requests_total",
                                  "server=\"otlp_http\",reason=\"not_http\""), 0);

    /* junk on both servers: answered and closed, counted per server */
    uint16_t ports[2] = {th_stack_otlp_port(s), th_stack_telemetry_port(s)};
    for (int i = 0; i < 2; i++) {
        th_http *c = th_http_new(ports[i], 0, IO_MS);
        TH_ASSERT(c);
        TH_ASSERT_EQ_INT(th_http_send_raw(c, junk, sizeof junk - 1), 0);
        TH_ASSERT_MSG(th_http_wait_closed(c, IO_MS) >= 0, "junk left the connection open");
        th_http_free(c);
    }
    TH_ASSERT_EQ_INT((long)series(s, "spillway_http_refused_requests_total",
                                  "server=\"otlp_http\",reason=\"not_http\""), 1);
    TH_ASSERT_EQ_INT((long)series(s, "spillway_http_refused_requests_total",
                                  "server=\"telemetry\",reason=\"not_http\""), 1);
    TH_ASSERT_EQ_INT((long)series(s, "spillway_http_refused_requests_total",
                                  "server=\"otlp_http\",reason=\"busy\""), 0);

    /* a head that never completes: closed at the header deadline */
    th_http *c = th_http_new(th_stack_otlp_port(s), 0, IO_MS);
    TH_ASSERT(c);
    static const char part[] = "POST /v1/traces HTTP/1.1\r\nHost: x\r\n";
    TH_ASSERT_EQ_INT(th_http_send_raw(c, part, sizeof part - 1), 0);
    long waited = th_http_wait_closed(c, IO_MS);
    TH_ASSERT_MSG(waited >= 0, "stalled head not closed");
    printf("# stalled head closed after %ld ms (header_timeout 300ms)\n", waited);
    th_http_free(c);
    TH_ASSERT_EQ_INT((long)series(s, "spillway_http_head_timeouts_total",
                                  "server=\"otlp_http\""), 1);
    TH_ASSERT_EQ_INT((long)series(s, "spillway_http_head_timeouts_total",
                                  "server=\"telemetry\""), 0);

    /* a whole head, then a body that stops: cut after the grace */
    c = th_http_new(th_stack_otlp_port(s), 0, IO_MS);
    TH_ASSERT(c);
    static const char slow[] = "POST /v1/traces HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/x-protobuf\r\n"
                               "Content-Length: 100000\r\n\r\n\x0a\x00";
    TH_ASSERT_EQ_INT(th_http_send_raw(c, slow, sizeof slow - 1), 0);
    waited = th_http_wait_closed(c, IO_MS);
    TH_ASSERT_MSG(waited >= 0, "stalled body not closed");
    printf("# stalled body closed after %ld ms (min_body_rate 1KiB/s after 300ms)\n", waited);
    th_http_free(c);
    TH_ASSERT_EQ_INT((long)series(s, "spillway_http_body_timeouts_total",
                                  "server=\"otlp_http\""), 1);
    TH_ASSERT_EQ_INT((long)series(s, "spillway_http_head_timeouts_total",
                                  "server=\"otlp_http\""), 1);
    th_stack_free(s);
}

static void t_evicted_and_gauge(void)
{
    th_stack_opts o = {.receiver_yaml = "      max_connections: 2\n"};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    /* the telemetry server holds at least the scrape's own connection */
    TH_ASSERT(series(s, "spillway_http_connections", "server=\"telemetry\"") >= 1);
    th_http *idle[2];
    for (int i = 0; i < 2; i++) {
        idle[i] = th_http_new(th_stack_otlp_port(s), 0, IO_MS);
        TH_ASSERT(idle[i]);
        TH_ASSERT_EQ_INT(th_http_send_raw(idle[i], "", 0), 0); /* connect, send nothing */
    }
    WAIT_FOR(series(s, "spillway_http_connections", "server=\"otlp_http\"") == 2, IO_MS);
    /* a third client at the cap of 2: one silent connection makes room */
    th_http *c = th_http_new(th_stack_otlp_port(s), 0, IO_MS);
    TH_ASSERT(c);
    const th_resp *r = th_http_request(c, "GET", "/v1/traces", NULL, NULL, 0);
    TH_ASSERT_MSG(r, "no answer at the cap: %s", th_http_error(c));
    TH_ASSERT_EQ_INT(r->status, 405);
    TH_ASSERT_EQ_INT((long)series(s, "spillway_http_connections_evicted_total",
                                  "server=\"otlp_http\""), 1);
    TH_ASSERT_EQ_INT((long)series(s, "spillway_http_connections", "server=\"otlp_http\""), 2);
    th_http_free(c);
    for (int i = 0; i < 2; i++) th_http_free(idle[i]);
    WAIT_FOR(series(s, "spillway_http_connections", "server=\"otlp_http\"") == 0, IO_MS);
    TH_ASSERT_EQ_INT((long)series(s, "spillway_http_connections_evicted_total",
                                  "server=\"telemetry\""), 0);
    th_stack_free(s);
}

int main(void)
{
    TH_RUN(t_refused_and_timed_out);
    TH_RUN(t_evicted_and_gauge);
    return th_done();
}
