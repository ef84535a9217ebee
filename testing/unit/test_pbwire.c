/* test_pbwire.c — the shared protobuf wire reader (runtime/pbwire.h):
 * boundary varints, the 10th-byte rule, tags and lengths over 32 bits or 5
 * bytes, lengths past the buffer, fixed-width truncation and groups. */
#include "runtime/pbwire.h"

#include <string.h>

#include "testing/lib/th.h"

static size_t enc(uint8_t *p, uint64_t v) { return pbw_put_varint(p, v); }

/* Every boundary value round-trips through pbw_varint and pbw_skip_varint. */
static void t_varint_boundaries(void)
{
    static const uint64_t vals[] = {0, 1, 127, 128, 16383, 16384, 2097151, 2097152,
                                    UINT32_MAX, (uint64_t)UINT32_MAX + 1, INT64_MAX,
                                    (uint64_t)INT64_MAX + 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t b[10];
        size_t n = enc(b, vals[i]);
        uint64_t out = 12345;
        TH_ASSERT_MSG(pbw_varint(b, b + n, 10, &out) == b + n, "value %zu", i);
        TH_ASSERT_MSG(out == vals[i], "value %zu read back wrong", i);
        TH_ASSERT(pbw_skip_varint(b, b + n) == b + n);
        /* one byte short: a truncated varint */
        TH_ASSERT(pbw_varint(b, b + n - 1, 10, &out) == NULL);
        TH_ASSERT(n == 1 || pbw_skip_varint(b, b + n - 1) == NULL);
    }
    uint64_t out;
    TH_ASSERT(pbw_varint(NULL, NULL, 10, &out) == NULL); /* empty input */
}

/* The 10th byte may only be 0 or 1; an 11-byte varint is refused. */
static void t_tenth_byte(void)
{
    uint8_t b[11];
    memset(b, 0xff, 9);
    uint64_t out = 0;
    b[9] = 0x01;
    TH_ASSERT(pbw_varint(b, b + 10, 10, &out) == b + 10 && out == UINT64_MAX);
    TH_ASSERT(pbw_skip_varint(b, b + 10) == b + 10);
    b[9] = 0x00; /* a non-minimal encoding, still within 64 bits */
    TH_ASSERT(pbw_varint(b, b + 10, 10, &out) == b + 10 && out == (UINT64_MAX >> 1));
    for (unsigned x = 2; x < 0x80; x++) {
        b[9] = (uint8_t)x;
        TH_ASSERT_MSG(pbw_varint(b, b + 10, 10, &out) == NULL, "10th byte %u accepted", x);
        TH_ASSERT_MSG(pbw_skip_varint(b, b + 10) == NULL, "10th byte %u skipped", x);
    }
    b[9] = 0x81; /* continues past 10 bytes */
    b[10] = 0x00;
    TH_ASSERT(pbw_varint(b, b + 11, 10, &out) == NULL);
    TH_ASSERT(pbw_skip_varint(b, b + 11) == NULL);
    /* as a field value in pbw_next: the same rule */
    uint8_t f[11] = {0x08};
    memset(f + 1, 0xff, 9);
    f[10] = 0x02;
    const uint8_t *p = f;
    pbw_field fld;
    TH_ASSERT_EQ_INT(pbw_next(&p, f + 11, &fld), -1);
    TH_ASSERT(p == f); /* position untouched on failure */
    f[10] = 0x01;
    TH_ASSERT_EQ_INT(pbw_next(&p, f + 11, &fld), 0);
    TH_ASSERT(p == f + 11 && fld.num == 1 && fld.wt == PBW_VARINT && fld.v == UINT64_MAX);
}

/* Tags and lengths: 5 bytes at most, within 32 bits; field number 0 refused. */
static void t_tags_and_lengths(void)
{
    uint8_t b[8];
    uint32_t v;
    size_t n = enc(b, UINT32_MAX);
    TH_ASSERT(n == 5 && pbw_u32(b, b + n, &v) == b + n && v == UINT32_MAX);
    n = enc(b, (uint64_t)UINT32_MAX + 1); /* 5 bytes, over 32 bits */
    TH_ASSERT(pbw_u32(b, b + n, &v) == NULL);
    n = enc(b, 1ull << 35); /* 6 bytes */
    TH_ASSERT(n == 6 && pbw_u32(b, b + n, &v) == NULL);
    n = enc(b, 300); /* the two-byte fast path */
    TH_ASSERT(pbw_u32(b, b + n, &v) == b + 2 && v == 300);
    TH_ASSERT(pbw_u32(b, b + 1, &v) == NULL);
    n = enc(b, 70000); /* three bytes: the slow path */
    TH_ASSERT(pbw_u32(b, b + n, &v) == b + 3 && v == 70000);

    const uint8_t zero[] = {0x00, 0x00};
    const uint8_t *p = zero;
    pbw_field f;
    TH_ASSERT_EQ_INT(pbw_next(&p, zero + 2, &f), -1);
    const uint8_t wt67[] = {0x0e, 0x0f};
    p = wt67;
    TH_ASSERT_EQ_INT(pbw_next(&p, wt67 + 1, &f), -1);
    p = wt67 + 1;
    TH_ASSERT_EQ_INT(pbw_next(&p, wt67 + 2, &f), -1);
}

