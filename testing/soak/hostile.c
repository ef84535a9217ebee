/* hostile.c — a light, bounded mix of hostile OTLP/HTTP clients for
 * `make soak` (testing/soak/soak.sh).
 *
 *   soak-hostile --target HOST:PORT --duration SECONDS [--loris N] [--slow N]
 *
 * One thread per kind, each ending at the deadline:
 *   loris      N connections (default 4) that send a request line and then
 *              one header line every 3 s, never finishing the header block;
 *              reopened when the server closes them
 *   slow       N connections (default 2) that announce a 64 KiB body and
 *              send 16 bytes of it per second; reopened when closed
 *   bomb       every 2 s a 32 MiB gzip bomb (~32 KB on the wire) to /v1/traces
 *   malformed  every 500 ms one of: a protobuf body that does not decode,
 *              broken JSON, a garbage request line, a negative
 *              Content-Length, a TLS ClientHello-like record, an unknown path
 *   abort      every 500 ms a request that announces 32 KiB, sends 1 KiB and
 *              resets the connection
 * None of them sends a valid request, so nothing they send may ever be
 * accepted: a 2xx to any of them is counted as `accepted` and the soak
 * fails on it. At the end one line of key=value counts goes to stdout:
 * per kind, attempts and answers by status class, closes without answer.
 * Every socket is on 127.0.0.1 (or the given host); nothing is retried
 * faster than the periods above, so the load stays light.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

enum { K_LORIS, K_SLOW, K_BOMB, K_MALFORMED, K_ABORT, K_COUNT };
static const char *const KIND[K_COUNT] = {"loris", "slow", "bomb", "malformed", "abort"};

typedef struct counts {
    atomic_ulong attempts, s2xx, s4xx, s5xx, other, closed, connect_failed;
} counts;

typedef struct ctx {
    struct sockaddr_in addr;
    char host[64];
    double deadline;   /* CLOCK_MONOTONIC seconds */
    unsigned loris, slow;
    unsigned char *bomb; /* gzip body; owned by main */
    size_t bomb_len;
    counts c[K_COUNT];
} ctx;

typedef struct job {
    ctx *x;
    int kind;
} job;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* A connected socket with a receive timeout, or -1 (counted). */
static int dial(ctx *x, counts *c, double rcv_timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) goto fail;
    struct timeval tv = {(time_t)rcv_timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&x->addr, sizeof x->addr) != 0) goto fail;
    return fd;
fail:
    if (fd >= 0) close(fd);
    c->connect_failed++;
    return -1;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads the status line's code (waits up to the socket's timeout) and
 * counts it; a close or timeout without an answer counts as closed. */
static void read_status(int fd, counts *c)
{
    char buf[256];
    size_t len = 0;
    while (len < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (r <= 0) break;
        len += (size_t)r;
        if (memchr(buf, '\n', len)) break;
    }
    buf[len] = 0;
    int code = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1) {
        c->closed++;
        return;
    }
    if (code >= 200 && code < 300) c->s2xx++;
    else if (code >= 400 && code < 500) c->s4xx++;
    else if (code >= 500 && code < 600) c->s5xx++;
    else c->other++;
}

