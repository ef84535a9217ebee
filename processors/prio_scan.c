/* prio_scan.c — the wire scans of prio_wire.h.
 *
 * Each scan is a few nested "for each length-delimited field number N"
 * loops over the encoded bytes. Scalars are last-wins (as protobuf decodes
 * them), and of a oneof only the member given last counts.
 */
#include <limits.h>

#include "processors/prio_wire.h"

#include <stdio.h>

/* Calls fn(arg, payload, len) for every field numbered num (which must be
 * length-delimited); skips other fields. fn: <0 error, 0 go on, 1 stop.
 * Returns 0 (also when stopped early), or -1. */
typedef int (*each_fn)(void *arg, const uint8_t *p, size_t n);

static int each(const uint8_t *p, size_t n, uint32_t num, each_fn fn, void *arg)
{
    const uint8_t *end = p + n;
    pbw_field f;
    while (p < end) {
        if (pbw_next(&p, end, &f) != 0) return -1;
        if (f.num != num) continue;
        if (f.wt != PBW_LEN) return -1;
        int rc = fn(arg, f.sub, f.n);
        if (rc < 0) return -1;
        if (rc > 0) return 0;
    }
    return 0;
}

/* Last value of varint field num of a message; *out untouched if absent. */
static int last_varint(const uint8_t *p, size_t n, uint32_t num, uint64_t *out)
{
    const uint8_t *end = p + n;
    pbw_field f;
    while (p < end) {
        if (pbw_next(&p, end, &f) != 0) return -1;
        if (f.num != num) continue;
        if (f.wt != PBW_VARINT) return -1;
        *out = f.v;
    }
    return 0;
}

/* ---- resource attributes ---- */

typedef struct attr_walk {
    pw_attr_fn fn;
    void *arg;
} attr_walk;

/* The text form of an AnyValue: 1 with *val and *vlen set, 0 when its type has
 * none (double, bytes, array, kvlist, unset), -1 if malformed. */
static int value_text(const uint8_t *p, size_t n, char *tmp, size_t cap, const char **val,
                      size_t *vlen)
{
    const uint8_t *end = p + n;
    pbw_field f, last = {0};
    while (p < end) {
        if (pbw_next(&p, end, &f) != 0) return -1;
        if (f.num >= 1 && f.num <= 7) last = f;   /* oneof: the last member wins */
    }
    switch (last.num) {
    case 1:
        if (last.wt != PBW_LEN) return -1;
        *val = (const char *)last.sub;
        *vlen = last.n;
        return 1;
    case 2:
        if (last.wt != PBW_VARINT) return -1;
        *val = last.v ? "true" : "false";
        *vlen = last.v ? 4 : 5;
        return 1;
    case 3:
        if (last.wt != PBW_VARINT) return -1;
        *vlen = (size_t)snprintf(tmp, cap, "%lld", (long long)(int64_t)last.v);
        *val = tmp;
        return 1;
    default:
        return 0;
    }
}

static int one_attr(void *arg, const uint8_t *p, size_t n)
{
    attr_walk *w = arg;
    const uint8_t *end = p + n;
    const uint8_t *key = (const uint8_t *)"", *vp = NULL;
    size_t klen = 0, vn = 0;
    pbw_field f;
    while (p < end) {
        if (pbw_next(&p, end, &f) != 0) return -1;
        if (f.num != 1 && f.num != 2) continue;
        if (f.wt != PBW_LEN) return -1;
        if (f.num == 1) {
            key = f.sub;
            klen = f.n;
        } else {
            vp = f.sub;
            vn = f.n;
        }
    }
    if (!vp) return 0;   /* no value: nothing to match */
    char tmp[32];
    const char *val;
    size_t vlen;
    int rc = value_text(vp, vn, tmp, sizeof tmp, &val, &vlen);
    if (rc <= 0) return rc;
    return w->fn(w->arg, key, klen, val, vlen);
}

