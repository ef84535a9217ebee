/* mock_server_int.h — the server struct shared by mock_server.c (lifecycle,
 * TLS, ready file), mock_http.c (request handlers) and mock_outage_loop.c
 * (outages on the event loop). Event-loop thread only. */
#ifndef SW_MOCK_SERVER_INT_H
#define SW_MOCK_SERVER_INT_H

#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "testing/mockup/mock.h"

/* A reply held back by --latency-ms (on the pending list), or a request
 * held by a hang, trickle or continue outage (on the hung list: body NULL;
 * timer NULL for hang, else the one writing the raw bytes, with code the
 * count of bytes of the trickled answer written so far). */
typedef struct mock_pending {
    struct mock_pending *prev, *next;
    struct mock_server *srv;          /* borrowed back-pointer */
    struct event *timer;              /* owned */
    struct evhttp_request *req;       /* owned by evhttp until replied */
    struct evbuffer *body;            /* owned */
    int code;
} mock_pending;

/* A connection that carried an export POST: dropped when a refuse outage
 * starts. Freed by its close callback. */
typedef struct mock_conn {
    struct mock_conn *prev, *next;
    struct mock_server *srv;          /* borrowed back-pointer */
    struct evhttp_connection *evcon;  /* owned by evhttp */
} mock_conn;

struct mock_server {
    struct event_base *base;          /* borrowed */
    const mock_opts *opts;            /* borrowed */
    struct evhttp *http;              /* owned */
    SSL_CTX *ssl;                     /* owned; NULL for plain HTTP */
    mock_store *store;                /* owned */
    mock_faults faults;
    mock_pending *pending;            /* delayed replies, newest first */
    struct evhttp_bound_socket *bound; /* the export listener; NULL while refusing */
    int bound_port;                   /* its real port, reused after a refuse outage */
    struct evhttp *admin_http;        /* owned; NULL without --admin-listen */
    int latency_ms;                   /* --latency-ms, then POST /admin/latency */
    mock_outage_plan plan;            /* opts->outage plus the admin outage */
    int64_t t0_ns;                    /* monotonic start time */
    int out_mode;                     /* outage in force (MOCK_OUT_NONE: none) */
    uint64_t out_started;             /* outages begun */
    struct event *out_ev;             /* owned: fires at the next outage change */
    struct event *relisten_ev;        /* owned: retries the listener after refuse */
    mock_pending *hung;               /* requests held by a hang outage */
    mock_conn *conns;                 /* export connections */
};

/* Installs the request router on h (srv->http or srv->admin_http). */
void mock_http_setup(struct mock_server *srv, struct evhttp *h);
/* Hands every delayed reply to evhttp now and frees the list; at shutdown
 * the connections are freed right after, so the replies are dropped. */
void mock_http_flush_pending(struct mock_server *srv);
/* Frees every delayed reply without sending it (a refuse outage: their
 * connections are closed right after). */
void mock_http_drop_pending(struct mock_server *srv);
/* Frees a held request without answering (detached ones only; evhttp
 * frees those still attached with their connection). */
void mock_http_release_req(struct evhttp_request *req);

/* mock_server.c: binds the export listener on opts->host and bound_port
 * (the first time opts->port). 0 or SW_EIO (logged). */
int mock_server_listen(struct mock_server *srv);

/* ---- outages on the event loop (mock_outage_loop.c) ---- */
/* Creates the timers and applies the outage in force now. 0 or SW_ENOMEM. */
int mock_outage_setup(struct mock_server *srv);
/* Frees the timers and the hung requests (before evhttp_free). */
void mock_outage_teardown(struct mock_server *srv);
/* Re-evaluates the plan now and applies a change; returns the mode in
 * force. except (may be NULL) is the connection of the request being
 * handled, never dropped here. */
int mock_outage_update(struct mock_server *srv, struct evhttp_connection *except);
/* Starts (mode != NONE, ms > 0) or ends (ms 0) the admin outage. */
void mock_outage_admin(struct mock_server *srv, int mode, int64_t ms,
                       struct evhttp_connection *except);
/* Holds req unanswered until the hang outage ends. */
void mock_outage_hold(struct mock_server *srv, struct evhttp_request *req);
/* Remembers req's connection as an export connection. */
void mock_outage_track(struct mock_server *srv, struct evhttp_request *req);
void mock_outage_status_get(struct mock_server *srv, struct evhttp_connection *except,
                            mock_outage_status *st);
/* Seconds since start. */
int64_t mock_outage_uptime_s(const struct mock_server *srv);

#endif
