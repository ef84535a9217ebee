/* rcv_grpc.c — the OTLP/gRPC receiver's lifecycle and its hand-off to the
 * pipeline. See rcv_grpc.h; the connection, session and framing layers are
 * in rcv_grpc_conn.c, rcv_grpc_h2.c and rcv_grpc_frame.c. Ingest thread.
 */
#include "receivers/otlp/rcv_grpc.h"

#define LOG_COMPONENT "receiver"

#include <openssl/ssl.h>
#include <stdlib.h>

#include "receivers/otlp/rcv_grpc_int.h"
#include "runtime/budget.h"
#include "runtime/err.h"
#include "runtime/log.h"

struct rcv_grpc {
    const cfg *c;            /* borrowed */
    pipeline *pl;            /* borrowed */
    rg_server srv;           /* srv.mem: the shared budget, or own_mem */
    budget *own_mem;         /* owned when no budget was given, else NULL */
    rg_net *net;             /* owned, after start */
    SSL_CTX *tls;            /* owned, or NULL */
};

/* The pipeline's outcome as a gRPC answer (OTLP specification). */
static void on_outcome(void *arg, const pl_outcome *o)
{
    rg_call *call = arg;
    rg_answer a = {RG_OK, o->rejected, o->message, 0, 0, o->items};
    switch (o->status) {
    case PL_ACCEPTED:
        break;
    case PL_REFUSED_DECODE:
        a.status = RG_INVALID_ARGUMENT;
        a.reason = RCV_REFUSE_DECODE;
        break;
    case PL_REFUSED_SHUTDOWN:
        a.status = RG_UNAVAILABLE;
        a.reason = RCV_REFUSE_SHUTDOWN;
        break;
    default: /* full, no memory: retryable */
        a.status = RG_UNAVAILABLE;
        a.reason = RCV_REFUSE_QUEUE_FULL;
        break;
    }
    if (a.status != RG_OK) {
        a.rejected = 0;
        a.retry_after_s = a.status == RG_UNAVAILABLE ? (o->retry_after_s ? o->retry_after_s : 1) : 0;
        if (!a.message) a.message = a.reason == RCV_REFUSE_SHUTDOWN ? "shutting down" : "queue full";
        LOG_WARN_RL(10, "refused gRPC request (%u items): %s %s", o->items,
                    rg_status_name(a.status), a.message);
    }
    rg_call_done(call, &a);
}

static void submit(void *arg, rg_call *call, sw_signal sig, const uint8_t *pb, size_t len,
                   uint32_t items, int64_t recv_ns)
{
    rcv_grpc *g = arg;
    pl_request rq = {sig, pb, len, items, recv_ns, NULL};
    pl_submit(g->pl, &rq, on_outcome, call);
}

int rcv_grpc_enabled(const cfg *c)
{
    return c->receiver.grpc_enabled && c->receiver.grpc_endpoint &&
           c->receiver.grpc_endpoint[0];
}

rcv_grpc *rcv_grpc_new(struct event_base *base, const cfg *c, pipeline *pl, sw_metrics *m,
                       struct budget *mem)
{
    if (!base || !c || !pl) return NULL;
    rcv_grpc *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->c = c;
    g->pl = pl;
    if (!mem) {
        uint64_t lim = c->receiver.intake_memory;
        g->own_mem = budget_new(lim > (uint64_t)(SIZE_MAX / 2) ? SIZE_MAX / 2 : (size_t)lim);
        if (!g->own_mem || budget_attach(g->own_mem, base) != 0) {
            budget_free(g->own_mem);
            free(g);
            return NULL;
        }
        mem = g->own_mem;
    }
    uint64_t cap = c->receiver.http_max_request_body_size;
    g->srv.base = base;
    g->srv.cap = cap > (uint64_t)(SIZE_MAX / 4) ? SIZE_MAX / 4 : (size_t)cap;
    g->srv.mem = mem;
    g->srv.submit = submit;
    g->srv.submit_arg = g;
    g->srv.m = rcv_grpc_metrics_get(m);
    return g;
}

static int load_tls(rcv_grpc *g)
{
    const char *cert = g->c->receiver.grpc_tls_cert_file, *key = g->c->receiver.grpc_tls_key_file;
    int has_cert = cert && *cert, has_key = key && *key;
    if (!has_cert && !has_key) return 0;
    if (has_cert != has_key) {
        LOG_ERROR("receivers.otlp.grpc.tls: set both cert_file and key_file, or neither");
        return SW_EINVAL;
    }
    g->tls = rg_tls_ctx_new(cert, key);
    return g->tls ? 0 : SW_EINVAL;
}

int rcv_grpc_start(rcv_grpc *g)
{
    char *host = NULL;
    uint16_t port = 0;
    const char *ep = g->c->receiver.grpc_endpoint ? g->c->receiver.grpc_endpoint : "";
    int rc = g->net ? SW_EINVAL : load_tls(g);
    if (rc != 0) goto out;
    if ((rc = cfg_split_hostport(ep, &host, &port)) != 0) {
        LOG_ERROR("invalid receivers.otlp.grpc.endpoint \"%s\"", ep);
        goto out;
    }
    rg_net_opts o = {g->c->receiver.grpc_max_connections, g->c->receiver.grpc_idle_timeout_ms,
                     g->tls};
    if ((rc = rg_net_start(&g->srv, host, port, &o, &g->net)) != 0) goto out;
    g->srv.accepting = 1;
    LOG_INFO("OTLP/gRPC receiver listening on %s (port %u, %s, max message %zu bytes)", ep,
             (unsigned)rg_net_port(g->net), g->tls ? "h2 over TLS" : "h2c", g->srv.cap);
out:
    free(host);
    return rc;
}

uint16_t rcv_grpc_port(const rcv_grpc *g) { return g ? rg_net_port(g->net) : 0; }

void rcv_grpc_stop_intake(rcv_grpc *g)
{
    if (!g || !g->srv.accepting) return;
    g->srv.accepting = 0;
    rg_net_stop(g->net);
    LOG_INFO("OTLP/gRPC receiver stopped accepting (GOAWAY sent)");
}

int rcv_grpc_ready(const rcv_grpc *g) { return g ? g->srv.accepting : 0; }

void rcv_grpc_free(rcv_grpc *g)
{
    if (!g) return;
    rg_net_free(g->net);
    if (g->srv.calls_pending)
        LOG_WARN("%u gRPC calls still waiting for the pipeline at exit", g->srv.calls_pending);
    SSL_CTX_free(g->tls);
    budget_free(g->own_mem);
    free(g);
}
