/* exp_reject.c — permanent refusals: 413 splitting and the DLQ's rejected area.
 *
 * A batch answered with a permanent error (exp_classify_status: EXP_REJECT,
 * e.g. 400, 401, 403, 404, 413, 500) is never retried. Two cases:
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
 * message) and are appended as completions free room. Export thread only.
 */
#define LOG_COMPONENT "exporter"
#include "exporters/otlp/exp_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/log.h"

void exp_reject_item_done(exporter *e, item *it, int status)
{
    if (status == 0) {
        e->rejected_kept_total++;
        return;
    }
    exp_count_dropped(e, (sw_signal)it->signal, 1, it->count);
    e->rejected_lost_total++;
    LOG_ERROR_RL(1, "the DLQ's rejected area could not keep a refused %s item (%u records): "
                 "%s; dropped (%llu refused items lost so far, %llu kept)",
                 sw_signal_name((sw_signal)it->signal), it->count,
                 status == SW_ETOOBIG ? "it is full (its share of dlq.max_size)"
                                      : sw_strerror(status),
                 (unsigned long long)e->rejected_lost_total,
                 (unsigned long long)e->rejected_kept_total);
    item_free(it);
}

static void rej_done(void *arg, item *it, int status)
{
    exp_reject_item_done(arg, it, status);
}

/* Appends one item to the rejected area; cb runs once for it either way. */
static void reject_one(exporter *e, item *it, int code, const char *msg, dlq_done_fn cb)
{
    int rc = dlq_sink_put_rejected(e->sink, it, code, msg, cb, e);
    if (rc != 0) cb(e, it, rc);
}

void exp_reject_chain(exporter *e, item *chain, int code, const char *msg, dlq_done_fn cb)
{
    for (item *it = chain, *next; it; it = next) {
        next = it->next;
        it->next = NULL;
        reject_one(e, it, code, msg, cb ? cb : rej_done);
    }
}

/* ---- outcomes ------------------------------------------------------------ */

/* Moves the items of b into two new sealed batches, first half first in
 * line. 0, or SW_ENOMEM (b is left as it was). */
static int batch_split(exporter *e, exp_batch *b)
{
    exp_batch *h[2] = {exp_batch_new(e, b->sig), exp_batch_new(e, b->sig)};
    if (!h[0] || !h[1]) {
        for (int i = 0; i < 2; i++)
            if (h[i]) exp_batch_done(e, h[i]);
        return SW_ENOMEM;
    }
    uint32_t n = b->n_items, i = 0;
    int replay = b->replay;
    dlq_pos last = b->rp_last;
    item *chain = exp_batch_take_items(e, b);
    exp_batch_done(e, b);
    uint32_t got = 0;
    for (item *it = chain; it; it = it->next) got++;
    for (item *it = chain, *next; it; it = next, i++) {
        next = it->next;
        exp_batch_append(h[i < (got + 1) / 2 ? 0 : 1], it);
    }
    LOG_INFO_RL(10, "upstream answered 413 to a %s batch of %u items: split into %u + %u items",
                sw_signal_name(h[0]->sig), n, h[0]->n_items, h[1]->n_items);
    int pieces = 0;
    for (int k = 1; k >= 0; k--) {
        h[k]->replay = replay;
        h[k]->rp_last = last;
        if (h[k]->n_items == 0) { /* copies failed: counted dropped */
            exp_batch_done(e, h[k]);
            continue;
        }
        exp_batch_seal_at(e, h[k], 1);
        pieces++;
    }
    if (replay) exp_replay_repiece(e, pieces - 1);
    return 0;
}

static void log_reject(const exp_batch *b, int code, const char *msg, int kept)
{
    LOG_WARN_RL(10, "upstream refused a %s batch with HTTP %d (%u items, %llu records, "
                "not retried%s): %s", sw_signal_name(b->sig), code, b->n_items,
                (unsigned long long)b->n_records,
                kept ? "; kept in the DLQ's rejected area" : "", msg[0] ? msg : "(empty body)");
}

void exp_batch_reject(exporter *e, exp_batch *b, int code, const char *msg)
{
    if (code == 413 && b->n_items > 1 && batch_split(e, b) == 0) return;
    int stays = b->replay && e->draining; /* let go: replayed (and judged) after a restart */
    log_reject(b, code, msg, e->sink && b->n_items > 0 && !stays);
    if (!stays) metrics_add(&e->m->exp_items[b->sig][EXP_RESULT_REJECTED], b->n_records);
    if (b->replay) {
        exp_replay_rejected(e, b, code, msg);
        return;
    }
    if (!e->sink || b->n_items == 0) {
        exp_batch_done(e, b); /* without a DLQ nothing is kept */
        return;
    }
    item *chain = exp_batch_take_items(e, b);
    exp_batch_done(e, b);
    exp_reject_chain(e, chain, code, msg, NULL);
}
