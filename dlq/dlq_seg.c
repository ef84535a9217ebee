/* dlq_seg.c — see dlq_seg.h. */
#define LOG_COMPONENT "dlq"
#include "dlq/dlq_seg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "runtime/clock.h"
#include "runtime/ascii.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define CHUNK (1u << 20)

struct dlq_recbuf {
    buf cbuf;            /* note and compressed payload of the last record read */
    buf ubuf;            /* decompressed payload */
    ZSTD_DCtx *dctx;
};

dlq_recbuf *dlq_recbuf_new(void)
{
    dlq_recbuf *rb = calloc(1, sizeof *rb);
    if (!rb) return NULL;
    buf_init(&rb->cbuf, dlq_rec_max_clen() + DLQ_NOTE_MAX);
    buf_init(&rb->ubuf, DLQ_MAX_RECORD_LEN);
    rb->dctx = ZSTD_createDCtx();
    if (!rb->dctx) {
        dlq_recbuf_free(rb);
        return NULL;
    }
    return rb;
}

void dlq_recbuf_free(dlq_recbuf *rb)
{
    if (!rb) return;
    buf_destroy(&rb->cbuf);
    buf_destroy(&rb->ubuf);
    ZSTD_freeDCtx(rb->dctx);
    free(rb);
}

/* Reads exactly n bytes at off. 0, 1 at end of file (short), SW_EIO. */
static int pread_full(int fd, void *p, size_t n, uint64_t off)
{
    uint8_t *d = p;
    while (n > 0) {
        ssize_t r = pread(fd, d, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            LOG_ERROR("segment read failed: %s", strerror(errno));
            return SW_EIO;
        }
        if (r == 0) return 1;
        d += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

int dlq_seg_read_hdr(int fd, dlq_seg_hdr *h, uint64_t *file_size, const char **why)
{
    uint8_t raw[DLQ_SEG_HDR_LEN];
    struct stat st;
    *why = NULL;
    if (fstat(fd, &st) != 0) {
        LOG_ERROR("segment fstat failed: %s", strerror(errno));
        return SW_EIO;
    }
    *file_size = (uint64_t)st.st_size;
    if (st.st_size == 0) {
        *why = "empty file";
        return SW_EDECODE;
    }
    int rc = pread_full(fd, raw, sizeof raw, 0);
    if (rc < 0) return rc;
    if (rc == 1) {
        *why = "truncated segment header";
        return SW_EDECODE;
    }
    return dlq_seg_hdr_decode(raw, h, why);
}

int dlq_seg_read_rec(dlq_recbuf *rb, int fd, uint64_t off, uint64_t end, uint64_t expect,
                     dlq_rec_hdr *h, const char **why)
{
    uint8_t raw[DLQ_REC_HDR_LEN];
    uint8_t sum[DLQ_SHA256_LEN];
    *why = "truncated record";
    if (end < off || end - off < DLQ_REC_HDR_LEN) return SW_EDECODE;
    int rc = pread_full(fd, raw, sizeof raw, off);
    if (rc != 0) return rc < 0 ? rc : SW_EDECODE;
    if (dlq_rec_hdr_decode(raw, h, why) != 0) return SW_EDECODE;
    if (h->index != expect) {
        *why = "record index out of sequence";
        return SW_EDECODE;
    }
    *why = "truncated record";
    size_t n = (size_t)h->note_len + h->clen; /* note (format 2), then payload */
    if (end - off - DLQ_REC_HDR_LEN < n) return SW_EDECODE;
    buf_reset(&rb->cbuf);
    if ((rc = buf_reserve(&rb->cbuf, n)) != 0) return rc;
    rc = pread_full(fd, rb->cbuf.data, n, off + DLQ_REC_HDR_LEN);
    if (rc != 0) return rc < 0 ? rc : SW_EDECODE;
    rb->cbuf.len = n;
    if ((rc = dlq_rec_hash(raw, rb->cbuf.data, n, sum)) != 0) return rc;
    *why = "record checksum mismatch";
    if (memcmp(sum, h->sha, DLQ_SHA256_LEN) != 0) return SW_EDECODE;
    *why = NULL;
    return 0;
}

int dlq_rec_to_item(dlq_recbuf *rb, const dlq_rec_hdr *h, item **out)
{
    buf_reset(&rb->ubuf);
    int rc = buf_reserve(&rb->ubuf, h->ulen ? h->ulen : 1);
    if (rc) return rc;
    size_t n = ZSTD_decompressDCtx(rb->dctx, rb->ubuf.data, h->ulen,
                                   rb->cbuf.data + h->note_len, h->clen);
    if (ZSTD_isError(n) || n != h->ulen) return SW_EDECODE;
    item *it = item_new((sw_signal)h->signal, (sw_class)h->klass, h->count,
                        dlq_wall_to_mono(h->recv_wall_ns), rb->ubuf.data, n);
    if (!it) return SW_ENOMEM;
    *out = it;
    return 0;
}

void dlq_rec_note(const dlq_recbuf *rb, const dlq_rec_hdr *h, char *out, size_t outlen)
{
    ascii_copy(out, outlen, rb->cbuf.data, h->note_len);
}

int dlq_seg_verify_body(int fd, const dlq_seg_hdr *h, uint64_t file_size, const char **why)
{
    uint8_t sum[DLQ_SHA256_LEN];
    *why = NULL;
    if (!(h->flags & DLQ_SEG_SEALED)) *why = "segment not sealed";
    else if (file_size != DLQ_SEG_HDR_LEN + h->body_len) *why = "segment length differs from its header";
    if (*why) return SW_EDECODE;
    int rc = SW_ENOMEM;
    uint8_t *chunk = malloc(CHUNK);
    dlq_sha256 *s = dlq_sha256_new();
    if (!chunk || !s) goto out;
    for (uint64_t off = 0; off < h->body_len;) {
        size_t n = h->body_len - off < CHUNK ? (size_t)(h->body_len - off) : CHUNK;
        rc = pread_full(fd, chunk, n, DLQ_SEG_HDR_LEN + off);
        if (rc == 1) rc = SW_EDECODE, *why = "segment shorter than its header says";
        if (rc) goto out;
        if ((rc = dlq_sha256_update(s, chunk, n)) != 0) goto out;
        off += n;
    }
    if ((rc = dlq_sha256_final(s, sum)) != 0) goto out;
    if (memcmp(sum, h->body_sha, DLQ_SHA256_LEN) != 0) {
        *why = "segment body checksum mismatch";
        rc = SW_EDECODE;
    }
out:
    free(chunk);
    dlq_sha256_free(s);
    return rc;
}

/* One record of a scan: read, optionally decompress, add to the body hash. */
static int scan_one(dlq_recbuf *rb, int fd, uint64_t off, uint64_t end, uint64_t idx,
                    int decompress, dlq_sha256 *body, dlq_rec_hdr *h, const char **why)
{
    uint8_t raw[DLQ_REC_HDR_LEN];
    int rc = dlq_seg_read_rec(rb, fd, off, end, idx, h, why);
    if (rc) return rc;
    if (decompress) {
        item *it = NULL;
        rc = dlq_rec_to_item(rb, h, &it);
        item_free(it);
        if (rc == SW_EDECODE) *why = "record does not decompress to its length";
        if (rc) return rc;
    }
    dlq_rec_hdr_encode(h, raw);
    if ((rc = dlq_sha256_update(body, raw, sizeof raw)) != 0) return rc;
    return dlq_sha256_update(body, rb->cbuf.data, rb->cbuf.len);
}

int dlq_seg_scan(dlq_recbuf *rb, int fd, uint64_t file_size, int decompress, dlq_scan *s)
{
    memset(s, 0, sizeof *s);
    s->good_end = DLQ_SEG_HDR_LEN;
    dlq_sha256 *body = dlq_sha256_new();
    if (!body) return SW_ENOMEM;
    int rc = 0;
    while (s->good_end < file_size) {
        dlq_rec_hdr h;
        const char *why = NULL;
        rc = scan_one(rb, fd, s->good_end, file_size, s->records, decompress, body, &h, &why);
        if (rc == SW_EDECODE) {
            s->why = why;
            rc = 0;
            break;
        }
        if (rc) goto out;
        s->good_end += dlq_rec_size(&h);
        s->records++;
    }
    rc = dlq_sha256_final(body, s->body_sha);
out:
    dlq_sha256_free(body);
    return rc;
}
