/* th_page.h — a rendered /metrics page as a string, and line lookups in it,
 * for the unit tests of the metrics registry and its families. */
#ifndef SW_TH_PAGE_H
#define SW_TH_PAGE_H

#include "runtime/metrics.h"

/* m's page (metrics_render) as an owned NUL-terminated string, or NULL. */
char *th_metrics_page(const sw_metrics *m);
/* 1 if text holds exactly this line (between newlines, or at its start). */
int th_has_line(const char *text, const char *line);

#endif
