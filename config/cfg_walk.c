/* cfg_walk.c — walks a libyaml document over the field tables.
 *
 * Every mapping is checked against its table (unknown and duplicate keys are
 * errors, wrong node kinds are errors), every scalar is ${env:...}-expanded
 * and converted by cfg_value_set(). Errors carry the 1-based position of the
 * offending node; the walk goes on after an error so that one run reports
 * several, until cfg_ctx says stop. The walk follows the schema, never the
 * document, so aliases cannot make it loop or blow up.
 */
#include "config/cfg_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "processors/prio.h"
#include "runtime/err.h"
#include "runtime/item.h"

typedef yaml_node_pair_t pair_t;

static int node_line(const yaml_node_t *n) { return (int)n->start_mark.line + 1; }
static int node_col(const yaml_node_t *n) { return (int)n->start_mark.column + 1; }

static void nerr(cfg_ctx *x, const yaml_node_t *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void nerr(cfg_ctx *x, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cfg_ctx_verror(x, node_line(n), node_col(n), path, fmt, ap);
    va_end(ap);
}

static const char *kind_name(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE: return "a scalar";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "nothing";
    }
}

static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

/* A plain empty, ~ or null scalar: "no value". */
static int is_null(const yaml_node_t *n)
{
    static const char *nulls[] = { "", "~", "null", "Null", "NULL" };
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        if (strcmp(scalar(n), nulls[i]) == 0) return 1;
    return 0;
}

/* out = prefix + sep + s, truncated to CFG_PATH_MAX. */
static void path_cat(char *out, const char *prefix, const char *sep, const char *s)
{
    size_t n = 0;
    const char *parts[3] = { prefix, *prefix ? sep : "", s };
    for (int i = 0; i < 3; i++)
        for (const char *p = parts[i]; *p && n < CFG_PATH_MAX - 1; p++) out[n++] = *p;
    out[n] = '\0';
}

static void join(char *out, const char *prefix, const char *key) { path_cat(out, prefix, ".", key); }

/* Returns the expanded text of scalar n (owned), or NULL after an error. */
static char *scalar_text(cfg_ctx *x, const yaml_node_t *n, const char *path)
{
    const char *err = NULL;
    if (strlen(scalar(n)) != n->data.scalar.length) {
        nerr(x, n, path, "value contains a NUL character");
        return NULL;
    }
    char *s = cfg_expand_env(scalar(n), &err);
    if (!s) nerr(x, n, path, "%s", err ? err : "out of memory");
    return s;
}

/* The key node of pair p if it is a usable scalar, else NULL (error given). */
static yaml_node_t *pair_key(cfg_ctx *x, const pair_t *p, const char *prefix)
{
    yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
    if (!k) return NULL;
    if (k->type != YAML_SCALAR_NODE) {
        nerr(x, k, prefix, "a key must be a plain string, got %s", kind_name(k));
        return NULL;
    }
    if (strlen(scalar(k)) != k->data.scalar.length) {
        nerr(x, k, prefix, "key contains a NUL character");
        return NULL;
    }
    return k;
}

/* 1 if an earlier pair of map has the same key as pair p (case-blind for headers). */
static int is_duplicate(cfg_ctx *x, const yaml_node_t *map, const pair_t *p, int nocase)
{
    const char *key = scalar(yaml_document_get_node(x->doc, p->key));
    for (const pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
        const yaml_node_t *k = yaml_document_get_node(x->doc, q->key);
        if (!k || k->type != YAML_SCALAR_NODE) continue;
        if (nocase ? strcasecmp(scalar(k), key) == 0 : strcmp(scalar(k), key) == 0) return 1;
    }
    return 0;
}

static const cfg_field *find_field(const cfg_field *t, const char *key)
{
    for (; t->key; t++)
        if (strcmp(t->key, key) == 0) return t;
    return NULL;
}

static void unknown_key(cfg_ctx *x, const yaml_node_t *k, const char *path, const cfg_field *t)
{
    char keys[256];
    size_t used = 0;
    keys[0] = '\0';
    for (; t->key && used < sizeof keys; t++)
        used += (size_t)snprintf(keys + used, sizeof keys - used, "%s%s", used ? ", " : "", t->key);
    nerr(x, k, path, "unknown key (expected one of: %s)", keys);
}

