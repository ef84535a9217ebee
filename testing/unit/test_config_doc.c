/* test_config_doc.c — docs/configuration.md names every key of the loader.
 *
 * Walks the loader's field tables (cfg_schema_foreach: every key path the
 * YAML loader accepts) and checks that each appears in
 * docs/configuration.md as `path` in its first column (a table row starting
 * "| `path` |"), and that the documented default matches the loader's. A
 * key added to config/cfg_schema.c without a line in the doc fails here.
 * cwd is the repository root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg.h"
#include "testing/lib/th.h"

static char *g_doc;

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) goto done;
    buf = malloc((size_t)n + 1);
    if (!buf) goto done;
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
        goto done;
    }
    buf[n] = '\0';
done:
    fclose(f);
    return buf;
}

/* The doc's table row of path: the line starting "| `path` |", or NULL. */
static const char *doc_row(const char *path)
{
    char pat[300];
    snprintf(pat, sizeof pat, "\n| `%s` |", path);
    return strstr(g_doc, pat);
}

typedef struct {
    int keys, missing, wrong_default;
} walk_res;

static void check_key(const char *path, const char *type, const char *def, const char *help, void *arg)
{
    walk_res *r = arg;
    (void)type;
    (void)help;
    r->keys++;
    const char *row = doc_row(path);
    if (!row) {
        printf("# docs/configuration.md has no row for `%s`\n", path);
        r->missing++;
        return;
    }
    if (!def[0]) return;
    /* The default is written as `value` somewhere on the row. */
    const char *eol = strchr(row + 1, '\n');
    size_t len = eol ? (size_t)(eol - row) : strlen(row);
    char want[200], line[2048];
    snprintf(want, sizeof want, "`%s`", def);
    if (len >= sizeof line) len = sizeof line - 1;
    memcpy(line, row, len);
    line[len] = '\0';
    if (!strstr(line, want)) {
        printf("# docs/configuration.md: `%s` does not show the default %s\n", path, want);
        r->wrong_default++;
    }
}

static void t_every_key_documented(void)
{
    walk_res r = { 0 };
    cfg_schema_foreach(check_key, &r);
    TH_ASSERT_MSG(r.keys > 40, "only %d keys walked", r.keys);
    TH_ASSERT_MSG(r.missing == 0, "%d keys of the loader missing from docs/configuration.md", r.missing);
    TH_ASSERT_MSG(r.wrong_default == 0, "%d keys with a default the doc does not show", r.wrong_default);
}

/* The check itself can fail: a key the loader does not have is not found. */
static void t_detects_missing(void)
{
    TH_ASSERT(doc_row("dlq.segment_size") != NULL);
    TH_ASSERT(doc_row("dlq.no_such_key") == NULL);
    TH_ASSERT(doc_row("dlq") == NULL);
}

int main(void)
{
    g_doc = read_all("docs/configuration.md");
    if (!g_doc) {
        printf("FAIL: test_config_doc: cannot read docs/configuration.md (cwd must be the repository root)\n");
        return 1;
    }
    TH_RUN(t_every_key_documented);
    TH_RUN(t_detects_missing);
    int rc = th_done();
    free(g_doc);
    return rc;
}
