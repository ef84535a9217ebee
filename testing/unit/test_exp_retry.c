/* test_exp_retry.c — the exporter's pure retry policy and answer parsing. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exporters/otlp/exp_response.h"
#include "exporters/otlp/exp_retry.h"
#include "runtime/err.h"
#include "testing/lib/th.h"

static const exp_retry_policy pol = {1000, 30000, 2.0, 300000};

static void t_classify(void)
{
    static const int ok[] = {200, 201, 202, 204, 299};
    static const int retry[] = {0, 301, 302, 307, 308, 429, 502, 503, 504};
    static const int reject[] = {100, 400, 401, 403, 404, 408, 413, 415, 500, 501, 505, 599};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        TH_ASSERT_EQ_INT(exp_classify_status(ok[i]), EXP_OK);
    for (size_t i = 0; i < sizeof retry / sizeof retry[0]; i++)
        TH_ASSERT_EQ_INT(exp_classify_status(retry[i]), EXP_RETRY);
    for (size_t i = 0; i < sizeof reject / sizeof reject[0]; i++)
        TH_ASSERT_EQ_INT(exp_classify_status(reject[i]), EXP_REJECT);
    TH_ASSERT(EXP_OK != 0 && EXP_RETRY != 0 && EXP_REJECT != 0);
}

static void t_backoff_equal_jitter(void)
{
    /* r = 0: half the step; r -> 1: the full step. */
    TH_ASSERT_EQ_INT(exp_backoff_ms(&pol, 0, 0.0), 500);
    TH_ASSERT_EQ_INT(exp_backoff_ms(&pol, 1, 0.0), 1000);
    TH_ASSERT_EQ_INT(exp_backoff_ms(&pol, 2, 0.0), 2000);
    TH_ASSERT_EQ_INT(exp_backoff_ms(&pol, 0, 0.5), 750);
    TH_ASSERT(exp_backoff_ms(&pol, 3, 0.999) <= 8000 && exp_backoff_ms(&pol, 3, 0.999) >= 7990);
}

static void t_backoff_caps(void)
{
    /* capped at max_interval, also for huge attempts (no overflow) */
    TH_ASSERT_EQ_INT(exp_backoff_ms(&pol, 5, 0.0), 15000);   /* 32 s -> 30 s cap, half */
    TH_ASSERT_EQ_INT(exp_backoff_ms(&pol, 1000, 0.0), 15000);
    TH_ASSERT(exp_backoff_ms(&pol, 4000000000u, 0.9999999) <= 30000);
    /* r outside [0,1) is clamped */
    TH_ASSERT_EQ_INT(exp_backoff_ms(&pol, 0, -3.0), 500);
    TH_ASSERT(exp_backoff_ms(&pol, 0, 7.0) <= 1000);
    /* multiplier below 1 acts as 1 */
    exp_retry_policy p = pol;
    p.multiplier = 0.5;
    TH_ASSERT_EQ_INT(exp_backoff_ms(&p, 10, 0.0), 500);
}

static void t_retry_after_seconds(void)
{
    uint64_t d = 99;
    TH_ASSERT_EQ_INT(exp_parse_retry_after("120", 0, &d), 0);
    TH_ASSERT_EQ_INT(d, 120000);
    TH_ASSERT_EQ_INT(exp_parse_retry_after("  0 ", 0, &d), 0);
    TH_ASSERT_EQ_INT(d, 0);
    TH_ASSERT_EQ_INT(exp_parse_retry_after("99999999999999999999999", 0, &d), 0);
    TH_ASSERT(d > 0 && d <= 366ULL * 24 * 3600 * 1000);
}

static void t_retry_after_dates(void)
{
    uint64_t d = 0;
    const int64_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    TH_ASSERT_EQ_INT(exp_parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now, &d), 0);
    TH_ASSERT_EQ_INT(d, 10000);
    TH_ASSERT_EQ_INT(exp_parse_retry_after("Sunday, 06-Nov-94 08:50:37 GMT", now, &d), 0);
    TH_ASSERT_EQ_INT(d, 60000);
    TH_ASSERT_EQ_INT(exp_parse_retry_after("Sun Nov  6 08:49:39 1994", now, &d), 0);
    TH_ASSERT_EQ_INT(d, 2000);
    /* in the past: retry now */
    TH_ASSERT_EQ_INT(exp_parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now, &d), 0);
    TH_ASSERT_EQ_INT(d, 0);
    /* against the real clock: a date a little ahead */
    char buf[64];
    time_t t = time(NULL) + 5;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    TH_ASSERT_EQ_INT(exp_parse_retry_after(buf, (int64_t)time(NULL), &d), 0);
    TH_ASSERT(d >= 4000 && d <= 5000);
}

