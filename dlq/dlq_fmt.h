/* dlq_fmt.h — the DLQ's on-disk format: segment header and record header.
 *
 * Pure encode/decode of fixed-size little-endian headers; no I/O, any thread.
 * docs/dlq-format.md is the reference; the diagrams below are its summary.
 *
 * Segment file  <dir>/<seq as 16 lowercase hex digits>.seg
 *
 *   +--------------------------------------------------+  offset 0
 *   | segment header, DLQ_SEG_HDR_LEN = 128 bytes      |
 *   +--------------------------------------------------+  128
 *   | record 0: record header (72) | zstd frame        |
 *   | record 1: ...                                    |
 *   +--------------------------------------------------+  128 + body_len
 *
 * Segment header (rewritten in place, once, when the segment is sealed)
 *
 *    0      8  magic "SWDLQSEG"
 *    8      2  format version (1)
 *   10      2  header length (128)
 *   12      4  flags: bit 0 = sealed
 *   16      8  segment sequence number
 *   24      8  creation time, wall clock ns since the epoch (signed)
 *   32      8  sealing time, wall ns (0 while open)
 *   40      8  record count (0 while open)
 *   48      8  body length in bytes (0 while open)
 *   56     32  SHA-256 of the body, bytes [128, 128 + body_len) (0 while open)
 *   88      8  reserved, zero
 *   96     32  SHA-256 of header bytes [0, 96)
 *
 * Record header, followed by exactly `compressed length` bytes of one zstd
 * frame that decompresses to exactly `uncompressed length` bytes:
 *
 *    0      4  magic "SWR1"
 *    4      1  record format (1)
 *    5      1  class (0 critical, 1 high, 2 normal)
 *    6      1  signal (0 traces, 1 metrics, 2 logs)
 *    7      1  codec (1 = zstd)
 *    8      4  item count (spans, data points, log records)
 *   12      4  uncompressed length (<= DLQ_MAX_RECORD_LEN)
 *   16      4  compressed length
 *   20      4  format 1: reserved, zero
 *              format 2: HTTP status (u16) at 20, note length m (u16) at 22
 *   24      8  receive time, wall clock ns since the epoch (signed)
 *   32      8  record index within the segment (0, 1, 2, ...)
 *   40     32  SHA-256 of record header bytes [0, 40) followed by the
 *              note (format 2) and the compressed payload
 *   72      m  format 2 only: the note, the first bytes (<= DLQ_NOTE_MAX) of
 *              the upstream's error message, printable ASCII
 *   72 + m     payload
 *
 * Format 1 records live in the main area (replayed); format 2 records only
 * in rejected/ (refused by the upstream, kept for inspection, never
 * replayed). The reader of the main area refuses format 2 records.
 */
#ifndef SW_DLQ_FMT_H
#define SW_DLQ_FMT_H

#include <stddef.h>
#include <stdint.h>

#include "dlq/dlq_sha256.h"

#define DLQ_SEG_MAGIC "SWDLQSEG"
#define DLQ_SEG_VERSION 1
#define DLQ_SEG_HDR_LEN 128
#define DLQ_SEG_SEALED 0x1u

#define DLQ_REC_MAGIC "SWR1"
#define DLQ_REC_VERSION 1            /* plain record (main area) */
#define DLQ_REC_VERSION_NOTE 2       /* rejected-area record: status and note */
#define DLQ_NOTE_MAX 256             /* bytes of the upstream's message kept */
#define DLQ_REC_HDR_LEN 72
#define DLQ_REC_HASHED 40            /* header bytes covered by the record hash */
#define DLQ_CODEC_ZSTD 1
#define DLQ_MAX_RECORD_LEN (64u << 20) /* largest uncompressed record */

#define DLQ_SEG_NAME_LEN 20          /* "%016llx.seg" */

typedef struct dlq_seg_hdr {
    uint32_t flags;
    uint64_t seq;
    int64_t created_ns;
    int64_t sealed_ns;
    uint64_t records;
    uint64_t body_len;
    uint8_t body_sha[DLQ_SHA256_LEN];
} dlq_seg_hdr;

typedef struct dlq_rec_hdr {
    uint8_t klass;
    uint8_t signal;
    uint32_t count;
    uint32_t ulen;
    uint32_t clen;
    int64_t recv_wall_ns;
    uint64_t index;
    uint16_t status;     /* format 2: the upstream's HTTP status; 0 in format 1 */
    uint16_t note_len;   /* format 2: note bytes after the header; 0 in format 1 */
    uint8_t sha[DLQ_SHA256_LEN];
} dlq_rec_hdr;

/* Bytes of the whole record on disk: header, note, payload. */
static inline uint64_t dlq_rec_size(const dlq_rec_hdr *h)
{
    return DLQ_REC_HDR_LEN + (uint64_t)h->note_len + h->clen;
}

/* Encodes h into out, computing the header hash. 0 or SW_EIO. */
int dlq_seg_hdr_encode(const dlq_seg_hdr *h, uint8_t out[DLQ_SEG_HDR_LEN]);
/* Decodes and checks magic, version, length, reserved bytes and the header
 * hash. 0, or SW_EDECODE with a static reason in *why. */
int dlq_seg_hdr_decode(const uint8_t in[DLQ_SEG_HDR_LEN], dlq_seg_hdr *h, const char **why);

/* Encodes h into out: format 2 when h->status or h->note_len is set, else
 * format 1. The hash field is written as given: compute it with
 * dlq_rec_hash() over the encoded bytes first. */
void dlq_rec_hdr_encode(const dlq_rec_hdr *h, uint8_t out[DLQ_REC_HDR_LEN]);
/* Decodes and checks the structure (magic, format, codec, class, signal,
 * lengths, reserved). Does not check the hash. 0 or SW_EDECODE (+ *why). */
int dlq_rec_hdr_decode(const uint8_t in[DLQ_REC_HDR_LEN], dlq_rec_hdr *h, const char **why);
/* SHA-256 of the encoded header's first DLQ_REC_HASHED bytes and payload
 * (for format 2: the note followed by the payload, clen = m + clen). */
int dlq_rec_hash(const uint8_t hdr[DLQ_REC_HDR_LEN], const uint8_t *payload, size_t clen,
                 uint8_t out[DLQ_SHA256_LEN]);
/* Largest compressed length a record may declare. */
size_t dlq_rec_max_clen(void);

/* Writes "<16 hex>.seg" into name (DLQ_SEG_NAME_LEN + 1 bytes). */
void dlq_seg_name(uint64_t seq, char name[DLQ_SEG_NAME_LEN + 1]);
/* 0 and *seq if name is exactly a segment file name, else -1. */
int dlq_seg_name_parse(const char *name, uint64_t *seq);

#endif
