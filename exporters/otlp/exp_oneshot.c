/* exp_oneshot.c — exp_send_blocking(): one POST, waited for.
 *
 * For the offline `spillway dlq replay --to URL` command: a private
 * event_base and connection per call (no export thread, no pool), the same
 * endpoint rules, TLS set-up and headers as the exporter (https verifies
 * against the system CA store). Blocking: never call it on a network loop.
 */
#define LOG_COMPONENT "exporter"
#include "exporters/otlp/exp_http.h"
#include "exporters/otlp/exporter.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/tls.h"

#ifndef SW_VERSION
#define SW_VERSION "0.0.0"
#endif

typedef struct oneshot {
    struct event_base *base;
    int code;                  /* HTTP status, 0: no answer */
    int done;
} oneshot;

static void oneshot_done(struct evhttp_request *req, void *arg)
{
    oneshot *o = arg;
    o->code = req ? evhttp_request_get_response_code(req) : 0;
    o->done = 1;
    event_base_loopbreak(o->base);
}

static int oneshot_request(struct evhttp_connection *evcon, const exp_endpoint *ep,
                           sw_signal sig, const uint8_t *data, size_t len, oneshot *o)
{
    struct evhttp_request *req = evhttp_request_new(oneshot_done, o);
    if (!req) return SW_ENOMEM;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    int rc = evhttp_add_header(h, "Host", ep->host_header);
    rc |= evhttp_add_header(h, "User-Agent", "spillway/" SW_VERSION);
    rc |= evhttp_add_header(h, "Content-Type", "application/x-protobuf");
    if (len) rc |= evbuffer_add(evhttp_request_get_output_buffer(req), data, len);
    if (rc != 0) {
        evhttp_request_free(req);
        return SW_ENOMEM;
    }
    /* on failure libevent frees the request */
    return evhttp_make_request(evcon, req, EVHTTP_REQ_POST, ep->path[sig]) == 0 ? 0 : SW_EIO;
}

static struct evhttp_connection *oneshot_conn(struct event_base *base, struct evdns_base *dns,
                                              SSL_CTX *ssl, const exp_endpoint *ep,
                                              uint64_t timeout_ms)
{
    struct bufferevent *bev = NULL;
    if (ep->tls && !(bev = tls_client_bufferevent(base, ssl, ep->host, 0))) return NULL;
    struct evhttp_connection *evcon =
        evhttp_connection_base_bufferevent_new(base, dns, bev, ep->host, ep->port);
    if (!evcon) {
        if (bev) bufferevent_free(bev);
        return NULL;
    }
    struct timeval tv = clock_ms_to_tv(timeout_ms);
    evhttp_connection_set_timeout_tv(evcon, &tv);
    evhttp_connection_set_retries(evcon, 0);
    evhttp_connection_set_max_body_size(evcon, EXP_MAX_RESPONSE_BODY);
    return evcon;
}

int exp_send_blocking(const char *url, sw_signal sig, const uint8_t *data, size_t len,
                      uint64_t timeout_ms)
{
    exp_endpoint ep;
    oneshot o = {0};
    SSL_CTX *ssl = NULL;
    struct evdns_base *dns = NULL;
    struct evhttp_connection *evcon = NULL;
    if ((unsigned)sig >= SIG_COUNT || exp_endpoint_parse(url, &ep) != 0) {
        LOG_ERROR("cannot send to \"%s\" (want http[s]://host[:port][/path])", url ? url : "");
        return SW_EINVAL;
    }
    int rc = SW_ENOMEM;
    if (!(o.base = event_base_new())) goto out;
    if (ep.tls && !(ssl = tls_client_ctx_new(NULL, 0))) goto out;
    if (!tls_is_ip_literal(ep.host) &&
        !(dns = evdns_base_new(o.base, EVDNS_BASE_INITIALIZE_NAMESERVERS)))
        goto out;
    if (!(evcon = oneshot_conn(o.base, dns, ssl, &ep, timeout_ms ? timeout_ms : 10000))) goto out;
    rc = oneshot_request(evcon, &ep, sig, data, len, &o);
    if (rc == 0 && !o.done) event_base_dispatch(o.base);
    if (rc == 0 && (o.code < 200 || o.code > 299)) {
        LOG_WARN_RL(1, "%s%s answered %s%d", url, ep.path[sig],
                    o.code ? "HTTP " : "nothing (connection error or timeout) ", o.code);
        rc = SW_EIO;
    }
out:
    if (evcon) evhttp_connection_free(evcon);
    if (dns) evdns_base_free(dns, 0);
    if (o.base) event_base_free(o.base);
    if (ssl) SSL_CTX_free(ssl);
    exp_endpoint_destroy(&ep);
    return rc;
}