static void t_retry_after_garbage(void)
{
    static const char *bad[] = {"", " ", "-1", "1.5", "12abc", "soon", "0x10",
                                "Sun, 06 Nov 1994 08:49:37",          /* no GMT */
                                "Sun, 06 Nov 1994 08:49:37 GMT junk", /* trailing */
                                "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun, 32 Nov 1994 08:49:37 GMT"};
    uint64_t d = 7;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TH_ASSERT_MSG(exp_parse_retry_after(bad[i], 0, &d) == SW_EINVAL, "accepted \"%s\"", bad[i]);
    TH_ASSERT_EQ_INT(exp_parse_retry_after(NULL, 0, &d), SW_EINVAL);
    TH_ASSERT_EQ_INT(d, 7);
}

static void t_delay_and_give_up(void)
{
    /* Retry-After wins over the backoff, capped at max_interval */
    TH_ASSERT_EQ_INT(exp_retry_delay_ms(&pol, 0, 0.0, "3", 0), 3000);
    TH_ASSERT_EQ_INT(exp_retry_delay_ms(&pol, 0, 0.0, "3600", 0), 3600000);
    TH_ASSERT_EQ_INT(exp_retry_exhausted(&pol, 0, 3600000), 1); /* gives up instead */
    TH_ASSERT_EQ_INT(exp_retry_delay_ms(&pol, 0, 0.0, "garbage", 0), 500);
    TH_ASSERT_EQ_INT(exp_retry_delay_ms(&pol, 1, 0.0, NULL, 0), 1000);
    TH_ASSERT_EQ_INT(exp_retry_exhausted(&pol, 299000, 1000), 0);
    TH_ASSERT_EQ_INT(exp_retry_exhausted(&pol, 299000, 1001), 1);
    exp_retry_policy forever = pol;
    forever.max_elapsed_ms = 0;
    TH_ASSERT_EQ_INT(exp_retry_exhausted(&forever, UINT64_MAX / 2, 30000), 0);
}

/* ---- answers ---- */

static void t_body_type(void)
{
    TH_ASSERT_EQ_INT(exp_body_type_of(NULL), EXP_BODY_PROTOBUF);
    TH_ASSERT_EQ_INT(exp_body_type_of("application/x-protobuf"), EXP_BODY_PROTOBUF);
    TH_ASSERT_EQ_INT(exp_body_type_of("Application/JSON; charset=utf-8"), EXP_BODY_JSON);
    TH_ASSERT_EQ_INT(exp_body_type_of("text/plain"), EXP_BODY_TEXT);
}

static void t_partial_protobuf(void)
{
    /* ExportTraceServiceResponse{partial_success{rejected_spans: 300, error_message: "bad\n"}} */
    static const uint8_t pb[] = {0x0a, 0x09, 0x08, 0xac, 0x02, 0x12, 0x04, 'b', 'a', 'd', '\n'};
    int64_t rej = -1;
    char msg[16];
    TH_ASSERT_EQ_INT(exp_resp_partial(pb, sizeof pb, EXP_BODY_PROTOBUF, &rej, msg, sizeof msg), 0);
    TH_ASSERT_EQ_INT(rej, 300);
    TH_ASSERT_EQ_STR(msg, "bad");
    /* empty body and empty message: nothing rejected */
    TH_ASSERT_EQ_INT(exp_resp_partial(pb, 0, EXP_BODY_PROTOBUF, &rej, msg, sizeof msg), 0);
    TH_ASSERT_EQ_INT(rej, 0);
    static const uint8_t unset[] = {0x0a, 0x00};
    TH_ASSERT_EQ_INT(exp_resp_partial(unset, 2, EXP_BODY_PROTOBUF, &rej, msg, sizeof msg), 0);
    TH_ASSERT_EQ_INT(rej, 0);
    /* truncated: a length past the end */
    static const uint8_t bad[] = {0x0a, 0x09, 0x08, 0xac};
    TH_ASSERT_EQ_INT(exp_resp_partial(bad, sizeof bad, EXP_BODY_PROTOBUF, &rej, msg, sizeof msg),
                     SW_EDECODE);
    TH_ASSERT_EQ_INT(rej, 0);
    static const uint8_t ovf[] = {0x0a, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xff};
    TH_ASSERT_EQ_INT(exp_resp_partial(ovf, sizeof ovf, EXP_BODY_PROTOBUF, &rej, msg, sizeof msg),
                     SW_EDECODE);
}

