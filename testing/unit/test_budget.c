/* test_budget.c — runtime/budget: reserve/release against the limit, the
 * peak and refusal counters, and the default limit. */
#include <stdlib.h>

#include "runtime/budget.h"
#include "testing/lib/th.h"

static void t_reserve_release(void)
{
    budget *b = budget_new(1000);
    TH_ASSERT(b);
    TH_ASSERT_EQ_INT(budget_limit(b), 1000);
    TH_ASSERT_EQ_INT(budget_reserve(b, 600), 0);
    TH_ASSERT_EQ_INT(budget_reserve(b, 400), 0);
    TH_ASSERT_EQ_INT(budget_used(b), 1000);
    TH_ASSERT_EQ_INT(budget_reserve(b, 1), -1);
    TH_ASSERT_EQ_INT(budget_used(b), 1000); /* a refusal charges nothing */
    TH_ASSERT_EQ_INT(budget_refused(b), 1);
    budget_release(b, 600);
    TH_ASSERT_EQ_INT(budget_used(b), 400);
    TH_ASSERT_EQ_INT(budget_reserve(b, 601), -1);
    TH_ASSERT_EQ_INT(budget_reserve(b, 600), 0);
    TH_ASSERT_EQ_INT(budget_peak(b), 1000);
    budget_release(b, 5000); /* never below zero */
    TH_ASSERT_EQ_INT(budget_used(b), 0);
    TH_ASSERT_EQ_INT(budget_refused(b), 2);
    budget_free(b);
    budget_free(NULL);
}

static void t_default_and_trim(void)
{
    budget *b = budget_new(0);
    TH_ASSERT(b);
    TH_ASSERT_EQ_INT(budget_limit(b), (size_t)64 << 20);
    /* a large reservation and its release (which trims the heap) */
    TH_ASSERT_EQ_INT(budget_reserve(b, (size_t)32 << 20), 0);
    budget_release(b, (size_t)32 << 20);
    TH_ASSERT_EQ_INT(budget_used(b), 0);
    TH_ASSERT_EQ_INT(budget_reserve(b, ((size_t)64 << 20) + 1), -1);
    budget_trim(b);
    budget_free(b);
}

int main(void)
{
    TH_RUN(t_reserve_release);
    TH_RUN(t_default_and_trim);
    return th_done();
}
