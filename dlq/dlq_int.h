/* dlq_int.h — internals shared by dlq_store.c, dlq_writer.c, dlq_reader.c. */
#ifndef SW_DLQ_INT_H
#define SW_DLQ_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <zstd.h>

#include "dlq/dlq.h"
#include "dlq/dlq_journal.h"
#include "dlq/dlq_seg.h"

/* One pending append; moves ring -> writer batch -> port's done list. */
typedef struct dlq_req {
    struct dlq_req *next;
    dlq_port *port;
    item *it;
    dlq_done_fn cb;
    void *arg;
    uint64_t reserve;    /* bytes reserved against max_size */
    uint64_t seq;        /* segment the record was written to (writer thread) */
    uint64_t index;      /* its index in that segment (writer thread) */
    struct dlq_jpos *jpos; /* journal: set to (seq, index) before a completion with 0 */
    int status;
    int area;            /* DLQ_AREA_MAIN or DLQ_AREA_REJECTED */
    uint16_t code;       /* rejected: the upstream's HTTP status */
    uint16_t note_len;   /* rejected: bytes in note */
    char note[];         /* rejected: start of the upstream's message */
} dlq_req;

/* One segment file known to the store. */
typedef struct dlq_seginfo {
    uint64_t seq;
    uint64_t bytes;      /* file size */
    uint64_t records;
    int64_t created_ns;
    int sealed;
    int open;            /* the writer's current segment: its first `bytes` are
                            complete, written (and fsync'd with fsync=always)
                            records the reader may read before it is sealed */
    int64_t written_ns;  /* clock_mono_ns() of its last published growth */
} dlq_seginfo;

/* The segment being appended to (writer thread only). */
typedef struct dlq_open_seg {
    int fd;              /* -1: none */
    uint64_t seq;
    uint64_t size;
    uint64_t records;
    int64_t created_ns;
    dlq_sha256 *body;
    int dirty;           /* written since the last fsync */
    uint64_t synced;     /* size at the last successful fsync (or creation) */
} dlq_open_seg;

/* An unsealed segment to scan, cut and seal: found at start-up (limit
 * UINT64_MAX), or the writer's segment after a write, fsync or seal error
 * (limit: the end of its last good record; records past it were refused). */
typedef struct dlq_recov {
    uint64_t seq;
    uint64_t limit;
    uint64_t acct;       /* its bytes counted in d->used (and the area's stats) */
} dlq_recov;

/* The storage areas: the main area (dir itself; replayed), rejected/
 * (records the upstream refused for good; same segment format, own
 * sequence numbers, never replayed) and journal/ (queue.mode durable:
 * every accepted request, acknowledged by per-segment .ack files; read
 * only at start-up, dlq_journal.c). journal/ counts in d->used only. */
enum { DLQ_AREA_MAIN = 0, DLQ_AREA_REJECTED = 1, DLQ_AREA_JOURNAL = 2, DLQ_AREAS = 3 };
#define DLQ_REJ_DIR "rejected"
#define DLQ_JNL_DIR "journal" /* queue.mode durable: see dlq_journal.h */

/* Writer state of one area. */
typedef struct dlq_area {
    int kind;            /* DLQ_AREA_* */
    int dirfd;           /* main: d->dirfd (not owned); rejected: owned, -1 until
                            rejected/ exists (created by the writer on first use) */
    uint64_t next_seq;   /* dlq_open(), then writer thread only */
    dlq_recov *recover;  /* unsealed segments still to recover (writer thread
                            once started; at most one per write error and
                            per crash, so not growing with the DLQ) */
    size_t nrecover, recovcap;
    dlq_open_seg cur;    /* writer thread only */
    int batch_doubt;     /* a segment was put in doubt during the current batch */
    uint64_t batch_doubt_seq; /* ... that one */
} dlq_area;

/* The rejected area's bookkeeping (d->mu). */
typedef struct dlq_rej {
    uint64_t max;        /* bound: opts.rejected_max or max_size / DLQ_REJ_SHARE */
    uint64_t used;       /* disk bytes + reservations of pending appends */
    uint64_t bytes;      /* segment files on disk */
    uint64_t segments;
    uint64_t records;
    uint64_t refused;    /* appends refused because the area was full */
} dlq_rej;
#define DLQ_REJ_SHARE 8  /* default bound: 1/8 of max_size */

struct dlq {
    dlq_opts o;
    char *dir;
    int dirfd;
    dlq_metrics *m;      /* owned by the registry (m of dlq_open, or own_m) */
    sw_metrics *own_m;   /* owned: a registry of its own when dlq_open got none */

