/* lg_client.c — see lg_client.h.
 *
 * One timer ("tick") drives the schedule: it fires when the next request
 * falls due, sends every due request a free connection can take, counts
 * the rest as late, and re-arms itself for the next due time. Each answer
 * frees its connection and immediately sends from the backlog if any.
 * The send phase ends when every planned request is out, at the end of the
 * window (plus LG_GRACE_NS for a backlog to flush), or on SIGINT; then the
 * loop waits for in-flight answers up to the request timeout.
 */
#include "testing/loadgen/lg_client.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "runtime/clock.h"
#include "runtime/err.h"
#include "testing/loadgen/lg_h2.h"

#define LG_GRACE_NS 1000000000LL /* how long a backlog may flush after the window */

typedef struct lg_client lg_client;

typedef struct lg_conn {
    lg_client *cl;
    struct evhttp_connection *evcon;
    lg_h2 *h2;           /* grpc: the HTTP/2 connection */
    uint64_t seq;        /* request in flight */
    int64_t sched_ns;    /* its scheduled time */
    uint32_t items;
    uint32_t stream;     /* its stream */
} lg_conn;

struct lg_client {
    const lg_run_opts *o;
    const lg_stream *streams;
    lg_mix mix;
    lg_result *res;
    struct event_base *base;
    struct event *tick, *progress, *sigint;
    lg_conn *conns;
    uint32_t *free_idx;   /* stack of idle connection indices */
    uint32_t nfree;
    uint64_t planned;     /* UINT64_MAX when bounded only by time */
    uint64_t next;        /* next sequence number to send */
    uint64_t late_mark;   /* requests up to here were already judged late */
    int64_t start_ns, interval_ns, stop_ns, last_send_ns, last_answer_ns;
    int draining;
    uint8_t *scratch;     /* grpc: a patched request body */
    size_t scratch_len;
};

static int64_t sched_ns(const lg_client *cl, uint64_t seq)
{
    return cl->start_ns + (int64_t)seq * cl->interval_ns;
}

/* Number of requests due at `now` (all planned ones in closed loop). */
static uint64_t due_at(const lg_client *cl, int64_t now)
{
    if (cl->interval_ns == 0 || now < cl->start_ns) return cl->interval_ns ? 0 : cl->planned;
    uint64_t due = (uint64_t)((now - cl->start_ns) / cl->interval_ns) + 1;
    return due < cl->planned ? due : cl->planned;
}

static void add_headers(lg_client *cl, struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", cl->o->host);
    evhttp_add_header(h, "User-Agent", "spillway-loadgen");
    evhttp_add_header(h, "Content-Type", cl->o->content_type);
    if (cl->o->content_encoding) evhttp_add_header(h, "Content-Encoding", cl->o->content_encoding);
}

/* Copies request sub of pool into the body (patching it) or references
 * the pool's bytes when nothing varies. 0 or -1. */
static int fill_body(struct evhttp_request *req, const lg_pool *pool, uint64_t sub)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    const lg_req *rq = lg_pool_get(pool, sub);
    if (rq->n_patch == 0 || sub < lg_pool_size(pool))
        return evbuffer_add_reference(out, rq->data, rq->len, NULL, NULL);
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, (ev_ssize_t)rq->len, &v, 1) != 1 || v.iov_len < rq->len)
        return -1;
    lg_pool_write(pool, sub, v.iov_base);
    v.iov_len = rq->len;
    return evbuffer_commit_space(out, &v, 1);
}

static void on_answer(struct evhttp_request *req, void *arg);

/* grpc: sends request sub of the stream as a unary call on c->h2. */
static int send_grpc(lg_client *cl, lg_conn *c, const lg_stream *st, uint64_t sub)
{
    const lg_req *rq = lg_pool_get(st->pool, sub);
    const uint8_t *body = rq->data;
    if (rq->n_patch && sub >= lg_pool_size(st->pool)) {
        if (cl->scratch_len < rq->len) {
            uint8_t *n = realloc(cl->scratch, rq->len);
            if (!n) return -1;
            cl->scratch = n;
            cl->scratch_len = rq->len;
        }
        lg_pool_write(st->pool, sub, cl->scratch);
        body = cl->scratch;
    }
    return lg_h2_call(c->h2, st->path, cl->o->content_encoding, body, rq->len);
}