static void walk_field(cfg_ctx *x, const cfg_field *f, yaml_node_t *v, const char *path);

static void walk_section(cfg_ctx *x, yaml_node_t *map, const cfg_field *t, const char *prefix)
{
    char path[CFG_PATH_MAX];
    if (is_null(map)) return;
    if (map->type != YAML_MAPPING_NODE) {
        nerr(x, map, prefix, "expected a mapping, got %s", kind_name(map));
        return;
    }
    for (pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top && !x->stop; p++) {
        yaml_node_t *k = pair_key(x, p, prefix), *v = yaml_document_get_node(x->doc, p->value);
        if (!k || !v) continue;
        join(path, prefix, scalar(k));
        const cfg_field *f = find_field(t, scalar(k));
        if (is_duplicate(x, map, p, 0)) nerr(x, k, path, "duplicate key");
        else if (!f) unknown_key(x, k, path, t);
        else walk_field(x, f, v, path);
    }
}

static void walk_scalar(cfg_ctx *x, const cfg_field *f, yaml_node_t *v, const char *path)
{
    char msg[256];
    if (v->type != YAML_SCALAR_NODE) {
        nerr(x, v, path, "expected a single value, got %s", kind_name(v));
        return;
    }
    if (is_null(v) && f->type != CFT_STRING) {
        nerr(x, v, path, "a value is required");
        return;
    }
    char *text = is_null(v) ? strdup("") : scalar_text(x, v, path);
    if (!text) {
        if (is_null(v)) cfg_ctx_oom(x);
        return;
    }
    int rc = cfg_value_set(x->c, f, text, msg, sizeof msg);
    if (rc == SW_ENOMEM) cfg_ctx_oom(x);
    else if (rc != 0) nerr(x, v, path, "%s", msg);
    else cfg_ctx_mark(x, f->offset, node_line(v), node_col(v));
    free(text);
}

/* ---- exporters.otlphttp.headers ---- */

