/* itest_loadgen.c — spillway-loadgen against the real mock upstream (and
 * once through spillway): the open-loop schedule sends exactly what it
 * planned at the rate asked (1,000 and 10,000 items/s, 5 s each, to keep
 * the whole program near 20 s; the measured rates are printed as "# "
 * lines and held to a generous ±20 % so a loaded machine does not fail
 * the run), and --verify reports items that went missing (the mock is
 * reset in the middle of a run) and items that arrived twice (the same
 * seed sent twice), with exit status 3, and passes a clean run of every
 * signal, encoding and compression. */
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testing/lib/th.h"
#include "testing/lib/th_http.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define START_MS 10000
#define RUN_MS 30000

typedef struct lgrun {
    int status;          /* exit status, -1 if killed or not exited */
    json_object *js;     /* the --json summary; freed by the case cleanup */
} lgrun;

static void json_put(void *o) { json_object_put(o); }

/* Starts spillway-mockup with extra args; returns its port. */
static uint16_t start_mock(const char *dir, const char *extra)
{
    char bin[512], ready[600], log[600];
    snprintf(bin, sizeof bin, "%s/spillway-mockup", th_bin_dir());
    snprintf(ready, sizeof ready, "%s/mock.ready", dir);
    snprintf(log, sizeof log, "%s/mock.log", dir);
    char *argv[] = {bin, "--listen", "127.0.0.1:0", "--log-level", "warn", "--ready-file", ready,
                    (char *)extra, NULL};
    th_proc *p = th_proc_start(argv, NULL, log);
    TH_ASSERT_MSG(p, "mockup did not start");
    TH_ASSERT_MSG(th_proc_wait_file(p, ready, START_MS) == 0, "mockup wrote no ready file");
    char *text = th_read_file(ready, NULL);
    TH_ASSERT(text);
    uint16_t port = th_ready_port(text, "http");
    free(text);
    TH_ASSERT(port != 0);
    return port;
}

/* Starts the load generator with "--json --quiet" and args (NULL-ended). */
static th_proc *start_lg(const char *dir, const char *out, char *const *args)
{
    char bin[512], path[600];
    char *argv[40] = {bin, "--json", "--quiet"};
    int n = 3;
    snprintf(bin, sizeof bin, "%s/spillway-loadgen", th_bin_dir());
    snprintf(path, sizeof path, "%s/%s", dir, out);
    while (*args && n < 39) argv[n++] = *args++;
    argv[n] = NULL;
    th_proc *p = th_proc_start(argv, NULL, path);
    TH_ASSERT_MSG(p, "loadgen did not start");
    return p;
}

/* Waits for the load generator and reads its summary from the log. */
static lgrun finish_lg(th_proc *p, const char *dir, const char *out)
{
    lgrun r = {.status = -1};
    char path[600];
    int st = 0;
    snprintf(path, sizeof path, "%s/%s", dir, out);
    TH_ASSERT_MSG(th_proc_wait_exit(p, RUN_MS, &st) == 0, "loadgen did not finish");
    if (WIFEXITED(st)) r.status = WEXITSTATUS(st);
    char *text = th_read_file(path, NULL);
    TH_ASSERT(text);
    const char *js = strstr(text, "{\"signal\"");
    if (js) r.js = json_tokener_parse(js);
    if (!r.js) th_print_tail(path, 10);
    free(text);
    TH_ASSERT_MSG(r.js, "no JSON summary (exit status %d)", r.status);
    th_res_add(json_put, r.js);
    return r;
}

static lgrun run_lg(const char *dir, const char *out, char *const *args)
{
    return finish_lg(start_lg(dir, out, args), dir, out);
}

/* A number at a path of keys (NULL-ended) in the summary; -1 if absent. */
static double jget(json_object *o, ...)
{
    va_list ap;
    va_start(ap, o);
    for (const char *k = va_arg(ap, const char *); k && o; k = va_arg(ap, const char *))
        if (!json_object_object_get_ex(o, k, &o)) o = NULL;
    va_end(ap);
    return o ? json_object_get_double(o) : -1;
}

/* ---- rate control ---- */

