/* fl_saver.c — the position writer thread (fl_pos.h): the ingest thread
 * encodes a position image and posts it; this thread writes, fsyncs and
 * renames it. Latest image wins. */
#define LOG_COMPONENT "filelog"

#include <pthread.h>
#include <stdlib.h>

#include "receivers/filelog/fl_metrics.h"
#include "receivers/filelog/fl_pos.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"

struct fl_saver {
    const char *dir;
    fl_metrics *m;           /* borrowed, may be NULL; atomics */
    pthread_t thread;
    pthread_mutex_t mu;      /* guards everything below */
    pthread_cond_t cond;     /* image posted, write done, stop */
    uint8_t *data;           /* the waiting image, or NULL */
    size_t len;
    uint64_t seq;
    int64_t first_ns;
    uint64_t posted, written;/* images posted / finished (written or failed) */
    uint64_t ok;             /* writes that succeeded */
    int last_rc;
    int64_t last_lag_ns;
    int stop;
};

static void *saver_main(void *arg)
{
    fl_saver *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->data && !s->stop) pthread_cond_wait(&s->cond, &s->mu);
        if (!s->data) break;
        uint8_t *data = s->data;
        size_t len = s->len;
        uint64_t seq = s->seq, upto = s->posted;
        int64_t first = s->first_ns;
        s->data = NULL;
        pthread_mutex_unlock(&s->mu);
        int rc = fl_pos_write(s->dir, seq, data, len);
        free(data);
        pthread_mutex_lock(&s->mu);
        s->last_rc = rc;
        if (rc == 0) {
            s->ok++;
            s->last_lag_ns = first ? clock_mono_ns() - first : 0;
            if (s->m) {
                metrics_add(&s->m->fl_position_saves, 1);
                metrics_gauge_set(&s->m->fl_save_lag_ns, s->last_lag_ns);
            }
        }
        s->written = upto;
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

fl_saver *fl_saver_start(const char *dir, fl_metrics *m)
{
    fl_saver *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->dir = dir;
    s->m = m;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (pthread_create(&s->thread, NULL, saver_main, s) != 0) {
        LOG_ERROR("cannot start the position writer thread");
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    return s;
}

void fl_saver_post(fl_saver *s, uint64_t seq, uint8_t *data, size_t len, int64_t first_ns)
{
    pthread_mutex_lock(&s->mu);
    if (s->data) { /* not written yet: the newer image replaces it */
        free(s->data);
        if (s->first_ns && (!first_ns || s->first_ns < first_ns)) first_ns = s->first_ns;
    }
    s->data = data;
    s->len = len;
    s->seq = seq;
    s->first_ns = first_ns;
    s->posted++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

int fl_saver_flush(fl_saver *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->written < s->posted) pthread_cond_wait(&s->cond, &s->mu);
    int rc = s->last_rc;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

uint64_t fl_saver_written(fl_saver *s, int64_t *last_lag_ns)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->ok;
    if (last_lag_ns) *last_lag_ns = s->last_lag_ns;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void fl_saver_stop(fl_saver *s)
{
    if (!s) return;
    fl_saver_flush(s);
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    free(s->data);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
