/* budget.c — see budget.h. */
#include "runtime/budget.h"

#include <event2/event.h>
#include <malloc.h>
#include <stdlib.h>

#include "runtime/clock.h"
#include "runtime/err.h"

#define BUDGET_DEF_LIMIT ((size_t)64 << 20)
/* Trim when usage is under limit/4 and TRIM_FREED bytes were released
 * since the last trim. */
#define BUDGET_TRIM_FREED ((size_t)4 << 20)
#define BUDGET_TRIM_EVERY_NS 100000000LL

struct budget {
    size_t limit;
    size_t used;
    size_t peak;
    size_t freed_since_trim;  /* bytes released since the last trim */
    int64_t last_trim_ns;
    uint64_t refused;
    struct event *trim_ev;    /* owned, or NULL: runs a trim that was due */
};

budget *budget_new(size_t limit)
{
    budget *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->limit = limit ? limit : BUDGET_DEF_LIMIT;
    return b;
}

static void on_trim(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    budget_trim(arg);
}

int budget_attach(budget *b, struct event_base *base)
{
    if (b->trim_ev) return 0;
    b->trim_ev = evtimer_new(base, on_trim, b);
    return b->trim_ev ? 0 : SW_ENOMEM;
}

void budget_free(budget *b)
{
    if (!b) return;
    if (b->trim_ev) event_free(b->trim_ev);
    free(b);
}

int budget_reserve(budget *b, size_t n)
{
    if (n > b->limit - b->used) {
        b->refused++;
        return -1;
    }
    b->used += n;
    if (b->used > b->peak) b->peak = b->used;
    return 0;
}

void budget_trim(budget *b)
{
    b->last_trim_ns = clock_mono_ns();
    b->freed_since_trim = 0;
    (void)malloc_trim(0);
}

static void maybe_trim(budget *b)
{
    if (b->freed_since_trim < BUDGET_TRIM_FREED || b->used > b->limit / 4) return;
    if (b->last_trim_ns && clock_mono_ns() - b->last_trim_ns < BUDGET_TRIM_EVERY_NS) {
        static const struct timeval later = {0, BUDGET_TRIM_EVERY_NS / 1000};
        if (b->trim_ev && !evtimer_pending(b->trim_ev, NULL)) (void)evtimer_add(b->trim_ev, &later);
        return;
    }
    budget_trim(b);
}

void budget_release(budget *b, size_t n)
{
    n = n < b->used ? n : b->used;
    b->used -= n;
    b->freed_since_trim += n;
    maybe_trim(b);
}

size_t budget_used(const budget *b) { return b->used; }
size_t budget_limit(const budget *b) { return b->limit; }
size_t budget_peak(const budget *b) { return b->peak; }
uint64_t budget_refused(const budget *b) { return b->refused; }
