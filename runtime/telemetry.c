/* telemetry.c — see telemetry.h.
 *
 * One runtime/httpd server on the caller's event_base; one handler routes
 * by path so that unknown paths get 404 and other methods on known paths
 * get 405 with an Allow header. HEAD answers carry the GET headers
 * (including Content-Length) and no body. Requests to this server carry no
 * body, so body and header sizes are capped small; idle and slow
 * connections are closed after TEL_TIMEOUT_S and a request head must
 * arrive within TEL_TIMEOUT_S. The server has its own small connection
 * limit (TEL_MAX_CONNS) and memory budget (TEL_MAX_MEM), so a flood on this
 * port cannot take the receiver's; like every httpd it pauses accepting
 * when file descriptors run out instead of spinning.
 */
#define LOG_COMPONENT "telemetry"
#include "runtime/telemetry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/buf.h"
#include "runtime/err.h"
#include "runtime/httpd.h"
#include "runtime/json_esc.h"
#include "runtime/log.h"

#define TEL_TIMEOUT_S 10
#define TEL_MAX_CONNS 64
#define TEL_MAX_MEM (16u << 20)
#define TEL_MAX_HEADERS 16384
#define TEL_MAX_BODY 4096
#define TEL_PAGE_MAX (8u << 20)    /* cap on one /metrics or /readyz page */
#define TEL_DETAIL_MAX 256         /* detail text per component */
#define TEL_ALLOW "GET, HEAD"

typedef struct tel_component {
    char *name;                    /* owned */
    telemetry_status_fn fn;
    void *arg;
} tel_component;

struct telemetry {
    httpd *http;                   /* owned; frees its listener and connections */
    sw_metrics *m;                 /* borrowed */
    uint16_t port;
    tel_component *comps;          /* owned array */
    size_t ncomps, capcomps;
};

/* ---- responses -------------------------------------------------------- */

/* Sends code with body[0..len); for HEAD only the headers (httpd). */
static void tel_reply(httpd_req *req, int code, const char *ctype, const char *extra,
                      const void *body, size_t len)
{
    char hdr[128];
    snprintf(hdr, sizeof hdr, "Cache-Control: no-store\r\n%s", extra ? extra : "");
    httpd_reply(req, code, ctype, hdr, body, len);
}

static void tel_reply_text(httpd_req *req, int code, const char *extra, const char *text)
{
    tel_reply(req, code, "text/plain; charset=utf-8", extra, text, strlen(text));
}

/* Appends s as a JSON string (with quotes; runtime/json_esc.h). */
static int tel_json_str(buf *b, const char *s)
{
    int rc = buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
        char e[JSON_ESC_MAX];
        size_t k = json_esc(*p, e);
        rc = k ? buf_append(b, e, k) : buf_append(b, p, 1);
    }
    if (!rc) rc = buf_append(b, "\"", 1);
    return rc;
}

/* ---- handlers --------------------------------------------------------- */

static void tel_metrics(telemetry *t, httpd_req *req)
{
    buf b;
    buf_init(&b, TEL_PAGE_MAX);
    int rc = metrics_render(t->m, &b);
    if (rc) {
        LOG_ERROR_RL(60, "rendering /metrics failed: %s", sw_strerror(rc));
        tel_reply_text(req, 500, NULL, "render failed\n");
        goto out;
    }
    tel_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, b.data, b.len);
out:
    buf_destroy(&b);
}

static void tel_healthz(httpd_req *req)
{
    static const char body[] = "{\"status\":\"ok\"}\n";
    tel_reply(req, 200, "application/json", NULL, body, sizeof body - 1);
}

/* Appends "name":{"ready":..,"detail":".."} for one component; sets *ready=0
 * when it is not ready. */
static int tel_component_json(buf *b, const tel_component *c, int *ready)
{
    char detail[TEL_DETAIL_MAX] = {0};
    int ok = c->fn(c->arg, detail, sizeof detail) ? 1 : 0;
    detail[sizeof detail - 1] = '\0';
    if (!ok) *ready = 0;
    int rc = tel_json_str(b, c->name);
    if (!rc) rc = buf_printf(b, ":{\"ready\":%s,\"detail\":", ok ? "true" : "false");
    if (!rc) rc = tel_json_str(b, detail);
    if (!rc) rc = buf_append_str(b, "}");
    return rc;
}

