/* exp_batch.c — batches of one signal: build, seal, acknowledge, retry, give up.
 *
 * Items of one signal are chained in arrival order; their bytes, concatenated,
 * are one valid Export*ServiceRequest. Sealing compresses them into one body
 * (gzip level 6 / zstd level 3) or, with compression none, leaves them where
 * they are: the request body then references each item's bytes. A retry
 * resends exactly the same bytes. Items keep their delivery trackers
 * (runtime/item_track.h) while their batch is in flight: a 2xx settles
 * each as delivered; items handed to the DLQ are settled by it once
 * stored; an item freed without either is settled as failed by
 * item_free(). Export thread only.
 */
#define LOG_COMPONENT "exporter"
#include "exporters/otlp/exp_int.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>

#include "exporters/otlp/exp_response.h"
#include "runtime/clock.h"
#include "runtime/codec.h"
#include "runtime/err.h"
#include "runtime/item_track.h"
#include "runtime/log.h"

/* ---- lists --------------------------------------------------------------- */

static void dlist_link(exp_batch **head, exp_batch *b)
{
    b->lprev = NULL;
    b->lnext = *head;
    if (*head) (*head)->lprev = b;
    *head = b;
}

static void dlist_unlink(exp_batch **head, exp_batch *b)
{
    if (b->lprev) b->lprev->lnext = b->lnext;
    else *head = b->lnext;
    if (b->lnext) b->lnext->lprev = b->lprev;
    b->lprev = b->lnext = NULL;
}

void exp_ready_push(exporter *e, exp_batch *b, int front)
{
    if (front) sw_fifo_push_front(&e->ready, b);
    else sw_fifo_push(&e->ready, b);
}

exp_batch *exp_ready_pop(exporter *e)
{
    return sw_fifo_pop(&e->ready);
}

/* ---- life cycle ---------------------------------------------------------- */

static void batch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    exp_batch *b = arg;
    exporter *e = b->e;
    (void)fd;
    (void)what;
    if (b->state == EXP_B_OPEN) {
        exp_batch_seal(e, b);
    } else if (b->state == EXP_B_BACKOFF) {
        exp_batch_set_state(e, b, EXP_B_READY);
        exp_ready_push(e, b, 1); /* retries go before newer batches */
    }
    exp_schedule_pump(e);
}

exp_batch *exp_batch_new(exporter *e, sw_signal sig)
{
    exp_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->timer = evtimer_new(e->base, batch_timer_cb, b);
    if (!b->timer) {
        free(b);
        return NULL;
    }
    b->e = e;
    b->sig = sig;
    b->state = EXP_B_OPEN;
    b->encoding = CFG_COMP_NONE;
    buf_init(&b->body, 0);
    dlist_link(&e->live, b);
    return b;
}

void exp_batch_destroy(exp_batch *b)
{
    if (!b) return;
    item *it = b->head;
    while (it) {
        item *next = it->next;
        item_free(it);
        it = next;
    }
    buf_destroy(&b->body);
    if (b->timer) event_free(b->timer);
    free(b);
}

void exp_batch_set_state(exporter *e, exp_batch *b, exp_batch_state st)
{
    int was = b->state == EXP_B_FLIGHT || b->state == EXP_B_BACKOFF;
    int is = st == EXP_B_FLIGHT || st == EXP_B_BACKOFF;
    e->active = e->active + (uint32_t)is - (uint32_t)was;
    b->state = st;
}

/* The outcome is counted: leave every list; free now or when the last
 * body reference is released. */
void exp_batch_done(exporter *e, exp_batch *b)
{
    if (b->state == EXP_B_DONE) return;
    if (b->state == EXP_B_OPEN && e->open[b->sig] == b) e->open[b->sig] = NULL;
    if (b->state == EXP_B_READY) sw_fifo_remove(&e->ready, b);
    exp_batch_set_state(e, b, EXP_B_DONE);
    dlist_unlink(&e->live, b);
    if (b->timer) {
        event_free(b->timer);
        b->timer = NULL;
    }
    if (b->refs == 0) exp_batch_destroy(b);
    else dlist_link(&e->zombies, b);
}

static void body_ref_done(const void *data, size_t len, void *arg)
{
    exp_batch *b = arg;
    (void)data;
    (void)len;
    if (--b->refs > 0 || b->state != EXP_B_DONE) return;
    dlist_unlink(&b->e->zombies, b);
    exp_batch_destroy(b);
}

/* ---- building ------------------------------------------------------------ */

void exp_batch_append(exp_batch *b, item *it)
{
    it->next = NULL;
    if (b->tail) b->tail->next = it;
    else b->head = it;
    b->tail = it;
    b->n_items++;
    b->n_records += it->count;
    b->raw_len += it->len;
}

/* 1 while a request body references the items' own bytes. */
static int items_referenced(const exp_batch *b)
{
    return b->refs > 0 && b->encoding == CFG_COMP_NONE;
}

