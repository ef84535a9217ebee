/* card_merge.c — merging two data points of one (reduced) series.
 *
 * Rules (docs/cardinality.md): sum adds the values (delta and cumulative
 * alike: the sum of the source series' cumulative values is the cumulative
 * value of their sum); gauge and summary keep the point with the latest
 * time_unix_nano (the later one in the request on a tie); histogram adds
 * count, sum and bucket_counts when explicit_bounds are identical, else
 * the points stay apart; exponential histogram adds count, sum, zero_count
 * and buckets when scale and zero_threshold are equal (bucket offsets are
 * aligned by widening to the union range, up to CARD_EXP_MAX_BUCKETS),
 * else they stay apart. Merged points keep the earliest non-zero
 * start_time_unix_nano, the latest time_unix_nano, min of min and max of
 * max, and the exemplars of the point that stays. A point flagged
 * "no recorded value" contributes nothing.
 */
#include <string.h>

#include "processors/card_int.h"
#include "runtime/err.h"

#define CARD_EXP_MAX_BUCKETS 4096
#define NO_VALUE OPENTELEMETRY__PROTO__METRICS__V1__DATA_POINT_FLAGS__DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK

typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint num_pt;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint hist_pt;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint exp_pt;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets exp_buckets;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint sum_pt;

enum {
    DC_GAUGE = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE,
    DC_SUM = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM,
    DC_HIST = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM,
    DC_EXP = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM,
    DC_SUMMARY = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY,
};

void **card_points(card_metric *m, size_t **n)
{
    switch (m->data_case) {
    case DC_GAUGE:
        if (!m->gauge) return NULL;
        *n = &m->gauge->n_data_points;
        return (void **)m->gauge->data_points;
    case DC_SUM:
        if (!m->sum) return NULL;
        *n = &m->sum->n_data_points;
        return (void **)m->sum->data_points;
    case DC_HIST:
        if (!m->histogram) return NULL;
        *n = &m->histogram->n_data_points;
        return (void **)m->histogram->data_points;
    case DC_EXP:
        if (!m->exponential_histogram) return NULL;
        *n = &m->exponential_histogram->n_data_points;
        return (void **)m->exponential_histogram->data_points;
    case DC_SUMMARY:
        if (!m->summary) return NULL;
        *n = &m->summary->n_data_points;
        return (void **)m->summary->data_points;
    default:
        return NULL;
    }
}

card_kv ***card_point_attrs(int data_case, void *pt, size_t **n)
{
    switch (data_case) {
    case DC_GAUGE:
    case DC_SUM: { num_pt *p = pt; *n = &p->n_attributes; return &p->attributes; }
    case DC_HIST: { hist_pt *p = pt; *n = &p->n_attributes; return &p->attributes; }
    case DC_EXP: { exp_pt *p = pt; *n = &p->n_attributes; return &p->attributes; }
    default: { sum_pt *p = pt; *n = &p->n_attributes; return &p->attributes; }
    }
}

static uint64_t min_start(uint64_t a, uint64_t b)
{
    if (!a) return b;
    if (!b) return a;
    return a < b ? a : b;
}

/* Replaces dst by src, keeping dst's (reduced) attributes. */
#define REPLACE_KEEP_ATTRS(dst, src)                                         \
    do {                                                                     \
        size_t n_ = (dst)->n_attributes;                                     \
        card_kv **a_ = (dst)->attributes;                                    \
        *(dst) = *(src);                                                     \
        (dst)->n_attributes = n_;                                            \
        (dst)->attributes = a_;                                              \
    } while (0)

static int merge_number(int dc, num_pt *d, const num_pt *s)
{
    if (dc == DC_GAUGE) {
        if (s->time_unix_nano >= d->time_unix_nano) REPLACE_KEEP_ATTRS(d, s);
        return 1;
    }
    if (s->flags & NO_VALUE) return 1;
    if (d->flags & NO_VALUE) {
        REPLACE_KEEP_ATTRS(d, s);
        return 1;
    }
    int64_t sum;
    if (d->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT &&
        s->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT &&
        !__builtin_add_overflow(d->as_int, s->as_int, &sum)) {
        d->as_int = sum;
    } else {
        double a = d->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT
                       ? (double)d->as_int : d->as_double;
        double b = s->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT
                       ? (double)s->as_int : s->as_double;
        if (s->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE__NOT_SET) b = 0;
        if (d->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE__NOT_SET) a = 0;
        d->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
        d->as_double = a + b;
    }
    d->start_time_unix_nano = min_start(d->start_time_unix_nano, s->start_time_unix_nano);
    if (s->time_unix_nano > d->time_unix_nano) d->time_unix_nano = s->time_unix_nano;
    return 1;
}

