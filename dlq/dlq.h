/* dlq.h — the dead-letter queue: durable, verified, replayable spill storage.
 *
 * A dlq owns one directory of segment files (format: dlq_fmt.h and
 * docs/dlq-format.md) and one writer thread. Producers (the ingest thread
 * spilling from the queue, the export thread spilling failed batches, the
 * main thread at shutdown) each hold a dlq_port and call dlq_append(); the
 * writer thread compresses (zstd), hashes (SHA-256), writes and fsyncs per
 * policy, and posts a completion to the producer's port, whose eventfd
 * wakes the producer's event_base; dlq_port_dispatch() then runs the
 * callbacks on the producer's own thread. One dlq_reader replays records
 * oldest first on a thread that may block (never a network loop).
 *
 * DESIGN. Hand-off: a bounded ring of pending appends guarded by one mutex
 * held for a few instructions per append (no allocation or I/O under it);
 * the spill path is not the per-item hot path, so a lock is simpler than a
 * lock-free ring and lets several producers share the writer. Group commit:
 * the writer takes every pending append at once, writes them all, then with
 * fsync=always issues a single fsync and only then completes them; with
 * batch it fsyncs at most every batch_ms and completes after write(2); with
 * never it does not fsync at all (not even directories). Either way a
 * completion with status 0 means the record is in the file (and on disk
 * for always), so the receiver may answer 200 from the callback.
 * Recovery: dlq_open() reads only segment headers (quarantining files that
 * fail), then the writer thread scans the unsealed segment(s) record by
 * record, cuts a torn or corrupt tail and seals them before taking
 * appends; sealed segments are verified (streamed SHA-256) by the reader
 * when it reaches them, before any of their records is returned. Memory is
 * bounded by the ring, one record and a 1 MiB chunk, whatever the DLQ size;
 * the only per-segment state is a 56-byte entry per segment file (at most
 * max_size / segment_size full segments plus the few sealed early: at
 * shutdown, after a storage error, or when replay emptied an idle one).
 * Open segment: the reader reads the writer's open segment too, without
 * sealing it: the writer publishes, after each batch, how many of its
 * bytes are complete records (written, and fsync'd with fsync=always), and
 * the reader reads up to there, checking each record's SHA-256 (the
 * segment's body hash exists only once it is sealed). The writer seals a
 * segment when it is full, at close, and when the reader has acknowledged
 * every record of it and it has not grown for seal_idle_ms (so that it can
 * be deleted); a steady trickle of spills therefore fills segments to
 * segment_size instead of sealing one per reader poll. A segment is
 * deleted only once every one of its records was acknowledged. Space: an
 * append is refused with SW_EFULL when the bytes on disk plus those
 * reserved by pending appends could pass max_size.
 *
 * STORAGE FAILURES never drop acknowledged data and never crash. dlq_open()
 * checks the directory (create, write, fsync and remove dir/.probe); if that
 * fails the DLQ opens anyway, marked unavailable (a directory that cannot
 * be created or opened at all is an error). A failed segment create, write,
 * fsync or seal (ENOSPC, EIO, EROFS, EFBIG, ...) marks it unavailable too;
 * it is counted (spillway_dlq_write_errors_total), logged (rate-limited),
 * and visible as dlq_available() / dlq_health() and the /readyz component
 * dlq_ready(). While unavailable, dlq_append() fails fast with SW_EUNAVAIL
 * (the producer keeps the item: the receiver answers 503 + Retry-After)
 * and pending appends complete with SW_EUNAVAIL; the writer re-probes after
 * probe_ms, doubling up to 8 x probe_ms (at once when the reader deletes a
 * segment), with a probe as large as the write that failed, and is
 * available again once it succeeds. The failed append completes with
 * SW_EIO and its item is handed back. The segment being written is kept
 * good: a partial record is cut (ftruncate) and writing goes on in the same
 * segment once the storage is back; when even the cut (or an fsync, or the
 * seal) fails, the segment is closed and recovered in place as at start-up
 * — scanned up to its last good record (with fsync=always: the last
 * fsync'd one, since the records after it were refused), cut there and
 * sealed — retried before each probe until it succeeds, while the reader
 * waits at it and then replays it; records already written stay intact.
 *
 * REJECTED AREA. Items the upstream refused for good (HTTP 400, 401, 403,
 * 404, 413 for a single item, ...) are kept in dir/rejected/ for
 * inspection instead of being dropped or replayed forever: the same
 * segment format with its own sequence numbers, each record carrying the
 * upstream's HTTP status and the first bytes of its message (record format
 * 2). The same writer thread writes it (dlq_append_rejected), with the same
 * fsync policy; the reader never looks there. Its bytes count toward
 * max_size, and it is bounded by rejected_max (default max_size / 8): a
 * rejected append that would pass its bound is refused with SW_ETOOBIG
 * (SW_EFULL for max_size or a full ring, as for dlq_append); the producer
 * counts the item dropped and logs. It never takes room that live data
 * needs beyond that share. Operators empty it by hand after
 * inspection (`spillway dlq purge --rejected`, or by removing the .seg
 * files of dir/rejected/ while spillway is stopped).
 *
 * JOURNAL AREA (queue.mode durable; dlq_journal.h). dir/journal/ holds a
 * record of every request the pipeline accepted into memory, appended by
 * dlq_append_journal through the same ring, writer and group commit (zstd
 * level 1), each completion reporting the record's (segment, index). The
 * reader never looks there: the pipeline acknowledges delivered records in
 * per-segment .ack files and deletes fully acknowledged segments; at
 * start-up dlq_journal_recover moves the unacknowledged ones into the main
 * area. Its bytes count toward max_size like the other areas.
 */
