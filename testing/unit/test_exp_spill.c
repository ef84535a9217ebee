/* test_exp_spill.c — the exporter's spill policy (exporters/otlp/exp_spill.h):
 * where a batch goes when it is given up, refused or cannot be sent while
 * the breaker blocks, and the counts kept on the way.
 *
 * Each case runs a batcher on a private event_base and, where a DLQ is
 * involved, a real DLQ in a temporary directory whose pwrite(2) can be
 * made to fail (a storage that refuses), with the DLQ sink on the same
 * base; the loop is spun by hand. The owner's drop counter is a fake that
 * records what it is told.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlq/dlq.h"
#include "dlq/dlq_consumer.h"
#include "exporters/otlp/exp_batch.h"
#include "exporters/otlp/exp_spill.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_wait.h"
#include "exporters/otlp/exp_metrics.h"

static _Atomic int writes_fail;

static ssize_t test_pwrite(int fd, const void *p, size_t n, off_t off)
{
    if (atomic_load(&writes_fail)) {
        errno = ENOSPC;
        return -1;
    }
    return pwrite(fd, p, n, off);
}

typedef struct fx {
    struct event_base *base;
    exp_batcher *bt;
    sw_metrics *m;
    dlq *d;
    dlq_sink *sink;
    exp_spill *sp;
    char dir[64];
    /* the fake owner's drop counter */
    uint64_t drop_calls, drop_items, drop_records;
} fx;

static fx F;

static uint64_t on_dropped(void *arg, sw_signal sig, uint64_t items, uint64_t records)
{
    fx *f = arg;
    (void)sig;
    f->drop_calls++;
    f->drop_items += items;
    f->drop_records += records;
    return f->drop_items;
}

static void on_wake(void *arg)
{
    (void)arg;
}

static void on_batch_drop(void *arg, sw_signal sig, uint64_t items, uint64_t records)
{
    (void)sig;
    (void)records;
    ((fx *)arg)->drop_items += items;
}

/* Always 1: WAIT_FOR(spin() && cond, ms) runs the loop while it polls. */
static int spin(void)
{
    event_base_loop(F.base, EVLOOP_NONBLOCK);
    return 1;
}

static void fx_begin(int with_dlq)
{
    memset(&F, 0, sizeof F);
    atomic_store(&writes_fail, 0);
    F.base = event_base_new();
    F.m = metrics_new();
    TH_ASSERT(F.base && F.m);
    exp_batcher_cfg bc = {1u << 20, 60000, CFG_COMP_NONE};
    F.bt = exp_batcher_new(F.base, &bc, on_wake, on_batch_drop, &F);
    F.sp = exp_spill_new(F.bt, exp_metrics_get(F.m), on_dropped, &F);
    TH_ASSERT(F.bt && F.sp);
    if (!with_dlq) return;
    snprintf(F.dir, sizeof F.dir, "/tmp/sw-expspill-XXXXXX");
    TH_ASSERT(mkdtemp(F.dir));
    dlq_opts o = {.dir = F.dir, .segment_size = 1u << 20, .max_size = 64u << 20,
                  .compression_level = 1, .fsync = CFG_FSYNC_NEVER, .pwrite = test_pwrite};
    TH_ASSERT_EQ_INT(dlq_open(&o, F.m, &F.d), 0);
    dlq_wait_recovered(F.d);
    F.sink = dlq_sink_new(F.d, F.base, on_wake, NULL);
    TH_ASSERT(F.sink);
    exp_spill_set_dlq(F.sp, F.sink, NULL);
}

static void fx_done(void)
{
    atomic_store(&writes_fail, 0);
    exp_spill_free(F.sp);
    dlq_sink_free(F.sink);
    exp_batcher_free_live(F.bt);
    if (F.d) dlq_close(F.d);
    event_base_free(F.base);
    exp_batcher_free(F.bt);
    metrics_free(F.m);
    if (F.dir[0]) {
        TH_ASSERT_EQ_INT(th_rmtree(F.dir), 0);
    }
    memset(&F, 0, sizeof F);
}

/* An item of 32 bytes of c, counting `count` records, class klass. */
static item *mk(uint8_t c, uint32_t count, sw_class klass)
{
    uint8_t data[32];
    memset(data, c, sizeof data);
    item *it = item_new(SIG_TRACES, klass, count, clock_mono_ns(), data, sizeof data);
    TH_ASSERT(it);
    return it;
}

/* A batch (not the open one) of n items with 1, 2, ... n records. */
static exp_batch *mk_batch(uint32_t n)
{
    exp_batch *b = exp_batch_new(F.bt, SIG_TRACES);
    TH_ASSERT(b);
    for (uint32_t i = 1; i <= n; i++) exp_batch_append(b, mk((uint8_t)i, i, CLASS_HIGH));
    return b;
}

/* Records of the DLQ's main area: how many, their item counts summed, and
 * how many kept class klass. */
