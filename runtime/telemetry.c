/* telemetry.c — see telemetry.h.
 *
 * One evhttp on the caller's event_base; one generic callback routes by path
 * so that unknown paths get 404 and other methods on known paths get 405
 * with an Allow header. HEAD answers carry the GET headers (including
 * Content-Length) and no body. Requests to this server carry no body, so
 * body and header sizes are capped small; idle and slow connections are
 * closed after TEL_TIMEOUT_S.
 */
#define LOG_COMPONENT "telemetry"
#include "runtime/telemetry.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "runtime/buf.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define TEL_TIMEOUT_S 10
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
    struct evhttp *http;           /* owned; frees its listener and connections */
    sw_metrics *m;                 /* borrowed */
    uint16_t port;
    tel_component *comps;          /* owned array */
    size_t ncomps, capcomps;
};

/* ---- responses -------------------------------------------------------- */

/* Sends code with body[0..len); for HEAD only the headers. */
static void tel_reply(struct evhttp_request *req, int code, const char *reason,
                      const char *ctype, const void *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *evb = evbuffer_new();
    if (!evb) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        char cl[32];
        snprintf(cl, sizeof cl, "%zu", len);
        evhttp_add_header(h, "Content-Length", cl);
    } else if (len && evbuffer_add(evb, body, len) != 0) {
        evbuffer_free(evb);
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evhttp_send_reply(req, code, reason, evb);
    evbuffer_free(evb);
}

static void tel_reply_text(struct evhttp_request *req, int code, const char *reason,
                           const char *text)
{
    tel_reply(req, code, reason, "text/plain; charset=utf-8", text, strlen(text));
}

/* Appends s as a JSON string (with quotes). */
static int tel_json_str(buf *b, const char *s)
{
    int rc = buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
        if (*p == '"') rc = buf_append_str(b, "\\\"");
        else if (*p == '\\') rc = buf_append_str(b, "\\\\");
        else if (*p == '\n') rc = buf_append_str(b, "\\n");
        else if (*p == '\r') rc = buf_append_str(b, "\\r");
        else if (*p == '\t') rc = buf_append_str(b, "\\t");
        else if (*p < 0x20 || *p == 0x7f) rc = buf_printf(b, "\\u%04x", *p);
        else rc = buf_append(b, p, 1);
    }
    if (!rc) rc = buf_append(b, "\"", 1);
    return rc;
}

/* ---- handlers --------------------------------------------------------- */

static void tel_metrics(telemetry *t, struct evhttp_request *req)
{
    buf b;
    buf_init(&b, TEL_PAGE_MAX);
    int rc = metrics_render(t->m, &b);
    if (rc) {
        LOG_ERROR_RL(60, "rendering /metrics failed: %s", sw_strerror(rc));
        tel_reply_text(req, HTTP_INTERNAL, "Internal Server Error", "render failed\n");
        goto out;
    }
    tel_reply(req, HTTP_OK, "OK", "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
out:
    buf_destroy(&b);
}

static void tel_healthz(struct evhttp_request *req)
{
    static const char body[] = "{\"status\":\"ok\"}\n";
    tel_reply(req, HTTP_OK, "OK", "application/json", body, sizeof body - 1);
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

static void tel_readyz(telemetry *t, struct evhttp_request *req)
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
        tel_reply_text(req, HTTP_INTERNAL, "Internal Server Error", "readiness failed\n");
        goto out;
    }
    if (ready) tel_reply(req, HTTP_OK, "OK", "application/json", page.data, page.len);
    else tel_reply(req, HTTP_SERVUNAVAIL, "Service Unavailable", "application/json",
                   page.data, page.len);
out:
    buf_destroy(&page);
    buf_destroy(&comps);
}

static void tel_route(struct evhttp_request *req, void *arg)
{
    telemetry *t = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    int which = !path ? 0
              : strcmp(path, "/metrics") == 0 ? 1
              : strcmp(path, "/healthz") == 0 ? 2
              : strcmp(path, "/readyz") == 0 ? 3 : 0;
    if (which == 0) {
        tel_reply_text(req, HTTP_NOTFOUND, "Not Found", "not found\n");
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", TEL_ALLOW);
        tel_reply_text(req, HTTP_BADMETHOD, "Method Not Allowed", "method not allowed\n");
        return;
    }
    if (which == 1) tel_metrics(t, req);
    else if (which == 2) tel_healthz(req);
    else tel_readyz(t, req);
}

/* ---- lifecycle -------------------------------------------------------- */

/* Reads the port the listener actually got (port 0 = ephemeral). */
static int tel_bound_port(struct evhttp_bound_socket *bs, uint16_t *port)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) != 0) {
        LOG_ERROR("getsockname: %s", strerror(errno));
        return SW_EIO;
    }
    if (ss.ss_family == AF_INET) *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else if (ss.ss_family == AF_INET6) *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    else return SW_EINVAL;
    return 0;
}

static void tel_configure(telemetry *t)
{
    evhttp_set_timeout(t->http, TEL_TIMEOUT_S);
    evhttp_set_max_headers_size(t->http, TEL_MAX_HEADERS);
    evhttp_set_max_body_size(t->http, TEL_MAX_BODY);
    /* Let every method reach tel_route, which answers 405 with Allow. */
    evhttp_set_allowed_methods(t->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                               EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                               EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(t->http, tel_route, t);
}

telemetry *telemetry_new(struct event_base *base, const char *host, uint16_t port,
                         sw_metrics *m)
{
    telemetry *t = calloc(1, sizeof *t);
    if (!t) {
        LOG_ERROR("out of memory");
        goto fail;
    }
    t->m = m;
    t->http = evhttp_new(base);
    if (!t->http) {
        LOG_ERROR("evhttp_new failed");
        goto fail;
    }
    tel_configure(t);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(t->http, host, port);
    if (!bs) {
        LOG_ERROR("cannot listen on %s:%u: %s", host, (unsigned)port, strerror(errno));
        goto fail;
    }
    if (tel_bound_port(bs, &t->port) != 0) goto fail;
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
    if (t->http) evhttp_free(t->http);
    for (size_t i = 0; i < t->ncomps; i++) free(t->comps[i].name);
    free(t->comps);
    free(t);
}
