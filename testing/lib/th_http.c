/* th_http.c — see th_http.h. Non-blocking socket, every wait through poll()
 * with the request's deadline. */
#include "testing/lib/th_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/buf.h"
#include "testing/lib/th_proc.h"

#define TH_HTTP_MAX (256u << 20)

struct th_http {
    uint16_t port;
    int tls;
    int timeout_ms;
    int fd;
    int used;          /* a response was read on this connection */
    SSL_CTX *ctx;
    SSL *ssl;
    buf in;            /* received, not yet consumed */
    th_resp resp;
    char err[256];
};

static void th_http_seterr(th_http *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void th_http_seterr(th_http *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

static void th_resp_clear(th_resp *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static void th_http_release(void *p) { th_http_free(p); }

th_http *th_http_new(uint16_t port, int tls, int timeout_ms)
{
    th_http *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->port = port;
    c->tls = tls;
    c->timeout_ms = th_slow_ms(timeout_ms);
    c->fd = -1;
    buf_init(&c->in, TH_HTTP_MAX);
    th_res_add(th_http_release, c);
    return c;
}

void th_http_disconnect(th_http *c)
{
    if (c->ssl) SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->used = 0;
    buf_reset(&c->in);
}

void th_http_free(th_http *c)
{
    if (!c) return;
    th_res_forget(c);
    th_http_disconnect(c);
    if (c->ctx) SSL_CTX_free(c->ctx);
    buf_destroy(&c->in);
    th_resp_clear(&c->resp);
    free(c);
}

const char *th_http_error(const th_http *c) { return c->err; }

/* Waits for readability (events POLLIN) or writability. 0 ready, -1 timeout. */
static int th_wait(th_http *c, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - th_now_ms();
        struct pollfd pfd = {c->fd, events, 0};
        if (left <= 0) break;
        int n = poll(&pfd, 1, (int)left);
        if (n > 0) return 0;
        if (n < 0 && errno != EINTR) break;
    }
    th_http_seterr(c, "timeout");
    return -1;
}

/* Waits as SSL asks after a WANT_READ/WANT_WRITE; -1 on other errors. */
static int th_ssl_wait(th_http *c, int rc, int64_t deadline)
{
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ) return th_wait(c, POLLIN, deadline);
    if (e == SSL_ERROR_WANT_WRITE) return th_wait(c, POLLOUT, deadline);
    th_http_seterr(c, "tls error %d", e);
    return -1;
}

static int th_tls_handshake(th_http *c, int64_t deadline)
{
    if (!c->ctx) {
        c->ctx = SSL_CTX_new(TLS_client_method());
        if (!c->ctx) return -1;
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    }
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) return -1;
    for (;;) {
        int rc = SSL_connect(c->ssl);
        if (rc == 1) return 0;
        if (th_ssl_wait(c, rc, deadline) != 0) return -1;
    }
}

static int th_connect(th_http *c, int64_t deadline)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(c->port)};
    int one = 1, err = 0;
    socklen_t elen = sizeof(err);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) goto fail;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (errno != EINPROGRESS) goto fail;
        if (th_wait(c, POLLOUT, deadline) != 0) goto fail;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err) {
            errno = err;
            goto fail;
        }
    }
    if (c->tls && th_tls_handshake(c, deadline) != 0) goto fail;
    return 0;
fail:
    if (!c->err[0]) th_http_seterr(c, "connect :%u: %s", c->port, strerror(errno));
    th_http_disconnect(c);
    return -1;
}

/* Reads what is available into c->in. >0 bytes, 0 EOF, -1 error/timeout. */
static int th_read_more(th_http *c, int64_t deadline)
{
    char tmp[65536];
    for (;;) {
        ssize_t n;
        if (c->ssl) {
            int rc = SSL_read(c->ssl, tmp, sizeof(tmp));
            if (rc <= 0) {
                int e = SSL_get_error(c->ssl, rc);
                if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) return 0;
                if (th_ssl_wait(c, rc, deadline) != 0) return -1;
                continue;
            }
            n = rc;
        } else {
            n = recv(c->fd, tmp, sizeof(tmp), 0);
            if (n == 0) return 0;
            if (n < 0) {
                if (errno == ECONNRESET) return 0;
                if (errno != EAGAIN && errno != EINTR) {
                    th_http_seterr(c, "recv: %s", strerror(errno));
                    return -1;
                }
                if (th_wait(c, POLLIN, deadline) != 0) return -1;
                continue;
            }
        }
        if (buf_append(&c->in, tmp, (size_t)n) != 0) {
            th_http_seterr(c, "response too big");
            return -1;
        }
        return (int)n;
    }
}

/* Sends all of data. Plain sockets: stops early (returns 1) when the server
 * starts answering while body bytes are still unsent. 0 sent, -1 error. */