static void rate_case(const char *rate, const char *batch, double want)
{
    char dir[256];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    uint16_t port = start_mock(dir, "--fast");
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%u", port);
    char *args[] = {"--endpoint", ep, "--rate", (char *)rate, "--batch", (char *)batch,
                    "--duration", "5", NULL};
    int64_t t0 = th_now_ms();
    lgrun r = run_lg(dir, "lg.out", args);
    double wall = (double)(th_now_ms() - t0) / 1000.0;
    double ach = jget(r.js, "achieved_rate", NULL), sent = jget(r.js, "items_sent", NULL);
    double acc = jget(r.js, "items_accepted", NULL), secs = jget(r.js, "send_seconds", NULL);
    printf("# target %.0f items/s: achieved %.1f items/s (%+.2f %%) over %.3f s; %.0f sent, %.0f accepted; "
           "whole process %.2f s wall; late %.0f, client p99 %.3f ms\n",
           want, ach, (ach / want - 1) * 100, secs, sent, acc, wall, jget(r.js, "late", NULL),
           jget(r.js, "latency_ms", "p99", NULL));
    TH_ASSERT_EQ_INT(r.status, 0);
    TH_ASSERT_EQ_INT((long long)sent, (long long)(want * 5)); /* the schedule, exactly */
    TH_ASSERT_EQ_INT((long long)jget(r.js, "unsent", NULL), 0);
    TH_ASSERT_EQ_INT((long long)acc, (long long)sent);
    TH_ASSERT_MSG(ach > want * 0.8 && ach < want * 1.2, "achieved %.1f items/s for %.0f", ach, want);
}

static void t_rate_1k(void) { rate_case("1000", "10", 1000); }
static void t_rate_10k(void) { rate_case("10000", "100", 10000); }

/* ---- verify ---- */

static void t_verify_detects_missing(void)
{
    char dir[256], ep[64];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    uint16_t port = start_mock(dir, "--seed=1");
    snprintf(ep, sizeof ep, "http://127.0.0.1:%u", port);
    char *args[] = {"--endpoint", ep, "--rate", "500", "--batch", "10", "--duration", "2",
                    "--verify", "--verify-url", ep, "--verify-wait", "3", "--seed", "21", NULL};
    th_proc *p = start_lg(dir, "lg.out", args);
    th_http *c = th_http_new(port, 0, 2000);
    TH_ASSERT(c);
    int64_t deadline = th_now_ms() + START_MS;
    for (;;) { /* once items arrived, forget them: they will be missing */
        const th_resp *st = th_http_request(c, "GET", "/stats", NULL, NULL, 0);
        if (st && st->status == 200 && !strstr((const char *)st->body, "\"items\":{\"traces\":0,")) break;
        TH_ASSERT_MSG(th_now_ms() < deadline && th_proc_alive(p), "no items reached the mock");
        th_nap_ms(10);
    }
    const th_resp *rs = th_http_request(c, "POST", "/reset", NULL, NULL, 0);
    TH_ASSERT(rs && rs->status == 200);
    lgrun r = finish_lg(p, dir, "lg.out");
    double miss = jget(r.js, "verify", "signals", "traces", "missing", NULL);
    double exp = jget(r.js, "verify", "signals", "traces", "expected", NULL);
    printf("# reset mid-run: %.0f of %.0f acked spans missing\n", miss, exp);
    TH_ASSERT_EQ_INT(r.status, 3);
    TH_ASSERT(miss > 0 && miss < exp);
    TH_ASSERT_EQ_INT((long long)jget(r.js, "verify", "signals", "traces", "duplicated", NULL), 0);
    TH_ASSERT(!json_object_get_boolean(json_object_object_get(json_object_object_get(r.js, "verify"), "ok")));
}

