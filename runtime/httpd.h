/* httpd.h — a small HTTP/1.1 server on a libevent event_base.
 *
 * Serves the OTLP/HTTP receiver and the telemetry endpoints. Everything
 * runs on the thread of the event_base given to httpd_new(): the handler is
 * called there and httpd_reply() must be called there too.
 *
 * Each connection reads with readv(2) into its own buffer and, past its
 * end, into the server's 64 KiB scratch; what lands in the scratch is
 * appended to the connection's buffer, which grows (doubling, never past
 * what has arrived by more than its size, never past the head cap plus the
 * body cap) as bytes arrive — an announced Content-Length is never reserved
 * up front. Before a read the buffer is grown by what the kernel already
 * holds (FIONREAD), so the usual request is read in place without a copy. A request's body is therefore contiguous and handed to the
 * handler without a copy (a chunked body is decoded in place). An idle
 * connection holds no buffer. Answers go out with one writev(2); what the
 * socket does not take waits for a write event. Keep-alive (HTTP/1.1 by
 * default, HTTP/1.0 with "Connection: keep-alive"), pipelining (requests
 * are answered in order, one at a time), "Expect: 100-continue", chunked
 * bodies with trailers. The read timeout closes a connection that sends
 * nothing (idle keep-alive, stalled head or body) and the same timeout
 * bounds a write that makes no progress.
 *
 * Refused by the server itself, answered with a short text body and a
 * close: malformed request line, header or chunk (400), head over
 * max_head or more than HTTPD_MAX_HEADERS fields (431), a Transfer-Encoding
 * other than chunked (501), an HTTP version other than 1.0 or 1.1 — including the
 * HTTP/2 preface — (505), an Expect other than 100-continue (417). A body
 * over max_body (announced by Content-Length, or a chunked body as soon as
 * its total passes the cap) is never buffered: the handler is called with
 * httpd_req_too_large() == 1 and no body, answers (normally 413), and the
 * connection closes after the answer without reading the rest.
 *
 * REPLY CONTRACT. The handler gets an httpd_req and must answer it exactly
 * once with httpd_reply(), either before returning or later (a deferred
 * answer). The request view (method, path, fields, body) stays valid until
 * the answer. While a request waits for its answer the connection reads
 * nothing more. If the connection breaks meanwhile (a write error of an
 * earlier answer), the handle stays valid and the late answer is dropped
 * and frees it. httpd_free() frees every handle still unanswered: after it
 * no httpd_reply() may be made.
 *
 * Connections are capped at max_conns (HTTPD_MAX_CONNS by default). At the
 * cap a new client makes room by evicting an idle connection (nothing of a
 * request held or being answered: a silent one, or a keep-alive one between
 * requests); when none is idle it waits in the kernel's backlog (the
 * listening socket is looked at again every HTTPD_ACCEPT_PAUSE_MS, and
 * whenever a connection closes). When accept(2) fails for
 * lack of file descriptors or memory, accepting pauses for
 * HTTPD_ACCEPT_PAUSE_MS (counted, logged at most every 10 s) instead of
 * spinning on a listening socket that stays readable.
 *
 * MEMORY. Every byte of every connection's input and unsent output buffer
 * is charged to a budget (runtime/budget.h): the one given in the options
 * (shared with other servers of the same intake), or the server's own of
 * max_mem bytes. A request whose bytes do not fit is refused with 503 and
 * "Retry-After: 1", then the connection closes: when its head was parsed
 * the handler is called with httpd_req_busy() == 1 and no body (it answers,
 * normally 503 in the request's encoding); before that the server answers
 * with the options' busy body. Refusing rather than waiting is deliberate:
 * a connection that waits for budget keeps what it holds, so slow senders
 * could hold the whole budget and stall every client, while a refusal
 * frees it at once and OTLP clients retry a 503 after Retry-After.
 *
 * DEADLINES. The whole request head must arrive within head_timeout_ms of
 * its first byte, however slowly it trickles (slowloris); the connection
 * is closed otherwise. Its body must then keep up min_body_rate bytes per
 * second on average, with head_timeout_ms of grace: a request whose head
 * and body began T ms ago is closed once it holds fewer than
 * (T - head_timeout_ms) * min_body_rate / 1000 body bytes, so a body
 * trickled to hold a connection slot (slow POST) frees it within seconds
 * while a large body on a slow link is never cut. Input that cannot start an HTTP/1.x request — a TLS
 * ClientHello, binary junk, an HTTP/0.9 request line, the HTTP/2 preface or
 * HTTP/1.2 — is answered (400 or 505) and closed as soon as it is seen.
 */
#ifndef SW_HTTPD_H
#define SW_HTTPD_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
typedef struct httpd httpd;
typedef struct httpd_req httpd_req;

#define HTTPD_MAX_CONNS 4096
#define HTTPD_ACCEPT_PAUSE_MS 100

struct budget;

