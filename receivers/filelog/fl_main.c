/* fl_main.c — the filelog receiver's lifecycle: start-up (positions,
 * first scan), the poll tick, the batch timer, the retry timer, inotify,
 * stop and free. Ingest thread. */
#define LOG_COMPONENT "filelog"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "receivers/filelog/fl_int.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define OUT_MAX (256u << 20)
#define FILE_MASK (IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF)
#define DIR_MASK (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR)

void fl_kick(filelog *fl)
{
    if (fl->work_ev && !fl->stopping) event_active(fl->work_ev, 0, 0);
}

static void read_all(filelog *fl, int only_more)
{
    for (fl_file *f = fl->files; f && !fl->paused; f = f->next)
        if (!only_more || f->more) fl_file_read(f);
}

static void on_work(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    read_all(arg, 1);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    filelog *fl = arg;
    (void)fd;
    (void)what;
    fl_rescan(fl);
    for (fl_file *f = fl->files; f; f = f->next) fl_file_check(f);
    read_all(fl, 0);
    for (fl_file *f = fl->files; f; f = f->next) fl_file_check(f); /* drained files close */
    fl_maybe_save(fl, 0);
    fl_reap(fl);
}

static void on_batch_timer(evutil_socket_t fd, short what, void *arg)
{
    filelog *fl = arg;
    (void)fd;
    (void)what;
    int64_t now = clock_mono_ns(), max_age = (int64_t)fl->c->filelog.batch_timeout_ms * 1000000;
    for (fl_file *f = fl->files; f; f = f->next)
        if (f->batch.n && now - f->batch.first_ns >= max_age) fl_flush_batch(f);
    fl_maybe_save(fl, 0);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fl_retry_pending(arg);
}

/* ---- inotify ---- */

static int add_wd(filelog *fl, int wd, fl_file *f, const char *dir)
{
    if (fl->n_wds == fl->cap_wds) {
        size_t cap = fl->cap_wds ? fl->cap_wds * 2 : 64;
        fl_wd *v = realloc(fl->wds, cap * sizeof *v);
        if (!v) return SW_ENOMEM;
        fl->wds = v;
        fl->cap_wds = cap;
    }
    char *d = dir ? strdup(dir) : NULL;
    if (dir && !d) return SW_ENOMEM;
    fl->wds[fl->n_wds++] = (fl_wd){ wd, f, d };
    return 0;
}

static void drop_wd_at(filelog *fl, size_t i)
{
    free(fl->wds[i].dir);
    fl->wds[i] = fl->wds[--fl->n_wds];
}

void fl_watch_file(filelog *fl, fl_file *f)
{
    if (fl->ino_fd < 0 || f->wd >= 0) return;
    int wd = inotify_add_watch(fl->ino_fd, f->path, FILE_MASK);
    if (wd < 0) {
        LOG_WARN_RL(60, "inotify on %s: %s; polling it", f->path, strerror(errno));
        return;
    }
    if (add_wd(fl, wd, f, NULL) != 0) {
        inotify_rm_watch(fl->ino_fd, wd);
        return;
    }
    f->wd = wd;
}

void fl_unwatch_file(filelog *fl, fl_file *f)
{
    if (f->wd < 0) return;
    for (size_t i = 0; i < fl->n_wds; i++)
        if (fl->wds[i].f == f) {
            drop_wd_at(fl, i);
            break;
        }
    int shared = 0;
    for (size_t i = 0; i < fl->n_wds; i++) shared |= fl->wds[i].wd == f->wd;
    if (!shared) inotify_rm_watch(fl->ino_fd, f->wd);
    f->wd = -1;
}

void fl_watch_dir(filelog *fl, const char *path)
{
    if (fl->ino_fd < 0) return;
    for (size_t i = 0; i < fl->n_wds; i++)
        if (fl->wds[i].dir && strcmp(fl->wds[i].dir, path) == 0) return;
    int wd = inotify_add_watch(fl->ino_fd, path, DIR_MASK);
    if (wd >= 0 && add_wd(fl, wd, NULL, path) != 0) inotify_rm_watch(fl->ino_fd, wd);
}

static void on_inotify_event(filelog *fl, const struct inotify_event *ev, int *rescan)
{
    for (size_t i = 0; i < fl->n_wds; i++) {
        fl_wd *w = &fl->wds[i];
        if (w->wd != ev->wd) continue;
        if (ev->mask & IN_IGNORED) { /* the kernel removed the watch */
            if (w->f) w->f->wd = -1;
            drop_wd_at(fl, i);
            i--;
            continue;
        }
        if (!w->f) {
            *rescan = 1;
            continue;
        }
        if (ev->mask & (IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF)) fl_file_check(w->f);
        w->f->more = 1;
    }
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    filelog *fl = arg;
    char b[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    int rescan = 0;
    (void)what;
    for (;;) {
        ssize_t n = read(fd, b, sizeof b);
        if (n <= 0) break;
        for (char *p = b; p < b + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            if (ev->mask & IN_Q_OVERFLOW) rescan = 1;
            else on_inotify_event(fl, ev, &rescan);
            p += sizeof *ev + ev->len;
        }
    }
    if (rescan) fl_rescan(fl);
    read_all(fl, 1);
}

static int start_inotify(filelog *fl)
{
    if (!fl->c->filelog.inotify) return 0;
    fl->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fl->ino_fd < 0) {
        LOG_WARN("inotify unavailable (%s): polling every %llu ms", strerror(errno),
                 (unsigned long long)fl->c->filelog.poll_interval_ms);
        return 0;
    }
    fl->ino_ev = event_new(fl->base, fl->ino_fd, EV_READ | EV_PERSIST, on_inotify, fl);
    return fl->ino_ev && event_add(fl->ino_ev, NULL) == 0 ? 0 : SW_ENOMEM;
}

