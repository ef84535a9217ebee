/* item_track.h — delivery tracking: tell a producer when its data is safe.
 *
 * Some producers must know when the items made from their data are safe —
 * delivered upstream, or stored in the DLQ — not merely queued in memory:
 * the file receiver advances a file position only then, and durable intake
 * acknowledges its log record only then. An item_tracker counts the items
 * that still carry it; each item holding a reference (item->trk) settles it
 * exactly once, where its fate is decided:
 *   - the exporter, when the upstream acknowledged the batch holding it
 *     (2xx), or when it gives up on it for good (failed);
 *   - the DLQ, when the record is written (fsync'd per policy): dlq_port
 *     settles a stored item before freeing it;
 *   - item_free() of an item still holding a reference settles it as
 *     failed, so a tracker is never left waiting for an item that is gone.
 * When the last reference goes, the tracker is posted to its track_box and
 * its callback runs on the box owner's thread (the box's event_base) with
 * failed = 1 if any item was settled as failed.
 *
 * Threads: a track_box and the trackers' callbacks belong to one thread
 * (the one whose event_base the box was made on); references are taken on
 * that thread before the items are handed on, and released from any thread.
 * Items without a tracker (it->trk NULL, the common case) cost nothing.
 *
 * DESIGN. A tracker is an atomic reference count, an atomic "failed" flag
 * and a callback. The last release pushes it onto the box's list under the
 * box mutex (a few instructions, not on the untracked hot path) and writes
 * the box's eventfd when the list was empty; the owner's event callback
 * takes the whole list and runs the callbacks. The box is reference-counted
 * by the trackers still alive, so it may be freed (track_box_free) while
 * tracked items still sit in the queue or the DLQ ring: their trackers are
 * then freed without a callback when their last reference goes.
 */
#ifndef SW_ITEM_TRACK_H
#define SW_ITEM_TRACK_H

#include "runtime/item.h"

struct event_base;
typedef struct track_box track_box;
typedef struct item_tracker item_tracker;

/* Callback on the box owner's thread once every reference was released.
 * failed: 1 if any item was settled as failed (dropped for good). */
typedef void (*item_tracker_fn)(void *arg, int failed);

/* Returns an owned box whose callbacks run on base's thread, or NULL. */
track_box *track_box_new(struct event_base *base);
/* Drops the owner's reference: no callback runs any more; trackers still
 * referenced by items are freed when their last reference goes. NULL-safe. */
void track_box_free(track_box *b);
/* Runs the callbacks of trackers released so far (the event does this;
 * for shutdown paths and tests). Owner thread. Returns how many ran. */
unsigned track_box_dispatch(track_box *b);
/* Trackers created on b and not yet called back. Owner thread. */
unsigned track_box_live(const track_box *b);

/* Returns a tracker holding one reference (the creator's), or NULL. The
 * creator hands references to items (item_track_attach), then releases its
 * own with item_tracker_release(t, 0): the callback cannot run before. */
item_tracker *item_tracker_new(track_box *b, item_tracker_fn fn, void *arg);
/* Adds a reference. The caller must already hold one. Any thread. */
void item_tracker_ref(item_tracker *t);
/* Releases a reference; failed marks the whole tracker failed. Any thread. */
void item_tracker_release(item_tracker *t, int failed);

/* Gives `it` a reference to t (it->trk must be NULL). */
void item_track_attach(item *it, item_tracker *t);
/* Settles it: releases its reference, if any (failed: dropped for good,
 * else delivered or stored). Any thread; then it->trk is NULL. */
void item_settle(item *it, int failed);

#endif
