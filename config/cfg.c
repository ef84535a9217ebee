/* cfg.c — loading a config: defaults, file/memory input, libyaml set-up,
 * error collection, cross-field checks, and freeing. The per-key work is in
 * cfg_walk.c (YAML -> fields) and cfg_value.c (scalar syntax); the keys
 * themselves are the tables of cfg_schema.c.
 */
#include "config/cfg_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/err.h"

#define CFG_MAX_FILE (4u * 1024u * 1024u)

/* ---- error collection ---- */

static void append(cfg_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(cfg_ctx *x, const char *fmt, ...)
{
    va_list ap;
    if (!x->errbuf || x->used + 1 >= x->errlen) return;
    va_start(ap, fmt);
    int n = vsnprintf(x->errbuf + x->used, x->errlen - x->used, fmt, ap);
    va_end(ap);
    if (n > 0) x->used += (size_t)n;
    if (x->used >= x->errlen) x->used = x->errlen - 1;
}

void cfg_ctx_verror(cfg_ctx *x, int line, int col, const char *path, const char *fmt, va_list ap)
{
    char msg[512];
    if (x->stop) return;
    x->nerr++;
    if (x->nerr > CFG_MAX_ERRORS) {
        append(x, "%s: too many errors, stopping\n", x->name);
        x->stop = 1;
        return;
    }
    vsnprintf(msg, sizeof msg, fmt, ap);
    append(x, "%s:%d:%d: %s%s%s\n", x->name, line, col, path, *path ? ": " : "", msg);
}

void cfg_ctx_error(cfg_ctx *x, int line, int col, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cfg_ctx_verror(x, line, col, path, fmt, ap);
    va_end(ap);
}

void cfg_ctx_oom(cfg_ctx *x)
{
    if (x->oom) return;
    x->oom = 1;
    x->nerr++;
    append(x, "%s: out of memory\n", x->name);
    x->stop = 1;
}

void cfg_ctx_mark(cfg_ctx *x, size_t offset, int line, int col)
{
    size_t i = 0;
    while (i < x->n_marks && x->marks[i].offset != offset) i++;
    if (i == CFG_MAX_MARKS) return;
    if (i == x->n_marks) x->n_marks++;
    x->marks[i] = (cfg_mark){ offset, line, col };
}

/* Position where the field at offset was set, or NULL if it kept its default. */
static const cfg_mark *mark_of(const cfg_ctx *x, size_t offset)
{
    for (size_t i = 0; i < x->n_marks; i++)
        if (x->marks[i].offset == offset) return &x->marks[i];
    return NULL;
}

/* ---- cross-field checks ---- */

/* Reports msg at the first of two fields that was set in the file. */
static void cross_error(cfg_ctx *x, size_t off_a, const char *path_a, size_t off_b,
                        const char *path_b, const char *msg)
{
    const cfg_mark *m = mark_of(x, off_a);
    const char *path = path_a;
    if (!m) { m = mark_of(x, off_b); path = path_b; }
    cfg_ctx_error(x, m ? m->line : 1, m ? m->col : 1, path, "%s", msg);
}

static void validate_cross(cfg_ctx *x)
{
    const cfg *c = x->c;
    char msg[200];
    if (!(c->cardinality.aggregate_threshold < c->cardinality.drop_threshold)) {
        snprintf(msg, sizeof msg, "aggregate_threshold (%g) must be less than drop_threshold (%g)",
                 c->cardinality.aggregate_threshold, c->cardinality.drop_threshold);
        cross_error(x, offsetof(cfg, cardinality.aggregate_threshold),
                    "processors.cardinality.aggregate_threshold",
                    offsetof(cfg, cardinality.drop_threshold), "processors.cardinality.drop_threshold", msg);
    }
    if (c->dlq.max_size < c->dlq.segment_size) {
        snprintf(msg, sizeof msg, "max_size must be at least segment_size");
        cross_error(x, offsetof(cfg, dlq.max_size), "dlq.max_size",
                    offsetof(cfg, dlq.segment_size), "dlq.segment_size", msg);
    }
    if (c->exporter.retry_max_ms < c->exporter.retry_initial_ms) {
        snprintf(msg, sizeof msg, "max_interval must be at least initial_interval");
        cross_error(x, offsetof(cfg, exporter.retry_max_ms), "exporters.otlphttp.retry.max_interval",
                    offsetof(cfg, exporter.retry_initial_ms), "exporters.otlphttp.retry.initial_interval",
                    msg);
    }
}

/* ---- lifecycle ---- */

void cfg_headers_free(cfg_header *h, size_t n)
{
    for (size_t i = 0; h && i < n; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
}

void cfg_rules_free(cfg_prio_rule *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++) {
        free(r[i].attribute);
        free(r[i].regex);
    }
    free(r);
}

void cfg_strlist_free(cfg_strlist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void cfg_free(cfg *c)
{
    if (!c) return;
    cfg_schema_free_strings(c);
    cfg_headers_free(c->exporter.headers, c->exporter.n_headers);
    cfg_rules_free(c->priority.rules, c->priority.n_rules);
    cfg_strlist_free(&c->filelog.include);
    cfg_strlist_free(&c->filelog.exclude);
    free(c->source);
    free(c);
}

static cfg *new_with_defaults(const char *source)
{
    cfg *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->source = strdup(source);
    if (!c->source || cfg_schema_apply_defaults(c) != 0) {
        cfg_free(c);
        return NULL;
    }
    return c;
}

/* Without a file, every listener of DESIGN's port table runs: OTLP/HTTP on
 * 4318 and OTLP/gRPC on 4317. A file turns gRPC on by its section. */
cfg *cfg_defaults(void)
{
    cfg *c = new_with_defaults("<defaults>");
    if (c) c->receiver.grpc_enabled = 1;
    return c;
}

/* ---- loading ---- */

static void yaml_error(cfg_ctx *x, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR) {
        cfg_ctx_oom(x);
        return;
    }
    yaml_mark_t m = p->error == YAML_READER_ERROR ? p->mark : p->problem_mark;
    cfg_ctx_error(x, (int)m.line + 1, (int)m.column + 1, "", "YAML syntax error: %s%s%s",
                  p->problem ? p->problem : "malformed document", p->context ? " " : "",
                  p->context ? p->context : "");
}

/* A file holds one document: a second one is an error. */
static void check_single_document(cfg_ctx *x, yaml_parser_t *p)
{
    yaml_document_t doc;
    if (!yaml_parser_load(p, &doc)) {
        yaml_error(x, p);
        return;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root)
        cfg_ctx_error(x, (int)root->start_mark.line + 1, (int)root->start_mark.column + 1, "",
                      "only one YAML document is allowed in a config file");
    yaml_document_delete(&doc);
}

static void parse_into(cfg_ctx *x, const char *data, size_t len)
{
    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p)) {
        cfg_ctx_oom(x);
        return;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    if (!yaml_parser_load(&p, &doc)) {
        yaml_error(x, &p);
        goto done;
    }
    x->doc = &doc;
    cfg_walk_document(x);
    if (x->nerr == 0) check_single_document(x, &p);
    if (x->nerr == 0) validate_cross(x);
    x->doc = NULL;
    yaml_document_delete(&doc);
done:
    yaml_parser_delete(&p);
}