/* Bodies go out in 16 KB writes (libevent's default); without TCP_NODELAY
 * the second one waits for the server's delayed ACK (~40 ms). The socket
 * exists once evhttp_make_request returns, even while still connecting;
 * setting it on every request also covers reconnections. */
static void set_nodelay(lg_conn *c)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    int one = 1;
    if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Sends request seq on connection c. Returns 0, or -1 when the request
 * could not even be queued (counted as a connection error). */
static int send_one(lg_client *cl, lg_conn *c, uint64_t seq, int64_t now)
{
    struct evhttp_request *req = cl->o->grpc ? NULL : evhttp_request_new(on_answer, c);
    uint32_t si;
    uint64_t sub;
    lg_mix_map(&cl->mix, seq, &si, &sub);
    const lg_stream *st = &cl->streams[si];
    c->seq = seq;
    c->stream = si;
    c->sched_ns = cl->interval_ns ? sched_ns(cl, seq) : now;
    c->items = cl->o->batch;
    cl->res->sent++;
    cl->res->items_sent += cl->o->batch;
    cl->res->stream_items_sent[si] += cl->o->batch;
    cl->res->bytes_sent += lg_pool_get(st->pool, sub)->len;
    cl->last_send_ns = now;
    if (cl->o->grpc) {
        if (send_grpc(cl, c, st, sub) != 0) goto fail;
        return 0;
    }
    if (!req) goto fail;
    add_headers(cl, req);
    if (fill_body(req, st->pool, sub) != 0) {
        evhttp_request_free(req);
        goto fail;
    }
    if (evhttp_make_request(c->evcon, req, EVHTTP_REQ_POST, st->path) != 0) goto fail;
    set_nodelay(c);
    return 0;
fail:
    cl->res->conn_errors++;
    return -1;
}

static void arm(struct event *ev, int64_t delay_ns)
{
    if (delay_ns < 0) delay_ns = 0;
    struct timeval tv = {(time_t)(delay_ns / 1000000000LL), (suseconds_t)(delay_ns % 1000000000LL / 1000)};
    event_add(ev, &tv);
}

static void finish_if_idle(lg_client *cl)
{
    if (cl->draining && cl->nfree == cl->o->connections) event_base_loopbreak(cl->base);
}

/* Ends the send phase: counts the backlog as unsent, waits for answers. */
static void stop_sending(lg_client *cl, int64_t now)
{
    if (cl->draining) return;
    cl->draining = 1;
    uint64_t due = due_at(cl, now);
    if (cl->planned != UINT64_MAX && due > cl->next) cl->res->unsent = due - cl->next;
    event_del(cl->tick);
    arm(cl->tick, (int64_t)(cl->o->timeout_s * 1e9)); /* drain deadline */
    finish_if_idle(cl);
}

/* Sends what is due, judges lateness, decides what happens next. */
static void pump(lg_client *cl, int64_t now)
{
    if (cl->draining) return;
    if (now >= cl->stop_ns || cl->next >= cl->planned) {
        stop_sending(cl, now);
        return;
    }
    uint64_t due = due_at(cl, now);
    while (cl->next < due && cl->nfree > 0) {
        lg_conn *c = &cl->conns[cl->free_idx[--cl->nfree]];
        if (send_one(cl, c, cl->next++, now) != 0) cl->free_idx[cl->nfree++] = (uint32_t)(c - cl->conns);
    }
    if (cl->next < due && cl->interval_ns) {
        uint64_t from = cl->next > cl->late_mark ? cl->next : cl->late_mark;
        if (due > from) cl->res->late += due - from;
        cl->late_mark = due;
    }
    if (cl->next >= cl->planned) {
        stop_sending(cl, now);
        return;
    }
    int64_t at = cl->stop_ns; /* closed loop: answers drive sending */
    if (cl->interval_ns && due < cl->planned && sched_ns(cl, due) < at) at = sched_ns(cl, due);
    if (at == INT64_MAX) return;
    event_del(cl->tick);
    arm(cl->tick, at - now);
}

/* Keeps seq and the answer's wall-clock time in res->ok_seq / ok_ms
 * (growing them); marks the list incomplete when out of memory. */
