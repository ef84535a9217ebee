/* httpd_conn.c — one connection of runtime/httpd.h: reads, request
 * framing, the handler call, writes, lingering close. See httpd_int.h for
 * the states.
 *
 * Return convention of the step functions: 0 progressed (go on), 1 stop
 * (more input needed, or the connection waits for something), -1 the
 * connection was freed (touch nothing).
 */
#define LOG_COMPONENT "httpd"
#include "runtime/httpd_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/budget.h"
#include "runtime/clock.h"
#include "runtime/log.h"

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);

static const struct timeval *conn_tv(const hconn *c)
{
    return c->h->o.timeout_ms ? &c->h->tv : NULL;
}

static void rd_on(hconn *c)
{
    if (c->rd_on || c->fd < 0) return;
    if (event_add(&c->rd, conn_tv(c)) == 0) c->rd_on = 1;
    else LOG_ERROR_RL(10, "event_add failed on a connection");
}

static void rd_off(hconn *c)
{
    if (!c->rd_on) return;
    event_del(&c->rd);
    c->rd_on = 0;
}

/* Charges (grow) or credits (shrink) the budget for a buffer going from
 * oldcap to newcap bytes. 0, or -1 when the growth does not fit. */
static int charge(hconn *c, size_t oldcap, size_t newcap)
{
    if (newcap > oldcap) {
        if (budget_reserve(c->h->bud, newcap - oldcap) != 0) return -1;
        c->charged += newcap - oldcap;
    } else {
        budget_release(c->h->bud, oldcap - newcap);
        c->charged -= oldcap - newcap;
    }
    return 0;
}

static void in_drop(hconn *c)
{
    (void)charge(c, c->in_cap, 0);
    free(c->in);
    c->in = NULL;
    c->in_cap = c->in_len = c->off = 0;
}

static void out_drop(hconn *c)
{
    (void)charge(c, c->out_cap, 0);
    free(c->out);
    c->out = NULL;
    c->out_cap = c->out_len = c->out_off = 0;
}

/* Processes buffered input from the event loop (not from the caller's
 * stack): used after a deferred answer and after output drained. */
static void kick(hconn *c)
{
    rd_on(c);
    if (!c->rd_on) return;
    c->kick = 1;
    event_active(&c->rd, EV_READ, 1);
}

hconn *httpd_conn_new(httpd *h, int fd)
{
    hconn *c = httpd_slab_get(h);
    if (!c) return NULL;
    c->h = h;
    c->fd = fd;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (event_assign(&c->rd, h->base, fd, EV_READ | EV_PERSIST, on_read, c) != 0 ||
        event_assign(&c->wr, h->base, fd, EV_WRITE | EV_PERSIST, on_write, c) != 0) {
        httpd_slab_put(h, c);
        return NULL;
    }
    rd_on(c);
    if (!c->rd_on) {
        httpd_slab_put(h, c);
        return NULL;
    }
    c->next = h->conns;
    if (h->conns) h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    if (h->nconns > h->conns_high) h->conns_high = h->nconns;
    httpd_note_conns(h);
    return c;
}

/* Closes the socket only; the struct stays. */
static void conn_shut(hconn *c)
{
    if (c->fd < 0) return;
    rd_off(c);
    if (c->wr_on) event_del(&c->wr);
    c->wr_on = 0;
    close(c->fd);
    c->fd = -1;
    httpd_conn_gone(c->h);
}

void httpd_conn_free(hconn *c)
{
    if (!c) return;
    conn_shut(c);
    if (c->h->evict_at == c) c->h->evict_at = c->next;
    if (c->prev) c->prev->next = c->next;
    else c->h->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    in_drop(c);
    out_drop(c);
    httpd_slab_put(c->h, c);
}

void httpd_conn_close(hconn *c)
{
    conn_shut(c);
    if (c->state == HC_BUSY) return; /* freed by the late answer */
    httpd_conn_free(c);
}

/* ---- output ------------------------------------------------------------ */

