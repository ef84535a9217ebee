/* pipeline.h — the stage every receiver hands its decoded data to.
 *
 * Runs on the ingest thread (the thread of the event_base given to
 * pl_new); every call and every callback happens there. A receiver
 * (OTLP/HTTP, OTLP/gRPC, filelog) decodes its input into the protobuf bytes
 * of one Export{Trace,Metrics,Logs}ServiceRequest and calls pl_submit();
 * the pipeline runs the cardinality limiter (metrics), the priority
 * classifier and split, and admission to the memory queue or the DLQ, and
 * reports the outcome exactly once through the callback. A receiver knows
 * nothing past this call: it never includes dlq.h, card_proc.h or prio.h.
 *
 * Admission is all-or-nothing per request: either every item of the
 * request is owned by the queue or the DLQ (accepted), or none is and
 * nothing of it is ever forwarded (refused). Accepted means: in memory, or
 * stored in the DLQ per dlq.fsync (in queue.mode: durable, appended to the
 * DLQ's journal before the callback, and acknowledged there once delivered:
 * docs/durability.md).
 *
 * Counting: the receiver counts, under its own transport label, both the
 * outcome it gets — accepted items (pl_outcome.items, after the limiter) in
 * spillway_receiver_items_total and refusals in
 * spillway_receiver_refused_items_total (queue_full for FULL and NOMEM,
 * shutdown, decode) — and the requests it refuses itself before pl_submit
 * (undecodable, too large, unsupported). The pipeline counts none of them,
 * so each item is counted once, under the transport it came in on.
 *
 * The callback may run inside pl_submit() (memory admission, refusals) or
 * later from the event loop (a DLQ write completing). The caller keeps
 * `arg` valid until the callback ran; there is no cancellation (a receiver
 * whose client went away just drops the answer).
 */
#ifndef SW_PIPELINE_H
#define SW_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/item.h"

/* Declared here so that receivers include none of their headers. */
struct event_base;
struct cfg;
struct apq;
struct dlq;
struct sw_metrics;

typedef struct pipeline pipeline;

typedef enum {
    PL_ACCEPTED = 0,         /* all items owned by queue or DLQ */
    PL_REFUSED_FULL,         /* queue and DLQ cannot take it: 429/503, RESOURCE/UNAVAILABLE + retry */
    PL_REFUSED_SHUTDOWN,     /* stopping: 503 / UNAVAILABLE */
    PL_REFUSED_NOMEM,        /* allocation failed: 503 / UNAVAILABLE */
    PL_REFUSED_DECODE        /* malformed data found past the receiver's walk: 400 / INVALID_ARGUMENT */
} pl_status;

typedef struct pl_outcome {
    pl_status status;
    uint32_t items;          /* accepted items (after the limiter); refused: items refused */
    int64_t rejected;        /* accepted: points dropped by the limiter (partial_success) */
    const char *message;     /* partial_success message or refusal reason; NULL if none;
                                borrowed, valid during the callback only */
    unsigned retry_after_s;  /* refusals that may be retried: seconds to suggest */
} pl_outcome;

typedef void (*pl_done_fn)(void *arg, const pl_outcome *o);

struct item_tracker; /* runtime/item_track.h */

typedef struct pl_request {
    sw_signal sig;
    const uint8_t *pb;       /* borrowed for the duration of pl_submit only */
    size_t len;
    uint32_t items;          /* count from the receiver's wire walk */
    int64_t recv_ns;         /* clock_mono_ns() at receive */
    struct item_tracker *trk;/* optional delivery tracking, or NULL: when set,
                                every item made from this request holds a
                                reference (item_tracker_ref) and settles it when
                                delivered upstream or stored in the DLQ; a
                                refused request holds none when cb runs */
} pl_request;

/* Submits one decoded request (rq and rq->pb borrowed for the call only:
 * copied or moved into items before it returns). An empty request
 * (items == 0) is accepted at once. cb runs exactly once. */
void pl_submit(pipeline *p, const pl_request *rq, pl_done_fn cb, void *arg);

/* 1 while accepting (not stopping, DLQ usable or not needed). For /readyz
 * and for receivers that want to refuse before reading a body. */
int pl_ready(const pipeline *p);

/* ---- lifecycle (cmd/spillway.c) ---------------------------------------- */

/* Returns an owned pipeline, or NULL (bad priority rules, no memory; logged).
 * Builds the cardinality limiter (processors.cardinality, when enabled) and
 * the priority classifier from c. ingest: the event_base of the ingest
 * thread, where it runs and dispatches DLQ completions. q: the memory queue
 * (its spill interface is not used: the pipeline decides memory or DLQ per
 * request). d: the DLQ for requests memory cannot take, or NULL (then such
 * requests are refused). m may be NULL. All borrowed; they must outlive the
 * pipeline (d stays open until pl_flush returned). Ingest thread. */
pipeline *pl_new(struct event_base *ingest, const struct cfg *c, struct apq *q,
                 struct dlq *d, struct sw_metrics *m);
/* Reload (SIGHUP): applies processors.priority.rules and the cardinality
 * limiter's aggregate_threshold, drop_threshold and key_ttl of c
 * (borrowed; only read during the call). The new classifier is built off
 * to the side and swapped in between two requests (this runs on the
 * ingest thread, like pl_submit), so every request is classified wholly
 * by the old or wholly by the new rules. Every other key of c is ignored
 * here (the pipeline keeps the cfg of pl_new for them). 0, or SW_EINVAL /
 * SW_ENOMEM with the reason in err (NUL-terminated when errlen > 0) and
 * nothing changed. Ingest thread. */
int pl_reconfigure(pipeline *p, const struct cfg *c, char *err, size_t errlen);
/* Shutdown, step 1: every later pl_submit is refused with
 * PL_REFUSED_SHUTDOWN; requests waiting for the DLQ still complete.
 * pl_ready turns 0. Ingest thread. */
void pl_stop_intake(pipeline *p);
/* Requests whose DLQ append has not completed yet. */
unsigned pl_pending(const pipeline *p);
/* Shutdown, step 2 (drain processors): waits up to timeout_ms for the
 * pending DLQ appends and runs their callbacks. Blocks the calling (ingest)
 * thread; returns pl_pending() afterwards (0: every request was answered).
 * queue.mode durable: also runs the delivery callbacks posted so far and
 * detaches the journal's acknowledgement store from the DLQ, so call it
 * (timeout 0 is enough) before dlq_close(). */
unsigned pl_flush(pipeline *p, uint64_t timeout_ms);
/* Frees the limiter, classifier and DLQ port; completions not yet run are
 * dropped without callbacks (call pl_flush first). NULL-safe. */
void pl_free(pipeline *p);

#endif
