/* th_otlp_int.h — internals shared by th_otlp*.c: a bump list of
 * allocations that all die together, and the generator context that
 * renders one request as protobuf-c messages, JSON text and content lines.
 */
#ifndef TH_OTLP_INT_H
#define TH_OTLP_INT_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "opentelemetry/proto/common/v1/common.pb-c.h"
#include "opentelemetry/proto/resource/v1/resource.pb-c.h"
#include "opentelemetry/proto/trace/v1/trace.pb-c.h"
#include "runtime/buf.h"
#include "runtime/item.h"
#include "testing/lib/th_otlp.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue th_kv;

/* Generator context. Allocation or formatting failure longjmps to `fail`. */
typedef struct th_gen {
    void **ptrs;       /* every allocation, freed by th_gen_destroy */
    size_t n, cap;
    buf json;
    buf lines;
    uint32_t seed;
    sw_signal sig;
    jmp_buf fail;
} th_gen;

void th_gen_init(th_gen *g, uint32_t seed);
void th_gen_destroy(th_gen *g);
/* Zeroed memory owned by g; longjmps on failure. */
void *th_gen_alloc(th_gen *g, size_t size);
char *th_gen_strf(th_gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends formatted text to b; longjmps on failure. */
void th_gen_put(th_gen *g, buf *b, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A deterministic 64-bit value of (seed, i, salt). */
uint64_t th_gen_mix(uint32_t seed, uint64_t i, uint64_t salt);
/* Writes 2n hex digits and a NUL. */
void th_gen_hex(char *out, const uint8_t *p, size_t n);

th_kv *th_gen_kv_str(th_gen *g, const char *key, const char *val);
th_kv *th_gen_kv_int(th_gen *g, const char *key, int64_t val);
/* Resource {service.name: itest-<seed>, itest.seed: <seed>} and scope
 * itest.scope 1.0; the JSON helpers write the matching text. */
Opentelemetry__Proto__Resource__V1__Resource *th_gen_resource(th_gen *g);
Opentelemetry__Proto__Common__V1__InstrumentationScope *th_gen_scope(th_gen *g);
void th_gen_json_resource(th_gen *g);
void th_gen_json_scope(th_gen *g);

/* Metrics builder (th_otlp_metrics.c): packs the request into *pb (owned,
 * malloc) and fills g->json and g->lines. */
void th_gen_metrics(th_gen *g, size_t n, uint8_t **pb, size_t *pb_len);

/* One span of seed g->seed: ids, name "span-<seed>-<i>", kind, times and
 * attribute as th_otlp_new() makes them; status code `status`, or i % 3
 * when status < 0. Writes its JSON (with a leading comma when i > 0) and
 * content line. */
typedef Opentelemetry__Proto__Trace__V1__Span th_span;
th_span *th_gen_span(th_gen *g, size_t i, int status);

/* A builder renders one request: packs *pb (owned, malloc) and fills
 * g->json and g->lines; arg is the builder's own parameter. */
typedef void (*th_gen_fn)(th_gen *g, const void *arg, uint8_t **pb, size_t *pb_len);
/* Runs build in a fresh generator of (sig, seed). Returns owned,
 * registered data declaring `items` items, or NULL. */
th_otlp *th_otlp_generate(sw_signal sig, uint32_t seed, size_t items, th_gen_fn build,
                          const void *arg);

#define TH_T0_NS 1700000000000000000ULL

#endif
