/* lg_build.h — protobuf-c request builders behind lg_gen (internal).
 *
 * Builds pool entry r of npool as a packed Export*ServiceRequest. Every
 * value comes from a PRNG seeded by (seed, r), so the bytes depend only on
 * the options and r. Each field lg_gen patches later is recorded in *notes
 * with its value as built: ids (the first 8 bytes of every trace id, span
 * id and parent span id), item tokens and series labels. Within one search
 * group (lg_note_group) notes are in the order their values appear in the
 * packed bytes, so lg_gen can find them with a forward scan. Pure; any
 * thread.
 */
#ifndef SW_LG_BUILD_H
#define SW_LG_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "testing/loadgen/lg_gen.h"

typedef struct lg_note {
    uint8_t v[16];       /* the bytes as they appear in the packed request */
    uint8_t width;       /* 8 or 16 */
    uint8_t kind;        /* lg_patch_kind */
    uint32_t item;       /* item index in the request */
    uint64_t tok;        /* LG_P_SPAN and LG_P_TOK_*: the item's token */
} lg_note;

typedef struct lg_notes {
    lg_note *v;          /* owned */
    size_t n, cap;
} lg_notes;

/* Writes the packed request to *out (owned by the caller, free()) and its
 * length to *len. 0 or SW_ENOMEM / SW_EINVAL. */
int lg_build_request(const lg_gen_opts *o, uint32_t r, uint32_t npool,
                     uint8_t **out, size_t *len, lg_notes *notes);

/* Search group of a patch kind: 0 binary ids, 1 binary values, 2 hex text. */
int lg_note_group(int kind);

/* splitmix64 step: advances *s and returns the next value. */
uint64_t lg_rand(uint64_t *s);
/* A bijective 64-bit mix (splitmix64's finalizer). */
uint64_t lg_mix64(uint64_t x);
/* Token of item `idx` (seq * batch + item) of a logs or metrics stream:
 * a seed-derived base below 2^51 plus idx, so unique and exact as a double. */
uint64_t lg_token(uint64_t seed, uint64_t idx);
/* The series.id value of data point `item` of metrics request `seq`
 * (series mode), and the request.id value (label explosion). */
uint64_t lg_series_value(const lg_gen_opts *o, uint32_t npool, uint64_t seq, uint32_t ix);
uint64_t lg_explode_value(const lg_gen_opts *o, uint64_t seq, uint32_t ix);
/* Writes v as 16 lowercase hex digits (no NUL). */
void lg_hex16(uint64_t v, uint8_t *dst);

#endif
