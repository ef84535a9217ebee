/* rcv_grpc_h2.c — one nghttp2 server session of the OTLP/gRPC receiver.
 *
 * Bytes in through rg_session_recv(), frames out through the connection's
 * write function (nghttp2_session_mem_recv / mem_send: the session does no
 * I/O itself, so the fuzzer drives it from memory). Each stream becomes a
 * call: headers are checked as they arrive (path, method, content-type,
 * grpc-encoding, grpc-timeout), DATA is reassembled by rg_reader under the
 * size cap and the server's memory bound, and at END_STREAM the message is
 * decoded (rcv_grpc_frame.c) and handed to srv->submit. The answer is
 * HEADERS, the length-prefixed Export*ServiceResponse and trailers
 * (grpc-status, grpc-message, grpc-status-details-bin), or a Trailers-Only
 * response for errors. nghttp2 answers PING and SETTINGS, enforces flow
 * control both ways and the stream limit; this file adds limits on
 * control-frame and reset rates (flood and rapid-reset attacks end with
 * GOAWAY ENHANCE_YOUR_CALM). Ingest thread only.
 */
#include "receivers/otlp/rcv_grpc_int.h"

#define LOG_COMPONENT "receiver"

#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/budget.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define RG_MSG_MAX 256     /* grpc-message before percent-encoding */

/* nghttp2 1.60 renamed the size type and added *2 variants of the data
 * provider, response and mem_recv/mem_send; Debian 12 ships 1.52. */
#if NGHTTP2_VERSION_NUM >= 0x013c00
typedef nghttp2_ssize rg_ssize;
typedef nghttp2_data_provider2 rg_data_provider;
#define rg_submit_response nghttp2_submit_response2
#define rg_mem_recv nghttp2_session_mem_recv2
#define rg_mem_send nghttp2_session_mem_send2
#define rg_set_send_data_cb nghttp2_session_callbacks_set_send_data_callback
#else
typedef ssize_t rg_ssize;
typedef nghttp2_data_provider rg_data_provider;
#define rg_submit_response nghttp2_submit_response
#define rg_mem_recv nghttp2_session_mem_recv
#define rg_mem_send nghttp2_session_mem_send
#endif

struct rg_call {
    rg_server *srv;          /* borrowed */
    rg_session *s;           /* NULL once detached (stream gone, pipeline owes cb) */
    rg_call *prev, *next;    /* in s->calls */
    int32_t stream_id;
    int sig;                 /* -1: unknown path */
    int method_ok;           /* :method POST */
    int ctype_ok;            /* content-type application/grpc... */
    int te_ok;               /* te: trailers (informational) */
    rcv_encoding enc;
    size_t header_bytes;
    size_t accounted;        /* bytes counted in srv->buffered */
    uint64_t bytes_in;       /* DATA bytes received */
    int remote_done;         /* END_STREAM received */
    int submitted;           /* handed to srv->submit, answer not yet back */
    int answered;            /* response queued */
    int64_t recv_ns;
    struct event *timer;     /* grpc-timeout, or NULL */
    rg_reader rd;
    buf rsp;                 /* length-prefixed response message */
    size_t rsp_off;
    int status;              /* for the trailers */
    char msg[RG_MSG_MAX];
    unsigned retry_after_s;
};

struct rg_session {
    rg_server *srv;          /* borrowed */
    const rg_io *io;         /* borrowed */
    nghttp2_session *ng;     /* owned */
    rg_call *calls;          /* open streams' calls */
    size_t n_calls;
    int64_t win_start_ns;    /* rate window for the flood limits */
    unsigned ctrl_in_win;
    unsigned rst_in_win;
    int in_recv;             /* inside rg_session_recv: no kick needed */
};

/* ---- metrics ------------------------------------------------------------ */

static void count_call(rg_server *srv, int sig, int status)
{
    if (srv->m && sig >= 0 && status >= 0 && status < RG_STATUS_COUNT)
        metrics_add(&srv->m->rcv_grpc_requests[sig][status], 1);
}

static void count_refused(rg_server *srv, int sig, int reason, uint32_t items)
{
    if (srv->m && sig >= 0 && items > 0 && reason >= 0 && reason < RCV_REFUSE_COUNT)
        metrics_add(&srv->m->rcv_grpc_refused_items[sig][reason], items);
}

/* ---- calls ---------------------------------------------------------------- */

/* Credits n bytes charged for request buffers back to the intake budget. */
static void uncharge(rg_server *srv, size_t n)
{
    if (n == 0) return;
    srv->buffered -= n;
    budget_release(srv->mem, n);
}

