/* fl_int.h — internals of the filelog receiver, shared by fl_*.c only.
 *
 * DESIGN. One fl_file per open file (keyed by device and inode, not path:
 * a renamed file is still the same file). Each file reads from its own
 * offset into a line buffer, turns complete lines into records in its own
 * batch (fl_batch) and hands a batch on as one request (fl_sub). Its
 * in-flight requests form a FIFO in file order; a request's tracker
 * callback marks it settled, and the committed offset moves over settled
 * requests from the front only — so a position never passes a record that
 * is not yet delivered or stored. A request the pipeline refuses (full)
 * waits as the file's `pending` and the whole receiver pauses reading until
 * a retry gets it accepted.
 *
 * Offsets of a file: commit_off <= safe_off <= read_off.
 *   read_off   next byte to read into the line buffer
 *   safe_off   end of the last line whose record is in the batch or handed
 *              on (never inside a line nor inside a chain of Docker pieces)
 *   commit_off end of the last delivered request (what is saved)
 *
 * Rotation: a file whose path now names another inode, or that was
 * deleted, is DRAINING: read to its end, then closed once it did not grow
 * for a poll interval; the new file at the path waits (blocked_by) until
 * then, so the rotated file is finished first. Copytruncate (same inode,
 * smaller size): the copy beside it (same fingerprint) replaces the file's
 * descriptor and is finished from the same offset; the truncated file is
 * read again from 0.
 */
#ifndef SW_FL_INT_H
#define SW_FL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "receivers/filelog/fl_batch.h"
#include "receivers/filelog/fl_meta.h"
#include "receivers/filelog/fl_metrics.h"
#include "receivers/filelog/fl_parse.h"
#include "receivers/filelog/fl_pos.h"
#include "receivers/filelog/filelog.h"
#include "runtime/buf.h"
#include "runtime/item_track.h"

struct event;

/* Counts into the metrics registry, when there is one. */
#define FL_COUNT(fl, field, n)                                             \
    do {                                                                   \
        if ((fl)->m) metrics_add(&(fl)->m->field, (n));                    \
    } while (0)

typedef enum { FS_ACTIVE, FS_DRAINING, FS_DONE } fl_file_state;
typedef enum { SUB_SUBMITTING, SUB_ACCEPTED, SUB_SETTLED, SUB_REFUSED } fl_sub_state;

typedef struct fl_file fl_file;

typedef struct fl_sub {
    struct fl_sub *next;     /* in the file's in-flight FIFO */
    fl_file *f;
    uint64_t end_off;        /* commit_off once delivered */
    uint8_t *pb;             /* owned until accepted */
    size_t len;
    uint32_t items;
    item_tracker *trk;       /* the creator's reference until accepted */
    fl_sub_state state;
    int failed;              /* settled as failed (dropped for good) */
    int in_call;             /* inside the submit call */
    int done_status;         /* FL_SUBMIT_* from done */
    unsigned retry_after_s;
} fl_sub;

struct fl_file {
    struct fl_file *next;
    filelog *fl;
    char *path;              /* owned: the path it was opened by */
    int fd;                  /* -1 once closed */
    int wd;                  /* inotify watch, or -1 */
    uint64_t dev, ino;
    uint32_t fp_len;         /* fingerprint of the first bytes */
    uint64_t fp_hash;
    uint64_t read_off, safe_off, commit_off;
    uint64_t saved_off;      /* commit_off at the last save */
    buf line;                /* bytes of the current, incomplete line */
    size_t line_scan;        /* bytes of `line` known to hold no '\n' */
    int skipping;            /* discarding the rest of an overlong line */
    fl_join join;
    fl_batch batch;
    fl_sub *head, *tail;     /* in flight, file order */
    fl_sub *pending;         /* refused, to submit again (one at most) */
    fl_container *cont;      /* docker format: its container, or NULL */
    fl_file *blocked_by;     /* a rotated predecessor still draining */
    fl_file_state state;
    int held;                /* a request failed: commit_off frozen */
    int more;                /* stopped reading with data left */
    int seen;                /* found by the current rescan */
    int idle_ticks;          /* draining: ticks without growth */
    uint64_t last_size;
};

typedef struct fl_wd {
    int wd;
    fl_file *f;              /* NULL for a directory watch */
    char *dir;               /* owned, directory watches */
} fl_wd;

struct filelog {
    struct event_base *base;
    const cfg *c;
    fl_metrics *m;           /* owned by the metrics registry, or NULL */
    fl_submit_fn submit;
    void *submit_ctx;
    fl_meta *meta;
    track_box *box;
    fl_parser *parser;
    buf out;                 /* request being built */
    fl_file *files;
    size_t n_open;           /* files with an open descriptor */
    fl_pos_set saved;        /* loaded positions not (yet) matched to a file */
    fl_saver *saver;         /* position writer thread (after fl_start) */
    uint64_t seq;            /* last position save number */
    uint32_t updates;        /* commits since the last save */
    int64_t first_unsaved_ns;/* monotonic time of the first unsaved commit, 0: none */
    int first_scan;          /* the start-up scan: start_at applies */
    int paused;              /* backpressure: no reading */
    int stopping;
    unsigned backoff_ms;
    int ino_fd;              /* inotify, or -1 */
    fl_wd *wds;              /* watches, unordered */
    size_t n_wds, cap_wds;
    struct event *tick_ev, *batch_ev, *retry_ev, *work_ev, *ino_ev;
};

/* fl_file.c: files, reading, lines, rotation. */
void fl_rescan(filelog *fl);
void fl_file_read(fl_file *f);
void fl_file_check(fl_file *f);
void fl_file_close(fl_file *f);
void fl_file_free(fl_file *f);
/* The file can go: closed, nothing in flight or waiting. */
int fl_file_finished(const fl_file *f);
/* Fingerprint of the open file's first bytes (up to FL_FP_MAX). */
void fl_file_fingerprint(fl_file *f);

/* fl_submit.c: batches into requests, delivery, positions. */
/* Hands f's batch on (nothing if empty). */
void fl_flush_batch(fl_file *f);
/* Appends one record to f's batch, handing it on when full. 0 or SW_ENOMEM. */
int fl_add_record(fl_file *f, const fl_record *r);
/* Submits the refused requests again; resumes reading when all went in. */
void fl_retry_pending(filelog *fl);
/* Hands the positions to the writer thread when flush.updates or
 * flush.interval say so (force: now). */
void fl_maybe_save(filelog *fl, int force);
/* Removes finished files (after their last commit). */
void fl_reap(filelog *fl);
/* A commit advanced or a file finished. */
void fl_note_commit(filelog *fl);

/* fl_main.c: watches. */
void fl_watch_file(filelog *fl, fl_file *f);
void fl_unwatch_file(filelog *fl, fl_file *f);
void fl_watch_dir(filelog *fl, const char *path);
/* Asks the work event to run (files with more to read). */
void fl_kick(filelog *fl);

#endif
