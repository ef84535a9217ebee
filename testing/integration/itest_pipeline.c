/* itest_pipeline.c — end to end through the real binaries: every signal in
 * every request encoding arrives upstream with its content intact (no loss,
 * no duplicates), for each upstream compression; the official OTLP/JSON
 * examples are accepted; unknown protobuf fields pass through. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testing/lib/th.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define DEADLINE_MS 5000

static const char *const compressions[] = {"none", "gzip", "zstd"};

/* The stack shared by the cases of one upstream compression, and the
 * parameters of the combination being run. */
static struct {
    th_stack *st;
    int comp;
    sw_signal sig;
    th_enc enc;
} g;

static long items_now(th_stack *s, sw_signal sig)
{
    th_mock_stats st;
    TH_ASSERT_MSG(th_stack_mock_stats(s, &st) == 0, "mock /stats did not answer");
    return st.items[sig];
}

static void t_start_stack(void)
{
    th_stack_opts o = {.compression = compressions[g.comp]};
    g.st = th_stack_start(&o);
    TH_ASSERT_MSG(g.st, "spillway and mockup did not start (compression %s)",
                  compressions[g.comp]);
}

/* Three requests of 4, 7 and 10 items in one encoding; all content arrives. */
static void t_combo(void)
{
    char why[1024];
    th_stack *s = g.st;
    if (!s) th_skip("stack not running");
    TH_ASSERT_MSG(th_stack_mock_post(s, "/reset") / 100 == 2, "mock /reset failed");
    long base = items_now(s, g.sig);
    th_http *c = th_stack_client(s);
    th_expect *e = th_expect_new();
    TH_ASSERT(c && e);
    for (int k = 0; k < 3; k++) {
        uint32_t seed = (uint32_t)(10000 * (g.comp + 1) + 1000 * g.sig + 100 * g.enc + k);
        th_otlp *d = th_otlp_new(g.sig, seed, 4 + 3 * (size_t)k);
        TH_ASSERT(d);
        const th_resp *r = th_otlp_send(c, d, g.enc);
        TH_ASSERT_MSG(r, "request %d: %s", k, th_http_error(c));
        TH_ASSERT_MSG(th_otlp_check_success(r, g.sig, g.enc, why, sizeof(why)) == 0,
                      "request %d (%s %s): %s", k, sw_signal_name(g.sig), th_enc_name(g.enc), why);
        TH_ASSERT(th_expect_add(e, d) == 0);
    }
    TH_ASSERT_MSG(th_stack_check_received(s, g.sig, e, base, DEADLINE_MS, why, sizeof(why)) == 0,
                  "%s via %s, upstream %s: %s", sw_signal_name(g.sig), th_enc_name(g.enc),
                  compressions[g.comp], why);
}

static void run_compression(int comp)
{
    static char names[SIG_COUNT][TH_ENC_COUNT][64];
    static char start_name[64];
    g.comp = comp;
    g.st = NULL;
    snprintf(start_name, sizeof(start_name), "start_upstream_%s", compressions[comp]);
    th_run_case(start_name, t_start_stack);
    for (int sig = 0; sig < SIG_COUNT; sig++) {
        for (int enc = 0; enc < TH_ENC_COUNT; enc++) {
            snprintf(names[sig][enc], sizeof(names[sig][enc]), "%s_%s_upstream_%s",
                     sw_signal_name((sw_signal)sig), th_enc_name((th_enc)enc), compressions[comp]);
            g.sig = (sw_signal)sig;
            g.enc = (th_enc)enc;
            th_run_case(names[sig][enc], t_combo);
        }
    }
    th_res_release_all();
    g.st = NULL;
}

/* ---- official examples ---- */

static void send_example(const char *file, sw_signal sig)
{
    char path[256], url[32];
    size_t len = 0;
    th_stack *s = th_stack_start(NULL);
    TH_ASSERT_MSG(s, "stack did not start");
    snprintf(path, sizeof(path), "../shared/otlp-examples/%s", file);
    char *json = th_read_file(path, &len);
    if (!json) th_skip("%s not found", path);
    th_http *c = th_stack_client(s);
    snprintf(url, sizeof(url), "/v1/%s", sw_signal_name(sig));
    const th_resp *r = th_http_request(c, "POST", url, "Content-Type: application/json\r\n",
                                       json, len);
    free(json);
    TH_ASSERT_MSG(r, "%s: %s", file, th_http_error(c));
    TH_ASSERT_MSG(r->status == 200, "%s: status %d, body \"%.200s\"", file, r->status,
                  (const char *)r->body);
    long got = th_stack_wait_items(s, sig, 1, DEADLINE_MS);
    TH_ASSERT_MSG(got > 0, "%s: nothing arrived upstream (mock %s items %ld)", file,
                  sw_signal_name(sig), got);
    printf("# %s: %ld %s items arrived\n", file, got, sw_signal_name(sig));
}

static void t_example_trace(void) { send_example("trace.json", SIG_TRACES); }
static void t_example_metrics(void) { send_example("metrics.json", SIG_METRICS); }
static void t_example_logs(void) { send_example("logs.json", SIG_LOGS); }
static void t_example_events(void) { send_example("events.json", SIG_LOGS); }

/* A protobuf request with an unknown field is accepted and passes through
 * (the mock decodes it and counts its spans). */
static void t_unknown_field_passes(void)
{
    char why[1024];
    th_stack *s = th_stack_start(NULL);
    TH_ASSERT_MSG(s, "stack did not start");
    th_http *c = th_stack_client(s);
    th_expect *e = th_expect_new();
    th_otlp *d = th_otlp_new(SIG_TRACES, 777, 5);
    TH_ASSERT(c && e && d && th_otlp_add_unknown_field(d) == 0);
    const th_resp *r = th_otlp_send(c, d, TH_ENC_PB);
    TH_ASSERT_MSG(r, "%s", th_http_error(c));
    TH_ASSERT_MSG(th_otlp_check_success(r, SIG_TRACES, TH_ENC_PB, why, sizeof(why)) == 0, "%s",
                  why);
    TH_ASSERT(th_expect_add(e, d) == 0);
    TH_ASSERT_MSG(th_stack_check_received(s, SIG_TRACES, e, 0, DEADLINE_MS, why, sizeof(why)) == 0,
                  "%s", why);
    th_mock_stats st;
    TH_ASSERT(th_stack_mock_stats(s, &st) == 0);
    TH_ASSERT_EQ_INT(st.decode_errors, 0);
}

int main(void)
{
    for (int comp = 0; comp < 3; comp++) run_compression(comp);
    TH_ICASE(t_example_trace);
    TH_ICASE(t_example_metrics);
    TH_ICASE(t_example_logs);
    TH_ICASE(t_example_events);
    TH_ICASE(t_unknown_field_passes);
    return th_done();
}
