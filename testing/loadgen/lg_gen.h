/* lg_gen.h — deterministic OTLP request builder of the load generator.
 *
 * Builds a pool of distinct Export{Trace,Metrics,Logs}ServiceRequests with
 * the protobuf-c generated code, from a seed: the same options give the same
 * bytes. Sizes are realistic (a 100-span traces request is about 30 KB:
 * ids, names, kinds, times, attributes, status). Request number `seq` is
 * pool entry seq % n. In plain protobuf a few fixed-width fields of the
 * entry are patched while it is copied out (lg_pool_write), so the bytes of
 * `seq` depend only on the options and seq:
 *   - trace and span ids are XORed with a value derived from (seed, seq / n),
 *     so ids change from one pass over the pool to the next and spans of one
 *     trace keep sharing their trace id and parent links;
 *   - every item carries a unique 64-bit token (lg_pool_tokens), the key of
 *     --verify: a span's own span id; a log record's body ends in
 *     " id=<16 hex>"; a metric data point's value (as_int, as_double, or a
 *     histogram's sum) is the token as an integer below 2^52;
 *   - metrics in series mode carry a `series.id` label (16 hex) naming one
 *     of `series` series, renamed at `churn` x series per second of the
 *     request schedule; label explosion adds a `request.id` label unique to
 *     each data point.
 * Encoded (JSON) or compressed pools are sent as built (no patching: bytes
 * and tokens repeat every pass). Pure; single-threaded; the pool owns all
 * its bytes.
 *
 * Priority mix: with weights critical:high:normal, each resource gets a
 * class by exact apportionment (every `sum of weights` consecutive resources
 * hold the weights) and a service.name from that class's list:
 *   critical  checkout, payment
 *   high      frontend, cart
 *   normal    catalog, shipping, email, recommendation, ad, currency, quote,
 *             accounting
 * (suffixed "-K" beyond the first 12 services), matching the rules
 *   { class: critical, attribute: service.name, regex: "^(checkout|payment)" }
 *   { class: high, attribute: service.name, regex: "^(frontend|cart)" }
 */
#ifndef SW_LG_GEN_H
#define SW_LG_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/item.h"

typedef enum { LG_ENC_PROTOBUF = 0, LG_ENC_JSON = 1 } lg_encoding;
typedef enum { LG_COMP_NONE = 0, LG_COMP_GZIP = 1, LG_COMP_ZSTD = 2 } lg_compression;

typedef struct lg_gen_opts {
    sw_signal signal;
    uint32_t batch;      /* items (spans, data points, log records) per request, >= 1 */
    uint32_t services;   /* distinct service.name values over the pool, >= 1 */
    uint32_t attrs;      /* attributes per item */
    uint64_t seed;
    uint32_t pool;       /* distinct requests; 0 = clamp(services, 16, 256), adjusted
                          * for the priority mix and series mode */
    lg_encoding encoding;
    lg_compression compression;
    uint32_t prio_mix[3];  /* weights critical, high, normal; all 0 = plain service list */
    uint64_t series;       /* metrics: series in the series.id label; 0 = off; >= batch */
    double churn;          /* metrics: fraction of the series renamed per second */
    int label_explosion;   /* metrics: a request.id label unique to every data point */
    double rate;           /* this signal's items/s of the schedule (churn clock); 0 = none */
} lg_gen_opts;

/* What a patch writes at its offset. */
typedef enum {
    LG_P_ID = 0,     /* 8 bytes XORed with the pass mask */
    LG_P_SPAN,       /* a span's own id: as LG_P_ID, and the span's token */
    LG_P_TOK_INT,    /* sfixed64: the item's token */
    LG_P_TOK_DBL,    /* double: the item's token */
    LG_P_TOK_HEX,    /* 16 lowercase hex digits: the item's token */
    LG_P_SERIES,     /* 16 hex digits: the data point's series name */
    LG_P_EXPLODE,    /* 16 hex digits: unique to the data point */
    LG_P_KINDS
} lg_patch_kind;

typedef struct lg_patch {
    uint32_t off;        /* byte offset in data */
    uint16_t kind;       /* lg_patch_kind */
    uint32_t item;       /* item index in the request */
} lg_patch;

typedef struct lg_req {
    uint8_t *data;       /* request body as sent */
    size_t len;
    lg_patch *patch;     /* applied by lg_pool_write; NULL/0 if none (JSON, compressed) */
    size_t n_patch;
    uint64_t *tok0;      /* the items' tokens as built (first pass); batch entries */
} lg_req;

typedef struct lg_pool lg_pool;

/* Returns an owned pool of requests built from *o, or NULL (out of memory,
 * invalid options, or an encoder failed; *err set to a project code). */
lg_pool *lg_pool_new(const lg_gen_opts *o, int *err);
void lg_pool_free(lg_pool *p);
size_t lg_pool_size(const lg_pool *p);
uint32_t lg_pool_batch(const lg_pool *p);
sw_signal lg_pool_signal(const lg_pool *p);
/* Borrowed; valid until lg_pool_free. */
const lg_req *lg_pool_get(const lg_pool *p, uint64_t seq);
/* The 64-bit value request `seq` XORs into its ids (0 for the first pass). */
uint64_t lg_pool_id_mask(const lg_pool *p, uint64_t seq);
/* Writes the body of request `seq` (lg_pool_get(p, seq)->len bytes) to dst. */
void lg_pool_write(const lg_pool *p, uint64_t seq, uint8_t *dst);
/* Writes the batch tokens of request `seq`'s items to out (lg_pool_batch
 * entries), as lg_token_of_line() reads them back from the mock upstream. */
void lg_pool_tokens(const lg_pool *p, uint64_t seq, uint64_t *out);
/* The token in one line of the mock upstream's /received/<signal> text
 * (docs/mockup.md "Content lines"); 0 and *tok set, or -1 if unreadable. */
int lg_token_of_line(sw_signal sig, const char *line, size_t len, uint64_t *tok);

/* Parses "traces|metrics|logs", "protobuf|json", "none|gzip|zstd"; -1 if unknown. */
int lg_signal_parse(const char *s);
int lg_encoding_parse(const char *s);
int lg_compression_parse(const char *s);
const char *lg_encoding_name(lg_encoding e);
const char *lg_compression_name(lg_compression c);

/* Request interleaving of several weighted streams (signals): a round of
 * W = sum of weights requests in smooth weighted round-robin order; request
 * seq is request `sub` of stream `stream`. Pure; owns its tables. */
typedef struct lg_mix {
    uint32_t n, total;       /* streams, W */
    uint32_t w[SIG_COUNT];
    uint8_t *stream;         /* W entries */
    uint32_t *occ;           /* W entries: index of the position inside its stream's round */
} lg_mix;

/* weights[0..n), n <= SIG_COUNT, each 1..1000. 0, SW_EINVAL or SW_ENOMEM. */
int lg_mix_init(lg_mix *m, const uint32_t *weights, uint32_t n);
void lg_mix_destroy(lg_mix *m);
void lg_mix_map(const lg_mix *m, uint64_t seq, uint32_t *stream, uint64_t *sub);

#endif
