/* itest_reload.c — SIGHUP reloads the --config file of a running spillway.
 *
 * Under a client loop against a slow upstream (requests in flight at the
 * exporter while the signal comes):
 *   a valid new file changing a priority rule, the log level and an
 *   exporter header is applied: later data is classified by the new rule
 *   (spillway_queue_dequeued_total by class), the upstream sees the new
 *   header, DEBUG lines appear, and every span sent arrives exactly once;
 *   an invalid file changes nothing: the process keeps serving on the old
 *   rules, spillway_config_reloads_total{result="failure"} counts it and
 *   the log names the error as FILE:LINE:COL;
 *   a file that changes a restart-only key is applied for the rest and the
 *   log names the key it ignored;
 *   SIGUSR1, SIGUSR2 and SIGALRM end nothing.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testing/lib/th.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define SPANS 5
#define BATCH 30

static const char rules_checkout[] =
    "  priority:\n    rules:\n"
    "      - { class: critical, attribute: service.name, regex: \"^checkout\" }\n";

static double metric(th_stack *s, const char *name, const char *labels)
{
    const char *text = th_stack_metrics(s);
    TH_ASSERT_MSG(text, "GET /metrics failed");
    int found = 0;
    double v = th_prom_sum(text, name, labels, &found);
    TH_ASSERT_MSG(found > 0, "no sample of %s{%s}", name, labels ? labels : "");
    return v;
}

static double reloads(th_stack *s, const char *result)
{
    char labels[64];
    snprintf(labels, sizeof labels, "result=\"%s\"", result);
    return metric(s, "spillway_config_reloads_total", labels);
}

static double dequeued(th_stack *s, const char *klass)
{
    char labels[64];
    snprintf(labels, sizeof labels, "class=\"%s\"", klass);
    return metric(s, "spillway_queue_dequeued_total", labels);
}

static char *config_path(th_stack *s)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/spillway.yaml", th_stack_dir(s));
    return path;
}

/* Rewrites the config file with every `from` replaced by `to` (once each). */
static void edit_config(th_stack *s, const char *const *from, const char *const *to, int n)
{
    size_t len = 0;
    char *text = th_read_file(config_path(s), &len);
    TH_ASSERT(text);
    for (int i = 0; i < n; i++) {
        char *at = strstr(text, from[i]);
        TH_ASSERT_MSG(at, "config has no \"%s\"", from[i]);
        size_t fl = strlen(from[i]), tl = strlen(to[i]);
        char *next = malloc(strlen(text) - fl + tl + 1);
        TH_ASSERT(next);
        memcpy(next, text, (size_t)(at - text));
        memcpy(next + (at - text), to[i], tl);
        strcpy(next + (at - text) + tl, at + fl);
        free(text);
        text = next;
    }
    TH_ASSERT(th_write_file(config_path(s), text, strlen(text)) == 0);
    free(text);
}

/* One traces request of one resource (service, seed); its lines go to e. */
static void send_one(th_http *c, const char *service, uint32_t seed, th_expect *e)
{
    char why[512];
    th_res_spec spec = {service, seed, SPANS, TH_STATUS_OK};
    th_otlp *d = th_otlp_new_traces(&spec, 1);
    TH_ASSERT(d);
    const th_resp *r = th_otlp_send(c, d, TH_ENC_PB);
    TH_ASSERT_MSG(r, "request %u: %s", seed, th_http_error(c));
    TH_ASSERT_MSG(th_otlp_check_success(r, SIG_TRACES, TH_ENC_PB, why, sizeof why) == 0,
                  "request %u: %s", seed, why);
    if (e) TH_ASSERT(th_expect_add(e, d) == 0);
    th_otlp_free(d);
}

/* Sends requests until the reload counter of result reaches want (each
 * loop one request, so data keeps flowing while the reload happens).
 * Returns how many were sent. */
static int send_until_reloaded(th_stack *s, th_http *c, const char *service, uint32_t *seed,
                               th_expect *e, const char *result, double want)
{
    int64_t deadline = th_now_ms() + 10000;
    int n = 0;
    while (reloads(s, result) < want) {
        TH_ASSERT_MSG(th_now_ms() < deadline, "no reload with result %s within 10 s", result);
        send_one(c, service, (*seed)++, e);
        n++;
    }
    return n;
}

static char *read_log(th_stack *s)
{
    char *log = th_read_file(th_proc_log(th_stack_spillway(s)), NULL);
    TH_ASSERT(log);
    return log;
}

/* A client thread: sends prepared requests one after the other on its own
 * connection until told to stop; marks which were accepted. */
#define LOAD_MAX 1000
typedef struct loader {
    uint16_t port;
    th_otlp *d[LOAD_MAX];      /* prepared on the main thread */
    int ok[LOAD_MAX];
    _Atomic int sent, stop;
    char err[256];
} loader;

