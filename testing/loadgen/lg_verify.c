/* lg_verify.c — see lg_verify.h. */
#include "testing/loadgen/lg_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "runtime/clock.h"
#include "runtime/err.h"

#define LG_RECEIVED_MAX (1ull << 32) /* cap on one /received answer */
#define LG_SETTLE_NS 1000000000LL    /* no change this long: delivery is over */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Length of the run of equal values starting at v[i]. */
static size_t run_len(const uint64_t *v, size_t n, size_t i)
{
    size_t j = i;
    while (j < n && v[j] == v[i]) j++;
    return j - i;
}

void lg_verify_compare(uint64_t *exp, size_t n_exp, uint64_t *got, size_t n_got, lg_vres *out)
{
    if (n_exp > 1) qsort(exp, n_exp, sizeof *exp, cmp_u64);
    if (n_got > 1) qsort(got, n_got, sizeof *got, cmp_u64);
    out->expected = n_exp;
    out->received = n_got;
    out->missing = out->duplicated = out->unexpected = 0;
    size_t i = 0, j = 0;
    while (i < n_exp || j < n_got) {
        if (j == n_got || (i < n_exp && exp[i] < got[j])) {
            size_t e = run_len(exp, n_exp, i);
            out->missing += e;
            i += e;
        } else if (i == n_exp || got[j] < exp[i]) {
            size_t g = run_len(got, n_got, j);
            out->unexpected += g;
            j += g;
        } else {
            size_t e = run_len(exp, n_exp, i), g = run_len(got, n_got, j);
            if (g < e) out->missing += e - g;
            else out->duplicated += g - e;
            i += e;
            j += g;
        }
    }
}

static int present(const uint64_t *v, size_t n, uint64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < t) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && v[lo] == t;
}

size_t lg_verify_absent(const uint64_t *tok, size_t n, const uint64_t *sorted, size_t n_sorted)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += !present(sorted, n_sorted, tok[i]);
    return k;
}

int lg_verify_parse(sw_signal sig, const char *text, size_t len, uint64_t **out, size_t *n,
                    uint64_t *unreadable)
{
    size_t lines = 0, k = 0;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    uint64_t *v = malloc((lines + 1) * sizeof *v);
    if (!v) return SW_ENOMEM;
    *unreadable = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (l > 0) {
            if (lg_token_of_line(sig, p, l, &v[k]) == 0) k++;
            else (*unreadable)++;
        }
        p += l + 1;
    }
    *out = v;
    *n = k;
    return 0;
}

int lg_verify_expected(const lg_stream *streams, uint32_t n, uint32_t si, const lg_result *res,
                       uint64_t **out, size_t *n_out)
{
    uint32_t w[SIG_COUNT];
    lg_mix mix;
    if (n == 0 || n > SIG_COUNT || si >= n) return SW_EINVAL;
    for (uint32_t i = 0; i < n; i++) w[i] = streams[i].weight;
    int rc = lg_mix_init(&mix, w, n);
    if (rc) return rc;
    const lg_pool *pool = streams[si].pool;
    uint32_t b = lg_pool_batch(pool);
    uint64_t *v = malloc(((size_t)res->n_ok_seq * b + 1) * sizeof *v);
    size_t k = 0;
    if (!v) {
        rc = SW_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < res->n_ok_seq; i++) {
        uint32_t s;
        uint64_t sub;
        lg_mix_map(&mix, res->ok_seq[i], &s, &sub);
        if (s != si) continue;
        lg_pool_tokens(pool, sub, v + k);
        k += b;
    }
    *out = v;
    *n_out = k;
done:
    lg_mix_destroy(&mix);
    return rc;
}

/* ---- HTTP ------------------------------------------------------------ */

typedef struct get_ctx {
    struct event_base *base;
    buf *out;
    int status, rc;
} get_ctx;

static void on_get(struct evhttp_request *req, void *arg)
{
    get_ctx *g = arg;
    g->status = req ? evhttp_request_get_response_code(req) : 0;
    if (g->status > 0) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        g->rc = buf_reserve(g->out, len + 1);
        if (g->rc == 0) {
            evbuffer_remove(in, g->out->data + g->out->len, len);
            g->out->len += len;
        }
    } else {
        g->rc = SW_EIO;
    }
    event_base_loopbreak(g->base);
}