static void call_release_buffer(rg_call *c)
{
    rg_server *srv = c->srv;
    uncharge(srv, c->accounted);
    c->accounted = 0;
    rg_reader_destroy(&c->rd);
    rg_reader_init(&c->rd, srv->cap);
}

static void call_free(rg_call *c, rg_server *srv)
{
    if (!c) return;
    uncharge(srv, c->accounted);
    rg_reader_destroy(&c->rd);
    buf_destroy(&c->rsp);
    if (c->timer) event_free(c->timer);
    free(c);
}

static void call_unlink(rg_session *s, rg_call *c)
{
    if (c->prev) c->prev->next = c->next;
    else s->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    s->n_calls--;
}

static rg_call *call_new(rg_session *s, int32_t id)
{
    rg_call *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->srv = s->srv;
    c->s = s;
    c->stream_id = id;
    c->sig = -1;
    c->recv_ns = clock_mono_ns();
    rg_reader_init(&c->rd, s->srv->cap);
    buf_init(&c->rsp, 64 * 1024);
    c->next = s->calls;
    if (s->calls) s->calls->prev = c;
    s->calls = c;
    s->n_calls++;
    return c;
}

/* ---- answers ------------------------------------------------------------- */

#define NV(n, v, vl) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE }

/* Builds grpc-status / grpc-message / grpc-status-details-bin into nv[];
 * returns how many. Strings live in bufs owned by the caller. */
static size_t status_nv(const rg_call *c, nghttp2_nv *nv, char *code, buf *m, buf *d)
{
    size_t n = 0;
    snprintf(code, 4, "%d", c->status);
    nv[n++] = (nghttp2_nv)NV("grpc-status", code, strlen(code));
    if (c->msg[0] && rg_encode_message(c->msg, m) == 0 && m->len)
        nv[n++] = (nghttp2_nv)NV("grpc-message", m->data, m->len);
    if (c->status != RG_OK && rg_encode_status_details(c->status, c->msg, c->retry_after_s, d) == 0)
        nv[n++] = (nghttp2_nv)NV("grpc-status-details-bin", d->data, d->len);
    return n;
}

static rg_ssize read_rsp(nghttp2_session *ng, int32_t id, uint8_t *out, size_t len,
                                     uint32_t *flags, nghttp2_data_source *src, void *user);

/* Queues the response of a call: the message and trailers on OK, a
 * Trailers-Only response otherwise. */
static int send_answer(rg_session *s, rg_call *c)
{
    nghttp2_nv nv[8];
    char code[4];
    buf m, d;
    size_t n = 0;
    int rc;
    buf_init(&m, 4 * RG_MSG_MAX);
    buf_init(&d, 4096);
    nv[n++] = (nghttp2_nv)NV(":status", "200", 3);
    nv[n++] = (nghttp2_nv)NV("content-type", "application/grpc", 16);
    nv[n++] = (nghttp2_nv)NV("grpc-accept-encoding", RG_ACCEPT_ENCODING,
                             sizeof RG_ACCEPT_ENCODING - 1);
    if (c->status == RG_OK) {
        rg_data_provider prd = {.source.ptr = c, .read_callback = read_rsp};
        rc = rg_submit_response(s->ng, c->stream_id, nv, n, &prd);
    } else {
        n += status_nv(c, nv + n, code, &m, &d);
        rc = rg_submit_response(s->ng, c->stream_id, nv, n, NULL);
    }
    buf_destroy(&m);
    buf_destroy(&d);
    return rc == 0 ? 0 : -1;
}

static rg_ssize read_rsp(nghttp2_session *ng, int32_t id, uint8_t *out, size_t len,
                                     uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)user;
    rg_call *c = src->ptr;
    size_t left = c->rsp.len - c->rsp_off;
    size_t k = left < len ? left : len;
    if (k) memcpy(out, c->rsp.data + c->rsp_off, k);
    c->rsp_off += k;
    if (c->rsp_off == c->rsp.len) {
        nghttp2_nv nv[4];
        char code[4];
        buf m, d;
        buf_init(&m, 4 * RG_MSG_MAX);
        buf_init(&d, 4096);
        size_t n = status_nv(c, nv, code, &m, &d);
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (nghttp2_submit_trailer(ng, id, nv, n) == 0) *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        buf_destroy(&m);
        buf_destroy(&d);
    }
    return (rg_ssize)k;
}