static void tel_readyz(telemetry *t, httpd_req *req)
{
    buf comps, page;
    int ready = 1, rc = 0;
    buf_init(&comps, TEL_PAGE_MAX);
    buf_init(&page, TEL_PAGE_MAX);
    for (size_t i = 0; i < t->ncomps && !rc; i++) {
        if (i) rc = buf_append_str(&comps, ",");
        if (!rc) rc = tel_component_json(&comps, &t->comps[i], &ready);
    }
    if (!rc)
        rc = buf_printf(&page, "{\"status\":\"%s\",\"components\":{", ready ? "ready" : "not ready");
    if (!rc) rc = buf_append(&page, comps.data, comps.len);
    if (!rc) rc = buf_append_str(&page, "}}\n");
    if (rc) {
        tel_reply_text(req, 500, NULL, "readiness failed\n");
        goto out;
    }
    tel_reply(req, ready ? 200 : 503, "application/json", NULL, page.data, page.len);
out:
    buf_destroy(&page);
    buf_destroy(&comps);
}

static void tel_route(httpd_req *req, void *arg)
{
    telemetry *t = arg;
    const char *path = httpd_req_path(req);
    const char *method = httpd_req_method(req);
    int which = strcmp(path, "/metrics") == 0 ? 1
              : strcmp(path, "/healthz") == 0 ? 2
              : strcmp(path, "/readyz") == 0 ? 3 : 0;
    if (httpd_req_busy(req)) {
        tel_reply_text(req, 503, "Retry-After: 1\r\n", "busy\n");
        return;
    }
    if (which == 0) {
        tel_reply_text(req, 404, NULL, "not found\n");
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        tel_reply_text(req, 405, "Allow: " TEL_ALLOW "\r\n", "method not allowed\n");
        return;
    }
    if (httpd_req_too_large(req)) {
        tel_reply_text(req, 413, NULL, "request body too large\n");
        return;
    }
    if (which == 1) tel_metrics(t, req);
    else if (which == 2) tel_healthz(req);
    else tel_readyz(t, req);
}

/* ---- lifecycle -------------------------------------------------------- */

telemetry *telemetry_new(struct event_base *base, const char *host, uint16_t port,
                         sw_metrics *m)
{
    telemetry *t = calloc(1, sizeof *t);
    if (!t) {
        LOG_ERROR("out of memory");
        goto fail;
    }
    t->m = m;
    httpd_opts o = {.max_body = TEL_MAX_BODY, .max_head = TEL_MAX_HEADERS,
                    .timeout_ms = TEL_TIMEOUT_S * 1000, .max_conns = TEL_MAX_CONNS,
                    .head_timeout_ms = TEL_TIMEOUT_S * 1000, .max_mem = TEL_MAX_MEM,
                    .metrics = m, .metrics_server = "telemetry"};
    t->http = httpd_new(base, &o, tel_route, t);
    if (!t->http) {
        LOG_ERROR("cannot create the telemetry HTTP server");
        goto fail;
    }
    if (httpd_bind(t->http, host, port) != 0) goto fail; /* logged by httpd */
    t->port = httpd_port(t->http);
    LOG_INFO("self-telemetry listening on %s:%u", host, (unsigned)t->port);
    return t;
fail:
    telemetry_free(t);
    return NULL;
}

uint16_t telemetry_port(const telemetry *t) { return t->port; }

int telemetry_add_component(telemetry *t, const char *name, telemetry_status_fn fn, void *arg)
{
    if (t->ncomps == t->capcomps) {
        size_t ncap = t->capcomps ? t->capcomps * 2 : 4;
        tel_component *nc = realloc(t->comps, ncap * sizeof *nc);
        if (!nc) return SW_ENOMEM;
        t->comps = nc;
        t->capcomps = ncap;
    }
    char *copy = strdup(name);
    if (!copy) return SW_ENOMEM;
    t->comps[t->ncomps++] = (tel_component){.name = copy, .fn = fn, .arg = arg};
    return 0;
}

void telemetry_free(telemetry *t)
{
    if (!t) return;
    httpd_free(t->http);
    for (size_t i = 0; i < t->ncomps; i++) free(t->comps[i].name);
    free(t->comps);
    free(t);
}
