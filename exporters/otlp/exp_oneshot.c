/* exp_oneshot.c — exp_sender: blocking POSTs, each waited for.
 *
 * For the offline `spillway dlq replay --to URL` command: a private
 * event_base and a pool of one keep-alive connection (exp_http.h), kept
 * from one send to the next — no export thread, the same client, endpoint
 * rules, TLS set-up and headers as the exporter (https verifies against the
 * system CA store), one TLS context and one connection for a whole replay.
 * Blocking: never call it on a network loop.
 */
#define LOG_COMPONENT "exporter"
#include "exporters/otlp/exp_http.h"
#include "exporters/otlp/exporter.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

struct exp_sender {
    struct event_base *base;
    cfg *c;                    /* the client's settings: endpoint, timeout, one connection */
    sw_metrics *m;             /* the client counts into it; nobody reads it */
    exp_http *pool;
    exp_endpoint ep;           /* for log lines */
    const uint8_t *data;       /* the request being sent */
    size_t len;
    int code;                  /* its HTTP status, 0: no answer */
    int done;
};

static int sender_attach(void *arg, void *out)
{
    exp_sender *s = arg;
    return s->len ? evbuffer_add(out, s->data, s->len) : 0;
}

static void sender_done(void *arg, const exp_answer *a)
{
    exp_sender *s = arg;
    s->code = a->code;
    s->done = 1;
    event_base_loopbreak(s->base);
}

exp_sender *exp_sender_new(const char *url, uint64_t timeout_ms)
{
    exp_sender *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (exp_endpoint_parse(url, &s->ep) != 0) {
        LOG_ERROR("cannot send to \"%s\" (want http[s]://host[:port][/path])", url ? url : "");
        free(s);
        return NULL;
    }
    if (!(s->c = cfg_defaults()) || !(s->m = metrics_new()) || !(s->base = event_base_new()))
        goto fail;
    free(s->c->exporter.endpoint);
    if (!(s->c->exporter.endpoint = strdup(url))) goto fail;
    s->c->exporter.timeout_ms = timeout_ms ? timeout_ms : 10000;
    s->c->exporter.max_in_flight = 1;
    if (!(s->pool = exp_http_new(s->base, s->c, exp_metrics_get(s->m)))) goto fail;
    return s;
fail:
    exp_sender_free(s);
    return NULL;
}

int exp_sender_send(exp_sender *s, sw_signal sig, const uint8_t *data, size_t len)
{
    if ((unsigned)sig >= SIG_COUNT) return SW_EINVAL;
    /* A close or stray bytes that arrived since the last answer mark the
     * idle connection dead; the pool then opens a new one. */
    event_base_loop(s->base, EVLOOP_NONBLOCK);
    exp_http_reap(s->pool);
    s->data = data;
    s->len = len;
    s->code = 0;
    s->done = 0;
    exp_request r = {.sig = sig, .encoding = CFG_COMP_NONE, .attach = sender_attach,
                     .done = sender_done, .arg = s};
    exp_http_send(s->pool, &r);
    if (!s->done) event_base_dispatch(s->base);
    if (s->code >= 200 && s->code <= 299) return 0;
    LOG_WARN_RL(1, "%s%s answered %s%d", s->c->exporter.endpoint, s->ep.path[sig],
                s->code ? "HTTP " : "nothing (connection error or timeout) ", s->code);
    return SW_EIO;
}

void exp_sender_free(exp_sender *s)
{
    if (!s) return;
    exp_http_free(s->pool);
    if (s->base) event_base_free(s->base);
    metrics_free(s->m);
    cfg_free(s->c);
    exp_endpoint_destroy(&s->ep);
    free(s);
}