static void *load_main(void *arg)
{
    loader *l = arg;
    char why[256];
    th_http *c = th_http_new(l->port, 0, 5000);
    for (int i = 0; c && i < LOAD_MAX && !atomic_load(&l->stop); i++) {
        const th_resp *r = th_otlp_send(c, l->d[i], TH_ENC_PB);
        l->ok[i] = r && th_otlp_check_success(r, SIG_TRACES, TH_ENC_PB, why, sizeof why) == 0;
        if (!l->ok[i] && !l->err[0])
            snprintf(l->err, sizeof l->err, "request %d: %.200s", i, r ? why : th_http_error(c));
        atomic_store(&l->sent, i + 1);
    }
    if (!c) snprintf(l->err, sizeof l->err, "cannot connect");
    th_http_free(c);
    return NULL;
}

static void wait_sent(loader *l, int want)
{
    int64_t deadline = th_now_ms() + 15000;
    while (atomic_load(&l->sent) < want && th_now_ms() < deadline) th_nap_ms(5);
    TH_ASSERT_MSG(atomic_load(&l->sent) >= want, "client loop stalled at %d: %s",
                  atomic_load(&l->sent), l->err);
}

/* (a) a valid file: new rule, log level and header, nothing lost or doubled. */
static void t_valid_reload_under_load(void)
{
    char why[1024];
    th_stack_opts o = {.mock_args = {"--latency-ms", "20"},
                       .exporter_yaml = "    headers: { api-key: before-reload }\n",
                       .processors_yaml = rules_checkout};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    th_http *c = th_stack_client(s);
    th_expect *e = th_expect_new();
    TH_ASSERT(c && e);
    uint32_t seed = 5000;
    for (int k = 0; k < BATCH; k++) send_one(c, "payment", seed++, e);
    TH_ASSERT(th_stack_wait_items(s, SIG_TRACES, BATCH * SPANS, 10000) >= BATCH * SPANS);
    const char *hdr = th_stack_mock_get(s, "/received/headers");
    TH_ASSERT_MSG(hdr && strstr(hdr, "before-reload"), "upstream headers: %s", hdr ? hdr : "");
    TH_ASSERT_MSG(dequeued(s, "critical") == 0, "payment was critical before the reload");
    double normal_before = dequeued(s, "normal");
    char *log = read_log(s);
    int debug_before = strstr(log, " debug ") != NULL;
    free(log);
    TH_ASSERT_MSG(!debug_before, "DEBUG lines at level info");

    static const char *const from[] = {"^checkout", "before-reload", "level: info"};
    static const char *const to[] = {"^payment", "after-reload", "level: debug"};
    edit_config(s, from, to, 3);
    loader *l = calloc(1, sizeof *l);
    TH_ASSERT(l);
    l->port = th_stack_otlp_port(s);
    for (int i = 0; i < LOAD_MAX; i++) {
        th_res_spec spec = {"payment", 20000 + (uint32_t)i, SPANS, TH_STATUS_OK};
        TH_ASSERT((l->d[i] = th_otlp_new_traces(&spec, 1)) != NULL);
        th_res_forget(l->d[i]); /* freed below: more than the cleanup table holds */
    }
    pthread_t th;
    TH_ASSERT(pthread_create(&th, NULL, load_main, l) == 0);
    wait_sent(l, 50);
    TH_ASSERT(th_proc_signal(th_stack_spillway(s), SIGHUP) == 0);
    int at_signal = atomic_load(&l->sent);
    int64_t deadline = th_now_ms() + 10000;
    while (reloads(s, "success") < 1 && th_now_ms() < deadline) th_nap_ms(5);
    int during = atomic_load(&l->sent) - at_signal;
    double crit_at = dequeued(s, "critical");
    wait_sent(l, atomic_load(&l->sent) + BATCH);
    atomic_store(&l->stop, 1);
    pthread_join(th, NULL);
    TH_ASSERT_MSG(!l->err[0], "client loop: %s", l->err);
    TH_ASSERT_MSG(reloads(s, "success") == 1, "no successful reload within 10 s");
    int n_load = atomic_load(&l->sent);
    for (int i = 0; i < n_load; i++) TH_ASSERT(th_expect_add(e, l->d[i]) == 0);
    for (int i = 0; i < LOAD_MAX; i++) th_otlp_free(l->d[i]);
    free(l);

    long total = (long)(seed - 5000 + (uint32_t)n_load) * SPANS;
    TH_ASSERT_MSG(th_stack_check_received(s, SIG_TRACES, e, 0, 15000, why, sizeof why) == 0,
                  "after the reload: %s", why);
    double crit = dequeued(s, "critical"), normal = dequeued(s, "normal");
    printf("# client loop: %d requests, %d of them between SIGHUP and the reload counted; "
           "dequeued critical %.0f (at reload %.0f), normal %.0f (before %.0f); "
           "%ld spans received exactly once; exporter retries %.0f\n",
           n_load, during, crit, crit_at, normal, normal_before, total,
           metric(s, "spillway_exporter_retries_total", NULL));
    TH_ASSERT_MSG(crit - crit_at >= BATCH, "payment not critical after the reload: %.0f -> %.0f",
                  crit_at, crit);
    hdr = th_stack_mock_get(s, "/received/headers");
    TH_ASSERT_MSG(hdr && strstr(hdr, "after-reload") && !strstr(hdr, "before-reload"),
                  "upstream headers after the reload: %s", hdr ? hdr : "");
    log = read_log(s);
    TH_ASSERT_MSG(strstr(log, " debug "), "no DEBUG line after switching to level debug");
    TH_ASSERT_MSG(strstr(log, "processors.priority.rules"), "reload log does not name the rule");
    free(log);
    TH_ASSERT(reloads(s, "failure") == 0);
    TH_ASSERT(th_proc_alive(th_stack_spillway(s)));
}