static int one_resource(void *arg, const uint8_t *p, size_t n)
{
    return each(p, n, 1, one_attr, arg) ? -1 : 0;   /* Resource.attributes = 1 */
}

int pw_resource_attrs(const uint8_t *p, size_t n, pw_attr_fn fn, void *arg)
{
    attr_walk w = {fn, arg};
    return each(p, n, 1, one_resource, &w);          /* Resource<sig>.resource = 1 */
}

/* ---- span status ERROR (traces) ---- */

static int one_status(void *arg, const uint8_t *p, size_t n)
{
    uint64_t code = 0;
    if (last_varint(p, n, 3, &code) != 0) return -1; /* Status.code = 3 */
    if (code != 2) return 0;                          /* STATUS_CODE_ERROR */
    *(int *)arg = 1;
    return 1;
}

static int one_span(void *arg, const uint8_t *p, size_t n)
{
    if (each(p, n, 15, one_status, arg) != 0) return -1; /* Span.status = 15 */
    return *(int *)arg;
}

static int one_scope_spans(void *arg, const uint8_t *p, size_t n)
{
    if (each(p, n, 2, one_span, arg) != 0) return -1;    /* ScopeSpans.spans = 2 */
    return *(int *)arg;
}

int pw_has_error_span(const uint8_t *p, size_t n, int *out)
{
    *out = 0;
    return each(p, n, 2, one_scope_spans, out);           /* ResourceSpans.scope_spans = 2 */
}

/* ---- highest log severity (logs) ---- */

static int one_record(void *arg, const uint8_t *p, size_t n)
{
    uint64_t sev = 0;
    if (last_varint(p, n, 2, &sev) != 0) return -1;     /* LogRecord.severity_number = 2 */
    int *max = arg;
    if (sev > (uint64_t)*max && sev <= INT_MAX) *max = (int)sev;
    return 0;
}

static int one_scope_logs(void *arg, const uint8_t *p, size_t n)
{
    return each(p, n, 2, one_record, arg) ? -1 : 0;       /* ScopeLogs.log_records = 2 */
}

int pw_max_severity(const uint8_t *p, size_t n, int *out)
{
    *out = 0;
    return each(p, n, 2, one_scope_logs, out);            /* ResourceLogs.scope_logs = 2 */
}

/* ---- item counts ---- */

static int count_one(void *arg, const uint8_t *p, size_t n)
{
    (void)p;
    (void)n;
    (*(uint32_t *)arg)++;
    return 0;
}

/* Data points of one Metric: those of its last data member (gauge 5, sum 7,
 * histogram 9, exponential_histogram 10, summary 11; data_points = 1). */
static int one_metric(void *arg, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    uint32_t last = 0;
    pbw_field f;
    while (p < end) {
        if (pbw_next(&p, end, &f) != 0) return -1;
        if (f.num != 5 && f.num != 7 && f.num != 9 && f.num != 10 && f.num != 11) continue;
        if (f.wt != PBW_LEN) return -1;
        last = 0;
        if (each(f.sub, f.n, 1, count_one, &last) != 0) return -1;
    }
    *(uint32_t *)arg += last;
    return 0;
}

static int scope_metrics(void *arg, const uint8_t *p, size_t n)
{
    return each(p, n, 2, one_metric, arg) ? -1 : 0;       /* ScopeMetrics.metrics = 2 */
}

static int scope_items(void *arg, const uint8_t *p, size_t n)
{
    return each(p, n, 2, count_one, arg) ? -1 : 0;        /* Scope{Spans,Logs} field 2 */
}

int pw_count_items(sw_signal sig, const uint8_t *p, size_t n, uint32_t *out)
{
    *out = 0;
    each_fn fn = sig == SIG_METRICS ? scope_metrics : scope_items;
    if ((unsigned)sig >= SIG_COUNT) return -1;
    return each(p, n, 2, fn, out);                        /* Resource<sig>.scope_<sig> = 2 */
}
