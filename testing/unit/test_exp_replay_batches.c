/* test_exp_replay_batches.c — the export loop's replay module
 * (exp_replay.h) on its own, over a real DLQ in a temporary directory and
 * a batcher: replay batches carry the records in order, one at a time
 * until acknowledged; a failed piece is appended to the DLQ again (the
 * owner's callback sees each completion) and comes back at the end; a
 * piece that fails while stopping is let go without an append. */
#include "exporters/otlp/exp_replay.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/clock.h"
#include "testing/lib/th.h"
#include "testing/lib/th_dlq.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_wait.h"

#define N 10

typedef struct env {
    char dir[64];
    cfg *c;
    dlq *d;
    struct event_base *base;
    exp_batcher *bt;
    dlq_sink *sink;
    exp_replay *rp;
    int wakes, reappended, rejected;
} env;

static env V;

static void on_wake(void *arg) { ((env *)arg)->wakes++; }
static void on_drop(void *arg, sw_signal s, uint64_t i, uint64_t r)
{
    (void)arg; (void)s; (void)i; (void)r;
    TH_ASSERT_MSG(0, "no item should be dropped");
}
static void on_room(void *arg) { (void)arg; }

static void on_reappended(void *arg, item *it, int status)
{
    TH_ASSERT_EQ_INT(status, 0);
    (void)it;
    ((env *)arg)->reappended++;
}

static void on_rejected(void *arg, item *it, int status)
{
    TH_ASSERT_EQ_INT(status, 0);
    (void)it;
    ((env *)arg)->rejected++;
}

static int spin(void)
{
    event_base_loop(V.base, EVLOOP_NONBLOCK);
    return 1;
}

static void env_init(void)
{
    memset(&V, 0, sizeof V);
    snprintf(V.dir, sizeof V.dir, "/tmp/sw-exprb-XXXXXX");
    TH_ASSERT(mkdtemp(V.dir));
    TH_ASSERT((V.c = cfg_defaults()) != NULL);
    dlq_opts o = {.dir = V.dir, .segment_size = 1u << 20, .max_size = 64u << 20,
                  .compression_level = 1, .fsync = CFG_FSYNC_NEVER};
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &V.d), 0);
    dlq_wait_recovered(V.d);
    th_dlq_write_indexed(V.d, N, 64);
    TH_ASSERT((V.base = event_base_new()) != NULL);
    exp_batcher_cfg bc = {4 * 64, 60000, CFG_COMP_NONE}; /* up to 4 records a batch */
    TH_ASSERT((V.bt = exp_batcher_new(V.base, &bc, on_wake, on_drop, &V)) != NULL);
    TH_ASSERT((V.sink = dlq_sink_new(V.d, V.base, on_room, NULL)) != NULL);
    exp_replay_cbs cbs = {on_wake, on_reappended, on_rejected};
    TH_ASSERT((V.rp = exp_replay_new(V.d, V.c, V.base, V.bt, V.sink, &cbs, &V)) != NULL);
    TH_ASSERT_EQ_INT(exp_replay_start(V.rp), 0);
}

static void env_destroy(void)
{
    exp_replay_stop(V.rp);
    exp_replay_drain(V.rp);
    exp_replay_close(V.rp);
    exp_batcher_free_live(V.bt);
    exp_replay_free(V.rp);
    dlq_sink_drain(V.sink, 5000, NULL);
    dlq_sink_free(V.sink);
    event_base_free(V.base);
    exp_batcher_free(V.bt);
    dlq_close(V.d);
    cfg_free(V.c);
    TH_ASSERT_EQ_INT(th_rmtree(V.dir), 0);
}

/* Waits for the module to offer a batch, takes it; returns it (READY). */
static exp_batch *take(void)
{
    WAIT_FOR(spin() && exp_replay_turn(V.rp, 0, 1), 5000);
    TH_ASSERT_EQ_INT(exp_replay_take(V.rp), 0);
    exp_batch *b = exp_batcher_ready_pop(V.bt);
    TH_ASSERT(b && b->replay && b->sig == SIG_LOGS && b->n_items >= 1 && b->n_items <= 4);
    TH_ASSERT(exp_batcher_ready_pop(V.bt) == NULL);
    TH_ASSERT(!exp_replay_turn(V.rp, 0, 1)); /* one replay batch at a time */
    return b;
}

/* Checks b's records continue the sequence at *next. */
static void expect_in_order(const exp_batch *b, int *next)
{
    for (const item *it = b->head; it; it = it->next) {
        TH_ASSERT_EQ_INT(it->len, 64);
        TH_ASSERT_EQ_INT(it->data[0], *next);
        (*next)++;
    }
}

static void ack(exp_batch *b)
{
    exp_batch_flight(b);
    exp_replay_acked(V.rp);
    exp_batch_done(b);
}

static void t_in_order_one_at_a_time(void)
{
    env_init();
    int next = 0;
    while (next < N) {
        exp_batch *b = take();
        expect_in_order(b, &next);
        int w = V.wakes;
        ack(b);
        TH_ASSERT(V.wakes > w); /* the ack lets the owner look again */
    }
    TH_ASSERT_EQ_INT(V.reappended, 0);
    env_destroy();
}

static void t_failed_piece_comes_back(void)
{
    env_init();
    int next = 0;
    exp_batch *b = take();
    uint32_t n = b->n_items;
    int first = b->head->data[0];
    expect_in_order(b, &next);
    exp_batch_flight(b);
    exp_replay_failed(V.rp, b, "test", 0); /* b is done */
    WAIT_FOR(spin() && V.reappended == (int)n, 5000);
    /* the rest, then the re-appended records at the end of the DLQ */
    int want[2 * N], total = 0, seen = 0;
    for (int i = (int)n; i < N; i++) want[total++] = i;
    for (int i = 0; i < (int)n; i++) want[total++] = first + i;
    while (seen < total) {
        b = take();
        for (const item *it = b->head; it; it = it->next) {
            TH_ASSERT(seen < total);
            TH_ASSERT_EQ_INT(it->data[0], want[seen]);
            seen++;
        }
        ack(b);
    }
    TH_ASSERT_EQ_INT(V.rejected, 0);
    env_destroy();
}

static void t_stopping_lets_go(void)
{
    env_init();
    exp_batch *b = take();
    exp_batch_flight(b);
    exp_replay_failed(V.rp, b, "stop", 1);
    for (int i = 0; i < 10; i++) spin();
    TH_ASSERT_EQ_INT(V.reappended, 0);
    TH_ASSERT(exp_batcher_any_live(V.bt) == NULL);
    env_destroy();
}

int main(void)
{
    TH_RUN(t_in_order_one_at_a_time);
    TH_RUN(t_failed_piece_comes_back);
    TH_RUN(t_stopping_lets_go);
    return th_done();
}
