/* th_dlq.h — DLQ helpers shared by the DLQ and exporter unit tests. */
#ifndef SW_TH_DLQ_H
#define SW_TH_DLQ_H

#include "dlq/dlq.h"

/* Waits (30 s, scaled by th_slow_ms) until every append made through p has
 * completed, and asserts that none is left pending. */
void th_dlq_port_drain(dlq_port *p);
/* Appends n log records (class high) of len bytes, every byte of record i
 * being i, and waits until all are stored; asserts each was. */
void th_dlq_write_indexed(dlq *d, int n, size_t len);

#endif
