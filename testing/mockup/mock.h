/* mock.h — spillway-mockup: a mock OTLP/HTTP upstream for tests and demos.
 *
 * Single-threaded: everything runs on the one event_base of main(). The
 * server (mock_server.c, mock_http.c) accepts OTLP/HTTP exports, decodes
 * them fully (mock_decode.c), renders one content line per item
 * (mock_render.c), counts everything (mock_store.c) and answers as the
 * fault settings (mock_fault.c) say. The pure parts (decode, render, store,
 * fault) use no libevent and are unit-tested directly. The HTTP contract is
 * in docs/mockup.md.
 */
#ifndef SW_MOCK_H
#define SW_MOCK_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"
#include "runtime/item.h"

struct event_base;

/* ---- outages (mock_outage.c; pure) ---------------------------------------- */

typedef enum {
    MOCK_OUT_NONE = 0,
    MOCK_OUT_REFUSE, /* listener closed, export connections dropped */
    MOCK_OUT_503,    /* every export POST answered 503 */
    MOCK_OUT_429,    /* every export POST answered 429 with Retry-After */
    MOCK_OUT_HANG,   /* export POSTs read, never answered; closed at the end */
    MOCK_OUT_TRICKLE, /* a 200 answer written one byte per second (plain HTTP) */
    MOCK_OUT_CONTINUE, /* "100 Continue" lines every 10 ms, never a final answer */
} mock_outage_mode;

/* Where outages come from; times in ms since the mock started. Admin beats
 * --outage-at, which beats the schedule. */
typedef struct mock_outage_plan {
    int64_t sched_down_ms, sched_every_ms; /* --outage-schedule; every 0 = none */
    int sched_mode;
    int64_t at_start_ms, at_end_ms;        /* --outage-at; mode NONE = none */
    int at_mode;
    int64_t admin_start_ms, admin_end_ms;  /* POST /admin/outage */
    int admin_mode;
} mock_outage_plan;

/* "refuse", "503", "429", "hang", "trickle", "continue" -> the mode;
 * SW_EINVAL otherwise. */
int mock_outage_mode_parse(const char *s);
/* "none", "refuse", "503", "429", "hang", "trickle", "continue". */
const char *mock_outage_mode_name(int mode);
/* Decimal seconds ("5", "0.25") into ms; SW_EINVAL for negatives, junk or
 * more than 30 days. */
int mock_parse_seconds(const char *s, int64_t *ms);
/* "DOWN_S/EVERY_S[/MODE]" (0 < DOWN < EVERY; mode refuse when absent):
 * each period of EVERY seconds is up for EVERY - DOWN, then down for DOWN. */
int mock_parse_schedule(const char *s, mock_outage_plan *p);
/* "START_S:DURATION_S[:MODE]": one outage START seconds after start. */
int mock_parse_outage_at(const char *s, mock_outage_plan *p);
/* The mode in force t_ms after start (MOCK_OUT_NONE: none); *next_ms is
 * the next time after t_ms at which it may change (INT64_MAX: never). */
int mock_outage_eval(const mock_outage_plan *p, int64_t t_ms, int64_t *next_ms);
/* ms until no outage is in force any more (0 when none is now). */
int64_t mock_outage_remaining_ms(const mock_outage_plan *p, int64_t t_ms);

/* Command-line settings; filled by main(), read-only afterwards. */
typedef struct mock_opts {
    char host[256];         /* listen address */
    int port;               /* 0 = ephemeral */
    const char *ready_file; /* borrowed from argv; NULL = none */
    int latency_ms;
    double error_rate;      /* 0..1, answered with error_code */
    int error_code;
    double rate_429;        /* 0..1, answered 429 with Retry-After */
    int retry_after;        /* seconds */
    long fail_first;        /* first N POSTs answered with error_code */
    int success_code;       /* 200, 201 or 204 */
    const char *tls_cert;   /* borrowed; both set = HTTPS */
    const char *tls_key;
    size_t keep;            /* max stored content lines per signal */
    int fast;               /* validate and count only; store nothing */
    uint64_t seed;
    mock_outage_plan outage; /* --outage-schedule, --outage-at (admin part unused) */
    char admin_host[256];    /* --admin-listen; empty = none */
    int admin_port;
} mock_opts;

/* Fills the defaults documented in --help. */
void mock_opts_defaults(mock_opts *o);

/* ---- fault injection (mock_fault.c) ------------------------------------ */

typedef struct mock_faults {
    const mock_opts *opts;  /* borrowed */
    uint64_t rng;           /* xorshift state, from --seed */
    long posts;             /* POSTs decided so far (for --fail-first) */
    long admin_left;        /* POSTs still to fail from /admin/fail */
    int admin_code;
} mock_faults;

