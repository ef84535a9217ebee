/* item.h — the unit of data between receiver, queue, DLQ and exporter.
 *
 * An item is the encoded protobuf bytes of one Export{Trace,Metrics,Logs}-
 * ServiceRequest plus its signal, priority class, item count (spans, data
 * points or log records) and receive time. Items stay encoded; two requests
 * of one signal concatenated are one valid request, so batching is byte
 * concatenation. An item is owned by exactly one stage at a time: whoever
 * holds the pointer frees it with item_free() or hands it on.
 */
#ifndef SW_ITEM_H
#define SW_ITEM_H

#include <stddef.h>
#include <stdint.h>

typedef enum { SIG_TRACES = 0, SIG_METRICS = 1, SIG_LOGS = 2, SIG_COUNT = 3 } sw_signal;
typedef enum { CLASS_CRITICAL = 0, CLASS_HIGH = 1, CLASS_NORMAL = 2, CLASS_COUNT = 3 } sw_class;

typedef struct item {
    struct item *next;   /* link for whoever owns the item (queue, batch) */
    struct item_tracker *trk; /* delivery tracking (runtime/item_track.h), or NULL */
    uint8_t signal;      /* sw_signal */
    uint8_t klass;       /* sw_class */
    uint32_t count;      /* spans / data points / log records */
    int64_t recv_ns;     /* monotonic receive time (clock_mono_ns) */
    size_t len;          /* bytes in data */
    uint8_t data[];      /* encoded Export*ServiceRequest */
} item;

/* Returns an owned item holding a copy of data[0..len), or NULL. */
item *item_new(sw_signal sig, sw_class klass, uint32_t count, int64_t recv_ns,
               const void *data, size_t len);
/* Returns an owned item with room for len bytes of data left unset (the
 * caller fills it), or NULL. */
item *item_alloc(sw_signal sig, sw_class klass, uint32_t count, int64_t recv_ns, size_t len);
/* Frees it; a delivery tracker it still holds is settled as failed. NULL-safe. */
void item_free(item *it);
/* Bytes an item accounts for in queues (payload plus header). */
static inline size_t item_size(const item *it) { return it->len + sizeof(item); }

/* "traces", "metrics", "logs" */
const char *sw_signal_name(sw_signal sig);
/* "/v1/traces", ... */
const char *sw_signal_path(sw_signal sig);
/* "critical", "high", "normal" */
const char *sw_class_name(sw_class c);
/* Parses a class name; -1 if unknown. */
int sw_class_parse(const char *s);

#endif
