/* th_otlp_expect.c — expected content lines (th_otlp.h): accumulate, then
 * compare as multisets with what the mock upstream received; checks of the
 * receiver's success and error answers. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include "runtime/buf.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"

struct th_expect {
    buf lines;
    size_t items;
    int metrics;   /* compare metric values as numbers */
};

typedef struct th_lineset {
    char **v;
    size_t n;
} th_lineset;

static void th_expect_release(void *p) { th_expect_free(p); }

th_expect *th_expect_new(void)
{
    th_expect *e = calloc(1, sizeof(*e));
    if (!e) return NULL;
    buf_init(&e->lines, 256u << 20);
    th_res_add(th_expect_release, e);
    return e;
}

void th_expect_free(th_expect *e)
{
    if (!e) return;
    th_res_forget(e);
    buf_destroy(&e->lines);
    free(e);
}

int th_expect_add(th_expect *e, const th_otlp *d)
{
    if (buf_append_str(&e->lines, d->lines) != 0) return -1;
    if (buf_append(&e->lines, "", 1) != 0) return -1;
    e->lines.len--; /* keep the text NUL-terminated */
    e->items += d->items;
    if (d->sig == SIG_METRICS) e->metrics = 1;
    return 0;
}

size_t th_expect_items(const th_expect *e) { return e->items; }

size_t th_count_lines(const char *text)
{
    size_t n = 0;
    const char *p = text;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0 && !(len == 1 && p[0] == '\r')) n++;
        p = nl ? nl + 1 : NULL;
    }
    return n;
}

/* Rewrites a number (or k=number) token as %.17g; others unchanged. */
static void th_norm_token(const char *tok, size_t len, buf *out)
{
    char tmp[128], *end;
    const char *eq = memchr(tok, '=', len);
    size_t klen = eq ? (size_t)(eq - tok) + 1 : 0;
    if (len - klen == 0 || len - klen >= sizeof(tmp)) goto raw;
    memcpy(tmp, tok + klen, len - klen);
    tmp[len - klen] = '\0';
    double v = strtod(tmp, &end);
    if (*end != '\0') goto raw;
    buf_append(out, tok, klen);
    buf_printf(out, "%.17g", v);
    return;
raw:
    buf_append(out, tok, len);
}

/* Normalized copy of one line (owned), or NULL. */
static char *th_norm_line(const char *p, size_t len, int metrics)
{
    buf out;
    size_t dummy;
    int field = 0;
    buf_init(&out, len * 4 + 64);
    if (!metrics) {
        buf_append(&out, p, len);
    } else {
        size_t i = 0;
        while (i <= len) {
            size_t j = i;
            while (j < len && p[j] != ' ') j++;
            if (field) buf_append(&out, " ", 1);
            if (field >= 3) th_norm_token(p + i, j - i, &out);
            else buf_append(&out, p + i, j - i);
            field++;
            i = j + 1;
        }
    }
    if (buf_append(&out, "", 1) != 0) {
        buf_destroy(&out);
        return NULL;
    }
    return (char *)buf_steal(&out, &dummy);
}

static int th_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void th_lineset_free(th_lineset *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
}

static int th_lineset_make(const char *text, size_t textlen, int metrics, th_lineset *s)
{
    const char *p = text, *end = text + textlen;
    size_t cap = th_count_lines(text) + 1;
    s->n = 0;
    s->v = calloc(cap, sizeof(char *));
    if (!s->v) return -1;
    while (p < end && *p) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        size_t l2 = len;
        if (l2 && p[l2 - 1] == '\r') l2--;
        if (l2 > 0 && s->n < cap) {
            s->v[s->n] = th_norm_line(p, l2, metrics);
            if (!s->v[s->n]) return -1;
            s->n++;
        }
        p = nl ? nl + 1 : end;
    }
    qsort(s->v, s->n, sizeof(char *), th_cmp_str);
    return 0;
}

/* Appends up to 3 examples of lines in a but not in b to why. */
static void th_diff_report(const th_lineset *a, const th_lineset *b, const char *what,
                           char *why, size_t whylen)
{
    size_t i = 0, j = 0, shown = 0, total = 0;
    size_t used = strlen(why);
    while (i < a->n) {
        int c = j < b->n ? strcmp(a->v[i], b->v[j]) : -1;
        if (c == 0) {
            i++;
            j++;
        } else if (c < 0) {
            if (shown < 3 && used < whylen)
                used += (size_t)snprintf(why + used, whylen - used, " %s: \"%s\";", what, a->v[i]);
            shown++;
            total++;
            i++;
        } else {
            j++;
        }
    }
    if (total > shown && used < whylen)
        snprintf(why + used, whylen - used, " (%zu %s lines in all);", total, what);
}