/* Answers the call now (status, message, retry hint); counts it. */
static void answer(rg_session *s, rg_call *c, int status, const char *msg, unsigned retry_s,
                   int64_t rejected)
{
    if (c->answered) return;
    c->answered = 1;
    c->status = status;
    c->retry_after_s = retry_s;
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "");
    call_release_buffer(c);
    if (c->timer) event_del(c->timer);
    count_call(s->srv, c->sig, status);
    if (status == RG_OK && rg_encode_response((sw_signal)c->sig, rejected, msg, &c->rsp) != 0) {
        c->status = RG_INTERNAL;
        snprintf(c->msg, sizeof c->msg, "cannot encode the response");
    }
    if (status == RG_OK) c->msg[0] = '\0'; /* the message went into partial_success */
    if (send_answer(s, c) != 0)
        nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_INTERNAL_ERROR);
}

/* The session has output outside rg_session_recv(): let the connection
 * write it. */
static void kick(rg_session *s)
{
    if (!s->in_recv) s->io->kick(s->io->arg);
}

void rg_call_done(rg_call *c, const rg_answer *a)
{
    rg_server *srv = c->srv;
    rg_session *s = c->s;
    c->submitted = 0;
    srv->calls_pending--;
    if (a->status != RG_OK) count_refused(srv, c->sig, a->reason, a->items);
    else if (srv->m) metrics_add(&srv->m->rcv_grpc_items[c->sig], a->items);
    if (!s) { /* detached: the stream or connection went away first */
        call_free(c, srv);
        return;
    }
    if (!c->answered) answer(s, c, a->status, a->message, a->retry_after_s, a->rejected);
    kick(s);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rg_call *c = arg;
    if (!c->s || c->answered) return;
    answer(c->s, c, RG_DEADLINE_EXCEEDED, "deadline exceeded", 0, 0);
    kick(c->s);
}

static void set_deadline(rg_session *s, rg_call *c, const uint8_t *v, size_t n)
{
    int64_t ns;
    if (rg_parse_timeout((const char *)v, n, &ns) != 0 || !s->srv->base || c->timer) return;
    c->timer = evtimer_new(s->srv->base, on_deadline, c);
    if (!c->timer) return;
    int64_t max = (int64_t)86400 * 1000000000;
    if (ns > max) ns = max;
    struct timeval tv = {(time_t)(ns / 1000000000), (suseconds_t)(ns % 1000000000 / 1000)};
    evtimer_add(c->timer, &tv);
}

/* ---- flood limits -------------------------------------------------------- */

/* Counts one control frame (or reset); over the per-second budget the
 * session ends with GOAWAY ENHANCE_YOUR_CALM. Returns 1 when over. */
static int flood(rg_session *s, int is_rst)
{
    int64_t now = clock_mono_ns();
    if (now - s->win_start_ns >= 1000000000) {
        s->win_start_ns = now;
        s->ctrl_in_win = s->rst_in_win = 0;
    }
    s->ctrl_in_win++;
    if (is_rst) s->rst_in_win++;
    if (s->ctrl_in_win <= RG_CTRL_PER_SEC && s->rst_in_win <= RG_RST_PER_SEC) return 0;
    LOG_WARN_RL(10, "gRPC client over the %s limit: closing the connection",
                s->rst_in_win > RG_RST_PER_SEC ? "stream reset rate" : "control frame rate");
    nghttp2_session_terminate_session(s->ng, NGHTTP2_ENHANCE_YOUR_CALM);
    return 1;
}

static int is_ctrl(const nghttp2_frame *f)
{
    switch (f->hd.type) {
    case NGHTTP2_RST_STREAM: case NGHTTP2_PING: case NGHTTP2_SETTINGS:
    case NGHTTP2_WINDOW_UPDATE: case NGHTTP2_PRIORITY:
        return 1;
    case NGHTTP2_DATA:
        return f->hd.length == 0 && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM);
    default:
        return 0;
    }
}

/* ---- requests -------------------------------------------------------------- */

/* End of the request headers: refuse what cannot be served at once. */
static void check_headers(rg_session *s, rg_call *c)
{
    if (c->sig < 0 || !c->method_ok)
        answer(s, c, RG_UNIMPLEMENTED, "unknown service or method", 0, 0);
    else if (!c->ctype_ok)
        answer(s, c, RG_INVALID_ARGUMENT, "content-type must be application/grpc", 0, 0);
    else if (c->enc == RCV_CE_UNKNOWN)
        answer(s, c, RG_UNIMPLEMENTED, "unsupported grpc-encoding (identity, gzip, zstd)", 0, 0);
}

