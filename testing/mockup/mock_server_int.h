/* mock_server_int.h — the server struct shared by mock_server.c (lifecycle,
 * TLS, ready file) and mock_http.c (request handlers). Event-loop thread
 * only. */
#ifndef SW_MOCK_SERVER_INT_H
#define SW_MOCK_SERVER_INT_H

#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "testing/mockup/mock.h"

/* A reply held back by --latency-ms; owned by the server's pending list. */
typedef struct mock_pending {
    struct mock_pending *prev, *next;
    struct mock_server *srv;          /* borrowed back-pointer */
    struct event *timer;              /* owned */
    struct evhttp_request *req;       /* owned by evhttp until replied */
    struct evbuffer *body;            /* owned */
    int code;
} mock_pending;

struct mock_server {
    struct event_base *base;          /* borrowed */
    const mock_opts *opts;            /* borrowed */
    struct evhttp *http;              /* owned */
    SSL_CTX *ssl;                     /* owned; NULL for plain HTTP */
    mock_store *store;                /* owned */
    mock_faults faults;
    mock_pending *pending;            /* delayed replies, newest first */
};

/* Installs the request router on srv->http (mock_http.c). */
void mock_http_setup(struct mock_server *srv);
/* Hands every delayed reply to evhttp now and frees the list; at shutdown
 * the connections are freed right after, so the replies are dropped. */
void mock_http_flush_pending(struct mock_server *srv);

#endif
