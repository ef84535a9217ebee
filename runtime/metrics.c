/* metrics.c — see metrics.h.
 *
 * Rendering follows the Prometheus text exposition format 0.0.4: every
 * family gets "# HELP" and "# TYPE" lines (even when it has no sample yet),
 * counters end in _total, values are in base units (seconds, bytes), and
 * label values are escaped (\\, \", \n). Counters are read with relaxed
 * loads, so one page is not an atomic snapshot across families; within a
 * histogram the buckets are read once and _count is their sum, so the +Inf
 * bucket always equals _count.
 */
#include "runtime/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/item.h"
#include "runtime/procstat.h"

#ifndef SW_VERSION
#define SW_VERSION "unknown"
#endif
#ifndef SW_GITREV
#define SW_GITREV "unknown"
#endif

typedef struct mt_source {
    metrics_source s;
    struct mt_source *next;
} mt_source;

typedef struct mt_family {
    const char *name;              /* borrowed: static strings of the component */
    const char *help;
    metrics_type type;
    mt_source *first, *last;       /* owned, in registration order */
    struct mt_family *next;
} mt_family;

typedef struct mt_block {
    const char *key;               /* borrowed: static string */
    size_t size;
    int ok;                        /* init succeeded */
    struct mt_block *next;
    max_align_t data[];            /* the component's zeroed counters */
} mt_block;

struct sw_metrics {
    pthread_mutex_t mu;            /* protects families and blocks (the lists, not the counters) */
    pthread_mutex_t block_mu;      /* serialises metrics_block(): one init per key */
    mt_family *families, *last_family; /* owned, in page order */
    mt_block *blocks;              /* owned */
    int64_t start_wall_ns;
};

sw_metrics *metrics_new(void)
{
    sw_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    if (pthread_mutex_init(&m->block_mu, NULL) != 0) {
        pthread_mutex_destroy(&m->mu);
        free(m);
        return NULL;
    }
    m->start_wall_ns = clock_wall_ns();
    return m;
}

