/* fuzz_config.c — arbitrary bytes into the config loader.
 *
 * cfg_load_mem() must never crash, hang or leak, whatever the input: a
 * successful load is freed, a failed one leaves *out NULL and a terminated
 * error text. Seeds: testing/fuzz/corpus/config/.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[2048];
    cfg *c = NULL;
    int rc = cfg_load_mem("fuzz.yaml", (const char *)data, size, &c, err, sizeof err);
    if (rc == 0) {
        /* Touch what consumers read, so bad pointers show up here. */
        volatile size_t n = strlen(c->dlq.dir) + strlen(c->exporter.endpoint);
        for (size_t i = 0; i < c->priority.n_rules; i++)
        {
            const cfg_prio_rule *r = &c->priority.rules[i];
            if ((r->regex == NULL) != (r->attribute == NULL)) __builtin_trap();
            if (r->regex) n += strlen(r->regex) + strlen(r->attribute);
            n += (size_t)r->min_severity + (size_t)r->span_error;
        }
        for (size_t i = 0; i < c->exporter.n_headers; i++)
            n += strlen(c->exporter.headers[i].name) + strlen(c->exporter.headers[i].value);
        (void)n;
        cfg_free(c);
    } else if (c != NULL || memchr(err, '\0', sizeof err) == NULL) {
        __builtin_trap();
    }
    return 0;
}
