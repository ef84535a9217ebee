/* lg_gen.h — deterministic OTLP request builder of the load generator.
 *
 * Builds a pool of distinct Export{Trace,Metrics,Logs}ServiceRequests with
 * the protobuf-c generated code, from a seed: the same options give the same
 * bytes. Sizes are realistic (a 100-span traces request is about 30 KB:
 * ids, names, kinds, times, attributes, status). Request number `seq` is
 * pool entry seq % n; in plain protobuf its trace and span ids are XORed
 * with a value derived from (seed, seq / n), so ids keep changing from one
 * pass over the pool to the next without rebuilding anything, and spans of
 * one trace keep sharing their trace id. Encoded (JSON) or compressed pools
 * are sent as built. Pure; single-threaded; the pool owns all its bytes.
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
    uint32_t pool;       /* distinct requests; 0 = clamp(services, 16, 256) */
    lg_encoding encoding;
    lg_compression compression;
} lg_gen_opts;

typedef struct lg_req {
    uint8_t *data;       /* request body as sent */
    size_t len;
    uint32_t *id_off;    /* offsets of 8-byte id fields to vary; NULL if none */
    size_t n_id;
} lg_req;

typedef struct lg_pool lg_pool;

/* Returns an owned pool of requests built from *o, or NULL (out of memory,
 * invalid options, or an encoder failed; *err set to a project code). */
lg_pool *lg_pool_new(const lg_gen_opts *o, int *err);
void lg_pool_free(lg_pool *p);
size_t lg_pool_size(const lg_pool *p);
/* Borrowed; valid until lg_pool_free. */
const lg_req *lg_pool_get(const lg_pool *p, uint64_t seq);
/* The 64-bit value request `seq` XORs into its ids (0 for the first pass). */
uint64_t lg_pool_id_mask(const lg_pool *p, uint64_t seq);
/* Writes the body of request `seq` (lg_pool_get(p, seq)->len bytes) to dst. */
void lg_pool_write(const lg_pool *p, uint64_t seq, uint8_t *dst);

/* Parses "traces|metrics|logs", "protobuf|json", "none|gzip|zstd"; -1 if unknown. */
int lg_signal_parse(const char *s);
int lg_encoding_parse(const char *s);
int lg_compression_parse(const char *s);
const char *lg_encoding_name(lg_encoding e);
const char *lg_compression_name(lg_compression c);

#endif
