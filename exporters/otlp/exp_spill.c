/* exp_spill.c — the export loop's spill policy over the DLQ sink
 * (dlq/dlq_consumer.h: port, completions, backlog, failure and retry).
 *
 * Three spill paths, all keeping each item's class and signal:
 *   breaker open   exp_spill_item / exp_spill_batch: what the DLQ refuses
 *                  (max_size reached, ring full, failing) stays here and
 *                  popping stops, exactly as without a DLQ (the queue fills
 *                  and the receiver pushes back) — nothing is dropped;
 *   give-up        exp_spill_chain (retries exhausted, stop deadline): an
 *                  item the sink refuses is kept in memory (below);
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
 * them before it closes. Export thread only; exp_spill_destroy runs on the
 * main thread at exp_free.
 */
#define LOG_COMPONENT "exporter"
#include "exporters/otlp/exp_int.h"

#include "runtime/err.h"
#include "runtime/log.h"

static void on_room(void *arg)
{
    exp_schedule_pump(arg);
}

int exp_spill_start(exporter *e)
{
    e->sink = dlq_sink_new(e->dlq, e->base, on_room, e);
    return e->sink ? 0 : SW_ENOMEM;
}

int exp_spill_blocked(const exporter *e)
{
    return e->sink && dlq_sink_blocked(e->sink);
}

void exp_spill_stopping(exporter *e)
{
    if (e->sink) dlq_sink_stopping(e->sink);
}

int exp_spill_hold(exporter *e, item *it, int status)
{
    if (e->draining) return SW_ECLOSED;
    metrics_add(&e->m->exp_dlq_failed_items, 1);
    LOG_WARN_RL(10, "the DLQ did not take a %s item (%s): kept in memory",
                sw_signal_name((sw_signal)it->signal), sw_strerror(status));
    exp_batch_add(e, it);
    return 0;
}

/* Completion of an exporter spill (and the end of a refused one). */
static void spill_done(void *arg, item *it, int status)
{
    exporter *e = arg;
    if (status == 0) {
        e->spilled_items_total++;
        return;
    }
    if (exp_spill_hold(e, it, status) == 0) return;
    exp_count_dropped(e, (sw_signal)it->signal, 1, it->count);
    e->spill_failed_items_total++;
    LOG_ERROR_RL(1, "the DLQ could not store a %s item (%u records, class %s): %s; dropped "
                 "(%llu items lost to DLQ errors so far)", sw_signal_name((sw_signal)it->signal),
                 it->count, sw_class_name((sw_class)it->klass), sw_strerror(status),
                 (unsigned long long)e->spill_failed_items_total);
    item_free(it);
}

int exp_spill_item(exporter *e, item *it)
{
    if (dlq_sink_backlogged(e->sink)) return SW_EFULL; /* at most one waits there */
    return dlq_sink_put(e->sink, it, spill_done, e);
}

int exp_spill_batch(exporter *e, exp_batch *b)
{
    /* A replay batch is already on disk: hand it back to the replay side
     * (re-append and ack), or replay stops for good. */
    if (b->replay) {
        exp_replay_failed(e, b, "circuit open");
        return 0;
    }
    sw_signal sig = b->sig;
    uint32_t n = b->n_items, taken = 0;
    item *chain = exp_batch_take_items(e, b);
    exp_batch_done(e, b);
    while (chain) {
        item *next = chain->next;
        if (exp_spill_item(e, chain) != 0) break;
        chain = next;
        taken++;
    }
    if (taken)
        LOG_INFO_RL(10, "circuit open: %u of %u %s items of a batch moved to the DLQ", taken, n,
                    sw_signal_name(sig));
    if (!chain) return 0;
    exp_batch *nb = exp_batch_new(e, sig);
    for (item *it = chain, *next; it; it = next) {
        next = it->next;
        if (nb) exp_batch_append(nb, it);
        else spill_done(e, it, SW_ENOMEM);
    }
    if (nb) exp_batch_seal_at(e, nb, 1); /* waits first in line */
    return SW_EFULL;
}

void exp_spill_chain(exporter *e, item *chain, const char *why)
{
    uint64_t refused = 0;
    for (item *it = chain, *next; it; it = next) {
        next = it->next;
        int rc = dlq_sink_put(e->sink, it, spill_done, e);
        if (rc == 0 || exp_spill_hold(e, it, rc) == 0) continue;
        refused++;
        spill_done(e, it, rc);
    }
    if (refused)
        LOG_WARN_RL(1, "the DLQ refused %llu items given up (%s): dropped",
                    (unsigned long long)refused, why);
}

void exp_spill_finish(exporter *e, uint64_t ms)
{
    size_t waiting = 0;
    size_t pending = dlq_sink_drain(e->sink, ms, &waiting);
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
    e->spill_unconfirmed = pending;
}

void exp_spill_destroy(exporter *e)
{
    dlq_sink_free(e->sink);
    e->sink = NULL;
}
