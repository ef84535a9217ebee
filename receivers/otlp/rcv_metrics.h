/* rcv_metrics.h — the OTLP receivers' self-metrics.
 *
 * The OTLP/HTTP and OTLP/gRPC receivers each count into a block of their
 * own, kept by the process's metrics registry (runtime/metrics.h): both
 * feed the same families (spillway_receiver_requests_total, _items_total,
 * _refused_items_total, _bytes_total), told apart by the label
 * transport="http" or "grpc". The HTTP block's series come first within
 * each family. Counted on the ingest thread; relaxed atomics.
 */
#ifndef SW_RCV_METRICS_H
#define SW_RCV_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "runtime/item.h"
#include "runtime/metrics.h"

/* Why the receiver refused items (label reason). */
typedef enum {
    RCV_REFUSE_DECODE = 0,   /* undecodable body (400) */
    RCV_REFUSE_TOO_LARGE,    /* body or decompressed size over the cap (413) */
    RCV_REFUSE_QUEUE_FULL,   /* backpressure (429/503) */
    RCV_REFUSE_UNSUPPORTED,  /* content type / encoding (415) */
    RCV_REFUSE_SHUTDOWN,     /* refused while stopping (503) */
    RCV_REFUSE_COUNT
} rcv_refuse_reason;

#define RCV_GRPC_CODES 17    /* gRPC status codes 0 (OK) .. 16 (UNAUTHENTICATED) */

/* OTLP/HTTP (transport="http"); code is the HTTP status. */
typedef struct rcv_http_metrics {
    _Atomic uint64_t rcv_requests[SIG_COUNT][MET_CODES];
    _Atomic uint64_t rcv_items[SIG_COUNT];
    _Atomic uint64_t rcv_refused_items[SIG_COUNT][RCV_REFUSE_COUNT];
    _Atomic uint64_t rcv_bytes[SIG_COUNT];
} rcv_http_metrics;

/* OTLP/gRPC (transport="grpc"); code is the gRPC status name. */
typedef struct rcv_grpc_metrics {
    _Atomic uint64_t rcv_grpc_requests[SIG_COUNT][RCV_GRPC_CODES];
    _Atomic uint64_t rcv_grpc_items[SIG_COUNT];
    _Atomic uint64_t rcv_grpc_refused_items[SIG_COUNT][RCV_REFUSE_COUNT];
    _Atomic uint64_t rcv_grpc_bytes[SIG_COUNT];
} rcv_grpc_metrics;

/* The receiver's block in m (borrowed), registering its families on first
 * use; owned by m. NULL if m is NULL or out of memory. */
rcv_http_metrics *rcv_http_metrics_get(sw_metrics *m);
rcv_grpc_metrics *rcv_grpc_metrics_get(sw_metrics *m);

/* Label values: "decode", "too_large", ... ("unknown" out of range). */
const char *rcv_refuse_reason_name(rcv_refuse_reason r);
/* gRPC status names: "OK", "INVALID_ARGUMENT", ... ("UNKNOWN" out of range). */
const char *rcv_grpc_code_name(int code);

#endif