static int valid_header_name(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!strchr("!#$%&'*+-.^_`|~", *s) && !((*s >= '0' && *s <= '9') ||
            (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
            return 0;
    return 1;
}

static int walk_header(cfg_ctx *x, const yaml_node_t *map, const pair_t *p, cfg_header *h,
                       const char *prefix)
{
    char path[CFG_PATH_MAX];
    yaml_node_t *k = pair_key(x, p, prefix), *v = yaml_document_get_node(x->doc, p->value);
    if (!k || !v) return -1;
    join(path, prefix, scalar(k));
    if (is_duplicate(x, map, p, 1)) { nerr(x, k, path, "duplicate header"); return -1; }
    if (!valid_header_name(scalar(k))) { nerr(x, k, path, "invalid HTTP header name"); return -1; }
    if (v->type != YAML_SCALAR_NODE) {
        nerr(x, v, path, "expected a header value, got %s", kind_name(v));
        return -1;
    }
    h->value = scalar_text(x, v, path);
    if (!h->value) return -1;
    if (strpbrk(h->value, "\r\n")) { nerr(x, v, path, "header value contains a line break"); return -1; }
    h->name = strdup(scalar(k));
    if (!h->name) { cfg_ctx_oom(x); return -1; }
    return 0;
}

static void walk_headers(cfg_ctx *x, const cfg_field *f, yaml_node_t *v, const char *path)
{
    size_t n = 0, i = 0;
    cfg_header *h = NULL;
    int bad = 0;
    if (!is_null(v) && v->type != YAML_MAPPING_NODE) {
        nerr(x, v, path, "expected a mapping of header names to values, got %s", kind_name(v));
        return;
    }
    if (!is_null(v)) n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    if (n > CFG_MAX_HEADERS) { nerr(x, v, path, "at most %d headers", CFG_MAX_HEADERS); return; }
    if (n && !(h = calloc(n, sizeof *h))) { cfg_ctx_oom(x); return; }
    for (i = 0; i < n && !x->stop; i++)
        if (walk_header(x, v, v->data.mapping.pairs.start + i, &h[i], path) != 0) bad = 1;
    if (bad || x->stop) {
        cfg_headers_free(h, n);
        return;
    }
    cfg_headers_free(x->c->exporter.headers, x->c->exporter.n_headers);
    x->c->exporter.headers = h;
    x->c->exporter.n_headers = n;
    cfg_ctx_mark(x, f->offset, node_line(v), node_col(v));
}

/* ---- processors.priority.rules ---- */

/* The keys of a rule, in the order of enum rule_key. */
enum rule_key { RK_CLASS, RK_ATTRIBUTE, RK_REGEX, RK_SPAN_STATUS, RK_MIN_SEVERITY, RK_COUNT };
static const char *const rule_keys[RK_COUNT] = {
    "class", "attribute", "regex", "span_status", "min_severity",
};

/* What walk_rule saw of each key: 0 absent, 1 valid, -1 present but bad;
 * and its key node, for errors that concern the key as a whole. */
typedef struct rule_seen {
    int state[RK_COUNT];
    const yaml_node_t *key[RK_COUNT];
} rule_seen;

static int rule_class(cfg_ctx *x, cfg_prio_rule *r, const char *text, yaml_node_t *v, const char *path)
{
    r->klass = sw_class_parse(text);
    if (r->klass >= 0) return 0;
    nerr(x, v, path, "unknown class \"%s\": expected critical | high | normal", text);
    return -1;
}

static int rule_regex_check(cfg_ctx *x, const char *text, yaml_node_t *v, const char *path)
{
    char msg[256];
    int rc = cfg_regex_check(text, &x->re_nodes, msg, sizeof msg);
    if (rc == SW_ENOMEM) cfg_ctx_oom(x);
    else if (rc != 0) nerr(x, v, path, "%s", msg);
    return rc == 0 ? 0 : -1;
}

/* attribute or regex: takes ownership of text. */
static int rule_string(cfg_ctx *x, char **dst, char *text, int is_regex, yaml_node_t *v,
                       const char *path)
{
    free(*dst);
    *dst = text;
    if (!*text) {
        nerr(x, v, path, "must not be empty");
        return -1;
    }
    return is_regex ? rule_regex_check(x, text, v, path) : 0;
}

static int rule_span_status(cfg_ctx *x, cfg_prio_rule *r, const char *text, yaml_node_t *v,
                            const char *path)
{
    if (strcmp(text, "error") == 0) {
        r->span_error = 1;
        return 0;
    }
    nerr(x, v, path, "invalid value \"%s\": only \"error\" is allowed (a span with status ERROR)", text);
    return -1;
}

/* A severity name (any case, also with the SEVERITY_NUMBER_ prefix of the
 * OTLP enum) or a number 1..24; -1 if neither. */
static int parse_severity(const char *s)
{
    static const char prefix[] = "SEVERITY_NUMBER_";
    if (strncasecmp(s, prefix, sizeof prefix - 1) == 0) {
        s += sizeof prefix - 1;
        if (!isalpha((unsigned char)*s)) return -1;
    }
    return prio_severity_parse(s);
}

static int rule_min_severity(cfg_ctx *x, cfg_prio_rule *r, const char *text, yaml_node_t *v,
                             const char *path)
{
    int sev = parse_severity(text);
    if (sev > 0) {
        r->min_severity = sev;
        return 0;
    }
    if (isdigit((unsigned char)text[0]) || text[0] == '-' || text[0] == '+')
        nerr(x, v, path, "\"%s\" is out of range: a severity number must be in [1, %d]", text, PRIO_SEV_MAX);
    else
        nerr(x, v, path, "unknown severity \"%s\": expected TRACE | DEBUG | INFO | WARN | ERROR | FATAL "
             "(any case, optionally 2..4 as in WARN2, or SEVERITY_NUMBER_*) or a number 1..24", text);
    return -1;
}

/* Converts the scalar v of rule key k into r. 0 or -1 (error given). */
static int rule_value(cfg_ctx *x, cfg_prio_rule *r, int k, yaml_node_t *v, const char *path)
{
    int rc = -1;
    char *text = scalar_text(x, v, path);
    if (!text) return -1;
    switch (k) {
    case RK_CLASS: rc = rule_class(x, r, text, v, path); break;
    case RK_ATTRIBUTE: return rule_string(x, &r->attribute, text, 0, v, path);
    case RK_REGEX: return rule_string(x, &r->regex, text, 1, v, path);
    case RK_SPAN_STATUS: rc = rule_span_status(x, r, text, v, path); break;
    case RK_MIN_SEVERITY: rc = rule_min_severity(x, r, text, v, path); break;
    default: break;
    }
    free(text);
    return rc;
}

/* The checks across the keys of one rule, after all were read. 0 or -1. */
static int rule_combination(cfg_ctx *x, const yaml_node_t *m, const rule_seen *s, const char *prefix)
{
    char path[CFG_PATH_MAX];
    const int *st = s->state;
    int bad = 0;
    if (!st[RK_CLASS]) { nerr(x, m, prefix, "missing required key \"class\""); bad = 1; }
    if (!st[RK_ATTRIBUTE] != !st[RK_REGEX]) {
        nerr(x, m, prefix, "missing key \"%s\": attribute and regex go together",
             st[RK_ATTRIBUTE] ? "regex" : "attribute");
        bad = 1;
    }
    if (st[RK_SPAN_STATUS] && st[RK_MIN_SEVERITY]) {
        /* Reported at whichever of the two keys comes second. */
        int later = s->key[RK_MIN_SEVERITY]->start_mark.index > s->key[RK_SPAN_STATUS]->start_mark.index
                        ? RK_MIN_SEVERITY : RK_SPAN_STATUS;
        join(path, prefix, rule_keys[later]);
        nerr(x, s->key[later], path, "span_status (traces) and min_severity (logs) cannot be in one "
             "rule: write two rules");
        bad = 1;
    }
    if (!st[RK_ATTRIBUTE] && !st[RK_REGEX] && !st[RK_SPAN_STATUS] && !st[RK_MIN_SEVERITY]) {
        nerr(x, m, prefix, "a rule needs a condition: attribute with regex, span_status or min_severity");
        bad = 1;
    }
    return bad ? -1 : 0;
}

/* One key: value pair p of rule mapping m into r and s. 0, or -1 after an error. */
static int rule_pair(cfg_ctx *x, const yaml_node_t *m, const pair_t *p, cfg_prio_rule *r, rule_seen *s,
                     const char *prefix)
{
    char path[CFG_PATH_MAX];
    yaml_node_t *k = pair_key(x, p, prefix), *v = yaml_document_get_node(x->doc, p->value);
    int i = 0;
    if (!k || !v) return -1;
    join(path, prefix, scalar(k));
    while (i < RK_COUNT && strcmp(rule_keys[i], scalar(k)) != 0) i++;
    if (is_duplicate(x, m, p, 0)) {
        nerr(x, k, path, "duplicate key");
        return -1;
    }
    if (i == RK_COUNT) {
        nerr(x, k, path, "unknown key (expected one of: class, attribute, regex, span_status, min_severity)");
        return -1;
    }
    s->key[i] = k;
    s->state[i] = -1;
    if (v->type != YAML_SCALAR_NODE) {
        nerr(x, v, path, "expected a single value, got %s", kind_name(v));
        return -1;
    }
    if (rule_value(x, r, i, v, path) != 0) return -1;
    s->state[i] = 1;
    return 0;
}

static int walk_rule(cfg_ctx *x, yaml_node_t *m, cfg_prio_rule *r, const char *prefix)
{
    rule_seen s = { { 0 }, { NULL } };
    int bad = 0;
    r->klass = -1;
    r->line = node_line(m);
    r->col = node_col(m);
    if (m->type != YAML_MAPPING_NODE) {
        nerr(x, m, prefix, "expected a rule mapping {class, attribute, regex, span_status, min_severity}, "
             "got %s", kind_name(m));
        return -1;
    }
    for (pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top && !x->stop; p++)
        if (rule_pair(x, m, p, r, &s, prefix) != 0) bad = 1;
    if (!x->stop && rule_combination(x, m, &s, prefix) != 0) bad = 1;
    return bad ? -1 : 0;
}

static void walk_rules(cfg_ctx *x, const cfg_field *f, yaml_node_t *v, const char *prefix)
{
    char path[CFG_PATH_MAX];
    size_t n = 0;
    cfg_prio_rule *r = NULL;
    int bad = 0;
    if (!is_null(v) && v->type != YAML_SEQUENCE_NODE) {
        nerr(x, v, prefix, "expected a list of rules, got %s", kind_name(v));
        return;
    }
    if (!is_null(v)) n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > CFG_MAX_RULES) { nerr(x, v, prefix, "at most %d rules", CFG_MAX_RULES); return; }
    if (n && !(r = calloc(n, sizeof *r))) { cfg_ctx_oom(x); return; }
    for (size_t i = 0; i < n && !x->stop; i++) {
        yaml_node_t *it = yaml_document_get_node(x->doc, v->data.sequence.items.start[i]);
        char idx[32];
        snprintf(idx, sizeof idx, "[%zu]", i);
        path_cat(path, prefix, "", idx);
        if (!it || walk_rule(x, it, &r[i], path) != 0) bad = 1;
    }
    if (bad || x->stop) {
        cfg_rules_free(r, n);
        return;
    }
    cfg_rules_free(x->c->priority.rules, x->c->priority.n_rules);
    x->c->priority.rules = r;
    x->c->priority.n_rules = n;
    cfg_ctx_mark(x, f->offset, node_line(v), node_col(v));
}

/* ---- lists of strings (receivers.filelog.include, exclude) ---- */

static void walk_strlist(cfg_ctx *x, const cfg_field *f, yaml_node_t *v, const char *prefix)
{
    char path[CFG_PATH_MAX], idx[32];
    cfg_strlist l = { 0, NULL };
    int bad = 0;
    if (!is_null(v) && v->type != YAML_SEQUENCE_NODE) {
        nerr(x, v, prefix, "expected a list of strings, got %s", kind_name(v));
        return;
    }
    size_t n = is_null(v) ? 0 : (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > CFG_MAX_STRLIST) { nerr(x, v, prefix, "at most %d entries", CFG_MAX_STRLIST); return; }
    if (n && !(l.v = calloc(n, sizeof *l.v))) { cfg_ctx_oom(x); return; }
    for (size_t i = 0; i < n && !x->stop; i++) {
        yaml_node_t *it = yaml_document_get_node(x->doc, v->data.sequence.items.start[i]);
        snprintf(idx, sizeof idx, "[%zu]", i);
        path_cat(path, prefix, "", idx);
        if (!it || it->type != YAML_SCALAR_NODE || is_null(it)) {
            if (it) nerr(x, it, path, "expected a non-empty string, got %s", kind_name(it));
            bad = 1;
            continue;
        }
        if (!(l.v[l.n] = scalar_text(x, it, path))) { bad = 1; continue; }
        if (!*l.v[l.n++]) { nerr(x, it, path, "must not be empty"); bad = 1; }
    }
    if (bad || x->stop) {
        cfg_strlist_free(&l);
        return;
    }
    cfg_strlist *dst = (cfg_strlist *)(void *)((char *)x->c + f->offset);
    cfg_strlist_free(dst);
    *dst = l;
    cfg_ctx_mark(x, f->offset, node_line(v), node_col(v));
}

static void walk_field(cfg_ctx *x, const cfg_field *f, yaml_node_t *v, const char *path)
{
    switch (f->type) {
    case CFT_SECTION:
        if (f->flags & CFF_PRESENCE) *(int *)(void *)((char *)x->c + f->offset) = 1;
        walk_section(x, v, f->sub, path);
        break;
    case CFT_HEADERS: walk_headers(x, f, v, path); break;
    case CFT_RULES: walk_rules(x, f, v, path); break;
    case CFT_STRLIST: walk_strlist(x, f, v, path); break;
    default: walk_scalar(x, f, v, path); break;
    }
}

void cfg_walk_document(cfg_ctx *x)
{
    yaml_node_t *root = yaml_document_get_root_node(x->doc);
    if (!root || is_null(root)) return;    /* empty file, comments only */
    if (root->type != YAML_MAPPING_NODE) {
        nerr(x, root, "", "the top level must be a mapping of sections, got %s", kind_name(root));
        return;
    }
    walk_section(x, root, cfg_schema_root(), "");
}
