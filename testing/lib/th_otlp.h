/* th_otlp.h — deterministic OTLP test data for the integration tests.
 *
 * th_otlp_new(sig, seed, n) builds one Export<sig>ServiceRequest with n
 * items (spans, metric data points, log records) whose ids, names, bodies
 * and values derive from seed, and keeps three forms of it:
 *   pb     the protobuf encoding (protobuf-c generated code),
 *   json   the same data in the OTLP/JSON mapping, written by hand (hex ids,
 *          64-bit integers as strings, enums as integers, lowerCamelCase),
 *   lines  the "content lines" the mock upstream lists under
 *          GET /received/<signal> for that data, one per item:
 *            traces   <trace_id_hex> <span_id_hex> <span name>
 *            logs     <trace_id_hex or -> <severity_number> <body>
 *            metrics  <name> <gauge|sum|histogram|exphistogram|summary>
 *                     <k=v,... sorted by key> <value | count=N sum=S>
 * Metric data points cycle through the five types. th_otlp_new_traces()
 * and th_otlp_new_points() build requests with chosen content instead
 * (resources with given service names and span statuses; metric series
 * with given names, attributes and values). Objects are registered
 * with the per-case cleanup (th_proc.h). Main thread only.
 */
#ifndef TH_OTLP_H
#define TH_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/item.h"
#include "testing/lib/th_http.h"

typedef struct th_otlp {
    sw_signal sig;
    uint32_t seed;
    size_t items;     /* spans / data points / log records */
    uint8_t *pb;      /* owned */
    size_t pb_len;
    char *json;       /* owned, NUL-terminated */
    size_t json_len;
    char *lines;      /* owned, NUL-terminated, one '\n'-terminated line per item */
} th_otlp;

/* Returns owned, registered data, or NULL on allocation failure. */
th_otlp *th_otlp_new(sw_signal sig, uint32_t seed, size_t n);
void th_otlp_free(th_otlp *d);
/* Appends an unknown top-level field (number 99, varint) to pb. 0 or -1. */
int th_otlp_add_unknown_field(th_otlp *d);

/* ---- requests with chosen content ---- */

/* Span statuses of a resource built by th_otlp_new_traces(). */
enum {
    TH_STATUS_CYCLE = 0,  /* span i gets code i % 3 (UNSET, OK, ERROR), as th_otlp_new */
    TH_STATUS_OK,         /* every span OK */
    TH_STATUS_LAST_ERROR  /* every span OK but the last, which is ERROR */
};

/* One resource of a traces request. */
typedef struct th_res_spec {
    const char *service; /* service.name (no '"' or '\\'); borrowed */
    uint32_t seed;       /* span ids and names ("span-<seed>-<i>") derive from it */
    size_t spans;
    int status;          /* TH_STATUS_* */
} th_res_spec;

/* A traces request with one ResourceSpans per spec, in order (resource
 * attributes service.name and itest.seed, one scope). d->seed is the first
 * resource's seed. Returns owned, registered data, or NULL. */
th_otlp *th_otlp_new_traces(const th_res_spec *res, size_t n_res);

/* One data point of th_otlp_new_points(). */
typedef struct th_point {
    const char *metric; /* metric name; borrowed */
    const char *attrs;  /* "k=v,k=v": string attributes in encoding order, NULL or ""
                         * for none (no ',', '=', '"' or '\\' inside; at most 32) */
    int64_t value;      /* value of a delta, monotonic, integer sum */
} th_point;

/* A metrics request of one resource (service.name = service, itest.seed =
 * seed) and one scope; consecutive points with the same metric name share
 * one Metric message; point i has time T0 + i. Content lines list the
 * attributes sorted by key, as the mock does. Returns owned, registered
 * data, or NULL. */
th_otlp *th_otlp_new_points(const char *service, uint32_t seed, const th_point *pts, size_t n);

/* Request encodings the receiver accepts. */
typedef enum {
    TH_ENC_PB = 0,
    TH_ENC_JSON,
    TH_ENC_GZIP_PB,
    TH_ENC_ZSTD_PB,
    TH_ENC_GZIP_JSON,
    TH_ENC_COUNT
} th_enc;

const char *th_enc_name(th_enc e);
/* "application/x-protobuf" or "application/json". */
const char *th_enc_content_type(th_enc e);

/* POSTs d to /v1/<signal> on c in encoding e. Returns the response
 * (borrowed from c) or NULL on a transport or compression error. */
const th_resp *th_otlp_send(th_http *c, const th_otlp *d, th_enc e);

/* Compresses data ("gzip" or "zstd"). Returns owned bytes (not
 * registered) and *out_len, or NULL. */
uint8_t *th_compress(const char *coding, const void *data, size_t len, size_t *out_len);

/* Checks a success answer to a request sent in encoding e: status 200,
 * Content-Type equal to the request's, and a body that is empty (protobuf
 * only) or decodes as Export<sig>ServiceResponse (or a JSON object) without
 * rejected items. 0, or -1 with the reason in why. */
int th_otlp_check_success(const th_resp *r, sw_signal sig, th_enc e, char *why, size_t len);
/* Checks an error body: an encoded google.rpc.Status (json = 0) or a JSON
 * object with "code" and "message" (json = 1), and the Content-Type that
 * matches. 0, or -1 with the reason in why. */
int th_otlp_check_status_body(const th_resp *r, int json, char *why, size_t len);

/* ---- expected content ---- */

typedef struct th_expect th_expect;

/* Returns an owned, registered, empty expectation, or NULL. */
th_expect *th_expect_new(void);
void th_expect_free(th_expect *e);
/* Adds the content lines and items of d. 0 or -1. */
int th_expect_add(th_expect *e, const th_otlp *d);
size_t th_expect_items(const th_expect *e);
/* Compares, as multisets, the expected lines with `got` (the text of
 * /received/<signal>). Metric values are compared as numbers. 0 when equal;
 * else -1 with the counts and the first missing / unexpected lines
 * described in why. */
int th_expect_check(const th_expect *e, const char *got, char *why, size_t whylen);

/* Number of non-empty lines in text. */
size_t th_count_lines(const char *text);

#endif
