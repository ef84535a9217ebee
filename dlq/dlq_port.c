/* dlq_port.c — producer ports and dlq_append() (see dlq.h). */
#define LOG_COMPONENT "dlq"
#include "dlq/dlq_int.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runtime/ascii.h"
#include "runtime/err.h"
#include "runtime/item_track.h"
#include "runtime/log.h"

struct dlq_port {
    dlq *d;
    int efd;
    pthread_mutex_t mu;       /* protects head, tail */
    dlq_req *head, *tail;     /* completed, waiting for dispatch */
    _Atomic size_t pending;   /* appended, not yet dispatched */
};

dlq_port *dlq_port_new(dlq *d)
{
    dlq_port *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->d = d;
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

void dlq_port_free(dlq_port *p)
{
    if (!p) return;
    for (dlq_req *r = p->head, *n; r; r = n) {
        n = r->next;
        item_free(r->it);
        free(r);
    }
    close(p->efd);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int dlq_port_fd(const dlq_port *p) { return p->efd; }

size_t dlq_port_pending(const dlq_port *p) { return atomic_load(&p->pending); }

void dlq_req_complete(dlq_req *r, int status)
{
    dlq_port *p = r->port;
    r->status = status;
    r->next = NULL;
    if (status == 0) { /* stored: the item is safe */
        item_settle(r->it, 0);
        item_free(r->it);
        r->it = NULL;
    }
    pthread_mutex_lock(&p->mu);
    int was_empty = p->head == NULL;
    if (p->tail) p->tail->next = r;
    else p->head = r;
    p->tail = r;
    pthread_mutex_unlock(&p->mu);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t w = write(p->efd, &one, sizeof one);
        (void)w; /* EAGAIN only when the counter is saturated: still readable */
    }
}

size_t dlq_port_dispatch(dlq_port *p)
{
    uint64_t v;
    ssize_t rd = read(p->efd, &v, sizeof v); /* clear first: no lost wake-up */
    (void)rd;
    pthread_mutex_lock(&p->mu);
    dlq_req *r = p->head;
    p->head = p->tail = NULL;
    pthread_mutex_unlock(&p->mu);
    size_t n = 0;
    while (r) {
        dlq_req *next = r->next;
        atomic_fetch_sub(&p->pending, 1);
        r->cb(r->arg, r->it, r->status);
        free(r);
        r = next;
        n++;
    }
    return n;
}

size_t dlq_port_wait(dlq_port *p, int timeout_ms)
{
    struct pollfd pf = {.fd = p->efd, .events = POLLIN};
    int rc;
    do rc = poll(&pf, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    return dlq_port_dispatch(p);
}

/* Worst case on disk for a record of len request bytes, plus a segment
 * header in case it opens a new segment. */
static uint64_t reserve_for(size_t len)
{
    return DLQ_REC_HDR_LEN + ZSTD_compressBound(len) + DLQ_SEG_HDR_LEN;
}

/* d->mu held: SW_EFULL, SW_EUNAVAIL, SW_ECLOSED, SW_ETOOBIG or 0 for r. */
static int admit(dlq *d, const dlq_req *r)
{
    if (d->stop) return SW_ECLOSED;
    if (!atomic_load(&d->avail)) return SW_EUNAVAIL;
    if (d->used + r->reserve > d->o.max_size) return SW_EFULL;
    if (d->ring_n == d->o.ring_slots ||
        (d->ring_n > 0 && d->ring_bytes + r->it->len > d->o.ring_bytes))
        return SW_EFULL;
    if (r->area == DLQ_AREA_REJECTED && d->rej.used + r->reserve > d->rej.max) {
        d->rej.refused++;
        return SW_ETOOBIG; /* final: nothing frees the area while running */
    }
    return 0;
}

static int enqueue(dlq_port *p, dlq_req *r)
{
    dlq *d = p->d;
    pthread_mutex_lock(&d->mu);
    int rc = admit(d, r);
    if (rc == 0) {
        d->ring[(d->ring_head + d->ring_n) % d->o.ring_slots] = r;
        d->ring_n++;
        d->ring_bytes += r->it->len;
        d->used += r->reserve;
        if (r->area == DLQ_AREA_REJECTED) d->rej.used += r->reserve;
        atomic_fetch_add(&p->pending, 1);
        pthread_cond_signal(&d->wcv);
    }
    pthread_mutex_unlock(&d->mu);
    if (rc) free(r);
    return rc;
}

int dlq_append(dlq_port *p, item *it, dlq_done_fn cb, void *arg)
{
    if (it->len > DLQ_MAX_RECORD_LEN) return SW_ETOOBIG;
    dlq_req *r = malloc(sizeof *r);
    if (!r) return SW_ENOMEM;
    *r = (dlq_req){.port = p, .it = it, .cb = cb, .arg = arg, .reserve = reserve_for(it->len)};
    return enqueue(p, r);
}

int dlq_append_rejected(dlq_port *p, item *it, int http_status, const char *msg,
                        dlq_done_fn cb, void *arg)
{
    if (it->len > DLQ_MAX_RECORD_LEN) return SW_ETOOBIG;
    size_t n = msg ? strnlen(msg, DLQ_NOTE_MAX) : 0;
    dlq_req *r = malloc(sizeof *r + n);
    if (!r) return SW_ENOMEM;
    *r = (dlq_req){.port = p, .it = it, .cb = cb, .arg = arg, .area = DLQ_AREA_REJECTED,
                   .code = (uint16_t)(http_status > 0 && http_status < 1000 ? http_status : 0),
                   .note_len = (uint16_t)n, .reserve = reserve_for(it->len) + n};
    for (size_t i = 0; i < n; i++)
        r->note[i] = ascii_or_q((unsigned char)msg[i]);
    return enqueue(p, r);
}

int dlq_append_journal(dlq_port *p, item *it, dlq_jpos *pos, dlq_done_fn cb, void *arg)
{
    if (it->len > DLQ_MAX_RECORD_LEN) return SW_ETOOBIG;
    dlq_req *r = malloc(sizeof *r);
    if (!r) return SW_ENOMEM;
    *r = (dlq_req){.port = p, .it = it, .cb = cb, .arg = arg, .area = DLQ_AREA_JOURNAL,
                   .jpos = pos, .reserve = reserve_for(it->len)};
    return enqueue(p, r);
}