int cfg_load_mem(const char *name, const char *data, size_t len, cfg **out,
                 char *errbuf, size_t errlen)
{
    cfg_ctx x;
    int rc = 0;
    memset(&x, 0, sizeof x);
    x.name = name ? name : "<config>";
    x.errbuf = errlen ? errbuf : NULL;
    x.errlen = errlen;
    if (x.errbuf) x.errbuf[0] = '\0';
    *out = NULL;
    if (len > CFG_MAX_FILE) {
        append(&x, "%s: config is larger than %u bytes\n", x.name, CFG_MAX_FILE);
        return SW_ETOOBIG;
    }
    x.c = new_with_defaults(x.name);
    if (!x.c) {
        cfg_ctx_oom(&x);
        return SW_ENOMEM;
    }
    parse_into(&x, data ? data : "", data ? len : 0);
    rc = x.oom ? SW_ENOMEM : x.nerr ? SW_EINVAL : 0;
    if (rc == 0) *out = x.c;
    else cfg_free(x.c);
    return rc;
}

/* Reads path into an owned buffer; 0, SW_EIO or SW_ETOOBIG/SW_ENOMEM. */
static int read_file(const char *path, char **data, size_t *len, char *errbuf, size_t errlen)
{
    struct stat st;
    int rc = SW_EIO;
    char *d = NULL;
    FILE *f = fopen(path, "rb");
    if (!f || fstat(fileno(f), &st) != 0) {
        snprintf(errbuf, errlen, "%s: cannot read config: %s\n", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(errbuf, errlen, "%s: cannot read config: not a regular file\n", path);
        goto done;
    }
    if ((uint64_t)st.st_size > CFG_MAX_FILE) {
        snprintf(errbuf, errlen, "%s: config is larger than %u bytes\n", path, CFG_MAX_FILE);
        rc = SW_ETOOBIG;
        goto done;
    }
    d = malloc((size_t)st.st_size + 1);
    rc = d ? 0 : SW_ENOMEM;
    if (d) *len = fread(d, 1, (size_t)st.st_size, f);
    if (d && ferror(f)) {
        snprintf(errbuf, errlen, "%s: cannot read config: %s\n", path, strerror(errno));
        rc = SW_EIO;
    }
done:
    if (f) fclose(f);
    if (rc == 0) *data = d;
    else free(d);
    return rc;
}

int cfg_load(const char *path, cfg **out, char *errbuf, size_t errlen)
{
    char dummy[1], *data = NULL;
    size_t len = 0;
    *out = NULL;
    if (!errbuf || !errlen) { errbuf = dummy; errlen = sizeof dummy; }
    errbuf[0] = '\0';
    int rc = read_file(path, &data, &len, errbuf, errlen);
    if (rc == 0) rc = cfg_load_mem(path, data, len, out, errbuf, errlen);
    free(data);
    return rc;
}