/* Sum, min and max of two histogram-like points (same oneof layout). */
#define MERGE_SUM_MIN_MAX(d, s, SUMSET, MINSET, MAXSET)                      \
    do {                                                                     \
        if ((d)->_sum_case == SUMSET && (s)->_sum_case == SUMSET) (d)->sum += (s)->sum; \
        else (d)->_sum_case = 0;                                             \
        if ((d)->_min_case == MINSET && (s)->_min_case == MINSET) {          \
            if ((s)->min < (d)->min) (d)->min = (s)->min;                    \
        } else (d)->_min_case = 0;                                           \
        if ((d)->_max_case == MAXSET && (s)->_max_case == MAXSET) {          \
            if ((s)->max > (d)->max) (d)->max = (s)->max;                    \
        } else (d)->_max_case = 0;                                           \
        (d)->start_time_unix_nano = min_start((d)->start_time_unix_nano, (s)->start_time_unix_nano); \
        if ((s)->time_unix_nano > (d)->time_unix_nano) (d)->time_unix_nano = (s)->time_unix_nano; \
        (d)->count += (s)->count;                                            \
    } while (0)

static int merge_hist(hist_pt *d, const hist_pt *s)
{
    if (d->n_explicit_bounds != s->n_explicit_bounds || d->n_bucket_counts != s->n_bucket_counts)
        return 0;
    if (d->n_explicit_bounds &&
        memcmp(d->explicit_bounds, s->explicit_bounds, d->n_explicit_bounds * sizeof(double)) != 0)
        return 0;
    if (s->flags & NO_VALUE) return 1;
    if (d->flags & NO_VALUE) {
        REPLACE_KEEP_ATTRS(d, s);
        return 1;
    }
    for (size_t i = 0; i < d->n_bucket_counts; i++) d->bucket_counts[i] += s->bucket_counts[i];
    MERGE_SUM_MIN_MAX(d, s, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM,
                      OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN,
                      OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MAX_MAX);
    return 1;
}

static int64_t bucket_end(const exp_buckets *b)
{
    return b ? (int64_t)b->offset + (int64_t)b->n_bucket_counts : 0;
}

/* Checks that a + b fit in the union range limit. */
static int exp_range_ok(const exp_buckets *a, const exp_buckets *b)
{
    if (!a || !b || !a->n_bucket_counts || !b->n_bucket_counts) return 1;
    int64_t lo = a->offset < b->offset ? a->offset : b->offset;
    int64_t hi = bucket_end(a) > bucket_end(b) ? bucket_end(a) : bucket_end(b);
    return hi - lo <= CARD_EXP_MAX_BUCKETS;
}

/* dst += src over the union of their ranges. 0 or SW_ENOMEM. */
static int exp_add(exp_buckets **dp, const exp_buckets *s, card_arena *a)
{
    if (!s || !s->n_bucket_counts) return 0;
    exp_buckets *d = *dp;
    if (!d || !d->n_bucket_counts) {
        if (!d) {
            d = card_arena_alloc(a, sizeof *d);
            if (!d) return SW_ENOMEM;
            *dp = d;
        }
        *d = *s;
        return 0;
    }
    int64_t lo = d->offset < s->offset ? d->offset : s->offset;
    int64_t hi = bucket_end(d) > bucket_end(s) ? bucket_end(d) : bucket_end(s);
    size_t n = (size_t)(hi - lo);
    uint64_t *v = d->bucket_counts;
    if (lo != d->offset || n != d->n_bucket_counts) {
        v = card_arena_alloc(a, n * sizeof *v);
        if (!v) return SW_ENOMEM;
        memset(v, 0, n * sizeof *v);
        memcpy(v + (d->offset - lo), d->bucket_counts, d->n_bucket_counts * sizeof *v);
    }
    for (size_t i = 0; i < s->n_bucket_counts; i++) v[(size_t)(s->offset - lo) + i] += s->bucket_counts[i];
    d->bucket_counts = v;
    d->n_bucket_counts = n;
    d->offset = (int32_t)lo;
    return 0;
}

static int merge_exp(exp_pt *d, const exp_pt *s, card_arena *a)
{
    if (d->scale != s->scale || memcmp(&d->zero_threshold, &s->zero_threshold, sizeof(double)) != 0)
        return 0;
    if (!exp_range_ok(d->positive, s->positive) || !exp_range_ok(d->negative, s->negative))
        return 0;
    if (s->flags & NO_VALUE) return 1;
    if (d->flags & NO_VALUE) {
        REPLACE_KEEP_ATTRS(d, s);
        return 1;
    }
    if (exp_add(&d->positive, s->positive, a) != 0 || exp_add(&d->negative, s->negative, a) != 0)
        return SW_ENOMEM;
    d->zero_count += s->zero_count;
    MERGE_SUM_MIN_MAX(d, s, OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM,
                      OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MIN_MIN,
                      OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MAX_MAX);
    return 1;
}

int card_merge_point(const card_metric *m, void *dst, const void *src, card_arena *a)
{
    switch (m->data_case) {
    case DC_GAUGE:
    case DC_SUM:
        return merge_number(m->data_case, dst, src);
    case DC_HIST:
        return merge_hist(dst, src);
    case DC_EXP:
        return merge_exp(dst, src, a);
    case DC_SUMMARY: {
        sum_pt *d = dst;
        const sum_pt *s = src;
        if (s->time_unix_nano >= d->time_unix_nano) REPLACE_KEEP_ATTRS(d, s);
        return 1;
    }
    default:
        return 0;
    }
}