int th_expect_check(const th_expect *e, const char *got, char *why, size_t whylen)
{
    th_lineset want = {0}, have = {0};
    int rc = -1;
    if (whylen) why[0] = '\0';
    if (th_lineset_make(e->lines.data ? (const char *)e->lines.data : "",
                        e->lines.len, e->metrics, &want) != 0 ||
        th_lineset_make(got ? got : "", got ? strlen(got) : 0, e->metrics, &have) != 0) {
        snprintf(why, whylen, "out of memory");
        goto done;
    }
    snprintf(why, whylen, "expected %zu lines, received %zu;", want.n, have.n);
    th_diff_report(&want, &have, "missing", why, whylen);
    th_diff_report(&have, &want, "unexpected", why, whylen);
    rc = strstr(why, "missing:") || strstr(why, "unexpected:") ? -1 : 0;
done:
    th_lineset_free(&want);
    th_lineset_free(&have);
    return rc;
}

/* ---- response checks ---- */

static int64_t th_pb_rejected(sw_signal sig, const th_resp *r, int *ok)
{
    int64_t n = 0;
    *ok = 1;
    if (sig == SIG_TRACES) {
        Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *m =
            opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
                NULL, r->body_len, r->body);
        if (!m) *ok = 0;
        else if (m->partial_success) n = m->partial_success->rejected_spans;
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(m, NULL);
    } else if (sig == SIG_METRICS) {
        Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse *m =
            opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(
                NULL, r->body_len, r->body);
        if (!m) *ok = 0;
        else if (m->partial_success) n = m->partial_success->rejected_data_points;
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(m, NULL);
    } else {
        Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse *m =
            opentelemetry__proto__collector__logs__v1__export_logs_service_response__unpack(
                NULL, r->body_len, r->body);
        if (!m) *ok = 0;
        else if (m->partial_success) n = m->partial_success->rejected_log_records;
        opentelemetry__proto__collector__logs__v1__export_logs_service_response__free_unpacked(m, NULL);
    }
    return n;
}

static int th_ctype_is(const th_resp *r, const char *want, char *why, size_t len)
{
    char ct[128];
    if (!th_resp_header(r, "Content-Type", ct, sizeof(ct))) {
        snprintf(why, len, "no Content-Type in the %d answer (want %s)", r->status, want);
        return -1;
    }
    if (strncasecmp(ct, want, strlen(want)) != 0) {
        snprintf(why, len, "Content-Type \"%s\" in the %d answer, want %s", ct, r->status, want);
        return -1;
    }
    return 0;
}

static int th_json_rejected(const th_resp *r, char *why, size_t len)
{
    json_object *root = json_tokener_parse((const char *)r->body), *ps, *v;
    int rc = -1;
    if (!root || !json_object_is_type(root, json_type_object)) {
        snprintf(why, len, "200 JSON body is not an object: \"%.80s\"", (const char *)r->body);
        goto done;
    }
    rc = 0;
    if (json_object_object_get_ex(root, "partialSuccess", &ps)) {
        json_object_object_foreach(ps, key, val) {
            v = val;
            if (strncmp(key, "rejected", 8) == 0 && json_object_get_int64(v) != 0) {
                snprintf(why, len, "200 answer reports %s=%lld", key,
                         (long long)json_object_get_int64(v));
                rc = -1;
            }
        }
    }
done:
    json_object_put(root);
    return rc;
}

int th_otlp_check_success(const th_resp *r, sw_signal sig, th_enc e, char *why, size_t len)
{
    int json = e == TH_ENC_JSON || e == TH_ENC_GZIP_JSON, ok;
    if (!r) {
        snprintf(why, len, "no answer");
        return -1;
    }
    if (r->status != 200) {
        snprintf(why, len, "status %d, want 200 (body \"%.120s\")", r->status, (const char *)r->body);
        return -1;
    }
    if (th_ctype_is(r, th_enc_content_type(e), why, len) != 0) return -1;
    if (json) return th_json_rejected(r, why, len);
    if (r->body_len == 0) return 0;
    int64_t rej = th_pb_rejected(sig, r, &ok);
    if (!ok) {
        snprintf(why, len, "200 body (%zu bytes) is not an Export*ServiceResponse", r->body_len);
        return -1;
    }
    if (rej != 0) {
        snprintf(why, len, "200 answer reports %lld rejected items", (long long)rej);
        return -1;
    }
    return 0;
}

int th_otlp_check_status_body(const th_resp *r, int json, char *why, size_t len)
{
    if (th_ctype_is(r, json ? "application/json" : "application/x-protobuf", why, len) != 0)
        return -1;
    if (json) {
        json_object *root = json_tokener_parse((const char *)r->body), *v;
        int ok = root && json_object_is_type(root, json_type_object) &&
                 json_object_object_get_ex(root, "code", &v) &&
                 json_object_object_get_ex(root, "message", &v) &&
                 json_object_is_type(v, json_type_string);
        json_object_put(root);
        if (!ok) snprintf(why, len, "%d body is not a JSON Status with code and message: \"%.120s\"",
                          r->status, (const char *)r->body);
        return ok ? 0 : -1;
    }
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, r->body_len, r->body);
    if (!st || r->body_len == 0) {
        snprintf(why, len, "%d body (%zu bytes) is not a google.rpc.Status", r->status, r->body_len);
        google__rpc__status__free_unpacked(st, NULL);
        return -1;
    }
    google__rpc__status__free_unpacked(st, NULL);
    return 0;
}
