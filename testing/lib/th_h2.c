/* th_h2.c — see th_h2.h. */
#include "testing/lib/th_h2.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testing/lib/th_proc.h"

const char th_h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

typedef struct th_stream {
    int32_t id;
    th_h2_result r;
    buf out;                 /* request body not yet sent */
    size_t off;
    int end;                 /* END_STREAM after out */
} th_stream;

struct th_h2 {
    int fd;
    nghttp2_session *ng;     /* NULL in raw mode */
    th_stream *st;
    size_t n_st, cap_st;
    buf pend;                /* bytes not yet written to the socket */
    buf rawin;               /* raw mode: bytes read, for frame parsing */
    size_t raw_off;
    int eof;
    int goaway;
    uint32_t goaway_code;
    int pongs;
};

static th_stream *find(const th_h2 *h, int32_t id)
{
    for (size_t i = 0; i < h->n_st; i++)
        if (h->st[i].id == id) return &h->st[i];
    return NULL;
}

static th_stream *add_stream(th_h2 *h)
{
    if (h->n_st == h->cap_st) {
        size_t nc = h->cap_st ? 2 * h->cap_st : 64;
        th_stream *n = realloc(h->st, nc * sizeof *n);
        if (!n) return NULL;
        h->st = n;
        h->cap_st = nc;
    }
    th_stream *s = &h->st[h->n_st++];
    memset(s, 0, sizeof *s);
    s->r.grpc_status = -1;
    buf_init(&s->r.body, 1024 * 1024);
    buf_init(&s->out, 64 * 1024 * 1024);
    return s;
}

/* ---- socket ---- */

static int flush_pending(th_h2 *h)
{
    while (h->pend.len > 0) {
        ssize_t n = send(h->fd, h->pend.data, h->pend.len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (n <= 0) {
            h->eof = 1;
            return -1;
        }
        memmove(h->pend.data, h->pend.data + n, h->pend.len - (size_t)n);
        h->pend.len -= (size_t)n;
    }
    return 0;
}

int th_h2_send_raw(th_h2 *h, const void *data, size_t len)
{
    if (h->eof) return -1;
    if (buf_append(&h->pend, data, len) != 0) return -1;
    return flush_pending(h);
}

static void parse_raw(th_h2 *h)
{
    const uint8_t *p = h->rawin.data;
    while (h->rawin.len - h->raw_off >= 9) {
        const uint8_t *f = p + h->raw_off;
        size_t len = (size_t)f[0] << 16 | (size_t)f[1] << 8 | f[2];
        if (h->rawin.len - h->raw_off < 9 + len) return;
        if (f[3] == NGHTTP2_GOAWAY && len >= 8) {
            h->goaway = 1;
            h->goaway_code = (uint32_t)f[13] << 24 | (uint32_t)f[14] << 16 |
                             (uint32_t)f[15] << 8 | f[16];
        }
        h->raw_off += 9 + len;
    }
}

/* One poll round of at most ms: writes what is pending, reads what came. */
static void io_round(th_h2 *h, int ms)
{
    if (h->ng) {
        const uint8_t *data;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(h->ng, &data)) > 0)
            if (buf_append(&h->pend, data, (size_t)n) != 0) break;
    }
    if (flush_pending(h) != 0) return;
    struct pollfd pfd = {h->fd, POLLIN | (h->pend.len ? POLLOUT : 0), 0};
    if (poll(&pfd, 1, ms) <= 0) return;
    if (pfd.revents & POLLOUT) flush_pending(h);
    if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR))) return;
    uint8_t tmp[65536];
    ssize_t n = recv(h->fd, tmp, sizeof tmp, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        h->eof = 1;
        return;
    }
    if (!h->ng) {
        if (h->rawin.len + (size_t)n > h->rawin.max) { /* keep the tail only */
            h->rawin.len = 0;
            h->raw_off = 0;
        }
        buf_append(&h->rawin, tmp, (size_t)n);
        parse_raw(h);
    } else if (nghttp2_session_mem_recv(h->ng, tmp, (size_t)n) < 0) {
        h->eof = 1;
    }
}

/* ---- nghttp2 callbacks ---- */

static void copy_value(char *dst, size_t cap, const uint8_t *v, size_t n)
{
    if (n >= cap) n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)ng;
    (void)flags;
    th_stream *s = find(user, f->hd.stream_id);
    if (!s) return 0;
    char v[1024];
    copy_value(v, sizeof v, value, vlen);
