/* th_upstream.h — a scripted in-process OTLP/HTTP upstream for tests.
 *
 * An evhttp server on 127.0.0.1:0 with its own thread and event_base. Each
 * request's body is decoded per its Content-Encoding (gzip, zstd, none) and
 * handed to the test's decide callback, which chooses the answer from what
 * it sees (size, content, path) — e.g. 413 over a size, 400 for a marker.
 * decide runs on the server thread with the upstream's mutex held, so the
 * state it writes is read safely between th_upstream_lock/unlock. An
 * answer may carry Retry-After and be sent later (delay_ms); an optional
 * observe callback sees each request's headers; with a certificate and
 * key it serves https (runtime/tls.h); accepted connections are counted.
 */
#ifndef TH_UPSTREAM_H
#define TH_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct th_upstream th_upstream;

typedef struct th_up_reply {
    int code;              /* HTTP status (default 200) */
    const char *ctype;     /* Content-Type of body, or NULL */
    char body[512];        /* answer body */
    size_t body_len;
    const char *retry_after; /* Retry-After header (static string), or NULL */
    int delay_ms;          /* answer this much later (0: at once) */
} th_up_reply;

/* What a request carried, for tests that check headers; borrowed, valid
 * during the observe callback only. Values "" when absent. */
typedef struct th_up_req {
    const char *path;
    const char *content_type, *content_encoding, *host, *api_key;
    int host_headers;      /* Host header lines */
    int decoded;           /* the body decoded per its Content-Encoding */
    size_t raw_len;        /* body bytes as received */
} th_up_req;
typedef void (*th_up_observe_fn)(void *arg, const th_up_req *req);


/* path: request URI (borrowed); body: decoded request body (borrowed),
 * NULL with len 0 when empty or undecodable. Fills r. */
typedef void (*th_up_fn)(void *arg, const char *path, const uint8_t *body, size_t len,
                         th_up_reply *r);

typedef struct th_up_opts {
    th_up_fn decide;          /* required */
    th_up_observe_fn observe; /* NULL: none; runs before decide, same lock */
    void *arg;
    const char *tls_cert, *tls_key; /* both set: https */
} th_up_opts;

/* Starts the upstream; asserts on failure. */
th_upstream *th_upstream_start(th_up_fn decide, void *arg);
/* The same with options (observe callback, TLS). */
th_upstream *th_upstream_start_opts(const th_up_opts *o);
/* Connections accepted so far. */
int th_upstream_conns(th_upstream *u);
uint16_t th_upstream_port(const th_upstream *u);
/* Requests answered so far. */
int th_upstream_requests(th_upstream *u);
/* Guard for state the decide callback writes. */
void th_upstream_lock(th_upstream *u);
void th_upstream_unlock(th_upstream *u);
/* Stops the thread and frees. NULL-safe. */
void th_upstream_stop(th_upstream *u);

#endif