item *exp_batch_take_items(exporter *e, exp_batch *b)
{
    item *head = NULL, **tail = &head;
    if (!items_referenced(b)) {
        head = b->head;
    } else {
        for (item *it = b->head; it; it = it->next) {
            item *cp = item_new((sw_signal)it->signal, (sw_class)it->klass, it->count,
                                it->recv_ns, it->data, it->len);
            if (!cp) {
                exp_count_dropped(e, (sw_signal)it->signal, 1, it->count);
                LOG_ERROR_RL(1, "out of memory copying an item: dropped 1 item (%u records)",
                             it->count);
                continue;
            }
            cp->trk = it->trk; /* the copy carries the delivery reference on */
            it->trk = NULL;
            *tail = cp;
            tail = &cp->next;
        }
        *tail = NULL; /* the originals are freed with b, once libevent lets go */
    }
    if (!items_referenced(b)) b->head = b->tail = NULL;
    b->n_items = 0;
    b->n_records = 0;
    b->raw_len = 0;
    return head;
}

static void drop_lone_item(exporter *e, item *it)
{
    exp_count_dropped(e, (sw_signal)it->signal, 1, it->count);
    LOG_ERROR_RL(1, "out of memory for a batch: dropped 1 item (%u records)", it->count);
    item_free(it);
}

int exp_batch_add(exporter *e, item *it)
{
    uint64_t max = e->c->exporter.batch_max_bytes;
    exp_batch *b = e->open[it->signal];
    if (b && b->raw_len + it->len > max) {
        exp_batch_seal(e, b);
        b = NULL;
    }
    if (!b) {
        b = exp_batch_new(e, (sw_signal)it->signal);
        if (!b) {
            drop_lone_item(e, it);
            return SW_ENOMEM;
        }
        e->open[it->signal] = b;
        struct timeval tv = clock_ms_to_tv(e->c->exporter.batch_timeout_ms);
        evtimer_add(b->timer, &tv);
    }
    exp_batch_append(b, it);
    if (b->raw_len >= max) exp_batch_seal(e, b);
    return 0;
}

/* Compresses the concatenated items into b->body, per config. On failure
 * the batch is sent uncompressed. */
static void batch_compress(exporter *e, exp_batch *b)
{
    int enc = (int)e->c->exporter.compression;
    buf tmp;
    const uint8_t *in;
    size_t inlen = b->raw_len;
    int rc = 0;
    if (enc == CFG_COMP_NONE) return;
    buf_init(&tmp, b->raw_len);
    if (b->n_items == 1) {
        in = b->head->data;
    } else {
        for (item *it = b->head; it && rc == 0; it = it->next) rc = buf_append(&tmp, it->data, it->len);
        in = tmp.data;
    }
    buf_init(&b->body, b->raw_len + b->raw_len / 8 + 1024);
    if (rc == 0 && enc == CFG_COMP_GZIP) rc = codec_cctx_gzip(e->cctx, in, inlen, &b->body, 6);
    else if (rc == 0) rc = codec_cctx_zstd(e->cctx, in, inlen, &b->body, 3);
    buf_destroy(&tmp);
    if (rc != 0) {
        LOG_WARN_RL(10, "compression failed (%s): sending a batch uncompressed", sw_strerror(rc));
        buf_destroy(&b->body);
        buf_init(&b->body, 0);
        return;
    }
    b->encoding = enc;
}

void exp_batch_seal_at(exporter *e, exp_batch *b, int front)
{
    if (b->state != EXP_B_OPEN) return;
    if (e->open[b->sig] == b) e->open[b->sig] = NULL;
    evtimer_del(b->timer);
    if (b->n_items) batch_compress(e, b);
    exp_batch_set_state(e, b, EXP_B_READY);
    exp_ready_push(e, b, front);
}

void exp_batch_seal(exporter *e, exp_batch *b)
{
    exp_batch_seal_at(e, b, 0);
}

int exp_batch_attach_body(exp_batch *b, void *out)
{
    struct evbuffer *ev = out;
    if (b->encoding != CFG_COMP_NONE) {
        if (evbuffer_add_reference(ev, b->body.data, b->body.len, body_ref_done, b) != 0)
            return -1;
        b->refs++;
        return 0;
    }
    for (item *it = b->head; it; it = it->next) {
        if (it->len == 0) continue;
        if (evbuffer_add_reference(ev, it->data, it->len, body_ref_done, b) != 0) return -1;
        b->refs++;
    }
    return 0;
}

/* ---- outcomes ------------------------------------------------------------ */

void exp_batch_ack(exporter *e, exp_batch *b)
{
    int64_t now = clock_mono_ns();
    for (item *it = b->head; it; it = it->next) {
        metrics_observe_latency(e->m, now - it->recv_ns);
        item_settle(it, 0); /* delivered: its producer may move on */
    }
    metrics_add(&e->m->exp_items[b->sig][EXP_RESULT_SENT], b->n_records);
    if (b->replay) exp_replay_acked(e, b);
    exp_batch_done(e, b);
}