static void record_ok(lg_result *res, uint64_t seq)
{
    if (res->n_ok_seq == res->cap_ok_seq) {
        size_t ncap = res->cap_ok_seq ? res->cap_ok_seq * 2 : 1024;
        uint64_t *nv = realloc(res->ok_seq, ncap * sizeof *nv);
        if (nv) res->ok_seq = nv;
        int64_t *nt = nv ? realloc(res->ok_ms, ncap * sizeof *nt) : NULL;
        if (!nt) {
            res->ok_seq_incomplete = 1;
            return;
        }
        res->ok_ms = nt;
        res->cap_ok_seq = ncap;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    res->ok_ms[res->n_ok_seq] = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    res->ok_seq[res->n_ok_seq++] = seq;
}

static void answered(lg_conn *c, int code);

static void on_answer(struct evhttp_request *req, void *arg)
{
    answered(arg, req ? evhttp_request_get_response_code(req) : 0);
}

/* grpc: the call's status as an HTTP-like code for the counters. */
static void on_grpc_answer(void *arg, int status)
{
    int code = status == 0 ? 200 : status == 3 ? 400 : status == 8 ? 413
             : status == 14 ? 503 : status < 0 ? 0 : 500;
    answered(arg, code);
}

static void answered(lg_conn *c, int code)
{
    lg_client *cl = c->cl;
    int64_t now = clock_mono_ns();
    lg_result *res = cl->res;
    if (code <= 0) {
        res->conn_errors++;
    } else {
        lg_hist_add(&res->lat, now - c->sched_ns);
        res->by_status[code < LG_MAX_STATUS ? code : 0]++;
        if (code >= 200 && code < 300) {
            res->ok++;
            res->items_ok += c->items;
            res->stream_items_ok[c->stream] += c->items;
            if (cl->o->record_ok) record_ok(res, c->seq);
        } else {
            res->refused++;
        }
    }
    cl->last_answer_ns = now;
    cl->free_idx[cl->nfree++] = (uint32_t)(c - cl->conns);
    pump(cl, now);
    finish_if_idle(cl);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lg_client *cl = arg;
    if (cl->draining) { /* drain deadline passed */
        event_base_loopbreak(cl->base);
        return;
    }
    pump(cl, clock_mono_ns());
}

static void on_sigint(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stop_sending(arg, clock_mono_ns());
}

static void on_progress(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lg_client *cl = arg;
    const lg_result *r = cl->res;
    double t = (double)(clock_mono_ns() - cl->start_ns) / 1e9;
    fprintf(stderr, "\r%6.1fs sent %llu ok %llu refused %llu errors %llu late %llu  %.0f items/s  p99 %.2f ms   ",
            t, (unsigned long long)r->sent, (unsigned long long)r->ok, (unsigned long long)r->refused,
            (unsigned long long)r->conn_errors, (unsigned long long)r->late,
            t > 0 ? (double)r->items_sent / t : 0.0, (double)lg_hist_pct(&r->lat, 99) / 1e6);
}

static int setup_conns(lg_client *cl)
{
    const lg_run_opts *o = cl->o;
    cl->conns = calloc(o->connections, sizeof *cl->conns);
    cl->free_idx = calloc(o->connections, sizeof *cl->free_idx);
    if (!cl->conns || !cl->free_idx) return SW_ENOMEM;
    struct timeval tmo = {(time_t)o->timeout_s, (suseconds_t)((o->timeout_s - (double)(time_t)o->timeout_s) * 1e6)};
    for (uint32_t i = 0; i < o->connections; i++) {
        lg_conn *c = &cl->conns[i];
        c->cl = cl;
        if (o->grpc) {
            c->h2 = lg_h2_new(cl->base, o->host, o->port, o->timeout_s, on_grpc_answer, c);
            if (!c->h2) return SW_ENOMEM;
            cl->free_idx[cl->nfree++] = o->connections - 1 - i;
            continue;
        }
        c->evcon = evhttp_connection_base_new(cl->base, NULL, o->host, o->port);
        if (!c->evcon) return SW_EIO;
        evhttp_connection_set_timeout_tv(c->evcon, &tmo);
        evhttp_connection_set_retries(c->evcon, 0);
        cl->free_idx[cl->nfree++] = o->connections - 1 - i;
    }
    return 0;
}

static int setup(lg_client *cl)
{
    struct event_config *cfg = event_config_new();
    if (!cfg) return SW_ENOMEM;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    cl->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!cl->base) return SW_EIO;
    cl->tick = evtimer_new(cl->base, on_tick, cl);
    cl->progress = event_new(cl->base, -1, EV_PERSIST, on_progress, cl);
    cl->sigint = evsignal_new(cl->base, SIGINT, on_sigint, cl);
    if (!cl->tick || !cl->progress || !cl->sigint) return SW_ENOMEM;
    if (evsignal_add(cl->sigint, NULL) != 0) return SW_EIO;
    return setup_conns(cl);
}

