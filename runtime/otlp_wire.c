/* otlp_wire.c — see otlp_wire.h.
 *
 * DESIGN. Two parts.
 *
 * Tables, built once (pthread_once) from the protobuf-c descriptors and
 * read-only afterwards. For each signal, every message type reachable from
 * its Export*ServiceRequest is numbered and gets a row of OW_KEYS 4-byte
 * ow_ent, indexed by the tag itself (field number << 3 | wire type) for
 * field numbers below OW_DIRECT (OTLP's stay below 32; larger ones go to a
 * short per-signal list, searched). An entry says what the tag calls for:
 * skip a varint, fixed64, fixed32 or length-delimited value, walk a packed
 * repeated scalar (element kind in arg), enter a message (its row in arg,
 * whether it is an item), skip an unknown field, or refuse (field number 0,
 * group, wrong wire type). It also carries the bookkeeping the field needs
 * afterwards: a bit in the message's "seen" mask for a singular message
 * field outside a oneof (given twice is refused, as protobuf-c cannot
 * always merge the two), or a slot for a oneof one of whose members can
 * hold items (only the last member given counts, as protobuf-c keeps only
 * that one); oneofs none of whose members can hold items need nothing.
 *
 * The walk: one loop over the bytes, with an explicit stack of the
 * messages being walked (at most OW_MAX_DEPTH). A tag, usually one byte,
 * selects the entry; one- and two-byte varints are read inline, longer ones
 * and everything off the usual path go to out-of-line functions. Entering
 * a nested message pushes the current one; reaching its end pops it and
 * adds the items found inside. Nothing is allocated and no value is decoded
 * beyond tags and lengths. The checks and the reasons given are those of
 * the descriptor-driven walk this replaced, kept in testing/lib/ow_ref.h
 * for differential tests.
 */
#include "runtime/otlp_wire.h"

#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "runtime/err.h"
#include "runtime/pbwire.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5, WT_NONE = 8 };
/* Element kind of a repeated scalar (PK_NO: not a repeated scalar). */
enum { PK_NO = 0, PK_VARINT, PK_BOOL, PK_I32, PK_I64 };
/* What a tag calls for in a message: the first five are the walk's fast
 * path; OP_ONEOF is a non-message member of a tracked oneof; the last four
 * end up skipped (unknown field) or refused. */
enum { OP_LEN = 0, OP_MSG, OP_VARINT, OP_I64, OP_I32, OP_PACKED, OP_ONEOF,
       OP_UNKNOWN, OP_ZERO, OP_GROUP, OP_WRONG };

#define OW_DIRECT 32            /* field numbers below this: found by tag */
#define OW_KEYS (OW_DIRECT << 3) /* tags (number << 3 | wire type) in a row */
#define OW_MAX_MSGS 48          /* message types reachable from one request */
#define OW_MAX_ROWS 64          /* rows of the three signals together */
#define OW_MAX_FAR 64           /* fields numbered OW_DIRECT or more, per signal */
#define OW_MAX_ONCE 32          /* POST_ONCE fields per message */
#define OW_MAX_ONEOFS 4         /* tracked oneofs per message */
#define OW_NOCHILD 0xff
#define POST_ONCE 0x80          /* | bit index in the message's seen mask */
#define POST_ONEOF 0x40         /* | slot of the oneof */

#define OW_LIKELY(x) __builtin_expect(!!(x), 1)
#define OW_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define OW_COLD __attribute__((noinline, cold)) /* kept out of the walk's loop */

/* A field as the schema declares it (tables only). */
typedef struct ow_fld {
    uint8_t wt;    /* wire type; WT_NONE: no such field */
    uint8_t child; /* index of its message type in ow_schema.m[], or OW_NOCHILD */
    uint8_t pk;    /* PK_* */
    uint8_t post;  /* 0, POST_ONCE | bit or POST_ONEOF | slot */
} ow_fld;

/* What one tag means in one message: what the walk reads. */
typedef struct ow_ent {
    uint8_t op;   /* OP_* */
    uint8_t arg;  /* OP_MSG: row of the message type; OP_PACKED: PK_* */
    uint8_t post; /* OP_MSG, OP_ONEOF: ow_fld.post */
    uint8_t item; /* OP_MSG: 1 if the message is one item (span, point, record) */
} ow_ent;

