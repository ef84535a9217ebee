/* telemetry.h — the self-telemetry HTTP server (telemetry.endpoint, :8888).
 *
 * Serves, on the ingest thread's event_base:
 *   GET /metrics  Prometheus text format (metrics_render + process metrics)
 *   GET /healthz  liveness: 200 {"status":"ok"} while the loop runs
 *   GET /readyz   readiness: 200 when every registered component reports
 *                 ready, else 503; body JSON {"status":..,"components":{..}}
 */
#ifndef SW_TELEMETRY_H
#define SW_TELEMETRY_H

#include <stdint.h>

#include "runtime/metrics.h"

struct event_base;
typedef struct telemetry telemetry;

/* A component's readiness: returns 1 ready, 0 not ready; may write a short
 * detail (plain text) into detail[0..len). Called on the ingest thread. */
typedef int (*telemetry_status_fn)(void *arg, char *detail, size_t len);

/* Returns an owned server bound to host:port (port 0 = ephemeral), or NULL
 * (error logged). base and m are borrowed. */
telemetry *telemetry_new(struct event_base *base, const char *host, uint16_t port,
                         sw_metrics *m);
/* The port actually bound. */
uint16_t telemetry_port(const telemetry *t);
/* Registers a component for /readyz; name is copied. 0 or SW_ENOMEM. */
int telemetry_add_component(telemetry *t, const char *name, telemetry_status_fn fn,
                            void *arg);
void telemetry_free(telemetry *t);

#endif
