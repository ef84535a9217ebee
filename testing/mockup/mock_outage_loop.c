/* mock_outage_loop.c — outages on the mock's event loop. See docs/mockup.md.
 *
 * One timer (out_ev) fires at the next time the plan (mock_outage.c) may
 * change; every export POST and admin call re-evaluates it too, so a late
 * timer never lets a request through the wrong mode. Entering `refuse`
 * closes the export listener and frees every tracked export connection
 * (with the replies delayed by latency); leaving it binds the same port
 * again. Leaving `hang` closes the connections of the held requests.
 * `trickle` and `continue` hold requests the same way and write raw bytes
 * on their sockets from a timer (evhttp has written nothing on them yet,
 * so the bytes arrive in order): the answer TRICKLE_ANSWER one byte per
 * TRICKLE_EVERY_MS (then the connection is closed), or CONTINUE_LINE every
 * CONTINUE_EVERY_MS. Plain HTTP only: with TLS these modes behave as hang.
 * No sleeps: only timers.
 */
#define LOG_COMPONENT "mockup"

#include <event2/bufferevent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "testing/mockup/mock_server_int.h"

#define RELISTEN_RETRY_MS 100
#define TRICKLE_EVERY_MS 1000
#define CONTINUE_EVERY_MS 10
static const char TRICKLE_ANSWER[] =
    "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";
static const char CONTINUE_LINE[] = "HTTP/1.1 100 Continue\r\n\r\n";

static int64_t uptime_ms(const mock_server *srv)
{
    return (clock_mono_ns() - srv->t0_ns) / 1000000;
}

int64_t mock_outage_uptime_s(const mock_server *srv) { return uptime_ms(srv) / 1000; }

static void arm_ms(struct event *ev, int64_t ms)
{
    if (ms < 1) ms = 1;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* ---- export connections ---------------------------------------------------- */

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    mock_conn *c = arg;
    if (c->prev) c->prev->next = c->next;
    else c->srv->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c);
}

void mock_outage_track(mock_server *srv, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (!evcon) return;
    for (mock_conn *c = srv->conns; c; c = c->next)
        if (c->evcon == evcon) return;
    mock_conn *c = calloc(1, sizeof *c);
    if (!c) return; /* not dropped by a refuse outage; harmless */
    c->srv = srv;
    c->evcon = evcon;
    c->next = srv->conns;
    if (c->next) c->next->prev = c;
    srv->conns = c;
    evhttp_connection_set_closecb(evcon, on_conn_close, c);
}

/* Frees every export connection but except; their close callbacks unlink
 * them. */
static void drop_conns(mock_server *srv, struct evhttp_connection *except)
{
    mock_conn *c = srv->conns;
    int n = 0;
    while (c) {
        mock_conn *next = c->next;
        if (c->evcon != except) {
            evhttp_connection_free(c->evcon);
            n++;
        }
        c = next;
    }
    LOG_INFO("outage: dropped %d export connection(s)", n);
}

/* ---- hung requests ------------------------------------------------------------ */

static void hung_unlink(mock_server *srv, mock_pending *p)
{
    if (p->prev) p->prev->next = p->next;
    else srv->hung = p->next;
    if (p->next) p->next->prev = p->prev;
    if (p->timer) event_free(p->timer);
    free(p);
}

/* The socket of a held request, or -1 once its connection is gone. */
static evutil_socket_t held_fd(const mock_pending *p)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(p->req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    return bev ? bufferevent_getfd(bev) : -1;
}

/* Writes the next raw bytes of a trickle or continue outage. */
static void on_raw_write(evutil_socket_t fd, short what, void *arg)
{
    mock_pending *p = arg;
    mock_server *srv = p->srv;
    (void)fd;
    (void)what;
    evutil_socket_t s = held_fd(p);
    if (s < 0) { /* the client went away: the detached request is ours */
        mock_http_release_req(p->req);
        hung_unlink(srv, p);
        return;
    }
    int trickle = srv->out_mode == MOCK_OUT_TRICKLE;
    const char *bytes = trickle ? TRICKLE_ANSWER + p->code : CONTINUE_LINE;
    size_t n = trickle ? 1 : sizeof CONTINUE_LINE - 1;
    if (send(s, bytes, n, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)n && trickle) p->code++;
    if (trickle && (size_t)p->code == sizeof TRICKLE_ANSWER - 1) {
        struct evhttp_connection *evcon = evhttp_request_get_connection(p->req);
        hung_unlink(srv, p);
        evhttp_connection_free(evcon); /* the answer is complete: close */
        return;
    }
    arm_ms(p->timer, trickle ? TRICKLE_EVERY_MS : CONTINUE_EVERY_MS);
}

