/* item.c — see item.h. */
#include "runtime/item.h"

#include "runtime/item_track.h"

#include <stdlib.h>
#include <string.h>

item *item_alloc(sw_signal sig, sw_class klass, uint32_t count, int64_t recv_ns, size_t len)
{
    item *it = malloc(sizeof(item) + len);
    if (!it) return NULL;
    it->next = NULL;
    it->trk = NULL;
    it->signal = (uint8_t)sig;
    it->klass = (uint8_t)klass;
    it->count = count;
    it->recv_ns = recv_ns;
    it->len = len;
    return it;
}

item *item_new(sw_signal sig, sw_class klass, uint32_t count, int64_t recv_ns,
               const void *data, size_t len)
{
    item *it = item_alloc(sig, klass, count, recv_ns, len);
    if (it && len) memcpy(it->data, data, len);
    return it;
}

void item_free(item *it)
{
    if (!it) return;
    if (it->trk) item_settle(it, 1);
    free(it);
}

const char *sw_signal_name(sw_signal sig)
{
    static const char *n[] = {"traces", "metrics", "logs"};
    return (unsigned)sig < SIG_COUNT ? n[sig] : "unknown";
}

const char *sw_signal_path(sw_signal sig)
{
    static const char *p[] = {"/v1/traces", "/v1/metrics", "/v1/logs"};
    return (unsigned)sig < SIG_COUNT ? p[sig] : "/";
}

const char *sw_class_name(sw_class c)
{
    static const char *n[] = {"critical", "high", "normal"};
    return (unsigned)c < CLASS_COUNT ? n[c] : "unknown";
}

int sw_class_parse(const char *s)
{
    for (int c = 0; c < CLASS_COUNT; c++)
        if (strcmp(s, sw_class_name((sw_class)c)) == 0) return c;
    return -1;
}
