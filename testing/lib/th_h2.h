/* th_h2.h — a small HTTP/2 client for the gRPC receiver's tests.
 *
 * Two ways in: a gRPC client on an nghttp2 client session (unary calls,
 * many streams on one connection, resets, partial messages, custom
 * headers), and raw bytes on the same socket (bad prefaces, garbage and
 * flood frames, built with th_h2_frame()). The socket is blocking with a
 * poll() deadline on every wait; nothing sleeps. Connections are
 * registered with the per-case cleanup (th_proc.h). Main thread only.
 */
#ifndef TH_H2_H
#define TH_H2_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"

typedef struct th_h2 th_h2;

/* What came back on one stream. */
typedef struct th_h2_result {
    int closed;              /* the stream ended (answer complete, or reset) */
    int http_status;         /* :status, 0 if none */
    int grpc_status;         /* grpc-status (headers or trailers), -1 if none */
    char grpc_message[512];  /* grpc-message as sent (percent-encoded) */
    char details_b64[1024];  /* grpc-status-details-bin, "" if none */
    char content_type[64];
    char accept_encoding[64];/* grpc-accept-encoding */
    uint32_t rst_code;       /* RST_STREAM error code, when reset */
    int reset;               /* the stream was reset */
    buf body;                /* DATA bytes received (max 1 MiB) */
} th_h2_result;

/* Connects to 127.0.0.1:port. session != 0: an nghttp2 client session
 * (preface and SETTINGS sent); 0: a raw socket. Returns an owned,
 * registered connection, or NULL ("# " line printed). */
th_h2 *th_h2_connect(uint16_t port, int session);
void th_h2_free(th_h2 *h);

/* Starts a POST stream on path with the headers "name: value" pairs of
 * extra (NULL-terminated list of name, value, name, value...; may be NULL)
 * plus content-type ctype (NULL: none) and te: trailers; sends body[0..len)
 * as DATA, with END_STREAM when end != 0. Returns the stream id or -1. */
int32_t th_h2_start(th_h2 *h, const char *path, const char *ctype, const char *const *extra,
                    const uint8_t *body, size_t len, int end);
/* A unary gRPC call: body is wrapped in the 5-byte prefix (flag compressed,
 * 0 or 1) and sent with END_STREAM; encoding (may be NULL) becomes
 * grpc-encoding. Returns the stream id or -1. */
int32_t th_h2_grpc(th_h2 *h, const char *path, const char *encoding, int compressed,
                   const uint8_t *msg, size_t len);
/* Sends more DATA on an open stream (end: END_STREAM). 0 or -1. */
int th_h2_send_data(th_h2 *h, int32_t id, const uint8_t *data, size_t len, int end);
/* Resets a stream (RST_STREAM CANCEL). 0 or -1. */
int th_h2_reset(th_h2 *h, int32_t id);
/* Runs the connection until every started stream is closed, the
 * connection ends or timeout_ms passes. 0 when all streams closed, else -1. */
int th_h2_wait(th_h2 *h, int timeout_ms);
/* Runs the connection for up to timeout_ms or until it ends (EOF, error or
 * GOAWAY received), returning 1 when it ended and 0 otherwise. */
int th_h2_wait_end(th_h2 *h, int timeout_ms);
/* The result of a stream (borrowed), or NULL. */
const th_h2_result *th_h2_get(const th_h2 *h, int32_t id);
/* 1 once a GOAWAY arrived; *code (may be NULL) gets its error code. */
int th_h2_goaway(const th_h2 *h, uint32_t *code);
/* 1 once the peer closed the connection or an I/O error happened. */
int th_h2_eof(const th_h2 *h);
/* Sends a PING (session mode). 0 or -1. */
int th_h2_ping(th_h2 *h);
/* PING acknowledgements received so far. */
int th_h2_pongs(const th_h2 *h);

/* ---- raw mode ---- */

/* Writes bytes (raw mode or not: they go straight to the socket). 0, or
 * -1 when the peer closed the connection. */
int th_h2_send_raw(th_h2 *h, const void *data, size_t len);
/* Appends one frame: 9-byte header (len, type, flags, stream) + payload. */
int th_h2_frame(buf *out, uint8_t type, uint8_t flags, uint32_t stream, const void *payload,
                size_t len);
/* The client connection preface (24 bytes). */
extern const char th_h2_preface[];
/* Raw mode: reads until EOF or timeout_ms; frames are parsed for GOAWAY
 * (see th_h2_goaway). 1 when the connection ended (EOF or reset), else 0. */
int th_h2_raw_wait_close(th_h2 *h, int timeout_ms);

#endif
