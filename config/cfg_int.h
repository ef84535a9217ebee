/* cfg_int.h — internals of the config loader, shared by config/cfg_*.c only.
 *
 * The schema is a tree of static field tables (cfg_schema.c): each entry is
 * {key, type, offset, default, min, max, help} plus, for sections, the table
 * of the nested mapping. The same tables drive the defaults (every default is
 * written in config syntax and converted like a value from a file), the YAML
 * walk (cfg_walk.c), range checks and cfg_schema_foreach().
 *
 * A load runs on one thread; cfg_ctx collects up to CFG_MAX_ERRORS
 * "FILE:LINE:COL: key.path: message" lines and the position where each field
 * was set (for cross-field checks in cfg.c).
 */
#ifndef SW_CFG_INT_H
#define SW_CFG_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "config/cfg.h"

typedef enum {
    CFT_SECTION,   /* nested mapping; `sub` is its table */
    CFT_STRING,    /* char * (owned by the cfg) */
    CFT_HOSTPORT,  /* char *, validated by cfg_split_hostport() */
    CFT_URL,       /* char *, must start with http:// or https:// */
    CFT_BOOL,      /* int 0/1 */
    CFT_UINT,      /* uint32_t / unsigned */
    CFT_INT,       /* int */
    CFT_DOUBLE,    /* double */
    CFT_SIZE,      /* uint64_t bytes */
    CFT_DURATION,  /* uint64_t milliseconds */
    CFT_ENUM,      /* int, one of `enums` */
    CFT_HEADERS,   /* map name -> value (exporter.headers) */
    CFT_RULES,     /* list of priority rules */
    CFT_STRLIST,   /* cfg_strlist: a list of strings */
} cfg_ftype;

/* Range flags: min/max are inclusive unless marked exclusive. */
enum { CFF_MIN_EXCL = 1u, CFF_MAX_EXCL = 2u, CFF_POW2 = 4u, CFF_NONEMPTY = 8u };
/* CFF_PRESENCE (sections): the int at `offset` is set to 1 when the
 * section appears in the file. CFF_EMPTY_OK (host:port): "" is allowed. */
enum { CFF_PRESENCE = 16u, CFF_EMPTY_OK = 32u };

typedef struct cfg_enum_val {
    const char *name;
    int value;
} cfg_enum_val;

typedef struct cfg_field {
    const char *key;
    cfg_ftype type;
    size_t offset;                 /* into struct cfg (leaf fields) */
    const char *def;               /* default in config syntax; NULL = none */
    double min, max;               /* range (numbers, sizes, durations in ms) */
    const char *help;
    const struct cfg_field *sub;   /* CFT_SECTION: {NULL}-terminated table */
    const cfg_enum_val *enums;     /* CFT_ENUM: {NULL}-terminated */
    unsigned flags;                /* CFF_* */
} cfg_field;

#define CFG_MAX_ERRORS 20
#define CFG_MAX_MARKS 96
#define CFG_MAX_HEADERS 64
#define CFG_MAX_RULES 256
#define CFG_MAX_STRLIST 256
#define CFG_PATH_MAX 256

typedef struct cfg_mark {
    size_t offset;                 /* field offset in struct cfg */
    int line, col;                 /* 1-based */
} cfg_mark;

typedef struct cfg_ctx {
    const char *name;              /* file name for messages (borrowed) */
    yaml_document_t *doc;          /* borrowed */
    cfg *c;                        /* being filled (borrowed) */
    char *errbuf;                  /* borrowed; may be NULL */
    size_t errlen, used;
    int nerr;
    int stop;                      /* too many errors or out of memory */
    int oom;
    double re_nodes;               /* estimated size of the regexes accepted so far */
    cfg_mark marks[CFG_MAX_MARKS];
    size_t n_marks;
} cfg_ctx;

/* cfg_schema.c */
const cfg_field *cfg_schema_root(void);
/* Frees every string field of c and sets it to NULL (headers/rules: cfg.c). */
void cfg_schema_free_strings(cfg *c);
/* Applies every default of the table tree to c. 0 or SW_ENOMEM/SW_EINVAL. */
int cfg_schema_apply_defaults(cfg *c);

/* cfg_value.c: typed conversion of one scalar text into field f of c.
 * On SW_EINVAL writes the reason into msg. */
int cfg_value_set(cfg *c, const cfg_field *f, const char *text, char *msg, size_t msglen);
int cfg_value_parse_size(const char *s, uint64_t *out, const char **why);
int cfg_value_parse_duration(const char *s, uint64_t *ms, const char **why);
int cfg_value_parse_bool(const char *s, int *out);
int cfg_value_parse_int(const char *s, int64_t *out);
int cfg_value_parse_double(const char *s, double *out);
/* Writes v (a value of type t) the way a user would write it. */
void cfg_value_format(cfg_ftype t, double v, char *out, size_t len);

/* cfg_regex.c: 0 if re (borrowed) compiles as a POSIX ERE, cheaply, and
 * has no back-references and no repeat of a nullable operand; else
 * SW_EINVAL (or SW_ENOMEM) with the reason in msg. *used is the estimated
 * size of the regexes already accepted in this file: re must fit beside
 * them, and is added to it when accepted. */
int cfg_regex_check(const char *re, double *used, char *msg, size_t msglen);

/* cfg_walk.c: walks the document over the schema into x->c. */
void cfg_walk_document(cfg_ctx *x);

/* cfg.c: error collection, field positions, list owners. */
void cfg_ctx_verror(cfg_ctx *x, int line, int col, const char *path, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));
void cfg_ctx_error(cfg_ctx *x, int line, int col, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void cfg_ctx_mark(cfg_ctx *x, size_t offset, int line, int col);
void cfg_ctx_oom(cfg_ctx *x);
void cfg_headers_free(cfg_header *h, size_t n);
void cfg_rules_free(cfg_prio_rule *r, size_t n);
void cfg_strlist_free(cfg_strlist *l);

#endif
