/* th_http.h — a small blocking HTTP/1.1 client for the integration tests.
 *
 * One th_http is one connection to 127.0.0.1:port (plain or TLS without
 * certificate checks), connected lazily and reused (keep-alive); when the
 * server closed a reused connection before answering, the request is sent
 * again once on a fresh connection. Every socket wait is bounded by the
 * connection's timeout. Responses are parsed (status line, headers,
 * Content-Length, chunked or read-to-close bodies) into a th_resp owned by
 * the connection and valid until its next request. Raw sends allow
 * malformed and slow requests. Connections are registered with the per-case
 * cleanup (th_proc.h). Main thread only.
 */
#ifndef TH_HTTP_H
#define TH_HTTP_H

#include <stddef.h>
#include <stdint.h>

typedef struct th_resp {
    int status;        /* 0 when no response was read */
    char *head;        /* header lines after the status line, NUL-terminated */
    uint8_t *body;     /* body, NUL-terminated (an extra byte past body_len) */
    size_t body_len;
} th_resp;

typedef struct th_http th_http;

/* Returns an owned, registered connection object (not yet connected), or
 * NULL. tls: 1 for https (no verification). timeout_ms bounds each wait. */
th_http *th_http_new(uint16_t port, int tls, int timeout_ms);
void th_http_free(th_http *c);
/* Closes the socket (the next request reconnects). */
void th_http_disconnect(th_http *c);
/* The last transport error, "" if none. Borrowed. */
const char *th_http_error(const th_http *c);

/* Sends one request and reads its response. headers: "Name: value\r\n"
 * lines (may be NULL); Host, Content-Length are added. Returns the response
 * (borrowed, valid until the next call on c), or NULL on a transport error
 * (see th_http_error). If the server answers before the whole body was sent
 * (e.g. 413) the answer is returned. */
const th_resp *th_http_request(th_http *c, const char *method, const char *path,
                               const char *headers, const void *body, size_t len);

/* Raw I/O for malformed or slow requests. Connects if needed. 0 or -1. */
int th_http_send_raw(th_http *c, const void *data, size_t len);
/* Reads one response from the connection. NULL on error/close/timeout. */
const th_resp *th_http_read_response(th_http *c);
/* Waits until the server closes the connection (EOF or reset). Returns
 * the milliseconds waited, or -1 when still open after timeout_ms. Any
 * bytes the server sends meanwhile are discarded. */
long th_http_wait_closed(th_http *c, int timeout_ms);

/* Copies the value of header `name` (case-insensitive) into out. 1 found,
 * 0 not. */
int th_resp_header(const th_resp *r, const char *name, char *out, size_t len);

#endif
