/* httpd_int.h — internals shared by httpd.c (server, replies) and
 * httpd_conn.c (one connection's reads, parsing and writes). Not a public
 * API: only runtime/httpd*.c include it.
 *
 * A connection moves HEAD -> BODY or CHUNKED -> BUSY (the handler holds the
 * request) -> HEAD (next request, possibly already buffered), or ends in
 * LINGER (answer written, write side shut, input discarded until the client
 * closes or HTTPD_LINGER_MS pass) before it is closed. Its input buffer
 * `in` holds the current request from `off` on; the parsed head points into
 * it, so growing the buffer rebases those pointers.
 */
#ifndef SW_HTTPD_INT_H
#define SW_HTTPD_INT_H

#include <event2/event.h>
#include <event2/event_struct.h>
#include <sys/uio.h>
#include <time.h>

#include "runtime/httpd.h"
#include "runtime/httpd_metrics.h"
#include "runtime/httpd_parse.h"

#define HTTPD_READ_SZ (64 * 1024)        /* the server's read scratch */
#define HTTPD_IN_MIN 4096                /* smallest input buffer */
#define HTTPD_KEEP_MAX HTTPD_READ_SZ     /* largest empty buffer kept between requests */
#define HTTPD_OUT_HIGH (64 * 1024)       /* stop parsing while this much is unsent */
#define HTTPD_LINGER_MS 2000             /* lingering close: at most this long */
#define HTTPD_LINGER_MAX (16u << 20)     /* ... and at most this many bytes discarded */

typedef struct hconn hconn;
typedef struct hslab hslab;

enum { HC_HEAD = 0, HC_BODY, HC_CHUNKED, HC_BUSY, HC_LINGER };

struct httpd_req {
    hconn *c;                  /* the connection it arrived on */
    httpd_head head;           /* points into c->in */
    const uint8_t *body;       /* into c->in, or NULL */
    size_t body_len;
    size_t consumed;           /* head + body bytes (as received) */
    int too_large;
    int busy;                  /* over the memory budget */
    int close;                 /* close after the answer */
    int is_head;               /* HEAD: answer without a body */
};

struct hconn {
    httpd *h;
    hslab *slab;               /* the slab it lives in (httpd_slab.c) */
    hconn *prev, *next;        /* h->conns */
    int fd;                    /* -1 once closed */
    struct event rd, wr;
    int rd_on, wr_on;          /* whether rd/wr are added */
    int state;                 /* HC_* */
    uint8_t *in;               /* owned input buffer */
    size_t in_len, in_cap;
    size_t off;                /* start of the current request */
    size_t scan;               /* httpd_head_end resume offset (from off) */
    size_t head_len;           /* parsed head length, 0 before */
    size_t need;               /* HC_BODY: off + head + Content-Length */
    int sent_continue;
    httpd_chunked ck;
    httpd_req req;
    uint8_t *out;              /* owned unsent output */
    size_t out_off, out_len, out_cap;
    int in_handler;            /* the handler is running for req */
    int kick;                  /* process buffered input on the next read event */
    int closing;               /* close once the output is sent */
    int linger;                /* ... with a lingering close */
    int dead;                  /* fd closed while the handler holds req */
    size_t lingered;
    size_t charged;            /* in_cap + out_cap, charged to h->bud */
    int64_t head_start_ns;     /* first byte of a request (head or body) still
                                  arriving, 0: none */
};

struct httpd {
    struct event_base *base;   /* borrowed */
    httpd_opts o;
    size_t in_limit;           /* largest input buffer of a connection */
    struct timeval tv, linger_tv;
    httpd_handler fn;
    void *arg;
    int lfd;                   /* listening socket, -1 when none */
    struct event *lev;         /* owned */
    int lev_on;
    uint16_t port;
    int draining;              /* httpd_stop_accepting was called */
    struct budget *bud;        /* borrowed (o.budget) or owned (own_bud) */
    int own_bud;
    uint8_t *scratch;          /* owned, HTTPD_READ_SZ: reads past a buffer's end */
    struct event *pause_ev;    /* owned: ends an accept pause */
    int paused;                /* accepting paused after EMFILE & co */
    httpd_stats st;
    httpd_metrics *mb;         /* owned by the registry, or NULL */
    unsigned nconns;           /* connections with an open fd */
    unsigned conns_high;       /* most open since the last heap trim */
    hslab *slabs;              /* owned: connection structs (httpd_slab.c) */
    hconn *evict_at;           /* where the next look for an idle one starts */
    struct event *trim_ev;     /* owned: trims the heap after a crowd left */
    int trim_pending;
    hconn *conns;              /* every connection, open or dead */
    time_t date_sec;
    char date[40];             /* cached Date value for date_sec */
};

/* httpd_conn.c */
hconn *httpd_conn_new(httpd *h, int fd);
/* Closes the fd; frees c unless the handler holds its request. */
void httpd_conn_close(hconn *c);
void httpd_conn_free(hconn *c);
/* Queues iov for the client: writes what the socket takes now, copies the
 * rest. 0, or -1 when the connection failed (it is then closed). */
int httpd_conn_send(hconn *c, const struct iovec *iov, int n);
/* The answer to c->req was queued: finish the request, go on with the next
 * one (or close). */
void httpd_conn_answered(hconn *c);

/* httpd_slab.c: zeroed connection structs (slab set), and back. */
hconn *httpd_slab_get(httpd *h);
void httpd_slab_put(httpd *h, hconn *c);
void httpd_slab_free_all(httpd *h);

/* httpd.c */
void httpd_conn_gone(httpd *h);        /* an fd closed: may resume accepting */
const char *httpd_date(httpd *h);      /* the cached Date header value */
/* Sends a response built from the parts; used for replies and the server's
 * own errors. 0 or SW_EINVAL (headers too long). */
int httpd_send_response(hconn *c, int status, const char *ctype, const char *headers,
                        const void *body, size_t len, int close, int is_head);

/* Counts one decision of the server in its stats and, when it has one,
 * its metrics block. */
#define HTTPD_COUNT(h, field, mfield)                                      \
    do {                                                                   \
        (h)->st.field++;                                                   \
        if ((h)->mb) metrics_add(&(h)->mb->mfield, 1);                     \
    } while (0)

/* The open-connections gauge follows nconns. */
static inline void httpd_note_conns(httpd *h)
{
    if (h->mb) metrics_gauge_set(&h->mb->connections, (int64_t)h->nconns);
}

#endif