static int out_reserve(hconn *c, size_t n)
{
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_cap - c->out_len >= n) return 0;
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap - c->out_len < n) cap *= 2;
    if (charge(c, c->out_cap, cap) != 0) {
        HTTPD_COUNT(c->h, busy_refused, refused[HTTPD_REFUSE_BUSY]);
        LOG_WARN_RL(10, "%s", "intake memory budget exhausted: closing a connection that "
                              "does not read its answers");
        return -1;
    }
    uint8_t *p = realloc(c->out, cap);
    if (!p) {
        (void)charge(c, cap, c->out_cap);
        return -1;
    }
    c->out = p;
    c->out_cap = cap;
    return 0;
}

static int would_block(void) { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

/* Writes iov now (MSG_NOSIGNAL: a gone client is an error, not SIGPIPE). */
static ssize_t send_iov(int fd, const struct iovec *iov, int n)
{
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
    return sendmsg(fd, &m, MSG_NOSIGNAL);
}

int httpd_conn_send(hconn *c, const struct iovec *iov, int n)
{
    size_t total = 0, done = 0;
    if (c->fd < 0) return -1;
    for (int i = 0; i < n; i++) total += iov[i].iov_len;
    if (c->out_off == c->out_len) {
        ssize_t w = send_iov(c->fd, iov, n);
        if (w < 0 && !would_block()) {
            LOG_DEBUG("write: %s", strerror(errno));
            conn_shut(c);
            return -1;
        }
        done = w < 0 ? 0 : (size_t)w;
        if (done == total) return 0;
    }
    if (out_reserve(c, total - done) != 0) {
        conn_shut(c);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        size_t skip = done < iov[i].iov_len ? done : iov[i].iov_len;
        done -= skip;
        memcpy(c->out + c->out_len, (const uint8_t *)iov[i].iov_base + skip,
               iov[i].iov_len - skip);
        c->out_len += iov[i].iov_len - skip;
    }
    if (!c->wr_on && event_add(&c->wr, conn_tv(c)) == 0) c->wr_on = 1;
    return 0;
}

/* ---- closing ----------------------------------------------------------- */

static int start_linger(hconn *c)
{
    (void)shutdown(c->fd, SHUT_WR);
    in_drop(c); /* discarded input goes to the scratch */
    c->state = HC_LINGER;
    c->lingered = 0;
    rd_off(c);
    if (event_add(&c->rd, &c->h->linger_tv) != 0) {
        httpd_conn_close(c);
        return -1;
    }
    c->rd_on = 1;
    return 1;
}

/* The last answer is queued and the connection is to close: closes it now
 * if everything was sent, else when on_write has sent it. */
static int finish(hconn *c)
{
    if (c->fd < 0) {
        httpd_conn_close(c);
        return -1;
    }
    if (c->out_off < c->out_len) {
        rd_off(c);
        return 1;
    }
    if (c->linger) return start_linger(c);
    httpd_conn_close(c);
    return -1;
}

static void linger_read(hconn *c)
{
    ssize_t r = read(c->fd, c->h->scratch, HTTPD_READ_SZ);
    if (r < 0 && would_block()) return;
    if (r <= 0 || (c->lingered += (size_t)r) > HTTPD_LINGER_MAX) httpd_conn_close(c);
}

/* ---- input buffer ------------------------------------------------------ */

static void rebase_ptr(const char **p, uintptr_t lo, uintptr_t hi, const uint8_t *nb)
{
    uintptr_t v = (uintptr_t)*p;
    if (*p && v >= lo && v < hi) *p = (const char *)(nb + (v - lo));
}

/* Moves the current request (from off) to the start of a buffer of cap
 * bytes (the same one when cap == in_cap), rebasing the parsed head. The
 * growth is charged to the budget. 0, or -1 (over the budget or out of
 * memory; nothing changed). */
static int buf_move(hconn *c, size_t cap)
{
    uint8_t *old = c->in, *nb = old;
    size_t n = c->in_len - c->off;
    if (cap != c->in_cap) {
        if (charge(c, c->in_cap, cap) != 0) return -1;
        nb = malloc(cap);
        if (!nb) {
            (void)charge(c, cap, c->in_cap);
            return -1;
        }
    }
    if (nb == old) memmove(nb, old + c->off, n);
    else if (n) memcpy(nb, old + c->off, n);
    if (c->head_len) {
        uintptr_t lo = (uintptr_t)(old + c->off), hi = (uintptr_t)(old + c->in_len);
        httpd_head *hd = &c->req.head;
        rebase_ptr(&hd->method, lo, hi, nb);
        rebase_ptr(&hd->path, lo, hi, nb);
        rebase_ptr(&hd->query, lo, hi, nb);
        for (size_t i = 0; i < hd->nfields; i++) {
            rebase_ptr(&hd->fields[i].name, lo, hi, nb);
            rebase_ptr(&hd->fields[i].value, lo, hi, nb);
        }
    }
    if (nb != old) free(old);
    c->in = nb;
    c->in_cap = cap;
    c->in_len = n;
    if (c->need) c->need -= c->off;
    c->off = 0;
    return 0;
}

/* The capacity for `want` bytes of the current request: doubling from
 * HTTPD_IN_MIN, but a body's buffer never past the whole request. */
static size_t grow_cap(const hconn *c, size_t want)
{
    size_t cap = c->in_cap ? c->in_cap * 2 : HTTPD_IN_MIN;
    while (cap < want) cap *= 2;
    if (c->state == HC_BODY && c->need - c->off < cap) cap = c->need - c->off;
    if (cap > c->h->in_limit) cap = c->h->in_limit;
    return cap < want ? want : cap;
}

/* Appends src[0..n) (read into the scratch) to the input buffer, growing
 * it. 0; -2 when the request would pass the server's caps; -1 over the
 * memory budget or out of memory. */
static int append_input(hconn *c, const uint8_t *src, size_t n)
{
    size_t want = c->in_len - c->off + n;
    if (want > c->h->in_limit) return -2;
    if (!c->in || c->in_cap - c->in_len < n) {
        size_t cap = c->in && c->in_cap >= want ? c->in_cap : grow_cap(c, want);
        if (buf_move(c, cap) != 0) return -1;
    }
    memcpy(c->in + c->in_len, src, n);
    c->in_len += n;
    return 0;
}

/* ---- requests ---------------------------------------------------------- */

static int after_answer(hconn *c)
{
    c->off += c->req.consumed;
    if (c->off > c->in_len) c->off = c->in_len;
    c->head_len = c->scan = c->need = 0;
    c->sent_continue = 0;
    if (c->closing || c->fd < 0) return finish(c);
    if (c->off == c->in_len) {
        c->off = c->in_len = 0;
        /* An empty buffer is kept for the next request only while it is
         * small and the budget is mostly free. */
        if (c->in_cap > HTTPD_KEEP_MAX ||
            budget_used(c->h->bud) > budget_limit(c->h->bud) / 4)
            in_drop(c);
    }
    return 0;
}

void httpd_conn_answered(hconn *c)
{
    c->state = HC_HEAD;
    if (c->in_handler) return; /* dispatch() goes on */
    if (after_answer(c) == 0) kick(c);
}

static int dispatch(hconn *c)
{
    c->state = HC_BUSY;
    c->in_handler = 1;
    c->h->fn(&c->req, c->h->arg);
    c->in_handler = 0;
    if (c->state == HC_BUSY) { /* deferred */
        rd_off(c);
        return 1;
    }
    return after_answer(c);
}

/* The server's own error answer; the connection closes after it. */
static int fail(hconn *c, int status)
{
    char body[64];
    size_t n = (size_t)snprintf(body, sizeof body, "%s\n", httpd_reason(status));
    c->closing = c->linger = 1;
    LOG_DEBUG("refused a request: %d %s", status, httpd_reason(status));
    (void)httpd_send_response(c, status, "text/plain; charset=utf-8", NULL, body, n, 1, 0);
    return finish(c);
}

/* The request's bytes do not fit the budget. With a parsed head the
 * handler answers (httpd_req_busy); before it, the server does. Either way
 * the connection closes after the answer and the rest is discarded. */
static int over_budget(hconn *c)
{
    HTTPD_COUNT(c->h, busy_refused, refused[HTTPD_REFUSE_BUSY]);
    LOG_WARN_RL(10, "intake memory budget exhausted (%zu of %zu bytes in use): "
                "refusing a request with 503", budget_used(c->h->bud), budget_limit(c->h->bud));
    if (c->state == HC_BODY || c->state == HC_CHUNKED) {
        c->req.busy = 1;
        c->req.close = 1;
        c->req.body = NULL;
        c->req.body_len = 0;
        c->req.consumed = c->in_len - c->off;
        return dispatch(c);
    }
    const httpd_opts *o = &c->h->o;
    static const char text[] = "intake memory exhausted\n";
    c->closing = c->linger = 1;
    (void)httpd_send_response(c, 503, o->busy_body ? o->busy_ctype : "text/plain; charset=utf-8",
                              "Retry-After: 1\r\n", o->busy_body ? o->busy_body : text,
                              o->busy_body ? o->busy_len : sizeof text - 1, 1, 0);
    return finish(c);
}

static int too_large(hconn *c)
{
    c->req.too_large = 1;
    c->req.close = 1;
    c->req.body = NULL;
    c->req.body_len = 0;
    c->req.consumed = c->in_len - c->off;
    return dispatch(c);
}

static int send_continue(hconn *c)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct iovec iov = {(void *)msg, sizeof msg - 1};
    if (!c->req.head.expect_continue || c->sent_continue) return 0;
    c->sent_continue = 1;
    if (httpd_conn_send(c, &iov, 1) != 0) {
        httpd_conn_close(c);
        return -1;
    }
    return 0;
}

