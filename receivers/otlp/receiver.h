/* receiver.h — the OTLP/HTTP receiver (receivers.otlp.http).
 *
 * Runs on the ingest thread's event_base. POST /v1/traces, /v1/metrics,
 * /v1/logs with application/x-protobuf or application/json bodies,
 * Content-Encoding gzip, zstd or identity. A body is decompressed under the
 * max_request_body_size cap, JSON is converted to protobuf once, and the
 * protobuf is validated by a wire walk (runtime/otlp_wire.h) that also counts
 * items. Metrics go through the cardinality limiter (processors/card_proc.h)
 * when it is enabled; the priority classifier (processors/prio.h) then makes
 * one item per class — the original bytes when the request is all one
 * class — and the items are pushed into the priority queue (queue/apq.h).
 * The receiver owns its classifier and limiter (ingest thread). Responses follow the OTLP/HTTP specification: 200 with an
 * Export*ServiceResponse in the request's encoding; 400 with a
 * google.rpc.Status; 404/405/413/415; 503 + Retry-After when the queue
 * (and its spill) cannot take the data (never a 2xx followed by a drop).
 * Memory: every byte the connections hold is charged to one intake budget
 * (receivers.otlp.intake_memory); what does not fit gets 503 + Retry-After
 * (docs/architecture.md, "The memory bound").
 */
#ifndef SW_RECEIVER_H
#define SW_RECEIVER_H

#include <stdint.h>

#include "config/cfg.h"
#include "dlq/dlq.h"
#include "queue/apq.h"
#include "runtime/metrics.h"

struct event_base;
typedef struct receiver receiver;

/* Returns an owned receiver or NULL. All arguments are borrowed and must
 * outlive it. Binds nothing yet. */
receiver *rcv_new(struct event_base *base, const cfg *c, apq *q, sw_metrics *m);
/* Binds receivers.otlp.http.endpoint (port 0 = ephemeral). 0 or SW_E*. */
int rcv_start(receiver *r);
/* The port actually bound (after rcv_start). */
uint16_t rcv_http_port(const receiver *r);
/* Stops intake: closes the listening socket; requests arriving on open
 * connections are answered 503. Ingest thread. */
void rcv_stop_intake(receiver *r);
/* Plugs the DLQ in as the queue's spill interface (ingest thread, before
 * rcv_start): items the memory queue will not take (fill at or above
 * queue.spill_threshold) are appended to d, and their request is answered
 * once the DLQ reports them stored (200) or not (503 + Retry-After).
 * d is borrowed. 0 or SW_ENOMEM. */
int rcv_set_dlq(receiver *r, dlq *d);
/* Shutdown, after intake stopped: waits up to timeout_ms for the DLQ to
 * complete spilled items, so waiting requests get their answer (the event
 * loop must run once more to send them). Ingest thread. */
void rcv_flush_spills(receiver *r, uint64_t timeout_ms);
/* The intake memory budget (receivers.otlp.intake_memory), borrowed, for
 * other intake servers on the ingest thread (the gRPC receiver) to share:
 * every byte their connections hold is charged to it (runtime/budget.h). */
struct budget *rcv_intake_budget(receiver *r);
/* 1 while accepting. For /readyz. */
int rcv_ready(const receiver *r);
void rcv_free(receiver *r);

#endif