/* END_STREAM: decode the message and hand it on. */
static void finish(rg_session *s, rg_call *c)
{
    rg_server *srv = s->srv;
    c->remote_done = 1;
    if (c->answered) return;
    rg_reader rd = c->rd;    /* the message leaves the call: submit may answer */
    size_t held = c->accounted;
    rg_decoded d;
    rg_reader_init(&c->rd, srv->cap);
    c->accounted = 0;
    rg_decode(&rd, (sw_signal)c->sig, c->enc, srv->cap, srv->mem, &d);
    if (srv->m) metrics_add(&srv->m->rcv_grpc_bytes[c->sig], c->bytes_in);
    if (d.status != RG_OK) {
        LOG_WARN_RL(10, "refused gRPC %s request: %s %s", sw_signal_name((sw_signal)c->sig),
                    rg_status_name(d.status), d.res.message);
        answer(s, c, d.status, d.res.message, d.status == RG_UNAVAILABLE ? 1 : 0, 0);
    } else if (!srv->accepting) {
        count_refused(srv, c->sig, RCV_REFUSE_SHUTDOWN, d.res.items);
        answer(s, c, RG_UNAVAILABLE, "shutting down", 1, 0);
    } else {
        c->submitted = 1;
        srv->calls_pending++;
        srv->submit(srv->submit_arg, c, (sw_signal)c->sig, d.res.pb, d.res.pb_len, d.res.items,
                    c->recv_ns);
    }
    rg_decoded_destroy(&d);
    rg_reader_destroy(&rd);
    uncharge(srv, held);
}

/* A DATA chunk of a call: reassemble under the cap and the intake budget.
 * The message buffer is sized by the announced length when its prefix
 * arrives; it is charged right then, and freed at once when it does not
 * fit. */
static void take_data(rg_session *s, rg_call *c, const uint8_t *p, size_t n)
{
    rg_server *srv = s->srv;
    c->bytes_in += n;
    if (c->answered || c->submitted) return; /* answered early: discard */
    int rc = rg_reader_feed(&c->rd, p, n);
    size_t grown = c->rd.body.cap - c->accounted;
    if (grown > 0 && budget_reserve(srv->mem, grown) != 0) {
        LOG_WARN_RL(10, "intake memory (%zu bytes) exhausted: refusing a gRPC call",
                    budget_limit(srv->mem));
        call_release_buffer(c);
        answer(s, c, RG_UNAVAILABLE, "receiver busy: intake memory exhausted", 1, 0);
        return;
    }
    srv->buffered += grown;
    c->accounted = c->rd.body.cap;
    if (rc == SW_ETOOBIG) {
        char m[96];
        snprintf(m, sizeof m, "message larger than %zu bytes", srv->cap);
        answer(s, c, RG_RESOURCE_EXHAUSTED, m, 0, 0);
    } else if (rc == SW_EDECODE) {
        answer(s, c, RG_INVALID_ARGUMENT, "malformed message framing (one message, flag 0 or 1)",
               0, 0);
    } else if (rc != 0) {
        answer(s, c, RG_UNAVAILABLE, "out of memory", 1, 0);
    }
}

/* ---- nghttp2 callbacks ---------------------------------------------------- */

static rg_call *call_of(nghttp2_session *ng, int32_t id)
{
    return nghttp2_session_get_stream_user_data(ng, id);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    rg_session *s = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    rg_call *c = call_new(s, f->hd.stream_id);
    if (!c) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, c);
    return 0;
}

static int is(const uint8_t *p, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(p, want, n) == 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *user)
{
    (void)flags;
    rg_session *s = user;
    rg_call *c = call_of(ng, f->hd.stream_id);
    if (!c || f->hd.type != NGHTTP2_HEADERS) return 0;
    nghttp2_vec k = nghttp2_rcbuf_get_buf(name), v = nghttp2_rcbuf_get_buf(value);
    c->header_bytes += k.len + v.len + 32;
    if (c->header_bytes > RG_MAX_HEADER_LIST) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0; /* client trailers: ignored */
    if (is(k.base, k.len, ":path")) c->sig = rg_route((const char *)v.base, v.len);
    else if (is(k.base, k.len, ":method")) c->method_ok = is(v.base, v.len, "POST");
    else if (is(k.base, k.len, "content-type"))
        c->ctype_ok = rg_content_type_ok((const char *)v.base, v.len);
    else if (is(k.base, k.len, "grpc-encoding"))
        c->enc = rg_parse_encoding((const char *)v.base, v.len);
    else if (is(k.base, k.len, "grpc-timeout")) set_deadline(s, c, v.base, v.len);
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    rg_session *s = user;
    if (is_ctrl(f) && flood(s, f->hd.type == NGHTTP2_RST_STREAM)) return 0;
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) return 0;
    rg_call *c = call_of(ng, f->hd.stream_id);
    if (!c) return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
        check_headers(s, c);
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) finish(s, c);
    return 0;
}

