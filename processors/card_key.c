/* card_key.c — canonical series keys over unpacked OTLP attributes.
 *
 * The encoding (card_int.h) tags every value with its type and prefixes
 * every string with its length, so ("ab","c") and ("a","bc") differ, and
 * sorts attributes by key so their order in the request does not matter.
 * Sorting uses a caller's scratch of CARD_MAX_ATTRS pointers (insertion
 * sort: attribute lists are short). A list longer than that is hashed
 * order-independently instead: every key/value is hashed on its own and the
 * per-attribute hashes are combined by sum and xor, so the key still does
 * not depend on order and nothing is allocated.
 */
#include <string.h>

#include "processors/card_int.h"

static uint64_t hash_kvs(uint64_t h, card_kv *const *kv, size_t n, int depth);

uint64_t card_hash_value(uint64_t h, const card_any *v, int depth)
{
    if (!v) return card_fnv_byte(h, CARD_T_NONE);
    if (depth >= CARD_MAX_DEPTH) return card_fnv_byte(h, CARD_T_DEEP);
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE: {
        const char *s = v->string_value ? v->string_value : "";
        return card_h_lstr(h, CARD_T_STR, s, strlen(s));
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return card_h_bool(h, v->bool_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        return card_h_int(h, v->int_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        return card_h_dbl(h, v->double_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        return card_h_lstr(h, CARD_T_BYTES, v->bytes_value.data, v->bytes_value.len);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        const Opentelemetry__Proto__Common__V1__ArrayValue *a = v->array_value;
        size_t n = a ? a->n_values : 0;
        h = card_h_len(card_fnv_byte(h, CARD_T_ARRAY), n);
        for (size_t i = 0; i < n; i++) h = card_hash_value(h, a->values[i], depth + 1);
        return h;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        const Opentelemetry__Proto__Common__V1__KeyValueList *l = v->kvlist_value;
        size_t n = l ? l->n_values : 0;
        h = card_h_len(card_fnv_byte(h, CARD_T_KVLIST), n);
        return n ? hash_kvs(h, l->values, n, depth + 1) : h;
    }
    default:
        return card_fnv_byte(h, CARD_T_NONE);
    }
}

static uint64_t hash_kv_depth(uint64_t h, const card_kv *kv, int depth)
{
    const char *k = kv->key ? kv->key : "";
    h = card_h_lstr(h, CARD_T_KEY, k, strlen(k));
    return card_hash_value(h, kv->value, depth);
}

uint64_t card_hash_kv(uint64_t h, const card_kv *kv)
{
    return hash_kv_depth(h, kv, 0);
}

/* Nested key/value lists: in their given order (documented). */
static uint64_t hash_kvs(uint64_t h, card_kv *const *kv, size_t n, int depth)
{
    for (size_t i = 0; i < n; i++) h = hash_kv_depth(h, kv[i], depth);
    return h;
}

static int key_cmp(const card_kv *a, const card_kv *b)
{
    return strcmp(a->key ? a->key : "", b->key ? b->key : "");
}

size_t card_sort_attrs(card_kv *const *attrs, size_t n, const card_kv **out)
{
    if (n > CARD_MAX_ATTRS) return 0;
    for (size_t i = 0; i < n; i++) {
        const card_kv *x = attrs[i];
        size_t j = i;
        while (j > 0 && key_cmp(out[j - 1], x) > 0) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = x;
    }
    return n;
}

static uint64_t hash_unordered(uint64_t h, card_kv *const *attrs, size_t n)
{
    uint64_t sum = 0, x = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t a = card_hash_kv(CARD_FNV_OFFSET, attrs[i]);
        sum += a;
        x ^= a * 0x9e3779b97f4a7c15ULL;
    }
    h = card_h_len(card_fnv_byte(h, 'U'), n);
    return card_h_u64(card_h_u64(h, sum), x);
}

uint64_t card_hash_attrs(uint64_t h, card_kv *const *attrs, size_t n, const card_kv **scratch)
{
    if (n > CARD_MAX_ATTRS) return hash_unordered(h, attrs, n);
    card_sort_attrs(attrs, n, scratch);
    for (size_t i = 0; i < n; i++) h = card_hash_kv(h, scratch[i]);
    return h;
}

uint64_t card_resource_hash(const Opentelemetry__Proto__Resource__V1__Resource *r,
                            const card_kv **scratch)
{
    if (!r) return card_hash_attrs(CARD_FNV_OFFSET, NULL, 0, scratch);
    return card_hash_attrs(CARD_FNV_OFFSET, r->attributes, r->n_attributes, scratch);
}

uint64_t card_metric_prefix_n(uint64_t res_hash, const char *name, size_t n)
{
    uint64_t h = card_h_u64(card_fnv_byte(CARD_FNV_OFFSET, 'R'), res_hash);
    return card_h_lstr(h, 'M', name, n);
}

uint64_t card_metric_prefix(uint64_t res_hash, const char *name)
{
    if (!name) name = "";
    return card_metric_prefix_n(res_hash, name, strlen(name));
}

int card_is_marker(const card_kv *kv)
{
    return kv->key && strcmp(kv->key, CARD_MARKER_KEY) == 0;
}
