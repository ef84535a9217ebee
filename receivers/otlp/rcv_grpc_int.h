/* rcv_grpc_int.h — internals shared by the OTLP/gRPC receiver's files.
 *
 *   rcv_grpc_frame.c  pure gRPC framing, decode and encoders (fuzzable)
 *   rcv_grpc_h2.c     one nghttp2 server session: streams -> calls -> answers
 *   rcv_grpc_conn.c   sockets and TLS: accept, read/write, idle, limits
 *   rcv_grpc.c        lifecycle, config, and the hand-off to the pipeline
 *
 * Everything runs on the ingest thread. Ownership: the server (rg_server)
 * is embedded in the receiver; a session (rg_session) belongs to its
 * connection; a call (rg_call) belongs to its session while the stream is
 * open. A call handed to the pipeline whose stream or connection goes away
 * first is detached (session = NULL) and freed when the pipeline's answer
 * arrives, since the pipeline has no cancellation.
 *
 * Memory bound: the buffers of request messages being reassembled, and the
 * decompressed copy of a compressed message while it is decoded (at its
 * limit), are charged to the intake budget (rg_server.mem, runtime/budget.h)
 * that the OTLP/HTTP receiver owns and charges its connections to, so HTTP
 * and gRPC together hold at most receivers.otlp.intake_memory. A DATA chunk
 * whose buffer does not fit ends its call with UNAVAILABLE + RetryInfo (the
 * buffer is freed at once), so hostile or simply many clients cannot make
 * the receivers hold more, whatever their number of streams.
 * rg_server.buffered is what this server has charged to the budget.
 */
#ifndef SW_RCV_GRPC_INT_H
#define SW_RCV_GRPC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "receivers/otlp/rcv_grpc_frame.h"
#include "runtime/buf.h"
#include "runtime/item.h"
#include "receivers/otlp/rcv_metrics.h"

struct budget;
struct event_base;
typedef struct rg_session rg_session;
typedef struct rg_call rg_call;

#define RG_MAX_STREAMS 128          /* SETTINGS_MAX_CONCURRENT_STREAMS */
#define RG_MAX_HEADER_LIST (16 * 1024) /* SETTINGS_MAX_HEADER_LIST_SIZE */
#define RG_WINDOW (1024 * 1024)     /* stream and connection receive windows */
#define RG_MAX_FRAME (16 * 1024)    /* SETTINGS_MAX_FRAME_SIZE (the minimum) */
#define RG_CTRL_PER_SEC 2000        /* control frames (RST, PING, SETTINGS,
                                       WINDOW_UPDATE, PRIORITY, empty DATA)
                                       a connection may send per second */
#define RG_RST_PER_SEC 200          /* stream resets per second (rapid reset) */

/* What the pipeline answered for a call (mirrors the pipeline's outcome). */
typedef struct rg_answer {
    int status;              /* RG_OK or the gRPC status */
    int64_t rejected;        /* RG_OK: partial_success rejected count */
    const char *message;     /* partial_success / error message; borrowed */
    unsigned retry_after_s;  /* > 0: RetryInfo in grpc-status-details-bin */
    int reason;              /* rcv_refuse_reason when refused */
    uint32_t items;          /* items accepted (OK) or refused */
} rg_answer;

/* Hands one decoded request on. pb is borrowed for the call only; the
 * function answers exactly once with rg_call_done(), during the call or
 * later from the event loop. */
typedef void (*rg_submit_fn)(void *arg, rg_call *call, sw_signal sig, const uint8_t *pb,
                             size_t len, uint32_t items, int64_t recv_ns);

typedef struct rg_server {
    struct event_base *base;  /* borrowed; NULL: no grpc-timeout timers (fuzzing) */
    size_t cap;               /* max message size, before and after decompression */
    size_t buffered;          /* bytes of request messages held, all sessions,
                                 charged to mem */
    struct budget *mem;       /* borrowed: the intake budget (required) */
    int accepting;            /* 0 while stopping: calls get UNAVAILABLE */
    rg_submit_fn submit;
    void *submit_arg;
    rcv_grpc_metrics *m;      /* owned by the registry, or NULL */
    unsigned calls_pending;   /* calls waiting for the pipeline (incl. detached) */
} rg_server;

/* How a session reaches its connection. */
typedef struct rg_io {
    /* Writes session output (nghttp2 frames, data borrowed). 0, or -1 to
     * drop the connection. */
    int (*write)(void *arg, const uint8_t *data, size_t len);
    /* The session queued output outside of rg_session_recv() (an answer
     * from the pipeline, a timer): flush it, and close when done. */
    void (*kick)(void *arg);
    void *arg;
} rg_io;

/* ---- rcv_grpc_h2.c ---- */

/* Returns an owned server session, or NULL. srv and io are borrowed and
 * must outlive it. The server SETTINGS are queued (flush to send them). */
rg_session *rg_session_new(rg_server *srv, const rg_io *io);
/* Detaches pending calls, frees everything; NULL-safe. */
void rg_session_free(rg_session *s);
/* Feeds bytes read from the peer (borrowed). 0, or -1 on a connection
 * error (a GOAWAY may still be queued: flush, then close when
 * rg_session_done()). */
int rg_session_recv(rg_session *s, const uint8_t *data, size_t len);
/* Writes everything nghttp2 has queued. 0 or -1 (close the connection). */
int rg_session_flush(rg_session *s);
/* 1 when the session neither wants to read nor to write: close it. */
int rg_session_done(const rg_session *s);
/* Streams open on the session (for the idle timeout). */
size_t rg_session_streams(const rg_session *s);
/* Sends GOAWAY (NO_ERROR, graceful: open streams complete). */
void rg_session_goaway(rg_session *s);

/* Answers a call handed on by srv->submit (exactly once). Runs on the
 * ingest thread; frees a detached call. */
void rg_call_done(rg_call *call, const rg_answer *a);

/* ---- rcv_grpc_conn.c: listening socket and connections ---- */

typedef struct rg_net rg_net;
struct ssl_ctx_st;

typedef struct rg_net_opts {
    unsigned max_conns;       /* open connections at most */
    uint64_t idle_ms;         /* no streams and no input: GOAWAY and close */
    struct ssl_ctx_st *tls;   /* borrowed; NULL = h2c with prior knowledge */
} rg_net_opts;

/* Listens on host:port (port 0 = ephemeral) on srv->base, serving srv.
 * Returns 0 and *out (owned), or SW_EIO / SW_ENOMEM (logged). */
int rg_net_start(rg_server *srv, const char *host, uint16_t port, const rg_net_opts *o,
                 rg_net **out);
uint16_t rg_net_port(const rg_net *n);
/* Stops accepting and sends GOAWAY on every connection: open streams
 * finish, then the connections close. */
void rg_net_stop(rg_net *n);
/* Closes everything at once; NULL-safe. */
void rg_net_free(rg_net *n);
/* Open connections (for tests and logs). */
unsigned rg_net_conns(const rg_net *n);
/* Returns an owned server TLS context for cert/key (PEM) that selects ALPN
 * "h2" (a client not offering h2 fails the handshake), or NULL (logged). */
struct ssl_ctx_st *rg_tls_ctx_new(const char *cert_file, const char *key_file);

#endif