static void read_dlq(uint64_t *records, uint64_t *items, uint64_t *with_class, sw_class klass)
{
    dlq_reader *r = dlq_reader_new(F.d, 0, 0);
    TH_ASSERT(r);
    *records = *items = *with_class = 0;
    item *it;
    dlq_pos pos;
    while (dlq_reader_next(r, &it, &pos) == 0 && it) {
        (*records)++;
        *items += it->count;
        if (it->klass == klass) (*with_class)++;
        item_free(it);
    }
    dlq_reader_free(r);
}

static uint64_t ctr(_Atomic uint64_t *c)
{
    return atomic_load(c);
}

/* ---- without a DLQ ----------------------------------------------------------- */

static void t_no_dlq_give_up_drops(void)
{
    fx_begin(0);
    exp_spill_give_up(F.sp, mk_batch(3), "test");
    TH_ASSERT_EQ_INT(F.drop_calls, 1);
    TH_ASSERT_EQ_INT(F.drop_items, 3);
    TH_ASSERT_EQ_INT(F.drop_records, 1 + 2 + 3);
    TH_ASSERT(exp_batcher_any_live(F.bt) == NULL); /* the batch is done */
    TH_ASSERT_EQ_INT(exp_spill_get_stats(F.sp).spilled, 0);
    /* an empty batch (the breaker's probe) is simply done */
    exp_spill_give_up(F.sp, exp_batch_new(F.bt, SIG_TRACES), "test");
    TH_ASSERT_EQ_INT(F.drop_calls, 1);
    TH_ASSERT(exp_batcher_any_live(F.bt) == NULL);
    fx_done();
}

static void t_no_dlq_reject_counts(void)
{
    fx_begin(0);
    exp_spill_reject(F.sp, mk_batch(2), 400, "bad");
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_REJECTED]), 1 + 2);
    TH_ASSERT_EQ_INT(F.drop_calls, 0); /* refused, not dropped */
    TH_ASSERT(exp_batcher_any_live(F.bt) == NULL);
    item *it = mk(1, 1, CLASS_NORMAL);
    TH_ASSERT_EQ_INT(exp_spill_item(F.sp, it), SW_ECLOSED); /* no DLQ: the caller keeps it */
    item_free(it);
    fx_done();
}

static void t_413_halves(void)
{
    fx_begin(0);
    exp_spill_reject(F.sp, mk_batch(5), 413, "too large");
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_REJECTED]), 0);
    exp_batch *first = exp_batcher_ready_pop(F.bt);
    exp_batch *second = exp_batcher_ready_pop(F.bt);
    TH_ASSERT(first && second && !exp_batcher_ready_peek(F.bt));
    TH_ASSERT_EQ_INT(first->n_items, 3); /* the first ceil(n/2) first in line */
    TH_ASSERT_EQ_INT(second->n_items, 2);
    TH_ASSERT_EQ_INT(first->head->count, 1);
    /* a single item answered 413 is refused for good */
    exp_batch_done(second);
    exp_batch *one = exp_batch_new(F.bt, SIG_TRACES);
    exp_batch_append(one, mk(9, 7, CLASS_NORMAL));
    exp_spill_reject(F.sp, one, 413, "too large");
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_REJECTED]), 7);
    TH_ASSERT(!exp_batcher_ready_peek(F.bt));
    exp_batch_done(first);
    fx_done();
}

/* ---- with a DLQ -------------------------------------------------------------- */

static void t_give_up_to_dlq(void)
{
    fx_begin(1);
    exp_spill_give_up(F.sp, mk_batch(4), "retry.max_elapsed_time reached");
    WAIT_FOR(spin() && exp_spill_get_stats(F.sp).spilled == 4, 5000);
    TH_ASSERT_EQ_INT(F.drop_calls, 0);
    TH_ASSERT(exp_batcher_any_live(F.bt) == NULL);
    uint64_t records, items, high;
    read_dlq(&records, &items, &high, CLASS_HIGH);
    TH_ASSERT_EQ_INT(records, 4);
    TH_ASSERT_EQ_INT(items, 1 + 2 + 3 + 4);
    TH_ASSERT_EQ_INT(high, 4); /* class kept */
    fx_done();
}

/* Breaker open: the open batch and new items go to the DLQ. */
static void t_breaker_open_spills(void)
{
    fx_begin(1);
    for (int i = 0; i < 3; i++) TH_ASSERT_EQ_INT(exp_batcher_add(F.bt, mk(1, 2, CLASS_CRITICAL)), 0);
    TH_ASSERT(exp_batcher_open(F.bt, SIG_TRACES));
    TH_ASSERT_EQ_INT(exp_spill_waiting(F.sp), 0); /* all taken */
    TH_ASSERT(!exp_batcher_open(F.bt, SIG_TRACES) && !exp_batcher_ready_peek(F.bt));
    TH_ASSERT_EQ_INT(exp_spill_item(F.sp, mk(2, 5, CLASS_CRITICAL)), 0);
    WAIT_FOR(spin() && exp_spill_get_stats(F.sp).spilled == 4, 5000);
    uint64_t records, items, crit;
    read_dlq(&records, &items, &crit, CLASS_CRITICAL);
    TH_ASSERT_EQ_INT(records, 4);
    TH_ASSERT_EQ_INT(items, 3 * 2 + 5);
    TH_ASSERT_EQ_INT(crit, 4);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_dlq_failed_items), 0);
    fx_done();
}