void mock_outage_hold(mock_server *srv, struct evhttp_request *req)
{
    mock_pending *p = calloc(1, sizeof *p);
    if (!p) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    p->srv = srv;
    p->req = req;
    int raw = (srv->out_mode == MOCK_OUT_TRICKLE || srv->out_mode == MOCK_OUT_CONTINUE) &&
              !srv->ssl;
    if (raw && !(p->timer = evtimer_new(srv->base, on_raw_write, p))) {
        free(p);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    p->next = srv->hung;
    if (p->next) p->next->prev = p;
    srv->hung = p;
    if (raw) arm_ms(p->timer, 1); /* the first bytes at once */
}

/* Closes the connection of every held request (close = 1), or only forgets
 * them (close = 0: evhttp_free follows). */
static void release_hung(mock_server *srv, int close)
{
    int n = 0;
    while (srv->hung) {
        mock_pending *p = srv->hung;
        srv->hung = p->next;
        struct evhttp_connection *evcon = evhttp_request_get_connection(p->req);
        if (p->timer) event_free(p->timer);
        if (!evcon) mock_http_release_req(p->req);
        else if (close) evhttp_connection_free(evcon);
        free(p);
        n++;
    }
    if (close && n) LOG_INFO("outage: closed %d held request(s)", n);
}

/* ---- the listener ------------------------------------------------------------- */

static void on_relisten(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mock_server *srv = arg;
    if (srv->bound || srv->out_mode == MOCK_OUT_REFUSE) return;
    if (mock_server_listen(srv) != 0) arm_ms(srv->relisten_ev, RELISTEN_RETRY_MS);
}

static void stop_listening(mock_server *srv, struct evhttp_connection *except)
{
    if (srv->bound) evhttp_del_accept_socket(srv->http, srv->bound);
    srv->bound = NULL;
    mock_http_drop_pending(srv);
    drop_conns(srv, except);
}

/* ---- state changes ------------------------------------------------------------- */

static void apply_change(mock_server *srv, int from, int to, struct evhttp_connection *except)
{
    srv->out_mode = to;
    if (from == MOCK_OUT_HANG || from == MOCK_OUT_TRICKLE || from == MOCK_OUT_CONTINUE)
        release_hung(srv, 1);
    if (from == MOCK_OUT_REFUSE) on_relisten(-1, 0, srv);
    if (to == MOCK_OUT_REFUSE) stop_listening(srv, except);
    if (from == MOCK_OUT_NONE) srv->out_started++;
    if (to == MOCK_OUT_NONE)
        LOG_INFO("outage over (was %s)", mock_outage_mode_name(from));
    else
        LOG_INFO("outage: %s for %lld ms", mock_outage_mode_name(to),
                 (long long)mock_outage_remaining_ms(&srv->plan, uptime_ms(srv)));
}

int mock_outage_update(mock_server *srv, struct evhttp_connection *except)
{
    int64_t t = uptime_ms(srv), next;
    int mode = mock_outage_eval(&srv->plan, t, &next);
    if (mode != srv->out_mode) apply_change(srv, srv->out_mode, mode, except);
    evtimer_del(srv->out_ev);
    if (next != INT64_MAX) arm_ms(srv->out_ev, next - t);
    return mode;
}

static void on_outage_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mock_outage_update(arg, NULL);
}

void mock_outage_admin(mock_server *srv, int mode, int64_t ms, struct evhttp_connection *except)
{
    int64_t t = uptime_ms(srv);
    srv->plan.admin_mode = ms > 0 ? mode : MOCK_OUT_NONE;
    srv->plan.admin_start_ms = t;
    srv->plan.admin_end_ms = t + ms;
    mock_outage_update(srv, except);
}

void mock_outage_status_get(mock_server *srv, struct evhttp_connection *except,
                            mock_outage_status *st)
{
    int64_t t = uptime_ms(srv);
    st->mode = mock_outage_update(srv, except);
    st->remaining_ms = mock_outage_remaining_ms(&srv->plan, t);
    st->uptime_ms = t;
    st->started = srv->out_started;
}

int mock_outage_setup(mock_server *srv)
{
    srv->plan = srv->opts->outage;
    srv->plan.admin_mode = MOCK_OUT_NONE;
    srv->t0_ns = clock_mono_ns();
    srv->out_ev = evtimer_new(srv->base, on_outage_timer, srv);
    srv->relisten_ev = evtimer_new(srv->base, on_relisten, srv);
    if (!srv->out_ev || !srv->relisten_ev) return SW_ENOMEM;
    mock_outage_update(srv, NULL);
    return 0;
}

void mock_outage_teardown(mock_server *srv)
{
    release_hung(srv, 0);
    if (srv->out_ev) event_free(srv->out_ev);
    if (srv->relisten_ev) event_free(srv->relisten_ev);
    srv->out_ev = srv->relisten_ev = NULL;
}
