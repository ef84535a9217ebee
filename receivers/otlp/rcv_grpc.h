/* rcv_grpc.h — the OTLP/gRPC receiver (receivers.otlp.grpc).
 *
 * Runs on the ingest thread's event_base. Serves the three OTLP Export
 * methods (opentelemetry.proto.collector.{trace,metrics,logs}.v1.
 * {Trace,Metrics,Logs}Service/Export) over HTTP/2 — cleartext with prior
 * knowledge, or TLS with ALPN h2 when tls.cert_file/key_file are set — with
 * nghttp2 server sessions. Each request message is decoded like an OTLP/HTTP
 * protobuf body (rcv_decode: grpc-encoding gzip/zstd/identity under
 * max_request_body_size, decompressed too; the wire walk) and handed to the
 * pipeline (pipeline/pipeline.h); its outcome becomes the gRPC status: OK
 * with partial_success, INVALID_ARGUMENT, RESOURCE_EXHAUSTED (too large),
 * UNAVAILABLE + google.rpc.RetryInfo (backpressure, stopping),
 * UNIMPLEMENTED (unknown method). Files: rcv_grpc.c (this: lifecycle and
 * the pipeline hand-off), rcv_grpc_conn.c, rcv_grpc_h2.c, rcv_grpc_frame.c;
 * see rcv_grpc_int.h. docs/grpc.md describes the behaviour and limits.
 */
#ifndef SW_RCV_GRPC_H
#define SW_RCV_GRPC_H

#include <stdint.h>

#include "config/cfg.h"
#include "pipeline/pipeline.h"
#include "runtime/metrics.h"

struct budget;
struct event_base;
typedef struct rcv_grpc rcv_grpc;

/* Returns an owned receiver, or NULL. All arguments are borrowed and must
 * outlive it. mem is the intake budget shared with the OTLP/HTTP receiver
 * (rcv_intake_budget()): request messages held by gRPC calls are charged
 * to it, so both receivers together stay within
 * receivers.otlp.intake_memory; NULL gives the receiver a budget of its own
 * of that size. Binds nothing yet. */
rcv_grpc *rcv_grpc_new(struct event_base *base, const cfg *c, pipeline *pl, sw_metrics *m,
                       struct budget *mem);
/* 1 when the config turns the receiver on (section present, endpoint set). */
int rcv_grpc_enabled(const cfg *c);
/* Loads TLS (if configured) and binds receivers.otlp.grpc.endpoint (port
 * 0 = ephemeral). 0 or SW_E* (logged). */
int rcv_grpc_start(rcv_grpc *g);
/* The port actually bound (after rcv_grpc_start), or 0. */
uint16_t rcv_grpc_port(const rcv_grpc *g);
/* Stops intake: closes the listening socket and sends GOAWAY on every
 * connection; streams already open finish, new calls get UNAVAILABLE.
 * Calls waiting for the pipeline's outcome still get their answer. */
void rcv_grpc_stop_intake(rcv_grpc *g);
/* 1 while accepting. */
int rcv_grpc_ready(const rcv_grpc *g);
/* Closes every connection and frees the receiver. Calls still waiting for
 * the pipeline must have had their outcome (pl_flush first). NULL-safe. */
void rcv_grpc_free(rcv_grpc *g);

#endif
