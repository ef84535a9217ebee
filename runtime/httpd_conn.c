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
#include <sys/socket.h>
#include <unistd.h>

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
    hconn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->h = h;
    c->fd = fd;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (event_assign(&c->rd, h->base, fd, EV_READ | EV_PERSIST, on_read, c) != 0 ||
        event_assign(&c->wr, h->base, fd, EV_WRITE | EV_PERSIST, on_write, c) != 0) {
        free(c);
        return NULL;
    }
    rd_on(c);
    if (!c->rd_on) {
        free(c);
        return NULL;
    }
    c->next = h->conns;
    if (h->conns) h->conns->prev = c;
    h->conns = c;
    h->nconns++;
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
    if (c->prev) c->prev->next = c->next;
    else c->h->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c->in);
    free(c->out);
    free(c);
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
    uint8_t *p = realloc(c->out, cap);
    if (!p) return -1;
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
    uint8_t tmp[8192];
    uint8_t *p = c->in_cap >= sizeof tmp ? c->in : tmp;
    size_t n = c->in_cap >= sizeof tmp ? c->in_cap : sizeof tmp;
    ssize_t r = read(c->fd, p, n);
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
 * bytes (the same one when cap == in_cap), rebasing the parsed head. */
static int buf_move(hconn *c, size_t cap)
{
    uint8_t *old = c->in, *nb = cap == c->in_cap ? old : malloc(cap);
    size_t n = c->in_len - c->off;
    if (!nb) return -1;
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

/* Makes the buffer hold at least `need` bytes from the request start. */
static int buf_fit(hconn *c, size_t need)
{
    if (c->in && c->in_cap - c->off >= need) return 0;
    if (c->in && c->in_cap >= need) return buf_move(c, c->in_cap);
    size_t cap = need > HTTPD_READ_SZ ? need : HTTPD_READ_SZ;
    if (!c->in) {
        c->in = malloc(cap);
        if (!c->in) return -1;
        c->in_cap = cap;
        return 0;
    }
    return buf_move(c, cap);
}

/* Room for a read: compacts, then grows up to in_limit. */
static int ensure_room(hconn *c)
{
    if (!c->in) return buf_fit(c, HTTPD_READ_SZ);
    if (c->in_len < c->in_cap) return 0;
    if (c->off > 0) return buf_move(c, c->in_cap);
    if (c->in_cap >= c->h->in_limit) return -1;
    size_t cap = c->in_cap * 2 < c->h->in_limit ? c->in_cap * 2 : c->h->in_limit;
    return buf_move(c, cap);
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
        if (c->in_cap > HTTPD_READ_SZ) {
            free(c->in);
            c->in = NULL;
            c->in_cap = 0;
        }
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
    if (buf_fit(c, end + (size_t)cl) != 0) return fail(c, 503);
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
    if (end == 0) return avail > o->max_head ? fail(c, 431) : 1;
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

static void read_some(hconn *c)
{
    for (int i = 0; i < 4; i++) {
        if (ensure_room(c) != 0) {
            (void)fail(c, c->state == HC_HEAD ? 431 : 413);
            return;
        }
        size_t want = c->in_cap - c->in_len;
        ssize_t n = read(c->fd, c->in + c->in_len, want);
        if (n == 0) {
            on_eof(c);
            return;
        }
        if (n < 0) {
            if (!would_block()) httpd_conn_close(c);
            return;
        }
        c->in_len += (size_t)n;
        if (process(c) < 0) return;
        if ((size_t)n < want || !c->rd_on || c->state == HC_BUSY || c->closing) return;
    }
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    hconn *c = arg;
    (void)fd;
    if (what & EV_TIMEOUT) {
        LOG_DEBUG("closing a connection: %s", c->state == HC_LINGER ? "linger over"
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
    event_del(&c->wr);
    c->wr_on = 0;
    if (c->state == HC_BUSY) return;
    if (c->closing) (void)finish(c);
    else if (!c->rd_on) kick(c);
}
