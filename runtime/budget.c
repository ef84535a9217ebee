/* budget.c — see budget.h. */
#include "runtime/budget.h"

#include <malloc.h>
#include <stdlib.h>

#include "runtime/clock.h"

#define BUDGET_DEF_LIMIT ((size_t)64 << 20)
/* Trim when usage drops under limit/4 after it passed TRIM_HIGH bytes. */
#define BUDGET_TRIM_HIGH ((size_t)4 << 20)
#define BUDGET_TRIM_EVERY_NS 100000000LL

struct budget {
    size_t limit;
    size_t used;
    size_t peak;
    size_t high_since_trim;   /* highest use since the last trim */
    int64_t last_trim_ns;
    uint64_t refused;
};

budget *budget_new(size_t limit)
{
    budget *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->limit = limit ? limit : BUDGET_DEF_LIMIT;
    return b;
}

void budget_free(budget *b) { free(b); }

int budget_reserve(budget *b, size_t n)
{
    if (n > b->limit - b->used) {
        b->refused++;
        return -1;
    }
    b->used += n;
    if (b->used > b->peak) b->peak = b->used;
    if (b->used > b->high_since_trim) b->high_since_trim = b->used;
    return 0;
}

void budget_trim(budget *b)
{
    b->last_trim_ns = clock_mono_ns();
    b->high_since_trim = b->used;
    (void)malloc_trim(0);
}

static void maybe_trim(budget *b)
{
    if (b->high_since_trim < BUDGET_TRIM_HIGH || b->used > b->limit / 4) return;
    if (b->last_trim_ns && clock_mono_ns() - b->last_trim_ns < BUDGET_TRIM_EVERY_NS) return;
    budget_trim(b);
}

void budget_release(budget *b, size_t n)
{
    b->used -= n < b->used ? n : b->used;
    maybe_trim(b);
}

size_t budget_used(const budget *b) { return b->used; }
size_t budget_limit(const budget *b) { return b->limit; }
size_t budget_peak(const budget *b) { return b->peak; }
uint64_t budget_refused(const budget *b) { return b->refused; }