void mock_faults_init(mock_faults *f, const mock_opts *o);
/* Arms /admin/fail: the next `count` POSTs answer `code`. */
void mock_faults_arm(mock_faults *f, long count, int code);
/* Decides the next POST: 0 = no fault (decode and answer normally), or the
 * HTTP status to answer with (429 means "add Retry-After"). Draws the two
 * random numbers on every call so a seed gives one fixed sequence. */
int mock_faults_decide(mock_faults *f);

/* ---- counters and stored lines (mock_store.c) --------------------------- */

typedef struct mock_store mock_store;

/* Returns an owned store keeping at most `keep` lines per signal, or NULL. */
mock_store *mock_store_new(size_t keep);
void mock_store_free(mock_store *s);
/* Clears every counter, stored line and the saved headers. */
void mock_store_reset(mock_store *s);
void mock_store_count_request(mock_store *s, sw_signal sig);
/* A request answered 2xx: its items, body bytes as received and protobuf
 * bytes after decompression / JSON conversion. */
void mock_store_count_accepted(mock_store *s, sw_signal sig, uint64_t items, size_t bytes,
                               size_t pb_bytes);
void mock_store_count_decode_error(mock_store *s);
void mock_store_count_response(mock_store *s, int code);
/* Room left for lines of sig (keep minus kept). */
size_t mock_store_room(const mock_store *s, sw_signal sig);
/* The text of the stored lines of sig ('\n'-terminated; borrowed). */
buf *mock_store_lines(mock_store *s, sw_signal sig);
/* Records that n more lines were appended to mock_store_lines(). */
void mock_store_add_kept(mock_store *s, sw_signal sig, size_t n);
/* The "name: value\n" headers of the last POST (borrowed, writable). */
buf *mock_store_headers(mock_store *s);
/* An export POST that arrived during an outage, sec seconds after start
 * (non-decreasing). Counted per second for the first
 * MOCK_OUTAGE_SECONDS_MAX distinct seconds, in the total always. */
#define MOCK_OUTAGE_SECONDS_MAX 4096
void mock_store_count_outage_request(mock_store *s, int64_t sec);

/* The live outage state shown in /stats. */
typedef struct mock_outage_status {
    int mode;             /* MOCK_OUT_NONE: no outage now */
    int64_t remaining_ms;
    int64_t uptime_ms;    /* since the mock started */
    uint64_t started;     /* outages begun since start */
} mock_outage_status;

/* Appends the /stats JSON document to out; os may be NULL (no "outage"). */
int mock_store_stats_json(const mock_store *s, const mock_outage_status *os, buf *out);

/* ---- rendering (mock_render.c) ------------------------------------------ */

/* Unpacks a protobuf Export<sig>ServiceRequest with protobuf-c, counts its
 * items into *items and appends up to max_lines content lines (each ending
 * in '\n') to lines, adding the number written to *nlines. 0, SW_EDECODE
 * (not a valid request), SW_ENOMEM or SW_ETOOBIG (lines is full: the lines
 * written so far stay, counting is complete). */
int mock_render_request(sw_signal sig, const uint8_t *pb, size_t len, buf *lines,
                        size_t max_lines, size_t *nlines, uint64_t *items);

/* ---- body decoding (mock_decode.c) -------------------------------------- */

/* Decompression and JSON conversion cap. */
#define MOCK_MAX_DECODED (64u * 1024u * 1024u)

typedef struct mock_decoded {
    int status;          /* 200 (ok), 400 (malformed) or 413 (too big) */
    uint64_t items;
    size_t pb_len;       /* protobuf bytes after decompression/conversion */
    size_t lines;        /* content lines stored */
    char msg[160];       /* reason when status != 200 */
} mock_decoded;

/* Decodes one body (borrowed) of sig; ctype and enc are the receiver's
 * rcv_content_type / rcv_encoding (receivers/otlp/rcv_decode.h). Full mode
 * (fast == 0): protobuf-c unpack, items counted and up to mock_store_room()
 * lines stored in st.
 * Fast mode: wire validation and counting only. Returns 0 with out->status
 * set (200/400/413), or SW_ENOMEM. An empty body is an empty request. */
int mock_decode_body(sw_signal sig, int ctype, int enc, const uint8_t *body, size_t len,
                     int fast, mock_store *st, mock_decoded *out);

/* ---- the HTTP server (mock_server.c, mock_http.c) ----------------------- */

typedef struct mock_server mock_server;

/* Binds, loads TLS if configured, writes the ready file. Returns 0 and an
 * owned server in *out, or an error (logged). base and opts are borrowed
 * and must outlive the server. */
int mock_server_new(struct event_base *base, const mock_opts *opts, mock_server **out);
/* Drops replies still held back by --latency-ms (their connections close),
 * closes the listener, frees. NULL-safe. */
void mock_server_free(mock_server *srv);

#endif
