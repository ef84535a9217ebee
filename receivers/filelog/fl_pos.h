/* fl_pos.h — the filelog receiver's position files.
 *
 * A position says how far a file was read *and* delivered: (device, inode,
 * fingerprint of the first bytes, offset). The receiver keeps them in its
 * per-file state and saves the whole set now and then (fl_pos_save); this
 * module only encodes, decodes, writes and reads the files. Pure functions
 * (encode/decode) plus blocking file I/O on the caller's thread (a save is a
 * small write, fsync and rename; it runs on the ingest thread every
 * flush.updates updates or flush.interval, see docs/filelog.md).
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
/* Loads the newest valid generation into out (initialised; empty and seq 0
 * when there is none). *corrupt = generation files present but invalid
 * (each logged). 0, or SW_ENOMEM. */
int fl_pos_load(const char *dir, fl_pos_set *out, unsigned *corrupt);

#endif