/* A field numbered OW_DIRECT or more. */
typedef struct ow_far {
    uint32_t num;
    ow_fld f;
} ow_far;

/* A message type: its fields as declared (rows[] is built from them). */
typedef struct ow_mtab {
    ow_fld f[OW_DIRECT];
    uint8_t item;      /* 1 if the message is one item */
    uint8_t holds;     /* 1 if items can occur inside it */
    uint8_t n_far;     /* its entries in ow_schema.far[], from far_off */
    uint16_t far_off;
    const ProtobufCMessageDescriptor *d;
} ow_mtab;

typedef struct ow_schema {
    ow_mtab m[OW_MAX_MSGS]; /* m[0]: the request type */
    ow_far far[OW_MAX_FAR];
    unsigned n_msgs, n_far;
    unsigned row0; /* m[i] has rows[row0 + i] */
    int ok;
} ow_schema;

/* What counts as one item for a signal; unused slots are NULL. */
typedef struct item_set {
    const ProtobufCMessageDescriptor *d[4];
} item_set;

typedef struct walk {
    const ow_schema *s;
    const char *why;
    ow_ent far; /* the meaning of the last tag numbered OW_DIRECT or more */
} walk;

/* Written once under schemas_once, read-only afterwards. */
static ow_schema schemas[SIG_COUNT];
static ow_ent rows[OW_MAX_ROWS][OW_KEYS];
static unsigned n_rows;
static pthread_once_t schemas_once = PTHREAD_ONCE_INIT;
static const ow_fld no_field = {WT_NONE, OW_NOCHILD, PK_NO, 0};

const ProtobufCMessageDescriptor *ow_descriptor(sw_signal sig)
{
    switch (sig) {
    case SIG_TRACES:
        return &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
    case SIG_METRICS:
        return &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor;
    case SIG_LOGS:
        return &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor;
    default:
        return NULL;
    }
}

static void item_set_init(item_set *is, sw_signal sig)
{
    for (unsigned i = 0; i < 4; i++) is->d[i] = NULL;
    switch (sig) {
    case SIG_TRACES:
        is->d[0] = &opentelemetry__proto__trace__v1__span__descriptor;
        break;
    case SIG_METRICS:
        is->d[0] = &opentelemetry__proto__metrics__v1__number_data_point__descriptor;
        is->d[1] = &opentelemetry__proto__metrics__v1__histogram_data_point__descriptor;
        is->d[2] = &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__descriptor;
        is->d[3] = &opentelemetry__proto__metrics__v1__summary_data_point__descriptor;
        break;
    case SIG_LOGS:
        is->d[0] = &opentelemetry__proto__logs__v1__log_record__descriptor;
        break;
    default:
        break;
    }
}

static int is_item(const item_set *is, const ProtobufCMessageDescriptor *d)
{
    return (is->d[0] == d) | (is->d[1] == d) | (is->d[2] == d) | (is->d[3] == d);
}

/* ---- tables ---- */

/* Expected wire type and packed element kind of a field. */
static void wire_of(const ProtobufCFieldDescriptor *fd, ow_fld *f)
{
    uint8_t pk;
    switch (fd->type) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        f->wt = WT_I32, pk = PK_I32;
        break;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        f->wt = WT_I64, pk = PK_I64;
        break;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        f->wt = WT_LEN, pk = PK_NO;
        break;
    case PROTOBUF_C_TYPE_BOOL:
        f->wt = WT_VARINT, pk = PK_BOOL;
        break;
    default: /* the varint integer types and enums */
        f->wt = WT_VARINT, pk = PK_VARINT;
        break;
    }
    f->pk = fd->label == PROTOBUF_C_LABEL_REPEATED ? pk : PK_NO;
}

/* Index of d's table in s, added (empty) if new; -1 if s is full. */
static int tab_index(ow_schema *s, const ProtobufCMessageDescriptor *d)
{
    for (unsigned i = 0; i < s->n_msgs; i++)
        if (s->m[i].d == d) return (int)i;
    if (s->n_msgs == OW_MAX_MSGS) return -1;
    s->m[s->n_msgs].d = d;
    return (int)s->n_msgs++;
}

