/* test_metrics_registry.c — the registry itself: families fed by several
 * sources, blocks, registration rules, lifetime and concurrency. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/apq.h"
#include "queue/apq_metrics.h"
#include "runtime/buf.h"
#include "runtime/err.h"
#include "runtime/item.h"
#include "runtime/metrics.h"
#include "testing/lib/th.h"
#include "testing/lib/th_page.h"


static int count(const char *page, const char *s)
{
    int n = 0;
    for (const char *p = page; (p = strstr(p, s)) != NULL; p++) n++;
    return n;
}

typedef struct two {
    _Atomic uint64_t a[SIG_COUNT];
} two;

static const char *const H = "Things, by signal and source.";

static int reg_source(sw_metrics *m, two *t, const char *src)
{
    metrics_source s = {.kind = METRICS_SRC_U64, .cells = t->a, .const_labels = src,
                        .dims = {metrics_dim_signal()}};
    return metrics_register(m, "test_things_total", METRICS_COUNTER, H, &s);
}

/* Two components feed one family: one HELP/TYPE block, samples together. */
static void t_shared_family(void)
{
    sw_metrics *m = metrics_new();
    TH_ASSERT(m);
    static two x, y;
    TH_ASSERT_EQ_INT(reg_source(m, &x, "src=\"x\""), 0);
    TH_ASSERT_EQ_INT(metrics_register_u64(m, "test_other_total", METRICS_COUNTER, "Other.",
                                          &x.a[0]), 0);
    TH_ASSERT_EQ_INT(reg_source(m, &y, "src=\"y\""), 0);
    metrics_add(&x.a[SIG_LOGS], 3);
    metrics_add(&y.a[SIG_TRACES], 4);
    char *p = th_metrics_page(m);
    TH_ASSERT(p);
    TH_ASSERT_EQ_INT(count(p, "# TYPE test_things_total counter\n"), 1);
    TH_ASSERT_EQ_INT(count(p, "# HELP test_things_total "), 1);
    TH_ASSERT(th_has_line(p, "test_things_total{signal=\"logs\",src=\"x\"} 3"));
    TH_ASSERT(th_has_line(p, "test_things_total{signal=\"traces\",src=\"y\"} 4"));
    /* every sample of the family between its TYPE line and the next family */
    const char *fam = strstr(p, "# TYPE test_things_total");
    const char *next = strstr(p, "# HELP test_other_total");
    TH_ASSERT(fam && next && fam < next);
    TH_ASSERT(strstr(p, "test_things_total{signal=\"logs\",src=\"y\"} 0") < next);
    TH_ASSERT(strstr(next, "test_things_total{") == NULL);
    free(p);
    metrics_free(m);
}

static void t_register_rules(void)
{
    sw_metrics *m = metrics_new();
    TH_ASSERT(m);
    static two x;
    TH_ASSERT_EQ_INT(reg_source(m, &x, NULL), 0);
    metrics_source s = {.kind = METRICS_SRC_U64, .cells = x.a};
    /* same name: another type or another help is refused */
    TH_ASSERT_EQ_INT(metrics_register(m, "test_things_total", METRICS_GAUGE, H, &s), SW_EINVAL);
    TH_ASSERT_EQ_INT(metrics_register(m, "test_things_total", METRICS_COUNTER, "x", &s),
                     SW_EINVAL);
    /* malformed sources */
    metrics_source bad = {.kind = METRICS_SRC_U64};
    TH_ASSERT_EQ_INT(metrics_register(m, "test_bad", METRICS_COUNTER, "b", &bad), SW_EINVAL);
    bad = (metrics_source){.kind = METRICS_SRC_HIST, .cells = x.a};
    TH_ASSERT_EQ_INT(metrics_register(m, "test_bad", METRICS_COUNTER, "b", &bad), SW_EINVAL);
    bad = (metrics_source){.kind = METRICS_SRC_FN};
    TH_ASSERT_EQ_INT(metrics_register(m, "test_bad", METRICS_GAUGE, "b", &bad), SW_EINVAL);
    TH_ASSERT_EQ_INT(metrics_register(NULL, "test_bad", METRICS_GAUGE, "b", &s), SW_EINVAL);
    char *p = th_metrics_page(m);
    TH_ASSERT(p && !strstr(p, "test_bad"));
    free(p);
    metrics_free(m);
}

static int inits;

static int init_one(sw_metrics *m, void *block)
{
    inits++;
    two *t = block;
    return reg_source(m, t, "src=\"block\"");
}

static int init_fail(sw_metrics *m, void *block)
{
    (void)m;
    (void)block;
    return SW_ENOMEM;
}

