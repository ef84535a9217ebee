/* th_upstream.h — a scripted in-process OTLP/HTTP upstream for tests.
 *
 * An evhttp server on 127.0.0.1:0 with its own thread and event_base. Each
 * request's body is decoded per its Content-Encoding (gzip, zstd, none) and
 * handed to the test's decide callback, which chooses the answer from what
 * it sees (size, content, path) — e.g. 413 over a size, 400 for a marker.
 * decide runs on the server thread with the upstream's mutex held, so the
 * state it writes is read safely between th_upstream_lock/unlock.
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
} th_up_reply;

/* path: request URI (borrowed); body: decoded request body (borrowed),
 * NULL with len 0 when empty or undecodable. Fills r. */
typedef void (*th_up_fn)(void *arg, const char *path, const uint8_t *body, size_t len,
                         th_up_reply *r);

/* Starts the upstream; asserts on failure. */
th_upstream *th_upstream_start(th_up_fn decide, void *arg);
uint16_t th_upstream_port(const th_upstream *u);
/* Requests answered so far. */
int th_upstream_requests(th_upstream *u);
/* Guard for state the decide callback writes. */
void th_upstream_lock(th_upstream *u);
void th_upstream_unlock(th_upstream *u);
/* Stops the thread and frees. NULL-safe. */
void th_upstream_stop(th_upstream *u);

#endif
