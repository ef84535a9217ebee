/* dlq_journal.h — queue.mode durable: the journal of accepted requests and
 * its acknowledgement store.
 *
 * In durable mode the pipeline appends every request it accepts into memory
 * to the DLQ's journal area, dir/journal/, and answers 2xx only once the
 * record is written (dlq.fsync, group commit: the same writer thread and
 * segment format as the main area, own sequence numbers). Live delivery
 * still reads the memory copy; the journal is written but read only at
 * start-up. When the memory copy is delivered upstream (or stored in the
 * main area by a spill), the pipeline acknowledges the journal record: an
 * entry in the segment's acknowledgement file. A journal segment whose
 * records are all acknowledged is deleted. At start-up, before intake,
 * dlq_journal_recover() moves every record that is not acknowledged into
 * the main area (replayed from there as any spilled record) and deletes
 * the journal segment: after a kill -9 nothing accepted is lost, and what
 * was delivered but not yet acknowledged is sent again (docs/durability.md
 * bounds it).
 *
 * Threads: dlq_append_journal as dlq_append (the port's thread); a
 * dlq_journal belongs to one thread (the pipeline's ingest thread): the
 * acknowledgement files are written there with write(2), without fsync
 * (a lost acknowledgement costs a duplicate, never data); deleting a
 * fully acknowledged segment is an unlink there, once per segment_size of
 * journal. dlq_journal_recover blocks (start-up only).
 *
 * DESIGN. Acknowledgement file dir/journal/<seq as 16 hex>.ack, next to
 * the segment <seq>.seg it acknowledges; append-only, fixed 16-byte
 * entries, one per acknowledged record, in any order:
 *
 *    0   8  record index within the segment (u64 little-endian)
 *    8   8  FNV-1a 64 over the 16 bytes of (segment sequence, index),
 *           both u64 little-endian: a torn, zeroed or foreign entry
 *           does not match and is ignored (its record is replayed)
 *
 * A trailing partial entry (a kill during the write) is ignored too.
 * Memory stays bounded whatever the journal holds: the running side keeps
 * two counters per journal segment not yet deleted (records stored,
 * records acknowledged) and the acknowledgements of one event-loop pass;
 * recovery reads one segment at a time with a bitmap of its records (one
 * bit per record: at most segment_size / 82 bits, 200 KB for 128 MiB).
 */
#ifndef SW_DLQ_JOURNAL_H
#define SW_DLQ_JOURNAL_H

#include <stdint.h>

#include "dlq/dlq.h"

#define DLQ_JNL_ACK_SUFFIX ".ack"
/* zstd level of journal records: the journal is written for every request
 * and read only after a crash (records moved to the main area are
 * compressed again at dlq.compression_level), so it favours speed. */
#define DLQ_JNL_LEVEL 1
#define DLQ_JNL_ACK_LEN 16

/* A journal record: its segment and its index in the segment. */
typedef struct dlq_jpos {
    uint64_t seq;
    uint64_t index;
} dlq_jpos;

typedef struct dlq_journal dlq_journal;

/* Like dlq_append, into the journal area. *pos (borrowed; valid until cb
 * ran) is set to the record's position before cb runs with status 0. */
int dlq_append_journal(dlq_port *p, item *it, dlq_jpos *pos, dlq_done_fn cb, void *arg);

/* Returns the owned acknowledgement store of d's journal, or NULL. d is
 * borrowed until dlq_journal_detach or dlq_journal_free. Owner thread. */
dlq_journal *dlq_journal_new(dlq *d);
/* A journal append completed with 0 at pos (completions arrive in the
 * writer's order). 0 or SW_ENOMEM (then no journal segment is deleted
 * while running: they are recovered at the next start). */
int dlq_journal_stored(dlq_journal *j, const dlq_jpos *pos);
/* The record at pos is delivered: its acknowledgement is written at the
 * next dlq_journal_flush. 0 or SW_ENOMEM (not acknowledged: replayed after
 * a restart). */
int dlq_journal_ack(dlq_journal *j, const dlq_jpos *pos);
/* Writes the pending acknowledgements and deletes the journal segments
 * that are complete (a later one was written to) and fully acknowledged.
 * Returns how many acknowledgements were written. */
unsigned dlq_journal_flush(dlq_journal *j);
/* The DLQ is about to close: flushes, and from now on only writes
 * acknowledgement files (the segments are deleted at the next start). */
void dlq_journal_detach(dlq_journal *j);
/* Flushes (files only, if detached) and frees. NULL-safe. */
void dlq_journal_free(dlq_journal *j);
/* Journal segments not deleted yet (owner thread). */
size_t dlq_journal_segments(const dlq_journal *j);

/* What dlq_journal_recover did. */
typedef struct dlq_jrecov {
    uint64_t segments;   /* journal segments found */
    uint64_t records;    /* records in them */
    uint64_t acked;      /* acknowledged: dropped */
    uint64_t moved;      /* not acknowledged: appended to the main area */
    uint64_t left;       /* not moved (main area full or unavailable): kept */
} dlq_jrecov;

/* Start-up, before any journal append: waits for the DLQ's recovery, then
 * moves the unacknowledged records of every journal segment into the main
 * area (each moved record is acknowledged in the journal once stored
 * there, so a crash during this step repeats at most one batch) and
 * deletes the journal segments. Blocks. 0; SW_EFULL / SW_EUNAVAIL when the
 * main area could not take everything (the rest stays in the journal for
 * the next start; logged); SW_ENOMEM / SW_EIO. st may be NULL. */
int dlq_journal_recover(dlq *d, dlq_jrecov *st);

#endif