/* A failing DLQ never drops: the items go back to memory, the sink refuses
 * further appends, and spilling waits (the caller stops popping). */
static void t_failing_dlq_keeps_in_memory(void)
{
    fx_begin(1);
    atomic_store(&writes_fail, 1);
    exp_spill_give_up(F.sp, mk_batch(3), "test");
    WAIT_FOR(spin() && ctr(&exp_metrics_get(F.m)->exp_dlq_failed_items) >= 3, 5000);
    TH_ASSERT_EQ_INT(F.drop_calls, 0);
    exp_batch *open = exp_batcher_open(F.bt, SIG_TRACES);
    TH_ASSERT(open);
    TH_ASSERT_EQ_INT(open->n_items, 3); /* held here */
    TH_ASSERT_EQ_INT(open->n_records, 1 + 2 + 3);
    TH_ASSERT_EQ_INT(exp_spill_waiting(F.sp), 1); /* sink failing: nothing moves */
    TH_ASSERT(exp_batcher_open(F.bt, SIG_TRACES) == open);
    item *it = mk(4, 1, CLASS_NORMAL);
    TH_ASSERT(exp_spill_item(F.sp, it) != 0); /* refused: the caller keeps it */
    item_free(it);
    TH_ASSERT_EQ_INT(exp_spill_get_stats(F.sp).spilled, 0);
    fx_done();
}

/* While stopping nothing can hold an item any more: what the DLQ fails is
 * dropped and counted as such. */
static void t_stopping_failure_drops(void)
{
    fx_begin(1);
    exp_spill_stopping(F.sp);
    TH_ASSERT_EQ_INT(exp_spill_is_stopping(F.sp), 1);
    atomic_store(&writes_fail, 1);
    exp_spill_give_up(F.sp, mk_batch(2), "shutdown timeout");
    WAIT_FOR(spin() && F.drop_items == 2, 5000);
    TH_ASSERT_EQ_INT(F.drop_records, 1 + 2);
    TH_ASSERT_EQ_INT(exp_spill_get_stats(F.sp).spill_failed, 2);
    TH_ASSERT(exp_batcher_open(F.bt, SIG_TRACES) == NULL); /* nothing held */
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_dlq_failed_items), 0);
    fx_done();
}

/* A refusal with a DLQ: counted REJECTED and kept in the rejected area,
 * never in the main area (not replayed). */
static void t_reject_kept(void)
{
    fx_begin(1);
    exp_spill_reject(F.sp, mk_batch(3), 400, "invalid");
    WAIT_FOR(spin() && exp_spill_get_stats(F.sp).rejected_kept == 3, 5000);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_REJECTED]), 1 + 2 + 3);
    TH_ASSERT_EQ_INT(exp_spill_get_stats(F.sp).rejected_lost, 0);
    TH_ASSERT_EQ_INT(F.drop_calls, 0);
    dlq_rej_stats rs;
    dlq_rejected_stats(F.d, &rs);
    TH_ASSERT_EQ_INT(rs.records, 3);
    uint64_t records, items, any;
    read_dlq(&records, &items, &any, CLASS_NORMAL);
    TH_ASSERT_EQ_INT(records, 0);
    fx_done();
}

/* A refused item the rejected area cannot keep is dropped (counted). */
static void t_reject_lost(void)
{
    fx_begin(1);
    atomic_store(&writes_fail, 1);
    exp_spill_reject(F.sp, mk_batch(2), 403, "forbidden");
    WAIT_FOR(spin() && exp_spill_get_stats(F.sp).rejected_lost == 2, 5000);
    TH_ASSERT_EQ_INT(F.drop_items, 2);
    TH_ASSERT_EQ_INT(F.drop_records, 1 + 2);
    TH_ASSERT_EQ_INT(exp_spill_get_stats(F.sp).rejected_kept, 0);
    fx_done();
}

/* The stop: exp_spill_finish waits for pending appends. */
static void t_finish_waits(void)
{
    fx_begin(1);
    exp_spill_stopping(F.sp);
    exp_spill_give_up(F.sp, mk_batch(5), "shutdown timeout");
    exp_spill_finish(F.sp, 5000);
    exp_spill_stats st = exp_spill_get_stats(F.sp);
    TH_ASSERT_EQ_INT(st.spilled + st.unconfirmed, 5);
    TH_ASSERT_EQ_INT(F.drop_calls, 0);
    fx_done();
}

int main(void)
{
    log_setup(LOG_LVL_ERROR, 0);
    TH_RUN(t_no_dlq_give_up_drops);
    TH_RUN(t_no_dlq_reject_counts);
    TH_RUN(t_413_halves);
    TH_RUN(t_give_up_to_dlq);
    TH_RUN(t_breaker_open_spills);
    TH_RUN(t_failing_dlq_keeps_in_memory);
    TH_RUN(t_stopping_failure_drops);
    TH_RUN(t_reject_kept);
    TH_RUN(t_reject_lost);
    TH_RUN(t_finish_waits);
    return th_done();
}
