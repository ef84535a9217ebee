/* metrics.h — spillway's self-metrics registry.
 *
 * One sw_metrics per process, created by main and passed down (no global).
 * The registry knows no stage: it holds a list of metric families (name,
 * help, type) and, for each, the sources components registered; it renders
 * them in the Prometheus text format 0.0.4, each family once with one
 * HELP/TYPE block and its samples together, then the runtime's own process_*
 * and spillway_build_info families.
 *
 * A component declares its counters (a struct of atomics) and its label
 * enums in its own header and asks the registry for its block with
 * metrics_block(): the first call allocates the block zeroed and runs the
 * component's init, which registers its families with sources pointing
 * into the block; later calls with the same key return the same block, so
 * several objects of a component (and a component rebuilt on the same
 * registry) count into one block.
 *
 * Lifetime: the registry owns every block and frees it in metrics_free(),
 * never earlier. A component may be freed while the registry still renders
 * its counters; the counters simply stop moving. No unregistration exists.
 *
 * Threads: counting is lock-free (relaxed atomics on the block's fields;
 * the numbers are monitoring figures, not synchronisation). Registration
 * and rendering take the registry's mutex, which protects the family and
 * block lists only, so registering after rendering began is allowed (a
 * family appears on the next page) and concurrent renders are safe.
 */
#ifndef SW_METRICS_H
#define SW_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"

typedef struct sw_metrics sw_metrics;

#define MET_CODES 600   /* HTTP status codes 0..599; 0 = no response (connection error) */

/* Returns an owned, empty registry, or NULL. */
sw_metrics *metrics_new(void);
/* Frees the registry and every block it handed out (NULL-safe). */
void metrics_free(sw_metrics *m);

/* ---- counting (any thread, lock-free) ---------------------------------- */

static inline void metrics_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}
static inline void metrics_gauge_add(_Atomic int64_t *g, int64_t n)
{
    atomic_fetch_add_explicit(g, n, memory_order_relaxed);
}
static inline void metrics_gauge_set(_Atomic int64_t *g, int64_t v)
{
    atomic_store_explicit(g, v, memory_order_relaxed);
}
/* Index of an HTTP status code in a [MET_CODES] array (0 out of range). */
static inline int metrics_code_index(int code)
{
    return (code >= 0 && code < MET_CODES) ? code : 0;
}

/* A histogram of durations: bounds in nanoseconds (rendered in seconds),
 * set by the owner's init before the histogram is registered. */
#define METRICS_HIST_MAX 16
typedef struct metrics_hist {
    const int64_t *bounds_ns;                     /* n ascending upper bounds */
    unsigned n;                                   /* <= METRICS_HIST_MAX */
    _Atomic uint64_t buckets[METRICS_HIST_MAX + 1]; /* [n] = +Inf */
    _Atomic uint64_t sum_ns;
    _Atomic uint64_t count;
} metrics_hist;

/* Records one observation (negative: counted as 0). */
void metrics_hist_observe(metrics_hist *h, int64_t ns);

/* ---- registration ------------------------------------------------------ */

typedef enum { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM } metrics_type;

/* One label: its name and the value of each index, from a table or a
 * function (tmp, cap: scratch for formatted values). */
typedef struct metrics_dim {
    const char *label;                  /* NULL: dimension unused */
    unsigned n;
    const char *const *values;          /* n values, or NULL and value_of */
    const char *(*value_of)(unsigned i, char *tmp, size_t cap);
} metrics_dim;

/* Ready-made dimensions: signal (traces, metrics, logs), class (critical,
 * high, normal), code (HTTP status of a [MET_CODES] array: "error" for 0). */
metrics_dim metrics_dim_signal(void);
metrics_dim metrics_dim_class(void);
metrics_dim metrics_dim_http_code(void);

typedef struct metrics_out metrics_out;
/* Writes the samples of one source; the HELP/TYPE lines are already out. */
typedef void (*metrics_render_fn)(metrics_out *o, const char *name, const void *arg);

typedef enum {
    METRICS_SRC_U64,   /* _Atomic uint64_t cells */
    METRICS_SRC_I64,   /* _Atomic int64_t cells */
    METRICS_SRC_HIST,  /* one metrics_hist */
    METRICS_SRC_FN,    /* fn(o, name, arg) computes its samples */
} metrics_src_kind;

/* Where a family's samples come from. Table sources (U64, I64) render one
 * sample per cell, row-major over up to two dimensions, labels in dimension
 * order followed by const_labels. Everything pointed to must outlive the
 * registry (block fields, static tables). */
typedef struct metrics_source {
    metrics_src_kind kind;
    const void *cells;          /* U64/I64: the first cell; HIST: the metrics_hist */
    metrics_dim dims[2];
    const char *const_labels;   /* e.g. "transport=\"http\"", or NULL */
    int skip_zero;              /* leave zero cells out (sparse tables: status codes) */
    metrics_render_fn fn;       /* FN */
    const void *arg;            /* FN */
} metrics_source;

/* Adds src (copied) to the family name, creating the family (at the end
 * of the page) on first use. A family is rendered once, its sources in
 * registration order. name and help are borrowed and must outlive m
 * (static strings). 0, SW_EINVAL (same name with another type or help,
 * or a malformed source) or SW_ENOMEM. Any thread. */
int metrics_register(sw_metrics *m, const char *name, metrics_type type, const char *help,
                     const metrics_source *src);
/* Shorthand: a family of one unlabelled u64 (counter) or i64 (gauge) cell. */
int metrics_register_u64(sw_metrics *m, const char *name, metrics_type type, const char *help,
                         const _Atomic uint64_t *cell);
int metrics_register_i64(sw_metrics *m, const char *name, const char *help,
                         const _Atomic int64_t *cell);

/* Registers the families of a freshly zeroed block. 0 or an error. */
typedef int (*metrics_block_init)(sw_metrics *m, void *block);

/* The counter block called key (a static string) of size bytes: created
 * zeroed and passed to init the first time, the same block afterwards.
 * Returns it, borrowed (owned by m, valid until metrics_free), or NULL
 * (out of memory, init failed, or another size for the same key). */
void *metrics_block(sw_metrics *m, const char *key, size_t size, metrics_block_init init);

/* ---- custom sources (METRICS_SRC_FN) ------------------------------------ */

/* One sample: name, then {labels} when labels is non-NULL and non-empty
 * (already formatted, e.g. "class=\"high\""), then the value. */
void metrics_out_u64(metrics_out *o, const char *name, const char *labels, uint64_t v);
void metrics_out_i64(metrics_out *o, const char *name, const char *labels, int64_t v);
/* Shortest decimal that reads back as v ("0.25", "10"). */
void metrics_out_double(metrics_out *o, const char *name, const char *labels, double v);
/* Nanoseconds as exact seconds ("12.5", "0.003", "7"). */
void metrics_out_ns_seconds(metrics_out *o, const char *name, const char *labels, uint64_t ns);

/* ---- rendering ---------------------------------------------------------- */

/* Appends the Prometheus text exposition (format 0.0.4) of every family,
 * plus process_* metrics read from /proc, to out (borrowed). 0, or
 * SW_ETOOBIG / SW_ENOMEM from out (which then holds a partial page). */
int metrics_render(const sw_metrics *m, buf *out);

#endif