static void t_blocks(void)
{
    sw_metrics *m = metrics_new();
    TH_ASSERT(m);
    inits = 0;
    two *a = metrics_block(m, "test", sizeof(two), init_one);
    TH_ASSERT(a);
    for (int s = 0; s < SIG_COUNT; s++) TH_ASSERT_EQ_INT(atomic_load(&a->a[s]), 0);
    two *b = metrics_block(m, "test", sizeof(two), init_one);
    TH_ASSERT(a == b);
    TH_ASSERT_EQ_INT(inits, 1); /* families registered once */
    TH_ASSERT(metrics_block(m, "test", sizeof(two) + 8, init_one) == NULL);
    TH_ASSERT(metrics_block(m, "broken", 16, init_fail) == NULL);
    TH_ASSERT(metrics_block(m, "broken", 16, init_one) == NULL); /* stays failed */
    TH_ASSERT(metrics_block(NULL, "test", sizeof(two), init_one) == NULL);
    metrics_add(&a->a[SIG_METRICS], 9);
    char *p = th_metrics_page(m);
    TH_ASSERT(p);
    TH_ASSERT_EQ_INT(count(p, "# TYPE test_things_total"), 1);
    TH_ASSERT(th_has_line(p, "test_things_total{signal=\"metrics\",src=\"block\"} 9"));
    free(p);
    metrics_free(m);
}

/* A family registered after a page was rendered shows on the next one. */
static void t_late_registration(void)
{
    sw_metrics *m = metrics_new();
    TH_ASSERT(m);
    char *p = th_metrics_page(m);
    TH_ASSERT(p && !strstr(p, "test_late"));
    free(p);
    static _Atomic int64_t g;
    atomic_store(&g, -7);
    TH_ASSERT_EQ_INT(metrics_register_i64(m, "test_late", "Late.", &g), 0);
    p = th_metrics_page(m);
    TH_ASSERT(p && th_has_line(p, "test_late -7"));
    free(p);
    metrics_free(m);
}

/* The registry owns a component's counters: they render (frozen) after
 * the component is gone. */
static void t_outlives_component(void)
{
    sw_metrics *m = metrics_new();
    TH_ASSERT(m);
    apq_opts o;
    TH_ASSERT_EQ_INT(apq_opts_default(&o), 0);
    o.m = m;
    apq *q = apq_new(&o);
    TH_ASSERT(q);
    item *it = item_new(SIG_TRACES, CLASS_HIGH, 1, 0, (const uint8_t *)"x", 1);
    TH_ASSERT(it);
    TH_ASSERT_EQ_INT(apq_push(q, it), 0);
    apq_free(q); /* frees the queued item too */
    char *p = th_metrics_page(m);
    TH_ASSERT(p);
    TH_ASSERT(th_has_line(p, "spillway_queue_items{class=\"high\"} 1"));
    TH_ASSERT(th_has_line(p, "spillway_queue_max_bytes 67108864"));
    free(p);
    /* a queue built again on the registry counts into the same block */
    q = apq_new(&o);
    TH_ASSERT(q);
    TH_ASSERT(apq_metrics_get(m) != NULL);
    apq_count_spilled(q, CLASS_NORMAL);
    p = th_metrics_page(m);
    TH_ASSERT(p && th_has_line(p, "spillway_queue_spilled_total{class=\"normal\"} 1"));
    TH_ASSERT_EQ_INT(count(p, "# TYPE spillway_queue_items "), 1);
    free(p);
    apq_free(q);
    metrics_free(m);
}

#define ROUNDS 200

static void *renderer(void *arg)
{
    const sw_metrics *m = arg;
    for (int i = 0; i < ROUNDS; i++) {
        char *p = th_metrics_page(m);
        if (!p || !strstr(p, "process_") || !th_has_line(p, "# TYPE test_things_total counter")) {
            free(p);
            return (void *)1;
        }
        free(p);
    }
    return NULL;
}

/* Rendering from two threads while a third registers and counts. */
static void t_concurrent_render_and_register(void)
{
    sw_metrics *m = metrics_new();
    TH_ASSERT(m);
    static two t;
    TH_ASSERT_EQ_INT(reg_source(m, &t, NULL), 0);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) TH_ASSERT_EQ_INT(pthread_create(&th[i], NULL, renderer, m), 0);
    static _Atomic uint64_t cells[ROUNDS];
    char names[ROUNDS][32];
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(names[i], sizeof names[i], "test_n%d_total", i);
        TH_ASSERT_EQ_INT(metrics_register_u64(m, names[i], METRICS_COUNTER, "n", &cells[i]), 0);
        metrics_add(&t.a[SIG_TRACES], 1);
    }
    void *r0, *r1;
    pthread_join(th[0], &r0);
    pthread_join(th[1], &r1);
    TH_ASSERT(r0 == NULL && r1 == NULL);
    char *p = th_metrics_page(m);
    TH_ASSERT(p && th_has_line(p, "test_n199_total 0"));
    TH_ASSERT(th_has_line(p, "test_things_total{signal=\"traces\"} 200"));
    free(p);
    metrics_free(m);
}

int main(void)
{
    TH_RUN(t_shared_family);
    TH_RUN(t_register_rules);
    TH_RUN(t_blocks);
    TH_RUN(t_late_registration);
    TH_RUN(t_outlives_component);
    TH_RUN(t_concurrent_render_and_register);
    return th_done();
}
