/* exp_spill.c — the exporter's spill policy (exp_spill.h): breaker-open
 * spills, give-ups, permanent refusals, and the bookkeeping of each.
 *
 * Three spill paths, all keeping each item's class and signal:
 *   breaker open   exp_spill_item / spill_batch: what the DLQ refuses
 *                  (max_size reached, ring full, failing) stays here and
 *                  popping stops, exactly as without a DLQ (the queue fills
 *                  and the receiver pushes back) — nothing is dropped;
 *   give-up        spill_chain (retries exhausted, stop deadline): an item
 *                  the sink refuses is kept in memory (below);
 *   completion     an append that fails (SW_EIO: a write error) hands the
 *                  item back.
 * A storage failure never drops an item: an item the DLQ fails or refuses
 * goes back in memory (its signal's open batch: sent upstream once the
 * breaker lets it, or spilled again). While the sink is failing it refuses
 * appends until its retry is due (dlq_sink_blocked): the breaker-open path
 * then keeps its batches and pops nothing, so the queue fills and intake
 * answers 503 + Retry-After. Counted in exp_dlq_failed_items and logged
 * (rate-limited). Only while stopping is a failed append counted DROPPED
 * (nothing can hold it any more). At the stop, appends still unconfirmed
 * after the wait are neither counted nor reported as lost: the DLQ writes
 * them before it closes.
 *
 * Permanent refusals (exp_classify_status: EXP_REJECT, e.g. 400, 401, 403,
 * 404, 413, 500) are never retried. Two cases:
 *   413 for a batch of several items   the batch is split by items into two
 *                  halves, each sent on its own, first half first, ahead
 *                  of newer batches (a replay batch's halves stay replay
 *                  pieces: its position is acknowledged once every piece
 *                  is settled). Halving ends at single items, so a batch
 *                  of n items costs at most 2n - 1 requests;
 *   anything else, or 413 for one item  the records are counted REJECTED
 *                  and logged (status and the start of the upstream's
 *                  message). With a DLQ the items are appended to its
 *                  rejected area with that status and message (kept for
 *                  inspection, never replayed); an item the rejected area
 *                  cannot take (full, write error) is counted DROPPED too
 *                  and logged. Without a DLQ nothing is kept.
 * A poison item therefore costs a few requests once and never blocks the
 * items behind it. Appends refused only because the DLQ's ring is full for
 * the moment wait in the DLQ sink's backlog (with their status and
 * message) and are appended as completions free room.
 */
#define LOG_COMPONENT "exporter"
#include "exporters/otlp/exp_spill.h"

#include <stdlib.h>

#include "runtime/err.h"
#include "runtime/log.h"

struct exp_spill {
    exp_batcher *bt;           /* borrowed */
    exp_metrics *m;            /* borrowed: the exporter's block */
    dlq_sink *sink;            /* borrowed; NULL without a DLQ */
    exp_replay *rp;            /* borrowed; NULL without a DLQ */
    exp_spill_drop_fn dropped;
    void *arg;
    int stopping;
    exp_spill_stats st;
};

exp_spill *exp_spill_new(exp_batcher *bt, exp_metrics *m, exp_spill_drop_fn dropped, void *arg)
{
    exp_spill *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->bt = bt;
    s->m = m;
    s->dropped = dropped;
    s->arg = arg;
    return s;
}

void exp_spill_set_dlq(exp_spill *s, dlq_sink *sink, exp_replay *rp)
{
    s->sink = sink;
    s->rp = rp;
}

void exp_spill_free(exp_spill *s)
{
    free(s);
}

void exp_spill_stopping(exp_spill *s)
{
    s->stopping = 1;
    if (s->sink) dlq_sink_stopping(s->sink);
}

int exp_spill_is_stopping(const exp_spill *s)
{
    return s->stopping;
}

exp_spill_stats exp_spill_get_stats(const exp_spill *s)
{
    return s->st;
}

/* ---- spill: the DLQ sink ---------------------------------------------------- */

/* The DLQ could not take it (status: the refusal or the failed append):
 * puts it back in memory (its signal's open batch) and counts. 0, or
 * SW_ECLOSED while stopping (the caller still owns it). */
static int spill_hold(exp_spill *s, item *it, int status)
{
    if (s->stopping) return SW_ECLOSED;
    metrics_add(&s->m->exp_dlq_failed_items, 1);
    LOG_WARN_RL(10, "the DLQ did not take a %s item (%s): kept in memory",
                sw_signal_name((sw_signal)it->signal), sw_strerror(status));
    exp_batcher_add(s->bt, it);
    return 0;
}