static int th_write_all(th_http *c, const uint8_t *data, size_t len, size_t early_from,
                        int64_t deadline)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n;
        if (c->ssl) {
            int rc = SSL_write(c->ssl, data + off, (int)(len - off > 1u << 30 ? 1u << 30 : len - off));
            if (rc <= 0) {
                if (th_ssl_wait(c, rc, deadline) != 0) return -1;
                continue;
            }
            off += (size_t)rc;
            continue;
        }
        struct pollfd pfd = {c->fd, POLLOUT | POLLIN, 0};
        int64_t left = deadline - th_now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
            th_http_seterr(c, "send timeout");
            return -1;
        }
        if ((pfd.revents & POLLIN) && off >= early_from) return 1;
        if (!(pfd.revents & (POLLOUT | POLLERR | POLLHUP))) continue;
        n = send(c->fd, data + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET) && off >= early_from) return 1;
        if (n < 0) {
            th_http_seterr(c, "send: %s", strerror(errno));
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

int th_http_send_raw(th_http *c, const void *data, size_t len)
{
    int64_t deadline = th_now_ms() + c->timeout_ms;
    c->err[0] = '\0';
    if (c->fd < 0 && th_connect(c, deadline) != 0) return -1;
    return th_write_all(c, data, len, len, deadline) < 0 ? -1 : 0;
}

/* Index of the first CRLF at or after pos, reading more as needed; -1. */
static long th_find_crlf(th_http *c, size_t pos, int64_t deadline)
{
    for (;;) {
        for (size_t i = pos; i + 1 < c->in.len; i++)
            if (c->in.data[i] == '\r' && c->in.data[i + 1] == '\n') return (long)i;
        if (th_read_more(c, deadline) <= 0) return -1;
    }
}

static int th_need(th_http *c, size_t n, int64_t deadline)
{
    while (c->in.len < n)
        if (th_read_more(c, deadline) <= 0) return -1;
    return 0;
}

/* Finds the end of the header block; returns the body offset or -1. */
static long th_read_head(th_http *c, int64_t deadline)
{
    size_t pos = 0;
    for (;;) {
        long i = th_find_crlf(c, pos, deadline);
        if (i < 0) return -1;
        if ((size_t)i == pos && pos > 0) return i + 2;
        pos = (size_t)i + 2;
    }
}

static int th_set_body(th_resp *r, const uint8_t *p, size_t n)
{
    r->body = malloc(n + 1);
    if (!r->body) return -1;
    if (n) memcpy(r->body, p, n);
    r->body[n] = 0;
    r->body_len = n;
    return 0;
}

static void th_consume(th_http *c, size_t n)
{
    memmove(c->in.data, c->in.data + n, c->in.len - n);
    c->in.len -= n;
}

static int th_read_chunked(th_http *c, size_t pos, int64_t deadline)
{
    buf body;
    int rc = -1;
    buf_init(&body, TH_HTTP_MAX);
    for (;;) {
        long eol = th_find_crlf(c, pos, deadline);
        if (eol < 0) goto done;
        unsigned long sz = strtoul((const char *)c->in.data + pos, NULL, 16);
        pos = (size_t)eol + 2;
        if (sz == 0) break;
        if (sz > TH_HTTP_MAX || th_need(c, pos + sz + 2, deadline) != 0) goto done;
        if (buf_append(&body, c->in.data + pos, sz) != 0) goto done;
        pos += sz + 2;
    }
    for (;;) { /* trailers until an empty line */
        long eol = th_find_crlf(c, pos, deadline);
        if (eol < 0) goto done;
        int empty = (size_t)eol == pos;
        pos = (size_t)eol + 2;
        if (empty) break;
    }
    rc = th_set_body(&c->resp, body.data, body.len);
    th_consume(c, pos);
done:
    buf_destroy(&body);
    return rc;
}

static int th_read_body(th_http *c, size_t pos, int no_body, int64_t deadline, int *close_after)
{
    char v[64];
    if (no_body) {
        th_consume(c, pos);
        return th_set_body(&c->resp, NULL, 0);
    }
    if (th_resp_header(&c->resp, "Transfer-Encoding", v, sizeof(v)) && strcasestr(v, "chunked"))
        return th_read_chunked(c, pos, deadline);
    if (th_resp_header(&c->resp, "Content-Length", v, sizeof(v))) {
        size_t n = strtoull(v, NULL, 10);
        if (n > TH_HTTP_MAX || th_need(c, pos + n, deadline) != 0) return -1;
        if (th_set_body(&c->resp, c->in.data + pos, n) != 0) return -1;
        th_consume(c, pos + n);
        return 0;
    }
    *close_after = 1; /* read to close */
    for (;;) {
        int n = th_read_more(c, deadline);
        if (n < 0) return -1;
        if (n == 0) break;
    }
    if (th_set_body(&c->resp, c->in.data + pos, c->in.len - pos) != 0) return -1;
    th_consume(c, c->in.len);
    return 0;
}

static int th_parse_head(th_http *c, size_t body_off)
{
    const char *p = (const char *)c->in.data;
    const char *eol = memchr(p, '\n', body_off);
    if (body_off < 12 || strncmp(p, "HTTP/1.", 7) != 0 || !eol) {
        th_http_seterr(c, "bad status line");
        return -1;
    }
    c->resp.status = atoi(p + 9);
    c->resp.head = strndup(eol + 1, body_off - (size_t)(eol + 1 - p));
    return c->resp.head ? 0 : -1;
}

/* Reads one response. is_head: response to HEAD. */
static const th_resp *th_read_resp(th_http *c, int is_head, int64_t deadline)
{
    char v[64];
    int close_after = 0;
    for (;;) {
        th_resp_clear(&c->resp);
        long body_off = th_read_head(c, deadline);
        if (body_off < 0) {
            if (!c->err[0]) th_http_seterr(c, "connection closed before a response");
            return NULL;
        }
        if (th_parse_head(c, (size_t)body_off) != 0) return NULL;
        int st = c->resp.status;
        int no_body = is_head || st / 100 == 1 || st == 204 || st == 304;
        if (th_read_body(c, (size_t)body_off, no_body, deadline, &close_after) != 0) {
            if (!c->err[0]) th_http_seterr(c, "truncated body");
            return NULL;
        }
        if (st / 100 != 1) break;
    }
    if (th_resp_header(&c->resp, "Connection", v, sizeof(v)) && strcasecmp(v, "close") == 0)
        close_after = 1;
    if (close_after) th_http_disconnect(c);
    else c->used = 1;
    return &c->resp;
}

const th_resp *th_http_read_response(th_http *c)
{
    c->err[0] = '\0';
    if (c->fd < 0) {
        th_http_seterr(c, "not connected");
        return NULL;
    }
    return th_read_resp(c, 0, th_now_ms() + c->timeout_ms);
}

static int th_build_req(buf *out, const char *method, const char *path, const char *headers,
                        const void *body, size_t len)
{
    int rc = buf_printf(out, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s", method, path,
                        headers ? headers : "");
    if (!rc && (len || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0))
        rc = buf_printf(out, "Content-Length: %zu\r\n", len);
    if (!rc) rc = buf_append_str(out, "\r\n");
    if (!rc) rc = buf_append(out, body, len);
    return rc;
}

static const th_resp *th_http_try(th_http *c, const buf *req, size_t head_len, int is_head,
                                  int *retry)
{
    int64_t deadline = th_now_ms() + c->timeout_ms;
    int reused;
    c->err[0] = '\0';
    if (c->fd < 0 && th_connect(c, deadline) != 0) return NULL;
    reused = c->used;
    buf_reset(&c->in);
    int w = th_write_all(c, req->data, req->len, head_len, deadline);
    if (w < 0) {
        *retry = reused;
        th_http_disconnect(c);
        return NULL;
    }
    const th_resp *r = th_read_resp(c, is_head, deadline);
    if (r && w == 1) th_http_disconnect(c); /* body only partly sent */
    if (!r) {
        *retry = reused && c->in.len == 0;
        th_http_disconnect(c);
    }
    return r;
}

const th_resp *th_http_request(th_http *c, const char *method, const char *path,
                               const char *headers, const void *body, size_t len)
{
    buf req;
    const th_resp *r = NULL;
    int retry = 0;
    buf_init(&req, TH_HTTP_MAX);
    if (th_build_req(&req, method, path, headers, body, len) != 0) {
        th_http_seterr(c, "request too big");
        goto done;
    }
    int is_head = strcmp(method, "HEAD") == 0;
    r = th_http_try(c, &req, req.len - len, is_head, &retry);
    if (!r && retry) r = th_http_try(c, &req, req.len - len, is_head, &retry);
done:
    buf_destroy(&req);
    return r;
}

long th_http_wait_closed(th_http *c, int timeout_ms)
{
    int64_t start = th_now_ms(), deadline = start + timeout_ms;
    if (c->fd < 0) return 0;
    for (;;) {
        int n = th_read_more(c, deadline);
        buf_reset(&c->in);
        if (n == 0) {
            th_http_disconnect(c);
            return (long)(th_now_ms() - start);
        }
        if (n < 0) {
            if (th_now_ms() >= deadline) return -1;
            th_http_disconnect(c);
            return (long)(th_now_ms() - start);
        }
    }
}

int th_resp_header(const th_resp *r, const char *name, char *out, size_t len)
{
    size_t nlen = strlen(name);
    const char *line = r->head;
    while (line && *line) {
        const char *eol = strstr(line, "\r\n");
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        if (n > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ' || *v == '\t') v++;
            size_t vn = (size_t)(line + n - v);
            while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t')) vn--;
            snprintf(out, len, "%.*s", (int)vn, v);
            return 1;
        }
        line = eol ? eol + 2 : NULL;
    }
    return 0;
}