static int start_request(hconn *c, size_t end)
{
    httpd_req *r = &c->req;
    r->c = c;
    r->body = NULL;
    r->body_len = 0;
    r->too_large = 0;
    r->busy = 0;
    r->close = !r->head.keep_alive;
    r->is_head = strcmp(r->head.method, "HEAD") == 0;
    c->head_len = end;
    if (r->head.chunked) {
        httpd_chunked_init(&c->ck);
        c->state = HC_CHUNKED;
        return c->in_len == c->off + end ? send_continue(c) : 0;
    }
    uint64_t cl = r->head.content_length < 0 ? 0 : (uint64_t)r->head.content_length;
    if (cl > c->h->o.max_body) return too_large(c);
    /* The body's buffer grows as its bytes arrive (append_input). */
    c->need = c->off + end + (size_t)cl;
    c->state = HC_BODY;
    return c->in_len < c->need ? send_continue(c) : 0;
}

static int step_head(hconn *c)
{
    const httpd_opts *o = &c->h->o;
    while (c->scan == 0 && c->off < c->in_len &&
           (c->in[c->off] == '\r' || c->in[c->off] == '\n'))
        c->off++; /* blank lines between requests */
    size_t avail = c->in_len - c->off;
    if (avail == 0) {
        c->off = c->in_len = 0;
        return 1;
    }
    size_t end = httpd_head_end((const char *)c->in + c->off, avail, &c->scan);
    if (end == 0) {
        int rc = httpd_head_prefix_check((const char *)c->in + c->off, avail);
        if (rc < 0) {
            HTTPD_COUNT(c->h, junk_refused, refused[HTTPD_REFUSE_NOT_HTTP]);
            return fail(c, -rc);
        }
        return avail > o->max_head ? fail(c, 431) : 1;
    }
    if (end > o->max_head) return fail(c, 431);
    int rc = httpd_parse_head((char *)c->in + c->off, end, &c->req.head);
    if (rc < 0) return fail(c, -rc);
    return start_request(c, end);
}