#define IS(n) (nlen == sizeof(n) - 1 && memcmp(name, n, nlen) == 0)
    if (IS(":status")) s->r.http_status = atoi(v);
    else if (IS("grpc-status")) s->r.grpc_status = atoi(v);
    else if (IS("grpc-message")) copy_value(s->r.grpc_message, sizeof s->r.grpc_message, value, vlen);
    else if (IS("grpc-status-details-bin"))
        copy_value(s->r.details_b64, sizeof s->r.details_b64, value, vlen);
    else if (IS("content-type")) copy_value(s->r.content_type, sizeof s->r.content_type, value, vlen);
    else if (IS("grpc-accept-encoding"))
        copy_value(s->r.accept_encoding, sizeof s->r.accept_encoding, value, vlen);
#undef IS
    return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                   size_t len, void *user)
{
    (void)ng;
    (void)flags;
    th_stream *s = find(user, id);
    if (s) buf_append(&s->r.body, data, len);
    return 0;
}

static int on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
    (void)ng;
    th_stream *s = find(user, id);
    if (s) {
        s->r.closed = 1;
        if (code != NGHTTP2_NO_ERROR) {
            s->r.reset = 1;
            s->r.rst_code = code;
        }
    }
    return 0;
}

static int on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    (void)ng;
    th_h2 *h = user;
    if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) {
        h->pongs++;
    } else if (f->hd.type == NGHTTP2_GOAWAY) {
        h->goaway = 1;
        h->goaway_code = f->goaway.error_code;
    } else if (f->hd.type == NGHTTP2_RST_STREAM) {
        th_stream *s = find(h, f->hd.stream_id);
        if (s) {
            s->r.reset = 1;
            s->r.rst_code = f->rst_stream.error_code;
        }
    }
    return 0;
}

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *out, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)ng;
    (void)src;
    th_stream *s = find(user, id);
    if (!s) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    size_t k = s->out.len - s->off;
    if (k > len) k = len;
    if (k) memcpy(out, s->out.data + s->off, k);
    s->off += k;
    if (s->off == s->out.len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (!s->end) *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        buf_reset(&s->out);
        s->off = 0;
    }
    return (ssize_t)k;
}

static int start_session(th_h2 *h)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0) return -1;
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
    int rc = nghttp2_session_client_new(&h->ng, cb, h);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0) return -1;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
    return nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, 2) == 0 ? 0 : -1;
}

static void release(void *obj) { th_h2_free(obj); }

th_h2 *th_h2_connect(uint16_t port, int session)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    th_h2 *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    buf_init(&h->pend, 256 * 1024 * 1024);
    buf_init(&h->rawin, 4 * 1024 * 1024);
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0 || connect(h->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        printf("# th_h2: cannot connect to 127.0.0.1:%u: %s\n", (unsigned)port, strerror(errno));
        th_h2_free(h);
        return NULL;
    }
    int one = 1;
    setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(h->fd, F_SETFL, fcntl(h->fd, F_GETFL) | O_NONBLOCK);
    if (session && start_session(h) != 0) {
        th_h2_free(h);
        return NULL;
    }
    th_res_add(release, h);
    return h;
}

void th_h2_free(th_h2 *h)
{
    if (!h) return;
    th_res_forget(h);
    if (h->fd >= 0) close(h->fd);
    nghttp2_session_del(h->ng);
    for (size_t i = 0; i < h->n_st; i++) {
        buf_destroy(&h->st[i].r.body);
        buf_destroy(&h->st[i].out);
    }
    free(h->st);
    buf_destroy(&h->pend);
    buf_destroy(&h->rawin);
    free(h);
}

/* ---- streams ---- */

#define NVS(n, v) { (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE }

int32_t th_h2_start(th_h2 *h, const char *path, const char *ctype, const char *const *extra,
                    const uint8_t *body, size_t len, int end)
{
    nghttp2_nv nv[24];
    size_t n = 0;
    if (!h->ng) return -1;
    nv[n++] = (nghttp2_nv)NVS(":method", "POST");
    nv[n++] = (nghttp2_nv)NVS(":scheme", "http");
    nv[n++] = (nghttp2_nv)NVS(":authority", "127.0.0.1");
    nv[n++] = (nghttp2_nv)NVS(":path", path);
    if (ctype) nv[n++] = (nghttp2_nv)NVS("content-type", ctype);
    nv[n++] = (nghttp2_nv)NVS("te", "trailers");
    for (size_t i = 0; extra && extra[i] && extra[i + 1] && n < 24; i += 2)
        nv[n++] = (nghttp2_nv)NVS(extra[i], extra[i + 1]);
    th_stream *s = add_stream(h);
    if (!s) return -1;
    s->end = end;
    if (len && buf_append(&s->out, body, len) != 0) return -1;
    nghttp2_data_provider prd = {.read_callback = read_body};
    int32_t id = nghttp2_submit_request(h->ng, NULL, nv, n, (len || end) ? &prd : NULL, NULL);
    if (id < 0) {
        h->n_st--;
        buf_destroy(&s->r.body);
        buf_destroy(&s->out);
        return -1;
    }
    s->id = id;
    io_round(h, 0);
    return id;
}