static int on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *f, int err, void *user)
{
    (void)ng;
    (void)f;
    (void)err;
    flood(user, 0);
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    (void)flags;
    rg_call *c = call_of(ng, id);
    if (c) take_data(user, c, data, len);
    return 0;
}

/* After our response ended the stream while the client still sends:
 * RST_STREAM(NO_ERROR) tells it to stop (a gRPC server's early answer). */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    (void)user;
    if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
    rg_call *c = call_of(ng, f->hd.stream_id);
    if (c && !c->remote_done)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t err, void *user)
{
    (void)err;
    rg_session *s = user;
    rg_call *c = call_of(ng, id);
    if (!c) return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    call_unlink(s, c);
    if (c->submitted) { /* the pipeline still owes its answer */
        c->s = NULL;
        if (c->timer) event_del(c->timer);
        return 0;
    }
    call_free(c, s->srv);
    return 0;
}

static int on_error(nghttp2_session *ng, int code, const char *msg, size_t len, void *user)
{
    (void)ng;
    (void)user;
    LOG_DEBUG("HTTP/2 session error %d: %.*s", code, (int)len, msg);
    return 0;
}

/* ---- session ----------------------------------------------------------------- */

static nghttp2_session_callbacks *make_callbacks(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0) return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_error_callback2(cb, on_error);
    return cb;
}

static int start_session(rg_session *s)
{
    nghttp2_session_callbacks *cb = make_callbacks();
    nghttp2_option *opt = NULL;
    int rc = -1;
    if (!cb || nghttp2_option_new(&opt) != 0) goto out;
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_max_settings(opt, 32);
    if (nghttp2_session_server_new2(&s->ng, cb, s, opt) != 0) goto out;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, RG_MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, RG_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, RG_MAX_HEADER_LIST},
    };
    if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0)
        goto out;
    if (nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, 4 * RG_WINDOW) != 0)
        goto out;
    rc = 0;
out:
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    return rc;
}

rg_session *rg_session_new(rg_server *srv, const rg_io *io)
{
    rg_session *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->srv = srv;
    s->io = io;
    s->win_start_ns = clock_mono_ns();
    if (start_session(s) != 0) {
        rg_session_free(s);
        return NULL;
    }
    return s;
}

void rg_session_free(rg_session *s)
{
    if (!s) return;
    /* nghttp2_session_del does not call on_stream_close: detach or free the
     * calls here. */
    while (s->calls) {
        rg_call *c = s->calls;
        call_unlink(s, c);
        if (c->submitted) {
            c->s = NULL;
            if (c->timer) event_del(c->timer);
        } else {
            call_free(c, s->srv);
        }
    }
    nghttp2_session_del(s->ng);
    free(s);
}

int rg_session_recv(rg_session *s, const uint8_t *data, size_t len)
{
    s->in_recv = 1;
    rg_ssize n = rg_mem_recv(s->ng, data, len);
    s->in_recv = 0;
    if (n < 0) {
        LOG_DEBUG("HTTP/2 input refused: %s", nghttp2_strerror((int)n));
        if (n == NGHTTP2_ERR_FLOODED || n == NGHTTP2_ERR_BAD_CLIENT_MAGIC)
            LOG_WARN_RL(10, "gRPC connection closed: %s", nghttp2_strerror((int)n));
        return -1;
    }
    return 0;
}

int rg_session_flush(rg_session *s)
{
    for (;;) {
        const uint8_t *data;
        rg_ssize n = rg_mem_send(s->ng, &data);
        if (n < 0) return -1;
        if (n == 0) return 0;
        if (s->io->write(s->io->arg, data, (size_t)n) != 0) return -1;
    }
}

int rg_session_done(const rg_session *s)
{
    return !nghttp2_session_want_read(s->ng) && !nghttp2_session_want_write(s->ng);
}

size_t rg_session_streams(const rg_session *s) { return s->n_calls; }

void rg_session_goaway(rg_session *s)
{
    nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(s->ng), NGHTTP2_NO_ERROR,
                          NULL, 0);
}
