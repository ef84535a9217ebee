/* exp_breaker.c — circuit breaker state machine. See exp_breaker.h. */
#include "exporters/otlp/exp_breaker.h"

#include <string.h>

#define NS_PER_MS 1000000LL


brk_outcome brk_outcome_of_status(int code)
{
    if (code == 429) return BRK_THROTTLED;
    if (code >= 300 && code < 400) return BRK_FAILURE; /* a redirect: not the endpoint */
    if (code >= 200 && code < 500) return BRK_SUCCESS;
    return BRK_FAILURE; /* no answer, 5xx, or nonsense */
}

void brk_config_from_cfg(brk_config *bc, const cfg *c)
{
    memset(bc, 0, sizeof *bc);
    bc->consecutive_failures = c->exporter.cb_consecutive_failures;
    bc->ratio_429 = c->exporter.cb_ratio_429;
    bc->window_ns = (int64_t)c->exporter.cb_window_ms * NS_PER_MS;
    bc->open_duration_ns = (int64_t)c->exporter.cb_open_duration_ms * NS_PER_MS;
    bc->min_requests = BRK_DEFAULT_MIN_REQUESTS;
}

static void window_clear(brk_circuit *b)
{
    memset(b->ring, 0, sizeof b->ring);
    b->win_requests = b->win_throttled = 0;
}

void brk_init(brk_circuit *b, const brk_config *c, brk_listener fn, void *arg)
{
    memset(b, 0, sizeof *b);
    b->c = *c;
    if (b->c.min_requests == 0) b->c.min_requests = 1;
    if (b->c.open_duration_ns < 0) b->c.open_duration_ns = 0;
    b->bucket_ns = b->c.window_ns / BRK_BUCKETS;
    if (b->bucket_ns < 1) b->bucket_ns = 1;
    b->fn = fn;
    b->arg = arg;
    b->state = BRK_CLOSED;
}

/* Moves the ring forward to the bucket of now_ns, expiring older buckets.
 * A clock that goes backwards stays in the newest bucket. */
static brk_bucket *window_advance(brk_circuit *b, int64_t now_ns)
{
    int64_t n = now_ns / b->bucket_ns;
    if (n > b->head) {
        if (n - b->head >= BRK_BUCKETS) {
            window_clear(b);
        } else {
            for (int64_t i = b->head + 1; i <= n; i++) {
                brk_bucket *k = &b->ring[i % BRK_BUCKETS];
                b->win_requests -= k->requests;
                b->win_throttled -= k->throttled;
                k->requests = k->throttled = 0;
            }
        }
        b->head = n;
    }
    return &b->ring[b->head % BRK_BUCKETS];
}

static void set_state(brk_circuit *b, int64_t now_ns, brk_state to, brk_why why)
{
    brk_state from = b->state;
    b->state = to;
    b->transitions[why]++;
    b->run = 0;
    if (to == BRK_OPEN) b->opened_ns = now_ns;
    if (to == BRK_CLOSED) window_clear(b);
    if (b->fn) b->fn(b->arg, from, to, why);
}

brk_ticket brk_allow(brk_circuit *b, int64_t now_ns)
{
    switch (b->state) {
    case BRK_CLOSED:
        return BRK_ALLOWED;
    case BRK_OPEN:
        if (now_ns - b->opened_ns >= b->c.open_duration_ns) {
            set_state(b, now_ns, BRK_HALF_OPEN, BRK_WHY_OPEN_ELAPSED);
            b->probe_out = 1;
            return BRK_PROBE;
        }
        break;
    case BRK_HALF_OPEN:
        if (!b->probe_out) { /* a cancelled probe */
            b->probe_out = 1;
            return BRK_PROBE;
        }
        break;
    }
    b->denied++;
    return BRK_DENIED;
}

/* 1 if the 429 share within the window opens the breaker. */
static int ratio_trips(const brk_circuit *b)
{
    double r = b->c.ratio_429;
    if (!(r > 0.0 && r <= 1.0)) return 0;
    if (b->win_requests < b->c.min_requests) return 0;
    /* the tolerance keeps 3 of 10 at 0.30 from failing on rounding */
    return (double)b->win_throttled >= r * (double)b->win_requests - 1e-9;
}

static void record_closed(brk_circuit *b, int64_t now_ns, brk_outcome o)
{
    brk_bucket *k = window_advance(b, now_ns);
    k->requests++;
    b->win_requests++;
    if (o == BRK_SUCCESS) {
        b->run = 0;
        return;
    }
    b->run++;
    if (o == BRK_THROTTLED) {
        k->throttled++;
        b->win_throttled++;
        if (ratio_trips(b)) {
            set_state(b, now_ns, BRK_OPEN, BRK_WHY_RATIO_429);
            return;
        }
    }
    if (b->c.consecutive_failures && b->run >= b->c.consecutive_failures)
        set_state(b, now_ns, BRK_OPEN, BRK_WHY_CONSECUTIVE);
}

void brk_record(brk_circuit *b, int64_t now_ns, brk_ticket t, brk_outcome o)
{
    if (t == BRK_DENIED) return;
    if (b->state == BRK_CLOSED && t == BRK_ALLOWED) {
        record_closed(b, now_ns, o);
    } else if (b->state == BRK_HALF_OPEN && t == BRK_PROBE && b->probe_out) {
        b->probe_out = 0;
        if (o == BRK_SUCCESS) set_state(b, now_ns, BRK_CLOSED, BRK_WHY_PROBE_OK);
        else set_state(b, now_ns, BRK_OPEN, BRK_WHY_PROBE_FAILED);
    } else {
        b->stale++;
    }
}

void brk_cancel(brk_circuit *b, brk_ticket t)
{
    /* Stays HALF_OPEN; the next brk_allow() hands out the probe again. */
    if (t == BRK_PROBE && b->state == BRK_HALF_OPEN) b->probe_out = 0;
}

brk_state brk_get_state(const brk_circuit *b) { return b->state; }

const char *brk_state_name(brk_state s)
{
    switch (s) {
    case BRK_CLOSED: return "closed";
    case BRK_HALF_OPEN: return "half-open";
    case BRK_OPEN: return "open";
    }
    return "?";
}

const char *brk_why_name(brk_why w)
{
    static const char *const names[BRK_WHY_COUNT] = {
        "consecutive failures", "429 ratio", "probe failed", "probe succeeded",
        "open duration elapsed",
    };
    return (unsigned)w < BRK_WHY_COUNT ? names[w] : "?";
}

int64_t brk_next_allow_ns(const brk_circuit *b, int64_t now_ns)
{
    if (b->state != BRK_OPEN) return now_ns;
    int64_t at = b->opened_ns + b->c.open_duration_ns;
    return at > now_ns ? at : now_ns;
}

void brk_window(brk_circuit *b, int64_t now_ns, uint64_t *requests, uint64_t *throttled)
{
    window_advance(b, now_ns);
    *requests = b->win_requests;
    *throttled = b->win_throttled;
}

uint64_t brk_transitions(const brk_circuit *b, brk_why w)
{
    return (unsigned)w < BRK_WHY_COUNT ? b->transitions[w] : 0;
}
