/* test_exp_delivery.c — the exporter's life cycle edges and what happens to
 * each item: started and stopped cleanly, settled exactly once, never lost
 * to a failing DLQ.
 *
 * Each case runs a queue, a DLQ in a temporary directory (its pwrite(2)
 * can be gated or made to fail) and an exporter against the shared
 * in-process upstream (testing/lib/th_upstream.h), whose answers a small
 * script decides.
 */
#include <dlfcn.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/cfg.h"
#include "dlq/dlq.h"
#include "exporters/otlp/exporter.h"
#include "queue/apq.h"
#include "runtime/clock.h"
#include "runtime/item_track.h"
#include "runtime/log.h"
#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_thread.h"
#include "testing/lib/th_upstream.h"
#include "testing/lib/th_wait.h"
#include "dlq/dlq_metrics.h"
#include "exporters/otlp/exp_metrics.h"

/* ---- the upstream's script ------------------------------------------------ */

typedef struct script {
    int first_code;  /* answer to the first first_n requests */
    int first_n;
    int then_code;   /* answer to the rest */
    int seen;
} script;

static void decide(void *arg, const char *path, const uint8_t *body, size_t len,
                   th_up_reply *r)
{
    script *s = arg;
    (void)path;
    (void)body;
    (void)len;
    r->code = s->seen++ < s->first_n ? s->first_code : s->then_code;
}

/* ---- DLQ writes: gated or failing ----------------------------------------- */

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_closed;          /* writes wait while set */
static _Atomic int writes_fail;  /* writes fail with ENOSPC while set */
static _Atomic int writes_seen;  /* pwrite calls */

static ssize_t test_pwrite(int fd, const void *p, size_t n, off_t off)
{
    atomic_fetch_add(&writes_seen, 1);
    pthread_mutex_lock(&gate_mu);
    while (gate_closed) pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    if (atomic_load(&writes_fail)) {
        errno = ENOSPC;
        return -1;
    }
    return pwrite(fd, p, n, off);
}

static void gate_set(int closed)
{
    pthread_mutex_lock(&gate_mu);
    gate_closed = closed;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

/* ---- fixture -------------------------------------------------------------- */

typedef struct fx {
    script sc;
    th_upstream *u;
    cfg *c;
    sw_metrics *m;
    apq *q;
    dlq *d;
    exporter *e;
    char dir[64];
} fx;

static fx F;

static void set_endpoint(cfg *c, uint16_t port)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)port);
    free(c->exporter.endpoint);
    c->exporter.endpoint = strdup(url);
    TH_ASSERT(c->exporter.endpoint);
}

/* An upstream answering per script, a queue, a DLQ (with_dlq) and an
 * exporter that is not started yet. */
static void fx_begin_with(script sc, int with_dlq, void (*tweak)(cfg *))
{
    memset(&F, 0, sizeof F);
    F.sc = sc;
    F.u = th_upstream_start(decide, &F.sc);
    F.c = cfg_defaults();
    F.m = metrics_new();
    TH_ASSERT(F.c && F.m);
    set_endpoint(F.c, th_upstream_port(F.u));
    F.c->exporter.compression = CFG_COMP_NONE;
    F.c->exporter.max_in_flight = 1;
    F.c->exporter.batch_timeout_ms = 10;
    F.c->exporter.retry_initial_ms = 10;
    F.c->exporter.retry_max_ms = 40;
    F.c->exporter.cb_consecutive_failures = 3;
    F.c->exporter.cb_open_duration_ms = 60000;
    if (tweak) tweak(F.c);
    apq_opts qo;
    apq_opts_default(&qo);
    qo.max_bytes = 1u << 20;
    qo.spill_threshold = 1.0;
    qo.m = F.m;
    F.q = apq_new(&qo);
    TH_ASSERT(F.q);
    F.e = exp_new(F.c, F.q, F.m);
    TH_ASSERT(F.e);
    atomic_store(&writes_fail, 0);
    atomic_store(&writes_seen, 0);
    gate_set(0);
    if (!with_dlq) return;
    snprintf(F.dir, sizeof F.dir, "/tmp/sw-expdel-XXXXXX");
    TH_ASSERT(mkdtemp(F.dir));
    dlq_opts o = {.dir = F.dir, .segment_size = 1u << 20, .max_size = 64u << 20,
                  .compression_level = 1, .fsync = CFG_FSYNC_NEVER, .pwrite = test_pwrite};
    TH_ASSERT_EQ_INT(dlq_open(&o, F.m, &F.d), 0);
    dlq_wait_recovered(F.d);
    exp_set_dlq(F.e, F.d);
}

