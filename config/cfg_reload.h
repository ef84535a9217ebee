/* cfg_reload.h — what a configuration reload (SIGHUP) may change.
 *
 * A reload loads the file again into a new, immutable cfg (cfg_load) and
 * compares it with the running one key by key over the schema's field
 * tables. Each key either applies at once (cfg_key_reloadable: priority
 * rules and weights, cardinality thresholds, log level and format, replay
 * rate, the exporter's connection, headers, compression, batching, retry
 * and breaker settings) or needs a restart (everything else: listen
 * addresses, sizes of fixed tables and buffers, the DLQ's directory and
 * format, the filelog receiver, ...). A key added to the schema later
 * needs a restart until it is listed here. docs/configuration.md
 * ("Reloading") lists both sets. Pure functions, any thread.
 */
#ifndef SW_CFG_RELOAD_H
#define SW_CFG_RELOAD_H

#include <stddef.h>

#include "config/cfg.h"

/* 1 if the dotted key path (a leaf of the schema, e.g.
 * "processors.priority.rules") applies at once on reload, else 0. */
int cfg_key_reloadable(const char *path);

/* Called once per leaf key whose value differs between two configs, in
 * schema order; path borrowed for the call. */
typedef void (*cfg_change_fn)(const char *path, int reloadable, void *arg);

/* Compares old and next (both borrowed) key by key. fn may be NULL.
 * Returns how many changed keys need a restart; *n_reloadable (may be
 * NULL) gets how many changed keys apply at once. */
size_t cfg_reload_diff(const cfg *old, const cfg *next, cfg_change_fn fn, void *arg,
                       size_t *n_reloadable);

#endif
