/* exp_replay.h — the export loop's second source: replay batches from the
 * DLQ's replay source (dlq/dlq_consumer.h), their acknowledgement and the
 * interleaving with live traffic.
 *
 * The replay source (reader, replay thread, token bucket, ring) belongs to
 * the DLQ; this module owns it and turns its records into replay batches
 * of the batcher it is given: at most one replay batch at a time (a 413
 * may split it into pieces), acknowledged at its last position once every
 * piece is settled and every re-append of its items completed. A piece
 * given up is appended to the DLQ's main area again, a piece refused for
 * good to its rejected area (through the sink it is given); each append's
 * completion goes to the owner's callback (reappended / rejected: it
 * counts, keeps or drops the item) and then counts here. Whenever the
 * owner should look again (records arrived, an ack moved the cursor)
 * wake(arg) runs.
 *
 * Thread: the export thread (the event_base given); new, start, stop,
 * close and free on the main thread while the export loop is not running.
 * The batcher, the sink, the DLQ and cfg are borrowed.
 */
#ifndef SW_EXP_REPLAY_H
#define SW_EXP_REPLAY_H

#include "config/cfg.h"
#include "dlq/dlq_consumer.h"
#include "exporters/otlp/exp_batch.h"

struct event_base;

typedef struct exp_replay exp_replay;

typedef struct exp_replay_cbs {
    void (*wake)(void *arg);
    /* Completion of a re-append (status 0: stored); the callee owns it
     * when status != 0. */
    dlq_done_fn reappended;
    /* Completion of a rejected-area append (as above). */
    dlq_done_fn rejected;
} exp_replay_cbs;

/* Returns owned, or NULL. The eventfd of the source is watched on base. */
exp_replay *exp_replay_new(dlq *d, const cfg *c, struct event_base *base, exp_batcher *bt,
                           dlq_sink *sink, const exp_replay_cbs *cbs, void *arg);
/* Starts the replay thread. 0 or a negative error code. */
int exp_replay_start(exp_replay *rp);
/* Stops the replay thread (main thread, before the export thread stops). */
void exp_replay_stop(exp_replay *rp);
/* Export thread, after the loop: frees what is left in the ring. */
void exp_replay_drain(exp_replay *rp);
/* Main thread after both threads ended: persists the cursor and frees the
 * reader (idempotent). */
void exp_replay_close(exp_replay *rp);
void exp_replay_free(exp_replay *rp); /* NULL-safe */

/* The breaker changed: records flow only while it is closed. */
void exp_replay_pause(exp_replay *rp, int paused);
/* 1 when the loop should take a replay batch now. live_waiting: the queue
 * has items; slot_idle: nothing sealed waits and a connection is free.
 * The caller checks that it may send at all (breaker closed, not
 * stopping). */
int exp_replay_turn(exp_replay *rp, int live_waiting, int slot_idle);
/* Takes records of one signal into a sealed replay batch (first in line
 * during a replay phase). 0, or SW_ENOMEM (nothing taken). */
int exp_replay_take(exp_replay *rp);
/* A replay piece was delivered. */
void exp_replay_acked(exp_replay *rp);
/* A replay batch was split: pieces outstanding change by delta. */
void exp_replay_repiece(exp_replay *rp, int delta);
/* A replay piece was given up: its items go to the main area again; b is
 * done. While stopping (stopping != 0) it is let go instead: the batch is
 * not acked and is replayed after the next start. */
void exp_replay_failed(exp_replay *rp, exp_batch *b, const char *why, int stopping);
/* A replay piece was refused for good (code, msg): its items go to the
 * rejected area, never back to the main area; b is done. Stopping: as
 * above. */
void exp_replay_rejected(exp_replay *rp, exp_batch *b, int code, const char *msg, int stopping);

#endif