typedef struct httpd_opts {
    size_t max_body;       /* body cap in bytes (after dechunking); 0: 1 MiB */
    size_t max_head;       /* request line + header fields; 0: 64 KiB */
    uint64_t timeout_ms;   /* read/write inactivity timeout; 0: none */
    unsigned max_conns;    /* 0: HTTPD_MAX_CONNS */
    uint64_t head_timeout_ms; /* whole-head deadline; 0: none */
    uint64_t min_body_rate;   /* body bytes/s on average after head_timeout_ms; 0: none */
    struct budget *budget; /* borrowed, shared; NULL: an own one of max_mem */
    size_t max_mem;        /* own budget in bytes; 0: 64 MiB */
    /* The server's own 503 when a request does not fit the budget before
     * its head was parsed (borrowed; NULL: a short text). */
    const char *busy_ctype;
    const void *busy_body;
    size_t busy_len;
    /* Registry (borrowed, may be NULL) for the server's spillway_http_*
     * series, labelled server=metrics_server (a static string). */
    struct sw_metrics *metrics;
    const char *metrics_server;
} httpd_opts;

/* Counters of the server's own decisions (ingest thread). */
typedef struct httpd_stats {
    uint64_t accept_pauses;   /* accept(2) failed (EMFILE, ...) and paused */
    uint64_t busy_refused;    /* requests refused: over the memory budget */
    uint64_t head_timeouts;   /* connections closed by the head deadline */
    uint64_t body_timeouts;   /* connections closed: body slower than min_body_rate */
    uint64_t junk_refused;    /* not HTTP/1.x: answered 400/505 at once */
    uint64_t evicted;         /* idle connections closed to make room at the cap */
    uint64_t cap_pauses;      /* at the cap with none idle: accepting paused, clients wait */
    unsigned conns;           /* connections open now */
} httpd_stats;

/* Called once per request; must lead to exactly one httpd_reply(). */
typedef void (*httpd_handler)(httpd_req *req, void *arg);

/* Returns an owned server or NULL. base and arg are borrowed; o is copied
 * (NULL: defaults). Listens on nothing yet. */
httpd *httpd_new(struct event_base *base, const httpd_opts *o, httpd_handler fn, void *arg);
/* Listens on host:port (numeric or a name; port 0 = ephemeral). 0, SW_EIO
 * (logged with errno) or SW_EINVAL when already bound. */
int httpd_bind(httpd *h, const char *host, uint16_t port);
/* Fills *s with the server's counters. */
void httpd_get_stats(const httpd *h, httpd_stats *s);
/* The port bound, 0 before httpd_bind. */
uint16_t httpd_port(const httpd *h);
/* Shutdown, step 1: closes the listening socket (new clients are refused
 * by the kernel); from now on every answer carries "Connection: close", so
 * open connections close after their next answer. */
void httpd_stop_accepting(httpd *h);
/* Shutdown, step 2 (optional): closes the connections that are idle —
 * nothing buffered, nothing being answered and no byte waiting in the
 * socket; a connection with a request arriving is served first. */
void httpd_close_idle(httpd *h);
/* Closes everything and frees every unanswered request. NULL-safe. */
void httpd_free(httpd *h);

/* ---- the request view (valid until the answer) ------------------------ */
const char *httpd_req_method(const httpd_req *r);
/* The target's path, without the query string. */
const char *httpd_req_path(const httpd_req *r);
/* The value of header field `name` (case-insensitive), or NULL. */
const char *httpd_req_header(const httpd_req *r, const char *name);
/* The body (NULL when empty or too large) and its length. */
const uint8_t *httpd_req_body(const httpd_req *r, size_t *len);
/* 1 when the body passed max_body (and was not read). */
int httpd_req_too_large(const httpd_req *r);
/* 1 when the body did not fit the memory budget (and was not kept): answer
 * 503 with Retry-After; the connection closes after the answer. */
int httpd_req_busy(const httpd_req *r);
/* How many header fields are called `name` (case-insensitive). */
size_t httpd_req_header_count(const httpd_req *r, const char *name);
/* Asks for the connection to close after this request's answer. */
void httpd_req_close(httpd_req *r);

/* Answers r (takes it: r is invalid afterwards). ctype may be NULL (no
 * Content-Type); headers: extra "Name: value\r\n" lines or NULL; body
 * (borrowed, copied if the socket does not take it at once) is left out
 * for HEAD. Adds Content-Length, Date and, when the connection closes,
 * "Connection: close". 0, or SW_EINVAL when the header lines do not fit
 * HTTPD_MAX_REPLY_HEAD (a 500 is sent instead). */
#define HTTPD_MAX_REPLY_HEAD 2048
int httpd_reply(httpd_req *r, int status, const char *ctype, const char *headers,
                const void *body, size_t len);
/* The reason phrase of a status ("OK", "Not Found", ...). */
const char *httpd_reason(int status);

#endif