#ifndef SW_DLQ_H
#define SW_DLQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/cfg.h"
#include "runtime/item.h"
#include "runtime/metrics.h"

typedef struct dlq dlq;
typedef struct dlq_port dlq_port;
typedef struct dlq_reader dlq_reader;

/* pwrite(2) and fsync(2) replacements, for tests that inject errors. */
typedef ssize_t (*dlq_pwrite_fn)(int fd, const void *p, size_t n, off_t off);
typedef int (*dlq_fsync_fn)(int fd);

typedef struct dlq_opts {
    const char *dir;            /* created if missing (borrowed; copied) */
    uint64_t segment_size;      /* roll before a record would pass it */
    uint64_t max_size;          /* refuse appends past it (SW_EFULL) */
    int compression_level;      /* zstd level */
    int fsync;                  /* cfg_fsync: always | batch | never */
    uint64_t batch_ms;          /* fsync=batch: at most one fsync per batch_ms (default 100) */
    size_t ring_slots;          /* pending appends (default 4096) */
    uint64_t ring_bytes;        /* pending request bytes (0: dlq.ring_bytes of the schema) */
    dlq_pwrite_fn pwrite;       /* NULL: pwrite(2) (records and the probe) */
    dlq_fsync_fn sync_fn;       /* NULL: fsync(2) (group commit and the probe) */
    uint64_t rejected_max;      /* bound of rejected/ (0: max_size / 8) */
    uint64_t probe_ms;          /* unavailable: first re-probe after it (default 1000) */
    uint64_t seal_idle_ms;      /* seal a fully acknowledged open segment idle this long
                                   (default 1000) */
} dlq_opts;

/* Fills o from the config (o->dir borrows c->dlq.dir). */
void dlq_opts_from_cfg(dlq_opts *o, const cfg *c);

/* Opens (creating if needed) the directory, reads the cursor and segment
 * headers, quarantines files that fail, checks the directory is writable
 * (a probe file; if not, the DLQ starts unavailable), and starts the writer
 * thread, which first recovers unsealed segments. m is borrowed (may be
 * NULL) and must outlive the dlq. 0 and *out (owned), or SW_EIO (the
 * directory cannot be created, opened or listed) / SW_ENOMEM / SW_EINVAL.
 * Any thread; blocks for the header reads only. */
int dlq_open(const dlq_opts *o, sw_metrics *m, dlq **out);
/* Stops intake, writes and completes every pending append, seals the open
 * segment, joins the writer and frees. Free the reader first and dispatch
 * the ports afterwards (completions are posted before the join). NULL-safe. */
void dlq_close(dlq *d);
/* Blocks until start-up recovery is done (tests, offline commands). */
void dlq_wait_recovered(dlq *d);
/* Bytes of segment files on disk plus bytes reserved by pending appends. */
uint64_t dlq_used_bytes(dlq *d);
/* Bytes cut from torn or corrupt tails by recovery since dlq_open(). */
uint64_t dlq_cut_bytes(dlq *d);

/* 1 while the DLQ takes appends, 0 while its storage fails. Any thread,
 * lock-free. */
int dlq_available(dlq *d);
/* The same, and a reason ("available", or e.g. "segment write: No space
 * left on device") written into why (len > 0; may be NULL). Any thread. */
int dlq_health(dlq *d, char *why, size_t len);
/* Changes the pace of the replay sources of d (dlq/dlq_consumer.h) to rate
 * bytes/s (0: unpaced), e.g. on a configuration reload. Any thread; each
 * replay thread takes it before its next record (within DLQ_RP_WAIT_MS,
 * 100 ms, also while it waits for tokens), with a full bucket at the new
 * rate. */
void dlq_set_replay_rate(dlq *d, uint64_t rate);
/* /readyz component (telemetry_status_fn): arg is the dlq; ready while
 * available, detail = the reason. */
int dlq_ready(void *arg, char *detail, size_t len);

/* ---- writing: one port per producer thread ---------------------------- */

/* Completion, run by dlq_port_dispatch() on the port owner's thread.
 * status 0: the record is written (and fsync'd if fsync=always); it is
 * NULL, the DLQ freed the item. Otherwise (SW_EIO write error, SW_EUNAVAIL
 * the storage failed before it was tried, SW_ECLOSED) nothing was stored
 * and `it` is handed back, owned by the callback. */