/* A length-delimited payload must lie inside the buffer. */
static void t_overlong_lengths(void)
{
    uint8_t b[16] = {0x0a, 0x03, 'a', 'b', 'c'};
    const uint8_t *p = b;
    pbw_field f;
    uint32_t len;
    TH_ASSERT_EQ_INT(pbw_next(&p, b + 5, &f), 0);
    TH_ASSERT(f.wt == PBW_LEN && f.n == 3 && f.sub == b + 2 && f.end == b + 5);
    p = b;
    TH_ASSERT_EQ_INT(pbw_next(&p, b + 4, &f), -1); /* one byte short */
    TH_ASSERT(pbw_len(b + 1, b + 4, &len) == NULL);
    TH_ASSERT(pbw_len(b + 1, b + 5, &len) == b + 2 && len == 3);
    /* a length near 2^32 on a small buffer */
    size_t n = 1 + enc(b + 1, UINT32_MAX);
    p = b;
    TH_ASSERT_EQ_INT(pbw_next(&p, b + n, &f), -1);
    /* a length over 32 bits */
    n = 1 + enc(b + 1, (uint64_t)1 << 40);
    p = b;
    TH_ASSERT_EQ_INT(pbw_next(&p, b + n, &f), -1);
    /* fixed widths truncated */
    const uint8_t i64[] = {0x09, 1, 2, 3, 4, 5, 6, 7, 8};
    p = i64;
    TH_ASSERT_EQ_INT(pbw_next(&p, i64 + 8, &f), -1);
    TH_ASSERT_EQ_INT(pbw_next(&p, i64 + 9, &f), 0);
    TH_ASSERT(f.wt == PBW_I64 && f.v == 0x0807060504030201ull);
    const uint8_t i32[] = {0x0d, 1, 2, 3, 4};
    p = i32;
    TH_ASSERT_EQ_INT(pbw_next(&p, i32 + 4, &f), -1);
    TH_ASSERT_EQ_INT(pbw_next(&p, i32 + 5, &f), 0);
    TH_ASSERT(f.wt == PBW_I32 && f.v == 0x04030201u);
}

/* Groups: skipped whole through the matching end, nested, depth-limited. */
static void t_groups(void)
{
    /* 1: group { 2: varint 5, 3: group { 4: "x" } } then 5: varint 1 */
    const uint8_t g[] = {0x0b, 0x10, 0x05, 0x1b, 0x22, 0x01, 'x', 0x1c, 0x0c, 0x28, 0x01};
    const uint8_t *p = g;
    pbw_field f;
    TH_ASSERT_EQ_INT(pbw_next(&p, g + sizeof g, &f), 0);
    TH_ASSERT(f.num == 1 && f.wt == PBW_SGROUP && f.sub == g + 1 && p == g + 9);
    TH_ASSERT_EQ_INT(pbw_next(&p, g + sizeof g, &f), 0);
    TH_ASSERT(f.num == 5 && f.v == 1 && p == g + sizeof g);
    /* not closed, closed by the wrong number, an end with no start */
    p = g;
    TH_ASSERT_EQ_INT(pbw_next(&p, g + 8, &f), -1);
    const uint8_t wrong[] = {0x0b, 0x14};
    p = wrong;
    TH_ASSERT_EQ_INT(pbw_next(&p, wrong + 2, &f), -1);
    const uint8_t lone[] = {0x0c};
    p = lone;
    TH_ASSERT_EQ_INT(pbw_next(&p, lone + 1, &f), -1);
    /* a bad varint inside a group */
    const uint8_t badv[] = {0x0b, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                            0x7f, 0x0c};
    p = badv;
    TH_ASSERT_EQ_INT(pbw_next(&p, badv + sizeof badv, &f), -1);
    /* depth: PBW_MAX_DEPTH nested groups pass at depth 0, not one more */
    static uint8_t deep[2 * (PBW_MAX_DEPTH + 1)];
    size_t n = 0;
    for (int i = 0; i <= PBW_MAX_DEPTH; i++) deep[n++] = 0x1b;
    for (int i = 0; i <= PBW_MAX_DEPTH; i++) deep[n++] = 0x1c;
    TH_ASSERT(pbw_skip_group(deep + 2, deep + n - 1, 3, 0) == deep + n - 1);
    TH_ASSERT(pbw_skip_group(deep + 2, deep + n - 1, 3, 1) == NULL);
    TH_ASSERT(pbw_skip_group(deep + 1, deep + n, 3, 0) == NULL);
}

int main(void)
{
    TH_RUN(t_varint_boundaries);
    TH_RUN(t_tenth_byte);
    TH_RUN(t_tags_and_lengths);
    TH_RUN(t_overlong_lengths);
    TH_RUN(t_groups);
    return th_done();
}
