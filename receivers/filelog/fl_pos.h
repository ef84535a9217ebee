/* fl_pos.h — the filelog receiver's position files.
 *
 * A position says how far a file was read *and* delivered: (device, inode,
 * fingerprint of the first bytes, offset). The receiver keeps them in its
 * per-file state and saves the whole set now and then; this module encodes,
 * decodes, writes and reads the files. Encoding and decoding are pure; the
 * blocking writes (write, fsync, rename) run on the position writer thread
 * (fl_saver below), so the ingest loop never waits for the disk; loading
 * runs once at start-up. See docs/filelog.md.
 *
 * On disk: three generations DIR/positions.0, .1, .2; save number `seq`
 * goes to positions.<seq % 3> through DIR/positions.tmp (write, fsync,
 * rename, fsync DIR), so a crash leaves every generation either old or new,
 * never torn. Load takes the valid generation with the highest seq; invalid
 * ones are reported (corrupt count) and skipped.
 *
 *   spillway-filelog-positions 1\n
 *   seq <seq>\n
 *   pos <dev> <ino> <fp_len> <fp_hash:016x> <offset> <path, %XX-escaped>\n   (n times)
 *   end <n> <crc32 of every byte before "end", 08x>\n
 */
#ifndef SW_FL_POS_H
#define SW_FL_POS_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"

#define FL_FP_MAX 256       /* bytes of a file's start in its fingerprint */
#define FL_POS_GENERATIONS 3

typedef struct fl_pos_entry {
    uint64_t dev, ino;
    uint32_t fp_len;        /* bytes fingerprinted (<= FL_FP_MAX; 0 = empty file) */
    uint64_t fp_hash;       /* FNV-1a 64 of those bytes */
    uint64_t offset;        /* next byte to read after a restart */
    char *path;             /* owned; informational (the key is dev/ino) */
} fl_pos_entry;

typedef struct fl_pos_set {
    fl_pos_entry *v;        /* owned */
    size_t n, cap;
    uint64_t seq;           /* save number of the generation it came from */
} fl_pos_set;

void fl_pos_set_init(fl_pos_set *s);
void fl_pos_set_destroy(fl_pos_set *s);
/* Appends a copy of e (path copied). 0 or SW_ENOMEM. */
int fl_pos_set_add(fl_pos_set *s, const fl_pos_entry *e);

/* FNV-1a 64 of p[0..n). */
uint64_t fl_fp_hash(const void *p, size_t n);

/* Appends the file image of entries v[0..n) with save number seq to out. */
int fl_pos_encode(uint64_t seq, const fl_pos_entry *v, size_t n, buf *out);
/* Decodes a file image (borrowed) into out (initialised, appended to).
 * 0, SW_EDECODE (corrupt: out emptied) or SW_ENOMEM. */
int fl_pos_decode(const char *data, size_t len, fl_pos_set *out);

/* Writes generation seq % 3 atomically. Creates dir if missing. 0 or SW_EIO
 * (errno logged) / SW_ENOMEM. Blocking (fsync). */
int fl_pos_save(const char *dir, uint64_t seq, const fl_pos_entry *v, size_t n);
/* The same with the image already encoded (data[0..len), borrowed). */
int fl_pos_write(const char *dir, uint64_t seq, const uint8_t *data, size_t len);

/* The position writer: a thread that writes the images the ingest thread
 * encodes, so the fsync never blocks the event loop. The latest image
 * wins: one posted while an older one waits replaces it. The mutex guards
 * the waiting image, the counters and the stop flag. */
typedef struct fl_saver fl_saver;
/* Starts the thread for dir (borrowed, outlives it); counts saves and the
 * save lag in m (borrowed, may be NULL). Owned, or NULL. */
struct fl_metrics;
fl_saver *fl_saver_start(const char *dir, struct fl_metrics *m);
/* Hands over image data (takes ownership, malloc'd) of save number seq;
 * first_ns: monotonic time of the oldest change it holds (for the lag). */
void fl_saver_post(fl_saver *s, uint64_t seq, uint8_t *data, size_t len, int64_t first_ns);
/* Waits until every image posted so far is written. 0, or SW_EIO if the
 * last write failed. */
int fl_saver_flush(fl_saver *s);
/* Writes completed, and the lag (ns from first_ns to the write) of the last. */
uint64_t fl_saver_written(fl_saver *s, int64_t *last_lag_ns);
/* Flushes, stops the thread, frees. NULL-safe. */
void fl_saver_stop(fl_saver *s);
/* Loads the newest valid generation into out (initialised; empty and seq 0
 * when there is none). *corrupt = generation files present but invalid
 * (each logged). 0, or SW_ENOMEM. */
int fl_pos_load(const char *dir, fl_pos_set *out, unsigned *corrupt);

#endif
