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
 * consumer takes from the ring, the source is resumed, or it stops;
 * dlq_reader_next() persists the cursor when due and the thread calls
 * dlq_reader_sync(r, 0) itself while idle.
 */
#ifndef SW_DLQ_CONSUMER_H
#define SW_DLQ_CONSUMER_H

#include <stdint.h>

#include "dlq/dlq.h"

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

#endif