int lg_http_get(const char *host, uint16_t port, const char *path, double timeout_s, buf *out,
                int *status)
{
    get_ctx g = {.out = out, .rc = SW_EIO};
    struct evhttp_connection *evcon = NULL;
    *status = 0;
    g.base = event_base_new();
    if (!g.base) goto done;
    evcon = evhttp_connection_base_new(g.base, NULL, host, port);
    struct evhttp_request *req = evcon ? evhttp_request_new(on_get, &g) : NULL;
    if (!req) goto done;
    struct timeval tv = {(time_t)timeout_s, (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
    evhttp_connection_set_timeout_tv(evcon, &tv);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", host);
    if (evhttp_make_request(evcon, req, EVHTTP_REQ_GET, path) != 0) goto done; /* frees req */
    event_base_dispatch(g.base);
    *status = g.status;
done:
    if (evcon) evhttp_connection_free(evcon);
    if (g.base) event_base_free(g.base);
    return g.rc;
}

/* The mock's /stats item count for sig, or -1. */
static long long mock_items(const lg_verify_opts *vo, sw_signal sig)
{
    buf b;
    int st;
    long long v = -1;
    char key[32];
    buf_init(&b, 1u << 20);
    if (lg_http_get(vo->host, vo->port, "/stats", vo->timeout_s, &b, &st) == 0 && st == 200 &&
        buf_append(&b, "", 1) == 0) {
        const char *items = strstr((const char *)b.data, "\"items\":{");
        snprintf(key, sizeof key, "\"%s\":", sw_signal_name(sig));
        const char *at = items ? strstr(items, key) : NULL;
        if (at) v = strtoll(at + strlen(key), NULL, 10);
    }
    buf_destroy(&b);
    return v;
}

/* Waits until the mock counted `want` items of sig, its count stayed put
 * for LG_SETTLE_NS, or wait_s passed. Returns the last count (-1: unread). */
static long long wait_delivery(const lg_verify_opts *vo, sw_signal sig, uint64_t want)
{
    int64_t t0 = clock_mono_ns(), changed = t0;
    int64_t settle = vo->settle_s > 0 ? (int64_t)(vo->settle_s * 1e9) : LG_SETTLE_NS;
    long long last = mock_items(vo, sig);
    while (last >= 0 && (uint64_t)last < want) {
        int64_t now = clock_mono_ns();
        if (now - changed >= settle || now - t0 >= (int64_t)(vo->wait_s * 1e9)) break;
        nanosleep(&(struct timespec){0, 50000000L}, NULL); /* poll interval */
        long long v = mock_items(vo, sig);
        if (v != last) changed = clock_mono_ns();
        last = v;
    }
    return last;
}

/* Lists the acked requests of stream si with items absent from got
 * (sorted) on vo->missing_out. 0 or SW_ENOMEM. */
static int list_missing(const lg_verify_opts *vo, const lg_stream *streams, uint32_t n, uint32_t si,
                        const lg_result *res, const uint64_t *got, size_t n_got)
{
    uint32_t w[SIG_COUNT];
    lg_mix mix;
    for (uint32_t i = 0; i < n; i++) w[i] = streams[i].weight;
    int rc = lg_mix_init(&mix, w, n);
    if (rc) return rc;
    const lg_pool *pool = streams[si].pool;
    uint32_t b = lg_pool_batch(pool);
    uint64_t *tok = malloc((size_t)b * sizeof *tok);
    if (!tok) {
        rc = SW_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < res->n_ok_seq; i++) {
        uint32_t s;
        uint64_t sub;
        lg_mix_map(&mix, res->ok_seq[i], &s, &sub);
        if (s != si) continue;
        lg_pool_tokens(pool, sub, tok);
        size_t k = lg_verify_absent(tok, b, got, n_got);
        if (k)
            fprintf(vo->missing_out, "%s %llu %lld %zu\n", sw_signal_name(lg_pool_signal(pool)),
                    (unsigned long long)res->ok_seq[i], (long long)res->ok_ms[i], k);
    }
    fflush(vo->missing_out);
done:
    free(tok);
    lg_mix_destroy(&mix);
    return rc;
}

/* Verifies one stream; 0, SW_EIO or SW_ENOMEM. */
static int verify_stream(const lg_verify_opts *vo, const lg_stream *streams, uint32_t n, uint32_t si,
                         const lg_result *res, lg_vres *out)
{
    sw_signal sig = lg_pool_signal(streams[si].pool);
    uint64_t *exp = NULL, *got = NULL;
    size_t n_exp = 0, n_got = 0;
    char path[64];
    int st = 0;
    buf body;
    buf_init(&body, LG_RECEIVED_MAX);
    memset(out, 0, sizeof *out);
    int rc = lg_verify_expected(streams, n, si, res, &exp, &n_exp);
    if (rc) goto done;
    long long items = wait_delivery(vo, sig, n_exp);
    snprintf(path, sizeof path, "/received/%s", sw_signal_name(sig));
    rc = lg_http_get(vo->host, vo->port, path, vo->timeout_s, &body, &st);
    if (rc == 0 && (st != 200 || items < 0)) rc = SW_EIO;
    if (rc) {
        fprintf(stderr, "spillway-loadgen: verify: cannot read http://%s:%u%s (status %d)\n", vo->host,
                vo->port, path, st);
        goto done;
    }
    rc = lg_verify_parse(sig, (const char *)body.data, body.len, &got, &n_got, &out->unreadable);
    if (rc) goto done;
    lg_verify_compare(exp, n_exp, got, n_got, out); /* sorts got */
    if (vo->missing_out && out->missing) rc = list_missing(vo, streams, n, si, res, got, n_got);
    out->upstream_items = (uint64_t)items;
    out->incomplete = (uint64_t)items > n_got + out->unreadable;
done:
    free(got);
    free(exp);
    buf_destroy(&body);
    return rc;
}

int lg_verify_run(const lg_verify_opts *vo, const lg_stream *streams, uint32_t n,
                  const lg_result *res, lg_vres *out)
{
    for (uint32_t i = 0; i < n; i++) {
        int rc = verify_stream(vo, streams, n, i, res, &out[i]);
        if (rc) return rc;
    }
    return 0;
}
