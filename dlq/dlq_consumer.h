/* dlq_consumer.h — the DLQ's consumer side: replay as a paced source.
 *
 * A dlq_replay owns the DLQ's single reader and a replay thread. The
 * thread (blocking I/O allowed: it verifies segments and reads records)
 * takes the next record while the source is not paused, waits for the
 * token bucket (dlq.replay.rate bytes of request per second, paced on
 * item->len) and hands {item, position} over through a small SPSC ring,
 * making the source's eventfd readable. The consumer (one thread, e.g.
 * the export loop) peeks and takes records in order and acknowledges the
 * position of each record once it is delivered; the reader persists the
 * cursor and deletes segments whose records are all acknowledged. Records
 * taken but never acknowledged are replayed again after a restart.
 *
 * Threads: new/start/stop/close/free on the owner's (main) thread; the
 * consumer functions (fd, clear, peek, take, ack, drain) on the consumer
 * thread; pause from any thread. The ring is single-producer (the replay
 * thread) single-consumer.
 *
 * DESIGN. With nothing to read, paused, or the ring full, the thread sleeps
 * on a condition variable for at most DLQ_RP_WAIT_MS, woken early when the
 * consumer takes from the ring, the source is resumed, or it stops. With
 * nothing to read and no acknowledgement left to persist, the first source
 * of a DLQ sleeps up to a second instead, woken by the writer when the
 * segment table changes (new records); a second source polls;
 * dlq_reader_next() persists the cursor when due and the thread calls
 * dlq_reader_sync(r, 0) itself while idle.
 */
#ifndef SW_DLQ_CONSUMER_H
#define SW_DLQ_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include "dlq/dlq.h"

struct event_base;

typedef struct dlq_replay dlq_replay;

/* Returns an owned, stopped source over d (borrowed; open until after
 * dlq_replay_close), replaying at rate bytes/s (0: unpaced), or NULL. */
dlq_replay *dlq_replay_new(dlq *d, uint64_t rate);
/* Starts the replay thread. 0 or SW_EIO. */
int dlq_replay_start(dlq_replay *r);
/* Stops and joins the thread (a record read but not handed over stays in
 * the DLQ, unacknowledged). Idempotent. */
void dlq_replay_stop(dlq_replay *r);
/* After dlq_replay_stop and the consumer's last ack: persists the cursor
 * and frees the reader (later acks are ignored). Idempotent. */
void dlq_replay_close(dlq_replay *r);
/* Stops, drains, closes and frees. NULL-safe. */
void dlq_replay_free(dlq_replay *r);

/* paused 1: the thread reads nothing more (e.g. the upstream is down);
 * 0: it goes on at once. Any thread. */
void dlq_replay_pause(dlq_replay *r, int paused);

/* eventfd, readable when records were handed over; dlq_replay_clear()
 * resets it (consumer thread). */
int dlq_replay_fd(const dlq_replay *r);
void dlq_replay_clear(dlq_replay *r);
/* The next record (borrowed, still in the ring), or NULL. */
const item *dlq_replay_peek(dlq_replay *r);
/* Takes the next record out: returns it (owned) with its position, or
 * NULL. */
item *dlq_replay_take(dlq_replay *r, dlq_pos *pos);
/* Acknowledges every record up to and including pos (delivered, or safely
 * stored elsewhere). Acks follow the order of take. */
void dlq_replay_ack(dlq_replay *r, const dlq_pos *pos);
/* Frees what waits in the ring (still in the DLQ, unacknowledged). */
void dlq_replay_drain(dlq_replay *r);

/* ---- the sink: appends from one event loop (dlq_sink.c) -------------------
 *
 * A dlq_sink is a producer's side of the DLQ on an event loop: its
 * dlq_port, the port's event on the loop (completions are dispatched
 * there), one ordered backlog of appends that found the DLQ's ring full
 * for the moment (appended again, in order, as completions free room),
 * and the DLQ's health as this producer saw it. An append the writer
 * fails (SW_EIO: ENOSPC, EIO, a read-only disk), or one dlq_append
 * refuses for a reason other than room, marks the sink failing:
 * every further append is refused at once (SW_EIO, the caller keeps the
 * item) until DLQ_SINK_RETRY_MIN_MS passed; then one append goes through
 * as a probe; its success ends the failure, its failure doubles the wait
 * up to DLQ_SINK_RETRY_MAX_MS. on_room(arg) runs on the loop after
 * completions were dispatched and when a retry is due: the moment to try
 * again. Loop thread only (new and free on the owner thread while the
 * loop does not run). */
#define DLQ_SINK_RETRY_MIN_MS 1000
#define DLQ_SINK_RETRY_MAX_MS 30000

typedef struct dlq_sink dlq_sink;

/* Returns an owned sink of d (borrowed) on base, or NULL. */
dlq_sink *dlq_sink_new(dlq *d, struct event_base *base, void (*on_room)(void *arg),
                       void *arg);
/* Waits up to 10 s for completions still owed (the DLQ open or already
 * closed) and dispatches them, refuses what is still backlogged
 * (callbacks with SW_ECLOSED), frees. NULL-safe. */
void dlq_sink_free(dlq_sink *s);
/* Appends it. 0: the sink owns it and cb(cb_arg, it, status) runs exactly
 * once (status 0: stored and freed by the DLQ; otherwise it is handed
 * back). Otherwise nothing was taken and no callback runs: SW_EFULL
 * (max_size), SW_ETOOBIG, SW_ECLOSED, or SW_EIO while failing. */
int dlq_sink_put(dlq_sink *s, item *it, dlq_done_fn cb, void *cb_arg);
/* The same into the rejected area, with the upstream's status and the
 * start of its message (copied). */
int dlq_sink_put_rejected(dlq_sink *s, item *it, int code, const char *msg, dlq_done_fn cb,
                          void *cb_arg);
/* 1 while failing and the next try is not due (appends are refused). */
int dlq_sink_blocked(const dlq_sink *s);
/* 1 while an append would wait in the backlog (ring full for now). */
int dlq_sink_backlogged(const dlq_sink *s);
/* Stopping: every append is tried, failing or not. */
void dlq_sink_stopping(dlq_sink *s);
/* Dispatches completions and appends backlogged items until nothing is
 * pending or ms passed; then refuses what is still backlogged (SW_ECLOSED
 * callbacks). Returns the appends still unconfirmed (the DLQ writes them
 * before it closes); *backlogged (may be NULL) gets how many were refused. */
size_t dlq_sink_drain(dlq_sink *s, uint64_t ms, size_t *backlogged);

#endif
