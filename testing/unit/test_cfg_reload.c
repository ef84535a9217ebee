/* test_cfg_reload.c — what a reload applies at once and what needs a
 * restart: the key-by-key comparison of two configs (config/cfg_reload.h). */
#include "testing/lib/th.h"

#include <stdio.h>
#include <string.h>

#include "config/cfg.h"
#include "config/cfg_reload.h"

#define ERRLEN 4096

static cfg *load(const char *text)
{
    char err[ERRLEN];
    cfg *c = NULL;
    int rc = cfg_load_mem("r.yaml", text, strlen(text), &c, err, sizeof err);
    TH_ASSERT_MSG(rc == 0, "load failed (%d): %s", rc, err);
    return c;
}

typedef struct seen_keys {
    char now[1024], later[1024];
} seen_keys;

static void on_change(const char *path, int reloadable, void *arg)
{
    seen_keys *k = arg;
    char *dst = reloadable ? k->now : k->later;
    size_t used = strlen(dst);
    snprintf(dst + used, sizeof k->now - used, "%s;", path);
}

static const char base_yaml[] =
    "receivers:\n  otlp:\n    http: { endpoint: 127.0.0.1:4318 }\n"
    "processors:\n"
    "  cardinality: { max_keys: 1024, aggregate_threshold: 0.5, drop_threshold: 0.8 }\n"
    "  priority:\n    rules:\n"
    "      - { class: critical, attribute: service.name, regex: \"^checkout\" }\n"
    "dlq: { dir: /tmp/a, replay: { rate: 1MiB } }\n"
    "exporters:\n  otlphttp:\n    endpoint: http://127.0.0.1:4319\n"
    "    headers: { api-key: one }\n"
    "    circuit_breaker: { window: 30s }\n"
    "telemetry:\n  log: { level: info }\n";

static void t_same_file_changes_nothing(void)
{
    cfg *a = load(base_yaml), *b = load(base_yaml);
    size_t now = 99;
    seen_keys k = {"", ""};
    TH_ASSERT_EQ_INT(cfg_reload_diff(a, b, on_change, &k, &now), 0);
    TH_ASSERT_EQ_INT(now, 0);
    TH_ASSERT_EQ_STR(k.now, "");
    TH_ASSERT_EQ_STR(k.later, "");
    cfg_free(a);
    cfg_free(b);
}

/* Replaces the first `from` in base_yaml by `to` and loads it. */
static cfg *load_edited(const char *from, const char *to)
{
    char text[2048];
    const char *at = strstr(base_yaml, from);
    TH_ASSERT_MSG(at, "no \"%s\" in the base file", from);
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - base_yaml), base_yaml, to,
             at + strlen(from));
    return load(text);
}

static void expect_change(const char *from, const char *to, const char *key, int reloadable)
{
    cfg *a = load(base_yaml), *b = load_edited(from, to);
    seen_keys k = {"", ""};
    size_t now = 0;
    size_t later = cfg_reload_diff(a, b, on_change, &k, &now);
    char want[300];
    snprintf(want, sizeof want, "%s;", key);
    TH_ASSERT_MSG(strcmp(reloadable ? k.now : k.later, want) == 0,
                  "%s -> %s: applies at once [%s], needs a restart [%s]; want only %s %s",
                  from, to, k.now, k.later, key, reloadable ? "at once" : "after a restart");
    TH_ASSERT_EQ_INT(now, reloadable ? 1 : 0);
    TH_ASSERT_EQ_INT(later, reloadable ? 0 : 1);
    TH_ASSERT_EQ_INT(cfg_key_reloadable(key), reloadable);
    cfg_free(a);
    cfg_free(b);
}

static void t_keys_that_apply_at_once(void)
{
    expect_change("^checkout", "^payment", "processors.priority.rules", 1);
    expect_change("class: critical", "class: high", "processors.priority.rules", 1);
    expect_change("api-key: one", "api-key: two", "exporters.otlphttp.headers", 1);
    expect_change("api-key: one", "api-key: one, x-b: 2", "exporters.otlphttp.headers", 1);
    expect_change("4319", "4320", "exporters.otlphttp.endpoint", 1);
    expect_change("level: info", "level: debug", "telemetry.log.level", 1);
    expect_change("rate: 1MiB", "rate: 2MiB", "dlq.replay.rate", 1);
    expect_change("drop_threshold: 0.8", "drop_threshold: 0.9",
                  "processors.cardinality.drop_threshold", 1);
}

static void t_keys_that_need_a_restart(void)
{
    expect_change("127.0.0.1:4318", "127.0.0.1:4328", "receivers.otlp.http.endpoint", 0);
    expect_change("max_keys: 1024", "max_keys: 2048", "processors.cardinality.max_keys", 0);
    expect_change("dir: /tmp/a", "dir: /tmp/b", "dlq.dir", 0);
    expect_change("window: 30s", "window: 10s",
                  "exporters.otlphttp.circuit_breaker.window", 0);
    expect_change("http: { endpoint: 127.0.0.1:4318 }\n",
                  "http: { endpoint: 127.0.0.1:4318 }\n    grpc: {}\n", "receivers.otlp.grpc", 0);
    expect_change("receivers:\n  otlp:\n",
                  "receivers:\n  filelog: { include: [/var/log/x/*.log] }\n  otlp:\n",
                  "receivers.filelog.include", 0);
}

/* Every key the reload list names exists in the schema (a renamed key
 * would silently turn restart-only otherwise). */
static void count_reloadable(const char *path, const char *type, const char *def,
                             const char *help, void *arg)
{
    (void)type;
    (void)def;
    (void)help;
    if (cfg_key_reloadable(path)) (*(int *)arg)++;
}

static void t_reload_list_names_schema_keys(void)
{
    int n = 0;
    cfg_schema_foreach(count_reloadable, &n);
    TH_ASSERT_EQ_INT(n, 27);
    TH_ASSERT_EQ_INT(cfg_key_reloadable("processors.priority"), 0);
    TH_ASSERT_EQ_INT(cfg_key_reloadable("no.such.key"), 0);
}

int main(void)
{
    TH_RUN(t_same_file_changes_nothing);
    TH_RUN(t_keys_that_apply_at_once);
    TH_RUN(t_keys_that_need_a_restart);
    TH_RUN(t_reload_list_names_schema_keys);
    return th_done();
}
