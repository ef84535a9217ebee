/* exp_spill.h — the exporter's spill policy: where a batch or an item goes
 * when it is not (or no longer) sent upstream.
 *
 * Decisions, each in one function:
 *   breaker open   exp_spill_item / exp_spill_waiting: items and batches go
 *                  to the DLQ; what the DLQ refuses (max_size, ring full,
 *                  failing) stays in memory and the caller stops popping;
 *   give-up        exp_spill_give_up (retries exhausted, stop deadline):
 *                  with a DLQ the items are appended to it (an item it
 *                  refuses is kept in memory, or dropped while stopping),
 *                  without one they are dropped (counted);
 *   refusal        exp_spill_reject (a permanent upstream error): a 413 to
 *                  several items halves the batch, anything else is counted
 *                  REJECTED and, with a DLQ, kept in its rejected area;
 *   replay batches go back to the replay module (exp_replay.h) in all three.
 * Items neither delivered nor stored are reported to the owner through
 * dropped(arg, ...), which counts them (and returns the running total of
 * items dropped, for log lines); the module counts what it stored, kept,
 * lost and what the DLQ refused into the exporter's exp_metrics and
 * exp_spill_stats.
 *
 * Thread: the export thread (the event_base of the batcher and the sink);
 * new and free on the owner's thread while that loop does not run. The
 * batcher, the sink, the replay module and the metrics are borrowed.
 */
#ifndef SW_EXP_SPILL_H
#define SW_EXP_SPILL_H

#include <stdint.h>

#include "dlq/dlq_consumer.h"
#include "exporters/otlp/exp_batch.h"
#include "exporters/otlp/exp_replay.h"
#include "runtime/item.h"
#include "exporters/otlp/exp_metrics.h"

typedef struct exp_spill exp_spill;

/* Items neither delivered nor stored (the callee counts them; they are
 * freed by the caller). Returns the items dropped so far, for log lines. */
typedef uint64_t (*exp_spill_drop_fn)(void *arg, sw_signal sig, uint64_t items,
                                      uint64_t records);

typedef struct exp_spill_stats {
    uint64_t spilled;          /* appends completed (stored) */
    uint64_t spill_failed;     /* failed while stopping: dropped */
    uint64_t rejected_kept;    /* refused items stored in the rejected area */
    uint64_t rejected_lost;    /* refused items it could not keep */
    size_t unconfirmed;        /* after exp_spill_finish: appends still pending */
} exp_spill_stats;

/* Returns owned, or NULL. Without exp_spill_set_dlq, there is no DLQ:
 * given-up batches are dropped and refused ones let go. */
exp_spill *exp_spill_new(exp_batcher *bt, exp_metrics *m, exp_spill_drop_fn dropped, void *arg);
/* The DLQ's sink and the replay module (borrowed; both or neither). Before
 * the loop runs. */
void exp_spill_set_dlq(exp_spill *s, dlq_sink *sink, exp_replay *rp);
void exp_spill_free(exp_spill *s); /* NULL-safe */

/* The exporter is stopping: what the DLQ refuses is dropped (nothing can
 * hold it any more), the sink tries every append, replay batches are let go. */
void exp_spill_stopping(exp_spill *s);
/* 1 once exp_spill_stopping was called. */
int exp_spill_is_stopping(const exp_spill *s);

/* Breaker open, with a DLQ: hands it (owned) to the DLQ — 0, taken — or
 * refuses (SW_EFULL, SW_EIO, ...: the caller keeps it). */
int exp_spill_item(exp_spill *s, item *it);
/* Breaker open, with a DLQ: sealed, then open batches go to the DLQ. 1
 * when it refused some (they wait, first in line; stop popping), else 0. */
int exp_spill_waiting(exp_spill *s);
/* Gives up b (why: for the log): see above. b is done. */
void exp_spill_give_up(exp_spill *s, exp_batch *b, const char *why);
/* Permanent refusal with code and msg (the start of the upstream's message,
 * borrowed): b is split (413) or done. */
void exp_spill_reject(exp_spill *s, exp_batch *b, int code, const char *msg);
/* Completions of the replay module's appends (exp_replay_cbs): a re-append
 * to the main area and an append to the rejected area. The callee owns it
 * when status != 0. */
void exp_spill_reappended(exp_spill *s, item *it, int status);
void exp_spill_rejected(exp_spill *s, item *it, int status);

/* After the loop: waits up to ms for every pending append (what had no
 * room is logged as not stored; what is still pending is left to
 * dlq_close()). No-op without a DLQ. */
void exp_spill_finish(exp_spill *s, uint64_t ms);
exp_spill_stats exp_spill_get_stats(const exp_spill *s);

#endif
