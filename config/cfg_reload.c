/* cfg_reload.c — see cfg_reload.h: the keys a reload applies at once, and
 * the key-by-key comparison of two configs over the schema's tables. */
#include "config/cfg_reload.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config/cfg_int.h"

/* Keys that apply at once; every other key needs a restart. */
static const char *const reloadable[] = {
    "processors.cardinality.aggregate_threshold",
    "processors.cardinality.drop_threshold",
    "processors.cardinality.key_ttl",
    "processors.priority.weights.critical",
    "processors.priority.weights.high",
    "processors.priority.weights.normal",
    "processors.priority.rules",
    "dlq.replay.rate",
    "exporters.otlphttp.endpoint",
    "exporters.otlphttp.headers",
    "exporters.otlphttp.compression",
    "exporters.otlphttp.timeout",
    "exporters.otlphttp.max_in_flight",
    "exporters.otlphttp.batch.max_bytes",
    "exporters.otlphttp.batch.timeout",
    "exporters.otlphttp.batch.linger",
    "exporters.otlphttp.retry.initial_interval",
    "exporters.otlphttp.retry.max_interval",
    "exporters.otlphttp.retry.multiplier",
    "exporters.otlphttp.retry.max_elapsed_time",
    "exporters.otlphttp.circuit_breaker.consecutive_failures",
    "exporters.otlphttp.circuit_breaker.ratio_429",
    "exporters.otlphttp.circuit_breaker.open_duration",
    "exporters.otlphttp.tls.ca_file",
    "exporters.otlphttp.tls.insecure_skip_verify",
    "telemetry.log.level",
    "telemetry.log.format",
    NULL,
};

int cfg_key_reloadable(const char *path)
{
    for (const char *const *k = reloadable; *k; k++)
        if (strcmp(*k, path) == 0) return 1;
    return 0;
}

static int str_eq(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static int headers_eq(const cfg *a, const cfg *b)
{
    if (a->exporter.n_headers != b->exporter.n_headers) return 0;
    for (size_t i = 0; i < a->exporter.n_headers; i++)
        if (!str_eq(a->exporter.headers[i].name, b->exporter.headers[i].name) ||
            !str_eq(a->exporter.headers[i].value, b->exporter.headers[i].value))
            return 0;
    return 1;
}

static int rules_eq(const cfg *a, const cfg *b)
{
    if (a->priority.n_rules != b->priority.n_rules) return 0;
    for (size_t i = 0; i < a->priority.n_rules; i++) {
        const cfg_prio_rule *x = &a->priority.rules[i], *y = &b->priority.rules[i];
        if (x->klass != y->klass || !str_eq(x->attribute, y->attribute) ||
            !str_eq(x->regex, y->regex) || x->span_error != y->span_error ||
            x->min_severity != y->min_severity)
            return 0;
    }
    return 1;
}

static int strlist_eq(const cfg_strlist *a, const cfg_strlist *b)
{
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (!str_eq(a->v[i], b->v[i])) return 0;
    return 1;
}

/* 1 when the leaf f holds the same value in a and b. */
static int field_eq(const cfg_field *f, const cfg *a, const cfg *b)
{
    const char *pa = (const char *)a + f->offset, *pb = (const char *)b + f->offset;
    switch (f->type) {
    case CFT_STRING:
    case CFT_HOSTPORT:
    case CFT_URL: return str_eq(*(char *const *)pa, *(char *const *)pb);
    case CFT_BOOL:
    case CFT_INT:
    case CFT_ENUM: return *(const int *)pa == *(const int *)pb;
    case CFT_UINT: return *(const uint32_t *)pa == *(const uint32_t *)pb;
    case CFT_DOUBLE: return *(const double *)pa == *(const double *)pb;
    case CFT_SIZE:
    case CFT_DURATION: return *(const uint64_t *)pa == *(const uint64_t *)pb;
    case CFT_HEADERS: return headers_eq(a, b);
    case CFT_RULES: return rules_eq(a, b);
    case CFT_STRLIST: return strlist_eq((const cfg_strlist *)pa, (const cfg_strlist *)pb);
    case CFT_SECTION: break;
    }
    return 1;
}

typedef struct diff_ctx {
    const cfg *a, *b;
    cfg_change_fn fn;
    void *arg;
    size_t restart, reload;
} diff_ctx;

static void changed(diff_ctx *d, const char *path)
{
    int r = cfg_key_reloadable(path);
    if (r) d->reload++;
    else d->restart++;
    if (d->fn) d->fn(path, r, d->arg);
}

static void walk(diff_ctx *d, const cfg_field *t, const char *prefix)
{
    char path[CFG_PATH_MAX];
    for (const cfg_field *f = t; f->key; f++) {
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", f->key);
        if (f->type != CFT_SECTION) {
            if (!field_eq(f, d->a, d->b)) changed(d, path);
            continue;
        }
        if ((f->flags & CFF_PRESENCE) &&
            *(const int *)((const char *)d->a + f->offset) !=
                *(const int *)((const char *)d->b + f->offset))
            changed(d, path);
        walk(d, f->sub, path);
    }
}

size_t cfg_reload_diff(const cfg *old, const cfg *next, cfg_change_fn fn, void *arg,
                       size_t *n_reloadable)
{
    diff_ctx d = {old, next, fn, arg, 0, 0};
    walk(&d, cfg_schema_root(), "");
    if (n_reloadable) *n_reloadable = d.reload;
    return d.restart;
}
