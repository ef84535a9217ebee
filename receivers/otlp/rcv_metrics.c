/* rcv_metrics.c — see rcv_metrics.h. */
#include "receivers/otlp/rcv_metrics.h"

#include <stddef.h>

static const char *const refuse_names[RCV_REFUSE_COUNT] = {
    "decode", "too_large", "queue_full", "unsupported", "shutdown",
};
static const char *const grpc_code_names[RCV_GRPC_CODES] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
};

static const char *const F_REQUESTS = "spillway_receiver_requests_total";
static const char *const H_REQUESTS =
    "OTLP export requests answered by the receiver, by signal, status code "
    "(HTTP status, or gRPC status name) and transport.";
static const char *const F_ITEMS = "spillway_receiver_items_total";
static const char *const H_ITEMS = "Spans, data points and log records accepted by the receiver.";
static const char *const F_REFUSED = "spillway_receiver_refused_items_total";
static const char *const H_REFUSED = "Items refused at intake, by signal, reason and transport.";
static const char *const F_BYTES = "spillway_receiver_bytes_total";
static const char *const H_BYTES = "Request body bytes received (as sent, before decompression).";

const char *rcv_refuse_reason_name(rcv_refuse_reason r)
{
    return (unsigned)r < RCV_REFUSE_COUNT ? refuse_names[r] : "unknown";
}

const char *rcv_grpc_code_name(int code)
{
    return code >= 0 && code < RCV_GRPC_CODES ? grpc_code_names[code] : "UNKNOWN";
}

/* The four families of one transport: requests (sparse, by code),
 * items, refused items (by reason), bytes. */
static int register_transport(sw_metrics *m, const char *transport, metrics_dim code,
                              const void *requests, const void *items, const void *refused,
                              const void *bytes)
{
    metrics_dim reason = {.label = "reason", .n = RCV_REFUSE_COUNT, .values = refuse_names};
    metrics_source s = {.kind = METRICS_SRC_U64, .const_labels = transport};
    int rc;
    s.cells = requests;
    s.dims[0] = metrics_dim_signal();
    s.dims[1] = code;
    s.skip_zero = 1;
    if ((rc = metrics_register(m, F_REQUESTS, METRICS_COUNTER, H_REQUESTS, &s))) return rc;
    s.skip_zero = 0;
    s.dims[1] = (metrics_dim){0};
    s.cells = items;
    if ((rc = metrics_register(m, F_ITEMS, METRICS_COUNTER, H_ITEMS, &s))) return rc;
    s.cells = refused;
    s.dims[1] = reason;
    if ((rc = metrics_register(m, F_REFUSED, METRICS_COUNTER, H_REFUSED, &s))) return rc;
    s.cells = bytes;
    s.dims[1] = (metrics_dim){0};
    return metrics_register(m, F_BYTES, METRICS_COUNTER, H_BYTES, &s);
}

static int http_init(sw_metrics *m, void *block)
{
    rcv_http_metrics *b = block;
    return register_transport(m, "transport=\"http\"", metrics_dim_http_code(), b->rcv_requests,
                              b->rcv_items, b->rcv_refused_items, b->rcv_bytes);
}

static int grpc_init(sw_metrics *m, void *block)
{
    rcv_grpc_metrics *b = block;
    metrics_dim code = {.label = "code", .n = RCV_GRPC_CODES, .values = grpc_code_names};
    return register_transport(m, "transport=\"grpc\"", code, b->rcv_grpc_requests,
                              b->rcv_grpc_items, b->rcv_grpc_refused_items, b->rcv_grpc_bytes);
}

rcv_http_metrics *rcv_http_metrics_get(sw_metrics *m)
{
    return m ? metrics_block(m, "receiver_otlp_http", sizeof(rcv_http_metrics), http_init) : NULL;
}

rcv_grpc_metrics *rcv_grpc_metrics_get(sw_metrics *m)
{
    return m ? metrics_block(m, "receiver_otlp_grpc", sizeof(rcv_grpc_metrics), grpc_init) : NULL;
}