static void fx_begin(script sc, int with_dlq)
{
    fx_begin_with(sc, with_dlq, NULL);
}

/* The shutdown order of main: stop, close the DLQ, free. */
static void fx_done(void)
{
    gate_set(0);
    atomic_store(&writes_fail, 0);
    exp_stop(F.e, 200);
    dlq_close(F.d);
    exp_free(F.e);
    apq_free(F.q);
    metrics_free(F.m);
    cfg_free(F.c);
    th_upstream_stop(F.u);
    if (F.dir[0]) {
        TH_ASSERT_EQ_INT(th_rmtree(F.dir), 0);
    }
    memset(&F, 0, sizeof F);
}

static item *make_item(int seq, size_t len)
{
    uint8_t data[256];
    TH_ASSERT(len <= sizeof data);
    for (size_t i = 0; i < len; i++) data[i] = (uint8_t)(seq * 7 + i);
    item *it = item_new(SIG_TRACES, CLASS_NORMAL, 1, clock_mono_ns(), data, len);
    TH_ASSERT(it);
    return it;
}

static uint64_t ctr(_Atomic uint64_t *c) { return atomic_load(c); }

/* ---- allocation failure injection: event_new --------------------------------
 * Defined here, this event_new is the one the exporter (linked statically
 * into this program) calls; armed, it fails the fail_at-th call made on
 * the arming thread, else it hands over to libevent's. */
typedef struct event *(*event_new_fn)(struct event_base *, evutil_socket_t, short,
                                      event_callback_fn, void *);
static int ev_fail_at;        /* 0: disarmed */
static int ev_calls;
static pthread_t ev_thread;

struct event *event_new(struct event_base *base, evutil_socket_t fd, short what,
                        event_callback_fn cb, void *arg)
{
    static event_new_fn real;
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "event_new");
    if (ev_fail_at && pthread_equal(pthread_self(), ev_thread) && ++ev_calls == ev_fail_at)
        return NULL;
    return real(base, fd, what, cb, arg);
}

/* ---- life cycle ------------------------------------------------------------ */

/* exp_start fails at each of its event allocations in turn (the last run
 * succeeds): after a failure no thread of the exporter may be left (main
 * closes the DLQ next), and exp_start cannot be called again. */
static void t_failed_start_leaves_no_thread(void)
{
    int failures = 0;
    for (int k = 1; k < 50; k++) {
        fx_begin((script){.then_code = 200}, 1);
        ev_thread = pthread_self();
        ev_calls = 0;
        ev_fail_at = k;
        int rc = exp_start(F.e);
        ev_fail_at = 0;
        if (rc == 0) {
            fx_done();
            break;
        }
        failures++;
        TH_ASSERT_MSG(th_threads_gone("sw-replay", 1000) == 0, "allocation %d failed: replay runs", k);
        TH_ASSERT_EQ_INT(th_threads_gone("sw-export", 1000), 0);
        TH_ASSERT(exp_start(F.e) != 0); /* only exp_free is left */
        fx_done();
    }
    TH_ASSERT(failures >= 4);
}

/* Appends the DLQ writer has not confirmed when the stop's wait ends are
 * still written by dlq_close: exp_stop does not count or report them as
 * lost, and they are in the DLQ afterwards. */
