/* th_page.c — see th_page.h. */
#include "testing/lib/th_page.h"

#include <string.h>

#include "runtime/buf.h"

#define TH_PAGE_MAX (4u << 20)

char *th_metrics_page(const sw_metrics *m)
{
    buf b;
    buf_init(&b, TH_PAGE_MAX);
    int rc = metrics_render(m, &b);
    if (rc == 0) rc = buf_append(&b, "", 1);
    if (rc != 0) {
        buf_destroy(&b);
        return NULL;
    }
    size_t len;
    return (char *)buf_steal(&b, &len);
}

int th_has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n') return 1;
    return 0;
}
