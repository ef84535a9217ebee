/* lg_gen.c — see lg_gen.h. */
#include "testing/loadgen/lg_gen.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/buf.h"
#include "runtime/codec.h"
#include "runtime/err.h"
#include "runtime/otlp_json.h"
#include "testing/loadgen/lg_build.h"

#define LG_BODY_MAX (256u << 20) /* cap on one encoded request */

struct lg_pool {
    lg_gen_opts o; /* as used: series options cleared for other signals */
    size_t n;
    lg_req *req;   /* n entries, each owning data, patch and tok0 */
};

/* Finds each note of search group g, in order, in data[0..len) and adds a
 * patch for it. 0, or SW_EDECODE if a value is not where it should be. */
static int locate_group(lg_req *rq, const lg_notes *notes, int g)
{
    size_t pos = 0;
    for (size_t i = 0; i < notes->n; i++) {
        const lg_note *nt = &notes->v[i];
        if (lg_note_group(nt->kind) != g) continue;
        const uint8_t *hit = memmem(rq->data + pos, rq->len - pos, nt->v, nt->width);
        if (!hit) return SW_EDECODE;
        rq->patch[rq->n_patch++] = (lg_patch){.off = (uint32_t)(hit - rq->data), .kind = nt->kind,
                                               .item = nt->item};
        pos = (size_t)(hit - rq->data) + nt->width;
    }
    return 0;
}

static int locate_patches(lg_req *rq, const lg_notes *notes)
{
    if (notes->n == 0) return 0;
    rq->patch = malloc(notes->n * sizeof *rq->patch);
    if (!rq->patch) return SW_ENOMEM;
    int rc = 0;
    for (int g = 0; g < 3 && rc == 0; g++) rc = locate_group(rq, notes, g);
    return rc;
}

/* Copies the items' tokens as built from the notes. */
static int keep_tokens(const lg_gen_opts *o, lg_req *rq, const lg_notes *notes)
{
    rq->tok0 = calloc(o->batch, sizeof *rq->tok0);
    if (!rq->tok0) return SW_ENOMEM;
    for (size_t i = 0; i < notes->n; i++) {
        const lg_note *nt = &notes->v[i];
        int is_tok = nt->kind == LG_P_SPAN || nt->kind == LG_P_TOK_INT || nt->kind == LG_P_TOK_DBL ||
                     nt->kind == LG_P_TOK_HEX;
        if (is_tok && nt->item < o->batch) rq->tok0[nt->item] = nt->tok;
    }
    return 0;
}

/* Replaces rq->data by its JSON form and/or compressed form. */
static int encode_body(const lg_gen_opts *o, lg_req *rq)
{
    buf json, comp;
    buf_init(&json, LG_BODY_MAX);
    buf_init(&comp, LG_BODY_MAX);
    int rc = 0;
    const uint8_t *cur = rq->data;
    size_t len = rq->len;
    if (o->encoding == LG_ENC_JSON) {
        if ((rc = oj_pb_to_json(o->signal, cur, len, &json))) goto done;
        cur = json.data;
        len = json.len;
    }
    if (o->compression == LG_COMP_GZIP) rc = codec_gzip(cur, len, &comp, 6);
    else if (o->compression == LG_COMP_ZSTD) rc = codec_zstd_compress(cur, len, &comp, 3);
    if (rc) goto done;
    buf *res = o->compression != LG_COMP_NONE ? &comp : &json;
    free(rq->data);
    rq->data = buf_steal(res, &rq->len);
done:
    buf_destroy(&comp);
    buf_destroy(&json);
    return rc;
}

static int build_one(const lg_gen_opts *o, uint32_t r, uint32_t n, lg_req *rq)
{
    lg_notes notes = {0};
    int rc = lg_build_request(o, r, n, &rq->data, &rq->len, &notes);
    if (rc == 0) rc = keep_tokens(o, rq, &notes);
    if (rc) goto done;
    if (o->encoding == LG_ENC_PROTOBUF && o->compression == LG_COMP_NONE) {
        rc = locate_patches(rq, &notes);
        goto done;
    }
    rc = encode_body(o, rq);
done:
    free(notes.v);
    return rc;
}