int32_t th_h2_grpc(th_h2 *h, const char *path, const char *encoding, int compressed,
                   const uint8_t *msg, size_t len)
{
    const char *extra[] = {"grpc-encoding", encoding, NULL};
    uint8_t *framed = malloc(len + 5);
    if (!framed) return -1;
    framed[0] = (uint8_t)compressed;
    framed[1] = (uint8_t)(len >> 24);
    framed[2] = (uint8_t)(len >> 16);
    framed[3] = (uint8_t)(len >> 8);
    framed[4] = (uint8_t)len;
    if (len) memcpy(framed + 5, msg, len);
    int32_t id = th_h2_start(h, path, "application/grpc", encoding ? extra : NULL, framed,
                             len + 5, 1);
    free(framed);
    return id;
}

int th_h2_send_data(th_h2 *h, int32_t id, const uint8_t *data, size_t len, int end)
{
    th_stream *s = find(h, id);
    if (!s || !h->ng) return -1;
    if (buf_append(&s->out, data, len) != 0) return -1;
    s->end = end;
    nghttp2_data_provider prd = {.read_callback = read_body};
    if (nghttp2_submit_data(h->ng, end ? NGHTTP2_FLAG_END_STREAM : NGHTTP2_FLAG_NONE, id, &prd) != 0)
        return -1;
    io_round(h, 0);
    return 0;
}

int th_h2_reset(th_h2 *h, int32_t id)
{
    if (!h->ng || nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL) != 0)
        return -1;
    io_round(h, 0);
    return 0;
}

static int all_closed(const th_h2 *h)
{
    for (size_t i = 0; i < h->n_st; i++)
        if (!h->st[i].r.closed) return 0;
    return 1;
}

int th_h2_wait(th_h2 *h, int timeout_ms)
{
    int64_t deadline = th_now_ms() + th_slow_ms(timeout_ms);
    while (!all_closed(h) && !h->eof && th_now_ms() < deadline) io_round(h, 20);
    return all_closed(h) ? 0 : -1;
}

int th_h2_wait_end(th_h2 *h, int timeout_ms)
{
    int64_t deadline = th_now_ms() + th_slow_ms(timeout_ms);
    while (!h->eof && !h->goaway && th_now_ms() < deadline) io_round(h, 20);
    return h->eof || h->goaway;
}

int th_h2_raw_wait_close(th_h2 *h, int timeout_ms)
{
    int64_t deadline = th_now_ms() + th_slow_ms(timeout_ms);
    while (!h->eof && th_now_ms() < deadline) io_round(h, 20);
    return h->eof;
}

const th_h2_result *th_h2_get(const th_h2 *h, int32_t id)
{
    const th_stream *s = find(h, id);
    return s ? &s->r : NULL;
}

int th_h2_goaway(const th_h2 *h, uint32_t *code)
{
    if (code) *code = h->goaway_code;
    return h->goaway;
}

int th_h2_eof(const th_h2 *h) { return h->eof; }

int th_h2_frame(buf *out, uint8_t type, uint8_t flags, uint32_t stream, const void *payload,
                size_t len)
{
    uint8_t hd[9] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, type, flags,
                     (uint8_t)(stream >> 24 & 0x7f), (uint8_t)(stream >> 16),
                     (uint8_t)(stream >> 8), (uint8_t)stream};
    int rc = buf_append(out, hd, 9);
    if (rc == 0 && len) rc = buf_append(out, payload, len);
    return rc;
}

int th_h2_ping(th_h2 *h)
{
    if (!h->ng || nghttp2_submit_ping(h->ng, NGHTTP2_FLAG_NONE, NULL) != 0) return -1;
    io_round(h, 0);
    return 0;
}

int th_h2_pongs(const th_h2 *h) { return h->pongs; }