static void t_partial_json(void)
{
    const char *j = "{\"partialSuccess\":{\"rejectedDataPoints\":\"12\",\"errorMessage\":\"limit\"}}";
    int64_t rej = 0;
    char msg[32];
    TH_ASSERT_EQ_INT(exp_resp_partial((const uint8_t *)j, strlen(j), EXP_BODY_JSON, &rej, msg,
                                      sizeof msg), 0);
    TH_ASSERT_EQ_INT(rej, 12);
    TH_ASSERT_EQ_STR(msg, "limit");
    j = "{\"partial_success\":{\"rejected_log_records\":4}}";
    TH_ASSERT_EQ_INT(exp_resp_partial((const uint8_t *)j, strlen(j), EXP_BODY_JSON, &rej, msg,
                                      sizeof msg), 0);
    TH_ASSERT_EQ_INT(rej, 4);
    j = "{}";
    TH_ASSERT_EQ_INT(exp_resp_partial((const uint8_t *)j, 2, EXP_BODY_JSON, &rej, msg, sizeof msg), 0);
    TH_ASSERT_EQ_INT(rej, 0);
    j = "{\"partialSuccess\":";
    TH_ASSERT_EQ_INT(exp_resp_partial((const uint8_t *)j, strlen(j), EXP_BODY_JSON, &rej, msg,
                                      sizeof msg), SW_EDECODE);
}

static void t_error_message(void)
{
    /* google.rpc.Status{code: 3, message: "invalid span"} */
    static const uint8_t st[] = {0x08, 0x03, 0x12, 0x0c, 'i', 'n', 'v', 'a', 'l', 'i',
                                 'd', ' ', 's', 'p', 'a', 'n'};
    char msg[64];
    exp_resp_error_message(st, sizeof st, EXP_BODY_PROTOBUF, msg, sizeof msg);
    TH_ASSERT_EQ_STR(msg, "invalid span");
    const char *j = "{\"code\":8,\"message\":\"slow down\"}";
    exp_resp_error_message((const uint8_t *)j, strlen(j), EXP_BODY_JSON, msg, sizeof msg);
    TH_ASSERT_EQ_STR(msg, "slow down");
    /* plain text, sanitised and truncated */
    const char *t = "bad\x01request\r\nmore text that goes on and on";
    char small[12];
    exp_resp_error_message((const uint8_t *)t, strlen(t), EXP_BODY_TEXT, small, sizeof small);
    TH_ASSERT_EQ_STR(small, "bad?request");
    exp_resp_error_message(NULL, 0, EXP_BODY_TEXT, msg, sizeof msg);
    TH_ASSERT_EQ_STR(msg, "");
    /* not a Status: falls back to the text */
    exp_resp_error_message((const uint8_t *)"oops", 4, EXP_BODY_PROTOBUF, msg, sizeof msg);
    TH_ASSERT(strlen(msg) > 0);
}

static void t_garbage_bodies(void)
{
    /* every prefix of random bytes parses or fails cleanly (sanitizers watch) */
    uint8_t b[256];
    unsigned s = 12345;
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof b; i++) {
            s = s * 1103515245u + 12345u;
            b[i] = (uint8_t)(s >> 16);
        }
        for (size_t n = 0; n <= sizeof b; n += 17) {
            int64_t rej;
            char msg[64];
            (void)exp_resp_partial(b, n, EXP_BODY_PROTOBUF, &rej, msg, sizeof msg);
            (void)exp_resp_partial(b, n, EXP_BODY_JSON, &rej, msg, sizeof msg);
            exp_resp_error_message(b, n, EXP_BODY_PROTOBUF, msg, sizeof msg);
        }
    }
    TH_ASSERT(1);
}

int main(void)
{
    TH_RUN(t_classify);
    TH_RUN(t_backoff_equal_jitter);
    TH_RUN(t_backoff_caps);
    TH_RUN(t_retry_after_seconds);
    TH_RUN(t_retry_after_dates);
    TH_RUN(t_retry_after_garbage);
    TH_RUN(t_delay_and_give_up);
    TH_RUN(t_body_type);
    TH_RUN(t_partial_protobuf);
    TH_RUN(t_partial_json);
    TH_RUN(t_error_message);
    TH_RUN(t_garbage_bodies);
    return th_done();
}
