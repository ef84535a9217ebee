/* rcv_decode.h — turns one OTLP/HTTP request body into protobuf bytes.
 *
 * Pure and fuzzable: no I/O, no libevent, no globals; any thread (the
 * receiver calls it on the ingest thread). Given the signal, the parsed
 * Content-Type and Content-Encoding and the body, rcv_decode() decompresses
 * under a cap (the body cap, and at most RCV_MAX_RATIO times the compressed
 * size, never less than RCV_RATIO_FLOOR), converts OTLP/JSON to protobuf, and validates the protobuf by
 * a wire walk that also counts the items. On success the result points at
 * the protobuf bytes: borrowed from the body when it already was identity
 * protobuf (no copy), or owned by the result otherwise. On failure it holds
 * the HTTP status (400, 413, 415, 503), the google.rpc.Code for the error
 * body, the refuse reason for the metrics and a short message (never any
 * part of the payload beyond what a decoder names as the reason).
 */
#ifndef SW_RCV_DECODE_H
#define SW_RCV_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/item.h"

typedef enum {
    RCV_CT_PROTOBUF = 0,     /* application/x-protobuf */
    RCV_CT_JSON = 1,         /* application/json */
    RCV_CT_UNKNOWN = 2       /* anything else, or absent */
} rcv_content_type;

typedef enum {
    RCV_CE_IDENTITY = 0,     /* absent, empty or "identity" */
    RCV_CE_GZIP = 1,         /* "gzip" or "x-gzip" */
    RCV_CE_ZSTD = 2,         /* "zstd" */
    RCV_CE_UNKNOWN = 3
} rcv_encoding;

/* google.rpc.Code values used in error bodies. */
enum {
    RCV_GRPC_OK = 0,
    RCV_GRPC_INVALID_ARGUMENT = 3,
    RCV_GRPC_NOT_FOUND = 5,
    RCV_GRPC_RESOURCE_EXHAUSTED = 8,
    RCV_GRPC_UNIMPLEMENTED = 12,
    RCV_GRPC_INTERNAL = 13,
    RCV_GRPC_UNAVAILABLE = 14
};

#define RCV_MSG_MAX 192
#define RCV_MAX_RATIO 256                 /* decompressed / compressed size */
#define RCV_RATIO_FLOOR ((size_t)1 << 20) /* ... but at least this is allowed */
/* Peak memory of a JSON conversion over the JSON size: measured 18 for
 * spans, 44 for long arrays of small numbers (the worst found). */
#define RCV_JSON_MEM_FACTOR 48

struct budget;

typedef struct rcv_request_info {
    sw_signal signal;
    rcv_content_type ctype;
    rcv_encoding cenc;
    /* The intake budget (runtime/budget.h), borrowed, or NULL: converting
     * JSON costs up to RCV_JSON_MEM_FACTOR times its size (json-c's tree and
     * protobuf-c's), which is charged to it while the conversion runs (503
     * when it does not fit now), and a JSON document larger than the
     * budget's limit / RCV_JSON_MEM_FACTOR is refused (413). A compressed
     * body's decompression limit is charged too, until
     * rcv_result_destroy() (503 when it does not fit now). */
    struct budget *mem;
} rcv_request_info;

typedef struct rcv_result {
    const uint8_t *pb;       /* protobuf bytes: into the body or into owned */
    size_t pb_len;
    uint8_t *owned;          /* owned storage behind pb, or NULL (borrowed) */
    uint32_t items;          /* spans / data points / log records */
    int http_status;         /* 200 on success */
    int grpc_code;           /* google.rpc.Code for the error body */
    int reason;              /* rcv_refuse_reason (rcv_metrics.h) on failure */
    char message[RCV_MSG_MAX]; /* NUL-terminated; empty on success */
    struct budget *mem;      /* the budget `charged` is held on, or NULL */
    size_t charged;          /* the decompressed copy's reservation */
} rcv_result;

/* Parses a Content-Type header value (NULL = absent). Parameters such as
 * "; charset=utf-8" are ignored; the comparison is case-insensitive. */
rcv_content_type rcv_parse_content_type(const char *value);
/* Parses a Content-Encoding header value (NULL = absent = identity). */
rcv_encoding rcv_parse_encoding(const char *value);
/* The media type string for a content type (protobuf for UNKNOWN). */
const char *rcv_content_type_str(rcv_content_type ct);

/*
 * Decodes body[0..len) (borrowed; out->pb may point into it, so it must
 * outlive the result). cap bounds the body, the decompressed size and the
 * converted protobuf. Always initialises *out. Returns 0 (out->http_status
 * 200) or a negative SW_E* code with the failure described in *out. An empty
 * body (or one that decompresses to nothing) is an empty request: 0 with
 * pb_len 0 and 0 items. Release with rcv_result_destroy().
 */
int rcv_decode(const rcv_request_info *info, const uint8_t *body, size_t len,
               size_t cap, rcv_result *out);
/* The decompressed-size limit for a compressed body of len bytes. */
size_t rcv_decompress_limit(size_t len, size_t cap);
/* Frees what the result owns; NULL-safe; leaves it empty. */
void rcv_result_destroy(rcv_result *r);

#endif
