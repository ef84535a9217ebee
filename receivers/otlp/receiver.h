/* receiver.h — the OTLP/HTTP receiver (receivers.otlp.http).
 *
 * Runs on the ingest thread's event_base. POST /v1/traces, /v1/metrics,
 * /v1/logs with application/x-protobuf or application/json bodies,
 * Content-Encoding gzip, zstd or identity. A body is decompressed under the
 * max_request_body_size cap, JSON is converted to protobuf once, and the
 * protobuf is validated by a wire walk (runtime/otlp_wire.h) that also counts
 * items. The decoded request is then handed to the pipeline stage
 * (pipeline/pipeline.h: cardinality limiter, priority classification,
 * admission to the memory queue or the DLQ), and the answer is sent from its
 * outcome — at once, or once the DLQ reports the request stored. The
 * receiver knows nothing past that call. Responses follow the OTLP/HTTP
 * specification: 200 with an Export*ServiceResponse in the request's
 * encoding (partial_success from the limiter); 400 with a google.rpc.Status;
 * 404/405/413/415; 503 + Retry-After when the pipeline refuses the request
 * (queue and DLQ cannot take it, stopping, out of memory) — never a 2xx
 * followed by a drop.
 * Memory: every byte the connections hold is charged to one intake budget
 * (receivers.otlp.intake_memory); what does not fit gets 503 + Retry-After
 * (docs/architecture.md, "The memory bound").
 */
#ifndef SW_RECEIVER_H
#define SW_RECEIVER_H

#include <stdint.h>

#include "config/cfg.h"
#include "pipeline/pipeline.h"
#include "runtime/metrics.h"

struct event_base;
typedef struct receiver receiver;

/* Returns an owned receiver or NULL. All arguments are borrowed and must
 * outlive it (pl: the pipeline it hands requests to). Binds nothing yet. */
receiver *rcv_new(struct event_base *base, const cfg *c, pipeline *pl, sw_metrics *m);
/* Binds receivers.otlp.http.endpoint (port 0 = ephemeral). 0 or SW_E*. */
int rcv_start(receiver *r);
/* The port actually bound (after rcv_start). */
uint16_t rcv_http_port(const receiver *r);
/* Stops intake: closes the listening socket; requests arriving on open
 * connections are answered 503. Requests waiting for the pipeline's
 * outcome still get their answer. Ingest thread. */
void rcv_stop_intake(receiver *r);
/* The intake memory budget (receivers.otlp.intake_memory), borrowed, for
 * other intake servers on the ingest thread (the gRPC receiver) to share:
 * every byte their connections hold is charged to it (runtime/budget.h). */
struct budget *rcv_intake_budget(receiver *r);
/* 1 while accepting. For /readyz. */
int rcv_ready(const receiver *r);
/* Frees the receiver; requests still waiting for the pipeline's outcome
 * must have had it (pl_flush first). NULL-safe. */
void rcv_free(receiver *r);

#endif