/* The pool size for *o (lg_gen_opts.pool). 0 or SW_EINVAL. */
static int pool_size(const lg_gen_opts *o, uint32_t *out)
{
    uint32_t n = o->pool, w = o->prio_mix[0] + o->prio_mix[1] + o->prio_mix[2];
    if (n == 0) {
        n = o->services < 16 ? 16 : o->services > 256 ? 256 : o->services;
        if (w > 1 && (n + w - 1) / w * w <= 65536) n = (n + w - 1) / w * w;
        if (o->series && o->series / o->batch < n) n = (uint32_t)(o->series / o->batch);
    }
    if (n == 0 || (o->series && (uint64_t)n * o->batch > o->series)) return SW_EINVAL;
    *out = n;
    return 0;
}

static int opts_check(const lg_gen_opts *o)
{
    if (!o || o->batch == 0 || o->services == 0 || o->signal >= SIG_COUNT || o->churn < 0 ||
        o->prio_mix[0] > 1000 || o->prio_mix[1] > 1000 || o->prio_mix[2] > 1000)
        return SW_EINVAL;
    return 0;
}

lg_pool *lg_pool_new(const lg_gen_opts *o, int *err)
{
    int rc = opts_check(o);
    lg_pool *p = NULL;
    uint32_t n = 0;
    if (rc) goto fail;
    lg_gen_opts use = *o;
    if (use.signal != SIG_METRICS) use.series = 0, use.churn = 0, use.label_explosion = 0;
    if ((rc = pool_size(&use, &n))) goto fail;
    rc = SW_ENOMEM;
    p = calloc(1, sizeof *p);
    if (!p || !(p->req = calloc(n, sizeof *p->req))) goto fail;
    p->o = use;
    for (p->n = 0; p->n < n; p->n++) {
        rc = build_one(&p->o, (uint32_t)p->n, n, &p->req[p->n]);
        if (rc) {
            p->n++; /* free the partial entry too */
            goto fail;
        }
    }
    return p;
fail:
    lg_pool_free(p);
    if (err) *err = rc;
    return NULL;
}

void lg_pool_free(lg_pool *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->req[i].data);
        free(p->req[i].patch);
        free(p->req[i].tok0);
    }
    free(p->req);
    free(p);
}

size_t lg_pool_size(const lg_pool *p) { return p->n; }
uint32_t lg_pool_batch(const lg_pool *p) { return p->o.batch; }
sw_signal lg_pool_signal(const lg_pool *p) { return p->o.signal; }

const lg_req *lg_pool_get(const lg_pool *p, uint64_t seq) { return &p->req[seq % p->n]; }

uint64_t lg_pool_id_mask(const lg_pool *p, uint64_t seq)
{
    uint64_t pass = seq / p->n;
    if (pass == 0) return 0;
    uint64_t s = p->o.seed ^ (pass * 0x9e3779b97f4a7c15ULL);
    return lg_rand(&s);
}

/* Writes the value patch pt takes in request seq. */
static void apply(const lg_pool *p, const lg_patch *pt, uint64_t seq, uint64_t mask, uint8_t *dst)
{
    uint8_t *at = dst + pt->off;
    uint64_t v, tok = lg_token(p->o.seed, seq * p->o.batch + pt->item);
    double d = (double)tok;
    switch (pt->kind) {
    case LG_P_ID:
    case LG_P_SPAN:
        memcpy(&v, at, 8);
        v ^= mask;
        memcpy(at, &v, 8);
        break;
    case LG_P_TOK_INT: memcpy(at, &tok, 8); break;
    case LG_P_TOK_DBL: memcpy(at, &d, 8); break;
    case LG_P_TOK_HEX: lg_hex16(tok, at); break;
    case LG_P_SERIES: lg_hex16(lg_series_value(&p->o, (uint32_t)p->n, seq, pt->item), at); break;
    default: lg_hex16(lg_explode_value(&p->o, seq, pt->item), at); break;
    }
}

void lg_pool_write(const lg_pool *p, uint64_t seq, uint8_t *dst)
{
    const lg_req *rq = lg_pool_get(p, seq);
    memcpy(dst, rq->data, rq->len);
    if (seq < p->n) return; /* the first pass is the pool as built */
    uint64_t mask = lg_pool_id_mask(p, seq);
    for (size_t i = 0; i < rq->n_patch; i++) apply(p, &rq->patch[i], seq, mask, dst);
}

void lg_pool_tokens(const lg_pool *p, uint64_t seq, uint64_t *out)
{
    const lg_req *rq = lg_pool_get(p, seq);
    uint32_t b = p->o.batch;
    if (rq->n_patch == 0 || seq < p->n) {
        memcpy(out, rq->tok0, b * sizeof *out);
        return;
    }
    uint64_t mask = lg_pool_id_mask(p, seq);
    for (uint32_t j = 0; j < b; j++)
        out[j] = p->o.signal == SIG_TRACES ? rq->tok0[j] ^ mask : lg_token(p->o.seed, seq * b + j);
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    return -1;
}

