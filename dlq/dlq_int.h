/* dlq_int.h — internals shared by dlq_store.c, dlq_writer.c, dlq_reader.c. */
#ifndef SW_DLQ_INT_H
#define SW_DLQ_INT_H

#include <pthread.h>
#include <zstd.h>

#include "dlq/dlq.h"
#include "dlq/dlq_seg.h"

/* One pending append; moves ring -> writer batch -> port's done list. */
typedef struct dlq_req {
    struct dlq_req *next;
    dlq_port *port;
    item *it;
    dlq_done_fn cb;
    void *arg;
    uint64_t reserve;    /* bytes reserved against max_size */
    int status;
} dlq_req;

/* One segment file known to the store. */
typedef struct dlq_seginfo {
    uint64_t seq;
    uint64_t bytes;      /* file size */
    uint64_t records;
    int64_t created_ns;
    int sealed;
} dlq_seginfo;

/* The segment being appended to (writer thread only). */
typedef struct dlq_open_seg {
    int fd;              /* -1: none */
    uint64_t seq;
    uint64_t size;
    uint64_t records;
    int64_t created_ns;
    dlq_sha256 *body;
} dlq_open_seg;

struct dlq {
    dlq_opts o;
    char *dir;
    int dirfd;
    sw_metrics *m;
    sw_metrics *own_m;

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
    uint64_t used;       /* disk bytes + reservations */
    uint64_t cut_bytes;
    dlq_pos cursor;      /* first unacknowledged position (persisted form) */
    int stop, seal_req, recovered;

    /* writer thread only */
    uint64_t next_seq;
    uint64_t *recover;   /* unsealed segments found at open */
    size_t nrecover;
    dlq_open_seg cur;
    ZSTD_CCtx *cctx;
    buf wbuf;
    dlq_recbuf *rb;
    uint64_t disk_added;     /* bytes written by the current batch */
    int64_t last_fsync_ns;
    int dirty;
    int has_reader;
};

/* Segment table, d->mu held. */
int dlq_segs_add(dlq *d, const dlq_seginfo *s);
dlq_seginfo *dlq_segs_find(dlq *d, uint64_t seq);
void dlq_segs_remove(dlq *d, uint64_t seq);
/* Recomputes dlq_bytes, dlq_segments, dlq_oldest_wall_ns. */
void dlq_segs_publish(dlq *d);

/* Writer thread body (dlq_writer.c). */
void *dlq_writer_main(void *arg);
/* Completes r with status on its port (any thread, no lock held). */
void dlq_req_complete(dlq_req *r, int status);

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
