/* th_stack_lines.c — at-least-once content checks of th_stack.h: a
 * growing multiset of content lines and its comparison with what the mock
 * upstream received (duplicates counted, not refused). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testing/lib/th_stack.h"

struct th_lines {
    char *text; /* NUL-terminated */
    size_t len, cap;
    size_t n;   /* lines */
};

static void th_lines_release(void *p) { th_lines_free(p); }

th_lines *th_lines_new(void)
{
    th_lines *l = calloc(1, sizeof(*l));
    if (!l) return NULL;
    l->text = malloc(1);
    if (!l->text) {
        free(l);
        return NULL;
    }
    l->text[0] = '\0';
    l->cap = 1;
    th_res_add(th_lines_release, l);
    return l;
}

void th_lines_free(th_lines *l)
{
    if (!l) return;
    th_res_forget(l);
    free(l->text);
    free(l);
}

int th_lines_add(th_lines *l, const char *text)
{
    size_t add = strlen(text);
    if (l->len + add + 1 > l->cap) {
        size_t cap = l->cap * 2 > l->len + add + 1 ? l->cap * 2 : l->len + add + 1;
        char *t = realloc(l->text, cap);
        if (!t) return -1;
        l->text = t;
        l->cap = cap;
    }
    memcpy(l->text + l->len, text, add + 1);
    l->len += add;
    l->n += th_count_lines(text);
    return 0;
}

const char *th_lines_text(const th_lines *l) { return l->text; }
size_t th_lines_count(const th_lines *l) { return l->n; }

/* ---- comparison ---- */

typedef struct th_span {
    const char *p;
    size_t len;
} th_span;

static int th_span_cmp(const void *a, const void *b)
{
    const th_span *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    if (c) return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* Splits text (may be NULL) into sorted non-empty lines: *out (owned; NULL
 * when there are none) and *n. 0, or -1 when out of memory. */
static int th_split_sorted(const char *text, th_span **out, size_t *n)
{
    size_t cap = text ? th_count_lines(text) : 0, k = 0;
    th_span *v = cap ? malloc(cap * sizeof(*v)) : NULL;
    *n = 0;
    *out = v;
    if (!v) return cap ? -1 : 0;
    for (const char *p = text; *p && k < cap;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len) v[k++] = (th_span){p, len};
        p += len + (nl ? 1 : 0);
    }
    qsort(v, k, sizeof(*v), th_span_cmp);
    *n = k;
    return 0;
}

/* Counts the copies of key at v[*i...] (sorted; key is no greater than
 * v[*i]) and advances *i past them. */
static long th_take(const th_span *v, size_t n, size_t *i, const th_span *key)
{
    long c = 0;
    while (*i < n && th_span_cmp(&v[*i], key) == 0) {
        (*i)++;
        c++;
    }
    return c;
}

/* The smallest of the current heads of the three lists, or NULL. */
static const th_span *th_min_head(th_span *v[3], const size_t n[3], const size_t i[3])
{
    const th_span *m = NULL;
    for (int k = 0; k < 3; k++)
        if (i[k] < n[k] && (!m || th_span_cmp(&v[k][i[k]], m) < 0)) m = &v[k][i[k]];
    return m;
}

static void th_note(char *why, size_t len, const char *what, const th_span *s, int *noted)
{
    size_t used = strlen(why);
    if (*noted || used >= len) return;
    snprintf(why + used, len - used, "; first %s: '%.*s'", what, (int)(s->len > 120 ? 120 : s->len),
             s->p);
    *noted = 1;
}

int th_lines_cover(const char *must, const char *may, const char *got, th_cover *out, char *why,
                   size_t len)
{
    th_span *v[3];
    size_t n[3], i[3] = {0, 0, 0};
    int noted_missing = 0, noted_unexpected = 0, rc = -1;
    memset(out, 0, sizeof(*out));
    char detail[512] = "";
    int e0 = th_split_sorted(must, &v[0], &n[0]), e1 = th_split_sorted(may, &v[1], &n[1]);
    int e2 = th_split_sorted(got, &v[2], &n[2]);
    if (e0 || e1 || e2) {
        snprintf(detail, sizeof(detail), " (out of memory)");
        goto out;
    }
    out->required = (long)n[0];
    out->received = (long)n[2];
    for (const th_span *m; (m = th_min_head(v, n, i)) != NULL;) {
        th_span key = *m;
        long cm = th_take(v[0], n[0], &i[0], &key), cy = th_take(v[1], n[1], &i[1], &key);
        long cg = th_take(v[2], n[2], &i[2], &key);
        long extra = cg > cm ? cg - cm : 0;
        if (cg < cm) {
            out->missing += cm - cg;
            th_note(detail, sizeof(detail), "missing", &key, &noted_missing);
        }
        if (cm + cy == 0) {
            out->unexpected += cg;
            th_note(detail, sizeof(detail), "unexpected", &key, &noted_unexpected);
            continue;
        }
        out->optional += extra < cy ? extra : cy;
        out->dups += extra > cy ? extra - cy : 0;
    }
    rc = out->missing == 0 && out->unexpected == 0 ? 0 : -1;
out:
    snprintf(why, len, "%ld required, %ld received: %ld missing, %ld unexpected, %ld duplicates, "
             "%ld optional%s", out->required, out->received, out->missing, out->unexpected,
             out->dups, out->optional, detail);
    for (int k = 0; k < 3; k++) free(v[k]);
    return rc;
}

int th_stack_wait_cover(th_stack *s, sw_signal sig, const th_lines *must, const th_lines *may,
                        int timeout_ms, th_cover *out, char *why, size_t len)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    char path[64];
    snprintf(path, sizeof(path), "/received/%s", sw_signal_name(sig));
    th_stack_wait_items(s, sig, (long)th_lines_count(must), timeout_ms);
    for (;;) {
        const char *text = th_stack_mock_get(s, path);
        int rc = -1;
        if (text) rc = th_lines_cover(th_lines_text(must), may ? th_lines_text(may) : NULL, text,
                                      out, why, len);
        else snprintf(why, len, "mock GET %s failed", path);
        if (rc == 0 || th_now_ms() >= deadline) return rc;
        th_nap_ms(250);
    }
}

int th_send_ok(th_http *c, const th_otlp *d, th_lines *sent, char *why, size_t whylen)
{
    char sub[400];
    const th_resp *r = th_otlp_send(c, d, TH_ENC_PB);
    if (!r) {
        snprintf(why, whylen, "seed %u: %s", d->seed, th_http_error(c));
        return -1;
    }
    if (th_otlp_check_success(r, d->sig, TH_ENC_PB, sub, sizeof sub) != 0) {
        snprintf(why, whylen, "seed %u: %s", d->seed, sub);
        return -1;
    }
    if (th_lines_add(sent, d->lines) != 0) {
        snprintf(why, whylen, "seed %u: out of memory", d->seed);
        return -1;
    }
    return 0;
}
