/* dlq_cmd.h — `spillway dlq {ls,verify,dump,replay} --dir DIR`, and
 * `spillway dlq {ls,verify,dump,purge} --rejected --dir DIR`.
 *
 * Offline commands over a DLQ directory, for cmd/spillway.c (main thread,
 * blocking I/O; spillway must not be running on the same directory).
 * ls, verify and dump only read: nothing is cut, sealed or quarantined.
 * replay opens the DLQ like the collector does (recovery, quarantine),
 * sends every record oldest first through the token bucket, acknowledges
 * what was accepted and deletes fully replayed segments. Each returns the
 * process exit code: 0, or 1 (error or corruption; reasons are written
 * to out or logged).
 */
#ifndef SW_DLQ_CMD_H
#define SW_DLQ_CMD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime/item.h"

/* Lists segments (sequence file, state sealed/open/quarantined/invalid,
 * bytes, records, age), the cursor and totals. */
int dlq_cmd_ls(const char *dir, FILE *out);
/* Verifies every segment: header checksum, body SHA-256, every record's
 * SHA-256 and zstd frame, record count. A torn tail of the open segment is
 * reported (it is cut at the next start) but is not corruption; files in
 * quarantine/ are listed, not checked. 1 on any corruption. */
int dlq_cmd_verify(const char *dir, FILE *out);
/* One JSON object per line and record, oldest first: segment, offset,
 * class, signal, items, recv_time_unix_nano and request (OTLP/JSON).
 * Segments failing verification are skipped (exit 1). */
int dlq_cmd_dump(const char *dir, FILE *out);

/* The same for the rejected area (dir/rejected/: records the upstream
 * refused for good, never replayed). dump adds "status" (the upstream's
 * HTTP status) and "message" (the start of its error message) to each
 * line. A DLQ without a rejected area lists/verifies/dumps as empty (0). */
int dlq_cmd_ls_rejected(const char *dir, FILE *out);
int dlq_cmd_verify_rejected(const char *dir, FILE *out);
int dlq_cmd_dump_rejected(const char *dir, FILE *out);
/* Removes every segment file of the rejected area (after inspection; not
 * its quarantine/). Prints what was removed. */
int dlq_cmd_purge_rejected(const char *dir, FILE *out);
/* dir/rejected into path: 0, SW_ENOTFOUND (no rejected area) or SW_EINVAL. */
int dlq_cmd_rejected_path(const char *dir, char *path, size_t len);

/* Sends one Export<sig>ServiceRequest upstream. 0 when it was accepted
 * (2xx), non-zero otherwise. */
typedef int (*dlq_send_fn)(void *arg, sw_signal sig, const uint8_t *data, size_t len);
/* Replays the directory through send at `rate` request bytes per second
 * (0: unlimited). A record is retried 5 times with backoff (1, 2, 4, 8 s)
 * before the command stops with 1; the cursor keeps what was acknowledged,
 * so a rerun continues there. Prints a summary to out. */
int dlq_cmd_replay(const char *dir, uint64_t rate, dlq_send_fn send, void *arg, FILE *out);

#endif
