/* filelog.h — the container log receiver (receivers.filelog).
 *
 * Tails the files matched by receivers.filelog.include (minus exclude):
 * Docker json-file logs or plain text, one OTLP log record per line (or per
 * joined 16 KiB pieces), batched per file into ExportLogsServiceRequests with
 * the file's container as the resource, and handed to the pipeline through
 * a submit function. The file is the buffer: a position (device, inode,
 * fingerprint, offset) advances only once every record before it was
 * delivered upstream or stored in the DLQ (delivery tracking,
 * runtime/item_track.h), and is saved in three generations
 * (fl_pos.h). When the pipeline refuses, reading pauses and resumes later.
 * See docs/filelog.md.
 *
 * Thread: everything runs on the ingest thread's event_base given to
 * fl_new(); the submit function is called there and its done callback must
 * run there (inside the call or later).
 */
#ifndef SW_FILELOG_H
#define SW_FILELOG_H

#include <stddef.h>
#include <stdint.h>

#include "config/cfg.h"
#include "runtime/metrics.h"

struct event_base;
struct item_tracker;
typedef struct filelog filelog;

/* Outcome of one submission. */
typedef enum {
    FL_SUBMIT_ACCEPTED = 0,  /* owned by queue or DLQ; the tracker reports delivery */
    FL_SUBMIT_FULL,          /* no room now (or no memory): retry later */
    FL_SUBMIT_SHUTDOWN,      /* stopping: not retried, re-read after restart */
    FL_SUBMIT_INVALID        /* the pipeline refused the bytes for good */
} fl_submit_status;

typedef void (*fl_submit_done_fn)(void *arg, fl_submit_status st, unsigned retry_after_s);

/* One ExportLogsServiceRequest: pb borrowed for the call only; trk gets a
 * reference per item made from it (see pipeline.h, pl_request.trk). */
typedef struct fl_submit_req {
    const uint8_t *pb;
    size_t len;
    uint32_t items;
    int64_t recv_ns;
    struct item_tracker *trk;
} fl_submit_req;

/* Hands a request to the pipeline; calls done exactly once. */
typedef void (*fl_submit_fn)(void *ctx, const fl_submit_req *rq, fl_submit_done_fn done, void *arg);

/* Returns an owned receiver, or NULL (out of memory). c, m borrowed and
 * outlive it; m may be NULL. Nothing happens before fl_start(). */
filelog *fl_new(struct event_base *base, const cfg *c, sw_metrics *m, fl_submit_fn submit,
                void *submit_ctx);
/* Loads the positions, scans the globs, starts inotify (unless
 * receivers.filelog.inotify is false or inotify is unavailable) and the
 * poll timer. 0 or SW_E*. */
int fl_start(filelog *f);
/* Stops reading: hands every batch read so far on and stops the timers.
 * Records still unread stay in the files. Ingest thread. */
void fl_stop_intake(filelog *f);
/* Runs the tracker callbacks already due and saves the positions (a last
 * save before exit). 0 or SW_EIO. */
int fl_save_now(filelog *f);
/* Saves the positions (fl_save_now) and frees everything. NULL-safe. */
void fl_free(filelog *f);

/* For tests and /readyz: files open now; 1 while reading is paused by backpressure. */
size_t fl_files_open(const filelog *f);
int fl_paused(const filelog *f);

#endif