/* Line and column (1-based) of the first `needle` in text. */
static void position_of(const char *text, const char *needle, int *line, int *col)
{
    const char *at = strstr(text, needle);
    TH_ASSERT(at);
    *line = 1;
    const char *bol = text;
    for (const char *p = text; p < at; p++)
        if (*p == '\n') {
            (*line)++;
            bol = p + 1;
        }
    *col = (int)(at - bol) + 1;
}

/* (b) an invalid file: nothing changes; then a restart-only key is named. */
static void t_invalid_reload_keeps_old_config(void)
{
    char want[600];
    th_stack_opts o = {.processors_yaml = rules_checkout};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    th_http *c = th_stack_client(s);
    TH_ASSERT(c);
    uint32_t seed = 7000;
    send_one(c, "checkout", seed++, NULL);

    /* a valid rule change and a bad value in the same file */
    static const char *const from[] = {"^checkout", "level: info"};
    static const char *const to[] = {"^payment", "level: loud"};
    edit_config(s, from, to, 2);
    size_t len = 0;
    char *text = th_read_file(config_path(s), &len);
    int line = 0, col = 0;
    position_of(text, "loud", &line, &col);
    free(text);
    TH_ASSERT(th_proc_signal(th_stack_spillway(s), SIGHUP) == 0);
    send_until_reloaded(s, c, "checkout", &seed, NULL, "failure", 1);
    TH_ASSERT(reloads(s, "success") == 0);
    snprintf(want, sizeof want, "%s:%d:%d: telemetry.log.level", config_path(s), line, col);
    char *log = read_log(s);
    TH_ASSERT_MSG(strstr(log, want), "log lacks \"%s\"", want);
    free(log);

    /* still the old rules: checkout critical, payment normal */
    double crit = dequeued(s, "critical"), normal = dequeued(s, "normal");
    send_one(c, "checkout", seed++, NULL);
    send_one(c, "payment", seed++, NULL);
    int64_t deadline = th_now_ms() + 10000;
    while ((dequeued(s, "critical") < crit + 1 || dequeued(s, "normal") < normal + 1) &&
           th_now_ms() < deadline)
        th_nap_ms(20);
    TH_ASSERT_MSG(dequeued(s, "critical") == crit + 1 && dequeued(s, "normal") == normal + 1,
                  "rules changed by a failed reload: critical %.0f -> %.0f, normal %.0f -> %.0f",
                  crit, dequeued(s, "critical"), normal, dequeued(s, "normal"));

    /* fixed, plus a restart-only key: the rest applies, the key is named */
    static const char *const from2[] = {"level: loud", "max_request_body_size: 16MiB"};
    static const char *const to2[] = {"level: info", "max_request_body_size: 8MiB"};
    edit_config(s, from2, to2, 2);
    TH_ASSERT(th_proc_signal(th_stack_spillway(s), SIGHUP) == 0);
    send_until_reloaded(s, c, "checkout", &seed, NULL, "success", 1);
    log = read_log(s);
    TH_ASSERT_MSG(strstr(log, "need a restart") &&
                      strstr(log, "receivers.otlp.http.max_request_body_size"),
                  "the ignored restart-only key is not logged");
    free(log);
    crit = dequeued(s, "critical");
    send_one(c, "payment", seed++, NULL);
    deadline = th_now_ms() + 10000;
    while (dequeued(s, "critical") < crit + 1 && th_now_ms() < deadline) th_nap_ms(20);
    TH_ASSERT_MSG(dequeued(s, "critical") == crit + 1, "the new rule was not applied");
    TH_ASSERT(reloads(s, "failure") == 1);
}

/* (c) signals whose default action would end the process. */
static void t_other_signals_end_nothing(void)
{
    th_stack *s = th_stack_start(NULL);
    TH_ASSERT_MSG(s, "stack did not start");
    th_proc *sw = th_stack_spillway(s);
    const int sigs[] = {SIGUSR1, SIGUSR2, SIGALRM, SIGHUP};
    for (int i = 0; i < 4; i++) TH_ASSERT(th_proc_signal(sw, sigs[i]) == 0);
    th_http *c = th_stack_client(s);
    TH_ASSERT(c);
    uint32_t seed = 9000;
    send_until_reloaded(s, c, "svc", &seed, NULL, "success", 1);
    TH_ASSERT_MSG(th_proc_alive(sw), "spillway ended on USR1/USR2/ALRM/HUP");
}

int main(void)
{
    TH_RUN(t_valid_reload_under_load);
    TH_RUN(t_invalid_reload_keeps_old_config);
    TH_RUN(t_other_signals_end_nothing);
    return th_done();
}