/* 16 hex digits at s (len >= 16) as bytes; 0 or -1. */
static int hex8(const char *s, uint8_t out[8])
{
    for (int i = 0; i < 8; i++) {
        int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int lg_token_of_line(sw_signal sig, const char *line, size_t len, uint64_t *tok)
{
    uint8_t b[8];
    if (sig == SIG_TRACES) { /* <trace id> <span id> <name> */
        const char *sp = memchr(line, ' ', len);
        if (!sp || (size_t)(line + len - sp) < 17 || hex8(sp + 1, b) != 0) return -1;
        memcpy(tok, b, 8);
        return 0;
    }
    size_t i = len;
    while (i > 0 && line[i - 1] != ' ' && line[i - 1] != '=') i--;
    if (sig == SIG_LOGS) { /* ... id=<16 hex> */
        if (len - i != 16 || i < 3 || memcmp(line + i - 3, "id=", 3) != 0 || hex8(line + i, b) != 0) return -1;
        *tok = (uint64_t)b[0] << 56 | (uint64_t)b[1] << 48 | (uint64_t)b[2] << 40 | (uint64_t)b[3] << 32 |
               (uint64_t)b[4] << 24 | (uint64_t)b[5] << 16 | (uint64_t)b[6] << 8 | b[7];
        return 0;
    }
    char num[40]; /* metrics: the value, or sum=S */
    if (len - i == 0 || len - i >= sizeof num) return -1;
    memcpy(num, line + i, len - i);
    num[len - i] = 0;
    char *end;
    double d = strtod(num, &end);
    if (*end || !(d >= 1.0 && d < 9007199254740992.0) || d != (double)(uint64_t)d) return -1;
    *tok = (uint64_t)d;
    return 0;
}

static int parse_name(const char *s, const char *const *names, int n)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

static const char *const SIG_NAMES[] = {"traces", "metrics", "logs"};
static const char *const ENC_NAMES[] = {"protobuf", "json"};
static const char *const COMP_NAMES[] = {"none", "gzip", "zstd"};

int lg_signal_parse(const char *s) { return parse_name(s, SIG_NAMES, 3); }
int lg_encoding_parse(const char *s) { return parse_name(s, ENC_NAMES, 2); }
int lg_compression_parse(const char *s) { return parse_name(s, COMP_NAMES, 3); }
const char *lg_encoding_name(lg_encoding e) { return ENC_NAMES[e]; }
const char *lg_compression_name(lg_compression c) { return COMP_NAMES[c]; }

int lg_mix_init(lg_mix *m, const uint32_t *weights, uint32_t n)
{
    memset(m, 0, sizeof *m);
    if (n == 0 || n > SIG_COUNT) return SW_EINVAL;
    int64_t cur[SIG_COUNT] = {0};
    uint32_t seen[SIG_COUNT] = {0};
    for (uint32_t i = 0; i < n; i++) {
        if (weights[i] == 0 || weights[i] > 1000) return SW_EINVAL;
        m->w[i] = weights[i];
        m->total += weights[i];
    }
    m->n = n;
    m->stream = malloc(m->total);
    m->occ = malloc(m->total * sizeof *m->occ);
    if (!m->stream || !m->occ) {
        lg_mix_destroy(m);
        return SW_ENOMEM;
    }
    for (uint32_t pos = 0; pos < m->total; pos++) { /* smooth weighted round-robin */
        uint32_t best = 0;
        for (uint32_t i = 0; i < n; i++) {
            cur[i] += m->w[i];
            if (cur[i] > cur[best]) best = i;
        }
        cur[best] -= m->total;
        m->stream[pos] = (uint8_t)best;
        m->occ[pos] = seen[best]++;
    }
    return 0;
}

void lg_mix_destroy(lg_mix *m)
{
    free(m->stream);
    free(m->occ);
    m->stream = NULL;
    m->occ = NULL;
}

void lg_mix_map(const lg_mix *m, uint64_t seq, uint32_t *stream, uint64_t *sub)
{
    uint64_t round = seq / m->total;
    uint32_t pos = (uint32_t)(seq % m->total);
    *stream = m->stream[pos];
    *sub = round * m->w[*stream] + m->occ[pos];
}
