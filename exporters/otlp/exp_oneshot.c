/* exp_oneshot.c — exp_send_blocking(): one POST, waited for.
 *
 * For the offline `spillway dlq replay --to URL` command: a private
 * event_base and a pool of one connection (exp_http.h) per call — no
 * export thread, the same client, endpoint rules, TLS set-up and headers
 * as the exporter (https verifies against the system CA store). Blocking:
 * never call it on a network loop.
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

typedef struct oneshot {
    struct event_base *base;
    const uint8_t *data;
    size_t len;
    int code;                  /* HTTP status, 0: no answer */
    int done;
} oneshot;

static int oneshot_attach(void *arg, void *out)
{
    oneshot *o = arg;
    return o->len ? evbuffer_add(out, o->data, o->len) : 0;
}

static void oneshot_done(void *arg, const exp_answer *a)
{
    oneshot *o = arg;
    o->code = a->code;
    o->done = 1;
    event_base_loopbreak(o->base);
}

int exp_send_blocking(const char *url, sw_signal sig, const uint8_t *data, size_t len,
                      uint64_t timeout_ms)
{
    exp_endpoint ep;
    if ((unsigned)sig >= SIG_COUNT || exp_endpoint_parse(url, &ep) != 0) {
        LOG_ERROR("cannot send to \"%s\" (want http[s]://host[:port][/path])", url ? url : "");
        return SW_EINVAL;
    }
    oneshot o = {.data = data, .len = len};
    int rc = SW_ENOMEM;
    cfg *c = cfg_defaults();
    sw_metrics *m = metrics_new();
    exp_http *p = NULL;
    if (!c || !m || !(o.base = event_base_new())) goto out;
    free(c->exporter.endpoint);
    if (!(c->exporter.endpoint = strdup(url))) goto out;
    c->exporter.timeout_ms = timeout_ms ? timeout_ms : 10000;
    c->exporter.max_in_flight = 1;
    if (!(p = exp_http_new(o.base, c, exp_metrics_get(m)))) goto out;
    exp_request r = {.sig = sig, .encoding = CFG_COMP_NONE, .attach = oneshot_attach,
                     .done = oneshot_done, .arg = &o};
    exp_http_send(p, &r);
    if (!o.done) event_base_dispatch(o.base);
    rc = 0;
    if (o.code < 200 || o.code > 299) {
        LOG_WARN_RL(1, "%s%s answered %s%d", url, ep.path[sig],
                    o.code ? "HTTP " : "nothing (connection error or timeout) ", o.code);
        rc = SW_EIO;
    }
out:
    exp_http_free(p);
    if (o.base) event_base_free(o.base);
    metrics_free(m);
    cfg_free(c);
    exp_endpoint_destroy(&ep);
    return rc;
}