    pthread_t thr;
    int started;
    pthread_mutex_t mu;  /* protects everything in this block */
    pthread_cond_t wcv;  /* writer: work, stop, seal request */
    pthread_cond_t rcv;  /* recovery finished */
    dlq_req **ring;
    size_t ring_head, ring_n;
    uint64_t ring_bytes;
    dlq_seginfo *segs;   /* sorted by seq; open segment included */
    size_t nsegs, segcap;
    uint64_t used;       /* disk bytes + reservations (both areas) */
    dlq_rej rej;
    uint64_t cut_bytes;
    dlq_pos cursor;      /* first unacknowledged position (persisted form) */
    int stop, recovered;
    int seal_req;        /* the reader acknowledged all of the idle open segment */
    uint64_t seal_seq, seal_off; /* ... which was seal_seq, seal_off bytes long */
    int probe_req;       /* re-probe now (the reader freed space) */
    char why[160];       /* why the DLQ is unavailable ("" while available) */
    _Atomic int avail;   /* 1: appends are taken; 0: storage failing */
    /* dlq_set_replay_rate (any thread) -> replay sources (their thread):
     * the rate, published by bumping the generation after it */
    _Atomic uint64_t replay_rate;
    _Atomic unsigned replay_rate_gen;
    /* segment table changes (dlq_segs_publish) -> one replay source, so that
     * it waits for new records instead of polling: the count goes up first,
     * then published(published_arg) runs, with d->mu held (it takes only
     * its own lock) */
    _Atomic uint64_t publish_gen;
    void (*published)(void *arg);
    void *published_arg;

    /* writer thread only (areas: see dlq_area) */
    dlq_area area[DLQ_AREAS];
    ZSTD_CCtx *cctx;
    int cctx_level;      /* its current zstd level (the journal uses DLQ_JNL_LEVEL) */
    buf wbuf;
    dlq_recbuf *rb;
    uint64_t disk_added[DLQ_AREAS]; /* bytes written by the current batch */
    int64_t last_fsync_ns;
    int has_reader;
    int64_t probe_at_ns;   /* unavailable: next re-probe (clock_mono_ns) */
    int64_t probe_wait_ns; /* unavailable: current back-off */
    size_t probe_len;      /* bytes a probe writes: the failed write's size */
};

#define DLQ_PROBE_NAME ".probe"
#define DLQ_PROBE_MIN 4096u
#define DLQ_PROBE_MAX (4u << 20)
#define DLQ_PROBE_BACKOFF_MAX 8 /* back-off up to 8 x probe_ms */

/* Segment table, d->mu held. */
int dlq_segs_add(dlq *d, const dlq_seginfo *s);
dlq_seginfo *dlq_segs_find(dlq *d, uint64_t seq);
void dlq_segs_remove(dlq *d, uint64_t seq);
/* Recomputes dlq_bytes, dlq_segments, dlq_oldest_wall_ns. */
void dlq_segs_publish(dlq *d);

/* Writer thread body (dlq_writer.c). */
void *dlq_writer_main(void *arg);
/* Start-up: opens rejected/ if it exists and reads its segment headers
 * (dlq_store.c). 0 or SW_E*. */
int dlq_rej_scan(dlq *d);
/* The same for journal/ (its .ack files are not segments). */
int dlq_jnl_scan(dlq *d);
/* Completes r with status on its port (any thread, no lock held). */
void dlq_req_complete(dlq_req *r, int status);

/* Health (dlq_health.c). Marks the DLQ unavailable after a failed storage
 * operation (`what` names it; err is its errno), counts and logs it
 * (rate-limited); any thread. */
void dlq_health_fail(dlq *d, const char *what, int err, size_t len);
/* Marks it available again (writer thread, after a successful probe). */
void dlq_health_ok(dlq *d);
/* Creates, writes len bytes to, fsyncs and removes dir/.probe through
 * d->o.pwrite. 0, or SW_EIO with the failure recorded by dlq_health_fail. */
int dlq_health_probe(dlq *d, size_t len);
/* Writer thread: re-probes when due (or requested) while unavailable;
 * retries pending recoveries first. Returns ns until the next probe is
 * due (0: none pending, the DLQ is available). */
int64_t dlq_health_tick(dlq *d);
/* Writer thread: retries the recovery of every pending unsealed segment
 * (dlq_writer.c). 0 when none is left. */
int dlq_recover_pending(dlq *d);
/* Adds a pending recovery (writer thread, or dlq_open before it starts). */
int dlq_recover_add(dlq_area *a, uint64_t seq, uint64_t limit, uint64_t acct);

/* Cursor file (dlq_reader.c). 0, SW_ENOTFOUND (none or invalid), SW_EIO. */
int dlq_cursor_load(int dirfd, dlq_pos *pos);
int dlq_cursor_store(int dirfd, const dlq_pos *pos, int sync);

/* Offline commands (dlq_cmd.c): sorted regular file names of dir/sub
 * ("" for dir itself) that may be segments; -1 if unreadable. */
struct dirent;
int dlq_cmd_list_dir(const char *dir, const char *sub, struct dirent ***names);
void dlq_cmd_free_names(struct dirent **names, int n);

#define DLQ_SYNC(d) ((d)->o.fsync != CFG_FSYNC_NEVER)

#endif
