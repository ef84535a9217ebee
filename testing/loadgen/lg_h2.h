/* lg_h2.h — one OTLP/gRPC client connection of the load generator.
 *
 * An HTTP/2 cleartext (prior knowledge) connection on the load generator's
 * event_base, with an nghttp2 client session and at most one unary call
 * in flight (the load generator's connection model: lg_client.h). A call
 * sends the 5-byte length prefix and the request body (flag 1 and
 * grpc-encoding when the body is compressed) and reports grpc-status, or
 * -1 when the connection failed; the next call then reconnects. Owned by
 * the calling thread.
 */
#ifndef SW_LG_H2_H
#define SW_LG_H2_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
typedef struct lg_h2 lg_h2;

/* status: grpc-status of the answer, or -1 (connection error, reset,
 * no grpc-status). */
typedef void (*lg_h2_done_fn)(void *arg, int status);

/* Returns an owned connection (not yet connected), or NULL. host, done and
 * arg are borrowed. */
lg_h2 *lg_h2_new(struct event_base *base, const char *host, uint16_t port, double timeout_s,
                 lg_h2_done_fn done, void *arg);
/* Starts a call to path (e.g. the TraceService/Export method) with body
 * (copied); encoding (NULL = identity) is the body's compression. done runs
 * exactly once (possibly before this returns, on a connect failure).
 * 0, or -1 when the call could not be started (done not called). */
int lg_h2_call(lg_h2 *c, const char *path, const char *encoding, const uint8_t *body,
               size_t len);
void lg_h2_free(lg_h2 *c);

/* The gRPC method of a signal ("/opentelemetry.proto.collector...Export"). */
const char *lg_h2_method(int signal);

#endif
