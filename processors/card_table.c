/* card_table.c — FNV-1a 64 and the fixed open-address series table.
 *
 * Linear probing with backward-shift deletion (see card_int.h). Every loop
 * is bounded by max_keys probes, so a table at 100 % fill answers "absent"
 * after one full turn instead of looping; it never grows.
 */
#include <stdlib.h>

#include "processors/card_int.h"
#include "runtime/err.h"

uint64_t card_fnv1a64(const void *p, size_t n)
{
    return card_fnv_bytes(CARD_FNV_OFFSET, p, n);
}

static inline uint64_t fix_key(uint64_t key)
{
    return key ? key : 1;
}

int card_table_init(card_table *t, uint32_t max_keys)
{
    t->slots = NULL;
    t->mask = 0;
    t->used = 0;
    t->cursor = 0;
    if (max_keys < 16 || (max_keys & (max_keys - 1)) != 0) return SW_EINVAL;
    t->slots = calloc(max_keys, sizeof *t->slots);
    if (!t->slots) return SW_ENOMEM;
    t->mask = max_keys - 1;
    return 0;
}

void card_table_destroy(card_table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->used = 0;
}

int64_t card_table_find(const card_table *t, uint64_t key)
{
    key = fix_key(key);
    uint32_t i = card_table_home(t, key);
    for (uint64_t probes = 0; probes <= t->mask; probes++) {
        uint64_t k = t->slots[i].key;
        if (k == key) return i;
        if (k == 0) return -1;
        i = (i + 1) & t->mask;
    }
    return -1;
}

int card_table_insert(card_table *t, uint64_t key, int64_t now_ns)
{
    key = fix_key(key);
    uint32_t i = card_table_home(t, key);
    for (uint64_t probes = 0; probes <= t->mask; probes++) {
        card_slot *s = &t->slots[i];
        if (s->key == key) {
            s->seen_ns = now_ns;
            return 1;
        }
        if (s->key == 0) {
            if (t->used > t->mask) return SW_EFULL;
            s->key = key;
            s->seen_ns = now_ns;
            t->used++;
            return 0;
        }
        i = (i + 1) & t->mask;
    }
    return SW_EFULL;
}

/* 1 if home position h lies cyclically in (i, j]: the entry at j may not
 * move back to i. */
static int stays(uint32_t i, uint32_t j, uint32_t h)
{
    if (i <= j) return i < h && h <= j;
    return i < h || h <= j;
}

/* Empties slot i and shifts the rest of its cluster back. */
static void delete_at(card_table *t, uint32_t i)
{
    uint32_t j = i;
    for (uint64_t probes = 0; probes < t->mask; probes++) {
        j = (j + 1) & t->mask;
        if (t->slots[j].key == 0) break;
        uint32_t h = card_table_home(t, t->slots[j].key);
        if (stays(i, j, h)) continue;
        t->slots[i] = t->slots[j];
        i = j;
    }
    t->slots[i].key = 0;
    t->slots[i].seen_ns = 0;
    t->used--;
}

int card_table_remove(card_table *t, uint64_t key)
{
    int64_t i = card_table_find(t, key);
    if (i < 0) return SW_ENOTFOUND;
    delete_at(t, (uint32_t)i);
    return 0;
}

uint32_t card_table_expire(card_table *t, int64_t now_ns, int64_t ttl_ns, uint32_t budget)
{
    uint32_t removed = 0;
    if (ttl_ns <= 0 || t->used == 0) return 0;
    if (budget > t->mask + 1) budget = t->mask + 1;
    for (uint32_t step = 0; step < budget; step++) {
        card_slot *s = &t->slots[t->cursor];
        if (s->key != 0 && now_ns - s->seen_ns > ttl_ns) {
            /* an entry from further on may shift into the cursor's slot:
             * look at the same slot again on the next step */
            delete_at(t, t->cursor);
            removed++;
            continue;
        }
        t->cursor = (t->cursor + 1) & t->mask;
    }
    return removed;
}