/* Completion of an exporter spill (and the end of a refused one). */
static void spill_done(void *arg, item *it, int status)
{
    exp_spill *s = arg;
    if (status == 0) {
        s->st.spilled++;
        return;
    }
    if (spill_hold(s, it, status) == 0) return;
    s->dropped(s->arg, (sw_signal)it->signal, 1, it->count);
    s->st.spill_failed++;
    LOG_ERROR_RL(1, "the DLQ could not store a %s item (%u records, class %s): %s; dropped "
                 "(%llu items lost to DLQ errors so far)", sw_signal_name((sw_signal)it->signal),
                 it->count, sw_class_name((sw_class)it->klass), sw_strerror(status),
                 (unsigned long long)s->st.spill_failed);
    item_free(it);
}

int exp_spill_item(exp_spill *s, item *it)
{
    if (!s->sink) return SW_ECLOSED;
    if (dlq_sink_backlogged(s->sink)) return SW_EFULL; /* at most one waits there */
    return dlq_sink_put(s->sink, it, spill_done, s);
}

/* Breaker open: moves the items of an OPEN or READY batch to the DLQ; what
 * the DLQ refuses goes back to a new sealed batch, first in line. 0 when
 * all were taken, SW_EFULL otherwise. b is done either way. */
static int spill_batch(exp_spill *s, exp_batch *b)
{
    /* A replay batch is already on disk: hand it back to the replay side
     * (re-append and ack), or replay stops for good. */
    if (b->replay) {
        exp_replay_failed(s->rp, b, "circuit open", s->stopping);
        return 0;
    }
    sw_signal sig = b->sig;
    uint32_t n = b->n_items, taken = 0;
    item *chain = exp_batch_take_items(b);
    exp_batch_done(b);
    while (chain) {
        item *next = chain->next;
        if (exp_spill_item(s, chain) != 0) break;
        chain = next;
        taken++;
    }
    if (taken)
        LOG_INFO_RL(10, "circuit open: %u of %u %s items of a batch moved to the DLQ", taken, n,
                    sw_signal_name(sig));
    if (!chain) return 0;
    exp_batch *nb = exp_batch_new(s->bt, sig);
    for (item *it = chain, *next; it; it = next) {
        next = it->next;
        if (nb) exp_batch_append(nb, it);
        else spill_done(s, it, SW_ENOMEM);
    }
    if (nb) exp_batch_seal(nb, 1); /* waits first in line */
    return SW_EFULL;
}

int exp_spill_waiting(exp_spill *s)
{
    if (!s->sink || dlq_sink_blocked(s->sink)) return 1;
    exp_batch *b;
    while ((b = exp_batcher_ready_peek(s->bt)) != NULL)
        if (spill_batch(s, b) != 0) return 1;
    for (int i = 0; i < SIG_COUNT; i++)
        if ((b = exp_batcher_open(s->bt, (sw_signal)i)) && spill_batch(s, b) != 0) return 1;
    return 0;
}

/* Give-up: every item of the chain goes to the DLQ; what it refuses is
 * kept in memory (counted dropped only while stopping). */
static void spill_chain(exp_spill *s, item *chain, const char *why)
{
    uint64_t refused = 0;
    for (item *it = chain, *next; it; it = next) {
        next = it->next;
        int rc = dlq_sink_put(s->sink, it, spill_done, s);
        if (rc == 0 || spill_hold(s, it, rc) == 0) continue;
        refused++;
        spill_done(s, it, rc);
    }
    if (refused)
        LOG_WARN_RL(1, "the DLQ refused %llu items given up (%s): dropped",
                    (unsigned long long)refused, why);
}

void exp_spill_give_up(exp_spill *s, exp_batch *b, const char *why)
{
    if (b->replay) {
        exp_replay_failed(s->rp, b, why, s->stopping);
        return;
    }
    if (b->n_items == 0) { /* an empty probe */
        exp_batch_done(b);
        return;
    }
    if (s->sink) {
        uint32_t n = b->n_items;
        uint64_t records = b->n_records;
        item *chain = exp_batch_take_items(b);
        LOG_WARN_RL(1, "giving up a %s batch (%s) after %u retries: %u items, %llu records "
                    "go to the DLQ", sw_signal_name(b->sig), why, b->attempt, n,
                    (unsigned long long)records);
        exp_batch_done(b);
        spill_chain(s, chain, why);
        return;
    }
    uint64_t so_far = s->dropped(s->arg, b->sig, b->n_items, b->n_records);
    LOG_WARN_RL(1, "dropping a %s batch (%s): %u items, %llu records after %u retries; "
                "%llu items dropped so far",
                sw_signal_name(b->sig), why, b->n_items, (unsigned long long)b->n_records,
                b->attempt, (unsigned long long)so_far);
    exp_batch_done(b);
}

