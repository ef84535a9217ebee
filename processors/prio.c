/* prio.c — see prio.h: rule compilation and the per-resource decision. */
#define LOG_COMPONENT "priority"
#include "processors/prio.h"

#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "processors/prio_int.h"
#include "processors/prio_wire.h"
#include "runtime/err.h"

typedef struct prule {
    sw_class klass;
    char *attr;              /* owned; NULL: no attribute condition */
    size_t alen;
    regex_t re;              /* compiled when attr is set */
    int span_error;
    int min_sev;
} prule;

struct prio {
    size_t n;
    prule *r;                /* owned, n entries */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void prio_free(prio *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        if (p->r[i].attr) regfree(&p->r[i].re);
        free(p->r[i].attr);
    }
    free(p->r);
    free(p);
}

size_t prio_rule_count(const prio *p) { return p ? p->n : 0; }

/* The checks of one rule that need no compiling; NULL or a message. */
static const char *rule_problem(const prio_rule *s)
{
    if ((unsigned)s->klass >= CLASS_COUNT) return "unknown class";
    if (!s->attribute != !s->regex) return "attribute and regex go together";
    if (s->attribute && !*s->attribute) return "empty attribute";
    if (s->min_severity < 0 || s->min_severity > PRIO_SEV_MAX) return "min_severity not in 0..24";
    if (s->span_error && s->min_severity)
        return "span_error (traces) and min_severity (logs) exclude each other";
    if (!s->attribute && !s->span_error && !s->min_severity) return "no condition";
    return NULL;
}

/* Compiles rule i of src into p->r[i] (counted in p->n once it owns
 * something to free). 0 or -1 with err set. */