static void t_verify_detects_duplicates(void)
{
    char dir[256], ep[64];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    uint16_t port = start_mock(dir, "--seed=1");
    snprintf(ep, sizeof ep, "http://127.0.0.1:%u", port);
    char *args[] = {"--endpoint", ep, "--signal", "metrics", "--rate", "2000", "--batch", "10",
                    "--count", "20", "--seed", "11", "--verify", "--verify-url", ep, NULL};
    lgrun a = run_lg(dir, "lg1.out", args);
    TH_ASSERT_EQ_INT(a.status, 0);
    TH_ASSERT_EQ_INT((long long)jget(a.js, "verify", "signals", "metrics", "expected", NULL), 200);
    TH_ASSERT_EQ_INT((long long)jget(a.js, "verify", "signals", "metrics", "missing", NULL), 0);
    lgrun b = run_lg(dir, "lg2.out", args); /* the same seed again: every point twice */
    printf("# same seed twice: %.0f duplicated, %.0f missing\n",
           jget(b.js, "verify", "signals", "metrics", "duplicated", NULL),
           jget(b.js, "verify", "signals", "metrics", "missing", NULL));
    TH_ASSERT_EQ_INT(b.status, 3);
    TH_ASSERT_EQ_INT((long long)jget(b.js, "verify", "signals", "metrics", "duplicated", NULL), 200);
    TH_ASSERT_EQ_INT((long long)jget(b.js, "verify", "signals", "metrics", "missing", NULL), 0);
}

/* JSON + gzip requests and protobuf + zstd, all signals: nothing missing. */
static void t_verify_clean_encodings(void)
{
    char dir[256], ep[64];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    uint16_t port = start_mock(dir, "--seed=1");
    snprintf(ep, sizeof ep, "http://127.0.0.1:%u", port);
    const char *enc[][2] = {{"json", "gzip"}, {"protobuf", "zstd"}, {"json", "none"}};
    for (size_t i = 0; i < 3; i++) {
        TH_ASSERT(th_http_request(th_http_new(port, 0, 2000), "POST", "/reset", NULL, NULL, 0));
        char *args[] = {"--endpoint", ep, "--signal", "traces,metrics,logs", "--rate", "3000",
                        "--batch", "20", "--count", "45", "--encoding", (char *)enc[i][0],
                        "--compression", (char *)enc[i][1], "--verify", "--verify-url", ep, NULL};
        lgrun r = run_lg(dir, "lg.out", args);
        TH_ASSERT_MSG(r.status == 0, "%s/%s: exit status %d", enc[i][0], enc[i][1], r.status);
        TH_ASSERT_EQ_INT((long long)jget(r.js, "verify", "signals", "logs", "expected", NULL), 300);
    }
}

/* All signals through spillway to the mock: every acked item delivered once. */
static void t_verify_through_spillway(void)
{
    th_stack *s = th_stack_start(NULL);
    TH_ASSERT_MSG(s, "stack did not start");
    char ep[64], mock[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%u", th_stack_otlp_port(s));
    snprintf(mock, sizeof mock, "http://127.0.0.1:%u", th_stack_mock_port(s));
    char *args[] = {"--endpoint", ep, "--mix", "3:2:1", "--rate", "3000", "--batch", "50",
                    "--duration", "2", "--services", "20", "--priority-mix", "1:1:3",
                    "--verify", "--verify-url", mock, NULL};
    lgrun r = run_lg(th_stack_dir(s), "lg.out", args);
    printf("# through spillway: %.0f spans, %.0f points, %.0f log records acked; missing %.0f/%.0f/%.0f\n",
           jget(r.js, "verify", "signals", "traces", "expected", NULL),
           jget(r.js, "verify", "signals", "metrics", "expected", NULL),
           jget(r.js, "verify", "signals", "logs", "expected", NULL),
           jget(r.js, "verify", "signals", "traces", "missing", NULL),
           jget(r.js, "verify", "signals", "metrics", "missing", NULL),
           jget(r.js, "verify", "signals", "logs", "missing", NULL));
    TH_ASSERT_EQ_INT(r.status, 0);
    TH_ASSERT(jget(r.js, "verify", "signals", "traces", "expected", NULL) > 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    TH_ICASE(t_rate_1k);
    TH_ICASE(t_rate_10k);
    TH_ICASE(t_verify_detects_missing);
    TH_ICASE(t_verify_detects_duplicates);
    TH_ICASE(t_verify_clean_encodings);
    TH_ICASE(t_verify_through_spillway);
    return th_done();
}