static void teardown(lg_client *cl)
{
    for (uint32_t i = 0; cl->conns && i < cl->o->connections; i++) {
        if (cl->conns[i].evcon) evhttp_connection_free(cl->conns[i].evcon);
        lg_h2_free(cl->conns[i].h2);
    }
    free(cl->scratch);
    free(cl->conns);
    free(cl->free_idx);
    if (cl->sigint) event_free(cl->sigint);
    if (cl->progress) event_free(cl->progress);
    if (cl->tick) event_free(cl->tick);
    if (cl->base) event_base_free(cl->base);
    lg_mix_destroy(&cl->mix);
}

static void plan(lg_client *cl)
{
    const lg_run_opts *o = cl->o;
    int64_t window = (int64_t)(o->duration_s * 1e9);
    cl->interval_ns = o->rate > 0 ? (int64_t)((double)o->batch * 1e9 / o->rate) : 0;
    if (cl->interval_ns == 0 && o->rate > 0) cl->interval_ns = 1;
    if (o->count) {
        cl->planned = o->count;
        cl->stop_ns = INT64_MAX;
    } else if (cl->interval_ns) {
        cl->planned = (uint64_t)(window / cl->interval_ns);
        if (cl->planned == 0) cl->planned = 1;
        cl->stop_ns = cl->start_ns + window + LG_GRACE_NS;
    } else {
        cl->planned = UINT64_MAX;
        cl->stop_ns = cl->start_ns + window;
    }
}

/* Checks the streams and sets up their interleaving. */
static int setup_streams(lg_client *cl, const lg_stream *streams, uint32_t n)
{
    uint32_t w[SIG_COUNT];
    if (!streams || n == 0 || n > SIG_COUNT) return SW_EINVAL;
    for (uint32_t i = 0; i < n; i++) {
        if (!streams[i].pool || !streams[i].path || lg_pool_batch(streams[i].pool) != cl->o->batch)
            return SW_EINVAL;
        w[i] = streams[i].weight;
    }
    cl->streams = streams;
    return lg_mix_init(&cl->mix, w, n);
}

void lg_result_destroy(lg_result *res)
{
    if (!res) return;
    free(res->ok_seq);
    free(res->ok_ms);
    res->ok_seq = NULL;
    res->ok_ms = NULL;
    res->n_ok_seq = res->cap_ok_seq = 0;
}

int lg_run(const lg_run_opts *o, const lg_stream *streams, uint32_t n, lg_result *res)
{
    if (!o || !res || o->connections == 0 || o->batch == 0 || (o->count == 0 && o->duration_s <= 0))
        return SW_EINVAL;
    memset(res, 0, sizeof *res);
    lg_hist_init(&res->lat);
    lg_client cl = {.o = o, .res = res};
    int rc = setup_streams(&cl, streams, n);
    if (rc == 0) rc = setup(&cl);
    if (rc) goto done;
    cl.start_ns = clock_mono_ns();
    plan(&cl);
    res->planned = cl.planned == UINT64_MAX ? 0 : cl.planned;
    if (o->progress) arm(cl.progress, 1000000000LL);
    pump(&cl, cl.start_ns);
    event_base_dispatch(cl.base);
    res->unanswered = (uint64_t)(o->connections - cl.nfree);
    int64_t end = cl.last_answer_ns > cl.last_send_ns ? cl.last_answer_ns : cl.last_send_ns;
    res->elapsed_s = (double)(end - cl.start_ns) / 1e9;
    res->send_s = (double)(cl.last_send_ns - cl.start_ns + cl.interval_ns) / 1e9;
    if (o->progress) fputc('\n', stderr);
done:
    teardown(&cl);
    return rc;
}