static int compile_rule(prio *p, const prio_rule *s, size_t i, char *err, size_t errlen)
{
    prule *d = &p->r[i];
    const char *why = rule_problem(s);
    if (why) {
        set_err(err, errlen, "rule %zu: %s", i, why);
        return -1;
    }
    d->klass = s->klass;
    d->span_error = s->span_error ? 1 : 0;
    d->min_sev = s->min_severity;
    p->n = i + 1;
    if (!s->attribute) return 0;
    int rc = regcomp(&d->re, s->regex, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[128];
        regerror(rc, &d->re, msg, sizeof msg);
        set_err(err, errlen, "rule %zu: invalid regex \"%.80s\": %s", i, s->regex, msg);
        return -1;
    }
    d->alen = strlen(s->attribute);
    if (!(d->attr = strdup(s->attribute))) {
        regfree(&d->re);
        set_err(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

prio *prio_new(const prio_rule *rules, size_t n, char *err, size_t errlen)
{
    prio *p = NULL;
    set_err(err, errlen, "%s", "");
    if (n > PRIO_MAX_RULES) {
        set_err(err, errlen, "at most %d rules", PRIO_MAX_RULES);
        goto fail;
    }
    if (!(p = calloc(1, sizeof *p)) || (n && !(p->r = calloc(n, sizeof *p->r)))) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        if (compile_rule(p, &rules[i], i, err, errlen) != 0) goto fail;
    return p;
fail:
    prio_free(p);
    return NULL;
}

prio *prio_from_cfg(const cfg *c, char *err, size_t errlen)
{
    size_t n = c->priority.n_rules;
    prio_rule *r = n ? calloc(n, sizeof *r) : NULL;
    if (n && !r) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const cfg_prio_rule *s = &c->priority.rules[i];
        r[i].klass = (sw_class)s->klass;
        r[i].attribute = s->attribute;
        r[i].regex = s->regex;
        r[i].span_error = s->span_error;
        r[i].min_severity = s->min_severity;
    }
    prio *p = prio_new(r, n, err, errlen);
    free(r);
    return p;
}

int prio_severity_parse(const char *s)
{
    static const char *names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
    if (!s || !*s) return -1;
    if (isdigit((unsigned char)s[0])) {
        char *end;
        long v = strtol(s, &end, 10);
        return (*end || v < 1 || v > PRIO_SEV_MAX) ? -1 : (int)v;
    }
    for (int i = 0; i < 6; i++) {
        size_t l = strlen(names[i]);
        if (strncasecmp(s, names[i], l) != 0) continue;
        if (!s[l]) return 4 * i + 1;
        if (s[l] >= '2' && s[l] <= '4' && !s[l + 1]) return 4 * i + 1 + (s[l] - '1');
    }
    return -1;
}

/* ---- the decision for one resource ---- */

typedef struct decide {
    const prio *p;
    uint64_t ok[PRIO_MAX_RULES / 64]; /* bit i: rule i's attribute condition holds */
    size_t limit;                     /* rules from here on cannot win any more */
} decide;

/* A value as regexec() gets it: NUL-terminated (REG_STARTEND gives the
 * length, so embedded NULs are matched too, but sanitizers' regexec
 * interceptors read up to a NUL). Short values go through the stack buffer,
 * long ones (rare) through a heap copy; without memory, the bytes
 * themselves (glibc stops at rm_eo). */
typedef struct val_text {
    char small[256];
    char *heap;              /* owned, or NULL */
    const char *s;
} val_text;

static void val_text_set(val_text *t, const char *val, size_t vlen)
{
    t->heap = NULL;
    t->s = vlen ? val : "";
    if (vlen < sizeof t->small) {
        memcpy(t->small, val, vlen);
        t->small[vlen] = '\0';
        t->s = t->small;
    } else if ((t->heap = malloc(vlen + 1)) != NULL) {
        memcpy(t->heap, val, vlen);
        t->heap[vlen] = '\0';
        t->s = t->heap;
    }
}

static int matches(const prule *r, const val_text *t, size_t vlen)
{
    regmatch_t m[1] = {{.rm_so = 0, .rm_eo = (regoff_t)vlen}};
    return regexec(&r->re, t->s, 1, m, REG_STARTEND) == 0;
}

static int on_attr(void *arg, const uint8_t *key, size_t klen, const char *val, size_t vlen)
{
    decide *d = arg;
    val_text t;
    int have = 0;
    for (size_t i = 0; i < d->limit; i++) {
        const prule *r = &d->p->r[i];
        if (!r->attr || r->alen != klen || memcmp(r->attr, key, klen) != 0) continue;
        if (d->ok[i / 64] & (1ull << (i % 64))) continue;
        if (!have) {
            val_text_set(&t, val, vlen);
            have = 1;
        }
        if (!matches(r, &t, vlen)) continue;
        d->ok[i / 64] |= 1ull << (i % 64);
        if (!r->span_error && !r->min_sev) d->limit = i + 1; /* decided unless an earlier one holds */
    }
    if (have) free(t.heap);
    return 0;
}

/* Lazily computed facts about the resource's spans or records. */
typedef struct facts {
    int have_err, err;
    int have_sev, sev;
} facts;

/* 1 if rule r's span/severity conditions hold, 0 if not, -1 malformed. */
static int deep_ok(const prule *r, sw_signal sig, const uint8_t *p, size_t n, facts *f)
{
    if (r->span_error) {
        if (sig != SIG_TRACES) return 0;
        if (!f->have_err && pw_has_error_span(p, n, &f->err) != 0) return -1;
        f->have_err = 1;
        if (!f->err) return 0;
    }
    if (r->min_sev) {
        if (sig != SIG_LOGS) return 0;
        if (!f->have_sev && pw_max_severity(p, n, &f->sev) != 0) return -1;
        f->have_sev = 1;
        if (f->sev < r->min_sev) return 0;
    }
    return 1;
}

int prio_entry_class(const prio *p, sw_signal sig, const uint8_t *e, size_t n)
{
    if (!p || !p->n) return CLASS_NORMAL;
    decide d = {.p = p, .limit = p->n};
    facts f = {0};
    if (pw_resource_attrs(e, n, on_attr, &d) != 0) return SW_EDECODE;
    for (size_t i = 0; i < d.limit; i++) {
        const prule *r = &p->r[i];
        if (r->attr && !(d.ok[i / 64] & (1ull << (i % 64)))) continue;
        int rc = deep_ok(r, sig, e, n, &f);
        if (rc < 0) return SW_EDECODE;
        if (rc) return (int)r->klass;
    }
    return CLASS_NORMAL;
}

int prio_has_rules(const prio *p) { return p && p->n; }