void exp_give_up(exporter *e, exp_batch *b, const char *why)
{
    if (b->replay) {
        exp_replay_failed(e, b, why);
        return;
    }
    if (b->n_items == 0) { /* an empty probe */
        exp_batch_done(e, b);
        return;
    }
    if (e->sink) {
        uint32_t n = b->n_items;
        uint64_t records = b->n_records;
        item *chain = exp_batch_take_items(e, b);
        LOG_WARN_RL(1, "giving up a %s batch (%s) after %u retries: %u items, %llu records "
                    "go to the DLQ", sw_signal_name(b->sig), why, b->attempt, n,
                    (unsigned long long)records);
        exp_batch_done(e, b);
        exp_spill_chain(e, chain, why);
        return;
    }
    exp_count_dropped(e, b->sig, b->n_items, b->n_records);
    LOG_WARN_RL(1, "dropping a %s batch (%s): %u items, %llu records after %u retries; "
                "%llu items dropped so far",
                sw_signal_name(b->sig), why, b->n_items, (unsigned long long)b->n_records,
                b->attempt, (unsigned long long)e->dropped_items_total);
    exp_batch_done(e, b);
}

void exp_batch_retry(exporter *e, exp_batch *b, const char *retry_after)
{
    int64_t now = clock_mono_ns();
    int64_t now_unix = clock_wall_ns() / 1000000000LL;
    uint64_t delay = exp_retry_delay_ms(&e->retry, b->attempt, exp_random(e), retry_after,
                                        now_unix);
    uint64_t elapsed = (uint64_t)(now - b->first_attempt_ns) / 1000000u;
    if (exp_retry_exhausted(&e->retry, elapsed, delay)) {
        exp_give_up(e, b, "retry.max_elapsed_time reached");
        return;
    }
    if (e->draining && now + (int64_t)delay * 1000000LL > e->deadline_ns) {
        exp_give_up(e, b, "shutdown timeout before the next retry");
        return;
    }
    b->attempt++;
    metrics_add(&e->m->exp_retries, 1);
    exp_batch_set_state(e, b, EXP_B_BACKOFF);
    struct timeval tv = clock_ms_to_tv(delay);
    evtimer_add(b->timer, &tv);
}

void exp_batch_free_all(exporter *e, int zombies)
{
    exp_batch **head = zombies ? &e->zombies : &e->live;
    while (*head) {
        exp_batch *b = *head;
        dlist_unlink(head, b);
        exp_batch_destroy(b);
    }
}

/* ---- sending and answers ---------------------------------------------------- */

#define EXP_LOG_MSG_MAX (EXP_LOG_MSG_LEN + 1)

static void read_partial(exporter *e, exp_batch *b, const exp_answer *a)
{
    int64_t rejected = 0;
    char msg[EXP_LOG_MSG_MAX];
    if (!a->body || exp_resp_partial(a->body, a->body_len, a->type, &rejected, msg, sizeof msg) != 0)
        return; /* an unreadable success body is still a success */
    if (rejected <= 0) return;
    metrics_add(&e->m->exp_partial_rejected[b->sig], (uint64_t)rejected);
    LOG_WARN_RL(10, "upstream rejected %lld of %llu %s records (partial success): %s",
                (long long)rejected, (unsigned long long)b->n_records,
                sw_signal_name(b->sig), msg[0] ? msg : "(no message)");
}

/* Counts one finished attempt and acts on its outcome. */
static void answered(void *arg, const exp_answer *a)
{
    exp_batch *b = arg;
    exporter *e = b->e;
    metrics_add(&e->m->exp_requests[b->sig][metrics_code_index(a->code)], 1);
    exp_circuit_record(e, b, a->code);
    switch (exp_classify_status(a->code)) {
    case EXP_OK:
        atomic_store(&e->healthy, 1);
        read_partial(e, b, a);
        exp_batch_ack(e, b);
        break;
    case EXP_REJECT: {
        char msg[EXP_LOG_MSG_MAX];
        exp_resp_error_message(a->body, a->body_len, a->type, msg, sizeof msg);
        exp_batch_reject(e, b, a->code, msg);
        break;
    }
    case EXP_RETRY:
        atomic_store(&e->healthy, 0);
        if (a->code)
            LOG_WARN_RL(10, "upstream answered HTTP %d%s%s; will retry", a->code,
                        a->retry_after ? ", Retry-After: " : "",
                        a->retry_after ? a->retry_after : "");
        exp_batch_retry(e, b, a->retry_after);
        break;
    }
    exp_schedule_pump(e);
}

static int attach(void *arg, void *out)
{
    return exp_batch_attach_body(arg, out);
}

void exp_batch_send(exporter *e, exp_batch *b)
{
    if (b->first_attempt_ns == 0) b->first_attempt_ns = clock_mono_ns();
    exp_batch_set_state(e, b, EXP_B_FLIGHT);
    exp_request r = {.sig = b->sig, .encoding = b->encoding, .attach = attach,
                     .done = answered, .arg = b};
    exp_http_send(e->pool, &r);
}
