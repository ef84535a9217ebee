/* rcv_grpc_frame.h — the gRPC layer of the OTLP/gRPC receiver, without I/O.
 *
 * Pure and fuzzable: no sockets, no nghttp2, no libevent, no globals; any
 * thread (the receiver calls it on the ingest thread). It routes a :path to
 * a signal, checks the request headers (content-type, grpc-encoding,
 * grpc-timeout), reassembles the one length-prefixed message of a unary
 * call from DATA chunks under the size cap, decodes it with rcv_decode()
 * (the same decompression, cap and wire walk as OTLP/HTTP) and encodes what
 * goes back: the length-prefixed Export*ServiceResponse, grpc-message
 * percent-encoding, and grpc-status-details-bin (a google.rpc.Status whose
 * details carry a google.rpc.RetryInfo when the client should retry).
 *
 * Message framing (gRPC over HTTP/2, "Length-Prefixed-Message"):
 *
 *   +--------+--------+--------+--------+--------+-------------------+
 *   | flag   | length (uint32, big endian)       | message bytes ... |
 *   +--------+--------+--------+--------+--------+-------------------+
 *   flag 0: identity; 1: compressed with the call's grpc-encoding.
 */
#ifndef SW_RCV_GRPC_FRAME_H
#define SW_RCV_GRPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "receivers/otlp/rcv_decode.h"
#include "runtime/buf.h"
#include "runtime/item.h"

/* gRPC status codes (grpc/doc/statuscodes.md). */
enum {
    RG_OK = 0,
    RG_CANCELLED = 1,
    RG_UNKNOWN = 2,
    RG_INVALID_ARGUMENT = 3,
    RG_DEADLINE_EXCEEDED = 4,
    RG_RESOURCE_EXHAUSTED = 8,
    RG_UNIMPLEMENTED = 12,
    RG_INTERNAL = 13,
    RG_UNAVAILABLE = 14,
    RG_STATUS_COUNT = 17
};

#define RG_PREFIX_LEN 5
/* What the receiver advertises in grpc-accept-encoding. */
#define RG_ACCEPT_ENCODING "identity,gzip,zstd"

/* The status name for the metrics' code label: "OK", "INVALID_ARGUMENT"... */
const char *rg_status_name(int code);

/* Maps an exact :path "/opentelemetry.proto.collector.<s>.v1.<S>Service/Export"
 * to its signal; -1 for any other path. p[0..n) need not be NUL-terminated. */
int rg_route(const char *p, size_t n);
/* 1 if a content-type value is application/grpc, application/grpc+proto or
 * application/grpc;... (case-insensitive), else 0. */
int rg_content_type_ok(const char *v, size_t n);
/* Parses a grpc-encoding value (absent: identity). */
rcv_encoding rg_parse_encoding(const char *v, size_t n);
/* Parses a grpc-timeout value (1-8 digits and a unit H M S m u n) into
 * nanoseconds (saturating). 0 or SW_EINVAL. */
int rg_parse_timeout(const char *v, size_t n, int64_t *ns);

/* Reassembles the single request message of a unary call. */
typedef struct rg_reader {
    uint8_t hdr[RG_PREFIX_LEN];
    size_t hdr_got;          /* prefix bytes seen of the current message */
    uint32_t want;           /* its declared length */
    int compressed;          /* its flag */
    int complete;            /* one whole message read */
    buf body;                /* the message bytes (max = cap) */
} rg_reader;

/* cap bounds the declared message length. */
void rg_reader_init(rg_reader *r, size_t cap);
void rg_reader_destroy(rg_reader *r);
/* Takes DATA bytes p[0..n) (borrowed). 0; SW_ETOOBIG when the declared
 * length is over cap (nothing of it is buffered); SW_EDECODE when a
 * second message or a flag other than 0/1 arrives; SW_ENOMEM. */
int rg_reader_feed(rg_reader *r, const uint8_t *p, size_t n);
/* Bytes buffered so far (for the receiver's memory bound). */
static inline size_t rg_reader_buffered(const rg_reader *r) { return r->body.len; }

/* What decoding the finished message produced. */
typedef struct rg_decoded {
    int status;              /* RG_OK or the gRPC status to answer */
    rcv_result res;          /* on RG_OK: the protobuf and its item count */
} rg_decoded;

/* At END_STREAM: checks that exactly one whole message arrived and decodes
 * it for signal sig with the call's encoding, under cap (the decompressed
 * size too). mem (borrowed, or NULL) is the intake budget: a compressed
 * message's decompression limit is charged to it until rg_decoded_destroy()
 * (RG_UNAVAILABLE when it does not fit now). Fills *out (release with
 * rg_decoded_destroy): RG_OK and the
 * protobuf (out->res.pb may point into r's buffer: keep r until done), or
 * the status with out->res.message / reason set. */
void rg_decode(rg_reader *r, sw_signal sig, rcv_encoding enc, size_t cap, struct budget *mem,
               rg_decoded *out);
void rg_decoded_destroy(rg_decoded *d);

/* Appends the length-prefixed Export<sig>ServiceResponse (partial_success
 * set when rejected != 0 or msg is non-empty; msg borrowed, may be NULL).
 * 0, SW_ETOOBIG or SW_ENOMEM. */
int rg_encode_response(sw_signal sig, int64_t rejected, const char *msg, buf *out);
/* Appends msg percent-encoded for grpc-message (bytes outside 0x20-0x7e
 * and '%' as %XX). 0, SW_ETOOBIG or SW_ENOMEM. */
int rg_encode_message(const char *msg, buf *out);
/* Appends base64 of a google.rpc.Status {code, message, details} for
 * grpc-status-details-bin; with retry_after_s > 0 the details hold one Any
 * of type.googleapis.com/google.rpc.RetryInfo {retry_delay}. 0 or SW_E*. */
int rg_encode_status_details(int code, const char *msg, unsigned retry_after_s, buf *out);

#endif
