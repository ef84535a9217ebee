/* lg_build.h — protobuf-c request builders behind lg_gen (internal).
 *
 * Builds pool entry r of npool as a packed Export*ServiceRequest. Every
 * value comes from a PRNG seeded by (seed, r), so the bytes depend only on
 * the options and r. The first 8 bytes of every trace id and span id
 * (parent span ids included) are appended to *ids in the order they appear
 * in the packed bytes, so lg_gen can find and vary them. Pure; any thread.
 */
#ifndef SW_LG_BUILD_H
#define SW_LG_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "testing/loadgen/lg_gen.h"

typedef struct lg_idlist {
    uint64_t *v;   /* owned */
    size_t n, cap;
} lg_idlist;

/* Writes the packed request to *out (owned by the caller, free()) and its
 * length to *len. 0 or SW_ENOMEM / SW_EINVAL. */
int lg_build_request(const lg_gen_opts *o, uint32_t r, uint32_t npool,
                     uint8_t **out, size_t *len, lg_idlist *ids);

/* splitmix64 step: advances *s and returns the next value. */
uint64_t lg_rand(uint64_t *s);

#endif