static int step_body(hconn *c)
{
    if (c->in_len < c->need) return 1;
    c->req.body_len = c->need - c->off - c->head_len;
    c->req.body = c->req.body_len ? c->in + c->off + c->head_len : NULL;
    c->req.consumed = c->need - c->off;
    return dispatch(c);
}

static int step_chunked(hconn *c)
{
    size_t start = c->off + c->head_len;
    int rc = httpd_chunked_step(&c->ck, c->in + start, c->in_len - start, c->h->o.max_body,
                                c->h->o.max_head);
    if (rc == 0) return 1;
    if (rc == -413) return too_large(c);
    if (rc < 0) return fail(c, -rc);
    c->req.body_len = c->ck.out;
    c->req.body = c->ck.out ? c->in + start : NULL;
    c->req.consumed = c->head_len + c->ck.in;
    return dispatch(c);
}

/* Handles every complete request in the buffer. -1 when c was freed. */
static int process(hconn *c)
{
    for (;;) {
        if (c->state == HC_BUSY || c->state == HC_LINGER || c->closing || c->fd < 0) return 0;
        if (c->out_len - c->out_off > HTTPD_OUT_HIGH) { /* resumed by on_write */
            rd_off(c);
            return 0;
        }
        int rc = c->state == HC_HEAD   ? step_head(c)
               : c->state == HC_BODY   ? step_body(c)
                                       : step_chunked(c);
        if (rc != 0) return rc < 0 ? -1 : 0;
    }
}