/* The entry of field number num in t (building: may add a far entry). */
static ow_fld *entry_of(ow_schema *s, ow_mtab *t, uint32_t num, int add)
{
    if (num < OW_DIRECT) return &t->f[num];
    for (unsigned i = t->far_off; i < (unsigned)t->far_off + t->n_far; i++)
        if (s->far[i].num == num) return &s->far[i].f;
    if (!add || s->n_far == OW_MAX_FAR) return NULL;
    s->far[s->n_far].num = num;
    t->n_far++;
    return &s->far[s->n_far++].f;
}

/* Fills the field entries of s->m[i]; adds the message types it refers to. */
static int tab_build(ow_schema *s, unsigned i, const item_set *is)
{
    ow_mtab *t = &s->m[i];
    const ProtobufCMessageDescriptor *d = t->d;
    unsigned n_once = 0;
    for (unsigned k = 0; k < OW_DIRECT; k++) t->f[k] = no_field;
    t->item = (uint8_t)is_item(is, d);
    t->far_off = (uint16_t)s->n_far;
    for (unsigned k = 0; k < d->n_fields; k++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[k];
        ow_fld *f = entry_of(s, t, fd->id, 1);
        if (!f || fd->id == 0) return -1;
        *f = no_field;
        wire_of(fd, f);
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        int c = tab_index(s, fd->descriptor);
        if (c < 0) return -1;
        f->child = (uint8_t)c;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED || (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
            continue;
        if (n_once == OW_MAX_ONCE) return -1;
        f->post = (uint8_t)(POST_ONCE | n_once++);
    }
    return 0;
}

/* Sets holds on every table that can have an item somewhere inside. */
static void tab_holds(ow_schema *s)
{
    int changed = 1;
    while (changed) {
        changed = 0;
        for (unsigned i = 0; i < s->n_msgs; i++) {
            ow_mtab *t = &s->m[i];
            const ProtobufCMessageDescriptor *d = t->d;
            for (unsigned k = 0; k < d->n_fields && !t->holds; k++) {
                const ow_fld *f = entry_of(s, t, d->fields[k].id, 0);
                if (f->child == OW_NOCHILD) continue;
                if (s->m[f->child].item || s->m[f->child].holds) t->holds = 1, changed = 1;
            }
        }
    }
}

/* Does a member of the oneof at quantifier offset q in t hold items? */
static int oneof_holds(ow_schema *s, ow_mtab *t, unsigned q)
{
    const ProtobufCMessageDescriptor *d = t->d;
    for (unsigned k = 0; k < d->n_fields; k++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[k];
        if (!(fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || fd->quantifier_offset != q) continue;
        const ow_fld *f = entry_of(s, t, fd->id, 0);
        if (f->child != OW_NOCHILD && (s->m[f->child].item || s->m[f->child].holds)) return 1;
    }
    return 0;
}

/* Gives the members of item-holding oneofs of t their slot. */
static int tab_oneofs(ow_schema *s, ow_mtab *t)
{
    const ProtobufCMessageDescriptor *d = t->d;
    unsigned q[OW_MAX_ONEOFS], n = 0;
    for (unsigned k = 0; k < d->n_fields; k++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[k];
        if (!(fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) continue;
        if (!oneof_holds(s, t, fd->quantifier_offset)) continue;
        unsigned slot = 0;
        while (slot < n && q[slot] != fd->quantifier_offset) slot++;
        if (slot == n) {
            if (n == OW_MAX_ONEOFS) return -1;
            q[n++] = fd->quantifier_offset;
        }
        entry_of(s, t, fd->id, 0)->post = (uint8_t)(POST_ONEOF | slot);
    }
    return 0;
}

/* What tag (num << 3 | wt) means for a field declared as *f. */
static ow_ent key_entry(const ow_schema *s, const ow_fld *f, uint32_t num, uint32_t wt)
{
    static const uint8_t op_of[8] = {OP_VARINT, OP_I64, OP_LEN, OP_GROUP,
                                     OP_GROUP,  OP_I32, OP_WRONG, OP_WRONG};
    ow_ent e = {OP_WRONG, 0, 0, 0};
    if (num == 0) {
        e.op = OP_ZERO;
    } else if (f->wt == WT_NONE) {
        e.op = OP_UNKNOWN;
    } else if (wt == f->wt) {
        e.op = f->post ? OP_ONEOF : op_of[wt];
        e.post = f->post;
        if (f->child != OW_NOCHILD) {
            e.op = OP_MSG;
            e.arg = (uint8_t)(s->row0 + f->child);
            e.item = s->m[f->child].item;
        }
    } else if (wt == WT_LEN && f->pk != PK_NO) {
        e.op = OP_PACKED;
        e.arg = f->pk;
    } else if (wt == 3 || wt == 4) {
        e.op = OP_GROUP;
    }
    return e;
}

static int schema_build(ow_schema *s, sw_signal sig)
{
    item_set is;
    item_set_init(&is, sig);
    if (tab_index(s, ow_descriptor(sig)) != 0) return -1;
    for (unsigned i = 0; i < s->n_msgs; i++)
        if (tab_build(s, i, &is) != 0) return -1;
    tab_holds(s);
    for (unsigned i = 0; i < s->n_msgs; i++)
        if (tab_oneofs(s, &s->m[i]) != 0) return -1;
    if (n_rows + s->n_msgs > OW_MAX_ROWS) return -1;
    s->row0 = n_rows;
    n_rows += s->n_msgs;
    for (unsigned i = 0; i < s->n_msgs; i++)
        for (uint32_t key = 0; key < OW_KEYS; key++)
            rows[s->row0 + i][key] = key_entry(s, &s->m[i].f[key >> 3], key >> 3, key & 7);
    return 0;
}

static void schemas_build(void)
{
    for (int sig = 0; sig < SIG_COUNT; sig++)
        schemas[sig].ok = schema_build(&schemas[sig], (sw_signal)sig) == 0;
}

/* ---- the walk ---- */

static int fail(walk *w, const char *why)
{
    w->why = why;
    return -1;
}

/* Varints, tags, lengths and groups are read by runtime/pbwire.h, whose
 * readers return the position after the value, or NULL if it is malformed;
 * the walk keeps its position in a register. */
_Static_assert(OW_MAX_DEPTH == PBW_MAX_DEPTH, "one depth limit");

/* A varint, fixed64 or fixed32 value; NULL and w->why if malformed. */
static inline const uint8_t *skip_scalar(walk *w, uint32_t wt, const uint8_t *p,
                                         const uint8_t *end)
{
    if (wt == WT_VARINT) {
        if (OW_LIKELY(p < end && *p < 0x80)) return p + 1; /* most enums, bools, small ints */
        p = pbw_skip_varint(p, end);
        if (!p) w->why = "malformed varint";
        return p;
    }
    size_t n = wt == WT_I64 ? 8 : 4;
    if ((size_t)(end - p) >= n) return p + n;
    w->why = wt == WT_I64 ? "truncated fixed64" : "truncated fixed32";
    return NULL;
}

/* Payload of a packed repeated scalar field. */
static int walk_packed(walk *w, unsigned pk, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    switch (pk) {
    case PK_I32:
        return n % 4 ? fail(w, "packed fixed32 length not a multiple of 4") : 0;
    case PK_I64:
        return n % 8 ? fail(w, "packed fixed64 length not a multiple of 8") : 0;
    case PK_BOOL:
        for (; p < end; p++)
            if (*p > 1) return fail(w, "packed bool not 0 or 1");
        return 0;
    default:
        while (p < end) {
            p = *p < 0x80 ? p + 1 : pbw_skip_varint(p, end);
            if (!p) return fail(w, "malformed packed varint");
        }
        return 0;
    }
}

/* Any value of an unknown field (tag key, in a message at depth): skip it
 * if well formed; a group is skipped through its matching end. */
static const uint8_t *skip_value(walk *w, uint32_t key, const uint8_t *p, const uint8_t *end,
                                 unsigned depth)
{
    uint32_t len, wt = key & 7;
    switch (wt) {
    case WT_VARINT:
    case WT_I64:
    case WT_I32:
        return skip_scalar(w, wt, p, end);
    case WT_LEN:
        p = pbw_len(p, end, &len);
        if (!p) w->why = "length out of bounds";
        return p ? p + len : NULL;
    case 3:
        p = pbw_skip_group(p, end, key >> 3, depth);
        if (!p) w->why = "malformed group";
        return p;
    case 4:
        w->why = "end of a group never started";
        return NULL;
    default:
        w->why = "invalid wire type";
        return NULL;
    }
}

/* A tag off the fast path: an unknown field (skipped) or a refusal.
 * Returns the position after the field, or NULL. */
OW_COLD static const uint8_t *walk_other(walk *w, unsigned op, uint32_t key, const uint8_t *p,
                                 const uint8_t *end, unsigned depth)
{
    switch (op) {
    case OP_UNKNOWN:
        return skip_value(w, key, p, end, depth);
    case OP_ZERO:
        w->why = "field number 0";
        return NULL;
    case OP_GROUP:
        w->why = "group wire type";
        return NULL;
    default:
        w->why = "wrong wire type for a known field";
        return NULL;
    }
}

/* A packed repeated scalar field; the position after it, or NULL. */
__attribute__((noinline)) static const uint8_t *walk_packed_field(walk *w, unsigned pk,
                                                                  const uint8_t *p,
                                                                  const uint8_t *end)
{
    uint32_t len;
    if (!(p = pbw_len(p, end, &len))) {
        w->why = "length out of bounds";
        return NULL;
    }
    return walk_packed(w, pk, p, len) == 0 ? p + len : NULL;
}

/* The meaning of a tag at or above OW_KEYS in the message of row. */
OW_COLD static const ow_ent *ent_far(walk *w, const ow_ent *row, uint32_t key)
{
    const ow_schema *s = w->s;
    const ow_mtab *t = &s->m[(size_t)(row - rows[0]) / OW_KEYS - s->row0];
    uint32_t num = key >> 3;
    const ow_fld *f = &no_field;
    for (unsigned i = t->far_off; i < (unsigned)t->far_off + t->n_far; i++)
        if (s->far[i].num == num) f = &s->far[i].f;
    w->far = key_entry(s, f, num, key & 7);
    return &w->far;
}

/* A message being walked while one of its fields, a message, is. */
typedef struct frame {
    const ow_ent *row;
    const uint8_t *end;
    uint64_t seen;                /* POST_ONCE fields given so far */
    uint32_t total;               /* items so far */
    uint8_t post, item;           /* of the field being walked */
    uint32_t slot[OW_MAX_ONEOFS]; /* items of each tracked oneof */
} frame;

/* Accounts for a field with bookkeeping (post != 0) that held n items. */
static inline int account(walk *w, unsigned post, uint32_t n, uint64_t *seen, uint32_t *total,
                          uint32_t *slot)
{
    if (post & POST_ONCE) {
        uint64_t bit = 1ull << (post & (OW_MAX_ONCE - 1));
        if (*seen & bit) return fail(w, "message field given twice");
        *seen |= bit;
        *total += n;
    } else { /* a oneof member replaces what the oneof held */
        unsigned s = post & (OW_MAX_ONEOFS - 1);
        *total = *total - slot[s] + n;
        slot[s] = n;
    }
    return 0;
}

/* The length-delimited payload at p: its length in *len, NULL if it does
 * not fit before end. */
static inline const uint8_t *rd_payload(walk *w, const uint8_t *p, const uint8_t *end,
                                        uint32_t *len)
{
    p = pbw_len(p, end, len);
    if (OW_UNLIKELY(!p)) w->why = "length out of bounds";
    return p;
}

/* Walks the request in [p, end), descending into nested messages with an
 * explicit stack: st[d] holds the message at depth d + 1 while a field of
 * it is walked, and the oneof slots of that message; top is the frame of
 * the current message. */
static int walk_req(walk *w, const uint8_t *p, const uint8_t *end, uint32_t *count)
{
    frame st[OW_MAX_DEPTH], *top = st;
    const ow_ent *row = rows[w->s->row0];
    uint64_t seen = 0;
    uint32_t total = 0, key, len;
    memset(top->slot, 0, sizeof top->slot);
    for (;;) {
        while (p < end) {
            key = *p;
            if (OW_LIKELY(key < 0x80)) p++;
            else if (!(p = pbw_u32(p, end, &key))) return fail(w, "malformed tag");
            const ow_ent *e = OW_LIKELY(key < OW_KEYS) ? &row[key] : ent_far(w, row, key);
            if (OW_LIKELY(e->op <= OP_MSG)) { /* string, bytes or message */
                if (!(p = rd_payload(w, p, end, &len))) return -1;
                if (e->op == OP_MSG) { /* enter it */
                    if (top == &st[OW_MAX_DEPTH - 1]) return fail(w, "nesting too deep");
                    top->row = row; /* top->slot stays */
                    top->end = end;
                    top->seen = seen;
                    top->total = total;
                    top->post = e->post;
                    top->item = e->item;
                    top++;
                    memset(top->slot, 0, sizeof top->slot);
                    row = rows[e->arg];
                    end = p + len;
                    seen = 0;
                    total = 0;
                    continue;
                }
                p += len;
            } else if (e->op <= OP_I32) {
                if (!(p = skip_scalar(w, key & 7, p, end))) return -1;
            } else if (e->op == OP_PACKED) {
                if (!(p = walk_packed_field(w, e->arg, p, end))) return -1;
            } else if (e->op == OP_ONEOF) {
                if (!(p = skip_value(w, key, p, end, (unsigned)(top - st) + 1))) return -1;
                if (account(w, e->post, 0, &seen, &total, top->slot)) return -1;
            } else if (!(p = walk_other(w, e->op, key, p, end, (unsigned)(top - st) + 1))) {
                return -1;
            }
        }
        if (top == st) break;
        top--; /* leave the nested message */
        uint32_t n = total + top->item;
        row = top->row;
        end = top->end;
        seen = top->seen;
        total = top->total;
        if (OW_LIKELY(top->post == 0)) total += n;
        else if (account(w, top->post, n, &seen, &total, top->slot)) return -1;
    }
    *count = total;
    return 0;
}

int ow_validate(sw_signal sig, const uint8_t *data, size_t len, uint32_t *items,
                const char **why)
{
    walk w = {NULL, NULL};
    uint32_t n = 0;
    *items = 0;
    if (!ow_descriptor(sig)) {
        if (why) *why = "unknown signal";
        return SW_EDECODE;
    }
    if (len > INT_MAX) {
        if (why) *why = "request too large";
        return SW_EDECODE;
    }
    pthread_once(&schemas_once, schemas_build);
    w.s = &schemas[sig];
    if (!w.s->ok) {
        if (why) *why = "schema not supported";
        return SW_EDECODE;
    }
    if (len && walk_req(&w, data, data + len, &n) != 0) {
        if (why) *why = w.why;
        return SW_EDECODE;
    }
    *items = n;
    if (why) *why = NULL;
    return 0;
}

/* ---- counting over an unpacked message (not the hot path) ---- */

static uint32_t count_msg(const item_set *is, const ProtobufCMessage *m);

static uint32_t count_field(const item_set *is, const ProtobufCMessage *m,
                            const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = *(const size_t *)(base + f->quantifier_offset);
        ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)(base + f->offset);
        uint32_t total = 0;
        for (size_t i = 0; i < n; i++) total += count_msg(is, arr[i]);
        return total;
    }
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)(base + f->quantifier_offset) != f->id)
        return 0;
    return count_msg(is, *(ProtobufCMessage *const *)(base + f->offset));
}

static uint32_t count_msg(const item_set *is, const ProtobufCMessage *m)
{
    if (!m) return 0;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    uint32_t total = (uint32_t)is_item(is, d);
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE)
            total += count_field(is, m, &d->fields[i]);
    return total;
}

uint32_t ow_count_items(sw_signal sig, const ProtobufCMessage *req)
{
    item_set is;
    item_set_init(&is, sig);
    return count_msg(&is, req);
}
