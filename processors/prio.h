/* prio.h — the priority classifier (processor `priority`).
 *
 * Ordered rules, compiled once, sort the resources of an encoded
 * Export{Trace,Metrics,Logs}ServiceRequest into the classes critical, high
 * and normal. A rule holds one or more conditions, all of which must hold
 * for a resource:
 *   attribute + regex  a resource attribute with that key whose value
 *                      matches the POSIX extended regex (unanchored: use ^$);
 *                      strings as they are, bools as "true"/"false", ints in
 *                      decimal; double, bytes, array and kvlist values never
 *                      match; a missing attribute does not match
 *   span_error         (traces) some span of the resource has status ERROR
 *   min_severity       (logs) some log record of the resource has
 *                      severity_number >= min_severity (1..24: TRACE=1,
 *                      DEBUG=5, INFO=9, WARN=13, ERROR=17, FATAL=21)
 * A rule with span_error never matches metrics or logs, one with
 * min_severity never matches traces or metrics. The first rule that matches
 * decides; no match means normal. Granularity is the resource (one
 * Resource{Spans,Metrics,Logs}): one ERROR span or one severe record raises
 * its whole resource, and a resource is never split.
 *
 * prio_classify() walks the wire format (no allocation, no decode) and says
 * whether the request is all one class — then the original bytes go on as
 * one item — or mixed; prio_split() then builds one request per class by
 * copying the original bytes of that class's top-level entries (each
 * resource is a length-delimited field 1 of the request, so tag, length and
 * bytes copied verbatim re-encode it). Unknown top-level fields go with the
 * most critical class present. Expects bytes ow_validate() accepted; on its
 * own it refuses (SW_EDECODE) only what it cannot walk.
 *
 * A prio is immutable after prio_new(): any thread may classify with it
 * (the ingest thread does).
 */
#ifndef SW_PRIO_H
#define SW_PRIO_H

#include <stddef.h>
#include <stdint.h>

#include "config/cfg.h"
#include "runtime/item.h"

typedef struct prio prio;

#define PRIO_MAX_RULES 256
#define PRIO_SEV_MAX 24

typedef struct prio_rule {
    sw_class klass;
    const char *attribute;   /* resource attribute key; NULL: no attribute condition */
    const char *regex;       /* POSIX ERE; given exactly when attribute is */
    int span_error;          /* 1: needs a span with status ERROR (traces) */
    int min_severity;        /* 1..24: needs a log record this severe; 0: none */
} prio_rule;

/* Compiles rules[0..n) (borrowed; copied). Returns an owned classifier, or
 * NULL with a message ("rule 2: ...") in err (NUL-terminated when errlen >
 * 0; err may be NULL): bad class, regex or severity, a rule with no
 * condition, attribute without regex or the reverse, span_error together
 * with min_severity, more than PRIO_MAX_RULES rules, out of memory. */
prio *prio_new(const prio_rule *rules, size_t n, char *err, size_t errlen);
/* The same from processors.priority.rules of c (borrowed). */
prio *prio_from_cfg(const cfg *c, char *err, size_t errlen);
void prio_free(prio *p);
size_t prio_rule_count(const prio *p);

/* Severity for config: "TRACE".."FATAL4" (any case) or "1".."24"; -1 if
 * neither. */
int prio_severity_parse(const char *s);

#define PRIO_CACHE 64

typedef struct prio_result {
    int single;                  /* 1: one class only — pass the original bytes */
    sw_class klass;              /* single: that class; mixed: the most critical present */
    unsigned mask;               /* bit c: class c present */
    size_t bytes[CLASS_COUNT];   /* encoded request bytes per class */
    uint32_t resources[CLASS_COUNT]; /* top-level resources per class */
    uint32_t n_entries;          /* top-level resources in all */
    uint8_t cls[PRIO_CACHE];     /* for prio_split(): class of the first entries */
} prio_result;

/* Classifies pb[0..len) (borrowed), an encoded request of signal sig.
 * 0 with *out filled, SW_EDECODE (cannot walk it) or SW_EINVAL (signal).
 * An empty request is single class normal. */
int prio_classify(const prio *p, sw_signal sig, const uint8_t *pb, size_t len,
                  prio_result *out);

/* Builds the per-class requests of a classified request: out[c] gets an
 * owned item of class c (signal sig, receive time recv_ns, its own item
 * count) holding that class's resources in their original order, or NULL
 * when the class is absent. pb, len and r must be those prio_classify()
 * saw. 0, or SW_ENOMEM / SW_EDECODE / SW_EINVAL with out[] all NULL. */
int prio_split(const prio *p, sw_signal sig, const uint8_t *pb, size_t len,
               const prio_result *r, int64_t recv_ns, item *out[CLASS_COUNT]);

/* What the receiver calls: classifies pb and returns in out[0..*n) the
 * owned items to queue, most critical first — one item holding a copy of
 * pb with `count` items when the request is all one class, else one per
 * class present (counts of their own). 0 or a negative code (nothing
 * returned). */
int prio_items(const prio *p, sw_signal sig, const uint8_t *pb, size_t len, uint32_t count,
               int64_t recv_ns, item *out[CLASS_COUNT], size_t *n);

#endif