void metrics_free(sw_metrics *m)
{
    if (!m) return;
    for (mt_family *f = m->families, *fn; f; f = fn) {
        fn = f->next;
        for (mt_source *s = f->first, *sn; s; s = sn) {
            sn = s->next;
            free(s);
        }
        free(f);
    }
    for (mt_block *b = m->blocks, *bn; b; b = bn) {
        bn = b->next;
        free(b);
    }
    pthread_mutex_destroy(&m->block_mu);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void metrics_hist_observe(metrics_hist *h, int64_t ns)
{
    if (ns < 0) ns = 0;
    unsigned i = 0;
    while (i < h->n && ns > h->bounds_ns[i]) i++;
    metrics_add(&h->buckets[i], 1);
    metrics_add(&h->sum_ns, (uint64_t)ns);
    metrics_add(&h->count, 1);
}

/* ---- dimensions --------------------------------------------------------- */

static const char *signal_value(unsigned i, char *tmp, size_t cap)
{
    (void)tmp;
    (void)cap;
    return sw_signal_name((sw_signal)i);
}

static const char *class_value(unsigned i, char *tmp, size_t cap)
{
    (void)tmp;
    (void)cap;
    return sw_class_name((sw_class)i);
}

static const char *http_code_value(unsigned i, char *tmp, size_t cap)
{
    if (i == 0) return "error";
    snprintf(tmp, cap, "%u", i);
    return tmp;
}

metrics_dim metrics_dim_signal(void)
{
    return (metrics_dim){.label = "signal", .n = SIG_COUNT, .value_of = signal_value};
}

metrics_dim metrics_dim_class(void)
{
    return (metrics_dim){.label = "class", .n = CLASS_COUNT, .value_of = class_value};
}

metrics_dim metrics_dim_http_code(void)
{
    return (metrics_dim){.label = "code", .n = MET_CODES, .value_of = http_code_value};
}

/* ---- registration ------------------------------------------------------- */

static int dim_valid(const metrics_dim *d)
{
    return !d->label || (d->n > 0 && (d->values || d->value_of));
}

static int source_valid(metrics_type type, const metrics_source *s)
{
    if (!dim_valid(&s->dims[0]) || !dim_valid(&s->dims[1])) return 0;
    if (!s->dims[0].label && s->dims[1].label) return 0;
    switch (s->kind) {
    case METRICS_SRC_U64:
    case METRICS_SRC_I64: return s->cells != NULL && type != METRICS_HISTOGRAM;
    case METRICS_SRC_HIST: {
        const metrics_hist *h = s->cells;
        return h && type == METRICS_HISTOGRAM && h->n <= METRICS_HIST_MAX &&
               (h->n == 0 || h->bounds_ns);
    }
    case METRICS_SRC_FN: return s->fn != NULL;
    }
    return 0;
}

static mt_family *find_family(sw_metrics *m, const char *name)
{
    for (mt_family *f = m->families; f; f = f->next)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}

/* Called with m->mu held. */
static int add_source(sw_metrics *m, const char *name, metrics_type type, const char *help,
                      const metrics_source *src)
{
    mt_family *f = find_family(m, name);
    if (f && (f->type != type || strcmp(f->help, help) != 0)) return SW_EINVAL;
    mt_source *s = calloc(1, sizeof *s);
    if (!s) return SW_ENOMEM;
    s->s = *src;
    if (!f) {
        if (!(f = calloc(1, sizeof *f))) {
            free(s);
            return SW_ENOMEM;
        }
        f->name = name;
        f->help = help;
        f->type = type;
        if (m->last_family) m->last_family->next = f;
        else m->families = f;
        m->last_family = f;
    }
    if (f->last) f->last->next = s;
    else f->first = s;
    f->last = s;
    return 0;
}

int metrics_register(sw_metrics *m, const char *name, metrics_type type, const char *help,
                     const metrics_source *src)
{
    if (!m || !name || !*name || !help || !src || !source_valid(type, src)) return SW_EINVAL;
    pthread_mutex_lock(&m->mu);
    int rc = add_source(m, name, type, help, src);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int metrics_register_u64(sw_metrics *m, const char *name, metrics_type type, const char *help,
                         const _Atomic uint64_t *cell)
{
    metrics_source s = {.kind = METRICS_SRC_U64, .cells = cell};
    return metrics_register(m, name, type, help, &s);
}

int metrics_register_i64(sw_metrics *m, const char *name, const char *help,
                         const _Atomic int64_t *cell)
{
    metrics_source s = {.kind = METRICS_SRC_I64, .cells = cell};
    return metrics_register(m, name, METRICS_GAUGE, help, &s);
}

void *metrics_block(sw_metrics *m, const char *key, size_t size, metrics_block_init init)
{
    if (!m || !key) return NULL;
    /* block_mu, not mu, is held across init: init registers (taking mu). */
    pthread_mutex_lock(&m->block_mu);
    mt_block *b = m->blocks;
    while (b && strcmp(b->key, key) != 0) b = b->next;
    if (!b && (b = calloc(1, sizeof *b + size)) != NULL) {
        b->key = key;
        b->size = size;
        b->ok = init ? init(m, b->data) == 0 : 1;
        pthread_mutex_lock(&m->mu);
        b->next = m->blocks;
        m->blocks = b;
        pthread_mutex_unlock(&m->mu);
    }
    void *data = b && b->ok && b->size == size ? b->data : NULL;
    pthread_mutex_unlock(&m->block_mu);
    return data;
}

/* ---- rendering -------------------------------------------------------- */

/* Output plus the first error: helpers do nothing once rc is set, so the
 * render functions read as a list of families. */
typedef struct mr_ctx {
    buf *out;
    int rc;
} mr_ctx;

static void mr_printf(mr_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mr_printf(mr_ctx *c, const char *fmt, ...)
{
    if (c->rc) return;
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        c->rc = SW_EINVAL; /* every line we format is short */
        return;
    }
    c->rc = buf_append(c->out, tmp, (size_t)n);
}

static void mr_family(mr_ctx *c, const char *name, const char *type, const char *help)
{
    mr_printf(c, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t ld_u(const _Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

static int64_t ld_i(const _Atomic int64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

/* Shortest decimal text that reads back as v. Integral values print
 * without an exponent ("10", not "1e+01"); a non-integral value needs more
 * significant digits than it has integer digits, so %g keeps it positional
 * unless it is tiny (< 1e-4), where the exponent form is fine. */
static void mr_fmt_double(char *dst, size_t cap, double v)
{
    if (v == (double)(long long)v && v > -1e15 && v < 1e15) {
        snprintf(dst, cap, "%lld", (long long)v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(dst, cap, "%.*g", prec, v);
        if (strtod(dst, NULL) == v) return;
    }
}

/* Exact seconds from nanoseconds: "12.5", "0.003", "7". */
static void mr_fmt_ns_seconds(char *dst, size_t cap, uint64_t ns)
{
    int n = snprintf(dst, cap, "%llu.%09llu", (unsigned long long)(ns / 1000000000u),
                     (unsigned long long)(ns % 1000000000u));
    if (n <= 0 || (size_t)n >= cap) return;
    while (n > 0 && dst[n - 1] == '0') dst[--n] = '\0';
    if (n > 0 && dst[n - 1] == '.') dst[--n] = '\0';
}

static void mr_double(mr_ctx *c, const char *name, double v)
{
    char num[64];
    mr_fmt_double(num, sizeof num, v);
    mr_printf(c, "%s %s\n", name, num);
}

/* Appends s with Prometheus label-value escaping. */
static void mr_label_value(mr_ctx *c, const char *s)
{
    for (; *s && !c->rc; s++) {
        if (*s == '\\') c->rc = buf_append_str(c->out, "\\\\");
        else if (*s == '"') c->rc = buf_append_str(c->out, "\\\"");
        else if (*s == '\n') c->rc = buf_append_str(c->out, "\\n");
        else c->rc = buf_append(c->out, s, 1);
    }
}

/* ---- sources ------------------------------------------------------------ */

struct metrics_out {
    mr_ctx c;
};

static void out_sample(mr_ctx *c, const char *name, const char *labels, const char *value)
{
    if (labels && *labels) mr_printf(c, "%s{%s} %s\n", name, labels, value);
    else mr_printf(c, "%s %s\n", name, value);
}

void metrics_out_u64(metrics_out *o, const char *name, const char *labels, uint64_t v)
{
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    out_sample(&o->c, name, labels, num);
}

void metrics_out_i64(metrics_out *o, const char *name, const char *labels, int64_t v)
{
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)v);
    out_sample(&o->c, name, labels, num);
}

void metrics_out_double(metrics_out *o, const char *name, const char *labels, double v)
{
    char num[64];
    mr_fmt_double(num, sizeof num, v);
    out_sample(&o->c, name, labels, num);
}

void metrics_out_ns_seconds(metrics_out *o, const char *name, const char *labels, uint64_t ns)
{
    char num[64];
    mr_fmt_ns_seconds(num, sizeof num, ns);
    out_sample(&o->c, name, labels, num);
}

/* Appends label="value" (escaped) to dst at *len; 0, or -1 if it does not fit. */
static int label_append(char *dst, size_t cap, size_t *len, const char *label, const char *v)
{
    int n = snprintf(dst + *len, cap - *len, "%s%s=\"", *len ? "," : "", label);
    if (n < 0 || (size_t)n >= cap - *len) return -1;
    *len += (size_t)n;
    for (; *v; v++) {
        const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
        size_t k = esc ? 2 : 1;
        if (*len + k + 2 > cap) return -1;
        memcpy(dst + *len, esc ? esc : v, k);
        *len += k;
    }
    dst[(*len)++] = '"';
    dst[*len] = '\0';
    return 0;
}

static const char *dim_value(const metrics_dim *d, unsigned i, char *tmp, size_t cap)
{
    return d->values ? d->values[i] : d->value_of(i, tmp, cap);
}

/* The labels of cell (i, j) of s into dst. */
static int cell_labels(const metrics_source *s, unsigned i, unsigned j, char *dst, size_t cap)
{
    char tmp[32];
    size_t len = 0;
    dst[0] = '\0';
    if (s->dims[0].label &&
        label_append(dst, cap, &len, s->dims[0].label, dim_value(&s->dims[0], i, tmp, sizeof tmp)))
        return -1;
    if (s->dims[1].label &&
        label_append(dst, cap, &len, s->dims[1].label, dim_value(&s->dims[1], j, tmp, sizeof tmp)))
        return -1;
    if (s->const_labels && *s->const_labels) {
        int n = snprintf(dst + len, cap - len, "%s%s", len ? "," : "", s->const_labels);
        if (n < 0 || (size_t)n >= cap - len) return -1;
    }
    return 0;
}

static void render_table(metrics_out *o, const char *name, const metrics_source *s)
{
    unsigned ni = s->dims[0].label ? s->dims[0].n : 1;
    unsigned nj = s->dims[1].label ? s->dims[1].n : 1;
    char labels[256];
    for (unsigned i = 0; i < ni && !o->c.rc; i++) {
        for (unsigned j = 0; j < nj && !o->c.rc; j++) {
            size_t k = (size_t)i * nj + j;
            int64_t iv = 0;
            uint64_t uv = 0;
            if (s->kind == METRICS_SRC_U64) uv = ld_u((const _Atomic uint64_t *)s->cells + k);
            else iv = ld_i((const _Atomic int64_t *)s->cells + k);
            if (s->skip_zero && uv == 0 && iv == 0) continue;
            if (cell_labels(s, i, j, labels, sizeof labels) != 0) {
                o->c.rc = SW_EINVAL; /* label sets are short */
                return;
            }
            if (s->kind == METRICS_SRC_U64) metrics_out_u64(o, name, labels, uv);
            else metrics_out_i64(o, name, labels, iv);
        }
    }
}

static void render_hist(metrics_out *o, const char *name, const metrics_hist *h)
{
    uint64_t cum = 0;
    char num[64];
    for (unsigned i = 0; i <= h->n; i++) {
        cum += ld_u(&h->buckets[i]);
        if (i < h->n) mr_fmt_double(num, sizeof num, (double)h->bounds_ns[i] / 1e9);
        else snprintf(num, sizeof num, "+Inf");
        mr_printf(&o->c, "%s_bucket{le=\"%s\"} %llu\n", name, num, (unsigned long long)cum);
    }
    mr_fmt_ns_seconds(num, sizeof num, ld_u(&h->sum_ns));
    mr_printf(&o->c, "%s_sum %s\n", name, num);
    mr_printf(&o->c, "%s_count %llu\n", name, (unsigned long long)cum);
}

static const char *type_name(metrics_type t)
{
    return t == METRICS_COUNTER ? "counter" : t == METRICS_GAUGE ? "gauge" : "histogram";
}

static void render_family(metrics_out *o, const mt_family *f)
{
    mr_family(&o->c, f->name, type_name(f->type), f->help);
    for (const mt_source *s = f->first; s && !o->c.rc; s = s->next) {
        switch (s->s.kind) {
        case METRICS_SRC_U64:
        case METRICS_SRC_I64: render_table(o, f->name, &s->s); break;
        case METRICS_SRC_HIST: render_hist(o, f->name, s->s.cells); break;
        case METRICS_SRC_FN: s->s.fn(o, f->name, s->s.arg); break;
        }
    }
}

/* ---- runtime families ----------------------------------------------------- */

static void mr_process(mr_ctx *c, const sw_metrics *m)
{
    procstat ps;
    if (procstat_read(&ps) != 0) return; /* no /proc: leave the families out */
    double start = ps.start_time_s > 0 ? ps.start_time_s : (double)m->start_wall_ns / 1e9;
    mr_family(c, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    mr_double(c, "process_cpu_seconds_total", ps.cpu_user_s + ps.cpu_system_s);
    mr_family(c, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    mr_printf(c, "process_resident_memory_bytes %llu\n", (unsigned long long)ps.rss_bytes);
    mr_family(c, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    mr_printf(c, "process_virtual_memory_bytes %llu\n", (unsigned long long)ps.vsize_bytes);
    mr_family(c, "process_start_time_seconds", "gauge",
              "Start time of the process since unix epoch in seconds.");
    mr_double(c, "process_start_time_seconds", start);
    if (ps.open_fds >= 0) {
        mr_family(c, "process_open_fds", "gauge", "Number of open file descriptors.");
        mr_printf(c, "process_open_fds %lld\n", (long long)ps.open_fds);
    }
    if (ps.max_fds >= 0) {
        mr_family(c, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        mr_printf(c, "process_max_fds %lld\n", (long long)ps.max_fds);
    }
}

static void mr_build_info(mr_ctx *c)
{
    mr_family(c, "spillway_build_info", "gauge",
              "Always 1; the labels name the running build.");
    mr_printf(c, "spillway_build_info{version=\"");
    mr_label_value(c, SW_VERSION);
    mr_printf(c, "\",revision=\"");
    mr_label_value(c, SW_GITREV);
    mr_printf(c, "\"} 1\n");
}

int metrics_render(const sw_metrics *cm, buf *out)
{
    sw_metrics *m = (sw_metrics *)cm; /* the mutex changes; the registry does not */
    metrics_out o = {.c = {.out = out, .rc = 0}};
    pthread_mutex_lock(&m->mu);
    for (const mt_family *f = m->families; f && !o.c.rc; f = f->next) render_family(&o, f);
    pthread_mutex_unlock(&m->mu);
    mr_process(&o.c, m);
    mr_build_info(&o.c);
    return o.c.rc;
}