/* EOF from the client: done unless an answer is still being written. */
static void on_eof(hconn *c)
{
    if (c->out_off < c->out_len && c->state == HC_HEAD && c->in_len == c->off) {
        c->closing = 1;
        rd_off(c);
        return;
    }
    httpd_conn_close(c);
}

/* How long from its first byte the request being read may take: the head
 * deadline while the head arrives; while the body does, that grace plus
 * the time its bytes so far buy at min_body_rate. -1: no deadline. */
static int64_t request_deadline_ms(const hconn *c)
{
    const httpd_opts *o = &c->h->o;
    if (c->state == HC_HEAD)
        return c->in_len > c->off && o->head_timeout_ms ? (int64_t)o->head_timeout_ms : -1;
    if ((c->state != HC_BODY && c->state != HC_CHUNKED) || !o->min_body_rate) return -1;
    uint64_t body = c->in_len - c->off - c->head_len;
    uint64_t bought = body / o->min_body_rate * 1000 + body % o->min_body_rate * 1000 / o->min_body_rate;
    return (int64_t)(o->head_timeout_ms + bought);
}

/* Arms the read event: the inactivity timeout, or less while a request is
 * arriving and its deadline is nearer. */
static void rd_arm(hconn *c)
{
    const struct timeval *tv = conn_tv(c);
    struct timeval left;
    int64_t dl_ms = c->fd >= 0 ? request_deadline_ms(c) : -1;
    if (dl_ms < 0) {
        if (!c->head_start_ns) return;
        c->head_start_ns = 0; /* back to the plain inactivity timeout */
    } else {
        int64_t now = clock_mono_ns();
        if (!c->head_start_ns) c->head_start_ns = now;
        int64_t ms = dl_ms - (now - c->head_start_ns) / 1000000;
        if (ms < 1) ms = 1;
        if (!tv || (int64_t)tv->tv_sec * 1000 + tv->tv_usec / 1000 > ms) {
            left.tv_sec = (time_t)(ms / 1000);
            left.tv_usec = (suseconds_t)(ms % 1000) * 1000;
            tv = &left;
        }
    }
    if (c->rd_on && event_add(&c->rd, tv) != 0) LOG_ERROR_RL(10, "event_add failed on a connection");
}

/* Grows the buffer by what has already arrived in the kernel (FIONREAD),
 * so that it is read in place instead of through the scratch: the buffer
 * still only grows with bytes that arrived. Best effort: when the budget
 * refuses, the read goes through the scratch and append_input decides.
 * Not asked when an empty buffer kept from the last request waits: the
 * next request is usually alike and fits, and what does not is copied
 * from the scratch — cheaper than one more system call per request. */