/* 1 when the server has closed fd (or reset it), 0 while it is open. */
static int peer_closed(int fd)
{
    char b[512];
    ssize_t r = recv(fd, b, sizeof b, MSG_DONTWAIT);
    if (r == 0) return 1;
    if (r < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    return 1; /* an answer (e.g. 408): the server is done with it */
}

/* loris and slow: n long-lived connections fed a little at a time. */
static void trickle(ctx *x, int kind, unsigned n)
{
    counts *c = &x->c[kind];
    int fds[64];
    double next[64];
    unsigned sent[64];
    if (n > 64) n = 64;
    for (unsigned i = 0; i < n; i++) fds[i] = -1;
    while (now_s() < x->deadline) {
        double t = now_s();
        for (unsigned i = 0; i < n; i++) {
            if (fds[i] >= 0 && peer_closed(fds[i])) {
                c->closed++;
                close(fds[i]);
                fds[i] = -1;
            }
            if (fds[i] < 0) {
                c->attempts++;
                fds[i] = dial(x, c, 1);
                if (fds[i] < 0) continue;
                char head[256];
                int hl = kind == K_LORIS
                             ? snprintf(head, sizeof head, "POST /v1/traces HTTP/1.1\r\nHost: %s\r\n", x->host)
                             : snprintf(head, sizeof head,
                                        "POST /v1/traces HTTP/1.1\r\nHost: %s\r\n"
                                        "Content-Type: application/x-protobuf\r\nContent-Length: 65536\r\n\r\n",
                                        x->host);
                send_all(fds[i], head, (size_t)hl);
                sent[i] = 0;
                next[i] = t + (kind == K_LORIS ? 3.0 : 1.0);
            } else if (t >= next[i]) {
                char piece[32];
                int pl = kind == K_LORIS ? snprintf(piece, sizeof piece, "X-Loris-%u: a\r\n", sent[i])
                                         : snprintf(piece, sizeof piece, "%s", "\xff\xff\xff\xff\xff\xff\xff\xff"
                                                                               "\xff\xff\xff\xff\xff\xff\xff\xff");
                send_all(fds[i], piece, (size_t)pl);
                sent[i]++;
                next[i] = t + (kind == K_LORIS ? 3.0 : 1.0);
            }
        }
        nap(0.1);
    }
    for (unsigned i = 0; i < n; i++)
        if (fds[i] >= 0) close(fds[i]);
}

/* One complete request with head + body; counts the answer. */
static void one_request(ctx *x, counts *c, const char *head, size_t hl, const void *body, size_t bl)
{
    c->attempts++;
    int fd = dial(x, c, 5);
    if (fd < 0) return;
    if (send_all(fd, head, hl) == 0 && (bl == 0 || send_all(fd, body, bl) == 0)) read_status(fd, c);
    else c->closed++;
    close(fd);
}

static void bombs(ctx *x)
{
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "POST /v1/traces HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-protobuf\r\n"
                      "Content-Encoding: gzip\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      x->host, x->bomb_len);
    while (now_s() < x->deadline) {
        one_request(x, &x->c[K_BOMB], head, (size_t)hl, x->bomb, x->bomb_len);
        nap(2.0);
    }
}

static void malformed(ctx *x)
{
    static const char junk_pb[] = "\x0a\xff\xff\xff\xff\x0f\x12\x34";  /* length past the end */
    static const char junk_json[] = "{\"resourceSpans\":[{\"resource\":";
    static const char hello[] = "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03";
    char head[320];
    unsigned i = 0;
    while (now_s() < x->deadline) {
        int hl;
        const void *body = NULL;
        size_t bl = 0;
        switch (i++ % 6) {
        case 0:
            body = junk_pb, bl = sizeof junk_pb - 1;
            hl = snprintf(head, sizeof head, "POST /v1/traces HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                          "application/x-protobuf\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", x->host, bl);
            break;
        case 1:
            body = junk_json, bl = sizeof junk_json - 1;
            hl = snprintf(head, sizeof head, "POST /v1/traces HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                          "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", x->host, bl);
            break;
        case 2: hl = snprintf(head, sizeof head, "GARBAGE\x01\x02 / HTTP/9.9\r\n\r\n"); break;
        case 3:
            hl = snprintf(head, sizeof head, "POST /v1/traces HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                          "application/x-protobuf\r\nContent-Length: -1\r\n\r\n", x->host);
            break;
        case 4: hl = (int)sizeof hello - 1, memcpy(head, hello, sizeof hello - 1); break;
        default:
            hl = snprintf(head, sizeof head, "POST /v1/nothing HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\n"
                          "Connection: close\r\n\r\n", x->host);
            break;
        }
        one_request(x, &x->c[K_MALFORMED], head, (size_t)hl, body, bl);
        nap(0.5);
    }
}

static void aborts(ctx *x)
{
    counts *c = &x->c[K_ABORT];
    char head[256], body[1024];
    memset(body, 0x0a, sizeof body);
    int hl = snprintf(head, sizeof head, "POST /v1/traces HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                      "application/x-protobuf\r\nContent-Length: 32768\r\n\r\n", x->host);
    while (now_s() < x->deadline) {
        c->attempts++;
        int fd = dial(x, c, 1);
        if (fd >= 0) {
            send_all(fd, head, (size_t)hl);
            send_all(fd, body, sizeof body);
            struct linger lg = {1, 0}; /* close with a reset */
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close(fd);
            c->closed++;
        }
        nap(0.5);
    }
}

static void *run(void *arg)
{
    job *j = arg;
    switch (j->kind) {
    case K_LORIS: trickle(j->x, K_LORIS, j->x->loris); break;
    case K_SLOW: trickle(j->x, K_SLOW, j->x->slow); break;
    case K_BOMB: bombs(j->x); break;
    case K_MALFORMED: malformed(j->x); break;
    default: aborts(j->x); break;
    }
    return NULL;
}

/* gzip of n zero bytes into *out (malloc'd). 0 or -1. */
static int make_bomb(size_t n, unsigned char **out, size_t *len)
{
    z_stream z = {0};
    int rc = -1;
    static unsigned char zeros[1 << 16];
    size_t cap = n / 512 + 4096;
    unsigned char *o = malloc(cap);
    if (!o || deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY) != Z_OK) goto done;
    z.next_out = o;
    z.avail_out = (uInt)cap;
    for (size_t left = n; left > 0;) {
        size_t k = left < sizeof zeros ? left : sizeof zeros;
        z.next_in = zeros;
        z.avail_in = (uInt)k;
        left -= k;
        if (deflate(&z, left ? Z_NO_FLUSH : Z_FINISH) == Z_STREAM_ERROR || z.avail_out == 0) goto end;
    }
    *out = o;
    *len = cap - z.avail_out;
    o = NULL;
    rc = 0;
end:
    deflateEnd(&z);
done:
    free(o);
    return rc;
}

static int usage(void)
{
    fputs("usage: soak-hostile --target HOST:PORT --duration SECONDS [--loris N] [--slow N]\n"
          "A bounded mix of hostile OTLP/HTTP clients (slowloris, slow bodies, gzip bombs,\n"
          "malformed and aborted requests); prints key=value counts at the end.\n", stderr);
    return 2;
}

int main(int argc, char **argv)
{
    ctx x = {.loris = 4, .slow = 2};
    const char *target = NULL;
    double dur = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--target")) target = argv[i + 1];
        else if (!strcmp(argv[i], "--duration")) dur = strtod(argv[i + 1], NULL);
        else if (!strcmp(argv[i], "--loris")) x.loris = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--slow")) x.slow = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else return usage();
    }
    if (argc % 2 == 0 || !target || dur <= 0 || dur > 86400) return usage();
    const char *colon = strrchr(target, ':');
    if (!colon || (size_t)(colon - target) >= sizeof x.host) return usage();
    memcpy(x.host, target, (size_t)(colon - target));
    x.addr.sin_family = AF_INET;
    x.addr.sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10));
    if (inet_pton(AF_INET, x.host, &x.addr.sin_addr) != 1) return usage();
    signal(SIGPIPE, SIG_IGN);
    if (make_bomb((size_t)32 << 20, &x.bomb, &x.bomb_len) != 0) {
        fputs("soak-hostile: cannot build the gzip bomb\n", stderr);
        return 1;
    }
    x.deadline = now_s() + dur;
    pthread_t th[K_COUNT];
    job jobs[K_COUNT];
    int started = 0;
    for (int k = 0; k < K_COUNT; k++) {
        jobs[k] = (job){&x, k};
        if (pthread_create(&th[k], NULL, run, &jobs[k]) != 0) break;
        started++;
    }
    for (int k = 0; k < started; k++) pthread_join(th[k], NULL);
    unsigned long accepted = 0;
    for (int k = 0; k < K_COUNT; k++) {
        counts *c = &x.c[k];
        accepted += c->s2xx;
        printf("%s_attempts=%lu %s_4xx=%lu %s_5xx=%lu %s_closed=%lu %s_connect_failed=%lu ", KIND[k],
               (unsigned long)c->attempts, KIND[k], (unsigned long)c->s4xx, KIND[k], (unsigned long)c->s5xx,
               KIND[k], (unsigned long)c->closed, KIND[k], (unsigned long)c->connect_failed);
    }
    printf("accepted=%lu\n", accepted);
    free(x.bomb);
    return started == K_COUNT ? 0 : 1;
}
