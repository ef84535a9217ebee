/* test_exp_hurry.c — exp_hurry() cuts the exporter's stop short: the stop
 * deadline counts as passed, the request in flight is abandoned and what
 * the exporter holds goes to the DLQ (or is counted dropped without one).
 *
 * The upstream (testing/lib/th_upstream.h) holds every answer for 20 s and
 * the exporter's request timeout is 30 s, so without exp_hurry each stop
 * below would take its whole timeout (30 s). Times are reported; the only
 * bound asserted is "well before that timeout".
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg.h"
#include "dlq/dlq.h"
#include "exporters/otlp/exporter.h"
#include "queue/apq.h"
#include "runtime/clock.h"
#include "runtime/log.h"
#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_upstream.h"
#include "testing/lib/th_wait.h"
#include "exporters/otlp/exp_metrics.h"

#define STOP_MS 30000
#define BOUND_MS 15000 /* "well before STOP_MS" */

static void decide(void *arg, const char *path, const uint8_t *body, size_t len,
                   th_up_reply *r)
{
    (void)arg;
    (void)path;
    (void)body;
    (void)len;
    r->code = 200;
    r->delay_ms = 20000; /* hangs, as far as the stop is concerned */
}

typedef struct fx {
    th_upstream *u;
    cfg *c;
    sw_metrics *m;
    apq *q;
    dlq *d;
    exporter *e;
    char dir[64];
    _Atomic int stop_done;
    uint64_t lost;
} fx;

static fx F;

static void fx_begin(int with_dlq)
{
    memset(&F, 0, sizeof F);
    F.u = th_upstream_start(decide, NULL);
    F.c = cfg_defaults();
    F.m = metrics_new();
    TH_ASSERT(F.c && F.m);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", th_upstream_port(F.u));
    free(F.c->exporter.endpoint);
    TH_ASSERT((F.c->exporter.endpoint = strdup(url)) != NULL);
    F.c->exporter.compression = CFG_COMP_NONE;
    F.c->exporter.max_in_flight = 1;
    F.c->exporter.batch_timeout_ms = 10;
    F.c->exporter.timeout_ms = STOP_MS;
    apq_opts qo;
    apq_opts_default(&qo);
    qo.max_bytes = 1u << 20;
    qo.spill_threshold = 1.0;
    qo.m = F.m;
    TH_ASSERT((F.q = apq_new(&qo)) != NULL);
    TH_ASSERT((F.e = exp_new(F.c, F.q, F.m)) != NULL);
    if (!with_dlq) return;
    snprintf(F.dir, sizeof F.dir, "/tmp/sw-exphurry-XXXXXX");
    TH_ASSERT(mkdtemp(F.dir));
    dlq_opts o = {.dir = F.dir, .segment_size = 1u << 20, .max_size = 64u << 20,
                  .compression_level = 1, .fsync = CFG_FSYNC_NEVER};
    TH_ASSERT_EQ_INT(dlq_open(&o, F.m, &F.d), 0);
    dlq_wait_recovered(F.d);
    exp_set_dlq(F.e, F.d);
}

/* Records in the DLQ's main area (after the exporter let go of its reader). */
static uint64_t dlq_records(void)
{
    dlq_reader *r = dlq_reader_new(F.d, 0, 0);
    TH_ASSERT(r);
    uint64_t n = 0;
    item *it;
    dlq_pos pos;
    while (dlq_reader_next(r, &it, &pos) == 0 && it) {
        n++;
        item_free(it);
    }
    dlq_reader_free(r);
    return n;
}

static void fx_done(void)
{
    exp_free(F.e);
    if (F.d) dlq_close(F.d);
    apq_free(F.q);
    metrics_free(F.m);
    cfg_free(F.c);
    th_upstream_stop(F.u);
    if (F.dir[0]) {
        TH_ASSERT_EQ_INT(th_rmtree(F.dir), 0);
    }
    memset(&F, 0, sizeof F);
}

