/* prio_wire.h — the priority classifier's scans over encoded OTLP (internal).
 *
 * Field-by-field reading of encoded OTLP messages with runtime/pbwire.h's
 * pbw_next(), without allocation, with the framing rules every stage shares
 * (see pbwire.h). The scans below read only what the classifier needs; they
 * are meant for requests ow_validate() accepted, but refuse (-1) anything
 * they cannot walk, never read out of bounds, and never crash on garbage.
 * Pure; any thread.
 */
#ifndef SW_PRIO_WIRE_H
#define SW_PRIO_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/item.h"
#include "runtime/pbwire.h"

/* ---- scans (prio_scan.c) ---- */

/* Called for each resource attribute with a text form: key[0..klen) and
 * val[0..vlen) (string as is, bool "true"/"false", int decimal; other value
 * types are skipped). Return 0 to go on, 1 to stop early. */
typedef int (*pw_attr_fn)(void *arg, const uint8_t *key, size_t klen, const char *val,
                          size_t vlen);

/* Walks the attributes of the Resource of one encoded Resource{Spans,
 * Metrics,Logs}. 0 or -1. */
int pw_resource_attrs(const uint8_t *p, size_t n, pw_attr_fn fn, void *arg);
/* Traces: *out = 1 if any span of one encoded ResourceSpans has status
 * code ERROR. 0 or -1. */
int pw_has_error_span(const uint8_t *p, size_t n, int *out);
/* Logs: *out = the highest severity_number of the log records of one
 * encoded ResourceLogs (0 if none). 0 or -1. */
int pw_max_severity(const uint8_t *p, size_t n, int *out);
/* Items (spans, data points, log records) of one encoded Resource<sig>,
 * counted as ow_validate() counts them. 0 or -1. */
int pw_count_items(sw_signal sig, const uint8_t *p, size_t n, uint32_t *out);

#endif