typedef void (*dlq_done_fn)(void *arg, item *it, int status);

/* Returns an owned port of d, or NULL. Any thread; the port then belongs
 * to the thread that appends and dispatches on it. */
dlq_port *dlq_port_new(dlq *d);
/* Frees the port; items of completions not yet dispatched are freed
 * without callbacks. Call after the last completion (dlq_port_pending()
 * is 0) or after dlq_close(). NULL-safe. */
void dlq_port_free(dlq_port *p);
/* eventfd, readable while completions wait for dispatch. */
int dlq_port_fd(const dlq_port *p);
/* Runs waiting completions on the calling thread; returns how many. */
size_t dlq_port_dispatch(dlq_port *p);
/* Appends whose completion was not yet dispatched. */
size_t dlq_port_pending(const dlq_port *p);
/* Waits up to timeout_ms (-1: forever) for completions and dispatches
 * them; returns how many ran. For threads without an event loop. */
size_t dlq_port_wait(dlq_port *p, int timeout_ms);

/* Queues it for the writer. 0: the DLQ owns it and cb(arg, ...) will run
 * exactly once on dlq_port_dispatch(). SW_EFULL (max_size or the ring
 * bound reached), SW_EUNAVAIL (storage failing: see dlq_health), SW_ETOOBIG
 * (over DLQ_MAX_RECORD_LEN) or SW_ECLOSED: the caller keeps it and no
 * callback runs. Never blocks on I/O. */
int dlq_append(dlq_port *p, item *it, dlq_done_fn cb, void *arg);

/* Like dlq_append, into the rejected area (never replayed). http_status is
 * the upstream's answer, msg (borrowed, may be NULL) the start of its
 * error message: its first DLQ_NOTE_MAX bytes are kept, bytes outside
 * printable ASCII as '?'. SW_ETOOBIG also when the rejected area's bound
 * would be passed (final: it frees up only when an operator empties it). */
int dlq_append_rejected(dlq_port *p, item *it, int http_status, const char *msg,
                        dlq_done_fn cb, void *arg);

/* What the rejected area holds (written records; pending appends not
 * included). Any thread. */
typedef struct dlq_rej_stats {
    uint64_t bytes;      /* segment files in rejected/ */
    uint64_t segments;
    uint64_t records;
    uint64_t max;        /* its bound */
    uint64_t refused;    /* appends refused because it was full */
} dlq_rej_stats;
void dlq_rejected_stats(dlq *d, dlq_rej_stats *s);

/* ---- replay ------------------------------------------------------------ */

/* Position just past a record: the replay cursor value once it is acked. */
typedef struct dlq_pos {
    uint64_t seq;        /* segment */
    uint64_t off;        /* offset just past the record */
    uint64_t total;      /* request bytes returned by this reader up to and
                            including the record (for dlq_replayed_bytes) */
    uint64_t items[CLASS_COUNT]; /* items (item->count) of those records, by class
                                    (for dlq_replayed_items) */
} dlq_pos;

/* Returns the owned single reader of d, or NULL; it reads the main area
 * only (never rejected/). The cursor is persisted
 * (fsync'd, atomically renamed) after flush_acks acknowledged records or
 * flush_ms since the first unpersisted ack, whichever comes first (0: 64
 * and 1000). After a crash at most the records acknowledged since the last
 * persist are replayed again (at-least-once). */
dlq_reader *dlq_reader_new(dlq *d, uint32_t flush_acks, uint64_t flush_ms);
/* Reader thread (blocking I/O). 0 with *out (owned) and *pos set; 0 with
 * *out NULL when nothing is readable now (start-up recovery running, all
 * complete records of the open segment read, or the next segment waiting
 * for its recovery after a storage error: call again later). A segment
 * failing verification is quarantined and skipped. SW_ENOMEM / SW_EIO.
 * Also runs dlq_reader_sync(r, 0). */
int dlq_reader_next(dlq_reader *r, item **out, dlq_pos *pos);
/* Any thread. Acknowledges every record up to and including the one at
 * pos (delivered upstream). Acks must follow the order of next(); an ack
 * behind an earlier one is ignored. */
void dlq_reader_ack(dlq_reader *r, const dlq_pos *pos);
/* Reader thread: persists the cursor when due (or when force is set),
 * deletes sealed segments whose records are all acknowledged, and asks the
 * writer to seal the open segment once all of it is acknowledged and it
 * was idle for seal_idle_ms. 0 or SW_EIO. */
int dlq_reader_sync(dlq_reader *r, int force);
/* Any thread: acknowledged records whose position is not persisted yet. */
uint32_t dlq_reader_unpersisted(dlq_reader *r);
/* Persists the cursor and frees. NULL-safe. */
void dlq_reader_free(dlq_reader *r);

#endif