static void t_stop_unconfirmed_appends_not_lost(void)
{
    fx_begin((script){.then_code = 503}, 1);
    for (int i = 0; i < 3; i++) TH_ASSERT_EQ_INT(apq_push(F.q, make_item(i, 100)), 0);
    gate_set(1);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(atomic_load(&exp_metrics_get(F.m)->exp_circuit_state) == 2, 5000);
    WAIT_FOR(atomic_load(&writes_seen) >= 1, 5000); /* the writer waits at the gate */
    TH_ASSERT_EQ_INT(exp_stop(F.e, 100), 0);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_DROPPED]), 0);
    gate_set(0);
    WAIT_FOR(ctr(&dlq_metrics_get(F.m)->dlq_written_bytes) == 300, 5000);
    fx_done();
}

/* ---- delivery tracking ------------------------------------------------------ */

#define N_TRK 4

typedef struct trk_rec {
    int calls;   /* callbacks run */
    int failed;  /* failed flag of the last one */
} trk_rec;

static void trk_cb(void *arg, int failed)
{
    trk_rec *r = arg;
    r->calls++;
    r->failed = failed;
}

typedef struct trk_fx {
    struct event_base *base;
    track_box *box;
    trk_rec rec[N_TRK];
} trk_fx;

/* Pushes N_TRK items, each carrying its own tracker. */
static void push_tracked(trk_fx *t)
{
    t->base = event_base_new();
    TH_ASSERT(t->base);
    t->box = track_box_new(t->base);
    TH_ASSERT(t->box);
    for (int i = 0; i < N_TRK; i++) {
        item_tracker *k = item_tracker_new(t->box, trk_cb, &t->rec[i]);
        TH_ASSERT(k);
        item *it = make_item(i, 100);
        item_track_attach(it, k);
        item_tracker_release(k, 0); /* the item holds the only reference */
        TH_ASSERT_EQ_INT(apq_push(F.q, it), 0);
    }
}

/* Dispatches and returns how many trackers were called back so far. */
static int trk_called(trk_fx *t)
{
    track_box_dispatch(t->box);
    int n = 0;
    for (int i = 0; i < N_TRK; i++) n += t->rec[i].calls > 0;
    return n;
}

/* After the exporter and the DLQ are gone: every tracker was called back
 * exactly once, with the expected outcome. */
static void trk_check(trk_fx *t, int want_failed)
{
    track_box_dispatch(t->box);
    for (int i = 0; i < N_TRK; i++) {
        TH_ASSERT_MSG(t->rec[i].calls == 1, "item %d settled %d times", i, t->rec[i].calls);
        TH_ASSERT_MSG(t->rec[i].failed == want_failed, "item %d: failed %d, want %d", i,
                      t->rec[i].failed, want_failed);
    }
    TH_ASSERT_EQ_INT(track_box_live(t->box), 0);
    track_box_free(t->box);
    event_base_free(t->base);
}

static void use_gzip(cfg *c) { c->exporter.compression = CFG_COMP_GZIP; }

static void give_up_fast(cfg *c)
{
    c->exporter.retry_max_elapsed_ms = 100;
    c->exporter.cb_consecutive_failures = 1000; /* the breaker stays out of it */
    c->exporter.cb_ratio_429 = 0;
}

/* 2xx: each item is settled delivered once the upstream acknowledged its
 * batch (compression none: the request body references the items). */
static void t_track_2xx(void)
{
    trk_fx t = {0};
    fx_begin((script){.then_code = 200}, 0);
    push_tracked(&t);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(trk_called(&t) == N_TRK, 5000);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_SENT]), N_TRK);
    fx_done();
    trk_check(&t, 0);
}

/* 503, then 2xx (gzip: the retry resends the compressed body): settled
 * delivered once, after the retry's answer, not at the failed attempt. */
static void t_track_503_then_2xx(void)
{
    trk_fx t = {0};
    fx_begin_with((script){.first_code = 503, .first_n = 1, .then_code = 200}, 0, use_gzip);
    push_tracked(&t);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(trk_called(&t) == N_TRK, 5000);
    TH_ASSERT(th_upstream_requests(F.u) >= 2);
    TH_ASSERT(ctr(&exp_metrics_get(F.m)->exp_retries) >= 1);
    fx_done();
    trk_check(&t, 0);
}