/* Two items, one request in flight to the hanging upstream. */
static void start_with_request_in_flight(void)
{
    for (int i = 0; i < 2; i++) {
        uint8_t data[64];
        memset(data, i + 1, sizeof data);
        item *it = item_new(SIG_TRACES, CLASS_NORMAL, 3, clock_mono_ns(), data, sizeof data);
        TH_ASSERT(it);
        TH_ASSERT_EQ_INT(apq_push(F.q, it), 0);
    }
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(atomic_load(&exp_metrics_get(F.m)->exp_in_flight) == 1, 5000);
}

static void *stopper(void *arg)
{
    (void)arg;
    F.lost = exp_stop(F.e, STOP_MS);
    atomic_store(&F.stop_done, 1);
    return NULL;
}

/* exp_hurry while exp_stop runs on another thread. */
static void t_hurry_during_stop(void)
{
    fx_begin(1);
    start_with_request_in_flight();
    pthread_t t;
    int64_t t0 = clock_mono_ns();
    TH_ASSERT_EQ_INT(pthread_create(&t, NULL, stopper, NULL), 0);
    exp_hurry(F.e);
    int64_t deadline = t0 + (int64_t)BOUND_MS * 1000000;
    while (!atomic_load(&F.stop_done) && clock_mono_ns() < deadline) {
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    int done = atomic_load(&F.stop_done);
    if (!done) exp_hurry(F.e); /* cannot help; join anyway */
    pthread_join(t, NULL);
    double ms = (double)(clock_mono_ns() - t0) / 1e6;
    printf("# exp_stop(%d ms) returned %.0f ms after exp_hurry\n", STOP_MS, ms);
    TH_ASSERT_MSG(done, "exp_stop still running %d ms after exp_hurry", BOUND_MS);
    TH_ASSERT_EQ_INT(F.lost, 0); /* everything in the DLQ */
    TH_ASSERT_EQ_INT(atomic_load(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_DROPPED]), 0);
    TH_ASSERT_EQ_INT(atomic_load(&exp_metrics_get(F.m)->exp_in_flight), 0); /* abandoned */
    TH_ASSERT_EQ_INT(dlq_records(), 2);
    fx_done();
}

/* exp_hurry before exp_stop: the stop behaves as with no time at all. */
static void t_hurry_before_stop(void)
{
    fx_begin(1);
    start_with_request_in_flight();
    exp_hurry(F.e);
    int64_t t0 = clock_mono_ns();
    uint64_t lost = exp_stop(F.e, STOP_MS);
    double ms = (double)(clock_mono_ns() - t0) / 1e6;
    printf("# exp_stop(%d ms) after exp_hurry returned in %.0f ms\n", STOP_MS, ms);
    TH_ASSERT_MSG(ms < BOUND_MS, "exp_stop took %.0f ms", ms);
    TH_ASSERT_EQ_INT(lost, 0);
    TH_ASSERT_EQ_INT(dlq_records(), 2);
    fx_done();
}

/* Without a DLQ what is held is counted dropped, as at the deadline. */
static void t_hurry_without_dlq(void)
{
    fx_begin(0);
    start_with_request_in_flight();
    exp_hurry(F.e);
    uint64_t lost = exp_stop(F.e, STOP_MS);
    TH_ASSERT_EQ_INT(lost, 2);
    TH_ASSERT_EQ_INT(atomic_load(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_DROPPED]), 2 * 3);
    fx_done();
}

/* Harmless when the exporter never started, and after the stop. */
static void t_hurry_idle(void)
{
    fx_begin(0);
    exp_hurry(F.e); /* not started: nothing to do */
    exp_hurry(NULL);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 1000), 0);
    exp_hurry(F.e); /* stopped */
    fx_done();
}

int main(void)
{
    log_setup(LOG_LVL_ERROR, 0);
    TH_RUN(t_hurry_during_stop);
    TH_RUN(t_hurry_before_stop);
    TH_RUN(t_hurry_without_dlq);
    TH_RUN(t_hurry_idle);
    return th_done();
}