void exp_spill_reappended(exp_spill *s, item *it, int status)
{
    if (status == 0 || spill_hold(s, it, status) == 0) return;
    s->dropped(s->arg, (sw_signal)it->signal, 1, it->count);
    s->st.spill_failed++;
    LOG_ERROR_RL(1, "replay: the DLQ could not take back a %s item (%u records): %s; "
                 "dropped", sw_signal_name((sw_signal)it->signal), it->count,
                 sw_strerror(status));
    item_free(it);
}

void exp_spill_finish(exp_spill *s, uint64_t ms)
{
    if (!s->sink) return;
    size_t waiting = 0;
    size_t pending = dlq_sink_drain(s->sink, ms, &waiting);
    if (waiting)
        LOG_ERROR("stop: %zu items the DLQ had no room for within %llu ms: not stored",
                  waiting, (unsigned long long)ms);
    /* Appends the writer has not confirmed yet are not lost: dlq_close()
     * writes every pending append before it returns, and exp_free()
     * dispatches their completions (a failure is counted and logged
     * there). */
    if (pending)
        LOG_WARN("stop: %zu appends to the DLQ not confirmed within %llu ms; the DLQ "
                 "completes them when it closes", pending, (unsigned long long)ms);
    s->st.unconfirmed = pending;
}

/* ---- permanent refusals: 413 splitting and the DLQ's rejected area ---------- */

void exp_spill_rejected(exp_spill *s, item *it, int status)
{
    if (status == 0) {
        s->st.rejected_kept++;
        return;
    }
    s->dropped(s->arg, (sw_signal)it->signal, 1, it->count);
    s->st.rejected_lost++;
    LOG_ERROR_RL(1, "the DLQ's rejected area could not keep a refused %s item (%u records): "
                 "%s; dropped (%llu refused items lost so far, %llu kept)",
                 sw_signal_name((sw_signal)it->signal), it->count,
                 status == SW_ETOOBIG ? "it is full (its share of dlq.max_size)"
                                      : sw_strerror(status),
                 (unsigned long long)s->st.rejected_lost,
                 (unsigned long long)s->st.rejected_kept);
    item_free(it);
}

static void rej_done(void *arg, item *it, int status)
{
    exp_spill_rejected(arg, it, status);
}

/* Appends every item of the chain (owned) to the rejected area; rej_done
 * runs once per item. */
static void reject_chain(exp_spill *s, item *chain, int code, const char *msg)
{
    for (item *it = chain, *next; it; it = next) {
        next = it->next;
        it->next = NULL;
        int rc = dlq_sink_put_rejected(s->sink, it, code, msg, rej_done, s);
        if (rc != 0) rej_done(s, it, rc);
    }
}

/* 413 for several items: b is halved (the batcher does it). 0, or
 * SW_ENOMEM (b is left as it was). */
static int batch_split(exp_spill *s, exp_batch *b)
{
    uint32_t n = b->n_items;
    sw_signal sig = b->sig;
    int replay = b->replay;
    int pieces = exp_batch_split(b);
    if (pieces < 0) return pieces;
    LOG_INFO_RL(10, "upstream answered 413 to a %s batch of %u items: split into %u + %u items",
                sw_signal_name(sig), n, (n + 1) / 2, n - (n + 1) / 2);
    if (replay) exp_replay_repiece(s->rp, pieces - 1);
    return 0;
}

static void log_reject(const exp_batch *b, int code, const char *msg, int kept)
{
    LOG_WARN_RL(10, "upstream refused a %s batch with HTTP %d (%u items, %llu records, "
                "not retried%s): %s", sw_signal_name(b->sig), code, b->n_items,
                (unsigned long long)b->n_records,
                kept ? "; kept in the DLQ's rejected area" : "", msg[0] ? msg : "(empty body)");
}

void exp_spill_reject(exp_spill *s, exp_batch *b, int code, const char *msg)
{
    if (code == 413 && b->n_items > 1 && batch_split(s, b) == 0) return;
    int stays = b->replay && s->stopping; /* let go: replayed (and judged) after a restart */
    log_reject(b, code, msg, s->sink && b->n_items > 0 && !stays);
    if (!stays) metrics_add(&s->m->exp_items[b->sig][EXP_RESULT_REJECTED], b->n_records);
    if (b->replay) {
        exp_replay_rejected(s->rp, b, code, msg, s->stopping);
        return;
    }
    if (!s->sink || b->n_items == 0) {
        exp_batch_done(b); /* without a DLQ nothing is kept */
        return;
    }
    item *chain = exp_batch_take_items(b);
    exp_batch_done(b);
    reject_chain(s, chain, code, msg);
}