/* ---- lifecycle ---- */

filelog *fl_new(struct event_base *base, const cfg *c, sw_metrics *m, fl_submit_fn submit,
                void *submit_ctx)
{
    filelog *fl = calloc(1, sizeof *fl);
    if (!fl) return NULL;
    fl->base = base;
    fl->c = c;
    fl->m = fl_metrics_get(m);
    fl->submit = submit;
    fl->submit_ctx = submit_ctx;
    fl->ino_fd = -1;
    fl->first_scan = 1;
    buf_init(&fl->out, OUT_MAX);
    fl_pos_set_init(&fl->saved);
    fl->meta = fl_meta_new(c->filelog.label_prefix, c->filelog.metadata_ttl_ms);
    fl->box = track_box_new(base);
    fl->parser = fl_parser_new();
    if (!fl->meta || !fl->box || !fl->parser || (m && !fl->m)) {
        fl_free(fl);
        return NULL;
    }
    return fl;
}

static struct timeval ms_tv(uint64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    return tv;
}

int fl_start(filelog *fl)
{
    const cfg *c = fl->c;
    unsigned corrupt = 0;
    int rc = fl_pos_load(c->filelog.positions_dir, &fl->saved, &corrupt);
    if (rc != 0) return rc;
    fl->seq = fl->saved.seq;
    if (corrupt) {
        FL_COUNT(fl, fl_checkpoint_fallbacks, corrupt);
        LOG_WARN("%u position generation(s) corrupt; using save %llu (%zu files)", corrupt,
                 (unsigned long long)fl->saved.seq, fl->saved.n);
    }
    if (!(fl->saver = fl_saver_start(c->filelog.positions_dir, fl->m))) return SW_ENOMEM;
    if ((rc = start_inotify(fl)) != 0) return rc;
    uint64_t bt = c->filelog.batch_timeout_ms / 4 ? c->filelog.batch_timeout_ms / 4 : 1;
    struct timeval tick = ms_tv(c->filelog.poll_interval_ms), btv = ms_tv(bt);
    fl->tick_ev = event_new(fl->base, -1, EV_PERSIST, on_tick, fl);
    fl->batch_ev = event_new(fl->base, -1, EV_PERSIST, on_batch_timer, fl);
    fl->retry_ev = evtimer_new(fl->base, on_retry, fl);
    fl->work_ev = event_new(fl->base, -1, 0, on_work, fl);
    if (!fl->tick_ev || !fl->batch_ev || !fl->retry_ev || !fl->work_ev) return SW_ENOMEM;
    event_add(fl->tick_ev, &tick);
    event_add(fl->batch_ev, &btv);
    fl_rescan(fl);
    LOG_INFO("filelog: %zu files (%zu globs), positions in %s, %s", fl->n_open, c->filelog.include.n,
             c->filelog.positions_dir, fl->ino_fd >= 0 ? "inotify" : "polling only");
    fl_kick(fl);
    return 0;
}

void fl_stop_intake(filelog *fl)
{
    if (fl->stopping) return;
    for (fl_file *f = fl->files; f; f = f->next) fl_flush_batch(f);
    fl->stopping = 1;
    struct event *evs[] = { fl->tick_ev, fl->batch_ev, fl->retry_ev, fl->work_ev, fl->ino_ev };
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        if (evs[i]) event_del(evs[i]);
}

int fl_save_now(filelog *fl)
{
    if (!fl->saver) return SW_EINVAL;
    track_box_dispatch(fl->box);
    fl_maybe_save(fl, 1);
    return fl_saver_flush(fl->saver);
}

void fl_free(filelog *fl)
{
    if (!fl) return;
    if (fl->saver) fl_save_now(fl);
    fl_saver_stop(fl->saver);
    struct event *evs[] = { fl->tick_ev, fl->batch_ev, fl->retry_ev, fl->work_ev, fl->ino_ev };
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        if (evs[i]) event_free(evs[i]);
    /* Trackers still referenced by queued items are freed with their last
     * reference; no callback runs after this. */
    track_box_free(fl->box);
    while (fl->files) {
        fl_file *f = fl->files;
        fl->files = f->next;
        if (f->pending && f->pending->trk) item_tracker_release(f->pending->trk, 1);
        fl_file_free(f);
    }
    while (fl->n_wds) drop_wd_at(fl, fl->n_wds - 1);
    free(fl->wds);
    if (fl->ino_fd >= 0) close(fl->ino_fd);
    fl_meta_free(fl->meta);
    fl_parser_free(fl->parser);
    fl_pos_set_destroy(&fl->saved);
    buf_destroy(&fl->out);
    free(fl);
}

size_t fl_files_open(const filelog *fl) { return fl->n_open; }
int fl_paused(const filelog *fl) { return fl->paused; }
