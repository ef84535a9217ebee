/* floor_fwd.c — the floor under spillway's CPU figure: a bare HTTP/1.1
 * forwarder that does only the network part of a pass-through.
 *
 *   floor_fwd [--handoff] UPSTREAM_PORT [READY_FILE]
 *
 * Listens on 127.0.0.1:0 (the port goes to READY_FILE as "http=ADDR:PORT",
 * or to stdout), and for each complete request (head + Content-Length
 * body) answers 200 at once and writes the request, unchanged, to one
 * keep-alive connection to 127.0.0.1:UPSTREAM_PORT, whose answers it reads
 * and discards. One thread, one epoll set, TCP_NODELAY, a recv per
 * readable event and a send per message: no parsing beyond the framing, no
 * decoding, classification, queue, batching, retries or thread hand-off.
 * What it costs per request at a rate is what the kernel's part of the
 * same traffic costs on this machine (testing/bench/floor.sh runs it
 * beside spillway). With --handoff the upstream side runs on a second
 * thread, as in spillway: each request is copied into a single-producer
 * ring and the thread is woken through an eventfd (edge-triggered, never
 * read), so the difference between the two modes is the cost of handing
 * requests between threads. A benchmark tool, not a proxy: no chunked
 * bodies, one upstream connection, exits when the upstream closes or on
 * SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define FWD_BUF (1u << 20) /* largest request */

typedef struct fconn {
    int fd;
    int upstream;
    char *b;
    size_t len;
} fconn;

/* --handoff: requests from the receiving thread to the upstream thread. */
#define RING 1024
static struct {
    char *p[RING];
    size_t n[RING];
    _Atomic unsigned head, tail; /* head: written by the producer */
    int efd;
} ring = {.efd = -1};

static const char OK[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                         "Content-Length: 0\r\n\r\n";

/* Length of the complete message at the start of c->b, or 0. */
static size_t message_len(const fconn *c)
{
    const char *e = memmem(c->b, c->len, "\r\n\r\n", 4);
    if (!e) return 0;
    size_t head = (size_t)(e - c->b) + 4, body = 0;
    for (const char *p = c->b; p + 15 < e; p++) {
        if ((p == c->b || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
            body = strtoul(p + 15, NULL, 10);
            break;
        }
    }
    return c->len >= head + body ? head + body : 0;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static fconn *conn_new(int fd, int upstream)
{
    int one = 1;
    fconn *c = calloc(1, sizeof *c);
    if (!c || !(c->b = malloc(FWD_BUF))) {
        free(c);
        return NULL;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->upstream = upstream;
    return c;
}

static void conn_free(int ep, fconn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->b);
    free(c);
}

/* Hands m bytes at p to the upstream thread (or writes them upstream
 * now without --handoff). 0 or -1. */
static int forward(int up, const char *p, size_t m)
{
    if (ring.efd < 0) return send_all(up, p, m);
    unsigned h = atomic_load_explicit(&ring.head, memory_order_relaxed);
    if (h - atomic_load_explicit(&ring.tail, memory_order_acquire) == RING) return -1;
    char *copy = malloc(m);
    if (!copy) return -1;
    memcpy(copy, p, m);
    ring.p[h % RING] = copy;
    ring.n[h % RING] = m;
    atomic_store_explicit(&ring.head, h + 1, memory_order_release);
    uint64_t one = 1;
    return write(ring.efd, &one, sizeof one) == sizeof one ? 0 : -1;
}

/* --handoff: the upstream thread writes what the ring holds and reads the
 * answers. */
static void *upstream_main(void *arg)
{
    int up = *(int *)arg, ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = ring.efd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ring.efd, &ev) != 0) exit(1);
    ev = (struct epoll_event){.events = EPOLLIN, .data.fd = up};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, up, &ev) != 0) exit(1);
    static char answers[65536];
    for (;;) {
        struct epoll_event e[4];
        int n = epoll_wait(ep, e, 4, -1);
        if (n < 0 && errno != EINTR) exit(1);
        for (int i = 0; i < n; i++) {
            if (e[i].data.fd == up) {
                ssize_t r = recv(up, answers, sizeof answers, 0);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) exit(0);
                continue;
            }
            unsigned t = atomic_load_explicit(&ring.tail, memory_order_relaxed);
            while (t != atomic_load_explicit(&ring.head, memory_order_acquire)) {
                if (send_all(up, ring.p[t % RING], ring.n[t % RING]) != 0) exit(0);
                free(ring.p[t % RING]);
                atomic_store_explicit(&ring.tail, ++t, memory_order_release);
            }
        }
    }
}

/* 0, or -1: the upstream is gone. */
static int on_readable(int ep, fconn *c, int up)
{
    ssize_t r = recv(c->fd, c->b + c->len, FWD_BUF - c->len, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    if (r <= 0 || (size_t)r == FWD_BUF - c->len) { /* closed, failed, or too large */
        if (c->upstream) return -1;
        conn_free(ep, c);
        return 0;
    }
    c->len += (size_t)r;
    size_t m;
    while ((m = message_len(c)) > 0) {
        if (!c->upstream && (send_all(c->fd, OK, sizeof OK - 1) != 0 ||
                             forward(up, c->b, m) != 0))
            return -1;
        memmove(c->b, c->b + m, c->len - m);
        c->len -= m;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int handoff = argc > 1 && strcmp(argv[1], "--handoff") == 0;
    argv += handoff;
    argc -= handoff;
    if (argc < 2) {
        fprintf(stderr, "usage: floor_fwd [--handoff] UPSTREAM_PORT [READY_FILE]\n");
        return 2;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in u = a;
    u.sin_port = htons((uint16_t)atoi(argv[1]));
    socklen_t al = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int up = socket(AF_INET, SOCK_STREAM, 0);
    int ep = epoll_create1(0);
    if (l < 0 || up < 0 || ep < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(l, 64) != 0 || getsockname(l, (struct sockaddr *)&a, &al) != 0 ||
        connect(up, (struct sockaddr *)&u, sizeof u) != 0) {
        perror("floor_fwd");
        return 1;
    }
    int one = 1;
    (void)setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) != 0) return 1;
    pthread_t th;
    if (handoff) {
        ring.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (ring.efd < 0 || pthread_create(&th, NULL, upstream_main, &up) != 0) return 1;
    } else {
        fconn *upc = conn_new(up, 1);
        ev.data.ptr = upc;
        if (!upc || epoll_ctl(ep, EPOLL_CTL_ADD, up, &ev) != 0) return 1;
    }
    FILE *ready = argc > 2 ? fopen(argv[2], "w") : stdout;
    if (!ready) return 1;
    fprintf(ready, "http=127.0.0.1:%u\n", (unsigned)ntohs(a.sin_port));
    if (ready != stdout) fclose(ready);
    else fflush(stdout);
    for (;;) {
        struct epoll_event e[16];
        int n = epoll_wait(ep, e, 16, -1);
        if (n < 0 && errno != EINTR) return 1;
        for (int i = 0; i < n; i++) {
            fconn *c = e[i].data.ptr;
            if (c) {
                if (on_readable(ep, c, up) != 0) return 0;
                continue;
            }
            int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK);
            fconn *nc = fd >= 0 ? conn_new(fd, 0) : NULL;
            struct epoll_event ce = {.events = EPOLLIN, .data.ptr = nc};
            if (nc && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce) != 0) conn_free(ep, nc);
            else if (!nc && fd >= 0) close(fd);
        }
    }
}