static void fit_pending(hconn *c)
{
    int pending = 0;
    if (c->in && c->in_len == 0 && c->in_cap >= HTTPD_IN_MIN) return;
    if (ioctl(c->fd, FIONREAD, &pending) != 0 || pending <= 0) return;
    size_t room = c->in ? c->in_cap - c->in_len : 0;
    if ((size_t)pending <= room) return;
    size_t want = c->in_len - c->off + (size_t)pending;
    if (want > c->h->in_limit) want = c->h->in_limit;
    size_t cap = c->in && c->in_cap >= want ? c->in_cap : grow_cap(c, want);
    (void)buf_move(c, cap);
}

/* One readv(2) into the buffer's free room and the scratch past it.
 * Returns the byte count, 0 at EOF, -1 on error or would-block (errno). */
static ssize_t read_into(hconn *c, size_t *room)
{
    struct iovec iov[2];
    int n = 0;
    *room = c->in ? c->in_cap - c->in_len : 0;
    if (*room) iov[n++] = (struct iovec){c->in + c->in_len, *room};
    iov[n++] = (struct iovec){c->h->scratch, HTTPD_READ_SZ};
    return readv(c->fd, iov, n);
}

static void read_some(hconn *c)
{
    for (int i = 0; i < 4; i++) {
        if (c->in && c->in_len == c->in_cap && c->off > 0 && buf_move(c, c->in_cap) != 0)
            return;
        fit_pending(c);
        size_t room;
        ssize_t n = read_into(c, &room);
        if (n == 0) {
            on_eof(c);
            return;
        }
        if (n < 0) {
            if (!would_block()) httpd_conn_close(c);
            return;
        }
        size_t direct = (size_t)n < room ? (size_t)n : room;
        c->in_len += direct;
        if ((size_t)n > direct) {
            int rc = append_input(c, c->h->scratch, (size_t)n - direct);
            if (rc == -2) {
                (void)fail(c, c->state == HC_HEAD ? 431 : 413);
                return;
            }
            if (rc == -1) {
                (void)over_budget(c);
                return;
            }
        }
        if (process(c) < 0) return;
        if ((size_t)n < room + HTTPD_READ_SZ || !c->rd_on || c->state == HC_BUSY || c->closing)
            break;
    }
    if (c->fd >= 0) rd_arm(c);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    hconn *c = arg;
    (void)fd;
    if (what & EV_TIMEOUT) {
        int head = c->head_start_ns && c->state == HC_HEAD;
        int body = c->head_start_ns && (c->state == HC_BODY || c->state == HC_CHUNKED);
        if (head) HTTPD_COUNT(c->h, head_timeouts, head_timeouts);
        if (body) HTTPD_COUNT(c->h, body_timeouts, body_timeouts);
        LOG_DEBUG("closing a connection: %s", c->state == HC_LINGER ? "linger over"
                                              : head ? "request head deadline"
                                              : body ? "request body slower than min_body_rate"
                                                     : "read timeout");
        httpd_conn_close(c);
        return;
    }
    if (c->state == HC_LINGER) {
        linger_read(c);
        return;
    }
    if (c->kick) {
        c->kick = 0;
        if (process(c) < 0) return;
        if (!c->rd_on || c->state == HC_BUSY || c->closing || c->fd < 0) return;
    }
    read_some(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    hconn *c = arg;
    if (what & EV_TIMEOUT) {
        LOG_DEBUG("closing a connection: write timeout");
        httpd_conn_close(c);
        return;
    }
    ssize_t w = send(fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (w < 0 && !would_block()) {
        httpd_conn_close(c);
        return;
    }
    if (w > 0) c->out_off += (size_t)w;
    if (c->out_off < c->out_len) return;
    c->out_off = c->out_len = 0;
    if (c->out_cap > 16384) out_drop(c);
    event_del(&c->wr);
    c->wr_on = 0;
    if (c->state == HC_BUSY) return;
    if (c->closing) (void)finish(c);
    else if (!c->rd_on) kick(c);
}
