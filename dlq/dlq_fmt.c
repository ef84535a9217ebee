/* dlq_fmt.c — see dlq_fmt.h. */
#include "dlq/dlq_fmt.h"

#include <stdio.h>
#include <string.h>
#include <zstd.h>

#include "runtime/err.h"
#include "runtime/le.h"

#define SEG_HASHED 96

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

int dlq_seg_hdr_encode(const dlq_seg_hdr *h, uint8_t out[DLQ_SEG_HDR_LEN])
{
    memset(out, 0, DLQ_SEG_HDR_LEN);
    memcpy(out, DLQ_SEG_MAGIC, 8);
    le_put16(out + 8, DLQ_SEG_VERSION);
    le_put16(out + 10, DLQ_SEG_HDR_LEN);
    le_put32(out + 12, h->flags);
    le_put64(out + 16, h->seq);
    le_put64(out + 24, (uint64_t)h->created_ns);
    le_put64(out + 32, (uint64_t)h->sealed_ns);
    le_put64(out + 40, h->records);
    le_put64(out + 48, h->body_len);
    memcpy(out + 56, h->body_sha, DLQ_SHA256_LEN);
    return dlq_sha256_2(out, SEG_HASHED, NULL, 0, out + SEG_HASHED);
}

int dlq_seg_hdr_decode(const uint8_t in[DLQ_SEG_HDR_LEN], dlq_seg_hdr *h, const char **why)
{
    uint8_t sum[DLQ_SHA256_LEN];
    *why = NULL;
    if (memcmp(in, DLQ_SEG_MAGIC, 8) != 0) *why = "bad segment magic";
    else if (le_get16(in + 8) != DLQ_SEG_VERSION) *why = "unknown segment format version";
    else if (le_get16(in + 10) != DLQ_SEG_HDR_LEN) *why = "bad segment header length";
    else if (dlq_sha256_2(in, SEG_HASHED, NULL, 0, sum) != 0) *why = "sha-256 failed";
    else if (memcmp(sum, in + SEG_HASHED, DLQ_SHA256_LEN) != 0) *why = "segment header checksum mismatch";
    else if ((le_get32(in + 12) & ~DLQ_SEG_SEALED) != 0 || !all_zero(in + 88, 8))
        *why = "reserved segment header bits set";
    if (*why) return SW_EDECODE;
    memset(h, 0, sizeof *h);
    h->flags = le_get32(in + 12);
    h->seq = le_get64(in + 16);
    h->created_ns = (int64_t)le_get64(in + 24);
    h->sealed_ns = (int64_t)le_get64(in + 32);
    h->records = le_get64(in + 40);
    h->body_len = le_get64(in + 48);
    memcpy(h->body_sha, in + 56, DLQ_SHA256_LEN);
    return 0;
}

void dlq_rec_hdr_encode(const dlq_rec_hdr *h, uint8_t out[DLQ_REC_HDR_LEN])
{
    int note = h->status || h->note_len;
    memcpy(out, DLQ_REC_MAGIC, 4);
    out[4] = note ? DLQ_REC_VERSION_NOTE : DLQ_REC_VERSION;
    out[5] = h->klass;
    out[6] = h->signal;
    out[7] = DLQ_CODEC_ZSTD;
    le_put32(out + 8, h->count);
    le_put32(out + 12, h->ulen);
    le_put32(out + 16, h->clen);
    le_put16(out + 20, note ? h->status : 0);
    le_put16(out + 22, note ? h->note_len : 0);
    le_put64(out + 24, (uint64_t)h->recv_wall_ns);
    le_put64(out + 32, h->index);
    memcpy(out + 40, h->sha, DLQ_SHA256_LEN);
}

size_t dlq_rec_max_clen(void) { return ZSTD_compressBound(DLQ_MAX_RECORD_LEN); }

int dlq_rec_hdr_decode(const uint8_t in[DLQ_REC_HDR_LEN], dlq_rec_hdr *h, const char **why)
{
    *why = NULL;
    if (memcmp(in, DLQ_REC_MAGIC, 4) != 0) *why = "bad record magic";
    else if (in[4] != DLQ_REC_VERSION && in[4] != DLQ_REC_VERSION_NOTE)
        *why = "unknown record format";
    else if (in[7] != DLQ_CODEC_ZSTD) *why = "unknown record codec";
    else if (in[5] >= 3 || in[6] >= 3) *why = "bad record class or signal";
    else if (le_get32(in + 12) > DLQ_MAX_RECORD_LEN) *why = "record length over the cap";
    else if (le_get32(in + 16) == 0 || le_get32(in + 16) > dlq_rec_max_clen())
        *why = "bad compressed length";
    else if (in[4] == DLQ_REC_VERSION && le_get32(in + 20) != 0) *why = "reserved record bits set";
    else if (in[4] == DLQ_REC_VERSION_NOTE && le_get16(in + 22) > DLQ_NOTE_MAX)
        *why = "record note over the cap";
    if (*why) return SW_EDECODE;
    h->klass = in[5];
    h->signal = in[6];
    h->count = le_get32(in + 8);
    h->ulen = le_get32(in + 12);
    h->clen = le_get32(in + 16);
    h->recv_wall_ns = (int64_t)le_get64(in + 24);
    h->index = le_get64(in + 32);
    h->status = in[4] == DLQ_REC_VERSION_NOTE ? le_get16(in + 20) : 0;
    h->note_len = in[4] == DLQ_REC_VERSION_NOTE ? le_get16(in + 22) : 0;
    memcpy(h->sha, in + 40, DLQ_SHA256_LEN);
    return 0;
}

int dlq_rec_hash(const uint8_t hdr[DLQ_REC_HDR_LEN], const uint8_t *payload, size_t clen,
                 uint8_t out[DLQ_SHA256_LEN])
{
    return dlq_sha256_2(hdr, DLQ_REC_HASHED, payload, clen, out);
}

void dlq_seg_name(uint64_t seq, char name[DLQ_SEG_NAME_LEN + 1])
{
    snprintf(name, DLQ_SEG_NAME_LEN + 1, "%016llx.seg", (unsigned long long)seq);
}

int dlq_seg_name_parse(const char *name, uint64_t *seq)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return -1;
        v = (v << 4) | (uint64_t)d;
    }
    if (strcmp(name + 16, ".seg") != 0) return -1;
    *seq = v;
    return 0;
}
