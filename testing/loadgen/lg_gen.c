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
    uint64_t seed;
    size_t n;
    lg_req *req;   /* n entries, each owning data and id_off */
};

/* Finds each recorded id in order in data[0..len) and stores its offset.
 * 0, SW_ENOMEM, or SW_EDECODE if an id is not where it should be. */
static int locate_ids(lg_req *rq, const lg_idlist *ids)
{
    if (ids->n == 0) return 0;
    rq->id_off = malloc(ids->n * sizeof *rq->id_off);
    if (!rq->id_off) return SW_ENOMEM;
    size_t pos = 0;
    for (size_t i = 0; i < ids->n; i++) {
        const uint8_t *hit = memmem(rq->data + pos, rq->len - pos, &ids->v[i], 8);
        if (!hit) return SW_EDECODE;
        rq->id_off[i] = (uint32_t)(hit - rq->data);
        pos = rq->id_off[i] + 8;
    }
    rq->n_id = ids->n;
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
    lg_idlist ids = {0};
    int rc = lg_build_request(o, r, n, &rq->data, &rq->len, &ids);
    if (rc) goto done;
    if (o->encoding == LG_ENC_PROTOBUF && o->compression == LG_COMP_NONE) {
        rc = locate_ids(rq, &ids);
        goto done;
    }
    rc = encode_body(o, rq);
done:
    free(ids.v);
    return rc;
}

lg_pool *lg_pool_new(const lg_gen_opts *o, int *err)
{
    int rc = SW_EINVAL;
    lg_pool *p = NULL;
    if (!o || o->batch == 0 || o->services == 0 || o->signal >= SIG_COUNT) goto fail;
    uint32_t n = o->pool;
    if (n == 0) n = o->services < 16 ? 16 : o->services > 256 ? 256 : o->services;
    rc = SW_ENOMEM;
    p = calloc(1, sizeof *p);
    if (!p || !(p->req = calloc(n, sizeof *p->req))) goto fail;
    p->seed = o->seed;
    for (p->n = 0; p->n < n; p->n++) {
        rc = build_one(o, (uint32_t)p->n, n, &p->req[p->n]);
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
        free(p->req[i].id_off);
    }
    free(p->req);
    free(p);
}

size_t lg_pool_size(const lg_pool *p) { return p->n; }

const lg_req *lg_pool_get(const lg_pool *p, uint64_t seq) { return &p->req[seq % p->n]; }

uint64_t lg_pool_id_mask(const lg_pool *p, uint64_t seq)
{
    uint64_t pass = seq / p->n;
    if (pass == 0) return 0;
    uint64_t s = p->seed ^ (pass * 0x9e3779b97f4a7c15ULL);
    return lg_rand(&s);
}

void lg_pool_write(const lg_pool *p, uint64_t seq, uint8_t *dst)
{
    const lg_req *rq = lg_pool_get(p, seq);
    memcpy(dst, rq->data, rq->len);
    uint64_t mask = lg_pool_id_mask(p, seq);
    if (mask == 0) return;
    for (size_t i = 0; i < rq->n_id; i++) {
        uint64_t v;
        memcpy(&v, dst + rq->id_off[i], 8);
        v ^= mask;
        memcpy(dst + rq->id_off[i], &v, 8);
    }
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
