/* dlq_seg.h — segment file I/O: headers, record reads, verification, scans,
 * creation, sealing and quarantine (format in dlq_fmt.h).
 *
 * Blocking file I/O: call only from the DLQ writer or reader thread or from
 * an offline command. Memory is bounded by one record (DLQ_MAX_RECORD_LEN
 * plus its compressed size) and a 1 MiB streaming chunk, whatever the size
 * of the segment. A dlq_recbuf belongs to one thread.
 */
#ifndef SW_DLQ_SEG_H
#define SW_DLQ_SEG_H

#include <stdint.h>

#include "dlq/dlq_fmt.h"
#include "runtime/buf.h"
#include "runtime/item.h"
#include "dlq/dlq_metrics.h"

/* Scratch for reading records: compressed and decompressed buffers, a
 * zstd decompression context. */
typedef struct dlq_recbuf dlq_recbuf;
dlq_recbuf *dlq_recbuf_new(void);
void dlq_recbuf_free(dlq_recbuf *rb);

/* Reads the header of an open segment file. 0; SW_EDECODE with *why when
 * the file is too short or the header fails its checks; SW_EIO. */
int dlq_seg_read_hdr(int fd, dlq_seg_hdr *h, uint64_t *file_size, const char **why);

/* Reads and checks the record at off (header structure, index == expect,
 * end of payload <= end, SHA-256). The note and compressed payload stay in
 * rb; the record ends at off + dlq_rec_size(h).
 * 0, SW_EDECODE (+ *why; a truncated record is SW_EDECODE too), SW_EIO,
 * SW_ENOMEM. */
int dlq_seg_read_rec(dlq_recbuf *rb, int fd, uint64_t off, uint64_t end, uint64_t expect,
                     dlq_rec_hdr *h, const char **why);
/* Decompresses the record last read into rb and returns it as an owned
 * item (receive time converted back to the monotonic clock). 0,
 * SW_EDECODE (not exactly ulen bytes), SW_ENOMEM. */
int dlq_rec_to_item(dlq_recbuf *rb, const dlq_rec_hdr *h, item **out);

/* Copies the note of the record last read into rb (format 2: the first
 * bytes of the upstream's error message; "" for format 1) into out
 * (outlen > 0), NUL-terminated, bytes outside printable ASCII as '?'. */
void dlq_rec_note(const dlq_recbuf *rb, const dlq_rec_hdr *h, char *out, size_t outlen);

/* Sealed segment: checks the file length and streams the body through
 * SHA-256 against the header. 0, SW_EDECODE (+ *why) or SW_EIO. */
int dlq_seg_verify_body(int fd, const dlq_seg_hdr *h, uint64_t file_size, const char **why);

/* Result of a record-by-record scan. */
typedef struct dlq_scan {
    uint64_t records;     /* valid records from the start */
    uint64_t good_end;    /* offset just past the last valid record */
    const char *why;      /* why the scan stopped early (NULL: clean end) */
    uint8_t body_sha[DLQ_SHA256_LEN]; /* SHA-256 of [128, good_end) */
} dlq_scan;
/* Walks records from DLQ_SEG_HDR_LEN to file_size, checking each one's
 * hash (and, when decompress is set, its zstd frame), and stops at the
 * first invalid or truncated record. 0 (even if it stopped early: see
 * s->why) or SW_EIO / SW_ENOMEM. */
int dlq_seg_scan(dlq_recbuf *rb, int fd, uint64_t file_size, int decompress, dlq_scan *s);

/* Creates <dir>/<seq>.seg holding an open header (through a .tmp file and
 * rename, so a crash never leaves a partial header under a segment name).
 * fsyncs the file and the directory when sync is set. Returns the fd
 * (O_RDWR) in *fd. 0 or SW_EIO. */
int dlq_seg_create(int dirfd, uint64_t seq, int64_t created_ns, int sync, int *fd);
/* Rewrites the header of an open segment as sealed (h complete), after an
 * fsync of the data when sync is set, then fsyncs again. 0 or SW_EIO. */
int dlq_seg_seal(int fd, const dlq_seg_hdr *h, int sync);

/* Moves <dir>/<name> into <dir>/quarantine/ (a free name is chosen if one
 * exists), logs why at WARN and counts dlq_corrupt_segments (m may be
 * NULL). 0 or SW_EIO. */
int dlq_quarantine(int dirfd, const char *name, const char *why, dlq_metrics *m);

/* fsync of a directory fd; logs on failure. 0 or SW_EIO. */
int dlq_sync_dir(int dirfd);

/* Monotonic <-> wall clock conversion of receive times. */
int64_t dlq_mono_to_wall(int64_t mono_ns);
int64_t dlq_wall_to_mono(int64_t wall_ns);

#endif