/* Breaker open with a DLQ: the items go to the DLQ, which settles each as
 * stored (not failed) once written; nothing settles them a second time. */
static void t_track_breaker_spill(void)
{
    trk_fx t = {0};
    fx_begin((script){.then_code = 503}, 1);
    push_tracked(&t);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(trk_called(&t) == N_TRK, 5000);
    TH_ASSERT_EQ_INT(atomic_load(&exp_metrics_get(F.m)->exp_circuit_state), 2);
    TH_ASSERT_EQ_INT(ctr(&dlq_metrics_get(F.m)->dlq_written_bytes), N_TRK * 100);
    fx_done();
    trk_check(&t, 0);
}

/* No DLQ, retries exhausted: the items are dropped for good and their
 * trackers settle as failed, once. */
static void t_track_dropped(void)
{
    trk_fx t = {0};
    fx_begin_with((script){.then_code = 503}, 0, give_up_fast);
    push_tracked(&t);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(trk_called(&t) == N_TRK, 5000);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_DROPPED]), N_TRK);
    fx_done();
    trk_check(&t, 1);
}

/* ---- the DLQ failing ------------------------------------------------------- */

/* Breaker open and every DLQ write failing (ENOSPC): the items stay in
 * memory and the exporter takes nothing more from the queue (which keeps
 * what is pushed meanwhile, so intake would push back); once writes work
 * again, the next retry stores everything: 0 items lost. */
static void t_dlq_failure_keeps_items(void)
{
    fx_begin((script){.then_code = 503}, 1);
    atomic_store(&writes_fail, 1);
    for (int i = 0; i < 5; i++) TH_ASSERT_EQ_INT(apq_push(F.q, make_item(i, 100)), 0);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(atomic_load(&exp_metrics_get(F.m)->exp_circuit_state) == 2, 5000);
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_dlq_failed_items) >= 1, 5000);
    for (int i = 5; i < 25; i++) TH_ASSERT_EQ_INT(apq_push(F.q, make_item(i, 100)), 0);
    int seen = atomic_load(&writes_seen);
    /* a later write (the DLQ's re-probe or the sink's retry) failed too;
     * whether the sink's retry meets the DLQ still refusing at once or gets
     * its own failed write depends on which 1 s timer fires first, so only
     * the outcome is checked: nothing taken, nothing dropped */
    WAIT_FOR(atomic_load(&writes_seen) > seen, 5000);
    TH_ASSERT_EQ_INT(apq_items(F.q), 20); /* nothing taken while the DLQ fails */
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_DROPPED]), 0);
    atomic_store(&writes_fail, 0);
    WAIT_FOR(ctr(&dlq_metrics_get(F.m)->dlq_written_bytes) == 25 * 100, 15000);
    TH_ASSERT_EQ_INT(apq_items(F.q), 0);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_DROPPED]), 0);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 200), 0);
    fx_done();
}

/* The same with retries given up (breaker out of it): the given-up batch
 * the DLQ fails goes back to memory and is sent again; when the upstream
 * recovers it is delivered, nothing dropped. */
static void t_dlq_failure_give_up_kept(void)
{
    fx_begin_with((script){.first_code = 503, .first_n = 8, .then_code = 200}, 1,
                  give_up_fast);
    atomic_store(&writes_fail, 1);
    for (int i = 0; i < 3; i++) TH_ASSERT_EQ_INT(apq_push(F.q, make_item(i, 100)), 0);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_dlq_failed_items) >= 1, 5000);
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_SENT]) == 3, 15000);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_DROPPED]), 0);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 200), 0);
    fx_done();
}

int main(void)
{
    log_setup(LOG_LVL_WARN, 0);
    TH_RUN(t_failed_start_leaves_no_thread);
    TH_RUN(t_stop_unconfirmed_appends_not_lost);
    TH_RUN(t_track_2xx);
    TH_RUN(t_track_503_then_2xx);
    TH_RUN(t_track_breaker_spill);
    TH_RUN(t_track_dropped);
    TH_RUN(t_dlq_failure_keeps_items);
    TH_RUN(t_dlq_failure_give_up_kept);
    return th_done();
}
